//! The plot program: an optimised [`Drawing`] as the exact sequence of motions and pen actions
//! the machine performs, and where to pick it up again after an interruption.
//!
//! For each plotted layer, in order:
//!
//! 1. [`Step::Layer`]: the following items use this layer's limits (`+S` pen-down speed).
//! 2. A `!` layer (pen change): a pen-up move home (the carriage parks out of the way) and a
//!    planned [`Action::Pause`], where the plot waits for the user.
//! 3. Per stroke: a pen-up move to its first vertex (tagged vertex 0), pen down, one pen-down
//!    segment per following vertex (tagged with that vertex), pen up.
//! 4. `+D`: a dwell after the layer.
//!
//! The end: a pen-up move home. The motors stay on, holding the carriage there.
//!
//! Tags identify every motion: [`Tag::stroke`] is the stroke's index in the whole program (all
//! layers), [`Tag::vertex`] the vertex the motion heads for; the parking moves carry
//! [`PARK_VERTEX`] (the final one the stroke index [`Program::stroke_count`]). A [`Checkpoint`]
//! is a tag, its pen state and an exact machine position: [`Program::items`] continues from one
//! (pen-up move to the point if needed, pen down, the rest of the stroke from that exact
//! position, then everything after it).

use std::ops::Range;

use plotty_motion::kinematics::{Kinematics, MotorSteps};
use plotty_motion::plan::{Action, PathItem, Pen, Tag};
use plotty_motion::time::Duration;
use serde::{Deserialize, Serialize};

use crate::import::{Color, Drawing, Point};

/// [`Tag::vertex`] of the pen-up moves that park the carriage at home (before a pen change and
/// at the end).
pub const PARK_VERTEX: u32 = u32::MAX;

/// [`Tag::vertex`] of the pen-up move that takes the carriage from wherever the board says it is
/// to the point where a resumed stroke continues (before the pen goes down there). A checkpoint
/// taken during it is the checkpoint the run resumed from: nothing was drawn yet.
pub const REENTRY_VERTEX: u32 = u32::MAX - 1;

/// An optimised drawing as a plot program. See the [module documentation](self).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Program {
    layers: Vec<ProgramLayer>,
    strokes: Vec<ProgramStroke>,
}

/// One plotted layer of a [`Program`].
#[derive(Clone, Debug, PartialEq)]
pub struct ProgramLayer {
    /// The layer's name as written in the file.
    pub name: String,
    /// Its position among the document's layers (0-based, as [`crate::import::Layer::index`]).
    pub index: usize,
    /// Its AxiDraw layer number, if the name has one.
    pub number: Option<u32>,
    /// The stroke colour it uses most.
    pub color: Color,
    /// `!`: park and wait for the user (pen change) before this layer.
    pub pause_before: bool,
    /// `+S`: pen-down speed, percent (AxiDraw `speed_pendown`).
    pub speed_pct: Option<u8>,
    /// `+H`: pen-down height, percent (AxiDraw `pen_pos_down`).
    pub height_pct: Option<u8>,
    /// `+D`: wait after the layer.
    pub delay_after: Duration,
    /// Its strokes, as program-wide stroke indices.
    pub strokes: Range<u32>,
    /// Pen-down length, mm.
    pub drawn_mm: f64,
}

/// One stroke: its layer and vertices.
#[derive(Clone, Debug, PartialEq)]
struct ProgramStroke {
    layer: usize,
    points: Vec<Point>,
}

/// One item of a program.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Step {
    /// The items that follow belong to layer `n` (an index into [`Program::layers`]) and use its
    /// limits. The machine is at rest with the pen up.
    Layer(usize),
    /// A motion or action for the planner.
    Path(PathItem),
}

