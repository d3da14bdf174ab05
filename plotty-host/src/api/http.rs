//! The HTTP endpoints: thin handlers that check the request, ask the queue (or the store, the hook
//! runner) and answer JSON. Errors are `{"error_code", "error_message"}` with a fitting status.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{Value, json};

use super::auth::query_param;
use super::protocol::{DeviceWire, PROTOCOL_VERSION, code};
use super::{ACTIVE, Api, WAITING, views};
use crate::job::{JobId, JobState};
use crate::queue::{DeviceAction, JobAction, ListFilter, QueueError, Submission, SvgSource};
use crate::settings::RunOptions;

/// Content types taken as an SVG body.
const SVG_TYPES: [&str; 6] = [
    "image/svg+xml",
    "application/xml",
    "text/xml",
    "text/plain",
    "application/octet-stream",
    "",
];

/// Options of `POST /api/jobs` (query string or form fields).
#[derive(Default)]
struct Options {
    name: Option<String>,
    paper: Option<String>,
    layers: Option<String>,
    priority: i32,
    start: bool,
    /// What the job asks of its plotter (`device`, `device_model`, `tags`).
    requirements: crate::devices::registry::Requirements,
    /// The plot options, axicli's names (`speed_pendown=30`, `copies=2`, …).
    run: RunOptions,
}

/// An error answer before it becomes a response (small, so it can travel in a `Result`).
pub(super) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.status, self.code, self.message)
    }
}

impl From<ApiError> for Response {
    fn from(e: ApiError) -> Self {
        e.into_response()
    }
}

/// A JSON error response.
pub(super) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error_code": code, "error_message": message.into() })),
    )
        .into_response()
}

fn queue_error(e: &QueueError) -> Response {
    let status = match e {
        QueueError::UnknownJob(_) | QueueError::UnknownDevice { .. } => StatusCode::NOT_FOUND,
        QueueError::InvalidState(_) | QueueError::DeviceBusy(_) => StatusCode::CONFLICT,
        QueueError::Invalid(_) => StatusCode::BAD_REQUEST,
        QueueError::NoDevice(_) | QueueError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        QueueError::Device { .. } => StatusCode::BAD_GATEWAY,
        QueueError::DiskFull(_) => StatusCode::INSUFFICIENT_STORAGE,
        QueueError::Io(_) | QueueError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.code(), e.to_string())
}

fn job_id(text: &str) -> Result<JobId, ApiError> {
    JobId::parse(text).map_err(|e| ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "INVALID_JOB_ID",
        message: e.to_string(),
    })
}

