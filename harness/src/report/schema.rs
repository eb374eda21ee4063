//! The report of a run as data: the types `report.json` is made of (schema
//! `tcpconform-report/1`, documented field by field in docs/REPORT.md).
//!
//! The file reporters build a [`Report`] from a run's events and render it
//! (JSON, JUnit, HTML); `tcpconform compare` reads reports back into the
//! same types, so writer and reader cannot drift apart. Fields are declared
//! in the order they are written, which keeps the JSON readable.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Kernel;
use crate::behaviors;
use crate::event::{CaseResult, Direction, Record, Verdict};
use crate::requirements::{self, Status};

/// The schema identifier written in every report.
pub const SCHEMA: &str = "tcpconform-report/1";

/// A whole run: the tool, the kernel, and every case on every family.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The tool that wrote the report.
    pub tool: Tool,
    /// When the run started, RFC 3339 UTC.
    pub date: String,
    /// Wall time of the whole run.
    pub duration_ms: f64,
    /// The kernel under test.
    pub kernel: Kernel,
    /// The default timing tolerance of the run (cases may set their own).
    pub tolerance_ms: f64,
    /// The run's slack: every step's window is its tolerance plus
    /// `min(slack_ms, its tolerance, max_slack_ms)` (0 on bare metal; see docs/VM.md).
    #[serde(default)]
    pub slack_ms: f64,
    /// The most slack a run may add ([`crate::engine::MAX_SLACK`]).
    #[serde(default)]
    pub max_slack_ms: f64,
    /// Counts of verdicts.
    pub summary: Summary,
    /// Every row of docs/BEHAVIORS.md with the case runs that cover it.
    pub coverage: BTreeMap<String, Coverage>,
    /// Every requirement of docs/RFC9293.md with what the run says of it
    /// (empty in reports older than the key).
    #[serde(default)]
    pub requirements: Requirements,
    /// One entry per case and family, sorted by case ID, then family.
    pub results: Vec<CaseReport>,
}

/// The tool that wrote a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    /// `tcpconform`.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// Counts of verdicts in a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Case runs in all.
    pub total: usize,
    /// Passed.
    pub pass: usize,
    /// Failed.
    pub fail: usize,
    /// Skipped.
    pub skip: usize,
    /// Errored.
    pub error: usize,
}

/// One behaviour of the catalogue and the runs covering it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// The catalogue's section (`Opening`, ...).
    pub section: String,
    /// The behaviour as the catalogue states it.
    pub behavior: String,
    /// The case runs that cover it; empty when nothing does.
    pub runs: Vec<CoveringRun>,
}

/// A case run covering a behaviour.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoveringRun {
    /// Case ID.
    pub case: String,
    /// Family.
    pub family: String,
    /// Its verdict.
    pub verdict: VerdictName,
}

/// What a run says about RFC 9293's requirements (docs/RFC9293.md).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirements {
    /// One line per level, MUST then SHLD.
    pub summary: Vec<LevelSummary>,
    /// Every requirement, in the table's order.
    pub rows: Vec<RequirementRow>,
}

/// The statuses of one level's requirements (MUST or SHLD).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelSummary {
    /// `MUST` or `SHLD`.
    pub level: String,
    /// Met.
    pub met: usize,
    /// Met apart from a documented deviation.
    pub deviates: usize,
    /// Failed in this run.
    pub failed: usize,
    /// Observable, checked by no run.
    pub not_covered: usize,
    /// Observable at all (wire or api).
    pub observable: usize,
    /// Rows of the level.
    pub total: usize,
}

impl LevelSummary {
    /// `MUST: 12 met, 2 deviate, 0 failed, 54 not covered, of 68 observable`.
    pub fn line(&self) -> String {
        format!(
            "{}: {} met, {} deviate, {} failed, {} not covered, of {} observable",
            self.level, self.met, self.deviates, self.failed, self.not_covered, self.observable
        )
    }
}

/// One requirement and what the run says of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequirementRow {
    /// `MUST-13`.
    pub id: String,
    /// The RFC section stating it.
    pub section: String,
    /// `MUST`, `MUST NOT`, `SHOULD` or `SHOULD NOT`.
    pub keyword: String,
    /// The requirement in one line.
    pub summary: String,
    /// How a run observes it: `wire`, `api`, `not observable`, `not applicable`.
    pub observed: String,
    /// What this run says.
    pub status: Status,
    /// Why Linux departs from it, where a case documents that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deviation: Option<String>,
    /// The runs of the cases that check it.
    pub runs: Vec<CoveringRun>,
}

