//! Jobs, their layers and events in SQLite: row ⇄ record mapping and the transactions that change
//! them. Plain functions over a `Connection`, run on the store thread (see [`super::Store`]).
//!
//! A state change is one `IMMEDIATE` transaction that reads the current state, asks
//! [`crate::job::transition`] for the next one, updates the row and appends the event row: two
//! writers can never both move the same job, and a job's state and its history never disagree.

use std::path::PathBuf;

use plotty_motion::kinematics::{MotorSteps, Point};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::{Map, Value, json};

use super::StoreError;
use crate::devices::registry::{Profile, Requirements};
use crate::job::{self, JobEvent, JobId, JobState, Reason};
use crate::journal::EntryKind;
use crate::timestamp;

/// Longest accepted job name, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// A job to add.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct NewJob {
    /// Human name (the file name by default).
    pub name: String,
    /// The SVG it plots, if it came from a file.
    pub source_path: Option<PathBuf>,
    /// Higher runs first; equal priorities run in submission order.
    pub priority: i32,
    /// Anything else worth keeping (paper, options of the submission).
    pub metadata: Value,
    /// The daemon (`daemon.name`) it is submitted to, when several share the database.
    pub submitted_by: Option<String>,
    /// What it asks of the plotter that draws it (schema 7).
    pub requirements: Requirements,
}

/// Where the machine is: the firmware's step counters and the point they stand for.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct MachinePosition {
    /// Motor step counters (`QS`).
    pub steps: MotorSteps,
    /// The same position on the paper.
    pub point: Point,
}

/// The last point known to be drawn, from which a paused or interrupted job continues.
#[derive(Clone, PartialEq, Debug)]
pub struct ResumePoint {
    /// Layer index (0-based, plot order).
    pub layer: u32,
    /// Stroke index within the layer.
    pub stroke: u32,
    /// Vertex index within the stroke.
    pub vertex: u32,
    /// Whether the motion to continue with draws (the pen goes down at the position first).
    pub pen_down: bool,
    /// Machine position at that point, when known.
    pub position: Option<MachinePosition>,
    /// When it was recorded (RFC 3339).
    pub recorded_at: String,
    /// Stored by a run streaming along the program past it (schema 10): after a crash or a lost
    /// link the board may have run on, and a resume looks along the path ahead for where it
    /// stopped. False for a clean stop's point and once a manual action or a resume may have
    /// moved the carriage: it then goes back to this point.
    pub streaming: bool,
}

/// A job as stored.
#[derive(Clone, PartialEq, Debug)]
pub struct JobRecord {
    /// Its id.
    pub id: JobId,
    /// Submission sequence number (queue tie-breaker).
    pub seq: i64,
    /// Human name.
    pub name: String,
    /// Current state.
    pub state: JobState,
    /// Queue priority (higher first).
    pub priority: i32,
    /// The SVG it plots.
    pub source_path: Option<String>,
    /// When it was submitted.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// Reason of the last transition (`interrupted`, `pen_change`, …).
    pub state_reason: Option<String>,
    /// The error that failed or paused it.
    pub error: Option<String>,
    /// The job it retries.
    pub retry_of: Option<String>,
    /// Where to continue from.
    pub resume: Option<ResumePoint>,
    /// Estimate before optimisation, seconds.
    pub estimate_pre_s: Option<f64>,
    /// Estimate after optimisation, seconds.
    pub estimate_post_s: Option<f64>,
    /// When plotting first started.
    pub started_at: Option<String>,
    /// When it reached a final state.
    pub finished_at: Option<String>,
    /// Submission metadata.
    pub metadata: Value,
    /// Plotted on the simulator (schema 3): nothing was drawn on paper, whatever its state.
    pub simulated: bool,
    /// The daemon holding the job (schema 4), while it is ARMED, PLOTTING or PAUSED there.
    pub lease: Option<Lease>,
    /// The daemon (`daemon.name`) that claimed the job to plot it (schema 6), kept after the
    /// plot: a PAUSED job resumes on that daemon only, whose plotter has its paper.
    pub daemon: Option<String>,
    /// The daemon the job was submitted to (schema 6).
    pub submitted_by: Option<String>,
    /// The plotter it was last armed on (schema 7), kept after the plot.
    pub device: Option<String>,
    /// What it asks of the plotter that draws it (schema 7).
    pub requirements: Requirements,
}

/// A daemon's hold on the job it claimed (schema 4): renewed while it works on the job, the job
/// is recorded PAUSED (interrupted) once it expired (see [`expire_leases`]).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Lease {
    /// The daemon's name (unique among the daemons sharing the database).
    pub owner: String,
    /// When it expires, milliseconds since the Unix epoch.
    pub expires_ms: i64,
}

