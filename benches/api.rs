//! WebSocket fan-out: delivery latency of `job_progress` from the moment the device task publishes
//! it on the daemon's event bus to the moment a subscriber has read the frame, with 1,000
//! subscribers on loopback (budget: p99 ≤ 10 ms), and the daemon's idle resident memory with the API
//! running (budget: ≤ 20 MiB).
//!
//! - `progress_10hz`: `PLOTTY_BENCH_JOBS` jobs (default 10; 1 is what one plotter produces)
//!   each publishing progress at 10 per second (the rate the API forwards
//!   per job), for a fixed time.
//! - `burst`: 100 jobs publish one update at the same instant (layer boundaries of many jobs at
//!   once), 20 times.
//! - `idle_rss`: this binary re-runs itself with `PLOTTY_BENCH_IDLE_DAEMON=1`, starts only the
//!   daemon (API and queue, default settings, file database with its read pool) and reports its
//!   `VmRSS` after two seconds idle, so no client or benchmark memory is counted.
//!
//! The daemon and the clients run in one process on separate runtimes (2 worker threads each);
//! latency includes the clients' own scheduling on the same 2 cores, so it is an upper bound.
//!
//! Run with `cargo bench --bench api` (`PLOTTY_BENCH_CLIENTS`, `PLOTTY_BENCH_SECONDS` override the
//! defaults). Without `--bench` (as `cargo test --benches` runs it) it does a short smoke run.

// A failed set-up step ends the benchmark; there is nothing to recover.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use plotty_host::api::ApiLimits;
use plotty_host::daemon::notify::Notifier;
use plotty_host::daemon::{Daemon, Parts};
use plotty_host::events::{DaemonEvent, EventSender, JobProgress};
use plotty_host::job::JobId;
use plotty_host::settings::Settings;
use plotty_host::store::Store;
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Sequence numbers go into `points_plotted`; this is `total_points`, so no update is an "end".
const TOTAL_POINTS: u64 = 1 << 50;

struct Setup {
    clients: usize,
    jobs: u64,
    seconds: u64,
    bursts: usize,
}

