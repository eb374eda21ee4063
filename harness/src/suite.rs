//! The suite runner: loads the cases under some paths and runs every
//! (case, family) pair, many at once, emitting [`Event`]s to reporters.
//!
//! Cases spend most of their time waiting on the kernel's timers, so the
//! runner keeps far more of them in flight than there are cores; each runs
//! in a lab of its own, so they cannot disturb one another.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::case::{self, Case, CaseError};
use crate::engine::{self, Options};
use crate::event::{CaseResult, Event, Verdict};
use crate::packet::Family;

/// How long a run waits at its end for labs still being released.
const TEARDOWN_WAIT: Duration = Duration::from_secs(10);

/// Default number of cases in flight: more than the suite has runs, so
/// that no case waits for another's timers (the longest, TIME_WAIT's 60 s,
/// sets the suite's wall time).
pub const DEFAULT_JOBS: usize = 256;

/// Why a suite could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A path could not be read (the message names it).
    #[error("{0}")]
    Io(std::io::Error),
    /// Some case files are invalid (or claim an ID another file has); every problem is listed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Cases(Vec<CaseError>),
    /// The paths hold no case at all.
    #[error("no case files (*.yaml, *.pkt) under {0}")]
    Empty(String),
}

/// Loads every case under `paths`, reporting all invalid files at once; a
/// file whose case ID another file already has is one of them.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Case>, LoadError> {
    let files = case::discover(paths).map_err(LoadError::Io)?;
    if files.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(LoadError::Empty(names.join(", ")));
    }
    let mut cases: Vec<Case> = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match case::load_file(&file) {
            Ok(loaded) => {
                for c in loaded {
                    // A packetdrill script is one case per family, under one ID.
                    let taken = cases
                        .iter()
                        .find(|o| o.id == c.id && o.families.iter().any(|f| c.families.contains(f)));
                    match taken {
                        Some(first) => errors.push(CaseError::of_file(
                            c.path.clone(),
                            format!("case id `{}` is already used by {}", c.id, first.file().display()),
                        )),
                        None => cases.push(c),
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(LoadError::Cases(errors))
    }
}

/// The (case, family) runs of `cases`, restricted to `family` when given.
pub fn plan(cases: &[Case], family: Option<Family>) -> Vec<(Arc<Case>, Family)> {
    cases
        .iter()
        .flat_map(|c| {
            let c = Arc::new(c.clone());
            c.families
                .clone()
                .into_iter()
                .filter(move |f| family.is_none_or(|only| only == *f))
                .map(move |f| (c.clone(), f))
        })
        .collect()
}

/// Runs `runs` with up to `jobs` in flight, giving every event to `emit`, and returns the results.
pub fn run(
    runs: Vec<(Arc<Case>, Family)>,
    options: &Options,
    jobs: usize,
    emit: &mut dyn FnMut(&Event),
) -> Vec<CaseResult> {
    let started = Instant::now();
    emit(&Event::RunStarted { total: runs.len() });
    let queue = Arc::new(Mutex::new(runs.into_iter().collect::<VecDeque<_>>()));
    let (tx, rx) = mpsc::channel::<Event>();
    let workers = jobs.clamp(1, queue.lock().map(|q| q.len()).unwrap_or(1).max(1));
    let mut results = Vec::new();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let queue = queue.clone();
            let tx = tx.clone();
            scope.spawn(move || {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some((case, family)) = next else { break };
                    let _ = tx.send(Event::CaseStarted {
                        id: case.id.clone(),
                        family,
                    });
                    let result = engine::run(&case, family, options);
                    let _ = tx.send(Event::CaseFinished(Box::new(result)));
                }
            });
        }
        drop(tx);
        for event in rx {
            emit(&event);
            if let Event::CaseFinished(result) = event {
                results.push(*result);
            }
        }
    });
    crate::lab::wait_for_teardowns(TEARDOWN_WAIT);
    emit(&Event::RunFinished {
        duration: started.elapsed(),
    });
    results
}

/// Counts of verdicts in a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Passed.
    pub pass: usize,
    /// Failed.
    pub fail: usize,
    /// Skipped.
    pub skip: usize,
    /// Errored.
    pub error: usize,
}

impl Summary {
    /// Counts the verdicts of `results`.
    pub fn of(results: &[CaseResult]) -> Summary {
        let mut s = Summary::default();
        for r in results {
            match r.verdict {
                Verdict::Pass => s.pass += 1,
                Verdict::Fail(_) => s.fail += 1,
                Verdict::Skip(_) => s.skip += 1,
                Verdict::Error(_) => s.error += 1,
            }
        }
        s
    }
}
