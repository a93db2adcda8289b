//! The CLI's CSV and JSON Lines readers on any file: every row is a transaction or an error
//! naming its line; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use saleboard::input::{Format, read_from};

fuzz_target!(|bytes: &[u8]| {
    for format in [Format::Csv, Format::JsonLines] {
        let _ = read_from(format, bytes, "fuzz", |row| {
            if let Err(why) = row.parsed {
                assert!(!why.is_empty());
            }
            true
        });
    }
});
