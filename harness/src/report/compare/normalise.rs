//! What of an exchange `compare` holds against another kernel's: every
//! entry becomes a *key*, compared for equality, and a *display* line,
//! shown to people. Values that legitimately change from run to run on one
//! kernel are normalised in the key; nothing else is touched.
//!
//! * **Times** (`at_ms`, `returned_ms`, durations) are not in keys; `compare`
//!   checks the kernel's own delays apart (see `super::timing`).
//! * **TCP timestamps.** The kernel starts each connection's TS clock at a
//!   random offset, so its TS vals are shown relative to its first TS val on
//!   the flow (`TS val K+35`). That number is a clock reading, so it changes
//!   with the harness's pace; the key keeps only whether the kernel's TS
//!   clock kept time: `K+~` when the value is within the case's tolerance
//!   (plus one tick) of the milliseconds elapsed since that first frame, as
//!   Linux's 1 kHz TS clock does, `K+?` otherwise (a stopped, reused or
//!   faster clock). The harness's TS ecr echoes kernel values: shown
//!   relative to the same base, keyed `echo` when it is the kernel's latest
//!   TS val. The harness's own TS vals and the kernel's ecr (which echoes
//!   them) are the case's fixed numbers and stay as they are; ecr 0 stays 0.
//! * **Frames on no flow** print absolute numbers: their sequence numbers
//!   become relative to the first one seen in that direction (`s+0`), an ack
//!   relative to the other direction's first (`a+1`) when there is one, and
//!   ports in the kernel's ephemeral range read `eph`.
//!
//! Everything else (flags, relative seq and ack, windows, options and their
//! order, lengths, checksums, call results and errnos, states, sysctl
//! values, queue lengths) is compared as written, and in order within its
//! [`Stream`]; how streams interleave is not compared.

use std::collections::HashMap;

use crate::report::mismatch;
use crate::report::schema::{CaseReport, Entry, Way};

/// Which entries keep their order against one another when two exchanges
/// are compared: one flow's frames, the frames on no flow, and the
/// harness's own steps (calls, states, reads) in the case's order. Streams
/// run concurrently - two flows' keepalive timers fire on one tick, a state
/// read meets a retransmission - so how they interleave is not the kernel's
/// behaviour, and an order that changes from run to run on one kernel must
/// not make two runs differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The frames of one named flow.
    Flow(String),
    /// Frames on no flow of the case.
    NoFlow,
    /// Calls, state reads, sysctl reads and accept-queue reads.
    Harness,
}

/// One entry of an exchange, normalised.
#[derive(Clone, Debug, PartialEq)]
pub struct Normal {
    /// What is compared.
    pub key: String,
    /// What is shown (normalised numbers, readable).
    pub display: String,
    /// When it happened on the case's timeline, in ms.
    pub at_ms: f64,
    /// Whether it is a frame the kernel sent (its delay is the kernel's doing).
    pub from_kernel: bool,
    /// The entries it keeps its order with.
    pub stream: Stream,
}

/// Per-flow state of the timestamp normalisation.
#[derive(Default)]
struct TsFlow {
    /// The kernel's first TS val on the flow and when it came.
    base: Option<(u32, f64)>,
    /// Every TS val the kernel sent on the flow, the latest last.
    kernel_vals: Vec<u32>,
}

