//! The whole suite against its slowest case: every case under `cases/` on
//! both families, all in flight at once through [`tcpconform::suite`].
//!
//! `cargo bench --bench suite_wall [-- JOBS]` prints the run's wall time,
//! the longest single case's time and their ratio. Cases spend their time
//! waiting on the kernel's timers, so a concurrent run should take barely
//! longer than its longest case (TIME_WAIT's fixed 60 s): the target ratio
//! is 1.2 at most. Failed cases are listed and make the benchmark fail, as
//! their times would mean nothing.

mod common;

use std::path::Path;
use std::process::ExitCode;

use tcpconform::event::Verdict;
use tcpconform::suite;

fn main() -> ExitCode {
    let jobs = common::jobs();
    let cases = match common::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("cases")) {
        Ok(cases) => cases,
        Err(code) => return code,
    };
    let runs = suite::plan(&cases, None);
    let total = runs.len();
    let (results, wall) = common::run(runs, jobs);
    let Some(longest) = results.iter().max_by_key(|r| r.duration) else {
        eprintln!("no case ran");
        return ExitCode::from(2);
    };
    let secs = |d: std::time::Duration| d.as_secs_f64();
    common::print_verdicts("suite", total, &format!("{} cases", cases.len()), jobs, &results);
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
