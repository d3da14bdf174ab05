//! WebSocket fan-out, **event bus → subscriber**: the latency of `job_progress` from the moment
//! it is put on the daemon's event bus to the moment a subscriber has read the frame, with 1,000
//! subscribers on loopback (budget: p99 ≤ 10 ms).
//!
//! What is in the path: the event bus, the API's fan-out task with its progress throttle and
//! encoding, each client's task and queue, the WebSocket frames on loopback. What is not: the
//! plot runner and the device task that publish progress in the daemon (this benchmark puts
//! `JobProgress` events on the bus itself, at the rate the device task's own 10 Hz per-job
//! reporter allows, so the daemon's side of the path starts where the device task's ends). The
//! daemon runs without a device task (`components_without_devices`).
//!
//! - `bus_to_subscriber/progress_10hz`: `PLOTTY_BENCH_JOBS` jobs (default 10; 1 is what one
//!   plotter produces) each publishing progress at 10 per second, for a fixed time.
//! - `bus_to_subscriber/burst`: 100 jobs publish one update at the same instant (layer boundaries
//!   of many jobs at once), 20 times.
//!
//! Every expected delivery counts: a message a subscriber never got (it lagged behind and was
//! told `LAGGED`, or was closed) counts as infinitely late in the percentiles, and the number
//! lost is printed beside them. Updates the progress throttle replaced by a newer one of the same
//! job (none reached any subscriber) are not expected; their number is printed apart.
//!
//! The clients run in a separate process (this benchmark re-executed with
//! `PLOTTY_BENCH_CLIENTS_OF=ADDR`, on a runtime of 2 worker threads), as real subscribers do:
//! the daemon's process holds only the daemon and the publisher. Both processes read the
//! system clock (`SystemTime`): the publisher when it puts an update on the bus, the clients
//! when they have read its frame; the clients hand their arrival times back over a pipe at the
//! end. Latency still includes the clients' own scheduling on the same 2 cores, so it is an
//! upper bound.
//! The daemon's idle memory is measured on the real binary by `plotty-host/benches/idle_rss.rs`.
//!
//! Run with `cargo bench --bench api` (`PLOTTY_BENCH_CLIENTS`, `PLOTTY_BENCH_SECONDS` override the
//! defaults). With `--test`, or without `--bench` (as `cargo test --bench api` runs it), it does a
//! short smoke run.

// A failed set-up step ends the benchmark; there is nothing to recover.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// A delivery that never came (the subscriber lagged, or was closed): later than any latency.
const LOST_US: u32 = u32::MAX;

/// What one subscriber got: `(sequence number, latency in µs)` per message, how many `LAGGED`
/// warnings, and whether the end marker came (a closed client never sees it).
struct Received {
    latencies_us: Vec<(u64, u32)>,
    lagged: u64,
    ended: bool,
}

struct Setup {
    /// A smoke run: it also asserts that nothing was lost.
    smoke: bool,
    clients: usize,
    jobs: u64,
    seconds: u64,
    bursts: usize,
}

#[path = "quick.rs"]
mod quick;

fn main() {
    let full = !quick::quick();
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let setup = if full {
        Setup {
            smoke: false,
            clients: env("PLOTTY_BENCH_CLIENTS", 1000) as usize,
            jobs: env("PLOTTY_BENCH_JOBS", 10).clamp(1, 100),
            seconds: env("PLOTTY_BENCH_SECONDS", 10),
            bursts: 20,
        }
    } else {
        Setup {
            smoke: true,
            clients: 20,
            jobs: 10,
            seconds: 1,
            bursts: 2,
        }
    };
    let _ = plotty_host::daemon::privileges::raise_nofile_limit();
    if let Ok(addr) = std::env::var(CLIENTS_OF) {
        clients_process(&addr, setup.clients);
        return;
    }
    fanout(&setup);
}

/// The environment variable that makes this benchmark the clients' process, connecting to the
/// daemon at its value.
const CLIENTS_OF: &str = "PLOTTY_BENCH_CLIENTS_OF";

