//! The call notation on arbitrary text: parsing never panics and an error
//! points inside the text, at a character boundary.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpconform::case::call::parse_call;

fuzz_target!(|text: &str| {
    if let Err(e) = parse_call(text) {
        assert!(text.is_char_boundary(e.offset), "{text:?}: offset {} of {e}", e.offset);
        assert!(!e.message.is_empty() && !e.message.contains('\n'), "{e:?}");
    }
});
