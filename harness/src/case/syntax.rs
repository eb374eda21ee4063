//! The YAML layer of a case file, as messages a case author can act on.
//!
//! Before parsing: characters YAML refuses, and line breaks that would make
//! line numbers differ from an editor's, are reported at their exact place.
//! After a failed parse: serde-saphyr's error becomes a sentence about what
//! the file says (`` `steps` must be a list, not `5` ``). The key a value
//! belongs to is found by walking the document's YAML events to the error's
//! place, so the message names it whatever the style (block or flow).
//! Finally, [`position_in_scalar`] maps a byte of a scalar's value back to
//! its place in the file through quotes, escapes and folded lines, so that
//! errors inside segment and call notations point at the right column.

use std::borrow::Cow;
use std::collections::HashMap;

pub(super) use granit_parser::ScalarStyle;
use granit_parser::{Event, Parser};
use serde_saphyr::Error;
use serde_saphyr::budget::BudgetBreach;

use super::call::suggest;

/// One problem of the YAML layer, at a 1-based line and column (in characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Problem {
    /// Line, from 1.
    pub line: u32,
    /// Column in characters, from 1.
    pub col: u32,
    /// What is wrong, in one line.
    pub message: String,
}

/// The first character YAML refuses (a control character) or that would
/// shift line numbers (a carriage return not followed by a line feed, which
/// YAML takes as a line break and most editors do not).
pub(super) fn check_characters(text: &str) -> Option<Problem> {
    let mut line = 1;
    let mut col = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let problem = match c {
            '\n' => {
                line += 1;
                col = 1;
                continue;
            }
            '\r' if chars.peek() == Some(&'\n') => None,
            '\r' => Some("a carriage return ends this line without a line feed: use LF or CRLF line endings".into()),
            '\t' => None,
            '\u{feff}' if line == 1 && col == 1 => {
                // A byte order mark: YAML skips it and editors do not show it.
                continue;
            }
            c if c.is_control() && c != '\u{85}' || c == '\u{fffe}' || c == '\u{ffff}' => Some(format!(
                "the control character U+{:04X} cannot appear in a case file",
                u32::from(c)
            )),
            _ => None,
        };
        if let Some(message) = problem {
            return Some(Problem { line, col, message });
        }
        col += 1;
    }
    None
}

/// Whether the text holds no YAML content: only blank lines, comments and document markers.
pub(super) fn is_blank(text: &str) -> bool {
    text.trim_start_matches('\u{feff}').lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    })
}

/// A step in the path from the document's root to a node.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// What stands at a place of the document.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Found {
    Scalar(String),
    List,
    Mapping,
    Alias,
}

impl Found {
    /// An empty value (`key:`) or `~`.
    fn is_null(&self) -> bool {
        matches!(self, Found::Scalar(s) if s.is_empty() || s == "~")
    }

    fn describe(&self) -> String {
        match self {
            Found::Scalar(s) => {
                let short: String = s.chars().take(40).collect();
                let more = if short.len() < s.len() { "..." } else { "" };
                format!("`{}{more}`", short.escape_debug())
            }
            Found::List => "a list".into(),
            Found::Mapping => "a mapping".into(),
            Found::Alias => "an alias".into(),
        }
    }
}

/// The node that starts at a place of the document: its path from the root and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Node {
    path: Vec<Segment>,
    found: Found,
}

impl Node {
    /// How a message names the value: `` `title` ``, `step 3`, `flow `c``, `item 2 of `covers``.
    fn subject(&self) -> String {
        match self.path.as_slice() {
            [] => "a case file".into(),
            [Segment::Key(k), Segment::Index(i)] if k == "steps" => format!("step {}", i + 1),
            [Segment::Key(f), Segment::Key(k)] if f == "flows" => format!("flow `{k}`"),
            [.., Segment::Key(k)] => format!("`{k}`"),
            [.., Segment::Key(k), Segment::Index(i)] => format!("item {} of `{k}`", i + 1),
            [.., Segment::Index(i)] => format!("item {}", i + 1),
        }
    }