fn main() {
    if std::env::var_os("PLOTTY_BENCH_IDLE_DAEMON").is_some() {
        idle_daemon();
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let setup = if full {
        Setup {
            clients: env("PLOTTY_BENCH_CLIENTS", 1000) as usize,
            jobs: env("PLOTTY_BENCH_JOBS", 10).clamp(1, 100),
            seconds: env("PLOTTY_BENCH_SECONDS", 10),
            bursts: 20,
        }
    } else {
        Setup {
            clients: 20,
            jobs: 10,
            seconds: 1,
            bursts: 2,
        }
    };
    let _ = plotty_host::daemon::privileges::raise_nofile_limit();
    fanout(&setup);
    idle_rss();
}

/// Starts the daemon with the API on a runtime of its own; returns its address and bus.
fn start_daemon(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    max_connections: u32,
) -> (std::net::SocketAddr, EventSender, Daemon) {
    rt.block_on(async {
        let mut settings = Settings::defaults_for(dir);
        settings.websocket.max_connections = max_connections;
        std::fs::create_dir_all(settings.jobs_dir()).unwrap();
        let (store, _) =
            Store::open_with_readers(&settings.database.path, settings.database.pool_size).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let parts = Parts {
            settings,
            sources: None,
            store,
            listener: Some(listener),
            logging: None,
            notifier: Notifier::default(),
        };
        let daemon = Daemon::start(
            parts,
            plotty_host::app::components_without_devices(ApiLimits::default()),
        )
        .await
        .unwrap();
        (daemon.local_addr().unwrap(), daemon.ledger().bus(), daemon)
    })
}

fn runtime(name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .unwrap()
}

fn fanout(setup: &Setup) {
    let dir = tempfile::tempdir().unwrap();
    let server = runtime("daemon");
    let (addr, bus, daemon) = start_daemon(&server, dir.path(), setup.clients as u32 + 10);
    let clients = runtime("clients");

    // Injection instants by sequence number (µs since `origin`).
    let origin = Instant::now();
    let capacity =
        (setup.seconds as usize + 2) * 10 * setup.jobs as usize + setup.bursts * 100 + 100;
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..capacity).map(|_| AtomicU64::new(0)).collect());
    let ready = Arc::new(Barrier::new(setup.clients + 1));

    let readers: Vec<_> = (0..setup.clients)
        .map(|_| {
            let sent = Arc::clone(&sent);
            let ready = Arc::clone(&ready);
            clients.spawn(async move {
                // A 4 KiB read buffer, as the daemon's own side uses: tungstenite zeroes its whole
                // read buffer (128 KiB by default) on every read, which with 1,000 clients in this
                // process would dominate the measured latency.
                let config = WebSocketConfig::default().read_buffer_size(4096);
                let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
                    format!("ws://{addr}/ws"),
                    Some(config),
                    false,
                )
                .await
                .unwrap();
                ws.send(Message::text(r#"{"type":"subscribe","channels":["jobs"]}"#))
                    .await
                    .unwrap();
                loop {
                    if let Some(Ok(Message::Text(t))) = ws.next().await
                        && t.as_str().contains("\"subscribed\"")
                    {
                        break;
                    }
                }
                ready.wait().await;
                let mut latencies_us: Vec<u32> = Vec::with_capacity(capacity);
                while let Some(Ok(m)) = ws.next().await {
                    let Message::Text(t) = m else { continue };
                    let now = origin.elapsed().as_micros() as u64;
                    let Some(seq) = field(t.as_str(), "\"points_plotted\":") else {
                        continue;
                    };
                    if seq == u64::MAX {
                        break;
                    }
                    let at = sent[seq as usize].load(Ordering::Acquire);
                    latencies_us.push(now.saturating_sub(at).min(u32::MAX as u64) as u32);
                }
                latencies_us
            })
        })
        .collect();
    let connect_start = Instant::now();
    clients.block_on(ready.wait());
    println!(
        "api: {} subscribers connected and subscribed in {:.2} s",
        setup.clients,
        connect_start.elapsed().as_secs_f64()
    );

    let mut seq = 0u64;
    let publish = |job: &JobId, seq: u64| {
        sent[seq as usize].store(origin.elapsed().as_micros() as u64, Ordering::Release);
        bus.send(DaemonEvent::JobProgress(JobProgress {
            job_id: job.clone(),
            progress: 0.5,
            current_layer: 1,
            total_layers: 1,
            points_plotted: seq,
            total_points: TOTAL_POINTS,
            distance_mm: 0.0,
            eta_seconds: Some(60.0),
            pen_down_time_seconds: 0.0,
            total_time_seconds: 0.0,
        }))
        .unwrap();
    };

    // Phase 1: jobs at 10 Hz each, their ticks spread over the 100 ms period.
    let jobs: Vec<JobId> = (0..setup.jobs)
        .map(|i| JobId::parse(&format!("steady{i}")).unwrap())
        .collect();
    let phase1_start = seq;
    let ticks = setup.seconds * 10;
    let t0 = Instant::now();
    for tick in 0..ticks {
        for (i, job) in jobs.iter().enumerate() {
            let due = t0 + Duration::from_millis(tick * 100 + i as u64 * 100 / setup.jobs);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            publish(job, seq);
            seq += 1;
        }
    }
    let phase1_end = seq;
    std::thread::sleep(Duration::from_millis(500));

    // Phase 2: bursts of 100 jobs at once.
    let burst_jobs: Vec<JobId> = (0..100)
        .map(|i| JobId::parse(&format!("burst{i}")).unwrap())
        .collect();
    for _ in 0..setup.bursts {
        for job in &burst_jobs {
            publish(job, seq);
            seq += 1;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let phase2_end = seq;
    // The end marker.
    sent[seq as usize].store(origin.elapsed().as_micros() as u64, Ordering::Release);
    bus.send(DaemonEvent::JobProgress(JobProgress {
        job_id: JobId::parse("end").unwrap(),
        progress: 0.0,
        current_layer: 0,
        total_layers: 0,
        points_plotted: u64::MAX,
        total_points: TOTAL_POINTS,
        distance_mm: 0.0,
        eta_seconds: None,
        pen_down_time_seconds: 0.0,
        total_time_seconds: 0.0,
    }))
    .unwrap();

    let all: Vec<Vec<u32>> = clients.block_on(async {
        let mut out = Vec::new();
        for r in readers {
            out.push(r.await.unwrap());
        }
        out
    });
    // Each client saw the steady messages first, then the bursts, in order.
    let steady = (phase1_end - phase1_start) as usize;
    let mut p1 = Vec::new();
    let mut p2 = Vec::new();
    let mut short = 0;
    for l in &all {
        if l.len() < (phase2_end - phase1_start) as usize {
            short += 1;
        }
        p1.extend_from_slice(&l[..steady.min(l.len())]);
        p2.extend_from_slice(&l[steady.min(l.len())..]);
    }
    report(
        &format!(
            "progress_10hz ({} subscribers, {} jobs x 10/s, {} s)",
            setup.clients, setup.jobs, setup.seconds
        ),
        &mut p1,
    );
    report(
        &format!(
            "burst ({} subscribers, {} bursts of 100 jobs)",
            setup.clients, setup.bursts
        ),
        &mut p2,
    );
    if short > 0 {
        println!("api: {short} subscribers missed messages (LAGGED)");
    }
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    drop(tx);
    server.block_on(daemon.run(rx)).unwrap();
}

/// The number after `key` in a JSON text (the benchmark's own messages only).
fn field(text: &str, key: &str) -> Option<u64> {
    let rest = &text[text.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn report(name: &str, us: &mut [u32]) {
    if us.is_empty() {
        println!("api/{name}: no deliveries");
        return;
    }
    us.sort_unstable();
    let q = |f: f64| us[((us.len() as f64 * f) as usize).min(us.len() - 1)] as f64 / 1000.0;
    println!(
        "api/{name}: {} deliveries, latency p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        us.len(),
        q(0.5),
        q(0.99),
        *us.last().unwrap() as f64 / 1000.0
    );
}

fn idle_rss() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .env("PLOTTY_BENCH_IDLE_DAEMON", "1")
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

/// The child of `idle_rss`: only the daemon, idle.
fn idle_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (addr, _bus, daemon) = start_daemon(&rt, dir.path(), 100);
    // One request so every part of the API has run once.
    rt.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .unwrap();
        ws.next().await;
        ws.close(None).await.ok();
    });
    std::thread::sleep(Duration::from_secs(2));
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or("VmRSS: ? kB")
        .trim_start_matches("VmRSS:")
        .trim()
        .to_owned();
    let kib: f64 = rss
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap_or(f64::NAN);
    println!(
        "api/idle_rss: {:.1} MiB resident (daemon with the API and queue, default settings, idle)",
        kib / 1024.0
    );
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    drop(tx);
    rt.block_on(daemon.run(rx)).unwrap();
}
