//! The whole suite against its slowest case: every case under `cases/` on
//! both families, all in flight at once through [`tcpconform::suite`].
//!
//! `cargo bench --bench suite_wall [-- JOBS]` prints the run's wall time,
//! the longest single case's time and their ratio. Cases spend their time
//! waiting on the kernel's timers, so a concurrent run should take barely
//! longer than its longest case (TIME_WAIT's fixed 60 s): the target ratio
//! is 1.2 at most. Failed cases are listed and make the benchmark fail, as
//! their times would mean nothing.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use tcpconform::engine::Options;
use tcpconform::event::Verdict;
use tcpconform::suite::{self, DEFAULT_JOBS, Summary};

fn main() -> ExitCode {
    let jobs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(DEFAULT_JOBS);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
    let cases = match suite::load(&[root]) {
        Ok(cases) => cases,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runs = suite::plan(&cases, None);
    let total = runs.len();
    let started = Instant::now();
    let results = suite::run(runs, &Options::default(), jobs, &mut |_| {});
    let wall = started.elapsed();
    let Some(longest) = results.iter().max_by_key(|r| r.duration) else {
        eprintln!("no case ran");
        return ExitCode::from(2);
    };
    let s = Summary::of(&results);
    let secs = |d: std::time::Duration| d.as_secs_f64();
    println!(
        "suite: {total} runs of {} cases, up to {jobs} in flight: {} passed, {} failed, {} skipped, {} errors",
        cases.len(),
        s.pass,
        s.fail,
        s.skip,
        s.error
    );
    println!("  wall time     {:7.2} s", secs(wall));
    println!("  longest case  {:7.2} s  ({})", secs(longest.duration), longest.name());
    println!(
        "  ratio         {:7.3}    (target <= 1.2)",
        secs(wall) / secs(longest.duration)
    );
    let mut failed = false;
    for r in &results {
        if let Verdict::Fail(m) | Verdict::Error(m) = &r.verdict {
            println!("\n{} {}: {m}", r.verdict.name().to_uppercase(), r.name());
            failed = true;
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
