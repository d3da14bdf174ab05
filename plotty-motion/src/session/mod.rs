//! The EiBotBoard protocol engine: sans-IO, fixed memory, time always an argument.
//!
//! A [`Session`] owns everything between "a port is open" and "the plot is drawn": the version
//! handshake and the choice of protocol behaviour, the servo and motor set-up, feeding the
//! firmware's motion FIFO by time without ever blocking its parser, polling the button and the
//! position, pause, resume and abort, progress events, timeouts and resynchronisation after
//! garbage. It reads no clock and touches no port: bytes come in through
//! [`Session::handle_rx`], go out through [`Session::poll_transmit`], and time comes with
//! every call (quinn-proto's `Connection` is the model).
//!
//! See [`Session`] for the call order, [`FeedItem`] for what can be plotted, [`Event`] for what
//! comes back, and `driver::Driver` for a ready-made blocking loop.

mod config;
mod error;
mod event;
mod feed;
mod receive;
mod setup;
mod stop;
mod timeline;
mod transmit;

pub use config::{ConfigError, ProtocolLine, ServoSetup, SessionConfig};
pub use error::{FeedError, REPLY_EXCERPT_CAPACITY, ReplyExcerpt, SessionError, StateError};
pub use event::{Event, PauseReason, Progress, ResumePoint};
pub use feed::{DWELL_PIECE_MS_V2, DWELL_PIECE_MS_V3, FeedItem, Motion, MotionCommand};

use heapless::Deque;

use crate::ebb::limits::REPLY_LINE_CAPACITY;
use crate::ebb::{
    Command, EncodeOptions, FirmwareVersion, LineBuffer, ReplyKind, ReplyMode, ReplyParser,
};
use crate::kinematics::MotorSteps;
use crate::plan::{Pen, Tag};
use crate::time::{Duration, Instant};

use setup::SetupStep;
use stop::Stop;
use timeline::Timeline;

/// Items the feed queue holds. The firmware's FIFO is the real buffer; this only decouples the
/// caller's pushes from the session's sends.
pub const FEED_CAPACITY: usize = 8;
/// Replies that can be outstanding at once (a full 3.x FIFO plus polls and control commands).
pub const PENDING_CAPACITY: usize = 40;
/// Events buffered between [`Session::poll_event`] calls. When it fills up the session holds
/// back progress reports (the machine is not affected); poll events after every call.
pub const EVENT_CAPACITY: usize = 16;
/// Oldest firmware the session drives: `QS`/`CS` step counters arrived in 2.4.3.
pub const MIN_FIRMWARE: FirmwareVersion = FirmwareVersion::new(2, 4, 3);

/// Control commands queued at once (set-up steps, the stop sequence).
const CONTROL_CAPACITY: usize = 8;
/// Version requests before the handshake or a resynchronisation gives up.
const VERSION_ATTEMPTS: u8 = 3;

/// `V` requests of a resynchronisation before the link counts as dead: on a damaged link the
/// request or its reply can be hit more than once in a row, and each attempt only costs time.
const RESYNC_ATTEMPTS: u8 = 6;
/// FIFO readings, after the last observation that found the board ahead of its estimated
/// timeline (by more than `timeline::AHEAD_MARGIN`), that the session keeps taking whenever
/// the estimate holds the feed back, while none of them finds it ahead again. A simulator
/// finds itself ahead every few readings (each time it has run its FIFO dry); a real board,
/// after a host hiccup made it look ahead once, gets this many readings and no more.
const FAST_READINGS: u8 = 32;

/// `QS` checks of the final position before a mismatch is reported.
const CONFIRM_ATTEMPTS: u8 = 10;
/// Interval between those checks.
const CONFIRM_INTERVAL: Duration = Duration::from_millis(20);

