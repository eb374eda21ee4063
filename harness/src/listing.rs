//! `tcpconform list`: the cases under some paths as a table, one row per
//! case file: its ID, its syntax, the families it runs on, the behaviours
//! it covers and its title; under a row, the families tcpconform cannot
//! run it on, with the reason (the construct, at `file:line:col`). Then the
//! counts, and the behaviours of docs/BEHAVIORS.md no case covers; then
//! the requirements of docs/RFC9293.md: per level (MUST, SHLD) how many the
//! cases check, mark as deviations or leave uncovered, one line per
//! requirement a case names (with the cases), and the IDs none names.
//!
//! A packetdrill script loads as one case per family; here it is one row.

use std::fmt::Write as _;

use crate::behaviors;
use crate::case::{Case, Syntax};
use crate::packet::Family;
use crate::requirements::{self, Coverage};

/// One case file: its cases, one per family (a YAML case is one case for all).
struct Row<'a> {
    cases: Vec<&'a Case>,
}

impl Row<'_> {
    fn first(&self) -> &Case {
        self.cases[0]
    }

    /// Every family with the reason it cannot run there, `None` where it can.
    fn families(&self) -> Vec<(Family, Option<&str>)> {
        self.cases
            .iter()
            .flat_map(|c| c.families.iter().map(|f| (*f, c.unsupported.as_deref())))
            .collect()
    }
}

/// Groups `cases` by file, in the order they come.
fn rows(cases: &[Case]) -> Vec<Row<'_>> {
    let mut rows: Vec<Row<'_>> = Vec::new();
    for c in cases {
        match rows
            .iter_mut()
            .find(|r| r.first().id == c.id && r.first().path == c.path)
        {
            Some(row) => row.cases.push(c),
            None => rows.push(Row { cases: vec![c] }),
        }
    }
    rows
}

fn names(families: &[Family]) -> String {
    let names: Vec<&str> = families.iter().map(|f| f.name()).collect();
    names.join(",")
}

/// The listing of `cases`, as `tcpconform list` prints it.
pub fn render(cases: &[Case]) -> String {
    let rows = rows(cases);
    let width = rows.iter().map(|r| r.first().id.len()).max().unwrap_or(0).max(2);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:width$}  {:11}  {:9}  {:11}  TITLE",
        "ID", "SYNTAX", "FAMILIES", "COVERS"
    );
    let (mut runs, mut unsupported) = (0, 0);
    for row in &rows {
        let case = row.first();
        let families = row.families();
        let runnable: Vec<Family> = families
            .iter()
            .filter(|(_, why)| why.is_none())
            .map(|(f, _)| *f)
            .collect();
        runs += families.len();
        unsupported += families.len() - runnable.len();
        let covers = if case.covers.is_empty() {
            "-".to_string()
        } else {
            case.covers.join(",")
        };
        let runnable = if runnable.is_empty() {
            "none".to_string()
        } else {
            names(&runnable)
        };
        let _ = writeln!(
            out,
            "{:width$}  {:11}  {:9}  {:11}  {}",
            case.id,
            case.syntax.name(),
            runnable,
            covers,
            case.title
        );
        // One line per reason, naming the families it holds for.
        let mut reasons: Vec<(&str, Vec<Family>)> = Vec::new();
        for (family, why) in &families {
            let Some(why) = why else { continue };
            match reasons.iter_mut().find(|(w, _)| w == why) {
                Some((_, fams)) => fams.push(*family),
                None => reasons.push((why, vec![*family])),
            }
        }
        for (why, fams) in reasons {
            let _ = writeln!(out, "{:width$}  unsupported on {}: {why}", "", names(&fams));
        }
    }
    let count = |syntax| rows.iter().filter(|r| r.first().syntax == syntax).count();
    let _ = writeln!(
        out,
        "\n{} case file(s): {} yaml, {} packetdrill; {runs} case runs, {unsupported} of them unsupported (skipped when run)",
        rows.len(),
        count(Syntax::Yaml),
        count(Syntax::Packetdrill),
    );
    let catalogue = behaviors::catalogue();
    let (covered, missing): (Vec<_>, Vec<_>) = catalogue
        .iter()
        .partition(|b| cases.iter().any(|c| c.covers.contains(&b.id)));
    let _ = writeln!(
        out,
        "coverage: {} of {} behaviours of docs/BEHAVIORS.md",
        covered.len(),
        catalogue.len()
    );
    if !missing.is_empty() {
        let ids: Vec<&str> = missing.iter().map(|b| b.id.as_str()).collect();
        let _ = writeln!(out, "not covered: {}", ids.join(" "));
    }
    requirement_lines(&mut out, cases);
    out
}

