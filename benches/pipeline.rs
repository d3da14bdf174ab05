//! The whole path of `plotty plot --estimate` on the shared benchmark drawings: import,
//! optimise, plan and step generation (exact firmware ticks), per drawing, at the AxiDraw
//! defaults (model 5, so nothing is clipped). `plan+steps` is the program through planner and
//! step generator alone; `import+optimize+plan+steps` is everything from the file's bytes.
//! Before measuring, each drawing's figures are printed: pen-up travel before and after
//! optimisation and the planned time at the AxiDraw defaults and under the comparison limits.
//!
//! Drawings are read from `benches/drawings/` (shipped with the repository).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use plotty_host::plot::PlotConfig;
use plotty_host::plot::estimate::estimate;
use plotty_host::plot::prepare::prepare;
use plotty_host::settings::{MotionLimits, Settings};
use plotty_motion::ebb::FirmwareVersion;
use plotty_motion::kinematics::Model;

const DRAWINGS: [&str; 4] = [
    "random_walk_100k",
    "spiral_10k",
    "hatch_200",
    "straight_fine_10k",
];

fn bench_dir() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/drawings")
}

fn configs() -> (PlotConfig, PlotConfig) {
    let dir = std::env::temp_dir();
    let mut defaults = PlotConfig::from_settings(&Settings::defaults_for(&dir));
    defaults.axidraw.model = Model::A1;
    let comparison = PlotConfig {
        motion: MotionLimits::COMPARISON,
        ..defaults
    };
    (defaults, comparison)
}

fn pipeline_benches(c: &mut Criterion) {
    let (defaults, comparison) = configs();
    let v = FirmwareVersion::LATEST;
    for name in DRAWINGS {
        let path = bench_dir().join(format!("{name}.svg"));
        // A drawing that fails to import or plan fails the benchmark: a silent skip would
        // report figures for less than was asked.
        let prepared = prepare(&path, &defaults, None)
            .unwrap_or_else(|e| panic!("{name}: cannot prepare {}: {e}", path.display()));
        let planned = estimate(&prepared.program, &defaults, v)
            .unwrap_or_else(|e| panic!("{name}: cannot plan at the AxiDraw defaults: {e}"));
        let compared_program = prepare(&path, &comparison, None)
            .unwrap_or_else(|e| panic!("{name}: cannot prepare under the comparison limits: {e}"))
            .program;
        let compared = estimate(&compared_program, &comparison, v)
            .unwrap_or_else(|e| panic!("{name}: cannot plan under the comparison limits: {e}"));
        eprintln!(
            "{name}: {} segments; pen-up travel {:.1} m → {:.1} m; planned {:.1} s at the \
             AxiDraw defaults, {:.1} s under the comparison limits (optimised); {} moves",
            prepared.drawing.segment_count(),
            prepared.optimized.before.distance_mm / 1000.0,
            prepared.optimized.after.distance_mm / 1000.0,
            planned.total.as_secs_f64(),
            compared.total.as_secs_f64(),
            planned.steps.moves,
        );
        let mut group = c.benchmark_group(format!("pipeline/{name}"));
        group.sample_size(10);
        group.bench_function("plan+steps", |b| {
            b.iter(|| {
                estimate(black_box(&prepared.program), &defaults, v)
                    .unwrap_or_else(|e| panic!("{name}: cannot plan: {e}"))
            })
        });
        group.bench_function("import+optimize+plan+steps", |b| {
            // Every iteration must do the whole work: an error here is a failure, not a fast
            // iteration that measures the error path.
            b.iter(|| {
                let p = prepare(black_box(&path), &defaults, None)
                    .unwrap_or_else(|e| panic!("{name}: cannot prepare: {e}"));
                estimate(&p.program, &defaults, v)
                    .unwrap_or_else(|e| panic!("{name}: cannot plan: {e}"))
            })
        });
        group.finish();
    }
}

criterion_group!(benches, pipeline_benches);
criterion_main!(benches);
