//! Test-only full-knowledge planner: the textbook backward and forward passes over every segment
//! at once, in a `Vec`. No window, no merging, no streaming: the optimum the streaming planner
//! must reproduce when its window is large enough, and must never beat when it is small.
//!
//! Its limits are its own, from first principles, so that a slip in the planner's limit code
//! ([`PlannerConfig::limits_along`], [`Cornering::corner_speed_sqr`]) shows up as a
//! disagreement instead of being shared: [`limits_along`] from the AxiDraw's motor mixing
//! (reference §4), [`corner_speed_sqr`] from the corner angle with trigonometry (the planner
//! uses an algebraic form without any). Only the configuration's numbers are read.

use std::vec::Vec;

use crate::kinematics::{MM_PER_INCH, Point};

use super::{Cornering, MIN_SEGMENT_MM, PathItem, Pen, PlannerConfig, direction};

/// Top path speed (mm/s) and acceleration (mm/s²) of a straight move along (`dx`, `dy`) with
/// the pen `pen`: the XY limits, lowered where a motor would pass its step rate or step
/// acceleration. Motor 1 turns `k·(x + y)` and motor 2 `k·(x − y)` steps for a move by
/// (`x`, `y`) mm (reference §4), so per millimetre of path the busier one turns
/// `k·max(|ux + uy|, |ux − uy|)` steps, and speed and acceleration scale with it.
pub(crate) fn limits_along(config: &PlannerConfig, pen: Pen, dx: f64, dy: f64) -> (f64, f64) {
    let xy = config.limits(pen);
    let motors = config.motors();
    let length = dx.hypot(dy);
    let k = motors.kinematics.steps_per_mm();
    let motor1 = k * ((dx + dy) / length).abs();
    let motor2 = k * ((dx - dy) / length).abs();
    let busiest = motor1.max(motor2);
    if config.is_per_motor() {
        // Each motor may do what the busier one does on a diagonal under the XY limits
        // (√2·v·k steps/s, √2·a·k steps/s²), and no more than its own caps.
        let rate = motors
            .max_step_rate_hz
            .unwrap_or(f64::INFINITY)
            .min(2f64.sqrt() * xy.max_speed_mm_s * k);
        let accel = motors
            .max_step_accel_hz_s
            .unwrap_or(f64::INFINITY)
            .min(2f64.sqrt() * xy.accel_mm_s2 * k);
        return (rate / busiest, accel / busiest);
    }
    let speed = match motors.max_step_rate_hz {
        Some(rate) => xy.max_speed_mm_s.min(rate / busiest),
        None => xy.max_speed_mm_s,
    };
    let accel = match motors.max_step_accel_hz_s {
        Some(rate) => xy.accel_mm_s2.min(rate / busiest),
        None => xy.accel_mm_s2,
    };
    (speed, accel)
}

/// Square of the speed (mm²/s²) through the corner from unit direction `u` into unit direction
/// `w` at acceleration `accel_mm_s2`, from the geometry: the machine rounds the corner on the
/// circle tangent to both segments that passes within δ of the corner point, at centripetal
/// acceleration `a`, so `v² = a·r`. With `θ` the angle between the reversed incoming direction
/// and the outgoing one, the circle's radius is `r = δ·sin(θ/2)/(1 − sin(θ/2))`. Junction
/// deviation (grbl): δ in mm, straight on (θ = π) unlimited. AxiDraw (reference §5.2):
/// δ = cornering/5000 inch, and `1 − sin(θ/2) ≤ 0.0001` counts as straight, r = 100000 inch.
///
/// [`Cornering::MotorJump`] (`steps_per_mm` = `k`): each motor's step rate is `v·k·(u·m)` with
/// `m` = (1, 1) for motor 1 and (1, −1) for motor 2; through the corner it changes by
/// `v·k·|(w − u)·m|`, which may be at most the jump.
pub(crate) fn corner_speed_sqr(
    cornering: Cornering,
    u: (f64, f64),
    w: (f64, f64),
    accel_mm_s2: f64,
    steps_per_mm: f64,
) -> f64 {
    if let Cornering::MotorJump { max_jump_hz } = cornering {
        let change1 = steps_per_mm * ((w.0 + w.1) - (u.0 + u.1)).abs();
        let change2 = steps_per_mm * ((w.0 - w.1) - (u.0 - u.1)).abs();
        let per_speed = change1.max(change2);
        return if per_speed == 0.0 {
            f64::INFINITY
        } else {
            (max_jump_hz / per_speed).powi(2)
        };
    }
    // How far the direction turns, 0 (straight on) to π (reversal); θ = π − turn.
    let turn = (u.0 * w.1 - u.1 * w.0).atan2(u.0 * w.0 + u.1 * w.1).abs();
    // sin(θ/2) = cos(turn/2); 1 − cos(x) = 2·sin²(x/2) keeps its digits for small turns.
    let s = (turn / 2.0).cos();
    let one_minus_s = 2.0 * (turn / 4.0).sin().powi(2);
    match cornering {
        Cornering::JunctionDeviation { deviation_mm } => {
            if one_minus_s == 0.0 {
                f64::INFINITY
            } else {
                accel_mm_s2 * deviation_mm * s / one_minus_s
            }
        }
        Cornering::MotorJump { .. } => unreachable!("handled above"),
        Cornering::AxiDraw { cornering } => {
            let radius_mm = if one_minus_s <= 1.0e-4 {
                100_000.0 * MM_PER_INCH
            } else {
                cornering / 5000.0 * MM_PER_INCH * s / one_minus_s
            };
            accel_mm_s2 * radius_mm
        }
    }
}

