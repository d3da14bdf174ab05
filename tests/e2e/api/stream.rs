//! The WebSocket stream: every message type, the compatibility spellings, snapshots, the job
//! filter, job control, error replies, the progress throttle and lag handling.

use futures_util::{SinkExt, StreamExt};
use plotty_host::api::ApiLimits;
use plotty_host::events::{Alert, DaemonEvent, DeviceState, DeviceStatus, Severity};
use plotty_host::job::{JobEvent, JobId, Reason};
use plotty_host::store::TransitionRequest;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::{connect, progress, start, start_with};

fn is_rfc3339_utc(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|t| t.ends_with('Z') && plotty_host::timestamp::parse(t).is_some())
}

async fn to_plotting(d: &super::TestDaemon, id: &JobId) {
    for e in [
        JobEvent::Analyzed,
        JobEvent::Optimized,
        JobEvent::Prepared,
        JobEvent::Arm,
        JobEvent::Start,
    ] {
        d.ledger
            .apply(TransitionRequest {
                job_id: id.clone(),
                event: e,
                reason: Reason::Pipeline,
                error: None,
                metadata: Value::Null,
            })
            .await
            .unwrap();
    }
}

fn device(status: DeviceState, job: Option<&JobId>) -> DeviceStatus {
    DeviceStatus {
        device_id: "/dev/ttyACM0".into(),
        device_type: "axidraw".into(),
        port: Some("/dev/ttyACM0".into()),
        tags: Vec::new(),
        status,
        firmware_version: Some("EBBv13_and_above EB Firmware Version 3.0.3".into()),
        pen_up: Some(false),
        position_mm: Some((12.5, 40.0)),
        current_job_id: job.cloned(),
        error_count: 0,
        error_message: None,
        last_heartbeat: plotty_host::timestamp::now(),
        uptime_seconds: Some(12.0),
        notice: None,
        motor_supply: None,
        pen_servo: None,
    }
}

#[tokio::test]
async fn hello_subscribe_snapshots_and_direct_replies() {
    let d = start().await;
    let queued = d.submit("queued.svg").await;
    let mut ws = connect(d.addr, "/ws", &[]).await.unwrap();
    let hello = ws.expect("hello").await;
    assert!(is_rfc3339_utc(&hello["timestamp"]), "{hello}");
    assert_eq!(hello["protocol_version"], 1);
    assert_eq!(hello["daemon_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(hello["channels"], json!(["jobs", "devices", "system"]));
    assert_eq!(hello["heartbeat_interval"], 30.0);

    // The manual's spelling: uppercase type, singular `device`.
    ws.send(
        json!({"type": "SUBSCRIBE", "channels": ["jobs", "device", "system"], "request_id": "s1"}),
    )
    .await;
    let sub = ws.expect("subscribed").await;
    assert_eq!(sub["channels"], json!(["jobs", "devices", "system"]));
    assert_eq!(sub["request_id"], "s1");
    let snap = ws.expect("job_state_change").await;
    assert_eq!(snap["job_id"], queued.as_str());
    assert_eq!(snap["to_state"], "QUEUED");
    assert_eq!(snap["from_state"], Value::Null);
    assert_eq!(snap["reason"], "snapshot");
    assert_eq!(snap["snapshot"], true);
    let sys = ws.expect("system_status").await;
    assert_eq!(sys["status"], "healthy");
    assert_eq!(sys["queue_length"], 1);
    assert_eq!(sys["active_jobs"], 0);
    assert_eq!(sys["connections"], 1);
    for k in ["memory_usage", "cpu_usage"] {
        let f = sys[k].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&f), "{k} = {f}");
    }
    assert!(sys["uptime"].as_f64().unwrap() >= 0.0);

    ws.send(json!({"type": "ping", "request_id": 42})).await;
    let pong = ws.expect("pong").await;
    assert_eq!(pong["request_id"], 42);
    assert!(is_rfc3339_utc(&pong["timestamp"]));
    ws.send(json!({"type": "Unsubscribe", "channels": ["SYSTEM"]}))
        .await;
    let un = ws.expect("unsubscribed").await;
    assert_eq!(un["channels"], json!(["system"]));
    assert_eq!(un["remaining"], json!(["jobs", "devices"]));

    // `/status` shows the subscription of this connection.
    let status = d.http().get("/status").await.unwrap();
    let id = hello["connection_id"].to_string();
    assert_eq!(status["subscriptions"][&id], json!(["jobs", "devices"]));
    d.stop().await;
}

