//! Motion planning: a streaming lookahead planner over a caller-sized window.
//!
//! Input is a stream of [`PathItem`]s (straight segments with their pen state, and pen actions);
//! output is a stream of [`PlannedItem`]s whose speeds are final. A [`Block`] is one straight
//! segment with a trapezoid speed profile; the step generator ([`crate::step`]) turns it into
//! firmware moves.
//!
//! ```
//! use plotty_motion::kinematics::{AxiDrawSettings, Point};
//! use plotty_motion::plan::{PathItem, Pen, PlanError, PlannedItem, Planner, PlannerConfig,
//!     PlannerSlot, Tag};
//!
//! let config = PlannerConfig::axidraw(&AxiDrawSettings::default())?;
//! let mut window = [PlannerSlot::EMPTY; 64];
//! let mut planner = Planner::new(config, Point::ORIGIN, &mut window)?;
//! let mut plot_time_s = 0.0;
//! let path = [Point::new(10.0, 0.0), Point::new(10.0, 10.0), Point::new(0.0, 10.0)];
//! for (i, &to) in path.iter().enumerate() {
//!     let item = PathItem::Segment { to, pen: Pen::Down, tag: Tag { stroke: 0, vertex: i as u32 } };
//!     loop {
//!         match planner.push(item) {
//!             Ok(()) => break,
//!             // A full window refuses the item: release the oldest planned item, then retry.
//!             Err(PlanError::WindowFull) => {
//!                 if let Some(PlannedItem::Block(b)) = planner.pop() {
//!                     plot_time_s += b.duration_s();
//!                 }
//!             }
//!             Err(e) => return Err(e),
//!         }
//!     }
//!     // Hand on whatever is final already (here: add up the plot time).
//!     while let Some(planned) = planner.pop() {
//!         if let PlannedItem::Block(b) = planned { plot_time_s += b.duration_s(); }
//!     }
//! }
//! planner.finish();
//! while let Some(planned) = planner.pop() {
//!     if let PlannedItem::Block(b) = planned { plot_time_s += b.duration_s(); }
//! }
//! assert!(plot_time_s > 0.5 && plot_time_s < 2.0);
//! # Ok::<(), PlanError>(())
//! ```
//!
//! # Model
//!
//! - Every block accelerates and decelerates at a constant rate: the pen state's acceleration,
//!   lowered where a per-motor acceleration limit is stricter along the block's direction. Its
//!   top speed is the pen state's, lowered where the per-motor step-rate limit is stricter
//!   along its direction (a move along X may go faster than one along a motor's diagonal).
//! - With [`PlannerConfig::per_motor`] the speed and acceleration limits are those of each motor
//!   (steps/s, steps/s²) in every direction, derived from the XY figures so that no motor works
//!   harder than under them; a move that both motors share goes up to √2 times faster.
//! - The speed through a junction is limited by the cornering rule ([`Cornering`]; with
//!   [`Cornering::MotorJump`], by each motor's velocity change) and by both blocks' top speeds. A pen change, an [`Action`], [`Planner::finish`] and the start bring the
//!   machine to rest.
//! - Given those limits the plan is time-optimal: every junction runs at the highest speed
//!   from which every later limit can still be met by braking and which can be reached from the
//!   earlier ones by accelerating.
//!
//! # How
//!
//! The backward pass is kept in closed form: with `Rₖ` the sum of `2·a·L` over the blocks
//! before junction `k`, the braking bound at junction `k` is `min over m ≥ k of (Jₘ² + Rₘ) − Rₖ`.
//! A monotone deque of the keys `Jₘ² + Rₘ` gives that minimum in amortised O(1) per segment, for
//! any window size and however many segments the braking distance spans; the forward pass is
//! one step from the last released block. Reaches are re-based exactly once per window's worth
//! of releases, and rounded so that no block is ever asked for more speed change than its
//! acceleration allows over its length. Speeds are planned squared (no square roots in the
//! passes); a released block costs two square roots.
//!
//! # Streaming
//!
//! [`Planner::pop`] releases a block only when its speeds are final: when a rest point follows
//! it, or when the window holds enough distance after it to brake from any speed it could still
//! be given. A full window releases its oldest block anyway, assuming a stop at the end of the
//! window: always safe, possibly slower (counted by [`Planner::forced_releases`]). Give the
//! window at least the braking distance from top speed in segments to stay optimal.
//!
//! # Input handling
//!
//! - Segments of at most [`MIN_SEGMENT_MM`] are dropped (measured from the last kept point);
//!   a dropped segment's tag moves to the newest block in the window if it continues it (same
//!   pen, no rest in between), so progress still reaches that vertex.
//! - A segment exactly in line with the newest block (same pen, cross product exactly 0, same
//!   direction, no stricter limits) is merged into it: one block instead of many for finely
//!   divided straight lines. The merged block ends exactly at the last input point and carries
//!   its tag; the planned speeds are the same as without merging, but the window holds more.
//! - NaN or infinite points are refused with [`PlanError::NonFinitePoint`], points beyond
//!   [`MAX_COORDINATE_MM`] with [`PlanError::PointOutOfRange`].

