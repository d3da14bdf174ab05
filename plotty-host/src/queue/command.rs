//! What can be asked of the queue actor, and what can go wrong.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::device::{DeviceAction, DeviceControl, DeviceReply};
use crate::events::DeviceStatus;
use crate::job::{JobId, JobState};
use crate::store::jobs::EventRecord;
use crate::store::{JobRecord, Layer, StoreError};

/// Where the answer to a command goes.
pub(super) type Reply<T> = oneshot::Sender<Result<T, QueueError>>;

/// One request to the queue actor (see [`super::QueueHandle`] for each one's meaning).
pub enum Command {
    /// Store an SVG as a new job and queue it.
    Submit {
        /// What to store (boxed: it is far larger than the other commands).
        submission: Box<Submission>,
        /// The queued job.
        reply: Reply<JobRecord>,
    },
    /// Jobs in queue order.
    List {
        /// Which jobs.
        filter: ListFilter,
        /// The jobs.
        reply: Reply<Vec<JobRecord>>,
    },
    /// One job with its layers and history.
    Get {
        /// The job.
        job_id: JobId,
        /// The job's details.
        reply: Reply<JobDetails>,
    },
    /// Start, pause, resume, abort or cancel a job.
    Control {
        /// The job.
        job_id: JobId,
        /// What to do.
        action: JobAction,
        /// The job afterwards.
        reply: Reply<JobRecord>,
    },
    /// Retry a failed or aborted job as a new one.
    Retry {
        /// The job to retry.
        job_id: JobId,
        /// The new job.
        reply: Reply<JobRecord>,
    },
    /// Delete a job in a final state and its files.
    Delete {
        /// The job.
        job_id: JobId,
        /// The job as it was.
        reply: Reply<JobRecord>,
    },
    /// The attached devices' status.
    Devices {
        /// One status per device.
        reply: Reply<Vec<DeviceStatus>>,
    },
    /// Which attached devices jobs hold (device id → job), idle device tasks included.
    Holders {
        /// The devices held and the job holding each.
        reply: Reply<BTreeMap<String, JobId>>,
    },
    /// A manual action on a device.
    Device {
        /// The device (`None`: the only one attached).
        device_id: Option<String>,
        /// What to do.
        action: DeviceAction,
        /// What the device said.
        reply: Reply<DeviceReply>,
    },
    /// A device task offers its control handle.
    AttachDevice {
        /// The handle.
        device: Arc<dyn DeviceControl>,
        /// Done.
        reply: Reply<()>,
    },
    /// A device task went away.
    DetachDevice {
        /// Its id.
        device_id: String,
        /// Done.
        reply: Reply<()>,
    },
}

/// A new job.
#[derive(Clone, PartialEq, Debug)]
pub struct Submission {
    /// The SVG.
    pub svg: SvgSource,
    /// Name (default: the file name, else `upload.svg`).
    pub name: Option<String>,
    /// Paper size (`A4`, `Letter`, `300x200`; default: the configured one).
    pub paper: Option<String>,
    /// Layers to plot (`1,3-4,outline`; default: all).
    pub layers: Option<String>,
    /// Higher runs first.
    pub priority: i32,
    /// Start plotting as soon as it is ready and a plotter is free, without waiting for a `start`.
    pub start: bool,
    /// The job's plot options (axicli's per-run options), kept with the job.
    pub options: crate::settings::RunOptions,
    /// What it asks of the plotter that draws it (a name, a model, tags; none: any).
    pub requirements: crate::devices::registry::Requirements,
}

/// Where a submitted SVG comes from.
#[derive(Clone, PartialEq, Debug)]
pub enum SvgSource {
    /// Its bytes (an upload).
    Bytes(Bytes),
    /// A file the daemon can read (in-process callers only; the HTTP API never reads paths a client
    /// names).
    Path(PathBuf),
}

/// Which jobs to list.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ListFilter {
    /// Only these states (all when empty).
    pub states: Vec<JobState>,
    /// At most this many.
    pub limit: Option<usize>,
}

/// A job with its layers and recorded history.
#[derive(Clone, PartialEq, Debug)]
pub struct JobDetails {
    /// The job.
    pub job: JobRecord,
    /// Its layers in plot order (empty until analysed).
    pub layers: Vec<Layer>,
    /// Its events, oldest first.
    pub events: Vec<EventRecord>,
}

