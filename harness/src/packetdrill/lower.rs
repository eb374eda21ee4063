//! Lowering: a parsed script, run with an [`Invocation`], becomes a [`Case`].
//!
//! packetdrill's semantics are decided here, statically, from the script's
//! order of events:
//! - **the socket under test**: `socket()` makes the new socket the one
//!   packet lines and `%{ }%` blocks refer to; an inbound packet reaching a
//!   listener makes a new connection (a flow, from a new port of the
//!   harness's) the one under test; an outbound SYN after `connect()` makes
//!   the connecting socket's connection a flow. `accept()` gives the newest
//!   connection waiting its descriptor.
//! - **sequence numbers**: a packet with SYN carries absolute numbers, any
//!   other is relative to the ISN, on each side separately; the harness's
//!   ISN is the one the script's SYN (or SYN-ACK) gives, the kernel's comes
//!   from its SYN or SYN-ACK, and the script's own value for it is the one
//!   that line writes. Every number is turned into the flow's relative
//!   numbers, which the engine maps to the wire.
//! - **timestamps**: an outbound TS val is remembered with the kernel's
//!   value (and checked with `--tcp_ts_tick_usecs`); an inbound TS ecr that
//!   repeats it is sent as the kernel's value. An outbound TS ecr is not
//!   checked, as packetdrill does not.
//! - **timing**: `+T` counts from the previous event, `T` from the start,
//!   `*` is untimed, `a~b` a window; a blocking call (`T...END`) runs in the
//!   background and is awaited, END counted from the same base as T, before
//!   the next system call (packetdrill waits for it there) or at the end.
//! - **what is checked**: an outbound packet's window only when written, its
//!   ECN bits only when annotated, its payload as zeros (what writes send),
//!   every other header field and option as written; frames no line
//!   expects are not judged.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::ast::{self, Direction, EventKind, EventTime, Expr, ExprKind, Script, TcpFlags};
use super::invocation::Invocation;
use super::symbols;
use crate::case::call::{
    BindTo, Buffer, Call, Cmsg, CmsgData, Destination, EpollData, EpollEvent, Func, How, MsgOut, OptKind, OptOut,
    OptValue, Outcome, RecvCall, SendCall, SockOpt,
};
use crate::case::{
    Action, Addresses, Base, Case, CaseError, DEFAULT_CALL_TIMEOUT, Diagnostic, Due, FlowSpec, IcmpQuote, IcmpSpec,
    LabSpec, Leftovers, Link, Location, Offloads, Rules, Shell, Step, Syntax,
};
use crate::packet::Family;
use crate::packet::frame::Checksum;
use crate::packet::frame::Ecn;
use crate::packet::icmp::{icmp_code, icmp_code_names, icmp_type, icmp_type_names};
use crate::packet::pattern::{IpPattern, Num, OptionPattern, SegmentPattern, TosPattern};
use crate::packet::tcp::{AccEcnOrder, Flags};

/// How long the end of a script waits for a blocking call still running,
/// as packetdrill does before giving up on it.
const AWAIT_LIMIT: Duration = Duration::from_secs(1);
/// The first port the harness plays passive connections from.
const FIRST_PEER_PORT: u16 = 40001;

/// What a script says about the case it becomes, besides its events.
pub struct Header {
    /// The case's ID.
    pub id: String,
    /// One line saying what the script checks.
    pub title: String,
    /// The script's leading comment.
    pub description: Option<String>,
    /// Why the case runs on one family.
    pub family_reason: String,
}

/// Why a script cannot become a case.
enum Problem {
    /// packetdrill refuses it too.
    Invalid(Diagnostic),
    /// tcpconform cannot say it yet.
    Unsupported(Diagnostic),
}

type Lowered<T> = Result<T, Problem>;

/// Where the script's socket under test is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum UnderTest {
    /// A socket the script opened, by its descriptor.
    Socket(String),
    /// A connection a listener got, before or after accept().
    Child(usize),
}

/// What the lowering knows of a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SockState {
    New,
    Listening,
    Connecting,
    Connected(usize),
    /// connect(AF_UNSPEC) reset its connection: packet lines still name that
    /// connection (the kernel's RST) until the socket connects again.
    Disconnected(usize),
}

/// Where a passive connection is in its handshake (for accept()).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Passive {
    PacketReceived,
    SynAckSent,
    SynAckAcked,
}

/// A flow being built.
struct FlowBuild {
    peer_port: u16,
    kernel_port: Option<u16>,
    /// The harness's ISN (the script's SYN or SYN-ACK seq).
    remote_isn: u32,
    /// The kernel's ISN in the script's numbers.
    local_isn: u32,
    passive: Option<Passive>,
    /// The descriptor accept() gave it.
    accepted: Option<String>,
}

/// A blocking call waiting to be awaited.
struct Blocking {
    sock: String,
    location: Location,
    base: Base,
    end: Duration,
    tolerance: Duration,
}

struct Lowering<'a> {
    inv: &'a Invocation,
    flows: Vec<FlowBuild>,
    steps: Vec<Step>,
    sockets: HashMap<String, SockState>,
    under_test: Option<UnderTest>,
    next_port: u16,
    blocking: Option<Blocking>,
}

fn invalid(location: &Location, message: impl Into<String>) -> Problem {
    Problem::Invalid(Diagnostic {
        location: location.clone(),
        message: message.into(),
    })
}

fn unsupported(location: &Location, message: impl Into<String>) -> Problem {
    Problem::Unsupported(Diagnostic {
        location: location.clone(),
        message: message.into(),
    })
}

