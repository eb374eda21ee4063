//! The drop-in for kselftest against `tcpconform run`, over the kernel's
//! packetdrill selftests (the corpus beside the checkout, or
//! `TCPCONFORM_CORPUS`; without it the test says so and passes).
//!
//! `tcpconform run` runs the whole corpus once (its `ktap.txt` is read back
//! against its `report.json` too); then `scripts/ksft-runner` runs every
//! script through the `packetdrill` shim, four scripts at a time, with the
//! kernel runner's command line and the documentation addresses, and each
//! family's verdict must be the one `run` gave. The corpus has scripts whose
//! timing is on the edge on this machine, so a script whose verdicts differ
//! is run again both ways, up to three more times: the two agree when one
//! verdict came from both. A difference that stays is a mismatch, listed
//! with every verdict seen and the drop-in's last output. Needs root.
//! Best run in release (`cargo test --release --test dropin`), as the
//! corpus is in CI.

#[path = "ktap/parse.rs"]
mod parse;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Drop-in runs in flight at once (the machine's cores are shared).
const PARALLEL: usize = 4;
/// Runs of a differing script, both ways, after the first.
const RETRIES: usize = 3;

/// Verdicts per family of one script.
type Verdicts = BTreeMap<String, &'static str>;

/// What the runner gave for one script: its verdicts and its output.
type DropIn = Result<(Verdicts, String), String>;

fn corpus() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TCPCONFORM_CORPUS") {
        return Some(PathBuf::from(dir));
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/corpora/linux-packetdrill"))
        .find(|d| d.is_dir())
}

fn tcpconform() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tcpconform"));
    c.env_remove("KSFT_MACHINE_SLOW");
    c
}

/// The verdicts of a KTAP document's tests named `<id>.<family>`, per ID.
fn by_script(ktap: &parse::Ktap) -> BTreeMap<String, Verdicts> {
    let mut out: BTreeMap<String, Verdicts> = BTreeMap::new();
    for t in &ktap.tests {
        let (id, family) = t.name.rsplit_once('.').unwrap_or((&t.name, ""));
        out.entry(id.to_string())
            .or_default()
            .insert(family.to_string(), t.verdict());
    }
    out
}

