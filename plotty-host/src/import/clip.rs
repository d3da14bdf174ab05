//! Clipping polylines to the plotter's travel `[0, X] × [0, Y]` (Liang–Barsky per segment). A
//! stroke that leaves and re-enters is split; the removed length is counted for the warning.

use super::error::ClipReport;
use super::{Point, Stroke};

/// Points this close outside the travel (rounding after transforms) count as on its edge.
const EDGE_SLACK_MM: f64 = 1e-6;

/// The travel rectangle.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clip {
    max: Point,
}

impl Clip {
    /// Clips to `[0, max.x] × [0, max.y]`.
    pub(crate) fn new(max: Point) -> Self {
        Self { max }
    }

    /// Appends the parts of `line` inside the travel to `out` as strokes; adds what was cut to
    /// `report`.
    pub(crate) fn clip(&self, line: &[Point], out: &mut Vec<Stroke>, report: &mut ClipReport) {
        if line.len() < 2 {
            return;
        }
        let inside_all = line.iter().all(|p| self.contains(*p));
        if inside_all {
            out.push(Stroke::new(line.iter().map(|p| self.clamp(*p)).collect()));
            return;
        }
        let mut removed = 0.0;
        let mut current: Vec<Point> = Vec::new();
        for w in line.windows(2) {
            let (a, b) = (w[0], w[1]);
            let len = a.distance_to(b);
            match self.segment(a, b) {
                None => {
                    removed += len;
                    flush(&mut current, out);
                }
                Some((t0, t1)) => {
                    removed += len * (1.0 - (t1 - t0));
                    let start = if t0 > 0.0 { lerp(a, b, t0) } else { a };
                    let end = if t1 < 1.0 { lerp(a, b, t1) } else { b };
                    if t0 > 0.0 {
                        flush(&mut current, out);
                    }
                    if current.is_empty() {
                        current.push(self.clamp(start));
                    }
                    current.push(self.clamp(end));
                    if t1 < 1.0 {
                        flush(&mut current, out);
                    }
                }
            }
        }
        flush(&mut current, out);
        if removed > EDGE_SLACK_MM {
            report.strokes += 1;
            report.length_mm += removed;
        }
    }

    fn contains(&self, p: Point) -> bool {
        p.x_mm >= -EDGE_SLACK_MM
            && p.y_mm >= -EDGE_SLACK_MM
            && p.x_mm <= self.max.x_mm + EDGE_SLACK_MM
            && p.y_mm <= self.max.y_mm + EDGE_SLACK_MM
    }

    fn clamp(&self, p: Point) -> Point {
        Point::new(
            p.x_mm.clamp(0.0, self.max.x_mm),
            p.y_mm.clamp(0.0, self.max.y_mm),
        )
    }

    /// The parameter interval of `a → b` inside the travel, if any.
    fn segment(&self, a: Point, b: Point) -> Option<(f64, f64)> {
        let (dx, dy) = (b.x_mm - a.x_mm, b.y_mm - a.y_mm);
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        let lo = -EDGE_SLACK_MM;
        let checks = [
            (-dx, a.x_mm - lo),
            (dx, self.max.x_mm + EDGE_SLACK_MM - a.x_mm),
            (-dy, a.y_mm - lo),
            (dy, self.max.y_mm + EDGE_SLACK_MM - a.y_mm),
        ];
        for (p, q) in checks {
            if p == 0.0 {
                if q < 0.0 {
                    return None;
                }
            } else {
                let r = q / p;
                if p < 0.0 {
                    t0 = t0.max(r);
                } else {
                    t1 = t1.min(r);
                }
            }
        }
        (t0 < t1 || (t0 == t1 && dx == 0.0 && dy == 0.0)).then_some((t0, t1))
    }
}

fn lerp(a: Point, b: Point, t: f64) -> Point {
    Point::new(
        a.x_mm + t * (b.x_mm - a.x_mm),
        a.y_mm + t * (b.y_mm - a.y_mm),
    )
}

fn flush(current: &mut Vec<Point>, out: &mut Vec<Stroke>) {
    if current.len() >= 2 {
        out.push(Stroke::new(std::mem::take(current)));
    } else {
        current.clear();
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn clip(line: &[(f64, f64)]) -> (Vec<Stroke>, ClipReport) {
        let c = Clip::new(Point::new(100.0, 50.0));
        let pts: Vec<Point> = line.iter().map(|&(x, y)| Point::new(x, y)).collect();
        let mut out = Vec::new();
        let mut report = ClipReport::default();
        c.clip(&pts, &mut out, &mut report);
        (out, report)
    }

    #[test]
    fn inside_is_untouched() {
        let (out, r) = clip(&[(0.0, 0.0), (100.0, 50.0), (10.0, 10.0)]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].points.len(), 3);
        assert_eq!(r, ClipReport::default());
    }

    #[test]
    fn crossing_stroke_is_split_and_measured() {
        // In, out across x = 100 for 20 mm, back in, then out through y < 0.
        let (out, r) = clip(&[(90.0, 10.0), (110.0, 10.0), (90.0, 20.0), (90.0, -5.0)]);
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0].points,
            vec![Point::new(90.0, 10.0), Point::new(100.0, 10.0)]
        );
        assert!((out[1].points[0].x_mm - 100.0).abs() < 1e-9);
        assert_eq!(out[1].points.last().copied(), Some(Point::new(90.0, 0.0)));
        assert_eq!(r.strokes, 1);
        let outside = 10.0 + 0.5 * 20.0f64.hypot(10.0) + 5.0;
        assert!(
            (r.length_mm - outside).abs() < 1e-5,
            "{} vs {outside}",
            r.length_mm
        );
    }

    #[test]
    fn wholly_outside_is_removed() {
        let (out, r) = clip(&[(-10.0, -10.0), (-20.0, 30.0)]);
        assert!(out.is_empty());
        assert_eq!(r.strokes, 1);
        assert!((r.length_mm - 10.0f64.hypot(40.0)).abs() < 1e-9);
    }

    proptest! {
        #[test]
        fn kept_plus_removed_is_total(pts in prop::collection::vec((-50.0f64..150.0, -50.0f64..100.0), 2..30)) {
            let (out, r) = clip(&pts);
            let total: f64 = pts.windows(2).map(|w| (w[1].0 - w[0].0).hypot(w[1].1 - w[0].1)).sum();
            let kept: f64 = out.iter().map(Stroke::length_mm).sum();
            prop_assert!((kept + r.length_mm - total).abs() < 1e-6 * (1.0 + total) || (r.length_mm == 0.0 && (kept - total).abs() < 1e-5));
            for s in &out {
                prop_assert!(s.points.len() >= 2);
                for p in &s.points {
                    prop_assert!(p.x_mm >= 0.0 && p.x_mm <= 100.0 && p.y_mm >= 0.0 && p.y_mm <= 50.0);
                }
            }
        }
    }
}
