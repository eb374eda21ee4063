//! RFC 9293's requirements (`docs/RFC9293.md`: MUST-1 to MUST-69 and
//! SHLD-1 to SHLD-31, from the RFC's Appendix B), built into the binary
//! from that file, so cases can name the requirements they check and be
//! refused when they name one it does not have. The file is the only
//! source: a unit test holds it to the RFC's numbering and to its own
//! counts.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::case::Case;

/// How a run can tell whether the kernel meets a requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observability {
    /// A peer sees it in the segments.
    Wire,
    /// The socket API or the kernel's configuration shows it.
    Api,
    /// It happens inside the kernel only.
    NotObservable,
    /// It does not bind a Linux TCP implementation.
    NotApplicable,
}

impl Observability {
    /// The column's word for it in `docs/RFC9293.md`.
    pub fn name(self) -> &'static str {
        match self {
            Observability::Wire => "wire",
            Observability::Api => "api",
            Observability::NotObservable => "not observable",
            Observability::NotApplicable => "not applicable",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Observability::Wire,
            Observability::Api,
            Observability::NotObservable,
            Observability::NotApplicable,
        ]
        .into_iter()
        .find(|o| o.name() == s)
    }

    /// Whether a case can check it.
    pub fn observable(self) -> bool {
        matches!(self, Observability::Wire | Observability::Api)
    }
}

impl fmt::Display for Observability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// `MUST-13`, `SHLD-4`, ...
    pub id: String,
    /// The RFC section that states it (`3.6.1`).
    pub section: String,
    /// Its strength as Appendix B marks it: `MUST`, `MUST NOT`, `SHOULD`, `SHOULD NOT`.
    pub keyword: String,
    /// The requirement in one line.
    pub summary: String,
    /// How a run can observe it.
    pub observed: Observability,
    /// How a case observes it, or why none can.
    pub how: String,
}

const TABLE: &str = include_str!("../../docs/RFC9293.md");

/// Every row of the table, in file order (MUST-1 ... MUST-69, SHLD-1 ... SHLD-31).
pub fn table() -> Vec<Requirement> {
    TABLE
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() < 8 || !is_id(cells[1]) {
                return None;
            }
            Some(Requirement {
                id: cells[1].to_string(),
                section: cells[2].to_string(),
                keyword: cells[3].to_string(),
                summary: cells[4].to_string(),
                observed: Observability::parse(cells[5])?,
                how: cells[6].to_string(),
            })
        })
        .collect()
}

/// Whether `s` looks like a requirement's ID (`MUST-` or `SHLD-` and a number).
pub fn is_id(s: &str) -> bool {
    ["MUST-", "SHLD-"].iter().any(|prefix| {
        s.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && !n.starts_with('0') && n.chars().all(|c| c.is_ascii_digit()))
    })
}

/// Why a case cannot name `id` among the requirements it checks, if it cannot:
/// the table does not have it, or says no run can observe it.
pub fn refusal(table: &[Requirement], id: &str) -> Option<String> {
    match table.iter().find(|r| r.id == id) {
        None if is_id(id) => Some(format!("`{id}` is not a requirement of docs/RFC9293.md")),
        None => Some(format!(
            "`{id}` is not a requirement of docs/RFC9293.md (IDs look like MUST-13 or SHLD-4)"
        )),
        Some(r) if !r.observed.observable() => Some(format!(
            "`{id}` is {} in docs/RFC9293.md: no case can check it",
            r.observed
        )),
        Some(_) => None,
    }
}

/// What a set of cases says about one requirement, before any run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// Cases check it and none marks it a deviation.
    Checked,
    /// A case marks it a deliberate deviation of Linux: never shown as met.
    Deviates,
    /// Observable, but no case checks it.
    NotCovered,
    /// No case can check it (the table says why).
    Unobservable(Observability),
}

impl Coverage {
    /// How a listing names it.
    pub fn name(self) -> &'static str {
        match self {
            Coverage::Checked => "checked",
            Coverage::Deviates => "deviates",
            Coverage::NotCovered => "not covered",
            Coverage::Unobservable(o) => o.name(),
        }
    }
}

/// One requirement with the cases that name it.
pub struct Mapped<'a> {
    /// The row of the table.
    pub requirement: Requirement,
    /// What the cases say about it.
    pub coverage: Coverage,
    /// The IDs of the cases naming it, once each, in the cases' order.
    pub cases: Vec<&'a str>,
}

/// Every requirement of the table, mapped to the cases that name it.
pub fn map(cases: &[Case]) -> Vec<Mapped<'_>> {
    table()
        .into_iter()
        .map(|requirement| {
            let mut ids: Vec<&str> = Vec::new();
            let mut deviates = false;
            for case in cases.iter().filter(|c| c.requirements.contains(&requirement.id)) {
                deviates |= case.deviates.iter().any(|(id, _)| *id == requirement.id);
                if !ids.contains(&case.id.as_str()) {
                    ids.push(&case.id);
                }
            }
            let coverage = if !requirement.observed.observable() {
                Coverage::Unobservable(requirement.observed)
            } else if deviates {
                Coverage::Deviates
            } else if ids.is_empty() {
                Coverage::NotCovered
            } else {
                Coverage::Checked
            };
            Mapped {
                requirement,
                coverage,
                cases: ids,
            }
        })
        .collect()
}

