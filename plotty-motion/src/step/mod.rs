//! Step timing: planned blocks to firmware moves, computed with the firmware's own arithmetic.
//!
//! [`StepGenerator`] takes [`Block`]s in plot order ([`StepGenerator::push`]), hands out
//! [`Move`]s ([`StepGenerator::pop`]) and is told when a run of motion ends
//! ([`StepGenerator::finish`], before every pen action and at the end of a plot). Memory is
//! fixed; nothing allocates.
//!
//! # Guarantees
//!
//! * **Positions are exact.** Every block ends on `Kinematics::to_motor(block.end)`, rounded from
//!   the absolute point, never accumulated from deltas; boundaries inside a block are rounded from
//!   absolute points too. Each move's step counts are differences of those targets.
//! * **Moves are exact.** Each move's [`Move::ticks`] is how long the firmware will run it, and
//!   the generator tracks both step accumulators across moves exactly as the firmware does (it
//!   never sends a Clear), with the closed forms of [`timing`] (checked against a per-tick model
//!   of the firmware that reproduces the firmware's own regression vectors).
//! * **No drift.** A move's target end is the plan's cumulative time rounded to a tick, so
//!   rounding never accumulates. In LM mode every moving motor's last step lands exactly on that
//!   tick whenever the integer registers allow it (they do unless a motor makes less than about
//!   one step per `T²/2^32` ticks over a `T`-tick move), so after each block the elapsed ticks are
//!   within ½ tick of the planned time. Errors the generator cannot avoid (a stretched or slowed
//!   move, below) are caught up by at most one tick per move (LM) or one millisecond per slice
//!   (SM), never by rushing a move. SM durations are whole milliseconds, so in SM mode block ends
//!   are within ½ ms (plus a tick of firmware rounding) of the plan.
//! * **Firmware limits hold.** Rates stay below 2^31 (one step per tick) and, on 2.x, above zero;
//!   an axis with steps always has the rate to make them; step counts and durations fit the
//!   command's fields; SM rates are the ones the firmware computes and accepts; no move is
//!   shorter than the firmware's minimum (reference §6.4) except a run of motion that is shorter
//!   than it as a whole, which is stretched to the minimum (slower, never faster).
//!
//! # Phases, merges and their error
//!
//! Each block is split into its accelerate, cruise and decelerate phases; each becomes one LM (or
//! a run of SM slices of about 25 ms in ramps). A phase shorter than the minimum move joins the
//! neighbouring phase of the same block (no geometric error: the block is straight); its speed
//! profile is replaced by the least-squares constant-acceleration fit of the merged phases, kept
//! within their planned speed range. A block shorter than the minimum as a whole is merged with
//! the following blocks (or, at the end of a run, the preceding move) into one move along the
//! chord from the merge's start to its end, taking just enough of a long neighbour to reach the
//! minimum. Positions at the chord's ends are exact; in between the path is cut by at most
//! `½·√(L² − c²)` for a merged path of length `L` and chord `c` (reported per move in
//! [`Move::chord_error_mm`] and as a maximum in [`StepStats`]). That is zero for collinear
//! blocks, about 1.15× the sagitta for a gently curved polyline (0.4 µm for 0.2 mm of a 10 mm
//! radius), and in the worst case — a zigzag of tiny segments at speed — half the path length
//! merged, at most about `v·(2·minimum + one tiny block)`. Phases and blocks that move no motor
//! by a whole step are merged forward the same way; their time is kept.

mod config;
mod error;
mod profile;
pub mod timing;

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod tests;

pub use config::{ConfigError, FirmwareLine, MoveFormat, StepConfig};
pub use error::StepError;
pub use profile::MAX_BLOCK_SECONDS;

use crate::ebb::{LowLevelMove, StepperMove};
use crate::kinematics::MotorSteps;
use crate::plan::{Block, Pen, Tag};
use crate::time::TICKS_PER_MS;
use profile::{Group, Piece, plan_block};
use timing::{LmRequest, RATE_MAX, STEP, sm_landing, sm_rate_v2, sm_rate_v3, solve_lm_axis};

