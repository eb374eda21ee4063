//! The syntax tree of a packetdrill script, as written: every element keeps
//! the place it was written at, and nothing is resolved yet (symbolic
//! constants stay words, times stay as the script gives them). The parser
//! builds it; lowering turns it into a [`Case`](crate::case::Case).

use crate::case::Location;

/// A whole script: `options, [init command], events, [cleanup command]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Script {
    /// `--name[=value]` lines before the first event, in file order.
    pub options: Vec<ScriptOption>,
    /// A backtick command before the first event.
    pub init_command: Option<Command>,
    /// The timed events, in file order.
    pub events: Vec<Event>,
    /// A backtick command after the last event, with no time.
    pub cleanup_command: Option<Command>,
}

/// `--name` or `--name=value` in the script's header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptOption {
    /// Where `--` is.
    pub at: Location,
    /// The name without the dashes (`tolerance_usecs`).
    pub name: String,
    /// The value as written, quotes removed (`7000`, `ipv4`, `X=5`); `None` for a bare flag.
    pub value: Option<String>,
}

/// A backtick shell command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// Where the opening backtick is.
    pub at: Location,
    /// The text between the backticks, unchanged (may span lines).
    pub text: String,
}

/// A time in microseconds, as written (`.01` is 10000).
pub type Micros = u64;

/// When an event happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventTime {
    /// `T`: from the script's start.
    Absolute(Micros),
    /// `+T`: from the previous event.
    Relative(Micros),
    /// `*`: any time (outbound packets only).
    Any,
    /// `T1~T2`: within a span from the script's start (outbound packets only).
    AbsoluteRange(Micros, Micros),
    /// `+T1~+T2`: within a span from the previous event (outbound packets only).
    RelativeRange(Micros, Micros),
}

/// One timed line of the script.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Where its time is written (its line is the event's line).
    pub at: Location,
    /// Its time.
    pub time: EventTime,
    /// What happens.
    pub kind: EventKind,
}

/// What an event does.
#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    /// A packet in or out.
    Packet(Packet),
    /// A system call.
    Syscall(Syscall),
    /// A backtick command run at its time.
    Command(Command),
    /// A `%{ ... }%` block of Python code.
    Code(Code),
}

/// `%{ ... }%`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Code {
    /// Where `%{` is.
    pub at: Location,
    /// The code between the delimiters, spaces and tabs trimmed at both ends.
    pub text: String,
}

/// Which way a packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `<`: injected into the kernel.
    Inbound,
    /// `>`: sent by the kernel.
    Outbound,
}

/// ECN codepoint annotations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ecn {
    /// `noecn`: 00.
    NotEct,
    /// `ect1`: 01.
    Ect1,
    /// `ect0`: 10.
    Ect0,
    /// `ce`: 11.
    Ce,
    /// `ect01`: either ECT codepoint (outbound only).
    Ect01,
}

/// `[...]` or `(...)` after the direction: IP header fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpInfo {
    /// Where the bracket is, when there is one.
    pub at: Option<Location>,
    /// An ECN codepoint.
    pub ecn: Option<Ecn>,
    /// `tos 0xHH`: the whole TOS / traffic-class byte.
    pub tos: Option<u8>,
    /// `ttl N`: TTL or hop limit.
    pub ttl: Option<u8>,
    /// `flowlabel 0xHHHHH`.
    pub flow_label: Option<u32>,
}

/// One packet line.
#[derive(Clone, Debug, PartialEq)]
pub struct Packet {
    /// Where the direction arrow is.
    pub at: Location,
    /// `<` or `>`.
    pub direction: Direction,
    /// IP header fields.
    pub ip: IpInfo,
    /// The transport part.
    pub body: PacketBody,
}

/// The transport part of a packet line.
#[derive(Clone, Debug, PartialEq)]
pub enum PacketBody {
    /// A TCP segment.
    Tcp(TcpSegment),
    /// An ICMP or ICMPv6 message.
    Icmp(Icmp),
}

/// TCP flags as written (`S.`, `P.`, `SEWA`, `F5.`, `.6`, `-`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags {
    /// F
    pub fin: bool,
    /// S
    pub syn: bool,
    /// R
    pub rst: bool,
    /// P
    pub psh: bool,
    /// `.`
    pub ack: bool,
    /// U
    pub urg: bool,
    /// E
    pub ece: bool,
    /// W
    pub cwr: bool,
    /// A (AccECN's AE, formerly NS)
    pub ae: bool,
    /// A digit 1-7: the three-bit ACE field (AE, CWR, ECE), compared as one value.
    /// `0` is kept as `Some(0)` but, as in packetdrill, does not switch to ACE comparison.
    pub ace: Option<u8>,
}

/// `START:END(LEN)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqRange {
    /// First sequence number.
    pub start: u32,
    /// START + LEN (checked by the parser).
    pub end: u32,
    /// Payload length.
    pub len: u32,
}

