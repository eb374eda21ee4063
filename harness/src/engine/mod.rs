//! The engine: runs one case on one family, in a lab of its own, on a
//! thread of its own, and returns the verdict with everything observed.
//!
//! Steps run in order on one timeline. Each step has a time, its *anchor*:
//! when the target received an injected frame or sent one (kernel
//! timestamps), when a state was read, or for a socket call the span from
//! just before the system call to its return (or, for a background call,
//! to when it blocks). A step's `after` counts from the previous anchor; an
//! expected frame must arrive within the step's tolerance of that time.
//! Frames are matched strictly in order per flow: an `expect` compares the
//! flow's next frame from the kernel, whatever it is. Every frame the kernel
//! sent before the last step ended must have been expected: an extra ACK is
//! a failure, not noise. The run loop matches on the step's action with no
//! catch-all arm, so a new kind of step cannot be forgotten.

mod flow;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use self::flow::Flow;
use crate::case::call::quote;
use crate::case::{
    Action, Addresses, Base, Call, Case, DEFAULT_TOLERANCE, Due, IcmpQuote, IcmpSpec, Leftovers, Location, Step,
    Syntax, Target,
};
use crate::clock::{Offset, Span, Timestamp};
use crate::command::{Finished, Priority, Sandbox};
use crate::event::{CaseResult, Direction, Record, Verdict};
use crate::lab::{Lab, LabError, SysctlValue};
use crate::packet::frame::{self, Checksum, Decoded, Endpoints, IpFields};
use crate::packet::icmp::{IcmpMessage, Quote};
use crate::packet::notation::format_segment;
use crate::packet::pattern::{Num, SegmentPattern};
use crate::packet::tcp::{Flags, TcpSegment};
use crate::packet::{Family, PEER_MAC, TARGET_MAC};
use crate::probe::{SocketInfo, TcpState};
use crate::sockets::calls::Context;
use crate::sockets::{Done, Running, Sockets};
use crate::tcpinfo::{Block, BlockFailure, Snapshot};
use crate::wire::{AuxData, Captured, Gso};

/// Settings that apply to every case of a run.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Timing tolerance for cases that give none (default 10 ms).
    pub tolerance: Option<Duration>,
    /// Extra tolerance for a kernel whose timing is noisier than on bare
    /// metal (one under software emulation): added to every step's
    /// tolerance, but never more than that tolerance itself nor [`MAX_SLACK`].
    pub slack: Duration,
}

/// The most slack a run may add to a step's tolerance.
///
/// The closest timings the suite must tell apart are an immediate segment
/// and one sent by the kernel's shortest timer, 40 ms later (TCP_DELACK_MIN,
/// TCP_ATO_MIN). With the default 10 ms tolerance plus 8 ms of slack, the
/// window of an immediate segment (±18 ms) and that of a segment 40 ms
/// later (22 ms to 58 ms) stay apart by 4 ms, a jiffy at HZ=250: no arrival
/// time passes both.
pub const MAX_SLACK: Duration = Duration::from_millis(8);

impl Options {
    /// The timing window of a step whose tolerance is `base`.
    pub fn tolerance(&self, base: Duration) -> Tolerance {
        Tolerance {
            base,
            slack: self.slack.min(base).min(MAX_SLACK),
        }
    }
}

/// A step's timing tolerance: what the case says, plus the run's slack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tolerance {
    /// The case's (or the run's default) tolerance.
    pub base: Duration,
    /// What the run adds (see [`Options::slack`]).
    pub slack: Duration,
}

impl Tolerance {
    /// How far from its due time a step may happen.
    pub fn total(self) -> Duration {
        self.base + self.slack
    }
}

impl std::fmt::Display for Tolerance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(f, "± {}ms", ms(self.total()))?;
        if !self.slack.is_zero() {
            write!(f, " ({}ms + {}ms slack)", ms(self.base), ms(self.slack))?;
        }
        Ok(())
    }
}

/// How long after a window closes the harness still reads frames stamped inside it.
const GRACE: Duration = Duration::from_millis(2);
/// How long after a window closes the harness waits for a late frame, to
/// say how late it was rather than that it never came.
const LATE_LOOKOUT: Duration = Duration::from_millis(500);
/// TTL or hop limit of injected packets, as Linux sends them by default.
const INJECT_TTL: u8 = 64;
/// How long an untimed expectation (packetdrill's `*`) waits for its frame.
const ANY_TIME_LIMIT: Duration = Duration::from_secs(20);

/// Runs `case` on `family` in a fresh lab and returns what happened.
pub fn run(case: &Case, family: Family, options: &Options) -> CaseResult {
    // Waiting for a turn is not part of the case's time.
    let turn = (needs_commands(case) && case.unsupported.is_none()).then(|| {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        COMMAND_CASES.enter(COMMAND_CASES_PER_CPU * cpus)
    });
    let started = Instant::now();
    let tolerance = case.tolerance.or(options.tolerance).unwrap_or(DEFAULT_TOLERANCE);
    let (mut outcome, mut waited) = attempt(case, family, tolerance, options, Company::Shared);
    // A failure that may be the machine's rather than the kernel's - the
    // harness fell behind its own timeline, or only a time was missed - runs
    // again, once, in a new lab, with no other case running; that attempt's
    // result is the case's, and says why it ran twice.
    if let (Verdict::Fail(first), Some(why)) = (&outcome.verdict, outcome.doubt) {
        let first = first.lines().next().unwrap_or_default().to_string();
        // Alone, it needs no turn among the cases running commands; holding
        // one while it waits for the others to end would only hold them up.
        drop(turn);
        let (again, waited_alone) = attempt(case, family, tolerance, options, Company::Alone);
        (outcome, waited) = (again, waited + waited_alone);
        outcome.notes.insert(
            0,
            format!(
                "run twice: the first attempt failed {} ({first}); the second ran alone",
                why.says()
            ),
        );
    }
    let Outcome {
        verdict,
        exchange,
        sysctls,
        notes,
        judged_until,
        ..
    } = outcome;
    CaseResult {
        id: case.id.clone(),
        title: case.title.clone(),
        covers: case.covers.clone(),
        rfc: case.rfc.clone(),
        requirements: case.requirements.clone(),
        deviates: case.deviates.clone(),
        description: case.description.clone(),
        family,
        syntax: case.syntax,
        verdict,
        // Waiting for the others to end, to run alone, is not part of it either.
        duration: started.elapsed().saturating_sub(waited),
        tolerance,
        sysctls,
        exchange,
        notes,
        judged_until,
    }
}

/// Whether an attempt runs beside other cases or alone.
#[derive(Clone, Copy)]
enum Company {
    Shared,
    Alone,
}

/// The attempts in flight, and whether one of them runs alone.
#[derive(Default)]
struct InFlight {
    shared: usize,
    alone: bool,
}

/// Who is running: an attempt that must run alone starts once no other
/// runs, and none starts while it runs. It does not hold back those
/// about to start while it waits: in a suite it runs when the rest are
/// done, rather than stalling every case behind the ones in flight.
struct Attempts {
    in_flight: Mutex<InFlight>,
    changed: Condvar,
}

/// An attempt in flight; its end lets the others on.
struct InFlightAttempt<'a>(&'a Attempts, Company);

impl Attempts {
    const fn new() -> Attempts {
        Attempts {
            in_flight: Mutex::new(InFlight {
                shared: 0,
                alone: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn start(&self, company: Company) -> InFlightAttempt<'_> {
        let mut now = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        let may = |n: &InFlight| match company {
            Company::Shared => !n.alone,
            Company::Alone => !n.alone && n.shared == 0,
        };
        while !may(&now) {
            now = self.changed.wait(now).unwrap_or_else(|e| e.into_inner());
        }
        match company {
            Company::Shared => now.shared += 1,
            Company::Alone => now.alone = true,
        }
        InFlightAttempt(self, company)
    }
}

impl Drop for InFlightAttempt<'_> {
    fn drop(&mut self) {
        let mut now = self.0.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        match self.1 {
            Company::Shared => now.shared -= 1,
            Company::Alone => now.alone = false,
        }
        self.0.changed.notify_all();
    }
}

/// The attempts of this process.
static ATTEMPTS: Attempts = Attempts::new();

/// One run of `case` in a lab of its own, on a thread of its own, and how
/// long it waited for its `company` before it started.
fn attempt(
    case: &Case,
    family: Family,
    tolerance: Duration,
    options: &Options,
    company: Company,
) -> (Outcome, Duration) {
    let asked = Instant::now();
    let _running = ATTEMPTS.start(company);
    let waited = asked.elapsed();
    let outcome = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name(format!("{}::{family}", case.id))
            .spawn_scoped(scope, || run_in_lab(case, family, tolerance, options))
            .map_err(|e| format!("cannot start the case's thread: {e}"))?
            .join()
            .map_err(|panic| {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                format!("internal error: the engine panicked: {what}")
            })
    });
    (outcome.unwrap_or_else(Outcome::error), waited)
}