impl Requirements {
    /// What `results` say of every requirement of the table.
    fn of(results: &[CaseReport]) -> Requirements {
        let rows: Vec<RequirementRow> = requirements::table()
            .into_iter()
            .map(|r| {
                let checking: Vec<&CaseReport> = results.iter().filter(|c| c.requirements.contains(&r.id)).collect();
                let count = |v: &[VerdictName]| checking.iter().filter(|c| v.contains(&c.verdict)).count();
                let deviation = checking.iter().find_map(|c| c.deviates.get(&r.id)).cloned();
                RequirementRow {
                    status: Status::of(
                        r.observed,
                        count(&[VerdictName::Pass]),
                        count(&[VerdictName::Fail, VerdictName::Error]),
                        deviation.is_some(),
                    ),
                    runs: checking
                        .iter()
                        .map(|c| CoveringRun {
                            case: c.id.clone(),
                            family: c.family.clone(),
                            verdict: c.verdict,
                        })
                        .collect(),
                    id: r.id,
                    section: r.section,
                    keyword: r.keyword,
                    summary: r.summary,
                    observed: r.observed.name().to_string(),
                    deviation,
                }
            })
            .collect();
        let summary = ["MUST", "SHLD"]
            .into_iter()
            .map(|level| {
                let of: Vec<&RequirementRow> = rows.iter().filter(|r| r.id.split('-').next() == Some(level)).collect();
                let count = |s: Status| of.iter().filter(|r| r.status == s).count();
                LevelSummary {
                    level: level.to_string(),
                    met: count(Status::Met),
                    deviates: count(Status::Deviates),
                    failed: count(Status::Failed),
                    not_covered: count(Status::NotCovered),
                    observable: of.len() - count(Status::NotObservable) - count(Status::NotApplicable),
                    total: of.len(),
                }
            })
            .collect();
        Requirements { summary, rows }
    }
}

/// How a case ended, as written in reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerdictName {
    /// The kernel did what the case says.
    Pass,
    /// The kernel did something else.
    Fail,
    /// The case cannot run on this kernel.
    Skip,
    /// The harness or the environment failed.
    Error,
}

impl VerdictName {
    /// Every verdict, in the order summaries list them.
    pub const ALL: [VerdictName; 4] = [
        VerdictName::Pass,
        VerdictName::Fail,
        VerdictName::Skip,
        VerdictName::Error,
    ];

    /// `pass`, `fail`, `skip` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictName::Pass => "pass",
            VerdictName::Fail => "fail",
            VerdictName::Skip => "skip",
            VerdictName::Error => "error",
        }
    }

    fn of(verdict: &Verdict) -> VerdictName {
        match verdict {
            Verdict::Pass => VerdictName::Pass,
            Verdict::Fail(_) => VerdictName::Fail,
            Verdict::Skip(_) => VerdictName::Skip,
            Verdict::Error(_) => VerdictName::Error,
        }
    }
}

/// One case run on one family.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseReport {
    /// Case ID.
    pub id: String,
    /// Family: `ipv4` or `ipv6`.
    pub family: String,
    /// The syntax the case is written in: `yaml` or `packetdrill` (`yaml`
    /// in reports older than the key).
    #[serde(default = "yaml")]
    pub syntax: String,
    /// The case's title.
    pub title: String,
    /// BEHAVIORS.md IDs covered.
    pub covers: Vec<String>,
    /// RFC sections or documents.
    pub rfc: Vec<String>,
    /// docs/RFC9293.md IDs the case checks. Absent when none (and in older reports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<String>,
    /// The requirements among them the kernel departs from on purpose, with
    /// why. Absent when none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deviates: BTreeMap<String, String>,
    /// The case's description, if it has one.
    pub description: Option<String>,
    /// The verdict.
    pub verdict: VerdictName,
    /// Why it failed, was skipped or errored; `null` for a pass.
    pub reason: Option<String>,
    /// Wall time, lab setup and teardown included.
    pub duration_ms: f64,
    /// The default timing tolerance the case ran with.
    pub tolerance_ms: f64,
    /// The knobs the case set, as read back from its namespace.
    pub sysctls: BTreeMap<String, String>,
    /// Everything observed, in time order.
    pub exchange: Vec<Entry>,
    /// Until when frames were judged (ms): the end of the steps, or the
    /// failure. Frames after it were recorded, not judged; `compare` leaves
    /// them out. Absent when no step ran, and in older reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judged_until_ms: Option<f64>,
    /// What the run did differently from what the case asks, and why (a
    /// congestion control selected per socket, ...). Absent when nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The syntax of cases in reports that do not say.
