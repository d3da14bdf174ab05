//! One plotter as the queue sees it: [`Plotter`] implements [`DeviceControl`]. It holds the
//! device's status, the link while no plot runs, and the plot in progress (its control channel and
//! the requests waiting for the machine to stop); [`super::run`] drives the plot itself.
//!
//! Requests about the running job go to the runner as [`Control`]s and are answered once the
//! event that proves them comes back (`Paused`: motion stopped with the pen up; `Aborting`: the
//! pen is up and the carriage parks) and the transition is recorded. A `resume` of a job this
//! device is not running (left `PAUSED` by a crash or a shutdown) starts a new run from the job's
//! stored resume point.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::json;
use tokio::sync::{oneshot, watch};

use super::link::{AnyLink, Opener};
use super::registry::Profile;
use super::run;
use crate::events::{DaemonEvent, DeviceState, DeviceStatus};
use crate::job::{JobEvent, JobId, JobState, Reason};
use crate::ledger::Ledger;
use crate::plot::Control;
use crate::queue::{
    Assignment, DeviceAction, DeviceControl, DeviceError, DeviceReply, DeviceRequest,
};
use crate::settings::Settings;
use crate::shutdown::Shutdown;
use crate::store::TransitionRequest;

/// A plotter's device task. Cheap to clone.
#[derive(Clone)]
pub struct Plotter {
    inner: Arc<Inner>,
}

/// What the device task and its runs share.
pub(super) struct Inner {
    /// The plotter's configured name: its device id (`None`: an unnamed `device` section,
    /// known by its link's id, `simulator` or the port).
    pub(super) name: Option<String>,
    /// The device id, fixed for the daemon's lifetime (jobs and the farm refer to it): the
    /// configured name, else the link's id at start. Only `auto`'s switch from the simulator to
    /// an AxiDraw changes it ([`super::scan`]); a board followed to another port keeps it.
    pub(super) id: Mutex<String>,
    /// How to open the link (replaced when `auto` finds an AxiDraw, see [`super::scan`], and
    /// when a board is followed to another port, see [`super::follow`]).
    pub(super) opener: Mutex<Opener>,
    /// `device.type: auto` found no AxiDraw and runs on the simulator: how to look for one
    /// (`None` once one is used, and for a device that was named).
    pub(super) scan: Mutex<Option<super::scan::Discovery>>,
    /// How to find the board again when its port fails (`None`: a fixed `port`, the simulator,
    /// or a device built without one): see [`super::follow`].
    pub(super) follow: Mutex<Option<super::scan::Discovery>>,
    /// What the last search for the board saw (the USB listing and the ports the other
    /// plotters hold): the next search opens ports only once that changed (see the `follow`
    /// module).
    pub(super) searched: Mutex<Option<super::follow::Seen>>,
    pub(super) ledger: Ledger,
    pub(super) settings: watch::Receiver<Arc<Settings>>,
    pub(super) shutdown: Shutdown,
    /// The open link while no plot runs (`None`: open it for the next run).
    pub(super) link: Mutex<Option<AnyLink>>,
    pub(super) state: Mutex<Shared>,
}

/// The device's changing state.
pub(super) struct Shared {
    pub(super) status: DeviceStatus,
    pub(super) run: Option<Run>,
    /// The daemon is stopping: a paused plot stays `PAUSED` (reason `shutdown`).
    pub(super) shutting_down: bool,
    /// A manual action has the link (the health check leaves it alone).
    pub(super) manual: bool,
    /// When the link last came up (`None` while it is down): `uptime_seconds`.
    pub(super) connected_at: Option<std::time::Instant>,
    /// When the last plot run ended: a job's `page_delay` counts from here.
    pub(super) last_run_end: Option<tokio::time::Instant>,
    /// When the idle health check last read the motor supply (`None`: not yet).
    pub(super) supply_read_at: Option<std::time::Instant>,
    /// A [`super::run::reconnect`] loop runs: no second one is started (each failed resume
    /// of a job on an offline device would otherwise add one).
    pub(super) reconnecting: bool,
}

/// The plot in progress.
pub(super) struct Run {
    pub(super) job_id: JobId,
    pub(super) controls: mpsc::Sender<Control>,
    /// Stopped with the pen up (a pause or a pen change), waiting for `resume`.
    pub(super) paused: bool,
    /// `ABORTED` is recorded.
    pub(super) abort_recorded: bool,
    /// Requests waiting for the machine.
    pub(super) waiters: Vec<(Want, Reply)>,
}

