//! Every case under `cases/` as a test, once per family it runs on, named
//! `<case id>::<family>` (`closing/simultaneous_close::ipv6`), so that
//! `cargo test simultaneous` and `cargo nextest run --partition hash:1/2`
//! select cases as they select tests. A case the running kernel cannot do
//! (a knob is absent or not namespaced) is reported as ignored, with the reason.

use std::path::Path;

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use tcpconform::case::{self, Case};
use tcpconform::engine::{self, Options};
use tcpconform::event::Verdict;

/// Cases mostly wait on the kernel's timers: run many more than there are
/// cores, and at least one thread per trial so that none waits for another.
const DEFAULT_THREADS: usize = 64;

fn trial(case: &Case, family: tcpconform::packet::Family) -> Trial {
    let case = case.clone();
    Trial::ignorable_test(format!("{}::{family}", case.id), move || {
        let result = engine::run(&case, family, &Options::default());
        match result.verdict {
            Verdict::Pass => Ok(Completion::Completed),
            Verdict::Skip(reason) => Ok(Completion::ignored_with(reason)),
            Verdict::Fail(message) | Verdict::Error(message) => Err(Failed::from(message)),
        }
    })
}

fn main() {
    let mut args = Arguments::from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
    let files = case::discover(&[root]).expect("the cases directory is readable");
    let mut trials = Vec::new();
    for file in files {
        match case::load(&file) {
            Ok(case) => trials.extend(case.families.iter().map(|f| trial(&case, *f))),
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
    libtest_mimic::run(&args, trials).exit();
}
