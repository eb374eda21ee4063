//! The packetdrill parser on arbitrary text: it never panics, and every
//! problem it reports is one line at a real place of the script.
#![no_main]

use std::path::PathBuf;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use tcpconform::packetdrill::{Defines, parse};

fuzz_target!(|text: &str| {
    let file = Arc::new(PathBuf::from("fuzz.pkt"));
    // A word, a string and a command define, the last two malformed.
    let defines: Defines = [("COOKIE", "abcd1234"), ("STR", "\"a\\q"), ("CMD", "`true")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let Err(e) = parse(&file, text, &defines) else {
        return;
    };
    assert!(!e.diagnostics.is_empty(), "an error without a diagnostic");
    // A location is on one of the lines, at most one past its end; a
    // leading byte order mark takes no column.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split('\n').collect();
    for d in &e.diagnostics {
        assert!(!d.message.is_empty() && !d.message.contains('\n'), "{d:?}");
        let (line, col) = (d.location.line as usize, d.location.col as usize);
        assert!(line >= 1 && col >= 1, "{d}");
        assert!(line <= lines.len(), "{d}: the script has {} lines", lines.len());
        let width = lines[line - 1].chars().count();
        assert!(col <= width + 1, "{d}: line {line} has {width} characters");
    }
});