/// Microseconds on the system clock: comparable between the two processes.
fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The clients' process: `clients` subscribers of the daemon at `addr`. Prints `ready` once
/// every one is subscribed, then, once every one saw the end marker (or was closed), writes
/// what each received to standard output: per client `count, lagged, ended`, then `count`
/// pairs of (sequence number, arrival µs), all little-endian u64.
fn clients_process(addr: &str, clients: usize) {
    let rt = runtime("clients");
    let ready = Arc::new(Barrier::new(clients + 1));
    // Connections are opened 32 at a time: 1,000 at once from another process overflow the
    // listen backlog and some are reset. Connecting is not what is measured.
    let connecting = Arc::new(tokio::sync::Semaphore::new(32));
    let readers: Vec<_> = (0..clients)
        .map(|_| {
            let ready = Arc::clone(&ready);
            let connecting = Arc::clone(&connecting);
            let addr = addr.to_owned();
            rt.spawn(async move {
                let permit = connecting.acquire_owned().await.unwrap();
                // A 4 KiB read buffer, as the daemon's own side uses: tungstenite zeroes its
                // whole read buffer (128 KiB by default) on every read.
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
                drop(permit);
                ready.wait().await;
                let mut got = Received {
                    latencies_us: Vec::new(),
                    lagged: 0,
                    ended: false,
                };
                let mut arrivals: Vec<(u64, u64)> = Vec::with_capacity(4096);
                while let Some(Ok(m)) = ws.next().await {
                    let Message::Text(t) = m else { continue };
                    let now = wall_us();
                    if t.as_str().contains("\"LAGGED\"") {
                        got.lagged += 1;
                        continue;
                    }
                    let Some(seq) = field(t.as_str(), "\"points_plotted\":") else {
                        continue;
                    };
                    if seq == u64::MAX {
                        got.ended = true;
                        break;
                    }
                    arrivals.push((seq, now));
                }
                (got, arrivals)
            })
        })
        .collect();
    rt.block_on(ready.wait());
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ready").unwrap();
    stdout.flush().unwrap();
    let all = rt.block_on(async {
        let mut out = Vec::new();
        for r in readers {
            out.push(r.await.unwrap());
        }
        out
    });
    let mut bytes = Vec::new();
    for (got, arrivals) in &all {
        for v in [arrivals.len() as u64, got.lagged, u64::from(got.ended)] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        for &(seq, at) in arrivals {
            bytes.extend_from_slice(&seq.to_le_bytes());
            bytes.extend_from_slice(&at.to_le_bytes());
        }
    }
    stdout.write_all(&bytes).unwrap();
    stdout.flush().unwrap();
}

