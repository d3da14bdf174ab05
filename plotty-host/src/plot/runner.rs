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
//! - **After a crash or a lost link** ([`Plot::ran_on`]) the powered board ran its queue on
//!   past the stored checkpoint: the run asks it where it is and goes on from there when the
//!   path ahead holds that place once ([`locate`]), else from the checkpoint.
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

use crate::devices::link::{DeviceError, Link};
use crate::settings::FirmwareChoice;

use super::config::PlotConfig;
use super::estimate::{self, Estimate};
use super::feed::{self, FeedStop};
use super::locate::{self, Located, Reach};
use super::program::{Checkpoint, PARK_VERTEX, Program, REENTRY_VERTEX, Start};

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
    /// Stop now with the pen up (or stay stopped, when paused or at a pen change), report
    /// [`RunEvent::Paused`] with the exact [`Checkpoint`], optionally park at home, and end the
    /// run with [`Outcome::Stopped`]: the plot continues later from the checkpoint, in a new
    /// run, from wherever the carriage is then.
    Stop {
        /// Park at home after stopping (a shutdown); else the carriage stays where it stopped.
        park: bool,
    },
    /// [`Control::Stop`] once the stroke being drawn is finished (the pen is up at its end);
    /// at once when no stroke is being drawn. A later `Stop` stops at once.
    StopAfterStroke {
        /// Park at home after stopping.
        park: bool,
    },
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
    Checkpoint {
        /// The checkpoint.
        checkpoint: Checkpoint,
        /// The carriage got past it streaming along the program (not on the way back to where
        /// this run started or resumed): if the run dies now, the board runs its queue on along
        /// the program from there, and a resume may look for where it stopped ([`Plot::ran_on`]).
        streaming: bool,
    },
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
    /// A run after a crash ([`Plot::ran_on`]) asked the board where it stopped: it continues
    /// from `checkpoint`, found where the pen stopped or the stored one (see [`locate`]).
    Resuming {
        /// The checkpoint the run continues from (`None`: from the beginning).
        checkpoint: Option<Checkpoint>,
        /// The stored checkpoint it was to start from (`None`: the crash came before the
        /// first one, and the search started at the beginning).
        stored: Option<Checkpoint>,
        /// What the search along the path found.
        located: Located,
    },
    /// Continuing after a pause or pen change.
    Resumed,
    /// An abort was accepted: the board is told to stop (`ES`) and raise the pen.
    Aborting,
    /// The abort is done on the board: motion stopped, the queue empty, the pen up (as the
    /// session confirmed); parking at home follows.
    Aborted,
    /// The motor supply dropped below the minimum since the last look, however briefly (the
    /// 3.x power-lost latch, read with the button): the motors may have slipped. A plot stops
    /// ([`PauseCause::PowerLost`]) and the motors go off when the run ends.
    PowerLost,
    /// A motor supply reading (at connect, and every couple of seconds while plotting or
    /// paused).
    Power {
        /// Raw `QC` V+ reading.
        voltage: u16,
        /// Too low to plot.
        low: bool,
    },
}

/// Why the plot paused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PauseCause {
    /// [`Control::Pause`].
    Requested,
    /// The PRG button on the board.
    Button,
    /// [`Control::Stop`] or [`Control::StopAfterStroke`]: the run ends after this event.
    Stopped,
    /// The motor supply is low or off (`QC`): the motors cannot be trusted to move.
    LowPower,
    /// The motor supply dropped since the last poll (the 3.x power-lost latch), however
    /// briefly: the motors may have slipped. The run ends after this event with the motors
    /// off, so the next run asks for the carriage to be homed before it resumes.
    PowerLost,
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
    /// Motor position at the end of that move (where the carriage is once the board ran it):
    /// the device status shows it while plotting.
    pub position: MotorSteps,
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
    /// Time the pen has been down in this run: each lowering's wait and every pen-down move the
    /// board has finished, by the firmware's execution time of each (waits for commands and
    /// pauses not counted; a plot resumed after a restart counts from the resume).
    pub pen_down: Duration,
}

/// How a run ended, when it did not fail.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// Everything was drawn and the carriage is home.
    Completed,
    /// Aborted: the pen is up and the carriage parked.
    Aborted,
    /// Stopped by [`Control::Stop`]: the plot continues from this checkpoint.
    Stopped(Checkpoint),
}

