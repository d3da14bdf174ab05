//! The whole path of `plotty plot --estimate` on the shared benchmark drawings: import,
//! optimise, plan and step generation (exact firmware ticks), per drawing, at the AxiDraw
//! defaults (model 5, so nothing is clipped). `plan+steps` is the program through planner and
//! step generator alone; `import+optimize+plan+steps` is everything from the file's bytes.
//! Before measuring, each drawing's figures are printed: pen-up travel before and after
//! optimisation and the planned time at the AxiDraw defaults and under the comparison limits.
//!
//! Drawings are read from `$PLOTTY_SHARED_DIR/bench` (default `/work/shared/bench`); a missing
//! drawing is skipped with a note.

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
    std::env::var_os("PLOTTY_SHARED_DIR")
        .map_or_else(|| PathBuf::from("/work/shared"), PathBuf::from)
        .join("bench")
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
        let prepared = match prepare(&path, &defaults, None) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("skipping {name}: {e}");
                continue;
            }
        };
        let (Ok(planned), Ok(compared)) = (
            estimate(&prepared.program, &defaults, v),
            estimate(
                &prepare(&path, &comparison, None)
                    .map(|p| p.program)
                    .unwrap_or_else(|_| prepared.program.clone()),
                &comparison,
                v,
            ),
        ) else {
            eprintln!("skipping {name}: planning failed");
            continue;
        };
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
            b.iter(|| estimate(black_box(&prepared.program), &defaults, v))
        });
        group.bench_function("import+optimize+plan+steps", |b| {
            b.iter(|| {
                prepare(black_box(&path), &defaults, None)
                    .ok()
                    .map(|p| estimate(&p.program, &defaults, v))
            })
        });
        group.finish();
    }
}

criterion_group!(benches, pipeline_benches);
criterion_main!(benches);
