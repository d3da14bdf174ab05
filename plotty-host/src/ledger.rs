//! The ledger records everything that happens to jobs, in the one order that keeps it safe:
//!
//! 1. the SQLite transaction (state and event row together) commits,
//! 2. the journal line is appended and fsynced,
//! 3. the event is broadcast to clients,
//! 4. the state's hooks start in their own task; their results are recorded the same way.
//!
//! Steps 1 and 2 run together on the store thread, so journal lines land in commit order. A failed
//! journal write does not undo the transition (the database is the record); it is logged and
//! raised as an alert. This is the only way jobs change; the queue actor, the API and the device
//! tasks all call it.
//!
//! On PostgreSQL, where several daemons may share the jobs, a ledger made
//! [`Ledger::holding_leases`] takes the lease of every job it moves to `ARMED` or `PLOTTING`,
//! recovers at start only the jobs no live daemon holds, and [`Ledger::keep_leases`] (run
//! periodically by the daemon) renews its leases and records the jobs of dead daemons `PAUSED`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::events::{Alert, DaemonEvent, EventSender, Severity};
use crate::hooks::{HookContext, HookRunner, HooksReport};
use crate::job::{JobState, Reason};
use crate::journal::{self, Entry, EntryKind};
use crate::store::jobs::{self, EventRecord};
use crate::store::{
    JobRecord, JobStore, NewJob, ResumePoint, StateChange, StoreError, TransitionRequest,
};
use crate::timestamp;

/// Records job changes; cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

struct Inner {
    store: JobStore,
    /// Held by a PostgreSQL change from its commit to its journal line, so that lines land in
    /// commit order (SQLite gets that from its one store thread).
    order: tokio::sync::Mutex<()>,
    /// This daemon's name and lease duration, when it shares a PostgreSQL database.
    lease: Option<LeaseHolder>,
    workspace: PathBuf,
    jobs_dir: PathBuf,
    events: EventSender,
    hooks: Option<HookRunner>,
}

