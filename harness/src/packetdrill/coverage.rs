//! The project's own packetdrill cases (`cases/packetdrill/*.pkt`) use every
//! construct the front end can run.
//!
//! Each construct is a [`Construct`]. Exhaustive matches (and struct
//! patterns with every field named) map each node of the parsed scripts,
//! and each call of the cases they lower to, to the constructs it uses: a
//! new kind of node, field or call does not compile until it is named here,
//! and a construct no case uses fails the test. What the lowering refuses
//! is in [`refused`], each with a script that shows it: when one becomes
//! supported, its script stops being refused and the test asks for a case.
//! The same goes for every `--option` tcpconform accepts and every define
//! the kernel's runner gives.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ast::{
    Direction, Ecn, Event, EventKind, EventTime, Expr, ExprKind, Icmp, IcmpQuote, IpInfo, Packet, PacketBody, Script,
    Syscall, TcpFlags, TcpOption, TcpOptions, TcpSegment,
};
use super::invocation::{Invocation, OPTIONS};
use crate::case::call::{Buffer, CmsgData, Destination, EpollData, Func, OptValue, RecvCall, SendCall};
use crate::case::{Action, Case};
use crate::packet::Family;

/// Declares [`Construct`] and the list of all of them.
macro_rules! constructs {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// One thing a script can say that the front end gives a meaning to.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
        enum Construct {
            $($(#[$doc])* $name,)*
        }

        /// Every construct.
        const ALL: &[Construct] = &[$(Construct::$name,)*];
    };
}

constructs! {
    /// A backtick command before the first event.
    InitCommand,
    /// A backtick command after the last event.
    CleanupCommand,
    /// `T`
    TimeAbsolute,
    /// `+T`
    TimeRelative,
    /// `*`
    TimeAny,
    /// `T1~T2`
    TimeAbsoluteRange,
    /// `+T1~+T2`
    TimeRelativeRange,
    /// `T...END name(...)`
    BlockingCall,
    /// A backtick command with a time.
    TimedCommand,
    /// `%{ ... }%`
    CodeBlock,
    /// `<` and a TCP segment.
    InboundTcp,
    /// `>` and a TCP segment.
    OutboundTcp,
    /// `< icmp ...`
    InboundIcmp,
    /// `> icmp ...`
    OutboundIcmp,
    /// `[noecn]`
    EcnNotEct,
    /// `[ect1]`
    EcnEct1,
    /// `[ect0]`
    EcnEct0,
    /// `[ce]`
    EcnCe,
    /// `[ect01]`
    EcnEitherEct,
    /// `(tos 0xHH)`
    Tos,
    /// `(ttl N)`
    Ttl,
    /// `(flowlabel 0xHHHHH)`
    FlowLabel,
    /// `[...]` on an ICMP message.
    IpFieldsOnIcmp,
    /// `SRC>DST` ports on a TCP line.
    Ports,
    /// `F`
    FlagFin,
    /// `S`
    FlagSyn,
    /// `R`
    FlagRst,
    /// `P`
    FlagPsh,
    /// `.`
    FlagAck,
    /// `U`
    FlagUrg,
    /// `E`
    FlagEce,
    /// `W`
    FlagCwr,
    /// `A`
    FlagAe,
    /// An ACE digit, `0` to `7`.
    FlagAce,
    /// `-`: no flags at all.
    NoFlags,
    /// `ack N`
    AckField,
    /// `win N`
    Window,
    /// An outbound segment with no `win`: its window is not checked.
    WindowUnchecked,
    /// `urg N`
    UrgentPointer,
    /// No `<...>` list, or `<>`.
    NoOptions,
    /// `<...>`: any options.
    AnyOptions,
    /// `nop`
    OptionNop,
    /// `eol`
    OptionEol,
    /// `mss N`
    OptionMss,
    /// `wscale N`
    OptionWindowScale,
    /// `sackOK`
    OptionSackPermitted,
    /// `sack L:R ...`
    OptionSack,
    /// `TS val V ecr E`
    OptionTimestamp,
    /// `md5 HEX`
    OptionMd5,
    /// `FO`: a Fast Open cookie request.
    OptionFastOpenRequest,
    /// `FO HEX`
    OptionFastOpenCookie,
    /// `FOEXP [HEX]`
    OptionFastOpenExp,
    /// `ECN e0b N ceb N e1b N`
    OptionAccEcn,
    /// An ICMP code after the type.
    IcmpCode,
    /// `mtu N`
    IcmpMtu,
    /// `id N`
    IcmpId,
    /// No quoted packet.
    QuoteDefault,
    /// `[START:END(LEN)]`
    QuoteTcp,
    /// `[udp (N)]`
    QuoteUdp,
    /// `[raw (N)]`
    QuoteRaw,
    /// `= -1 ENAME (...)`
    Errno,
    /// `= -1` with no errno name.
    FailureWithoutErrno,
    /// A parenthesised note after the result.
    Note,
    /// `...`
    ExprEllipsis,
    /// A number.
    ExprInt,
    /// A symbolic constant (or a define that names one).
    ExprWord,
    /// `"..."`
    ExprString,
    /// `a|b`
    ExprOr,
    /// `[...]`
    ExprList,
    /// `{...}`
    ExprStruct,
    /// `name=value`
    ExprField,
    /// `name(N)=value`
    ExprFieldWithCount,
    /// `f(args)` inside an argument.
    ExprCall,
    /// socket()
    CallSocket,
    /// bind()
    CallBind,
    /// listen()
    CallListen,
    /// accept()
    CallAccept,
    /// connect() to the peer.
    CallConnect,
    /// connect() with a family alone (AF_UNSPEC).
    CallConnectFamily,
    /// write()
    CallWrite,
    /// send()
    CallSend,
    /// sendto()
    CallSendTo,
    /// read()
    CallRead,
    /// recv()
    CallRecv,
    /// recvfrom()
    CallRecvFrom,
    /// A NULL buffer to a send or a receive.
    NullBuffer,
    /// sendmsg()
    CallSendMsg,
    /// recvmsg()
    CallRecvMsg,
    /// A control message with an int.
    CmsgInt,
    /// A control message with a `sock_extended_err`.
    CmsgExtendedErr,
    /// A control message with timestamps.
    CmsgTimestamping,
    /// shutdown()
    CallShutdown,
    /// close()
    CallClose,
    /// setsockopt() with an int.
    CallSetSockOptInt,
    /// setsockopt() with a struct linger.
    CallSetSockOptLinger,
    /// setsockopt() with bytes.
    CallSetSockOptBytes,
    /// getsockopt() of an int.
    CallGetSockOptInt,
    /// getsockopt() of bytes.
    CallGetSockOptBytes,
    /// fcntl(fd, cmd)
    CallFcntl,
    /// fcntl(fd, cmd, arg)
    CallFcntlArg,
    /// ioctl()
    CallIoctl,
    /// epoll_create()
    CallEpollCreate,
    /// epoll_ctl()
    CallEpollCtl,
    /// epoll_wait()
    CallEpollWait,
    /// An epoll_event naming a descriptor (`fd=`).
    EpollFd,
    /// An epoll_event with raw data (`ptr=`, `u32=`, `u64=`).
    EpollRaw,
    /// pipe()
    CallPipe,
    /// open()
    CallOpen,
    /// splice()
    CallSplice,
    /// sendfile()
    CallSendFile,
}

use Construct as C;

/// What the lowering refuses, each with a script that uses it.
fn refused() -> Vec<(Construct, String)> {
    [
        (C::OutboundIcmp, "+0 > icmp echo_reply"),
        (C::IpFieldsOnIcmp, "+0 < [ect0] icmp echo_request"),
        (C::Ports, "+0 < 40000>8080 S 0:0(0) win 1000"),
        (C::QuoteUdp, "+0 < icmp unreachable [udp (10)]"),
        (C::ExprCall, "+0 setsockopt(3, SOL_SOCKET, SO_MARK, [htonl(1)], 4) = 0"),
    ]
    .into_iter()
    .map(|(c, event)| (c, format!("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n{event}\n")))
    .collect()
}

fn script(s: &Script, out: &mut BTreeSet<Construct>) {
    if s.init_command.is_some() {
        out.insert(C::InitCommand);
    }
    if s.cleanup_command.is_some() {
        out.insert(C::CleanupCommand);
    }
    for e in &s.events {
        event(e, out);
    }
}

fn event(e: &Event, out: &mut BTreeSet<Construct>) {
    out.insert(match e.time {
        EventTime::Absolute(_) => C::TimeAbsolute,
        EventTime::Relative(_) => C::TimeRelative,
        EventTime::Any => C::TimeAny,
        EventTime::AbsoluteRange(..) => C::TimeAbsoluteRange,
        EventTime::RelativeRange(..) => C::TimeRelativeRange,
    });
    match &e.kind {
        EventKind::Packet(p) => packet(p, out),
        EventKind::Syscall(s) => syscall(s, out),
        EventKind::Command(_) => {
            out.insert(C::TimedCommand);
        }
        EventKind::Code(_) => {
            out.insert(C::CodeBlock);
        }
    }
}

fn packet(p: &Packet, out: &mut BTreeSet<Construct>) {
    let Packet {
        at: _,
        direction,
        ip,
        body,
    } = p;
    ip_info(ip, out);
    match (direction, body) {
        (Direction::Inbound, PacketBody::Tcp(t)) => {
            out.insert(C::InboundTcp);
            tcp(t, *direction, out);
        }
        (Direction::Outbound, PacketBody::Tcp(t)) => {
            out.insert(C::OutboundTcp);
            tcp(t, *direction, out);
        }
        (Direction::Inbound, PacketBody::Icmp(i)) => {
            out.insert(C::InboundIcmp);
            icmp(i, ip, out);
        }
        (Direction::Outbound, PacketBody::Icmp(i)) => {
            out.insert(C::OutboundIcmp);
            icmp(i, ip, out);
        }
    }
}

fn ip_info(ip: &IpInfo, out: &mut BTreeSet<Construct>) {
    let IpInfo {
        at: _,
        ecn,
        tos,
        ttl,
        flow_label,
    } = ip;
    if let Some(ecn) = ecn {
        out.insert(match ecn {
            Ecn::NotEct => C::EcnNotEct,
            Ecn::Ect1 => C::EcnEct1,
            Ecn::Ect0 => C::EcnEct0,
            Ecn::Ce => C::EcnCe,
            Ecn::Ect01 => C::EcnEitherEct,
        });
    }
    for (given, construct) in [
        (tos.is_some(), C::Tos),
        (ttl.is_some(), C::Ttl),
        (flow_label.is_some(), C::FlowLabel),
    ] {
        if given {
            out.insert(construct);
        }
    }
}

fn tcp(t: &TcpSegment, direction: Direction, out: &mut BTreeSet<Construct>) {
    let TcpSegment {
        ports,
        flags_at: _,
        flags,
        seq_at: _,
        seq: _,
        ack,
        win,
        urg,
        options,
    } = t;
    let TcpFlags {
        fin,
        syn,
        rst,
        psh,
        ack: ack_flag,
        urg: urg_flag,
        ece,
        cwr,
        ae,
        ace,
    } = *flags;
    if *flags == TcpFlags::default() {
        out.insert(C::NoFlags);
    }
    for (given, construct) in [
        (ports.is_some(), C::Ports),
        (fin, C::FlagFin),
        (syn, C::FlagSyn),
        (rst, C::FlagRst),
        (psh, C::FlagPsh),
        (ack_flag, C::FlagAck),
        (urg_flag, C::FlagUrg),
        (ece, C::FlagEce),
        (cwr, C::FlagCwr),
        (ae, C::FlagAe),
        (ace.is_some(), C::FlagAce),
        (ack.is_some(), C::AckField),
        (win.is_some(), C::Window),
        (win.is_none() && direction == Direction::Outbound, C::WindowUnchecked),
        (urg.is_some(), C::UrgentPointer),
    ] {
        if given {
            out.insert(construct);
        }
    }
    match options {
        TcpOptions::None => {
            out.insert(C::NoOptions);
        }
        TcpOptions::Any => {
            out.insert(C::AnyOptions);
        }
        TcpOptions::List(list) => out.extend(list.iter().map(|(_, o)| match o {
            TcpOption::Nop => C::OptionNop,
            TcpOption::Eol => C::OptionEol,
            TcpOption::Mss(_) => C::OptionMss,
            TcpOption::WindowScale(_) => C::OptionWindowScale,
            TcpOption::SackPermitted => C::OptionSackPermitted,
            TcpOption::Sack(_) => C::OptionSack,
            TcpOption::Timestamp { .. } => C::OptionTimestamp,
            TcpOption::Md5(_) => C::OptionMd5,
            TcpOption::FastOpen(cookie) if cookie.is_empty() => C::OptionFastOpenRequest,
            TcpOption::FastOpen(_) => C::OptionFastOpenCookie,
            TcpOption::FastOpenExp(_) => C::OptionFastOpenExp,
            TcpOption::AccEcn(_) => C::OptionAccEcn,
        })),
    }
}

fn icmp(i: &Icmp, ip: &IpInfo, out: &mut BTreeSet<Construct>) {
    let Icmp {
        type_name: _,
        code_name,
        mtu,
        id,
        quote,
    } = i;
    for (given, construct) in [
        (ip.at.is_some(), C::IpFieldsOnIcmp),
        (code_name.is_some(), C::IcmpCode),
        (mtu.is_some(), C::IcmpMtu),
        (id.is_some(), C::IcmpId),
    ] {
        if given {
            out.insert(construct);
        }
    }
    out.insert(match quote {
        IcmpQuote::Default => C::QuoteDefault,
        IcmpQuote::Tcp(_) => C::QuoteTcp,
        IcmpQuote::Udp(_) => C::QuoteUdp,
        IcmpQuote::Raw(_) => C::QuoteRaw,
    });
}

fn syscall(s: &Syscall, out: &mut BTreeSet<Construct>) {
    let Syscall {
        at: _,
        end,
        name: _,
        args,
        result,
        errno,
        note,
    } = s;
    let failed = result.kind == ExprKind::Int(-1);
    for (given, construct) in [
        (end.is_some(), C::BlockingCall),
        (errno.is_some(), C::Errno),
        (failed && errno.is_none(), C::FailureWithoutErrno),
        (note.is_some(), C::Note),
    ] {
        if given {
            out.insert(construct);
        }
    }
    for a in args {
        expr(a, out);
    }
}

fn expr(e: &Expr, out: &mut BTreeSet<Construct>) {
    let nested: Vec<&Expr> = match &e.kind {
        ExprKind::Ellipsis => {
            out.insert(C::ExprEllipsis);
            Vec::new()
        }
        ExprKind::Int(_) => {
            out.insert(C::ExprInt);
            Vec::new()
        }
        ExprKind::Word(_) => {
            out.insert(C::ExprWord);
            Vec::new()
        }
        ExprKind::Str(_) => {
            out.insert(C::ExprString);
            Vec::new()
        }
        ExprKind::Or(items) => {
            out.insert(C::ExprOr);
            items.iter().collect()
        }
        ExprKind::List(items) => {
            out.insert(C::ExprList);
            items.iter().collect()
        }
        ExprKind::Struct(items) => {
            out.insert(C::ExprStruct);
            items.iter().collect()
        }
        ExprKind::Field { name: _, count, value } => {
            out.insert(if count.is_some() {
                C::ExprFieldWithCount
            } else {
                C::ExprField
            });
            count.iter().map(|c| &**c).chain([&**value]).collect()
        }
        ExprKind::Call { name: _, args } => {
            out.insert(C::ExprCall);
            args.iter().collect()
        }
    };
    for n in nested {
        expr(n, out);
    }
}

/// The constructs of the calls a lowered case makes.
fn calls(case: &Case, out: &mut BTreeSet<Construct>) {
    for step in &case.steps {
        let Action::Call { call, .. } = &step.action else {
            continue;
        };
        let construct = match &call.func {
            Func::Socket { .. } => C::CallSocket,
            Func::Bind { .. } => C::CallBind,
            Func::Listen { .. } => C::CallListen,
            Func::Accept { .. } => C::CallAccept,
            Func::Connect { to, .. } => match to {
                Destination::Peer(_) => C::CallConnect,
                Destination::Family(_) => C::CallConnectFamily,
            },
            Func::Send { call, data, .. } => {
                if *data == Buffer::Null {
                    out.insert(C::NullBuffer);
                }
                match call {
                    SendCall::Write => C::CallWrite,
                    SendCall::Send => C::CallSend,
                    SendCall::SendTo(_) => C::CallSendTo,
                }
            }
            Func::Recv { call, null, .. } => {
                if *null {
                    out.insert(C::NullBuffer);
                }
                match call {
                    RecvCall::Read => C::CallRead,
                    RecvCall::Recv => C::CallRecv,
                    RecvCall::RecvFrom => C::CallRecvFrom,
                }
            }
            Func::SendMsg { .. } => C::CallSendMsg,
            Func::RecvMsg { out: expected, .. } => {
                for cmsg in expected.iter().flat_map(|m| &m.control) {
                    out.insert(match cmsg.data {
                        CmsgData::Int(_) => C::CmsgInt,
                        CmsgData::ExtendedErr { .. } => C::CmsgExtendedErr,
                        CmsgData::Timestamping { .. } => C::CmsgTimestamping,
                    });
                }
                C::CallRecvMsg
            }
            Func::Shutdown { .. } => C::CallShutdown,
            Func::Close { .. } => C::CallClose,
            Func::SetSockOpt { value, .. } => match value {
                // {onoff=..., linger=...} is the only two-int value.
                OptValue::Ints(v) if v.len() == 2 => C::CallSetSockOptLinger,
                OptValue::Ints(_) => C::CallSetSockOptInt,
                OptValue::Bytes(_) => C::CallSetSockOptBytes,
            },
            Func::GetSockOpt { out: expected, .. } => match expected.as_ref().map(|o| &o.value) {
                Some(OptValue::Bytes(_)) => C::CallGetSockOptBytes,
                Some(OptValue::Ints(_)) | None => C::CallGetSockOptInt,
            },
            Func::Fcntl { arg, .. } => match arg {
                None => C::CallFcntl,
                Some(_) => C::CallFcntlArg,
            },
            Func::Ioctl { .. } => C::CallIoctl,
            Func::EpollCreate { .. } => C::CallEpollCreate,
            Func::EpollCtl { event, .. } => {
                out.insert(epoll_data(&event.data));
                C::CallEpollCtl
            }
            Func::EpollWait { event, .. } => {
                out.insert(epoll_data(&event.data));
                C::CallEpollWait
            }
            Func::Pipe { .. } => C::CallPipe,
            Func::Open { .. } => C::CallOpen,
            Func::Splice { .. } => C::CallSplice,
            Func::SendFile { .. } => C::CallSendFile,
        };
        out.insert(construct);
    }
}

fn epoll_data(data: &EpollData) -> Construct {
    match data {
        EpollData::Fd(_) => C::EpollFd,
        EpollData::Raw(_) => C::EpollRaw,
    }
}

/// The project's packetdrill scripts, with their text.
fn cases_dir() -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases/packetdrill");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pkt"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, text)
        })
        .collect()
}