fn micros(us: ast::Micros) -> Duration {
    Duration::from_micros(us)
}

/// The step text of each event: what it does as written (its time left
/// out), over as many lines as it takes, comments left out.
fn event_texts(source: &str, script: &Script) -> Vec<String> {
    let lines: Vec<&str> = source.lines().collect();
    let starts: Vec<(usize, usize)> = script
        .events
        .iter()
        .map(|e| {
            let at = match &e.kind {
                EventKind::Packet(p) => &p.at,
                EventKind::Syscall(s) => &s.at,
                EventKind::Command(c) => &c.at,
                EventKind::Code(c) => &c.at,
            };
            (at.line as usize, at.col as usize)
        })
        .collect();
    let last = script
        .cleanup_command
        .as_ref()
        .map_or(lines.len() + 1, |c| c.at.line as usize);
    starts
        .iter()
        .enumerate()
        .map(|(i, &(line, col))| {
            let end = starts.get(i + 1).map_or(last, |s| s.0).max(line + 1);
            let text: Vec<String> = (line..end)
                .filter_map(|n| lines.get(n - 1))
                .enumerate()
                .map(|(k, l)| {
                    let l: String = if k == 0 {
                        l.chars().skip(col - 1).collect()
                    } else {
                        l.to_string()
                    };
                    l.split("//").next().unwrap_or_default().trim().to_string()
                })
                .filter(|l| !l.is_empty())
                .collect();
            text.join(" ")
        })
        .collect()
}

/// Lowers `script` (whose text is `source`) run with `inv` into a case on
/// `inv.family`. A construct tcpconform cannot run makes an *unsupported*
/// case that says where and why; a script packetdrill would refuse is an
/// error.
pub fn lower(
    script: &Script,
    source: &str,
    file: &Arc<PathBuf>,
    inv: &Invocation,
    header: Header,
) -> Result<Case, CaseError> {
    let mut l = Lowering {
        inv,
        flows: Vec::new(),
        steps: Vec::new(),
        sockets: HashMap::new(),
        under_test: None,
        next_port: FIRST_PEER_PORT,
        blocking: None,
    };
    let texts = event_texts(source, script);
    let mut unsupported_because = None;
    for (event, text) in script.events.iter().zip(texts) {
        match l.event(event, text) {
            Ok(()) => {}
            Err(Problem::Invalid(d)) => return Err(CaseError { diagnostics: vec![d] }),
            Err(Problem::Unsupported(d)) => {
                unsupported_because = Some(d.to_string());
                break;
            }
        }
    }
    if unsupported_because.is_none() {
        l.await_blocking();
    }
    let family = inv.family;
    let addresses = Addresses {
        target: inv.local,
        peer: inv.remote,
        prefix_len: inv.prefix_len,
        gateway: inv.gateway,
    };
    let flows = l
        .flows
        .iter()
        .enumerate()
        .map(|(i, f)| FlowSpec {
            name: format!("c{}", i + 1),
            peer_port: f.peer_port,
            kernel_port: f.kernel_port,
            isn: f.remote_isn,
            window: 65535,
        })
        .collect();
    let shell = |c: &ast::Command| Shell {
        location: c.at.clone(),
        text: c.text.clone(),
    };
    Ok(Case {
        id: header.id,
        path: file.clone(),
        title: header.title,
        description: header.description,
        covers: Vec::new(),
        rfc: Vec::new(),
        requirements: Vec::new(),
        deviates: Vec::new(),
        families: vec![family],
        family_reason: Some(header.family_reason),
        sysctls: Vec::new(),
        tolerance: Some(inv.tolerance),
        flows,
        steps: l.steps,
        syntax: Syntax::Packetdrill,
        lab: LabSpec {
            link: Link::Tun,
            device: "tun0".into(),
            mtu: inv.mtu,
            offloads: Offloads::Nic,
            addresses: vec![(family, addresses)],
        },
        rules: Rules {
            leftovers: Leftovers::Unjudged,
            ts_tick: (!inv.ts_tick.is_zero()).then_some(inv.ts_tick),
            tolerance_percent: inv.tolerance_percent,
            gso_size: (inv.mss > 0).then_some(inv.mss),
            start_on_tick: true,
            join_segments: !inv.strict_segments,
            anchor_when_seen: true,
        },
        setup: script.init_command.as_ref().map(shell),
        cleanup: script.cleanup_command.as_ref().map(shell),
        congestion_control: inv.congestion_control.clone(),
        unsupported: unsupported_because,
    })
}

