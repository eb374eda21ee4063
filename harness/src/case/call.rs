//! The socket-call notation of a case step, one call per line:
//!
//! ```text
//! srv = socket()
//! setsockopt(srv, SO_REUSEADDR, 1)
//! bind(srv, 8080)
//! listen(srv, 1)
//! conn = accept(srv)
//! connect(cli, 8080) = ECONNREFUSED
//! send(conn, "hello") = 5
//! send(conn, 1000, MSG_NOSIGNAL|MSG_DONTWAIT) = EAGAIN
//! recv(conn, 100) = "hello"
//! shutdown(conn, SHUT_WR)
//! getsockopt(conn, SO_ERROR) = ECONNRESET
//! close(conn)
//! ```
//!
//! `[name =] function(args) [= outcome]`. Without an outcome the call must
//! succeed. An outcome is a number (return value), an errno name, a quoted
//! string (the bytes recv() returns) or `any`. This module holds the
//! grammar, the errno and socket-option tables, and outcome checking; the
//! socket driver executes calls.

use std::fmt;

use nix::errno::Errno;

use super::cursor::Cursor;
use crate::packet::notation::NotationError;
use crate::packetdrill::symbols;

/// Every errno Linux has, by number (1 to 133).
pub fn errnos() -> impl Iterator<Item = Errno> {
    (1..=133).map(Errno::from_raw).filter(|e| *e != Errno::UnknownErrno)
}

/// The name of an errno (`ECONNREFUSED`), or its number when it has none.
pub fn errno_name(e: Errno) -> String {
    if e == Errno::UnknownErrno {
        return "errno 0".into();
    }
    let name = format!("{e:?}");
    if name.starts_with('E') {
        name
    } else {
        format!("errno {}", e as i32)
    }
}

/// The errno of a name (`ECONNREFUSED`, and the aliases EWOULDBLOCK, EDEADLOCK, ENOTSUP).
pub fn errno_from_name(name: &str) -> Option<Errno> {
    match name {
        "EWOULDBLOCK" => return Some(Errno::EAGAIN),
        "EDEADLOCK" => return Some(Errno::EDEADLK),
        "ENOTSUP" => return Some(Errno::EOPNOTSUPP),
        _ => {}
    }
    errnos().find(|e| format!("{e:?}") == name)
}

/// How a socket option's value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptKind {
    /// One `int`.
    Int,
    /// `struct linger { onoff, seconds }`: two ints.
    Linger,
    /// An `int` holding an errno (SO_ERROR); read only.
    Errno,
}

/// A socket option a case can set or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockOpt {
    /// Its name (`SO_LINGER`).
    pub name: &'static str,
    /// Level (`SOL_SOCKET`, `IPPROTO_TCP`).
    pub level: i32,
    /// Option number.
    pub optname: i32,
    /// Value layout.
    pub kind: OptKind,
}

const fn opt(name: &'static str, level: i32, optname: i32, kind: OptKind) -> SockOpt {
    SockOpt {
        name,
        level,
        optname,
        kind,
    }
}

/// The options a case can name.
pub const SOCKOPTS: [SockOpt; 22] = [
    opt("SO_REUSEADDR", libc::SOL_SOCKET, libc::SO_REUSEADDR, OptKind::Int),
    opt("SO_REUSEPORT", libc::SOL_SOCKET, libc::SO_REUSEPORT, OptKind::Int),
    opt("SO_KEEPALIVE", libc::SOL_SOCKET, libc::SO_KEEPALIVE, OptKind::Int),
    opt("SO_LINGER", libc::SOL_SOCKET, libc::SO_LINGER, OptKind::Linger),
    opt("SO_RCVBUF", libc::SOL_SOCKET, libc::SO_RCVBUF, OptKind::Int),
    opt("SO_SNDBUF", libc::SOL_SOCKET, libc::SO_SNDBUF, OptKind::Int),
    opt("SO_RCVLOWAT", libc::SOL_SOCKET, libc::SO_RCVLOWAT, OptKind::Int),
    opt("SO_OOBINLINE", libc::SOL_SOCKET, libc::SO_OOBINLINE, OptKind::Int),
    opt("SO_ERROR", libc::SOL_SOCKET, libc::SO_ERROR, OptKind::Errno),
    opt("TCP_NODELAY", libc::IPPROTO_TCP, libc::TCP_NODELAY, OptKind::Int),
    opt("TCP_MAXSEG", libc::IPPROTO_TCP, libc::TCP_MAXSEG, OptKind::Int),
    opt("TCP_CORK", libc::IPPROTO_TCP, libc::TCP_CORK, OptKind::Int),
    opt("TCP_KEEPIDLE", libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, OptKind::Int),
    opt("TCP_KEEPINTVL", libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, OptKind::Int),
    opt("TCP_KEEPCNT", libc::IPPROTO_TCP, libc::TCP_KEEPCNT, OptKind::Int),
    opt("TCP_SYNCNT", libc::IPPROTO_TCP, libc::TCP_SYNCNT, OptKind::Int),
    opt("TCP_LINGER2", libc::IPPROTO_TCP, libc::TCP_LINGER2, OptKind::Int),
    opt(
        "TCP_DEFER_ACCEPT",
        libc::IPPROTO_TCP,
        libc::TCP_DEFER_ACCEPT,
        OptKind::Int,
    ),
    opt(
        "TCP_WINDOW_CLAMP",
        libc::IPPROTO_TCP,
        libc::TCP_WINDOW_CLAMP,
        OptKind::Int,
    ),
    opt("TCP_QUICKACK", libc::IPPROTO_TCP, libc::TCP_QUICKACK, OptKind::Int),
    opt(
        "TCP_USER_TIMEOUT",
        libc::IPPROTO_TCP,
        libc::TCP_USER_TIMEOUT,
        OptKind::Int,
    ),
    opt(
        "TCP_NOTSENT_LOWAT",
        libc::IPPROTO_TCP,
        libc::TCP_NOTSENT_LOWAT,
        OptKind::Int,
    ),
];

/// shutdown(2)'s `how`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// SHUT_RD
    Read,
    /// SHUT_WR
    Write,
    /// SHUT_RDWR
    Both,
}

/// Where bind() binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindTo {
    /// The family's wildcard address.
    Wildcard,
    /// The target's own address (packetdrill's `bind(fd, ..., ...)`).
    Target,
}

/// Where connect(), sendto() and sendmsg() send to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// The harness's address at this port.
    Peer(u16),
    /// An address of this family and nothing else (`connect(fd, AF_UNSPEC, ...)`
    /// disconnects).
    Family(i32),
}

/// The buffer a call reads from or writes into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Buffer {
    /// A buffer holding these bytes (to send), or this many (to receive into).
    Bytes(Vec<u8>),
    /// `NULL`: no buffer, for EFAULT.
    Null,
}

/// The system call a send step makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendCall {
    /// send(2)
    Send,
    /// write(2): send without flags.
    Write,
    /// sendto(2)
    SendTo(Destination),
}

/// The system call a receive step makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvCall {
    /// recv(2)
    Recv,
    /// read(2): recv without flags.
    Read,
    /// recvfrom(2)
    RecvFrom,
}

/// A socket option's value, as passed to setsockopt() or expected from getsockopt().
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OptValue {
    /// ints in a row: one `int`, or `struct linger { onoff, seconds }`.
    Ints(Vec<i32>),
    /// Raw bytes (`TCP_FASTOPEN_KEY`, `TCP_CONGESTION`).
    Bytes(Vec<u8>),
}

impl OptValue {
    /// The value's bytes in memory.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            OptValue::Ints(v) => v.iter().flat_map(|i| i.to_ne_bytes()).collect(),
            OptValue::Bytes(b) => b.clone(),
        }
    }
}

/// What getsockopt() must leave in its value and length arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptOut {
    /// The value.
    pub value: OptValue,
    /// The length.
    pub len: u32,
}

/// The data of an expected control message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CmsgData {
    /// An `int` (`TCP_CM_INQ`).
    Int(i32),
    /// `struct sock_extended_err` (IP_RECVERR, IPV6_RECVERR), followed by the
    /// offender's address, which is not compared.
    ExtendedErr {
        /// ee_errno
        errno: u32,
        /// ee_origin
        origin: u8,
        /// ee_type
        kind: u8,
        /// ee_code
        code: u8,
        /// ee_info
        info: u32,
        /// ee_data
        data: u32,
    },
    /// `struct scm_timestamping`: the software timestamp, as a time on the
    /// case's timeline (compared within the tolerance; zero: not compared).
    Timestamping {
        /// Seconds.
        sec: i64,
        /// Nanoseconds.
        nsec: i64,
    },
}

/// An expected control message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmsg {
    /// cmsg_level
    pub level: i32,
    /// cmsg_type
    pub kind: i32,
    /// cmsg_data
    pub data: CmsgData,
}

/// What recvmsg() must leave in its `struct msghdr`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgOut {
    /// msg_flags
    pub flags: i32,
    /// The control messages, in order; the control buffer has room for these only.
    pub control: Vec<Cmsg>,
}

/// The data field of a `struct epoll_event`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EpollData {
    /// A descriptor of the case (compared as the live descriptor).
    Fd(String),
    /// A raw value (`ptr`, `u32`, `u64`).
    Raw(u64),
}

/// A `struct epoll_event`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpollEvent {
    /// events
    pub events: u32,
    /// data
    pub data: EpollData,
}

/// The function a call step makes, with its arguments resolved. Socket and
/// descriptor arguments are names: the case's own (`srv`), or a packetdrill
/// script's descriptor numbers (`3`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Func {
    /// `socket()`: a TCP socket of the case's family.
    Socket {
        /// Type and flags (`SOCK_STREAM|SOCK_NONBLOCK`).
        ty: i32,
        /// Protocol (0 or IPPROTO_TCP).
        protocol: i32,
    },
    /// `bind(s, port)`
    Bind { sock: String, port: u16, to: BindTo },
    /// `listen(s, backlog)`
    Listen { sock: String, backlog: i32 },
    /// `accept(s)`
    Accept { sock: String },
    /// `connect(s, port)`: to the harness's address.
    Connect { sock: String, to: Destination },
    /// `send(s, data|len [, flags])`, write(2), sendto(2)
    Send {
        sock: String,
        call: SendCall,
        data: Buffer,
        /// The length passed (the data's, unless the buffer is NULL).
        len: usize,
        flags: i32,
    },
    /// `recv(s, len [, flags])`, read(2), recvfrom(2)
    Recv {
        sock: String,
        call: RecvCall,
        len: usize,
        /// A NULL buffer (for EFAULT).
        null: bool,
        flags: i32,
    },
    /// sendmsg(2) of zeros in these iovec lengths.
    SendMsg {
        sock: String,
        iov: Vec<usize>,
        to: Destination,
        flags: i32,
    },
    /// recvmsg(2) into buffers of these lengths.
    RecvMsg {
        sock: String,
        iov: Vec<usize>,
        flags: i32,
        /// What the msghdr must hold afterwards (packetdrill's scripts always say).
        out: Option<MsgOut>,
    },
    /// `shutdown(s, how)`
    Shutdown { sock: String, how: How },
    /// `close(s)`
    Close { sock: String },
    /// `setsockopt(s, OPT, value...)`
    SetSockOpt {
        sock: String,
        opt: SockOpt,
        value: OptValue,
        /// The optlen passed, when it is not the value's size.
        len: Option<u32>,
    },
    /// `getsockopt(s, OPT)`: returns the option's value, unless `out` says
    /// what the value and length must be (then it returns getsockopt's result).
    GetSockOpt {
        sock: String,
        opt: SockOpt,
        out: Option<OptOut>,
    },
    /// fcntl(2)
    Fcntl { sock: String, cmd: i32, arg: Option<i64> },
    /// ioctl(2) with an int argument, which must hold `out` afterwards.
    Ioctl {
        sock: String,
        request: u64,
        out: Option<i64>,
    },
    /// epoll_create(2)
    EpollCreate { size: i32 },
    /// epoll_ctl(2)
    EpollCtl {
        epoll: String,
        op: i32,
        sock: String,
        event: EpollEvent,
    },
    /// epoll_wait(2); the first event returned must be `event`.
    EpollWait {
        epoll: String,
        event: EpollEvent,
        max: i32,
        timeout_ms: i32,
    },
    /// pipe(2): names its two ends.
    Pipe { read: String, write: String },
    /// open(2) of a file.
    Open { path: String, flags: i32 },
    /// splice(2) with no offsets.
    Splice {
        from: String,
        to: String,
        len: usize,
        flags: u32,
    },
    /// sendfile(2) from a file, starting at `offset`.
    SendFile {
        to: String,
        from: String,
        offset: i64,
        count: usize,
    },
}

