//! The client commands (`plotty add`, `jobs`, `job`, `status`, `pause` … `delete`, `device`,
//! `monitor`): small programs that talk to a running daemon over its HTTP and WebSocket API.
//!
//! Where the daemon is ([`Endpoint::resolve`]): `--host`/`--port`/`--api-key` (or `PLOTTY_API_KEY`)
//! when given; else what the daemon's own configuration says (the port it wrote to
//! `<workspace>/daemon.json` when it started, its `websocket.port` and `websocket.api_key`), so a
//! user who runs the daemon with a config file needs no options; else `localhost:8766`.
//!
//! HTTP goes through hyper's HTTP/1.1 client connection ([`http`]): hyper is already in the build
//! for the server, and one request per connection needs no pool or TLS. The WebSocket client is
//! tokio-tungstenite, the same library the server uses. When nothing listens, the error says so and
//! how to start a daemon; the exit code is then 1.

mod commands;
pub(crate) mod format;
pub mod http;
mod monitor;

use std::io::Write;

use crate::cli::{ClientArgs, Command};
use crate::daemon::state_file::StateFile;
use crate::exit::ExitCode;
use crate::settings::{self, Overrides, Sources};

/// The default port of the daemon.
pub const DEFAULT_PORT: u16 = 8766;

/// Where a client connects, and with which key.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// API key to present.
    pub api_key: Option<String>,
}

/// A client command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens at the address.
    #[error(
        "no plotty daemon is listening on {address}: start one with `plotty daemon` (or `plotty \
         daemon --daemonize` to run it in the background), or point --host/--port at the running one"
    )]
    NotRunning {
        /// host:port.
        address: String,
    },
    /// The connection failed for another reason.
    #[error("cannot reach the daemon at {address}: {source}")]
    Connect {
        /// host:port.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The daemon wants an API key, or another one.
    #[error(
        "the daemon at {address} refused the request: {message}; pass --api-key KEY or set PLOTTY_API_KEY"
    )]
    Unauthorized {
        /// host:port.
        address: String,
        /// What it said.
        message: String,
    },
    /// The daemon answered with an error.
    #[error("{message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The daemon's error code (`JOB_NOT_FOUND`, `NO_DEVICE`, …).
        code: String,
        /// The daemon's message.
        message: String,
    },
    /// The answer is not what a plotty daemon sends.
    #[error(
        "the server at {address} sent an answer plotty cannot read ({detail}); is it a plotty daemon?"
    )]
    Protocol {
        /// host:port.
        address: String,
        /// What was wrong.
        detail: String,
    },
    /// A local problem (a file that cannot be read, bad option values).
    #[error("{0}")]
    Input(String),
    /// The configuration named with `-c`/`--config` or `PLOTTY_CONFIG` cannot be used: the
    /// client would otherwise guess the daemon's port and key from the defaults.
    #[error("{0}")]
    Config(#[from] settings::ConfigError),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
}

impl ClientError {
    /// The documented exit code: 2 for an unusable configuration, else 1.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Config(_) => ExitCode::Config,
            _ => ExitCode::Failure,
        }
    }
}

impl Endpoint {
    /// Resolves where to connect from the command line, the daemon's configuration and its
    /// `daemon.json`.
    ///
    /// # Errors
    /// A configuration the user named (`-c`/`--config`, `PLOTTY_CONFIG`) cannot be loaded.
    pub fn resolve(args: &ClientArgs) -> Result<Self, ClientError> {
        Self::resolve_from(args, &Sources::system(Overrides::from(&args.config)))
    }

