//! The WebSocket protocol: what clients send ([`Request`], parsed by [`parse`], never panicking on
//! any text), what the server sends ([`ServerMessage`], stamped and encoded by [`encode`]), the
//! channels, and the error codes.
//!
//! Compatibility (spec/api.md): `type` is matched without case (`SUBSCRIBE` as the manual writes
//! it), `device` is an alias of `devices`, channel names are matched without case, a missing or
//! empty `channels` list means every channel (as in the original). Every server message carries
//! `type` and `timestamp` (RFC 3339 UTC with `Z`) and the documented field names; where the
//! original's documents and code disagree both spellings are sent (`severity` and `level`,
//! `eta_seconds` and `estimated_remaining`). A client may add `request_id` (a string or number) to
//! any message; replies to it carry the same `request_id`.

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::events::{Alert, DeviceStatus, JobProgress};
use crate::job::{JobId, JobState};
use crate::queue::JobAction;
use crate::store::StateChange;

/// Version of this protocol, sent in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest message (and frame) a client may send.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The `type` of every message a client may send (matched without case). [`parse`] refuses any
/// other type before it looks at one, so this is the list of what it accepts (`docs/api.md`
/// documents each; `plotty-host/tests/api_doc.rs` holds the two together).
pub const CLIENT_TYPES: [&str; 8] = [
    "subscribe",
    "unsubscribe",
    "ping",
    "job_start",
    "job_pause",
    "job_resume",
    "job_abort",
    "job_cancel",
];

/// Error codes of `error` messages (and of HTTP error bodies).
pub mod code {
    /// The text is not JSON.
    pub const INVALID_JSON: &str = "INVALID_JSON";
    /// The JSON is not an object with a string `type`.
    pub const INVALID_MESSAGE: &str = "INVALID_MESSAGE";
    /// A field is missing or has the wrong type or value.
    pub const INVALID_FIELD: &str = "INVALID_FIELD";
    /// `type` names no message (the original's code).
    pub const UNKNOWN_MESSAGE_TYPE: &str = "UNKNOWN_MESSAGE_TYPE";
    /// A channel name is unknown (the original's code).
    pub const SUBSCRIPTION_ERROR: &str = "SUBSCRIPTION_ERROR";
    /// More than `message_rate_limit` messages in a minute.
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// The client fell behind and events were dropped.
    pub const LAGGED: &str = "LAGGED";
    /// The daemon did not answer in time.
    pub const TIMEOUT: &str = "TIMEOUT";
}

/// A broadcast channel.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Channel {
    /// `job_state_change`, `job_progress`, `job_deleted`.
    Jobs,
    /// `device_status`.
    Devices,
    /// `system_status`, `system_alert`.
    System,
}

/// A set of channels.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Channels(u8);

/// A parsed client message with its optional `request_id`.
#[derive(Clone, PartialEq, Debug)]
pub struct Request {
    /// What the client asks.
    pub message: ClientMessage,
    /// Echoed in the reply.
    pub request_id: Option<Value>,
}

/// What a client can ask.
#[derive(Clone, PartialEq, Debug)]
pub enum ClientMessage {
    /// Replace the subscription.
    Subscribe {
        /// The channels.
        channels: Channels,
        /// Only messages about this job on the `jobs` channel.
        job_id: Option<JobId>,
    },
    /// Remove channels from the subscription.
    Unsubscribe {
        /// The channels.
        channels: Channels,
    },
    /// Application-level ping.
    Ping,
    /// `job_start`, `job_pause`, `job_resume`, `job_abort`, `job_cancel`.
    Job {
        /// What to do.
        action: JobAction,
        /// The job.
        job_id: JobId,
    },
}

/// A message the server refuses, with the `error` reply to send.
#[derive(Clone, PartialEq, Debug)]
pub struct ProtocolError {
    /// One of [`code`].
    pub code: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
    /// Machine-readable details.
    pub details: Value,
    /// The `request_id` of the message, if it had one.
    pub request_id: Option<Value>,
}

