//! Who may talk to the daemon: the API key (`?api_key=`, `Authorization: Bearer`, `X-Api-Key`, or
//! for a browser's WebSocket, which cannot set headers, the subprotocol `plotty-key.<base64url>`;
//! compared in constant time), the `Host` check against DNS rebinding (`websocket.allowed_hosts`,
//! applied without an API key), the browser `Origin` check (`websocket.allowed_origins`) and the
//! cross-site request check of state-changing requests (`X-Plotty-Request`). All are decided
//! before a WebSocket upgrade and before any HTTP handler runs; refusals go to the security log.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, Method, Uri, header};

use crate::settings::OriginPolicy;

/// The header that carries the key in the `X-Api-Key` style.
pub(super) const X_API_KEY: &str = "x-api-key";

/// What the 401 body tells a client to do.
pub(super) const HOW_TO_AUTHENTICATE: &str = "send the API key in the `Authorization: Bearer <key>` \
     header, the `X-Api-Key: <key>` header, or the `api_key=<key>` query parameter \
     (ws://host:port/ws?api_key=<key>); the key is websocket.api_key or PLOTTY_API_KEY on the \
     daemon's side";

/// The header plotty's own clients send with every request: a page of another site cannot add
/// it without a CORS preflight, which the daemon never grants.
pub(super) const X_PLOTTY_REQUEST: &str = "x-plotty-request";

/// What the 403 of a request without [`X_PLOTTY_REQUEST`] tells a client to do.
pub(super) const HOW_TO_SEND_STATE_CHANGES: &str = "a POST, PUT, PATCH or DELETE must carry the \
     header `X-Plotty-Request: 1` (or an `Authorization`/`X-Api-Key` header, or a body of type \
     application/json or image/svg+xml): a web page of another site cannot send those without the \
     browser asking first, so this request may come from one; with curl add \
     -H 'X-Plotty-Request: 1'";

/// Checks the `Host` header against DNS rebinding: `Err(host)` when a request names a host that
/// is not this daemon's. Accepted: no `Host` (not a browser), the loopback names (`localhost`,
/// `127.0.0.1` and the rest of 127/8, `[::1]`), the listen address `listen`, the address the
/// client connected to (`local`; a browser only sends an IP literal it connected to itself), and
/// `allowed` (`*` = any). The port is not compared: a rebinding page keeps the daemon's port.
pub(super) fn check_host(
    headers: &HeaderMap,
    listen: &str,
    local: Option<SocketAddr>,
    allowed: &[String],
) -> Result<(), String> {
    let Some(value) = headers.get(header::HOST) else {
        return Ok(());
    };
    let shown = String::from_utf8_lossy(value.as_bytes())
        .chars()
        .take(200)
        .collect::<String>();
    let Some(name) = value.to_str().ok().and_then(host_name) else {
        return Err(shown);
    };
    let listen = listen
        .trim()
        .trim_matches(['[', ']'])
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let ip = name.parse::<IpAddr>().ok();
    let listen_is_wildcard = listen.parse::<IpAddr>().is_ok_and(|a| a.is_unspecified());
    let ok = name == "localhost"
        || ip.is_some_and(|a| a.is_loopback())
        || (!listen_is_wildcard && name == listen)
        || (ip.is_some() && local.is_some_and(|l| Some(l.ip()) == ip))
        || allowed.iter().any(|a| a == "*" || *a == name);
    if ok { Ok(()) } else { Err(shown) }
}

