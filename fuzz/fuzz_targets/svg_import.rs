//! Arbitrary bytes through SVG import and stroke optimisation: never a panic, never a hang.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    plotty_fuzz::svg_import(data);
});
