//! A host talking to a simulated board on its own thread through a [`VirtualPort`], with the
//! blocking and the async embedded-io traits, in both clock modes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a panic

use std::time::{Duration, Instant};

use embedded_io::{Read, Write};
use plotty_fw_sim::board::{Board, UsbDrop};
use plotty_fw_sim::fault::{FaultConfig, FaultInjector, FaultSpec};
use plotty_fw_sim::runner::{ClockMode, Exit, Runner, RunnerConfig};
use plotty_fw_sim::{FirmwareVersion, PortError, VirtualPort};

/// Reads until the bytes received end with `end`; the read timeout only guards against a hang.
fn read_until(port: &mut VirtualPort, end: &str) -> String {
    port.set_read_timeout(Some(Duration::from_secs(20)));
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while !got.ends_with(end.as_bytes()) {
        let n = port.read(&mut buf).expect("reply");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).unwrap()
}

fn command(port: &mut VirtualPort, cmd: &str) -> String {
    port.write_all(cmd.as_bytes()).unwrap();
    port.write_all(b"\r").unwrap();
    read_until(port, "OK\r\n")
}

/// Polls QG until no command is executing (bit 3 clear); returns the number of polls.
fn wait_idle(port: &mut VirtualPort) -> usize {
    for polls in 1.. {
        port.write_all(b"QG\r").unwrap();
        let reply = read_until(port, "\r\n");
        let status = u8::from_str_radix(reply.trim(), 16).unwrap();
        if status & 0x08 == 0 {
            return polls;
        }
    }
    unreachable!()
}

fn spawn(clock: ClockMode) -> (VirtualPort, Runner<plotty_fw_sim::SimObserver>) {
    let board = Board::new(FirmwareVersion::V3_0_3);
    Runner::spawn(
        board,
        RunnerConfig {
            clock,
            ..RunnerConfig::default()
        },
    )
    .unwrap()
}

#[test]
fn a_plot_runs_as_fast_as_possible_and_is_traced() {
    let (mut host, runner) = spawn(ClockMode::AsFastAsPossible);
    host.write_all(b"V\r").unwrap();
    assert!(read_until(&mut host, "\r\n").starts_with("EBBv13_and_above"));
    command(&mut host, "EM,1,1");
    command(&mut host, "SP,0,200");
    // A 40 mm square, 10 s per side: 40 s of simulated motion.
    for (m1, m2) in [(3200, 3200), (3200, -3200), (-3200, -3200), (-3200, 3200)] {
        command(&mut host, &format!("SM,10000,{m1},{m2}"));
    }
    command(&mut host, "SP,1,200");
    wait_idle(&mut host);
    host.write_all(b"QS\r").unwrap();
    assert_eq!(read_until(&mut host, "OK\r\n"), "0,0\n\rOK\r\n");
    let (board, exit) = runner.stop().unwrap();
    assert_eq!(exit, Exit::Stopped);
    assert!(board.now_ticks() >= 40 * 25_000, "{}", board.now_ticks());
    let trace = board.observer().trace.trace();
    assert_eq!(trace.strokes.len(), 1);
    assert!((trace.stroke_length_mm() - 160.0).abs() < 1e-6);
    let report = board.observer().stats.report(board.now_ticks());
    assert_eq!(report.pen_lifts, 1);
    assert_eq!(report.steps, [12_800, 12_800]);
}

#[test]
fn streamed_commands_stall_until_the_fifo_drains() {
    let (mut host, runner) = spawn(ClockMode::AsFastAsPossible);
    // Ten 1 s moves written at once, replies read afterwards: the board can only take them as
    // the FIFO drains, so the last OK comes after 8+ s of simulated time.
    let script: String = (0..10).map(|_| "SM,1000,100,0\r").collect();
    host.write_all(script.as_bytes()).unwrap();
    let replies = read_until(&mut host, &"OK\r\n".repeat(10));
    assert_eq!(replies, "OK\r\n".repeat(10));
    let (board, _) = runner.stop().unwrap();
    assert!(board.now_ticks() >= 8 * 25_000, "{}", board.now_ticks());
}

