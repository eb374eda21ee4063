//! The `tcpconform` command line: `run`, `check` and `list`.
//!
//! Exit codes: 0 when every case passed (skips allowed), 1 when a case
//! failed, 2 on bad input (an invalid case, a bad option) or a broken
//! environment (missing privileges, a lab that cannot be built).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::behaviors;
use crate::engine::Options;
use crate::event::Event;
use crate::packet::Family;
use crate::report::{JsonReport, Reporter, Terminal};
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
        /// Write the report (report.json) into this directory.
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
    if let Some(dir) = out {
        reporters.push(Box::new(JsonReport::new(dir)));
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
        return bad_input(format!("cannot write the report: {e}"));
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
