//! Step timing: planned blocks to firmware moves, computed with the firmware's own arithmetic.
//!
//! [`StepGenerator`] takes [`Block`]s in plot order ([`StepGenerator::push`]), hands out
//! [`Move`]s ([`StepGenerator::pop`]) and is told when a run of motion ends
//! ([`StepGenerator::finish`], before every pen action and at the end of a plot). Memory is
//! fixed; nothing allocates. [`StepGenerator::push_into`] and [`StepGenerator::pop_into`] do
//! the same into a caller's batch of moves; with a batch of at least [`FAST_BATCH`], the common
//! block (LM, every phase long enough to be a move of its own) is converted straight into it,
//! without passing through the queue of groups below. The moves are the same either way.
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
//!   command's fields; SM rates are the ones the firmware computes and accepts. No move runs
//!   shorter than the firmware's minimum (reference §6.4) inside a run of motion: a run shorter
//!   than the minimum as a whole is stretched to it (slower, never faster), and on 3.x a move
//!   whose motors all reverse right after stopping (the firmware mirrors the accumulator, so the
//!   first reverse step is due at once and no registers can make the move last) is merged with
//!   the next one. Only the last move of a run can stay short, when even that is impossible.
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
//! minimum. Positions at the chord's ends are exact; in between the path may be cut short by a
//! bounded amount, reported per move in [`Move::chord_error_mm`] (and as a maximum in
//! [`StepStats`]): the smaller of `max(e₁, e₂) + dist(J, AB)` accumulated merge by merge (A→J
//! joined with J→B) and the ellipse bound `½·√(L² − c²)` for merged path length `L` and chord
//! `c`. It is zero for collinear blocks, about the sagitta for a gently curved polyline (0.6 µm
//! for 0.2 mm of a 10 mm radius, against 12.5 µm per step), and at a sharp corner inside a
//! merge about the tiny block's length times the sine of the turn. Pathological input — a zigzag
//! of tiny segments at speed — is cut by up to half the merged path length, which lasts no more
//! than about twice the minimum move (a planner that caps corner speeds so that blocks around
//! sharp corners last the minimum avoids it). Phases and blocks that move no motor by a whole
//! step are merged forward the same way; their time is kept.

mod config;
mod error;
mod exec;
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
use crate::kinematics::{Kinematics, MotorSteps, Point};
use crate::plan::{Block, Pen, Tag};
use exec::{Executor, LonePiece, Slicer};
use profile::{BlockPlan, Group, Piece, plan_block};

#[cfg(test)]
std::thread_local! {
    /// Blocks that the fast path of [`StepGenerator::push_into`] converted whole on this thread
    /// (tests check that it is taken; kept out of the generator so that its size is the real
    /// one).
    pub(crate) static FAST_BLOCKS: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
    /// Blocks that left the fast path midway, after converting part of themselves (tests
    /// check that the equivalence tests reach that hand-over).
    pub(crate) static FAST_BAILS_MIDWAY: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// Smallest batch with which [`StepGenerator::push_into`] takes its fast path. A block of up
/// to three phases writes at most three moves there (the previous block's held group and all
/// its phases but the last, which becomes the held group); the fourth slot takes what a
/// fallback midway makes ready, so that the caller rarely needs another `pop_into`.
pub const FAST_BATCH: usize = 4;

/// Longest group (and so firmware move) in ticks: 2^31 ticks is 23.9 hours.
const MAX_GROUP_TICKS: f64 = 2_147_483_648.0;

/// Group slots: one push makes at most 8 groups ready (2 when a pen change finishes the run, then
/// at most 2 per piece of the block: a split head and the rest), plus the held and the open
/// group, plus one waiting to merge with its successor (see [`StepGenerator::pop`]): 11.
const GROUPS: usize = 12;

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

impl Move {
    /// A placeholder to fill a batch with before [`StepGenerator::push_into`] or
    /// [`StepGenerator::pop_into`] writes it: an LM that moves nothing and takes no time.
    pub const EMPTY: Self = Self {
        command: MoveCommand::Lm(LowLevelMove {
            rate: [0, 0],
            steps: [0, 0],
            accel: [0, 0],
            clear: None,
        }),
        ticks: 0,
        end: MotorSteps::ZERO,
        pen: Pen::Up,
        tag: Tag {
            stroke: 0,
            vertex: 0,
        },
        distance_mm: 0.0,
        chord_error_mm: 0.0,
    };
}

/// Running counts of what the generator had to do beyond the plan.
#[derive(Clone, Copy, PartialEq, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StepStats {
    /// Moves handed out.
    pub moves: u64,
    /// Moves along a chord over more than one block (or over a block and part of the next).
    pub merged_moves: u64,
    /// Largest [`Move::chord_error_mm`] so far.
    pub max_chord_error_mm: f64,
    /// Moves that ended later than their target tick (too short for the firmware minimum, or
    /// faster than one step per tick on a motor). SM: by more than half a millisecond.
    pub late_moves: u64,
    /// Moves that ended earlier than their target (a motor too slow for the integer registers).
    pub early_moves: u64,
    /// Planned ticks of runs that moved no motor by a whole step (not executed).
    pub skipped_ticks: f64,
}