#[test]
fn the_runner_ends_when_the_host_hangs_up() {
    let (mut host, runner) = spawn(ClockMode::AsFastAsPossible);
    host.write_all(b"V\r").unwrap();
    read_until(&mut host, "\r\n");
    drop(host);
    let (board, exit) = runner.join().unwrap();
    assert_eq!(exit, Exit::HostClosed);
    assert_eq!(board.commands_received(), 1);
}

#[test]
fn rb_on_a_virtual_port_disconnects_the_host_and_ends_the_runner() {
    let (mut host, runner) = spawn(ClockMode::AsFastAsPossible);
    host.write_all(b"RB\r").unwrap();
    let mut buf = [0u8; 16];
    host.set_read_timeout(Some(Duration::from_secs(20)));
    // A virtual port cannot come back: the board dropping off USB is a disconnect.
    assert_eq!(host.read(&mut buf), Err(PortError::Disconnected));
    let (board, exit) = runner.join().unwrap();
    assert_eq!(exit, Exit::Detached(UsbDrop::Reboot));
    assert_eq!(board.detached(), Some(UsbDrop::Reboot));
}

#[test]
fn a_vanishing_board_disconnects_the_host() {
    let mut config = FaultConfig::default();
    config.apply("vanish@3".parse::<FaultSpec>().unwrap());
    let mut board = Board::new(FirmwareVersion::V3_0_3);
    board.set_faults(FaultInjector::new(9, config));
    let (mut host, runner) = Runner::spawn(board, RunnerConfig::default()).unwrap();
    command(&mut host, "EM,1,1");
    command(&mut host, "SM,100,10,10");
    host.write_all(b"SM,100,10,10\r").unwrap();
    let mut buf = [0u8; 16];
    host.set_read_timeout(Some(Duration::from_secs(20)));
    assert_eq!(host.read(&mut buf), Err(PortError::Disconnected));
    assert_eq!(host.write(b"V\r"), Err(PortError::Disconnected));
    let (board, exit) = runner.join().unwrap();
    assert_eq!(exit, Exit::Vanished);
    assert!(board.has_vanished());
}

#[test]
fn an_async_host_gets_replies() {
    let (mut host, runner) = spawn(ClockMode::AsFastAsPossible);
    let reply = block_on(async {
        embedded_io_async::Write::write_all(&mut host, b"SM,500,100,100\rQG\r")
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 32];
        while !got.ends_with(b"\r\n") || got.len() < 8 {
            let n = embedded_io_async::Read::read(&mut host, &mut buf)
                .await
                .unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(got).unwrap()
    });
    // OK for the move, then QG: executing (bit 3), both motors moving, pen up → 0x1E or 0x1F.
    assert!(reply.starts_with("OK\r\n1"), "{reply}");
    drop(host);
    runner.join().unwrap();
}

#[test]
fn realtime_follows_the_wall_clock() {
    let (mut host, runner) = spawn(ClockMode::Realtime);
    let started = Instant::now();
    command(&mut host, "SM,300,0,0");
    wait_idle(&mut host);
    let elapsed = started.elapsed();
    let (board, _) = runner.stop().unwrap();
    assert!(elapsed >= Duration::from_millis(290), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    // Simulated time kept pace with the wall clock (within scheduling slack).
    let simulated = Duration::from_micros(board.now_ticks() * 40);
    assert!(simulated >= Duration::from_millis(300), "{simulated:?}");
    assert!(
        simulated <= started.elapsed() + Duration::from_millis(50),
        "{simulated:?}"
    );
}

/// Minimal executor: polls the future, parking the thread until its waker fires.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    struct Unpark(std::thread::Thread, AtomicBool);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.1.store(true, Ordering::SeqCst);
            self.0.unpark();
        }
    }
    let unpark = Arc::new(Unpark(std::thread::current(), AtomicBool::new(false)));
    let waker = Waker::from(Arc::clone(&unpark));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        while !unpark.1.swap(false, Ordering::SeqCst) {
            std::thread::park();
        }
    }
}
