//! The queue actor: takes [`Command`]s one at a time and answers each.
//!
//! Quick decisions (cancel, abort of a job no plotter works on, retry, delete) are made and recorded
//! before the next command is looked at. Slow work runs in its own task on the queue stage's
//! tracker so that a pause or an abort never waits behind it: storing an upload, queries, and the
//! requests handed to a device task (which answers once the machine has stopped).
//!
//! Next steps of the actor, built with the device task (not done here): after `QUEUED`, analyse
//! the SVG (layers, strokes, first estimate → `ANALYZED`), optimise the stroke order
//! (→ `OPTIMIZED`), plan the motion (→ `READY`); then hand the first `READY` job in queue order to
//! a free device (→ `ARMED`, the device task takes it to `PLOTTING` and on). Arming goes through
//! this actor so that a cancel can never race a plotter taking the same job. Until then, queued
//! jobs wait at `QUEUED`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::command::{Command, JobAction, JobDetails, ListFilter, QueueError, Submission};
use super::device::{DeviceAction, DeviceControl, DeviceReply, DeviceRequest};
use super::submit;
use crate::daemon::StartContext;
use crate::events::{DaemonEvent, DeviceStatus, EventSender};
use crate::job::{self, JobEvent, JobId, JobState, Reason};
use crate::ledger::Ledger;
use crate::settings::Settings;
use crate::shutdown::Shutdown;
use crate::store::{JobRecord, Store, TransitionRequest};

/// The queue actor (see the module doc); run it with [`QueueActor::run`].
pub struct QueueActor {
    rx: mpsc::Receiver<Command>,
}

/// What the actor works with once running.
struct State {
    ledger: Ledger,
    store: Store,
    events: EventSender,
    settings: tokio::sync::watch::Receiver<Arc<Settings>>,
    jobs_dir: PathBuf,
    shutdown: Shutdown,
    devices: BTreeMap<String, Arc<dyn DeviceControl>>,
}

impl QueueActor {
    pub(super) fn new(rx: mpsc::Receiver<Command>) -> Self {
        Self { rx }
    }

    /// Serves commands until the queue stage stops.
    pub async fn run(mut self, ctx: StartContext) {
        let settings = ctx.settings.borrow().clone();
        let jobs_dir = settings.jobs_dir();
        let dir = jobs_dir.clone();
        let _ = tokio::task::spawn_blocking(move || submit::clear_staging(&dir)).await;
        let mut state = State {
            ledger: ctx.ledger.clone(),
            store: ctx.store.clone(),
            events: ctx.events.clone(),
            settings: ctx.settings.clone(),
            jobs_dir,
            shutdown: ctx.shutdown.clone(),
            devices: BTreeMap::new(),
        };
        loop {
            let command = tokio::select! {
                biased;
                () = ctx.shutdown.stop() => break,
                c = self.rx.recv() => c,
            };
            match command {
                Some(c) => state.handle(c).await,
                None => break,
            }
        }
        tracing::debug!("job queue stopped");
    }
}

impl State {
    async fn handle(&mut self, command: Command) {
        match command {
            Command::Submit { submission, reply } => self.submit(submission, reply),
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
            Command::Device {
                device_id,
                action,
                reply,
            } => self.device_action(device_id, action, reply).await,
            Command::AttachDevice { device, reply } => {
                let id = device.id();
                tracing::info!(device = %id, "device attached to the queue");
                self.devices.insert(id, device);
                let _ = reply.send(Ok(()));
            }
            Command::DetachDevice { device_id, reply } => {
                if self.devices.remove(&device_id).is_some() {
                    tracing::info!(device = %device_id, "device detached from the queue");
                }
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
        let jobs_dir = self.jobs_dir.clone();
        let ledger = self.ledger.clone();
        self.shutdown.spawn(async move {
            let _ = reply.send(submit_job(submission, &settings, jobs_dir, ledger).await);
        });
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
        match self.decide(&job, action) {
            Decision::Refuse(e) => {
                let _ = reply.send(Err(e));
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

    /// What to do about `action` on `job`, from its state and the attached devices.
    fn decide(&self, job: &JobRecord, action: JobAction) -> Decision {
        let id = &job.id;
        let state = job.state;
        let refused = |event: JobEvent| match job::transition(state, event) {
            Err(e) => Decision::Refuse(QueueError::InvalidState(format!("job {id}: {e}"))),
            // Only called for pairs the table refuses; an allowed one is still not ours to do.
            Ok(_) => Decision::Refuse(QueueError::InvalidState(format!(
                "job {id} is {state}: nothing to {action}"
            ))),
        };
        let device = self.holder(job);
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
            JobAction::Resume => match (state, device) {
                (JobState::Paused, Some(d)) => {
                    Decision::Device(d, DeviceRequest::Resume(id.clone()))
                }
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

    /// The device working on `job`: the one that says so, else the only one when the job's state
    /// says a device holds it.
    fn holder(&self, job: &JobRecord) -> Option<Arc<dyn DeviceControl>> {
        let claimed = self
            .devices
            .values()
            .find(|d| d.status().current_job_id.as_ref() == Some(&job.id));
        match claimed {
            Some(d) => Some(Arc::clone(d)),
            None if job.state.holds_device() && self.devices.len() == 1 => {
                self.devices.values().next().cloned()
            }
            None => None,
        }
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
        self.job(&new.id).await
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
        if let Err(e) = self.check_idle(&device.status(), action).await {
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

    /// Refuses manual actions that would disturb a plot.
    async fn check_idle(
        &self,
        status: &DeviceStatus,
        action: DeviceAction,
    ) -> Result<(), QueueError> {
        let Some(job_id) = &status.current_job_id else {
            return Ok(());
        };
        let state = self.store.job(job_id.as_str()).await?.map(|j| j.state);
        let device = &status.device_id;
        match state {
            Some(JobState::Armed | JobState::Plotting) => Err(QueueError::DeviceBusy(format!(
                "device {device} is working on job {job_id}: pause or abort the job first"
            ))),
            Some(JobState::Paused) if !action.keeps_position() => {
                Err(QueueError::DeviceBusy(format!(
                    "device {device} holds paused job {job_id}; {action} would lose its resume \
                     point: abort the job first (pen-up and pen-down are allowed)"
                )))
            }
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

/// What the actor does about a job request.
enum Decision {
    /// Say no.
    Refuse(QueueError),
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
async fn submit_job(
    submission: Submission,
    settings: &Settings,
    jobs_dir: PathBuf,
    ledger: Ledger,
) -> Result<JobRecord, QueueError> {
    let staged = submit::stage(submission, settings, &jobs_dir).await?;
    let record = match ledger.submit(staged.job.clone()).await {
        Ok(r) => r,
        Err(e) => {
            let _ = tokio::fs::remove_file(&staged.path).await;
            return Err(e.into());
        }
    };
    let id = record.id.clone();
    let finish = async {
        let path = submit::install(&staged.path, &jobs_dir, id.as_str()).await?;
        ledger.store().set_source_path(id.as_str(), path).await?;
        ledger
            .apply(TransitionRequest {
                job_id: id.clone(),
                event: JobEvent::Enqueue,
                reason: Reason::Submitted,
                error: None,
                metadata: Value::Null,
            })
            .await?;
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
            tracing::error!(job_id = %id, error = %f, "cannot record the failed submission");
        }
        return Err(e);
    }
    ledger
        .store()
        .job(id.as_str())
        .await?
        .ok_or_else(|| QueueError::UnknownJob(id.to_string()))
}
