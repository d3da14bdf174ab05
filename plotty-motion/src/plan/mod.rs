//! Motion planning: a streaming lookahead planner over a caller-sized window.
//!
//! Input is a stream of [`PathItem`]s (straight segments with their pen state, and pen actions);
//! output is a stream of [`PlannedItem`]s whose speeds are final. A [`Block`] is one straight
//! segment with a trapezoid speed profile; the step generator ([`crate::step`]) turns it into
//! firmware moves.

mod block;

pub use block::*;