/// Everything the server sends (tagged by `type`).
#[derive(Clone, PartialEq, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Sent once on connect.
    Hello {
        /// plotty's version.
        daemon_version: &'static str,
        /// [`PROTOCOL_VERSION`].
        protocol_version: u32,
        /// The channels there are.
        channels: Channels,
        /// The channels this connection receives until it subscribes.
        subscribed: Channels,
        /// This connection's number (also in `GET /status`).
        connection_id: u64,
        /// Seconds between the server's pings.
        heartbeat_interval: f64,
        /// Client messages allowed per minute.
        message_rate_limit: u32,
        /// Largest client message, bytes.
        max_message_bytes: usize,
    },
    /// Reply to `subscribe`; snapshots of the channels follow.
    Subscribed {
        /// The effective subscription.
        channels: Channels,
        /// The job filter.
        job_id: Option<JobId>,
        /// Echo.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// Reply to `unsubscribe`.
    Unsubscribed {
        /// The channels removed.
        channels: Channels,
        /// The channels still subscribed.
        remaining: Channels,
        /// Echo.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// Reply to `ping`.
    Pong {
        /// Echo.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// A job request was carried out.
    Ack {
        /// The request's type (`job_pause`).
        request: String,
        /// The job.
        job_id: JobId,
        /// Its state afterwards.
        state: JobState,
        /// Echo.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// A request failed or something went wrong with this connection.
    Error {
        /// One of [`code`] or a queue error code (`JOB_NOT_FOUND`, `NO_DEVICE`, …).
        error_code: String,
        /// What happened and what to do.
        error_message: String,
        /// Details, or `null`.
        details: Value,
        /// Echo.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<Value>,
    },
    /// A job changed state (or, with `snapshot: true`, is in this state when a client subscribes).
    JobStateChange(JobStateWire),
    /// A running plot's progress.
    JobProgress(ProgressWire),
    /// A job was deleted.
    JobDeleted {
        /// The job.
        job_id: JobId,
    },
    /// A device's status.
    DeviceStatus(DeviceWire),
    /// A plotter no longer listed under this id (`auto` switched an unnamed plotter from the
    /// simulator to an AxiDraw, which has its port as id): clients drop it (with its `daemon`).
    DeviceRemoved {
        /// The id that left.
        device_id: String,
        /// Another daemon's plotter (named by the message's `daemon`), as in `device_status`;
        /// absent for this daemon's own.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        remote: bool,
    },
    /// The daemon's health.
    SystemStatus(SystemStatus),
    /// Something clients should show.
    SystemAlert(AlertWire),
}

/// `job_state_change` fields.
#[derive(Clone, PartialEq, Debug, Serialize)]
pub struct JobStateWire {
    /// The job.
    pub job_id: JobId,
    /// Its name.
    pub job_name: String,
    /// The plotter the change is about: the one the device task recording it drives, the one
    /// the job is armed on (and, in snapshots, the one it was last armed on); `null` when no
    /// plotter is involved (a submission, the pipeline, a cancel of a waiting job).
    pub device_id: Option<String>,
    /// State before (`null` for a new job and in snapshots).
    pub from_state: Option<JobState>,
    /// State now.
    pub to_state: JobState,
    /// Why (`snapshot` in snapshots).
    pub reason: String,
    /// The error, for failures.
    pub error: Option<String>,
    /// Facts about the change (an object).
    pub metadata: Value,
    /// True in the snapshot sent after `subscribe`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub snapshot: bool,
}

/// `job_progress` fields.
#[derive(Clone, PartialEq, Debug, Serialize)]
pub struct ProgressWire {
    /// The job.
    pub job_id: JobId,
    /// The plotter drawing it (its name, else its device id).
    pub device_id: Option<String>,
    /// Fraction done, 0–1.
    pub progress: f64,
    /// Percent done, 0–100.
    pub progress_percentage: f64,
    /// Layer being drawn.
    pub current_layer: u32,
    /// Layers in the job.
    pub total_layers: u32,
    /// Points drawn.
    pub points_plotted: u64,
    /// Points in the job.
    pub total_points: u64,
    /// Pen-down distance drawn, mm.
    pub distance_mm: f64,
    /// Seconds left (whole seconds), or `null`.
    pub eta_seconds: Option<u64>,
    /// The same as `eta_seconds` (the documentation's name).
    pub estimated_remaining: Option<u64>,
    /// Pen-down time so far, s.
    pub pen_down_time_seconds: f64,
    /// Plotting time so far, s.
    pub total_time_seconds: f64,
    /// `points_plotted` and `total_points` again, where the documentation put them.
    pub metadata: Value,
    /// True in the snapshot sent after `subscribe`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub snapshot: bool,
}

/// `device_status` fields (also the device objects of the HTTP API).
#[derive(Clone, PartialEq, Debug, Serialize)]
pub struct DeviceWire {
    /// The device.
    pub device_id: String,
    /// `axidraw` or `simulator`.
    pub device_type: String,
    /// The serial port it is on now (`null`: the simulator, or another daemon's plotter).
    pub port: Option<String>,
    /// Its tags, which jobs' `tags` ask for.
    pub tags: Vec<String>,
    /// `connected`, `disconnected`, `busy`, `error` or `offline`.
    pub status: crate::events::DeviceState,
    /// Firmware version, once known.
    pub firmware_version: Option<String>,
    /// Pen up.
    pub pen_up: Option<bool>,
    /// Carriage position, mm.
    pub position: Option<Position>,
    /// The job it holds.
    pub current_job_id: Option<JobId>,
    /// Errors since connected.
    pub error_count: u32,
    /// The last error.
    pub error_message: Option<String>,
    /// When it last answered.
    pub last_heartbeat: String,
    /// Seconds since connected.
    pub uptime_seconds: Option<f64>,
    /// The built-in simulator: a job plotted here draws nothing on paper.
    pub simulated: bool,
    /// What the user must know first (`auto` found no AxiDraw and uses the simulator).
    pub notice: Option<String>,
    /// The last motor supply reading (`reading`: the raw `QC` V+ value; `low`: too low to
    /// plot), `null` before the first plot.
    pub motor_supply: Option<crate::events::MotorSupply>,
    /// The simulator's pen servo pulse width (1/12 µs) after the last manual action; left out
    /// for a real board, which does not report it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pen_servo: Option<u16>,
    /// Another daemon's plotter (a farm: relayed, read-only here); left out for this daemon's.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub remote: bool,
    /// `firmware_version` again, where the documentation put it.
    pub metadata: Value,
}

/// A position in mm.
#[derive(Clone, Copy, PartialEq, Debug, Serialize)]
pub struct Position {
    /// mm from home, to the right.
    pub x: f64,
    /// mm from home, towards the user.
    pub y: f64,
}

/// `system_status` fields.
#[derive(Clone, PartialEq, Debug, Serialize)]
pub struct SystemStatus {
    /// `healthy` or `degraded`.
    pub status: &'static str,
    /// What makes it degraded.
    pub problems: Vec<String>,
    /// plotty's version.
    pub daemon_version: &'static str,
    /// Seconds since the API started.
    pub uptime: f64,
    /// Jobs holding a device (`ARMED`, `PLOTTING`, `PAUSED`).
    pub active_jobs: u64,
    /// Jobs waiting (`NEW` to `READY`).
    pub queue_length: u64,
    /// The daemon's resident memory as a fraction of the machine's, 0–1 (`null` if unknown).
    pub memory_usage: Option<f64>,
    /// The daemon's CPU use as a fraction of all cores, 0–1 (`null` if unknown).
    pub cpu_usage: Option<f64>,
    /// The daemon's resident memory, bytes.
    pub memory_rss_bytes: Option<u64>,
    /// WebSocket clients connected.
    pub connections: usize,
}

/// `system_alert` fields.
#[derive(Clone, PartialEq, Debug, Serialize)]
pub struct AlertWire {
    /// `info`, `warning`, `error` or `critical`.
    pub severity: crate::events::Severity,
    /// The same (the documentation's name).
    pub level: crate::events::Severity,
    /// Short title.
    pub title: String,
    /// What happened and what to do.
    pub message: String,
    /// Which part of the daemon raised it.
    pub source: String,
    /// Details.
    pub metadata: Value,
    /// True for an alert raised before the client subscribed, replayed after `subscribe` (its
    /// `timestamp` is when it was raised).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub snapshot: bool,
}

/// A message and the time it was sent, as encoded.
#[derive(Serialize)]
struct Stamped<'a> {
    timestamp: &'a str,
    /// The daemon an event comes from, when several share a PostgreSQL database.
    #[serde(skip_serializing_if = "Option::is_none")]
    daemon: Option<&'a str>,
    #[serde(flatten)]
    message: &'a ServerMessage,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Self; 3] = [Self::Jobs, Self::Devices, Self::System];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Jobs => "jobs",
            Self::Devices => "devices",
            Self::System => "system",
        }
    }

    const fn bit(self) -> u8 {
        match self {
            Self::Jobs => 1,
            Self::Devices => 2,
            Self::System => 4,
        }
    }
}