/// A daemon's request for the next job (see [`claim_next`]). Time is given, never read, so that
/// tests drive the lease clock.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Claim {
    /// The daemon claiming.
    pub owner: String,
    /// The device it will plot on, recorded with the `ARMED` event.
    pub device_id: Option<String>,
    /// What that device offers: only a job whose requirements it meets is claimed (`None`:
    /// the head job, whatever it asks).
    pub profile: Option<Profile>,
    /// Now, milliseconds since the Unix epoch.
    pub now_ms: i64,
    /// How long the lease holds without a renewal, ms.
    pub ttl_ms: i64,
}

/// The states in which a job keeps its lease; any other state clears it.
pub const LEASED_STATES: [JobState; 3] = [JobState::Armed, JobState::Plotting, JobState::Paused];

/// One layer of a job.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Layer {
    /// Plot order, from 0.
    pub index: u32,
    /// Layer name as in the SVG.
    pub name: String,
    /// Number from the layer name (AxiDraw layer control).
    pub number: Option<i64>,
    /// Stroke colour in use (`#rrggbb`).
    pub color: Option<String>,
    /// Pause for a pen change before this layer.
    pub pause_before: bool,
    /// Pen-down speed override, percent.
    pub speed_pct: Option<f64>,
    /// Pen-down height override, percent.
    pub height_pct: Option<f64>,
    /// Delay after the layer, ms.
    pub delay_after_ms: Option<i64>,
    /// Stroke count.
    pub strokes: Option<i64>,
    /// Point count.
    pub points: Option<i64>,
    /// Pen-down distance, mm.
    pub pen_down_mm: Option<f64>,
    /// Estimated duration, s.
    pub estimate_s: Option<f64>,
}

/// A transition to apply.
#[derive(Clone, PartialEq, Debug)]
pub struct TransitionRequest {
    /// The job.
    pub job_id: JobId,
    /// What happened.
    pub event: JobEvent,
    /// Why.
    pub reason: Reason,
    /// The error, for `FAILED` and error pauses.
    pub error: Option<String>,
    /// Extra facts for the event (an object; anything else is wrapped as `{"value": …}`).
    pub metadata: Value,
}

/// A state change as recorded: what the journal, the broadcast and the hooks are told.
#[derive(Clone, PartialEq, Debug)]
pub struct StateChange {
    /// Row id of the event in `job_events` (increases with every recorded event).
    pub event_id: i64,
    /// The job.
    pub job_id: JobId,
    /// Its name (hooks' `{job_name}`).
    pub job_name: String,
    /// State before (`None` when the job was created).
    pub from: Option<JobState>,
    /// State after.
    pub to: JobState,
    /// Why.
    pub reason: Reason,
    /// The error, if any.
    pub error: Option<String>,
    /// Extra facts (always an object).
    pub metadata: Value,
    /// When (RFC 3339).
    pub at: String,
}

/// A row of `job_events`.
#[derive(Clone, PartialEq, Debug)]
pub struct EventRecord {
    /// Row id.
    pub id: i64,
    /// Kind (`state_change`, `hooks_executed`, …).
    pub kind: String,
    /// State before, for state changes.
    pub from_state: Option<String>,
    /// State after, for state changes.
    pub to_state: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Extra facts.
    pub metadata: Value,
    /// When (RFC 3339).
    pub at: String,
}

/// Adds `new` in state `NEW` with its creation event. Retries the (random) id on a collision.
pub fn insert(conn: &mut Connection, new: &NewJob) -> Result<(JobRecord, StateChange), StoreError> {
    validate_name(&new.name)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let id = fresh_id(&tx)?;
    let change = insert_new(&tx, &id, new, None)?;
    let record = get(&tx, id.as_str())?.ok_or_else(|| StoreError::UnknownJob(id.to_string()))?;
    tx.commit()?;
    Ok((record, change))
}

/// Applies `req` in one transaction: the job's state moves and the event row is appended, or
/// nothing changes.
pub fn transition(
    conn: &mut Connection,
    req: &TransitionRequest,
) -> Result<StateChange, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let change = transition_in(&tx, req)?;
    tx.commit()?;
    Ok(change)
}

