//! The queue actor: takes [`Command`]s one at a time and answers each.
//!
//! Quick decisions (cancel, abort of a job no plotter works on, retry, delete) are made and recorded
//! before the next command is looked at. Slow work runs in its own task on the queue stage's
//! tracker so that a pause or an abort never waits behind it: storing an upload, queries, and the
//! requests handed to a device task (which answers once the machine has stopped).
//!
//! The pipeline and the hand-off: after `QUEUED`, a job is analysed, optimised and planned
//! ([`super::pipeline`], CPU work on the blocking pool, at most [`PIPELINE_WORKERS`] jobs at a
//! time) up to `READY`, its program kept in memory for the device. The actor then hands the first
//! `READY` job in queue order (priority, then submission) that may start (submitted with `start`,
//! or released with [`JobAction::Start`]) to a free device: `→ ARMED` is recorded here, between
//! commands, so a cancel can never race a plotter taking the same job; the device task takes it
//! on. The actor looks for work whenever a job becomes `READY`, a job lets its device go (it leaves
//! `ARMED`, `PLOTTING` or `PAUSED` for a state that holds none) or a device reports a status (it
//! listens to the event bus), and at start-up, when jobs left in the pipeline by the last run
//! continue.
//!
//! A device is free when its task is idle and no job in `ARMED`, `PLOTTING` or `PAUSED` is bound
//! to it: a job paused by a crash or a shutdown has its half-drawn sheet on the plotter although
//! the device task holds nothing, and it keeps the plotter until it is resumed to its end, aborted
//! or cancelled. A job is bound to the device its status names, else to the device its events
//! last recorded (`device_id`), else, with a single device attached, to that one.
//!
//! Several daemons on one PostgreSQL database (a farm): the actor starts a job only by claiming
//! it through the store ([`Ledger::claim`]: the head `READY` job released for plotting, locked
//! with `FOR UPDATE SKIP LOCKED` and armed under this daemon's lease in one transaction), so two
//! daemons never start the same job; it hears of jobs becoming `READY` on other daemons through
//! the relayed events ([`crate::farm::relay`]). Only the jobs this daemon claimed (`daemon` is
//! its name) bind its devices, and it pauses, resumes or aborts only those: a job PAUSED on
//! another daemon keeps that daemon's paper and is resumed there. A job submitted to another
//! daemon is plotted from the SVG stored in the database ([`crate::farm::source`]). At start-up
//! it continues the pipeline of the jobs submitted to it only.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot};

use super::command::{Command, JobAction, JobDetails, ListFilter, QueueError, Submission};
use super::device::{Assignment, DeviceAction, DeviceControl, DeviceReply, DeviceRequest};
use super::pipeline::{self, PreparedJob};
use super::submit::{self, Disk, JobFiles};
use crate::daemon::StartContext;
use crate::events::{DaemonEvent, DeviceState, DeviceStatus, EventSender};
use crate::job::{self, JobEvent, JobId, JobState, Reason};
use crate::ledger::Ledger;
use crate::settings::Settings;
use crate::shutdown::Shutdown;
use crate::store::{JobRecord, JobStore, TransitionRequest};

/// Jobs analysed and optimised at the same time at most (the machine's other work goes on).
const PIPELINE_WORKERS: usize = 2;

/// The queue actor (see the module doc); run it with [`QueueActor::run`].
pub struct QueueActor {
    rx: mpsc::Receiver<Command>,
    pipeline: bool,
    files: Arc<dyn JobFiles>,
    /// The events followed instead of the daemon's bus (tests).
    bus: Option<broadcast::Receiver<DaemonEvent>>,
}

/// How often a queue whose event bus closed looks for work to hand out (it no longer hears
/// when a job becomes `READY` or a device free).
const POLL_WITHOUT_BUS: std::time::Duration = std::time::Duration::from_secs(1);

/// Programs of `READY` jobs, kept for the device that takes them.
type Programs = Arc<Mutex<HashMap<JobId, Arc<PreparedJob>>>>;

/// What the actor works with once running.
struct State {
    ledger: Ledger,
    /// This daemon's name when it shares a PostgreSQL database with others (a farm).
    me: Option<String>,
    /// On a farm: the plotter list to record in this daemon's registration, written by
    /// [`write_plotters`] outside this loop (a database that stalls never holds up a command).
    farm_list: Option<tokio::sync::watch::Sender<Vec<crate::store::Plotter>>>,
    /// The named plotters this daemon registered at start: always in its farm list, attached
    /// yet or not (while plotters attach one by one, or one is re-attached), and named
    /// whatever a reload changed, so that no other daemon takes their names meanwhile.
    registered: Vec<crate::store::Plotter>,
    store: JobStore,
    events: EventSender,
    settings: tokio::sync::watch::Receiver<Arc<Settings>>,
    jobs_dir: PathBuf,
    shutdown: Shutdown,
    devices: BTreeMap<String, Arc<dyn DeviceControl>>,
    /// Whether jobs move through the pipeline and to devices (see [`QueueActor::manual`]).
    pipeline: bool,
    programs: Programs,
    workers: Arc<Semaphore>,
    files: Arc<dyn JobFiles>,
}

impl QueueActor {
    pub(super) fn new(rx: mpsc::Receiver<Command>) -> Self {
        Self {
            rx,
            pipeline: true,
            files: Arc::new(Disk),
            bus: None,
        }
    }

