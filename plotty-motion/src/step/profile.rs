//! Planned motion as the step generator sees it: blocks cut into constant-acceleration ramps,
//! ramps grouped into pieces no shorter than the firmware's minimum move, and pieces gathered into
//! groups that become one firmware move each (or one run of SM slices).
//!
//! Time is in firmware ticks (`f64`, absolute from the start of the stream), speeds in millimetres
//! per tick, motor quantities in steps. A group remembers just enough to build its move: where it
//! starts and ends (planned point and rounded motor target), its planned start and end tick, and
//! per motor the displacement `D = ∫u dt`, the first moment `F = ∫t·u dt` and the speed range of
//! its planned motor speed `u(t)`. From those the least-squares straight line through `u(t)` is
//! `mean + slope·(t − P/2)` with `mean = D/P`, `slope = 12·(F − P·D/2)/P³`; it equals the planned
//! profile for a single phase and is the best constant-acceleration stand-in for merged phases.

use crate::kinematics::{Kinematics, MotorSteps, Point};
use crate::plan::{Block, Pen, Tag};
use crate::step::StepError;
use crate::step::timing::round_i32;
use crate::time::TICKS_PER_SECOND;

/// Ticks per second as a float.
const TICKS_PER_S: f64 = TICKS_PER_SECOND as f64;

/// Farthest motor position accepted (steps from home): rounded positions stay within
/// ±(2^30 − 1), so every difference of two fits an `i32` step count.
pub(crate) const POSITION_LIMIT: f64 = ((1u32 << 30) - 2) as f64;

/// `kinematics.to_motor(p)`, bit for bit (half away from zero, saturating at the `i32` range),
/// with the fast rounding of [`round_i32`].
pub(crate) fn motor_target(kinematics: Kinematics, p: Point) -> MotorSteps {
    let (m1, m2) = kinematics.motor_exact(p);
    MotorSteps::new(round_i32(m1), round_i32(m2))
}

/// Longest block accepted, in seconds (5.5 hours: 2 m at 0.1 mm/s). Keeps every firmware move
/// under 2^31 ticks without cutting blocks into many moves.
pub const MAX_BLOCK_SECONDS: f64 = 20_000.0;

/// A stretch of constant acceleration: path speed goes linearly from `v0` to `v1` (mm per tick)
/// over `ticks`.
#[derive(Clone, Copy, PartialEq, Debug, Default)]
pub(crate) struct Ramp {
    pub(crate) ticks: f64,
    pub v0: f64,
    pub v1: f64,
}

impl Ramp {
    fn speed_at(&self, t: f64) -> f64 {
        if self.ticks > 0.0 {
            self.v0 + (self.v1 - self.v0) * (t / self.ticks)
        } else {
            self.v1
        }
    }

    fn distance_at(&self, t: f64) -> f64 {
        0.5 * (self.v0 + self.speed_at(t)) * t
    }

    fn split(&self, t: f64) -> (Self, Self) {
        let v = self.speed_at(t);
        (
            Self {
                ticks: t,
                v0: self.v0,
                v1: v,
            },
            Self {
                ticks: self.ticks - t,
                v0: v,
                v1: self.v1,
            },
        )
    }
}

/// The straight line of one block, with its rounded motor targets at both ends.
#[derive(Clone, Copy, PartialEq, Debug, Default)]
pub(crate) struct Line {
    pub(crate) start: Point,
    pub(crate) end: Point,
    pub(crate) length_mm: f64,
    /// Motor steps per millimetre of path, signed (`∂m/∂s`).
    pub(crate) share: [f64; 2],
    pub(crate) from: MotorSteps,
    pub(crate) to: MotorSteps,
}

impl Line {
    /// The point `s` millimetres along the line (the end point itself at or beyond the length).
    pub(crate) fn point_at(&self, s: f64) -> Point {
        if s >= self.length_mm || self.length_mm <= 0.0 {
            return self.end;
        }
        if s <= 0.0 {
            return self.start;
        }
        let f = s / self.length_mm;
        Point::new(
            self.start.x_mm + (self.end.x_mm - self.start.x_mm) * f,
            self.start.y_mm + (self.end.y_mm - self.start.y_mm) * f,
        )
    }

    /// The rounded motor position `s` millimetres along the line, kept between the end targets so
    /// that step counts along a line never change sign.
    pub(crate) fn target_at(&self, s: f64, kinematics: Kinematics) -> MotorSteps {
        self.target_of(s, self.point_at(s), kinematics)
    }

    /// [`Self::target_at`] when `point` is `self.point_at(s)`, already computed.
    #[inline]
    pub(crate) fn target_of(&self, s: f64, point: Point, kinematics: Kinematics) -> MotorSteps {
        if s >= self.length_mm {
            return self.to;
        }
        let m = motor_target(kinematics, point);
        MotorSteps::new(
            clamp_between(m.m1, self.from.m1, self.to.m1),
            clamp_between(m.m2, self.from.m2, self.to.m2),
        )
    }
}

fn clamp_between(v: i32, a: i32, b: i32) -> i32 {
    v.clamp(a.min(b), a.max(b))
}

/// Part of one block: up to three ramps covering path distance `s0..s1`.
#[derive(Clone, Copy, PartialEq, Debug, Default)]
pub(crate) struct Piece {
    pub(crate) line: Line,
    pub s0: f64,
    pub s1: f64,
    /// The first `n` are the piece's ramps; the others are always `Ramp::default()` (zero
    /// ticks), so that [`Piece::ticks`] can add all three without looking at `n`.
    pub(crate) ramps: [Ramp; 3],
    pub(crate) n: usize,
    pub(crate) start_tick: f64,
    pub(crate) pen: Pen,
    pub(crate) tag: Tag,
}

impl Piece {
    pub(crate) fn ramps(&self) -> &[Ramp] {
        self.ramps.get(..self.n).unwrap_or(&[])
    }

    /// Planned duration in ticks: the ramps' ticks added in order. The unused slots hold zero
    /// ticks, and adding `+0.0` to a positive sum changes no bit, so this is the sum over
    /// [`Piece::ramps`] without a loop whose length varies from piece to piece (one branch
    /// mispredicted per group on random input).
    #[inline]
    pub(crate) fn ticks(&self) -> f64 {
        let [a, b, c] = &self.ramps;
        a.ticks + b.ticks + c.ticks
    }