fn yaml() -> String {
    crate::case::Syntax::Yaml.name().to_string()
}

impl CaseReport {
    /// `id::family`, the name of the case's test.
    pub fn name(&self) -> String {
        format!("{}::{}", self.id, self.family)
    }
}

/// Which way a frame went, as written in reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Way {
    /// Injected by the harness (packetdrill's `<`).
    ToKernel,
    /// Sent by the kernel (packetdrill's `>`).
    FromKernel,
}

impl Way {
    /// `<` or `>`, as packetdrill writes them.
    pub fn arrow(self) -> &'static str {
        match self {
            Way::ToKernel => "<",
            Way::FromKernel => ">",
        }
    }
}

/// One observed thing. Times are milliseconds since the case's first step
/// started, to the microsecond.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// A frame on the wire.
    Frame {
        /// When it left the harness or was stamped arriving from the kernel.
        at_ms: f64,
        /// Direction.
        direction: Way,
        /// The case's flow it belongs to; `null` for a frame on no flow.
        flow: Option<String>,
        /// The segment in the case notation, with relative sequence numbers;
        /// for a frame on no flow, its addresses and ports, then the segment.
        segment: String,
        /// Whether every checksum in it is right.
        checksum_ok: bool,
        /// Length of the whole Ethernet frame, in bytes.
        length: usize,
    },
    /// A socket call.
    Call {
        /// When it was made.
        at_ms: f64,
        /// When it returned.
        returned_ms: f64,
        /// The call as the case writes it.
        call: String,
        /// What it returned: `0`, `5 "hello"`, `-1 ECONNREFUSED`.
        result: String,
        /// Whether it raised SIGPIPE.
        sigpipe: bool,
    },
    /// A TCP state read with sock_diag.
    State {
        /// When.
        at_ms: f64,
        /// The socket (`conn`) or flow (`flow c`).
        target: String,
        /// The state found (`ESTABLISHED`, `gone`, ...).
        state: String,
    },
    /// A sysctl read in the case's namespace.
    Sysctl {
        /// When.
        at_ms: f64,
        /// Dotted name.
        name: String,
        /// Its value; `null` when the knob does not exist there.
        value: Option<String>,
    },
    /// A shell command run in the case's lab.
    Command {
        /// When it started.
        at_ms: f64,
        /// When it ended.
        returned_ms: f64,
        /// The command.
        command: String,
        /// How it ended (`exit 0`).
        status: String,
        /// The end of its standard error.
        output: String,
    },
    /// A listener's accept queue read with sock_diag.
    AcceptQueue {
        /// When.
        at_ms: f64,
        /// The listener.
        socket: String,
        /// Connections waiting.
        len: u32,
        /// The limit.
        limit: u32,
    },
}

impl Entry {
    /// When it happened, in ms on the case's timeline.
    pub fn at_ms(&self) -> f64 {
        match self {
            Entry::Frame { at_ms, .. }
            | Entry::Call { at_ms, .. }
            | Entry::State { at_ms, .. }
            | Entry::Sysctl { at_ms, .. }
            | Entry::Command { at_ms, .. }
            | Entry::AcceptQueue { at_ms, .. } => *at_ms,
        }
    }
}

impl Entry {
    /// The segment of a frame; `None` for every other kind of entry.
    pub fn segment(&self) -> Option<&str> {
        match self {
            Entry::Frame { segment, .. } => Some(segment),
            Entry::Call { .. }
            | Entry::State { .. }
            | Entry::Sysctl { .. }
            | Entry::Command { .. }
            | Entry::AcceptQueue { .. } => None,
        }
    }
}

/// Milliseconds of a nanosecond count, rounded to the microsecond.
fn ms(ns: i64) -> f64 {
    (ns as f64 / 1e3).round() / 1e3
}

/// Milliseconds of a duration, rounded to the microsecond.
pub fn duration_ms(d: Duration) -> f64 {
    (d.as_nanos() as f64 / 1e3).round() / 1e3
}