/// The EBB protocol engine. See the [module documentation](self).
///
/// # Call order
///
/// ```text
/// let mut s = Session::new(config, now)?;
/// loop {
///     // 1. Bytes from the port, as they arrive (any split):
///     s.handle_rx(now, &received);
///     // 2. When poll_timeout's instant has passed:
///     s.handle_timeout(now);
///     // 3. Send everything it has, one command per call:
///     while let Some(n) = s.poll_transmit(now, &mut buf) { port.write_all(&buf[..n]) }
///     // 4. Drain the events:
///     while let Some(e) = s.poll_event() { … }
///     // 5. Feed while it accepts (after Event::Ready):
///     while s.can_accept() { s.push(next_item)? }
///     // 6. Sleep until bytes arrive or until s.poll_timeout().
/// }
/// ```
///
/// `buf` must hold [`MAX_ENCODED_LEN`](crate::ebb::limits::MAX_ENCODED_LEN) bytes. Every call
/// takes the current time; time must not go backwards. After a push or a control call
/// ([`pause`](Self::pause), [`resume`](Self::resume), [`abort`](Self::abort)) call
/// `poll_transmit` again: the session never sends anything on its own.
///
/// # What it does
///
/// 1. **Handshake**: `V`; a reply not starting with `EBB` is [`SessionError::NotAnEbb`]. The
///    version chooses 2.x or 3.x behaviour ([`ProtocolLine`]; the config may force 2.x).
/// 2. **Set-up**: acknowledgements on (`CU,1,1`), "future" replies on 3.0.2+ (`CU,10,1`), `ES`
///    (stops anything a previous host left queued), servo positions and rates (`SC,4/5/11/12`,
///    `SC,8`), `SR` (≥ 2.6.0), a deep FIFO on 3.x (`CU,4`), optionally the motor state
///    (`QE`, or the `PI` reads of reference §5.4), pen up (`SP,1,<ms>,<pin>`), motors on
///    (`EM`, which zeroes the step counters and so defines home) unless the position is kept,
///    then `QS` once everything has executed: [`Event::Ready`].
/// 3. **Feeding**: pushed [`FeedItem`]s are sent when the firmware has room, by time: on 3.x
///    at least `queue_ahead` of motion queued (limited by the FIFO depth), on 2.x one command
///    queued behind the one executing. A FIFO slot counts as taken until the session's
///    estimate says its command has surely started, so the firmware's parser never blocks (a
///    blocked parser answers nothing, not even `ES`). A 3.x board that an observation finds
///    more than 50 ms ahead of the estimate (a simulator running faster than real time) is
///    fed by its real FIFO state instead: whenever the estimate holds the feed back, `QU,6`
///    reads how many commands still wait in the FIFO; every command before them has started,
///    which frees their slots and re-anchors the estimate. A board on time never triggers
///    it, so a real board sees the same commands as without it.
/// 4. **Polls**: `QB` every `button_poll` while plotting or paused ([`Event::ButtonPressed`]),
///    `QS` every `position_poll` while plotting ([`Event::Position`]); `QS` corrects the
///    timeline estimate and checks the position.
/// 5. **Progress**: [`Event::Progress`] as each move's estimated end passes, then
///    [`Event::VertexDone`], [`Event::StrokeDone`], [`Event::Marker`], [`Event::Idle`].
/// 6. **Pause / abort**: `ES` (drops the FIFO), `SP,1`, `QS`, (`QU,200` on 3.x): the motors
///    stop and the pen starts rising within one round trip of the call (two on 2.x, which
///    takes one command at a time). [`Event::Paused`] carries the exact position and
///    the first move not completed. See [`ResumePoint`] for how to continue.
/// 7. **Errors**: a missing reply, a firmware error or unreadable bytes are an
///    [`Event::Error`]; the session stops feeding, resynchronises if needed and stops the
///    machine like a pause ([`PauseReason::Error`]).
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    phase: Phase,
    /// Latest time seen (calls may not go backwards; this keeps it monotonic).
    now: Instant,
    /// Firmware version, once known.
    version: FirmwareVersion,
    line: ProtocolLine,
    encode: EncodeOptions,
    /// FIFO depth in force.
    fifo_depth: u8,
    lines: LineBuffer<REPLY_LINE_CAPACITY>,
    parser: ReplyParser,
    pending: Deque<Pending, PENDING_CAPACITY>,
    control: Deque<Queued, CONTROL_CAPACITY>,
    feed: Deque<FeedItem, FEED_CAPACITY>,
    /// Milliseconds of the dwell at the head of the feed already sent.
    dwell_sent_ms: u32,
    timeline: Timeline,
    events: Deque<Event, EVENT_CAPACITY>,
    /// Pen state after everything sent.
    pen_fed: Pen,
    /// Tag and pen of the last move sent.
    last_move_fed: Option<(Tag, Pen)>,
    polls: Polls,
    /// A `V` request for the handshake or a resynchronisation is due / was sent this many times.
    version_requests: VersionRequests,
    setup: setup::SetupState,
    stop: Option<Stop>,
    /// Pause or abort to run once a resynchronisation succeeds.
    after_resync: Option<stop::StopKind>,
    /// Phase to return to after a resynchronisation.
    resync_from: Phase,
    /// A planned pause raised the pen: lower it on resume.
    relower_on_resume: bool,
    progress: Counters,
    /// Vertex of the last completed move, until the entry after it shows it was the last.
    pending_vertex: Option<Tag>,
    /// Stroke of the last completed pen-down move, until a pen raise ends it.
    down_stroke: Option<u32>,
    /// Something was fed since the last [`Event::Idle`].
    busy: bool,
    /// Progress events dropped because nobody polled events.
    dropped_events: u32,
}

