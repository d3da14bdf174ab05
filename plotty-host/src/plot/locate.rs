//! Where a board that ran on after the host died really stopped, along the program's path.
//!
//! A daemon that crashes (or loses the USB link) mid-plot leaves a powered board that runs its
//! motion FIFO to the end: the pen draws up to the last move the daemon had sent. The stored
//! [`Checkpoint`] C lags behind that (it is stored about once a second, of motion the board had
//! confirmed), so resuming from C draws the part between C and the real stop again. Before a
//! resume goes back to C, [`locate`] walks the program from C forward, in plot order and with
//! the geometry the runner plans (pen-down segments, the pen-up travel between strokes), over
//! the bounded window [`Reach`] gives, looking for the segments that hold the board's motor
//! position P:
//!
//! - a segment holds P when P lies within [`MATCH_STEPS`] motor step of it (every move the
//!   runner sends ends on `Kinematics::to_motor` of a point of the path, so a stop is within
//!   half a step of the path in each motor);
//! - matches within a few steps along the path of a place's first match stand for that place
//!   (the end of one segment and the start of the next) and count once; the earliest of them is
//!   taken (at a vertex, the segment reaching it: a move of no length, then on), so that a
//!   place never stretches along the path and nothing between its matches is skipped;
//! - exactly one place → [`Located::PenStopped`]: a checkpoint at P on that segment, heading for
//!   its end vertex, its pen state as there (on pen-up travel: the start of the next stroke);
//! - none, or several (a drawing that crosses itself within the window) → [`Located::Recorded`]:
//!   back to C. Drawing something twice is better than skipping lines.
//!
//! The search is sound only when the carriage's last motion was a run streaming along the
//! program from C: the caller runs it only for a stored point that says so
//! ([`crate::store::ResumePoint::streaming`], `Plot::ran_on`).

use plotty_motion::kinematics::{Kinematics, MotorSteps};
use plotty_motion::plan::{Action, PathItem, Pen, Tag};
use plotty_motion::time::Duration;

use super::config::PlotConfig;
use super::program::{Checkpoint, PARK_VERTEX, Program, REENTRY_VERTEX, Start, Step};
use crate::settings::LimitModel;

/// How far from a segment, in motor steps (in each motor), a position still lies on it. Move
/// ends are rounded motor positions of path points (half a step at most in each motor); the
/// nearest point of the segment is a little farther in one motor when the segment runs along
/// the other, and a whole step absorbs that.
pub const MATCH_STEPS: f64 = 1.0;

/// Slack of the window, s: the daemon stores each checkpoint after the runner took it (a
/// database write), and the runner learns that a move finished a little after it did.
pub const WINDOW_MARGIN: std::time::Duration = std::time::Duration::from_millis(500);

/// How far past a stored checkpoint the board may have run before it stopped.
///
/// The runner takes a checkpoint when a move it fed finishes, at least every
/// `checkpoint_interval`, and feeds a move only while less than `queue_ahead` of motion is
/// queued. So when the daemon died, every move the board ran past C started within
/// `checkpoint_interval` of C (a move finishing later would have brought a newer checkpoint)
/// or within `queue_ahead` of the death, except two that may each be as long as a whole
/// segment: the move running when the checkpoints stopped, and the last move fed. (The
/// planner's lookahead window holds blocks not yet handed to the session: they never reached
/// the board.) A segment is in the window while the path before it, less its two
/// longest-lasting segments, takes at most [`budget`](Self::budget) at the highest speeds the
/// plan allows (dwells and pen moves only make the board slower, so they are not counted). With
/// the defaults (1 s, 200 ms, [`WINDOW_MARGIN`]) that is 1.7 s: about 85 mm of pen-down path at
/// the default speed, plus the two long moves.
#[derive(Clone, Debug, PartialEq)]
pub struct Reach {
    /// Motion time of the moves past C that are not the two long ones.
    pub budget: std::time::Duration,
    /// Highest path speed with the pen up, mm/s.
    pub pen_up_mm_s: f64,
    /// Highest path speed with the pen down, per program layer, mm/s.
    pub pen_down_mm_s: Vec<f64>,
}