/// How a run ended, when it did not fail.
#[derive(Clone, PartialEq, Debug)]
pub struct RunReport {
    /// How it ended.
    pub outcome: Outcome,
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
    /// Time the pen was down in this run (see [`Progress::pen_down`]).
    pub pen_down: Duration,
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
    /// Resuming needs a carriage whose position the board knows, and this one does not (the
    /// board was reset or powered off, or its motors were off, since the plot stopped), or it
    /// reports a position outside the machine's travel. Nothing moved.
    #[error(
        "{device}: {why}, so resuming could draw in the wrong place; nothing moved. Push the \
         carriage to its home corner (top left, pen up), run `plotty device home`, then resume"
    )]
    PositionUnknown {
        /// The device.
        device: String,
        /// What the board said.
        why: String,
    },
    /// The motor supply is low or off before the plot moved anything.
    #[error(
        "{device}: the motor supply is low or off (QC reads {voltage}; the AxiDraw needs 250 or \
         more): check that the plotter's power supply is plugged in and switched on, then try \
         again; nothing moved"
    )]
    LowPower {
        /// The device.
        device: String,
        /// The raw supply reading.
        voltage: u16,
    },
    /// A manual move would leave the machine's travel; nothing moved.
    #[error("{device}: {detail}; nothing moved")]
    OutOfTravel {
        /// The device.
        device: String,
        /// Where it would have gone.
        detail: String,
    },
    /// The session refused to resume after a pause (it was not paused any more); nothing moved
    /// on the resume.
    #[error("{device}: the plot cannot go on: {error}; resume the job again")]
    Resume {
        /// The device.
        device: String,
        /// What the session said.
        error: plotty_motion::session::StateError,
    },
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
    // Ask the board where the carriage is instead of zeroing its step counters: a resume (after
    // a crash, a shutdown or a stop) continues from where the carriage really is, and a board
    // whose motors were off tells us its position is unknown.
    s.keep_position = true;
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
    /// `start`'s checkpoint was stored while a run streamed along the program past it (a
    /// [`RunEvent::Checkpoint`] with `streaming`) and nothing moved the carriage since but that
    /// run: if it lost the board (the host crashed, the link vanished), the powered board ran on
    /// past the checkpoint along the program, so the run looks along the path for where it
    /// stopped ([`locate`]). Never after a clean stop (a pause, a shutdown park, a pen change),
    /// a manual action or a resume that may have moved the carriage, nor without a stored
    /// checkpoint: the carriage's position (parked at home, walked to the first corner) then
    /// says nothing of the plot, and a match would skip lines.
    pub ran_on: bool,
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
        ran_on,
    } = plot;
    let began = link.now();
    let queue_ahead = session.queue_ahead;
    let session = Session::new(session, began).map_err(|e| RunError::Config(e.to_string()))?;
    let reentry = match start {
        Start::At(c) => Some(c),
        Start::Beginning => None,
    };
    let mut io = Io::new(link, session, controls, events, program, reentry);
    io.kinematics = config.kinematics();
    let Connection {
        firmware,
        mut position,
        kept,
        accumulators: found,
    } = io.connect()?;
    if let Some((voltage, true)) = io.power {
        // Motors on a sagging supply skip steps: nothing moves until it is back.
        return Err(RunError::LowPower {
            device: io.link.name().to_owned(),
            voltage,
        });
    }
    let mut start = start;
    if let Start::At(_) = start {
        io.check_resume_position(config, position, kept)?;
    }
    // Without a stored checkpoint nothing says where the carriage was when the plot began (a
    // plot from the beginning starts wherever it is), so there is nothing to search from.
    if let (true, Start::At(stored)) = (ran_on, start) {
        // A board that ran its queue on after the host died stopped past the stored
        // checkpoint: continue where it stopped if the path says so unambiguously.
        let reach = Reach::of(program, config, CHECKPOINT_INTERVAL, queue_ahead);
        let located = locate::locate(program, &stored, position, io.kinematics, &reach);
        let checkpoint = match located {
            Located::PenStopped(c) => c,
            Located::Recorded(_) => stored,
        };
        start = Start::At(checkpoint);
        io.reentry = Some(checkpoint);
        (io.events)(RunEvent::Resuming {
            checkpoint: Some(checkpoint),
            stored: Some(stored),
            located,
        });
    }
    let estimate = match known {
        Some((v, e)) if v.is_v3() == firmware.is_v3() && v.minor == firmware.minor => e,
        _ => estimate::estimate(program, config, firmware).map_err(RunError::Plan)?,
    };
    io.planned = estimate.total;
    if let Start::At(_) = start {
        // Progress, distances and the ETA go on from where the plot stopped: what came before
        // the checkpoint counts as done.
        // The rest as planned from the checkpoint's own position: the way back to it and the
        // pen drop there are extra work of this run, not progress of the plot.
        let at = match start {
            Start::At(c) => MotorSteps::new(c.position[0], c.position[1]),
            Start::Beginning => position,
        };
        let rest =
            estimate::remaining(program, config, firmware, start, at).map_err(RunError::Plan)?;
        let from_here = estimate::remaining(program, config, firmware, start, position)
            .map_err(RunError::Plan)?;
        let mut overhead = from_here.time - rest.time;
        if let Start::At(c) = start
            && c.pen_down
        {
            overhead += config.pen_lower();
        }
        io.before = Before {
            done: Duration::from_micros(
                estimate
                    .total
                    .as_micros()
                    .saturating_sub(estimate.setup.as_micros())
                    .saturating_sub(rest.time.as_micros()),
            ),
            drawn_mm: (estimate.drawn_mm - rest.drawn_mm).max(0.0),
            distance_mm: (estimate.drawn_mm + estimate.travel_mm - rest.distance_mm).max(0.0),
            overhead,
        };
    }
    (io.events)(RunEvent::Started {
        planned: estimate.total,
    });
    let mut accumulators = found.unwrap_or([0, 0]);
    let outcome = loop {
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
                    break Outcome::Completed;
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
                io.reentry = Some(c);
                position = pos;
                accumulators = acc;
                (io.events)(RunEvent::Resumed);
            }
            Interrupt::Aborted(at, acc) => {
                // Reported done once it is: the board stopped, the pen raise executed.
                io.settle().map_err(|i| match i {
                    Interrupt::Fail(e) => e,
                    _ => io.device_error(None),
                })?;
                (io.events)(RunEvent::Aborted);
                position = io.park(program, config, firmware, at, acc)?;
                break Outcome::Aborted;
            }
            Interrupt::Stopped {
                checkpoint,
                at,
                accumulators: acc,
                park,
            } => {
                // The stop is done; the park's moves must go out. The session is paused (the stop
                // dropped what was queued, or the plot waited at a pen change with the pen up):
                // ready again, without lowering the pen.
                io.stop = None;
                if park && io.session.is_paused() {
                    let now = io.link.now();
                    let _ = io.session.resume(now);
                }
                position = if park {
                    io.park(program, config, firmware, at, acc)?
                } else {
                    at
                };
                break Outcome::Stopped(checkpoint);
            }
            Interrupt::Fail(e) => return Err(e),
        }
    };
    if io.motors_off {
        // The supply dropped while the plot waited: the motors may have slipped. Off, so the
        // carriage can be pushed home and no later run trusts the counters (it asks for
        // `plotty device home`).
        if io.session.is_paused() {
            let now = io.link.now();
            let _ = io.session.resume(now);
        }
        match io
            .deliver(FeedItem::Motors(false))
            .and_then(|()| io.drain().map(|_| ()))
        {
            // Another drop stopped the feed: that stop turned the motors off (`ES,1`).
            Ok(()) | Err(Interrupt::Stopped { .. }) => {}
            Err(Interrupt::Fail(e)) => return Err(e),
            Err(Interrupt::Aborted(..) | Interrupt::Resume(_)) => return Err(io.device_error(None)),
        }
    }
    let end = io.link.now();
    // No move finished in this run (a resume with nothing left but a way home it had already
    // made): what was done before it stands.
    let (distance_mm, drawn_mm) = io.last_progress.map_or(
        (
            io.before.distance_mm + io.cut_short_mm,
            io.before.drawn_mm + io.cut_short_mm,
        ),
        |p| (p.distance_mm, p.drawn_mm),
    );
    Ok(RunReport {
        outcome,
        firmware,
        estimate,
        duration: end - began,
        position,
        distance_mm,
        drawn_mm,
        pen_down: io.pen_down,
    })
}