/// Turns planned blocks into firmware moves (see the [module documentation](self)).
///
/// Call order: [`push`](Self::push) a block, then [`pop`](Self::pop) until it returns `None`;
/// repeat; call [`finish`](Self::finish) (then pop) before any pen action and at the end. Or
/// the same a batch at a time: [`push_into`](Self::push_into), then
/// [`pop_into`](Self::pop_into) while it fills the whole batch.
#[derive(Clone, Debug)]
pub struct StepGenerator {
    /// Planned duration of everything pushed.
    planned_ticks: f64,
    /// The end point of the last block pushed and its `motor_target`: the next block starts
    /// there (bit for bit, when it comes from the planner), so its continuity check reuses the
    /// rounding instead of repeating it. A pure function's cached value: never stale.
    last_end: (Point, MotorSteps),
    /// The groups between planning and conversion.
    queue: Queue,
    /// Scratch space for cutting a block into pieces.
    scratch: BlockPlan,
    /// The firmware state after every move handed out.
    exec: Executor,
}

/// Where a piece ends: its end point, rounded motor target and planned end tick.
#[derive(Clone, Copy, Debug, Default)]
struct PieceEnd {
    point: Point,
    target: MotorSteps,
    tick: f64,
}

/// A piece of the block on the fast path whose group is complete but not yet ready: its index
/// in `scratch`, where it starts (target and point) and where it ends.
#[derive(Clone, Copy, Debug)]
struct Waiting {
    piece: usize,
    from: MotorSteps,
    at: Point,
    end: PieceEnd,
}

/// Groups in plot order, a ring from `head`: those ready for conversion, then the held one
/// (complete, kept back in case a short run end must merge into it), then the open one.
#[derive(Clone, Debug)]
struct Queue {
    /// Planned duration a group needs before it may become its own move.
    close_ticks: f64,
    /// Rounded motor target at the end of everything pushed.
    tail: MotorSteps,
    /// Planned point where the next piece of the block being fed starts: `point_at(s0)` of
    /// the block's first piece, then the end point of each piece fed (the next piece starts at
    /// the same path distance), so a group takes its start point without recomputing it.
    tail_point: Point,
    groups: [Group; GROUPS],
    head: usize,
    len: usize,
    has_held: bool,
    has_open: bool,
}

