//! Curve flattening with a guaranteed error bound, in millimetres (curves are transformed to
//! plotter coordinates first; affine maps keep Béziers Béziers).
//!
//! For a curve `B` sampled at `n` equal parameter steps of width `h`, the distance between `B(t)`
//! and the chord through the neighbouring samples is at most `h²/8 · max|B''|` (the vector form
//! of the linear-interpolation error bound). `|B''|` is `2|P0 − 2P1 + P2|` for a quadratic and
//! at most `6·max(|P0 − 2P1 + P2|, |P1 − 2P2 + P3|)` for a cubic, which fixes the smallest `n`
//! that meets the tolerance (Wang's formula). Cubics needing many steps are halved first
//! (de Casteljau) so each piece gets the count its own curvature needs: adaptive, and still
//! bounded everywhere.
//!
//! Arcs: usvg turns SVG arcs, circles, ellipses and rounded corners into cubics with a fixed
//! error of 0.1 user units (0.1 mm in an Inkscape document), above our tolerance. Those cubics
//! are affine images of the standard circular-arc cubic (tangent arms in the ratio
//! `(4/3)·tan(θ/4) / tan(θ/2)` of the tangent lines' meeting point), so the arc they stand for is
//! recovered exactly and flattened as the true elliptical arc. A hand-made cubic of that exact
//! shape differs from its arc by at most the cubic's own approximation error (2.7·10⁻⁴ of the
//! radius for a quarter turn), and is taken as the arc only where that could exceed a hundredth
//! of the tolerance.
//!
//! Pieces whose control points all lie beyond one edge of the clip rectangle (outside the
//! plotter's travel) are cut away later anyway; they get at most 8 samples, enough to report
//! their length, so absurdly large curves cost nothing.

use super::Point;

/// Most samples for a piece that lies wholly outside the clip rectangle.
const OUTSIDE_SAMPLES: usize = 8;
/// A cubic needing more samples than this is halved first.
const SPLIT_ABOVE: usize = 32;
/// Deepest halving of one cubic.
const MAX_DEPTH: u32 = 24;
/// Hard cap on samples for one piece.
const MAX_SAMPLES: usize = 1 << 20;

/// Flattens curves to a tolerance, culling against a clip rectangle.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Flattener {
    tolerance_mm: f64,
    clip_max: Point,
}

/// An elliptical arc `c + L·(cos s, sin s)` for `s` in `[0, sweep]`.
#[derive(Clone, Copy, Debug)]
struct Arc {
    center: Point,
    /// Columns of the linear map `L`.
    col1: (f64, f64),
    col2: (f64, f64),
    sweep: f64,
}

impl Flattener {
    /// A flattener with `tolerance_mm`, culling pieces outside `[0, clip_max]`.
    pub(crate) fn new(tolerance_mm: f64, clip_max: Point) -> Self {
        Self {
            tolerance_mm,
            clip_max,
        }
    }

    /// Appends the points after `p0` of the quadratic `p0 p1 p2` to `out`.
    pub(crate) fn quad(&self, p0: Point, p1: Point, p2: Point, out: &mut Vec<Point>) {
        let dd = norm(sub(add(p0, p2), scale(p1, 2.0)));
        let n = self.samples_for(dd / 4.0, self.tolerance_mm, &[p0, p1, p2]);
        for i in 1..n {
            let t = i as f64 / n as f64;
            let u = 1.0 - t;
            out.push(Point::new(
                u * u * p0.x_mm + 2.0 * u * t * p1.x_mm + t * t * p2.x_mm,
                u * u * p0.y_mm + 2.0 * u * t * p1.y_mm + t * t * p2.y_mm,
            ));
        }
        out.push(p2);
    }

