//! A static 2-d tree over points with removal, for nearest-neighbour queries while strokes are
//! used up. Built once in O(n log n) (median splits on the wider axis, stored implicitly in one
//! array); each subtree keeps a count of live points so emptied subtrees are skipped, which keeps
//! queries fast whatever the points' distribution (a uniform grid degrades on clusters).

use crate::import::Point;

/// Nearest-neighbour index over points identified by `u32` ids (`0..n`).
#[derive(Clone, Debug)]
pub(crate) struct KdTree {
    /// Coordinates in tree order.
    xs: Vec<f64>,
    ys: Vec<f64>,
    /// The id stored at each slot.
    ids: Vec<u32>,
    /// Split axis of the subtree rooted at each slot: 0 = x, 1 = y.
    axis: Vec<u8>,
    /// Live points in the subtree rooted at each slot.
    live: Vec<u32>,
    /// Whether the point at each slot is live.
    alive: Vec<bool>,
    /// Slot of each id.
    slot_of: Vec<u32>,
}

impl KdTree {
    /// Builds the tree; `points[i]` gets id `i`. Non-finite points are never returned.
    pub(crate) fn new(points: &[Point]) -> Self {
        let n = points.len();
        let mut order: Vec<u32> = (0..n as u32).collect();
        let mut axis = vec![0u8; n];
        build(points, &mut order, 0, &mut axis);
        let xs: Vec<f64> = order.iter().map(|&i| points[i as usize].x_mm).collect();
        let ys: Vec<f64> = order.iter().map(|&i| points[i as usize].y_mm).collect();
        let alive: Vec<bool> = order
            .iter()
            .map(|&i| points[i as usize].is_finite())
            .collect();
        let mut slot_of = vec![0u32; n];
        for (slot, &id) in order.iter().enumerate() {
            slot_of[id as usize] = slot as u32;
        }
        let mut live = vec![0u32; n];
        count_live(&alive, &mut live, 0, n);
        Self {
            xs,
            ys,
            ids: order,
            axis,
            live,
            alive,
            slot_of,
        }
    }

    /// Number of live points.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        if self.ids.is_empty() {
            0
        } else {
            self.live[self.ids.len() / 2] as usize
        }
    }

    /// Removes the point with `id` (no effect if already removed or unknown).
    pub(crate) fn remove(&mut self, id: u32) {
        let Some(&slot) = self.slot_of.get(id as usize) else {
            return;
        };
        let slot = slot as usize;
        if !self.alive[slot] {
            return;
        }
        self.alive[slot] = false;
        let (mut lo, mut hi) = (0, self.ids.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            self.live[mid] -= 1;
            if slot == mid {
                break;
            } else if slot < mid {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
    }

    /// The live point nearest to `q`: its id and squared distance.
    pub(crate) fn nearest(&self, q: Point) -> Option<(u32, f64)> {
        let mut best = (u32::MAX, f64::INFINITY);
        self.search(q, 0, self.ids.len(), &mut best);
        (best.0 != u32::MAX).then_some(best)
    }

    fn search(&self, q: Point, lo: usize, hi: usize, best: &mut (u32, f64)) {
        if lo >= hi {
            return;
        }
        let mid = (lo + hi) / 2;
        if self.live[mid] == 0 {
            return;
        }
        let (px, py) = (self.xs[mid], self.ys[mid]);
        if self.alive[mid] {
            let d2 = (px - q.x_mm) * (px - q.x_mm) + (py - q.y_mm) * (py - q.y_mm);
            if d2 < best.1 || (d2 == best.1 && self.ids[mid] < best.0) {
                *best = (self.ids[mid], d2);
            }
        }
        let diff = if self.axis[mid] == 0 {
            q.x_mm - px
        } else {
            q.y_mm - py
        };
        let (near, far) = if diff < 0.0 {
            ((lo, mid), (mid + 1, hi))
        } else {
            ((mid + 1, hi), (lo, mid))
        };
        self.search(q, near.0, near.1, best);
        if diff * diff <= best.1 {
            self.search(q, far.0, far.1, best);
        }
    }
}

fn build(points: &[Point], ids: &mut [u32], offset: usize, axis: &mut [u8]) {
    if ids.len() <= 1 {
        return;
    }
    let (mut minx, mut maxx, mut miny, mut maxy) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &i in ids.iter() {
        let p = points[i as usize];
        minx = minx.min(p.x_mm);
        maxx = maxx.max(p.x_mm);
        miny = miny.min(p.y_mm);
        maxy = maxy.max(p.y_mm);
    }
    let ax = u8::from(maxy - miny > maxx - minx);
    let mid = ids.len() / 2;
    let key = |i: &u32| {
        let p = points[*i as usize];
        if ax == 0 { p.x_mm } else { p.y_mm }
    };
    ids.select_nth_unstable_by(mid, |a, b| key(a).total_cmp(&key(b)));
    axis[offset + mid] = ax;
    let (left, rest) = ids.split_at_mut(mid);
    build(points, left, offset, axis);
    build(points, &mut rest[1..], offset + mid + 1, axis);
}

fn count_live(alive: &[bool], live: &mut [u32], lo: usize, hi: usize) -> u32 {
    if lo >= hi {
        return 0;
    }
    let mid = (lo + hi) / 2;
    let n = u32::from(alive[mid])
        + count_live(alive, live, lo, mid)
        + count_live(alive, live, mid + 1, hi);
    live[mid] = n;
    n
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn matches_brute_force(
            pts in prop::collection::vec((-100.0f64..100.0, -100.0f64..100.0), 1..200),
            queries in prop::collection::vec((-120.0f64..120.0, -120.0f64..120.0), 1..20),
            removals in prop::collection::vec(0usize..200, 0..150),
        ) {
            let points: Vec<Point> = pts.iter().map(|&(x, y)| Point::new(x, y)).collect();
            let mut tree = KdTree::new(&points);
            let mut alive = vec![true; points.len()];
            for r in removals {
                let id = r % points.len();
                tree.remove(id as u32);
                alive[id] = false;
            }
            prop_assert_eq!(tree.len(), alive.iter().filter(|a| **a).count());
            for (qx, qy) in queries {
                let q = Point::new(qx, qy);
                let brute = points.iter().enumerate().filter(|(i, _)| alive[*i])
                    .map(|(_, p)| (p.x_mm - qx).powi(2) + (p.y_mm - qy).powi(2))
                    .fold(f64::INFINITY, f64::min);
                match tree.nearest(q) {
                    Some((id, d2)) => {
                        prop_assert!(alive[id as usize]);
                        prop_assert_eq!(d2, brute);
                    }
                    None => prop_assert!(brute.is_infinite()),
                }
            }
        }
    }
}
