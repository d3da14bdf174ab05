//! The extension points of start-up steps 3–6: parts of the daemon built in later work (the
//! WebSocket/HTTP API, device tasks, the queue actor) implement [`Component`] and are handed to
//! [`super::run`] or [`super::Daemon::start`]. Each is started in its step, in the order given,
//! with everything it needs in a [`StartContext`]; its tasks run under its stage's [`Shutdown`]
//! handle, so the daemon stops them in the manual's order.

use std::fmt;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::events::EventSender;
use crate::exit::ExitCode;
use crate::hooks::HookRunner;
use crate::ledger::Ledger;
use crate::settings::Settings;
use crate::shutdown::{Shutdown, Stage};
use crate::store::JobStore;

/// A part of the daemon started in one of the steps 3–6.
pub trait Component: Send + 'static {
    /// A short name for logs ("websocket api", "axidraw").
    fn name(&self) -> &str;

    /// The step it belongs to.
    fn stage(&self) -> Stage;

    /// Starts it: spawn its tasks on `ctx.shutdown` and return once it is running (or why it
    /// cannot run; that ends the start-up with the step's exit code).
    fn start(self: Box<Self>, ctx: StartContext) -> BoxFuture<'static, Result<(), StartError>>;
}

/// What a component gets to work with.
#[derive(Clone)]
pub struct StartContext {
    /// The current settings; a new value arrives after each successful reload.
    pub settings: watch::Receiver<Arc<Settings>>,
    /// Records job changes (SQLite, journal, broadcast, hooks).
    pub ledger: Ledger,
    /// Direct store access for queries.
    pub store: JobStore,
    /// The event bus (subscribe for the WebSocket feed).
    pub events: EventSender,
    /// The hook runner (for `POST /api/hooks/test`).
    pub hooks: HookRunner,
    /// Shutdown handle of the component's stage.
    pub shutdown: Shutdown,
    listener: Arc<Mutex<Option<TcpListener>>>,
}

/// A component could not start.
#[derive(Debug)]
pub struct StartError {
    /// What went wrong and what to do.
    pub message: String,
    /// Exit code, when it should not be the step's own (4 for the API, 5 for devices).
    pub exit_code: Option<ExitCode>,
}

impl StartContext {
    /// Assembles a context.
    pub(crate) fn new(
        settings: watch::Receiver<Arc<Settings>>,
        ledger: Ledger,
        hooks: HookRunner,
        shutdown: Shutdown,
        listener: Arc<Mutex<Option<TcpListener>>>,
    ) -> Self {
        Self {
            store: ledger.store().clone(),
            events: ledger.bus(),
            settings,
            ledger,
            hooks,
            shutdown,
            listener,
        }
    }

    /// Takes the bound listening socket (the API component does, once); `None` when the API is
    /// disabled or another component took it.
    pub fn take_listener(&self) -> Option<TcpListener> {
        match self.listener.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }
}

impl StartError {
    /// An error with the step's exit code.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            exit_code: None,
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StartError {}
