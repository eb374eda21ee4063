//! The socket driver: real sockets in the target namespace, driven by the
//! calls of a case.
//!
//! socket() runs on the case's thread, which lives in the target namespace,
//! so the socket belongs to the kernel under test. So do the calls that
//! cannot block ([`Sockets::never_blocks`]): they follow the previous step
//! within microseconds, with no thread to schedule, even on a loaded machine
//! (a close() racing the kernel's 40 ms delayed-ACK timer must). Every other
//! call runs on a worker thread of its own, so that a blocking accept(),
//! connect() or recv() can wait while the case goes on injecting frames. A
//! worker blocks SIGPIPE and checks afterwards whether the call left one
//! pending: that is how SIGPIPE delivery is observed without the harness
//! ever dying of it. A call still blocked at its deadline is interrupted
//! with a signal whose handler does nothing (no SA_RESTART), so no case can
//! hang.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::socket::{self as sock, SockaddrStorage};

use crate::case::Call;
use crate::case::call::{Func, How, OptKind, Ret};
use crate::clock::Timestamp;
use crate::packet::Family;
use crate::probe::TcpState;

/// Why a call could not be started.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The socket is not open (never created, or closed).
    #[error("socket `{0}` is not open")]
    NotOpen(String),
    /// A worker thread could not be started.
    #[error("cannot start a thread for the call")]
    Thread(#[source] std::io::Error),
}

/// The result of one call.
#[derive(Debug)]
pub struct Done {
    /// What the call returned.
    pub ret: Ret,
    /// Whether the call raised SIGPIPE.
    pub sigpipe: bool,
    /// When the call was made.
    pub started: Timestamp,
    /// When it returned.
    pub finished: Timestamp,
    /// Whether it was still blocked at its deadline and had to be interrupted.
    pub stuck: bool,
    new_fd: Option<OwnedFd>,
}

/// What a worker thread reports: that the call is being made (and the
/// worker's thread id), then its result.
enum Report {
    Calling(Timestamp, libc::pid_t),
    Done(Done),
}

/// A call running on its worker thread.
pub struct Running {
    thread: JoinHandle<()>,
    rx: mpsc::Receiver<Report>,
    tid: libc::pid_t,
    returned: Arc<AtomicBool>,
    /// When the worker made the call (taken on the worker, right before the system call).
    pub started: Timestamp,
}

/// How long [`Running::settled`] watches a call before giving up on seeing it block.
const SETTLE_LIMIT: Duration = Duration::from_secs(1);

impl Running {
    /// Waits until the call has returned or is asleep inside its system call,
    /// and returns that time: what the call did before blocking (a
    /// connect()'s SYN) happened by then, however late its thread ran.
    pub fn settled(&self) -> Timestamp {
        let give_up = Timestamp::now().after(SETTLE_LIMIT);
        loop {
            if self.returned.load(Ordering::Acquire) || blocked_in_syscall(self.tid) || Timestamp::now() > give_up {
                return Timestamp::now();
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// Whether thread `tid` of this process sleeps inside a system call.
fn blocked_in_syscall(tid: libc::pid_t) -> bool {
    let task = format!("/proc/self/task/{tid}");
    let sleeping = std::fs::read_to_string(format!("{task}/stat")).is_ok_and(|stat| {
        // The state follows the command name, which is in parentheses.
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| matches!(rest.trim_start().chars().next(), Some('S' | 'D')))
    });
    // `syscall` shows the number of the system call a stopped task is in, or "running".
    sleeping
        && std::fs::read_to_string(format!("{task}/syscall")).is_ok_and(|s| {
            s.split_whitespace()
                .next()
                .is_some_and(|n| n.parse::<i64>().is_ok_and(|n| n >= 0))
        })
}

/// The sockets of one case, by name.
pub struct Sockets {
    family: Family,
    open: HashMap<String, Arc<OwnedFd>>,
    cookies: HashMap<String, u64>,
}

fn wake_signal() -> libc::c_int {
    libc::SIGRTMIN() + 4
}

extern "C" fn ignore(_: libc::c_int) {}

/// Installs the do-nothing handler of the signal that interrupts stuck calls.
fn install_wake_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: a zeroed sigaction is valid; the handler is async-signal-safe
        // (it does nothing) and the struct outlives the call.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = ignore as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = 0;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(wake_signal(), &action, std::ptr::null_mut());
        }
    });
}

