//! Receiving: bytes to lines to replies, matched in order to the commands sent; what each reply
//! means; progress events as entries finish.

use crate::ebb::limits::REPLY_LINE_CAPACITY;
use crate::ebb::{ErrorKind, FirmwareError, LineTooLong, Reply, ReplyError};
use crate::kinematics::MotorSteps;
use crate::plan::Pen;
use crate::time::Instant;

use super::error::excerpt;
use super::feed::EntryKind;
use super::stop::StopKind;
use super::timeline::{AHEAD_MARGIN, Entry};
use super::{
    CONFIRM_ATTEMPTS, CONFIRM_INTERVAL, Event, FAST_READINGS, PauseReason, Pending, Phase,
    Progress, Purpose, QueryPurpose, Session, SessionError,
};

impl Session {
    /// Handles bytes received from the board, split anywhere. Any bytes are accepted: what
    /// does not fit the expected reply becomes an [`Event::Error`].
    pub fn handle_rx(&mut self, now: Instant, data: &[u8]) {
        self.tick(now);
        let mut rest = data;
        let mut line = [0u8; REPLY_LINE_CAPACITY];
        while !rest.is_empty() {
            let (tail, got) = self.lines.push(rest);
            rest = tail;
            match got {
                None => {}
                Some(Ok(l)) => {
                    let n = l.len().min(line.len());
                    line[..n].copy_from_slice(&l[..n]);
                    self.on_line(now, &line[..n]);
                }
                Some(Err(e)) => self.on_long_line(now, e),
            }
        }
        self.advance(now);
    }

    fn on_line(&mut self, now: Instant, line: &[u8]) {
        match self.phase {
            Phase::Handshake => self.on_handshake_line(now, line),
            Phase::Resync => self.on_resync_line(now, line),
            Phase::Failed => {}
            Phase::Setup | Phase::Ready | Phase::Paused => {
                if self.pending.is_empty() {
                    self.emit(Event::Error(SessionError::Unsolicited {
                        line: excerpt(line),
                        error: FirmwareError::find(line),
                    }));
                    return;
                }
                if let Some(result) = self.parser.push_line(line)
                    && let Some(p) = self.pending.pop_front()
                {
                    self.on_result(now, p, result, line);
                    self.begin_front(now);
                }
            }
        }
    }

    fn on_long_line(&mut self, now: Instant, error: LineTooLong) {
        const TOO_LONG: &[u8] = b"<line too long>";
        match self.phase {
            Phase::Handshake | Phase::Resync => self.on_line(now, TOO_LONG),
            Phase::Failed => {}
            Phase::Setup | Phase::Ready | Phase::Paused => {
                if self.pending.is_empty() {
                    self.on_line(now, TOO_LONG);
                    return;
                }
                if let Some(result) = self.parser.push_line_error(error)
                    && let Some(p) = self.pending.pop_front()
                {
                    self.on_result(now, p, result, TOO_LONG);
                    self.begin_front(now);
                }
            }
        }
    }

    /// A complete reply (or a failure to read one) for the pending command `p`.
    pub(super) fn on_result(
        &mut self,
        now: Instant,
        p: Pending,
        result: Result<Reply, ReplyError>,
        line: &[u8],
    ) {
        match p.purpose {
            Purpose::Button => self.polls.button_in_flight = false,
            Purpose::Power => self.polls.power_in_flight = false,
            Purpose::Position(QueryPurpose::Poll) => self.polls.position_in_flight = false,
            Purpose::Position(QueryPurpose::Confirm) => self.polls.position_in_flight = false,
            Purpose::Fifo => self.polls.fifo_in_flight = false,
            _ => {}
        }
        match result {
            Err(error) => {
                if p.fifo {
                    // Unknown whether it was queued; the stop's QS tells.
                    self.timeline.ack(now);
                }
                self.protocol_error(
                    now,
                    SessionError::BadReply {
                        command: p.command(),
                        error,
                        line: excerpt(line),
                    },
                );
            }
            Ok(Reply::Error(error)) => {
                if p.fifo {
                    if matches!(error.kind, ErrorKind::Malfunction(_)) {
                        // 2.x queued the move with a clamped rate (reference §2.3).
                        self.timeline.ack(now);
                    } else {
                        self.timeline.reject();
                    }
                }
                self.firmware_error(now, p, error);
            }
            Ok(reply) => {
                if p.fifo {
                    self.timeline.ack(now);
                }
                self.on_reply(now, p, reply);
            }
        }
    }

