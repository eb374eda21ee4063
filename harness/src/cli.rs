//! The `tcpconform` command line: `run`, `check`, `list` and `compare`.
//!
//! Exit codes: 0 when every case passed (skips allowed), 1 when a case
//! failed, 2 on bad input (an invalid case, a bad option) or a broken
//! environment (missing privileges, a lab that cannot be built). `compare`
//! exits 0 when the reports agree (timings aside), 1 when a verdict or an
//! exchange differs, 2 when a report cannot be read or the output written.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::behaviors;
use crate::case::DEFAULT_TOLERANCE;
use crate::engine::Options;
use crate::event::Event;
use crate::packet::Family;
use crate::report::compare::{self, Status};
use crate::report::{Kernel, ReportDir, Reporter, Terminal};
use crate::suite::{self, DEFAULT_JOBS, Summary};

/// Conformance tests for the Linux kernel's TCP stack.
#[derive(Debug, Parser)]
#[command(name = "tcpconform", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FamilyArg {
    Ipv4,
    Ipv6,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run cases against the running kernel and report.
    Run {
        /// Case files or directories of cases.
        #[arg(default_value = "cases")]
        paths: Vec<PathBuf>,
        /// Write the report into this directory: report.json, junit.xml,
        /// index.html and pcap/ (see docs/REPORT.md).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Run on one family only.
        #[arg(long, value_enum)]
        family: Option<FamilyArg>,
        /// Cases in flight at once (they mostly wait on timers).
        #[arg(long, default_value_t = DEFAULT_JOBS)]
        jobs: usize,
        /// Timing tolerance for cases that give none, e.g. 10ms.
        #[arg(long)]
        tolerance: Option<String>,
        /// Also print the whole exchange of failed cases.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Check that cases are valid, without running them.
    Check {
        /// Case files or directories of cases.
        #[arg(default_value = "cases")]
        paths: Vec<PathBuf>,
    },
    /// List cases, their families and the behaviours they cover.
    List {
        /// Case files or directories of cases.
        #[arg(default_value = "cases")]
        paths: Vec<PathBuf>,
    },
    /// Compare the reports of runs on several kernels; the first is the baseline.
    Compare {
        /// Reports (report.json, or the directories holding them).
        #[arg(required = true, num_args = 2..)]
        reports: Vec<PathBuf>,
        /// Write compare.html, compare.md and compare.json into this directory.
        #[arg(long)]
        out: PathBuf,
    },
}

/// An error with its chain of causes, one "caused by" line each.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!("\n  caused by: {s}"));
        source = s.source();
    }
    out
}

fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("{message}");
    ExitCode::from(2)
}

/// Prints an error and its causes, one per line, and returns exit code 2.
/// Invalid cases print as their diagnostics (`file:line:col: message`).
fn failed(e: &suite::LoadError) -> ExitCode {
    if let suite::LoadError::Cases(_) = e {
        return bad_input(e);
    }
    eprintln!("error: {e}");
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        eprintln!("  caused by: {c}");
        cause = c.source();
    }
    ExitCode::from(2)
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            paths,
            out,
            family,
            jobs,
            tolerance,
            verbose,
        } => {
            let tolerance = match tolerance.as_deref().map(crate::case::parse_duration).transpose() {
                Ok(t) => t,
                Err(e) => return bad_input(format!("--tolerance: {e}")),
            };
            let family = family.map(|f| match f {
                FamilyArg::Ipv4 => Family::Ipv4,
                FamilyArg::Ipv6 => Family::Ipv6,
            });
            run(&paths, out, family, jobs, Options { tolerance }, verbose)
        }
        Command::Check { paths } => match suite::load(&paths) {
            Ok(cases) => {
                println!("{} case(s) are valid", cases.len());
                ExitCode::SUCCESS
            }
            Err(e) => failed(&e),
        },
        Command::List { paths } => match suite::load(&paths) {
            Ok(cases) => {
                list(&cases);
                ExitCode::SUCCESS
            }
            Err(e) => failed(&e),
        },
        Command::Compare { reports, out } => compare_reports(&reports, &out),
    }
}

