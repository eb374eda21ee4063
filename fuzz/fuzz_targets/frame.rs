//! Captured frames on arbitrary bytes: decoding never panics; a decoded TCP
//! segment, printed in the notation and parsed back as an expectation,
//! matches that segment; any expectation can be compared with it; and TCP
//! options parse and emit back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpconform::packet::frame::{Decoded, decode};
use tcpconform::packet::notation::{format_segment, parse_expect};
use tcpconform::packet::pattern::Context;
use tcpconform::packet::tcp::{emit_options, parse_options};

fuzz_target!(|bytes: &[u8]| {
    // The first byte picks the expectation's length, the next ones are its text; the rest is the frame.
    let (pattern_text, frame) = match bytes.split_first() {
        Some((&n, rest)) if usize::from(n) <= rest.len() => rest.split_at(usize::from(n)),
        _ => (&[][..], bytes),
    };
    let ctx = Context {
        mss: 1460,
        echo: frame.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
    };
    if let Decoded::Tcp(tcp) = decode(frame) {
        let seg = &tcp.segment;
        let text = format_segment(seg);
        let pattern = parse_expect(&text).unwrap_or_else(|e| panic!("{text:?} does not parse: {e}"));
        let mismatches = pattern.mismatches(seg, &ctx);
        assert!(
            mismatches.is_empty(),
            "{text:?} does not match its own segment: {mismatches:?}"
        );
        if let Ok(Ok(other)) = std::str::from_utf8(pattern_text).map(parse_expect) {
            for m in other.mismatches(seg, &ctx) {
                assert!(!m.field.is_empty(), "{m:?}");
            }
        }
    }
    // Option bytes: up to the 40 a header holds, in whole words.
    let options = &frame[..frame.len().min(40) / 4 * 4];
    assert_eq!(
        emit_options(&parse_options(options)),
        options,
        "{:?}",
        parse_options(options)
    );
});