impl Lowering<'_> {
    fn push(&mut self, location: &Location, time: EventTime, tolerance: Option<Duration>, action: Action) {
        let injects = |a: &Action| matches!(a, Action::Inject { .. } | Action::InjectIcmp { .. });
        // Packets sent one after another follow their schedule (packetdrill anchors them so).
        let chained = injects(&action) && self.steps.last().is_some_and(|s| injects(&s.action));
        let (due, base) = match time {
            EventTime::Absolute(t) => (Due::After(micros(t)), Base::Start),
            EventTime::Relative(t) if chained => (Due::After(micros(t)), Base::PreviousDue),
            EventTime::Relative(t) => (Due::After(micros(t)), Base::Previous),
            EventTime::Any => (Due::Any, Base::Previous),
            EventTime::AbsoluteRange(a, b) => (Due::Within(micros(a), micros(b)), Base::Start),
            EventTime::RelativeRange(a, b) => (Due::Within(micros(a), micros(b)), Base::Previous),
        };
        self.steps.push(Step {
            location: location.clone(),
            name: None,
            due,
            base,
            tolerance,
            action,
        });
    }

    /// Awaits the blocking call still running, if any.
    fn await_blocking(&mut self) {
        let Some(b) = self.blocking.take() else { return };
        self.steps.push(Step {
            location: b.location,
            name: None,
            due: Due::After(b.end),
            base: b.base,
            tolerance: Some(b.tolerance),
            action: Action::Await {
                socket: b.sock,
                timeout: AWAIT_LIMIT,
            },
        });
    }

    fn event(&mut self, event: &ast::Event, text: String) -> Lowered<()> {
        match &event.kind {
            EventKind::Packet(p) => self.packet(event, p, text),
            EventKind::Syscall(s) => {
                self.await_blocking();
                self.syscall(event, s, text)
            }
            EventKind::Command(c) => {
                self.push(&event.at, event.time, None, Action::Shell(c.text.clone()));
                Ok(())
            }
            EventKind::Code(c) => {
                let socket = match &self.under_test {
                    Some(UnderTest::Socket(s)) => Some(s.clone()),
                    Some(UnderTest::Child(i)) => self.flows[*i].accepted.clone(),
                    None => None,
                };
                self.push(
                    &event.at,
                    event.time,
                    None,
                    Action::Code {
                        text: c.text.clone(),
                        socket,
                    },
                );
                Ok(())
            }
        }
    }

    /// The descriptor of the socket under test, when it has one.
    fn socket_under_test(&self) -> Option<String> {
        match &self.under_test {
            Some(UnderTest::Socket(s)) => Some(s.clone()),
            Some(UnderTest::Child(i)) => self.flows[*i].accepted.clone(),
            None => None,
        }
    }

    /// The flow of the socket under test, for a packet line that does not start one.
    fn flow_under_test(&self, location: &Location) -> Lowered<usize> {
        match &self.under_test {
            Some(UnderTest::Child(i)) => Ok(*i),
            Some(UnderTest::Socket(s)) => match self.sockets.get(s) {
                Some(SockState::Connected(i) | SockState::Disconnected(i)) => Ok(*i),
                _ => Err(unsupported(
                    location,
                    format!("no connection of socket {s} for this packet (packetdrill fails here: no matching socket)"),
                )),
            },
            None => Err(unsupported(
                location,
                "no socket for this packet (packetdrill fails here: no matching socket)",
            )),
        }
    }

    fn packet(&mut self, event: &ast::Event, p: &ast::Packet, text: String) -> Lowered<()> {
        let seg = match &p.body {
            ast::PacketBody::Tcp(t) => t,
            ast::PacketBody::Icmp(icmp) => return self.icmp(event, p, icmp, text),
        };
        if seg.ports.is_some() {
            return Err(unsupported(&p.at, "packets with explicit ports are not supported"));
        }
        let flags = flags(&seg.flags);
        let ip = ip_pattern(&p.ip, p.direction == Direction::Inbound, &p.at)?;
        let syn = seg.flags.syn;
        let listening = match &self.under_test {
            None => true,
            Some(UnderTest::Socket(s)) => self.sockets.get(s) == Some(&SockState::Listening),
            Some(UnderTest::Child(_)) => false,
        };
        let flow = match p.direction {
            Direction::Inbound if listening => {
                self.flows.push(FlowBuild {
                    peer_port: self.next_port,
                    kernel_port: Some(self.inv.bind_port),
                    remote_isn: seg.seq.start,
                    local_isn: 0,
                    passive: Some(Passive::PacketReceived),
                    accepted: None,
                });
                self.next_port = self.next_port.wrapping_add(1);
                self.under_test = Some(UnderTest::Child(self.flows.len() - 1));
                self.flows.len() - 1
            }
            Direction::Outbound if syn && !seg.flags.ack => match self.socket_under_test() {
                // The socket under test connects (again, after connect(AF_UNSPEC), for an accepted one).
                Some(s) if self.sockets.get(&s) == Some(&SockState::Connecting) => {
                    self.flows.push(FlowBuild {
                        peer_port: self.inv.connect_port,
                        kernel_port: None,
                        remote_isn: 0,
                        local_isn: seg.seq.start,
                        passive: None,
                        accepted: None,
                    });
                    let i = self.flows.len() - 1;
                    self.sockets.insert(s.clone(), SockState::Connected(i));
                    self.under_test = Some(UnderTest::Socket(s));
                    i
                }
                _ => self.flow_under_test(&p.at)?,
            },
            _ => self.flow_under_test(&p.at)?,
        };
        let f = &mut self.flows[flow];
        match p.direction {
            Direction::Outbound if syn && seg.flags.ack && f.passive == Some(Passive::PacketReceived) => {
                f.local_isn = seg.seq.start;
                f.passive = Some(Passive::SynAckSent);
            }
            Direction::Inbound if seg.flags.ack && f.passive == Some(Passive::SynAckSent) => {
                f.passive = Some(Passive::SynAckAcked);
            }
            Direction::Inbound if syn && seg.flags.ack && f.passive.is_none() => f.remote_isn = seg.seq.start,
            _ => {}
        }
        let (remote_isn, local_isn) = (f.remote_isn, f.local_isn);
        // The flow's relative numbers: a SYN's are absolute in the script.
        let (seq_origin, ack_origin) = match (p.direction, syn) {
            (_, false) => (0, 0),
            (Direction::Inbound, true) => (remote_isn, local_isn),
            (Direction::Outbound, true) => (local_isn, remote_isn),
        };
        let rel_seq = seg.seq.start.wrapping_sub(seq_origin);
        let rel = |n: u32| n.wrapping_sub(ack_origin);
        let len = seg.seq.len;
        let inbound = p.direction == Direction::Inbound;
        let mut ts_val = None;
        let mut ts_ecr = None;
        let options = match &seg.options {
            ast::TcpOptions::None => Some(Vec::new()),
            ast::TcpOptions::Any => Some(vec![OptionPattern::Rest]),
            ast::TcpOptions::List(list) => {
                let mut out = Vec::new();
                for (_, option) in list {
                    out.push(match option {
                        ast::TcpOption::Nop => OptionPattern::Nop,
                        ast::TcpOption::Eol => OptionPattern::Eol,
                        ast::TcpOption::Mss(v) => OptionPattern::Mss(Num::Lit(u32::from(*v))),
                        ast::TcpOption::WindowScale(v) => OptionPattern::WindowScale(Num::Lit(u32::from(*v))),
                        ast::TcpOption::SackPermitted => OptionPattern::SackPermitted,
                        ast::TcpOption::Sack(blocks) => OptionPattern::Sack(
                            blocks
                                .iter()
                                .map(|(l, r)| (Num::Lit(rel(*l)), Num::Lit(rel(*r))))
                                .collect(),
                        ),
                        ast::TcpOption::Timestamp { val, ecr } if inbound => {
                            if seg.flags.ack {
                                ts_ecr = Some(*ecr);
                            }
                            OptionPattern::Timestamp {
                                val: Num::Lit(*val),
                                ecr: Num::Lit(*ecr),
                            }
                        }
                        ast::TcpOption::Timestamp { val, .. } => {
                            ts_val = Some(*val);
                            OptionPattern::Timestamp {
                                val: Num::Any,
                                ecr: Num::Any,
                            }
                        }
                        ast::TcpOption::Md5(digest) => match <[u8; 16]>::try_from(digest.as_slice()) {
                            Ok(d) => OptionPattern::Md5(d),
                            Err(_) => OptionPattern::Unknown {
                                kind: 19,
                                data: digest.clone(),
                            },
                        },
                        ast::TcpOption::FastOpen(cookie) => OptionPattern::FastOpen(cookie.clone()),
                        ast::TcpOption::FastOpenExp(cookie) => OptionPattern::FastOpenExp(cookie.clone()),
                        ast::TcpOption::AccEcn(fields) => OptionPattern::AccEcn {
                            order: match fields.first() {
                                Some((ast::AccEcnField::E1b, _)) => AccEcnOrder::E1bFirst,
                                _ => AccEcnOrder::E0bFirst,
                            },
                            counters: fields.iter().map(|(_, v)| Num::Lit(*v)).collect(),
                        },
                    });
                }
                Some(out)
            }
        };
        let pattern = SegmentPattern {
            flags,
            seq: Some(Num::Lit(rel_seq)),
            end: Some(Num::Lit(rel_seq.wrapping_add(len))),
            len: Some(Num::Lit(len)),
            ack: Some(Num::Lit(if seg.flags.ack || seg.ack.is_some() {
                rel(seg.ack.unwrap_or(0))
            } else {
                0
            })),
            win: seg.win.map(|w| Num::Lit(u32::from(w))),
            urg: Some(Num::Lit(u32::from(seg.urg.unwrap_or(0)))),
            options,
            ip,
        };
        let payload = Some(vec![0u8; len as usize]);
        let action = if inbound {
            Action::Inject {
                flow,
                text,
                pattern,
                payload,
                checksum: Checksum::Auto,
                ts_ecr,
            }
        } else {
            Action::Expect {
                flow,
                text,
                pattern,
                payload,
                new_isn: false,
                ts_val,
            }
        };
        self.push(&event.at, event.time, None, action);
        Ok(())
    }

    fn icmp(&mut self, event: &ast::Event, p: &ast::Packet, icmp: &ast::Icmp, text: String) -> Lowered<()> {
        if p.direction == Direction::Outbound {
            return Err(unsupported(&p.at, "expecting ICMP messages from the kernel"));
        }
        if p.ip.at.is_some() {
            return Err(unsupported(&p.at, "IP header fields on ICMP messages"));
        }
        let family = self.inv.family;
        let (tat, tname) = &icmp.type_name;
        let kind = icmp_type(family, tname).ok_or_else(|| {
            let names: Vec<String> = icmp_type_names(family).map(str::to_string).collect();
            invalid(
                tat,
                format!("bad ICMP type `{tname}`{}", crate::case::call::suggest(tname, &names)),
            )
        })?;
        let code = match &icmp.code_name {
            None => 0,
            Some((cat, cname)) => icmp_code(family, kind, cname).ok_or_else(|| {
                let names: Vec<String> = icmp_code_names(family, kind).map(str::to_string).collect();
                invalid(
                    cat,
                    format!("bad ICMP code `{cname}`{}", crate::case::call::suggest(cname, &names)),
                )
            })?,
        };
        let quote = match icmp.quote {
            ast::IcmpQuote::Default => IcmpQuote::Tcp { seq: 0, len: 0 },
            ast::IcmpQuote::Tcp(range) => IcmpQuote::Tcp {
                seq: range.start,
                len: range.len,
            },
            ast::IcmpQuote::Raw(len) => IcmpQuote::Raw { len },
            ast::IcmpQuote::Udp(_) => return Err(unsupported(&p.at, "ICMP messages quoting UDP")),
        };
        let flow = self.flow_under_test(&p.at)?;
        self.push(
            &event.at,
            event.time,
            None,
            Action::InjectIcmp {
                flow,
                text,
                icmp: IcmpSpec {
                    kind,
                    code,
                    mtu: icmp.mtu,
                    id: icmp.id,
                    quote,
                },
            },
        );
        Ok(())
    }

    fn syscall(&mut self, event: &ast::Event, sc: &ast::Syscall, text: String) -> Lowered<()> {
        let at = &sc.at;
        let result = match &sc.result.kind {
            ExprKind::Int(v) => *v,
            _ => return Err(invalid(&sc.result.at, "the result of a call must be a number")),
        };
        let errno = match &sc.errno {
            Some((eat, name)) => Some(
                crate::case::call::errno_from_name(name)
                    .ok_or_else(|| invalid(eat, format!("unknown errno `{name}`{}", symbols::hint(name))))?,
            ),
            None => None,
        };
        let args = &sc.args;
        let arity = |min: usize, max: usize| -> Lowered<()> {
            if args.len() < min || args.len() > max {
                return Err(invalid(
                    at,
                    format!(
                        "{}() takes {} argument(s), not {}",
                        sc.name,
                        if min == max {
                            min.to_string()
                        } else {
                            format!("{min} to {max}")
                        },
                        args.len()
                    ),
                ));
            }
            Ok(())
        };
        let creates = result >= 0 && matches!(sc.name.as_str(), "socket" | "accept" | "open" | "epoll_create");
        let binds = creates.then(|| result.to_string());
        let func = match sc.name.as_str() {
            "socket" => {
                arity(3, 3)?;
                if !matches!(args[0].kind, ExprKind::Ellipsis) {
                    let domain = int(&args[0])?;
                    if domain != family_domain(self.inv.family) {
                        return Err(unsupported(&args[0].at, "sockets of another family than the run's"));
                    }
                }
                Func::Socket {
                    ty: int(&args[1])? as i32,
                    protocol: int(&args[2])? as i32,
                }
            }
            "bind" => {
                arity(3, 3)?;
                ellipsis(&args[1])?;
                Func::Bind {
                    sock: fd(&args[0])?,
                    port: self.inv.bind_port,
                    to: BindTo::Target,
                }
            }
            "listen" => {
                arity(2, 2)?;
                Func::Listen {
                    sock: fd(&args[0])?,
                    backlog: int(&args[1])? as i32,
                }
            }
            "accept" => {
                arity(3, 3)?;
                Func::Accept { sock: fd(&args[0])? }
            }
            "connect" => {
                arity(3, 3)?;
                Func::Connect {
                    sock: fd(&args[0])?,
                    to: self.destination(&args[1])?,
                }
            }
            "write" | "send" | "sendto" => {
                let (n, call) = match sc.name.as_str() {
                    "write" => (3, SendCall::Write),
                    "send" => (4, SendCall::Send),
                    _ => (
                        6,
                        SendCall::SendTo(self.destination(args.get(4).unwrap_or(&sc.result))?),
                    ),
                };
                arity(n, n)?;
                let len = int(&args[2])? as usize;
                Func::Send {
                    sock: fd(&args[0])?,
                    call,
                    data: if buffer(&args[1])? {
                        Buffer::Bytes(vec![0; len])
                    } else {
                        Buffer::Null
                    },
                    len,
                    flags: if n > 3 { int(&args[3])? as i32 } else { 0 },
                }
            }
            "read" | "recv" | "recvfrom" => {
                let (n, call) = match sc.name.as_str() {
                    "read" => (3, RecvCall::Read),
                    "recv" => (4, RecvCall::Recv),
                    _ => (6, RecvCall::RecvFrom),
                };
                arity(n, n)?;
                Func::Recv {
                    sock: fd(&args[0])?,
                    call,
                    len: int(&args[2])? as usize,
                    null: !buffer(&args[1])?,
                    flags: if n > 3 { int(&args[3])? as i32 } else { 0 },
                }
            }
            "sendmsg" => {
                arity(3, 3)?;
                let msg = msghdr(&args[1])?;
                if msg.flags != 0 {
                    return Err(invalid(&args[1].at, "sendmsg ignores msg_flags: write msg_flags=0"));
                }
                if !msg.control.is_empty() {
                    return Err(unsupported(&args[1].at, "sendmsg with control messages"));
                }
                Func::SendMsg {
                    sock: fd(&args[0])?,
                    iov: msg.iov,
                    to: Destination::Peer(self.inv.connect_port),
                    flags: int(&args[2])? as i32,
                }
            }
            "recvmsg" => {
                arity(3, 3)?;
                let msg = msghdr(&args[1])?;
                Func::RecvMsg {
                    sock: fd(&args[0])?,
                    iov: msg.iov,
                    flags: int(&args[2])? as i32,
                    out: Some(MsgOut {
                        flags: msg.flags,
                        control: msg.control,
                    }),
                }
            }
            "close" => {
                arity(1, 1)?;
                Func::Close { sock: fd(&args[0])? }
            }
            "shutdown" => {
                arity(2, 2)?;
                let how = match int(&args[1])? as i32 {
                    libc::SHUT_RD => How::Read,
                    libc::SHUT_WR => How::Write,
                    libc::SHUT_RDWR => How::Both,
                    _ => return Err(invalid(&args[1].at, "shutdown() takes SHUT_RD, SHUT_WR or SHUT_RDWR")),
                };
                Func::Shutdown {
                    sock: fd(&args[0])?,
                    how,
                }
            }
            "setsockopt" => {
                arity(5, 5)?;
                let value = match &args[3].kind {
                    ExprKind::List(items) if items.len() == 1 => OptValue::Ints(vec![int(&items[0])? as i32]),
                    ExprKind::Str(bytes) => OptValue::Bytes(bytes.clone()),
                    ExprKind::Struct(fields) => OptValue::Ints(vec![
                        field_int(fields, "onoff", &args[3])? as i32,
                        field_int(fields, "linger", &args[3])? as i32,
                    ]),
                    _ => return Err(unsupported(&args[3].at, "this kind of setsockopt() value")),
                };
                Func::SetSockOpt {
                    sock: fd(&args[0])?,
                    opt: sockopt(&args[1], &args[2])?,
                    value,
                    len: Some(int(&args[4])? as u32),
                }
            }
            "getsockopt" => {
                arity(5, 5)?;
                let value = match &args[3].kind {
                    ExprKind::List(items) if items.len() == 1 => OptValue::Ints(vec![int(&items[0])? as i32]),
                    ExprKind::Str(bytes) => OptValue::Bytes(bytes.clone()),
                    _ => return Err(unsupported(&args[3].at, "this kind of getsockopt() value")),
                };
                let len = match &args[4].kind {
                    ExprKind::List(items) if items.len() == 1 => int(&items[0])? as u32,
                    _ => return Err(invalid(&args[4].at, "getsockopt()'s length is written [N]")),
                };
                Func::GetSockOpt {
                    sock: fd(&args[0])?,
                    opt: sockopt(&args[1], &args[2])?,
                    out: Some(OptOut { value, len }),
                }
            }
            "fcntl" => {
                arity(2, 3)?;
                Func::Fcntl {
                    sock: fd(&args[0])?,
                    cmd: int(&args[1])? as i32,
                    arg: args.get(2).map(int).transpose()?,
                }
            }
            "ioctl" => {
                arity(2, 3)?;
                let out = match args.get(2).map(|a| &a.kind) {
                    None => None,
                    Some(ExprKind::List(items)) if items.len() == 1 => Some(int(&items[0])?),
                    Some(_) => return Err(invalid(&args[2].at, "ioctl()'s argument is written [N]")),
                };
                Func::Ioctl {
                    sock: fd(&args[0])?,
                    request: int(&args[1])? as u64,
                    out,
                }
            }
            "epoll_create" => {
                arity(1, 1)?;
                Func::EpollCreate {
                    size: int(&args[0])? as i32,
                }
            }
            "epoll_ctl" => {
                arity(4, 4)?;
                Func::EpollCtl {
                    epoll: fd(&args[0])?,
                    op: int(&args[1])? as i32,
                    sock: fd(&args[2])?,
                    event: epoll_event(&args[3])?,
                }
            }
            "epoll_wait" => {
                arity(4, 4)?;
                Func::EpollWait {
                    epoll: fd(&args[0])?,
                    event: epoll_event(&args[1])?,
                    max: int(&args[2])? as i32,
                    timeout_ms: int(&args[3])? as i32,
                }
            }
            "pipe" => {
                arity(1, 1)?;
                let ExprKind::List(ends) = &args[0].kind else {
                    return Err(invalid(&args[0].at, "pipe() takes [READ, WRITE]"));
                };
                if ends.len() != 2 {
                    return Err(invalid(
                        &args[0].at,
                        format!("{} pipe descriptors instead of 2", ends.len()),
                    ));
                }
                Func::Pipe {
                    read: fd(&ends[0])?,
                    write: fd(&ends[1])?,
                }
            }
            "open" => {
                arity(2, 2)?;
                let ExprKind::Str(path) = &args[0].kind else {
                    return Err(invalid(&args[0].at, "open() takes a \"path\""));
                };
                Func::Open {
                    path: String::from_utf8_lossy(path).into_owned(),
                    flags: int(&args[1])? as i32,
                }
            }
            "splice" => {
                arity(6, 6)?;
                if int(&args[1])? != 0 || int(&args[3])? != 0 {
                    return Err(unsupported(&args[1].at, "splice() with offsets"));
                }
                Func::Splice {
                    from: fd(&args[0])?,
                    to: fd(&args[2])?,
                    len: int(&args[4])? as usize,
                    flags: int(&args[5])? as u32,
                }
            }
            "sendfile" => {
                arity(4, 4)?;
                let ExprKind::List(off) = &args[2].kind else {
                    return Err(invalid(&args[2].at, "sendfile()'s offset is written [N]"));
                };
                let [offset] = off.as_slice() else {
                    return Err(invalid(&args[2].at, "sendfile()'s offset is written [N]"));
                };
                Func::SendFile {
                    to: fd(&args[0])?,
                    from: fd(&args[1])?,
                    offset: int(offset)?,
                    count: int(&args[3])? as usize,
                }
            }
            other => {
                return Err(unsupported(
                    at,
                    format!("the system call {other}() is not supported yet"),
                ));
            }
        };
        let outcome = match (creates, result, errno) {
            (true, _, _) => Outcome::Success,
            (_, -1, Some(e)) => Outcome::Errno(e),
            (_, -1, None) => Outcome::Failed,
            (_, _, Some(_)) => return Err(invalid(at, "an errno name follows a result of -1")),
            (_, v, None) => Outcome::Value(v),
        };
        self.track(&func, result, binds.as_deref());
        let call = Call { binds, func, outcome };
        let background = sc.end.is_some();
        if let Some(end) = sc.end {
            let sock = call.func.sock().unwrap_or_default().to_string();
            let (base, start) = match event.time {
                EventTime::Absolute(t) => (Base::Start, t),
                EventTime::Relative(t) => (
                    match self.steps.len() {
                        0 => Base::Start,
                        n => Base::Step(n - 1),
                    },
                    t,
                ),
                _ => return Err(invalid(&event.at, "a blocking call's time is T or +T")),
            };
            let span = micros(end.saturating_sub(start));
            let tolerance = self.inv.tolerance.max(span.mul_f64(self.inv.tolerance_percent / 100.0));
            self.blocking = Some(Blocking {
                sock,
                location: event.at.clone(),
                base,
                end: micros(end),
                tolerance,
            });
        }
        self.push(
            &event.at,
            event.time,
            None,
            Action::Call {
                text,
                call,
                background,
                sigpipe: None,
                timeout: DEFAULT_CALL_TIMEOUT,
            },
        );
        Ok(())
    }

    /// What a call does to the sockets the lowering follows.
    fn track(&mut self, func: &Func, result: i64, binds: Option<&str>) {
        match func {
            Func::Socket { .. } => {
                if let Some(name) = binds {
                    self.sockets.insert(name.to_string(), SockState::New);
                    self.under_test = Some(UnderTest::Socket(name.to_string()));
                }
            }
            Func::Listen { sock, .. } if result == 0 => {
                self.sockets.insert(sock.clone(), SockState::Listening);
            }
            Func::Accept { .. } => {
                if let Some(name) = binds {
                    let waiting = self.flows.iter().rposition(|f| {
                        f.accepted.is_none() && matches!(f.passive, Some(Passive::SynAckSent | Passive::SynAckAcked))
                    });
                    if let Some(i) = waiting {
                        self.flows[i].accepted = Some(name.to_string());
                        self.sockets.insert(name.to_string(), SockState::Connected(i));
                    } else {
                        self.sockets.insert(name.to_string(), SockState::New);
                    }
                }
            }
            Func::Connect {
                sock,
                to: Destination::Family(af),
            } if *af == libc::AF_UNSPEC => {
                let state = match self.sockets.get(sock) {
                    Some(SockState::Connected(i) | SockState::Disconnected(i)) => SockState::Disconnected(*i),
                    _ => SockState::New,
                };
                self.sockets.insert(sock.clone(), state);
            }
            Func::Connect { sock, .. }
            | Func::Send {
                sock,
                call: SendCall::SendTo(_),
                ..
            }
            | Func::SendMsg { sock, .. }
                if matches!(
                    self.sockets.get(sock),
                    Some(SockState::New | SockState::Disconnected(_))
                ) =>
            {
                self.sockets.insert(sock.clone(), SockState::Connecting);
            }
            _ => {}
        }
    }

    fn destination(&self, e: &Expr) -> Lowered<Destination> {
        match &e.kind {
            ExprKind::Ellipsis => Ok(Destination::Peer(self.inv.connect_port)),
            _ => Ok(Destination::Family(int(e)? as i32)),
        }
    }
}

