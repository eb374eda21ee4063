//! The packetdrill-like notation for one segment, parsed and printed by the
//! same grammar:
//!
//! ```text
//! S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>
//! S. 0:0(0) ack 1 win any <mss $mss,...>
//! P. 1:6(5) ack 1
//! F. 1:1(0) ack 1
//! R. 0:0(0) ack 1
//! ```
//!
//! `[ip] flags [seq:end(len)] [ack N] [win N] [urg N] [<options>]`. Flags are
//! `F S R P U E W A` (A is AccECN's AE) and `.` for ACK (`-` for none), in
//! any order; an ACE digit `0`-`7` sets AE, CWR and ECE at once (`.5` is
//! `EA.`) and cannot be mixed with `E`, `W` or `A`. Flags print in the fixed
//! order `FSRPUEWA.`. Numbers are relative to the flow's ISNs. A number may
//! be `any` (expectations only) or `$mss`; a TS ecr may be `echo`. Options:
//! `nop`, `eol`, `mss N`, `wscale N`, `sackOK`, `sack L:R ...`,
//! `TS val N ecr N`, `md5 HEX` (16 bytes), `FO [HEX]`, `FOEXP [HEX]`,
//! `ECN e0b N ceb N e1b N` or `ECN e1b N ceb N e0b N` (AccECN: the first
//! counter picks kind 172 or 174; trailing counters may be left out, and
//! `ECN0` / `ECN1` is the option with none), `opt KIND HEX`, `trailing HEX`,
//! and `...` for any run of options (expectations only).
//!
//! The IP fields come first, as packetdrill writes them after the direction:
//! `[ect0]`, `[ect1]`, `[ce]`, `[noecn]`, `[ect01]` (either ECT, expectations
//! only), `(tos 0x02)`, `(ttl 64)`, `(flowlabel 0x12345)`, or several
//! separated by commas, in either bracket. A lone codepoint prints as
//! `[ect0]`, anything else as `(...)`.
//!
//! Errors carry the byte offset of the offending token so the case loader
//! can point at its column.

use std::fmt::{self, Write as _};

use super::frame::Ecn;
use super::pattern::{IpPattern, Num, OptionPattern, SegmentPattern, TosPattern, Var};
use super::tcp::{ACCECN_COUNTER_MAX, AccEcnOrder, Flags, TcpOption, TcpSegment};

/// A notation error at a byte offset of the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NotationError {
    /// Byte offset in the text where the problem starts.
    pub offset: usize,
    /// What is wrong, in one line.
    pub message: String,
}

/// Which direction a pattern is for: expectations allow wildcards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Inject,
    Expect,
}

/// Parses a segment the harness will inject (`any` and `...` are not allowed).
pub fn parse_inject(text: &str) -> Result<SegmentPattern, NotationError> {
    Parser::new(text, Mode::Inject).segment()
}

/// Parses a segment the harness expects from the kernel.
pub fn parse_expect(text: &str) -> Result<SegmentPattern, NotationError> {
    Parser::new(text, Mode::Expect).segment()
}

/// The option names of the notation, as a message lists them.
const OPTION_NAMES: [&str; 16] = [
    "nop", "eol", "mss", "wscale", "sackOK", "sack", "TS", "md5", "FO", "FOEXP", "ECN", "ECN0", "ECN1", "opt",
    "trailing", "...",
];

/// The words of an IP-field list, as a message lists them.
const IP_NAMES: [&str; 8] = ["noecn", "ect0", "ect1", "ce", "ect01", "tos", "ttl", "flowlabel"];

/// The counter names of the AccECN option.
const ACCECN_FIELDS: [&str; 3] = ["e0b", "ceb", "e1b"];

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    mode: Mode,
}

type PResult<T> = std::result::Result<T, NotationError>;

impl<'a> Parser<'a> {
    fn new(text: &'a str, mode: Mode) -> Self {
        Parser { text, pos: 0, mode }
    }

    fn err<T>(&self, offset: usize, message: impl Into<String>) -> PResult<T> {
        Err(NotationError {
            offset,
            message: message.into(),
        })
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.text.len() - trimmed.len();
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect_char(&mut self, c: char, what: &str) -> PResult<()> {
        if self.eat(c) {
            Ok(())
        } else {
            let found = self.describe_next();
            self.err(self.pos, format!("expected `{c}` {what}, found {found}"))
        }
    }

    fn describe_next(&self) -> String {
        let token: String = self
            .rest()
            .chars()
            .take_while(|c| !c.is_whitespace() && !",<>():[]".contains(*c))
            .collect();
        match (token.is_empty(), self.peek()) {
            (false, _) => format!("`{token}`"),
            (true, Some(c)) => format!("`{c}`"),
            (true, None) => "the end of the segment".into(),
        }
    }

    /// A word: letters, digits, `_`, `$` and `.` (for `...`).
    fn word(&mut self) -> (usize, &'a str) {
        self.skip_ws();
        let start = self.pos;
        let len: usize = self
            .rest()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '$' || *c == '.')
            .map(char::len_utf8)
            .sum();
        self.pos += len;
        (start, &self.text[start..start + len])
    }

