//! One plot on a device: the runner on a thread of its own, and the async side that turns its
//! events into records (transitions through the ledger, resume points in the database) and into
//! `job_progress` / `device_status` events.
//!
//! - `Started` → `ARMED → PLOTTING` (a fresh run); a run resumed from a stored point is already
//!   `PLOTTING`.
//! - `Progress` → `job_progress` (at most [`super::progress::INTERVAL`] apart) and, with each,
//!   a `device_status` with the carriage's position and pen.
//! - `Checkpoint` → the job's resume point (each one the runner sends: at every stroke end and at
//!   least every second; a backlog is coalesced to the newest), searchable after a crash only if
//!   the run streamed past it; a pause's, a pen change's and a resume's start point are stored
//!   as not searchable, and a resume clears the plotter's points before it moves anything.
//! - `PenChange` → `PAUSED` (reason `pen_change`, the next layer in the metadata); `Paused` → `PAUSED` (reason `user`, or
//!   `shutdown` while the daemon stops) with the resume point, and the pause request is answered.
//! - `Aborted` (the board stopped and raised the pen) → `ABORTED`, and the abort is answered;
//!   the carriage parks after.
//! - The end: `COMPLETED`; an abort not yet recorded; a device failure → the error recorded and
//!   `PAUSED` (reason `device_error`) with the resume point; an unplannable plot → `FAILED`.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

use plotty_motion::kinematics::MotorSteps;
use plotty_motion::plan::Pen;
use serde_json::json;
use tokio::sync::mpsc as tokio_mpsc;

use super::link::AnyLink;
use super::progress::ProgressReporter;
use super::task::{Inner, Run, Want, error};
use crate::events::{DaemonEvent, DeviceState, JobProgress};
use crate::job::{JobEvent, JobId, JobState, Reason};
use crate::plot::runner::{self, Outcome, PauseCause, RunError, RunEvent, RunReport};
use crate::plot::{Checkpoint, Control, Plot, PlotConfig, Start};
use crate::queue::pipeline::{self, PreparedJob};
use crate::queue::{DeviceError, DeviceReply};
use crate::store::{JobRecord, MachinePosition, ResumePoint};

/// What a job paused for low power and the device status say.
const LOW_POWER: &str = "the motor supply is low or off: check that the plotter's power supply \
                         is plugged in and switched on, then resume";
/// Why a plot stopped after a drop of the motor supply (the 3.x power-lost latch).
const POWER_LOST: &str = "the motor supply dropped since the last check, however briefly: the \
                          motors may have slipped, so they are off now. Check the drawing, push \
                          the carriage into its home corner, run `plotty device home`, then resume";
/// How a low-power message starts (to clear it once the supply is back).
const LOW_POWER_PREFIX: &str = "the motor supply is low";

/// What the runner thread sends.
enum Msg {
    Event(RunEvent),
    Done(Result<RunReport, RunError>, AnyLink),
}

/// Marks the device busy with `job` (before any await, so no second job can be given to it);
/// returns the runner's end of the control channel.
///
/// # Errors
/// The device is busy, in error, or stopping.
pub(super) fn claim(inner: &Inner, job: &JobId) -> Result<mpsc::Receiver<Control>, DeviceError> {
    let (tx, rx) = mpsc::channel();
    {
        let mut st = inner.lock();
        if st.shutting_down {
            return Err(error("the daemon is stopping"));
        }
        if let Some(r) = &st.run {
            return Err(error(format!(
                "{} is busy with job {}",
                inner.device_id(),
                r.job_id
            )));
        }
        st.run = Some(Run {
            job_id: job.clone(),
            controls: tx,
            paused: false,
            abort_recorded: false,
            waiters: Vec::new(),
        });
    }
    inner.update_status(|s| {
        s.status = DeviceState::Busy;
        s.current_job_id = Some(job.clone());
    });
    Ok(rx)
}

