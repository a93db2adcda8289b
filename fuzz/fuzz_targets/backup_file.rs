//! A backup file (`saleboard restore --check`): any bytes are read through as a backup or
//! refused with an error naming what is wrong, never a panic, and never held beyond a line.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

fuzz_target!(|bytes: &[u8]| {
    let mut input = bytes;
    let _ = runtime().block_on(saleboard_storage::backup::check(&mut input));
});
