//! `index.html`: the report of a run for a person, in one self-contained
//! page (inline style and SVG, no script, nothing fetched): the summary,
//! the coverage of docs/BEHAVIORS.md, the kernel, and per case and family
//! its verdict, its failure with the differing fields highlighted, and the
//! sequence diagram of its exchange (see [`super::ladder`]).

use std::fmt::Write as _;

use super::ladder;
use super::mismatch;
use super::pcap;
use super::schema::{CaseReport, CoveringRun, Report, Requirements, VerdictName};
use crate::requirements::Status;

/// The pages' style sheet, inlined into each page.
pub const STYLE: &str = include_str!("report.css");

/// `s` with the characters HTML and SVG give a meaning escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The anchor of a case run in `index.html` (without `#`).
pub fn anchor(id: &str, family: &str) -> String {
    let file = pcap::file_name(id, family);
    format!("case-{}", file.trim_end_matches(".pcapng"))
}

/// A relative URL reference to a file or anchor name made by [`pcap::file_name`] or [`anchor`].
pub fn href(name: &str) -> String {
    escape(&name.replace('%', "%25"))
}

/// `1 ms`, `250 ms`, `1.50 s`.
pub fn human_ms(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1e3)
    }
}

/// The page's opening: doctype, head with the title and style, and `<main>`.
pub fn head(title: &str) -> String {
    format!(
        concat!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
            "<title>{}</title>\n<style>\n{}</style>\n</head>\n<body>\n<main>\n"
        ),
        escape(title),
        STYLE
    )
}

/// The page's end.
pub const TAIL: &str = "</main>\n</body>\n</html>\n";

/// Links to case runs, coloured by verdict.
fn chips(runs: &[CoveringRun]) -> Vec<String> {
    runs.iter()
        .map(|r| {
            format!(
                "<a class=\"chip {}\" href=\"#{}\">{}::{}</a>",
                r.verdict.as_str(),
                href(&anchor(&r.case, &r.family)),
                escape(&r.case),
                escape(&r.family)
            )
        })
        .collect()
}

/// The colour class of a requirement's status.
fn status_class(s: Status) -> &'static str {
    match s {
        Status::Met => "pass",
        Status::Deviates => "skip",
        Status::Failed => "fail",
        Status::NotCovered | Status::NotObservable | Status::NotApplicable => "none",
    }
}

/// RFC 9293's requirements: a line per level, then every row with its status and runs.
fn requirements_section(out: &mut String, requirements: &Requirements) {
    out.push_str("<section id=\"requirements\">\n<h2>Requirements of RFC 9293</h2>\n");
    for level in &requirements.summary {
        let _ = writeln!(out, "<p>{}.</p>", escape(&level.line()));
    }
    out.push_str("<table>\n<tr><th>ID</th><th>section</th><th>keyword</th><th>requirement</th><th>observed</th><th>status</th><th>runs</th></tr>\n");
    for r in &requirements.rows {
        let deviation = r
            .deviation
            .as_deref()
            .map_or(String::new(), |why| format!("<br><small>{}</small>", escape(why)));
        let _ = writeln!(
            out,
            "<tr id=\"{id}\"{cls}><td>{id}</td><td>{section}</td><td>{keyword}</td><td>{summary}</td><td>{observed}</td><td><span class=\"v {colour}\">{status}</span>{deviation}</td><td>{runs}</td></tr>",
            id = escape(&r.id),
            cls = if r.runs.is_empty() { " class=\"uncovered\"" } else { "" },
            section = escape(&r.section),
            keyword = escape(&r.keyword),
            summary = escape(&r.summary),
            observed = escape(&r.observed),
            colour = status_class(r.status),
            status = r.status.name(),
            runs = chips(&r.runs).join(" "),
        );
    }
    out.push_str("</table>\n</section>\n");
}

fn verdict_tag(v: VerdictName) -> String {
    format!("<span class=\"v {0}\">{0}</span>", v.as_str())
}