fn cookie(fd: RawFd) -> u64 {
    let mut value: u64 = 0;
    let mut len = size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the live u64.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_COOKIE,
            (&mut value as *mut u64).cast(),
            &mut len,
        )
    };
    if rc < 0 { 0 } else { value }
}

fn setsockopt_ints(fd: RawFd, level: i32, name: i32, values: &[i32]) -> Result<(), Errno> {
    // SAFETY: the pointer and length describe the live slice of c_ints.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            values.as_ptr().cast(),
            size_of_val(values) as libc::socklen_t,
        )
    };
    Errno::result(rc).map(|_| ())
}

fn getsockopt_int(fd: RawFd, level: i32, name: i32) -> Result<i32, Errno> {
    let mut value: i32 = 0;
    let mut len = size_of::<i32>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the live i32.
    let rc = unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut i32).cast(), &mut len) };
    Errno::result(rc).map(|_| value)
}

/// Whether close() on `fd` may block: SO_LINGER on with a timeout.
fn lingers(fd: RawFd) -> bool {
    let mut value = libc::linger {
        l_onoff: 0,
        l_linger: 0,
    };
    let mut len = size_of::<libc::linger>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the live struct.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&mut value as *mut libc::linger).cast(),
            &mut len,
        )
    };
    rc < 0 || (value.l_onoff != 0 && value.l_linger > 0)
}

/// The state of an open socket from TCP_INFO (`tcpi_state` is its first byte).
fn tcp_info_state(fd: RawFd) -> Option<TcpState> {
    let mut info = [0u8; 256];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the live buffer.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc < 0 || len == 0 {
        None
    } else {
        TcpState::from_kernel(info[0])
    }
}

impl Sockets {
    /// An empty table for a case on `family`.
    pub fn new(family: Family) -> Sockets {
        install_wake_handler();
        Sockets {
            family,
            open: HashMap::new(),
            cookies: HashMap::new(),
        }
    }

    /// socket(): creates a TCP socket named `name` in the calling thread's namespace.
    pub fn socket(&mut self, name: &str) -> Done {
        let started = Timestamp::now();
        let domain = match self.family {
            Family::Ipv4 => sock::AddressFamily::Inet,
            Family::Ipv6 => sock::AddressFamily::Inet6,
        };
        let ret = match sock::socket(domain, sock::SockType::Stream, sock::SockFlag::SOCK_CLOEXEC, None) {
            Ok(fd) => {
                self.cookies.insert(name.to_string(), cookie(fd.as_raw_fd()));
                self.open.insert(name.to_string(), Arc::new(fd));
                Ret::Value(0)
            }
            Err(e) => Ret::Failed(e),
        };
        Done {
            ret,
            sigpipe: false,
            started,
            finished: Timestamp::now(),
            stuck: false,
            new_fd: None,
        }
    }

    /// Whether a call returns at once whatever the connection does, and
    /// raises no SIGPIPE: bind, listen, setsockopt, getsockopt, shutdown,
    /// close (unless SO_LINGER holds it), recv with MSG_DONTWAIT.
    pub fn never_blocks(&self, func: &Func) -> bool {
        match func {
            Func::Bind { .. }
            | Func::Listen { .. }
            | Func::SetSockOpt { .. }
            | Func::GetSockOpt { .. }
            | Func::Shutdown { .. } => true,
            Func::Close { sock } => self.open.get(sock).is_some_and(|fd| !lingers(fd.as_raw_fd())),
            Func::Recv { flags, .. } => flags & libc::MSG_DONTWAIT != 0,
            Func::Socket | Func::Accept { .. } | Func::Connect { .. } | Func::Send { .. } => false,
        }
    }