impl Channels {
    /// No channel.
    pub const NONE: Self = Self(0);
    /// Every channel.
    pub const ALL: Self = Self(7);

    /// Just `c`.
    pub const fn only(c: Channel) -> Self {
        Self(c.bit())
    }

    /// True if `c` is in the set.
    pub const fn contains(self, c: Channel) -> bool {
        self.0 & c.bit() != 0
    }

    /// Both sets.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// This set without `other`.
    pub const fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// True for the empty set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The channels in the set, in order.
    pub fn iter(self) -> impl Iterator<Item = Channel> {
        Channel::ALL.into_iter().filter(move |c| self.contains(*c))
    }

    /// Parses one name (`jobs`, `devices`, `device`, `system`, `all`, any case).
    pub fn parse_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "jobs" | "job" => Some(Self::only(Channel::Jobs)),
            "devices" | "device" => Some(Self::only(Channel::Devices)),
            "system" => Some(Self::only(Channel::System)),
            "all" | "*" => Some(Self::ALL),
            _ => None,
        }
    }

    /// The wire names, in order.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Channel::as_str).collect()
    }
}

impl ProtocolError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Value::Null,
            request_id: None,
        }
    }

    fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// The `error` message to send.
    pub fn to_message(&self) -> ServerMessage {
        ServerMessage::Error {
            error_code: self.code.to_owned(),
            error_message: self.message.clone(),
            details: self.details.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

impl ServerMessage {
    /// An `error` message.
    pub fn error(code: &str, message: impl Into<String>, details: Value) -> Self {
        Self::Error {
            error_code: code.to_owned(),
            error_message: message.into(),
            details,
            request_id: None,
        }
    }

    /// A `job_state_change` for a recorded change.
    pub fn state_change(c: &StateChange) -> Self {
        Self::JobStateChange(JobStateWire {
            job_id: c.job_id.clone(),
            job_name: c.job_name.clone(),
            device_id: c
                .metadata
                .get("device_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            from_state: c.from,
            to_state: c.to,
            reason: c.reason.to_string(),
            error: c.error.clone(),
            metadata: object(&c.metadata),
            snapshot: false,
        })
    }

    /// A `job_progress` (`snapshot`: sent after a subscribe).
    pub fn progress(p: &JobProgress, snapshot: bool) -> Self {
        let eta = p
            .eta_seconds
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| s.round() as u64);
        let fraction = if p.progress.is_finite() {
            p.progress.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Self::JobProgress(ProgressWire {
            job_id: p.job_id.clone(),
            device_id: p.device_id.clone(),
            progress: fraction,
            progress_percentage: (fraction * 1000.0).round() / 10.0,
            current_layer: p.current_layer,
            total_layers: p.total_layers,
            points_plotted: p.points_plotted,
            total_points: p.total_points,
            distance_mm: p.distance_mm,
            eta_seconds: eta,
            estimated_remaining: eta,
            pen_down_time_seconds: p.pen_down_time_seconds,
            total_time_seconds: p.total_time_seconds,
            metadata: json!({
                "points_plotted": p.points_plotted,
                "total_points": p.total_points,
            }),
            snapshot,
        })
    }

    /// A `device_status`.
    pub fn device(d: &DeviceStatus) -> Self {
        Self::DeviceStatus(DeviceWire::from(d))
    }

    /// A `device_status` of another daemon's plotter (`remote: true`).
    pub fn remote_device(d: &DeviceStatus) -> Self {
        Self::DeviceStatus(DeviceWire::remote(d))
    }

    /// A `system_alert` (`snapshot`: replayed after a subscribe).
    pub fn alert(a: &Alert, snapshot: bool) -> Self {
        Self::SystemAlert(AlertWire {
            severity: a.severity,
            level: a.severity,
            title: a.title.clone(),
            message: a.message.clone(),
            source: a.source.clone(),
            metadata: object(&a.metadata),
            snapshot,
        })
    }

    /// The channel a broadcast message belongs to and the job it is about; `None` for direct
    /// replies.
    pub fn route(&self) -> Option<(Channel, Option<&JobId>)> {
        match self {
            Self::JobStateChange(w) => Some((Channel::Jobs, Some(&w.job_id))),
            Self::JobProgress(w) => Some((Channel::Jobs, Some(&w.job_id))),
            Self::JobDeleted { job_id } => Some((Channel::Jobs, Some(job_id))),
            Self::DeviceStatus(_) | Self::DeviceRemoved { .. } => Some((Channel::Devices, None)),
            Self::SystemStatus(_) | Self::SystemAlert(_) => Some((Channel::System, None)),
            Self::Hello { .. }
            | Self::Subscribed { .. }
            | Self::Unsubscribed { .. }
            | Self::Pong { .. }
            | Self::Ack { .. }
            | Self::Error { .. } => None,
        }
    }
}

/// One message of each kind the server sends, with made-up values: how the API reference's test
/// (`plotty-host/tests/api_doc.rs`) learns every `type` from serde itself. A unit test below
/// checks that every variant is here (its match fails to compile when a variant is added).
#[doc(hidden)]
pub fn every_server_message() -> Vec<ServerMessage> {
    let job = JobId::parse("0a3f5c2e9b1d").unwrap_or_else(|_| JobId::generate());
    vec![
        ServerMessage::Hello {
            daemon_version: env!("CARGO_PKG_VERSION"),
            protocol_version: PROTOCOL_VERSION,
            channels: Channels::ALL,
            subscribed: Channels::ALL,
            connection_id: 1,
            heartbeat_interval: 30.0,
            message_rate_limit: 600,
            max_message_bytes: MAX_MESSAGE_BYTES,
        },
        ServerMessage::Subscribed {
            channels: Channels::ALL,
            job_id: None,
            request_id: None,
        },
        ServerMessage::Unsubscribed {
            channels: Channels::only(Channel::System),
            remaining: Channels::only(Channel::Jobs),
            request_id: None,
        },
        ServerMessage::Pong { request_id: None },
        ServerMessage::Ack {
            request: "job_pause".into(),
            job_id: job.clone(),
            state: JobState::Paused,
            request_id: None,
        },
        ServerMessage::error(code::INVALID_JSON, "not JSON", Value::Null),
        ServerMessage::JobStateChange(JobStateWire {
            job_id: job.clone(),
            job_name: "drawing".into(),
            device_id: Some("left".into()),
            from_state: Some(JobState::Ready),
            to_state: JobState::Armed,
            reason: "start".into(),
            error: None,
            metadata: json!({}),
            snapshot: false,
        }),
        ServerMessage::progress(
            &JobProgress {
                job_id: job.clone(),
                device_id: None,
                progress: 0.5,
                current_layer: 1,
                total_layers: 1,
                points_plotted: 10,
                total_points: 20,
                distance_mm: 12.5,
                eta_seconds: Some(3.0),
                pen_down_time_seconds: 1.0,
                total_time_seconds: 2.0,
            },
            false,
        ),
        ServerMessage::JobDeleted { job_id: job },
        ServerMessage::DeviceRemoved {
            device_id: "simulator".into(),
            remote: true,
        },
        ServerMessage::DeviceStatus(DeviceWire {
            device_id: "sim".into(),
            device_type: "simulator".into(),
            port: None,
            tags: vec!["a3".into()],
            status: crate::events::DeviceState::Connected,
            firmware_version: None,
            pen_up: Some(true),
            position: None,
            current_job_id: None,
            error_count: 0,
            error_message: None,
            last_heartbeat: "2026-01-01T00:00:00Z".into(),
            uptime_seconds: None,
            simulated: true,
            notice: None,
            motor_supply: None,
            pen_servo: Some(17944),
            remote: false,
            metadata: json!({}),
        }),
        ServerMessage::SystemStatus(SystemStatus {
            status: "healthy",
            problems: Vec::new(),
            daemon_version: env!("CARGO_PKG_VERSION"),
            uptime: 1.0,
            active_jobs: 0,
            queue_length: 0,
            memory_usage: None,
            cpu_usage: None,
            memory_rss_bytes: None,
            connections: 1,
        }),
        ServerMessage::SystemAlert(AlertWire {
            severity: crate::events::Severity::Info,
            level: crate::events::Severity::Info,
            title: "title".into(),
            message: "message".into(),
            source: "test".into(),
            metadata: json!({}),
            snapshot: false,
        }),
    ]
}

impl DeviceWire {
    /// Another daemon's plotter `d` (`remote: true`): a `device_status` message's fields and
    /// the object `GET /api/devices` lists.
    pub fn remote(d: &DeviceStatus) -> Self {
        Self {
            remote: true,
            ..Self::from(d)
        }
    }
}

impl From<&DeviceStatus> for DeviceWire {
    fn from(d: &DeviceStatus) -> Self {
        Self {
            device_id: d.device_id.clone(),
            device_type: d.device_type.clone(),
            port: d.port.clone(),
            tags: d.tags.clone(),
            status: d.status,
            firmware_version: d.firmware_version.clone(),
            pen_up: d.pen_up,
            position: d.position_mm.map(|(x, y)| Position { x, y }),
            current_job_id: d.current_job_id.clone(),
            error_count: d.error_count,
            error_message: d.error_message.clone(),
            last_heartbeat: d.last_heartbeat.clone(),
            uptime_seconds: d.uptime_seconds,
            simulated: d.device_type == "simulator",
            notice: d.notice.clone(),
            motor_supply: d.motor_supply,
            pen_servo: d.pen_servo,
            remote: false,
            metadata: json!({ "firmware_version": d.firmware_version }),
        }
    }
}

/// Encodes `message` with the current time.
pub fn encode(message: &ServerMessage) -> Utf8Bytes {
    encode_at(message, &crate::timestamp::now())
}

/// Encodes `message` stamped with `timestamp`.
pub fn encode_at(message: &ServerMessage, timestamp: &str) -> Utf8Bytes {
    encode_from(message, timestamp, None)
}

/// Encodes `message` stamped with `timestamp` and, when several daemons share the database, the
/// `daemon` it comes from.
pub fn encode_from(message: &ServerMessage, timestamp: &str, daemon: Option<&str>) -> Utf8Bytes {
    match serde_json::to_string(&Stamped {
        timestamp,
        daemon,
        message,
    }) {
        Ok(s) => Utf8Bytes::from(s),
        // Our types only have string keys and no fallible serializers; keep the promise anyway.
        Err(e) => Utf8Bytes::from(
            json!({
                "timestamp": timestamp,
                "type": "error",
                "error_code": "INTERNAL_ERROR",
                "error_message": format!("a message could not be encoded: {e}"),
                "details": null,
            })
            .to_string(),
        ),
    }
}

/// Parses a client message (any text; never panics).
pub fn parse(text: &str) -> Result<Request, ProtocolError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ProtocolError::new(
            code::INVALID_JSON,
            format!("the message is not valid JSON ({e}); send one JSON object per text frame"),
        )
        .details(json!({ "line": e.line(), "column": e.column() }))
    })?;
    let Value::Object(obj) = value else {
        return Err(ProtocolError::new(
            code::INVALID_MESSAGE,
            format!(
                "a message is a JSON object with a `type` field, not {}",
                kind(&value)
            ),
        ));
    };
    let request_id = match obj.get("request_id") {
        None | Some(Value::Null) => None,
        Some(v @ (Value::String(_) | Value::Number(_))) => Some(v.clone()),
        Some(other) => {
            return Err(ProtocolError::new(
                code::INVALID_FIELD,
                format!(
                    "`request_id` must be a string or a number, not {}",
                    kind(other)
                ),
            ));
        }
    };
    let with_id = |mut e: ProtocolError| {
        e.request_id.clone_from(&request_id);
        e
    };
    let kind_name = match obj.get("type") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => {
            return Err(with_id(ProtocolError::new(
                code::INVALID_MESSAGE,
                "the message has no `type` (subscribe, unsubscribe, ping, job_start, job_pause, \
                 job_resume, job_abort or job_cancel)",
            )));
        }
        Some(other) => {
            return Err(with_id(ProtocolError::new(
                code::INVALID_FIELD,
                format!("`type` must be a string, not {}", kind(other)),
            )));
        }
    };
    let lower = kind_name.to_ascii_lowercase();
    let unknown = || {
        let shown: String = kind_name.chars().take(64).collect();
        with_id(
            ProtocolError::new(
                code::UNKNOWN_MESSAGE_TYPE,
                format!("Unknown message type: {shown}"),
            )
            .details(json!({ "type": shown, "known": CLIENT_TYPES })),
        )
    };
    // Only the listed types get further: a type parsed below but missing from the list would be
    // refused here, and the list's test parses every entry.
    if !CLIENT_TYPES.contains(&lower.as_str()) {
        return Err(unknown());
    }
    let message = match lower.as_str() {
        "subscribe" => ClientMessage::Subscribe {
            channels: channels(&obj).map_err(with_id)?,
            job_id: optional_job_id(&obj).map_err(with_id)?,
        },
        "unsubscribe" => ClientMessage::Unsubscribe {
            channels: channels(&obj).map_err(with_id)?,
        },
        "ping" => ClientMessage::Ping,
        t @ ("job_start" | "job_pause" | "job_resume" | "job_abort" | "job_cancel") => {
            let action = match t {
                "job_start" => JobAction::Start,
                "job_pause" => JobAction::Pause,
                "job_resume" => JobAction::Resume,
                "job_abort" => JobAction::Abort,
                _ => JobAction::Cancel,
            };
            let job_id = optional_job_id(&obj).map_err(with_id)?.ok_or_else(|| {
                with_id(ProtocolError::new(
                    code::INVALID_FIELD,
                    format!("{t} needs `job_id`, the id of the job"),
                ))
            })?;
            ClientMessage::Job { action, job_id }
        }
        _ => return Err(unknown()),
    };
    Ok(Request {
        message,
        request_id,
    })
}