    pub(crate) fn length_mm(&self) -> f64 {
        self.s1 - self.s0
    }

    /// Path distance from the line's start after `t` ticks into the piece.
    pub(crate) fn distance_at(&self, t: f64) -> f64 {
        let mut s = self.s0;
        let mut left = t;
        for r in self.ramps() {
            if left <= r.ticks {
                s += r.distance_at(left.max(0.0));
                return s.min(self.s1);
            }
            s += r.distance_at(r.ticks);
            left -= r.ticks;
        }
        self.s1
    }

    /// The path speed shape of this piece as the only piece of a group that starts at tick
    /// `group_start_tick` and lasts `group_ticks` (see [`Group::path_shape`]; the group's own
    /// duration is passed, not recomputed, so that the fit uses exactly the group's figure).
    #[inline]
    pub(crate) fn path_shape(&self, group_start_tick: f64, group_ticks: f64) -> (f64, f64) {
        if self.n == 1 {
            let Some(r) = self.ramps.first() else {
                return (1.0, 1.0);
            };
            return if r.v0 >= 0.0 && r.v1 >= 0.0 && r.v0 + r.v1 > 0.0 {
                (r.v0, r.v1)
            } else {
                (1.0, 1.0)
            };
        }
        // The least-squares fit of the path speed (see `fitted_shape`, with share 1).
        let (mut d, mut f, mut lo, mut hi) = (0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY);
        let mut t = self.start_tick - group_start_tick;
        for r in self.ramps() {
            let area = 0.5 * (r.v0 + r.v1) * r.ticks;
            d += area;
            f += t * area + r.ticks * r.ticks * (r.v0 + 2.0 * r.v1) * (1.0 / 6.0);
            // Speeds are finite (checked when the block was planned): plain comparisons.
            let (low, high) = if r.v0 <= r.v1 {
                (r.v0, r.v1)
            } else {
                (r.v1, r.v0)
            };
            if low < lo {
                lo = low;
            }
            if high > hi {
                hi = high;
            }
            t += r.ticks;
        }
        let p = group_ticks;
        if p.is_nan() || p <= 0.0 {
            return (1.0, 1.0);
        }
        let mean = d / p;
        // (NaN fails every comparison.)
        let usable = (mean > 0.0) & (lo > f64::NEG_INFINITY) & (hi < f64::INFINITY);
        if !usable {
            return (1.0, 1.0);
        }
        let slope = 12.0 * (f - 0.5 * p * d) / (p * p * p);
        let floor = if lo > 0.0 { lo } else { 0.0 };
        let room = if mean - floor < hi - mean {
            mean - floor
        } else {
            hi - mean
        };
        let limit = if room > 0.0 { room } else { 0.0 };
        let wanted = 0.5 * slope * p;
        let half = if wanted > limit {
            limit
        } else if wanted < -limit {
            -limit
        } else {
            wanted
        };
        if half.abs() < f64::INFINITY {
            (mean - half, mean + half)
        } else {
            (1.0, 1.0)
        }
    }

    /// Splits after `t` ticks (0 < t < ticks()).
    pub(crate) fn split(&self, t: f64) -> (Self, Self) {
        let mut head = *self;
        let mut tail = *self;
        head.n = 0;
        tail.n = 0;
        // Unused ramp slots stay zero (see `Piece::ramps`).
        head.ramps = [Ramp::default(); 3];
        tail.ramps = [Ramp::default(); 3];
        let mut left = t;
        for r in self.ramps() {
            if left >= r.ticks {
                push_ramp(&mut head, *r);
                left -= r.ticks;
            } else if left > 0.0 {
                let (a, b) = r.split(left);
                push_ramp(&mut head, a);
                push_ramp(&mut tail, b);
                left = 0.0;
            } else {
                push_ramp(&mut tail, *r);
            }
        }
        let s = self.distance_at(t).clamp(self.s0, self.s1);
        head.s1 = s;
        tail.s0 = s;
        tail.start_tick = self.start_tick + t;
        (head, tail)
    }
}

fn push_ramp(p: &mut Piece, r: Ramp) {
    if let Some(slot) = p.ramps.get_mut(p.n) {
        *slot = r;
        p.n += 1;
    }
}

/// A block cut into pieces of at least the minimum move duration where the block allows it.
#[derive(Clone, Copy, PartialEq, Debug, Default)]
pub(crate) struct BlockPlan {
    pub(crate) pieces: [Piece; 3],
    pub(crate) n: usize,
    /// Planned duration of the whole block in ticks.
    pub(crate) ticks: f64,
    /// `motor_target` of the block's end point.
    pub(crate) end_target: MotorSteps,
}

#[cfg(test)]
impl BlockPlan {
    pub(crate) fn pieces(&self) -> &[Piece] {
        self.pieces.get(..self.n).unwrap_or(&[])
    }
}

