//! Segment patterns: what a case writes for one segment, and the matcher
//! that compares a captured segment with it field by field.
//!
//! One pattern type serves both directions (as packetimpact's layer specs
//! do): a field left out means "fill in from the flow" when the harness
//! injects, and "anything" when the harness expects. Numbers in a pattern
//! are relative to the flow's ISNs, like the segments they are compared with.
//!
//! The IP header is matched apart from the segment ([`SegmentPattern::ip_mismatches`]),
//! with packetdrill's rules: a field the pattern does not name is not checked,
//! an ECN codepoint checks only the low two bits of the TOS byte.

use std::fmt;

use super::frame::{Ecn, IpFields};
use super::tcp::{ACCECN_COUNTER_MAX, AccEcnOrder, Flags, SackBlock, TcpOption, TcpSegment};

/// A lab value a pattern can name instead of a literal number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Var {
    /// `$mss`: the MSS the kernel derives from the lab MTU (1460 on IPv4, 1440 on IPv6).
    Mss,
}

impl Var {
    /// Every variable, with its notation name.
    pub const ALL: [(&'static str, Var); 1] = [("mss", Var::Mss)];

    /// The variable's notation name, without the `$`.
    pub fn name(self) -> &'static str {
        match self {
            Var::Mss => "mss",
        }
    }
}

/// A number in a pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Num {
    /// This exact value.
    Lit(u32),
    /// Any value (expectations only).
    Any,
    /// A lab value, resolved per family.
    Var(Var),
    /// The TS val most recently sent by the other end of the flow (TS ecr only).
    Echo,
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Num::Lit(n) => write!(f, "{n}"),
            Num::Any => f.write_str("any"),
            Num::Var(v) => write!(f, "${}", v.name()),
            Num::Echo => f.write_str("echo"),
        }
    }
}

/// One element of an option-list pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OptionPattern {
    /// `eol`
    Eol,
    /// `nop`
    Nop,
    /// `mss N`
    Mss(Num),
    /// `wscale N`
    WindowScale(Num),
    /// `sackOK`
    SackPermitted,
    /// `sack L:R L:R ...`
    Sack(Vec<(Num, Num)>),
    /// `TS val N ecr N`
    Timestamp {
        /// TSval pattern.
        val: Num,
        /// TSecr pattern; may be `echo`.
        ecr: Num,
    },
    /// `md5 HEX`: a 16-byte MD5 signature (kind 19).
    Md5([u8; 16]),
    /// `FO` or `FO HEX`: Fast Open (kind 34) with its cookie, empty for a cookie request.
    FastOpen(Vec<u8>),
    /// `FOEXP` or `FOEXP HEX`: experimental Fast Open (kind 254, magic 0xF989) with its cookie.
    FastOpenExp(Vec<u8>),
    /// `ECN e0b N ceb N e1b N` (kind 172), `ECN e1b N ceb N e0b N` (kind 174), or
    /// fewer fields from the left; `ECN0` / `ECN1` for no field.
    AccEcn {
        /// Which kind, given by the field written first.
        order: AccEcnOrder,
        /// The counters, in wire order.
        counters: Vec<Num>,
    },
    /// `opt KIND HEX`: an option of any kind, given as bytes; it matches any
    /// option with these bytes on the wire, typed or not.
    Unknown {
        /// Option kind.
        kind: u8,
        /// Option data.
        data: Vec<u8>,
    },
    /// `trailing HEX`: raw bytes that do not form an option.
    Trailing(Vec<u8>),
    /// `...`: any number of options (expectations only).
    Rest,
}

/// What a pattern says about the TOS / traffic-class byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TosPattern {
    /// `[noecn]`, `[ect1]`, `[ect0]`, `[ce]`: the ECN codepoint. Injected with
    /// DSCP 0; expected: only the low two bits are checked.
    Ecn(Ecn),
    /// `[ect01]`: ECT(0) or ECT(1) (expectations only).
    EitherEct,
    /// `(tos 0xHH)`: the whole byte.
    Byte(u8),
}

/// What a pattern says about the IP header. A field left out is the default
/// when injecting and not checked when expecting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpPattern {
    /// The TOS / traffic-class byte or its ECN bits.
    pub tos: Option<TosPattern>,
    /// `ttl N`: TTL or hop limit, exact.
    pub ttl: Option<u8>,
    /// `flowlabel 0xHHHHH`: the IPv6 flow label, exact.
    pub flow_label: Option<u32>,
}