    /// [`Endpoint::resolve`] with the configuration's `sources` given.
    ///
    /// # Errors
    /// A configuration the user named cannot be loaded.
    pub fn resolve_from(args: &ClientArgs, sources: &Sources) -> Result<Self, ClientError> {
        let named = sources.overrides.config.is_some()
            || sources.env.config.as_ref().is_some_and(|c| !c.is_empty());
        let settings = match settings::load(sources) {
            Ok(s) => Some(s),
            // A file the user named must be the one used: guessing the port from the defaults
            // would talk to another daemon, or to none, without saying why.
            Err(e) if named => return Err(ClientError::Config(e)),
            Err(e) => {
                // The default config is only a hint for the port and key (it may be the
                // daemon's, unreadable for this user): say why it is not used.
                eprintln!("plotty: note: the default configuration is not used: {e}");
                None
            }
        };
        let configured_host = settings.as_ref().map(|s| s.websocket.host.clone());
        let host = args
            .host
            .clone()
            .or_else(|| configured_host.map(|h| connectable(&h)))
            .unwrap_or_else(|| "localhost".into());
        let running = settings
            .as_ref()
            .and_then(|s| StateFile::read(&s.workspace).ok())
            .and_then(|info| info.port);
        let port = args
            .port
            .or(if args.host.is_none() { running } else { None })
            .or_else(|| settings.as_ref().map(|s| s.websocket.port))
            .filter(|p| *p != 0)
            .unwrap_or(DEFAULT_PORT);
        let api_key = args.api_key.clone().filter(|k| !k.is_empty()).or_else(|| {
            settings
                .as_ref()
                .and_then(|s| s.websocket.api_key.as_ref())
                .map(|k| k.expose().to_owned())
        });
        Ok(Self {
            host,
            port,
            api_key,
        })
    }

    /// `host:port` (IPv6 addresses in brackets).
    pub fn address(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The host without brackets, for resolving.
    fn bare_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A bind address as an address to connect to (`0.0.0.0` and `::` mean this machine).
fn connectable(host: &str) -> String {
    match host.trim_matches(['[', ']']) {
        "0.0.0.0" | "::" | "" => "localhost".into(),
        _ => host.to_owned(),
    }
}

/// Runs a client command, printing to stdout (and notes to stderr); returns the exit code.
pub fn run(command: Command) -> Result<ExitCode, ClientError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError::Input(format!("cannot start the async runtime: {e}")))?;
    let mut out = std::io::stdout().lock();
    let result = runtime.block_on(commands::run(command, &mut out));
    match result.and_then(|code| out.flush().map(|()| code).map_err(ClientError::Output)) {
        Err(ClientError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Ok(ExitCode::Success)
        }
        other => other,
    }
}

/// Writes to the output, mapping errors.
fn emit(out: &mut dyn Write, text: &str) -> Result<(), ClientError> {
    out.write_all(text.as_bytes()).map_err(ClientError::Output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_binds_connect_to_this_machine() {
        assert_eq!(connectable("0.0.0.0"), "localhost");
        assert_eq!(connectable("[::]"), "localhost");
        assert_eq!(connectable("192.168.1.100"), "192.168.1.100");
    }

    #[test]
    fn addresses_and_redaction() {
        let e = Endpoint {
            host: "::1".into(),
            port: 8766,
            api_key: Some("secret".into()),
        };
        assert_eq!(e.address(), "[::1]:8766");
        assert_eq!(e.bare_host(), "::1");
        assert!(!format!("{e:?}").contains("secret"));
    }

    fn args(config: Option<std::path::PathBuf>) -> ClientArgs {
        ClientArgs {
            host: None,
            port: None,
            api_key: None,
            json: false,
            config: crate::cli::ConfigArgs {
                config,
                workspace: None,
            },
        }
    }

    #[test]
    fn a_named_config_that_cannot_be_loaded_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let broken = dir.path().join("broken.yaml");
        std::fs::write(&broken, "websocket:\n  port: [not a port\n").unwrap();
        let sources = |config: Option<std::path::PathBuf>| Sources {
            overrides: Overrides {
                config,
                ..Overrides::default()
            },
            env: settings::Environment {
                cwd: dir.path().to_path_buf(),
                ..settings::Environment::default()
            },
            ..Sources::default()
        };
        let a = args(Some(broken.clone()));
        let e = Endpoint::resolve_from(&a, &sources(Some(broken.clone()))).unwrap_err();
        assert_eq!(e.exit_code(), ExitCode::Config);
        assert!(e.to_string().contains("broken.yaml"), "{e}");
        // A named file that does not exist is an error too.
        let gone = dir.path().join("gone.yaml");
        let e =
            Endpoint::resolve_from(&args(Some(gone.clone())), &sources(Some(gone))).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        // No config named and none at the default place: the defaults.
        let e = Endpoint::resolve_from(&args(None), &sources(None)).unwrap();
        assert_eq!(e.port, DEFAULT_PORT);
        assert_eq!(e.host, "localhost");
    }

    #[test]
    fn not_running_says_how_to_start_one() {
        let e = ClientError::NotRunning {
            address: "localhost:8766".into(),
        };
        let text = e.to_string();
        assert!(text.contains("no plotty daemon is listening on localhost:8766"));
        assert!(text.contains("`plotty daemon`"));
    }
}
