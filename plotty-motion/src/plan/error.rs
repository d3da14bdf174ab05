//! [`PlanError`]: everything the planner can refuse, each naming what to do about it.

use core::fmt;

/// Why the planner refused a configuration, a window or an input item.
///
/// Nothing is half-applied: after an error the planner is exactly as it was before the call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PlanError {
    /// The lookahead window has no free slot: `pop` a planned item, then push again.
    WindowFull,
    /// The caller's window storage has no slots; give it at least one.
    EmptyWindow,
    /// The caller's window storage has more than `u32::MAX` slots.
    WindowTooLarge,
    /// A point has a NaN or infinite coordinate.
    NonFinitePoint,
    /// A point lies further than [`MAX_COORDINATE_MM`](crate::plan::MAX_COORDINATE_MM) from home.
    PointOutOfRange,
    /// A limit of the planner configuration is NaN, out of range or inconsistent.
    InvalidLimit {
        /// Which limit, e.g. `"pen_down.max_speed_mm_s"`.
        limit: &'static str,
        /// What it must be, e.g. `"a finite number in (0, 100000] mm/s"`.
        allowed: &'static str,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WindowFull => f.write_str(
                "the planner's lookahead window is full: pop a planned item before pushing more",
            ),
            Self::EmptyWindow => {
                f.write_str("the planner window has no slots: give it at least one slot")
            }
            Self::WindowTooLarge => {
                f.write_str("the planner window has more than 4294967295 slots: use fewer")
            }
            Self::NonFinitePoint => f.write_str(
                "a path point has a NaN or infinite coordinate: only finite millimetres can be plotted",
            ),
            Self::PointOutOfRange => f.write_str(
                "a path point lies more than 1000000 mm from home: check the drawing's units and scale",
            ),
            Self::InvalidLimit { limit, allowed } => {
                write!(f, "invalid planner limit `{limit}`: it must be {allowed}")
            }
        }
    }
}

impl core::error::Error for PlanError {}
