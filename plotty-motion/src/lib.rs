#![doc = include_str!("../README.md")]
// `no_std` in every build that a user of the crate can make. Unit tests link std through the test
// harness; the `nostd-check` crate and the zero-allocation test prove the real builds stay clean.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![deny(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]
#![warn(missing_docs)]

#[cfg(all(feature = "log", feature = "defmt"))]
compile_error!("features `log` and `defmt` are mutually exclusive");

pub mod driver;
pub mod ebb;
pub mod kinematics;
pub mod pipeline;
pub mod plan;
pub mod session;
pub mod step;
pub mod time;

#[cfg(test)]
mod tests;
