//! Optimiser tests: invariants as property tests, and figures on the benchmark drawings.

use std::collections::HashMap;
use std::path::PathBuf;

use proptest::prelude::*;

use super::*;
use crate::import::{self, Color, Layer};

fn shared_dir() -> PathBuf {
    std::env::var_os("PLOTTY_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared"))
}

/// Prints before/after figures for the four benchmark drawings under the comparison limits.
/// `cargo test -p plotty-host --release -- --ignored bench_figures --nocapture`
#[test]
#[ignore = "reads /work/shared/bench; run in release for the figures"]
fn bench_figures() {
    for name in ["random_walk_100k", "spiral_10k", "hatch_200", "straight_fine_10k"] {
        let path = shared_dir().join("bench").join(format!("{name}.svg"));
        let t0 = std::time::Instant::now();
        let mut drawing = import::import_file(&path, &import::ImportOptions::default()).unwrap();
        let t1 = t0.elapsed();
        let options = OptimizeOptions {
            limits: PenUpLimits::COMPARISON,
            ..OptimizeOptions::default()
        };
        let report = optimize(&mut drawing, &options);
        let t2 = t0.elapsed();
        println!(
            "{name}: import {:.3} s, +optimise {:.3} s, {} segments\n  before: {}\n  after:  {}",
            t1.as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            drawing.segment_count(),
            report.before,
            report.after
        );
        for w in &drawing.warnings {
            println!("  warning: {w}");
        }
    }
}
