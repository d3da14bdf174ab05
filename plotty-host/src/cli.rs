//! The command line, as clap derive types only. Validation and merging with the environment and the
//! config file happen in [`crate::settings`]; nothing else reads these types.
//!
//! Defaults are shown in the help but not set here, so that a value given on the command line can
//! be told apart from one that was not (the command line overrides the config file only when
//! given).

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::logging::LogLevel;

/// plotty: a job queue and daemon for AxiDraw pen plotters.
#[derive(Debug, Parser)]
#[command(name = "plotty", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The `plotty` commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: job queue, devices and the WebSocket/HTTP API.
    ///
    /// Exit codes: 0 after a clean shutdown, 2 configuration, 3 database, 4 listening socket or
    /// PID file, 5 device, 1 anything else.
    Daemon(DaemonArgs),
    /// Check the configuration, the database or the device; exit 0 only when all is well.
    #[command(subcommand)]
    Check(CheckCommand),
}

/// `plotty check …`.
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Load the configuration as the daemon would and report every problem with its fix.
    Config(ConfigArgs),
    /// Open the database (without changing it) and report its schema, integrity and contents.
    Database(ConfigArgs),
    /// Look for the plotter and ask it for its firmware version.
    Device(ConfigArgs),
}

/// Where the configuration comes from (for the `check` commands).
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Configuration file [default: $XDG_CONFIG_HOME/plotty/config.yaml; env: PLOTTY_CONFIG].
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Workspace directory [default: $XDG_DATA_HOME/plotty/workspace; env: PLOTTY_WORKSPACE].
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
}

/// `plotty daemon` (the manual's options; `-h` is `--host`, so help is `--help` only).
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct DaemonArgs {
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Bind address of the WebSocket/HTTP server [default: localhost].
    #[arg(short = 'h', long, value_name = "ADDRESS")]
    pub host: Option<String>,
    /// Port of the WebSocket/HTTP server; 0 picks a free port [default: 8766].
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Working directory for jobs, database and logs, created if missing
    /// [default: $XDG_DATA_HOME/plotty/workspace; env: PLOTTY_WORKSPACE].
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Logging verbosity, overrides the config file [default: info].
    #[arg(short = 'l', long, value_name = "LEVEL", ignore_case = true)]
    pub log_level: Option<LogLevel>,
    /// Configuration file [default: $XDG_CONFIG_HOME/plotty/config.yaml; env: PLOTTY_CONFIG].
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// PID file, written once the port is bound, locked while running, removed on exit.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Run in the background; returns once the daemon is listening and prints its PID.
    #[arg(short = 'd', long)]
    pub daemonize: bool,
    /// Run as this user after binding the port (requires root) [default: current user].
    #[arg(short = 'u', long, value_name = "USER")]
    pub user: Option<String>,
    /// Run as this group after binding the port (requires root) [default: the user's group].
    #[arg(short = 'g', long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Process priority, -20 (highest) to 19 (lowest); below 0 requires root [default: 0].
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = clap::value_parser!(i32).range(-20..=19))]
    pub nice: Option<i32>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn daemon_short_flags_follow_the_manual() {
        let cli = Cli::try_parse_from([
            "plotty",
            "daemon",
            "-h",
            "0.0.0.0",
            "-p",
            "0",
            "-w",
            "ws",
            "-l",
            "WARNING",
            "-c",
            "c.yaml",
            "-d",
            "-u",
            "plotty",
            "-g",
            "dialout",
            "--nice",
            "-5",
            "--pid-file",
            "p.pid",
        ])
        .unwrap();
        let Command::Daemon(a) = cli.command else {
            panic!("not the daemon command");
        };
        assert_eq!(a.host.as_deref(), Some("0.0.0.0"));
        assert_eq!(a.port, Some(0));
        assert_eq!(a.log_level, Some(LogLevel::Warning));
        assert!(a.daemonize);
        assert_eq!(
            (a.user.as_deref(), a.group.as_deref()),
            (Some("plotty"), Some("dialout"))
        );
        assert_eq!(a.nice, Some(-5));
        assert_eq!(a.pid_file, Some(PathBuf::from("p.pid")));
    }

    #[test]
    fn daemon_help_is_long_only_and_bad_values_are_refused() {
        let e = Cli::try_parse_from(["plotty", "daemon", "--help"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
        let help = e.to_string();
        assert!(
            help.contains("-h, --host <ADDRESS>") && help.contains("[default: 8766]"),
            "{help}"
        );
        assert!(
            Cli::try_parse_from(["plotty", "daemon", "-h"]).is_err(),
            "-h needs an address"
        );
        assert!(Cli::try_parse_from(["plotty", "daemon", "--nice", "20"]).is_err());
        assert!(Cli::try_parse_from(["plotty", "daemon", "-l", "verbose"]).is_err());
        assert!(Cli::try_parse_from(["plotty", "daemon", "-p", "70000"]).is_err());
        assert!(Cli::try_parse_from(["plotty", "check", "device", "-c", "x.yaml"]).is_ok());
    }
}
