//! The pen trace: what the simulated AxiDraw drew, as polylines in millimetres.
//!
//! [`TraceRecorder`] follows the steps the board takes and the pen state it executes. Positions
//! use the AxiDraw's mixed-axis geometry with +y down the page:
//! `x = (m1 + m2) / (2k)`, `y = (m1 − m2) / (2k)`, where m1, m2 are motor positions and k the
//! steps per millimetre of one motor: 80 at 16× microstepping, 40 at 8× (and 20, 10, 5 for 4×,
//! 2×, full steps), from the microstep mode the last executed `EM` chose.
//!
//! The recorder integrates the steps itself (their directions, from the motor positions the
//! observer reports) rather than reading the board's global step counters: those are zeroed by
//! `EM`, `CS` and resets while the carriage stays where it is, and a step taken at 8× moves the
//! carriage twice as far as one at 16×. Internally each motor position is counted in 16× steps
//! (a step at 8× counts 2, a full step 16), so mode changes are exact. Steps of a disabled motor
//! do not move the carriage (its driver is off) and are not traced.
//!
//! Memory: points are kept by a streaming simplifier (see `simplify.rs`) with a tolerance of one
//! step at the current resolution, so every position the carriage went through lies within one
//! step of the recorded polyline, and every recorded point is a position it really reached.
//! Only the corners between runs of same-direction steps are examined (the points of a run lie
//! on the segment between its corners, so they are within tolerance whenever both corners are).
//! A point is always kept at pen changes and command starts (so command boundaries, e.g. the
//! corners of a square, are exact). Straight moves cost two points however long they are; a
//! recorder also stops adding points past [`TraceConfig::max_points`] and marks the trace
//! truncated, so a runaway plot cannot exhaust memory.

use crate::counters::CounterTracker;
use crate::observer::{CommandKind, Observer};
use crate::simplify::{Point, Simplifier};

/// AxiDraw steps per millimetre of one motor at 16× microstepping (2032 steps/inch).
pub const STEPS_PER_MM_16X: f64 = 80.0;

/// A position on the page in millimetres (+x right, +y down, origin at home).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointMm {
    /// Millimetres right of home.
    pub x: f64,
    /// Millimetres down from home.
    pub y: f64,
}

/// Options of a [`TraceRecorder`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceConfig {
    /// Largest allowed distance between a position the carriage went through and the recorded
    /// polyline, in steps at the current microstep resolution (default 1).
    pub tolerance_steps: f64,
    /// Points recorded at most, over strokes and travel together (default 4 million, about
    /// 64 MiB); later points are dropped and [`Trace::truncated`] is set.
    pub max_points: usize,
    /// Whether pen-up travel is recorded too (default true).
    pub record_travel: bool,
}

/// What was drawn: pen-down strokes and pen-up travel, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    /// Pen-down polylines (a single point is a dot: the pen went down and up without moving).
    pub strokes: Vec<Vec<PointMm>>,
    /// Pen-up moves, each at least two points.
    pub travel: Vec<Vec<PointMm>>,
    /// Whether points were dropped because [`TraceConfig::max_points`] was reached.
    pub truncated: bool,
}

/// Axis-aligned bounds of a trace in millimetres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundsMm {
    /// Smallest x and y.
    pub min: PointMm,
    /// Largest x and y.
    pub max: PointMm,
}

/// Records the pen trace from step and pen events. Feed it from the firmware's observer
/// callbacks (it implements `Observer`) or directly through its methods.
#[derive(Debug, Clone)]
pub struct TraceRecorder {
    config: TraceConfig,
    counters: CounterTracker,
    /// Carriage position in units of one 16× step per motor.
    position: Point,
    /// Units one step moves at the current microstep mode (16 / divisor).
    units_per_step: i64,
    /// Direction of the current straight run of steps ([0, 0] before the first).
    run: [i8; 2],
    enabled: [bool; 2],
    pen_up: bool,
    /// The polyline being recorded, in motor units, and its simplifier.
    open: Vec<Point>,
    simplifier: Simplifier,
    strokes: Vec<Vec<PointMm>>,
    travel: Vec<Vec<PointMm>>,
    points: usize,
    truncated: bool,
}

impl Default for TraceConfig {
    fn default() -> Self {
        Self {
            tolerance_steps: 1.0,
            max_points: 4_000_000,
            record_travel: true,
        }
    }
}

impl PointMm {
    /// The page position of motor positions `units` (one unit = one 16× step).
    fn from_units(units: Point) -> Self {
        let [m1, m2] = units.map(|u| u as f64);
        Self {
            x: (m1 + m2) / (2.0 * STEPS_PER_MM_16X),
            y: (m1 - m2) / (2.0 * STEPS_PER_MM_16X),
        }
    }
}

