//! Every case under `cases/` (YAML cases and packetdrill scripts) as a test,
//! once per family it runs on, named `<case id>::<family>`
//! (`closing/simultaneous_close::ipv6`, `packetdrill/passive_open::ipv4`), so that
//! `cargo test simultaneous` and `cargo nextest run --partition hash:1/2`
//! select cases as they select tests. A case the running kernel cannot do
//! (a knob is absent or not namespaced) is reported as ignored, with the reason.
//!
//! With `TCPCONFORM_REPORT_DIR` set, the results of the cases that ran are
//! also written there as `tcpconform run --out` writes them (report.json,
//! junit.xml, index.html, pcap/), once libtest is done; the exit code stays
//! libtest's unless the report cannot be written.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use tcpconform::case::{self, Case};
use tcpconform::engine::{self, Options};
use tcpconform::event::{CaseResult, Event, Verdict};
use tcpconform::lab::{self, Privileges};
use tcpconform::report::{Kernel, ReportDir, Reporter};

/// Cases mostly wait on the kernel's timers: run many more than there are
/// cores, and at least one thread per trial so that none waits for another.
const DEFAULT_THREADS: usize = 64;

/// Where results go for the report.
type Results = Arc<Mutex<Vec<CaseResult>>>;

fn trial(
    case: &Case,
    family: tcpconform::packet::Family,
    privileges: &Result<Privileges, String>,
    results: &Results,
) -> Trial {
    let case = case.clone();
    let privileges = privileges.clone();
    let results = results.clone();
    Trial::ignorable_test(format!("{}::{family}", case.id), move || {
        privileges.map_err(Failed::from)?;
        let result = engine::run(&case, family, &Options::default());
        let verdict = result.verdict.clone();
        results.lock().unwrap_or_else(|e| e.into_inner()).push(result);
        match verdict {
            Verdict::Pass => Ok(Completion::Completed),
            Verdict::Skip(reason) => Ok(Completion::ignored_with(reason)),
            Verdict::Fail(message) | Verdict::Error(message) => Err(Failed::from(message)),
        }
    })
}

/// An error and its causes, one per line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!("\n  caused by: {s}"));
        source = s.source();
    }
    out
}

/// Writes the report of `results` into `dir` through the same reporter as `tcpconform run --out`.
fn write_report(dir: PathBuf, results: Vec<CaseResult>, started: Instant) -> Result<(), String> {
    let kernel = Kernel::running().map_err(|e| chain(&e))?;
    let mut reporter = ReportDir::new(dir, kernel, &Options::default());
    let mut events = vec![Event::RunStarted { total: results.len() }];
    events.extend(results.into_iter().map(|r| Event::CaseFinished(Box::new(r))));
    events.push(Event::RunFinished {
        duration: started.elapsed(),
    });
    for e in &events {
        reporter.event(e).map_err(|e| chain(&e))?;
    }
    Ok(())
}

fn main() {
    // First, while the process has one thread: a user namespace if not privileged.
    let privileges = lab::init();
    let mut args = Arguments::from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
    let files = case::discover(&[root]).expect("the cases directory is readable");
    let results: Results = Arc::default();
    let mut trials = Vec::new();
    for file in files {
        // A YAML file is one case on its families; a .pkt script is one case per family.
        match case::load_file(&file) {
            Ok(cases) => trials.extend(
                cases
                    .iter()
                    .flat_map(|case| case.families.iter().map(|f| trial(case, *f, &privileges, &results))),
            ),
            Err(e) => {
                let name = file.display().to_string();
                trials.push(Trial::test(format!("{name}::load"), move || {
                    Err(Failed::from(e.to_string()))
                }));
            }
        }
    }
    if args.test_threads.is_none() {
        args.test_threads = Some(DEFAULT_THREADS.max(trials.len()));
    }
    let report_dir = std::env::var_os("TCPCONFORM_REPORT_DIR").filter(|_| !args.list);
    let started = Instant::now();
    let conclusion = libtest_mimic::run(&args, trials);
    if let Some(dir) = report_dir {
        let dir = PathBuf::from(dir);
        let results = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
        match write_report(dir.clone(), results, started) {
            Ok(()) => println!("report: {}", dir.join("index.html").display()),
            Err(e) => {
                eprintln!("cannot write the report into {}: {e}", dir.display());
                std::process::exit(1);
            }
        }
    }
    conclusion.exit();
}
