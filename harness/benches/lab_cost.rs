//! The fixed cost of a case: `engine::run` of a case with no steps, which
//! builds a lab (two namespaces, a veth pair, addresses, neighbours,
//! offloads, raw and sock_diag sockets), runs nothing and tears it down.
//!
//! `cargo bench --bench lab_cost [-- RUNS]` prints the distribution over RUNS
//! runs (default 100). packetdrill pays about 155 ms per script on the same
//! kind of machine (measured with `time packetdrill` on an empty script).

use std::path::Path;
use std::time::{Duration, Instant};

use tcpconform::case::load_str;
use tcpconform::engine::{self, Options};
use tcpconform::event::Verdict;
use tcpconform::packet::Family;

fn main() {
    let runs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(100);
    let case = load_str(Path::new("bench/empty.yaml"), "title: empty\nsteps: []\n").expect("a valid case");
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    let all = Instant::now();
    for i in 0..runs {
        let family = Family::ALL[i % 2];
        let started = Instant::now();
        let result = engine::run(&case, family, &Options::default());
        times.push(started.elapsed());
        assert_eq!(result.verdict, Verdict::Pass, "{}", result.verdict.message());
    }
    let drained = Instant::now();
    tcpconform::lab::wait_for_teardowns(Duration::from_secs(60));
    let drain = drained.elapsed();
    let total = all.elapsed();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    let mean = times.iter().sum::<Duration>() / runs as u32;
    println!("fixed cost per case (lab up + down, empty step list), {runs} runs:");
    println!(
        "  min {:.2} ms  median {:.2} ms  mean {:.2} ms  p90 {:.2} ms  max {:.2} ms",
        ms(times[0]),
        ms(pct(50)),
        ms(mean),
        ms(pct(90)),
        ms(times[times.len() - 1])
    );
    println!(
        "  amortized {:.2} ms per case: {:.0} ms for all {runs}, including {:.1} ms waiting for the last labs to be released",
        ms(total) / runs as f64,
        ms(total),
        ms(drain)
    );
}
