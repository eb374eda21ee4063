//! The report end to end: `tcpconform run cases --out DIR` twice on the
//! running kernel, then every file checked by the tools people read it
//! with: `report.json` against its schema, `junit.xml`, `ktap.txt` read
//! back as KTAP, the captures in tshark, `index.html` in headless Chromium,
//! and `tcpconform compare` of the two runs, which must find nothing but
//! timings.
//!
//! Like `cargo test` of the cases, this needs root (or CAP_SYS_ADMIN and
//! CAP_NET_ADMIN), and it needs tshark and Chromium: `.ci/run` installs
//! them. A missing tool fails the test with a message saying so.

#[path = "report/chromium.rs"]
mod chromium;
#[path = "ktap/parse.rs"]
mod parse;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use tcpconform::report::capture_file_name;

/// How long a browser check may take before it counts as hung.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

fn scratch() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// Runs the suite into `dir` with the real binary, as a person would.
fn run_suite(dir: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    let out = Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .arg("run")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("cases"))
        .arg("--out")
        .arg(dir)
        .output()
        .map_err(|e| format!("cannot start tcpconform: {e}"))?;
    let code = out.status.code();
    // 0: all passed; 1: some case failed, which is the kernel's business, not the report's.
    if !matches!(code, Some(0 | 1)) {
        return Err(format!(
            "tcpconform run exited {code:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// The two runs every test here looks at, made once, one after the other
/// (side by side, the load made the packetdrill cases' 4 ms timing miss).
fn runs() -> &'static (PathBuf, PathBuf) {
    static RUNS: OnceLock<Result<(PathBuf, PathBuf), String>> = OnceLock::new();
    let made = RUNS.get_or_init(|| {
        let a = scratch().join("report-run-a");
        let b = scratch().join("report-run-b");
        run_suite(&a)?;
        run_suite(&b)?;
        Ok((a, b))
    });
    match made {
        Ok(runs) => runs,
        Err(e) => panic!("{e}"),
    }
}

fn report(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json is there");
    serde_json::from_str(&text).expect("report.json is JSON")
}

fn results(report: &Value) -> &Vec<Value> {
    report["results"].as_array().expect("results is an array")
}

fn frames(result: &Value) -> Vec<&Value> {
    result["exchange"]
        .as_array()
        .expect("exchange is an array")
        .iter()
        .filter(|e| e["kind"] == "frame")
        .collect()
}

#[test]
fn report_json_has_the_documented_shape_and_every_case_run() {
    let (a, _) = runs();
    let r = report(a);
    assert_eq!(r["schema"], "tcpconform-report/1");
    // Keys in the documented order: read them off the text, at the top level's indentation.
    let text = std::fs::read_to_string(a.join("report.json")).expect("report.json");
    let keys: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("  \"")?.split_once("\":").map(|(k, _)| k))
        .collect();
    assert_eq!(
        keys,
        [
            "schema",
            "tool",
            "date",
            "duration_ms",
            "kernel",
            "tolerance_ms",
            "slack_ms",
            "max_slack_ms",
            "summary",
            "coverage",
            "requirements",
            "results"
        ]
    );
    assert_eq!(r["tool"]["name"], "tcpconform");
    assert_eq!(r["tolerance_ms"], 10.0);
    let release = nix::sys::utsname::uname().expect("uname");
    assert_eq!(r["kernel"]["release"], release.release().to_string_lossy().as_ref());
    assert!(r["kernel"]["sysctls"]["net.ipv4.tcp_rmem"].is_string());
    assert!(r["kernel"]["sysctls"].get("net.ipv4.tcp_fastopen_key").is_none());

    let cases = tcpconform::suite::load(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("cases")]).expect("cases load");
    let mut expected: Vec<String> = tcpconform::suite::plan(&cases, None)
        .iter()
        .map(|(c, f)| format!("{}::{f}", c.id))
        .collect();
    expected.sort();
    let names: Vec<String> = results(&r)
        .iter()
        .map(|x| {
            format!(
                "{}::{}",
                x["id"].as_str().unwrap_or(""),
                x["family"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(names, expected, "one result per case and family, sorted");

    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for x in results(&r) {
        let verdict = x["verdict"].as_str().expect("a verdict");
        assert!(["pass", "fail", "skip", "error"].contains(&verdict));
        assert_eq!(x["reason"].is_null(), verdict == "pass", "{}", x["id"]);
        *counts.entry(verdict.into()).or_default() += 1;
        for e in x["exchange"].as_array().expect("exchange") {
            assert!(e["at_ms"].is_number(), "{e}");
            match e["kind"].as_str().expect("kind") {
                "frame" => {
                    assert!(["to_kernel", "from_kernel"].contains(&e["direction"].as_str().expect("direction")));
                    assert!(e["segment"].is_string() && e["length"].as_u64().is_some_and(|n| n >= 54));
                }
                "call" => assert!(e["call"].is_string() && e["result"].is_string() && e["returned_ms"].is_number()),
                "state" => assert!(e["target"].is_string() && e["state"].is_string()),
                "sysctl" => assert!(e["name"].is_string()),
                "accept_queue" => assert!(e["len"].is_u64() && e["limit"].is_u64()),
                "command" => assert!(
                    e["command"].is_string()
                        && e["status"].is_string()
                        && e["output"].is_string()
                        && e["returned_ms"].is_number()
                ),
                other => panic!("undocumented entry kind {other}"),
            }
        }
    }
    for v in ["pass", "fail", "skip", "error"] {
        assert_eq!(
            r["summary"][v].as_u64(),
            Some(counts.get(v).copied().unwrap_or(0)),
            "{v}"
        );
    }
    assert_eq!(r["summary"]["total"].as_u64(), Some(names.len() as u64));
    assert_eq!(r["coverage"].as_object().expect("coverage").len(), 42);
    let covered = &r["coverage"]["B01"]["runs"];
    assert!(covered.as_array().is_some_and(|runs| !runs.is_empty()), "{covered}");
    // Every requirement of docs/RFC9293.md, each run naming it among its runs.
    let rows = r["requirements"]["rows"].as_array().expect("requirement rows");
    assert_eq!(rows.len(), tcpconform::requirements::table().len());
    for row in rows {
        let id = row["id"].as_str().expect("an ID");
        let naming = results(&r)
            .iter()
            .filter(|x| {
                x["requirements"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|i| i == id))
            })
            .count();
        assert_eq!(row["runs"].as_array().map(Vec::len), Some(naming), "{id}");
    }
    let levels: Vec<&str> = r["requirements"]["summary"]
        .as_array()
        .expect("requirement summary")
        .iter()
        .filter_map(|l| l["level"].as_str())
        .collect();
    assert_eq!(levels, ["MUST", "SHLD"]);
}

#[test]
fn ktap_txt_of_the_suite_parses_and_says_what_report_json_says() {
    let (a, _) = runs();
    let r = report(a);
    let text = std::fs::read_to_string(a.join("ktap.txt")).expect("ktap.txt is there");
    let ktap = parse::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    parse::check_against_report(&ktap, results(&r)).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let failed = ktap.tests.iter().filter(|t| t.verdict() == "fail").count();
    assert_eq!(Some(failed as u64), r["summary"]["fail"].as_u64());
    assert_eq!(ktap.trailer.len(), 1, "only the totals follow the last test");
}

#[test]
fn junit_has_one_test_case_per_case_run_and_no_stray_files_are_left() {
    let (a, _) = runs();
    let r = report(a);
    let xml = std::fs::read_to_string(a.join("junit.xml")).expect("junit.xml is there");
    assert!(xml.starts_with("<?xml"));
    assert_eq!(xml.matches("<testcase ").count(), results(&r).len());
    for x in results(&r) {
        let name = format!(
            "name=\"{}::{}\"",
            x["id"].as_str().unwrap_or(""),
            x["family"].as_str().unwrap_or("")
        );
        assert!(xml.contains(&name), "{name} is in junit.xml");
    }
    let failures = results(&r).iter().filter(|x| x["verdict"] == "fail").count();
    assert_eq!(xml.matches("<failure ").count(), failures);
    let mut names: Vec<String> = std::fs::read_dir(a)
        .expect("listable")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["index.html", "junit.xml", "ktap.txt", "pcap", "report.json"]);
}

/// The TCP flags byte a segment's notation names (`S.` is SYN|ACK).
fn flags_of(segment: &str) -> u64 {
    let word = segment.split(' ').next().unwrap_or_default();
    word.chars()
        .map(|c| match c {
            'F' => 0x01,
            'S' => 0x02,
            'R' => 0x04,
            'P' => 0x08,
            '.' => 0x10,
            'U' => 0x20,
            'E' => 0x40,
            'W' => 0x80,
            _ => 0,
        })
        .sum()
}

#[test]
fn tshark_decodes_every_capture_as_the_report_describes_it() {
    let tshark = Path::new("/usr/bin/tshark");
    assert!(
        tshark.exists(),
        "/usr/bin/tshark is missing: this test needs it (`.ci/run` installs it: apt-get install tshark)"
    );
    let (a, _) = runs();
    let r = report(a);
    let mut checked = 0;
    for x in results(&r) {
        let frames = frames(x);
        let file = a.join("pcap").join(capture_file_name(
            x["id"].as_str().unwrap_or(""),
            x["family"].as_str().unwrap_or(""),
        ));
        if frames.is_empty() {
            assert!(!file.exists(), "{} has no frames, so no capture", x["id"]);
            continue;
        }
        let out = Command::new(tshark)
            .arg("-r")
            .arg(&file)
            .args(["-T", "fields", "-E", "separator=|", "-e", "frame.time_relative"])
            .args(["-e", "_ws.col.Protocol", "-e", "tcp.flags", "-e", "frame.comment"])
            .output()
            .expect("tshark runs");
        assert!(
            out.status.success(),
            "tshark -r {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), frames.len(), "{}: one packet per frame", file.display());
        let t0 = frames[0]["at_ms"].as_f64().expect("at_ms");
        for (line, frame) in lines.iter().zip(&frames) {
            let fields: Vec<&str> = line.split('|').collect();
            let segment = frame["segment"].as_str().expect("segment");
            let when: f64 = fields[0].parse().expect("a time");
            let at = frame["at_ms"].as_f64().expect("at_ms");
            assert!(
                (when * 1e3 - (at - t0)).abs() < 0.002,
                "{}: packet at {when}s, report at {at} ms",
                file.display()
            );
            if frame["flow"].is_string() && segment.starts_with("< icmp") {
                // An injected ICMP message (a packetdrill script's), of its flow.
                assert!(
                    matches!(fields[1], "ICMP" | "ICMPv6"),
                    "{}: {segment} decoded as {}",
                    file.display(),
                    fields[1]
                );
                assert!(
                    fields[3].ends_with(segment),
                    "the comment carries the notation: {}",
                    fields[3]
                );
            } else if frame["flow"].is_string() {
                assert_eq!(fields[1], "TCP", "{}: {segment}", file.display());
                let flags = u64::from_str_radix(fields[2].trim_start_matches("0x"), 16).expect("hex flags");
                assert_eq!(flags & 0xff, flags_of(segment), "{}: {segment}", file.display());
                assert!(
                    fields[3].ends_with(segment),
                    "the comment carries the notation: {}",
                    fields[3]
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "some frames were checked");
}

#[test]
fn the_page_renders_in_chromium_with_one_diagram_per_case_and_no_errors() {
    chromium::binary();
    let (a, _) = runs();
    let r = report(a);
    let page = a.join("index.html").canonicalize().expect("index.html is there");
    let expression = r#"JSON.stringify({
        cases: document.querySelectorAll('article.case').length,
        ladders: document.querySelectorAll('article.case svg.ladder').length,
        drawn: [...document.querySelectorAll('article.case svg.ladder')]
            .filter(s => { const b = s.getBoundingClientRect(); return b.width > 300 && b.height > 40; }).length,
        arrows: document.querySelectorAll('svg.ladder g.frame').length,
        ids: [...document.querySelectorAll('article.case')].map(a => a.id),
        coverage: document.querySelectorAll('#coverage tr[id]').length,
    })"#;
    let loaded = chromium::load(
        &format!("file://{}", page.display()),
        expression,
        BROWSER_TIMEOUT,
        &scratch(),
    )
    .expect("the page loads");
    assert_eq!(loaded.errors, Vec::<String>::new(), "console errors");
    assert_eq!(loaded.fetches, Vec::<String>::new(), "the page is self-contained");
    let v = &loaded.value;
    let n = results(&r).len() as u64;
    assert_eq!(v["cases"], n, "{v}");
    assert_eq!(v["ladders"], n, "one diagram per case run: {v}");
    assert_eq!(v["drawn"], n, "every diagram has a size on the page: {v}");
    let all_frames: usize = results(&r).iter().map(|x| frames(x).len()).sum();
    assert_eq!(v["arrows"], all_frames as u64, "one arrow per frame: {v}");
    assert_eq!(v["coverage"], 42);
    let ids: Vec<&str> = v["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "anchors are unique");
}

#[test]
fn the_browser_check_sees_console_errors_exceptions_failed_loads_and_fetches() {
    chromium::binary();
    let page = scratch().join("broken-page.html");
    std::fs::write(
        &page,
        r#"<!DOCTYPE html><html><body><img src="missing.png"><img src="http://192.0.2.9/x.png">
<script>console.error("boom"); console.log("harmless-log-line"); undefinedFunction();</script></body></html>"#,
    )
    .expect("page written");
    let loaded = chromium::load(
        &format!("file://{}", page.display()),
        "JSON.stringify(1)",
        BROWSER_TIMEOUT,
        &scratch(),
    )
    .expect("the page loads");
    let all = loaded.errors.join("\n");
    assert!(all.contains("console.error") && all.contains("boom"), "{all}");
    assert!(all.contains("exception") && all.contains("undefinedFunction"), "{all}");
    assert!(all.contains("missing.png"), "{all}");
    assert!(!all.contains("harmless-log-line"), "console.log is not an error: {all}");
    assert_eq!(loaded.fetches, ["http://192.0.2.9/x.png"]);
}

#[test]
fn two_runs_on_this_kernel_compare_equal_apart_from_timings() {
    let (a, b) = runs();
    let out = scratch().join("report-compare");
    let _ = std::fs::remove_dir_all(&out);
    let done = Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .arg("compare")
        .arg(a.join("report.json"))
        .arg(b)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("tcpconform compare runs");
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert_eq!(
        done.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let c: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("compare.json")).expect("compare.json")).expect("JSON");
    assert_eq!(c["schema"], "tcpconform-compare/1");
    assert_eq!(c["summary"]["differs"], 0, "{stdout}");
    assert_eq!(c["summary"]["total"], results(&report(a)).len() as u64);
    assert_eq!(c["settings"], Value::Array(vec![]), "same kernel, same settings");
    let md = std::fs::read_to_string(out.join("compare.md")).expect("compare.md");
    assert!(md.contains("None: every case has the same verdict"), "{md}");

    chromium::binary();
    let page = out.join("compare.html").canonicalize().expect("compare.html");
    let loaded = chromium::load(
        &format!("file://{}", page.display()),
        "JSON.stringify({rows: document.querySelectorAll('table.matrix tr').length - 1, links: [...document.querySelectorAll('table.matrix a')].map(a => a.href)})",
        BROWSER_TIMEOUT,
        &scratch(),
    )
    .expect("the page loads");
    assert_eq!(loaded.errors, Vec::<String>::new());
    assert_eq!(loaded.value["rows"], c["summary"]["total"]);
    let links = loaded.value["links"].as_array().expect("links");
    let first = links.first().and_then(Value::as_str).expect("a link per verdict");
    let target = first
        .strip_prefix("file://")
        .and_then(|p| p.split('#').next())
        .expect("a file link");
    assert!(
        Path::new(target).exists(),
        "matrix links lead to the runs' pages: {first}"
    );
}

/// `major.minor` of a kernel release (`6.18` of `6.18.44-fc-v595`).
fn series(release: &str) -> String {
    release.split('.').take(2).collect::<Vec<_>>().join(".")
}

#[test]
fn the_reference_report_of_this_kernel_series_matches_a_fresh_run() {
    let (a, _) = runs();
    let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
    let mine = series(report(a)["kernel"]["release"].as_str().expect("release"));
    let mut references: Vec<PathBuf> = std::fs::read_dir(&reports)
        .expect("reports/ is there")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("report.json").exists())
        .collect();
    references.sort();
    assert!(!references.is_empty(), "reports/ holds a reference report");
    let reference = reports.join(&mine);
    let same_series = reference.join("report.json").exists();
    let against = if same_series {
        reference
    } else {
        references.pop().expect("one")
    };
    let out = scratch().join("report-compare-reference");
    let _ = std::fs::remove_dir_all(&out);
    let done = Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .arg("compare")
        .arg(&against)
        .arg(a)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("tcpconform compare runs");
    let stdout = String::from_utf8_lossy(&done.stdout);
    let c: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("compare.json")).expect("compare.json")).expect("JSON");
    if same_series {
        // The reference is this kernel's: a stale one (cases added or changed
        // since) shows here. Regenerate it with reports/regenerate.
        assert_eq!(
            done.status.code(),
            Some(0),
            "{} is stale; run reports/regenerate:\n{stdout}",
            against.display()
        );
        assert_eq!(c["summary"]["differs"], 0);
    } else {
        // Another kernel: differences are its own; the comparison must still be whole.
        assert!(matches!(done.status.code(), Some(0 | 1)), "{stdout}");
        assert!(c["summary"]["total"].as_u64().is_some_and(|n| n > 0));
    }
}