    /// Makes a call that [never blocks](Sockets::never_blocks) on the calling
    /// thread, which must be in the target namespace.
    pub fn call_now(&mut self, call: &Call) -> Result<Done, DriverError> {
        let fd = self.take_fd(&call.func)?;
        let started = Timestamp::now();
        let (ret, _) = perform(&call.func, fd, self.family);
        Ok(Done {
            ret,
            sigpipe: false,
            started,
            finished: Timestamp::now(),
            stuck: false,
            new_fd: None,
        })
    }

    /// The descriptor a call acts on; close() takes it out of the table.
    fn take_fd(&mut self, func: &Func) -> Result<Arc<OwnedFd>, DriverError> {
        let name = func.sock().unwrap_or_default();
        let fd = if matches!(func, Func::Close { .. }) {
            self.open.remove(name)
        } else {
            self.open.get(name).cloned()
        };
        fd.ok_or_else(|| DriverError::NotOpen(name.to_string()))
    }

    /// Starts any call but socket() on a worker thread.
    pub fn start(&mut self, call: &Call) -> Result<Running, DriverError> {
        let fd = self.take_fd(&call.func)?;
        let (tx, rx) = mpsc::channel();
        let func = call.func.clone();
        let family = self.family;
        let returned = Arc::new(AtomicBool::new(false));
        let worker_returned = returned.clone();
        let thread = std::thread::Builder::new()
            .name(format!("call {}", func_name(&func)))
            .spawn(move || {
                let mut pipe = SigSet::empty();
                pipe.add(Signal::SIGPIPE);
                let _ = pipe.thread_block();
                let started = Timestamp::now();
                let _ = tx.send(Report::Calling(started, nix::unistd::gettid().as_raw()));
                let (ret, new_fd) = perform(&func, fd, family);
                let finished = Timestamp::now();
                worker_returned.store(true, Ordering::Release);
                let sigpipe = take_pending(Signal::SIGPIPE);
                let _ = tx.send(Report::Done(Done {
                    ret,
                    sigpipe,
                    started,
                    finished,
                    stuck: false,
                    new_fd,
                }));
            })
            .map_err(DriverError::Thread)?;
        // The call's effects (a SYN, a FIN) are timed from when the worker
        // makes it, not from when the thread was asked for.
        let (started, tid) = match rx.recv() {
            Ok(Report::Calling(at, tid)) => (at, tid),
            _ => (Timestamp::now(), 0),
        };
        Ok(Running {
            thread,
            rx,
            tid,
            returned,
            started,
        })
    }

    /// Waits for a running call until `deadline`, interrupting it if it is still
    /// blocked then, and records what it created or closed.
    pub fn finish(&mut self, call: &Call, running: Running, deadline: Timestamp) -> Done {
        let mut stuck = false;
        let mut done = match running.rx.recv_timeout(deadline.remaining()) {
            Ok(Report::Done(done)) => done,
            Ok(Report::Calling(..)) | Err(_) => {
                stuck = true;
                loop {
                    // SAFETY: the thread has not been joined, so its pthread_t is valid.
                    unsafe { libc::pthread_kill(running.thread.as_pthread_t(), wake_signal()) };
                    if let Ok(Report::Done(done)) = running.rx.recv_timeout(Duration::from_millis(20)) {
                        break done;
                    }
                }
            }
        };
        let _ = running.thread.join();
        done.stuck = stuck;
        if let (Some(name), Some(fd)) = (&call.binds, done.new_fd.take()) {
            self.cookies.insert(name.clone(), cookie(fd.as_raw_fd()));
            self.open.insert(name.clone(), Arc::new(fd));
        }
        done
    }

    /// The cookie of a socket the case created, open or closed.
    pub fn cookie(&self, name: &str) -> Option<u64> {
        self.cookies.get(name).copied()
    }

    /// The state of a socket that is still open, from TCP_INFO.
    pub fn open_state(&self, name: &str) -> Option<TcpState> {
        self.open.get(name).and_then(|fd| tcp_info_state(fd.as_raw_fd()))
    }
}

