//! The socket driver: real sockets (and the other descriptors calls make:
//! epoll instances, pipes, files) in the target namespace, driven by the
//! calls of a case and kept by name.
//!
//! Calls run on the case's thread, which lives in the target namespace, so
//! the sockets belong to the kernel under test ([`Sockets::call_now`]): a
//! call follows the previous step within microseconds, with no thread to
//! schedule, even on a loaded machine (a close() racing the kernel's 40 ms
//! delayed-ACK timer must). A call that may block (all but those
//! [`Sockets::never_blocks`] names) is watched: still blocked at its
//! deadline, it is interrupted with a signal whose handler does nothing (no
//! SA_RESTART), so no case can hang. Only a background call runs on a
//! worker thread of its own ([`Sockets::start`]), so that a blocking
//! accept(), connect() or recv() can wait while the case goes on injecting
//! frames; [`Sockets::finish`] collects it, interrupting it the same way
//! past its deadline. Both threads block SIGPIPE and check afterwards
//! whether the call left one pending: that is how SIGPIPE delivery is
//! observed without the harness ever dying of it. [`calls`] makes the
//! system calls themselves.

pub mod calls;

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once, OnceLock, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};

use self::calls::{Context, Performed, perform};
use crate::case::Call;
use crate::case::call::{Func, Ret};
use crate::clock::Timestamp;
use crate::probe::TcpState;

/// Why a call could not be started.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The descriptor is not open (never created, or closed).
    #[error("`{0}` is not open")]
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
    /// Out-parameters that differ from what the case expects, one line each.
    pub out: Vec<String>,
    /// How many lines of `out` are times alone (see [`Performed::times_off`]).
    pub times_off: usize,
    new_fds: Vec<OwnedFd>,
}

impl Done {
    fn new(performed: Performed, sigpipe: bool, started: Timestamp, finished: Timestamp) -> Done {
        Done {
            ret: performed.ret,
            sigpipe,
            started,
            finished,
            stuck: false,
            out: performed.out,
            times_off: performed.times_off,
            new_fds: performed.new_fds,
        }
    }
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

/// The descriptors of one case, by name.
pub struct Sockets {
    context: Context,
    open: HashMap<String, Arc<OwnedFd>>,
    cookies: HashMap<String, u64>,
    congestion: Option<String>,
}

/// Interrupts calls still blocked at their deadline: one thread for the
/// process, woken for the nearest deadline, which signals the call's thread
/// (and again every few milliseconds, until the call is disarmed).
struct Watchdog {
    calls: Mutex<Vec<Watched>>,
    changed: Condvar,
}

/// A call being watched.
struct Watched {
    id: u64,
    thread: libc::pthread_t,
    deadline: Timestamp,
    fired: bool,
}

/// A watched call; [`Armed::disarm`] says whether it had to be interrupted.
struct Armed {
    id: u64,
}

/// How often a call past its deadline is signalled again.
const REKICK: Duration = Duration::from_millis(20);

fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<&'static Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| {
        let dog: &'static Watchdog = Box::leak(Box::new(Watchdog {
            calls: Mutex::new(Vec::new()),
            changed: Condvar::new(),
        }));
        let _ = std::thread::Builder::new().name("call watchdog".into()).spawn(move || {
            // It serves every case: not only the one whose thread started
            // it, and on time, whatever phase that thread was in.
            crate::cpu::unplace();
            crate::engine::enter(crate::engine::Phase::Timeline);
            dog.watch()
        });
        dog
    })
}

impl Watchdog {
    fn arm(&self, deadline: Timestamp) -> Armed {
        static IDS: AtomicU64 = AtomicU64::new(0);
        let id = IDS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: pthread_self has no preconditions.
        let thread = unsafe { libc::pthread_self() };
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.push(Watched {
            id,
            thread,
            deadline,
            fired: false,
        });
        self.changed.notify_one();
        Armed { id }
    }

