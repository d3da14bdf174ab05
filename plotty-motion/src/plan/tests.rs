//! Planner tests: scenarios, and property tests against the full-knowledge reference planner
//! (`reference.rs`) on random polylines and random limits.

use core::f64::consts::{FRAC_PI_2, PI};
use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::reference::{self, RefSegment};
use super::*;
use crate::kinematics::{AxiDrawSettings, Kinematics, Resolution};
use crate::time::Duration;

/// Relative tolerance for floating-point comparisons.
const TOL: f64 = 1e-9;

fn jd_limits(v: f64, a: f64, deviation_mm: f64) -> MotionLimits {
    MotionLimits {
        max_speed_mm_s: v,
        accel_mm_s2: a,
        cornering: Cornering::JunctionDeviation { deviation_mm },
    }
}

/// saxi's comparison limits, no per-motor limits.
fn saxi_config() -> PlannerConfig {
    PlannerConfig::new(
        jd_limits(200.0, 400.0, 0.127),
        jd_limits(50.0, 200.0, 0.127),
        MotorLimits::none(Kinematics::new(Resolution::High)),
    )
    .unwrap()
}

fn seg(x: f64, y: f64, pen: Pen, vertex: u32) -> PathItem {
    PathItem::Segment {
        to: Point::new(x, y),
        pen,
        tag: Tag { stroke: 0, vertex },
    }
}