mod block;
mod config;
mod error;
mod lookahead;
#[cfg(test)]
mod reference;
mod trapezoid;

pub use block::*;
pub use config::{
    Cornering, MAX_ACCEL_LIMIT_MM_S2, MAX_AXIDRAW_CORNERING, MAX_CORNER_JUMP_HZ, MAX_DEVIATION_MM,
    MAX_SPEED_LIMIT_MM_S, MAX_STEP_ACCEL_LIMIT_HZ_S, MAX_STEP_RATE_LIMIT_HZ, MIN_ACCEL_LIMIT_MM_S2,
    MIN_CORNER_JUMP_HZ, MIN_SPEED_LIMIT_MM_S, MIN_STEP_ACCEL_LIMIT_HZ_S, MIN_STEP_RATE_LIMIT_HZ,
    MotionLimits, MotorLimits, PlannerConfig,
};
pub use error::PlanError;
pub use lookahead::PlannerSlot;

use crate::kinematics::Point;

use config::min;
use lookahead::{SegmentSlot, SlotItem, Window};
use trapezoid::{cruise_speed_sqr, feasible_exit_sqr};

/// Segments this short or shorter (mm) are dropped.
pub const MIN_SEGMENT_MM: f64 = 1e-9;

/// Largest accepted coordinate magnitude (mm): 1 km, far beyond any plotter, small enough that
/// lengths and their squares never overflow.
pub const MAX_COORDINATE_MM: f64 = 1.0e6;

/// The streaming lookahead planner. See the [module documentation](self).
///
/// Call order: [`push`](Self::push) items in plot order, [`pop`](Self::pop) whatever is ready
/// (and always when `push` reports [`PlanError::WindowFull`]), [`finish`](Self::finish) at the
/// end of the input, then `pop` until it returns `None`.
#[derive(Debug)]
pub struct Planner<'a> {
    config: PlannerConfig,
    window: Window<'a>,
    /// End of the last accepted segment: where the next segment starts.
    position: Point,
    /// End of the last released block: where the oldest block in the window starts.
    released: Point,
    /// Final entry speed² of the oldest block in the window (the exit of the last released one).
    entry_sqr: f64,
    /// Its square root.
    entry_mm_s: f64,
    /// The last accepted segment, for the next junction and for merging.
    tail: Tail,
    /// The next segment starts at rest (start, after an action or `finish`).
    rest_next: bool,
    /// `finish` was called and nothing was pushed since: every block in the window is final.
    finished: bool,
    /// The oldest block was found not final and nothing was pushed since: `pop` answers `None`
    /// without looking again.
    stalled: bool,
    forced_releases: u64,
    releases_since_rebase: usize,
}

/// What the planner remembers about the last accepted segment.
#[derive(Clone, Copy, Debug)]
struct Tail {
    start: Point,
    ux: f64,
    uy: f64,
    pen: Pen,
    accel_mm_s2: f64,
    max_speed_sqr: f64,
}

impl<'a> Planner<'a> {
    /// A planner with the machine at rest at `start`, using `window` as its lookahead storage
    /// (its length is the window size; any length from 1 up).
    pub fn new(
        config: PlannerConfig,
        start: Point,
        window: &'a mut [PlannerSlot],
    ) -> Result<Self, PlanError> {
        check_point(start)?;
        Ok(Self {
            config,
            window: Window::new(window)?,
            position: start,
            released: start,
            entry_sqr: 0.0,
            entry_mm_s: 0.0,
            tail: Tail {
                start,
                ux: 1.0,
                uy: 0.0,
                pen: Pen::Up,
                accel_mm_s2: 0.0,
                max_speed_sqr: 0.0,
            },
            rest_next: true,
            finished: false,
            stalled: false,
            forced_releases: 0,
            releases_since_rebase: 0,
        })
    }

