//! The `tcpconform` command line: `run`, `check`, `list`, `convert`,
//! `compare`, `vm`, and `packetdrill` (the drop-in for packetdrill,
//! [`crate::dropin`]).
//!
//! Exit codes: 0 when every case passed (skips allowed), 1 when a case
//! failed, 2 on bad input (an invalid case, a bad option) or a broken
//! environment (missing privileges, a lab that cannot be built). `compare`
//! exits 0 when the reports agree (timings aside), 1 when a verdict or an
//! exchange differs, 2 when a report cannot be read or the output written.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::engine::{MAX_SLACK, Options};
use crate::event::Event;
use crate::packet::Family;
use crate::report::compare::{self, Status};
use crate::report::{Kernel, Ktap, ReportDir, Reporter, Terminal};
use crate::suite::{self, DEFAULT_JOBS, Summary};
use crate::vm::qemu::Accel;

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

/// The arguments of `tcpconform run`, also given to it inside a VM.
#[derive(Debug, Args)]
struct RunArgs {
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
    /// Cases in flight at once (they mostly wait on timers) [default: 64; in a VM, one per vCPU].
    #[arg(long)]
    jobs: Option<usize>,
    /// Timing tolerance for cases that give none, e.g. 10ms.
    #[arg(long)]
    tolerance: Option<String>,
    /// Extra timing tolerance for a noisy kernel, at most 8ms and at most each step's own [default: 0; in an emulated VM, 8ms].
    #[arg(long, value_parser = parse_slack)]
    slack: Option<Duration>,
    /// Also print the whole exchange of failed cases.
    #[arg(long, short)]
    verbose: bool,
    /// What standard output shows: the terminal's lines, or the run's KTAP
    /// when it ends (the report directory's ktap.txt; other messages go to
    /// standard error).
    #[arg(long, value_enum, default_value = "terminal")]
    format: Format,
}

/// What `tcpconform run` prints on standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A line per finished case, failures in full, a summary.
    Terminal,
    /// KTAP version 1, as kselftest prints it.
    Ktap,
}