fn family_domain(family: Family) -> i64 {
    match family {
        Family::Ipv4 => i64::from(libc::AF_INET),
        Family::Ipv6 => i64::from(libc::AF_INET6),
    }
}

/// packetdrill's flags as tcpconform's: an ACE digit sets AE, CWR and ECE
/// as one value.
fn flags(f: &TcpFlags) -> Flags {
    let mut out = Flags::NONE;
    for (on, flag) in [
        (f.fin, Flags::FIN),
        (f.syn, Flags::SYN),
        (f.rst, Flags::RST),
        (f.psh, Flags::PSH),
        (f.ack, Flags::ACK),
        (f.urg, Flags::URG),
        (f.ece, Flags::ECE),
        (f.cwr, Flags::CWR),
        (f.ae, Flags::AE),
    ] {
        if on {
            out |= flag;
        }
    }
    match f.ace {
        Some(ace) => out.with_ace(ace),
        None => out,
    }
}

/// The IP annotation of a packet line as a pattern.
fn ip_pattern(ip: &ast::IpInfo, inbound: bool, packet: &Location) -> Lowered<IpPattern> {
    let at = ip.at.as_ref().unwrap_or(packet);
    let tos = match (ip.ecn, ip.tos) {
        (Some(_), Some(_)) => {
            return Err(invalid(at, "give an ECN codepoint or a tos, not both"));
        }
        (Some(ast::Ecn::Ect01), None) if inbound => {
            return Err(invalid(at, "[ect01] can only be used with outbound packets"));
        }
        (Some(e), None) => Some(match e {
            ast::Ecn::NotEct => TosPattern::Ecn(Ecn::NotEct),
            ast::Ecn::Ect1 => TosPattern::Ecn(Ecn::Ect1),
            ast::Ecn::Ect0 => TosPattern::Ecn(Ecn::Ect0),
            ast::Ecn::Ce => TosPattern::Ecn(Ecn::Ce),
            ast::Ecn::Ect01 => TosPattern::EitherEct,
        }),
        (None, Some(t)) => Some(TosPattern::Byte(t)),
        (None, None) => None,
    };
    Ok(IpPattern {
        tos,
        // packetdrill checks a TTL only when it is not 0.
        ttl: ip.ttl.filter(|t| *t != 0),
        flow_label: ip.flow_label.filter(|f| *f != 0),
    })
}

