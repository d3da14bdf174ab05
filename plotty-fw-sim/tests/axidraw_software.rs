//! The simulator as the AxiDraw software finds and uses a board: the `serve` binary with a link
//! and a nickname, and a pyserial client of our own (`tests/python/vendor_like_client.py`, no
//! vendor code) that lists ports through the shim in `contrib/axidraw` (as the README tells
//! users to run the AxiDraw software), opens the board by nickname, plots, writes a new name
//! (ST then RB) and sees the board drop off USB and come back under that name.
//!
//! Needs a python3 that can `import serial` (Debian: `python3-serial`); without one the test
//! says so on a `SKIP` line, and fails under `CI=true`, whose setup installs it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a panic

use std::io::{BufRead, BufReader, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// `/usr/bin/python3`, else the first `python3` on `PATH`, that can import pyserial.
fn python_with_pyserial() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("python3"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    std::iter::once(PathBuf::from("/usr/bin/python3"))
        .chain(on_path)
        .filter(|python| python.is_file())
        .find(|python| {
            Command::new(python)
                .args(["-c", "import serial.tools.list_ports"])
                .env_remove("PYTHONPATH")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })
}

/// Reports a test that could not run (see `plotty_host::testing::skip`, which this crate cannot
/// depend on): a `SKIP` line on stderr and in `$PLOTTY_TEST_SKIPS`, and a failure under
/// `CI=true`, which provides what is missing.
fn skip(test: &str, reason: &str) {
    let line = format!("SKIP {test}: {reason}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("PLOTTY_TEST_SKIPS")
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "{line}: CI=true provides python3 with pyserial (.ci/run installs python3-serial), so \
         the skip is a failure"
    );
}

#[test]
fn the_vendor_like_client_finds_plots_renames_and_sees_the_reboot() {
    let Some(python) = python_with_pyserial() else {
        skip(
            "the_vendor_like_client_finds_plots_renames_and_sees_the_reboot",
            "no python3 with pyserial (tried /usr/bin/python3 and every python3 on PATH); \
             install python3-serial",
        );
        return;
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let client = manifest.join("tests/python/vendor_like_client.py");
    let shim = manifest.join("../contrib/axidraw");
    let dir = tempfile::tempdir().unwrap();
    let ports = dir.path().join("ports");
    let link = dir.path().join("ttyACM-sim");
    // A card left by a simulator that was killed: its process and pty are gone, so the
    // listing must not offer it.
    std::fs::create_dir(&ports).unwrap();
    let stale = ports.join("999999999.port");
    std::fs::write(
        &stale,
        "device=/tmp/plotty-stale-ebb\ntty=/dev/pts/999999\npid=999999999\nvid=04D8\n\
         product_id=FD92\nproduct=EiBotBoard\nserial=Stale\n",
    )
    .unwrap();

    let mut sim = Command::new(env!("CARGO_BIN_EXE_plotty-fw-sim"))
        .args([
            "serve",
            "--nickname",
            "Plotty-One",
            "--reboot-delay",
            "1500ms",
        ])
        .arg("--link")
        .arg(&link)
        .env("PLOTTY_FW_SIM_PORTS", &ports)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sim_out = BufReader::new(sim.stdout.take().unwrap());
    let mut device = String::new();
    sim_out.read_line(&mut device).unwrap();

    let client_run = Command::new(&python)
        .arg(&client)
        .arg(&link)
        .args(["Plotty-One", "Renamed-Two"])
        .env("PYTHONPATH", &shim)
        .env("PLOTTY_FW_SIM_PORTS", &ports)
        // Unbuffered, so that a failure shows how far the client got.
        .env("PYTHONUNBUFFERED", "1")
        .output()
        .unwrap();

    kill(Pid::from_raw(sim.id() as i32), Signal::SIGTERM).unwrap();
    let mut summary = String::new();
    sim_out.read_to_string(&mut summary).unwrap();
    let status = sim.wait().unwrap();
    let mut sim_err = String::new();
    sim.stderr
        .take()
        .unwrap()
        .read_to_string(&mut sim_err)
        .unwrap();

    let client_out = String::from_utf8_lossy(&client_run.stdout);
    let client_err = String::from_utf8_lossy(&client_run.stderr);
    let context = format!(
        "{} {}:\n{client_out}\n{client_err}\nsimulator:\n{sim_err}\n{summary}",
        python.display(),
        client.display()
    );
    assert!(client_run.status.success(), "the client failed: {context}");
    assert!(
        client_out.contains("vendor-like client: all checks passed"),
        "{context}"
    );
    assert!(
        client_out.contains(&format!(
            "listed: {} | EiBotBoard | USB VID:PID=04D8:FD92 SER=Plotty-One",
            link.display()
        )),
        "{context}"
    );
    assert!(
        client_out.contains(&format!("EiBotBoards listed: {}\n", link.display())),
        "only the live simulator is listed: {context}"
    );
    assert!(status.success(), "{context}");
    assert!(summary.contains("USB drops          1"), "{context}");
    // The diamond: four moves of 1600 steps on one motor, 14.142 mm each.
    assert!(
        summary.contains("pen-down distance  56.569 mm"),
        "{context}"
    );
    let left: Vec<_> = std::fs::read_dir(&ports)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(
        left,
        [stale],
        "the port card is withdrawn on exit: {context}"
    );
}