/// A failure message with the fields that differ highlighted in its `expected` and `actual` lines.
fn reason_block(case: &CaseReport) -> String {
    let Some(reason) = case.reason.as_deref() else {
        return String::new();
    };
    let f = mismatch::parse(reason);
    let mut out = String::from("<div class=\"reason\"><pre>");
    for line in reason.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let split = ["expected  ", "actual    "]
            .into_iter()
            .find_map(|p| trimmed.strip_prefix(p).map(|rest| (p, rest)));
        match split {
            Some((label, segment)) if !f.fields.is_empty() => {
                let mut marked = String::new();
                let mut at = 0;
                for r in mismatch::highlights(segment, &f.fields) {
                    marked.push_str(&escape(&segment[at..r.start]));
                    let _ = write!(marked, "<mark>{}</mark>", escape(&segment[r.clone()]));
                    at = r.end;
                }
                marked.push_str(&escape(&segment[at..]));
                let _ = writeln!(out, "{indent}{label}{marked}");
            }
            _ => {
                let _ = writeln!(out, "{}", escape(line));
            }
        }
    }
    out.push_str("</pre></div>\n");
    out
}

/// What the run did differently from what the case asks, one item per note.
fn notes_block(case: &CaseReport) -> String {
    if case.notes.is_empty() {
        return String::new();
    }
    let items: Vec<String> = case
        .notes
        .iter()
        .map(|n| format!("<li>note: {}</li>", escape(n)))
        .collect();
    format!("<ul class=\"notes\">{}</ul>\n", items.join(""))
}

fn case_section(case: &CaseReport) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<article class=\"case {v}\" id=\"{id}\">\n<h3>{tag} {name} <span class=\"family\">{family}</span></h3>\n",
        v = case.verdict.as_str(),
        id = escape(&anchor(&case.id, &case.family)),
        tag = verdict_tag(case.verdict),
        name = escape(&case.id),
        family = escape(&case.family),
    );
    let _ = writeln!(out, "<p class=\"title\">{}</p>", escape(&case.title));
    let mut meta = vec![escape(&case.syntax)];
    if !case.covers.is_empty() {
        let links: Vec<String> = case
            .covers
            .iter()
            .map(|b| format!("<a href=\"#{0}\">{0}</a>", escape(b)))
            .collect();
        meta.push(format!("covers {}", links.join(", ")));
    }
    if !case.rfc.is_empty() {
        meta.push(escape(&case.rfc.join(", ")));
    }
    meta.push(format!("took {}", human_ms(case.duration_ms)));
    meta.push(format!("tolerance {}", human_ms(case.tolerance_ms)));
    for (name, value) in &case.sysctls {
        meta.push(format!("<code>{} = {}</code>", escape(name), escape(value)));
    }
    if case
        .exchange
        .iter()
        .any(|e| matches!(e, super::schema::Entry::Frame { .. }))
    {
        meta.push(format!(
            "<a href=\"pcap/{}\">capture</a>",
            href(&pcap::file_name(&case.id, &case.family))
        ));
    }
    let spans: Vec<String> = meta.into_iter().map(|m| format!("<span>{m}</span>")).collect();
    let _ = writeln!(out, "<p class=\"meta\">{}</p>", spans.join(""));
    if let Some(d) = &case.description {
        let _ = writeln!(out, "<p class=\"description\">{}</p>", escape(d));
    }
    out.push_str(&reason_block(case));
    out.push_str(&notes_block(case));
    let marks = ladder::marks(case);
    let _ = write!(
        out,
        "<div class=\"ladder-wrap\">{}</div>\n</article>\n",
        ladder::render(case, &marks)
    );
    out
}