/// What [`locate`] found.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Located {
    /// Exactly one place of the path within the window holds the board's position: continue
    /// from this checkpoint there.
    PenStopped(Checkpoint),
    /// Continue from the stored checkpoint, for this reason.
    Recorded(Fallback),
}

/// Why a resume goes back to the stored checkpoint.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fallback {
    /// The board is where the checkpoint says (a pause, a shutdown, a stop right there).
    AtCheckpoint,
    /// No segment within the window holds the board's position (the carriage was moved, the
    /// window was too short): going back is all that is safe.
    NotOnPath,
    /// This many places of the path within the window hold it (the drawing crosses itself
    /// there): which one the board stopped at cannot be told.
    Ambiguous(usize),
    /// The carriage is at home, where every park (a stop's, an abort's, a pen change's, the
    /// plot's end) and `plotty device home` leave it: a match there cannot be told from a park
    /// the board made on its own, so it is never searched (a line drawn twice, never one
    /// skipped).
    AtHome,
}

impl Reach {
    /// The window of `program` plotted with `config`, whose runner takes checkpoints at least
    /// every `checkpoint_interval` and queues `queue_ahead` of motion (see the type's doc).
    pub fn of(
        program: &Program,
        config: &PlotConfig,
        checkpoint_interval: Duration,
        queue_ahead: Duration,
    ) -> Self {
        // Per-motor limits let a move along an axis run √2 times the XY speed.
        let factor = match config.motion.limits {
            LimitModel::Xy => 1.0,
            LimitModel::PerMotor => std::f64::consts::SQRT_2,
        };
        Self {
            budget: std::time::Duration::from_micros(
                checkpoint_interval
                    .as_micros()
                    .saturating_add(queue_ahead.as_micros()),
            ) + WINDOW_MARGIN,
            pen_up_mm_s: config.motion.pen_up_speed_mm_s * factor,
            pen_down_mm_s: program
                .layers()
                .iter()
                .map(|l| config.pen_down_speed_mm_s(Some(l)) * factor)
                .collect(),
        }
    }

    /// The shortest time a segment of `length_mm` takes (`f64::INFINITY` for a speed that is
    /// not a positive number, so that segment counts as one of the two long ones).
    fn seconds(&self, length_mm: f64, pen: Pen, layer: usize) -> f64 {
        let speed = match pen {
            Pen::Up => self.pen_up_mm_s,
            Pen::Down => self
                .pen_down_mm_s
                .get(layer)
                .copied()
                .unwrap_or(self.pen_up_mm_s),
        };
        if speed > 0.0 && speed.is_finite() {
            length_mm / speed
        } else {
            f64::INFINITY
        }
    }
}

/// A segment of the walk that holds the board's position.
#[derive(Clone, Copy, Debug)]
struct Match {
    /// Path length from C to the nearest point, mm.
    along_mm: f64,
    tag: Tag,
    pen: Pen,
}

