//! The simulator on a pseudo-terminal, opened as a serial port with the `serialport` crate (as
//! the host opens a real EBB): in-process, and as the `plotty-fw-sim serve` binary stopped by
//! SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a panic

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use plotty_fw_sim::FirmwareVersion;
use plotty_fw_sim::board::Board;
use plotty_fw_sim::pty::PtyServer;
use plotty_fw_sim::runner::{ClockMode, Exit};

type Port = serialport::TTYPort;

/// Serialises the tests of this file. `serialport` takes an `flock` on the device, and a child
/// forked by a parallel test (to exec the serve binary) holds a copy of every open descriptor
/// until it execs: a port closed meanwhile stays locked, and reopening it fails at random.
static FORK_GUARD: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    // A test that failed while holding the guard poisons it; the others still run.
    FORK_GUARD.lock().unwrap_or_else(PoisonError::into_inner)
}

fn open(path: &Path) -> Port {
    serialport::new(path.to_string_lossy(), 115_200)
        // Only a guard against a hang: every read below expects bytes.
        .timeout(Duration::from_secs(20))
        .open_native()
        .expect("open the pty as a serial port")
}

/// Reads until the received bytes end with `end`.
fn read_until(port: &mut Port, end: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while !got.ends_with(end.as_bytes()) {
        let n = port.read(&mut buf).expect("reply");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).unwrap()
}

fn command(port: &mut Port, cmd: &str) -> String {
    port.write_all(format!("{cmd}\r").as_bytes()).unwrap();
    read_until(port, "OK\r\n")
}

fn wait_idle(port: &mut Port) {
    loop {
        port.write_all(b"QG\r").unwrap();
        let status = u8::from_str_radix(read_until(port, "\r\n").trim(), 16).unwrap();
        if status & 0x08 == 0 {
            return;
        }
    }
}

/// A 20 mm square with the pen down, starting 10 mm right of home; checks QS on the way.
fn plot_square(port: &mut Port) {
    port.write_all(b"V\r").unwrap();
    assert_eq!(
        read_until(port, "\r\n"),
        "EBBv13_and_above EB Firmware Version 3.0.3\r\n"
    );
    command(port, "EM,1,1");
    command(port, "SM,200,800,800");
    command(port, "SP,0,150");
    for (m1, m2) in [(1600, 1600), (1600, -1600)] {
        command(port, &format!("SM,400,{m1},{m2}"));
    }
    wait_idle(port);
    port.write_all(b"QS\r").unwrap();
    assert_eq!(read_until(port, "OK\r\n"), "4000,800\n\rOK\r\n");
    for (m1, m2) in [(-1600, -1600), (-1600, 1600)] {
        command(port, &format!("SM,400,{m1},{m2}"));
    }
    command(port, "SP,1,150");
    command(port, "SM,200,-800,-800");
    wait_idle(port);
    port.write_all(b"QS\r").unwrap();
    assert_eq!(read_until(port, "OK\r\n"), "0,0\n\rOK\r\n");
}

#[test]
fn in_process_server_survives_reopen_and_records_the_square() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ebb");
    let server = PtyServer::open(Some(&link)).unwrap();
    assert!(server.path().starts_with("/dev/pts"));
    assert_eq!(std::fs::read_link(&link).unwrap(), server.path());
    let path = link.clone();
    let stop = server.stop_handle();
    let serving = thread::spawn(move || {
        let mut board = Board::new(FirmwareVersion::V3_0_3);
        let exit = server.run(&mut board, ClockMode::AsFastAsPossible).unwrap();
        drop(server);
        (board, exit)
    });

    // A first host asks for the version and closes the port.
    let mut port = open(&path);
    port.write_all(b"v\r").unwrap();
    assert!(read_until(&mut port, "\r\n").starts_with("EBB"));
    drop(port);
    // A second host opens the same path and plots.
    let mut port = open(&path);
    plot_square(&mut port);
    drop(port);

    stop.stop();
    let (board, exit) = serving.join().unwrap();
    assert_eq!(exit, Exit::Stopped);
    assert!(!link.exists(), "the link is removed on exit");
    let trace = board.observer().trace.trace();
    assert_eq!(trace.strokes.len(), 1);
    let corners: Vec<(f64, f64)> = trace.strokes[0].iter().map(|p| (p.x, p.y)).collect();
    assert_eq!(
        corners,
        vec![
            (10.0, 0.0),
            (30.0, 0.0),
            (30.0, 20.0),
            (10.0, 20.0),
            (10.0, 0.0)
        ]
    );
}