    /// What a mapping at this place looks like, for the message that says one is needed.
    fn mapping_example(&self) -> &'static str {
        match self.path.as_slice() {
            [] => " of keys such as `title:` and `steps:`",
            [Segment::Key(k), Segment::Index(_)] if k == "steps" => " such as `wait: 1s`",
            [Segment::Key(f), Segment::Key(_)] if f == "flows" => " such as `{ peer_port: 40000 }`",
            _ => "",
        }
    }
}

/// One open collection while walking the events.
struct Frame {
    /// Where the collection sits in its parent.
    segment: Option<Segment>,
    /// Mappings: the key whose value comes next (`None` while a key is expected).
    key: Option<String>,
    /// Sequences: the index of the next item.
    next: usize,
    is_mapping: bool,
    /// Whether the collection is itself a mapping key (`? [a, b]: c`).
    is_key: bool,
}

/// The nodes that start at `line`:`col` (1-based), outermost first, found
/// by walking the YAML events; for a key that starts there, its value.
fn nodes_at(text: &str, line: u64, col: u64) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut key_hit = false;
    // What each anchor names, so that an alias is described by its value.
    let mut anchors: HashMap<usize, Found> = HashMap::new();
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else { break };
        let at = (span.start.line() as u64, span.start.col() as u64 + 1);
        let found = match &event {
            Event::Scalar(value, ..) => Found::Scalar(value.to_string()),
            Event::SequenceStart(..) => Found::List,
            Event::MappingStart(..) => Found::Mapping,
            Event::Alias(id) => anchors.get(id).cloned().unwrap_or(Found::Alias),
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = stack.pop() else { break };
                if let Some(parent) = stack.last_mut().filter(|p| p.is_mapping) {
                    parent.key = frame.is_key.then(|| "?".to_string());
                }
                continue;
            }
            _ => continue,
        };
        if let Event::Scalar(_, _, id, _) | Event::SequenceStart(_, id, _) | Event::MappingStart(_, id, _) = &event
            && *id != 0
        {
            anchors.insert(*id, found.clone());
        }
        if at > (line, col) && !key_hit {
            break;
        }
        let (segment, is_key) = match stack.last_mut() {
            None => (None, false),
            Some(f) if f.is_mapping => match f.key.take() {
                Some(k) => (Some(Segment::Key(k)), false),
                None => (None, true),
            },
            Some(f) => {
                f.next += 1;
                (Some(Segment::Index(f.next - 1)), false)
            }
        };
        if at == (line, col) && !is_key || key_hit {
            let mut path: Vec<Segment> = stack.iter().filter_map(|f| f.segment.clone()).collect();
            path.extend(segment.clone());
            nodes.push(Node { path, found });
        }
        key_hit = at == (line, col) && is_key;
        match (&event, stack.last_mut()) {
            (Event::SequenceStart(..) | Event::MappingStart(..), _) => stack.push(Frame {
                segment,
                key: None,
                next: 0,
                is_mapping: matches!(event, Event::MappingStart(..)),
                is_key,
            }),
            (Event::Scalar(value, ..), Some(parent)) if is_key => parent.key = Some(value.to_string()),
            (Event::Alias(_), Some(parent)) if is_key => parent.key = Some("*".into()),
            _ => {}
        }
    }
    nodes
}

/// serde-saphyr's error as a problem at its place in `text`.
pub(super) fn problem(err: &Error, text: &str) -> Problem {
    let (line, col) = err.location().map_or((1, 1), |l| (l.line().max(1), l.column().max(1)));
    let (inner, anchor) = unwrap(err);
    let nodes = nodes_at(text, line, col);
    let mut message = message(inner, &nodes);
    if let Some((aline, acol)) = anchor {
        message.push_str(&format!(
            " (the value of this alias, anchored at line {aline}, column {acol})"
        ));
    }
    Problem {
        line: line as u32,
        col: col as u32,
        message,
    }
}

