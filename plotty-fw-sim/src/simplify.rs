//! Streaming polyline simplification with a hard deviation bound, for the pen trace.
//!
//! The board moves one step at a time, so the true path is a staircase of millions of points.
//! Recording every step would cost memory in proportion to the plot's length in steps; recording
//! only command ends would lose curves drawn by a single accelerating move. This simplifier keeps
//! a point only when the straight segment from the last kept point can no longer pass within the
//! tolerance of every point seen since (the "sleeve"/angular-cone method of Zhao and Saalfeld):
//!
//! - every point within `tolerance` of the anchor (the last kept point) constrains nothing;
//! - a point `p` farther away admits only directions within `asin(tolerance / |p − anchor|)` of
//!   its own; the intersection of these cones is kept as two edge vectors;
//! - a new point whose direction lies outside the cone, or that comes back towards the anchor (its
//!   distance shrinks), ends the segment: the previous point is kept and becomes the new anchor.
//!
//! Guarantee: every input point lies within `tolerance` of the output polyline, and every output
//! point is an input point (a true position of the carriage). Cost: O(1) time and memory per
//! input point beyond the kept ones; straight runs keep two points however long they are.

/// A point in integer motor units.
pub(crate) type Point = [i64; 2];

/// Streaming simplifier; feed points with [`push`](Self::push), collect kept ones from the
/// callbacks' return values.
#[derive(Debug, Clone)]
pub(crate) struct Simplifier {
    tolerance: f64,
    /// Last kept point: the start of the segment being grown.
    anchor: Point,
    /// Last point accepted on the current segment (the candidate end).
    last: Point,
    /// Squared distance of `last` from the anchor (points must not come back).
    last_dist2: f64,
    cone: Option<Cone>,
}

/// Directions from the anchor that pass within tolerance of every point so far: from `lo` to
/// `hi` counter-clockwise, less than a half-turn apart.
#[derive(Debug, Clone, Copy)]
struct Cone {
    lo: Edge,
    hi: Edge,
}

/// A direction, as a vector of known length (not normalised, to avoid divisions).
#[derive(Debug, Clone, Copy)]
struct Edge {
    dir: [f64; 2],
    /// `|dir|`.
    len: f64,
}

impl Simplifier {
    /// Starts a polyline at `start` (which the caller keeps as its first point).
    pub(crate) fn new(start: Point, tolerance: f64) -> Self {
        Self {
            tolerance: tolerance.max(0.0),
            anchor: start,
            last: start,
            last_dist2: 0.0,
            cone: None,
        }
    }

    /// Changes the tolerance for the segments that follow; keeps the current point first so the
    /// bound of the segment in progress is the one it was built with.
    pub(crate) fn set_tolerance(&mut self, tolerance: f64) -> Option<Point> {
        let kept = self.keep_current();
        self.tolerance = tolerance.max(0.0);
        kept
    }

    /// Feeds the next position; returns a point to keep when the segment had to end before it.
    #[inline]
    pub(crate) fn push(&mut self, p: Point) -> Option<Point> {
        if p == self.last {
            return None;
        }
        let (v, dist2) = self.offset(p);
        if self.accepts(v, dist2) {
            self.extend(p, v, dist2);
            None
        } else {
            let kept = self.last;
            self.restart_at(kept);
            // Relative to the new anchor, `p` is the first point: always accepted.
            let (v, dist2) = self.offset(p);
            self.extend(p, v, dist2);
            Some(kept)
        }
    }

    /// Ends the segment at the current point (for pen changes, command starts, the end of the
    /// trace); returns it unless it is already kept.
    pub(crate) fn keep_current(&mut self) -> Option<Point> {
        if self.last == self.anchor {
            return None;
        }
        let kept = self.last;
        self.restart_at(kept);
        Some(kept)
    }

    fn restart_at(&mut self, anchor: Point) {
        self.anchor = anchor;
        self.last = anchor;
        self.last_dist2 = 0.0;
        self.cone = None;
    }

    /// `p` relative to the anchor, and its squared length. Exact while offsets stay below 2^26
    /// steps (hundreds of metres of travel); beyond that only the rounding of the comparisons
    /// changes, never memory safety.
    fn offset(&self, p: Point) -> ([f64; 2], f64) {
        let v = [
            p[0].wrapping_sub(self.anchor[0]) as f64,
            p[1].wrapping_sub(self.anchor[1]) as f64,
        ];
        (v, v[0] * v[0] + v[1] * v[1])
    }

