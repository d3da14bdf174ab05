//! The fuzz targets' bodies, shared by the libFuzzer binaries in `fuzz_targets/` and by the
//! corpus replay test that CI runs on stable (`cargo test --manifest-path fuzz/Cargo.toml`).
//!
//! Each entry point takes raw bytes, never panics on its own, and asserts the invariants of the
//! code under test: a failed assertion is a bug there. One module per parser under test.

mod ebb;
mod plan;
mod session;
mod sim;
mod svg;
mod ws;

pub use ebb::*;
pub use plan::*;
pub use session::*;
pub use sim::*;
pub use svg::*;
pub use ws::*;
