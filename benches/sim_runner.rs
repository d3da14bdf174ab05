//! The simulated board harness with its observers: how many times faster than real time a plot
//! runs through `plotty_fw_sim::board::Board` (USB packetisation, FIFO back-pressure, the
//! firmware's 25 kHz interrupt tick by tick) with the pen trace and statistics recorded, for a
//! typical AxiDraw plot and for a stress plot with both motors near their step-rate limit.
//!
//! Throughput is reported in simulated ticks per second: divide by 25,000 for the real-time
//! factor (the budget is ≥ 2,000×, i.e. ≥ 50 M ticks/s; a 1-hour plot in ≤ 2 s needs ≥ 45 M).
//!
//! Times are CPU time of the process (user + system, `getrusage`), not wall-clock time: the
//! machines this runs on are shared, and under load the wall clock also counts time spent waiting
//! for a core. On an idle machine the two agree for the single-threaded cases.
//!
//! Run: `cargo bench --bench sim_runner`.
#![allow(clippy::expect_used)] // a benchmark that cannot run should stop loudly

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nix::sys::resource::{UsageWho, getrusage};
use plotty_fw_sim::board::Board;
use plotty_fw_sim::runner::{Runner, RunnerConfig};
use plotty_fw_sim::{CommandKind, FirmwareVersion, NoObserver, Observer, SimObserver};

/// A typical plot as the AxiDraw software sends it at its default speeds: 150 strokes of 30
/// random segments (2–10 mm) drawn at 50 mm/s, pen-up travel between them at 150 mm/s, all
/// sliced into 25 ms `SM` moves, with pen moves of 146 ms (down) and 130 ms (up). About 2 min
/// of simulated time.
fn typical_script() -> Vec<u8> {
    let mut rng = Lcg(0x5eed);
    let mut s = String::from("EM,1,1\rSP,1,130\r");
    let mut at = [0.0f64, 0.0f64];
    let mut motors = [0i64, 0i64];
    for _ in 0..150 {
        let start = [rng.unit() * 250.0 + 20.0, rng.unit() * 180.0 + 20.0];
        slices(&mut s, &mut at, &mut motors, start, 150.0);
        s.push_str("SP,0,146\r");
        for _ in 0..30 {
            let angle = rng.unit() * std::f64::consts::TAU;
            let len = 2.0 + rng.unit() * 8.0;
            let to = [
                (at[0] + len * angle.cos()).clamp(0.0, 290.0),
                (at[1] + len * angle.sin()).clamp(0.0, 210.0),
            ];
            slices(&mut s, &mut at, &mut motors, to, 50.0);
        }
        s.push_str("SP,1,130\r");
    }
    slices(&mut s, &mut at, &mut motors, [0.0, 0.0], 150.0);
    s.into_bytes()
}