#[tokio::test]
async fn live_events_of_every_kind_reach_subscribers() {
    let d = start().await;
    let mut ws = d.ws().await;
    ws.send(json!({"type": "subscribe", "channels": ["all"]}))
        .await;
    ws.expect("subscribed").await;
    ws.until("system_status").await;

    let id = d.submit("live.svg").await;
    let new = ws.expect("job_state_change").await;
    assert_eq!(
        (new["from_state"].clone(), new["to_state"].clone()),
        (Value::Null, json!("NEW"))
    );
    assert_eq!(new["job_name"], "live.svg");
    let queued = ws.expect("job_state_change").await;
    assert_eq!(queued["from_state"], "NEW");
    assert_eq!(queued["to_state"], "QUEUED");
    assert_eq!(queued["reason"], "submitted");
    assert!(queued["metadata"].is_object());

    to_plotting(&d, &id).await;
    for _ in 0..5 {
        ws.expect("job_state_change").await;
    }
    d.inject(DaemonEvent::JobProgress(progress(&id, 1, 45, 100)));
    let p = ws.expect("job_progress").await;
    assert!(is_rfc3339_utc(&p["timestamp"]));
    assert_eq!(p["job_id"], id.as_str());
    assert_eq!(p["progress"], 0.45);
    assert_eq!(p["progress_percentage"], 45.0);
    assert_eq!(
        (p["current_layer"].clone(), p["total_layers"].clone()),
        (json!(1), json!(3))
    );
    assert_eq!(
        (p["points_plotted"].clone(), p["total_points"].clone()),
        (json!(45), json!(100))
    );
    assert_eq!(p["eta_seconds"], 6);
    assert_eq!(p["estimated_remaining"], 6);
    assert_eq!(p["distance_mm"], 22.5);
    assert_eq!(p["metadata"]["points_plotted"], 45);
    for k in ["pen_down_time_seconds", "total_time_seconds"] {
        assert!(p[k].is_number(), "{k}");
    }

    d.inject(DaemonEvent::DeviceStatus(device(
        DeviceState::Busy,
        Some(&id),
    )));
    let dev = ws.expect("device_status").await;
    assert_eq!(dev["device_id"], "/dev/ttyACM0");
    assert_eq!(dev["device_type"], "axidraw");
    assert_eq!(dev["status"], "busy");
    assert_eq!(dev["pen_up"], false);
    assert_eq!(dev["position"], json!({"x": 12.5, "y": 40.0}));
    assert_eq!(dev["current_job_id"], id.as_str());
    assert_eq!(dev["metadata"]["firmware_version"], dev["firmware_version"]);
    for k in [
        "error_count",
        "error_message",
        "last_heartbeat",
        "uptime_seconds",
    ] {
        assert!(dev.get(k).is_some(), "{k}");
    }

    d.inject(DaemonEvent::Alert(Alert {
        severity: Severity::Warning,
        title: "Hook failed".into(),
        message: "webhook timed out".into(),
        source: "hooks".into(),
        metadata: json!({"job_id": id}),
    }));
    let alert = ws.expect("system_alert").await;
    assert_eq!(alert["severity"], "warning");
    assert_eq!(alert["level"], "warning");
    assert_eq!(alert["title"], "Hook failed");
    assert_eq!(alert["source"], "hooks");

    // A late subscriber sees the running plot at once: the job, its progress, the device.
    let mut late = d.ws().await;
    late.send(json!({"type": "subscribe", "channels": ["jobs", "devices"]}))
        .await;
    late.expect("subscribed").await;
    let s = late.expect("job_state_change").await;
    assert_eq!(
        (s["to_state"].clone(), s["snapshot"].clone()),
        (json!("PLOTTING"), json!(true))
    );
    let sp = late.expect("job_progress").await;
    assert_eq!(
        (sp["progress"].clone(), sp["snapshot"].clone()),
        (json!(0.45), json!(true))
    );
    let sd = late.expect("device_status").await;
    assert_eq!(sd["status"], "busy");

    // job_deleted after an abort and a delete.
    d.ledger
        .apply(TransitionRequest {
            job_id: id.clone(),
            event: JobEvent::Abort,
            reason: Reason::User,
            error: None,
            metadata: Value::Null,
        })
        .await
        .unwrap();
    assert_eq!(ws.expect("job_state_change").await["to_state"], "ABORTED");
    d.http().delete(&format!("/api/jobs/{id}")).await.unwrap();
    assert_eq!(ws.expect("job_deleted").await["job_id"], id.as_str());
    d.stop().await;
}

