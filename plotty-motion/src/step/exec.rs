//! The executing side of the step generator: the firmware state as it will be after every move
//! handed out (position, both accumulators, elapsed ticks), and the conversion of one group of
//! planned motion into an LM, or into a run of SM slices, against that state.

use crate::ebb::{LowLevelMove, StepperMove};
use crate::kinematics::{MotorSteps, Point};
use crate::plan::{Pen, Tag};
use crate::step::profile::{Group, Piece};
use crate::step::timing::{Profile, RATE_MAX, STEP, round_i64, sm_landing, sm_rate_v2, sm_rate_v3};
use crate::step::{FirmwareLine, Move, MoveCommand, StepConfig, StepStats};
use crate::time::TICKS_PER_MS;

/// Longest SM slice on 2.x in ms: below 1311 ms no axis with a step trips the "too slow" check.
const V2_MAX_SLICE_MS: u32 = 1300;

/// Longest SM slice on 3.x in ms (4.7 h): keeps the duration exact in `f32` and every rate ≥ 5.
const V3_MAX_SLICE_MS: u32 = 1 << 24;

/// At most this many steps per axis in one 2.x SM (its fine-rate branch ends at 131071).
const V2_MAX_SLICE_STEPS: f64 = 100_000.0;

/// SM conversion of the group at the head of the queue, in progress.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Slicer {
    /// Ramp index (single-block groups; 0 for a chord), slice `k` of `n` within it (`n` = 0:
    /// not yet computed).
    ramp: usize,
    k: u32,
    n: u32,
    done: bool,
    /// Local time where the current ramp starts, and of the last emitted boundary.
    ramp_start: f64,
    last: f64,
    /// Path distance (mm along the group) at the last emitted boundary.
    last_mm: f64,
}

/// Where an LM to a group's end starts: signed steps per motor, and the effective (forward)
/// accumulators.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LmStart {
    pub(crate) steps: [i64; 2],
    pub(crate) c0: [u32; 2],
}

/// Firmware state after every move handed out, and the conversions that advance it.
#[derive(Clone, Debug)]
pub(crate) struct Executor {
    pub(crate) config: StepConfig,
    pub(crate) position: MotorSteps,
    pub(crate) acc: [u32; 2],
    pub(crate) now: u64,
    pub(crate) stats: StepStats,
    pub(crate) slicer: Option<Slicer>,
    /// Planned end (ticks) of the last move, for the timing tests.
    #[cfg(test)]
    pub(crate) trace_planned_end: f64,
}

/// What converting one group of planned motion into an LM needs: a whole [`Group`] on the
/// general path, a lone [`Piece`] (one phase, or the joined phases, of one block) on the fast
/// path of `StepGenerator::push_into`, which converts it without building a group. Both give
/// the same figures for the same motion, so the moves are the same bit for bit.
pub(crate) trait LmSource {
    /// Planned start, in ticks since the plot began.
    fn start_tick(&self) -> f64;
    /// Planned end, in ticks since the plot began.
    fn end_tick(&self) -> f64;
    /// Rounded motor target at the end.
    fn end_target(&self) -> MotorSteps;
    /// The rate profile per motor over `t` ticks for `steps` signed steps.
    fn profiles(&self, t: u64, steps: [i64; 2]) -> (Profile, Profile);
    /// Pen state and tag of the block the move ends in.
    fn pen_tag(&self) -> (Pen, Tag);
    /// Planned path length covered.
    fn path_mm(&self) -> f64;
    /// See [`Move::chord_error_mm`].
    fn chord_error_mm(&self) -> f64;
    /// Whether the move spans more than one piece.
    fn merged(&self) -> bool;
}

