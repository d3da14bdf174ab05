//! The benchmark drawings (`benches/drawings/*.svg`): where to find them and a tiny
//! reader for their format. Test-only: the files are plain `<polyline points="x,y x,y …"/>`
//! elements in millimetres, so no SVG library is needed. Also compiled into `benches/planner.rs`
//! (through `#[path]`).

// Test code: a failed expectation is a failed test (HELPERS.md: tests may unwrap).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use plotty_motion::kinematics::Point;
use plotty_motion::plan::{
    Action, PathItem, Pen, PlanError, PlannedItem, Planner, PlannerConfig, PlannerSlot, Tag,
};

/// The four benchmark drawings, by file stem.
pub(crate) const DRAWINGS: [&str; 4] = [
    "random_walk_100k",
    "spiral_10k",
    "hatch_200",
    "straight_fine_10k",
];

/// The folder holding the benchmark SVGs: `benches/drawings/` of this repository (shipped with
/// it, so a clone alone runs every test and benchmark). Found from the compiling package's folder
/// upwards, since `plotty-motion`'s example includes this file too.
pub(crate) fn bench_dir() -> PathBuf {
    let package = Path::new(env!("CARGO_MANIFEST_DIR"));
    package
        .ancestors()
        .map(|a| a.join("benches/drawings"))
        .find(|d| d.join("spiral_10k.svg").is_file())
        .unwrap_or_else(|| panic!("benches/drawings/ not found above {}", package.display()))
}

/// The polylines of drawing `name` (file stem), in file order.
pub(crate) fn load(name: &str) -> Vec<Vec<Point>> {
    let path = bench_dir().join(format!("{name}.svg"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_polylines(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `<polyline points="…">` of `svg`, in order.
pub(crate) fn parse_polylines(svg: &str) -> Result<Vec<Vec<Point>>, String> {
    let mut paths = Vec::new();
    let mut rest = svg;
    while let Some(at) = rest.find("<polyline") {
        rest = &rest[at..];
        let attr = rest.find("points=\"").ok_or("a polyline without points")?;
        let body = &rest[attr + 8..];
        let end = body.find('"').ok_or("unterminated points attribute")?;
        let mut points = Vec::new();
        for pair in body[..end].split_whitespace() {
            let (x, y) = pair
                .split_once(',')
                .ok_or_else(|| format!("bad point {pair:?}"))?;
            let x: f64 = x.parse().map_err(|e| format!("bad x in {pair:?}: {e}"))?;
            let y: f64 = y.parse().map_err(|e| format!("bad y in {pair:?}: {e}"))?;
            points.push(Point::new(x, y));
        }
        paths.push(points);
        rest = &body[end..];
    }
    Ok(paths)
}

/// Total number of segments (points minus one per polyline).
pub(crate) fn segment_count(paths: &[Vec<Point>]) -> usize {
    paths.iter().map(|p| p.len().saturating_sub(1)).sum()
}

/// The plot of `paths` as saxi (and the AxiDraw software) structure it: from home, for each
/// path a pen-up move to its start, pen down, the path, pen up; at the end a pen-up move home.
/// Tags number the strokes and vertices.
pub(crate) fn plot_items(paths: &[Vec<Point>]) -> Vec<PathItem> {
    let mut items = Vec::with_capacity(segment_count(paths) + 4 * paths.len() + 1);
    for (stroke, path) in paths.iter().enumerate() {
        let Some(first) = path.first() else { continue };
        let stroke = stroke as u32;
        items.push(PathItem::Segment {
            to: *first,
            pen: Pen::Up,
            tag: Tag { stroke, vertex: 0 },
        });
        items.push(PathItem::Action(Action::PenDown));
        for (vertex, &to) in path.iter().enumerate().skip(1) {
            items.push(PathItem::Segment {
                to,
                pen: Pen::Down,
                tag: Tag {
                    stroke,
                    vertex: vertex as u32,
                },
            });
        }
        items.push(PathItem::Action(Action::PenUp));
    }
    items.push(PathItem::Segment {
        to: Point::ORIGIN,
        pen: Pen::Up,
        tag: Tag::default(),
    });
    items
}

/// What planning a plot gave.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PlanSummary {
    /// Sum of the planned blocks' durations, seconds (pen moves not included).
    pub(crate) motion_s: f64,
    /// Planned blocks.
    pub(crate) blocks: usize,
    /// Pen actions passed through.
    pub(crate) actions: usize,
    /// Blocks a full window released before their speeds were final.
    pub(crate) forced_releases: u64,
}

/// Plans `items` from home at rest with a `window`-slot planner, streaming: pop whatever is
/// final after each push, pop the oldest when the window is full, then finish and drain.
pub(crate) fn plan(config: PlannerConfig, items: &[PathItem], window: usize) -> PlanSummary {
    let mut slots = vec![PlannerSlot::EMPTY; window];
    let mut planner = Planner::new(config, Point::ORIGIN, &mut slots).expect("valid window");
    let mut summary = PlanSummary::default();
    let take = |planned: PlannedItem, summary: &mut PlanSummary| match planned {
        PlannedItem::Block(b) => {
            summary.motion_s += b.duration_s();
            summary.blocks += 1;
        }
        PlannedItem::Action(_) => summary.actions += 1,
    };
    for &item in items {
        loop {
            match planner.push(item) {
                Ok(()) => break,
                Err(PlanError::WindowFull) => {
                    let planned = planner.pop().expect("a full window releases");
                    take(planned, &mut summary);
                }
                Err(e) => panic!("planner refused {item:?}: {e}"),
            }
        }
        while let Some(planned) = planner.pop() {
            take(planned, &mut summary);
        }
    }
    planner.finish();
    while let Some(planned) = planner.pop() {
        take(planned, &mut summary);
    }
    summary.forced_releases = planner.forced_releases();
    summary
}