/// `tcpconform run`'s arguments on their own, as `vm` passes them on.
#[derive(Debug, Parser)]
#[command(name = "run", no_binary_name = true)]
struct RunLine {
    #[command(flatten)]
    args: RunArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AccelArg {
    /// KVM when it can run the guest, else TCG.
    Auto,
    /// Hardware virtualisation only.
    Kvm,
    /// Software emulation only.
    Tcg,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run cases against the running kernel and report.
    Run(RunArgs),
    /// Check that cases are valid, without running them.
    Check {
        /// Case files or directories of cases.
        #[arg(default_value = "cases")]
        paths: Vec<PathBuf>,
    },
    /// List case files: syntax, families, behaviours covered, and what cannot run where.
    List {
        /// Case files or directories of cases.
        #[arg(default_value = "cases")]
        paths: Vec<PathBuf>,
    },
    /// Print a packetdrill script as the equivalent YAML case (docs/CASES.md), for one family.
    Convert {
        /// The script (.pkt).
        file: PathBuf,
        /// The family whose case to write.
        #[arg(long, value_enum, default_value = "ipv4")]
        family: FamilyArg,
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
    /// Boot another kernel with qemu and run the suite in it: `vm --kernel K --out DIR -- [run arguments]`.
    Vm {
        /// The kernel image (bzImage, e.g. boot/vmlinuz-* from a linux-image package unpacked with dpkg-deb -x).
        #[arg(long)]
        kernel: PathBuf,
        /// The kernel's module directory [default: lib/modules/<release> beside the image's boot/].
        #[arg(long)]
        modules: Option<PathBuf>,
        /// Bring the report directory back into this directory.
        #[arg(long)]
        out: Option<PathBuf>,
        /// qemu-system-x86_64 to use [default: on PATH, else kernels/qemu/bin/ from scripts/fetch-kernels].
        #[arg(long, env = "TCPCONFORM_QEMU")]
        qemu: Option<PathBuf>,
        /// Accelerator.
        #[arg(long, value_enum, default_value = "auto")]
        accel: AccelArg,
        /// Virtual CPUs under KVM (software emulation runs one, on a virtual clock).
        #[arg(long, default_value_t = 2)]
        cpus: u32,
        /// Guest memory in MiB. The kernel sizes TCP's buffers from it (tcp_rmem[2] is at most 1/128 of
        /// free memory; its default is 6 MiB, 32 MiB from Linux 6.16 on): 4.5 GiB lets every kernel reach its default.
        #[arg(long, default_value_t = 4608)]
        memory: u32,
        /// How long the guest may take to come up.
        #[arg(long, default_value = "120s")]
        boot_timeout: String,
        /// How long the suite may take once the guest is up.
        #[arg(long, default_value = "30m")]
        timeout: String,
        /// Arguments of `tcpconform run` in the guest (cases, --family, --jobs, --tolerance, -v), after `--`.
        #[arg(last = true, value_name = "RUN ARGS")]
        run: Vec<String>,
    },
    /// The init of a VM made by `vm` (not for use by hand).
    #[command(hide = true)]
    VmGuest,
    /// Run packetdrill scripts in packetdrill's place, with its command line (docs/PACKETDRILL.md).
    ///
    /// Exit status: 0 pass, 1 fail, 2 bad command line, invalid script or
    /// broken environment, 4 a script tcpconform cannot run here (KSFT_SKIP).
    Packetdrill {
        /// packetdrill's options and scripts: --ip_version=ipv4 --local_ip=A --remote_ip=A -D NAME=VALUE -v script.pkt
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
        args: Vec<std::ffi::OsString>,
    },
}

/// A `--slack` value: a duration of at most [`MAX_SLACK`].
fn parse_slack(text: &str) -> Result<Duration, String> {
    let slack = crate::case::parse_duration(text)?;
    if slack > MAX_SLACK {
        return Err(format!(
            "at most {}ms, or an immediate segment could pass for one a 40ms timer sent",
            MAX_SLACK.as_millis()
        ));
    }
    Ok(slack)
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

/// Prints `message` and returns the exit status for bad input.
fn bad_input(message: impl std::fmt::Display) -> u8 {
    eprintln!("{message}");
    2
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => ExitCode::from(run(args)),
        Command::Check { paths } => match suite::load(&paths) {
            Ok(cases) => {
                println!("{} case(s) are valid", cases.len());
                ExitCode::SUCCESS
            }
            Err(e) => ExitCode::from(bad_input(e)),
        },
        Command::List { paths } => match suite::load(&paths) {
            Ok(cases) => ExitCode::from(print(&crate::listing::render(&cases))),
            Err(e) => ExitCode::from(bad_input(e)),
        },
        Command::Convert { file, family } => ExitCode::from(convert(&file, family)),
        Command::Compare { reports, out } => ExitCode::from(compare_reports(&reports, &out)),
        Command::Vm {
            kernel,
            modules,
            out,
            qemu,
            accel,
            cpus,
            memory,
            boot_timeout,
            timeout,
            run,
        } => {
            let duration = |flag: &str, text: &str| {
                crate::case::parse_duration(text).map_err(|e| bad_input(format!("{flag}: {e}")))
            };
            let (boot_timeout, timeout) = match (
                duration("--boot-timeout", &boot_timeout),
                duration("--timeout", &timeout),
            ) {
                (Ok(b), Ok(t)) => (b, t),
                (Err(code), _) | (_, Err(code)) => return ExitCode::from(code),
            };
            let line = match RunLine::try_parse_from(&run) {
                Ok(line) => line,
                Err(e) => return ExitCode::from(bad_input(format!("the run arguments after `--`: {e}"))),
            };
            if line.args.out.is_some() {
                return ExitCode::from(bad_input(
                    "give --out to `vm`, before `--`: the report comes back there",
                ));
            }
            let cases = match suite::load(&line.args.paths) {
                Ok(cases) => cases,
                Err(e) => return ExitCode::from(bad_input(e)),
            };
            let files = match crate::case::discover(&line.args.paths) {
                Ok(files) => files,
                Err(e) => return ExitCode::from(bad_input(e)),
            };
            let vm = crate::vm::Vm {
                kernel,
                modules,
                out,
                qemu,
                accel: match accel {
                    AccelArg::Auto => None,
                    AccelArg::Kvm => Some(Accel::Kvm),
                    AccelArg::Tcg => Some(Accel::Tcg),
                },
                cpus,
                memory_mib: memory,
                boot_timeout,
                timeout,
                files,
                userland: crate::vm::userland::Userland::of(&cases),
                run,
            };
            ExitCode::from(run_vm(&vm))
        }
        Command::Packetdrill { args } => ExitCode::from(crate::dropin::main(&args)),
        Command::VmGuest => {
            crate::vm::guest::main(
                &|args: &[String], guest: &crate::vm::guest::Defaults| match RunLine::try_parse_from(args) {
                    Ok(mut line) => {
                        let jobs = *line.args.jobs.get_or_insert(guest.jobs);
                        let slack = *line.args.slack.get_or_insert(guest.slack);
                        println!(
                            "tcpconform-vm: running the suite with --jobs {jobs} --slack {}ms ({})",
                            slack.as_millis(),
                            guest.why
                        );
                        run(line.args)
                    }
                    Err(e) => bad_input(format!("the run arguments: {e}")),
                },
            )
        }
    }
}

/// Prints the YAML case of a script's run on `family`, and returns the exit status.
fn convert(file: &std::path::Path, family: FamilyArg) -> u8 {
    let family = match family {
        FamilyArg::Ipv4 => Family::Ipv4,
        FamilyArg::Ipv6 => Family::Ipv6,
    };
    if file.extension().is_none_or(|e| e != "pkt") {
        return bad_input(format!("{}: convert takes a packetdrill script (.pkt)", file.display()));
    }
    let cases = match crate::packetdrill::load(file) {
        Ok(cases) => cases,
        Err(e) => return bad_input(e),
    };
    let Some(case) = cases.iter().find(|c| c.families == [family]) else {
        let other: Vec<&str> = cases.iter().flat_map(|c| &c.families).map(|f| f.name()).collect();
        return bad_input(format!(
            "{}: the script does not run on {family}, only on {} (--ip_version)",
            file.display(),
            other.join(" and ")
        ));
    };
    match crate::case::yaml_out::to_yaml(case) {
        Ok(yaml) => {
            print!("{yaml}");
            0
        }
        Err(e) => bad_input(format!("{}: {}", file.display(), chain(&e))),
    }
}

fn compare_reports(reports: &[PathBuf], out: &std::path::Path) -> u8 {
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
    u8::from(s.differs > 0)
}

fn run_vm(vm: &crate::vm::Vm) -> u8 {
    match crate::vm::run(vm) {
        Ok(done) => {
            eprintln!(
                "tcpconform vm: {} boot {:.1}s, suite {:.1}s{}",
                done.accel.name(),
                done.boot.as_secs_f64(),
                done.run.as_secs_f64(),
                vm.out
                    .as_ref()
                    .map(|d| format!(", report in {}", d.display()))
                    .unwrap_or_default()
            );
            done.status
        }
        Err(e) => {
            eprintln!("tcpconform vm: {}", crate::engine::chain(&e));
            if let Some(console) = e.console() {
                eprintln!("  the guest's console, last lines:\n{console}");
            }
            e.signal_status().unwrap_or(2)
        }
    }
}

/// Runs the suite as `tcpconform run` and returns the exit status.
fn run(args: RunArgs) -> u8 {
    let RunArgs {
        paths,
        out,
        family,
        jobs,
        tolerance,
        slack,
        verbose,
        format,
    } = args;
    let tolerance = match tolerance.as_deref().map(crate::case::parse_duration).transpose() {
        Ok(t) => t,
        Err(e) => return bad_input(format!("--tolerance: {e}")),
    };
    let (jobs, slack) = (jobs.unwrap_or(DEFAULT_JOBS), slack.unwrap_or_default());
    let family = family.map(|f| match f {
        FamilyArg::Ipv4 => Family::Ipv4,
        FamilyArg::Ipv6 => Family::Ipv6,
    });
    let options = Options { tolerance, slack };
    match crate::lab::init() {
        Ok(crate::lab::Privileges::Native) => {}
        Ok(crate::lab::Privileges::UserNamespace) => {
            eprintln!("note: not privileged: labs are built in a user namespace of tcpconform's own");
        }
        Err(missing) => return bad_input(missing),
    }
    let cases = match suite::load(&paths) {
        Ok(cases) => cases,
        Err(e) => return bad_input(e),
    };
    let kernel = if out.is_some() || format == Format::Ktap {
        match Kernel::running() {
            Ok(k) => Some(k),
            Err(e) => return bad_input(chain(&e)),
        }
    } else {
        None
    };
    let mut reporters: Vec<Box<dyn Reporter>> = Vec::new();
    match (format, &kernel) {
        (Format::Ktap, Some(kernel)) => reporters.push(Box::new(Ktap::new(kernel.clone(), &options))),
        (Format::Terminal, _) | (Format::Ktap, None) => reporters.push(Box::new(Terminal::new(verbose))),
    }
    if let (Some(dir), Some(kernel)) = (&out, kernel) {
        reporters.push(Box::new(ReportDir::new(dir.clone(), kernel, &options)));
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
        let line = format!("report: {}", dir.join("index.html").display());
        match format {
            Format::Terminal => println!("{line}"),
            Format::Ktap => eprintln!("{line}"),
        }
    }
    let summary = Summary::of(&results);
    if summary.error > 0 {
        2
    } else if summary.fail > 0 {
        1
    } else {
        0
    }
}

/// Writes `text` to standard output and returns the exit status: 0, also
/// when the reader has gone (`| head`), 2 when the output cannot be written.
fn print(text: &str) -> u8 {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => bad_input(format!("cannot write to standard output: {e}")),
    }
}
