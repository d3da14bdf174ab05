//! Sending: which command goes out next (control, polls, feed by time and FIFO room), and the
//! bookkeeping when it does; the passing of time (finished moves, idle, reply deadlines).

use crate::ebb::{Command, EncodeError};
use crate::plan::Pen;
use crate::time::Instant;

use super::feed::{self, EntryKind, FeedItem};
use super::{
    EntrySpec, Event, Pending, Phase, ProtocolLine, Purpose, QueryPurpose, Session, SessionError,
};

/// Where the next command comes from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Source {
    Version,
    Control,
    Button,
    Power,
    Position(QueryPurpose),
    /// A FIFO reading for a board running ahead of its clock.
    Fifo,
    /// The feed head; for a dwell, the piece length in ms.
    Feed(u32),
}

/// Events kept free for non-progress events when finished moves are reported.
pub(super) const EVENT_RESERVE: usize = 6;

impl Session {
    /// Writes the next command into `buf` and returns its length, or `None` when nothing is to
    /// be sent now. Call until it returns `None`; one command per call. `buf` should hold
    /// [`MAX_ENCODED_LEN`](crate::ebb::limits::MAX_ENCODED_LEN) bytes: a command that does not
    /// fit stays queued.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.advance(now);
        loop {
            let (source, command, entry) = self.choose(now)?;
            match command.encode_with(&self.encode, buf) {
                Ok(n) => {
                    self.commit(now, source, &command, entry);
                    return Some(n);
                }
                Err(EncodeError::BufferTooSmall { .. }) => return None,
                Err(error) => self.encode_failed(now, source, command.name(), error),
            }
        }
    }

    /// Keeps `now` monotonic.
    pub(super) fn tick(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    /// Whether one more command may be sent: 2.x one at a time (it reports errors only at the
    /// end of a USB packet, reference §1.3), 3.x pipelined.
    fn can_send(&self) -> bool {
        match self.line {
            ProtocolLine::V2 => self.pending.is_empty(),
            ProtocolLine::V3 => !self.pending.is_full(),
        }
    }

    fn choose(&self, now: Instant) -> Option<(Source, Command, Option<EntrySpec>)> {
        match self.phase {
            Phase::Failed => None,
            Phase::Handshake | Phase::Resync => (self.version_requests.due
                && self.pending.is_empty())
            .then_some((Source::Version, Command::Version, None)),
            Phase::Setup | Phase::Ready | Phase::Paused => {
                if !self.can_send() {
                    return None;
                }
                if let Some(q) = self.control.front() {
                    return Some((Source::Control, q.command.clone(), q.entry));
                }
                if self.stop.is_some() || self.phase == Phase::Setup {
                    return None;
                }
                let plotting = self.is_plotting();
                let polling_button = plotting || self.phase == Phase::Paused;
                if polling_button && !self.polls.button_in_flight && now >= self.polls.next_button {
                    let query = if self.polls.power_latch {
                        Command::QueryGeneral
                    } else {
                        Command::QueryButton
                    };
                    return Some((Source::Button, query, None));
                }
                if polling_button && !self.polls.power_in_flight && now >= self.polls.next_power {
                    return Some((Source::Power, Command::QueryCurrent, None));
                }
                if self.phase == Phase::Paused {
                    return None;
                }
                if !self.polls.position_in_flight {
                    if plotting && now >= self.polls.next_position {
                        let p = Source::Position(QueryPurpose::Poll);
                        return Some((p, Command::QuerySteps, None));
                    }
                    if self.polls.confirm_at.is_some_and(|t| now >= t) {
                        let p = Source::Position(QueryPurpose::Confirm);
                        return Some((p, Command::QuerySteps, None));
                    }
                }
                if self.fifo_reading_due(now) {
                    return Some((Source::Fifo, Command::QueryUtility(6), None));
                }
                let (piece, command, spec) = self.next_feed()?;
                self.feed_room(now, &spec)
                    .then_some((Source::Feed(piece), command, Some(spec)))
            }
        }
    }

    /// The command for the feed head, ignoring FIFO room and time: `None` for items that send
    /// nothing (markers, pauses) or must wait for the machine to be idle.
    fn next_feed(&self) -> Option<(u32, Command, EntrySpec)> {
        if self.timeline.is_full() {
            return None;
        }
        let tail = self.timeline.tail_position();
        let idle = self.timeline.is_empty();
        let spec = |kind, slots, ticks, to| EntrySpec {
            kind,
            slots,
            ticks,
            to,
        };
        match *self.feed.front()? {
            FeedItem::Move(m) => {
                let kind = EntryKind::Move {
                    pen: m.pen,
                    tag: m.tag,
                    distance_mm: m.distance_mm,
                    ramp: m.command.ramp(m.ticks),
                };
                Some((0, m.command.command(), spec(kind, 1, m.ticks, m.end)))
            }
            FeedItem::Pen(pen) => {
                // 2.x's ES does not abort servo moves: a pen-down queued behind a move would
                // still run after a pause stopped that move, marking the paper. Send it only
                // once the machine is at rest.
                if pen == Pen::Down && !self.version.is_v3() && !idle {
                    return None;
                }
                let (command, ticks) = feed::pen_command(&self.config.servo, pen);
                let kind = EntryKind::Pen { pen, report: true };
                Some((0, command, spec(kind, 1, ticks, tail)))
            }
            FeedItem::Dwell(d) => {
                let left = feed::dwell_ms(d).saturating_sub(self.dwell_sent_ms);
                let piece = left.min(feed::dwell_piece_ms(self.version));
                if piece == 0 {
                    return None;
                }
                let ticks = feed::delay_ticks(piece);
                let command = feed::dwell_command(piece);
                Some((piece, command, spec(EntryKind::Dwell, 1, ticks, tail)))
            }
            FeedItem::Motors(on) => {
                let queued = self.version.em_is_queued();
                // Before 2.8.0 EM acts at once and would zero the counters mid-move.
                if !queued && !idle {
                    return None;
                }
                let (command, ticks) = feed::motors_command(on, self.config.resolution.em_mode());
                let to = crate::kinematics::MotorSteps::ZERO;
                Some((
                    0,
                    command,
                    spec(EntryKind::Motors, u8::from(queued), ticks, to),
                ))
            }
            FeedItem::Marker(_) | FeedItem::Pause => None,
        }
    }

    /// Whether the firmware has room for `spec` at `now`: a free FIFO slot (counting every
    /// command not surely started) and less than `queue_ahead` of work queued.
    fn feed_room(&self, now: Instant, spec: &EntrySpec) -> bool {
        if spec.slots == 0 {
            return true;
        }
        let taken = self.timeline.fifo_occupancy(now);
        if taken + u32::from(spec.slots) > u32::from(self.fifo_depth) {
            return false;
        }
        // A board ahead of its clock: the estimated time queued means nothing, the free slots
        // (read from the board) are the limit.
        self.polls.fast_readings > 0 || self.timeline.tail_end() < now + self.config.queue_ahead
    }

    /// Whether to read the FIFO now: a 3.x board recently found ahead of its clock, work
    /// queued, no reading in flight, and the estimate holds the feed back (or there is nothing
    /// more to feed, and the end of the plot waits for the estimate).
    fn fifo_reading_due(&self, now: Instant) -> bool {
        if self.line != ProtocolLine::V3
            || self.polls.fifo_in_flight
            || self.timeline.is_empty()
            || self.polls.fast_readings == 0
        {
            return false;
        }
        if self.feed.is_empty() {
            return true;
        }
        match self.next_feed() {
            Some((_, _, spec)) => !self.feed_room(now, &spec),
            None => true,
        }
    }

    /// When the feed head may go out if nothing else happens first (`None`: it waits for a
    /// reply, an idle machine or a call).
    pub(super) fn feed_wakeup(&self) -> Option<Instant> {
        let now = self.now;
        let (_, _, spec) = self.next_feed()?;
        if !self.can_send() || spec.slots == 0 {
            return None;
        }
        let mut at = now;
        let taken = self.timeline.fifo_occupancy(now);
        if taken + u32::from(spec.slots) > u32::from(self.fifo_depth) {
            at = self.timeline.next_slot_free(now)?;
        }
        let tail = self.timeline.tail_end();
        let ahead = self.config.queue_ahead;
        if self.polls.fast_readings == 0 && tail >= now + ahead {
            let t = crate::time::Instant::from_micros(tail.as_micros() - ahead.as_micros());
            if t > at {
                at = t;
            }
        }
        (at > now).then_some(at)
    }

    /// Bookkeeping for a command just written.
    fn commit(
        &mut self,
        now: Instant,
        source: Source,
        command: &Command,
        entry: Option<EntrySpec>,
    ) {
        let purpose = match source {
            Source::Version => {
                self.version_requests.due = false;
                self.version_requests.sent = self.version_requests.sent.saturating_add(1);
                Purpose::Version
            }
            Source::Control => {
                let purpose = self
                    .control
                    .pop_front()
                    .map_or(Purpose::Feed, |q| q.purpose);
                if let (Purpose::Stop(super::stop::StopStep::EStop), Some(stop)) =
                    (purpose, self.stop.as_mut())
                {
                    stop.es_sent = now;
                    stop.cut = self.timeline.len();
                }
                purpose
            }
            Source::Button => {
                self.polls.button_in_flight = true;
                self.polls.next_button = now + self.config.button_poll;
                Purpose::Button
            }
            Source::Power => {
                self.polls.power_in_flight = true;
                self.polls.next_power = now + self.config.power_poll;
                Purpose::Power
            }
            Source::Position(q) => {
                self.polls.position_in_flight = true;
                match q {
                    QueryPurpose::Poll => {
                        self.polls.next_position = now + self.config.position_poll;
                    }
                    QueryPurpose::Confirm => self.polls.confirm_at = None,
                }
                Purpose::Position(q)
            }
            Source::Fifo => {
                self.polls.fifo_in_flight = true;
                self.timeline.mark_last();
                Purpose::Fifo
            }
            Source::Feed(piece) => {
                self.consume_feed_head(now, piece);
                Purpose::Feed
            }
        };
        // A queued or idle-waiting command may legitimately wait for what is queued before it;
        // replies come in order, so no deadline is earlier than the one before.
        let waits = entry.is_some_and(|e| e.slots > 0)
            || command.waits_for_idle()
            || purpose == Purpose::Version;
        let base = if waits && self.timeline.tail_end() > now {
            self.timeline.tail_end()
        } else {
            now
        };
        let mut deadline = base + self.config.reply_timeout;
        if let Some(last) = self.pending.back()
            && last.deadline > deadline
        {
            deadline = last.deadline;
        }
        if let Some(e) = entry {
            // `choose` checked the timeline has room.
            let _ = self.timeline.push(now, e.kind, e.slots, e.ticks, e.to);
        }
        let pending = Pending {
            kind: command.reply_kind(),
            purpose,
            fifo: entry.is_some_and(|e| e.slots > 0),
            sent: now,
            deadline,
        };
        // `can_send` checked there is room.
        let _ = self.pending.push_back(pending);
        if self.pending.len() == 1 {
            self.begin_front(now);
        }
    }

    /// Takes the sent command off the feed head (a dwell piece at a time).
    fn consume_feed_head(&mut self, now: Instant, piece: u32) {
        if !self.busy {
            self.busy = true;
            self.polls.next_position = now + self.config.position_poll;
            self.polls.next_button = now;
        }
        let Some(&item) = self.feed.front() else {
            return;
        };
        match item {
            FeedItem::Dwell(d) => {
                self.dwell_sent_ms = self.dwell_sent_ms.saturating_add(piece);
                if self.dwell_sent_ms >= feed::dwell_ms(d) {
                    self.dwell_sent_ms = 0;
                    self.feed.pop_front();
                }
            }
            FeedItem::Move(m) => {
                self.last_move_fed = Some((m.tag, m.pen));
                self.feed.pop_front();
            }
            FeedItem::Pen(p) => {
                self.pen_fed = p;
                self.feed.pop_front();
            }
            _ => {
                self.feed.pop_front();
            }
        }
    }

    /// A command could not be encoded: a fed item beyond this firmware's limits (push
    /// validates moves, so this is a bug or an unvalidated path) or a set-up value.
    fn encode_failed(
        &mut self,
        now: Instant,
        source: Source,
        command: &'static str,
        error: EncodeError,
    ) {
        let error = SessionError::Encode { command, error };
        match source {
            Source::Feed(_) => {
                self.dwell_sent_ms = 0;
                self.feed.pop_front();
                self.emit(Event::Error(error));
                self.start_stop(
                    now,
                    super::stop::StopKind::Pause(super::PauseReason::Error),
                    false,
                );
            }
            Source::Control if self.phase == Phase::Setup => self.fail(error),
            _ => {
                // Stop commands, polls and V always encode; drop it rather than loop.
                self.control.pop_front();
                self.emit(Event::Error(error));
            }
        }
    }

    /// Starts the parser on the reply now due; replies that have no line in the current mode
    /// complete at once.
    pub(super) fn begin_front(&mut self, now: Instant) {
        while let Some(p) = self.pending.front().copied() {
            if p.purpose == Purpose::Version {
                return;
            }
            let Some(result) = self.parser.begin(p.kind) else {
                return;
            };
            self.pending.pop_front();
            self.on_result(now, p, result, b"");
        }
    }

    /// Handles the passing of time up to `now`: finished entries become events, markers and
    /// zero dwells at the feed head are taken, a planned pause starts, idle is detected.
    pub(super) fn advance(&mut self, now: Instant) {
        self.tick(now);
        if self.stop.is_none() && self.phase != Phase::Resync {
            while self.event_room() > EVENT_RESERVE {
                match self.timeline.pop_finished(now) {
                    Some(e) => self.complete(e),
                    None => break,
                }
            }
        }
        match self.phase {
            Phase::Setup => self.setup_advance(now),
            Phase::Ready if self.stop.is_none() => self.ready_advance(now),
            _ => {}
        }
    }

    fn ready_advance(&mut self, now: Instant) {
        loop {
            match self.feed.front().copied() {
                Some(FeedItem::Marker(id)) if !self.timeline.is_full() => {
                    let to = self.timeline.tail_position();
                    let _ = self.timeline.push(now, EntryKind::Marker(id), 0, 0, to);
                    self.feed.pop_front();
                    self.busy = true;
                }
                Some(FeedItem::Dwell(d)) if feed::dwell_ms(d) <= self.dwell_sent_ms => {
                    self.dwell_sent_ms = 0;
                    self.feed.pop_front();
                }
                Some(FeedItem::Pause) if self.timeline.is_empty() => {
                    self.feed.pop_front();
                    self.start_stop(
                        now,
                        super::stop::StopKind::Pause(super::PauseReason::Planned),
                        true,
                    );
                    return;
                }
                _ => break,
            }
        }
        // Everything fed has run: confirm the final position before reporting idle.
        if self.busy
            && self.feed.is_empty()
            && self.timeline.is_empty()
            && self.polls.confirm_at.is_none()
            && !self.confirm_in_flight()
        {
            self.polls.confirm_at = Some(now);
            self.polls.confirm_attempts = 0;
        }
    }

    fn confirm_in_flight(&self) -> bool {
        self.pending
            .iter()
            .any(|p| p.purpose == Purpose::Position(QueryPurpose::Confirm))
    }

    /// A reply deadline passed.
    pub(super) fn check_deadline(&mut self, now: Instant) {
        let Some(p) = self.pending.front().copied() else {
            return;
        };
        if now < p.deadline {
            return;
        }
        let waited = now - p.sent;
        match self.phase {
            Phase::Handshake => self.handshake_timeout(now, waited),
            Phase::Resync => self.resync_timeout(waited),
            Phase::Setup => self.fail(SessionError::Timeout {
                command: p.command(),
                waited,
            }),
            Phase::Ready | Phase::Paused => {
                self.emit(Event::Error(SessionError::Timeout {
                    command: p.command(),
                    waited,
                }));
                self.start_resync(now);
            }
            Phase::Failed => {}
        }
    }
}