/// Retries a `FAILED` or `ABORTED` job: a new job with the same source, name, priority, metadata
/// (except `start`: the retry waits for a `start`) and layers is created and queued; the old one
/// keeps its history. Returns the new job and its
/// two state changes (`→ NEW`, `NEW → QUEUED`).
pub fn retry(
    conn: &mut Connection,
    old_id: &str,
) -> Result<(JobRecord, Vec<StateChange>), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let old = get(&tx, old_id)?.ok_or_else(|| StoreError::UnknownJob(old_id.to_owned()))?;
    if !job::can_retry(old.state) {
        return Err(StoreError::NotRetryable {
            job_id: old_id.to_owned(),
            state: old.state,
        });
    }
    // A retry waits for `start`, whatever the job it retries was submitted with: the paper may not
    // be in yet.
    let mut metadata = object(&old.metadata);
    metadata.remove("start");
    let new = NewJob {
        name: old.name.clone(),
        source_path: old.source_path.as_ref().map(PathBuf::from),
        priority: old.priority,
        metadata: Value::Object(metadata),
        submitted_by: old.submitted_by.clone(),
        requirements: old.requirements.clone(),
    };
    let id = fresh_id(&tx)?;
    let created = insert_new(&tx, &id, &new, Some(old_id))?;
    let layers = layers(&tx, old_id)?;
    set_layers(&tx, id.as_str(), &layers)?;
    tx.execute(
        "INSERT INTO job_sources (job_id, svg) SELECT ?1, svg FROM job_sources WHERE job_id = ?2",
        params![id.as_str(), old_id],
    )?;
    let queued = transition_in(
        &tx,
        &TransitionRequest {
            job_id: id.clone(),
            event: JobEvent::Enqueue,
            reason: Reason::Retry,
            error: None,
            metadata: json!({ "retry_of": old_id }),
        },
    )?;
    let record = get(&tx, id.as_str())?.ok_or_else(|| StoreError::UnknownJob(id.to_string()))?;
    tx.commit()?;
    Ok((record, vec![created, queued]))
}

/// Crash recovery: every job found `ARMED` or `PLOTTING` becomes `PAUSED` with reason
/// `interrupted`, its resume point untouched, and gets a `recovery` event saying so. One
/// transaction. Returns the state changes with the id of each recovery event.
pub fn recover_interrupted(conn: &mut Connection) -> Result<Vec<(StateChange, i64)>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let running = list(&tx, &[JobState::Armed, JobState::Plotting])?;
    let mut out = Vec::with_capacity(running.len());
    for job in running {
        let (req, recovery) = crash_recovery(&job);
        let change = transition_in(&tx, &req)?;
        let recovery = insert_event(
            &tx,
            job.id.as_str(),
            EntryKind::Recovery,
            Some(job.state),
            Some(JobState::Paused),
            Some(Reason::Interrupted.as_str()),
            &recovery,
            &change.at,
        )?;
        tx.execute(
            "UPDATE jobs SET lease_owner = NULL, lease_expires_ms = NULL WHERE id = ?1",
            [job.id.as_str()],
        )?;
        out.push((change, recovery));
    }
    tx.commit()?;
    Ok(out)
}

/// Records the resume point of a running job.
pub fn set_resume_point(conn: &Connection, id: &str, p: &ResumePoint) -> Result<(), StoreError> {
    let (m1, m2, x, y) = match p.position {
        Some(pos) => (
            Some(pos.steps.m1),
            Some(pos.steps.m2),
            Some(pos.point.x_mm),
            Some(pos.point.y_mm),
        ),
        None => (None, None, None, None),
    };
    let n = conn.execute(
        "UPDATE jobs SET resume_layer = ?2, resume_stroke = ?3, resume_vertex = ?4,
             resume_motor1 = ?5, resume_motor2 = ?6, resume_x_mm = ?7, resume_y_mm = ?8,
             resume_at = ?9, resume_pen_down = ?10, resume_streaming = ?11
         WHERE id = ?1",
        params![
            id,
            p.layer,
            p.stroke,
            p.vertex,
            m1,
            m2,
            x,
            y,
            p.recorded_at,
            p.pen_down,
            p.streaming
        ],
    )?;
    if n == 0 {
        return Err(StoreError::UnknownJob(id.to_owned()));
    }
    Ok(())
}

/// The SQL of [`clear_streaming`] (both dialects): every stored resume point that a resume could
/// search from, except those of jobs another plotter is running (their runs store new points).
/// Clearing one too many only makes a resume go back to its point and draw a little twice.
pub(crate) const CLEAR_STREAMING: &str = "UPDATE jobs SET resume_streaming = 0
     WHERE resume_streaming <> 0
       AND (state <> 'PLOTTING' OR device IS NULL OR device = $1)";

