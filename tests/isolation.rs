//! The host is never touched: after a run, and after a run killed with
//! SIGKILL at several points, the host's links, addresses, routes,
//! neighbours, named network namespaces and network sysctls are exactly as
//! they were. Labs live in anonymous namespaces held by the process's file
//! descriptors, so the kernel removes them with the process.
//!
//! No frame of a case is seen outside its lab: a capture on every host
//! interface during a run sees no lab address, and labs running at once
//! with the same addresses and ports each capture only their own frames.
//! No file is left behind, in /tmp or in the `--out` directory, by a run
//! or by a run killed at any point.

use std::ffi::CString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use libtest_mimic::{Arguments, Completion, Trial};
use tcpconform::event::{Direction, Record, Verdict};
use tcpconform::lab::{self, Privileges};
use tcpconform::packet::frame::{self, Decoded};
use tcpconform::packet::tcp::Flags;

#[path = "common/host.rs"]
mod host;
use host::{assert_same, snapshot};

/// Tests that run cases take turns: the cases are timed to 10 ms, and
/// several suites at once on a small machine would make them miss.
static CASES_RUNNING: Mutex<()> = Mutex::new(());

fn one_run_at_a_time() -> MutexGuard<'static, ()> {
    CASES_RUNNING.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The suite these tests run: the cases under `cases/` but the packetdrill
/// scripts, and the slow fixtures. The scripts (`cases/packetdrill`, run by
/// tests/cases.rs) are left out: their packetdrill timing (4 ms) is missed
/// with this many labs starting at once on a small machine. (A run of
/// scripts killed at any point is checked on the corpus, below.)
fn suite() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root.join("cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "packetdrill"))
        .collect();
    paths.sort();
    paths.push(root.join("tests/fixtures/slow"));
    paths
}

fn tcpconform() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tcpconform"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// A frame the host capture saw: its ethertype and bytes.
type Captured = (u16, Vec<u8>);

/// The one whole run of the suite that the tests of a whole run judge, each
/// its own aspect: a private /tmp and `--out` directory, host snapshots
/// before and after, and (run as root) a capture on the host's interfaces
/// for its whole length, between two loopback markers.
struct WholeRun {
    status: ExitStatus,
    host: (host::Snapshot, host::Snapshot),
    /// The frames the host capture saw and how many it dropped, when it ran.
    capture: Option<(Vec<Captured>, u32)>,
    marker: String,
    tmp: PathBuf,
    out: PathBuf,
}

/// Whether this process may capture on the host's interfaces (set in main).
static NATIVE: AtomicBool = AtomicBool::new(false);

fn whole_run() -> &'static WholeRun {
    static RUN: OnceLock<WholeRun> = OnceLock::new();
    RUN.get_or_init(|| {
        let _turn = one_run_at_a_time();
        let (tmp, out) = (fresh_dir("tmp"), fresh_dir("out"));
        let before = snapshot();
        let capture = NATIVE.load(Ordering::SeqCst).then(HostCapture::start);
        let marker = format!("tcpconform isolation {}", std::process::id());
        loopback_marker(format!("{marker} before").as_bytes());
        let status = run_with_private_tmp(&tmp, &out, None, None);
        loopback_marker(format!("{marker} after").as_bytes());
        let capture = capture.map(HostCapture::finish);
        WholeRun {
            status,
            host: (before, snapshot()),
            capture,
            marker,
            tmp,
            out,
        }
    })
}

fn a_whole_run_leaves_the_host_as_it_was() {
    let run = whole_run();
    assert!(run.status.code() == Some(0), "the run failed: {}", run.status);
    assert_same(&run.host.0, &run.host.1, "after a run");
}

