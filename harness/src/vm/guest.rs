//! The guest side: `tcpconform vm-guest`, the init process of a VM that
//! [`super::run`] boots. It mounts /proc, /sys and /dev, loads the modules
//! the host put in its initramfs, runs the suite as `tcpconform run` would,
//! sends the report directory back over the second serial port
//! ([`super::transfer`]) and powers the machine off.
//!
//! The console (the first serial port) carries progress and errors; the
//! host shows it and keeps its last lines for error messages.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use std::time::Duration;

use super::transfer::{self, Results};
use crate::engine::MAX_SLACK;
use crate::suite::DEFAULT_JOBS;

/// The line the guest prints once it runs, before anything can go wrong in it.
pub const UP_MARKER: &str = "tcpconform-vm: guest up";
/// Where the plan is in the initramfs.
pub const PLAN_PATH: &str = "/tcpconform/plan.json";
/// Where the modules are in the initramfs, as `<name>.ko`.
pub const MODULE_DIR: &str = "/tcpconform/modules";
/// Where the guest's run writes its report.
pub const REPORT_DIR: &str = "/tcpconform/report";
/// The serial port the results go out on.
const RESULTS_PORT: &str = "/dev/ttyS1";
/// The variable, set on the kernel command line, that says how the guest's CPU is run (`kvm`, `tcg`).
pub const ACCEL_ENV: &str = "TCPCONFORM_VM_ACCEL";

/// What the guest's run uses where its arguments say nothing.
///
/// Under KVM the guest runs in real time at native speed: the defaults of
/// `tcpconform run`. Under software emulation it runs on a virtual clock
/// ([`super::qemu::Accel::Tcg`]) with one vCPU, one instruction per virtual
/// nanosecond: slower than bare metal, so CPU-bound delays stretch (a
/// namespace the previous case left being cleaned up by a kernel worker
/// delays a reply by up to 7.7 ms of virtual time in the measurements of
/// docs/VM.md). Hence one case at a time, which costs no host time since
/// idle virtual time is skipped, and [`MAX_SLACK`] of slack.
#[derive(Clone, Debug)]
pub struct Defaults {
    /// `--jobs`.
    pub jobs: usize,
    /// `--slack`.
    pub slack: Duration,
    /// Why, in a few words.
    pub why: &'static str,
}

impl Defaults {
    /// The defaults for a guest whose CPU is run by `accel` (the value of [`ACCEL_ENV`]).
    fn for_accel(accel: Option<&str>) -> Defaults {
        match accel {
            Some("kvm") => Defaults {
                jobs: DEFAULT_JOBS,
                slack: Duration::ZERO,
                why: "KVM: real time",
            },
            _ => Defaults {
                jobs: 1,
                slack: MAX_SLACK,
                why: "software emulation on a virtual clock",
            },
        }
    }
}

/// What the host asks the guest to do.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    /// The directory the run starts in (the host's, so case paths read the same).
    pub cwd: PathBuf,
    /// The arguments of `tcpconform run`, `--out` included.
    pub run: Vec<String>,
    /// Modules to load, in order, from [`MODULE_DIR`].
    pub modules: Vec<String>,
}

