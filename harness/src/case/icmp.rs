//! The ICMP notation of an `inject:` step, parsed and printed by one
//! grammar, as packetdrill writes an ICMP line without its direction:
//!
//! ```text
//! icmp unreachable frag_needed mtu 1200 [1:1461(1460)]
//! icmp packet_too_big mtu 1280 [1:1461(1460)]
//! icmp unreachable host_unreachable [0:10(10)]
//! icmp echo_request id 7 [raw (20)]
//! ```
//!
//! `icmp TYPE [CODE] [mtu N] [id N] [QUOTE]`. TYPE and CODE are the names
//! of the case's family (`type_N` and `code_N` give numbers; a missing code
//! is 0). `mtu` fills the next-hop MTU of the messages that carry one. The
//! quote is the kernel's TCP segment on the flow, `[seq:end(len)]` with
//! `seq` relative to the kernel's ISN (default `[0:0(0)]`), or `[raw (N)]`:
//! N zero bytes and no header.

use super::cursor::Cursor;
use super::{IcmpQuote, IcmpSpec};
use crate::packet::Family;
use crate::packet::icmp::{
    IcmpMessage, icmp_code, icmp_code_name, icmp_code_names, icmp_type, icmp_type_name, icmp_type_names,
};
use crate::packet::notation::NotationError;

type Result<T> = std::result::Result<T, NotationError>;

/// Whether an `inject:` text is an ICMP message (its first word is `icmp`).
pub fn is_icmp(text: &str) -> bool {
    text.split_whitespace().next() == Some("icmp")
}

/// The ICMP notation's words, read with the cursor the step notations share.
impl<'a> Cursor<'a> {
    /// A word of letters, digits and `_` (empty when none starts here).
    fn word(&mut self) -> (usize, &'a str) {
        self.skip_ws();
        let start = self.pos;
        let len = self.text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .count();
        self.pos += len;
        (start, &self.text[start..start + len])
    }

    fn next_is(&mut self, word: &str) -> bool {
        let before = self.pos;
        let (_, w) = self.word();
        self.pos = before;
        w == word
    }

    fn number(&mut self, what: &str, max: u64) -> Result<u64> {
        let (at, w) = self.word();
        match w.parse::<u64>() {
            Ok(v) if v <= max => Ok(v),
            Ok(v) => self.err(at, format!("{what} {v} is out of range (0..={max})")),
            Err(_) => {
                self.pos = at;
                let found = self.found();
                self.err(at, format!("expected a number for {what}, found {found}"))
            }
        }
    }

    fn expect(&mut self, c: char, context: &str) -> Result<()> {
        if self.eat(c) {
            return Ok(());
        }
        let at = self.pos;
        let found = self.found();
        self.err(at, format!("expected `{c}` {context}, found {found}"))
    }
}

/// Parses an ICMP message in the names of `family`.
pub fn parse_icmp(text: &str, family: Family) -> Result<IcmpSpec> {
    let mut w = Cursor::new(text, "the end of the message", "[]():");
    let (at, first) = w.word();
    if first != "icmp" {
        return w.err(at, "an ICMP message starts with `icmp`");
    }
    let (tat, tname) = w.word();
    if tname.is_empty() {
        let found = w.found();
        return w.err(tat, format!("expected an ICMP type after `icmp`, found {found}"));
    }
    let Some(kind) = icmp_type(family, tname) else {
        let names: Vec<&str> = icmp_type_names(family).collect();
        return w.err(
            tat,
            format!(
                "unknown {family} ICMP type `{tname}`{}; types are {} or type_N",
                super::call::suggest(tname, &names),
                names.join(", ")
            ),
        );
    };
    let mut code = 0;
    if !matches!(w.peek(), None | Some('[')) && !w.next_is("mtu") && !w.next_is("id") {
        let (cat, cname) = w.word();
        code = match icmp_code(family, kind, cname) {
            Some(c) => c,
            None => {
                let names: Vec<&str> = icmp_code_names(family, kind).collect();
                let known = if names.is_empty() {
                    "code_N".to_string()
                } else {
                    format!("{} or code_N", names.join(", "))
                };
                if cname.is_empty() {
                    let found = w.found();
                    return w.err(cat, format!("expected an ICMP code ({known}), found {found}"));
                }
                return w.err(
                    cat,
                    format!(
                        "unknown code `{cname}` of {family} ICMP `{tname}`{}; codes are {known}",
                        super::call::suggest(cname, &names)
                    ),
                );
            }
        };
    }
    let mut mtu = None;
    if w.next_is("mtu") {
        let (mat, _) = w.word();
        let value = w.number("mtu", u64::from(u32::MAX))? as u32;
        if let Err(e) = IcmpMessage::new(kind, code).with_mtu(family, value) {
            return w.err(mat, e.to_string());
        }
        mtu = Some(value);
    }
    let mut id = None;
    if w.next_is("id") {
        w.word();
        id = Some(w.number("id", u64::from(u16::MAX))? as u16);
    }
    let quote = if w.eat('[') {
        let quote = if w.next_is("raw") {
            w.word();
            w.expect('(', "after `raw`")?;
            let len = w.number("the raw length", u64::from(u32::MAX))? as u32;
            w.expect(')', "after the raw length")?;
            IcmpQuote::Raw { len }
        } else {
            let at = w.pos;
            let seq = w.number("the quoted seq", u64::from(u32::MAX))? as u32;
            w.expect(':', "in the quoted seq:end(len)")?;
            let end = w.number("the quoted end", u64::from(u32::MAX))? as u32;
            w.expect('(', "in the quoted seq:end(len)")?;
            let len = w.number("the quoted length", u64::from(u32::MAX))? as u32;
            w.expect(')', "in the quoted seq:end(len)")?;
            if seq.wrapping_add(len) != end {
                return w.err(at, format!("{seq}:{end}({len}): the end is not seq + len"));
            }
            IcmpQuote::Tcp { seq, len }
        };
        w.expect(']', "after the quoted packet")?;
        quote
    } else {
        IcmpQuote::Tcp { seq: 0, len: 0 }
    };
    w.skip_ws();
    if w.pos < text.len() {
        let at = w.pos;
        let found = w.found();
        return w.err(at, format!("unexpected {found} after the ICMP message"));
    }
    Ok(IcmpSpec {
        kind,
        code,
        mtu,
        id,
        quote,
    })
}