/// Reads the clients' process's report (see [`clients_process`]): what each client received,
/// with latencies from the publishing instants in `sent`.
fn read_clients(mut from: impl Read, clients: usize, sent: &[u64]) -> Vec<Received> {
    let mut bytes = Vec::new();
    from.read_to_end(&mut bytes).unwrap();
    let mut words = bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()));
    let mut next = || words.next().expect("the clients' report is complete");
    (0..clients)
        .map(|_| {
            let (count, lagged, ended) = (next(), next(), next());
            let latencies_us = (0..count)
                .map(|_| {
                    let (seq, at) = (next(), next());
                    let from = sent.get(seq as usize).copied().unwrap_or(at);
                    let us = at.saturating_sub(from).min(LOST_US as u64 - 1) as u32;
                    (seq, us)
                })
                .collect();
            Received {
                latencies_us,
                lagged,
                ended: ended != 0,
            }
        })
        .collect()
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
            store: store.into(),
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

    // Publishing instants by sequence number (system clock, µs), filled in as they go out.
    let capacity =
        (setup.seconds as usize + 2) * 10 * setup.jobs as usize + setup.bursts * 100 + 100;
    let mut sent = vec![0u64; capacity];

    let connect_start = Instant::now();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CLIENTS_OF, addr.to_string())
        .env("PLOTTY_BENCH_CLIENTS", setup.clients.to_string())
        .args(std::env::args().skip(1))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the clients' process starts");
    let mut from_clients = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    from_clients.read_line(&mut line).unwrap();
    assert_eq!(
        line.trim(),
        "ready",
        "the clients' process did not get ready"
    );
    println!(
        "api: {} subscribers (in their own process) connected and subscribed in {:.2} s",
        setup.clients,
        connect_start.elapsed().as_secs_f64()
    );

    let mut seq = 0u64;
    let mut publish = |job: &JobId, seq: u64| {
        sent[seq as usize] = wall_us();
        bus.send(DaemonEvent::JobProgress(JobProgress {
            job_id: job.clone(),
            device_id: None,
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
    bus.send(DaemonEvent::JobProgress(JobProgress {
        job_id: JobId::parse("end").unwrap(),
        device_id: None,
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

    let all = read_clients(from_clients, setup.clients, &sent);
    assert!(
        child.wait().unwrap().success(),
        "the clients' process failed"
    );
    // What the daemon sent at all: the progress throttle replaces an update of a job by a newer
    // one that comes within its 100 ms (the publisher here is late under load, so two updates
    // of a job come closer), for every subscriber alike. That set is what the subscribers that
    // never lagged and saw the end received; an update none of them got was superseded, by
    // design, and is counted apart. Every other update a subscriber did not get counts as lost
    // (infinitely late), so a lagging client cannot make the percentiles look better.
    let mut sent_at_all = vec![false; phase2_end as usize];
    let clean: Vec<&Received> = all.iter().filter(|r| r.lagged == 0 && r.ended).collect();
    if clean.is_empty() {
        sent_at_all.fill(true);
    }
    for r in &clean {
        for &(seq, _) in &r.latencies_us {
            if let Some(s) = sent_at_all.get_mut(seq as usize) {
                *s = true;
            }
        }
    }
    let mut lost = 0;
    let phase = |from: u64, to: u64| -> (Vec<u32>, usize) {
        let expected: Vec<u64> = (from..to).filter(|&s| sent_at_all[s as usize]).collect();
        let superseded = (to - from) as usize - expected.len();
        let mut out = Vec::new();
        for r in &all {
            let mut by_seq = vec![LOST_US; (to - from) as usize];
            for &(seq, us) in &r.latencies_us {
                if (from..to).contains(&seq) {
                    by_seq[(seq - from) as usize] = us;
                }
            }
            out.extend(expected.iter().map(|&s| by_seq[(s - from) as usize]));
        }
        (out, superseded)
    };
    for (name, from, to) in [
        (
            format!(
                "bus_to_subscriber/progress_10hz ({} subscribers, {} jobs x 10/s, {} s)",
                setup.clients, setup.jobs, setup.seconds
            ),
            phase1_start,
            phase1_end,
        ),
        (
            format!(
                "bus_to_subscriber/burst ({} subscribers, {} bursts of 100 jobs)",
                setup.clients, setup.bursts
            ),
            phase1_end,
            phase2_end,
        ),
    ] {
        let (mut us, superseded) = phase(from, to);
        lost += report(&name, &mut us);
        // A burst's jobs update every 500 ms: the throttle has nothing to replace there, so an
        // update no subscriber got was dropped.
        assert!(
            from < phase1_end || superseded == 0,
            "api/{name}: {superseded} burst updates reached no subscriber"
        );
        println!(
            "api/{name}: {superseded} of {} updates superseded by a newer one of the same job \
             within 100 ms (the throttle)",
            to - from
        );
    }
    let lagged: u64 = all.iter().map(|r| r.lagged).sum();
    let lagging = all.iter().filter(|r| r.lagged > 0).count();
    println!(
        "api: LAGGED warnings: {lagged}, to {lagging} of {} subscribers",
        all.len()
    );
    // The smoke run's few subscribers stay far within their queues (256 messages, at most 100
    // arrive at once): there, anything lost is a fan-out that drops messages.
    assert!(
        !setup.smoke || (lost == 0 && lagged == 0),
        "api: {lost} deliveries lost, {lagged} LAGGED warnings with {} subscribers",
        all.len()
    );
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

/// Prints the percentiles of `us`, where [`LOST_US`] is a delivery that never came; returns how
/// many never came.
fn report(name: &str, us: &mut [u32]) -> usize {
    if us.is_empty() {
        println!("api/{name}: nothing expected");
        return 0;
    }
    us.sort_unstable();
    let lost = us.iter().filter(|&&v| v == LOST_US).count();
    let ms = |v: u32| {
        if v == LOST_US {
            "lost".to_owned()
        } else {
            format!("{:.3} ms", f64::from(v) / 1000.0)
        }
    };
    let q = |f: f64| ms(us[((us.len() as f64 * f) as usize).min(us.len() - 1)]);
    println!(
        "api/{name}: {} expected deliveries, {lost} lost; latency p50 {}, p99 {}, max {}",
        us.len(),
        q(0.5),
        q(0.99),
        ms(us[us.len() - 1])
    );
    lost
}
