//! The config file as written: serde types mirroring the YAML, with the documented defaults.
//!
//! Every struct denies unknown keys, so a typo (`authentication` for `authenticate`) is an error
//! that names the key, the file and the line instead of a setting silently ignored. Types and
//! ranges are checked later (in `settings::validate`), where every problem is collected.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::units::{ByteSize, FirmwareChoice, ResolutionSetting, StringList};
use crate::logging::LogLevel;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// Workspace directory (relative to the config file's directory).
    pub workspace: Option<PathBuf>,
    /// WebSocket and HTTP API.
    pub websocket: RawWebSocket,
    /// Database.
    pub database: RawDatabase,
    /// Plotter (a farm of one).
    pub device: RawDevice,
    /// Plotters, each as `device` plus `name` and `tags` (exclusive with `device`).
    pub devices: Option<Vec<RawDevice>>,
    /// Motion limits (optional; derived from `device` when absent).
    pub motion: Option<RawMotion>,
    /// Logging.
    pub logging: RawLogging,
    /// Hooks per job state.
    pub hooks: Option<BTreeMap<String, Option<Vec<RawHook>>>>,
    /// Paper defaults.
    pub paper: RawPaper,
    /// Named pens.
    pub pens: Option<BTreeMap<String, RawPen>>,
    /// What a shutdown does with the plot in progress.
    pub shutdown: RawShutdown,
    /// How large an input may be.
    pub limits: RawLimits,
    /// This daemon among several sharing a PostgreSQL database.
    pub daemon: RawDaemon,
}

/// `daemon:`: this daemon's identity among the daemons sharing a PostgreSQL job queue.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDaemon {
    /// Its name (default: the host name).
    pub name: Option<String>,
}

/// `limits:`: how large an SVG may be, for `plotty plot`, `plotty add` and the daemon.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLimits {
    /// Largest number of line segments a drawing may flatten to.
    pub max_segments: u64,
    /// Largest SVG file, MiB.
    pub max_file_mb: f64,
}

/// `shutdown:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawShutdown {
    /// `stroke` (finish the stroke being drawn, then stop) or `job` (finish the whole job).
    pub finish: ShutdownFinish,
    /// Seconds to wait for that before stopping at once (pen up first).
    pub timeout: f64,
}

/// How much of the plot in progress a shutdown lets finish.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShutdownFinish {
    /// The stroke being drawn: the job stops at its end, `PAUSED` (reason `shutdown`).
    #[default]
    Stroke,
    /// The whole job (within `timeout`).
    Job,
}

/// `websocket:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawWebSocket {
    /// Serve the API at all.
    pub enabled: bool,
    /// Bind address.
    pub host: String,
    /// Port (0 = any free port).
    pub port: u16,
    /// Require the API key.
    pub authenticate: bool,
    /// The API key.
    pub api_key: Option<String>,
    /// Client limit.
    pub max_connections: u32,
    /// Seconds between pings.
    pub heartbeat_interval: f64,
    /// Allowed `Origin`s (empty = same host only; `"*"` = any).
    pub allowed_origins: StringList,
    /// Client messages per minute.
    pub message_rate_limit: u32,
    /// Largest SVG accepted by `POST /api/jobs`.
    pub max_upload_size: ByteSize,
    /// Host names (besides the listen address and the loopback names) a client may use in the
    /// `Host` header when the API runs without an API key; `"*"` = any. Default: none.
    pub allowed_hosts: StringList,
    /// HTTP connections open at once (not counting WebSockets, which `max_connections` caps).
    /// Default: 256.
    pub max_http_connections: u32,
    /// Seconds a client has to send a request's headers (also the longest a kept-alive
    /// connection may wait for its next request). Default: 10.
    pub header_timeout: f64,
}

/// `database:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDatabase {
    /// `sqlite:///path` or a plain path.
    pub url: Option<String>,
    /// Read connections.
    pub pool_size: u32,
    /// Accepted for compatibility; unused with SQLite.
    pub max_overflow: u32,
    /// PostgreSQL: seconds a daemon holds a job without renewing its lease.
    pub lease_ttl: f64,
}

/// Which plotter to use. `device.type` in the file and the words of `--device` are read by one
/// parser, [`DeviceKind::parse`], so both accept the same spellings.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// The first AxiDraw found by USB id, else the built-in simulator.
    #[default]
    Auto,
    /// An AxiDraw (EBB) on a serial port; an error if none is found.
    Axidraw,
    /// The built-in simulator.
    Simulator,
}

impl DeviceKind {
    /// Every accepted spelling (any letter case) and its kind; the first of each kind is its
    /// name.
    pub const SPELLINGS: &[(&str, Self)] = &[
        ("auto", Self::Auto),
        ("axidraw", Self::Axidraw),
        ("simulator", Self::Simulator),
        ("sim", Self::Simulator),
    ];

