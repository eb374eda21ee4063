//! `compare.md` and `compare.html`: a comparison for people. Both open with
//! the kernels compared, then the cases that differ, each with its
//! difference spelled out and its exchange diff, then the timing
//! differences, then the case × kernel matrix of verdicts (differing rows
//! first), then the TCP settings and the RFC 9293 requirements' statuses
//! that differ.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use super::{Column, Comparison, DiffLine, Difference, Op, Row, Setting, Status, Timing};
use crate::report::html::{TAIL, anchor, escape, head, href, human_ms};
use crate::report::schema::VerdictName;

/// Identical entries around a change shown in a diff; longer runs are elided.
const CONTEXT: usize = 3;

/// One row of the kernels table: how to read it from a column.
type Field = fn(&Column) -> String;

/// The rows of the kernels table.
const KERNEL_ROWS: [(&str, Field); 6] = [
    ("release", |k| k.release.clone()),
    ("version", |k| k.version.clone()),
    ("arch", |k| k.arch.clone()),
    ("run", |k| k.date.clone()),
    ("tolerance", |k| human_ms(k.tolerance_ms)),
    ("tool", |k| k.tool_version.clone()),
];

fn verdict_word(v: Option<VerdictName>) -> &'static str {
    v.map_or("not run", VerdictName::as_str)
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The diff lines to show: changes with [`CONTEXT`] lines around them, and
/// `None` for each elided run of identical lines.
fn shown(diff: &[DiffLine]) -> Vec<Option<&DiffLine>> {
    let near = |i: usize| {
        let lo = i.saturating_sub(CONTEXT);
        let hi = (i + CONTEXT).min(diff.len().saturating_sub(1));
        (lo..=hi).any(|k| diff[k].op != Op::Same)
    };
    let mut out = Vec::new();
    for (i, line) in diff.iter().enumerate() {
        if near(i) {
            out.push(Some(line));
        } else if out.last().is_none_or(|l: &Option<&DiffLine>| l.is_some()) {
            out.push(None);
        }
    }
    out
}

fn headline(reason: &Option<String>) -> &str {
    reason.as_deref().and_then(|r| r.lines().next()).unwrap_or_default()
}

/// The case runs that differ in verdict or exchange, in the comparison's order.
fn differing(c: &Comparison) -> Vec<&Row> {
    c.cases.iter().filter(|r| r.status == Status::Differs).collect()
}

/// The column of the kernel a difference is on (the baseline's when none).
fn column(c: &Comparison, d: &Difference) -> usize {
    c.kernels.iter().position(|k| k.label == d.kernel).unwrap_or(0)
}

/// Every timing difference beyond the tolerance, with its case run and kernel.
fn timings(c: &Comparison) -> Vec<(&Row, &Difference, &Timing)> {
    c.cases
        .iter()
        .flat_map(|row| row.differences.iter().map(move |d| (row, d)))
        .flat_map(|(row, d)| d.timing.iter().map(move |t| (row, d, t)))
        .collect()
}

