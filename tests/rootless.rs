//! The suite runs without root: an unprivileged user gets a user namespace
//! of tcpconform's own (where the kernel allows it) and every case passes.
//! Run as root, this test drops to the `nobody` user (uid 65534) to check it.
//! The packetdrill scripts (`cases/packetdrill`) are left out: their labs
//! are built on a tun device, and /dev/net/tun may be root's alone (mode 0600).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

#[test]
fn the_suite_passes_as_an_unprivileged_user() {
    let mut cases: Vec<_> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "packetdrill"))
        .collect();
    cases.sort();
    let mut run = Command::new(env!("CARGO_BIN_EXE_tcpconform"));
    run.arg("run").args(cases).current_dir(env!("CARGO_MANIFEST_DIR"));
    if nix::unistd::getuid().is_root() {
        // std drops the supplementary groups when it sets the uid.
        run.uid(65534).gid(65534);
    }
    let out = run.output().unwrap_or_else(|e| {
        panic!(
            "{} does not run as this test's user: {e}; the checkout and its target directory \
             must be readable and searchable by every user (uid 65534 here)",
            env!("CARGO_BIN_EXE_tcpconform")
        )
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stdout}\n{stderr}", out.status);
    assert!(
        stderr.contains("labs are built in a user namespace"),
        "the run did not use a user namespace:\n{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed, 0 skipped, 0 errors"), "{stdout}");
}