/// The error that says what is wrong, and the place of the anchor when it came through an alias.
fn unwrap(err: &Error) -> (&Error, Option<(u64, u64)>) {
    match err {
        Error::WithSnippet { error, .. } => unwrap(error),
        Error::AliasError { error, locations, .. } => {
            let (inner, _) = unwrap(error);
            let d = locations.defined_location;
            (inner, Some((d.line(), d.column())))
        }
        other => (other, None),
    }
}

/// `` `subject` must be {expected}, not {found} ``, as far as the place is known.
fn must_be(node: Option<&Node>, expected: &str) -> String {
    match node {
        Some(n) if n.found.is_null() && !n.path.is_empty() => {
            format!("{} has no value: it must be {expected}", n.subject())
        }
        Some(n) => format!("{} must be {expected}, not {}", n.subject(), n.found.describe()),
        None => format!("expected {expected}"),
    }
}

fn no_value(node: Option<&Node>) -> String {
    match node {
        Some(n) if !n.path.is_empty() => format!("{} has no value", n.subject()),
        _ => "a value is missing here".into(),
    }
}

/// Serde's description of a type (`a scalar (a number or a string)`, `u16`) in the case's terms.
fn expected_phrase(expected: &str) -> Cow<'_, str> {
    match expected {
        "a scalar (a number or a string)" => "a number or a string".into(),
        "a boolean" | "boolean" | "bool" => "`true` or `false`".into(),
        "a string" | "string" => "a string".into(),
        "a mapping" | "map" => "a mapping".into(),
        "a sequence" | "sequence" => "a list".into(),
        other => other.into(),
    }
}

fn integer_range(ty: &str) -> Option<&'static str> {
    Some(match ty {
        "u8" => "an integer in 0..=255",
        "u16" => "an integer in 0..=65535",
        "u32" => "an integer in 0..=4294967295",
        "u64" | "usize" => "a non-negative integer",
        "i32" | "i64" => "an integer",
        _ => return None,
    })
}

