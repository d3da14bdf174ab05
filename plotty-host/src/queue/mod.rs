//! The job queue: one actor that owns what happens to jobs, reached through a cheap [`QueueHandle`].
//!
//! Callers (the API, the client commands through it, tests) send a [`Command`] over a bounded
//! channel and wait for the answer on a oneshot channel. The actor ([`QueueActor`], run by the
//! [`QueueComponent`] in start-up step 5) decides each command in arrival order, so a decision
//! about a job (cancel it, hand it to a plotter) is never taken on a state that another decision
//! is changing. Every change goes through the [`crate::ledger::Ledger`] (SQLite, journal,
//! broadcast, hooks); the actor keeps no job state of its own.
//!
//! What the actor does itself: store submitted SVGs under `<workspace>/jobs/<id>/source.svg` and
//! queue the job (`NEW → QUEUED`), list and show jobs, start `READY` jobs, cancel jobs that have
//! not started, abort jobs that no plotter is working on, retry `FAILED`/`ABORTED` jobs as new jobs
//! (which wait for a start), delete final jobs.
//! What needs the plotter (pausing, resuming or aborting a running plot; homing, moving the pen,
//! turning the motors off) goes to the [`DeviceControl`] the device task attaches; without one the
//! answer is [`QueueError::NoDevice`], never a pretended success.
//!
//! The handle can be created before the actor runs ([`channel`]): the API starts in step 3 and the
//! queue in step 5, and commands sent in between wait in the channel.

mod actor;
mod command;
pub mod device;
pub mod pipeline;
mod submit;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

pub use actor::QueueActor;
pub use command::{Command, JobAction, JobDetails, ListFilter, QueueError, Submission, SvgSource};
pub use device::{
    Assignment, DeviceAction, DeviceControl, DeviceError, DeviceReply, DeviceRequest,
};
pub use pipeline::PreparedJob;
pub use submit::{Disk, JobFiles, SubmissionRecovery, recover_submissions};

use crate::daemon::{Component, StartContext, StartError};
use crate::events::DeviceStatus;
use crate::job::JobId;
use crate::shutdown::Stage;
use crate::store::JobRecord;

/// Commands waiting for the actor before senders wait.
pub const COMMAND_QUEUE_DEPTH: usize = 256;

/// Sends commands to the queue actor; cheap to clone.
#[derive(Clone, Debug)]
pub struct QueueHandle {
    tx: mpsc::Sender<Command>,
}

/// Runs the [`QueueActor`] in start-up step 5.
pub struct QueueComponent {
    actor: QueueActor,
}

/// A handle and the actor it talks to.
pub fn channel() -> (QueueHandle, QueueActor) {
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE_DEPTH);
    (QueueHandle { tx }, QueueActor::new(rx))
}

impl QueueHandle {
    /// Stores an SVG as a new job and queues it; returns the job at `QUEUED`.
    pub async fn submit(&self, submission: Submission) -> Result<JobRecord, QueueError> {
        self.ask(|reply| Command::Submit {
            submission: Box::new(submission),
            reply,
        })
        .await
    }

    /// Jobs in queue order (priority, then submission).
    pub async fn list(&self, filter: ListFilter) -> Result<Vec<JobRecord>, QueueError> {
        self.ask(|reply| Command::List { filter, reply }).await
    }

    /// One job with its layers and history.
    pub async fn job(&self, job_id: JobId) -> Result<JobDetails, QueueError> {
        self.ask(|reply| Command::Get { job_id, reply }).await
    }

    /// Starts, pauses, resumes, aborts or cancels a job; returns the job afterwards.
    pub async fn control(&self, job_id: JobId, action: JobAction) -> Result<JobRecord, QueueError> {
        self.ask(|reply| Command::Control {
            job_id,
            action,
            reply,
        })
        .await
    }

    /// Retries a `FAILED` or `ABORTED` job as a new job at `QUEUED` that waits for a start once
    /// `READY`; returns the new job.
    pub async fn retry(&self, job_id: JobId) -> Result<JobRecord, QueueError> {
        self.ask(|reply| Command::Retry { job_id, reply }).await
    }

    /// Deletes a job in a final state and its files; returns the job as it was.
    pub async fn delete(&self, job_id: JobId) -> Result<JobRecord, QueueError> {
        self.ask(|reply| Command::Delete { job_id, reply }).await
    }

    /// The attached devices' status.
    pub async fn devices(&self) -> Result<Vec<DeviceStatus>, QueueError> {
        self.ask(|reply| Command::Devices { reply }).await
    }

    /// Which attached devices are held by a job in `ARMED`, `PLOTTING` or `PAUSED`, and by which
    /// job: a device whose task is idle may still hold a job paused by a crash or a shutdown.
    pub async fn holders(&self) -> Result<BTreeMap<String, JobId>, QueueError> {
        self.ask(|reply| Command::Holders { reply }).await
    }

    /// Runs a manual action on a device (`None`: the only one attached).
    pub async fn device(
        &self,
        device_id: Option<String>,
        action: DeviceAction,
    ) -> Result<DeviceReply, QueueError> {
        self.ask(|reply| Command::Device {
            device_id,
            action,
            reply,
        })
        .await
    }

    /// Attaches a device task (replacing one with the same id).
    pub async fn attach_device(&self, device: Arc<dyn DeviceControl>) -> Result<(), QueueError> {
        self.ask(|reply| Command::AttachDevice { device, reply })
            .await
    }

    /// Detaches a device task (it went away).
    pub async fn detach_device(&self, device_id: String) -> Result<(), QueueError> {
        self.ask(|reply| Command::DetachDevice { device_id, reply })
            .await
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, QueueError>>) -> Command,
    ) -> Result<T, QueueError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| QueueError::ShuttingDown)?;
        rx.await.map_err(|_| QueueError::ShuttingDown)?
    }
}

impl QueueComponent {
    /// The component that runs `actor`.
    pub fn new(actor: QueueActor) -> Self {
        Self { actor }
    }
}

impl Component for QueueComponent {
    fn name(&self) -> &str {
        "job queue"
    }

    fn stage(&self) -> Stage {
        Stage::Queue
    }

    fn start(self: Box<Self>, ctx: StartContext) -> BoxFuture<'static, Result<(), StartError>> {
        async move {
            let actor = self.actor;
            let shutdown = ctx.shutdown.clone();
            shutdown.spawn(actor.run(ctx));
            Ok(())
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests;