    fn on_reply(&mut self, now: Instant, p: Pending, reply: Reply) {
        match p.purpose {
            Purpose::Version | Purpose::Feed => {}
            Purpose::Setup(step) => self.setup_reply(now, step, reply),
            Purpose::Button => {
                let (pressed, power_lost) = match reply {
                    Reply::Button { pressed } => (pressed, false),
                    Reply::GeneralStatus(s) => (s.button_pressed, s.power_lost),
                    _ => (false, false),
                };
                if power_lost {
                    // The supply fell below `min_voltage` since the last poll, however briefly:
                    // the motors may have slipped, so the plot stops here, pen up.
                    self.emit(Event::PowerLost);
                    if self.is_ready() && self.is_plotting() {
                        self.start_stop(now, StopKind::Pause(PauseReason::PowerLost), false);
                        return;
                    }
                }
                if pressed {
                    self.emit(Event::ButtonPressed);
                    if self.config.pause_on_button && self.is_ready() && self.is_plotting() {
                        self.start_stop(now, StopKind::Pause(PauseReason::Button), false);
                    }
                }
            }
            Purpose::Power => {
                if let Reply::Current { voltage, .. } = reply {
                    let low = self.power_reading(now, voltage) == Some(true);
                    if low && self.is_ready() && self.is_plotting() {
                        self.start_stop(now, StopKind::Pause(PauseReason::LowPower), false);
                    }
                }
            }
            Purpose::Position(q) => {
                if let Reply::Steps { m1, m2 } = reply {
                    self.on_position(now, q, MotorSteps::new(m1, m2), p.sent);
                }
            }
            Purpose::Fifo => {
                // Every answer counts against the readings left, so a board whose answers
                // tell nothing (an unreadable count) is not asked again and again.
                self.polls.fast_readings = self.polls.fast_readings.saturating_sub(1);
                if let Reply::Utility(v) = reply
                    && let Some(waiting) = fifo_waiting(v.as_str())
                {
                    self.on_fifo_reading(now, waiting);
                }
                self.timeline.clear_mark();
            }
            Purpose::Stop(step) => self.stop_reply(now, step, Some(reply)),
        }
    }

    /// A `QU,6` answer received at `now`: `waiting` commands were in the FIFO when the board
    /// read the query, after every command sent before it.
    fn on_fifo_reading(&mut self, now: Instant, waiting: u32) {
        if self.stop.is_some() || self.phase != Phase::Ready {
            return;
        }
        let Some(reading) = self.timeline.fifo_reading(waiting, now) else {
            return;
        };
        if reading.ahead {
            self.polls.fast_readings = FAST_READINGS;
        }
        let mut completed = 0;
        while completed < reading.done {
            match self.timeline.complete_first(now) {
                Some(e) => self.complete(e),
                None => break,
            }
            completed += 1;
        }
        if completed == reading.done {
            self.timeline.seen_started(now);
        }
    }

    /// The reply stream is out of step (garbage, a lost line, a missing reply).
    fn protocol_error(&mut self, now: Instant, error: SessionError) {
        match self.phase {
            Phase::Setup => self.fail(error),
            Phase::Ready | Phase::Paused => {
                self.emit(Event::Error(error));
                self.start_resync(now);
            }
            Phase::Handshake | Phase::Resync | Phase::Failed => self.emit(Event::Error(error)),
        }
    }

    /// The firmware rejected a command; replies are still in step.
    fn firmware_error(&mut self, now: Instant, p: Pending, error: FirmwareError) {
        let error = SessionError::Firmware {
            command: p.command(),
            error,
        };
        match self.phase {
            Phase::Setup => self.fail(error),
            Phase::Ready | Phase::Paused => {
                self.emit(Event::Error(error));
                if let Purpose::Stop(step) = p.purpose {
                    self.stop_reply(now, step, None);
                } else if self.stop.is_none() {
                    self.start_stop(now, StopKind::Pause(PauseReason::Error), false);
                }
            }
            Phase::Handshake | Phase::Resync | Phase::Failed => self.emit(Event::Error(error)),
        }
    }