/// Every descriptor name a [`Func`] holds, in argument order, the ones it
/// makes (pipe's two ends) included: `&String`s of a `&Func`, `&mut
/// String`s of a `&mut Func`, so that reading and renaming them follow one
/// list.
macro_rules! descriptors {
    ($func:expr) => {
        match $func {
            Func::Socket { .. } | Func::EpollCreate { .. } | Func::Open { .. } => vec![],
            Func::Bind { sock, .. }
            | Func::Listen { sock, .. }
            | Func::Accept { sock }
            | Func::Connect { sock, .. }
            | Func::Send { sock, .. }
            | Func::Recv { sock, .. }
            | Func::SendMsg { sock, .. }
            | Func::RecvMsg { sock, .. }
            | Func::Shutdown { sock, .. }
            | Func::Close { sock }
            | Func::SetSockOpt { sock, .. }
            | Func::GetSockOpt { sock, .. }
            | Func::Fcntl { sock, .. }
            | Func::Ioctl { sock, .. } => vec![sock],
            Func::EpollCtl {
                epoll,
                sock,
                event: EpollEvent {
                    data: EpollData::Fd(fd),
                    ..
                },
                ..
            } => vec![epoll, sock, fd],
            Func::EpollCtl { epoll, sock, .. } => vec![epoll, sock],
            Func::EpollWait {
                epoll,
                event: EpollEvent {
                    data: EpollData::Fd(fd),
                    ..
                },
                ..
            } => vec![epoll, fd],
            Func::EpollWait { epoll, .. } => vec![epoll],
            Func::Pipe { read, write } => vec![read, write],
            Func::Splice { from, to, .. } | Func::SendFile { from, to, .. } => vec![from, to],
        }
    };
}

impl Func {
    /// The descriptor the call acts on first (none for calls that make one from nothing).
    pub fn sock(&self) -> Option<&str> {
        self.fds().first().copied()
    }

    /// Every descriptor the call uses, in argument order.
    pub fn fds(&self) -> Vec<&str> {
        let mut fds: Vec<&str> = match self {
            // pipe() makes its two descriptors and uses none.
            Func::Pipe { .. } => vec![],
            other => other.fd_names(),
        };
        // epoll_ctl() on a descriptor whose event data is that descriptor uses it once.
        if let Func::EpollCtl {
            sock,
            event: EpollEvent {
                data: EpollData::Fd(fd),
                ..
            },
            ..
        } = self
            && fd == sock
        {
            fds.pop();
        }
        fds
    }

    /// Every descriptor name the call holds, in argument order, the ones it
    /// makes (pipe's two ends) included.
    pub fn fd_names(&self) -> Vec<&str> {
        descriptors!(self).into_iter().map(String::as_str).collect()
    }

    /// Renames every descriptor the call names, the ones it makes included.
    pub fn rename_fds(&mut self, new: &dyn Fn(&str) -> String) {
        for fd in descriptors!(self) {
            *fd = new(fd);
        }
    }

    /// Whether the call creates a descriptor that the step names (`x = ...`).
    pub fn creates_socket(&self) -> bool {
        matches!(
            self,
            Func::Socket { .. } | Func::Accept { .. } | Func::EpollCreate { .. } | Func::Open { .. }
        )
    }

    /// The system call's name.
    pub fn name(&self) -> &'static str {
        match self {
            Func::Socket { .. } => "socket",
            Func::Bind { .. } => "bind",
            Func::Listen { .. } => "listen",
            Func::Accept { .. } => "accept",
            Func::Connect { .. } => "connect",
            Func::Send { call, .. } => match call {
                SendCall::Send => "send",
                SendCall::Write => "write",
                SendCall::SendTo(_) => "sendto",
            },
            Func::Recv { call, .. } => match call {
                RecvCall::Recv => "recv",
                RecvCall::Read => "read",
                RecvCall::RecvFrom => "recvfrom",
            },
            Func::SendMsg { .. } => "sendmsg",
            Func::RecvMsg { .. } => "recvmsg",
            Func::Shutdown { .. } => "shutdown",
            Func::Close { .. } => "close",
            Func::SetSockOpt { .. } => "setsockopt",
            Func::GetSockOpt { .. } => "getsockopt",
            Func::Fcntl { .. } => "fcntl",
            Func::Ioctl { .. } => "ioctl",
            Func::EpollCreate { .. } => "epoll_create",
            Func::EpollCtl { .. } => "epoll_ctl",
            Func::EpollWait { .. } => "epoll_wait",
            Func::Pipe { .. } => "pipe",
            Func::Open { .. } => "open",
            Func::Splice { .. } => "splice",
            Func::SendFile { .. } => "sendfile",
        }
    }
}

/// What a call step expects the call to return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Any success (no outcome written).
    Success,
    /// This return value.
    Value(i64),
    /// Failure with this errno (or, for SO_ERROR, this pending error).
    Errno(Errno),
    /// Failure with any errno (packetdrill's `= -1` with no errno name).
    Failed,
    /// recv() returning exactly these bytes.
    Data(Vec<u8>),
    /// Anything at all.
    Any,
}

/// What a call returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ret {
    /// A non-negative return value.
    Value(i64),
    /// recv() data.
    Data(Vec<u8>),
    /// Failure with an errno.
    Failed(Errno),
}

/// Prints bytes as a double-quoted string with escapes, cut after 40 bytes.
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in bytes.iter().take(40) {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    if bytes.len() > 40 {
        out.push_str(&format!("... ({} bytes)", bytes.len()));
    }
    out
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Success => f.write_str("success"),
            Outcome::Value(v) => write!(f, "{v}"),
            Outcome::Errno(e) => f.write_str(&errno_name(*e)),
            Outcome::Failed => f.write_str("-1"),
            Outcome::Data(d) => f.write_str(&quote(d)),
            Outcome::Any => f.write_str("any"),
        }
    }
}

impl fmt::Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ret::Value(v) => write!(f, "{v}"),
            Ret::Data(d) => write!(f, "{} {}", d.len(), quote(d)),
            Ret::Failed(e) => write!(f, "-1 {}", errno_name(*e)),
        }
    }
}

impl Outcome {
    /// Whether `ret` is what this outcome asks for; `func` decides SO_ERROR's meaning.
    pub fn accepts(&self, ret: &Ret, func: &Func) -> bool {
        let so_error = matches!(func, Func::GetSockOpt { opt, out: None, .. } if opt.kind == OptKind::Errno);
        match (self, ret) {
            (Outcome::Any, _) => true,
            (Outcome::Success, Ret::Failed(_)) => false,
            (Outcome::Success, _) => true,
            (Outcome::Errno(e), Ret::Failed(got)) => e == got,
            (Outcome::Errno(e), Ret::Value(v)) => so_error && *e as i64 == *v,
            (Outcome::Failed, Ret::Failed(_)) => true,
            (Outcome::Value(v), Ret::Value(got)) => v == got,
            (Outcome::Value(v), Ret::Data(d)) => *v == d.len() as i64,
            (Outcome::Data(want), Ret::Data(got)) => want == got,
            (Outcome::Data(want), Ret::Value(0)) => want.is_empty(),
            _ => false,
        }
    }
}

/// A parsed call step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// `x` in `x = socket()`.
    pub binds: Option<String>,
    /// The function and its arguments.
    pub func: Func,
    /// The expected outcome.
    pub outcome: Outcome,
}

/// A call-notation error at a byte offset of the text: the error of every
/// notation of a step.
pub type CallError = NotationError;

/// An argument as written.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Arg {
    /// A name: a descriptor, a constant, `NULL`, `any`.
    Ident(String),
    Int(i64),
    Str(Vec<u8>),
    /// Constants joined by `|`.
    Flags(Vec<String>),
    /// `[a, b]`: what a pointer points at (an int, an iovec's lengths, a pipe's ends).
    List(Vec<(usize, Arg)>),
    /// `{name=value, ...}`: a struct's fields, with their offsets.
    Struct(Vec<Field>),
    /// `zeros(N)`.
    Call(String, Vec<(usize, Arg)>),
}

impl Arg {
    fn describe(&self) -> &'static str {
        match self {
            Arg::Ident(_) => "a name",
            Arg::Int(_) => "a number",
            Arg::Str(_) => "a string",
            Arg::Flags(_) => "flags",
            Arg::List(_) => "a list",
            Arg::Struct(_) => "a struct",
            Arg::Call(..) => "a function call",
        }
    }
}

/// A field of a struct argument: where its name is, the name, and the value with its offset.
type Field = (usize, String, (usize, Arg));

/// How deep lists and structs may nest in a call (a recvmsg() needs 4).
const MAX_NESTING: usize = 8;

type CResult<T> = Result<T, CallError>;

