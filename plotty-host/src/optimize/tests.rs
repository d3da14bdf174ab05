//! Optimiser tests: invariants as property tests, and figures on the benchmark drawings.

use std::collections::HashMap;
use std::path::PathBuf;

use proptest::prelude::*;

use super::*;
use crate::import::{self, Color, Layer};

/// The repository's benchmark drawings (`benches/drawings/`).
fn bench_dir() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/drawings")
}

type Key = (u64, u64, u64, u64);

fn key(a: Point, b: Point) -> Key {
    let ka = (a.x_mm.to_bits(), a.y_mm.to_bits());
    let kb = (b.x_mm.to_bits(), b.y_mm.to_bits());
    let (p, q) = if ka <= kb { (ka, kb) } else { (kb, ka) };
    (p.0, p.1, q.0, q.1)
}

/// Multiset of the non-degenerate segments of `strokes`.
fn segments(strokes: &[Stroke]) -> HashMap<Key, usize> {
    let mut m = HashMap::new();
    for s in strokes {
        for w in s.points.windows(2) {
            if w[0] != w[1] {
                *m.entry(key(w[0], w[1])).or_default() += 1;
            }
        }
    }
    m
}

/// Checks that `output` draws exactly the segments of `input`, plus connectors no longer than
/// `max_connector` (joins and merged hops).
fn assert_same_segments(input: &[Stroke], output: &[Stroke], max_connector: f64) {
    let mut want = segments(input);
    for s in output {
        for w in s.points.windows(2) {
            assert_ne!(w[0], w[1], "repeated vertex in output");
            match want.get_mut(&key(w[0], w[1])) {
                Some(n) if *n > 0 => *n -= 1,
                _ => assert!(
                    w[0].distance_to(w[1]) <= max_connector,
                    "segment {:?}→{:?} is not in the input",
                    w[0],
                    w[1]
                ),
            }
        }
    }
    assert!(want.values().all(|n| *n == 0), "segments lost");
}

/// Strokes on a 1 mm grid, some ends nudged by a few µm so joins within 0.01 mm happen, some
/// of zero length.
fn strokes_strategy() -> impl Strategy<Value = Vec<Stroke>> {
    let point = (
        0u8..12,
        0u8..12,
        prop::bool::weighted(0.2),
        -4i8..=4,
        -4i8..=4,
    )
        .prop_map(|(x, y, jitter, jx, jy)| {
            let j = if jitter { 0.001 } else { 0.0 };
            Point::new(
                f64::from(x) + j * f64::from(jx),
                f64::from(y) + j * f64::from(jy),
            )
        });
    prop::collection::vec(
        prop::collection::vec(point, 1..6).prop_map(Stroke::new),
        0..40,
    )
}

fn options() -> OptimizeOptions {
    OptimizeOptions {
        limits: PenUpLimits::COMPARISON,
        ..OptimizeOptions::default()
    }
}

fn layer_with(name: &str, strokes: Vec<Stroke>) -> Layer {
    Layer {
        index: 0,
        number: None,
        name: name.into(),
        id: String::new(),
        color: Color::BLACK,
        pause_before: false,
        speed_pct: None,
        height_pct: None,
        delay_after_ms: None,
        documentation: false,
        strokes,
    }
}

fn drawing_with(layers: Vec<Layer>) -> import::Drawing {
    import::Drawing {
        page: import::Page {
            width_mm: 100.0,
            height_mm: 100.0,
            view_box: None,
            user_unit_mm: (1.0, 1.0),
        },
        layers,
        warnings: Vec::new(),
        travel_mm: (300.0, 218.0),
    }
}

proptest! {
    #[test]
    fn optimised_strokes_draw_the_same_segments(strokes in strokes_strategy()) {
        let o = options();
        let (out, report) = optimize_strokes(strokes.clone(), Point::ORIGIN, Some(Point::ORIGIN), &o);
        assert_same_segments(&strokes, &out, 0.15);
        let mut p = Point::ORIGIN;
        let before = pen_up_stats(&mut p, &strokes, Some(Point::ORIGIN), &o.limits);
        let mut p = Point::ORIGIN;
        let after = pen_up_stats(&mut p, &out, Some(Point::ORIGIN), &o.limits);
        prop_assert!(after.distance_mm <= before.distance_mm + 1e-9,
            "distance {} > {}", after.distance_mm, before.distance_mm);
        prop_assert!(after.travel_s <= before.travel_s + 1e-9);
        prop_assert!(after.lifts <= before.lifts);
        prop_assert_eq!(before.lifts - after.lifts >= report.dropped, true);
        // Deterministic.
        let (again, _) = optimize_strokes(strokes, Point::ORIGIN, Some(Point::ORIGIN), &o);
        prop_assert_eq!(out, again);
    }

    #[test]
    fn keep_order_changes_nothing_but_empty_strokes(strokes in strokes_strategy()) {
        let (out, _) = optimize_strokes(strokes.clone(), Point::ORIGIN, None, &OptimizeOptions::keep_order());
        let expected: Vec<Stroke> = strokes.into_iter().map(|mut s| { s.points.dedup(); s })
            .filter(|s| s.points.len() >= 2).collect();
        prop_assert_eq!(out, expected);
    }

    #[test]
    fn layers_stay_separate_and_in_order(a in strokes_strategy(), b in strokes_strategy(), c in strokes_strategy()) {
        let input = vec![layer_with("a", a), layer_with("b", b), layer_with("c", c)];
        let mut d = drawing_with(input.clone());
        let report = optimize(&mut d, &options());
        prop_assert_eq!(d.layers.len(), 3);
        for (before, after) in input.iter().zip(&d.layers) {
            prop_assert_eq!(&before.name, &after.name);
            assert_same_segments(&before.strokes, &after.strokes, 0.15);
        }
        prop_assert!(report.after.distance_mm <= report.before.distance_mm + 1e-9);
        let lifts: usize = report.layers.iter().map(|l| l.after.lifts).sum();
        prop_assert_eq!(lifts, report.after.lifts);
        prop_assert_eq!(lifts, d.stroke_count());
    }
}