    /// The kind `word` names (`sim` and `simulator`, in any letter case), if it names one.
    pub fn parse(word: &str) -> Option<Self> {
        let word = word.trim();
        Self::SPELLINGS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(word))
            .map(|(_, kind)| *kind)
    }
}

impl<'de> Deserialize<'de> for DeviceKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = DeviceKind;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("auto, axidraw or simulator (sim)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DeviceKind, E> {
                DeviceKind::parse(v).ok_or_else(|| {
                    const NAMES: &[&str] = &["auto", "axidraw", "simulator", "sim"];
                    E::unknown_variant(v, NAMES)
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// `device:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDevice {
    /// Its name (required in `devices`; jobs name it with `--device`).
    pub name: Option<String>,
    /// What it holds, for jobs' requirements (pen colours, paper sizes).
    pub tags: Option<StringList>,
    /// Plotter kind.
    #[serde(rename = "type")]
    pub kind: DeviceKind,
    /// Serial port (`auto` or absent = search).
    pub port: Option<String>,
    /// The board's nickname (`ST`/`QT`): the search takes the board that has it.
    pub nickname: Option<String>,
    /// The board's USB serial number: the search takes the board that has it.
    pub serial: Option<String>,
    /// Baud rate.
    pub baud_rate: u32,
    /// Seconds without a reply before the device counts as faulty.
    pub timeout: f64,
    /// AxiDraw model 1–7.
    pub model: u8,
    /// Pen-up height, percent.
    pub pen_pos_up: f64,
    /// Pen-down height, percent.
    pub pen_pos_down: f64,
    /// Pen-down speed, percent.
    pub speed_pendown: f64,
    /// Pen-up speed, percent.
    pub speed_penup: f64,
    /// Acceleration, percent.
    pub accel: f64,
    /// Cornering factor.
    pub cornering: f64,
    /// Microstepping.
    pub resolution: ResolutionSetting,
    /// Firmware behaviour.
    pub firmware: FirmwareChoice,
    /// Pen raising rate, percent.
    pub pen_rate_raise: f64,
    /// Pen lowering rate, percent.
    pub pen_rate_lower: f64,
    /// Extra delay after raising, ms.
    pub pen_delay_up: i32,
    /// Extra delay after lowering, ms.
    pub pen_delay_down: i32,
    /// Pen-lift mechanism (1, 2: standard servo; 3: narrow-band brushless).
    pub penlift: u8,
    /// Constant-speed pen-down mode.
    pub const_speed: bool,
}

/// A base for the `motion:` section.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MotionPreset {
    /// Derived from the `device` settings, as the AxiDraw software does.
    #[default]
    Axidraw,
    /// The comparison limits of the benchmark suite (bench/README.md).
    Comparison,
}

/// How corner speeds are limited.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CornerRuleKind {
    /// The AxiDraw software's cornering rule.
    Axidraw,
    /// Junction deviation (as grbl, saxi).
    Junction,
    /// A bounded step-rate change of each motor at a corner (`corner_jump_hz`).
    MotorJump,
}

/// What the speed and acceleration limits bound.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitModel {
    /// One XY speed and acceleration per pen state (the AxiDraw software's model).
    #[default]
    Xy,
    /// Each motor's step rate and step acceleration, derived from the XY figures so that no
    /// motor works harder than under them (moves the motors share go faster); corners by
    /// `corner_jump_hz` unless `corner_rule` says otherwise.
    PerMotor,
}

/// `motion:`; every key optional, overriding the preset.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMotion {
    /// Base values.
    pub preset: MotionPreset,
    /// Pen-down XY speed limit, mm/s.
    pub pen_down_speed_mm_s: Option<f64>,
    /// Pen-down acceleration, mm/s².
    pub pen_down_accel_mm_s2: Option<f64>,
    /// Pen-up XY speed limit, mm/s.
    pub pen_up_speed_mm_s: Option<f64>,
    /// Pen-up acceleration, mm/s².
    pub pen_up_accel_mm_s2: Option<f64>,
    /// Corner rule.
    pub corner_rule: Option<CornerRuleKind>,
    /// Corner deviation, mm.
    pub corner_deviation_mm: Option<f64>,
    /// XY or per-motor limits.
    pub limits: Option<LimitModel>,
    /// Largest step-rate change of either motor at a corner (`corner_rule: motor_jump`),
    /// steps/s.
    pub corner_jump_hz: Option<f64>,
    /// Fixed pen lift time, s.
    pub pen_lift_s: Option<f64>,
    /// Fixed pen drop time, s.
    pub pen_drop_s: Option<f64>,
    /// Limit each motor's step rate (25 kHz) in addition to the XY speed.
    pub per_motor_limits: Option<bool>,
}

