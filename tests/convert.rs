//! `tcpconform convert`: a packetdrill script's YAML case says the same as
//! the script. The binary's output is the library's YAML of the lowered
//! case, and the converted case run on the kernel gets the script's verdict
//! (a pass, on scripts that pass).
//! Scripts come from the kernel's packetdrill corpus in `shared/corpora`
//! beside the repository (or a worktree's); without it the tests say
//! "skipped: no corpus". Running cases needs the privileges to build labs.

use std::path::{Path, PathBuf};
use std::process::Command;

use tcpconform::case::yaml_out::to_yaml;
use tcpconform::case::{Case, load_str};
use tcpconform::engine::{self, Options};
use tcpconform::event::Verdict;
use tcpconform::packet::Family;

/// The corpus directory, when it is there.
fn corpus() -> Option<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/corpora/linux-packetdrill"))
        .find(|d| d.is_dir())
}

/// `tcpconform convert ARGS`: exit code, stdout, stderr.
fn convert(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .arg("convert")
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn describe(v: &Verdict) -> String {
    match v {
        Verdict::Pass => "pass".into(),
        Verdict::Fail(m) => format!("fail: {m}"),
        Verdict::Skip(m) => format!("skip: {m}"),
        Verdict::Error(m) => format!("error: {m}"),
    }
}

/// Converts `script` for `family` with the binary, checks the output is the
/// library's, and returns the lowered case and the converted one, the latter
/// loaded as if written beside the script (its commands run there).
fn both(dir: &Path, script: &str, family: Family) -> (Case, Case) {
    let pkt = dir.join(format!("{script}.pkt"));
    let (code, yaml, stderr) = convert(&[pkt.to_str().expect("a UTF-8 path"), "--family", family.name()]);
    assert_eq!(code, Some(0), "{stderr}");
    let lowered = tcpconform::packetdrill::load(&pkt)
        .expect("the script loads")
        .into_iter()
        .find(|c| c.families == [family])
        .expect("the script runs on the family");
    assert_eq!(yaml, to_yaml(&lowered).expect("the case has a YAML form"));
    let converted = load_str(&dir.join(format!("{script}.converted.yaml")), &yaml).unwrap_or_else(|e| panic!("{e}"));
    (lowered, converted)
}

#[test]
fn converted_scripts_get_the_scripts_verdicts() {
    let Some(dir) = corpus() else {
        println!("skipped: no corpus");
        return;
    };
    if let Err(missing) = tcpconform::lab::init() {
        println!("skipped: {missing}");
        return;
    }
    // A blocking connect, data and a close; epoll and the error queue; a file sent with sendfile.
    for (script, family) in [
        ("tcp_basic_client", Family::Ipv4),
        ("tcp_basic_client", Family::Ipv6),
        ("tcp_zerocopy_epoll_edge", Family::Ipv4),
        ("tcp_sendfile_sendfile-simple", Family::Ipv6),
    ] {
        let (lowered, converted) = both(&dir, script, family);
        // The exchanges are timed to a few milliseconds: on a loaded machine
        // either run may be late, so both get the slack for noisy machines
        // and a few tries to pass together.
        let options = Options {
            slack: engine::MAX_SLACK,
            ..Options::default()
        };
        let mut tries = Vec::new();
        for _ in 0..ATTEMPTS {
            let pkt = engine::run(&lowered, family, &options).verdict;
            let yaml = engine::run(&converted, family, &options).verdict;
            if (&pkt, &yaml) == (&Verdict::Pass, &Verdict::Pass) {
                break;
            }
            tries.push(format!(
                "the script's verdict: {}\n  the converted case's: {}",
                describe(&pkt),
                describe(&yaml)
            ));
        }
        assert!(
            tries.len() < ATTEMPTS,
            "{script} on {family} never passed both ways:\n  {}",
            tries.join("\n  ")
        );
    }
}

/// How many times a script and its conversion may run before both must have passed.
const ATTEMPTS: usize = 3;

#[test]
fn convert_refuses_what_it_cannot_write() {
    let (code, stdout, stderr) = convert(&["cases/opening/closed_port.yaml"]);
    assert_eq!((code, stdout.as_str()), (Some(2), ""));
    assert_eq!(
        stderr,
        "cases/opening/closed_port.yaml: convert takes a packetdrill script (.pkt)\n"
    );
    let Some(dir) = corpus() else {
        println!("skipped: no corpus");
        return;
    };
    // The corpus's ICMP scripts pin their family.
    let pinned = std::fs::read_dir(&dir)
        .expect("the corpus is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.extension().is_some_and(|e| e == "pkt")
                && std::fs::read_to_string(p).is_ok_and(|t| t.contains("--ip_version=ipv4"))
        })
        .expect("a script that runs on IPv4 only");
    let (code, stdout, stderr) = convert(&[pinned.to_str().expect("a UTF-8 path"), "--family", "ipv6"]);
    assert_eq!((code, stdout.as_str()), (Some(2), ""));
    assert!(
        stderr.ends_with(": the script does not run on ipv6, only on ipv4 (--ip_version)\n"),
        "{stderr}"
    );
}