/// A user's request about a job.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum JobAction {
    /// Stop a running plot at a safe point with the pen up (`PLOTTING → PAUSED`).
    Pause,
    /// Send a `READY` job submitted without `start` to the plotter (it plots as soon as one is
    /// free).
    Start,
    /// Continue a paused plot (`PAUSED → PLOTTING`).
    Resume,
    /// Stop a job wherever it is, a running plot included (`→ ABORTED`).
    Abort,
    /// Take a job that has not started plotting out of the queue (`→ ABORTED`).
    Cancel,
}

/// Why the queue could not do what was asked; [`QueueError::code`] is the API's error code.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// No job has this id.
    #[error("no job with id `{0}`")]
    UnknownJob(String),
    /// The job's state does not allow it.
    #[error("{0}")]
    InvalidState(String),
    /// Something in the request is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The request needs a plotter and none is attached.
    #[error("no plotter attached: {0}")]
    NoDevice(String),
    /// No attached device has this id.
    #[error("no device `{requested}` is attached; attached: {attached}")]
    UnknownDevice {
        /// The id asked for.
        requested: String,
        /// The ids there are.
        attached: String,
    },
    /// The device is plotting and cannot take a manual action.
    #[error("{0}")]
    DeviceBusy(String),
    /// The device refused or failed.
    #[error("device {device_id}: {message}")]
    Device {
        /// The device.
        device_id: String,
        /// What it said.
        message: String,
    },
    /// The daemon is shutting down and takes no new work.
    #[error("the daemon is shutting down and accepts no new jobs; submit again once it is back")]
    ShuttingDown,
    /// A file could not be stored or read.
    #[error("{0}")]
    Io(String),
    /// The disk holding the workspace is full; the message says what to free.
    #[error("{0}")]
    DiskFull(String),
    /// The database failed.
    #[error(transparent)]
    Store(StoreError),
}

impl JobAction {
    /// Every action.
    pub const ALL: [Self; 5] = [
        Self::Start,
        Self::Pause,
        Self::Resume,
        Self::Abort,
        Self::Cancel,
    ];

    /// The wire spelling (`pause`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Abort => "abort",
            Self::Cancel => "cancel",
        }
    }
}

impl QueueError {
    /// The API's error code (`JOB_NOT_FOUND`, `INVALID_STATE`, `NO_DEVICE`, …).
    pub const fn code(&self) -> &'static str {
        match self {
            Self::UnknownJob(_) => "JOB_NOT_FOUND",
            Self::InvalidState(_) => "INVALID_STATE",
            Self::Invalid(_) => "INVALID_REQUEST",
            Self::NoDevice(_) => "NO_DEVICE",
            Self::UnknownDevice { .. } => "DEVICE_NOT_FOUND",
            Self::DeviceBusy(_) => "DEVICE_BUSY",
            Self::Device { .. } => "DEVICE_ERROR",
            Self::ShuttingDown => "SHUTTING_DOWN",
            Self::DiskFull(_) => "DISK_FULL",
            Self::Io(_) | Self::Store(_) => "INTERNAL_ERROR",
        }
    }
}

impl From<StoreError> for QueueError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownJob(id) => Self::UnknownJob(id),
            StoreError::Transition { .. }
            | StoreError::NotRetryable { .. }
            | StoreError::NotFinished { .. } => Self::InvalidState(e.to_string()),
            StoreError::Invalid(m) => Self::Invalid(m),
            StoreError::Closed => Self::ShuttingDown,
            other => Self::Store(other),
        }
    }
}

impl fmt::Display for JobAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobAction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("`{s}` is not a job action: use start, pause, resume, abort or cancel")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobEvent, TransitionError};

    #[test]
    fn store_errors_map_to_codes() {
        let e = QueueError::from(StoreError::Transition {
            job_id: "j".into(),
            source: TransitionError::NotAllowed {
                from: JobState::Ready,
                event: JobEvent::Pause,
            },
        });
        assert_eq!(e.code(), "INVALID_STATE");
        assert!(e.to_string().contains("must be PLOTTING"), "{e}");
        assert_eq!(
            QueueError::from(StoreError::UnknownJob("x".into())).code(),
            "JOB_NOT_FOUND"
        );
        assert_eq!(QueueError::from(StoreError::Closed).code(), "SHUTTING_DOWN");
        assert!(
            QueueError::NoDevice("x".into())
                .to_string()
                .starts_with("no plotter attached: ")
        );
    }

    #[test]
    fn actions_parse_without_case() {
        for a in JobAction::ALL {
            assert_eq!(a.as_str().to_uppercase().parse::<JobAction>(), Ok(a));
        }
        assert!("stop".parse::<JobAction>().is_err());
    }
}
