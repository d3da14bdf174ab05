//! Issue 10 against the real daemon: a key rotated by SIGHUP closes the WebSockets opened with the
//! old key (code 4401), a DNS-rebinding request is refused, and plotty's own client, which sends
//! `X-Plotty-Request`, still changes state.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use nix::sys::signal::Signal;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::common::{DEADLINE, Env, daemon, free_port, poll, stderr, stdout};

const OLD: &str = "old-key-0123456789abcdef";
const NEW: &str = "new-key-0123456789abcdef";

/// Longest a revoked client may stay open (the close follows the reload at once).
const CLOSE_WAIT: Duration = Duration::from_secs(10);

const SVG: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="20mm" height="20mm"><path d="M1 1L19 19" stroke="black"/></svg>"#;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn config(key: &str, level: &str) -> String {
    format!("websocket:\n  authenticate: true\n  api_key: \"{key}\"\nlogging:\n  level: {level}\n")
}

async fn open(port: u16, key: &str) -> Ws {
    let url = format!("ws://127.0.0.1:{port}/ws?api_key={key}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let hello = next_text(&mut ws).await;
    assert!(hello.contains("\"hello\""), "{hello}");
    ws
}

async fn next_text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(DEADLINE, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return t.as_str().to_owned(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// Waits for the answer to a ping: broadcasts the client subscribed to (the device's status,
/// sent whenever the idle health check reads the motor supply) may come first.
async fn pong(ws: &mut Ws) {
    for _ in 0..16 {
        let text = next_text(ws).await;
        if text.contains("\"pong\"") {
            return;
        }
        assert!(
            text.contains("\"device_status\""),
            "expected a pong, got {text}"
        );
    }
    panic!("no pong among 16 messages");
}

/// The close frame the server sends within [`CLOSE_WAIT`] (panics if the connection stays
/// open: heartbeat pings do not extend the wait).
async fn close_frame(ws: &mut Ws) -> (CloseCode, String) {
    let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(f))))) => return (f.code, f.reason.as_str().to_owned()),
            Ok(Some(Ok(_))) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

fn reloads(d: &crate::common::Running) -> usize {
    d.stderr().matches("configuration reloaded").count()
}

#[test]
fn a_rotated_key_closes_the_websockets_opened_with_the_old_one() {
    let env = Env::new();
    let file = env.write_default_config(&config(OLD, "info"));
    let port = free_port();
    let d = daemon(&env, port);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut a = open(port, OLD).await;
        let mut b = open(port, OLD).await;
        // A reload that keeps the key keeps the clients.
        std::fs::write(&file, config(OLD, "debug")).unwrap();
        d.signal(Signal::SIGHUP);
        poll("the first reload", || (reloads(&d) == 1).then_some(()));
        a.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
        pong(&mut a).await;
        // A new key closes both, with 4401 and the reason.
        std::fs::write(&file, config(NEW, "debug")).unwrap();
        d.signal(Signal::SIGHUP);
        for ws in [&mut a, &mut b] {
            let (code, reason) = close_frame(ws).await;
            assert_eq!(code, CloseCode::from(4401), "{reason}");
            assert!(reason.contains("API key changed"), "{reason}");
        }
        // The new key opens the API; the old one no longer does.
        let mut c = open(port, NEW).await;
        c.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
        pong(&mut c).await;
        let url = format!("ws://127.0.0.1:{port}/ws?api_key={OLD}");
        assert!(tokio_tungstenite::connect_async(url).await.is_err());
    });
    let out = env
        .cmd()
        .args(["status", "--host", "127.0.0.1", "--port", &port.to_string()])
        .env("PLOTTY_API_KEY", OLD)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("wrong API key"), "{}", stderr(&out));
}

/// Sends `request` on a new connection; the whole answer.
fn exchange(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn the_default_daemon_refuses_rebinding_and_forms_and_serves_its_own_client() {
    let env = Env::new();
    std::fs::write(env.path("a.svg"), SVG).unwrap();
    let port = free_port();
    let _d = daemon(&env, port);
    let rebinding = exchange(
        port,
        &format!(
            "POST /api/jobs?start=true HTTP/1.1\r\nHost: attacker.example:{port}\r\nOrigin: \
             http://attacker.example:{port}\r\nContent-Type: image/svg+xml\r\nContent-Length: \
             {}\r\nConnection: close\r\n\r\n{SVG}",
            SVG.len()
        ),
    );
    assert!(rebinding.starts_with("HTTP/1.1 421"), "{rebinding}");
    let form = exchange(
        port,
        &format!(
            "POST /api/jobs HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{SVG}",
            SVG.len()
        ),
    );
    assert!(form.starts_with("HTTP/1.1 403"), "{form}");
    assert!(form.contains("X-Plotty-Request"), "{form}");
    // plotty's own commands: add (POST with a body), cancel (POST without one), delete.
    let at = ["--host", "127.0.0.1", "--port", &port.to_string()];
    let out = env.cmd().arg("add").arg("a.svg").args(at).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_owned();
    let out = env.cmd().args(["cancel", &id]).args(at).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.cmd().args(["delete", &id]).args(at).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}