impl From<&Record> for Entry {
    fn from(r: &Record) -> Entry {
        match r {
            Record::Frame {
                at,
                stamp: _,
                direction,
                flow,
                text,
                checksum_ok,
                bytes,
            } => Entry::Frame {
                at_ms: ms(*at),
                direction: match direction {
                    Direction::ToKernel => Way::ToKernel,
                    Direction::FromKernel => Way::FromKernel,
                },
                flow: flow.clone(),
                segment: text.clone(),
                checksum_ok: *checksum_ok,
                length: bytes.len(),
            },
            Record::Call {
                at,
                returned,
                text,
                result,
                sigpipe,
            } => Entry::Call {
                at_ms: ms(*at),
                returned_ms: ms(*returned),
                call: text.clone(),
                result: result.clone(),
                sigpipe: *sigpipe,
            },
            Record::State { at, target, state } => Entry::State {
                at_ms: ms(*at),
                target: target.clone(),
                state: state.clone(),
            },
            Record::Sysctl { at, name, value } => Entry::Sysctl {
                at_ms: ms(*at),
                name: name.clone(),
                value: value.clone(),
            },
            Record::Command {
                at,
                returned,
                text,
                status,
                output,
            } => Entry::Command {
                at_ms: ms(*at),
                returned_ms: ms(*returned),
                command: text.clone(),
                status: status.clone(),
                output: output.clone(),
            },
            Record::AcceptQueue { at, socket, len, limit } => Entry::AcceptQueue {
                at_ms: ms(*at),
                socket: socket.clone(),
                len: *len,
                limit: *limit,
            },
        }
    }
}

impl From<&CaseResult> for CaseReport {
    fn from(r: &CaseResult) -> CaseReport {
        let message = r.verdict.message();
        CaseReport {
            id: r.id.clone(),
            family: r.family.name().to_string(),
            syntax: r.syntax.name().to_string(),
            title: r.title.clone(),
            covers: r.covers.clone(),
            rfc: r.rfc.clone(),
            requirements: r.requirements.clone(),
            deviates: r.deviates.iter().cloned().collect(),
            description: r.description.clone(),
            verdict: VerdictName::of(&r.verdict),
            reason: (!message.is_empty()).then(|| message.to_string()),
            duration_ms: duration_ms(r.duration),
            tolerance_ms: duration_ms(r.tolerance),
            sysctls: r.sysctls.iter().map(|s| (s.name.clone(), s.value.clone())).collect(),
            exchange: r.exchange.iter().map(Entry::from).collect(),
            judged_until_ms: r.judged_until.map(|ns| ns as f64 / 1e6),
            notes: r.notes.clone(),
        }
    }
}

/// What a run knows besides its results: the kernel, the tolerance, the times.
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// The kernel under test.
    pub kernel: Kernel,
    /// The run's default timing tolerance.
    pub tolerance: Duration,
    /// The run's slack (see [`crate::engine::Options::slack`]).
    pub slack: Duration,
    /// When the run started, RFC 3339 UTC.
    pub date: String,
    /// Wall time of the whole run.
    pub duration: Duration,
}

impl Report {
    /// The report of a run: `results` in any order, sorted here by case ID and family.
    pub fn new(info: &RunInfo, results: &[CaseResult]) -> Report {
        let mut results: Vec<CaseReport> = results.iter().map(CaseReport::from).collect();
        results.sort_by(|a, b| (&a.id, &a.family).cmp(&(&b.id, &b.family)));
        let mut summary = Summary {
            total: results.len(),
            ..Summary::default()
        };
        for r in &results {
            match r.verdict {
                VerdictName::Pass => summary.pass += 1,
                VerdictName::Fail => summary.fail += 1,
                VerdictName::Skip => summary.skip += 1,
                VerdictName::Error => summary.error += 1,
            }
        }
        let coverage = behaviors::catalogue()
            .into_iter()
            .map(|b| {
                let runs = results
                    .iter()
                    .filter(|r| r.covers.contains(&b.id))
                    .map(|r| CoveringRun {
                        case: r.id.clone(),
                        family: r.family.clone(),
                        verdict: r.verdict,
                    })
                    .collect();
                (
                    b.id,
                    Coverage {
                        section: b.section,
                        behavior: b.text,
                        runs,
                    },
                )
            })
            .collect();
        Report {
            schema: SCHEMA.to_string(),
            tool: Tool {
                name: env!("CARGO_PKG_NAME").to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
            },
            date: info.date.clone(),
            duration_ms: duration_ms(info.duration),
            kernel: info.kernel.clone(),
            tolerance_ms: duration_ms(info.tolerance),
            slack_ms: duration_ms(info.slack),
            max_slack_ms: duration_ms(crate::engine::MAX_SLACK),
            summary,
            coverage,
            requirements: Requirements::of(&results),
            results,
        }
    }
}