/// Where a plot stands: the next motion to make (its stroke, the vertex it heads for and its
/// pen state) and the exact machine position. Saved by the daemon at least every second and at
/// every stroke end; [`Program::items`] continues from it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Layer of the motion (index into [`Program::layers`]).
    pub layer: usize,
    /// Program-wide stroke index ([`Program::stroke_count`] for the final move home).
    pub stroke: u32,
    /// Vertex the motion heads for ([`PARK_VERTEX`] for a move home).
    pub vertex: u32,
    /// Whether the motion draws.
    pub pen_down: bool,
    /// Machine position, motor steps `[m1, m2]` as the firmware's step counters give them.
    pub position: [i32; 2],
}

/// Where [`Program::items`] starts.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Start {
    /// From the first layer, wherever the carriage is (home for a fresh plot).
    Beginning,
    /// From a checkpoint, wherever the carriage is (the board tells): a pen-up move takes it to
    /// the checkpoint's position first when the plot continues with the pen down there.
    At(Checkpoint),
}

/// The items of a program in order; see [`Program::items`].
#[derive(Clone, Debug)]
pub struct Steps<'a> {
    program: &'a Program,
    state: State,
    /// Where a resumed stroke continues ([`State::Reenter`]).
    reentry: Point,
}

/// What [`Steps`] emits next.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    LayerStart(usize),
    /// Park before the pen change of the layer whose first stroke is `s`.
    Park(u32),
    Pause(u32),
    Travel(u32),
    /// A resumed stroke `s`: pen-up to the point it stopped at, then lower the pen there and
    /// draw on to vertex `v`.
    Reenter(u32, u32),
    Lower(u32, u32),
    Draw(u32, u32),
    /// Stroke `s` is done: the next stroke of its layer, or the layer's end.
    Next(u32),
    Dwell(usize),
    Home,
    Done,
}

impl Program {
    /// The program of `drawing`'s plotted layers, in their current stroke order (optimise
    /// first). Strokes without vertices are left out, and so are non-finite vertices.
    pub fn new(drawing: &Drawing) -> Self {
        let mut layers = Vec::new();
        let mut strokes = Vec::new();
        for layer in drawing.layers.iter().filter(|l| l.is_plotted()) {
            let first = stroke_index(strokes.len());
            let mut drawn_mm = 0.0;
            for s in &layer.strokes {
                let points: Vec<Point> =
                    s.points.iter().copied().filter(|p| p.is_finite()).collect();
                if points.is_empty() {
                    continue;
                }
                drawn_mm += points
                    .windows(2)
                    .map(|w| w[0].distance_to(w[1]))
                    .sum::<f64>();
                strokes.push(ProgramStroke {
                    layer: layers.len(),
                    points,
                });
            }
            let end = stroke_index(strokes.len());
            if end == first {
                continue;
            }
            layers.push(ProgramLayer {
                name: layer.name.clone(),
                index: layer.index,
                number: layer.number,
                color: layer.color,
                pause_before: layer.pause_before,
                speed_pct: layer.speed_pct,
                height_pct: layer.height_pct,
                delay_after: Duration::from_millis(u64::from(layer.delay_after_ms.unwrap_or(0))),
                strokes: first..end,
                drawn_mm,
            });
        }
        Self { layers, strokes }
    }

    /// The plotted layers, in order.
    pub fn layers(&self) -> &[ProgramLayer] {
        &self.layers
    }

    /// Number of strokes over all layers (also the stroke index of the final move home).
    pub fn stroke_count(&self) -> u32 {
        stroke_index(self.strokes.len())
    }

    /// Whether there is nothing to draw.
    pub fn is_empty(&self) -> bool {
        self.strokes.is_empty()
    }

    /// The vertices of stroke `stroke` (program-wide index).
    pub fn stroke(&self, stroke: u32) -> Option<&[Point]> {
        self.strokes
            .get(usize::try_from(stroke).ok()?)
            .map(|s| s.points.as_slice())
    }