    /// A `QS` answer sent at `sent`, received at `now`.
    fn on_position(&mut self, now: Instant, purpose: QueryPurpose, pos: MotorSteps, sent: Instant) {
        self.emit(Event::Position {
            steps: pos,
            at: now,
        });
        if self.stop.is_some() || self.phase != Phase::Ready {
            return;
        }
        let settled = self.timeline.is_empty() && self.feed.is_empty();
        if purpose == QueryPurpose::Confirm && settled {
            if pos == self.timeline.head_position() {
                if let Some(t) = self.pending_vertex.take() {
                    self.emit(Event::VertexDone(t));
                }
                self.end_busy();
                self.busy = false;
                self.polls.confirm_attempts = 0;
                self.emit(Event::Idle { position: pos });
            } else {
                self.polls.confirm_attempts = self.polls.confirm_attempts.saturating_add(1);
                if self.polls.confirm_attempts < CONFIRM_ATTEMPTS {
                    self.polls.confirm_at = Some(now + CONFIRM_INTERVAL);
                } else {
                    self.position_lost(now, pos);
                }
            }
            return;
        }
        let limit = self.timeline.len();
        match self.timeline.locate(pos, sent, now, limit) {
            Some(located) => {
                // Entries the board finished long before their estimated end: it runs ahead
                // of its clock (a simulator), and is fed by its FIFO state from now on.
                if self.line == super::ProtocolLine::V3
                    && located.done > 0
                    && self
                        .timeline
                        .get(located.done - 1)
                        .is_some_and(|e| e.end > now + AHEAD_MARGIN)
                {
                    self.polls.fast_readings = FAST_READINGS;
                }
                let mut completed = 0;
                while completed < located.done {
                    match self.timeline.complete_first(now) {
                        Some(e) => self.complete(e),
                        None => break,
                    }
                    completed += 1;
                }
                if completed == located.done {
                    self.timeline.observe(located, now);
                }
            }
            None => self.position_lost(now, pos),
        }
    }

    fn position_lost(&mut self, now: Instant, actual: MotorSteps) {
        self.emit(Event::Error(SessionError::PositionMismatch {
            expected: self.timeline.head_position(),
            actual,
        }));
        self.start_stop(now, StopKind::Pause(PauseReason::Error), false);
    }

    /// An entry finished: progress, vertex, stroke and marker events.
    pub(super) fn complete(&mut self, e: Entry) {
        let c = &mut self.progress;
        if c.busy_since.is_none() {
            c.busy_since = Some(e.start);
        }
        if !matches!(e.kind, EntryKind::Pen { report: false, .. }) {
            c.planned += e.duration();
        }
        c.last_end = e.end;
        match e.kind {
            EntryKind::Move {
                pen,
                tag,
                distance_mm,
                ..
            } => {
                if let Some(t) = self.pending_vertex
                    && t != tag
                {
                    self.emit(Event::VertexDone(t));
                }
                self.pending_vertex = Some(tag);
                let c = &mut self.progress;
                c.distance_mm += distance_mm;
                if pen == Pen::Down {
                    c.drawn_mm += distance_mm;
                    self.down_stroke = Some(tag.stroke);
                }
                let c = self.progress;
                let elapsed = c.busy_before + (e.end - c.busy_since.unwrap_or(e.start));
                self.emit(Event::Progress(Progress {
                    tag,
                    pen,
                    position: e.to,
                    distance_mm: c.distance_mm,
                    drawn_mm: c.drawn_mm,
                    elapsed,
                    planned: c.planned,
                }));
                let continues = self.timeline.get(0).is_some_and(
                    |n| matches!(n.kind, EntryKind::Move { tag: next, .. } if next == tag),
                );
                if self.timeline.get(0).is_some() && !continues {
                    self.pending_vertex = None;
                    self.emit(Event::VertexDone(tag));
                }
            }
            kind => {
                if let Some(t) = self.pending_vertex.take() {
                    self.emit(Event::VertexDone(t));
                }
                match kind {
                    EntryKind::Pen {
                        pen: Pen::Up,
                        report: true,
                    } => {
                        if let Some(stroke) = self.down_stroke.take() {
                            self.emit(Event::StrokeDone { stroke });
                        }
                    }
                    EntryKind::Marker(id) => self.emit(Event::Marker(id)),
                    _ => {}
                }
            }
        }
    }

    /// The machine stopped being busy (idle, paused): close the busy period.
    pub(super) fn end_busy(&mut self) {
        let c = &mut self.progress;
        if let Some(since) = c.busy_since.take() {
            c.busy_before += c.last_end - since;
        }
    }
}

/// The count in a `QU,6` answer: `6,<n>` (or a bare `<n>`).
fn fifo_waiting(text: &str) -> Option<u32> {
    let mut fields = text.split(',');
    let (first, second) = (fields.next()?, fields.next());
    if fields.next().is_some() {
        return None;
    }
    let n = match second {
        Some(n) if first.trim() == "6" => n,
        Some(_) => return None,
        None => first,
    };
    n.trim().parse().ok()
}
