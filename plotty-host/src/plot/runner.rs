//! The plot runner: one blocking loop that drives a device through the protocol [`Session`]
//! from a [`Program`], used by `plotty plot` and by the daemon (on a thread of its own).
//!
//! ```text
//! program ─feed (planner + step generator, per layer)─▶ Session ⇄ Link (serial port / simulator)
//!                                                          │
//!                controls (pause, resume, abort) ─────────▶│──▶ events (progress, checkpoints,
//!                                                                pen changes, pauses, the end)
//! ```
//!
//! - **Controls** come from an `mpsc` receiver: [`Control::Pause`] stops at once with the pen up
//!   (the session's `ES`), [`Control::Resume`] continues after a pause or a pen change,
//!   [`Control::Abort`] stops, raises the pen and parks at home. A closed channel counts as an
//!   abort when the runner waits for an answer.
//! - **Events** go to a callback ([`RunEvent`]): progress with layer, stroke, vertex,
//!   distances, elapsed and planned time and the ETA from the plan; layer starts; the wait at a
//!   pen change; pauses with their [`Checkpoint`]; a checkpoint at every stroke end and at least
//!   every second (the daemon persists them for crash resume).
//! - **After a pause** the session has dropped what was queued; the runner re-plans from the
//!   checkpoint (the exact machine position, the rest of the stroke in flight, everything after
//!   it), so the only thing drawn twice is at most the part of one stroke.
//! - **The end**: the program's last move parks at home; the motors stay on and hold.
//! - **Errors** from the device (no answer, error replies, garbage, a port that vanishes) stop
//!   the plot: the session raises the pen if the board still answers; the error says what
//!   happened and what to check, and carries the checkpoint to continue from.

use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};

use plotty_motion::ebb::FirmwareVersion;
use plotty_motion::ebb::limits::MAX_ENCODED_LEN;
use plotty_motion::kinematics::MotorSteps;
use plotty_motion::pipeline::PipelineError;
use plotty_motion::plan::{Pen, Tag};
use plotty_motion::session::{
    Event, FeedError, FeedItem, PauseReason, ProtocolLine, ResumePoint, Session, SessionConfig,
    SessionError,
};
use plotty_motion::time::{Duration, Instant};

use crate::device::{DeviceError, Link};
use crate::settings::FirmwareChoice;

use super::config::PlotConfig;
use super::estimate::{self, Estimate};
use super::feed::{self, FeedStop};
use super::program::{Checkpoint, PARK_VERTEX, Program, Start};

/// Shortest interval between two [`RunEvent::Progress`] reports (plot time).
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);
/// Longest interval between two [`RunEvent::Checkpoint`]s while plotting (link time).
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(1000);
/// How often a runner waiting for the user looks at its controls (wall time).
const USER_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// A request to the runner.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Control {
    /// Stop now, pen up, and wait for [`Control::Resume`] or [`Control::Abort`].
    Pause,
    /// Continue after a pause or a pen change.
    Resume,
    /// Stop now, pen up, park at home, end the run.
    Abort,
}

/// What the runner reports while it runs.
#[derive(Clone, PartialEq, Debug)]
pub enum RunEvent {
    /// The board answered and was set up.
    Connected {
        /// Its firmware version.
        firmware: FirmwareVersion,
    },
    /// Plotting starts (or restarts after a pause); the plan's figures.
    Started {
        /// The planned time of the whole program (set-up included).
        planned: Duration,
    },
    /// The machine reached layer `index` (of [`Program::layers`]).
    Layer {
        /// Index into the program's layers.
        index: usize,
    },
    /// The machine moved on.
    Progress(Progress),
    /// Where to continue from if the plot is interrupted now (at every stroke end and at least
    /// every second).
    Checkpoint(Checkpoint),
    /// A `!` layer: the pen is up, the carriage at home; waiting for [`Control::Resume`].
    PenChange {
        /// The layer about to be drawn.
        layer: usize,
    },
    /// Stopped with the pen up (Ctrl-C, `pause`, the board's button); waiting for
    /// [`Control::Resume`] or [`Control::Abort`].
    Paused {
        /// Why.
        cause: PauseCause,
        /// Where the plot continues.
        checkpoint: Checkpoint,
    },
    /// Continuing after a pause or pen change.
    Resumed,
    /// Aborting: the pen is up; parking at home.
    Aborting,
}