/// `GET /status`: the original's fields (`connections`, `max_connections`, `subscriptions`) plus
/// the HTTP connections open and their cap, the daemon's health, the queue and the device; a device held by a job its task is not running
/// (one paused by a crash or a shutdown) has `held_by: {job_id, state}`.
pub(super) async fn status(State(api): State<Arc<Api>>) -> Response {
    let health = api.system_status().await;
    let settings = api.settings();
    let subscriptions: BTreeMap<String, Vec<&str>> = api
        .clients()
        .iter()
        .map(|(id, ch)| (id.to_string(), ch.names()))
        .collect();
    // The queue and the device are read, not assumed: an empty list must mean "none", so a
    // store or queue that cannot answer is an error naming it, never an empty queue.
    let counts = match api.store.state_counts().await {
        Ok(c) => c,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "DATABASE_ERROR",
                format!("cannot read the job counts from the database: {e}"),
            );
        }
    };
    let by_state: BTreeMap<&str, u64> = counts.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    let queue_failed = |what: &str, e: QueueError| {
        let status = match e {
            QueueError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        error(status, e.code(), format!("cannot read {what}: {e}"))
    };
    let running = api
        .queue
        .list(ListFilter {
            states: ACTIVE.to_vec(),
            limit: Some(20),
        })
        .await;
    let running: Vec<Value> = match running {
        Ok(jobs) => jobs
            .iter()
            .map(|j| views::job(j, api.hub.progress(&j.id).as_ref()))
            .collect(),
        Err(e) => return queue_failed("the running jobs from the queue", e),
    };
    let next = api
        .queue
        .list(ListFilter {
            states: WAITING.to_vec(),
            limit: Some(5),
        })
        .await;
    let next: Vec<Value> = match next {
        Ok(jobs) => jobs.iter().map(|j| views::job(j, None)).collect(),
        Err(e) => return queue_failed("the waiting jobs from the queue", e),
    };
    // A device whose task is idle may still be held by a job (paused by a crash or a shutdown).
    let holders = match api.queue.holders().await {
        Ok(h) => h,
        Err(e) => return queue_failed("the devices' holders from the queue", e),
    };
    let devices = match api.queue.devices().await {
        Ok(d) => d,
        Err(e) => return queue_failed("the devices from the queue", e),
    };
    let devices: Vec<Value> = devices
        .iter()
        .map(|d| {
            let mut v = serde_json::to_value(DeviceWire::from(d)).unwrap_or(Value::Null);
            if let (Some(obj), Some(job_id)) = (v.as_object_mut(), holders.get(&d.device_id)) {
                let state = running
                    .iter()
                    .find(|j| j["id"].as_str() == Some(job_id.as_str()))
                    .map_or(Value::Null, |j| j["state"].clone());
                obj.insert(
                    "held_by".into(),
                    json!({ "job_id": job_id, "state": state }),
                );
            }
            v
        })
        .collect();
    Json(json!({
        "connections": health.connections,
        "max_connections": settings.websocket.max_connections,
        "http_connections": api.connections.len(),
        "max_http_connections": settings.websocket.max_http_connections,
        "subscriptions": subscriptions,
        "status": health.status,
        "problems": health.problems,
        "daemon_version": health.daemon_version,
        "protocol_version": PROTOCOL_VERSION,
        "uptime": health.uptime,
        "memory_usage": health.memory_usage,
        "cpu_usage": health.cpu_usage,
        "memory_rss_bytes": health.memory_rss_bytes,
        "authenticate": settings.websocket.authenticate,
        "queue": {
            "length": health.queue_length,
            "active": health.active_jobs,
            "by_state": by_state,
            "running": running,
            "next": next,
        },
        "device": devices.first().cloned(),
        "devices": devices,
    }))
    .into_response()
}

/// `GET /api/jobs[?state=QUEUED,READY][&limit=N]`.
pub(super) async fn list_jobs(State(api): State<Arc<Api>>, uri: Uri) -> Response {
    let mut filter = ListFilter::default();
    if let Some(states) = query_param(&uri, "state") {
        for s in states.split(',').filter(|s| !s.trim().is_empty()) {
            match s.parse::<JobState>() {
                Ok(st) => filter.states.push(st),
                Err(_) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        code::INVALID_FIELD,
                        format!(
                            "`{s}` is not a job state (NEW, QUEUED, …, COMPLETED, ABORTED, FAILED)"
                        ),
                    );
                }
            }
        }
    }
    if let Some(limit) = query_param(&uri, "limit") {
        match limit.parse::<usize>() {
            Ok(n) => filter.limit = Some(n),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    code::INVALID_FIELD,
                    format!("`limit={limit}` is not a count"),
                );
            }
        }
    }
    match api.queue.list(filter).await {
        Ok(jobs) => {
            let list: Vec<Value> = jobs
                .iter()
                .map(|j| views::job(j, api.hub.progress(&j.id).as_ref()))
                .collect();
            Json(json!({ "count": list.len(), "jobs": list })).into_response()
        }
        Err(e) => queue_error(&e),
    }
}