/// Why [`Inner::switch_port`] did not switch.
#[derive(Debug)]
pub(super) enum SwitchRefused {
    /// The board on the port does not answer, or is not an EiBotBoard.
    Probe(crate::devices::link::DeviceError),
    /// A run or a manual action took the link meanwhile, or the daemon stops.
    Busy,
    /// The probe ended abnormally (logged).
    Abnormal,
}

/// Where a request's answer goes.
pub(super) type Reply = oneshot::Sender<Result<DeviceReply, DeviceError>>;

/// What a waiting request waits for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Want {
    /// The plot paused.
    Paused,
    /// The plot stopped (aborted or ended).
    Stopped,
    /// The plot started moving (after the board said where the carriage is).
    Started,
    /// The run ended, whatever the outcome (answered only when it does).
    Ended,
}

impl Plotter {
    /// A device task for the device `opener` opens, idle and connected.
    pub fn new(
        opener: Opener,
        ledger: Ledger,
        settings: watch::Receiver<Arc<Settings>>,
        shutdown: Shutdown,
        link: Option<AnyLink>,
    ) -> Self {
        Self::named(None, opener, ledger, settings, shutdown, link)
    }

    /// [`Plotter::new`] for the plotter configured as `name` (its device id, whatever its
    /// link; `None`: the unnamed `device` section, known by its link's id). It plots with
    /// that plotter's own settings ([`Settings::for_device`]).
    pub fn named(
        name: Option<String>,
        opener: Opener,
        ledger: Ledger,
        settings: watch::Receiver<Arc<Settings>>,
        shutdown: Shutdown,
        link: Option<AnyLink>,
    ) -> Self {
        // Its tags, from the settings of the plotter of that name (the first for an unnamed one).
        let tags = {
            let s = settings.borrow();
            let own = name.as_deref().and_then(|n| s.for_device(n));
            own.map_or_else(|| s.device.tags.clone(), |o| o.device.tags)
        };
        let id = name.clone().unwrap_or_else(|| opener.device_id());
        let status = DeviceStatus {
            device_id: id.clone(),
            device_type: opener.device_type().into(),
            port: opener.port().map(str::to_owned),
            tags,
            status: DeviceState::Connected,
            firmware_version: None,
            pen_up: None,
            position_mm: None,
            current_job_id: None,
            error_count: 0,
            error_message: None,
            last_heartbeat: crate::timestamp::now(),
            uptime_seconds: Some(0.0),
            notice: None,
            motor_supply: None,
            pen_servo: None,
        };
        Self {
            inner: Arc::new(Inner {
                name,
                id: Mutex::new(id),
                opener: Mutex::new(opener),
                scan: Mutex::new(None),
                follow: Mutex::new(None),
                searched: Mutex::new(None),
                ledger,
                settings,
                shutdown,
                link: Mutex::new(link),
                state: Mutex::new(Shared {
                    status,
                    run: None,
                    shutting_down: false,
                    manual: false,
                    connected_at: Some(std::time::Instant::now()),
                    last_run_end: None,
                    supply_read_at: None,
                    reconnecting: false,
                }),
            }),
        }
    }

    /// What the device task and its runs share (tests of the modules that work on it).
    #[cfg(test)]
    pub(super) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// Tells the clients the device's status (the heartbeat).
    pub fn publish_status(&self) {
        self.inner.update_status(|_| {});
    }

    /// `device.type: auto` found no AxiDraw: this device (the simulator) says so in its status
    /// (`notice`: nothing is drawn), and [`Plotter::rescan`] looks for an AxiDraw with
    /// `discovery`.
    pub fn auto_fallback(self, discovery: super::scan::Discovery) -> Self {
        *self
            .inner
            .scan
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(discovery);
        self.inner
            .update_status(|s| s.notice = Some(super::scan::NOTICE.to_owned()));
        self
    }