impl StepGenerator {
    /// A generator at motor position zero with both accumulators clear (after `EM`).
    pub fn new(config: StepConfig) -> Self {
        Self {
            planned_ticks: 0.0,
            last_end: (Point::ORIGIN, MotorSteps::ZERO),
            queue: Queue {
                close_ticks: f64::from(config.min_move_ticks()) + 1.0,
                tail: MotorSteps::ZERO,
                tail_point: Point::ORIGIN,
                groups: [Group::default(); GROUPS],
                head: 0,
                len: 0,
                has_held: false,
                has_open: false,
            },
            scratch: BlockPlan::default(),
            exec: Executor::new(config),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &StepConfig {
        &self.exec.config
    }

    /// Sets the motor position and accumulators, e.g. after `EM` (both accumulators 0) or to
    /// resume at a known state (`QS`, and `QU,200` on 3.x). Only when idle (everything finished
    /// and popped), and within 2^30 steps of home.
    pub fn reset(&mut self, position: MotorSteps, accumulators: [u32; 2]) -> Result<(), StepError> {
        if !self.is_idle() {
            return Err(StepError::Busy);
        }
        let limit = (1 << 30) - 1;
        if position.m1.unsigned_abs() > limit || position.m2.unsigned_abs() > limit {
            return Err(StepError::OutOfRange);
        }
        self.exec.position = position;
        self.queue.tail = position;
        self.exec.acc = accumulators.map(|a| a & 0x7FFF_FFFF);
        Ok(())
    }

    /// Whether nothing is pending: every pushed block finished and every move popped.
    pub fn is_idle(&self) -> bool {
        self.queue.len == 0 && self.exec.slicer.is_none()
    }

    /// Exact motor position after every move popped so far.
    pub fn position(&self) -> MotorSteps {
        self.exec.position
    }

    /// Motor position after every block pushed so far (once finished and popped).
    pub fn target_position(&self) -> MotorSteps {
        self.queue.tail
    }

    /// Both step accumulators after every move popped so far, as the firmware holds them.
    pub fn accumulators(&self) -> [u32; 2] {
        self.exec.acc
    }

    /// Ticks of every move popped so far.
    pub fn elapsed_ticks(&self) -> u64 {
        self.exec.now
    }

    /// Planned duration of every block pushed so far, in ticks.
    pub fn planned_ticks(&self) -> f64 {
        self.planned_ticks
    }

    /// What the generator had to do beyond the plan.
    pub fn stats(&self) -> &StepStats {
        &self.exec.stats
    }

    /// Takes the next block in plot order. Refused (state unchanged) if moves from earlier
    /// blocks are still waiting to be popped, or if the block is invalid or does not start
    /// where the previous one ended.
    pub fn push(&mut self, block: &Block) -> Result<(), StepError> {
        self.check_ready()?;
        self.plan_checked(block)?;
        self.feed_planned(block);
        Ok(())
    }

    /// [`push`](Self::push) a block, then [`pop_into`](Self::pop_into) `out`: the moves that are
    /// ready go straight into the caller's batch. Returns how many were written; if that is
    /// `out.len()`, more may be ready (call `pop_into` until it writes fewer).
    ///
    /// With a batch of at least [`FAST_BATCH`] moves, the common block (every phase long
    /// enough to be its own move, in LM mode) takes a fast path: its phases are converted
    /// straight into `out` without passing through the generator's group queue. The moves are
    /// exactly those of `push` followed by `pop`.
    pub fn push_into(&mut self, block: &Block, out: &mut [Move]) -> Result<usize, StepError> {
        self.check_ready()?;
        self.plan_checked(block)?;
        if out.len() >= FAST_BATCH && self.fast_path_applies(block) {
            return Ok(self.push_fast(block, out));
        }
        self.feed_planned(block);
        Ok(self.pop_into(out))
    }

    /// Pops moves into `out` until it is full or nothing is ready; returns how many were
    /// written (see [`pop`](Self::pop)).
    pub fn pop_into(&mut self, out: &mut [Move]) -> usize {
        let mut n = 0;
        for slot in out.iter_mut() {
            match self.pop() {
                Some(m) => {
                    *slot = m;
                    n += 1;
                }
                None => break,
            }
        }
        n
    }

    /// Refuses a push while moves from earlier blocks wait to be popped.
    #[inline]
    fn check_ready(&self) -> Result<(), StepError> {
        if (self.queue.ready_len() != 0 && !self.head_waits()) || self.exec.slicer.is_some() {
            return Err(StepError::Busy);
        }
        Ok(())
    }

    /// Checks `block` (valid, continuous) and cuts it into pieces in `scratch`; nothing else
    /// changes, so a refused block leaves the generator as it was.
    #[inline]
    fn plan_checked(&mut self, block: &Block) -> Result<(), StepError> {
        let kinematics = self.exec.config.kinematics();
        let (end, end_target) = self.last_end;
        let same = |a: f64, b: f64| a.to_bits() == b.to_bits();
        let found = if same(block.start.x_mm, end.x_mm) & same(block.start.y_mm, end.y_mm) {
            end_target
        } else {
            profile::motor_target(kinematics, block.start)
        };
        if found != self.queue.tail {
            return Err(StepError::Discontinuous {
                expected: self.queue.tail,
                found,
            });
        }
        plan_block(
            block,
            kinematics,
            found,
            self.planned_ticks,
            self.queue.close_ticks,
            &mut self.scratch,
        )
    }

    /// The general path after [`Self::plan_checked`]: the pieces join the group queue.
    fn feed_planned(&mut self, block: &Block) {
        let pen_now = self.queue.back().map(|g| g.last.pen);
        if pen_now.is_some_and(|p| p != block.pen) {
            self.finish();
        }
        if let Some(first) = self.scratch.pieces.first() {
            self.queue.tail_point = first.line.point_at(first.s0);
        }
        self.feed_rest(block, 0);
    }

    /// Feeds the pieces `k..` of `scratch` to the group queue and accounts for the block (its
    /// ticks, its end): the general path's end of a push, from wherever the fast path left it.
    fn feed_rest(&mut self, block: &Block, k: usize) {
        let kinematics = self.exec.config.kinematics();
        for piece in self.scratch.pieces.iter().take(self.scratch.n).skip(k) {
            self.queue.feed(piece, kinematics, &mut self.exec.stats);
        }
        self.account(block);
    }

    /// Counts `block` as pushed: its ticks and its end (for the next block's start).
    #[inline]
    fn account(&mut self, block: &Block) {
        self.planned_ticks += self.scratch.ticks;
        self.last_end = (block.end, self.scratch.end_target);
    }

    /// Whether [`Self::push_fast`] may take the planned block: LM moves, nothing waiting but
    /// at most the held group, and the same pen (no run ends here).
    #[inline]
    fn fast_path_applies(&self, block: &Block) -> bool {
        let q = &self.queue;
        self.exec.config.format() == MoveFormat::Lm
            && !q.has_open
            && q.len == usize::from(q.has_held)
            && self.scratch.n > 0
            && !q.back().is_some_and(|g| g.last.pen != block.pen)
    }

    /// The fast path of [`Self::push_into`] (see [`Self::fast_path_applies`]), one piece at a
    /// time as the group queue would take them, without the queue: a piece that moves a motor
    /// and lasts long enough closes a group of its own, which makes the group before it (the
    /// held one, then the previous piece) ready, and that one is converted straight into
    /// `out`. The last piece becomes the held group. Where the queue would do anything else
    /// (a piece too short or stepless to close, a ready group that cannot fill the firmware
    /// minimum and merges with its successor), the rest of the block takes the general path
    /// from that point, with the queue in the state it would have had: the moves are the same.
    fn push_fast(&mut self, block: &Block, out: &mut [Move]) -> usize {
        let kinematics = self.exec.config.kinematics();
        let close_ticks = self.queue.close_ticks;
        let n = self.scratch.n;
        let mut written = 0;
        // The piece whose group is complete but not yet ready (it waits for the next one to
        // close); `None` while that is still the held group, if any.
        let mut waiting: Option<Waiting> = None;
        let Some(first) = self.scratch.pieces.first() else {
            return self.fall_back(block, out);
        };
        let (mut from, mut at) = (self.queue.tail, first.line.point_at(first.s0));
        for k in 0..n {
            let Some(piece) = self.scratch.pieces.get(k) else {
                break;
            };
            let point = piece.line.point_at(piece.s1);
            let target = piece.line.target_of(piece.s1, point, kinematics);
            let tick = piece.start_tick + piece.ticks();
            let closes = (target != from) & (tick - piece.start_tick >= close_ticks);
            if !closes {
                return self.fast_bail(block, out, written, waiting, k);
            }
            // This piece closes: the group before it is ready.
            let Some(slot) = out.get_mut(written) else {
                return self.fast_bail(block, out, written, waiting, k);
            };
            match waiting {
                None => {
                    let q = &mut self.queue;
                    if q.has_held {
                        let Some(held) = q.groups.get(q.head) else {
                            return self.fall_back(block, out);
                        };
                        if !self.exec.convert_lm_filling(held, slot) {
                            // It merges with this piece: nothing changed yet.
                            return self.fall_back(block, out);
                        }
                        written += 1;
                        q.pop_front();
                        q.has_held = false;
                    }
                }
                Some(w) => {
                    let Some(prev) = self.scratch.pieces.get(w.piece) else {
                        return self.fast_bail(block, out, written, waiting, k);
                    };
                    let job = LonePiece {
                        piece: prev,
                        end_tick: w.end.tick,
                        end_target: w.end.target,
                    };
                    if !self.exec.convert_lm_filling(&job, slot) {
                        return self.fast_bail(block, out, written, waiting, k);
                    }
                    written += 1;
                }
            }
            waiting = Some(Waiting {
                piece: k,
                from,
                at,
                end: PieceEnd {
                    point,
                    target,
                    tick,
                },
            });
            (from, at) = (target, point);
        }
        // Every piece closed: the last one is the held group.
        #[cfg(test)]
        FAST_BLOCKS.with(|c| c.set(c.get() + 1));
        self.hold(waiting);
        self.account(block);
        written
    }

    /// Leaves the fast path before piece `k` of `scratch`: the waiting piece becomes the held
    /// group (the queue is empty then: the held group of the previous block, if any, was
    /// converted), and pieces `k..` take the general path. With nothing waiting, nothing has
    /// changed yet and the whole block takes the general path.
    #[cold]
    fn fast_bail(
        &mut self,
        block: &Block,
        out: &mut [Move],
        written: usize,
        waiting: Option<Waiting>,
        k: usize,
    ) -> usize {
        if waiting.is_none() {
            return self.fall_back(block, out);
        }
        #[cfg(test)]
        FAST_BAILS_MIDWAY.with(|c| c.set(c.get() + 1));
        self.hold(waiting);
        self.feed_rest(block, k);
        written + self.pop_into(out.get_mut(written..).unwrap_or(&mut []))
    }

    /// Makes the waiting piece the held group of the (empty) queue, as `Queue::feed` makes a
    /// piece that closes, from its end already computed.
    #[inline]
    fn hold(&mut self, waiting: Option<Waiting>) {
        let q = &mut self.queue;
        if let Some(w) = waiting
            && let (Some(piece), Some(slot)) =
                (self.scratch.pieces.get(w.piece), q.groups.get_mut(q.head))
        {
            slot.start_known(piece, w.from, w.at, (w.end.point, w.end.target, w.end.tick));
            (q.tail, q.tail_point) = (w.end.target, w.end.point);
            q.len = 1;
            q.has_held = true;
        }
    }

    /// The general path for a block already planned into `scratch`.
    #[cold]
    fn fall_back(&mut self, block: &Block, out: &mut [Move]) -> usize {
        self.feed_planned(block);
        self.pop_into(out)
    }

    /// Ends the current run of motion: whatever was held back (to merge with what might follow)
    /// becomes moves. Call before a pen action or pause and at the end of the plot, then pop.
    pub fn finish(&mut self) {
        self.queue.finish(&mut self.exec.stats);
    }

    /// The next move, or `None` when everything pushed so far is out (except what is held back
    /// until the next block or [`finish`](Self::finish)).
    ///
    /// An LM group whose motors cannot spend the firmware minimum on their steps (see
    /// `Executor::cannot_fill_minimum`) is merged with the group after it first; if that one is
    /// not complete yet, the group waits for the next block. Only the last move of a run may
    /// stay shorter than the minimum.
    #[inline]
    pub fn pop(&mut self) -> Option<Move> {
        // Callers pop until `None` after every push, so every other call finds nothing ready:
        // answer that inline, without entering the large conversion function (its register
        // saves and stack frame cost more than the check).
        if self.queue.ready_len() == 0 {
            return None;
        }
        self.pop_ready()
    }

    /// [`Self::pop`] once something is ready.
    fn pop_ready(&mut self) -> Option<Move> {
        let q = &mut self.queue;
        loop {
            let ready = q.ready_len();
            if ready == 0 {
                return None;
            }
            let g = q.groups.get(q.head)?;
            if self.exec.slicer.is_some() {
                if let Some(m) = self.exec.next_slice(g) {
                    return Some(m);
                }
                self.exec.slicer = None;
                q.pop_front();
                continue;
            }
            match self.exec.config.format() {
                MoveFormat::Lm => {
                    let mut m = Move::EMPTY;
                    if !self.exec.convert_lm_filling(g, &mut m) {
                        if ready >= 2 {
                            q.merge_head();
                            continue;
                        }
                        if q.has_held || q.has_open {
                            return None;
                        }
                        // The last move of a run: stretched to the minimum, or left short.
                        let start = self.exec.lm_start(g.end_target);
                        self.exec.convert_lm_into(g, start, &mut m);
                    }
                    q.pop_front();
                    return Some(m);
                }
                MoveFormat::Sm => self.exec.slicer = Some(Slicer::default()),
            }
        }
    }

    /// Whether the only ready group waits for its successor (see [`pop`](Self::pop)).
    fn head_waits(&self) -> bool {
        let q = &self.queue;
        self.exec.config.format() == MoveFormat::Lm
            && q.ready_len() == 1
            && (q.has_held || q.has_open)
            && q.groups
                .get(q.head)
                .is_some_and(|g| self.exec.cannot_fill_minimum(g))
    }
}

/// A ring position `i < 2·GROUPS` (a slot index plus an offset up to `GROUPS`) as a slot index:
/// one comparison instead of a division.
#[inline]
fn ring(i: usize) -> usize {
    if i >= GROUPS { i - GROUPS } else { i }
}

impl Queue {
    /// Merges the first group into the second and drops the first (rare: motors that
    /// reverse right after stopping).
    #[cold]
    #[inline(never)]
    fn merge_head(&mut self) {
        let next = ring(self.head + 1);
        if let (Some(&first), Some(&second)) = (self.groups.get(self.head), self.groups.get(next)) {
            let mut merged = first;
            merged.absorb(&second);
            if let Some(slot) = self.groups.get_mut(next) {
                *slot = merged;
            }
            self.pop_front();
        }
    }

    #[inline]
    fn closable(&self, g: &Group) -> bool {
        g.has_steps() && g.ticks() >= self.close_ticks
    }

    #[inline]
    fn ready_len(&self) -> usize {
        self.len - usize::from(self.has_held) - usize::from(self.has_open)
    }

    #[inline]
    fn back(&self) -> Option<&Group> {
        let i = ring(self.head + self.len.checked_sub(1)?);
        self.groups.get(i)
    }

    #[inline]
    fn back_mut(&mut self) -> Option<&mut Group> {
        let i = ring(self.head + self.len.checked_sub(1)?);
        self.groups.get_mut(i)
    }

    fn pop_back(&mut self) {
        if self.len > 0 {
            self.len -= 1;
            if self.has_open {
                self.has_open = false;
            }
        }
    }

    #[inline]
    fn pop_front(&mut self) {
        if self.len > 0 {
            self.head = ring(self.head + 1);
            self.len -= 1;
        }
    }

    /// The open group is complete: it becomes the held one, and the previously held one becomes
    /// ready (it already sits before it in the ring).
    #[inline]
    fn close_open(&mut self) {
        self.has_open = false;
        self.has_held = true;
    }

    /// See [`StepGenerator::finish`].
    fn finish(&mut self, stats: &mut StepStats) {
        if self.has_open {
            let open = self.back().copied().unwrap_or_default();
            if self.closable(&open) {
                self.close_open();
            } else if self.has_held {
                self.pop_back();
                if let Some(held) = self.back_mut() {
                    held.absorb(&open);
                }
            } else if open.has_steps() {
                // A run shorter than the minimum move: stretched when converted.
                self.has_open = false;
                self.has_held = true;
            } else {
                stats.skipped_ticks += open.ticks();
                self.pop_back();
            }
        }
        self.has_held = false;
    }

    /// Adds a piece to the open group, splitting it when only its head is needed to make a short
    /// group long enough, and closes the group once it is long enough and moves.
    fn feed(&mut self, piece: &Piece, kinematics: Kinematics, stats: &mut StepStats) {
        if !self.has_open {
            // The common case: the piece starts a group of its own.
            let i = ring(self.head + self.len);
            // GROUPS bounds the groups alive at once (see its definition).
            if self.len >= GROUPS {
                return;
            }
            let (from, at) = (self.tail, self.tail_point);
            let Some(slot) = self.groups.get_mut(i) else {
                return;
            };
            slot.start(piece, from, at, kinematics);
            self.tail = slot.end_target;
            self.tail_point = slot.end_point;
            self.len += 1;
            self.has_open = true;
            if self.back().is_some_and(|g| self.closable(g)) {
                self.close_open();
            }
            return;
        }
        self.feed_open(*piece, kinematics, stats);
    }

    /// [`Self::feed`] with a group open.
    fn feed_open(&mut self, mut piece: Piece, kinematics: Kinematics, stats: &mut StepStats) {
        let close_ticks = self.close_ticks;
        loop {
            if !self.has_open {
                let i = ring(self.head + self.len);
                // GROUPS bounds the groups alive at once (see its definition).
                if self.len >= GROUPS {
                    return;
                }
                let (from, at) = (self.tail, self.tail_point);
                let Some(slot) = self.groups.get_mut(i) else {
                    return;
                };
                slot.start(&piece, from, at, kinematics);
                self.tail = slot.end_target;
                self.tail_point = slot.end_point;
                self.len += 1;
                self.has_open = true;
            } else {
                let Some(g) = self.back_mut() else {
                    return;
                };
                let need = close_ticks - g.ticks();
                if g.has_steps() && need > 0.0 && piece.ticks() >= need + close_ticks {
                    let (head, rest) = piece.split(need);
                    g.add(&head, kinematics);
                    (self.tail, self.tail_point) = (g.end_target, g.end_point);
                    self.close_open();
                    piece = rest;
                    continue;
                }
                if !g.has_steps() && g.ticks() + piece.ticks() > MAX_GROUP_TICKS {
                    // Hours without a whole step: nothing to execute.
                    stats.skipped_ticks += g.ticks();
                    self.pop_back();
                    continue;
                }
                g.add(&piece, kinematics);
                (self.tail, self.tail_point) = (g.end_target, g.end_point);
            }
            if self.back().is_some_and(|g| self.closable(g)) {
                self.close_open();
            }
            return;
        }
    }
}
