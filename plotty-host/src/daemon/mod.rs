//! The daemon's lifecycle: the manual's six start-up steps, the run loop (signals, reload) and the
//! ordered shutdown.
//!
//! Start-up, each step logging one line and failing with its own exit code:
//!
//! 1. configuration (exit 2): already loaded and validated by the caller; `--daemonize` forks here,
//!    then `--nice`, the open-files limit, the workspace directories and logging are set up;
//! 2. database (exit 3): lock the workspace against a second daemon (`<workspace>/daemon.lock`),
//!    refuse a missing or empty database next to job journals ([`crate::store::lost`]), then open,
//!    check and migrate the database ([`crate::store`]);
//! 3. listen (exit 4): bind the WebSocket/HTTP port (0 picks a free one), write the PID file and
//!    `<workspace>/daemon.json`; then drop privileges (`--user`/`--group`) and build the async
//!    runtime (forking and dropping privileges never happen with runtime threads);
//!    [`Stage::Api`] components take the listener;
//! 4. devices (exit 5): [`Stage::Devices`] components;
//! 5. queue: jobs interrupted by a crash become `PAUSED` with their resume point, submissions cut
//!    short are queued or failed ([`crate::queue::recover_submissions`]), then [`Stage::Queue`]
//!    components;
//! 6. hooks: the hook runner is ready, then [`Stage::Hooks`] components.
//!
//! Then the daemon tells whoever waits that it is ready (the `--daemonize` parent, systemd's
//! `NOTIFY_SOCKET`) and runs until SIGTERM/SIGINT, reloading the config on SIGHUP. Shutdown follows
//! [`crate::shutdown::STOP_ORDER`], closes the database, and removes `daemon.json` and the PID file.
//!
//! [`Daemon`] is the in-process part (steps 3–6 onwards) that tests and later tasks can start on a
//! loopback port; [`run`] is the whole process.

pub mod component;
pub mod notify;
pub mod pidfile;
pub mod privileges;
pub mod signals;
pub mod state_file;
pub mod sys;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

pub use component::{Component, StartContext, StartError};
use notify::Notifier;
use pidfile::{PidFile, PidFileError};
use privileges::{PrivilegeError, Target};
use signals::Request;
use state_file::{DaemonInfo, StateFile};
use sys::{Forked, StartupNotifier, StartupReport};

use crate::cli::DaemonArgs;
use crate::events::{self, EventSender};
use crate::exit::ExitCode;
use crate::hooks::HookRunner;
use crate::ledger::Ledger;
use crate::logging::{self, Logging, LoggingError};
use crate::settings::{self, ConfigError, Problem, Settings, Sources};
use crate::shutdown::{Coordinator, STOP_ORDER, Stage};
use crate::store::{JobStore, PgStore, Store, StoreError};

/// How long the `--daemonize` parent waits for the daemon to report.
pub const STARTUP_DEADLINE: Duration = Duration::from_secs(120);

/// The lock file that keeps a second daemon off the same workspace.
pub const WORKSPACE_LOCK: &str = "daemon.lock";

/// How long each stage gets after a second signal.
const FORCED_GRACE: Duration = Duration::from_secs(2);

/// What the device stage gets beyond `shutdown.timeout`: stopping, parking (a diagonal of the
/// largest AxiDraw at pen-up speed takes under 10 s) and recording the pause.
const DEVICE_PARK_GRACE: Duration = Duration::from_secs(30);

/// Options of the daemon process (command line only, not in the config file).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ProcessSettings {
    /// `--pid-file`, absolute.
    pub pid_file: Option<PathBuf>,
    /// `--daemonize`.
    pub daemonize: bool,
    /// `--user` / `--group`, checked.
    pub target: Option<Target>,
    /// `--nice`.
    pub nice: Option<i32>,
}

/// Everything [`run`] needs.
pub struct DaemonOptions {
    /// Validated settings (step 1).
    pub settings: Settings,
    /// Where they came from, for reloads.
    pub sources: Sources,
    /// Process options.
    pub process: ProcessSettings,
    /// systemd notifications.
    pub notifier: Notifier,
}

/// How [`run`] ended without error.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// The daemon ran and shut down cleanly.
    Stopped,
    /// This was the `--daemonize` parent: the daemon runs in the background.
    Detached {
        /// The daemon's PID.
        pid: u32,
        /// Where it listens (`-` when the API is disabled).
        address: String,
    },
}