/// A number: written, a symbol, or symbols joined by `|`.
fn int(e: &Expr) -> Lowered<i64> {
    match &e.kind {
        ExprKind::Int(v) => Ok(*v),
        ExprKind::Word(w) => {
            symbols::value(w).ok_or_else(|| unsupported(&e.at, format!("unknown symbol `{w}`{}", symbols::hint(w))))
        }
        ExprKind::Or(parts) => parts.iter().try_fold(0, |acc, p| Ok(acc | int(p)?)),
        _ => Err(invalid(&e.at, "expected a number or a symbol")),
    }
}

/// A descriptor number, as the name of its descriptor.
fn fd(e: &Expr) -> Lowered<String> {
    match &e.kind {
        ExprKind::Int(v) if *v >= 0 => Ok(v.to_string()),
        _ => Err(invalid(&e.at, "expected a file descriptor number")),
    }
}

fn ellipsis(e: &Expr) -> Lowered<()> {
    match e.kind {
        ExprKind::Ellipsis => Ok(()),
        _ => Err(unsupported(&e.at, "addresses other than `...`")),
    }
}

/// A buffer argument: `...` (a buffer), or NULL / 0 (none).
fn buffer(e: &Expr) -> Lowered<bool> {
    match &e.kind {
        ExprKind::Ellipsis => Ok(true),
        _ if int(e).ok() == Some(0) => Ok(false),
        _ => Err(invalid(&e.at, "expected ... or NULL for the buffer")),
    }
}

