//! The host is never touched: after a run, and after a run killed with
//! SIGKILL at several points, the host's links, addresses, routes,
//! neighbours, named network namespaces and network sysctls are exactly as
//! they were. Labs live in anonymous namespaces held by the process's file
//! descriptors, so the kernel removes them with the process.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Everything about the host's networking that a harness could change.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    commands: BTreeMap<String, String>,
    sysctls: BTreeMap<String, String>,
    named_netns: Vec<String>,
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("iproute2's ip is installed");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Neighbour lines without their state, which the kernel changes on its own (REACHABLE, STALE).
fn neighbours(args: &[&str]) -> String {
    ip(args)
        .lines()
        .map(|l| {
            l.split_whitespace()
                .take_while(|w| *w != "REACHABLE" && *w != "STALE" && *w != "DELAY" && *w != "PROBE")
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn sysctls(dir: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sysctls(&path, out);
        } else if let Ok(value) = std::fs::read_to_string(&path) {
            out.insert(path.display().to_string(), value);
        }
    }
}

fn snapshot() -> Snapshot {
    let mut commands = BTreeMap::new();
    for args in [
        &["-d", "-o", "link", "show"][..],
        &["-o", "addr", "show"],
        &["-4", "route", "show", "table", "all"],
        &["-6", "route", "show", "table", "all"],
        &["-4", "rule", "show"],
        &["-6", "rule", "show"],
    ] {
        commands.insert(args.join(" "), ip(args));
    }
    commands.insert("neigh".into(), neighbours(&["neigh", "show"]));
    commands.insert("netns".into(), ip(&["netns", "list"]));
    let mut values = BTreeMap::new();
    sysctls(Path::new("/proc/sys/net"), &mut values);
    let named_netns = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    Snapshot {
        commands,
        sysctls: values,
        named_netns,
    }
}

fn assert_same(before: &Snapshot, after: &Snapshot, when: &str) {
    for (k, v) in &before.commands {
        assert_eq!(Some(v), after.commands.get(k), "{when}: `ip {k}` changed");
    }
    let changed: Vec<&String> = before
        .sysctls
        .iter()
        .filter(|(k, v)| after.sysctls.get(*k) != Some(v))
        .map(|(k, _)| k)
        .chain(after.sysctls.keys().filter(|k| !before.sysctls.contains_key(*k)))
        .collect();
    assert!(changed.is_empty(), "{when}: host sysctls changed: {changed:?}");
    assert_eq!(before.named_netns, after.named_netns, "{when}: /run/netns changed");
}

fn tcpconform() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tcpconform"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

#[test]
fn a_whole_run_leaves_the_host_as_it_was() {
    let before = snapshot();
    let status = tcpconform()
        .args(["run", "cases", "tests/fixtures/slow"])
        .status()
        .unwrap();
    assert!(status.code() == Some(0), "the run failed: {status}");
    assert_same(&before, &snapshot(), "after a run");
}

#[test]
fn a_run_killed_at_any_point_leaves_the_host_as_it_was() {
    let before = snapshot();
    // During lab setup, in the middle of cases, and while slow cases wait.
    for delay_ms in [5, 40, 400] {
        let mut child = tcpconform()
            .args(["run", "cases", "tests/fixtures/slow"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_same(&before, &snapshot(), &format!("after SIGKILL at {delay_ms} ms"));
    }
}

/// Runs one fixture with the binary (which gets privileges as a user's run does) and returns its output.
fn run_fixture(file: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .args(["run", file, "--family", "ipv4"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_knob_the_kernel_lacks_skips_the_case() {
    let out = run_fixture("tests/fixtures/sysctl/absent.yaml");
    assert!(
        out.contains("SKIP  absent::ipv4 ") && out.contains(": net.ipv4.tcp_tw_recycle does not exist on this kernel"),
        "{out}"
    );
}

#[test]
fn a_knob_that_is_not_namespaced_is_never_written() {
    let before = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_mem").unwrap();
    let out = run_fixture("tests/fixtures/sysctl/not_namespaced.yaml");
    assert!(
        out.contains("SKIP  not_namespaced::ipv4 ") && out.contains(": net.ipv4.tcp_mem is not namespaced"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string("/proc/sys/net/ipv4/tcp_mem").unwrap(), before);
}