    /// An actor that follows `bus` instead of the daemon's event bus (tests of a bus that
    /// closes).
    pub fn with_bus(mut self, bus: broadcast::Receiver<DaemonEvent>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// An actor that writes submitted SVGs through `files` instead of straight to the disk (tests
    /// of a full disk).
    pub fn with_files(mut self, files: Arc<dyn JobFiles>) -> Self {
        self.files = files;
        self
    }

    /// An actor that only answers commands: jobs stay where they are until the caller moves them
    /// (tests of the command handling against a scripted device).
    pub fn manual(mut self) -> Self {
        self.pipeline = false;
        self
    }

    /// Serves commands until the queue stage stops.
    pub async fn run(mut self, ctx: StartContext) {
        let settings = ctx.settings.borrow().clone();
        let jobs_dir = settings.jobs_dir();
        let dir = jobs_dir.clone();
        let _ = tokio::task::spawn_blocking(move || submit::clear_staging(&dir)).await;
        let me = match &ctx.store {
            JobStore::Postgres(_) => ctx.ledger.lease().map(|(name, _)| name.to_owned()),
            JobStore::Sqlite(_) => None,
        };
        let registered: Vec<crate::store::Plotter> = crate::daemon::farm_plotters(&settings)
            .into_iter()
            .filter(|p| p.named)
            .collect();
        let farm_list = match (&me, &ctx.store) {
            (Some(name), JobStore::Postgres(pg)) => {
                let (tx, rx) = tokio::sync::watch::channel(registered.clone());
                let writer = write_plotters(
                    pg.clone(),
                    name.clone(),
                    settings.workspace.display().to_string(),
                    rx,
                    ctx.shutdown.clone(),
                );
                ctx.shutdown.spawn(writer);
                Some(tx)
            }
            _ => None,
        };
        let mut state = State {
            me,
            farm_list,
            registered,
            ledger: ctx.ledger.clone(),
            store: ctx.store.clone(),
            events: ctx.events.clone(),
            settings: ctx.settings.clone(),
            jobs_dir,
            shutdown: ctx.shutdown.clone(),
            devices: BTreeMap::new(),
            pipeline: self.pipeline,
            programs: Arc::new(Mutex::new(HashMap::new())),
            workers: Arc::new(Semaphore::new(PIPELINE_WORKERS)),
            files: Arc::clone(&self.files),
        };
        let mut bus = Some(self.bus.take().unwrap_or_else(|| ctx.events.subscribe()));
        // Once the bus is closed the queue polls for work instead (a closed receiver is always
        // ready: selecting on it would spin at full CPU).
        let mut poll: Option<tokio::time::Interval> = None;
        if state.pipeline {
            state.continue_pipeline().await;
        }
        loop {
            tokio::select! {
                biased;
                () = ctx.shutdown.stop() => break,
                c = self.rx.recv() => match c {
                    Some(c) => state.handle(c).await,
                    None => break,
                },
                e = next_event(&mut bus) => {
                    let wake = match e {
                        Ok(DaemonEvent::JobStateChanged(c)) => {
                            state.forget_program(&c);
                            c.to == JobState::Ready || lets_device_go(c.from, c.to)
                        }
                        // Another daemon's job became READY: this daemon's free plotter may
                        // claim it; one that took a job this daemon prepared frees its program.
                        Ok(DaemonEvent::Remote(r)) => match &r.event {
                            DaemonEvent::JobStateChanged(c) => {
                                state.forget_program(c);
                                c.to == JobState::Ready
                            }
                            // Deleted on another daemon: this daemon's copy of its files goes.
                            DaemonEvent::JobDeleted { job_id } => {
                                state.remove_copy(job_id);
                                false
                            }
                            _ => false,
                        },
                        Ok(DaemonEvent::DeviceStatus(d)) => d.current_job_id.is_none(),
                        Ok(_) => false,
                        Err(broadcast::error::RecvError::Lagged(_)) => true,
                        Err(broadcast::error::RecvError::Closed) => {
                            tracing::error!(
                                "the event bus closed: the queue now looks for jobs to hand out \
                                 every {} s",
                                POLL_WITHOUT_BUS.as_secs()
                            );
                            bus = None;
                            let mut ticks = tokio::time::interval(POLL_WITHOUT_BUS);
                            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                            poll = Some(ticks);
                            true
                        }
                    };
                    if wake {
                        state.dispatch().await;
                    }
                }
                _ = tick(&mut poll) => state.dispatch().await,
            }
        }
        tracing::debug!("job queue stopped");
    }
}

/// The next event of `bus`; never, once it is gone.
async fn next_event(
    bus: &mut Option<broadcast::Receiver<DaemonEvent>>,
) -> Result<DaemonEvent, broadcast::error::RecvError> {
    match bus {
        Some(b) => b.recv().await,
        None => std::future::pending().await,
    }
}

/// How long [`write_plotters`] waits before writing again a list the database refused.
const PLOTTERS_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// Writes each new list of `plotters` into the registration of the daemon `me` (its host, its
/// `workspace`) until the queue stops: the latest list only (a newer one replaces a list not
/// yet written), written again after [`PLOTTERS_RETRY`] while the database fails.
async fn write_plotters(
    pg: crate::store::PgStore,
    me: String,
    workspace: String,
    mut plotters: tokio::sync::watch::Receiver<Vec<crate::store::Plotter>>,
    shutdown: Shutdown,
) {
    let host = crate::settings::host_name();
    loop {
        tokio::select! {
            () = shutdown.stop() => return,
            changed = plotters.changed() => if changed.is_err() { return },
        }
        loop {
            let list = plotters.borrow_and_update().clone();
            match pg.set_plotters(&me, &host, &workspace, &list).await {
                Ok(true) => break,
                Ok(false) => {
                    tracing::debug!(
                        "this daemon's registration is gone; its plotters are not recorded"
                    );
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot record this daemon's plotters for the other daemons; retrying");
                    tokio::select! {
                        () = shutdown.stop() => return,
                        () = tokio::time::sleep(PLOTTERS_RETRY) => {}
                    }
                }
            }
        }
    }
}

/// The next tick of `poll`; never without one.
async fn tick(poll: &mut Option<tokio::time::Interval>) -> tokio::time::Instant {
    match poll {
        Some(p) => p.tick().await,
        None => std::future::pending().await,
    }
}

impl State {
    async fn handle(&mut self, command: Command) {
        match command {
            Command::Submit { submission, reply } => self.submit(*submission, reply),
            Command::List { filter, reply } => self.list(filter, reply),
            Command::Get { job_id, reply } => self.get(job_id, reply),
            Command::Control {
                job_id,
                action,
                reply,
            } => self.control(job_id, action, reply).await,
            Command::Retry { job_id, reply } => {
                let _ = reply.send(self.retry(&job_id).await);
            }
            Command::Delete { job_id, reply } => {
                let _ = reply.send(self.delete(&job_id).await);
            }
            Command::Devices { reply } => {
                let _ = reply.send(Ok(self.devices.values().map(|d| d.status()).collect()));
            }
            Command::Holders { reply } => {
                let _ = reply.send(self.holders().await);
            }
            Command::Device {
                device_id,
                action,
                reply,
            } => self.device_action(device_id, action, reply).await,
            Command::AttachDevice { device, reply } => {
                let id = device.id();
                tracing::info!(device = %id, "device attached to the queue");
                self.devices.insert(id, device);
                self.record_plotters();
                let _ = reply.send(Ok(()));
                self.dispatch().await;
            }
            Command::DetachDevice { device_id, reply } => {
                if self.devices.remove(&device_id).is_some() {
                    tracing::info!(device = %device_id, "device detached from the queue");
                }
                self.record_plotters();
                let _ = reply.send(Ok(()));
            }
        }
    }

