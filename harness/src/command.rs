//! Commands a case runs in its lab: a packetdrill script's backtick shell
//! commands and the Python program that checks its `%{ }%` blocks.
//!
//! A command is forked from the calling thread, which lives in the lab's
//! target network namespace: the child copies that thread's namespaces, so
//! links, routes, qdiscs and `/proc/sys/net` are the lab's. Before exec the
//! child enters a mount namespace of its own where the whole tree is
//! read-only (EROFS) but for two places: a private `/tmp` (the
//! [`Sandbox`]'s: a tmpfs mounted nowhere and held by a descriptor, so that
//! it is gone with the process however that ends; on kernels that cannot
//! bind-mount from such a mount, a directory removed with the sandbox) and
//! `/proc/sys/net` (from a child
//! network namespace only the lab's namespaced knobs are there). `/dev`
//! holds only `null`, `zero`, `full`, `random`, `urandom` and `tty` (device
//! nodes stay writable on a read-only mount), so no disk or kernel log can
//! be written, and `/run` is empty, so host daemons' sockets are out of
//! reach. The child then keeps only the capabilities a script needs to
//! configure the lab (`CAP_NET_ADMIN`, `CAP_NET_RAW`,
//! `CAP_NET_BIND_SERVICE`, and file access where it may write at all) and
//! sets no_new_privs: without `CAP_SYS_ADMIN` it can neither undo the
//! mounts nor enter another namespace, and without `CAP_SYS_PTRACE` it
//! cannot reach this process's view of the file system through
//! `/proc/$PPID/root`. Each command runs in a session of its own and dies
//! with the thread that started it; when it ends, or times out, its whole
//! process group is killed, so what a command leaves running ends with it.
//!
//! The same steps work when tcpconform runs in a user namespace of its own
//! ([`crate::lab::init`]): that namespace owns the command's mount
//! namespace, and every step either adds a restriction or mounts what the
//! process can already see; the mounts inherited from the host are locked
//! there, which only adds to the isolation. Nothing is skipped. They work
//! too for a non-root tcpconform with file capabilities: the kept
//! capabilities it has become ambient ones.
//!
//! What is not closed: there is no PID namespace, since packetdrill's
//! scripts need the shell's parent to be this process (`$PPID` names
//! `/tmp/sysctl_restore_$PACKETDRILL_PID.sh`). So a command can signal
//! processes of its own user, reach through `/proc/PID/root` a process of
//! its user that has no more capabilities than it has, and outlive its
//! command by starting a session of its own; and it can connect to a host
//! daemon's socket outside `/run`.

use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, RwLock};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::clock::Timestamp;

/// The `PATH` commands get.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How much of each of a command's output streams is kept (the end of it).
pub const OUTPUT_LIMIT: usize = 64 * 1024;
/// How long output is still read after a command has ended.
const DRAIN_GRACE: Duration = Duration::from_millis(500);
/// The devices a command's `/dev` holds, where the host has them.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];
/// Links in a command's `/dev`.
const DEV_LINKS: [(&str, &str); 4] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];
/// Capabilities a command keeps: configuring the lab's network, and file
/// access where it may write at all (its `/tmp` and `/proc/sys/net`).
const KEPT_CAPS: [u32; 7] = [
    0,  // CAP_CHOWN
    1,  // CAP_DAC_OVERRIDE
    2,  // CAP_DAC_READ_SEARCH
    3,  // CAP_FOWNER
    10, // CAP_NET_BIND_SERVICE
    12, // CAP_NET_ADMIN
    13, // CAP_NET_RAW
];
/// The descriptor a Python program is read from.
const PROGRAM_FD: RawFd = 3;

/// Forks in flight. A fork copies every descriptor of the process, those of
/// the cases running alongside included, and the child holds them until it
/// execs (they are close-on-exec), milliseconds later once the sandbox is
/// set up: a socket closed meanwhile lives on in the child, a listener
/// keeping its port (bind() fails EADDRINUSE), a connection sending its FIN
/// late. A spawn holds this lock shared until its child has exec'd (spawn()
/// returns then); [`without_forks`] holds it alone.
static FORKS: RwLock<()> = RwLock::new(());

/// Runs `f` (a close(2)) when no fork is in flight and none starts meanwhile.
pub fn without_forks<T>(f: impl FnOnce() -> T) -> T {
    let _alone = FORKS.write().unwrap_or_else(|e| e.into_inner());
    f()
}

