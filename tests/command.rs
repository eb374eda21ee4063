//! Commands a case runs stay in its lab: they see and change the lab's
//! network namespace, never the host's; they write only their private
//! /tmp and the lab's /proc/sys/net; they cannot get back what they were
//! denied; they end, with everything they started, at their time limit.
//! And the Python program of a script's `%{ }%` blocks reports the first
//! failing block, on snapshots of real sockets.
//!
//! Each test runs on a thread of its own in a throwaway network namespace
//! (unshare(CLONE_NEWNET)). Run as root, each runs again as an
//! unprivileged user (uid 65534): once in a user namespace of its own, as
//! tcpconform does without root, and once with the labs' capabilities as
//! ambient ones, as tcpconform does with file capabilities.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Seek};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use libtest_mimic::{Arguments, Failed, Trial};
use tcpconform::case::Location;
use tcpconform::command::{Exit, Finished, OUTPUT_LIMIT, Sandbox};
use tcpconform::lab::{self, Privileges};
use tcpconform::tcpinfo::{self, Block, BlockFailure, Snapshot};

/// Set in the environment of this binary run again as an unprivileged
/// user, to how it was run ([`Again::tag`]).
const AGAIN: &str = "TCPCONFORM_COMMAND_TEST_AGAIN";
/// Long enough for any command here on a loaded machine.
const LIMIT: Duration = Duration::from_secs(20);