/// The comparison as Markdown.
pub fn markdown(c: &Comparison) -> String {
    let mut out = String::from("# tcpconform compare\n\n");
    let s = &c.summary;
    let _ = writeln!(
        out,
        "Baseline: **{}**. {} case runs: {} differ, {} differ in timing only, {} the same.\n",
        c.kernels[0].label, s.total, s.differs, s.timing, s.same
    );
    out.push_str("| |");
    for (i, k) in c.kernels.iter().enumerate() {
        let _ = write!(
            out,
            " {}{} |",
            md_cell(&k.label),
            if i == 0 { " (baseline)" } else { "" }
        );
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(c.kernels.len()));
    out.push('\n');
    for (name, get) in KERNEL_ROWS
        .into_iter()
        .chain([("report", (|k| k.report.clone()) as Field)])
    {
        let _ = write!(out, "| {name} |");
        for k in &c.kernels {
            let _ = write!(out, " {} |", md_cell(&get(k)));
        }
        out.push('\n');
    }

    out.push_str("\n## Differences\n\n");
    let differing = differing(c);
    if differing.is_empty() {
        out.push_str(
            "None: every case has the same verdict and the same exchange on every kernel (timings aside).\n\n",
        );
    }
    for row in differing {
        let _ = writeln!(out, "### `{}` {}: {}\n", row.id, row.family, row.title);
        for d in &row.differences {
            let k = column(c, d);
            if let Some((a, b)) = d.verdict {
                let _ = writeln!(
                    out,
                    "- verdict: {} on {}, **{}** on {}",
                    verdict_word(a),
                    c.kernels[0].label,
                    verdict_word(b),
                    d.kernel
                );
                for (i, reason) in [(0, &row.reasons[0]), (k, &row.reasons[k])] {
                    if reason.is_some() {
                        let _ = writeln!(out, "  - {}: {}", c.kernels[i].label, headline(reason));
                    }
                }
            }
            if !d.changes.is_empty() {
                let _ = writeln!(out, "- exchange on {} against {}:", d.kernel, c.kernels[0].label);
                for change in &d.changes {
                    let _ = writeln!(out, "  - {change}");
                }
            }
            if !d.diff.is_empty() {
                out.push_str("\n  ```diff\n");
                for line in shown(&d.diff) {
                    match line {
                        Some(l) => {
                            let sign = match l.op {
                                Op::Same => ' ',
                                Op::Del => '-',
                                Op::Add => '+',
                            };
                            let _ = writeln!(out, "  {sign} {}", l.line);
                        }
                        None => out.push_str("  ...\n"),
                    }
                }
                out.push_str("  ```\n");
            }
        }
        out.push('\n');
    }

    let timing = timings(c);
    if !timing.is_empty() {
        out.push_str("## Timing differences beyond the tolerance\n\nThe kernel's delay before a frame, from the entry before it.\n\n");
        for (row, d, t) in timing {
            let _ = writeln!(
                out,
                "- `{}` {} on {}: `{}` after {} instead of {}",
                row.id,
                row.family,
                d.kernel,
                t.entry.trim(),
                human_ms(t.this_ms),
                human_ms(t.baseline_ms)
            );
        }
        out.push('\n');
    }

    out.push_str("## Matrix\n\n| case | family |");
    for k in &c.kernels {
        let _ = write!(out, " {} |", md_cell(&k.label));
    }
    out.push_str(" |\n|---|---|");
    out.push_str(&"---|".repeat(c.kernels.len() + 1));
    out.push('\n');
    for row in &c.cases {
        let _ = write!(out, "| {} | {} |", md_cell(&row.id), row.family);
        for v in &row.verdicts {
            let word = verdict_word(*v);
            if *v == Some(VerdictName::Pass) {
                let _ = write!(out, " {word} |");
            } else {
                let _ = write!(out, " **{word}** |");
            }
        }
        let status = match row.status {
            Status::Differs => "differs",
            Status::Timing => "timing",
            Status::Same => "",
        };
        let _ = writeln!(out, " {status} |");
    }

    out.push_str("\n## TCP settings that differ\n\n");
    md_values(
        &mut out,
        c,
        "knob",
        &c.settings,
        "(absent)",
        "None: a fresh network namespace has the same TCP settings on every kernel.",
    );
    out.push_str("\n## RFC 9293 requirements whose status differs\n\n");
    md_values(
        &mut out,
        c,
        "requirement",
        &c.requirements,
        "(not in the report)",
        "None: every requirement has the same status on every kernel whose report has requirements.",
    );
    out
}

