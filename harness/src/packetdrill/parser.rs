//! The packetdrill parser: a script's tokens into the [`ast`](super::ast),
//! by recursive descent over packetdrill's grammar (options, an init
//! command, timed events, a cleanup command), with defines substituted.
//!
//! Errors say what was expected and what was found, at the offending token.
//! After an error in an event the parser skips to the next line that starts
//! with a time outside any bracket, and goes on, so one run reports several
//! independent mistakes; a mistake it cannot step over (an unterminated
//! string, an unclosed bracket) ends the list. Input size and expression
//! nesting are bounded, so no text makes it panic or exhaust the stack.
//!
//! Where packetdrill's grammar is stricter than it needs to be, the parser
//! takes what the script evidently means: `ack`, `win` and `urg` in any
//! order (each once), IP fields combined freely in `[...]` or `(...)`, an
//! errno without a note, any text as a note. One rule is stricter: an errno
//! must be on its result's line, so that a next line missing its time
//! (`close(3) = 0`) is reported as that, not read as an errno and a note.
//! As in packetdrill, a define replaces a whole word outside strings,
//! commands and code, never a keyword of the packet syntax (`ack`, `mss`),
//! and its value is not read again (`-D X=5` gives the word `5`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::ast::{
    AccEcnField, Code, Command, Direction, Ecn, Event, EventKind, EventTime, Expr, ExprKind, Icmp, IcmpQuote, IpInfo,
    Micros, Packet, PacketBody, Script, ScriptOption, SeqRange, Syscall, TcpFlags, TcpOption, TcpOptions, TcpSegment,
};
use super::lexer::{Token, TokenKind, decode_string, lex};
use crate::case::call::suggest;
use crate::case::{CaseError, Diagnostic, Location};

/// Command-line defines (`-D NAME=VALUE`), which win over the script's own `--define=` lines.
pub type Defines = BTreeMap<String, String>;

/// Scripts larger than this are refused before parsing.
const MAX_SCRIPT_BYTES: usize = 1 << 20;
/// Deepest nesting of expressions (`[{[...`) accepted; the corpus needs 6.
const MAX_DEPTH: usize = 64;
/// Most diagnostics reported for one script.
const MAX_DIAGNOSTICS: usize = 20;

/// Words that are keywords in packetdrill's lexer, so never replaced by a define.
const KEYWORDS: &[&str] = &[
    "ack",
    "win",
    "urg",
    "seq",
    "mss",
    "wscale",
    "nop",
    "eol",
    "sack",
    "sackOK",
    "TS",
    "val",
    "ecr",
    "FO",
    "FOEXP",
    "md5",
    "tos",
    "ttl",
    "flowlabel",
    "ect0",
    "ect1",
    "ect01",
    "ce",
    "noecn",
    "icmp",
    "udp",
    "raw",
    "mtu",
    "id",
    "ipv4",
    "ipv6",
    "flags",
    "Flags",
    "ECN",
    "e0b",
    "e1b",
    "ceb",
];

/// The TCP option names, for suggestions.
const TCP_OPTIONS: &[&str] = &[
    "nop", "eol", "mss", "wscale", "sackOK", "sack", "TS", "md5", "FO", "FOEXP", "ECN",
];

/// Parses a script. `file` names it in diagnostics.
pub fn parse(file: &Arc<PathBuf>, text: &str, defines: &Defines) -> Result<Script, CaseError> {
    if text.len() > MAX_SCRIPT_BYTES {
        return Err(CaseError::of_file(
            file.clone(),
            format!(
                "the script is {} bytes; a script is at most {MAX_SCRIPT_BYTES} bytes",
                text.len()
            ),
        ));
    }
    let mut parser = Parser {
        file: file.clone(),
        text,
        tokens: lex(text),
        pos: 0,
        depth: 0,
        diagnostics: Vec::new(),
    };
    let script = parser.script(defines);
    if parser.diagnostics.is_empty() {
        Ok(script)
    } else {
        let mut diagnostics = parser.diagnostics;
        diagnostics.sort_by_key(|d| (d.location.line, d.location.col));
        diagnostics.dedup();
        diagnostics.truncate(MAX_DIAGNOSTICS);
        Err(CaseError { diagnostics })
    }
}

type Parsed<T> = Result<T, Diagnostic>;

/// A define's value as the token it becomes.
fn define_token(value: &str) -> Result<TokenKind, String> {
    if let Some(body) = value.strip_prefix('"') {
        let body = body.strip_suffix('"').unwrap_or(body);
        decode_string(body).map(TokenKind::Str).map_err(|(_, message)| message)
    } else if let Some(body) = value.strip_prefix('`') {
        Ok(TokenKind::Command(body.strip_suffix('`').unwrap_or(body).to_string()))
    } else {
        Ok(TokenKind::Word(value.to_string()))
    }
}

/// User text in a one-line message: control characters escaped, long text cut.
fn shown(text: &str) -> String {
    const MAX: usize = 40;
    let mut out: String = text.chars().take(MAX).flat_map(char::escape_debug).collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    out
}

/// Seconds as written (`1`, `.01`, `0.200`) in microseconds; `None` when too large.
fn micros(text: &str) -> Option<Micros> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let digits: String = fraction.chars().chain(std::iter::repeat('0')).take(6).collect();
    whole.checked_mul(1_000_000)?.checked_add(digits.parse().ok()?)
}

/// A hex blob (cookie or digest) as bytes.
fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

struct Parser<'a> {
    file: Arc<PathBuf>,
    text: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    diagnostics: Vec<Diagnostic>,
}

impl<'a> Parser<'a> {
    // ---- tokens ----

    fn peek(&self) -> &Token {
        self.peek_at(0)
    }

    fn peek_at(&self, n: usize) -> &Token {
        let last = self.tokens.len() - 1;
        &self.tokens[(self.pos + n).min(last)]
    }

    fn next(&mut self) -> Token {
        let token = self.peek().clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    fn is_punct(&self, c: char) -> bool {
        self.peek().kind == TokenKind::Punct(c)
    }

    fn eat_punct(&mut self, c: char) -> bool {
        let found = self.is_punct(c);
        if found {
            self.next();
        }
        found
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(&self.peek().kind, TokenKind::Word(w) if w == word)
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let found = self.is_word(word);
        if found {
            self.next();
        }
        found
    }

    fn token_text(&self, token: &Token) -> &'a str {
        let text: &'a str = self.text;
        text.get(token.start..token.end).unwrap_or("")
    }

    /// The line the `i`th token ends on (strings and commands span lines).
    fn end_line(&self, i: usize) -> u32 {
        let token = &self.tokens[i.min(self.tokens.len() - 1)];
        let newlines = self.token_text(token).matches('\n').count();
        token.line.saturating_add(u32::try_from(newlines).unwrap_or(u32::MAX))
    }

    fn loc(&self, token: &Token) -> Location {
        Location {
            file: self.file.clone(),
            line: token.line,
            col: token.col,
        }
    }

