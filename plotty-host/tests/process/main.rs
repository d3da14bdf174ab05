//! Tests of the `plotty` binary as a process (the binary's path is only known to this package's
//! tests, so they live here rather than in the root `tests/e2e`).

mod check;
mod common;
mod daemon;
