//! How hard a plan works each motor, read from the firmware moves the step generator hands out
//! (the command stream, as the board runs it): every motor's step rate and step acceleration in
//! every LM move, and the instantaneous step-rate change between consecutive moves (at a corner
//! the velocity jumps; within a block the moves join without one). Issue 13's measure of the
//! vendor's tool is the same: per-motor rate change between consecutive moves, in steps/s at
//! 16× microstepping.
//!
//! The report (`motor_stress_report`, ignored: a few seconds in a debug build) prints the
//! distribution and the planned time of random_walk_100k in file order for the XY model and the
//! motor-limited one: `cargo test --test e2e motor_stress_report -- --ignored --nocapture`.

// Test code: a failed expectation is a failed test (HELPERS.md: tests may unwrap).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use plotty_motion::kinematics::{AxiDrawSettings, Point};
use plotty_motion::plan::{
    Cornering, PathItem, Pen, PlanError, PlannedItem, Planner, PlannerConfig, PlannerSlot,
};
use plotty_motion::step::{FirmwareLine, Move, MoveCommand, MoveFormat, StepConfig, StepGenerator};

use crate::bench_drawings;

/// Firmware ticks per second.
const TICK_HZ: f64 = 25_000.0;
/// One step in rate-register units.
const STEP: f64 = (1u64 << 31) as f64;

/// One motor during one LM move, in steps/s and steps/s² (signed by direction).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MotorMotion {
    /// Step rate at the move's first tick.
    pub(crate) start_hz: f64,
    /// Step rate at the move's last tick.
    pub(crate) end_hz: f64,
    /// Step acceleration.
    pub(crate) accel_hz_s: f64,
}

/// What one move does to each motor; `None` for an SM move (not generated here).
pub(crate) fn motor_motion(m: &Move) -> Option<[MotorMotion; 2]> {
    let MoveCommand::Lm(lm) = m.command else {
        return None;
    };
    let mut out = [MotorMotion::default(); 2];
    for (i, o) in out.iter_mut().enumerate() {
        if lm.steps[i] == 0 {
            continue;
        }
        let sign = f64::from(lm.steps[i].signum());
        let a = f64::from(lm.accel[i]);
        // The firmware starts from R0 = Rate − trunc(Accel/2) and adds Accel before each tick.
        let r0 = f64::from(lm.rate[i]) - f64::from(lm.accel[i] / 2);
        let to_hz = sign * TICK_HZ / STEP;
        o.start_hz = (r0 + a) * to_hz;
        o.end_hz = (r0 + a * f64::from(m.ticks)) * to_hz;
        o.accel_hz_s = a * TICK_HZ * to_hz;
    }
    Some(out)
}

/// Every move of a plan, `None` where a pen action brings the machine to rest.
pub(crate) fn plan_moves(plan: PlannerConfig, items: &[PathItem]) -> Vec<Option<Move>> {
    let step = StepConfig::new(FirmwareLine::V3, MoveFormat::Lm, plan.motors().kinematics)
        .expect("3.x runs LM");
    let mut window = vec![PlannerSlot::EMPTY; 64];
    let mut planner = Planner::new(plan, Point::ORIGIN, &mut window).unwrap();
    let mut steps = StepGenerator::new(step);
    let mut out = Vec::new();
    let take = |planned: PlannedItem, steps: &mut StepGenerator, out: &mut Vec<_>| {
        match planned {
            PlannedItem::Block(b) => steps.push(&b).unwrap(),
            PlannedItem::Action(_) => {
                steps.finish();
                while let Some(m) = steps.pop() {
                    out.push(Some(m));
                }
                out.push(None);
                return;
            }
        }
        while let Some(m) = steps.pop() {
            out.push(Some(m));
        }
    };
    for &item in items {
        loop {
            match planner.push(item) {
                Ok(()) => break,
                Err(PlanError::WindowFull) => take(planner.pop().unwrap(), &mut steps, &mut out),
                Err(e) => panic!("{e}"),
            }
        }
        while let Some(p) = planner.pop() {
            take(p, &mut steps, &mut out);
        }
    }
    planner.finish();
    while let Some(p) = planner.pop() {
        take(p, &mut steps, &mut out);
    }
    steps.finish();
    while let Some(m) = steps.pop() {
        out.push(Some(m));
    }
    out
}