impl Trace {
    /// Bounds of every recorded point (strokes, and travel if `with_travel`), or `None` if
    /// there is none.
    pub fn bounds(&self, with_travel: bool) -> Option<BoundsMm> {
        let travel = if with_travel { &self.travel[..] } else { &[] };
        let mut points = self.strokes.iter().chain(travel).flatten();
        let first = *points.next()?;
        Some(points.fold(
            BoundsMm {
                min: first,
                max: first,
            },
            |b, p| BoundsMm {
                min: PointMm {
                    x: b.min.x.min(p.x),
                    y: b.min.y.min(p.y),
                },
                max: PointMm {
                    x: b.max.x.max(p.x),
                    y: b.max.y.max(p.y),
                },
            },
        ))
    }

    /// Total pen-down path length in millimetres, along the recorded step path (on slanted
    /// lines longer than what was commanded; see
    /// [`StatsReport::pen_down_mm`](crate::stats::StatsReport::pen_down_mm) for that).
    pub fn stroke_length_mm(&self) -> f64 {
        polyline_length(&self.strokes)
    }

    /// Total pen-up travel length in millimetres.
    pub fn travel_length_mm(&self) -> f64 {
        polyline_length(&self.travel)
    }
}

impl TraceRecorder {
    /// A recorder for a board at home with the pen up, motors enabled at 16× (the state after
    /// power-on as far as the trace is concerned).
    pub fn new(config: TraceConfig) -> Self {
        let origin = [0, 0];
        Self {
            simplifier: Simplifier::new(origin, config.tolerance_steps),
            config,
            counters: CounterTracker::default(),
            position: origin,
            units_per_step: 1,
            run: [0, 0],
            enabled: [true, true],
            pen_up: true,
            open: vec![origin],
            strokes: Vec::new(),
            travel: Vec::new(),
            points: 1,
            truncated: false,
        }
    }

    /// One tick's steps: `direction[i]` is +1, −1 or 0 for motor i.
    #[inline]
    pub fn step(&mut self, direction: [i8; 2]) {
        let moved = [
            direction[0].signum() * i8::from(self.enabled[0]),
            direction[1].signum() * i8::from(self.enabled[1]),
        ];
        if moved == [0, 0] {
            return;
        }
        // Steps in the same direction form a straight run; only the corners between runs go
        // through the simplifier. Every point of a run lies on the segment between its corners,
        // so it is within tolerance of the output whenever both corners are (the set of points
        // within a distance of a segment is convex).
        if moved != self.run {
            self.run = moved;
            let kept = self.simplifier.push(self.position);
            self.keep(kept);
        }
        self.position[0] += i64::from(moved[0]) * self.units_per_step;
        self.position[1] += i64::from(moved[1]) * self.units_per_step;
    }

    /// The pen went up (`true`) or down as a servo command executed.
    pub fn pen(&mut self, up: bool) {
        if up == self.pen_up {
            return;
        }
        self.close_polyline();
        self.pen_up = up;
    }

    /// A queued command started: its start point is kept exactly.
    pub fn command_start(&mut self) {
        self.keep_position();
    }

    /// Motor drivers enabled or disabled, and the microstep divisor (16, 8, 4, 2 or 1) in force.
    pub fn motors(&mut self, enabled: [bool; 2], microstep_divisor: u8) {
        self.enabled = enabled;
        let units = 16 / i64::from(microstep_divisor.clamp(1, 16));
        if units != self.units_per_step {
            self.keep_position();
            self.units_per_step = units;
            let kept = self
                .simplifier
                .set_tolerance(self.config.tolerance_steps * units as f64);
            self.keep(kept);
        }
    }

    /// The current carriage position in millimetres.
    pub fn position_mm(&self) -> PointMm {
        PointMm::from_units(self.position)
    }

    /// Whether the pen is up (as last executed).
    pub fn pen_is_up(&self) -> bool {
        self.pen_up
    }

    /// The trace so far, including the polyline in progress.
    pub fn trace(&self) -> Trace {
        let mut copy = self.clone();
        copy.close_polyline();
        Trace {
            strokes: copy.strokes,
            travel: copy.travel,
            truncated: copy.truncated,
        }
    }

    /// Ends recording and returns the trace.
    pub fn finish(mut self) -> Trace {
        self.close_polyline();
        Trace {
            strokes: self.strokes,
            travel: self.travel,
            truncated: self.truncated,
        }
    }