/// Checks `block` and cuts it into pieces: its accel, cruise and decel phases, with any phase
/// shorter than `min_ticks` merged into a neighbouring phase of the same block (no geometric
/// error: the block is straight). Only a block shorter than `min_ticks` as a whole stays short.
#[inline(always)]
pub(crate) fn plan_block(
    block: &Block,
    kinematics: Kinematics,
    from: MotorSteps,
    start_tick: f64,
    min_ticks: f64,
    plan: &mut BlockPlan,
) -> Result<(), StepError> {
    let b = block;
    let (len, a, cruise) = (b.length_mm, b.accel_mm_s2, b.cruise_mm_s);
    let (dx, dy) = (b.end.x_mm - b.start.x_mm, b.end.y_mm - b.start.y_mm);
    let chord = libm::sqrt(dx * dx + dy * dy);
    let slack = 1e-9 * (1.0 + cruise);
    // `lesser`/`greater` where a tie's sign of zero or a NaN cannot change the outcome (see
    // `lesser`): a plain comparison instead of the eight instructions of `f64::min`/`max`.
    let (entry, exit) = (lesser(b.entry_mm_s, cruise), lesser(b.exit_mm_s, cruise));
    // The same phase arithmetic as Block's helpers (accel_distance_mm, duration_s, …).
    let (d_a, d_d, t_a, t_d) = if a > 0.0 {
        (
            (cruise * cruise - entry * entry) / (2.0 * a),
            (cruise * cruise - exit * exit) / (2.0 * a),
            (cruise - entry) / a,
            (cruise - exit) / a,
        )
    } else {
        (0.0, 0.0, 0.0, 0.0)
    };
    let (m0, m1) = (
        kinematics.motor_exact(b.start),
        kinematics.motor_exact(b.end),
    );
    let d_c = greater(len - d_a - d_d, 0.0);
    let t_c = if cruise > 0.0 { d_c / cruise } else { 0.0 };
    let seconds = t_a + t_c + t_d;
    // Every check of `block_error` at once, without branches; only when one fails does
    // `block_error` say which (in its order). The coordinates need no finiteness term of their
    // own: a NaN or infinite coordinate makes a motor coordinate NaN or infinite, which fails
    // its `POSITION_LIMIT` comparison below.
    let finite = zero_if_finite(len)
        + zero_if_finite(b.entry_mm_s)
        + zero_if_finite(cruise)
        + zero_if_finite(b.exit_mm_s)
        + zero_if_finite(a)
        == 0.0;
    let valid = finite
        & (len >= 0.0)
        & (b.entry_mm_s >= 0.0)
        & (cruise >= 0.0)
        & (b.exit_mm_s >= 0.0)
        & (a >= 0.0)
        & ((chord - len).abs() <= 1e-6 * (1.0 + len))
        & (b.entry_mm_s <= cruise + slack)
        & (b.exit_mm_s <= cruise + slack)
        & ((len <= 0.0) | (cruise > 0.0))
        & (d_a + d_d <= len * (1.0 + 1e-9) + 1e-9)
        & (m0.0.abs() <= POSITION_LIMIT)
        & (m0.1.abs() <= POSITION_LIMIT)
        & (m1.0.abs() <= POSITION_LIMIT)
        & (m1.1.abs() <= POSITION_LIMIT)
        & (seconds <= MAX_BLOCK_SECONDS);
    if !valid {
        block_error(b, kinematics)?;
    }
    let line = Line {
        start: b.start,
        end: b.end,
        length_mm: len,
        share: if len > 0.0 {
            [(m1.0 - m0.0) / len, (m1.1 - m0.1) / len]
        } else {
            [0.0, 0.0]
        },
        from,
        to: motor_target(kinematics, b.end),
    };
    let per_tick = 1.0 / TICKS_PER_S;
    let s_a = d_a.min(len);
    let s_c = greater(len - d_d, s_a);
    let phases = [
        (t_a, entry, cruise, s_a),
        (t_c, cruise, cruise, s_c),
        (t_d, cruise, exit, len),
    ];
    plan.n = 0;
    plan.ticks = seconds * TICKS_PER_S;
    plan.end_target = line.to;
    // Non-empty phases as ramps, with the path distance where each ends.
    let mut ramps = [(Ramp::default(), 0.0f64); 3];
    let mut n = 0;
    for (secs, v0, v1, s_end) in phases {
        // Written whether or not the phase has time, and kept (counted) only if it has: which
        // phases a block has varies at random along a drawing, and a branch on it is
        // mispredicted about once per block. Slots from `n` on are never read.
        if let Some(slot) = ramps.get_mut(n) {
            *slot = (
                Ramp {
                    ticks: secs * TICKS_PER_S,
                    v0: v0 * per_tick,
                    v1: v1 * per_tick,
                },
                s_end,
            );
        }
        n += usize::from(secs > 0.0);
    }
    let mut dur = [0.0f64; 3];
    for (d, (r, _)) in dur.iter_mut().zip(ramps.iter()) {
        *d = r.ticks;
    }
    let join = joins(dur.get(..n).unwrap_or(&[]), min_ticks);
    // Build the pieces.
    let mut s0 = 0.0;
    let mut tick = start_tick;
    for (i, &(ramp, s_end)) in ramps.iter().enumerate().take(n) {
        let joined = i > 0 && join.get(i - 1).copied().unwrap_or(false);
        if joined {
            if let Some(p) = plan.n.checked_sub(1).and_then(|j| plan.pieces.get_mut(j)) {
                push_ramp(p, ramp);
                p.s1 = s_end;
            }
        } else if let Some(p) = plan.pieces.get_mut(plan.n) {
            *p = Piece {
                line,
                s0,
                s1: s_end,
                ramps: [ramp, Ramp::default(), Ramp::default()],
                n: 1,
                start_tick: tick,
                pen: b.pen,
                tag: b.tag,
            };
            plan.n += 1;
        }
        s0 = s_end;
        tick += ramp.ticks;
    }
    if let Some(last) = plan.n.checked_sub(1).and_then(|i| plan.pieces.get_mut(i)) {
        last.s1 = len;
    }
    Ok(())
}

/// The smaller of `a` and `b` by one comparison (`b` on a tie, `a` when either is NaN), for
/// the block arithmetic of [`plan_block`] where that equals `f64::min` in every outcome:
/// a NaN there fails the block's finiteness check either way, an entry or exit speed tied
/// with the cruise speed only enters a phase of zero time, and `joins` compares the result
/// of positive durations. `f64::min`'s NaN rule costs eight instructions.
#[inline]
fn lesser(a: f64, b: f64) -> f64 {
    if b < a { b } else { a }
}

/// The larger of `a` and `b` by one comparison (`b` on a tie, `a` when either is NaN; see
/// [`lesser`]): the cruise distance (a NaN there stays NaN where `f64::max` gives 0, but then
/// `d_a`, `d_d` or the length is NaN and the block fails its `d_a + d_d ≤ length` check either
/// way; a sign of zero vanishes in the sum of the phase times) and the cruise phase's end (read
/// only when the cruise phase has time, and then the two differ).
#[inline]
fn greater(a: f64, b: f64) -> f64 {
    if b > a { b } else { a }
}