/// `POST /api/jobs`: an SVG body, or a multipart form with one or more files.
pub(super) async fn submit(State(api): State<Arc<Api>>, req: Request) -> Response {
    let limit = api.settings().websocket.max_upload_size;
    // Refused before a byte of the body is read.
    if let Some(len) = content_length(req.headers())
        && len > limit
    {
        return too_large(limit);
    }
    let mut opts = match Options::from_query(req.uri()) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let capped = usize::try_from(limit).unwrap_or(usize::MAX);
    let files = if ctype == "multipart/form-data" {
        let req = req.map(|b| Body::new(Limited::new(b, capped)));
        match form_files(req, &mut opts).await {
            Ok(f) => f,
            Err(r) => return r.into_response(),
        }
    } else if SVG_TYPES.contains(&ctype.as_str()) {
        match Limited::new(req.into_body(), capped).collect().await {
            Ok(body) => vec![(None, body.to_bytes())],
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(limit),
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_BODY",
                    format!("cannot read the request body: {e}"),
                );
            }
        }
    } else {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            format!(
                "cannot take `{ctype}`: send the SVG as the body (Content-Type: image/svg+xml) or \
                 as a file in a multipart/form-data form"
            ),
        );
    };
    if files.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "NO_FILE",
            "the form has no file: send the SVG in a field named `file`",
        );
    }
    // Checked once, before any job exists: `copies=0` or a speed out of range creates nothing.
    if let Err(e) = api.settings().with_run(&opts.run) {
        return error(StatusCode::BAD_REQUEST, code::INVALID_FIELD, e.to_string());
    }
    let single = files.len() == 1;
    let mut created = Vec::new();
    // Each copy is a job of its own (`copies=N`), plotted in turn like any other.
    let copies = opts.run.copies();
    let files = files
        .into_iter()
        .flat_map(|f| std::iter::repeat_n(f, copies as usize));
    for (file_name, bytes) in files {
        let name = if single {
            opts.name.clone().or(file_name)
        } else {
            file_name.or_else(|| opts.name.clone())
        };
        let submission = Submission {
            svg: SvgSource::Bytes(bytes),
            name,
            paper: opts.paper.clone(),
            layers: opts.layers.clone(),
            priority: opts.priority,
            start: opts.start,
            options: RunOptions {
                copies: None,
                ..opts.run.clone()
            },
            requirements: opts.requirements.clone(),
        };
        match api.queue.submit(submission).await {
            Ok(job) => created.push(views::job(&job, None)),
            Err(e) if created.is_empty() => return queue_error(&e),
            Err(e) => {
                let mut r = queue_error(&e);
                if let Ok(body) = serde_json::to_vec(&json!({
                    "error_code": e.code(),
                    "error_message": format!("{e} (the jobs before it were created)"),
                    "jobs": created,
                })) {
                    *r.body_mut() = Body::from(body);
                }
                return r;
            }
        }
    }
    let (warnings, errors) = paper_findings(&created);
    (
        StatusCode::CREATED,
        Json(json!({
            "count": created.len(),
            "jobs": created,
            "warnings": warnings,
            "errors": errors,
        })),
    )
        .into_response()
}

/// The paper check's warnings and errors of each created job (`crate::paper::check`, made at
/// submission), as `name: text`, for the client to show at once.
fn paper_findings(jobs: &[Value]) -> (Vec<String>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for j in jobs {
        let name = j["name"].as_str().unwrap_or("?");
        let check = &j["metadata"]["paper_check"];
        for (key, list) in [("warnings", &mut warnings), ("errors", &mut errors)] {
            for text in check[key].as_array().into_iter().flatten() {
                if let Some(t) = text.as_str() {
                    list.push(format!("{name}: {t}"));
                }
            }
        }
    }
    (warnings, errors)
}

