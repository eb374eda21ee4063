//! Reading a failure message back into its parts, so the HTML page can
//! highlight what differs: the engine writes a mismatch as a headline, an
//! `expected` and an `actual` line in the segment notation, one line per
//! differing field (`ack: expected 2, got 1`), and the frames around it
//! (docs/CASES.md shows one). This module finds those parts and, in a line
//! of notation, the characters that hold a given field.
//!
//! A message in another shape yields fewer parts, never an error: the page
//! then shows the message as it is.

use std::ops::Range;

use super::schema::Entry;

/// The parts of a failure message.
#[derive(Debug, Default, PartialEq)]
pub struct Failure<'a> {
    /// The first line.
    pub headline: &'a str,
    /// The segment (or value) the case expected and the one that came.
    pub expected: Option<&'a str>,
    /// See `expected`.
    pub actual: Option<&'a str>,
    /// The fields that differ, as the engine names them (`ack`, `TS val`, `options`).
    pub fields: Vec<&'a str>,
    /// The socket call the failure is about (the headline's `` `...` ``).
    pub call: Option<&'a str>,
    /// The socket or flow whose state is wrong.
    pub state_of: Option<&'a str>,
    /// Lines naming frames no step expected.
    pub unexpected: Vec<&'a str>,
    /// Lines listing the frames since the step before the failing one.
    pub recent: Vec<&'a str>,
}

/// Splits a failure message into its parts.
pub fn parse(message: &str) -> Failure<'_> {
    let mut lines = message.lines();
    let headline = lines.next().unwrap_or_default();
    let mut f = Failure {
        headline,
        ..Failure::default()
    };
    if let Some(start) = headline.find('`')
        && let Some(len) = headline[start + 1..].find('`')
    {
        f.call = Some(&headline[start + 1..start + 1 + len]);
    }
    if let Some(i) = headline.find(": state: ") {
        let rest = &headline[i + ": state: ".len()..];
        if rest.contains(", the case expects ") {
            f.state_of = rest.split(" is ").next();
        }
    }
    let mut in_recent = false;
    for line in lines {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("expected  ") {
            f.expected = Some(rest.trim());
        } else if let Some(rest) = t.strip_prefix("actual    ") {
            f.actual = Some(rest.trim());
        } else if let Some(rest) = t.strip_prefix("unexpected ") {
            f.unexpected.push(rest.trim());
        } else if t == "frames since the previous step:" {
            in_recent = true;
        } else if in_recent {
            f.recent.push(t);
        } else if let Some((field, rest)) = t.split_once(": expected ")
            && rest.contains(", got ")
        {
            f.fields.push(field);
        }
    }
    f
}

/// Whether a frame entry is the one a message line shows (`0.000021s < S ...  [c]`).
/// Times are compared to within 2 µs: the message and the report round separately.
pub fn shows(line: &str, entry: &Entry) -> bool {
    if entry.segment().is_none() {
        return false;
    }
    let printed = entry.to_string();
    let split = |s: &str| -> Option<(f64, String)> {
        let s = s.trim();
        let (time, rest) = s.split_once(' ')?;
        let secs: f64 = time.strip_suffix('s')?.parse().ok()?;
        Some((secs, rest.trim().to_string()))
    };
    match (split(line), split(&printed)) {
        (Some((a, x)), Some((b, y))) => x == y && (a - b).abs() <= 2e-6,
        _ => false,
    }
}

/// Where each field sits in a line of segment notation, for highlighting:
/// `(field, byte range)`, with the engine's field names (`flags`, `seq`,
/// `end`, `len`, `ack`, `win`, `urg`, `options`, `mss`, `wscale`, `TS val`,
/// `TS ecr`, `sack left`, `sack right`).
pub fn field_spans(text: &str) -> Vec<(&'static str, Range<usize>)> {
    let mut spans = Vec::new();
    let opts_start = text.find('<');
    let head_end = opts_start.unwrap_or(text.len());
    let mut head = tokens(&text[..head_end]).into_iter();
    if let Some(first) = head.next() {
        spans.push(("flags", first));
    }
    while let Some(tok) = head.next() {
        let word = &text[tok.clone()];
        match word {
            "ack" | "win" | "urg" => {
                if let Some(value) = head.next() {
                    let field = match word {
                        "ack" => "ack",
                        "win" => "win",
                        _ => "urg",
                    };
                    spans.push((field, value));
                }
            }
            w if w.contains(':') && w.contains('(') => {
                for field in ["seq", "end", "len"] {
                    spans.push((field, tok.clone()));
                }
            }
            _ => {}
        }
    }
    if let Some(start) = opts_start {
        let end = text[start..].find('>').map_or(text.len(), |e| start + e + 1);
        spans.push(("options", start..end));
        let mut offset = start + 1;
        for item in text[start + 1..end.saturating_sub(1).max(start + 1)].split(',') {
            let words: Vec<Range<usize>> = tokens(item)
                .into_iter()
                .map(|r| r.start + offset..r.end + offset)
                .collect();
            let word = |i: usize| words.get(i).map(|r| &text[r.clone()]);
            match word(0) {
                Some("mss") | Some("wscale") if words.len() == 2 => {
                    spans.push((if word(0) == Some("mss") { "mss" } else { "wscale" }, words[1].clone()))
                }
                Some("TS") if words.len() == 5 => {
                    spans.push(("TS val", words[2].clone()));
                    spans.push(("TS ecr", words[4].clone()));
                }
                Some("sack") => {
                    let whole = words[0].start..words.last().map_or(words[0].end, |w| w.end);
                    spans.push(("sack left", whole.clone()));
                    spans.push(("sack right", whole));
                }
                _ => {}
            }
            offset += item.len() + 1;
        }
    }
    spans
}