/// Marks the resume points a plot on `device` could resume from as not searchable
/// ([`ResumePoint::streaming`]): called before anything may move its carriage other than a run
/// streaming along the program (a manual action, a resume's way back). Persisted, so a daemon
/// restart in between does not forget it. Returns how many points changed.
pub fn clear_streaming(conn: &Connection, device: &str) -> Result<usize, StoreError> {
    Ok(conn.execute(&CLEAR_STREAMING.replace("$1", "?1"), [device])?)
}

/// Records the estimates of a job (seconds; `None` leaves a value as it is).
pub fn set_estimates(
    conn: &Connection,
    id: &str,
    pre_s: Option<f64>,
    post_s: Option<f64>,
) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE jobs SET estimate_pre_s = coalesce(?2, estimate_pre_s),
             estimate_post_s = coalesce(?3, estimate_post_s), updated_at = ?4
         WHERE id = ?1",
        params![id, pre_s, post_s, timestamp::now()],
    )?;
    if n == 0 {
        return Err(StoreError::UnknownJob(id.to_owned()));
    }
    Ok(())
}

/// Records that `job_id` is plotted on the simulator (nothing is drawn on paper).
pub fn set_simulated(conn: &Connection, job_id: &str) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE jobs SET simulated = 1 WHERE id = ?1",
        rusqlite::params![job_id],
    )?;
    if n == 0 {
        return Err(StoreError::UnknownJob(job_id.to_owned()));
    }
    Ok(())
}

/// Sets one key of a job's metadata (`start` when a job is released to the plotters).
pub fn set_metadata(
    conn: &Connection,
    id: &str,
    key: &str,
    value: Value,
) -> Result<(), StoreError> {
    let job = get(conn, id)?.ok_or_else(|| StoreError::UnknownJob(id.to_owned()))?;
    let mut metadata = match job.metadata {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    metadata.insert(key.to_owned(), value);
    conn.execute(
        "UPDATE jobs SET metadata_json = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, Value::Object(metadata).to_string(), timestamp::now()],
    )?;
    Ok(())
}

/// Records where a job's SVG is stored.
pub fn set_source_path(
    conn: &Connection,
    id: &str,
    path: &std::path::Path,
) -> Result<(), StoreError> {
    let text = path.to_str().ok_or_else(|| {
        StoreError::Invalid(format!(
            "{} is not valid UTF-8; use a workspace path of plain text",
            path.display()
        ))
    })?;
    let n = conn.execute(
        "UPDATE jobs SET source_path = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, text, timestamp::now()],
    )?;
    if n == 0 {
        return Err(StoreError::UnknownJob(id.to_owned()));
    }
    Ok(())
}

/// Deletes a job in a final state, with its layers, events and statistics (one transaction);
/// returns the job as it was. Jobs that retried it keep their own history (`retry_of` becomes
/// empty).
pub fn delete(conn: &mut Connection, id: &str) -> Result<JobRecord, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let job = get(&tx, id)?.ok_or_else(|| StoreError::UnknownJob(id.to_owned()))?;
    if !job.state.is_terminal() {
        return Err(StoreError::NotFinished {
            job_id: id.to_owned(),
            state: job.state,
        });
    }
    tx.execute("DELETE FROM jobs WHERE id = ?1", [id])?;
    tx.commit()?;
    Ok(job)
}

/// Number of jobs in each state (states without jobs are left out).
pub fn state_counts(
    conn: &Connection,
) -> Result<std::collections::BTreeMap<JobState, u64>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT state, count(*) FROM jobs GROUP BY state")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = std::collections::BTreeMap::new();
    for row in rows {
        let (state, n) = row?;
        let state: JobState = state
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("a job has state `{state}`")))?;
        out.insert(state, u64::try_from(n).unwrap_or(0));
    }
    Ok(out)
}

/// Appends a non-transition event (hooks results, device error, checkpoint) and returns its id.
#[allow(clippy::too_many_arguments)]
pub fn insert_event(
    conn: &Connection,
    job_id: &str,
    kind: EntryKind,
    from: Option<JobState>,
    to: Option<JobState>,
    reason: Option<&str>,
    metadata: &Value,
    at: &str,
) -> Result<i64, StoreError> {
    let kind = event_kind(kind)?;
    conn.execute(
        "INSERT INTO job_events (job_id, type, from_state, to_state, reason, metadata_json, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            job_id,
            kind,
            from.map(JobState::as_str),
            to.map(JobState::as_str),
            reason,
            metadata.to_string(),
            at
        ],
    )
    .map_err(|e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::UnknownJob(job_id.to_owned()),
        _ => StoreError::Sqlite(e),
    })?;
    Ok(conn.last_insert_rowid())
}

