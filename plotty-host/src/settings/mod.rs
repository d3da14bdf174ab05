//! Settings: the command line, the environment and the config file merged into one validated
//! [`Settings`] before anything starts (ripgrep's low-level/high-level split). Nothing downstream
//! reads raw arguments or the file.
//!
//! Precedence: command line, then environment (`PLOTTY_CONFIG`, `PLOTTY_API_KEY`,
//! `PLOTTY_WORKSPACE`), then the config file, then built-in defaults. The config file is
//! `--config`, else `PLOTTY_CONFIG`, else `$XDG_CONFIG_HOME/plotty/config.yaml`; a missing default
//! file means the defaults, a missing file that was named explicitly is an error.
//!
//! Every problem (unknown key, wrong type, value out of range, missing API key, bad hook) names the
//! file, the line and the key, and all problems of a file are reported together. Relative paths:
//! from the command line and environment, relative to the current directory; `workspace` and hook
//! scripts in the file, relative to the file's directory; `database.url` and `logging.file`,
//! relative to the workspace. A leading `~/` is the home directory.

pub mod check;
pub mod file;
pub mod init;
pub mod locate;
pub mod run;
pub mod show;
pub mod units;
mod validate;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use plotty_motion::kinematics::AxiDrawSettings;

pub use file::{CornerRuleKind, DeviceKind, LimitModel, MotionPreset, Orientation};
pub use run::{Reordering, RunOptions};
pub use units::FirmwareChoice;
pub use validate::{MAX_NAME_LEN, is_name_word};
pub(crate) use validate::{PAPER_SIZES, host_name, parse_paper};

use crate::hooks::HookSet;
use crate::logging::{LogLevel, LogSettings};
use locate::Position;

/// Everything the daemon and the commands need, validated.
#[derive(Clone, PartialEq, Debug)]
pub struct Settings {
    /// Where the config came from.
    pub config: ConfigSource,
    /// Jobs, database, logs.
    pub workspace: PathBuf,
    /// WebSocket and HTTP API.
    pub websocket: WebSocketSettings,
    /// Database.
    pub database: DatabaseSettings,
    /// The first plotter (the only one of a `device` section): what `plotty plot`, `plotty
    /// check device` and the motion limits use.
    pub device: DeviceSettings,
    /// Every plotter, in config order (`devices`, or the `device` section alone); never empty,
    /// `devices[0] == device`.
    pub devices: Vec<DeviceSettings>,
    /// The motion limits of each plotter of `devices` (from its own settings).
    device_motion: Vec<MotionLimits>,
    /// Motion limits for planning.
    pub motion: MotionLimits,
    /// Logging.
    pub logging: LogSettings,
    /// Hooks per job state.
    pub hooks: HookSet,
    /// Paper defaults.
    pub paper: PaperSettings,
    /// Named pens.
    pub pens: Vec<PenSettings>,
    /// What a shutdown does with the plot in progress.
    pub shutdown: ShutdownSettings,
    /// How large an input may be.
    pub limits: LimitSettings,
    /// This daemon's name among those sharing a PostgreSQL database (`daemon.name`).
    pub daemon: DaemonSettings,
    /// Things worth knowing that are not errors (shown by `plotty check config`, logged at start).
    pub notes: Vec<Note>,
}

/// Which config file was used.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ConfigSource {
    /// The file (`None` when no location could be determined).
    pub path: Option<PathBuf>,
    /// Who named it.
    pub origin: Origin,
    /// False when the default file does not exist and the defaults were used.
    pub found: bool,
}

/// Who chose a value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Origin {
    /// The command line.
    CommandLine,
    /// An environment variable.
    Environment,
    /// The built-in default.
    Default,
}

/// The `limits` section: how large an SVG may be, for `plotty plot`, `plotty add` and the
/// daemon (issue 10: a 10 M-segment drawing took 7 GB to preview).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LimitSettings {
    /// Largest number of line segments a drawing may flatten to (`limits.max_segments`).
    pub max_segments: usize,
    /// Largest SVG file, bytes (`limits.max_file_mb`, in MiB).
    pub max_file_bytes: u64,
}

/// The `websocket` section.
#[derive(Clone, PartialEq, Debug)]
pub struct WebSocketSettings {
    /// Serve the API.
    pub enabled: bool,
    /// Bind address.
    pub host: String,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// Require the API key.
    pub authenticate: bool,
    /// The API key (from `PLOTTY_API_KEY` or the file).
    pub api_key: Option<ApiKey>,
    /// Client limit.
    pub max_connections: u32,
    /// Time between pings.
    pub heartbeat_interval: Duration,
    /// Which browser origins may connect.
    pub allowed_origins: OriginPolicy,
    /// Client messages per minute.
    pub message_rate_limit: u32,
    /// Largest SVG accepted by `POST /api/jobs`, bytes.
    pub max_upload_size: u64,
    /// Extra names accepted in the `Host` header without an API key (lower case, no port; `*` =
    /// any). The listen address and `localhost`, `127.0.0.1`, `[::1]` are always accepted.
    pub allowed_hosts: Vec<String>,
    /// HTTP connections open at once, WebSockets not counted (default 256).
    pub max_http_connections: u32,
    /// Time a client has to send a request's headers, and longest a kept-alive connection waits
    /// for the next request (default 10 s).
    pub header_timeout: Duration,
}

/// Which `Origin` headers are accepted.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum OriginPolicy {
    /// Only pages served by this host (the default).
    SameHost,
    /// Any origin (`"*"`).
    Any,
    /// These origins (`scheme://host[:port]`, lower case).
    List(Vec<String>),
}

/// An API key; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

/// The `database` section.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DatabaseSettings {
    /// The SQLite file (unused when `postgres` is set).
    pub path: PathBuf,
    /// `database.url: postgresql://…`: the job store is on PostgreSQL.
    pub postgres: Option<PostgresUrl>,
    /// Read-only connections for queries (the writer has its own); with PostgreSQL, the
    /// connections the pool keeps.
    pub pool_size: u32,
    /// With PostgreSQL, connections the pool may open beyond `pool_size` under load; unused
    /// with SQLite.
    pub max_overflow: u32,
    /// With PostgreSQL, how long a daemon holds a job without renewing its lease
    /// (`database.lease_ttl`, 30 s); it renews every third of that.
    pub lease_ttl: Duration,
}

/// The `daemon` section: this daemon among several on one PostgreSQL job queue.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DaemonSettings {
    /// `daemon.name`: unique among the daemons sharing the database, the same across restarts
    /// (default: the host name; give each daemon its own when several run on one host). Jobs
    /// show the daemon that plots them, and a job PAUSED on a daemon resumes there only.
    pub name: String,
}

/// A PostgreSQL URL; its password is never printed (`Debug` and [`PostgresUrl::shown`] hide it).
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(pub String);

impl PostgresUrl {
    /// The URL without its password.
    pub fn shown(&self) -> String {
        crate::store::postgres::redact(&self.0)
    }
}

impl std::fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

/// One plotter: the `device` section, or an entry of `devices`.
#[derive(Clone, PartialEq, Debug)]
pub struct DeviceSettings {
    /// Its name (`None`: an unnamed `device` section, known by its device id).
    pub name: Option<String>,
    /// What it holds (pen colours, paper sizes), matched by jobs' `--tag` requirements.
    pub tags: Vec<String>,
    /// Which plotter.
    pub kind: DeviceKind,
    /// Serial port; `None` searches by USB id.
    pub port: Option<String>,
    /// The board's nickname (`QT`): a search takes the one board that has it, whatever its
    /// port (see [`crate::devices::identity`]).
    pub nickname: Option<String>,
    /// The board's USB serial number: a search takes the one board that has it.
    pub serial: Option<String>,
    /// Baud rate.
    pub baud_rate: u32,
    /// Silence after which the device counts as faulty.
    pub timeout: Duration,
    /// The AxiDraw-style settings (model, pen heights, speeds, …).
    pub axidraw: AxiDrawSettings,
    /// Firmware behaviour.
    pub firmware: FirmwareChoice,
}

