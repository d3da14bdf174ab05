//! How far one set of polylines strays from another: the plan-versus-trace check of
//! `plotty plot --device sim`, the tests' drawn-exactly-once checks and the flattening tests.
//!
//! [`max_deviation`] samples the candidate polylines (every vertex, and points along each
//! segment no more than `step_mm` apart) and measures each sample's distance to the nearest
//! segment of the reference set; [`hausdorff_mm`] takes both directions.
//!
//! It lives apart from `preview` (which draws pictures) because it is geometry, not rendering,
//! and because it is the hot spot of the quick start: 85 % of its CPU time went here. The cost
//! is near linear in the number of samples and segments:
//!
//! - the reference segments go into a uniform grid (about one segment per cell, each segment
//!   cut into pieces no longer than a cell), so a nearest-segment query looks at a few cells
//!   around the point, ring by ring, and stops once no farther ring can hold anything nearer;
//! - consecutive samples are close together and their nearest segments are the same or the
//!   neighbours of the last one (polylines are stored in order), so each sample first measures
//!   those three. The distance to any segment is an upper bound of the distance to the nearest:
//!   when that bound is no larger than the worst distance found so far, the sample cannot be the
//!   new worst and the grid is not asked at all. Otherwise the bound seeds the grid search.
//!
//! Both shortcuts only skip work whose result could not change the answer, so the result is
//! bit for bit the one of the all-pairs definition (a property test holds it to that).

use crate::import::Point;
use crate::optimize::point_segment_distance;

/// How far a set of polylines strays from a reference set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Deviation {
    /// Largest distance from a sampled point to the nearest reference segment, mm
    /// (0 when there is nothing to check; infinite when the reference is empty).
    pub max_mm: f64,
    /// Where it happens.
    pub at: Option<Point>,
}

/// How far `candidate` strays from `reference`: every vertex of `candidate`, and points along
/// its segments no more than `step_mm` apart, measured to the nearest segment of `reference`.
/// A single-point polyline counts as a point. The first sample at the largest distance is the
/// one reported.
pub fn max_deviation(
    reference: &[Vec<Point>],
    candidate: &[Vec<Point>],
    step_mm: f64,
) -> Deviation {
    let grid = SegmentGrid::new(reference);
    let mut worst = Deviation {
        max_mm: 0.0,
        at: None,
    };
    // The nearest segment of the last sample measured in full.
    let mut hint: Option<usize> = None;
    let mut check = |p: Point| {
        if !p.is_finite() {
            return;
        }
        let bound = hint.map(|h| grid.near(p, h));
        if let (Some((d, _)), Some(_)) = (bound, worst.at)
            && d <= worst.max_mm
        {
            // Its nearest segment is at most `d` away: it cannot be a new worst.
            return;
        }
        let (d, nearest) = grid.nearest(p, bound);
        if nearest.is_some() {
            hint = nearest;
        }
        if worst.at.is_none() || d > worst.max_mm {
            worst = Deviation {
                max_mm: d,
                at: Some(p),
            };
        }
    };
    for_each_sample(candidate, step_mm, &mut check);
    worst
}

/// The symmetric (Hausdorff) distance: the larger of both directions of [`max_deviation`].
pub fn hausdorff_mm(a: &[Vec<Point>], b: &[Vec<Point>], step_mm: f64) -> f64 {
    max_deviation(a, b, step_mm)
        .max_mm
        .max(max_deviation(b, a, step_mm).max_mm)
}

/// Calls `f` with every sample of `candidate` in order: each polyline's first vertex, then
/// for each segment points no more than `step_mm` apart ending on its end vertex.
fn for_each_sample(candidate: &[Vec<Point>], step_mm: f64, f: &mut impl FnMut(Point)) {
    let step = if step_mm.is_finite() && step_mm > 0.0 {
        step_mm
    } else {
        f64::INFINITY
    };
    for line in candidate {
        if let Some(first) = line.first() {
            f(*first);
        }
        for w in line.windows(2) {
            let (a, b) = (w[0], w[1]);
            let len = a.distance_to(b);
            let n = if len.is_finite() && step.is_finite() {
                ((len / step).ceil() as usize).clamp(1, 1_000_000)
            } else {
                1
            };
            for i in 1..=n {
                let t = i as f64 / n as f64;
                f(Point::new(
                    a.x_mm + t * (b.x_mm - a.x_mm),
                    a.y_mm + t * (b.y_mm - a.y_mm),
                ));
            }
        }
    }
}