/// The `job_events.type` of an entry kind.
pub(crate) fn event_kind(kind: EntryKind) -> Result<&'static str, StoreError> {
    Ok(match kind {
        EntryKind::StateChange => "state_change",
        EntryKind::HooksExecuted => "hooks_executed",
        EntryKind::ProgressCheckpoint => "progress_checkpoint",
        EntryKind::DeviceError => "device_error",
        EntryKind::Recovery => "recovery",
        EntryKind::Unknown => {
            return Err(StoreError::Invalid(
                "an event of unknown kind cannot be recorded".into(),
            ));
        }
    })
}

/// Claims the head job released for plotting (`READY` with `start`, in queue order, held by no
/// one): it becomes `ARMED` under `claim`'s lease, in one transaction. SQLite runs one writer at
/// a time (`IMMEDIATE`), so two daemons on one file can never claim the same job; PostgreSQL
/// does the same with `FOR UPDATE SKIP LOCKED` (see [`super::postgres`]). `None`: nothing to do.
pub fn claim_next(
    conn: &mut Connection,
    claim: &Claim,
) -> Result<Option<(JobRecord, StateChange)>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let head = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, req_device, req_model, req_tags FROM jobs
             WHERE state = 'READY' AND lease_owner IS NULL
                 AND json_extract(metadata_json, '$.start') = 1
             ORDER BY priority DESC, seq ASC",
        )?;
        let mut rows = stmt.query([])?;
        let mut head = None;
        while let Some(r) = rows.next()? {
            let req = requirements_of(r.get(1)?, r.get(2)?, r.get(3)?);
            if claim.profile.as_ref().is_none_or(|p| p.meets(&req)) {
                head = Some(r.get::<_, String>(0)?);
                break;
            }
        }
        head
    };
    let Some(id) = head else {
        return Ok(None);
    };
    let job_id = JobId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let change = transition_in(&tx, &claim_request(&job_id, claim))?;
    tx.execute(
        "UPDATE jobs SET lease_owner = ?2, lease_expires_ms = ?3, daemon = ?2 WHERE id = ?1",
        params![id, claim.owner, claim.now_ms.saturating_add(claim.ttl_ms)],
    )?;
    let record = get(&tx, &id)?.ok_or_else(|| StoreError::UnknownJob(id.clone()))?;
    tx.commit()?;
    Ok(Some((record, change)))
}

/// The `READY → ARMED` transition of a claim.
pub(crate) fn claim_request(job_id: &JobId, claim: &Claim) -> TransitionRequest {
    let mut metadata = Map::new();
    if let Some(device) = &claim.device_id {
        metadata.insert("device_id".into(), Value::String(device.clone()));
    }
    metadata.insert("lease_owner".into(), Value::String(claim.owner.clone()));
    TransitionRequest {
        job_id: job_id.clone(),
        event: JobEvent::Arm,
        reason: Reason::Pipeline,
        error: None,
        metadata: Value::Object(metadata),
    }
}

/// Extends `owner`'s lease on `job_id` to `now_ms + ttl_ms`. A lease that expired is lost even
/// before another daemon recorded the job interrupted: [`StoreError::LeaseLost`], and the owner
/// must stop working on the job.
pub fn renew_lease(
    conn: &Connection,
    job_id: &str,
    owner: &str,
    now_ms: i64,
    ttl_ms: i64,
) -> Result<Lease, StoreError> {
    let expires_ms = now_ms.saturating_add(ttl_ms);
    let n = conn.execute(
        "UPDATE jobs SET lease_expires_ms = ?4
         WHERE id = ?1 AND lease_owner = ?2 AND lease_expires_ms > ?3",
        params![job_id, owner, now_ms, expires_ms],
    )?;
    if n == 0 {
        return Err(StoreError::LeaseLost {
            job_id: job_id.to_owned(),
            owner: owner.to_owned(),
        });
    }
    Ok(Lease {
        owner: owner.to_owned(),
        expires_ms,
    })
}