/// Why the plot paused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PauseCause {
    /// [`Control::Pause`].
    Requested,
    /// The PRG button on the board.
    Button,
}

/// Progress of a plot.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Progress {
    /// Layer (index into [`Program::layers`]).
    pub layer: usize,
    /// Stroke (program-wide index).
    pub stroke: u32,
    /// Vertex the last finished move headed for.
    pub vertex: u32,
    /// Pen state of that move.
    pub pen: Pen,
    /// Distance moved so far (pen up and down), mm.
    pub distance_mm: f64,
    /// Of that, drawn, mm.
    pub drawn_mm: f64,
    /// Time the machine has been busy.
    pub elapsed: Duration,
    /// Planned time of what is done.
    pub done: Duration,
    /// Planned time of the whole program.
    pub planned: Duration,
}

/// How a run ended, when it did not fail.
#[derive(Clone, PartialEq, Debug)]
pub struct RunReport {
    /// Whether everything was drawn (else aborted).
    pub completed: bool,
    /// The board's firmware.
    pub firmware: FirmwareVersion,
    /// The plan (for the firmware in use).
    pub estimate: Estimate,
    /// Time on the link's clock from connecting to the end (simulated time on the simulator).
    pub duration: Duration,
    /// Final motor position (home, `(0, 0)`, unless aborted mid-park).
    pub position: MotorSteps,
    /// Distance moved, mm.
    pub distance_mm: f64,
    /// Distance drawn, mm.
    pub drawn_mm: f64,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The link failed (a vanished port, an I/O error).
    #[error(transparent)]
    Link(#[from] DeviceError),
    /// The handshake failed: not a plotter, no answer, unsupported firmware.
    #[error("{device}: {error}")]
    Connect {
        /// The device.
        device: String,
        /// What the session found (boxed: it carries the reply's text).
        error: Box<SessionError>,
    },
    /// The device failed during the plot; the machine was stopped.
    #[error("{device}: the plot was stopped: {error}; {advice}")]
    Device {
        /// The device.
        device: String,
        /// What went wrong (boxed: it carries the reply's text).
        error: Box<SessionError>,
        /// What to check.
        advice: &'static str,
        /// Where to continue, if known.
        checkpoint: Option<Checkpoint>,
    },
    /// The session configuration is invalid.
    #[error("invalid plotter set-up: {0}")]
    Config(String),
    /// The plan could not be made (a limit or point the planner refuses).
    #[error("cannot plan the plot: {0}")]
    Plan(PipelineError),
    /// The session refused an item (a move this firmware cannot run).
    #[error(
        "{device}: the board cannot run a planned move ({error}); this is a bug, please report it"
    )]
    Feed {
        /// The device.
        device: String,
        /// The session's reason.
        error: FeedError,
    },
}

/// The session configuration of a plot: the AxiDraw set-up for the settings, the pen waits of
/// the motion limits, the firmware choice, `timeout` as the reply deadline.
pub fn session_config(config: &PlotConfig, timeout: std::time::Duration) -> SessionConfig {
    let mut s = SessionConfig::axidraw(&config.axidraw);
    s.servo.raise_ms = config.pen_raise_ms();
    s.servo.lower_ms = config.pen_lower_ms();
    s.line = match config.firmware {
        FirmwareChoice::Auto => None,
        FirmwareChoice::V2_8 => Some(ProtocolLine::V2),
        FirmwareChoice::V3_0 => Some(ProtocolLine::V3),
    };
    let ms = u64::try_from(timeout.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    s.reply_timeout = Duration::from_millis(ms);
    s
}

/// What to plot, and how.
#[derive(Clone, Debug)]
pub struct Plot<'a> {
    /// The program.
    pub program: &'a Program,
    /// The machine and its limits.
    pub config: &'a PlotConfig,
    /// The session set-up (see [`session_config`]).
    pub session: SessionConfig,
    /// From the beginning, or from a checkpoint (crash resume).
    pub start: Start,
    /// An estimate already made, and the firmware it was made for: used if the board runs
    /// that firmware line, else the runner plans again.
    pub estimate: Option<(FirmwareVersion, Estimate)>,
}

