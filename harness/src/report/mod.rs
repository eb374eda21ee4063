//! Reporters: consumers of the engine's [`Event`]s, and nothing else. The
//! terminal reporter shows a run as it goes; [`ReportDir`] writes a run's
//! report into a directory (`report.json`, `junit.xml`, `index.html`,
//! `ktap.txt`, `pcap/`), every file whole or not at all; [`Ktap`] prints the
//! run's KTAP on standard output. [`compare`] reads reports of several
//! kernels back and shows what differs.

mod atomic;
pub mod compare;
mod html;
mod json;
mod junit;
pub mod ktap;
mod ladder;
mod mismatch;
mod pcap;
pub mod schema;
mod terminal;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use self::atomic::WriteError;
pub use self::pcap::file_name as capture_file_name;
pub use self::schema::{Report, RunInfo, SCHEMA};
pub use self::terminal::Terminal;
use crate::event::{CaseResult, Event, Record};

/// Why a reporter failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Writing to the terminal failed.
    #[error("cannot write to the terminal")]
    Terminal(#[source] io::Error),
    /// A directory of the report could not be made or listed.
    #[error("cannot prepare the report directory {path}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A report file could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Something that consumes the events of a run.
pub trait Reporter {
    /// Takes one event; called in the order events happen.
    fn event(&mut self, event: &Event) -> Result<(), ReportError>;
}

/// The kernel under test: what `uname` says, and the TCP settings every
/// case starts from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Kernel {
    /// `uname -r`
    pub release: String,
    /// `uname -v`
    pub version: String,
    /// `uname -m`
    pub arch: String,
    /// The namespaced TCP knobs as a fresh network namespace has them: the
    /// values every case relies on unless it sets the knob itself (see
    /// [`FRESH_NAMESPACE_KNOBS`]).
    pub sysctls: BTreeMap<String, String>,
}

/// Why the kernel could not be described.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// No network namespace could be made to read the defaults in.
    #[error("cannot make a network namespace to read the kernel's TCP settings")]
    Namespace(#[source] io::Error),
    /// A knob could not be read.
    #[error("cannot read {name}")]
    Read {
        /// The knob.
        name: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// The knobs [`Kernel::sysctls`] holds: every `net.ipv4.tcp_*` the kernel
/// namespaces except `tcp_fastopen_key` (a secret, random per namespace),
/// and these others that shape what a case sees.
pub const FRESH_NAMESPACE_KNOBS: [&str; 7] = [
    "net.core.somaxconn",
    "net.core.rmem_default",
    "net.core.rmem_max",
    "net.core.wmem_default",
    "net.core.wmem_max",
    "net.core.optmem_max",
    "net.ipv4.ip_local_port_range",
];

impl Kernel {
    /// The kernel this process runs on; reads its TCP settings in a
    /// network namespace made for the purpose on a thread of its own.
    pub fn running() -> Result<Kernel, KernelError> {
        let (release, version, arch) = match nix::sys::utsname::uname() {
            Ok(u) => (
                u.release().to_string_lossy().into_owned(),
                u.version().to_string_lossy().into_owned(),
                u.machine().to_string_lossy().into_owned(),
            ),
            Err(_) => ("unknown".into(), "unknown".into(), std::env::consts::ARCH.into()),
        };
        let sysctls = std::thread::scope(|s| {
            s.spawn(fresh_namespace_sysctls)
                .join()
                .unwrap_or_else(|_| Err(KernelError::Namespace(io::Error::other("the reading thread panicked"))))
        })?;
        Ok(Kernel {
            release,
            version,
            arch,
            sysctls,
        })
    }
}

/// Reads [`Kernel::sysctls`]; the calling thread moves to a new network
/// namespace for good, so call it on a thread that ends afterwards.
fn fresh_namespace_sysctls() -> Result<BTreeMap<String, String>, KernelError> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| KernelError::Namespace(e.into()))?;
    let ipv4 = Path::new("/proc/sys/net/ipv4");
    let entries = std::fs::read_dir(ipv4).map_err(|source| KernelError::Read {
        name: "net.ipv4".into(),
        source,
    })?;
    let mut names: BTreeSet<String> = FRESH_NAMESPACE_KNOBS.iter().map(|s| s.to_string()).collect();
    for entry in entries {
        let entry = entry.map_err(|source| KernelError::Read {
            name: "net.ipv4".into(),
            source,
        })?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with("tcp_") && file != "tcp_fastopen_key" {
            names.insert(format!("net.ipv4.{file}"));
        }
    }
    let mut values = BTreeMap::new();
    for name in names {
        match crate::sysctl::read(&name) {
            Ok(v) => {
                values.insert(name, v);
            }
            Err(crate::sysctl::SysctlError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(KernelError::Read {
                    name,
                    source: io::Error::other(e),
                });
            }
        }
    }
    Ok(values)
}

