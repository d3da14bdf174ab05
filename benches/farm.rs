//! Several daemons on one PostgreSQL queue (issue 15), **daemon A's event bus → a WebSocket
//! client of daemon B**: the latency of a job state change put on A's bus until B's client has
//! read its frame.
//!
//! What is in the path: A's relay task (encoding, `NOTIFY` through A's pool), PostgreSQL's
//! notification delivery to B's dedicated `LISTEN` connection, B's decoding onto its bus, B's
//! fan-out (encoding, the client's queue) and the WebSocket frame on loopback. Both daemons are
//! real `Daemon`s (API and queue, no device task) in this process on one runtime of 2 worker
//! threads, on a throwaway PostgreSQL cluster (`plotty_host::testing::postgres`: Unix socket,
//! fsync off); the client runs on that runtime too. State changes are used because neither the
//! relay nor the fan-out throttles them (progress is held to 10 a second per job by both).
//! Events go out every 10 ms; one that never arrives counts as lost (infinitely late).
//!
//! Run: `cargo bench --bench farm` (measures 500 events); `--test`, or `cargo test --bench
//! farm`, makes a short smoke run. Prints p50, p99 and max with the build profile (debug or
//! release) beside them. Needs PostgreSQL's server binaries, else it skips loudly (fails under
//! `CI=true`).

// Benchmark code: a failed set-up step aborts the run, which is what we want.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use plotty_host::api::ApiLimits;
use plotty_host::daemon::notify::Notifier;
use plotty_host::daemon::{Daemon, Parts};
use plotty_host::events::DaemonEvent;
use plotty_host::job::{JobId, JobState, Reason};
use plotty_host::settings::Settings;
use plotty_host::store::{PgStore, StateChange};
use serde_json::{Value, json};

#[path = "quick.rs"]
mod quick;

/// Between two events, so that each is measured alone rather than behind a queue.
const SPACING: Duration = Duration::from_millis(10);

fn main() {
    let events: u64 = if quick::quick() { 30 } else { 500 };
    let Some(url) = plotty_host::testing::postgres::database_or_skip("bench farm") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let latencies = rt.block_on(measure(&url, events));
    report(latencies, events);
}

async fn daemon(url: &str, name: &str, dir: &std::path::Path) -> Daemon {
    let mut settings = Settings::defaults_for(dir);
    settings.daemon.name = name.to_owned();
    std::fs::create_dir_all(settings.jobs_dir()).unwrap();
    let (store, _) = PgStore::connect(url, 4).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let parts = Parts {
        settings,
        sources: None,
        store: store.into(),
        listener: Some(listener),
        logging: None,
        notifier: Notifier::default(),
    };
    Daemon::start(
        parts,
        plotty_host::app::components_without_devices(ApiLimits::default()),
    )
    .await
    .unwrap()
}

/// A state change numbered `seq` (in its event id and metadata).
fn change(job: &JobId, seq: u64) -> DaemonEvent {
    DaemonEvent::JobStateChanged(StateChange {
        event_id: i64::try_from(seq).unwrap(),
        job_id: job.clone(),
        job_name: "bench.svg".into(),
        from: Some(JobState::Armed),
        to: JobState::Plotting,
        reason: Reason::Pipeline,
        error: None,
        metadata: json!({ "seq": seq }),
        at: plotty_host::timestamp::now(),
    })
}

/// Latency of each of `events` state changes (`None`: never arrived).
async fn measure(url: &str, events: u64) -> Vec<Option<Duration>> {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = daemon(url, "a", dir_a.path()).await;
    let b = daemon(url, "b", dir_b.path()).await;
    let bus = a.ledger().bus();
    let url_b = format!("ws://{}/ws", b.local_addr().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(url_b).await.unwrap();

    // Arrival instants by sequence number, recorded by the client as it reads each frame.
    let arrived: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let into = Arc::clone(&arrived);
    let reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = ws.next().await {
            let at = Instant::now();
            let Ok(text) = msg.to_text() else { continue };
            let Ok(v) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            if v["type"] == "job_state_change"
                && v["daemon"] == "a"
                && let Some(seq) = v["metadata"]["seq"].as_u64()
            {
                into.lock().unwrap().insert(seq, at);
            }
        }
    });

    let job = JobId::parse("0a3f5c2e9b1d").unwrap();
    // Warm-up: until B's listener is up and one event went all the way (not measured).
    let warm = Instant::now();
    let mut seq = 1_000_000;
    while !arrived.lock().unwrap().contains_key(&(seq - 1)) {
        assert!(
            warm.elapsed() < Duration::from_secs(30),
            "no event reached B"
        );
        let _ = bus.send(change(&job, seq));
        seq += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut sent = Vec::with_capacity(events as usize);
    for seq in 0..events {
        sent.push(Instant::now());
        let _ = bus.send(change(&job, seq));
        tokio::time::sleep(SPACING).await;
    }
    // Stragglers: at most a second after the last.
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until && arrived.lock().unwrap().len() < events as usize + 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    reader.abort();
    let arrived = arrived.lock().unwrap();
    (0..events)
        .map(|seq| {
            arrived
                .get(&seq)
                .map(|at| at.saturating_duration_since(sent[seq as usize]))
        })
        .collect()
}

fn report(mut latencies: Vec<Option<Duration>>, events: u64) {
    let lost = latencies.iter().filter(|l| l.is_none()).count();
    // Lost ones sort last: later than any latency.
    latencies.sort_by_key(|l| l.unwrap_or(Duration::MAX));
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].map_or_else(
            || "lost".to_owned(),
            |d| format!("{:.2} ms", d.as_secs_f64() * 1e3),
        )
    };
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "farm/event_latency ({profile} build): {events} state changes, daemon a's bus → \
         PostgreSQL NOTIFY → daemon b → b's WebSocket client: p50 {}, p99 {}, max {}, {lost} lost",
        at(0.5),
        at(0.99),
        at(1.0)
    );
    assert!(lost == 0, "{lost} events never reached b's client");
}