/// `tcpconform run` of one script: its verdicts per family.
fn run_one(script: &Path) -> Result<Verdicts, String> {
    let out = tcpconform()
        .args(["run", "--jobs", "2", "--format", "ktap"])
        .arg(script)
        .output()
        .map_err(|e| format!("cannot start tcpconform: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let ktap = parse::parse(&text).map_err(|e| format!("run {}: {e}\n{text}", script.display()))?;
    Ok(by_script(&ktap).into_values().next().unwrap_or_default())
}

/// The runner on one script: its verdicts per family, and what it printed.
fn drop_in(script: &Path) -> DropIn {
    let runner = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ksft-runner");
    let out = Command::new(&runner)
        .arg(script)
        .env("TCPCONFORM", env!("CARGO_BIN_EXE_tcpconform"))
        .env_remove("KSFT_MACHINE_SLOW")
        .env_remove("PACKETDRILL")
        .env_remove("TCPCONFORM_OUT")
        .output()
        .map_err(|e| format!("cannot start {}: {e}", runner.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let ktap = parse::parse(&text).map_err(|e| format!("the runner on {}: {e}\n{text}", script.display()))?;
    let failed = ktap.tests.iter().any(|t| matches!(t.verdict(), "fail" | "error"));
    if out.status.code() != Some(i32::from(failed)) {
        return Err(format!(
            "the runner exited {:?} on {}:\n{text}",
            out.status.code(),
            script.display()
        ));
    }
    if !ktap.trailer.last().is_some_and(|l| l.starts_with("Totals: ")) {
        return Err(format!(
            "no totals line from the runner on {}:\n{text}",
            script.display()
        ));
    }
    let verdicts = ktap.tests.iter().map(|t| (t.name.clone(), t.verdict())).collect();
    Ok((verdicts, text))
}

/// What each way gave for one family of a script, over the attempts.
#[derive(Default)]
struct Seen {
    run: Vec<&'static str>,
    drop_in: Vec<&'static str>,
}

impl Seen {
    fn agree(&self) -> bool {
        let run: BTreeSet<_> = self.run.iter().collect();
        self.drop_in.iter().any(|v| run.contains(v))
    }
}

/// Adds the verdicts of an attempt; a family only one way ran is `absent` the other.
fn record(seen: &mut BTreeMap<String, Seen>, run: &Verdicts, drop_in: &Verdicts) {
    let families: BTreeSet<&String> = run.keys().chain(drop_in.keys()).collect();
    for family in families {
        let s = seen.entry(family.clone()).or_default();
        s.run.push(run.get(family).copied().unwrap_or("absent"));
        s.drop_in.push(drop_in.get(family).copied().unwrap_or("absent"));
    }
}

#[test]
fn every_corpus_script_has_the_same_verdict_through_the_drop_in() {
    let Some(corpus) = corpus() else {
        println!("skipped: no corpus");
        return;
    };
    let started = Instant::now();
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dropin");
    let _ = std::fs::remove_dir_all(&scratch);
    let report_dir = scratch.join("run");
    let out = tcpconform()
        .args(["run", "--jobs", "4", "--out"])
        .arg(&report_dir)
        .arg(&corpus)
        .output()
        .expect("tcpconform runs");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "tcpconform run exited {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report_dir.join("report.json")).expect("report.json"))
            .expect("JSON");
    let results = report["results"].as_array().expect("results");
    let text = std::fs::read_to_string(report_dir.join("ktap.txt")).expect("ktap.txt");
    let ktap = parse::parse(&text).unwrap_or_else(|e| panic!("ktap.txt of the corpus: {e}"));
    parse::check_against_report(&ktap, results).unwrap_or_else(|e| panic!("ktap.txt of the corpus: {e}"));
    let by_run = by_script(&ktap);
    let run_time = started.elapsed();

    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .expect("the corpus is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pkt"))
        .collect();
    scripts.sort();
    let next = AtomicUsize::new(0);
    let dropped: Mutex<BTreeMap<usize, DropIn>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(script) = scripts.get(i) else { break };
                    let result = drop_in(script);
                    dropped.lock().unwrap_or_else(|e| e.into_inner()).insert(i, result);
                }
            });
        }
    });
    let dropped = dropped.into_inner().unwrap_or_else(|e| e.into_inner());
    let drop_in_time = started.elapsed() - run_time;

    let (mut runs, mut flaky, mut mismatches) = (0, Vec::new(), Vec::new());
    for (i, script) in scripts.iter().enumerate() {
        let id = script.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        let first = match &dropped[&i] {
            Ok(first) => first.clone(),
            Err(e) => panic!("{e}"),
        };
        let empty = Verdicts::new();
        let run = by_run.get(&id).unwrap_or(&empty);
        let mut seen = BTreeMap::new();
        record(&mut seen, run, &first.0);
        runs += seen.len();
        let mut last_output = first.1;
        let mut attempt = 0;
        while seen.values().any(|s| !s.agree()) && attempt < RETRIES {
            attempt += 1;
            let run = run_one(script).unwrap_or_else(|e| panic!("{e}"));
            let (drop_in, output) = drop_in(script).unwrap_or_else(|e| panic!("{e}"));
            record(&mut seen, &run, &drop_in);
            last_output = output;
        }
        for (family, s) in &seen {
            let line = format!("{id}.{family}: run {:?}, drop-in {:?}", s.run, s.drop_in);
            if !s.agree() {
                mismatches.push(format!(
                    "{line}\n  the drop-in's last output:\n    {}",
                    last_output.trim_end().replace('\n', "\n    ")
                ));
            } else if s.run[0] != s.drop_in[0] {
                flaky.push(line);
            }
        }
    }
    let summary = format!(
        "{} scripts, {runs} runs: {} agree, {} of them after a retry (timing on the edge here), {} mismatch; \
         tcpconform run {:.1}s, the drop-in {:.1}s, retries {:.1}s",
        scripts.len(),
        runs - mismatches.len(),
        flaky.len(),
        mismatches.len(),
        run_time.as_secs_f64(),
        drop_in_time.as_secs_f64(),
        (started.elapsed() - run_time - drop_in_time).as_secs_f64(),
    );
    println!("{summary}");
    for f in &flaky {
        println!("agree after a retry: {f}");
    }
    assert!(
        mismatches.is_empty(),
        "{summary}\nverdicts that differ:\n{}",
        mismatches.join("\n")
    );
}

/// `tcpconform packetdrill` on the fixtures: its exit statuses and packetdrill's kind of error line.
#[test]
fn exit_statuses_and_error_lines_are_packetdrills() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/packetdrill");
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dropin-out");
    let _ = std::fs::remove_dir_all(&out_dir);
    let drop_in = |args: &[&str]| {
        let out = tcpconform()
            .current_dir(&fixtures)
            .arg("packetdrill")
            .args(args)
            .env("TCPCONFORM_OUT", &out_dir)
            .output()
            .expect("tcpconform runs");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, stderr) = drop_in(&["--ip_version=ipv6", "--local_ip=2001:db8:a::7", "listener.pkt"]);
    assert_eq!((code, stderr.as_str()), (Some(0), ""), "a pass says nothing");
    assert!(
        out_dir.join("listener.ipv6/report.json").is_file(),
        "TCPCONFORM_OUT gets the report"
    );

    let (code, stderr) = drop_in(&["wrong_synack.pkt"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.starts_with(
            "wrong_synack.pkt:8: error handling packet: the kernel's segment differs from the case\n    expected  > S. 0:0(0) ack 2 <...>\n"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("    ack: expected 2, got 1\n"), "{stderr}");

    let (code, stderr) = drop_in(&["--ip_version=ipv6", "inet_only.pkt"]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(
        stderr.starts_with("inet_only.pkt:2: skipped: tcpconform does not support this: sockets of another family"),
        "{stderr}"
    );

    let (code, stderr) = drop_in(&["--wire_server", "listener.pkt"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.starts_with(
            "tcpconform packetdrill: `--wire_server` is a packetdrill option tcpconform does not implement"
        ),
        "{stderr}"
    );
    let (code, stderr) = drop_in(&["--tolerance_usec=4000", "listener.pkt"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("unknown option `--tolerance_usec` (did you mean `tolerance_usecs`?)"),
        "{stderr}"
    );
}