/// Resumes a `PAUSED` job this device is not running (interrupted by a crash, stopped by a
/// shutdown or a device failure) from its stored resume point.
pub(super) async fn resume_idle(
    inner: Arc<Inner>,
    job_id: JobId,
) -> Result<DeviceReply, DeviceError> {
    let job = inner
        .ledger
        .store()
        .job(job_id.as_str())
        .await
        .map_err(|e| error(e.to_string()))?
        .ok_or_else(|| error(format!("job {job_id} does not exist")))?;
    if job.state != JobState::Paused {
        return Err(error(format!("job {job_id} is {}, not PAUSED", job.state)));
    }
    // Only a point stored while a run streamed along the program (and that nothing has moved
    // the carriage since) says the board may have run on from it: a clean stop, a manual
    // action or an earlier resume stored it as not searchable.
    let ran_on = job.resume.as_ref().is_some_and(|p| p.streaming);
    let controls = claim(&inner, &job_id)?;
    // This attempt may move the carriage (the way back to the point, a stroke): should it die
    // before storing a point of its own, the next one must not search from this one (nor from
    // any other point on this plotter). Stored before anything moves; if it cannot be stored,
    // nothing moves.
    let cleared = inner
        .ledger
        .store()
        .clear_streaming(&inner.device_id())
        .await;
    if let Err(e) = cleared {
        release(&inner, DeviceState::Connected, None);
        return Err(error(format!("cannot store the resume point: {e}")));
    }
    // Answered once the board has said where the carriage is and the plot moves (or why not).
    let (tx, started) = tokio::sync::oneshot::channel();
    if let Some(r) = &mut inner.lock().run {
        r.waiters.push((Want::Started, tx));
    }
    if let Err(e) = inner
        .record(&job_id, JobEvent::Resume, Reason::User, None)
        .await
    {
        release(&inner, DeviceState::Connected, None);
        return Err(error(e.to_string()));
    }
    let start = job
        .resume
        .as_ref()
        .map_or(Start::Beginning, |p| Start::At(checkpoint_of(p)));
    tracing::info!(%job_id, ?start, "resuming the job (its recorded point; a run that lost the board looks for where the pen stopped first)");
    let task = Arc::clone(&inner);
    inner
        .shutdown
        .spawn(self::start(task, job, None, start, false, ran_on, controls));
    started.await.unwrap_or_else(|_| {
        Err(error(format!(
            "the plot of job {job_id} ended before it resumed"
        )))
    })
}

/// Runs `job` (claimed with [`claim`]) from `start`; `armed`: the job is `ARMED` and becomes
/// `PLOTTING` when the plot starts (else it already is); `ran_on`: see [`Plot::ran_on`].
pub(super) async fn start(
    inner: Arc<Inner>,
    job: JobRecord,
    prepared: Option<Arc<PreparedJob>>,
    start: Start,
    armed: bool,
    ran_on: bool,
    controls: mpsc::Receiver<Control>,
) {
    let id = job.id.clone();
    let settings = inner.settings();
    let prepared = match prepared {
        Some(p) => p,
        None => {
            // On a farm, a job submitted to another daemon is built from the SVG in the database.
            let job = match crate::farm::source::with_local_path(
                &inner.ledger,
                &settings.jobs_dir(),
                job.clone(),
            )
            .await
            {
                Ok(j) => j,
                Err(e) => return fail(&inner, &id, e.to_string()).await,
            };
            let s = Arc::clone(&settings);
            match tokio::task::spawn_blocking(move || pipeline::build(&job, &s)).await {
                Ok(Ok(p)) => Arc::new(p),
                Ok(Err(e)) => return fail(&inner, &id, e.to_string()).await,
                Err(e) => return fail(&inner, &id, e.to_string()).await,
            }
        }
    };
    // The job's own options (speeds, pen heights, model) over the current settings.
    let config = match pipeline::job_config(&settings, &prepared.options) {
        Ok(c) => c,
        Err(e) => return fail(&inner, &id, e.to_string()).await,
    };
    if start == Start::Beginning {
        page_delay(&inner, &id, prepared.options.page_delay).await;
    }
    let held = inner
        .link
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    let link = match held {
        Some(l) => Ok(l),
        None => {
            let opener = inner.opener();
            tokio::task::spawn_blocking(move || opener.open())
                .await
                .unwrap_or_else(|e| {
                    Err(crate::devices::link::DeviceError::Io {
                        port: inner.device_id(),
                        detail: e.to_string(),
                    })
                })
        }
    };
    let mut link = match link {
        Ok(l) => l,
        Err(e) => {
            let mut pump = Pump::new(Arc::clone(&inner), id, prepared, armed);
            let state = inner.unreachable_state();
            pump.device_failed(e.to_string(), None, state).await;
            return;
        }
    };
    let session = runner::session_config(&config, settings.device.timeout);
    let (tx, mut rx) = tokio_mpsc::unbounded_channel();
    let plot_job = Arc::clone(&prepared);
    let spawned = std::thread::Builder::new()
        .name("plotty-plot".into())
        .spawn(move || {
            let plot = Plot {
                program: &plot_job.program,
                config: &config,
                session,
                start,
                estimate: Some(plot_job.estimate.clone()),
                ran_on,
            };
            let events = tx.clone();
            let result = runner::run(&mut link, plot, &controls, &mut |e| {
                let _ = events.send(Msg::Event(e));
            });
            let _ = tx.send(Msg::Done(result, link));
        });
    let mut pump = Pump::new(Arc::clone(&inner), id, prepared, armed);
    if let Err(e) = spawned {
        pump.device_failed(
            format!("cannot start the plot thread: {e}"),
            None,
            DeviceState::Error,
        )
        .await;
        return;
    }
    pump.run(&mut rx).await;
}