/// How corner speeds are limited.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum CornerRule {
    /// The AxiDraw software's cornering rule with this deviation.
    AxiDraw {
        /// Corner deviation, mm.
        deviation_mm: f64,
    },
    /// Junction deviation (grbl, saxi).
    JunctionDeviation {
        /// Junction deviation, mm.
        deviation_mm: f64,
    },
    /// Each motor's step rate may change by at most this much at a corner.
    MotorJump {
        /// Largest step-rate change, steps/s.
        max_jump_hz: f64,
    },
}

/// Default `motion.corner_jump_hz`: the largest step-rate change of either motor at a corner,
/// steps/s. Chosen so that the distribution of per-motor rate changes between consecutive moves
/// on random_walk_100k stays under the AxiDraw software's at its defaults at every percentile
/// (DESIGN.md, "Motor-limited planning").
pub const DEFAULT_CORNER_JUMP_HZ: f64 = 3_000.0;

/// The limits a plan must respect (the `motion` section, or derived from `device`).
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct MotionLimits {
    /// Pen-down XY speed, mm/s.
    pub pen_down_speed_mm_s: f64,
    /// Pen-down acceleration, mm/s².
    pub pen_down_accel_mm_s2: f64,
    /// Pen-up XY speed, mm/s.
    pub pen_up_speed_mm_s: f64,
    /// Pen-up acceleration, mm/s².
    pub pen_up_accel_mm_s2: f64,
    /// Corner rule.
    pub corner_rule: CornerRule,
    /// Time to lift the pen, s.
    pub pen_lift_s: f64,
    /// Time to lower the pen, s.
    pub pen_drop_s: f64,
    /// Also limit each motor to its step rate.
    pub per_motor_limits: bool,
    /// XY or per-motor limits.
    pub limits: LimitModel,
}

/// A paper size (portrait: width ≤ height).
#[derive(Clone, PartialEq, Debug)]
pub struct PaperSize {
    /// Name as configured (`A4`, `300x200mm`).
    pub name: String,
    /// Width, mm.
    pub width_mm: f64,
    /// Height, mm.
    pub height_mm: f64,
}

/// The `shutdown` section: on SIGTERM/SIGINT the plot in progress finishes its stroke (or the
/// whole job) within `timeout`, then stops with the pen up, parks, and is recorded `PAUSED`
/// (reason `shutdown`) with its exact resume point; past the timeout, or on a second signal, it
/// stops at once.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct ShutdownSettings {
    /// How much to finish.
    pub finish: file::ShutdownFinish,
    /// How long to wait for it.
    pub timeout: Duration,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self {
            finish: file::ShutdownFinish::Stroke,
            timeout: Duration::from_secs(60),
        }
    }
}

/// The `paper` section.
#[derive(Clone, PartialEq, Debug)]
pub struct PaperSettings {
    /// Default size.
    pub size: PaperSize,
    /// Margin, mm.
    pub margin_mm: f64,
    /// Orientation.
    pub orientation: Orientation,
}

/// One pen.
#[derive(Clone, PartialEq, Debug)]
pub struct PenSettings {
    /// Its name.
    pub name: String,
    /// Line width, mm.
    pub width_mm: Option<f64>,
    /// Colour `#rrggbb`.
    pub color: Option<String>,
    /// Speed cap, mm/s.
    pub speed_cap_mm_s: Option<f64>,
}

/// Something a user should know about the config that is not an error.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Note {
    /// The key (`websocket.host`).
    pub key: String,
    /// Where in the file.
    pub location: Option<Position>,
    /// What.
    pub message: String,
    /// What to do, if anything.
    pub advice: String,
}

/// One problem in the configuration.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Problem {
    /// The file, for problems in a file.
    pub file: Option<PathBuf>,
    /// Where in the file.
    pub location: Option<Position>,
    /// The key (`websocket.authenticate`), option (`--workspace`) or variable (`PLOTTY_API_KEY`).
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: Option<String>,
}

/// The configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An explicitly named config file does not exist.
    #[error(
        "config file {path} (from {origin}) does not exist: create it, or leave out {origin} to use \
         the built-in defaults"
    )]
    Missing {
        /// The file.
        path: PathBuf,
        /// Who named it.
        origin: Origin,
    },
    /// The config file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Values are wrong; every problem found is listed.
    #[error("{}", ProblemList(.0))]
    Invalid(Vec<Problem>),
}

/// Settings given on the command line (all optional).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Overrides {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--workspace`.
    pub workspace: Option<PathBuf>,
    /// `--host`.
    pub host: Option<String>,
    /// `--port`.
    pub port: Option<u16>,
    /// `--log-level`.
    pub log_level: Option<LogLevel>,
}

/// The environment, read once at start-up (a reload uses the same snapshot).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Environment {
    /// `PLOTTY_CONFIG`.
    pub config: Option<OsString>,
    /// `PLOTTY_API_KEY` (not valid UTF-8 is reported as a problem).
    pub api_key: Option<OsString>,
    /// `PLOTTY_WORKSPACE`.
    pub workspace: Option<OsString>,
    /// The working directory, for relative paths.
    pub cwd: PathBuf,
}

/// Built-in default locations (XDG).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Defaults {
    /// `$XDG_CONFIG_HOME/plotty/config.yaml`.
    pub config_file: Option<PathBuf>,
    /// `$XDG_DATA_HOME/plotty/workspace`.
    pub workspace: Option<PathBuf>,
    /// The home directory, for `~/`.
    pub home: Option<PathBuf>,
}

/// Everything settings are made from; kept by the daemon to reload the config on SIGHUP.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Sources {
    /// The command line.
    pub overrides: Overrides,
    /// The environment.
    pub env: Environment,
    /// The default locations.
    pub defaults: Defaults,
}

/// Reads and validates the configuration.
pub fn load(sources: &Sources) -> Result<Settings, ConfigError> {
    let (config, text) = read_config(sources)?;
    validate::validate(sources, config, text.as_deref())
}

