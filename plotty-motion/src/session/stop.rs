//! Stopping the machine: pause, abort and the stop after an error (`ES`, `QS`, `QU,200`,
//! `SP,1`), the planned pause at a fed [`FeedItem::Pause`], and resynchronising the reply
//! stream after garbage or a timeout.
//!
//! 2.8.1's `ES` only removes SM/XM/HM/LM moves, not delays or servo moves (reference §1.4);
//! those stay in the timeline and run to their end. The session never queues `LT`.

use crate::ebb::{Command, Reply};
use crate::kinematics::MotorSteps;
use crate::plan::{Pen, Tag};
use crate::time::Instant;

use super::feed::{self, EntryKind, FeedItem};
use super::{
    EntrySpec, Event, PauseReason, Phase, Purpose, Queued, ResumePoint, Session, SessionError,
    VersionRequests,
};

/// Readings of the position a stop takes at most to get two that agree.
const MAX_READINGS: u8 = 5;

/// Times a stop repeats a refused `ES` or pen raise.
const MAX_RETRIES: u8 = 3;

/// What a stop ends in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum StopKind {
    Pause(PauseReason),
    Abort,
}

/// The commands of a stop.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum StopStep {
    EStop,
    Steps,
    Accumulators,
    PenUp,
}

/// A stop in progress.
#[derive(Clone, Copy, Debug)]
pub(super) struct Stop {
    kind: StopKind,
    /// At a fed pause: nothing to abort, nothing dropped.
    planned: bool,
    /// When `ES` went out (the motors stopped between this and its reply).
    pub(super) es_sent: Instant,
    /// Timeline entries queued before `ES` (the rest are the stop's own).
    pub(super) cut: usize,
    /// Replies still due.
    outstanding: u8,
    /// The last `QS` reading, confirmed once a second one agrees.
    reading: Option<MotorSteps>,
    /// `QS` readings taken, and still due.
    reads: u8,
    reads_due: u8,
    /// Readings due that were asked for before a repeated `ES`: ignored.
    stale_reads: u8,
    /// `ES` or `SP,1` sent again after the firmware refused them (a damaged command).
    retries: u8,
    position: Option<MotorSteps>,
    accumulators: Option<[u32; 2]>,
    /// First move not completed, and its pen.
    resume: Option<(Tag, Pen)>,
    /// First move of the feed queue when the stop began.
    feed_first: Option<(Tag, Pen)>,
}

impl Session {
    /// Starts stopping the machine. A second stop while one runs only upgrades a pause to an
    /// abort.
    pub(super) fn start_stop(&mut self, now: Instant, kind: StopKind, planned: bool) {
        if let Some(stop) = self.stop.as_mut() {
            if kind == StopKind::Abort {
                stop.kind = StopKind::Abort;
            }
            return;
        }
        let feed_first = self.feed.iter().find_map(|item| match item {
            FeedItem::Move(m) => Some((m.tag, m.pen)),
            _ => None,
        });
        if !planned {
            self.feed.clear();
            self.dwell_sent_ms = 0;
            self.relower_on_resume = false;
        }
        self.polls.confirm_at = None;
        self.control.clear();
        let mut outstanding = 0u8;
        let mut queue = |command: Command, step: StopStep, entry: Option<EntrySpec>| {
            // At most four stop commands; the control queue was just emptied.
            let _ = self.control.push_back(Queued {
                command,
                purpose: Purpose::Stop(step),
                entry,
            });
            outstanding += 1;
        };
        if !planned {
            let es = Command::EmergencyStop {
                // After a supply drop the motors may have slipped: off at once (`ES,1`), so
                // nothing trusts their position again before the carriage is homed.
                disable_motors: kind == StopKind::Pause(PauseReason::PowerLost),
            };
            queue(es, StopStep::EStop, None);
        }
        let raise = !planned || self.pen_fed == Pen::Down;
        if raise {
            let (command, ticks) = feed::pen_command(&self.config.servo, Pen::Up);
            let entry = EntrySpec {
                kind: EntryKind::Pen {
                    pen: Pen::Up,
                    report: planned,
                },
                slots: 1,
                ticks,
                to: self.timeline.tail_position(),
            };
            queue(command, StopStep::PenUp, Some(entry));
        }
        // The raise goes right after ES (on 2.x each command waits for the previous reply);
        // the position and accumulators do not change meanwhile. Two readings of the position
        // must agree: the replies carry no checksum, and a position is worth a round trip.
        queue(Command::QuerySteps, StopStep::Steps, None);
        queue(Command::QuerySteps, StopStep::Steps, None);
        if !planned && self.version.is_v3() {
            queue(Command::QueryUtility(200), StopStep::Accumulators, None);
        }
        if planned {
            self.relower_on_resume = self.pen_fed == Pen::Down;
        }
        self.pen_fed = Pen::Up;
        self.stop = Some(Stop {
            kind,
            planned,
            es_sent: now,
            cut: self.timeline.len(),
            outstanding,
            reading: None,
            reads: 0,
            reads_due: 2,
            stale_reads: 0,
            retries: 0,
            position: None,
            accumulators: None,
            resume: None,
            feed_first,
        });
    }