/// What a run says about one requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every run that checks it and ended passed, and no case marks it a deviation.
    Met,
    /// The runs that check it passed, asserting a deviation a case documents.
    Deviates,
    /// A run that checks it failed or broke.
    Failed,
    /// Observable, but no run checked it (none names it, or all were skipped).
    NotCovered,
    /// No run can check it (the table says why).
    NotObservable,
    /// It does not bind Linux (the table says why).
    NotApplicable,
}

impl Status {
    /// How reports name it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::Deviates => "deviates",
            Status::Failed => "failed",
            Status::NotCovered => "not covered",
            Status::NotObservable => "not observable",
            Status::NotApplicable => "not applicable",
        }
    }

    /// The status of a requirement observed as `observed`, checked by runs
    /// of which `passed` passed and `failed` failed or broke (skips count as
    /// neither), where a case `deviates` from it on purpose. A deviation is
    /// never met, and a failure is a failure whatever a case documents.
    pub fn of(observed: Observability, passed: usize, failed: usize, deviates: bool) -> Status {
        match observed {
            Observability::NotObservable => Status::NotObservable,
            Observability::NotApplicable => Status::NotApplicable,
            _ if failed > 0 => Status::Failed,
            _ if passed == 0 => Status::NotCovered,
            _ if deviates => Status::Deviates,
            _ => Status::Met,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(Observability::Wire, 2, 0, false, Status::Met)]
    #[case(Observability::Api, 1, 0, true, Status::Deviates)]
    #[case(Observability::Wire, 3, 1, false, Status::Failed)]
    #[case(Observability::Wire, 3, 1, true, Status::Failed)]
    #[case(Observability::Wire, 0, 0, false, Status::NotCovered)]
    #[case(Observability::Wire, 0, 0, true, Status::NotCovered)]
    #[case(Observability::NotObservable, 0, 0, false, Status::NotObservable)]
    #[case(Observability::NotApplicable, 0, 0, false, Status::NotApplicable)]
    fn a_runs_verdicts_make_a_requirements_status(
        #[case] observed: Observability,
        #[case] passed: usize,
        #[case] failed: usize,
        #[case] deviates: bool,
        #[case] status: Status,
    ) {
        assert_eq!(Status::of(observed, passed, failed, deviates), status);
    }

    fn ids(prefix: &str, last: u32) -> Vec<String> {
        (1..=last).map(|n| format!("{prefix}-{n}")).collect()
    }

    #[test]
    fn the_table_has_every_must_and_shld_of_appendix_b_in_order() {
        let rows: Vec<String> = table().into_iter().map(|r| r.id).collect();
        let mut expected = ids("MUST", 69);
        expected.extend(ids("SHLD", 31));
        assert_eq!(rows, expected);
    }

    #[test]
    fn every_row_has_a_section_a_keyword_and_a_reason() {
        for r in table() {
            assert!(r.section.starts_with("3."), "{}: section {}", r.id, r.section);
            let keywords: &[&str] = if r.id.starts_with("MUST") {
                &["MUST", "MUST NOT"]
            } else {
                &["SHOULD", "SHOULD NOT"]
            };
            assert!(keywords.contains(&r.keyword.as_str()), "{}: {}", r.id, r.keyword);
            assert!(!r.summary.is_empty() && !r.how.is_empty(), "{}", r.id);
        }
    }

    /// The counts the file states under the table are the table's.
    #[test]
    fn the_counts_in_the_file_match_the_table() {
        let rows = table();
        for (level, prefix) in [("MUST", "MUST-"), ("SHLD", "SHLD-")] {
            let of: Vec<&Requirement> = rows.iter().filter(|r| r.id.starts_with(prefix)).collect();
            let count = |o: Observability| of.iter().filter(|r| r.observed == o).count();
            let line = format!(
                "| {level} | {} | {} | {} | {} | {} |",
                count(Observability::Wire),
                count(Observability::Api),
                count(Observability::NotObservable),
                count(Observability::NotApplicable),
                of.len()
            );
            assert!(TABLE.lines().any(|l| l == line), "docs/RFC9293.md lacks `{line}`");
        }
    }

    #[rstest]
    #[case("MUST-13", None)]
    #[case("MUST-70", Some("`MUST-70` is not a requirement of docs/RFC9293.md"))]
    #[case("MAY-2", Some("(IDs look like MUST-13 or SHLD-4)"))]
    #[case("MUST-9", Some("`MUST-9` is not observable in docs/RFC9293.md"))]
    #[case("SHLD-13", Some("is not applicable"))]
    fn a_case_names_only_observable_requirements_of_the_table(#[case] id: &str, #[case] refused: Option<&str>) {
        let why = refusal(&table(), id);
        match refused {
            None => assert_eq!(why, None),
            Some(part) => assert!(why.as_deref().is_some_and(|w| w.contains(part)), "{why:?}"),
        }
    }

    #[rstest]
    #[case("MUST-1", true)]
    #[case("SHLD-31", true)]
    #[case("MUST-70", true)]
    #[case("MAY-1", false)]
    #[case("MUST-01", false)]
    #[case("MUST-", false)]
    #[case("must-1", false)]
    #[case("B07", false)]
    fn ids_look_like_must_or_shld_and_a_number(#[case] s: &str, #[case] ok: bool) {
        assert_eq!(is_id(s), ok);
    }
}