/// An entry as one line of text, in the terminal's format:
/// `  0.000069s > S. 0:0(0) ack 1 win 64240 <mss 1460>  [c]`.
impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = |ms: f64| format!("{:.6}s", ms / 1e3);
        match self {
            Entry::Frame {
                at_ms,
                direction,
                flow,
                segment,
                checksum_ok,
                length: _,
            } => {
                write!(f, "{:>10} {} {segment}", t(*at_ms), direction.arrow())?;
                if let Some(flow) = flow {
                    write!(f, "  [{flow}]")?;
                }
                if !checksum_ok {
                    f.write_str("  (bad checksum)")?;
                }
                Ok(())
            }
            Entry::Call {
                at_ms,
                returned_ms: _,
                call,
                result,
                sigpipe,
            } => {
                write!(f, "{:>10}   {call} = {result}", t(*at_ms))?;
                if *sigpipe {
                    f.write_str(" (SIGPIPE)")?;
                }
                Ok(())
            }
            Entry::State { at_ms, target, state } => write!(f, "{:>10}   state {target} {state}", t(*at_ms)),
            Entry::Sysctl { at_ms, name, value } => write!(
                f,
                "{:>10}   sysctl {name} = {}",
                t(*at_ms),
                value.as_deref().unwrap_or("(absent)")
            ),
            Entry::Command {
                at_ms, command, status, ..
            } => write!(f, "{:>10}   `{}` {status}", t(*at_ms), crate::event::one_line(command)),
            Entry::AcceptQueue {
                at_ms,
                socket,
                len,
                limit,
            } => write!(f, "{:>10}   accept queue {socket} len {len} limit {limit}", t(*at_ms)),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small report: a passed case on IPv4 and a failed one on IPv6.
    pub fn sample() -> Report {
        let frame = |at_ms, direction, segment: &str| Entry::Frame {
            at_ms,
            direction,
            flow: Some("c".into()),
            segment: segment.into(),
            checksum_ok: true,
            length: 54,
        };
        let case = |family: &str, verdict, reason: Option<&str>| CaseReport {
            id: "closing/active_close".into(),
            family: family.into(),
            syntax: "yaml".into(),
            title: "Active close".into(),
            covers: vec!["B17".into()],
            rfc: vec!["RFC 9293 3.6".into()],
            requirements: vec!["MUST-13".into()],
            deviates: BTreeMap::new(),
            description: None,
            verdict,
            reason: reason.map(str::to_string),
            duration_ms: 12.5,
            tolerance_ms: 10.0,
            sysctls: BTreeMap::from([("net.ipv4.tcp_fin_timeout".to_string(), "2".to_string())]),
            exchange: vec![
                Entry::Call {
                    at_ms: 0.0,
                    returned_ms: 0.01,
                    call: "close(conn)".into(),
                    result: "0".into(),
                    sigpipe: false,
                },
                frame(0.02, Way::FromKernel, "F. 1:1(0) ack 1 win 64240"),
                frame(0.5, Way::ToKernel, ". 1:1(0) ack 2 win 65535"),
                Entry::State {
                    at_ms: 0.6,
                    target: "conn".into(),
                    state: "FIN_WAIT2".into(),
                },
            ],
            judged_until_ms: None,
            notes: vec![],
        };
        Report {
            schema: SCHEMA.into(),
            tool: Tool {
                name: "tcpconform".into(),
                version: "0.1.0".into(),
            },
            date: "2026-11-21T12:00:00Z".into(),
            duration_ms: 100.0,
            kernel: Kernel {
                release: "6.18.0".into(),
                version: "#1 SMP".into(),
                arch: "x86_64".into(),
                sysctls: BTreeMap::from([("net.ipv4.tcp_sack".to_string(), "1".to_string())]),
            },
            tolerance_ms: 10.0,
            slack_ms: 0.0,
            max_slack_ms: 8.0,
            summary: Summary {
                total: 2,
                pass: 1,
                fail: 1,
                skip: 0,
                error: 0,
            },
            coverage: BTreeMap::new(),
            requirements: Requirements::default(),
            results: vec![
                case("ipv4", VerdictName::Pass, None),
                case(
                    "ipv6",
                    VerdictName::Fail,
                    Some("c.yaml:9:3: state: conn is FIN_WAIT2, the case expects TIME_WAIT"),
                ),
            ],
        }
    }

    #[test]
    fn a_report_reads_back_as_written_with_its_keys_in_order() {
        let report = sample();
        let text = serde_json::to_string_pretty(&report).expect("serializable");
        let back: Report = serde_json::from_str(&text).expect("readable");
        assert_eq!(back, report);
        let keys = [
            "\"schema\"",
            "\"tool\"",
            "\"date\"",
            "\"kernel\"",
            "\"summary\"",
            "\"results\"",
        ];
        let positions: Vec<usize> = keys.iter().map(|k| text.find(k).expect("key present")).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        assert!(
            text.contains("\"kind\": \"frame\",\n          \"at_ms\": 0.02"),
            "{text}"
        );
        assert!(text.contains("\"verdict\": \"fail\""));
        assert!(text.contains("\"direction\": \"from_kernel\""));
    }

    #[test]
    fn results_are_sorted_and_counted() {
        use crate::event::{CaseResult, Verdict};
        use crate::packet::Family;
        let result = |id: &str, family, verdict| CaseResult {
            id: id.into(),
            title: "t".into(),
            covers: vec!["B01".into()],
            rfc: vec![],
            requirements: vec!["MUST-13".into()],
            deviates: vec![],
            description: None,
            family,
            syntax: crate::case::Syntax::Packetdrill,
            verdict,
            duration: Duration::from_micros(1500),
            tolerance: Duration::from_millis(10),
            sysctls: vec![],
            exchange: vec![Record::State {
                at: 1_234_567,
                target: "c".into(),
                state: "LISTEN".into(),
            }],
            judged_until: Some(2_000_000),
            notes: vec![],
        };
        let info = RunInfo {
            kernel: sample().kernel,
            tolerance: Duration::from_millis(25),
            slack: Duration::ZERO,
            date: "d".into(),
            duration: Duration::from_secs(1),
        };
        let report = Report::new(
            &info,
            &[
                result("b", Family::Ipv4, Verdict::Fail("no".into())),
                result("a", Family::Ipv6, Verdict::Skip("knob".into())),
                result("a", Family::Ipv4, Verdict::Pass),
            ],
        );
        let names: Vec<String> = report.results.iter().map(CaseReport::name).collect();
        assert_eq!(names, ["a::ipv4", "a::ipv6", "b::ipv4"]);
        assert_eq!(
            report.summary,
            Summary {
                total: 3,
                pass: 1,
                fail: 1,
                skip: 1,
                error: 0
            }
        );
        assert_eq!(report.tolerance_ms, 25.0);
        assert_eq!(report.results[0].duration_ms, 1.5);
        assert_eq!(report.results[0].exchange[0].at_ms(), 1.235);
        assert_eq!(report.results[0].reason, None);
        assert_eq!(report.results[0].syntax, "packetdrill");
        assert_eq!(report.results[2].reason.as_deref(), Some("no"));
        assert_eq!(report.coverage["B01"].runs.len(), 3);
        assert!(report.coverage["B02"].runs.is_empty());
        // MUST-13's three runs: one failed, so it failed; the rest no run checked.
        let rows = &report.requirements.rows;
        assert_eq!(rows.len(), crate::requirements::table().len());
        let must13 = rows.iter().find(|r| r.id == "MUST-13").expect("MUST-13");
        assert_eq!((must13.status, must13.runs.len()), (Status::Failed, 3));
        let must = &report.requirements.summary[0];
        assert_eq!(
            (must.level.as_str(), must.failed, must.met, must.deviates),
            ("MUST", 1, 0, 0)
        );
        assert_eq!(must.not_covered, must.observable - 1);
        assert!(
            must.line().starts_with("MUST: 0 met, 0 deviate, 1 failed, "),
            "{}",
            must.line()
        );
    }
}