/// The host name of a `Host` value (`name[:port]`, `[v6][:port]`), lower case, without a
/// trailing dot and IPv6 brackets; `None` when it is not one.
fn host_name(value: &str) -> Option<String> {
    let v = value.trim();
    let name = if let Some(rest) = v.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        inside
    } else {
        match v.split_once(':') {
            Some((n, port)) if port.bytes().all(|b| b.is_ascii_digit()) => n,
            Some(_) => return None,
            None => v,
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

/// True when a request can change state and a browser could have sent it from another site
/// without a CORS preflight: an unsafe method, none of [`X_PLOTTY_REQUEST`], `Authorization` or
/// `X-Api-Key`, and no body type or one of the three a form may send (`text/plain`,
/// `application/x-www-form-urlencoded`, `multipart/form-data`).
pub(super) fn is_cross_site_capable(method: &Method, headers: &HeaderMap) -> bool {
    if matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) {
        return false;
    }
    let has = |name: &str| headers.get(name).is_some_and(|v| !v.is_empty());
    if has(X_PLOTTY_REQUEST) || has(header::AUTHORIZATION.as_str()) || has(X_API_KEY) {
        return false;
    }
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase());
    match ctype {
        None => true,
        Some(t) => {
            let essence = t.split(';').next().unwrap_or("").trim().to_owned();
            matches!(
                essence.as_str(),
                "" | "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data"
            )
        }
    }
}

/// The WebSocket subprotocol a browser page offers (and the daemon then selects) to say it speaks
/// plotty's stream; a browser fails the handshake if it offered protocols and none is selected.
pub(super) const WS_PROTOCOL: &str = "plotty";

/// The prefix of the subprotocol that carries the API key (base64url of its UTF-8, no padding):
/// a browser's `WebSocket` cannot send headers, and a key in the URL would land in logs and
/// history.
const WS_KEY_PROTOCOL: &str = "plotty-key.";

/// The key a request presents, from the first of: `Authorization: Bearer`, `X-Api-Key`, the
/// `plotty-key.` WebSocket subprotocol, `?api_key=`.
pub(super) fn presented_key(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        });
    bearer
        .or_else(|| {
            headers
                .get(X_API_KEY)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_owned())
        })
        .or_else(|| subprotocol_key(headers))
        .or_else(|| query_param(uri, "api_key"))
}

/// The key in a `plotty-key.<base64url>` entry of `Sec-WebSocket-Protocol`, if any.
fn subprotocol_key(headers: &HeaderMap) -> Option<String> {
    subprotocols(headers)
        .iter()
        .find_map(|p| p.strip_prefix(WS_KEY_PROTOCOL))
        .map(|encoded| {
            // Undecodable text is still presented (as itself): it is then a wrong key, answered
            // with AUTH_FAILED, not a missing one.
            base64url_decode(encoded)
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_else(|| encoded.to_owned())
        })
}

/// The entries of `Sec-WebSocket-Protocol` (comma-separated, over any number of headers).
pub(super) fn subprotocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Decodes unpadded (or padded) base64url; `None` on any other character or a dangling bit
/// group.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            // Masked to one byte: the cast keeps exactly those bits.
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    // 6 leftover bits cannot come from whole bytes.
    (bits < 6).then_some(out)
}

/// Compares a presented key with the expected one in time that depends only on the expected key's
/// length.
pub(super) fn keys_match(expected: &str, presented: &str) -> bool {
    let e = expected.as_bytes();
    let p = presented.as_bytes();
    let mut diff = u8::from(e.len() != p.len());
    for (i, byte) in e.iter().enumerate() {
        diff |= byte ^ p.get(i).copied().unwrap_or(!byte);
    }
    diff == 0
}

/// Checks the `Origin` header: `Err(origin)` when a browser page from another site is refused.
/// Requests without `Origin` come from programs, not pages, and are allowed.
pub(super) fn check_origin(headers: &HeaderMap, policy: &OriginPolicy) -> Result<(), String> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let shown = String::from_utf8_lossy(origin.as_bytes())
        .chars()
        .take(200)
        .collect::<String>();
    let Ok(origin) = origin.to_str() else {
        return Err(shown);
    };
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let allowed = match policy {
        OriginPolicy::Any => true,
        OriginPolicy::List(list) => list.contains(&origin),
        OriginPolicy::SameHost => headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|host| same_host(&origin, host)),
    };
    if allowed { Ok(()) } else { Err(shown) }
}