    fn submit(
        &self,
        submission: Submission,
        reply: oneshot::Sender<Result<JobRecord, QueueError>>,
    ) {
        if self.shutdown.is_requested() {
            let _ = reply.send(Err(QueueError::ShuttingDown));
            return;
        }
        let settings = self.settings.borrow().clone();
        if let Err(e) = self.check_requirements(&submission.requirements, &settings) {
            let _ = reply.send(Err(e));
            return;
        }
        let jobs_dir = self.jobs_dir.clone();
        let ledger = self.ledger.clone();
        let files = Arc::clone(&self.files);
        let next = self.pipeline_runner();
        let farm = self.me.is_some() && !submission.requirements.is_empty();
        self.shutdown.spawn(async move {
            if farm && let Err(e) = check_farm(&ledger, &submission.requirements).await {
                let _ = reply.send(Err(e));
                return;
            }
            let result = submit_job(submission, &settings, jobs_dir, ledger, files).await;
            let queued = result.as_ref().ok().cloned();
            let _ = reply.send(result);
            if let (Some(job), Some(next)) = (queued, next) {
                next.run(job).await;
            }
        });
    }

    /// On a farm, has the plotters recorded under their ids in this daemon's registration
    /// (`daemons.plotters`), which the other daemons check jobs' requirements against: the
    /// registration at start knows an unnamed plotter's id only from its settings (`simulator`
    /// when its port is `auto`), not the port its AxiDraw was found on, nor `auto`'s later
    /// switch from the simulator to an AxiDraw. The list is the attached plotters and the
    /// named ones registered at start ([`State::registered`]); [`write_plotters`] writes it.
    fn record_plotters(&self) {
        let Some(tx) = &self.farm_list else {
            return;
        };
        let mut plotters: Vec<crate::store::Plotter> = self
            .devices
            .values()
            .map(|d| {
                let p = d.profile();
                let named = self.registered.iter().any(|r| r.name == p.name);
                crate::store::Plotter::new(p, named)
            })
            .collect();
        for r in &self.registered {
            if !plotters.iter().any(|p| p.name == r.name) {
                plotters.push(r.clone());
            }
        }
        tx.send_replace(plotters);
    }

    /// Refuses requirements that are malformed or, with one daemon per database (SQLite), that
    /// no plotter of this daemon can ever meet: the job would wait forever. The plotters are
    /// the attached ones (before any attached: the configured ones). On a farm another
    /// daemon's plotter may meet them: [`check_farm`] asks the database.
    fn check_requirements(
        &self,
        req: &crate::devices::registry::Requirements,
        settings: &Settings,
    ) -> Result<(), QueueError> {
        use crate::devices::registry::{self, Profile};
        req.validate().map_err(QueueError::Invalid)?;
        if req.is_empty() || self.me.is_some() {
            return Ok(());
        }
        let plotters: Vec<Profile> = if self.devices.is_empty() {
            settings
                .devices
                .iter()
                .map(|d| {
                    let id = d
                        .name
                        .as_deref()
                        .or(d.port.as_deref())
                        .unwrap_or("simulator");
                    Profile::of(id, d)
                })
                .collect()
        } else {
            self.devices.values().map(|d| d.profile()).collect()
        };
        if plotters.iter().any(|p| p.meets(req)) {
            Ok(())
        } else {
            Err(QueueError::Invalid(registry::unmet(req, &plotters)))
        }
    }

    /// What runs the pipeline for a job from a task of its own (`None` in manual mode).
    fn pipeline_runner(&self) -> Option<PipelineRunner> {
        self.pipeline.then(|| PipelineRunner {
            ledger: self.ledger.clone(),
            settings: self.settings.clone(),
            programs: Arc::clone(&self.programs),
            workers: Arc::clone(&self.workers),
        })
    }