/// `logging:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLogging {
    /// Level.
    pub level: LogLevel,
    /// Log file (relative to the workspace).
    pub file: Option<PathBuf>,
    /// Rotate above this size.
    pub max_size: ByteSize,
    /// Rotated files kept.
    pub backup_count: u32,
    /// `text`, `json` (or a Python logging format string, read as text).
    pub format: String,
    /// Audit log.
    pub audit: bool,
    /// Security events log.
    pub security_events: bool,
}

/// One hook action.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHook {
    /// A shell string, or a program and its arguments.
    pub command: Option<RawCommand>,
    /// Executable path.
    pub script: Option<PathBuf>,
    /// `http://` URL.
    pub webhook: Option<String>,
    /// Seconds before it is killed or abandoned.
    pub timeout: Option<f64>,
}

/// `command:` as written: a string for `/bin/sh -c`, or a list run without a shell.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum RawCommand {
    /// `command: "…"`.
    Shell(String),
    /// `command: ["prog", "{job_name}"]`.
    Argv(Vec<String>),
}

impl<'de> Deserialize<'de> for RawCommand {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawCommand;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a shell string (`echo \"$PLOTTY_JOB_NAME\"`) or a list of strings run \
                     without a shell (`[\"echo\", \"{job_name}\"]`)",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawCommand, E> {
                Ok(RawCommand::Shell(v.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawCommand, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(RawCommand::Argv(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Page orientation.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Orientation {
    /// Long side vertical (along y).
    Portrait,
    /// Long side horizontal (along x, the long axis of the travel).
    Landscape,
    /// Whichever way round holds the drawing, then fits the travel (`crate::paper`).
    #[default]
    Auto,
}

/// `paper:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPaper {
    /// A4, Letter, … or `WxH` in mm.
    pub default_size: String,
    /// Margin, mm.
    pub margin_mm: f64,
    /// Orientation.
    pub orientation: Orientation,
}

/// One pen under `pens:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPen {
    /// Line width, mm.
    pub width_mm: Option<f64>,
    /// Ink colour `#rrggbb`.
    #[serde(alias = "colour")]
    pub color: Option<String>,
    /// Speed limit while drawing with this pen, mm/s.
    pub speed_cap_mm_s: Option<f64>,
}

impl Default for RawWebSocket {
    fn default() -> Self {
        Self {
            enabled: true,
            host: "localhost".into(),
            port: 8766,
            authenticate: false,
            api_key: None,
            max_connections: 100,
            heartbeat_interval: 30.0,
            allowed_origins: StringList::default(),
            message_rate_limit: 100,
            max_upload_size: ByteSize(100 << 20),
            allowed_hosts: StringList::default(),
            max_http_connections: 256,
            header_timeout: 10.0,
        }
    }
}

impl Default for RawDatabase {
    fn default() -> Self {
        Self {
            url: None,
            pool_size: 10,
            max_overflow: 20,
            lease_ttl: 30.0,
        }
    }
}

impl Default for RawDevice {
    fn default() -> Self {
        Self {
            name: None,
            tags: None,
            kind: DeviceKind::Auto,
            port: None,
            nickname: None,
            serial: None,
            baud_rate: 9600,
            timeout: 30.0,
            model: 1,
            pen_pos_up: 60.0,
            pen_pos_down: 30.0,
            speed_pendown: 25.0,
            speed_penup: 75.0,
            accel: 75.0,
            cornering: 10.0,
            resolution: ResolutionSetting::default(),
            firmware: FirmwareChoice::Auto,
            pen_rate_raise: 75.0,
            pen_rate_lower: 50.0,
            pen_delay_up: 0,
            pen_delay_down: 0,
            penlift: 1,
            const_speed: false,
        }
    }
}

impl Default for RawLogging {
    fn default() -> Self {
        Self {
            level: LogLevel::Info,
            file: None,
            max_size: ByteSize(10 << 20),
            backup_count: 5,
            format: "text".into(),
            audit: false,
            security_events: false,
        }
    }
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            max_segments: crate::import::DEFAULT_MAX_SEGMENTS as u64,
            max_file_mb: (crate::import::DEFAULT_MAX_FILE_BYTES >> 20) as f64,
        }
    }
}

impl Default for RawShutdown {
    fn default() -> Self {
        Self {
            finish: ShutdownFinish::Stroke,
            timeout: 60.0,
        }
    }
}

impl Default for RawPaper {
    fn default() -> Self {
        Self {
            default_size: "A4".into(),
            margin_mm: 10.0,
            orientation: Orientation::Auto,
        }
    }
}