/// Runs a plot on `link`. See the [module documentation](self).
///
/// # Errors
/// See [`RunError`]; the machine is stopped (pen up if the board still answers).
pub fn run<L: Link>(
    link: &mut L,
    plot: Plot<'_>,
    controls: &Receiver<Control>,
    events: &mut dyn FnMut(RunEvent),
) -> Result<RunReport, RunError> {
    let Plot {
        program,
        config,
        session,
        start,
        estimate: known,
    } = plot;
    let began = link.now();
    let session = Session::new(session, began).map_err(|e| RunError::Config(e.to_string()))?;
    let mut io = Io {
        link,
        session,
        controls,
        events,
        program,
        rx: Vec::new(),
        tx: Vec::new(),
        last_error: None,
        interrupt: None,
        layer: None,
        last_progress: None,
        progress_at: None,
        checkpoint_at: began,
        idle: None,
        planned: Duration::ZERO,
        abort_requested: false,
        parking: false,
    };
    let (firmware, mut position) = io.connect()?;
    let estimate = match known {
        Some((v, e)) if v.is_v3() == firmware.is_v3() && v.minor == firmware.minor => e,
        _ => estimate::estimate(program, config, firmware).map_err(RunError::Plan)?,
    };
    io.planned = estimate.total;
    (io.events)(RunEvent::Started {
        planned: estimate.total,
    });
    let mut start = start;
    let mut accumulators = [0u32; 2];
    let completed = loop {
        let fed = feed::feed(
            program,
            start,
            config,
            firmware,
            position,
            accumulators,
            &mut |item| io.deliver(item),
        );
        let interrupt = match fed {
            Ok(_) => match io.drain() {
                Ok(end) => {
                    position = end;
                    break true;
                }
                Err(i) => i,
            },
            Err(FeedStop::Sink(i)) => i,
            Err(FeedStop::Plan(e)) => {
                io.stop_now();
                return Err(RunError::Plan(e));
            }
        };
        match interrupt {
            Interrupt::Resume(point) => {
                let (c, pos, acc) = io.resume_from(&point);
                start = Start::At(c);
                position = pos;
                accumulators = acc;
                (io.events)(RunEvent::Resumed);
            }
            Interrupt::Aborted(at) => {
                position = io.park(program, config, firmware, at)?;
                break false;
            }
            Interrupt::Fail(e) => return Err(e),
        }
    };
    let end = io.link.now();
    let (distance_mm, drawn_mm) = io
        .last_progress
        .map_or((0.0, 0.0), |p| (p.distance_mm, p.drawn_mm));
    Ok(RunReport {
        completed,
        firmware,
        estimate,
        duration: end - began,
        position,
        distance_mm,
        drawn_mm,
    })
}

/// Why feeding stopped.
#[derive(Debug)]
enum Interrupt {
    /// Paused (dropping what was queued) and the user said resume: re-plan from here.
    Resume(ResumePoint),
    /// Aborted; the machine is at this position with the pen up.
    Aborted(MotorSteps),
    /// Failed.
    Fail(RunError),
}