/// An error with its chain of causes on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(out, ": {s}");
        source = s.source();
    }
    out
}

/// A counting gate: at most `limit` holders at once.
struct Gate {
    holders: Mutex<usize>,
    freed: Condvar,
}

/// One holder of a [`Gate`]; leaving frees the place.
struct Pass<'g>(&'g Gate);

impl Gate {
    const fn new() -> Gate {
        Gate {
            holders: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Waits until fewer than `limit` hold the gate, then holds it.
    fn enter(&self, limit: usize) -> Pass<'_> {
        let mut holders = self.holders.lock().unwrap_or_else(|e| e.into_inner());
        while *holders >= limit {
            holders = self.freed.wait(holders).unwrap_or_else(|e| e.into_inner());
        }
        *holders += 1;
        Pass(self)
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let mut holders = self.0.holders.lock().unwrap_or_else(|e| e.into_inner());
        *holders -= 1;
        self.0.freed.notify_one();
    }
}

/// Labs being built. Building one takes milliseconds of work the kernel
/// serializes (RTNL, namespace creation): a hundred builds at once only queue
/// on its locks, for seconds, while starving the cases already running,
/// whose timing then suffers. So labs are built as many at a time as there
/// are CPUs.
static LAB_BUILDS: Gate = Gate::new();

/// Cases that run commands in flight at once, per CPU. Their commands keep
/// the CPUs busy (a packetdrill script's `./defaults.sh` alone starts two
/// dozen processes, some 40 ms of CPU here), so many of them at once only
/// queue for the CPUs while their timelines suffer. Measured over the
/// kernel's packetdrill selftests on 2 CPUs: see docs/PACKETDRILL.md.
const COMMAND_CASES_PER_CPU: usize = 2;

/// The cases running commands now: see [`COMMAND_CASES_PER_CPU`].
static COMMAND_CASES: Gate = Gate::new();

fn build_lab(case: &Case) -> Result<Lab, LabError> {
    let limit = std::thread::available_parallelism().map_or(1, |n| n.get());
    let _pass = LAB_BUILDS.enter(limit);
    Lab::up(&case.lab, &case.sysctls)
}

/// What a run in a lab gives back.
struct Outcome {
    verdict: Verdict,
    exchange: Vec<Record>,
    sysctls: Vec<SysctlValue>,
    notes: Vec<String>,
    judged_until: Option<i64>,
    /// Why a failure may be the machine's rather than the kernel's.
    doubt: Option<Doubt>,
}

/// Why a failure may say nothing of the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Doubt {
    /// The harness was behind its own timeline (see [`Run::with_lateness`]).
    Behind,
    /// Only a time was missed: a segment or a call's return came outside
    /// its window, and was right otherwise. A paused or busy machine (this
    /// one is a VM whose CPUs its host may take away) does that too.
    Time,
}

impl Doubt {
    fn says(self) -> &'static str {
        match self {
            Doubt::Behind => "while the harness ran behind the case's timeline",
            Doubt::Time => "on a time alone",
        }
    }
}

impl Outcome {
    /// A run that stopped before any step, with this verdict.
    fn stopped(verdict: Verdict) -> Outcome {
        Outcome {
            verdict,
            exchange: Vec::new(),
            sysctls: Vec::new(),
            notes: Vec::new(),
            judged_until: None,
            doubt: None,
        }
    }

    /// A run that went wrong in the harness.
    fn error(message: String) -> Outcome {
        Outcome::stopped(Verdict::Error(message))
    }
}

/// Which part of a case a thread is in, for the CPU scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Building the lab, setting up, winding up, tearing down: work that may wait.
    Background,
    /// The steps: due at their times.
    Timeline,
}

/// Schedules the calling thread for `phase`. In the background it runs only
/// when nothing else wants the CPU (SCHED_IDLE), so that cases running at
/// once keep their timing while others build labs and run setup commands.
/// On its timeline it runs before anything the machine is busy with
/// (SCHED_FIFO, the lowest real-time priority), so that a loaded machine
/// delays a step by microseconds rather than by a time slice of someone
/// else's; the threads it starts for blocking calls inherit that, the
/// commands it runs do not (see [`crate::command`]). The timeline's threads
/// mostly sleep, and the kernel keeps real-time threads from taking more
/// than 95 % of a CPU anyway. Only where the process may raise a thread
/// (CAP_SYS_NICE, not in a user namespace of its own); elsewhere every phase
/// runs at the normal priority.
pub(crate) fn enter(phase: Phase) {
    if crate::lab::privileges() != Some(crate::lab::Privileges::Native) {
        return;
    }
    let (policy, priority) = match phase {
        Phase::Background => (libc::SCHED_IDLE, 0),
        Phase::Timeline => (libc::SCHED_FIFO, 1),
    };
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: sched_setscheduler reads the live param; 0 is the calling thread.
    if unsafe { libc::sched_setscheduler(0, policy, &param) } != 0 {
        let normal = libc::sched_param { sched_priority: 0 };
        // SAFETY: as above.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &normal) };
    }
}

fn run_in_lab(case: &Case, family: Family, tolerance: Duration, options: &Options) -> Outcome {
    if let Some(why) = &case.unsupported {
        return Outcome::stopped(Verdict::Skip(format!("unsupported: {why}")));
    }
    let _placed = crate::cpu::place();
    precise_sleeps();
    enter(Phase::Background);
    let lab = match build_lab(case) {
        Ok(lab) => lab,
        Err(LabError::Sysctl(e)) if e.is_kernel_property() => return Outcome::stopped(Verdict::Skip(e.to_string())),
        Err(e) => return Outcome::error(format!("cannot build the lab: {}", chain(&e))),
    };
    let cwd = case.path.parent().map(Path::to_path_buf).unwrap_or_default();
    let cwd = if cwd.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        cwd
    };
    let sandbox = if needs_commands(case) {
        match Sandbox::new(&cwd) {
            Ok(s) => Some(s),
            Err(e) => return Outcome::error(format!("cannot make the case's sandbox: {}", chain(&e))),
        }
    } else {
        None
    };
    let context = Context {
        family,
        addresses: case.lab.addresses(family),
        t0: Timestamp::now(),
        tolerance,
        tmp: sandbox.as_ref().map(|s| s.dir().join("tmp")),
        cwd,
    };
    let mut run = Run {
        case,
        family,
        addrs: case.lab.addresses(family),
        sockets: Sockets::new(context),
        flows: case.flows.iter().map(Flow::new).collect(),
        frames: Vec::new(),
        records: Vec::new(),
        pending: HashMap::new(),
        t0: Timestamp::now(),
        anchor: Span::at(Timestamp::now()),
        step_starts: Vec::new(),
        step_times: Vec::new(),
        base: (Span::at(Timestamp::now()), String::new()),
        late: None,
        doubt: None,
        judged_until: None,
        tolerance,
        options: options.clone(),
        lab,
        sandbox,
        snapshots: Vec::new(),
        notes: Vec::new(),
        last_due: Span::at(Timestamp::now()),
        ticks: None,
    };
    run.t0 = Timestamp::now();
    if let Err(stop) = run.set_up() {
        let verdict = match stop {
            Stop::Fail(m) => Verdict::Fail(m),
            Stop::Error(m) => Verdict::Error(m),
        };
        return run.finish(verdict);
    }
    enter(Phase::Timeline);
    if case.rules.start_on_tick {
        // Measured once, before the timeline starts on a tick.
        let period = crate::clock::tick_period();
        run.ticks = wait_for_tick().zip(period).map(|(edge, period)| Ticks { edge, period });
    }
    // What setup did is placed before the timeline's start.
    let shift = Timestamp::now().since(run.t0);
    run.t0 = run.t0.after(Duration::from_nanos(u64::try_from(shift).unwrap_or(0)));
    for r in &mut run.records {
        if let Record::Command { at, returned, .. } = r {
            *at -= shift;
            *returned -= shift;
        }
    }
    run.sockets.context_mut().t0 = run.t0;
    run.anchor = Span::at(run.t0);
    run.last_due = run.anchor;
    let verdict = match run.steps() {
        Ok(()) => Verdict::Pass,
        Err(Stop::Fail(m)) => match run.with_lateness(&m) {
            Some(noted) => {
                run.doubt = Some(Doubt::Behind);
                Verdict::Fail(noted)
            }
            None => Verdict::Fail(m),
        },
        Err(Stop::Error(m)) => Verdict::Error(m),
    };
    let verdict = run.wind_up(verdict);
    run.finish(verdict)
}

