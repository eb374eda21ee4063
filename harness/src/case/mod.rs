//! Cases: the YAML files under `cases/` that script one exchange with the
//! kernel, and the validated model the engine runs.
//!
//! [`load`] turns a file into a [`Case`] or into diagnostics that point at
//! `file:line:col`; nothing a case file contains makes it panic. The
//! schema is documented in `docs/CASES.md`.

pub mod call;
mod cursor;
mod icmp;
mod load;
mod syntax;
pub mod yaml_out;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use self::call::{Call, Func, Outcome};
pub(crate) use self::load::default_id;
pub use self::load::{discover, format_duration, load, load_bytes, load_str, parse_duration, read_case_file};

/// Loads a case file of either syntax: a YAML case, or a packetdrill
/// script (`.pkt`), which becomes one case per family it runs on.
pub fn load_file(path: &Path) -> Result<Vec<Case>, CaseError> {
    if path.extension().is_some_and(|e| e == "pkt") {
        crate::packetdrill::load(path)
    } else {
        load(path).map(|c| vec![c])
    }
}
use crate::packet::Family;
use crate::packet::frame::Checksum;
use crate::packet::pattern::SegmentPattern;
use crate::probe::TcpState;

/// Default timing tolerance of expectations when a case gives none.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_millis(10);
/// Default time a blocking call may take before it counts as stuck.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// A place in a case file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub file: Arc<PathBuf>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// A problem in a case file, at a place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where.
    pub location: Location,
    /// What, in one line.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Every problem found in one case file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct CaseError {
    /// The problems, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl CaseError {
    /// A problem with the file as a whole, reported at its start (1:1).
    pub fn of_file(file: Arc<PathBuf>, message: impl Into<String>) -> Self {
        CaseError {
            diagnostics: vec![Diagnostic {
                location: Location { file, line: 1, col: 1 },
                message: message.into(),
            }],
        }
    }
}

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.diagnostics.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

/// A flow: one TCP connection's 4-tuple between the harness and the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowSpec {
    /// Its name in the case.
    pub name: String,
    /// The harness's port.
    pub peer_port: u16,
    /// The kernel's port; learned from the kernel's first segment when not given.
    pub kernel_port: Option<u16>,
    /// The harness's initial sequence number (absolute).
    pub isn: u32,
    /// The window the harness advertises when a segment does not say.
    pub window: u16,
}

/// What `state:` looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A socket the case named, open or closed.
    Socket(String),
    /// The kernel's socket for a flow, found by its ports (request sockets too).
    Flow(usize),
}

/// What an ICMP message injected into the kernel quotes of the kernel's packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpQuote {
    /// The kernel's TCP segment on the flow: its header from `seq` (relative to
    /// the kernel's ISN) and `len` bytes of zeros.
    Tcp {
        /// Sequence number, relative to the kernel's ISN.
        seq: u32,
        /// Payload bytes quoted (zeros).
        len: u32,
    },
    /// `len` zero bytes and no quoted header.
    Raw {
        /// How many.
        len: u32,
    },
}

/// An ICMP (IPv4) or ICMPv6 (IPv6) error message to inject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IcmpSpec {
    /// Type, for the case's family.
    pub kind: u8,
    /// Code.
    pub code: u8,
    /// The next-hop MTU (frag_needed, packet_too_big).
    pub mtu: Option<u32>,
    /// The identifier field (echo messages).
    pub id: Option<u16>,
    /// What it quotes.
    pub quote: IcmpQuote,
}

