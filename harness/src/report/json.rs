//! `report.json`: the machine-readable report of a run (schema
//! `tcpconform-report/1`, documented in docs/REPORT.md). It holds the tool,
//! the date, the kernel, and per case and family the verdict and the whole
//! observed exchange, plus a summary and a coverage map of the catalogue.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::{Kernel, Reporter, utc_now};
use crate::behaviors;
use crate::case::DEFAULT_TOLERANCE;
use crate::engine::{MAX_SLACK, Options};
use crate::event::{CaseResult, Event, Record};

/// The schema identifier written in every report.
pub const SCHEMA: &str = "tcpconform-report/1";

/// Collects results and writes `report.json` into a directory when the run ends.
pub struct JsonReport {
    dir: PathBuf,
    timing: Value,
    results: Vec<CaseResult>,
}

impl JsonReport {
    /// A reporter writing into `dir` (created if needed) the results of a run with `options`.
    pub fn new(dir: PathBuf, options: &Options) -> JsonReport {
        JsonReport {
            dir,
            timing: timing(options),
            results: Vec::new(),
        }
    }
}

/// The run's timing settings: a step's window is its tolerance plus
/// `min(slack_ms, its tolerance, max_slack_ms)`.
fn timing(options: &Options) -> Value {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    json!({
        "default_tolerance_ms": ms(options.tolerance.unwrap_or(DEFAULT_TOLERANCE)),
        "slack_ms": ms(options.slack),
        "max_slack_ms": ms(MAX_SLACK),
    })
}

fn record(r: &Record) -> Value {
    let ms = |ns: i64| ns as f64 / 1e6;
    match r {
        Record::Frame {
            at,
            direction,
            flow,
            text,
            checksum_ok,
            bytes,
            ..
        } => json!({
            "kind": "frame",
            "at_ms": ms(*at),
            "direction": match direction {
                crate::event::Direction::ToKernel => "to_kernel",
                crate::event::Direction::FromKernel => "from_kernel",
            },
            "flow": flow,
            "segment": text,
            "checksum_ok": checksum_ok,
            "length": bytes.len(),
        }),
        Record::Call {
            at,
            returned,
            text,
            result,
            sigpipe,
        } => json!({
            "kind": "call", "at_ms": ms(*at), "returned_ms": ms(*returned),
            "call": text, "result": result, "sigpipe": sigpipe,
        }),
        Record::State { at, target, state } => {
            json!({ "kind": "state", "at_ms": ms(*at), "target": target, "state": state })
        }
        Record::Sysctl { at, name, value } => {
            json!({ "kind": "sysctl", "at_ms": ms(*at), "name": name, "value": value })
        }
        Record::AcceptQueue { at, socket, len, limit } => json!({
            "kind": "accept_queue", "at_ms": ms(*at), "socket": socket, "len": len, "limit": limit,
        }),
    }
}

fn result(r: &CaseResult) -> Value {
    json!({
        "id": r.id,
        "title": r.title,
        "covers": r.covers,
        "rfc": r.rfc,
        "description": r.description,
        "family": r.family.name(),
        "verdict": r.verdict.name(),
        "reason": r.verdict.message(),
        "duration_ms": r.duration.as_secs_f64() * 1e3,
        "tolerance_ms": r.tolerance.as_secs_f64() * 1e3,
        "sysctls": r.sysctls.iter().map(|s| (s.name.clone(), Value::from(s.value.clone()))).collect::<serde_json::Map<_, _>>(),
        "exchange": r.exchange.iter().map(record).collect::<Vec<_>>(),
    })
}

/// The whole report of `results` as JSON, with the run's `timing` settings.
pub fn report(results: &[CaseResult], timing: &Value) -> Value {
    let mut summary = BTreeMap::from([("pass", 0), ("fail", 0), ("skip", 0), ("error", 0)]);
    for r in results {
        *summary.entry(r.verdict.name()).or_default() += 1;
    }
    let coverage: serde_json::Map<String, Value> = behaviors::catalogue()
        .into_iter()
        .map(|b| {
            let runs: Vec<Value> = results
                .iter()
                .filter(|r| r.covers.contains(&b.id))
                .map(|r| json!({ "case": r.id, "family": r.family.name(), "verdict": r.verdict.name() }))
                .collect();
            (
                b.id.clone(),
                json!({ "behavior": b.text, "section": b.section, "runs": runs }),
            )
        })
        .collect();
    json!({
        "schema": SCHEMA,
        "tool": { "name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION") },
        "date": utc_now(),
        "kernel": Kernel::running(),
        "timing": timing,
        "summary": summary,
        "coverage": coverage,
        "results": results.iter().map(result).collect::<Vec<_>>(),
    })
}

impl Reporter for JsonReport {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::CaseFinished(r) => self.results.push((**r).clone()),
            Event::RunFinished { .. } => {
                std::fs::create_dir_all(&self.dir)?;
                let text =
                    serde_json::to_string_pretty(&report(&self.results, &self.timing)).map_err(io::Error::other)?;
                std::fs::write(self.dir.join("report.json"), text + "\n")?;
            }
            Event::RunStarted { .. } | Event::CaseStarted { .. } => {}
        }
        Ok(())
    }
}
