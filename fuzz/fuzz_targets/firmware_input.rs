//! Arbitrary host bytes, split into arbitrary USB packets with simulated time in between, fed
//! to the simulated EBB firmware (both versions): no panic, bounded output and memory.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    plotty_fuzz::firmware_input(data);
});
