//! The motion core end to end: planner + step generation on the four benchmark drawings
//! (`benches/drawings/`), AxiDraw default limits with the EBB's per-motor step-rate limit, a
//! 64-slot window, LM moves for firmware 3.x. Reports input polyline segments per second
//! (criterion's "elements") and, before the criterion runs, the same figure by this thread's CPU
//! time, which does not depend on how busy a shared machine is. DESIGN.md's budget: ≥ 10 million
//! segments per second on one core, no heap allocation (plotty-motion does not link `alloc`).
//!
//! Run: `cargo bench --bench motion`.
//! Instruction counts per segment, deterministic (callgrind), come from the small
//! `motion_profile` example of plotty-motion, which runs the same loop
//! (`tests/e2e/motion_pipeline.rs`); see its documentation for the command.

// Benchmark code: a failed expectation aborts the run, which is what we want.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use plotty_motion::plan::{PathItem, PlannerSlot};

#[path = "quick.rs"]
mod quick;

#[path = "../tests/e2e/bench_drawings.rs"]
#[allow(dead_code)]
mod bench_drawings;
#[path = "../tests/e2e/motion_pipeline.rs"]
// Its tests module is compiled (bench builds set `cfg(test)`) but its tests are not.
#[allow(dead_code, unused_imports)]
mod motion_pipeline;

/// Nanoseconds this thread has spent on a CPU (Linux `schedstat`; coarse, so summed over many
/// passes).
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// One pass: plan and step the whole drawing; the checksum of the moves keeps it honest.
fn pass(items: &[PathItem], window: &mut [PlannerSlot]) -> u64 {
    let (plan, step) = motion_pipeline::axidraw_configs();
    motion_pipeline::run(plan, step, items, window).0.checksum
}

/// Segments per second by CPU time over at least half a second of passes, and by the best
/// wall-clock pass.
fn cpu_figures(name: &str, items: &[PathItem], segments: u64, window: &mut [PlannerSlot]) {
    let mut passes = 0u32;
    let mut best_wall = f64::INFINITY;
    let start = thread_cpu_ns();
    let mut cpu = 0.0;
    // A smoke run (`--test`) makes one pass: it proves the figure is computed, not its value.
    let (min_passes, min_cpu) = if quick::quick() { (1, 0.0) } else { (3, 0.5) };
    while passes < min_passes || cpu < min_cpu {
        let wall = Instant::now();
        black_box(pass(black_box(items), window));
        best_wall = best_wall.min(wall.elapsed().as_secs_f64());
        passes += 1;
        match (start, thread_cpu_ns()) {
            (Some(a), Some(b)) => cpu = (b - a) as f64 / 1e9,
            _ => break,
        }
    }
    let segments = segments as f64;
    if cpu > 0.0 {
        let per_pass = cpu / f64::from(passes);
        eprintln!(
            "motion {name}: {:.2} M segments/s by CPU time ({:.3} ms per pass, {passes} passes), \
             {:.2} M segments/s best wall-clock pass",
            segments / per_pass / 1e6,
            per_pass * 1e3,
            segments / best_wall / 1e6,
        );
    } else {
        eprintln!(
            "motion {name}: {:.2} M segments/s best wall-clock pass (no CPU clock)",
            segments / best_wall / 1e6
        );
    }
}

fn motion(c: &mut Criterion) {
    let mut window = vec![PlannerSlot::EMPTY; motion_pipeline::WINDOW];
    let drawings: Vec<_> = bench_drawings::DRAWINGS
        .iter()
        .map(|name| {
            let paths = bench_drawings::load(name);
            let segments = bench_drawings::segment_count(&paths) as u64;
            (*name, bench_drawings::plot_items(&paths), segments)
        })
        .collect();
    for (name, items, segments) in &drawings {
        cpu_figures(name, items, *segments, &mut window);
    }
    let mut group = c.benchmark_group("motion");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (name, items, segments) in &drawings {
        group.throughput(Throughput::Elements(*segments));
        group.bench_function(format!("{name}/plan_step_lm_v3"), |b| {
            b.iter(|| pass(black_box(items), &mut window));
        });
    }
    group.finish();
}

criterion_group!(benches, motion);
criterion_main!(benches);
