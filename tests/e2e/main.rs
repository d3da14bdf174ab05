//! Cross-crate and end-to-end tests of the plotty workspace (one integration binary).

mod api;
mod bench_drawings;
mod daemon_hooks;
mod daemon_jobs;
mod plan_reference;
