//! `tcpconform compare`: reads the reports of several runs (kernels) and
//! shows, case by case and family by family, where they differ: the
//! verdict, or the observed exchange (another window, an extra ACK, another
//! errno), with the difference spelled out field by field. The first report
//! is the baseline every other one is held against.
//!
//! Exchanges are compared after [`normalise`] has taken out what changes
//! from run to run on one kernel (timestamp offsets, times), so two runs on
//! the same kernel compare equal. Times are compared apart: a frame the
//! kernel sent with a delay (from the entry before it) that differs by more
//! than both runs' tolerances together is listed as a *timing* difference,
//! which does not make the case differ.
//!
//! The result is written as `compare.json` (schema `tcpconform-compare/1`),
//! `compare.md` and `compare.html` (see the `render` module).

pub mod normalise;
mod render;

use std::path::{Path, PathBuf};

use serde::Serialize;

use self::normalise::Normal;
use super::atomic;
use super::schema::{CaseReport, Report, SCHEMA, VerdictName};
use super::{ReportError, WriteError};

/// The schema identifier of `compare.json`.
pub const COMPARE_SCHEMA: &str = "tcpconform-compare/1";

/// Why reports could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// Fewer than two reports.
    #[error("compare needs at least two reports, got {0}")]
    TooFew(usize),
    /// A report could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A report is not valid JSON of the expected shape.
    #[error("{path} is not a tcpconform report")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A report has another schema.
    #[error("{path} has schema `{found}`; this tcpconform reads `{SCHEMA}`")]
    Schema {
        /// The file.
        path: PathBuf,
        /// The schema it declares.
        found: String,
    },
    /// The output could not be written.
    #[error(transparent)]
    Write(#[from] ReportError),
}

/// A report to compare, with the name it goes by in the output.
#[derive(Clone, Debug)]
pub struct Input {
    /// The column's name: the kernel release, with the report's directory
    /// when two reports have the same release.
    pub label: String,
    /// Where the report was read from.
    pub path: PathBuf,
    /// The report.
    pub report: Report,
}

/// Reads a report; `path` may be a report's directory or its `report.json`.
pub fn load(path: &Path) -> Result<Input, CompareError> {
    let path = if path.is_dir() {
        path.join("report.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&path).map_err(|source| CompareError::Read {
        path: path.clone(),
        source,
    })?;
    let probe: serde_json::Value = serde_json::from_str(&text).map_err(|source| CompareError::Parse {
        path: path.clone(),
        source,
    })?;
    let found = probe
        .get("schema")
        .and_then(|s| s.as_str())
        .unwrap_or("none")
        .to_string();
    if found != SCHEMA {
        return Err(CompareError::Schema { path, found });
    }
    let report = super::json::read(&text).map_err(|source| CompareError::Parse {
        path: path.clone(),
        source,
    })?;
    Ok(Input {
        label: report.kernel.release.clone(),
        path,
        report,
    })
}

/// One compared kernel (a column).
#[derive(Clone, Debug, Serialize)]
pub struct Column {
    /// Its name in the output.
    pub label: String,
    /// The report it comes from.
    pub report: String,
    /// `uname -r`.
    pub release: String,
    /// `uname -v`.
    pub version: String,
    /// `uname -m`.
    pub arch: String,
    /// When the run was made.
    pub date: String,
    /// The run's default tolerance.
    pub tolerance_ms: f64,
    /// The tool version that made it.
    pub tool_version: String,
}

/// Something with a value per kernel that differs between them: a TCP
/// setting of a fresh namespace, or the status of an RFC 9293 requirement.
#[derive(Clone, Debug, Serialize)]
pub struct Setting {
    /// The knob, or the requirement's ID.
    pub name: String,
    /// Its value per column (`null`: the kernel has no such knob, or the
    /// report says nothing of requirements).
    pub values: Vec<Option<String>>,
}

