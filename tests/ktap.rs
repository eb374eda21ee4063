//! `ktap.txt` end to end: `tcpconform run --out DIR --format ktap` over a
//! small mixed set (YAML cases and packetdrill scripts that pass, fail, and
//! skip: a knob this kernel lacks, a script construct tcpconform cannot run
//! on one family), then the file read back with a strict KTAP reader and
//! checked against report.json: the plan, every result line, the SKIP
//! reasons, the failures' diagnostics. Standard output carries the same
//! KTAP and nothing else. Needs root, as the cases do.

#[path = "ktap/parse.rs"]
mod parse;

use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn ktap_txt_parses_and_says_what_report_json_says() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ktap-run");
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .current_dir(root)
        .args([
            "run",
            "cases/opening/passive_handshake.yaml",
            "tests/fixtures/failing/wrong_ack.yaml",
            "tests/fixtures/sysctl/absent.yaml",
            "tests/fixtures/packetdrill",
            "--format",
            "ktap",
            "--out",
        ])
        .arg(&dir)
        .output()
        .expect("tcpconform runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "failures make it exit 1:\n{stdout}");

    let text = std::fs::read_to_string(dir.join("ktap.txt")).expect("ktap.txt is written");
    let ktap = parse::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).expect("report.json")).expect("JSON");
    let results = report["results"].as_array().expect("results");
    parse::check_against_report(&ktap, results).unwrap_or_else(|e| panic!("{e}\n{text}"));

    // The set's verdicts, so that every kind of line is checked.
    let lines: Vec<(&str, &str)> = ktap.tests.iter().map(|t| (t.name.as_str(), t.verdict())).collect();
    assert_eq!(
        lines,
        [
            ("absent.ipv4", "skip"),
            ("absent.ipv6", "skip"),
            ("inet_only.ipv4", "pass"),
            ("inet_only.ipv6", "skip"),
            ("listener.ipv4", "pass"),
            ("listener.ipv6", "pass"),
            ("opening/passive_handshake.ipv4", "pass"),
            ("opening/passive_handshake.ipv6", "pass"),
            ("wrong_ack.ipv4", "fail"),
            ("wrong_ack.ipv6", "fail"),
            ("wrong_synack.ipv4", "fail"),
            ("wrong_synack.ipv6", "fail"),
        ]
    );
    let skip = &ktap.tests[3];
    assert_eq!(
        skip.directive.as_ref().map(|(_, why)| why.as_str()),
        Some("unsupported: tests/fixtures/packetdrill/inet_only.pkt:2:12: sockets of another family than the run's")
    );
    assert_eq!(ktap.trailer, ["Totals: pass:5 fail:4 xfail:0 xpass:0 skip:3 error:0"]);

    // Standard output is the same KTAP (its header's date aside).
    let body = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("# tcpconform "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(&stdout), body(&text), "stdout:\n{stdout}");
}