    fn segment(mut self) -> PResult<SegmentPattern> {
        self.skip_ws();
        if self.rest().is_empty() {
            return self.err(
                0,
                "empty segment: expected flags such as `S`, `S.`, `.`, `F.`, `R.`, `P.` or `-`",
            );
        }
        let ip = self.ip_fields()?;
        self.skip_ws();
        if self.rest().is_empty() {
            return self.err(
                self.pos,
                "expected flags after the IP fields, such as `S`, `S.`, `.`, `F.`, `R.`, `P.` or `-`",
            );
        }
        let mut pattern = SegmentPattern {
            ip,
            flags: self.flags()?,
            ..SegmentPattern::default()
        };
        self.skip_ws();
        if self.starts_number() {
            self.range(&mut pattern)?;
        }
        loop {
            self.skip_ws();
            if self.rest().is_empty() {
                return Ok(pattern);
            }
            if self.peek() == Some('<') {
                if pattern.options.is_some() {
                    return self.err(self.pos, "options are given twice");
                }
                self.pos += 1;
                pattern.options = Some(self.options()?);
                continue;
            }
            let (at, word) = self.word();
            let slot = match word {
                "ack" => &mut pattern.ack,
                "win" => &mut pattern.win,
                "urg" => &mut pattern.urg,
                _ if self.starts_number_at(at) => {
                    return self.err(at, "the sequence range `seq:end(len)` must come right after the flags");
                }
                _ => {
                    self.pos = at;
                    let found = self.describe_next();
                    return self.err(
                        at,
                        format!("expected `ack`, `win`, `urg` or `<options>`, found {found}"),
                    );
                }
            };
            if slot.is_some() {
                return self.err(at, format!("`{word}` is given twice"));
            }
            let max = if word == "ack" { u32::MAX } else { u32::from(u16::MAX) };
            *slot = Some(self.num(word, max, false)?);
        }
    }

    /// `[...]` or `(...)` before the flags, if there is one.
    fn ip_fields(&mut self) -> PResult<IpPattern> {
        let close = match self.peek() {
            Some('[') => ']',
            Some('(') => ')',
            _ => return Ok(IpPattern::default()),
        };
        self.pos += 1;
        let mut ip = IpPattern::default();
        loop {
            let (at, word) = self.word();
            let tos_given = ip.tos.is_some();
            match word {
                "tos" if tos_given => return self.tos_twice(at),
                "tos" => ip.tos = Some(TosPattern::Byte(self.ip_number("tos", 0xff)? as u8)),
                "ttl" if ip.ttl.is_some() => return self.err(at, "`ttl` is given twice"),
                "ttl" => ip.ttl = Some(self.ip_number("ttl", 0xff)? as u8),
                "flowlabel" if ip.flow_label.is_some() => return self.err(at, "`flowlabel` is given twice"),
                "flowlabel" => ip.flow_label = Some(self.ip_number("flowlabel", 0xf_ffff)?),
                "ect01" if self.mode == Mode::Inject => {
                    return self.err(
                        at,
                        "`ect01` can only be used in expected segments; an injected segment needs one codepoint",
                    );
                }
                "ect01" | "noecn" | "ect1" | "ect0" | "ce" if tos_given => return self.tos_twice(at),
                "ect01" => ip.tos = Some(TosPattern::EitherEct),
                "noecn" | "ect1" | "ect0" | "ce" => {
                    ip.tos = Ecn::ALL
                        .iter()
                        .find(|(name, _)| *name == word)
                        .map(|(_, e)| TosPattern::Ecn(*e));
                }
                _ => {
                    self.pos = at;
                    let found = self.describe_next();
                    let hint = crate::case::call::suggest(word, IP_NAMES);
                    return self.err(
                        at,
                        format!(
                            "expected an IP field, found {found}{hint}: expected an ECN codepoint (noecn, ect0, ect1, ce, ect01), `tos`, `ttl` or `flowlabel`"
                        ),
                    );
                }
            }
            if self.eat(close) {
                return Ok(ip);
            }
            if !self.eat(',') {
                let found = self.describe_next();
                return self.err(
                    self.pos,
                    format!("expected `,` or `{close}` in the IP fields, found {found}"),
                );
            }
        }
    }

    fn tos_twice<T>(&self, at: usize) -> PResult<T> {
        self.err(at, "the TOS byte is given twice: give one of `tos` or an ECN codepoint")
    }

    /// A decimal or `0x` hex number up to `max`, for an IP field.
    fn ip_number(&mut self, field: &str, max: u32) -> PResult<u32> {
        self.skip_ws();
        let start = self.pos;
        let token: &str = {
            let n = self.rest().chars().take_while(char::is_ascii_alphanumeric).count();
            &self.rest()[..n]
        };
        let value = match token.strip_prefix("0x").or_else(|| token.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None if token.starts_with(|c: char| c.is_ascii_digit()) => token.parse::<u64>().ok(),
            None => {
                let found = self.describe_next();
                return self.err(start, format!("expected a number for {field}, found {found}"));
            }
        };
        self.pos += token.len();
        match value {
            Some(v) if v <= u64::from(max) => Ok(v as u32),
            Some(_) => self.err(start, format!("{field} {token} is out of range (0..=0x{max:x})")),
            None => self.err(start, format!("`{token}` is not a number for {field}")),
        }
    }

