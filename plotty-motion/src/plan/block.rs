//! The planner's vocabulary: what goes in ([`PathItem`]) and what comes out ([`PlannedItem`],
//! [`Block`]).

use crate::kinematics::Point;
use crate::time::Duration;

/// Pen state of a motion: which limits apply, and whether it draws.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Pen {
    /// Raised: travel, pen-up limits.
    #[default]
    Up,
    /// Lowered: drawing, pen-down limits.
    Down,
}

/// Where a segment came from, so progress can be reported in the caller's terms.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Tag {
    /// Stroke (polyline) index within the job.
    pub stroke: u32,
    /// Index of the vertex this segment ends on, within its stroke.
    pub vertex: u32,
}

/// A non-motion step of a plot. The machine is at rest (speed zero) before and after each.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Action {
    /// Raise the pen.
    PenUp,
    /// Lower the pen.
    PenDown,
    /// Stop with the pen up and wait for the user (pen change, `!` layers).
    Pause,
    /// Wait this long (layer delays).
    Dwell(Duration),
}

/// One input item of the planner.
#[derive(Clone, Copy, PartialEq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PathItem {
    /// A straight move from the current position to `to`, with `pen`'s limits.
    Segment {
        /// End point.
        to: Point,
        /// Pen state during the move.
        pen: Pen,
        /// Origin of the segment, echoed in the planned block.
        tag: Tag,
    },
    /// A pen action or pause; the planner brings the machine to rest first.
    Action(Action),
}

/// One straight segment with its final trapezoid speed profile.
///
/// Accelerates from `entry_mm_s` to `cruise_mm_s` at `accel_mm_s2`, cruises, then decelerates to
/// `exit_mm_s` at the same rate. Any phase may be empty (a triangle has no cruise).
#[derive(Clone, Copy, PartialEq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Block {
    /// Start point.
    pub start: Point,
    /// End point.
    pub end: Point,
    /// Pen state.
    pub pen: Pen,
    /// Origin of the segment.
    pub tag: Tag,
    /// Length in millimetres.
    pub length_mm: f64,
    /// Speed at the start.
    pub entry_mm_s: f64,
    /// Highest speed reached.
    pub cruise_mm_s: f64,
    /// Speed at the end.
    pub exit_mm_s: f64,
    /// Acceleration and deceleration magnitude.
    pub accel_mm_s2: f64,
}

impl Block {
    /// Distance spent accelerating.
    pub fn accel_distance_mm(&self) -> f64 {
        ramp_distance(self.entry_mm_s, self.cruise_mm_s, self.accel_mm_s2)
    }

    /// Distance spent decelerating.
    pub fn decel_distance_mm(&self) -> f64 {
        ramp_distance(self.exit_mm_s, self.cruise_mm_s, self.accel_mm_s2)
    }

    /// Distance at cruise speed.
    pub fn cruise_distance_mm(&self) -> f64 {
        let d = self.length_mm - self.accel_distance_mm() - self.decel_distance_mm();
        if d > 0.0 { d } else { 0.0 }
    }

    /// Planned duration in seconds.
    pub fn duration_s(&self) -> f64 {
        let a = self.accel_mm_s2;
        let ramp = |v0: f64, v1: f64| if a > 0.0 { (v1 - v0) / a } else { 0.0 };
        let cruise = if self.cruise_mm_s > 0.0 {
            self.cruise_distance_mm() / self.cruise_mm_s
        } else {
            0.0
        };
        ramp(self.entry_mm_s, self.cruise_mm_s) + cruise + ramp(self.exit_mm_s, self.cruise_mm_s)
    }
}

fn ramp_distance(v_low: f64, v_high: f64, accel: f64) -> f64 {
    if accel > 0.0 && v_high > v_low {
        (v_high * v_high - v_low * v_low) / (2.0 * accel)
    } else {
        0.0
    }
}

/// One output item of the planner, in plot order.
#[derive(Clone, Copy, PartialEq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PlannedItem {
    /// A move with its final speed profile.
    Block(Block),
    /// A pen action or pause, with the machine at rest.
    Action(Action),
}