/// What the board said when the session connected.
#[derive(Clone, Copy, Debug)]
struct Connection {
    firmware: FirmwareVersion,
    position: MotorSteps,
    /// The step counters were kept (the motors were on): the position is where the carriage is.
    kept: bool,
    accumulators: Option<[u32; 2]>,
}

/// A manual action on a connected board (`plotty device …`).
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Manual {
    /// Raise the pen.
    PenUp,
    /// Lower the pen.
    PenDown,
    /// Motors on (they hold the carriage; if they were off, positions count from here).
    MotorsOn,
    /// Pen up, motors off: the carriage moves freely by hand.
    MotorsOff,
    /// The AxiDraw software's align mode: pen up, motors off, to line up paper and pen by hand.
    Align,
    /// Pen up and back home; if the motors were off, the carriage's place becomes home (the
    /// user pushed it into the home corner).
    Home,
    /// Pen up and move by this much, mm (the motors must have been on).
    Walk {
        /// Along x.
        dx_mm: f64,
        /// Along y.
        dy_mm: f64,
    },
}

/// What a manual action left.
#[derive(Clone, PartialEq, Debug)]
pub struct ManualReport {
    /// The board's firmware.
    pub firmware: FirmwareVersion,
    /// The carriage's position, `None` when the motors are off (unknown).
    pub position: Option<MotorSteps>,
    /// Whether the pen is up.
    pub pen_up: bool,
    /// What was done, for the user.
    pub message: String,
    /// The pen servo's pulse width once the action was done, where the link sees it (the
    /// simulator).
    pub pen_servo: Option<u16>,
}

