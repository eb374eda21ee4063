//! The packetdrill front end: a `.pkt` script is a case in a second syntax.
//!
//! The kernel's TCP selftests are packetdrill scripts. This module reads
//! them as they are ([`parser`] builds the [`ast`]) and lowers them into the
//! same [`Case`](crate::case::Case) model the YAML loader builds, so they run
//! on the same engine and land in the same reports. packetdrill's own
//! conventions (its sequence numbering, timing model and tolerance, fd
//! numbers, the socket under test) are decided here, in lowering; the
//! engine only sees steps.

pub mod ast;
pub mod command_line;
#[cfg(test)]
mod coverage;
pub mod invocation;
mod lexer;
pub mod lower;
pub mod parser;
pub mod symbols;

pub use self::parser::{Defines, parse};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use self::invocation::Invocation;
use self::lower::Header;
use crate::case::{Case, CaseError, Diagnostic, Location, default_id};
use crate::packet::Family;

/// The title and description a script's leading `//` comment gives (its
/// SPDX line left out): the first sentence is the title.
fn header_comment(text: &str) -> (Option<String>, Option<String>) {
    let mut lines = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(comment) = line.strip_prefix("//") {
            let comment = comment.trim();
            if !comment.starts_with("SPDX-License-Identifier") {
                lines.push(comment.to_string());
            }
        } else if !line.is_empty() || !lines.is_empty() {
            break;
        }
    }
    let description = lines.join("\n").trim().to_string();
    if description.is_empty() {
        return (None, None);
    }
    let flat = description.split_whitespace().collect::<Vec<_>>().join(" ");
    let title = match flat.find(". ") {
        Some(i) => flat[..=i].to_string(),
        None => flat.clone(),
    };
    (Some(title), Some(description))
}

/// Loads a script as the kernel's selftest runner runs it: once per family
/// (only the script's own `--ip_version`, when it gives one), with the
/// runner's settings ([`Invocation::kselftest`]).
pub fn load(path: &Path) -> Result<Vec<Case>, CaseError> {
    load_with(path, &Invocation::kselftest)
}

/// Loads a script with the settings `invocation` gives per family, as
/// [`load_str`] does.
pub fn load_with(path: &Path, invocation: &dyn Fn(Family) -> Invocation) -> Result<Vec<Case>, CaseError> {
    let file = Arc::new(path.to_path_buf());
    let bytes = crate::case::read_case_file(path)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() as u32 + 1;
        CaseError {
            diagnostics: vec![Diagnostic {
                location: Location {
                    file: file.clone(),
                    line,
                    col: 1,
                },
                message: "the script is not UTF-8".into(),
            }],
        }
    })?;
    load_str(&file, &text, invocation)
}

/// Loads a script's text with the settings `invocation` gives per family
/// (the command line's, which win over the script's own `--option` lines).
pub fn load_str(
    file: &Arc<PathBuf>,
    text: &str,
    invocation: &dyn Fn(Family) -> Invocation,
) -> Result<Vec<Case>, CaseError> {
    let (title, description) = header_comment(text);
    let id = default_id(file);
    let mut cases = Vec::new();
    for family in Family::ALL {
        let mut inv = invocation(family);
        let script = parse(file, text, &inv.defines)?;
        let mut pinned = false;
        for option in &script.options {
            if option.name == "define" {
                continue;
            }
            if option.name == "ip_version" {
                pinned = true;
            }
            inv.set(&option.name, option.value.as_deref(), false)
                .map_err(|message| CaseError {
                    diagnostics: vec![Diagnostic {
                        location: option.at.clone(),
                        message,
                    }],
                })?;
        }
        // A script that pins its family runs once, on that family.
        if inv.family != family {
            continue;
        }
        let family_reason = if pinned {
            format!("the script runs on {family} only (--ip_version)")
        } else {
            "packetdrill scripts run once per family, each with its own settings".to_string()
        };
        let header = Header {
            id: id.clone(),
            title: title.clone().unwrap_or_else(|| id.clone()),
            description: description.clone(),
            family_reason,
        };
        cases.push(lower::lower(&script, text, file, &inv, header)?);
    }
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Option<Vec<PathBuf>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora/linux-packetdrill");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "pkt"))
            .collect();
        files.sort();
        Some(files)
    }

    #[test]
    fn every_corpus_script_loads_into_cases() {
        let Some(files) = corpus() else {
            println!("skipped: no corpus");
            return;
        };
        let mut unsupported = Vec::new();
        let mut runs = 0;
        for file in &files {
            let cases = load(file).unwrap_or_else(|e| panic!("{e}"));
            assert!(!cases.is_empty(), "{}", file.display());
            for case in cases {
                runs += 1;
                if let Some(why) = case.unsupported {
                    unsupported.push(why);
                }
            }
        }
        for u in &unsupported {
            println!("unsupported: {u}");
        }
        println!("{runs} runs, {} unsupported", unsupported.len());
    }

    #[test]
    fn titles_come_from_the_leading_comment() {
        let (title, description) = header_comment(
            "// SPDX-License-Identifier: MIT\n//\n// A listener answers one SYN.\n// Then it reads.\n\n`x`\n",
        );
        assert_eq!(title.as_deref(), Some("A listener answers one SYN."));
        assert_eq!(
            description.as_deref(),
            Some("A listener answers one SYN.\nThen it reads.")
        );
        assert_eq!(default_id(Path::new("/x/cases/pkt/a.pkt")), "pkt/a");
        assert_eq!(
            default_id(Path::new("/corpus/tcp_basic_client.pkt")),
            "tcp_basic_client"
        );
    }
}
