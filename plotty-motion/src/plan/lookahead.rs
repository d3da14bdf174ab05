//! The lookahead window: a ring of [`PlannerSlot`]s in caller storage, and the junction-speed
//! bound that the backward and forward passes compute, kept up to date in amortised O(1).
//!
//! # The passes as one formula
//!
//! Number the junctions (block starts) `k`; a block `k` of length `Lₖ` and acceleration `aₖ`
//! starts at junction `k` and ends at junction `k + 1`. Let `Jₖ²` be junction `k`'s limit
//! (corner rule and both blocks' top speeds; zero at a rest point) and
//! `Rₖ = Σ_{j<k} 2·aⱼ·Lⱼ` the "reach" up to junction `k`: along a full-acceleration ramp
//! speed² grows by exactly the reach travelled. The classic backward pass
//! (`bₖ² = min(Jₖ², bₖ₊₁² + 2·aₖ·Lₖ)`) unrolls to
//!
//! ```text
//!     bₖ² = min over m ≥ k of (Jₘ² + Rₘ) − Rₖ
//! ```
//!
//! so the backward bound at any junction is the minimum of the *keys* `Jₘ² + Rₘ` of the
//! junctions after it, minus its own reach; the window's end counts as a rest point with key
//! `R_end`. The forward pass only needs the previous block's final entry speed `e`:
//! `vₖ₊₁² ≤ e² + 2·aₖ·Lₖ`. The time-optimal speed at a junction is the lower of the two.
//!
//! The suffix minima of the keys are kept in a monotone deque (keys strictly increasing from
//! front to back): a new key removes the larger keys at the back, releasing the oldest block
//! removes its own key at the front, and the front is the minimum over everything after the
//! oldest block. Every key enters and leaves the deque once: amortised O(1) per segment, however
//! long the lookahead distance is in segments (grbl's backward pass costs one step per block
//! within braking distance of the window's end; thousands for finely divided curves).
//!
//! # Finality
//!
//! New blocks only raise the bound: the rest assumed at the window's end is replaced by a real
//! junction whose key is at least the old `R_end`. A block's exit speed is therefore final once
//! the end-of-window term does not bind — once the window holds at least the braking distance
//! from the speed the block's other bounds allow. Until then it may still rise, and releasing it
//! early (a full window) is safe but slower.
//!
//! # Rounding
//!
//! - A block's ramp is *defined* as the difference of the reaches around it, and each reach is
//!   rounded down (see `advance`) so that this difference never exceeds the block's own 2·a·L:
//!   the forward bound, the braking check and the bound the previous release used all see the
//!   same number, so no block is asked for more than its acceleration, not even by a rounding
//!   error.
//! - The next junction's own limit is applied exactly (as a cap), and the one-block backward
//!   step `J²(t+2) + ramp(t+1)` is computed locally, so rest points are reached exactly.
//! - Reaches grow without bound over a plot, so they are re-based to the oldest block once per
//!   window's worth of releases (an O(window) pass, still amortised O(1)), exactly: the base is
//!   a multiple of the largest reach's last-place unit, so every difference stays bit for bit.
//!   Their rounding is thus relative to the window's content, not to the plot's length. What
//!   remains is an error of about 1e-16 of the window's total reach in speeds², which only
//!   shows at speeds near zero (far below anything a motor resolves).

use crate::kinematics::Point;

use super::block::{Action, Pen, Tag};
use super::config::min;
use super::error::PlanError;

/// One slot of the planner's lookahead window. Provide as many as you want lookahead
/// (`[PlannerSlot::EMPTY; N]`); the planner never needs more storage than that.
#[derive(Clone, Copy, Debug)]
pub struct PlannerSlot {
    item: SlotItem,
    /// Highest speed² (mm²/s²) allowed at this slot's start junction.
    junction_sqr: f64,
    /// Reach (Σ 2·a·L, mm²/s²) up to this slot's start, relative to the window's base.
    reach_sqr: f64,
    /// One cell of the key deque, a ring of slot indices that lives in the same storage; it is
    /// unrelated to this slot's own item.
    deque_cell: u32,
}

