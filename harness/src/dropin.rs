//! `tcpconform packetdrill [packetdrill's options] script.pkt ...`:
//! tcpconform in packetdrill's place, so that the kernel's selftest runner
//! (`ksft_runner.sh`, which calls `packetdrill` with its flags, once per
//! family) runs scripts on tcpconform unchanged, through the `packetdrill`
//! shim in `scripts/`.
//!
//! The command line is packetdrill's ([`CommandLine`]); the addresses it
//! gives are the lab's, so the runner's Fast Open cookie defines match. A
//! script runs once, on the family of `--ip_version` (else its own line's,
//! else IPv4, as packetdrill in a namespace without addresses). Nothing is
//! printed on a pass; a failure prints packetdrill's kind of line on
//! standard error (`script.pkt:LINE: error handling packet: ...`) and under
//! it tcpconform's detail: expected and observed, the fields that differ,
//! the frames. With `TCPCONFORM_OUT=DIR`, each run also writes its report
//! into `DIR/<script>.<family>/`.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::case::Case;
use crate::engine::Options;
use crate::event::{CaseResult, Event, Verdict};
use crate::packet::Family;
use crate::packetdrill::command_line::{CommandLine, UsageError};
use crate::report::{Kernel, ReportDir, Reporter, capture_file_name};

/// Exit status of a pass.
pub const PASS: u8 = 0;
/// Exit status of a failure, as packetdrill's.
pub const FAIL: u8 = 1;
/// Exit status of a bad command line, an invalid script, a harness error
/// or a broken environment.
pub const ERROR: u8 = 2;
/// Exit status of a script tcpconform cannot run here (a construct it does
/// not support, a knob the kernel lacks): kselftest's KSFT_SKIP.
pub const SKIP: u8 = 4;

/// The environment variable naming a directory for the runs' reports.
pub const OUT_VAR: &str = "TCPCONFORM_OUT";

const USAGE: &str = "usage: tcpconform packetdrill [--ip_version=ipv4|ipv6] [--local_ip=A] [--remote_ip=A] \
     [--gateway_ip=A] [--netmask_ip=M] [--mtu=N] [--tolerance_usecs=N] [-D NAME=VALUE] [-v] [--dry_run] \
     script.pkt ... (docs/PACKETDRILL.md)";

/// Runs the command line `args` (what follows `tcpconform packetdrill`)
/// and returns the exit status: the worst of the scripts' (an error, then
/// a failure, then a skip).
pub fn main(args: &[OsString]) -> u8 {
    let usage = |e: UsageError| {
        eprintln!("tcpconform packetdrill: {e}\n{USAGE}");
        ERROR
    };
    let line = match CommandLine::parse(args) {
        Ok(line) => line,
        Err(e) => return usage(e),
    };
    let invocations = match Family::ALL.map(|f| line.invocation(f)) {
        [Ok(v4), Ok(v6)] => [v4, v6],
        [Err(e), _] | [_, Err(e)] => return usage(e),
    };
    let invocation = |family: Family| invocations[usize::from(family == Family::Ipv6)].clone();
    let mut cases = Vec::new();
    for script in &line.scripts {
        match crate::packetdrill::load_with(script, &invocation) {
            // Cases come in family order: without a family given, IPv4.
            Ok(loaded) => cases.extend(loaded.into_iter().next()),
            Err(e) => {
                eprintln!("{e}");
                return ERROR;
            }
        }
    }
    if line.dry_run {
        return PASS;
    }
    match crate::lab::init() {
        Ok(crate::lab::Privileges::Native) => {}
        Ok(crate::lab::Privileges::UserNamespace) => {
            eprintln!("note: not privileged: labs are built in a user namespace of tcpconform's own");
        }
        Err(missing) => {
            eprintln!("tcpconform packetdrill: {missing}");
            return ERROR;
        }
    }
    let out = std::env::var_os(OUT_VAR).map(PathBuf::from);
    let mut status = PASS;
    for case in cases {
        let code = run(case, out.as_deref(), line.verbose);
        status = worst(status, code);
    }
    status
}

