//! A plotter farm with the real binaries: three `plotty daemon`s (`a`, `b`, `c`) on one
//! throwaway PostgreSQL cluster, each driving one simulated EBB served on a pseudo-terminal by
//! this test process, so that each plotter's pen trace can be read at the end (`farm_devices`
//! runs three daemons with two plotters each, with its helpers from here).
//!
//! Daemon `c` starts first and takes a long job on its board, paced to the wall clock; `a` and
//! `b` join with boards that run as fast as they can. Small jobs, each a 5 mm line of its own,
//! are submitted round-robin to the three daemons and released at once. Daemon `c` is killed
//! (SIGKILL) mid-plot; the others must then record its job PAUSED (interrupted) once its lease
//! (`database.lease_ttl: 4`) expired, leave it PAUSED on `c` and never plot it, and plot every
//! small job, `c`'s too, exactly once: checked on the boards' traces (every line drawn once,
//! nothing else) and on the job records (one claim each). A WebSocket client of `b` sees the
//! events of `a`, marked with `a`'s name.
//!
//! Needs PostgreSQL's server binaries (`initdb`, `pg_ctl`): without them the test skips loudly,
//! and fails under `CI=true`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use futures_util::StreamExt;
use nix::sys::signal::Signal;
use plotty_fw_sim::board::Board;
use plotty_fw_sim::pty::{PtyServer, StopHandle};
use plotty_fw_sim::runner::ClockMode;
use plotty_fw_sim::trace::{Trace, TraceConfig};
use plotty_fw_sim::{FirmwareVersion, SimObserver};
use plotty_host::store::{JobRecord, PgStore};
use serde_json::Value;

use crate::common::{Env, Running, free_port, poll_for, stderr, stdout};

/// Small jobs submitted across the daemons.
const JOBS: usize = 36;

/// The lease of the test's daemons, seconds (renewed every third).
const LEASE_TTL_S: u64 = 4;

/// One daemon of the farm and its plotter.
struct Member {
    name: &'static str,
    port: u16,
    process: Running,
    board: Option<(StopHandle, thread::JoinHandle<Trace>)>,
}

/// A simulated EBB on a pty at `link`, as fast as it can run or paced to the wall clock.
pub(crate) fn board(link: &Path, clock: ClockMode) -> (StopHandle, thread::JoinHandle<Trace>) {
    let server = PtyServer::open(Some(link)).unwrap();
    let stop = server.stop_handle();
    let handle = thread::spawn(move || {
        let observer = SimObserver::new(TraceConfig::default());
        let mut board = Board::with_observer(FirmwareVersion::V3_0_3, observer);
        server.run(&mut board, clock).unwrap();
        board.into_observer().trace.finish()
    });
    (stop, handle)
}

/// Starts daemon `name` on the database `url` with its own workspace, config and board.
fn start(env: &Env, url: &str, name: &'static str, clock: ClockMode) -> Member {
    let link = env.path(&format!("ebb-{name}"));
    let board = board(&link, clock);
    let config = env.write(
        &format!("{name}.yaml"),
        &format!(
            "database:\n  url: \"{url}\"\n  lease_ttl: {LEASE_TTL_S}\ndaemon:\n  name: {name}\n\
             device:\n  type: axidraw\n  port: {}\n",
            link.display()
        ),
    );
    let workspace = env.path(&format!("ws-{name}"));
    let port = free_port();
    let mut cmd = env.cmd();
    cmd.args(["daemon", "-h", "127.0.0.1", "-p", &port.to_string(), "-c"])
        .arg(&config)
        .arg("-w")
        .arg(&workspace);
    let mut process = env.spawn(cmd);
    process.wait_ready();
    Member {
        name,
        port,
        process,
        board: Some(board),
    }
}