fn message(err: &Error, nodes: &[Node]) -> String {
    // Where a mapping and its first key start at the same place, a missing
    // value is the key's; any other error is about the outermost node.
    let node = nodes.first();
    let null = nodes.iter().find(|n| n.found.is_null()).or(node);
    match err {
        Error::Unexpected { expected, .. } => match *expected {
            "mapping start" => {
                let example = node.map_or("", Node::mapping_example);
                must_be(node, &format!("a mapping{example}"))
            }
            "sequence start" => must_be(node, "a list"),
            "string scalar" | "str expected" | "scalar" | "missing string" => must_be(node, "a string"),
            other => must_be(node, other),
        },
        Error::NullIntoString { .. } => no_value(null),
        Error::SerdeInvalidType { unexpected, .. } if unexpected == "null" || unexpected == "unit value" => {
            no_value(null)
        }
        Error::SerdeInvalidType { expected, .. } | Error::SerdeInvalidValue { expected, .. } => {
            must_be(node, &expected_phrase(expected))
        }
        Error::InvalidBooleanStrict { .. } => match null {
            Some(n) if n.found.is_null() => no_value(null),
            _ => must_be(node, "`true` or `false`"),
        },
        Error::InvalidScalar { ty, .. } => match integer_range(ty) {
            Some(range) => must_be(node, range),
            None => must_be(node, &expected_phrase(ty)),
        },
        Error::TaggedScalarCannotDeserializeIntoString { .. } => match node {
            Some(n) => format!(
                "{} must be a string: remove the YAML tag (`!!...`) before it",
                n.subject()
            ),
            None => "expected a string: remove the YAML tag (`!!...`) before it".into(),
        },
        Error::SerdeUnknownField { field, expected, .. } => {
            let hint = suggest(field, expected.iter());
            if hint.is_empty() {
                format!("unknown key `{field}`; expected one of: {}", expected.join(", "))
            } else {
                format!("unknown key `{field}`{hint}")
            }
        }
        Error::SerdeMissingField { field, .. } => format!("missing key `{field}`"),
        Error::DuplicateMappingKey { key: Some(k), .. } => format!("`{k}` is given twice"),
        Error::DuplicateMappingKey { key: None, .. } => "a key is given twice".into(),
        Error::MultipleDocuments { .. } => {
            "a second YAML document starts here; a case file holds one (remove the `---` line)".into()
        }
        Error::UnknownAnchor { .. } => "this alias (`*name`) refers to no anchor (`&name`) defined before it".into(),
        Error::Eof { .. } => "the file ends in the middle of a value".into(),
        Error::Budget { breach, .. } => budget_message(breach),
        Error::AliasReplayCounterOverflow { .. }
        | Error::AliasReplayLimitExceeded { .. }
        | Error::AliasExpansionLimitExceeded { .. }
        | Error::AliasReplayStackDepthExceeded { .. } => {
            "the aliases (`*name`) of this file expand to too much; write the values out".into()
        }
        Error::ExternalMessage { msg, .. } if msg.starts_with("tabs disallowed") => {
            "a tab indents this line: YAML indents with spaces only".into()
        }
        Error::ExternalMessage { msg, .. } if msg == "mapping values are not allowed in this context" => {
            "unexpected `:` here: check this line's indentation, or quote a value that holds `: `".into()
        }
        Error::ExternalMessage { msg, .. } if msg == "invalid indentation in multiline quoted scalar" => {
            "a quoted value goes on to this line: is a quote left open, or is this line not indented?".into()
        }
        Error::ExternalMessage { msg, .. } if msg == "recursion limit exceeded" => {
            "the document nests too deeply here".into()
        }
        other => {
            let text = other.render_with_formatter(&serde_saphyr::UserMessageFormatter);
            let text = text.rfind(" at line ").map_or(text.as_str(), |i| &text[..i]);
            text.lines().next().unwrap_or("invalid YAML").to_string()
        }
    }
}

fn budget_message(breach: &BudgetBreach) -> String {
    match breach {
        BudgetBreach::Depth { .. } => {
            format!("the document nests deeper than {} levels", super::load::MAX_DEPTH)
        }
        BudgetBreach::Aliases { .. } => format!(
            "the file uses more than {} aliases (`*name`); write the values out",
            super::load::MAX_ALIASES
        ),
        BudgetBreach::ScalarBytes { .. } => format!(
            "the file's text, with its aliases (`*name`) expanded, exceeds {} bytes",
            super::load::MAX_SCALAR_BYTES
        ),
        _ => "the document is too large or too complex for a case file".into(),
    }
}

/// The style and end (byte offset) of every scalar of the document, by the byte offset where it starts.
pub(super) fn scalars(text: &str) -> HashMap<usize, (ScalarStyle, usize)> {
    Parser::new_from_str(text)
        .map_while(Result::ok)
        .filter_map(|(event, span)| match event {
            Event::Scalar(_, style, ..) => Some((span.start.byte_offset()?, (style, span.end.byte_offset()?))),
            _ => None,
        })
        .collect()
}

