//! SVG import and stroke optimisation on the shared benchmark drawings: import alone, optimise
//! alone, and both, per drawing. Drawings are read from
//! `benches/drawings/` (shipped with the repository).
//!
//! Budget (DESIGN.md): random_walk_100k imported and optimised in ≤ 2 s.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use plotty_host::import::{ImportOptions, import_bytes};
use plotty_host::optimize::{OptimizeOptions, PenUpLimits, optimize};

const DRAWINGS: [&str; 4] = [
    "random_walk_100k",
    "spiral_10k",
    "hatch_200",
    "straight_fine_10k",
];

fn bench_dir() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/drawings")
}

fn import_benches(c: &mut Criterion) {
    let import_options = ImportOptions::default();
    let optimize_options = OptimizeOptions {
        limits: PenUpLimits::COMPARISON,
        ..OptimizeOptions::default()
    };
    for name in DRAWINGS {
        let path = bench_dir().join(format!("{name}.svg"));
        // A drawing that cannot be read or imported fails the benchmark (no silent skip).
        let data = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{name}: cannot read {}: {e}", path.display()));
        let drawing = import_bytes(&data, &import_options)
            .unwrap_or_else(|e| panic!("{name}: cannot import: {e}"));
        let mut group = c.benchmark_group(name);
        group.sample_size(10);
        group.bench_function("import", |b| {
            b.iter(|| import_bytes(black_box(&data), &import_options))
        });
        group.bench_function("optimize", |b| {
            b.iter_batched(
                || drawing.clone(),
                |mut d| optimize(&mut d, &optimize_options),
                BatchSize::LargeInput,
            )
        });
        group.bench_function("import+optimize", |b| {
            b.iter(|| {
                import_bytes(black_box(&data), &import_options)
                    .map(|mut d| optimize(&mut d, &optimize_options))
            })
        });
        group.finish();
    }
}

criterion_group!(benches, import_benches);
criterion_main!(benches);
