//! The client commands other than `monitor`: one or two HTTP requests each, then text (or the
//! daemon's JSON with `--json`) on stdout.

use std::io::Write;

use bytes::Bytes;
use serde_json::{Value, json};

use super::format;
use super::http::HttpClient;
use super::{ClientError, Endpoint, emit, monitor};
use crate::cli::{AddArgs, ClientArgs, Command, DeviceArgs, DeviceCommand, JobIdArgs, JobsArgs};
use crate::exit::ExitCode;
use crate::job::JobId;

/// Runs `command` (a client command), writing to `out`.
pub(super) async fn run(command: Command, out: &mut dyn Write) -> Result<ExitCode, ClientError> {
    match command {
        Command::Add(a) => add(a, out).await,
        Command::Jobs(a) => jobs(a, out).await,
        Command::Job(a) => job(a, out).await,
        Command::Status(a) => status(a, out).await,
        Command::Start(a) => control(a, "start", out).await,
        Command::Pause(a) => control(a, "pause", out).await,
        Command::Resume(a) => control(a, "resume", out).await,
        Command::Abort(a) => control(a, "abort", out).await,
        Command::Cancel(a) => control(a, "cancel", out).await,
        Command::Retry(a) => control(a, "retry", out).await,
        Command::Delete(a) => delete(a, out).await,
        Command::Device(d) => device(d, out).await,
        Command::Monitor(m) => monitor::run(m, out).await,
        Command::Daemon(_)
        | Command::Check(_)
        | Command::Config(_)
        | Command::Plot(_)
        | Command::Completions(_)
        | Command::Man(_) => Err(ClientError::Input("not a client command".into())),
    }
}

fn client(args: &ClientArgs) -> Result<HttpClient, ClientError> {
    Ok(HttpClient::new(Endpoint::resolve(args)?))
}

fn print_json(out: &mut dyn Write, v: &Value) -> Result<ExitCode, ClientError> {
    let text = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    emit(out, &format!("{text}\n"))?;
    Ok(ExitCode::Success)
}

fn job_id(text: &str) -> Result<JobId, ClientError> {
    JobId::parse(text).map_err(|e| ClientError::Input(e.to_string()))
}