#[tokio::test]
async fn the_job_filter_and_channel_choice_are_honoured() {
    let d = start().await;
    let a = d.submit("a.svg").await;
    let mut only_a = d.ws().await;
    let mut system_only = d.ws().await;
    only_a
        .send(json!({"type": "subscribe", "channels": ["jobs"], "job_id": a}))
        .await;
    only_a.expect("subscribed").await;
    assert_eq!(
        only_a.expect("job_state_change").await["job_id"],
        a.as_str()
    );
    system_only
        .send(json!({"type": "subscribe", "channels": ["system"]}))
        .await;
    system_only.expect("subscribed").await;
    system_only.expect("system_status").await;

    let b = d.submit("b.svg").await;
    d.inject(DaemonEvent::JobProgress(progress(&b, 1, 1, 10)));
    to_plotting(&d, &a).await;
    // Only job a's messages arrive, in order.
    assert_eq!(
        only_a.expect("job_state_change").await["to_state"],
        "ANALYZED"
    );
    d.inject(DaemonEvent::Alert(Alert {
        severity: Severity::Info,
        title: "t".into(),
        message: "m".into(),
        source: "test".into(),
        metadata: Value::Null,
    }));
    // The system-only client sees the alert and nothing of the jobs before it.
    assert_eq!(system_only.expect("system_alert").await["title"], "t");
    only_a.send(json!({"type": "ping"})).await;
    for _ in 0..4 {
        let m = only_a.expect("job_state_change").await;
        assert_eq!(m["job_id"], a.as_str());
    }
    only_a.expect("pong").await;
    d.stop().await;
}

#[tokio::test]
async fn job_control_messages_answer_ack_or_error() {
    let d = start().await;
    let mut ws = d.ws().await;
    ws.send(json!({"type": "subscribe", "channels": ["system"]}))
        .await;
    ws.expect("subscribed").await;
    ws.expect("system_status").await;
    let a = d.submit("a.svg").await;
    ws.send(json!({"type": "job_pause", "job_id": a, "request_id": "p"}))
        .await;
    let e = ws.expect("error").await;
    assert_eq!(e["error_code"], "INVALID_STATE");
    assert_eq!(e["request_id"], "p");
    assert!(
        e["error_message"].as_str().unwrap().contains("PLOTTING"),
        "{e}"
    );

    ws.send(json!({"type": "JOB_CANCEL", "job_id": a, "request_id": "c"}))
        .await;
    let ack = ws.expect("ack").await;
    assert_eq!(ack["request"], "job_cancel");
    assert_eq!(ack["job_id"], a.as_str());
    assert_eq!(ack["state"], "ABORTED");
    assert_eq!(ack["request_id"], "c");

    let b = d.submit("b.svg").await;
    to_plotting(&d, &b).await;
    for t in ["job_pause", "job_abort"] {
        ws.send(json!({"type": t, "job_id": b})).await;
        let e = ws.expect("error").await;
        assert_eq!(e["error_code"], "NO_DEVICE", "{t}");
        assert!(
            e["error_message"]
                .as_str()
                .unwrap()
                .starts_with("no plotter attached: ")
        );
    }
    ws.send(json!({"type": "job_resume", "job_id": b})).await;
    assert_eq!(ws.expect("error").await["error_code"], "INVALID_STATE");
    ws.send(json!({"type": "job_start", "job_id": b})).await;
    let e = ws.expect("error").await;
    assert_eq!(e["error_code"], "INVALID_STATE");
    assert!(
        e["error_message"].as_str().unwrap().contains("PLOTTING"),
        "{e}"
    );
    ws.send(json!({"type": "job_abort", "job_id": "nope"}))
        .await;
    assert_eq!(ws.expect("error").await["error_code"], "JOB_NOT_FOUND");
    d.stop().await;
}

