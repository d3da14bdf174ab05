//! What the daemon tells its clients about: job state changes, hook results and alerts, on one
//! broadcast channel. Everything is sent only after it was recorded (SQLite, then the journal), so a
//! client never sees a fact that a crash could take back. The API layer turns these into wire
//! messages (`job_state_change`, `system_alert`, …).

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::job::{JobId, JobState};
use crate::store::StateChange;

/// Events kept for subscribers that fall behind before they are told they lagged.
pub const CAPACITY: usize = 1024;

/// How serious an alert is (`severity` / `level` on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For information.
    Info,
    /// Something failed but the daemon carries on (a hook, a journal write).
    Warning,
    /// Something failed that needs attention.
    Error,
    /// The daemon cannot do its job.
    Critical,
}

/// A `system_alert`.
#[derive(Clone, PartialEq, Debug, Serialize)]
pub struct Alert {
    /// How serious.
    pub severity: Severity,
    /// Short title.
    pub title: String,
    /// What happened and what to do.
    pub message: String,
    /// Which part of the daemon raised it (`hooks`, `journal`, …).
    pub source: String,
    /// Details.
    pub metadata: Value,
}

/// One event on the daemon's bus.
#[derive(Clone, PartialEq, Debug)]
pub enum DaemonEvent {
    /// A job changed state (recorded in SQLite and its journal).
    JobStateChanged(StateChange),
    /// The hooks of a state ran (results recorded in the journal).
    HooksExecuted {
        /// The job.
        job_id: JobId,
        /// The state whose hooks ran.
        state: JobState,
        /// One record per action.
        results: Value,
    },
    /// Something went wrong that clients should show.
    Alert(Alert),
}

/// The sending side of the bus; clone it into every producer.
pub type EventSender = broadcast::Sender<DaemonEvent>;

/// A new bus with [`CAPACITY`].
pub fn bus() -> EventSender {
    broadcast::channel(CAPACITY).0
}