    /// Keeps the current position as a vertex.
    fn keep_position(&mut self) {
        let kept = self.simplifier.push(self.position);
        self.keep(kept);
        let kept = self.simplifier.keep_current();
        self.keep(kept);
        self.run = [0, 0];
    }

    fn keep(&mut self, point: Option<Point>) {
        let Some(point) = point else { return };
        if !self.recording() {
            return;
        }
        if self.points >= self.config.max_points {
            self.truncated = true;
            return;
        }
        self.points += 1;
        self.open.push(point);
    }

    /// Whether points of the current pen state are being kept.
    fn recording(&self) -> bool {
        !self.pen_up || self.config.record_travel
    }

    /// Moves the polyline in progress to its list and starts a new one here.
    fn close_polyline(&mut self) {
        self.keep_position();
        let points: Vec<PointMm> = self.open.drain(..).map(PointMm::from_units).collect();
        if self.pen_up {
            if self.config.record_travel && points.len() >= 2 {
                self.travel.push(points);
            }
        } else if !points.is_empty() {
            self.strokes.push(points);
        }
        self.simplifier = Simplifier::new(
            self.position,
            self.config.tolerance_steps * self.units_per_step as f64,
        );
        if self.points < self.config.max_points {
            self.open.push(self.position);
            self.points += 1;
        } else {
            self.truncated = true;
        }
    }
}

impl Default for TraceRecorder {
    fn default() -> Self {
        Self::new(TraceConfig::default())
    }
}

impl Observer for TraceRecorder {
    fn on_step(&mut self, tick: u64, position: [i32; 2]) {
        let _ = tick;
        let direction = self.counters.direction(position);
        self.step(direction);
    }

    fn on_pen(&mut self, tick: u64, up: bool) {
        let _ = tick;
        self.pen(up);
    }

    fn on_command_start(&mut self, tick: u64, kind: CommandKind) {
        let _ = (tick, kind);
        self.command_start();
    }

    fn on_motors(&mut self, tick: u64, enabled: [bool; 2], microsteps: u8) {
        let _ = tick;
        self.motors(enabled, microsteps);
    }
}

