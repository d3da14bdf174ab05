//! The HTTP API the web UI's settings and device panel use, against a `plotty daemon` on the
//! simulator: the per-job option defaults, presets, the pen height test (the simulator's servo
//! must go where asked), clearing a past device error, and the motor supply read while idle.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::Method;
use plotty_host::client::http::HttpClient;
use plotty_host::client::{ClientError, Endpoint};
use serde_json::{Value, json};

use crate::common::{Env, free_port};

/// A daemon on the simulator with `extra` lines in its `device:` section, and a client for it.
fn sim(env: &Env, extra: &str) -> (crate::common::Running, HttpClient) {
    env.write_default_config(&format!("device:\n  type: simulator\n{extra}"));
    let port = free_port();
    let d = crate::common::daemon(env, port);
    let http = HttpClient::new(Endpoint {
        host: "127.0.0.1".into(),
        port,
        api_key: None,
    });
    (d, http)
}

/// The status, code and message of a refused request.
fn refused(r: Result<Value, ClientError>) -> (u16, String, String) {
    match r {
        Err(ClientError::Api {
            status,
            code,
            message,
        }) => (status, code, message),
        other => panic!("not refused: {other:?}"),
    }
}

async fn put_json(http: &HttpClient, path: &str, body: &'static str) -> Result<Value, ClientError> {
    http.json(
        Method::PUT,
        path,
        Some(("application/json", Bytes::from_static(body.as_bytes()))),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_defaults_come_from_the_config_and_presets_are_checked_by_its_rules() {
    let env = Env::new();
    let (_d, http) = sim(&env, "  pen_pos_up: 70\n  model: 2\n");
    let options = http.get("/api/options").await.unwrap();
    assert_eq!(options["defaults"]["pen_pos_up"], json!(70.0), "{options}");
    assert_eq!(options["defaults"]["model"], json!(2), "{options}");

    let (status, code, message) = refused(
        put_json(
            &http,
            "/api/presets/fast",
            r#"{"speed_penup": 900, "accel": 0}"#,
        )
        .await,
    );
    assert_eq!((status, code.as_str()), (400, "INVALID_FIELD"));
    // Every value out of range, each with the config rule's fix.
    assert!(
        message.contains("2 problems") && message.contains("speed-penup: 900 is out of range"),
        "{message}"
    );
    let saved = put_json(
        &http,
        "/api/presets/fine%20liner",
        r#"{"pen_pos_down": "35", "speed_pendown": 20, "model": "A3"}"#,
    )
    .await
    .unwrap();
    assert_eq!(saved["name"], "fine liner");
    assert_eq!(
        saved["options"],
        json!({"pen_pos_down": 35.0, "speed_pendown": 20.0, "model": 2})
    );
    let list = http.get("/api/presets").await.unwrap();
    assert_eq!(list["count"], 1, "{list}");
    assert_eq!(list["presets"][0]["options"], saved["options"]);
    http.delete("/api/presets/fine%20liner").await.unwrap();
    let (status, code, _) = refused(http.delete("/api/presets/fine%20liner").await);
    assert_eq!((status, code.as_str()), (404, "UNKNOWN_PRESET"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pen_height_trial_moves_the_servo_and_an_idle_device_reads_its_supply() {
    let env = Env::new();
    let (_d, http) = sim(&env, "");
    // The motor supply is read while idle: no plot has run.
    let deadline = Instant::now() + Duration::from_secs(60);
    let supply = loop {
        let v = http.get("/api/devices").await.unwrap();
        if !v["devices"][0]["motor_supply"].is_null() {
            break v["devices"][0]["motor_supply"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "no supply reading while idle: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(supply["low"], json!(false), "{supply}");

    // The reference's servo scale: round(9855 + 179.76 × percent), 1/12 µs.
    for (position, percent, servo) in [("down", "45", 17944), ("up", "80", 24236)] {
        let r = http
            .post(
                &format!("/api/devices/simulator/pen-height?position={position}&percent={percent}"),
                None,
            )
            .await
            .unwrap();
        assert!(
            r["message"]
                .as_str()
                .unwrap()
                .contains(&format!("trial height {percent}%")),
            "{r}"
        );
        let d = &http.get("/api/devices").await.unwrap()["devices"][0];
        assert_eq!(d["pen_servo"], json!(servo), "{d}");
        assert_eq!(d["pen_up"], json!(position == "up"), "{d}");
    }
    let (status, code, message) = refused(
        http.post(
            "/api/devices/simulator/pen-height?position=down&percent=101",
            None,
        )
        .await,
    );
    assert_eq!((status, code.as_str()), (400, "INVALID_FIELD"));
    assert!(
        message.contains("pen-pos-down: 101 is out of range"),
        "{message}"
    );
    let (status, _, _) = refused(
        http.post(
            "/api/devices/simulator/pen-height?position=sideways&percent=1",
            None,
        )
        .await,
    );
    assert_eq!(status, 400);

    // Nothing to clear on a healthy device, said so.
    let r = http
        .post("/api/devices/simulator/clear-error", None)
        .await
        .unwrap();
    assert_eq!(r["message"], "no error to clear", "{r}");
}