/// The runner's state between the session, the link and the caller.
struct Io<'a, 'e, L: Link> {
    link: &'a mut L,
    session: Session,
    controls: &'a Receiver<Control>,
    events: &'e mut dyn FnMut(RunEvent),
    program: &'a Program,
    rx: Vec<u8>,
    /// Bytes of a command the link has not taken yet.
    tx: Vec<u8>,
    last_error: Option<SessionError>,
    interrupt: Option<Interrupt>,
    layer: Option<usize>,
    /// The last progress report of the session (translated).
    last_progress: Option<Progress>,
    /// Plot time of the last progress event sent.
    progress_at: Option<Duration>,
    /// Link time of the last checkpoint sent.
    checkpoint_at: Instant,
    /// Position of the last `Idle` not yet consumed.
    idle: Option<MotorSteps>,
    planned: Duration,
    abort_requested: bool,
    /// Parking after an abort.
    parking: bool,
}

impl<L: Link> Io<'_, '_, L> {
    /// Handshake and set-up: returns the firmware version and the position.
    fn connect(&mut self) -> Result<(FirmwareVersion, MotorSteps), RunError> {
        let mut firmware = None;
        loop {
            let progressed = self.pump()?;
            while let Some(e) = self.session.poll_event() {
                match e {
                    Event::Connected { version, .. } => {
                        firmware = Some(version);
                        (self.events)(RunEvent::Connected { firmware: version });
                    }
                    Event::Ready { position, .. } => {
                        let now = self.link.now();
                        self.session.reset_progress(now);
                        let version = firmware
                            .or_else(|| self.session.version())
                            .unwrap_or(FirmwareVersion::LATEST);
                        return Ok((version, position));
                    }
                    Event::Error(e) => self.last_error = Some(e),
                    _ => {}
                }
            }
            if self.session.is_failed() {
                return Err(RunError::Connect {
                    device: self.link.name().to_owned(),
                    error: Box::new(self.last_error.take().unwrap_or(SessionError::Timeout {
                        command: "V",
                        waited: Duration::ZERO,
                    })),
                });
            }
            if !progressed {
                let deadline = self.session.poll_timeout();
                self.link.wait(deadline)?;
            }
        }
    }

