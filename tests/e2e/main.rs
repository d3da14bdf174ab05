//! Cross-crate and end-to-end tests of the plotty workspace (one integration binary).

mod api;
mod bench_drawings;
mod daemon_hooks;
mod daemon_jobs;
mod known_geometry;
mod lifecycle;
mod motion_pipeline;
mod pen_down_time;
mod plan_reference;
mod plot;
mod session_driver;
mod session_sim;