/// Where the session is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// Waiting for the `V` reply.
    Handshake,
    /// Running the set-up commands.
    Setup,
    /// Set up; feeding (or stopping, when `stop` is set).
    Ready,
    /// Stopped after a pause, waiting for `resume`.
    Paused,
    /// Looking for the reply to a `V` to get back in step after an error.
    Resync,
    /// Gave up; create a new session.
    Failed,
}

/// A command sent whose reply is due, in order.
#[derive(Clone, Copy, Debug)]
struct Pending {
    kind: ReplyKind,
    purpose: Purpose,
    /// It took a FIFO slot: its acknowledgement acknowledges the oldest timeline entry.
    fifo: bool,
    sent: Instant,
    deadline: Instant,
}

impl Pending {
    /// The command's name, for errors.
    fn command(&self) -> &'static str {
        self.kind.name()
    }
}

/// Why a command was sent, which decides what its reply does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Purpose {
    /// `V` of the handshake or a resynchronisation (handled line by line, not by the parser).
    Version,
    Setup(SetupStep),
    Feed,
    Button,
    Power,
    Position(QueryPurpose),
    /// `QU,6`: the commands waiting in the FIFO.
    Fifo,
    Stop(stop::StopStep),
}

/// Why a `QS` was sent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum QueryPurpose {
    /// Periodic, while plotting.
    Poll,
    /// Everything executed: confirm the final position before [`Event::Idle`].
    Confirm,
}

/// A control command waiting to be sent, with its timeline record if it is queued.
#[derive(Clone, Debug)]
struct Queued {
    command: Command,
    purpose: Purpose,
    entry: Option<EntrySpec>,
}

/// What a queued command adds to the timeline.
#[derive(Clone, Copy, Debug)]
struct EntrySpec {
    kind: feed::EntryKind,
    slots: u8,
    ticks: u32,
    to: MotorSteps,
}

/// Poll schedule.
#[derive(Clone, Copy, Debug)]
struct Polls {
    next_button: Instant,
    next_position: Instant,
    next_power: Instant,
    button_in_flight: bool,
    position_in_flight: bool,
    power_in_flight: bool,
    /// The last supply reading was low: read again at once before believing it (a reply
    /// damaged on the way must not pause a plot).
    power_suspect: bool,
    /// The firmware latches supply drops (`CU,60` set): the button poll reads `QG`, which
    /// reports the button and the latch together.
    power_latch: bool,
    /// Final-position check before `Idle`: next attempt time and attempts made.
    confirm_at: Option<Instant>,
    confirm_attempts: u8,
    /// A FIFO reading (`QU,6`) is in flight (sent after the timeline's marked entry).
    fifo_in_flight: bool,
    /// FIFO readings left before the board no longer counts as running ahead of its clock
    /// (see [`FAST_READINGS`]); 0: it does not.
    fast_readings: u8,
}