/// Longest group (and so firmware move) in ticks: 2^31 ticks is 23.9 hours.
const MAX_GROUP_TICKS: f64 = 2_147_483_648.0;

/// Longest SM slice on 2.x in ms: below 1311 ms no axis with a step trips the "too slow" check.
const V2_MAX_SLICE_MS: u32 = 1300;

/// Longest SM slice on 3.x in ms (4.7 h): keeps the duration exact in `f32` and every rate ≥ 5.
const V3_MAX_SLICE_MS: u32 = 1 << 24;

/// At most this many steps per axis in one 2.x SM (its fine-rate branch ends at 131071).
const V2_MAX_SLICE_STEPS: f64 = 100_000.0;

/// Closed groups waiting for conversion; one push closes at most 7.
const READY: usize = 8;

/// One firmware move with everything needed to send it and account for it.
#[derive(Clone, Copy, PartialEq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MoveCommand {
    /// `LM`: constant acceleration per motor.
    Lm(LowLevelMove),
    /// `SM`: constant rate per motor (or a pure delay when both step counts are zero).
    Sm(StepperMove),
}

/// A move as the firmware will execute it.
#[derive(Clone, Copy, PartialEq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Move {
    /// The command's parameters (never with a Clear).
    pub command: MoveCommand,
    /// Exact execution time in 25 kHz ticks, as the firmware will run it.
    pub ticks: u32,
    /// Motor positions when the move ends.
    pub end: MotorSteps,
    /// Pen state during the move.
    pub pen: Pen,
    /// Tag of the block the move ends in.
    pub tag: Tag,
    /// Planned path length covered, in millimetres.
    pub distance_mm: f64,
    /// Upper bound of the distance between the planned path and the straight move (0 unless
    /// blocks were merged).
    pub chord_error_mm: f64,
}

/// Running counts of what the generator had to do beyond the plan.
#[derive(Clone, Copy, PartialEq, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StepStats {
    /// Moves handed out.
    pub moves: u64,
    /// Moves that merged more than one block.
    pub merged_moves: u64,
    /// Largest [`Move::chord_error_mm`] so far.
    pub max_chord_error_mm: f64,
    /// Moves that ended later than their target tick (too short for the firmware minimum, or
    /// faster than one step per tick on a motor).
    pub late_moves: u64,
    /// Moves that ended earlier than their target (a motor too slow for the integer registers).
    pub early_moves: u64,
    /// Planned ticks of runs that moved no motor by a whole step (not executed).
    pub skipped_ticks: f64,
}

/// Turns planned blocks into firmware moves (see the [module documentation](self)).
///
/// Call order: [`push`](Self::push) a block, then [`pop`](Self::pop) until it returns `None`;
/// repeat; call [`finish`](Self::finish) (then pop) before any pen action and at the end.
#[derive(Clone, Debug)]
pub struct StepGenerator {
    config: StepConfig,
    /// Planned duration a group needs before it may become its own move.
    close_ticks: f64,
    // Planned side (everything pushed).
    planned_ticks: f64,
    tail: MotorSteps,
    open: Option<Group>,
    held: Option<Group>,
    ready: [Group; READY],
    ready_head: usize,
    ready_len: usize,
    // Executed side (everything popped).
    slicer: Option<Slicer>,
    position: MotorSteps,
    acc: [u32; 2],
    now: u64,
    stats: StepStats,
    /// Planned end (ticks) of the last move popped, for the timing tests.
    #[cfg(test)]
    trace_planned_end: f64,
}