/// The requirements section: counts per level, the named ones, the rest.
fn requirement_lines(out: &mut String, cases: &[Case]) {
    let mapped = requirements::map(cases);
    for level in ["MUST", "SHLD"] {
        let of: Vec<_> = mapped
            .iter()
            .filter(|m| m.requirement.id.split('-').next() == Some(level))
            .collect();
        let count = |c: Coverage| of.iter().filter(|m| m.coverage == c).count();
        let observable = of.iter().filter(|m| m.requirement.observed.observable()).count();
        let _ = writeln!(
            out,
            "{level}: {} checked, {} deviate, {} not covered, of {observable} observable ({} in docs/RFC9293.md)",
            count(Coverage::Checked),
            count(Coverage::Deviates),
            count(Coverage::NotCovered),
            of.len()
        );
    }
    for m in mapped.iter().filter(|m| !m.cases.is_empty()) {
        let _ = writeln!(
            out,
            "  {:8}  {:8}  {}",
            m.requirement.id,
            m.coverage.name(),
            m.cases.join(", ")
        );
    }
    let missing: Vec<&str> = mapped
        .iter()
        .filter(|m| m.coverage == Coverage::NotCovered)
        .map(|m| m.requirement.id.as_str())
        .collect();
    if !missing.is_empty() {
        let _ = writeln!(out, "requirements not covered: {}", missing.join(" "));
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use super::*;
    use crate::packetdrill::invocation::Invocation;

    const SCRIPT: &str = "// A listener on the run's family.\n\
        0 socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 3\n\
        +0 bind(3, ..., ...) = 0\n\
        +0 listen(3, 1) = 0\n";

    #[test]
    fn a_script_is_one_row_with_its_unsupported_families_under_it() {
        let file = Arc::new(PathBuf::from("/x/listener.pkt"));
        let mut cases = crate::packetdrill::load_str(&file, SCRIPT, &Invocation::kselftest).expect("loads");
        let yaml = crate::case::load_str(
            std::path::Path::new("cases/opening/x.yaml"),
            "title: A YAML case\ncovers: [B01]\nflows:\n  c: { peer_port: 40000 }\nsteps:\n  - call: s = socket()\n",
        )
        .expect("a valid case");
        cases.push(yaml);
        let text = render(&cases);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ID "), "{text}");
        assert!(
            lines[1].starts_with("listener   packetdrill  ipv4       -            A listener on the run's family."),
            "{text}"
        );
        assert_eq!(
            lines[2], "           unsupported on ipv6: /x/listener.pkt:2:10: sockets of another family than the run's",
            "{text}"
        );
        assert!(
            lines[3].starts_with("opening/x  yaml         ipv4,ipv6  B01          A YAML case"),
            "{text}"
        );
        assert!(
            text.contains("2 case file(s): 1 yaml, 1 packetdrill; 4 case runs, 1 of them unsupported"),
            "{text}"
        );
        assert!(text.contains("coverage: 1 of "), "{text}");
    }

    #[test]
    fn requirements_are_counted_per_level_and_a_deviation_is_not_counted_as_checked() {
        let yaml = crate::case::load_str(
            std::path::Path::new("cases/closing/x.yaml"),
            "title: x\nrequirements: [MUST-12, MUST-13, SHLD-3]\ndeviates: {MUST-13: 60 s}\nsteps: []\n",
        )
        .expect("a valid case");
        let text = render(&[yaml]);
        assert!(
            text.contains("MUST: 1 checked, 1 deviate, 66 not covered, of 68 observable (69 in docs/RFC9293.md)"),
            "{text}"
        );
        assert!(
            text.contains("SHLD: 1 checked, 0 deviate, 27 not covered, of 28 observable (31 in docs/RFC9293.md)"),
            "{text}"
        );
        assert!(text.contains("\n  MUST-13   deviates  closing/x\n"), "{text}");
        assert!(text.contains("requirements not covered: MUST-1 MUST-2 "), "{text}");
    }
}
