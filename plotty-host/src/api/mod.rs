//! The WebSocket + HTTP API on one port (spec/api.md): the daemon's start-up step 3.
//!
//! [`ApiComponent`] takes the listening socket the daemon bound and serves it with axum:
//!
//! - `/ws`: the WebSocket stream (`upgrade` checks and upgrades, `handler` serves one client,
//!   `fanout` feeds every client from the event bus, [`protocol`] is the wire format);
//! - `/status`, `/api/…`: JSON over HTTP (`http`, views in `views`);
//! - `/`, `/ui/…`: the web UI (`ui`: files embedded at build time, built on the stream and the
//!   HTTP API).
//!
//! Every request passes `guard` first, before any upgrade: without an API key the `Host` check
//! against DNS rebinding (`websocket.allowed_hosts`, 421), the `Origin` check
//! (`websocket.allowed_origins`, 403), the API key (`websocket.authenticate`, 401), and for a
//! state-changing request the proof that it is no cross-site form (`X-Plotty-Request`, 403);
//! refusals go to the security log. SECURITY.md explains what each protects. WebSocket limits and
//! the heartbeat are in `limits`; a WebSocket whose key no longer matches after a reload is closed
//! with code 4401. The accept loop (`server`) sets the header timeout and the HTTP connection cap;
//! it never ends on an `accept()` error (it pauses and goes on); the daemon raised the open-files
//! limit at start-up. On shutdown the server stops accepting, and every WebSocket client is closed
//! with code 1001.

mod auth;
mod fanout;
mod gate;
mod handler;
mod http;
mod limits;
mod presets;
mod preview;
pub mod protocol;
mod server;
mod system;
mod throttle;
mod ui;
mod upgrade;
pub(crate) mod views;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, delete, get, post, put};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::watch;

use crate::daemon::{Component, StartContext, StartError};
use crate::hooks::HookRunner;
use crate::job::JobState;
use crate::logging;
use crate::queue::QueueHandle;
use crate::settings::Settings;
use crate::shutdown::{Shutdown, Stage};
use crate::store::JobStore;
use fanout::Hub;
use limits::ConnectionLimiter;
use protocol::{Channels, ServerMessage, SystemStatus};

/// Internal limits of the API (not in the config file; tests and benchmarks tune them).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ApiLimits {
    /// Broadcast messages a client may fall behind before it is told it lagged.
    pub client_queue: usize,
    /// Longest a write to one client may take before that client is dropped.
    pub send_timeout: Duration,
    /// A client that lags again within this time after a `LAGGED` warning is closed.
    pub lag_grace: Duration,
    /// Most jobs in the `jobs` snapshot after a subscribe.
    pub snapshot_jobs: usize,
    /// Longest a `job_*` request may wait for the queue before it fails with `TIMEOUT`.
    pub control_timeout: Duration,
}

/// The API as a daemon component (start-up step 3).
pub struct ApiComponent {
    queue: QueueHandle,
    limits: ApiLimits,
}

/// What every handler shares.
pub(crate) struct Api {
    settings: watch::Receiver<Arc<Settings>>,
    queue: QueueHandle,
    store: JobStore,
    hooks: HookRunner,
    hub: Arc<Hub>,
    limiter: ConnectionLimiter,
    connections: server::ConnectionTable,
    shutdown: Shutdown,
    started: Instant,
    sampler: Mutex<system::Sampler>,
    next_id: AtomicU64,
    clients: Mutex<BTreeMap<u64, Channels>>,
    limits: ApiLimits,
    workspace: PathBuf,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            client_queue: 256,
            send_timeout: Duration::from_secs(10),
            lag_grace: Duration::from_secs(30),
            snapshot_jobs: 500,
            control_timeout: Duration::from_secs(30),
        }
    }
}

impl ApiComponent {
    /// The API, sending job and device requests to `queue`.
    pub fn new(queue: QueueHandle) -> Self {
        Self::with_limits(queue, ApiLimits::default())
    }

    /// The API with other internal limits.
    pub fn with_limits(queue: QueueHandle, limits: ApiLimits) -> Self {
        Self { queue, limits }
    }
}