/// The worse of two exit statuses.
fn worst(a: u8, b: u8) -> u8 {
    let rank = |s| match s {
        ERROR => 3,
        FAIL => 2,
        SKIP => 1,
        _ => 0,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// Runs one case on its family, prints its outcome and returns its status.
fn run(case: Case, out: Option<&Path>, verbose: bool) -> u8 {
    let family = case.families[0];
    let file = case.path.display().to_string();
    let mut reporters: Vec<Box<dyn Reporter>> = Vec::new();
    if let Some(dir) = out {
        let name = capture_file_name(&case.id, family.name());
        let dir = dir.join(name.trim_end_matches(".pcapng"));
        match Kernel::running() {
            Ok(kernel) => reporters.push(Box::new(ReportDir::new(dir, kernel, &Options::default()))),
            Err(e) => {
                eprintln!("tcpconform packetdrill: {}", crate::engine::chain(&e));
                return ERROR;
            }
        }
    }
    let mut report_error = None;
    let results = crate::suite::run(
        vec![(Arc::new(case), family)],
        &Options::default(),
        1,
        &mut |e: &Event| {
            for r in &mut reporters {
                if let Err(e) = r.event(e) {
                    report_error.get_or_insert(e);
                }
            }
        },
    );
    if let Some(e) = report_error {
        eprintln!("tcpconform packetdrill: {}", crate::engine::chain(&e));
        return ERROR;
    }
    let Some(result) = results.into_iter().next() else {
        eprintln!("tcpconform packetdrill: the script did not run");
        return ERROR;
    };
    if verbose {
        let mut text = String::new();
        for r in &result.exchange {
            text.push_str(&format!("{r}\n"));
        }
        // A reader that went away (`| head`) is no failure of the script's.
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
    }
    let (text, code) = outcome(&file, &result, verbose);
    if !text.is_empty() {
        eprint!("{text}");
    }
    code
}

/// What a run prints on standard error, and its exit status.
fn outcome(file: &str, result: &CaseResult, verbose: bool) -> (String, u8) {
    let (mut text, code) = match &result.verdict {
        Verdict::Pass => (String::new(), PASS),
        Verdict::Fail(message) => (failure(file, message), FAIL),
        Verdict::Skip(reason) => {
            let line = match reason.strip_prefix("unsupported: ").and_then(located) {
                Some((at, what)) => format!("{at}: skipped: tcpconform does not support this: {what}\n"),
                None => format!("{file}: skipped: {reason}\n"),
            };
            (line, SKIP)
        }
        Verdict::Error(message) => (indent_rest(&format!("{file}: tcpconform error: {message}")), ERROR),
    };
    if code != PASS || verbose {
        for note in &result.notes {
            text.push_str(&format!("{file}: note: {note}\n"));
        }
    }
    (text, code)
}

/// `file:line` and the rest of a message that starts `file:line:col: `.
fn located(message: &str) -> Option<(&str, &str)> {
    for (i, _) in message.match_indices(": ") {
        let place = &message[..i];
        let Some((at, col)) = place.rsplit_once(':') else {
            continue;
        };
        let line_ok = at
            .rsplit_once(':')
            .is_some_and(|(_, l)| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()));
        if line_ok && !col.is_empty() && col.bytes().all(|b| b.is_ascii_digit()) {
            return Some((at, &message[i + 2..]));
        }
    }
    None
}

/// A failure as packetdrill words its line (`script.pkt:23: error handling
/// packet: ...`), then tcpconform's detail, the message's other lines.
fn failure(file: &str, message: &str) -> String {
    let (headline, detail) = message.split_once('\n').unwrap_or((message, ""));
    let line = match located(headline) {
        Some((at, rest)) => {
            let (keyword, what) = rest.split_once(": ").unwrap_or(("", rest));
            let kind = match keyword {
                "expect" | "expect_nothing" | "inject" => "error handling packet".to_string(),
                "call" | "await" => match called(what) {
                    Some(name) => format!("runtime error in {name} call"),
                    None => "runtime error in call".to_string(),
                },
                "shell" => "error executing command".to_string(),
                "code" => "error executing code".to_string(),
                _ => String::new(),
            };
            if !kind.is_empty() {
                format!("{at}: {kind}: {what}")
            } else if rest.starts_with("error") {
                format!("{at}: {rest}")
            } else {
                format!("{at}: error: {rest}")
            }
        }
        None => format!("{file}: error: {headline}"),
    };
    let mut text = format!("{line}\n");
    for l in detail.lines() {
        text.push_str(&format!("{l}\n"));
    }
    text
}

/// The system call a failure's `` `name(...)` `` names.
fn called(what: &str) -> Option<&str> {
    let start = what.find('`')? + 1;
    let call = &what[start..];
    let call = call
        .split_once(" = ")
        .map_or(call, |(lhs, rhs)| if lhs.contains('(') { lhs } else { rhs });
    let name = &call[..call.find('(')?];
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')).then_some(name)
}

/// `text` with a newline, its lines after the first indented.
fn indent_rest(text: &str) -> String {
    let mut lines = text.lines();
    let mut out = format!("{}\n", lines.next().unwrap_or_default());
    for l in lines {
        out.push_str(&format!("    {l}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_read_as_packetdrill_words_them_with_the_detail_under() {
        let message = "t.pkt:8:1: expect: the kernel's segment differs from the case\n    expected  > S. 0:0(0) ack 2 <...>\n    ack: expected 2, got 1";
        assert_eq!(
            failure("t.pkt", message),
            "t.pkt:8: error handling packet: the kernel's segment differs from the case\n    expected  > S. 0:0(0) ack 2 <...>\n    ack: expected 2, got 1\n"
        );
        assert_eq!(
            failure(
                "t.pkt",
                "t.pkt:19:2: await: `write(3, ..., 150000) = 150000` returned at the wrong time"
            ),
            "t.pkt:19: runtime error in write call: `write(3, ..., 150000) = 150000` returned at the wrong time\n"
        );
        assert_eq!(
            failure("t.pkt", "t.pkt:3:1: error executing the setup command: exit 1"),
            "t.pkt:3: error executing the setup command: exit 1\n"
        );
        assert_eq!(
            failure("t.pkt", "t.pkt:5:2: state: conn is CLOSE, the case expects ESTABLISHED"),
            "t.pkt:5: error: state: conn is CLOSE, the case expects ESTABLISHED\n"
        );
        assert_eq!(failure("a:b.pkt", "no place"), "a:b.pkt: error: no place\n");
        assert_eq!(
            located("/x/a:b.pkt:12:3: what: now"),
            Some(("/x/a:b.pkt:12", "what: now"))
        );
        assert_eq!(called("`s = socket(...) = 3` failed"), Some("socket"));
    }

    #[test]
    fn the_worst_status_wins() {
        assert_eq!(worst(PASS, SKIP), SKIP);
        assert_eq!(worst(SKIP, FAIL), FAIL);
        assert_eq!(worst(ERROR, FAIL), ERROR);
        assert_eq!(worst(FAIL, PASS), FAIL);
    }
}