    /// Adds the next item. Nothing changes on error.
    ///
    /// # Errors
    /// [`PlanError::WindowFull`] when the item needs a slot and none is free (pop first);
    /// [`PlanError::NonFinitePoint`] / [`PlanError::PointOutOfRange`] for a bad segment end.
    pub fn push(&mut self, item: PathItem) -> Result<(), PlanError> {
        match item {
            PathItem::Segment { to, pen, tag } => self.push_segment(to, pen, tag),
            PathItem::Action(action) => self.push_action(action),
        }
    }

    /// The next item whose plan is final, in input order; `None` if the oldest one may still
    /// get faster (push more, or `finish`) or the window is empty.
    ///
    /// With a full window the oldest block is released anyway, planned to be able to stop at
    /// the window's end.
    pub fn pop(&mut self) -> Option<PlannedItem> {
        if self.stalled {
            return None;
        }
        let seg = match self.window.front()?.item() {
            SlotItem::Segment(seg) => seg,
            SlotItem::Action(action) => {
                let action = *action;
                // Every block before an action ends at rest (its junction limit is 0).
                self.entry_sqr = 0.0;
                self.entry_mm_s = 0.0;
                self.release_front();
                return Some(PlannedItem::Action(action));
            }
        };
        let bound = self.window.front_exit_bound(self.entry_sqr);
        // The ramp as the lookahead bounded this block's entry with it (at most 2·a·L).
        let ramp_sqr = bound.ramp_sqr;
        if !bound.is_final && !self.finished {
            if !self.window.is_full() {
                self.stalled = true;
                return None;
            }
            self.forced_releases += 1;
        }
        let seg = *seg;
        let exit_sqr = feasible_exit_sqr(self.entry_sqr, bound.exit_sqr, bound.cap_sqr, ramp_sqr);
        let cruise_sqr = cruise_speed_sqr(
            seg.length_mm,
            seg.accel_mm_s2,
            self.entry_sqr,
            exit_sqr,
            seg.max_speed_sqr,
        );
        let exit_mm_s = libm::sqrt(exit_sqr);
        let block = Block {
            start: self.released,
            end: seg.end,
            pen: seg.pen,
            tag: seg.tag,
            length_mm: seg.length_mm,
            entry_mm_s: self.entry_mm_s,
            cruise_mm_s: libm::sqrt(cruise_sqr),
            exit_mm_s,
            accel_mm_s2: seg.accel_mm_s2,
        };
        self.released = seg.end;
        self.entry_sqr = exit_sqr;
        self.entry_mm_s = exit_mm_s;
        self.release_front();
        Some(PlannedItem::Block(block))
    }

    /// Marks the end of the input: the last block ends at rest and everything in the window
    /// becomes final. Pushing again afterwards is allowed and starts from rest.
    pub fn finish(&mut self) {
        self.stalled = false;
        self.finished = true;
        self.rest_next = true;
    }

    /// True when nothing is waiting in the window.
    pub fn is_empty(&self) -> bool {
        self.window.len() == 0
    }

    /// Items waiting in the window.
    pub fn len(&self) -> usize {
        self.window.len()
    }

    /// Window size in slots.
    pub fn capacity(&self) -> usize {
        self.window.capacity()
    }

    /// End of the last accepted segment: where the next segment will start.
    pub fn position(&self) -> Point {
        self.position
    }

    /// How many blocks a full window released before their speeds were final. Zero means the
    /// plan so far is the time-optimal one; otherwise a larger window would have been faster.
    pub fn forced_releases(&self) -> u64 {
        self.forced_releases
    }

    /// The configuration in use.
    pub fn config(&self) -> &PlannerConfig {
        &self.config
    }

    /// Drops the oldest slot once its item is released; re-bases the reaches once per window's
    /// worth of releases.
    fn release_front(&mut self) {
        self.window.pop_front();
        self.releases_since_rebase += 1;
        if self.releases_since_rebase >= self.window.capacity() {
            self.releases_since_rebase = 0;
            self.window.rebase();
        }
    }