/// `V` requests of the handshake or a resynchronisation.
#[derive(Clone, Debug, Default)]
struct VersionRequests {
    /// One is due to be sent.
    due: bool,
    sent: u8,
    /// First line that was not a version line (for the "not an EBB" error).
    garbage: Option<ReplyExcerpt>,
}

/// Progress counters.
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    distance_mm: f64,
    drawn_mm: f64,
    planned: Duration,
    busy_before: Duration,
    busy_since: Option<Instant>,
    last_end: Instant,
}

impl Session {
    /// A session that starts the handshake at `now` (the port has just been opened).
    ///
    /// # Errors
    /// The configuration is invalid ([`SessionConfig::validate`]).
    pub fn new(config: SessionConfig, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            phase: Phase::Handshake,
            now,
            version: MIN_FIRMWARE,
            line: ProtocolLine::V2,
            encode: EncodeOptions::new(MIN_FIRMWARE),
            fifo_depth: 1,
            lines: LineBuffer::new(),
            parser: ReplyParser::new(ReplyMode::Legacy),
            pending: Deque::new(),
            control: Deque::new(),
            feed: Deque::new(),
            dwell_sent_ms: 0,
            timeline: Timeline::new(now, MotorSteps::ZERO),
            events: Deque::new(),
            pen_fed: Pen::Up,
            last_move_fed: None,
            polls: Polls {
                next_button: now,
                next_position: now,
                next_power: now,
                button_in_flight: false,
                position_in_flight: false,
                power_in_flight: false,
                power_suspect: false,
                power_latch: false,
                confirm_at: None,
                confirm_attempts: 0,
                fifo_in_flight: false,
                fast_readings: 0,
            },
            version_requests: VersionRequests {
                due: true,
                ..VersionRequests::default()
            },
            setup: setup::SetupState::default(),
            stop: None,
            after_resync: None,
            resync_from: Phase::Ready,
            relower_on_resume: false,
            progress: Counters {
                last_end: now,
                ..Counters::default()
            },
            pending_vertex: None,
            down_stroke: None,
            busy: false,
            dropped_events: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The board's firmware version, once the handshake succeeded.
    pub fn version(&self) -> Option<FirmwareVersion> {
        self.setup.connected.then_some(self.version)
    }

    /// The protocol behaviour in use (meaningful once connected).
    pub fn line(&self) -> ProtocolLine {
        self.line
    }

    /// The motion FIFO depth in force.
    pub fn fifo_depth(&self) -> u8 {
        self.fifo_depth
    }

    /// Set up and accepting items (possibly plotting).
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready && self.stop.is_none()
    }

    /// Paused (after [`Event::Paused`]), waiting for [`resume`](Self::resume).
    pub fn is_paused(&self) -> bool {
        self.phase == Phase::Paused && self.stop.is_none()
    }

    /// Gave up: the board does not answer or is not an EBB. Create a new session to retry.
    pub fn is_failed(&self) -> bool {
        self.phase == Phase::Failed
    }

    /// Ready with nothing fed still queued or executing.
    pub fn is_idle(&self) -> bool {
        self.is_ready() && self.feed.is_empty() && self.timeline.is_empty()
    }

    /// Everything sent to the board has executed, as far as the session can tell (its
    /// timeline is empty): after [`Event::Paused`] or [`Event::Aborted`], the pen raise has had
    /// its time, so the pen is up. Those events come once the stop's commands are answered,
    /// about 130 ms before that.
    pub fn is_settled(&self) -> bool {
        self.timeline.is_empty()
    }

    /// Motor position after every command the session knows to have executed.
    pub fn position(&self) -> MotorSteps {
        self.timeline.head_position()
    }

    /// Motor position once everything sent so far has executed.
    pub fn queued_position(&self) -> MotorSteps {
        self.timeline.tail_position()
    }

    /// Items waiting in the feed queue (not yet sent).
    pub fn feed_len(&self) -> usize {
        self.feed.len()
    }

    /// Commands sent whose replies are still due.
    pub fn replies_due(&self) -> usize {
        self.pending.len()
    }