/// The profiles of motion within one block: every motor's planned speed has the path speed's
/// shape (scaled by its share, in the direction it moves); a motor that moves against its share
/// by rounding runs at a constant rate.
#[inline]
fn one_block_profiles(
    t: u64,
    shape: (f64, f64),
    share: [f64; 2],
    steps: [i64; 2],
) -> (Profile, Profile) {
    let common = Profile::new(t, shape);
    let along = |n: i64, k: f64| if n < 0 { k < 0.0 } else { k > 0.0 };
    let [n0, n1] = steps;
    (
        if along(n0, share[0]) {
            common
        } else {
            Profile::constant(t)
        },
        if along(n1, share[1]) {
            common
        } else {
            Profile::constant(t)
        },
    )
}

impl LmSource for Group {
    #[inline]
    fn start_tick(&self) -> f64 {
        self.start_tick
    }
    #[inline]
    fn end_tick(&self) -> f64 {
        self.end_tick
    }
    #[inline]
    fn end_target(&self) -> MotorSteps {
        self.end_target
    }
    #[inline]
    fn profiles(&self, t: u64, steps: [i64; 2]) -> (Profile, Profile) {
        if self.pieces == 1 {
            one_block_profiles(t, self.path_shape(), self.last.line.share, steps)
        } else {
            let [s0, s1] = self.shapes(steps.map(|n| if n < 0 { -1.0 } else { 1.0 }));
            (Profile::new(t, s0), Profile::new(t, s1))
        }
    }
    #[inline]
    fn pen_tag(&self) -> (Pen, Tag) {
        (self.last.pen, self.last.tag)
    }
    #[inline]
    fn path_mm(&self) -> f64 {
        self.path_mm
    }
    #[inline]
    fn chord_error_mm(&self) -> f64 {
        Self::chord_error_mm(self)
    }
    #[inline]
    fn merged(&self) -> bool {
        self.pieces > 1
    }
}

/// A piece converted on its own (the fast path): the group [`Group::start`] would make of it,
/// without the group. `end_target` is the piece's rounded end (`Line::target_of` at `s1`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LonePiece<'a> {
    pub(crate) piece: &'a Piece,
    pub(crate) end_tick: f64,
    pub(crate) end_target: MotorSteps,
}

impl LmSource for LonePiece<'_> {
    #[inline]
    fn start_tick(&self) -> f64 {
        self.piece.start_tick
    }
    #[inline]
    fn end_tick(&self) -> f64 {
        self.end_tick
    }
    #[inline]
    fn end_target(&self) -> MotorSteps {
        self.end_target
    }
    #[inline]
    fn profiles(&self, t: u64, steps: [i64; 2]) -> (Profile, Profile) {
        let start = self.piece.start_tick;
        let shape = self.piece.path_shape(start, self.end_tick - start);
        one_block_profiles(t, shape, self.piece.line.share, steps)
    }
    #[inline]
    fn pen_tag(&self) -> (Pen, Tag) {
        (self.piece.pen, self.piece.tag)
    }
    #[inline]
    fn path_mm(&self) -> f64 {
        self.piece.length_mm()
    }
    #[inline]
    fn chord_error_mm(&self) -> f64 {
        0.0
    }
    #[inline]
    fn merged(&self) -> bool {
        false
    }
}

impl Executor {
    pub(crate) fn new(config: StepConfig) -> Self {
        Self {
            config,
            position: MotorSteps::ZERO,
            acc: [0, 0],
            now: 0,
            stats: StepStats::default(),
            slicer: None,
            #[cfg(test)]
            trace_planned_end: 0.0,
        }
    }

    fn account(&mut self, m: &Move, merged: bool) {
        self.stats.moves += 1;
        if merged {
            self.stats.merged_moves += 1;
        }
        // A plain comparison (`f64::max` spends seven instructions on NaN): chord errors are
        // never NaN nor −0 (`Group::chord_error_mm` is 0 or a square root's half).
        if m.chord_error_mm > self.stats.max_chord_error_mm {
            self.stats.max_chord_error_mm = m.chord_error_mm;
        }
    }

