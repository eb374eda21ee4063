//! The host's networking as a harness could change it, snapshotted to
//! compare before and after a run: links, addresses, routes, rules,
//! neighbours, named network namespaces and every network sysctl.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Everything about the host's networking that a harness could change.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
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

pub fn snapshot() -> Snapshot {
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

pub fn assert_same(before: &Snapshot, after: &Snapshot, when: &str) {
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