/// What one step does.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Make a socket call.
    Call {
        /// The call as written.
        text: String,
        /// The parsed call.
        call: Call,
        /// Run in the background; a later `await` collects the result.
        background: bool,
        /// Whether the call must raise SIGPIPE (`None`: not checked, as when
        /// SIGPIPE is ignored).
        sigpipe: Option<bool>,
        /// How long the call may block (for background calls: until awaited).
        timeout: Duration,
    },
    /// Wait for a background call on a socket to finish and check its result.
    Await {
        /// The socket whose background call is awaited.
        socket: String,
        /// How long to wait for it.
        timeout: Duration,
    },
    /// Send a segment to the kernel.
    Inject {
        /// Flow index.
        flow: usize,
        /// The segment as written.
        text: String,
        /// The parsed segment.
        pattern: SegmentPattern,
        /// Payload bytes, when given.
        payload: Option<Vec<u8>>,
        /// Checksum to send.
        checksum: Checksum,
        /// packetdrill's TS ecr, in the script's numbers: sent as the kernel's
        /// TS val that the expectation written with this TS val matched.
        ts_ecr: Option<u32>,
    },
    /// Send an ICMP error about a flow to the kernel.
    InjectIcmp {
        /// Flow index.
        flow: usize,
        /// The message as written.
        text: String,
        /// The message.
        icmp: IcmpSpec,
    },
    /// Expect the kernel's next segment on a flow.
    Expect {
        /// Flow index.
        flow: usize,
        /// The segment as written.
        text: String,
        /// The parsed segment.
        pattern: SegmentPattern,
        /// Payload bytes the segment must carry, when given.
        payload: Option<Vec<u8>>,
        /// `isn: new`: the segment is a SYN whose ISN differs from every ISN
        /// the kernel used earlier in the case, on any flow.
        new_isn: bool,
        /// packetdrill's TS val, in the script's numbers: remembered with the
        /// kernel's TS val for later TS ecr, and checked against it when the
        /// case has a [`Rules::ts_tick`].
        ts_val: Option<u32>,
    },
    /// Expect no frame at all (on one flow, or on any) for a while.
    ExpectNothing {
        /// Flow index, or any flow.
        flow: Option<usize>,
        /// How long.
        during: Duration,
    },
    /// Check a socket's TCP state.
    State {
        /// The socket or flow.
        target: Target,
        /// The state it must be in.
        state: TcpState,
    },
    /// Check a listener's accept queue: length and limit.
    AcceptQueue {
        /// The listening socket.
        socket: String,
        /// Connections waiting for accept().
        len: u32,
        /// The queue's limit (the backlog the kernel applied).
        limit: u32,
    },
    /// Let time pass.
    Wait(Duration),
    /// Read a sysctl in the target namespace and record its value (or its
    /// absence) in the report; never fails. For knobs whose mere presence
    /// differs between kernels (`net.ipv4.tcp_tw_recycle`).
    ReadSysctl(String),
    /// Run a shell command in the lab; it must exit 0.
    Shell(String),
    /// Take a snapshot of a socket (tcp_info, cc info, memory) for a Python
    /// block that runs on it once the steps are done, as packetdrill does.
    Code {
        /// The Python code.
        text: String,
        /// The socket it looks at (`None`: there is none to look at, and the
        /// step fails, as packetdrill's does).
        socket: Option<String>,
    },
}

impl Action {
    /// Whether the harness performs the step at its due time (a call, an
    /// injection, a read), rather than waiting for the kernel.
    pub fn harness_acts(&self) -> bool {
        match self {
            Action::Call { .. }
            | Action::Inject { .. }
            | Action::InjectIcmp { .. }
            | Action::State { .. }
            | Action::AcceptQueue { .. }
            | Action::ReadSysctl(_)
            | Action::Shell(_)
            | Action::Code { .. } => true,
            Action::Await { .. } | Action::Expect { .. } | Action::ExpectNothing { .. } | Action::Wait(_) => false,
        }
    }

    /// The step's keyword in the YAML file.
    pub fn keyword(&self) -> &'static str {
        match self {
            Action::Call { .. } => "call",
            Action::Await { .. } => "await",
            Action::Inject { .. } | Action::InjectIcmp { .. } => "inject",
            Action::Expect { .. } => "expect",
            Action::ExpectNothing { .. } => "expect_nothing",
            Action::State { .. } => "state",
            Action::AcceptQueue { .. } => "accept_queue",
            Action::Wait(_) => "wait",
            Action::ReadSysctl(_) => "read_sysctl",
            Action::Shell(_) => "shell",
            Action::Code { .. } => "code",
        }
    }
}

/// When a step is due, counted from its [`Base`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// No `after`: right away, within the step's tolerance.
    Now,
    /// `after: D`.
    After(Duration),
    /// Any time from the first to the second delay, within the tolerance
    /// (packetdrill's `+a~+b`).
    Within(Duration, Duration),
    /// Whenever it happens: not timed (packetdrill's `*`).
    Any,
}

