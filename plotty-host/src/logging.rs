//! Logging: `tracing` to stderr and to the log file, with size-based rotation, and an optional audit
//! log for security-relevant events.
//!
//! - The log file (`<workspace>/logs/plotty.log` by default) rotates when it passes
//!   `logging.max_size`, keeping `logging.backup_count` older files (`plotty.log.1` is the newest);
//!   a count of 0 never rotates. Writes go through a background thread
//!   (`tracing_appender::non_blocking`), so logging never blocks the runtime; keep the returned
//!   [`Logging`] alive, it flushes on drop.
//! - `text` or `json` lines. The level (`debug`, `info`, `warning`, `error`, `critical`) can change
//!   at run time ([`Logging::set_level`], used by a config reload).
//! - Events with target [`AUDIT`] (privilege changes, configuration reloads) and [`SECURITY`]
//!   (authentication failures, refused origins) also go to `audit.log` next to the main log when
//!   `logging.audit` / `logging.security_events` are on, whatever the level.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use file_rotate::compression::Compression;
use file_rotate::suffix::AppendCount;
use file_rotate::{ContentLimit, FileRotate};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use tracing::{Level, Metadata};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::Registry;

/// Target of audit events: `tracing::info!(target: "audit", …)`.
pub const AUDIT: &str = "audit";
/// Target of security events: `tracing::warn!(target: "security", …)`.
pub const SECURITY: &str = "security";
/// Target of the daemon's final error: written to the log file only, because `main` prints it on
/// stderr itself.
pub const EXIT: &str = "plotty::exit";
/// File name of the audit log, next to the main log file.
pub const AUDIT_FILE: &str = "audit.log";

/// Log level, as the manual names them. `critical` logs errors only, like `error`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Everything, including details for troubleshooting.
    Debug,
    /// Normal operation.
    #[default]
    Info,
    /// Problems the daemon works around.
    #[value(alias = "warn")]
    Warning,
    /// Failures.
    Error,
    /// Failures only (same as `error`; kept for the manual's level list).
    Critical,
}

/// Format of the log file.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Validated logging settings.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LogSettings {
    /// Level of stderr and the log file.
    pub level: LogLevel,
    /// The log file.
    pub file: PathBuf,
    /// Rotate when the file passes this many bytes.
    pub max_size: u64,
    /// Rotated files kept (0: never rotate).
    pub backup_count: u32,
    /// Line format of the file.
    pub format: LogFormat,
    /// Write audit events to `audit.log`.
    pub audit: bool,
    /// Write security events to `audit.log`.
    pub security_events: bool,
}

/// Logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The log file or its directory cannot be written.
    #[error(
        "cannot write the log file {path}: {source}; make its directory writable for the daemon's \
         user or set logging.file elsewhere"
    )]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another global subscriber was installed first.
    #[error("logging was already set up in this process")]
    AlreadySet,
}

/// The running logging set-up: flushes the files when dropped, changes the level at run time.
pub struct Logging {
    level: Arc<AtomicU8>,
    _guards: Vec<WorkerGuard>,
}

impl LogLevel {
    /// The most verbose `tracing` level this lets through.
    pub const fn max_level(self) -> Level {
        match self {
            Self::Debug => Level::DEBUG,
            Self::Info => Level::INFO,
            Self::Warning => Level::WARN,
            Self::Error | Self::Critical => Level::ERROR,
        }
    }

    /// The manual's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
        }
    }

    fn code(self) -> u8 {
        match self.max_level() {
            Level::ERROR => 1,
            Level::WARN => 2,
            Level::INFO => 3,
            Level::DEBUG => 4,
            Level::TRACE => 5,
        }
    }
}

impl<'de> Deserialize<'de> for LogLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.trim().to_ascii_lowercase().as_str() {
            "debug" => Ok(Self::Debug),
            "info" => Ok(Self::Info),
            "warning" | "warn" => Ok(Self::Warning),
            "error" => Ok(Self::Error),
            "critical" => Ok(Self::Critical),
            _ => Err(de::Error::custom(format!(
                "log level `{s}` is not one of debug, info, warning, error, critical"
            ))),
        }
    }
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Logging {
    /// Changes the level of stderr and the log file.
    pub fn set_level(&self, level: LogLevel) {
        self.level.store(level.code(), Ordering::Relaxed);
    }
}