/// Byte ranges of the whitespace-separated words of `s`.
fn tokens(s: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(st)) => {
                out.push(st..i);
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(st) = start {
        out.push(st..s.len());
    }
    out
}

/// The ranges of `text` holding any of `fields`, merged and in order.
pub fn highlights(text: &str, fields: &[&str]) -> Vec<Range<usize>> {
    let mut ranges: Vec<Range<usize>> = field_spans(text)
        .into_iter()
        .filter(|(f, _)| fields.contains(f))
        .map(|(_, r)| r)
        .collect();
    // A whole-options highlight would hide the finer ones inside it; keep it only alone.
    if ranges.len() > 1 && fields.contains(&"options") && fields.len() > 1 {
        let opts = field_spans(text)
            .into_iter()
            .find(|(f, _)| *f == "options")
            .map(|(_, r)| r);
        ranges.retain(|r| Some(r) != opts.as_ref());
    }
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<usize>> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::schema::Way;

    const SEGMENT_MISMATCH: &str =
        "cases/opening/passive_handshake.yaml:16:13: expect: the kernel's segment differs from the case
    expected  S. 0:0(0) ack 2 win any <mss $mss,nop,nop,sackOK,nop,wscale any>
    actual    S. 0:0(0) ack 1 win 64240 <mss 1460,nop,nop,sackOK,nop,wscale 10>
    ack: expected 2, got 1
  frames since the previous step:
    0.000021s < S 0:0(0) win 65535 <mss 1460,sackOK,nop,wscale 7>  [c]
    0.000069s > S. 0:0(0) ack 1 win 64240 <mss 1460,nop,nop,sackOK,nop,wscale 10>  [c]";

    #[test]
    fn a_segment_mismatch_yields_both_segments_and_the_differing_field() {
        let f = parse(SEGMENT_MISMATCH);
        assert_eq!(
            f.headline,
            "cases/opening/passive_handshake.yaml:16:13: expect: the kernel's segment differs from the case"
        );
        assert_eq!(
            f.expected,
            Some("S. 0:0(0) ack 2 win any <mss $mss,nop,nop,sackOK,nop,wscale any>")
        );
        assert_eq!(
            f.actual,
            Some("S. 0:0(0) ack 1 win 64240 <mss 1460,nop,nop,sackOK,nop,wscale 10>")
        );
        assert_eq!(f.fields, ["ack"]);
        assert_eq!(f.recent.len(), 2);
        assert!(f.unexpected.is_empty());
    }

    #[test]
    fn calls_states_and_unexpected_frames_are_found() {
        let call = parse(
            "c.yaml:9:9: call: `close(conn)` did not do what the case says\n    result: expected 0, got -1 EBADF\n  no frame on the wire since the previous step",
        );
        assert_eq!(call.call, Some("close(conn)"));
        assert_eq!(call.fields, ["result"]);
        let state = parse(
            "c.yaml:9:9: state: flow c is gone, the case expects SYN_RECV\n  no frame on the wire since the previous step",
        );
        assert_eq!(state.state_of, Some("flow c"));
        let extra = parse(
            "c.yaml:9:9: the kernel sent 1 frame(s) that no step expects, from this step on:\n    unexpected   0.001000s > . 1:1(0) ack 2 win 502  [c]",
        );
        assert_eq!(extra.unexpected, ["0.001000s > . 1:1(0) ack 2 win 502  [c]"]);
    }

    #[test]
    fn a_message_line_shows_the_frame_entry_with_the_same_text_and_time() {
        let entry = Entry::Frame {
            at_ms: 1.0,
            direction: Way::FromKernel,
            flow: Some("c".into()),
            segment: ". 1:1(0) ack 2 win 502".into(),
            checksum_ok: true,
            length: 54,
        };
        assert!(shows("0.001000s > . 1:1(0) ack 2 win 502  [c]", &entry));
        assert!(shows("  0.001001s > . 1:1(0) ack 2 win 502  [c]", &entry));
        assert!(!shows("0.002000s > . 1:1(0) ack 2 win 502  [c]", &entry));
        assert!(!shows("0.001000s > . 1:1(0) ack 3 win 502  [c]", &entry));
    }

    #[test]
    fn fields_are_located_in_notation() {
        let text = "P. 1:6(5) ack 2 win 502 <nop,nop,TS val 77 ecr 1000,mss 1460>";
        let at = |field: &str| {
            field_spans(text)
                .into_iter()
                .find(|(f, _)| *f == field)
                .map(|(_, r)| &text[r])
        };
        assert_eq!(at("flags"), Some("P."));
        assert_eq!(at("len"), Some("1:6(5)"));
        assert_eq!(at("ack"), Some("2"));
        assert_eq!(at("win"), Some("502"));
        assert_eq!(at("TS val"), Some("77"));
        assert_eq!(at("TS ecr"), Some("1000"));
        assert_eq!(at("mss"), Some("1460"));
        assert_eq!(at("options"), Some("<nop,nop,TS val 77 ecr 1000,mss 1460>"));
        assert_eq!(at("urg"), None);
    }

    #[test]
    fn highlights_merge_and_prefer_the_finer_fields() {
        let text = "S. 0:0(0) ack 1 win 64240 <mss 1460,wscale 10>";
        let words: Vec<&str> = highlights(text, &["win", "ack"])
            .into_iter()
            .map(|r| &text[r])
            .collect();
        assert_eq!(words, ["1", "64240"]);
        let words: Vec<&str> = highlights(text, &["options", "mss"])
            .into_iter()
            .map(|r| &text[r])
            .collect();
        assert_eq!(words, ["1460"]);
        let words: Vec<&str> = highlights(text, &["options"]).into_iter().map(|r| &text[r]).collect();
        assert_eq!(words, ["<mss 1460,wscale 10>"]);
    }
}