/// The daemon failed; [`DaemonError::exit_code`] gives the documented exit code.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Step 1 (or an option the process cannot honour).
    #[error("step 1/6 (configuration): {0}")]
    Config(#[from] ConfigError),
    /// The workspace cannot be created.
    #[error(
        "step 1/6 (configuration): cannot create {path}: {source}; create it and give it to the \
         daemon's user, or choose another --workspace"
    )]
    Workspace {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Logging cannot be set up.
    #[error("step 1/6 (configuration): {0}")]
    Logging(#[from] LoggingError),
    /// `--nice` cannot be applied.
    #[error(
        "step 1/6 (configuration): cannot set --nice {value}: {source}{}",
        if *value < 0 { "; values below 0 need root" } else { "" }
    )]
    Nice {
        /// The value.
        value: i32,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Step 2.
    #[error("step 2/6 (database): {0}")]
    Database(#[source] StoreError),
    /// Step 2: another daemon uses the workspace (and so its database).
    #[error(
        "step 2/6 (database): another plotty daemon{} is using the workspace {}: stop it first, or \
         give this one another --workspace",
        pid.map(|p| format!(" (PID {p})")).unwrap_or_default(),
        workspace.display()
    )]
    WorkspaceInUse {
        /// The workspace.
        workspace: PathBuf,
        /// The other daemon.
        pid: Option<u32>,
    },
    /// Step 3: binding.
    #[error(
        "step 3/6 (listen): cannot listen on {address}: {source}{}",
        bind_hint(source)
    )]
    Bind {
        /// host:port.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Step 3: the PID file.
    #[error("step 3/6 (listen): {0}")]
    PidFile(#[from] PidFileError),
    /// Step 3: `daemon.json`.
    #[error("step 3/6 (listen): cannot write {path}: {source}")]
    StateFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Dropping privileges failed.
    #[error("step 3/6 (listen): {0}")]
    Privileges(#[from] PrivilegeError),
    /// A component of steps 3–6 could not start.
    #[error("step {}/6 ({}): {name}: {error}", stage.step(), stage.name())]
    Component {
        /// Its stage.
        stage: Stage,
        /// Its name.
        name: String,
        /// Why.
        error: StartError,
    },
    /// The runtime, signal handlers or fork could not be set up.
    #[error("cannot {what}: {source}")]
    System {
        /// What was attempted.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The `--daemonize` parent's view of a daemon that did not start.
    #[error("the daemon did not start: {message}")]
    Detached {
        /// Exit code the daemon reported.
        code: ExitCode,
        /// Why.
        message: String,
    },
}

/// How long a job stays held by its daemon without a renewal (PostgreSQL, several daemons), unless
/// `database.lease_ttl` says otherwise: a daemon that died leaves its plot PAUSED (interrupted)
/// this long after its last renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(30);

/// How often a daemon renews its leases and looks for expired ones: a third of the lease, so
/// that two renewals may fail before it is lost.
pub fn lease_renewal(ttl: Duration) -> Duration {
    (ttl / 3).max(Duration::from_millis(100))
}

/// This daemon among those sharing a PostgreSQL database (`None` on SQLite).
fn identity(store: &JobStore, settings: &Settings) -> Option<crate::store::DaemonIdentity> {
    matches!(store, JobStore::Postgres(_)).then(|| crate::store::DaemonIdentity {
        name: settings.daemon.name.clone(),
        host: crate::settings::host_name(),
        workspace: settings.workspace.display().to_string(),
        pid: std::process::id(),
        plotters: farm_plotters(settings),
    })
}

/// This daemon's plotters as its registration records them: an unnamed plotter by its port,
/// else `simulator` (its id before the device task finds it), as the submission check names it.
/// The queue records them again under the ids they were attached with (an AxiDraw found by
/// `port: auto` under its port), keeping the named ones of this list, see `queue::actor`.
pub(crate) fn farm_plotters(settings: &Settings) -> Vec<crate::store::Plotter> {
    settings
        .devices
        .iter()
        .map(|d| {
            let id = d
                .name
                .as_deref()
                .or(d.port.as_deref())
                .unwrap_or("simulator");
            crate::store::Plotter::new(
                crate::devices::registry::Profile::of(id, d),
                d.name.is_some(),
            )
        })
        .collect()
}

/// A running daemon (steps 3–6 done): the in-process part of [`run`].
pub struct Daemon {
    settings: Arc<Settings>,
    settings_tx: watch::Sender<Arc<Settings>>,
    sources: Option<Sources>,
    store: JobStore,
    ledger: Ledger,
    hooks: HookRunner,
    coordinator: Coordinator,
    held_listener: Option<TcpListener>,
    local_addr: Option<SocketAddr>,
    logging: Option<Arc<Logging>>,
    notifier: Notifier,
}

/// What [`Daemon::start`] is built from.
pub struct Parts {
    /// Validated settings.
    pub settings: Settings,
    /// Where they came from (enables SIGHUP reloads).
    pub sources: Option<Sources>,
    /// The open store (step 2).
    pub store: JobStore,
    /// The bound listener (step 3), if the API is enabled.
    pub listener: Option<TcpListener>,
    /// The logging set-up, for level changes on reload.
    pub logging: Option<Arc<Logging>>,
    /// systemd notifications.
    pub notifier: Notifier,
}

impl DaemonError {
    /// The documented exit code.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Config(_) | Self::Workspace { .. } | Self::Logging(_) | Self::Nice { .. } => {
                ExitCode::Config
            }
            Self::Database(_) | Self::WorkspaceInUse { .. } => ExitCode::Database,
            Self::Bind { .. } | Self::PidFile(_) | Self::StateFile { .. } => ExitCode::Bind,
            Self::Component { stage, error, .. } => error.exit_code.unwrap_or(match stage {
                Stage::Api => ExitCode::Bind,
                Stage::Devices => ExitCode::Device,
                Stage::Queue | Stage::Hooks => ExitCode::Failure,
            }),
            Self::Privileges(_) | Self::System { .. } => ExitCode::Failure,
            Self::Detached { code, .. } => *code,
        }
    }
}

