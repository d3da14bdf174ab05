//! The per-job plot options the web UI offers at upload, and presets of them:
//!
//! - `GET /api/options`: the option names, the daemon's configured value of each (the config stays
//!   the source of defaults: an option left out of an upload takes it), and the models;
//! - `GET /api/presets`, `PUT /api/presets/{name}`, `DELETE /api/presets/{name}`: named sets of
//!   options kept in the store, so every browser sees the same ones.
//!
//! A preset's values go through exactly what an upload's do: each is read by
//! [`RunOptions::set`] (as a form field's text) and the set is checked by
//! [`crate::settings::Settings::with_run`], the config file's range rules, whose message a refusal
//! carries.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use plotty_motion::kinematics::Model;
use serde_json::{Map, Value, json};

use super::Api;
use super::http::error;
use super::protocol::code;
use crate::settings::{Reordering, RunOptions};
use crate::store::StoreError;
use crate::store::presets::Preset;

/// `GET /api/options`.
pub(super) async fn options(State(api): State<Arc<Api>>) -> Response {
    let settings = api.settings();
    let ad = &settings.device.axidraw;
    let models: Vec<Value> = Model::ALL
        .iter()
        .map(|m| json!({ "number": m.number(), "name": m.name() }))
        .collect();
    let reordering = match RunOptions::default().reordering() {
        Reordering::FileOrder => 4,
        Reordering::Adjoining => 0,
        Reordering::Full => 2,
    };
    Json(json!({
        "names": RunOptions::NAMES,
        "defaults": {
            "speed_pendown": ad.speed_pendown,
            "speed_penup": ad.speed_penup,
            "accel": ad.accel,
            "pen_pos_up": ad.pen_pos_up,
            "pen_pos_down": ad.pen_pos_down,
            "pen_rate_raise": ad.pen_rate_raise,
            "pen_rate_lower": ad.pen_rate_lower,
            "model": ad.model.number(),
            "const_speed": ad.const_speed,
            "reordering": reordering,
        },
        "models": models,
    }))
    .into_response()
}

fn view(p: &Preset) -> Value {
    json!({
        "name": p.name,
        "options": p.options,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    })
}

fn store_error(e: &StoreError) -> Response {
    match e {
        StoreError::Invalid(m) => error(StatusCode::BAD_REQUEST, code::INVALID_FIELD, m.clone()),
        StoreError::Closed => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SHUTTING_DOWN",
            e.to_string(),
        ),
        other => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "DATABASE_ERROR",
            other.to_string(),
        ),
    }
}

/// `GET /api/presets`.
pub(super) async fn list(State(api): State<Arc<Api>>) -> Response {
    match api.store.presets().await {
        Ok(list) => {
            let list: Vec<Value> = list.iter().map(view).collect();
            Json(json!({ "count": list.len(), "presets": list })).into_response()
        }
        Err(e) => store_error(&e),
    }
}

/// The options of a preset's body: a JSON object of option names (axicli's) and values, each
/// read as an upload form's field would be (an empty string or `null`: not set, the config
/// decides), then checked by the config's range rules.
/// A refusal is `(error code, message)`, answered with 400.
fn options_of(api: &Api, body: &[u8]) -> Result<RunOptions, (&'static str, String)> {
    let bad = |m: String| (code::INVALID_FIELD, m);
    let fields: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) | Err(_) => {
            return Err((
                code::INVALID_JSON,
                "send the preset's options as a JSON object, e.g. {\"pen_pos_down\": 30, \
                 \"speed_pendown\": 20}"
                    .to_owned(),
            ));
        }
    };
    let mut run = RunOptions::default();
    for (name, value) in &fields {
        let text = match value {
            Value::Null => continue,
            Value::String(s) if s.trim().is_empty() => continue,
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Array(_) | Value::Object(_) => {
                return Err(bad(format!("`{name}` takes a number or true/false")));
            }
        };
        run.set(name, &text).map_err(bad)?;
    }
    api.settings()
        .with_run(&run)
        .map_err(|e| bad(e.to_string()))?;
    Ok(run)
}

/// `PUT /api/presets/{name}` with the options as a JSON object: saves (or replaces) a preset.
pub(super) async fn save(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let run = match options_of(&api, &body) {
        Ok(r) => r,
        Err((code, message)) => return error(StatusCode::BAD_REQUEST, code, message),
    };
    let options = match serde_json::to_value(&run) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                format!("cannot write the options: {e}"),
            );
        }
    };
    match api.store.save_preset(&name, options).await {
        Ok(p) => Json(view(&p)).into_response(),
        Err(e) => store_error(&e),
    }
}

/// `DELETE /api/presets/{name}`.
pub(super) async fn delete(State(api): State<Arc<Api>>, Path(name): Path<String>) -> Response {
    match api.store.delete_preset(&name).await {
        Ok(Some(p)) => Json(json!({ "deleted": p.name, "preset": view(&p) })).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "UNKNOWN_PRESET",
            format!("no preset named `{name}`"),
        ),
        Err(e) => store_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(r: Response) -> (StatusCode, Value) {
        let status = r.status();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn presets_are_checked_by_the_config_rules_saved_listed_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let api = crate::api::api_without_queue(dir.path());
        // Out of range: the config rule's message, nothing saved.
        let (status, v) = body(
            save(
                State(Arc::clone(&api)),
                Path("too fast".into()),
                Bytes::from_static(br#"{"speed_pendown": 500}"#),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        let message = v["error_message"].as_str().unwrap();
        assert!(
            message.contains("speed-pendown") && message.contains("500 is out of range"),
            "{message}"
        );
        let (_, v) = body(list(State(Arc::clone(&api))).await).await;
        assert_eq!(v["count"], 0, "{v}");
        // Not an option at all.
        let (status, v) = body(
            save(
                State(Arc::clone(&api)),
                Path("odd".into()),
                Bytes::from_static(br#"{"colour": "red"}"#),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        // Form text and JSON numbers alike; empty fields are left to the config.
        let (status, v) = body(
            save(
                State(Arc::clone(&api)),
                Path("fine liner".into()),
                Bytes::from_static(
                    br#"{"pen_pos_down": "35", "speed_pendown": 20, "model": "A3", "reordering": 4, "accel": ""}"#,
                ),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(
            v["options"],
            json!({"pen_pos_down": 35.0, "speed_pendown": 20.0, "model": 2, "reordering": 4})
        );
        let (_, v) = body(list(State(Arc::clone(&api))).await).await;
        assert_eq!(v["presets"][0]["name"], "fine liner", "{v}");
        let (status, _) =
            body(delete(State(Arc::clone(&api)), Path("fine liner".into())).await).await;
        assert_eq!(status, StatusCode::OK);
        let (status, v) =
            body(delete(State(Arc::clone(&api)), Path("fine liner".into())).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    }

    #[tokio::test]
    async fn options_show_the_configured_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let api = crate::api::api_without_queue(dir.path());
        let (_, v) = body(options(State(api)).await).await;
        assert_eq!(v["defaults"]["pen_pos_down"], 30.0, "{v}");
        assert_eq!(v["defaults"]["speed_pendown"], 25.0, "{v}");
        assert_eq!(v["defaults"]["model"], 1, "{v}");
        assert_eq!(v["models"].as_array().unwrap().len(), 7, "{v}");
    }
}
