//! The one clock of a case: `CLOCK_REALTIME`, the clock the kernel stamps
//! captured frames with (`SO_TIMESTAMPNS`), so injected frames, captured
//! frames and socket calls all sit on the same timeline.

use std::fmt;
use std::sync::OnceLock;
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

/// How often the kernel's clock ticks (1/HZ), measured once from the
/// jiffies counter `/proc/timer_list` shows (root only): `None` where it
/// cannot be read. The kernel's timers fire on these ticks.
pub fn tick_period() -> Option<Duration> {
    static PERIOD: OnceLock<Option<Duration>> = OnceLock::new();
    *PERIOD.get_or_init(|| {
        let first = jiffies_now()?;
        std::thread::sleep(Duration::from_millis(60));
        let second = jiffies_now()?;
        hz_between(first, second).map(|hz| Duration::from_nanos(1_000_000_000 / u64::from(hz)))
    })
}

/// (jiffies, nanoseconds of CLOCK_MONOTONIC) as `/proc/timer_list` gives them in one read.
fn jiffies_now() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/timer_list").ok()?;
    parse_timer_list(&text)
}

fn parse_timer_list(text: &str) -> Option<(u64, u64)> {
    let now = text
        .lines()
        .find_map(|l| l.strip_prefix("now at ")?.strip_suffix(" nsecs")?.trim().parse().ok())?;
    let jiffies = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("jiffies:")?.trim().parse().ok())?;
    Some((jiffies, now))
}

/// The HZ a kernel is built with, among those Linux offers, that best fits
/// two readings of (jiffies, nanoseconds).
fn hz_between(first: (u64, u64), second: (u64, u64)) -> Option<u32> {
    let ticks = second.0.checked_sub(first.0)? as f64;
    let seconds = second.1.checked_sub(first.1)? as f64 / 1e9;
    if seconds <= 0.0 || ticks <= 0.0 {
        return None;
    }
    let measured = ticks / seconds;
    [100u32, 250, 300, 1000]
        .into_iter()
        .min_by(|a, b| {
            (f64::from(*a) - measured)
                .abs()
                .total_cmp(&(f64::from(*b) - measured).abs())
        })
        .filter(|hz| (f64::from(*hz) - measured).abs() < f64::from(*hz) * 0.2)
}

#[cfg(test)]
mod tick_tests {
    use super::*;

    #[test]
    fn timer_list_gives_jiffies_and_the_time() {
        let text = "Timer List Version: v0.10\nHRTIMER_MAX_CLOCK_BASES: 8\nnow at 13616502316008 nsecs\n\ncpu: 0\n  .idle_jiffies   : 4298296298\njiffies: 4298296356\n";
        assert_eq!(parse_timer_list(text), Some((4298296356, 13616502316008)));
        assert_eq!(parse_timer_list("nothing"), None);
    }

    #[test]
    fn hz_is_the_nearest_linux_offers() {
        assert_eq!(hz_between((1000, 0), (1015, 60_000_000)), Some(250));
        assert_eq!(hz_between((0, 0), (61, 60_000_000)), Some(1000));
        assert_eq!(hz_between((0, 0), (2, 60_000_000)), None);
        assert_eq!(hz_between((10, 0), (5, 60_000_000)), None);
    }
}