    fn push_segment(&mut self, to: Point, pen: Pen, tag: Tag) -> Result<(), PlanError> {
        check_point(to)?;
        let dx = to.x_mm - self.position.x_mm;
        let dy = to.y_mm - self.position.y_mm;
        let (length_mm, ux, uy) = direction(dx, dy);
        // The newest slot is the tail segment unless a rest point came after it.
        let continues = !self.rest_next && self.tail.pen == pen && self.window.len() > 0;
        // (NaN cannot occur: both points are finite and bounded.)
        if length_mm <= MIN_SEGMENT_MM {
            if continues && let Some(newest) = self.window.newest_segment_mut() {
                newest.tag = tag;
            }
            return Ok(());
        }
        let profile = self.config.profile(pen);
        let (max_speed_sqr, accel_mm_s2) = profile.limits_along(ux, uy);
        let cornering = profile.cornering;

        if continues && self.try_merge(to, tag, (dx, dy), (ux, uy), max_speed_sqr, accel_mm_s2) {
            return Ok(());
        }
        if self.window.is_full() {
            return Err(PlanError::WindowFull);
        }
        let junction_sqr = if continues {
            let tail = &self.tail;
            let dot = tail.ux * ux + tail.uy * uy;
            let cross = tail.ux * uy - tail.uy * ux;
            // The corner is taken at the lower of the two blocks' accelerations.
            let corner_accel = min(tail.accel_mm_s2, accel_mm_s2);
            let corner_sqr =
                cornering.between((tail.ux, tail.uy), (ux, uy), dot, cross, corner_accel);
            min(min(corner_sqr, tail.max_speed_sqr), max_speed_sqr)
        } else {
            0.0
        };
        self.window.push(
            SlotItem::Segment(SegmentSlot {
                end: to,
                tag,
                pen,
                length_mm,
                accel_mm_s2,
                max_speed_sqr,
            }),
            junction_sqr,
            2.0 * accel_mm_s2 * length_mm,
        );
        self.stalled = false;
        self.tail = Tail {
            start: self.position,
            ux,
            uy,
            pen,
            accel_mm_s2,
            max_speed_sqr,
        };
        self.position = to;
        self.rest_next = false;
        self.finished = false;
        Ok(())
    }

    /// Extends the newest block to `to` if the new segment (`delta`, unit direction `unit`)
    /// continues it exactly straight on and is allowed at least the block's speed and
    /// acceleration.
    fn try_merge(
        &mut self,
        to: Point,
        tag: Tag,
        (dx, dy): (f64, f64),
        (ux, uy): (f64, f64),
        max_speed_sqr: f64,
        accel_mm_s2: f64,
    ) -> bool {
        let tail = self.tail;
        let bx = self.position.x_mm - tail.start.x_mm;
        let by = self.position.y_mm - tail.start.y_mm;
        let straight_on = bx * dy - by * dx == 0.0 && bx * dx + by * dy > 0.0;
        if !straight_on || max_speed_sqr < tail.max_speed_sqr || accel_mm_s2 < tail.accel_mm_s2 {
            return false;
        }
        let Some(newest) = self.window.newest_segment_mut() else {
            return false;
        };
        let mx = to.x_mm - tail.start.x_mm;
        let my = to.y_mm - tail.start.y_mm;
        newest.end = to;
        newest.tag = tag;
        let length_mm = libm::sqrt(mx * mx + my * my);
        newest.length_mm = length_mm;
        let ramp_sqr = 2.0 * newest.accel_mm_s2 * length_mm;
        self.window.set_newest_ramp(ramp_sqr);
        self.stalled = false;
        // The next corner is taken from the last segment's direction, exactly as without
        // merging (the merged block's own direction differs from it by rounding only, but near
        // a reversal the corner speed is sensitive to the last digit).
        self.tail.ux = ux;
        self.tail.uy = uy;
        self.position = to;
        true
    }

    fn push_action(&mut self, action: Action) -> Result<(), PlanError> {
        if self.window.is_full() {
            return Err(PlanError::WindowFull);
        }
        // A rest point: junction limit 0, no length.
        self.window.push(SlotItem::Action(action), 0.0, 0.0);
        self.stalled = false;
        self.rest_next = true;
        self.finished = false;
        Ok(())
    }
}

/// Length and unit direction of the move (`dx`, `dy`). Coordinates are bounded by
/// [`MAX_COORDINATE_MM`], so the plain formula neither overflows nor needs `hypot`.
#[inline]
pub(crate) fn direction(dx: f64, dy: f64) -> (f64, f64, f64) {
    let length_mm = libm::sqrt(dx * dx + dy * dy);
    let inverse = 1.0 / length_mm;
    (length_mm, dx * inverse, dy * inverse)
}

#[inline]
fn check_point(p: Point) -> Result<(), PlanError> {
    // One comparison per coordinate in the common case: NaN fails it too.
    if libm::fabs(p.x_mm) <= MAX_COORDINATE_MM && libm::fabs(p.y_mm) <= MAX_COORDINATE_MM {
        Ok(())
    } else if p.is_finite() {
        Err(PlanError::PointOutOfRange)
    } else {
        Err(PlanError::NonFinitePoint)
    }
}

#[cfg(test)]
mod tests;
