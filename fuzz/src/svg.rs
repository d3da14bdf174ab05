//! Fuzz target of plotty-host's SVG importer and optimiser.

use plotty_host::import::{self, ImportOptions};
use plotty_host::optimize::{self, OptimizeOptions};

/// Arbitrary bytes → SVG import → optimisation: must return (Ok or Err), never panic or hang.
/// Inputs are capped at 64 KiB and 200,000 segments so every run stays fast.
pub fn svg_import(data: &[u8]) {
    let options = ImportOptions {
        max_file_bytes: 64 * 1024,
        max_segments: 200_000,
        ..ImportOptions::default()
    };
    if let Ok(mut drawing) = import::import_bytes(data, &options) {
        let (tx, ty) = drawing.travel_mm;
        for p in drawing
            .layers
            .iter()
            .flat_map(|l| l.strokes.iter().flat_map(|s| s.points.iter()))
        {
            assert!(
                p.x_mm >= 0.0 && p.x_mm <= tx && p.y_mm >= 0.0 && p.y_mm <= ty,
                "imported point {p:?} outside the travel"
            );
        }
        let before = drawing.segment_count();
        let report = optimize::optimize(&mut drawing, &OptimizeOptions::default());
        assert!(report.after.distance_mm <= report.before.distance_mm + 1e-6);
        assert!(drawing.segment_count() <= before + report.after.lifts + report.before.lifts);
    }
}