/// Runs `items` through a planner with `window` slots, popping eagerly after every push when
/// `eager`, otherwise only when the window is full; then finishes and drains.
fn run_with(
    config: PlannerConfig,
    start: Point,
    items: &[PathItem],
    window: usize,
    eager: bool,
) -> (Vec<PlannedItem>, u64) {
    let mut slots = vec![PlannerSlot::EMPTY; window];
    let mut planner = Planner::new(config, start, &mut slots).unwrap();
    let mut out = Vec::new();
    for &item in items {
        loop {
            match planner.push(item) {
                Ok(()) => break,
                Err(PlanError::WindowFull) => {
                    out.push(planner.pop().expect("a full window always releases"));
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        if eager {
            while let Some(planned) = planner.pop() {
                out.push(planned);
            }
        }
    }
    planner.finish();
    while let Some(planned) = planner.pop() {
        out.push(planned);
    }
    assert!(planner.is_empty());
    (out, planner.forced_releases())
}

fn run(config: PlannerConfig, items: &[PathItem], window: usize) -> (Vec<PlannedItem>, u64) {
    run_with(config, Point::ORIGIN, items, window, true)
}

fn blocks(planned: &[PlannedItem]) -> Vec<Block> {
    planned
        .iter()
        .filter_map(|p| match p {
            PlannedItem::Block(b) => Some(*b),
            PlannedItem::Action(_) => None,
        })
        .collect()
}

fn total_time_s(planned: &[PlannedItem]) -> f64 {
    blocks(planned).iter().map(Block::duration_s).sum()
}

fn close(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= TOL * (scale + a.abs().max(b.abs()))
}

/// Every invariant of a plan that does not need the reference: limits, continuity, rests,
/// end points. Returns the matching of blocks to reference segments (index of the reference
/// segment each block ends with).
fn check_invariants(
    config: &PlannerConfig,
    start: Point,
    items: &[PathItem],
    planned: &[PlannedItem],
    reference: &[RefSegment],
) -> Vec<usize> {
    let actions_in: Vec<Action> = items
        .iter()
        .filter_map(|i| match i {
            PathItem::Action(a) => Some(*a),
            PathItem::Segment { .. } => None,
        })
        .collect();
    let actions_out: Vec<Action> = planned
        .iter()
        .filter_map(|p| match p {
            PlannedItem::Action(a) => Some(*a),
            PlannedItem::Block(_) => None,
        })
        .collect();
    assert_eq!(actions_in, actions_out, "actions pass through in order");

    // Tags are checked when they number the input items (as `items_from` does).
    let tags_are_indices = items.iter().enumerate().all(|(i, item)| match item {
        PathItem::Segment { tag, .. } => tag.vertex as usize == i,
        PathItem::Action(_) => true,
    });
    let mut matched = Vec::new();
    let mut next_ref = 0usize;
    let mut position = start;
    let mut previous: Option<(Block, bool)> = None; // (block, an action came after it)
    for p in planned {
        let b = match p {
            PlannedItem::Action(_) => {
                if let Some((prev, _)) = previous {
                    assert_eq!(prev.exit_mm_s, 0.0, "at rest before an action");
                    previous = Some((prev, true));
                }
                continue;
            }
            PlannedItem::Block(b) => *b,
        };
        // Continuity and exact end points.
        assert_eq!(b.start, position, "each block starts where the last ended");
        let j = loop {
            let r = reference
                .get(next_ref)
                .unwrap_or_else(|| panic!("block {b:?} ends at no input point"));
            next_ref += 1;
            if r.end == b.end && r.pen == b.pen {
                break next_ref - 1;
            }
            assert!(
                !r.rest_after,
                "input point {:?} before a rest point is not a block end",
                r.end
            );
        };
        matched.push(j);
        position = b.end;
        // Tag: that of the input segment ending here, or of a dropped one continuing it.
        let item_index = reference[j].item_index;
        let next_index = reference.get(j + 1).map_or(usize::MAX, |r| r.item_index);
        let v = b.tag.vertex as usize;
        assert!(
            !tags_are_indices || (v >= item_index && v < next_index),
            "tag {v} outside {item_index}..{next_index}"
        );

        // Speeds finite, ordered, within the block's limits.
        let (dx, dy) = (b.end.x_mm - b.start.x_mm, b.end.y_mm - b.start.y_mm);
        let len = dx.hypot(dy);
        assert!(close(b.length_mm, len, 0.0), "{} vs {len}", b.length_mm);
        let (vmax, amax) = reference::limits_along(config, b.pen, dx, dy);
        for v in [b.entry_mm_s, b.cruise_mm_s, b.exit_mm_s, b.accel_mm_s2] {
            assert!(v.is_finite() && v >= 0.0, "{b:?}");
        }
        assert!(
            b.cruise_mm_s <= vmax * (1.0 + TOL),
            "cruise over the top speed {b:?}"
        );
        assert!(b.entry_mm_s <= b.cruise_mm_s && b.exit_mm_s <= b.cruise_mm_s);
        assert!(b.accel_mm_s2 <= amax * (1.0 + TOL) && b.accel_mm_s2 > 0.0);
        let ramps = b.accel_distance_mm() + b.decel_distance_mm();
        assert!(
            ramps <= b.length_mm * (1.0 + TOL) + 1e-12,
            "ramps {ramps} longer than the block {b:?}"
        );
        // Per motor: step rate and step acceleration of the busier motor.
        let motors = config.motors();
        let busiest = motors
            .kinematics
            .busiest_motor_steps_per_mm(dx / len, dy / len);
        if let Some(rate) = motors.max_step_rate_hz {
            assert!(
                b.cruise_mm_s * busiest <= rate * (1.0 + TOL),
                "motor rate {b:?}"
            );
        }
        if let Some(accel) = motors.max_step_accel_hz_s {
            assert!(
                b.accel_mm_s2 * busiest <= accel * (1.0 + TOL),
                "motor accel {b:?}"
            );
        }
        // The junction with the block before.
        match previous {
            None => assert_eq!(b.entry_mm_s, 0.0, "starts at rest"),
            Some((prev, after_action)) => {
                assert_eq!(prev.exit_mm_s, b.entry_mm_s, "speed continuous");
                if after_action || prev.pen != b.pen {
                    assert_eq!(b.entry_mm_s, 0.0, "at rest after an action or pen change");
                } else {
                    let (px, py) = (
                        prev.end.x_mm - prev.start.x_mm,
                        prev.end.y_mm - prev.start.y_mm,
                    );
                    let pl = px.hypot(py);
                    let (ux, uy, wx, wy) = (px / pl, py / pl, dx / len, dy / len);
                    let corner = reference::corner_speed_sqr(
                        config.limits(b.pen).cornering,
                        (ux, uy),
                        (wx, wy),
                        prev.accel_mm_s2.min(b.accel_mm_s2),
                        config.motors().kinematics.steps_per_mm(),
                    );
                    let (pvmax, _) = reference::limits_along(config, prev.pen, px, py);
                    let limit_sqr = corner.min(pvmax * pvmax).min(vmax * vmax);
                    // Near a reversal, sin(θ/2) = sqrt((1 + dot)/2) turns a rounding error of
                    // 1e-16 in the directions into 1e-8: allow the corner speed² that causes.
                    let limits = config.limits(b.pen);
                    let noise_sqr = limits.accel_mm_s2 * limits.cornering.deviation_mm() * 1e-6;
                    assert!(
                        b.entry_mm_s.powi(2) <= limit_sqr * (1.0 + 1e-9) + noise_sqr,
                        "junction {} over its limit {}",
                        b.entry_mm_s,
                        limit_sqr.sqrt()
                    );
                }
            }
        }
        previous = Some((b, false));
    }
    if let Some((last, _)) = previous {
        assert_eq!(last.exit_mm_s, 0.0, "ends at rest");
    }
    assert_eq!(position, reference.last().map_or(start, |r| r.end));
    assert!(
        reference[next_ref..].is_empty(),
        "every input point reached"
    );
    matched
}

/// Speed² (mm²/s²) that rounding alone gives a corner near a reversal: there `sin(θ/2)` is
/// set by the last bits of the directions (a rounding error of 1e-16 in their dot product is
/// 1e-8 in `sin(θ/2)`). The reference computes the corner exactly from its directions
/// (`reference::corner_speed_sqr`), the planner through `sqrt((1 + dot)/2)`; the same
/// allowance as the junction check of [`check_invariants`].
fn reversal_noise_sqr(config: &PlannerConfig) -> f64 {
    [Pen::Up, Pen::Down]
        .into_iter()
        .map(|pen| {
            let limits = config.limits(pen);
            limits.accel_mm_s2 * limits.cornering.deviation_mm() * 1e-6
        })
        .fold(0.0, f64::max)
}

/// Compares a streaming plan with the reference: equal (`optimal`, up to `noise_sqr` in speed²,
/// see [`reversal_noise_sqr`]) or never faster.
fn check_against_reference(
    planned: &[PlannedItem],
    reference: &[RefSegment],
    matched: &[usize],
    optimal: bool,
    speed_scale: f64,
    noise_sqr: f64,
) {
    let bs = blocks(planned);
    // Exits that match within a tolerance (or the reversal noise) but not exactly: each
    // difference shifts the plot time by at most the ramps into and out of it, 2·|Δv|/a.
    let mut noisy = 0.0;
    for (b, &j) in bs.iter().zip(matched) {
        let want = reference[j].exit_mm_s;
        let noise = (b.exit_mm_s.powi(2) - want.powi(2)).abs() <= noise_sqr;
        if optimal {
            assert!(
                close(b.exit_mm_s, want, speed_scale) || noise,
                "exit {} vs optimal {want} at {:?}",
                b.exit_mm_s,
                b.end
            );
        } else {
            assert!(
                b.exit_mm_s <= want + TOL * (speed_scale + want) || noise,
                "exit {} faster than optimal {want}",
                b.exit_mm_s
            );
        }
        // Only a faster exit can make a small-window plan beat the optimum.
        let dv = if optimal {
            (b.exit_mm_s - want).abs()
        } else {
            (b.exit_mm_s - want).max(0.0)
        };
        noisy += 2.0 * dv / b.accel_mm_s2.min(reference[j].accel_mm_s2);
    }
    let ours = total_time_s(planned);
    let best: f64 = reference.iter().map(RefSegment::duration_s).sum();
    if optimal {
        assert!(
            (ours - best).abs() <= noisy + TOL * (1e-6 + ours.max(best)),
            "plot time {ours} vs optimal {best} (exit differences allow {noisy})"
        );
    } else {
        assert!(
            ours >= best * (1.0 - TOL) - noisy,
            "plot time {ours} beats optimal {best}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies.

#[derive(Clone, Debug)]
enum Step {
    Move { length_mm: f64, turn_rad: f64 },
    Grid { dx: i8, dy: i8 },
    Repeat,
    TogglePen,
    Act(u8),
}

fn length_mm() -> impl Strategy<Value = f64> {
    prop_oneof![0.001f64..0.1, 0.1f64..5.0, 5.0f64..50.0]
}

fn turn_rad() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(PI),
        Just(FRAC_PI_2),
        -PI..PI,
        -0.05f64..0.05,
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (length_mm(), turn_rad()).prop_map(|(length_mm, turn_rad)| Step::Move { length_mm, turn_rad }),
        4 => (-3i8..=3, -3i8..=3).prop_map(|(dx, dy)| Step::Grid { dx, dy }),
        1 => Just(Step::Repeat),
        1 => Just(Step::TogglePen),
        1 => (0u8..4).prop_map(Step::Act),
    ]
}

fn items_from(steps: &[Step]) -> Vec<PathItem> {
    let mut items = Vec::new();
    let (mut x, mut y, mut heading) = (0.0f64, 0.0f64, 0.0f64);
    let mut pen = Pen::Down;
    for (i, s) in steps.iter().enumerate() {
        let tag = Tag {
            stroke: 0,
            vertex: items.len() as u32,
        };
        match *s {
            Step::Move {
                length_mm,
                turn_rad,
            } => {
                heading += turn_rad;
                x += length_mm * heading.cos();
                y += length_mm * heading.sin();
            }
            Step::Grid { dx, dy } => {
                x = (x * 4.0).round() / 4.0 + f64::from(dx) * 0.25;
                y = (y * 4.0).round() / 4.0 + f64::from(dy) * 0.25;
            }
            Step::Repeat => {}
            Step::TogglePen => {
                pen = match pen {
                    Pen::Up => Pen::Down,
                    Pen::Down => Pen::Up,
                };
                continue;
            }
            Step::Act(k) => {
                let action = match k {
                    0 => Action::PenUp,
                    1 => Action::PenDown,
                    2 => Action::Pause,
                    _ => Action::Dwell(Duration::from_millis(i as u64)),
                };
                items.push(PathItem::Action(action));
                continue;
            }
        }
        items.push(PathItem::Segment {
            to: Point::new(x, y),
            pen,
            tag,
        });
    }
    items
}

/// Deviations from 0.001 mm: at exactly 0 the junction-deviation rule jumps from "stop" to
/// "no limit" between a corner of one rounding error and an exactly straight one, so the plan
/// of a merged block (one direction) and of its unmerged segments (directions a rounding error
/// apart) may legitimately differ. `zero_deviation_stops_at_every_corner` covers 0.
fn cornering() -> impl Strategy<Value = Cornering> {
    prop_oneof![
        (0.001f64..1.0).prop_map(|deviation_mm| Cornering::JunctionDeviation { deviation_mm }),
        (0.0f64..50.0).prop_map(|cornering| Cornering::AxiDraw { cornering }),
        (100.0f64..20_000.0).prop_map(|max_jump_hz| Cornering::MotorJump { max_jump_hz }),
    ]
}

fn motion_limits() -> impl Strategy<Value = MotionLimits> {
    (1.0f64..500.0, 10.0f64..5000.0, cornering()).prop_map(|(v, a, cornering)| MotionLimits {
        max_speed_mm_s: v,
        accel_mm_s2: a,
        cornering,
    })
}

fn motor_limits() -> impl Strategy<Value = MotorLimits> {
    (
        any::<bool>(),
        proptest::option::of(1_000.0f64..50_000.0),
        proptest::option::of(10_000.0f64..1_000_000.0),
    )
        .prop_map(|(high, rate, accel)| MotorLimits {
            kinematics: Kinematics::new(if high {
                Resolution::High
            } else {
                Resolution::Low
            }),
            max_step_rate_hz: rate,
            max_step_accel_hz_s: accel,
        })
}

/// XY-limited and motor-limited configurations alike.
fn config() -> impl Strategy<Value = PlannerConfig> {
    (
        motion_limits(),
        motion_limits(),
        motor_limits(),
        any::<bool>(),
    )
        .prop_map(|(up, down, motors, per_motor)| {
            if per_motor {
                PlannerConfig::per_motor(up, down, motors).unwrap()
            } else {
                PlannerConfig::new(up, down, motors).unwrap()
            }
        })
}

fn speed_scale(config: &PlannerConfig) -> f64 {
    config
        .limits(Pen::Up)
        .max_speed_mm_s
        .max(config.limits(Pen::Down).max_speed_mm_s)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The planner's limit functions against the reference's own (first principles): the
    /// speed and acceleration along any direction, and the corner speed for any turn. Near a
    /// reversal the planner's `sqrt((1 + dot)/2)` keeps only the rounding of `dot`, so there
    /// the two agree to the reversal noise of [`reversal_noise_sqr`]; right at the AxiDraw
    /// cut-off (`1 − sin(θ/2) = 1e-4`) a last-bit difference may pick either side.
    #[test]
    fn limit_functions_agree_with_the_reference(
        config in config(),
        heading in -PI..PI,
        turn in prop_oneof![-PI..PI, -1e-3f64..1e-3, Just(FRAC_PI_2), Just(PI)],
        down in any::<bool>(),
    ) {
        let pen = if down { Pen::Down } else { Pen::Up };
        let (dx, dy) = (heading.cos(), heading.sin());
        let (v, a) = config.limits_along(pen, 3.0 * dx, 3.0 * dy);
        let (rv, ra) = reference::limits_along(&config, pen, 3.0 * dx, 3.0 * dy);
        prop_assert!((v - rv).abs() <= 1e-12 * rv, "speed {v} vs {rv}");
        prop_assert!((a - ra).abs() <= 1e-12 * ra, "accel {a} vs {ra}");

        let cornering = config.limits(pen).cornering;
        let u = (dx, dy);
        let w = ((heading + turn).cos(), (heading + turn).sin());
        let got = config.corner_speed_sqr(pen, u, w, a);
        let want = reference::corner_speed_sqr(
            cornering,
            u,
            w,
            a,
            config.motors().kinematics.steps_per_mm(),
        );
        let one_minus_s = 2.0 * (turn.abs() / 4.0).sin().powi(2);
        let at_cut_off = matches!(cornering, Cornering::AxiDraw { .. })
            && (one_minus_s - 1e-4).abs() < 1e-12;
        prop_assume!(!at_cut_off);
        if want.is_infinite() || got.is_infinite() {
            prop_assert_eq!(got, want);
        } else {
            let noise = a * cornering.deviation_mm() * 1e-6;
            prop_assert!(
                (got - want).abs() <= 1e-9 * want + noise,
                "corner {got} vs {want} for a turn of {turn}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn large_window_is_optimal(config in config(), steps in prop::collection::vec(step(), 1..300)) {
        let items = items_from(&steps);
        let reference = reference::plan(&config, Point::ORIGIN, &items);
        let (planned, forced) = run(config, &items, 1024);
        prop_assert_eq!(forced, 0);
        let matched = check_invariants(&config, Point::ORIGIN, &items, &planned, &reference);
        check_against_reference(
            &planned,
            &reference,
            &matched,
            true,
            speed_scale(&config),
            reversal_noise_sqr(&config),
        );
        // Popping lazily (only when full, then at the end) gives the same plan (up to the
        // rounding of reaches, which restart at zero whenever the window runs empty).
        let (lazy, _) = run_with(config, Point::ORIGIN, &items, 1024, false);
        prop_assert_eq!(lazy.len(), planned.len());
        let scale = speed_scale(&config);
        for (l, p) in lazy.iter().zip(&planned) {
            match (l, p) {
                (PlannedItem::Block(l), PlannedItem::Block(p)) => {
                    prop_assert_eq!((l.start, l.end, l.tag), (p.start, p.end, p.tag));
                    prop_assert!(close(l.entry_mm_s, p.entry_mm_s, scale));
                    prop_assert!(close(l.cruise_mm_s, p.cruise_mm_s, scale));
                    prop_assert!(close(l.exit_mm_s, p.exit_mm_s, scale));
                }
                (l, p) => prop_assert_eq!(l, p),
            }
        }
    }

    #[test]
    fn small_window_is_safe(
        config in config(),
        steps in prop::collection::vec(step(), 1..300),
        window in 1usize..8,
        eager in any::<bool>(),
    ) {
        let items = items_from(&steps);
        let reference = reference::plan(&config, Point::ORIGIN, &items);
        let (planned, _) = run_with(config, Point::ORIGIN, &items, window, eager);
        let matched = check_invariants(&config, Point::ORIGIN, &items, &planned, &reference);
        check_against_reference(
            &planned,
            &reference,
            &matched,
            false,
            speed_scale(&config),
            reversal_noise_sqr(&config),
        );
    }

    #[test]
    fn far_from_home_is_optimal(
        config in config(),
        steps in prop::collection::vec(step(), 1..200),
        x0 in -5.0e5f64..5.0e5,
    ) {
        // Large coordinates: the same plan must come out (only the rounding of the points differs).
        let start = Point::new(x0, -x0 / 3.0);
        let items: Vec<PathItem> = items_from(&steps)
            .into_iter()
            .map(|i| match i {
                PathItem::Segment { to, pen, tag } => PathItem::Segment {
                    to: Point::new(to.x_mm + start.x_mm, to.y_mm + start.y_mm),
                    pen,
                    tag,
                },
                other => other,
            })
            .collect();
        let reference = reference::plan(&config, start, &items);
        let (planned, forced) = run_with(config, start, &items, 512, true);
        prop_assert_eq!(forced, 0);
        let matched = check_invariants(&config, start, &items, &planned, &reference);
        check_against_reference(
            &planned,
            &reference,
            &matched,
            true,
            speed_scale(&config),
            reversal_noise_sqr(&config),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

#[test]
fn single_segment_from_rest_to_rest() {
    let items = [seg(100.0, 0.0, Pen::Down, 1)];
    let (planned, _) = run(saxi_config(), &items, 4);
    let b = blocks(&planned);
    assert_eq!(b.len(), 1);
    assert_eq!(
        (b[0].entry_mm_s, b[0].cruise_mm_s, b[0].exit_mm_s),
        (0.0, 50.0, 0.0)
    );
    // 0.25 s up, 87.5 mm at 50 mm/s, 0.25 s down.
    assert!((b[0].duration_s() - 2.25).abs() < 1e-12);
}

#[test]
fn collinear_segments_merge_into_one_block() {
    let items: Vec<PathItem> = (1..=10_000)
        .map(|i| seg(f64::from(i) * 0.05, 0.0, Pen::Down, i as u32))
        .collect();
    let (planned, forced) = run(saxi_config(), &items, 2);
    assert_eq!(forced, 0);
    let b = blocks(&planned);
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(b[0].end, Point::new(500.0, 0.0));
    assert_eq!(b[0].tag.vertex, 10_000);
    assert!((b[0].duration_s() - 10.25).abs() < 1e-9);
}

#[test]
fn blocks_are_released_before_the_end_once_final() {
    // A zig-zag of 10 mm legs at 90°: the corner speed is low, so each block is final as soon
    // as the braking distance from that corner speed follows it.
    let config = saxi_config();
    let mut slots = [PlannerSlot::EMPTY; 16];
    let mut planner = Planner::new(config, Point::ORIGIN, &mut slots).unwrap();
    let mut released = 0;
    for i in 0..100u32 {
        let x = f64::from(i + 1) * 10.0;
        let y = if i % 2 == 0 { 0.0 } else { 10.0 };
        planner.push(seg(x, y, Pen::Down, i)).unwrap();
        while planner.pop().is_some() {
            released += 1;
        }
        assert!(planner.len() <= 2, "final blocks are released");
    }
    assert!(released >= 98);
    assert_eq!(planner.forced_releases(), 0);
}

#[test]
fn full_window_releases_safely_and_counts() {
    // A long, finely divided arc: a 2-slot window cannot see the braking distance.
    let items: Vec<PathItem> = (1..200)
        .map(|i| {
            let t = f64::from(i) * 0.01;
            seg(100.0 * t.cos(), 100.0 * t.sin(), Pen::Down, i as u32)
        })
        .collect();
    let (small, forced) = run(saxi_config(), &items, 2);
    assert!(forced > 0);
    let (large, none) = run(saxi_config(), &items, 256);
    assert_eq!(none, 0);
    assert!(total_time_s(&small) > total_time_s(&large));
    let reference = reference::plan(&saxi_config(), Point::ORIGIN, &items);
    let matched = check_invariants(&saxi_config(), Point::ORIGIN, &items, &small, &reference);
    check_against_reference(
        &small,
        &reference,
        &matched,
        false,
        200.0,
        reversal_noise_sqr(&saxi_config()),
    );
}

#[test]
fn window_full_is_reported_and_nothing_changes() {
    let mut slots = [PlannerSlot::EMPTY; 2];
    let mut planner = Planner::new(saxi_config(), Point::ORIGIN, &mut slots).unwrap();
    planner.push(seg(10.0, 0.0, Pen::Down, 0)).unwrap();
    planner.push(seg(10.0, 10.0, Pen::Down, 1)).unwrap();
    assert_eq!(
        planner.push(seg(0.0, 10.0, Pen::Down, 2)),
        Err(PlanError::WindowFull)
    );
    assert_eq!(
        planner.push(PathItem::Action(Action::PenUp)),
        Err(PlanError::WindowFull)
    );
    assert_eq!(planner.position(), Point::new(10.0, 10.0));
    // A zero-length segment or an exact continuation needs no slot.
    planner.push(seg(10.0, 10.0, Pen::Down, 3)).unwrap();
    planner.push(seg(10.0, 20.0, Pen::Down, 4)).unwrap();
    assert_eq!(planner.len(), 2);
    assert!(planner.pop().is_some());
    planner.push(seg(0.0, 20.0, Pen::Down, 5)).unwrap();
}

#[test]
fn rejects_bad_points_and_windows() {
    let mut slots = [PlannerSlot::EMPTY; 4];
    let mut planner = Planner::new(saxi_config(), Point::ORIGIN, &mut slots).unwrap();
    for bad in [
        Point::new(f64::NAN, 0.0),
        Point::new(0.0, f64::INFINITY),
        Point::new(f64::NEG_INFINITY, f64::NAN),
    ] {
        let item = PathItem::Segment {
            to: bad,
            pen: Pen::Down,
            tag: Tag::default(),
        };
        assert_eq!(planner.push(item), Err(PlanError::NonFinitePoint));
    }
    let far = PathItem::Segment {
        to: Point::new(2e6, 0.0),
        pen: Pen::Down,
        tag: Tag::default(),
    };
    assert_eq!(planner.push(far), Err(PlanError::PointOutOfRange));
    assert!(planner.is_empty());
    assert_eq!(planner.position(), Point::ORIGIN);

    let mut none: [PlannerSlot; 0] = [];
    assert_eq!(
        Planner::new(saxi_config(), Point::ORIGIN, &mut none).unwrap_err(),
        PlanError::EmptyWindow
    );
    let mut one = [PlannerSlot::EMPTY; 1];
    assert_eq!(
        Planner::new(saxi_config(), Point::new(f64::NAN, 0.0), &mut one).unwrap_err(),
        PlanError::NonFinitePoint
    );
}

#[test]
fn zero_length_segments_are_dropped_and_keep_their_tag() {
    let items = [
        seg(10.0, 0.0, Pen::Down, 1),
        seg(10.0 + 1e-10, 0.0, Pen::Down, 2),
        PathItem::Action(Action::PenUp),
        seg(10.0, 0.0, Pen::Up, 3),
    ];
    let (planned, _) = run(saxi_config(), &items, 8);
    assert_eq!(planned.len(), 2);
    match planned[0] {
        PlannedItem::Block(b) => {
            assert_eq!(b.end, Point::new(10.0, 0.0));
            assert_eq!(
                b.tag.vertex, 2,
                "the dropped segment's vertex is reached here"
            );
        }
        PlannedItem::Action(_) => panic!("block first"),
    }
    assert_eq!(planned[1], PlannedItem::Action(Action::PenUp));
}

#[test]
fn pen_changes_and_actions_stop_the_machine() {
    let items = [
        seg(10.0, 0.0, Pen::Up, 0),
        seg(20.0, 0.0, Pen::Down, 1),
        seg(30.0, 0.0, Pen::Down, 2),
        PathItem::Action(Action::Dwell(Duration::from_millis(5))),
        seg(40.0, 0.1, Pen::Down, 3),
    ];
    let (planned, _) = run(saxi_config(), &items, 8);
    let b = blocks(&planned);
    assert_eq!(b.len(), 3, "the two collinear pen-down segments merge");
    assert_eq!(b[0].exit_mm_s, 0.0);
    assert_eq!(b[1].entry_mm_s, 0.0);
    assert_eq!(b[1].exit_mm_s, 0.0);
    assert_eq!(b[2].entry_mm_s, 0.0);
    assert_eq!(b[0].cruise_mm_s, 200.0f64.min((400.0f64 * 10.0).sqrt()));
}

#[test]
fn per_motor_limit_lets_axis_moves_go_faster() {
    // XY limit 300 mm/s, motors 25 kHz at 80 steps/mm: 312.5 mm/s along X, 221 on a diagonal.
    let config = PlannerConfig::new(
        jd_limits(300.0, 1000.0, 0.1),
        jd_limits(300.0, 1000.0, 0.1),
        MotorLimits::ebb(Kinematics::new(Resolution::High)),
    )
    .unwrap();
    let items = [
        seg(200.0, 0.0, Pen::Down, 0),
        PathItem::Action(Action::Pause),
        seg(400.0, 200.0, Pen::Down, 1),
    ];
    let (planned, _) = run(config, &items, 8);
    let b = blocks(&planned);
    assert_eq!(b[0].cruise_mm_s, 300.0);
    let diagonal = 25_000.0 / (80.0 * 2f64.sqrt());
    assert!((b[1].cruise_mm_s - diagonal).abs() < 1e-9);
}

#[test]
fn finish_then_more_input_starts_from_rest() {
    let mut slots = [PlannerSlot::EMPTY; 8];
    let mut planner = Planner::new(saxi_config(), Point::ORIGIN, &mut slots).unwrap();
    planner.push(seg(10.0, 0.0, Pen::Down, 0)).unwrap();
    planner.finish();
    planner.push(seg(20.0, 0.0, Pen::Down, 1)).unwrap();
    planner.finish();
    let mut out = Vec::new();
    while let Some(p) = planner.pop() {
        out.push(p);
    }
    let b = blocks(&out);
    assert_eq!(b.len(), 2, "no merge across a finish");
    assert_eq!(b[0].exit_mm_s, 0.0);
    assert_eq!(b[1].entry_mm_s, 0.0);
}

#[test]
fn long_stream_through_a_small_window_stays_consistent() {
    // 200k random-walk segments through 64 slots: reaches re-base many times.
    let config = PlannerConfig::axidraw(&AxiDrawSettings::default()).unwrap();
    let mut slots = [PlannerSlot::EMPTY; 64];
    let mut planner = Planner::new(config, Point::new(100.0, 100.0), &mut slots).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let (mut x, mut y, mut h) = (100.0, 100.0, 0.0f64);
    let mut last_end = planner.position();
    let check = |p: PlannedItem, last_end: &mut Point| {
        if let PlannedItem::Block(b) = p {
            assert_eq!(b.start, *last_end);
            assert!(b.cruise_mm_s.is_finite() && b.cruise_mm_s <= 50.3);
            *last_end = b.end;
        }
    };
    for i in 0..200_000u32 {
        h += (rand() - 0.5) * 2.0;
        let l = 0.5 + 1.5 * rand();
        x = (x + l * h.cos()).clamp(0.0, 200.0);
        y = (y + l * h.sin()).clamp(0.0, 200.0);
        let item = seg(x, y, Pen::Down, i);
        while let Err(PlanError::WindowFull) = planner.push(item) {
            let p = planner.pop().unwrap();
            check(p, &mut last_end);
        }
        while let Some(p) = planner.pop() {
            check(p, &mut last_end);
        }
    }
    planner.finish();
    while let Some(p) = planner.pop() {
        check(p, &mut last_end);
    }
    assert_eq!(last_end, Point::new(x, y));
}

#[test]
fn zero_deviation_stops_at_every_corner() {
    let config = PlannerConfig::new(
        jd_limits(100.0, 100.0, 0.0),
        jd_limits(100.0, 100.0, 0.0),
        MotorLimits::none(Kinematics::new(Resolution::High)),
    )
    .unwrap();
    let items = [
        seg(10.0, 0.0, Pen::Down, 0),
        seg(20.0, 0.0, Pen::Down, 1),
        seg(30.0, 0.001, Pen::Down, 2),
        seg(30.0, 10.0, Pen::Down, 3),
    ];
    let (planned, _) = run(config, &items, 8);
    let b = blocks(&planned);
    assert_eq!(b.len(), 3, "the straight pair merges");
    assert!(b[0].exit_mm_s == 0.0 && b[1].exit_mm_s == 0.0);
    assert!(b[0].cruise_mm_s > 30.0);
}

#[test]
fn sizes() {
    let slot = core::mem::size_of::<PlannerSlot>();
    let planner = core::mem::size_of::<Planner<'static>>();
    std::eprintln!("PlannerSlot: {slot} bytes, Planner: {planner} bytes");
    assert!(64 * slot <= 8 * 1024, "a 64-slot window fits in 8 KiB");
    assert!(64 * slot + planner <= 8 * 1024 + 512);
}