/// The `(start, end)` byte ranges of the numbers after `TS val ` and `ecr `.
fn ts_numbers(segment: &str) -> Option<((usize, usize), (usize, usize))> {
    let val_start = segment.find("TS val ")? + "TS val ".len();
    let val_end = val_start + segment[val_start..].find(' ')?;
    let ecr_start = val_end + segment[val_end..].find("ecr ")? + "ecr ".len();
    let ecr_end = segment[ecr_start..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(segment.len(), |e| ecr_start + e);
    Some(((val_start, val_end), (ecr_start, ecr_end)))
}

/// `s` with the byte ranges `a` and `b` (`a` first) replaced.
fn replace2(s: &str, a: (usize, usize), with_a: &str, b: (usize, usize), with_b: &str) -> String {
    format!("{}{with_a}{}{with_b}{}", &s[..a.0], &s[a.1..b.0], &s[b.1..])
}

/// `K+n` for a kernel TS value `v` against the flow's base.
fn relative(v: u32, base: u32) -> String {
    let n = v.wrapping_sub(base) as i32;
    if n >= 0 { format!("K+{n}") } else { format!("K{n}") }
}

impl TsFlow {
    /// The (key, display) forms of a segment's TS option, or `None` when it has none.
    fn normalise(&mut self, segment: &str, way: Way, at_ms: f64, tolerance_ms: f64) -> Option<(String, String)> {
        let (val_r, ecr_r) = ts_numbers(segment)?;
        let val: u32 = segment[val_r.0..val_r.1].parse().ok()?;
        let ecr: u32 = segment[ecr_r.0..ecr_r.1].parse().ok()?;
        match way {
            Way::FromKernel => {
                let (base, base_at) = *self.base.get_or_insert((val, at_ms));
                self.kernel_vals.push(val);
                let shown = relative(val, base);
                let ticks = f64::from(val.wrapping_sub(base) as i32);
                let kept_time = (ticks - (at_ms - base_at)).abs() <= tolerance_ms + 1.0;
                let keyed = if kept_time { "K+~" } else { "K+?" };
                let ecr = ecr.to_string();
                Some((
                    replace2(segment, val_r, keyed, ecr_r, &ecr),
                    replace2(segment, val_r, &shown, ecr_r, &ecr),
                ))
            }
            Way::ToKernel => {
                let val = val.to_string();
                let (keyed, shown) = match self.base {
                    Some((base, _)) if ecr != 0 && self.kernel_vals.contains(&ecr) => {
                        let latest = self.kernel_vals.last() == Some(&ecr);
                        (
                            if latest {
                                "echo".to_string()
                            } else {
                                "echo-earlier".to_string()
                            },
                            relative(ecr, base),
                        )
                    }
                    _ => (ecr.to_string(), ecr.to_string()),
                };
                Some((
                    replace2(segment, val_r, &val, ecr_r, &keyed),
                    replace2(segment, val_r, &val, ecr_r, &shown),
                ))
            }
        }
    }
}

/// Per-exchange state of the normalisation of frames on no flow.
#[derive(Default)]
struct Strays {
    /// First sequence number seen per (source, destination).
    first_seq: HashMap<(String, String), u32>,
}

/// Splits `192.0.2.1.8080` (or `2001:db8::1.8080`) into address and port.
fn endpoint(s: &str) -> Option<(&str, u16)> {
    let (addr, port) = s.rsplit_once('.')?;
    Some((addr, port.parse().ok()?))
}

impl Strays {
    /// The normalised text of a TCP frame on no flow (`src.port > dst.port: segment`);
    /// other text is returned as it is.
    fn normalise(&mut self, text: &str, ephemeral: (u16, u16)) -> String {
        let Some((ends, segment)) = text.split_once(": ") else {
            return text.to_string();
        };
        let Some((src, dst)) = ends.split_once(" > ") else {
            return text.to_string();
        };
        let (Some((src_addr, src_port)), Some((dst_addr, dst_port))) = (endpoint(src), endpoint(dst)) else {
            return text.to_string();
        };
        let port = |p: u16| {
            if (ephemeral.0..=ephemeral.1).contains(&p) {
                "eph".to_string()
            } else {
                p.to_string()
            }
        };
        let this = (src.to_string(), dst.to_string());
        let back = (dst.to_string(), src.to_string());
        let mut words: Vec<String> = segment.split(' ').map(str::to_string).collect();
        // The sequence range is the word after the flags: `seq:end(len)`.
        if let Some(range) = words.get_mut(1)
            && let Some((seq, rest)) = range.split_once(':')
            && let Some((end, len)) = rest.split_once('(')
            && let (Ok(seq), Ok(end)) = (seq.parse::<u32>(), end.parse::<u32>())
        {
            let first = *self.first_seq.entry(this).or_insert(seq);
            *range = format!("s+{}:s+{}({len}", seq.wrapping_sub(first), end.wrapping_sub(first));
        }
        if let Some(i) = words.iter().position(|w| w == "ack")
            && let Some(Ok(ack)) = words.get(i + 1).map(|w| w.parse::<u32>())
            && let Some(first) = self.first_seq.get(&back)
        {
            words[i + 1] = format!("a+{}", ack.wrapping_sub(*first));
        }
        format!(
            "{src_addr}.{} > {dst_addr}.{}: {}",
            port(src_port),
            port(dst_port),
            words.join(" ")
        )
    }
}

/// The kernel's ephemeral port range as a report records it (default 32768-60999).
pub fn ephemeral_range(sysctls: &std::collections::BTreeMap<String, String>) -> (u16, u16) {
    sysctls
        .get("net.ipv4.ip_local_port_range")
        .and_then(|v| {
            let mut it = v.split_whitespace().map(|n| n.parse::<u16>());
            match (it.next(), it.next()) {
                (Some(Ok(lo)), Some(Ok(hi))) => Some((lo, hi)),
                _ => None,
            }
        })
        .unwrap_or((32768, 60999))
}

/// The normalised exchange of a case run. Frames after the case's last
/// step were not judged, and whether one is caught before the lab goes
/// depends on timing: they are left out.
pub fn exchange(case: &CaseReport, ephemeral: (u16, u16)) -> Vec<Normal> {
    let mut ts: HashMap<String, TsFlow> = HashMap::new();
    let mut strays = Strays::default();
    let judged =
        |e: &&Entry| !matches!(e, Entry::Frame { at_ms, .. } if case.judged_until_ms.is_some_and(|end| *at_ms > end));
    case.exchange
        .iter()
        .filter(judged)
        .map(|e| {
            let at_ms = e.at_ms();
            match e {
                Entry::Frame {
                    at_ms: _,
                    direction,
                    flow,
                    segment,
                    checksum_ok,
                    length: _,
                } => {
                    let stream = flow.clone().map_or(Stream::NoFlow, Stream::Flow);
                    let (key_seg, shown_seg) = match flow {
                        Some(f) => ts
                            .entry(f.clone())
                            .or_default()
                            .normalise(segment, *direction, at_ms, case.tolerance_ms)
                            .unwrap_or_else(|| (segment.clone(), segment.clone())),
                        None => {
                            let s = strays.normalise(segment, ephemeral);
                            (s.clone(), s)
                        }
                    };
                    let flow = flow.as_deref().map_or(String::new(), |f| format!("  [{f}]"));
                    let bad = if *checksum_ok { "" } else { "  (bad checksum)" };
                    let arrow = direction.arrow();
                    Normal {
                        key: format!("{arrow} {key_seg}{flow}{bad}"),
                        display: format!("{arrow} {shown_seg}{flow}{bad}"),
                        at_ms,
                        from_kernel: *direction == Way::FromKernel,
                        stream,
                    }
                }
                Entry::Call {
                    at_ms: _,
                    returned_ms: _,
                    call,
                    result,
                    sigpipe,
                } => {
                    let line = format!("  {call} → {result}{}", if *sigpipe { " SIGPIPE" } else { "" });
                    Normal {
                        key: line.clone(),
                        display: line,
                        at_ms,
                        from_kernel: false,
                        stream: Stream::Harness,
                    }
                }
                Entry::State {
                    at_ms: _,
                    target,
                    state,
                } => {
                    let line = format!("  state {target} {state}");
                    Normal {
                        key: line.clone(),
                        display: line,
                        at_ms,
                        from_kernel: false,
                        stream: Stream::Harness,
                    }
                }
                Entry::Command { command, status, .. } => {
                    let line = format!("  `{}` {status}", crate::event::one_line(command));
                    Normal {
                        key: line.clone(),
                        display: line,
                        at_ms,
                        from_kernel: false,
                        stream: Stream::Harness,
                    }
                }
                Entry::Sysctl { at_ms: _, name, value } => {
                    let line = format!("  sysctl {name} = {}", value.as_deref().unwrap_or("(absent)"));
                    Normal {
                        key: line.clone(),
                        display: line,
                        at_ms,
                        from_kernel: false,
                        stream: Stream::Harness,
                    }
                }
                Entry::AcceptQueue {
                    at_ms: _,
                    socket,
                    len,
                    limit,
                } => {
                    let line = format!("  accept queue {socket} len {len} limit {limit}");
                    Normal {
                        key: line.clone(),
                        display: line,
                        at_ms,
                        from_kernel: false,
                        stream: Stream::Harness,
                    }
                }
            }
        })
        .collect()
}

impl Normal {
    /// Whether the entry is a frame (its line starts with `<` or `>`).
    pub fn is_frame(&self) -> bool {
        self.display.starts_with("< ") || self.display.starts_with("> ")
    }
}

/// How two normalised entries differ, field by field, for people:
/// `win: 64240 → 65160`. Empty when they are not comparable entries.
pub fn field_changes(a: &Normal, b: &Normal) -> Vec<String> {
    if a.is_frame() && b.is_frame() {
        let seg = |n: &Normal| n.display[2..].split("  [").next().unwrap_or_default().to_string();
        let key_seg = |n: &Normal| n.key[2..].split("  [").next().unwrap_or_default().to_string();
        let (sa, sb) = (seg(a), seg(b));
        let (ka, kb) = (key_seg(a), key_seg(b));
        let spans = |s: &str| -> Vec<(&'static str, String)> {
            mismatch::field_spans(s)
                .into_iter()
                .map(|(f, r)| (f, s[r].to_string()))
                .collect()
        };
        let (fa, fb, ka_spans, kb_spans) = (spans(&sa), spans(&sb), spans(&ka), spans(&kb));
        let get = |v: &[(&'static str, String)], f: &str| v.iter().find(|(n, _)| *n == f).map(|(_, s)| s.clone());
        let mut out = Vec::new();
        for field in [
            "flags",
            "seq",
            "ack",
            "win",
            "urg",
            "mss",
            "wscale",
            "TS val",
            "TS ecr",
            "sack left",
        ] {
            let (ka, kb) = (get(&ka_spans, field), get(&kb_spans, field));
            if ka != kb {
                let show = |v: Option<String>| v.unwrap_or_else(|| "(none)".into());
                let name = match field {
                    "seq" => "seq:end(len)",
                    "sack left" => "sack",
                    f => f,
                };
                out.push(format!("{name}: {} → {}", show(get(&fa, field)), show(get(&fb, field))));
            }
        }
        let (oa, ob) = (get(&ka_spans, "options"), get(&kb_spans, "options"));
        if out
            .iter()
            .all(|c| !["mss", "wscale", "TS", "sack"].iter().any(|p| c.starts_with(p)))
            && oa != ob
        {
            let show = |v: Option<String>| v.unwrap_or_else(|| "no options".into());
            out.push(format!(
                "options: {} → {}",
                show(get(&fa, "options")),
                show(get(&fb, "options"))
            ));
        }
        if a.display.contains("(bad checksum)") != b.display.contains("(bad checksum)") {
            out.push("checksum: differs".into());
        }
        return out;
    }
    let split = |n: &Normal| -> Option<(String, String)> {
        let (head, tail) = n.display.trim().rsplit_once(" → ")?;
        Some((head.to_string(), tail.to_string()))
    };
    if let (Some((ca, ra)), Some((cb, rb))) = (split(a), split(b))
        && ca == cb
    {
        return vec![format!("result of {ca}: {ra} → {rb}")];
    }
    let state = |n: &Normal| -> Option<(String, String)> {
        let rest = n.display.trim().strip_prefix("state ")?;
        let (target, state) = rest.rsplit_once(' ')?;
        Some((target.to_string(), state.to_string()))
    };
    if let (Some((ta, sa)), Some((tb, sb))) = (state(a), state(b))
        && ta == tb
    {
        return vec![format!("state of {ta}: {sa} → {sb}")];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::report::schema::VerdictName;

    fn frame(at_ms: f64, direction: Way, segment: &str) -> Entry {
        Entry::Frame {
            at_ms,
            direction,
            flow: Some("c".into()),
            segment: segment.into(),
            checksum_ok: true,
            length: 66,
        }
    }

    fn case(exchange: Vec<Entry>) -> CaseReport {
        CaseReport {
            id: "x".into(),
            family: "ipv4".into(),
            syntax: "yaml".into(),
            title: "t".into(),
            covers: vec![],
            rfc: vec![],
            requirements: vec![],
            deviates: BTreeMap::new(),
            description: None,
            verdict: VerdictName::Pass,
            reason: None,
            duration_ms: 1.0,
            tolerance_ms: 10.0,
            sysctls: BTreeMap::new(),
            exchange,
            judged_until_ms: None,
            notes: vec![],
        }
    }

    /// An active open with timestamps whose kernel TS clock starts at `base`,
    /// and whose final ACK leaves `ack_at` ms after the SYN.
    fn handshake(base: u32, ack_at: f64) -> CaseReport {
        case(vec![
            frame(
                0.1,
                Way::FromKernel,
                &format!("S 0:0(0) win 64240 <mss 1460,sackOK,TS val {base} ecr 0,nop,wscale 10>"),
            ),
            frame(
                0.3,
                Way::ToKernel,
                &format!("S. 0:0(0) ack 1 win 65535 <mss 1460,TS val 1000 ecr {base}>"),
            ),
            frame(
                ack_at,
                Way::FromKernel,
                &format!(
                    ". 1:1(0) ack 1 win 63 <nop,nop,TS val {} ecr 1000>",
                    base.wrapping_add(ack_at as u32)
                ),
            ),
        ])
    }

    #[test]
    fn frames_after_the_last_step_are_left_out() {
        let mut c = case(vec![
            frame(0.0, Way::ToKernel, "S 0:0(0) win 65535"),
            frame(0.1, Way::FromKernel, "S. 0:0(0) ack 1 win 64240"),
            frame(9.0, Way::FromKernel, "S. 0:0(0) ack 1 win 64240"),
        ]);
        c.judged_until_ms = Some(1.0);
        assert_eq!(exchange(&c, (32768, 60999)).len(), 2);
        c.judged_until_ms = None;
        assert_eq!(exchange(&c, (32768, 60999)).len(), 3);
    }

    #[test]
    fn random_ts_offsets_and_the_harness_pace_do_not_change_keys() {
        let a = exchange(&handshake(817_886_565, 0.4), (32768, 60999));
        let b = exchange(&handshake(4_294_967_000, 35.0), (32768, 60999));
        let keys = |n: &[Normal]| n.iter().map(|x| x.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&a), keys(&b));
        assert_eq!(
            a[0].display,
            "> S 0:0(0) win 64240 <mss 1460,sackOK,TS val K+0 ecr 0,nop,wscale 10>  [c]"
        );
        assert_eq!(
            a[1].display,
            "< S. 0:0(0) ack 1 win 65535 <mss 1460,TS val 1000 ecr K+0>  [c]"
        );
        assert_eq!(
            a[1].key,
            "< S. 0:0(0) ack 1 win 65535 <mss 1460,TS val 1000 ecr echo>  [c]"
        );
        assert_eq!(
            b[2].display,
            "> . 1:1(0) ack 1 win 63 <nop,nop,TS val K+35 ecr 1000>  [c]"
        );
        assert!(a[2].from_kernel && !a[1].from_kernel);
    }

    #[test]
    fn a_ts_clock_that_does_not_keep_time_is_a_difference() {
        let mut stuck = handshake(5000, 500.0);
        if let Entry::Frame { segment, .. } = &mut stuck.exchange[2] {
            *segment = ". 1:1(0) ack 1 win 63 <nop,nop,TS val 5000 ecr 1000>".into();
        }
        let a = exchange(&handshake(5000, 500.0), (32768, 60999));
        let b = exchange(&stuck, (32768, 60999));
        assert_ne!(a[2].key, b[2].key);
        assert_eq!(field_changes(&a[2], &b[2]), ["TS val: K+500 → K+0"]);
    }

    #[test]
    fn real_differences_stay_visible_and_are_spelled_out() {
        let a = exchange(&handshake(1, 0.4), (32768, 60999));
        let mut other = handshake(1, 0.4);
        if let Entry::Frame { segment, .. } = &mut other.exchange[0] {
            *segment = "S 0:0(0) win 65160 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7>".into();
        }
        let b = exchange(&other, (32768, 60999));
        assert_ne!(a[0].key, b[0].key);
        assert_eq!(field_changes(&a[0], &b[0]), ["win: 64240 → 65160", "wscale: 10 → 7"]);
        let call = |result: &str| Normal {
            key: format!("  connect(cli, 8080) → {result}"),
            display: format!("  connect(cli, 8080) → {result}"),
            at_ms: 0.0,
            from_kernel: false,
            stream: Stream::Harness,
        };
        assert_eq!(
            field_changes(&call("-1 ECONNREFUSED"), &call("-1 ETIMEDOUT")),
            ["result of connect(cli, 8080): -1 ECONNREFUSED → -1 ETIMEDOUT"]
        );
    }

    #[test]
    fn frames_on_no_flow_lose_their_random_numbers_only() {
        let stray = |text: &str| Entry::Frame {
            at_ms: 0.0,
            direction: Way::FromKernel,
            flow: None,
            segment: text.into(),
            checksum_ok: true,
            length: 54,
        };
        let c = case(vec![
            stray("192.0.2.1.45678 > 192.0.2.2.8080: S 3000000000:3000000000(0) win 64240"),
            stray("192.0.2.1.45678 > 192.0.2.2.8080: . 3000000001:3000000001(0) ack 77 win 502"),
        ]);
        let n = exchange(&c, (32768, 60999));
        assert_eq!(n[0].key, "> 192.0.2.1.eph > 192.0.2.2.8080: S s+0:s+0(0) win 64240");
        assert_eq!(
            n[1].key,
            "> 192.0.2.1.eph > 192.0.2.2.8080: . s+1:s+1(0) ack 77 win 502"
        );
    }
}