    fn flags(&mut self) -> PResult<Flags> {
        let start = self.pos;
        let word: &str = self.rest().split(char::is_whitespace).next().unwrap_or("");
        self.pos += word.len();
        if word == "-" {
            return Ok(Flags::NONE);
        }
        let mut flags = Flags::NONE;
        let mut ace: Option<char> = None;
        let mut ecn_letter: Option<char> = None;
        for (i, c) in word.char_indices() {
            let at = start + i;
            if let Some(digit) = c.to_digit(8) {
                if let Some(prev) = ace {
                    return self.err(at, format!("two ACE digits `{prev}` and `{c}`: give one digit 0-7"));
                }
                if let Some(letter) = ecn_letter {
                    return self.err(
                        at,
                        format!("the ACE digit `{c}` conflicts with `{letter}`: the digit sets E, W and A itself"),
                    );
                }
                ace = Some(c);
                flags = flags.with_ace(digit as u8);
                continue;
            }
            let Some((_, flag)) = Flags::LETTERS.iter().find(|(l, _)| *l == c) else {
                return self.err(
                    at,
                    format!(
                        "unknown flag `{c}`: flags are F S R P U E W A, `.` for ACK, an ACE digit 0-7, or `-` for none"
                    ),
                );
            };
            if let (Some(digit), 'E' | 'W' | 'A') = (ace, c) {
                return self.err(
                    at,
                    format!("`{c}` conflicts with the ACE digit `{digit}`: the digit sets E, W and A itself"),
                );
            }
            if flags.contains(*flag) {
                return self.err(at, format!("flag `{c}` is given twice"));
            }
            if matches!(c, 'E' | 'W' | 'A') {
                ecn_letter = Some(c);
            }
            flags |= *flag;
        }
        Ok(flags)
    }

    fn starts_number(&self) -> bool {
        self.starts_number_at(self.pos)
    }

    fn starts_number_at(&self, at: usize) -> bool {
        let rest = &self.text[at..];
        rest.starts_with(|c: char| c.is_ascii_digit() || c == '$') || rest.starts_with("any")
    }

    fn range(&mut self, pattern: &mut SegmentPattern) -> PResult<()> {
        let seq_at = self.pos;
        let seq = self.num("seq", u32::MAX, false)?;
        self.expect_char(':', "in `seq:end(len)`")?;
        let end = self.num("end", u32::MAX, false)?;
        self.expect_char('(', "in `seq:end(len)`")?;
        let len = self.num("len", u32::from(u16::MAX), false)?;
        self.expect_char(')', "to close `(len)`")?;
        if let (Num::Lit(s), Num::Lit(e), Num::Lit(l)) = (seq, end, len)
            && s.wrapping_add(l) != e
        {
            return self.err(
                seq_at,
                format!(
                    "{s}:{e}({l}) is inconsistent: end must be seq + len = {}",
                    s.wrapping_add(l)
                ),
            );
        }
        pattern.seq = Some(seq);
        pattern.end = Some(end);
        pattern.len = Some(len);
        Ok(())
    }

    /// A number, `any`, `$var` or (for TS ecr) `echo`.
    fn num(&mut self, field: &str, max: u32, allow_echo: bool) -> PResult<Num> {
        self.skip_ws();
        let start = self.pos;
        let digits: &str = {
            let n = self.rest().chars().take_while(char::is_ascii_digit).count();
            &self.rest()[..n]
        };
        if !digits.is_empty() {
            self.pos += digits.len();
            return match digits.parse::<u64>() {
                Ok(v) if v <= u64::from(max) => Ok(Num::Lit(v as u32)),
                _ => self.err(start, format!("{field} {digits} is out of range (0..={max})")),
            };
        }
        let (at, word) = self.word();
        match word {
            "any" if self.mode == Mode::Expect => Ok(Num::Any),
            "any" => self.err(
                at,
                "`any` can only be used in expected segments; an injected segment needs a value",
            ),
            "echo" if allow_echo => Ok(Num::Echo),
            w if w.starts_with('$') => match Var::ALL.iter().find(|(name, _)| *name == &w[1..]) {
                Some((_, var)) => Ok(Num::Var(*var)),
                None => {
                    let known: Vec<String> = Var::ALL.iter().map(|(n, _)| format!("${n}")).collect();
                    self.err(at, format!("unknown variable `{w}` (known: {})", known.join(", ")))
                }
            },
            _ => {
                self.pos = at;
                let found = self.describe_next();
                let echo = if allow_echo { ", `echo`" } else { "" };
                self.err(
                    at,
                    format!("expected a number, `any`{echo} or `$mss` for {field}, found {found}"),
                )
            }
        }
    }

    fn options(&mut self) -> PResult<Vec<OptionPattern>> {
        let mut options = Vec::new();
        if self.eat('>') {
            return Ok(options);
        }
        loop {
            options.push(self.option()?);
            if self.eat('>') {
                return Ok(options);
            }
            if !self.eat(',') {
                let found = self.describe_next();
                return self.err(
                    self.pos,
                    format!("expected `,` or `>` in the option list, found {found}"),
                );
            }
        }
    }