/// The async side of a run.
struct Pump {
    inner: Arc<Inner>,
    job_id: JobId,
    job: Arc<PreparedJob>,
    armed: bool,
    progress: ProgressReporter,
    /// The newest checkpoint not yet stored, and whether the run streamed past it
    /// ([`crate::store::ResumePoint::streaming`]).
    pending: Option<(Checkpoint, bool)>,
    /// Whether the newest checkpoint the run sent was streaming.
    streaming: bool,
    /// The newest checkpoint known.
    last: Option<Checkpoint>,
}

impl Pump {
    fn new(inner: Arc<Inner>, job_id: JobId, job: Arc<PreparedJob>, armed: bool) -> Self {
        Self {
            inner,
            progress: ProgressReporter::new(job_id.clone()),
            job_id,
            job,
            armed,
            pending: None,
            streaming: false,
            last: None,
        }
    }

    async fn run(&mut self, rx: &mut tokio_mpsc::UnboundedReceiver<Msg>) {
        loop {
            let Some(msg) = rx.recv().await else {
                // The thread ended without its last message (it panicked).
                self.device_failed(
                    "the plot thread ended abnormally".into(),
                    self.last,
                    DeviceState::Error,
                )
                .await;
                return;
            };
            match msg {
                Msg::Event(e) => self.on_event(e).await,
                Msg::Done(result, link) => {
                    self.flush().await;
                    self.finish(result, link).await;
                    return;
                }
            }
            if rx.is_empty() {
                self.flush().await;
            }
        }
    }

