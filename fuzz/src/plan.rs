//! Fuzz target of plotty-motion's lookahead planner: arbitrary operation sequences.

use std::collections::VecDeque;

use plotty_motion::kinematics::{AxiDrawSettings, Kinematics, Point, Resolution};
use plotty_motion::plan::{
    Action, Block, Cornering, MotionLimits, MotorLimits, PathItem, Pen, PlanError, PlannedItem,
    Planner, PlannerConfig, PlannerSlot, Tag,
};
use plotty_motion::time::Duration;

/// Relative slack for floating-point comparisons of limits.
const TOL: f64 = 1e-9;

/// Sequences of planner operations decoded from raw bytes: pushes of segments with arbitrary
/// (NaN, infinite, huge, repeated, nearly repeated) points and both pens, actions, pops and
/// finishes, on windows of 1 to 16 slots and configurations that may be invalid.
///
/// Invariants: nothing panics; a configuration or point is either accepted or refused with the
/// matching error; every popped block starts where the last one ended, ends exactly on an
/// accepted input point (in order), has finite speeds within its top speed (XY and per motor)
/// and an acceleration within its limit, ramps that fit its length; speeds are continuous and
/// zero around actions, pen changes and at the end; actions come out in order.
pub fn planner_ops(data: &[u8]) {
    let mut bytes = Bytes { data, pos: 0 };
    let Some(config) = decode_config(&mut bytes) else {
        return;
    };
    let window_len = 1 + usize::from(bytes.u8() % 16);
    let start = decode_start(&mut bytes);
    let mut window = vec![PlannerSlot::EMPTY; window_len];
    let mut planner = match Planner::new(config, start, &mut window) {
        Ok(p) => p,
        Err(PlanError::NonFinitePoint | PlanError::PointOutOfRange) => {
            assert!(!start.is_finite() || start.x_mm.abs().max(start.y_mm.abs()) > 1e6);
            return;
        }
        Err(e) => panic!("unexpected {e}"),
    };
    let mut check = Checker::new(config, start);
    let mut vertex = 0u32;
    while !bytes.is_empty() {
        let op = bytes.u8();
        match op % 8 {
            0..=2 => {
                let pen = if op & 0x80 == 0 { Pen::Down } else { Pen::Up };
                let to = decode_point(&mut bytes, planner.position());
                vertex = vertex.wrapping_add(1);
                let before = planner.position();
                let item = PathItem::Segment {
                    to,
                    pen,
                    tag: Tag { stroke: 0, vertex },
                };
                match planner.push(item) {
                    Ok(()) => {
                        if planner.position() != before {
                            assert_eq!(planner.position(), to);
                            check.expect(Expected::Point(to, pen));
                        }
                    }
                    Err(PlanError::WindowFull) => assert_eq!(planner.len(), planner.capacity()),
                    Err(PlanError::NonFinitePoint) => assert!(!to.is_finite()),
                    Err(PlanError::PointOutOfRange) => {
                        assert!(to.x_mm.abs() > 1e6 || to.y_mm.abs() > 1e6)
                    }
                    Err(e) => panic!("unexpected {e}"),
                }
                assert!(planner.position().is_finite());
            }
            3 => {
                let action = match bytes.u8() % 4 {
                    0 => Action::PenUp,
                    1 => Action::PenDown,
                    2 => Action::Pause,
                    _ => Action::Dwell(Duration::from_millis(u64::from(bytes.u8()))),
                };
                match planner.push(PathItem::Action(action)) {
                    Ok(()) => check.expect(Expected::Action(action)),
                    Err(PlanError::WindowFull) => assert_eq!(planner.len(), planner.capacity()),
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            4 | 5 => {
                if let Some(planned) = planner.pop() {
                    check.popped(planned);
                }
            }
            6 => {
                planner.finish();
                check.finished();
            }
            _ => {
                while let Some(planned) = planner.pop() {
                    check.popped(planned);
                }
            }
        }
    }
    planner.finish();
    check.finished();
    while let Some(planned) = planner.pop() {
        check.popped(planned);
    }
    assert!(planner.is_empty());
    check.done();
}

/// What the planner was given, in order, that must come out again.
#[derive(Clone, Copy, Debug)]
enum Expected {
    /// An accepted segment end.
    Point(Point, Pen),
    Action(Action),
    /// A `finish`: the machine is at rest here.
    Rest,
}

struct Checker {
    config: PlannerConfig,
    expected: VecDeque<Expected>,
    position: Point,
    last: Option<Block>,
    /// An action or a finish came after the last popped block: the next one starts at rest.
    rest: bool,
}

impl Checker {
    fn new(config: PlannerConfig, start: Point) -> Self {
        Self {
            config,
            expected: VecDeque::new(),
            position: start,
            last: None,
            rest: true,
        }
    }

    fn expect(&mut self, e: Expected) {
        self.expected.push_back(e);
    }

    fn finished(&mut self) {
        if !matches!(self.expected.back(), Some(Expected::Rest)) {
            self.expected.push_back(Expected::Rest);
        }
    }

    /// Consumes rest markers at the front of the queue.
    fn skip_rests(&mut self) {
        while let Some(Expected::Rest) = self.expected.front() {
            self.expected.pop_front();
            self.at_rest();
        }
    }

    fn at_rest(&mut self) {
        if let Some(last) = &self.last {
            assert_eq!(last.exit_mm_s, 0.0, "at rest at an action or a finish");
        }
        self.rest = true;
    }

    fn popped(&mut self, planned: PlannedItem) {
        match planned {
            PlannedItem::Action(a) => {
                self.skip_rests();
                match self.expected.pop_front() {
                    Some(Expected::Action(want)) => assert_eq!(a, want),
                    other => panic!("action {a:?} popped, expected {other:?}"),
                }
                self.at_rest();
            }
            PlannedItem::Block(b) => self.block(b),
        }
    }

    fn block(&mut self, b: Block) {
        assert_eq!(b.start, self.position, "blocks are continuous");
        self.skip_rests();
        // The end is an accepted input point; skipped points were merged away (same pen, no
        // rest in between).
        loop {
            match self.expected.pop_front() {
                Some(Expected::Point(p, pen)) => {
                    if p == b.end && pen == b.pen {
                        break;
                    }
                    assert_eq!(pen, b.pen, "only same-pen points merge");
                }
                other => panic!("block {b:?} popped, expected {other:?}"),
            }
        }
        self.position = b.end;
        for v in [
            b.entry_mm_s,
            b.cruise_mm_s,
            b.exit_mm_s,
            b.accel_mm_s2,
            b.length_mm,
        ] {
            assert!(v.is_finite() && v >= 0.0, "{b:?}");
        }
        let (dx, dy) = (b.end.x_mm - b.start.x_mm, b.end.y_mm - b.start.y_mm);
        let length = dx.hypot(dy);
        assert!(
            (b.length_mm - length).abs() <= 1e-9 * (1.0 + length),
            "{b:?}"
        );
        assert!(b.length_mm > 1e-9);
        let (vmax, amax) = self.config.limits_along(b.pen, dx, dy);
        assert!(b.cruise_mm_s <= vmax * (1.0 + TOL), "{b:?} over {vmax}");
        assert!(
            b.entry_mm_s <= b.cruise_mm_s && b.exit_mm_s <= b.cruise_mm_s,
            "{b:?}"
        );
        assert!(
            b.accel_mm_s2 > 0.0 && b.accel_mm_s2 <= amax * (1.0 + TOL),
            "{b:?}"
        );
        let ramps = b.accel_distance_mm() + b.decel_distance_mm();
        assert!(ramps <= b.length_mm * (1.0 + TOL) + 1e-9, "{b:?}");
        let motors = self.config.motors();
        let busiest = motors
            .kinematics
            .busiest_motor_steps_per_mm(dx / length, dy / length);
        if let Some(rate) = motors.max_step_rate_hz {
            assert!(b.cruise_mm_s * busiest <= rate * (1.0 + TOL), "{b:?}");
        }
        if let Some(accel) = motors.max_step_accel_hz_s {
            assert!(b.accel_mm_s2 * busiest <= accel * (1.0 + TOL), "{b:?}");
        }
        match &self.last {
            Some(last) if !self.rest => {
                assert_eq!(last.exit_mm_s, b.entry_mm_s, "continuous speed");
                if last.pen != b.pen {
                    assert_eq!(b.entry_mm_s, 0.0, "at rest at a pen change");
                }
            }
            _ => assert_eq!(b.entry_mm_s, 0.0, "starts at rest"),
        }
        self.rest = false;
        self.last = Some(b);
    }

    fn done(&self) {
        assert!(
            self.expected.iter().all(|e| matches!(e, Expected::Rest)),
            "never came out: {:?}",
            self.expected
        );
        if let Some(last) = &self.last {
            assert_eq!(last.exit_mm_s, 0.0, "ends at rest");
        }
    }
}

struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bytes<'_> {
    fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The next byte, 0 past the end.
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn i8(&mut self) -> i8 {
        self.u8() as i8
    }

    /// Eight bytes as a raw f64 (any bit pattern: NaN, infinities, subnormals).
    fn f64(&mut self) -> f64 {
        let mut raw = [0u8; 8];
        for b in &mut raw {
            *b = self.u8();
        }
        f64::from_le_bytes(raw)
    }
}

fn decode_config(bytes: &mut Bytes<'_>) -> Option<PlannerConfig> {
    let k = Kinematics::new(Resolution::High);
    let mode = bytes.u8();
    let result = match mode % 4 {
        0 => PlannerConfig::axidraw(&AxiDrawSettings::default()),
        1 => {
            let limits = |v: f64, a: f64| MotionLimits {
                max_speed_mm_s: v,
                accel_mm_s2: a,
                cornering: Cornering::JunctionDeviation {
                    deviation_mm: 0.127,
                },
            };
            PlannerConfig::new(
                limits(200.0, 400.0),
                limits(50.0, 200.0),
                MotorLimits::none(k),
            )
        }
        2 => {
            // Sane but varied limits from single bytes.
            let limits = |bytes: &mut Bytes<'_>| {
                let v = 0.5 + f64::from(bytes.u8()) * 4.0;
                let a = 1.0 + f64::from(bytes.u8()) * 40.0;
                let c = f64::from(bytes.u8()) / 64.0;
                let cornering = if bytes.u8().is_multiple_of(2) {
                    Cornering::JunctionDeviation { deviation_mm: c }
                } else {
                    Cornering::AxiDraw {
                        cornering: c * 10.0,
                    }
                };
                MotionLimits {
                    max_speed_mm_s: v,
                    accel_mm_s2: a,
                    cornering,
                }
            };
            let up = limits(bytes);
            let down = limits(bytes);
            let flags = bytes.u8();
            let motors = MotorLimits {
                kinematics: if flags & 1 == 0 {
                    k
                } else {
                    Kinematics::new(Resolution::Low)
                },
                max_step_rate_hz: (flags & 2 != 0).then(|| 100.0 + f64::from(bytes.u8()) * 200.0),
                max_step_accel_hz_s: (flags & 4 != 0).then(|| 100.0 + f64::from(bytes.u8()) * 1e4),
            };
            PlannerConfig::new(up, down, motors)
        }
        _ => {
            // Raw numbers: mostly refused, which must be a typed error, never a panic.
            let limits = |bytes: &mut Bytes<'_>| MotionLimits {
                max_speed_mm_s: bytes.f64(),
                accel_mm_s2: bytes.f64(),
                cornering: Cornering::JunctionDeviation {
                    deviation_mm: bytes.f64(),
                },
            };
            let up = limits(bytes);
            let down = limits(bytes);
            let motors = MotorLimits {
                kinematics: k,
                max_step_rate_hz: Some(bytes.f64()),
                max_step_accel_hz_s: None,
            };
            PlannerConfig::new(up, down, motors)
        }
    };
    match result {
        Ok(config) => Some(config),
        Err(PlanError::InvalidLimit { .. }) => None,
        Err(e) => panic!("unexpected {e}"),
    }
}