impl IpPattern {
    /// Whether the pattern names no IP field at all.
    pub fn is_empty(&self) -> bool {
        *self == IpPattern::default()
    }
}

/// What a case says about one segment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SegmentPattern {
    /// IP header fields (`[ect0]`, `(tos 0x..)`, ...) before the flags.
    pub ip: IpPattern,
    /// Control bits; always exact.
    pub flags: Flags,
    /// Relative sequence number (`seq` in `seq:end(len)`).
    pub seq: Option<Num>,
    /// End of the payload (`end` in `seq:end(len)`).
    pub end: Option<Num>,
    /// Payload length (`len` in `seq:end(len)`).
    pub len: Option<Num>,
    /// Relative acknowledgment number.
    pub ack: Option<Num>,
    /// Window field, unscaled.
    pub win: Option<Num>,
    /// Urgent pointer.
    pub urg: Option<Num>,
    /// Option list; `None` when the pattern gives no `<...>` at all.
    pub options: Option<Vec<OptionPattern>>,
}

/// Values a pattern needs from the lab and the flow to be resolved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// Value of `$mss`.
    pub mss: u32,
    /// Value of `echo`: the last TS val sent by the other end, if any.
    pub echo: Option<u32>,
}

impl Context {
    fn resolve(&self, num: Num) -> Option<u32> {
        match num {
            Num::Lit(n) => Some(n),
            Num::Var(Var::Mss) => Some(self.mss),
            Num::Echo => self.echo,
            Num::Any => None,
        }
    }
}

/// One field in which a segment differs from its pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Field name as written in the notation (`ack`, `win`, `TS ecr`, `flags`, ...).
    pub field: String,
    /// What the pattern asked for.
    pub expected: String,
    /// What the segment had.
    pub actual: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: expected {}, got {}", self.field, self.expected, self.actual)
    }
}

impl SegmentPattern {
    /// Compares a segment (relative numbers) with this pattern; empty when it matches.
    pub fn mismatches(&self, seg: &TcpSegment, ctx: &Context) -> Vec<Mismatch> {
        let mut out = Vec::new();
        if seg.flags != self.flags {
            out.push(Mismatch {
                field: "flags".into(),
                expected: self.flags.to_string(),
                actual: seg.flags.to_string(),
            });
        }
        let len = u32::try_from(seg.payload.len()).unwrap_or(u32::MAX);
        let fields = [
            ("seq", self.seq, seg.seq),
            ("end", self.end, seg.seq.wrapping_add(len)),
            ("len", self.len, len),
            ("ack", self.ack, seg.ack),
            ("win", self.win, u32::from(seg.window)),
            ("urg", self.urg, u32::from(seg.urgent)),
        ];
        for (field, want, got) in fields {
            check_num(&mut out, field, want, got, ctx);
        }
        if let Some(options) = &self.options {
            match_options(&mut out, options, &seg.options, ctx);
        }
        out
    }

    /// Whether the pattern names a timestamp option whose ecr is `echo`.
    pub fn uses_echo(&self) -> bool {
        self.options
            .iter()
            .flatten()
            .any(|o| matches!(o, OptionPattern::Timestamp { val, ecr } if *val == Num::Echo || *ecr == Num::Echo))
    }
}

fn check_num(out: &mut Vec<Mismatch>, field: &str, want: Option<Num>, got: u32, ctx: &Context) {
    let Some(want) = want else { return };
    if want == Num::Any {
        return;
    }
    match ctx.resolve(want) {
        Some(v) if v == got => {}
        Some(v) => out.push(Mismatch {
            field: field.into(),
            expected: if matches!(want, Num::Lit(_)) {
                v.to_string()
            } else {
                format!("{want} = {v}")
            },
            actual: got.to_string(),
        }),
        None => out.push(Mismatch {
            field: field.into(),
            expected: format!("{want} (no value: the other end has sent no timestamp yet)"),
            actual: got.to_string(),
        }),
    }
}