/// What a slot holds.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SlotItem {
    Segment(SegmentSlot),
    Action(Action),
}

/// A straight block waiting for its final speeds. Its start is the end of the block before
/// (the planner keeps the start of the oldest).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SegmentSlot {
    pub(crate) end: Point,
    pub(crate) tag: Tag,
    pub(crate) pen: Pen,
    pub(crate) length_mm: f64,
    pub(crate) accel_mm_s2: f64,
    pub(crate) max_speed_sqr: f64,
}

/// The lookahead's verdict on the oldest block's exit speed².
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExitBound {
    /// The oldest block's ramp as the planner must use it: the difference of the reaches around
    /// it, which [`advance`] keeps at or below its 2·a·L.
    pub(crate) ramp_sqr: f64,
    /// The highest exit speed² consistent with everything in the window and a rest at its end.
    pub(crate) exit_sqr: f64,
    /// The next junction's own limit (zero if the window ends there).
    pub(crate) cap_sqr: f64,
    /// True when more input can no longer raise `exit_sqr`.
    pub(crate) is_final: bool,
}

/// The ring of slots and the key deque.
#[derive(Debug)]
pub(crate) struct Window<'a> {
    slots: &'a mut [PlannerSlot],
    /// Index of the oldest slot.
    head: usize,
    len: usize,
    /// Position of the deque's front among the deque cells.
    deque_head: usize,
    deque_len: usize,
    /// Reach at the end of the newest slot: the key of the rest assumed there.
    reach_end_sqr: f64,
}

impl PlannerSlot {
    /// An unused slot, to fill window arrays with.
    pub const EMPTY: Self = Self {
        item: SlotItem::Action(Action::Pause),
        junction_sqr: 0.0,
        reach_sqr: 0.0,
        deque_cell: 0,
    };

    pub(crate) fn item(&self) -> &SlotItem {
        &self.item
    }

    #[inline]
    fn key(&self) -> f64 {
        self.junction_sqr + self.reach_sqr
    }
}

impl Default for PlannerSlot {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<'a> Window<'a> {
    pub(crate) fn new(slots: &'a mut [PlannerSlot]) -> Result<Self, PlanError> {
        if slots.is_empty() {
            return Err(PlanError::EmptyWindow);
        }
        if u32::try_from(slots.len()).is_err() {
            return Err(PlanError::WindowTooLarge);
        }
        Ok(Self {
            slots,
            head: 0,
            len: 0,
            deque_head: 0,
            deque_len: 0,
            reach_end_sqr: 0.0,
        })
    }

    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.len == self.slots.len()
    }

    /// Ring index `offset` places after `index`; `index < capacity` and `offset ≤ capacity`.
    #[inline]
    fn wrap(&self, index: usize, offset: usize) -> usize {
        let i = index + offset;
        if i >= self.slots.len() {
            i - self.slots.len()
        } else {
            i
        }
    }

    /// The oldest slot.
    #[inline]
    pub(crate) fn front(&self) -> Option<&PlannerSlot> {
        if self.len == 0 {
            None
        } else {
            self.slots.get(self.head)
        }
    }

    /// The newest slot.
    #[inline]
    pub(crate) fn newest_mut(&mut self) -> Option<&mut PlannerSlot> {
        if self.len == 0 {
            return None;
        }
        let i = self.wrap(self.head, self.len - 1);
        self.slots.get_mut(i)
    }

    /// The newest slot's segment, if it is one.
    #[inline]
    pub(crate) fn newest_segment_mut(&mut self) -> Option<&mut SegmentSlot> {
        match self.newest_mut() {
            Some(PlannerSlot {
                item: SlotItem::Segment(s),
                ..
            }) => Some(s),
            _ => None,
        }
    }

    /// Slot index held by deque cell `position`.
    #[inline]
    fn deque_at(&self, position: usize) -> usize {
        // Cells only ever hold indices of slots, written by `push` below.
        self.slots[position].deque_cell as usize
    }

