//! Cross-crate and end-to-end tests of the plotty workspace (one integration binary).

mod bench_drawings;
mod plan_reference;