    /// Appends the points after `p0` of the cubic `p0 p1 p2 p3` to `out`.
    pub(crate) fn cubic(&self, p0: Point, p1: Point, p2: Point, p3: Point, out: &mut Vec<Point>) {
        let mut tol = self.tolerance_mm;
        if let Some(arc) = Arc::recover(p0, p1, p2, p3) {
            if arc.cubic_error_mm() > tol * 0.01 && !self.outside(&[p0, p1, p2, p3]) {
                self.arc(&arc, p3, out);
                return;
            }
            // Within 1 % of the tolerance of its arc: keep the cubic, and the total error
            // under the tolerance.
            tol *= 0.99;
        }
        self.cubic_piece([p0, p1, p2, p3], tol, out, 0);
    }

    fn cubic_piece(&self, c: [Point; 4], tol: f64, out: &mut Vec<Point>, depth: u32) {
        let [p0, p1, p2, p3] = c;
        let d1 = norm(sub(add(p0, p2), scale(p1, 2.0)));
        let d2 = norm(sub(add(p1, p3), scale(p2, 2.0)));
        // h²/8 · 6·max(d1, d2) ≤ tol  ⇔  n² ≥ 3·max/(4·tol).
        let n = self.samples_for(0.75 * d1.max(d2), tol, &c);
        if n > SPLIT_ABOVE && depth < MAX_DEPTH {
            let (l, r) = split_cubic(p0, p1, p2, p3);
            self.cubic_piece(l, tol, out, depth + 1);
            self.cubic_piece(r, tol, out, depth + 1);
            return;
        }
        for i in 1..n {
            let t = i as f64 / n as f64;
            let u = 1.0 - t;
            let (a, b, c, d) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
            out.push(Point::new(
                a * p0.x_mm + b * p1.x_mm + c * p2.x_mm + d * p3.x_mm,
                a * p0.y_mm + b * p1.y_mm + c * p2.y_mm + d * p3.y_mm,
            ));
        }
        out.push(p3);
    }

    /// Appends the samples after the start of `arc`, ending exactly at `end`.
    fn arc(&self, arc: &Arc, end: Point, out: &mut Vec<Point>) {
        // |B''(s)| = |L·(cos s, sin s)| ≤ σmax(L): n ≥ sweep · sqrt(σmax / (8 tol)).
        let sigma = arc.max_singular_value();
        let n = (arc.sweep * (sigma / (8.0 * self.tolerance_mm)).sqrt()).ceil();
        let n = clamp_samples(n);
        for i in 1..n {
            let s = arc.sweep * i as f64 / n as f64;
            out.push(arc.at(s));
        }
        out.push(end);
    }

    /// Smallest `n` with `bound / n² ≤ tolerance`, or a few samples if the piece is culled.
    fn samples_for(&self, bound: f64, tol: f64, control: &[Point]) -> usize {
        let n = clamp_samples((bound / tol).sqrt().ceil());
        if self.outside(control) {
            n.min(OUTSIDE_SAMPLES)
        } else {
            n
        }
    }

    /// True if every control point lies beyond the same edge of the clip rectangle.
    fn outside(&self, control: &[Point]) -> bool {
        control.iter().all(|p| p.x_mm < 0.0)
            || control.iter().all(|p| p.y_mm < 0.0)
            || control.iter().all(|p| p.x_mm > self.clip_max.x_mm)
            || control.iter().all(|p| p.y_mm > self.clip_max.y_mm)
    }
}