/// Writes an ICMP message in the names of `family`, as [`parse_icmp`] reads it.
pub fn format_icmp(icmp: &IcmpSpec, family: Family) -> String {
    let mut out = format!("icmp {}", icmp_type_name(family, icmp.kind));
    let named = icmp_code_names(family, icmp.kind).any(|n| icmp_code(family, icmp.kind, n) == Some(icmp.code));
    if named || icmp.code != 0 {
        out.push(' ');
        out.push_str(&icmp_code_name(family, icmp.kind, icmp.code));
    }
    if let Some(mtu) = icmp.mtu {
        out.push_str(&format!(" mtu {mtu}"));
    }
    if let Some(id) = icmp.id {
        out.push_str(&format!(" id {id}"));
    }
    match icmp.quote {
        IcmpQuote::Tcp { seq: 0, len: 0 } => {}
        IcmpQuote::Tcp { seq, len } => out.push_str(&format!(" [{seq}:{}({len})]", seq.wrapping_add(len))),
        IcmpQuote::Raw { len } => out.push_str(&format!(" [raw ({len})]")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(
        Family::Ipv4,
        "icmp unreachable frag_needed mtu 1200 [1:1461(1460)]",
        3,
        4,
        Some(1200)
    )]
    #[case(Family::Ipv6, "icmp packet_too_big mtu 1280 [1:1461(1460)]", 2, 0, Some(1280))]
    #[case(Family::Ipv4, "icmp unreachable host_unreachable [0:10(10)]", 3, 1, None)]
    #[case(Family::Ipv4, "icmp unreachable net_unreachable [5000:6000(1000)]", 3, 0, None)]
    #[case(Family::Ipv4, "icmp echo_request id 7 [raw (20)]", 8, 0, None)]
    #[case(Family::Ipv6, "icmp type_200 code_9", 200, 9, None)]
    #[case(Family::Ipv4, "icmp time_exceeded", 11, 0, None)]
    fn messages_are_written_back_as_parsed(
        #[case] family: Family,
        #[case] text: &str,
        #[case] kind: u8,
        #[case] code: u8,
        #[case] mtu: Option<u32>,
    ) {
        let icmp = parse_icmp(text, family).unwrap();
        assert_eq!((icmp.kind, icmp.code, icmp.mtu), (kind, code, mtu));
        assert_eq!(format_icmp(&icmp, family), text);
    }

    #[test]
    fn the_quote_defaults_to_the_kernels_isn() {
        let icmp = parse_icmp("icmp unreachable", Family::Ipv4).unwrap();
        assert_eq!(icmp.quote, IcmpQuote::Tcp { seq: 0, len: 0 });
        assert!(is_icmp(" icmp unreachable"));
        assert!(!is_icmp("S. 0:0(0)"));
    }

    #[rstest]
    #[case(
        Family::Ipv4,
        "icmp unreachble",
        5,
        "unknown ipv4 ICMP type `unreachble` (did you mean `unreachable`?)"
    )]
    #[case(
        Family::Ipv6,
        "icmp unreachable frag_needed",
        17,
        "unknown code `frag_needed` of ipv6 ICMP `unreachable`"
    )]
    #[case(Family::Ipv4, "icmp unreachable mtu 1200", 17, "`mtu` is only carried by")]
    #[case(Family::Ipv4, "icmp unreachable frag_needed mtu 70000", 29, "mtu 70000 does not fit")]
    #[case(Family::Ipv4, "icmp unreachable [1:5(5)]", 18, "1:5(5): the end is not seq + len")]
    #[case(Family::Ipv4, "icmp unreachable [raw 5]", 22, "expected `(` after `raw`, found `5`")]
    #[case(
        Family::Ipv4,
        "icmp unreachable [1:1(0)",
        24,
        "expected `]` after the quoted packet, found the end"
    )]
    #[case(
        Family::Ipv4,
        "icmp unreachable [1:1(0)] x",
        26,
        "unexpected `x` after the ICMP message"
    )]
    #[case(Family::Ipv4, "icmp", 4, "expected an ICMP type after `icmp`")]
    #[case(Family::Ipv4, "icmp echo_request id x", 21, "expected a number for id, found `x`")]
    fn bad_messages_point_at_the_offending_word(
        #[case] family: Family,
        #[case] text: &str,
        #[case] offset: usize,
        #[case] message: &str,
    ) {
        let err = parse_icmp(text, family).unwrap_err();
        assert!(err.message.contains(message), "{text:?}: {}", err.message);
        assert_eq!(err.offset, offset, "{text:?}: {}", err.message);
    }
}