/// How a case run compares across the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The verdict or the exchange differs, or the case is missing somewhere.
    Differs,
    /// Only some delays of the kernel differ beyond the tolerance.
    Timing,
    /// The same, timings within the tolerance aside.
    Same,
}

/// One line of an exchange diff.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DiffLine {
    /// `same`, `del` (baseline only) or `add` (this kernel only).
    pub op: Op,
    /// The entry, normalised for display.
    pub line: String,
}

/// The kind of a diff line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// In both.
    Same,
    /// In the baseline only.
    Del,
    /// In this kernel's run only.
    Add,
}

/// A delay of the kernel's that differs beyond the tolerance.
#[derive(Clone, Debug, Serialize)]
pub struct Timing {
    /// The frame.
    pub entry: String,
    /// Its delay from the entry before it on the baseline, in ms.
    pub baseline_ms: f64,
    /// The same on this kernel.
    pub this_ms: f64,
}

/// How one kernel's run of a case differs from the baseline's.
#[derive(Clone, Debug, Serialize)]
pub struct Difference {
    /// The kernel (column label).
    pub kernel: String,
    /// The verdicts, when they differ: (baseline, this).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<(Option<VerdictName>, Option<VerdictName>)>,
    /// What differs in the exchange, in words (`win: 64240 → 65160 in > S. ...`,
    /// `extra on 6.19: > . 1:1(0) ack 2`).
    pub changes: Vec<String>,
    /// The exchange diff against the baseline, when the exchanges differ.
    pub diff: Vec<DiffLine>,
    /// The kernel's delays that differ beyond the tolerance.
    pub timing: Vec<Timing>,
}

/// One case on one family across the kernels (a row).
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Case ID.
    pub id: String,
    /// Family.
    pub family: String,
    /// Title.
    pub title: String,
    /// The comparison's outcome.
    pub status: Status,
    /// Verdict per column (`null`: the case did not run there).
    pub verdicts: Vec<Option<VerdictName>>,
    /// The reason of each non-passing verdict, per column.
    pub reasons: Vec<Option<String>>,
    /// Per kernel other than the baseline, what differs (only kernels that differ).
    pub differences: Vec<Difference>,
}

/// Counts of rows by status.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Counts {
    /// Rows in all.
    pub total: usize,
    /// Rows whose verdict or exchange differs.
    pub differs: usize,
    /// Rows whose timings only differ.
    pub timing: usize,
    /// Rows that are the same.
    pub same: usize,
}

/// The comparison of several reports.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// Always [`COMPARE_SCHEMA`].
    pub schema: String,
    /// The kernels, baseline first.
    pub kernels: Vec<Column>,
    /// Counts of rows by status.
    pub summary: Counts,
    /// TCP settings of a fresh namespace that differ between the kernels.
    pub settings: Vec<Setting>,
    /// RFC 9293 requirements whose status differs between the kernels, in
    /// the table's order (reports older than requirements do not count).
    pub requirements: Vec<Setting>,
    /// Every case and family, differing ones first.
    pub cases: Vec<Row>,
}

/// Makes column labels unique: a release shared by several reports gets the report's directory.
fn label(inputs: &mut [Input]) {
    let releases: Vec<String> = inputs.iter().map(|i| i.report.kernel.release.clone()).collect();
    for (i, input) in inputs.iter_mut().enumerate() {
        let shared = releases.iter().filter(|r| **r == releases[i]).count() > 1;
        input.label = if shared {
            let dir = input
                .path
                .parent()
                .map(|p| p.display().to_string())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| ".".into());
            format!("{} ({dir})", releases[i])
        } else {
            releases[i].clone()
        };
    }
    // Two reports in one directory under one release: number them.
    let labels: Vec<String> = inputs.iter().map(|i| i.label.clone()).collect();
    for (i, input) in inputs.iter_mut().enumerate() {
        if labels.iter().filter(|l| **l == labels[i]).count() > 1 {
            input.label = format!("{} #{}", labels[i], i + 1);
        }
    }
}

