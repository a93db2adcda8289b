//! Exchange-rate parsing: refused with a reason, or a bounded rate that prints and parses back
//! to itself and converts without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use saleboard_domain::ranking::convert;
use saleboard_domain::{Currency, Rate};

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let _ = Rate::parse(text);
    if let Ok(rate) = Rate::parse_bounded(text) {
        assert_eq!(Rate::parse_bounded(&rate.to_string()), Ok(rate));
        let (usd, idr) = (
            Currency::parse("USD").expect("USD"),
            Currency::parse("IDR").expect("IDR"),
        );
        for net in [0, 1, -1, i128::from(i64::MAX), i128::MAX / 3] {
            let _ = convert(net, usd, idr, &rate);
        }
    }
});