    /// When its serial port fails, the device looks for its board with `discovery` (by the
    /// rule that chose it at start) and follows it to the port it is on now (the `follow` module).
    /// Only for a board found by a search (`nickname`, `serial` or `port: auto`), never for a
    /// fixed `port`.
    pub fn following(self, discovery: super::scan::Discovery) -> Self {
        // One of the daemon's plotters: the others' searches leave the port it holds alone.
        discovery
            .siblings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(&self.inner));
        *self
            .inner
            .follow
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(discovery);
        self
    }

    /// While `auto` runs on the simulator: looks for an AxiDraw and, when one answers and the
    /// device is idle (no job plotting or paused on it), switches to it and raises an alert.
    /// Returns the device id it had (the queue attaches the device again under its new id).
    pub async fn rescan(&self) -> Option<String> {
        super::scan::rescan(&self.inner).await
    }

    /// Measures the device's health now (the `health` module): an idle link is asked for the
    /// board's version; a link that fails makes the device `disconnected` (`offline` when its
    /// port is gone) until it is reopened.
    pub async fn check_health(&self) {
        super::health::check(&self.inner).await;
    }

    /// The daemon is stopping (`shutdown` settings): no new job starts; the plot in progress
    /// finishes its stroke (`finish: stroke`) or the whole job (`finish: job`) within
    /// `shutdown.timeout`, then stops with the pen up, parks, and is recorded `PAUSED` (reason
    /// `shutdown`) with its exact resume point. Past the timeout it stops at once (and parks);
    /// on a second signal it stops at once without parking. Returns once no plot runs.
    pub async fn wind_down(&self) {
        let settings = self.inner.settings.borrow().shutdown;
        let finish_stroke = settings.finish == crate::settings::file::ShutdownFinish::Stroke;
        let ended = self.ask(|r| {
            if r.paused {
                // A paused plot has nothing to finish, whatever `finish` says: it stops now
                // (waiting `shutdown.timeout` for a resume that cannot come only delayed it).
                Some(Control::Stop { park: true })
            } else {
                finish_stroke.then_some(Control::StopAfterStroke { park: true })
            }
        });
        let Some(mut ended) = ended else {
            return;
        };
        let shutdown = self.inner.shutdown.clone();
        tokio::select! {
            _ = &mut ended => return,
            () = tokio::time::sleep(settings.timeout) => {
                tracing::warn!(
                    "shutdown: the plot did not reach a stop within {} s; stopping it now",
                    settings.timeout.as_secs_f64()
                );
                let _ = self.ask(|_| Some(Control::Stop { park: true }));
            }
            () = shutdown.immediate() => {}
        }
        if !shutdown.is_immediate() {
            tokio::select! {
                _ = &mut ended => return,
                () = shutdown.immediate() => {}
            }
        }
        // A second signal: stop where it is, pen up, no parking.
        let _ = self.ask(|_| Some(Control::Stop { park: false }));
        let _ = ended.await;
    }

    /// Marks the device as stopping and sends the running plot (if any) what `control` gives;
    /// resolves when that run ends. `None` when no plot runs.
    fn ask(
        &self,
        control: impl FnOnce(&Run) -> Option<Control>,
    ) -> Option<oneshot::Receiver<Result<DeviceReply, DeviceError>>> {
        let mut st = self.inner.lock();
        st.shutting_down = true;
        let r = st.run.as_mut()?;
        if let Some(c) = control(r) {
            let _ = r.controls.send(c);
        }
        let (tx, rx) = oneshot::channel();
        r.waiters.push((Want::Ended, tx));
        Some(rx)
    }
}