/// The segments of `polylines` in order (a single point as a zero-length segment), leaving
/// out points that are not finite.
fn segments_of(polylines: &[Vec<Point>]) -> Vec<(Point, Point)> {
    let mut segments = Vec::new();
    let mut pts = Vec::new();
    for line in polylines {
        pts.clear();
        pts.extend(line.iter().copied().filter(|p| p.is_finite()));
        match pts.as_slice() {
            [] => {}
            [p] => segments.push((*p, *p)),
            _ => segments.extend(pts.windows(2).map(|w| (w[0], w[1]))),
        }
    }
    segments
}

/// A uniform grid over pieces of segments for nearest-segment queries.
struct SegmentGrid {
    segments: Vec<(Point, Point)>,
    origin: Point,
    cell_mm: f64,
    cols: usize,
    rows: usize,
    /// CSR layout: items of cell `c` are `items[start[c]..start[c + 1]]`.
    start: Vec<u32>,
    items: Vec<u32>,
}

impl SegmentGrid {
    fn new(polylines: &[Vec<Point>]) -> Self {
        let segments = segments_of(polylines);
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for (a, b) in &segments {
            for p in [a, b] {
                x0 = x0.min(p.x_mm);
                y0 = y0.min(p.y_mm);
                x1 = x1.max(p.x_mm);
                y1 = y1.max(p.y_mm);
            }
        }
        if segments.is_empty() {
            (x0, y0, x1, y1) = (0.0, 0.0, 0.0, 0.0);
        }
        let (w, h) = ((x1 - x0).max(1e-9), (y1 - y0).max(1e-9));
        let n = segments.len().max(1) as f64;
        // About one segment per cell, at most 2048 cells a side.
        let mut cell = (w * h / n).sqrt().max(w.max(h) / 2048.0).max(1e-6);
        if !cell.is_finite() {
            cell = 1.0;
        }
        let cols = ((w / cell).floor() as usize + 1).min(2049);
        let rows = ((h / cell).floor() as usize + 1).min(2049);
        let mut grid = Self {
            segments,
            origin: Point::new(x0, y0),
            cell_mm: cell,
            cols,
            rows,
            start: vec![0; cols * rows + 1],
            items: Vec::new(),
        };
        // Two passes over the same cell lists: count, then fill.
        let mut cells_of = Vec::new();
        for pass in 0..2 {
            let mut fill = grid.start.clone();
            for (id, &(a, b)) in grid.segments.iter().enumerate() {
                cells_of.clear();
                grid.cells_of_segment(a, b, &mut cells_of);
                for &c in &cells_of {
                    if pass == 0 {
                        grid.start[c + 1] += 1;
                    } else {
                        grid.items[fill[c] as usize] = id as u32;
                        fill[c] += 1;
                    }
                }
            }
            if pass == 0 {
                for c in 0..cols * rows {
                    grid.start[c + 1] += grid.start[c];
                }
                grid.items = vec![0; grid.start[cols * rows] as usize];
            }
        }
        grid
    }

    fn cell_xy(&self, p: Point) -> (usize, usize) {
        let cx = ((p.x_mm - self.origin.x_mm) / self.cell_mm).floor();
        let cy = ((p.y_mm - self.origin.y_mm) / self.cell_mm).floor();
        (
            cx.clamp(0.0, (self.cols - 1) as f64) as usize,
            cy.clamp(0.0, (self.rows - 1) as f64) as usize,
        )
    }

    /// Cells touched by the segment, as pieces no longer than a cell (each piece's bounding
    /// box spans at most 2 × 2 cells).
    fn cells_of_segment(&self, a: Point, b: Point, out: &mut Vec<usize>) {
        let len = a.distance_to(b);
        let pieces = ((len / self.cell_mm).ceil() as usize).clamp(1, 1 << 22);
        let mut prev = a;
        for i in 1..=pieces {
            let t = i as f64 / pieces as f64;
            let q = Point::new(
                a.x_mm + t * (b.x_mm - a.x_mm),
                a.y_mm + t * (b.y_mm - a.y_mm),
            );
            let (c0x, c0y) = self.cell_xy(prev);
            let (c1x, c1y) = self.cell_xy(q);
            for cy in c0y.min(c1y)..=c0y.max(c1y) {
                for cx in c0x.min(c1x)..=c0x.max(c1x) {
                    out.push(cy * self.cols + cx);
                }
            }
            prev = q;
        }
        out.sort_unstable();
        out.dedup();
    }