/// Every lease expired at `now_ms` ends: an `ARMED` or `PLOTTING` job becomes `PAUSED`
/// (`interrupted`) with its resume point and a `recovery` event naming the daemon that held it;
/// a `PAUSED` one stays as it is. The job is never handed to another daemon: only a user's
/// resume continues it. One transaction; returns the state changes with their recovery events.
pub fn expire_leases(
    conn: &mut Connection,
    now_ms: i64,
) -> Result<Vec<(StateChange, i64)>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let expired: Vec<(String, String, i64)> = {
        let mut stmt = tx.prepare(
            "SELECT id, lease_owner, lease_expires_ms FROM jobs
             WHERE lease_owner IS NOT NULL AND lease_expires_ms <= ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([now_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut out = Vec::new();
    for (id, owner, expires_ms) in expired {
        let job = get(&tx, &id)?.ok_or_else(|| StoreError::UnknownJob(id.clone()))?;
        if matches!(job.state, JobState::Armed | JobState::Plotting) {
            let (req, recovery) = lease_expiry(&job, &owner, expires_ms);
            let change = transition_in(&tx, &req)?;
            let event = insert_event(
                &tx,
                &id,
                EntryKind::Recovery,
                Some(job.state),
                Some(JobState::Paused),
                Some(Reason::Interrupted.as_str()),
                &recovery,
                &change.at,
            )?;
            out.push((change, event));
        }
        tx.execute(
            "UPDATE jobs SET lease_owner = NULL, lease_expires_ms = NULL WHERE id = ?1",
            [&id],
        )?;
    }
    tx.commit()?;
    Ok(out)
}

/// The transition and the recovery event's metadata of a job found running when its daemon
/// started again (both backends' crash recovery).
pub(crate) fn crash_recovery(job: &JobRecord) -> (TransitionRequest, Value) {
    let resume = job.resume.as_ref().map_or(Value::Null, resume_json);
    let req = TransitionRequest {
        job_id: job.id.clone(),
        event: JobEvent::Interrupt,
        reason: Reason::Interrupted,
        error: None,
        metadata: json!({ "resume_point": resume.clone() }),
    };
    let recovery = json!({
        "message": "the daemon stopped while this job was running; resume continues from the resume point",
        "resume_point": resume,
    });
    (req, recovery)
}

/// The transition and the recovery event's metadata of a job whose lease expired.
pub(crate) fn lease_expiry(
    job: &JobRecord,
    owner: &str,
    expires_ms: i64,
) -> (TransitionRequest, Value) {
    let resume = job.resume.as_ref().map_or(Value::Null, resume_json);
    let req = TransitionRequest {
        job_id: job.id.clone(),
        event: JobEvent::Interrupt,
        reason: Reason::Interrupted,
        error: None,
        metadata: json!({
            "resume_point": resume.clone(),
            "lease_owner": owner,
            "lease_expired_ms": expires_ms,
        }),
    };
    let recovery = json!({
        "message": format!(
            "the daemon `{owner}` holding this job stopped renewing its lease; the job waits on \
             that daemon's plotter, and resume continues from the resume point"
        ),
        "resume_point": resume,
        "lease_owner": owner,
    });
    (req, recovery)
}

/// Stores the SVG of a job in the database (schema 6), replacing any stored before.
pub fn set_source_svg(conn: &Connection, id: &str, svg: &[u8]) -> Result<(), StoreError> {
    if get(conn, id)?.is_none() {
        return Err(StoreError::UnknownJob(id.to_owned()));
    }
    conn.execute(
        "INSERT INTO job_sources (job_id, svg) VALUES (?1, ?2)
         ON CONFLICT (job_id) DO UPDATE SET svg = excluded.svg",
        params![id, svg],
    )?;
    Ok(())
}

/// The SVG of a job stored in the database, if any.
pub fn source_svg(conn: &Connection, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .query_row("SELECT svg FROM job_sources WHERE job_id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?)
}

/// One job by id.
pub fn get(conn: &Connection, id: &str) -> Result<Option<JobRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"))?;
    let row = stmt
        .query_row([id], |r| Ok(super::row::job(r)))
        .optional()?;
    row.transpose()
}

/// Jobs in `states` (every job when empty), in queue order: priority (higher first), then
/// submission order.
pub fn list(conn: &Connection, states: &[JobState]) -> Result<Vec<JobRecord>, StoreError> {
    let filter = if states.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
        // The names are our own constants, never client text.
        format!("WHERE state IN ({})", names.join(", "))
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM jobs {filter} ORDER BY priority DESC, seq ASC"
    ))?;
    let rows = stmt.query_map([], |r| Ok(super::row::job(r)))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}

/// The device a job was last recorded on: the `device_id` of its latest event that names one (the
/// queue records it when it arms the job, the device task with every transition it records).
pub fn device_of(conn: &Connection, id: &str) -> Result<Option<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT json_extract(metadata_json, '$.device_id') FROM job_events
         WHERE job_id = ?1 AND json_type(metadata_json, '$.device_id') = 'text'
         ORDER BY id DESC LIMIT 1",
    )?;
    Ok(stmt.query_row([id], |r| r.get(0)).optional()?)
}

