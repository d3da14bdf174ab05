//! The `Pair` harness (quinn's `tests/util.rs` idea): a [`Session`] and a [`Fake`] board joined
//! by a link with a fixed latency each way, in virtual time that jumps to the next thing that
//! happens (a byte arrival, a move ending on the board, the session's timeout).

use std::collections::VecDeque;
use std::string::String;
use std::vec::Vec;

use crate::ebb::limits::MAX_ENCODED_LEN;
use crate::kinematics::MotorSteps;
use crate::plan::{Pen, Tag};
use crate::session::{Event, FeedItem, Motion, MotionCommand, Session, SessionConfig};
use crate::time::{Duration, Instant};

use super::fake::Fake;

pub(crate) struct Pair {
    pub(crate) session: Session,
    pub(crate) fw: Fake,
    pub(crate) now: Instant,
    /// One-way latency of the link.
    pub(crate) latency: Duration,
    to_fw: VecDeque<(Instant, Vec<u8>)>,
    to_host: VecDeque<(Instant, Vec<u8>)>,
    /// Everything the session reported, with the time.
    pub(crate) events: Vec<(Instant, Event)>,
    /// Items still to push, in order.
    pub(crate) items: VecDeque<FeedItem>,
    /// When each command left the host.
    pub(crate) sent: Vec<(Instant, String)>,
}

impl Pair {
    pub(crate) fn new(config: SessionConfig, fw: Fake) -> Self {
        let now = Instant::from_millis(1_000);
        let mut fw = fw;
        fw.advance_to(now);
        Self {
            session: Session::new(config, now).unwrap(),
            fw,
            now,
            latency: Duration::from_micros(1_000),
            to_fw: VecDeque::new(),
            to_host: VecDeque::new(),
            events: Vec::new(),
            items: VecDeque::new(),
            sent: Vec::new(),
        }
    }

    /// Does everything due at `now`, without moving time.
    pub(crate) fn drive(&mut self) {
        // A few rounds: a reply can make the session send, a send can make the board reply.
        for _ in 0..4 {
            while self.to_fw.front().is_some_and(|(t, _)| *t <= self.now) {
                let (t, bytes) = self.to_fw.pop_front().unwrap();
                self.fw.receive(t, &bytes);
            }
            self.fw.advance_to(self.now);
            let out = self.fw.take_output();
            if !out.is_empty() {
                self.to_host.push_back((self.now + self.latency, out));
            }
            while self.to_host.front().is_some_and(|(t, _)| *t <= self.now) {
                let (_, bytes) = self.to_host.pop_front().unwrap();
                self.session.handle_rx(self.now, &bytes);
            }
            if self.session.poll_timeout().is_some_and(|t| t <= self.now) {
                self.session.handle_timeout(self.now);
            }
            self.feed();
            let mut buf = [0u8; MAX_ENCODED_LEN];
            while let Some(n) = self.session.poll_transmit(self.now, &mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).trim_end().into();
                self.sent.push((self.now, text));
                self.to_fw
                    .push_back((self.now + self.latency, buf[..n].to_vec()));
            }
            while let Some(e) = self.session.poll_event() {
                self.events.push((self.now, e));
            }
        }
    }

    fn feed(&mut self) {
        while self.session.can_accept() {
            let Some(item) = self.items.pop_front() else {
                break;
            };
            self.session.push(item).unwrap();
        }
    }

    /// The next instant anything happens, if anything will.
    pub(crate) fn next_wakeup(&self) -> Option<Instant> {
        [
            self.session.poll_timeout(),
            self.to_fw.front().map(|(t, _)| *t),
            self.to_host.front().map(|(t, _)| *t),
            self.fw.next_event(),
        ]
        .into_iter()
        .flatten()
        .map(|t| t.max(self.now))
        .min()
    }

    /// Moves to the next wakeup (at most `until`) and drives. Returns false if nothing will
    /// happen any more.
    pub(crate) fn step(&mut self, until: Instant) -> bool {
        self.drive();
        let Some(next) = self.next_wakeup() else {
            return false;
        };
        let next = next.min(until);
        if next == self.now {
            // Something is due now: drive again, but never spin.
            self.drive();
            let again = self.next_wakeup();
            assert!(
                again.is_none_or(|t| t > self.now) || next == until,
                "the pair spins at {}: {:?}",
                self.now,
                self.session
            );
            if again.is_none() {
                return false;
            }
            if let Some(t) = again {
                self.now = t.min(until).max(self.now);
            }
        } else {
            self.now = next;
        }
        self.drive();
        true
    }

    /// Runs until `done` holds or `limit` of virtual time passed; returns whether `done` held.
    pub(crate) fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> bool {
        let end = self.now + limit;
        self.drive();
        while !done(self) {
            if self.now >= end {
                return false;
            }
            if !self.step(end) {
                // Nothing scheduled: idle until the limit.
                self.now = end;
                self.drive();
                return done(self);
            }
        }
        true
    }

    /// Runs until an event matching `f` was reported; panics after `limit`.
    pub(crate) fn run_until_event(&mut self, limit: Duration, f: impl Fn(&Event) -> bool) -> Event {
        let start = self.events.len();
        let found = self.run_until(limit, |p| p.events[start..].iter().any(|(_, e)| f(e)));
        assert!(
            found,
            "no such event within {limit}; events: {:#?}",
            &self.events[start..]
        );
        self.events[start..]
            .iter()
            .find(|(_, e)| f(e))
            .map(|(_, e)| e.clone())
            .unwrap()
    }

    /// Connects: runs until `Ready`.
    pub(crate) fn connect(&mut self) {
        self.run_until_event(Duration::from_millis(2_000), |e| {
            matches!(e, Event::Ready { .. })
        });
    }

    pub(crate) fn errors(&self) -> Vec<&Event> {
        self.events
            .iter()
            .map(|(_, e)| e)
            .filter(|e| matches!(e, Event::Error(_)))
            .collect()
    }

    /// Commands the session sent since index `from`, as text.
    pub(crate) fn sent_since(&self, from: usize) -> Vec<String> {
        self.sent[from..].iter().map(|(_, c)| c.clone()).collect()
    }
}

/// An `SM` move of `ms` milliseconds by `steps`, ending at `end`, tagged (`stroke`, `vertex`).
pub(crate) fn sm(ms: u32, steps: [i32; 2], end: MotorSteps, pen: Pen, tag: (u32, u32)) -> FeedItem {
    FeedItem::Move(Motion {
        command: MotionCommand::Sm(crate::ebb::StepperMove {
            duration_ms: ms,
            steps,
            clear: None,
        }),
        ticks: ms * 25,
        end,
        pen,
        tag: Tag {
            stroke: tag.0,
            vertex: tag.1,
        },
        distance_mm: libm::hypot(
            f64::from(steps[0] + steps[1]) / 160.0,
            f64::from(steps[0] - steps[1]) / 160.0,
        ),
    })
}

/// A polyline of `SM` moves through motor positions, each `ms` long, starting at the origin.
pub(crate) fn polyline(points: &[(i32, i32)], ms: u32, pen: Pen, stroke: u32) -> Vec<FeedItem> {
    let mut at = (0, 0);
    points
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let steps = [p.0 - at.0, p.1 - at.1];
            at = p;
            sm(
                ms,
                steps,
                MotorSteps::new(p.0, p.1),
                pen,
                (stroke, i as u32 + 1),
            )
        })
        .collect()
}