    /// Whether the segment anchor → `p` passes within tolerance of every point accepted so far.
    fn accepts(&self, v: [f64; 2], dist2: f64) -> bool {
        if dist2 < self.last_dist2 {
            return false;
        }
        match self.cone {
            None => true,
            Some(cone) => {
                cross(cone.lo.dir, v) >= 0.0
                    && cross(v, cone.hi.dir) >= 0.0
                    && dot(cone.lo.dir, v) > 0.0
            }
        }
    }

    /// Accepts `p` (offset `v`, squared distance `dist2`) and narrows the cone by its constraint.
    fn extend(&mut self, p: Point, v: [f64; 2], dist2: f64) {
        self.last = p;
        self.last_dist2 = dist2;
        let tolerance = self.tolerance;
        if dist2 <= tolerance * tolerance {
            return;
        }
        let Some(cone) = &mut self.cone else {
            let q = (dist2 - tolerance * tolerance).sqrt();
            self.cone = Some(Cone {
                lo: Edge::turned(v, dist2, q, -tolerance),
                hi: Edge::turned(v, dist2, q, tolerance),
            });
            return;
        };
        // An edge that passes within tolerance of `p` already satisfies p's constraint; only an
        // edge that does not is moved to the constraint's boundary (if that narrows the cone).
        let lo_ok = cone.lo.passes_near(v, tolerance);
        let hi_ok = cone.hi.passes_near(v, tolerance);
        if lo_ok && hi_ok {
            return;
        }
        let q = (dist2 - tolerance * tolerance).sqrt();
        if !lo_ok {
            let p_lo = Edge::turned(v, dist2, q, -tolerance);
            if cross(cone.lo.dir, p_lo.dir) > 0.0 {
                cone.lo = p_lo;
            }
        }
        if !hi_ok {
            let p_hi = Edge::turned(v, dist2, q, tolerance);
            if cross(p_hi.dir, cone.hi.dir) > 0.0 {
                cone.hi = p_hi;
            }
        }
    }
}

impl Edge {
    /// `v` (squared length `dist2`) turned by asin(side / |v|), counter-clockwise for a positive
    /// `side`, scaled to length |v|² so that no division is needed; `q` is
    /// sqrt(|v|² − side²). One square root per constraint, shared by both edges.
    fn turned(v: [f64; 2], dist2: f64, q: f64, side: f64) -> Self {
        Self {
            dir: [v[0] * q - v[1] * side, v[1] * q + v[0] * side],
            len: dist2,
        }
    }

    /// Whether the ray along this edge passes within `tolerance` of the point at offset `v`.
    fn passes_near(&self, v: [f64; 2], tolerance: f64) -> bool {
        cross(self.dir, v).abs() <= tolerance * self.len && dot(self.dir, v) > 0.0
    }
}

fn cross(a: [f64; 2], b: [f64; 2]) -> f64 {
    a[0] * b[1] - a[1] * b[0]
}

