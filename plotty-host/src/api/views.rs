//! JSON views of jobs, layers, events and hooks for the HTTP API, and the job snapshots of the
//! WebSocket stream. One place decides how a job looks on the wire.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::protocol::{JobStateWire, ServerMessage};
use crate::events::JobProgress;
use crate::hooks::{HookSet, HooksReport};
use crate::queue::JobDetails;
use crate::store::jobs::{EventRecord, resume_json};
use crate::store::{JobRecord, Layer};
use crate::timestamp;

/// A job as `GET /api/jobs` lists it.
pub(crate) fn job(j: &JobRecord, progress: Option<&JobProgress>) -> Value {
    let meta = &j.metadata;
    json!({
        "id": j.id,
        "job_id": j.id,
        "name": j.name,
        "state": j.state,
        "priority": j.priority,
        "created_at": j.created_at,
        "updated_at": j.updated_at,
        "state_reason": j.state_reason,
        "error": j.error,
        "retry_of": j.retry_of,
        "paper": meta.get("paper"),
        "layers_selected": meta.get("layers"),
        "start": meta.get("start").and_then(Value::as_bool).unwrap_or(false),
        "source_bytes": meta.get("source_bytes"),
        "has_source": j.source_path.is_some(),
        // Plotted on the simulator: nothing was drawn on paper.
        "simulated": j.simulated,
        // Several daemons on one PostgreSQL database: the one that claimed the job to plot it
        // (a PAUSED job resumes there only) and the one it was submitted to.
        "daemon": j.daemon,
        "submitted_by": j.submitted_by,
        // Several plotters: the one the job was last armed on (kept after the plot) and what
        // the job asks of its plotter.
        "device": j.device,
        "requirements": j.requirements,
        "timing": timing(j),
        "resume_point": j.resume.as_ref().map(resume_json),
        "progress": progress.map(progress_fields),
        "metadata": j.metadata,
    })
}

/// A job with its layers and history (`GET /api/jobs/{id}`).
pub(super) fn details(d: &JobDetails, progress: Option<&JobProgress>) -> Value {
    let mut v = job(&d.job, progress);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("layers".into(), d.layers.iter().map(layer).collect());
        obj.insert("events".into(), d.events.iter().map(event).collect());
    }
    v
}

/// The snapshot of a job sent after a subscribe: a `job_state_change` with no `from_state`,
/// reason `snapshot` and `snapshot: true`.
pub(super) fn snapshot_state(j: &JobRecord) -> ServerMessage {
    ServerMessage::JobStateChange(JobStateWire {
        job_id: j.id.clone(),
        job_name: j.name.clone(),
        device_id: j.device.clone(),
        from_state: None,
        to_state: j.state,
        reason: "snapshot".into(),
        error: j.error.clone(),
        metadata: json!({
            "priority": j.priority,
            "created_at": j.created_at,
            "updated_at": j.updated_at,
            "state_reason": j.state_reason,
            "paper": j.metadata.get("paper"),
            "simulated": j.simulated,
            "daemon": j.daemon,
        }),
        snapshot: true,
    })
}

/// The configured hooks per state (`GET /api/hooks`).
pub(super) fn hooks(set: &HookSet) -> Value {
    let mut by_state = serde_json::Map::new();
    for (state, hooks) in set.iter() {
        let list: Vec<Value> = hooks
            .iter()
            .map(|h| {
                json!({
                    "type": h.kind(),
                    "target": h.target(),
                    "timeout_s": h.timeout.as_secs_f64(),
                })
            })
            .collect();
        by_state.insert(state.as_str().to_owned(), Value::Array(list));
    }
    json!({ "hooks": by_state, "count": set.len() })
}

/// The results of a hook test (`POST /api/hooks/test`).
pub(super) fn hooks_report(r: &HooksReport) -> Value {
    json!({
        "state": r.state,
        "job_id": r.job_id,
        "success": r.all_succeeded(),
        "results": r.results_json(),
    })
}

fn progress_fields(p: &JobProgress) -> Value {
    match ServerMessage::progress(p, false) {
        ServerMessage::JobProgress(w) => serde_json::to_value(w).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

fn layer(l: &Layer) -> Value {
    json!({
        "index": l.index,
        "name": l.name,
        "number": l.number,
        "color": l.color,
        "pause_before": l.pause_before,
        "speed_pct": l.speed_pct,
        "height_pct": l.height_pct,
        "delay_after_ms": l.delay_after_ms,
        "strokes": l.strokes,
        "points": l.points,
        "pen_down_mm": l.pen_down_mm,
        "estimate_s": l.estimate_s,
    })
}

fn event(e: &EventRecord) -> Value {
    json!({
        "id": e.id,
        "type": e.kind,
        "from_state": e.from_state,
        "to_state": e.to_state,
        "reason": e.reason,
        "metadata": e.metadata,
        "timestamp": e.at,
    })
}

/// Estimates and the time actually taken so far (`elapsed_s`: from the first start to the end, or
/// to now while running).
fn timing(j: &JobRecord) -> Value {
    let started = j.started_at.as_deref().and_then(timestamp::parse);
    let end = match &j.finished_at {
        Some(f) => timestamp::parse(f),
        None => Some(SystemTime::now()),
    };
    let elapsed = match (started, end) {
        (Some(s), Some(e)) => e.duration_since(s).ok().map(|d| d.as_secs_f64()),
        _ => None,
    };
    json!({
        "estimate_pre_s": j.estimate_pre_s,
        "estimate_post_s": j.estimate_post_s,
        "started_at": j.started_at,
        "finished_at": j.finished_at,
        "elapsed_s": elapsed,
    })
}