fn compare_reports(reports: &[PathBuf], out: &std::path::Path) -> ExitCode {
    let done = reports
        .iter()
        .map(|p| compare::load(p))
        .collect::<Result<Vec<_>, _>>()
        .and_then(compare::compare)
        .and_then(|c| compare::write(&c, out).map(|()| c));
    let c = match done {
        Ok(c) => c,
        Err(e) => return bad_input(chain(&e)),
    };
    for row in c.cases.iter().filter(|r| r.status == Status::Differs) {
        println!("differs  {}::{}", row.id, row.family);
        for d in &row.differences {
            if let Some((a, b)) = d.verdict {
                let word = |v: Option<crate::report::schema::VerdictName>| v.map_or("not run", |v| v.as_str());
                println!(
                    "    verdict: {} on {}, {} on {}",
                    word(a),
                    c.kernels[0].label,
                    word(b),
                    d.kernel
                );
            }
            for change in &d.changes {
                println!("    {change}");
            }
        }
    }
    let s = c.summary;
    println!(
        "{} case runs: {} differ, {} differ in timing only, {} the same; wrote {}",
        s.total,
        s.differs,
        s.timing,
        s.same,
        out.join("compare.html").display()
    );
    if s.differs > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn run(
    paths: &[PathBuf],
    out: Option<PathBuf>,
    family: Option<Family>,
    jobs: usize,
    options: Options,
    verbose: bool,
) -> ExitCode {
    match crate::lab::init() {
        Ok(crate::lab::Privileges::Native) => {}
        Ok(crate::lab::Privileges::UserNamespace) => {
            eprintln!("note: not privileged: labs are built in a user namespace of tcpconform's own");
        }
        Err(missing) => return bad_input(missing),
    }
    let cases = match suite::load(paths) {
        Ok(cases) => cases,
        Err(e) => return failed(&e),
    };
    let mut reporters: Vec<Box<dyn Reporter>> = vec![Box::new(Terminal::new(verbose))];
    if let Some(dir) = &out {
        let kernel = match Kernel::running() {
            Ok(k) => k,
            Err(e) => return bad_input(chain(&e)),
        };
        let tolerance = options.tolerance.unwrap_or(DEFAULT_TOLERANCE);
        reporters.push(Box::new(ReportDir::new(dir.clone(), kernel, tolerance)));
    }
    let mut report_error = None;
    let results = suite::run(suite::plan(&cases, family), &options, jobs, &mut |event: &Event| {
        for r in &mut reporters {
            if let Err(e) = r.event(event) {
                report_error.get_or_insert(e);
            }
        }
    });
    if let Some(e) = report_error {
        return bad_input(chain(&e));
    }
    if let Some(dir) = out {
        println!("report: {}", dir.join("index.html").display());
    }
    let summary = Summary::of(&results);
    if summary.error > 0 {
        ExitCode::from(2)
    } else if summary.fail > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn list(cases: &[crate::case::Case]) {
    let width = cases.iter().map(|c| c.id.len()).max().unwrap_or(0);
    for c in cases {
        let families: Vec<&str> = c.families.iter().map(|f| f.name()).collect();
        println!(
            "{:width$}  {:9}  {:11}  {}",
            c.id,
            families.join(","),
            c.covers.join(","),
            c.title
        );
    }
    let catalogue = behaviors::catalogue();
    let (covered, missing): (Vec<_>, Vec<_>) = catalogue
        .iter()
        .partition(|b| cases.iter().any(|c| c.covers.contains(&b.id)));
    println!(
        "\ncoverage: {} of {} behaviours of docs/BEHAVIORS.md",
        covered.len(),
        catalogue.len()
    );
    if !missing.is_empty() {
        let ids: Vec<&str> = missing.iter().map(|b| b.id.as_str()).collect();
        println!("not covered: {}", ids.join(" "));
    }
}
