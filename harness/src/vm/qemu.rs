//! Finding qemu, choosing its accelerator, and the machine's command line.
//!
//! The machine has no disk and no network card: the kernel, an initramfs
//! handed over as an inherited memfd, the console on the first serial port
//! (qemu's standard output) and the results on the second (a second memfd).

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::guest::ACCEL_ENV;

/// The qemu binary looked up on `PATH`.
pub const QEMU: &str = "qemu-system-x86_64";
/// Where `scripts/fetch-kernels` installs qemu, relative to the repository.
pub const LOCAL_QEMU: &str = "kernels/qemu/bin/qemu-system-x86_64";
/// The repository this binary was built from.
const REPOSITORY: &str = env!("CARGO_MANIFEST_DIR");

/// How the guest's CPU is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation, in real time.
    Kvm,
    /// Software emulation (qemu's Tiny Code Generator) on a virtual clock:
    /// `-icount shift=0,sleep=off` makes every guest instruction last one
    /// virtual nanosecond and skips the time the guest spends idle, so the
    /// guest's clock, and every timing the suite checks, does not depend on
    /// how busy the host is, and waiting on the kernel's timers takes no
    /// host time. The virtual clock needs one vCPU.
    Tcg,
}

impl Accel {
    /// `kvm` or `tcg`, as qemu and reports name it.
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// Why KVM cannot run an ordinary guest here, or None when it can.
///
/// Opening /dev/kvm is not enough: a host with only `kvm_pvm` (a PVM
/// nested-virtualisation host) creates VMs but runs only PVM guests, and
/// qemu then spins forever. An ordinary guest needs `kvm_intel` or `kvm_amd`.
pub fn kvm_unusable() -> Option<String> {
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        return Some(format!("/dev/kvm: {e}"));
    }
    let vendor = ["kvm_intel", "kvm_amd"]
        .iter()
        .any(|m| Path::new("/sys/module").join(m).exists());
    (!vendor).then(|| "neither kvm_intel nor kvm_amd is loaded".to_string())
}

/// The qemu to run: `explicit` if given, else `qemu-system-x86_64` on
/// `PATH`, else the one `scripts/fetch-kernels` installs under `kernels/`
/// (of the current directory, then of the repository the binary was built
/// from). Returns the places looked at when there is none.
pub fn find(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(path.display().to_string())
        };
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(QEMU))
        .find(|p| p.is_file());
    let built_from = Path::new(REPOSITORY).join(LOCAL_QEMU);
    on_path
        .or_else(|| {
            [PathBuf::from(LOCAL_QEMU), built_from.clone()]
                .into_iter()
                .find(|p| p.is_file())
        })
        .ok_or_else(|| format!("{QEMU} on PATH, {LOCAL_QEMU}, {}", built_from.display()))
}

/// One boot of the guest.
pub struct Machine<'a> {
    /// qemu-system-x86_64.
    pub qemu: &'a Path,
    /// The accelerator.
    pub accel: Accel,
    /// Virtual CPUs under KVM (software emulation has one).
    pub cpus: u32,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// The bzImage.
    pub kernel: &'a Path,
    /// The initramfs, as a descriptor qemu inherits.
    pub initramfs: &'a OwnedFd,
    /// Where the second serial port's bytes go, as a descriptor qemu inherits.
    pub results: &'a OwnedFd,
    /// Extra kernel command line (environment for the guest's init).
    pub init_env: &'a [String],
}

impl Machine<'_> {
    /// The kernel command line: console on ttyS0, quiet, no reboot on
    /// panic, our init, and its environment (parameters the kernel does not
    /// know, with `=` and no `.`, are passed to init as environment).
    pub fn cmdline(&self) -> String {
        let mut line = format!(
            "console=ttyS0 quiet panic=-1 rdinit=/init {ACCEL_ENV}={}",
            self.accel.name()
        );
        for e in self.init_env {
            line.push(' ');
            line.push_str(e);
        }
        line.push_str(" -- vm-guest");
        line
    }

    /// The number of vCPUs the guest gets.
    pub fn vcpus(&self) -> u32 {
        match self.accel {
            Accel::Kvm => self.cpus,
            Accel::Tcg => 1,
        }
    }

    /// The qemu command, with standard input closed and output piped.
    pub fn command(&self) -> Command {
        let fd_path = |fd: &OwnedFd| format!("/dev/fd/{}", fd.as_raw_fd());
        let mut c = Command::new(self.qemu);
        c.args(["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"]);
        match self.accel {
            Accel::Kvm => c.args(["-accel", "kvm", "-cpu", "host"]),
            Accel::Tcg => c.args(["-accel", "tcg", "-cpu", "max", "-icount", "shift=0,sleep=off"]),
        };
        c.args(["-smp", &self.vcpus().to_string(), "-m", &self.memory_mib.to_string()]);
        c.arg("-kernel").arg(self.kernel);
        c.args(["-initrd", &fd_path(self.initramfs)]);
        c.arg("-append").arg(OsString::from(self.cmdline()));
        c.args([
            "-serial",
            "stdio",
            "-serial",
            &format!("file:{}", fd_path(self.results)),
        ]);
        c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    }
}