    /// Appends an item whose start junction allows `junction_sqr` and which adds `ramp_sqr`
    /// (2·a·L) of reach. The caller checks [`Self::is_full`] first.
    #[inline]
    pub(crate) fn push(&mut self, item: SlotItem, junction_sqr: f64, ramp_sqr: f64) {
        debug_assert!(!self.is_full());
        let index = self.wrap(self.head, self.len);
        // Invariant: `index < capacity` (wrap of in-range values).
        let slot = &mut self.slots[index];
        slot.item = item;
        slot.junction_sqr = junction_sqr;
        slot.reach_sqr = self.reach_end_sqr;
        // Keep the deque strictly increasing: keys at the back that are not below the new one
        // can never be a suffix minimum again.
        let key = slot.key();
        while self.deque_len > 0 {
            let back = self.wrap(self.deque_head, self.deque_len - 1);
            if self.slots[self.deque_at(back)].key() >= key {
                self.deque_len -= 1;
            } else {
                break;
            }
        }
        let cell = self.wrap(self.deque_head, self.deque_len);
        // `index < capacity ≤ u32::MAX` (checked in `new`).
        self.slots[cell].deque_cell = index as u32;
        self.deque_len += 1;
        self.len += 1;
        self.reach_end_sqr = advance(self.reach_end_sqr, ramp_sqr);
    }

    /// The newest slot grew by merging: its ramp (2·a·L) is now `ramp_sqr` in total.
    #[inline]
    pub(crate) fn set_newest_ramp(&mut self, ramp_sqr: f64) {
        if let Some(slot) = self.newest_mut() {
            let reach = slot.reach_sqr;
            self.reach_end_sqr = advance(reach, ramp_sqr);
        }
    }

    /// The bound on the oldest block's exit speed², given its final entry speed² `entry_sqr`.
    /// The front must be a segment.
    #[inline]
    pub(crate) fn front_exit_bound(&self, entry_sqr: f64) -> ExitBound {
        let front_reach_sqr = self.slots[self.head].reach_sqr;
        // Reach at the next junction, that junction's own limit (0 at the window's end), and
        // the bounds other than the window's end.
        let (next_reach_sqr, cap_sqr, ramp_sqr, mut limit_sqr);
        if self.len >= 2 {
            let next = &self.slots[self.wrap(self.head, 1)];
            next_reach_sqr = next.reach_sqr;
            cap_sqr = next.junction_sqr;
            ramp_sqr = next_reach_sqr - front_reach_sqr;
            limit_sqr = entry_sqr + ramp_sqr;
            if self.len >= 3 {
                // One backward step in local arithmetic: `J²(t+2) + ramp(t+1)`. The key
                // minimum contains it too, but computed here from the same differences the next
                // release will use, it guarantees that the next block can brake to its own exit
                // limit. (With two slots this step is the window's end, below.)
                let after = &self.slots[self.wrap(self.head, 2)];
                limit_sqr = min(
                    limit_sqr,
                    after.junction_sqr + (after.reach_sqr - next_reach_sqr),
                );
            }
        } else {
            next_reach_sqr = self.reach_end_sqr;
            cap_sqr = 0.0;
            ramp_sqr = next_reach_sqr - front_reach_sqr;
            limit_sqr = entry_sqr + ramp_sqr;
        }
        let rest_sqr = self.reach_end_sqr - next_reach_sqr;
        // The junction with the minimum key after the oldest block: the deque's front, unless
        // that is the oldest block's own start junction.
        let mut min_slot = None;
        if self.deque_len > 0 {
            let first = self.deque_at(self.deque_head);
            if first != self.head {
                min_slot = Some(first);
            } else if self.deque_len > 1 {
                min_slot = Some(self.deque_at(self.wrap(self.deque_head, 1)));
            }
        }
        // Its bound `J² + (R_m − R_next)`, grouped so that the next junction's own limit comes
        // out exactly and a far one's keeps the precision of its distance, not of the reach.
        if let Some(m) = min_slot {
            let slot = &self.slots[m];
            limit_sqr = min(
                limit_sqr,
                slot.junction_sqr + (slot.reach_sqr - next_reach_sqr),
            );
        }
        ExitBound {
            ramp_sqr,
            exit_sqr: min(limit_sqr, rest_sqr),
            cap_sqr,
            is_final: limit_sqr <= rest_sqr,
        }
    }

