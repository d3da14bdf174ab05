//! The simulated board harness with its observers: how many times faster than real time a plot
//! runs through `plotty_fw_sim::board::Board` (USB packetisation, FIFO back-pressure, the
//! firmware's 25 kHz interrupt tick by tick) with the pen trace and statistics recorded.
//!
//! Throughput is reported in simulated ticks per second: divide by 25,000 for the real-time
//! factor (the budget is ≥ 2,000×, i.e. ≥ 50 M ticks/s; a 1-hour plot in ≤ 2 s needs ≥ 45 M).
//!
//! Run: `cargo bench --bench sim_runner`.
#![allow(clippy::expect_used)] // a benchmark that cannot run should stop loudly

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use plotty_fw_sim::board::Board;
use plotty_fw_sim::runner::{Runner, RunnerConfig};
use plotty_fw_sim::{FirmwareVersion, NoObserver, Observer};

/// An AxiDraw-style stream: 40 strokes, each a pen-up hop, pen down, 40 slices of 25 ms
/// (`SM,25,…` at up to 20 k steps/s on one motor, directions varying like a curve) and pen up.
/// About 48 s of simulated time.
fn script() -> Vec<u8> {
    let mut s = String::from("EM,1,1\r");
    for stroke in 0..40i32 {
        let _ = write!(s, "SM,100,{},{}\r", 400 + stroke, 300 - stroke);
        s.push_str("SP,0,50\r");
        for k in 0..40i32 {
            let a = f64::from(stroke * 40 + k) * 0.07;
            let m1 = (500.0 * a.cos()).round() as i32;
            let m2 = (500.0 * a.sin()).round() as i32;
            let _ = write!(s, "SM,25,{m1},{m2}\r");
        }
        s.push_str("SP,1,50\r");
    }
    s.push_str("SM,100,0,0\r");
    s.into_bytes()
}

/// Feeds the whole script through the board and runs it to the end; returns simulated ticks.
fn run<O: Observer>(observer: O, script: &[u8]) -> u64 {
    let mut board = Board::with_observer(FirmwareVersion::V3_0_3, observer);
    board.send(script).expect("no faults configured");
    board.run_until_idle(u64::MAX);
    board.now_ticks()
}

fn bench(c: &mut Criterion) {
    let script = script();
    let ticks = run(NoObserver, &script);
    let mut group = c.benchmark_group("sim_runner");
    group.throughput(Throughput::Elements(ticks));
    group.sample_size(20);
    group.bench_function("board_trace_and_stats", |b| {
        b.iter(|| {
            let mut board = Board::new(FirmwareVersion::V3_0_3);
            board
                .send(black_box(&script))
                .expect("no faults configured");
            board.run_until_idle(u64::MAX);
            black_box(board.observer().trace.trace().strokes.len())
        });
    });
    group.bench_function("board_no_observer", |b| {
        b.iter(|| run(NoObserver, black_box(&script)));
    });
    // The same plot through the threaded runner and a virtual port, as a host would drive it.
    group.bench_function("runner_virtual_port_trace_and_stats", |b| {
        b.iter(|| {
            let board = Board::new(FirmwareVersion::V3_0_3);
            let (mut host, runner) = Runner::spawn(board, RunnerConfig::default()).expect("thread");
            embedded_io::Write::write_all(&mut host, black_box(&script)).expect("board alive");
            // Wait until every command was answered (one OK per line) and the plot ended.
            let expected = script.iter().filter(|&&b| b == b'\r').count();
            let mut oks = 0;
            let mut buf = [0u8; 4096];
            while oks < expected {
                let n = embedded_io::Read::read(&mut host, &mut buf).expect("board alive");
                oks += buf[..n].iter().filter(|&&b| b == b'\n').count();
            }
            // Poll QG until the last queued command finished (simulated time runs meanwhile).
            loop {
                embedded_io::Write::write_all(&mut host, b"QG\r").expect("board alive");
                let mut line = Vec::new();
                while !line.ends_with(b"\r\n") {
                    let n = embedded_io::Read::read(&mut host, &mut buf).expect("board alive");
                    line.extend_from_slice(&buf[..n]);
                }
                let text = String::from_utf8_lossy(&line);
                if u8::from_str_radix(text.trim(), 16).is_ok_and(|qg| qg & 0x08 == 0) {
                    break;
                }
            }
            let (board, _) = runner.stop().expect("runner");
            black_box(board.now_ticks())
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
