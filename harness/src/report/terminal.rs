//! The terminal reporter: one line per finished case, failures in full, a
//! summary at the end, and, when standard output is a terminal, a progress
//! bar under the lines with the counts so far and the cases in flight.
//! Without a terminal (CI logs, pipes) it prints plain lines only.

use std::collections::BTreeSet;
use std::io::{self, IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{ReportError, Reporter};
use crate::event::{CaseResult, Event, Verdict};

/// Writes a run's progress to standard output.
#[derive(Default)]
pub struct Terminal {
    bar: Option<ProgressBar>,
    verbose: bool,
    counts: [usize; 4],
    running: BTreeSet<String>,
}

/// The line (and, for failures, the lines under it) a finished case prints.
fn case_lines(result: &CaseResult, verbose: bool) -> String {
    let tag = match &result.verdict {
        Verdict::Pass => "PASS ",
        Verdict::Fail(_) => "FAIL ",
        Verdict::Skip(_) => "SKIP ",
        Verdict::Error(_) => "ERROR",
    };
    let mut text = format!("{tag} {} ({} ms)", result.name(), result.duration.as_millis());
    match &result.verdict {
        Verdict::Pass => {}
        Verdict::Skip(reason) => text.push_str(&format!(": {reason}")),
        Verdict::Fail(m) | Verdict::Error(m) => {
            for l in m.lines() {
                text.push_str(&format!("\n      {l}"));
            }
            if verbose {
                text.push_str("\n      exchange:");
                for r in &result.exchange {
                    text.push_str(&format!("\n      {r}"));
                }
            }
        }
    }
    text
}

impl Terminal {
    /// A reporter; `verbose` also prints the exchange of failed cases.
    pub fn new(verbose: bool) -> Terminal {
        Terminal {
            verbose,
            ..Terminal::default()
        }
    }

    fn line(&self, text: &str) -> Result<(), ReportError> {
        match &self.bar {
            Some(bar) => bar.suspend(|| writeln!(io::stdout(), "{text}")),
            None => writeln!(io::stdout(), "{text}"),
        }
        .map_err(ReportError::Terminal)
    }

    fn update_bar(&self) {
        let Some(bar) = &self.bar else { return };
        let [pass, fail, skip, error] = self.counts;
        let mut msg = format!(
            "{} running · {pass} passed, {fail} failed, {skip} skipped, {error} errors",
            self.running.len()
        );
        if let Some(first) = self.running.iter().next() {
            msg.push_str(&format!(" · {first}"));
            if self.running.len() > 1 {
                msg.push_str(", ...");
            }
        }
        bar.set_message(msg);
    }
}

impl Reporter for Terminal {
    fn event(&mut self, event: &Event) -> Result<(), ReportError> {
        match event {
            Event::RunStarted { total } => {
                if io::stdout().is_terminal() {
                    let bar = ProgressBar::with_draw_target(Some(*total as u64), ProgressDrawTarget::stdout());
                    bar.set_style(
                        ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} {elapsed:>3} {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    self.bar = Some(bar);
                }
            }
            Event::CaseStarted { id, family } => {
                self.running.insert(format!("{id}::{family}"));
                self.update_bar();
            }
            Event::CaseFinished(result) => {
                let index = match &result.verdict {
                    Verdict::Pass => 0,
                    Verdict::Fail(_) => 1,
                    Verdict::Skip(_) => 2,
                    Verdict::Error(_) => 3,
                };
                self.counts[index] += 1;
                self.running.remove(&result.name());
                self.line(&case_lines(result, self.verbose))?;
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                self.update_bar();
            }
            Event::RunFinished { duration } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                let [pass, fail, skip, error] = self.counts;
                writeln!(
                    io::stdout(),
                    "{pass} passed, {fail} failed, {skip} skipped, {error} errors in {:.1}s",
                    duration.as_secs_f64()
                )
                .map_err(ReportError::Terminal)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::packet::Family;

    fn result(verdict: Verdict) -> CaseResult {
        CaseResult {
            id: "closing/x".into(),
            title: "t".into(),
            covers: vec![],
            rfc: vec![],
            requirements: vec![],
            deviates: vec![],
            description: None,
            family: Family::Ipv6,
            syntax: crate::case::Syntax::Yaml,
            verdict,
            duration: Duration::from_millis(12),
            tolerance: Duration::from_millis(10),
            sysctls: vec![],
            exchange: vec![crate::event::Record::State {
                at: 1000,
                target: "conn".into(),
                state: "CLOSED".into(),
            }],
            judged_until: Some(1000),
            notes: vec![],
        }
    }

    #[test]
    fn a_failure_prints_its_message_indented_and_the_exchange_when_verbose() {
        let r = result(Verdict::Fail("c.yaml:1:1: boom\n    detail".into()));
        assert_eq!(
            case_lines(&r, false),
            "FAIL  closing/x::ipv6 (12 ms)\n      c.yaml:1:1: boom\n          detail"
        );
        let verbose = case_lines(&r, true);
        let tail: Vec<&str> = verbose.lines().rev().take(2).collect();
        assert_eq!(tail, ["      0.000001s   state conn CLOSED", "      exchange:"]);
        assert_eq!(
            case_lines(&result(Verdict::Skip("knob".into())), true),
            "SKIP  closing/x::ipv6 (12 ms): knob"
        );
    }
}
