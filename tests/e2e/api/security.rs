//! Refusals before the upgrade (API key, origin, connection limit), the heartbeat, and a slow client
//! that must not delay anyone else.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use plotty_host::api::ApiLimits;
use plotty_host::client::ClientError;
use plotty_host::events::{Alert, DaemonEvent, Severity};
use plotty_host::settings::{ApiKey, OriginPolicy};
use serde_json::{Value, json};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{WAIT, connect, raw, start_with};

const KEY: &str = "k-0123456789abcdef";

fn refused(r: Result<super::Ws, WsError>) -> (u16, Value) {
    match r {
        Err(WsError::Http(resp)) => {
            let body = resp
                .body()
                .as_deref()
                .map(|b| serde_json::from_slice(b).unwrap())
                .unwrap_or(Value::Null);
            (resp.status().as_u16(), body)
        }
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected an HTTP refusal, got a connection"),
    }
}

#[tokio::test]
async fn the_api_key_is_checked_before_the_upgrade_in_every_style() {
    let d = start_with(
        |s| {
            s.websocket.authenticate = true;
            s.websocket.api_key = Some(ApiKey::new(KEY));
        },
        ApiLimits::default(),
    )
    .await;
    let (status, body) = refused(connect(d.addr, "/ws", &[]).await);
    assert_eq!(status, 401);
    assert_eq!(body["error_code"], "AUTH_REQUIRED");
    let msg = body["error_message"].as_str().unwrap();
    assert!(
        msg.contains("Authorization: Bearer")
            && msg.contains("X-Api-Key")
            && msg.contains("api_key="),
        "{msg}"
    );
    for (path, headers) in [
        ("/ws?api_key=wrong", vec![]),
        ("/ws", vec![("authorization", "Bearer wrong")]),
        ("/ws", vec![("x-api-key", "k-0123456789abcdeX")]),
        ("/ws", vec![("x-api-key", "")]),
    ] {
        let (status, body) = refused(connect(d.addr, path, &headers).await);
        assert_eq!(status, 401, "{path} {headers:?}");
        assert_eq!(body["error_code"], "AUTH_FAILED");
    }
    let query = format!("/ws?api_key={KEY}");
    let bearer = format!("Bearer {KEY}");
    for (path, headers) in [
        (query.as_str(), vec![]),
        ("/ws", vec![("authorization", bearer.as_str())]),
        ("/ws", vec![("x-api-key", KEY)]),
    ] {
        let mut ws = connect(d.addr, path, &headers).await.unwrap();
        assert_eq!(ws.next_json().await["type"], "hello");
    }
    // A browser's WebSocket cannot send headers: the key comes as a subprotocol (base64url of
    // its UTF-8), next to `plotty`, which the answer selects.
    let (status, body) = refused(
        connect(
            d.addr,
            "/ws",
            &[("sec-websocket-protocol", "plotty, plotty-key.d3Jvbmc")],
        )
        .await,
    );
    assert_eq!((status, &body["error_code"]), (401, &json!("AUTH_FAILED")));
    let mut ws = connect(
        d.addr,
        "/ws",
        &[(
            "sec-websocket-protocol",
            "plotty, plotty-key.ay0wMTIzNDU2Nzg5YWJjZGVm",
        )],
    )
    .await
    .unwrap();
    assert_eq!(ws.next_json().await["type"], "hello");
    // The manual's curl test without a key: 401, before any upgrade.
    let resp = raw(
        d.addr,
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        Duration::from_millis(300),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");
    assert!(
        resp.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{resp}"
    );

    // HTTP: the same rule.
    match d.http().get("/status").await {
        Err(ClientError::Unauthorized { message, .. }) => {
            assert!(message.contains("no API key"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        d.http_with_key(Some("nope")).get("/api/jobs").await,
        Err(ClientError::Unauthorized { .. })
    ));
    assert_eq!(
        d.http_with_key(Some(KEY)).get("/status").await.unwrap()["authenticate"],
        true
    );
    // The web UI's page and files hold no data and are served without the key: the page must
    // load to ask for it.
    for path in ["/", "/ui/app.js"] {
        let r = d
            .http()
            .send(axum::http::Method::GET, path, None)
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{path}");
    }
    d.stop().await;
}

#[tokio::test]
async fn pages_of_other_sites_are_refused_programs_are_not() {
    let d = start_with(|_| {}, ApiLimits::default()).await;
    let (status, body) =
        refused(connect(d.addr, "/ws", &[("origin", "https://evil.example")]).await);
    assert_eq!(status, 403);
    assert_eq!(body["error_code"], "ORIGIN_NOT_ALLOWED");
    assert!(
        body["error_message"]
            .as_str()
            .unwrap()
            .contains("allowed_origins")
    );
    // The daemon's own page (same host and port) and programs without an Origin are welcome.
    let own = format!("http://{}", d.addr);
    let mut ws = connect(d.addr, "/ws", &[("origin", own.as_str())])
        .await
        .unwrap();
    assert_eq!(ws.next_json().await["type"], "hello");
    let mut ws = connect(d.addr, "/ws", &[]).await.unwrap();
    assert_eq!(ws.next_json().await["type"], "hello");
    // Plain HTTP too (a cross-site form post must not start anything).
    let resp = raw(
        d.addr,
        format!(
            "POST /api/jobs HTTP/1.1\r\nHost: {}\r\nOrigin: https://evil.example\r\nContent-Length: 6\r\nConnection: close\r\n\r\n<svg/>",
            d.addr
        )
        .as_bytes(),
        Duration::from_millis(500),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert!(d.http().get("/api/jobs").await.unwrap()["count"] == 0);
    d.stop().await;

    let any = start_with(
        |s| s.websocket.allowed_origins = OriginPolicy::Any,
        ApiLimits::default(),
    )
    .await;
    let mut ws = connect(any.addr, "/ws", &[("origin", "https://evil.example")])
        .await
        .unwrap();
    assert_eq!(ws.next_json().await["type"], "hello");
    any.stop().await;
}

#[tokio::test]
async fn over_the_connection_limit_is_503_before_the_upgrade() {
    let d = start_with(|s| s.websocket.max_connections = 3, ApiLimits::default()).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(d.ws().await);
    }
    let r = connect(d.addr, "/ws", &[]).await;
    let Err(WsError::Http(resp)) = &r else {
        panic!("expected a refusal");
    };
    assert_eq!(resp.status().as_u16(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let (_, body) = refused(r);
    assert_eq!(body["error_code"], "TOO_MANY_CONNECTIONS");
    // HTTP is still served, and a freed place is taken again.
    let mut first = clients.remove(0);
    first.inner.close(None).await.unwrap();
    let until = Instant::now() + WAIT;
    while d.http().get("/status").await.unwrap()["connections"] != 2 {
        assert!(
            Instant::now() < until,
            "the closed client was not counted out"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut again = d.ws().await;
    again.send(json!({"type": "ping"})).await;
    again.expect("pong").await;
    d.stop().await;
}

#[tokio::test]
async fn a_dead_client_is_dropped_after_two_heartbeats_a_quiet_one_never() {
    let beat = Duration::from_millis(200);
    let d = start_with(
        |s| s.websocket.heartbeat_interval = beat,
        ApiLimits::default(),
    )
    .await;
    // The dead one completes the handshake and then never reads, so it never answers a ping.
    let mut dead = connect(d.addr, "/ws", &[]).await.unwrap();
    // The quiet one only reads (tungstenite answers pings while reading) and never sends a message.
    let quiet = connect(d.addr, "/ws", &[]).await.unwrap();
    let (mut quiet_tx, mut quiet_rx) = quiet.inner.split();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let reader = tokio::spawn(async move {
        while let Some(Ok(m)) = quiet_rx.next().await {
            log.lock().unwrap().push(m);
        }
    });
    tokio::time::sleep(beat * 10).await;
    // The dead client was closed with the original's code and reason.
    let f = dead.closed().await.unwrap();
    assert_eq!(f.code, CloseCode::Normal);
    assert_eq!(f.reason.as_str(), "Heartbeat timeout");
    // The quiet one is alive: it got pings all along and still answers.
    quiet_tx
        .send(Message::text(json!({"type": "ping"}).to_string()))
        .await
        .unwrap();
    let until = Instant::now() + WAIT;
    loop {
        let got_pong = seen
            .lock()
            .unwrap()
            .iter()
            .any(|m| matches!(m, Message::Text(t) if t.as_str().contains("\"pong\"")));
        if got_pong {
            break;
        }
        assert!(Instant::now() < until, "the quiet client was dropped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pings = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|m| matches!(m, Message::Ping(_)))
        .count();
    assert!(pings >= 5, "{pings} pings in 10 intervals");
    assert_eq!(d.http().get("/status").await.unwrap()["connections"], 1);
    reader.abort();
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_delays_nobody_and_is_dropped() {
    let d = start_with(
        |_| {},
        ApiLimits {
            send_timeout: Duration::from_secs(3),
            ..ApiLimits::default()
        },
    )
    .await;
    // The slow client: a tiny receive buffer, and it never reads after the handshake.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(d.addr).await.unwrap();
    let (slow, _) = tokio_tungstenite::client_async(format!("ws://{}/ws", d.addr), stream)
        .await
        .unwrap();
    const N: usize = 2000;
    let sent_at = Arc::new(Mutex::new(vec![None::<Instant>; N]));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let ws = d.ws().await;
        let sent_at = Arc::clone(&sent_at);
        let mut rx = ws.inner;
        readers.push(tokio::spawn(async move {
            let mut worst = Duration::ZERO;
            let mut got = 0;
            while got < N {
                let Message::Text(t) = rx.next().await.unwrap().unwrap() else {
                    continue;
                };
                // Cheaper than parsing 4 KiB of JSON in a debug build.
                let Some(i) = t.as_str().find("\"title\":\"").map(|at| {
                    let rest = &t.as_str()[at + 9..];
                    rest[..rest.find('"').unwrap()].parse::<usize>().unwrap()
                }) else {
                    continue;
                };
                let at = sent_at.lock().unwrap()[i].unwrap();
                worst = worst.max(at.elapsed());
                got += 1;
            }
            worst
        }));
    }
    let big = "x".repeat(4 * 1024);
    for i in 0..N {
        sent_at.lock().unwrap()[i] = Some(Instant::now());
        d.inject(DaemonEvent::Alert(Alert {
            severity: Severity::Info,
            title: i.to_string(),
            message: big.clone(),
            source: "test".into(),
            metadata: Value::Null,
        }));
        if i % 4 == 3 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    for r in readers {
        let worst = tokio::time::timeout(Duration::from_secs(60), r)
            .await
            .unwrap()
            .unwrap();
        assert!(
            worst < Duration::from_secs(1),
            "a fast client waited {worst:?} for an event (the slow one has a 3 s write deadline)"
        );
    }
    // The fast clients have left; the slow one was dropped: it gets part of the stream, then the
    // end.
    let until = Instant::now() + Duration::from_secs(30);
    while d.http().get("/status").await.unwrap()["connections"] != 0 {
        assert!(Instant::now() < until, "the slow client is still connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, mut slow_rx) = slow.split();
    let mut alerts = 0;
    while let Ok(Some(Ok(m))) = tokio::time::timeout(WAIT, slow_rx.next()).await {
        if matches!(&m, Message::Text(t) if t.as_str().contains("system_alert")) {
            alerts += 1;
        }
    }
    assert!(alerts < N, "the slow client got all {alerts} alerts");
    d.stop().await;
}
