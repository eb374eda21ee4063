//! Cases: the YAML files under `cases/` that script one exchange with the
//! kernel, and the validated model the engine runs.
//!
//! [`load`] turns a file into a [`Case`] or into diagnostics that point at
//! `file:line:col`; nothing a case file contains makes it panic. The
//! schema is documented in `docs/CASES.md`.

pub mod call;
mod load;
mod syntax;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use self::call::{Call, Func, Outcome};
pub use self::load::{discover, load, load_bytes, load_str, parse_duration};
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
        /// Whether the call must raise SIGPIPE.
        sigpipe: bool,
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
}

impl Action {
    /// Whether the harness performs the step at its due time (a call, an
    /// injection, a read), rather than waiting for the kernel.
    pub fn harness_acts(&self) -> bool {
        match self {
            Action::Call { .. }
            | Action::Inject { .. }
            | Action::State { .. }
            | Action::AcceptQueue { .. }
            | Action::ReadSysctl(_) => true,
            Action::Await { .. } | Action::Expect { .. } | Action::ExpectNothing { .. } | Action::Wait(_) => false,
        }
    }

    /// The step's keyword in the YAML file.
    pub fn keyword(&self) -> &'static str {
        match self {
            Action::Call { .. } => "call",
            Action::Await { .. } => "await",
            Action::Inject { .. } => "inject",
            Action::Expect { .. } => "expect",
            Action::ExpectNothing { .. } => "expect_nothing",
            Action::State { .. } => "state",
            Action::AcceptQueue { .. } => "accept_queue",
            Action::Wait(_) => "wait",
            Action::ReadSysctl(_) => "read_sysctl",
        }
    }
}

/// One step of a case.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Where the step's action is written.
    pub location: Location,
    /// Its name, if the case gave one.
    pub name: Option<String>,
    /// Delay from the previous step's time (for expectations: when the frame is due).
    pub after: Option<Duration>,
    /// `since: NAME`: `after` counts from this earlier step's time (its index) instead.
    pub since: Option<usize>,
    /// Timing tolerance of this step, overriding the case's.
    pub tolerance: Option<Duration>,
    /// What it does.
    pub action: Action,
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
}

impl Case {
    /// The case's file, for messages.
    pub fn file(&self) -> &Path {
        &self.path
    }
}
