//! The web UI: plain HTML, CSS and JavaScript modules embedded in the binary at build time and
//! served on the API's port (no CDN, no build step). `GET /` is the page; `GET /ui/<file>` the
//! files it loads. The files live in `ui/`, one per concern:
//!
//! - `index.html`: the page's skeleton (header, queue, upload, job, device, alerts, key dialog);
//! - `style.css`: the layout, a phone-sized one below 700 px;
//! - `app.js`: the entry module: state, the WebSocket stream, the queue, device and alerts;
//! - `api.js`: HTTP and WebSocket access with the API key (kept in `sessionStorage`, sent in a
//!   header or a WebSocket subprotocol, never in a URL);
//! - `upload.js`: drag-and-drop and the file picker, the submit form, import errors;
//! - `settings.js`: the upload's plot settings (the daemon's defaults as placeholders) and
//!   presets;
//! - `job.js`: a job's page: preview, actions with the state's reason, the pen's trail;
//! - `dom.js`: small DOM and formatting helpers.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Each embedded file: name, content type, text.
const FILES: [(&str, &str, &str); 8] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("ui/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("ui/style.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/api.js"),
    ),
    (
        "upload.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/upload.js"),
    ),
    (
        "settings.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/settings.js"),
    ),
    (
        "job.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/job.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/dom.js"),
    ),
];

/// `GET /`: the page.
pub(super) async fn index() -> Response {
    file("index.html")
}

/// `GET /ui/{name}`: one of the page's files.
pub(super) async fn asset(Path(name): Path<String>) -> Response {
    file(&name)
}

/// The embedded file `name`, or a 404 naming the files there are.
fn file(name: &str) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, ctype, text)) => (
            [
                (header::CONTENT_TYPE, *ctype),
                // Embedded in this build: a new daemon may serve new files under the same names.
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *text,
        )
            .into_response(),
        None => super::http::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!(
                "no web UI file `{name}`: there are {}",
                FILES.map(|(n, _, _)| n).join(", ")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn every_file_the_page_loads_is_served_with_its_type() {
        let page = FILES[0].2;
        for (name, ctype, _) in &FILES[1..] {
            // Each module is named by the page or imported by another module.
            let used = page.contains(&format!("/ui/{name}"))
                || FILES
                    .iter()
                    .any(|(_, _, t)| t.contains(&format!("./{name}")));
            assert!(used, "{name} is served but nothing loads it");
            let r = asset(Path((*name).to_owned())).await;
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(r.headers()[header::CONTENT_TYPE], *ctype);
        }
        let r = asset(Path("../Cargo.toml".to_owned())).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let body = r.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("app.js"));
    }

    #[test]
    fn no_file_loads_anything_from_another_site() {
        for (name, _, text) in FILES {
            for bad in ["http://", "https://", "//cdn"] {
                // The SVG namespace is a name, not a download.
                let stripped = text.replace("http://www.w3.org/2000/svg", "");
                assert!(!stripped.contains(bad), "{name} names `{bad}`");
            }
        }
    }
}