    fn note_landing(&mut self, took: u64, goal: i64, tolerance: i64) {
        let took = took as i64;
        if took > goal + tolerance {
            self.stats.late_moves += 1;
        } else if took < goal - tolerance {
            self.stats.early_moves += 1;
        }
    }

    /// The tick count a move should take: its planned end rounded, minus the ticks already
    /// elapsed, moved by at most one tick away from its own planned length (so earlier lateness
    /// or earliness is caught up one tick per move, never by rushing).
    #[inline]
    fn target_ticks(&self, start_tick: f64, end_tick: f64) -> i64 {
        let end = round_i64(end_tick);
        let nominal = (end - round_i64(start_tick)).max(1);
        // `max`/`min` rather than `clamp`, which checks its bounds' order on every call.
        (end - self.now as i64).max(nominal - 1).min(nominal + 1)
    }

    /// Signed steps per motor to reach `g`'s end, and the effective (forward) accumulators an
    /// LM starts from: 3.x counts down in reverse (reference §2.5).
    #[inline]
    pub(crate) fn lm_start(&self, end_target: MotorSteps) -> LmStart {
        let steps = [
            i64::from(end_target.m1) - i64::from(self.position.m1),
            i64::from(end_target.m2) - i64::from(self.position.m2),
        ];
        let mirror = self.config.firmware().lm_mirrors_reverse();
        let [a0, a1] = self.acc;
        let effective = |acc: u32, n: i64| {
            if mirror && n < 0 {
                0x7FFF_FFFF - acc
            } else {
                acc
            }
        };
        LmStart {
            steps,
            c0: [effective(a0, steps[0]), effective(a1, steps[1])],
        }
    }

    /// Whether no LM to `g`'s end can last the firmware minimum: every moving motor's steps are
    /// so nearly due (`N·2^31 − C0` below the minimum) that even the slowest rate, 1, makes them
    /// sooner. Happens on 3.x when motors reverse right after stopping (the accumulator is
    /// mirrored to the brink of a step).
    pub(crate) fn cannot_fill_minimum(&self, g: &Group) -> bool {
        self.cannot_fill_minimum_from(&self.lm_start(g.end_target))
    }

    /// [`Self::cannot_fill_minimum`] from the group's [`LmStart`].
    #[inline]
    pub(crate) fn cannot_fill_minimum_from(&self, start: &LmStart) -> bool {
        let min = i64::from(self.config.min_move_ticks());
        start
            .steps
            .iter()
            .zip(start.c0)
            .all(|(n, c)| *n == 0 || n.abs() * STEP - i64::from(c) < min)
    }

    /// Converts `g` into `slot` (one LM, every moving motor's last step on the target tick) if
    /// an LM to its end can last the firmware minimum; `false`, with nothing changed, if it
    /// cannot (see [`Self::cannot_fill_minimum`]): the caller merges `g` with what follows, or
    /// converts it anyway as the last move of a run.
    #[inline]
    pub(crate) fn convert_lm_filling<S: LmSource>(&mut self, g: &S, slot: &mut Move) -> bool {
        let start = self.lm_start(g.end_target());
        if self.cannot_fill_minimum_from(&start) {
            return false;
        }
        self.convert_lm_into(g, start, slot);
        true
    }