fn a_run_killed_at_any_point_leaves_the_host_as_it_was() {
    let _turn = one_run_at_a_time();
    let before = snapshot();
    // During lab setup, in the middle of cases, and while slow cases wait.
    for delay_ms in [5, 40, 400] {
        let mut child = tcpconform().arg("run").args(suite()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_same(&before, &snapshot(), &format!("after SIGKILL at {delay_ms} ms"));
    }
}

/// Runs one fixture with the binary (which gets privileges as a user's run does) and returns its output.
fn run_fixture(file: &str) -> String {
    let _turn = one_run_at_a_time();
    let out = Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .args(["run", file, "--family", "ipv4"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn a_knob_the_kernel_lacks_skips_the_case() {
    let out = run_fixture("tests/fixtures/sysctl/absent.yaml");
    assert!(
        out.contains("SKIP  absent::ipv4 ") && out.contains(": net.ipv4.tcp_tw_recycle does not exist on this kernel"),
        "{out}"
    );
}

fn a_knob_that_is_not_namespaced_is_never_written() {
    let before = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_mem").unwrap();
    let out = run_fixture("tests/fixtures/sysctl/not_namespaced.yaml");
    assert!(
        out.contains("SKIP  not_namespaced::ipv4 ") && out.contains(": net.ipv4.tcp_mem is not namespaced"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string("/proc/sys/net/ipv4/tcp_mem").unwrap(), before);
}

/// A packet socket in the host's namespace that captures every frame on
/// every interface, in both directions, without the link-layer header.
struct HostCapture {
    fd: Arc<OwnedFd>,
    stop: Arc<AtomicBool>,
    reader: std::thread::JoinHandle<Vec<(u16, Vec<u8>)>>,
}

/// Bytes kept of each captured frame: enough for an IPv6 header, an ARP
/// packet, or an IPv4/UDP header and the control datagram's marker.
const KEEP: usize = 128;

impl HostCapture {
    fn start() -> HostCapture {
        const ETH_P_ALL: u16 = 0x0003;
        // SAFETY: plain socket(2); the result is checked before it is owned.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                i32::from(ETH_P_ALL.to_be()),
            )
        };
        assert!(raw >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
        // SAFETY: raw is a fresh descriptor that nothing else owns.
        let fd = Arc::new(unsafe { OwnedFd::from_raw_fd(raw) });
        let size: libc::c_int = 64 << 20;
        // SAFETY: setsockopt(2) with a pointer to a live c_int of the size given.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "SO_RCVBUFFORCE: {}", std::io::Error::last_os_error());
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (fd, stop) = (fd.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut frames = Vec::new();
                let mut buf = vec![0u8; 65536];
                loop {
                    let mut pfd = libc::pollfd {
                        fd: fd.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: poll(2) on one live pollfd.
                    let ready = unsafe { libc::poll(&mut pfd, 1, 20) };
                    if ready <= 0 {
                        if stop.load(Ordering::SeqCst) {
                            return frames;
                        }
                        continue;
                    }
                    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
                    let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                    let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                    // SAFETY: recvfrom(2) into a live buffer and sockaddr of the sizes given.
                    let n = unsafe {
                        libc::recvfrom(
                            fd.as_raw_fd(),
                            buf.as_mut_ptr().cast(),
                            buf.len(),
                            libc::MSG_DONTWAIT,
                            (&mut from as *mut libc::sockaddr_ll).cast(),
                            &mut len,
                        )
                    };
                    if n > 0 {
                        let n = (n as usize).min(KEEP);
                        frames.push((u16::from_be(from.sll_protocol), buf[..n].to_vec()));
                    }
                }
            })
        };
        HostCapture { fd, stop, reader }
    }

    /// Stops capturing; the frames seen, and how many the kernel dropped for lack of room.
    fn finish(self) -> (Vec<(u16, Vec<u8>)>, u32) {
        std::thread::sleep(Duration::from_millis(100));
        self.stop.store(true, Ordering::SeqCst);
        let frames = self.reader.join().expect("the capture thread does not panic");
        // SAFETY: tpacket_stats is plain data; all-zero is a valid value.
        let mut stats: libc::tpacket_stats = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: getsockopt(2) into a live tpacket_stats of the size given.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut stats as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "PACKET_STATISTICS: {}", std::io::Error::last_os_error());
        (frames, stats.tp_drops)
    }
}

/// The lab addresses (192.0.2.0/24, 2001:db8::/32) in a frame's network header, by ethertype.
fn lab_addresses(ethertype: u16, p: &[u8]) -> Vec<IpAddr> {
    let v4 = |b: &[u8]| IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
    let v6 = |b: &[u8]| IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).expect("16 bytes")));
    let addresses = match ethertype {
        0x0800 if p.len() >= 20 => vec![v4(&p[12..16]), v4(&p[16..20])],
        0x86dd if p.len() >= 40 => vec![v6(&p[8..24]), v6(&p[24..40])],
        // ARP for IPv4 over Ethernet: sender and target protocol addresses.
        0x0806 if p.len() >= 28 && p[2..6] == [0x08, 0x00, 6, 4] => vec![v4(&p[14..18]), v4(&p[24..28])],
        _ => vec![],
    };
    addresses
        .into_iter()
        .filter(|a| match a {
            IpAddr::V4(a) => a.octets()[..3] == [192, 0, 2],
            IpAddr::V6(a) => a.segments()[..2] == [0x2001, 0x0db8],
        })
        .collect()
}