    /// A stop command's reply (`None`: the firmware refused it; the stop goes on).
    pub(super) fn stop_reply(&mut self, now: Instant, step: StopStep, reply: Option<Reply>) {
        if reply.is_none() && matches!(step, StopStep::EStop | StopStep::PenUp) && self.retry(step)
        {
            return;
        }
        match (step, reply) {
            (StopStep::Steps, reply) => self.stop_reading(now, reply),
            (StopStep::Accumulators, Some(Reply::Utility(v))) => {
                if let Some(stop) = self.stop.as_mut() {
                    stop.accumulators = parse_pair(v.as_str());
                }
            }
            _ => {}
        }
        let Some(stop) = self.stop.as_mut() else {
            return;
        };
        stop.outstanding = stop.outstanding.saturating_sub(1);
        if stop.outstanding == 0 {
            self.finish_stop(now);
        }
    }

    /// Sends `ES` or the pen raise again after the firmware refused it (the command was
    /// damaged on the way): the machine must stop and the pen rise whatever happened. After a
    /// repeated `ES` the position is read afresh. Returns false when out of retries.
    fn retry(&mut self, step: StopStep) -> bool {
        let Some(stop) = self.stop.as_mut() else {
            return false;
        };
        // A refused raise is repeated even once the position is known (its reply comes after
        // the readings when it was itself a repeat); a refused ES cannot follow the readings.
        if stop.retries >= MAX_RETRIES || (step == StopStep::EStop && stop.position.is_some()) {
            return false;
        }
        stop.retries += 1;
        let (raise, ticks) = feed::pen_command(&self.config.servo, Pen::Up);
        let raise_entry = EntrySpec {
            kind: EntryKind::Pen {
                pen: Pen::Up,
                report: stop.planned,
            },
            slots: 1,
            ticks,
            to: self.timeline.tail_position(),
        };
        let mut queued = [None, None, None, None];
        if step == StopStep::EStop {
            // The raise sent after the refused ES is flushed by the repeated one: send it again
            // too, and read the position afresh after them.
            let es = Command::EmergencyStop {
                disable_motors: false,
            };
            stop.stale_reads = stop.reads_due;
            stop.reading = None;
            stop.reads = 0;
            stop.reads_due += 2;
            stop.outstanding += 3;
            queued[0] = Some((es, StopStep::EStop, None));
            queued[1] = Some((raise.clone(), StopStep::PenUp, Some(raise_entry)));
            queued[2] = Some((Command::QuerySteps, StopStep::Steps, None));
            queued[3] = Some((Command::QuerySteps, StopStep::Steps, None));
        } else {
            queued[0] = Some((raise, StopStep::PenUp, Some(raise_entry)));
        }
        for (command, step, entry) in queued.into_iter().flatten() {
            // At most four stop commands are ever waiting here.
            let _ = self.control.push_back(Queued {
                command,
                purpose: Purpose::Stop(step),
                entry,
            });
        }
        true
    }