/// Builds the subscriber for `settings` without installing it (tests use it with
/// `tracing::subscriber::with_default`). `stderr` adds a console layer.
pub fn build(
    settings: &LogSettings,
    stderr: bool,
) -> Result<(impl tracing::Subscriber + Send + Sync + 'static, Logging), LoggingError> {
    let level = Arc::new(AtomicU8::new(settings.level.code()));
    let mut guards = Vec::new();
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = Vec::new();

    let main = rotating_writer(&settings.file, settings)?;
    let (writer, guard) = tracing_appender::non_blocking(main);
    guards.push(guard);
    let file_layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false);
    let file_layer: Box<dyn Layer<Registry> + Send + Sync> = match settings.format {
        LogFormat::Text => Box::new(file_layer.with_filter(level_filter(&level, false))),
        LogFormat::Json => Box::new(file_layer.json().with_filter(level_filter(&level, false))),
    };
    layers.push(file_layer);

    if stderr {
        let console = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(level_filter(&level, true));
        layers.push(Box::new(console));
    }

    if settings.audit || settings.security_events {
        let path = audit_path(&settings.file);
        let (writer, guard) = tracing_appender::non_blocking(rotating_writer(&path, settings)?);
        guards.push(guard);
        let (audit, security) = (settings.audit, settings.security_events);
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(false)
            .with_target(true)
            .with_filter(filter_fn(move |m: &Metadata<'_>| {
                (audit && m.target() == AUDIT) || (security && m.target() == SECURITY)
            }));
        layers.push(Box::new(layer));
    }

    let subscriber = Registry::default().with(layers);
    Ok((
        subscriber,
        Logging {
            level,
            _guards: guards,
        },
    ))
}

/// Builds the subscriber and installs it for the whole process.
pub fn init(settings: &LogSettings, stderr: bool) -> Result<Logging, LoggingError> {
    let (subscriber, logging) = build(settings, stderr)?;
    tracing::subscriber::set_global_default(subscriber).map_err(|_| LoggingError::AlreadySet)?;
    Ok(logging)
}

/// `audit.log` next to the main log file.
pub fn audit_path(main: &Path) -> PathBuf {
    main.with_file_name(AUDIT_FILE)
}

fn level_filter(level: &Arc<AtomicU8>, console: bool) -> DynamicLevel {
    DynamicLevel {
        level: Arc::clone(level),
        console,
    }
}

/// A level filter that can change while running. It answers "sometimes" for every call site, so
/// that `tracing` asks again for each event instead of caching the first answer.
struct DynamicLevel {
    level: Arc<AtomicU8>,
    /// The console leaves out [`EXIT`] events.
    console: bool,
}

impl<S> tracing_subscriber::layer::Filter<S> for DynamicLevel {
    fn enabled(&self, m: &Metadata<'_>, _: &tracing_subscriber::layer::Context<'_, S>) -> bool {
        if self.console && m.target() == EXIT {
            return false;
        }
        let max = match self.level.load(Ordering::Relaxed) {
            1 => Level::ERROR,
            2 => Level::WARN,
            3 => Level::INFO,
            4 => Level::DEBUG,
            _ => Level::TRACE,
        };
        *m.level() <= max
    }

    fn callsite_enabled(&self, _: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
}

/// A writer that turns a panic of the writer inside into an I/O error.
///
/// `file-rotate` panics when it cannot recreate or list the log directory while rotating (someone
/// removed it, or made it unreadable). That would end the logging thread for good; this keeps it
/// alive, and the next write tries again.
struct NoPanic<W>(W);

impl<W: std::io::Write> std::io::Write for NoPanic<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.0.write(buf)))
            .unwrap_or_else(|_| Err(std::io::Error::other("the log file writer failed")))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.0.flush()))
            .unwrap_or_else(|_| Err(std::io::Error::other("the log file writer failed")))
    }
}