    /// The layer (index into [`layers`](Self::layers)) of a motion tagged `tag`: the stroke's
    /// layer, the last layer for the final move home, `None` for a tag not from this program.
    pub fn layer_of(&self, tag: Tag) -> Option<usize> {
        if tag.stroke == self.stroke_count() {
            return self.layers.len().checked_sub(1);
        }
        self.strokes
            .get(usize::try_from(tag.stroke).ok()?)
            .map(|s| s.layer)
    }

    /// The checkpoint of a motion tagged `tag` with pen state `pen`, the machine at `position`.
    /// `None` for a tag not from this program.
    pub fn checkpoint(&self, tag: Tag, pen: Pen, position: MotorSteps) -> Option<Checkpoint> {
        Some(Checkpoint {
            layer: self.layer_of(tag)?,
            stroke: tag.stroke,
            vertex: tag.vertex,
            pen_down: pen == Pen::Down,
            position: [position.m1, position.m2],
        })
    }

    /// All pen-down polylines in plot order, per layer (for previews and checks).
    pub fn polylines(&self) -> Vec<Vec<Vec<Point>>> {
        self.layers
            .iter()
            .map(|l| {
                self.strokes_of(l)
                    .iter()
                    .map(|s| s.points.clone())
                    .collect()
            })
            .collect()
    }

    fn strokes_of(&self, layer: &ProgramLayer) -> &[ProgramStroke] {
        let (a, b) = (layer.strokes.start as usize, layer.strokes.end as usize);
        self.strokes.get(a..b).unwrap_or(&[])
    }

    /// The program's items from `start`, without a leading layer marker when resuming (see
    /// [`items`](Self::items)). The carriage may be anywhere with the pen up (`kinematics`
    /// converts positions to millimetres): a pen-down checkpoint continues with a pen-up move to
    /// its position ([`REENTRY_VERTEX`]), the pen lowered there and the rest of its stroke; a
    /// pen-up checkpoint goes straight to its motion's target. A checkpoint that does not belong
    /// to this program gives no items.
    fn steps(&self, start: Start, kinematics: Kinematics) -> Steps<'_> {
        let (state, reentry) = match start {
            Start::Beginning if self.layers.is_empty() => (State::Done, Point::ORIGIN),
            Start::Beginning => (State::LayerStart(0), Point::ORIGIN),
            Start::At(c) => (
                self.resume_state(&c, kinematics),
                kinematics.to_point(MotorSteps::new(c.position[0], c.position[1])),
            ),
        };
        Steps {
            program: self,
            state,
            reentry,
        }
    }

    /// The program's items from `start`, always led by a [`Step::Layer`] (a resumed program
    /// gets its checkpoint's layer first, so the right limits apply). This is what planners and
    /// runners consume.
    pub fn items(&self, start: Start, kinematics: Kinematics) -> LedSteps<'_> {
        let steps = self.steps(start, kinematics);
        let lead = match start {
            Start::At(c) if steps.state != State::Done => self
                .layer_of(Tag {
                    stroke: c.stroke,
                    vertex: 0,
                })
                .map(Step::Layer),
            _ => None,
        };
        LedSteps { lead, steps }
    }

    /// The state a checkpoint continues in.
    fn resume_state(&self, c: &Checkpoint, kinematics: Kinematics) -> State {
        let n = self.stroke_count();
        if c.stroke == n {
            return if self.layers.is_empty() {
                State::Done
            } else {
                State::Home
            };
        }
        let Some(points) = self.stroke(c.stroke) else {
            return State::Done;
        };
        if c.vertex == PARK_VERTEX {
            let first_of_layer = self
                .layer_of(Tag {
                    stroke: c.stroke,
                    vertex: 0,
                })
                .and_then(|l| self.layers.get(l))
                .is_some_and(|l| l.strokes.start == c.stroke && l.pause_before);
            return if first_of_layer {
                State::Park(c.stroke)
            } else {
                State::Travel(c.stroke)
            };
        }
        if !c.pen_down || c.vertex == 0 {
            return State::Travel(c.stroke);
        }
        let last = u32::try_from(points.len().saturating_sub(1)).unwrap_or(u32::MAX);
        if c.vertex > last {
            return State::Next(c.stroke);
        }
        if c.vertex == last {
            // Nothing left but the way to the last vertex: skip it if the machine is already
            // there (within one step), rather than dropping the pen for a dot.
            let here = kinematics.to_point(MotorSteps::new(c.position[0], c.position[1]));
            let end = points.get(last as usize).copied().unwrap_or(here);
            if here.distance_to(end) <= 1.0 / kinematics.steps_per_mm() {
                return State::Next(c.stroke);
            }
        }
        State::Reenter(c.stroke, c.vertex)
    }
}