    fn error(&self, token: &Token, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            location: self.loc(token),
            message: message.into(),
        }
    }

    /// Records a problem that does not stop the parse.
    fn report(&mut self, token: &Token, message: impl Into<String>) {
        let diagnostic = self.error(token, message);
        self.diagnostics.push(diagnostic);
    }

    /// How a message names a token.
    fn describe(&self, token: &Token) -> String {
        match &token.kind {
            TokenKind::Word(w) => format!("`{}`", shown(w)),
            TokenKind::Int | TokenKind::Hex | TokenKind::Float => format!("`{}`", shown(self.token_text(token))),
            TokenKind::Str(_) => "a string".into(),
            TokenKind::Command(_) => "a backtick command".into(),
            TokenKind::Code(_) => "a %{ code }% block".into(),
            TokenKind::Opt { name, .. } => format!("`--{name}`"),
            TokenKind::Ellipsis => "`...`".into(),
            TokenKind::Punct(c) if c.is_control() || c.is_whitespace() => {
                format!("the character U+{:04X}", u32::from(*c))
            }
            TokenKind::Punct(c) => format!("`{c}`"),
            TokenKind::Error(m) => m.clone(),
            TokenKind::End => "the end of the script".into(),
        }
    }

    /// "expected WHAT, found X" at the next token; a lexical error there is reported as itself.
    fn expected(&self, what: &str) -> Diagnostic {
        let token = self.peek();
        match &token.kind {
            TokenKind::Error(message) => self.error(token, message.clone()),
            _ => self.error(token, format!("expected {what}, found {}", self.describe(token))),
        }
    }

    fn expect_punct(&mut self, c: char, what: &str) -> Parsed<Token> {
        if self.is_punct(c) {
            Ok(self.next())
        } else {
            Err(self.expected(what))
        }
    }

    // ---- numbers ----

    /// The next token as a non-negative number (decimal or hex) up to `max`;
    /// `field` names it in messages (`` `win` ``, "the source port").
    fn uint(&mut self, field: &str, max: u64) -> Parsed<u64> {
        let token = self.peek().clone();
        let text = self.token_text(&token);
        let value = match token.kind {
            TokenKind::Int => text.parse::<i128>().ok(),
            TokenKind::Hex => u128::from_str_radix(&text[2..], 16)
                .ok()
                .and_then(|v| i128::try_from(v).ok()),
            _ => return Err(self.expected(&format!("a number for {field}"))),
        };
        self.next();
        match value.and_then(|v| u64::try_from(v).ok()) {
            Some(v) if v <= max => Ok(v),
            _ => Err(self.error(
                &token,
                format!("{field} {} is out of range (0..={max})", shown(self.token_text(&token))),
            )),
        }
    }

    fn u32_of(&mut self, what: &str) -> Parsed<u32> {
        self.uint(what, u32::MAX.into()).map(|v| v as u32)
    }

    fn u16_of(&mut self, what: &str) -> Parsed<u16> {
        self.uint(what, u16::MAX.into()).map(|v| v as u16)
    }

    fn u8_of(&mut self, what: &str) -> Parsed<u8> {
        self.uint(what, u8::MAX.into()).map(|v| v as u8)
    }

    /// A time in seconds (`0`, `.1`, `0.200`), as microseconds.
    fn time(&mut self, what: &str) -> Parsed<Micros> {
        let token = self.peek().clone();
        if !matches!(token.kind, TokenKind::Int | TokenKind::Float) {
            return Err(self.expected(what));
        }
        self.next();
        let text = self.token_text(&token);
        if text.starts_with('-') {
            return Err(self.error(&token, format!("a time cannot be negative, found `{}`", shown(text))));
        }
        micros(text).ok_or_else(|| self.error(&token, format!("the time `{}` is too large", shown(text))))
    }

    // ---- script ----

    fn script(&mut self, defines: &Defines) -> Script {
        let mut options = Vec::new();
        let mut script_defines = BTreeMap::new();
        while let TokenKind::Opt { .. } = self.peek().kind {
            let token = self.next();
            if let Some(option) = self.option(&token) {
                if option.name == "define"
                    && let Some((name, value)) = option.value.as_deref().and_then(|v| v.split_once('='))
                {
                    script_defines.insert(name.to_string(), value.to_string());
                }
                options.push(option);
            }
        }
        script_defines.extend(defines.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.substitute(&script_defines);

        let mut script = Script {
            options,
            init_command: None,
            events: Vec::new(),
            cleanup_command: None,
        };
        if let TokenKind::Command(_) = self.peek().kind {
            script.init_command = Some(self.command());
        }
        let mut first = true;
        loop {
            let token = self.peek().clone();
            match &token.kind {
                TokenKind::End => break,
                TokenKind::Error(message) => {
                    let message = message.clone();
                    self.report(&token, message);
                    return script;
                }
                TokenKind::Opt { name, .. } => {
                    let message = format!(
                        "`--{name}` comes too late: options go at the top, before the init command and the first event"
                    );
                    self.report(&token, message);
                    self.next();
                }
                TokenKind::Command(_) if matches!(self.peek_at(1).kind, TokenKind::End | TokenKind::Error(_)) => {
                    script.cleanup_command = Some(self.command());
                }
                TokenKind::Command(_) => {
                    self.report(
                        &token,
                        "a command between events needs a time (`+0` before it); \
                         only the cleanup command, after the last event, has none",
                    );
                    self.next();
                }
                _ => {
                    let start = self.pos;
                    match self.event(first) {
                        Ok(event) => script.events.push(event),
                        Err(diagnostic) => {
                            self.diagnostics.push(diagnostic);
                            if !self.resync(start) {
                                return script;
                            }
                        }
                    }
                    first = false;
                }
            }
            if self.diagnostics.len() >= MAX_DIAGNOSTICS {
                return script;
            }
        }
        if script.events.is_empty() && self.diagnostics.is_empty() {
            let diagnostic = self.expected("an event, such as `0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3`");
            self.diagnostics.push(diagnostic);
        }
        script
    }

    /// `--name[=value]`; `None` (and a diagnostic) when malformed.
    fn option(&mut self, token: &Token) -> Option<ScriptOption> {
        let TokenKind::Opt { name, value } = &token.kind else {
            return None;
        };
        let value = match value.as_deref() {
            Some("") => {
                self.report(token, format!("expected a value after `--{name}=`, found nothing"));
                return None;
            }
            Some(v) => Some(
                v.strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v)
                    .to_string(),
            ),
            None => None,
        };
        if name == "define" {
            let well_formed = value
                .as_deref()
                .and_then(|v| v.split_once('='))
                .is_some_and(|(key, _)| !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            if !well_formed {
                let found = value
                    .as_deref()
                    .map_or("nothing".to_string(), |v| format!("`{}`", shown(v)));
                self.report(token, format!("expected `--define=NAME=VALUE`, found {found}"));
                return None;
            }
        }
        Some(ScriptOption {
            at: self.loc(token),
            name: name.clone(),
            value,
        })
    }

    /// Replaces every word that names a define, after the options, by its value.
    fn substitute(&mut self, defines: &BTreeMap<String, String>) {
        if defines.is_empty() {
            return;
        }
        for i in self.pos..self.tokens.len() {
            let TokenKind::Word(word) = &self.tokens[i].kind else {
                continue;
            };
            let Some(value) = defines.get(word) else {
                continue;
            };
            if KEYWORDS.contains(&word.as_str()) {
                continue;
            }
            match define_token(value) {
                Ok(kind) => self.tokens[i].kind = kind,
                Err(message) => {
                    let message = format!(
                        "the value of the define `{}` is not a valid string: {message}",
                        shown(word)
                    );
                    let token = self.tokens[i].clone();
                    self.report(&token, message);
                }
            }
        }
    }

    /// After an error in the event that starts at token `start`: moves to the
    /// next line that starts with a time (or a command) with every bracket
    /// opened since `start` closed. False when there is none to go on from.
    fn resync(&mut self, start: usize) -> bool {
        let mut depth: i64 = 0;
        let failed_at = self.pos.max(start + 1);
        for i in start..self.tokens.len() {
            let token = &self.tokens[i];
            if i >= failed_at && depth == 0 && i > 0 {
                let starts_line = token.line > self.end_line(i - 1);
                let resumes = match &token.kind {
                    TokenKind::Punct('+' | '*') | TokenKind::Int | TokenKind::Float | TokenKind::Command(_) => {
                        starts_line
                    }
                    TokenKind::End => true,
                    _ => false,
                };
                if resumes {
                    self.pos = i;
                    return true;
                }
            }
            match &token.kind {
                TokenKind::Punct('(' | '[' | '{') => depth += 1,
                TokenKind::Punct(')' | ']' | '}') => depth -= 1,
                TokenKind::Error(message) => {
                    if i >= failed_at {
                        let message = message.clone();
                        let token = token.clone();
                        self.report(&token, message);
                    }
                    return false;
                }
                TokenKind::End => return false,
                _ => {}
            }
        }
        false
    }

    fn command(&mut self) -> Command {
        let token = self.next();
        let text = match &token.kind {
            TokenKind::Command(text) => text.clone(),
            _ => String::new(),
        };
        Command {
            at: self.loc(&token),
            text,
        }
    }

    // ---- events ----

    fn event(&mut self, first: bool) -> Parsed<Event> {
        let time_token = self.peek().clone();
        let time = self.event_time()?;
        if first {
            let at_zero = match time {
                EventTime::Absolute(t) | EventTime::Relative(t) => t == 0,
                EventTime::Any => true,
                // packetdrill checks the start of a range.
                EventTime::AbsoluteRange(t, _) | EventTime::RelativeRange(t, _) => t == 0,
            };
            if !at_zero {
                self.report(&time_token, "the first event must be at time 0");
            }
        }
        let mut end = None;
        let ellipsis = self.peek().clone();
        if ellipsis.kind == TokenKind::Ellipsis {
            self.next();
            end = Some(self.time("the time the call returns after `...`, such as `0.200`")?);
        }
        let token = self.peek().clone();
        let kind = match &token.kind {
            TokenKind::Punct('<' | '>') => EventKind::Packet(self.packet()?),
            TokenKind::Command(_) => EventKind::Command(self.command()),
            TokenKind::Code(text) => {
                let text = text.clone();
                self.next();
                EventKind::Code(Code {
                    at: self.loc(&token),
                    text,
                })
            }
            TokenKind::Word(_) if self.peek_at(1).kind == TokenKind::Punct('(') => {
                EventKind::Syscall(self.syscall(end)?)
            }
            _ => {
                return Err(self.expected(
                    "a packet (`<` or `>`), a system call, a `command` or a %{ code }% block after the time",
                ));
            }
        };
        if end.is_some() && !matches!(kind, EventKind::Syscall(_)) {
            self.report(&ellipsis, "only a system call can have an end time (`...END`)");
        }
        let outbound = matches!(&kind, EventKind::Packet(p) if p.direction == Direction::Outbound);
        if !outbound {
            match time {
                EventTime::Any => self.report(&time_token, "event time `*` can only be used with outbound packets"),
                EventTime::AbsoluteRange(..) | EventTime::RelativeRange(..) => self.report(
                    &time_token,
                    "an event time range can only be used with outbound packets",
                ),
                EventTime::Absolute(_) | EventTime::Relative(_) => {}
            }
        }
        Ok(Event {
            at: self.loc(&time_token),
            time,
            kind,
        })
    }

    /// `T`, `+T`, `*`, `T1~T2`, `+T1~+T2`.
    fn event_time(&mut self) -> Parsed<EventTime> {
        const WHAT: &str = "an event time such as `0`, `+.1` or `*`";
        if self.eat_punct('*') {
            return Ok(EventTime::Any);
        }
        let relative = self.eat_punct('+');
        if !relative && !matches!(self.peek().kind, TokenKind::Int | TokenKind::Float) {
            return Err(self.expected(WHAT));
        }
        let start = self.time(if relative {
            "a time after `+`, such as `+.1`"
        } else {
            WHAT
        })?;
        if !self.is_punct('~') {
            return Ok(if relative {
                EventTime::Relative(start)
            } else {
                EventTime::Absolute(start)
            });
        }
        self.next();
        let end_token = self.peek().clone();
        let end = if relative {
            if !self.eat_punct('+') {
                return Err(
                    self.expected("a relative time such as `+.1` after `~` (both ends of a range are relative)")
                );
            }
            self.time("a time after `+`, such as `+.1`")?
        } else {
            self.time("an absolute time such as `0.1` after `~` (both ends of a range are absolute)")?
        };
        if end < start {
            self.report(&end_token, "the time range is backwards: it ends before it starts");
        }
        Ok(if relative {
            EventTime::RelativeRange(start, end)
        } else {
            EventTime::AbsoluteRange(start, end)
        })
    }

    // ---- packets ----

    fn packet(&mut self) -> Parsed<Packet> {
        let arrow = self.next();
        let direction = if arrow.kind == TokenKind::Punct('<') {
            Direction::Inbound
        } else {
            Direction::Outbound
        };
        let ip = self.ip_info(direction)?;
        let body = if self.is_word("icmp") {
            PacketBody::Icmp(self.icmp()?)
        } else {
            PacketBody::Tcp(self.tcp(direction, &arrow)?)
        };
        Ok(Packet {
            at: self.loc(&arrow),
            direction,
            ip,
            body,
        })
    }

    /// `[ect0]`, `(tos 0x2)`, `[ect1, ttl 64]`, ... after the direction.
    fn ip_info(&mut self, direction: Direction) -> Parsed<IpInfo> {
        let open = self.peek().clone();
        let close = match open.kind {
            TokenKind::Punct('[') => ']',
            TokenKind::Punct('(') => ')',
            _ => return Ok(IpInfo::default()),
        };
        self.next();
        let mut ip = IpInfo {
            at: Some(self.loc(&open)),
            ..IpInfo::default()
        };
        const FIELDS: &[&str] = &["ect0", "ect1", "ce", "noecn", "ect01", "tos", "ttl", "flowlabel"];
        loop {
            let token = self.peek().clone();
            let TokenKind::Word(word) = &token.kind else {
                return Err(self.expected(
                    "an ECN codepoint (`ect0`, `ect1`, `ce`, `noecn`, `ect01`), `tos`, `ttl` or `flowlabel`",
                ));
            };
            let ecn = match word.as_str() {
                "ect0" => Some(Ecn::Ect0),
                "ect1" => Some(Ecn::Ect1),
                "ce" => Some(Ecn::Ce),
                "noecn" => Some(Ecn::NotEct),
                "ect01" => Some(Ecn::Ect01),
                _ => None,
            };
            let conflict = match word.as_str() {
                _ if ecn.is_some() && ip.ecn.is_some() => Some("two ECN codepoints: give one".to_string()),
                _ if ecn.is_some() => ip
                    .tos
                    .map(|_| "give `tos` or an ECN codepoint, not both: both set the TOS byte".into()),
                "tos" => match (ip.tos, ip.ecn) {
                    (Some(_), _) => Some("`tos` is given twice".into()),
                    (None, Some(_)) => Some("give `tos` or an ECN codepoint, not both: both set the TOS byte".into()),
                    (None, None) => None,
                },
                "ttl" => ip.ttl.map(|_| "`ttl` is given twice".into()),
                "flowlabel" => ip.flow_label.map(|_| "`flowlabel` is given twice".into()),
                _ => {
                    let hint = suggest(word, FIELDS);
                    return Err(self.error(
                        &token,
                        format!(
                            "expected an ECN codepoint (`ect0`, `ect1`, `ce`, `noecn`, `ect01`), `tos`, `ttl` or `flowlabel`, found `{}`{hint}",
                            shown(word)
                        ),
                    ));
                }
            };
            if let Some(message) = conflict {
                return Err(self.error(&token, message));
            }
            self.next();
            match word.as_str() {
                "tos" => ip.tos = Some(self.u8_of("`tos`")?),
                "ttl" => ip.ttl = Some(self.u8_of("`ttl`")?),
                "flowlabel" => ip.flow_label = Some(self.uint("`flowlabel`", 0xF_FFFF)? as u32),
                _ => ip.ecn = ecn,
            }
            if ecn == Some(Ecn::Ect01) && direction == Direction::Inbound {
                self.report(&token, "`ect01` can only be used with outbound packets");
            }
            if self.eat_punct(close) {
                return Ok(ip);
            }
            if !self.eat_punct(',') {
                return Err(self.expected(&format!("`,` or `{close}` in the IP fields")));
            }
        }
    }

    fn tcp(&mut self, direction: Direction, arrow: &Token) -> Parsed<TcpSegment> {
        let mut ports = None;
        if self.peek().kind == TokenKind::Int && self.peek_at(1).kind == TokenKind::Punct('>') {
            let src = self.u16_of("the source port")?;
            self.next();
            let dst = self.u16_of("the destination port")?;
            ports = Some((src, dst));
        }
        let flags_token = self.peek().clone();
        let flags = self.flags()?;
        let seq_token = self.peek().clone();
        let seq = self.seq_range()?;
        let (mut ack, mut win, mut urg) = (None, None, None);
        loop {
            let token = self.peek().clone();
            let TokenKind::Word(word) = &token.kind else {
                break;
            };
            let twice = match word.as_str() {
                "ack" => ack.is_some(),
                "win" => win.is_some(),
                "urg" => urg.is_some(),
                _ => break,
            };
            if twice {
                return Err(self.error(&token, format!("`{word}` is given twice")));
            }
            self.next();
            let field = format!("`{word}`");
            match word.as_str() {
                "ack" => ack = Some(self.u32_of(&field)?),
                "win" => win = Some(self.u16_of(&field)?),
                _ => urg = Some(self.u16_of(&field)?),
            }
        }
        if win.is_none() && direction == Direction::Inbound {
            self.report(arrow, "window must be specified for inbound packets");
        }
        let options = if self.is_punct('<') {
            self.tcp_options(direction)?
        } else {
            TcpOptions::None
        };
        Ok(TcpSegment {
            ports,
            flags_at: self.loc(&flags_token),
            flags,
            seq_at: self.loc(&seq_token),
            seq,
            ack,
            win,
            urg,
            options,
        })
    }

    /// `S`, `S.`, `.`, `-`, `SEWA`, `F5.`, `.5`, `P.6`: a word, a dot and a
    /// number as the lexer splits them, glued back together.
    fn flags(&mut self) -> Parsed<TcpFlags> {
        let first = self.peek().clone();
        let mut text = match &first.kind {
            TokenKind::Punct('-') => {
                self.next();
                return Ok(TcpFlags::default());
            }
            TokenKind::Punct('.') => ".".to_string(),
            TokenKind::Float if self.token_text(&first).starts_with('.') => self.token_text(&first).to_string(),
            TokenKind::Word(w) => w.clone(),
            _ => return Err(self.expected("TCP flags such as `S`, `S.`, `P.`, `.` or `-`")),
        };
        self.next();
        if let TokenKind::Word(_) = first.kind {
            let next = self.peek().clone();
            match next.kind {
                TokenKind::Punct('.') => {
                    self.next();
                    text.push('.');
                }
                TokenKind::Float if self.token_text(&next).starts_with('.') => {
                    self.next();
                    text.push_str(self.token_text(&next));
                }
                _ => {}
            }
        }
        let mut flags = TcpFlags::default();
        let mut letters = false;
        for c in text.chars() {
            match c {
                'F' => flags.fin = true,
                'S' => flags.syn = true,
                'R' => flags.rst = true,
                'P' => flags.psh = true,
                '.' => flags.ack = true,
                'U' => flags.urg = true,
                'E' | 'W' | 'A' => {
                    letters = true;
                    match c {
                        'E' => flags.ece = true,
                        'W' => flags.cwr = true,
                        _ => flags.ae = true,
                    }
                }
                '0'..='7' if flags.ace.is_none() => flags.ace = Some(c as u8 - b'0'),
                '0'..='7' => {
                    return Err(self.error(
                        &first,
                        format!("conflicting TCP flags `{}`: two ACE digits", shown(&text)),
                    ));
                }
                _ => {
                    return Err(self.error(
                        &first,
                        format!(
                            "invalid TCP flag `{}` in `{}` (the flags are F S R P . U E W A and one ACE digit 0-7)",
                            c.escape_debug(),
                            shown(&text)
                        ),
                    ));
                }
            }
        }
        if letters && flags.ace.is_some() {
            return Err(self.error(
                &first,
                format!(
                    "conflicting TCP flags `{}`: an ACE digit sets E, W and A itself",
                    shown(&text)
                ),
            ));
        }
        Ok(flags)
    }

    /// `START:END(LEN)`, with END = START + LEN.
    fn seq_range(&mut self) -> Parsed<SeqRange> {
        const WHAT: &str = "a sequence range such as 1:1001(1000)";
        if self.peek().kind != TokenKind::Int {
            return Err(self.expected(WHAT));
        }
        let start = self.u32_of("the start sequence number")?;
        self.expect_punct(':', WHAT)?;
        if self.peek().kind != TokenKind::Int {
            return Err(self.expected(WHAT));
        }
        let end_token = self.peek().clone();
        let end = self.u32_of("the end sequence number")?;
        self.expect_punct('(', WHAT)?;
        if self.peek().kind != TokenKind::Int {
            return Err(self.expected(WHAT));
        }
        let len = self.u32_of("the payload length")?;
        self.expect_punct(')', WHAT)?;
        if u64::from(start) + u64::from(len) != u64::from(end) {
            self.report(
                &end_token,
                format!(
                    "inconsistent sequence range: {start} + {len} is {}, not {end}",
                    u64::from(start) + u64::from(len)
                ),
            );
        }
        Ok(SeqRange { start, end, len })
    }

    /// `<...>`, `<>` or `<opt, opt, ...>`.
    fn tcp_options(&mut self, direction: Direction) -> Parsed<TcpOptions> {
        let open = self.next();
        if self.peek().kind == TokenKind::Ellipsis {
            self.next();
            self.expect_punct('>', "`>` after `<...`")?;
            if direction == Direction::Inbound {
                self.report(&open, "`<...>` (any options) can only be used with outbound packets");
            }
            return Ok(TcpOptions::Any);
        }
        if self.eat_punct('>') {
            return Ok(TcpOptions::None);
        }
        let mut options = Vec::new();
        loop {
            let token = self.peek().clone();
            options.push((self.loc(&token), self.tcp_option()?));
            if self.eat_punct('>') {
                return Ok(TcpOptions::List(options));
            }
            if !self.eat_punct(',') {
                return Err(self.expected("`,` or `>` in the TCP options"));
            }
        }
    }

    fn tcp_option(&mut self) -> Parsed<TcpOption> {
        let token = self.peek().clone();
        let TokenKind::Word(name) = &token.kind else {
            return Err(self.expected("a TCP option such as `mss 1460`, `nop` or `sackOK`"));
        };
        let name = name.clone();
        self.next();
        Ok(match name.as_str() {
            "nop" => TcpOption::Nop,
            "eol" => TcpOption::Eol,
            "sackOK" => TcpOption::SackPermitted,
            "mss" => TcpOption::Mss(self.u16_of("`mss`")?),
            "wscale" => TcpOption::WindowScale(self.u8_of("`wscale`")?),
            "sack" => {
                let mut blocks = Vec::new();
                loop {
                    if self.peek().kind != TokenKind::Int {
                        if blocks.is_empty() {
                            return Err(self.expected("a SACK block such as `1001:2001` after `sack`"));
                        }
                        break;
                    }
                    let left = self.u32_of("a SACK block's left edge")?;
                    self.expect_punct(':', "`:` in a SACK block such as `1001:2001`")?;
                    let right = self.u32_of("a SACK block's right edge")?;
                    blocks.push((left, right));
                }
                TcpOption::Sack(blocks)
            }
            "TS" => {
                if !self.eat_word("val") {
                    return Err(self.expected("`val` after `TS` (`TS val 100 ecr 0`)"));
                }
                let val = self.u32_of("`val`")?;
                if !self.eat_word("ecr") {
                    return Err(self.expected("`ecr` after `TS val N` (`TS val 100 ecr 0`)"));
                }
                let ecr = self.u32_of("`ecr`")?;
                TcpOption::Timestamp { val, ecr }
            }
            "md5" => {
                let digest_token = self.peek().clone();
                let digest = self.hex_blob("an MD5 digest in hex digits after `md5`")?;
                if digest.len() > 16 {
                    return Err(self.error(
                        &digest_token,
                        format!("an MD5 digest has at most 16 bytes, not {}", digest.len()),
                    ));
                }
                TcpOption::Md5(digest)
            }
            "FO" | "FOEXP" => {
                let cookie = if self.is_punct(',') || self.is_punct('>') {
                    Vec::new()
                } else {
                    self.hex_blob(&format!(
                        "a cookie in hex digits (`{name} abcd1234`), `,` or `>` after `{name}`"
                    ))?
                };
                if name == "FO" {
                    TcpOption::FastOpen(cookie)
                } else {
                    TcpOption::FastOpenExp(cookie)
                }
            }
            "ECN" => {
                let mut fields: Vec<(AccEcnField, u32)> = Vec::new();
                loop {
                    let field_token = self.peek().clone();
                    let TokenKind::Word(word) = &field_token.kind else {
                        break;
                    };
                    let field = match word.as_str() {
                        "e0b" => AccEcnField::E0b,
                        "ceb" => AccEcnField::Ceb,
                        "e1b" => AccEcnField::E1b,
                        _ => break,
                    };
                    if fields.iter().any(|(f, _)| *f == field) {
                        return Err(self.error(&field_token, format!("`{word}` is given twice")));
                    }
                    self.next();
                    fields.push((field, self.uint(&format!("`{word}`"), 0xFF_FFFF)? as u32));
                }
                TcpOption::AccEcn(fields)
            }
            other => {
                let hint = suggest(other, TCP_OPTIONS);
                return Err(self.error(&token, format!("unknown TCP option `{}`{hint}", shown(other))));
            }
        })
    }

    /// Hex digits written as a word or a number (`abcd1234`, a define's value).
    fn hex_blob(&mut self, what: &str) -> Parsed<Vec<u8>> {
        let token = self.peek().clone();
        let text = match &token.kind {
            TokenKind::Word(w) => w.clone(),
            TokenKind::Int => self.token_text(&token).to_string(),
            _ => return Err(self.expected(what)),
        };
        self.next();
        hex_bytes(&text).ok_or_else(|| {
            let why = if text.bytes().all(|b| b.is_ascii_hexdigit()) {
                "an odd number of hex digits"
            } else {
                "not hex digits"
            };
            self.error(&token, format!("expected {what}, found `{}` ({why})", shown(&text)))
        })
    }

    /// `icmp TYPE [CODE] [mtu N] [id N] [quote]`.
    fn icmp(&mut self) -> Parsed<Icmp> {
        self.next();
        let type_token = self.peek().clone();
        let TokenKind::Word(type_name) = &type_token.kind else {
            return Err(self.expected("an ICMP type such as `unreachable`"));
        };
        let type_name = (self.loc(&type_token), type_name.clone());
        self.next();
        let mut code_name = None;
        let code_token = self.peek().clone();
        if let TokenKind::Word(code) = &code_token.kind
            && code != "mtu"
            && code != "id"
        {
            code_name = Some((self.loc(&code_token), code.clone()));
            self.next();
        }
        let (mut mtu, mut id) = (None, None);
        loop {
            let token = self.peek().clone();
            if self.eat_word("mtu") {
                if mtu.is_some() {
                    return Err(self.error(&token, "`mtu` is given twice"));
                }
                mtu = Some(self.u32_of("`mtu`")?);
            } else if self.eat_word("id") {
                if id.is_some() {
                    return Err(self.error(&token, "`id` is given twice"));
                }
                id = Some(self.u16_of("`id`")?);
            } else {
                break;
            }
        }
        let mut quote = IcmpQuote::Default;
        if self.eat_punct('[') {
            const WHAT: &str =
                "the quoted packet: a sequence range such as `[1:1001(1000)]`, `[udp (N)]` or `[raw (N)]`";
            let token = self.peek().clone();
            quote = match &token.kind {
                TokenKind::Int => IcmpQuote::Tcp(self.seq_range()?),
                TokenKind::Word(w) if w == "udp" || w == "raw" => {
                    let udp = w == "udp";
                    self.next();
                    self.expect_punct(
                        '(',
                        &format!("`(` and a length after `{}`", if udp { "udp" } else { "raw" }),
                    )?;
                    let len = self.u32_of("the length")?;
                    self.expect_punct(')', "`)` after the length")?;
                    if udp { IcmpQuote::Udp(len) } else { IcmpQuote::Raw(len) }
                }
                _ => return Err(self.expected(WHAT)),
            };
            self.expect_punct(']', "`]` after the quoted packet")?;
        }
        Ok(Icmp {
            type_name,
            code_name,
            mtu,
            id,
            quote,
        })
    }

    // ---- system calls ----

    /// `name(args) = result [ERRNO] [(note)]`.
    fn syscall(&mut self, end: Option<Micros>) -> Parsed<Syscall> {
        let name_token = self.next();
        let name = match &name_token.kind {
            TokenKind::Word(w) => w.clone(),
            _ => String::new(),
        };
        self.next();
        let args = self.list(')', "the arguments")?;
        if !self.eat_punct('=') {
            return Err(self.expected(&format!("`=` and the result after `{}(...)`", shown(&name))));
        }
        let result_token = self.peek().clone();
        let result = match &result_token.kind {
            // A word result is never a call: `= -1 ENOENT(...)` has its errno after the result.
            TokenKind::Word(w) => {
                let w = w.clone();
                self.next();
                Expr {
                    at: self.loc(&result_token),
                    kind: ExprKind::Word(w),
                }
            }
            _ => self.expr()?,
        };
        let mut errno = None;
        let errno_token = self.peek().clone();
        // On the result's line only: a word on the next line is a mistake
        // there (an event without its time), better reported as itself.
        if let TokenKind::Word(w) = &errno_token.kind
            && errno_token.line == self.end_line(self.pos - 1)
        {
            errno = Some((self.loc(&errno_token), w.clone()));
            self.next();
        }
        let mut note = None;
        let open = self.peek().clone();
        if open.kind == TokenKind::Punct('(') {
            self.next();
            let mut depth = 0usize;
            loop {
                let token = self.next();
                match &token.kind {
                    TokenKind::Punct('(') => depth += 1,
                    TokenKind::Punct(')') if depth == 0 => {
                        let text = self.text.get(open.end..token.start).unwrap_or("");
                        note = Some(text.trim().to_string());
                        break;
                    }
                    TokenKind::Punct(')') => depth -= 1,
                    TokenKind::Error(message) => return Err(self.error(&token, message.clone())),
                    TokenKind::End => return Err(self.error(&open, "unterminated note: `(` without `)`")),
                    _ => {}
                }
            }
        }
        Ok(Syscall {
            at: self.loc(&name_token),
            end,
            name,
            args,
            result,
            errno,
            note,
        })
    }

    /// Expressions separated by commas up to `close`, the opening bracket already read.
    fn list(&mut self, close: char, what: &str) -> Parsed<Vec<Expr>> {
        let mut items = Vec::new();
        if self.eat_punct(close) {
            return Ok(items);
        }
        loop {
            items.push(self.expr()?);
            if self.eat_punct(close) {
                return Ok(items);
            }
            if !self.eat_punct(',') {
                return Err(self.expected(&format!("`,` or `{close}` in {what}")));
            }
        }
    }

    /// `a|b|c`, or one value.
    fn expr(&mut self) -> Parsed<Expr> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(
                self.peek(),
                format!("expressions nest too deeply (more than {MAX_DEPTH} levels)"),
            ));
        }
        self.depth += 1;
        let result = self.or_expr();
        self.depth -= 1;
        result
    }

    fn or_expr(&mut self) -> Parsed<Expr> {
        let first = self.value()?;
        if !self.is_punct('|') {
            return Ok(first);
        }
        let at = first.at.clone();
        let mut items = vec![first];
        while self.eat_punct('|') {
            items.push(self.value()?);
        }
        Ok(Expr {
            at,
            kind: ExprKind::Or(items),
        })
    }

    /// `...`, a number, a word, a string, `[...]`, `{...}`, `name=value`,
    /// `name(count)=value` or `f(args)`.
    fn value(&mut self) -> Parsed<Expr> {
        let token = self.peek().clone();
        let kind = match &token.kind {
            TokenKind::Ellipsis => {
                self.next();
                ExprKind::Ellipsis
            }
            TokenKind::Int | TokenKind::Hex => {
                self.next();
                let text = self.token_text(&token);
                let value = match text.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16).ok().and_then(|v| i64::try_from(v).ok()),
                    None => text.parse::<i64>().ok(),
                };
                match value {
                    Some(v) => ExprKind::Int(v),
                    None => return Err(self.error(&token, format!("the number `{}` is too large", shown(text)))),
                }
            }
            TokenKind::Str(bytes) => {
                let bytes = bytes.clone();
                self.next();
                ExprKind::Str(bytes)
            }
            TokenKind::Punct('[') => {
                self.next();
                ExprKind::List(self.list(']', "the list")?)
            }
            TokenKind::Punct('{') => {
                self.next();
                ExprKind::Struct(self.list('}', "the struct")?)
            }
            TokenKind::Word(name) => {
                let name = name.clone();
                self.next();
                if self.eat_punct('(') {
                    let args = self.list(')', &format!("the arguments of `{}`", shown(&name)))?;
                    if self.eat_punct('=') {
                        let [count] = <[Expr; 1]>::try_from(args).map_err(|_| {
                            self.error(
                                &token,
                                format!(
                                    "`{}(...)=` takes one count in the parentheses, as in `msg_iov(1)=`",
                                    shown(&name)
                                ),
                            )
                        })?;
                        ExprKind::Field {
                            name,
                            count: Some(Box::new(count)),
                            value: Box::new(self.expr()?),
                        }
                    } else {
                        ExprKind::Call { name, args }
                    }
                } else if self.eat_punct('=') {
                    ExprKind::Field {
                        name,
                        count: None,
                        value: Box::new(self.expr()?),
                    }
                } else {
                    ExprKind::Word(name)
                }
            }
            _ => {
                return Err(self.expected("a value (a number, a name, a \"string\", `...`, `[...]` or `{...}`)"));
            }
        };
        Ok(Expr {
            at: self.loc(&token),
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rstest::rstest;

    use super::*;

    fn file() -> Arc<PathBuf> {
        Arc::new(PathBuf::from("t.pkt"))
    }

    #[track_caller]
    fn ok(text: &str) -> Script {
        ok_with(text, &Defines::new())
    }

    #[track_caller]
    fn ok_with(text: &str, defines: &Defines) -> Script {
        match parse(&file(), text, defines) {
            Ok(script) => script,
            Err(e) => panic!("{text:?}:\n{e}"),
        }
    }

    #[track_caller]
    fn errors(text: &str) -> Vec<(u32, u32, String)> {
        let e = parse(&file(), text, &Defines::new()).expect_err(text);
        e.diagnostics
            .into_iter()
            .map(|d| (d.location.line, d.location.col, d.message))
            .collect()
    }

    /// The only event of `0 ...`.
    #[track_caller]
    fn event(line: &str) -> EventKind {
        let mut script = ok(&format!("0 {line}"));
        assert_eq!(script.events.len(), 1, "{line}");
        script.events.remove(0).kind
    }

    #[track_caller]
    fn segment(line: &str) -> TcpSegment {
        match event(line) {
            EventKind::Packet(Packet {
                body: PacketBody::Tcp(tcp),
                ..
            }) => tcp,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[track_caller]
    fn syscall(line: &str) -> Syscall {
        match event(line) {
            EventKind::Syscall(call) => call,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[track_caller]
    fn options(line: &str) -> Vec<TcpOption> {
        match segment(line).options {
            TcpOptions::List(list) => list.into_iter().map(|(_, o)| o).collect(),
            other => panic!("{line}: {other:?}"),
        }
    }

    /// An expression without its locations, for comparing shapes.
    fn shape(e: &Expr) -> String {
        let list = |items: &[Expr]| items.iter().map(shape).collect::<Vec<_>>().join(", ");
        match &e.kind {
            ExprKind::Ellipsis => "...".into(),
            ExprKind::Int(n) => n.to_string(),
            ExprKind::Word(w) => w.clone(),
            ExprKind::Str(b) => format!("{:?}", String::from_utf8_lossy(b)),
            ExprKind::Or(items) => items.iter().map(shape).collect::<Vec<_>>().join("|"),
            ExprKind::List(items) => format!("[{}]", list(items)),
            ExprKind::Struct(items) => format!("{{{}}}", list(items)),
            ExprKind::Field { name, count, value } => match count {
                Some(c) => format!("{name}({})={}", shape(c), shape(value)),
                None => format!("{name}={}", shape(value)),
            },
            ExprKind::Call { name, args } => format!("{name}<{}>", list(args)),
        }
    }

    fn defines(pairs: &[(&str, &str)]) -> Defines {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    // ---- script structure ----

    #[test]
    fn a_script_has_options_commands_and_events() {
        let script = ok("// a test\n\
             --tolerance_usecs=7000\n\
             --ip_version=ipv4 --local_ip=192.0.2.1\n\
             --quiet\t// a flag\n\
             --name=\"a b\"\n\
             `./setup.sh\n  --more`\n\
             0 close(3) = 0\n\
             +0 `echo \"hi\"`\n\
             `./cleanup.sh`\n");
        let opts: Vec<(&str, Option<&str>)> = script
            .options
            .iter()
            .map(|o| (o.name.as_str(), o.value.as_deref()))
            .collect();
        assert_eq!(
            opts,
            vec![
                ("tolerance_usecs", Some("7000")),
                ("ip_version", Some("ipv4")),
                ("local_ip", Some("192.0.2.1")),
                ("quiet", None),
                ("name", Some("a b")),
            ]
        );
        assert_eq!((script.options[1].at.line, script.options[1].at.col), (3, 1));
        let init = script.init_command.unwrap();
        assert_eq!(
            (init.text.as_str(), init.at.line, init.at.col),
            ("./setup.sh\n  --more", 6, 1)
        );
        assert_eq!(script.events.len(), 2);
        assert!(matches!(&script.events[1].kind, EventKind::Command(c) if c.text == "echo \"hi\""));
        assert_eq!(script.cleanup_command.unwrap().text, "./cleanup.sh");
    }

    #[test]
    fn whitespace_and_comments_are_free() {
        let script =
            ok("0 socket(...,\r\n  SOCK_STREAM, /* a\n comment */ IPPROTO_TCP)\r\n = 3 // end\r\n+0 close(3)\n=\n0");
        assert_eq!(script.events.len(), 2);
        assert_eq!((script.events[1].at.line, script.events[1].at.col), (5, 1));
        let EventKind::Syscall(call) = &script.events[0].kind else {
            panic!()
        };
        assert_eq!(call.args.len(), 3);
        assert_eq!((call.args[2].at.line, call.args[2].at.col), (3, 13));
    }

    #[test]
    fn code_blocks_are_kept_verbatim_and_trimmed() {
        let script = ok("0 %{ assert x == 1 }%\n+0\t%{\nif a % 2: b = {1: 2}\n}%  \n");
        let texts: Vec<&str> = script
            .events
            .iter()
            .map(|e| match &e.kind {
                EventKind::Code(c) => c.text.as_str(),
                _ => "",
            })
            .collect();
        assert_eq!(texts, vec!["assert x == 1", "\nif a % 2: b = {1: 2}\n"]);
    }

    #[test]
    fn script_defines_give_way_to_command_line_ones() {
        let text = "--define=A=from_script\n--define=B=SOL_IP\n--define=S=\"x\\x41\"\n\
                    0 f(A, B, C, S, \"A\", ack, A_B) = 0\n+0 `echo A`\n+0 %{ A }%";
        let script = ok_with(text, &defines(&[("A", "from_cli"), ("C", "3021b9d889017eeb")]));
        let EventKind::Syscall(call) = &script.events[0].kind else {
            panic!()
        };
        let args: Vec<String> = call.args.iter().map(shape).collect();
        assert_eq!(
            args,
            vec![
                "from_cli",
                "SOL_IP",
                "3021b9d889017eeb",
                "\"xA\"",
                "\"A\"",
                "ack",
                "A_B"
            ]
        );
        assert!(matches!(&script.events[1].kind, EventKind::Command(c) if c.text == "echo A"));
        assert!(matches!(&script.events[2].kind, EventKind::Code(c) if c.text == "A"));
        assert_eq!(script.options[0].value.as_deref(), Some("A=from_script"));
    }

    #[test]
    fn a_define_fills_a_cookie() {
        let (_, col, message) = &errors("0 > S. 0:0(0) ack 1 <mss 1460,sackOK,nop,nop, FO COOKIE,nop,nop>")[0];
        assert_eq!(*col, 50);
        assert!(message.ends_with("found `COOKIE` (not hex digits)"), "{message}");
        let script = ok_with(
            "0 > S. 0:0(0) ack 1 <FO COOKIE,nop,nop>",
            &defines(&[("COOKIE", "3021b9d889017eeb")]),
        );
        let EventKind::Packet(Packet {
            body: PacketBody::Tcp(tcp),
            ..
        }) = &script.events[0].kind
        else {
            panic!()
        };
        let TcpOptions::List(list) = &tcp.options else { panic!() };
        assert_eq!(
            list[0].1,
            TcpOption::FastOpen(vec![0x30, 0x21, 0xb9, 0xd8, 0x89, 0x01, 0x7e, 0xeb])
        );
    }

    // ---- times ----

    #[rstest]
    #[case("0", EventTime::Absolute(0))]
    #[case("+0", EventTime::Relative(0))]
    #[case("+.1", EventTime::Relative(100_000))]
    #[case("+0.05", EventTime::Relative(50_000))]
    #[case("+1", EventTime::Relative(1_000_000))]
    #[case("+2.0000019", EventTime::Relative(2_000_001))]
    #[case("*", EventTime::Any)]
    #[case("+0~+.04", EventTime::RelativeRange(0, 40_000))]
    #[case("+.3~+.310", EventTime::RelativeRange(300_000, 310_000))]
    #[case("1~2.5", EventTime::AbsoluteRange(1_000_000, 2_500_000))]
    fn times_are_microseconds(#[case] time: &str, #[case] expected: EventTime) {
        let script = ok(&format!("0 close(3) = 0\n{time} > . 1:1(0) ack 1"));
        assert_eq!(script.events[1].time, expected);
    }

    #[rstest]
    #[case("+0...0.200", 0, Some(200_000))]
    #[case("+.1...0.200", 100_000, Some(200_000))]
    #[case("+.002 ... 0.052", 2_000, Some(52_000))]
    #[case("+0...0", 0, Some(0))]
    #[case("+0", 0, None)]
    fn blocking_calls_have_an_end(#[case] time: &str, #[case] start: Micros, #[case] end: Option<Micros>) {
        let script = ok(&format!("0 close(3) = 0\n{time} connect(4, ..., ...) = 0"));
        assert_eq!(script.events[1].time, EventTime::Relative(start));
        let EventKind::Syscall(call) = &script.events[1].kind else {
            panic!()
        };
        assert_eq!(call.end, end);
    }

    // ---- packets ----

    #[rstest]
    #[case("S", TcpFlags { syn: true, ..TcpFlags::default() })]
    #[case("S.", TcpFlags { syn: true, ack: true, ..TcpFlags::default() })]
    #[case(".", TcpFlags { ack: true, ..TcpFlags::default() })]
    #[case("-", TcpFlags::default())]
    #[case("R", TcpFlags { rst: true, ..TcpFlags::default() })]
    #[case("PU.", TcpFlags { psh: true, urg: true, ack: true, ..TcpFlags::default() })]
    #[case("SEWA", TcpFlags { syn: true, ece: true, cwr: true, ae: true, ..TcpFlags::default() })]
    #[case("EAP.", TcpFlags { ece: true, ae: true, psh: true, ack: true, ..TcpFlags::default() })]
    #[case("F5.", TcpFlags { fin: true, ack: true, ace: Some(5), ..TcpFlags::default() })]
    #[case(".5", TcpFlags { ack: true, ace: Some(5), ..TcpFlags::default() })]
    #[case("P.6", TcpFlags { psh: true, ack: true, ace: Some(6), ..TcpFlags::default() })]
    #[case("F.5", TcpFlags { fin: true, ack: true, ace: Some(5), ..TcpFlags::default() })]
    #[case("S0", TcpFlags { syn: true, ace: Some(0), ..TcpFlags::default() })]
    fn flags_are_glued_back_together(#[case] flags: &str, #[case] expected: TcpFlags) {
        let tcp = segment(&format!("> {flags} 1:1(0)"));
        assert_eq!(tcp.flags, expected);
        assert_eq!((tcp.flags_at.line, tcp.flags_at.col), (1, 5));
        assert_eq!(tcp.seq_at.col, 6 + flags.len() as u32);
    }

    #[test]
    fn a_segment_has_its_fields() {
        let tcp = segment("< 40000>8080 U. 1:101(100) ack 4294967295 win 65535 urg 100");
        assert_eq!(tcp.ports, Some((40000, 8080)));
        assert_eq!(
            tcp.seq,
            SeqRange {
                start: 1,
                end: 101,
                len: 100
            }
        );
        assert_eq!((tcp.ack, tcp.win, tcp.urg), (Some(4294967295), Some(65535), Some(100)));
        assert_eq!(tcp.options, TcpOptions::None);
        let tcp = segment("> . 1:1(0) ack 1");
        assert_eq!((tcp.ports, tcp.win), (None, None));
        assert_eq!(segment("> . 1:1(0) <...>").options, TcpOptions::Any);
        assert_eq!(segment("< . 1:1(0) win 1 <>").options, TcpOptions::None);
    }

    #[rstest]
    #[case("[ect0]", Some(Ecn::Ect0), None, None, None)]
    #[case("[ect1]", Some(Ecn::Ect1), None, None, None)]
    #[case("[ce]", Some(Ecn::Ce), None, None, None)]
    #[case("[noecn]", Some(Ecn::NotEct), None, None, None)]
    #[case("(tos 0x2)", None, Some(2), None, None)]
    #[case("(ttl 64)", None, None, Some(64), None)]
    #[case("(flowlabel 0x12345)", None, None, None, Some(0x12345))]
    #[case("(tos 0xb8, flowlabel 0x1)", None, Some(0xb8), None, Some(1))]
    #[case("[ect0, ttl 1]", Some(Ecn::Ect0), None, Some(1), None)]
    fn ip_fields_follow_the_direction(
        #[case] info: &str,
        #[case] ecn: Option<Ecn>,
        #[case] tos: Option<u8>,
        #[case] ttl: Option<u8>,
        #[case] flow_label: Option<u32>,
    ) {
        let EventKind::Packet(packet) = event(&format!("< {info} . 1:1(0) win 1")) else {
            panic!()
        };
        assert_eq!((packet.at.line, packet.at.col), (1, 3));
        assert_eq!(packet.ip.at.map(|at| at.col), Some(5));
        assert_eq!(
            (packet.ip.ecn, packet.ip.tos, packet.ip.ttl, packet.ip.flow_label),
            (ecn, tos, ttl, flow_label)
        );
        let EventKind::Packet(packet) = event("> [ect01] . 1:1(0)") else {
            panic!()
        };
        assert_eq!(packet.ip.ecn, Some(Ecn::Ect01));
    }

    #[test]
    fn tcp_options_are_listed_in_order() {
        assert_eq!(
            options("> S 0:0(0) <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 8, eol>"),
            vec![
                TcpOption::Mss(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamp { val: 100, ecr: 0 },
                TcpOption::Nop,
                TcpOption::WindowScale(8),
                TcpOption::Eol,
            ]
        );
        assert_eq!(
            options("< . 1:1(0) win 1 <nop, nop, sack 1001:2001 3001:4001>"),
            vec![
                TcpOption::Nop,
                TcpOption::Nop,
                TcpOption::Sack(vec![(1001, 2001), (3001, 4001)])
            ]
        );
        assert_eq!(
            options("< . 1:1(0) win 1 <md5 000102030405060708090a0b0c0d0e0f,FO,FO abcd1234,FOEXP,FOEXP 12345678>"),
            vec![
                TcpOption::Md5((0..16).collect()),
                TcpOption::FastOpen(vec![]),
                TcpOption::FastOpen(vec![0xab, 0xcd, 0x12, 0x34]),
                TcpOption::FastOpenExp(vec![]),
                TcpOption::FastOpenExp(vec![0x12, 0x34, 0x56, 0x78]),
            ]
        );
        use AccEcnField::*;
        assert_eq!(
            options("> . 1:1(0) <ECN e1b 1 ceb 0 e0b 16777215,ECN e0b 1 ceb 2 e1b 3,ECN e1b 1 ceb 0>"),
            vec![
                TcpOption::AccEcn(vec![(E1b, 1), (Ceb, 0), (E0b, 16777215)]),
                TcpOption::AccEcn(vec![(E0b, 1), (Ceb, 2), (E1b, 3)]),
                TcpOption::AccEcn(vec![(E1b, 1), (Ceb, 0)]),
            ]
        );
        let TcpOptions::List(list) = segment("> S 0:0(0) <mss 1,\n  nop>").options else {
            panic!()
        };
        assert_eq!((list[1].0.line, list[1].0.col), (2, 3));
    }

    #[rstest]
    #[case("icmp unreachable frag_needed mtu 1200 [1:1461(1460)]", "unreachable", Some("frag_needed"), Some(1200), None, IcmpQuote::Tcp(SeqRange { start: 1, end: 1461, len: 1460 }))]
    #[case("icmp packet_too_big mtu 1280 [1:1461(1460)]", "packet_too_big", None, Some(1280), None, IcmpQuote::Tcp(SeqRange { start: 1, end: 1461, len: 1460 }))]
    #[case("icmp unreachable [5000:6000(1000)]", "unreachable", None, None, None, IcmpQuote::Tcp(SeqRange { start: 5000, end: 6000, len: 1000 }))]
    #[case("icmp unreachable host_unreachable [0:10(10)]", "unreachable", Some("host_unreachable"), None, None, IcmpQuote::Tcp(SeqRange { start: 0, end: 10, len: 10 }))]
    #[case("icmp echo_reply id 7", "echo_reply", None, None, Some(7), IcmpQuote::Default)]
    #[case(
        "icmp type_3 code_3 [udp (8)]",
        "type_3",
        Some("code_3"),
        None,
        None,
        IcmpQuote::Udp(8)
    )]
    #[case("icmp unreachable [raw (4)]", "unreachable", None, None, None, IcmpQuote::Raw(4))]
    fn icmp_messages_keep_their_names(
        #[case] body: &str,
        #[case] type_name: &str,
        #[case] code_name: Option<&str>,
        #[case] mtu: Option<u32>,
        #[case] id: Option<u16>,
        #[case] quote: IcmpQuote,
    ) {
        let EventKind::Packet(Packet {
            body: PacketBody::Icmp(icmp),
            ..
        }) = event(&format!("< {body}"))
        else {
            panic!()
        };
        assert_eq!(icmp.type_name.1, type_name);
        assert_eq!(icmp.type_name.0.col, 10);
        assert_eq!(icmp.code_name.map(|(_, c)| c).as_deref(), code_name);
        assert_eq!((icmp.mtu, icmp.id, icmp.quote), (mtu, id, quote));
    }

    // ---- system calls ----

    #[rstest]
    #[case("close(3) = 0", "0", None, None)]
    #[case(
        "connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)",
        "-1",
        Some("EINPROGRESS"),
        Some("Operation now in progress")
    )]
    #[case(
        "read(3, ..., 1) = -1 ECONNRESET(Connection reset by peer)",
        "-1",
        Some("ECONNRESET"),
        Some("Connection reset by peer")
    )]
    #[case(
        "setsockopt(3, SOL_TCP, TCP_FASTOPEN_KEY, \"\", 0) = -1 (Invalid Argument)",
        "-1",
        None,
        Some("Invalid Argument")
    )]
    #[case("fcntl(3, F_GETFL) = 0x2 (flags O_RDWR)", "2", None, Some("flags O_RDWR"))]
    #[case("sendto(4, NULL, 1, MSG_FASTOPEN, ..., ...) = -1", "-1", None, None)]
    #[case("read(3, ..., 1) = -1 EAGAIN", "-1", Some("EAGAIN"), None)]
    fn results_carry_an_errno_and_a_note(
        #[case] line: &str,
        #[case] result: &str,
        #[case] errno: Option<&str>,
        #[case] note: Option<&str>,
    ) {
        let call = syscall(line);
        assert_eq!(shape(&call.result), result);
        assert_eq!(call.errno.map(|(_, e)| e).as_deref(), errno);
        assert_eq!(call.note.as_deref(), note);
    }

    #[rstest]
    #[case("f(...)", "...")]
    #[case("f(-1, 4, 0x10, NULL)", "-1, 4, 16, NULL")]
    #[case("f(SOCK_STREAM|SOCK_NONBLOCK|4)", "SOCK_STREAM|SOCK_NONBLOCK|4")]
    #[case("f([1], [], [5, 6])", "[1], [], [5, 6]")]
    #[case("f({events=EPOLLOUT|EPOLLET, fd=4})", "{events=EPOLLOUT|EPOLLET, fd=4}")]
    #[case("f({..., 40}, {onoff=1, linger=0})", "{..., 40}, {onoff=1, linger=0}")]
    #[case(
        "f({sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr(\"192.0.2.1\")})",
        "{sa_family=AF_INET, sin_port=htons<8080>, sin_addr=inet_addr<\"192.0.2.1\">}"
    )]
    #[case(
        "f({msg_name(...)=...,\n  msg_iov(1)=[{...,0}],\n  msg_flags=0,\n  msg_control=[{cmsg_level=SOL_IP,\n   cmsg_type=IP_RECVERR,\n   cmsg_data={ee_errno=0, ee_data=2}}]})",
        "{msg_name(...)=..., msg_iov(1)=[{..., 0}], msg_flags=0, msg_control=[{cmsg_level=SOL_IP, cmsg_type=IP_RECVERR, cmsg_data={ee_errno=0, ee_data=2}}]}"
    )]
    fn arguments_are_expressions(#[case] call: &str, #[case] expected: &str) {
        let call = syscall(&format!("{call} = 0"));
        assert_eq!(call.args.iter().map(shape).collect::<Vec<_>>().join(", "), expected);
    }

    #[test]
    fn strings_are_bytes() {
        let call = syscall(r#"f("\xa1\xB2\n\r\t\\\"\0é") = 0"#);
        assert_eq!(
            call.args[0].kind,
            ExprKind::Str(vec![0xa1, 0xb2, b'\n', b'\r', b'\t', b'\\', b'"', 0, 0xc3, 0xa9])
        );
        assert_eq!((call.at.col, call.args[0].at.col), (3, 5));
    }

    // ---- errors ----

    #[rstest]
    #[case(
        "",
        1,
        1,
        "expected an event, such as `0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3`, found the end of the script"
    )]
    #[case("0 > S. ack 1", 1, 8, "expected a sequence range such as 1:1001(1000), found `ack`")]
    #[case(
        "0 > S. 0:0 ack 1",
        1,
        12,
        "expected a sequence range such as 1:1001(1000), found `ack`"
    )]
    #[case("0 > S. 0:10(5)", 1, 10, "inconsistent sequence range: 0 + 5 is 5, not 10")]
    #[case("+1 close(3) = 0", 1, 1, "the first event must be at time 0")]
    #[case(
        "0 close(3) = 0\n+.1 < . 1:1(0) ack 1",
        2,
        5,
        "window must be specified for inbound packets"
    )]
    #[case(
        "0 close(3) = 0\n* close(3) = 0",
        2,
        1,
        "event time `*` can only be used with outbound packets"
    )]
    #[case(
        "0 close(3) = 0\n+0~+1 < . 1:1(0) win 1",
        2,
        1,
        "an event time range can only be used with outbound packets"
    )]
    #[case(
        "0 close(3) = 0\n+1~+0 > . 1:1(0)",
        2,
        4,
        "the time range is backwards: it ends before it starts"
    )]
    #[case(
        "0 close(3) = 0\n+0~1 > . 1:1(0)",
        2,
        4,
        "expected a relative time such as `+.1` after `~` (both ends of a range are relative), found `1`"
    )]
    #[case("-1 close(3) = 0", 1, 1, "a time cannot be negative, found `-1`")]
    #[case(
        "0 socket(...) = 3\nclose(3) = 0",
        2,
        1,
        "expected an event time such as `0`, `+.1` or `*`, found `close`"
    )]
    #[case(
        "0 S. 0:0(0)",
        1,
        3,
        "expected a packet (`<` or `>`), a system call, a `command` or a %{ code }% block after the time, found `S`"
    )]
    #[case("0...1 > S 0:0(0)", 1, 2, "only a system call can have an end time (`...END`)")]
    #[case(
        "0 close(3)\n+0 close(4) = 0",
        2,
        1,
        "expected `=` and the result after `close(...)`, found `+`"
    )]
    #[case("0 close(3 4) = 0", 1, 11, "expected `,` or `)` in the arguments, found `4`")]
    #[case("0 f([1, 2) = 0", 1, 10, "expected `,` or `]` in the list, found `)`")]
    #[case(
        "0 f(1.5) = 0",
        1,
        5,
        "expected a value (a number, a name, a \"string\", `...`, `[...]` or `{...}`), found `1.5`"
    )]
    #[case(
        "0 f(x(1, 2)=3) = 0",
        1,
        5,
        "`x(...)=` takes one count in the parentheses, as in `msg_iov(1)=`"
    )]
    #[case(
        "0 f(99999999999999999999) = 0",
        1,
        5,
        "the number `99999999999999999999` is too large"
    )]
    #[case("0 < . 1:1(0) win 70000", 1, 18, "`win` 70000 is out of range (0..=65535)")]
    #[case("0 < . 1:1(0) win x", 1, 18, "expected a number for `win`, found `x`")]
    #[case("0 < . 1:1(0) ack 1 ack 2 win 1", 1, 20, "`ack` is given twice")]
    #[case(
        "0 < . 1:1(0) win 1 <...>",
        1,
        20,
        "`<...>` (any options) can only be used with outbound packets"
    )]
    #[case(
        "0 < . 1:1(0) win 1 <sackok>",
        1,
        21,
        "unknown TCP option `sackok` (did you mean `sackOK`?)"
    )]
    #[case(
        "0 < . 1:1(0) win 1 <nop nop>",
        1,
        25,
        "expected `,` or `>` in the TCP options, found `nop`"
    )]
    #[case(
        "0 < . 1:1(0) win 1 <sack>",
        1,
        25,
        "expected a SACK block such as `1001:2001` after `sack`, found `>`"
    )]
    #[case(
        "0 < . 1:1(0) win 1 <TS 1 ecr 2>",
        1,
        24,
        "expected `val` after `TS` (`TS val 100 ecr 0`), found `1`"
    )]
    #[case(
        "0 < . 1:1(0) win 1 <FO abc>",
        1,
        24,
        "expected a cookie in hex digits (`FO abcd1234`), `,` or `>` after `FO`, found `abc` (an odd number of hex digits)"
    )]
    #[case("0 < . 1:1(0) win 1 <FO xyzw>", 1, 24, "(not hex digits)")]
    #[case(
        "0 < . 1:1(0) win 1 <md5 000102030405060708090a0b0c0d0e0f10>",
        1,
        25,
        "an MD5 digest has at most 16 bytes, not 17"
    )]
    #[case("0 < . 1:1(0) win 1 <ECN e0b 1 e0b 2>", 1, 31, "`e0b` is given twice")]
    #[case(
        "0 < . 1:1(0) win 1 <ECN e0b 16777216>",
        1,
        29,
        "`e0b` 16777216 is out of range (0..=16777215)"
    )]
    #[case(
        "0 < Sx 0:0(0) win 1",
        1,
        5,
        "invalid TCP flag `x` in `Sx` (the flags are F S R P . U E W A and one ACE digit 0-7)"
    )]
    #[case(
        "0 < E5. 0:0(0) win 1",
        1,
        5,
        "conflicting TCP flags `E5.`: an ACE digit sets E, W and A itself"
    )]
    #[case(
        "0 < 56. 0:0(0) win 1",
        1,
        5,
        "expected TCP flags such as `S`, `S.`, `P.`, `.` or `-`, found `56`"
    )]
    #[case("0 < S56 0:0(0) win 1", 1, 5, "conflicting TCP flags `S56`: two ACE digits")]
    #[case("0 < [ect2] S 0:0(0) win 1", 1, 6, "found `ect2` (did you mean `ect0`?)")]
    #[case("0 < [ect01] S 0:0(0) win 1", 1, 6, "`ect01` can only be used with outbound packets")]
    #[case("0 < [ect0, ce] S 0:0(0) win 1", 1, 12, "two ECN codepoints: give one")]
    #[case(
        "0 < [ect0, tos 0x1] S 0:0(0) win 1",
        1,
        12,
        "give `tos` or an ECN codepoint, not both: both set the TOS byte"
    )]
    #[case("0 < (tos 0x100) S 0:0(0) win 1", 1, 10, "`tos` 0x100 is out of range (0..=255)")]
    #[case(
        "0 < [ect0) S 0:0(0) win 1",
        1,
        10,
        "expected `,` or `]` in the IP fields, found `)`"
    )]
    #[case("0 < icmp 3", 1, 10, "expected an ICMP type such as `unreachable`, found `3`")]
    #[case(
        "0 < icmp unreachable [1:2]",
        1,
        26,
        "expected a sequence range such as 1:1001(1000), found `]`"
    )]
    #[case(
        "0 close(3) = 0\n--tolerance_usecs=1",
        2,
        1,
        "`--tolerance_usecs` comes too late: options go at the top, before the init command and the first event"
    )]
    #[case(
        "--define=oops\n0 close(3) = 0",
        1,
        1,
        "expected `--define=NAME=VALUE`, found `oops`"
    )]
    #[case("--mss=\n0 close(3) = 0", 1, 1, "expected a value after `--mss=`, found nothing")]
    #[case(
        "0 close(3) = 0\n`a`\n+0 close(3) = 0",
        2,
        1,
        "a command between events needs a time (`+0` before it); only the cleanup command, after the last event, has none"
    )]
    #[case("0 f(\"abc) = 0", 1, 5, "unterminated string: `\"` without its closing `\"`")]
    #[case(
        "0 f(\"a\n\\q\") = 0",
        2,
        1,
        "unknown escape `\\q` (a string knows \\xHH \\n \\r \\t \\\\ \\\" \\0)"
    )]
    #[case("0 f(1) = 0 (note", 1, 12, "unterminated note: `(` without `)`")]
    #[case("0 `x", 1, 3, "unterminated command: a backtick without its closing backtick")]
    #[case("0 %{ x }", 1, 3, "unterminated code block: `%{` without `}%`")]
    #[case("0 close(3) = 0 /* x", 1, 16, "unterminated comment: `/*` without `*/`")]
    #[case("0 f(\u{1}) = 0", 1, 5, "found the character U+0001")]
    #[case("+9999999999999999 close(3) = 0", 1, 2, "the time `9999999999999999` is too large")]
    fn errors_say_what_was_expected_where(
        #[case] text: &str,
        #[case] line: u32,
        #[case] col: u32,
        #[case] message: &str,
    ) {
        let errors = errors(text);
        let (l, c, m) = &errors[0];
        assert!(m.contains(message), "{text:?}: got {m:?}");
        assert_eq!((*l, *c), (line, col), "{text:?}: {m}");
        assert!(!m.contains('\n'), "{m:?}");
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        let e = parse(&file(), "0 > S. ack 1", &Defines::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.pkt:1:8: expected a sequence range such as 1:1001(1000), found `ack`"
        );
    }

    #[test]
    fn parsing_goes_on_after_a_broken_event() {
        let text = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
                    +0 recvmsg(3, {msg_iov(1)=[{...,0}],\n\
                    \x20  msg_flags=0 0}, 0) = 0\n\
                    +0 > S 0:0(0) <mss 1460>\n\
                    +0 < S. 0:0(0) ack 1\n\
                    +0 close(3) 0\n";
        let found = errors(text);
        let at: Vec<(u32, u32)> = found.iter().map(|(l, c, _)| (*l, *c)).collect();
        assert_eq!(at, vec![(3, 16), (5, 4), (6, 13)], "{found:?}");
        assert!(found[2].2.contains("found `0`"), "{found:?}");
    }

    #[test]
    fn an_unclosed_bracket_ends_the_list() {
        let found = errors("0 f([1, 2 = 0\n+0 close(3) = 0\n+0 bad\n");
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        for open in ["[", "{", "f(", "a=", "[{"] {
            let text = format!("0 f({}1) = 0", open.repeat(100_000));
            let found = errors(&text);
            assert!(found[0].2.contains("nest too deeply"), "{open}: {found:?}");
        }
    }

    #[test]
    fn huge_scripts_are_refused() {
        let text = " ".repeat(MAX_SCRIPT_BYTES + 1);
        assert!(errors(&text)[0].2.contains("a script is at most"));
    }

    /// Every diagnostic of `text` names a line of it and a column on that
    /// line (or just past its end), in one line of text.
    #[track_caller]
    fn assert_points_inside(text: &str) {
        let Err(e) = parse(&file(), text, &defines(&[("D", "\"\\q"), ("E", "`x")])) else {
            return;
        };
        assert!(!e.diagnostics.is_empty());
        let lines: Vec<&str> = text.split('\n').collect();
        for d in &e.diagnostics {
            let line = d.location.line as usize;
            assert!((1..=lines.len()).contains(&line), "{text:?}: {d}");
            let width = lines[line - 1].chars().count();
            assert!((1..=width + 1).contains(&(d.location.col as usize)), "{text:?}: {d}");
            assert!(!d.message.is_empty() && !d.message.contains('\n'), "{text:?}: {d:?}");
        }
    }

    #[test]
    fn odd_input_never_panics_and_errors_point_inside() {
        for text in [
            "é",
            "\u{feff}0 x",
            "\u{feff}",
            "0 f(\"\\x",
            "0 f(\"\\xé\") = 0",
            "0 f(\"\\",
            "0 f(D) = 0",
            "0 f(E) = 0",
            "--",
            "--x=\"",
            "--x=`",
            "0 < [",
            "0 < (tos",
            "0 > S 0:0(0) <",
            "0 > S 0:0(0) <FO",
            "0 > S 0:0(0) <ECN e0b",
            "0 f(x(...)=",
            "0 f() = 0 ENOENT (",
            "0 f() = 0 ENOENT ((a) b",
            "0 < icmp x [udp (",
            "0 < 1>",
            "0 < 1>2",
            "0...",
            "+",
            "*",
            "0~",
            "+0~+",
            "0 > -1:0(0)",
            "0 > . 4294967295:4294967296(1)",
            "0 > . 0xffffffffffffffffffff:1(1)",
            "0 f(0xffffffffffffffff) = 0",
            "\n\n\r\r\n",
            "0 close(3) = 0\n`x`\n`y`",
            "`x`",
            "0 close(3) = 0\n+0 close(3) = 0\n\u{0}",
            "%{",
            "0 f(--x) = 0",
        ] {
            assert_points_inside(text);
        }
    }

    // ---- the corpus ----

    /// The defines the kernel's kselftest runner passes for ipv4.
    fn kselftest_ipv4() -> Defines {
        defines(&[
            ("TFO_COOKIE", "3021b9d889017eeb"),
            ("TFO_COOKIE_ZERO", "b7c12350a90dc8f5"),
            ("CMSG_LEVEL_IP", "SOL_IP"),
            ("CMSG_TYPE_RECVERR", "IP_RECVERR"),
        ])
    }

    fn corpus_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora/linux-packetdrill")
    }

    /// A corpus script, parsed; `None` without the corpus.
    fn corpus_script(name: &str) -> Option<Script> {
        let path = corpus_dir().join(name);
        let text = std::fs::read_to_string(&path).ok()?;
        Some(parse(&Arc::new(path), &text, &kselftest_ipv4()).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn every_corpus_script_parses() {
        let Ok(entries) = std::fs::read_dir(corpus_dir()) else {
            println!("skipped: no corpus");
            return;
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pkt"))
            .collect();
        paths.sort();
        assert!(!paths.is_empty());
        let mut failures = Vec::new();
        for path in &paths {
            let text = std::fs::read_to_string(path).unwrap();
            if let Err(e) = parse(&Arc::new(path.clone()), &text, &kselftest_ipv4()) {
                failures.push(e.to_string());
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} failed:\n{}",
            failures.len(),
            paths.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn corpus_trees_say_what_the_scripts_say() {
        let Some(client) = corpus_script("tcp_basic_client.pkt") else {
            println!("skipped: no corpus");
            return;
        };
        assert_eq!(client.events.len(), 12);
        assert_eq!(client.init_command.map(|c| c.text).as_deref(), Some("./defaults.sh"));
        assert_eq!(client.events[0].time, EventTime::Absolute(0));
        let EventKind::Syscall(connect) = &client.events[1].kind else {
            panic!("{:?}", client.events[1])
        };
        assert_eq!((connect.name.as_str(), connect.end), ("connect", Some(0)));
        let EventKind::Packet(syn) = &client.events[2].kind else {
            panic!()
        };
        assert_eq!(syn.direction, Direction::Outbound);

        // `+.1...0.200 read(...)`: a blocking end time.
        let read = corpus_script("tcp_blocking_blocking-read.pkt").unwrap();
        let blocking: Vec<(EventTime, Option<Micros>)> = read
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Syscall(s) if s.end.is_some() => Some((e.time, s.end)),
                _ => None,
            })
            .collect();
        assert!(
            blocking.contains(&(EventTime::Relative(100_000), Some(200_000))),
            "{blocking:?}"
        );

        // `FO TFO_COOKIE` and `FO TFO_COOKIE_ZERO`: the defines' cookies.
        let key = corpus_script("tcp_fastopen_server_sockopt-fastopen-key.pkt").unwrap();
        let cookies: Vec<Vec<u8>> = key
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Packet(Packet {
                    body:
                        PacketBody::Tcp(TcpSegment {
                            options: TcpOptions::List(list),
                            ..
                        }),
                    ..
                }) => Some(list.clone()),
                _ => None,
            })
            .flatten()
            .filter_map(|(_, o)| match o {
                TcpOption::FastOpen(cookie) if !cookie.is_empty() => Some(cookie),
                _ => None,
            })
            .collect();
        assert!(cookies.contains(&vec![0x30, 0x21, 0xb9, 0xd8, 0x89, 0x01, 0x7e, 0xeb]));
        assert!(cookies.contains(&vec![0xb7, 0xc1, 0x23, 0x50, 0xa9, 0x0d, 0xc8, 0xf5]));

        // `cmsg_level=CMSG_LEVEL_IP` and an untimed cleanup command.
        let edge = corpus_script("tcp_zerocopy_epoll_edge.pkt").unwrap();
        let Some(EventKind::Syscall(recvmsg)) = edge.events.last().map(|e| &e.kind) else {
            panic!()
        };
        let args = shape(&recvmsg.args[1]);
        assert!(args.contains("cmsg_level=SOL_IP, cmsg_type=IP_RECVERR"), "{args}");
        let buf_ptr = corpus_script("tcp_syscall_bad_arg_fastopen-invalid-buf-ptr.pkt").unwrap();
        assert_eq!(
            buf_ptr.cleanup_command.map(|c| c.text).as_deref(),
            Some("/tmp/sysctl_restore_${PPID}.sh")
        );

        // A flag option followed by a comment, and an ICMP line.
        let iov = corpus_script("tcp_syscall_bad_arg_sendmsg-empty-iov.pkt").unwrap();
        assert_eq!(iov.options[0].name, "send_omit_free");
        assert_eq!(iov.options[0].value, None);
        let pmtu = corpus_script("tcp_advmss_pmtu_ipv4.pkt").unwrap();
        let icmp = pmtu.events.iter().find_map(|e| match &e.kind {
            EventKind::Packet(Packet {
                body: PacketBody::Icmp(icmp),
                ..
            }) => Some(icmp.clone()),
            _ => None,
        });
        let icmp = icmp.unwrap();
        assert_eq!(icmp.code_name.map(|(_, c)| c).as_deref(), Some("frag_needed"));
        assert_eq!(icmp.mtu, Some(1200));
    }
}