fn match_options(out: &mut Vec<Mismatch>, want: &[OptionPattern], got: &[TcpOption], ctx: &Context) {
    let same_shape = want.len() == got.len()
        && want.iter().zip(got).all(|(w, g)| same_kind(w, g))
        && !want.contains(&OptionPattern::Rest);
    if same_shape {
        for (w, g) in want.iter().zip(got) {
            match (w, g) {
                (OptionPattern::Mss(n), TcpOption::Mss(v)) => check_num(out, "mss", Some(*n), u32::from(*v), ctx),
                (OptionPattern::WindowScale(n), TcpOption::WindowScale(v)) => {
                    check_num(out, "wscale", Some(*n), u32::from(*v), ctx)
                }
                (OptionPattern::Timestamp { val, ecr }, TcpOption::Timestamp { val: v, ecr: e }) => {
                    check_num(out, "TS val", Some(*val), *v, ctx);
                    check_num(out, "TS ecr", Some(*ecr), *e, ctx);
                }
                (OptionPattern::Sack(blocks), TcpOption::Sack(actual)) if blocks.len() == actual.len() => {
                    for ((l, r), b) in blocks.iter().zip(actual) {
                        check_num(out, "sack left", Some(*l), b.left, ctx);
                        check_num(out, "sack right", Some(*r), b.right, ctx);
                    }
                }
                (OptionPattern::AccEcn { order, counters }, TcpOption::AccEcn { counters: actual, .. })
                    if counters.len() == actual.len() =>
                {
                    for ((name, want), got) in order.field_names().iter().zip(counters).zip(actual) {
                        check_num(out, &format!("ECN {name}"), Some(*want), *got, ctx);
                    }
                }
                (w, g) if !option_matches(w, g, ctx) => out.push(options_mismatch(want, got)),
                _ => {}
            }
        }
    } else if !list_matches(want, got, ctx) {
        out.push(options_mismatch(want, got));
    }
}

fn options_mismatch(want: &[OptionPattern], got: &[TcpOption]) -> Mismatch {
    Mismatch {
        field: "options".into(),
        expected: super::notation::format_option_patterns(want),
        actual: super::notation::format_options(got),
    }
}

fn same_kind(w: &OptionPattern, g: &TcpOption) -> bool {
    match (w, g) {
        (OptionPattern::AccEcn { order, .. }, TcpOption::AccEcn { order: o, .. }) => order == o,
        (OptionPattern::Unknown { kind, .. }, g) => g.kind() == Some(*kind),
        _ => matches!(
            (w, g),
            (OptionPattern::Eol, TcpOption::Eol)
                | (OptionPattern::Nop, TcpOption::Nop)
                | (OptionPattern::Mss(_), TcpOption::Mss(_))
                | (OptionPattern::WindowScale(_), TcpOption::WindowScale(_))
                | (OptionPattern::SackPermitted, TcpOption::SackPermitted)
                | (OptionPattern::Sack(_), TcpOption::Sack(_))
                | (OptionPattern::Timestamp { .. }, TcpOption::Timestamp { .. })
                | (OptionPattern::Md5(_), TcpOption::Md5(_))
                | (OptionPattern::FastOpen(_), TcpOption::FastOpen(_))
                | (OptionPattern::FastOpenExp(_), TcpOption::FastOpenExp(_))
                | (OptionPattern::Trailing(_), TcpOption::Trailing(_))
        ),
    }
}

fn num_matches(want: Num, got: u32, ctx: &Context) -> bool {
    want == Num::Any || ctx.resolve(want) == Some(got)
}