    fn watch(&self) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Timestamp::now();
            for c in calls.iter_mut().filter(|c| c.deadline <= now) {
                c.fired = true;
                // SAFETY: the thread is alive: it removes its entry before it
                // can exit, under this lock.
                unsafe { libc::pthread_kill(c.thread, wake_signal()) };
            }
            let wait = calls
                .iter()
                .map(|c| if c.fired { REKICK } else { c.deadline.remaining() })
                .min();
            calls = match wait {
                Some(w) => self
                    .changed
                    .wait_timeout(calls, w)
                    .map_or_else(|e| e.into_inner().0, |r| r.0),
                None => self.changed.wait(calls).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}

impl Armed {
    fn disarm(self) -> bool {
        let dog = watchdog();
        let mut calls = dog.calls.lock().unwrap_or_else(|e| e.into_inner());
        match calls.iter().position(|c| c.id == self.id) {
            Some(i) => calls.swap_remove(i).fired,
            None => false,
        }
    }
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

/// Whether `fd` is in non-blocking mode.
fn nonblocking(fd: RawFd) -> bool {
    // SAFETY: fcntl(2) F_GETFL on a descriptor the table holds open.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    flags >= 0 && flags & libc::O_NONBLOCK != 0
}

impl Sockets {
    /// An empty table for a case. SIGPIPE is blocked on the calling thread
    /// (the case's), for the calls it makes itself.
    pub fn new(context: Context) -> Sockets {
        install_wake_handler();
        let mut pipe = SigSet::empty();
        pipe.add(Signal::SIGPIPE);
        let _ = pipe.thread_block();
        Sockets {
            context,
            open: HashMap::new(),
            cookies: HashMap::new(),
            congestion: None,
        }
    }

    /// What calls know of the case; the engine sets the timeline's start here.
    pub fn context_mut(&mut self) -> &mut Context {
        &mut self.context
    }

    /// Makes every socket created from now on select `name` with TCP_CONGESTION.
    pub fn select_congestion(&mut self, name: &str) {
        self.congestion = Some(name.to_string());
    }

    /// Whether a call returns at once whatever the connection does: calls
    /// that only set or read state, close (unless SO_LINGER holds it),
    /// epoll_wait without a timeout, and I/O with MSG_DONTWAIT or on a
    /// non-blocking descriptor.
    pub fn never_blocks(&self, func: &Func) -> bool {
        let fd_nonblocking = || {
            func.sock()
                .and_then(|s| self.open.get(s))
                .is_some_and(|fd| nonblocking(fd.as_raw_fd()))
        };
        match func {
            Func::Socket { .. }
            | Func::Bind { .. }
            | Func::Listen { .. }
            | Func::SetSockOpt { .. }
            | Func::GetSockOpt { .. }
            | Func::Shutdown { .. }
            | Func::Fcntl { .. }
            | Func::Ioctl { .. }
            | Func::EpollCreate { .. }
            | Func::EpollCtl { .. }
            | Func::Pipe { .. }
            | Func::Open { .. } => true,
            Func::EpollWait { timeout_ms, .. } => *timeout_ms == 0,
            Func::Close { sock } => self.open.get(sock).is_some_and(|fd| !lingers(fd.as_raw_fd())),
            Func::Recv { flags, .. }
            | Func::RecvMsg { flags, .. }
            | Func::Send { flags, .. }
            | Func::SendMsg { flags, .. } => flags & libc::MSG_DONTWAIT != 0 || fd_nonblocking(),
            Func::Accept { .. } | Func::Connect { .. } | Func::Splice { .. } | Func::SendFile { .. } => {
                fd_nonblocking()
            }
        }
    }

    /// Makes a call on the calling thread, which must be in the target
    /// namespace, and waits for it: a call that may block and is still
    /// blocked at `deadline` is interrupted (by the watchdog) and marked stuck.
    pub fn call_now(&mut self, call: &Call, deadline: Timestamp) -> Result<Done, DriverError> {
        let armed = (!self.never_blocks(&call.func)).then(|| watchdog().arm(deadline));
        let fds = self.take_fds(&call.func)?;
        let started = Timestamp::now();
        let performed = perform(&call.func, fds, &self.context);
        let finished = Timestamp::now();
        let stuck = armed.is_some_and(|a| a.disarm());
        let sigpipe = take_pending(Signal::SIGPIPE);
        let mut done = Done::new(performed, sigpipe, started, finished);
        done.stuck = stuck;
        self.keep(call, &mut done);
        Ok(done)
    }

    /// The descriptors a call uses; close() takes its one out of the table.
    fn take_fds(&mut self, func: &Func) -> Result<Vec<Arc<OwnedFd>>, DriverError> {
        let names = func.fds();
        let mut fds = Vec::with_capacity(names.len());
        for name in names {
            let fd = if matches!(func, Func::Close { .. }) {
                self.open.remove(name)
            } else {
                self.open.get(name).cloned()
            };
            fds.push(fd.ok_or_else(|| DriverError::NotOpen(name.to_string()))?);
        }
        Ok(fds)
    }