/// `GET /api/jobs/{id}`.
pub(super) async fn job(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Response {
    let id = match job_id(&id) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    match api.queue.job(id.clone()).await {
        Ok(d) => Json(views::details(&d, api.hub.progress(&id).as_ref())).into_response(),
        Err(e) => queue_error(&e),
    }
}

/// `DELETE /api/jobs/{id}`.
pub(super) async fn delete_job(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Response {
    let id = match job_id(&id) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    match api.queue.delete(id).await {
        Ok(j) => Json(json!({ "deleted": j.id, "job": views::job(&j, None) })).into_response(),
        Err(e) => queue_error(&e),
    }
}

/// `GET /api/jobs/{id}/preview.svg[?pen_up=1]`: what the job draws (see [`super::preview`]).
pub(super) async fn preview(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    let id = match job_id(&id) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    let job = match api.queue.job(id.clone()).await {
        Ok(d) => d.job,
        Err(e) => return queue_error(&e),
    };
    // Its stored copy, or on a farm the SVG in the database (a job submitted to another daemon).
    let jobs_dir = api.settings().jobs_dir();
    let source =
        match crate::farm::source::local_path_in(&api.store, api.hub.name(), &jobs_dir, &job).await
        {
            Ok(path) => path,
            Err(crate::farm::source::SourceError::Missing) => {
                return error(
                    StatusCode::NOT_FOUND,
                    "PREVIEW_UNAVAILABLE",
                    format!("job {id} has no stored SVG"),
                );
            }
            Err(e) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_ERROR",
                    e.to_string(),
                );
            }
        };
    // The job's own options (model, page turn, speeds…), when it was added with them.
    let options: RunOptions = job
        .metadata
        .get("options")
        .and_then(|o| serde_json::from_value(o.clone()).ok())
        .unwrap_or_default();
    let settings = api.settings();
    // Options were checked at submission; a config reloaded since may have moved a limit.
    let config = crate::plot::PlotConfig::for_run(&settings, &options)
        .unwrap_or_else(|_| crate::plot::PlotConfig::from_settings(&settings));
    let request = super::preview::Request {
        source,
        dir: settings.jobs_dir().join(id.as_str()),
        config,
        paper: crate::paper::of_job(&job.metadata, &settings),
        layers: job
            .metadata
            .get("layers")
            .and_then(Value::as_str)
            .map(str::to_owned),
        pen_up: query_param(&uri, "pen_up").is_some_and(|v| !matches!(v.as_str(), "0" | "false")),
    };
    match tokio::task::spawn_blocking(move || super::preview::render(&request)).await {
        Ok(Ok(svg)) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            svg,
        )
            .into_response(),
        Ok(Err(e)) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_SVG",
            e.to_string(),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            format!("rendering the preview failed: {e}"),
        ),
    }
}

/// `POST /api/jobs/{id}/{start|pause|resume|abort|cancel|retry}`.
pub(super) async fn job_action(
    State(api): State<Arc<Api>>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let id = match job_id(&id) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    let result = if action.eq_ignore_ascii_case("retry") {
        api.queue.retry(id).await
    } else {
        match action.parse::<JobAction>() {
            Ok(a) => api.queue.control(id, a).await,
            Err(_) => {
                return error(
                    StatusCode::NOT_FOUND,
                    "UNKNOWN_ACTION",
                    format!(
                        "`{action}` is not a job action: use start, pause, resume, abort, cancel or retry"
                    ),
                );
            }
        }
    };
    match result {
        Ok(j) => Json(views::job(&j, api.hub.progress(&j.id).as_ref())).into_response(),
        Err(e) => queue_error(&e),
    }
}

/// `GET /api/devices`: this daemon's plotters, then on a farm the other daemons' (as last
/// relayed), each with its `daemon` (on a farm); the others' have `remote: true` (read-only here).
pub(super) async fn devices(State(api): State<Arc<Api>>) -> Response {
    match api.queue.devices().await {
        Ok(list) => {
            let mut out: Vec<Value> = list
                .iter()
                .map(|d| device_object(DeviceWire::from(d), api.hub.name()))
                .collect();
            out.extend(
                api.hub
                    .remote_devices()
                    .iter()
                    .map(|r| device_object(DeviceWire::remote(&r.status), Some(&r.daemon))),
            );
            Json(json!({ "count": out.len(), "devices": out })).into_response()
        }
        Err(e) => queue_error(&e),
    }
}

/// A plotter `wire` as `GET /api/devices` lists it: marked with its `daemon` on a farm.
fn device_object(wire: DeviceWire, daemon: Option<&str>) -> Value {
    let mut v = serde_json::to_value(wire).unwrap_or(Value::Null);
    if let (Some(obj), Some(daemon)) = (v.as_object_mut(), daemon) {
        obj.insert("daemon".into(), json!(daemon));
    }
    v
}