/// Runs `f` on a thread of its own in a new network namespace.
fn in_lab<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("a network namespace");
            f()
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn sandbox() -> Sandbox {
    Sandbox::new(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap_or_else(|e| panic!("{}", chain(&e)))
}

/// An error and its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Runs `text`, which must succeed; returns its standard output.
#[track_caller]
fn sh(sandbox: &Sandbox, text: &str) -> String {
    let done = sandbox
        .shell(text, LIMIT)
        .unwrap_or_else(|e| panic!("{text}: {}", chain(&e)));
    assert!(
        done.success(),
        "{text}: {}\n{}\n{}",
        done.exit,
        done.stdout,
        done.stderr
    );
    done.stdout.text
}

/// Runs `text`, which must fail.
#[track_caller]
fn sh_fails(sandbox: &Sandbox, text: &str) -> Finished {
    let done = sandbox
        .shell(text, LIMIT)
        .unwrap_or_else(|e| panic!("{text}: {}", chain(&e)));
    assert!(!done.success(), "{text} succeeded: {}\n{}", done.stdout, done.stderr);
    done
}

/// A fresh directory of this test's own under the host's temporary
/// directory, removed on drop (a failed test included).
struct FreshDir(PathBuf);

impl FreshDir {
    fn new(name: &str) -> FreshDir {
        let dir = std::env::temp_dir().join(format!(
            "tcpconform-command-test-{}-{}-{name}",
            std::process::id(),
            nix::unistd::getuid()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        FreshDir(dir)
    }
}

impl Drop for FreshDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn host_links() -> BTreeSet<String> {
    // sysfs shows the namespace of whoever mounted it: the host's.
    fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn a_command_forked_from_a_lab_thread_is_in_the_labs_namespace() {
    let host_ns = fs::read_link("/proc/self/ns/net").unwrap();
    let links_before = host_links();
    in_lab(|| {
        let lab_ns = fs::read_link("/proc/thread-self/ns/net").unwrap();
        assert_ne!(lab_ns, host_ns);
        let s = sandbox();
        let out = sh(
            &s,
            "readlink /proc/self/ns/net; ip link add v0 type veth peer name v1; ip -br link | cut -d' ' -f1",
        );
        let mut lines = out.lines();
        assert_eq!(lines.next().map(PathBuf::from), Some(lab_ns));
        let links: BTreeSet<&str> = lines.map(|l| l.split('@').next().unwrap_or(l)).collect();
        assert_eq!(links, BTreeSet::from(["lo", "v0", "v1"]), "{out}");
    });
    assert_eq!(host_links(), links_before, "the host's links changed");
}

fn sysctl_changes_the_lab_and_not_the_host() {
    // Opened in the host's namespace: it goes on showing the host's value.
    let mut host = fs::File::open("/proc/sys/net/ipv4/tcp_ecn").unwrap();
    let read = |f: &mut fs::File| {
        let mut v = String::new();
        f.rewind().unwrap();
        f.read_to_string(&mut v).unwrap();
        v.trim().to_string()
    };
    let before = read(&mut host);
    let new = if before == "1" { "0" } else { "1" };
    in_lab(|| {
        let s = sandbox();
        sh(&s, &format!("sysctl -q -w net.ipv4.tcp_ecn={new}"));
        assert_eq!(fs::read_to_string("/proc/sys/net/ipv4/tcp_ecn").unwrap().trim(), new);
        assert_eq!(sh(&s, "cat /proc/sys/net/ipv4/tcp_ecn").trim(), new);
    });
    assert_eq!(read(&mut host), before, "the host's tcp_ecn changed");
}

/// Tries to write each path from Python; returns the errno names (or "ok").
fn write_attempts(s: &Sandbox, attempts: &[(&str, &str)]) -> Vec<String> {
    let mut program = String::from("import errno\n");
    for (path, text) in attempts {
        program.push_str(&format!(
            "try:\n    with open({path:?}, 'w') as f:\n        f.write({text:?})\n    print('ok')\n\
             except OSError as e:\n    print(errno.errorcode.get(e.errno, e.errno))\n"
        ));
    }
    let done = s.python(&program, LIMIT).unwrap();
    assert!(done.success(), "{}\n{}", done.exit, done.stderr);
    done.stdout.text.lines().map(str::to_string).collect()
}

fn the_file_system_is_read_only_but_tmp_and_proc_sys_net() {
    let dir = FreshDir::new("read-only");
    let cwd = &dir.0;
    in_lab(|| {
        let s = Sandbox::new(cwd).unwrap();
        let ecn = fs::read_to_string("/proc/sys/net/ipv4/tcp_ecn").unwrap();
        let attempts = [
            ("/proc/sys/vm/swappiness", "60"),
            ("/proc/sys/kernel/hostname", "lab"),
            ("new-file-in-cwd", "x"),
            ("/etc/tcpconform-command-test", "x"),
            ("/dev/tcpconform-command-test", "x"),
            ("/dev/null", "x"),
            ("/tmp/new-file", "x"),
            ("/proc/sys/net/ipv4/tcp_ecn", ecn.as_str()),
        ];
        let got = write_attempts(&s, &attempts);
        let expected = ["EROFS", "EROFS", "EROFS", "EROFS", "EROFS", "ok", "ok", "ok"];
        for ((path, _), (got, expected)) in attempts.iter().zip(got.iter().zip(expected)) {
            assert_eq!(got, expected, "writing {path}");
        }
        assert!(s.dir().join("tmp/new-file").exists());
        // The host's devices are not there, only the few a script uses.
        let allowed = [
            "null", "zero", "full", "random", "urandom", "tty", "fd", "stdin", "stdout", "stderr",
        ];
        for name in sh(&s, "ls /dev").lines() {
            assert!(allowed.contains(&name), "/dev/{name} is there");
        }
        assert_eq!(sh(&s, "head -c 4 /dev/zero | od -An -tx1").trim(), "00 00 00 00");
    });
    assert_eq!(
        fs::read_dir(cwd).unwrap().count(),
        0,
        "a file appeared in the working directory"
    );
    assert!(!Path::new("/etc/tcpconform-command-test").exists());
}

fn the_corpus_kinds_of_command_work() {
    in_lab(|| {
        let s = sandbox();
        sh(&s, "ip link set lo up && ip link add v0 type veth peer name v1");
        sh(
            &s,
            "ip link set dev v0 mtu 1400 && ip link show v0 | grep -q 'mtu 1400'",
        );
        sh(
            &s,
            "tc qdisc replace dev v0 root pfifo limit 3 && tc qdisc show dev v0 | grep -q pfifo",
        );
        sh(&s, "sysctl -q net.ipv4.tcp_ecn=1\nsysctl -q net.ipv4.tcp_timestamps=0");
        sh(&s, "nstat -n && nstat > /dev/null");
        sh(
            &s,
            "dd if=/dev/zero of=/tmp/testfile bs=1k count=4 2>/dev/null && test -s /tmp/testfile",
        );
    });
}

fn tmp_is_private_and_kept_for_the_next_command() {
    let name = format!("tcpconform-command-test-mark-{}", std::process::id());
    in_lab(|| {
        let s = sandbox();
        sh(&s, &format!("echo kept > /tmp/{name}"));
        assert_eq!(sh(&s, &format!("cat /tmp/{name}")), "kept\n");
        assert!(s.dir().join("tmp").join(&name).exists());
        assert!(
            !std::env::temp_dir().join(&name).exists(),
            "the file is in the host's /tmp"
        );
        let other = sandbox();
        sh_fails(&other, &format!("cat /tmp/{name}"));
        let dir = s.dir().to_path_buf();
        drop(s);
        assert!(!dir.exists(), "{} is left", dir.display());
    });
}

fn the_shell_is_a_child_of_this_process() {
    let pid = std::process::id();
    in_lab(|| {
        let s = sandbox();
        assert_eq!(sh(&s, "echo $PPID $PACKETDRILL_PID"), format!("{pid} {pid}\n"));
        // What set_sysctls.py and the cleanup command of the corpus do.
        sh(
            &s,
            "printf '#!/bin/sh\\necho restored\\n' > /tmp/sysctl_restore_$PACKETDRILL_PID.sh && \
             chmod +x /tmp/sysctl_restore_$PACKETDRILL_PID.sh",
        );
        assert_eq!(sh(&s, "/tmp/sysctl_restore_${PPID}.sh"), "restored\n");
        let env = sh(&s, "env");
        let vars: BTreeSet<&str> = env.lines().collect();
        for expected in [
            format!("PATH={}", tcpconform::command::PATH),
            "HOME=/tmp".into(),
            "TMPDIR=/tmp".into(),
            "LC_ALL=C".into(),
            format!("PACKETDRILL_PID={pid}"),
        ] {
            assert!(vars.contains(expected.as_str()), "{expected} missing from\n{env}");
        }
        // The shell's own: PWD, SHLVL, `_`, OLDPWD.
        for var in &vars {
            let name = var.split('=').next().unwrap_or_default();
            assert!(
                [
                    "PATH",
                    "HOME",
                    "TMPDIR",
                    "LC_ALL",
                    "PACKETDRILL_PID",
                    "PWD",
                    "SHLVL",
                    "_",
                    "OLDPWD"
                ]
                .contains(&name),
                "{var} is in the environment"
            );
        }
        assert_eq!(sh(&s, "pwd"), format!("{}\n", env!("CARGO_MANIFEST_DIR")));
        // stdin is /dev/null: this does not wait.
        assert_eq!(sh(&s, "cat"), "");
    });
}

/// Waits until process `pid` is gone (or a zombie); false after 5 s.
fn gone(pid: &str) -> bool {
    for _ in 0..500 {
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat) if stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')) => return true,
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    false
}

fn a_command_past_its_time_is_killed_with_its_group() {
    in_lab(|| {
        let s = sandbox();
        let limit = Duration::from_millis(300);
        let done = s
            .shell("sleep 30 & echo $! > /tmp/bg; echo started; sleep 30", limit)
            .unwrap();
        assert_eq!(done.exit, Exit::TimedOut(limit));
        assert_eq!(done.stdout.text, "started\n");
        let took = Duration::from_nanos(done.ended.since(done.started) as u64);
        assert!(took >= limit && took < Duration::from_secs(5), "took {took:?}");
        let bg = fs::read_to_string(s.dir().join("tmp/bg")).unwrap();
        assert!(gone(bg.trim()), "the background sleep {} survived", bg.trim());
        // A command that leaves a process behind ends when its shell does,
        // and the process with it.
        let done = s.shell("sleep 30 & echo $! > /tmp/bg", LIMIT).unwrap();
        assert_eq!(done.exit, Exit::Code(0));
        let took = Duration::from_nanos(done.ended.since(done.started) as u64);
        assert!(took < Duration::from_secs(5), "took {took:?}");
        let bg = fs::read_to_string(s.dir().join("tmp/bg")).unwrap();
        assert!(gone(bg.trim()), "the background sleep {} survived", bg.trim());
    });
}

fn exit_status_and_output_come_back() {
    in_lab(|| {
        let s = sandbox();
        let done = s.shell("echo out; echo err >&2; exit 3", LIMIT).unwrap();
        assert_eq!(done.exit, Exit::Code(3));
        assert_eq!(
            (done.stdout.text.as_str(), done.stderr.text.as_str()),
            ("out\n", "err\n")
        );
        assert!(done.started <= done.ended);
        let done = s.shell("kill -TERM $$", LIMIT).unwrap();
        assert_eq!(done.exit, Exit::Signal(libc::SIGTERM));
        let done = s
            .shell("head -c 200000 /dev/zero | tr '\\0' x; echo end", LIMIT)
            .unwrap();
        assert_eq!(done.stdout.text.len(), OUTPUT_LIMIT);
        assert_eq!(done.stdout.dropped, 200_004 - OUTPUT_LIMIT as u64);
        assert!(done.stdout.text.ends_with("xend\n"));
        let done = s.shell("nosuchcommand", LIMIT).unwrap();
        assert_eq!(done.exit, Exit::Code(127));
        assert!(done.stderr.text.contains("not found"), "{}", done.stderr);
    });
}

/// A capability set of a /proc/PID/status text.
fn caps(set: &str, status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(set)?.strip_prefix(":\t"))
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .unwrap_or_else(|| panic!("no {set} in\n{status}"))
}

fn a_command_cannot_get_out() {
    in_lab(|| {
        let s = sandbox();
        // CAP_CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, NET_BIND_SERVICE,
        // NET_ADMIN, NET_RAW: those of them this process has.
        let kept = 0x340f & caps("CapPrm", &fs::read_to_string("/proc/self/status").unwrap());
        assert_eq!(caps("CapEff", &sh(&s, "cat /proc/self/status")), kept);
        assert_eq!(sh(&s, "grep NoNewPrivs /proc/self/status"), "NoNewPrivs:\t1\n");
        sh_fails(&s, "mount -o remount,rw /");
        sh_fails(&s, "mount -o remount,rw /proc");
        sh_fails(&s, "umount /tmp");
        sh_fails(&s, "umount -l /dev");
        sh_fails(&s, "nsenter --net=/proc/1/ns/net true");
        sh_fails(&s, "nsenter --net=/proc/$PPID/ns/net true");
        sh_fails(&s, "nsenter --mount=/proc/$PPID/ns/mnt true");
        // This process's view of the file system is out of reach.
        sh_fails(&s, "ls /proc/$PPID/root/");
        sh_fails(&s, "touch /proc/$PPID/cwd/tcpconform-command-test");
        // So are host daemons' sockets.
        assert_eq!(sh(&s, "ls -A /run /var/run"), "/run:\n\n/var/run:\n");
    });
}

fn location(line: u32) -> Location {
    Location {
        file: Arc::new(PathBuf::from("tcp_example.pkt")),
        line,
        col: 1,
    }
}

fn snap(vars: &[(&str, u64)]) -> Snapshot {
    Snapshot {
        vars: vars.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
    }
}

/// Evaluates the blocks (line, code, snapshot) in a sandbox.
fn evaluate(blocks: &[(u32, &str, &Snapshot)]) -> Result<(), BlockFailure> {
    let locations: Vec<Location> = blocks.iter().map(|(line, _, _)| location(*line)).collect();
    let blocks: Vec<Block> = blocks
        .iter()
        .zip(&locations)
        .map(|((_, code, snapshot), location)| Block {
            location,
            code,
            snapshot,
        })
        .collect();
    let program = tcpinfo::program(&blocks);
    in_lab(|| tcpinfo::verdict(&sandbox().python(&program, LIMIT).unwrap()))
}

#[track_caller]
fn failure(result: Result<(), BlockFailure>) -> (usize, String, String) {
    match result {
        Err(BlockFailure::Block {
            index,
            reason,
            traceback,
        }) => (index, reason, traceback),
        other => panic!("not a block failure: {other:?}"),
    }
}

fn the_first_failing_block_is_reported() {
    let listener = snap(&[("tcpi_state", 10)]);
    let cwnd = snap(&[("tcpi_snd_cwnd", 7)]);
    let (index, reason, traceback) = failure(evaluate(&[
        (12, " assert tcpi_state == TCP_LISTEN, tcpi_state ", &listener),
        (20, "assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd", &cwnd),
        (30, "assert False, 'never run'", &cwnd),
    ]));
    assert_eq!((index, reason.as_str()), (1, "AssertionError: 7"));
    assert!(traceback.contains("tcp_example.pkt\", line 20"), "{traceback}");
}

fn a_name_the_snapshot_lacks_is_a_name_error() {
    let first = snap(&[("tcpi_delivered_ce_bytes", 0)]);
    let second = snap(&[("tcpi_state", 1)]);
    // A value of an earlier block's snapshot is not carried over.
    let (index, reason, _) = failure(evaluate(&[
        (3, "assert tcpi_delivered_ce_bytes == 0", &first),
        (5, "assert tcpi_delivered_ce_bytes == 0", &second),
    ]));
    assert_eq!(index, 1);
    assert_eq!(reason, "NameError: name 'tcpi_delivered_ce_bytes' is not defined");
}

fn a_syntax_error_is_reported() {
    let (index, reason, _) = failure(evaluate(&[(8, "assert (tcpi_state", &snap(&[]))]));
    assert_eq!(index, 0);
    assert!(reason.starts_with("SyntaxError: "), "{reason}");
    assert!(reason.contains("tcp_example.pkt"), "{reason}");
}

fn the_corpus_shapes_of_block_pass() {
    let s = snap(&[
        ("tcpi_snd_mss", 1448),
        ("tcpi_options", 7),
        ("tcpi_rwnd_limited", 300_000),
        ("tcpi_busy_time", 330_000),
        ("tcpi_snd_cwnd", 12),
        ("SK_MEMINFO_RCVBUF", 131_072),
    ]);
    let blocks = [
        (
            1,
            "assert tcpi_snd_mss == 1460 - 12, tcpi_snd_mss; \\\n         assert (tcpi_options & TCPI_OPT_SACK) != 0, tcpi_options\n",
            &s,
        ),
        (
            4,
            "assert 298000 <= tcpi_rwnd_limited <= 310000, tcpi_rwnd_limited;\\\n         assert 328000 <= tcpi_busy_time <= 340000, tcpi_busy_time;\\\n",
            &s,
        ),
        (
            7,
            "\nassert tcpi_snd_cwnd == 12, 'cwnd=%d' % tcpi_snd_cwnd\nassert SK_MEMINFO_RCVBUF == 131072, SK_MEMINFO_RCVBUF\n",
            &s,
        ),
        (
            11,
            "assert (tcpi_options & TCPI_OPT_ECN) == 0, tcpi_options; \\\n\t assert _file == 'tcp_example.pkt' and _line == 11",
            &s,
        ),
    ];
    assert_eq!(evaluate(&blocks), Ok(()));
}

fn a_program_past_its_time_has_no_verdict() {
    let program = tcpinfo::program(&[Block {
        location: &location(1),
        code: "while True: pass",
        snapshot: &snap(&[]),
    }]);
    let done = in_lab(|| sandbox().python(&program, Duration::from_millis(500)).unwrap());
    match tcpinfo::verdict(&done) {
        Err(BlockFailure::Program { exit, .. }) => assert_eq!(exit, Exit::TimedOut(Duration::from_millis(500))),
        other => panic!("{other:?}"),
    }
}

fn set_congestion(fd: i32, name: &str) -> bool {
    // SAFETY: setsockopt reads `name.len()` bytes of the live string.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    rc == 0
}

fn snapshots_of_real_sockets_are_plausible() {
    in_lab(|| {
        let s = sandbox();
        sh(&s, "ip link set lo up");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let at_listen = tcpinfo::snapshot(listener.as_raw_fd()).unwrap();
        assert_eq!(at_listen.get("tcpi_state"), Some(10));
        assert!(
            at_listen.get("SK_MEMINFO_RCVBUF").is_some_and(|v| v > 0),
            "{at_listen:?}"
        );

        let available = fs::read_to_string("/proc/sys/net/ipv4/tcp_available_congestion_control").unwrap();
        let client = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Stream,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        let bbr = available.split_whitespace().any(|a| a == "bbr") && set_congestion(client.as_raw_fd(), "bbr");
        let addr = nix::sys::socket::SockaddrIn::from(match listener.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            std::net::SocketAddr::V6(_) => unreachable!("bound to 127.0.0.1"),
        });
        nix::sys::socket::connect(client.as_raw_fd(), &addr).unwrap();
        let client = TcpStream::from(client);
        let (server, _) = listener.accept().unwrap();
        assert!(set_congestion(server.as_raw_fd(), "reno"));

        let established = tcpinfo::snapshot(client.as_raw_fd()).unwrap();
        assert_eq!(established.get("tcpi_state"), Some(1));
        assert_eq!(established.get("tcpi_ca_state"), Some(0));
        // Loopback: a 65535-byte MTU; timestamps, SACK and window scaling on.
        assert_eq!(established.get("tcpi_pmtu"), Some(65535));
        assert!(
            established.get("tcpi_snd_mss").is_some_and(|m| m > 1000),
            "{established:?}"
        );
        assert_eq!(established.get("tcpi_options").map(|o| o & 7), Some(7));
        assert!(
            established
                .get("tcpi_snd_wscale")
                .is_some_and(|w| (1..=14).contains(&w))
        );
        assert!(
            established
                .get("tcpi_rcv_wscale")
                .is_some_and(|w| (1..=14).contains(&w))
        );
        assert_eq!(established.get("tcpi_snd_cwnd"), Some(10));
        assert!(
            established
                .get("tcpi_delivery_rate_app_limited")
                .is_some_and(|v| v <= 1)
        );
        if bbr {
            assert!(
                established.get("bbr_cwnd_gain").is_some_and(|g| g > 0),
                "{established:?}"
            );
            assert!(established.get("bbr_bw").is_some());
        }
        let server_side = tcpinfo::snapshot(server.as_raw_fd()).unwrap();
        assert!(
            !server_side
                .vars
                .iter()
                .any(|(n, _)| n.starts_with("bbr_") || n.starts_with("dctcp_"))
        );

        let program = tcpinfo::program(&[Block {
            location: &location(1),
            code: "assert tcpi_state == TCP_ESTABLISHED and tcpi_ca_state == TCP_CA_Open, tcpi_state\n\
                   assert tcpi_options & TCPI_OPT_TIMESTAMPS and SK_MEMINFO_RCVBUF > 0, tcpi_options",
            snapshot: &established,
        }]);
        let done = s.python(&program, LIMIT).unwrap();
        assert_eq!(tcpinfo::verdict(&done), Ok(()), "{}", done.stderr);
    });
}

/// How a test runs again, as uid 65534.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Again {
    /// In a user namespace of its own, as tcpconform does without root.
    UserNamespace,
    /// With the labs' capabilities as ambient ones, as tcpconform does
    /// with file capabilities (through util-linux's setpriv).
    FileCapabilities,
    /// With no privileges at all, and no user namespace.
    NoPrivileges,
}

impl Again {
    /// The value of [`AGAIN`] in the child.
    fn tag(self) -> &'static str {
        match self {
            Again::UserNamespace => "user-namespace",
            Again::FileCapabilities => "file-capabilities",
            Again::NoPrivileges => "no-privileges",
        }
    }
}