fn lab_addresses_are_recognised_in_lab_frames() {
    for family in tcpconform::packet::Family::ALL {
        let ends = frame::Endpoints {
            src_mac: tcpconform::packet::PEER_MAC,
            dst_mac: tcpconform::packet::TARGET_MAC,
            src: family.peer_addr(),
            dst: family.target_addr(),
        };
        let segment = tcpconform::packet::tcp::TcpSegment {
            src_port: 40000,
            dst_port: 8080,
            seq: 1,
            ack: 0,
            flags: Flags::SYN,
            window: 65535,
            checksum: 0,
            urgent: 0,
            options: vec![],
            payload: vec![],
        };
        let bytes = frame::build(&ends, &segment, frame::Checksum::Auto).unwrap();
        let ethertype = u16::from_be_bytes([bytes[12], bytes[13]]);
        assert_eq!(
            lab_addresses(ethertype, &bytes[14..]),
            vec![family.peer_addr(), family.target_addr()]
        );
    }
    let mut arp = vec![0, 1, 0x08, 0x00, 6, 4, 0, 1];
    arp.extend([2, 0, 0, 0, 0, 2, 192, 0, 2, 2, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1]);
    assert_eq!(lab_addresses(0x0806, &arp).len(), 2);
    assert!(lab_addresses(0x0800, &[0x45; 20]).is_empty());
}

/// Sends a datagram to itself over the host's loopback: a frame the host capture must see.
fn loopback_marker(marker: &[u8]) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.send_to(marker, socket.local_addr().unwrap()).unwrap();
}

fn no_frame_of_a_case_is_seen_on_the_host() {
    let run = whole_run();
    let (status, marker) = (run.status, &run.marker);
    let (frames, drops) = run.capture.as_ref().expect("the host capture ran (as root)");
    let drops = *drops;
    assert_eq!(status.code(), Some(0), "the run failed: {status}");
    // The capture was live for the whole run and lost nothing: otherwise finding no lab frame would prove nothing.
    assert_eq!(drops, 0, "the host capture dropped {drops} frames");
    for when in ["before", "after"] {
        let wanted = format!("{marker} {when}");
        assert!(
            frames
                .iter()
                .any(|(t, f)| *t == 0x0800 && f.len() >= 28 && f[28..].starts_with(wanted.as_bytes())),
            "the host capture missed the loopback datagram sent {when} the run ({} frames seen)",
            frames.len()
        );
    }
    let leaked: Vec<String> = frames
        .iter()
        .filter(|(t, f)| !lab_addresses(*t, f).is_empty())
        .map(|(t, f)| format!("ethertype 0x{t:04x}: {:?}", lab_addresses(*t, f)))
        .collect();
    assert!(leaked.is_empty(), "lab frames seen on the host: {leaked:?}");
}