fn option_matches(w: &OptionPattern, g: &TcpOption, ctx: &Context) -> bool {
    match (w, g) {
        (OptionPattern::Eol, TcpOption::Eol)
        | (OptionPattern::Nop, TcpOption::Nop)
        | (OptionPattern::SackPermitted, TcpOption::SackPermitted) => true,
        (OptionPattern::Mss(n), TcpOption::Mss(v)) => num_matches(*n, u32::from(*v), ctx),
        (OptionPattern::WindowScale(n), TcpOption::WindowScale(v)) => num_matches(*n, u32::from(*v), ctx),
        (OptionPattern::Sack(want), TcpOption::Sack(got)) => {
            want.len() == got.len()
                && want
                    .iter()
                    .zip(got)
                    .all(|((l, r), b)| num_matches(*l, b.left, ctx) && num_matches(*r, b.right, ctx))
        }
        (OptionPattern::Timestamp { val, ecr }, TcpOption::Timestamp { val: v, ecr: e }) => {
            num_matches(*val, *v, ctx) && num_matches(*ecr, *e, ctx)
        }
        (OptionPattern::Md5(want), TcpOption::Md5(got)) => want == got,
        (OptionPattern::FastOpen(want), TcpOption::FastOpen(got))
        | (OptionPattern::FastOpenExp(want), TcpOption::FastOpenExp(got)) => want == got,
        (OptionPattern::AccEcn { order, counters }, TcpOption::AccEcn { order: o, counters: c }) => {
            order == o && counters.len() == c.len() && counters.iter().zip(c).all(|(n, v)| num_matches(*n, *v, ctx))
        }
        (OptionPattern::Unknown { kind, data }, g) => {
            let raw = TcpOption::Unknown {
                kind: *kind,
                data: data.clone(),
            };
            raw.to_bytes() == g.to_bytes()
        }
        (OptionPattern::Trailing(want), TcpOption::Trailing(got)) => want == got,
        _ => false,
    }
}

/// Glob match of an option list in which `...` stands for any run of options.
fn list_matches(want: &[OptionPattern], got: &[TcpOption], ctx: &Context) -> bool {
    match want.split_first() {
        None => got.is_empty(),
        Some((OptionPattern::Rest, rest)) => (0..=got.len()).any(|skip| list_matches(rest, &got[skip..], ctx)),
        Some((first, rest)) => match got.split_first() {
            Some((g, got_rest)) => option_matches(first, g, ctx) && list_matches(rest, got_rest, ctx),
            None => false,
        },
    }
}

/// Values the harness fills in for fields an injected pattern leaves out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    /// Next relative sequence number the harness sends.
    pub seq: u32,
    /// Next relative sequence number the harness expects from the kernel.
    pub ack: u32,
    /// Default window.
    pub win: u16,
}

/// Why a pattern cannot be turned into a segment to inject.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The pattern names `echo` but the kernel has sent no timestamp yet.
    #[error("`echo` has no value: the kernel has sent no TCP timestamp on this flow yet")]
    NoEcho,
    /// A value does not fit its field.
    #[error("{field} = {value} does not fit in {bits} bits")]
    TooBig {
        /// Field name.
        field: &'static str,
        /// The value.
        value: u32,
        /// Field width.
        bits: u32,
    },
    /// The payload given differs in length from the notation's `(len)`.
    #[error("the payload has {actual} bytes but the segment says ({said})")]
    PayloadLength {
        /// Length in the notation.
        said: u32,
        /// Length of the payload given.
        actual: usize,
    },
}

