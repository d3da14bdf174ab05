//! Plots of drawings whose exact shape this file states, checked against that shape and not
//! against the importer's output: an importer that scaled, shifted, mirrored or dropped part of
//! a drawing would agree with itself, but not with the geometry written here.
//!
//! Each SVG is written in the test, on a page whose user unit is one millimetre, and plotted on
//! the firmware simulator through the real preparation and runner (`plotty_host::plot`) at the
//! default settings. The simulator's pen-down trace (its own reading of the steps the board
//! took) must then
//! - lie on the stated shapes: every trace point within [`TOLERANCE_MM`] of one of them;
//! - cover them: every point of each shape, sampled every [`SAMPLE_MM`], within [`TOLERANCE_MM`]
//!   of the trace;
//! - draw each once: the trace's pen-down length (its step staircase smoothed, [`SIMPLIFY_MM`])
//!   equals the shapes' total length within [`LENGTH_TOLERANCE`].

// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::f64::consts::PI;
use std::sync::mpsc;

use plotty_fw_sim::FirmwareVersion as SimVersion;
use plotty_host::devices::link::sim::SimLink;
use plotty_host::plot::runner::{self, Control, Outcome, Plot, RunEvent};
use plotty_host::plot::{PlotConfig, Start, prepare};
use plotty_host::settings::Settings;

/// How far the trace may be from the stated shape, mm: the curve flattening (0.01 mm), the
/// rounding of each end point to whole motor steps (half a step on each motor, 0.0063 mm), a
/// motor step ahead of the other inside a move (0.0088 mm), and the trace recorder's own
/// tolerance of one step (0.0125 mm) — 0.038 mm, rounded up.
const TOLERANCE_MM: f64 = 0.04;
/// Spacing of the points sampled along each shape for the coverage check, mm.
const SAMPLE_MM: f64 = 0.1;
/// Relative difference allowed between the trace's length and the shapes' length.
const LENGTH_TOLERANCE: f64 = 0.001;
/// Douglas–Peucker tolerance of the trace before its length is measured, mm (below
/// [`TOLERANCE_MM`], above a motor step).
const SIMPLIFY_MM: f64 = 0.03;

/// A shape this file states, in page millimetres (+x right, +y down, origin top left).
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// A straight segment.
    Segment([f64; 2], [f64; 2]),
    /// A circle: centre and radius.
    Circle([f64; 2], f64),
}

impl Shape {
    /// Distance from `p` to the shape, mm.
    fn distance(self, p: [f64; 2]) -> f64 {
        match self {
            Self::Segment(a, b) => segment_distance(p, a, b),
            Self::Circle(c, r) => (hypot(p, c) - r).abs(),
        }
    }

    /// Length, mm.
    fn length(self) -> f64 {
        match self {
            Self::Segment(a, b) => hypot(a, b),
            Self::Circle(_, r) => 2.0 * PI * r,
        }
    }

    /// Points along the shape every `step` mm (both ends of a segment included).
    fn samples(self, step: f64) -> Vec<[f64; 2]> {
        let n = (self.length() / step).ceil() as usize;
        (0..=n)
            .map(|i| {
                let t = i as f64 / n as f64;
                match self {
                    Self::Segment(a, b) => [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])],
                    Self::Circle(c, r) => {
                        let angle = t * 2.0 * PI;
                        [c[0] + r * angle.cos(), c[1] + r * angle.sin()]
                    }
                }
            })
            .collect()
    }
}

fn hypot(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

/// Distance from `p` to the segment `a`–`b`.
fn segment_distance(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    let d = [b[0] - a[0], b[1] - a[1]];
    let len2 = d[0] * d[0] + d[1] * d[1];
    if len2 == 0.0 {
        return hypot(p, a);
    }
    let t = (((p[0] - a[0]) * d[0] + (p[1] - a[1]) * d[1]) / len2).clamp(0.0, 1.0);
    hypot(p, [a[0] + t * d[0], a[1] + t * d[1]])
}

/// The pen-down polylines the simulator traced when plotting `body` (SVG elements on a
/// 200 × 150 mm page, 1 user unit = 1 mm) at the default settings.
fn plotted(body: &str) -> Vec<Vec<[f64; 2]>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drawing.svg");
    std::fs::write(
        &path,
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="200mm" height="150mm" viewBox="0 0 200 150">{body}</svg>"#
        ),
    )
    .unwrap();
    let config = PlotConfig::from_settings(&Settings::defaults_for(dir.path()));
    let prepared = prepare::prepare(&path, &config, None).unwrap_or_else(|e| panic!("{e}"));
    let mut link = SimLink::new(SimVersion::V3_0_3);
    let (_tx, rx) = mpsc::channel::<Control>();
    let plot = Plot {
        program: &prepared.program,
        config: &config,
        session: runner::session_config(&config, std::time::Duration::from_secs(5)),
        start: Start::Beginning,
        estimate: None,
        ran_on: false,
    };
    let report = runner::run(&mut link, plot, &rx, &mut |_: RunEvent| {}).unwrap();
    assert_eq!(report.outcome, Outcome::Completed);
    let record = link.finish();
    assert!(!record.trace.truncated, "trace truncated");
    record
        .trace
        .strokes
        .iter()
        .map(|s| s.iter().map(|p| [p.x, p.y]).collect())
        .collect()
}