fn channels(obj: &Map<String, Value>) -> Result<Channels, ProtocolError> {
    let names: Vec<&Value> = match obj.get("channels").or_else(|| obj.get("channel")) {
        None | Some(Value::Null) => return Ok(Channels::ALL),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v @ Value::String(_)) => vec![v],
        Some(other) => {
            return Err(ProtocolError::new(
                code::INVALID_FIELD,
                format!(
                    "`channels` must be a list of channel names, not {}",
                    kind(other)
                ),
            ));
        }
    };
    if names.is_empty() {
        return Ok(Channels::ALL);
    }
    let mut set = Channels::NONE;
    for v in names {
        let Value::String(name) = v else {
            return Err(ProtocolError::new(
                code::INVALID_FIELD,
                format!("channel names are strings, not {}", kind(v)),
            ));
        };
        let parsed = Channels::parse_name(name).ok_or_else(|| {
            let shown: String = name.chars().take(64).collect();
            ProtocolError::new(
                code::SUBSCRIPTION_ERROR,
                format!("unknown channel `{shown}`: use jobs, devices (or device), system or all"),
            )
            .details(json!({ "channel": shown }))
        })?;
        set = set.union(parsed);
    }
    Ok(set)
}

fn optional_job_id(obj: &Map<String, Value>) -> Result<Option<JobId>, ProtocolError> {
    match obj.get("job_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => JobId::parse(s)
            .map(Some)
            .map_err(|e| ProtocolError::new(code::INVALID_FIELD, format!("`job_id`: {e}"))),
        Some(other) => Err(ProtocolError::new(
            code::INVALID_FIELD,
            format!("`job_id` must be a string, not {}", kind(other)),
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `v` as an object (`null` becomes `{}`, anything else `{"value": v}`).
fn object(v: &Value) -> Value {
    match v {
        Value::Object(_) => v.clone(),
        Value::Null => Value::Object(Map::new()),
        other => json!({ "value": other }),
    }
}

impl Serialize for Channels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(Channel::as_str))
    }
}

impl fmt::Debug for Channels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> ClientMessage {
        parse(text).unwrap().message
    }

    fn err(text: &str) -> ProtocolError {
        parse(text).unwrap_err()
    }

    #[test]
    fn every_server_message_has_every_variant() {
        let mut seen = [false; 13];
        for m in every_server_message() {
            // Exhaustive: a new variant does not compile until it has a slot here and a sample.
            let slot = match m {
                ServerMessage::Hello { .. } => 0,
                ServerMessage::Subscribed { .. } => 1,
                ServerMessage::Unsubscribed { .. } => 2,
                ServerMessage::Pong { .. } => 3,
                ServerMessage::Ack { .. } => 4,
                ServerMessage::Error { .. } => 5,
                ServerMessage::JobStateChange(_) => 6,
                ServerMessage::JobProgress(_) => 7,
                ServerMessage::JobDeleted { .. } => 8,
                ServerMessage::DeviceStatus(_) => 9,
                ServerMessage::SystemStatus(_) => 10,
                ServerMessage::SystemAlert(_) => 11,
                ServerMessage::DeviceRemoved { .. } => 12,
            };
            seen[slot] = true;
        }
        assert!(seen.iter().all(|s| *s), "{seen:?}");
    }

    #[test]
    fn every_client_type_parses() {
        for t in CLIENT_TYPES {
            let text = format!(r#"{{"type":"{t}","job_id":"abc"}}"#);
            assert!(parse(&text).is_ok(), "{t}: {:?}", parse(&text));
        }
    }

    #[test]
    fn subscribe_in_every_spelling() {
        let jobs_and_devices =
            Channels::only(Channel::Jobs).union(Channels::only(Channel::Devices));
        for text in [
            r#"{"type":"SUBSCRIBE","channels":["jobs","device"]}"#,
            r#"{"type":"subscribe","channels":["JOBS","devices"]}"#,
            r#"{"type":"Subscribe","channels":["job","DEVICE"],"timestamp":"x"}"#,
        ] {
            assert_eq!(
                msg(text),
                ClientMessage::Subscribe {
                    channels: jobs_and_devices,
                    job_id: None
                },
                "{text}"
            );
        }
        for text in [
            r#"{"type":"subscribe"}"#,
            r#"{"type":"subscribe","channels":[]}"#,
            r#"{"type":"subscribe","channels":["all"]}"#,
            r#"{"type":"subscribe","channels":"all"}"#,
        ] {
            assert!(
                matches!(msg(text), ClientMessage::Subscribe { channels, .. } if channels == Channels::ALL),
                "{text}"
            );
        }
        let r = parse(r#"{"type":"subscribe","channels":["jobs"],"job_id":"abc","request_id":7}"#)
            .unwrap();
        assert_eq!(r.request_id, Some(json!(7)));
        assert_eq!(
            r.message,
            ClientMessage::Subscribe {
                channels: Channels::only(Channel::Jobs),
                job_id: Some(JobId::parse("abc").unwrap())
            }
        );
    }

    #[test]
    fn other_requests() {
        assert_eq!(msg(r#"{"type":"PING"}"#), ClientMessage::Ping);
        assert_eq!(
            msg(r#"{"type":"unsubscribe","channels":["system"]}"#),
            ClientMessage::Unsubscribe {
                channels: Channels::only(Channel::System)
            }
        );
        assert_eq!(
            msg(r#"{"type":"job_start","job_id":"j-1"}"#),
            ClientMessage::Job {
                action: JobAction::Start,
                job_id: JobId::parse("j-1").unwrap()
            }
        );
        assert_eq!(
            msg(r#"{"type":"JOB_ABORT","job_id":"j-1"}"#),
            ClientMessage::Job {
                action: JobAction::Abort,
                job_id: JobId::parse("j-1").unwrap()
            }
        );
    }

    #[test]
    fn every_bad_message_gets_a_code() {
        for (text, code) in [
            ("", code::INVALID_JSON),
            ("{", code::INVALID_JSON),
            ("not json", code::INVALID_JSON),
            ("[1,2]", code::INVALID_MESSAGE),
            ("42", code::INVALID_MESSAGE),
            ("{}", code::INVALID_MESSAGE),
            (r#"{"type":null}"#, code::INVALID_MESSAGE),
            (r#"{"type":5}"#, code::INVALID_FIELD),
            (r#"{"type":"dance"}"#, code::UNKNOWN_MESSAGE_TYPE),
            (
                r#"{"type":"subscribe","channels":["pens"]}"#,
                code::SUBSCRIPTION_ERROR,
            ),
            (
                r#"{"type":"subscribe","channels":[1]}"#,
                code::INVALID_FIELD,
            ),
            (
                r#"{"type":"subscribe","channels":{"a":1}}"#,
                code::INVALID_FIELD,
            ),
            (
                r#"{"type":"subscribe","job_id":"../etc"}"#,
                code::INVALID_FIELD,
            ),
            (r#"{"type":"subscribe","job_id":3}"#, code::INVALID_FIELD),
            (r#"{"type":"job_pause"}"#, code::INVALID_FIELD),
            (r#"{"type":"ping","request_id":[1]}"#, code::INVALID_FIELD),
        ] {
            assert_eq!(err(text).code, code, "{text}");
        }
        let e = err(r#"{"type":"SUBSCRIBEX","request_id":"r1"}"#);
        assert_eq!(e.message, "Unknown message type: SUBSCRIBEX");
        assert_eq!(e.request_id, Some(json!("r1")));
    }

    #[test]
    fn messages_carry_type_and_a_utc_timestamp() {
        let text = encode_at(
            &ServerMessage::Pong { request_id: None },
            "2026-11-26T06:31:50.530Z",
        );
        assert_eq!(
            text.as_str(),
            r#"{"timestamp":"2026-11-26T06:31:50.530Z","type":"pong"}"#
        );
        let v: Value = serde_json::from_str(
            encode(&ServerMessage::error(
                code::LAGGED,
                "slow",
                json!({"dropped": 3}),
            ))
            .as_str(),
        )
        .unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error_code"], "LAGGED");
        assert_eq!(v["details"]["dropped"], 3);
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    /// Issue 15: job state changes and progress name the plotter they are about.
    #[test]
    fn job_events_carry_the_device_name() {
        let change = |metadata: Value| crate::store::StateChange {
            event_id: 1,
            job_id: JobId::parse("j").unwrap(),
            job_name: "n".into(),
            from: Some(JobState::Plotting),
            to: JobState::Paused,
            reason: crate::job::Reason::User,
            error: None,
            metadata,
            at: "t".into(),
        };
        let v: Value = serde_json::from_str(
            encode(&ServerMessage::state_change(&change(
                json!({ "device_id": "left" }),
            )))
            .as_str(),
        )
        .unwrap();
        assert_eq!(v["device_id"], "left");
        let v: Value =
            serde_json::from_str(encode(&ServerMessage::state_change(&change(json!({})))).as_str())
                .unwrap();
        assert_eq!(v["device_id"], Value::Null, "no plotter involved");
        let p = JobProgress {
            job_id: JobId::parse("j").unwrap(),
            device_id: Some("right".into()),
            progress: 0.5,
            current_layer: 1,
            total_layers: 1,
            points_plotted: 1,
            total_points: 2,
            distance_mm: 1.0,
            eta_seconds: None,
            pen_down_time_seconds: 0.0,
            total_time_seconds: 0.0,
        };
        let v: Value =
            serde_json::from_str(encode(&ServerMessage::progress(&p, false)).as_str()).unwrap();
        assert_eq!(v["device_id"], "right");
    }

    #[test]
    fn progress_carries_both_spellings_and_survives_nan() {
        let p = JobProgress {
            job_id: JobId::parse("j").unwrap(),
            device_id: None,
            progress: 0.4567,
            current_layer: 2,
            total_layers: 4,
            points_plotted: 10,
            total_points: 20,
            distance_mm: 1.5,
            eta_seconds: Some(61.6),
            pen_down_time_seconds: 1.0,
            total_time_seconds: 2.0,
        };
        let v: Value =
            serde_json::from_str(encode(&ServerMessage::progress(&p, false)).as_str()).unwrap();
        assert_eq!(v["progress_percentage"], 45.7);
        assert_eq!(v["eta_seconds"], 62);
        assert_eq!(v["estimated_remaining"], 62);
        assert_eq!(v["metadata"]["total_points"], 20);
        assert!(v.get("snapshot").is_none());
        let nan = JobProgress {
            progress: f64::NAN,
            eta_seconds: Some(f64::INFINITY),
            distance_mm: f64::NAN,
            ..p
        };
        let v: Value =
            serde_json::from_str(encode(&ServerMessage::progress(&nan, true)).as_str()).unwrap();
        assert_eq!(v["progress"], 0.0);
        assert_eq!(v["eta_seconds"], Value::Null);
        assert_eq!(v["distance_mm"], Value::Null);
        assert_eq!(v["snapshot"], true);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in ".{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn parse_never_panics_on_json_shapes(
            t in proptest::option::of("[a-zA-Z_]{0,12}"),
            ch in proptest::collection::vec(".{0,8}", 0..4),
            id in proptest::option::of(".{0,70}"),
        ) {
            let v = json!({ "type": t, "channels": ch, "job_id": id });
            let _ = parse(&v.to_string());
        }
    }
}