fn sockopt(level: &Expr, name: &Expr) -> Lowered<SockOpt> {
    let level_value = int(level)? as i32;
    let name_value = int(name)? as i32;
    let text = match &name.kind {
        ExprKind::Word(w) => symbols::static_name(w).unwrap_or("option"),
        _ => "option",
    };
    Ok(SockOpt {
        name: text,
        level: level_value,
        optname: name_value,
        kind: OptKind::Int,
    })
}

/// `name=value` among a struct's fields.
fn field<'e>(fields: &'e [Expr], name: &str) -> Option<&'e Expr> {
    fields.iter().find_map(|f| match &f.kind {
        ExprKind::Field { name: n, value, .. } if n == name => Some(value.as_ref()),
        _ => None,
    })
}

fn field_int(fields: &[Expr], name: &str, whole: &Expr) -> Lowered<i64> {
    field(fields, name)
        .ok_or_else(|| invalid(&whole.at, format!("expected a field `{name}=`")))
        .and_then(int)
}

/// A parsed `struct msghdr`.
struct Msghdr {
    iov: Vec<usize>,
    flags: i32,
    control: Vec<Cmsg>,
}

fn msghdr(e: &Expr) -> Lowered<Msghdr> {
    let ExprKind::Struct(fields) = &e.kind else {
        return Err(invalid(
            &e.at,
            "expected a struct msghdr {msg_name(...)=..., msg_iov(N)=[...], ...}",
        ));
    };
    let iov = match field(fields, "msg_iov").map(|v| &v.kind) {
        Some(ExprKind::List(items)) => items
            .iter()
            .map(|item| match &item.kind {
                ExprKind::Struct(parts) if parts.len() == 2 => int(&parts[1]).map(|n| n as usize),
                _ => Err(invalid(&item.at, "an iovec is written {..., LENGTH}")),
            })
            .collect::<Lowered<Vec<usize>>>()?,
        _ => return Err(invalid(&e.at, "expected msg_iov(N)=[{..., LENGTH}, ...]")),
    };
    let flags = field(fields, "msg_flags").map(int).transpose()?.unwrap_or(0) as i32;
    let control = match field(fields, "msg_control").map(|v| &v.kind) {
        None => Vec::new(),
        Some(ExprKind::List(items)) => items.iter().map(cmsg).collect::<Lowered<_>>()?,
        Some(_) => return Err(invalid(&e.at, "expected msg_control=[{cmsg_level=..., ...}, ...]")),
    };
    Ok(Msghdr { iov, flags, control })
}

