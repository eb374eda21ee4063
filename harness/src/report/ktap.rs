//! `ktap.txt`: the run in KTAP version 1, the format kselftest prints and
//! KernelCI parses (the kernel's Documentation/dev-tools/ktap.rst).
//!
//! One test per case run, in the report's order, named `<case id>.<family>`
//! as KernelCI names a kselftest's subtests (`tcp_close_no_rst.ipv4`). A
//! pass is `ok`; a failure is `not ok`, after diagnostic lines (`# `) with
//! its reason: `file:line:col`, the step, what was expected and what came;
//! a skip is `ok ... # SKIP` with its reason on the line; an error is
//! `not ok ... # ERROR` with its first line, the whole of it above. Notes of
//! a run that did not pass are diagnostics too. kselftest's `# Totals:`
//! line ends the file.

use std::fmt::Write as _;

use super::schema::{CaseReport, Report, VerdictName};
use crate::event::one_line;

/// The KTAP name of a case run: `<id>.<family>`, with whitespace and `#`
/// (which KTAP gives a meaning) written `_`.
pub fn test_name(case: &CaseReport) -> String {
    format!("{}.{}", case.id, case.family)
        .chars()
        .map(|c| if c.is_whitespace() || c == '#' { '_' } else { c })
        .collect()
}

/// `text` as diagnostic lines.
fn diagnose(out: &mut String, text: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "{}", format!("# {line}").trim_end());
    }
}

/// The KTAP text of `report`.
pub fn render(report: &Report) -> String {
    let mut out = String::from("KTAP version 1\n");
    let _ = writeln!(
        out,
        "# {} {} on Linux {} ({}), {}",
        report.tool.name, report.tool.version, report.kernel.release, report.kernel.arch, report.date
    );
    let _ = writeln!(out, "1..{}", report.results.len());
    for (i, case) in report.results.iter().enumerate() {
        let reason = case.reason.as_deref().unwrap_or_default();
        if matches!(case.verdict, VerdictName::Fail | VerdictName::Error) {
            diagnose(&mut out, reason);
        }
        if case.verdict != VerdictName::Pass {
            for note in &case.notes {
                diagnose(&mut out, &format!("note: {note}"));
            }
        }
        let (result, directive) = match case.verdict {
            VerdictName::Pass => ("ok", String::new()),
            VerdictName::Fail => ("not ok", String::new()),
            VerdictName::Skip => ("ok", format!(" # SKIP {}", one_line(reason))),
            VerdictName::Error => (
                "not ok",
                format!(" # ERROR {}", reason.lines().next().unwrap_or_default()),
            ),
        };
        let _ = writeln!(out, "{result} {} {}{directive}", i + 1, test_name(case));
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "# Totals: pass:{} fail:{} xfail:0 xpass:0 skip:{} error:{}",
        s.pass, s.fail, s.skip, s.error
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::schema::tests::sample;

    #[test]
    fn a_plan_then_one_line_per_case_run_with_the_failure_above_its_line() {
        let text = render(&sample());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "KTAP version 1");
        assert_eq!(
            lines[1],
            "# tcpconform 0.1.0 on Linux 6.18.0 (x86_64), 2026-11-21T12:00:00Z"
        );
        assert_eq!(lines[2], "1..2");
        assert_eq!(lines[3], "ok 1 closing/active_close.ipv4");
        assert_eq!(
            lines[4],
            "# c.yaml:9:3: state: conn is FIN_WAIT2, the case expects TIME_WAIT"
        );
        assert_eq!(lines[5], "not ok 2 closing/active_close.ipv6");
        assert_eq!(lines[6], "# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:0 error:0");
        assert_eq!(lines.len(), 7);
    }

    #[test]
    fn skips_carry_their_reason_and_errors_their_first_line() {
        let mut report = sample();
        report.results[0].verdict = VerdictName::Skip;
        report.results[0].reason = Some("unsupported: a.pkt:3:1: this\n  and that".into());
        report.results[0].notes = vec!["cubic per socket".into()];
        report.results[1].verdict = VerdictName::Error;
        report.results[1].reason = Some("cannot build the lab\n  caused by: EPERM".into());
        report.results[1].id = "odd id#1".into();
        let text = render(&report);
        assert!(
            text.contains("# note: cubic per socket\nok 1 closing/active_close.ipv4 # SKIP unsupported: a.pkt:3:1: this; and that\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "# cannot build the lab\n#   caused by: EPERM\nnot ok 2 odd_id_1.ipv6 # ERROR cannot build the lab\n"
            ),
            "{text}"
        );
    }
}