    async fn on_event(&mut self, event: RunEvent) {
        // Every event of a run comes from the board's replies: it answered just now.
        self.inner.touch();
        match event {
            RunEvent::Connected { firmware } => {
                self.inner
                    .update_status(|s| s.firmware_version = Some(firmware.to_string()));
            }
            RunEvent::Started { .. } => {
                if self.inner.opener().device_type() == "simulator" {
                    // Recorded before the job shows PLOTTING: whatever becomes of it, it
                    // never passes for a drawn plot.
                    self.mark_simulated().await;
                }
                if self.armed {
                    self.armed = false;
                    self.transition(JobEvent::Start, Reason::Pipeline, None)
                        .await;
                }
                self.answer(Want::Started, Ok("resumed"));
            }
            RunEvent::Layer { index } => {
                if let Some(p) = self.progress.layer(index, Instant::now()) {
                    self.publish(DaemonEvent::JobProgress(JobProgress {
                        device_id: Some(self.inner.device_id()),
                        ..p
                    }));
                }
            }
            RunEvent::Progress(p) => {
                if let Some(report) = self.progress.update(&self.job, &p, Instant::now()) {
                    self.publish(DaemonEvent::JobProgress(JobProgress {
                        device_id: Some(self.inner.device_id()),
                        ..report
                    }));
                    // The carriage's position with each report (so at the progress rate, not
                    // per move): the web UI draws the pen's trail over the preview from it.
                    let settings = self.inner.settings();
                    let point = PlotConfig::from_settings(&settings)
                        .kinematics()
                        .to_point(p.position);
                    self.inner.update_status(|s| {
                        s.position_mm = Some((point.x_mm, point.y_mm));
                        s.pen_up = Some(p.pen == Pen::Up);
                    });
                }
            }
            RunEvent::Checkpoint {
                checkpoint: c,
                streaming,
            } => {
                self.pending = Some((c, streaming));
                self.streaming = streaming;
                self.last = Some(c);
            }
            RunEvent::Resuming {
                checkpoint,
                stored,
                located,
            } => {
                let note = crate::plot::locate::describe(&located, stored.as_ref());
                tracing::info!(job_id = %self.job_id, ?located, "{note}");
                // Stored at once, with a journal line that says where the plot went on from: a
                // crash before the next checkpoint goes on from there too.
                if let Some(checkpoint) = checkpoint {
                    self.pending = None;
                    self.streaming = false;
                    self.last = Some(checkpoint);
                    let settings = self.inner.settings();
                    let config = pipeline::job_config(&settings, &self.job.options)
                        .unwrap_or_else(|_| PlotConfig::from_settings(&settings));
                    // The way back to it is not the program: not searchable until the run
                    // streams past it.
                    let point = resume_point(&checkpoint, &config, false);
                    if let Err(e) = self
                        .inner
                        .ledger
                        .checkpoint_noted(self.job_id.as_str(), point, Some(&note))
                        .await
                    {
                        tracing::error!(job_id = %self.job_id, error = %e, "cannot store the resume point");
                    }
                }
            }
            RunEvent::PenChange { layer } => {
                // The carriage waits at home for the user, who may move it: the newest point
                // is stored as not searchable.
                self.streaming = false;
                if let Some(c) = self.last {
                    self.pending = Some((c, false));
                }
                self.flush().await;
                self.set_paused(true);
                let next = self.job.program.layers().get(layer);
                let name = next.map(|l| l.name.clone()).unwrap_or_default();
                tracing::info!(job_id = %self.job_id, layer = %name, "pen change: waiting for resume");
                // Which pen to put in: the web UI's prompt names the layer and its colour.
                let meta = json!({
                    "device_id": self.inner.device_id(),
                    "layer": {
                        "index": layer,
                        "number": next.and_then(|l| l.number),
                        "name": name,
                        "color": next.map(|l| l.color.to_string()),
                    },
                });
                self.apply(JobEvent::Pause, Reason::PenChange, None, meta)
                    .await;
                self.inner.update_status(|s| {
                    s.pen_up = Some(true);
                });
            }
            RunEvent::Paused { cause, checkpoint } => {
                // A clean stop: the carriage stops here, or parks, and waits (for a resume, the
                // user, a restart): nothing of it runs on along the program.
                self.pending = Some((checkpoint, false));
                self.streaming = false;
                self.last = Some(checkpoint);
                self.flush_journaled().await;
                // A stop while the job waits (a pause, a pen change) only ends the run: the job
                // is PAUSED already, and its checkpoint is now the stored one.
                let already = self.inner.lock().run.as_ref().is_some_and(|r| r.paused);
                self.set_paused(true);
                if !already {
                    let (reason, error) = if cause == PauseCause::LowPower {
                        (Reason::DeviceError, Some(LOW_POWER.to_owned()))
                    } else if cause == PauseCause::PowerLost {
                        (Reason::DeviceError, Some(POWER_LOST.to_owned()))
                    } else if self.inner.lock().shutting_down {
                        (Reason::Shutdown, None)
                    } else {
                        (Reason::User, None)
                    };
                    let cause = match cause {
                        PauseCause::Requested => "requested",
                        PauseCause::Button => "button",
                        PauseCause::Stopped => "stopped",
                        PauseCause::LowPower => "low_power",
                        PauseCause::PowerLost => "power_lost",
                    };
                    let meta = json!({ "device_id": self.inner.device_id(), "cause": cause });
                    self.apply(JobEvent::Pause, reason, error, meta).await;
                }
                self.inner.update_status(|s| s.pen_up = Some(true));
                self.answer(Want::Paused, Ok("paused"));
            }
            RunEvent::Resumed => {}
            RunEvent::Power { voltage, low } => {
                self.inner.update_status(|s| {
                    s.motor_supply = Some(crate::events::MotorSupply {
                        reading: voltage,
                        low,
                    });
                    let ours = s
                        .error_message
                        .as_deref()
                        .is_some_and(|m| m.starts_with(LOW_POWER_PREFIX));
                    if low && !ours {
                        s.error_count = s.error_count.saturating_add(1);
                        s.error_message = Some(format!("{LOW_POWER} (QC reads {voltage})"));
                    } else if !low && ours {
                        s.error_message = None;
                    }
                });
            }
            RunEvent::PowerLost => {
                tracing::warn!(job_id = %self.job_id, "{POWER_LOST}");
                self.inner.update_status(|s| {
                    s.error_count = s.error_count.saturating_add(1);
                    s.error_message = Some(POWER_LOST.to_owned());
                });
            }
            // Accepted, not done: the job is recorded ABORTED, the pen up and the request
            // answered once the board confirms ([`RunEvent::Aborted`]).
            RunEvent::Aborting => {}
            RunEvent::Aborted => {
                self.record_abort().await;
                self.inner.update_status(|s| s.pen_up = Some(true));
                self.answer(Want::Stopped, Ok("aborted"));
            }
        }
    }