/// Why the guest could not run the suite.
#[derive(Debug, thiserror::Error)]
enum GuestError {
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot load module {name}")]
    Module {
        name: String,
        #[source]
        source: nix::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> GuestError {
    let what = what.into();
    move |source| GuestError::Io { what, source }
}

/// Runs as the VM's init: `run_suite` runs `tcpconform run` with the
/// plan's arguments and the guest's [`Defaults`], and returns its exit
/// status. Never returns: the machine is powered off at the end, whatever
/// happened.
pub fn main(run_suite: &dyn Fn(&[String], &Defaults) -> u8) -> ! {
    if std::process::id() != 1 {
        eprintln!("vm-guest is the init of a VM made by `tcpconform vm`; it is not meant to be run by hand");
        std::process::exit(2);
    }
    let results = match run(run_suite) {
        Ok(results) => results,
        Err(e) => {
            let message = crate::engine::chain(&e);
            eprintln!("tcpconform-vm: {message}");
            Results {
                status: 2,
                error: Some(message),
                archive: Vec::new(),
            }
        }
    };
    if let Err(e) = send(&results) {
        eprintln!("tcpconform-vm: cannot send the results: {}", crate::engine::chain(&e));
    }
    // SAFETY: sync takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    // Powering off failed: exiting makes the kernel panic, and `panic=-1` with qemu's -no-reboot ends the VM.
    std::process::exit(1)
}

fn run(run_suite: &dyn Fn(&[String], &Defaults) -> u8) -> Result<Results, GuestError> {
    mount_filesystems()?;
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    println!("{UP_MARKER} (Linux {release})");
    let plan: Plan = serde_json::from_slice(&std::fs::read(PLAN_PATH).map_err(io_err(PLAN_PATH))?)
        .map_err(|e| io_err(PLAN_PATH)(io::Error::other(e)))?;
    for name in &plan.modules {
        load_module(name)?;
    }
    std::env::set_current_dir(&plan.cwd).map_err(io_err(format!("cannot enter {}", plan.cwd.display())))?;
    let defaults = Defaults::for_accel(std::env::var(ACCEL_ENV).ok().as_deref());
    let status = with_console_relay(|| run_suite(&plan.run, &defaults))?;
    let report = Path::new(REPORT_DIR);
    let archive = if report.is_dir() {
        transfer::pack(report).map_err(io_err("cannot pack the report"))?
    } else {
        Vec::new()
    };
    Ok(Results {
        status,
        error: None,
        archive,
    })
}

fn mount_filesystems() -> Result<(), GuestError> {
    use nix::mount::{MsFlags, mount};
    for (fstype, target) in [("proc", "/proc"), ("sysfs", "/sys"), ("devtmpfs", "/dev")] {
        mount(Some(fstype), target, Some(fstype), MsFlags::empty(), None::<&str>)
            .map_err(|e| io_err(format!("cannot mount {fstype} on {target}"))(e.into()))?;
    }
    Ok(())
}

fn load_module(name: &str) -> Result<(), GuestError> {
    let path = Path::new(MODULE_DIR).join(format!("{name}.ko"));
    let file = File::open(&path).map_err(io_err(format!("cannot open {}", path.display())))?;
    let params = CString::default();
    match nix::kmod::finit_module(&file, &params, nix::kmod::ModuleInitFlags::empty()) {
        Ok(()) | Err(nix::Error::EEXIST) => Ok(()),
        Err(source) => Err(GuestError::Module {
            name: name.into(),
            source,
        }),
    }
}

/// Runs `f` with standard output and error going through a pipe to the
/// console, so that the suite does not see a terminal (no progress bar
/// drawn over the serial line).
fn with_console_relay(f: impl FnOnce() -> u8) -> Result<u8, GuestError> {
    let console = io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(io_err("dup stdout"))?;
    let (read, write) = nix::unistd::pipe().map_err(|e| io_err("pipe")(e.into()))?;
    let relay = {
        let console = console.try_clone().map_err(io_err("dup stdout"))?;
        std::thread::spawn(move || {
            let mut out = File::from(console);
            for line in BufReader::new(File::from(read)).split(b'\n').map_while(Result::ok) {
                let _ = out.write_all(&line);
                let _ = out.write_all(b"\n");
            }
        })
    };
    redirect(&write)?;
    drop(write);
    let status = f();
    let _ = io::stdout().flush();
    redirect(&console)?;
    let _ = relay.join();
    Ok(status)
}

/// Points standard output and error at `fd`.
fn redirect(fd: &OwnedFd) -> Result<(), GuestError> {
    for target in [libc::STDOUT_FILENO, libc::STDERR_FILENO] {
        // SAFETY: dup2 on two open descriptors; the standard streams are replaced atomically.
        if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
            return Err(io_err("dup2")(io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Writes the results' frame to the results port, raw (no newline translation).
fn send(results: &Results) -> Result<(), GuestError> {
    use nix::sys::termios::{SetArg, cfmakeraw, tcdrain, tcgetattr, tcsetattr};
    let port = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(RESULTS_PORT)
        .map_err(io_err(format!("cannot open {RESULTS_PORT}")))?;
    let mut attrs = tcgetattr(&port).map_err(|e| io_err("tcgetattr")(e.into()))?;
    cfmakeraw(&mut attrs);
    tcsetattr(&port, SetArg::TCSANOW, &attrs).map_err(|e| io_err("tcsetattr")(e.into()))?;
    (&port)
        .write_all(&transfer::frame(results))
        .map_err(io_err(format!("writing to {RESULTS_PORT}")))?;
    tcdrain(&port).map_err(|e| io_err("tcdrain")(e.into()))
}