fn bind_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "; another program (another plotty daemon?) uses this port: stop it, or choose \
             another --port (0 picks a free one)"
        }
        std::io::ErrorKind::PermissionDenied => {
            "; ports below 1024 need root: choose a port above 1024, or start as root with --user"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "; this machine has no such address: use localhost, 0.0.0.0 or one of its addresses"
        }
        _ => "",
    }
}

impl ProcessSettings {
    /// Checks the process options of `plotty daemon` (`cwd` resolves a relative `--pid-file`).
    pub fn from_args(args: &DaemonArgs, cwd: &Path) -> Result<Self, ConfigError> {
        let target = privileges::resolve(args.user.as_deref(), args.group.as_deref())?;
        let pid_file = args
            .pid_file
            .as_ref()
            .map(|p| settings::absolute(cwd, p, None));
        if let Some(p) = pid_file.as_ref().filter(|p| p.is_dir()) {
            return Err(ConfigError::Invalid(vec![Problem {
                file: None,
                location: None,
                key: "--pid-file".into(),
                message: format!("{} is a directory", p.display()),
                fix: Some("name a file, e.g. /run/plotty/plotty.pid".into()),
            }]));
        }
        Ok(Self {
            pid_file,
            daemonize: args.daemonize,
            target,
            nice: args.nice,
        })
    }
}

/// Runs the daemon process until it is told to stop (see the module doc). With `--daemonize`, the
/// calling process returns [`Outcome::Detached`] once the daemon is ready.
pub fn run(
    opts: DaemonOptions,
    components: Vec<Box<dyn Component>>,
) -> Result<Outcome, DaemonError> {
    if !opts.process.daemonize {
        return serve(opts, components, None);
    }
    let log_file = opts.settings.logging.file.clone();
    match sys::daemonize().map_err(|source| DaemonError::System {
        what: "fork into the background",
        source,
    })? {
        Forked::Parent(waiter) => match waiter.wait(STARTUP_DEADLINE) {
            StartupReport::Ready { pid, address } => Ok(Outcome::Detached { pid, address }),
            StartupReport::Failed { code, message } => Err(DaemonError::Detached {
                code: ExitCode::from_code(code),
                message,
            }),
            StartupReport::Vanished => Err(DaemonError::Detached {
                code: ExitCode::Failure,
                message: format!(
                    "it exited during start-up without saying why; see {}",
                    log_file.display()
                ),
            }),
            StartupReport::TimedOut => Err(DaemonError::Detached {
                code: ExitCode::Failure,
                message: format!(
                    "it did not report ready within {} s; it may still be starting, see {}",
                    STARTUP_DEADLINE.as_secs(),
                    log_file.display()
                ),
            }),
        },
        Forked::Daemon(notifier) => serve(opts, components, Some(notifier)),
    }
}