    fn option(&mut self) -> PResult<OptionPattern> {
        let (at, word) = self.word();
        Ok(match word {
            "nop" => OptionPattern::Nop,
            "eol" => OptionPattern::Eol,
            "sackOK" => OptionPattern::SackPermitted,
            "mss" => OptionPattern::Mss(self.num("mss", u32::from(u16::MAX), false)?),
            "wscale" => OptionPattern::WindowScale(self.num("wscale", u32::from(u8::MAX), false)?),
            "sack" => {
                let mut blocks = Vec::new();
                loop {
                    self.skip_ws();
                    if !self.starts_number() {
                        break;
                    }
                    let left = self.num("sack left", u32::MAX, false)?;
                    self.expect_char(':', "in a SACK block `left:right`")?;
                    blocks.push((left, self.num("sack right", u32::MAX, false)?));
                }
                if blocks.is_empty() {
                    return self.err(self.pos, "`sack` needs at least one block `left:right`");
                }
                OptionPattern::Sack(blocks)
            }
            "TS" => {
                self.keyword("val", "after `TS`")?;
                let val = self.num("TS val", u32::MAX, false)?;
                self.keyword("ecr", "after the TS val")?;
                OptionPattern::Timestamp {
                    val,
                    ecr: self.num("TS ecr", u32::MAX, true)?,
                }
            }
            "opt" => {
                let kind = match self.num("option kind", u32::from(u8::MAX), false)? {
                    Num::Lit(k) => k as u8,
                    _ => return self.err(at, "`opt` needs a literal kind number"),
                };
                OptionPattern::Unknown {
                    kind,
                    data: self.hex()?,
                }
            }
            "md5" => {
                self.skip_ws();
                let hex_at = self.pos;
                let bytes = self.hex()?;
                match <[u8; 16]>::try_from(bytes.as_slice()) {
                    Ok(digest) => OptionPattern::Md5(digest),
                    Err(_) => {
                        return self.err(
                            hex_at,
                            format!(
                                "an MD5 signature is 16 bytes (32 hex digits), found {}; write `opt 19 HEX` for another length",
                                bytes.len()
                            ),
                        );
                    }
                }
            }
            "FO" => OptionPattern::FastOpen(self.hex()?),
            "FOEXP" => OptionPattern::FastOpenExp(self.hex()?),
            "ECN" => self.accecn()?,
            "ECN0" => OptionPattern::AccEcn {
                order: AccEcnOrder::E0bFirst,
                counters: vec![],
            },
            "ECN1" => OptionPattern::AccEcn {
                order: AccEcnOrder::E1bFirst,
                counters: vec![],
            },
            "trailing" => OptionPattern::Trailing(self.hex()?),
            "..." if self.mode == Mode::Expect => OptionPattern::Rest,
            "..." => return self.err(at, "`...` can only be used in expected segments"),
            _ => {
                self.pos = at;
                let found = self.describe_next();
                let hint = crate::case::call::suggest(word, OPTION_NAMES);
                return self.err(
                    at,
                    format!("unknown option {found}{hint}: expected {}", OPTION_NAMES.join(", ")),
                );
            }
        })
    }

    /// The counters after `ECN`: the first one names the kind, the others follow its order.
    fn accecn(&mut self) -> PResult<OptionPattern> {
        let (at, first) = self.word();
        let order = match first {
            "e0b" => AccEcnOrder::E0bFirst,
            "e1b" => AccEcnOrder::E1bFirst,
            _ => {
                self.pos = at;
                let found = self.describe_next();
                return self.err(
                    at,
                    format!(
                        "expected `e0b` or `e1b` after `ECN`, found {found}: the first counter picks the kind; `ECN0` or `ECN1` is the option with no counter"
                    ),
                );
            }
        };
        let names = order.field_names();
        let mut counters = Vec::with_capacity(3);
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                let before = self.pos;
                let (at, word) = self.word();
                if !ACCECN_FIELDS.contains(&word) {
                    self.pos = before;
                    break;
                }
                if word != *name {
                    return self.err(
                        at,
                        format!(
                            "expected `{name}` after `{}` in the AccECN option, found `{word}`: the order is {}",
                            names[i - 1],
                            names.join(" ")
                        ),
                    );
                }
            }
            counters.push(self.num(&format!("ECN {name}"), ACCECN_COUNTER_MAX, false)?);
        }
        Ok(OptionPattern::AccEcn { order, counters })
    }

    fn keyword(&mut self, keyword: &str, context: &str) -> PResult<()> {
        let (at, word) = self.word();
        if word == keyword {
            Ok(())
        } else {
            self.pos = at;
            let found = self.describe_next();
            self.err(at, format!("expected `{keyword}` {context}, found {found}"))
        }
    }

    /// Hex bytes up to the next `,` or `>` (possibly none).
    fn hex(&mut self) -> PResult<Vec<u8>> {
        self.skip_ws();
        let start = self.pos;
        let digits: String = self.rest().chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        self.pos += digits.len();
        if !digits.len().is_multiple_of(2) {
            return self.err(start, format!("hex bytes `{digits}` have an odd number of digits"));
        }
        (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16))
            .collect::<std::result::Result<_, _>>()
            .or_else(|_| self.err(start, "bad hex bytes"))
    }
}

