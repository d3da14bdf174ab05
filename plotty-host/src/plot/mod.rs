//! Plotting: from an SVG file to paper, on an AxiDraw or the built-in simulator.
//!
//! - [`prepare`]: import, layer selection and optimisation of a file into a [`Program`].
//! - [`program`]: the drawing as the exact sequence of motions and pen actions, with tags that
//!   say where every motion comes from, and [`Checkpoint`]s to continue from.
//! - [`config`]: the settings a plot uses (machine, limits, pen timing).
//! - [`feed`]: a program through planner and step generator into session items.
//! - [`locate`]: where along the path a board that ran on after a crash stopped.
//! - [`estimate`]: the planned time, in exact firmware ticks.
//! - [`runner`]: the loop that drives a device through the protocol session, with controls in
//!   and events out; `plotty plot` and the daemon both use it.
//! - [`command`]: `plotty plot`.

pub mod command;
pub mod config;
pub mod estimate;
pub mod feed;
pub mod locate;
pub mod prepare;
pub mod program;
pub mod runner;

pub use config::PlotConfig;
pub use estimate::Estimate;
pub use program::{Checkpoint, PARK_VERTEX, Program, ProgramLayer, REENTRY_VERTEX, Start, Step};
pub use runner::{Control, Plot, RunError, RunEvent, RunReport};
