//! `tcpconform vm`: the suite under another kernel. The kernel is booted
//! with qemu (KVM when it can run an ordinary guest, software emulation
//! otherwise) with no disk: an initramfs built on the fly holds this very
//! binary as init ([`guest`]), its shared libraries, the cases, the
//! programs their commands run ([`userland`]), the kernel's own modules the
//! labs need ([`modules`]) and a plan. The guest runs
//! `tcpconform run` and sends its report directory back over a serial port
//! ([`transfer`]); it lands in `--out`.
//!
//! Nothing is left behind: the initramfs and the results live in memfds
//! that qemu inherits, qemu is killed on a deadline, on SIGINT, SIGTERM or
//! SIGHUP, and by the kernel if this process dies (`PR_SET_PDEATHSIG`).

mod cpio;
pub mod guest;
mod initramfs;
pub mod kernel;
pub mod modules;
pub mod qemu;
pub mod transfer;
pub mod userland;

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

use self::guest::{Plan, REPORT_DIR, UP_MARKER};
use self::kernel::{Kernel, KernelError};
use self::modules::{ModuleError, Modules};
use self::qemu::{Accel, Machine};
use self::transfer::TransferError;
use self::userland::{Userland, UserlandError};

/// How long an automatically chosen KVM gets to bring the guest up before
/// the run falls back to software emulation.
const KVM_BOOT_DEADLINE: Duration = Duration::from_secs(15);
/// How long qemu gets to exit once the guest has sent its results or was told to stop.
const EXIT_GRACE: Duration = Duration::from_secs(10);
/// Console lines kept for error messages.
const CONSOLE_TAIL: usize = 40;

/// A run of the suite in a VM.
#[derive(Clone, Debug)]
pub struct Vm {
    /// The kernel image.
    pub kernel: PathBuf,
    /// Its module directory; default: beside the image (see [`Kernel::modules_beside`]).
    pub modules: Option<PathBuf>,
    /// Where the report directory comes back to.
    pub out: Option<PathBuf>,
    /// The qemu binary; default: see [`qemu::find`].
    pub qemu: Option<PathBuf>,
    /// The accelerator; default: KVM when usable, else TCG.
    pub accel: Option<Accel>,
    /// Virtual CPUs under KVM (software emulation has one).
    pub cpus: u32,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// How long the guest may take to come up.
    pub boot_timeout: Duration,
    /// How long the suite may take once the guest is up.
    pub timeout: Duration,
    /// The case files the run reads (they are copied into the guest).
    pub files: Vec<PathBuf>,
    /// What the cases' commands run (copied into the guest too).
    pub userland: Userland,
    /// The arguments of `tcpconform run` in the guest, without `--out`.
    pub run: Vec<String>,
}

/// The last lines the guest printed on its console.
#[derive(Clone, Debug, Default)]
pub struct Console(pub Vec<String>);

impl fmt::Display for Console {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.0 {
            writeln!(f, "    {line}")?;
        }
        Ok(())
    }
}

