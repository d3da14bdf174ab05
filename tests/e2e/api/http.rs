//! The HTTP endpoints, the manual's `curl` test, and the upload limit.

use std::time::Duration;

pub(crate) use axum_like::multipart;
use bytes::Bytes;
use plotty_host::api::ApiLimits;
use plotty_host::client::ClientError;
use plotty_host::hooks::{Hook, HookSet};
use plotty_host::job::JobState;
use serde_json::json;

use super::{SVG, raw, start, start_with};

/// A tiny multipart/form-data encoder for the tests.
mod axum_like {
    pub(crate) fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
        let boundary = "plottytestboundary7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (name, file, data) in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match file {
                Some(f) => body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: image/svg+xml\r\n\r\n"
                    )
                    .as_bytes(),
                ),
                None => body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        (format!("multipart/form-data; boundary={boundary}"), body)
    }
}

fn api_error(r: Result<serde_json::Value, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Api { status, code, .. }) => (status, code),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_manuals_curl_command_gets_101_and_hello() {
    let d = start().await;
    let resp = raw(
        d.addr,
        b"GET /ws HTTP/1.1\r\nHost: localhost:8766\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        Duration::from_millis(500),
    )
    .await;
    assert!(
        resp.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{resp}"
    );
    let lower = resp.to_ascii_lowercase();
    assert!(lower.contains("upgrade: websocket") && lower.contains("connection: upgrade"));
    // No key was sent, so there is no accept value; the stream works all the same.
    assert!(!lower.contains("sec-websocket-accept"));
    assert!(resp.contains("\"type\":\"hello\""), "{resp}");

    // The real curl, when it is installed.
    if let Ok(out) = tokio::process::Command::new("curl")
        .args(["-s", "-i", "-N", "--max-time", "1"])
        .args(["-H", "Connection: Upgrade", "-H", "Upgrade: websocket"])
        .arg(format!("http://{}/ws", d.addr))
        .output()
        .await
    {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with("HTTP/1.1 101 Switching Protocols"),
            "{text}"
        );
        assert!(text.contains("\"type\":\"hello\""), "{text}");
    } else {
        eprintln!("curl is not installed; only the raw request was checked");
    }

    // A proper client handshake gets the accept value of RFC 6455's example key.
    let resp = raw(
        d.addr,
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        Duration::from_millis(300),
    )
    .await;
    assert!(
        resp.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{resp}"
    );
    // Without the upgrade headers: 426 and what to do.
    let resp = raw(
        d.addr,
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        Duration::from_millis(300),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 426"), "{resp}");
    assert!(resp.contains("UPGRADE_REQUIRED") && resp.contains("WebSocket client"));
    let resp = raw(
        d.addr,
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\n\r\n",
        Duration::from_millis(300),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 426"), "{resp}");
    assert!(
        resp.to_ascii_lowercase()
            .contains("sec-websocket-version: 13")
    );
    d.stop().await;
}

#[tokio::test]
async fn every_endpoint() {
    let marker = tempfile::NamedTempFile::new().unwrap();
    let marker_path = marker.path().display().to_string();
    let d = start_with(
        |s| {
            let hook =
                Hook::command(&format!("echo \"$PLOTTY_JOB_NAME\" > {marker_path}"), None).unwrap();
            s.hooks = HookSet::new([(JobState::Completed, vec![hook])].into_iter().collect());
        },
        ApiLimits::default(),
    )
    .await;
    let http = d.http();

    // GET / is the web UI, whose entry module is built on the stream.
    let page = http.send(axum::http::Method::GET, "/", None).await.unwrap();
    assert_eq!(page.status, 200);
    let html = String::from_utf8_lossy(&page.body);
    assert!(
        html.contains("<html") && html.contains("/ui/app.js"),
        "{html}"
    );
    let app = http
        .send(axum::http::Method::GET, "/ui/api.js", None)
        .await
        .unwrap();
    assert_eq!(app.status, 200);
    assert!(String::from_utf8_lossy(&app.body).contains("/ws"));

    // A selection of layers the drawing lacks is refused at submission, listing its layers…
    let refused = http
        .post(
            "/api/jobs?layers=1,2",
            Some(("image/svg+xml", Bytes::from_static(SVG))),
        )
        .await;
    match refused {
        Err(ClientError::Api {
            status, message, ..
        }) => {
            assert_eq!(status, 400);
            assert!(message.contains("the layers are: \"Layer 1\""), "{message}");
        }
        other => panic!("expected the selection refused, got {other:?}"),
    }
    // Submit: a raw SVG body with options in the query…
    let created = http
        .post(
            "/api/jobs?name=first%20one&paper=A3&layers=Layer%201&priority=4&start=true",
            Some(("image/svg+xml", Bytes::from_static(SVG))),
        )
        .await
        .unwrap();
    assert_eq!(created["count"], 1);
    let first = created["jobs"][0].clone();
    assert_eq!(first["name"], "first one");
    assert_eq!(first["state"], "QUEUED");
    assert_eq!(first["paper"], "A3");
    assert_eq!(first["layers_selected"], "Layer 1");
    assert_eq!(first["priority"], 4);
    assert_eq!(first["start"], true);
    let first_id = first["id"].as_str().unwrap().to_owned();
    // …or a form with two files and fields.
    let (ctype, body) = multipart(&[
        ("priority", None, b"9"),
        ("file", Some("a.svg"), SVG),
        ("file", Some("b.svg"), SVG),
        ("paper", None, b"Letter"),
    ]);
    let ctype: &'static str = Box::leak(ctype.into_boxed_str());
    let created = http
        .post("/api/jobs", Some((ctype, Bytes::from(body))))
        .await
        .unwrap();
    assert_eq!(created["count"], 2);
    assert_eq!(created["jobs"][0]["name"], "a.svg");
    assert_eq!(created["jobs"][1]["name"], "b.svg");
    assert_eq!(created["jobs"][1]["paper"], "Letter");
    assert_eq!(created["jobs"][1]["priority"], 9);
    assert_eq!(
        api_error(
            http.post(
                "/api/jobs",
                Some(("application/json", Bytes::from_static(b"{}")))
            )
            .await
        ),
        (415, "UNSUPPORTED_MEDIA_TYPE".into())
    );
    assert_eq!(
        api_error(
            http.post(
                "/api/jobs",
                Some(("image/svg+xml", Bytes::from_static(b"%PDF")))
            )
            .await
        ),
        (400, "INVALID_REQUEST".into())
    );
    assert_eq!(
        api_error(
            http.post(
                "/api/jobs?priority=high",
                Some(("image/svg+xml", Bytes::from_static(SVG)))
            )
            .await
        ),
        (400, "INVALID_FIELD".into())
    );

    // Lists: queue order, state filter, limit.
    let jobs = http.get("/api/jobs").await.unwrap();
    let names: Vec<&str> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a.svg", "b.svg", "first one"]);
    assert_eq!(
        http.get("/api/jobs?state=queued&limit=1").await.unwrap()["count"],
        1
    );
    assert_eq!(
        http.get("/api/jobs?state=COMPLETED").await.unwrap()["count"],
        0
    );
    assert_eq!(api_error(http.get("/api/jobs?state=RUNNING").await).0, 400);

    // One job, with its history.
    let job = http.get(&format!("/api/jobs/{first_id}")).await.unwrap();
    assert_eq!(job["events"].as_array().unwrap().len(), 2);
    assert_eq!(job["events"][1]["to_state"], "QUEUED");
    assert_eq!(job["layers"], json!([]));
    assert!(job["timing"].is_object());
    assert_eq!(
        api_error(http.get("/api/jobs/nope").await),
        (404, "JOB_NOT_FOUND".into())
    );
    assert_eq!(
        api_error(http.get("/api/jobs/a%20b").await),
        (400, "INVALID_JOB_ID".into())
    );
    // The preview of a job whose SVG passed the submission's sniffing but does not parse.
    let broken = http
        .post(
            "/api/jobs",
            Some((
                "image/svg+xml",
                Bytes::from_static(b"<svg xmlns=\"http://www.w3.org/2000/svg\"><path d="),
            )),
        )
        .await
        .unwrap();
    let broken_id = broken["jobs"][0]["id"].as_str().unwrap().to_owned();
    let (status, code) = api_error(
        http.get(&format!("/api/jobs/{broken_id}/preview.svg"))
            .await,
    );
    assert_eq!((status, code.as_str()), (422, "INVALID_SVG"));
    // Out of the queue again, so that the counts below are the other jobs'.
    http.post(&format!("/api/jobs/{broken_id}/cancel"), None)
        .await
        .unwrap();
    http.delete(&format!("/api/jobs/{broken_id}"))
        .await
        .unwrap();
    let a_id = created["jobs"][0]["id"].as_str().unwrap();
    let svg = http
        .send(
            axum::http::Method::GET,
            &format!("/api/jobs/{a_id}/preview.svg"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(svg.status, 200);
    let text = String::from_utf8_lossy(&svg.body);
    assert!(
        text.contains("<svg") && text.contains("<path stroke="),
        "{text}"
    );

    // Actions.
    assert_eq!(
        api_error(
            http.post(&format!("/api/jobs/{first_id}/pause"), None)
                .await
        ),
        (409, "INVALID_STATE".into())
    );
    assert_eq!(
        api_error(
            http.post(&format!("/api/jobs/{first_id}/resume"), None)
                .await
        ),
        (409, "INVALID_STATE".into())
    );
    // Start takes READY jobs only; this one is still QUEUED, and the error says so.
    match http
        .post(&format!("/api/jobs/{first_id}/start"), None)
        .await
    {
        Err(ClientError::Api {
            status, message, ..
        }) => assert!(status == 409 && message.contains("QUEUED"), "{message}"),
        other => panic!("expected an API error, got {other:?}"),
    }
    assert_eq!(
        api_error(
            http.post(&format!("/api/jobs/{first_id}/dance"), None)
                .await
        ),
        (404, "UNKNOWN_ACTION".into())
    );
    assert_eq!(
        api_error(http.delete(&format!("/api/jobs/{first_id}")).await),
        (409, "INVALID_STATE".into())
    );
    let cancelled = http
        .post(&format!("/api/jobs/{first_id}/cancel"), None)
        .await
        .unwrap();
    assert_eq!(cancelled["state"], "ABORTED");
    let retried = http
        .post(&format!("/api/jobs/{first_id}/retry"), None)
        .await
        .unwrap();
    assert_eq!(retried["state"], "QUEUED");
    assert_eq!(retried["retry_of"], first_id.as_str());
    let aborted = http
        .post(
            &format!("/api/jobs/{}/abort", retried["id"].as_str().unwrap()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(aborted["state"], "ABORTED");
    let deleted = http.delete(&format!("/api/jobs/{first_id}")).await.unwrap();
    assert_eq!(deleted["deleted"], first_id.as_str());
    assert_eq!(
        api_error(http.delete(&format!("/api/jobs/{first_id}")).await).0,
        404
    );

    // Devices: none attached in this build, said plainly.
    assert_eq!(
        http.get("/api/devices").await.unwrap(),
        json!({"count": 0, "devices": []})
    );
    let r = http.post("/api/devices/sim/home", None).await;
    let Err(ClientError::Api {
        status,
        code,
        message,
    }) = r
    else {
        panic!("{r:?}");
    };
    assert_eq!((status, code.as_str()), (503, "NO_DEVICE"));
    assert!(message.starts_with("no plotter attached: "), "{message}");
    assert_eq!(
        api_error(http.post("/api/devices/sim/dance", None).await).0,
        404
    );

    // Hooks: listed, and run against a sample job on request.
    let hooks = http.get("/api/hooks").await.unwrap();
    assert_eq!(hooks["count"], 1);
    assert_eq!(hooks["hooks"]["COMPLETED"][0]["type"], "command");
    let report = http
        .post(
            "/api/hooks/test",
            Some((
                "application/json",
                Bytes::from_static(b"{\"state\": \"completed\"}"),
            )),
        )
        .await
        .unwrap();
    assert_eq!(report["success"], true);
    assert_eq!(report["state"], "COMPLETED");
    assert!(
        std::fs::read_to_string(marker.path())
            .unwrap()
            .contains("hook test")
    );
    assert_eq!(api_error(http.post("/api/hooks/test", None).await).0, 400);
    assert_eq!(
        api_error(http.post("/api/hooks/test?state=RUNNING", None).await).0,
        400
    );

    // Status: the original's fields plus queue and device.
    let s = http.get("/status").await.unwrap();
    for k in [
        "connections",
        "max_connections",
        "subscriptions",
        "queue",
        "device",
        "status",
    ] {
        assert!(s.get(k).is_some(), "{k} missing: {s}");
    }
    assert_eq!(s["max_connections"], 100);
    assert_eq!(s["device"], serde_json::Value::Null);
    assert_eq!(s["queue"]["length"], 2);
    assert_eq!(s["queue"]["by_state"]["ABORTED"], 1);

    // Unknown paths and methods: JSON errors.
    assert_eq!(
        api_error(http.get("/api/pens").await),
        (404, "NOT_FOUND".into())
    );
    assert_eq!(
        api_error(http.delete("/status").await),
        (405, "METHOD_NOT_ALLOWED".into())
    );
    d.stop().await;
}

#[tokio::test]
async fn uploads_over_the_limit_are_refused_before_the_body_is_read() {
    let d = start_with(|s| s.websocket.max_upload_size = 4096, ApiLimits::default()).await;
    // Only the headers are sent: the answer must come anyway.
    let resp = raw(
        d.addr,
        b"POST /api/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/svg+xml\r\nContent-Length: 100000000\r\n\r\n",
        Duration::from_millis(500),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(resp.contains("PAYLOAD_TOO_LARGE") && resp.contains("max_upload_size"));
    // A chunked body without a length is cut off at the limit.
    let mut req = b"POST /api/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/svg+xml\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..10 {
        req.extend_from_slice(b"400\r\n");
        req.extend_from_slice(&[b' '; 0x400]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let resp = raw(d.addr, &req, Duration::from_millis(500)).await;
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    // And in a form.
    let (ctype, body) = multipart(&[("file", Some("big.svg"), &[b' '; 8192])]);
    let resp = raw(
        d.addr,
        format!(
            "POST /api/jobs HTTP/1.1\r\nHost: localhost\r\nX-Plotty-Request: 1\r\nContent-Type: {ctype}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            body.len()
        )
        .as_bytes()
        .iter()
        .chain(body.iter())
        .chain(b"\r\n0\r\n\r\n".iter())
        .copied()
        .collect::<Vec<u8>>()
        .as_slice(),
        Duration::from_millis(500),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    // Under the limit is fine.
    let ok = d
        .http()
        .post(
            "/api/jobs",
            Some(("image/svg+xml", Bytes::from_static(SVG))),
        )
        .await
        .unwrap();
    assert_eq!(ok["count"], 1);
    d.stop().await;
}