/// A step of a command's start, in the child between fork and exec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Step {
    /// setsid().
    Session = 1,
    /// PR_SET_PDEATHSIG.
    ParentDeath,
    /// The starting thread's process was already gone.
    Orphaned,
    /// fchdir() to the working directory.
    Cwd,
    /// unshare(CLONE_NEWNS).
    MountNamespace,
    /// MS_REC | MS_PRIVATE on /.
    PrivateTree,
    /// Binding the host's devices onto their places in the command's /dev.
    Devices,
    /// Binding the sandbox's /dev over /dev.
    Dev,
    /// Binding an empty directory over /run.
    Run,
    /// Binding the private /tmp over /tmp.
    Tmp,
    /// Binding /proc/sys/net onto itself.
    ProcSysNet,
    /// mount_setattr(MOUNT_ATTR_RDONLY, AT_RECURSIVE) on /.
    ReadOnly,
    /// Clearing MOUNT_ATTR_RDONLY on /tmp.
    WritableTmp,
    /// Clearing MOUNT_ATTR_RDONLY on /proc/sys/net.
    WritableProcSysNet,
    /// Putting the program on its descriptor.
    Program,
    /// Dropping the capabilities not kept.
    Capabilities,
    /// PR_SET_NO_NEW_PRIVS.
    NoNewPrivs,
}

impl Step {
    const ALL: [Step; 17] = [
        Step::Session,
        Step::ParentDeath,
        Step::Orphaned,
        Step::Cwd,
        Step::MountNamespace,
        Step::PrivateTree,
        Step::Devices,
        Step::Dev,
        Step::Run,
        Step::Tmp,
        Step::ProcSysNet,
        Step::ReadOnly,
        Step::WritableTmp,
        Step::WritableProcSysNet,
        Step::Program,
        Step::Capabilities,
        Step::NoNewPrivs,
    ];

    fn from_byte(b: u8) -> Option<Step> {
        Step::ALL.into_iter().find(|s| *s as u8 == b)
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Session => "starting a session of the command's own (setsid)",
            Step::ParentDeath => "tying the command's life to the thread that started it (PR_SET_PDEATHSIG)",
            Step::Orphaned => "starting the command: the process that started it is gone",
            Step::MountNamespace => "entering a mount namespace of the command's own (unshare(CLONE_NEWNS))",
            Step::PrivateTree => "making the mount tree private in the command's mount namespace",
            Step::Devices => "binding the host's null, zero, full, random, urandom and tty onto the command's /dev",
            Step::Dev => "putting the command's own /dev over /dev",
            Step::Run => "putting an empty directory over /run",
            Step::Tmp => "putting the private /tmp over /tmp in the command's mount namespace",
            Step::ProcSysNet => "binding /proc/sys/net onto itself in the command's mount namespace",
            Step::ReadOnly => {
                "making / read-only in the command's mount namespace (mount_setattr, Linux 5.12 and later)"
            }
            Step::WritableTmp => "making the private /tmp writable in the command's mount namespace",
            Step::WritableProcSysNet => "making /proc/sys/net writable in the command's mount namespace",
            Step::Cwd => "changing to the command's working directory",
            Step::Program => "passing the program to the interpreter on descriptor 3",
            Step::Capabilities => "dropping the command's capabilities but the network ones",
            Step::NoNewPrivs => "setting no_new_privs on the command",
        })
    }
}

/// Why a command could not be run.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The sandbox's directory could not be made.
    #[error("creating the commands' private directory under {}", .path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// The working directory could not be opened.
    #[error("opening the commands' working directory {}", .path.display())]
    Cwd {
        /// The directory.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// The running kernel's capabilities could not be read.
    #[error("reading the highest capability number (/proc/sys/kernel/cap_last_cap)")]
    CapLastCap(#[source] io::Error),
    /// A step of the command's start failed in the child.
    #[error("{step}")]
    Setup {
        /// The step.
        step: Step,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// The program could not be started (fork or exec failed).
    #[error("starting {program} (PATH={PATH})")]
    Spawn {
        /// What was to be run.
        program: &'static str,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// The program text could not be handed over.
    #[error("writing the program for the interpreter")]
    Program(#[source] io::Error),
    /// Waiting for the command or reading its output failed.
    #[error("waiting for the command")]
    Wait(#[source] io::Error),
}

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
    /// It ran past its time limit and its process group was killed.
    TimedOut(Duration),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exited with status {code}"),
            Exit::Signal(sig) => match nix::sys::signal::Signal::try_from(*sig) {
                Ok(s) => write!(f, "killed by signal {sig} ({})", s.as_str()),
                Err(_) => write!(f, "killed by signal {sig}"),
            },
            Exit::TimedOut(after) => write!(f, "still running after {after:?}: killed"),
        }
    }
}

/// One output stream of a command: its end, at most [`OUTPUT_LIMIT`] bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// The text kept (invalid UTF-8 replaced).
    pub text: String,
    /// How many bytes before it were dropped.
    pub dropped: u64,
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.dropped > 0 {
            write!(f, "[{} bytes left out]\n{}", self.dropped, self.text)
        } else {
            f.write_str(&self.text)
        }
    }
}