    /// One round of I/O without waiting: received bytes in, due timeouts, everything the
    /// session wants to send out. Returns whether anything happened.
    fn pump(&mut self) -> Result<bool, DeviceError> {
        let mut progressed = false;
        let now = self.link.now();
        self.link.read(&mut self.rx)?;
        if !self.rx.is_empty() {
            self.session.handle_rx(now, &self.rx);
            self.rx.clear();
            progressed = true;
        }
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            self.session.handle_timeout(now);
            progressed = true;
        }
        let mut buf = [0u8; MAX_ENCODED_LEN];
        loop {
            if !self.tx.is_empty() {
                let n = self.link.write(&self.tx)?;
                self.tx.drain(..n.min(self.tx.len()));
                if !self.tx.is_empty() {
                    // The device takes no more now; the rest goes after a wait.
                    break;
                }
                progressed = true;
            }
            match self.session.poll_transmit(now, &mut buf) {
                Some(n) => self.tx.extend_from_slice(buf.get(..n).unwrap_or_default()),
                None => break,
            }
        }
        Ok(progressed || self.session.has_events())
    }

    /// Hands `item` to the session, doing I/O until it has room; stops feeding on a pause,
    /// an abort or a failure.
    fn deliver(&mut self, item: FeedItem) -> Result<(), Interrupt> {
        loop {
            self.step()?;
            if self.session.can_accept() {
                match self.session.push(item) {
                    Ok(()) => {
                        // An `Idle` reported before this push is stale.
                        self.idle = None;
                        self.pump().map_err(|e| Interrupt::Fail(e.into()))?;
                        return Ok(());
                    }
                    Err(FeedError::Full | FeedError::Paused | FeedError::NotReady) => {}
                    Err(error) => {
                        self.stop_now();
                        return Err(Interrupt::Fail(RunError::Feed {
                            device: self.link.name().to_owned(),
                            error,
                        }));
                    }
                }
            }
            self.wait()?;
        }
    }

    /// Everything is fed: runs until the session reports it executed; returns the position.
    fn drain(&mut self) -> Result<MotorSteps, Interrupt> {
        loop {
            self.step()?;
            if let Some(position) = self.idle.take()
                && self.session.is_idle()
            {
                return Ok(position);
            }
            self.wait()?;
        }
    }

    /// I/O, events and controls, without waiting.
    fn step(&mut self) -> Result<(), Interrupt> {
        loop {
            let progressed = self.pump().map_err(|e| Interrupt::Fail(e.into()))?;
            let mut any_event = false;
            while let Some(e) = self.session.poll_event() {
                any_event = true;
                self.on_event(e)?;
            }
            let acted = self.poll_controls();
            if let Some(i) = self.interrupt.take() {
                return Err(i);
            }
            if !progressed && !any_event && !acted {
                return Ok(());
            }
        }
    }

    /// Waits on the link until the session's next deadline or until bytes may have arrived.
    fn wait(&mut self) -> Result<(), Interrupt> {
        let deadline = self.session.poll_timeout();
        self.link
            .wait(deadline)
            .map_err(|e| Interrupt::Fail(e.into()))
    }

    /// Acts on the controls waiting in the channel (while plotting); returns whether the
    /// session was told to do something.
    fn poll_controls(&mut self) -> bool {
        let mut acted = false;
        loop {
            match self.controls.try_recv() {
                Ok(Control::Pause) if self.session.is_ready() => {
                    let now = self.link.now();
                    // Only refused when not ready, which was just checked.
                    acted |= self.session.pause(now).is_ok();
                }
                Ok(Control::Abort) => {
                    self.request_abort();
                    acted = true;
                }
                Ok(Control::Pause | Control::Resume) => {}
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return acted,
            }
        }
    }

    fn request_abort(&mut self) {
        let now = self.link.now();
        if self.parking {
            // Abort while parking: stop where it is.
            let _ = self.session.abort(now);
        } else if !self.abort_requested {
            self.abort_requested = true;
            if self.session.abort(now).is_ok() {
                (self.events)(RunEvent::Aborting);
            }
        }
    }

    /// One session event.
    fn on_event(&mut self, event: Event) -> Result<(), Interrupt> {
        match event {
            Event::Progress(p) => self.on_progress(p),
            Event::StrokeDone { .. } => {
                if let Some(p) = self.last_progress {
                    self.send_checkpoint(p);
                }
            }
            // Parking after an abort is led by the last layer's marker (for its limits): no
            // layer is reached, so none is reported.
            Event::Marker(_) if self.parking => {}
            Event::Marker(l) => {
                let index = l as usize;
                self.layer = Some(index);
                self.link.layer_reached(index);
                (self.events)(RunEvent::Layer { index });
            }
            Event::Idle { position } => self.idle = Some(position),
            Event::Paused { reason, resume } => self.on_paused(reason, resume)?,
            Event::Aborted { position } => {
                self.interrupt = Some(Interrupt::Aborted(position));
            }
            Event::Error(e) => {
                self.last_error = Some(e);
                if self.session.is_failed() {
                    self.interrupt = Some(Interrupt::Fail(self.device_error(None)));
                }
            }
            Event::Connected { .. }
            | Event::Ready { .. }
            | Event::VertexDone(_)
            | Event::Position { .. }
            | Event::ButtonPressed => {}
        }
        Ok(())
    }

    fn on_progress(&mut self, p: plotty_motion::session::Progress) {
        let layer = self
            .program
            .layer_of(p.tag)
            .or(self.layer)
            .unwrap_or_default();
        let progress = Progress {
            layer,
            stroke: p.tag.stroke,
            vertex: p.tag.vertex,
            pen: p.pen,
            distance_mm: p.distance_mm,
            drawn_mm: p.drawn_mm,
            elapsed: p.elapsed,
            done: p.planned,
            planned: self.planned,
        };
        self.last_progress = Some(progress);
        if self
            .progress_at
            .is_none_or(|t| p.planned >= t + PROGRESS_INTERVAL)
        {
            self.progress_at = Some(p.planned);
            (self.events)(RunEvent::Progress(progress));
        }
        let now = self.link.now();
        if now >= self.checkpoint_at + CHECKPOINT_INTERVAL {
            self.send_checkpoint(progress);
        }
    }

    fn send_checkpoint(&mut self, p: Progress) {
        self.checkpoint_at = self.link.now();
        if let Some(c) = self.checkpoint_after(
            Tag {
                stroke: p.stroke,
                vertex: p.vertex,
            },
            p.pen,
            self.session.position(),
        ) {
            (self.events)(RunEvent::Checkpoint(c));
        }
    }

    /// The checkpoint of a plot whose last finished move was tagged `tag`: that move's target
    /// (reached, or still ahead if the move was one phase of its block).
    fn checkpoint_after(&self, tag: Tag, pen: Pen, position: MotorSteps) -> Option<Checkpoint> {
        self.program.checkpoint(tag, pen, position)
    }

    /// A pause: planned (pen change), requested, the button, or an error.
    fn on_paused(&mut self, reason: PauseReason, resume: ResumePoint) -> Result<(), Interrupt> {
        match reason {
            PauseReason::Error => {
                let checkpoint = self.resume_checkpoint(&resume);
                self.interrupt = Some(Interrupt::Fail(self.device_error(checkpoint)));
                Ok(())
            }
            _ if self.abort_requested => Ok(()),
            PauseReason::Planned => {
                // The layer's marker comes before its parking move and pause.
                let layer = self.layer.unwrap_or(0);
                (self.events)(RunEvent::PenChange { layer });
                match self.wait_for_user()? {
                    Control::Resume => {
                        let now = self.link.now();
                        let _ = self.session.resume(now);
                        (self.events)(RunEvent::Resumed);
                    }
                    _ => self.request_abort(),
                }
                Ok(())
            }
            PauseReason::Requested | PauseReason::Button => {
                let cause = if reason == PauseReason::Button {
                    PauseCause::Button
                } else {
                    PauseCause::Requested
                };
                let (checkpoint, _, _) = self.resume_from(&resume);
                (self.events)(RunEvent::Paused { cause, checkpoint });
                match self.wait_for_user()? {
                    Control::Resume => {
                        let now = self.link.now();
                        let _ = self.session.resume(now);
                        if resume.dropped {
                            self.interrupt = Some(Interrupt::Resume(resume));
                        } else {
                            (self.events)(RunEvent::Resumed);
                        }
                    }
                    _ => self.request_abort(),
                }
                Ok(())
            }
        }
    }

    /// Services the session until the user answers (Resume or Abort).
    fn wait_for_user(&mut self) -> Result<Control, Interrupt> {
        loop {
            self.pump().map_err(|e| Interrupt::Fail(e.into()))?;
            while let Some(e) = self.session.poll_event() {
                match e {
                    Event::Error(e) => {
                        self.last_error = Some(e);
                        if self.session.is_failed() {
                            return Err(Interrupt::Fail(self.device_error(None)));
                        }
                    }
                    Event::Aborted { position } => return Err(Interrupt::Aborted(position)),
                    _ => {}
                }
            }
            let answer = if self.link.is_simulated() {
                // Simulated time stands still while the user thinks.
                match self.controls.recv_timeout(USER_POLL) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => Some(Control::Abort),
                }
            } else {
                match self.controls.try_recv() {
                    Ok(c) => Some(c),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => Some(Control::Abort),
                }
            };
            match answer {
                Some(c @ (Control::Resume | Control::Abort)) => return Ok(c),
                Some(Control::Pause) => {}
                None if !self.link.is_simulated() => {
                    let deadline = self.session.poll_timeout();
                    self.link
                        .wait(deadline)
                        .map_err(|e| Interrupt::Fail(e.into()))?;
                }
                None => {}
            }
        }
    }

    /// The checkpoint a session resume point stands for: its first unfinished move, or after
    /// the last move fed if all finished.
    fn resume_checkpoint(&self, r: &ResumePoint) -> Option<Checkpoint> {
        let (tag, pen) = match r.tag {
            Some(tag) => (tag, r.pen),
            None => {
                let p = self.last_progress?;
                (
                    Tag {
                        stroke: p.stroke,
                        vertex: p.vertex,
                    },
                    p.pen,
                )
            }
        };
        self.program.checkpoint(tag, pen, r.position)
    }

    /// Where a resumed plot continues: the checkpoint, position and accumulators.
    fn resume_from(&self, r: &ResumePoint) -> (Checkpoint, MotorSteps, [u32; 2]) {
        let checkpoint = self.resume_checkpoint(r).unwrap_or(Checkpoint {
            // Nothing was reported yet: start over from where the machine is.
            layer: 0,
            stroke: 0,
            vertex: 0,
            pen_down: false,
            position: [r.position.m1, r.position.m2],
        });
        (checkpoint, r.position, r.accumulators.unwrap_or([0, 0]))
    }

    /// The failure for the last session error.
    fn device_error(&mut self, checkpoint: Option<Checkpoint>) -> RunError {
        let error = self.last_error.take().unwrap_or(SessionError::Timeout {
            command: "?",
            waited: Duration::ZERO,
        });
        let advice = advice(&error);
        RunError::Device {
            device: self.link.name().to_owned(),
            error: Box::new(error),
            advice,
            checkpoint,
        }
    }

    /// Stops the machine without waiting for the outcome (before returning an error).
    fn stop_now(&mut self) {
        let now = self.link.now();
        if self.session.abort(now).is_ok() {
            let _ = self.pump();
        }
    }

    /// After an abort: a pen-up move home, run to its end. Returns the final position.
    fn park(
        &mut self,
        program: &Program,
        config: &PlotConfig,
        firmware: FirmwareVersion,
        at: MotorSteps,
    ) -> Result<MotorSteps, RunError> {
        let home = Checkpoint {
            layer: program.layers().len().saturating_sub(1),
            stroke: program.stroke_count(),
            vertex: PARK_VERTEX,
            pen_down: false,
            position: [at.m1, at.m2],
        };
        self.abort_requested = true;
        self.parking = true;
        let fed = feed::feed(
            program,
            Start::At(home),
            config,
            firmware,
            at,
            [0, 0],
            &mut |item| self.deliver(item),
        );
        let result = match fed {
            Ok(_) => self.drain(),
            Err(FeedStop::Sink(i)) => Err(i),
            Err(FeedStop::Plan(e)) => return Err(RunError::Plan(e)),
        };
        match result {
            Ok(position) => Ok(position),
            // A second abort while parking: stay where it stopped.
            Err(Interrupt::Aborted(position)) => Ok(position),
            Err(Interrupt::Resume(r)) => Ok(r.position),
            Err(Interrupt::Fail(e)) => Err(e),
        }
    }
}

/// What to check after a device error.
fn advice(error: &SessionError) -> &'static str {
    match error {
        SessionError::Timeout { .. } => {
            "the plotter stopped answering: check the USB cable and the plotter's power"
        }
        SessionError::Firmware { .. } | SessionError::Encode { .. } => {
            "the board refused a command: check the firmware version (`plotty check device`) and \
             report this with the log"
        }
        SessionError::BadReply { .. } | SessionError::Unsolicited { .. } => {
            "the board's replies were garbled: check that no other program uses the port and try \
             another USB cable or port"
        }
        SessionError::PositionMismatch { .. } => {
            "the carriage lost its position (moved by hand, or the motors lost power): home it by \
             hand before plotting again"
        }
        SessionError::NotAnEbb { .. }
        | SessionError::NoVersion { .. }
        | SessionError::UnsupportedFirmware { .. } => {
            "check that the port is the AxiDraw's (`plotty check device`)"
        }
    }
}