impl Steps<'_> {
    fn layer_of_stroke(&self, s: u32) -> usize {
        self.program
            .strokes
            .get(s as usize)
            .map_or(0, |st| st.layer)
    }

    fn point(&self, s: u32, v: u32) -> Option<Point> {
        self.program
            .strokes
            .get(s as usize)
            .and_then(|st| st.points.get(v as usize))
            .copied()
    }
}

impl Iterator for Steps<'_> {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        let program = self.program;
        loop {
            let (item, next) = match self.state {
                State::Done => return None,
                State::LayerStart(l) => {
                    let Some(layer) = program.layers.get(l) else {
                        self.state = State::Home;
                        continue;
                    };
                    let s = layer.strokes.start;
                    let next = if layer.pause_before {
                        State::Park(s)
                    } else {
                        State::Travel(s)
                    };
                    (Some(Step::Layer(l)), next)
                }
                State::Park(s) => (
                    Some(segment(Point::ORIGIN, Pen::Up, s, PARK_VERTEX)),
                    State::Pause(s),
                ),
                State::Pause(s) => (
                    Some(Step::Path(PathItem::Action(Action::Pause))),
                    State::Travel(s),
                ),
                State::Travel(s) => match self.point(s, 0) {
                    Some(p) => (Some(segment(p, Pen::Up, s, 0)), State::Lower(s, 1)),
                    None => (None, State::Next(s)),
                },
                State::Reenter(s, v) => (
                    Some(segment(self.reentry, Pen::Up, s, REENTRY_VERTEX)),
                    State::Lower(s, v),
                ),
                State::Lower(s, v) => (
                    Some(Step::Path(PathItem::Action(Action::PenDown))),
                    State::Draw(s, v),
                ),
                State::Draw(s, v) => match self.point(s, v) {
                    Some(p) => (Some(segment(p, Pen::Down, s, v)), State::Draw(s, v + 1)),
                    None => (
                        Some(Step::Path(PathItem::Action(Action::PenUp))),
                        State::Next(s),
                    ),
                },
                State::Next(s) => {
                    let l = self.layer_of_stroke(s);
                    let end = program.layers.get(l).map_or(0, |layer| layer.strokes.end);
                    let next = if s + 1 < end {
                        State::Travel(s + 1)
                    } else {
                        State::Dwell(l)
                    };
                    (None, next)
                }
                State::Dwell(l) => {
                    let delay = program
                        .layers
                        .get(l)
                        .map_or(Duration::ZERO, |layer| layer.delay_after);
                    let next = if l + 1 < program.layers.len() {
                        State::LayerStart(l + 1)
                    } else {
                        State::Home
                    };
                    let item = (delay > Duration::ZERO)
                        .then_some(Step::Path(PathItem::Action(Action::Dwell(delay))));
                    (item, next)
                }
                State::Home => (
                    Some(segment(
                        Point::ORIGIN,
                        Pen::Up,
                        program.stroke_count(),
                        PARK_VERTEX,
                    )),
                    State::Done,
                ),
            };
            self.state = next;
            if let Some(item) = item {
                return Some(item);
            }
        }
    }
}