fn labs_running_at_once_each_see_only_their_own_frames() {
    let _turn = one_run_at_a_time();
    // Sixteen copies of one case: the same addresses and ports in every
    // lab, told apart only by the harness's ISN, which every frame carries
    // (in seq when the harness sends, in ack when the kernel answers).
    const COPIES: u32 = 16;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases/opening/passive_handshake.yaml");
    let base = tcpconform::case::load(&path).unwrap();
    let isn = |copy: u32| 0x1000_0000 + copy * 0x0100_0000;
    let copies: Vec<tcpconform::case::Case> = (0..COPIES)
        .map(|copy| {
            let mut case = base.clone();
            case.id = format!("copy{copy}");
            case.flows[0].isn = isn(copy);
            case
        })
        .collect();
    let runs = tcpconform::suite::plan(&copies, None);
    let results = tcpconform::suite::run(runs, &Default::default(), COPIES as usize * 2, &mut |_| {});
    assert_eq!(results.len(), COPIES as usize * 2);
    for result in &results {
        assert_eq!(result.verdict, Verdict::Pass, "{} {}", result.id, result.family);
        let copy: u32 = result.id.trim_start_matches("copy").parse().unwrap();
        let own = isn(copy);
        let mut frames = 0;
        for record in &result.exchange {
            let Record::Frame { direction, bytes, .. } = record else {
                continue;
            };
            frames += 1;
            let Decoded::Tcp(tcp) = frame::decode(bytes) else {
                panic!(
                    "{} {}: a frame that is not TCP: {:?}",
                    result.id,
                    result.family,
                    frame::decode(bytes)
                )
            };
            let seg = &tcp.segment;
            let carried = match direction {
                Direction::ToKernel => seg.seq,
                Direction::FromKernel => {
                    assert!(seg.flags.contains(Flags::ACK), "{}: {seg:?}", result.id);
                    seg.ack
                }
            };
            assert!(
                carried.wrapping_sub(own) <= 1,
                "{} {}: a frame of another lab (it carries {carried:#x}, this lab's ISN is {own:#x})",
                result.id,
                result.family
            );
        }
        // SYN in, SYN-ACK out, ACK in: nothing more, nothing less.
        assert_eq!(frames, 3, "{} {}", result.id, result.family);
    }
}

/// A directory of this test binary's own, fresh.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("isolation").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A run whose /tmp is `tmp` (bind-mounted over /tmp in a mount namespace
/// of its own, and its TMPDIR), writing its report into `out`; killed
/// after `kill_after` when given; files larger than `max_file` kill it
/// (SIGXFSZ) when given.
fn run_with_private_tmp(tmp: &Path, out: &Path, kill_after: Option<Duration>, max_file: Option<u64>) -> ExitStatus {
    run_with_private_tmp_of(&suite(), tmp, out, kill_after, max_file)
}

/// [`run_with_private_tmp`] of the cases under `paths`.
fn run_with_private_tmp_of(
    paths: &[PathBuf],
    tmp: &Path,
    out: &Path,
    kill_after: Option<Duration>,
    max_file: Option<u64>,
) -> ExitStatus {
    // The mount hides everything under /tmp from the run, its binary and
    // the checkout it resolves paths in included.
    for needed in [env!("CARGO_MANIFEST_DIR"), env!("CARGO_BIN_EXE_tcpconform")] {
        assert!(
            !Path::new(needed).starts_with("/tmp"),
            "this test covers /tmp with a private directory, which would hide {needed}: \
             run it from a checkout (and target directory) outside /tmp"
        );
    }
    let tmp_c = CString::new(tmp.as_os_str().as_encoded_bytes()).unwrap();
    let mut command = tcpconform();
    command.arg("run").args(paths).arg("--out").arg(out).env("TMPDIR", tmp);
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe system calls on data prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            let check = |rc: libc::c_int| {
                if rc == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            };
            check(libc::unshare(libc::CLONE_NEWNS))?;
            check(libc::mount(
                c"none".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                tmp_c.as_ptr(),
                c"/tmp".as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ))?;
            if let Some(max) = max_file {
                let no_core = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                check(libc::setrlimit(libc::RLIMIT_CORE, &no_core))?;
                let limit = libc::rlimit {
                    rlim_cur: max,
                    rlim_max: libc::RLIM_INFINITY,
                };
                check(libc::setrlimit(libc::RLIMIT_FSIZE, &limit))?;
            }
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    if let Some(delay) = kill_after {
        std::thread::sleep(delay);
        child.kill().unwrap();
    }
    child.wait().unwrap()
}

/// The files of a complete report directory.
const REPORT_FILES: [&str; 5] = ["index.html", "junit.xml", "ktap.txt", "pcap", "report.json"];