/// A table of values per kernel, one row each, or `none` when there are none.
fn md_values(out: &mut String, c: &Comparison, what: &str, rows: &[Setting], absent: &str, none: &str) {
    if rows.is_empty() {
        out.push_str(none);
        out.push('\n');
        return;
    }
    let _ = write!(out, "| {what} |");
    for k in &c.kernels {
        let _ = write!(out, " {} |", md_cell(&k.label));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(c.kernels.len()));
    out.push('\n');
    for s in rows {
        let _ = write!(out, "| {} |", s.name);
        for v in &s.values {
            let _ = write!(out, " {} |", md_cell(v.as_deref().unwrap_or(absent)));
        }
        out.push('\n');
    }
}

/// `to` relative to the directory `from`, both made absolute first; `to` itself when that fails.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let (Ok(from), Ok(to)) = (from.canonicalize(), to.canonicalize()) else {
        return to.to_path_buf();
    };
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..a.len() {
        out.push("..");
    }
    for c in &b[common..] {
        out.push(c);
    }
    out
}

/// `text` escaped for HTML, with its `` `quoted` `` parts as `<code>`.
fn code_spans(text: &str) -> String {
    text.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{}</code>", escape(part))
            } else {
                escape(part)
            }
        })
        .collect()
}

fn verdict_cell(v: Option<VerdictName>, link: Option<String>) -> String {
    let word = verdict_word(v);
    let class = v.map_or("none", VerdictName::as_str);
    match link {
        Some(l) => format!("<td class=\"cell\"><a class=\"v {class}\" href=\"{l}\">{word}</a></td>"),
        None => format!("<td class=\"cell\"><span class=\"v {class}\">{word}</span></td>"),
    }
}