/// The index pairs of a longest common subsequence of two key lists.
fn common_subsequence(a: &[&str], b: &[&str]) -> Vec<(usize, usize)> {
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut pairs = Vec::new();
    while i < n && j < m {
        if a[i] == b[j] {
            pairs.push((i, j));
            i += 1;
            j += 1;
        } else if lcs[i][j + 1] >= lcs[i + 1][j] {
            j += 1;
        } else {
            i += 1;
        }
    }
    pairs
}

/// Aligns two exchanges stream by stream (see [`normalise::Stream`]): each
/// stream's entries are matched in order, by longest common subsequence, and
/// the result is laid out in `b`'s order, with the entries only `a` has
/// where they stood in `a`. Pairs of indices in both (`Some, Some`), or in
/// one only.
fn align(a: &[Normal], b: &[Normal]) -> Vec<(Option<usize>, Option<usize>)> {
    fn keys<'n>(x: &'n [Normal], idx: &[usize]) -> Vec<&'n str> {
        idx.iter().map(|&k| x[k].key.as_str()).collect()
    }
    let mut partner_of_b: Vec<Option<usize>> = vec![None; b.len()];
    let mut matched_a = vec![false; a.len()];
    let mut streams: Vec<&normalise::Stream> = Vec::new();
    for n in a.iter().chain(b) {
        if !streams.contains(&&n.stream) {
            streams.push(&n.stream);
        }
    }
    for stream in streams {
        let of = |x: &[Normal]| -> Vec<usize> { (0..x.len()).filter(|&k| x[k].stream == *stream).collect() };
        let (ia, jb) = (of(a), of(b));
        for (x, y) in common_subsequence(&keys(a, &ia), &keys(b, &jb)) {
            partner_of_b[jb[y]] = Some(ia[x]);
            matched_a[ia[x]] = true;
        }
    }
    let mut out = Vec::new();
    let mut next_a = 0;
    for (j, partner) in partner_of_b.iter().enumerate() {
        match *partner {
            Some(i) => {
                out.extend((next_a..i).filter(|&k| !matched_a[k]).map(|k| (Some(k), None)));
                next_a = next_a.max(i + 1);
                out.push((Some(i), Some(j)));
            }
            None => out.push((None, Some(j))),
        }
    }
    out.extend((next_a..a.len()).filter(|&k| !matched_a[k]).map(|k| (Some(k), None)));
    out
}