/// `out` holds only whole report files: each file is complete (whole JSON,
/// XML, HTML and KTAP, pcapng files that read to their end), no temporary file
/// is left, and when report.json is there (it is written last) so is the rest.
fn assert_no_partial_report(out: &Path, when: &str) {
    let names = entries(out);
    for name in &names {
        assert!(REPORT_FILES.contains(&name.as_str()), "{when}: --out holds {name:?}");
    }
    let text = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
    if names.iter().any(|n| n == "report.json") {
        assert_eq!(
            names, REPORT_FILES,
            "{when}: report.json is there but not the whole report"
        );
        let json: serde_json::Value = serde_json::from_str(&text("report.json"))
            .unwrap_or_else(|e| panic!("{when}: report.json is not complete JSON: {e}"));
        assert_eq!(json["schema"], tcpconform::report::SCHEMA, "{when}");
    }
    if names.iter().any(|n| n == "junit.xml") {
        assert!(
            text("junit.xml").trim_end().ends_with("</testsuites>"),
            "{when}: junit.xml is cut short"
        );
    }
    if names.iter().any(|n| n == "index.html") {
        assert!(
            text("index.html").trim_end().ends_with("</html>"),
            "{when}: index.html is cut short"
        );
    }
    if names.iter().any(|n| n == "ktap.txt") {
        assert!(
            text("ktap.txt")
                .lines()
                .last()
                .is_some_and(|l| l.starts_with("# Totals: ")),
            "{when}: ktap.txt is cut short"
        );
    }
    for capture in entries(&out.join("pcap")) {
        assert!(capture.ends_with(".pcapng"), "{when}: pcap/ holds {capture:?}");
        let file = std::fs::File::open(out.join("pcap").join(&capture)).unwrap();
        let mut reader = pcap_file::pcapng::PcapNgReader::new(file)
            .unwrap_or_else(|e| panic!("{when}: {capture} has no pcapng header: {e}"));
        while let Some(block) = reader.next_block() {
            block.unwrap_or_else(|e| panic!("{when}: {capture} is cut short: {e}"));
        }
    }
}

fn runs_leave_no_file_behind() {
    let run = whole_run();
    assert_eq!(run.status.code(), Some(0), "the run failed: {}", run.status);
    assert_eq!(entries(&run.tmp), Vec::<String>::new(), "files left in /tmp");
    assert_eq!(entries(&run.out), REPORT_FILES);
    assert_no_partial_report(&run.out, "after a run");
    let _turn = one_run_at_a_time();
    // Killed during lab setup, in the middle of cases, while slow cases wait, near the end.
    for delay_ms in [5, 40, 400, 1500] {
        let (tmp, out) = (fresh_dir("tmp"), fresh_dir("out"));
        let status = run_with_private_tmp(&tmp, &out, Some(Duration::from_millis(delay_ms)), None);
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
        let when = format!("after SIGKILL at {delay_ms} ms");
        assert_eq!(entries(&tmp), Vec::<String>::new(), "{when}: files left in /tmp");
        assert_no_partial_report(&out, &when);
    }
}

/// The kernel's packetdrill selftests, when the machine has them.
fn corpus() -> Option<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora/linux-packetdrill");
    dir.is_dir().then(|| dir.display().to_string())
}

/// packetdrill scripts run commands (`./defaults.sh` writes sysctls, adds a
/// qdisc, and leaves a restore script in /tmp) and Python: killed at any
/// point of a run of the whole corpus, the host is as it was and nothing is
/// left in /tmp or in `--out`. (A whole run of it is checked by
/// tests/corpus.rs, which shares the run it judges.)
fn a_corpus_run_killed_at_any_point_leaves_the_host_and_tmp_as_they_were(corpus: &str) {
    let _turn = one_run_at_a_time();
    let before = snapshot();
    // While the first labs are built, while scripts' commands run, and later.
    for delay_ms in [50, 700, 3000] {
        let (tmp, out) = (fresh_dir("tmp-corpus"), fresh_dir("out-corpus"));
        let status = run_with_private_tmp_of(
            &[PathBuf::from(corpus)],
            &tmp,
            &out,
            Some(Duration::from_millis(delay_ms)),
            None,
        );
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
        let when = format!("after SIGKILL at {delay_ms} ms of a corpus run");
        assert_eq!(entries(&tmp), Vec::<String>::new(), "{when}: files left in /tmp");
        assert_no_partial_report(&out, &when);
        assert_same(&before, &snapshot(), &when);
    }
}