    /// Files the descriptors a call made under the names the case gives them.
    fn keep(&mut self, call: &Call, done: &mut Done) {
        let names: Vec<&str> = match &call.func {
            Func::Pipe { read, write } => vec![read, write],
            _ => call.binds.as_deref().into_iter().collect(),
        };
        for (name, fd) in names.into_iter().zip(done.new_fds.drain(..)) {
            if matches!(call.func, Func::Socket { .. })
                && let Some(cc) = &self.congestion
            {
                // SAFETY: setsockopt reads the live name's bytes.
                let rc = unsafe {
                    libc::setsockopt(
                        fd.as_raw_fd(),
                        libc::IPPROTO_TCP,
                        libc::TCP_CONGESTION,
                        cc.as_ptr().cast(),
                        cc.len() as libc::socklen_t,
                    )
                };
                if rc < 0 {
                    done.out
                        .push(format!("TCP_CONGESTION {cc}: {}", std::io::Error::last_os_error()));
                }
            }
            self.cookies.insert(name.to_string(), cookie(fd.as_raw_fd()));
            self.open.insert(name.to_string(), Arc::new(fd));
        }
    }

    /// Starts a call on a worker thread.
    pub fn start(&mut self, call: &Call) -> Result<Running, DriverError> {
        let fds = self.take_fds(&call.func)?;
        let (tx, rx) = mpsc::channel();
        let func = call.func.clone();
        let context = self.context.clone();
        let returned = Arc::new(AtomicBool::new(false));
        let worker_returned = returned.clone();
        let thread = std::thread::Builder::new()
            .name(format!("call {}", func.name()))
            .spawn(move || {
                let mut pipe = SigSet::empty();
                pipe.add(Signal::SIGPIPE);
                let _ = pipe.thread_block();
                let started = Timestamp::now();
                let _ = tx.send(Report::Calling(started, nix::unistd::gettid().as_raw()));
                let performed = perform(&func, fds, &context);
                let finished = Timestamp::now();
                worker_returned.store(true, Ordering::Release);
                let sigpipe = take_pending(Signal::SIGPIPE);
                let _ = tx.send(Report::Done(Done::new(performed, sigpipe, started, finished)));
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
        self.keep(call, &mut done);
        done
    }

    /// The live descriptor of a name, while it is open.
    pub fn raw_fd(&self, name: &str) -> Option<RawFd> {
        self.open.get(name).map(|fd| fd.as_raw_fd())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicI32;

    use crate::case::call::parse_call;

    fn call(text: &str) -> Call {
        parse_call(text).expect("a valid call")
    }

    fn soon() -> Timestamp {
        Timestamp::now().after(Duration::from_secs(2))
    }

    fn sockets() -> Sockets {
        let family = crate::packet::Family::Ipv4;
        Sockets::new(Context {
            family,
            addresses: crate::case::Addresses::standard(family),
            t0: Timestamp::now(),
            tolerance: Duration::from_millis(10),
            tmp: None,
            cwd: std::path::PathBuf::from("."),
        })
    }

    #[test]
    fn only_calls_that_cannot_block_skip_the_worker_thread() {
        let mut sockets = sockets();
        assert_eq!(
            sockets.call_now(&call("s = socket()"), soon()).unwrap().ret,
            Ret::Value(0)
        );
        for text in [
            "bind(s, 8080)",
            "listen(s, 1)",
            "setsockopt(s, TCP_NODELAY, 1)",
            "getsockopt(s, SO_ERROR)",
            "shutdown(s, SHUT_WR)",
            "close(s)",
            "recv(s, 10, MSG_DONTWAIT)",
            "send(s, 1, MSG_DONTWAIT)",
        ] {
            assert!(sockets.never_blocks(&call(text).func), "{text}");
        }
        for text in [
            "c = accept(s)",
            "connect(s, 80)",
            "recv(s, 10)",
            "send(s, 1)",
            "close(t)",
        ] {
            assert!(!sockets.never_blocks(&call(text).func), "{text}");
        }
    }

    #[test]
    fn close_with_a_linger_timeout_may_block() {
        let mut sockets = sockets();
        sockets.call_now(&call("s = socket()"), soon()).unwrap();
        let done = sockets
            .call_now(&call("setsockopt(s, SO_LINGER, 1, 5)"), soon())
            .unwrap();
        assert_eq!(done.ret, Ret::Value(0));
        assert!(!sockets.never_blocks(&call("close(s)").func));
        sockets
            .call_now(&call("setsockopt(s, SO_LINGER, 1, 0)"), soon())
            .unwrap();
        assert!(sockets.never_blocks(&call("close(s)").func));
        let done = sockets.call_now(&call("close(s)"), soon()).unwrap();
        assert_eq!(done.ret, Ret::Value(0));
        assert!(done.started <= done.finished);
        assert!(matches!(
            sockets.call_now(&call("close(s)"), soon()),
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