/// The end of a stream, as it is read.
#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
    dropped: u64,
}

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.bytes.extend_from_slice(data);
        if self.bytes.len() > OUTPUT_LIMIT {
            let excess = self.bytes.len() - OUTPUT_LIMIT;
            self.bytes.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    fn into_output(self) -> Output {
        Output {
            text: String::from_utf8_lossy(&self.bytes).into_owned(),
            dropped: self.dropped,
        }
    }
}

/// What a finished command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// How it ended.
    pub exit: Exit,
    /// The end of its standard output.
    pub stdout: Output,
    /// The end of its standard error.
    pub stderr: Output,
    /// Just before it was started.
    pub started: Timestamp,
    /// When it was seen to end.
    pub ended: Timestamp,
}

impl Finished {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.exit == Exit::Code(0)
    }
}

/// How a command competes for the CPU with the cases' timelines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// On a case's timeline: as the harness's own threads.
    Timeline,
    /// Before or after a timeline (a setup command, the Python of code
    /// blocks): only when no timeline needs the CPU (SCHED_IDLE), so that
    /// many cases running at once keep their timing.
    Background,
}

/// Where a case's commands run: its private /tmp and its working directory.
pub struct Sandbox {
    root: Root,
    tmp: CString,
    dev: CString,
    run: CString,
    /// The host's devices and where they go in the sandbox's /dev while it
    /// is staged on /tmp (see [`Plan::steps`]).
    devices: Vec<(CString, CString)>,
    cwd: OwnedFd,
    cap_last: u32,
}

/// The directory a sandbox's /tmp, /run and /dev are made in.
enum Root {
    /// A tmpfs mounted nowhere, held by its descriptor: it is gone when the
    /// process is, however it ends, so a killed run leaves nothing behind.
    /// Reached through `/proc/self/fd/N`, by this process and by its
    /// commands before they exec.
    Detached {
        /// Held for the sandbox's life: the tmpfs lives as long as it.
        _mount: OwnedFd,
        path: PathBuf,
    },
    /// A directory under [`std::env::temp_dir`], removed on drop: where the
    /// kernel cannot bind-mount from a detached mount (before 6.15 or so).
    Directory(PathBuf),
}

impl Root {
    fn path(&self) -> &Path {
        match self {
            Root::Detached { path, .. } => path,
            Root::Directory(path) => path,
        }
    }
}

/// Numbers sandboxes made by this process.
static SANDBOXES: AtomicU64 = AtomicU64::new(0);

fn c_path(path: &Path) -> CString {
    // A path from the OS has no interior NUL.
    CString::new(path.as_os_str().as_bytes()).unwrap_or_default()
}

impl Sandbox {
    /// A sandbox whose commands run in `cwd` (the script's directory), with
    /// a fresh private /tmp (a new directory under [`std::env::temp_dir`],
    /// removed on drop).
    pub fn new(cwd: &Path) -> Result<Sandbox, CommandError> {
        let cwd_fd = nix::fcntl::open(
            cwd,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| CommandError::Cwd {
            path: cwd.to_path_buf(),
            source: e.into(),
        })?;
        let cap_last = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .and_then(|s| s.trim().parse::<u32>().map_err(io::Error::other))
            .map_err(CommandError::CapLastCap)?;
        let root = match detached_tmpfs() {
            Some(mount) => {
                let path = PathBuf::from(format!("/proc/self/fd/{}", mount.as_raw_fd()));
                Root::Detached { _mount: mount, path }
            }
            None => Root::Directory(make_root()?),
        };
        Sandbox::with_root(cwd_fd, cap_last, root)
    }

    fn with_root(cwd_fd: OwnedFd, cap_last: u32, root: Root) -> Result<Sandbox, CommandError> {
        let dir = root.path().to_path_buf();
        // From here on, dropping `sandbox` removes what was made.
        let mut sandbox = Sandbox {
            tmp: c_path(&dir.join("tmp")),
            dev: c_path(&dir.join("dev")),
            run: c_path(&dir.join("run")),
            root,
            devices: Vec::new(),
            cwd: cwd_fd,
            cap_last,
        };
        sandbox
            .populate()
            .map_err(|source| CommandError::Directory { path: dir, source })?;
        Ok(sandbox)
    }

