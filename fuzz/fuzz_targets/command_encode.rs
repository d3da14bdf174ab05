//! Arbitrary `Command`, firmware version and checksum mode → encode into a small and a large
//! buffer: never panics, lengths agree (see `plotty_fuzz::command_encode`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| plotty_fuzz::command_encode(data));
