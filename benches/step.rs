//! Step generation throughput: planned blocks → exact firmware moves (LM and SM), over synthetic
//! block streams shaped like the bench drawings: a random walk of short blocks (0.5–2 mm), long
//! hatch lines with pen-up hops, and tiny 0.05 mm collinear blocks of a finely flattened curve.
//!
//! `cargo bench --bench step` reports blocks per second (criterion "elements").

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use plotty_motion::kinematics::{Kinematics, Point, Resolution};
use plotty_motion::plan::{Block, Pen, Tag};
use plotty_motion::step::{FAST_BATCH, FirmwareLine, Move, MoveFormat, StepConfig, StepGenerator};

/// xorshift64*: reproducible streams without a dependency.
struct Rng(u64);

impl Rng {
    fn f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Consistent trapezoids for a polyline (junction speed from the deflection, per-motor limit,
/// backward and forward passes), rest at both ends: what a planner hands the step generator.
fn plan(points: &[Point], pen: Pen, v_max: f64, accel: f64, k: Kinematics, out: &mut Vec<Block>) {
    let n = points.len() - 1;
    let mut len = Vec::with_capacity(n);
    let mut dir = Vec::with_capacity(n);
    let mut lim = Vec::with_capacity(n);
    for w in points.windows(2) {
        let l = w[0].distance_to(w[1]);
        let (ux, uy) = ((w[1].x_mm - w[0].x_mm) / l, (w[1].y_mm - w[0].y_mm) / l);
        len.push(l);
        dir.push((ux, uy));
        lim.push(v_max.min(k.max_speed_along(ux, uy, 24_900.0)));
    }
    let mut v = vec![0.0f64; n + 1];
    for i in 1..n {
        let cos = dir[i - 1].0 * dir[i].0 + dir[i - 1].1 * dir[i].1;
        v[i] = lim[i - 1].min(lim[i]) * ((1.0 + cos) / 2.0).powi(4);
    }
    for i in (0..n).rev() {
        v[i] = v[i].min((v[i + 1] * v[i + 1] + 2.0 * accel * len[i]).sqrt());
    }
    for i in 0..n {
        v[i + 1] = v[i + 1].min((v[i] * v[i] + 2.0 * accel * len[i]).sqrt());
    }
    for i in 0..n {
        let peak = ((2.0 * accel * len[i] + v[i] * v[i] + v[i + 1] * v[i + 1]) / 2.0).sqrt();
        out.push(Block {
            start: points[i],
            end: points[i + 1],
            pen,
            tag: Tag {
                stroke: 0,
                vertex: i as u32,
            },
            length_mm: len[i],
            entry_mm_s: v[i],
            cruise_mm_s: lim[i].min(peak).max(v[i]).max(v[i + 1]),
            exit_mm_s: v[i + 1],
            accel_mm_s2: accel,
        });
    }
}

/// Runs of blocks separated by rest points (where the session would lift or lower the pen).
type Stream = Vec<Vec<Block>>;

fn random_walk(k: Kinematics) -> Stream {
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let mut runs = Vec::new();
    let mut p = Point::new(150.0, 100.0);
    for _ in 0..100 {
        let mut pts = vec![p];
        let mut heading = rng.f64() * std::f64::consts::TAU;
        for _ in 0..1000 {
            heading += (rng.f64() - 0.5) * 2.0;
            let l = 0.5 + 1.5 * rng.f64();
            p = Point::new(
                (p.x_mm + l * heading.cos()).clamp(5.0, 295.0),
                (p.y_mm + l * heading.sin()).clamp(5.0, 200.0),
            );
            pts.push(p);
        }
        let mut blocks = Vec::new();
        plan(&pts, Pen::Down, 50.0, 762.0, k, &mut blocks);
        runs.push(blocks);
    }
    runs
}

fn hatch(k: Kinematics) -> Stream {
    let mut runs = Vec::new();
    let mut at = Point::new(10.0, 10.0);
    for i in 0..2000 {
        let y = 10.0 + 0.1 * f64::from(i);
        let (x0, x1) = if i % 2 == 0 {
            (10.0, 210.0)
        } else {
            (210.0, 10.0)
        };
        let start = Point::new(x0, y);
        let mut hop = Vec::new();
        if at != start {
            plan(&[at, start], Pen::Up, 150.0, 1143.0, k, &mut hop);
            runs.push(hop);
        }
        let mut line = Vec::new();
        plan(
            &[start, Point::new(x1, y)],
            Pen::Down,
            50.0,
            762.0,
            k,
            &mut line,
        );
        runs.push(line);
        at = Point::new(x1, y);
    }
    runs
}

fn tiny_collinear(k: Kinematics) -> Stream {
    // A large circle flattened into 0.05 mm chords (0.05° turns): collinear to the eye.
    let mut runs = Vec::new();
    for r in 0..20 {
        let radius = 60.0 + f64::from(r);
        let steps = (std::f64::consts::TAU * radius / 0.05) as usize;
        let pts: Vec<Point> = (0..=steps)
            .map(|i| {
                let a = std::f64::consts::TAU * i as f64 / steps as f64;
                Point::new(150.0 + radius * a.cos(), 110.0 + radius * a.sin())
            })
            .collect();
        let mut blocks = Vec::new();
        plan(&pts, Pen::Down, 50.0, 762.0, k, &mut blocks);
        runs.push(blocks);
    }
    runs
}

/// Steps every run through a fresh generator placed at its start, moves written a batch at a
/// time as the pipeline takes them (`push_into`, then `pop_into` while batches come back full);
/// returns a checksum.
fn generate(config: StepConfig, stream: &Stream) -> u64 {
    let mut sum = 0u64;
    let k = config.kinematics();
    let mut g = StepGenerator::new(config);
    let mut batch = [Move::EMPTY; FAST_BATCH];
    let mut take = |g: &mut StepGenerator, mut n: usize, batch: &mut [Move; FAST_BATCH]| loop {
        for m in &batch[..n] {
            sum = sum.wrapping_add(u64::from(m.ticks));
        }
        if n < FAST_BATCH {
            return;
        }
        n = g.pop_into(batch);
    };
    for run in stream {
        let Some(first) = run.first() else { continue };
        if g.reset(k.to_motor(first.start), g.accumulators()).is_err() {
            return u64::MAX;
        }
        for b in run {
            match g.push_into(b, &mut batch) {
                Ok(n) => take(&mut g, n, &mut batch),
                Err(_) => return u64::MAX,
            }
        }
        g.finish();
        let n = g.pop_into(&mut batch);
        take(&mut g, n, &mut batch);
    }
    sum
}

fn bench(c: &mut Criterion) {
    let k = Kinematics::new(Resolution::High);
    let streams = [
        ("random_walk", random_walk(k)),
        ("hatch", hatch(k)),
        ("tiny_collinear", tiny_collinear(k)),
    ];
    let configs = [
        (
            "lm_v3",
            StepConfig::new(FirmwareLine::V3, MoveFormat::Lm, k),
        ),
        (
            "lm_v2",
            StepConfig::new(FirmwareLine::V2, MoveFormat::Lm, k),
        ),
        (
            "sm_v3",
            StepConfig::new(FirmwareLine::V3, MoveFormat::Sm, k),
        ),
    ];
    let mut group = c.benchmark_group("step");
    for (name, stream) in &streams {
        let blocks: usize = stream.iter().map(Vec::len).sum();
        group.throughput(Throughput::Elements(blocks as u64));
        for (cname, config) in &configs {
            let Ok(config) = config else { continue };
            group.bench_function(format!("{name}/{cname}"), |b| {
                b.iter(|| generate(*config, black_box(stream)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
