//! The terminal reporter: one line per finished case, the failures in
//! full, a summary at the end, and a progress bar while the run goes on
//! when standard error is a terminal.

use std::io::{self, IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};

use super::Reporter;
use crate::event::{Event, Verdict};

/// Writes a run's progress to standard output (and a progress bar to standard error).
#[derive(Default)]
pub struct Terminal {
    bar: Option<ProgressBar>,
    verbose: bool,
    counts: [usize; 4],
}

impl Terminal {
    /// A reporter; `verbose` also prints the exchange of failed cases.
    pub fn new(verbose: bool) -> Terminal {
        Terminal {
            verbose,
            ..Terminal::default()
        }
    }

    fn line(&self, text: &str) -> io::Result<()> {
        match &self.bar {
            Some(bar) => {
                bar.suspend(|| writeln!(io::stdout(), "{text}"))?;
                Ok(())
            }
            None => writeln!(io::stdout(), "{text}"),
        }
    }
}

impl Reporter for Terminal {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::RunStarted { total } => {
                if io::stderr().is_terminal() {
                    let bar = ProgressBar::new(*total as u64);
                    bar.set_style(
                        ProgressStyle::with_template("{bar:40} {pos}/{len} cases, {elapsed} {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    self.bar = Some(bar);
                }
            }
            Event::CaseStarted { .. } => {}
            Event::CaseFinished(result) => {
                let (index, tag) = match &result.verdict {
                    Verdict::Pass => (0, "PASS "),
                    Verdict::Fail(_) => (1, "FAIL "),
                    Verdict::Skip(_) => (2, "SKIP "),
                    Verdict::Error(_) => (3, "ERROR"),
                };
                self.counts[index] += 1;
                let mut text = format!("{tag} {} ({} ms)", result.name(), result.duration.as_millis());
                match &result.verdict {
                    Verdict::Pass => {}
                    Verdict::Skip(reason) => text.push_str(&format!(": {reason}")),
                    Verdict::Fail(m) | Verdict::Error(m) => {
                        for l in m.lines() {
                            text.push_str(&format!("\n      {l}"));
                        }
                        if self.verbose {
                            text.push_str("\n      exchange:");
                            for r in &result.exchange {
                                text.push_str(&format!("\n      {r}"));
                            }
                        }
                    }
                }
                self.line(&text)?;
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                    bar.set_message(format!("{} failed", self.counts[1] + self.counts[3]));
                }
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
                )?;
            }
        }
        Ok(())
    }
}