/// Runs a manual action on `link` (connect, act, wait until the board executed it).
///
/// # Errors
/// See [`RunError`]: [`RunError::PositionUnknown`] for a walk with the motors off,
/// [`RunError::OutOfTravel`] for a walk that would leave the machine.
pub fn manual<L: Link>(
    link: &mut L,
    config: &PlotConfig,
    session: SessionConfig,
    action: Manual,
) -> Result<ManualReport, RunError> {
    let program = Program::default();
    let (_keep, controls) = std::sync::mpsc::channel();
    let mut events = |_: RunEvent| {};
    let began = link.now();
    let session = Session::new(session, began).map_err(|e| RunError::Config(e.to_string()))?;
    let mut io = Io::new(link, session, &controls, &mut events, &program, None);
    let c = io.connect()?;
    let kinematics = config.kinematics();
    let here = kinematics.to_point(c.position);
    let fail = |i: Interrupt| match i {
        Interrupt::Fail(e) => e,
        _ => RunError::Config("the manual action was interrupted".into()),
    };
    let mut report = ManualReport {
        firmware: c.firmware,
        position: Some(c.position),
        pen_up: true,
        message: String::new(),
        pen_servo: None,
    };
    let travel_to = |io: &mut Io<'_, '_, L>, to: crate::import::Point| {
        io.deliver(FeedItem::Pen(Pen::Up)).map_err(fail)?;
        let fed = feed::travel(
            config,
            c.firmware,
            c.position,
            c.accumulators.unwrap_or([0, 0]),
            to,
            &mut |item| io.deliver(item),
        );
        match fed {
            Ok(_) => io.drain().map_err(fail),
            Err(FeedStop::Sink(i)) => Err(fail(i)),
            Err(FeedStop::Plan(e)) => Err(RunError::Plan(e)),
        }
    };
    match action {
        Manual::PenUp | Manual::PenDown => {
            let pen = if action == Manual::PenUp {
                Pen::Up
            } else {
                Pen::Down
            };
            io.deliver(FeedItem::Pen(pen)).map_err(fail)?;
            io.drain().map_err(fail)?;
            report.pen_up = pen == Pen::Up;
            report.message = if report.pen_up { "pen up" } else { "pen down" }.into();
        }
        Manual::MotorsOn => {
            report.message = if c.kept {
                format!(
                    "the motors were on; the carriage is at ({:.1}, {:.1}) mm",
                    here.x_mm, here.y_mm
                )
            } else {
                "motors on: positions count from where the carriage is now (home it with \
                 `plotty device home` if it is not in the home corner)"
                    .into()
            };
        }
        Manual::MotorsOff | Manual::Align => {
            io.deliver(FeedItem::Pen(Pen::Up)).map_err(fail)?;
            io.deliver(FeedItem::Motors(false)).map_err(fail)?;
            io.drain().map_err(fail)?;
            report.position = None;
            report.message = if action == Manual::Align {
                "align: pen up, motors off; move the carriage by hand to line up the paper and \
                 pen, then push it into the home corner and run `plotty device home`"
            } else {
                "motors off: the carriage moves freely; push it into the home corner and run \
                 `plotty device home` before plotting again"
            }
            .into();
        }
        Manual::Home if !c.kept => {
            io.deliver(FeedItem::Pen(Pen::Up)).map_err(fail)?;
            io.drain().map_err(fail)?;
            report.message = "the motors were off: the carriage's place is home now (it must be \
                              in the home corner, top left); motors on, pen up"
                .into();
        }
        Manual::Home => {
            let end = travel_to(&mut io, crate::import::Point::ORIGIN)?;
            report.position = Some(end);
            report.message = format!(
                "homed from ({:.1}, {:.1}) mm; pen up, motors on",
                here.x_mm, here.y_mm
            );
        }
        Manual::Walk { .. } if !c.kept => {
            let _ = io
                .deliver(FeedItem::Motors(false))
                .and_then(|()| io.drain());
            return Err(RunError::PositionUnknown {
                device: io.link.name().to_owned(),
                why: "the board's motors were off, so where the carriage is is unknown".into(),
            });
        }
        Manual::Walk { dx_mm, dy_mm } => {
            let to = crate::import::Point::new(here.x_mm + dx_mm, here.y_mm + dy_mm);
            let (w, h) = config.axidraw.model.travel_mm();
            if !(to.is_finite() && (0.0..=w).contains(&to.x_mm) && (0.0..=h).contains(&to.y_mm)) {
                return Err(RunError::OutOfTravel {
                    device: io.link.name().to_owned(),
                    detail: format!(
                        "walking ({dx_mm}, {dy_mm}) mm from ({:.1}, {:.1}) mm ends at ({:.1}, \
                         {:.1}) mm, outside the {w:.0} × {h:.0} mm travel of the {}",
                        here.x_mm,
                        here.y_mm,
                        to.x_mm,
                        to.y_mm,
                        config.axidraw.model.name()
                    ),
                });
            }
            let end = travel_to(&mut io, to)?;
            report.position = Some(end);
            let p = kinematics.to_point(end);
            report.message = format!("walked to ({:.1}, {:.1}) mm; pen up", p.x_mm, p.y_mm);
        }
    }
    report.pen_servo = io.link.pen_servo();
    Ok(report)
}

/// Why feeding stopped.
#[derive(Debug)]
enum Interrupt {
    /// Paused (dropping what was queued) and the user said resume: re-plan from here.
    Resume(ResumePoint),
    /// Aborted; the machine is at this position with the pen up (and these accumulators).
    Aborted(MotorSteps, Option<[u32; 2]>),
    /// Stopped for good ([`Control::Stop`]): continue from `checkpoint` in a later run.
    Stopped {
        checkpoint: Checkpoint,
        at: MotorSteps,
        accumulators: Option<[u32; 2]>,
        park: bool,
    },
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
    /// Parking after an abort or a stop (no checkpoints: the plot's own stands).
    parking: bool,
    /// A [`Control::Stop`] is under way (the session was told to pause): whether to park.
    stop: Option<bool>,
    /// A stop that came while the session could not take it (another stop under way, a
    /// resynchronisation): taken by the next pause, or as soon as the session is ready.
    stop_pending: Option<bool>,
    /// A [`Control::StopAfterStroke`] waits for the stroke's end: whether to park.
    finish_stroke: Option<bool>,
    /// The checkpoint this run resumed from: what a checkpoint taken during the pen-up move
    /// back to it stands for ([`REENTRY_VERTEX`]).
    reentry: Option<Checkpoint>,
    /// The last pen item fed lowered the pen.
    pen_fed_down: bool,
    /// Where the last finished move ended.
    last_end: Option<MotorSteps>,
    /// Drawn by moves a stop cut short (the session counts finished moves only), mm: added to
    /// the distances reported.
    cut_short_mm: f64,
    /// [`Progress::pen_down`] so far.
    pen_down: Duration,
    /// The session's execution time of what is finished, at the last progress: the time since
    /// then went to the move just finished (and to a pen movement finished before it).
    planned_seen: Duration,
    /// Converts positions for that.
    kinematics: plotty_motion::kinematics::Kinematics,
    /// A resumed plot: what the plan had done before its checkpoint.
    before: Before,
    /// The last motor supply reading, and whether it was low.
    power: Option<(u16, bool)>,
    /// The supply dropped since the last look ([`Event::PowerLost`]): the carriage may not be
    /// where the counters say.
    power_lost: bool,
    /// Turn the motors off when the run ends (after a power loss), so no later run trusts the
    /// position.
    motors_off: bool,
}

/// The part of a plot done before the checkpoint a run resumed from (zero for a fresh plot).
#[derive(Clone, Copy, Debug, Default)]
struct Before {
    done: Duration,
    drawn_mm: f64,
    distance_mm: f64,
    /// The way back to the checkpoint and the pen drop there: time of this run that is not
    /// progress of the plot.
    overhead: Duration,
}

