//! The session's estimate of what the firmware is doing: every queued command sent and not yet
//! finished, with its estimated start and end (reference §1.5, §6.1).
//!
//! An acknowledgement means "queued", so a command's start is estimated as
//! `max(ack time, previous end)` and its end as `start + exact ticks`. Both err late: the board
//! queued the command before its acknowledgement arrived. That is the safe side for the question
//! the feeder asks ("is there a free FIFO slot?"): a slot is counted as taken until the entry in it
//! has surely started. `QS` answers correct the estimate: entries the position shows finished are
//! completed at once, an entry the position shows still running is pushed later.
//!
//! The board's clock is not the host's: 2.x's interrupt period is hand-tuned (reference §2.1).
//! Every estimate carries a slack of [`CLOCK_TOLERANCE`] of the time since it was last anchored
//! to an observation (an acknowledgement that started it, a `QS`), so a board up to 2 % slow
//! never finds a command the session thought had room. A board even slower is caught by the next
//! `QS`, which may land on a move already counted finished: the last few finished moves are kept
//! to recognise that, and the timeline is delayed instead of the position declared lost.
//!
//! A board much faster than its clock says (a simulator running as fast as it can) finishes
//! commands long before their estimated ends, and a feed paced by the estimate would idle it.
//! A FIFO reading (`QU,6` on 3.x: the commands still waiting in the FIFO) tells exactly which
//! of the commands sent before it have started: all but the last `waiting` FIFO commands
//! (the last entry sent before the reading carries a mark, [`Timeline::mark_last`]). [`Timeline::fifo_reading`] turns it into completions and a
//! start seen on the board, which frees FIFO slots at once and re-anchors the estimate to the
//! reading (never earlier than the board really was).

use heapless::Deque;

use crate::kinematics::MotorSteps;
use crate::time::{Duration, Instant};

use super::feed::EntryKind;

/// Entries the timeline holds: a full 3.x FIFO (32), the command executing, and room for
/// markers.
pub(crate) const TIMELINE_CAPACITY: usize = 40;

/// A FIFO slot counts as taken until this long (plus the clock slack) after its entry's
/// estimated start.
pub(crate) const START_GUARD: Duration = Duration::from_millis(2);

/// How much slower than the host's the board's clock may run, as a fraction (2 %).
pub(crate) const CLOCK_TOLERANCE: f64 = 0.02;

/// How much more a reading that puts the board behind the estimate must explain than one that
/// puts it ahead (see `interval_gap`).
const BEHIND_WEIGHT: u64 = 8;

/// Finished moves remembered to recognise a board that is behind the estimate.
const HISTORY: usize = 4;

/// How much earlier than estimated an observation must find the board before the session
/// takes it for a board running ahead of its clock (a simulator). Estimates err late by the
/// acknowledgement's latency, a few milliseconds over USB (more while the host is busy), so
/// a real board stays well inside this.
pub(crate) const AHEAD_MARGIN: Duration = Duration::from_millis(50);

/// One command in the firmware's FIFO (or executing), or a marker between them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub(crate) kind: EntryKind,
    /// FIFO slots it takes (0 for markers).
    pub(crate) slots: u8,
    /// Exact execution time in ticks.
    pub(crate) ticks: u32,
    /// Its acknowledgement arrived (markers: always).
    pub(crate) acked: bool,
    /// Earliest possible start: the send time until acknowledged, then the ack time; raised by
    /// `QS` corrections.
    pub(crate) anchor: Instant,
    /// Estimated start and end.
    pub(crate) start: Instant,
    pub(crate) end: Instant,
    /// The last observation the estimate chains from (the clock slack grows from here).
    origin: Instant,
    /// Motor position after it (the one before is the previous entry's).
    pub(crate) to: MotorSteps,
    /// A FIFO reading showed it started: its slot is free whatever the estimate says.
    seen_started: bool,
    /// The last entry sent before the FIFO reading in flight.
    marked: bool,
}