    async fn finish(&mut self, result: Result<RunReport, RunError>, link: AnyLink) {
        match result {
            Ok(RunReport {
                outcome: Outcome::Stopped(_),
                ..
            }) => {
                // The job stays PAUSED with its checkpoint (stored at the pause): it holds the
                // plotter until it is resumed or aborted.
                self.put_back(link);
                self.end(DeviceState::Connected, None, Ok("stopped"));
            }
            Ok(report) if report.outcome == Outcome::Completed => {
                let done = self.progress.finished(
                    &self.job,
                    report.drawn_mm,
                    report.pen_down.as_secs_f64(),
                    report.duration.as_secs_f64(),
                );
                self.publish(DaemonEvent::JobProgress(JobProgress {
                    device_id: Some(self.inner.device_id()),
                    ..done
                }));
                let simulated = self.inner.opener().device_type() == "simulator";
                if simulated {
                    tracing::warn!(job_id = %self.job_id, "job completed on the simulator: nothing was drawn on paper");
                }
                let meta = json!({
                    "device_id": self.inner.device_id(),
                    "simulated": simulated,
                    "duration_s": report.duration.as_secs_f64(),
                    "estimate_s": report.estimate.total.as_secs_f64(),
                    "drawn_mm": report.drawn_mm,
                    "distance_mm": report.distance_mm,
                    "firmware": report.firmware.to_string(),
                });
                self.apply(JobEvent::Complete, Reason::Finished, None, meta)
                    .await;
                self.put_back(link);
                self.end(DeviceState::Connected, None, Ok("completed"));
            }
            Ok(_) => {
                self.record_abort().await;
                self.put_back(link);
                self.end(DeviceState::Connected, None, Ok("aborted"));
            }
            Err(e) => {
                let checkpoint = match &e {
                    RunError::Device { checkpoint, .. } => checkpoint.or(self.last),
                    _ => self.last,
                };
                match e {
                    RunError::Link(_)
                    | RunError::Connect { .. }
                    | RunError::Device { .. }
                    | RunError::Resume { .. } => {
                        // The link is dropped: the next run opens it again. A link that failed
                        // is the board gone (`disconnected`, `offline` without its port); a
                        // board that answered wrongly is in `error`.
                        drop(link);
                        let state = if matches!(e, RunError::Link(_)) {
                            self.inner.unreachable_state()
                        } else {
                            DeviceState::Error
                        };
                        self.device_failed(e.to_string(), checkpoint, state).await;
                    }
                    RunError::LowPower { .. } => {
                        // Nothing moved; the board answers: the job waits (READY again if it
                        // never started, else PAUSED) and the device says why.
                        let message = e.to_string();
                        tracing::warn!(job_id = %self.job_id, error = %message, "not plotted");
                        let meta = json!({ "device_id": self.inner.device_id() });
                        if self.state().await == Some(JobState::Armed) {
                            // Back at READY it waits for `plotty start` once the supply is back
                            // (not handed to the plotter again and again meanwhile): held
                            // before the queue sees it READY.
                            self.hold_for_start().await;
                        }
                        self.set_aside(&message, meta).await;
                        self.put_back(link);
                        self.end(DeviceState::Connected, Some(message.clone()), Err(message));
                    }
                    RunError::PositionUnknown { .. } | RunError::OutOfTravel { .. } => {
                        // Nothing moved: the job waits PAUSED for the user to home the carriage.
                        let message = e.to_string();
                        tracing::warn!(job_id = %self.job_id, error = %message, "not resumed");
                        self.apply(
                            JobEvent::Pause,
                            Reason::DeviceError,
                            Some(message.clone()),
                            json!({ "device_id": self.inner.device_id() }),
                        )
                        .await;
                        self.put_back(link);
                        self.end(DeviceState::Connected, None, Err(message));
                    }
                    RunError::Plan(_) | RunError::Feed { .. } | RunError::Config(_) => {
                        let message = e.to_string();
                        self.apply(
                            JobEvent::Fail,
                            Reason::Error,
                            Some(message.clone()),
                            json!({ "device_id": self.inner.device_id() }),
                        )
                        .await;
                        self.put_back(link);
                        self.end(DeviceState::Connected, None, Err(message));
                    }
                }
            }
        }
    }