    /// Estimated firmware FIFO slots taken at `now` (commands sent and not surely started).
    pub fn fifo_occupancy(&self, now: Instant) -> u32 {
        self.timeline.fifo_occupancy(now)
    }

    /// Estimated time until everything sent so far has executed.
    pub fn queued_ahead(&self, now: Instant) -> Duration {
        self.timeline.tail_end() - now
    }

    /// Progress events dropped because the event queue was full.
    pub fn dropped_events(&self) -> u32 {
        self.dropped_events
    }

    /// Whether [`push`](Self::push) would accept an item now.
    pub fn can_accept(&self) -> bool {
        self.is_ready() && !self.feed.is_full()
    }

    /// Queues an item of the plot. Items go out in order as the firmware has room.
    ///
    /// # Errors
    /// [`FeedError::Full`] (poll and retry), [`FeedError::NotReady`] before [`Event::Ready`] or
    /// after a failure, [`FeedError::Paused`] while paused or stopping, [`FeedError::Invalid`]
    /// for a move this firmware would reject.
    pub fn push(&mut self, item: FeedItem) -> Result<(), FeedError> {
        match self.phase {
            Phase::Ready if self.stop.is_none() => {}
            Phase::Ready | Phase::Paused | Phase::Resync => return Err(FeedError::Paused),
            Phase::Handshake | Phase::Setup | Phase::Failed => return Err(FeedError::NotReady),
        }
        if self.feed.is_full() {
            return Err(FeedError::Full);
        }
        if !self.is_plotting() {
            // Plotting starts: the first position poll is due one interval from now.
            self.polls.next_position = self.now + self.config.position_poll;
        }
        if let FeedItem::Move(m) = &item {
            m.command
                .command()
                .validate(self.version)
                .map_err(FeedError::Invalid)?;
        }
        self.feed.push_back(item).map_err(|_| FeedError::Full)
    }

    /// Zeroes the progress counters (distance, elapsed and planned time), e.g. at the start of
    /// a job.
    pub fn reset_progress(&mut self, now: Instant) {
        self.progress = Counters {
            last_end: now,
            ..Counters::default()
        };
    }