/// `POST /api/devices/{id}/{home|pen-up|pen-down|toggle|motors-on|motors-off|align|clear-error}`,
/// `POST /api/devices/{id}/walk?x_mm=X&y_mm=Y` and
/// `POST /api/devices/{id}/pen-height?position=up|down&percent=P`.
pub(super) async fn device_action(
    State(api): State<Arc<Api>>,
    Path((id, action)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    let action = match action.parse::<DeviceAction>() {
        Ok(DeviceAction::Walk { .. }) => match walk_of(uri.query().unwrap_or("")) {
            Ok(a) => a,
            Err(e) => return error(StatusCode::BAD_REQUEST, code::INVALID_FIELD, e),
        },
        Ok(DeviceAction::PenHeight { .. }) => match pen_height_of(&uri) {
            Ok(a @ DeviceAction::PenHeight { down, tenths }) => {
                // The config file's rule for the height, as for a job's `pen_pos_*`: refused
                // here, before the device is asked.
                let percent = Some(f64::from(tenths) / 10.0);
                let trial = RunOptions {
                    pen_pos_up: percent.filter(|_| !down),
                    pen_pos_down: percent.filter(|_| down),
                    ..RunOptions::default()
                };
                if let Err(e) = api.settings().with_run(&trial) {
                    return error(StatusCode::BAD_REQUEST, code::INVALID_FIELD, e.to_string());
                }
                a
            }
            Ok(a) => a,
            Err(e) => return error(StatusCode::BAD_REQUEST, code::INVALID_FIELD, e),
        },
        Ok(a) => a,
        Err(e) => return error(StatusCode::NOT_FOUND, "UNKNOWN_ACTION", e),
    };
    // Another daemon's plotter (relayed): only that daemon drives it.
    if let Some(daemon) = api.hub.remote_daemon_of(&id) {
        return queue_error(&QueueError::InvalidState(format!(
            "plotter `{id}` is attached to daemon `{daemon}`: {} it there (another daemon's \
             plotters are read-only here)",
            action.as_str()
        )));
    }
    match api.queue.device(Some(id), action).await {
        Ok(r) => Json(json!({
            "device_id": r.device_id,
            "action": action.as_str(),
            "message": r.message,
        }))
        .into_response(),
        Err(e) => queue_error(&e),
    }
}

/// The distances of a walk from `x_mm=X&y_mm=Y` (either may be left out: 0).
fn walk_of(query: &str) -> Result<DeviceAction, String> {
    let (mut x, mut y) = (0.0, 0.0);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let target = match key {
            "x_mm" => &mut x,
            "y_mm" => &mut y,
            _ => {
                return Err(format!(
                    "walk takes x_mm and y_mm (millimetres), not `{key}`"
                ));
            }
        };
        *target = value
            .parse::<f64>()
            .map_err(|_| format!("walk: {key}=`{value}` is not a number of millimetres"))?;
    }
    DeviceAction::walk(x, y)
}

/// The trial height of `pen-height?position=up|down&percent=P`.
fn pen_height_of(uri: &Uri) -> Result<DeviceAction, String> {
    let down = match query_param(uri, "position").as_deref().map(str::trim) {
        Some("up") => false,
        Some("down") => true,
        Some(other) => {
            return Err(format!("pen-height: position=`{other}`: use up or down"));
        }
        None => return Err("pen-height takes position=up or down and percent=P".into()),
    };
    let Some(text) = query_param(uri, "percent") else {
        return Err("pen-height takes percent=P (0–100, the pen_pos_up/down scale)".into());
    };
    let percent = text
        .trim()
        .parse::<f64>()
        .map_err(|_| format!("pen-height: percent=`{text}` is not a number"))?;
    DeviceAction::pen_height(down, percent)
}

/// `GET /api/hooks`.
pub(super) async fn hooks(State(api): State<Arc<Api>>) -> Response {
    Json(views::hooks(&api.hooks.hooks())).into_response()
}