    /// Makes the private /tmp, the empty /run, and the /dev with its
    /// placeholders for the host's devices.
    fn populate(&mut self) -> io::Result<()> {
        let root = self.root.path().to_path_buf();
        let tmp = root.join("tmp");
        fs::create_dir(&tmp)?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777))?;
        let run = root.join("run");
        fs::create_dir(&run)?;
        fs::set_permissions(&run, fs::Permissions::from_mode(0o755))?;
        let dev = root.join("dev");
        fs::create_dir(&dev)?;
        fs::set_permissions(&dev, fs::Permissions::from_mode(0o755))?;
        for name in DEVICES {
            let host = Path::new("/dev").join(name);
            if !fs::metadata(&host).is_ok_and(|m| m.file_type().is_char_device()) {
                continue;
            }
            fs::File::create(dev.join(name))?;
            self.devices
                .push((c_path(&host), c_path(&Path::new("/tmp").join(name))));
        }
        for (name, target) in DEV_LINKS {
            std::os::unix::fs::symlink(target, dev.join(name))?;
        }
        Ok(())
    }

    /// The sandbox's directory as this process reaches it (its `tmp` is the
    /// commands' /tmp): a path through one of its descriptors, where the
    /// sandbox is a detached tmpfs.
    pub fn dir(&self) -> &Path {
        self.root.path()
    }

    /// Runs `sh -c TEXT` and waits for it (at most `timeout`, then its whole
    /// process group is killed and that is reported).
    pub fn shell(&self, text: &str, timeout: Duration) -> Result<Finished, CommandError> {
        self.shell_with(text, timeout, Priority::Timeline)
    }

    /// [`Sandbox::shell`] at a given scheduling priority.
    pub fn shell_with(&self, text: &str, timeout: Duration, priority: Priority) -> Result<Finished, CommandError> {
        let mut command = Command::new("/bin/sh");
        command.arg("-c").arg(text);
        self.run(command, "/bin/sh", None, timeout, priority)
    }

    /// Runs a Python 3 program given as text (python3 on [`PATH`]) the same way.
    pub fn python(&self, program: &str, timeout: Duration) -> Result<Finished, CommandError> {
        self.python_with(program, timeout, Priority::Timeline)
    }

    /// [`Sandbox::python`] at a given scheduling priority.
    pub fn python_with(&self, program: &str, timeout: Duration, priority: Priority) -> Result<Finished, CommandError> {
        let memfd = memfd(program).map_err(CommandError::Program)?;
        let mut command = Command::new("python3");
        command.arg(format!("/proc/self/fd/{PROGRAM_FD}"));
        self.run(command, "python3", Some(memfd.as_raw_fd()), timeout, priority)
    }

    fn run(
        &self,
        mut command: Command,
        program: &'static str,
        program_fd: Option<RawFd>,
        timeout: Duration,
        priority: Priority,
    ) -> Result<Finished, CommandError> {
        let (report_rx, report_tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
            .map_err(|e| CommandError::Spawn {
            program,
            source: e.into(),
        })?;
        let plan = Plan {
            parent: std::process::id() as libc::pid_t,
            devices: self.devices.clone(),
            dev: self.dev.clone(),
            run: self.run.clone(),
            tmp: self.tmp.clone(),
            cwd: self.cwd.as_raw_fd(),
            cap_last: self.cap_last,
            program: program_fd,
            report: report_tx.as_raw_fd(),
            idle: priority == Priority::Background,
        };
        command
            .env_clear()
            .env("PATH", PATH)
            .env("HOME", "/tmp")
            .env("TMPDIR", "/tmp")
            .env("LC_ALL", "C")
            .env("PACKETDRILL_PID", std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: the closure runs in the child between fork and exec. It
        // only makes system calls, on data prepared before the fork, and
        // allocates nothing.
        unsafe {
            command.pre_exec(move || plan.apply());
        }
        let started = Timestamp::now();
        let spawned = {
            let _forking = FORKS.read().unwrap_or_else(|e| e.into_inner());
            command.spawn()
        };
        drop(report_tx);
        let child = match spawned {
            Ok(child) => child,
            Err(source) => {
                let mut byte = [0u8];
                return Err(match nix::unistd::read(&report_rx, &mut byte) {
                    Ok(1) => match Step::from_byte(byte[0]) {
                        Some(step) => CommandError::Setup { step, source },
                        None => CommandError::Spawn { program, source },
                    },
                    _ => CommandError::Spawn { program, source },
                });
            }
        };
        wait(child, started, timeout).map_err(CommandError::Wait)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Root::Directory(path) = &self.root {
            let _ = fs::remove_dir_all(path);
        }
    }
}

/// A new tmpfs mounted nowhere, where commands can bind-mount from one (see
/// [`Root::Detached`]); `None` where they cannot.
fn detached_tmpfs() -> Option<OwnedFd> {
    static WORKS: OnceLock<bool> = OnceLock::new();
    let mount = new_detached_tmpfs()?;
    WORKS.get_or_init(|| binds_from_detached(&mount)).then_some(mount)
}

fn new_detached_tmpfs() -> Option<OwnedFd> {
    // SAFETY: raw system calls on a NUL-terminated name and descriptors
    // they return; each returned descriptor is owned by nothing else.
    unsafe {
        let fs = libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), FSOPEN_CLOEXEC);
        if fs < 0 {
            return None;
        }
        let fs = OwnedFd::from_raw_fd(fs as RawFd);
        let nothing: *const libc::c_char = std::ptr::null();
        if libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            nothing,
            nothing,
            0,
        ) < 0
        {
            return None;
        }
        let mount = libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0);
        (mount >= 0).then(|| OwnedFd::from_raw_fd(mount as RawFd))
    }
}