    /// Whether an event is waiting (drivers must not block while one is).
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// The next event, if any. Call until `None` after every `handle_*`/`poll_transmit` call.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The instant at which [`handle_timeout`](Self::handle_timeout) must be called (a reply
    /// deadline, a move's end, a poll, the next moment the FIFO has room), or `None` if the
    /// session waits only for bytes or calls.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Failed {
            return None;
        }
        let mut next: Option<Instant> = None;
        let mut at = |t: Option<Instant>| {
            if let Some(t) = t
                && next.is_none_or(|n| t < n)
            {
                next = Some(t);
            }
        };
        at(self.pending.front().map(|p| p.deadline));
        // Timers already due are not reported: if what they wait for could go out,
        // `poll_transmit` has sent it; if not, it waits for a reply (bytes wake the caller).
        // Reporting them would make the caller spin.
        let now = self.now;
        let future = |t: Option<Instant>| t.filter(|&t| t > now);
        if self.stop.is_none() && self.phase != Phase::Resync {
            let completion = self.timeline.next_completion();
            // A due completion is taken by the next call once events were drained; while the
            // event queue is full it waits for that.
            if self.event_room() > transmit::EVENT_RESERVE {
                at(completion);
            } else {
                at(future(completion));
            }
        }
        if self.phase == Phase::Ready && self.stop.is_none() {
            let plotting = self.is_plotting();
            if plotting && !self.polls.button_in_flight {
                at(future(Some(self.polls.next_button)));
            }
            if plotting && !self.polls.position_in_flight {
                at(future(Some(self.polls.next_position)));
            }
            if plotting && !self.polls.power_in_flight {
                at(future(Some(self.polls.next_power)));
            }
            at(future(self.polls.confirm_at));
            at(self.feed_wakeup());
        }
        if self.phase == Phase::Paused && !self.polls.button_in_flight {
            at(future(Some(self.polls.next_button)));
        }
        if self.phase == Phase::Paused && !self.polls.power_in_flight {
            at(future(Some(self.polls.next_power)));
        }
        next
    }

    /// Handles the passing of time: reply deadlines, finished moves, due polls. Call when
    /// [`poll_timeout`](Self::poll_timeout)'s instant has passed (calling more often is
    /// harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.check_deadline(now);
        self.advance(now);
    }

    /// Pauses now: stops feeding, stops the motors (`ES`, which drops everything queued), reads
    /// the position, raises the pen, then reports [`Event::Paused`] with the resume point.
    ///
    /// # Errors
    /// Not set up, already paused or stopping, or failed.
    pub fn pause(&mut self, now: Instant) -> Result<(), StateError> {
        if !self.is_ready() {
            return Err(self.state_error("pause"));
        }
        self.start_stop(now, stop::StopKind::Pause(PauseReason::Requested), false);
        Ok(())
    }

    /// Resumes after [`Event::Paused`]. After a planned pause feeding continues (the pen is
    /// lowered again first if the pause raised it); after any other pause the feed is empty and
    /// the caller re-plans from the [`ResumePoint`].
    ///
    /// # Errors
    /// Not paused.
    pub fn resume(&mut self, now: Instant) -> Result<(), StateError> {
        if !self.is_paused() {
            return Err(self.state_error("resume"));
        }
        self.phase = Phase::Ready;
        if core::mem::take(&mut self.relower_on_resume) {
            // A planned pause popped its item, so there is room for one.
            let _ = self.feed.push_front(FeedItem::Pen(Pen::Down));
        }
        self.polls.next_position = now + self.config.position_poll;
        Ok(())
    }

    /// Aborts: stops the motors (`ES`), raises the pen, drops everything queued, then reports
    /// [`Event::Aborted`]. The session stays usable (ready, idle).
    ///
    /// # Errors
    /// Before set-up is done, or failed.
    pub fn abort(&mut self, now: Instant) -> Result<(), StateError> {
        match self.phase {
            Phase::Ready | Phase::Paused => {
                self.start_stop(now, stop::StopKind::Abort, false);
                Ok(())
            }
            Phase::Resync => {
                self.after_resync = Some(stop::StopKind::Abort);
                Ok(())
            }
            _ => Err(self.state_error("abort")),
        }
    }

    fn state_error(&self, operation: &'static str) -> StateError {
        let state = match self.phase {
            Phase::Handshake => "connecting",
            Phase::Setup => "setting up",
            Phase::Ready if self.stop.is_some() => "stopping",
            Phase::Ready => "ready",
            Phase::Paused if self.stop.is_some() => "stopping",
            Phase::Paused => "paused",
            Phase::Resync => "resynchronising",
            Phase::Failed => "failed",
        };
        StateError { operation, state }
    }

    /// Something is fed and not yet executed.
    /// A `QC` supply reading: `Some(low)` once it is believed (reported), `None` for a first
    /// low reading, which is read again at once (two in a row must agree, as for positions).
    fn power_reading(&mut self, now: Instant, voltage: u16) -> Option<bool> {
        let low = self.config.min_voltage.is_some_and(|min| voltage < min);
        if low && !self.polls.power_suspect {
            self.polls.power_suspect = true;
            self.polls.next_power = now;
            return None;
        }
        self.polls.power_suspect = false;
        self.emit(Event::Power { voltage, low });
        Some(low)
    }

    /// Whether the set-up asks the firmware to latch supply drops (3.x with `min_voltage`).
    fn watches_power(&self) -> bool {
        self.line == ProtocolLine::V3 && self.config.min_voltage.is_some()
    }

    fn is_plotting(&self) -> bool {
        !self.feed.is_empty() || !self.timeline.is_empty()
    }

    /// Reports an event. When the queue is full, progress-type events are dropped (counted)
    /// to make room for the others.
    fn emit(&mut self, event: Event) {
        log_event(&event);
        if !self.events.is_full() {
            let _ = self.events.push_back(event);
            return;
        }
        if is_droppable(&event) {
            self.dropped_events = self.dropped_events.saturating_add(1);
            return;
        }
        // Drop the oldest droppable event, keeping the order of the rest.
        let n = self.events.len();
        let mut dropped = false;
        for _ in 0..n {
            if let Some(e) = self.events.pop_front() {
                if !dropped && is_droppable(&e) {
                    dropped = true;
                    continue;
                }
                let _ = self.events.push_back(e);
            }
        }
        if !dropped {
            let _ = self.events.pop_front();
        }
        self.dropped_events = self.dropped_events.saturating_add(1);
        let _ = self.events.push_back(event);
    }

    /// Room left for events before progress reports are held back.
    fn event_room(&self) -> usize {
        EVENT_CAPACITY - self.events.len()
    }

    /// Reports an error and fails for good.
    fn fail(&mut self, error: SessionError) {
        self.emit(Event::Error(error));
        self.phase = Phase::Failed;
        self.pending.clear();
        self.control.clear();
        self.feed.clear();
        self.stop = None;
    }
}

