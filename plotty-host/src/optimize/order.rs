//! The stroke-level passes: joining strokes whose ends meet, greedy nearest-neighbour ordering
//! with free direction, a windowed 2-opt improvement, and merging tiny pen-up hops.

use super::Improve;
use super::cost::PenUpLimits;
use super::kdtree::KdTree;
use crate::import::{Point, Stroke};

/// Joins strokes whose ends lie within `tolerance_mm` of each other, reversing one where that
/// connects them. Returns the joined strokes (chains grow from each unused stroke in file order)
/// and how many joins were made.
pub(crate) fn join(strokes: Vec<Stroke>, tolerance_mm: f64) -> (Vec<Stroke>, usize) {
    let n = strokes.len();
    if n < 2 || tolerance_mm.is_nan() || tolerance_mm < 0.0 {
        return (strokes, 0);
    }
    let tol2 = tolerance_mm * tolerance_mm;
    let mut tree = KdTree::new(&endpoints(&strokes));
    let mut pool: Vec<Option<Stroke>> = strokes.into_iter().map(Some).collect();
    let mut out = Vec::new();
    let mut joins = 0;
    for seed in 0..n {
        let Some(mut chain) = pool[seed].take() else {
            continue;
        };
        tree.remove(2 * seed as u32);
        tree.remove(2 * seed as u32 + 1);
        // Grow forward from the end, then backward from the start.
        for direction in 0..2 {
            if direction == 1 {
                chain.points.reverse();
            }
            while let Some(end) = chain.end() {
                let Some((id, d2)) = tree.nearest(end) else {
                    break;
                };
                if d2 > tol2 {
                    break;
                }
                let t = (id / 2) as usize;
                tree.remove(id & !1);
                tree.remove(id | 1);
                let Some(mut next) = pool.get_mut(t).and_then(Option::take) else {
                    break;
                };
                if id & 1 == 1 {
                    next.points.reverse();
                }
                let skip = usize::from(next.start() == Some(end));
                chain.points.extend_from_slice(&next.points[skip..]);
                joins += 1;
            }
            if direction == 1 {
                chain.points.reverse();
            }
        }
        out.push(chain);
    }
    (out, joins)
}

/// A drawing order: stroke index and whether it is drawn reversed.
pub(crate) type Tour = Vec<(usize, bool)>;

/// Greedy nearest neighbour from `start`: always go to the closest free stroke end next.
pub(crate) fn greedy(strokes: &[Stroke], start: Point) -> Tour {
    let mut tree = KdTree::new(&endpoints(strokes));
    let mut tour = Vec::with_capacity(strokes.len());
    let mut pos = start;
    while let Some((id, _)) = tree.nearest(pos) {
        let t = (id / 2) as usize;
        let reversed = id & 1 == 1;
        tree.remove(id & !1);
        tree.remove(id | 1);
        let s = &strokes[t];
        pos = if reversed { s.start() } else { s.end() }.unwrap_or(pos);
        tour.push((t, reversed));
    }
    tour
}

/// Windowed 2-opt on the tour: reversing a run of strokes (their order and each direction)
/// changes only the two hops at its ends, so each candidate costs O(1). Stops after
/// `max_passes` passes, when a pass gains nothing, or when the candidate budget is spent.
pub(crate) fn two_opt(
    strokes: &[Stroke],
    tour: &mut Tour,
    (start, end): (Point, Option<Point>),
    limits: &PenUpLimits,
    improve: &Improve,
) {
    let Improve {
        window,
        max_passes,
        mut budget,
    } = *improve;
    let n = tour.len();
    if n < 2 || window == 0 {
        return;
    }
    let ends = |&(t, rev): &(usize, bool)| {
        let s = &strokes[t];
        let (a, b) = (s.start().unwrap_or(start), s.end().unwrap_or(start));
        if rev { (b, a) } else { (a, b) }
    };
    let mut entry: Vec<Point> = Vec::with_capacity(n);
    let mut exit: Vec<Point> = Vec::with_capacity(n);
    for step in tour.iter() {
        let (a, b) = ends(step);
        entry.push(a);
        exit.push(b);
    }
    let cost = |a: Point, b: Point| limits.hop_time_s(a.distance_to(b));
    for _ in 0..max_passes {
        let mut gained = 0.0;
        for i in 0..n {
            let prev = if i == 0 { start } else { exit[i - 1] };
            let last = (i + window).min(n);
            for j in i..last {
                if budget == 0 {
                    return;
                }
                budget -= 1;
                let next = if j + 1 < n { Some(entry[j + 1]) } else { end };
                let (old_next, new_next) = match next {
                    Some(q) => (cost(exit[j], q), cost(entry[i], q)),
                    None => (0.0, 0.0),
                };
                let delta = cost(prev, exit[j]) + new_next - cost(prev, entry[i]) - old_next;
                if delta < -1e-12 {
                    tour[i..=j].reverse();
                    entry[i..=j].reverse();
                    exit[i..=j].reverse();
                    for k in i..=j {
                        tour[k].1 = !tour[k].1;
                        std::mem::swap(&mut entry[k], &mut exit[k]);
                    }
                    gained -= delta;
                }
            }
        }
        if gained <= 0.0 {
            break;
        }
    }
}

/// The strokes in tour order, each in its drawing direction.
pub(crate) fn apply(strokes: Vec<Stroke>, tour: &Tour) -> Vec<Stroke> {
    let mut pool: Vec<Option<Stroke>> = strokes.into_iter().map(Some).collect();
    tour.iter()
        .filter_map(|&(t, rev)| {
            let mut s = pool.get_mut(t)?.take()?;
            if rev {
                s.points.reverse();
            }
            Some(s)
        })
        .collect()
}

/// Connects consecutive strokes whose pen-up hop is shorter than `below_mm` (the hop is drawn
/// pen down instead). Returns the strokes and how many hops were merged.
pub(crate) fn merge_hops(strokes: Vec<Stroke>, below_mm: f64) -> (Vec<Stroke>, usize) {
    if below_mm.is_nan() || below_mm <= 0.0 {
        return (strokes, 0);
    }
    let mut out: Vec<Stroke> = Vec::with_capacity(strokes.len());
    let mut merged = 0;
    for s in strokes {
        if let (Some(prev), Some(a)) = (out.last_mut(), s.start())
            && let Some(b) = prev.end()
            && b.distance_to(a) < below_mm
        {
            let skip = usize::from(a == b);
            prev.points.extend_from_slice(&s.points[skip..]);
            merged += 1;
            continue;
        }
        out.push(s);
    }
    (out, merged)
}

/// Start and end of every stroke: id `2i` is stroke `i`'s start, `2i + 1` its end.
fn endpoints(strokes: &[Stroke]) -> Vec<Point> {
    let nan = Point::new(f64::NAN, f64::NAN);
    strokes
        .iter()
        .flat_map(|s| [s.start().unwrap_or(nan), s.end().unwrap_or(nan)])
        .collect()
}