fn func_name(func: &Func) -> &'static str {
    match func {
        Func::Socket => "socket",
        Func::Bind { .. } => "bind",
        Func::Listen { .. } => "listen",
        Func::Accept { .. } => "accept",
        Func::Connect { .. } => "connect",
        Func::Send { .. } => "send",
        Func::Recv { .. } => "recv",
        Func::Shutdown { .. } => "shutdown",
        Func::Close { .. } => "close",
        Func::SetSockOpt { .. } => "setsockopt",
        Func::GetSockOpt { .. } => "getsockopt",
    }
}

/// Whether `signal` is pending for this thread; consumes it if so.
fn take_pending(signal: Signal) -> bool {
    // SAFETY: sigpending fills the zeroed sigset_t it is given, and
    // sigismember only reads it.
    let pending = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut set) == 0 && libc::sigismember(&set, signal as libc::c_int) == 1
    };
    if !pending {
        return false;
    }
    let mut only = SigSet::empty();
    only.add(signal);
    only.wait().is_ok()
}

fn value(r: Result<usize, Errno>) -> Ret {
    match r {
        Ok(n) => Ret::Value(n as i64),
        Err(e) => Ret::Failed(e),
    }
}

fn unit(r: Result<(), Errno>) -> Ret {
    match r {
        Ok(()) => Ret::Value(0),
        Err(e) => Ret::Failed(e),
    }
}