impl Ledger {
    /// A ledger over `store` for the workspace `workspace` (journals under `<workspace>/jobs`),
    /// broadcasting on `events` and running `hooks` if given.
    pub fn new(
        store: impl Into<JobStore>,
        workspace: &Path,
        events: EventSender,
        hooks: Option<HookRunner>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: store.into(),
                order: tokio::sync::Mutex::new(()),
                lease: None,
                workspace: workspace.to_path_buf(),
                jobs_dir: workspace.join("jobs"),
                events,
                hooks,
            }),
        }
    }

    /// The same ledger, taking leases as the daemon `owner` (unique among the daemons sharing
    /// the database, and the same across its restarts) for `ttl`; only on PostgreSQL (SQLite has
    /// one daemon). Call before cloning.
    #[must_use]
    pub fn holding_leases(mut self, owner: String, ttl: std::time::Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner)
            && matches!(inner.store, JobStore::Postgres(_))
        {
            inner.lease = Some(LeaseHolder {
                owner,
                ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
            });
        }
        self
    }

    /// The lease this ledger takes, if any: the daemon's name and the lease duration in ms.
    pub fn lease(&self) -> Option<(&str, i64)> {
        self.inner
            .lease
            .as_ref()
            .map(|l| (l.owner.as_str(), l.ttl_ms))
    }

    /// Renews this daemon's leases and records `PAUSED` (interrupted) the jobs whose daemon
    /// stopped renewing theirs (journal, broadcast, hooks as any change). Returns the number of
    /// leases renewed and the changes. Does nothing without [`Ledger::holding_leases`].
    pub async fn keep_leases(&self) -> Result<(u64, Vec<StateChange>), StoreError> {
        let (Some(holder), JobStore::Postgres(store)) = (&self.inner.lease, &self.inner.store)
        else {
            return Ok((0, Vec::new()));
        };
        let now = now_ms();
        let renewed = store.renew_own(&holder.owner, now, holder.ttl_ms).await?;
        let _order = self.inner.order.lock().await;
        let expired = store.expire_leases(now).await?;
        let written = write_recoveries(&self.inner.jobs_dir, expired);
        let changes = written.iter().map(|(c, _)| c.clone()).collect();
        self.after(written);
        Ok((renewed, changes))
    }

    /// The store underneath (for queries).
    pub fn store(&self) -> &JobStore {
        &self.inner.store
    }

    /// The event bus it broadcasts on.
    pub fn bus(&self) -> EventSender {
        self.inner.events.clone()
    }

    /// The journal of a job.
    pub fn journal_path(&self, job_id: &str) -> PathBuf {
        journal::path(&self.inner.jobs_dir, job_id)
    }

    /// Adds a job in state `NEW` (submitted to this daemon, when it shares the database).
    pub async fn submit(&self, mut new: NewJob) -> Result<JobRecord, StoreError> {
        let jobs_dir = self.inner.jobs_dir.clone();
        if let Some(holder) = &self.inner.lease {
            new.submitted_by = Some(holder.owner.clone());
        }
        let JobStore::Sqlite(store) = &self.inner.store else {
            let _order = self.inner.order.lock().await;
            let (record, change) = self.inner.store.insert_job(new).await?;
            let err = write(&jobs_dir, &state_entry(&change));
            self.after(vec![(change, err)]);
            return Ok(record);
        };
        let (record, change, journal_err) = store
            .call(move |c| {
                let (record, change) = jobs::insert(c, &new)?;
                let err = write(&jobs_dir, &state_entry(&change));
                Ok((record, change, err))
            })
            .await?;
        self.after(vec![(change, journal_err)]);
        Ok(record)
    }

    /// Applies a transition (see [`crate::job::transition`]) and records it.
    pub async fn apply(&self, req: TransitionRequest) -> Result<StateChange, StoreError> {
        let jobs_dir = self.inner.jobs_dir.clone();
        let JobStore::Sqlite(store) = &self.inner.store else {
            let _order = self.inner.order.lock().await;
            let change = match (&self.inner.store, &self.inner.lease) {
                (JobStore::Postgres(p), Some(l)) => {
                    p.transition_leased(req, &l.owner, now_ms(), l.ttl_ms)
                        .await?
                }
                (store, _) => store.transition(req).await?,
            };
            let err = write(&jobs_dir, &state_entry(&change));
            self.after(vec![(change.clone(), err)]);
            return Ok(change);
        };
        let (change, journal_err) = store
            .call(move |c| {
                let change = jobs::transition(c, &req)?;
                let err = write(&jobs_dir, &state_entry(&change));
                Ok((change, err))
            })
            .await?;
        self.after(vec![(change.clone(), journal_err)]);
        Ok(change)
    }

    /// Claims the head job released for plotting (`READY` with `start`) for `device_id`, under
    /// this daemon's lease, and records `READY → ARMED` like any change (journal, broadcast,
    /// hooks); `None` when there is none. Several daemons claiming at once never take the same
    /// job (`FOR UPDATE SKIP LOCKED` on PostgreSQL). Without [`Ledger::holding_leases`] (SQLite)
    /// the lease is taken in the name `local`. Only a job whose requirements the plotter
    /// `profile` meets is claimed (jobs ahead of it that it does not meet wait for another).
    pub async fn claim(
        &self,
        device_id: &str,
        profile: crate::devices::registry::Profile,
    ) -> Result<Option<JobRecord>, StoreError> {
        let (owner, ttl_ms) = self
            .inner
            .lease
            .as_ref()
            .map_or(("local".to_owned(), 0), |l| (l.owner.clone(), l.ttl_ms));
        let claim = jobs::Claim {
            owner,
            device_id: Some(device_id.to_owned()),
            profile: Some(profile),
            now_ms: now_ms(),
            ttl_ms,
        };
        let _order = self.inner.order.lock().await;
        let Some((record, change)) = self.inner.store.claim_next(claim).await? else {
            return Ok(None);
        };
        let err = write(&self.inner.jobs_dir, &state_entry(&change));
        self.after(vec![(change, err)]);
        Ok(Some(record))
    }

    /// Retries a `FAILED` or `ABORTED` job as a new job at `QUEUED`; returns the new job.
    pub async fn retry(&self, job_id: &str) -> Result<JobRecord, StoreError> {
        let jobs_dir = self.inner.jobs_dir.clone();
        let id = job_id.to_owned();
        let JobStore::Sqlite(store) = &self.inner.store else {
            let _order = self.inner.order.lock().await;
            let (record, changes) = self.inner.store.retry(&id).await?;
            let written = changes
                .into_iter()
                .map(|ch| {
                    let err = write(&jobs_dir, &state_entry(&ch));
                    (ch, err)
                })
                .collect();
            self.after(written);
            return Ok(record);
        };
        let (record, written) = store
            .call(move |c| {
                let (record, changes) = jobs::retry(c, &id)?;
                let written: Vec<_> = changes
                    .into_iter()
                    .map(|ch| {
                        let err = write(&jobs_dir, &state_entry(&ch));
                        (ch, err)
                    })
                    .collect();
                Ok((record, written))
            })
            .await?;
        self.after(written);
        Ok(record)
    }

    /// Start-up recovery: jobs left `ARMED` or `PLOTTING` by a crash become `PAUSED` (reason
    /// `interrupted`) with their resume point; each gets a `state_change` and a `recovery` line.
    pub async fn recover_interrupted(&self) -> Result<Vec<StateChange>, StoreError> {
        let jobs_dir = self.inner.jobs_dir.clone();
        let journal = move |recovered| write_recoveries(&jobs_dir, recovered);
        let written = match &self.inner.store {
            JobStore::Sqlite(store) => {
                store
                    .call(move |c| Ok(journal(jobs::recover_interrupted(c)?)))
                    .await?
            }
            JobStore::Postgres(p) => {
                let _order = self.inner.order.lock().await;
                match &self.inner.lease {
                    Some(l) => {
                        let recovered = journal(p.recover_owned(&l.owner, now_ms()).await?);
                        // Its paused jobs (those just paused too) are its own again.
                        p.hold_paused(&l.owner, now_ms(), l.ttl_ms).await?;
                        recovered
                    }
                    None => journal(p.recover_interrupted().await?),
                }
            }
        };
        let changes = written.iter().map(|(c, _)| c.clone()).collect();
        self.after(written);
        Ok(changes)
    }

    /// Records the resume point of a running job; with `journal`, also as a `progress_checkpoint`
    /// line and event (use it at layer ends, not for the once-a-second updates).
    pub async fn checkpoint(
        &self,
        job_id: &str,
        point: ResumePoint,
        journal: bool,
    ) -> Result<(), StoreError> {
        self.checkpoint_line(job_id, point, journal, None).await
    }

    /// Records the resume point a resumed job goes on from, with a `progress_checkpoint` line
    /// and event whose metadata's `resumed` says where (and why there) when `note` is given.
    pub async fn checkpoint_noted(
        &self,
        job_id: &str,
        point: ResumePoint,
        note: Option<&str>,
    ) -> Result<(), StoreError> {
        self.checkpoint_line(job_id, point, true, note).await
    }

    async fn checkpoint_line(
        &self,
        job_id: &str,
        point: ResumePoint,
        journal: bool,
        note: Option<&str>,
    ) -> Result<(), StoreError> {
        let note = note.map(str::to_owned);
        let jobs_dir = self.inner.jobs_dir.clone();
        let id = job_id.to_owned();
        let JobStore::Sqlite(store) = &self.inner.store else {
            let _order = self.inner.order.lock().await;
            let store = &self.inner.store;
            store.set_resume_point(&id, point.clone()).await?;
            if journal {
                let meta = checkpoint_meta(&point, note.as_deref());
                let state = store.job(&id).await?.map(|j| j.state);
                store
                    .record_event(
                        &id,
                        EntryKind::ProgressCheckpoint,
                        state,
                        None,
                        meta.clone(),
                        &point.recorded_at,
                    )
                    .await?;
                let entry = Entry {
                    timestamp: point.recorded_at.clone(),
                    to_state: state.map(|s| s.to_string()),
                    metadata: meta,
                    ..Entry::new(EntryKind::ProgressCheckpoint, id.as_str())
                };
                if let Some(e) = write(&jobs_dir, &entry) {
                    self.journal_failed(job_id, &e);
                }
            }
            return Ok(());
        };
        let err = store
            .call(move |c| {
                let tx = c.transaction()?;
                jobs::set_resume_point(&tx, &id, &point)?;
                let meta = checkpoint_meta(&point, note.as_deref());
                let state = current_state(&tx, &id)?;
                if journal {
                    jobs::insert_event(
                        &tx,
                        &id,
                        EntryKind::ProgressCheckpoint,
                        None,
                        state,
                        None,
                        &meta,
                        &point.recorded_at,
                    )?;
                }
                tx.commit()?;
                Ok(journal
                    .then(|| {
                        let entry = Entry {
                            timestamp: point.recorded_at.clone(),
                            to_state: state.map(|s| s.to_string()),
                            metadata: meta,
                            ..Entry::new(EntryKind::ProgressCheckpoint, id.as_str())
                        };
                        write(&jobs_dir, &entry)
                    })
                    .flatten())
            })
            .await?;
        if let Some(e) = err {
            self.journal_failed(job_id, &e);
        }
        Ok(())
    }

    /// Records a device problem met while working on a job (event row, journal line, alert).
    pub async fn device_error(
        &self,
        job_id: &str,
        message: &str,
        metadata: Value,
    ) -> Result<(), StoreError> {
        let mut meta = match metadata {
            Value::Object(m) => m,
            other => {
                let mut m = serde_json::Map::new();
                if !other.is_null() {
                    m.insert("value".into(), other);
                }
                m
            }
        };
        meta.insert("error".into(), Value::String(message.to_owned()));
        let meta = Value::Object(meta);
        self.record_other(
            job_id,
            EntryKind::DeviceError,
            Some(Reason::DeviceError),
            meta.clone(),
        )
        .await?;
        self.publish(DaemonEvent::Alert(Alert {
            severity: Severity::Error,
            title: "Device error".into(),
            message: format!("job {job_id}: {message}"),
            source: "device".into(),
            metadata: meta,
        }));
        Ok(())
    }

    /// Records the results of a state's hooks and raises an alert for each failure.
    pub async fn record_hooks(&self, report: &HooksReport) -> Result<(), StoreError> {
        let meta = json!({ "state": report.state.as_str(), "results": report.results_json() });
        self.record_other(&report.job_id, EntryKind::HooksExecuted, None, meta)
            .await?;
        if let Ok(job_id) = crate::job::JobId::parse(&report.job_id) {
            self.publish(DaemonEvent::HooksExecuted {
                job_id,
                state: report.state,
                results: report.results_json(),
            });
        }
        for alert in report.alerts() {
            tracing::warn!(job_id = %report.job_id, "{}", alert.message);
            self.publish(DaemonEvent::Alert(alert));
        }
        Ok(())
    }

    /// The events recorded for a job, oldest first.
    pub async fn events(&self, job_id: &str) -> Result<Vec<EventRecord>, StoreError> {
        self.inner.store.events(job_id).await
    }

    async fn record_other(
        &self,
        job_id: &str,
        kind: EntryKind,
        reason: Option<Reason>,
        metadata: Value,
    ) -> Result<(), StoreError> {
        let jobs_dir = self.inner.jobs_dir.clone();
        let id = job_id.to_owned();
        let JobStore::Sqlite(store) = &self.inner.store else {
            let _order = self.inner.order.lock().await;
            let at = timestamp::now();
            let state = self.inner.store.job(&id).await?.map(|j| j.state);
            self.inner
                .store
                .record_event(
                    &id,
                    kind,
                    state,
                    reason.map(Reason::as_str),
                    metadata.clone(),
                    &at,
                )
                .await?;
            let entry = Entry {
                timestamp: at,
                to_state: state.map(|s| s.to_string()),
                reason: reason.map(|r| r.to_string()),
                metadata,
                ..Entry::new(kind, id.as_str())
            };
            if let Some(e) = write(&jobs_dir, &entry) {
                self.journal_failed(job_id, &e);
            }
            return Ok(());
        };
        let err = store
            .call(move |c| {
                let at = timestamp::now();
                let state = current_state(c, &id)?;
                jobs::insert_event(
                    c,
                    &id,
                    kind,
                    None,
                    state,
                    reason.map(Reason::as_str),
                    &metadata,
                    &at,
                )?;
                let entry = Entry {
                    timestamp: at,
                    to_state: state.map(|s| s.to_string()),
                    reason: reason.map(|r| r.to_string()),
                    metadata,
                    ..Entry::new(kind, id.as_str())
                };
                Ok(write(&jobs_dir, &entry))
            })
            .await?;
        if let Some(e) = err {
            self.journal_failed(job_id, &e);
        }
        Ok(())
    }

    /// Steps 3 and 4 for recorded state changes: broadcast, then hooks.
    fn after(&self, written: Vec<(StateChange, Option<String>)>) {
        for (change, journal_err) in written {
            if let Some(e) = journal_err {
                self.journal_failed(change.job_id.as_str(), &e);
            }
            tracing::info!(
                job_id = %change.job_id,
                from = change.from.map_or("-", JobState::as_str),
                to = %change.to,
                reason = %change.reason,
                "job state change"
            );
            self.publish(DaemonEvent::JobStateChanged(change.clone()));
            self.start_hooks(&change);
        }
    }

    fn start_hooks(&self, change: &StateChange) {
        let Some(runner) = &self.inner.hooks else {
            return;
        };
        let Some(handle) = runner.spawn(HookContext::from_change(change, &self.inner.workspace))
        else {
            return;
        };
        let this = self.clone();
        runner.tracker().spawn(async move {
            match handle.await {
                Ok(report) => {
                    if let Err(e) = this.record_hooks(&report).await {
                        tracing::error!(job_id = %report.job_id, error = %e, "recording hook results failed");
                    }
                }
                Err(e) => tracing::error!(error = %e, "a hook task ended abnormally"),
            }
        });
    }

    fn publish(&self, event: DaemonEvent) {
        // No subscriber is not an error: the API may not be running.
        let _ = self.inner.events.send(event);
    }

    fn journal_failed(&self, job_id: &str, error: &str) {
        tracing::error!(
            job_id,
            error,
            "writing the job journal failed; the change is recorded in the database"
        );
        self.publish(DaemonEvent::Alert(Alert {
            severity: Severity::Error,
            title: "Journal write failed".into(),
            message: format!(
                "job {job_id}: the journal could not be written ({error}); the database has the \
                 change. Check free space and permissions of the workspace."
            ),
            source: "journal".into(),
            metadata: json!({ "job_id": job_id }),
        }));
    }
}