/// The call notation's tokens, read with the cursor the step notations share.
impl Cursor<'_> {
    fn ident(&mut self) -> Option<(usize, String)> {
        self.skip_ws();
        let start = self.pos;
        let rest = &self.text[self.pos..];
        if !rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            return None;
        }
        let len = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .count();
        self.pos += len;
        Some((start, rest[..len].to_string()))
    }

    /// A decimal or `0x` hexadecimal integer, possibly negative.
    fn int(&mut self) -> CResult<Option<(usize, i64)>> {
        self.skip_ws();
        let start = self.pos;
        let rest = &self.text[self.pos..];
        let neg = usize::from(rest.starts_with('-'));
        let body = &rest[neg..];
        let (radix, prefix) = if body.starts_with("0x") || body.starts_with("0X") {
            (16, 2)
        } else {
            (10, 0)
        };
        let digits = body[prefix..].chars().take_while(|c| c.is_digit(radix)).count();
        if digits == 0 {
            if prefix == 0 {
                return Ok(None);
            }
            return self.err(start, "`0x` needs hex digits, as in 0x1f");
        }
        let len = neg + prefix + digits;
        self.pos += len;
        let magnitude = i128::from_str_radix(&body[prefix..prefix + digits], radix).ok();
        match magnitude.and_then(|m| i64::try_from(if neg == 1 { -m } else { m }).ok()) {
            Some(v) => Ok(Some((start, v))),
            None => self.err(start, format!("{} is out of range", &rest[..len])),
        }
    }

    fn string(&mut self) -> CResult<Option<Vec<u8>>> {
        if self.peek() != Some('"') {
            return Ok(None);
        }
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        let bytes = self.text.as_bytes();
        while self.pos < bytes.len() {
            let b = bytes[self.pos];
            self.pos += 1;
            match b {
                b'"' => return Ok(Some(out)),
                b'\\' => {
                    let Some(&e) = bytes.get(self.pos) else { break };
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'0' => out.push(0),
                        b'\\' | b'"' => out.push(e),
                        b'x' => {
                            let hex = self
                                .text
                                .get(self.pos..self.pos + 2)
                                .and_then(|h| u8::from_str_radix(h, 16).ok());
                            let Some(v) = hex else {
                                return self.err(self.pos - 2, "`\\x` needs two hex digits");
                            };
                            out.push(v);
                            self.pos += 2;
                        }
                        _ => {
                            let c = self.text[self.pos - 1..]
                                .chars()
                                .next()
                                .unwrap_or(char::REPLACEMENT_CHARACTER);
                            let escape = if c.is_control() || c.is_whitespace() {
                                format!("`\\` followed by U+{:04X}", u32::from(c))
                            } else {
                                format!("`\\{c}`")
                            };
                            return self.err(
                                self.pos - 2,
                                format!("unknown escape {escape}: escapes are \\n \\r \\t \\0 \\\\ \\\" and \\xHH"),
                            );
                        }
                    }
                }
                _ => out.push(b),
            }
        }
        self.err(start, "unterminated string")
    }

    fn arg(&mut self, depth: usize) -> CResult<(usize, Arg)> {
        self.skip_ws();
        let at = self.pos;
        if depth >= MAX_NESTING {
            return self.err(at, "the arguments nest too deeply");
        }
        if self.eat('[') {
            return Ok((at, Arg::List(self.items(']', depth + 1)?)));
        }
        if self.eat('{') {
            return Ok((at, Arg::Struct(self.fields(depth + 1)?)));
        }
        if let Some(s) = self.string()? {
            return Ok((at, Arg::Str(s)));
        }
        if let Some((_, v)) = self.int()? {
            return Ok((at, Arg::Int(v)));
        }
        if let Some((_, word)) = self.ident() {
            if self.peek() == Some('|') {
                let mut flags = vec![word];
                while self.eat('|') {
                    match self.ident() {
                        Some((_, w)) => flags.push(w),
                        None => {
                            let found = self.found();
                            return self.err(self.pos, format!("expected a flag after `|`, found {found}"));
                        }
                    }
                }
                return Ok((at, Arg::Flags(flags)));
            }
            if self.eat('(') {
                return Ok((at, Arg::Call(word, self.items(')', depth + 1)?)));
            }
            return Ok((at, Arg::Ident(word)));
        }
        let found = self.found();
        self.err(
            at,
            format!("expected an argument (a name, a number or a \"string\"), found {found}"),
        )
    }

    /// Arguments separated by commas up to `close` (the opening bracket is eaten).
    fn items(&mut self, close: char, depth: usize) -> CResult<Vec<(usize, Arg)>> {
        let mut items = Vec::new();
        if self.eat(close) {
            return Ok(items);
        }
        loop {
            items.push(self.arg(depth)?);
            if self.eat(close) {
                return Ok(items);
            }
            if !self.eat(',') {
                let found = self.found();
                let what = if close == ')' { "the arguments" } else { "the list" };
                return self.err(self.pos, format!("expected `,` or `{close}` in {what}, found {found}"));
            }
        }
    }

    /// `name=value` fields separated by commas up to `}` (the `{` is eaten).
    fn fields(&mut self, depth: usize) -> CResult<Vec<Field>> {
        let mut fields: Vec<Field> = Vec::new();
        if self.eat('}') {
            return Ok(fields);
        }
        loop {
            let Some((at, name)) = self.ident() else {
                let found = self.found();
                return self.err(
                    self.pos,
                    format!("expected a field name, as in `{{events=EPOLLIN}}`, found {found}"),
                );
            };
            if fields.iter().any(|(_, n, _)| *n == name) {
                return self.err(at, format!("the field `{name}` is given twice"));
            }
            if !self.eat('=') {
                let found = self.found();
                return self.err(
                    self.pos,
                    format!("expected `=` after the field `{name}`, found {found}"),
                );
            }
            let value = self.arg(depth)?;
            fields.push((at, name, value));
            if self.eat('}') {
                return Ok(fields);
            }
            if !self.eat(',') {
                let found = self.found();
                return self.err(self.pos, format!("expected `,` or `}}` in the struct, found {found}"));
            }
        }
    }
}

/// Parses one call step.
pub fn parse_call(text: &str) -> Result<Call, CallError> {
    let mut c = Cursor::new(text, "the end of the call", "(),=[]{}|");
    let Some((at, first)) = c.ident() else {
        let found = c.found();
        return c.err(
            c.pos,
            format!("expected a call such as `listen(srv, 1)`, found {found}"),
        );
    };
    let (binds, fname_at, fname) = if c.eat('=') {
        let Some((fat, f)) = c.ident() else {
            let found = c.found();
            return c.err(c.pos, format!("expected a function after `{first} =`, found {found}"));
        };
        (Some((at, first)), fat, f)
    } else {
        (None, at, first)
    };
    if !c.eat('(') {
        let found = c.found();
        return c.err(c.pos, format!("expected `(` after `{fname}`, found {found}"));
    }
    let args = c.items(')', 0)?;
    let close_at = c.pos - 1;
    let func = build_func(&c, &fname, fname_at, &args, close_at)?;
    let outcome = if c.eat('=') { outcome(&mut c)? } else { Outcome::Success };
    c.skip_ws();
    if c.pos < text.len() {
        let found = c.found();
        return c.err(c.pos, format!("unexpected {found} after the call"));
    }
    let fails = matches!(outcome, Outcome::Errno(_) | Outcome::Failed);
    match (&binds, func.creates_socket()) {
        (None, true) if !fails => {
            let what = if matches!(func, Func::Socket { .. } | Func::Accept { .. }) {
                "a socket"
            } else {
                "a descriptor"
            };
            return c.err(
                fname_at,
                format!("{fname}() creates {what}: name it, as in `conn = {fname}(...)`"),
            );
        }
        (Some((at, name)), false) => {
            let hint = if matches!(func, Func::Pipe { .. }) {
                ": pipe() names its ends in its argument, as in `pipe([rd, wr])`"
            } else {
                ""
            };
            return c.err(
                *at,
                format!("{fname}() does not create a socket, so `{name} =` names nothing{hint}"),
            );
        }
        _ => {}
    }
    if let (Outcome::Data(_), false) = (&outcome, matches!(func, Func::Recv { .. })) {
        return c.err(close_at, "only recv() can return data (`= \"...\"`)");
    }
    Ok(Call {
        binds: binds.map(|(_, n)| n),
        func,
        outcome,
    })
}

fn outcome(c: &mut Cursor<'_>) -> CResult<Outcome> {
    c.skip_ws();
    let at = c.pos;
    if let Some(s) = c.string()? {
        return Ok(Outcome::Data(s));
    }
    if let Some((iat, v)) = c.int()? {
        if v == -1 {
            // packetdrill's `= -1 ECONNREFUSED`; `= -1` alone is any failure.
            return match c.ident() {
                Some((eat, name)) => errno(c, eat, &name).map(Outcome::Errno),
                None => Ok(Outcome::Failed),
            };
        }
        if v < 0 {
            return c.err(iat, "a negative return value means an error: write its errno name");
        }
        return Ok(Outcome::Value(v));
    }
    match c.ident() {
        Some((_, w)) if w == "any" => Ok(Outcome::Any),
        Some((eat, name)) => errno(c, eat, &name).map(Outcome::Errno),
        None => {
            let found = c.found();
            c.err(
                at,
                format!("expected an outcome (a number, an errno name, a \"string\" or `any`), found {found}"),
            )
        }
    }
}

fn errno(c: &Cursor<'_>, at: usize, name: &str) -> CResult<Errno> {
    errno_from_name(name).map_or_else(
        || {
            c.err(
                at,
                format!(
                    "unknown errno `{name}`{}",
                    suggest(name, errnos().map(|e| format!("{e:?}")))
                ),
            )
        },
        Ok,
    )
}

