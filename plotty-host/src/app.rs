//! Runs a parsed command line: builds the settings from it and calls the right part of the library.
//! Printing and exit codes are `main`'s business; this returns what to print and how to exit.

use std::io::Write;

use crate::check::Report;
use crate::cli::{CheckArgs, CheckCommand, Cli, Command, ConfigArgs, ConfigCommand, DeviceCommand};
use crate::daemon::{
    self, Component, DaemonError, DaemonOptions, ProcessSettings, notify::Notifier,
};
use crate::exit::ExitCode;
use crate::settings::{self, ConfigError, Overrides, Sources};

/// What a command produced.
#[derive(Debug)]
pub enum Outcome {
    /// A `plotty check` report, and the exit code it calls for.
    Report {
        /// The report to print.
        report: Report,
        /// 0 when all is well, else the subject's code (2 config, 3 database, 5 device).
        exit: ExitCode,
        /// Print it as JSON ([`Report::to_json`]).
        json: bool,
    },
    /// The daemon stopped cleanly, or (`--daemonize` parent) runs in the background.
    Daemon(daemon::Outcome),
    /// A client command finished (it printed its own output).
    Client(ExitCode),
    /// `plotty plot` finished (it printed its own report).
    Plotted,
    /// Text for standard output (`plotty config …`).
    Text(String),
    /// `plotty completions` or `plotty man` wrote what was asked.
    Generated,
}

/// A command failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The daemon failed.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// A client command failed.
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    /// `plotty plot` failed.
    #[error(transparent)]
    Plot(#[from] crate::plot::command::PlotError),
    /// `plotty config init` could not write the file.
    #[error(transparent)]
    Init(#[from] settings::init::InitError),
    /// `plotty completions` or `plotty man` could not write.
    #[error("{0}")]
    Output(String),
    /// `plotty device list|name` failed.
    #[error(transparent)]
    Boards(#[from] crate::devices::boards::BoardsError),
}

impl AppError {
    /// The documented exit code.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Config(_) => ExitCode::Config,
            Self::Daemon(e) => e.exit_code(),
            Self::Client(e) => e.exit_code(),
            Self::Plot(e) => e.exit_code(),
            Self::Init(_) => ExitCode::Config,
            Self::Output(_) => ExitCode::Failure,
            Self::Boards(e) => e.exit_code(),
        }
    }
}

/// Runs `cli`.
pub fn run(cli: Cli) -> Result<Outcome, AppError> {
    match cli.command {
        Command::Daemon(args) => {
            let sources = Sources::system(Overrides::from(&args));
            let settings = settings::load(&sources).map_err(DaemonError::Config)?;
            let process =
                ProcessSettings::from_args(&args, &sources.env.cwd).map_err(DaemonError::Config)?;
            let options = DaemonOptions {
                settings,
                sources,
                process,
                notifier: Notifier::from_env(),
            };
            Ok(Outcome::Daemon(daemon::run(options, components())?))
        }
        Command::Check(CheckCommand::Config(args)) => {
            let (report, _) = settings::check::check(&system_sources(&args.config));
            Ok(finish(report, ExitCode::Config, args.json))
        }
        Command::Check(CheckCommand::Database(args)) => Ok(check_with_settings(
            &args,
            "database",
            ExitCode::Database,
            |s, r| match &s.database.postgres {
                Some(url) => crate::store::check::check_postgres(&url.0, r),
                None => crate::store::check::check(&s.database.path, &s.jobs_dir(), r),
            },
        )),
        Command::Check(CheckCommand::Device(args)) => Ok(check_with_settings(
            &args,
            "device",
            ExitCode::Device,
            |s, r| crate::devices::check::check_all(&s.devices, r),
        )),
        Command::Config(ConfigCommand::Init(args)) => {
            let sources = Sources::system(Overrides::default());
            let path = settings::init::init(args.path.as_deref(), args.force, &sources)?;
            Ok(Outcome::Text(settings::init::written_message(
                &path, &sources,
            )))
        }
        Command::Config(ConfigCommand::Show(args)) => {
            let shown = settings::show::show(&Sources::system(Overrides::from(&args)))?;
            Ok(Outcome::Text(if args.json {
                format!("{}\n", shown.to_json())
            } else {
                shown.to_text()
            }))
        }
        Command::Plot(args) => {
            crate::plot::command::run(&args, &mut std::io::stdout().lock())?;
            Ok(Outcome::Plotted)
        }
        Command::Completions(args) => {
            let script = crate::manual_pages::completions(args.shell);
            let mut out = std::io::stdout().lock();
            out.write_all(&script)
                .and_then(|()| out.flush())
                .or_else(ignore_closed_pipe)
                .map_err(|e| AppError::Output(format!("cannot write the completions: {e}")))?;
            Ok(Outcome::Generated)
        }
        Command::Man(args) => {
            match &args.dir {
                None => crate::manual_pages::man_page(&mut std::io::stdout().lock())
                    .or_else(ignore_closed_pipe)
                    .map_err(|e| AppError::Output(format!("cannot write the man page: {e}")))?,
                Some(dir) => {
                    let files = crate::manual_pages::man_pages(dir).map_err(|e| {
                        AppError::Output(format!(
                            "cannot write the man pages into {}: {e}",
                            dir.display()
                        ))
                    })?;
                    println!("{} man pages written to {}", files.len(), dir.display());
                }
            }
            Ok(Outcome::Generated)
        }
        // The boards themselves, not the daemon, answer these.
        Command::Device(DeviceCommand::List(args)) => {
            Ok(Outcome::Text(crate::devices::boards::list(args.json)?))
        }
        Command::Device(DeviceCommand::Name(args)) => {
            Ok(Outcome::Text(crate::devices::boards::name(
                &args.new,
                args.port.as_deref(),
                args.nickname.as_deref(),
                args.json,
            )?))
        }
        command => Ok(Outcome::Client(crate::client::run(command)?)),
    }
}