#[test]
fn every_construct_has_a_case() {
    let defines = Invocation::kselftest(Family::Ipv4).defines;
    let mut seen = BTreeSet::new();
    let mut options = BTreeSet::new();
    let mut words = BTreeSet::new();
    for (path, text) in cases_dir() {
        let file = Arc::new(path.clone());
        let parsed = super::parse(&file, &text, &defines).unwrap_or_else(|e| panic!("{e}"));
        script(&parsed, &mut seen);
        options.extend(parsed.options.iter().map(|o| o.name.clone()));
        words.extend(
            text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map(str::to_string),
        );
        let cases = crate::case::load_file(&path).unwrap_or_else(|e| panic!("{e}"));
        for case in &cases {
            assert_eq!(case.unsupported, None, "{}", path.display());
            calls(case, &mut seen);
        }
    }
    let refused: BTreeSet<Construct> = refused().into_iter().map(|(c, _)| c).collect();
    let missing: Vec<&Construct> = ALL
        .iter()
        .filter(|c| !seen.contains(c) && !refused.contains(c))
        .collect();
    assert!(missing.is_empty(), "no case in cases/packetdrill uses {missing:?}");
    let missing: Vec<&str> = OPTIONS
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !options.contains(*name))
        .collect();
    assert!(missing.is_empty(), "no case in cases/packetdrill gives --{missing:?}");
    let missing: Vec<&String> = defines.keys().filter(|d| !words.contains(*d)).collect();
    assert!(
        missing.is_empty(),
        "no case in cases/packetdrill uses the define {missing:?}"
    );
}

#[test]
fn refused_constructs_are_still_refused() {
    for (construct, text) in refused() {
        let file = Arc::new(PathBuf::from(format!("{construct:?}.pkt")));
        let parsed = super::parse(&file, &text, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
        let mut seen = BTreeSet::new();
        script(&parsed, &mut seen);
        assert!(seen.contains(&construct), "{construct:?}: its script does not use it");
        let runnable = super::load_str(&file, &text, &Invocation::kselftest)
            .is_ok_and(|cases| cases.iter().any(|c| c.unsupported.is_none()));
        assert!(
            !runnable,
            "{construct:?} is supported now: add a case that uses it to cases/packetdrill and take it out of refused()"
        );
    }
}