/// `0` for a finite `x`, NaN for an infinite or NaN one: a sum of these is 0 exactly when every
/// term is finite.
#[inline]
#[allow(clippy::eq_op)]
fn zero_if_finite(x: f64) -> f64 {
    x - x
}

/// The first thing wrong with `block`, checked one by one (the slow path of [`plan_block`]'s
/// combined check, which accepts exactly what this accepts).
#[cold]
#[inline(never)]
fn block_error(block: &Block, kinematics: Kinematics) -> Result<(), StepError> {
    let b = block;
    let finite = b.start.is_finite()
        && b.end.is_finite()
        && b.length_mm.is_finite()
        && b.entry_mm_s.is_finite()
        && b.cruise_mm_s.is_finite()
        && b.exit_mm_s.is_finite()
        && b.accel_mm_s2.is_finite();
    if !finite {
        return Err(StepError::InvalidBlock(
            "a coordinate or speed is not finite",
        ));
    }
    let (len, a) = (b.length_mm, b.accel_mm_s2);
    if len < 0.0 || b.entry_mm_s < 0.0 || b.cruise_mm_s < 0.0 || b.exit_mm_s < 0.0 || a < 0.0 {
        return Err(StepError::InvalidBlock(
            "length, speeds and acceleration must not be negative",
        ));
    }
    let (dx, dy) = (b.end.x_mm - b.start.x_mm, b.end.y_mm - b.start.y_mm);
    let chord = libm::sqrt(dx * dx + dy * dy);
    if (chord - len).abs() > 1e-6 * (1.0 + len) {
        return Err(StepError::InvalidBlock(
            "length_mm differs from the distance between start and end",
        ));
    }
    let cruise = b.cruise_mm_s;
    let slack = 1e-9 * (1.0 + cruise);
    if b.entry_mm_s > cruise + slack || b.exit_mm_s > cruise + slack {
        return Err(StepError::InvalidBlock(
            "entry or exit speed above the cruise speed",
        ));
    }
    if len > 0.0 && cruise <= 0.0 {
        return Err(StepError::InvalidBlock("a block with length has no speed"));
    }
    let (entry, exit) = (b.entry_mm_s.min(cruise), b.exit_mm_s.min(cruise));
    // The same phase arithmetic as Block's helpers (accel_distance_mm, duration_s, …).
    let (d_a, d_d, t_a, t_d) = if a > 0.0 {
        (
            (cruise * cruise - entry * entry) / (2.0 * a),
            (cruise * cruise - exit * exit) / (2.0 * a),
            (cruise - entry) / a,
            (cruise - exit) / a,
        )
    } else {
        (0.0, 0.0, 0.0, 0.0)
    };
    if d_a + d_d > len * (1.0 + 1e-9) + 1e-9 {
        return Err(StepError::InvalidBlock(
            "accelerating and decelerating need more than the block's length",
        ));
    }
    let (m0, m1) = (
        kinematics.motor_exact(b.start),
        kinematics.motor_exact(b.end),
    );
    if !(m0.0.abs() <= POSITION_LIMIT
        && m0.1.abs() <= POSITION_LIMIT
        && m1.0.abs() <= POSITION_LIMIT
        && m1.1.abs() <= POSITION_LIMIT)
    {
        return Err(StepError::OutOfRange);
    }
    let d_c = (len - d_a - d_d).max(0.0);
    let t_c = if cruise > 0.0 { d_c / cruise } else { 0.0 };
    let seconds = t_a + t_c + t_d;
    // NaN-safe: a NaN duration is refused too.
    if seconds.is_nan() || seconds > MAX_BLOCK_SECONDS {
        return Err(StepError::TooLong);
    }
    Ok(())
}

/// Which neighbouring phases (of durations `d`) share a piece: `[0|1, 1|2]`. The shortest phase
/// under `min` joins its shorter neighbour, and again if the result is still too short.
fn joins(d: &[f64], min: f64) -> [bool; 2] {
    match *d {
        [a, b] => [lesser(a, b) < min, false],
        [a, b, c] => {
            let first = if a <= b && a <= c {
                (a < min).then_some(0)
            } else if c <= b {
                (c < min).then_some(1)
            } else {
                (b < min).then_some(if a <= c { 0 } else { 1 })
            };
            match first {
                None => [false, false],
                Some(0) => [true, lesser(a + b, c) < min],
                Some(_) => [lesser(a, b + c) < min, true],
            }
        }
        _ => [false, false],
    }
}

/// Per-motor integrals of a group's planned motor speed `u(t)`.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) struct Moments {
    /// Planned displacement `∫u dt` (steps).
    pub(crate) disp: [f64; 2],
    /// First moment `∫t·u dt`, `t` from the group's start.
    pub(crate) moment: [f64; 2],
    /// Lowest and highest planned motor speed (steps per tick, signed).
    pub(crate) speed_min: [f64; 2],
    pub(crate) speed_max: [f64; 2],
}

impl Default for Moments {
    fn default() -> Self {
        Self {
            disp: [0.0; 2],
            moment: [0.0; 2],
            speed_min: [f64::INFINITY; 2],
            speed_max: [f64::NEG_INFINITY; 2],
        }
    }
}

impl Moments {
    /// Adds `piece`, which starts `t` ticks after the group.
    fn add(&mut self, piece: &Piece, mut t: f64) {
        for r in piece.ramps() {
            for i in 0..2 {
                let k = piece.line.share[i];
                let (u0, u1) = (k * r.v0, k * r.v1);
                self.disp[i] += 0.5 * (u0 + u1) * r.ticks;
                self.moment[i] +=
                    0.5 * t * (u0 + u1) * r.ticks + r.ticks * r.ticks * (u0 + 2.0 * u1) / 6.0;
                self.speed_min[i] = self.speed_min[i].min(u0.min(u1));
                self.speed_max[i] = self.speed_max[i].max(u0.max(u1));
            }
            t += r.ticks;
        }
    }