/// How far after a tick of the kernel's clock a timeline starts (packetdrill's offset).
const AFTER_TICK: Duration = Duration::from_micros(250);

/// Waits until just after the kernel's clock ticks: times(2) counts in
/// clock ticks that advance with jiffies, so its change marks a jiffy's start.
/// Returns when the tick was seen, or `None` when none was within 50 ms.
fn wait_for_tick() -> Option<Timestamp> {
    // SAFETY: times(2) with a NULL buffer only returns the count.
    let clock = || unsafe { libc::times(std::ptr::null_mut()) };
    let start = clock();
    let give_up = Timestamp::now().after(Duration::from_millis(50));
    // Short sleeps, not a spin: the thread may run at real-time priority.
    let mut seen = Timestamp::now();
    while clock() == start {
        if seen >= give_up {
            sleep_until(seen.after(AFTER_TICK));
            return None;
        }
        std::thread::sleep(Duration::from_micros(20));
        seen = Timestamp::now();
    }
    sleep_until(seen.after(AFTER_TICK));
    Some(seen)
}

/// How long before a step's time the harness stops sleeping and watches
/// the clock: a wake-up from sleep here comes tens of microseconds late.
const WATCH: Duration = Duration::from_micros(50);

/// Makes the calling thread's sleeps end when asked, not up to the
/// kernel's default 50 µs timer slack later.
fn precise_sleeps() {
    // SAFETY: PR_SET_TIMERSLACK takes a value and touches no memory.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
}

/// Whether a case runs commands (shell, Python) and so needs a sandbox;
/// packetdrill scripts always get one, for the files their open() calls find in /tmp.
fn needs_commands(case: &Case) -> bool {
    case.syntax == Syntax::Packetdrill
        || case.setup.is_some()
        || case.cleanup.is_some()
        || case
            .steps
            .iter()
            .any(|s| matches!(s.action, Action::Shell(_) | Action::Code { .. }))
}

/// How long a setup or cleanup command may run.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a command step may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the Python program of a case's code blocks may run.
const CODE_TIMEOUT: Duration = Duration::from_secs(30);

/// A finished command's standard error, then its output, a line each (at most 20).
fn output_lines(finished: &Finished) -> Vec<String> {
    let mut lines: Vec<String> = finished
        .stderr
        .text
        .lines()
        .chain(finished.stdout.text.lines())
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("| {l}"))
        .collect();
    if lines.len() > 20 {
        lines.drain(..lines.len() - 20);
    }
    lines
}

/// Why the steps stopped before the end.
enum Stop {
    Fail(String),
    Error(String),
}

/// A frame seen during the run, in either direction.
struct Frame {
    at: Timestamp,
    direction: Direction,
    bytes: Vec<u8>,
    flow: Option<usize>,
    /// The segment with relative numbers, when it belongs to a flow.
    segment: Option<TcpSegment>,
    /// Its IP header's fields, when it is TCP.
    ip: Option<IpFields>,
    /// The kernel's ISN (absolute), when this is a SYN from the kernel.
    kernel_isn: Option<u32>,
    text: String,
    checksum_ok: bool,
    consumed: bool,
}

/// What an `expect` step asks of the kernel's next segment on a flow.
struct Expected<'a> {
    flow: usize,
    text: &'a str,
    pattern: &'a SegmentPattern,
    payload: Option<&'a [u8]>,
    new_isn: bool,
    ts_val: Option<u32>,
}

/// A background call waiting for its `await`.
struct Pending<'c> {
    running: Running,
    call: &'c Call,
    text: &'c str,
    sigpipe: Option<bool>,
}