impl Arc {
    /// The elliptical arc that the cubic approximates in the standard way, if it has that shape.
    fn recover(p0: Point, p1: Point, p2: Point, p3: Point) -> Option<Self> {
        let a0 = sub(p1, p0);
        let a3 = sub(p2, p3);
        let size = norm(sub(p3, p0)).max(norm(a0)).max(norm(a3));
        if size.is_nan() || size <= 0.0 || norm(a0) < size * 1e-6 || norm(a3) < size * 1e-6 {
            return None;
        }
        // Tangent lines p0 + s·a0 and p3 + u·a3 meet at X.
        let det = cross(a0, a3);
        if det.abs() < 1e-12 * norm(a0) * norm(a3) {
            return None;
        }
        let d = sub(p3, p0);
        let s = cross(d, a3) / det;
        let u = cross(d, a0) / det;
        if !(s > 1.0 && u > 1.0) {
            return None;
        }
        // |p0 p1| / |p0 X| = 1/s, the same at both ends for an arc.
        let (l0, l3) = (1.0 / s, 1.0 / u);
        if (l0 - l3).abs() > 2e-5 * l0.max(l3) {
            return None;
        }
        let ratio = 0.5 * (l0 + l3);
        // ratio(θ) = (4/3)·tan(θ/4) / tan(θ/2) falls from 2/3 (θ → 0) to 0.5523 (θ = π/2).
        let ratio_at = |t: f64| (4.0 / 3.0) * (t / 4.0).tan() / (t / 2.0).tan();
        let max_sweep = 100f64.to_radians();
        if !(ratio < 2.0 / 3.0 && ratio >= ratio_at(max_sweep)) {
            return None;
        }
        let (mut lo, mut hi) = (0.0f64, max_sweep);
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if ratio_at(mid) > ratio {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let sweep = 0.5 * (lo + hi);
        // Affine map of the unit circle: (1,0) → p0, (1, tan(θ/2)) → X, (cos θ, sin θ) → p3.
        let x = add(p0, scale(a0, s));
        let t = (sweep / 2.0).tan();
        let c2 = scale(sub(x, p0), 1.0 / t);
        let (sin, cos) = sweep.sin_cos();
        let c1 = scale(sub(sub(p3, p0), scale(c2, sin)), 1.0 / (cos - 1.0));
        let arc = Self {
            center: sub(p0, c1),
            col1: (c1.x_mm, c1.y_mm),
            col2: (c2.x_mm, c2.y_mm),
            sweep,
        };
        // The construction matches p0, p1 and p3; p2 confirms the shape.
        let k = (4.0 / 3.0) * (sweep / 4.0).tan();
        let q2 = arc.map(cos + k * sin, sin - k * cos);
        if norm(sub(q2, p2)) > 1e-5 * size {
            return None;
        }
        Some(arc)
    }

    fn map(&self, x: f64, y: f64) -> Point {
        Point::new(
            self.center.x_mm + self.col1.0 * x + self.col2.0 * y,
            self.center.y_mm + self.col1.1 * x + self.col2.1 * y,
        )
    }

    fn at(&self, s: f64) -> Point {
        let (sin, cos) = s.sin_cos();
        self.map(cos, sin)
    }

    fn max_singular_value(&self) -> f64 {
        let (a, c) = self.col1;
        let (b, d) = self.col2;
        // Eigenvalues of LᵀL.
        let p = a * a + c * c;
        let q = b * b + d * d;
        let r = a * b + c * d;
        let mean = 0.5 * (p + q);
        let diff = (0.25 * (p - q) * (p - q) + r * r).sqrt();
        (mean + diff).max(0.0).sqrt()
    }

    /// How far the standard cubic for this arc may stray from it: twice kurbo's estimate
    /// `1.1163 · r / n⁶` for `n` cubics per full turn (2.7·10⁻⁴ r for a quarter turn), scaled
    /// by the ellipse's larger radius.
    fn cubic_error_mm(&self) -> f64 {
        let per_turn = std::f64::consts::TAU / self.sweep;
        2.0 * 1.1163 * self.max_singular_value() / per_turn.powi(6)
    }
}

fn clamp_samples(n: f64) -> usize {
    if n.is_finite() && n >= 1.0 {
        (n as usize).min(MAX_SAMPLES)
    } else if n.is_finite() {
        1
    } else {
        MAX_SAMPLES
    }
}

fn split_cubic(p0: Point, p1: Point, p2: Point, p3: Point) -> ([Point; 4], [Point; 4]) {
    let m01 = mid(p0, p1);
    let m12 = mid(p1, p2);
    let m23 = mid(p2, p3);
    let a = mid(m01, m12);
    let b = mid(m12, m23);
    let m = mid(a, b);
    ([p0, m01, a, m], [m, b, m23, p3])
}

fn mid(a: Point, b: Point) -> Point {
    Point::new(0.5 * (a.x_mm + b.x_mm), 0.5 * (a.y_mm + b.y_mm))
}
fn add(a: Point, b: Point) -> Point {
    Point::new(a.x_mm + b.x_mm, a.y_mm + b.y_mm)
}
fn sub(a: Point, b: Point) -> Point {
    Point::new(a.x_mm - b.x_mm, a.y_mm - b.y_mm)
}
fn scale(a: Point, k: f64) -> Point {
    Point::new(a.x_mm * k, a.y_mm * k)
}
fn norm(a: Point) -> f64 {
    a.x_mm.hypot(a.y_mm)
}
fn cross(a: Point, b: Point) -> f64 {
    a.x_mm * b.y_mm - a.y_mm * b.x_mm
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::*;

    const BIG: Point = Point::new(1e6, 1e6);

    fn cubic_at(c: [Point; 4], t: f64) -> Point {
        let u = 1.0 - t;
        let (a, b, cc, d) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
        Point::new(
            a * c[0].x_mm + b * c[1].x_mm + cc * c[2].x_mm + d * c[3].x_mm,
            a * c[0].y_mm + b * c[1].y_mm + cc * c[2].y_mm + d * c[3].y_mm,
        )
    }

    /// Two-sided distance between a dense polyline of the curve and the flattened polyline:
    /// every dense vertex to the polyline, and 16 points along each polyline segment to the
    /// dense curve.
    pub(crate) fn hausdorff(curve: &[Point], line: &[Point]) -> f64 {
        let mut dense_line = Vec::with_capacity(line.len() * 16);
        for w in line.windows(2) {
            for k in 0..16 {
                let t = f64::from(k) / 16.0;
                dense_line.push(Point::new(
                    w[0].x_mm + t * (w[1].x_mm - w[0].x_mm),
                    w[0].y_mm + t * (w[1].y_mm - w[0].y_mm),
                ));
            }
        }
        dense_line.extend(line.last().copied());
        let points = |v: &[Point]| v.iter().map(|p| vec![*p]).collect::<Vec<_>>();
        let a = crate::deviation::max_deviation(&[line.to_vec()], &points(curve), 0.0).max_mm;
        let b =
            crate::deviation::max_deviation(&[curve.to_vec()], &points(&dense_line), 0.0).max_mm;
        a.max(b)
    }

    fn flatten_cubic(c: [Point; 4], tol: f64) -> Vec<Point> {
        let f = Flattener::new(tol, BIG);
        let mut out = vec![c[0]];
        f.cubic(c[0], c[1], c[2], c[3], &mut out);
        out
    }

    #[test]
    fn quarter_circle_cubic_is_recovered_as_arc() {
        let r = 100.0;
        let k = 0.552_284_749_8 * r;
        let c = [
            Point::new(r, 0.0),
            Point::new(r, k),
            Point::new(k, r),
            Point::new(0.0, r),
        ];
        let arc = Arc::recover(c[0], c[1], c[2], c[3]).expect("an arc");
        assert!((arc.sweep - std::f64::consts::FRAC_PI_2).abs() < 1e-6);
        assert!(arc.center.distance_to(Point::ORIGIN) < 1e-6);
        let line = flatten_cubic(c, 0.01);
        for w in line.windows(2) {
            assert!((w[0].distance_to(Point::ORIGIN) - r).abs() < 1e-6);
            let m = mid(w[0], w[1]);
            assert!(r - m.distance_to(Point::ORIGIN) <= 0.01 + 1e-6);
        }
    }

    #[test]
    fn asymmetric_cubic_is_not_an_arc() {
        let c = [
            Point::new(0.0, 0.0),
            Point::new(10.0, 40.0),
            Point::new(60.0, -30.0),
            Point::new(80.0, 10.0),
        ];
        assert!(Arc::recover(c[0], c[1], c[2], c[3]).is_none());
    }

    #[test]
    fn culled_pieces_get_few_samples() {
        let f = Flattener::new(0.01, Point::new(300.0, 200.0));
        let mut out = vec![Point::new(-1e5, 0.0)];
        f.cubic(
            Point::new(-1e5, 0.0),
            Point::new(-5e4, 9e4),
            Point::new(-2e4, -9e4),
            Point::new(-1.0, 5.0),
            &mut out,
        );
        assert!(out.len() < 200, "{}", out.len());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn cubic_error_within_tolerance(
            pts in prop::array::uniform8(0.0f64..400.0),
            tol in prop::sample::select(vec![0.005, 0.01, 0.1]),
        ) {
            let c = [
                Point::new(pts[0], pts[1]), Point::new(pts[2], pts[3]),
                Point::new(pts[4], pts[5]), Point::new(pts[6], pts[7]),
            ];
            let line = flatten_cubic(c, tol);
            prop_assert_eq!(*line.last().unwrap(), c[3]);
            // Sample finely enough that the sampling itself adds < 1 % of the tolerance.
            let curve: Vec<Point> = (0..=8000).map(|i| cubic_at(c, i as f64 / 8000.0)).collect();
            let err = hausdorff(&curve, &line);
            // The dense curve is itself a polyline: allow its own chord error (< 2e-5 mm).
            prop_assert!(err <= tol + 3e-5, "error {} > tol {}", err, tol);
        }

        #[test]
        fn quad_error_within_tolerance(pts in prop::array::uniform6(0.0f64..400.0)) {
            let (p0, p1, p2) = (Point::new(pts[0], pts[1]), Point::new(pts[2], pts[3]),
                                Point::new(pts[4], pts[5]));
            let f = Flattener::new(0.01, BIG);
            let mut line = vec![p0];
            f.quad(p0, p1, p2, &mut line);
            let curve: Vec<Point> = (0..=8000).map(|i| {
                let t = i as f64 / 8000.0;
                let u = 1.0 - t;
                Point::new(u*u*p0.x_mm + 2.0*u*t*p1.x_mm + t*t*p2.x_mm,
                           u*u*p0.y_mm + 2.0*u*t*p1.y_mm + t*t*p2.y_mm)
            }).collect();
            let err = hausdorff(&curve, &line);
            prop_assert!(err <= 0.01 + 3e-5, "error {}", err);
        }

        #[test]
        fn elliptic_arc_error_within_tolerance(
            cx in 300.0f64..500.0, cy in 300.0f64..500.0,
            rx in 1.0f64..300.0, ry in 1.0f64..300.0, rot in 0.0f64..6.3,
            start in 0.0f64..6.3, sweep in 0.3f64..std::f64::consts::FRAC_PI_2,
        ) {
            // The standard cubic for this arc of an ellipse, as kurbo builds it.
            let e = |a: f64| {
                let (s, c) = a.sin_cos();
                let (rs, rc) = rot.sin_cos();
                let (x, y) = (rx * c, ry * s);
                Point::new(cx + rc * x - rs * y, cy + rs * x + rc * y)
            };
            let de = |a: f64| {
                let (s, c) = a.sin_cos();
                let (rs, rc) = rot.sin_cos();
                let (x, y) = (-rx * s, ry * c);
                Point::new(rc * x - rs * y, rs * x + rc * y)
            };
            let k = (4.0 / 3.0) * (sweep / 4.0).tan();
            let (a0, a1) = (start, start + sweep);
            let c = [e(a0), add(e(a0), scale(de(a0), k)), sub(e(a1), scale(de(a1), k)), e(a1)];
            let line = flatten_cubic(c, 0.01);
            let curve: Vec<Point> = (0..=8000).map(|i| e(a0 + sweep * i as f64 / 8000.0)).collect();
            let err = hausdorff(&curve, &line);
            let chord_slack = rx.max(ry) * (sweep / 8000.0).powi(2) / 8.0;
            prop_assert!(err <= 0.01 + chord_slack + 1e-7, "error {}", err);
        }
    }
}
