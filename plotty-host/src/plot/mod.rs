//! Plotting: from an optimised drawing to paper, on an AxiDraw or the built-in simulator.
//!
//! - [`program`]: the drawing as the exact sequence of motions and pen actions, with tags that
//!   say where every motion comes from, and [`program::Checkpoint`]s to continue from.
//! - [`config`]: the settings a plot uses (machine, limits, pen timing).
//!
//! `plotty plot` and the daemon share all of it.

pub mod config;
pub mod program;

pub use config::PlotConfig;
pub use program::{Checkpoint, PARK_VERTEX, Program, ProgramLayer, Start, Step};
