//! Reporters: consumers of the engine's [`Event`]s. The terminal reporter
//! shows a run as it goes; the file reporters write a run's report into an
//! output directory.

mod json;
mod terminal;

use std::io;

pub use self::json::{JsonReport, SCHEMA};
pub use self::terminal::Terminal;
use crate::event::Event;

/// Something that consumes the events of a run.
pub trait Reporter {
    /// Takes one event; called in the order events happen.
    fn event(&mut self, event: &Event) -> io::Result<()>;
}

/// The running kernel, as `uname` describes it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Kernel {
    /// `uname -r`
    pub release: String,
    /// `uname -v`
    pub version: String,
    /// `uname -m`
    pub arch: String,
}

impl Kernel {
    /// The kernel this process runs on.
    pub fn running() -> Kernel {
        match nix::sys::utsname::uname() {
            Ok(u) => Kernel {
                release: u.release().to_string_lossy().into_owned(),
                version: u.version().to_string_lossy().into_owned(),
                arch: u.machine().to_string_lossy().into_owned(),
            },
            Err(_) => Kernel {
                release: "unknown".into(),
                version: "unknown".into(),
                arch: std::env::consts::ARCH.into(),
            },
        }
    }
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
