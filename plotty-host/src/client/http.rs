//! A minimal HTTP/1.1 client for the daemon's JSON API: one request per connection over hyper's
//! client connection, with the API key as a bearer token, the `X-Plotty-Request: 1` header that
//! state-changing requests need, and a deadline per request.

use std::time::Duration;

use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use super::{ClientError, Endpoint};

/// Longest a request may take (an upload of a large SVG included).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Talks HTTP to one daemon.
#[derive(Clone, Debug)]
pub struct HttpClient {
    endpoint: Endpoint,
}

/// A raw answer.
#[derive(Clone, PartialEq, Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// Body.
    pub body: Bytes,
}

impl HttpClient {
    /// A client for `endpoint`.
    pub fn new(endpoint: Endpoint) -> Self {
        Self { endpoint }
    }

    /// Where it connects.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `GET path` as JSON.
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.json(Method::GET, path, None).await
    }

    /// `POST path` with an optional body (content type, bytes), as JSON.
    pub async fn post(
        &self,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<Value, ClientError> {
        self.json(Method::POST, path, body).await
    }

    /// `DELETE path` as JSON.
    pub async fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.json(Method::DELETE, path, None).await
    }

    /// A request whose answer is JSON; error statuses become [`ClientError::Api`] (or
    /// [`ClientError::Unauthorized`] for 401) with the daemon's code and message.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<Value, ClientError> {
        let reply = self.send(method, path, body).await?;
        let address = self.endpoint.address();
        let parsed: Option<Value> = serde_json::from_slice(&reply.body).ok();
        if reply.status.is_success() {
            return parsed.ok_or_else(|| ClientError::Protocol {
                address,
                detail: format!("{} is not JSON", excerpt(&reply.body)),
            });
        }
        let field = |k: &str| {
            parsed
                .as_ref()
                .and_then(|v| v.get(k))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let message = field("error_message")
            .unwrap_or_else(|| format!("HTTP {} {}", reply.status.as_u16(), excerpt(&reply.body)));
        if reply.status == StatusCode::UNAUTHORIZED {
            return Err(ClientError::Unauthorized { address, message });
        }
        Err(ClientError::Api {
            status: reply.status.as_u16(),
            code: field("error_code").unwrap_or_else(|| format!("HTTP_{}", reply.status.as_u16())),
            message,
        })
    }

    /// One request; the raw answer whatever its status.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<Reply, ClientError> {
        let address = self.endpoint.address();
        let exchange = async {
            let stream = connect(&self.endpoint).await?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| protocol(&address, &e))?;
            // Drives the connection; ends with it.
            tokio::spawn(conn);
            let mut req = Request::builder()
                .method(method)
                .uri(path)
                .header(header::HOST, address.as_str())
                .header(header::ACCEPT, "application/json")
                .header(
                    header::USER_AGENT,
                    concat!("plotty/", env!("CARGO_PKG_VERSION")),
                )
                // Tells the daemon this is no cross-site form (SECURITY.md): without it a POST or
                // DELETE with no body type is refused.
                .header("x-plotty-request", "1");
            if let Some(key) = &self.endpoint.api_key
                && let Ok(v) = HeaderValue::from_str(&format!("Bearer {key}"))
            {
                req = req.header(header::AUTHORIZATION, v);
            }
            let (content_type, bytes) = body.unwrap_or(("", Bytes::new()));
            if !content_type.is_empty() {
                req = req.header(header::CONTENT_TYPE, content_type);
            }
            let req = req
                .body(Full::new(bytes))
                .map_err(|e| ClientError::Input(format!("cannot build the request: {e}")))?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| protocol(&address, &e))?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| protocol(&address, &e))?
                .to_bytes();
            Ok(Reply { status, body })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| ClientError::Connect {
                address: address.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()),
                ),
            })?
    }
}

/// Opens a TCP connection to the daemon, telling "nothing listens" apart from other failures.
pub(super) async fn connect(endpoint: &Endpoint) -> Result<TcpStream, ClientError> {
    let address = endpoint.address();
    match TcpStream::connect((endpoint.bare_host(), endpoint.port)).await {
        Ok(s) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Err(ClientError::NotRunning { address })
        }
        Err(source) => Err(ClientError::Connect { address, source }),
    }
}

fn protocol(address: &str, e: &dyn std::fmt::Display) -> ClientError {
    ClientError::Protocol {
        address: address.to_owned(),
        detail: e.to_string(),
    }
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(120).collect();
    if text.chars().count() > 120 {
        s.push('…');
    }
    format!("`{}`", s.trim())
}