    /// Adds `other`, which starts `shift` ticks after the group.
    fn absorb(&mut self, other: &Self, shift: f64) {
        for i in 0..2 {
            self.moment[i] += other.moment[i] + shift * other.disp[i];
            self.disp[i] += other.disp[i];
            self.speed_min[i] = self.speed_min[i].min(other.speed_min[i]);
            self.speed_max[i] = self.speed_max[i].max(other.speed_max[i]);
        }
    }
}

/// Pieces gathered into one firmware move (or one run of SM slices).
#[derive(Clone, Copy, PartialEq, Debug, Default)]
pub(crate) struct Group {
    pub(crate) start_tick: f64,
    pub(crate) end_tick: f64,
    pub(crate) start_point: Point,
    pub(crate) end_point: Point,
    pub(crate) start_target: MotorSteps,
    pub(crate) end_target: MotorSteps,
    pub(crate) path_mm: f64,
    /// Bound of the path's distance from the chord, built up merge by merge (see
    /// [`Group::chord_error_mm`]).
    merge_error_mm: f64,
    /// Integrals of all pieces; only kept once there are two (one piece: from `last`).
    merged: Moments,
    pub(crate) pieces: u32,
    /// The last piece added: the whole group when `pieces == 1`.
    pub(crate) last: Piece,
}

impl Group {
    /// A group of one piece, starting from motor position `from`.
    #[cfg(test)]
    pub(crate) fn new(piece: &Piece, from: MotorSteps, kinematics: Kinematics) -> Self {
        let mut g = Self::default();
        g.start(piece, from, piece.line.point_at(piece.s0), kinematics);
        g
    }

    /// Makes this slot a group of one piece, starting from motor position `from` and planned
    /// point `start_point`, which must be `piece.line.point_at(piece.s0)` (the caller has it
    /// from the piece before; in place: groups are large, and this runs once per firmware
    /// move).
    #[inline]
    pub(crate) fn start(
        &mut self,
        piece: &Piece,
        from: MotorSteps,
        start_point: Point,
        kinematics: Kinematics,
    ) {
        let end_point = piece.line.point_at(piece.s1);
        let end_target = piece.line.target_of(piece.s1, end_point, kinematics);
        let end_tick = piece.start_tick + piece.ticks();
        self.start_known(piece, from, start_point, (end_point, end_target, end_tick));
    }

    /// [`Self::start`] with the piece's end already computed: its point, rounded target and
    /// tick, `(point_at(s1), target_of(s1, …), start_tick + ticks())`.
    #[inline]
    pub(crate) fn start_known(
        &mut self,
        piece: &Piece,
        from: MotorSteps,
        start_point: Point,
        (end_point, end_target, end_tick): (Point, MotorSteps, f64),
    ) {
        debug_assert!(start_point == piece.line.point_at(piece.s0));
        self.start_tick = piece.start_tick;
        self.end_tick = end_tick;
        self.start_point = start_point;
        self.end_point = end_point;
        self.start_target = from;
        self.end_target = end_target;
        self.path_mm = piece.length_mm();
        self.merge_error_mm = 0.0;
        // `merged` is only read once there are two pieces (`add` and `absorb` set it first).
        self.pieces = 1;
        // Field by field: each part is small enough to be copied inline, where the whole
        // 192-byte piece became a call to `memcpy` once per firmware move.
        let last = &mut self.last;
        last.line = piece.line;
        (last.s0, last.s1) = (piece.s0, piece.s1);
        last.ramps = piece.ramps;
        (last.n, last.start_tick, last.pen, last.tag) =
            (piece.n, piece.start_tick, piece.pen, piece.tag);
    }

    /// The per-motor integrals of the whole group.
    pub(crate) fn moments(&self) -> Moments {
        if self.pieces == 1 {
            let mut m = Moments::default();
            m.add(&self.last, self.last.start_tick - self.start_tick);
            m
        } else {
            self.merged
        }
    }

    /// Appends `piece` (which starts where the group ends).
    pub(crate) fn add(&mut self, piece: &Piece, kinematics: Kinematics) {
        if self.pieces == 1 {
            self.merged = self.moments();
        }
        self.merged.add(piece, piece.start_tick - self.start_tick);
        self.end_tick = piece.start_tick + piece.ticks();
        let end = piece.line.point_at(piece.s1);
        self.merge_error_mm += distance_to_segment(self.end_point, self.start_point, end);
        self.end_point = end;
        self.end_target = piece.line.target_at(piece.s1, kinematics);
        self.path_mm += piece.length_mm();
        self.pieces += 1;
        self.last = *piece;
    }

    /// Appends the whole of `other` (which starts where this group ends).
    pub(crate) fn absorb(&mut self, other: &Self) {
        let mut merged = self.moments();
        merged.absorb(&other.moments(), other.start_tick - self.start_tick);
        self.merged = merged;
        self.end_tick = other.end_tick;
        self.merge_error_mm = self.merge_error_mm.max(other.merge_error_mm)
            + distance_to_segment(self.end_point, self.start_point, other.end_point);
        self.end_point = other.end_point;
        self.end_target = other.end_target;
        self.path_mm += other.path_mm;
        self.pieces += other.pieces;
        self.last = other.last;
    }

    /// Planned duration in ticks.
    pub(crate) fn ticks(&self) -> f64 {
        self.end_tick - self.start_tick
    }

    /// Whether any motor moves between the group's rounded start and end.
    pub(crate) fn has_steps(&self) -> bool {
        self.start_target != self.end_target
    }

    /// Start and end of the least-squares constant-acceleration fit of motor `axis`'s planned
    /// speed, in the direction `sign` (±1) the motor actually moves, kept within the planned
    /// speed range (so a merge never asks for more than the plan's top speed) and non-negative.
    /// `(1, 1)` (constant speed) when the plan has no usable shape for this motor.
    #[cfg(test)]
    pub(crate) fn shape(&self, axis: usize, sign: f64) -> (f64, f64) {
        if self.is_one_ramp() {
            self.ramp_shape(axis, sign)
        } else {
            self.fitted_shape(&self.moments(), axis, sign)
        }
    }