impl Due {
    /// The delays the step is due within, or `None` when it is not timed.
    pub fn span(self) -> Option<(Duration, Duration)> {
        match self {
            Due::Now => Some((Duration::ZERO, Duration::ZERO)),
            Due::After(d) => Some((d, d)),
            Due::Within(a, b) => Some((a, b)),
            Due::Any => None,
        }
    }
}

/// What a step's due time counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// The previous step's time.
    Previous,
    /// `since: NAME`: an earlier step's time (its index).
    Step(usize),
    /// The start of the case (packetdrill's absolute times).
    Start,
    /// The time the previous step was due, rather than when it happened:
    /// packetdrill chains packets it sends one after the other on their
    /// schedule, so that the harness's delays do not add up.
    PreviousDue,
}

/// One step of a case.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Where the step's action is written.
    pub location: Location,
    /// Its name, if the case gave one.
    pub name: Option<String>,
    /// When it is due (for expectations: when the frame is due).
    pub due: Due,
    /// What `due` counts from.
    pub base: Base,
    /// Timing tolerance of this step, overriding the case's.
    pub tolerance: Option<Duration>,
    /// What it does.
    pub action: Action,
}

/// Which syntax a case is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// tcpconform's YAML (`docs/CASES.md`).
    Yaml,
    /// A packetdrill script (`.pkt`).
    Packetdrill,
}

impl Syntax {
    /// `yaml` or `packetdrill`.
    pub fn name(self) -> &'static str {
        match self {
            Syntax::Yaml => "yaml",
            Syntax::Packetdrill => "packetdrill",
        }
    }
}

/// The addresses of one family in a lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addresses {
    /// The kernel under test's address.
    pub target: IpAddr,
    /// The address the harness speaks from.
    pub peer: IpAddr,
    /// Prefix length of the target's address.
    pub prefix_len: u8,
    /// The next hop of the route to the peer, when the peer is not on the target's subnet.
    pub gateway: Option<IpAddr>,
}

impl Addresses {
    /// The lab's usual plan: target and peer on one subnet (`docs/CASES.md`).
    pub fn standard(family: Family) -> Addresses {
        Addresses {
            target: family.target_addr(),
            peer: family.peer_addr(),
            prefix_len: family.prefix_len(),
            gateway: None,
        }
    }
}

/// How the target's link offloads work from the kernel's TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offloads {
    /// None: every frame carries a full checksum and at most one MSS.
    Off,
    /// Checksum offload and TSO/GSO, like a real NIC or packetdrill's tun
    /// device: the kernel hands the link super-segments (scripts expect them).
    Nic,
}

/// What the target's link is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// A veth pair: the harness sends Ethernet frames from the other end.
    Veth,
    /// A tun device the harness holds, as packetdrill's tun0: the harness
    /// writes IP packets into it, so a GSO packet reaches TCP as the one
    /// segment it is, as from packetdrill.
    Tun,
}

/// What the lab looks like to the kernel, where a case cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabSpec {
    /// The target's link.
    pub link: Link,
    /// The name of the target's link (`tun0` for packetdrill scripts, which name it).
    pub device: String,
    /// Its MTU (the kernel's MSS follows from it).
    pub mtu: u32,
    /// Its offloads.
    pub offloads: Offloads,
    /// Addresses other than the standard plan, per family.
    pub addresses: Vec<(Family, Addresses)>,
}

impl Default for LabSpec {
    fn default() -> LabSpec {
        LabSpec {
            link: Link::Veth,
            device: crate::lab::TARGET_IFNAME.to_string(),
            mtu: crate::packet::MTU,
            offloads: Offloads::Off,
            addresses: Vec::new(),
        }
    }
}

impl LabSpec {
    /// The addresses of `family` in this lab.
    pub fn addresses(&self, family: Family) -> Addresses {
        self.addresses
            .iter()
            .find(|(f, _)| *f == family)
            .map_or_else(|| Addresses::standard(family), |(_, a)| *a)
    }

    /// The MSS the kernel derives from the MTU on `family`.
    pub fn mss(&self, family: Family) -> u32 {
        match family {
            Family::Ipv4 => self.mtu - 20 - 20,
            Family::Ipv6 => self.mtu - 40 - 20,
        }
    }
}

/// What the kernel may send that no step expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leftovers {
    /// Every frame the kernel sends must be expected (tcpconform's cases).
    Fail,
    /// Frames no step expects are recorded but not judged (packetdrill: a
    /// script says only what it expects, and frames of other connections
    /// are ignored).
    Unjudged,
}