/// Why a VM run did not produce results.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// The kernel image is missing or unusable.
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// No qemu.
    #[error(
        "qemu not found (looked for {0}): install Debian's qemu-system-x86, run scripts/fetch-kernels, or pass --qemu"
    )]
    QemuNotFound(String),
    /// The modules the labs need cannot be prepared.
    #[error(transparent)]
    Modules(#[from] ModuleError),
    /// The initramfs cannot be built.
    #[error("cannot build the initramfs")]
    Initramfs(#[from] initramfs::InitramfsError),
    /// What the commands run cannot be put into the initramfs.
    #[error("cannot put what the cases' commands run into the initramfs")]
    Userland(#[from] UserlandError),
    /// A memfd, a pipe or a thread could not be made.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// qemu could not be started.
    #[error("cannot start {qemu}")]
    Spawn {
        /// The binary.
        qemu: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// qemu ended before the guest came up.
    #[error("qemu ({accel}) exited with {status} before the guest came up{}", qemu_said(.stderr))]
    Exited {
        /// The accelerator.
        accel: &'static str,
        /// qemu's exit status.
        status: String,
        /// What qemu wrote on its standard error.
        stderr: String,
        /// The guest's last console lines.
        console: Console,
    },
    /// The guest did not come up in time.
    #[error("the guest did not come up within {}s ({accel}); qemu was stopped", .after.as_secs())]
    BootTimeout {
        /// The accelerator.
        accel: &'static str,
        /// The deadline.
        after: Duration,
        /// The guest's last console lines.
        console: Console,
    },
    /// The suite did not finish in time.
    #[error("the suite did not finish within {}s of the guest coming up; qemu was stopped", .after.as_secs())]
    RunTimeout {
        /// The deadline.
        after: Duration,
        /// The guest's last console lines.
        console: Console,
    },
    /// The guest ended without sending (intact) results.
    #[error("the guest ended without results")]
    Results {
        /// What is wrong with what came.
        #[source]
        source: TransferError,
        /// The guest's last console lines.
        console: Console,
    },
    /// The guest could not run the suite.
    #[error("the guest could not run the suite: {message}")]
    Guest {
        /// Its message.
        message: String,
        /// The guest's last console lines.
        console: Console,
    },
    /// A signal asked us to stop.
    #[error("interrupted by {0}; qemu was stopped")]
    Interrupted(Signal),
}

fn qemu_said(stderr: &str) -> String {
    match stderr.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(line) => format!(": {}", line.trim()),
        None => String::new(),
    }
}

impl VmError {
    /// The guest's last console lines, when the error happened with the guest running.
    pub fn console(&self) -> Option<&Console> {
        match self {
            VmError::Exited { console, .. }
            | VmError::BootTimeout { console, .. }
            | VmError::RunTimeout { console, .. }
            | VmError::Results { console, .. }
            | VmError::Guest { console, .. } => Some(console).filter(|c| !c.0.is_empty()),
            _ => None,
        }
    }

    /// The exit status a process stopped by this error's signal would have.
    pub fn signal_status(&self) -> Option<u8> {
        match self {
            VmError::Interrupted(signal) => Some(128 + *signal as u8),
            _ => None,
        }
    }
}

/// How a VM run went.
#[derive(Clone, Debug)]
pub struct Finished {
    /// The exit status of `tcpconform run` in the guest.
    pub status: u8,
    /// The accelerator used.
    pub accel: Accel,
    /// From starting qemu to the guest's init running.
    pub boot: Duration,
    /// From the guest's init running to qemu's exit.
    pub run: Duration,
}

fn io_step(what: &'static str) -> impl FnOnce(io::Error) -> VmError {
    move |source| VmError::Io { what, source }
}

/// `path` made absolute against the current directory, `.` and `..` resolved lexically.
fn absolute(path: &Path) -> io::Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in std::path::absolute(path)?.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Boots the kernel, runs the suite in it, and brings the report back.
///
/// Prints its own progress on standard error and the guest's console on
/// standard output. Signals SIGINT, SIGTERM and SIGHUP are handled (they
/// stop qemu) while it runs, when called from a process's only thread.
pub fn run(vm: &Vm) -> Result<Finished, VmError> {
    let kernel = Kernel::open(&vm.kernel)?;
    let qemu = qemu::find(vm.qemu.as_deref()).map_err(VmError::QemuNotFound)?;
    let release = kernel.release.clone().unwrap_or_else(|| "unknown release".into());
    let modules = match vm.modules.clone().or_else(|| kernel.modules_beside()) {
        Some(dir) => modules::resolve(&dir, kernel.release.as_deref())?,
        None => {
            eprintln!(
                "tcpconform vm: no module directory beside {} (give --modules): assuming {} are built in",
                vm.kernel.display(),
                modules::NEEDED.join(", ")
            );
            Modules::default()
        }
    };
    let accels = match vm.accel {
        Some(a) => vec![a],
        None => match qemu::kvm_unusable() {
            None => vec![Accel::Kvm, Accel::Tcg],
            Some(why) => {
                eprintln!("tcpconform vm: no KVM ({why}): software emulation (TCG)");
                vec![Accel::Tcg]
            }
        },
    };
    let cwd = absolute(Path::new(".")).map_err(io_step("reading the current directory"))?;
    let files = vm
        .files
        .iter()
        .map(|f| absolute(f))
        .collect::<io::Result<Vec<_>>>()
        .map_err(io_step("resolving the case paths"))?;
    let mut run_args = vm.run.clone();
    run_args.extend(["--out".to_string(), REPORT_DIR.to_string()]);
    let plan = Plan {
        cwd,
        run: run_args,
        modules: modules.load.iter().map(|m| m.name.clone()).collect(),
    };
    let binary = std::env::current_exe().map_err(io_step("finding the tcpconform binary"))?;
    let libraries = initramfs::libraries(&binary)?;
    let mut tree = initramfs::HostTree::default();
    for path in libraries.iter().chain(&files) {
        tree.file(path)?;
    }
    tree.dir(&plan.cwd)?;
    vm.userland.add_to(&mut tree)?;
    let initramfs_fd = memfd("tcpconform-initramfs")?;
    initramfs::write(
        io::BufWriter::new(File::from(
            initramfs_fd
                .try_clone()
                .map_err(io_step("duplicating the initramfs memfd"))?,
        )),
        &initramfs::Contents {
            binary: &binary,
            tree: &tree,
            modules: &modules.load,
            plan: &plan,
        },
    )?;
    let size = nix::sys::stat::fstat(&initramfs_fd).map_or(0, |st| st.st_size);
    eprintln!(
        "tcpconform vm: initramfs of {:.1} MiB, {} file(s) for the cases' commands",
        size as f64 / (1024.0 * 1024.0),
        vm.userland.named.len()
    );
    let results_fd = memfd("tcpconform-results")?;
    let init_env = library_path(&libraries);

    let interrupts = Interrupts::start()?;
    let mut accels = accels.into_iter().peekable();
    let (accel, boot, run, console) = loop {
        let accel = accels.next().expect("there is always an accelerator left to try");
        let fallback = accels.peek().is_some();
        let machine = Machine {
            qemu: &qemu,
            accel,
            cpus: vm.cpus,
            memory_mib: vm.memory_mib,
            kernel: &vm.kernel,
            initramfs: &initramfs_fd,
            results: &results_fd,
            init_env: &init_env,
        };
        eprintln!(
            "tcpconform vm: booting {} ({release}) with qemu, {}, {} vCPU(s), {} MiB",
            vm.kernel.display(),
            accel.name(),
            machine.vcpus(),
            vm.memory_mib
        );
        let boot_deadline = if fallback {
            KVM_BOOT_DEADLINE.min(vm.boot_timeout)
        } else {
            vm.boot_timeout
        };
        match boot(&machine, &interrupts, boot_deadline, vm.timeout) {
            Ok(done) => break done,
            Err(e @ (VmError::Exited { .. } | VmError::BootTimeout { .. })) if fallback => {
                eprintln!("tcpconform vm: {e}; trying software emulation (TCG)");
            }
            Err(e) => return Err(e),
        }
    };
    drop(interrupts);
    let mut bytes = Vec::new();
    let mut file = File::from(results_fd);
    file.rewind()
        .and_then(|()| file.read_to_end(&mut bytes))
        .map_err(io_step("reading the results"))?;
    let results = transfer::unframe(&bytes).map_err(|source| VmError::Results {
        source,
        console: console.clone(),
    })?;
    if let Some(message) = results.error {
        return Err(VmError::Guest { message, console });
    }
    if let Some(out) = &vm.out
        && !results.archive.is_empty()
    {
        transfer::unpack(&results.archive, out).map_err(|source| VmError::Results { source, console })?;
    }
    Ok(Finished {
        status: results.status,
        accel,
        boot,
        run,
    })
}

fn memfd(name: &str) -> Result<OwnedFd, VmError> {
    memfd_create(name, MFdFlags::MFD_CLOEXEC).map_err(|e| VmError::Io {
        what: "creating a memfd",
        source: e.into(),
    })
}

/// `LD_LIBRARY_PATH=...` for the guest's init, naming the directories the
/// libraries are in: the guest has no `ld.so.cache` to find them by.
fn library_path(libraries: &[PathBuf]) -> Vec<String> {
    let mut dirs: Vec<String> = Vec::new();
    for dir in libraries.iter().filter_map(|l| l.parent()) {
        let dir = dir.display().to_string();
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    if dirs.is_empty() {
        Vec::new()
    } else {
        vec![format!("LD_LIBRARY_PATH={}", dirs.join(":"))]
    }
}

/// Something that happened while the guest runs.
enum Happening {
    /// A line on the guest's console.
    Line(String),
    /// A signal asked us to stop.
    Signal(Signal),
}

/// SIGINT, SIGTERM and SIGHUP turned into [`Happening::Signal`]s while it lives.
struct Interrupts {
    tx: Sender<Happening>,
    rx: Receiver<Happening>,
    stop: Arc<AtomicBool>,
    watcher: Option<std::thread::JoinHandle<()>>,
    old_mask: SigSet,
}

const HANDLED: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

impl Interrupts {
    fn start() -> Result<Interrupts, VmError> {
        let mut set = SigSet::empty();
        for s in HANDLED {
            set.add(s);
        }
        let mut old_mask = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old_mask)).map_err(|e| VmError::Io {
            what: "blocking signals",
            source: e.into(),
        })?;
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (tx, stop) = (tx.clone(), stop.clone());
            std::thread::Builder::new()
                .name("vm signals".into())
                .spawn(move || {
                    let timeout = libc::timespec {
                        tv_sec: 0,
                        tv_nsec: 100_000_000,
                    };
                    while !stop.load(Ordering::Relaxed) {
                        // SAFETY: sigtimedwait reads a valid set and timeout and writes no info (null).
                        let signo = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &timeout) };
                        if let Ok(signal) = Signal::try_from(signo) {
                            let _ = tx.send(Happening::Signal(signal));
                        }
                    }
                })
                .map_err(io_step("starting the signal watcher"))?
        };
        Ok(Interrupts {
            tx,
            rx,
            stop,
            watcher: Some(watcher),
            old_mask,
        })
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.old_mask), None);
    }
}

