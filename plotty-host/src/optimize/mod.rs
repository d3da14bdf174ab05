//! Stroke optimisation: fewer pen lifts and less pen-up travel, per layer (never across layers:
//! layer order is the user's pen order).
//!
//! For each plotted layer, in order, starting where the previous layer ended (home for the
//! first):
//! 1. **clean**: repeated vertices are dropped, and so are strokes of zero length or with
//!    non-finite coordinates;
//! 2. **join** strokes whose ends lie within [`OptimizeOptions::join_tolerance_mm`], reversing
//!    one where that connects them;
//! 3. **order**: greedy nearest neighbour over both ends of every stroke (a 2-d tree with
//!    removal, O(n log n)), each stroke drawn from the end reached first, then a windowed 2-opt
//!    pass that reverses runs of strokes where that shortens the pen-up time;
//! 4. **merge** pen-up hops shorter than [`OptimizeOptions::merge_hops_below_mm`] into pen-down
//!    moves.
//!
//! The result is never worse than the file order: if ordering did not cut both pen-up time and
//! distance, the layer (or, rarely, the whole drawing) keeps its file order (still cleaned and
//! merged). The return home after
//! the last layer is counted, and so is each layer's first hop from where the last one ended.
//!
//! [`OptimizeOptions::keep_order`] draws strokes exactly as in the file (order, direction, no
//! joins, no merges); only repeated vertices and zero-length strokes are dropped.

mod cost;
mod kdtree;
mod order;

use crate::import::{Drawing, Point, Stroke};

pub use self::cost::{PenUpLimits, PenUpStats};

/// Settings of the windowed 2-opt improvement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Improve {
    /// Longest run of strokes reversed in one move.
    pub window: usize,
    /// Most passes over the tour.
    pub max_passes: u32,
    /// Most candidate moves tried per layer (bounds the time on huge layers).
    pub budget: u64,
}

/// Optimisation settings. [`OptimizeOptions::default`] does everything.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimizeOptions {
    /// Reorder strokes and choose their direction. Off: file order and direction.
    pub reorder: bool,
    /// Join strokes whose ends are this close (mm); `None` joins nothing.
    pub join_tolerance_mm: Option<f64>,
    /// Draw pen-up hops shorter than this (mm) pen down; 0 merges nothing. The default,
    /// 0.15 mm, is the AxiDraw software's `min_gap` (0.006 in).
    pub merge_hops_below_mm: f64,
    /// The 2-opt improvement after the greedy order; `None` skips it.
    pub improve: Option<Improve>,
    /// Pen-up limits: the cost the ordering minimises, and the estimates in the report.
    pub limits: PenUpLimits,
}

/// What optimisation did to one layer.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LayerReport {
    /// Layer name.
    pub layer: String,
    /// Pen-up travel in file order.
    pub before: PenUpStats,
    /// Pen-up travel after optimisation.
    pub after: PenUpStats,
    /// Strokes joined end to end.
    pub joined: usize,
    /// Short pen-up hops drawn pen down instead.
    pub merged_hops: usize,
    /// Strokes dropped (zero length or non-finite).
    pub dropped: usize,
    /// True if the optimised order was no better and the file order was kept.
    pub kept_file_order: bool,
}

/// What optimisation did to a drawing.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct OptimizeReport {
    /// Per plotted layer, in order.
    pub layers: Vec<LayerReport>,
    /// The whole drawing in file order, from home and back.
    pub before: PenUpStats,
    /// The whole drawing after optimisation, from home and back.
    pub after: PenUpStats,
}

impl OptimizeOptions {
    /// Strokes exactly as in the file: no reordering, reversing, joining or merging.
    pub fn keep_order() -> Self {
        Self {
            reorder: false,
            join_tolerance_mm: None,
            merge_hops_below_mm: 0.0,
            improve: None,
            ..Self::default()
        }
    }
}

impl Default for Improve {
    fn default() -> Self {
        Self {
            window: 64,
            max_passes: 20,
            budget: 30_000_000,
        }
    }
}

impl Default for OptimizeOptions {
    fn default() -> Self {
        Self {
            reorder: true,
            join_tolerance_mm: Some(0.01),
            merge_hops_below_mm: 0.15,
            improve: Some(Improve::default()),
            limits: PenUpLimits::default(),
        }
    }
}

/// Optimises every plotted layer of `drawing` in place (documentation layers are left alone).
pub fn optimize(drawing: &mut Drawing, options: &OptimizeOptions) -> OptimizeReport {
    let plotted: Vec<usize> = (0..drawing.layers.len())
        .filter(|&i| drawing.layers[i].is_plotted())
        .collect();
    let originals: Vec<Vec<Stroke>> = plotted
        .iter()
        .map(|&i| std::mem::take(&mut drawing.layers[i].strokes))
        .collect();
    let mut report = optimize_layers(drawing, &plotted, &originals, options);
    // Each layer is no worse than its file order from where the previous one ended, but a
    // layer ending elsewhere can lengthen the next one's first hop: never let the whole
    // drawing get worse than the file order.
    if report.after.distance_mm > report.before.distance_mm
        || report.after.travel_s > report.before.travel_s
    {
        let file_order = OptimizeOptions {
            reorder: false,
            join_tolerance_mm: None,
            improve: None,
            ..*options
        };
        report = optimize_layers(drawing, &plotted, &originals, &file_order);
    }
    report
}