/// The comparison as one self-contained HTML page written into `dir`.
pub fn html(c: &Comparison, dir: &Path) -> String {
    let pages: Vec<PathBuf> = c
        .kernels
        .iter()
        .map(|k| relative(dir, Path::new(&k.report)).with_file_name("index.html"))
        .collect();
    let link = |k: usize, row: &Row| {
        format!(
            "{}#{}",
            escape(&pages[k].to_string_lossy()),
            href(&anchor(&row.id, &row.family))
        )
    };
    let mut out = head("tcpconform compare");
    let s = &c.summary;
    let _ = write!(
        out,
        concat!(
            "<header>\n<h1>TCP conformance compared across kernels</h1>\n",
            "<p class=\"sub\">baseline {} · {} case runs</p>\n</header>\n",
            "<div class=\"badges\"><span class=\"badge fail\">{} differ</span>",
            "<span class=\"badge skip\">{} differ in timing only</span><span class=\"badge pass\">{} the same</span></div>\n",
            "<section id=\"kernels\">\n<h2>Kernels</h2>\n<table>\n<tr><th></th>"
        ),
        escape(&c.kernels[0].label),
        s.total,
        s.differs,
        s.timing,
        s.same
    );
    for (i, k) in c.kernels.iter().enumerate() {
        let _ = write!(
            out,
            "<th>{}{}</th>",
            escape(&k.label),
            if i == 0 { " (baseline)" } else { "" }
        );
    }
    out.push_str("</tr>\n");
    for (name, get) in KERNEL_ROWS {
        let _ = write!(out, "<tr><th>{name}</th>");
        for k in &c.kernels {
            let _ = write!(out, "<td class=\"mono\">{}</td>", escape(&get(k)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("<tr><th>report</th>");
    for (i, k) in c.kernels.iter().enumerate() {
        let _ = write!(
            out,
            "<td class=\"mono\"><a href=\"{}\">{}</a></td>",
            escape(&pages[i].to_string_lossy()),
            escape(&k.report)
        );
    }
    out.push_str("</tr>\n</table>\n</section>\n");

    out.push_str("<section id=\"differences\">\n<h2>Differences</h2>\n");
    let differing = differing(c);
    if differing.is_empty() {
        out.push_str(
            "<p>None: every case has the same verdict and the same exchange on every kernel (timings aside).</p>\n",
        );
    } else {
        out.push_str("<ul class=\"differs-list\">\n");
    }
    for row in &differing {
        let _ = writeln!(
            out,
            "<li id=\"diff-{}\"><h3>{} <span class=\"family\">{}</span></h3><p class=\"title\">{}</p>",
            escape(&anchor(&row.id, &row.family)),
            escape(&row.id),
            escape(&row.family),
            escape(&row.title)
        );
        for d in &row.differences {
            let k = column(c, d);
            if let Some((a, b)) = d.verdict {
                let _ = writeln!(
                    out,
                    "<p>verdict: <span class=\"v {}\">{}</span> on {} → <span class=\"v {}\">{}</span> on {}</p>",
                    a.map_or("none", VerdictName::as_str),
                    verdict_word(a),
                    escape(&c.kernels[0].label),
                    b.map_or("none", VerdictName::as_str),
                    verdict_word(b),
                    escape(&d.kernel)
                );
                for i in [0, k] {
                    if row.reasons[i].is_some() {
                        let _ = writeln!(
                            out,
                            "<p class=\"note-text\">{}: <code>{}</code></p>",
                            escape(&c.kernels[i].label),
                            escape(headline(&row.reasons[i]))
                        );
                    }
                }
            }
            if !d.changes.is_empty() {
                let _ = write!(
                    out,
                    "<p>exchange on {} against {}:</p>\n<ul class=\"fields\">\n",
                    escape(&d.kernel),
                    escape(&c.kernels[0].label)
                );
                for change in &d.changes {
                    let _ = writeln!(out, "<li>{}</li>", code_spans(change));
                }
                out.push_str("</ul>\n");
            }
            if !d.diff.is_empty() {
                out.push_str("<table class=\"diff\">\n");
                for line in shown(&d.diff) {
                    match line {
                        Some(l) => {
                            let (class, sign) = match l.op {
                                Op::Same => ("same", " "),
                                Op::Del => ("del", "−"),
                                Op::Add => ("add", "+"),
                            };
                            let _ = writeln!(
                                out,
                                "<tr class=\"{class}\"><td class=\"sign\">{sign}</td><td>{}</td></tr>",
                                escape(&l.line)
                            );
                        }
                        None => out.push_str("<tr class=\"gap\"><td></td><td>…</td></tr>\n"),
                    }
                }
                out.push_str("</table>\n");
            }
            let _ = writeln!(
                out,
                "<p class=\"note-text\">exchanges: <a href=\"{}\">{}</a> · <a href=\"{}\">{}</a></p>",
                link(0, row),
                escape(&c.kernels[0].label),
                link(k, row),
                escape(&d.kernel)
            );
        }
        out.push_str("</li>\n");
    }
    if !differing.is_empty() {
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");

    let timing = timings(c);
    if !timing.is_empty() {
        out.push_str("<section id=\"timing\">\n<h2>Timing differences beyond the tolerance</h2>\n<p class=\"note-text\">The kernel's delay before a frame, from the entry before it.</p>\n<table>\n<tr><th>case</th><th>family</th><th>kernel</th><th>frame</th><th class=\"num\">baseline</th><th class=\"num\">this kernel</th></tr>\n");
        for (row, d, t) in timing {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                escape(&row.id),
                escape(&row.family),
                escape(&d.kernel),
                escape(t.entry.trim()),
                human_ms(t.baseline_ms),
                human_ms(t.this_ms)
            );
        }
        out.push_str("</table>\n</section>\n");
    }

    out.push_str(
        "<section id=\"matrix\">\n<h2>Matrix</h2>\n<table class=\"matrix\">\n<tr><th>case</th><th>family</th>",
    );
    for k in &c.kernels {
        let _ = write!(out, "<th>{}</th>", escape(&k.label));
    }
    out.push_str("<th></th></tr>\n");
    for row in &c.cases {
        let class = match row.status {
            Status::Differs => " class=\"differs\"",
            Status::Timing | Status::Same => "",
        };
        let _ = write!(
            out,
            "<tr{class}><th scope=\"row\">{}</th><td>{}</td>",
            escape(&row.id),
            escape(&row.family)
        );
        for (k, v) in row.verdicts.iter().enumerate() {
            out.push_str(&verdict_cell(*v, v.map(|_| link(k, row))));
        }
        let status = match row.status {
            Status::Differs => format!("<a href=\"#diff-{}\">differs</a>", href(&anchor(&row.id, &row.family))),
            Status::Timing => "timing".into(),
            Status::Same => String::new(),
        };
        let _ = writeln!(out, "<td>{status}</td></tr>");
    }
    out.push_str("</table>\n</section>\n");

    html_values(
        &mut out,
        c,
        ("settings", "TCP settings that differ", "knob"),
        &c.settings,
        "(absent)",
        "None: a fresh network namespace has the same TCP settings on every kernel.",
    );
    html_values(
        &mut out,
        c,
        (
            "requirements",
            "RFC 9293 requirements whose status differs",
            "requirement",
        ),
        &c.requirements,
        "(not in the report)",
        "None: every requirement has the same status on every kernel whose report has requirements.",
    );
    out.push_str(TAIL);
    out
}

/// A section (`id`, heading, first column) with a table of values per kernel,
/// or `none` when there are none.
fn html_values(
    out: &mut String,
    c: &Comparison,
    (id, heading, what): (&str, &str, &str),
    rows: &[Setting],
    absent: &str,
    none: &str,
) {
    let _ = writeln!(out, "<section id=\"{id}\">\n<h2>{heading}</h2>");
    if rows.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", escape(none));
    } else {
        let _ = write!(out, "<table>\n<tr><th>{what}</th>");
        for k in &c.kernels {
            let _ = write!(out, "<th>{}</th>", escape(&k.label));
        }
        out.push_str("</tr>\n");
        for s in rows {
            let _ = write!(out, "<tr><td class=\"mono\">{}</td>", escape(&s.name));
            for v in &s.values {
                let _ = write!(
                    out,
                    "<td class=\"mono\">{}</td>",
                    escape(v.as_deref().unwrap_or(absent))
                );
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(op: Op, n: usize) -> DiffLine {
        DiffLine {
            op,
            line: format!("l{n}"),
        }
    }

    #[test]
    fn long_runs_of_identical_lines_are_elided_around_changes() {
        let mut diff: Vec<DiffLine> = (0..10).map(|n| line(Op::Same, n)).collect();
        diff.push(line(Op::Add, 10));
        diff.extend((11..20).map(|n| line(Op::Same, n)));
        let lines: Vec<String> = shown(&diff)
            .into_iter()
            .map(|l| l.map_or("...".to_string(), |l| l.line.clone()))
            .collect();
        assert_eq!(lines, ["...", "l7", "l8", "l9", "l10", "l11", "l12", "l13", "..."]);
    }

    #[test]
    fn quoted_parts_of_a_change_become_code() {
        assert_eq!(
            code_spans("win: 1 → 2 in `> S. <mss 1460>`"),
            "win: 1 → 2 in <code>&gt; S. &lt;mss 1460&gt;</code>"
        );
    }

    #[test]
    fn relative_paths_climb_out_of_the_output_directory() {
        let root = std::env::temp_dir().join(format!("tcpconform-rel-{}", std::process::id()));
        let (out, report) = (root.join("cmp"), root.join("runs/a/report.json"));
        std::fs::create_dir_all(&out).expect("dir");
        std::fs::create_dir_all(report.parent().expect("parent")).expect("dir");
        std::fs::write(&report, "{}").expect("file");
        assert_eq!(relative(&out, &report), PathBuf::from("../runs/a/report.json"));
        let _ = std::fs::remove_dir_all(&root);
    }
}