/// A stress plot: 40 strokes of 40 `SM,25` slices with up to 20,000 steps/s on one motor, the
/// directions turning like a spiral (both motors near their limit most of the time). About 48 s
/// of simulated time.
fn stress_script() -> Vec<u8> {
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

/// Appends the 25 ms `SM` slices of a straight move from `at` to `to` (mm) at `speed` mm/s,
/// AxiDraw geometry (80 steps/mm per motor, m1 = x + y, m2 = x − y).
fn slices(s: &mut String, at: &mut [f64; 2], motors: &mut [i64; 2], to: [f64; 2], speed: f64) {
    let (dx, dy) = (to[0] - at[0], to[1] - at[1]);
    let n = ((dx.hypot(dy) / speed / 0.025).ceil() as i64).max(1);
    for k in 1..=n {
        let f = k as f64 / n as f64;
        let (x, y) = (at[0] + dx * f, at[1] + dy * f);
        let target = [
            (80.0 * (x + y)).round() as i64,
            (80.0 * (x - y)).round() as i64,
        ];
        let (d1, d2) = (target[0] - motors[0], target[1] - motors[1]);
        if d1 != 0 || d2 != 0 {
            let _ = write!(s, "SM,25,{d1},{d2}\r");
        }
        *motors = target;
    }
    *at = to;
}

/// A small deterministic generator (no dependency needed for a fixed workload).
struct Lcg(u64);

impl Lcg {
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Feeds the whole script through the board and runs it to the end; returns simulated ticks.
fn run<O: Observer>(observer: O, script: &[u8]) -> u64 {
    let mut board = Board::with_observer(FirmwareVersion::V3_0_3, observer);
    board.send(script).expect("no faults configured");
    board.run_until_idle(u64::MAX);
    board.now_ticks()
}

/// CPU time used so far by the calling thread (`RUSAGE_THREAD`) or the whole process.
fn cpu_time(who: UsageWho) -> Duration {
    let usage = getrusage(who).expect("getrusage works on Linux");
    let micros = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    micros(usage.user_time()) + micros(usage.system_time())
}

/// Runs `routine` `iters` times and returns the CPU time `who` used meanwhile.
fn cpu_timed<R>(who: UsageWho, iters: u64, mut routine: impl FnMut() -> R) -> Duration {
    let start = cpu_time(who);
    for _ in 0..iters {
        black_box(routine());
    }
    cpu_time(who) - start
}

/// The board with the pen trace and statistics, and with no observer, on one script.
fn board_benches(c: &mut Criterion, name: &str, script: &[u8]) {
    let ticks = run(NoObserver, script);
    let mut group = c.benchmark_group(format!("sim_runner/{name}"));
    group.throughput(Throughput::Elements(ticks));
    group.sample_size(20);
    group.bench_function("board_trace_and_stats", |b| {
        b.iter_custom(|iters| {
            cpu_timed(UsageWho::RUSAGE_THREAD, iters, || {
                let mut board = Board::new(FirmwareVersion::V3_0_3);
                board.send(black_box(script)).expect("no faults configured");
                board.run_until_idle(u64::MAX);
                board.observer().trace.trace().strokes.len()
            })
        });
    });
    group.bench_function("board_no_observer", |b| {
        b.iter_custom(|iters| {
            cpu_timed(UsageWho::RUSAGE_THREAD, iters, || {
                run(NoObserver, black_box(script))
            })
        });
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    board_benches(c, "typical", &typical_script());
    board_benches(c, "stress", &stress_script());

    // The typical plot through the threaded runner and a virtual port, as a host drives it:
    // CPU time of both threads (the host's side is small: writing and counting replies).
    let script = typical_script();
    let ticks = run(NoObserver, &script);
    let mut group = c.benchmark_group("sim_runner/typical");
    group.throughput(Throughput::Elements(ticks));
    group.sample_size(10);
    group.bench_function("runner_virtual_port_trace_and_stats", |b| {
        b.iter_custom(|iters| {
            cpu_timed(UsageWho::RUSAGE_SELF, iters, || {
                let board = Board::new(FirmwareVersion::V3_0_3);
                let (mut host, runner) =
                    Runner::spawn(board, RunnerConfig::default()).expect("thread");
                // Write in pieces and read the replies as they come (a host that leaves more
                // than the reply buffers unread would stall the board, as a real one would).
                let expected = script.iter().filter(|&&b| b == b'\r').count();
                let mut oks = 0;
                let mut buf = [0u8; 4096];
                for piece in black_box(&script).chunks(1024) {
                    embedded_io::Write::write_all(&mut host, piece).expect("board alive");
                    loop {
                        let n = host.try_read(&mut buf).expect("board alive");
                        if n == 0 {
                            break;
                        }
                        oks += buf[..n].iter().filter(|&&b| b == b'\n').count();
                    }
                }
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
                board.now_ticks()
            })
        });
    });
    group.finish();

    // The observers alone: one million step events along a curve (a command every 500 steps).
    let steps = observer_steps();
    let mut group = c.benchmark_group("sim_observers");
    group.throughput(Throughput::Elements(steps.len() as u64));
    group.sample_size(20);
    group.bench_function("trace_and_stats_per_step", |b| {
        b.iter_custom(|iters| {
            cpu_timed(UsageWho::RUSAGE_THREAD, iters, || {
                let mut observer = SimObserver::default();
                observer.on_pen(0, false);
                for (tick, &position) in steps.iter().enumerate() {
                    if tick % 500 == 0 {
                        observer.on_command_start(tick as u64, CommandKind::Sm);
                    }
                    observer.on_step(tick as u64 + 1, black_box(position));
                }
                observer.trace.finish().strokes.len()
            })
        });
    });
    group.finish();
}

/// Motor positions of a slowly turning path, one step event per entry.
fn observer_steps() -> Vec<[i32; 2]> {
    let mut out = Vec::with_capacity(1_000_000);
    let (mut x, mut y) = (0.0f64, 0.0f64);
    let mut pos = [0i32, 0i32];
    for k in 0..1_000_000u32 {
        let a = f64::from(k) * 2e-5;
        x += a.cos();
        y += a.sin();
        let target = [x.round() as i32, y.round() as i32];
        for axis in 0..2 {
            pos[axis] += (target[axis] - pos[axis]).signum();
        }
        out.push(pos);
    }
    out
}

criterion_group!(benches, bench);
criterion_main!(benches);