/// Prints a segment (relative numbers) in the notation.
pub fn format_segment(seg: &TcpSegment) -> String {
    let len = u32::try_from(seg.payload.len()).unwrap_or(u32::MAX);
    let mut out = format!("{} {}:{}({})", seg.flags, seg.seq, seg.seq.wrapping_add(len), len);
    if seg.flags.contains(Flags::ACK) || seg.ack != 0 {
        let _ = write!(out, " ack {}", seg.ack);
    }
    let _ = write!(out, " win {}", seg.window);
    if seg.flags.contains(Flags::URG) || seg.urgent != 0 {
        let _ = write!(out, " urg {}", seg.urgent);
    }
    if !seg.options.is_empty() {
        let _ = write!(out, " {}", format_options(&seg.options));
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `FO` or `FO abcd`.
fn with_hex(name: &str, bytes: &[u8]) -> String {
    if bytes.is_empty() {
        name.into()
    } else {
        format!("{name} {}", hex(bytes))
    }
}

/// `ECN e0b 1 ceb 0 e1b 1`, or `ECN0` / `ECN1` with no counter (at most three are printed).
fn accecn(order: AccEcnOrder, counters: &[impl fmt::Display]) -> String {
    if counters.is_empty() {
        return match order {
            AccEcnOrder::E0bFirst => "ECN0".into(),
            AccEcnOrder::E1bFirst => "ECN1".into(),
        };
    }
    let fields: Vec<String> = order
        .field_names()
        .iter()
        .zip(counters)
        .map(|(name, value)| format!("{name} {value}"))
        .collect();
    format!("ECN {}", fields.join(" "))
}

/// Prints an option list as `<mss 1460,sackOK,...>`.
pub fn format_options(options: &[TcpOption]) -> String {
    let items: Vec<String> = options
        .iter()
        .map(|o| match o {
            TcpOption::Eol => "eol".into(),
            TcpOption::Nop => "nop".into(),
            TcpOption::Mss(v) => format!("mss {v}"),
            TcpOption::WindowScale(v) => format!("wscale {v}"),
            TcpOption::SackPermitted => "sackOK".into(),
            TcpOption::Sack(blocks) => {
                let b: Vec<String> = blocks.iter().map(|b| format!("{}:{}", b.left, b.right)).collect();
                format!("sack {}", b.join(" "))
            }
            TcpOption::Timestamp { val, ecr } => format!("TS val {val} ecr {ecr}"),
            TcpOption::Md5(digest) => format!("md5 {}", hex(digest)),
            TcpOption::FastOpen(cookie) => with_hex("FO", cookie),
            TcpOption::FastOpenExp(cookie) => with_hex("FOEXP", cookie),
            TcpOption::AccEcn { order, counters } if counters.len() <= 3 => accecn(*order, counters),
            TcpOption::AccEcn { .. } => {
                // More counters than the notation has names for: print the bytes.
                let bytes = o.to_bytes();
                format!("opt {} {}", bytes[0], hex(&bytes[2..]))
            }
            TcpOption::Unknown { kind, data } if data.is_empty() => format!("opt {kind}"),
            TcpOption::Unknown { kind, data } => format!("opt {kind} {}", hex(data)),
            TcpOption::Trailing(bytes) => format!("trailing {}", hex(bytes)),
        })
        .collect();
    format!("<{}>", items.join(","))
}

/// Prints an option-list pattern as written in a case.
pub fn format_option_patterns(options: &[OptionPattern]) -> String {
    let items: Vec<String> = options
        .iter()
        .map(|o| match o {
            OptionPattern::Eol => "eol".into(),
            OptionPattern::Nop => "nop".into(),
            OptionPattern::Mss(v) => format!("mss {v}"),
            OptionPattern::WindowScale(v) => format!("wscale {v}"),
            OptionPattern::SackPermitted => "sackOK".into(),
            OptionPattern::Sack(blocks) => {
                let b: Vec<String> = blocks.iter().map(|(l, r)| format!("{l}:{r}")).collect();
                format!("sack {}", b.join(" "))
            }
            OptionPattern::Timestamp { val, ecr } => format!("TS val {val} ecr {ecr}"),
            OptionPattern::Md5(digest) => format!("md5 {}", hex(digest)),
            OptionPattern::FastOpen(cookie) => with_hex("FO", cookie),
            OptionPattern::FastOpenExp(cookie) => with_hex("FOEXP", cookie),
            OptionPattern::AccEcn { order, counters } => accecn(*order, counters),
            OptionPattern::Unknown { kind, data } if data.is_empty() => format!("opt {kind}"),
            OptionPattern::Unknown { kind, data } => format!("opt {kind} {}", hex(data)),
            OptionPattern::Trailing(bytes) => format!("trailing {}", hex(bytes)),
            OptionPattern::Rest => "...".into(),
        })
        .collect();
    format!("<{}>", items.join(","))
}

impl fmt::Display for IpPattern {
    /// `[ect0]` for a lone codepoint, `(tos 0x02, ttl 64, flowlabel 0x12345)` otherwise; nothing when empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tos = match self.tos {
            None => None,
            Some(TosPattern::Ecn(ecn)) => Some(ecn.name().to_string()),
            Some(TosPattern::EitherEct) => Some("ect01".to_string()),
            Some(TosPattern::Byte(b)) => Some(format!("tos 0x{b:02x}")),
        };
        let lone_codepoint = matches!(self.tos, Some(TosPattern::Ecn(_) | TosPattern::EitherEct))
            && self.ttl.is_none()
            && self.flow_label.is_none();
        let mut items: Vec<String> = tos.into_iter().collect();
        if lone_codepoint {
            return write!(f, "[{}]", items.join(""));
        }
        items.extend(self.ttl.map(|t| format!("ttl {t}")));
        items.extend(self.flow_label.map(|l| format!("flowlabel 0x{l:05x}")));
        if items.is_empty() {
            return Ok(());
        }
        write!(f, "({})", items.join(", "))
    }
}