/// Boots `machine` and waits for it to end: returns the accelerator, the
/// boot and run times and the console's last lines.
fn boot(
    machine: &Machine<'_>,
    interrupts: &Interrupts,
    boot_deadline: Duration,
    run_deadline: Duration,
) -> Result<(Accel, Duration, Duration, Console), VmError> {
    let mut command = machine.command();
    let inherited = [machine.initramfs.as_raw_fd(), machine.results.as_raw_fd()];
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs between fork and exec and calls only
    // async-signal-safe functions on plain integers.
    unsafe {
        command.pre_exec(move || {
            // Its own process group: a Ctrl-C reaches us, and we stop qemu.
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            for fd in inherited {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let mut child = command.spawn().map_err(|source| VmError::Spawn {
        qemu: machine.qemu.display().to_string(),
        source,
    })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let console_reader = {
        let tx = interrupts.tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line).trim_end_matches('\r').to_string();
                if tx.send(Happening::Line(line)).is_err() {
                    break;
                }
            }
        })
    };
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let mut console = ConsoleLog::default();
    let mut up: Option<Instant> = None;
    let outcome = loop {
        let deadline = match up {
            None => started + boot_deadline,
            Some(at) => at + run_deadline,
        };
        match interrupts.rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Happening::Line(line)) => {
                if up.is_none() && line.contains(UP_MARKER) {
                    up = Some(Instant::now());
                    eprintln!("tcpconform vm: guest up in {:.1}s", started.elapsed().as_secs_f64());
                    console.keep(line);
                } else {
                    console.take(line, up.is_some());
                }
                continue;
            }
            Ok(Happening::Signal(signal)) => break Err(VmError::Interrupted(signal)),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() < deadline => {}
            Err(source) => {
                break Err(VmError::Io {
                    what: "waiting for qemu",
                    source,
                });
            }
            Ok(None) => {
                let console = console.tail();
                break Err(match up {
                    None => VmError::BootTimeout {
                        accel: machine.accel.name(),
                        after: boot_deadline,
                        console,
                    },
                    Some(_) => VmError::RunTimeout {
                        after: run_deadline,
                        console,
                    },
                });
            }
        }
    };
    if outcome.is_err() {
        let _ = child.kill();
    }
    let _ = wait_or_kill(&mut child);
    let _ = console_reader.join();
    // What is still queued after qemu's exit belongs to this boot.
    let mut outcome = outcome;
    while let Ok(happening) = interrupts.rx.try_recv() {
        match happening {
            Happening::Line(line) => console.take(line, up.is_some()),
            Happening::Signal(signal) => outcome = outcome.and(Err(VmError::Interrupted(signal))),
        }
    }
    let stderr = stderr_reader.join().unwrap_or_default();
    let status = outcome?;
    let console = console.tail();
    match up {
        Some(at) => Ok((machine.accel, at - started, at.elapsed(), console)),
        None => Err(VmError::Exited {
            accel: machine.accel.name(),
            status: status.to_string(),
            stderr,
            console,
        }),
    }
}