    /// Start-up: jobs the last run left in the pipeline continue; `READY` jobs go to devices.
    async fn continue_pipeline(&self) {
        let states = vec![JobState::Queued, JobState::Analyzed, JobState::Optimized];
        match self.store.jobs(states).await {
            Ok(jobs) => {
                // On a farm each daemon continues the jobs submitted to it (it holds their
                // files); the others' wait for their own daemon.
                for job in jobs
                    .into_iter()
                    .filter(|j| self.is_mine(j.submitted_by.as_deref()))
                {
                    if let Some(next) = self.pipeline_runner() {
                        self.shutdown.spawn(async move { next.run(job).await });
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot list the jobs waiting for analysis"),
        }
        self.dispatch().await;
    }

    /// Hands `READY` jobs that may start to free devices, in queue order.
    async fn dispatch(&self) {
        if !self.pipeline || self.shutdown.is_requested() {
            return;
        }
        loop {
            if !self.devices.values().any(|d| is_free(&d.status())) {
                return;
            }
            if self.me.is_some() {
                if !self.claim_for_free_device().await {
                    return;
                }
                continue;
            }
            let ready: Vec<JobRecord> = match self.store.jobs(vec![JobState::Ready]).await {
                Ok(jobs) => jobs.into_iter().filter(may_start).collect(),
                Err(e) => {
                    tracing::error!(error = %e, "cannot list the READY jobs");
                    return;
                }
            };
            if ready.is_empty() {
                return;
            }
            let free = match self.free_devices().await {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(error = %e, "cannot tell which devices jobs hold");
                    return;
                }
            };
            // The first job in queue order that a free plotter meets goes to the first such
            // plotter: a job waiting for a busy (or held) plotter does not hold back the jobs
            // behind it that another free plotter can take.
            let Some((job, device)) = ready.into_iter().find_map(|job| {
                free.iter()
                    .find(|(_, p)| p.meets(&job.requirements))
                    .map(|(d, _)| (job, Arc::clone(d)))
            }) else {
                tracing::debug!("no free plotter meets a released READY job; they wait");
                return;
            };
            let device_id = device.id();
            let armed = self
                .ledger
                .apply(TransitionRequest {
                    job_id: job.id.clone(),
                    event: JobEvent::Arm,
                    reason: Reason::Pipeline,
                    error: None,
                    metadata: json!({ "device_id": device_id }),
                })
                .await;
            if let Err(e) = armed {
                tracing::error!(job_id = %job.id, error = %e, "cannot arm the job");
                return;
            }
            let prepared = lock(&self.programs).remove(&job.id);
            let job_id = job.id.clone();
            let job = match self.store.job(job_id.as_str()).await {
                Ok(Some(j)) => j,
                _ => job,
            };
            if let Err(e) = device.assign(Assignment { job, prepared }) {
                tracing::warn!(job_id = %job_id, device = %device_id, error = %e, "the device refused the job");
                let back = self
                    .ledger
                    .apply(TransitionRequest {
                        job_id: job_id.clone(),
                        event: JobEvent::Disarm,
                        reason: Reason::DeviceError,
                        error: Some(e.message),
                        metadata: json!({ "device_id": device_id }),
                    })
                    .await;
                if let Err(e) = back {
                    tracing::error!(job_id = %job_id, error = %e, "cannot put the job back to READY");
                }
                return;
            }
            tracing::info!(job_id = %job_id, device = %device_id, "job handed to the device");
        }
    }

    /// The refusal of `action` on a job another daemon of the farm claimed while that daemon holds
    /// it (`ARMED`, `PLOTTING`, `PAUSED`): its plotter has the paper. Only an abort of a `PAUSED`
    /// job whose daemon stopped renewing its lease (gone for good?) is left to this daemon.
    fn foreign(&self, job: &JobRecord, action: JobAction) -> Option<QueueError> {
        let owner = job.daemon.as_deref()?;
        if self.is_mine(Some(owner)) || !job.state.holds_device() {
            return None;
        }
        let now_ms = crate::timestamp::now_ms();
        let held = job.lease.as_ref().is_some_and(|l| l.expires_ms > now_ms);
        if matches!(action, JobAction::Abort | JobAction::Cancel)
            && job.state == JobState::Paused
            && !held
        {
            return None;
        }
        let id = &job.id;
        Some(QueueError::InvalidState(format!(
            "job {id} is {} on daemon `{owner}`, whose plotter has its paper: {action} it there              (an abort is allowed here once that daemon is gone and the job PAUSED)",
            job.state
        )))
    }

    /// Whether a job claimed or submitted by `daemon` is this daemon's: always with one daemon
    /// per database (SQLite), and for jobs recorded before schema 6 named none.
    fn is_mine(&self, daemon: Option<&str>) -> bool {
        match (&self.me, daemon) {
            (Some(me), Some(d)) => me == d,
            _ => true,
        }
    }

    /// A farm's dispatch step: claims the head job for a free device not held by a job of this
    /// daemon and hands it over. Returns whether a job went to a device (look for another).
    async fn claim_for_free_device(&self) -> bool {
        let free = match self.free_devices().await {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "cannot tell which devices jobs hold");
                return false;
            }
        };
        // Each free plotter claims the head job it meets (jobs for other daemons' plotters, or
        // for a busy one here, wait for them).
        let mut claimed = None;
        for (device, profile) in free {
            let device_id = device.id();
            match self.ledger.claim(&device_id, profile).await {
                Ok(Some(job)) => {
                    claimed = Some((device, device_id, job));
                    break;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot claim the next job");
                    return false;
                }
            }
        }
        let Some((device, device_id, job)) = claimed else {
            return false;
        };
        let prepared = lock(&self.programs).remove(&job.id);
        let job_id = job.id.clone();
        let job = if prepared.is_some() {
            job
        } else {
            // Prepared on another daemon (or before a restart): plotted from its stored SVG.
            match crate::farm::source::with_local_path(&self.ledger, &self.jobs_dir, job).await {
                Ok(j) => j,
                Err(e) => {
                    // No daemon could plot it: back to READY it would be claimed again at once.
                    tracing::warn!(job_id = %job_id, error = %e, "the claimed job cannot be plotted");
                    let failed = self
                        .ledger
                        .apply(TransitionRequest {
                            job_id: job_id.clone(),
                            event: JobEvent::Fail,
                            reason: Reason::Error,
                            error: Some(e.to_string()),
                            metadata: json!({ "device_id": device_id }),
                        })
                        .await;
                    if let Err(e) = failed {
                        tracing::error!(job_id = %job_id, error = %e, "cannot record the failure");
                    }
                    return true;
                }
            }
        };
        if let Err(e) = device.assign(Assignment { job, prepared }) {
            tracing::warn!(job_id = %job_id, device = %device_id, error = %e, "the device refused the job");
            self.disarm(&job_id, &device_id, e.message).await;
            return false;
        }
        tracing::info!(job_id = %job_id, device = %device_id, "job claimed and handed to the device");
        true
    }