#[test]
fn joins_reverse_strokes_to_connect() {
    // Three pieces of one line, the middle one drawn backwards and 5 µm off.
    let strokes = vec![
        Stroke::new(vec![Point::new(10.0, 10.0), Point::new(20.0, 10.0)]),
        Stroke::new(vec![Point::new(30.0, 10.0), Point::new(20.0, 10.005)]),
        Stroke::new(vec![Point::new(30.0, 10.0), Point::new(40.0, 10.0)]),
    ];
    let o = OptimizeOptions {
        merge_hops_below_mm: 0.0,
        ..options()
    };
    let (out, report) = optimize_strokes(strokes.clone(), Point::ORIGIN, Some(Point::ORIGIN), &o);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(report.joined, 2);
    assert_eq!(out[0].points.len(), 5);
    assert_same_segments(&strokes, &out, 0.01);
}

#[test]
fn short_hops_are_merged_long_ones_kept() {
    let strokes = vec![
        Stroke::new(vec![Point::new(10.0, 10.0), Point::new(20.0, 10.0)]),
        Stroke::new(vec![Point::new(20.1, 10.0), Point::new(30.0, 10.0)]),
        Stroke::new(vec![Point::new(30.5, 10.0), Point::new(40.0, 10.0)]),
    ];
    let (out, report) = optimize_strokes(strokes, Point::ORIGIN, Some(Point::ORIGIN), &options());
    assert_eq!(out.len(), 2);
    assert_eq!(report.merged_hops, 1);
}

#[test]
fn greedy_order_picks_the_near_end() {
    // Far stroke first in the file; the near one is drawn first, reversed.
    let strokes = vec![
        Stroke::new(vec![Point::new(100.0, 0.0), Point::new(110.0, 0.0)]),
        Stroke::new(vec![Point::new(20.0, 0.0), Point::new(5.0, 0.0)]),
    ];
    let (out, _) = optimize_strokes(strokes, Point::ORIGIN, Some(Point::ORIGIN), &options());
    assert_eq!(
        out[0].points,
        vec![Point::new(5.0, 0.0), Point::new(20.0, 0.0)]
    );
    assert_eq!(out[1].points[0], Point::new(100.0, 0.0));
}

#[test]
fn documentation_layers_are_left_alone() {
    let mut doc = layer_with("% notes", vec![]);
    doc.documentation = true;
    let mut d = drawing_with(vec![
        doc,
        layer_with(
            "1",
            vec![Stroke::new(vec![
                Point::new(1.0, 1.0),
                Point::new(2.0, 2.0),
            ])],
        ),
    ]);
    let report = optimize(&mut d, &options());
    assert_eq!(report.layers.len(), 1);
    assert_eq!(report.after.lifts, 1);
    // Home → (1,1), then (2,2) → home.
    assert!((report.after.distance_mm - (2f64.sqrt() + 8f64.sqrt())).abs() < 1e-12);
}

#[test]
fn nan_strokes_are_dropped_not_lost_silently() {
    let strokes = vec![
        Stroke::new(vec![Point::new(f64::NAN, 0.0), Point::new(1.0, 0.0)]),
        Stroke::new(vec![Point::new(1.0, 1.0)]),
        Stroke::new(vec![Point::new(1.0, 1.0), Point::new(3.0, 1.0)]),
    ];
    let (out, report) = optimize_strokes(strokes, Point::ORIGIN, None, &options());
    assert_eq!(out.len(), 1);
    assert_eq!(report.dropped, 2);
}

/// Prints before/after figures for the four benchmark drawings under the comparison limits.
/// `cargo test -p plotty-host --release -- --ignored bench_figures --nocapture`
#[test]
#[ignore = "the benchmark drawings; run in release for the figures"]
fn bench_figures() {
    for name in [
        "random_walk_100k",
        "spiral_10k",
        "hatch_200",
        "straight_fine_10k",
    ] {
        let path = bench_dir().join(format!("{name}.svg"));
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

/// README: "pen-up travel of random_walk_100k cut from 127.9 m to 4.6 m", for what `plotty
/// plot` does with the default settings (import, then the optimiser with the options the plot
/// configuration gives), to the stated precision (0.1 m).
#[test]
fn readme_pen_up_travel_of_random_walk_100k() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::plot::PlotConfig::from_settings(&crate::settings::Settings::defaults_for(
        dir.path(),
    ));
    let path = bench_dir().join("random_walk_100k.svg");
    let t0 = std::time::Instant::now();
    let prepared = crate::plot::prepare::prepare(&path, &config, None).unwrap();
    let (before, after) = (
        prepared.optimized.before.distance_mm / 1000.0,
        prepared.optimized.after.distance_mm / 1000.0,
    );
    eprintln!(
        "random_walk_100k: pen-up travel {before:.1} m → {after:.1} m ({:.2} s)",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(format!("{before:.1} {after:.1}"), "127.9 4.6");
}