/// What differs between the baseline's run of a case and another kernel's.
fn differ(
    base: &CaseReport,
    base_eph: (u16, u16),
    other: &CaseReport,
    other_eph: (u16, u16),
    label: &str,
) -> Difference {
    let a = normalise::exchange(base, base_eph);
    let b = normalise::exchange(other, other_eph);
    let aligned = align(&a, &b);
    let mut diff = Vec::new();
    let mut changes = Vec::new();
    let mut timing = Vec::new();
    // The pairs matched so far: a kernel's delay is measured on both sides
    // from the latest entry before it that both share in the same order.
    let mut matched: Vec<(usize, usize)> = Vec::new();
    let mut k = 0;
    while k < aligned.len() {
        match aligned[k] {
            (Some(i), Some(j)) => {
                diff.push(DiffLine {
                    op: Op::Same,
                    line: b[j].display.clone(),
                });
                if b[j].from_kernel {
                    let anchor = matched.iter().rev().find(|&&(ai, _)| ai < i);
                    let (ga, gb) = match anchor {
                        Some(&(ai, bj)) => (a[i].at_ms - a[ai].at_ms, b[j].at_ms - b[bj].at_ms),
                        None => (a[i].at_ms, b[j].at_ms),
                    };
                    if (ga - gb).abs() > base.tolerance_ms + other.tolerance_ms {
                        timing.push(Timing {
                            entry: b[j].display.clone(),
                            baseline_ms: (ga * 1e3).round() / 1e3,
                            this_ms: (gb * 1e3).round() / 1e3,
                        });
                    }
                }
                matched.push((i, j));
                k += 1;
            }
            _ => {
                // A run of entries in one side only: pair deletions with additions to explain them.
                let mut dels = Vec::new();
                let mut adds = Vec::new();
                while k < aligned.len() && !matches!(aligned[k], (Some(_), Some(_))) {
                    match aligned[k] {
                        (Some(i), None) => dels.push(i),
                        (None, Some(j)) => adds.push(j),
                        _ => {}
                    }
                    k += 1;
                }
                for &i in &dels {
                    diff.push(DiffLine {
                        op: Op::Del,
                        line: a[i].display.clone(),
                    });
                }
                for &j in &adds {
                    diff.push(DiffLine {
                        op: Op::Add,
                        line: b[j].display.clone(),
                    });
                }
                let mut unpaired_adds: Vec<usize> = adds.clone();
                for &i in &dels {
                    let pair = unpaired_adds
                        .iter()
                        .position(|&j| !normalise::field_changes(&a[i], &b[j]).is_empty());
                    match pair {
                        Some(p) => {
                            let j = unpaired_adds.remove(p);
                            let fields = normalise::field_changes(&a[i], &b[j]).join(", ");
                            if a[i].is_frame() {
                                changes.push(format!("{fields} in `{}`", a[i].display.trim()));
                            } else {
                                changes.push(fields);
                            }
                        }
                        None => changes.push(format!("missing on {label}: `{}`", a[i].display.trim())),
                    }
                }
                for j in unpaired_adds {
                    changes.push(format!("extra on {label}: `{}`", b[j].display.trim()));
                }
            }
        }
    }
    let differs = diff.iter().any(|l| l.op != Op::Same);
    Difference {
        kernel: label.to_string(),
        verdict: (base.verdict != other.verdict).then_some((Some(base.verdict), Some(other.verdict))),
        changes,
        diff: if differs { diff } else { Vec::new() },
        timing,
    }
}

/// Compares `inputs`, the first being the baseline.
pub fn compare(mut inputs: Vec<Input>) -> Result<Comparison, CompareError> {
    if inputs.len() < 2 {
        return Err(CompareError::TooFew(inputs.len()));
    }
    label(&mut inputs);
    let kernels: Vec<Column> = inputs
        .iter()
        .map(|i| Column {
            label: i.label.clone(),
            report: i.path.display().to_string(),
            release: i.report.kernel.release.clone(),
            version: i.report.kernel.version.clone(),
            arch: i.report.kernel.arch.clone(),
            date: i.report.date.clone(),
            tolerance_ms: i.report.tolerance_ms,
            tool_version: i.report.tool.version.clone(),
        })
        .collect();
    let mut names: Vec<&str> = inputs
        .iter()
        .flat_map(|i| i.report.kernel.sysctls.keys().map(String::as_str))
        .collect();
    names.sort_unstable();
    names.dedup();
    let settings = names
        .into_iter()
        .filter_map(|name| {
            let values: Vec<Option<String>> = inputs
                .iter()
                .map(|i| i.report.kernel.sysctls.get(name).cloned())
                .collect();
            values.iter().any(|v| *v != values[0]).then(|| Setting {
                name: name.to_string(),
                values,
            })
        })
        .collect();
    let mut keys: Vec<(String, String)> = inputs
        .iter()
        .flat_map(|i| i.report.results.iter().map(|r| (r.id.clone(), r.family.clone())))
        .collect();
    keys.sort();
    keys.dedup();
    let ephemeral: Vec<(u16, u16)> = inputs
        .iter()
        .map(|i| normalise::ephemeral_range(&i.report.kernel.sysctls))
        .collect();
    let mut rows: Vec<Row> = keys
        .into_iter()
        .map(|(id, family)| {
            let runs: Vec<Option<&CaseReport>> = inputs
                .iter()
                .map(|i| i.report.results.iter().find(|r| r.id == id && r.family == family))
                .collect();
            let title = runs
                .iter()
                .flatten()
                .next()
                .map(|r| r.title.clone())
                .unwrap_or_default();
            let mut differences = Vec::new();
            let mut status = Status::Same;
            for (k, run) in runs.iter().enumerate().skip(1) {
                let d = match (runs[0], run) {
                    (Some(base), Some(other)) => differ(base, ephemeral[0], other, ephemeral[k], &inputs[k].label),
                    (base, other) => Difference {
                        kernel: inputs[k].label.clone(),
                        verdict: Some((base.map(|r| r.verdict), other.map(|r| r.verdict))),
                        changes: vec![match base {
                            Some(_) => format!("the case did not run on {}", inputs[k].label),
                            None => format!("the case did not run on {}", inputs[0].label),
                        }],
                        diff: Vec::new(),
                        timing: Vec::new(),
                    },
                };
                let this = if d.verdict.is_some() || !d.diff.is_empty() || !d.changes.is_empty() {
                    Status::Differs
                } else if !d.timing.is_empty() {
                    Status::Timing
                } else {
                    Status::Same
                };
                status = status.min(this);
                if this != Status::Same {
                    differences.push(d);
                }
            }
            Row {
                id,
                family,
                title,
                status,
                verdicts: runs.iter().map(|r| r.map(|r| r.verdict)).collect(),
                reasons: runs.iter().map(|r| r.and_then(|r| r.reason.clone())).collect(),
                differences,
            }
        })
        .collect();
    rows.sort_by(|a, b| (a.status, &a.id, &a.family).cmp(&(b.status, &b.id, &b.family)));
    let mut summary = Counts {
        total: rows.len(),
        ..Counts::default()
    };
    for r in &rows {
        match r.status {
            Status::Differs => summary.differs += 1,
            Status::Timing => summary.timing += 1,
            Status::Same => summary.same += 1,
        }
    }
    Ok(Comparison {
        schema: COMPARE_SCHEMA.to_string(),
        kernels,
        summary,
        settings,
        requirements: requirement_changes(&inputs),
        cases: rows,
    })
}