impl Member {
    /// `plotty add FILE --start` on this daemon; the new job's id.
    fn add(&self, env: &Env, file: &Path) -> String {
        let out = env
            .cmd()
            .args([
                "add",
                file.to_str().unwrap(),
                "--start",
                "--host",
                "127.0.0.1",
            ])
            .args(["--port", &self.port.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {}", self.name, stderr(&out));
        stdout(&out).trim().to_owned()
    }

    /// Stops the board and returns its trace.
    fn trace(&mut self) -> Trace {
        let (stop, handle) = self.board.take().unwrap();
        stop.stop();
        handle.join().unwrap()
    }
}

/// The small job `i`: a 5 mm horizontal line of its own.
fn small_line(i: usize) -> [(f64, f64); 2] {
    let x = 10.0 + (i % 6) as f64 * 10.0;
    let y = 10.0 + (i / 6) as f64 * 8.0;
    [(x, y), (x + 5.0, y)]
}

pub(crate) fn svg(lines: &[[(f64, f64); 2]]) -> String {
    let paths: String = lines
        .iter()
        .map(|[(x0, y0), (x1, y1)]| {
            format!(r#"<path d="M{x0} {y0} L{x1} {y1}" stroke="black" fill="none"/>"#)
        })
        .collect();
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="200mm" height="200mm" viewBox="0 0 200 200">{paths}</svg>"#
    )
}

/// Distance from `p` to the segment `a`–`b`.
pub(crate) fn to_segment(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (qx, qy) = (a.0 + t * dx - p.0, a.1 + t * dy - p.1);
    (qx * qx + qy * qy).sqrt()
}

/// The database, read directly (the jobs of every daemon).
pub(crate) struct Db {
    runtime: tokio::runtime::Runtime,
    store: PgStore,
}

impl Db {
    pub(crate) fn open(url: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (store, _) = runtime.block_on(PgStore::connect(url, 2)).unwrap();
        Self { runtime, store }
    }

    pub(crate) fn job(&self, id: &str) -> JobRecord {
        self.runtime
            .block_on(self.store.job(id))
            .unwrap()
            .unwrap_or_else(|| panic!("no job {id}"))
    }

    /// How many times the job was claimed (`READY → ARMED`).
    pub(crate) fn claims(&self, id: &str) -> usize {
        self.runtime
            .block_on(self.store.events(id))
            .unwrap()
            .iter()
            .filter(|e| e.to_state.as_deref() == Some("ARMED"))
            .count()
    }
}

/// A WebSocket client of the daemon at `port`, collecting every message it receives.
fn ws_client(port: u16) -> Arc<Mutex<Vec<Value>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&seen);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let url = format!("ws://127.0.0.1:{port}/ws");
            let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
            let _ = ready_tx.send(());
            while let Some(Ok(msg)) = ws.next().await {
                if let Ok(text) = msg.to_text()
                    && let Ok(v) = serde_json::from_str::<Value>(text)
                {
                    into.lock().unwrap().push(v);
                }
            }
        });
    });
    ready_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the WebSocket client connects");
    seen
}