/// A closed standard output (`plotty man | head`) is not an error.
fn ignore_closed_pipe(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(e)
    }
}

/// The components of daemon start-up steps 3–6 in this build: the WebSocket/HTTP API (step 3), the
/// device task of the configured plotter (step 4; a simulator runs paced to the wall clock) and the
/// job queue (step 5), which the API and the device reach through its handle.
pub fn components() -> Vec<Box<dyn Component>> {
    components_with(crate::api::ApiLimits::default())
}

/// [`components`] with other internal API limits (tests, benchmarks).
pub fn components_with(limits: crate::api::ApiLimits) -> Vec<Box<dyn Component>> {
    components_for(limits, crate::devices::SimPace::Realtime)
}

/// The API and a queue that only answers commands: no device layer, no pipeline; jobs stay where
/// they are until the caller moves them through the ledger (tests and benchmarks of the API).
pub fn components_without_devices(limits: crate::api::ApiLimits) -> Vec<Box<dyn Component>> {
    let (queue, actor) = crate::queue::channel();
    vec![
        Box::new(crate::api::ApiComponent::with_limits(queue, limits)),
        Box::new(crate::queue::QueueComponent::new(actor.manual())),
    ]
}

/// [`components_with`] with the simulator at `pace` (tests run it as fast as possible).
pub fn components_for(
    limits: crate::api::ApiLimits,
    pace: crate::devices::SimPace,
) -> Vec<Box<dyn Component>> {
    components_and_queue(limits, pace).0
}

/// [`components_for`], and the handle of their queue (in-process tests and benchmarks submit and
/// control jobs through it).
pub fn components_and_queue(
    limits: crate::api::ApiLimits,
    pace: crate::devices::SimPace,
) -> (Vec<Box<dyn Component>>, crate::queue::QueueHandle) {
    let (queue, actor) = crate::queue::channel();
    let components: Vec<Box<dyn Component>> = vec![
        Box::new(crate::api::ApiComponent::with_limits(queue.clone(), limits)),
        Box::new(crate::devices::DeviceComponent::new(queue.clone(), pace)),
        Box::new(crate::queue::QueueComponent::new(actor)),
    ];
    (components, queue)
}

fn system_sources(args: &ConfigArgs) -> Sources {
    Sources::system(Overrides::from(args))
}

/// Runs `check` once the configuration loads; a broken configuration is reported instead.
fn check_with_settings(
    args: &CheckArgs,
    subject: &str,
    failure: ExitCode,
    check: impl FnOnce(&settings::Settings, &mut Report),
) -> Outcome {
    let (config_report, settings) = settings::check::check(&system_sources(&args.config));
    let Some(settings) = settings else {
        return finish(config_report, ExitCode::Config, args.json);
    };
    let mut report = Report::new(subject);
    let source = match (&settings.config.path, settings.config.found) {
        (Some(p), true) => p.display().to_string(),
        _ => "built-in defaults".to_owned(),
    };
    report.ok("configuration", source);
    check(&settings, &mut report);
    finish(report, failure, args.json)
}

fn finish(report: Report, failure: ExitCode, json: bool) -> Outcome {
    let exit = if report.passed() {
        ExitCode::Success
    } else {
        failure
    };
    Outcome::Report { report, exit, json }
}
