//! The progress throttle: at most ten `job_progress` a second per job, one per [`MIN_GAP`] on
//! average, but never losing the ones that matter. A layer boundary (the layer number changes)
//! sends the last progress of the old layer and the first of the new one at once; the end of a
//! job (everything drawn) is sent at once; an update that comes too soon is held and sent when its
//! window opens, unless a newer one replaces it first, so the last state of a burst always
//! arrives. A state change of the job sends what is held first, so clients see the final
//! progress before `COMPLETED`.
//!
//! Each job has a schedule of windows [`MIN_GAP`] apart (a cell-rate limiter): an update may go
//! up to [`JITTER`] before its window opens, and the next window then opens one gap after the
//! scheduled one, not after the early update. A 10 Hz source whose updates jitter (the device
//! task's reporter, the runtime's scheduling) passes straight through, none held for the
//! fraction of a millisecond it came early plus the timer's millisecond; a faster source still
//! gets ten a second, no more.
//!
//! Pure logic with time passed in; the fan-out task drives it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::events::JobProgress;
use crate::job::JobId;

/// Time between two windows of one job (10 a second).
pub(super) const MIN_GAP: Duration = Duration::from_millis(100);

/// How early before its window an update may go: the jitter of a 10 Hz source that is never
/// held. Two updates are never closer than `MIN_GAP - JITTER`.
const JITTER: Duration = Duration::from_millis(10);

/// Per-job throttle state.
#[derive(Default)]
pub(super) struct Throttle {
    jobs: HashMap<JobId, Slot>,
}

#[derive(Default)]
struct Slot {
    /// The window the last update was sent in (its opening; later than the send when the
    /// update went early).
    window: Option<Instant>,
    last_layer: Option<u32>,
    held: Option<JobProgress>,
}

impl Slot {
    /// An update may go at `now`.
    fn open(&self, now: Instant) -> bool {
        self.window.is_none_or(|w| now + JITTER >= w + MIN_GAP)
    }

    /// When the next ordinary update may go.
    fn opens_at(&self, now: Instant) -> Instant {
        self.window
            .map_or(now, |w| (w + MIN_GAP).checked_sub(JITTER).unwrap_or(now))
    }

    /// An update was sent at `now`: its window is the next on the schedule, or `now` if that
    /// is already past (the schedule does not bank the time nothing was sent).
    fn sent(&mut self, now: Instant) {
        self.window = Some(self.window.map_or(now, |w| now.max(w + MIN_GAP)));
    }
}

impl Throttle {
    /// Takes a new progress event; returns what to send now, in order.
    pub(super) fn offer(&mut self, p: JobProgress, now: Instant) -> Vec<JobProgress> {
        let slot = self.jobs.entry(p.job_id.clone()).or_default();
        let boundary = slot.last_layer.is_some_and(|l| l != p.current_layer);
        slot.last_layer = Some(p.current_layer);
        let end = p.progress >= 1.0 || (p.total_points > 0 && p.points_plotted >= p.total_points);
        if boundary || end {
            slot.sent(now);
            let mut out: Vec<JobProgress> = slot.held.take().into_iter().collect();
            out.push(p);
            return out;
        }
        if slot.open(now) {
            slot.sent(now);
            slot.held = None;
            vec![p]
        } else {
            slot.held = Some(p);
            Vec::new()
        }
    }

    /// Held updates whose window has opened by `now`.
    pub(super) fn due(&mut self, now: Instant) -> Vec<JobProgress> {
        let mut out = Vec::new();
        for slot in self.jobs.values_mut() {
            if slot.open(now)
                && let Some(p) = slot.held.take()
            {
                slot.sent(now);
                out.push(p);
            }
        }
        out
    }

    /// When the next held update is due.
    pub(super) fn next_due(&self) -> Option<Instant> {
        let now = Instant::now();
        self.jobs
            .values()
            .filter(|s| s.held.is_some())
            .map(|s| s.opens_at(now))
            .min()
    }

    /// The held update of `job`, to send before its state change.
    pub(super) fn flush(&mut self, job: &JobId) -> Option<JobProgress> {
        let slot = self.jobs.get_mut(job)?;
        let held = slot.held.take();
        if held.is_some() {
            slot.sent(Instant::now());
        }
        held
    }