/// The daemon process proper (foreground, or the `--daemonize` child).
fn serve(
    opts: DaemonOptions,
    components: Vec<Box<dyn Component>>,
    startup: Option<StartupNotifier>,
) -> Result<Outcome, DaemonError> {
    let mut startup = startup;
    let result = serve_inner(opts, components, &mut startup);
    if let (Err(e), Some(n)) = (&result, startup.take()) {
        n.failed(e.exit_code().code(), &e.to_string());
    }
    result
}

fn serve_inner(
    opts: DaemonOptions,
    components: Vec<Box<dyn Component>>,
    startup: &mut Option<StartupNotifier>,
) -> Result<Outcome, DaemonError> {
    let DaemonOptions {
        settings,
        sources,
        process,
        notifier,
    } = opts;
    // Before any thread: a thread's nice value is inherited by the threads it creates.
    if let Some(value) = process.nice {
        sys::set_nice(value).map_err(|source| DaemonError::Nice { value, source })?;
    }
    // Before any thread too: big jobs' memory goes back to the system (issue 10).
    sys::fix_malloc_thresholds();
    let nofile = privileges::raise_nofile_limit();
    let created = prepare_workspace(&settings)?;
    let logging = Arc::new(logging::init(&settings.logging, !process.daemonize)?);
    let result = serve_logged(
        settings, sources, process, notifier, components, startup, created, nofile, &logging,
    );
    // Into the log file while it is still open (`main` prints it on stderr).
    if let Err(e) = &result {
        tracing::error!(target: logging::EXIT, "{e}");
    }
    result
}

