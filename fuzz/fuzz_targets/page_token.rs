//! Page tokens: a client may send any text; only the service's own tokens parse, and they
//! print back to themselves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use saleboard_leaderboard::grpc::{page_token, parse_page_token};

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Some((generation, offset)) = parse_page_token(text) {
        assert_eq!(page_token(generation, offset), text);
    }
});