/// A job's events, oldest first.
pub fn events(conn: &Connection, id: &str) -> Result<Vec<EventRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, type, from_state, to_state, reason, metadata_json, created_at
         FROM job_events WHERE job_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok(EventRecord {
            id: r.get(0)?,
            kind: r.get(1)?,
            from_state: r.get(2)?,
            to_state: r.get(3)?,
            reason: r.get(4)?,
            metadata: parse_json(&r.get::<_, String>(5)?),
            at: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Replaces a job's layers.
pub fn set_layers(conn: &Connection, id: &str, layers: &[Layer]) -> Result<(), StoreError> {
    conn.execute("DELETE FROM layers WHERE job_id = ?1", [id])?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO layers (job_id, layer_index, name, layer_number, color, pause_before,
             speed_pct, height_pct, delay_after_ms, strokes, points, pen_down_mm, estimate_s)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    for l in layers {
        stmt.execute(params![
            id,
            l.index,
            l.name,
            l.number,
            l.color,
            l.pause_before,
            l.speed_pct,
            l.height_pct,
            l.delay_after_ms,
            l.strokes,
            l.points,
            l.pen_down_mm,
            l.estimate_s
        ])?;
    }
    Ok(())
}

/// A job's layers in plot order.
pub fn layers(conn: &Connection, id: &str) -> Result<Vec<Layer>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT layer_index, name, layer_number, color, pause_before, speed_pct, height_pct,
             delay_after_ms, strokes, points, pen_down_mm, estimate_s
         FROM layers WHERE job_id = ?1 ORDER BY layer_index",
    )?;
    let rows = stmt.query_map([id], |r| Ok(super::row::layer(r)))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}

/// The resume point as JSON (journal metadata, hooks).
pub fn resume_json(p: &ResumePoint) -> Value {
    let mut v = json!({
        "layer": p.layer,
        "stroke": p.stroke,
        "vertex": p.vertex,
        "pen_down": p.pen_down,
        "recorded_at": p.recorded_at,
    });
    if let (Some(pos), Some(obj)) = (p.position, v.as_object_mut()) {
        obj.insert("motor_steps".into(), json!([pos.steps.m1, pos.steps.m2]));
        obj.insert(
            "position_mm".into(),
            json!({ "x": pos.point.x_mm, "y": pos.point.y_mm }),
        );
    }
    v
}

pub(crate) const COLUMNS: &str =
    "id, seq, name, state, priority, source_path, created_at, updated_at,
    state_reason, error, retry_of, resume_layer, resume_stroke, resume_vertex, resume_motor1,
    resume_motor2, resume_x_mm, resume_y_mm, resume_at, estimate_pre_s, estimate_post_s,
    started_at, finished_at, metadata_json, resume_pen_down, simulated, lease_owner,
    lease_expires_ms, daemon, submitted_by, device, req_device, req_model, req_tags,
    resume_streaming";

pub(crate) fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| json!({ "unparsed": text }))
}