/// What a FIFO reading says about the commands sent before its [`Mark`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct FifoReading {
    /// The first `done` entries have finished; the one after them has started (it is
    /// running, or just finished).
    pub(crate) done: usize,
    /// The estimate had that start later than the reading by more than [`AHEAD_MARGIN`]:
    /// the board runs ahead of its clock.
    pub(crate) ahead: bool,
}

/// A finished entry, remembered.
#[derive(Clone, Copy, Debug)]
struct Past {
    from: MotorSteps,
    to: MotorSteps,
    start: Instant,
    end: Instant,
    /// The move's ramp, `None` for other entries.
    ramp: Option<f32>,
}

/// Where a `QS` position puts the firmware in the timeline.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) struct Located {
    /// Entries `0..done` have finished.
    pub(crate) done: usize,
    /// How far entry `done` (a move) has got along its path, 0..1; `None` when it is not a move
    /// or its progress cannot be told from the position (a pen move, a delay).
    pub(crate) fraction: Option<f64>,
    /// The position lies on a move already counted finished: the board is this far behind
    /// the estimate (entry `done` starts no earlier than the answer plus this).
    pub(crate) behind: Option<Duration>,
}

/// The firmware's work as the session estimates it.
#[derive(Debug)]
pub(crate) struct Timeline {
    entries: Deque<Entry, TIMELINE_CAPACITY>,
    /// End of the last completed entry.
    head_end: Instant,
    /// The observation that estimate chains from.
    head_origin: Instant,
    /// Position after the last completed entry.
    head_pos: MotorSteps,
    /// The last finished entries, oldest first.
    history: Deque<Past, HISTORY>,
}

impl Entry {
    pub(crate) fn duration(&self) -> Duration {
        Duration::from_ticks(u64::from(self.ticks))
    }

    pub(crate) fn is_move(&self) -> bool {
        matches!(self.kind, EntryKind::Move { .. })
    }

    /// The move's ramp (see `MotionCommand::ramp`); 0.5 for anything else.
    fn ramp(&self) -> f32 {
        match self.kind {
            EntryKind::Move { ramp, .. } => ramp,
            _ => 0.5,
        }
    }

    /// Time into the entry when a fraction `f` of its steps is done.
    fn time_at(&self, f: f64) -> Duration {
        scaled(self.duration(), time_fraction(f, self.ramp()))
    }

    /// How far off the estimate of instant `t` of this entry can be with a board clock
    /// [`CLOCK_TOLERANCE`] slow: that fraction of the time since the last observation.
    fn slack(&self, t: Instant) -> Duration {
        scaled(t - self.origin, CLOCK_TOLERANCE)
    }

    /// When its FIFO slot surely frees up.
    fn surely_started(&self) -> Instant {
        self.start + START_GUARD + self.slack(self.start)
    }

    /// Whether it may still hold a FIFO slot at `now`: not acknowledged, or neither seen
    /// started nor surely started by the estimate.
    fn holds_slot(&self, now: Instant) -> bool {
        self.slots > 0 && (!self.acked || (!self.seen_started && now < self.surely_started()))
    }

    /// When it has surely finished: its end plus a millisecond for the `QS` round trip and the
    /// clock slack.
    fn surely_finished(&self) -> Instant {
        self.end + Duration::from_millis(1) + self.slack(self.end)
    }
}

