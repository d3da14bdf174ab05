//! Planner operation sequences from raw bytes; see `plotty_fuzz::planner_ops`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    plotty_fuzz::planner_ops(data);
});
