//! The kernel's packetdrill selftests (`../shared/corpora/linux-packetdrill`)
//! under tcpconform, all in flight, against packetdrill one script at a
//! time (`../shared/baselines/packetdrill-linux-6.18.tsv`).
//!
//! `cargo bench --bench corpus_wall [-- JOBS]` prints the corpus's wall
//! time beside packetdrill's total and its longest script (targets: at most
//! 0.1 of the total, aiming at 1.2 times the longest script), how many of
//! packetdrill's passes passed, and where the time goes: the CPU the run
//! and its commands used, and how long scripts spent in their commands
//! (`./defaults.sh`, run as written), in their Python blocks, and on their
//! timelines.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use tcpconform::event::{Record, Verdict};
use tcpconform::suite;

/// CPU time used so far by this process and by its waited-for children.
fn cpu() -> (Duration, Duration) {
    let usage = |who| {
        // SAFETY: getrusage fills the zeroed struct it is given.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut u) };
        let t = |tv: libc::timeval| Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000);
        t(u.ru_utime) + t(u.ru_stime)
    };
    (usage(libc::RUSAGE_SELF), usage(libc::RUSAGE_CHILDREN))
}

fn main() -> ExitCode {
    let jobs = common::jobs();
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    let corpus = shared.join("corpora/linux-packetdrill");
    let Ok(baseline) = std::fs::read_to_string(shared.join("baselines/packetdrill-linux-6.18.tsv")) else {
        println!("skipped: no corpus");
        return ExitCode::SUCCESS;
    };
    // (script, family) -> (verdict, seconds)
    let baseline: BTreeMap<(String, String), (String, f64)> = baseline
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let seconds = f.get(4)?.parse().ok()?;
            Some((
                (f[0].trim_end_matches(".pkt").to_string(), f[1].to_string()),
                (f[2].to_string(), seconds),
            ))
        })
        .collect();
    let cases = match common::load(corpus) {
        Ok(cases) => cases,
        Err(code) => return code,
    };
    let runs = suite::plan(&cases, None);
    let total = runs.len();
    let cpu_before = cpu();
    let (results, wall) = common::run(runs, jobs);
    let cpu_after = cpu();
    let secs = |d: Duration| d.as_secs_f64();

    let pd_total: f64 = baseline.values().map(|(_, t)| t).sum();
    let (pd_longest, pd_longest_name) = baseline
        .iter()
        .map(|(k, (_, t))| (*t, format!("{}::{}", k.0, k.1)))
        .fold((0.0, String::new()), |a, b| if b.0 > a.0 { b } else { a });
    let pd_passes = baseline.values().filter(|(v, _)| v == "pass").count();
    let kept = results
        .iter()
        .filter(|r| {
            r.verdict == Verdict::Pass
                && baseline
                    .get(&(r.id.clone(), r.family.to_string()))
                    .is_some_and(|(v, _)| v == "pass")
        })
        .count();

    // Where each script's time went, from its exchange.
    let (mut commands, mut code, mut sum) = (0.0, 0.0, 0.0);
    for r in &results {
        sum += secs(r.duration);
        for rec in &r.exchange {
            if let Record::Command { at, returned, text, .. } = rec {
                let took = (returned - at) as f64 / 1e9;
                if text.starts_with("python3:") {
                    code += took;
                } else {
                    commands += took;
                }
            }
        }
    }
    let longest = results.iter().max_by_key(|r| r.duration);

    let scripts = cases
        .iter()
        .map(|c| &c.path)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    common::print_verdicts("corpus", total, &format!("{scripts} scripts"), jobs, &results);
    println!("  packetdrill's passes passed   {kept}/{pd_passes}");
    println!("  wall time                     {:7.2} s", secs(wall));
    println!("  packetdrill, one at a time    {pd_total:7.2} s  (sum of the baseline's median runs)");
    println!(
        "  ratio to packetdrill          {:7.3}    (target <= 0.1)",
        secs(wall) / pd_total
    );
    println!("  packetdrill's longest script  {pd_longest:7.2} s  ({pd_longest_name})");
    println!(
        "  ratio to that script          {:7.3}    (aim: 1.2)",
        secs(wall) / pd_longest
    );
    if let Some(l) = longest {
        println!(
            "  longest run here              {:7.2} s  ({})",
            secs(l.duration),
            l.name()
        );
    }
    println!("where the time goes:");
    println!(
        "  CPU, tcpconform               {:7.2} s",
        secs(cpu_after.0.saturating_sub(cpu_before.0))
    );
    println!(
        "  CPU, its commands and Python  {:7.2} s",
        secs(cpu_after.1.saturating_sub(cpu_before.1))
    );
    println!("  runs' time, summed            {sum:7.2} s");
    println!("    in commands (as written)    {commands:7.2} s");
    println!("    in Python blocks            {code:7.2} s");
    println!("    the rest (labs, timelines)  {:7.2} s", sum - commands - code);
    ExitCode::SUCCESS
}
