//! Arbitrary text frames through the WebSocket protocol parser: a request or a coded error reply.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    plotty_fuzz::ws_message(data);
});
