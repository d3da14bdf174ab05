//! Unix signals as daemon requests: SIGTERM and SIGINT stop (a second one stops at once), SIGHUP
//! reloads the configuration. Signals are turned into [`Request`]s on a channel, so tests drive the
//! daemon with the same requests without sending signals to themselves.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// What the daemon is asked to do.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Request {
    /// Shut down (the first time gracefully; again while shutting down: at once).
    Stop {
        /// The signal's name, for the log.
        signal: &'static str,
    },
    /// Re-read the configuration file.
    Reload,
}

/// Installs the handlers and forwards signals as requests until the receiver is dropped.
/// Must be called inside the runtime.
pub fn forward() -> std::io::Result<mpsc::Receiver<Request>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let request = tokio::select! {
                Some(()) = term.recv() => Request::Stop { signal: "SIGTERM" },
                Some(()) = int.recv() => Request::Stop { signal: "SIGINT" },
                Some(()) = hup.recv() => Request::Reload,
                else => break,
            };
            if tx.send(request).await.is_err() {
                break;
            }
        }
    });
    Ok(rx)
}