#[test]
fn serve_binary_plots_and_writes_the_trace_on_sigterm() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("trace.svg");
    let png = dir.path().join("trace.png");
    let mut child = Command::new(env!("CARGO_BIN_EXE_plotty-fw-sim"))
        .arg("serve")
        .arg("--trace")
        .arg(&svg)
        .arg("--png")
        .arg(&png)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut device = String::new();
    stdout.read_line(&mut device).unwrap();
    let device = device.trim_end();
    assert!(device.starts_with("/dev/pts/"), "{device:?}");

    let mut port = open(Path::new(device));
    plot_square(&mut port);
    drop(port);

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(rest.contains("stopped"), "{rest}");
    assert!(rest.contains("commands received  "), "{rest}");
    assert!(
        rest.contains("pen                1 lifts, 1 lowerings"),
        "{rest}"
    );

    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(
        svg.contains(
            "points=\"10.000,0.000 30.000,0.000 30.000,20.000 10.000,20.000 10.000,0.000\""
        ),
        "{svg}"
    );
    let png = std::fs::read(&png).unwrap();
    assert_eq!(&png[1..4], b"PNG");
}

#[test]
fn serve_binary_rejects_bad_arguments_clearly() {
    let _serial = serial();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_plotty-fw-sim"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8(out.stderr).unwrap()
    };
    assert!(run(&["serve", "--fault", "teleport@3"]).contains("unknown fault"));
    assert!(run(&["serve", "--firmware", "9.9.9"]).contains("3.0.3"));
    assert!(run(&["serve", "--fault", "drop=0.7", "--fault", "dup=0.7"]).contains("more than 1"));
    assert!(run(&["serve", "--colors", "red,\"/>"]).contains("colour"));
    assert!(run(&["serve", "--nickname", "a,b"]).contains("no comma"));
    assert!(run(&["serve", "--reboot-delay", "soon"]).contains("such as 2s"));
    assert!(run(&["serve", "--fault", "unplug=3@1s"]).contains("Xs or Xms"));
    let err = run(&["serve", "--trace", "/nonexistent-dir/trace.svg"]);
    assert!(
        err.contains("cannot write /nonexistent-dir/trace.svg"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let err = run(&["serve", "--link", file.to_str().unwrap()]);
    assert!(err.contains("is not a symbolic link"), "{err}");
}

#[test]
fn serve_binary_vanishes_on_a_scheduled_fault() {
    let _serial = serial();
    let mut child = Command::new(env!("CARGO_BIN_EXE_plotty-fw-sim"))
        .args(["serve", "--seed", "7", "--fault", "vanish@3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut device = String::new();
    stdout.read_line(&mut device).unwrap();
    let mut port = open(Path::new(device.trim_end()));
    command(&mut port, "EM,1,1");
    command(&mut port, "SM,100,10,10");
    port.write_all(b"SM,100,10,10\r").unwrap();
    // The board is gone: the pty is closed under the host (EOF or an error, never a reply).
    let mut buf = [0u8; 16];
    match port.read(&mut buf) {
        Ok(n) => assert_eq!(n, 0, "unexpected reply {:?}", &buf[..n]),
        Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::TimedOut, "{e}"),
    }
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(stderr.contains("fault seed 7"), "{stderr}");
    assert!(rest.contains("board vanished"), "{rest}");
    assert!(rest.contains("commands received  3"), "{rest}");
}

/// The `pen-down` line the serve binary prints on exit: its first distance, in millimetres.
fn printed_pen_down_mm(output: &str) -> f64 {
    let line = output
        .lines()
        .find(|line| line.starts_with("pen-down"))
        .unwrap_or_else(|| panic!("no pen-down line in {output}"));
    let before_mm = line.split(" mm").next().unwrap();
    before_mm.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn serve_binary_reports_the_commanded_pen_down_distance_of_slanted_squares() {
    let _serial = serial();
    let mut child = Command::new(env!("CARGO_BIN_EXE_plotty-fw-sim"))
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut device = String::new();
    stdout.read_line(&mut device).unwrap();
    let mut port = open(Path::new(device.trim_end()));
    command(&mut port, "EM,1,1");
    let mut commanded = 0.0;
    // Squares with slanted sides of (a, c) mm: x = (m1 + m2) / 160, y = (m1 - m2) / 160.
    for (a, c) in [(30i32, 7i32), (25, 11), (17, 3), (9, 31)] {
        command(&mut port, "SP,0,100");
        for (x, y) in [(a, c), (-c, a), (-a, -c), (c, -a)] {
            let (m1, m2) = (80 * (x + y), 80 * (x - y));
            let ms = i32::max(m1.abs(), m2.abs()) / 5;
            command(&mut port, &format!("SM,{ms},{m1},{m2}"));
            commanded += f64::from(x).hypot(f64::from(y));
        }
        command(&mut port, "SP,1,100");
        command(&mut port, "SM,100,400,400");
    }
    wait_idle(&mut port);
    drop(port);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    let reported = printed_pen_down_mm(&rest);
    assert!(
        (reported - commanded).abs() / commanded < 1e-4,
        "reported {reported} mm, commanded {commanded} mm\n{rest}"
    );
}

/// Polls `done` every 10 ms for up to 10 s (the device comes and goes on the wall clock).
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// The host's open port after the board dropped off USB: EOF or an error at once, never a
/// reply and never a timeout.
fn assert_hung_up(port: &mut Port) {
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    match port.read(&mut buf) {
        Ok(n) => assert_eq!(n, 0, "unexpected reply {:?}", &buf[..n]),
        Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::TimedOut, "{e}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the hang-up took {:?}",
        started.elapsed()
    );
}

/// Stops a serve child with SIGTERM; returns its stdout after the first line and its stderr.
fn stop_serving(
    mut child: std::process::Child,
    mut stdout: BufReader<std::process::ChildStdout>,
) -> (String, String) {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status:?}\n{stderr}");
    (rest, stderr)
}

#[test]
fn serve_binary_reboots_on_rb_off_usb_then_back_on_the_same_link() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ebb");
    let mut child = Command::new(env!("CARGO_BIN_EXE_plotty-fw-sim"))
        .args([
            "serve",
            "--nickname",
            "Before",
            "--reboot-delay",
            "1s",
            "--link",
        ])
        .arg(&link)
        .env("PLOTTY_FW_SIM_PORTS", dir.path().join("ports"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut device = String::new();
    stdout.read_line(&mut device).unwrap();
    let mut port = open(&link);
    port.write_all(b"QT\r").unwrap();
    assert_eq!(read_until(&mut port, "OK\r\n"), "Before\r\nOK\r\n");
    command(&mut port, "CU,4,8");
    command(&mut port, "ST,After");
    // What the AxiDraw software's "write name" does next: RB, and a read for the reply that
    // never comes. The port hangs up at once instead of timing out.
    port.write_all(b"RB\r").unwrap();
    assert_hung_up(&mut port);
    drop(port);
    wait_until("the link is removed", || {
        std::fs::symlink_metadata(&link).is_err()
    });
    wait_until("the link is back", || link.exists());
    let mut port = open(&link);
    port.write_all(b"V\r").unwrap();
    assert!(read_until(&mut port, "\r\n").starts_with("EBB"));
    port.write_all(b"QT\r").unwrap();
    assert_eq!(read_until(&mut port, "OK\r\n"), "After\r\nOK\r\n");
    drop(port);

    let (rest, stderr) = stop_serving(child, stdout);
    assert!(rest.contains("USB drops          1"), "{rest}");
    assert!(
        stderr.contains("rebooted (RB): off USB for 1.000 s"),
        "{stderr}"
    );
    assert!(stderr.contains("back on USB as /dev/pts/"), "{stderr}");
    assert!(!link.exists(), "the link is removed on exit");
}

#[test]
fn serve_binary_unplugs_and_replugs_on_a_fault_keeping_the_board_state() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ebb");
    let mut child = Command::new(env!("CARGO_BIN_EXE_plotty-fw-sim"))
        .args([
            "serve",
            "--seed",
            "1",
            "--fault",
            "unplug=200ms@2",
            "--link",
        ])
        .arg(&link)
        .env("PLOTTY_FW_SIM_PORTS", dir.path().join("ports"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut device = String::new();
    stdout.read_line(&mut device).unwrap();
    let mut port = open(&link);
    command(&mut port, "EM,1,1");
    // The second command is taken, then the cable is pulled before its reply.
    port.write_all(b"SM,100,80,40\r").unwrap();
    assert_hung_up(&mut port);
    drop(port);
    wait_until("the link is back", || link.exists());
    let mut port = open(&link);
    wait_idle(&mut port);
    // Not a reset: the move ran and the counters kept it.
    port.write_all(b"QS\r").unwrap();
    assert_eq!(read_until(&mut port, "OK\r\n"), "80,40\n\rOK\r\n");
    drop(port);
    let (rest, stderr) = stop_serving(child, stdout);
    assert!(
        stderr.contains("unplugged (injected fault): off USB for 0.200 s"),
        "{stderr}"
    );
    assert!(rest.contains("USB drops          1"), "{rest}");
}
