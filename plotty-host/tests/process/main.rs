//! Tests of the `plotty` binary as a process (the binary's path is only known to this package's
//! tests, so they live here rather than in the root `tests/e2e`).

// Helpers outside `#[test]` functions panic on purpose: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod check;
mod client;
mod common;
mod config;
mod daemon;
mod docs;
mod farm;
mod farm_devices;
mod identity;
mod lifecycle;
mod plot;
mod security;
mod web_api;