/// The job `text` names, and its record: the job with that id, else the one job whose id starts
/// with it (as git takes a commit by a prefix of its hash). No match keeps the daemon's "not
/// found"; several matches are an error that lists them.
async fn resolve_job(http: &HttpClient, text: &str) -> Result<(JobId, Value), ClientError> {
    let id = job_id(text)?;
    let not_found = match http.get(&format!("/api/jobs/{id}")).await {
        Ok(v) => return Ok((id, v)),
        Err(e @ ClientError::Api { status: 404, .. }) => e,
        Err(e) => return Err(e),
    };
    let all = http.get("/api/jobs").await?;
    let matching: Vec<&str> = all["jobs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|j| j["id"].as_str())
        .filter(|candidate| candidate.starts_with(text))
        .collect();
    match matching.as_slice() {
        [] => Err(not_found),
        [one] => {
            let id = job_id(one)?;
            let v = http.get(&format!("/api/jobs/{id}")).await?;
            Ok((id, v))
        }
        many => Err(ClientError::Input(format!(
            "`{text}` starts {} job ids ({}): give more of the id",
            many.len(),
            many.join(", ")
        ))),
    }
}

async fn add(a: AddArgs, out: &mut dyn Write) -> Result<ExitCode, ClientError> {
    // Every file is read first, so that a typo submits nothing.
    let mut files = Vec::with_capacity(a.files.len());
    let stdin = std::path::Path::new("-");
    if a.files.iter().filter(|p| p.as_path() == stdin).count() > 1 {
        return Err(ClientError::Input(
            "`-` (standard input) can be given once".into(),
        ));
    }
    for path in &a.files {
        let bytes = if path.as_path() == stdin {
            let read = tokio::task::spawn_blocking(|| {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes).map(|_| bytes)
            })
            .await
            .map_err(|e| ClientError::Input(format!("cannot read standard input: {e}")))?;
            read.map_err(|e| ClientError::Input(format!("cannot read standard input: {e}")))?
        } else {
            tokio::fs::read(path)
                .await
                .map_err(|e| ClientError::Input(format!("cannot read {}: {e}", path.display())))?
        };
        let path = if path.as_path() == stdin {
            std::path::Path::new("stdin.svg")
        } else {
            path.as_path()
        };
        let name = match (&a.name, a.files.len()) {
            (Some(n), 1) => n.clone(),
            (Some(n), _) => format!(
                "{n} ({})",
                path.file_name()
                    .map_or_else(String::new, |f| f.to_string_lossy().into_owned())
            ),
            (None, _) => path
                .file_name()
                .map_or_else(|| "upload.svg".into(), |f| f.to_string_lossy().into_owned()),
        };
        files.push((name, Bytes::from(bytes)));
    }
    // Parsed here (a model name), checked against the settings' rules by the daemon.
    let options = crate::settings::RunOptions::from_args(&a.run, a.copies, a.page_delay)
        .map_err(|e| ClientError::Input(e.to_string()))?;
    let http = client(&a.client)?;
    let mut created = Vec::new();
    for (name, bytes) in files {
        let mut query = vec![("name", name), ("priority", a.priority.to_string())];
        if let Some(p) = &a.paper {
            query.push(("paper", p.clone()));
        }
        if let Some(l) = &a.layers {
            query.push(("layers", l.clone()));
        }
        if a.start {
            query.push(("start", "true".into()));
        }
        if let Some(d) = &a.device {
            query.push(("device", d.clone()));
        }
        if !a.tags.is_empty() {
            query.push(("tags", a.tags.join(",")));
        }
        if let Some(m) = a.device_model {
            query.push(("device_model", m.to_string()));
        }
        query.extend(options.to_pairs());
        let path = format!("/api/jobs?{}", format::query(&query));
        let reply = http.post(&path, Some(("image/svg+xml", bytes))).await?;
        // The daemon's paper check (the drawing against the paper and the plotter's travel).
        for (key, level) in [("warnings", "warning"), ("errors", "error")] {
            for text in reply[key].as_array().into_iter().flatten() {
                eprintln!("plotty: {level}: {}", text.as_str().unwrap_or("?"));
            }
        }
        for j in reply["jobs"].as_array().into_iter().flatten() {
            if !a.client.json {
                emit(out, &format!("{}\n", j["id"].as_str().unwrap_or("?")))?;
            }
            created.push(j.clone());
        }
    }
    if a.client.json {
        return print_json(out, &json!({ "count": created.len(), "jobs": created }));
    }
    Ok(ExitCode::Success)
}

async fn jobs(a: JobsArgs, out: &mut dyn Write) -> Result<ExitCode, ClientError> {
    let mut query = Vec::new();
    if let Some(s) = &a.state {
        query.push(("state", s.clone()));
    }
    if let Some(n) = a.limit {
        query.push(("limit", n.to_string()));
    }
    let path = if query.is_empty() {
        "/api/jobs".to_owned()
    } else {
        format!("/api/jobs?{}", format::query(&query))
    };
    let v = client(&a.client)?.get(&path).await?;
    if a.client.json {
        return print_json(out, &v);
    }
    emit(out, &format::jobs_table(&v))?;
    Ok(ExitCode::Success)
}

async fn job(a: JobIdArgs, out: &mut dyn Write) -> Result<ExitCode, ClientError> {
    let (_, v) = resolve_job(&client(&a.client)?, &a.id).await?;
    if a.client.json {
        return print_json(out, &v);
    }
    emit(out, &format::job_details(&v))?;
    Ok(ExitCode::Success)
}

async fn status(a: ClientArgs, out: &mut dyn Write) -> Result<ExitCode, ClientError> {
    let http = client(&a)?;
    let v = http.get("/status").await?;
    if a.json {
        return print_json(out, &v);
    }
    emit(out, &format::status(&v, &http.endpoint().address()))?;
    Ok(ExitCode::Success)
}

async fn control(a: JobIdArgs, action: &str, out: &mut dyn Write) -> Result<ExitCode, ClientError> {
    let http = client(&a.client)?;
    let (id, _) = resolve_job(&http, &a.id).await?;
    let v = http.post(&format!("/api/jobs/{id}/{action}"), None).await?;
    if a.client.json {
        return print_json(out, &v);
    }
    let new_id = v["id"].as_str().unwrap_or("?");
    if action == "retry" {
        emit(out, &format!("{new_id}\n"))?;
    } else {
        emit(out, &format!("{new_id} {}\n", format::state(&v)))?;
    }
    Ok(ExitCode::Success)
}

