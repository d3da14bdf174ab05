//! Planner throughput on the four benchmark drawings (`benches/drawings/`): plan only (no step
//! generation), AxiDraw default limits with the EBB's per-motor step-rate limit, a 64-slot window
//! and a large one. Reports segments per second (criterion's "elements").
//!
//! Run: `cargo bench --bench planner`.

// Benchmark code: a failed expectation aborts the run, which is what we want.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use plotty_motion::kinematics::{AxiDrawSettings, Point};
use plotty_motion::plan::{PathItem, PlanError, PlannedItem, Planner, PlannerConfig, PlannerSlot};

#[path = "../tests/e2e/bench_drawings.rs"]
#[allow(dead_code)]
mod bench_drawings;

/// Streams `items` through a planner over `window`, popping as a real consumer would (whatever
/// is final after each push, the oldest when full), and folds the output so nothing is optimised
/// away.
fn plan_all(config: PlannerConfig, items: &[PathItem], window: &mut [PlannerSlot]) -> f64 {
    let mut planner = Planner::new(config, Point::ORIGIN, window).expect("valid window");
    let mut sum = 0.0;
    let mut take = |planned: PlannedItem| {
        if let PlannedItem::Block(b) = planned {
            sum += b.exit_mm_s + b.cruise_mm_s;
        }
    };
    for &item in items {
        loop {
            match planner.push(item) {
                Ok(()) => break,
                Err(PlanError::WindowFull) => take(planner.pop().expect("full window releases")),
                Err(e) => panic!("{e}"),
            }
        }
        while let Some(planned) = planner.pop() {
            take(planned);
        }
    }
    planner.finish();
    while let Some(planned) = planner.pop() {
        take(planned);
    }
    sum
}

fn planner(c: &mut Criterion) {
    let config = PlannerConfig::axidraw(&AxiDrawSettings::default()).expect("default settings");
    let mut group = c.benchmark_group("planner");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for name in bench_drawings::DRAWINGS {
        let paths = bench_drawings::load(name);
        let items = bench_drawings::plot_items(&paths);
        group.throughput(Throughput::Elements(
            bench_drawings::segment_count(&paths) as u64
        ));
        for window_len in [64usize, 4096] {
            let mut window = vec![PlannerSlot::EMPTY; window_len];
            group.bench_function(format!("{name}/window_{window_len}"), |b| {
                b.iter(|| plan_all(config, black_box(&items), &mut window));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, planner);
criterion_main!(benches);