fn is_droppable(event: &Event) -> bool {
    matches!(event, Event::Progress(_) | Event::Position { .. })
}

/// Reports `event` through `log` or `defmt` when the crate is built with that feature: errors
/// as warnings, the frequent progress and position reports at trace level, the rest at debug.
#[allow(clippy::missing_const_for_fn)] // not const with either feature on
fn log_event(event: &Event) {
    #[cfg(feature = "log")]
    match event {
        Event::Error(e) => log::warn!("EBB session: {e}"),
        Event::Progress(_) | Event::Position { .. } | Event::VertexDone(_) => {
            log::trace!("EBB session: {event:?}");
        }
        _ => log::debug!("EBB session: {event:?}"),
    }
    #[cfg(feature = "defmt")]
    match event {
        Event::Error(_) => defmt::warn!("EBB session: {}", event),
        Event::Progress(_) | Event::Position { .. } | Event::VertexDone(_) => {
            defmt::trace!("EBB session: {}", event);
        }
        _ => defmt::debug!("EBB session: {}", event),
    }
    #[cfg(not(any(feature = "log", feature = "defmt")))]
    let _ = event;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_session_wants_to_send_v() {
        let mut s = Session::new(SessionConfig::default(), Instant::ZERO).unwrap();
        let mut buf = [0u8; 256];
        let n = s.poll_transmit(Instant::ZERO, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"V\r");
        assert_eq!(s.poll_transmit(Instant::ZERO, &mut buf), None);
        assert_eq!(
            s.poll_timeout(),
            Some(Instant::ZERO + SessionConfig::default().reply_timeout)
        );
        assert_eq!(s.push(FeedItem::Marker(1)), Err(FeedError::NotReady));
        assert!(s.pause(Instant::ZERO).is_err());
    }

    #[test]
    fn events_queue_drops_progress_first() {
        let mut s = Session::new(SessionConfig::default(), Instant::ZERO).unwrap();
        for i in 0..EVENT_CAPACITY {
            s.emit(if i == 0 {
                Event::ButtonPressed
            } else {
                Event::Position {
                    steps: MotorSteps::ZERO,
                    at: Instant::ZERO,
                }
            });
        }
        s.emit(Event::Marker(7));
        s.emit(Event::Position {
            steps: MotorSteps::ZERO,
            at: Instant::ZERO,
        });
        assert_eq!(s.dropped_events(), 2);
        assert_eq!(s.poll_event(), Some(Event::ButtonPressed));
        let rest: Vec<_> = core::iter::from_fn(|| s.poll_event()).collect();
        assert_eq!(rest.last(), Some(&Event::Marker(7)));
        assert_eq!(rest.len(), EVENT_CAPACITY - 1);
    }

    #[test]
    fn session_fits_its_share_of_the_core_ram_budget() {
        // DESIGN: driver + pipeline + a 64-block window ≤ 20 KiB (`tests/budget.rs`); the
        // window and the pipeline take about 10 KiB, so the session must stay under 9 KiB.
        let size = core::mem::size_of::<Session>();
        std::eprintln!("Session: {size} bytes");
        assert!(size <= 9 * 1024, "{size}");
    }
}