/// Whether a child in a mount namespace of its own can bind-mount `mount`
/// (a detached one) through its descriptor, as each command will.
fn binds_from_detached(mount: &OwnedFd) -> bool {
    let source = c_path(Path::new(&format!("/proc/self/fd/{}", mount.as_raw_fd())));
    let _forking = FORKS.read().unwrap_or_else(|e| e.into_inner());
    // SAFETY: the child makes only raw system calls on strings made before
    // the fork, then exits without running anything of this process's.
    unsafe {
        match libc::fork() {
            -1 => false,
            0 => {
                let ok = libc::unshare(libc::CLONE_NEWNS) == 0
                    && mount_plain(None, c"/", libc::MS_REC | libc::MS_PRIVATE) == 0
                    && mount_plain(Some(&source), c"/", libc::MS_BIND) == 0;
                libc::_exit(if ok { 0 } else { 1 })
            }
            child => {
                let mut status = 0;
                while libc::waitpid(child, &mut status, 0) < 0 {
                    if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                        return false;
                    }
                }
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
            }
        }
    }
}

/// mount(2) without a type or data.
///
/// # Safety
/// As [`mount`].
unsafe fn mount_plain(source: Option<&std::ffi::CStr>, target: &std::ffi::CStr, flags: libc::c_ulong) -> libc::c_int {
    let source = source.map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: the caller keeps both strings alive; null type and data are allowed.
    unsafe { libc::mount(source, target.as_ptr(), std::ptr::null(), flags, std::ptr::null()) }
}

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;

/// Makes the sandbox's directory, a new one.
fn make_root() -> Result<PathBuf, CommandError> {
    let base = std::env::temp_dir();
    loop {
        let n = SANDBOXES.fetch_add(1, Ordering::Relaxed);
        let root = base.join(format!("tcpconform-sandbox-{}-{n}", std::process::id()));
        match fs::DirBuilder::new().mode(0o700).create(&root) {
            Ok(()) => return Ok(root),
            // Left by an earlier process with the same pid.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(CommandError::Directory { path: root, source }),
        }
    }
}