/// Checks `trace` against `shapes` (see the module documentation).
fn check(name: &str, trace: &[Vec<[f64; 2]>], shapes: &[Shape]) {
    assert!(!trace.is_empty(), "{name}: nothing drawn");

    // On the shapes.
    for p in trace.iter().flatten() {
        let d = shapes
            .iter()
            .map(|s| s.distance(*p))
            .fold(f64::INFINITY, f64::min);
        assert!(
            d <= TOLERANCE_MM,
            "{name}: trace point ({:.4}, {:.4}) is {d:.4} mm from every stated shape",
            p[0],
            p[1]
        );
    }
    // Covering them.
    for shape in shapes {
        for q in shape.samples(SAMPLE_MM) {
            let d = trace
                .iter()
                .flat_map(|s| {
                    // A single point is a dot.
                    let pairs: Vec<_> = if s.len() == 1 {
                        vec![(s[0], s[0])]
                    } else {
                        s.windows(2).map(|w| (w[0], w[1])).collect()
                    };
                    pairs
                })
                .map(|(a, b)| segment_distance(q, a, b))
                .fold(f64::INFINITY, f64::min);
            assert!(
                d <= TOLERANCE_MM,
                "{name}: ({:.3}, {:.3}) of {shape:?} was not drawn (nearest trace {d:.4} mm)",
                q[0],
                q[1]
            );
        }
    }
    // Once each. The trace follows the steps, a staircase within a step of the path whose
    // length exceeds the path's (0.3 % on a circle): measured after Douglas–Peucker at
    // `SIMPLIFY_MM`, which keeps every corner of the shapes and removes the staircase.
    let drawn: f64 = trace
        .iter()
        .map(|s| {
            let kept = simplified(s, SIMPLIFY_MM);
            kept.windows(2).map(|w| hypot(w[0], w[1])).sum::<f64>()
        })
        .sum();
    let stated: f64 = shapes.iter().map(|s| s.length()).sum();
    assert!(
        (drawn / stated - 1.0).abs() <= LENGTH_TOLERANCE,
        "{name}: {drawn:.3} mm drawn for {stated:.3} mm of shapes"
    );
}

/// `line` simplified by Douglas–Peucker with `tolerance` (first and last points kept).
fn simplified(line: &[[f64; 2]], tolerance: f64) -> Vec<[f64; 2]> {
    if line.len() < 3 {
        return line.to_vec();
    }
    let mut keep = vec![false; line.len()];
    keep[0] = true;
    keep[line.len() - 1] = true;
    let mut spans = vec![(0, line.len() - 1)];
    while let Some((a, b)) = spans.pop() {
        let far = (a + 1..b)
            .map(|i| (i, segment_distance(line[i], line[a], line[b])))
            .max_by(|x, y| x.1.total_cmp(&y.1));
        if let Some((i, d)) = far
            && d > tolerance
        {
            keep[i] = true;
            spans.push((a, i));
            spans.push((i, b));
        }
    }
    line.iter()
        .zip(keep)
        .filter_map(|(p, k)| k.then_some(*p))
        .collect()
}

/// The four sides of the square with corners `a` and `b`.
fn square(a: [f64; 2], b: [f64; 2]) -> [Shape; 4] {
    [
        Shape::Segment(a, [b[0], a[1]]),
        Shape::Segment([b[0], a[1]], b),
        Shape::Segment(b, [a[0], b[1]]),
        Shape::Segment([a[0], b[1]], a),
    ]
}

#[test]
fn a_square_is_plotted_where_the_svg_puts_it() {
    let trace = plotted(r#"<path d="M10 10 H60 V60 H10 Z" fill="none" stroke="black"/>"#);
    check("square", &trace, &square([10.0, 10.0], [60.0, 60.0]));
}

#[test]
fn a_circle_is_plotted_with_its_centre_and_radius() {
    let trace = plotted(
        r#"<circle cx="120" cy="75" r="25" fill="none" stroke="black" stroke-width="0.3"/>"#,
    );
    check("circle", &trace, &[Shape::Circle([120.0, 75.0], 25.0)]);
}

#[test]
fn shapes_under_transforms_land_where_stated() {
    // A square inside a group moved by (100, 10) mm; a circle drawn as an
    // ellipse of a scaled group; and a line that leaves the page until it is rotated by 90° about (180, 100).
    let trace = plotted(
        r#"<g transform="translate(100 10)"><rect x="10" y="10" width="40" height="40" fill="none" stroke="black"/></g>
           <g transform="translate(40 120) scale(2 0.5)"><ellipse cx="0" cy="0" rx="10" ry="40" fill="none" stroke="black"/></g>
           <line x1="180" y1="100" x2="220" y2="100" transform="rotate(90 180 100)" stroke="black"/>"#,
    );
    let mut shapes = square([110.0, 20.0], [150.0, 60.0]).to_vec();
    // scale(2, 0.5) of rx 10, ry 40: a circle of radius 20 at (40, 120).
    shapes.push(Shape::Circle([40.0, 120.0], 20.0));
    // (180,100)→(220,100) turned 90° clockwise on the page (+y down) about (180,100).
    shapes.push(Shape::Segment([180.0, 100.0], [180.0, 140.0]));
    check("transforms", &trace, &shapes);
}