/// One accepted input segment with its optimal speeds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RefSegment {
    pub(crate) start: Point,
    pub(crate) end: Point,
    pub(crate) pen: Pen,
    pub(crate) length_mm: f64,
    pub(crate) accel_mm_s2: f64,
    pub(crate) max_speed_mm_s: f64,
    pub(crate) entry_mm_s: f64,
    pub(crate) cruise_mm_s: f64,
    pub(crate) exit_mm_s: f64,
    /// Is followed by a rest point (action, pen change, end).
    pub(crate) rest_after: bool,
    /// Index of the input item this segment came from.
    pub(crate) item_index: usize,
}

impl RefSegment {
    pub(crate) fn duration_s(&self) -> f64 {
        let a = self.accel_mm_s2;
        let (e, c, x) = (self.entry_mm_s, self.cruise_mm_s, self.exit_mm_s);
        let ramps = (c * c - e * e) / (2.0 * a) + (c * c - x * x) / (2.0 * a);
        let cruise = (self.length_mm - ramps).max(0.0);
        (c - e) / a + (c - x) / a + if c > 0.0 { cruise / c } else { 0.0 }
    }
}

/// Plans `items` (followed by the end of input) from rest at `start`.
pub(crate) fn plan(config: &PlannerConfig, start: Point, items: &[PathItem]) -> Vec<RefSegment> {
    let mut segs: Vec<RefSegment> = Vec::new();
    // Junction limits squared at each segment's start.
    let mut junction_sqr: Vec<f64> = Vec::new();
    let mut position = start;
    let mut rest_pending = true;
    for (item_index, item) in items.iter().enumerate() {
        match *item {
            PathItem::Action(_) => {
                rest_pending = true;
                if let Some(last) = segs.last_mut() {
                    last.rest_after = true;
                }
            }
            PathItem::Segment { to, pen, .. } => {
                let (dx, dy) = (to.x_mm - position.x_mm, to.y_mm - position.y_mm);
                // The same direction arithmetic as the planner: near a reversal the corner speed
                // depends on the last digit of the directions.
                let (length_mm, ux, uy) = direction(dx, dy);
                if length_mm <= MIN_SEGMENT_MM {
                    continue;
                }
                let (max_speed_mm_s, accel_mm_s2) = limits_along(config, pen, dx, dy);
                let j = match segs.last_mut() {
                    Some(prev) if !rest_pending && prev.pen == pen => {
                        let (_, px, py) = direction(
                            prev.end.x_mm - prev.start.x_mm,
                            prev.end.y_mm - prev.start.y_mm,
                        );
                        let corner = corner_speed_sqr(
                            config.limits(pen).cornering,
                            (px, py),
                            (ux, uy),
                            prev.accel_mm_s2.min(accel_mm_s2),
                            config.motors().kinematics.steps_per_mm(),
                        );
                        corner
                            .min(prev.max_speed_mm_s.powi(2))
                            .min(max_speed_mm_s.powi(2))
                    }
                    Some(prev) => {
                        prev.rest_after = true;
                        0.0
                    }
                    None => 0.0,
                };
                junction_sqr.push(j);
                segs.push(RefSegment {
                    start: position,
                    end: to,
                    pen,
                    length_mm,
                    accel_mm_s2,
                    max_speed_mm_s,
                    entry_mm_s: 0.0,
                    cruise_mm_s: 0.0,
                    exit_mm_s: 0.0,
                    rest_after: false,
                    item_index,
                });
                position = to;
                rest_pending = false;
            }
        }
    }
    if let Some(last) = segs.last_mut() {
        last.rest_after = true;
    }
    let n = segs.len();
    // Backward pass: the highest speed² at each junction from which every later limit can be
    // met by braking. Junction n (the end) is at rest; a rest point's junction limit is 0.
    let mut v_sqr = vec![0.0; n + 1];
    for k in (0..n).rev() {
        let ramp = 2.0 * segs[k].accel_mm_s2 * segs[k].length_mm;
        v_sqr[k] = junction_sqr[k].min(v_sqr[k + 1] + ramp);
    }
    // Forward pass: no junction faster than reachable by accelerating from the one before.
    for k in 0..n {
        let ramp = 2.0 * segs[k].accel_mm_s2 * segs[k].length_mm;
        v_sqr[k + 1] = v_sqr[k + 1].min(v_sqr[k] + ramp);
    }
    for (k, s) in segs.iter_mut().enumerate() {
        let (e2, x2) = (v_sqr[k], v_sqr[k + 1]);
        let peak = 0.5 * (e2 + x2) + s.accel_mm_s2 * s.length_mm;
        s.entry_mm_s = e2.sqrt();
        s.exit_mm_s = x2.sqrt();
        s.cruise_mm_s = peak.min(s.max_speed_mm_s.powi(2)).max(e2).max(x2).sqrt();
    }
    segs
}
