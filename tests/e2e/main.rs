//! Cross-crate and end-to-end tests of the plotty workspace (one integration binary).

mod api;
mod daemon_hooks;
mod daemon_jobs;