/// Journals recovered jobs: a `state_change` and a `recovery` line each; the errors as text.
fn write_recoveries(
    jobs_dir: &Path,
    recovered: Vec<(StateChange, i64)>,
) -> Vec<(StateChange, Option<String>)> {
    recovered
        .into_iter()
        .map(|(ch, _)| {
            let mut err = write(jobs_dir, &state_entry(&ch));
            let recovery = Entry {
                timestamp: ch.at.clone(),
                from_state: ch.from.map(|s| s.to_string()),
                to_state: Some(ch.to.to_string()),
                reason: Some(Reason::Interrupted.to_string()),
                metadata: ch.metadata.clone(),
                ..Entry::new(EntryKind::Recovery, ch.job_id.as_str())
            };
            err = err.or_else(|| write(jobs_dir, &recovery));
            (ch, err)
        })
        .collect()
}

/// A daemon's name and lease duration (see [`Ledger::holding_leases`]).
struct LeaseHolder {
    owner: String,
    ttl_ms: i64,
}

/// Now, ms since the Unix epoch: the lease clock, shared by the daemons through their hosts'
/// clocks (keep them in sync, e.g. with NTP; the lease lasts far longer than their drift).
/// The metadata of a `progress_checkpoint` line: the resume point, and where a resumed job went
/// on from (`resumed`) when told.
fn checkpoint_meta(point: &ResumePoint, note: Option<&str>) -> Value {
    let mut meta = json!({ "resume_point": jobs::resume_json(point) });
    if let (Some(note), Some(m)) = (note, meta.as_object_mut()) {
        m.insert("resumed".into(), Value::String(note.to_owned()));
    }
    meta
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn current_state(c: &rusqlite::Connection, id: &str) -> Result<Option<JobState>, StoreError> {
    Ok(jobs::get(c, id)?.map(|j| j.state))
}

fn state_entry(change: &StateChange) -> Entry {
    Entry {
        timestamp: change.at.clone(),
        from_state: change.from.map(|s| s.to_string()),
        to_state: Some(change.to.to_string()),
        reason: Some(change.reason.to_string()),
        metadata: change.metadata.clone(),
        ..Entry::new(EntryKind::StateChange, change.job_id.as_str())
    }
}

/// Appends to the job's journal; the error as text, for the caller to report.
fn write(jobs_dir: &Path, entry: &Entry) -> Option<String> {
    journal::append(&journal::path(jobs_dir, &entry.job_id), entry)
        .err()
        .map(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tokio_util::task::TaskTracker;

    use super::*;
    use crate::events;
    use crate::hooks::{Hook, HookSet};
    use crate::job::{JobEvent, JobId};

    async fn ledger(
        dir: &Path,
        hooks: Option<HookRunner>,
    ) -> (Ledger, tokio::sync::broadcast::Receiver<DaemonEvent>) {
        let (store, _) = crate::store::Store::open(&dir.join("plotty.db")).unwrap();
        let bus = events::bus();
        let rx = bus.subscribe();
        (Ledger::new(store, dir, bus, hooks), rx)
    }

    fn req(id: &JobId, event: JobEvent) -> TransitionRequest {
        TransitionRequest {
            job_id: id.clone(),
            event,
            reason: Reason::User,
            error: None,
            metadata: Value::Null,
        }
    }

    #[tokio::test]
    async fn journal_is_written_before_the_broadcast() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, mut rx) = ledger(dir.path(), None).await;
        let job = ledger
            .submit(NewJob {
                name: "a".into(),
                ..NewJob::default()
            })
            .await
            .unwrap();
        ledger.apply(req(&job.id, JobEvent::Enqueue)).await.unwrap();
        for want in [JobState::New, JobState::Queued] {
            let DaemonEvent::JobStateChanged(ch) = rx.recv().await.unwrap() else {
                panic!("expected a state change");
            };
            assert_eq!(ch.to, want);
            // When the event is seen, its journal line is already on disk.
            let lines = journal::read(&ledger.journal_path(job.id.as_str())).unwrap();
            assert!(
                lines
                    .entries
                    .iter()
                    .any(|e| e.to_state.as_deref() == Some(want.as_str()))
            );
        }
        let refused = ledger.apply(req(&job.id, JobEvent::Resume)).await;
        assert!(refused.is_err());
        assert_eq!(
            journal::read(&ledger.journal_path(job.id.as_str()))
                .unwrap()
                .entries
                .len(),
            2
        );
    }

    #[tokio::test]
    async fn hooks_run_after_the_transition_and_are_journaled() {
        let dir = tempfile::tempdir().unwrap();
        let mut map = BTreeMap::new();
        map.insert(
            JobState::Queued,
            vec![Hook::command("echo \"$PLOTTY_JOB_NAME\" \"$PLOTTY_FROM_STATE\"", None).unwrap()],
        );
        let tracker = TaskTracker::new();
        let runner = HookRunner::new(HookSet::new(map), tracker.clone());
        let (ledger, mut rx) = ledger(dir.path(), Some(runner)).await;
        let job = ledger
            .submit(NewJob {
                name: "x; y".into(),
                ..NewJob::default()
            })
            .await
            .unwrap();
        ledger.apply(req(&job.id, JobEvent::Enqueue)).await.unwrap();
        tracker.close();
        tracker.wait().await;
        let mut kinds = Vec::new();
        while let Ok(ev) = rx.try_recv() {
            kinds.push(match ev {
                DaemonEvent::JobStateChanged(c) => c.to.to_string(),
                DaemonEvent::HooksExecuted { results, .. } => {
                    assert_eq!(results[0]["stdout"], "x; y NEW\n");
                    "hooks".into()
                }
                other => panic!("unexpected event {other:?}"),
            });
        }
        assert_eq!(kinds, ["NEW", "QUEUED", "hooks"]);
        let entries = journal::read(&ledger.journal_path(job.id.as_str()))
            .unwrap()
            .entries;
        assert_eq!(entries.last().unwrap().kind, EntryKind::HooksExecuted);
        let events = ledger.events(job.id.as_str()).await.unwrap();
        assert_eq!(events.last().unwrap().kind, "hooks_executed");
    }

    #[tokio::test]
    async fn recovery_writes_state_change_and_recovery_lines() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, _rx) = ledger(dir.path(), None).await;
        let job = ledger
            .submit(NewJob {
                name: "a".into(),
                ..NewJob::default()
            })
            .await
            .unwrap();
        for e in [
            JobEvent::Enqueue,
            JobEvent::Analyzed,
            JobEvent::Optimized,
            JobEvent::Prepared,
            JobEvent::Arm,
            JobEvent::Start,
        ] {
            ledger.apply(req(&job.id, e)).await.unwrap();
        }
        ledger
            .checkpoint(
                job.id.as_str(),
                ResumePoint {
                    layer: 0,
                    stroke: 3,
                    vertex: 1,
                    pen_down: true,
                    position: None,
                    recorded_at: timestamp::now(),
                    streaming: false,
                },
                true,
            )
            .await
            .unwrap();
        let changes = ledger.recover_interrupted().await.unwrap();
        assert_eq!(changes.len(), 1);
        let entries = journal::read(&ledger.journal_path(job.id.as_str()))
            .unwrap()
            .entries;
        let tail: Vec<_> = entries.iter().rev().take(3).map(|e| e.kind).collect();
        assert_eq!(
            tail,
            [
                EntryKind::Recovery,
                EntryKind::StateChange,
                EntryKind::ProgressCheckpoint
            ]
        );
        assert_eq!(
            entries.last().unwrap().metadata["resume_point"]["stroke"],
            3
        );
        let record = ledger.store().job(job.id.as_str()).await.unwrap().unwrap();
        assert_eq!(record.state, JobState::Paused);
        assert_eq!(record.resume.unwrap().stroke, 3);
    }

    #[tokio::test]
    async fn a_journal_failure_does_not_lose_the_transition() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, mut rx) = ledger(dir.path(), None).await;
        let job = ledger
            .submit(NewJob {
                name: "a".into(),
                ..NewJob::default()
            })
            .await
            .unwrap();
        // Make the journal unwritable: replace the job directory by a file.
        let job_dir = dir.path().join("jobs").join(job.id.as_str());
        std::fs::remove_dir_all(&job_dir).unwrap();
        std::fs::write(&job_dir, b"").unwrap();
        let change = ledger.apply(req(&job.id, JobEvent::Enqueue)).await.unwrap();
        assert_eq!(change.to, JobState::Queued);
        let mut saw_alert = false;
        while let Ok(ev) = rx.try_recv() {
            if let DaemonEvent::Alert(a) = ev {
                assert_eq!(a.source, "journal");
                saw_alert = true;
            }
        }
        assert!(saw_alert);
        let record = ledger.store().job(job.id.as_str()).await.unwrap().unwrap();
        assert_eq!(record.state, JobState::Queued);
    }
}