/// Runs test `name` again in this binary, as uid 65534.
fn again(name: &str, how: Again) -> Result<(), Failed> {
    let exe = std::env::current_exe()?;
    let mut command = match how {
        Again::UserNamespace | Again::NoPrivileges => {
            let mut c = std::process::Command::new(&exe);
            c.uid(65534).gid(65534);
            c
        }
        Again::FileCapabilities => {
            let caps = "+sys_admin,+net_admin,+net_raw";
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(format!("--inh-caps={caps}"))
                .arg(format!("--ambient-caps={caps}"))
                .arg("--")
                .arg(&exe);
            c
        }
    };
    let out = command
        .args([name, "--exact", "--test-threads=1"])
        .env(AGAIN, how.tag())
        .output()
        .map_err(|e| format!("{e}: this test binary must be readable by uid 65534"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.contains("1 passed") {
        Ok(())
    } else {
        Err(format!("{}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr)).into())
    }
}

const TESTS: &[(&str, fn())] = &[
    (
        "a_command_forked_from_a_lab_thread_is_in_the_labs_namespace",
        a_command_forked_from_a_lab_thread_is_in_the_labs_namespace,
    ),
    (
        "sysctl_changes_the_lab_and_not_the_host",
        sysctl_changes_the_lab_and_not_the_host,
    ),
    (
        "the_file_system_is_read_only_but_tmp_and_proc_sys_net",
        the_file_system_is_read_only_but_tmp_and_proc_sys_net,
    ),
    ("the_corpus_kinds_of_command_work", the_corpus_kinds_of_command_work),
    (
        "tmp_is_private_and_kept_for_the_next_command",
        tmp_is_private_and_kept_for_the_next_command,
    ),
    (
        "the_shell_is_a_child_of_this_process",
        the_shell_is_a_child_of_this_process,
    ),
    (
        "a_command_past_its_time_is_killed_with_its_group",
        a_command_past_its_time_is_killed_with_its_group,
    ),
    ("exit_status_and_output_come_back", exit_status_and_output_come_back),
    ("a_command_cannot_get_out", a_command_cannot_get_out),
    (
        "the_first_failing_block_is_reported",
        the_first_failing_block_is_reported,
    ),
    (
        "a_name_the_snapshot_lacks_is_a_name_error",
        a_name_the_snapshot_lacks_is_a_name_error,
    ),
    ("a_syntax_error_is_reported", a_syntax_error_is_reported),
    ("the_corpus_shapes_of_block_pass", the_corpus_shapes_of_block_pass),
    (
        "a_program_past_its_time_has_no_verdict",
        a_program_past_its_time_has_no_verdict,
    ),
    (
        "snapshots_of_real_sockets_are_plausible",
        snapshots_of_real_sockets_are_plausible,
    ),
];

/// Without privileges, the first step that needs them fails, and the
/// error says which, with the kernel's reason.
fn a_failed_step_is_named() {
    let e = sandbox().shell("true", LIMIT).unwrap_err();
    assert_eq!(
        chain(&e),
        "entering a mount namespace of the command's own (unshare(CLONE_NEWNS)): \
         Operation not permitted (os error 1)"
    );
}

fn main() {
    let child = std::env::var(AGAIN).ok();
    if child.as_deref() == Some(Again::NoPrivileges.tag()) {
        let trial = Trial::test("a_failed_step_is_named", || {
            a_failed_step_is_named();
            Ok(())
        });
        libtest_mimic::run(&Arguments::from_args(), vec![trial]).exit();
    }
    // First, while the process has one thread: a user namespace if not privileged.
    let privileges = lab::init();
    let expected = match child.as_deref() {
        Some(tag) if tag == Again::UserNamespace.tag() => Some(Privileges::UserNamespace),
        Some(_) => Some(Privileges::Native),
        None => None,
    };
    if expected.is_some_and(|p| privileges != Ok(p)) {
        eprintln!("run again as {child:?}, this test got {privileges:?}");
        std::process::exit(1);
    }
    // Root runs every test again without root, both ways.
    let mut ways = Vec::new();
    if child.is_none() && nix::unistd::getuid().is_root() {
        ways.push(Again::UserNamespace);
        ways.push(Again::FileCapabilities);
    }
    let setpriv = std::process::Command::new("setpriv").arg("--version").output();
    let has_setpriv = setpriv.is_ok_and(|o| o.status.success());
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for &(name, test) in TESTS {
        trials.push(Trial::test(name, move || {
            test();
            Ok(())
        }));
        for &how in &ways {
            let trial = Trial::test(format!("{}::{name}", how.tag()), move || again(name, how));
            // Without util-linux's setpriv, shown as ignored.
            trials.push(trial.with_ignored_flag(how == Again::FileCapabilities && !has_setpriv));
        }
    }
    if !ways.is_empty() {
        trials.push(Trial::test("no-privileges::a_failed_step_is_named", || {
            again("a_failed_step_is_named", Again::NoPrivileges)
        }));
    }
    if let Err(missing) = privileges {
        trials.push(Trial::test("privileges", move || Err(missing.into())));
    }
    libtest_mimic::run(&args, trials).exit();
}