/// A plain HTTP GET on loopback; the whole answer (status line, headers, body).
pub(crate) fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn three_daemons_on_one_postgresql_plot_every_job_once_and_a_killed_daemons_job_stays_paused() {
    let Some(url) = plotty_host::testing::postgres::database_or_skip(
        "process::farm::three_daemons_on_one_postgresql",
    ) else {
        return;
    };
    let env = Env::new();
    let db = Db::open(&url);

    // `c` first, alone, with a long job (20 lines of 40 mm, in real time) on its plotter.
    let mut c = start(&env, &url, "c", ClockMode::Realtime);
    let long: Vec<[(f64, f64); 2]> = (0..20)
        .map(|i| {
            let y = 120.0 + 3.0 * f64::from(i);
            [(100.0, y), (140.0, y)]
        })
        .collect();
    let long_file = env.write("long.svg", &svg(&long));
    let long_id = c.add(&env, &long_file);
    poll_for("c to plot its long job", 60, || {
        let j = db.job(&long_id);
        (j.state.as_str() == "PLOTTING").then_some(())
    });

    let mut a = start(&env, &url, "a", ClockMode::AsFastAsPossible);
    let mut b = start(&env, &url, "b", ClockMode::AsFastAsPossible);
    // A second daemon named `a` (another workspace) is refused while `a` lives (exit 3).
    let twin = env.write(
        "twin.yaml",
        &format!("database:\n  url: \"{url}\"\ndaemon:\n  name: a\ndevice:\n  type: simulator\n"),
    );
    let mut cmd = env.cmd();
    cmd.args(["daemon", "-h", "127.0.0.1", "-p", "0", "-c"])
        .arg(&twin)
        .arg("-w")
        .arg(env.path("ws-twin"));
    let out = crate::common::output_within_deadline(cmd);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("daemon.name `a` is used by another live daemon"),
        "{}",
        stderr(&out)
    );
    let on_b = ws_client(b.port);

    // Small jobs across the three daemons, each released at once.
    let mut small: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..JOBS {
        let file = env.write(&format!("small-{i}.svg"), &svg(&[small_line(i)]));
        let to = [&a, &b, &c][i % 3];
        small.insert(to.add(&env, &file), i);
    }
    // Every job submitted to `c` is past its pipeline (its SVG and program are in the
    // database), and the long plot is under way: kill `c` mid-plot.
    poll_for("c's submissions to be READY or beyond", 120, || {
        small
            .keys()
            .all(|id| {
                let j = db.job(id);
                !matches!(
                    j.state.as_str(),
                    "NEW" | "QUEUED" | "ANALYZED" | "OPTIMIZED"
                )
            })
            .then_some(())
    });
    poll_for("the long job to pass stroke 2", 120, || {
        db.job(&long_id)
            .resume
            .filter(|r| r.stroke >= 2)
            .map(|_| ())
    });
    c.process.signal(Signal::SIGKILL);
    c.process.wait_exit();

    // Once its lease expired, `a` or `b` records the long job PAUSED (interrupted), still `c`'s.
    let paused = poll_for("the killed daemon's job to be PAUSED", 60, || {
        let j = db.job(&long_id);
        (j.state.as_str() == "PAUSED").then_some(j)
    });
    assert_eq!(paused.state_reason.as_deref(), Some("interrupted"));
    assert_eq!(
        paused.daemon.as_deref(),
        Some("c"),
        "it stays c's: c's plotter has the paper"
    );
    assert_eq!(paused.lease, None);

    // Every small job is plotted, by `a` or `b` (`c` was busy, then dead).
    poll_for("every small job to complete", 180, || {
        small
            .keys()
            .all(|id| db.job(id).state.as_str() == "COMPLETED")
            .then_some(())
    });
    let mut by_daemon: BTreeMap<String, usize> = BTreeMap::new();
    for id in small.keys() {
        let j = db.job(id);
        assert_eq!(db.claims(id), 1, "job {id} was claimed more than once");
        *by_daemon
            .entry(j.daemon.clone().unwrap_or_default())
            .or_default() += 1;
    }
    assert!(
        by_daemon.keys().all(|d| d == "a" || d == "b"),
        "{by_daemon:?}"
    );
    // b previews a job submitted to and plotted by a: from the SVG in the database, copied into
    // b's own workspace.
    let (only_a, _) = small
        .iter()
        .find(|(id, _)| {
            let j = db.job(id);
            j.daemon.as_deref() == Some("a") && j.submitted_by.as_deref() == Some("a")
        })
        .expect("a plotted one of its own jobs");
    let copy = env
        .path("ws-b")
        .join("jobs")
        .join(only_a)
        .join("source.svg");
    assert!(!copy.exists());
    let preview = http_get(b.port, &format!("/api/jobs/{only_a}/preview.svg"));
    assert!(preview.starts_with("HTTP/1.1 200"), "{preview}");
    assert!(preview.contains("<svg"), "{preview}");
    assert!(copy.exists(), "b read the SVG from the database");
    // Still PAUSED on `c`, never plotted elsewhere.
    let still = db.job(&long_id);
    assert_eq!((still.state.as_str(), db.claims(&long_id)), ("PAUSED", 1));

    // b's WebSocket client saw a's events, marked with a's name, and b's own, marked with b's.
    let seen = on_b.lock().unwrap().clone();
    let from = |daemon: &str| {
        seen.iter()
            .filter(|m| m["type"] == "job_state_change" && m["daemon"] == daemon)
            .count()
    };
    assert!(
        from("a") > 0 && from("b") > 0,
        "b's client saw {} from a, {} from b",
        from("a"),
        from("b")
    );
    // …and the progress of c's long plot, marked with c's name.
    let progress_of_c = seen
        .iter()
        .filter(|m| {
            m["type"] == "job_progress" && m["daemon"] == "c" && m["job_id"] == long_id.as_str()
        })
        .count();
    assert!(progress_of_c > 0, "b's client saw no progress of c's plot");
    // No duplicates: each change of a job reaches b's client once.
    let mut changes = BTreeMap::new();
    for m in seen.iter().filter(|m| m["type"] == "job_state_change") {
        let key = (
            m["job_id"].as_str().unwrap_or("").to_owned(),
            m["to_state"].as_str().unwrap_or("").to_owned(),
        );
        *changes.entry(key).or_insert(0) += 1;
    }
    for ((job, to), n) in &changes {
        assert_eq!(*n, 1, "b's client saw {job} → {to} {n} times");
    }

    // The plotters: every small line drawn exactly once over the three traces, nothing else
    // but the long job's lines on c's.
    for m in [&mut a, &mut b] {
        m.process.signal(Signal::SIGTERM);
        assert!(
            m.process.wait_exit().success(),
            "{}: {}",
            m.name,
            m.process.stderr()
        );
    }
    let traces: Vec<(&str, Trace)> = vec![("a", a.trace()), ("b", b.trace()), ("c", c.trace())];
    let lines: Vec<[(f64, f64); 2]> = (0..JOBS).map(small_line).collect();
    let mut drawn = vec![0usize; JOBS];
    for (name, trace) in &traces {
        for stroke in &trace.strokes {
            let points: Vec<(f64, f64)> = stroke.iter().map(|p| (p.x, p.y)).collect();
            let on = |[a, b]: &[(f64, f64); 2]| points.iter().all(|p| to_segment(*p, *a, *b) < 0.1);
            if let Some(i) = lines.iter().position(on) {
                drawn[i] += 1;
            } else {
                assert!(
                    *name == "c" && long.iter().any(on),
                    "{name}'s plotter drew a stroke of no job: {points:?}"
                );
            }
        }
    }
    for (i, n) in drawn.iter().enumerate() {
        assert_eq!(*n, 1, "line {i} drawn {n} times");
    }
    eprintln!(
        "farm: {JOBS} small jobs plotted by {by_daemon:?}; b's client saw {} state changes of a, \
         {progress_of_c} progress reports of c; strokes a/b/c: {}/{}/{}",
        from("a"),
        traces[0].1.strokes.len(),
        traces[1].1.strokes.len(),
        traces[2].1.strokes.len()
    );
}