fn decode_start(bytes: &mut Bytes<'_>) -> Point {
    match bytes.u8() % 4 {
        0 => Point::ORIGIN,
        1 => Point::new(f64::from(bytes.i8()), f64::from(bytes.i8())),
        2 => Point::new(1e5 + f64::from(bytes.i8()), -1e5),
        _ => Point::new(bytes.f64(), bytes.f64()),
    }
}

fn decode_point(bytes: &mut Bytes<'_>, from: Point) -> Point {
    match bytes.u8() % 8 {
        // On a 0.25 mm grid: exact collinear runs, reversals, repeats.
        0 | 1 => Point::new(f64::from(bytes.i8()) * 0.25, f64::from(bytes.i8()) * 0.25),
        // A small step from where we are.
        2 | 3 => Point::new(
            from.x_mm + f64::from(bytes.i8()) / 16.0,
            from.y_mm + f64::from(bytes.i8()) / 16.0,
        ),
        // The same point, or a hair away from it.
        4 => from,
        5 => Point::new(from.x_mm + f64::from(bytes.i8()) * 1e-10, from.y_mm),
        // Long moves, near or beyond the coordinate bound.
        6 => Point::new(
            f64::from(bytes.i8()) * 8000.0,
            f64::from(bytes.i8()) * 7900.0,
        ),
        _ => Point::new(bytes.f64(), bytes.f64()),
    }
}
