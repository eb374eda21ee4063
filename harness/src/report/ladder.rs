//! The sequence (ladder) diagram of a case's exchange, as inline SVG: the
//! harness's lifeline on the left, the kernel's on the right, one arrow per
//! frame labelled in the case's notation with its time, and the socket
//! calls, states, sysctl and accept-queue reads marked on the kernel's
//! side, where they happen. Rows follow the order of events, not a time
//! scale; a pause longer than [`PAUSE_MS`] gets a row of its own saying how
//! long it was. Frames a failure is about are drawn in red, with what the
//! case expected under the frame that came.

use std::fmt::Write as _;

use super::html::escape;
use super::mismatch;
use super::schema::{CaseReport, Entry, Way};

/// A gap between two events longer than this gets a row saying how long it was.
pub const PAUSE_MS: f64 = 50.0;

/// Width of one character of the diagram's monospace font, in pixels (12 px DejaVu Sans Mono).
const CHAR: f64 = 7.3;
const TIME_X: f64 = 84.0;
const HARNESS_X: f64 = 100.0;
const TOP: f64 = 58.0;
const FRAME_ROW: f64 = 34.0;
const NOTE_ROW: f64 = 26.0;
const PAUSE_ROW: f64 = 20.0;
const EXPECTED_ROW: f64 = 18.0;

/// What a failure says about one entry of the exchange.
#[derive(Clone, Debug, PartialEq)]
pub enum Mark {
    /// Nothing.
    Plain,
    /// The frame the failing step compared; the case expected `expected`,
    /// and `fields` differ.
    Mismatch {
        /// The expected segment, in notation.
        expected: String,
        /// The fields that differ, as the engine names them.
        fields: Vec<String>,
    },
    /// A frame no step expected.
    Unexpected,
    /// The call or state read the failure is about.
    Failed,
}

/// The marks a case's failure message puts on its exchange, one per entry.
pub fn marks(case: &CaseReport) -> Vec<Mark> {
    let mut marks = vec![Mark::Plain; case.exchange.len()];
    let Some(reason) = case.reason.as_deref() else {
        return marks;
    };
    let f = mismatch::parse(reason);
    for line in &f.unexpected {
        if let Some(i) = case.exchange.iter().position(|e| mismatch::shows(line, e)) {
            marks[i] = Mark::Unexpected;
        }
    }
    if let (Some(expected), Some(actual)) = (f.expected, f.actual) {
        // The frame that came is among those since the previous step, with the actual text.
        let found = f.recent.iter().find_map(|line| {
            case.exchange
                .iter()
                .position(|e| e.segment() == Some(actual) && mismatch::shows(line, e))
        });
        if let Some(i) = found {
            marks[i] = Mark::Mismatch {
                expected: expected.to_string(),
                fields: f.fields.iter().map(|s| s.to_string()).collect(),
            };
        }
    }
    let failed = case.exchange.iter().rposition(|e| match e {
        Entry::Call { call, .. } => f.call == Some(call.as_str()),
        Entry::State { target, .. } => f.state_of == Some(target.as_str()),
        Entry::Frame { .. } | Entry::Sysctl { .. } | Entry::Command { .. } | Entry::AcceptQueue { .. } => false,
    });
    if let Some(i) = failed {
        marks[i] = Mark::Failed;
    }
    marks
}

/// The addresses of the harness and the kernel on a family's lab link.
fn addresses(family: &str) -> (&'static str, &'static str) {
    match family {
        "ipv6" => ("2001:db8::2", "2001:db8::1"),
        _ => ("192.0.2.2", "192.0.2.1"),
    }
}

fn seconds(ms: f64) -> String {
    format!("{:.6}s", ms / 1e3)
}

/// A pause as people say it: `250 ms`, `1.5 s`.
fn pause(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.3} s", ms / 1e3)
    }
}

/// The text shown for a frame: the segment, with the flow when the case has several.
fn frame_label(flow: &Option<String>, segment: &str, checksum_ok: bool, many_flows: bool) -> String {
    let mut s = match flow {
        Some(f) if many_flows => format!("[{f}] {segment}"),
        Some(_) => segment.to_string(),
        None => format!("(no flow) {segment}"),
    };
    if !checksum_ok {
        s.push_str(" (bad checksum)");
    }
    s
}