/// True when `origin` (`scheme://host[:port]`) names the host and port of the `Host` header.
fn same_host(origin: &str, host: &str) -> bool {
    let (default_port, authority) = if let Some(a) = origin.strip_prefix("http://") {
        ("80", a)
    } else if let Some(a) = origin.strip_prefix("https://") {
        ("443", a)
    } else {
        return false;
    };
    let normalise = |a: &str| -> String {
        let a = a.trim().to_ascii_lowercase();
        let has_port = match a.strip_prefix('[') {
            // `[::1]` has colons but no port; `[::1]:80` has one after the bracket.
            Some(rest) => rest
                .split_once(']')
                .is_some_and(|(_, p)| p.starts_with(':')),
            None => a.contains(':'),
        };
        if has_port {
            a
        } else {
            format!("{a}:{default_port}")
        }
    };
    normalise(authority) == normalise(host)
}

/// The first value of `name` in the query string, percent-decoded.
pub(super) fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

/// Decodes `%XX` escapes and `+` (as a space); invalid escapes are kept as written.
pub(super) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn keys_from_every_place() {
        let uri: Uri = "/ws?x=1&api_key=s%2Bcret+1".parse().unwrap();
        assert_eq!(
            presented_key(&uri, &HeaderMap::new()).as_deref(),
            Some("s+cret 1")
        );
        let h = headers(&[("authorization", "Bearer  abc "), (X_API_KEY, "def")]);
        assert_eq!(presented_key(&uri, &h).as_deref(), Some("abc"));
        let h = headers(&[("authorization", "Basic abc"), (X_API_KEY, "def")]);
        assert_eq!(presented_key(&uri, &h).as_deref(), Some("def"));
        assert_eq!(
            presented_key(&"/ws".parse().unwrap(), &HeaderMap::new()),
            None
        );
    }

    #[test]
    fn a_browser_websocket_presents_its_key_as_a_subprotocol() {
        let uri: Uri = "/ws?api_key=from-url".parse().unwrap();
        // base64url("s3cret/ä?") without padding.
        let h = headers(&[(
            "sec-websocket-protocol",
            "plotty, plotty-key.czNjcmV0L8OkPw",
        )]);
        assert_eq!(presented_key(&uri, &h).as_deref(), Some("s3cret/ä?"));
        assert_eq!(subprotocols(&h), ["plotty", "plotty-key.czNjcmV0L8OkPw"]);
        // Headers come first; a protocol list without a key falls through to the query.
        let h = headers(&[
            ("sec-websocket-protocol", "plotty-key.YQ"),
            (X_API_KEY, "header"),
        ]);
        assert_eq!(presented_key(&uri, &h).as_deref(), Some("header"));
        let h = headers(&[("sec-websocket-protocol", "plotty")]);
        assert_eq!(presented_key(&uri, &h).as_deref(), Some("from-url"));
        // Not base64url: presented as written (a wrong key, not a missing one).
        let h = headers(&[("sec-websocket-protocol", "plotty-key.a*b")]);
        assert_eq!(presented_key(&uri, &h).as_deref(), Some("a*b"));
        assert_eq!(base64url_decode("YWJj").as_deref(), Some(&b"abc"[..]));
        assert_eq!(base64url_decode("YWI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(base64url_decode("Y"), None);
        assert_eq!(base64url_decode(""), Some(Vec::new()));
    }

    #[test]
    fn key_comparison() {
        assert!(keys_match("secret-key", "secret-key"));
        for bad in ["", "secret-ke", "secret-key!", "Secret-key", "secret-kez"] {
            assert!(!keys_match("secret-key", bad), "{bad}");
        }
        assert!(!keys_match("a", "\u{0}"));
    }

    #[test]
    fn origins() {
        let same = OriginPolicy::SameHost;
        assert!(
            check_origin(&HeaderMap::new(), &same).is_ok(),
            "no Origin: a program"
        );
        let h = headers(&[
            ("origin", "http://localhost:8766"),
            ("host", "localhost:8766"),
        ]);
        assert!(check_origin(&h, &same).is_ok());
        let h = headers(&[("origin", "http://LOCALHOST"), ("host", "localhost:80")]);
        assert!(check_origin(&h, &same).is_ok());
        let h = headers(&[("origin", "http://[::1]:8766"), ("host", "[::1]:8766")]);
        assert!(check_origin(&h, &same).is_ok());
        let h = headers(&[
            ("origin", "https://evil.example"),
            ("host", "localhost:8766"),
        ]);
        assert_eq!(check_origin(&h, &same), Err("https://evil.example".into()));
        let h = headers(&[
            ("origin", "http://localhost:9999"),
            ("host", "localhost:8766"),
        ]);
        assert!(check_origin(&h, &same).is_err());
        let h = headers(&[("origin", "null"), ("host", "localhost:8766")]);
        assert!(check_origin(&h, &same).is_err());
        let h = headers(&[("origin", "https://evil.example")]);
        assert!(check_origin(&h, &OriginPolicy::Any).is_ok());
        let list = OriginPolicy::List(vec!["https://studio.example.org".into()]);
        let h = headers(&[("origin", "https://Studio.example.org/")]);
        assert!(check_origin(&h, &list).is_ok());
        assert!(check_origin(&headers(&[("origin", "https://x.org")]), &list).is_err());
    }

    #[test]
    fn hosts_against_dns_rebinding() {
        let ok = |host: &'static str, listen: &str, local: Option<&str>, allowed: &[&str]| {
            let h = headers(&[("host", host)]);
            let allowed: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
            check_host(&h, listen, local.map(|l| l.parse().unwrap()), &allowed).is_ok()
        };
        for host in [
            "localhost:8766",
            "LOCALHOST",
            "localhost.:8766",
            "127.0.0.1:8766",
            "127.1.2.3",
            "[::1]:8766",
            "[::1]",
        ] {
            assert!(ok(host, "localhost", None, &[]), "{host}");
        }
        assert!(check_host(&HeaderMap::new(), "localhost", None, &[]).is_ok());
        for host in [
            "attacker.example:8766",
            "attacker.example",
            "localhost.attacker.example:8766",
            "127.0.0.1.attacker.example",
            "localhost:80:80",
            "[::1",
            "[::1]x",
            "",
            "0.0.0.0:8766",
        ] {
            assert!(!ok(host, "localhost", None, &[]), "{host}");
            assert!(!ok(host, "0.0.0.0", Some("127.0.0.1:8766"), &[]), "{host}");
        }
        // The listen address, the connection's own address, the configured names.
        assert!(ok("plotter.lan:8766", "plotter.lan", None, &[]));
        assert!(ok(
            "192.168.1.20:8766",
            "0.0.0.0",
            Some("192.168.1.20:8766"),
            &[]
        ));
        assert!(!ok(
            "192.168.1.21:8766",
            "0.0.0.0",
            Some("192.168.1.20:8766"),
            &[]
        ));
        assert!(ok(
            "Plotter.Local:8766",
            "0.0.0.0",
            None,
            &["plotter.local"]
        ));
        assert!(!ok("evil.local:8766", "0.0.0.0", None, &["plotter.local"]));
        assert!(ok("anything.example", "localhost", None, &["*"]));
    }

    #[test]
    fn requests_a_foreign_page_could_send() {
        let post = Method::POST;
        assert!(is_cross_site_capable(&post, &HeaderMap::new()));
        for ctype in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "MULTIPART/FORM-DATA; boundary=x",
        ] {
            let h = headers(&[("content-type", ctype)]);
            assert!(is_cross_site_capable(&post, &h), "{ctype}");
            assert!(is_cross_site_capable(&Method::DELETE, &h), "{ctype}");
        }
        for h in [
            headers(&[("content-type", "image/svg+xml")]),
            headers(&[("content-type", "application/json")]),
            headers(&[(X_PLOTTY_REQUEST, "1"), ("content-type", "text/plain")]),
            headers(&[("authorization", "Bearer k")]),
            headers(&[(X_API_KEY, "k")]),
        ] {
            assert!(!is_cross_site_capable(&post, &h), "{h:?}");
        }
        assert!(!is_cross_site_capable(&Method::GET, &HeaderMap::new()));
    }

    #[test]
    fn percent_decoding_never_panics() {
        assert_eq!(percent_decode("a%20b%zz%"), "a b%zz%");
        assert_eq!(percent_decode("%e2%82%ac"), "€");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }
}