/// A memory file holding `text`.
fn memfd(text: &str) -> io::Result<OwnedFd> {
    // SAFETY: memfd_create reads the NUL-terminated name; the returned
    // descriptor is new and owned by nothing else.
    let fd = unsafe { libc::memfd_create(c"tcpconform-program".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    fs::File::from(fd.try_clone()?).write_all(text.as_bytes())?;
    Ok(fd)
}

/// Everything the child needs between fork and exec, prepared before the fork.
struct Plan {
    parent: libc::pid_t,
    devices: Vec<(CString, CString)>,
    dev: CString,
    run: CString,
    tmp: CString,
    cwd: RawFd,
    cap_last: u32,
    program: Option<RawFd>,
    report: RawFd,
    idle: bool,
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

/// `struct __user_cap_header_struct` and `__user_cap_data_struct` of capget(2).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// Turns a libc return value into the error of the step, with errno.
fn step(step: Step, rc: libc::c_long) -> Result<(), (Step, io::Error)> {
    if rc < 0 {
        Err((step, io::Error::last_os_error()))
    } else {
        Ok(())
    }
}

impl Plan {
    /// Runs the steps in the child; on failure writes the step's number to
    /// the report pipe and returns the error (std hands its errno to the parent).
    fn apply(&self) -> io::Result<()> {
        self.steps().map_err(|(failed, err)| {
            let byte = [failed as u8];
            // SAFETY: write(2) reads one byte of the live array.
            unsafe { libc::write(self.report, byte.as_ptr().cast(), 1) };
            err
        })
    }

    fn steps(&self) -> Result<(), (Step, io::Error)> {
        let read_only = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        let writable = |set: u64| MountAttr {
            attr_set: set,
            attr_clr: MOUNT_ATTR_RDONLY,
            propagation: 0,
            userns_fd: 0,
        };
        // SAFETY: each call is a raw system call (async-signal-safe) on
        // NUL-terminated strings and structs that live in `self` or on this
        // stack until it returns; nothing here allocates.
        unsafe {
            // Never the real-time priority of a timeline's thread: a command
            // runs normally, or idle (best effort: an idle one is only slower).
            let param = libc::sched_param { sched_priority: 0 };
            let policy = if self.idle { libc::SCHED_IDLE } else { libc::SCHED_OTHER };
            libc::sched_setscheduler(0, policy, &param);
            step(Step::Session, libc::setsid().into())?;
            step(
                Step::ParentDeath,
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL).into(),
            )?;
            if libc::getppid() != self.parent {
                return Err((Step::Orphaned, io::Error::from_raw_os_error(libc::ESRCH)));
            }
            // Before unshare, which moves the working directory onto the
            // new namespace's copy of its mount (read-only below). A
            // directory entered afterwards through the descriptor would
            // stay on the host's mount, writable.
            step(Step::Cwd, libc::fchdir(self.cwd).into())?;
            step(Step::MountNamespace, libc::unshare(libc::CLONE_NEWNS).into())?;
            // Nothing mounted from here on propagates back to the host.
            step(Step::PrivateTree, mount(None, c"/", libc::MS_REC | libc::MS_PRIVATE))?;
            // The sandbox's /dev is staged on /tmp, where the host's devices
            // are bound onto its placeholders (a mount cannot go onto a
            // detached one), then moved over /dev.
            step(Step::Dev, mount(Some(&self.dev), c"/tmp", libc::MS_BIND | libc::MS_REC))?;
            for (host, place) in &self.devices {
                step(Step::Devices, mount(Some(host), place, libc::MS_BIND))?;
            }
            step(Step::Dev, mount(Some(c"/tmp"), c"/dev", libc::MS_MOVE))?;
            step(Step::Run, mount(Some(&self.run), c"/run", libc::MS_BIND))?;
            step(Step::Tmp, mount(Some(&self.tmp), c"/tmp", libc::MS_BIND))?;
            step(
                Step::ProcSysNet,
                mount(Some(c"/proc/sys/net"), c"/proc/sys/net", libc::MS_BIND),
            )?;
            // Device nodes stay usable on a read-only mount; what a write
            // to /proc/sys outside net/ would change is refused (EROFS).
            step(Step::ReadOnly, mount_setattr(c"/", libc::AT_RECURSIVE, &read_only))?;
            step(
                Step::WritableTmp,
                mount_setattr(c"/tmp", 0, &writable(MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)),
            )?;
            step(
                Step::WritableProcSysNet,
                mount_setattr(c"/proc/sys/net", 0, &writable(0)),
            )?;
            if let Some(fd) = self.program {
                let rc = if fd == PROGRAM_FD {
                    // dup2 onto itself would keep FD_CLOEXEC.
                    libc::fcntl(fd, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, PROGRAM_FD)
                };
                step(Step::Program, rc.into())?;
            }
            self.keep_network_caps()?;
            step(
                Step::NoNewPrivs,
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).into(),
            )
        }
    }

    /// Leaves the program only [`KEPT_CAPS`]. A root program gets its
    /// bounding set at exec, so for root the others leave it. A non-root
    /// one gets only its ambient set (no_new_privs, set last, refuses file
    /// capabilities), so the kept ones the process has become ambient, as
    /// when tcpconform runs with file capabilities. Either way the others
    /// leave the inheritable set.
    fn keep_network_caps(&self) -> Result<(), (Step, io::Error)> {
        let kept = |cap: u32| KEPT_CAPS.contains(&cap);
        // SAFETY: geteuid takes nothing and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        for cap in 0..=self.cap_last {
            // Dropping takes CAP_SETPCAP, which a non-root process with
            // file capabilities may lack.
            if root && !kept(cap) {
                // SAFETY: prctl takes plain integers.
                step(
                    Step::Capabilities,
                    unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) }.into(),
                )?;
            }
        }
        let mut header = CapHeader {
            version: CAP_VERSION_3,
            pid: 0,
        };
        let mut data = [CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        // SAFETY: capget writes two capability data structs into the live array.
        step(Step::Capabilities, unsafe {
            libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr())
        })?;
        let mask = |word: usize| {
            KEPT_CAPS
                .iter()
                .filter(|c| **c as usize / 32 == word)
                .fold(0u32, |m, c| m | 1 << (c % 32))
        };
        for (word, d) in data.iter_mut().enumerate() {
            d.inheritable = d.permitted & mask(word);
        }
        // SAFETY: capset reads the live header and two data structs.
        step(Step::Capabilities, unsafe {
            libc::syscall(libc::SYS_capset, &mut header, data.as_ptr())
        })?;
        // SAFETY: prctl takes plain integers.
        step(
            Step::Capabilities,
            unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) }.into(),
        )?;
        for cap in KEPT_CAPS {
            if data[cap as usize / 32].inheritable & (1 << (cap % 32)) != 0 {
                // SAFETY: prctl takes plain integers.
                step(
                    Step::Capabilities,
                    unsafe {
                        libc::prctl(
                            libc::PR_CAP_AMBIENT,
                            libc::PR_CAP_AMBIENT_RAISE,
                            cap as libc::c_ulong,
                            0,
                            0,
                        )
                    }
                    .into(),
                )?;
            }
        }
        Ok(())
    }
}