/// How strictly a case's exchange is judged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rules {
    /// Frames no step expects.
    pub leftovers: Leftovers,
    /// packetdrill's `--tcp_ts_tick_usecs`: the kernel's TS val must move
    /// with the script's, one tick per this long, within the tolerance.
    pub ts_tick: Option<Duration>,
    /// packetdrill's `--tolerance_percent`: a step's tolerance is at least
    /// this share of its delay (in percent).
    pub tolerance_percent: f64,
    /// packetdrill's `--mss`: injected segments with data arrive as GSO
    /// frames of segments this large, as from a NIC's receive offload.
    pub gso_size: Option<u16>,
    /// Start the timeline just after a tick of the kernel's clock, as
    /// packetdrill does: a script's timers, which the kernel counts in
    /// jiffies, then fire where the script puts them.
    pub start_on_tick: bool,
    /// Join the kernel's consecutive segments until they hold as much data
    /// as an expectation, as packetdrill does (without `--strict_segments`):
    /// the kernel may send in pieces what the script writes as one.
    pub join_segments: bool,
    /// Time the step after an expected segment from when the harness had
    /// taken the segment in, as packetdrill times its next event from when
    /// it has handled the packet it sniffed, rather than from the kernel's
    /// stamp on it, tens of microseconds earlier. Kernel timers that scripts
    /// place at a whole number of jiffies from such a step (RACK's reorder
    /// timer) then round as they do under packetdrill.
    pub anchor_when_seen: bool,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            leftovers: Leftovers::Fail,
            ts_tick: None,
            tolerance_percent: 0.0,
            gso_size: None,
            start_on_tick: false,
            join_segments: false,
            anchor_when_seen: false,
        }
    }
}

/// A shell command a case runs before or after its steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shell {
    /// Where it is written.
    pub location: Location,
    /// The command, as `sh -c` takes it.
    pub text: String,
}

/// A validated case.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// Stable identifier: the path under `cases/` without `.yaml`, unless the file says otherwise.
    pub id: String,
    /// The file.
    pub path: Arc<PathBuf>,
    /// One-line title.
    pub title: String,
    /// What the case checks, and how the kernel differs from the catalogue's claim where it does.
    pub description: Option<String>,
    /// BEHAVIORS.md IDs covered.
    pub covers: Vec<String>,
    /// RFC sections or kernel documents checked.
    pub rfc: Vec<String>,
    /// docs/RFC9293.md IDs checked.
    pub requirements: Vec<String>,
    /// The requirements among them the kernel departs from on purpose, with why.
    pub deviates: Vec<(String, String)>,
    /// Families to run on.
    pub families: Vec<Family>,
    /// Why the case runs on one family only, when it does.
    pub family_reason: Option<String>,
    /// Sysctls set in the target namespace, in file order.
    pub sysctls: Vec<(String, String)>,
    /// Default timing tolerance of the case's steps, when the case gives one.
    pub tolerance: Option<Duration>,
    /// Flows, in file order.
    pub flows: Vec<FlowSpec>,
    /// Steps, in order.
    pub steps: Vec<Step>,
    /// The syntax it is written in.
    pub syntax: Syntax,
    /// The lab it needs.
    pub lab: LabSpec,
    /// How its exchange is judged.
    pub rules: Rules,
    /// A command run in the lab before the steps (packetdrill's init command);
    /// the case fails if it does.
    pub setup: Option<Shell>,
    /// A command run after the steps, whatever happened, once `setup` has
    /// succeeded (packetdrill's cleanup command).
    pub cleanup: Option<Shell>,
    /// The congestion control the case's sockets must use. Where the
    /// namespace cannot default to it (the host leaves it out of
    /// `tcp_allowed_congestion_control`), every socket the case opens selects
    /// it with TCP_CONGESTION (accepted sockets inherit their listener's),
    /// and the result says so.
    pub congestion_control: Option<String>,
    /// Why the case cannot run yet: a construct of its syntax that the
    /// model cannot say (`file:line:col: what`). Such a case is skipped
    /// with this reason, never passed.
    pub unsupported: Option<String>,
}

impl Case {
    /// The case's file, for messages.
    pub fn file(&self) -> &Path {
        &self.path
    }
}