    /// [`Self::shape`] of both motors (directions `signs`), the integrals computed once.
    #[inline]
    pub(crate) fn shapes(&self, signs: [f64; 2]) -> [(f64, f64); 2] {
        if self.is_one_ramp() {
            [self.ramp_shape(0, signs[0]), self.ramp_shape(1, signs[1])]
        } else {
            let m = self.moments();
            [
                self.fitted_shape(&m, 0, signs[0]),
                self.fitted_shape(&m, 1, signs[1]),
            ]
        }
    }

    /// The shape of the planned path speed over a group within one block (start and end, mm
    /// per tick): every motor's planned speed is its share of the path speed, so each motor's
    /// [`Self::shape`] is this one scaled by `sign·share` when that is positive. `(1, 1)`
    /// (constant speed) when the plan has no usable shape. Meaningless for a group over several
    /// blocks (`pieces > 1`).
    #[inline]
    pub(crate) fn path_shape(&self) -> (f64, f64) {
        self.last.path_shape(self.start_tick, self.ticks())
    }

    /// A single ramp: the plan itself is the shape, no fit needed.
    #[inline]
    fn is_one_ramp(&self) -> bool {
        self.pieces == 1 && self.last.n == 1
    }

    #[inline]
    fn ramp_shape(&self, axis: usize, sign: f64) -> (f64, f64) {
        let (Some(k), Some(r)) = (self.last.line.share.get(axis), self.last.ramps.first()) else {
            return (1.0, 1.0);
        };
        let (u0, u1) = (sign * k * r.v0, sign * k * r.v1);
        if u0 >= 0.0 && u1 >= 0.0 && u0 + u1 > 0.0 {
            (u0, u1)
        } else {
            (1.0, 1.0)
        }
    }

    /// The least-squares fit of motor `axis` from the group's integrals `m`.
    fn fitted_shape(&self, m: &Moments, axis: usize, sign: f64) -> (f64, f64) {
        let p = self.ticks();
        let (Some(&d), Some(&f), Some(&lo), Some(&hi)) = (
            m.disp.get(axis),
            m.moment.get(axis),
            m.speed_min.get(axis),
            m.speed_max.get(axis),
        ) else {
            return (1.0, 1.0);
        };
        if p.is_nan() || p <= 0.0 {
            return (1.0, 1.0);
        }
        let mean = sign * d / p;
        let (lo, hi) = if sign > 0.0 { (lo, hi) } else { (-hi, -lo) };
        if mean.is_nan() || mean <= 0.0 || !lo.is_finite() || !hi.is_finite() {
            return (1.0, 1.0);
        }
        let slope = 12.0 * sign * (f - 0.5 * p * d) / (p * p * p);
        let limit = (mean - lo.max(0.0)).min(hi - mean).max(0.0);
        let half = (0.5 * slope * p).clamp(-limit, limit);
        if half.is_finite() {
            (mean - half, mean + half)
        } else {
            (1.0, 1.0)
        }
    }

    /// Upper bound of how far the planned path strays from the straight chord this group is
    /// executed along (zero within one block: it is straight). The smaller of two bounds:
    ///
    /// * merge by merge: joining a path A→J (within `e₁` of chord AJ) and J→B (within `e₂` of
    ///   JB) gives a path within `max(e₁, e₂) + dist(J, AB)` of AB, since the distance to a
    ///   segment is convex along AJ and JB and zero at A and B;
    /// * globally: a path of length `L` between points `c` apart lies in the ellipse with those
    ///   foci and major axis `L`, at most `½·√(L² − c²)` from the chord.
    pub(crate) fn chord_error_mm(&self) -> f64 {
        if self.pieces <= 1 {
            return 0.0;
        }
        let c = self.start_point.distance_to(self.end_point);
        let l = self.path_mm.max(c);
        let ellipse = 0.5 * libm::sqrt((l - c) * (l + c));
        ellipse.min(self.merge_error_mm)
    }
}

