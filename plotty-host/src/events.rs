//! What the daemon tells its clients about: job state changes, hook results, alerts, plot progress
//! and device status, on one broadcast channel. State changes are sent only after they were
//! recorded (SQLite, then the journal), so a client never sees a fact that a crash could take back.
//! Progress and device status are live readings from the device task, sent as they happen. The API
//! layer turns these into wire messages (`job_state_change`, `job_progress`, `device_status`,
//! `system_alert`, …) and throttles progress for clients. With several daemons on one PostgreSQL
//! database, the events of the others arrive here too, wrapped in [`DaemonEvent::Remote`].

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::job::{JobId, JobState};
use crate::store::StateChange;

/// Events kept for subscribers that fall behind before they are told they lagged.
pub const CAPACITY: usize = 1024;

/// How serious an alert is (`severity` / `level` on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, serde::Deserialize)]
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
    /// How far a running plot is (emitted by the device task while plotting, as often as it likes;
    /// the API forwards at most 10 per second per job, always the layer boundaries and the end).
    JobProgress(JobProgress),
    /// What a device is doing (emitted by the device task when anything in it changes, and at
    /// least once per heartbeat while connected).
    DeviceStatus(DeviceStatus),
    /// A plotter's id is gone (an unnamed `auto` device left the simulator for an AxiDraw and
    /// took its port as id): lists that keep each plotter's last status drop this one. Not
    /// relayed: the other daemons stop hearing of it and age it out
    /// ([`crate::farm::relay::DEVICE_STALE`]).
    DeviceRemoved {
        /// The id that is gone.
        device_id: String,
    },
    /// A finished job and its files were deleted.
    JobDeleted {
        /// The job.
        job_id: JobId,
    },
    /// An event of another daemon sharing the PostgreSQL database, relayed by
    /// [`crate::farm::relay`]: this daemon's WebSocket clients see it marked with that daemon's
    /// name, and its queue hears of jobs becoming `READY` there. Never relayed again.
    Remote(Box<RemoteEvent>),
}

/// An event of another daemon (see [`DaemonEvent::Remote`]).
#[derive(Clone, PartialEq, Debug)]
pub struct RemoteEvent {
    /// That daemon's `daemon.name`.
    pub daemon: String,
    /// What happened there (never itself `Remote`).
    pub event: DaemonEvent,
}

/// A running plot's progress (`job_progress` on the wire).
#[derive(Clone, PartialEq, Debug)]
pub struct JobProgress {
    /// The job.
    pub job_id: JobId,
    /// The plotter drawing it (its name, else its device id).
    pub device_id: Option<String>,
    /// Fraction done, 0–1 (by estimated time when known, else by points).
    pub progress: f64,
    /// Layer being drawn (1-based; 0 before the first).
    pub current_layer: u32,
    /// Layers to draw.
    pub total_layers: u32,
    /// Points drawn so far.
    pub points_plotted: u64,
    /// Points to draw.
    pub total_points: u64,
    /// Pen-down distance drawn so far, mm.
    pub distance_mm: f64,
    /// Estimated time left, seconds (`None` until there is an estimate).
    pub eta_seconds: Option<f64>,
    /// Time spent with the pen down so far, seconds.
    pub pen_down_time_seconds: f64,
    /// Time spent plotting so far, seconds (pauses excluded).
    pub total_time_seconds: f64,
}

/// The state of a device as the device task sees it (`status` of `device_status`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    /// Connected and idle.
    Connected,
    /// Was connected and went away (unplugged, port closed).
    Disconnected,
    /// Working on a job.
    Busy,
    /// Reported an error or stopped answering; see `error_message`.
    Error,
    /// Known but not reachable (not plugged in, powered down).
    Offline,
}

/// A device's status (`device_status` on the wire). Its serde form is the one the farm relay
/// sends to the other daemons (`crate::farm::relay::Wire::DeviceStatus`); the clients get
/// `crate::api::protocol::DeviceWire`.
#[derive(Clone, PartialEq, Debug, Serialize, serde::Deserialize)]
pub struct DeviceStatus {
    /// The device's id (stable across restarts: its configured name, else the serial port or
    /// `simulator` it had at start; a board followed to another port keeps it).
    pub device_id: String,
    /// `axidraw` or `simulator`.
    pub device_type: String,
    /// The serial port it is on now (`None`: the simulator). A board followed to another port
    /// shows the new one here while its `device_id` stays. Never relayed to the other daemons
    /// (a port path names a file on this daemon's machine): absent from the relay's JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// Its tags (`tags` of its settings), which jobs' `--tag`s ask for (absent from the
    /// relayed statuses of daemons before plotters had tags).
    #[serde(default)]
    pub tags: Vec<String>,
    /// What it is doing.
    pub status: DeviceState,
    /// Firmware version string from `V`, once known.
    pub firmware_version: Option<String>,
    /// Pen up (`None` until known).
    pub pen_up: Option<bool>,
    /// Carriage position on the paper, mm (`None` until known, e.g. before homing).
    pub position_mm: Option<(f64, f64)>,
    /// The job it holds (`ARMED`, `PLOTTING` or `PAUSED`).
    pub current_job_id: Option<JobId>,
    /// Errors since the device was connected.
    pub error_count: u32,
    /// The last error.
    pub error_message: Option<String>,
    /// When it last answered (RFC 3339).
    pub last_heartbeat: String,
    /// Seconds since it was connected.
    pub uptime_seconds: Option<f64>,
    /// What the user must know about this device before trusting its results: set when
    /// `device.type: auto` found no AxiDraw and jobs run on the simulator (nothing is drawn).
    pub notice: Option<String>,
    /// The last motor supply reading, taken when a plot starts and every 2 s while it plots or
    /// is paused (`None` before the first plot).
    pub motor_supply: Option<MotorSupply>,
    /// The pen servo's pulse width after the last manual action, in the firmware's units
    /// (1/12 µs, as `SC,4`/`SC,5` take it): reported by the simulator only (a real board does
    /// not say where its servo is).
    pub pen_servo: Option<u16>,
}

#[cfg(test)]
impl DeviceStatus {
    /// A connected simulator named `device_id`, pen up, nothing else known: tests override the
    /// fields they care about.
    pub(crate) fn sample(device_id: &str) -> Self {
        Self {
            device_id: device_id.into(),
            device_type: "simulator".into(),
            port: None,
            tags: Vec::new(),
            status: DeviceState::Connected,
            firmware_version: None,
            pen_up: Some(true),
            position_mm: None,
            current_job_id: None,
            error_count: 0,
            error_message: None,
            last_heartbeat: "2026-12-06T12:00:00Z".into(),
            uptime_seconds: None,
            notice: None,
            motor_supply: None,
            pen_servo: None,
        }
    }
}

/// A motor supply reading.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, serde::Deserialize)]
pub struct MotorSupply {
    /// The board's raw `QC` V+ reading.
    pub reading: u16,
    /// Too low to plot.
    pub low: bool,
}

/// The sending side of the bus; clone it into every producer.
pub type EventSender = broadcast::Sender<DaemonEvent>;

/// A new bus with [`CAPACITY`].
pub fn bus() -> EventSender {
    broadcast::channel(CAPACITY).0
}