    /// Removes the oldest slot.
    #[inline]
    pub(crate) fn pop_front(&mut self) {
        if self.len == 0 {
            return;
        }
        if self.deque_len > 0 && self.deque_at(self.deque_head) == self.head {
            self.deque_head = self.wrap(self.deque_head, 1);
            self.deque_len -= 1;
        }
        self.head = self.wrap(self.head, 1);
        self.len -= 1;
        if self.len == 0 {
            // Nothing left to keep consistent: restart the reach at zero.
            // (The deque is empty too: it only holds keys of slots in the window.)
            self.reach_end_sqr = 0.0;
            self.deque_head = 0;
            self.deque_len = 0;
        }
    }

    /// Re-bases all reaches to (about) the oldest slot's start, so their magnitude, and with it
    /// their rounding, stays that of the window's content. O(window).
    ///
    /// Exact: the base is the oldest reach rounded down to a multiple of the largest reach's
    /// unit in the last place, so every subtraction is exact and every difference of reaches,
    /// which is what the planner uses, stays bit for bit the same.
    pub(crate) fn rebase(&mut self) {
        let Some(front) = self.front() else {
            self.reach_end_sqr = 0.0;
            return;
        };
        let unit = ulp(self.reach_end_sqr);
        if unit.is_nan() || unit <= 0.0 {
            return;
        }
        let base = front.reach_sqr - libm::fmod(front.reach_sqr, unit);
        for i in 0..self.len {
            let index = self.wrap(self.head, i);
            self.slots[index].reach_sqr -= base;
        }
        self.reach_end_sqr -= base;
    }
}

/// `reach + ramp`, rounded down far enough that the difference the planner later computes,
/// `result − reach`, is not above `ramp`: a block is never asked to gain more speed² over its
/// length than its acceleration gives, not even by a rounding error.
#[inline]
fn advance(reach: f64, ramp: f64) -> f64 {
    let sum = reach + ramp;
    // The first step down taken or not by a select rather than a branch: whether the sum
    // rounded up is a coin toss per segment, and a branch on it is mispredicted half the time.
    let down = sum.next_down();
    let mut next = if sum - reach > ramp { down } else { sum };
    // Rounding to nearest is off by at most half a unit, so this runs rarely if ever.
    while next - reach > ramp {
        next = next.next_down();
    }
    next
}