/// The per-motor step-rate change between each pair of consecutive moves with no pen action in
/// between (one sample per motor and pair, steps/s).
pub(crate) fn rate_changes(moves: &[Option<Move>]) -> Vec<f64> {
    let mut out = Vec::new();
    for pair in moves.windows(2) {
        if let [Some(a), Some(b)] = pair {
            let (a, b) = (motor_motion(a).unwrap(), motor_motion(b).unwrap());
            for i in 0..2 {
                out.push((b[i].start_hz - a[i].end_hz).abs());
            }
        }
    }
    out
}

/// `p`-th percentile (0–100) of `sorted`, nearest rank.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Planned motion time of the moves, s.
pub(crate) fn motion_time_s(moves: &[Option<Move>]) -> f64 {
    moves
        .iter()
        .flatten()
        .map(|m| f64::from(m.ticks))
        .sum::<f64>()
        / TICK_HZ
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQRT_2: f64 = std::f64::consts::SQRT_2;

    /// The motor-limited AxiDraw defaults with a corner jump of `jump` steps/s.
    fn per_motor(jump: f64) -> PlannerConfig {
        PlannerConfig::axidraw_per_motor(&AxiDrawSettings::default(), jump).unwrap()
    }

    /// Checks every move of `moves` against the motor limits of `config` (a per-motor one):
    /// no motor over its step rate or step acceleration in any move, no rate change between
    /// consecutive moves over the corner jump. Returns the largest rate change.
    fn check_motor_limits(config: &PlannerConfig, moves: &[Option<Move>]) -> f64 {
        let k = config.motors().kinematics.steps_per_mm();
        let jump = match config.limits(Pen::Down).cornering {
            Cornering::MotorJump { max_jump_hz } => max_jump_hz,
            c => panic!("not a motor-jump rule: {c:?}"),
        };
        for m in moves.iter().flatten() {
            let limits = config.limits(m.pen);
            let rate = SQRT_2 * limits.max_speed_mm_s * k;
            let accel = SQRT_2 * limits.accel_mm_s2 * k;
            for (i, mm) in motor_motion(m).unwrap().iter().enumerate() {
                // The integer registers round each move's rates by about one step over its
                // duration (a short move's end can be a few steps/s off the plan).
                let slack = 2.0 * TICK_HZ / f64::from(m.ticks.max(1));
                assert!(
                    mm.start_hz.abs().max(mm.end_hz.abs()) <= rate * 1.001 + slack,
                    "motor {i} at {mm:?} over {rate} steps/s in {m:?}"
                );
                // Landing a move on its tick may raise Accel by a few units (0.29 steps/s² each)
                // or, for a move of a step or two, set it to whatever lands it.
                assert!(
                    mm.accel_hz_s.abs() <= accel * 1.01 + slack * TICK_HZ / f64::from(m.ticks),
                    "motor {i} accelerates {mm:?} over {accel} steps/s² in {m:?}"
                );
            }
        }
        let changes = rate_changes(moves);
        let max = changes.iter().copied().fold(0.0, f64::max);
        // Each side of a junction is rounded as above.
        assert!(
            max <= jump + 100.0,
            "a motor's rate jumps {max} steps/s (bound {jump})"
        );
        max
    }

    #[test]
    fn spiral_and_hatch_keep_every_motor_within_its_limits() {
        for name in ["spiral_10k", "hatch_200"] {
            let paths = bench_drawings::load(name);
            let items = bench_drawings::plot_items(&paths);
            let config = per_motor(2_000.0);
            let moves = plan_moves(config, &items);
            check_motor_limits(&config, &moves);
        }
    }

    /// The distribution and plot times of the table. Ignored: a report, not a check.
    #[test]
    #[ignore]
    fn motor_stress_report() {
        let paths = bench_drawings::load("random_walk_100k");
        let items = bench_drawings::plot_items(&paths);
        let xy = PlannerConfig::axidraw(&AxiDrawSettings::default()).unwrap();
        let mut runs = vec![("xy (AxiDraw rule)".to_string(), xy)];
        for jump in [1_000.0, 1_500.0, 2_000.0, 2_500.0, 3_000.0, 4_000.0] {
            runs.push((format!("per_motor jump {jump}"), per_motor(jump)));
        }
        for (label, config) in runs {
            let moves = plan_moves(config, &items);
            let mut changes = rate_changes(&moves);
            changes.sort_by(f64::total_cmp);
            println!(
                "{label}: motion {:.1} s, {} samples: p50 {:.0} p90 {:.0} p99 {:.0} max {:.0}",
                motion_time_s(&moves),
                changes.len(),
                percentile(&changes, 50.0),
                percentile(&changes, 90.0),
                percentile(&changes, 99.0),
                percentile(&changes, 100.0),
            );
        }
    }
}