impl Inner {
    /// The device id: the configured name, else the link's id at start (`simulator`, the
    /// port); see [`Inner::id`].
    pub(super) fn device_id(&self) -> String {
        // Only replaced whole under the lock: a poisoned value is still a valid id.
        self.id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The settings as this plotter sees them: its own device settings and motion limits
    /// (the daemon's settings as they are for an unnamed plotter, or one a reload removed).
    pub(super) fn settings(&self) -> Arc<Settings> {
        let all = Arc::clone(&self.settings.borrow());
        match self.name.as_deref().and_then(|n| all.for_device(n)) {
            Some(own) => Arc::new(own),
            None => all,
        }
    }

    /// How the link opens now.
    pub(super) fn opener(&self) -> Opener {
        // Only replaced whole under the lock: a poisoned value is still a valid opener.
        self.opener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Probes `port` off the runtime with `discovery` and, when its board answers and the
    /// device is still idle (checked again under the lock: a run or a manual action that took
    /// the link meanwhile keeps it), makes it the device's port: its opener (opening at
    /// `discovery`'s baud rate, checking `identity`) and its status' `port`, with `update`'s
    /// changes in the same critical section (it gets the firmware version). The way `auto`
    /// switches from the simulator ([`super::scan`]) and a board is followed ([`super::follow`]).
    ///
    /// # Errors
    /// Why the device did not switch.
    pub(super) async fn switch_port<R>(
        &self,
        discovery: &super::scan::Discovery,
        port: &str,
        identity: crate::devices::identity::Identity,
        update: impl FnOnce(&mut Shared, &str) -> R,
    ) -> Result<(String, R), SwitchRefused> {
        let (probe, at) = (Arc::clone(&discovery.probe), port.to_owned());
        let version = match tokio::task::spawn_blocking(move || probe(&at)).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return Err(SwitchRefused::Probe(e)),
            Err(e) => {
                tracing::error!(port, error = %e, "probing a board ended abnormally");
                return Err(SwitchRefused::Abnormal);
            }
        };
        let mut st = self.lock();
        if st.run.is_some() || st.manual || st.shutting_down {
            return Err(SwitchRefused::Busy);
        }
        *self.opener.lock().unwrap_or_else(PoisonError::into_inner) = Opener::Serial {
            port: port.to_owned(),
            baud: discovery.baud,
            identity,
        };
        st.status.port = Some(port.to_owned());
        let r = update(&mut st, &version);
        Ok((version, r))
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Shared> {
        // Every critical section leaves `Shared` consistent (plain field updates).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The status as clients see it now: `last_heartbeat` is when the board last answered
    /// (measured, not the time of this reading), `uptime_seconds` the time since the link came
    /// up (`None` while it is down).
    pub(super) fn status(&self) -> DeviceStatus {
        let st = self.lock();
        let mut s = st.status.clone();
        s.uptime_seconds = st.connected_at.map(|t| t.elapsed().as_secs_f64());
        s
    }

    /// The board just answered (a reply during a plot, a manual action, a health check).
    pub(super) fn touch(&self) {
        self.lock().status.last_heartbeat = crate::timestamp::now();
    }

    /// The link failed with `e` (or could not be opened): the device is `disconnected`, or
    /// `offline` when its serial port is gone, until [`super::run::reconnect`] reopens it. Not
    /// while a plot runs (the run reports its own end).
    pub(super) fn link_lost(self: &Arc<Self>, e: &crate::devices::link::DeviceError) {
        let state = self.unreachable_state();
        let changed = {
            let mut st = self.lock();
            if st.run.is_some() {
                return;
            }
            st.connected_at = None;
            let changed = st.status.status != state;
            st.status.status = state;
            st.status.error_count = st.status.error_count.saturating_add(1);
            st.status.error_message = Some(e.to_string());
            changed
        };
        tracing::warn!(device = %self.device_id(), error = %e, "the device does not answer");
        self.update_status(|_| {});
        if changed {
            self.shutdown.spawn(super::run::reconnect(Arc::clone(self)));
        }
    }

    /// What an unreachable device is: `offline` when its serial port is not there (unplugged),
    /// else `disconnected`.
    pub(super) fn unreachable_state(&self) -> DeviceState {
        match &self.opener() {
            super::link::Opener::Serial { port, .. }
                if !crate::devices::discover::port_exists(port) =>
            {
                DeviceState::Offline
            }
            _ => DeviceState::Disconnected,
        }
    }

    /// Changes the status and tells the clients.
    pub(super) fn update_status(&self, change: impl FnOnce(&mut DeviceStatus)) {
        change(&mut self.lock().status);
        let _ = self
            .ledger
            .bus()
            .send(DaemonEvent::DeviceStatus(self.status()));
    }

    fn reply(&self, message: impl Into<String>) -> DeviceReply {
        DeviceReply {
            device_id: self.device_id(),
            message: message.into(),
        }
    }

    async fn handle(self: Arc<Self>, request: DeviceRequest) -> Result<DeviceReply, DeviceError> {
        match request {
            DeviceRequest::Pause(job) => self.pause(&job).await,
            DeviceRequest::Resume(job) => self.resume(&job).await,
            DeviceRequest::Abort(job) => self.abort(&job).await,
            DeviceRequest::Action(a) => self.action(a).await,
        }
    }

    async fn pause(&self, job: &JobId) -> Result<DeviceReply, DeviceError> {
        let rx = {
            let mut st = self.lock();
            match &mut st.run {
                Some(r) if &r.job_id == job && r.paused => {
                    return Err(error(format!("job {job} is already paused")));
                }
                Some(r) if &r.job_id == job => {
                    let (tx, rx) = oneshot::channel();
                    r.waiters.push((Want::Paused, tx));
                    let _ = r.controls.send(Control::Pause);
                    rx
                }
                _ => return Err(not_running(job, &self.device_id())),
            }
        };
        rx.await.unwrap_or_else(|_| {
            Err(error(format!(
                "the plot of job {job} ended before it paused"
            )))
        })
    }

    async fn resume(self: Arc<Self>, job: &JobId) -> Result<DeviceReply, DeviceError> {
        let controls = {
            let st = self.lock();
            match &st.run {
                Some(r) if &r.job_id == job && !r.paused => {
                    return Err(error(format!("job {job} is not paused")));
                }
                Some(r) if &r.job_id == job => Some(r.controls.clone()),
                Some(r) => {
                    return Err(error(format!(
                        "{} is plotting job {}; resume job {job} once it is done",
                        self.device_id(),
                        r.job_id
                    )));
                }
                None => None,
            }
        };
        let Some(controls) = controls else {
            return run::resume_idle(self, job.clone()).await;
        };
        self.record(job, JobEvent::Resume, Reason::User, None)
            .await
            .map_err(|e| error(e.to_string()))?;
        if let Some(r) = &mut self.lock().run
            && &r.job_id == job
        {
            r.paused = false;
        }
        let _ = controls.send(Control::Resume);
        self.update_status(|s| s.status = DeviceState::Busy);
        Ok(self.reply("resumed"))
    }

    async fn abort(&self, job: &JobId) -> Result<DeviceReply, DeviceError> {
        let rx = {
            let mut st = self.lock();
            match &mut st.run {
                Some(r) if &r.job_id == job => {
                    let (tx, rx) = oneshot::channel();
                    r.waiters.push((Want::Stopped, tx));
                    let _ = r.controls.send(Control::Abort);
                    Some(rx)
                }
                _ => None,
            }
        };
        match rx {
            Some(rx) => rx.await.unwrap_or_else(|_| {
                Err(error(format!(
                    "the plot of job {job} ended without stopping"
                )))
            }),
            None => {
                // Not running here (paused by a crash or a shutdown): nothing moves.
                self.record(job, JobEvent::Abort, Reason::User, None)
                    .await
                    .map_err(|e| error(e.to_string()))?;
                Ok(self.reply("aborted"))
            }
        }
    }

    async fn action(self: Arc<Self>, action: DeviceAction) -> Result<DeviceReply, DeviceError> {
        // Nothing for the board: a paused plot keeps its run.
        if action == DeviceAction::ClearError {
            return Ok(super::manual::clear_error(&self));
        }
        // A paused plot (a pause or a pen change) gives the machine up first: its run ends with
        // the checkpoint stored, and the job stays PAUSED, holding the device; its resume asks
        // the board where the carriage is.
        let ended = {
            let mut st = self.lock();
            match &mut st.run {
                Some(r) if r.paused => {
                    let (tx, rx) = oneshot::channel();
                    r.waiters.push((Want::Ended, tx));
                    let _ = r.controls.send(Control::Stop { park: false });
                    Some(rx)
                }
                Some(r) => {
                    return Err(error(format!(
                        "{} is plotting job {}: pause it (or abort it, or let it finish) before \
                         {action}",
                        self.device_id(),
                        r.job_id
                    )));
                }
                None => None,
            }
        };
        if let Some(rx) = ended {
            match rx.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(error("the paused plot ended abnormally")),
            }
        }
        super::manual::run(self, action).await
    }

    /// Records a transition of `job`.
    pub(super) async fn record(
        &self,
        job: &JobId,
        event: JobEvent,
        reason: Reason,
        error: Option<String>,
    ) -> Result<JobState, crate::store::StoreError> {
        self.ledger
            .apply(TransitionRequest {
                job_id: job.clone(),
                event,
                reason,
                error,
                metadata: json!({ "device_id": self.device_id() }),
            })
            .await
            .map(|c| c.to)
    }
}

impl DeviceControl for Plotter {
    fn id(&self) -> String {
        self.inner.device_id()
    }

    fn status(&self) -> DeviceStatus {
        self.inner.status()
    }

    fn profile(&self) -> Profile {
        Profile::of(&self.inner.device_id(), &self.inner.settings().device)
    }

    fn control(
        &self,
        request: DeviceRequest,
    ) -> BoxFuture<'static, Result<DeviceReply, DeviceError>> {
        let inner = Arc::clone(&self.inner);
        inner.handle(request).boxed()
    }

    fn assign(&self, assignment: Assignment) -> Result<(), DeviceError> {
        let job_id = assignment.job.id.clone();
        let controls = run::claim(&self.inner, &job_id)?;
        let inner = Arc::clone(&self.inner);
        self.inner.shutdown.spawn(run::start(
            inner,
            assignment.job,
            assignment.prepared,
            crate::plot::Start::Beginning,
            true,
            false,
            controls,
        ));
        Ok(())
    }
}

/// A device error with `message`.
pub(super) fn error(message: impl Into<String>) -> DeviceError {
    DeviceError {
        message: message.into(),
    }
}

fn not_running(job: &JobId, device_id: &str) -> DeviceError {
    error(format!("{device_id} is not plotting job {job}"))
}
