//! What the wall-time benchmarks (`suite_wall`, `corpus_wall`) share: the
//! JOBS argument, loading a tree of cases, running them all in flight and
//! timing it, and the run's first line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tcpconform::case::Case;
use tcpconform::engine::Options;
use tcpconform::event::CaseResult;
use tcpconform::packet::Family;
use tcpconform::suite::{self, DEFAULT_JOBS, Summary};

/// How many cases may be in flight: the benchmark's argument
/// (`cargo bench --bench NAME -- JOBS`), the suite's default without one.
pub fn jobs() -> usize {
    std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(DEFAULT_JOBS)
}

/// The cases under `root`; a load error is printed and becomes exit code 2.
pub fn load(root: PathBuf) -> Result<Vec<Case>, ExitCode> {
    suite::load(&[root]).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(2)
    })
}

/// The results of `runs`, up to `jobs` in flight at once, and the run's wall time.
pub fn run(runs: Vec<(Arc<Case>, Family)>, jobs: usize) -> (Vec<CaseResult>, Duration) {
    let started = Instant::now();
    let results = suite::run(runs, &Options::default(), jobs, &mut |_| {});
    (results, started.elapsed())
}

/// Prints the run's first line: `NAME: TOTAL runs of COUNT, up to JOBS in
/// flight:` and its verdicts; `count` says what of (`12 cases`).
pub fn print_verdicts(name: &str, total: usize, count: &str, jobs: usize, results: &[CaseResult]) {
    let s = Summary::of(results);
    println!(
        "{name}: {total} runs of {count}, up to {jobs} in flight: {} passed, {} failed, {} skipped, {} errors",
        s.pass, s.fail, s.skip, s.error
    );
}