struct Run<'c> {
    case: &'c Case,
    family: Family,
    addrs: Addresses,
    lab: Lab,
    sockets: Sockets,
    flows: Vec<Flow>,
    frames: Vec<Frame>,
    records: Vec<Record>,
    pending: HashMap<String, Pending<'c>>,
    /// When the first step started: time zero of the exchange.
    t0: Timestamp,
    /// The previous step's time.
    anchor: Span,
    /// Each step and the anchor it started from, for naming frames in failures.
    step_starts: Vec<(&'c Step, Timestamp)>,
    /// Each step that has run and its time: for `since`, and for placing
    /// frames no step expected.
    step_times: Vec<(&'c Step, Span)>,
    /// What the current step's `after` counts from: the previous step's
    /// time, or a named step's (`since`), and how messages call it.
    base: (Span, String),
    /// The last step the harness performed more than half its tolerance late: its
    /// index, where it is written, and by how much.
    late: Option<(usize, Location, Duration)>,
    /// Why the failure may be the machine's: set by the step that failed
    /// on a time alone, or when `late` applies to the failure.
    doubt: Option<Doubt>,
    /// When the last step ended: frames until then are judged.
    judged_until: Option<Timestamp>,
    /// The case's default tolerance.
    tolerance: Duration,
    options: Options,
    /// Where the case's commands run, when it has any.
    sandbox: Option<Sandbox>,
    /// The code blocks' snapshots, with the step each belongs to.
    snapshots: Vec<(&'c Step, String, Snapshot)>,
    /// What the run did differently from what the case asks.
    notes: Vec<String>,
    /// When the previous step was due (its time, when it was untimed).
    last_due: Span,
    /// The kernel's clock ticks, where the timeline started on one.
    ticks: Option<Ticks>,
}

/// The ticks of the kernel's clock (jiffies): one seen, and how often they come.
#[derive(Clone, Copy, Debug)]
struct Ticks {
    edge: Timestamp,
    period: Duration,
}

/// How soon after a tick a segment a kernel timer sent at that tick leaves:
/// the timer softirq runs as the tick's interrupt returns.
const TIMER_SEND: Duration = Duration::from_micros(500);

impl Ticks {
    /// Whether a segment at `at`, later than `hi`, is one a kernel timer
    /// due at the tick before sent a tick late: it left just after a tick,
    /// and one tick earlier it would have been on time. On a machine whose
    /// CPUs are busy, the kernel sometimes runs a CPU's timers at the tick
    /// after the one they are due at (the tick comes before that CPU sees
    /// jiffies move): measured here, a FIN's delayed ACK went out a tick
    /// late in about half the runs with both CPUs busy, never with them idle.
    fn one_late(&self, at: Timestamp, lo: Timestamp, hi: Timestamp) -> bool {
        let period = i64::try_from(self.period.as_nanos()).unwrap_or(i64::MAX);
        if period <= 0 {
            return false;
        }
        let after_tick = at.since(self.edge).rem_euclid(period);
        let earlier = Timestamp(at.0 - period);
        after_tick <= i64::try_from(TIMER_SEND.as_nanos()).unwrap_or(0) && earlier >= lo && earlier <= hi
    }
}

/// Waits until `t`: asleep until shortly before, then watching the clock.
fn sleep_until(t: Timestamp) {
    let left = t.remaining();
    if left > WATCH {
        std::thread::sleep(left - WATCH);
    }
    while Timestamp::now() < t {
        std::hint::spin_loop();
    }
}

impl<'c> Run<'c> {
    fn rel(&self, t: Timestamp) -> Offset {
        Offset(t.since(self.t0))
    }

    fn steps(&mut self) -> Result<(), Stop> {
        let case = self.case;
        for step in &case.steps {
            self.step_starts.push((step, self.anchor.from));
            self.base = match step.base {
                Base::Step(i) => (
                    self.step_times[i].1,
                    format!("step `{}`", case.steps[i].name.as_deref().unwrap_or_default()),
                ),
                Base::Start => (Span::at(self.t0), "the start".into()),
                Base::Previous => (self.anchor, "the previous step".into()),
                Base::PreviousDue => (self.last_due, "the previous step's due time".into()),
            };
            let due = step.due.span().map(|(a, b)| Span {
                from: self.base.0.from.after(a),
                to: self.base.0.to.after(b),
            });
            let tolerance = self.options.tolerance(self.step_tolerance(step, due));
            let outcome = self.run_step(step, due, tolerance);
            self.last_due = due.unwrap_or(self.anchor);
            let due_by = due.map_or(self.anchor.from, |d| d.to);
            let late = Duration::from_nanos(u64::try_from(self.anchor.from.since(due_by)).unwrap_or(0));
            // Half the tolerance: a step that late leaves too little for the
            // kernel's answer to it to be judged on the kernel alone.
            if step.action.harness_acts() && late > tolerance.total() / 2 {
                self.late = Some((self.step_starts.len() - 1, step.location.clone(), late));
            }
            outcome?;
            self.step_times.push((step, self.anchor));
        }
        let end = Timestamp::now();
        self.judged_until = Some(end);
        self.pull_ready()?;
        match self.case.rules.leftovers {
            Leftovers::Fail => self.check_leftovers(end),
            Leftovers::Unjudged => Ok(()),
        }
    }

    /// A step's tolerance: its own or the case's, and at least the case's
    /// share of the step's delay from the previous step (packetdrill's
    /// `--tolerance_percent`: a timer 1 s away is allowed more than 4 ms).
    fn step_tolerance(&self, step: &Step, due: Option<Span>) -> Duration {
        let base = step.tolerance.unwrap_or(self.tolerance);
        let percent = self.case.rules.tolerance_percent;
        match due {
            Some(due) if percent > 0.0 => {
                let delay = Duration::from_nanos(u64::try_from(due.from.since(self.anchor.from)).unwrap_or(0));
                base.max(delay.mul_f64(percent / 100.0))
            }
            _ => base,
        }
    }

    /// Runs one step's action, due at `due` (`None`: whenever it happens).
    fn run_step(&mut self, step: &'c Step, timed: Option<Span>, tolerance: Tolerance) -> Result<(), Stop> {
        let due = timed.unwrap_or(self.anchor);
        match &step.action {
            Action::Call {
                text,
                call,
                background,
                sigpipe,
                timeout,
            } => {
                sleep_until(due.to);
                self.call(step, text, call, *background, *sigpipe, *timeout)?;
            }
            Action::Await { socket, timeout } => self.await_call(step, socket, *timeout, due, tolerance)?,
            Action::Inject {
                flow,
                text: _,
                pattern,
                payload,
                checksum,
                ts_ecr,
            } => {
                sleep_until(due.to);
                self.inject(step, *flow, pattern, payload.as_deref(), *checksum, *ts_ecr)?;
            }
            Action::InjectIcmp { flow, text, icmp } => {
                sleep_until(due.to);
                self.inject_icmp(step, *flow, text, icmp)?;
            }
            Action::Shell(text) => {
                sleep_until(due.to);
                let finished = self.command(step, text, COMMAND_TIMEOUT, Priority::Timeline)?;
                self.anchor = Span {
                    from: finished.started,
                    to: finished.ended,
                };
                if !finished.success() {
                    return Err(self.fail(
                        step,
                        &format!("`{}` {}", crate::event::one_line(text), finished.exit),
                        &output_lines(&finished),
                    ));
                }
            }
            Action::Code { text, socket } => {
                sleep_until(due.to);
                self.snapshot(step, text, socket.as_deref())?;
            }
            Action::Expect {
                flow,
                text,
                pattern,
                payload,
                new_isn,
                ts_val,
            } => {
                let wanted = Expected {
                    flow: *flow,
                    text,
                    pattern,
                    payload: payload.as_deref(),
                    new_isn: *new_isn,
                    ts_val: *ts_val,
                };
                self.expect(step, &wanted, timed, tolerance)?;
            }
            Action::ExpectNothing { flow, during } => self.expect_nothing(step, *flow, due.to, *during)?,
            Action::State { target, state } => {
                sleep_until(due.to);
                self.state(step, target, *state, tolerance)?;
            }
            Action::AcceptQueue { socket, len, limit } => {
                sleep_until(due.to);
                self.accept_queue(step, socket, *len, *limit, tolerance)?;
            }
            Action::ReadSysctl(name) => {
                sleep_until(due.to);
                let at = Timestamp::now();
                let value = crate::sysctl::read(name).ok();
                self.records.push(Record::Sysctl {
                    at: at.since(self.t0),
                    name: name.clone(),
                    value,
                });
                self.anchor = Span::at(at);
            }
            Action::Wait(d) => {
                let until = self.anchor.to.after(*d);
                sleep_until(until);
                self.anchor = Span::at(until);
            }
        }
        Ok(())
    }

    /// Runs a shell command in the case's sandbox and records it.
    fn command(&mut self, step: &Step, text: &str, timeout: Duration, priority: Priority) -> Result<Finished, Stop> {
        let Some(sandbox) = &self.sandbox else {
            return Err(self.error(step, "the case has no sandbox for commands"));
        };
        let finished = sandbox.shell_with(text, timeout, priority).map_err(|e| {
            self.error(
                step,
                &format!("cannot run `{}`: {}", crate::event::one_line(text), chain(&e)),
            )
        })?;
        self.records.push(Record::Command {
            at: finished.started.since(self.t0),
            returned: finished.ended.since(self.t0),
            text: text.to_string(),
            status: finished.exit.to_string(),
            output: finished.stderr.to_string(),
        });
        Ok(finished)
    }

    /// Takes a code block's snapshot of a socket, for the end of the run.
    fn snapshot(&mut self, step: &'c Step, text: &str, socket: Option<&str>) -> Result<(), Stop> {
        let at = Timestamp::now();
        let Some(name) = socket else {
            return Err(self.fail(
                step,
                "no socket to look at: the socket under test has no descriptor (packetdrill: no socket to use for code)",
                &[],
            ));
        };
        let Some(fd) = self.sockets.raw_fd(name) else {
            return Err(self.fail(step, &format!("socket {name} is not open to look at"), &[]));
        };
        let snapshot = crate::tcpinfo::snapshot(fd)
            .map_err(|e| self.fail(step, &format!("cannot read socket {name}'s tcp_info: {e}"), &[]))?;
        self.snapshots.push((step, text.to_string(), snapshot));
        self.anchor = Span::at(at);
        Ok(())
    }

    /// Runs the setup command and selects the case's congestion control.
    fn set_up(&mut self) -> Result<(), Stop> {
        let case = self.case;
        if let Some(setup) = &case.setup {
            let step = Step {
                location: setup.location.clone(),
                name: None,
                due: Due::Now,
                base: Base::Previous,
                tolerance: None,
                action: Action::Shell(setup.text.clone()),
            };
            let finished = self.command(&step, &setup.text, SETUP_TIMEOUT, Priority::Background)?;
            if !finished.success() {
                let mut out = format!(
                    "{}: error executing the setup command: {}",
                    setup.location, finished.exit
                );
                for line in output_lines(&finished) {
                    let _ = write!(out, "\n    {line}");
                }
                return Err(Stop::Fail(out));
            }
        }
        if let Some(wanted) = &case.congestion_control {
            let name = "net.ipv4.tcp_congestion_control";
            let current = crate::sysctl::read(name).unwrap_or_default();
            if current != *wanted {
                self.sockets.select_congestion(wanted);
                self.notes.push(format!(
                    "{name} is {current} in the lab, not {wanted} (the host does not allow {wanted} as a namespace's default): every socket selects {wanted} with TCP_CONGESTION"
                ));
            }
        }
        Ok(())
    }

    /// After the steps: the cleanup command, whatever happened once setup
    /// succeeded, then the code blocks, if the steps passed.
    fn wind_up(&mut self, verdict: Verdict) -> Verdict {
        enter(Phase::Background);
        let case = self.case;
        let mut verdict = verdict;
        if let Some(cleanup) = &case.cleanup {
            let step = Step {
                location: cleanup.location.clone(),
                name: None,
                due: Due::Now,
                base: Base::Previous,
                tolerance: None,
                action: Action::Shell(cleanup.text.clone()),
            };
            match self.command(&step, &cleanup.text, SETUP_TIMEOUT, Priority::Background) {
                Ok(f) if f.success() => {}
                Ok(f) if verdict == Verdict::Pass => {
                    let mut out = format!("{}: error executing the cleanup command: {}", cleanup.location, f.exit);
                    for line in output_lines(&f) {
                        let _ = write!(out, "\n    {line}");
                    }
                    verdict = Verdict::Fail(out);
                }
                Ok(_) => {}
                Err(Stop::Fail(m) | Stop::Error(m)) if verdict == Verdict::Pass => verdict = Verdict::Error(m),
                Err(_) => {}
            }
        }
        if verdict != Verdict::Pass || self.snapshots.is_empty() {
            return verdict;
        }
        let blocks: Vec<Block<'_>> = self
            .snapshots
            .iter()
            .map(|(step, code, snapshot)| Block {
                location: &step.location,
                code,
                snapshot,
            })
            .collect();
        let program = crate::tcpinfo::program(&blocks);
        let Some(sandbox) = &self.sandbox else {
            return Verdict::Error("the case has no sandbox for its code blocks".into());
        };
        let finished = match sandbox.python_with(&program, CODE_TIMEOUT, Priority::Background) {
            Ok(f) => f,
            Err(e) => return Verdict::Error(format!("cannot run the code blocks: {}", chain(&e))),
        };
        // What the blocks printed is part of the exchange, as a command's output is.
        let printed: Vec<&str> = finished
            .stdout
            .text
            .lines()
            .filter(|l| !crate::tcpinfo::is_verdict_line(l))
            .chain(finished.stderr.text.lines())
            .collect();
        self.records.push(Record::Command {
            at: finished.started.since(self.t0),
            returned: finished.ended.since(self.t0),
            text: format!(
                "python3: the {} code block(s), with the socket's values at their times",
                blocks.len()
            ),
            status: finished.exit.to_string(),
            output: printed.join("\n"),
        });
        match crate::tcpinfo::verdict(&finished) {
            Ok(()) => Verdict::Pass,
            Err(BlockFailure::Block {
                index,
                reason,
                traceback,
            }) => {
                let location = &self.snapshots[index].0.location;
                let mut out = format!("{location}: code: {reason}");
                for line in traceback.lines().filter(|l| !l.trim().is_empty()) {
                    let _ = write!(out, "\n    {line}");
                }
                Verdict::Fail(out)
            }
            Err(e @ BlockFailure::Program { .. }) => Verdict::Error(e.to_string()),
        }
    }

    /// A failure message, with a note when the harness itself fell behind
    /// the case's timeline at the failing step or the one before it: a
    /// stalled machine, not the kernel, may be why.
    /// `None` when it did not fall behind there.
    fn with_lateness(&self, message: &str) -> Option<String> {
        let failing = self.step_starts.len().saturating_sub(1);
        match &self.late {
            Some((index, location, late)) if index + 1 >= failing => Some(format!(
                "{message}\n  note: the harness ran the step at {location} {} after it was due; on a loaded or paused machine a case can fail without the kernel being at fault",
                Offset(i64::try_from(late.as_nanos()).unwrap_or(i64::MAX))
            )),
            _ => None,
        }
    }

    /// A failure at `step`, with the frames since the step before it.
    fn fail(&self, step: &Step, headline: &str, details: &[String]) -> Stop {
        let mut out = format!("{}: {}: {headline}", step.location, step.action.keyword());
        for d in details {
            let _ = write!(out, "\n    {d}");
        }
        let since = self.step_starts.last().map_or(self.t0, |(_, a)| *a);
        let recent: Vec<&Frame> = self.frames.iter().filter(|f| f.at >= since || !f.consumed).collect();
        if recent.is_empty() {
            out.push_str("\n  no frame on the wire since the previous step");
        } else {
            out.push_str("\n  frames since the previous step:");
            for f in recent {
                let _ = write!(out, "\n    {}", self.frame_record(f));
            }
        }
        Stop::Fail(out)
    }

    fn frame_record(&self, f: &Frame) -> Record {
        Record::Frame {
            at: f.at.since(self.t0),
            stamp: f.at,
            direction: f.direction,
            flow: f.flow.map(|i| self.flows[i].name.clone()),
            text: f.text.clone(),
            checksum_ok: f.checksum_ok,
            bytes: f.bytes.clone(),
        }
    }

    fn error(&self, step: &Step, what: &str) -> Stop {
        Stop::Error(format!("{}: {what}", step.location))
    }

    /// Files a captured frame under its flow, mapping it to relative numbers.
    /// Frames to the kernel are the harness's own injections, recorded by `inject`.
    fn take_in(&mut self, (captured, aux): (Captured, AuxData)) {
        let Captured { at, bytes, from_kernel } = captured;
        if !from_kernel {
            return;
        }
        // A frame the kernel left to the link to checksum (CHECKSUM_PARTIAL,
        // on a NIC-like link) carries a partial sum, not a wrong one.
        let offloaded = aux.checksum_not_ready();
        let mut ip = None;
        let mut kernel_isn = None;
        let (flow, segment, text, checksum_ok) = match frame::decode(&bytes) {
            Decoded::Tcp(t) => {
                let ours = t.src == self.addrs.target && t.dst == self.addrs.peer;
                let owner = self
                    .flows
                    .iter()
                    .position(|f| ours && f.owns(t.segment.src_port, t.segment.dst_port));
                let ok = (t.checksum_ok || offloaded) && t.ip_checksum_ok;
                ip = Some(t.ip);
                match owner {
                    Some(i) => {
                        if t.segment.flags.contains(Flags::SYN) {
                            kernel_isn = Some(t.segment.seq);
                        }
                        let rel = self.flows[i].receive(&t.segment);
                        (Some(i), Some(rel.clone()), format_segment(&rel), ok)
                    }
                    None => {
                        let text = format!(
                            "{}.{} > {}.{}: {}",
                            t.src,
                            t.segment.src_port,
                            t.dst,
                            t.segment.dst_port,
                            format_segment(&t.segment)
                        );
                        (None, None, text, ok)
                    }
                }
            }
            Decoded::Other(what) => (None, None, what, true),
            Decoded::Malformed(why) => (
                None,
                None,
                format!("unparseable frame ({} bytes): {why}", bytes.len()),
                false,
            ),
        };
        self.frames.push(Frame {
            at,
            direction: Direction::FromKernel,
            bytes,
            flow,
            segment,
            ip,
            kernel_isn,
            text,
            checksum_ok,
            consumed: false,
        });
    }

    /// Reads every frame the socket already holds.
    fn pull_ready(&mut self) -> Result<(), Stop> {
        while let Some(c) = self
            .lab
            .wire
            .try_capture_aux()
            .map_err(|e| Stop::Error(format!("reading the wire: {e}")))?
        {
            self.take_in(c);
        }
        Ok(())
    }

    /// Reads frames until `until` or until `stop` says a frame is the one wanted.
    fn pull_until(&mut self, until: Timestamp, stop: impl Fn(&Frame) -> bool) -> Result<Option<usize>, Stop> {
        if let Some(i) = self.frames.iter().position(&stop) {
            return Ok(Some(i));
        }
        loop {
            match self
                .lab
                .wire
                .capture_aux(until)
                .map_err(|e| Stop::Error(format!("reading the wire: {e}")))?
            {
                Some(c) => {
                    let before = self.frames.len();
                    self.take_in(c);
                    if self.frames.len() > before && stop(self.frames.last().expect("just pushed")) {
                        return Ok(Some(self.frames.len() - 1));
                    }
                }
                None => return Ok(None),
            }
        }
    }

    fn inject(
        &mut self,
        step: &Step,
        flow: usize,
        pattern: &SegmentPattern,
        payload: Option<&[u8]>,
        checksum: Checksum,
        ts_ecr: Option<u32>,
    ) -> Result<(), Stop> {
        self.pull_ready()?;
        let mapped;
        let pattern = match ts_ecr {
            Some(script) if pattern.flags.contains(Flags::ACK) => match self.flows[flow].map_ts_ecr(script) {
                Some(live) => {
                    mapped = flow::with_ts_ecr(pattern, live);
                    &mapped
                }
                None => {
                    return Err(self.fail(
                        step,
                        &format!(
                            "cannot send TS ecr {script}: no segment the kernel sent on flow `{}` matched an expectation with TS val {script}",
                            self.flows[flow].name
                        ),
                        &[],
                    ));
                }
            },
            _ => pattern,
        };
        let mss = self.case.lab.mss(self.family);
        let f = &mut self.flows[flow];
        if f.kernel_port.is_none() {
            return Err(self.fail(
                step,
                &format!(
                    "flow `{}` has no kernel port yet: give `kernel_port` or expect a segment from the kernel first",
                    self.flows[flow].name
                ),
                &[],
            ));
        }
        let ctx = f.inject_context(mss);
        let rel = match pattern.to_segment(&f.fill(), &ctx, payload) {
            Ok(rel) => rel,
            Err(e) => return Err(self.fail(step, &e.to_string(), &[])),
        };
        let abs = f.send(&rel);
        let ends = Endpoints {
            src_mac: PEER_MAC,
            dst_mac: TARGET_MAC,
            src: self.addrs.peer,
            dst: self.addrs.target,
        };
        let ip = pattern.ip_fields(INJECT_TTL);
        let bytes = frame::build_with_ip(&ends, &ip, &abs, checksum)
            .map_err(|e| self.error(step, &format!("building the frame: {e}")))?;
        // Data beyond what the link takes in one frame, or with a GSO size
        // to arrive in, goes as one GSO frame (TCP sees one segment).
        let data = abs.payload.len();
        let gso = match self.case.rules.gso_size {
            Some(size) if data > usize::from(size) => Some(size),
            _ if data > 0 && bytes.len() > self.case.lab.mtu as usize + 14 => u16::try_from(mss).ok(),
            _ => None,
        };
        let gso = gso.map_or(Gso::None, |size| Gso::Tcp {
            ipv6: self.family == Family::Ipv6,
            header_len: u16::try_from(bytes.len() - data).unwrap_or(u16::MAX),
            size,
        });
        self.lab
            .wire
            .inject_gso(&bytes, gso)
            .map_err(|e| self.error(step, &format!("injecting the frame: {e}")))?;
        let at = self.sent_at(step)?;
        self.frames.push(Frame {
            at,
            direction: Direction::ToKernel,
            bytes,
            flow: Some(flow),
            text: format_segment(&rel),
            segment: Some(rel),
            ip: Some(ip),
            kernel_isn: None,
            checksum_ok: checksum == Checksum::Auto,
            consumed: true,
        });
        self.anchor = Span::at(at);
        Ok(())
    }

    fn inject_icmp(&mut self, step: &Step, flow: usize, text: &str, icmp: &IcmpSpec) -> Result<(), Stop> {
        self.pull_ready()?;
        let f = &self.flows[flow];
        let mut message = IcmpMessage::new(icmp.kind, icmp.code);
        if let Some(mtu) = icmp.mtu {
            message = message
                .with_mtu(self.family, mtu)
                .map_err(|e| self.fail(step, &format!("the ICMP message: {e}"), &[]))?;
        }
        if let Some(id) = icmp.id {
            message = message.with_echo_id(id);
        }
        // Linux reads only the quoted headers: the zeros after them are cut to
        // what the link takes (packetdrill's tun takes larger packets than its MTU).
        let headers = match self.family {
            Family::Ipv4 => 20 + 8 + 20 + 8,
            Family::Ipv6 => 40 + 8 + 40 + 8,
        };
        let room = self.case.lab.mtu.saturating_sub(headers);
        let quote = match icmp.quote {
            IcmpQuote::Tcp { seq, len } => Quote::Tcp {
                src_port: f.kernel_port.unwrap_or(0),
                dst_port: f.peer_port,
                seq: f.kernel_isn.wrapping_add(seq),
                len: len.min(room) as u16,
            },
            IcmpQuote::Raw { len } => Quote::Raw(len.min(room + 28) as u16),
        };
        let ends = Endpoints {
            src_mac: PEER_MAC,
            dst_mac: TARGET_MAC,
            src: self.addrs.peer,
            dst: self.addrs.target,
        };
        let ip = IpFields {
            ttl: INJECT_TTL,
            ..IpFields::default()
        };
        let bytes = frame::build_icmp_with_ip(&ends, &ip, &message, &quote)
            .map_err(|e| self.error(step, &format!("building the ICMP message: {e}")))?;
        self.lab
            .wire
            .inject(&bytes)
            .map_err(|e| self.error(step, &format!("injecting the frame: {e}")))?;
        let at = self.sent_at(step)?;
        self.frames.push(Frame {
            at,
            direction: Direction::ToKernel,
            bytes,
            flow: Some(flow),
            segment: None,
            ip: Some(ip),
            kernel_isn: None,
            text: text.to_string(),
            checksum_ok: true,
            consumed: true,
        });
        self.anchor = Span::at(at);
        Ok(())
    }

    /// The kernel's timestamp of a frame just injected, read from its capture;
    /// frames from the kernel captured meanwhile are filed as usual.
    fn sent_at(&mut self, step: &Step) -> Result<Timestamp, Stop> {
        let deadline = Timestamp::now().after(Duration::from_secs(1));
        loop {
            match self.lab.wire.capture_aux(deadline) {
                // The harness is the only sender to the kernel: the next frame that way is this one
                // (a GSO frame arrives as the one segment GRO makes of its pieces).
                Ok(Some((c, _))) if !c.from_kernel => return Ok(c.at),
                Ok(Some(c)) => self.take_in(c),
                Ok(None) => return Err(self.error(step, "the injected frame was not seen leaving the harness's end")),
                Err(e) => return Err(self.error(step, &format!("reading the wire: {e}"))),
            }
        }
    }

    fn window(&self, due: Span, tolerance: Tolerance) -> String {
        let (base, name) = &self.base;
        let at = if due.from == due.to {
            format!("{}", self.rel(due.from))
        } else {
            format!("{} to {}", self.rel(due.from), self.rel(due.to))
        };
        format!(
            "{} after {name} (at {at}) {tolerance}",
            Offset(due.from.since(base.from))
        )
    }

    /// When `at` is, for messages: on the timeline and after the step's base.
    fn when(&self, at: Timestamp) -> String {
        let (base, name) = &self.base;
        format!("at {} ({} after {name})", self.rel(at), Offset(at.since(base.from)))
    }

    fn expect(
        &mut self,
        step: &Step,
        wanted: &Expected<'_>,
        timed: Option<Span>,
        tolerance: Tolerance,
    ) -> Result<(), Stop> {
        let Expected {
            flow,
            text,
            pattern,
            payload,
            new_isn,
            ts_val,
        } = *wanted;
        // An untimed expectation waits as long as any kernel timer a case relies on.
        let (lo, hi, look) = match timed {
            Some(due) => {
                let hi = due.to.after(tolerance.total());
                (due.from.before(tolerance.total()), hi, hi.after(LATE_LOOKOUT))
            }
            None => (
                Timestamp(i64::MIN),
                Timestamp(i64::MAX),
                Timestamp::now().after(ANY_TIME_LIMIT),
            ),
        };
        let wanted = |f: &Frame| f.direction == Direction::FromKernel && !f.consumed && f.flow == Some(flow);
        let Some(i) = self.pull_until(look, wanted)? else {
            let due = match timed {
                Some(due) => self.window(due, tolerance),
                None => format!("at any time (waited {}s)", ANY_TIME_LIMIT.as_secs()),
            };
            return Err(self.fail(
                step,
                &format!("no segment from the kernel on flow `{}`", self.flows[flow].name),
                &[format!("expected  {text}"), format!("due       {due}")],
            ));
        };
        let parts = match self.gather(flow, i, pattern, look)? {
            Ok(parts) => parts,
            Err(problem) => {
                let details = vec![format!("expected  {text}"), problem];
                return Err(self.fail(
                    step,
                    "the kernel's segments cannot be joined into the case's one",
                    &details,
                ));
            }
        };
        let last = *parts.last().expect("at least the first frame");
        let segment = self.joined(&parts);
        let frame_text = if parts.len() > 1 {
            format!("{} (joined from {} segments)", format_segment(&segment), parts.len())
        } else {
            self.frames[i].text.clone()
        };
        let (frame_at, frame_ip) = (self.frames[last].at, self.frames[last].ip);
        let checksums_ok = parts.iter().all(|p| self.frames[*p].checksum_ok);
        let mss = self.case.lab.mss(self.family);
        let mut problems: Vec<String> = pattern
            .mismatches(&segment, &self.flows[flow].expect_context(mss))
            .iter()
            .map(ToString::to_string)
            .collect();
        if let Some(ip) = &frame_ip {
            problems.extend(pattern.ip_mismatches(ip).iter().map(ToString::to_string));
        }
        // A TS val is a time too: one off alone is a time missed.
        let mut times_off = 0;
        if let Some(script) = ts_val
            && let Some(problem) =
                self.flows[flow].map_ts_val(script, &segment, self.case.rules.ts_tick, self.tolerance)
        {
            problems.push(problem);
            times_off += 1;
        }
        let frame = &self.frames[i];
        if let Some(want) = payload
            && want != segment.payload.as_slice()
        {
            problems.push(format!(
                "payload: expected {}, got {}",
                quote(want),
                quote(&segment.payload)
            ));
        }
        if !checksums_ok {
            problems.push("checksum: the kernel sent a segment with a wrong checksum".into());
        }
        if new_isn && let Some(isn) = frame.kernel_isn {
            let reused = self.frames[..i].iter().find(|f| f.kernel_isn == Some(isn));
            if let Some(earlier) = reused {
                problems.push(format!(
                    "isn: expected a new ISN, got {isn}, which the kernel already used at {}{}",
                    self.rel(earlier.at),
                    earlier
                        .flow
                        .map_or(String::new(), |f| format!(" on flow `{}`", self.flows[f].name))
                ));
            }
        }
        let tick_late = frame_at > hi && self.ticks.is_some_and(|t| t.one_late(frame_at, lo, hi));
        let timing = if frame_at < lo {
            Some("arrived too early")
        } else if frame_at > hi && !tick_late {
            Some("arrived too late")
        } else {
            None
        };
        if tick_late && timed.is_some() {
            let period = self.ticks.map_or(Duration::ZERO, |t| t.period);
            self.notes.push(format!(
                "{}: the kernel's segment came one tick ({} ms) after its window, just after a tick of the kernel's clock: a timer due at the tick before, run a tick late by a busy CPU; taken as on time (docs/PACKETDRILL.md)",
                step.location,
                period.as_secs_f64() * 1000.0
            ));
        }
        if let (Some(timing), Some(due)) = (timing, timed) {
            times_off += 1;
            problems.push(format!(
                "time: {timing}: {}, due {}",
                self.when(frame_at),
                self.window(due, tolerance)
            ));
        }
        if !problems.is_empty() {
            if problems.len() == times_off {
                self.doubt = Some(Doubt::Time);
            }
            let mut details = vec![format!("expected  {text}"), format!("actual    {frame_text}")];
            details.extend(problems);
            let headline = if timing.is_some() && details.len() == 3 {
                "the segment came at the wrong time"
            } else {
                "the kernel's segment differs from the case"
            };
            return Err(self.fail(step, headline, &details));
        }
        for p in &parts {
            self.frames[*p].consumed = true;
        }
        self.anchor = Span::at(if self.case.rules.anchor_when_seen {
            Timestamp::now().max(frame_at)
        } else {
            frame_at
        });
        Ok(())
    }

    /// The frames that make the segment an expectation gets: the flow's
    /// next one, and, where the case joins segments as packetdrill does
    /// ([`Rules::join_segments`]), the ones that follow it on the flow until
    /// they hold as much data as the expectation, checked to be pieces of
    /// one segment (contiguous, with the same ACK, window and control bits).
    fn gather(
        &mut self,
        flow: usize,
        first: usize,
        pattern: &SegmentPattern,
        look: Timestamp,
    ) -> Result<Result<Vec<usize>, String>, Stop> {
        let mut parts = vec![first];
        let want = match pattern.len {
            Some(Num::Lit(n)) if self.case.rules.join_segments => n as usize,
            _ => return Ok(Ok(parts)),
        };
        let seg_len = |run: &Self, i: usize| run.frames[i].segment.as_ref().map_or(0, |s| s.payload.len());
        let mut total = seg_len(self, first);
        // Parts are set aside while the next one is looked for.
        self.frames[first].consumed = true;
        while total < want {
            let next = |f: &Frame| f.direction == Direction::FromKernel && !f.consumed && f.flow == Some(flow);
            let Some(j) = self.pull_until(look, next)? else { break };
            let prev = *parts.last().expect("at least one part");
            let (p, c) = (
                self.frames[prev].segment.clone().expect("flow frames are TCP"),
                self.frames[j].segment.clone().expect("flow frames are TCP"),
            );
            let kept = Flags::SYN | Flags::RST | Flags::ACK | Flags::URG | Flags::ECE | Flags::AE;
            let bits = |s: &TcpSegment| Flags::from_wire_bits(s.flags.wire_bits() & kept.wire_bits());
            let problem = if p.seq.wrapping_add(p.payload.len() as u32) != c.seq {
                Some(format!("segment at {} does not follow the one before", c.seq))
            } else if (p.ack, p.window, bits(&p)) != (c.ack, c.window, bits(&c)) {
                Some(format!(
                    "segment {} differs from the one before in its ACK, window or control bits",
                    c.seq
                ))
            } else if c.payload.len() < want - total && c.payload.len() != p.payload.len() {
                Some(format!(
                    "segment {} holds {} bytes, the one before {}",
                    c.seq,
                    c.payload.len(),
                    p.payload.len()
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                for part in &parts {
                    self.frames[*part].consumed = false;
                }
                return Ok(Err(problem));
            }
            self.frames[j].consumed = true;
            total += c.payload.len();
            parts.push(j);
        }
        for part in &parts {
            self.frames[*part].consumed = false;
        }
        Ok(Ok(parts))
    }

    /// The segment `parts` make together: the last one's header with the
    /// first one's sequence number and CWR bit, and all their data.
    fn joined(&self, parts: &[usize]) -> TcpSegment {
        let seg = |i: usize| self.frames[i].segment.clone().expect("flow frames are TCP");
        let first = seg(parts[0]);
        let mut out = seg(*parts.last().expect("at least one part"));
        if parts.len() > 1 {
            out.seq = first.seq;
            let cwr = first.flags.contains(Flags::CWR);
            out.flags = Flags::from_wire_bits(out.flags.wire_bits() & !Flags::CWR.wire_bits());
            if cwr {
                out.flags |= Flags::CWR;
            }
            out.payload = parts.iter().flat_map(|p| seg(*p).payload).collect();
        }
        out
    }

    fn expect_nothing(
        &mut self,
        step: &Step,
        flow: Option<usize>,
        start: Timestamp,
        during: Duration,
    ) -> Result<(), Stop> {
        let end = start.after(during);
        let offending = |f: &Frame| {
            f.direction == Direction::FromKernel
                && !f.consumed
                && flow.is_none_or(|i| f.flow == Some(i))
                && f.at >= start
                && f.at <= end
        };
        if self.pull_until(end.after(GRACE), offending)?.is_some() {
            sleep_until(end);
            self.pull_ready()?;
            let what = match flow {
                Some(i) => format!("flow `{}`", self.flows[i].name),
                None => "the wire".into(),
            };
            let seen: Vec<String> = self
                .frames
                .iter()
                .filter(|f| offending(f))
                .map(|f| format!("unexpected {}", self.frame_record(f)))
                .collect();
            return Err(self.fail(
                step,
                &format!(
                    "expected nothing on {what} from {} to {}",
                    self.rel(start),
                    self.rel(end)
                ),
                &seen,
            ));
        }
        self.anchor = Span::at(end);
        Ok(())
    }

    fn record_call(&mut self, text: &str, done: &Done) {
        self.records.push(Record::Call {
            at: done.started.since(self.t0),
            returned: done.finished.since(self.t0),
            text: text.to_string(),
            result: done.ret.to_string(),
            sigpipe: done.sigpipe,
        });
    }

    /// Checks a finished call against what the case says.
    fn check_call(
        &mut self,
        step: &Step,
        text: &str,
        call: &Call,
        sigpipe: Option<bool>,
        done: &Done,
        timeout: Duration,
    ) -> Result<(), Stop> {
        if done.stuck {
            return Err(self.fail(
                step,
                &format!(
                    "`{text}` did not return within {}s; it was interrupted",
                    timeout.as_secs_f64()
                ),
                &[format!("then it returned {}", done.ret)],
            ));
        }
        let mut problems = Vec::new();
        let mut times_off = 0;
        if !call.outcome.accepts(&done.ret, &call.func) {
            problems.push(format!("result: expected {}, got {}", call.outcome, done.ret));
        } else {
            // Out-parameters are checked once the result is right, as packetdrill does.
            problems.extend(done.out.iter().cloned());
            times_off = done.times_off;
        }
        match (sigpipe, done.sigpipe) {
            (Some(true), false) => problems.push("signal: expected SIGPIPE, none was raised".into()),
            (Some(false), true) => {
                problems.push("signal: the call raised SIGPIPE (say `signal: SIGPIPE` if that is expected)".into())
            }
            _ => {}
        }
        if problems.is_empty() {
            Ok(())
        } else {
            if problems.len() == times_off {
                self.doubt = Some(Doubt::Time);
            }
            Err(self.fail(step, &format!("`{text}` did not do what the case says"), &problems))
        }
    }

    fn call(
        &mut self,
        step: &Step,
        text: &'c str,
        call: &'c Call,
        background: bool,
        sigpipe: Option<bool>,
        timeout: Duration,
    ) -> Result<(), Stop> {
        self.pull_ready()?;
        if !background {
            let deadline = Timestamp::now().after(timeout);
            let done = self
                .sockets
                .call_now(call, deadline)
                .map_err(|e| self.error(step, &chain(&e)))?;
            self.record_call(text, &done);
            self.anchor = Span {
                from: done.started,
                to: done.finished,
            };
            return self.check_call(step, text, call, sigpipe, &done, timeout);
        }
        let running = self.sockets.start(call).map_err(|e| self.error(step, &chain(&e)))?;
        self.anchor = Span {
            from: running.started,
            to: running.settled(),
        };
        let sock = call.func.sock().unwrap_or_default().to_string();
        self.pending.insert(
            sock,
            Pending {
                running,
                call,
                text,
                sigpipe,
            },
        );
        Ok(())
    }

    fn await_call(
        &mut self,
        step: &Step,
        socket: &str,
        timeout: Duration,
        due: Span,
        tolerance: Tolerance,
    ) -> Result<(), Stop> {
        let Some(p) = self.pending.remove(socket) else {
            return Err(self.error(step, &format!("`{socket}` has no background call")));
        };
        let timed = !matches!(step.due, Due::Now | Due::Any);
        // A call due later than the timeout from now is waited for until then.
        let due_by = if timed {
            due.to.after(tolerance.total())
        } else {
            Timestamp::now()
        };
        let deadline = due_by.max(Timestamp::now()).after(timeout);
        let done = self.sockets.finish(p.call, p.running, deadline);
        self.record_call(p.text, &done);
        self.check_call(step, p.text, p.call, p.sigpipe, &done, timeout)?;
        if timed
            && (done.finished < due.from.before(tolerance.total()) || done.finished > due.to.after(tolerance.total()))
        {
            self.doubt = Some(Doubt::Time);
            return Err(self.fail(
                step,
                &format!("`{}` returned at the wrong time", p.text),
                &[format!(
                    "returned {}, due {}",
                    self.when(done.finished),
                    self.window(due, tolerance)
                )],
            ));
        }
        // A call that returned before the previous step does not move the timeline back.
        if done.finished > self.anchor.to {
            self.anchor = Span::at(done.finished);
        }
        Ok(())
    }

    fn sockets_now(&mut self, step: &Step) -> Result<Vec<SocketInfo>, Stop> {
        self.lab
            .probe
            .sockets(self.family)
            .map_err(|e| self.error(step, &format!("sock_diag: {e}")))
    }

    /// Reads the kernel's sockets until `done` accepts them or `tolerance`
    /// has passed, and returns the last read and its time.
    ///
    /// An injected segment is stamped as it leaves the harness's end; the
    /// kernel handles it in a softirq that may run a little later (in
    /// ksoftirqd when softirqs are busy, as on a loaded or emulated
    /// machine), so a state read right after an injection may come too
    /// early. A read is an observation like a segment's arrival: it gets
    /// the step's tolerance.
    fn read_until(
        &mut self,
        step: &Step,
        tolerance: Tolerance,
        done: impl Fn(&Self, &[SocketInfo]) -> bool,
    ) -> Result<(Vec<SocketInfo>, Timestamp), Stop> {
        let deadline = Timestamp::now().after(tolerance.total());
        loop {
            let at = Timestamp::now();
            let sockets = self.sockets_now(step)?;
            if done(self, &sockets) || at >= deadline {
                return Ok((sockets, at));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The state of `target` among `sockets`, and its name for messages.
    fn state_of(&self, target: &Target, sockets: &[SocketInfo]) -> (String, TcpState) {
        match target {
            Target::Socket(name) => {
                let cookie = self.sockets.cookie(name);
                let found = sockets.iter().find(|s| Some(s.cookie) == cookie).map(|s| s.state);
                (
                    name.clone(),
                    found
                        .or_else(|| self.sockets.open_state(name))
                        .unwrap_or(TcpState::Gone),
                )
            }
            Target::Flow(i) => {
                let f = &self.flows[*i];
                let found = sockets
                    .iter()
                    .find(|s| Some(s.local.1) == f.kernel_port && s.remote == (self.addrs.peer, f.peer_port));
                (format!("flow {}", f.name), found.map_or(TcpState::Gone, |s| s.state))
            }
        }
    }

    fn state(&mut self, step: &Step, target: &Target, want: TcpState, tolerance: Tolerance) -> Result<(), Stop> {
        let (sockets, at) = self.read_until(step, tolerance, |run, sockets| run.state_of(target, sockets).1 == want)?;
        let (name, got) = self.state_of(target, &sockets);
        self.records.push(Record::State {
            at: at.since(self.t0),
            target: name.clone(),
            state: got.to_string(),
        });
        self.anchor = Span::at(at);
        if got != want {
            return Err(self.fail(step, &format!("{name} is {got}, the case expects {want}"), &[]));
        }
        Ok(())
    }

    fn accept_queue(
        &mut self,
        step: &Step,
        socket: &str,
        len: u32,
        limit: u32,
        tolerance: Tolerance,
    ) -> Result<(), Stop> {
        let cookie = self.sockets.cookie(socket);
        let (sockets, at) = self.read_until(step, tolerance, |_, sockets| {
            sockets.iter().any(|s| {
                Some(s.cookie) == cookie && s.state == TcpState::Listen && (s.recv_q, s.send_q) == (len, limit)
            })
        })?;
        let Some(s) = sockets.iter().find(|s| Some(s.cookie) == cookie) else {
            return Err(self.fail(step, &format!("`{socket}` is not in the kernel's socket tables"), &[]));
        };
        self.records.push(Record::AcceptQueue {
            at: at.since(self.t0),
            socket: socket.into(),
            len: s.recv_q,
            limit: s.send_q,
        });
        self.anchor = Span::at(at);
        if s.state != TcpState::Listen {
            return Err(self.fail(step, &format!("`{socket}` is {}, not LISTEN", s.state), &[]));
        }
        if (s.recv_q, s.send_q) != (len, limit) {
            return Err(self.fail(
                step,
                "the accept queue differs from the case",
                &[
                    format!("expected  len {len} limit {limit}"),
                    format!("actual    len {} limit {}", s.recv_q, s.send_q),
                ],
            ));
        }
        Ok(())
    }

    /// Fails on frames the kernel sent before `end` that no step expected,
    /// naming the step after which the first of them came.
    fn check_leftovers(&self, end: Timestamp) -> Result<(), Stop> {
        let leftover = |f: &&Frame| f.direction == Direction::FromKernel && !f.consumed && f.at <= end;
        let Some(first) = self.frames.iter().find(leftover) else {
            return Ok(());
        };
        let step = self
            .step_times
            .iter()
            .rev()
            .find(|(_, at)| at.from <= first.at)
            .or(self.step_times.first())
            .map(|(step, _)| *step)
            .expect("a case with frames has steps");
        let unexpected: Vec<String> = self
            .frames
            .iter()
            .filter(leftover)
            .map(|f| format!("unexpected {}", self.frame_record(f)))
            .collect();
        let mut out = format!(
            "{}: the kernel sent {} frame(s) that no step expects, after this {} step:",
            step.location,
            unexpected.len(),
            step.action.keyword()
        );
        for u in unexpected {
            let _ = write!(out, "\n    {u}");
        }
        Err(Stop::Fail(out))
    }

    /// Interrupts what is still running, collects the last frames and builds the result.
    fn finish(mut self, verdict: Verdict) -> Outcome {
        // A failure stops the judging where it happened.
        let judged_until = self.judged_until.unwrap_or_else(Timestamp::now).since(self.t0);
        let pending: Vec<(String, Pending<'c>)> = self.pending.drain().collect();
        for (_, p) in pending {
            let done = self.sockets.finish(p.call, p.running, Timestamp::now());
            self.record_call(p.text, &done);
        }
        let verdict = match (verdict, self.pull_ready()) {
            (Verdict::Pass, Err(Stop::Error(m) | Stop::Fail(m))) => Verdict::Error(m),
            (v, _) => v,
        };
        let mut records: Vec<Record> = self.frames.iter().map(|f| self.frame_record(f)).collect();
        records.append(&mut self.records);
        records.sort_by_key(Record::at);
        let Run {
            lab,
            sockets,
            sandbox,
            notes,
            doubt,
            ..
        } = self;
        drop(sockets);
        drop(sandbox);
        let sysctls = lab.sysctls.clone();
        lab.tear_down();
        Outcome {
            verdict,
            exchange: records,
            sysctls,
            notes,
            judged_until: Some(judged_until),
            doubt,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn an_attempt_alone_waits_for_the_others_without_holding_them_back_then_runs_alone() {
        use std::sync::atomic::AtomicBool;
        let attempts = Attempts::new();
        let (alone_started, late_started) = (AtomicBool::new(false), AtomicBool::new(false));
        std::thread::scope(|scope| {
            let first = attempts.start(Company::Shared);
            let (tx, rx) = std::sync::mpsc::channel();
            let attempts = &attempts;
            let alone_started = &alone_started;
            scope.spawn(move || {
                let alone = attempts.start(Company::Alone);
                alone_started.store(true, Ordering::SeqCst);
                rx.recv().expect("told to end");
                drop(alone);
            });
            std::thread::sleep(Duration::from_millis(50));
            assert!(!alone_started.load(Ordering::SeqCst), "it started beside another");
            // One waiting to run alone does not hold back another attempt.
            let second = attempts.start(Company::Shared);
            drop(first);
            std::thread::sleep(Duration::from_millis(50));
            assert!(!alone_started.load(Ordering::SeqCst), "it started beside the second");
            drop(second);
            while !alone_started.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            // While it runs, no other starts.
            let late_started = &late_started;
            scope.spawn(move || {
                let _late = attempts.start(Company::Shared);
                late_started.store(true, Ordering::SeqCst);
            });
            std::thread::sleep(Duration::from_millis(50));
            assert!(!late_started.load(Ordering::SeqCst), "one started beside it");
            tx.send(()).expect("the alone attempt listens");
        });
        assert!(late_started.load(Ordering::SeqCst));
    }

    #[test]
    fn a_gate_lets_through_no_more_than_its_limit() {
        let gate = Gate::new();
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    let _pass = gate.enter(3);
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                    inside.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 3);
        assert_eq!(*gate.holders.lock().unwrap(), 0);
    }
}