impl Component for ApiComponent {
    fn name(&self) -> &str {
        "websocket/http api"
    }

    fn stage(&self) -> Stage {
        Stage::Api
    }

    fn start(self: Box<Self>, ctx: StartContext) -> BoxFuture<'static, Result<(), StartError>> {
        async move {
            let Some(listener) = ctx.take_listener() else {
                tracing::info!("api: not serving (websocket.enabled: false)");
                return Ok(());
            };
            let address = listener
                .local_addr()
                .map_err(|e| StartError::new(format!("the listening socket is unusable: {e}")))?;
            let settings = ctx.settings.borrow().clone();
            if !address.ip().is_loopback() && !settings.websocket.authenticate {
                tracing::warn!(
                    target: logging::SECURITY,
                    "the API listens on {address} without authentication: anyone who can reach \
                     this port can control the plotter; set websocket.authenticate and an API key, \
                     or bind to localhost"
                );
            }
            // Several daemons on one PostgreSQL database: events say which daemon they come from.
            let name = ctx.ledger.lease().map(|(name, _)| name.to_owned());
            let hub = Arc::new(Hub::new(self.limits.client_queue).named(name));
            let api = Arc::new(Api {
                settings: ctx.settings.clone(),
                queue: self.queue,
                store: ctx.store.clone(),
                hooks: ctx.hooks.clone(),
                hub: Arc::clone(&hub),
                limiter: ConnectionLimiter::default(),
                connections: server::ConnectionTable::default(),
                shutdown: ctx.shutdown.clone(),
                started: Instant::now(),
                sampler: Mutex::new(system::Sampler::new()),
                next_id: AtomicU64::new(1),
                clients: Mutex::new(BTreeMap::new()),
                limits: self.limits,
                workspace: settings.workspace.clone(),
            });
            let stop = ctx.shutdown.stop_token();
            ctx.shutdown
                .spawn(fanout::run(hub, ctx.events.subscribe(), stop.clone()));
            ctx.shutdown
                .spawn(system_heartbeat(Arc::clone(&api), stop.clone()));
            let app = router(Arc::clone(&api));
            ctx.shutdown
                .spawn(server::serve(listener, app, Arc::clone(&api), stop));
            tracing::info!(
                "api: serving http://{address}/ (WebSocket ws://{address}/ws, web UI /)"
            );
            Ok(())
        }
        .boxed()
    }
}

impl Api {
    fn settings(&self) -> Arc<Settings> {
        self.settings.borrow().clone()
    }

    fn clients(&self) -> MutexGuard<'_, BTreeMap<u64, Channels>> {
        // Only inserts and removes happen under the lock; a poisoned map is still consistent.
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The daemon's health now.
    async fn system_status(&self) -> SystemStatus {
        let mut problems = Vec::new();
        let (active, waiting) = match self.store.state_counts().await {
            Ok(counts) => counts.iter().fold((0, 0), |(a, w), (s, n)| {
                if s.holds_device() {
                    (a + n, w)
                } else if s.is_terminal() {
                    (a, w)
                } else {
                    (a, w + n)
                }
            }),
            Err(e) => {
                problems.push(format!("database: {e}"));
                (0, 0)
            }
        };
        for d in self.hub.devices() {
            use crate::events::DeviceState;
            match d.status {
                DeviceState::Error => problems.push(format!(
                    "device {}: {}",
                    d.device_id,
                    d.error_message.as_deref().unwrap_or("error")
                )),
                DeviceState::Disconnected | DeviceState::Offline => problems.push(format!(
                    "device {} is {} (it last answered at {}): {}",
                    d.device_id,
                    if d.status == DeviceState::Offline {
                        "offline"
                    } else {
                        "disconnected"
                    },
                    d.last_heartbeat,
                    d.error_message.as_deref().unwrap_or("it does not answer")
                )),
                DeviceState::Connected | DeviceState::Busy => {}
            }
        }
        let usage = self
            .sampler
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .sample();
        SystemStatus {
            status: if problems.is_empty() {
                "healthy"
            } else {
                "degraded"
            },
            problems,
            daemon_version: env!("CARGO_PKG_VERSION"),
            uptime: self.started.elapsed().as_secs_f64(),
            active_jobs: active,
            queue_length: waiting,
            memory_usage: usage.memory_usage,
            cpu_usage: usage.cpu_usage,
            memory_rss_bytes: usage.rss_bytes,
            connections: self.limiter.current(),
        }
    }
}