impl<'a, 'e, L: Link> Io<'a, 'e, L> {
    fn new(
        link: &'a mut L,
        session: Session,
        controls: &'a Receiver<Control>,
        events: &'e mut dyn FnMut(RunEvent),
        program: &'a Program,
        reentry: Option<Checkpoint>,
    ) -> Self {
        let checkpoint_at = link.now();
        Self {
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
            checkpoint_at,
            idle: None,
            planned: Duration::ZERO,
            abort_requested: false,
            parking: false,
            stop: None,
            stop_pending: None,
            finish_stroke: None,
            pen_fed_down: false,
            last_end: None,
            cut_short_mm: 0.0,
            pen_down: Duration::ZERO,
            planned_seen: Duration::ZERO,
            before: Before::default(),
            power: None,
            power_lost: false,
            motors_off: false,
            kinematics: plotty_motion::kinematics::Kinematics::new(
                plotty_motion::kinematics::Resolution::High,
            ),
            reentry,
        }
    }

    /// Handshake and set-up: the firmware version, the position, whether the board kept its step
    /// counters (its motors were on at the right resolution) and its accumulators.
    fn connect(&mut self) -> Result<Connection, RunError> {
        let mut firmware = None;
        loop {
            let progressed = self.pump()?;
            while let Some(e) = self.session.poll_event() {
                match e {
                    Event::Connected { version, .. } => {
                        firmware = Some(version);
                        (self.events)(RunEvent::Connected { firmware: version });
                    }
                    Event::Ready {
                        position,
                        kept_position,
                        accumulators,
                    } => {
                        let now = self.link.now();
                        self.session.reset_progress(now);
                        let firmware = firmware
                            .or_else(|| self.session.version())
                            .unwrap_or(FirmwareVersion::LATEST);
                        return Ok(Connection {
                            firmware,
                            position,
                            kept: kept_position,
                            accumulators,
                        });
                    }
                    Event::Error(e) => self.last_error = Some(e),
                    Event::Power { voltage, low } => {
                        self.power = Some((voltage, low));
                        (self.events)(RunEvent::Power { voltage, low });
                    }
                    // The set-up no longer trusts the position (the motors come on afresh).
                    Event::PowerLost => {
                        self.power_lost = true;
                        (self.events)(RunEvent::PowerLost);
                    }
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

    /// Before a resume moves anything: the carriage must be where the board's step counters say
    /// (they were kept: the motors stayed on) and inside the machine's travel.
    fn check_resume_position(
        &mut self,
        config: &PlotConfig,
        position: MotorSteps,
        kept: bool,
    ) -> Result<(), RunError> {
        let why = if kept {
            let p = config.kinematics().to_point(position);
            let (w, h) = config.axidraw.model.travel_mm();
            // One step of slack: the counters of a carriage parked at home may read -1.
            let slack = 1.0 / config.kinematics().steps_per_mm();
            let inside =
                p.x_mm >= -slack && p.y_mm >= -slack && p.x_mm <= w + slack && p.y_mm <= h + slack;
            if inside {
                return Ok(());
            }
            format!(
                "the board puts the carriage at ({:.1}, {:.1}) mm, outside the {w:.0} × {h:.0} mm \
                 travel of the {}",
                p.x_mm,
                p.y_mm,
                config.axidraw.model.name()
            )
        } else {
            // The set-up switched the motors on: off again, so the carriage can be pushed home.
            let _ = self
                .deliver(FeedItem::Motors(false))
                .and_then(|()| self.drain());
            if self.power_lost {
                "the motor supply dropped since the plot stopped (the board's power-lost latch): \
                 the motors may have slipped"
                    .to_owned()
            } else {
                "the board's motors were off (it was reset or powered off, or the motors were \
                 switched off, since the plot stopped): the carriage may have moved"
                    .to_owned()
            }
        };
        Err(RunError::PositionUnknown {
            device: self.link.name().to_owned(),
            why,
        })
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
        let next_stroke = item == FeedItem::Pen(Pen::Down);
        loop {
            self.step()?;
            if next_stroke && let Some(park) = self.finish_stroke {
                // The feed runs ahead of the machine: the next stroke waits while the one in
                // flight is drawn to its end (its `StrokeDone` stops the run), or, if it ended
                // before the request came, until everything fed has run.
                if self.session.is_idle() {
                    self.request_stop(park);
                }
                self.wait()?;
                continue;
            }
            if self.stop.is_some() {
                // Stopping: nothing more goes out; the session reports where it stopped.
                self.wait()?;
                continue;
            }
            if self.session.can_accept() {
                match self.session.push(item) {
                    Ok(()) => {
                        // An `Idle` reported before this push is stale.
                        self.idle = None;
                        if let FeedItem::Pen(pen) = item {
                            self.pen_fed_down = pen == Pen::Down;
                        }
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

    /// Waits until everything sent has executed ([`Session::is_settled`]): after a stop, until
    /// the pen is up.
    fn settle(&mut self) -> Result<(), Interrupt> {
        loop {
            self.step()?;
            if self.session.is_settled() {
                return Ok(());
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
            let mut acted = self.poll_controls();
            if let Some(park) = self.stop_pending
                && self.stop.is_none()
                && (self.session.is_ready() || self.session.is_paused())
            {
                self.request_stop(park);
                acted = true;
            }
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
                Ok(Control::Stop { park }) => {
                    self.request_stop(park);
                    acted = true;
                }
                Ok(Control::StopAfterStroke { park }) => {
                    if self.drawing() {
                        self.finish_stroke = Some(park);
                    } else {
                        self.request_stop(park);
                    }
                    acted = true;
                }
                Ok(Control::Pause | Control::Resume) => {}
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return acted,
            }
        }
    }

    /// Whether a stroke is being drawn: the pen is down, or the last move fed draws.
    fn drawing(&self) -> bool {
        self.pen_fed_down || self.last_progress.is_some_and(|p| p.pen == Pen::Down)
    }

    /// Stops now with the pen up; the run ends with [`Outcome::Stopped`] once the session
    /// reports where.
    fn request_stop(&mut self, park: bool) {
        self.finish_stroke = None;
        if self.abort_requested || self.stop.is_some() {
            return;
        }
        let now = self.link.now();
        // Already paused (a button, low power) with its report still to come: that report ends
        // the run.
        if self.session.pause(now).is_ok() || self.session.is_paused() {
            self.stop = Some(park);
            self.stop_pending = None;
        } else {
            // Another stop is under way (a pause being taken) or the session resynchronises:
            // the stop is kept, not dropped (a dropped shutdown stop left the plot waiting for
            // a user who would never answer).
            self.stop_pending = Some(park);
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
                if let Some(park) = self.finish_stroke.take() {
                    self.request_stop(park);
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
            Event::Aborted {
                position,
                accumulators,
            } => {
                self.interrupt = Some(Interrupt::Aborted(position, accumulators));
            }
            Event::Error(e) => {
                self.last_error = Some(e);
                if self.session.is_failed() {
                    self.interrupt = Some(Interrupt::Fail(self.device_error(None)));
                }
            }
            Event::Power { voltage, low } => {
                self.power = Some((voltage, low));
                (self.events)(RunEvent::Power { voltage, low });
            }
            // A plot in progress pauses next ([`PauseReason::PowerLost`]); whatever the run is
            // doing, the motors go off at its end.
            Event::PowerLost => {
                self.power_lost = true;
                self.motors_off = true;
                (self.events)(RunEvent::PowerLost);
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
        self.last_end = Some(p.position);
        // The firmware time since the last finished move: this move's, and a pen lowering
        // finished just before a stroke's first move (a raise is followed by a pen-up move).
        let since = p.planned - self.planned_seen;
        self.planned_seen = p.planned;
        if p.pen == Pen::Down {
            self.pen_down += since;
        }
        if self.parking {
            // Parking after an abort or a stop is not progress of the plot.
            return;
        }
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
            position: p.position,
            distance_mm: self.before.distance_mm + p.distance_mm + self.cut_short_mm,
            drawn_mm: self.before.drawn_mm + p.drawn_mm + self.cut_short_mm,
            elapsed: p.elapsed,
            // (`Duration`'s subtraction saturates: no progress until the way back is done.)
            done: self.before.done + (p.planned - self.before.overhead),
            planned: self.planned,
            pen_down: self.pen_down,
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
        if self.parking {
            // The park after an abort or a stop is not part of the plot: the checkpoint of
            // where the plot stopped stands.
            return;
        }
        let tag = Tag {
            stroke: p.stroke,
            vertex: p.vertex,
        };
        if let Some(c) = self.checkpoint_after(tag, p.pen, self.session.position()) {
            (self.events)(RunEvent::Checkpoint {
                checkpoint: c,
                // On the way back the carriage is off the program (coming from home, from
                // where a pause left it): a crash there must not be searched for ahead.
                streaming: tag.vertex != REENTRY_VERTEX,
            });
        }
    }

    /// The checkpoint of a plot whose last finished move was tagged `tag`: that move's target
    /// (reached, or still ahead if the move was one phase of its block).
    fn checkpoint_after(&self, tag: Tag, pen: Pen, position: MotorSteps) -> Option<Checkpoint> {
        if tag.vertex == REENTRY_VERTEX {
            // On the way back to where the plot stopped: nothing was drawn since.
            return self.reentry;
        }
        self.program.checkpoint(tag, pen, position)
    }

    /// A pause: planned (pen change), requested, the button, or an error.
    fn on_paused(&mut self, reason: PauseReason, resume: ResumePoint) -> Result<(), Interrupt> {
        if self.stop.is_none()
            && let Some(park) = self.stop_pending.take()
        {
            // A stop came while this pause was being taken: the pause ends the run.
            self.stop = Some(park);
        }
        if resume.dropped
            && resume.pen == Pen::Down
            && let Some(from) = self.last_end
        {
            // The move in flight drew up to where the stop caught it; the session counts only
            // finished moves, and the resume draws just the rest.
            let mm = self
                .kinematics
                .to_point(from)
                .distance_to(self.kinematics.to_point(resume.position));
            self.cut_short_mm += mm;
            if let Some(p) = &mut self.last_progress {
                p.drawn_mm += mm;
                p.distance_mm += mm;
            }
            self.last_end = Some(resume.position);
        }
        match reason {
            PauseReason::Error => {
                let checkpoint = self.resume_checkpoint(&resume);
                self.interrupt = Some(Interrupt::Fail(self.device_error(checkpoint)));
                Ok(())
            }
            PauseReason::PowerLost => {
                // The stop turned the motors off (`ES,1`). Not parked: the way home would be
                // measured from counters that may be wrong.
                self.motors_off = false;
                self.settle()?;
                let (checkpoint, _, _) = self.resume_from(&resume);
                (self.events)(RunEvent::Paused {
                    cause: PauseCause::PowerLost,
                    checkpoint,
                });
                self.end_stopped(checkpoint, &resume, false)?;
                Ok(())
            }
            _ if self.abort_requested => Ok(()),
            _ if self.stop.is_some() => {
                let park = self.stop.unwrap_or(false);
                let checkpoint = match reason {
                    // Parked already (a pen change waits at home); what the session still
                    // holds of the next layer is dropped with it.
                    PauseReason::Planned => {
                        let c = self.after_pen_change(resume.position);
                        self.end_stopped(c, &resume, false)?;
                        return Ok(());
                    }
                    _ => self.resume_from(&resume).0,
                };
                self.end_stopped(checkpoint, &resume, park)?;
                Ok(())
            }
            PauseReason::Planned => {
                // The layer's marker comes before its parking move and pause.
                let layer = self.layer.unwrap_or(0);
                (self.events)(RunEvent::PenChange { layer });
                match self.wait_for_user()? {
                    Control::Resume => {
                        self.resume_session()?;
                        (self.events)(RunEvent::Resumed);
                    }
                    Control::Stop { .. } | Control::StopAfterStroke { .. } => {
                        // Parked already: a pen change waits at home.
                        let checkpoint = self.after_pen_change(resume.position);
                        self.end_stopped(checkpoint, &resume, false)?;
                    }
                    _ => self.request_abort(),
                }
                Ok(())
            }
            PauseReason::Requested | PauseReason::Button | PauseReason::LowPower => {
                // Reported once true: the pen raise has executed.
                self.settle()?;
                let cause = match reason {
                    PauseReason::Button => PauseCause::Button,
                    PauseReason::LowPower => PauseCause::LowPower,
                    _ => PauseCause::Requested,
                };
                let (checkpoint, _, _) = self.resume_from(&resume);
                (self.events)(RunEvent::Paused { cause, checkpoint });
                let mut answer = self.wait_for_user()?;
                while answer == Control::Resume && self.power.is_some_and(|(_, low)| low) {
                    // Still no supply (the polls go on while paused): moving now would lose
                    // steps. The plot stays paused and says why again.
                    (self.events)(RunEvent::Paused {
                        cause: PauseCause::LowPower,
                        checkpoint,
                    });
                    answer = self.wait_for_user()?;
                }
                match answer {
                    Control::Resume => {
                        self.resume_session()?;
                        if resume.dropped {
                            self.interrupt = Some(Interrupt::Resume(resume));
                        } else {
                            (self.events)(RunEvent::Resumed);
                        }
                    }
                    Control::Stop { park } | Control::StopAfterStroke { park } => {
                        self.end_stopped(checkpoint, &resume, park)?;
                    }
                    _ => self.request_abort(),
                }
                Ok(())
            }
        }
    }

    /// Resumes the paused session; a session that is not paused any more fails the run
    /// (nothing is said to have resumed that did not).
    fn resume_session(&mut self) -> Result<(), Interrupt> {
        let now = self.link.now();
        self.session.resume(now).map_err(|error| {
            Interrupt::Fail(RunError::Resume {
                device: self.link.name().to_owned(),
                error,
            })
        })
    }

    /// Services the session until the user answers (Resume or Abort). A resume that comes while
    /// the session resynchronises after a damaged reply waits until it is paused again.
    fn wait_for_user(&mut self) -> Result<Control, Interrupt> {
        let mut resume_waiting = false;
        loop {
            if resume_waiting && self.session.is_paused() {
                return Ok(Control::Resume);
            }
            self.pump().map_err(|e| Interrupt::Fail(e.into()))?;
            while let Some(e) = self.session.poll_event() {
                match e {
                    Event::Power { voltage, low } => {
                        self.power = Some((voltage, low));
                        (self.events)(RunEvent::Power { voltage, low });
                    }
                    Event::Error(e) => {
                        self.last_error = Some(e);
                        if self.session.is_failed() {
                            return Err(Interrupt::Fail(self.device_error(None)));
                        }
                    }
                    Event::Aborted {
                        position,
                        accumulators,
                    } => return Err(Interrupt::Aborted(position, accumulators)),
                    Event::PowerLost => {
                        // While waiting, stopped with the pen up: the motors may have slipped,
                        // so the run ends here with them off.
                        self.power_lost = true;
                        self.motors_off = true;
                        (self.events)(RunEvent::PowerLost);
                        return Ok(Control::Stop { park: false });
                    }
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
                Some(Control::Resume) if !self.session.is_paused() => resume_waiting = true,
                Some(
                    c @ (Control::Resume
                    | Control::Abort
                    | Control::Stop { .. }
                    | Control::StopAfterStroke { .. }),
                ) => return Ok(c),
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

    /// The run ends stopped at `checkpoint` (reported as a pause first, so it is recorded
    /// before any parking moves the carriage).
    fn end_stopped(
        &mut self,
        checkpoint: Checkpoint,
        resume: &ResumePoint,
        park: bool,
    ) -> Result<(), Interrupt> {
        // Reported once true: the pen raise has executed.
        self.settle()?;
        self.finish_stroke = None;
        self.stop = Some(park);
        (self.events)(RunEvent::Paused {
            cause: PauseCause::Stopped,
            checkpoint,
        });
        self.interrupt = Some(Interrupt::Stopped {
            checkpoint,
            at: resume.position,
            accumulators: resume.accumulators,
            park,
        });
        Ok(())
    }

    /// The checkpoint after the pen change of the layer reached last: its first stroke, from
    /// the start (the parking and the wait are done).
    fn after_pen_change(&self, position: MotorSteps) -> Checkpoint {
        let layer = self.layer.unwrap_or(0);
        let stroke = self
            .program
            .layers()
            .get(layer)
            .map_or(0, |l| l.strokes.start);
        Checkpoint {
            layer,
            stroke,
            vertex: 0,
            pen_down: false,
            position: [position.m1, position.m2],
        }
    }

    /// The checkpoint a session resume point stands for: its first unfinished move, or after
    /// the last move fed if all finished.
    fn resume_checkpoint(&self, r: &ResumePoint) -> Option<Checkpoint> {
        if r.tag.is_some_and(|t| t.vertex == REENTRY_VERTEX) {
            return self.reentry;
        }
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
        accumulators: Option<[u32; 2]>,
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
            accumulators.unwrap_or([0, 0]),
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
            Err(Interrupt::Aborted(position, _)) => Ok(position),
            Err(Interrupt::Resume(r)) => Ok(r.position),
            Err(Interrupt::Stopped { at, .. }) => Ok(at),
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::sync::mpsc;

    use plotty_fw_sim::FirmwareVersion as SimVersion;

    use super::*;
    use crate::devices::link::sim::SimLink;
    use crate::plot::prepare;
    use crate::settings::Settings;

    /// Three squares: many moves, so controls arrive while it draws.
    const SQUARES: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="100mm" height="100mm" viewBox="0 0 100 100">
  <path d="M10 10 H30 V30 H10 Z" stroke="black" fill="none"/>
  <path d="M50 10 H70 V30 H50 Z" stroke="black" fill="none"/>
  <path d="M10 50 H30 V70 H10 Z" stroke="black" fill="none"/>
</svg>"#;

    /// Runs `body` on a thread of its own and fails the test if it does not end (a run that
    /// waits forever is the bug these tests look for).
    fn within<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
        let (done, result) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(body());
        });
        result
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("the run never ended")
    }

    fn prepared(dir: &std::path::Path) -> (prepare::Prepared, PlotConfig) {
        let file = dir.join("squares.svg");
        std::fs::write(&file, SQUARES).unwrap();
        let config = PlotConfig::from_settings(&Settings::defaults_for(dir));
        (prepare::prepare(&file, &config, None).unwrap(), config)
    }

    #[test]
    fn a_stop_that_comes_while_a_pause_is_taken_ends_the_run() {
        let (outcome, causes) = within(|| {
            let dir = tempfile::tempdir().unwrap();
            let (p, config) = prepared(dir.path());
            let plot = Plot {
                program: &p.program,
                config: &config,
                session: session_config(&config, std::time::Duration::from_secs(5)),
                start: Start::Beginning,
                estimate: None,
                ran_on: false,
            };
            let mut sim = SimLink::new(SimVersion::V3_0_3);
            let (tx, rx) = mpsc::channel();
            let (mut sent, mut causes) = (false, Vec::new());
            let report = run(&mut sim, plot, &rx, &mut |e| match e {
                RunEvent::Progress(_) if !sent => {
                    // A user's pause, and the shutdown's stop before the pause is done.
                    sent = true;
                    tx.send(Control::Pause).unwrap();
                    tx.send(Control::Stop { park: false }).unwrap();
                }
                RunEvent::Paused { cause, .. } => {
                    causes.push(cause);
                    if cause == PauseCause::Requested {
                        // The stop was lost: end the run rather than wait forever.
                        let _ = tx.send(Control::Abort);
                    }
                }
                _ => {}
            })
            .unwrap();
            (report.outcome, causes)
        });
        assert!(matches!(outcome, Outcome::Stopped(_)), "{outcome:?}");
        assert_eq!(causes, vec![PauseCause::Stopped]);
    }

    /// The simulator, with the first reply after `armed` damaged and a resume sent right then
    /// (the user resumes while the session resynchronises); time passes as on a real port.
    struct Garbling {
        sim: SimLink,
        armed: Rc<Cell<bool>>,
        controls: mpsc::Sender<Control>,
        fired: bool,
    }

    impl Link for Garbling {
        fn name(&self) -> &str {
            self.sim.name()
        }
        fn now(&mut self) -> plotty_motion::time::Instant {
            self.sim.now()
        }
        fn write(&mut self, bytes: &[u8]) -> Result<usize, crate::devices::link::DeviceError> {
            self.sim.write(bytes)
        }
        fn read(&mut self, out: &mut Vec<u8>) -> Result<(), crate::devices::link::DeviceError> {
            let start = out.len();
            self.sim.read(out)?;
            if self.armed.get() && !self.fired && out.len() > start {
                self.fired = true;
                out.truncate(start);
                out.extend_from_slice(b"#garbled#\r\n");
                let _ = self.controls.send(Control::Resume);
            }
            Ok(())
        }
        fn wait(
            &mut self,
            deadline: Option<plotty_motion::time::Instant>,
        ) -> Result<(), crate::devices::link::DeviceError> {
            self.sim.wait(deadline)
        }
        fn is_simulated(&self) -> bool {
            false
        }
    }

    #[test]
    fn a_resume_while_the_session_resynchronises_waits_for_it_and_the_plot_ends() {
        let (outcome, resumed) = within(|| {
            let dir = tempfile::tempdir().unwrap();
            let (p, config) = prepared(dir.path());
            let plot = Plot {
                program: &p.program,
                config: &config,
                session: session_config(&config, std::time::Duration::from_secs(5)),
                start: Start::Beginning,
                estimate: None,
                ran_on: false,
            };
            let (tx, rx) = mpsc::channel();
            let armed = Rc::new(Cell::new(false));
            let mut link = Garbling {
                sim: SimLink::new(SimVersion::V3_0_3),
                armed: Rc::clone(&armed),
                controls: tx.clone(),
                fired: false,
            };
            let (mut sent, mut resumed) = (false, 0);
            let report = run(&mut link, plot, &rx, &mut |e| match e {
                RunEvent::Progress(_) if !sent => {
                    sent = true;
                    tx.send(Control::Pause).unwrap();
                }
                RunEvent::Paused { .. } => armed.set(true),
                RunEvent::Resumed => resumed += 1,
                _ => {}
            })
            .unwrap();
            (report.outcome, resumed)
        });
        assert_eq!(outcome, Outcome::Completed);
        assert_eq!(resumed, 1);
    }
}
