//! `plotty monitor`: the WebSocket stream, live. Text mode shows a line per event and, on a
//! terminal, a progress bar per running plot; `--json` prints every message exactly as received, one
//! per line. When the connection drops (the daemon restarts) it reconnects with a growing pause
//! (0.5 s doubling up to 10 s) and subscribes again; notes about that go to stderr so that stdout
//! stays one JSON message per line.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{ClientError, Endpoint, emit, format, http};
use crate::api::protocol::Channels;
use crate::cli::MonitorArgs;
use crate::exit::ExitCode;
use crate::job::JobId;

/// First pause before reconnecting.
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// Longest pause before reconnecting.
const LAST_RETRY: Duration = Duration::from_secs(10);

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// How a connection ended.
enum End {
    /// Ctrl-C.
    Interrupted,
    /// The connection went away (why).
    Lost(String),
}

/// What the user sees.
struct View {
    json: bool,
    bars: Option<MultiProgress>,
    jobs: HashMap<String, ProgressBar>,
    shown_percent: HashMap<String, u64>,
    /// Alerts shown (timestamp, title, message): the backlog each (re)subscription replays shows
    /// once, not again after a reconnection.
    alerts: HashSet<(String, String, String)>,
}

/// Runs the monitor until Ctrl-C.
pub(super) async fn run(m: MonitorArgs, out: &mut dyn Write) -> Result<ExitCode, ClientError> {
    let endpoint = Endpoint::resolve(&m.client)?;
    let mut channels = Vec::new();
    for name in m
        .channels
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        if Channels::parse_name(name).is_none() {
            return Err(ClientError::Input(format!(
                "`{name}` is not a channel: use jobs, devices (or device), system or all"
            )));
        }
        channels.push(name.to_owned());
    }
    let job = match &m.job {
        Some(j) => Some(JobId::parse(j).map_err(|e| ClientError::Input(e.to_string()))?),
        None => None,
    };
    let subscribe = json!({ "type": "subscribe", "channels": channels, "job_id": job }).to_string();
    let tty = std::io::stdout().is_terminal() && !m.client.json;
    let mut view = View {
        json: m.client.json,
        bars: tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout())),
        jobs: HashMap::new(),
        shown_percent: HashMap::new(),
        alerts: HashSet::new(),
    };
    // One listener for the whole run: it keeps a Ctrl-C that arrives while the monitor is busy
    // (printing, connecting), where a fresh `ctrl_c()` per wait would miss it and, the default
    // action being replaced, leave the monitor running.
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|e| ClientError::Input(format!("cannot watch for Ctrl-C: {e}")))?;
    let mut pause = FIRST_RETRY;
    let mut connected_once = false;
    loop {
        match connect(&endpoint).await {
            Ok(ws) => {
                connected_once = true;
                pause = FIRST_RETRY;
                match session(ws, &subscribe, out, &mut view, &mut interrupt).await? {
                    End::Interrupted => return Ok(ExitCode::Success),
                    End::Lost(why) => note(&format!(
                        "connection to {} lost ({why}); reconnecting",
                        endpoint.address()
                    )),
                }
            }
            Err(e @ ClientError::Unauthorized { .. }) => return Err(e),
            Err(e @ ClientError::NotRunning { .. }) if !connected_once && !m.wait => return Err(e),
            Err(e) => note(&format!(
                "{e}; trying again in {:.1} s",
                pause.as_secs_f64()
            )),
        }
        tokio::select! {
            _ = interrupt.recv() => return Ok(ExitCode::Success),
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(LAST_RETRY);
    }
}

fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "plotty monitor: {text}");
}

/// Connects and completes the WebSocket handshake.
async fn connect(endpoint: &Endpoint) -> Result<Socket, ClientError> {
    let address = endpoint.address();
    let stream = http::connect(endpoint).await?;
    let mut request = format!("ws://{address}/ws")
        .into_client_request()
        .map_err(|e| ClientError::Input(format!("bad daemon address {address}: {e}")))?;
    if let Some(key) = &endpoint.api_key
        && let Ok(v) = HeaderValue::from_str(&format!("Bearer {key}"))
    {
        request.headers_mut().insert("authorization", v);
    }
    match tokio_tungstenite::client_async(request, stream).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(resp)) => {
            let body = resp
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice::<Value>(b).ok());
            let message = body
                .as_ref()
                .and_then(|v| v["error_message"].as_str())
                .map_or_else(|| format!("HTTP {}", resp.status()), str::to_owned);
            if resp.status().as_u16() == 401 {
                Err(ClientError::Unauthorized { address, message })
            } else {
                Err(ClientError::Api {
                    status: resp.status().as_u16(),
                    code: body
                        .as_ref()
                        .and_then(|v| v["error_code"].as_str())
                        .unwrap_or("HTTP_ERROR")
                        .to_owned(),
                    message,
                })
            }
        }
        Err(e) => Err(ClientError::Protocol {
            address,
            detail: e.to_string(),
        }),
    }
}

