//! The fuzz targets' bodies, shared by the libFuzzer binaries in `fuzz_targets/` and by the
//! corpus replay test that CI runs on stable (`cargo test --manifest-path fuzz/Cargo.toml`).