fn dot(a: [f64; 2], b: [f64; 2]) -> f64 {
    a[0] * b[0] + a[1] * b[1]
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Runs the simplifier over `path` (first point = start) and returns the kept polyline.
    fn simplify(path: &[Point], tolerance: f64) -> Vec<Point> {
        let mut s = Simplifier::new(path[0], tolerance);
        let mut out = vec![path[0]];
        for &p in &path[1..] {
            out.extend(s.push(p));
        }
        out.extend(s.keep_current());
        out
    }

    fn distance_to_segment(p: Point, a: Point, b: Point) -> f64 {
        let (px, py) = (p[0] as f64, p[1] as f64);
        let (ax, ay) = (a[0] as f64, a[1] as f64);
        let (bx, by) = (b[0] as f64, b[1] as f64);
        let (vx, vy) = (bx - ax, by - ay);
        let len2 = vx * vx + vy * vy;
        let t = if len2 == 0.0 {
            0.0
        } else {
            (((px - ax) * vx + (py - ay) * vy) / len2).clamp(0.0, 1.0)
        };
        ((px - ax - t * vx).powi(2) + (py - ay - t * vy).powi(2)).sqrt()
    }

    fn distance_to_polyline(p: Point, line: &[Point]) -> f64 {
        if line.len() == 1 {
            return distance_to_segment(p, line[0], line[0]);
        }
        line.windows(2)
            .map(|w| distance_to_segment(p, w[0], w[1]))
            .fold(f64::INFINITY, f64::min)
    }

    /// The staircase a board produces for a straight move of (dx, dy) steps at constant rates.
    fn staircase(from: Point, dx: i64, dy: i64) -> Vec<Point> {
        let n = dx.abs().max(dy.abs());
        (0..=n)
            .map(|k| [from[0] + (dx * k) / n.max(1), from[1] + (dy * k) / n.max(1)])
            .collect()
    }

    #[test]
    fn a_long_staircase_line_keeps_two_points() {
        let path = staircase([0, 0], 100_000, 37_123);
        let kept = simplify(&path, 1.0);
        assert_eq!(kept, vec![[0, 0], [100_000, 37_123]]);
    }

    #[test]
    fn a_square_keeps_its_corners() {
        let mut path = staircase([0, 0], 800, 0);
        path.extend(staircase([800, 0], 0, 800).into_iter().skip(1));
        path.extend(staircase([800, 800], -800, 0).into_iter().skip(1));
        path.extend(staircase([0, 800], 0, -800).into_iter().skip(1));
        // Corners may be cut by up to the tolerance...
        let kept = simplify(&path, 1.0);
        assert_eq!(kept.len(), 5);
        for &p in &path {
            assert!(distance_to_polyline(p, &kept) <= 1.0);
        }
        // ...unless the caller keeps them (the trace does at every command start).
        let mut s = Simplifier::new([0, 0], 1.0);
        let mut kept = vec![[0, 0]];
        for (i, &p) in path.iter().enumerate().skip(1) {
            kept.extend(s.push(p));
            if i % 800 == 0 {
                kept.extend(s.keep_current());
            }
        }
        assert_eq!(kept, vec![[0, 0], [800, 0], [800, 800], [0, 800], [0, 0]]);
    }

    #[test]
    fn a_reversal_keeps_the_turning_point() {
        let mut path = staircase([0, 0], 500, 0);
        path.extend(staircase([500, 0], -300, 0).into_iter().skip(1));
        let kept = simplify(&path, 1.0);
        assert_eq!(kept, vec![[0, 0], [500, 0], [200, 0]]);
    }

    #[test]
    fn a_circle_is_kept_within_tolerance_with_few_points() {
        let r = 4000.0_f64;
        let path: Vec<Point> = (0..=20_000)
            .map(|k| {
                let a = k as f64 / 20_000.0 * std::f64::consts::TAU;
                [(r * a.cos()).round() as i64, (r * a.sin()).round() as i64]
            })
            .collect();
        let kept = simplify(&path, 1.0);
        for &p in &path {
            assert!(distance_to_polyline(p, &kept) <= 1.0 + 1e-9);
        }
        // Chords with a sagitta of 1 on r = 4000 need about π / sqrt(2/4000) ≈ 140 points; the
        // greedy cone and the rounding of the input to whole steps cost a factor of about 3.
        assert!(kept.len() < 500, "{} points kept", kept.len());
    }

    #[test]
    fn zero_tolerance_keeps_every_turn() {
        let path = vec![[0, 0], [1, 0], [2, 1], [3, 1], [4, 2]];
        let kept = simplify(&path, 0.0);
        for &p in &path {
            assert!(distance_to_polyline(p, &kept) <= 1e-9);
        }
    }

    #[test]
    fn changing_tolerance_keeps_the_current_point() {
        let mut s = Simplifier::new([0, 0], 1.0);
        assert_eq!(s.push([5, 0]), None);
        assert_eq!(s.set_tolerance(2.0), Some([5, 0]));
        assert_eq!(s.keep_current(), None);
    }

    proptest! {
        /// Any walk of single steps (what a board produces) stays within tolerance of the output.
        #[test]
        fn every_step_is_within_tolerance(
            steps in proptest::collection::vec((-1i64..=1, -1i64..=1), 1..400),
            tolerance in prop_oneof![Just(0.0), Just(1.0), 0.5f64..8.0],
        ) {
            let mut path = vec![[0i64, 0i64]];
            for (dx, dy) in steps {
                let last = *path.last().unwrap();
                path.push([last[0] + dx, last[1] + dy]);
            }
            let kept = simplify(&path, tolerance);
            prop_assert_eq!(kept[0], path[0]);
            prop_assert_eq!(*kept.last().unwrap(), *path.last().unwrap());
            for &p in &path {
                prop_assert!(distance_to_polyline(p, &kept) <= tolerance + 1e-9);
            }
            for &k in &kept {
                prop_assert!(path.contains(&k));
            }
        }
    }
}