impl SegmentPattern {
    /// Builds the segment to inject (relative numbers, ports zero).
    ///
    /// `payload` is used when given; otherwise `(len)` filler bytes are sent.
    /// Load-time validation guarantees no `any` or `...` reaches this point;
    /// should one do so, it is treated as left out.
    pub fn to_segment(&self, fill: &Fill, ctx: &Context, payload: Option<&[u8]>) -> Result<TcpSegment, BuildError> {
        let get = |num: Option<Num>, default: u32| -> Result<u32, BuildError> {
            match num {
                None | Some(Num::Any) => Ok(default),
                Some(n) => ctx.resolve(n).ok_or(BuildError::NoEcho),
            }
        };
        let narrow16 = |field: &'static str, v: u32| {
            u16::try_from(v).map_err(|_| BuildError::TooBig {
                field,
                value: v,
                bits: 16,
            })
        };
        let len = get(self.len, 0)?;
        let payload = match payload {
            Some(p) if self.len.is_some() && p.len() != len as usize => {
                return Err(BuildError::PayloadLength {
                    said: len,
                    actual: p.len(),
                });
            }
            Some(p) => p.to_vec(),
            None => filler(len as usize),
        };
        let mut options = Vec::new();
        for o in self.options.iter().flatten() {
            options.push(match o {
                OptionPattern::Eol => TcpOption::Eol,
                OptionPattern::Nop => TcpOption::Nop,
                OptionPattern::Mss(n) => TcpOption::Mss(narrow16("mss", get(Some(*n), 0)?)?),
                OptionPattern::WindowScale(n) => {
                    let v = get(Some(*n), 0)?;
                    TcpOption::WindowScale(u8::try_from(v).map_err(|_| BuildError::TooBig {
                        field: "wscale",
                        value: v,
                        bits: 8,
                    })?)
                }
                OptionPattern::SackPermitted => TcpOption::SackPermitted,
                OptionPattern::Sack(blocks) => TcpOption::Sack(
                    blocks
                        .iter()
                        .map(|(l, r)| {
                            Ok(SackBlock {
                                left: get(Some(*l), 0)?,
                                right: get(Some(*r), 0)?,
                            })
                        })
                        .collect::<Result<_, BuildError>>()?,
                ),
                OptionPattern::Timestamp { val, ecr } => TcpOption::Timestamp {
                    val: get(Some(*val), 0)?,
                    ecr: get(Some(*ecr), 0)?,
                },
                OptionPattern::Md5(digest) => TcpOption::Md5(*digest),
                OptionPattern::FastOpen(cookie) => TcpOption::FastOpen(cookie.clone()),
                OptionPattern::FastOpenExp(cookie) => TcpOption::FastOpenExp(cookie.clone()),
                OptionPattern::AccEcn { order, counters } => TcpOption::AccEcn {
                    order: *order,
                    counters: counters
                        .iter()
                        .map(|n| match get(Some(*n), 0)? {
                            v if v > ACCECN_COUNTER_MAX => Err(BuildError::TooBig {
                                field: "ECN counter",
                                value: v,
                                bits: 24,
                            }),
                            v => Ok(v),
                        })
                        .collect::<Result<_, BuildError>>()?,
                },
                OptionPattern::Unknown { kind, data } => TcpOption::Unknown {
                    kind: *kind,
                    data: data.clone(),
                },
                OptionPattern::Trailing(bytes) => TcpOption::Trailing(bytes.clone()),
                OptionPattern::Rest => continue,
            });
        }
        let ack_default = if self.flags.contains(Flags::ACK) { fill.ack } else { 0 };
        Ok(TcpSegment {
            src_port: 0,
            dst_port: 0,
            seq: get(self.seq, fill.seq)?,
            ack: get(self.ack, ack_default)?,
            flags: self.flags,
            window: narrow16("win", get(self.win, u32::from(fill.win))?)?,
            checksum: 0,
            urgent: narrow16("urg", get(self.urg, 0)?)?,
            options,
            payload,
        })
    }
}

impl SegmentPattern {
    /// Compares captured IP header fields with the pattern's; empty when they match.
    ///
    /// packetdrill's rules: a field the pattern leaves out is not checked; an
    /// ECN codepoint checks the low two bits only; `tos` checks the whole
    /// byte; `ttl` and `flowlabel` are exact.
    pub fn ip_mismatches(&self, got: &IpFields) -> Vec<Mismatch> {
        let mut out = Vec::new();
        let mut push = |field: &str, expected: String, actual: String| {
            out.push(Mismatch {
                field: field.into(),
                expected,
                actual,
            })
        };
        match self.ip.tos {
            Some(TosPattern::Ecn(want)) if got.ecn() != want => {
                push("ecn", want.name().into(), got.ecn().name().into());
            }
            Some(TosPattern::EitherEct) if !matches!(got.ecn(), Ecn::Ect0 | Ecn::Ect1) => {
                push("ecn", "ect0 or ect1".into(), got.ecn().name().into());
            }
            Some(TosPattern::Byte(want)) if got.tos != want => {
                push("tos", format!("0x{want:02x}"), format!("0x{:02x}", got.tos));
            }
            _ => {}
        }
        if let Some(want) = self.ip.ttl
            && got.ttl != want
        {
            push("ttl", want.to_string(), got.ttl.to_string());
        }
        if let Some(want) = self.ip.flow_label
            && got.flow_label != want
        {
            push(
                "flowlabel",
                format!("0x{want:05x}"),
                format!("0x{:05x}", got.flow_label),
            );
        }
        out
    }

