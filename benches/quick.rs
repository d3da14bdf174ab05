//! Whether a benchmark binary runs as a smoke test (one short iteration) or measures.
//!
//! Criterion's rule, followed by the benchmarks with a `main` of their own so that every bench
//! answers the same flags: `cargo bench` passes `--bench` and measures; `cargo bench -- --test`
//! and `cargo test --bench NAME` (which passes no `--bench`) run each benchmark once to prove it
//! works. CI (`.ci/run`) runs every benchmark that way.

/// True for a smoke run: `--test` given, or no `--bench` (as `cargo test` runs benches).
pub(crate) fn quick() -> bool {
    let mut bench = false;
    let mut test = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--bench" => bench = true,
            "--test" => test = true,
            _ => {}
        }
    }
    test || !bench
}