fn a_run_killed_while_writing_its_report_leaves_no_partial_report() {
    let _turn = one_run_at_a_time();
    let (tmp, out) = (fresh_dir("tmp-fsize"), fresh_dir("out-fsize"));
    // The kernel kills the run (SIGXFSZ) at the 4097th byte of any file it
    // writes: in the middle of the report, which is far longer. (The quick
    // cases of cases/reset: the run gets to its report in a second.)
    let reset = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases/reset");
    let status = run_with_private_tmp_of(&[reset], &tmp, &out, None, Some(4096));
    assert_eq!(
        status.signal(),
        Some(libc::SIGXFSZ),
        "the run was not killed while writing: {status}"
    );
    assert_eq!(entries(&tmp), Vec::<String>::new(), "files left in /tmp");
    assert_no_partial_report(&out, "after a kill while writing the report");
}

fn main() {
    // First, while the process has one thread: a user namespace if not
    // privileged, so the labs this process builds itself need no root.
    let privileges = lab::init();
    let args = Arguments::from_args();
    let mut trials = vec![
        Trial::test("a_run_killed_while_writing_its_report_leaves_no_partial_report", || {
            a_run_killed_while_writing_its_report_leaves_no_partial_report();
            Ok(())
        }),
        Trial::test("a_whole_run_leaves_the_host_as_it_was", || {
            a_whole_run_leaves_the_host_as_it_was();
            Ok(())
        }),
        Trial::test("a_run_killed_at_any_point_leaves_the_host_as_it_was", || {
            a_run_killed_at_any_point_leaves_the_host_as_it_was();
            Ok(())
        }),
        Trial::test("a_knob_the_kernel_lacks_skips_the_case", || {
            a_knob_the_kernel_lacks_skips_the_case();
            Ok(())
        }),
        Trial::test("a_knob_that_is_not_namespaced_is_never_written", || {
            a_knob_that_is_not_namespaced_is_never_written();
            Ok(())
        }),
        Trial::test("lab_addresses_are_recognised_in_lab_frames", || {
            lab_addresses_are_recognised_in_lab_frames();
            Ok(())
        }),
        Trial::test("labs_running_at_once_each_see_only_their_own_frames", || {
            labs_running_at_once_each_see_only_their_own_frames();
            Ok(())
        }),
        Trial::test("runs_leave_no_file_behind", || {
            runs_leave_no_file_behind();
            Ok(())
        }),
    ];
    let corpus = corpus();
    trials.push(Trial::ignorable_test(
        "a_corpus_run_killed_at_any_point_leaves_the_host_and_tmp_as_they_were",
        move || match &corpus {
            Some(corpus) => {
                a_corpus_run_killed_at_any_point_leaves_the_host_and_tmp_as_they_were(corpus);
                Ok(Completion::Completed)
            }
            None => Ok(Completion::ignored_with("skipped: no corpus")),
        },
    ));
    // Capturing on the host's interfaces takes CAP_NET_RAW in the host's
    // own namespace, which no user namespace gives.
    let native = matches!(privileges, Ok(Privileges::Native));
    NATIVE.store(native, Ordering::SeqCst);
    trials.push(Trial::ignorable_test(
        "no_frame_of_a_case_is_seen_on_the_host",
        move || {
            if !native {
                return Ok(Completion::ignored_with(
                    "capturing on the host's interfaces needs CAP_NET_RAW in the host's namespace (run as root)",
                ));
            }
            no_frame_of_a_case_is_seen_on_the_host();
            Ok(Completion::Completed)
        },
    ));
    if let Err(missing) = &privileges {
        let missing = missing.clone();
        trials.push(Trial::test("privileges", move || Err(missing.into())));
    }
    libtest_mimic::run(&args, trials).exit();
}