async fn delete(a: JobIdArgs, out: &mut dyn Write) -> Result<ExitCode, ClientError> {
    let http = client(&a.client)?;
    let (id, _) = resolve_job(&http, &a.id).await?;
    let v = http.delete(&format!("/api/jobs/{id}")).await?;
    if a.client.json {
        return print_json(out, &v);
    }
    emit(out, &format!("deleted {id}\n"))?;
    Ok(ExitCode::Success)
}

async fn device(d: DeviceCommand, out: &mut dyn Write) -> Result<ExitCode, ClientError> {
    let (args, action) = match d {
        DeviceCommand::Home(a) => (a, Some("home".to_owned())),
        DeviceCommand::Walk(w) => {
            if !(w.x_mm.is_finite() && w.y_mm.is_finite()) {
                return Err(ClientError::Input(format!(
                    "walk: {} {} is not a distance in millimetres",
                    w.x_mm, w.y_mm
                )));
            }
            let action = format!("walk?x_mm={}&y_mm={}", w.x_mm, w.y_mm);
            (w.device, Some(action))
        }
        DeviceCommand::PenUp(a) => (a, Some("pen-up".to_owned())),
        DeviceCommand::PenDown(a) => (a, Some("pen-down".to_owned())),
        DeviceCommand::Toggle(a) => (a, Some("toggle".to_owned())),
        DeviceCommand::Align(a) => (a, Some("align".to_owned())),
        DeviceCommand::MotorsOn(a) => (a, Some("motors-on".to_owned())),
        DeviceCommand::MotorsOff(a) => (a, Some("motors-off".to_owned())),
        DeviceCommand::Version(a) => (a, None),
        // `plotty::app` runs these itself: they talk to the boards, not to the daemon.
        DeviceCommand::List(_) | DeviceCommand::Name(_) => {
            return Err(ClientError::Input(
                "`plotty device list` and `plotty device name` do not go through the daemon".into(),
            ));
        }
    };
    let http = client(&args.client)?;
    let Some(action) = action else {
        return version(&http, &args, out).await;
    };
    let id = match &args.device {
        Some(id) => id.clone(),
        None => only_device(&http).await?,
    };
    let v = http
        .post(
            &format!("/api/devices/{}/{action}", format::encode(&id)),
            None,
        )
        .await?;
    if args.client.json {
        return print_json(out, &v);
    }
    emit(
        out,
        &format!("{}: {}\n", id, v["message"].as_str().unwrap_or(&action)),
    )?;
    Ok(ExitCode::Success)
}

async fn version(
    http: &HttpClient,
    args: &DeviceArgs,
    out: &mut dyn Write,
) -> Result<ExitCode, ClientError> {
    let v = http.get("/api/devices").await?;
    let devices: Vec<&Value> = v["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| {
            args.device
                .as_deref()
                .is_none_or(|want| d["device_id"].as_str() == Some(want))
        })
        .collect();
    if devices.is_empty() {
        return Err(no_device(args.device.as_deref()));
    }
    if args.client.json {
        return print_json(out, &json!({ "devices": devices }));
    }
    for d in devices {
        emit(
            out,
            &format!(
                "{}: {}\n",
                d["device_id"].as_str().unwrap_or("?"),
                d["firmware_version"]
                    .as_str()
                    .unwrap_or("unknown (not read from the board yet)")
            ),
        )?;
    }
    Ok(ExitCode::Success)
}

/// The id of the only device attached to this daemon (on a farm, the other daemons' plotters
/// it lists are not its own: `remote: true`).
async fn only_device(http: &HttpClient) -> Result<String, ClientError> {
    let v = http.get("/api/devices").await?;
    let ids: Vec<&str> = v["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["remote"].as_bool() != Some(true))
        .filter_map(|d| d["device_id"].as_str())
        .collect();
    match ids.as_slice() {
        [] => Err(no_device(None)),
        [one] => Ok((*one).to_owned()),
        many => Err(ClientError::Input(format!(
            "several devices are attached ({}): name one with --device",
            many.join(", ")
        ))),
    }
}

fn no_device(wanted: Option<&str>) -> ClientError {
    let message = match wanted {
        Some(id) => format!("no device `{id}` is attached to the daemon"),
        None => "no plotter attached: connect an AxiDraw, or set device.type: simulator, and \
                 restart the daemon"
            .to_owned(),
    };
    ClientError::Api {
        status: 503,
        code: "NO_DEVICE".into(),
        message,
    }
}
