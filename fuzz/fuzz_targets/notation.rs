//! The segment notation on arbitrary text: parsing never panics, an error
//! points inside the text, and printing a parsed pattern gives text that
//! parses back to the same pattern.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpconform::packet::notation::{parse_expect, parse_inject};

fuzz_target!(|text: &str| {
    for parse in [parse_inject, parse_expect] {
        match parse(text) {
            Ok(pattern) => {
                let printed = pattern.to_string();
                assert_eq!(
                    parse(&printed).as_ref(),
                    Ok(&pattern),
                    "{text:?} printed as {printed:?}"
                );
            }
            Err(e) => {
                assert!(text.is_char_boundary(e.offset), "{text:?}: offset {} of {e}", e.offset);
                assert!(!e.message.is_empty() && !e.message.contains('\n'), "{e:?}");
            }
        }
    }
});