fn optimize_layers(
    drawing: &mut Drawing,
    plotted: &[usize],
    originals: &[Vec<Stroke>],
    options: &OptimizeOptions,
) -> OptimizeReport {
    let mut report = OptimizeReport::default();
    let (mut pos_before, mut pos_after) = (Point::ORIGIN, Point::ORIGIN);
    for (k, (&i, strokes)) in plotted.iter().zip(originals).enumerate() {
        let end = (k + 1 == plotted.len()).then_some(Point::ORIGIN);
        let layer = &mut drawing.layers[i];
        let before = stats(&mut pos_before, strokes, end, &options.limits);
        let (optimized, mut lr) = optimize_strokes(strokes.clone(), pos_after, end, options);
        lr.before = before;
        lr.after = stats(&mut pos_after, &optimized, end, &options.limits);
        lr.layer = layer.name.clone();
        layer.strokes = optimized;
        report.before.add(&lr.before);
        report.after.add(&lr.after);
        report.layers.push(lr);
    }
    report
}

/// Optimises one layer's strokes, drawn from `start`; `end` is where the pen goes afterwards
/// (home after the last layer), `None` if that is free. The report's `before`/`after` are left
/// empty for the caller.
pub fn optimize_strokes(
    strokes: Vec<Stroke>,
    start: Point,
    end: Option<Point>,
    options: &OptimizeOptions,
) -> (Vec<Stroke>, LayerReport) {
    let mut report = LayerReport::default();
    let (strokes, dropped) = clean(strokes);
    report.dropped = dropped;
    if !options.reorder {
        let (strokes, merged) = order::merge_hops(strokes, options.merge_hops_below_mm);
        report.merged_hops = merged;
        report.kept_file_order = true;
        return (strokes, report);
    }
    let file_order = strokes.clone();
    let (joined, joins) = match options.join_tolerance_mm {
        Some(tol) => order::join(strokes, tol),
        None => (strokes, 0),
    };
    let mut tour = order::greedy(&joined, start);
    if let Some(improve) = options.improve {
        order::two_opt(&joined, &mut tour, (start, end), &options.limits, &improve);
    }
    let (optimized, merged) =
        order::merge_hops(order::apply(joined, &tour), options.merge_hops_below_mm);
    let (file_order, file_merged) = order::merge_hops(file_order, options.merge_hops_below_mm);
    let cost = |s: &[Stroke]| {
        let mut p = start;
        stats(&mut p, s, end, &options.limits)
    };
    let (a, b) = (cost(&optimized), cost(&file_order));
    if a.travel_s <= b.travel_s && a.distance_mm <= b.distance_mm {
        report.joined = joins;
        report.merged_hops = merged;
        (optimized, report)
    } else {
        report.merged_hops = file_merged;
        report.kept_file_order = true;
        (file_order, report)
    }
}

/// Pen-up statistics of drawing `strokes` in order from `*position`, then going to `end`.
pub fn pen_up_stats(
    position: &mut Point,
    strokes: &[Stroke],
    end: Option<Point>,
    limits: &PenUpLimits,
) -> PenUpStats {
    stats(position, strokes, end, limits)
}

/// Distance from `p` to the segment `a`–`b`.
pub fn point_segment_distance(p: Point, a: Point, b: Point) -> f64 {
    let (dx, dy) = (b.x_mm - a.x_mm, b.y_mm - a.y_mm);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p.x_mm - a.x_mm) * dx + (p.y_mm - a.y_mm) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let q = Point::new(a.x_mm + t * dx, a.y_mm + t * dy);
    p.distance_to(q)
}

fn stats(
    position: &mut Point,
    strokes: &[Stroke],
    end: Option<Point>,
    limits: &PenUpLimits,
) -> PenUpStats {
    let mut s = PenUpStats::default();
    s.add_strokes(position, strokes, limits);
    if let Some(e) = end {
        s.add_hop(*position, e, limits);
        *position = e;
    }
    s
}

/// Drops repeated vertices, and strokes of zero length or with non-finite coordinates.
fn clean(strokes: Vec<Stroke>) -> (Vec<Stroke>, usize) {
    let n = strokes.len();
    let out: Vec<Stroke> = strokes
        .into_iter()
        .filter(|s| s.points.iter().all(|p| p.is_finite()))
        .map(|mut s| {
            s.points.dedup();
            s
        })
        .filter(|s| s.points.len() >= 2)
        .collect();
    let dropped = n - out.len();
    (out, dropped)
}

#[cfg(test)]
mod tests;
