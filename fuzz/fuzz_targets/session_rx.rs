//! A plotting `Session` gets arbitrary reply bytes, time steps, good answers and control calls:
//! never panics, queues stay bounded, every error is reported (see `plotty_fuzz::session_rx`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| plotty_fuzz::session_rx(data));