    /// One LM for `g` from its [`LmStart`], written straight into `slot` (a caller's batch):
    /// every moving motor's last step on the target tick.
    #[inline]
    pub(crate) fn convert_lm_into<S: LmSource>(&mut self, g: &S, start: LmStart, slot: &mut Move) {
        let fw = self.config.firmware();
        let min_ticks = self.config.min_move_ticks();
        let goal = self.target_ticks(g.start_tick(), g.end_tick());
        let mut ticks = goal.max(i64::from(min_ticks));
        let LmStart { steps, c0 } = start;
        for (n, c) in steps.iter().zip(c0) {
            if *n != 0 {
                // No motor makes more than one step per tick: `ticks ≥ ceil(m / RATE_MAX)`,
                // which only divides when it binds.
                let m = n.abs() * STEP - i64::from(c);
                if m > ticks * RATE_MAX {
                    ticks = (m + RATE_MAX - 1) / RATE_MAX;
                }
            }
        }
        let t = ticks as u64;
        let [n0, n1] = steps;
        let (p0, p1) = g.profiles(t, steps);
        let mut lm = LowLevelMove {
            rate: [0, 0],
            steps: [0, 0],
            accel: [0, 0],
            clear: None,
        };
        let mirror = fw.lm_mirrors_reverse();
        let (min_rate, min_ticks) = (fw.lm_min_rate(), u64::from(min_ticks));
        // One axis: its registers, and the raw accumulator it leaves (3.x mirrors reverse).
        let solve = |n: i64, c: u32, profile: &Profile| {
            // |n| < 2^31: positions stay within ±2^30.
            let solved = profile.solve(c, n.unsigned_abs() as u32, min_rate, min_ticks);
            let left = solved.landing.accumulator;
            let raw = if n < 0 && mirror {
                0x7FFF_FFFF - left
            } else {
                left
            };
            (solved, raw)
        };
        let mut took = 0u64;
        if n0 != 0 {
            let (axis, raw) = solve(n0, c0[0], &p0);
            took = axis.landing.tick;
            lm.rate[0] = axis.rate;
            lm.steps[0] = n0 as i32;
            lm.accel[0] = axis.accel;
            self.acc[0] = raw;
        }
        if n1 != 0 {
            let (axis, raw) = solve(n1, c0[1], &p1);
            took = took.max(axis.landing.tick);
            lm.rate[1] = axis.rate;
            lm.steps[1] = n1 as i32;
            lm.accel[1] = axis.accel;
            self.acc[1] = raw;
        }
        self.note_landing(took, goal, 0);
        #[cfg(test)]
        {
            self.trace_planned_end = g.end_tick();
        }
        let end = g.end_target();
        self.position = end;
        self.now += took;
        let (pen, tag) = g.pen_tag();
        *slot = Move {
            command: MoveCommand::Lm(lm),
            ticks: took.min(u64::from(u32::MAX)) as u32,
            end,
            pen,
            tag,
            distance_mm: g.path_mm(),
            chord_error_mm: g.chord_error_mm(),
        };
        self.account(slot, g.merged());
    }

    /// The next SM slice of group `g` (the one the slicer was started on), or `None` when the
    /// group is done.
    ///
    /// Never inlined: inlined into [`StepGenerator::pop`](crate::step::StepGenerator::pop) its
    /// large body made the LM path spill registers to a 1.2 KiB stack frame.
    #[inline(never)]
    pub(crate) fn next_slice(&mut self, g: &Group) -> Option<Move> {
        let min_slice = f64::from(self.config.min_move_ticks());
        loop {
            let (tau, is_end) = self.next_boundary(g)?;
            let last = self.slicer.as_ref()?.last;
            if !is_end && (tau - last < min_slice || g.ticks() - tau < min_slice) {
                continue;
            }
            let m = self.slice_to(g, tau, is_end);
            if let Some(m) = &m {
                self.account(m, is_end && g.pieces > 1);
            }
            if m.is_some() || is_end {
                return m;
            }
        }
    }

