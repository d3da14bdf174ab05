//! Memory of the real daemon on a big job (issue 10): the `plotty` binary started as `plotty
//! daemon` with `limits` and `websocket.max_upload_size` raised for the drawing, given a random
//! walk of `PLOTTY_BIG_SEGMENTS` segments (default 2,000,000; generated here, never committed)
//! with `plotty add`; its peak (`VmHWM`) and resident memory (`VmRSS`) idle, at `READY`, and once
//! the job is cancelled and deleted. The figure that matters is the last against idle: a big
//! job's memory goes back to the system.
//!
//! Run: `cargo bench -p plotty-host --bench big_job_rss` (the optimised binary).
//! `cargo test -p plotty-host --bench big_job_rss` (or `-- --test`) is the smoke run: the debug
//! binary and 20,000 segments. The peaks of `plotty plot --estimate` and `--preview out.png` on
//! the same kind of drawing: `cargo test -p plotty-host --lib measure_memory -- --ignored
//! --nocapture`.

// A failed set-up step ends the benchmark; there is nothing to recover.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use plotty_host::daemon::state_file::StateFile;

mod support;

use support::{Daemon, get, quick, status_kib, wait};

/// How long the daemon is left alone before a sample of its resident memory.
const SETTLE: Duration = Duration::from_secs(2);

fn main() {
    let quick = quick();
    let segments: usize = std::env::var("PLOTTY_BIG_SEGMENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 20_000 } else { 2_000_000 });
    let dir = tempfile::tempdir().unwrap();
    for d in ["home", "config", "data"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    let svg = dir.path().join("walk.svg");
    plotty_host::testing::write_random_walk(&svg, segments).unwrap();
    let size = std::fs::metadata(&svg).unwrap().len();
    let mib = size / (1 << 20) + 2;
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "limits:\n  max_segments: {}\n  max_file_mb: {mib}\nwebsocket:\n  max_upload_size: {}\n",
            segments + 1,
            mib << 20
        ),
    )
    .unwrap();
    let workspace = dir.path().join("ws");
    let log = dir.path().join("daemon.log");
    let plotty = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_plotty"));
        c.current_dir(dir.path())
            .env("HOME", dir.path().join("home"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env_remove("PLOTTY_CONFIG")
            .env_remove("PLOTTY_API_KEY")
            .env_remove("PLOTTY_WORKSPACE")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("RUST_LOG")
            .args(args);
        c
    };
    let child = plotty(&["daemon", "-h", "127.0.0.1", "-p", "0", "-c"])
        .arg(&config)
        .arg("-w")
        .arg(&workspace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let daemon = Daemon(child);
    let pid = daemon.0.id();
    let stderr = || std::fs::read_to_string(&log).unwrap_or_default();
    wait("the daemon to be ready", Duration::from_secs(30), || {
        stderr().contains("ready: listening").then_some(())
    });
    let port = wait("daemon.json", Duration::from_secs(30), || {
        StateFile::read(&workspace).ok()?.port
    });
    let port_arg = port.to_string();
    let client = |args: &[&str]| {
        let out = plotty(args)
            .args(["--port", &port_arg, "-c"])
            .arg(&config)
            .arg("-w")
            .arg(&workspace)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "plotty {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    get(port, "/api/jobs");
    std::thread::sleep(SETTLE);
    let idle = status_kib(pid);

    let path = svg.display().to_string();
    let added = client(&["add", &path]);
    let id = added.lines().next().unwrap().to_owned();
    let started = Instant::now();
    wait("the job to be READY", Duration::from_secs(1800), || {
        let jobs = get(port, "/api/jobs");
        assert!(!jobs.contains("FAILED"), "the job failed: {jobs}");
        jobs.contains("READY").then_some(())
    });
    let prepared_in = started.elapsed();
    std::thread::sleep(SETTLE);
    let ready = status_kib(pid);
    client(&["cancel", &id]);
    client(&["delete", &id]);
    std::thread::sleep(SETTLE);
    let after = status_kib(pid);
    assert!(
        stderr().contains("job deleted"),
        "the job was not deleted:\n{}",
        stderr()
    );
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "optimised"
    };
    println!(
        "big_job_rss: {segments} segments ({size} bytes), READY in {:.1} s, {build} build",
        prepared_in.as_secs_f64()
    );
    println!("big_job_rss: idle:                 RSS {:>8} KiB", idle.rss);
    println!(
        "big_job_rss: READY:                RSS {:>8} KiB, peak {:>8} KiB",
        ready.rss, ready.peak
    );
    println!(
        "big_job_rss: cancelled, deleted:   RSS {:>8} KiB ({:+} KiB over idle)",
        after.rss,
        after.rss as i64 - idle.rss as i64
    );
    // The point of the figure: a deleted job's memory goes back (measured: +2.5 MiB in a debug
    // build after 2 M segments, where it was +85 to +116 MiB before the heap was trimmed).
    assert!(
        after.rss <= idle.rss + AFTER_OVER_IDLE_KIB,
        "a deleted job's memory was kept: {} KiB after, {} KiB idle",
        after.rss,
        idle.rss
    );
}

/// How much more than idle the daemon may hold once a big job is deleted.
const AFTER_OVER_IDLE_KIB: u64 = 8 * 1024;
