//! Idle resident memory of the real daemon: the `plotty` binary started as `plotty daemon` with
//! the default configuration (no config file, device `auto`, which picks the built-in simulator
//! when no AxiDraw is plugged in, so the device task, its plot thread and the simulator are
//! running) in a workspace of its own, asked once for `/api/devices`, `/status` and `/api/jobs` (so the API, the
//! queue and the store have each run), then left idle; its `VmRSS` from `/proc/PID/status`.
//! DESIGN.md's budget: ≤ 20 MiB, which the measuring run asserts.
//!
//! Run: `cargo bench -p plotty-host --bench idle_rss` (the optimised binary; several samples a
//! second apart, the figure is the largest). `cargo test -p plotty-host --bench idle_rss` (or
//! `-- --test`) is the smoke run CI does: the debug binary, one sample, the same checks.

// A failed set-up step ends the benchmark; there is nothing to recover.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use plotty_host::daemon::state_file::StateFile;

mod support;

use support::{Daemon, get, quick, status_kib, wait};

/// DESIGN.md's budget for the optimised daemon, KiB (a debug build is larger and not held to it).
const BUDGET_KIB: u64 = 20 * 1024;

/// How long the daemon is left alone before the first sample.
const SETTLE: Duration = Duration::from_secs(2);

fn main() {
    let quick = quick();
    let dir = tempfile::tempdir().unwrap();
    for d in ["home", "config", "data"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    let workspace = dir.path().join("ws");
    let log = dir.path().join("daemon.log");
    let child = Command::new(env!("CARGO_BIN_EXE_plotty"))
        .current_dir(dir.path())
        // A private environment: no config file found, the defaults apply.
        .env("HOME", dir.path().join("home"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env_remove("PLOTTY_CONFIG")
        .env_remove("PLOTTY_API_KEY")
        .env_remove("PLOTTY_WORKSPACE")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("RUST_LOG")
        .args(["daemon", "-h", "127.0.0.1", "-p", "0", "-w"])
        .arg(&workspace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut daemon = Daemon(child);
    let stderr = || std::fs::read_to_string(&log).unwrap_or_default();
    wait("the daemon to be ready", Duration::from_secs(30), || {
        if let Ok(Some(status)) = daemon.0.try_wait() {
            panic!("the daemon exited with {status}:\n{}", stderr());
        }
        stderr().contains("ready: listening").then_some(())
    });
    let port = wait("daemon.json", Duration::from_secs(30), || {
        StateFile::read(&workspace).ok()?.port
    });
    // The device task must be up, on the simulator (no AxiDraw here) or on a plotter found.
    let devices = wait("the device to attach", Duration::from_secs(30), || {
        let body = get(port, "/api/devices");
        body.contains('{').then_some(body)
    });
    get(port, "/status");
    get(port, "/api/jobs");
    let device = if stderr().contains("plotter found") {
        "an AxiDraw found by `auto`"
    } else {
        "the simulator (`auto`, no AxiDraw found)"
    };
    println!("idle_rss: /api/devices: {}", devices.trim());

    std::thread::sleep(SETTLE);
    let samples = if quick { 1 } else { 5 };
    let mut worst = 0;
    for i in 0..samples {
        if i > 0 {
            std::thread::sleep(Duration::from_secs(1));
        }
        worst = worst.max(status_kib(daemon.0.id()).rss);
    }
    assert!(
        daemon.0.try_wait().unwrap().is_none(),
        "the daemon ended while idle:\n{}",
        stderr()
    );
    println!(
        "idle_rss: {:.1} MiB resident ({} KiB; `plotty daemon`, default settings, device: {device}, \
         idle {} s, {samples} sample(s), {} build)",
        worst as f64 / 1024.0,
        worst,
        SETTLE.as_secs(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "optimised"
        }
    );
    assert!(
        quick || worst <= BUDGET_KIB,
        "idle RSS {worst} KiB is over the budget of {BUDGET_KIB} KiB"
    );
}