    /// Advances the slicer to its next candidate boundary: `(local ticks, is the group's end)`.
    /// Ramps of a single-block group are cut into slices of about the configured length (a
    /// cruise only where a limit forces it); a merged group is one chord, cut only by limits.
    fn next_boundary(&mut self, g: &Group) -> Option<(f64, bool)> {
        let total = g.ticks();
        let s = self.slicer.as_ref()?;
        if s.done {
            return None;
        }
        let moments = g.moments();
        let rate = (0..2).fold(0.0f64, |m, i| {
            m.max(moments.speed_max[i].abs())
                .max(moments.speed_min[i].abs())
        });
        let (ticks, is_ramp, n_ramps) = if g.pieces == 1 {
            let ramps = g.last.ramps();
            let r = ramps.get(s.ramp)?;
            (r.ticks, r.v0 != r.v1, ramps.len())
        } else {
            (total, false, 1)
        };
        let n = if s.n == 0 {
            self.slice_count(ticks, is_ramp, rate)
        } else {
            s.n
        };
        let s = self.slicer.as_mut()?;
        s.n = n;
        s.k += 1;
        let tau = s.ramp_start + ticks * f64::from(s.k) / f64::from(n);
        if s.k < n {
            return Some((tau, false));
        }
        s.ramp += 1;
        s.k = 0;
        s.n = 0;
        s.ramp_start += ticks;
        if s.ramp >= n_ramps {
            s.done = true;
            return Some((total, true));
        }
        Some((tau, false))
    }

    /// How many slices a ramp (or a whole chord group) of `ticks` gets, for motors running at up
    /// to `rate` steps per tick.
    fn slice_count(&self, ticks: f64, ramp: bool, rate: f64) -> u32 {
        let fw = self.config.firmware();
        let max_ms = match fw {
            FirmwareLine::V3 => V3_MAX_SLICE_MS,
            FirmwareLine::V2 | FirmwareLine::V2Early => V2_MAX_SLICE_MS,
        };
        let mut n = libm::ceil(ticks / f64::from(max_ms * TICKS_PER_MS));
        if ramp {
            n = n.max(libm::round(ticks / f64::from(self.config.sm_slice_ticks())));
        }
        if fw != FirmwareLine::V3 {
            n = n.max(libm::ceil(rate * ticks / V2_MAX_SLICE_STEPS));
        }
        if n.is_nan() {
            return 1;
        }
        n.clamp(1.0, 1.0e9) as u32
    }

    /// The SM slice of `g` that ends at local time `tau`, or `None` when it would move nothing
    /// (its time then joins the next slice; at the group's end it becomes a delay if ≥ 1 ms).
    fn slice_to(&mut self, g: &Group, tau: f64, is_end: bool) -> Option<Move> {
        let kinematics = self.config.kinematics();
        let (target, mm) = if is_end {
            (g.end_target, g.path_mm)
        } else if g.pieces == 1 {
            let d = g.last.distance_at(tau);
            (g.last.line.target_at(d, kinematics), d - g.last.s0)
        } else {
            let f = tau / g.ticks();
            let p = Point::new(
                g.start_point.x_mm + (g.end_point.x_mm - g.start_point.x_mm) * f,
                g.start_point.y_mm + (g.end_point.y_mm - g.start_point.y_mm) * f,
            );
            let m = kinematics.to_motor(p);
            let clamp = |v: i32, a: i32, b: i32| v.clamp(a.min(b), a.max(b));
            (
                MotorSteps::new(
                    clamp(m.m1, g.start_target.m1, g.end_target.m1),
                    clamp(m.m2, g.start_target.m2, g.end_target.m2),
                ),
                g.path_mm * f,
            )
        };
        let steps = [
            target.m1.wrapping_sub(self.position.m1),
            target.m2.wrapping_sub(self.position.m2),
        ];
        if steps == [0, 0] && !is_end {
            return None;
        }
        let s = self.slicer.as_mut()?;
        let planned_ms = (tau - s.last) / f64::from(TICKS_PER_MS);
        let distance = mm - s.last_mm;
        s.last = tau;
        s.last_mm = mm;
        let end_tick = g.start_tick + tau;
        let goal = libm::round(end_tick) as i64 - self.now as i64;
        let (duration_ms, ticks, acc) = if steps == [0, 0] {
            // Only time left in the group: a pure delay, if at least a millisecond.
            let ms = (goal + 12) / 25;
            if ms < 1 {
                return None;
            }
            let min_ms = i64::from(self.config.min_move_ticks() / TICKS_PER_MS);
            let ms = ms.clamp(min_ms, 65_000);
            (ms as u32, ms as u64 * 25, self.acc)
        } else {
            let nominal_ms = libm::round(planned_ms).max(1.0) as i64;
            self.choose_sm(steps, goal, nominal_ms)
        };
        self.note_landing(ticks, goal, 13);
        #[cfg(test)]
        {
            self.trace_planned_end = end_tick;
        }
        self.acc = acc;
        self.position = target;
        self.now += ticks;
        Some(Move {
            command: MoveCommand::Sm(StepperMove {
                duration_ms,
                steps,
                clear: None,
            }),
            ticks: ticks.min(u64::from(u32::MAX)) as u32,
            end: target,
            pen: g.last.pen,
            tag: g.last.tag,
            distance_mm: distance,
            chord_error_mm: if is_end { g.chord_error_mm() } else { 0.0 },
        })
    }