impl Timeline {
    pub(crate) const fn new(now: Instant, position: MotorSteps) -> Self {
        Self {
            entries: Deque::new(),
            head_end: now,
            head_origin: now,
            head_pos: position,
            history: Deque::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries.is_full()
    }

    pub(crate) fn get(&self, i: usize) -> Option<&Entry> {
        self.entries.get(i)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Position after every completed entry.
    pub(crate) fn head_position(&self) -> MotorSteps {
        self.head_pos
    }

    /// Position after every entry (what the firmware reaches once all of it has run).
    pub(crate) fn tail_position(&self) -> MotorSteps {
        self.entries.back().map_or(self.head_pos, |e| e.to)
    }

    /// Estimated end of everything queued.
    pub(crate) fn tail_end(&self) -> Instant {
        self.entries.back().map_or(self.head_end, |e| e.end)
    }

    /// Forgets everything and restarts at `position` (after a stop or `EM`).
    pub(crate) fn reset(&mut self, now: Instant, position: MotorSteps) {
        self.entries.clear();
        self.history.clear();
        self.head_end = now;
        self.head_origin = now;
        self.head_pos = position;
    }

    /// Appends a command just sent (or a marker, `slots == 0`, acknowledged at once). Refused
    /// when full (the caller checks [`is_full`](Self::is_full) first).
    pub(crate) fn push(
        &mut self,
        now: Instant,
        kind: EntryKind,
        slots: u8,
        ticks: u32,
        to: MotorSteps,
    ) -> bool {
        let entry = Entry {
            kind,
            slots,
            ticks,
            acked: slots == 0,
            anchor: now,
            start: now,
            end: now,
            origin: now,
            to,
            seen_started: false,
            marked: false,
        };
        let ok = self.entries.push_back(entry).is_ok();
        self.rechain(self.entries.len().saturating_sub(1));
        ok
    }

    /// The oldest unacknowledged command was acknowledged at `now`.
    pub(crate) fn ack(&mut self, now: Instant) {
        if let Some(i) = self.entries.iter().position(|e| !e.acked) {
            if let Some(e) = self.entries.get_mut(i) {
                e.acked = true;
                e.anchor = now;
            }
            self.rechain(i);
        }
    }

    /// The oldest unacknowledged command was refused: it never entered the FIFO. The firmware
    /// runs the commands after it from where it really is, so their positions shift back by
    /// its displacement.
    pub(crate) fn reject(&mut self) {
        let Some(i) = self.entries.iter().position(|e| !e.acked) else {
            return;
        };
        let before = self.start_of(i);
        let Some(removed) = self.entries.get(i).copied() else {
            return;
        };
        let d1 = removed.to.m1.wrapping_sub(before.m1);
        let d2 = removed.to.m2.wrapping_sub(before.m2);
        // Remove entry i, keeping the order of the others.
        let n = self.entries.len();
        for j in 0..n {
            if let Some(e) = self.entries.pop_front()
                && j != i
            {
                // Same length minus one: there is room.
                let _ = self.entries.push_back(e);
            }
        }
        let mut zeroed = false;
        for e in self.entries.iter_mut().skip(i) {
            if matches!(e.kind, EntryKind::Motors) {
                zeroed = true;
            }
            if !zeroed {
                e.to = MotorSteps::new(e.to.m1.wrapping_sub(d1), e.to.m2.wrapping_sub(d2));
            }
        }
        self.rechain(i);
    }

    /// Position before entry `i`.
    fn start_of(&self, i: usize) -> MotorSteps {
        match i.checked_sub(1) {
            Some(p) => self.entries.get(p).map_or(self.head_pos, |e| e.to),
            None => self.head_pos,
        }
    }

    /// Recomputes starts and ends from entry `i` on: `start = max(anchor, previous end)`; an
    /// entry started by its own anchor is an observation, else it chains from the previous one.
    fn rechain(&mut self, i: usize) {
        let (mut prev_end, mut prev_origin) = match i.checked_sub(1) {
            Some(p) => self
                .entries
                .get(p)
                .map_or((self.head_end, self.head_origin), |e| (e.end, e.origin)),
            None => (self.head_end, self.head_origin),
        };
        for e in self.entries.iter_mut().skip(i) {
            if e.anchor > prev_end {
                e.start = e.anchor;
                e.origin = e.anchor;
            } else {
                e.start = prev_end;
                e.origin = prev_origin;
            }
            e.end = e.start + e.duration();
            prev_end = e.end;
            prev_origin = e.origin;
        }
    }

    /// FIFO slots taken at `now`: every command not acknowledged yet, and every acknowledged one
    /// that has not surely started.
    pub(crate) fn fifo_occupancy(&self, now: Instant) -> u32 {
        self.entries
            .iter()
            .filter(|e| e.holds_slot(now))
            .map(|e| u32::from(e.slots))
            .sum()
    }

    /// When the next FIFO slot surely frees up (`None` if none is taken or the next one is not
    /// acknowledged yet).
    pub(crate) fn next_slot_free(&self, now: Instant) -> Option<Instant> {
        self.entries
            .iter()
            .filter(|e| e.holds_slot(now))
            .map(|e| e.acked.then(|| e.surely_started()))
            .next()
            .flatten()
    }

    /// When the first entry will count as finished, if it is acknowledged.
    pub(crate) fn next_completion(&self) -> Option<Instant> {
        self.entries
            .front()
            .filter(|e| e.acked)
            .map(Entry::surely_finished)
    }

    /// Removes and returns the first entry if it has finished by `now`.
    pub(crate) fn pop_finished(&mut self, now: Instant) -> Option<Entry> {
        let due = self.next_completion()?;
        if now < due {
            return None;
        }
        self.pop_front()
    }

    /// Removes and returns the first entry, counting it finished.
    pub(crate) fn pop_front(&mut self) -> Option<Entry> {
        let e = self.entries.pop_front()?;
        self.finished(&e);
        self.head_end = e.end;
        self.head_origin = e.origin;
        self.head_pos = e.to;
        Some(e)
    }

    /// Remembers a finished entry.
    fn finished(&mut self, e: &Entry) {
        if self.history.is_full() {
            self.history.pop_front();
        }
        let _ = self.history.push_back(Past {
            from: self.head_pos,
            to: e.to,
            start: e.start,
            end: e.end,
            ramp: e.is_move().then(|| e.ramp()),
        });
    }

    /// Drops the entries in `0..until` for which `drop` says so (a stop flushed them), puts
    /// the motors at `position`, and re-chains everything from `now`: what is kept is not a
    /// move and stays where the motors are.
    pub(crate) fn drop_until(
        &mut self,
        until: usize,
        now: Instant,
        position: MotorSteps,
        drop: impl Fn(&Entry) -> bool,
    ) {
        let n = self.entries.len();
        let mut pos = position;
        self.head_pos = position;
        self.history.clear();
        if self.head_end < now {
            self.head_end = now;
            self.head_origin = now;
        }
        for j in 0..n {
            let Some(mut e) = self.entries.pop_front() else {
                break;
            };
            if j < until && drop(&e) {
                continue;
            }
            if !matches!(e.kind, EntryKind::Motors) {
                e.to = pos;
            }
            if e.anchor < now {
                e.anchor = now;
            }
            pos = e.to;
            // Same length or shorter: there is room.
            let _ = self.entries.push_back(e);
        }
        self.rechain(0);
    }

    /// After losing step with the board: every command sent may have been queued, so count
    /// them all as acknowledged now (a stop's `QS` then tells what ran).
    pub(crate) fn assume_acked(&mut self, now: Instant) {
        if let Some(i) = self.entries.iter().position(|e| !e.acked) {
            for e in self.entries.iter_mut().skip(i) {
                e.acked = true;
                if e.anchor < now {
                    e.anchor = now;
                }
            }
            self.rechain(i);
        }
    }

    /// Marks the last entry: a FIFO reading is sent now, after it (any older mark is
    /// dropped: one reading is in flight at a time).
    pub(crate) fn mark_last(&mut self) {
        self.clear_mark();
        if let Some(e) = self.entries.back_mut() {
            e.marked = true;
        }
    }

    /// Drops the mark (the reading was answered or lost).
    pub(crate) fn clear_mark(&mut self) {
        for e in self.entries.iter_mut() {
            e.marked = false;
        }
    }

    /// A FIFO reading sent after the marked entry, received at `rx`: `waiting` commands were
    /// still in the FIFO. Of the FIFO commands up to the mark, all but the last `waiting` have
    /// started, so every entry before the last of those has finished. `None` when the reading
    /// cannot be matched (the marked entry is gone: finished, or dropped by a stop; or it
    /// counts more commands than were sent) or tells nothing new (nothing started). A command
    /// the board refused is no longer in the timeline, and never was in its FIFO.
    pub(crate) fn fifo_reading(&self, waiting: u32, rx: Instant) -> Option<FifoReading> {
        let before = self.entries.iter().position(|e| e.marked)? + 1;
        let fifo_before = self
            .entries
            .iter()
            .take(before)
            .filter(|e| e.slots > 0)
            .count();
        let waiting = usize::try_from(waiting).ok()?;
        // The last one started: the FIFO command just before the waiting ones.
        let started_nth = fifo_before.checked_sub(waiting)?.checked_sub(1)?;
        let (index, entry) = self
            .entries
            .iter()
            .enumerate()
            .take(before)
            .filter(|(_, e)| e.slots > 0)
            .nth(started_nth)?;
        Some(FifoReading {
            done: index,
            ahead: entry.start > rx + AHEAD_MARGIN,
        })
    }

    /// A FIFO reading received at `rx` showed the first entry started (after completing the
    /// ones before it): its slot is free, and it started no later than `rx`. The estimate is
    /// pulled back to `rx` if it was later (never earlier: the board may have started it just
    /// then), and everything after it chains from there.
    pub(crate) fn seen_started(&mut self, rx: Instant) {
        let Some(e) = self.entries.front_mut() else {
            return;
        };
        if !e.acked {
            return;
        }
        e.seen_started = true;
        if e.start > rx {
            e.anchor = rx;
            e.start = rx;
            e.end = rx + e.duration();
            e.origin = rx;
        }
        self.rechain(1);
    }

    /// A `QS` answer: the firmware was at `pos` at some instant in `lo..=hi`. Returns where that
    /// puts it among the first `limit` entries, or `None` if no reading fits.
    ///
    /// Every reading consistent with the position is a candidate (before an entry, inside a
    /// move's straight step path, after an entry, during a pen move or delay); the one whose
    /// estimated time is closest to `lo..=hi` wins (a reading that puts the board behind the
    /// estimate counts [`BEHIND_WEIGHT`] times farther), the earliest on a tie. That tells apart
    /// the visits of a position a path passes several times.
    pub(crate) fn locate(
        &self,
        pos: MotorSteps,
        lo: Instant,
        hi: Instant,
        limit: usize,
    ) -> Option<Located> {
        let mut best: Option<(u64, Located)> = None;
        let mut consider = |a: Instant, b: Instant, located: Located| {
            let score = interval_gap(a, b, lo, hi);
            if best.is_none_or(|(s, _)| score < s) {
                best = Some((score, located));
            }
        };
        // Moves already counted finished that the board may still be running.
        let mut later = Duration::ZERO;
        for h in self.history.iter().rev() {
            let dur = h.end - h.start;
            if let Some(ramp) = h.ramp
                && let Some(f) = on_path(h.from, h.to, pos)
                && pos != h.to
            {
                let tau = time_fraction(f, ramp);
                let t = h.start + scaled(dur, tau);
                let left = later + scaled(dur, 1.0 - tau);
                consider(
                    t,
                    t,
                    Located {
                        done: 0,
                        fraction: None,
                        behind: Some(left),
                    },
                );
            }
            later += dur;
        }
        let limit = limit.min(self.entries.len());
        if limit == 0 {
            if pos == self.head_pos {
                consider(
                    lo,
                    hi,
                    Located {
                        done: 0,
                        fraction: None,
                        behind: None,
                    },
                );
            }
            return best.map(|(_, l)| l);
        }
        let mut prev_end = self.head_end;
        let mut from = self.head_pos;
        for (i, e) in self.entries.iter().enumerate().take(limit) {
            if pos == from {
                // Not started yet.
                let fraction = e.is_move().then_some(0.0);
                consider(
                    prev_end,
                    e.start,
                    Located {
                        done: i,
                        fraction,
                        behind: None,
                    },
                );
            }
            if e.is_move() {
                if let Some(f) = on_path(from, e.to, pos)
                    && pos != from
                    && pos != e.to
                {
                    let t = e.start + e.time_at(f);
                    consider(
                        t,
                        t,
                        Located {
                            done: i,
                            fraction: Some(f),
                            behind: None,
                        },
                    );
                }
            } else if pos == from && from == e.to {
                // A pen move, delay or marker: running, progress unknown.
                consider(
                    e.start,
                    e.end,
                    Located {
                        done: i,
                        fraction: None,
                        behind: None,
                    },
                );
            }
            if pos == e.to {
                let next = self.entries.get(i + 1).filter(|_| i + 1 < limit);
                let fraction = next.and_then(|n| n.is_move().then_some(0.0));
                let until = next.map_or(Instant::from_micros(u64::MAX), |n| n.start);
                consider(
                    e.end,
                    until,
                    Located {
                        done: i + 1,
                        fraction,
                        behind: None,
                    },
                );
            }
            prev_end = e.end;
            from = e.to;
        }
        best.map(|(_, l)| l)
    }

    /// Completes the first entry because a `QS` received at `rx` shows it finished; returns
    /// it. Unacknowledged entries are never completed (the board acknowledges before it runs a
    /// command).
    pub(crate) fn complete_first(&mut self, rx: Instant) -> Option<Entry> {
        if !self.entries.front().is_some_and(|e| e.acked) {
            return None;
        }
        let mut e = self.entries.pop_front()?;
        if e.end > rx {
            e.end = rx;
        }
        self.finished(&e);
        self.head_end = e.end;
        self.head_origin = rx;
        self.head_pos = e.to;
        Some(e)
    }

    /// A `QS` received at `rx` located the board at the first entry (after completing the
    /// ones before it): re-anchor the estimate to that observation. A move `fraction` of the way
    /// along started no later than `rx − fraction·duration`; one not started starts no earlier
    /// than `rx`; `behind` delays it further. Estimates are only ever pushed later here (a
    /// decelerating move covers its last part slowest, so a linear reading can be early).
    pub(crate) fn observe(&mut self, located: Located, rx: Instant) {
        let Some(e) = self.entries.front_mut() else {
            return;
        };
        if !e.acked {
            return;
        }
        let earliest = match (located.behind, located.fraction) {
            (Some(behind), _) => rx + behind,
            (None, Some(f)) => {
                Instant::from_micros(rx.as_micros().saturating_sub(e.time_at(f).as_micros()))
            }
            (None, None) => return,
        };
        if earliest > e.anchor {
            e.anchor = earliest;
        }
        e.start = e.start.max(earliest);
        e.end = e.start + e.duration();
        // The observation bounds the clock error from here on.
        e.origin = Instant::from_micros(rx.as_micros().min(e.start.as_micros()));
        self.rechain(1);
    }
}

/// The fraction of a move's time at which a fraction `f` of its steps is done, for a
/// constant-acceleration move of ramp `r` (`v_start / (v_start + v_end)`): the root of
/// `(1 − 2r)·τ² + 2r·τ = f`, written in the form that stays exact for `r = ½`.
fn time_fraction(f: f64, r: f32) -> f64 {
    let r = f64::from(r).clamp(0.0, 1.0);
    let f = f.clamp(0.0, 1.0);
    if f == 0.0 {
        return 0.0;
    }
    let d = r * r + (1.0 - 2.0 * r) * f;
    (f / (r + libm::sqrt(if d > 0.0 { d } else { 0.0 }))).clamp(0.0, 1.0)
}

/// `d × f` for `f` ≥ 0.
fn scaled(d: Duration, f: f64) -> Duration {
    // Float to int saturates; f is a fraction or the clock tolerance.
    Duration::from_micros((d.as_micros() as f64 * f) as u64)
}

/// Where `pos` lies along the straight step path `from → to`, as a fraction 0..=1, if it lies on
/// it: within 2 steps (or 1/64 of the length for long moves, whose two motors' step patterns
/// can drift apart a little more) of the line, and between the ends.
fn on_path(from: MotorSteps, to: MotorSteps, pos: MotorSteps) -> Option<f64> {
    let dx = f64::from(to.m1) - f64::from(from.m1);
    let dy = f64::from(to.m2) - f64::from(from.m2);
    let px = f64::from(pos.m1) - f64::from(from.m1);
    let py = f64::from(pos.m2) - f64::from(from.m2);
    let len2 = dx * dx + dy * dy;
    if len2 == 0.0 {
        return None;
    }
    let len = libm::sqrt(len2);
    let tolerance = if len / 64.0 > 2.0 { len / 64.0 } else { 2.0 };
    let along = (px * dx + py * dy) / len;
    let across = libm::fabs(px * dy - py * dx) / len;
    if across > tolerance || along < -tolerance || along > len + tolerance {
        return None;
    }
    Some((along / len).clamp(0.0, 1.0))
}

/// How far a reading at estimated time `a..=b` is from the answer's `lo..=hi`, in µs: 0 when
/// they overlap, the distance when the estimate is later, and [`BEHIND_WEIGHT`] times the
/// distance when it is earlier.
///
/// Estimates err late (a command is queued before its acknowledgement arrives), so the board
/// being ahead of them is the expected case; it is behind them only when its clock runs slow,
/// by at most [`CLOCK_TOLERANCE`] of the time since the last observation. A path that comes
/// back over itself (a zigzag) puts a position on an earlier move too, at an estimated time
/// before the answer: weighed equally, that reading often won, and since it says the board is
/// behind, [`Timeline::observe`] pushed every estimate later by up to a move's length. The feed
/// then counted the FIFO fuller than it was and let the board run dry (44 times, 1.7 s, in
/// random_walk_100k on 3.x).
fn interval_gap(a: Instant, b: Instant, lo: Instant, hi: Instant) -> u64 {
    if b < lo {
        (lo.as_micros() - b.as_micros()).saturating_mul(BEHIND_WEIGHT)
    } else if a > hi {
        a.as_micros() - hi.as_micros()
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Pen, Tag};

    fn mv(stroke: u32, vertex: u32) -> EntryKind {
        EntryKind::Move {
            pen: Pen::Down,
            tag: Tag { stroke, vertex },
            distance_mm: 1.0,
            ramp: 0.5,
        }
    }

    #[test]
    fn time_fractions_invert_constant_acceleration() {
        for r in [0.0f32, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0] {
            for i in 0..=20 {
                let tau = f64::from(i) / 20.0;
                let rr = f64::from(r);
                let f = 2.0 * rr * tau + (1.0 - 2.0 * rr) * tau * tau;
                let back = time_fraction(f, r);
                assert!(
                    (back - tau).abs() < 1e-9,
                    "r {r} tau {tau} f {f} back {back}"
                );
            }
        }
        assert_eq!(time_fraction(0.25, 0.0), 0.5);
    }

    fn ms(v: u64) -> Instant {
        Instant::from_millis(v)
    }

    /// A square of four 100 ms moves of 1000 steps per motor, starting and ending at 0.
    fn square() -> Timeline {
        let mut t = Timeline::new(ms(0), MotorSteps::ZERO);
        let corners = [(1000, 0), (1000, 1000), (0, 1000), (0, 0)];
        for (v, &(a, b)) in corners.iter().enumerate() {
            assert!(t.push(ms(0), mv(0, v as u32), 1, 2500, MotorSteps::new(a, b)));
        }
        for _ in 0..4 {
            t.ack(ms(1));
        }
        t
    }

    #[test]
    fn acks_chain_starts_and_ends() {
        let t = square();
        let e: Vec<_> = t.iter().map(|e| (e.start, e.end)).collect();
        assert_eq!(e[0], (ms(1), ms(101)));
        assert_eq!(e[3], (ms(301), ms(401)));
        assert_eq!(t.fifo_occupancy(ms(3)), 3);
        assert_eq!(t.fifo_occupancy(ms(1)), 4);
        // Second entry: starts at 101 ms, 100 ms after its anchor: 2 ms guard + 2 ms slack.
        assert_eq!(t.next_slot_free(ms(3)), Some(ms(105)));
        assert_eq!(t.tail_end(), ms(401));
    }

    #[test]
    fn locate_tells_visits_of_the_same_point_apart_by_time() {
        let t = square();
        // (0,0) is the start of the first edge and the end of the last.
        let early = t.locate(MotorSteps::ZERO, ms(0), ms(1), 4).unwrap();
        assert_eq!(early.done, 0);
        let late = t.locate(MotorSteps::ZERO, ms(405), ms(406), 4).unwrap();
        assert_eq!(late.done, 4);
        // Half way along the second edge.
        let mid = t
            .locate(MotorSteps::new(1000, 500), ms(150), ms(151), 4)
            .unwrap();
        assert_eq!(mid.done, 1);
        assert!((mid.fraction.unwrap() - 0.5).abs() < 1e-9);
        // Off every path.
        assert_eq!(t.locate(MotorSteps::new(500, 500), ms(0), ms(500), 4), None);
    }

    #[test]
    fn a_zigzag_is_read_on_the_move_running_not_on_the_one_before() {
        // Out to (1000, 0) and straight back, 100 ms each; the acknowledgements came at 20 ms,
        // so the estimate ([20, 120] and [120, 220]) is 20 ms late, as estimates are. At 115 ms
        // the board is 15 % into the way back: (850, 0), also 85 % along the way out.
        let mut t = Timeline::new(ms(0), MotorSteps::ZERO);
        assert!(t.push(ms(0), mv(0, 0), 1, 2500, MotorSteps::new(1000, 0)));
        assert!(t.push(ms(0), mv(0, 1), 1, 2500, MotorSteps::ZERO));
        t.ack(ms(20));
        t.ack(ms(20));
        let at = t
            .locate(MotorSteps::new(850, 0), ms(114), ms(115), 2)
            .unwrap();
        // The way back (the estimate late by 20 ms), not the way out (the board 9 ms behind an
        // estimate that errs late, which would push every estimate later).
        assert_eq!(at.done, 1, "{at:?}");
        assert!((at.fraction.unwrap() - 0.15).abs() < 1e-9);
        assert_eq!(at.behind, None);
        let done = t.complete_first(ms(115)).unwrap();
        t.observe(at, ms(115));
        assert_eq!(done.to, MotorSteps::new(1000, 0));
        // Never pushed later than the 20 ms late estimate it had.
        assert!(t.get(0).unwrap().end <= ms(220), "{:?}", t.get(0));
    }

    #[test]
    fn correction_completes_and_delays() {
        let mut t = square();
        // At 250 ms the estimate says edge 3 is half done; QS says edge 2 is only half done.
        let located = t
            .locate(MotorSteps::new(1000, 500), ms(249), ms(250), 4)
            .unwrap();
        let mut done = Vec::new();
        for _ in 0..located.done {
            done.push(t.complete_first(ms(250)).unwrap().to);
        }
        t.observe(located, ms(250));
        assert_eq!(done, vec![MotorSteps::new(1000, 0)]);
        assert_eq!(t.len(), 3);
        let first = t.get(0).unwrap();
        assert_eq!(first.start, ms(200));
        assert_eq!(first.end, ms(300));
        assert_eq!(t.tail_end(), ms(500));
    }

    #[test]
    fn reject_removes_the_unacked_command() {
        let mut t = Timeline::new(ms(0), MotorSteps::ZERO);
        t.push(ms(0), mv(0, 0), 1, 25, MotorSteps::new(10, 0));
        t.push(ms(0), mv(0, 1), 1, 25, MotorSteps::new(20, 0));
        t.ack(ms(1));
        t.reject();
        assert_eq!(t.len(), 1);
        assert_eq!(t.tail_position(), MotorSteps::new(10, 0));
    }

    #[test]
    fn completion_waits_for_ack_and_margin() {
        let mut t = Timeline::new(ms(0), MotorSteps::ZERO);
        t.push(ms(0), mv(0, 0), 1, 2500, MotorSteps::new(10, 0));
        assert_eq!(t.pop_finished(ms(1000)).map(|e| e.to), None);
        t.ack(ms(1));
        // End + 1 ms + 2 % of the 100 ms since the ack.
        assert_eq!(t.next_completion(), Some(ms(104)));
        assert!(t.pop_finished(ms(103)).is_none());
        assert!(t.pop_finished(ms(104)).is_some());
        assert_eq!(t.head_position(), MotorSteps::new(10, 0));
    }
}