/// The kind and text of the note shown on the kernel's side for an entry that is not a frame.
fn note(e: &Entry) -> Option<(&'static str, String)> {
    match e {
        Entry::Frame { .. } => None,
        Entry::Call {
            at_ms,
            returned_ms,
            call,
            result,
            sigpipe,
        } => {
            let mut s = format!("{call} → {result}");
            if *sigpipe {
                s.push_str(" SIGPIPE");
            }
            if returned_ms - at_ms >= 1.0 {
                let _ = write!(s, " (returned at {})", seconds(*returned_ms));
            }
            Some(("call", s))
        }
        Entry::State { target, state, .. } => Some(("state", format!("{target}: {state}"))),
        Entry::Sysctl { name, value, .. } => {
            Some(("sysctl", format!("{name} = {}", value.as_deref().unwrap_or("(absent)"))))
        }
        Entry::Command { command, status, .. } => {
            Some(("command", format!("`{}` {status}", crate::event::one_line(command))))
        }
        Entry::AcceptQueue { socket, len, limit, .. } => {
            Some(("queue", format!("accept queue of {socket}: {len} of {limit}")))
        }
    }
}

/// `text` as SVG text content, with the byte ranges `hl` in highlighted `<tspan>`s.
fn highlighted(text: &str, hl: &[std::ops::Range<usize>]) -> String {
    let mut out = String::new();
    let mut at = 0;
    for r in hl {
        if r.start < at || r.end > text.len() {
            continue;
        }
        out.push_str(&escape(&text[at..r.start]));
        let _ = write!(out, "<tspan class=\"hl\">{}</tspan>", escape(&text[r.clone()]));
        at = r.end;
    }
    out.push_str(&escape(&text[at..]));
    out
}