    /// Duration for an SM with these steps whose end lands closest to `goal` ticks from now,
    /// within a millisecond of its planned length: `(duration_ms, ticks, accumulators after)`.
    fn choose_sm(&self, steps: [i32; 2], goal: i64, nominal_ms: i64) -> (u32, u64, [u32; 2]) {
        let fw = self.config.firmware();
        let fastest = i64::from(steps[0].unsigned_abs().max(steps[1].unsigned_abs()));
        // At most 25 steps per ms on any motor: the firmware's own speed check.
        let min_ms = i64::from(self.config.min_move_ticks() / TICKS_PER_MS)
            .max((fastest + 24) / 25)
            .max(1);
        let max_ms = i64::from(match fw {
            FirmwareLine::V3 => V3_MAX_SLICE_MS,
            FirmwareLine::V2 | FirmwareLine::V2Early => V2_MAX_SLICE_MS + 1,
        })
        .max(min_ms);
        let around = ((goal + 12) / 25).clamp(nominal_ms - 1, nominal_ms + 1);
        let min_ticks = u64::from(self.config.min_move_ticks());
        let mut best: Option<(u32, u64, [u32; 2], i64)> = None;
        for ms in [around, around - 1, around + 1, around + 2] {
            let ms = ms.clamp(min_ms, max_ms);
            if let Some((ticks, acc)) = self.sm_outcome(ms as u32, steps) {
                // The carried accumulators can make an SM a tick shorter than 25·D: never
                // below the firmware minimum.
                let err = (ticks as i64 - goal).abs() + if ticks < min_ticks { 1 << 40 } else { 0 };
                if best.is_none_or(|b| err < b.3) {
                    best = Some((ms as u32, ticks, acc, err));
                }
            }
        }
        if let Some((ms, ticks, acc, _)) = best {
            return (ms, ticks, acc);
        }
        // Not reached for slices the slicer makes; still, find a duration the firmware takes.
        let mut ms = min_ms as u32;
        for _ in 0..64 {
            if let Some((ticks, acc)) = self.sm_outcome(ms, steps)
                && ticks >= min_ticks
            {
                return (ms, ticks, acc);
            }
            ms = ms.saturating_add(1);
        }
        (ms, u64::from(ms) * 25, self.acc)
    }

    /// Ticks and accumulators of `SM,ms,steps` as the firmware runs it, or `None` if refused.
    fn sm_outcome(&self, ms: u32, steps: [i32; 2]) -> Option<(u64, [u32; 2])> {
        let mut ticks = 0;
        let mut acc = self.acc;
        for (i, s) in steps.iter().enumerate() {
            let s = s.unsigned_abs();
            if s == 0 {
                continue;
            }
            let rate = match self.config.firmware() {
                FirmwareLine::V3 => sm_rate_v3(ms, s),
                FirmwareLine::V2 | FirmwareLine::V2Early => sm_rate_v2(ms, s),
            }
            .ok()?;
            let slot = acc.get_mut(i)?;
            let landing = sm_landing(*slot, rate, s)?;
            ticks = ticks.max(landing.tick);
            *slot = landing.accumulator;
        }
        Some((ticks, acc))
    }
}
