//! Throughput of the motion core (planner + step generation) on the benchmark drawings, for
//! profiling: one measured pass per drawing and stage, with CPU time (Linux `schedstat`) and a
//! checksum of the moves, in a small binary that builds without the host crates.
//!
//! ```text
//! cargo build --profile bench -p plotty-motion --example motion_profile
//! target/release/examples/motion_profile [all|plan|step] [drawing …]
//! # instructions per segment, deterministic (only the measured pass is counted):
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='motion_profile::measure*' \
//!     target/release/examples/motion_profile all random_walk_100k
//! ```
//!
//! `MOTION_PLAN=per_motor` plans with motor limits (default `xy`).
//!
//! `all` is the whole pipeline (plan, step); `plan` the planner with a trivial consumer; `step`
//! the step generator over the planner's stored output. Drawings are read from
//! `benches/drawings/` of the repository (see `bench_drawings.rs`).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    missing_docs,
    unreachable_pub
)]

use std::hint::black_box;
use std::time::Instant;

use plotty_motion::plan::{PathItem, PlannedItem, PlannerSlot};
use plotty_motion::step::{FirmwareLine, MoveFormat, StepConfig};

#[path = "../../tests/e2e/bench_drawings.rs"]
#[allow(dead_code)]
mod bench_drawings;
#[path = "../../tests/e2e/motion_pipeline.rs"]
#[allow(dead_code)]
mod motion_pipeline;

/// Nanoseconds this thread has spent on a CPU.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

#[derive(Clone, Copy, PartialEq)]
enum Stage {
    All,
    Plan,
    Step,
}

/// The step configuration: the benchmark's (LM on 3.x) unless `MOTION_STEP` names another
/// (`lm_v3`, `lm_v2`, `sm_v3`, `sm_v2`, `sm_v2early`), to compare checksums across changes.
fn step_config() -> StepConfig {
    let (_, step) = motion_pipeline::axidraw_configs();
    let which = std::env::var("MOTION_STEP").unwrap_or_default();
    let (firmware, format) = match which.as_str() {
        "" | "lm_v3" => return step,
        "lm_v2" => (FirmwareLine::V2, MoveFormat::Lm),
        "sm_v3" => (FirmwareLine::V3, MoveFormat::Sm),
        "sm_v2" => (FirmwareLine::V2, MoveFormat::Sm),
        "sm_v2early" => (FirmwareLine::V2Early, MoveFormat::Sm),
        other => panic!("unknown MOTION_STEP {other:?}"),
    };
    StepConfig::new(firmware, format, step.kinematics()).unwrap()
}

/// The planner configuration: the benchmark's (AxiDraw defaults, XY limits) unless
/// `MOTION_PLAN=per_motor` asks for the same limits read per motor, with corners by a per-motor
/// rate change of 3,000 steps/s (`motion.limits: per_motor` at the host's defaults).
fn plan_config() -> plotty_motion::plan::PlannerConfig {
    let (plan, _) = motion_pipeline::axidraw_configs();
    match std::env::var("MOTION_PLAN").unwrap_or_default().as_str() {
        "" | "xy" => plan,
        "per_motor" => plotty_motion::plan::PlannerConfig::axidraw_per_motor(
            &plotty_motion::kinematics::AxiDrawSettings::default(),
            3_000.0,
        )
        .unwrap(),
        other => panic!("unknown MOTION_PLAN {other:?}"),
    }
}

/// The measured pass (callgrind collects only inside `measure*`).
#[inline(never)]
fn measure_all(items: &[PathItem], window: &mut [PlannerSlot], step: StepConfig) -> u64 {
    let plan = plan_config();
    let (summary, _, _) = motion_pipeline::run(plan, step, items, window);
    summary.checksum
}

#[inline(never)]
fn measure_plan(items: &[PathItem], window: &mut [PlannerSlot], out: &mut Vec<PlannedItem>) -> u64 {
    let plan = plan_config();
    out.clear();
    motion_pipeline::plan_only(plan, items, window, out);
    out.len() as u64
}

#[inline(never)]
fn measure_step(planned: &[PlannedItem], step: StepConfig) -> u64 {
    motion_pipeline::step_only(step, planned).checksum
}