/// The requirements whose status differs between the reports that have them.
fn requirement_changes(inputs: &[Input]) -> Vec<Setting> {
    let Some(ids) = inputs
        .iter()
        .map(|i| &i.report.requirements.rows)
        .find(|rows| !rows.is_empty())
    else {
        return Vec::new();
    };
    ids.iter()
        .filter_map(|row| {
            let values: Vec<Option<String>> = inputs
                .iter()
                .map(|i| {
                    let rows = &i.report.requirements.rows;
                    rows.iter()
                        .find(|r| r.id == row.id)
                        .map(|r| r.status.name().to_string())
                })
                .collect();
            let mut seen: Vec<&String> = values.iter().flatten().collect();
            seen.dedup();
            (seen.len() > 1).then(|| Setting {
                name: row.id.clone(),
                values,
            })
        })
        .collect()
}

/// Writes `compare.json`, `compare.md` and `compare.html` into `dir`;
/// `dir` is where links to the reports' pages are made relative to.
pub fn write(comparison: &Comparison, dir: &Path) -> Result<(), CompareError> {
    let fail = |source| {
        CompareError::Write(ReportError::Directory {
            path: dir.to_path_buf(),
            source,
        })
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    atomic::sweep(dir).map_err(fail)?;
    let write = |name: &str, text: String| -> Result<(), CompareError> {
        atomic::write(&dir.join(name), |out| out.write_all(text.as_bytes()))
            .map_err(|e: WriteError| CompareError::Write(e.into()))
    };
    write("compare.md", render::markdown(comparison))?;
    write("compare.html", render::html(comparison, dir))?;
    let json = serde_json::to_string_pretty(comparison).map_err(|e| {
        CompareError::Write(ReportError::Write(WriteError {
            path: dir.join("compare.json"),
            source: std::io::Error::other(e),
        }))
    })?;
    write("compare.json", json + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::schema::tests::sample;
    use crate::report::schema::{Entry, Way};

    fn input(report: Report, dir: &str) -> Input {
        Input {
            label: String::new(),
            path: PathBuf::from(dir).join("report.json"),
            report,
        }
    }

    #[test]
    fn the_same_report_twice_is_the_same_everywhere() {
        let c = compare(vec![input(sample(), "a"), input(sample(), "b")]).expect("compared");
        assert_eq!(c.summary.differs, 0);
        assert_eq!(c.summary.same, 2);
        assert!(c.settings.is_empty());
        assert_eq!(c.kernels[0].label, "6.18.0 (a)");
        assert_eq!(c.kernels[1].label, "6.18.0 (b)");
    }

    #[test]
    fn a_different_window_an_extra_ack_and_a_verdict_are_spelled_out_first() {
        let mut other = sample();
        other.kernel.release = "6.19.0".into();
        other.kernel.sysctls.insert("net.ipv4.tcp_sack".into(), "0".into());
        let case = &mut other.results[0];
        if let Entry::Frame { segment, .. } = &mut case.exchange[1] {
            *segment = "F. 1:1(0) ack 1 win 65160".into();
        }
        case.exchange.push(Entry::Frame {
            at_ms: 0.7,
            direction: Way::FromKernel,
            flow: Some("c".into()),
            segment: ". 2:2(0) ack 2 win 502".into(),
            checksum_ok: true,
            length: 54,
        });
        case.verdict = VerdictName::Fail;
        let c = compare(vec![input(sample(), "a"), input(other, "b")]).expect("compared");
        assert_eq!(c.summary.differs, 1);
        let first = &c.cases[0];
        assert_eq!((first.family.as_str(), first.status), ("ipv4", Status::Differs));
        let d = &first.differences[0];
        assert_eq!(d.kernel, "6.19.0");
        assert_eq!(d.verdict, Some((Some(VerdictName::Pass), Some(VerdictName::Fail))));
        assert_eq!(
            d.changes,
            [
                "win: 64240 → 65160 in `> F. 1:1(0) ack 1 win 64240  [c]`",
                "extra on 6.19.0: `> . 2:2(0) ack 2 win 502  [c]`"
            ]
        );
        assert_eq!(d.diff.iter().filter(|l| l.op == Op::Del).count(), 1);
        assert_eq!(d.diff.iter().filter(|l| l.op == Op::Add).count(), 2);
        assert_eq!(c.cases[1].status, Status::Same);
        assert_eq!(c.settings.len(), 1);
        assert_eq!(c.settings[0].values, [Some("1".to_string()), Some("0".to_string())]);
    }

    #[test]
    fn changed_fields_of_one_entry_are_stated_together_and_calls_without_their_line() {
        let mut other = sample();
        other.kernel.release = "6.19.0".into();
        let exchange = &mut other.results[0].exchange;
        if let Entry::Frame { segment, .. } = &mut exchange[1] {
            *segment = "F. 1:1(0) ack 2 win 65160".into();
        }
        if let Entry::Call { result, .. } = &mut exchange[0] {
            *result = "-1 EBADF".into();
        }
        let c = compare(vec![input(sample(), "a"), input(other, "b")]).expect("compared");
        assert_eq!(
            c.cases[0].differences[0].changes,
            [
                "result of close(conn): 0 → -1 EBADF",
                "ack: 1 → 2, win: 64240 → 65160 in `> F. 1:1(0) ack 1 win 64240  [c]`"
            ]
        );
    }

    #[test]
    fn slower_kernel_replies_beyond_the_tolerance_are_timing_only() {
        let mut other = sample();
        if let Entry::Frame { at_ms, .. } = &mut other.results[0].exchange[1] {
            *at_ms += 200.0;
        }
        let c = compare(vec![input(sample(), "a"), input(other, "b")]).expect("compared");
        assert_eq!(c.summary.differs, 0);
        assert_eq!(c.summary.timing, 1);
        let t = &c.cases[0].differences[0].timing[0];
        assert_eq!((t.baseline_ms, t.this_ms), (0.02, 200.02));
    }

    /// The sample's case with two flows' keepalive probes, on one tick, in
    /// the order given.
    fn two_probes(order: [(&str, &str); 2]) -> Report {
        let mut report = sample();
        report.results[0]
            .exchange
            .extend(order.map(|(flow, segment)| Entry::Frame {
                at_ms: 1000.0,
                direction: Way::FromKernel,
                flow: Some(flow.into()),
                segment: segment.into(),
                checksum_ok: true,
                length: 54,
            }));
        report
    }

    #[test]
    fn two_flows_interleaved_otherwise_are_the_same_but_one_flow_reordered_differs() {
        let (c1, c2) = (("c1", ". 0:0(0) ack 2 win 64239"), ("c2", ". 0:0(0) ack 1 win 64240"));
        let c = compare(vec![input(two_probes([c1, c2]), "a"), input(two_probes([c2, c1]), "b")]).expect("compared");
        assert_eq!((c.summary.differs, c.summary.timing), (0, 0));
        assert_eq!(c.cases[0].status, Status::Same);

        let (first, second) = (("c", ". 0:0(0) ack 2 win 64239"), ("c", ". 0:0(0) ack 1 win 64240"));
        let c = compare(vec![
            input(two_probes([first, second]), "a"),
            input(two_probes([second, first]), "b"),
        ])
        .expect("compared");
        assert_eq!(c.summary.differs, 1);
        assert_eq!(c.cases[0].status, Status::Differs);
    }

    #[test]
    fn a_case_missing_from_one_report_differs() {
        let mut other = sample();
        other.results.pop();
        let c = compare(vec![input(sample(), "a"), input(other, "b")]).expect("compared");
        assert_eq!(c.cases[0].family, "ipv6");
        assert_eq!(c.cases[0].verdicts[1], None);
        assert_eq!(
            c.cases[0].differences[0].changes,
            ["the case did not run on 6.18.0 (b)"]
        );
    }

    /// A report whose run named MUST-13 with `verdicts`.
    fn with_requirements(verdicts: [VerdictName; 2]) -> Report {
        let mut report = sample();
        for (r, v) in report.results.iter_mut().zip(verdicts) {
            r.verdict = v;
            r.requirements = vec!["MUST-13".into()];
        }
        let info = crate::report::schema::RunInfo {
            kernel: report.kernel.clone(),
            tolerance: std::time::Duration::from_millis(10),
            slack: std::time::Duration::ZERO,
            date: report.date.clone(),
            duration: std::time::Duration::from_secs(1),
        };
        report.requirements = Report::new(&info, &[]).requirements;
        let rows = &mut report.requirements.rows;
        let must13 = rows.iter_mut().find(|r| r.id == "MUST-13").expect("MUST-13");
        must13.status = if verdicts.contains(&VerdictName::Fail) {
            crate::requirements::Status::Failed
        } else {
            crate::requirements::Status::Met
        };
        report
    }

    #[test]
    fn a_requirement_whose_status_differs_is_listed_and_an_old_report_does_not_count() {
        let met = with_requirements([VerdictName::Pass, VerdictName::Pass]);
        let failed = with_requirements([VerdictName::Pass, VerdictName::Fail]);
        let c = compare(vec![input(met.clone(), "a"), input(failed, "b"), input(sample(), "c")]).expect("compared");
        let names: Vec<&str> = c.requirements.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["MUST-13"]);
        assert_eq!(
            c.requirements[0].values,
            [Some("met".to_string()), Some("failed".to_string()), None]
        );
        let md = render::markdown(&c);
        assert!(md.contains("| MUST-13 | met | failed | (not in the report) |"), "{md}");
        let same = compare(vec![input(met.clone(), "a"), input(met, "b")]).expect("compared");
        assert!(same.requirements.is_empty());
    }

    #[test]
    fn one_report_is_not_enough() {
        assert!(matches!(
            compare(vec![input(sample(), "a")]),
            Err(CompareError::TooFew(1))
        ));
    }
}
