//! Webhook delivery: one HTTP/1.1 `POST` of a JSON body to an `http://` URL.
//!
//! A hook only needs to send one small request and read the status line, so this is written
//! directly over `tokio::net::TcpStream` instead of adding an HTTP client and a TLS stack to the
//! daemon. `https://` URLs are refused when the config is loaded, with the advice to point the hook
//! at a local relay (a small forwarding service on 127.0.0.1) that speaks TLS to the outside.

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most response bytes read (headers and body); the rest is ignored.
const MAX_RESPONSE: usize = 64 * 1024;

/// A checked `http://` URL.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct WebhookUrl {
    original: String,
    host: String,
    port: u16,
    target: String,
}

/// What the server answered.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The start of the body (lossy UTF-8).
    pub body_excerpt: String,
}

impl WebhookUrl {
    /// Checks a URL from the config; the error says what to change.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Err(format!(
                "`{url}`: plotty sends webhooks over plain http only (it has no TLS stack); point the \
                 hook at a relay on this machine, e.g. http://127.0.0.1:8080/…, that forwards to the \
                 https service"
            ));
        }
        let Some(rest) = url.get(7..).filter(|_| lower.starts_with("http://")) else {
            return Err(format!("`{url}` is not an http:// URL"));
        };
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        let target = target.split('#').next().unwrap_or("/").to_owned();
        if authority.contains('@') {
            return Err(format!(
                "`{url}`: user names and passwords in webhook URLs are not supported; put a token \
                 in the path or query instead"
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6
                .find(']')
                .ok_or_else(|| format!("`{url}`: unclosed `[` in the host"))?;
            let port = match &v6[end + 1..] {
                "" => 80,
                p => parse_port(p.strip_prefix(':').unwrap_or(p), url)?,
            };
            (v6[..end].to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), parse_port(p, url)?),
                None => (authority.to_owned(), 80),
            }
        };
        if host.is_empty() {
            return Err(format!("`{url}` has no host"));
        }
        if target.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("`{url}`: encode spaces in the path as %20"));
        }
        Ok(Self {
            original: url.to_owned(),
            host,
            port,
            target,
        })
    }

    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

fn parse_port(p: &str, url: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("`{url}`: `{p}` is not a port number"))
}

/// Posts `body` (JSON) to `url` and returns the status and the start of the reply, all within
/// `timeout`.
pub async fn post(url: &WebhookUrl, body: &[u8], timeout: Duration) -> Result<Response, String> {
    match tokio::time::timeout(timeout, exchange(url, body)).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs_f64())),
    }
}

async fn exchange(url: &WebhookUrl, body: &[u8]) -> Result<Response, String> {
    let mut stream = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("cannot connect to {}:{}: {e}", url.host, url.port))?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: plotty/{}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        url.target,
        url.host_header(),
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    stream
        .write_all(&request)
        .await
        .map_err(|e| format!("sending failed: {e}"))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() >= MAX_RESPONSE || response_complete(&buf) {
            break;
        }
    }
    parse_response(&buf)
}

/// True once the headers and the announced body (or the final chunk) are in.
fn response_complete(buf: &[u8]) -> bool {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let body = &buf[end + 4..];
    for line in head.lines() {
        if let Some(v) = line.strip_prefix("content-length:") {
            return v.trim().parse::<usize>().is_ok_and(|n| body.len() >= n);
        }
        if line.starts_with("transfer-encoding:") && line.contains("chunked") {
            return find(body, b"0\r\n\r\n").is_some();
        }
    }
    // Neither: the body ends when the server closes the connection.
    false
}

fn parse_response(buf: &[u8]) -> Result<Response, String> {
    let head_end = find(buf, b"\r\n").ok_or_else(|| {
        if buf.is_empty() {
            "the server closed the connection without answering".to_owned()
        } else {
            "the answer is not HTTP".to_owned()
        }
    })?;
    let status_line = String::from_utf8_lossy(&buf[..head_end]);
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or("");
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| version.starts_with("HTTP/"))
        .ok_or_else(|| {
            format!(
                "the answer is not HTTP: `{}`",
                excerpt(status_line.as_bytes(), 80)
            )
        })?;
    let body = find(buf, b"\r\n\r\n").map_or(&[][..], |i| &buf[i + 4..]);
    Ok(Response {
        status,
        body_excerpt: excerpt(body, 2048),
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// At most `max` bytes of `bytes` as text, marked when cut.
pub(crate) fn excerpt(bytes: &[u8], max: usize) -> String {
    let cut = bytes.len() > max;
    let mut s = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned();
    if cut {
        s.push('…');
    }
    s
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn parses_http_urls_and_refuses_the_rest() {
        let u = WebhookUrl::parse("http://127.0.0.1:9000/hooks/plot?x=1#frag").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("127.0.0.1", 9000, "/hooks/plot?x=1")
        );
        let u = WebhookUrl::parse("http://example.org").unwrap();
        assert_eq!(
            (u.port, u.target.as_str(), u.host_header()),
            (80, "/", "example.org".into())
        );
        let u = WebhookUrl::parse("http://[::1]:81?q").unwrap();
        assert_eq!(
            (u.host.as_str(), u.target.as_str(), u.host_header()),
            ("::1", "/?q", "[::1]:81".into())
        );
        let e = WebhookUrl::parse("https://hooks.slack.com/x").unwrap_err();
        assert!(e.contains("relay"), "{e}");
        for bad in [
            "ftp://x",
            "http://",
            "http://x:0/",
            "http://x:99999/",
            "http://u:p@x/",
            "http://x/a b",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn posts_json_and_reads_the_status() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut chunk = [0u8; 1024];
            while !got.ends_with(b"}") {
                let n = s.read(&mut chunk).await.unwrap();
                got.extend_from_slice(&chunk[..n]);
            }
            s.write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
                .await
                .unwrap();
            // Keep the connection open: the client must stop at Content-Length.
            tokio::time::sleep(Duration::from_secs(30)).await;
            String::from_utf8(got).unwrap()
        });
        let url = WebhookUrl::parse(&format!("http://127.0.0.1:{port}/h?k=1")).unwrap();
        let r = post(&url, br#"{"a":1}"#, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(
            r,
            Response {
                status: 201,
                body_excerpt: "ok".into()
            }
        );
        server.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url =
            WebhookUrl::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let accept = tokio::spawn(async move {
            let conn = listener.accept().await;
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(conn);
        });
        let e = post(&url, b"{}", Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(e.contains("no answer within 10 s"), "{e}");
        accept.abort();
    }

    #[test]
    fn parses_responses() {
        assert_eq!(
            parse_response(b"HTTP/1.0 500 Oops\r\n\r\nbad")
                .unwrap()
                .status,
            500
        );
        assert!(parse_response(b"").is_err());
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(response_complete(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
        ));
        assert!(!response_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok"
        ));
    }
}