/// Now as an RFC 3339 UTC timestamp (`2026-11-21T12:00:00Z`).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A run's results gathered from its events, and what the report says of
/// the run besides: the kernel, the default tolerance and slack, the date.
struct Collector {
    kernel: Kernel,
    tolerance: Duration,
    slack: Duration,
    date: String,
    results: Vec<CaseResult>,
}

impl Collector {
    fn new(kernel: Kernel, options: &crate::engine::Options) -> Collector {
        Collector {
            kernel,
            tolerance: options.tolerance.unwrap_or(crate::case::DEFAULT_TOLERANCE),
            slack: options.slack,
            date: utc_now(),
            results: Vec::new(),
        }
    }

    /// Takes one event; when the run has finished, its report.
    fn take(&mut self, event: &Event) -> Option<Report> {
        match event {
            Event::RunStarted { .. } => {
                self.date = utc_now();
                self.results.clear();
            }
            Event::CaseStarted { .. } => {}
            Event::CaseFinished(r) => self.results.push((**r).clone()),
            Event::RunFinished { duration } => {
                let info = RunInfo {
                    kernel: self.kernel.clone(),
                    tolerance: self.tolerance,
                    slack: self.slack,
                    date: self.date.clone(),
                    duration: *duration,
                };
                return Some(Report::new(&info, &self.results));
            }
        }
        None
    }
}

/// Writes the report of a run into a directory when the run ends:
/// `pcap/<case>.<family>.pcapng` for every case run with frames, then
/// `junit.xml`, `index.html`, `ktap.txt`, and `report.json` last, so a
/// complete `report.json` means a complete report. Captures of cases this
/// run did not have are removed, so the directory describes one run.
pub struct ReportDir {
    dir: PathBuf,
    run: Collector,
}

impl ReportDir {
    /// A reporter writing into `dir` (made if needed) a run on `kernel`
    /// made with `options` (its default tolerance and slack are recorded).
    pub fn new(dir: PathBuf, kernel: Kernel, options: &crate::engine::Options) -> ReportDir {
        ReportDir {
            dir,
            run: Collector::new(kernel, options),
        }
    }

    fn prepare(path: &Path) -> Result<(), ReportError> {
        let fail = |source| ReportError::Directory {
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(path).map_err(fail)?;
        atomic::sweep(path).map_err(fail)
    }

    fn write_captures(&self) -> Result<(), ReportError> {
        let dir = self.dir.join("pcap");
        ReportDir::prepare(&dir)?;
        let mut written = BTreeSet::new();
        for r in &self.run.results {
            let has_frames = r.exchange.iter().any(|e| match e {
                Record::Frame { .. } => true,
                Record::Call { .. }
                | Record::State { .. }
                | Record::Sysctl { .. }
                | Record::Command { .. }
                | Record::AcceptQueue { .. } => false,
            });
            if !has_frames {
                continue;
            }
            let name = pcap::file_name(&r.id, r.family.name());
            atomic::write(&dir.join(&name), |out| pcap::write(r, &self.run.kernel.release, out))?;
            written.insert(name);
        }
        let listing = std::fs::read_dir(&dir).map_err(|source| ReportError::Directory {
            path: dir.clone(),
            source,
        })?;
        for entry in listing.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".pcapng") && !written.contains(&name) {
                std::fs::remove_file(entry.path()).map_err(|source| ReportError::Directory {
                    path: dir.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }

    fn write(&self, report: &Report) -> Result<(), ReportError> {
        ReportDir::prepare(&self.dir)?;
        self.write_captures()?;
        atomic::write(&self.dir.join("junit.xml"), |out| {
            let xml = junit::render(report).map_err(io::Error::other)?;
            out.write_all(xml.as_bytes())
        })?;
        atomic::write(&self.dir.join("index.html"), |out| {
            out.write_all(html::render(report).as_bytes())
        })?;
        atomic::write(&self.dir.join("ktap.txt"), |out| {
            out.write_all(ktap::render(report).as_bytes())
        })?;
        atomic::write(&self.dir.join("report.json"), |out| json::write(report, out))?;
        Ok(())
    }
}

impl Reporter for ReportDir {
    fn event(&mut self, event: &Event) -> Result<(), ReportError> {
        match self.run.take(event) {
            Some(report) => self.write(&report),
            None => Ok(()),
        }
    }
}

/// Prints the run's KTAP ([`ktap`]) on standard output when it ends: the
/// same text as the report directory's `ktap.txt`.
pub struct Ktap {
    run: Collector,
}

impl Ktap {
    /// A reporter of a run on `kernel` made with `options`.
    pub fn new(kernel: Kernel, options: &crate::engine::Options) -> Ktap {
        Ktap {
            run: Collector::new(kernel, options),
        }
    }
}

impl Reporter for Ktap {
    fn event(&mut self, event: &Event) -> Result<(), ReportError> {
        let Some(report) = self.run.take(event) else {
            return Ok(());
        };
        let mut out = io::stdout().lock();
        out.write_all(ktap::render(&report).as_bytes())
            .and_then(|()| out.flush())
            .map_err(ReportError::Terminal)
    }
}