/// Everything after logging is set up.
#[allow(clippy::too_many_arguments)]
fn serve_logged(
    settings: Settings,
    sources: Sources,
    process: ProcessSettings,
    notifier: Notifier,
    components: Vec<Box<dyn Component>>,
    startup: &mut Option<StartupNotifier>,
    created: Vec<PathBuf>,
    nofile: nix::Result<(u64, u64)>,
    logging: &Arc<Logging>,
) -> Result<Outcome, DaemonError> {
    // Step 1 is done; say so now that there is a log.
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        "step 1/6 configuration: {}; workspace {}",
        describe_source(&settings),
        settings.workspace.display()
    );
    for note in &settings.notes {
        tracing::warn!("config: {note} ({})", note.advice);
    }
    match nofile {
        Ok((before, after)) if after > before => {
            tracing::info!("open files limit raised from {before} to {after}");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not raise the open files limit"),
    }
    if let Some(n) = process.nice {
        tracing::info!("nice value set to {n}");
    }

    // Step 2. One daemon per workspace: two would both work the same queue.
    let workspace_lock =
        PidFile::acquire(&settings.workspace.join(WORKSPACE_LOCK)).map_err(|e| match e {
            PidFileError::Held { pid, .. } => DaemonError::WorkspaceInUse {
                workspace: settings.workspace.clone(),
                pid,
            },
            other => DaemonError::PidFile(other),
        })?;
    let (store, report): (JobStore, _) = if let Some(url) = &settings.database.postgres {
        // The pool keeps `pool_size` connections' worth of work and may open `max_overflow`
        // more under load: deadpool opens connections on demand up to one maximum.
        let max = settings.database.pool_size + settings.database.max_overflow;
        let (store, report) =
            PgStore::connect_blocking(&url.0, max as usize).map_err(DaemonError::Database)?;
        (store.into(), report)
    } else {
        // A missing or empty database next to job journals was lost: refuse before creating one.
        crate::store::lost::check(&settings.database.path, &settings.jobs_dir())
            .map_err(DaemonError::Database)?;
        if let Some(dir) = settings.database.path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| DaemonError::Workspace {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let (store, report) =
            Store::open_with_readers(&settings.database.path, settings.database.pool_size)
                .map_err(DaemonError::Database)?;
        (store.into(), report)
    };
    tracing::info!(
        "step 2/6 database: {} (schema version {}{}, {})",
        report.path.display(),
        report.version,
        if report.migrated.is_empty() {
            String::new()
        } else {
            format!(", applied migrations {:?}", report.migrated)
        },
        match &store {
            JobStore::Postgres(_) =>
                format!("PostgreSQL, up to {} connections", store.read_connections()),
            JobStore::Sqlite(_) => format!(
                "journal mode {}, {} read connections",
                report.journal_mode,
                store.read_connections()
            ),
        }
    );

    // Step 3.
    let listener = if settings.websocket.enabled {
        Some(bind(&settings.websocket.host, settings.websocket.port)?)
    } else {
        None
    };
    let local_addr = listener.as_ref().and_then(|l| l.local_addr().ok());
    let pid_file = process
        .pid_file
        .as_deref()
        .map(PidFile::acquire)
        .transpose()?;
    if let Some(stale) = pid_file.as_ref().and_then(|p| p.replaced_stale) {
        tracing::warn!("replaced the PID file of process {stale}, which is not running any more");
    }
    let info = DaemonInfo {
        pid: std::process::id(),
        host: settings.websocket.host.clone(),
        port: local_addr.map(|a| a.port()),
        address: local_addr.map(|a| a.to_string()),
        version: env!("CARGO_PKG_VERSION").into(),
        started_at: crate::timestamp::now(),
    };
    let state_file =
        StateFile::write(&settings.workspace, &info).map_err(|source| DaemonError::StateFile {
            path: settings.workspace.join(state_file::FILE_NAME),
            source,
        })?;
    tracing::info!(
        "step 3/6 listen: {}{}",
        local_addr.map_or_else(
            || "API disabled (websocket.enabled: false)".into(),
            |a| a.to_string()
        ),
        pid_file
            .as_ref()
            .map(|p| format!(", PID file {}", p.path().display()))
            .unwrap_or_default()
    );

    if let Some(target) = &process.target {
        let mut paths = created;
        paths.extend([
            settings.database.path.clone(),
            with_suffix(&settings.database.path, "-wal"),
            with_suffix(&settings.database.path, "-shm"),
            settings.logging.file.clone(),
            logging::audit_path(&settings.logging.file),
            state_file.path().to_path_buf(),
            workspace_lock.path().to_path_buf(),
        ]);
        paths.extend(pid_file.as_ref().map(|p| p.path().to_path_buf()));
        privileges::hand_over(target, &paths)?;
        privileges::drop_to(target)?;
        tracing::info!(target: logging::AUDIT, "privileges dropped to {}", target.describe());
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("plotty-worker")
        .build()
        .map_err(|source| DaemonError::System {
            what: "start the async runtime",
            source,
        })?;
    let result = runtime.block_on(async {
        let requests = signals::forward().map_err(|source| DaemonError::System {
            what: "install signal handlers",
            source,
        })?;
        let listener = match listener {
            Some(l) => Some(
                TcpListener::from_std(l).map_err(|source| DaemonError::System {
                    what: "register the listening socket",
                    source,
                })?,
            ),
            None => None,
        };
        let parts = Parts {
            settings,
            sources: Some(sources),
            store,
            listener,
            logging: Some(Arc::clone(logging)),
            notifier: notifier.clone(),
        };
        let daemon = Daemon::start(parts, components).await?;
        let address = local_addr.map_or_else(|| "-".to_owned(), |a| a.to_string());
        if let Some(n) = startup.take() {
            n.ready(&address);
        }
        notifier.ready(&format!("listening on {address}"));
        tracing::info!("ready: listening on {address}");
        daemon.run(requests).await
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    drop(state_file);
    if let Some(p) = pid_file {
        p.release();
    }
    workspace_lock.release();
    if result.is_ok() {
        tracing::info!("stopped");
    }
    result.map(|()| Outcome::Stopped)
}

fn describe_source(s: &Settings) -> String {
    match (&s.config.path, s.config.found) {
        (Some(p), true) => format!("loaded {} (from {})", p.display(), s.config.origin),
        (Some(p), false) => format!("{} not found, using the built-in defaults", p.display()),
        (None, _) => "no config file, using the built-in defaults".into(),
    }
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Creates the workspace, its `jobs` directory and the log directory; returns those created.
fn prepare_workspace(settings: &Settings) -> Result<Vec<PathBuf>, DaemonError> {
    let mut dirs = vec![settings.workspace.clone(), settings.jobs_dir()];
    if let Some(d) = settings.logging.file.parent() {
        dirs.push(d.to_path_buf());
    }
    let mut created = Vec::new();
    for d in dirs {
        if !d.is_dir() {
            std::fs::create_dir_all(&d).map_err(|source| DaemonError::Workspace {
                path: d.clone(),
                source,
            })?;
        }
        created.push(d);
    }
    Ok(created)
}

/// Binds the first address `host` resolves to that accepts the port.
fn bind(host: &str, port: u16) -> Result<std::net::TcpListener, DaemonError> {
    let address = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let host_only = host.trim_matches(['[', ']']);
    let addrs: Vec<SocketAddr> = (host_only, port)
        .to_socket_addrs()
        .map_err(|source| DaemonError::Bind {
            address: address.clone(),
            source,
        })?
        .collect();
    let mut last = std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no address");
    for a in addrs {
        match std::net::TcpListener::bind(a) {
            Ok(l) => {
                l.set_nonblocking(true)
                    .map_err(|source| DaemonError::Bind {
                        address: address.clone(),
                        source,
                    })?;
                return Ok(l);
            }
            Err(e) => last = e,
        }
    }
    Err(DaemonError::Bind {
        address,
        source: last,
    })
}

impl Daemon {
    /// Runs steps 3 (components) to 6 on an open store and bound listener.
    pub async fn start(
        parts: Parts,
        components: Vec<Box<dyn Component>>,
    ) -> Result<Self, DaemonError> {
        let Parts {
            settings,
            sources,
            store,
            listener,
            logging,
            notifier,
        } = parts;
        let settings = Arc::new(settings);
        let (settings_tx, _) = watch::channel(Arc::clone(&settings));
        let coordinator = Coordinator::new();
        let events: EventSender = events::bus();
        let hooks = HookRunner::new(
            settings.hooks.clone(),
            coordinator.handle(Stage::Hooks).tracker().clone(),
        );
        let ledger = Ledger::new(
            store.clone(),
            &settings.workspace,
            events,
            Some(hooks.clone()),
        )
        .holding_leases(settings.daemon.name.clone(), settings.database.lease_ttl);
        let renewal = lease_renewal(settings.database.lease_ttl);
        let identity = identity(&store, &settings);
        if let (JobStore::Postgres(pg), Some(me)) = (&store, &identity) {
            // Before anything else touches the jobs: recovery would pause a live namesake's plots.
            let ttl_ms = i64::try_from(settings.database.lease_ttl.as_millis()).unwrap_or(i64::MAX);
            pg.register_daemon(me, crate::timestamp::now_ms(), ttl_ms)
                .await
                .map_err(DaemonError::Database)?;
        }
        if let Some((owner, _)) = ledger.lease() {
            tracing::info!(
                owner,
                "this daemon is `{owner}` (daemon.name); it holds its jobs under leases of {:?} renewed every {renewal:?}",
                settings.database.lease_ttl
            );
            // The hooks stage stops last: the leases of the plots that finish during the
            // shutdown are renewed until the devices are done.
            let shutdown = coordinator.handle(Stage::Hooks);
            let keeper = ledger.clone();
            let heartbeat = identity.clone().zip(match &store {
                JobStore::Postgres(pg) => Some(pg.clone()),
                JobStore::Sqlite(_) => None,
            });
            shutdown.clone().spawn(async move {
                let mut tick = tokio::time::interval(renewal);
                loop {
                    tokio::select! {
                        () = shutdown.stop() => return,
                        _ = tick.tick() => {}
                    }
                    if let Some((me, pg)) = &heartbeat {
                        match pg.daemon_heartbeat(me, crate::timestamp::now_ms()).await {
                            Ok(true) => {}
                            Ok(false) => tracing::error!(
                                name = %me.name,
                                "another daemon registered this daemon.name after this one's heartbeat lapsed; give each daemon its own name"
                            ),
                            Err(e) => tracing::warn!(error = %e, "the daemon heartbeat failed"),
                        }
                    }
                    match keeper.keep_leases().await {
                        Ok((_, paused)) => {
                            for change in paused {
                                tracing::warn!(
                                    job_id = %change.job_id,
                                    "the daemon holding this job stopped renewing its lease; it is PAUSED (interrupted) on that daemon's plotter"
                                );
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "renewing the job leases failed"),
                    }
                }
            });
        }
        // Several daemons on one database: their events reach each other's clients. The hooks
        // stage stops last, so the changes of this daemon's shutdown still go out.
        crate::farm::relay::start(&ledger, &coordinator.handle(Stage::Hooks));
        let local_addr = listener.as_ref().and_then(|l| l.local_addr().ok());
        let slot = Arc::new(Mutex::new(listener));
        let mut by_stage: Vec<Vec<Box<dyn Component>>> =
            Stage::ALL.iter().map(|_| Vec::new()).collect();
        for c in components {
            let i = Stage::ALL.iter().position(|s| *s == c.stage()).unwrap_or(0);
            by_stage[i].push(c);
        }
        let mut daemon = Self {
            settings: Arc::clone(&settings),
            settings_tx,
            sources,
            store,
            ledger,
            hooks,
            coordinator,
            held_listener: None,
            local_addr,
            logging,
            notifier,
        };
        for (stage, list) in Stage::ALL.into_iter().zip(by_stage) {
            if stage == Stage::Queue {
                let recovered = daemon
                    .ledger
                    .recover_interrupted()
                    .await
                    .map_err(DaemonError::Database)?;
                for change in &recovered {
                    tracing::warn!(
                        job_id = %change.job_id,
                        "job was {} when the daemon stopped; it is PAUSED (interrupted): `plotty resume` goes on where the pen stopped (the board tells), or from its last recorded point",
                        change.from.map_or("?", |s| s.as_str())
                    );
                }
                let submissions =
                    crate::queue::recover_submissions(&daemon.ledger, &daemon.settings.jobs_dir())
                        .await
                        .map_err(DaemonError::Database)?;
                tracing::info!(
                    "step 5/6 queue: {} interrupted job(s) paused for resume; {} interrupted \
                     submission(s) queued, {} failed; {} job director{} without a job ignored",
                    recovered.len(),
                    submissions.queued.len(),
                    submissions.failed.len(),
                    submissions.orphans.len(),
                    if submissions.orphans.len() == 1 {
                        "y"
                    } else {
                        "ies"
                    }
                );
            }
            let names: Vec<String> = list.iter().map(|c| c.name().to_owned()).collect();
            for c in list {
                let name = c.name().to_owned();
                let ctx = daemon.context(stage, &slot);
                c.start(ctx).await.map_err(|error| DaemonError::Component {
                    stage,
                    name,
                    error,
                })?;
            }
            match stage {
                Stage::Api => {
                    let left = match slot.lock() {
                        Ok(mut s) => s.take(),
                        Err(p) => p.into_inner().take(),
                    };
                    match (&left, names.is_empty()) {
                        (Some(l), _) => tracing::warn!(
                            "api: the WebSocket/HTTP API is not served yet in this build; holding {} for it",
                            l.local_addr().map(|a| a.to_string()).unwrap_or_default()
                        ),
                        (None, false) => tracing::info!("api: started {}", names.join(", ")),
                        (None, true) => {}
                    }
                    daemon.held_listener = left;
                }
                Stage::Devices => tracing::info!(
                    "step 4/6 devices: {}",
                    if names.is_empty() {
                        "no device layer in this build yet".to_owned()
                    } else {
                        format!("started {}", names.join(", "))
                    }
                ),
                Stage::Queue if !names.is_empty() => {
                    tracing::info!("queue: started {}", names.join(", "));
                }
                Stage::Queue => {}
                Stage::Hooks => {
                    let hooks = daemon.hooks.hooks();
                    tracing::info!(
                        "step 6/6 hooks: {} action(s) for {} state(s){}",
                        hooks.len(),
                        hooks.iter().count(),
                        if names.is_empty() {
                            String::new()
                        } else {
                            format!("; started {}", names.join(", "))
                        }
                    );
                }
            }
        }
        Ok(daemon)
    }

    fn context(&self, stage: Stage, slot: &Arc<Mutex<Option<TcpListener>>>) -> StartContext {
        let listener = if stage == Stage::Api {
            Arc::clone(slot)
        } else {
            Arc::new(Mutex::new(None))
        };
        StartContext::new(
            self.settings_tx.subscribe(),
            self.ledger.clone(),
            self.hooks.clone(),
            self.coordinator.handle(stage),
            listener,
        )
    }

    /// The address of the listening socket (also when it is only held).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The ledger (to submit and move jobs).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The current settings.
    pub fn settings(&self) -> Arc<Settings> {
        Arc::clone(&self.settings)
    }

    /// Serves requests until told to stop, then shuts down in order.
    pub async fn run(mut self, mut requests: mpsc::Receiver<Request>) -> Result<(), DaemonError> {
        let signal = loop {
            match requests.recv().await {
                Some(Request::Reload) => self.reload(),
                Some(Request::Stop { signal }) => break signal,
                None => break "end of requests",
            }
        };
        tracing::info!(
            "shutting down ({signal}): stop accepting jobs, finish the active stroke, close clients, \
             power down devices, close the database"
        );
        self.shutdown(requests).await
    }

    /// SIGHUP: re-reads the configuration; on error the current one stays.
    pub fn reload(&mut self) {
        let Some(sources) = &self.sources else {
            tracing::warn!("reload requested, but this daemon was not started from a config");
            return;
        };
        match settings::load(sources) {
            Ok(new) => self.apply_reload(new),
            Err(e) => {
                tracing::error!("reloading the configuration failed; keeping the current one: {e}")
            }
        }
    }

    /// Applies reloaded settings: what can change while running does (log level, hooks, limits
    /// read by components); what needs a restart keeps its current value, with a warning.
    pub fn apply_reload(&mut self, new: Settings) {
        let restart = self.settings.restart_needed(&new);
        if !restart.is_empty() {
            tracing::warn!(
                "these changes take effect after a restart: {}",
                restart.join(", ")
            );
        }
        let merged = Arc::new(self.settings.merge_reload(new));
        if let Some(logging) = &self.logging {
            logging.set_level(merged.logging.level);
        }
        self.hooks.replace(merged.hooks.clone());
        self.settings = Arc::clone(&merged);
        self.settings_tx.send_replace(merged);
        self.notifier.status("configuration reloaded");
        tracing::info!(target: logging::AUDIT, "configuration reloaded");
    }

    /// The ordered shutdown; a further `Stop` request makes it immediate.
    pub async fn shutdown(self, mut requests: mpsc::Receiver<Request>) -> Result<(), DaemonError> {
        self.notifier.stopping();
        self.coordinator.begin();
        let stop_all = async {
            for stage in STOP_ORDER {
                let grace = if self.coordinator.is_forced() {
                    FORCED_GRACE
                } else if stage == Stage::Devices {
                    // The plot finishes its stroke within `shutdown.timeout`, then parks.
                    self.settings.shutdown.timeout + DEVICE_PARK_GRACE
                } else {
                    stage.grace()
                };
                if !self.coordinator.stop_stage(stage, grace).await {
                    tracing::warn!(
                        "{}: {} task(s) did not stop within {} s; continuing",
                        stage.name(),
                        self.coordinator.running(stage),
                        grace.as_secs()
                    );
                }
            }
        };
        let second = async {
            loop {
                match requests.recv().await {
                    Some(Request::Stop { signal }) => {
                        tracing::warn!("{signal} again: stopping now (pen up, motors off)");
                        self.coordinator.force();
                        return;
                    }
                    Some(Request::Reload) => {}
                    None => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            () = stop_all => {}
            () = second => {
                // Stages already stopped return at once; the rest get the short grace.
                for stage in STOP_ORDER {
                    if !self.coordinator.stop_stage(stage, FORCED_GRACE).await {
                        tracing::warn!("{}: abandoned {} task(s)", stage.name(), self.coordinator.running(stage));
                    }
                }
            }
        }
        drop(self.held_listener);
        if let (JobStore::Postgres(pg), Some(me)) =
            (&self.store, identity(&self.store, &self.settings))
            && let Err(e) = pg.unregister_daemon(&me).await
        {
            tracing::warn!(error = %e, "cannot free this daemon's name on the database");
        }
        self.store.close().await;
        tracing::info!("database closed");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