    /// The device failed: the error is recorded with the job, which waits `PAUSED` (or goes back
    /// to `READY` if it never started) with its resume point.
    async fn device_failed(
        &mut self,
        message: String,
        checkpoint: Option<Checkpoint>,
        state: DeviceState,
    ) {
        tracing::error!(job_id = %self.job_id, error = %message, "the device failed during the plot");
        if let Some(c) = checkpoint {
            // The run's own last checkpoint: streaming if the run was (the board it lost may
            // have run on from there) — the newest one it sent says.
            let streaming = self.streaming && self.last == Some(c);
            self.pending = Some((c, streaming));
            self.flush_journaled().await;
        }
        let meta = json!({ "device_id": self.inner.device_id() });
        if let Err(e) = self
            .inner
            .ledger
            .device_error(self.job_id.as_str(), &message, meta.clone())
            .await
        {
            tracing::error!(job_id = %self.job_id, error = %e, "cannot record the device error");
        }
        self.set_aside(&message, meta).await;
        self.end(state, Some(message.clone()), Err(message));
    }

    /// A job the device cannot go on with: back to `READY` if it never started, else `PAUSED`
    /// (reason `device_error`), with `message`.
    async fn set_aside(&self, message: &str, meta: serde_json::Value) {
        let event = match self.state().await {
            Some(JobState::Armed) => JobEvent::Disarm,
            Some(JobState::Plotting) => JobEvent::Pause,
            _ => return,
        };
        self.apply(event, Reason::DeviceError, Some(message.to_owned()), meta)
            .await;
    }

    /// Records that the job is plotted on the simulator (nothing is drawn on paper).
    async fn mark_simulated(&self) {
        let marked = self
            .inner
            .ledger
            .store()
            .set_simulated(self.job_id.as_str())
            .await;
        if let Err(e) = marked {
            tracing::error!(job_id = %self.job_id, error = %e, "cannot record the job as simulated");
        }
    }

    /// Clears the job's `start` flag: it waits at `READY` for `plotty start`.
    async fn hold_for_start(&self) {
        let held = self
            .inner
            .ledger
            .store()
            .set_metadata(
                self.job_id.as_str(),
                "start",
                serde_json::Value::Bool(false),
            )
            .await;
        if let Err(e) = held {
            tracing::error!(job_id = %self.job_id, error = %e, "cannot hold the job for start");
        }
    }

    /// Records `ABORTED` once; not while the daemon stops (the job stays `PAUSED`, reason
    /// `shutdown`, and the run is only being wound down).
    async fn record_abort(&mut self) {
        let already = {
            let mut st = self.inner.lock();
            let stopping = st.shutting_down;
            match &mut st.run {
                Some(r) => std::mem::replace(&mut r.abort_recorded, true) || stopping,
                None => true,
            }
        };
        if !already {
            self.transition(JobEvent::Abort, Reason::User, None).await;
        }
    }

    /// The run is over: the device is free (or in error) and every waiting request answered.
    fn end(&mut self, state: DeviceState, message: Option<String>, answer: Result<&str, String>) {
        let run = {
            let mut st = self.inner.lock();
            st.last_run_end = Some(tokio::time::Instant::now());
            st.run.take()
        };
        if let Some(run) = run {
            for (_, tx) in run.waiters {
                let _ = tx.send(match &answer {
                    Ok(m) => Ok(self.reply(m)),
                    Err(e) => Err(error(e.clone())),
                });
            }
        }
        if state != DeviceState::Connected {
            self.inner.lock().connected_at = None;
        }
        self.inner.update_status(|s| {
            s.status = state;
            s.current_job_id = None;
            if let Some(m) = message {
                s.error_count = s.error_count.saturating_add(1);
                s.error_message = Some(m);
            }
        });
        if state != DeviceState::Connected {
            let inner = Arc::clone(&self.inner);
            self.inner.shutdown.spawn(reconnect(inner));
        }
    }

    fn answer(&self, want: Want, answer: Result<&str, String>) {
        let waiting: Vec<_> = {
            let mut st = self.inner.lock();
            match &mut st.run {
                Some(r) => {
                    let (now, later) = std::mem::take(&mut r.waiters)
                        .into_iter()
                        .partition(|(w, _)| *w == want);
                    r.waiters = later;
                    now
                }
                None => Vec::new(),
            }
        };
        for (_, tx) in waiting {
            let _ = tx.send(match &answer {
                Ok(m) => Ok(self.reply(m)),
                Err(e) => Err(error(e.clone())),
            });
        }
    }

    fn reply(&self, message: &str) -> DeviceReply {
        DeviceReply {
            device_id: self.inner.device_id(),
            message: message.to_owned(),
        }
    }