/// One HTTP endpoint, as the router registers it: `router` registers exactly [`Endpoint::ALL`],
/// so this list is the API's list of routes (`docs/api.md` documents each, and a test in
/// `plotty-host/tests/api_doc.rs` holds the two together).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Endpoint {
    /// `GET /`: the web UI's page.
    Dashboard,
    /// `GET /ui/{name}`: the web UI's scripts and styles.
    UiAsset,
    /// `GET /status`: the daemon's health, queue and devices.
    Status,
    /// `GET /ws`: the WebSocket stream.
    WebSocket,
    /// `GET /api/jobs`: the job list.
    ListJobs,
    /// `POST /api/jobs`: submit SVG files.
    SubmitJob,
    /// `GET /api/jobs/{id}`: one job with its layers and events.
    Job,
    /// `DELETE /api/jobs/{id}`: delete a finished job.
    DeleteJob,
    /// `GET /api/jobs/{id}/preview.svg`: what the job draws.
    JobPreview,
    /// `POST /api/jobs/{id}/{action}`: start, pause, resume, abort, cancel, retry.
    JobAction,
    /// `GET /api/devices`: the devices.
    Devices,
    /// `POST /api/devices/{id}/{action}`: home, walk, pen and motor actions.
    DeviceAction,
    /// `GET /api/hooks`: the configured hooks.
    Hooks,
    /// `POST /api/hooks/test`: run one state's hooks on a sample job.
    TestHooks,
    /// `GET /api/options`: the per-job plot options and the daemon's defaults for them.
    PlotOptions,
    /// `GET /api/presets`: the saved presets of plot options.
    Presets,
    /// `PUT /api/presets/{name}`: save a preset.
    SavePreset,
    /// `DELETE /api/presets/{name}`: delete a preset.
    DeletePreset,
}

impl Endpoint {
    /// Every endpoint, in the order the router registers them.
    pub const ALL: [Self; 18] = [
        Self::Dashboard,
        Self::UiAsset,
        Self::Status,
        Self::WebSocket,
        Self::ListJobs,
        Self::SubmitJob,
        Self::Job,
        Self::DeleteJob,
        Self::JobPreview,
        Self::JobAction,
        Self::Devices,
        Self::DeviceAction,
        Self::Hooks,
        Self::TestHooks,
        Self::PlotOptions,
        Self::Presets,
        Self::SavePreset,
        Self::DeletePreset,
    ];