    /// A `QS` reading of the stop: accepted once two in a row agree (at most
    /// [`MAX_READINGS`]; then the last one stands, after an error).
    fn stop_reading(&mut self, now: Instant, reply: Option<Reply>) {
        let Some(stop) = self.stop.as_mut() else {
            return;
        };
        stop.reads_due = stop.reads_due.saturating_sub(1);
        if stop.stale_reads > 0 {
            stop.stale_reads -= 1;
            return;
        }
        if stop.position.is_some() {
            return;
        }
        stop.reads += 1;
        let pos = match reply {
            Some(Reply::Steps { m1, m2 }) => Some(MotorSteps::new(m1, m2)),
            // Refused (a damaged `QS`): read again.
            _ => None,
        };
        if let Some(pos) = pos {
            if stop.reading == Some(pos) {
                return self.stop_position(now, pos);
            }
            let previous = stop.reading.replace(pos);
            if stop.reads >= MAX_READINGS {
                if let Some(expected) = previous {
                    self.emit(Event::Error(SessionError::PositionMismatch {
                        expected,
                        actual: pos,
                    }));
                }
                return self.stop_position(now, pos);
            }
        } else if stop.reads >= MAX_READINGS {
            // Left to `finish_stop`, which reports the position as unknown.
            return;
        }
        if stop.reads_due == 0 {
            stop.reads_due += 1;
            stop.outstanding += 1;
            // The stop's other commands were sent: there is room.
            let _ = self.control.push_back(Queued {
                command: Command::QuerySteps,
                purpose: Purpose::Stop(StopStep::Steps),
                entry: None,
            });
        }
    }

    /// The stop's `QS`: which queued entries ran, where to resume, what the firmware dropped.
    fn stop_position(&mut self, now: Instant, pos: MotorSteps) {
        self.emit(Event::Position {
            steps: pos,
            at: now,
        });
        let Some(stop) = self.stop else {
            return;
        };
        if stop.planned {
            // Everything before the pause has run: the position is exact.
            let expected = self.timeline.head_position();
            if pos != expected {
                self.emit(Event::Error(SessionError::PositionMismatch {
                    expected,
                    actual: pos,
                }));
            }
            let until = self.timeline.len();
            self.timeline.drop_until(until, now, pos, |_| false);
        } else {
            let mut cut = stop.cut;
            match self.timeline.locate(pos, stop.es_sent, now, cut) {
                Some(located) => {
                    for _ in 0..located.done {
                        match self.timeline.complete_first(now) {
                            Some(e) => {
                                cut -= 1;
                                self.complete(e);
                            }
                            None => break,
                        }
                    }
                }
                None => self.emit(Event::Error(SessionError::PositionMismatch {
                    expected: self.timeline.head_position(),
                    actual: pos,
                })),
            }
            let resume = self.timeline.iter().take(cut).find_map(|e| match e.kind {
                EntryKind::Move { tag, pen, .. } => Some((tag, pen)),
                _ => None,
            });
            // 3.x's ES flushes everything; 2.8.1's only the moves.
            let v3 = self.version.is_v3();
            self.timeline
                .drop_until(cut, now, pos, |e| v3 || e.is_move());
            if let Some(s) = self.stop.as_mut() {
                s.resume = resume.or(s.feed_first);
            }
        }
        if let Some(s) = self.stop.as_mut() {
            s.position = Some(pos);
        }
    }

