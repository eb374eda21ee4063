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

/// Flags for send() and recv().
const MSG_FLAGS: [(&str, i32); 10] = [
    ("MSG_NOSIGNAL", libc::MSG_NOSIGNAL),
    ("MSG_DONTWAIT", libc::MSG_DONTWAIT),
    ("MSG_PEEK", libc::MSG_PEEK),
    ("MSG_WAITALL", libc::MSG_WAITALL),
    ("MSG_OOB", libc::MSG_OOB),
    ("MSG_MORE", libc::MSG_MORE),
    ("MSG_EOR", libc::MSG_EOR),
    ("MSG_ZEROCOPY", libc::MSG_ZEROCOPY),
    ("MSG_FASTOPEN", libc::MSG_FASTOPEN),
    ("MSG_ERRQUEUE", libc::MSG_ERRQUEUE),
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

impl Func {
    /// The descriptor the call acts on first (none for calls that make one from nothing).
    pub fn sock(&self) -> Option<&str> {
        self.fds().first().copied()
    }

    /// Every descriptor the call uses, in argument order.
    pub fn fds(&self) -> Vec<&str> {
        match self {
            Func::Socket { .. } | Func::EpollCreate { .. } | Func::Pipe { .. } | Func::Open { .. } => vec![],
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
            Func::EpollCtl { epoll, sock, event, .. } => match &event.data {
                EpollData::Fd(fd) if fd != sock => vec![epoll, sock, fd],
                _ => vec![epoll, sock],
            },
            Func::EpollWait { epoll, event, .. } => match &event.data {
                EpollData::Fd(fd) => vec![epoll, fd],
                EpollData::Raw(_) => vec![epoll],
            },
            Func::Splice { from, to, .. } | Func::SendFile { from, to, .. } => vec![from, to],
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

/// A call-notation error at a byte offset of the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CallError {
    /// Byte offset in the text where the problem starts.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Arg {
    Ident(String),
    Int(i64),
    Str(Vec<u8>),
    Flags(Vec<String>),
}

impl Arg {
    fn describe(&self) -> &'static str {
        match self {
            Arg::Ident(_) => "a name",
            Arg::Int(_) => "a number",
            Arg::Str(_) => "a string",
            Arg::Flags(_) => "flags",
        }
    }
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

type CResult<T> = Result<T, CallError>;

impl<'a> Cursor<'a> {
    fn err<T>(&self, offset: usize, message: impl Into<String>) -> CResult<T> {
        Err(CallError {
            offset,
            message: message.into(),
        })
    }

    fn skip_ws(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.text[self.pos..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn found(&mut self) -> String {
        match self.peek() {
            None => "the end of the call".into(),
            Some(_) => {
                let token: String = self.text[self.pos..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && !"(),=".contains(*c))
                    .collect();
                if token.is_empty() {
                    format!("`{}`", self.text[self.pos..].chars().next().unwrap_or(' '))
                } else {
                    format!("`{token}`")
                }
            }
        }
    }

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

    fn int(&mut self) -> CResult<Option<(usize, i64)>> {
        self.skip_ws();
        let start = self.pos;
        let rest = &self.text[self.pos..];
        let neg = rest.starts_with('-');
        let digits = rest[usize::from(neg)..]
            .chars()
            .take_while(char::is_ascii_digit)
            .count();
        if digits == 0 {
            return Ok(None);
        }
        let len = usize::from(neg) + digits;
        self.pos += len;
        match rest[..len].parse::<i64>() {
            Ok(v) => Ok(Some((start, v))),
            Err(_) => self.err(start, format!("{} is out of range", &rest[..len])),
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

    fn arg(&mut self) -> CResult<(usize, Arg)> {
        self.skip_ws();
        let at = self.pos;
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
            return Ok((at, Arg::Ident(word)));
        }
        let found = self.found();
        self.err(
            at,
            format!("expected an argument (a name, a number or a \"string\"), found {found}"),
        )
    }
}

/// Parses one call step.
pub fn parse_call(text: &str) -> Result<Call, CallError> {
    let mut c = Cursor { text, pos: 0 };
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
    let mut args = Vec::new();
    if !c.eat(')') {
        loop {
            args.push(c.arg()?);
            if c.eat(')') {
                break;
            }
            if !c.eat(',') {
                let found = c.found();
                return c.err(c.pos, format!("expected `,` or `)` in the arguments, found {found}"));
            }
        }
    }
    let close_at = c.pos - 1;
    let func = build_func(&c, &fname, fname_at, &args, close_at)?;
    let outcome = if c.eat('=') { outcome(&mut c)? } else { Outcome::Success };
    c.skip_ws();
    if c.pos < text.len() {
        let found = c.found();
        return c.err(c.pos, format!("unexpected {found} after the call"));
    }
    match (&binds, func.creates_socket()) {
        (None, true) => {
            return c.err(
                fname_at,
                format!("{fname}() creates a socket: name it, as in `conn = {fname}(...)`"),
            );
        }
        (Some((at, name)), false) => {
            return c.err(
                *at,
                format!("{fname}() does not create a socket, so `{name} =` names nothing"),
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
            // packetdrill's `= -1 ECONNREFUSED`
            return match c.ident() {
                Some((eat, name)) => errno(c, eat, &name).map(Outcome::Errno),
                None => c.err(iat, "`-1` must be followed by an errno name, as in `-1 ECONNREFUSED`"),
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

const FUNCTIONS: [(&str, &str); 11] = [
    ("socket", "socket()"),
    ("bind", "bind(sock, port)"),
    ("listen", "listen(sock, backlog)"),
    ("accept", "accept(sock)"),
    ("connect", "connect(sock, port)"),
    ("send", "send(sock, \"data\" or length [, MSG_... flags])"),
    ("recv", "recv(sock, length [, MSG_... flags])"),
    ("shutdown", "shutdown(sock, SHUT_RD|SHUT_WR|SHUT_RDWR)"),
    ("close", "close(sock)"),
    ("setsockopt", "setsockopt(sock, OPTION, value [, value])"),
    ("getsockopt", "getsockopt(sock, OPTION)"),
];

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
    let arity = |min: usize, max: usize| -> CResult<()> {
        if args.len() < min || args.len() > max {
            return c.err(
                at,
                format!(
                    "{name}() takes {}: {usage}",
                    if min == max {
                        format!("{min} argument(s)")
                    } else {
                        format!("{min} to {max} arguments")
                    }
                ),
            );
        }
        Ok(())
    };
    let sock = |i: usize| -> CResult<String> {
        match &args[i] {
            (_, Arg::Ident(n)) => Ok(n.clone()),
            (a, other) => c.err(
                *a,
                format!(
                    "argument {} of {name}() is a socket name, not {}",
                    i + 1,
                    other.describe()
                ),
            ),
        }
    };
    let int = |i: usize, what: &str, min: i64, max: i64| -> CResult<i64> {
        match &args[i] {
            (a, Arg::Int(v)) if *v < min || *v > max => {
                c.err(*a, format!("{what} {v} is out of range ({min}..={max})"))
            }
            (_, Arg::Int(v)) => Ok(*v),
            (a, other) => c.err(*a, format!("{what} must be a number, not {}", other.describe())),
        }
    };
    let flags = |i: usize| -> CResult<i32> {
        let Some((a, arg)) = args.get(i) else { return Ok(0) };
        let names = match arg {
            Arg::Ident(n) => vec![n.clone()],
            Arg::Flags(f) => f.clone(),
            Arg::Int(0) => return Ok(0),
            other => {
                return c.err(
                    *a,
                    format!("flags must be MSG_* names joined by `|`, not {}", other.describe()),
                );
            }
        };
        names
            .iter()
            .try_fold(0, |acc, n| match MSG_FLAGS.iter().find(|(f, _)| f == n) {
                Some((_, v)) => Ok(acc | v),
                None => c.err(
                    *a,
                    format!("unknown flag `{n}`{}", suggest(n, MSG_FLAGS.iter().map(|(f, _)| *f))),
                ),
            })
    };
    let option = |i: usize| -> CResult<SockOpt> {
        match &args[i] {
            (a, Arg::Ident(n)) => SOCKOPTS.iter().copied().find(|o| o.name == n).map_or_else(
                || {
                    c.err(
                        *a,
                        format!(
                            "unknown socket option `{n}`{}",
                            suggest(n, SOCKOPTS.iter().map(|o| o.name))
                        ),
                    )
                },
                Ok,
            ),
            (a, other) => c.err(*a, format!("expected a socket option name, not {}", other.describe())),
        }
    };
    const PORT: i64 = u16::MAX as i64;
    Ok(match name {
        "socket" => {
            arity(0, 0)?;
            Func::Socket {
                ty: libc::SOCK_STREAM,
                protocol: 0,
            }
        }
        "bind" => {
            arity(2, 2)?;
            Func::Bind {
                sock: sock(0)?,
                port: int(1, "port", 0, PORT)? as u16,
                to: BindTo::Wildcard,
            }
        }
        "listen" => {
            arity(2, 2)?;
            Func::Listen {
                sock: sock(0)?,
                backlog: int(1, "backlog", i64::from(i32::MIN), i64::from(i32::MAX))? as i32,
            }
        }
        "accept" => {
            arity(1, 1)?;
            Func::Accept { sock: sock(0)? }
        }
        "connect" => {
            arity(2, 2)?;
            Func::Connect {
                sock: sock(0)?,
                to: Destination::Peer(int(1, "port", 1, PORT)? as u16),
            }
        }
        "send" => {
            arity(2, 3)?;
            let data = match &args[1] {
                (_, Arg::Str(s)) => s.clone(),
                (a, Arg::Int(n)) if (0..=16 << 20).contains(n) => crate::packet::pattern::filler(*n as usize),
                (a, Arg::Int(n)) => return c.err(*a, format!("length {n} is out of range (0..=16777216)")),
                (a, other) => {
                    return c.err(
                        *a,
                        format!("send() takes a \"string\" or a length, not {}", other.describe()),
                    );
                }
            };
            Func::Send {
                sock: sock(0)?,
                call: SendCall::Send,
                len: data.len(),
                data: Buffer::Bytes(data),
                flags: flags(2)?,
            }
        }
        "recv" => {
            arity(2, 3)?;
            Func::Recv {
                sock: sock(0)?,
                call: RecvCall::Recv,
                len: int(1, "length", 0, 16 << 20)? as usize,
                null: false,
                flags: flags(2)?,
            }
        }
        "shutdown" => {
            arity(2, 2)?;
            let how = match &args[1] {
                (_, Arg::Ident(h)) if h == "SHUT_RD" => How::Read,
                (_, Arg::Ident(h)) if h == "SHUT_WR" => How::Write,
                (_, Arg::Ident(h)) if h == "SHUT_RDWR" => How::Both,
                (a, _) => return c.err(*a, "shutdown() takes SHUT_RD, SHUT_WR or SHUT_RDWR"),
            };
            Func::Shutdown { sock: sock(0)?, how }
        }
        "close" => {
            arity(1, 1)?;
            Func::Close { sock: sock(0)? }
        }
        "setsockopt" => {
            arity(3, 4)?;
            let opt = option(1)?;
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
                .map(|i| int(i, "value", i64::from(i32::MIN), i64::from(i32::MAX)).map(|v| v as i32))
                .collect::<CResult<_>>()?;
            Func::SetSockOpt {
                sock: sock(0)?,
                opt,
                value: OptValue::Ints(values),
                len: None,
            }
        }
        "getsockopt" => {
            arity(2, 2)?;
            let opt = option(1)?;
            if opt.kind == OptKind::Linger {
                return c.err(
                    args[1].0,
                    "getsockopt(SO_LINGER) is not supported; check the behaviour on the wire",
                );
            }
            Func::GetSockOpt {
                sock: sock(0)?,
                opt,
                out: None,
            }
        }
        _ => unreachable!("every name in FUNCTIONS is handled"),
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
        let err = parse_call(text).unwrap_err();
        assert!(err.message.contains(message), "{text:?}: got {:?}", err.message);
        assert_eq!(err.offset, offset, "{text:?}: {}", err.message);
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
        ] {
            let _ = parse_call(text);
        }
    }
}
