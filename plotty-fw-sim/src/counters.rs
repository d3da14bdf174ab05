//! Per-axis step directions from the motor positions that `Observer::on_step` reports.
//!
//! The firmware reports each step as the new physical position of both motors (never zeroed,
//! unlike the `QS` counters); a step moves each axis by at most one, so the difference from the
//! previous report is the direction of each axis. The difference is taken with 32-bit wrapping,
//! as the positions wrap.

/// Remembers the last reported motor position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CounterTracker {
    last: [i32; 2],
}

impl CounterTracker {
    /// The direction (−1, 0, +1) each axis stepped to reach `position`.
    pub(crate) fn direction(&mut self, position: [i32; 2]) -> [i8; 2] {
        let delta = [
            position[0].wrapping_sub(self.last[0]),
            position[1].wrapping_sub(self.last[1]),
        ];
        self.last = position;
        delta.map(|d| d.signum() as i8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_steps_both_ways_and_across_the_wrap() {
        let mut t = CounterTracker::default();
        assert_eq!(t.direction([1, 0]), [1, 0]);
        assert_eq!(t.direction([2, -1]), [1, -1]);
        assert_eq!(t.direction([1, -1]), [-1, 0]);
        let mut t = CounterTracker {
            last: [i32::MAX, i32::MIN],
        };
        assert_eq!(t.direction([i32::MIN, i32::MAX]), [1, -1]);
    }
}