    /// The IP header fields to inject this pattern with: TTL `default_ttl`
    /// and TOS, flow label and ID 0 unless the pattern says otherwise, DF set.
    /// `[ect01]` is refused when an injected pattern is parsed; should it
    /// reach this point, it is treated as left out.
    pub fn ip_fields(&self, default_ttl: u8) -> IpFields {
        IpFields {
            tos: match self.ip.tos {
                Some(TosPattern::Ecn(ecn)) => ecn.bits(),
                Some(TosPattern::Byte(tos)) => tos,
                Some(TosPattern::EitherEct) | None => 0,
            },
            ttl: self.ip.ttl.unwrap_or(default_ttl),
            flow_label: self.ip.flow_label.unwrap_or(0),
            ..IpFields::default()
        }
    }
}

/// Payload bytes for a segment whose content the case does not give: a
/// repeating, printable pattern that is easy to spot in a capture.
pub fn filler(len: usize) -> Vec<u8> {
    b"tcpconform.".iter().copied().cycle().take(len).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::notation::parse_expect;

    fn seg(flags: Flags, seq: u32, ack: u32, win: u16, options: Vec<TcpOption>) -> TcpSegment {
        TcpSegment {
            src_port: 0,
            dst_port: 0,
            seq,
            ack,
            flags,
            window: win,
            checksum: 0,
            urgent: 0,
            options,
            payload: vec![],
        }
    }

    const CTX: Context = Context {
        mss: 1460,
        echo: Some(77),
    };

    fn fields(text: &str, s: &TcpSegment) -> Vec<String> {
        parse_expect(text)
            .unwrap()
            .mismatches(s, &CTX)
            .into_iter()
            .map(|m| m.to_string())
            .collect()
    }

    #[test]
    fn exact_match_has_no_mismatch() {
        let s = seg(Flags::ACK, 1, 1, 502, vec![]);
        assert!(fields(". 1:1(0) ack 1 win 502", &s).is_empty());
    }

    #[test]
    fn each_differing_field_is_named() {
        let s = seg(Flags::ACK | Flags::FIN, 1, 2, 502, vec![]);
        assert_eq!(
            fields(". 1:1(0) ack 1 win 500", &s),
            vec![
                "flags: expected ., got F.",
                "ack: expected 1, got 2",
                "win: expected 500, got 502"
            ]
        );
    }

    #[test]
    fn omitted_fields_and_any_are_not_checked() {
        let s = seg(Flags::ACK, 9, 9, 9, vec![TcpOption::Nop]);
        assert!(fields(".", &s).is_empty());
        assert!(fields(". any:any(0) ack any win any <...>", &s).is_empty());
    }

    #[test]
    fn variables_and_echo_resolve_from_the_context() {
        let s = seg(
            Flags::SYN | Flags::ACK,
            0,
            1,
            0,
            vec![TcpOption::Mss(1460), TcpOption::Timestamp { val: 5, ecr: 77 }],
        );
        assert!(fields("S. 0:0(0) ack 1 <mss $mss,TS val any ecr echo>", &s).is_empty());
        let s = seg(
            Flags::SYN | Flags::ACK,
            0,
            1,
            0,
            vec![TcpOption::Mss(1440), TcpOption::Timestamp { val: 5, ecr: 76 }],
        );
        assert_eq!(
            fields("S. 0:0(0) ack 1 <mss $mss,TS val any ecr echo>", &s),
            vec![
                "mss: expected $mss = 1460, got 1440",
                "TS ecr: expected echo = 77, got 76"
            ]
        );
    }

    #[test]
    fn rest_matches_any_run_of_options() {
        let s = seg(
            Flags::SYN,
            0,
            0,
            0,
            vec![
                TcpOption::Mss(1460),
                TcpOption::SackPermitted,
                TcpOption::Nop,
                TcpOption::WindowScale(7),
            ],
        );
        assert!(fields("S <mss 1460,...>", &s).is_empty());
        assert!(fields("S <...,wscale 7>", &s).is_empty());
        assert!(fields("S <mss 1460,...,wscale 7>", &s).is_empty());
        assert_eq!(
            fields("S <...,wscale 8>", &s),
            vec!["options: expected <...,wscale 8>, got <mss 1460,sackOK,nop,wscale 7>"]
        );
        assert_eq!(
            fields("S <>", &s),
            vec!["options: expected <>, got <mss 1460,sackOK,nop,wscale 7>"]
        );
    }

    #[test]
    fn injected_segment_fills_what_is_left_out() {
        let fill = Fill {
            seq: 6,
            ack: 1,
            win: 65535,
        };
        let p = crate::packet::notation::parse_inject(".").unwrap();
        let s = p.to_segment(&fill, &CTX, None).unwrap();
        assert_eq!((s.seq, s.ack, s.window, s.flags), (6, 1, 65535, Flags::ACK));
        let p = crate::packet::notation::parse_inject("P. 6:11(5) ack 1 <nop,nop,TS val 9 ecr echo>").unwrap();
        let s = p.to_segment(&fill, &CTX, Some(b"hello")).unwrap();
        assert_eq!(s.payload, b"hello");
        assert_eq!(s.options[2], TcpOption::Timestamp { val: 9, ecr: 77 });
        assert_eq!(
            p.to_segment(&fill, &CTX, Some(b"hi")),
            Err(BuildError::PayloadLength { said: 5, actual: 2 })
        );
        assert_eq!(
            p.to_segment(&fill, &Context { mss: 1460, echo: None }, Some(b"hello")),
            Err(BuildError::NoEcho)
        );
    }

    fn ip(tos: u8, ttl: u8, flow_label: u32) -> IpFields {
        IpFields {
            tos,
            ttl,
            flow_label,
            ..IpFields::default()
        }
    }

    fn ip_fields_of(text: &str, got: IpFields) -> Vec<String> {
        parse_expect(text)
            .unwrap()
            .ip_mismatches(&got)
            .into_iter()
            .map(|m| m.to_string())
            .collect()
    }

    #[test]
    fn without_an_annotation_no_ip_field_is_checked() {
        assert!(ip_fields_of(".", ip(0xff, 1, 0xfffff)).is_empty());
    }

    #[test]
    fn an_ecn_codepoint_checks_the_low_two_bits_only() {
        // DSCP 46 with ECT(0), CE, not-ECT.
        assert!(ip_fields_of("[ect0] .", ip(0xba, 64, 0)).is_empty());
        assert!(ip_fields_of("[ce] .", ip(0x03, 64, 0)).is_empty());
        assert!(ip_fields_of("[noecn] .", ip(0xb8, 64, 0)).is_empty());
        assert_eq!(
            ip_fields_of("[ect0] .", ip(0xb8, 64, 0)),
            vec!["ecn: expected ect0, got noecn"]
        );
        assert_eq!(
            ip_fields_of("[ect1] .", ip(0x02, 64, 0)),
            vec!["ecn: expected ect1, got ect0"]
        );
    }

    #[test]
    fn ect01_takes_either_ect() {
        assert!(ip_fields_of("[ect01] .", ip(0x01, 64, 0)).is_empty());
        assert!(ip_fields_of("[ect01] .", ip(0x02, 64, 0)).is_empty());
        assert_eq!(
            ip_fields_of("[ect01] .", ip(0x03, 64, 0)),
            vec!["ecn: expected ect0 or ect1, got ce"]
        );
        assert_eq!(
            ip_fields_of("[ect01] .", ip(0x00, 64, 0)),
            vec!["ecn: expected ect0 or ect1, got noecn"]
        );
    }

    #[test]
    fn tos_ttl_and_flow_label_are_exact() {
        assert!(ip_fields_of("(tos 0xb8, ttl 64, flowlabel 0x12345) .", ip(0xb8, 64, 0x12345)).is_empty());
        assert_eq!(
            ip_fields_of("(tos 0x02, ttl 255, flowlabel 0x12345) .", ip(0xba, 64, 0x54321)),
            vec![
                "tos: expected 0x02, got 0xba",
                "ttl: expected 255, got 64",
                "flowlabel: expected 0x12345, got 0x54321"
            ]
        );
    }

    #[test]
    fn injected_ip_fields_default_what_is_left_out() {
        let fields = |text: &str| crate::packet::notation::parse_inject(text).unwrap().ip_fields(255);
        assert_eq!(fields("."), ip(0, 255, 0));
        assert_eq!(fields("[ce] ."), ip(3, 255, 0));
        assert_eq!(fields("[ect1] ."), ip(1, 255, 0));
        assert_eq!(fields("(tos 0xb9, ttl 7, flowlabel 0xabcde) ."), ip(0xb9, 7, 0xabcde));
        assert!(fields(".").dont_fragment);
    }

    #[test]
    fn accecn_counters_are_compared_field_by_field() {
        let accecn = |counters: Vec<u32>| {
            seg(
                Flags::ACK,
                1,
                1,
                1,
                vec![
                    TcpOption::AccEcn {
                        order: AccEcnOrder::E1bFirst,
                        counters,
                    },
                    TcpOption::Nop,
                ],
            )
        };
        let s = accecn(vec![1, 0, 1]);
        assert!(fields(". <ECN e1b 1 ceb 0 e0b 1,nop>", &s).is_empty());
        assert!(fields(". <ECN e1b any ceb any e0b 1,nop>", &s).is_empty());
        assert_eq!(
            fields(". <ECN e1b 1 ceb 1000 e0b 2,nop>", &s),
            vec!["ECN ceb: expected 1000, got 0", "ECN e0b: expected 2, got 1"]
        );
        assert_eq!(
            fields(". <ECN e0b 1 ceb 0 e1b 1,nop>", &s),
            vec!["options: expected <ECN e0b 1 ceb 0 e1b 1,nop>, got <ECN e1b 1 ceb 0 e0b 1,nop>"]
        );
        assert_eq!(
            fields(". <ECN e1b 1 ceb 0,nop>", &s),
            vec!["options: expected <ECN e1b 1 ceb 0,nop>, got <ECN e1b 1 ceb 0 e0b 1,nop>"]
        );
    }

    #[test]
    fn fast_open_and_md5_compare_their_bytes() {
        let s = seg(
            Flags::SYN | Flags::ACK,
            0,
            1,
            1,
            vec![TcpOption::FastOpen(vec![0xab, 0xcd]), TcpOption::Nop, TcpOption::Nop],
        );
        assert!(fields("S. <FO abcd,nop,nop>", &s).is_empty());
        assert_eq!(
            fields("S. <FO abce,nop,nop>", &s),
            vec!["options: expected <FO abce,nop,nop>, got <FO abcd,nop,nop>"]
        );
        assert!(!fields("S. <FOEXP abcd,nop,nop>", &s).is_empty());
        let s = seg(
            Flags::ACK,
            1,
            1,
            1,
            vec![TcpOption::Md5([7; 16]), TcpOption::Nop, TcpOption::Nop],
        );
        assert!(fields(". <md5 07070707070707070707070707070707,nop,nop>", &s).is_empty());
        assert!(!fields(". <md5 07070707070707070707070707070708,nop,nop>", &s).is_empty());
    }

    #[test]
    fn raw_options_match_typed_ones_with_the_same_bytes() {
        let s = seg(
            Flags::SYN,
            0,
            0,
            1,
            vec![TcpOption::Mss(1460), TcpOption::FastOpen(vec![0xab, 0xcd])],
        );
        assert!(fields("S <opt 2 05b4,opt 34 abcd>", &s).is_empty());
        assert!(fields("S <opt 2 05b4,...>", &s).is_empty());
        assert_eq!(
            fields("S <opt 2 05b5,opt 34 abcd>", &s),
            vec!["options: expected <opt 2 05b5,opt 34 abcd>, got <mss 1460,FO abcd>"]
        );
    }

    #[test]
    fn injected_accecn_counters_must_fit_24_bits() {
        let fill = Fill { seq: 1, ack: 1, win: 1 };
        let p = SegmentPattern {
            options: Some(vec![OptionPattern::AccEcn {
                order: AccEcnOrder::E0bFirst,
                counters: vec![Num::Lit(1), Num::Var(Var::Mss)],
            }]),
            ..SegmentPattern::default()
        };
        assert_eq!(
            p.to_segment(&fill, &CTX, None).unwrap().options,
            vec![TcpOption::AccEcn {
                order: AccEcnOrder::E0bFirst,
                counters: vec![1, 1460]
            }]
        );
        let ctx = Context {
            mss: 1 << 24,
            echo: None,
        };
        assert_eq!(
            p.to_segment(&fill, &ctx, None),
            Err(BuildError::TooBig {
                field: "ECN counter",
                value: 1 << 24,
                bits: 24
            })
        );
    }

    #[test]
    fn filler_is_printable_and_sized() {
        assert_eq!(filler(13), b"tcpconform.tc");
    }
}
