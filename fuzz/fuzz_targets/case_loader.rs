//! The case loader on arbitrary bytes: it never panics or hangs, and every
//! problem it reports is one line at a real place of the file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Err(e) = tcpconform::case::load_bytes(Path::new("cases/fuzz/case.yaml"), bytes) else {
        return;
    };
    assert!(!e.diagnostics.is_empty(), "an error without a diagnostic");
    // Where the file is text, a location is on one of its lines, at most one past its end.
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let lines: Vec<&str> = text.split('\n').collect();
    for d in &e.diagnostics {
        assert!(!d.message.is_empty() && !d.message.contains('\n'), "{d:?}");
        let (line, col) = (d.location.line as usize, d.location.col as usize);
        assert!(line >= 1 && col >= 1, "{d}");
        assert!(line <= lines.len(), "{d}: the file has {} lines", lines.len());
        let width = lines[line - 1].trim_end_matches('\r').chars().count();
        assert!(col <= width + 1, "{d}: line {line} has {width} characters");
    }
});