/// A TCP packet line.
#[derive(Clone, Debug, PartialEq)]
pub struct TcpSegment {
    /// `SRC>DST` ports, when written.
    pub ports: Option<(u16, u16)>,
    /// Where the flags are.
    pub flags_at: Location,
    /// The flags.
    pub flags: TcpFlags,
    /// Where the sequence range is.
    pub seq_at: Location,
    /// The sequence range.
    pub seq: SeqRange,
    /// `ack N`.
    pub ack: Option<u32>,
    /// `win N` (the raw, unscaled field).
    pub win: Option<u16>,
    /// `urg N`.
    pub urg: Option<u16>,
    /// The option list.
    pub options: TcpOptions,
}

/// `<...>` part of a TCP line.
#[derive(Clone, Debug, PartialEq)]
pub enum TcpOptions {
    /// No `<...>` at all, or `<>`: no options.
    None,
    /// `<...>`: any options (outbound only).
    Any,
    /// A list of options, each with where it is written.
    List(Vec<(Location, TcpOption)>),
}

/// One AccECN counter field of the `ECN` option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccEcnField {
    /// `e0b`: bytes with ECT(0).
    E0b,
    /// `ceb`: bytes with CE.
    Ceb,
    /// `e1b`: bytes with ECT(1).
    E1b,
}

/// One TCP option as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TcpOption {
    /// `nop`
    Nop,
    /// `eol`
    Eol,
    /// `mss N`
    Mss(u16),
    /// `wscale N`
    WindowScale(u8),
    /// `sackOK`
    SackPermitted,
    /// `sack L:R L:R ...`
    Sack(Vec<(u32, u32)>),
    /// `TS val V ecr E`
    Timestamp {
        /// val
        val: u32,
        /// ecr
        ecr: u32,
    },
    /// `md5 HEX`: the digest bytes.
    Md5(Vec<u8>),
    /// `FO` or `FO HEX`: TCP Fast Open (kind 34) with its cookie (empty: no cookie).
    FastOpen(Vec<u8>),
    /// `FOEXP` or `FOEXP HEX`: the experimental Fast Open option (kind 254, magic 0xF989).
    FastOpenExp(Vec<u8>),
    /// `ECN e1b N ceb N e0b N`: the AccECN option, fields in the order written
    /// (e0b first: kind 172; e1b first: kind 174); each a 24-bit counter.
    AccEcn(Vec<(AccEcnField, u32)>),
}

/// What an ICMP message quotes of the packet that caused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpQuote {
    /// Nothing written: a TCP header with sequence number 0 and no data.
    Default,
    /// `[START:END(LEN)]`: the kernel's TCP segment with those numbers.
    Tcp(SeqRange),
    /// `[udp (N)]`
    Udp(u32),
    /// `[raw (N)]`: N zero bytes and no quoted header.
    Raw(u32),
}

/// `icmp TYPE [CODE] [mtu N] [id N] [quote]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Icmp {
    /// The type's name as written (`unreachable`, `packet_too_big`, `type_3`), and where.
    pub type_name: (Location, String),
    /// The code's name as written (`frag_needed`, `code_4`), and where.
    pub code_name: Option<(Location, String)>,
    /// `mtu N`
    pub mtu: Option<u32>,
    /// `id N`
    pub id: Option<u16>,
    /// The quoted packet.
    pub quote: IcmpQuote,
}

/// A system call line: `name(args) = result [ERRNO] [(note)]`, optionally
/// blocking (`T...END name(...)`).
#[derive(Clone, Debug, PartialEq)]
pub struct Syscall {
    /// Where the name is.
    pub at: Location,
    /// `...END`: when a blocking call returns (same base as the event's time).
    pub end: Option<Micros>,
    /// The function's name.
    pub name: String,
    /// The arguments.
    pub args: Vec<Expr>,
    /// What follows `=`.
    pub result: Expr,
    /// The errno name after the result (`EINPROGRESS`), and where.
    pub errno: Option<(Location, String)>,
    /// The parenthesised note after the result, as written (`Operation now in progress`, `flags O_RDWR`).
    pub note: Option<String>,
}

/// An expression in a system call, with where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// Where it starts.
    pub at: Location,
    /// What it is.
    pub kind: ExprKind,
}

/// The kinds of expression packetdrill's system calls take.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// `...`: let the tool fill in a sensible value.
    Ellipsis,
    /// A decimal or hex number (`-1`, `4`, `0x2`).
    Int(i64),
    /// A symbolic constant or a define's value (`SOL_SOCKET`, `O_RDWR`, `NULL`).
    Word(String),
    /// `"..."`: bytes as written, escapes (`\xa1`) decoded.
    Str(Vec<u8>),
    /// `a|b|c`
    Or(Vec<Expr>),
    /// `[a, b]`
    List(Vec<Expr>),
    /// `{a, b}` (iovec `{..., 40}`, epoll_event `{events=..., fd=4}`, ...).
    Struct(Vec<Expr>),
    /// `name=value`, and `name(len)=value` (`msg_iov(1)=[...]`, `msg_name(...)=...`).
    Field {
        /// The field's name.
        name: String,
        /// The parenthesised count or `...` after the name, when written.
        count: Option<Box<Expr>>,
        /// Its value.
        value: Box<Expr>,
    },
    /// `f(args)` inside an expression (`htons(8080)`, `inet_addr("192.0.2.1")`).
    Call {
        /// The function's name.
        name: String,
        /// Its arguments.
        args: Vec<Expr>,
    },
}
