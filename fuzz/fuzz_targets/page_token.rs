//! Page tokens: a client may send any text; only the service's own tokens parse, and they
//! print back to themselves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use saleboard_domain::page::PageToken;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Some(token) = PageToken::parse(text) {
        assert_eq!(token.encode(), text);
    }
});