/// `POST /api/hooks/test` with `{"state": "COMPLETED"}` (or `?state=COMPLETED`): runs that state's
/// hooks against a sample job now.
pub(super) async fn test_hooks(State(api): State<Arc<Api>>, uri: Uri, body: Bytes) -> Response {
    let from_body = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => v.get("state").and_then(Value::as_str).map(str::to_owned),
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    code::INVALID_JSON,
                    format!("the body is not JSON ({e}): send {{\"state\": \"COMPLETED\"}}"),
                );
            }
        }
    };
    let Some(name) = from_body.or_else(|| query_param(&uri, "state")) else {
        return error(
            StatusCode::BAD_REQUEST,
            code::INVALID_FIELD,
            "name the state whose hooks to run: {\"state\": \"COMPLETED\"}",
        );
    };
    let Ok(state) = name.parse::<JobState>() else {
        return error(
            StatusCode::BAD_REQUEST,
            code::INVALID_FIELD,
            format!("`{name}` is not a job state"),
        );
    };
    let report = api.hooks.test(state, &api.workspace).await;
    Json(views::hooks_report(&report)).into_response()
}

/// Any other path.
pub(super) async fn not_found(uri: Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!(
            "no endpoint {}: see /status, /api/jobs, /api/devices, /api/hooks, /api/options, \
             /api/presets, /ws and the web UI at /",
            uri.path()
        ),
    )
}

/// A known path with the wrong method.
pub(super) async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "this endpoint does not take that method",
    )
}

fn too_large(limit: u64) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        format!("the upload is larger than websocket.max_upload_size ({limit} bytes)"),
    )
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The files of a multipart form (field with a file name, or named `file`/`svg`); other fields
/// named like the options set them.
async fn form_files(
    req: Request,
    opts: &mut Options,
) -> Result<Vec<(Option<String>, Bytes)>, Response> {
    let mp_error = |e: axum::extract::multipart::MultipartError| {
        let status = e.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "PAYLOAD_TOO_LARGE"
        } else {
            "INVALID_FORM"
        };
        error(
            status,
            code,
            format!("cannot read the form: {}", e.body_text()),
        )
    };
    let mut form = Multipart::from_request(req, &())
        .await
        .map_err(|e| error(e.status(), "INVALID_FORM", e.body_text()))?;
    let mut files = Vec::new();
    while let Some(field) = form.next_field().await.map_err(mp_error)? {
        let name = field.name().unwrap_or("").to_owned();
        let file_name = field.file_name().map(str::to_owned);
        if file_name.is_some() || name == "file" || name == "svg" {
            let bytes = field.bytes().await.map_err(mp_error)?;
            files.push((file_name, bytes));
        } else if ["name", "paper", "layers", "priority", "start"].contains(&name.as_str())
            || RunOptions::NAMES.contains(&name.as_str())
        {
            let value = field.text().await.map_err(mp_error)?;
            opts.set(&name, &value)?;
        }
    }
    Ok(files)
}