/// Makes the call; runs on the worker thread.
fn perform(func: &Func, fd: Arc<OwnedFd>, family: Family) -> (Ret, Option<OwnedFd>) {
    let raw = fd.as_raw_fd();
    let wildcard = match family {
        Family::Ipv4 => SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0),
        Family::Ipv6 => SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), 0),
    };
    let ret = match func {
        Func::Socket => unreachable!("socket() runs on the case's thread"),
        Func::Bind { port, .. } => {
            let addr = SockaddrStorage::from(SocketAddr::new(wildcard.ip(), *port));
            unit(sock::bind(raw, &addr))
        }
        Func::Listen { backlog, .. } => {
            // SAFETY: listen(2) on a descriptor this call holds open.
            unit(Errno::result(unsafe { libc::listen(raw, *backlog) }).map(|_| ()))
        }
        Func::Accept { .. } => {
            return match sock::accept4(raw, sock::SockFlag::SOCK_CLOEXEC) {
                // SAFETY: accept4 returned a new descriptor that nothing else owns.
                Ok(new) => (Ret::Value(0), Some(unsafe { OwnedFd::from_raw_fd(new) })),
                Err(e) => (Ret::Failed(e), None),
            };
        }
        Func::Connect { port, .. } => {
            let addr = SockaddrStorage::from(SocketAddr::new(family.peer_addr(), *port));
            unit(sock::connect(raw, &addr))
        }
        Func::Send { data, flags, .. } => {
            // SAFETY: send(2) reads `data.len()` bytes of the live buffer.
            let n = unsafe { libc::send(raw, data.as_ptr().cast(), data.len(), *flags) };
            value(Errno::result(n).map(|n| n as usize))
        }
        Func::Recv { len, flags, .. } => {
            let mut buf = vec![0u8; *len];
            // SAFETY: recv(2) writes at most `len` bytes into the live buffer.
            let n = unsafe { libc::recv(raw, buf.as_mut_ptr().cast(), buf.len(), *flags) };
            match Errno::result(n) {
                Ok(0) => Ret::Value(0),
                Ok(n) => {
                    buf.truncate(n as usize);
                    Ret::Data(buf)
                }
                Err(e) => Ret::Failed(e),
            }
        }
        Func::Shutdown { how, .. } => {
            let how = match how {
                How::Read => sock::Shutdown::Read,
                How::Write => sock::Shutdown::Write,
                How::Both => sock::Shutdown::Both,
            };
            unit(sock::shutdown(raw, how))
        }
        Func::Close { .. } => match Arc::try_unwrap(fd) {
            // SAFETY: close(2) on a descriptor taken out of its owner.
            Ok(owned) => unit(Errno::result(unsafe { libc::close(owned.into_raw_fd()) }).map(|_| ())),
            // Another call still uses it: as with close(2) in a threaded program,
            // the descriptor goes away now and the socket when that call returns.
            Err(shared) => {
                drop(shared);
                Ret::Value(0)
            }
        },
        Func::SetSockOpt { opt, values, .. } => unit(setsockopt_ints(raw, opt.level, opt.optname, values)),
        Func::GetSockOpt { opt, .. } => match (opt.kind, getsockopt_int(raw, opt.level, opt.optname)) {
            (OptKind::Int | OptKind::Errno, Ok(v)) => Ret::Value(i64::from(v)),
            (_, Err(e)) => Ret::Failed(e),
            (OptKind::Linger, Ok(_)) => unreachable!("the parser refuses getsockopt(SO_LINGER)"),
        },
    };
    (ret, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicI32;

    use crate::case::call::parse_call;

    fn call(text: &str) -> Call {
        parse_call(text).expect("a valid call")
    }

    #[test]
    fn only_calls_that_cannot_block_skip_the_worker_thread() {
        let mut sockets = Sockets::new(Family::Ipv4);
        assert_eq!(sockets.socket("s").ret, Ret::Value(0));
        for text in [
            "bind(s, 8080)",
            "listen(s, 1)",
            "setsockopt(s, TCP_NODELAY, 1)",
            "getsockopt(s, SO_ERROR)",
            "shutdown(s, SHUT_WR)",
            "close(s)",
            "recv(s, 10, MSG_DONTWAIT)",
        ] {
            assert!(sockets.never_blocks(&call(text).func), "{text}");
        }
        for text in [
            "c = accept(s)",
            "connect(s, 80)",
            "recv(s, 10)",
            "send(s, 1, MSG_DONTWAIT)",
            "close(t)",
        ] {
            assert!(!sockets.never_blocks(&call(text).func), "{text}");
        }
    }

    #[test]
    fn close_with_a_linger_timeout_may_block() {
        let mut sockets = Sockets::new(Family::Ipv4);
        sockets.socket("s");
        let done = sockets.call_now(&call("setsockopt(s, SO_LINGER, 1, 5)")).unwrap();
        assert_eq!(done.ret, Ret::Value(0));
        assert!(!sockets.never_blocks(&call("close(s)").func));
        sockets.call_now(&call("setsockopt(s, SO_LINGER, 1, 0)")).unwrap();
        assert!(sockets.never_blocks(&call("close(s)").func));
        let done = sockets.call_now(&call("close(s)")).unwrap();
        assert_eq!(done.ret, Ret::Value(0));
        assert!(done.started <= done.finished);
        assert!(matches!(
            sockets.call_now(&call("close(s)")),
            Err(DriverError::NotOpen(name)) if name == "s"
        ));
    }

    #[test]
    fn a_thread_asleep_in_a_system_call_is_seen_blocked() {
        let (reader, writer) = nix::unistd::pipe().unwrap();
        let tid = Arc::new(AtomicI32::new(0));
        let t = tid.clone();
        let sleeper = std::thread::spawn(move || {
            t.store(nix::unistd::gettid().as_raw(), Ordering::SeqCst);
            let mut byte = [0u8; 1];
            nix::unistd::read(&reader, &mut byte).unwrap()
        });
        let deadline = Timestamp::now().after(Duration::from_secs(5));
        while tid.load(Ordering::SeqCst) == 0 || !blocked_in_syscall(tid.load(Ordering::SeqCst)) {
            assert!(Timestamp::now() < deadline, "never seen blocked in read()");
            std::thread::sleep(Duration::from_millis(1));
        }
        nix::unistd::write(&writer, b"x").unwrap();
        assert_eq!(sleeper.join().unwrap(), 1);
    }

    #[test]
    fn a_running_thread_is_not_blocked() {
        let stop = Arc::new(AtomicBool::new(false));
        let tid = Arc::new(AtomicI32::new(0));
        let (s, t) = (stop.clone(), tid.clone());
        let spinner = std::thread::spawn(move || {
            t.store(nix::unistd::gettid().as_raw(), Ordering::SeqCst);
            while !s.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        while tid.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        for _ in 0..20 {
            assert!(!blocked_in_syscall(tid.load(Ordering::SeqCst)));
        }
        stop.store(true, Ordering::Relaxed);
        spinner.join().unwrap();
    }
}
