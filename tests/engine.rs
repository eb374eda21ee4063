//! The engine fails what it must, precisely: every fixture under
//! `tests/fixtures/failing/` breaks one expectation, and the run must fail
//! (exit 1) on both families with a message that names the file, line and
//! column, the field, what was expected and what came. The fixtures under
//! `tests/fixtures/passing/` are their counterparts that must pass.

use std::process::Command;

/// Runs one fixture on both families; returns the output of the failing run.
fn failing(fixture: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .args(["run", &format!("tests/fixtures/failing/{fixture}.yaml")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{fixture} should fail:\n{stdout}");
    for family in ["ipv4", "ipv6"] {
        assert!(stdout.contains(&format!("FAIL  {fixture}::{family} ")), "{stdout}");
    }
    assert!(stdout.contains("0 passed, 2 failed"), "{stdout}");
    stdout
}

/// Runs one fixture that must pass on both families.
fn passing(fixture: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .args(["run", &format!("tests/fixtures/passing/{fixture}.yaml")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{fixture} should pass:\n{stdout}");
    assert!(stdout.contains("2 passed, 0 failed"), "{stdout}");
}

fn has(out: &str, lines: &[&str]) {
    for line in lines {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
}

#[test]
fn a_wrong_ack_names_the_line_the_field_and_both_values() {
    has(
        &failing("wrong_ack"),
        &[
            "tests/fixtures/failing/wrong_ack.yaml:9:13: expect: the kernel's segment differs from the case",
            "expected  S. 0:0(0) ack 2 <mss $mss>",
            "actual    S. 0:0(0) ack 1 win ",
            "ack: expected 2, got 1",
            "frames since the previous step:",
            "< S 0:0(0) win 65535 <mss 1460>  [c]",
        ],
    );
}

#[test]
fn a_frame_no_step_expects_fails_the_case() {
    has(
        &failing("unexpected_frame"),
        &[
            "tests/fixtures/failing/unexpected_frame.yaml:8:13: the kernel sent 1 frame(s) that no step expects, after this inject step:",
            "> S. 0:0(0) ack 1 win ",
        ],
    );
}

#[test]
fn a_call_that_never_returns_is_interrupted_at_its_deadline() {
    has(
        &failing("stuck_call"),
        &[
            "tests/fixtures/failing/stuck_call.yaml:12:11: call: `recv(conn, 10)` did not return within 0.2s; it was interrupted",
            "then it returned -1 EINTR",
        ],
    );
}

#[test]
fn an_unannounced_sigpipe_fails_the_case_and_the_harness_survives_it() {
    has(
        &failing("unannounced_sigpipe"),
        &[
            "tests/fixtures/failing/unannounced_sigpipe.yaml:14:11: call: `send(conn, \"x\") = EPIPE` did not do what the case says",
            "signal: the call raised SIGPIPE (say `signal: SIGPIPE` if that is expected)",
        ],
    );
}

#[test]
fn a_segment_before_its_time_fails_the_case() {
    has(
        &failing("too_early"),
        &[
            "tests/fixtures/failing/too_early.yaml:9:13: expect: the segment came at the wrong time",
            "time: arrived too early: at ",
            "due 0.100000s after the previous step",
        ],
    );
}

#[test]
fn isn_new_fails_when_the_kernel_reuses_an_isn() {
    has(
        &failing("isn_reused"),
        &[
            "tests/fixtures/failing/isn_reused.yaml:12:13: expect: the kernel's segment differs from the case",
            "isn: expected a new ISN, got ",
            "which the kernel already used at ",
            "on flow `c`",
        ],
    );
}

#[test]
fn isn_new_passes_for_a_new_connection_on_the_same_ports() {
    passing("isn_new_connection");
}

#[test]
fn a_failure_says_when_the_harness_ran_a_step_late() {
    has(
        &failing("late_step"),
        &[
            "tests/fixtures/failing/late_step.yaml:12:12: state: flow c is SYN_RECV, the case expects ESTABLISHED",
            "note: the harness ran the step at tests/fixtures/failing/late_step.yaml:12:12 0.1",
            "s after it was due; on a loaded or paused machine",
        ],
    );
}

#[test]
fn since_counts_after_from_the_named_step() {
    passing("since");
    // Without `since`, the same SYN-ACK is 100 ms early for a step due right after the wait.
    has(
        &failing("no_since"),
        &["arrived too early", "due 0.000000s after the previous step"],
    );
}

/// A failure while the harness was behind its own timeline is run again,
/// once, and the result says so; the kernel is not blamed silently either
/// way (the second attempt falls behind too, so the case still fails).
#[test]
fn a_failure_while_the_harness_fell_behind_runs_the_case_a_second_time() {
    let out_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("harness-behind");
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .args(["run", "tests/fixtures/late/harness_behind.pkt", "--out"])
        .arg(&out_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    has(
        &stdout,
        &["FAIL  harness_behind::ipv4 ", "note: the harness ran the step at"],
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap()).unwrap();
    let result = &report["results"][0];
    assert_eq!(
        result["notes"][0].as_str().unwrap_or_default(),
        "run twice: the first attempt failed while the harness ran behind the case's timeline \
         (tests/fixtures/late/harness_behind.pkt:13:1: expect: the segment came at the wrong time); \
         the second ran alone"
    );
    // The exchange is the second attempt's alone: one SYN, one SYN-ACK.
    let frames = result["exchange"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "frame")
        .count();
    assert_eq!(frames, 2, "{result}");
}

/// A failure on a time alone (a segment's arrival, a TS val) may be a paused
/// machine's, so it runs again, alone; a failure on anything else is the
/// kernel's at once, and runs once.
#[test]
fn a_failure_on_a_time_alone_runs_again_alone_and_no_other_does() {
    let out_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("time-alone");
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .args([
            "run",
            "tests/fixtures/failing/too_early.yaml",
            "tests/fixtures/failing/wrong_ack.yaml",
            "tests/fixtures/late/ts_val_off.pkt",
            "--out",
        ])
        .arg(&out_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 5, "{report}");
    for result in results {
        assert_eq!(result["verdict"], "fail", "{result}");
        // A result with no notes has no `notes`.
        let notes: Vec<&str> = result["notes"]
            .as_array()
            .map_or(Vec::new(), |n| n.iter().filter_map(|n| n.as_str()).collect());
        let twice = notes.iter().filter(|n| n.starts_with("run twice:")).count();
        match result["id"].as_str().unwrap() {
            "too_early" => assert_eq!(
                notes.first().copied().unwrap_or_default(),
                "run twice: the first attempt failed on a time alone \
                 (tests/fixtures/failing/too_early.yaml:9:13: expect: the segment came at the wrong time); \
                 the second ran alone",
                "{result}"
            ),
            "ts_val_off" => assert_eq!(
                notes.first().copied().unwrap_or_default(),
                "run twice: the first attempt failed on a time alone \
                 (tests/fixtures/late/ts_val_off.pkt:22:1: expect: the kernel's segment differs from the case); \
                 the second ran alone",
                "{result}"
            ),
            "wrong_ack" => assert_eq!(twice, 0, "{result}"),
            other => panic!("unexpected case {other}"),
        }
    }
}