impl fmt::Display for SegmentPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.ip.is_empty() {
            write!(f, "{} ", self.ip)?;
        }
        write!(f, "{}", self.flags)?;
        if let (Some(s), Some(e), Some(l)) = (self.seq, self.end, self.len) {
            write!(f, " {s}:{e}({l})")?;
        }
        for (name, value) in [("ack", self.ack), ("win", self.win), ("urg", self.urg)] {
            if let Some(v) = value {
                write!(f, " {name} {v}")?;
            }
        }
        if let Some(options) = &self.options {
            write!(f, " {}", format_option_patterns(options))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::pattern::{Context, Fill};
    use crate::packet::tcp::SackBlock;
    use rstest::rstest;

    #[rstest]
    #[case("S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>")]
    #[case(". 1:1(0) ack 1 win 502")]
    #[case("F. 1:1(0) ack 1 win 502")]
    #[case("R. 0:0(0) ack 1 win 0")]
    #[case("P. 1:6(5) ack 1 win 502")]
    #[case("S. 0:0(0) ack 1 win 64240 <mss 1460,nop,nop,sackOK,nop,wscale 7>")]
    #[case("- 0:0(0) win 0")]
    #[case("FSRPUEW. 7:7(0) ack 9 win 1 urg 3")]
    #[case(". 1:1(0) ack 1 win 9 <nop,nop,sack 5:9 12:20>")]
    #[case(". 1:1(0) ack 1 win 9 <opt 253 deadbeef,opt 30,eol,trailing 0a0b>")]
    #[case("R 4294967295:4294967295(0) win 0")]
    #[case("SEWA 0:0(0) win 65535 <mss 1460,sackOK,nop,nop>")]
    #[case("PEA. 1:1001(1000) ack 1 win 264 <ECN e0b 1 ceb 0 e1b 1,nop>")]
    #[case("SWA. 0:0(0) ack 1 win 1 <mss 1460,ECN e1b 1 ceb 0 e0b 1,nop,nop,nop,sackOK,nop,wscale 8>")]
    #[case(". 1:1(0) ack 1 win 1 <ECN e1b 1001 ceb 0,ECN0,ECN1>")]
    #[case(". 1:1(0) ack 1 win 514 <md5 000102030405060708090a0b0c0d0e0f,nop,nop>")]
    #[case("S 0:10(10) win 32792 <mss 1460,sackOK,nop,nop,FO,nop,nop>")]
    #[case("S. 0:0(0) ack 1 win 1 <FO abcd1234,nop,nop>")]
    #[case("S 0:0(0) win 1 <FOEXP,FOEXP aaaaaaaaaaaaaaaa>")]
    fn printing_and_parsing_round_trip(#[case] text: &str) {
        let pattern = parse_inject(text).unwrap();
        assert_eq!(pattern.to_string(), text);
        let seg = pattern
            .to_segment(&Fill { seq: 0, ack: 0, win: 0 }, &Context::default(), None)
            .unwrap();
        assert_eq!(format_segment(&seg), text);
        assert!(
            parse_expect(text)
                .unwrap()
                .mismatches(&seg, &Context::default())
                .is_empty()
        );
    }

    #[test]
    fn parses_the_full_grammar() {
        let p = parse_expect("S. 0:0(0) ack 1 win any <mss $mss,TS val any ecr echo,sack 1:2,...>").unwrap();
        assert_eq!(p.flags, Flags::SYN | Flags::ACK);
        assert_eq!(
            (p.seq, p.end, p.len, p.ack),
            (
                Some(Num::Lit(0)),
                Some(Num::Lit(0)),
                Some(Num::Lit(0)),
                Some(Num::Lit(1))
            )
        );
        assert_eq!(p.win, Some(Num::Any));
        assert_eq!(
            p.options.unwrap(),
            vec![
                OptionPattern::Mss(Num::Var(Var::Mss)),
                OptionPattern::Timestamp {
                    val: Num::Any,
                    ecr: Num::Echo
                },
                OptionPattern::Sack(vec![(Num::Lit(1), Num::Lit(2))]),
                OptionPattern::Rest,
            ]
        );
    }

    #[test]
    fn fields_may_come_in_any_order_and_be_left_out() {
        let p = parse_expect(". win 5 ack 2").unwrap();
        assert_eq!(
            (p.seq, p.ack, p.win, p.options),
            (None, Some(Num::Lit(2)), Some(Num::Lit(5)), None)
        );
        assert_eq!(parse_expect("S. <>").unwrap().options, Some(vec![]));
    }

    #[rstest]
    #[case("", 0, "empty segment")]
    #[case("X 0:0(0)", 0, "unknown flag `X`")]
    #[case("SS 0:0(0)", 1, "flag `S` is given twice")]
    #[case("S 0:1(0)", 2, "0:1(0) is inconsistent: end must be seq + len = 0")]
    #[case("S 0:0 win 1", 6, "expected `(` in `seq:end(len)`, found `win`")]
    #[case(
        ". ack",
        5,
        "expected a number, `any` or `$mss` for ack, found the end of the segment"
    )]
    #[case(". ack 1 ack 2", 8, "`ack` is given twice")]
    #[case(". win 70000", 6, "win 70000 is out of range (0..=65535)")]
    #[case(". ack 99999999999", 6, "ack 99999999999 is out of range (0..=4294967295)")]
    #[case(
        ". ack 1 1:1(0)",
        8,
        "the sequence range `seq:end(len)` must come right after the flags"
    )]
    #[case(". bogus 1", 2, "expected `ack`, `win`, `urg` or `<options>`, found `bogus`")]
    #[case(
        ". <mss 1460",
        11,
        "expected `,` or `>` in the option list, found the end of the segment"
    )]
    #[case(". <mss>", 6, "expected a number, `any` or `$mss` for mss, found `>`")]
    #[case(". <wscale 300>", 10, "wscale 300 is out of range (0..=255)")]
    #[case(". <TS val 1 ecx 2>", 12, "expected `ecr` after the TS val, found `ecx`")]
    #[case(". <sackok>", 3, "unknown option `sackok` (did you mean `sackOK`?)")]
    #[case(". <sack>", 7, "`sack` needs at least one block")]
    #[case(". <opt 5 abc>", 9, "hex bytes `abc` have an odd number of digits")]
    #[case(". <mss $mtu>", 7, "unknown variable `$mtu` (known: $mss)")]
    #[case(". <mss 1> <nop>", 10, "options are given twice")]
    #[case(". win echo", 6, "expected a number, `any` or `$mss` for win, found `echo`")]
    fn errors_point_at_the_offending_token(#[case] text: &str, #[case] offset: usize, #[case] message: &str) {
        let err = parse_expect(text).unwrap_err();
        assert!(err.message.contains(message), "{text:?}: got {:?}", err.message);
        assert_eq!(err.offset, offset, "{text:?}: {}", err.message);
    }

    #[rstest]
    #[case(".5", Flags::ACK | Flags::AE | Flags::ECE)]
    #[case(".6", Flags::ACK | Flags::AE | Flags::CWR)]
    #[case("F5.", Flags::FIN | Flags::ACK | Flags::AE | Flags::ECE)]
    #[case("P.6", Flags::PSH | Flags::ACK | Flags::AE | Flags::CWR)]
    #[case(".7", Flags::ACK | Flags::AE | Flags::CWR | Flags::ECE)]
    #[case(".0", Flags::ACK)]
    #[case("EAP.", Flags::PSH | Flags::ACK | Flags::AE | Flags::ECE)]
    #[case("WA.", Flags::ACK | Flags::AE | Flags::CWR)]
    #[case("SEWA", Flags::SYN | Flags::ECE | Flags::CWR | Flags::AE)]
    fn ace_digits_and_the_ae_letter_set_bits(#[case] text: &str, #[case] flags: Flags) {
        let p = parse_expect(text).unwrap();
        assert_eq!(p.flags, flags);
        assert_eq!(parse_expect(&p.to_string()).unwrap(), p);
    }

    #[test]
    fn new_options_parse_typed() {
        let p = parse_expect(". <ECN e1b any ceb 1000,FO abcd,FOEXP,md5 000102030405060708090a0b0c0d0e0f>").unwrap();
        assert_eq!(
            p.options.unwrap(),
            vec![
                OptionPattern::AccEcn {
                    order: AccEcnOrder::E1bFirst,
                    counters: vec![Num::Any, Num::Lit(1000)]
                },
                OptionPattern::FastOpen(vec![0xab, 0xcd]),
                OptionPattern::FastOpenExp(vec![]),
                OptionPattern::Md5(std::array::from_fn(|i| i as u8)),
            ]
        );
    }

    #[rstest]
    #[case("[ect0] . 1:1(0) ack 1", Some(TosPattern::Ecn(Ecn::Ect0)), None, None)]
    #[case("[ect1] .", Some(TosPattern::Ecn(Ecn::Ect1)), None, None)]
    #[case(
        "[ce] EAP. 1001:2001(1000) ack 1 win 264",
        Some(TosPattern::Ecn(Ecn::Ce)),
        None,
        None
    )]
    #[case("[noecn] S. 0:0(0) ack 1", Some(TosPattern::Ecn(Ecn::NotEct)), None, None)]
    #[case("[ect01] .", Some(TosPattern::EitherEct), None, None)]
    #[case("(tos 0x02) .", Some(TosPattern::Byte(2)), None, None)]
    #[case("(ttl 64) .", None, Some(64), None)]
    #[case("(flowlabel 0x12345) .", None, None, Some(0x12345))]
    #[case("(tos 0xb8, flowlabel 0x1) .", Some(TosPattern::Byte(0xb8)), None, Some(1))]
    #[case("[ect0, ttl 3] .", Some(TosPattern::Ecn(Ecn::Ect0)), Some(3), None)]
    fn ip_fields_come_before_the_flags(
        #[case] text: &str,
        #[case] tos: Option<TosPattern>,
        #[case] ttl: Option<u8>,
        #[case] flow_label: Option<u32>,
    ) {
        let p = parse_expect(text).unwrap();
        assert_eq!(p.ip, IpPattern { tos, ttl, flow_label });
        assert_eq!(parse_expect(&p.to_string()).unwrap(), p, "{text} printed as {p}");
    }

    #[rstest]
    #[case("[ect0] . 1:1(0) ack 1")]
    #[case("[ect01] .")]
    #[case("(tos 0x02) S 0:0(0)")]
    #[case("(ect0, ttl 3) .")]
    #[case("(tos 0xb8, ttl 255, flowlabel 0x12345) .")]
    fn ip_fields_print_as_written(#[case] text: &str) {
        assert_eq!(parse_expect(text).unwrap().to_string(), text);
    }

    #[rstest]
    #[case("E5.", 1, "the ACE digit `5` conflicts with `E`")]
    #[case(".5A", 2, "`A` conflicts with the ACE digit `5`")]
    #[case(".56", 2, "two ACE digits `5` and `6`")]
    #[case(
        ".8",
        1,
        "unknown flag `8`: flags are F S R P U E W A, `.` for ACK, an ACE digit 0-7"
    )]
    #[case("AA", 1, "flag `A` is given twice")]
    #[case("[ect2] .", 1, "expected an IP field, found `ect2` (did you mean `ect0`?)")]
    #[case("[ect0 .", 6, "expected `,` or `]` in the IP fields, found `.`")]
    #[case("(tos 0x100) .", 5, "tos 0x100 is out of range (0..=0xff)")]
    #[case("(tos zz) .", 5, "expected a number for tos, found `zz`")]
    #[case("(tos 0xzz) .", 5, "`0xzz` is not a number for tos")]
    #[case("(flowlabel 0x100000) .", 11, "flowlabel 0x100000 is out of range (0..=0xfffff)")]
    #[case("[ect0, tos 0x1] .", 7, "the TOS byte is given twice")]
    #[case("(tos 0x1, ce) .", 10, "the TOS byte is given twice")]
    #[case("(ttl 1, ttl 2) .", 8, "`ttl` is given twice")]
    #[case("[ect0]", 6, "expected flags after the IP fields")]
    #[case(". <md5 0001>", 7, "an MD5 signature is 16 bytes (32 hex digits), found 2")]
    #[case(". <FO abc>", 6, "hex bytes `abc` have an odd number of digits")]
    #[case(". <fo>", 3, "unknown option `fo` (did you mean `FO`?)")]
    #[case(". <ECN ceb 0>", 7, "expected `e0b` or `e1b` after `ECN`, found `ceb`")]
    #[case(". <ECN>", 6, "expected `e0b` or `e1b` after `ECN`, found `>`")]
    #[case(
        ". <ECN e0b 1 e1b 1>",
        13,
        "expected `ceb` after `e0b` in the AccECN option, found `e1b`: the order is e0b ceb e1b"
    )]
    #[case(". <ECN e1b 16777216>", 11, "ECN e1b 16777216 is out of range (0..=16777215)")]
    #[case(
        ". <ECN e0b echo>",
        11,
        "expected a number, `any` or `$mss` for ECN e0b, found `echo`"
    )]
    fn new_syntax_errors_point_at_the_offending_token(
        #[case] text: &str,
        #[case] offset: usize,
        #[case] message: &str,
    ) {
        let err = parse_expect(text).unwrap_err();
        assert!(err.message.contains(message), "{text:?}: got {:?}", err.message);
        assert_eq!(err.offset, offset, "{text:?}: {}", err.message);
    }

    #[test]
    fn typed_options_print_in_the_notation() {
        let options = [
            TcpOption::Md5([0xff; 16]),
            TcpOption::FastOpen(vec![]),
            TcpOption::FastOpenExp(vec![1]),
            TcpOption::AccEcn {
                order: AccEcnOrder::E0bFirst,
                counters: vec![1],
            },
            TcpOption::AccEcn {
                order: AccEcnOrder::E0bFirst,
                counters: vec![1, 2, 3, 4],
            },
        ];
        assert_eq!(
            format_options(&options),
            "<md5 ffffffffffffffffffffffffffffffff,FO,FOEXP 01,ECN e0b 1,opt 172 000001000002000003000004>"
        );
    }

    #[rstest]
    #[case(". ack any", "`any` can only be used in expected segments")]
    #[case("[ect01] .", "`ect01` can only be used in expected segments")]
    #[case(". <...>", "`...` can only be used in expected segments")]
    fn wildcards_are_refused_in_injected_segments(#[case] text: &str, #[case] message: &str) {
        assert!(parse_inject(text).unwrap_err().message.contains(message));
    }

    #[test]
    fn sack_blocks_print_as_ranges() {
        let seg = TcpSegment {
            src_port: 0,
            dst_port: 0,
            seq: 1,
            ack: 1,
            flags: Flags::ACK,
            window: 9,
            checksum: 0,
            urgent: 0,
            options: vec![TcpOption::Sack(vec![SackBlock { left: 5, right: 9 }])],
            payload: vec![],
        };
        assert_eq!(format_segment(&seg), ". 1:1(0) ack 1 win 9 <sack 5:9>");
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in [
            "é",
            "S é",
            ". <é>",
            ". ack é",
            "S 0:0(0) <opt",
            ". <TS",
            "S $",
            ". <sack 1:>",
            "\u{0}",
            "[",
            "(",
            "[é",
            "(tos é",
            "(tos 0x",
            "[ect0,",
            ". <ECN e0b",
            ". <ECN e0b 1 ceb",
            ". <md5",
        ] {
            let _ = parse_expect(text);
            let _ = parse_inject(text);
        }
    }
}
