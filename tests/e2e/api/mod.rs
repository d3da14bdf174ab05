//! The WebSocket/HTTP API against a daemon started in-process on 127.0.0.1:0 with the API and a
//! queue that only answers commands (no device layer, no pipeline: the tests move jobs through the
//! ledger themselves), driven by real clients: tokio-tungstenite for WebSocket, the
//! `plotty` client library and raw TCP for HTTP. Device events are injected on the daemon's event
//! bus, as the device task will publish them.

// Helpers outside `#[test]` functions panic on purpose: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod hardening;
mod http;
mod security;
mod stream;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use plotty_host::api::ApiLimits;
use plotty_host::client::Endpoint;
use plotty_host::client::http::HttpClient;
use plotty_host::daemon::notify::Notifier;
use plotty_host::daemon::signals::Request;
use plotty_host::daemon::{Daemon, DaemonError, Parts};
use plotty_host::events::{DaemonEvent, EventSender, JobProgress};
use plotty_host::job::JobId;
use plotty_host::ledger::Ledger;
use plotty_host::settings::Settings;
use plotty_host::store::Store;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Longest any single wait may take before the test fails.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A small SVG.
pub(crate) const SVG: &[u8] =
    b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10mm\" height=\"10mm\"><path d=\"M0 0L10 10\" stroke=\"#000\"/></svg>";

/// A daemon running in this process.
pub(crate) struct TestDaemon {
    pub(crate) addr: SocketAddr,
    pub(crate) bus: EventSender,
    pub(crate) ledger: Ledger,
    stop: mpsc::Sender<Request>,
    task: JoinHandle<Result<(), DaemonError>>,
    _dir: tempfile::TempDir,
}

/// Starts a daemon with default settings.
pub(crate) async fn start() -> TestDaemon {
    start_with(|_| {}, ApiLimits::default()).await
}

/// Starts a daemon with edited settings and API limits.
pub(crate) async fn start_with(edit: impl FnOnce(&mut Settings), limits: ApiLimits) -> TestDaemon {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::defaults_for(dir.path());
    edit(&mut settings);
    std::fs::create_dir_all(settings.jobs_dir()).unwrap();
    let (store, _) = Store::open(&settings.database.path).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let parts = Parts {
        settings,
        sources: None,
        store: store.into(),
        listener: Some(listener),
        logging: None,
        notifier: Notifier::default(),
    };
    let daemon = Daemon::start(parts, plotty_host::app::components_without_devices(limits))
        .await
        .unwrap();
    let addr = daemon.local_addr().unwrap();
    let ledger = daemon.ledger().clone();
    let (stop, rx) = mpsc::channel(4);
    let task = tokio::spawn(daemon.run(rx));
    TestDaemon {
        addr,
        bus: ledger.bus(),
        ledger,
        stop,
        task,
        _dir: dir,
    }
}

impl TestDaemon {
    /// Shuts the daemon down and waits for it.
    pub(crate) async fn stop(self) {
        self.stop
            .send(Request::Stop { signal: "test" })
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    /// The HTTP client of the `plotty` commands, pointed at this daemon.
    pub(crate) fn http(&self) -> HttpClient {
        self.http_with_key(None)
    }

    pub(crate) fn http_with_key(&self, key: Option<&str>) -> HttpClient {
        HttpClient::new(Endpoint {
            host: "127.0.0.1".into(),
            port: self.addr.port(),
            api_key: key.map(Into::into),
        })
    }

    /// A connected WebSocket client that has read its `hello`.
    pub(crate) async fn ws(&self) -> Ws {
        let mut ws = connect(self.addr, "/ws", &[]).await.unwrap();
        assert_eq!(ws.next_json().await["type"], "hello");
        ws
    }

    /// Submits a job over HTTP; returns its id.
    pub(crate) async fn submit(&self, name: &str) -> JobId {
        let v = self
            .http()
            .post(
                &format!("/api/jobs?name={name}"),
                Some(("image/svg+xml", bytes::Bytes::from_static(SVG))),
            )
            .await
            .unwrap();
        JobId::parse(v["jobs"][0]["id"].as_str().unwrap()).unwrap()
    }

    /// Publishes an event as the device task would.
    pub(crate) fn inject(&self, event: DaemonEvent) {
        self.bus.send(event).unwrap();
    }
}

/// A progress event.
pub(crate) fn progress(job: &JobId, layer: u32, points: u64, total: u64) -> JobProgress {
    JobProgress {
        job_id: job.clone(),
        device_id: None,
        progress: points as f64 / total as f64,
        current_layer: layer,
        total_layers: 3,
        points_plotted: points,
        total_points: total,
        distance_mm: points as f64 * 0.5,
        eta_seconds: Some((total - points) as f64 * 0.1),
        pen_down_time_seconds: 1.0,
        total_time_seconds: 2.0,
    }
}

/// A WebSocket test client.
pub(crate) struct Ws {
    pub(crate) inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// Connects to `path` on `addr` with extra handshake headers.
pub(crate) async fn connect(
    addr: SocketAddr,
    path: &str,
    headers: &[(&'static str, &str)],
) -> Result<Ws, WsError> {
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut()
            .insert(*k, HeaderValue::from_str(v).unwrap());
    }
    let (inner, _) = tokio_tungstenite::connect_async(req).await?;
    Ok(Ws { inner })
}

impl Ws {
    pub(crate) async fn send(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    pub(crate) async fn send_text(&mut self, t: &str) {
        self.inner.send(Message::text(t)).await.unwrap();
    }

    /// The next text message as JSON (pings and pongs skipped).
    pub(crate) async fn next_json(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(WAIT, self.inner.next())
                .await
                .expect("a message within the wait")
                .expect("the connection is open")
                .unwrap();
            match m {
                Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    /// The next message, which must be of type `ty`.
    pub(crate) async fn expect(&mut self, ty: &str) -> Value {
        let v = self.next_json().await;
        assert_eq!(v["type"], ty, "{v}");
        v
    }

    /// Skips messages until one of type `ty`.
    pub(crate) async fn until(&mut self, ty: &str) -> Value {
        loop {
            let v = self.next_json().await;
            if v["type"] == ty {
                return v;
            }
        }
    }

    /// Reads until the server closes; returns its close frame (`None` if it just went away).
    pub(crate) async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            match tokio::time::timeout(WAIT, self.inner.next())
                .await
                .expect("the server closes within the wait")
            {
                Some(Ok(Message::Close(f))) => return f,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }
}

/// Sends raw bytes on a new connection and returns everything the server sends back until it
/// closes or goes quiet for `quiet`.
pub(crate) async fn raw(addr: SocketAddr, request: &[u8], quiet: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(quiet, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