/// [`Steps`] with a leading [`Step::Layer`] when resuming; what [`Program::items`] returns.
#[derive(Clone, Debug)]
pub struct LedSteps<'a> {
    lead: Option<Step>,
    steps: Steps<'a>,
}

impl Iterator for LedSteps<'_> {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        self.lead.take().or_else(|| self.steps.next())
    }
}

fn segment(to: Point, pen: Pen, stroke: u32, vertex: u32) -> Step {
    Step::Path(PathItem::Segment {
        to,
        pen,
        tag: Tag { stroke, vertex },
    })
}

/// A stroke count as a tag's stroke index (more than 4 billion strokes cannot be imported).
fn stroke_index(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Drawings for the plot module's tests (here and in `locate`).
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::import::{Color, Drawing, Layer, Page, Point, Stroke};

    pub(crate) fn layer(name: &str, strokes: Vec<Vec<(f64, f64)>>) -> Layer {
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
            strokes: strokes
                .into_iter()
                .map(|s| Stroke::new(s.into_iter().map(|(x, y)| Point::new(x, y)).collect()))
                .collect(),
        }
    }

    pub(crate) fn drawing(layers: Vec<Layer>) -> Drawing {
        Drawing {
            page: Page {
                width_mm: 210.0,
                height_mm: 297.0,
                view_box: None,
                user_unit_mm: (1.0, 1.0),
            },
            layers,
            warnings: Vec::new(),
            travel_mm: (300.0, 218.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use plotty_motion::kinematics::Resolution;

    use super::fixtures::{drawing, layer};
    use super::*;
    use crate::import::Layer;

    const K: Kinematics = Kinematics::new(Resolution::High);

    /// A compact text form of a program: `L0` layer, `u x,y s/v` pen-up move, `d x,y s/v`
    /// pen-down move, `v` pen down, `^` pen up, `P` pause, `D<ms>` dwell.
    fn text(items: impl Iterator<Item = Step>) -> String {
        let mut out = Vec::new();
        for item in items {
            out.push(match item {
                Step::Layer(l) => format!("L{l}"),
                Step::Path(PathItem::Segment { to, pen, tag }) => {
                    let v = if tag.vertex == PARK_VERTEX {
                        "H".to_string()
                    } else if tag.vertex == REENTRY_VERTEX {
                        "R".to_string()
                    } else {
                        tag.vertex.to_string()
                    };
                    let p = if pen == Pen::Up { 'u' } else { 'd' };
                    format!("{p}{},{} {}/{v}", to.x_mm, to.y_mm, tag.stroke)
                }
                Step::Path(PathItem::Action(Action::PenDown)) => "v".into(),
                Step::Path(PathItem::Action(Action::PenUp)) => "^".into(),
                Step::Path(PathItem::Action(Action::Pause)) => "P".into(),
                Step::Path(PathItem::Action(Action::Dwell(d))) => format!("D{}", d.as_millis()),
            });
        }
        out.join(" ")
    }

    fn sample() -> Program {
        let mut second = layer("!2 pen change +D250", vec![vec![(5.0, 5.0), (6.0, 5.0)]]);
        second.pause_before = true;
        second.delay_after_ms = Some(250);
        let doc = Layer {
            documentation: true,
            ..layer("%notes", vec![])
        };
        Program::new(&drawing(vec![
            layer(
                "1",
                vec![vec![(1.0, 1.0), (2.0, 1.0), (2.0, 2.0)], vec![(3.0, 3.0)]],
            ),
            doc,
            layer("empty", vec![vec![]]),
            second,
        ]))
    }

    #[test]
    fn layers_strokes_pauses_dwells_and_home() {
        let p = sample();
        assert_eq!(
            p.layers().len(),
            2,
            "documentation and empty layers are not plotted"
        );
        assert_eq!(p.stroke_count(), 3);
        assert_eq!(
            text(p.items(Start::Beginning, K)),
            "L0 u1,1 0/0 v d2,1 0/1 d2,2 0/2 ^ u3,3 1/0 v ^ \
             L1 u0,0 2/H P u5,5 2/0 v d6,5 2/1 ^ D250 u0,0 3/H"
        );
        assert_eq!(p.layers()[1].strokes, 2..3);
        assert!((p.layers()[0].drawn_mm - 2.0).abs() < 1e-12);
        let home = Tag {
            stroke: 3,
            vertex: PARK_VERTEX,
        };
        assert_eq!(p.layer_of(home), Some(1));
        assert_eq!(
            p.layer_of(Tag {
                stroke: 9,
                vertex: 0
            }),
            None
        );
    }

    #[test]
    fn an_empty_drawing_has_no_items() {
        let p = Program::new(&drawing(vec![layer("x", vec![])]));
        assert!(p.is_empty());
        assert_eq!(p.items(Start::Beginning, K).count(), 0);
    }

    fn at(stroke: u32, vertex: u32, pen_down: bool, x: f64, y: f64) -> Start {
        let m = K.to_motor(Point::new(x, y));
        Start::At(Checkpoint {
            layer: 0,
            stroke,
            vertex,
            pen_down,
            position: [m.m1, m.m2],
        })
    }

    #[test]
    fn resuming_mid_stroke_travels_to_where_it_stopped_and_lowers_the_pen_there() {
        let p = sample();
        // Wherever the carriage is, the pen goes up to the point the stroke stopped at first:
        // lowering it anywhere else would draw a line that is not in the drawing.
        assert_eq!(
            text(p.items(at(0, 2, true, 2.0, 1.5), K)),
            "L0 u2,1.5 0/R v d2,2 0/2 ^ u3,3 1/0 v ^ L1 u0,0 2/H P u5,5 2/0 v d6,5 2/1 ^ D250 u0,0 3/H"
        );
        // At the very end of a stroke's last segment: nothing is left of it.
        assert_eq!(
            text(p.items(at(0, 2, true, 2.0, 2.0), K)),
            "L0 u3,3 1/0 v ^ L1 u0,0 2/H P u5,5 2/0 v d6,5 2/1 ^ D250 u0,0 3/H"
        );
    }

    #[test]
    fn resuming_travel_parking_and_home() {
        let p = sample();
        assert_eq!(
            text(p.items(at(1, 0, false, 2.5, 2.5), K)),
            "L0 u3,3 1/0 v ^ L1 u0,0 2/H P u5,5 2/0 v d6,5 2/1 ^ D250 u0,0 3/H"
        );
        // Interrupted on the way to the pen change: park, and still stop for it.
        let mut c = at(2, PARK_VERTEX, false, 1.0, 1.0);
        if let Start::At(c) = &mut c {
            c.layer = 1;
        }
        assert_eq!(
            text(p.items(c, K)),
            "L1 u0,0 2/H P u5,5 2/0 v d6,5 2/1 ^ D250 u0,0 3/H"
        );
        assert_eq!(
            text(p.items(at(3, PARK_VERTEX, false, 1.0, 1.0), K)),
            "L1 u0,0 3/H"
        );
        // A checkpoint from another program continues nowhere.
        assert_eq!(p.items(at(7, 1, true, 0.0, 0.0), K).count(), 0);
        assert!(p.items(at(0, 99, true, 0.0, 0.0), K).count() > 0);
    }

    #[test]
    fn checkpoints_round_trip_through_json() {
        let p = sample();
        let c = p
            .checkpoint(
                Tag {
                    stroke: 2,
                    vertex: 1,
                },
                Pen::Down,
                MotorSteps::new(10, -3),
            )
            .unwrap();
        assert_eq!(c.layer, 1);
        let json = serde_json::to_string(&c).unwrap();
        let back: Checkpoint = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
    }
}