/// Where along `program`'s path from `checkpoint` the board's position `at` lies; see the
/// [module documentation](self).
pub fn locate(
    program: &Program,
    checkpoint: &Checkpoint,
    at: MotorSteps,
    kinematics: Kinematics,
    reach: &Reach,
) -> Located {
    let c = MotorSteps::new(checkpoint.position[0], checkpoint.position[1]);
    if (i64::from(at.m1) - i64::from(c.m1)).abs() <= 1
        && (i64::from(at.m2) - i64::from(c.m2)).abs() <= 1
    {
        return Located::Recorded(Fallback::AtCheckpoint);
    }
    if at.m1.abs() <= 1 && at.m2.abs() <= 1 {
        return Located::Recorded(Fallback::AtHome);
    }
    let p = (f64::from(at.m1), f64::from(at.m2));
    let budget_s = reach.budget.as_secs_f64();
    let mut from = kinematics.to_point(c);
    let mut along_mm = 0.0;
    let mut layer = checkpoint.layer;
    // Minimal times of the segments walked: the sum of the finite ones, the two largest, and
    // how many are infinite (kept out of the sum: ∞ − ∞ is NaN, and a window compared with NaN
    // would never close).
    let (mut sum_s, mut longest_s, mut infinite) = (0.0_f64, [0.0_f64; 2], 0usize);
    let mut matches: Vec<Match> = Vec::new();
    for step in program.items(Start::At(*checkpoint), kinematics) {
        let (to, pen, tag) = match step {
            Step::Layer(l) => {
                layer = l;
                continue;
            }
            // Nothing after a planned pause was fed: the board stopped before it.
            Step::Path(PathItem::Action(Action::Pause)) => break,
            Step::Path(PathItem::Action(_)) => continue,
            Step::Path(PathItem::Segment { to, pen, tag }) => (to, pen, tag),
        };
        if tag.vertex == REENTRY_VERTEX {
            // The way back to C's own position: not a motion of the interrupted run.
            from = to;
            continue;
        }
        // All but the two longest must fit the budget: an infinite one past those two cannot.
        let excluded_s: f64 = longest_s.iter().filter(|s| s.is_finite()).sum();
        if infinite > 2 || sum_s - excluded_s > budget_s {
            break;
        }
        let length_mm = from.distance_to(to);
        if let Some(t) = nearest(p, kinematics.motor_exact(from), kinematics.motor_exact(to)) {
            matches.push(Match {
                along_mm: along_mm + t * length_mm,
                tag,
                pen,
            });
        }
        let s = reach.seconds(length_mm, pen, layer);
        if s.is_finite() {
            sum_s += s;
        } else {
            infinite += 1;
        }
        if s > longest_s[0] {
            longest_s = [s, longest_s[0]];
        } else if s > longest_s[1] {
            longest_s[1] = s;
        }
        along_mm += length_mm;
        from = to;
    }
    // Matches closer along the path than a few steps to the first match of a place are that
    // place (a vertex two segments share, a segment of no length); measured from the first, so
    // that a chain of matches cannot stretch one place along the path. A place stands for its
    // earliest match: resuming there can only draw a few steps twice, never skip them.
    let same_place_mm = 3.0 / kinematics.steps_per_mm();
    let mut places = 0;
    let mut first: Option<Match> = None;
    for m in matches {
        if first.is_none_or(|f| m.along_mm - f.along_mm > same_place_mm) {
            places += 1;
            first = Some(m);
        }
    }
    match (places, first) {
        (1, Some(m)) => program
            .checkpoint(m.tag, m.pen, at)
            .map_or(Located::Recorded(Fallback::NotOnPath), Located::PenStopped),
        (0, _) | (_, None) => Located::Recorded(Fallback::NotOnPath),
        (n, Some(_)) => Located::Recorded(Fallback::Ambiguous(n)),
    }
}

/// The parameter (0..=1) of the point of segment `a`–`b` (motor coordinates) nearest to `p`,
/// if `p` is within [`MATCH_STEPS`] of it in each motor.
fn nearest(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> Option<f64> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (qx, qy) = (a.0 + t * dx, a.1 + t * dy);
    ((qx - p.0).abs() <= MATCH_STEPS && (qy - p.1).abs() <= MATCH_STEPS).then_some(t)
}