impl Options {
    fn from_query(uri: &Uri) -> Result<Self, ApiError> {
        let mut o = Self::default();
        for key in [
            "name",
            "paper",
            "layers",
            "priority",
            "start",
            "device",
            "device_model",
            "tags",
            "tag",
        ]
        .into_iter()
        .chain(RunOptions::NAMES)
        {
            if let Some(v) = query_param(uri, key) {
                o.set(key, &v)?;
            }
        }
        Ok(o)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), ApiError> {
        let bad = |message: String| ApiError {
            status: StatusCode::BAD_REQUEST,
            code: code::INVALID_FIELD,
            message,
        };
        match key {
            "name" => self.name = Some(value.to_owned()),
            "paper" => self.paper = Some(value.to_owned()),
            "layers" => self.layers = Some(value.to_owned()),
            "device" => {
                let d = value.trim();
                self.requirements.device = (!d.is_empty()).then(|| d.to_owned());
            }
            // The model the plotter must be; `model` is the run option (what to plan for).
            "device_model" => {
                let m = value.trim();
                self.requirements.model = if m.is_empty() {
                    None
                } else {
                    Some(m.parse().map_err(|_| {
                        bad(format!(
                            "`device_model={value}` is not an AxiDraw model number (1–7)"
                        ))
                    })?)
                };
            }
            // `tags=a3,black`, or one `tag` field per tag in a form.
            "tags" | "tag" => self.requirements.tags.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
            ),
            "priority" => {
                self.priority = value
                    .trim()
                    .parse()
                    .map_err(|_| bad(format!("`priority={value}` is not a whole number")))?;
            }
            "start" => {
                self.start = match value.trim().to_ascii_lowercase().as_str() {
                    "" | "1" | "true" | "yes" | "on" => true,
                    "0" | "false" | "no" | "off" => false,
                    _ => return Err(bad(format!("`start={value}`: use true or false"))),
                };
            }
            _ => self.run.set(key, value).map_err(bad)?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15: a submission names a plotter and tags, in the query or as form fields.
    #[test]
    fn submissions_name_a_plotter_and_tags() {
        let uri: Uri = "/api/jobs?device=left&tags=a3,%20red&model=2&device_model=3"
            .parse()
            .unwrap();
        let mut o = Options::from_query(&uri).unwrap_or_else(|_| panic!("parsed"));
        assert_eq!(o.requirements.device.as_deref(), Some("left"));
        assert_eq!(o.requirements.tags, ["a3", "red"]);
        assert_eq!(o.run.model, Some(2), "`model` stays the run option");
        assert_eq!(o.requirements.model, Some(3));
        assert!(o.set("tag", "black").is_ok());
        assert_eq!(o.requirements.tags, ["a3", "red", "black"]);
    }

    /// `GET /api/devices`'s object of another daemon's plotter (`remote`, its `daemon`), and of
    /// this daemon's (no `remote`, its `daemon` only on a farm).
    #[test]
    fn devices_are_listed_with_their_daemon() {
        let status = crate::events::DeviceStatus {
            device_id: "left".into(),
            device_type: "axidraw".into(),
            // Another daemon's plotter never has one (not relayed).
            port: None,
            tags: vec!["a3".into()],
            status: crate::events::DeviceState::Busy,
            firmware_version: Some("EBB 3.0.2".into()),
            pen_up: Some(false),
            position_mm: Some((1.5, 2.0)),
            current_job_id: Some(JobId::parse("0a3f5c2e9b1d").unwrap()),
            error_count: 1,
            error_message: Some("stalled".into()),
            last_heartbeat: "2026-12-06T12:00:00Z".into(),
            uptime_seconds: Some(3.0),
            notice: None,
            motor_supply: Some(crate::events::MotorSupply {
                reading: 812,
                low: false,
            }),
            pen_servo: None,
        };
        let mut want = json!({
            "device_id": "left",
            "device_type": "axidraw",
            "port": null,
            "tags": ["a3"],
            "status": "busy",
            "firmware_version": "EBB 3.0.2",
            "pen_up": false,
            "position": { "x": 1.5, "y": 2.0 },
            "current_job_id": "0a3f5c2e9b1d",
            "error_count": 1,
            "error_message": "stalled",
            "last_heartbeat": "2026-12-06T12:00:00Z",
            "uptime_seconds": 3.0,
            "simulated": false,
            "notice": null,
            "motor_supply": { "reading": 812, "low": false },
            "remote": true,
            "metadata": { "firmware_version": "EBB 3.0.2" },
            "daemon": "a",
        });
        assert_eq!(device_object(DeviceWire::remote(&status), Some("a")), want);
        let own = want.as_object_mut().unwrap();
        own.remove("remote");
        own.insert("daemon".into(), json!("b"));
        assert_eq!(device_object(DeviceWire::from(&status), Some("b")), want);
        want.as_object_mut().unwrap().remove("daemon");
        assert_eq!(device_object(DeviceWire::from(&status), None), want);
    }

    #[tokio::test]
    async fn status_says_when_the_queue_cannot_answer() {
        let dir = tempfile::tempdir().unwrap();
        let response = status(State(crate::api::api_without_queue(dir.path()))).await;
        // Not 200 with an empty queue and no device: the queue did not answer.
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error_code"], "SHUTTING_DOWN", "{v}");
        let message = v["error_message"].as_str().unwrap();
        assert!(
            message.contains("cannot read the running jobs"),
            "{message}"
        );
    }
}
