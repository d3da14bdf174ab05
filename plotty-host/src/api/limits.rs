//! Limits on clients: the connection count (checked before the WebSocket upgrade), the message
//! rate per client, and the heartbeat rule that tells a dead client from a quiet one. The rate
//! limiter and the heartbeat are pure logic with time passed in.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counts WebSocket connections against `websocket.max_connections`.
#[derive(Clone, Default)]
pub(super) struct ConnectionLimiter {
    count: Arc<AtomicUsize>,
}

/// One counted connection; the count goes down when it is dropped.
pub(super) struct ConnectionSlot {
    count: Arc<AtomicUsize>,
}

/// A token bucket: `per_minute` messages a minute, in bursts of up to `per_minute`.
pub(super) struct RateLimiter {
    capacity: f64,
    tokens: f64,
    per_second: f64,
    last: Instant,
}

/// The heartbeat rule: ping every interval; a client that has sent nothing (a pong counts) for two
/// intervals is gone.
pub(super) struct Liveness {
    interval: Duration,
    last_heard: Instant,
}

/// What the heartbeat says to do at a tick.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Beat {
    /// Send a ping.
    Ping,
    /// Close the connection: nothing heard for two intervals.
    Dead,
}

impl ConnectionLimiter {
    /// Takes a slot if fewer than `max` are taken.
    pub(super) fn try_acquire(&self, max: usize) -> Option<ConnectionSlot> {
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| ConnectionSlot {
                count: Arc::clone(&self.count),
            })
    }

    /// Connections open now.
    pub(super) fn current(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

impl RateLimiter {
    /// A full bucket at `now`.
    pub(super) fn new(per_minute: u32, now: Instant) -> Self {
        let capacity = f64::from(per_minute.max(1));
        Self {
            capacity,
            tokens: capacity,
            per_second: capacity / 60.0,
            last: now,
        }
    }

    /// True if a message may be handled at `now` (and counts it).
    pub(super) fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until the next message is allowed.
    pub(super) fn retry_after(&self) -> Duration {
        let missing = (1.0 - self.tokens).max(0.0);
        Duration::from_secs_f64(missing / self.per_second)
    }
}

impl Liveness {
    /// A client just connected at `now`.
    pub(super) fn new(interval: Duration, now: Instant) -> Self {
        Self {
            interval,
            last_heard: now,
        }
    }

    /// The client sent something (any frame, a pong included).
    pub(super) fn heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// What to do at a heartbeat tick.
    pub(super) fn tick(&self, now: Instant) -> Beat {
        if now.saturating_duration_since(self.last_heard) >= self.interval * 2 {
            Beat::Dead
        } else {
            Beat::Ping
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_never_exceeded_and_slots_come_back() {
        let l = ConnectionLimiter::default();
        let a = l.try_acquire(2).unwrap();
        let _b = l.try_acquire(2).unwrap();
        assert!(l.try_acquire(2).is_none());
        assert_eq!(l.current(), 2);
        drop(a);
        assert!(l.try_acquire(2).is_some());
        assert_eq!(l.current(), 1, "the temporary slot was dropped again");
    }

    #[test]
    fn rate_limit_allows_a_minute_worth_then_refills() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(60, t0);
        assert!((0..60).all(|_| r.allow(t0)));
        assert!(!r.allow(t0));
        assert!((r.retry_after().as_secs_f64() - 1.0).abs() < 0.01);
        assert!(!r.allow(t0 + Duration::from_millis(500)));
        assert!(r.allow(t0 + Duration::from_millis(1500)));
        assert!(!r.allow(t0 + Duration::from_millis(1500)));
        // A long pause refills to the burst size, no more.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!((0..100).filter(|_| r.allow(later)).count(), 60);
    }

    #[test]
    fn quiet_clients_live_silent_ones_die_after_two_intervals() {
        let t0 = Instant::now();
        let s = Duration::from_secs(30);
        let mut live = Liveness::new(s, t0);
        assert_eq!(live.tick(t0 + s), Beat::Ping);
        assert_eq!(live.tick(t0 + s * 2), Beat::Dead);
        live.heard(t0 + s + Duration::from_secs(1));
        assert_eq!(live.tick(t0 + s * 2), Beat::Ping);
        // A client answering each ping within the interval lives forever.
        let mut t = t0;
        for _ in 0..100 {
            t += s;
            assert_eq!(live.tick(t), Beat::Ping);
            live.heard(t + Duration::from_millis(5));
        }
    }
}