    fn set_paused(&self, paused: bool) {
        if let Some(r) = &mut self.inner.lock().run {
            r.paused = paused;
        }
    }

    fn put_back(&self, link: AnyLink) {
        *self
            .inner
            .link
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(link);
    }

    async fn state(&self) -> Option<JobState> {
        match self.inner.ledger.store().job(self.job_id.as_str()).await {
            Ok(j) => j.map(|j| j.state),
            Err(e) => {
                tracing::error!(job_id = %self.job_id, error = %e, "cannot read the job");
                None
            }
        }
    }

    /// Stores the newest checkpoint, if one is waiting.
    async fn flush(&mut self) {
        self.store_checkpoint(false).await;
    }

    /// Stores the newest checkpoint with a journal line (pauses, failures).
    async fn flush_journaled(&mut self) {
        self.store_checkpoint(true).await;
    }

    async fn store_checkpoint(&mut self, journal: bool) {
        let Some((c, streaming)) = self.pending.take() else {
            return;
        };
        let settings = self.inner.settings();
        let config = pipeline::job_config(&settings, &self.job.options)
            .unwrap_or_else(|_| PlotConfig::from_settings(&settings));
        let point = resume_point(&c, &config, streaming);
        if let Err(e) = self
            .inner
            .ledger
            .checkpoint(self.job_id.as_str(), point, journal)
            .await
        {
            tracing::error!(job_id = %self.job_id, error = %e, "cannot store the resume point");
        }
    }

    async fn transition(&self, event: JobEvent, reason: Reason, error: Option<String>) {
        let meta = json!({ "device_id": self.inner.device_id() });
        self.apply(event, reason, error, meta).await;
    }

    async fn apply(
        &self,
        event: JobEvent,
        reason: Reason,
        error: Option<String>,
        metadata: serde_json::Value,
    ) {
        let req = crate::store::TransitionRequest {
            job_id: self.job_id.clone(),
            event,
            reason,
            error,
            metadata,
        };
        if let Err(e) = self.inner.ledger.apply(req).await {
            tracing::warn!(job_id = %self.job_id, %event, error = %e, "transition not recorded");
        }
    }

    fn publish(&self, event: DaemonEvent) {
        let _ = self.inner.ledger.bus().send(event);
    }
}

/// Wait before reopening a serial port that failed (a board that keeps failing is not hammered).
/// Not raised while the board stays away: an attempt only reopens the device's own port and
/// lists the USB ports (the boards are opened again only when that listing changed, see
/// [`super::follow`]), and a board plugged back must be driven again within seconds.
const RECONNECT_DELAY: std::time::Duration = std::time::Duration::from_secs(2);

/// After a device failure: opens the link again (a fresh board for the simulator, the port again
/// for an AxiDraw, retried every [`RECONNECT_DELAY`] until it opens or the daemon stops); then
/// the device takes jobs again (the error stays in its status). A board found by a search that does not open where
/// it was is looked for on the other ports and followed there ([`super::follow`]). One loop per
/// device: a call while one runs returns at once.
pub(super) async fn reconnect(inner: Arc<Inner>) {
    if std::mem::replace(&mut inner.lock().reconnecting, true) {
        return;
    }
    // Cleared however the loop ends (returned, or dropped by the shutdown).
    struct Running(Arc<Inner>);
    impl Drop for Running {
        fn drop(&mut self) {
            self.0.lock().reconnecting = false;
        }
    }
    let running = Running(Arc::clone(&inner));
    reconnect_loop(&running.0).await;
}