/// SM conversion of one group in progress.
#[derive(Clone, Copy, Debug)]
struct Slicer {
    group: Group,
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

impl StepGenerator {
    /// A generator at motor position zero with both accumulators clear (after `EM`).
    pub fn new(config: StepConfig) -> Self {
        let close_ticks = f64::from(config.min_move_ticks()) + 1.0;
        Self {
            config,
            close_ticks,
            planned_ticks: 0.0,
            tail: MotorSteps::ZERO,
            open: None,
            held: None,
            ready: [Group::default(); READY],
            ready_head: 0,
            ready_len: 0,
            slicer: None,
            position: MotorSteps::ZERO,
            acc: [0, 0],
            now: 0,
            stats: StepStats::default(),
            #[cfg(test)]
            trace_planned_end: 0.0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &StepConfig {
        &self.config
    }

    /// Sets the motor position and accumulators, e.g. after `EM` (both accumulators 0) or to
    /// resume at a known state. Only when idle (everything finished and popped).
    pub fn reset(&mut self, position: MotorSteps, accumulators: [u32; 2]) -> Result<(), StepError> {
        if !self.is_idle() {
            return Err(StepError::Busy);
        }
        self.position = position;
        self.tail = position;
        self.acc = [accumulators[0] & 0x7FFF_FFFF, accumulators[1] & 0x7FFF_FFFF];
        Ok(())
    }

    /// Whether nothing is pending: every pushed block finished and every move popped.
    pub fn is_idle(&self) -> bool {
        self.open.is_none() && self.held.is_none() && self.ready_len == 0 && self.slicer.is_none()
    }

    /// Exact motor position after every move popped so far.
    pub fn position(&self) -> MotorSteps {
        self.position
    }

    /// Motor position after every block pushed so far (once finished and popped).
    pub fn target_position(&self) -> MotorSteps {
        self.tail
    }

    /// Both step accumulators after every move popped so far, as the firmware holds them.
    pub fn accumulators(&self) -> [u32; 2] {
        self.acc
    }

    /// Ticks of every move popped so far.
    pub fn elapsed_ticks(&self) -> u64 {
        self.now
    }

    /// Planned duration of every block pushed so far, in ticks.
    pub fn planned_ticks(&self) -> f64 {
        self.planned_ticks
    }

    /// What the generator had to do beyond the plan.
    pub fn stats(&self) -> &StepStats {
        &self.stats
    }

    /// Takes the next block in plot order. Refused (state unchanged) if moves from earlier
    /// blocks are still waiting to be popped, or if the block is invalid or does not start
    /// where the previous one ended.
    pub fn push(&mut self, block: &Block) -> Result<(), StepError> {
        if self.ready_len != 0 || self.slicer.is_some() {
            return Err(StepError::Busy);
        }
        let kinematics = self.config.kinematics();
        let plan = plan_block(block, kinematics, self.planned_ticks, self.close_ticks)?;
        let found = kinematics.to_motor(block.start);
        if found != self.tail {
            return Err(StepError::Discontinuous {
                expected: self.tail,
                found,
            });
        }
        let pen_now = self.open.or(self.held).map(|g| g.last.pen);
        if pen_now.is_some_and(|p| p != block.pen) {
            self.finish();
        }
        for piece in plan.pieces() {
            self.feed(*piece);
        }
        self.planned_ticks += plan.ticks;
        Ok(())
    }

    /// Ends the current run of motion: whatever was held back (to merge with what might follow)
    /// becomes moves. Call before a pen action or pause and at the end of the plot, then pop.
    pub fn finish(&mut self) {
        if let Some(g) = self.open.take() {
            if self.closable(&g) {
                self.close(g);
            } else if let Some(h) = self.held.as_mut() {
                h.absorb(&g);
            } else if g.has_steps() {
                // A run shorter than the minimum move: stretched when converted.
                self.held = Some(g);
            } else {
                self.stats.skipped_ticks += g.ticks();
            }
        }
        if let Some(h) = self.held.take() {
            self.ready_push(h);
        }
    }

    /// The next move, or `None` when everything pushed so far is out (except what is held back
    /// until the next block or [`finish`](Self::finish)).
    pub fn pop(&mut self) -> Option<Move> {
        loop {
            if self.slicer.is_some() {
                if let Some(m) = self.next_slice() {
                    self.account(&m);
                    return Some(m);
                }
                self.slicer = None;
            }
            let g = self.ready_pop()?;
            match self.config.format() {
                MoveFormat::Lm => {
                    let m = self.convert_lm(&g);
                    self.account(&m);
                    return Some(m);
                }
                MoveFormat::Sm => {
                    self.slicer = Some(Slicer {
                        group: g,
                        ramp: 0,
                        k: 0,
                        n: 0,
                        done: false,
                        ramp_start: 0.0,
                        last: 0.0,
                        last_mm: 0.0,
                    });
                }
            }
        }
    }

    fn account(&mut self, m: &Move) {
        self.stats.moves += 1;
        if m.chord_error_mm > 0.0 {
            self.stats.merged_moves += 1;
            self.stats.max_chord_error_mm = self.stats.max_chord_error_mm.max(m.chord_error_mm);
        }
    }

    fn closable(&self, g: &Group) -> bool {
        g.has_steps() && g.ticks() >= self.close_ticks
    }

    /// Adds a piece to the open group, splitting it when only its head is needed to make a short
    /// group long enough, and closes the group once it is long enough and moves.
    fn feed(&mut self, mut piece: Piece) {
        let kinematics = self.config.kinematics();
        loop {
            match self.open.as_mut() {
                None => {
                    let g = Group::new(&piece, self.tail, kinematics);
                    self.tail = g.end_target;
                    self.open = Some(g);
                }
                Some(g) => {
                    let need = self.close_ticks - g.ticks();
                    if g.has_steps() && need > 0.0 && piece.ticks() >= need + self.close_ticks {
                        let (head, rest) = piece.split(need);
                        g.add(&head, kinematics);
                        self.tail = g.end_target;
                        if let Some(g) = self.open.take() {
                            self.close(g);
                        }
                        piece = rest;
                        continue;
                    }
                    if !g.has_steps() && g.ticks() + piece.ticks() > MAX_GROUP_TICKS {
                        // Hours without a whole step: nothing to execute.
                        self.stats.skipped_ticks += g.ticks();
                        self.open = None;
                        continue;
                    }
                    g.add(&piece, kinematics);
                    self.tail = g.end_target;
                }
            }
            if let Some(g) = self.open
                && self.closable(&g)
            {
                self.open = None;
                self.close(g);
            }
            return;
        }
    }

    /// A group is complete: the previously held one goes out, this one is held back in case the
    /// run ends with a short group that must merge into it.
    fn close(&mut self, g: Group) {
        if let Some(h) = self.held.replace(g) {
            self.ready_push(h);
        }
    }

    fn ready_push(&mut self, g: Group) {
        let i = (self.ready_head + self.ready_len) % READY;
        if let Some(slot) = self.ready.get_mut(i) {
            *slot = g;
            // READY bounds the groups one push or finish can close (see its definition).
            self.ready_len = (self.ready_len + 1).min(READY);
        }
    }

    fn ready_pop(&mut self) -> Option<Group> {
        if self.ready_len == 0 {
            return None;
        }
        let g = self.ready.get(self.ready_head).copied();
        self.ready_head = (self.ready_head + 1) % READY;
        self.ready_len -= 1;
        g
    }

    /// The tick window a move may end in: its planned end rounded, moved by at most one tick
    /// towards the plan when earlier moves ran late or early.
    fn target_ticks(&self, start_tick: f64, end_tick: f64) -> i64 {
        let end = libm::round(end_tick) as i64;
        let nominal = (end - libm::round(start_tick) as i64).max(1);
        (end - self.now as i64).clamp(nominal - 1, nominal + 1)
    }

    /// One LM for a group: every moving motor's last step on the target tick.
    fn convert_lm(&mut self, g: &Group) -> Move {
        let fw = self.config.firmware();
        let goal = self.target_ticks(g.start_tick, g.end_tick);
        let mut ticks = goal.max(i64::from(self.config.min_move_ticks()));
        let steps = [
            i64::from(g.end_target.m1) - i64::from(self.position.m1),
            i64::from(g.end_target.m2) - i64::from(self.position.m2),
        ];
        let mut c0 = [0u32; 2];
        for i in 0..2 {
            let (Some(&n), Some(&acc)) = (steps.get(i), self.acc.get(i)) else {
                continue;
            };
            let mirrored = n < 0 && fw.lm_mirrors_reverse();
            let c = if mirrored { 0x7FFF_FFFF - acc } else { acc };
            if let Some(slot) = c0.get_mut(i) {
                *slot = c;
            }
            if n != 0 {
                // No motor can make more than one step per tick.
                let m = n.abs() * STEP - i64::from(c);
                ticks = ticks.max((m + RATE_MAX - 1) / RATE_MAX);
            }
        }
        let mut lm = LowLevelMove {
            rate: [0, 0],
            steps: [0, 0],
            accel: [0, 0],
            clear: None,
        };
        let mut took = 0u64;
        for i in 0..2 {
            let (Some(&n), Some(&c)) = (steps.get(i), c0.get(i)) else {
                continue;
            };
            if n == 0 {
                continue;
            }
            let sign = if n < 0 { -1.0 } else { 1.0 };
            let axis = solve_lm_axis(LmRequest {
                c0: c,
                // |n| < 2^31: positions are within ±2^30.
                steps: n.unsigned_abs() as u32,
                ticks: ticks as u64,
                shape: g.shape(i, sign),
                min_rate: fw.lm_min_rate(),
            });
            took = took.max(axis.landing.tick);
            let acc = axis.landing.accumulator;
            let raw = if n < 0 && fw.lm_mirrors_reverse() {
                0x7FFF_FFFF - acc
            } else {
                acc
            };
            if let (Some(r), Some(s), Some(a), Some(slot)) = (
                lm.rate.get_mut(i),
                lm.steps.get_mut(i),
                lm.accel.get_mut(i),
                self.acc.get_mut(i),
            ) {
                *r = axis.rate;
                *s = n as i32;
                *a = axis.accel;
                *slot = raw;
            }
        }
        self.note_landing(took, goal, 0);
        #[cfg(test)]
        {
            self.trace_planned_end = g.end_tick;
        }
        self.position = g.end_target;
        self.now += took;
        Move {
            command: MoveCommand::Lm(lm),
            ticks: took.min(u64::from(u32::MAX)) as u32,
            end: g.end_target,
            pen: g.last.pen,
            tag: g.last.tag,
            distance_mm: g.path_mm,
            chord_error_mm: g.chord_error_mm(),
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

    /// The next SM slice of the group being converted, or `None` when it is done.
    fn next_slice(&mut self) -> Option<Move> {
        let min_slice = f64::from(self.config.min_move_ticks());
        loop {
            let (tau, is_end) = self.next_boundary()?;
            let s = self.slicer.as_ref()?;
            let total = s.group.ticks();
            if !is_end && (tau - s.last < min_slice || total - tau < min_slice) {
                continue;
            }
            let m = self.slice_to(tau, is_end);
            if m.is_some() || is_end {
                return m;
            }
        }
    }

    /// Advances the slicer to its next candidate boundary: `(local ticks, is the group's end)`.
    /// Ramps of a single-block group are cut into slices of about the configured length (a
    /// cruise only where a limit forces it); a merged group is one chord, cut only by limits.
    fn next_boundary(&mut self) -> Option<(f64, bool)> {
        let s = self.slicer.as_ref()?;
        let g = s.group;
        let total = g.ticks();
        if s.done {
            return None;
        }
        let rate = (0..2).fold(0.0f64, |m, i| {
            m.max(g.speed_max[i].abs()).max(g.speed_min[i].abs())
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

    /// Emits the SM slice that ends at local time `tau` of the current group, or `None` when it
    /// would move nothing (its time then joins the next slice; at the group's end a delay).
    fn slice_to(&mut self, tau: f64, is_end: bool) -> Option<Move> {
        let kinematics = self.config.kinematics();
        let s = self.slicer.as_mut()?;
        let g = s.group;
        let (target, mm) = if is_end {
            (g.end_target, g.path_mm)
        } else if g.pieces == 1 {
            let d = g.last.distance_at(tau);
            (g.last.line.target_at(d, kinematics), d - g.last.s0)
        } else {
            let f = tau / g.ticks();
            let p = crate::kinematics::Point::new(
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
        let planned_ms = (tau - s.last) / f64::from(TICKS_PER_MS);
        let end_tick = g.start_tick + tau;
        let distance = mm - s.last_mm;
        if steps == [0, 0] && !is_end {
            return None;
        }
        s.last = tau;
        s.last_mm = mm;
        let goal_end = libm::round(end_tick) as i64;
        let goal = goal_end - self.now as i64;
        let nominal_ms = libm::round(planned_ms).max(1.0) as i64;
        let (duration_ms, ticks, acc) = if steps == [0, 0] {
            // Only time left in the group: a pure delay, if at least a millisecond.
            let ms = (goal + 12) / 25;
            if ms < 1 {
                return None;
            }
            let ms = ms.clamp(
                i64::from(self.config.min_move_ticks() / TICKS_PER_MS),
                65_000,
            );
            (ms as u32, ms as u64 * 25, self.acc)
        } else {
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

    /// Duration for an SM with these steps whose end lands closest to `goal` ticks from now:
    /// `(duration_ms, ticks, accumulators after)`.
    fn choose_sm(&self, steps: [i32; 2], goal: i64, nominal_ms: i64) -> (u32, u64, [u32; 2]) {
        let fw = self.config.firmware();
        let fastest = i64::from(steps[0].unsigned_abs().max(steps[1].unsigned_abs()));
        let min_ms = i64::from(self.config.min_move_ticks() / TICKS_PER_MS)
            .max((fastest + 24) / 25)
            .max(1);
        let max_ms = i64::from(match fw {
            FirmwareLine::V3 => V3_MAX_SLICE_MS,
            FirmwareLine::V2 | FirmwareLine::V2Early => V2_MAX_SLICE_MS + 1,
        });
        let around = ((goal + 12) / 25).clamp(nominal_ms - 1, nominal_ms + 1);
        let mut best: Option<(u32, u64, [u32; 2], i64)> = None;
        for ms in [around, around - 1, around + 1, min_ms] {
            let ms = ms.clamp(min_ms, max_ms.max(min_ms));
            if let Some((ticks, acc)) = self.sm_outcome(ms as u32, steps) {
                let err = (ticks as i64 - goal).abs();
                if best.is_none_or(|b| err < b.3) {
                    best = Some((ms as u32, ticks, acc, err));
                }
            }
        }
        if let Some((ms, ticks, acc, _)) = best {
            return (ms, ticks, acc);
        }
        // Unreachable by construction of the slices; keep going with the fastest valid rate.
        let mut ms = min_ms as u32;
        for _ in 0..64 {
            if let Some((ticks, acc)) = self.sm_outcome(ms, steps) {
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
        for i in 0..2 {
            let s = steps.get(i)?.unsigned_abs();
            if s == 0 {
                continue;
            }
            let rate = match self.config.firmware() {
                FirmwareLine::V3 => sm_rate_v3(ms, s),
                FirmwareLine::V2 | FirmwareLine::V2Early => sm_rate_v2(ms, s),
            }
            .ok()?;
            let landing = sm_landing(*acc.get(i)?, rate, s)?;
            ticks = ticks.max(landing.tick);
            *acc.get_mut(i)? = landing.accumulator;
        }
        Some((ticks, acc))
    }
}
