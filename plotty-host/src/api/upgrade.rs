//! The WebSocket handshake on `/ws`, done here rather than by axum's extractor so that every
//! refusal is an HTTP answer before the upgrade, and so that the manual's test works:
//!
//! ```text
//! curl -i -N -H "Connection: Upgrade" -H "Upgrade: websocket" http://localhost:8766/ws
//! ```
//!
//! curl sends no `Sec-WebSocket-Key` (RFC 6455 requires one). Such a request still gets
//! `101 Switching Protocols` and a working connection (the `hello` message arrives as a frame), only
//! without `Sec-WebSocket-Accept`, which is derived from the key; real WebSocket clients always send
//! a key and get the proper accept value. A `Sec-WebSocket-Version` other than 13 is refused with
//! 426 naming the supported version. Over `websocket.max_connections` the answer is 503 before the
//! upgrade. The auth and origin checks ran before this (see [`super::guard`]). A client that
//! offers the `plotty` subprotocol (the web UI, which sends its API key as a second one) gets it
//! selected.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::Api;
use super::handler::{self, Client};
use super::http;
use super::protocol::MAX_MESSAGE_BYTES;

/// Bytes of frames a WebSocket queues before writing without a flush (a feed batch is usually
/// less: one write).
const WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// How long a client at the connection limit is asked to wait.
const RETRY_AFTER_S: &str = "10";

/// `GET /ws`.
pub(super) async fn websocket(State(api): State<Arc<Api>>, mut req: Request) -> Response {
    let headers = req.headers();
    if req.method() != Method::GET {
        return http::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "the WebSocket endpoint takes GET with `Upgrade: websocket`",
        );
    }
    if !has_token(headers, &header::CONNECTION, "upgrade")
        || !has_token(headers, &header::UPGRADE, "websocket")
    {
        let mut r = http::error(
            StatusCode::UPGRADE_REQUIRED,
            "UPGRADE_REQUIRED",
            "this is the WebSocket endpoint: connect with a WebSocket client to ws://<host>:<port>/ws \
             (or see GET /status and the web UI at /)",
        );
        r.headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        return r;
    }
    if let Some(v) = headers.get(header::SEC_WEBSOCKET_VERSION)
        && v.as_bytes() != b"13"
    {
        let mut r = http::error(
            StatusCode::UPGRADE_REQUIRED,
            "UNSUPPORTED_VERSION",
            "only WebSocket version 13 (RFC 6455) is supported",
        );
        r.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return r;
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY).cloned();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "?".to_owned(), |c| c.0.to_string());
    let settings = api.settings();
    let max = usize::try_from(settings.websocket.max_connections).unwrap_or(usize::MAX);
    let Some(slot) = api.limiter.try_acquire(max) else {
        tracing::warn!(%peer, "refused a WebSocket client: {max} connected (websocket.max_connections)");
        let mut r = http::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "TOO_MANY_CONNECTIONS",
            format!(
                "the daemon already serves {max} WebSocket clients (websocket.max_connections); \
                 try again later"
            ),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_S));
        return r;
    };
    let Some(on_upgrade) = req.extensions_mut().remove::<OnUpgrade>() else {
        return http::error(
            StatusCode::BAD_REQUEST,
            "NOT_UPGRADABLE",
            "this connection cannot be upgraded to a WebSocket (use HTTP/1.1)",
        );
    };
    let id = api.next_id.fetch_add(1, Ordering::Relaxed);
    // Kept to check it again when a reload changes the key.
    let api_key = super::auth::presented_key(req.uri(), req.headers());
    // Subscribed before the 101 goes out: no event between the handshake and the client's loop is
    // lost.
    let feed = api.hub.subscribe();
    let task_api = Arc::clone(&api);
    api.shutdown.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "WebSocket upgrade failed");
                return;
            }
        };
        let ws = WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            Some(websocket_config()),
        )
        .await;
        handler::serve(
            ws,
            Client {
                id,
                peer,
                api: task_api,
                feed,
                key: api_key,
                _slot: slot,
            },
        )
        .await;
    });
    let mut builder = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket");
    // The web UI offers `plotty` (with its key as a second protocol): a browser drops a
    // connection whose answer selects none of the protocols it offered.
    if super::auth::subprotocols(req.headers())
        .iter()
        .any(|p| p == super::auth::WS_PROTOCOL)
    {
        builder = builder.header(header::SEC_WEBSOCKET_PROTOCOL, super::auth::WS_PROTOCOL);
    }
    if let Some(key) = key {
        builder = builder.header(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        );
    }
    builder.body(axum::body::Body::empty()).unwrap_or_else(|e| {
        http::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            format!("cannot build the upgrade response: {e}"),
        )
    })
}

/// The WebSocket settings of a client connection.
fn websocket_config() -> WebSocketConfig {
    // Frames are written when a flush asks or this much is waiting: a batch of feed messages
    // goes out in one write (with a write buffer of 0, tungstenite writes each frame as it is
    // queued, a system call per message), and what a client keeps between batches stays
    // bounded.
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
}

/// True if a comma-separated header has `token` (any case): `Connection: keep-alive, Upgrade`.
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::{Message, WebSocket};

    use super::*;

    /// A socket that counts the writes it is given (each would be a system call).
    #[derive(Default)]
    struct Socket {
        writes: usize,
        bytes: usize,
    }

    impl std::io::Read for Socket {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::WouldBlock.into())
        }
    }

    impl std::io::Write for Socket {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.writes += 1;
            self.bytes += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_batch_of_feed_messages_is_one_write() {
        let mut ws =
            WebSocket::from_raw_socket(Socket::default(), Role::Server, Some(websocket_config()));
        let text = format!(
            r#"{{"type":"job_progress","padding":"{}"}}"#,
            "x".repeat(300)
        );
        for _ in 0..20 {
            ws.write(Message::text(text.clone())).unwrap();
        }
        assert_eq!(ws.get_ref().writes, 0, "queued until the flush");
        ws.flush().unwrap();
        assert_eq!(ws.get_ref().writes, 1);
        assert!(ws.get_ref().bytes > 20 * text.len());
    }

    #[test]
    fn header_tokens() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(has_token(&h, &header::CONNECTION, "upgrade"));
        assert!(!has_token(&h, &header::UPGRADE, "websocket"));
        h.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        assert!(has_token(&h, &header::UPGRADE, "websocket"));
    }
}
