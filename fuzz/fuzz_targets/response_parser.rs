//! Arbitrary bytes, split arbitrarily, through `LineBuffer` + `ReplyParser` for every reply kind
//! and mode: never panics, invariants hold (see `plotty_fuzz::response_parser`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| plotty_fuzz::response_parser(data));