    /// The HTTP method (`/ws` is served for any method and refuses all but `GET`).
    pub const fn method(self) -> &'static str {
        match self {
            Self::SubmitJob | Self::JobAction | Self::DeviceAction | Self::TestHooks => "POST",
            Self::SavePreset => "PUT",
            Self::DeleteJob | Self::DeletePreset => "DELETE",
            Self::Dashboard
            | Self::UiAsset
            | Self::Status
            | Self::WebSocket
            | Self::ListJobs
            | Self::Job
            | Self::JobPreview
            | Self::Devices
            | Self::Hooks
            | Self::PlotOptions
            | Self::Presets => "GET",
        }
    }

    /// The path pattern, in axum's syntax (`{id}` is a path parameter).
    pub const fn path(self) -> &'static str {
        match self {
            Self::Dashboard => "/",
            Self::UiAsset => "/ui/{name}",
            Self::Status => "/status",
            Self::WebSocket => "/ws",
            Self::ListJobs | Self::SubmitJob => "/api/jobs",
            Self::Job | Self::DeleteJob => "/api/jobs/{id}",
            Self::JobPreview => "/api/jobs/{id}/preview.svg",
            Self::JobAction => "/api/jobs/{id}/{action}",
            Self::Devices => "/api/devices",
            Self::DeviceAction => "/api/devices/{id}/{action}",
            Self::Hooks => "/api/hooks",
            Self::TestHooks => "/api/hooks/test",
            Self::PlotOptions => "/api/options",
            Self::Presets => "/api/presets",
            Self::SavePreset | Self::DeletePreset => "/api/presets/{name}",
        }
    }

    /// The handler (an exhaustive match: a new endpoint cannot be served without being listed).
    fn handler(self) -> MethodRouter<Arc<Api>> {
        match self {
            Self::Dashboard => get(ui::index),
            Self::UiAsset => get(ui::asset),
            Self::Status => get(http::status),
            Self::WebSocket => any(upgrade::websocket),
            Self::ListJobs => get(http::list_jobs),
            // Uploads are bounded by websocket.max_upload_size in the handler, not axum's 2 MB.
            Self::SubmitJob => post(http::submit).layer(DefaultBodyLimit::disable()),
            Self::Job => get(http::job),
            Self::DeleteJob => delete(http::delete_job),
            Self::JobPreview => get(http::preview),
            Self::JobAction => post(http::job_action),
            Self::Devices => get(http::devices),
            Self::DeviceAction => post(http::device_action),
            Self::Hooks => get(http::hooks),
            Self::TestHooks => post(http::test_hooks),
            Self::PlotOptions => get(presets::options),
            Self::Presets => get(presets::list),
            Self::SavePreset => put(presets::save),
            Self::DeletePreset => delete(presets::delete),
        }
    }
}

/// The API's routes: [`Endpoint::ALL`] and nothing else (routes on one path are merged by axum).
fn router(api: Arc<Api>) -> Router {
    Endpoint::ALL
        .into_iter()
        .fold(Router::new(), |r, e| r.route(e.path(), e.handler()))
        .fallback(http::not_found)
        .method_not_allowed_fallback(http::method_not_allowed)
        .layer(middleware::from_fn_with_state(Arc::clone(&api), guard))
        .with_state(api)
}

/// The host, origin, API key and cross-site checks, before anything else.
async fn guard(State(api): State<Arc<Api>>, req: Request, next: Next) -> Response {
    let settings = api.settings();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "?".to_owned(), |c| c.0.to_string());
    let path = req.uri().path().to_owned();
    // With an API key a rebinding page is refused for want of the key, and clients may use any
    // name for the daemon; without one, the name is all that tells the daemon's own pages from a
    // page of another site whose name now points here.
    if !settings.websocket.authenticate {
        let local = req
            .extensions()
            .get::<server::LocalAddr>()
            .and_then(|l| l.0);
        if let Err(host) = auth::check_host(
            req.headers(),
            &settings.websocket.host,
            local,
            &settings.websocket.allowed_hosts,
        ) {
            tracing::warn!(
                target: logging::SECURITY,
                %peer, %host, %path,
                "refused a request for another host name (DNS rebinding?): websocket.allowed_hosts"
            );
            return http::error(
                StatusCode::MISDIRECTED_REQUEST,
                "HOST_NOT_ALLOWED",
                format!(
                    "the Host header names `{host}`, which is not this daemon's address: a web \
                     page could be reaching it through DNS rebinding. Use localhost or the listen \
                     address, add the name to websocket.allowed_hosts (e.g. `allowed_hosts: \
                     [plotter.local]`), or set websocket.authenticate with an API key"
                ),
            );
        }
    }
    if let Err(origin) = auth::check_origin(req.headers(), &settings.websocket.allowed_origins) {
        tracing::warn!(
            target: logging::SECURITY,
            %peer, %origin, %path,
            "refused a request from a page of another site (websocket.allowed_origins)"
        );
        return http::error(
            StatusCode::FORBIDDEN,
            "ORIGIN_NOT_ALLOWED",
            format!(
                "pages from {origin} may not use this daemon: add the origin to \
                 websocket.allowed_origins, or open the web UI from the daemon's own address"
            ),
        );
    }
    // The web UI's own files hold no data, and the page must load to ask for the key.
    let public_page = matches!(*req.method(), Method::GET | Method::HEAD)
        && (path == "/" || path.starts_with("/ui/"));
    if settings.websocket.authenticate && !public_page {
        let expected = settings
            .websocket
            .api_key
            .as_ref()
            .map_or("", |k| k.expose());
        let refusal = match auth::presented_key(req.uri(), req.headers()) {
            None => Some(("AUTH_REQUIRED", "no API key")),
            Some(k) if expected.is_empty() || !auth::keys_match(expected, &k) => {
                Some(("AUTH_FAILED", "wrong API key"))
            }
            Some(_) => None,
        };
        if let Some((code, what)) = refusal {
            tracing::warn!(
                target: logging::SECURITY,
                %peer, %path,
                "authentication failed: {what}"
            );
            let mut resp = http::error(
                StatusCode::UNAUTHORIZED,
                code,
                format!("{what}: {}", auth::HOW_TO_AUTHENTICATE),
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"plotty\""),
            );
            return resp;
        }
        // An authenticated connection is never the one closed to make room for a newcomer.
        if let Some(conn) = req.extensions().get::<server::ConnHandle>() {
            conn.trust();
        }
    }
    if auth::is_cross_site_capable(req.method(), req.headers()) {
        tracing::warn!(
            target: logging::SECURITY,
            %peer, %path, method = %req.method(),
            "refused a state-changing request without X-Plotty-Request (cross-site form?)"
        );
        return http::error(
            StatusCode::FORBIDDEN,
            "PLOTTY_HEADER_REQUIRED",
            auth::HOW_TO_SEND_STATE_CHANGES,
        );
    }
    next.run(req).await.into_response()
}

