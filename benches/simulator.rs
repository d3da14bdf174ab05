//! Tick-exact simulation speed of `plotty-fw-sim` on one simulated hour of motion.
//!
//! The stream is made by a test-only generator (not plotty-motion's planner): AxiDraw-style
//! constant-rate SM slices (10–500 ms, up to 24 steps/ms per motor) mixed with LM ramps and
//! pen moves, fed the way a host that keeps a 32-deep FIFO full would. The reported
//! throughput is in simulated 25 kHz ticks per second; divide by 25 000 for the real-time
//! factor (budget: ≥ 2000×, i.e. one hour in ≤ 1.8 s).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use plotty_fw_sim::{Firmware, FirmwareVersion, Observer};

/// Simulated time to generate, in ms.
const HOUR_MS: u64 = 3_600_000;
/// Ticks the host lets pass before offering more bytes to a blocked board.
const HOST_CHUNK: u64 = 2_500;

/// A small deterministic PRNG (xorshift64*), so every run simulates the same hour.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo) as u64) as i64
    }
}

/// About one hour of realistic motion commands, and its nominal duration in ms.
fn one_hour_stream() -> (Vec<u8>, u64) {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut out = String::from("CU,4,32\rEM,1,1\rSC,10,65535\r");
    let mut t = 0u64;
    let mut n = 0u64;
    while t < HOUR_MS {
        n += 1;
        if n.is_multiple_of(60) {
            let down = n.is_multiple_of(120);
            out.push_str(&format!("SP,{},{}\r", u8::from(!down), 120));
            t += 120;
        } else if n.is_multiple_of(7) {
            // A ramp: start and end speeds in steps/s, LM registers from them.
            let ms = rng.range(20, 300);
            let ticks = ms * 25;
            let axis = |rng: &mut Rng| {
                let v0 = rng.range(200, 20_000) as f64;
                let v1 = rng.range(200, 20_000) as f64;
                let steps = ((v0 + v1) / 2.0 * ms as f64 / 1000.0).round() as i64;
                let r0 = v0 * 85_899.345_92;
                let accel = (v1 - v0) * 85_899.345_92 / ticks as f64;
                let sign = if rng.next() & 1 == 0 { 1 } else { -1 };
                (r0 as i64, sign * steps.max(1), accel as i64)
            };
            let (r1, s1, a1) = axis(&mut rng);
            let (r2, s2, a2) = axis(&mut rng);
            out.push_str(&format!("LM,{r1},{s1},{a1},{r2},{s2},{a2}\r"));
            t += ms as u64;
        } else {
            let ms = if n.is_multiple_of(5) {
                rng.range(100, 500)
            } else {
                rng.range(10, 40)
            };
            let s1 = rng.range(-24 * ms, 24 * ms);
            let s2 = rng.range(-24 * ms, 24 * ms);
            out.push_str(&format!("SM,{ms},{s1},{s2}\r"));
            t += ms as u64;
        }
    }
    (out.into_bytes(), t)
}

/// Counts steps and folds positions, so the work is observed.
#[derive(Default)]
struct Tally {
    steps: u64,
    fold: i64,
}

impl Observer for Tally {
    #[inline]
    fn on_step(&mut self, _tick: u64, position: [i32; 2]) {
        self.steps += 1;
        self.fold = self
            .fold
            .wrapping_add(i64::from(position[0]) ^ i64::from(position[1]));
    }
}

/// Feeds the whole stream and runs to idle; returns (ticks simulated, steps observed).
fn simulate(stream: &[u8], version: FirmwareVersion) -> (u64, u64) {
    let mut fw = Firmware::new(version);
    let mut tally = Tally::default();
    let mut out = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let n = fw.receive(rest);
        rest = &rest[n..];
        if !rest.is_empty() {
            fw.run_ticks(HOST_CHUNK, &mut tally);
        }
        fw.take_output(&mut out);
        out.clear();
    }
    while fw.status().executing {
        fw.run_ticks(HOST_CHUNK, &mut tally);
    }
    black_box(tally.fold);
    (fw.now_ticks(), tally.steps)
}

/// Nanoseconds this thread has spent on a CPU (Linux `schedstat`), to report a speed that
/// does not depend on how busy a shared machine is.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

#[path = "quick.rs"]
mod quick;

fn bench_simulator(c: &mut Criterion) {
    let (stream, ms) = one_hour_stream();
    let (ticks, steps) = simulate(&stream, FirmwareVersion::V3_0_3);
    eprintln!(
        "simulator: stream of {} bytes, nominal {:.1} min, {ticks} ticks ({:.1} min), {steps} steps",
        stream.len(),
        ms as f64 / 60_000.0,
        ticks as f64 / 25_000.0 / 60.0
    );
    // A smoke run (`--test`) simulates the hour once per benchmark below, not for these figures.
    let figure_versions: &[FirmwareVersion] = if quick::quick() {
        &[]
    } else {
        &FirmwareVersion::ALL
    };
    for &version in figure_versions {
        let cpu0 = thread_cpu_ns();
        let wall = std::time::Instant::now();
        black_box(simulate(&stream, version));
        let wall = wall.elapsed().as_secs_f64();
        if let (Some(a), Some(b)) = (cpu0, thread_cpu_ns()) {
            let cpu = (b - a) as f64 / 1e9;
            eprintln!(
                "simulator {version}: one hour in {cpu:.3} s CPU ({wall:.3} s wall): {:.1} M ticks/s, \
                 {:.0}x real time, {:.1} ns/tick",
                ticks as f64 / cpu / 1e6,
                3600.0 / cpu,
                cpu * 1e9 / ticks as f64
            );
        }
    }
    let mut group = c.benchmark_group("simulator");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ticks));
    group.bench_function("one_hour_tick_exact_v3", |b| {
        b.iter(|| simulate(black_box(&stream), FirmwareVersion::V3_0_3));
    });
    group.bench_function("one_hour_tick_exact_v2", |b| {
        b.iter(|| simulate(black_box(&stream), FirmwareVersion::V2_8_1));
    });
    group.finish();
}

criterion_group!(benches, bench_simulator);
criterion_main!(benches);