/// Order-sensitive hash of every planned item, bit for bit.
fn plan_checksum(planned: &[PlannedItem]) -> u64 {
    let mut h = 0u64;
    let mut mix = |v: u64| h = (h ^ v).wrapping_mul(0x0000_0100_0000_01B3);
    for p in planned {
        match p {
            PlannedItem::Block(b) => {
                for v in [
                    b.start.x_mm,
                    b.start.y_mm,
                    b.end.x_mm,
                    b.end.y_mm,
                    b.length_mm,
                    b.entry_mm_s,
                    b.cruise_mm_s,
                    b.exit_mm_s,
                    b.accel_mm_s2,
                ] {
                    mix(v.to_bits());
                }
                mix(u64::from(b.tag.stroke) << 32 | u64::from(b.tag.vertex));
                mix(b.pen as u64);
            }
            PlannedItem::Action(a) => mix(format!("{a:?}").len() as u64 | 1 << 40),
        }
    }
    h
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let stage = match args.peek().map(String::as_str) {
        Some("plan") => Stage::Plan,
        Some("step") => Stage::Step,
        Some("all") => Stage::All,
        _ => Stage::All,
    };
    if matches!(
        args.peek().map(String::as_str),
        Some("all" | "plan" | "step")
    ) {
        args.next();
    }
    let names: Vec<String> = args.collect();
    let names: Vec<&str> = if names.is_empty() {
        bench_drawings::DRAWINGS.to_vec()
    } else {
        names.iter().map(String::as_str).collect()
    };
    // Passes per drawing: at least `MOTION_REPEAT` (default 1), and until `MOTION_CPU_S` seconds
    // of CPU time (default 0) have been spent, so that the scheduler's coarse CPU accounting
    // averages out (use ≥ 0.5 s for figures).
    let env = |key: &str| std::env::var(key).ok().and_then(|v| v.parse::<f64>().ok());
    let repeat = env("MOTION_REPEAT").unwrap_or(1.0).max(1.0) as u32;
    let cpu_budget = env("MOTION_CPU_S").unwrap_or(0.0);
    let step = step_config();
    let mut window = vec![PlannerSlot::EMPTY; motion_pipeline::WINDOW];
    for name in names {
        let paths = bench_drawings::load(name);
        let items = bench_drawings::plot_items(&paths);
        let segments = bench_drawings::segment_count(&paths) as f64;
        let mut planned = Vec::new();
        if stage == Stage::Step {
            let plan = plan_config();
            motion_pipeline::plan_only(plan, &items, &mut window, &mut planned);
        }
        let mut best_wall = f64::INFINITY;
        let mut result = 0;
        let mut passes = 0u32;
        let cpu_start = thread_cpu_ns();
        let mut cpu = 0.0;
        while passes < repeat || cpu < cpu_budget {
            let wall = Instant::now();
            result = match stage {
                Stage::All => measure_all(black_box(&items), &mut window, step),
                Stage::Plan => measure_plan(black_box(&items), &mut window, &mut planned),
                Stage::Step => measure_step(black_box(&planned), step),
            };
            best_wall = best_wall.min(wall.elapsed().as_secs_f64());
            passes += 1;
            cpu = match (cpu_start, thread_cpu_ns()) {
                (Some(a), Some(b)) => (b - a) as f64 / 1e9,
                _ => f64::INFINITY,
            };
        }
        let mean_cpu = cpu / f64::from(passes);
        if stage == Stage::Plan {
            result = plan_checksum(&planned);
        }
        let stage_name = match stage {
            Stage::All => "plan+step",
            Stage::Plan => "plan",
            Stage::Step => "step",
        };
        println!(
            "{name:<18} {stage_name:<9} {segments:>7} segments: {:>6.2} M/s CPU ({:.3} ms mean of \
             {passes}), {:>6.2} M/s wall ({:.3} ms best); result {result:#018x}",
            segments / mean_cpu / 1e6,
            mean_cpu * 1e3,
            segments / best_wall / 1e6,
            best_wall * 1e3,
        );
    }
}