/// Determines the config file and reads it (`None` text: the defaults).
fn read_config(sources: &Sources) -> Result<(ConfigSource, Option<String>), ConfigError> {
    let env = &sources.env;
    let (path, origin) = if let Some(p) = &sources.overrides.config {
        (
            Some(absolute(&env.cwd, p, sources.defaults.home.as_deref())),
            Origin::CommandLine,
        )
    } else if let Some(p) = env.config.as_ref().filter(|p| !p.is_empty()) {
        (
            Some(absolute(
                &env.cwd,
                Path::new(p),
                sources.defaults.home.as_deref(),
            )),
            Origin::Environment,
        )
    } else {
        (sources.defaults.config_file.clone(), Origin::Default)
    };
    let Some(path) = path else {
        let source = ConfigSource {
            path: None,
            origin,
            found: false,
        };
        return Ok((source, None));
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((
            ConfigSource {
                path: Some(path),
                origin,
                found: true,
            },
            Some(text),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if origin == Origin::Default {
                Ok((
                    ConfigSource {
                        path: Some(path),
                        origin,
                        found: false,
                    },
                    None,
                ))
            } else {
                Err(ConfigError::Missing { path, origin })
            }
        }
        Err(source) => Err(ConfigError::Read { path, source }),
    }
}

/// `p` made absolute against `base`, with a leading `~/` taken as the home directory and `.`
/// components dropped.
pub fn absolute(base: &Path, p: &Path, home: Option<&Path>) -> PathBuf {
    let expanded = match (p.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => p.to_path_buf(),
    };
    let joined = if expanded.is_absolute() {
        expanded
    } else {
        base.join(expanded)
    };
    joined
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

impl Settings {
    /// The settings from the defaults alone, with the workspace `workspace` (tests, tools).
    pub fn defaults_for(workspace: &Path) -> Self {
        let sources = Sources {
            overrides: Overrides {
                workspace: Some(workspace.to_path_buf()),
                ..Overrides::default()
            },
            ..Sources::default()
        };
        // The defaults are valid by construction; a failure here is a bug in `validate`.
        #[allow(clippy::expect_used)]
        validate::validate(
            &sources,
            ConfigSource {
                path: None,
                origin: Origin::Default,
                found: false,
            },
            None,
        )
        .expect("the built-in defaults are valid")
    }

    /// Directory of job journals and files (`<workspace>/jobs`).
    pub fn jobs_dir(&self) -> PathBuf {
        self.workspace.join("jobs")
    }

    /// `new` with the settings that need a restart kept at their current values (see
    /// [`Settings::restart_needed`]).
    pub fn merge_reload(&self, mut new: Self) -> Self {
        new.workspace = self.workspace.clone();
        new.websocket.host = self.websocket.host.clone();
        new.websocket.port = self.websocket.port;
        new.websocket.enabled = self.websocket.enabled;
        new.database = self.database.clone();
        new.daemon = self.daemon.clone();
        let level = new.logging.level;
        new.logging = self.logging.clone();
        new.logging.level = level;
        // Which plotters exist, and how each is reached, are fixed at start-up (one device
        // task each); the rest of each plotter's settings follow the file.
        if plotter_names(&self.devices) == plotter_names(&new.devices) {
            for (old, d) in self.devices.iter().zip(&mut new.devices) {
                d.kind = old.kind;
                d.port.clone_from(&old.port);
                d.nickname.clone_from(&old.nickname);
                d.serial.clone_from(&old.serial);
                d.baud_rate = old.baud_rate;
            }
        } else {
            new.devices.clone_from(&self.devices);
            new.device_motion.clone_from(&self.device_motion);
        }
        if let Some(first) = new.devices.first() {
            new.device = first.clone();
        }
        new
    }

    /// The settings a job asking `req` is prepared with: those of the first plotter that meets
    /// it (its model's travel, its speeds), so that a job for an A3 plotter is not clipped to
    /// an A4's travel. `None`: it asks nothing, or no named plotter meets it (the first
    /// plotter's settings, `self`, apply).
    pub fn for_requirements(&self, req: &crate::devices::registry::Requirements) -> Option<Self> {
        if req.is_empty() {
            return None;
        }
        let name = self.devices.iter().find_map(|d| {
            let name = d.name.as_deref()?;
            crate::devices::registry::Profile::of(name, d)
                .meets(req)
                .then_some(name)
        })?;
        self.for_device(name)
    }

    /// The settings as the plotter `name` sees them: its own `device` settings and motion
    /// limits in place of the first plotter's (`None`: no plotter has that name).
    pub fn for_device(&self, name: &str) -> Option<Self> {
        let i = self
            .devices
            .iter()
            .position(|d| d.name.as_deref() == Some(name))?;
        let mut out = self.clone();
        out.device = self.devices[i].clone();
        if let Some(m) = self.device_motion.get(i) {
            out.motion = *m;
        }
        Some(out)
    }

    /// Settings that changed in `new` but only take effect after a restart (the daemon keeps the
    /// old values for these on a reload).
    pub fn restart_needed(&self, new: &Self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.workspace != new.workspace {
            out.push("workspace");
        }
        if (
            self.websocket.host.as_str(),
            self.websocket.port,
            self.websocket.enabled,
        ) != (
            new.websocket.host.as_str(),
            new.websocket.port,
            new.websocket.enabled,
        ) {
            out.push("websocket.host/port/enabled");
        }
        if self.database != new.database {
            out.push("database");
        }
        if self.daemon != new.daemon {
            out.push("daemon.name");
        }
        if (
            &self.logging.file,
            self.logging.format,
            self.logging.audit,
            self.logging.security_events,
        ) != (
            &new.logging.file,
            new.logging.format,
            new.logging.audit,
            new.logging.security_events,
        ) || (self.logging.max_size, self.logging.backup_count)
            != (new.logging.max_size, new.logging.backup_count)
        {
            out.push("logging (except level)");
        }
        let reached = |d: &DeviceSettings| {
            (
                d.name.clone(),
                d.kind,
                d.port.clone(),
                d.nickname.clone(),
                d.serial.clone(),
                d.baud_rate,
            )
        };
        if self
            .devices
            .iter()
            .map(reached)
            .ne(new.devices.iter().map(reached))
        {
            out.push("device.type/port/nickname/serial/baud_rate (and the list of devices)");
        }
        out
    }
}

/// The names of `devices`, in order (which plotters there are).
fn plotter_names(devices: &[DeviceSettings]) -> Vec<Option<&str>> {
    devices.iter().map(|d| d.name.as_deref()).collect()
}

impl From<&crate::cli::DaemonArgs> for Overrides {
    fn from(a: &crate::cli::DaemonArgs) -> Self {
        Self {
            config: a.config.clone(),
            workspace: a.workspace.clone(),
            host: a.host.clone(),
            port: a.port,
            log_level: a.log_level,
        }
    }
}

impl From<&crate::cli::ConfigArgs> for Overrides {
    fn from(a: &crate::cli::ConfigArgs) -> Self {
        Self {
            config: a.config.clone(),
            workspace: a.workspace.clone(),
            ..Self::default()
        }
    }
}

impl From<&crate::cli::ConfigShowArgs> for Overrides {
    fn from(a: &crate::cli::ConfigShowArgs) -> Self {
        Self {
            host: a.host.clone(),
            port: a.port,
            log_level: a.log_level,
            ..Self::from(&a.config)
        }
    }
}

impl Environment {
    /// Reads `PLOTTY_CONFIG`, `PLOTTY_API_KEY`, `PLOTTY_WORKSPACE` and the working directory.
    pub fn capture() -> Self {
        Self {
            config: std::env::var_os("PLOTTY_CONFIG"),
            api_key: std::env::var_os("PLOTTY_API_KEY"),
            workspace: std::env::var_os("PLOTTY_WORKSPACE"),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        }
    }
}

impl Defaults {
    /// The XDG locations of this user (`None` entries when there is no home directory).
    pub fn from_system() -> Self {
        let project = directories::ProjectDirs::from("", "", "plotty");
        Self {
            config_file: project.as_ref().map(|p| p.config_dir().join("config.yaml")),
            workspace: project.as_ref().map(|p| p.data_dir().join("workspace")),
            home: directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf()),
        }
    }
}

impl Sources {
    /// The sources of this process: `overrides` plus the environment and the XDG defaults.
    pub fn system(overrides: Overrides) -> Self {
        Self {
            overrides,
            env: Environment::capture(),
            defaults: Defaults::from_system(),
        }
    }
}

impl ApiKey {
    /// A key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for comparing with what a client sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CommandLine => "--config",
            Self::Environment => "PLOTTY_CONFIG",
            Self::Default => "the default location",
        })
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.location) {
            (Some(file), Some(p)) => write!(f, "{}:{}:{}: ", file.display(), p.line, p.column)?,
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            (None, _) => {}
        }
        write!(f, "{}: {}", self.key, self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, " (fix: {fix})")?;
        }
        Ok(())
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.location {
            write!(f, "line {}: ", p.line)?;
        }
        write!(f, "{}: {}", self.key, self.message)
    }
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [one] => write!(f, "invalid configuration: {one}"),
            many => {
                write!(f, "invalid configuration, {} problems:", many.len())?;
                for p in many {
                    write!(f, "\n  {p}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobState;

    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                dir: tempfile::tempdir().unwrap(),
            }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        fn sources(&self) -> Sources {
            Sources {
                overrides: Overrides::default(),
                env: Environment {
                    cwd: self.path("cwd"),
                    ..Environment::default()
                },
                defaults: Defaults {
                    config_file: Some(self.path("xdg-config/plotty/config.yaml")),
                    workspace: Some(self.path("xdg-data/plotty/workspace")),
                    home: Some(self.path("home")),
                },
            }
        }

        /// Writes `text` as the config file named on the command line and loads it.
        fn load(&self, text: &str) -> Result<Settings, ConfigError> {
            let file = self.path("config.yaml");
            std::fs::write(&file, text).unwrap();
            let mut s = self.sources();
            s.overrides.config = Some(file);
            load(&s)
        }

        fn problems(&self, text: &str) -> Vec<Problem> {
            match self.load(text) {
                Err(ConfigError::Invalid(p)) => p,
                other => panic!("expected problems, got {other:?}"),
            }
        }
    }

    fn line_of(p: &Problem) -> usize {
        p.location.map(|l| l.line).unwrap_or(0)
    }

    #[test]
    fn missing_default_file_means_defaults() {
        let f = Fixture::new();
        let s = load(&f.sources()).unwrap();
        assert!(!s.config.found);
        assert_eq!(s.workspace, f.path("xdg-data/plotty/workspace"));
        assert_eq!(
            (s.websocket.host.as_str(), s.websocket.port),
            ("localhost", 8766)
        );
        assert!(s.websocket.enabled && !s.websocket.authenticate);
        assert_eq!(s.websocket.max_connections, 100);
        assert_eq!(s.websocket.heartbeat_interval, Duration::from_secs(30));
        assert_eq!(s.websocket.message_rate_limit, 100);
        assert_eq!(s.websocket.max_upload_size, 100 << 20);
        assert_eq!(s.websocket.allowed_origins, OriginPolicy::SameHost);
        assert!(s.websocket.allowed_hosts.is_empty());
        assert_eq!(s.websocket.max_http_connections, 256);
        assert_eq!(s.websocket.header_timeout, Duration::from_secs(10));
        assert_eq!(s.database.path, s.workspace.join("plotty.db"));
        assert_eq!((s.database.pool_size, s.database.max_overflow), (10, 20));
        assert_eq!(s.device.kind, DeviceKind::Auto);
        assert_eq!(
            (s.device.baud_rate, s.device.timeout),
            (9600, Duration::from_secs(30))
        );
        assert_eq!(s.device.axidraw, AxiDrawSettings::default());
        assert_eq!(s.logging.file, s.workspace.join("logs/plotty.log"));
        assert_eq!((s.logging.max_size, s.logging.backup_count), (10 << 20, 5));
        assert_eq!(s.logging.level, LogLevel::Info);
        assert_eq!(s.paper.size.name, "A4");
        assert!(s.hooks.is_empty() && s.pens.is_empty());
        assert!((s.motion.pen_down_speed_mm_s - 50.2).abs() < 0.05);
    }

    /// Issue 10: `limits` sets the import limits; out-of-range values name the key.
    #[test]
    fn limits_section() {
        let f = Fixture::new();
        let d = load(&f.sources()).unwrap().limits;
        assert_eq!(d.max_segments, crate::import::DEFAULT_MAX_SEGMENTS);
        assert_eq!(d.max_file_bytes, 100 << 20);
        let s = f
            .load("limits:\n  max_segments: 2000\n  max_file_mb: 0.5\n")
            .unwrap();
        assert_eq!(s.limits.max_segments, 2000);
        assert_eq!(s.limits.max_file_bytes, 512 << 10);
        let p = f.problems("limits:\n  max_segments: 0\n  max_file_mb: -1\n");
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["limits.max_segments", "limits.max_file_mb"], "{p:?}");
        assert_eq!((line_of(&p[0]), line_of(&p[1])), (2, 3));
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let f = Fixture::new();
        let mut s = f.sources();
        s.overrides.config = Some(f.path("nope.yaml"));
        let e = load(&s).unwrap_err();
        assert!(matches!(
            e,
            ConfigError::Missing {
                origin: Origin::CommandLine,
                ..
            }
        ));
        assert!(e.to_string().contains("nope.yaml") && e.to_string().contains("--config"));
        let mut s = f.sources();
        s.env.config = Some(f.path("nope.yaml").into());
        let e = load(&s).unwrap_err();
        assert!(e.to_string().contains("PLOTTY_CONFIG"), "{e}");
    }

    #[test]
    fn precedence_is_cli_then_env_then_file_then_defaults() {
        let f = Fixture::new();
        let file = f.path("config.yaml");
        std::fs::write(
            &file,
            "workspace: ws-from-file\nwebsocket:\n  host: 0.0.0.0\n  port: 9000\n  api_key: from-file-0123456789\nlogging:\n  level: error\n",
        )
        .unwrap();
        let other = f.path("other.yaml");
        std::fs::write(&other, "websocket:\n  port: 7000\n").unwrap();

        let mut s = f.sources();
        s.env.config = Some(other.clone().into());
        assert_eq!(
            load(&s).unwrap().websocket.port,
            7000,
            "PLOTTY_CONFIG names the file"
        );
        s.overrides.config = Some(file.clone());
        let from_file = load(&s).unwrap();
        assert_eq!(
            from_file.websocket.port, 9000,
            "--config beats PLOTTY_CONFIG"
        );
        assert_eq!(
            from_file.workspace,
            f.dir.path().join("ws-from-file"),
            "relative to the file"
        );
        assert_eq!(
            from_file.websocket.api_key.as_ref().unwrap().expose(),
            "from-file-0123456789"
        );
        assert_eq!(from_file.logging.level, LogLevel::Error);

        s.env.workspace = Some("ws-from-env".into());
        s.env.api_key = Some("from-env".into());
        let from_env = load(&s).unwrap();
        assert_eq!(from_env.workspace, f.path("cwd/ws-from-env"));
        assert_eq!(
            from_env.websocket.api_key.as_ref().unwrap().expose(),
            "from-env"
        );

        s.overrides.workspace = Some(PathBuf::from("~/ws-from-cli"));
        s.overrides.host = Some("127.0.0.1".into());
        s.overrides.port = Some(0);
        s.overrides.log_level = Some(LogLevel::Debug);
        let from_cli = load(&s).unwrap();
        assert_eq!(from_cli.workspace, f.path("home/ws-from-cli"));
        assert_eq!(
            (from_cli.websocket.host.as_str(), from_cli.websocket.port),
            ("127.0.0.1", 0)
        );
        assert_eq!(from_cli.logging.level, LogLevel::Debug);
        assert_eq!(from_cli.database.path, f.path("home/ws-from-cli/plotty.db"));
    }

    #[test]
    fn unknown_keys_name_file_line_and_key_with_a_suggestion() {
        let f = Fixture::new();
        let p = f.problems("websocket:\n  host: localhost\n  authentication: true\n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].key, "websocket.authentication");
        assert_eq!(line_of(&p[0]), 3);
        let shown = p[0].to_string();
        assert!(
            shown.starts_with(&format!(
                "{}:3:3: websocket.authentication: unknown key",
                f.path("config.yaml").display()
            )),
            "{shown}"
        );
        assert!(shown.contains("did you mean `authenticate`?"), "{shown}");

        let p = f.problems("websocket: {}\nwebsockets:\n  port: 1\n");
        assert_eq!((p[0].key.as_str(), line_of(&p[0])), ("websockets", 2));
        assert!(p[0].fix.as_deref().unwrap().contains("`websocket`"));
        let p = f.problems("hooks:\n  QUEUED:\n    - comand: echo\n");
        assert_eq!(
            (p[0].key.as_str(), line_of(&p[0])),
            ("hooks.QUEUED[0].comand", 3)
        );
        let p = f.problems("device:\n  type: plotter\n");
        assert_eq!((p[0].key.as_str(), line_of(&p[0])), ("device.type", 2));
        assert!(p[0].fix.as_deref().unwrap().contains("axidraw"));
    }

    #[test]
    fn bad_values_are_all_reported_with_their_lines() {
        let f = Fixture::new();
        let p = f.problems("websocket:\n  port: 99999\n");
        assert_eq!((p[0].key.as_str(), line_of(&p[0])), ("websocket.port", 2));
        let p = f.problems(
            "websocket:\n  authenticate: true\n  max_connections: 0\ndevice:\n  model: 9\n  speed_pendown: 500\n  timeout: -1\nlogging:\n  max_size: 10XB\n",
        );
        // A value of the wrong type no longer stops the parse (issue 12 item 6): the other
        // five problems are still found.
        assert_eq!(p.len(), 6, "{p:?}");
        assert_eq!((p[5].key.as_str(), line_of(&p[5])), ("logging.max_size", 9));
        assert!(p[5].message.contains("10XB"), "{}", p[5].message);
        let p = f.problems(
            "websocket:\n  authenticate: true\n  max_connections: 0\ndevice:\n  model: 9\n  speed_pendown: 500\n  timeout: -1\n",
        );
        let found: Vec<(&str, usize)> = p.iter().map(|p| (p.key.as_str(), line_of(p))).collect();
        assert_eq!(
            found,
            [
                ("websocket.authenticate", 2),
                ("websocket.max_connections", 3),
                ("device.model", 5),
                ("device.speed_pendown", 6),
                ("device.timeout", 7),
            ]
        );
        assert!(p[0].fix.as_deref().unwrap().contains("PLOTTY_API_KEY"));
        let all = ConfigError::Invalid(p).to_string();
        assert!(
            all.starts_with("invalid configuration, 5 problems:"),
            "{all}"
        );
    }

    /// Issue 12 item 6: two misspelt keys and a bad value are three problems, not one (serde
    /// stops at the first unknown key).
    #[test]
    fn issue_12_every_unknown_key_and_bad_value_is_reported() {
        let f = Fixture::new();
        let p = f.problems("websocket:\n  prot: 9000\n  max_connections: 0\ndevice:\n  modle: 2\n");
        let found: Vec<(&str, usize)> = p.iter().map(|p| (p.key.as_str(), line_of(p))).collect();
        assert_eq!(
            found,
            [
                ("websocket.prot", 2),
                ("websocket.max_connections", 3),
                ("device.modle", 5)
            ]
        );
        assert!(
            p[0].fix
                .as_deref()
                .unwrap()
                .starts_with("did you mean `port`?")
        );
        assert!(
            p[2].fix
                .as_deref()
                .unwrap()
                .starts_with("did you mean `model`?")
        );
        let all = ConfigError::Invalid(p).to_string();
        assert!(
            all.starts_with("invalid configuration, 3 problems:"),
            "{all}"
        );

        // Values of the wrong type, unknown values and keys inside list items too; a hook whose
        // only key is misspelt is reported once (not again as "has no action").
        let p = f.problems(
            "logging:\n  max_size: 10XB\n  levle: debug\nhooks:\n  FAILED:\n    - comand: echo\ndevice:\n  type: plotter\n  speed_pendown: 500\n",
        );
        let found: Vec<(&str, usize)> = p.iter().map(|p| (p.key.as_str(), line_of(p))).collect();
        assert_eq!(
            found,
            [
                ("logging.max_size", 2),
                ("logging.levle", 3),
                ("hooks.FAILED[0].comand", 6),
                ("device.type", 8),
                ("device.speed_pendown", 9),
            ],
            "{p:#?}"
        );
        assert!(
            p[1].fix
                .as_deref()
                .unwrap()
                .starts_with("did you mean `level`?")
        );
    }

    #[test]
    fn authenticate_is_satisfied_by_the_environment_key() {
        let f = Fixture::new();
        let file = f.path("config.yaml");
        std::fs::write(&file, "websocket:\n  authenticate: true\n").unwrap();
        let mut s = f.sources();
        s.overrides.config = Some(file);
        s.env.api_key = Some("0123456789abcdef0123".into());
        let loaded = load(&s).unwrap();
        assert!(loaded.websocket.authenticate);
        assert!(format!("{:?}", loaded.websocket).contains("<redacted>"));
        s.env.api_key = Some("".into());
        let Err(ConfigError::Invalid(p)) = load(&s) else {
            panic!()
        };
        assert_eq!(p[0].key, "PLOTTY_API_KEY");
        assert!(p[0].file.is_none() && p[0].location.is_none());
    }

    #[test]
    fn hook_problems_point_at_the_action() {
        let f = Fixture::new();
        let p = f.problems(
            "hooks:\n  COMPLETED:\n    - command: [notify-send, \"{job_name}\"]\n    - command: [echo, \"{job_data}\"]\n  RUNNING:\n    - command: echo\n  FAILED:\n    - webhook: https://hooks.example.org/x\n    - command: x\n      script: /bin/true\n    - command: echo \"{error}\"\n    - command: [\"{job_path}/run\"]\n",
        );
        let found: Vec<(&str, usize)> = p.iter().map(|p| (p.key.as_str(), line_of(p))).collect();
        assert_eq!(
            found,
            [
                ("hooks.COMPLETED[1].command", 4),
                ("hooks.RUNNING", 5),
                ("hooks.FAILED[0].webhook", 8),
                ("hooks.FAILED[1]", 9),
                ("hooks.FAILED[2].command", 11),
                ("hooks.FAILED[3].command", 12),
            ]
            .as_slice(),
            "{p:#?}"
        );
        assert!(
            p[0].message.contains("unknown variable `{job_data}`"),
            "{}",
            p[0].message
        );
        assert!(p[1].fix.as_deref().unwrap().contains("PLOTTING"));
        assert!(p[2].message.contains("relay"));
        assert!(
            p[4].fix
                .as_deref()
                .unwrap()
                .contains("echo \"$PLOTTY_ERROR\"")
        );
        assert!(p[5].message.contains("placeholder"), "{}", p[5].message);
        let p = f.problems("hooks:\n  FAILED:\n    - command: {a: b}\n");
        assert_eq!(
            (p[0].key.as_str(), line_of(&p[0])),
            ("hooks.FAILED[0].command", 3)
        );
        assert!(
            p[0].message.contains("a list of strings"),
            "{}",
            p[0].message
        );
        let ok = f
            .load("hooks:\n  completed:\n    - command: [echo, \"{job_id}\"]\n      timeout: 5\n    - command: echo \"$PLOTTY_JOB_ID\"\n")
            .unwrap();
        let hooks = ok.hooks.for_state(JobState::Completed);
        assert_eq!(hooks[0].timeout, Duration::from_secs(5));
        assert_eq!(hooks[0].target(), r#"["echo", "{job_id}"]"#);
        assert_eq!(hooks[1].target(), "echo \"$PLOTTY_JOB_ID\"");
    }

    #[test]
    fn a_shell_string_with_a_placeholder_is_refused_with_both_rewrites() {
        let f = Fixture::new();
        // The old forms the injection report used, and a plain call.
        let text = "hooks:\n  COMPLETED:\n    - command: notify-send \"Plot done\" {job_name}\n    - command: echo ${job_name}\n    - command: |\n        cat <<EOF >> /tmp/plotty.log\n        {job_id} {job_name}\n        EOF\n";
        let p = f.problems(text);
        let keys: Vec<_> = p.iter().map(|p| (p.key.as_str(), line_of(p))).collect();
        assert_eq!(
            keys,
            [
                ("hooks.COMPLETED[0].command", 3),
                ("hooks.COMPLETED[1].command", 4),
                ("hooks.COMPLETED[2].command", 5),
            ]
        );
        for p in &p {
            assert!(
                p.message.contains("`{job_name}` in a shell string"),
                "{}",
                p.message
            );
        }
        let fix = |i: usize| p[i].fix.clone().unwrap();
        assert!(
            fix(0).contains("    command: 'notify-send \"Plot done\" \"$PLOTTY_JOB_NAME\"'"),
            "{}",
            fix(0)
        );
        assert!(
            fix(0).contains(r#"    command: ["notify-send", "Plot done", "{job_name}"]"#),
            "{}",
            fix(0)
        );
        assert!(
            fix(1).contains("    command: 'echo \"$PLOTTY_JOB_NAME\"'"),
            "{}",
            fix(1)
        );
        assert!(
            fix(1).contains(r#"    command: ["echo", "{job_name}"]"#),
            "{}",
            fix(1)
        );
        assert!(
            !fix(2).contains("      {job_id} {job_name}")
                && fix(2).contains("      $PLOTTY_JOB_ID $PLOTTY_JOB_NAME\n      EOF"),
            "{}",
            fix(2)
        );
        assert!(fix(2).contains("uses shell syntax"), "{}", fix(2));

        // `plotty check config` reports the same problem with its fix.
        let file = f.path("config.yaml");
        let mut sources = f.sources();
        sources.overrides.config = Some(file);
        let (report, settings) = check::check(&sources);
        assert!(settings.is_none());
        let mut shown = Vec::new();
        report.write_to(&mut shown).unwrap();
        let shown = String::from_utf8(shown).unwrap();
        assert!(
            shown.contains("hooks.COMPLETED[1].command") && shown.contains("\"$PLOTTY_JOB_NAME\""),
            "{shown}"
        );
    }

    #[test]
    fn the_contrib_example_config_gives_exactly_the_defaults() {
        let f = Fixture::new();
        let example = f
            .load(include_str!("../../../contrib/config/config.example.yaml"))
            .unwrap();
        let defaults = load(&f.sources()).unwrap();
        assert!(example.notes.is_empty(), "{:?}", example.notes);
        // Everything but where the settings came from.
        assert_eq!(
            Settings {
                config: defaults.config.clone(),
                ..example
            },
            defaults
        );
    }

    #[test]
    fn the_contrib_hook_examples_load() {
        let f = Fixture::new();
        let s = f
            .load(include_str!("../../../contrib/config/hooks.example.yaml"))
            .unwrap();
        assert_eq!(s.hooks.for_state(JobState::Completed).len(), 2);
        assert_eq!(s.hooks.for_state(JobState::Failed).len(), 2);
    }

    #[test]
    fn units_and_spellings() {
        let f = Fixture::new();
        let s = f
            .load("logging:\n  max_size: 50MB\n  format: \"%(asctime)s - %(message)s\"\n  level: WARNING\ndevice:\n  firmware: 2.8\n  resolution: low\n  type: simulator\n  port: /dev/ttyACM0\nwebsocket:\n  allowed_origins: [\"https://studio.example.org/\", \"http://LOCALHOST:3000\"]\n")
            .unwrap();
        assert_eq!(s.logging.max_size, 50 << 20);
        assert_eq!(s.logging.level, LogLevel::Warning);
        assert_eq!(s.device.firmware, FirmwareChoice::V2_8);
        assert_eq!(
            s.websocket.allowed_origins,
            OriginPolicy::List(vec![
                "https://studio.example.org".into(),
                "http://localhost:3000".into()
            ])
        );
        let keys: Vec<_> = s.notes.iter().map(|n| n.key.as_str()).collect();
        assert_eq!(keys, ["logging.format", "device.port"], "in file order");
        assert_eq!(s.notes[0].location.unwrap().line, 3);
        let any = f.load("websocket:\n  allowed_origins: \"*\"\n").unwrap();
        assert_eq!(any.websocket.allowed_origins, OriginPolicy::Any);
        let p = f.problems("websocket:\n  allowed_origins: [studio.example.org]\n");
        assert_eq!(p[0].key, "websocket.allowed_origins[0]");
    }

    /// Issue 15: `devices` lists several plotters, each a `device` section with a name and
    /// tags; `device` alone stays a farm of one.
    #[test]
    fn issue_15_devices_list_several_plotters_each_with_its_own_settings() {
        let f = Fixture::new();
        let s = f
            .load(
                "devices:\n  - name: left\n    type: sim\n    model: 2\n    tags: [a3, black]\n\
                 \x20 - name: right\n    type: axidraw\n    port: /dev/ttyACM1\n    tags: red\n\
                 \x20   speed_pendown: 50\n",
            )
            .unwrap();
        let names: Vec<_> = s.devices.iter().map(|d| d.name.as_deref()).collect();
        assert_eq!(names, [Some("left"), Some("right")]);
        assert_eq!(s.device, s.devices[0]);
        assert_eq!(s.devices[0].tags, ["a3", "black"]);
        assert_eq!(s.devices[1].tags, ["red"]);
        assert_eq!(s.devices[1].port.as_deref(), Some("/dev/ttyACM1"));
        let right = s.for_device("right").unwrap();
        assert_eq!(right.device.axidraw.speed_pendown, 50.0);
        assert_eq!(
            right.device.axidraw.model,
            plotty_motion::kinematics::Model::A4
        );
        assert!(
            right.motion.pen_down_speed_mm_s > s.motion.pen_down_speed_mm_s,
            "each plotter plans with its own speeds"
        );
        assert_eq!(
            s.for_device("left").unwrap().device.axidraw.model.number(),
            2
        );
        assert!(s.for_device("nobody").is_none());
        // The manual's single section: one unnamed plotter (known by its device id), or named.
        let one = f.load("device:\n  type: sim\n").unwrap();
        assert_eq!(one.devices.len(), 1);
        assert_eq!(one.devices[0].name, None);
        let named = f.load("device:\n  name: solo\n  tags: [a4]\n").unwrap();
        assert_eq!(named.devices[0].name.as_deref(), Some("solo"));
    }

    #[test]
    fn issue_15_devices_problems_name_the_entry() {
        let f = Fixture::new();
        let keys = |text: &str| -> Vec<(String, String)> {
            f.problems(text)
                .into_iter()
                .map(|p| (p.key, p.message))
                .collect()
        };
        let both = keys("device:\n  type: sim\ndevices:\n  - name: a\n    type: sim\n");
        assert_eq!(both[0].0, "devices");
        assert!(both[0].1.contains("both"), "{both:?}");
        let dup = keys("devices:\n  - name: a\n    type: sim\n  - name: A\n    type: sim\n");
        assert_eq!(dup[0].0, "devices[1].name");
        assert!(dup[0].1.contains("devices[0]"), "{dup:?}");
        let port = keys(
            "devices:\n  - name: a\n    type: axidraw\n    port: /dev/x\n\
             \x20 - name: b\n    port: /dev/x\n",
        );
        assert_eq!(port[0].0, "devices[1].port");
        let search = keys("devices:\n  - name: a\n    type: axidraw\n  - name: b\n");
        assert_eq!(
            search[0].0, "devices[1].port",
            "two searches take one board"
        );
        // Boards chosen by identity are no search for the first AxiDraw, but one identity
        // cannot stand for two plotters.
        let by_name = f.load(
            "devices:\n  - name: a\n    type: axidraw\n    nickname: left\n\
             \x20 - name: b\n    type: axidraw\n    nickname: right\n",
        );
        assert!(by_name.is_ok(), "two nicknames are two boards: {by_name:?}");
        let same = keys(
            "devices:\n  - name: a\n    type: axidraw\n    nickname: left\n\
             \x20 - name: b\n    type: axidraw\n    nickname: left\n",
        );
        assert_eq!(same[0].0, "devices[1].nickname", "{same:?}");
        assert!(same[0].1.contains("devices[0]"), "{same:?}");
        let bad = keys("devices:\n  - name: a\n    type: axidraw\n    nickname: \"a b\"\n");
        assert_eq!(bad[0].0, "devices[0].nickname", "{bad:?}");
        let tags = keys("devices:\n  - name: a\n    type: sim\n    tags: [ok, \"not ok\", ok]\n");
        let tag_keys: Vec<_> = tags.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(tag_keys, ["devices[0].tags[1]", "devices[0].tags[2]"]);
        let unnamed = keys("devices:\n  - type: sim\n");
        assert_eq!(unnamed[0].0, "devices[0].name");
        let bad_name = keys("devices:\n  - name: \"a/b\"\n    type: sim\n");
        assert_eq!(bad_name[0].0, "devices[0].name");
        let empty = keys("devices: []\n");
        assert_eq!(empty[0].0, "devices");
        let range = f.problems("devices:\n  - name: a\n    type: sim\n    model: 9\n");
        assert_eq!(
            (range[0].key.as_str(), line_of(&range[0])),
            ("devices[0].model", 4)
        );
    }

    /// Issue 12 item 6: `device.type` takes every spelling `--device` takes (one parser).
    #[test]
    fn issue_12_device_type_takes_the_spellings_of_the_command_line() {
        use crate::devices::discover::DeviceRequest;
        let f = Fixture::new();
        for (word, kind) in [
            ("sim", DeviceKind::Simulator),
            ("simulator", DeviceKind::Simulator),
            ("SIM", DeviceKind::Simulator),
            ("Simulator", DeviceKind::Simulator),
            ("auto", DeviceKind::Auto),
            ("AUTO", DeviceKind::Auto),
            ("axidraw", DeviceKind::Axidraw),
            ("AxiDraw", DeviceKind::Axidraw),
        ] {
            let s = f.load(&format!("device:\n  type: {word}\n")).unwrap();
            assert_eq!(s.device.kind, kind, "{word}");
            // The command line reads the word the same way (anything else is a port).
            let request = DeviceRequest::parse(Some(word));
            let expected = match kind {
                DeviceKind::Auto => DeviceRequest::Auto,
                DeviceKind::Axidraw => DeviceRequest::Axidraw,
                DeviceKind::Simulator => DeviceRequest::Simulator,
            };
            assert_eq!(request, expected, "{word}");
        }
        let p = f.problems("device:\n  type: simulatr\n");
        assert_eq!((p[0].key.as_str(), line_of(&p[0])), ("device.type", 2));
        assert!(
            p[0].fix.as_deref().unwrap().contains("sim"),
            "{:?}",
            p[0].fix
        );
    }

    #[test]
    fn a_board_is_chosen_by_nickname_or_usb_serial_checked_as_the_board_stores_it() {
        let f = Fixture::new();
        let s = f
            .load("device:\n  type: axidraw\n  nickname: left\n  serial: \"0042\"\n")
            .unwrap();
        assert_eq!(s.device.nickname.as_deref(), Some("left"));
        assert_eq!(s.device.serial.as_deref(), Some("0042"));
        let p = f.problems("device:\n  nickname: a name with spaces\n");
        assert_eq!((p[0].key.as_str(), line_of(&p[0])), ("device.nickname", 2));
        let p = f.problems("device:\n  nickname: seventeen-chars-x\n");
        assert!(p[0].message.contains("at most 16"), "{}", p[0].message);
        // Two ways of choosing the board could disagree: one only.
        let p = f.problems("device:\n  port: /dev/ttyACM0\n\n  serial: S1\n");
        assert_eq!((p[0].key.as_str(), line_of(&p[0])), ("device.serial", 4));
        assert!(p[0].message.contains("the port"), "{}", p[0].message);
        // A change needs a restart, like the port.
        let mut other = s.clone();
        other.devices[0].nickname = Some("right".into());
        assert_eq!(
            s.restart_needed(&other),
            ["device.type/port/nickname/serial/baud_rate (and the list of devices)"]
        );
    }

    #[test]
    fn allowed_hosts_and_connection_limits() {
        let f = Fixture::new();
        let s = f
            .load("websocket:\n  allowed_hosts: [Plotter.Local., \"[fe80::1]\", 192.168.1.20]\n  max_http_connections: 8\n  header_timeout: 0.5\n")
            .unwrap();
        assert_eq!(
            s.websocket.allowed_hosts,
            ["plotter.local", "fe80::1", "192.168.1.20"]
        );
        assert_eq!(s.websocket.max_http_connections, 8);
        assert_eq!(s.websocket.header_timeout, Duration::from_millis(500));
        let p = f.problems("websocket:\n  allowed_hosts: [\"http://plotter.local\", \"plotter.local:8766\"]\n  max_http_connections: 1\n  header_timeout: 0\n");
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "websocket.allowed_hosts[0]",
                "websocket.allowed_hosts[1]",
                "websocket.max_http_connections",
                "websocket.header_timeout"
            ]
        );
        assert!(
            p[0].fix
                .as_deref()
                .unwrap()
                .contains("without scheme, port or path")
        );
        let any = f.load("websocket:\n  allowed_hosts: \"*\"\n").unwrap();
        assert_eq!(any.websocket.allowed_hosts, ["*"]);
        assert!(any.notes.iter().any(|n| n.key == "websocket.allowed_hosts"));
    }

    #[test]
    fn motion_section_presets_and_overrides() {
        let f = Fixture::new();
        let s = f.load("motion:\n  preset: comparison\n").unwrap();
        assert_eq!(s.motion, MotionLimits::COMPARISON);
        let s = f
            .load("motion:\n  preset: comparison\n  per_motor_limits: true\n  corner_deviation_mm: 0.05\n  pen_up_speed_mm_s: 250\n")
            .unwrap();
        assert!(s.motion.per_motor_limits);
        assert_eq!(
            s.motion.corner_rule,
            CornerRule::JunctionDeviation { deviation_mm: 0.05 }
        );
        assert_eq!(s.motion.pen_up_speed_mm_s, 250.0);
        let s = f.load("device:\n  speed_pendown: 50\n").unwrap();
        assert!(
            (s.motion.pen_down_speed_mm_s - 100.4).abs() < 0.1,
            "derived from the device"
        );
        let p = f.problems("motion:\n  pen_down_accel_mm_s2: 0\n  pen_lift_s: 20\n");
        let keys: Vec<_> = p.iter().map(|p| (p.key.as_str(), line_of(p))).collect();
        assert_eq!(
            keys,
            [("motion.pen_down_accel_mm_s2", 2), ("motion.pen_lift_s", 3)]
        );
    }

    #[test]
    fn percent_and_mm_s_keys_are_two_spellings_of_one_setting() {
        let f = Fixture::new();
        // Both spellings: one problem each, naming both keys, at the mm/s key's line.
        let p = f.problems(
            "device:\n  speed_pendown: 30\n  accel: 50\nmotion:\n  pen_down_speed_mm_s: 100\n  pen_up_accel_mm_s2: 900\n  pen_up_speed_mm_s: 200\n",
        );
        let found: Vec<(&str, usize)> = p.iter().map(|p| (p.key.as_str(), line_of(p))).collect();
        assert_eq!(
            found,
            [
                ("motion.pen_down_speed_mm_s", 5),
                ("motion.pen_up_accel_mm_s2", 6)
            ]
        );
        assert!(
            p[0].message.contains("`device.speed_pendown`") && p[0].message.contains("mm/s"),
            "{}",
            p[0].message
        );
        assert!(
            p[0].fix
                .as_deref()
                .unwrap()
                .contains("remove `device.speed_pendown` or `motion.pen_down_speed_mm_s`")
        );
        // One spelling each: the percent converts by the AxiDraw rule, even over a preset.
        let s = f
            .load("device:\n  speed_pendown: 50\nmotion:\n  preset: comparison\n  pen_up_speed_mm_s: 222\n")
            .unwrap();
        assert!(
            (s.motion.pen_down_speed_mm_s - 100.4).abs() < 0.1,
            "{}",
            s.motion.pen_down_speed_mm_s
        );
        assert_eq!(s.motion.pen_up_speed_mm_s, 222.0);
        assert_eq!(
            s.motion.pen_down_accel_mm_s2,
            MotionLimits::COMPARISON.pen_down_accel_mm_s2
        );
        let s = f.load("motion:\n  pen_down_speed_mm_s: 80\n").unwrap();
        assert_eq!(s.motion.pen_down_speed_mm_s, 80.0);
    }

    #[test]
    fn motion_limits_per_motor_takes_corners_by_motor_jump() {
        let f = Fixture::new();
        let s = f.load("").unwrap();
        assert_eq!(
            s.motion.limits,
            LimitModel::Xy,
            "the XY model is the default"
        );
        let s = f.load("motion:\n  limits: per_motor\n").unwrap();
        assert_eq!(s.motion.limits, LimitModel::PerMotor);
        assert_eq!(
            s.motion.corner_rule,
            CornerRule::MotorJump {
                max_jump_hz: DEFAULT_CORNER_JUMP_HZ
            }
        );
        let s = f
            .load("motion:\n  limits: per_motor\n  corner_jump_hz: 2500\n")
            .unwrap();
        assert_eq!(
            s.motion.corner_rule,
            CornerRule::MotorJump {
                max_jump_hz: 2500.0
            }
        );
        // An explicit rule wins; motor_jump works with XY limits too.
        let s = f
            .load("motion:\n  limits: per_motor\n  corner_rule: axidraw\n")
            .unwrap();
        assert!(matches!(s.motion.corner_rule, CornerRule::AxiDraw { .. }));
        let s = f.load("motion:\n  corner_rule: motor_jump\n").unwrap();
        assert_eq!(s.motion.limits, LimitModel::Xy);
        assert!(matches!(s.motion.corner_rule, CornerRule::MotorJump { .. }));
        let p = f.problems("motion:\n  corner_jump_hz: 0\n");
        assert_eq!(p[0].key, "motion.corner_jump_hz");
        assert!(f.problems("motion:\n  limits: motors\n").len() == 1);
    }

    #[test]
    fn empty_and_comment_only_files_are_defaults_and_syntax_errors_are_located() {
        let f = Fixture::new();
        assert!(f.load("").unwrap().config.found);
        assert!(f.load("# nothing yet\n").is_ok());
        let p = f.problems("websocket:\n  host: [unclosed\n");
        assert!(p[0].location.is_some(), "{p:?}");
        let p = f.problems("---\na: 1\n---\nb: 2\n");
        assert!(!p.is_empty());
    }

    #[test]
    fn database_and_log_paths_are_relative_to_the_workspace() {
        let f = Fixture::new();
        let s = f
            .load("workspace: /srv/plotty\ndatabase:\n  url: sqlite:///workspace/plotty.db\nlogging:\n  file: /var/log/plotty/plotty.log\n")
            .unwrap();
        assert_eq!(
            s.database.path,
            PathBuf::from("/srv/plotty/workspace/plotty.db")
        );
        assert_eq!(s.logging.file, PathBuf::from("/var/log/plotty/plotty.log"));
        assert_eq!(s.notes[0].key, "database.url");
        let p = f.problems("database:\n  url: mysql://db/plotty\n");
        assert_eq!((p[0].key.as_str(), line_of(&p[0])), ("database.url", 2));
    }

    #[test]
    fn a_postgresql_url_puts_the_job_store_on_postgresql_and_hides_its_password() {
        let f = Fixture::new();
        let s = f
            .load(
                "database:\n  url: postgresql://plotty:s3cret@db:5432/plotty\n  max_overflow: 5\n",
            )
            .unwrap();
        let url = s.database.postgres.clone().unwrap();
        assert_eq!(url.0, "postgresql://plotty:s3cret@db:5432/plotty");
        assert_eq!(url.shown(), "postgresql://plotty:***@db:5432/plotty");
        assert!(!format!("{s:?}").contains("s3cret"));
        assert!(
            s.notes.is_empty(),
            "max_overflow counts with PostgreSQL: {:?}",
            s.notes
        );
        let p = f.problems("database:\n  url: postgresql://db:notaport/plotty\n");
        assert_eq!((p[0].key.as_str(), line_of(&p[0])), ("database.url", 2));
        assert!(f.load("").unwrap().database.postgres.is_none());
    }

    #[test]
    fn a_farm_daemon_has_a_name_and_a_lease_duration() {
        let f = Fixture::new();
        let s = f.load("").unwrap();
        assert_eq!(
            s.daemon.name,
            validate::host_name(),
            "the host name by default"
        );
        assert_eq!(s.database.lease_ttl, Duration::from_secs(30));
        let s = f
            .load("database:\n  url: postgresql://db/plotty\n  lease_ttl: 4\ndaemon:\n  name: ' left '\n")
            .unwrap();
        assert_eq!(
            (s.daemon.name.as_str(), s.database.lease_ttl),
            ("left", Duration::from_secs(4))
        );
        assert!(s.notes.is_empty(), "{:?}", s.notes);
        let s = f.load("database:\n  lease_ttl: 4\n").unwrap();
        assert_eq!(s.notes[0].key, "database.lease_ttl", "no leases on SQLite");
        let p = f.problems("daemon:\n  name: ''\n");
        assert_eq!((p[0].key.as_str(), line_of(&p[0])), ("daemon.name", 2));
        let p = f.problems("database:\n  lease_ttl: 0.5\n");
        assert_eq!(p[0].key, "database.lease_ttl");
        let p = f.problems("daemon:\n  nmae: x\n");
        assert_eq!(p[0].key, "daemon.nmae");
        // A new name only takes effect after a restart (it owns the daemon's leases).
        let old = f.load("").unwrap();
        let new = f.load("daemon:\n  name: right\n").unwrap();
        assert_eq!(old.restart_needed(&new), vec!["daemon.name"]);
        assert_eq!(old.merge_reload(new).daemon, old.daemon);
    }

    #[test]
    fn restart_needed_lists_what_a_reload_cannot_change() {
        let f = Fixture::new();
        let a = f.load("websocket:\n  port: 1000\n").unwrap();
        let b = f
            .load("websocket:\n  port: 1001\nlogging:\n  level: debug\n")
            .unwrap();
        assert_eq!(a.restart_needed(&b), ["websocket.host/port/enabled"]);
        assert!(a.restart_needed(&a).is_empty());
    }
}
