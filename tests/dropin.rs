//! `tcpconform packetdrill`, the drop-in for kselftest, on the project's
//! fixtures (`tests/fixtures/packetdrill/`): its exit statuses and
//! packetdrill's kind of error line. Every corpus script through the drop-in
//! against `tcpconform run` is tests/corpus.rs's, which shares its run of
//! the corpus. Needs root.

use std::path::{Path, PathBuf};
use std::process::Command;

fn tcpconform() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tcpconform"));
    c.env_remove("KSFT_MACHINE_SLOW");
    c
}

#[test]
fn exit_statuses_and_error_lines_are_packetdrills() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/packetdrill");
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dropin-out");
    let _ = std::fs::remove_dir_all(&out_dir);
    let drop_in = |args: &[&str]| {
        let out = tcpconform()
            .current_dir(&fixtures)
            .arg("packetdrill")
            .args(args)
            .env("TCPCONFORM_OUT", &out_dir)
            .output()
            .expect("tcpconform runs");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, stderr) = drop_in(&["--ip_version=ipv6", "--local_ip=2001:db8:a::7", "listener.pkt"]);
    assert_eq!((code, stderr.as_str()), (Some(0), ""), "a pass says nothing");
    assert!(
        out_dir.join("listener.ipv6/report.json").is_file(),
        "TCPCONFORM_OUT gets the report"
    );

    let (code, stderr) = drop_in(&["wrong_synack.pkt"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.starts_with(
            "wrong_synack.pkt:8: error handling packet: the kernel's segment differs from the case\n    expected  > S. 0:0(0) ack 2 <...>\n"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("    ack: expected 2, got 1\n"), "{stderr}");

    let (code, stderr) = drop_in(&["--ip_version=ipv6", "inet_only.pkt"]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(
        stderr.starts_with("inet_only.pkt:2: skipped: tcpconform does not support this: sockets of another family"),
        "{stderr}"
    );

    let (code, stderr) = drop_in(&["--wire_server", "listener.pkt"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.starts_with(
            "tcpconform packetdrill: `--wire_server` is a packetdrill option tcpconform does not implement"
        ),
        "{stderr}"
    );
    let (code, stderr) = drop_in(&["--tolerance_usec=4000", "listener.pkt"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("unknown option `--tolerance_usec` (did you mean `tolerance_usecs`?)"),
        "{stderr}"
    );
}