/// mount(2) with no file system type and no data.
///
/// # Safety
/// Async-signal-safe; the strings must be NUL-terminated and live.
unsafe fn mount(source: Option<&std::ffi::CStr>, target: &std::ffi::CStr, flags: libc::c_ulong) -> libc::c_long {
    let source = source.map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: the caller keeps both strings alive; null type and data are allowed.
    unsafe { libc::mount(source, target.as_ptr(), std::ptr::null(), flags, std::ptr::null()) }.into()
}

/// mount_setattr(2) on `path` (libc has no wrapper).
///
/// # Safety
/// Async-signal-safe; `path` must be NUL-terminated and live.
unsafe fn mount_setattr(path: &std::ffi::CStr, flags: libc::c_int, attr: &MountAttr) -> libc::c_long {
    // SAFETY: the kernel reads the live path and `size_of::<MountAttr>()` bytes of `attr`.
    unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags as libc::c_uint,
            attr as *const MountAttr,
            size_of::<MountAttr>(),
        )
    }
}

/// A descriptor that becomes readable when process `pid` ends.
fn pidfd(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes plain integers and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just created and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Kills every process of the child's group. The child is not reaped yet,
/// so its pid still names its group.
fn kill_group(pid: u32) {
    // SAFETY: kill takes plain integers.
    unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
}

/// A stream being read: its descriptor until end of file, and what came.
struct Stream {
    fd: Option<OwnedFd>,
    tail: Tail,
}

impl Stream {
    fn new(fd: Option<OwnedFd>) -> io::Result<Stream> {
        if let Some(fd) = &fd {
            let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL)?;
            let flags = nix::fcntl::OFlag::from_bits_retain(flags) | nix::fcntl::OFlag::O_NONBLOCK;
            nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(flags))?;
        }
        Ok(Stream {
            fd,
            tail: Tail::default(),
        })
    }

    /// Reads what is there; closes at end of file.
    fn read(&mut self) -> io::Result<()> {
        let Some(fd) = &self.fd else { return Ok(()) };
        let mut buf = [0u8; 16 * 1024];
        loop {
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => {
                    self.fd = None;
                    return Ok(());
                }
                Ok(n) => self.tail.push(&buf[..n]),
                Err(nix::errno::Errno::EAGAIN) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Waits for the child and reads its output: until it ends and its output
/// closes, or `timeout` passes and its group is killed.
fn wait(mut child: Child, started: Timestamp, timeout: Duration) -> io::Result<Finished> {
    let pid = child.id();
    let outcome = watch(&mut child, timeout);
    if outcome.is_err() {
        kill_group(pid);
    }
    let status = child.wait()?;
    let (timed_out, stdout, stderr) = outcome?;
    let ended_at = Timestamp::now();
    let exit = if timed_out {
        Exit::TimedOut(timeout)
    } else if let Some(code) = status.code() {
        Exit::Code(code)
    } else {
        Exit::Signal(status.signal().unwrap_or(0))
    };
    Ok(Finished {
        exit,
        stdout: stdout.into_output(),
        stderr: stderr.into_output(),
        started,
        ended: ended_at,
    })
}

/// The poll loop of [`wait`]: whether the child timed out, and its output.
fn watch(child: &mut Child, timeout: Duration) -> io::Result<(bool, Tail, Tail)> {
    let pid = child.id();
    let exit_fd = pidfd(pid)?;
    let mut out = Stream::new(child.stdout.take().map(OwnedFd::from))?;
    let mut err = Stream::new(child.stderr.take().map(OwnedFd::from))?;
    let mut deadline = Instant::now() + timeout;
    let (mut exited, mut timed_out) = (false, false);
    loop {
        let mut fds = Vec::with_capacity(3);
        for stream in [&out, &err] {
            if let Some(fd) = &stream.fd {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
        }
        let streams = fds.len();
        if !exited {
            fds.push(PollFd::new(exit_fd.as_fd(), PollFlags::POLLIN));
        }
        if fds.is_empty() {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            if exited {
                // Output still open after the grace: a process left the group.
                break;
            }
            kill_group(pid);
            timed_out = true;
            deadline = Instant::now() + DRAIN_GRACE;
            continue;
        }
        // Rounded up: a zero timeout would spin until the deadline.
        let ms = i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
        match poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
        let child_ended = !exited && ready(streams);
        let (mut i, mut read_out, mut read_err) = (0, false, false);
        if out.fd.is_some() {
            read_out = ready(i);
            i += 1;
        }
        if err.fd.is_some() {
            read_err = ready(i);
        }
        drop(fds);
        if read_out {
            out.read()?;
        }
        if read_err {
            err.read()?;
        }
        if child_ended {
            exited = true;
            // What the command left running in its group ends with it.
            kill_group(pid);
            if !timed_out {
                deadline = Instant::now() + DRAIN_GRACE;
            }
        }
    }
    Ok((timed_out, out.tail, err.tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_keeps_the_end() {
        let mut tail = Tail::default();
        tail.push(&vec![b'a'; OUTPUT_LIMIT]);
        tail.push(b"end");
        let output = tail.into_output();
        assert_eq!(output.dropped, 3);
        assert_eq!(output.text.len(), OUTPUT_LIMIT);
        assert!(output.text.ends_with("aend"));
        assert!(output.to_string().starts_with("[3 bytes left out]\n"));
    }

    #[test]
    fn a_missing_working_directory_is_named() {
        let Err(e) = Sandbox::new(Path::new("/nonexistent/tcpconform")) else {
            panic!("a sandbox in a missing directory");
        };
        assert_eq!(
            e.to_string(),
            "opening the commands' working directory /nonexistent/tcpconform"
        );
        assert!(matches!(e, CommandError::Cwd { .. }));
    }

    #[test]
    fn a_sandbox_is_a_tmpfs_mounted_nowhere_where_the_kernel_allows() {
        let sandbox = Sandbox::new(Path::new("/")).unwrap();
        let dir = sandbox.dir().to_path_buf();
        assert!(dir.join("tmp").is_dir() && dir.join("dev/null").exists() && dir.join("run").is_dir());
        match &sandbox.root {
            // Nothing of it is on a disk, so nothing can be left there.
            Root::Detached { path, .. } => assert!(path.starts_with("/proc/self/fd")),
            Root::Directory(path) => {
                let path = path.clone();
                drop(sandbox);
                assert!(!path.exists());
            }
        }
    }

    #[test]
    fn a_sandbox_in_a_directory_runs_commands_and_is_removed() {
        let cwd = nix::fcntl::open(
            "/",
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        let cap_last = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let sandbox = Sandbox::with_root(cwd, cap_last, Root::Directory(make_root().unwrap())).unwrap();
        let dir = sandbox.dir().to_path_buf();
        let Ok(done) = sandbox.shell(
            "echo hi > /tmp/f && cat /tmp/f && test -c /dev/null",
            Duration::from_secs(10),
        ) else {
            // Without the privileges for a mount namespace there is nothing to check here.
            return;
        };
        assert!(done.success(), "{}", done.stderr.text);
        assert_eq!(done.stdout.text, "hi\n");
        assert!(dir.join("tmp/f").is_file());
        drop(sandbox);
        assert!(!dir.exists());
    }

    #[test]
    fn every_step_has_its_number() {
        for step in Step::ALL {
            assert_eq!(Step::from_byte(step as u8), Some(step));
        }
        assert_eq!(Step::from_byte(0), None);
    }

    #[test]
    fn exits_say_how() {
        assert_eq!(Exit::Code(1).to_string(), "exited with status 1");
        assert_eq!(Exit::Signal(9).to_string(), "killed by signal 9 (SIGKILL)");
        assert_eq!(
            Exit::TimedOut(Duration::from_millis(200)).to_string(),
            "still running after 200ms: killed"
        );
    }
}