    fn finish_stop(&mut self, now: Instant) {
        if let Some(stop) = self.stop
            && stop.position.is_none()
        {
            // No reading of the position was ever accepted (every `QS` refused or garbled):
            // take the last one, or the estimate, and say so. What ES dropped goes either way.
            let expected = self.timeline.head_position();
            let actual = stop.reading.unwrap_or(expected);
            self.emit(Event::Error(SessionError::PositionMismatch {
                expected,
                actual,
            }));
            self.stop_position(now, actual);
        }
        let Some(stop) = self.stop.take() else {
            return;
        };
        let position = stop
            .position
            .unwrap_or_else(|| self.timeline.head_position());
        let resume_tag = stop.resume.map(|(t, _)| t);
        if let Some(t) = self.pending_vertex.take()
            && Some(t) != resume_tag
        {
            self.emit(Event::VertexDone(t));
        }
        if !stop.planned {
            self.down_stroke = None;
        }
        self.end_busy();
        match stop.kind {
            StopKind::Pause(reason) => {
                let pen = match stop.resume {
                    Some((_, pen)) => pen,
                    None if stop.planned && self.relower_on_resume => Pen::Down,
                    None if stop.planned => Pen::Up,
                    None => self.last_move_fed.map_or(Pen::Up, |(_, p)| p),
                };
                self.phase = Phase::Paused;
                self.polls.next_button = self.now;
                self.emit(Event::Paused {
                    reason,
                    resume: ResumePoint {
                        position,
                        tag: resume_tag,
                        pen,
                        accumulators: stop.accumulators,
                        dropped: !stop.planned,
                    },
                });
            }
            StopKind::Abort => {
                self.phase = Phase::Ready;
                self.relower_on_resume = false;
                self.emit(Event::Aborted {
                    position,
                    accumulators: stop.accumulators,
                });
            }
        }
    }

    /// Gets back in step after a timeout or unreadable reply: forget what is due, send `V`
    /// and skip every line up to its reply, then stop the machine.
    pub(super) fn start_resync(&mut self, now: Instant) {
        let stopping = self.stop.take();
        let next = match (stopping.map(|s| s.kind), self.after_resync) {
            (_, Some(StopKind::Abort)) | (Some(StopKind::Abort), _) => Some(StopKind::Abort),
            _ if self.phase == Phase::Ready || stopping.is_some() => {
                Some(StopKind::Pause(PauseReason::Error))
            }
            _ => None,
        };
        self.after_resync = next;
        self.resync_from = if self.phase == Phase::Paused {
            Phase::Paused
        } else {
            Phase::Ready
        };
        self.pending.clear();
        self.control.clear();
        self.parser.reset();
        self.lines.clear();
        self.polls.button_in_flight = false;
        self.polls.position_in_flight = false;
        self.polls.fifo_in_flight = false;
        self.polls.confirm_at = None;
        self.timeline.assume_acked(now);
        self.phase = Phase::Resync;
        self.version_requests = VersionRequests {
            due: true,
            ..VersionRequests::default()
        };
    }

    /// The resynchronisation found the reply to its `V`: replies are in step again.
    pub(super) fn resynced(&mut self, now: Instant) {
        self.phase = self.resync_from;
        if let Some(kind) = self.after_resync.take() {
            self.start_stop(now, kind, false);
        }
    }
}

/// `QU,200`'s two accumulators: `a,b`, or `200,a,b` with the query number echoed (readings
/// of the firmware source differ on this).
pub(super) fn parse_pair(text: &str) -> Option<[u32; 2]> {
    let mut fields = text.split(',');
    let (first, second, third) = (fields.next()?, fields.next()?, fields.next());
    if fields.next().is_some() {
        return None;
    }
    let (a, b) = match third {
        Some(b) if first.trim() == "200" => (second, b),
        Some(_) => return None,
        None => (first, second),
    };
    Some([a.trim().parse().ok()?, b.trim().parse().ok()?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulator_pair() {
        assert_eq!(parse_pair("123,4294967295"), Some([123, u32::MAX]));
        assert_eq!(parse_pair("1"), None);
        assert_eq!(parse_pair("x,1"), None);
        assert_eq!(parse_pair("200,7,8"), Some([7, 8]));
        assert_eq!(parse_pair("201,7,8"), None);
        assert_eq!(parse_pair("200,7,8,9"), None);
    }
}
