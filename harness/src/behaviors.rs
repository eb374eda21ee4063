//! The behaviour catalogue (`docs/BEHAVIORS.md`, rows B01 to B42), built
//! into the binary so cases can be checked against it and reports can map
//! results back to it.

/// One row of the catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Behavior {
    /// `B01` ...
    pub id: String,
    /// The section it belongs to (`Opening`, `Closing`, ...).
    pub section: String,
    /// The behaviour as the catalogue states it.
    pub text: String,
}

const CATALOGUE: &str = include_str!("../../docs/BEHAVIORS.md");

/// Every row of the catalogue, in order.
pub fn catalogue() -> Vec<Behavior> {
    let mut section = String::new();
    let mut rows = Vec::new();
    for line in CATALOGUE.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            section = title.trim().to_string();
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() > 3 && is_id(cells[1]) {
            rows.push(Behavior {
                id: cells[1].to_string(),
                section: section.clone(),
                text: cells[2].to_string(),
            });
        }
    }
    rows
}

/// Whether `s` looks like a catalogue ID (`B` and two digits).
pub fn is_id(s: &str) -> bool {
    s.len() == 3 && s.starts_with('B') && s[1..].chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_b01_to_b42_in_order() {
        let ids: Vec<String> = catalogue().into_iter().map(|b| b.id).collect();
        let expected: Vec<String> = (1..=42).map(|n| format!("B{n:02}")).collect();
        assert_eq!(ids, expected);
        assert_eq!(catalogue()[16].section, "Closing");
    }
}