/// The place (line, column, 1-based) in the file of byte `offset` of a
/// scalar's value, given the scalar's style and start (`start_line`,
/// `start_col`, `start_byte`) as the YAML parser reports them: the opening
/// quote of a quoted scalar, the first character of the others.
///
/// The source is walked along the value: escapes (`\x41`, `''`) stand for
/// the character they make, line breaks for the spaces they fold into, and
/// indentation is skipped. Returns `None` when the source cannot be followed.
pub(super) fn position_in_scalar(
    text: &str,
    style: ScalarStyle,
    (start_line, start_col, start_byte): (u32, u32, usize),
    value: &str,
    offset: usize,
) -> Option<(u32, u32)> {
    let src = text.get(start_byte..)?;
    let mut s = match style {
        ScalarStyle::DoubleQuoted | ScalarStyle::SingleQuoted => 1,
        _ => 0,
    };
    let chars: Vec<char> = value.chars().collect();
    let target = value.get(..offset)?.chars().count();
    let mut found = s;
    for (i, &v) in chars.iter().enumerate().take(target + 1) {
        loop {
            let c = src[s..].chars().next()?;
            let rest = &src[s + c.len_utf8()..];
            if style == ScalarStyle::DoubleQuoted && c == '\\' {
                let e = rest.chars().next()?;
                if e == '\n' || e == '\r' {
                    // An escaped line break makes nothing.
                    s += 1 + e.len_utf8();
                    continue;
                }
                let len = match e {
                    'x' => 4,
                    'u' => 6,
                    'U' => 10,
                    _ => 1 + e.len_utf8(),
                };
                found = s;
                s = (s + len).min(src.len());
                break;
            }
            if style == ScalarStyle::SingleQuoted && c == '\'' && rest.starts_with('\'') {
                found = s;
                s += 2;
                break;
            }
            let quoted_end = match style {
                ScalarStyle::DoubleQuoted => c == '"',
                ScalarStyle::SingleQuoted => c == '\'',
                _ => false,
            };
            if quoted_end {
                return None;
            }
            if c == v || (v == ' ' || v == '\n') && c == '\n' {
                found = s;
                s += c.len_utf8();
                break;
            }
            s += c.len_utf8();
        }
        if i == target {
            break;
        }
    }
    // The end of the value is just past its last character.
    if target == chars.len() {
        found = s;
    }
    let walked = &src[..found];
    let newlines = walked.matches('\n').count() as u32;
    Some(match walked.rfind('\n') {
        Some(nl) => (start_line + newlines, walked[nl + 1..].chars().count() as u32 + 1),
        None => (start_line, start_col + walked.chars().count() as u32),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::nul("title: x\0\n", 1, 9, "U+0000")]
    #[case::other_line("a: b\nc: d\u{11}e\n", 2, 5, "U+0011")]
    #[case::del("a: \u{7f}\n", 1, 4, "U+007F")]
    #[case::c1("a: \u{9b}\n", 1, 4, "U+009B")]
    #[case::lone_cr("a: b\rc: d\r", 1, 5, "carriage return")]
    #[case::after_unicode("é: ü\u{1}", 1, 5, "U+0001")]
    fn refused_characters_are_located(#[case] text: &str, #[case] line: u32, #[case] col: u32, #[case] what: &str) {
        let p = check_characters(text).unwrap();
        assert_eq!((p.line, p.col), (line, col), "{p:?}");
        assert!(p.message.contains(what), "{p:?}");
    }

    #[rstest]
    #[case::crlf("a: b\r\nc: d\r\n")]
    #[case::tab("a:\tb\n")]
    #[case::bom("\u{feff}a: b\n")]
    #[case::nel("a: b\u{85}c\n")]
    fn allowed_characters_pass(#[case] text: &str) {
        assert_eq!(check_characters(text), None);
    }

    #[test]
    fn blank_files_are_recognised() {
        assert!(is_blank(""));
        assert!(is_blank("\u{feff}# a comment\n\n---\n...\n"));
        assert!(!is_blank("~\n"));
    }

    #[rstest]
    #[case::top("- a\n", 1, 1, &[], Found::List)]
    #[case::block_value("title: x\nsteps: 5\n", 2, 8, &["steps"], Found::Scalar("5".into()))]
    #[case::flow_value("{title: x, steps: {a: 1}}\n", 1, 19, &["steps"], Found::Mapping)]
    #[case::item("steps:\n  - wait\n  - [x]\n", 3, 5, &["steps", "#1"], Found::List)]
    #[case::nested("flows:\n  c: { peer_port: x }\n", 2, 19, &["flows", "c", "peer_port"], Found::Scalar("x".into()))]
    #[case::after_complex_key("? [a]\n: b\nc: d\n", 3, 4, &["c"], Found::Scalar("d".into()))]
    #[case::alias("a: &x [1]\nb: *x\n", 2, 4, &["b"], Found::List)]
    #[case::mapping_and_key("s:\n  - wait:\n", 2, 5, &["s", "#0", "wait"], Found::Scalar("~".into()))]
    #[case::at_a_key("s: [ { wait } ]\n", 1, 8, &["s", "#0", "wait"], Found::Scalar("~".into()))]
    fn nodes_are_found_by_their_place(
        #[case] text: &str,
        #[case] line: u64,
        #[case] col: u64,
        #[case] path: &[&str],
        #[case] found: Found,
    ) {
        let path: Vec<Segment> = path
            .iter()
            .map(|p| match p.strip_prefix('#') {
                Some(i) => Segment::Index(i.parse().unwrap()),
                None => Segment::Key(p.to_string()),
            })
            .collect();
        assert_eq!(nodes_at(text, line, col).last(), Some(&Node { path, found }));
    }

    #[test]
    fn no_node_starts_between_tokens() {
        assert_eq!(nodes_at("title: x\n", 1, 3), vec![]);
        assert_eq!(nodes_at("a: b\n  c: [\n", 2, 6), vec![]);
    }

    /// The place of the `x` of `ack x` in the file, for the value of `e:` in `text`.
    fn place(text: &str, value: &str) -> (u32, u32) {
        let (&start_byte, &(style, _)) = scalars(text).iter().max_by_key(|(b, _)| **b).unwrap();
        let line = text[..start_byte].matches('\n').count() as u32 + 1;
        let col = text[..start_byte].rsplit('\n').next().unwrap().chars().count() as u32 + 1;
        position_in_scalar(text, style, (line, col, start_byte), value, value.find('x').unwrap()).unwrap()
    }

    #[rstest]
    #[case::plain("- e: S. ack x\n", "S. ack x", (1, 13))]
    #[case::plain_two_lines("- e: S.\n    ack x\n", "S. ack x", (2, 9))]
    #[case::double_quoted("- e: \"S. ack x\"\n", "S. ack x", (1, 14))]
    #[case::double_quoted_escape("- e: \"S.\\tack x\"\n", "S.\tack x", (1, 15))]
    #[case::double_quoted_hex("- e: \"S.\\x20ack x\"\n", "S. ack x", (1, 17))]
    #[case::double_quoted_two_lines("- e: \"S.\n    ack x\"\n", "S. ack x", (2, 9))]
    #[case::double_quoted_escaped_break("- e: \"S. a\\\n    ck x\"\n", "S. ack x", (2, 8))]
    #[case::single_quoted("- e: 'S. ''ack'' x'\n", "S. 'ack' x", (1, 18))]
    #[case::literal("- e: |\n    S. ack x\n", "S. ack x\n", (2, 12))]
    #[case::folded("- e: >-\n    S.\n    ack x\n", "S. ack x", (3, 9))]
    #[case::literal_starting_with_a_quote("- e: |\n    \"ack x\"\n", "\"ack x\"\n", (2, 10))]
    #[case::crlf("- e: S.\r\n    ack x\r\n", "S. ack x", (2, 9))]
    #[case::unicode("- e: é ack x\n", "é ack x", (1, 12))]
    fn value_offsets_map_to_their_place_in_the_file(#[case] text: &str, #[case] value: &str, #[case] at: (u32, u32)) {
        assert_eq!(place(text, value), at);
    }

    #[test]
    fn the_end_of_a_value_is_just_past_its_last_character() {
        let text = "- e: \"S. ack\"\n";
        let dq = ScalarStyle::DoubleQuoted;
        assert_eq!(position_in_scalar(text, dq, (1, 6, 5), "S. ack", 6), Some((1, 13)));
        assert_eq!(position_in_scalar(text, dq, (1, 6, 5), "S. ack", 0), Some((1, 7)));
    }
}
