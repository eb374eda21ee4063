//! The one event type the engine and the suite runner emit. Every reporter
//! (terminal, JSON, JUnit, HTML, pcap, libtest) is a consumer of [`Event`]s
//! and nothing else.
//!
//! A case's result carries its verdict and everything observed while it
//! ran: every frame in both directions with its time and bytes, every
//! socket call with its result, every state probe. A report can therefore
//! answer "what did the kernel do" without running anything again.

use std::fmt;
use std::time::Duration;

use crate::case::Syntax;
use crate::clock::Timestamp;
use crate::lab::SysctlValue;
use crate::packet::Family;

/// Which way a frame went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Injected by the harness into the kernel (packetdrill's `<`).
    ToKernel,
    /// Sent by the kernel (packetdrill's `>`).
    FromKernel,
}

impl Direction {
    /// `<` for frames into the kernel, `>` for frames out of it, as packetdrill writes them.
    pub fn arrow(self) -> &'static str {
        match self {
            Direction::ToKernel => "<",
            Direction::FromKernel => ">",
        }
    }
}

/// One thing observed during a case. Times are nanoseconds since the case's
/// first step started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A frame on the wire.
    Frame {
        /// When it was sent (injected) or stamped by the kernel (captured).
        at: i64,
        /// Absolute time, for captures.
        stamp: Timestamp,
        /// Direction.
        direction: Direction,
        /// The flow it belongs to, if any.
        flow: Option<String>,
        /// The segment in notation (relative numbers), or what the frame is.
        text: String,
        /// Whether every checksum in it is right.
        checksum_ok: bool,
        /// The whole Ethernet frame.
        bytes: Vec<u8>,
    },
    /// A socket call.
    Call {
        /// When it was made.
        at: i64,
        /// When it returned.
        returned: i64,
        /// The call as written in the case.
        text: String,
        /// What it returned (`0`, `5 "hello"`, `-1 ECONNREFUSED`).
        result: String,
        /// Whether it raised SIGPIPE.
        sigpipe: bool,
    },
    /// A TCP state read with sock_diag.
    State {
        /// When.
        at: i64,
        /// The socket or flow.
        target: String,
        /// The state found.
        state: String,
    },
    /// A sysctl read in the target namespace (`None`: the knob does not exist there).
    Sysctl {
        /// When.
        at: i64,
        /// Dotted name.
        name: String,
        /// Its value.
        value: Option<String>,
    },
    /// A shell command the case ran in its lab.
    Command {
        /// When it started.
        at: i64,
        /// When it ended.
        returned: i64,
        /// The command.
        text: String,
        /// How it ended (`exit 0`).
        status: String,
        /// The end of what it printed on its standard error.
        output: String,
    },
    /// An accept queue read with sock_diag.
    AcceptQueue {
        /// When.
        at: i64,
        /// The listener.
        socket: String,
        /// Connections waiting.
        len: u32,
        /// The limit.
        limit: u32,
    },
}

impl Record {
    /// The time of the record on the case's timeline.
    pub fn at(&self) -> i64 {
        match self {
            Record::Frame { at, .. }
            | Record::Call { at, .. }
            | Record::State { at, .. }
            | Record::Sysctl { at, .. }
            | Record::Command { at, .. }
            | Record::AcceptQueue { at, .. } => *at,
        }
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = |ns: i64| crate::clock::Offset(ns);
        match self {
            Record::Frame {
                at,
                direction,
                flow,
                text,
                checksum_ok,
                ..
            } => {
                write!(f, "{:>10} {} {text}", t(*at), direction.arrow())?;
                if let Some(flow) = flow {
                    write!(f, "  [{flow}]")?;
                }
                if !checksum_ok {
                    f.write_str("  (bad checksum)")?;
                }
                Ok(())
            }
            Record::Call {
                at,
                text,
                result,
                sigpipe,
                ..
            } => {
                write!(f, "{:>10}   {text} = {result}", t(*at))?;
                if *sigpipe {
                    f.write_str(" (SIGPIPE)")?;
                }
                Ok(())
            }
            Record::State { at, target, state } => write!(f, "{:>10}   state {target} {state}", t(*at)),
            Record::Sysctl { at, name, value } => {
                write!(
                    f,
                    "{:>10}   sysctl {name} = {}",
                    t(*at),
                    value.as_deref().unwrap_or("(absent)")
                )
            }
            Record::Command { at, text, status, .. } => {
                write!(f, "{:>10}   `{}` {status}", t(*at), one_line(text))
            }
            Record::AcceptQueue { at, socket, len, limit } => {
                write!(f, "{:>10}   accept queue {socket} len {len} limit {limit}", t(*at))
            }
        }
    }
}

/// A command's text on one line: its lines joined with `; `.
pub fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// How a case ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The kernel did what the case says.
    Pass,
    /// The kernel did something else; the message says where and what.
    Fail(String),
    /// The case cannot run on this kernel (a knob is missing, ...); the reason says why.
    Skip(String),
    /// The harness or the environment failed; the case's outcome is unknown.
    Error(String),
}

impl Verdict {
    /// `pass`, `fail`, `skip` or `error`.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail(_) => "fail",
            Verdict::Skip(_) => "skip",
            Verdict::Error(_) => "error",
        }
    }

    /// The message or reason, empty for a pass.
    pub fn message(&self) -> &str {
        match self {
            Verdict::Pass => "",
            Verdict::Fail(m) | Verdict::Skip(m) | Verdict::Error(m) => m,
        }
    }
}

/// Everything known about one case run on one family.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// Case ID.
    pub id: String,
    /// Case title.
    pub title: String,
    /// BEHAVIORS.md IDs covered.
    pub covers: Vec<String>,
    /// RFC sections or documents.
    pub rfc: Vec<String>,
    /// docs/RFC9293.md IDs the case checks.
    pub requirements: Vec<String>,
    /// The requirements among them the kernel departs from on purpose, with why.
    pub deviates: Vec<(String, String)>,
    /// The case's description.
    pub description: Option<String>,
    /// Family it ran on.
    pub family: Family,
    /// The syntax the case is written in.
    pub syntax: Syntax,
    /// The verdict.
    pub verdict: Verdict,
    /// Wall time, lab setup and teardown included.
    pub duration: Duration,
    /// The default timing tolerance the case ran with.
    pub tolerance: Duration,
    /// The sysctls the case set, as read back.
    pub sysctls: Vec<SysctlValue>,
    /// What was observed, in time order.
    pub exchange: Vec<Record>,
    /// What the run had to do differently from what the case asks, and why
    /// (a congestion control set per socket, ...): one line each.
    pub notes: Vec<String>,
    /// Until when frames were judged (ns on the case's timeline): the end of
    /// the steps, or the failure. Frames after it were recorded but not
    /// judged. `None` when no step ran.
    pub judged_until: Option<i64>,
}

impl CaseResult {
    /// `id::family`, the name of the case's test.
    pub fn name(&self) -> String {
        format!("{}::{}", self.id, self.family)
    }
}

/// Something that happened in a run.
#[derive(Clone, Debug)]
pub enum Event {
    /// A run of `total` case runs is starting.
    RunStarted {
        /// Number of (case, family) runs.
        total: usize,
    },
    /// A case started on a family.
    CaseStarted {
        /// Case ID.
        id: String,
        /// Family.
        family: Family,
    },
    /// A case finished.
    CaseFinished(Box<CaseResult>),
    /// The run ended.
    RunFinished {
        /// Wall time of the whole run.
        duration: Duration,
    },
}