    /// The nearest of segment `id` and its neighbours in storage order (the next segments of
    /// the same polyline): the distance to it and its index. An upper bound of the distance to
    /// the nearest segment.
    fn near(&self, p: Point, id: usize) -> (f64, usize) {
        let mut best = (f64::INFINITY, id);
        for i in id.saturating_sub(1)..=(id + 1).min(self.segments.len().saturating_sub(1)) {
            let (a, b) = self.segments[i];
            let d = point_segment_distance(p, a, b);
            if d < best.0 {
                best = (d, i);
            }
        }
        best
    }

    /// Distance from `p` to the nearest segment and its index (infinite and `None` if there
    /// are none). `bound` is a segment already measured (distance, index): the search only
    /// looks for nearer ones, and returns it if there is none.
    fn nearest(&self, p: Point, bound: Option<(f64, usize)>) -> (f64, Option<usize>) {
        if self.segments.is_empty() {
            return (f64::INFINITY, None);
        }
        let (mut best, mut best_id) = match bound {
            Some((d, id)) => (d, Some(id)),
            None => (f64::INFINITY, None),
        };
        let (cx, cy) = self.cell_xy(p);
        let max_ring = self.cols.max(self.rows);
        for ring in 0..=max_ring {
            // Cells of ring k are at least (k − 1) cells away from p. The margin keeps a
            // rounding error in the cell arithmetic from ending the search one ring early.
            if ring >= 1 && best < (ring - 1) as f64 * self.cell_mm * (1.0 - 1e-9) {
                break;
            }
            let (x0, x1) = (cx.saturating_sub(ring), (cx + ring).min(self.cols - 1));
            let (y0, y1) = (cy.saturating_sub(ring), (cy + ring).min(self.rows - 1));
            for y in y0..=y1 {
                // Only the ring's border: its first and last rows whole, else both ends.
                let whole_row = y.abs_diff(cy) == ring;
                let step = if whole_row || x1 == x0 { 1 } else { x1 - x0 };
                let mut x = x0;
                while x <= x1 {
                    let on_ring = whole_row || x.abs_diff(cx) == ring;
                    if on_ring {
                        let c = y * self.cols + x;
                        let cell = &self.items[self.start[c] as usize..self.start[c + 1] as usize];
                        for &id in cell {
                            let (a, b) = self.segments[id as usize];
                            let d = point_segment_distance(p, a, b);
                            if d < best {
                                best = d;
                                best_id = Some(id as usize);
                            }
                        }
                    }
                    x += step;
                }
            }
        }
        (best, best_id)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The definition, all pairs: every sample measured against every reference segment. The
    /// oracle the grid and its shortcuts must match exactly.
    fn max_deviation_all_pairs(
        reference: &[Vec<Point>],
        candidate: &[Vec<Point>],
        step_mm: f64,
    ) -> Deviation {
        let segments = segments_of(reference);
        let mut worst = Deviation {
            max_mm: 0.0,
            at: None,
        };
        for_each_sample(candidate, step_mm, &mut |p: Point| {
            if !p.is_finite() {
                return;
            }
            let d = segments
                .iter()
                .map(|&(a, b)| point_segment_distance(p, a, b))
                .fold(f64::INFINITY, f64::min);
            if worst.at.is_none() || d > worst.max_mm {
                worst = Deviation {
                    max_mm: d,
                    at: Some(p),
                };
            }
        });
        worst
    }

    fn brute(reference: &[Vec<Point>], p: Point) -> f64 {
        let mut best = f64::INFINITY;
        for line in reference {
            if line.len() == 1 {
                best = best.min(p.distance_to(line[0]));
            }
            for w in line.windows(2) {
                best = best.min(point_segment_distance(p, w[0], w[1]));
            }
        }
        best
    }

    fn lines(raw: &[Vec<(f64, f64)>]) -> Vec<Vec<Point>> {
        raw.iter()
            .map(|l| l.iter().map(|&(x, y)| Point::new(x, y)).collect())
            .collect()
    }

    #[test]
    fn deviation_of_identical_sets_is_zero() {
        let a = vec![vec![
            Point::new(0.0, 0.0),
            Point::new(100.0, 0.0),
            Point::new(100.0, 50.0),
        ]];
        let d = max_deviation(&a, &a, 0.5);
        assert!(d.max_mm < 1e-12);
    }

    #[test]
    fn deviation_finds_the_worst_point() {
        let plan = vec![vec![Point::new(0.0, 0.0), Point::new(100.0, 0.0)]];
        let trace = vec![vec![
            Point::new(0.0, 0.1),
            Point::new(50.0, 0.3),
            Point::new(100.0, 0.0),
        ]];
        let d = max_deviation(&plan, &trace, 0.1);
        assert!((d.max_mm - 0.3).abs() < 1e-9, "{d:?}");
        assert_eq!(d.at, Some(Point::new(50.0, 0.3)));
        // The other way round, the plan's vertices are near the trace.
        assert!(hausdorff_mm(&plan, &trace, 0.1) >= 0.3 - 1e-9);
        let empty: Vec<Vec<Point>> = Vec::new();
        assert!(max_deviation(&empty, &trace, 0.1).max_mm.is_infinite());
        assert_eq!(max_deviation(&plan, &empty, 0.1).max_mm, 0.0);
    }

    /// A trace that follows its plan closely, as the simulator's does: many samples, each
    /// near a segment the one before was near, and the worst one late in the drawing.
    #[test]
    fn a_close_trace_of_a_long_plan_matches_the_definition() {
        let plan: Vec<Vec<Point>> = (0..6)
            .map(|k| {
                (0..120)
                    .map(|i| {
                        let a = f64::from(i) * 0.05 + f64::from(k);
                        Point::new(100.0 + a.cos() * f64::from(k + 5), 100.0 + a.sin() * 30.0)
                    })
                    .collect()
            })
            .collect();
        let trace: Vec<Vec<Point>> = plan
            .iter()
            .enumerate()
            .map(|(k, l)| {
                l.iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let wobble = ((i * 7 + k * 3) % 11) as f64 * 0.001;
                        Point::new(p.x_mm + wobble, p.y_mm - wobble)
                    })
                    .collect()
            })
            .collect();
        for (a, b) in [(&plan, &trace), (&trace, &plan)] {
            assert_eq!(max_deviation(a, b, 0.2), max_deviation_all_pairs(a, b, 0.2));
        }
    }

    proptest! {
        // The all-pairs oracle is slow in a debug build: fewer, smaller cases.
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn grid_distance_matches_brute_force(
            raw in prop::collection::vec(
                prop::collection::vec((-50.0f64..250.0, -50.0f64..150.0), 1..8), 1..30),
            queries in prop::collection::vec((-100.0f64..300.0, -100.0f64..200.0), 1..30),
        ) {
            let reference = lines(&raw);
            let grid = SegmentGrid::new(&reference);
            for (x, y) in queries {
                let p = Point::new(x, y);
                let (g, b) = (grid.nearest(p, None).0, brute(&reference, p));
                prop_assert_eq!(g, b);
            }
        }

        /// The grid with its shortcuts gives exactly the all-pairs answer: the same largest
        /// distance, at the same sample.
        #[test]
        fn max_deviation_equals_the_all_pairs_definition(
            reference in prop::collection::vec(
                prop::collection::vec((-50.0f64..250.0, -50.0f64..150.0), 1..8), 0..12),
            candidate in prop::collection::vec(
                prop::collection::vec((-100.0f64..300.0, -100.0f64..200.0), 1..8), 0..12),
            step_mm in prop_oneof![Just(0.0), 1.0f64..20.0],
        ) {
            let (reference, candidate) = (lines(&reference), lines(&candidate));
            prop_assert_eq!(
                max_deviation(&reference, &candidate, step_mm),
                max_deviation_all_pairs(&reference, &candidate, step_mm)
            );
        }

        /// The same for a candidate close to its reference (the plan-versus-trace case, where
        /// the shortcut skips most samples).
        #[test]
        fn a_nearby_candidate_gives_the_all_pairs_answer(
            raw in prop::collection::vec(
                prop::collection::vec((0.0f64..20.0, 0.0f64..15.0), 2..8), 1..8),
            wobble in prop::collection::vec(-0.05f64..0.05, 1..50),
        ) {
            let reference = lines(&raw);
            let mut k = 0;
            let candidate: Vec<Vec<Point>> = reference.iter().map(|l| {
                l.iter().map(|p| {
                    k += 1;
                    let w = wobble[k % wobble.len()];
                    Point::new(p.x_mm + w, p.y_mm - w / 2.0)
                }).collect()
            }).collect();
            for (a, b) in [(&reference, &candidate), (&candidate, &reference)] {
                prop_assert_eq!(
                    max_deviation(a, b, 0.1),
                    max_deviation_all_pairs(a, b, 0.1)
                );
            }
        }
    }
}