fn polyline_length(lines: &[Vec<PointMm>]) -> f64 {
    lines
        .iter()
        .flat_map(|line| line.windows(2))
        .map(|w| (w[1].x - w[0].x).hypot(w[1].y - w[0].y))
        // An empty float sum is -0.0; print 0.0 for "nothing".
        .fold(0.0, |total, length| total + length)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps a straight move of (d1, d2) motor steps as a board would (Bresenham-like).
    fn straight(rec: &mut TraceRecorder, d1: i64, d2: i64) {
        rec.command_start();
        let n = d1.abs().max(d2.abs());
        let (mut a1, mut a2) = (0i64, 0i64);
        for k in 1..=n {
            let t1 = d1 * k / n;
            let t2 = d2 * k / n;
            rec.step([(t1 - a1) as i8, (t2 - a2) as i8]);
            a1 = t1;
            a2 = t2;
        }
    }

    fn assert_close(p: PointMm, x: f64, y: f64) {
        assert!(
            (p.x - x).abs() < 1e-9 && (p.y - y).abs() < 1e-9,
            "{p:?} != ({x}, {y})"
        );
    }

    #[test]
    fn pure_x_and_y_moves_use_80_steps_per_mm() {
        let mut rec = TraceRecorder::default();
        straight(&mut rec, 800, 800); // +x 10 mm
        assert_close(rec.position_mm(), 10.0, 0.0);
        straight(&mut rec, 800, -800); // +y 10 mm (down)
        assert_close(rec.position_mm(), 10.0, 10.0);
    }

    #[test]
    fn eight_x_microstepping_doubles_the_distance_per_step() {
        let mut rec = TraceRecorder::default();
        rec.motors([true, true], 8);
        straight(&mut rec, 400, 400);
        assert_close(rec.position_mm(), 10.0, 0.0);
    }

    #[test]
    fn a_square_is_four_exact_corners() {
        let mut rec = TraceRecorder::default();
        straight(&mut rec, 800, 800); // travel to (10, 0)
        rec.pen(false);
        for (d1, d2) in [(1600, 1600), (1600, -1600), (-1600, -1600), (-1600, 1600)] {
            straight(&mut rec, d1, d2);
        }
        rec.pen(true);
        straight(&mut rec, -800, -800);
        let trace = rec.finish();
        assert_eq!(trace.strokes.len(), 1);
        let corners: Vec<(f64, f64)> = trace.strokes[0].iter().map(|p| (p.x, p.y)).collect();
        assert_eq!(
            corners,
            vec![
                (10.0, 0.0),
                (30.0, 0.0),
                (30.0, 20.0),
                (10.0, 20.0),
                (10.0, 0.0)
            ]
        );
        assert_eq!(trace.travel.len(), 2);
        assert!((trace.stroke_length_mm() - 80.0).abs() < 1e-9);
        assert!((trace.travel_length_mm() - 20.0).abs() < 1e-9);
        let b = trace.bounds(false).unwrap();
        assert_close(b.min, 10.0, 0.0);
        assert_close(b.max, 30.0, 20.0);
        assert!(!trace.truncated);
    }

    #[test]
    fn disabled_motors_do_not_move_the_carriage() {
        let mut rec = TraceRecorder::default();
        rec.motors([false, true], 16);
        straight(&mut rec, 100, 100);
        assert_close(rec.position_mm(), 100.0 / 160.0, -100.0 / 160.0);
    }

    #[test]
    fn a_pen_dip_without_motion_is_a_dot() {
        let mut rec = TraceRecorder::default();
        rec.pen(false);
        rec.pen(true);
        let trace = rec.finish();
        assert_eq!(trace.strokes, vec![vec![PointMm { x: 0.0, y: 0.0 }]]);
        assert!(trace.travel.is_empty());
    }

    #[test]
    fn the_point_cap_truncates() {
        let mut rec = TraceRecorder::new(TraceConfig {
            max_points: 10,
            ..TraceConfig::default()
        });
        rec.pen(false);
        for _ in 0..20 {
            straight(&mut rec, 10, 0);
            straight(&mut rec, 0, 10);
        }
        let trace = rec.trace();
        assert!(trace.truncated);
        let total: usize = trace
            .strokes
            .iter()
            .chain(&trace.travel)
            .map(Vec::len)
            .sum();
        assert!(total <= 10, "{total}");
        // The position is still tracked exactly.
        assert_close(rec.position_mm(), 200.0 / 160.0 * 2.0, 0.0);
    }

    proptest::proptest! {
        /// Every position the carriage passes lies within one step of the recorded strokes,
        /// whatever runs of steps and command starts come.
        #[test]
        fn every_step_is_within_one_step_of_the_trace(
            moves in proptest::collection::vec(
                ((-1i8..=1, -1i8..=1), 1usize..40, proptest::bool::weighted(0.1)),
                1..80,
            ),
        ) {
            let mut rec = TraceRecorder::default();
            rec.pen(false);
            let mut truth = vec![[0i64, 0i64]];
            for ((d1, d2), run, command) in moves {
                if command {
                    rec.command_start();
                }
                for _ in 0..run {
                    rec.step([d1, d2]);
                    let last = *truth.last().unwrap();
                    truth.push([last[0] + i64::from(d1), last[1] + i64::from(d2)]);
                }
            }
            let trace = rec.finish();
            let line: Vec<[f64; 2]> = trace.strokes.concat().iter()
                .map(|p| [80.0 * (p.x + p.y), 80.0 * (p.x - p.y)])
                .collect();
            for p in truth {
                let p = [p[0] as f64, p[1] as f64];
                let d = line
                    .windows(2)
                    .map(|w| segment_distance(p, w[0], w[1]))
                    .fold(segment_distance(p, line[0], line[0]), f64::min);
                proptest::prop_assert!(d <= 1.0 + 1e-9, "{p:?} is {d} steps away");
            }
        }
    }

    fn segment_distance(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
        let v = [b[0] - a[0], b[1] - a[1]];
        let len2 = v[0] * v[0] + v[1] * v[1];
        let t = if len2 == 0.0 {
            0.0
        } else {
            (((p[0] - a[0]) * v[0] + (p[1] - a[1]) * v[1]) / len2).clamp(0.0, 1.0)
        };
        (p[0] - a[0] - t * v[0]).hypot(p[1] - a[1] - t * v[1])
    }

    #[test]
    fn travel_can_be_left_out() {
        let mut rec = TraceRecorder::new(TraceConfig {
            record_travel: false,
            ..TraceConfig::default()
        });
        straight(&mut rec, 800, 800);
        rec.pen(false);
        straight(&mut rec, 800, -800);
        let trace = rec.finish();
        assert!(trace.travel.is_empty());
        assert_eq!(trace.strokes.len(), 1);
        assert_eq!(trace.strokes[0].len(), 2);
        assert_eq!(format!("{:.1}", trace.travel_length_mm()), "0.0");
    }
}