/// Unit in the last place of a non-negative finite `x` (0 for 0 and subnormals).
fn ulp(x: f64) -> f64 {
    let power_of_two = f64::from_bits(x.to_bits() & 0x7ff0_0000_0000_0000);
    power_of_two * f64::EPSILON
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(len: f64) -> SlotItem {
        SlotItem::Segment(SegmentSlot {
            end: Point::ORIGIN,
            tag: Tag::default(),
            pen: Pen::Down,
            length_mm: len,
            accel_mm_s2: 1.0,
            max_speed_sqr: 1e9,
        })
    }

    /// The reaches of every slot's start and of the end.
    fn reaches(w: &Window<'_>) -> std::vec::Vec<f64> {
        let mut r: std::vec::Vec<f64> = (0..w.len())
            .map(|k| w.slots[w.wrap(w.head, k)].reach_sqr)
            .collect();
        r.push(w.reach_end_sqr);
        r
    }

    #[test]
    fn slot_is_small() {
        // 64 slots are 5 KiB of the core's 20 KiB (`tests/budget.rs` holds the whole); a slot
        // that grows shows here first.
        assert!(core::mem::size_of::<PlannerSlot>() <= 80);
    }

    #[test]
    fn empty_window_is_refused() {
        let mut slots: [PlannerSlot; 0] = [];
        assert_eq!(Window::new(&mut slots).unwrap_err(), PlanError::EmptyWindow);
    }

    #[test]
    fn bound_is_suffix_minimum_of_keys() {
        // Blocks of 2·a·L = 10 each; junction limits 100, 5, 100, 0 (rest).
        let mut slots = [PlannerSlot::EMPTY; 8];
        let mut w = Window::new(&mut slots).unwrap();
        w.push(seg(5.0), 0.0, 10.0);
        w.push(seg(5.0), 100.0, 10.0);
        w.push(seg(5.0), 5.0, 10.0);
        w.push(seg(5.0), 100.0, 10.0);
        // Exit of block 0 (junction 1, reach 10): min(100, 5 + 10, 100 + 20, end rest 30) = 15.
        let b = w.front_exit_bound(1e9);
        assert_eq!(b.exit_sqr, 15.0);
        assert_eq!(b.cap_sqr, 100.0);
        assert!(b.is_final, "the rest 30 away does not bind");
        w.pop_front();
        // Exit of block 1 (junction 2): min(5, end rest 20) = 5.
        let b = w.front_exit_bound(1e9);
        assert_eq!(b.exit_sqr, 5.0);
        w.pop_front();
        // Exit of block 2 (junction 3): min(100, end rest 10) = 10, not final.
        let b = w.front_exit_bound(1e9);
        assert_eq!(b.exit_sqr, 10.0);
        assert!(!b.is_final);
        // From rest the forward bound (0 + 10) does not exceed the rest term: final.
        let b = w.front_exit_bound(0.0);
        assert_eq!(b.exit_sqr, 10.0);
        assert_eq!(b.ramp_sqr, 10.0);
        assert!(b.is_final);
        w.pop_front();
        let b = w.front_exit_bound(1e9);
        assert_eq!(b.exit_sqr, 0.0);
        assert_eq!(b.cap_sqr, 0.0);
        w.pop_front();
        assert!(w.front().is_none());
    }

    #[test]
    fn reach_differences_never_exceed_ramps() {
        let mut reach = 0.0;
        for i in 0..10_000 {
            let ramp = 0.001 + f64::from(i % 97) * 1_234.567_891;
            let next = advance(reach, ramp);
            assert!(next - reach <= ramp);
            // Short of the ramp by at most a couple of units in the last place of the reach.
            assert!(
                next - reach >= ramp - 2.0 * ulp(next),
                "{reach} + {ramp} → {next}"
            );
            reach = next;
        }
    }

    #[test]
    fn rebase_keeps_every_difference_exactly() {
        let mut slots = [PlannerSlot::EMPTY; 8];
        let mut w = Window::new(&mut slots).unwrap();
        for i in 0..5000 {
            if w.is_full() {
                let before = reaches(&w);
                let ramp_before = w.front_exit_bound(0.0).ramp_sqr;
                let bound_before = w.front_exit_bound(1e30).exit_sqr;
                w.rebase();
                let after = reaches(&w);
                for k in 1..before.len() {
                    assert_eq!(before[k] - before[k - 1], after[k] - after[k - 1]);
                }
                assert_eq!(ramp_before, w.front_exit_bound(0.0).ramp_sqr);
                assert_eq!(bound_before, w.front_exit_bound(1e30).exit_sqr);
                w.pop_front();
            }
            w.push(seg(1.0), 3.0, 1.0 / 3.0 + f64::from(i % 7) * 1e3);
        }
    }

    #[test]
    fn ring_wraps_and_rebases() {
        let mut slots = [PlannerSlot::EMPTY; 3];
        let mut w = Window::new(&mut slots).unwrap();
        for round in 0..20 {
            while !w.is_full() {
                w.push(seg(1.0), 4.0, 2.0);
            }
            w.pop_front();
            if round % 3 == 0 {
                w.rebase();
            }
            let b = w.front_exit_bound(1e9);
            // Junction limit 4 everywhere; the end rest is one block (2) away.
            assert_eq!(b.exit_sqr, 2.0);
            assert_eq!(b.cap_sqr, 4.0);
            assert_eq!(w.len(), 2);
        }
    }
}