/// Subscribes and shows messages until the connection ends or Ctrl-C.
async fn session(
    mut ws: Socket,
    subscribe: &str,
    out: &mut dyn Write,
    view: &mut View,
    interrupt: &mut Signal,
) -> Result<End, ClientError> {
    if let Err(e) = ws.send(Message::text(subscribe)).await {
        return Ok(End::Lost(e.to_string()));
    }
    loop {
        let frame = tokio::select! {
            _ = interrupt.recv() => {
                let _ = ws.close(None).await;
                return Ok(End::Interrupted);
            }
            f = ws.next() => f,
        };
        match frame {
            Some(Ok(Message::Text(t))) => view.show(t.as_str(), out)?,
            Some(Ok(Message::Close(frame))) => {
                let why = frame.map_or_else(
                    || "closed".to_owned(),
                    |f| format!("closed: {} {}", u16::from(f.code), f.reason),
                );
                return Ok(End::Lost(why));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Ok(End::Lost(e.to_string())),
            None => return Ok(End::Lost("closed".into())),
        }
    }
}

impl View {
    fn show(&mut self, text: &str, out: &mut dyn Write) -> Result<(), ClientError> {
        if self.json {
            emit(out, text)?;
            emit(out, "\n")?;
            return out.flush().map_err(ClientError::Output);
        }
        let Ok(m) = serde_json::from_str::<Value>(text) else {
            return Ok(());
        };
        match m["type"].as_str() {
            Some("job_progress") => self.progress(&m, out),
            Some("job_state_change") => {
                if let (Some(id), Some(to)) = (m["job_id"].as_str(), m["to_state"].as_str())
                    && matches!(to, "COMPLETED" | "ABORTED" | "FAILED")
                    && let Some(bar) = self.jobs.remove(id)
                {
                    bar.finish_and_clear();
                }
                self.line(format::monitor_line(&m), out)
            }
            Some("system_alert") => {
                let key = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
                let fresh = self
                    .alerts
                    .insert((key("timestamp"), key("title"), key("message")));
                if !fresh && m["snapshot"].as_bool() == Some(true) {
                    return Ok(());
                }
                self.line(format::monitor_line(&m), out)
            }
            _ => self.line(format::monitor_line(&m), out),
        }
    }

    fn line(&mut self, line: Option<String>, out: &mut dyn Write) -> Result<(), ClientError> {
        let Some(line) = line else {
            return Ok(());
        };
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(line);
                Ok(())
            }
            None => {
                emit(out, &format!("{line}\n"))?;
                out.flush().map_err(ClientError::Output)
            }
        }
    }

    fn progress(&mut self, m: &Value, out: &mut dyn Write) -> Result<(), ClientError> {
        let Some(id) = m["job_id"].as_str() else {
            return Ok(());
        };
        let permille = (m["progress"].as_f64().unwrap_or(0.0).clamp(0.0, 1.0) * 1000.0) as u64;
        let Some(bars) = &self.bars else {
            // No terminal: a line per whole percent.
            let percent = permille / 10;
            if self.shown_percent.get(id) == Some(&percent) {
                return Ok(());
            }
            self.shown_percent.insert(id.to_owned(), percent);
            let line = format!("job {id} {}", format::progress(m));
            return self.line(Some(line), out);
        };
        let bar = self.jobs.entry(id.to_owned()).or_insert_with(|| {
            let bar = bars.add(ProgressBar::new(1000));
            if let Ok(style) =
                ProgressStyle::with_template("{prefix:12} [{bar:32}] {percent:>3}% {msg}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(id.to_owned());
            bar
        });
        bar.set_position(permille);
        let mut msg = String::new();
        if let (Some(l), Some(t)) = (m["current_layer"].as_u64(), m["total_layers"].as_u64()) {
            msg.push_str(&format!("layer {l}/{t}"));
        }
        if let Some(eta) = m["eta_seconds"].as_f64() {
            msg.push_str(&format!("  eta {}", format::duration(eta)));
        }
        bar.set_message(msg);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replayed alert is marked as earlier with its own time, once; a live one is news.
    #[test]
    fn replayed_alerts_are_marked_earlier_and_shown_once() {
        let mut view = View {
            json: false,
            bars: None,
            jobs: HashMap::new(),
            shown_percent: HashMap::new(),
            alerts: HashSet::new(),
        };
        let alert = |snapshot: bool, title: &str, at: &str| {
            json!({
                "type": "system_alert", "timestamp": at, "severity": "warning",
                "title": title, "message": "check the supply", "snapshot": snapshot,
            })
            .to_string()
        };
        let mut out = Vec::new();
        view.show(
            &alert(true, "motor supply", "2026-12-06T09:15:02.120Z"),
            &mut out,
        )
        .unwrap();
        // A reconnection replays the backlog again: not shown twice.
        view.show(
            &alert(true, "motor supply", "2026-12-06T09:15:02.120Z"),
            &mut out,
        )
        .unwrap();
        view.show(
            &alert(false, "pen change", "2026-12-06T10:00:00.000Z"),
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "09:15:02 earlier alert, raised 2026-12-06 09:15:02: WARNING: motor supply: check the supply",
                "10:00:00 WARNING: pen change: check the supply",
            ],
            "{text}"
        );
    }
}