/// Where a resume continued, for the user: `resumed where the pen stopped, layer 1, stroke 1,
/// segment 120` or `resumed from the last recorded point, …` (counted from 1, as `plotty job`
/// shows them); `stored`: the checkpoint it was to start from (`None`: the beginning).
pub fn describe(located: &Located, stored: Option<&Checkpoint>) -> String {
    let place = |c: &Checkpoint| match c.vertex {
        PARK_VERTEX | REENTRY_VERTEX => format!("layer {}: parking at home", c.layer + 1),
        // Heading for vertex v (from 0) is drawing segment v (from 1).
        v => format!(
            "layer {}, stroke {}, segment {v}",
            c.layer + 1,
            c.stroke.saturating_add(1)
        ),
    };
    match located {
        Located::PenStopped(c) => format!("resumed where the pen stopped, {}", place(c)),
        Located::Recorded(why) => {
            let why = match why {
                Fallback::AtCheckpoint => "the board stopped there",
                Fallback::NotOnPath => "the board's position is not on the path ahead of it",
                Fallback::AtHome => "the carriage is at home, where a park leaves it",
                Fallback::Ambiguous(_) => {
                    "the path ahead of it crosses where the board stopped, so where it stopped \
                     cannot be told"
                }
            };
            match stored {
                Some(c) => format!("resumed from the last recorded point, {} ({why})", place(c)),
                None => format!("resumed from the beginning ({why})"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use plotty_motion::kinematics::Resolution;

    use super::*;
    use crate::import::{Layer, Point};
    use crate::plot::program::fixtures;

    const K: Kinematics = Kinematics::new(Resolution::High);

    fn layer(strokes: &[&[(f64, f64)]], pause_before: bool) -> Layer {
        let strokes = strokes.iter().map(|s| s.to_vec()).collect();
        Layer {
            pause_before,
            ..fixtures::layer("1", strokes)
        }
    }

    fn program_of(layers: Vec<Layer>) -> Program {
        Program::new(&fixtures::drawing(layers))
    }

    fn program(strokes: &[&[(f64, f64)]]) -> Program {
        program_of(vec![layer(strokes, false)])
    }

    /// 10 mm/s pen down, 100 mm/s pen up, `budget_s` of window.
    fn reach(budget_s: f64) -> Reach {
        Reach {
            budget: std::time::Duration::from_secs_f64(budget_s),
            pen_up_mm_s: 100.0,
            pen_down_mm_s: vec![10.0],
        }
    }

    /// The stored checkpoint: drawing stroke `stroke` towards `vertex`, at (`x`, `y`).
    fn stored(stroke: u32, vertex: u32, pen_down: bool, x: f64, y: f64) -> Checkpoint {
        let m = K.to_motor(Point::new(x, y));
        Checkpoint {
            layer: 0,
            stroke,
            vertex,
            pen_down,
            position: [m.m1, m.m2],
        }
    }

    fn board_at(x: f64, y: f64) -> MotorSteps {
        K.to_motor(Point::new(x, y))
    }

    const ZIGZAG: &[(f64, f64)] = &[
        (10.0, 10.0),
        (60.0, 10.0),
        (60.0, 15.0),
        (10.0, 15.0),
        (10.0, 20.0),
        (60.0, 20.0),
    ];

    #[test]
    fn a_stop_on_a_later_segment_resumes_there_heading_for_its_end() {
        let p = program(&[ZIGZAG]);
        let c = stored(0, 1, true, 20.0, 10.0);
        let at = board_at(33.3, 15.0);
        assert_eq!(
            locate(&p, &c, at, K, &reach(100.0)),
            Located::PenStopped(Checkpoint {
                layer: 0,
                stroke: 0,
                vertex: 3,
                pen_down: true,
                position: [at.m1, at.m2],
            })
        );
        // Further along the segment the checkpoint was on.
        let at = board_at(47.1, 10.0);
        let Located::PenStopped(found) = locate(&p, &c, at, K, &reach(100.0)) else {
            panic!("not found");
        };
        assert_eq!((found.vertex, found.pen_down), (1, true));
    }

    #[test]
    fn a_stop_at_a_vertex_resumes_with_the_segment_that_reaches_it() {
        let p = program(&[ZIGZAG]);
        let c = stored(0, 1, true, 20.0, 10.0);
        let Located::PenStopped(found) = locate(&p, &c, board_at(60.0, 15.0), K, &reach(100.0))
        else {
            panic!("not found");
        };
        // The earliest of the two segments that hold it: a move of no length, then on.
        assert_eq!(found.vertex, 2, "{found:?}");
    }

    #[test]
    fn matches_chained_along_the_path_are_not_one_place_stretched_to_the_latest() {
        // A scribble that hops back and forth over (30, 10) by one motor step, 40 times, then
        // draws on: every hop holds the board's position, each within a few steps of the one
        // before, but the last is far along the path from the first.
        let hop = 1.0 / K.steps_per_mm();
        let mut points = vec![(10.0, 10.0)];
        for i in 0..40 {
            points.push((30.0 + if i % 2 == 0 { 0.0 } else { hop }, 10.0));
        }
        points.push((60.0, 10.0));
        let p = program(&[&points]);
        let c = stored(0, 1, true, 20.0, 10.0);
        let found = locate(&p, &c, board_at(30.0, 10.0), K, &reach(100.0));
        // Several places (the scribble doubles back over itself), or the first hop: never a
        // later one, which would leave the scribble before it undrawn.
        assert!(
            matches!(
                found,
                Located::Recorded(Fallback::Ambiguous(_))
                    | Located::PenStopped(Checkpoint { vertex: 1, .. })
            ),
            "{found:?}"
        );
    }

    #[test]
    fn segments_of_no_finite_time_still_close_the_window() {
        // Pen-down speed 0: every drawing segment takes "forever" (∞ s); two such may pass as
        // the long ones, a third cannot be reached.
        let p = program(&[ZIGZAG]);
        let reach = Reach {
            pen_down_mm_s: vec![0.0],
            ..reach(1.0)
        };
        let c = stored(0, 1, true, 20.0, 10.0);
        assert!(matches!(
            locate(&p, &c, board_at(60.0, 12.5), K, &reach),
            Located::PenStopped(Checkpoint { vertex: 2, .. })
        ));
        assert_eq!(
            locate(&p, &c, board_at(35.0, 20.0), K, &reach),
            Located::Recorded(Fallback::NotOnPath)
        );
    }

    #[test]
    fn a_stop_on_a_crossing_the_window_holds_twice_goes_back_to_the_checkpoint() {
        // Out along the diagonal, down, and back across it: (30, 30) is on two segments.
        let p = program(&[&[(10.0, 10.0), (50.0, 50.0), (50.0, 10.0), (10.0, 50.0)]]);
        let c = stored(0, 1, true, 15.0, 15.0);
        assert_eq!(
            locate(&p, &c, board_at(30.0, 30.0), K, &reach(100.0)),
            Located::Recorded(Fallback::Ambiguous(2))
        );
        // Beside the crossing, the place is unique again.
        let Located::PenStopped(found) = locate(&p, &c, board_at(20.0, 40.0), K, &reach(100.0))
        else {
            panic!("not found");
        };
        assert_eq!(found.vertex, 3);
    }

    /// Near the plot's end the final move home is within the window, and a carriage at home
    /// matches it, though a park after a stop (its "not searchable" point not yet stored when
    /// the daemon died) or `plotty device home` leave it there too: never searched, so the rest
    /// of the last stroke is drawn rather than skipped.
    #[test]
    fn a_carriage_at_home_goes_back_to_the_checkpoint() {
        let p = program(&[&[(10.0, 10.0), (40.0, 10.0)]]);
        let c = stored(0, 1, true, 20.0, 10.0);
        assert_eq!(
            locate(&p, &c, board_at(0.0, 0.0), K, &reach(100.0)),
            Located::Recorded(Fallback::AtHome)
        );
        assert_eq!(
            locate(&p, &c, MotorSteps::new(1, -1), K, &reach(100.0)),
            Located::Recorded(Fallback::AtHome)
        );
    }

    #[test]
    fn a_stop_off_the_path_goes_back_to_the_checkpoint() {
        let p = program(&[ZIGZAG]);
        let c = stored(0, 1, true, 20.0, 10.0);
        assert_eq!(
            locate(&p, &c, board_at(35.0, 12.5), K, &reach(100.0)),
            Located::Recorded(Fallback::NotOnPath)
        );
        // Two steps beside a segment is off it (equal steps of both motors move along x).
        let on = board_at(35.0, 15.0);
        let beside = MotorSteps::new(on.m1 + 2, on.m2 - 2);
        assert_eq!(
            locate(&p, &c, beside, K, &reach(100.0)),
            Located::Recorded(Fallback::NotOnPath)
        );
        // One step is on it.
        let near = MotorSteps::new(on.m1 + 1, on.m2);
        assert!(matches!(
            locate(&p, &c, near, K, &reach(100.0)),
            Located::PenStopped(_)
        ));
    }

    #[test]
    fn a_stop_where_the_checkpoint_is_keeps_it() {
        let p = program(&[ZIGZAG]);
        let c = stored(0, 1, true, 20.0, 10.0);
        assert_eq!(
            locate(&p, &c, board_at(20.0, 10.0), K, &reach(100.0)),
            Located::Recorded(Fallback::AtCheckpoint)
        );
    }

    #[test]
    fn a_stop_on_travel_resumes_at_the_next_stroke() {
        let p = program(&[&[(10.0, 10.0), (40.0, 10.0)], &[(40.0, 30.0), (10.0, 30.0)]]);
        let c = stored(0, 1, true, 20.0, 10.0);
        let at = board_at(40.0, 21.0);
        assert_eq!(
            locate(&p, &c, at, K, &reach(100.0)),
            Located::PenStopped(Checkpoint {
                layer: 0,
                stroke: 1,
                vertex: 0,
                pen_down: false,
                position: [at.m1, at.m2],
            })
        );
        // At the end of the first stroke (the pen may be up or not): the end of its last segment
        // (the earliest place, a move of no length), then the travel.
        let Located::PenStopped(found) = locate(&p, &c, board_at(40.0, 10.0), K, &reach(100.0))
        else {
            panic!("not found");
        };
        assert_eq!((found.stroke, found.vertex, found.pen_down), (0, 1, true));
    }

    #[test]
    fn the_window_ends_where_the_board_cannot_have_got() {
        // Ten collinear 5 mm segments at 10 mm/s: 0.5 s each.
        let points: Vec<(f64, f64)> = (0..=10)
            .map(|i| (10.0 + 5.0 * f64::from(i), 10.0))
            .collect();
        let p = program(&[&points]);
        let c = stored(0, 1, true, 10.0, 10.0);
        // 1 s of budget plus the two longest segments before: segments 1..=5 (the fifth
        // starts 2 s along the path, 1 s beyond the two free ones).
        assert!(matches!(
            locate(&p, &c, board_at(32.5, 10.0), K, &reach(1.0)),
            Located::PenStopped(Checkpoint { vertex: 5, .. })
        ));
        assert_eq!(
            locate(&p, &c, board_at(37.5, 10.0), K, &reach(1.0)),
            Located::Recorded(Fallback::NotOnPath)
        );
        // A long segment counts as one of the two that may last any time.
        let p = program(&[&[(10.0, 10.0), (110.0, 10.0), (110.0, 15.0), (110.0, 20.0)]]);
        let c = stored(0, 1, true, 10.0, 10.0);
        assert!(matches!(
            locate(&p, &c, board_at(110.0, 17.5), K, &reach(0.1)),
            Located::PenStopped(Checkpoint { vertex: 3, .. })
        ));
        // A crossing beyond the window does not make a stop ambiguous.
        let p = program(&[&[
            (10.0, 10.0),
            (30.0, 10.0),
            (30.0, 40.0),
            (20.0, 40.0),
            (20.0, 0.0),
        ]]);
        let c = stored(0, 1, true, 10.0, 10.0);
        assert!(matches!(
            locate(&p, &c, board_at(20.0, 10.0), K, &reach(0.5)),
            Located::PenStopped(Checkpoint { vertex: 1, .. })
        ));
        assert_eq!(
            locate(&p, &c, board_at(20.0, 10.0), K, &reach(100.0)),
            Located::Recorded(Fallback::Ambiguous(2))
        );
    }

    #[test]
    fn a_planned_pause_ends_the_window() {
        // The second stroke is a layer of its own after a pen change: park, pause, then it.
        let p = program_of(vec![
            layer(&[&[(10.0, 10.0), (40.0, 10.0)]], false),
            layer(&[&[(40.0, 30.0), (10.0, 30.0)]], true),
        ]);
        let c = stored(0, 1, true, 20.0, 10.0);
        assert_eq!(
            locate(&p, &c, board_at(25.0, 30.0), K, &reach(100.0)),
            Located::Recorded(Fallback::NotOnPath),
            "nothing after the pause was fed"
        );
        // On the way home before the pause: park (and pause) from there.
        assert!(matches!(
            locate(&p, &c, board_at(20.0, 5.0), K, &reach(100.0)),
            Located::PenStopped(Checkpoint {
                stroke: 1,
                vertex: PARK_VERTEX,
                pen_down: false,
                ..
            })
        ));
    }

    #[test]
    fn the_place_is_described_for_the_journal() {
        let c = stored(0, 91, true, 20.0, 10.0);
        let found = Checkpoint { vertex: 120, ..c };
        assert_eq!(
            describe(&Located::PenStopped(found), Some(&c)),
            "resumed where the pen stopped, layer 1, stroke 1, segment 120"
        );
        assert!(
            describe(&Located::Recorded(Fallback::Ambiguous(2)), Some(&c))
                .starts_with("resumed from the last recorded point, layer 1, stroke 1, segment 91")
        );
    }
}