pub(crate) fn validate_name(name: &str) -> Result<(), StoreError> {
    if name.trim().is_empty() {
        return Err(StoreError::Invalid("a job needs a non-empty name".into()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(StoreError::Invalid(format!(
            "job names are at most {MAX_NAME_LEN} bytes (this one has {})",
            name.len()
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "job names cannot contain control characters (newlines, tabs, escapes)".into(),
        ));
    }
    Ok(())
}

fn fresh_id(conn: &Connection) -> Result<JobId, StoreError> {
    for _ in 0..16 {
        let id = JobId::generate();
        let taken: Option<i64> = conn
            .query_row("SELECT 1 FROM jobs WHERE id = ?1", [id.as_str()], |r| {
                r.get(0)
            })
            .optional()?;
        if taken.is_none() {
            return Ok(id);
        }
    }
    Err(StoreError::Invalid(
        "could not find a free job id after 16 tries".into(),
    ))
}

pub(crate) fn object(v: &Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        other => {
            let mut m = Map::new();
            m.insert("value".into(), other.clone());
            m
        }
    }
}

fn insert_new(
    conn: &Connection,
    id: &JobId,
    new: &NewJob,
    retry_of: Option<&str>,
) -> Result<StateChange, StoreError> {
    let now = timestamp::now();
    let source = new
        .source_path
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let metadata = Value::Object(object(&new.metadata));
    conn.execute(
        "INSERT INTO jobs (id, name, state, priority, source_path, created_at, updated_at,
             state_reason, retry_of, metadata_json, submitted_by, req_device, req_model,
             req_tags)
         VALUES (?1, ?2, 'NEW', ?3, ?4, ?5, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            id.as_str(),
            new.name,
            new.priority,
            source,
            now,
            Reason::Submitted.as_str(),
            retry_of,
            metadata.to_string(),
            new.submitted_by,
            new.requirements.device,
            new.requirements.model.map(i32::from),
            tags_text(&new.requirements.tags),
        ],
    )?;
    let mut event_meta = Map::new();
    if let Some(old) = retry_of {
        event_meta.insert("retry_of".into(), Value::String(old.to_owned()));
    }
    let event_meta = Value::Object(event_meta);
    let event_id = insert_event(
        conn,
        id.as_str(),
        EntryKind::StateChange,
        None,
        Some(JobState::New),
        Some(Reason::Submitted.as_str()),
        &event_meta,
        &now,
    )?;
    Ok(StateChange {
        event_id,
        job_id: id.clone(),
        job_name: new.name.clone(),
        from: None,
        to: JobState::New,
        reason: Reason::Submitted,
        error: None,
        metadata: event_meta,
        at: now,
    })
}

fn transition_in(conn: &Connection, req: &TransitionRequest) -> Result<StateChange, StoreError> {
    let id = req.job_id.as_str();
    let (state, name): (String, String) = conn
        .query_row("SELECT state, name FROM jobs WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?
        .ok_or_else(|| StoreError::UnknownJob(id.to_owned()))?;
    let from: JobState = state
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("job {id} has state `{state}`")))?;
    let to = job::transition(from, req.event).map_err(|source| StoreError::Transition {
        job_id: id.to_owned(),
        source,
    })?;
    let now = timestamp::now();
    let mut metadata = object(&req.metadata);
    if let Some(error) = &req.error {
        metadata.insert("error".into(), Value::String(error.clone()));
    }
    let metadata = Value::Object(metadata);
    conn.execute(
        "UPDATE jobs SET state = ?2, updated_at = ?3, state_reason = ?4,
             error = CASE WHEN ?5 IS NOT NULL THEN ?5 WHEN ?2 = 'QUEUED' THEN NULL ELSE error END,
             started_at = CASE WHEN ?2 = 'PLOTTING' THEN coalesce(started_at, ?3) ELSE started_at END,
             finished_at = CASE WHEN ?6 THEN ?3 ELSE finished_at END,
             lease_owner = CASE WHEN ?7 THEN lease_owner ELSE NULL END,
             lease_expires_ms = CASE WHEN ?7 THEN lease_expires_ms ELSE NULL END,
             device = coalesce(?8, device)
         WHERE id = ?1",
        params![
            id,
            to.as_str(),
            now,
            req.reason.as_str(),
            req.error,
            to.is_terminal(),
            LEASED_STATES.contains(&to),
            armed_on(to, &metadata)
        ],
    )?;
    let event_id = insert_event(
        conn,
        id,
        EntryKind::StateChange,
        Some(from),
        Some(to),
        Some(req.reason.as_str()),
        &metadata,
        &now,
    )?;
    Ok(StateChange {
        event_id,
        job_id: req.job_id.clone(),
        job_name: name,
        from: Some(from),
        to,
        reason: req.reason,
        error: req.error.clone(),
        metadata,
        at: now,
    })
}

/// The plotter a transition to `to` binds the job to: the `device_id` its metadata names when
/// it arms the job (the queue's hand-over, a claim) or starts it.
pub(crate) fn armed_on(to: JobState, metadata: &Value) -> Option<String> {
    matches!(to, JobState::Armed | JobState::Plotting)
        .then(|| metadata.get("device_id").and_then(Value::as_str))
        .flatten()
        .map(str::to_owned)
}

/// The stored form of a job's required tags: a JSON array, `NULL` for none.
pub(crate) fn tags_text(tags: &[String]) -> Option<String> {
    (!tags.is_empty()).then(|| Value::from(tags.to_vec()).to_string())
}

/// A job's requirements from its `req_device`, `req_model` and `req_tags` columns.
pub(crate) fn requirements_of(
    device: Option<String>,
    model: Option<i64>,
    tags: Option<String>,
) -> Requirements {
    Requirements {
        device,
        model: model.and_then(|m| u8::try_from(m).ok()),
        tags: tags
            .and_then(|t| serde_json::from_str::<Vec<String>>(&t).ok())
            .unwrap_or_default(),
    }
}

// The tests of these functions are the store suite (`store/suite.rs`), run against SQLite and
// PostgreSQL alike.