/// The whole page for `report`.
pub fn render(report: &Report) -> String {
    let k = &report.kernel;
    let mut out = head(&format!("tcpconform: Linux {} {}", k.release, k.arch));
    let _ = write!(
        out,
        concat!(
            "<header>\n<h1>TCP conformance of Linux {release}</h1>\n",
            "<p class=\"sub\">{arch} · {version} · run {date} · {tool} {tool_version} · ",
            "default tolerance {tol} · took {took}</p>\n",
            "<nav><a href=\"#summary\">Summary</a> · <a href=\"#cases\">Cases</a> · ",
            "<a href=\"#coverage\">Coverage</a> · <a href=\"#requirements\">Requirements</a> · ",
            "<a href=\"#kernel\">Kernel</a> · ",
            "<a href=\"#exchanges\">Exchanges</a> · <a href=\"junit.xml\">junit.xml</a> · ",
            "<a href=\"report.json\">report.json</a></nav>\n</header>\n"
        ),
        release = escape(&k.release),
        arch = escape(&k.arch),
        version = escape(&k.version),
        date = escape(&report.date),
        tool = escape(&report.tool.name),
        tool_version = escape(&report.tool.version),
        tol = human_ms(report.tolerance_ms),
        took = human_ms(report.duration_ms),
    );

    let s = &report.summary;
    let _ = write!(
        out,
        concat!(
            "<section id=\"summary\">\n<h2>Summary</h2>\n<div class=\"badges\">",
            "<span class=\"badge total\">{} case runs</span>",
            "<span class=\"badge pass\">{} passed</span><span class=\"badge fail\">{} failed</span>",
            "<span class=\"badge skip\">{} skipped</span><span class=\"badge error\">{} errors</span></div>\n"
        ),
        s.total, s.pass, s.fail, s.skip, s.error
    );
    let attention: Vec<&CaseReport> = report
        .results
        .iter()
        .filter(|r| matches!(r.verdict, VerdictName::Fail | VerdictName::Error))
        .collect();
    if !attention.is_empty() {
        out.push_str("<p>Needs attention:</p>\n<ul>\n");
        for r in attention {
            let _ = writeln!(
                out,
                "<li>{} <a href=\"#{}\">{}</a>: {}</li>",
                verdict_tag(r.verdict),
                href(&anchor(&r.id, &r.family)),
                escape(&r.name()),
                escape(r.reason.as_deref().and_then(|m| m.lines().next()).unwrap_or_default())
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");

    out.push_str("<section id=\"cases\">\n<h2>Cases</h2>\n<table>\n<tr><th>case</th><th>family</th><th>syntax</th><th>verdict</th><th class=\"num\">time</th><th>behaviour checked</th></tr>\n");
    for r in &report.results {
        let _ = writeln!(
            out,
            "<tr><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            href(&anchor(&r.id, &r.family)),
            escape(&r.id),
            escape(&r.family),
            escape(&r.syntax),
            verdict_tag(r.verdict),
            human_ms(r.duration_ms),
            escape(&r.title)
        );
    }
    out.push_str("</table>\n</section>\n");

    let covered = report.coverage.values().filter(|c| !c.runs.is_empty()).count();
    let _ = write!(
        out,
        "<section id=\"coverage\">\n<h2>Coverage</h2>\n<p>{covered} of {} behaviours of docs/BEHAVIORS.md are covered by a case.</p>\n<table>\n<tr><th>ID</th><th>section</th><th>behaviour</th><th>runs</th></tr>\n",
        report.coverage.len()
    );
    for (id, c) in &report.coverage {
        let runs = chips(&c.runs);
        let _ = writeln!(
            out,
            "<tr id=\"{id}\"{cls}><td>{id}</td><td>{section}</td><td>{behavior}</td><td>{runs}</td></tr>",
            id = escape(id),
            cls = if c.runs.is_empty() { " class=\"uncovered\"" } else { "" },
            section = escape(&c.section),
            behavior = escape(&c.behavior),
            runs = if runs.is_empty() {
                "not covered".to_string()
            } else {
                runs.join(" ")
            },
        );
    }
    out.push_str("</table>\n</section>\n");

    requirements_section(&mut out, &report.requirements);

    let _ = write!(
        out,
        concat!(
            "<section id=\"kernel\">\n<h2>Kernel</h2>\n<table>\n",
            "<tr><th>release</th><td class=\"mono\">{}</td></tr>\n<tr><th>version</th><td class=\"mono\">{}</td></tr>\n",
            "<tr><th>arch</th><td class=\"mono\">{}</td></tr>\n</table>\n",
            "<details><summary>{} TCP settings of a fresh network namespace (what cases rely on unless they set a knob)</summary>\n<table>\n"
        ),
        escape(&k.release),
        escape(&k.version),
        escape(&k.arch),
        k.sysctls.len()
    );
    for (name, value) in &k.sysctls {
        let _ = writeln!(
            out,
            "<tr><td class=\"mono\">{}</td><td class=\"mono\">{}</td></tr>",
            escape(name),
            escape(value)
        );
    }
    out.push_str("</table>\n</details>\n</section>\n");

    out.push_str(concat!(
        "<section id=\"exchanges\">\n<h2>Exchanges</h2>\n",
        "<p class=\"filters\"><label><input type=\"checkbox\" id=\"hide-pass\"> hide passed cases</label>",
        "<label><input type=\"checkbox\" id=\"hide-skip\"> hide skipped cases</label></p>\n",
        "<p class=\"note-text\">The harness plays the peer on the left; the kernel under test is on the right. ",
        "Segments are in the cases' notation, with sequence numbers relative to each side's ISN; ",
        "socket calls, states and queue reads are marked on the kernel's side. Times are seconds since the case's first step.</p>\n"
    ));
    for r in &report.results {
        out.push_str(&case_section(r));
    }
    out.push_str("</section>\n");
    out.push_str(TAIL);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::schema::tests::sample;

    #[test]
    fn escaping_covers_markup_and_attribute_quotes() {
        assert_eq!(
            escape(r#"<mss 1460> & "x" 'y'"#),
            "&lt;mss 1460&gt; &amp; &quot;x&quot; &#39;y&#39;"
        );
    }

    #[test]
    fn anchors_follow_capture_names_and_hrefs_escape_percent() {
        assert_eq!(
            anchor("opening/passive_handshake", "ipv4"),
            "case-opening+passive_handshake.ipv4"
        );
        assert_eq!(href("case-a%20b"), "case-a%2520b");
    }

    #[test]
    fn expected_and_actual_lines_get_the_differing_fields_marked() {
        let mut case = sample().results.remove(1);
        case.reason = Some(
            "c.yaml:1:1: expect: the kernel's segment differs from the case\n    expected  . 1:1(0) ack 2 win 5\n    actual    . 1:1(0) ack 1 win 5\n    ack: expected 2, got 1".into(),
        );
        let block = reason_block(&case);
        assert!(block.contains("expected  . 1:1(0) ack <mark>2</mark> win 5"), "{block}");
        assert!(block.contains("actual    . 1:1(0) ack <mark>1</mark> win 5"), "{block}");
    }

    #[test]
    fn requirements_have_their_summary_lines_and_a_row_each_with_status_and_runs() {
        let report = sample();
        let mut requirements = Requirements {
            summary: vec![crate::report::schema::LevelSummary {
                level: "MUST".into(),
                met: 1,
                deviates: 1,
                failed: 0,
                not_covered: 66,
                observable: 68,
                total: 69,
            }],
            rows: Vec::new(),
        };
        requirements.rows.push(crate::report::schema::RequirementRow {
            id: "MUST-13".into(),
            section: "3.6.1".into(),
            keyword: "MUST".into(),
            summary: "TIME-WAIT lasts 2 MSL".into(),
            observed: "wire".into(),
            status: Status::Deviates,
            deviation: Some("60 s <fixed>".into()),
            runs: vec![CoveringRun {
                case: "closing/time_wait_lifetime".into(),
                family: "ipv4".into(),
                verdict: VerdictName::Pass,
            }],
        });
        let mut out = String::new();
        requirements_section(&mut out, &requirements);
        assert!(
            out.contains("<p>MUST: 1 met, 1 deviate, 0 failed, 66 not covered, of 68 observable.</p>"),
            "{out}"
        );
        assert!(
            out.contains("<span class=\"v skip\">deviates</span><br><small>60 s &lt;fixed&gt;</small>"),
            "{out}"
        );
        assert!(out.contains("href=\"#case-closing+time_wait_lifetime.ipv4\""), "{out}");
        assert!(render(&report).contains("<section id=\"requirements\">"));
    }

    #[test]
    fn notes_are_listed_under_the_case() {
        let mut case = sample().results.remove(0);
        case.notes = vec!["every socket selects <cubic>".into()];
        let section = case_section(&case);
        assert!(
            section.contains("<ul class=\"notes\"><li>note: every socket selects &lt;cubic&gt;</li></ul>"),
            "{section}"
        );
        assert!(section.contains("<p class=\"meta\"><span>yaml</span>"), "{section}");
    }

    #[test]
    fn the_page_has_a_diagram_per_case_run_and_needs_nothing_from_outside() {
        let page = render(&sample());
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert_eq!(page.matches("<svg class=\"ladder\"").count(), 2);
        assert_eq!(page.matches("<article class=\"case ").count(), 2);
        assert!(page.contains("id=\"case-closing+active_close.ipv6\""));
        assert!(page.contains("href=\"pcap/closing+active_close.ipv4.pcapng\""));
        assert!(page.contains("Needs attention"));
        assert!(
            page.contains("<td>ipv6</td><td>yaml</td>"),
            "the case table names the syntax"
        );
        assert!(!page.contains("class=\"notes\""), "no notes, no list");
        assert!(!page.contains("<script"), "no script");
        assert!(!page.contains("src="), "nothing loaded from elsewhere");
    }
}
