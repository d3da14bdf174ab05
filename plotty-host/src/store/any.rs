//! [`JobStore`]: the job store on either backend, SQLite (the embedded default, [`Store`]) or
//! PostgreSQL ([`PgStore`]), behind one async API with the same answers. The store test suite
//! (`store/suite.rs`) runs every test against both.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::jobs::{self, Claim, EventRecord, JobRecord, Layer, Lease, NewJob, ResumePoint};
use super::presets::{self, Preset};
use super::{PgStore, StateChange, Store, StoreError, TransitionRequest};
use crate::job::JobState;
use crate::journal::EntryKind;

/// The job store on SQLite or PostgreSQL; cheap to clone.
#[derive(Clone)]
pub enum JobStore {
    /// The embedded database file.
    Sqlite(Store),
    /// A PostgreSQL database shared by several daemons.
    Postgres(PgStore),
}

impl From<Store> for JobStore {
    fn from(store: Store) -> Self {
        Self::Sqlite(store)
    }
}

impl From<PgStore> for JobStore {
    fn from(store: PgStore) -> Self {
        Self::Postgres(store)
    }
}

impl JobStore {
    /// Where the jobs are: the SQLite file, or the PostgreSQL URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite(s) => s.path().display().to_string(),
            Self::Postgres(p) => p.url().to_owned(),
        }
    }

    /// Connections that answer queries besides the writer (SQLite), or the pool's size
    /// (PostgreSQL).
    pub fn read_connections(&self) -> usize {
        match self {
            Self::Sqlite(s) => s.read_connections(),
            Self::Postgres(p) => p.max_connections(),
        }
    }

    /// The next `READY` job to plot, if any.
    pub async fn next_ready(&self) -> Result<Option<JobRecord>, StoreError> {
        Ok(self.jobs(vec![JobState::Ready]).await?.into_iter().next())
    }

    /// Adds a job in state `NEW`.
    pub async fn insert_job(&self, new: NewJob) -> Result<(JobRecord, StateChange), StoreError> {
        match self {
            Self::Sqlite(s) => s.insert_job(new).await,
            Self::Postgres(p) => p.insert_job(new).await,
        }
    }

    /// Applies a transition and records its event in one transaction.
    pub async fn transition(&self, req: TransitionRequest) -> Result<StateChange, StoreError> {
        match self {
            Self::Sqlite(s) => s.transition(req).await,
            Self::Postgres(p) => p.transition(req).await,
        }
    }

    /// Retries a `FAILED` or `ABORTED` job as a new `QUEUED` one.
    pub async fn retry(&self, id: &str) -> Result<(JobRecord, Vec<StateChange>), StoreError> {
        match self {
            Self::Sqlite(s) => {
                let id = id.to_owned();
                s.call(move |c| jobs::retry(c, &id)).await
            }
            Self::Postgres(p) => p.retry(id).await,
        }
    }

    /// Single-daemon crash recovery: `ARMED` and `PLOTTING` jobs become `PAUSED` (interrupted).
    pub async fn recover_interrupted(&self) -> Result<Vec<(StateChange, i64)>, StoreError> {
        match self {
            Self::Sqlite(s) => s.call(jobs::recover_interrupted).await,
            Self::Postgres(p) => p.recover_interrupted().await,
        }
    }

    /// Claims the head job released for plotting under a lease; `None` when there is none.
    pub async fn claim_next(
        &self,
        claim: Claim,
    ) -> Result<Option<(JobRecord, StateChange)>, StoreError> {
        match self {
            Self::Sqlite(s) => s.call(move |c| jobs::claim_next(c, &claim)).await,
            Self::Postgres(p) => p.claim_next(claim).await,
        }
    }

    /// Extends `owner`'s lease on a job; [`StoreError::LeaseLost`] once it expired.
    pub async fn renew_lease(
        &self,
        id: &str,
        owner: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Lease, StoreError> {
        match self {
            Self::Sqlite(s) => {
                let (id, owner) = (id.to_owned(), owner.to_owned());
                s.call(move |c| jobs::renew_lease(c, &id, &owner, now_ms, ttl_ms))
                    .await
            }
            Self::Postgres(p) => p.renew_lease(id, owner, now_ms, ttl_ms).await,
        }
    }

    /// Ends every lease expired at `now_ms`: running jobs become `PAUSED` (interrupted).
    pub async fn expire_leases(&self, now_ms: i64) -> Result<Vec<(StateChange, i64)>, StoreError> {
        match self {
            Self::Sqlite(s) => s.call(move |c| jobs::expire_leases(c, now_ms)).await,
            Self::Postgres(p) => p.expire_leases(now_ms).await,
        }
    }

    /// Appends a non-transition event (hooks results, device error, checkpoint) to a job's
    /// history, recorded with the job's `state`; returns its id.
    pub async fn record_event(
        &self,
        id: &str,
        kind: EntryKind,
        state: Option<JobState>,
        reason: Option<&str>,
        metadata: Value,
        at: &str,
    ) -> Result<i64, StoreError> {
        match self {
            Self::Sqlite(s) => {
                let (id, reason, at) = (id.to_owned(), reason.map(str::to_owned), at.to_owned());
                s.call(move |c| {
                    jobs::insert_event(c, &id, kind, None, state, reason.as_deref(), &metadata, &at)
                })
                .await
            }
            Self::Postgres(p) => p.record_event(id, kind, state, reason, &metadata, at).await,
        }
    }

    /// Records the resume point of a running job.
    pub async fn set_resume_point(&self, id: &str, point: ResumePoint) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(s) => {
                let id = id.to_owned();
                s.call(move |c| jobs::set_resume_point(c, &id, &point))
                    .await
            }
            Self::Postgres(p) => p.set_resume_point(id, &point).await,
        }
    }

    /// Marks the resume points a plot on `device` could resume from as not searchable; see
    /// [`jobs::clear_streaming`].
    pub async fn clear_streaming(&self, device: &str) -> Result<usize, StoreError> {
        match self {
            Self::Sqlite(s) => {
                let device = device.to_owned();
                s.call(move |c| jobs::clear_streaming(c, &device)).await
            }
            Self::Postgres(p) => p.clear_streaming(device).await,
        }
    }

    /// Records a job's estimates (seconds; `None` leaves a value as it is).
    pub async fn set_estimates(
        &self,
        id: &str,
        pre_s: Option<f64>,
        post_s: Option<f64>,
    ) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(s) => {
                let id = id.to_owned();
                s.call(move |c| jobs::set_estimates(c, &id, pre_s, post_s))
                    .await
            }
            Self::Postgres(p) => p.set_estimates(id, pre_s, post_s).await,
        }
    }

    /// Sets one key of a job's metadata.
    pub async fn set_metadata(&self, id: &str, key: &str, value: Value) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(s) => {
                let (id, key) = (id.to_owned(), key.to_owned());
                s.call(move |c| jobs::set_metadata(c, &id, &key, value))
                    .await
            }
            Self::Postgres(p) => p.set_metadata(id, key, value).await,
        }
    }

    /// Records that a job is plotted on the simulator.
    pub async fn set_simulated(&self, id: &str) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(s) => {
                let id = id.to_owned();
                s.call(move |c| jobs::set_simulated(c, &id)).await
            }
            Self::Postgres(p) => p.set_simulated(id).await,
        }
    }

    /// Records where a job's SVG is stored.
    pub async fn set_source_path(&self, id: &str, path: PathBuf) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(s) => s.set_source_path(id, path).await,
            Self::Postgres(p) => {
                let text = path.to_str().ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "{} is not valid UTF-8; use a workspace path of plain text",
                        path.display()
                    ))
                })?;
                p.set_source_path(id, text).await
            }
        }
    }

    /// Stores the SVG of a job in the database (schema 6), so that every daemon sharing it can
    /// plot the job.
    pub async fn set_source_svg(&self, id: &str, svg: Vec<u8>) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(s) => {
                let id = id.to_owned();
                s.call(move |c| jobs::set_source_svg(c, &id, &svg)).await
            }
            Self::Postgres(p) => p.set_source_svg(id, &svg).await,
        }
    }

    /// The SVG of a job stored in the database, if any.
    pub async fn source_svg(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Self::Sqlite(s) => {
                let id = id.to_owned();
                s.call(move |c| jobs::source_svg(c, &id)).await
            }
            Self::Postgres(p) => p.source_svg(id).await,
        }
    }

    /// Deletes a job in a final state with its layers and events; returns it as it was.
    pub async fn delete_job(&self, id: &str) -> Result<JobRecord, StoreError> {
        match self {
            Self::Sqlite(s) => s.delete_job(id).await,
            Self::Postgres(p) => p.delete_job(id).await,
        }
    }

    /// One job.
    pub async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        match self {
            Self::Sqlite(s) => s.job(id).await,
            Self::Postgres(p) => p.job(id).await,
        }
    }

    /// Jobs in `states` (all when empty) in queue order: priority, then submission.
    pub async fn jobs(&self, states: Vec<JobState>) -> Result<Vec<JobRecord>, StoreError> {
        match self {
            Self::Sqlite(s) => s.jobs(states).await,
            Self::Postgres(p) => p.jobs(&states).await,
        }
    }

    /// A job's recorded events, oldest first.
    pub async fn events(&self, id: &str) -> Result<Vec<EventRecord>, StoreError> {
        match self {
            Self::Sqlite(s) => s.events(id).await,
            Self::Postgres(p) => p.events(id).await,
        }
    }

    /// The device a job was last recorded on.
    pub async fn device_of(&self, id: &str) -> Result<Option<String>, StoreError> {
        match self {
            Self::Sqlite(s) => s.device_of(id).await,
            Self::Postgres(p) => p.device_of(id).await,
        }
    }

    /// Replaces a job's layers.
    pub async fn set_layers(&self, id: &str, layers: Vec<Layer>) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(s) => s.set_layers(id, layers).await,
            Self::Postgres(p) => p.set_layers(id, &layers).await,
        }
    }

    /// A job's layers in plot order.
    pub async fn layers(&self, id: &str) -> Result<Vec<Layer>, StoreError> {
        match self {
            Self::Sqlite(s) => s.layers(id).await,
            Self::Postgres(p) => p.layers(id).await,
        }
    }

    /// Number of jobs in each state (states without jobs are left out).
    pub async fn state_counts(&self) -> Result<BTreeMap<JobState, u64>, StoreError> {
        match self {
            Self::Sqlite(s) => s.state_counts().await,
            Self::Postgres(p) => p.state_counts().await,
        }
    }

    /// Every preset, by name.
    pub async fn presets(&self) -> Result<Vec<Preset>, StoreError> {
        match self {
            Self::Sqlite(s) => s.call(|c| presets::list(c)).await,
            Self::Postgres(p) => p.presets().await,
        }
    }

    /// Saves a preset (options already checked), replacing one of the same name.
    pub async fn save_preset(&self, name: &str, options: Value) -> Result<Preset, StoreError> {
        match self {
            Self::Sqlite(s) => {
                let name = name.to_owned();
                s.call(move |c| presets::save(c, &name, &options)).await
            }
            Self::Postgres(p) => p.save_preset(name, &options).await,
        }
    }

    /// Deletes a preset; `None` when there is none of that name.
    pub async fn delete_preset(&self, name: &str) -> Result<Option<Preset>, StoreError> {
        match self {
            Self::Sqlite(s) => {
                let name = name.to_owned();
                s.call(move |c| presets::delete(c, &name)).await
            }
            Self::Postgres(p) => p.delete_preset(name).await,
        }
    }

    /// Closes the store; later calls fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        match self {
            Self::Sqlite(s) => s.close().await,
            Self::Postgres(p) => p.close(),
        }
    }
}