    /// Forgets `job` (it ended or was deleted).
    pub(super) fn forget(&mut self, job: &JobId) {
        self.jobs.remove(job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(job: &str, layer: u32, points: u64) -> JobProgress {
        JobProgress {
            job_id: JobId::parse(job).unwrap(),
            device_id: None,
            progress: points as f64 / 100.0,
            current_layer: layer,
            total_layers: 3,
            points_plotted: points,
            total_points: 100,
            distance_mm: 0.0,
            eta_seconds: None,
            pen_down_time_seconds: 0.0,
            total_time_seconds: 0.0,
        }
    }

    fn points(v: &[JobProgress]) -> Vec<u64> {
        v.iter().map(|p| p.points_plotted).collect()
    }

    #[test]
    fn a_fast_stream_is_cut_to_ten_a_second_keeping_the_last() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        let mut sent = Vec::new();
        // 1 kHz of updates for one second.
        for i in 0..1000u64 {
            let now = t0 + Duration::from_millis(i);
            sent.extend(points(&t.due(now)));
            sent.extend(points(&t.offer(p("a", 1, i % 99), now)));
        }
        assert!(sent.len() <= 11, "{} sent", sent.len());
        assert!(sent.len() >= 9, "{} sent", sent.len());
        let held_until = t.next_due().unwrap();
        sent.extend(points(&t.due(held_until)));
        assert_eq!(
            sent.last(),
            Some(&(999 % 99)),
            "the last update is not lost"
        );
        assert!(t.next_due().is_none());
    }

    #[test]
    fn a_steady_ten_hertz_source_is_not_delayed_more_and_more() {
        // Updates every 100 ms, each seen 0.5 ms earlier in its window than the last one was
        // sent (jitter); the timer fires 1 ms late. The hold stays bounded, it does not grow.
        let mut t = Throttle::default();
        let t0 = Instant::now();
        let mut worst = Duration::ZERO;
        let mut sent = t.offer(p("a", 1, 0), t0 + Duration::from_micros(500)).len();
        for i in 1..100u64 {
            let at = t0 + Duration::from_millis(100 * i);
            let now_sent = t.offer(p("a", 1, i), at);
            sent += now_sent.len();
            if now_sent.is_empty() {
                let due = t.next_due().unwrap();
                let fired = due + Duration::from_millis(1);
                sent += t.due(fired).len();
                worst = worst.max(fired - at);
            }
        }
        assert_eq!(sent, 100);
        assert!(worst <= Duration::from_millis(3), "held up to {worst:?}");
    }

    #[test]
    fn a_jittery_ten_hertz_source_is_never_held() {
        // Updates 100 ms apart on average, each up to 5 ms early or late (the device task's
        // reporter and the runtime's scheduling): every one goes at once.
        let mut t = Throttle::default();
        let t0 = Instant::now() + Duration::from_secs(1);
        let jitter_us = [
            0i64, -4_000, 3_000, -5_000, 5_000, -1_000, -5_000, 2_000, -300, 4_999,
        ];
        for i in 0..200u64 {
            let j = jitter_us[i as usize % jitter_us.len()];
            let on_time = t0 + Duration::from_millis(100 * i);
            let at = if j < 0 {
                on_time - Duration::from_micros(j.unsigned_abs())
            } else {
                on_time + Duration::from_micros(j.unsigned_abs())
            };
            assert_eq!(
                points(&t.offer(p("a", 1, i), at)),
                [i],
                "update {i} was held"
            );
        }
    }

    #[test]
    fn early_updates_cannot_raise_the_rate() {
        // 1 kHz for ten seconds: ten a second on average, never two closer than the gap less
        // the jitter.
        let mut t = Throttle::default();
        let t0 = Instant::now();
        let mut sent_at = Vec::new();
        for i in 0..10_000u64 {
            let now = t0 + Duration::from_millis(i);
            for _ in t
                .due(now)
                .into_iter()
                .chain(t.offer(p("a", 1, i % 99), now))
            {
                sent_at.push(now);
            }
        }
        assert!(sent_at.len() <= 101, "{} sent in 10 s", sent_at.len());
        assert!(sent_at.len() >= 99, "{} sent in 10 s", sent_at.len());
        assert!(
            sent_at.windows(2).all(|w| w[1] - w[0] >= MIN_GAP - JITTER),
            "{sent_at:?}"
        );
    }

    #[test]
    fn boundaries_and_the_end_go_out_at_once() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        assert_eq!(points(&t.offer(p("a", 1, 10), t0)), [10]);
        assert!(
            t.offer(p("a", 1, 11), t0 + Duration::from_millis(1))
                .is_empty()
        );
        // Layer 2 starts: the end of layer 1 (held) and the start of layer 2 both go now.
        assert_eq!(
            points(&t.offer(p("a", 2, 12), t0 + Duration::from_millis(2))),
            [11, 12]
        );
        assert!(
            t.offer(p("a", 2, 50), t0 + Duration::from_millis(3))
                .is_empty()
        );
        assert_eq!(
            points(&t.offer(p("a", 2, 100), t0 + Duration::from_millis(4))),
            [50, 100]
        );
    }

    #[test]
    fn jobs_are_throttled_separately_and_flush_before_state_changes() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        assert_eq!(t.offer(p("a", 1, 1), t0).len(), 1);
        assert_eq!(t.offer(p("b", 1, 1), t0).len(), 1);
        assert!(t.offer(p("a", 1, 2), t0).is_empty());
        let a = JobId::parse("a").unwrap();
        assert_eq!(t.flush(&a).map(|p| p.points_plotted), Some(2));
        assert_eq!(t.flush(&a), None);
        t.forget(&a);
        assert_eq!(
            t.offer(p("a", 1, 3), t0).len(),
            1,
            "a forgotten job starts afresh"
        );
    }
}