fn cmsg(e: &Expr) -> Lowered<Cmsg> {
    let ExprKind::Struct(fields) = &e.kind else {
        return Err(invalid(
            &e.at,
            "expected {cmsg_level=..., cmsg_type=..., cmsg_data=...}",
        ));
    };
    let level = field_int(fields, "cmsg_level", e)? as i32;
    let kind = field_int(fields, "cmsg_type", e)? as i32;
    let data = field(fields, "cmsg_data").ok_or_else(|| invalid(&e.at, "expected cmsg_data="))?;
    let data = match &data.kind {
        ExprKind::Struct(d) if field(d, "ee_errno").is_some() => CmsgData::ExtendedErr {
            errno: field_int(d, "ee_errno", data)? as u32,
            origin: field_int(d, "ee_origin", data)? as u8,
            kind: field_int(d, "ee_type", data)? as u8,
            code: field_int(d, "ee_code", data)? as u8,
            info: field_int(d, "ee_info", data)? as u32,
            data: field_int(d, "ee_data", data)? as u32,
        },
        ExprKind::Struct(d) if field(d, "scm_sec").is_some() => CmsgData::Timestamping {
            sec: field_int(d, "scm_sec", data)?,
            nsec: field_int(d, "scm_nsec", data)?,
        },
        ExprKind::Struct(_) => return Err(unsupported(&data.at, "this kind of control message data")),
        _ => CmsgData::Int(int(data)? as i32),
    };
    Ok(Cmsg { level, kind, data })
}

fn epoll_event(e: &Expr) -> Lowered<EpollEvent> {
    let ExprKind::Struct(fields) = &e.kind else {
        return Err(invalid(&e.at, "expected {events=..., fd=...}"));
    };
    let events = field_int(fields, "events", e)? as u32;
    let data = if let Some(f) = field(fields, "fd") {
        EpollData::Fd(fd(f)?)
    } else if let Some(v) = ["ptr", "u32", "u64"].iter().find_map(|n| field(fields, n)) {
        EpollData::Raw(int(v)? as u64)
    } else {
        return Err(invalid(&e.at, "expected fd=, ptr=, u32= or u64= in the epoll_event"));
    };
    Ok(EpollEvent { events, data })
}