/// True when a client that presented `key` may still use the API under `settings` (the key may
/// have changed on a reload).
pub(crate) fn key_still_valid(settings: &Settings, key: Option<&str>) -> bool {
    if !settings.websocket.authenticate {
        return true;
    }
    let expected = settings
        .websocket
        .api_key
        .as_ref()
        .map_or("", |k| k.expose());
    !expected.is_empty() && key.is_some_and(|k| auth::keys_match(expected, k))
}

/// Sends `system_status` to the `system` channel every heartbeat interval.
async fn system_heartbeat(api: Arc<Api>, stop: tokio_util::sync::CancellationToken) {
    loop {
        let every = api.settings().websocket.heartbeat_interval;
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
        let status = api.system_status().await;
        api.hub.publish(&ServerMessage::SystemStatus(status));
    }
}

/// Jobs waiting in the queue (every state from `NEW` to `READY`).
const WAITING: [JobState; 5] = [
    JobState::New,
    JobState::Queued,
    JobState::Analyzed,
    JobState::Optimized,
    JobState::Ready,
];

/// Jobs holding a device.
const ACTIVE: [JobState; 3] = [JobState::Armed, JobState::Plotting, JobState::Paused];

/// An API whose queue actor is gone (the queue cannot answer): tests of what clients are told.
#[cfg(test)]
pub(crate) fn api_without_queue(dir: &std::path::Path) -> Arc<Api> {
    let (queue, actor) = crate::queue::channel();
    drop(actor);
    let settings = Arc::new(Settings::defaults_for(dir));
    let (_tx, rx) = tokio::sync::watch::channel(Arc::clone(&settings));
    let (store, _) = crate::store::Store::open_in_memory().unwrap();
    let shutdown = crate::shutdown::Coordinator::new().handle(Stage::Api);
    Arc::new(Api {
        settings: rx,
        queue,
        store: store.into(),
        hooks: HookRunner::new(
            crate::hooks::HookSet::new(BTreeMap::new()),
            shutdown.tracker().clone(),
        ),
        hub: Arc::new(Hub::new(16)),
        limiter: ConnectionLimiter::default(),
        connections: server::ConnectionTable::default(),
        shutdown,
        started: Instant::now(),
        sampler: Mutex::new(system::Sampler::new()),
        next_id: AtomicU64::new(1),
        clients: Mutex::new(BTreeMap::new()),
        limits: ApiLimits::default(),
        workspace: dir.to_path_buf(),
    })
}