/// Distance from `p` to the segment `a`–`b`.
fn distance_to_segment(p: Point, a: Point, b: Point) -> f64 {
    let (dx, dy) = (b.x_mm - a.x_mm, b.y_mm - a.y_mm);
    let (px, py) = (p.x_mm - a.x_mm, p.y_mm - a.y_mm);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        ((px * dx + py * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (ex, ey) = (px - t * dx, py - t * dy);
    libm::sqrt(ex * ex + ey * ey)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinematics::Resolution;
    use crate::step::timing::round_i64;

    fn block(len: f64, entry: f64, cruise: f64, exit: f64, accel: f64) -> Block {
        Block {
            start: Point::new(10.0, 10.0),
            end: Point::new(10.0 + len, 10.0),
            pen: Pen::Down,
            tag: Tag::default(),
            length_mm: len,
            entry_mm_s: entry,
            cruise_mm_s: cruise,
            exit_mm_s: exit,
            accel_mm_s2: accel,
        }
    }

    fn k() -> Kinematics {
        Kinematics::new(Resolution::High)
    }

    fn planned(b: &Block) -> Result<BlockPlan, StepError> {
        let mut plan = BlockPlan::default();
        plan_block(b, k(), k().to_motor(b.start), 0.0, 100.0, &mut plan).map(|()| plan)
    }

    #[test]
    fn trapezoid_has_three_pieces_and_the_planned_time() {
        let b = block(100.0, 0.0, 50.0, 0.0, 500.0);
        let plan = planned(&b).unwrap();
        assert_eq!(plan.n, 3);
        let total: f64 = plan.pieces().iter().map(Piece::ticks).sum();
        assert!((total - b.duration_s() * 25_000.0).abs() < 1e-6);
        assert!((plan.ticks - total).abs() < 1e-6);
        assert_eq!(plan.pieces[2].s1, 100.0);
        assert_eq!(
            plan.pieces[2].line.target_at(100.0, k()),
            MotorSteps::new(9600, 8000)
        );
    }

    #[test]
    fn short_phase_merges_into_its_block_neighbour() {
        // Accelerating from 49 to 50 mm/s takes 2 ms, under a 4 ms minimum.
        let b = block(100.0, 49.0, 50.0, 0.0, 500.0);
        let plan = planned(&b).unwrap();
        assert_eq!(plan.n, 2);
        assert_eq!(plan.pieces[0].n, 2);
        // A tiny block stays one short piece.
        let b = block(0.05, 0.0, 50.0, 0.0, 1e5);
        let plan = planned(&b).unwrap();
        assert_eq!(plan.n, 1);
        assert!(plan.pieces[0].ticks() < 100.0);
    }

    #[test]
    fn chord_error_bounds_a_lopsided_merge_tightly() {
        // 50 mm along X, then 0.2 mm down: the corner is 0.2 mm from the chord at most.
        let long = block(50.0, 10.0, 10.0, 10.0, 500.0);
        let mut short = block(0.0, 10.0, 10.0, 10.0, 500.0);
        short.start = long.end;
        short.end = Point::new(long.end.x_mm, long.end.y_mm + 0.2);
        short.length_mm = 0.2;
        let (a, b) = (planned(&long).unwrap(), planned(&short).unwrap());
        let mut g = Group::new(&a.pieces[0], k().to_motor(long.start), k());
        let mut p = b.pieces[0];
        p.start_tick = g.end_tick;
        g.add(&p, k());
        let e = g.chord_error_mm();
        assert!(
            (0.2 * 50.0 / 50.0004 - 1e-9..=0.2 + 1e-9).contains(&e),
            "{e}"
        );
        // The ellipse bound alone would say 2.2 mm.
        assert!(
            distance_to_segment(Point::new(0.0, 1.0), Point::ORIGIN, Point::new(2.0, 0.0)) == 1.0
        );
    }

    #[test]
    fn short_phases_join_their_shorter_neighbour() {
        assert_eq!(joins(&[50.0, 500.0], 100.0), [true, false]);
        assert_eq!(joins(&[150.0, 500.0], 100.0), [false, false]);
        assert_eq!(joins(&[500.0, 20.0, 300.0], 100.0), [false, true]);
        assert_eq!(joins(&[200.0, 20.0, 300.0], 100.0), [true, false]);
        assert_eq!(joins(&[30.0, 30.0, 30.0], 100.0), [true, true]);
        assert_eq!(joins(&[30.0, 500.0, 30.0], 100.0), [true, true]);
        assert_eq!(joins(&[500.0], 100.0), [false, false]);
    }

    #[test]
    fn invalid_blocks_are_refused() {
        let mut b = block(10.0, 0.0, 50.0, 0.0, 500.0);
        b.cruise_mm_s = f64::NAN;
        assert!(planned(&b).is_err());
        let b = block(10.0, 60.0, 50.0, 0.0, 500.0);
        assert!(planned(&b).is_err());
        // Needs 5 mm to accelerate and 5 mm to stop in a 1 mm block.
        let b = block(1.0, 0.0, 100.0, 0.0, 1000.0);
        assert!(planned(&b).is_err());
        let mut b = block(1.0, 0.0, 10.0, 0.0, 1000.0);
        b.length_mm = 2.0;
        assert!(planned(&b).is_err());
        let mut b = block(1.0, 0.0, 10.0, 0.0, 1000.0);
        b.end = Point::new(1e9, 0.0);
        b.length_mm = b.start.distance_to(b.end);
        assert_eq!(planned(&b), Err(StepError::OutOfRange));
        let b = block(2000.0, 1e-6, 1e-6, 1e-6, 0.0);
        assert_eq!(planned(&b), Err(StepError::TooLong));
    }

    #[test]
    fn split_keeps_distance_and_time() {
        let b = block(100.0, 0.0, 50.0, 0.0, 500.0);
        let plan = planned(&b).unwrap();
        let p = plan.pieces[0];
        let (h, t) = p.split(1000.0);
        assert!((h.ticks() - 1000.0).abs() < 1e-9);
        assert!((h.ticks() + t.ticks() - p.ticks()).abs() < 1e-9);
        // From rest at 500 mm/s²: 0.5·500·0.04² = 0.4 mm after 40 ms.
        assert!((h.s1 - 0.4).abs() < 1e-9);
        assert_eq!(t.s0, h.s1);
        assert!((t.start_tick - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn fit_of_one_phase_is_the_phase() {
        let b = block(100.0, 0.0, 50.0, 0.0, 500.0);
        let plan = planned(&b).unwrap();
        let g = Group::new(&plan.pieces[0], MotorSteps::new(1600, 0), k());
        let (s0, s1) = g.shape(0, 1.0);
        let top = 50.0 * 80.0 / 25_000.0;
        assert!(s0.abs() < 1e-12 && (s1 - top).abs() < 1e-12, "{s0} {s1}");
        assert_eq!(g.chord_error_mm(), 0.0);
        // Along a motor's own diagonal the other motor does not move: constant fallback.
        let mut d = block(0.0, 0.0, 50.0, 0.0, 500.0);
        d.end = Point::new(20.0, 20.0);
        d.length_mm = d.start.distance_to(d.end);
        let plan = planned(&d).unwrap();
        let g = Group::new(&plan.pieces[0], MotorSteps::new(1600, 0), k());
        assert_eq!(g.shape(1, 1.0), (1.0, 1.0));
    }

    #[test]
    fn merged_fit_stays_within_the_planned_speeds() {
        // A short accel phase merged with a long cruise: the fit must not exceed the cruise.
        let b = block(100.0, 49.0, 50.0, 50.0, 500.0);
        let plan = planned(&b).unwrap();
        assert_eq!(plan.n, 1);
        let g = Group::new(&plan.pieces[0], MotorSteps::new(1600, 0), k());
        let (s0, s1) = g.shape(0, 1.0);
        let top = 50.0 * 80.0 / 25_000.0;
        assert!(s1 <= top + 1e-15 && s0 <= s1 && s0 >= 49.0 * 80.0 / 25_000.0 - 1e-15);
    }

    /// A value for a block field: ordinary, at an edge, or invalid.
    fn field(ordinary: core::ops::Range<f64>) -> impl proptest::strategy::Strategy<Value = f64> {
        use proptest::prelude::*;
        prop_oneof![
            6 => ordinary,
            1 => prop::sample::select(vec![
                0.0,
                -0.0,
                -1e-12,
                1e-300,
                -1.0,
                1e30,
                1e200,
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ]),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// `plan_block`'s combined check accepts exactly the blocks `block_error` accepts, and
        /// refuses the others with the same error.
        #[test]
        fn combined_check_is_block_error(
            (sx, sy) in (field(-500.0..500.0), field(-500.0..500.0)),
            (dx, dy) in (field(-50.0..50.0), field(-50.0..50.0)),
            length_error in proptest::prop_oneof![4 => proptest::strategy::Just(0.0), 1 => -1e-3f64..1e-3],
            (entry, cruise, exit) in (field(0.0..60.0), field(0.0..60.0), field(0.0..60.0)),
            accel in field(0.0..2000.0),
            far in proptest::prop_oneof![8 => proptest::strategy::Just(1.0), 1 => proptest::strategy::Just(1e7)],
        ) {
            let start = Point::new(sx * far, sy);
            let end = Point::new(sx * far + dx, sy + dy);
            let b = Block {
                start,
                end,
                pen: Pen::Down,
                tag: Tag::default(),
                length_mm: libm::sqrt(dx * dx + dy * dy) + length_error,
                entry_mm_s: entry,
                cruise_mm_s: cruise,
                exit_mm_s: exit,
                accel_mm_s2: accel,
            };
            let mut plan = BlockPlan::default();
            let got = plan_block(&b, k(), k().to_motor(b.start), 0.0, 100.0, &mut plan);
            proptest::prop_assert_eq!(got, block_error(&b, k()), "{:?}", b);
        }

        /// For a group within one block every motor's fitted shape is the path speed's shape
        /// scaled by its share: the wish the generator derives once per move is the wish of
        /// each motor.
        #[test]
        fn path_shape_is_every_motors_shape(
            len in 0.05f64..30.0,
            angle in 0.0f64..core::f64::consts::TAU,
            (entry, cruise, exit) in (0.0f64..60.0, 0.0f64..60.0, 0.0f64..60.0),
            accel in 50.0f64..3000.0,
        ) {
            let cruise = cruise.max(entry).max(exit).max(0.1);
            // Shorten the ramps until they fit the length.
            let fit = |v: f64| {
                let d = (cruise * cruise - v * v) / (2.0 * accel);
                if 2.0 * d <= len { v } else { libm::sqrt((cruise * cruise - accel * len).max(0.0)) }
            };
            let mut b = block(len, fit(entry), cruise, fit(exit), accel);
            b.end = Point::new(b.start.x_mm + len * libm::cos(angle), b.start.y_mm + len * libm::sin(angle));
            b.length_mm = b.start.distance_to(b.end);
            let Ok(plan) = planned(&b) else { return Ok(()); };
            for piece in plan.pieces() {
                let g = Group::new(piece, k().to_motor(b.start), k());
                let (p0, p1) = g.path_shape();
                for axis in 0..2 {
                    let share = piece.line.share[axis];
                    if share == 0.0 {
                        continue;
                    }
                    let sign = share.signum();
                    let (s0, s1) = g.shape(axis, sign);
                    // Same shape up to scale: compare the normalised start.
                    let (a, b) = (p0 / (p0 + p1), s0 / (s0 + s1));
                    proptest::prop_assert!((a - b).abs() <= 1e-9, "{:?} vs {:?}", (p0, p1), (s0, s1));
                }
            }
        }

        /// `round_i64` is `libm::round` (half away from zero) everywhere.
        #[test]
        fn round_i64_is_libm_round(
            v in proptest::prop_oneof![
                -1e6f64..1e6,
                -1e17f64..1e17,
                proptest::strategy::Strategy::prop_map(-1_000_000i64..1_000_000, |i| i as f64 + 0.5),
            ],
        ) {
            proptest::prop_assert_eq!(round_i64(v), libm::round(v) as i64);
            let clamped = (libm::round(v) as i64).clamp(i64::from(i32::MIN), i64::from(i32::MAX));
            proptest::prop_assert_eq!(round_i32(v), clamped as i32);
            // Near the top of the i32 range, where the cast saturates.
            let high = v * 1e-6 + 2147483647.0;
            let high_want = (libm::round(high) as i64).clamp(i64::from(i32::MIN), i64::from(i32::MAX));
            proptest::prop_assert_eq!(round_i32(high), high_want as i32);
        }

        /// The fast rounding gives exactly `Kinematics::to_motor`, halves and extremes included.
        #[test]
        fn motor_target_is_to_motor(
            x in proptest::prop_oneof![-1e8f64..1e8, -100.0f64..100.0],
            y in proptest::prop_oneof![-1e8f64..1e8, -100.0f64..100.0],
            half in proptest::bool::ANY,
        ) {
            let k = k();
            // Land exactly on .5 steps half of the time.
            let (x, y) = if half {
                ((libm::round(x * 160.0) + 1.0) / 160.0, libm::round(y * 160.0) / 160.0)
            } else {
                (x, y)
            };
            let p = Point::new(x, y);
            proptest::prop_assert_eq!(motor_target(k, p), k.to_motor(p));
        }
    }

    #[test]
    fn rounding_matches_libm_at_the_edges() {
        for v in [
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            0.49999999999999994,
            -0.49999999999999994,
            4503599627370495.5,
            2147483646.5,
            2147483647.5,
            // Around the binades where the spacing reaches ½ and 1 (the branchless rounding's
            // edges), beyond 2^53, and saturating.
            2251799813685248.5,
            -2251799813685249.5,
            2251799813685248.0 - 0.25,
            4503599627370495.0,
            4503599627370497.0,
            -9007199254740993.0,
            1.5 - f64::EPSILON,
            0.5 + f64::EPSILON / 2.0,
            1e19,
            -1e19,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -2147483648.5,
            1e300,
            -1e300,
            f64::NAN,
            0.0,
            -0.0,
        ] {
            let want = libm::round(v);
            let want = if want.is_nan() { 0 } else { want as i64 };
            assert_eq!(round_i64(v), want, "{v}");
            let want_i32 = want.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
            assert_eq!(round_i32(v), want_i32, "{v}");
            assert_eq!(
                round_i32(v + 2147483647.0),
                round_i64(v + 2147483647.0).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
                "{v}"
            );
        }
    }
}