/// The diagram of `case`'s exchange, with `marks` from [`marks`].
pub fn render(case: &CaseReport, marks: &[Mark]) -> String {
    let flows: std::collections::BTreeSet<&str> = case
        .exchange
        .iter()
        .filter_map(|e| match e {
            Entry::Frame { flow, .. } => flow.as_deref(),
            Entry::Call { .. }
            | Entry::State { .. }
            | Entry::Sysctl { .. }
            | Entry::Command { .. }
            | Entry::AcceptQueue { .. } => None,
        })
        .collect();
    let many_flows = flows.len() > 1;
    let label_chars = case
        .exchange
        .iter()
        .zip(marks)
        .map(|(e, m)| match (e, m) {
            (
                Entry::Frame {
                    flow,
                    segment,
                    checksum_ok,
                    ..
                },
                mark,
            ) => {
                let label = frame_label(flow, segment, *checksum_ok, many_flows).chars().count();
                match mark {
                    Mark::Mismatch { expected, .. } => label.max(expected.chars().count() + 10),
                    Mark::Unexpected => label + 13,
                    Mark::Plain | Mark::Failed => label,
                }
            }
            (
                Entry::Call { .. }
                | Entry::State { .. }
                | Entry::Sysctl { .. }
                | Entry::Command { .. }
                | Entry::AcceptQueue { .. },
                _,
            ) => 0,
        })
        .max()
        .unwrap_or(0);
    let span = (label_chars as f64 * CHAR + 48.0).clamp(320.0, 1000.0);
    let kernel_x = HARNESS_X + span;
    let note_chars = case
        .exchange
        .iter()
        .filter_map(note)
        .map(|(_, n)| n.chars().count())
        .max()
        .unwrap_or(0);
    let (harness_addr, kernel_addr) = addresses(&case.family);
    let header_chars = format!("kernel {kernel_addr}").len();
    let width = kernel_x + 24.0 + (note_chars.max(header_chars / 2) as f64 * CHAR) + 16.0;

    let mut body = String::new();
    let mut y = TOP;
    let mut previous: Option<f64> = None;
    for (e, mark) in case.exchange.iter().zip(marks) {
        let at = e.at_ms();
        if let Some(p) = previous
            && at - p > PAUSE_MS
        {
            let _ = write!(
                body,
                r#"<text class="pause" x="{TIME_X}" y="{:.1}" text-anchor="end">⋮ {}</text>"#,
                y + 12.0,
                escape(&pause(at - p))
            );
            y += PAUSE_ROW;
        }
        previous = Some(at);
        match e {
            Entry::Frame {
                direction,
                flow,
                segment,
                checksum_ok,
                length,
                ..
            } => {
                let label = frame_label(flow, segment, *checksum_ok, many_flows);
                let line_y = y + 20.0;
                let (from, to, way) = match direction {
                    Way::ToKernel => (HARNESS_X, kernel_x, "to-kernel"),
                    Way::FromKernel => (kernel_x, HARNESS_X, "from-kernel"),
                };
                let mut class = format!("frame {way}");
                if flow.is_none() {
                    class.push_str(" noflow");
                }
                let unjudged = case.judged_until_ms.is_some_and(|end| at > end);
                if unjudged {
                    class.push_str(" after");
                }
                if !checksum_ok {
                    class.push_str(" badsum");
                }
                let (prefix, hl) = match mark {
                    Mark::Mismatch { fields, .. } => {
                        class.push_str(" wrong");
                        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
                        let offset = label.find(segment.as_str()).unwrap_or(0);
                        let hl = mismatch::highlights(segment, &fields)
                            .into_iter()
                            .map(|r| r.start + offset..r.end + offset)
                            .collect();
                        ("", hl)
                    }
                    Mark::Unexpected => {
                        class.push_str(" wrong");
                        ("unexpected: ", Vec::new())
                    }
                    Mark::Plain | Mark::Failed => ("", Vec::new()),
                };
                let dir = if to > from { -1.0 } else { 1.0 };
                let _ = write!(
                    body,
                    concat!(
                        r#"<g class="{class}"><title>{title}</title>"#,
                        r#"<text class="time" x="{tx}" y="{ly:.1}" text-anchor="end">{time}</text>"#,
                        r#"<line x1="{from}" y1="{ly:.1}" x2="{to}" y2="{ly:.1}"/>"#,
                        r#"<polygon points="{to},{ly:.1} {hx:.1},{ha:.1} {hx:.1},{hb:.1}"/>"#,
                        r#"<text class="label" x="{mid:.1}" y="{ty:.1}" text-anchor="middle">{prefix}{text}</text></g>"#
                    ),
                    class = class,
                    title = escape(&format!(
                        "{} {} {label} ({length} bytes){}",
                        seconds(at),
                        direction.arrow(),
                        if unjudged {
                            ", after the last step: recorded, not judged"
                        } else {
                            ""
                        }
                    )),
                    tx = TIME_X,
                    time = seconds(at),
                    from = from,
                    to = to,
                    ly = line_y,
                    hx = to + dir * 9.0,
                    ha = line_y - 4.5,
                    hb = line_y + 4.5,
                    mid = (HARNESS_X + kernel_x) / 2.0,
                    ty = line_y - 6.0,
                    prefix = prefix,
                    text = highlighted(&label, &hl),
                );
                y += FRAME_ROW;
                if let Mark::Mismatch { expected, fields } = mark {
                    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
                    let hl = mismatch::highlights(expected, &fields);
                    let _ = write!(
                        body,
                        r#"<text class="expected" x="{:.1}" y="{:.1}" text-anchor="middle">expected: {}</text>"#,
                        (HARNESS_X + kernel_x) / 2.0,
                        y,
                        highlighted(expected, &hl)
                    );
                    y += EXPECTED_ROW;
                }
            }
            Entry::Call { .. }
            | Entry::State { .. }
            | Entry::Sysctl { .. }
            | Entry::Command { .. }
            | Entry::AcceptQueue { .. } => {
                let (kind, text) = note(e).unwrap_or_default();
                let wrong = if *mark == Mark::Failed { " wrong" } else { "" };
                let mid = y + NOTE_ROW / 2.0;
                let box_w = text.chars().count() as f64 * CHAR + 14.0;
                let _ = write!(
                    body,
                    concat!(
                        r#"<g class="note {kind}{wrong}"><title>{title}</title>"#,
                        r#"<text class="time" x="{tx}" y="{ty:.1}" text-anchor="end">{time}</text>"#,
                        r#"<circle cx="{kx}" cy="{mid:.1}" r="4"/>"#,
                        r#"<rect x="{bx:.1}" y="{by:.1}" width="{bw:.1}" height="19" rx="{rx}"/>"#,
                        r#"<text x="{nx:.1}" y="{ty:.1}">{text}</text></g>"#
                    ),
                    kind = kind,
                    wrong = wrong,
                    title = escape(&format!("{} {text}", seconds(at))),
                    tx = TIME_X,
                    ty = mid + 4.0,
                    time = seconds(at),
                    kx = kernel_x,
                    mid = mid,
                    bx = kernel_x + 12.0,
                    by = mid - 9.5,
                    bw = box_w,
                    rx = if kind == "state" { 9 } else { 3 },
                    nx = kernel_x + 19.0,
                    text = escape(&text),
                );
                y += NOTE_ROW;
            }
        }
    }
    if case.exchange.is_empty() {
        let _ = write!(
            body,
            r#"<text class="pause" x="{:.1}" y="{:.1}" text-anchor="middle">nothing was observed</text>"#,
            (HARNESS_X + kernel_x) / 2.0,
            y + 14.0
        );
        y += FRAME_ROW;
    }
    let height = y + 10.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        concat!(
            r#"<svg class="ladder" xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" role="img" aria-label="{aria}">"#,
            r#"<text class="who" x="{hx}" y="18" text-anchor="middle">harness</text>"#,
            r#"<text class="addr" x="{hx}" y="34" text-anchor="middle">{ha}</text>"#,
            r#"<text class="who" x="{kx}" y="18" text-anchor="middle">kernel</text>"#,
            r#"<text class="addr" x="{kx}" y="34" text-anchor="middle">{ka}</text>"#,
            r#"<line class="lifeline" x1="{hx}" y1="42" x2="{hx}" y2="{end:.1}"/>"#,
            r#"<line class="lifeline" x1="{kx}" y1="42" x2="{kx}" y2="{end:.1}"/>"#,
            "{body}</svg>"
        ),
        w = width,
        h = height,
        aria = escape(&format!("sequence diagram of {}", case.name())),
        hx = HARNESS_X,
        kx = kernel_x,
        ha = harness_addr,
        ka = kernel_addr,
        end = height - 4.0,
        body = body,
    );
    svg
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::report::schema::VerdictName;

    fn case(exchange: Vec<Entry>, verdict: VerdictName, reason: Option<&str>) -> CaseReport {
        CaseReport {
            id: "opening/x".into(),
            family: "ipv4".into(),
            syntax: "yaml".into(),
            title: "t".into(),
            covers: vec![],
            rfc: vec![],
            requirements: vec![],
            deviates: BTreeMap::new(),
            description: None,
            verdict,
            reason: reason.map(str::to_string),
            duration_ms: 1.0,
            tolerance_ms: 10.0,
            sysctls: BTreeMap::new(),
            exchange,
            judged_until_ms: None,
            notes: vec![],
        }
    }

    fn frame(at_ms: f64, direction: Way, segment: &str) -> Entry {
        Entry::Frame {
            at_ms,
            direction,
            flow: Some("c".into()),
            segment: segment.into(),
            checksum_ok: true,
            length: 54,
        }
    }

    #[test]
    fn frames_after_the_last_step_are_drawn_faint() {
        let mut c = case(
            vec![
                frame(0.0, Way::ToKernel, "S 0:0(0) win 65535"),
                frame(5.0, Way::FromKernel, "S. 0:0(0) ack 1 win 64240"),
            ],
            VerdictName::Pass,
            None,
        );
        c.judged_until_ms = Some(1.0);
        let svg = render(&c, &marks(&c));
        assert_eq!(svg.matches("class=\"frame from-kernel after\"").count(), 1);
        assert!(svg.contains("after the last step: recorded, not judged"));
        assert_eq!(svg.matches("class=\"frame to-kernel\"").count(), 1);
    }

    #[test]
    fn frames_become_arrows_and_calls_become_notes_on_the_kernel_side() {
        let c = case(
            vec![
                Entry::Call {
                    at_ms: 0.0,
                    returned_ms: 0.01,
                    call: "srv = socket()".into(),
                    result: "0".into(),
                    sigpipe: false,
                },
                frame(0.1, Way::ToKernel, "S 0:0(0) win 65535 <mss 1460>"),
                frame(0.2, Way::FromKernel, "S. 0:0(0) ack 1 win 64240 <mss 1460>"),
                Entry::State {
                    at_ms: 1000.2,
                    target: "conn".into(),
                    state: "ESTABLISHED".into(),
                },
            ],
            VerdictName::Pass,
            None,
        );
        let svg = render(&c, &marks(&c));
        assert_eq!(svg.matches("<g class=\"frame ").count(), 2);
        assert_eq!(svg.matches("class=\"frame to-kernel\"").count(), 1);
        assert_eq!(svg.matches("class=\"frame from-kernel\"").count(), 1);
        assert!(svg.contains("srv = socket() → 0"));
        assert!(svg.contains("conn: ESTABLISHED"));
        assert!(svg.contains("S. 0:0(0) ack 1 win 64240 &lt;mss 1460&gt;"));
        assert!(svg.contains("⋮ 1.000 s"), "a one-second pause is shown: {svg}");
        assert!(!svg.contains("wrong"));
    }

    #[test]
    fn the_mismatching_frame_is_red_with_the_expected_segment_under_it() {
        let reason = "c.yaml:5:3: expect: the kernel's segment differs from the case
    expected  S. 0:0(0) ack 2 win any
    actual    S. 0:0(0) ack 1 win 64240
    ack: expected 2, got 1
  frames since the previous step:
    0.000100s < S 0:0(0) win 65535  [c]
    0.000200s > S. 0:0(0) ack 1 win 64240  [c]";
        let c = case(
            vec![
                frame(0.1, Way::ToKernel, "S 0:0(0) win 65535"),
                frame(0.2, Way::FromKernel, "S. 0:0(0) ack 1 win 64240"),
            ],
            VerdictName::Fail,
            Some(reason),
        );
        let m = marks(&c);
        assert_eq!(m[0], Mark::Plain);
        assert_eq!(
            m[1],
            Mark::Mismatch {
                expected: "S. 0:0(0) ack 2 win any".into(),
                fields: vec!["ack".into()]
            }
        );
        let svg = render(&c, &m);
        assert!(svg.contains("class=\"frame from-kernel wrong\""));
        assert!(svg.contains("ack <tspan class=\"hl\">1</tspan> win 64240"));
        assert!(svg.contains("expected: S. 0:0(0) ack <tspan class=\"hl\">2</tspan> win any"));
    }

    #[test]
    fn unexpected_frames_and_failed_calls_are_marked() {
        let reason = "c.yaml:5:3: the kernel sent 1 frame(s) that no step expects, from this step on:
    unexpected   0.000300s > . 1:1(0) ack 1 win 502  [c]";
        let c = case(
            vec![frame(0.3, Way::FromKernel, ". 1:1(0) ack 1 win 502")],
            VerdictName::Fail,
            Some(reason),
        );
        assert_eq!(marks(&c), [Mark::Unexpected]);
        assert!(render(&c, &marks(&c)).contains("unexpected: . 1:1(0)"));
        let c = case(
            vec![Entry::Call {
                at_ms: 0.0,
                returned_ms: 0.0,
                call: "close(conn)".into(),
                result: "-1 EBADF".into(),
                sigpipe: false,
            }],
            VerdictName::Fail,
            Some("c.yaml:5:3: call: `close(conn)` did not do what the case says\n    result: expected 0, got -1 EBADF"),
        );
        assert_eq!(marks(&c), [Mark::Failed]);
        assert!(render(&c, &marks(&c)).contains("class=\"note call wrong\""));
    }
}
