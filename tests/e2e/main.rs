//! Cross-crate and end-to-end tests of the plotty workspace (one integration binary).

mod api;
mod bench_drawings;
mod daemon_hooks;
mod daemon_jobs;
mod encoder_vs_sim;
mod known_geometry;
mod lifecycle;
mod motion_pipeline;
mod motor_stress;
mod pen_down_time;
mod plan_reference;
mod plot;
mod replies_vs_sim;
mod session_driver;
mod session_sim;
mod sm_rate_vs_sim;