/// The guest's console as it arrives: shown once the guest is up, its last lines kept.
#[derive(Default)]
struct ConsoleLog(VecDeque<String>);

impl ConsoleLog {
    /// Keeps `line` for error messages.
    fn keep(&mut self, line: String) {
        if self.0.len() == CONSOLE_TAIL {
            self.0.pop_front();
        }
        self.0.push_back(line);
    }

    /// Keeps `line`, printing it first when `show`.
    fn take(&mut self, line: String, show: bool) {
        if show {
            println!("{line}");
        }
        self.keep(line);
    }

    /// The lines kept.
    fn tail(&self) -> Console {
        Console(self.0.iter().cloned().collect())
    }
}

/// Waits for qemu to exit, killing it after [`EXIT_GRACE`].
fn wait_or_kill(child: &mut std::process::Child) -> io::Result<std::process::ExitStatus> {
    let until = Instant::now() + EXIT_GRACE;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= until {
            child.kill()?;
            return child.wait();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_made_absolute_lexically() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            absolute(Path::new("cases/./x/../y.yaml")).unwrap(),
            cwd.join("cases/y.yaml")
        );
        assert_eq!(absolute(Path::new("/a/b/../c")).unwrap(), PathBuf::from("/a/c"));
    }

    #[test]
    fn the_library_path_names_each_directory_once() {
        let libs = [
            PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
            PathBuf::from("/lib/x86_64-linux-gnu/libm.so.6"),
            PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
        ];
        assert_eq!(library_path(&libs), ["LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/lib64"]);
    }
}
