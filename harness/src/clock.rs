//! The one clock of a case: `CLOCK_REALTIME`, the clock the kernel stamps
//! captured frames with (`SO_TIMESTAMPNS`), so injected frames, captured
//! frames and socket calls all sit on the same timeline.

use std::fmt;
use std::time::Duration;

/// A point in time, in nanoseconds since the Unix epoch (`CLOCK_REALTIME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Timestamp {
        let ts =
            nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME).expect("CLOCK_REALTIME is always available");
        Timestamp(ts.tv_sec() * 1_000_000_000 + ts.tv_nsec())
    }

    /// This time plus `d`.
    pub fn after(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)))
    }

    /// This time minus `d`.
    pub fn before(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)))
    }

    /// Nanoseconds from `earlier` to `self` (negative when `self` is earlier).
    pub fn since(self, earlier: Timestamp) -> i64 {
        self.0 - earlier.0
    }

    /// The time left until `self`, zero if it has passed.
    pub fn remaining(self) -> Duration {
        Duration::from_nanos(u64::try_from(self.since(Timestamp::now())).unwrap_or(0))
    }
}

/// When a step happened: one instant for a frame or a probe; for a socket
/// call, from just before the system call to when it was seen to return
/// (or, in the background, to block). What a call makes the kernel do
/// happens inside that span, however late the call's thread was scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// The earliest the step could have happened.
    pub from: Timestamp,
    /// The latest.
    pub to: Timestamp,
}

impl Span {
    /// A single instant.
    pub fn at(t: Timestamp) -> Span {
        Span { from: t, to: t }
    }

    /// The span shifted later by `d`.
    pub fn after(self, d: Duration) -> Span {
        Span {
            from: self.from.after(d),
            to: self.to.after(d),
        }
    }
}

/// A signed offset on a case's timeline, printed as seconds with microsecond precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Offset(pub i64);

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6}s", self.0 as f64 / 1e9)
    }
}