#[tokio::test]
async fn every_bad_message_gets_an_error_and_the_connection_stays() {
    let d = start().await;
    let mut ws = d.ws().await;
    for (text, code) in [
        ("{not json", "INVALID_JSON"),
        ("[1,2]", "INVALID_MESSAGE"),
        ("\"subscribe\"", "INVALID_MESSAGE"),
        ("{}", "INVALID_MESSAGE"),
        (r#"{"type": 7}"#, "INVALID_FIELD"),
        (r#"{"type": "dance"}"#, "UNKNOWN_MESSAGE_TYPE"),
        (
            r#"{"type": "subscribe", "channels": ["pens"]}"#,
            "SUBSCRIPTION_ERROR",
        ),
        (r#"{"type": "subscribe", "channels": 3}"#, "INVALID_FIELD"),
        (r#"{"type": "subscribe", "job_id": "a/b"}"#, "INVALID_FIELD"),
        (r#"{"type": "job_abort"}"#, "INVALID_FIELD"),
        (r#"{"type": "job_abort", "job_id": 5}"#, "INVALID_FIELD"),
        ("", "INVALID_JSON"),
    ] {
        ws.send_text(text).await;
        let e = ws.expect("error").await;
        assert_eq!(e["error_code"], code, "{text}: {e}");
        assert!(e["error_message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(e.get("details").is_some());
    }
    let e = {
        ws.send_text(r#"{"type": "SUBSCRIBEX"}"#).await;
        ws.expect("error").await
    };
    assert_eq!(e["error_message"], "Unknown message type: SUBSCRIBEX");
    ws.send(json!({"type": "ping"})).await;
    ws.expect("pong").await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_malformed_messages_and_the_daemon_still_serves() {
    let d = start_with(
        |s| s.websocket.message_rate_limit = 1_000_000,
        ApiLimits::default(),
    )
    .await;
    let mut ws = d.ws().await;
    ws.send(json!({"type": "subscribe", "channels": ["jobs"]}))
        .await;
    ws.expect("subscribed").await;
    let garbage = [
        "{",
        "[]",
        "null",
        "{\"type\":[]}",
        "{\"type\":\"x\"}",
        "\u{0}\u{1}",
        "{\"type\":\"subscribe\",\"channels\":[{}]}",
        "{\"type\":\"job_pause\",\"job_id\":\"../../etc/passwd\"}",
        "9e999999",
        "\"\\ud800\"",
    ];
    let (mut sink, mut stream) = ws.inner.split();
    let writer = tokio::spawn(async move {
        for i in 0..10_000 {
            sink.send(Message::text(garbage[i % garbage.len()]))
                .await
                .unwrap();
        }
        sink
    });
    let mut errors = 0;
    while errors < 10_000 {
        let m = tokio::time::timeout(super::WAIT, stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            assert_eq!(v["type"], "error", "{v}");
            errors += 1;
        }
    }
    let sink = writer.await.unwrap();
    let mut ws = super::Ws {
        inner: sink.reunite(stream).unwrap(),
    };
    ws.send(json!({"type": "ping"})).await;
    ws.expect("pong").await;
    // Others are served too.
    let mut other = d.ws().await;
    other.send(json!({"type": "ping"})).await;
    other.expect("pong").await;
    assert_eq!(d.http().get("/status").await.unwrap()["connections"], 2);
    d.stop().await;
}

#[tokio::test]
async fn the_rate_limit_answers_rate_limited_and_keeps_the_connection() {
    let d = start_with(|s| s.websocket.message_rate_limit = 5, ApiLimits::default()).await;
    let mut ws = d.ws().await;
    for _ in 0..5 {
        ws.send(json!({"type": "ping"})).await;
        ws.expect("pong").await;
    }
    ws.send(json!({"type": "ping"})).await;
    let e = ws.expect("error").await;
    assert_eq!(e["error_code"], "RATE_LIMITED");
    assert_eq!(e["details"]["limit_per_minute"], 5);
    assert!(e["details"]["retry_after_ms"].as_u64().unwrap() > 0);
    // Still open: protocol pings are not counted and are answered.
    ws.inner
        .send(Message::Ping(Default::default()))
        .await
        .unwrap();
    loop {
        match ws.inner.next().await.unwrap().unwrap() {
            Message::Pong(_) => break,
            Message::Text(_) => {}
            other => panic!("{other:?}"),
        }
    }
    d.stop().await;
}

#[tokio::test]
async fn binary_frames_and_oversized_messages_close_with_their_codes() {
    let d = start().await;
    let mut ws = d.ws().await;
    ws.inner
        .send(Message::binary(vec![1u8, 2, 3]))
        .await
        .unwrap();
    let f = ws.closed().await.unwrap();
    assert_eq!(f.code, CloseCode::Unsupported);
    assert!(f.reason.contains("text frames only"), "{}", f.reason);

    let mut ws = d.ws().await;
    // Exactly at the limit: an ordinary (bad JSON) message.
    ws.send_text(&"x".repeat(64 * 1024)).await;
    assert_eq!(ws.expect("error").await["error_code"], "INVALID_JSON");
    ws.send_text(&"x".repeat(64 * 1024 + 1)).await;
    let f = ws.closed().await.unwrap();
    assert_eq!(f.code, CloseCode::Size);
    assert!(f.reason.contains("65537"), "{}", f.reason);
    d.stop().await;
}

#[tokio::test]
async fn progress_is_throttled_but_boundaries_and_the_end_get_through() {
    let d = start().await;
    let mut ws = d.ws().await;
    ws.send(json!({"type": "subscribe", "channels": ["jobs"]}))
        .await;
    ws.expect("subscribed").await;
    let id = d.submit("p.svg").await;
    ws.expect("job_state_change").await;
    ws.expect("job_state_change").await;
    to_plotting(&d, &id).await;
    for _ in 0..5 {
        ws.expect("job_state_change").await;
    }
    // 200 updates in a burst within one layer, then the next layer, then the end.
    for i in 1..=200 {
        d.inject(DaemonEvent::JobProgress(progress(&id, 1, i, 1000)));
    }
    d.inject(DaemonEvent::JobProgress(progress(&id, 2, 201, 1000)));
    for i in 202..=999 {
        d.inject(DaemonEvent::JobProgress(progress(&id, 2, i, 1000)));
    }
    d.inject(DaemonEvent::JobProgress(progress(&id, 2, 1000, 1000)));
    d.ledger
        .apply(TransitionRequest {
            job_id: id.clone(),
            event: JobEvent::Complete,
            reason: Reason::Finished,
            error: None,
            metadata: Value::Null,
        })
        .await
        .unwrap();
    let mut seen = Vec::new();
    loop {
        let m = ws.next_json().await;
        if m["type"] == "job_state_change" {
            assert_eq!(m["to_state"], "COMPLETED");
            break;
        }
        seen.push(m["points_plotted"].as_u64().unwrap());
    }
    assert!(seen.len() <= 8, "throttled to a handful: {seen:?}");
    assert_eq!(seen.first(), Some(&1));
    assert!(seen.contains(&200), "the end of layer 1: {seen:?}");
    assert!(seen.contains(&201), "the start of layer 2: {seen:?}");
    assert_eq!(seen.last(), Some(&1000), "the end: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in order: {seen:?}");
    d.stop().await;
}

#[tokio::test]
async fn a_lagging_client_is_told_then_closed() {
    // Current-thread runtime: a burst published before the client task runs overtakes its queue.
    let d = start_with(
        |_| {},
        ApiLimits {
            client_queue: 4,
            ..ApiLimits::default()
        },
    )
    .await;
    let mut ws = d.ws().await;
    let alert = |n: usize| {
        DaemonEvent::Alert(Alert {
            severity: Severity::Info,
            title: format!("a{n}"),
            message: "burst".into(),
            source: "test".into(),
            metadata: Value::Null,
        })
    };
    for n in 0..50 {
        d.inject(alert(n));
    }
    let lag = ws.until("error").await;
    assert_eq!(lag["error_code"], "LAGGED");
    let dropped = lag["details"]["dropped"].as_u64().unwrap();
    assert!(dropped > 0 && dropped <= 46, "{lag}");
    // Keeps going, then lags again within the grace time: closed.
    for n in 0..50 {
        d.inject(alert(n));
    }
    let f = ws.closed().await.unwrap();
    assert_eq!(f.code, CloseCode::Again);
    assert!(f.reason.contains("too slow"), "{}", f.reason);
    d.stop().await;
}

#[tokio::test]
async fn shutdown_closes_clients_with_1001() {
    let d = start().await;
    let mut ws = d.ws().await;
    let stopping = tokio::spawn(d.stop());
    let f = ws.closed().await.unwrap();
    assert_eq!(f.code, CloseCode::Away);
    stopping.await.unwrap();
}

#[tokio::test]
async fn a_device_snapshot_needs_no_event_when_the_queue_knows_the_device() {
    // Without a device task the devices snapshot is empty, not made up.
    let d = start().await;
    let mut ws = d.ws().await;
    ws.send(json!({"type": "subscribe", "channels": ["devices"]}))
        .await;
    ws.expect("subscribed").await;
    ws.send(json!({"type": "ping"})).await;
    ws.expect("pong").await;
    assert_eq!(
        d.http().get("/api/devices").await.unwrap(),
        json!({"count": 0, "devices": []})
    );
    d.stop().await;
}

#[tokio::test]
async fn alerts_raised_before_a_client_subscribed_are_replayed_to_it_bounded() {
    // Issue 11: a page opened after an alert never learned of it.
    let d = start().await;
    let mut early = d.ws().await;
    early
        .send(json!({"type": "subscribe", "channels": ["system"]}))
        .await;
    early.expect("subscribed").await;
    // Its snapshot is over before the alerts: they reach it live only.
    early.expect("system_status").await;
    let alert = |n: usize| {
        DaemonEvent::Alert(Alert {
            severity: Severity::Warning,
            title: format!("alert {n}"),
            message: "m".into(),
            source: "test".into(),
            metadata: Value::Null,
        })
    };
    // More than the backlog keeps (50): the oldest go.
    for n in 0..53 {
        d.inject(alert(n));
    }
    let mut raised = Vec::new();
    while raised.len() < 53 {
        let m = early.until("system_alert").await;
        assert_eq!(m.get("snapshot"), None, "a live alert is no snapshot: {m}");
        raised.push(m);
    }

    let mut late = d.ws().await;
    late.send(json!({"type": "subscribe", "channels": ["system"]}))
        .await;
    late.expect("subscribed").await;
    late.expect("system_status").await;
    for (n, live) in raised.iter().enumerate().skip(3) {
        let m = late.expect("system_alert").await;
        assert_eq!(m["title"], format!("alert {n}"));
        assert_eq!(m["snapshot"], true);
        // Stamped with when it was raised, not when it was replayed.
        assert_eq!(m["timestamp"], live["timestamp"]);
    }
    // Nothing more: the next message is the answer to a ping.
    late.send(json!({"type": "ping"})).await;
    late.expect("pong").await;
    // A client of the jobs channel only gets no alerts.
    let mut jobs_only = d.ws().await;
    jobs_only
        .send(json!({"type": "subscribe", "channels": ["jobs"]}))
        .await;
    jobs_only.expect("subscribed").await;
    jobs_only.send(json!({"type": "ping"})).await;
    jobs_only.expect("pong").await;
    d.stop().await;
}