    /// Puts a job this daemon armed but cannot plot back to `READY` for any daemon.
    async fn disarm(&self, job_id: &JobId, device_id: &str, error: String) {
        let back = self
            .ledger
            .apply(TransitionRequest {
                job_id: job_id.clone(),
                event: JobEvent::Disarm,
                reason: Reason::DeviceError,
                error: Some(error),
                metadata: json!({ "device_id": device_id }),
            })
            .await;
        if let Err(e) = back {
            tracing::error!(job_id = %job_id, error = %e, "cannot put the job back to READY");
        }
    }

    /// Removes this daemon's directory of a job deleted on another daemon of the farm (the
    /// SVG copied from the database, the journal of what this daemon did with it).
    fn remove_copy(&self, job_id: &JobId) {
        let dir = self.jobs_dir.join(job_id.as_str());
        let job_id = job_id.clone();
        self.shutdown.spawn(async move {
            match tokio::fs::remove_dir_all(&dir).await {
                Ok(()) => tracing::info!(%job_id, "job deleted on another daemon; removed this daemon's copy"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(%job_id, error = %e, "cannot remove this daemon's copy of a deleted job"),
            }
        });
    }

    /// Drops the program kept for a job that left `READY` on another device or daemon (its
    /// plotter builds its own).
    fn forget_program(&self, change: &crate::store::StateChange) {
        if change.from == Some(JobState::Ready) && change.to != JobState::Ready {
            lock(&self.programs).remove(&change.job_id);
        }
    }

    fn list(&self, filter: ListFilter, reply: oneshot::Sender<Result<Vec<JobRecord>, QueueError>>) {
        let store = self.store.clone();
        self.shutdown.spawn(async move {
            let result = store.jobs(filter.states).await.map(|mut jobs| {
                if let Some(n) = filter.limit {
                    jobs.truncate(n);
                }
                jobs
            });
            let _ = reply.send(result.map_err(QueueError::from));
        });
    }

    fn get(&self, job_id: JobId, reply: oneshot::Sender<Result<JobDetails, QueueError>>) {
        let store = self.store.clone();
        self.shutdown.spawn(async move {
            let result = async {
                let job = store
                    .job(job_id.as_str())
                    .await?
                    .ok_or_else(|| QueueError::UnknownJob(job_id.to_string()))?;
                let layers = store.layers(job_id.as_str()).await?;
                let events = store.events(job_id.as_str()).await?;
                Ok(JobDetails {
                    job,
                    layers,
                    events,
                })
            }
            .await;
            let _ = reply.send(result);
        });
    }

    async fn control(
        &self,
        job_id: JobId,
        action: JobAction,
        reply: oneshot::Sender<Result<JobRecord, QueueError>>,
    ) {
        let job = match self.job(&job_id).await {
            Ok(j) => j,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if let Some(refusal) = self.foreign(&job, action) {
            let _ = reply.send(Err(refusal));
            return;
        }
        let holder = self.holder(&job).await;
        match self.decide(&job, action, holder) {
            Decision::Refuse(e) => {
                let _ = reply.send(Err(e));
            }
            Decision::Release => {
                let result = self.release(&job).await;
                let _ = reply.send(result);
            }
            Decision::Record(metadata) => {
                let result = self
                    .ledger
                    .apply(TransitionRequest {
                        job_id: job_id.clone(),
                        event: JobEvent::Abort,
                        reason: Reason::User,
                        error: None,
                        metadata,
                    })
                    .await;
                // A program kept for a READY job that will never plot.
                lock(&self.programs).remove(&job_id);
                let result = match result {
                    Ok(_) => self.job(&job_id).await,
                    Err(e) => Err(e.into()),
                };
                let _ = reply.send(result);
            }
            Decision::Device(device, request) => {
                let store = self.store.clone();
                self.shutdown.spawn(async move {
                    let id = device.id();
                    let result = match device.control(request).await {
                        Ok(_) => match store.job(job_id.as_str()).await {
                            Ok(Some(j)) => Ok(j),
                            Ok(None) => Err(QueueError::UnknownJob(job_id.to_string())),
                            Err(e) => Err(e.into()),
                        },
                        Err(e) => Err(QueueError::Device {
                            device_id: id,
                            message: e.message,
                        }),
                    };
                    let _ = reply.send(result);
                });
            }
        }
    }

    /// What to do about `action` on `job`, from its state and `device`, the device holding it.
    fn decide(
        &self,
        job: &JobRecord,
        action: JobAction,
        device: Option<Arc<dyn DeviceControl>>,
    ) -> Decision {
        let id = &job.id;
        let state = job.state;
        let refused = |event: JobEvent| match job::transition(state, event) {
            Err(e) => Decision::Refuse(QueueError::InvalidState(format!("job {id}: {e}"))),
            // Only called for pairs the table refuses; an allowed one is still not ours to do.
            Ok(_) => Decision::Refuse(QueueError::InvalidState(format!(
                "job {id} is {state}: nothing to {action}"
            ))),
        };
        match action {
            JobAction::Pause => match (state, device) {
                (JobState::Plotting, Some(d)) => {
                    Decision::Device(d, DeviceRequest::Pause(id.clone()))
                }
                (JobState::Plotting, None) => Decision::Refuse(no_device_for(id, state)),
                (JobState::Paused, _) => Decision::Refuse(QueueError::InvalidState(format!(
                    "job {id} is already PAUSED"
                ))),
                _ => refused(JobEvent::Pause),
            },
            JobAction::Start => match state {
                JobState::Ready => Decision::Release,
                JobState::Paused => Decision::Refuse(QueueError::InvalidState(format!(
                    "job {id} is PAUSED: it has started already; `plotty resume {id}` continues it"
                ))),
                JobState::Armed | JobState::Plotting => Decision::Refuse(QueueError::InvalidState(
                    format!("job {id} is {state}: it has started already"),
                )),
                s if job::can_retry(s) => Decision::Refuse(QueueError::InvalidState(format!(
                    "job {id} is {s}: it cannot start again; `plotty retry {id}` makes a new job \
                     of it"
                ))),
                s if s.is_terminal() => Decision::Refuse(QueueError::InvalidState(format!(
                    "job {id} is {s}: it cannot start again; add the file again to plot it once \
                     more"
                ))),
                s => Decision::Refuse(QueueError::InvalidState(format!(
                    "job {id} is {s}: only a READY job can start; start it once `plotty jobs` \
                     shows it READY (or add it with --start to start it as soon as it is ready)"
                ))),
            },
            JobAction::Resume => match (state, device) {
                (JobState::Paused, Some(d)) => {
                    Decision::Device(d, DeviceRequest::Resume(id.clone()))
                }
                (JobState::Ready, _) if may_start(job) => {
                    Decision::Refuse(QueueError::InvalidState(format!(
                        "job {id} is READY, queued to start: it plots as soon as the plotter is \
                         free (resume continues a PAUSED job)"
                    )))
                }
                (JobState::Ready, _) => Decision::Refuse(QueueError::InvalidState(format!(
                    "job {id} is READY and has not started: `plotty start {id}` sends it to the \
                     plotter (resume continues a PAUSED job)"
                ))),
                (JobState::Paused, None) => Decision::Refuse(QueueError::NoDevice(format!(
                    "job {id} stays PAUSED until a plotter is attached: connect the AxiDraw (or \
                     set device.type: simulator) and restart the daemon"
                ))),
                _ => refused(JobEvent::Resume),
            },
            JobAction::Abort => match (state, device) {
                (s, _) if s.is_terminal() => refused(JobEvent::Abort),
                (s, Some(d)) if s.holds_device() => {
                    Decision::Device(d, DeviceRequest::Abort(id.clone()))
                }
                (JobState::Plotting, None) => Decision::Refuse(no_device_for(id, state)),
                // Nothing moves for this job: recording the decision is all there is to do.
                _ => Decision::Record(json!({ "action": "abort" })),
            },
            JobAction::Cancel => match state {
                s if s.is_terminal() => refused(JobEvent::Abort),
                s if s.holds_device() => Decision::Refuse(QueueError::InvalidState(format!(
                    "job {id} is {s}: cancel takes jobs out of the queue before they start; use \
                     abort to stop it"
                ))),
                _ => Decision::Record(json!({ "action": "cancel" })),
            },
        }
    }

    /// The device holding `job`: the one whose status names it, else, when the job's state says
    /// a device holds it, the one it is bound to (see [`State::bound_devices`]) when that is one.
    async fn holder(&self, job: &JobRecord) -> Option<Arc<dyn DeviceControl>> {
        if !job.state.holds_device() {
            return self.claimant(&job.id);
        }
        match self.bound_devices(job).await {
            Ok(ids) => match ids.as_slice() {
                [one] => self.devices.get(one).cloned(),
                _ => None,
            },
            Err(e) => {
                tracing::error!(job_id = %job.id, error = %e, "cannot tell which device holds the job");
                self.claimant(&job.id)
            }
        }
    }

    /// The device whose status says it works on `job_id`.
    fn claimant(&self, job_id: &JobId) -> Option<Arc<dyn DeviceControl>> {
        self.devices
            .values()
            .find(|d| d.status().current_job_id.as_ref() == Some(job_id))
            .cloned()
    }

    /// The attached devices `job` (in a state that holds a device) is bound to: the one whose
    /// status names it; else the only one attached; else the one its events last recorded; else,
    /// when no event names one, every attached device (a sheet may be on any of them).
    async fn bound_devices(&self, job: &JobRecord) -> Result<Vec<String>, QueueError> {
        if let Some(d) = self.claimant(&job.id) {
            return Ok(vec![d.id()]);
        }
        if self.devices.len() <= 1 {
            return Ok(self.devices.keys().cloned().collect());
        }
        Ok(match self.store.device_of(job.id.as_str()).await? {
            Some(id) if self.devices.contains_key(&id) => vec![id],
            Some(_) => Vec::new(),
            None => self.devices.keys().cloned().collect(),
        })
    }

    /// The attached devices that may take a job now (idle, held by no job of this daemon), with
    /// what each offers jobs' requirements.
    async fn free_devices(
        &self,
    ) -> Result<Vec<(Arc<dyn DeviceControl>, crate::devices::registry::Profile)>, QueueError> {
        let held = self.holders().await?;
        Ok(self
            .devices
            .values()
            .filter(|d| is_free(&d.status()) && !held.contains_key(&d.id()))
            .map(|d| (Arc::clone(d), d.profile()))
            .collect())
    }

    /// The attached devices held by a job in `ARMED`, `PLOTTING` or `PAUSED`, with the job holding
    /// each (the first in queue order when several do).
    async fn holders(&self) -> Result<BTreeMap<String, JobId>, QueueError> {
        let mut held = BTreeMap::new();
        if self.devices.is_empty() {
            return Ok(held);
        }
        let states = vec![JobState::Armed, JobState::Plotting, JobState::Paused];
        // On a farm, the jobs of the other daemons hold their plotters, not this daemon's.
        for job in self.store.jobs(states).await? {
            if !self.is_mine(job.daemon.as_deref()) {
                continue;
            }
            for device in self.bound_devices(&job).await? {
                held.entry(device).or_insert_with(|| job.id.clone());
            }
        }
        Ok(held)
    }

    /// Lets a `READY` job go to a plotter (a job submitted with `start`, or released before, is
    /// left as it is), then looks for a free one.
    async fn release(&self, job: &JobRecord) -> Result<JobRecord, QueueError> {
        let job_id = &job.id;
        if may_start(job) {
            tracing::debug!(%job_id, "job already queued to start");
        } else {
            self.store
                .set_metadata(job_id.as_str(), "start", Value::Bool(true))
                .await?;
            tracing::info!(%job_id, "job released to the plotters");
        }
        self.dispatch().await;
        self.job(job_id).await
    }

    async fn retry(&self, job_id: &JobId) -> Result<JobRecord, QueueError> {
        let new = self.ledger.retry(job_id.as_str()).await?;
        if let Some(source) = new.source_path.as_deref().map(PathBuf::from) {
            match submit::share(&source, &self.jobs_dir, new.id.as_str()).await {
                Ok(own) => self.store.set_source_path(new.id.as_str(), own).await?,
                Err(e) => tracing::warn!(
                    job_id = %new.id,
                    retry_of = %job_id,
                    "{e}; the retry uses the original job's file, keep that job until it is done"
                ),
            }
        }
        let job = self.job(&new.id).await?;
        if let Some(next) = self.pipeline_runner() {
            let queued = job.clone();
            self.shutdown.spawn(async move { next.run(queued).await });
        }
        Ok(job)
    }

    async fn delete(&self, job_id: &JobId) -> Result<JobRecord, QueueError> {
        let gone = self.store.delete_job(job_id.as_str()).await?;
        let dir = self.jobs_dir.join(job_id.as_str());
        let removed = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await;
        match removed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(
                %job_id,
                error = %e,
                "the job is deleted but its directory could not be removed; remove it by hand"
            ),
            Err(e) => tracing::warn!(%job_id, error = %e, "removing the job directory failed"),
        }
        tracing::info!(%job_id, "job deleted");
        let _ = self.events.send(DaemonEvent::JobDeleted {
            job_id: job_id.clone(),
        });
        Ok(gone)
    }

    async fn device_action(
        &self,
        device_id: Option<String>,
        action: DeviceAction,
        reply: oneshot::Sender<Result<DeviceReply, QueueError>>,
    ) {
        let device = match self.pick(device_id.as_deref()) {
            Ok(d) => d,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if let Err(e) = self.check_idle(&device.status()).await {
            let _ = reply.send(Err(e));
            return;
        }
        self.shutdown.spawn(async move {
            let id = device.id();
            let result = device
                .control(DeviceRequest::Action(action))
                .await
                .map_err(|e| QueueError::Device {
                    device_id: id,
                    message: e.message,
                });
            let _ = reply.send(result);
        });
    }

    fn pick(&self, device_id: Option<&str>) -> Result<Arc<dyn DeviceControl>, QueueError> {
        let attached = || self.devices.keys().cloned().collect::<Vec<_>>().join(", ");
        match device_id {
            Some(id) => self.devices.get(id).cloned().ok_or_else(|| {
                if self.devices.is_empty() {
                    no_plotter()
                } else {
                    QueueError::UnknownDevice {
                        requested: id.to_owned(),
                        attached: attached(),
                    }
                }
            }),
            None => match self.devices.len() {
                0 => Err(no_plotter()),
                1 => self.devices.values().next().cloned().ok_or_else(no_plotter),
                _ => Err(QueueError::Invalid(format!(
                    "several devices are attached ({}): name one",
                    attached()
                ))),
            },
        }
    }

    /// Refuses manual actions that would disturb a plot. A paused job's plotter may be moved:
    /// its resume asks the board where the carriage is and goes back to the resume point.
    async fn check_idle(&self, status: &DeviceStatus) -> Result<(), QueueError> {
        let Some(job_id) = &status.current_job_id else {
            return Ok(());
        };
        let state = self.store.job(job_id.as_str()).await?.map(|j| j.state);
        let device = &status.device_id;
        match state {
            Some(JobState::Armed | JobState::Plotting) => Err(QueueError::DeviceBusy(format!(
                "device {device} is working on job {job_id}: pause or abort the job first"
            ))),
            _ => Ok(()),
        }
    }

    async fn job(&self, id: &JobId) -> Result<JobRecord, QueueError> {
        self.store
            .job(id.as_str())
            .await?
            .ok_or_else(|| QueueError::UnknownJob(id.to_string()))
    }
}

/// Runs the pipeline of one job in its own task, keeping the program for the device.
struct PipelineRunner {
    ledger: Ledger,
    settings: tokio::sync::watch::Receiver<Arc<Settings>>,
    programs: Programs,
    workers: Arc<Semaphore>,
}

impl PipelineRunner {
    async fn run(self, job: JobRecord) {
        // Closed only when the actor is gone; then nothing is left to do.
        let Ok(_permit) = self.workers.acquire().await else {
            return;
        };
        let settings = self.settings.borrow().clone();
        let id = job.id.clone();
        // The program goes in before `READY` is announced, so the device that takes the job finds it.
        let programs = Arc::clone(&self.programs);
        if let Some(prepared) = pipeline::run(&self.ledger, &settings, &job, move |p| {
            lock(&programs).insert(p.job_id.clone(), p);
        })
        .await
        {
            tracing::debug!(job_id = %id, strokes = prepared.program.stroke_count(), "job READY");
        }
    }
}

/// Whether a device can take a job now.
fn is_free(status: &DeviceStatus) -> bool {
    status.status == DeviceState::Connected && status.current_job_id.is_none()
}

/// Whether a job moving from `from` to `to` lets the device it held go.
fn lets_device_go(from: Option<JobState>, to: JobState) -> bool {
    from.is_some_and(JobState::holds_device) && !to.holds_device()
}

/// Whether a `READY` job may go to a plotter (submitted with `start`, or released).
fn may_start(job: &JobRecord) -> bool {
    job.metadata
        .get("start")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this map cannot leave it inconsistent (single inserts and removes).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the actor does about a job request.
enum Decision {
    /// Say no.
    Refuse(QueueError),
    /// Let a `READY` job start (if it may not yet) and look for a free plotter.
    Release,
    /// Record `→ ABORTED` with this metadata.
    Record(Value),
    /// Hand it to the device working on the job.
    Device(Arc<dyn DeviceControl>, DeviceRequest),
}

fn no_plotter() -> QueueError {
    QueueError::NoDevice(
        "connect an AxiDraw, or set device.type: simulator, and restart the daemon".into(),
    )
}

fn no_device_for(id: &JobId, state: JobState) -> QueueError {
    QueueError::NoDevice(format!(
        "job {id} is {state} but no device task holds it; the device layer is not running"
    ))
}

/// Stores and queues one submission (runs in its own task).
///
/// Whatever fails (a full disk above all), no job is left at `NEW`: before the row exists the
/// staged SVG is removed; after, the job is `FAILED` with the reason (and if even that cannot be
/// recorded, start-up recovery fails it, see [`submit::recover_submissions`]).
async fn submit_job(
    submission: Submission,
    settings: &Settings,
    jobs_dir: PathBuf,
    ledger: Ledger,
    files: Arc<dyn JobFiles>,
) -> Result<JobRecord, QueueError> {
    let staged = submit::stage(submission, settings, &jobs_dir, Arc::clone(&files)).await?;
    let record = match ledger.submit(staged.job.clone()).await {
        Ok(r) => r,
        Err(e) => {
            let _ = tokio::fs::remove_file(&staged.path).await;
            return Err(submit::store_error(&jobs_dir, e));
        }
    };
    let id = record.id.clone();
    let finish = async {
        let path = submit::install(&staged.path, &jobs_dir, id.as_str(), files).await?;
        // On a farm, in the database too: any daemon may plot the job.
        crate::farm::source::share(&ledger, id.as_str(), &path)
            .await
            .map_err(|e| submit::store_error(&jobs_dir, e))?;
        ledger
            .store()
            .set_source_path(id.as_str(), path)
            .await
            .map_err(|e| submit::store_error(&jobs_dir, e))?;
        ledger
            .apply(TransitionRequest {
                job_id: id.clone(),
                event: JobEvent::Enqueue,
                reason: Reason::Submitted,
                error: None,
                metadata: Value::Null,
            })
            .await
            .map_err(|e| submit::store_error(&jobs_dir, e))?;
        Ok::<(), QueueError>(())
    };
    if let Err(e) = finish.await {
        let _ = tokio::fs::remove_file(&staged.path).await;
        // The job exists: record why it went no further rather than leave it at NEW.
        let failed = ledger
            .apply(TransitionRequest {
                job_id: id.clone(),
                event: JobEvent::Fail,
                reason: Reason::Error,
                error: Some(e.to_string()),
                metadata: Value::Null,
            })
            .await;
        if let Err(f) = failed {
            tracing::error!(
                job_id = %id,
                error = %f,
                "cannot record the failed submission; the job stays NEW until the next start fails it"
            );
        }
        return Err(e);
    }
    ledger
        .store()
        .job(id.as_str())
        .await?
        .ok_or_else(|| QueueError::UnknownJob(id.to_string()))
}

/// On a farm (PostgreSQL), refuses requirements `req` that no plotter of any live daemon can
/// ever meet, listing the farm's plotters with their daemons (each daemon records its plotters
/// when it registers, schema 9). When no daemon recorded any plotter (nothing to judge by) or
/// the database cannot be read, the job is taken and waits, as before the farm check.
async fn check_farm(
    ledger: &Ledger,
    req: &crate::devices::registry::Requirements,
) -> Result<(), QueueError> {
    use crate::devices::registry;
    let (JobStore::Postgres(pg), Some((_, ttl_ms))) = (ledger.store(), ledger.lease()) else {
        return Ok(());
    };
    let farm = match pg.farm_plotters(crate::timestamp::now_ms(), ttl_ms).await {
        Ok(farm) => farm,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the farm's plotters; the job is taken unchecked");
            return Ok(());
        }
    };
    if farm.is_empty() || farm.iter().any(|(_, p)| p.profile().meets(req)) {
        return Ok(());
    }
    Err(QueueError::Invalid(registry::unmet_in_farm(req, &farm)))
}
