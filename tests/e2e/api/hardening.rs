//! Issue 10's attacks on the API, each refused: DNS rebinding (a page whose name now points at
//! the daemon), cross-site forms, and half-open connections (slowloris). Key rotation is a process
//! test (it needs SIGHUP): `plotty-host/tests/process/security.rs`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use plotty_host::api::ApiLimits;
use plotty_host::settings::{ApiKey, OriginPolicy};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Error as WsError;

use super::http::multipart;
use super::{SVG, WAIT, connect, raw, start, start_with};

const KEY: &str = "k-0123456789abcdef";

/// One HTTP/1.1 request on its own connection: the status and the JSON body (`Null` if none).
async fn request(
    addr: SocketAddr,
    head: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value) {
    let mut req = format!("{head} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    let resp = raw(addr, &bytes, Duration::from_secs(2)).await;
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {resp:?}"));
    let json = resp
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

fn ws_status(r: Result<super::Ws, WsError>) -> u16 {
    match r {
        Err(WsError::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("expected an HTTP answer, got {e}"),
        Ok(_) => 101,
    }
}

async fn job_count(d: &super::TestDaemon) -> u64 {
    d.http().get("/api/jobs").await.unwrap()["count"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn dns_rebinding_is_refused_without_an_api_key() {
    let d = start().await;
    let port = d.addr.port();
    // The names a rebinding page can use: its own, with and without the port, and names that
    // merely look local.
    for host in [
        format!("attacker.example:{port}"),
        "attacker.example".to_owned(),
        format!("localhost.attacker.example:{port}"),
        format!("127.0.0.1.attacker.example:{port}"),
        format!("0.0.0.0:{port}"),
    ] {
        let origin = format!("http://{host}");
        for origin in [Some(origin.as_str()), None] {
            let mut headers = vec![("Host", host.as_str()), ("Content-Type", "image/svg+xml")];
            headers.extend(origin.map(|o| ("Origin", o)));
            let (status, body) = request(d.addr, "POST /api/jobs?start=true", &headers, SVG).await;
            assert_eq!(status, 421, "{host} {origin:?}: {body}");
            assert_eq!(body["error_code"], "HOST_NOT_ALLOWED");
            let msg = body["error_message"].as_str().unwrap();
            assert!(msg.contains("websocket.allowed_hosts"), "{msg}");
            let headers = [("Host", host.as_str()), ("X-Plotty-Request", "1")];
            let (status, _) = request(
                d.addr,
                "POST /api/hooks/test?state=COMPLETED",
                &headers,
                b"",
            )
            .await;
            assert_eq!(status, 421, "{host}");
            let mut ws_headers = vec![("host", host.as_str())];
            ws_headers.extend(origin.map(|o| ("origin", o)));
            assert_eq!(
                ws_status(connect(d.addr, "/ws", &ws_headers).await),
                421,
                "{host}"
            );
        }
    }
    assert_eq!(job_count(&d).await, 0, "no job was created");
    // The daemon's own names still work, for pages and programs.
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "localhost".to_owned(),
    ] {
        let (status, _) = request(d.addr, "GET /status", &[("Host", &host)], b"").await;
        assert_eq!(status, 200, "{host}");
    }
    let own = format!("http://localhost:{port}");
    let host = format!("localhost:{port}");
    let mut ws = connect(d.addr, "/ws", &[("host", &host), ("origin", &own)])
        .await
        .unwrap();
    assert_eq!(ws.next_json().await["type"], "hello");
    d.stop().await;

    // A name the user allowed.
    let d = start_with(
        |s| s.websocket.allowed_hosts = vec!["plotter.test".into()],
        ApiLimits::default(),
    )
    .await;
    let host = format!("plotter.test:{}", d.addr.port());
    let origin = format!("http://{host}");
    let mut ws = connect(d.addr, "/ws", &[("host", &host), ("origin", &origin)])
        .await
        .unwrap();
    assert_eq!(ws.next_json().await["type"], "hello");
    let host = format!("attacker.example:{}", d.addr.port());
    assert_eq!(
        ws_status(connect(d.addr, "/ws", &[("host", &host)]).await),
        421
    );
    d.stop().await;
}

#[tokio::test]
async fn with_an_api_key_a_rebinding_page_lacks_the_key() {
    let d = start_with(
        |s| {
            s.websocket.authenticate = true;
            s.websocket.api_key = Some(ApiKey::new(KEY));
        },
        ApiLimits::default(),
    )
    .await;
    let host = format!("attacker.example:{}", d.addr.port());
    let origin = format!("http://{host}");
    let headers = [
        ("Host", host.as_str()),
        ("Origin", origin.as_str()),
        ("Content-Type", "image/svg+xml"),
    ];
    let (status, body) = request(d.addr, "POST /api/jobs?start=true", &headers, SVG).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        ws_status(connect(d.addr, "/ws", &[("host", &host), ("origin", &origin)]).await),
        401
    );
    // A program holding the key may name the daemon as it likes (a LAN name, a proxy's).
    let bearer = format!("Bearer {KEY}");
    let (status, _) = request(
        d.addr,
        "GET /status",
        &[("Host", "plotter.lan:8766"), ("Authorization", &bearer)],
        b"",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        d.http_with_key(Some(KEY)).get("/api/jobs").await.unwrap()["count"],
        0
    );
    d.stop().await;
}

/// A request line, its headers and its body.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a [u8]);

#[tokio::test]
async fn a_cross_site_form_cannot_change_anything() {
    // `*` lets any page open the WebSocket: the form post must still be refused.
    let d = start_with(
        |s| s.websocket.allowed_origins = OriginPolicy::Any,
        ApiLimits::default(),
    )
    .await;
    let id = d.submit("mine").await;
    let (form_type, form) = multipart(&[("file", Some("x.svg"), SVG), ("start", None, b"true")]);
    let cases: [Case<'_>; 5] = [
        // What a <form method=post enctype=multipart/form-data> sends.
        (
            "POST /api/jobs",
            vec![
                ("Host", "localhost"),
                ("Origin", "https://evil.example"),
                ("Content-Type", form_type.as_str()),
            ],
            &form,
        ),
        // The same from a browser that sends no Origin.
        (
            "POST /api/jobs",
            vec![("Host", "localhost"), ("Content-Type", form_type.as_str())],
            &form,
        ),
        // fetch(…, {mode: "no-cors", body: svgText}): text/plain.
        (
            "POST /api/jobs?start=true",
            vec![
                ("Host", "localhost"),
                ("Origin", "https://evil.example"),
                ("Content-Type", "text/plain;charset=UTF-8"),
            ],
            SVG,
        ),
        // A form posting to a job action.
        (
            "POST /api/jobs/ID/cancel",
            vec![
                ("Host", "localhost"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            b"x=1",
        ),
        (
            "POST /api/hooks/test?state=COMPLETED",
            vec![("Host", "localhost")],
            b"",
        ),
    ];
    for (head, headers, body) in cases {
        let head = head.replace("ID", id.as_str());
        let (status, answer) = request(d.addr, &head, &headers, body).await;
        assert_eq!(status, 403, "{head} {headers:?}: {answer}");
        assert_eq!(answer["error_code"], "PLOTTY_HEADER_REQUIRED");
        assert!(
            answer["error_message"]
                .as_str()
                .unwrap()
                .contains("X-Plotty-Request: 1")
        );
    }
    assert_eq!(job_count(&d).await, 1, "no job was created");
    let job = d.http().get(&format!("/api/jobs/{id}")).await.unwrap();
    assert_ne!(job["state"], "ABORTED", "the job was not cancelled: {job}");
    // The documented curl forms work: an SVG body, or any body with the header.
    let (status, _) = request(
        d.addr,
        "POST /api/jobs",
        &[("Host", "localhost"), ("Content-Type", "image/svg+xml")],
        SVG,
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = request(
        d.addr,
        "POST /api/jobs",
        &[
            ("Host", "localhost"),
            ("X-Plotty-Request", "1"),
            ("Content-Type", form_type.as_str()),
        ],
        &form,
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = request(
        d.addr,
        &format!("POST /api/jobs/{id}/cancel"),
        &[("Host", "localhost"), ("X-Plotty-Request", "1")],
        b"",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    d.stop().await;
}

/// Opens `n` connections that send half a request head and nothing more.
async fn half_open(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /status HTTP/1.1\r\nHost: localhost\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    held
}

/// How many of `held` the server closed within `within` (all are read at once).
async fn closed_by_server(held: Vec<TcpStream>, within: Duration) -> usize {
    let reads = held.into_iter().map(|mut s| async move {
        let mut buf = [0u8; 1024];
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(_)) => {}
                Err(_) => return false,
            }
        }
    });
    futures_util::future::join_all(reads)
        .await
        .into_iter()
        .filter(|closed| *closed)
        .count()
}

#[tokio::test]
async fn half_open_connections_cannot_lock_out_a_client() {
    const CAP: u32 = 32;
    const FLOOD: usize = 300;
    // A header timeout far beyond the test: only the cap can make room.
    let d = start_with(
        |s| {
            s.websocket.authenticate = true;
            s.websocket.api_key = Some(ApiKey::new(KEY));
            s.websocket.max_http_connections = CAP;
            s.websocket.header_timeout = Duration::from_secs(120);
        },
        ApiLimits::default(),
    )
    .await;
    let held = half_open(d.addr, FLOOD).await;
    let status = tokio::time::timeout(WAIT, d.http_with_key(Some(KEY)).get("/status"))
        .await
        .expect("an authenticated request is answered while the flood holds its sockets")
        .unwrap();
    // All but the newest CAP - 1 (the request above took a place) were closed to make room.
    let closed = closed_by_server(held, Duration::from_secs(3)).await;
    assert!(
        closed >= FLOOD - CAP as usize,
        "only {closed} of {FLOOD} half-open connections were closed"
    );
    let open = status["http_connections"].as_u64().unwrap();
    assert!(open <= u64::from(CAP), "{open} HTTP connections open");
    d.stop().await;
}

#[tokio::test]
async fn half_open_and_idle_connections_are_closed_after_the_header_timeout() {
    let timeout = Duration::from_millis(300);
    let d = start_with(
        |s| s.websocket.header_timeout = timeout,
        ApiLimits::default(),
    )
    .await;
    let t0 = Instant::now();
    let mut held = half_open(d.addr, 50).await;
    // One that sends nothing, and one kept alive after a complete request.
    held.push(TcpStream::connect(d.addr).await.unwrap());
    let mut kept = TcpStream::connect(d.addr).await.unwrap();
    kept.write_all(b"GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(kept.read(&mut buf).await.unwrap() > 0, "an answer");
    held.push(kept);
    let n = held.len();
    assert_eq!(closed_by_server(held, WAIT).await, n, "every socket closed");
    assert!(t0.elapsed() >= timeout, "not before the timeout");
    // The daemon serves on.
    assert!(d.http().get("/status").await.is_ok());
    d.stop().await;
}