/// A size-rotated file, checked first so that problems are errors here and not panics inside
/// `file-rotate` (which asserts on a missing directory).
fn rotating_writer(
    path: &Path,
    settings: &LogSettings,
) -> Result<NoPanic<FileRotate<AppendCount>>, LoggingError> {
    let err = |source| LoggingError::File {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| err(std::io::Error::other("the path has no directory")))?;
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut options = OpenOptions::new();
    options.read(true).create(true).append(true).mode(0o640);
    options.open(path).map_err(err)?;
    let (limit, count) = if settings.backup_count == 0 {
        (ContentLimit::None, 1)
    } else {
        let max = usize::try_from(settings.max_size.max(1)).unwrap_or(usize::MAX);
        (
            ContentLimit::BytesSurpassed(max),
            settings.backup_count as usize,
        )
    };
    Ok(NoPanic(FileRotate::new(
        path,
        AppendCount::new(count),
        limit,
        Compression::None,
        Some(options),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> LogSettings {
        LogSettings {
            level: LogLevel::Info,
            file: dir.join("logs").join("plotty.log"),
            max_size: 300,
            backup_count: 2,
            format: LogFormat::Text,
            audit: true,
            security_events: false,
        }
    }

    #[test]
    fn rotates_by_size_and_keeps_backup_count_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let (subscriber, logging) = build(&s, false).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..40 {
                tracing::info!(i, "a line long enough to fill three hundred bytes quickly");
            }
        });
        drop(logging);
        let logs = dir.path().join("logs");
        let mut names: Vec<String> = std::fs::read_dir(&logs)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["audit.log", "plotty.log", "plotty.log.1", "plotty.log.2"]
        );
        for name in ["plotty.log.1", "plotty.log.2"] {
            let len = std::fs::metadata(logs.join(name)).unwrap().len();
            // BytesSurpassed: a file rotates at the first write that takes it past the limit.
            assert!(len > 300 && len < 600, "{name}: {len}");
        }
        let newest = std::fs::read_to_string(logs.join("plotty.log")).unwrap();
        assert!(newest.contains("i=39"), "{newest}");
    }

    #[test]
    fn level_filters_and_changes_at_run_time_audit_ignores_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        s.max_size = 1 << 20;
        s.format = LogFormat::Json;
        s.level = LogLevel::Warning;
        let (subscriber, logging) = build(&s, false).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("hidden at warning");
            tracing::warn!("shown at warning");
            tracing::info!(target: "audit", user = "nobody", "privileges dropped");
            tracing::warn!(target: "security", "not audited: security_events is off");
            logging.set_level(LogLevel::Debug);
            tracing::debug!("shown at debug");
        });
        drop(logging);
        let main = std::fs::read_to_string(&s.file).unwrap();
        assert!(!main.contains("hidden at warning"));
        assert!(main.contains("shown at warning") && main.contains("shown at debug"));
        for line in main.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
        let audit = std::fs::read_to_string(audit_path(&s.file)).unwrap();
        assert!(audit.contains("privileges dropped"), "{audit}");
        assert!(!audit.contains("not audited"));
        assert!(!audit.contains("shown at warning"));
    }

    #[test]
    fn a_panicking_writer_becomes_an_error() {
        use std::io::Write;
        struct Boom;
        impl Write for Boom {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                panic!("read_dir failed")
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut w = NoPanic(Boom);
        assert!(w.write(b"x").is_err());
        assert!(w.flush().is_ok());
    }

    #[test]
    fn unwritable_log_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("logs");
        std::fs::write(&blocker, b"a file where the directory should be").unwrap();
        let Err(e) = build(&settings(dir.path()), false) else {
            panic!("expected an error");
        };
        assert!(e.to_string().contains("plotty.log"), "{e}");
    }

    #[test]
    fn levels_parse_like_the_manual() {
        for (s, want) in [
            ("debug", LogLevel::Debug),
            ("INFO", LogLevel::Info),
            ("warning", LogLevel::Warning),
            ("warn", LogLevel::Warning),
            ("critical", LogLevel::Critical),
        ] {
            assert_eq!(yaml_serde::from_str::<LogLevel>(s).unwrap(), want);
        }
        assert_eq!(LogLevel::Critical.max_level(), Level::ERROR);
        assert!(yaml_serde::from_str::<LogLevel>("verbose").is_err());
    }
}