/// ` (did you mean `x`?)` when a candidate is close to `word`, else empty.
pub fn suggest(word: &str, candidates: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let best = candidates
        .into_iter()
        .map(|c| {
            (
                edit_distance(&word.to_lowercase(), &c.as_ref().to_lowercase()),
                c.as_ref().to_string(),
            )
        })
        .min_by_key(|(d, _)| *d);
    // A suggestion keeps part of the word: `a` is not a misspelling of `id`.
    match best {
        Some((d, c)) if d <= 2.max(word.len() / 3) && d < word.chars().count() && c != word => {
            format!(" (did you mean `{c}`?)")
        }
        _ => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The constants an argument may be written with: Linux's symbols that
/// start with one of `prefixes` (but not with `except`).
#[derive(Clone, Copy)]
struct Constants {
    /// What such a constant is, for messages (`flag`, `socket type`).
    what: &'static str,
    prefixes: &'static [&'static str],
    except: Option<&'static str>,
}

impl Constants {
    /// The names, those of the first prefix first (the one printed when several have a value).
    fn names(self) -> impl Iterator<Item = (&'static str, i64)> {
        self.prefixes.iter().flat_map(move |p| {
            symbols::all().filter(move |(n, _)| n.starts_with(p) && self.except.is_none_or(|e| !n.starts_with(e)))
        })
    }

    fn value(self, name: &str) -> Option<i64> {
        self.names().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The value as one name when there is one, else as names joined by `|`
    /// that add up to it, else as a number.
    fn text(self, value: i64) -> String {
        if let Some((n, _)) = self.names().find(|(_, v)| *v == value) {
            return n.to_string();
        }
        let mut covered = 0;
        let mut parts = Vec::new();
        for (n, v) in self.names() {
            if v != 0 && v & value == v && covered & v != v {
                covered |= v;
                parts.push(n);
            }
        }
        if covered == value && !parts.is_empty() {
            parts.join("|")
        } else {
            value.to_string()
        }
    }
}

const fn constants(what: &'static str, prefixes: &'static [&'static str]) -> Constants {
    Constants {
        what,
        prefixes,
        except: None,
    }
}

const SOCK_TYPES: Constants = constants("socket type", &["SOCK_"]);
const PROTOCOLS: Constants = constants("protocol", &["IPPROTO_"]);
const LEVELS: Constants = constants("level", &["SOL_", "IPPROTO_"]);
const OPTIONS: Constants = constants("socket option", &["SO_", "TCP_", "IP_", "IPV6_"]);
const MSG_FLAGS: Constants = constants("flag", &["MSG_"]);
const FAMILIES: Constants = constants("address family", &["AF_"]);
const FCNTL_COMMANDS: Constants = constants("fcntl command", &["F_"]);
const FCNTL_ARGS: Constants = constants("fcntl argument", &["O_", "FD_"]);
const OPEN_FLAGS: Constants = constants("open flag", &["O_"]);
const IOCTLS: Constants = constants("ioctl request", &["SIOC", "FION"]);
const EPOLL_OPS: Constants = constants("epoll_ctl operation", &["EPOLL_CTL_"]);
const EPOLL_EVENTS: Constants = Constants {
    what: "epoll event",
    prefixes: &["EPOLL"],
    except: Some("EPOLL_"),
};
const SPLICE_FLAGS: Constants = constants("splice flag", &["SPLICE_F_"]);
const CMSG_TYPES: Constants = constants("control message type", &["IP_", "IPV6_", "TCP_", "SCM_", "SO_"]);
const EE_ORIGINS: Constants = constants("error origin", &["SO_EE_ORIGIN_"]);

/// The control message types of a level, for printing.
fn cmsg_types(level: i32) -> Constants {
    match level {
        libc::SOL_IP => constants("control message type", &["IP_"]),
        libc::SOL_IPV6 => constants("control message type", &["IPV6_"]),
        libc::SOL_TCP => constants("control message type", &["TCP_CM_", "TCP_"]),
        libc::SOL_SOCKET => constants("control message type", &["SCM_", "SO_"]),
        _ => CMSG_TYPES,
    }
}

/// What every function takes, for messages.
const FUNCTIONS: [(&str, &str); 26] = [
    ("socket", "socket([TYPE [, PROTOCOL]])"),
    ("bind", "bind(sock, [any|target,] port)"),
    ("listen", "listen(sock, backlog)"),
    ("accept", "accept(sock)"),
    ("connect", "connect(sock, port or AF_UNSPEC)"),
    ("send", "send(sock, DATA [, MSG_... flags])"),
    ("write", "write(sock, DATA)"),
    ("sendto", "sendto(sock, DATA, FLAGS, port or AF_...)"),
    ("recv", "recv(sock, [NULL,] length [, MSG_... flags])"),
    ("read", "read(sock, [NULL,] length)"),
    ("recvfrom", "recvfrom(sock, [NULL,] length [, FLAGS])"),
    ("sendmsg", "sendmsg(sock, [LENGTH, ...], FLAGS, port or AF_...)"),
    (
        "recvmsg",
        "recvmsg(sock, [LENGTH, ...], FLAGS [, {msg_flags=..., msg_control=[...]}])",
    ),
    ("shutdown", "shutdown(sock, SHUT_RD|SHUT_WR|SHUT_RDWR)"),
    ("close", "close(sock)"),
    (
        "setsockopt",
        "setsockopt(sock, OPTION, value [, value]) or setsockopt(sock, LEVEL, OPTION, VALUE [, LENGTH])",
    ),
    (
        "getsockopt",
        "getsockopt(sock, OPTION) or getsockopt(sock, LEVEL, OPTION [, VALUE, [LENGTH]])",
    ),
    ("fcntl", "fcntl(fd, CMD [, ARG])"),
    ("ioctl", "ioctl(fd, REQUEST [, [VALUE]])"),
    ("epoll_create", "epoll_create(SIZE)"),
    ("epoll_ctl", "epoll_ctl(epfd, OP, fd, {events=..., fd=...})"),
    (
        "epoll_wait",
        "epoll_wait(epfd, {events=..., fd=...}, MAXEVENTS, TIMEOUT_MS)",
    ),
    ("pipe", "pipe([read_end, write_end])"),
    ("open", "open(\"path\", FLAGS)"),
    ("splice", "splice(from, to, LENGTH, FLAGS)"),
    ("sendfile", "sendfile(to, from, [OFFSET], COUNT)"),
];

/// The most a buffer of a call may hold.
const MAX_BUFFER: i64 = 16 << 20;
const PORT: i64 = u16::MAX as i64;
const I32: (i64, i64) = (i32::MIN as i64, i32::MAX as i64);
const U32: (i64, i64) = (0, u32::MAX as i64);

/// One function's arguments, with what the messages about them need.
struct Args<'c, 'a> {
    c: &'c Cursor<'a>,
    name: &'c str,
    usage: &'static str,
    at: usize,
    args: &'c [(usize, Arg)],
    close_at: usize,
}

impl Args<'_, '_> {
    fn arity(&self, min: usize, max: usize) -> CResult<()> {
        if self.args.len() < min || self.args.len() > max {
            let name = self.name;
            return self.c.err(
                self.at,
                format!(
                    "{name}() takes {}: {}",
                    if min == max {
                        format!("{min} argument(s)")
                    } else {
                        format!("{min} to {max} arguments")
                    },
                    self.usage
                ),
            );
        }
        Ok(())
    }

    /// Argument `i`, or an error at the closing parenthesis saying what is missing.
    fn get(&self, i: usize, missing: &str) -> CResult<&(usize, Arg)> {
        match self.args.get(i) {
            Some(arg) => Ok(arg),
            None => self.c.err(self.close_at, format!("{missing}: {}", self.usage)),
        }
    }

    fn sock(&self, i: usize) -> CResult<String> {
        match &self.args[i] {
            (_, Arg::Ident(n)) => Ok(n.clone()),
            (a, other) => self.c.err(
                *a,
                format!(
                    "argument {} of {}() is a socket name, not {}",
                    i + 1,
                    self.name,
                    other.describe()
                ),
            ),
        }
    }

    fn int(&self, i: usize, what: &str, (min, max): (i64, i64)) -> CResult<i64> {
        number(self.c, &self.args[i], what, (min, max))
    }

    fn constant(&self, i: usize, names: Constants, range: (i64, i64)) -> CResult<i64> {
        constant(self.c, &self.args[i], names, range)
    }

    /// send() and recv() flags: `MSG_*` names joined by `|`, or a number; 0 when not given.
    fn msg_flags(&self, i: usize) -> CResult<i32> {
        match self.args.get(i) {
            None => Ok(0),
            Some((a, arg @ (Arg::Struct(_) | Arg::List(_) | Arg::Str(_) | Arg::Call(..)))) => self.c.err(
                *a,
                format!("flags must be MSG_* names joined by `|`, not {}", arg.describe()),
            ),
            Some(arg) => constant(self.c, arg, MSG_FLAGS, I32).map(|v| v as i32),
        }
    }

    /// Where a call sends to: a port of the harness's address, or an address family alone.
    fn destination(&self, i: usize) -> CResult<Destination> {
        match self.get(i, "the destination is missing")? {
            (_, Arg::Int(_)) => Ok(Destination::Peer(self.int(i, "port", (1, PORT))? as u16)),
            arg => Ok(Destination::Family(constant(self.c, arg, FAMILIES, I32)? as i32)),
        }
    }

    /// What send() sends, from argument `i`: the buffer, its length, and the next argument's index.
    fn data(&self, i: usize) -> CResult<(Buffer, usize, usize)> {
        let usage = "a \"string\", a length (filler bytes), zeros(LENGTH) or NULL and a length";
        match &self.args[i] {
            (_, Arg::Str(s)) => Ok((Buffer::Bytes(s.clone()), s.len(), i + 1)),
            (_, Arg::Int(_)) => {
                let n = self.int(i, "length", (0, MAX_BUFFER))? as usize;
                Ok((Buffer::Bytes(crate::packet::pattern::filler(n)), n, i + 1))
            }
            (a, Arg::Call(f, inner)) if f == "zeros" => match inner.as_slice() {
                [len @ (_, Arg::Int(_))] => {
                    let n = number(self.c, len, "length", (0, MAX_BUFFER))? as usize;
                    Ok((Buffer::Bytes(vec![0; n]), n, i + 1))
                }
                _ => self.c.err(*a, "zeros() takes a length, as in zeros(1000)"),
            },
            (_, Arg::Ident(n)) if n == "NULL" => {
                self.get(i + 1, "NULL is followed by the length")?;
                let n = self.int(i + 1, "length", (0, MAX_BUFFER))? as usize;
                Ok((Buffer::Null, n, i + 2))
            }
            (a, other) => self
                .c
                .err(*a, format!("{}() takes {usage}, not {}", self.name, other.describe())),
        }
    }

    /// A recv()'s buffer from argument `i`: whether it is NULL, its length and the next argument's index.
    fn recv_buffer(&self, i: usize) -> CResult<(bool, usize, usize)> {
        let null = matches!(&self.args[i], (_, Arg::Ident(n)) if n == "NULL");
        let at = i + usize::from(null);
        self.get(at, "the length is missing")?;
        Ok((null, self.int(at, "length", (0, MAX_BUFFER))? as usize, at + 1))
    }

    fn option(&self, i: usize) -> CResult<SockOpt> {
        match &self.args[i] {
            (a, Arg::Ident(n)) => SOCKOPTS.iter().copied().find(|o| o.name == n).map_or_else(
                || {
                    self.c.err(
                        *a,
                        format!(
                            "unknown socket option `{n}`{}",
                            suggest(n, SOCKOPTS.iter().map(|o| o.name))
                        ),
                    )
                },
                Ok,
            ),
            (a, other) => self
                .c
                .err(*a, format!("expected a socket option name, not {}", other.describe())),
        }
    }

    /// Whether argument 1 of setsockopt()/getsockopt() is a level, as in the C call.
    fn level_form(&self) -> bool {
        match self.args.get(1) {
            Some((_, Arg::Int(_))) => true,
            Some((_, Arg::Ident(n))) => LEVELS.value(n).is_some(),
            _ => false,
        }
    }

    /// `LEVEL, OPTION` at arguments 1 and 2: any option, its value an int or bytes.
    fn level_option(&self) -> CResult<SockOpt> {
        let level = self.constant(1, LEVELS, I32)? as i32;
        let (name, optname) = match &self.args[2] {
            (_, Arg::Int(_)) => ("option", self.int(2, "option", I32)?),
            (a, Arg::Ident(n)) => match symbols::static_name(n).and_then(|s| Some((s, symbols::value(s)?))) {
                Some(found) => found,
                None => {
                    let hint = suggest(n, OPTIONS.names().map(|(n, _)| n));
                    return self.c.err(*a, format!("unknown socket option `{n}`{hint}"));
                }
            },
            (a, other) => {
                return self
                    .c
                    .err(*a, format!("expected a socket option, not {}", other.describe()));
            }
        };
        Ok(SockOpt {
            name,
            level,
            optname: optname as i32,
            kind: OptKind::Int,
        })
    }
}

fn number(c: &Cursor<'_>, (a, arg): &(usize, Arg), what: &str, (min, max): (i64, i64)) -> CResult<i64> {
    match arg {
        Arg::Int(v) if *v < min || *v > max => c.err(*a, format!("{what} {v} is out of range ({min}..={max})")),
        Arg::Int(v) => Ok(*v),
        other => c.err(*a, format!("{what} must be a number, not {}", other.describe())),
    }
}

/// A number, a constant's name, or names joined by `|`.
fn constant(c: &Cursor<'_>, (a, arg): &(usize, Arg), names: Constants, range: (i64, i64)) -> CResult<i64> {
    let words: Vec<&String> = match arg {
        Arg::Int(_) => return number(c, &(*a, arg.clone()), names.what, range),
        Arg::Ident(n) => vec![n],
        Arg::Flags(f) => f.iter().collect(),
        other => {
            return c.err(
                *a,
                format!(
                    "expected a {} ({}...) or a number, not {}",
                    names.what,
                    names.prefixes.join(", "),
                    other.describe()
                ),
            );
        }
    };
    let mut value = 0;
    for w in words {
        match names.value(w) {
            Some(v) => value |= v,
            None => {
                let hint = suggest(w, names.names().map(|(n, _)| n));
                return c.err(*a, format!("unknown {} `{w}`{hint}", names.what));
            }
        }
    }
    number(c, &(*a, Arg::Int(value)), names.what, range)
}

/// A struct's fields, checked against the names it may have.
struct Fields<'c, 'a> {
    c: &'c Cursor<'a>,
    at: usize,
    fields: &'c [Field],
    what: &'static str,
}

impl<'c, 'a> Fields<'c, 'a> {
    fn new(c: &'c Cursor<'a>, arg: &'c (usize, Arg), what: &'static str, known: &[&str]) -> CResult<Self> {
        let (at, Arg::Struct(fields)) = arg else {
            return c.err(arg.0, format!("expected {what} `{{...}}`, not {}", arg.1.describe()));
        };
        if let Some((fat, name, _)) = fields.iter().find(|(_, n, _)| !known.contains(&n.as_str())) {
            return c.err(
                *fat,
                format!(
                    "unknown field `{name}` of {what}{}; its fields are {}",
                    suggest(name, known),
                    known.join(", ")
                ),
            );
        }
        Ok(Fields {
            c,
            at: *at,
            fields,
            what,
        })
    }

    fn get(&self, name: &str) -> Option<&'c (usize, Arg)> {
        self.fields.iter().find(|(_, n, _)| n == name).map(|(_, _, v)| v)
    }

    fn require(&self, name: &str) -> CResult<&'c (usize, Arg)> {
        self.get(name).map_or_else(
            || self.c.err(self.at, format!("{} needs the field `{name}`", self.what)),
            Ok,
        )
    }

    fn int(&self, name: &str, range: (i64, i64)) -> CResult<i64> {
        number(self.c, self.require(name)?, name, range)
    }

    fn constant(&self, name: &str, names: Constants, range: (i64, i64)) -> CResult<i64> {
        constant(self.c, self.require(name)?, names, range)
    }
}

fn epoll_event(c: &Cursor<'_>, arg: &(usize, Arg)) -> CResult<EpollEvent> {
    let f = Fields::new(c, arg, "a struct epoll_event", &["events", "fd", "ptr", "u32", "u64"])?;
    // EPOLLET is a negative int.
    let events = f.constant("events", EPOLL_EVENTS, (I32.0, U32.1))? as u32;
    let data = match (f.get("fd"), ["ptr", "u32", "u64"].iter().find(|n| f.get(n).is_some())) {
        (Some((_, Arg::Ident(fd))), None) => EpollData::Fd(fd.clone()),
        (Some((a, other)), None) => return c.err(*a, format!("fd= is a descriptor name, not {}", other.describe())),
        (None, Some(name)) => EpollData::Raw(f.int(name, (0, i64::MAX))? as u64),
        _ => return c.err(f.at, "an epoll_event has one of fd=, ptr=, u32= or u64="),
    };
    Ok(EpollEvent { events, data })
}

/// What recvmsg() must leave in its msghdr: `{msg_flags=..., msg_control=[...]}`.
fn msg_out(c: &Cursor<'_>, arg: &(usize, Arg)) -> CResult<MsgOut> {
    let f = Fields::new(c, arg, "a struct msghdr", &["msg_flags", "msg_control"])?;
    let flags = match f.get("msg_flags") {
        Some(v) => constant(c, v, MSG_FLAGS, I32)? as i32,
        None => 0,
    };
    let control = match f.get("msg_control") {
        None => Vec::new(),
        Some((_, Arg::List(items))) => items.iter().map(|i| cmsg(c, i)).collect::<CResult<_>>()?,
        Some((a, other)) => {
            return c.err(
                *a,
                format!("msg_control is a list of control messages, not {}", other.describe()),
            );
        }
    };
    Ok(MsgOut { flags, control })
}

fn cmsg(c: &Cursor<'_>, arg: &(usize, Arg)) -> CResult<Cmsg> {
    let f = Fields::new(c, arg, "a control message", &["cmsg_level", "cmsg_type", "cmsg_data"])?;
    let level = f.constant("cmsg_level", LEVELS, I32)? as i32;
    let kind = f.constant("cmsg_type", CMSG_TYPES, I32)? as i32;
    let data = f.require("cmsg_data")?;
    let data = match data {
        (_, Arg::Struct(fields)) if fields.iter().any(|(_, n, _)| n == "ee_errno") => {
            let e = Fields::new(
                c,
                data,
                "a struct sock_extended_err",
                &["ee_errno", "ee_origin", "ee_type", "ee_code", "ee_info", "ee_data"],
            )?;
            CmsgData::ExtendedErr {
                errno: e.int("ee_errno", U32)? as u32,
                origin: e.constant("ee_origin", EE_ORIGINS, (0, 255))? as u8,
                kind: e.int("ee_type", (0, 255))? as u8,
                code: e.int("ee_code", (0, 255))? as u8,
                info: e.int("ee_info", U32)? as u32,
                data: e.int("ee_data", U32)? as u32,
            }
        }
        (_, Arg::Struct(_)) => {
            let t = Fields::new(c, data, "a struct scm_timestamping", &["scm_sec", "scm_nsec"])?;
            CmsgData::Timestamping {
                sec: t.int("scm_sec", (0, i64::MAX))?,
                nsec: t.int("scm_nsec", (0, i64::MAX))?,
            }
        }
        _ => CmsgData::Int(number(c, data, "cmsg_data", I32)? as i32),
    };
    Ok(Cmsg { level, kind, data })
}

/// `[N]`: the int a pointer argument points at (a bare number is taken too).
fn pointed(c: &Cursor<'_>, arg: &(usize, Arg), what: &str, range: (i64, i64)) -> CResult<i64> {
    match arg {
        (_, Arg::List(items)) => match items.as_slice() {
            [one] => number(c, one, what, range),
            _ => c.err(arg.0, format!("{what} is one number in brackets, as in [1]")),
        },
        other => number(c, other, what, range),
    }
}

/// A socket option's value as the C call passes it: `[N]` or `[N, M]` (ints) or a "string" (bytes).
fn opt_value(c: &Cursor<'_>, arg: &(usize, Arg)) -> CResult<OptValue> {
    match arg {
        (_, Arg::Int(_)) => Ok(OptValue::Ints(vec![number(c, arg, "value", I32)? as i32])),
        (_, Arg::List(items)) => items
            .iter()
            .map(|i| number(c, i, "value", I32).map(|v| v as i32))
            .collect::<CResult<_>>()
            .map(OptValue::Ints),
        (_, Arg::Str(bytes)) => Ok(OptValue::Bytes(bytes.clone())),
        (a, other) => c.err(
            *a,
            format!(
                "a socket option's value is [ints] or a \"string\", not {}",
                other.describe()
            ),
        ),
    }
}

fn build_func(c: &Cursor<'_>, name: &str, at: usize, args: &[(usize, Arg)], close_at: usize) -> CResult<Func> {
    let Some((_, usage)) = FUNCTIONS.iter().find(|(n, _)| *n == name) else {
        let names = FUNCTIONS.iter().map(|(n, _)| *n);
        let known: Vec<&str> = FUNCTIONS.iter().map(|(n, _)| *n).collect();
        return c.err(
            at,
            format!(
                "unknown function `{name}`{}; known: {}",
                suggest(name, names),
                known.join(", ")
            ),
        );
    };
    let a = Args {
        c,
        name,
        usage,
        at,
        args,
        close_at,
    };
    Ok(match name {
        "socket" => {
            a.arity(0, 2)?;
            Func::Socket {
                ty: match args.first() {
                    None => libc::SOCK_STREAM,
                    Some(_) => a.constant(0, SOCK_TYPES, I32)? as i32,
                },
                protocol: match args.get(1) {
                    None => 0,
                    Some(_) => a.constant(1, PROTOCOLS, I32)? as i32,
                },
            }
        }
        "bind" => {
            a.arity(2, 3)?;
            let to = match args.len() {
                2 => BindTo::Wildcard,
                _ => match &args[1] {
                    (_, Arg::Ident(w)) if w == "any" => BindTo::Wildcard,
                    (_, Arg::Ident(w)) if w == "target" => BindTo::Target,
                    (at, _) => {
                        return c.err(
                            *at,
                            "bind()'s address is `any` (the wildcard) or `target` (the target's address)",
                        );
                    }
                },
            };
            Func::Bind {
                sock: a.sock(0)?,
                port: a.int(args.len() - 1, "port", (0, PORT))? as u16,
                to,
            }
        }
        "listen" => {
            a.arity(2, 2)?;
            Func::Listen {
                sock: a.sock(0)?,
                backlog: a.int(1, "backlog", I32)? as i32,
            }
        }
        "accept" => {
            a.arity(1, 1)?;
            Func::Accept { sock: a.sock(0)? }
        }
        "connect" => {
            a.arity(2, 2)?;
            Func::Connect {
                sock: a.sock(0)?,
                to: a.destination(1)?,
            }
        }
        "send" | "write" | "sendto" => {
            a.arity(2, 5)?;
            let sock = a.sock(0)?;
            let (data, len, next) = a.data(1)?;
            let (call, flags) = match name {
                "send" => {
                    a.arity(next, next + 1)?;
                    (SendCall::Send, a.msg_flags(next)?)
                }
                "write" => {
                    a.arity(next, next)?;
                    (SendCall::Write, 0)
                }
                _ => {
                    a.arity(next + 2, next + 2)?;
                    let flags = a.msg_flags(next)?;
                    (SendCall::SendTo(a.destination(next + 1)?), flags)
                }
            };
            Func::Send {
                sock,
                call,
                data,
                len,
                flags,
            }
        }
        "recv" | "read" | "recvfrom" => {
            a.arity(2, 4)?;
            let sock = a.sock(0)?;
            let (null, len, next) = a.recv_buffer(1)?;
            let call = match name {
                "recv" => RecvCall::Recv,
                "read" => RecvCall::Read,
                _ => RecvCall::RecvFrom,
            };
            if call == RecvCall::Read {
                a.arity(next, next)?;
            } else {
                a.arity(next, next + 1)?;
            }
            Func::Recv {
                sock,
                call,
                len,
                null,
                flags: a.msg_flags(next)?,
            }
        }
        "sendmsg" | "recvmsg" => {
            if name == "sendmsg" {
                a.arity(4, 4)?;
            } else {
                a.arity(3, 4)?;
            }
            let iov = match &args[1] {
                (_, Arg::List(items)) => items
                    .iter()
                    .map(|i| number(c, i, "length", (0, MAX_BUFFER)).map(|n| n as usize))
                    .collect::<CResult<Vec<usize>>>()?,
                (at, other) => {
                    return c.err(
                        *at,
                        format!(
                            "{name}() takes its buffers' lengths in brackets, as in [1000], not {}",
                            other.describe()
                        ),
                    );
                }
            };
            let sock = a.sock(0)?;
            let flags = a.msg_flags(2)?;
            if name == "sendmsg" {
                Func::SendMsg {
                    sock,
                    iov,
                    to: a.destination(3)?,
                    flags,
                }
            } else {
                Func::RecvMsg {
                    sock,
                    iov,
                    flags,
                    out: args.get(3).map(|out| msg_out(c, out)).transpose()?,
                }
            }
        }
        "shutdown" => {
            a.arity(2, 2)?;
            let how = match &args[1] {
                (_, Arg::Ident(h)) if h == "SHUT_RD" => How::Read,
                (_, Arg::Ident(h)) if h == "SHUT_WR" => How::Write,
                (_, Arg::Ident(h)) if h == "SHUT_RDWR" => How::Both,
                (a, _) => return c.err(*a, "shutdown() takes SHUT_RD, SHUT_WR or SHUT_RDWR"),
            };
            Func::Shutdown { sock: a.sock(0)?, how }
        }
        "close" => {
            a.arity(1, 1)?;
            Func::Close { sock: a.sock(0)? }
        }
        "setsockopt" if a.level_form() => {
            a.arity(4, 5)?;
            Func::SetSockOpt {
                sock: a.sock(0)?,
                opt: a.level_option()?,
                value: opt_value(c, &args[3])?,
                len: match args.get(4) {
                    None => None,
                    Some(_) => Some(a.int(4, "length", U32)? as u32),
                },
            }
        }
        "setsockopt" => {
            a.arity(3, 4)?;
            let opt = a.option(1)?;
            let wanted = match opt.kind {
                OptKind::Int => 1,
                OptKind::Linger => 2,
                OptKind::Errno => return c.err(args[1].0, format!("{} can only be read", opt.name)),
            };
            if args.len() - 2 != wanted {
                let form = if wanted == 1 {
                    "one value"
                } else {
                    "two values: on/off and seconds"
                };
                return c.err(close_at, format!("{} takes {form}", opt.name));
            }
            let values = (2..args.len())
                .map(|i| a.int(i, "value", I32).map(|v| v as i32))
                .collect::<CResult<_>>()?;
            Func::SetSockOpt {
                sock: a.sock(0)?,
                opt,
                value: OptValue::Ints(values),
                len: None,
            }
        }
        "getsockopt" if a.level_form() => {
            if args.len() == 4 {
                return c.err(
                    close_at,
                    "getsockopt() takes the value and the length it must leave, or neither",
                );
            }
            a.arity(3, 5)?;
            let out = match args.get(3) {
                None => None,
                Some(value) => Some(OptOut {
                    value: opt_value(c, value)?,
                    len: pointed(c, &args[4], "length", U32)? as u32,
                }),
            };
            Func::GetSockOpt {
                sock: a.sock(0)?,
                opt: a.level_option()?,
                out,
            }
        }
        "getsockopt" => {
            a.arity(2, 2)?;
            let opt = a.option(1)?;
            if opt.kind == OptKind::Linger {
                return c.err(
                    args[1].0,
                    "getsockopt(SO_LINGER) is not supported; check the behaviour on the wire",
                );
            }
            Func::GetSockOpt {
                sock: a.sock(0)?,
                opt,
                out: None,
            }
        }
        "fcntl" => {
            a.arity(2, 3)?;
            Func::Fcntl {
                sock: a.sock(0)?,
                cmd: a.constant(1, FCNTL_COMMANDS, I32)? as i32,
                arg: match args.get(2) {
                    None => None,
                    Some(_) => Some(a.constant(2, FCNTL_ARGS, (i64::MIN, i64::MAX))?),
                },
            }
        }
        "ioctl" => {
            a.arity(2, 3)?;
            Func::Ioctl {
                sock: a.sock(0)?,
                request: a.constant(1, IOCTLS, (0, i64::MAX))? as u64,
                out: match args.get(2) {
                    None => None,
                    Some(out @ (_, Arg::List(_))) => Some(pointed(c, out, "value", (i64::MIN, i64::MAX))?),
                    Some((at, other)) => {
                        return c.err(
                            *at,
                            format!(
                                "ioctl()'s int is written in brackets, as in [0], not {}",
                                other.describe()
                            ),
                        );
                    }
                },
            }
        }
        "epoll_create" => {
            a.arity(1, 1)?;
            Func::EpollCreate {
                size: a.int(0, "size", I32)? as i32,
            }
        }
        "epoll_ctl" => {
            a.arity(4, 4)?;
            Func::EpollCtl {
                epoll: a.sock(0)?,
                op: a.constant(1, EPOLL_OPS, I32)? as i32,
                sock: a.sock(2)?,
                event: epoll_event(c, &args[3])?,
            }
        }
        "epoll_wait" => {
            a.arity(4, 4)?;
            Func::EpollWait {
                epoll: a.sock(0)?,
                event: epoll_event(c, &args[1])?,
                max: a.int(2, "maxevents", I32)? as i32,
                timeout_ms: a.int(3, "timeout", I32)? as i32,
            }
        }
        "pipe" => {
            a.arity(1, 1)?;
            match &args[0] {
                (_, Arg::List(ends)) => match ends.as_slice() {
                    [(_, Arg::Ident(read)), (_, Arg::Ident(write))] if read != write => Func::Pipe {
                        read: read.clone(),
                        write: write.clone(),
                    },
                    _ => return c.err(args[0].0, "pipe() names its two ends, as in pipe([rd, wr])"),
                },
                (at, _) => return c.err(*at, "pipe() names its two ends, as in pipe([rd, wr])"),
            }
        }
        "open" => {
            a.arity(2, 2)?;
            let path = match &args[0] {
                (at, Arg::Str(bytes)) => match String::from_utf8(bytes.clone()) {
                    Ok(path) => path,
                    Err(_) => return c.err(*at, "the path is not UTF-8"),
                },
                (at, other) => return c.err(*at, format!("open() takes a \"path\", not {}", other.describe())),
            };
            Func::Open {
                path,
                flags: a.constant(1, OPEN_FLAGS, I32)? as i32,
            }
        }
        "splice" => {
            a.arity(4, 4)?;
            Func::Splice {
                from: a.sock(0)?,
                to: a.sock(1)?,
                len: a.int(2, "length", (0, MAX_BUFFER))? as usize,
                flags: a.constant(3, SPLICE_FLAGS, U32)? as u32,
            }
        }
        "sendfile" => {
            a.arity(4, 4)?;
            Func::SendFile {
                to: a.sock(0)?,
                from: a.sock(1)?,
                offset: pointed(c, &args[2], "offset", (0, i64::MAX))?,
                count: a.int(3, "count", (0, MAX_BUFFER))? as usize,
            }
        }
        _ => unreachable!("every name in FUNCTIONS is handled"),
    })
}

/// A call the notation cannot write, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unwritable(pub String);

/// Bytes as a string of the notation, escaped so that [`parse_call`] reads them back.
pub fn string_literal(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

/// Writes a call in the notation, so that [`parse_call`] gives it back.
pub fn format_call(call: &Call) -> Result<String, Unwritable> {
    let mut out = String::new();
    if let Some(name) = &call.binds {
        out.push_str(&format!("{name} = "));
    }
    out.push_str(&format_func(&call.func)?);
    match &call.outcome {
        Outcome::Success => {}
        Outcome::Value(v) => out.push_str(&format!(" = {v}")),
        Outcome::Errno(e) => out.push_str(&format!(" = {}", errno_name(*e))),
        Outcome::Failed => out.push_str(" = -1"),
        Outcome::Data(d) => out.push_str(&format!(" = {}", string_literal(d))),
        Outcome::Any => out.push_str(" = any"),
    }
    Ok(out)
}

fn destination_text(to: Destination) -> Result<String, Unwritable> {
    match to {
        Destination::Peer(port) => Ok(port.to_string()),
        Destination::Family(af) => match FAMILIES.names().find(|(_, v)| *v == i64::from(af)) {
            Some((name, _)) => Ok(name.to_string()),
            None => Err(Unwritable(format!(
                "a destination of address family {af}, which has no name"
            ))),
        },
    }
}

fn data_text(data: &Buffer, len: usize) -> Result<String, Unwritable> {
    match data {
        Buffer::Null => Ok(format!("NULL, {len}")),
        Buffer::Bytes(b) if b.len() != len => Err(Unwritable(format!(
            "a buffer of {} bytes passed with length {len}",
            b.len()
        ))),
        Buffer::Bytes(b) if *b == crate::packet::pattern::filler(len) => Ok(len.to_string()),
        Buffer::Bytes(b) if b.iter().all(|x| *x == 0) => Ok(format!("zeros({len})")),
        Buffer::Bytes(b) => Ok(string_literal(b)),
    }
}

fn ints_text(values: &[impl fmt::Display]) -> String {
    let items: Vec<String> = values.iter().map(ToString::to_string).collect();
    format!("[{}]", items.join(", "))
}

fn opt_value_text(value: &OptValue) -> String {
    match value {
        OptValue::Ints(v) => ints_text(v),
        OptValue::Bytes(b) => string_literal(b),
    }
}

/// `LEVEL, OPTION` of the C call.
fn level_option_text(opt: &SockOpt) -> String {
    let name = if opt.name == "option" {
        opt.optname.to_string()
    } else {
        opt.name.to_string()
    };
    format!("{}, {name}", LEVELS.text(i64::from(opt.level)))
}

fn epoll_event_text(event: &EpollEvent) -> String {
    let data = match &event.data {
        EpollData::Fd(fd) => format!("fd={fd}"),
        EpollData::Raw(v) => format!("u64={v}"),
    };
    format!(
        "{{events={}, {data}}}",
        EPOLL_EVENTS.text(i64::from(event.events as i32))
    )
}

fn msg_out_text(out: &MsgOut) -> String {
    let mut text = format!("{{msg_flags={}", MSG_FLAGS.text(i64::from(out.flags)));
    if !out.control.is_empty() {
        let items: Vec<String> = out
            .control
            .iter()
            .map(|m| {
                let data = match &m.data {
                    CmsgData::Int(v) => v.to_string(),
                    CmsgData::ExtendedErr {
                        errno,
                        origin,
                        kind,
                        code,
                        info,
                        data,
                    } => format!(
                        "{{ee_errno={errno}, ee_origin={}, ee_type={kind}, ee_code={code}, ee_info={info}, ee_data={data}}}",
                        EE_ORIGINS.text(i64::from(*origin))
                    ),
                    CmsgData::Timestamping { sec, nsec } => format!("{{scm_sec={sec}, scm_nsec={nsec}}}"),
                };
                format!(
                    "{{cmsg_level={}, cmsg_type={}, cmsg_data={data}}}",
                    LEVELS.text(i64::from(m.level)),
                    cmsg_types(m.level).text(i64::from(m.kind))
                )
            })
            .collect();
        text.push_str(&format!(", msg_control=[{}]", items.join(", ")));
    }
    text.push('}');
    text
}

fn format_func(func: &Func) -> Result<String, Unwritable> {
    let flags = |f: i32| MSG_FLAGS.text(i64::from(f));
    Ok(match func {
        Func::Socket { ty, protocol } => match (*ty, *protocol) {
            (libc::SOCK_STREAM, 0) => "socket()".into(),
            (ty, 0) => format!("socket({})", SOCK_TYPES.text(i64::from(ty))),
            (ty, p) => format!(
                "socket({}, {})",
                SOCK_TYPES.text(i64::from(ty)),
                PROTOCOLS.text(i64::from(p))
            ),
        },
        Func::Bind { sock, port, to } => match to {
            BindTo::Wildcard => format!("bind({sock}, {port})"),
            BindTo::Target => format!("bind({sock}, target, {port})"),
        },
        Func::Listen { sock, backlog } => format!("listen({sock}, {backlog})"),
        Func::Accept { sock } => format!("accept({sock})"),
        Func::Connect { sock, to } => format!("connect({sock}, {})", destination_text(*to)?),
        Func::Send {
            sock,
            call,
            data,
            len,
            flags: f,
        } => {
            let data = data_text(data, *len)?;
            match (call, *f) {
                (SendCall::Send, 0) => format!("send({sock}, {data})"),
                (SendCall::Send, f) => format!("send({sock}, {data}, {})", flags(f)),
                (SendCall::Write, 0) => format!("write({sock}, {data})"),
                (SendCall::Write, f) => return Err(Unwritable(format!("write() with flags {f}"))),
                (SendCall::SendTo(to), f) => {
                    format!("sendto({sock}, {data}, {}, {})", flags(f), destination_text(*to)?)
                }
            }
        }
        Func::Recv {
            sock,
            call,
            len,
            null,
            flags: f,
        } => {
            let buffer = if *null { format!("NULL, {len}") } else { len.to_string() };
            match (call, *f) {
                (RecvCall::Read, 0) => format!("read({sock}, {buffer})"),
                (RecvCall::Read, f) => return Err(Unwritable(format!("read() with flags {f}"))),
                (RecvCall::Recv, 0) => format!("recv({sock}, {buffer})"),
                (RecvCall::Recv, f) => format!("recv({sock}, {buffer}, {})", flags(f)),
                (RecvCall::RecvFrom, 0) => format!("recvfrom({sock}, {buffer})"),
                (RecvCall::RecvFrom, f) => format!("recvfrom({sock}, {buffer}, {})", flags(f)),
            }
        }
        Func::SendMsg {
            sock,
            iov,
            to,
            flags: f,
        } => format!(
            "sendmsg({sock}, {}, {}, {})",
            ints_text(iov),
            flags(*f),
            destination_text(*to)?
        ),
        Func::RecvMsg {
            sock,
            iov,
            flags: f,
            out,
        } => match out {
            None => format!("recvmsg({sock}, {}, {})", ints_text(iov), flags(*f)),
            Some(out) => format!(
                "recvmsg({sock}, {}, {}, {})",
                ints_text(iov),
                flags(*f),
                msg_out_text(out)
            ),
        },
        Func::Shutdown { sock, how } => {
            let how = match how {
                How::Read => "SHUT_RD",
                How::Write => "SHUT_WR",
                How::Both => "SHUT_RDWR",
            };
            format!("shutdown({sock}, {how})")
        }
        Func::Close { sock } => format!("close({sock})"),
        Func::SetSockOpt { sock, opt, value, len } => {
            let in_table = SOCKOPTS.iter().any(|o| o == opt);
            let count = match opt.kind {
                OptKind::Linger => 2,
                _ => 1,
            };
            match (value, len) {
                (OptValue::Ints(v), None) if in_table && opt.kind != OptKind::Errno && v.len() == count => {
                    let values: Vec<String> = v.iter().map(ToString::to_string).collect();
                    format!("setsockopt({sock}, {}, {})", opt.name, values.join(", "))
                }
                _ if opt.kind == OptKind::Int => {
                    let len = len.map(|l| format!(", {l}")).unwrap_or_default();
                    format!(
                        "setsockopt({sock}, {}, {}{len})",
                        level_option_text(opt),
                        opt_value_text(value)
                    )
                }
                _ => {
                    return Err(Unwritable(format!(
                        "setsockopt() of {} with a value laid out as {:?} other than the table's",
                        opt.name, opt.kind
                    )));
                }
            }
        }
        Func::GetSockOpt { sock, opt, out } => match out {
            None if SOCKOPTS.iter().any(|o| o == opt) && opt.kind != OptKind::Linger => {
                format!("getsockopt({sock}, {})", opt.name)
            }
            None if opt.kind == OptKind::Int => format!("getsockopt({sock}, {})", level_option_text(opt)),
            Some(out) if opt.kind == OptKind::Int => format!(
                "getsockopt({sock}, {}, {}, [{}])",
                level_option_text(opt),
                opt_value_text(&out.value),
                out.len
            ),
            _ => {
                return Err(Unwritable(format!(
                    "getsockopt() of {} with a value laid out as {:?}",
                    opt.name, opt.kind
                )));
            }
        },
        Func::Fcntl { sock, cmd, arg } => {
            let cmd_text = FCNTL_COMMANDS.text(i64::from(*cmd));
            match arg {
                None => format!("fcntl({sock}, {cmd_text})"),
                Some(v) => {
                    let arg = match *cmd {
                        libc::F_SETFL => OPEN_FLAGS.text(*v),
                        libc::F_SETFD => constants("fd flag", &["FD_"]).text(*v),
                        _ => v.to_string(),
                    };
                    format!("fcntl({sock}, {cmd_text}, {arg})")
                }
            }
        }
        Func::Ioctl { sock, request, out } => {
            let request = i64::try_from(*request)
                .map(|r| IOCTLS.text(r))
                .map_err(|_| Unwritable(format!("ioctl() request {request}, beyond a signed 64-bit number")))?;
            match out {
                None => format!("ioctl({sock}, {request})"),
                Some(v) => format!("ioctl({sock}, {request}, [{v}])"),
            }
        }
        Func::EpollCreate { size } => format!("epoll_create({size})"),
        Func::EpollCtl { epoll, op, sock, event } => format!(
            "epoll_ctl({epoll}, {}, {sock}, {})",
            EPOLL_OPS.text(i64::from(*op)),
            epoll_event_text(event)
        ),
        Func::EpollWait {
            epoll,
            event,
            max,
            timeout_ms,
        } => format!("epoll_wait({epoll}, {}, {max}, {timeout_ms})", epoll_event_text(event)),
        Func::Pipe { read, write } => format!("pipe([{read}, {write}])"),
        Func::Open { path, flags } => format!(
            "open({}, {})",
            string_literal(path.as_bytes()),
            OPEN_FLAGS.text(i64::from(*flags))
        ),
        Func::Splice { from, to, len, flags } => {
            format!("splice({from}, {to}, {len}, {})", SPLICE_FLAGS.text(i64::from(*flags)))
        }
        Func::SendFile {
            to,
            from,
            offset,
            count,
        } => format!("sendfile({to}, {from}, [{offset}], {count})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn parses_calls_with_names_and_outcomes() {
        let c = parse_call("conn = accept(srv)").unwrap();
        assert_eq!(c.binds.as_deref(), Some("conn"));
        assert_eq!(c.func, Func::Accept { sock: "srv".into() });
        assert_eq!(c.outcome, Outcome::Success);
        let c = parse_call("connect(cli, 8080) = ECONNREFUSED").unwrap();
        assert_eq!(
            c.func,
            Func::Connect {
                sock: "cli".into(),
                to: Destination::Peer(8080)
            }
        );
        assert_eq!(c.outcome, Outcome::Errno(Errno::ECONNREFUSED));
        assert_eq!(
            parse_call("connect(cli, 8080) = -1 ECONNREFUSED").unwrap().outcome,
            Outcome::Errno(Errno::ECONNREFUSED)
        );
        let c = parse_call(r#"send(c, "hi\n\x00", MSG_NOSIGNAL|MSG_DONTWAIT) = 4"#).unwrap();
        assert_eq!(
            c.func,
            Func::Send {
                sock: "c".into(),
                call: SendCall::Send,
                data: Buffer::Bytes(b"hi\n\0".to_vec()),
                len: 4,
                flags: libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT
            }
        );
        assert_eq!(c.outcome, Outcome::Value(4));
        let c = parse_call(r#"recv(c, 100) = "hello""#).unwrap();
        assert_eq!(c.outcome, Outcome::Data(b"hello".to_vec()));
        let c = parse_call("setsockopt(c, SO_LINGER, 1, 0)").unwrap();
        assert!(matches!(c.func, Func::SetSockOpt { value: OptValue::Ints(ref v), .. } if v == &[1, 0]));
        assert_eq!(
            parse_call("send(c, 3)").unwrap().func,
            Func::Send {
                sock: "c".into(),
                call: SendCall::Send,
                data: Buffer::Bytes(b"tcp".to_vec()),
                len: 3,
                flags: 0
            }
        );
        assert_eq!(
            parse_call("getsockopt(c, SO_ERROR) = any").unwrap().outcome,
            Outcome::Any
        );
        assert_eq!(
            parse_call("recv(c, 10) = EWOULDBLOCK").unwrap().outcome,
            Outcome::Errno(Errno::EAGAIN)
        );
    }

    /// `text` does not parse, and the error says `message` at `offset`.
    #[track_caller]
    fn assert_error_at(text: &str, offset: usize, message: &str) {
        let err = parse_call(text).unwrap_err();
        assert!(err.message.contains(message), "{text:?}: got {:?}", err.message);
        assert_eq!(err.offset, offset, "{text:?}: {}", err.message);
    }

    #[rstest]
    #[case("", 0, "expected a call such as `listen(srv, 1)`, found the end of the call")]
    #[case("lisen(s, 1)", 0, "unknown function `lisen` (did you mean `listen`?)")]
    #[case("listen(s)", 0, "listen() takes 2 argument(s): listen(sock, backlog)")]
    #[case("listen(s, x)", 10, "backlog must be a number, not a name")]
    #[case("listen(1, 1)", 7, "argument 1 of listen() is a socket name, not a number")]
    #[case("bind(s, 70000)", 8, "port 70000 is out of range (0..=65535)")]
    #[case("accept(s)", 0, "accept() creates a socket: name it")]
    #[case("x = close(s)", 0, "close() does not create a socket")]
    #[case(
        "close(s) = ECONNREFUSD",
        11,
        "unknown errno `ECONNREFUSD` (did you mean `ECONNREFUSED`?)"
    )]
    #[case("close(s) = -2", 11, "a negative return value means an error")]
    #[case("send(s, \"abc)", 8, "unterminated string")]
    #[case(
        "send(s, 1, MSG_NOSIGNL)",
        11,
        "unknown flag `MSG_NOSIGNL` (did you mean `MSG_NOSIGNAL`?)"
    )]
    #[case(
        "setsockopt(s, SO_LINGR, 1, 0)",
        14,
        "unknown socket option `SO_LINGR` (did you mean `SO_LINGER`?)"
    )]
    #[case("setsockopt(s, SO_LINGER, 1)", 26, "SO_LINGER takes two values")]
    #[case("setsockopt(s, SO_ERROR, 1)", 14, "SO_ERROR can only be read")]
    #[case("close(s) junk", 9, "unexpected `junk` after the call")]
    #[case("send(s, \"\\q\")", 9, "unknown escape `\\q`")]
    #[case("send(s, \"\\\n\")", 9, "unknown escape `\\` followed by U+000A")]
    #[case("send(s, \"\\é\")", 9, "unknown escape `\\é`")]
    #[case("shutdown(s, SHUT_WRITE)", 12, "shutdown() takes SHUT_RD, SHUT_WR or SHUT_RDWR")]
    #[case("close(s) = \"x\"", 7, "only recv() can return data")]
    #[case("close(s,", 8, "expected an argument")]
    fn errors_point_at_the_offending_token(#[case] text: &str, #[case] offset: usize, #[case] message: &str) {
        assert_error_at(text, offset, message);
    }

    #[test]
    fn outcomes_accept_what_they_say() {
        let close = Func::Close { sock: "s".into() };
        let so_error = parse_call("getsockopt(s, SO_ERROR)").unwrap().func;
        assert!(Outcome::Success.accepts(&Ret::Value(0), &close));
        assert!(!Outcome::Success.accepts(&Ret::Failed(Errno::EBADF), &close));
        assert!(Outcome::Errno(Errno::EPIPE).accepts(&Ret::Failed(Errno::EPIPE), &close));
        assert!(!Outcome::Errno(Errno::EPIPE).accepts(&Ret::Value(Errno::EPIPE as i64), &close));
        assert!(Outcome::Errno(Errno::ECONNRESET).accepts(&Ret::Value(Errno::ECONNRESET as i64), &so_error));
        assert!(Outcome::Data(b"ab".to_vec()).accepts(&Ret::Data(b"ab".to_vec()), &close));
        assert!(Outcome::Data(vec![]).accepts(&Ret::Value(0), &close));
        assert!(Outcome::Value(2).accepts(&Ret::Data(b"ab".to_vec()), &close));
    }

    #[rstest]
    #[case("srv", &["sv", "conn"], " (did you mean `sv`?)")]
    #[case("sackok", &["sackOK", "sack"], " (did you mean `sackOK`?)")]
    #[case("a", &["id", "rfc"], "")]
    #[case("x", &["c"], "")]
    #[case("title", &["title"], "")]
    fn suggestions_keep_part_of_the_word(#[case] word: &str, #[case] candidates: &[&str], #[case] hint: &str) {
        assert_eq!(suggest(word, candidates), hint);
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in [
            "é(",
            "x = é",
            "send(s, \"\\x",
            "send(s, \"\\xé",
            "f(é)",
            "a = b = c()",
            "close(s) = \"",
            "send(s, -1)",
            "send(s, zeros(",
            "recvmsg(s, [1], 0, {msg_control=[{cmsg_data={ee_errno=1}}]})",
            "x = socket([[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]])",
            "fcntl(s, 0x)",
            "ioctl(s, -99999999999999999999)",
            "getsockopt(s, SOL_SOCKET, SO_ERROR, [0])",
        ] {
            let _ = parse_call(text);
        }
    }

    /// Parses `text`, which must be what [`format_call`] writes for the call it parses to.
    #[track_caller]
    fn written_back(text: &str) -> Call {
        let call = parse_call(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(format_call(&call).as_deref(), Ok(text), "{call:?}");
        call
    }

    #[rstest]
    #[case("s = socket()")]
    #[case("s = socket(SOCK_STREAM|SOCK_NONBLOCK, IPPROTO_TCP)")]
    #[case("bind(s, 8080)")]
    #[case("bind(s, target, 8080)")]
    #[case("connect(s, AF_UNSPEC)")]
    #[case("send(s, 10, MSG_ZEROCOPY)")]
    #[case("send(s, \"a\\x00\\n\\\"\")")]
    #[case("write(s, zeros(1000)) = 1000")]
    #[case("sendto(s, NULL, 1, MSG_FASTOPEN, 8080) = EINPROGRESS")]
    #[case("recv(s, NULL, 10, MSG_DONTWAIT) = -1")]
    #[case("read(s, 100) = 100")]
    #[case("recvfrom(s, 5, MSG_PEEK) = \"hello\"")]
    #[case("sendmsg(s, [1000, 500], MSG_ZEROCOPY, 8080) = 1500")]
    #[case("recvmsg(s, [1000], MSG_ERRQUEUE) = any")]
    #[case(
        "recvmsg(s, [1000], MSG_ERRQUEUE, {msg_flags=MSG_ERRQUEUE, msg_control=[{cmsg_level=SOL_IP, cmsg_type=IP_RECVERR, cmsg_data={ee_errno=0, ee_origin=SO_EE_ORIGIN_ZEROCOPY, ee_type=0, ee_code=1, ee_info=2, ee_data=3}}]})"
    )]
    #[case("recvmsg(s, [10], 0, {msg_flags=0, msg_control=[{cmsg_level=SOL_TCP, cmsg_type=TCP_CM_INQ, cmsg_data=5}]})")]
    #[case(
        "recvmsg(s, [0], MSG_ERRQUEUE, {msg_flags=MSG_ERRQUEUE, msg_control=[{cmsg_level=SOL_SOCKET, cmsg_type=SCM_TIMESTAMPING, cmsg_data={scm_sec=1, scm_nsec=2}}]})"
    )]
    #[case("setsockopt(s, SO_LINGER, 1, 0)")]
    #[case("setsockopt(s, SOL_SOCKET, SO_LINGER, [1, 0], 8)")]
    #[case("setsockopt(s, SOL_TCP, TCP_FASTOPEN_KEY, \"\\x01\\x02\", 2)")]
    #[case("setsockopt(s, SOL_TCP, 99, [1])")]
    #[case("getsockopt(s, SO_ERROR) = ECONNRESET")]
    #[case("getsockopt(s, SOL_SOCKET, SO_SNDBUF, [20000], [4]) = 0")]
    #[case("getsockopt(s, SOL_TCP, TCP_INFO) = 0")]
    #[case("fcntl(s, F_SETFL, O_RDWR|O_NONBLOCK)")]
    #[case("fcntl(s, F_GETFL) = 2")]
    #[case("ioctl(s, SIOCINQ, [1000])")]
    #[case("e = epoll_create(1)")]
    #[case("epoll_ctl(e, EPOLL_CTL_ADD, s, {events=EPOLLOUT|EPOLLET, fd=s})")]
    #[case("epoll_wait(e, {events=0, u64=0}, 1, 0) = 0")]
    #[case("pipe([rd, wr])")]
    #[case("f = open(\"/tmp/testfile\", O_RDONLY)")]
    #[case("splice(rd, s, 99, SPLICE_F_MOVE|SPLICE_F_MORE)")]
    #[case("sendfile(s, f, [0], 5) = 5")]
    #[case("accept(s) = EAGAIN")]
    fn every_function_is_written_back_as_parsed(#[case] text: &str) {
        written_back(text);
    }

    #[test]
    fn the_new_forms_mean_what_the_c_calls_do() {
        let c = written_back("s = socket(SOCK_STREAM|SOCK_NONBLOCK, IPPROTO_TCP)");
        assert_eq!(
            c.func,
            Func::Socket {
                ty: libc::SOCK_STREAM | libc::SOCK_NONBLOCK,
                protocol: libc::IPPROTO_TCP
            }
        );
        let c = written_back("sendto(s, NULL, 1, MSG_FASTOPEN, 8080) = EINPROGRESS");
        assert!(matches!(
            c.func,
            Func::Send {
                data: Buffer::Null,
                len: 1,
                call: SendCall::SendTo(Destination::Peer(8080)),
                ..
            }
        ));
        assert_eq!(
            written_back("recv(s, NULL, 10, MSG_DONTWAIT) = -1").outcome,
            Outcome::Failed
        );
        let c = written_back("setsockopt(s, SOL_SOCKET, SO_LINGER, [1, 0], 8)");
        assert_eq!(
            c.func,
            Func::SetSockOpt {
                sock: "s".into(),
                opt: SockOpt {
                    name: "SO_LINGER",
                    level: libc::SOL_SOCKET,
                    optname: libc::SO_LINGER,
                    kind: OptKind::Int
                },
                value: OptValue::Ints(vec![1, 0]),
                len: Some(8)
            }
        );
        let c = written_back("setsockopt(s, SOL_TCP, 99, [1])");
        assert!(matches!(
            c.func,
            Func::SetSockOpt {
                opt: SockOpt {
                    name: "option",
                    optname: 99,
                    ..
                },
                len: None,
                ..
            }
        ));
        let c = written_back("getsockopt(s, SOL_SOCKET, SO_SNDBUF, [20000], [4]) = 0");
        assert!(matches!(
            c.func,
            Func::GetSockOpt { out: Some(OptOut { value: OptValue::Ints(ref v), len: 4 }), .. } if v == &[20000]
        ));
        let c = written_back("epoll_ctl(e, EPOLL_CTL_ADD, s, {events=EPOLLOUT|EPOLLET, fd=s})");
        assert_eq!(c.func.fds(), ["e", "s"]);
        assert!(matches!(c.func, Func::EpollCtl { event: EpollEvent { events, .. }, .. }
            if events == (libc::EPOLLOUT | libc::EPOLLET) as u32));
        assert_eq!(
            written_back("pipe([rd, wr])").func,
            Func::Pipe {
                read: "rd".into(),
                write: "wr".into()
            }
        );
        assert!(matches!(written_back("write(s, zeros(3)) = 3").func,
            Func::Send { data: Buffer::Bytes(ref b), .. } if b == &[0, 0, 0]));
        // Other spellings of the same call.
        assert_eq!(
            parse_call("fcntl(s, 4, 0x802)").unwrap(),
            parse_call("fcntl(s, F_SETFL, O_RDWR|O_NONBLOCK)").unwrap()
        );
        assert_eq!(
            parse_call("bind(s, any, 80)").unwrap(),
            parse_call("bind(s, 80)").unwrap()
        );
        assert_eq!(
            parse_call("epoll_wait(e, {events=0, ptr=0}, 1, 0)").unwrap(),
            parse_call("epoll_wait(e, {events=0, u64=0}, 1, 0)").unwrap()
        );
    }

    #[rstest]
    #[case(
        "s = socket(SOCK_STRAEM)",
        11,
        "unknown socket type `SOCK_STRAEM` (did you mean `SOCK_STREAM`?)"
    )]
    #[case("bind(s, there, 80)", 8, "bind()'s address is `any` (the wildcard) or `target`")]
    #[case(
        "connect(s, AF_INTE)",
        11,
        "unknown address family `AF_INTE` (did you mean `AF_INET`?)"
    )]
    #[case("send(s, zeros(x))", 8, "zeros() takes a length, as in zeros(1000)")]
    #[case("send(s, NULL)", 12, "NULL is followed by the length")]
    #[case(
        "send(s, [1])",
        8,
        "send() takes a \"string\", a length (filler bytes), zeros(LENGTH) or NULL and a length, not a list"
    )]
    #[case("write(s, 1, MSG_MORE)", 0, "write() takes 2 argument(s)")]
    #[case("sendto(s, 1, 0)", 0, "sendto() takes 4 argument(s)")]
    #[case("read(s, NULL)", 12, "the length is missing")]
    #[case("sendmsg(s, 10, 0, 80)", 11, "sendmsg() takes its buffers' lengths in brackets")]
    #[case(
        "recvmsg(s, [1], 0, {msg_flag=0})",
        20,
        "unknown field `msg_flag` of a struct msghdr (did you mean `msg_flags`?)"
    )]
    #[case(
        "recvmsg(s, [1], 0, {msg_control=[{cmsg_level=SOL_IP}]})",
        33,
        "a control message needs the field `cmsg_type`"
    )]
    #[case(
        "recvmsg(s, [1], 0, {msg_control=5})",
        32,
        "msg_control is a list of control messages, not a number"
    )]
    #[case(
        "setsockopt(s, SOL_TCP, TCP_NODELY, [1])",
        23,
        "unknown socket option `TCP_NODELY` (did you mean `TCP_NODELAY`?)"
    )]
    #[case(
        "setsockopt(s, SOL_TCP, TCP_NODELAY, x)",
        36,
        "a socket option's value is [ints] or a \"string\", not a name"
    )]
    #[case(
        "getsockopt(s, SOL_SOCKET, SO_ERROR, [0])",
        39,
        "getsockopt() takes the value and the length it must leave, or neither"
    )]
    #[case(
        "fcntl(s, F_SETFL, O_NONBLOK)",
        18,
        "unknown fcntl argument `O_NONBLOK` (did you mean `O_NONBLOCK`?)"
    )]
    #[case(
        "ioctl(s, SIOCINQ, 5)",
        18,
        "ioctl()'s int is written in brackets, as in [0], not a number"
    )]
    #[case("ioctl(s, SIOCINQ, [1, 2])", 18, "value is one number in brackets")]
    #[case(
        "epoll_ctl(e, EPOLL_CTL_ADD, s, {events=EPOLLIN})",
        31,
        "an epoll_event has one of fd=, ptr=, u32= or u64="
    )]
    #[case(
        "epoll_ctl(e, EPOLL_CTL_ADD, s, {events=EPOLL_CTL_ADD, fd=s})",
        39,
        "unknown epoll event `EPOLL_CTL_ADD`"
    )]
    #[case(
        "epoll_ctl(e, EPOLL_CTL_ADD, s, {events=1, events=2})",
        42,
        "the field `events` is given twice"
    )]
    #[case("pipe([rd, rd])", 5, "pipe() names its two ends, as in pipe([rd, wr])")]
    #[case("p = pipe([rd, wr])", 0, "pipe() names its ends in its argument")]
    #[case("f = open(\"\\xff\", O_RDONLY)", 9, "the path is not UTF-8")]
    #[case("open(\"x\", O_RDONLY)", 0, "open() creates a descriptor: name it")]
    #[case("sendfile(s, f, [0, 1], 5)", 15, "offset is one number in brackets")]
    #[case("fcntl(s, 0x)", 9, "`0x` needs hex digits")]
    #[case("listen(s, [1)", 12, "expected `,` or `]` in the list, found `)`")]
    #[case("x = socket([[[[[[[[[[1]]]]]]]]]])", 19, "the arguments nest too deeply")]
    fn new_forms_point_at_the_offending_token(#[case] text: &str, #[case] offset: usize, #[case] message: &str) {
        assert_error_at(text, offset, message);
    }

    /// Valid calls with a word or a sign replaced, dropped or repeated at
    /// random: none panics, and whatever parses is written back as the same call.
    #[test]
    fn whatever_parses_is_written_back_as_the_same_call() {
        const SEEDS: &[&str] = &[
            "s = socket(SOCK_STREAM|SOCK_NONBLOCK, IPPROTO_TCP)",
            "bind(s, target, 8080)",
            "sendto(s, NULL, 1, MSG_FASTOPEN, 8080) = EINPROGRESS",
            "send(s, zeros(10), MSG_ZEROCOPY)",
            "recv(s, NULL, 10, MSG_DONTWAIT) = -1",
            "sendmsg(s, [1000, 500], MSG_ZEROCOPY, AF_UNSPEC) = 1500",
            "recvmsg(s, [1000], MSG_ERRQUEUE, {msg_flags=MSG_ERRQUEUE, msg_control=[{cmsg_level=SOL_IP, cmsg_type=IP_RECVERR, cmsg_data={ee_errno=0, ee_origin=SO_EE_ORIGIN_ZEROCOPY, ee_type=0, ee_code=1, ee_info=2, ee_data=3}}]})",
            "setsockopt(s, SOL_SOCKET, SO_LINGER, [1, 0], 8)",
            "setsockopt(s, SO_LINGER, 1, 0)",
            "getsockopt(s, SOL_SOCKET, SO_SNDBUF, [20000], [4]) = 0",
            "fcntl(s, F_SETFL, O_RDWR|O_NONBLOCK)",
            "ioctl(s, SIOCINQ, [1000])",
            "epoll_ctl(e, EPOLL_CTL_MOD, s, {events=EPOLLOUT|EPOLLONESHOT, fd=s})",
            "epoll_wait(e, {events=0, ptr=0}, 1, 0) = 0",
            "pipe([rd, wr])",
            "f = open(\"/tmp/x\", O_RDONLY)",
            "splice(rd, s, 99, SPLICE_F_MOVE)",
            "sendfile(s, f, [0], 5) = 5",
        ];
        const WORDS: &[&str] = &[
            "s",
            "0",
            "1",
            "-1",
            "65536",
            "0x10",
            "NULL",
            "any",
            "target",
            "zeros(0)",
            "\"\\xff\"",
            "[]",
            "[1]",
            "{}",
            "AF_INET",
            "SOL_TCP",
            "TCP_NODELAY",
            "MSG_PEEK",
            "EPOLLET",
            "O_RDONLY",
            "EAGAIN",
            "(",
            ")",
            ",",
            "=",
            "|",
            "[",
            "]",
            "{",
            "}",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut parsed, mut refused) = (0, 0);
        for _ in 0..50_000 {
            let text = SEEDS[(next() % SEEDS.len() as u64) as usize];
            // Where a sign (and the word after it) starts.
            let signs: Vec<usize> = text
                .match_indices(|c: char| "(),=|[]{} ".contains(c))
                .map(|(i, _)| i)
                .collect();
            let at = signs[(next() % signs.len() as u64) as usize];
            let word = WORDS[(next() % WORDS.len() as u64) as usize];
            let end = text[at + 1..]
                .find(|c: char| "(),=|[]{} ".contains(c))
                .map_or(text.len(), |e| at + 1 + e);
            let mutated = match next() % 3 {
                0 => format!("{}{word}{}", &text[..=at], &text[end..]),
                1 => format!("{}{}", &text[..at], &text[end..]),
                _ => format!("{}{}", &text[..end], &text[at..]),
            };
            match parse_call(&mutated) {
                Ok(call) => {
                    parsed += 1;
                    if let Ok(written) = format_call(&call) {
                        assert_eq!(
                            parse_call(&written).as_ref(),
                            Ok(&call),
                            "{mutated:?} written {written:?}"
                        );
                    }
                }
                Err(e) => {
                    refused += 1;
                    assert!(e.offset <= mutated.len(), "{mutated:?}: {e:?}");
                }
            }
        }
        assert!(parsed > 1000 && refused > 1000, "{parsed} parsed, {refused} refused");
    }

    #[test]
    fn calls_the_notation_cannot_write_say_why() {
        let call = |func| Call {
            binds: None,
            func,
            outcome: Outcome::Success,
        };
        let write_with_flags = Func::Send {
            sock: "s".into(),
            call: SendCall::Write,
            data: Buffer::Null,
            len: 1,
            flags: 1,
        };
        assert_eq!(
            format_call(&call(write_with_flags)),
            Err(Unwritable("write() with flags 1".into()))
        );
        let far = Func::Connect {
            sock: "s".into(),
            to: Destination::Family(99),
        };
        assert_eq!(
            format_call(&call(far)),
            Err(Unwritable(
                "a destination of address family 99, which has no name".into()
            ))
        );
    }
}
