//! Why the step generator refused a block.

use core::fmt;

use crate::kinematics::MotorSteps;

/// Why [`super::StepGenerator::push`] refused a block. The generator's state is unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StepError {
    /// A field is not finite, negative, or the trapezoid does not fit the block; the text says
    /// which. Blocks come from the planner, so this is a planner bug or a hand-built block.
    InvalidBlock(&'static str),
    /// The block does not start where the previous one ended (in motor steps).
    Discontinuous {
        /// Where the generator is (after every block pushed so far).
        expected: MotorSteps,
        /// Where the block starts.
        found: MotorSteps,
    },
    /// A position lies 2^30 steps (about 13 km) or more from home.
    OutOfRange,
    /// The block would take longer than [`super::MAX_BLOCK_SECONDS`].
    TooLong,
    /// Moves from earlier blocks are still waiting: call `pop` until it returns `None` first.
    Busy,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidBlock(why) => write!(f, "invalid motion block: {why}"),
            Self::Discontinuous { expected, found } => write!(
                f,
                "motion block starts at motor steps ({}, {}) but the previous one ended at \
                 ({}, {}); blocks must be pushed in plot order",
                found.m1, found.m2, expected.m1, expected.m2
            ),
            Self::OutOfRange => f.write_str(
                "position is 2^30 steps or more from home; check the coordinates and units",
            ),
            Self::TooLong => f.write_str(
                "motion block is too slow: it would take longer than the step generator's limit",
            ),
            Self::Busy => f.write_str(
                "step generator still holds moves: pop them all before pushing the next block",
            ),
        }
    }
}

impl core::error::Error for StepError {}