/// [`reconnect`]'s attempts.
async fn reconnect_loop(inner: &Arc<Inner>) {
    let mut moved = false;
    loop {
        // A board just followed to another port is opened there at once.
        if !std::mem::take(&mut moved)
            && matches!(inner.opener(), super::link::Opener::Serial { .. })
        {
            tokio::select! {
                () = inner.shutdown.stop() => return,
                () = tokio::time::sleep(RECONNECT_DELAY) => {}
            }
        }
        if inner.shutdown.is_stopping() {
            return;
        }
        let opener = inner.opener();
        match tokio::task::spawn_blocking(move || opener.open()).await {
            Ok(Ok(link)) => {
                let idle = {
                    let mut st = inner.lock();
                    let down = matches!(
                        st.status.status,
                        DeviceState::Error | DeviceState::Disconnected | DeviceState::Offline
                    );
                    if st.run.is_none() && down {
                        st.connected_at = Some(std::time::Instant::now());
                        true
                    } else {
                        false
                    }
                };
                if idle {
                    *inner
                        .link
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(link);
                    tracing::info!(device = %inner.device_id(), "device reconnected");
                    // Opened is not answered: the health check asks the board next.
                    inner.update_status(|s| s.status = DeviceState::Connected);
                }
                return;
            }
            Ok(Err(e)) => {
                // Measured on each attempt: its port gone is `offline`, there but failing is
                // `disconnected`.
                let state = inner.unreachable_state();
                let changed = {
                    let st = inner.lock();
                    st.run.is_none()
                        && st.status.status != DeviceState::Error
                        && st.status.status != state
                };
                if changed {
                    inner.update_status(|s| s.status = state);
                }
                // Another board where this one was: say so (it is not driven).
                if matches!(e, crate::devices::link::DeviceError::WrongBoard { .. }) {
                    let message = e.to_string();
                    let new = inner.lock().status.error_message.as_deref() != Some(&message);
                    if new {
                        tracing::warn!(device = %inner.device_id(), error = %e, "not driving the board on the device's port");
                        inner.update_status(|s| s.error_message = Some(message));
                    }
                }
                tracing::debug!(device = %inner.device_id(), error = %e, "device still unavailable");
                moved = matches!(
                    super::follow::search(inner).await,
                    super::follow::Outcome::Moved(_)
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "reopening the device ended abnormally");
                return;
            }
        }
    }
}

/// A job's `page_delay` (axicli's delay between pages, `plotty add --copies N --page-delay S`):
/// its plot starts no sooner than that many seconds after the device's previous plot ended,
/// time to change the sheet. The job is `ARMED` meanwhile. A pause, an abort or a shutdown ends
/// the wait at once: each leaves a waiter on the run before it sends its control, and the plot
/// then acts on that control as it starts.
async fn page_delay(inner: &Inner, id: &JobId, delay_s: Option<f64>) {
    let Some(delay) = delay_s
        .filter(|d| d.is_finite() && *d > 0.0)
        .map(std::time::Duration::from_secs_f64)
    else {
        return;
    };
    let Some(ended) = inner.lock().last_run_end else {
        return;
    };
    let until = ended + delay;
    if until <= tokio::time::Instant::now() {
        return;
    }
    tracing::info!(job_id = %id, delay_s = delay.as_secs_f64(), "waiting the page delay");
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(50));
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(until) => return,
            _ = tick.tick() => {
                let st = inner.lock();
                if st.shutting_down || st.run.as_ref().is_none_or(|r| !r.waiters.is_empty()) {
                    return;
                }
            }
        }
    }
}

/// A job that cannot be plotted any more (its file changed or vanished) fails; the device is free.
async fn fail(inner: &Inner, job: &JobId, message: String) {
    tracing::error!(%job, error = %message, "cannot prepare the job's plot");
    if let Err(e) = inner
        .record(job, JobEvent::Fail, Reason::Error, Some(message))
        .await
    {
        tracing::warn!(%job, error = %e, "failure not recorded");
    }
    release(inner, DeviceState::Connected, None);
}

/// Frees the device without a plot having run.
fn release(inner: &Inner, state: DeviceState, message: Option<String>) {
    let run = inner.lock().run.take();
    if let Some(run) = run {
        for (_, tx) in run.waiters {
            let _ = tx.send(Err(error("the plot did not start")));
        }
    }
    inner.update_status(|s| {
        s.status = state;
        s.current_job_id = None;
        if message.is_some() {
            s.error_message = message;
        }
    });
}

/// The stored form of a checkpoint; `streaming`: see [`ResumePoint::streaming`].
pub fn resume_point(c: &Checkpoint, config: &PlotConfig, streaming: bool) -> ResumePoint {
    let steps = MotorSteps::new(c.position[0], c.position[1]);
    ResumePoint {
        layer: u32::try_from(c.layer).unwrap_or(u32::MAX),
        stroke: c.stroke,
        vertex: c.vertex,
        pen_down: c.pen_down,
        position: Some(MachinePosition {
            steps,
            point: config.kinematics().to_point(steps),
        }),
        recorded_at: crate::timestamp::now(),
        streaming,
    }
}

/// The checkpoint a stored resume point stands for.
pub fn checkpoint_of(p: &ResumePoint) -> Checkpoint {
    Checkpoint {
        layer: p.layer as usize,
        stroke: p.stroke,
        vertex: p.vertex,
        pen_down: p.pen_down,
        position: p
            .position
            .map_or([0, 0], |pos| [pos.steps.m1, pos.steps.m2]),
    }
}
