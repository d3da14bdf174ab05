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

use plotty_motion::kinematics::{AxiDrawSettings, MotorSteps, Point};
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

/// Each motor's step rate (steps/s, signed by direction) at a move's first and last tick.
pub(crate) type MoveRates = [(f64, f64); 2];

/// Each motor's step rate (steps/s, signed by direction) at the first and at the last tick of
/// every move, as the simulated firmware 3.0.3 runs it (its own parser and interrupt, no code
/// shared with the step generator), read from the rate registers it leaves; `None` where a pen
/// action rests the machine. Also the simulator's final motor position.
pub(crate) fn simulated_rates(moves: &[Option<Move>]) -> (Vec<Option<MoveRates>>, [i32; 2]) {
    use plotty_fw_sim::{Firmware, FirmwareVersion, NoObserver};
    let mut fw = Firmware::new(FirmwareVersion::V3_0_3);
    let mut obs = NoObserver;
    let mut send = |fw: &mut Firmware, line: &str| {
        let mut rest = line.as_bytes();
        while !rest.is_empty() {
            let n = fw.receive(rest);
            rest = &rest[n..];
            if fw.is_blocked() {
                fw.run_ticks(fw.next_event_in().unwrap_or(1), &mut obs);
            }
        }
        let mut out = Vec::new();
        fw.take_output(&mut out);
        assert_eq!(out, b"OK\r\n", "{line}");
    };
    let settle = |fw: &mut Firmware| {
        while fw.status().executing {
            fw.run_ticks(fw.next_event_in().unwrap_or(1), &mut NoObserver);
        }
    };
    send(&mut fw, "EM,1,1\r");
    settle(&mut fw);
    let to_hz = TICK_HZ / STEP;
    let mut out = Vec::with_capacity(moves.len());
    for m in moves {
        let Some(m) = m else {
            out.push(None);
            continue;
        };
        let MoveCommand::Lm(lm) = m.command else {
            panic!("LM moves only");
        };
        send(
            &mut fw,
            &format!(
                "LM,{},{},{},{},{},{}\r",
                lm.rate[0], lm.steps[0], lm.accel[0], lm.rate[1], lm.steps[1], lm.accel[1]
            ),
        );
        // Up to the move's first interrupt tick: the rates it starts with.
        let start_tick = fw.status().tick;
        while fw.status().current.is_none() || fw.status().tick == start_tick {
            fw.run_ticks(1, &mut NoObserver);
        }
        let first = fw.status().rates;
        settle(&mut fw);
        let last = fw.status().rates;
        let mut rates = [(0.0, 0.0); 2];
        for i in 0..2 {
            if lm.steps[i] != 0 {
                let sign = f64::from(lm.steps[i].signum());
                rates[i] = (
                    sign * f64::from(first[i]) * to_hz,
                    sign * f64::from(last[i]) * to_hz,
                );
            }
        }
        out.push(Some(rates));
    }
    (out, fw.status().motor_position)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQRT_2: f64 = std::f64::consts::SQRT_2;

    /// The motor-limited AxiDraw defaults with a corner jump of `jump` steps/s.
    fn per_motor(jump: f64) -> PlannerConfig {
        PlannerConfig::axidraw_per_motor(&AxiDrawSettings::default(), jump).unwrap()
    }

    /// The AxiDraw software's per-motor rate changes between consecutive moves on
    /// random_walk_100k at its defaults (issue 13): p50, p90, p99, max, steps/s.
    const VENDOR: [f64; 4] = [2_011.0, 3_444.0, 4_512.0, 8_685.0];

    /// plotty's default corner jump (`motion.corner_jump_hz`).
    const JUMP: f64 = 3_000.0;

    /// Checks every move of `moves` against the motor limits of `config` (a per-motor one):
    /// no motor over its step rate or step acceleration in any move, no rate change between
    /// consecutive moves over the corner jump plus `jump_slack`, and the moves end exactly at
    /// home. Returns the sorted rate changes.
    fn check_motor_limits(
        config: &PlannerConfig,
        moves: &[Option<Move>],
        jump_slack: f64,
    ) -> Vec<f64> {
        let last = moves.iter().flatten().last().expect("some moves");
        assert_eq!(last.end, MotorSteps::ZERO, "exactly back home");
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
                let seconds = f64::from(m.ticks) / TICK_HZ;
                if m.chord_error_mm > 0.0 {
                    // A move along a chord over tiny blocks spreads their corners' rate jumps
                    // over its duration: at most one jump more than the acceleration gives.
                    assert!(
                        (mm.end_hz - mm.start_hz).abs() <= accel * seconds * 1.01 + jump + slack,
                        "motor {i} changes rate {mm:?} in a merged move {m:?}"
                    );
                } else {
                    // Landing a move on its tick may raise Accel by a few units (0.29 steps/s²
                    // each) or, for a move of a step or two, set it to whatever lands it.
                    assert!(
                        mm.accel_hz_s.abs() <= accel * 1.01 + slack / seconds,
                        "motor {i} accelerates {mm:?} over {accel} steps/s² in {m:?}"
                    );
                }
            }
        }
        let mut changes = rate_changes(moves);
        changes.sort_by(f64::total_cmp);
        let max = changes.last().copied().unwrap_or(0.0);
        // Each side of a junction is rounded as above.
        assert!(
            max <= jump + jump_slack,
            "a motor's rate jumps {max} steps/s (bound {jump})"
        );
        changes
    }

    /// Smooth drawings: the command stream keeps the planned corner jump within the rounding of
    /// the LM registers (100 steps/s).
    #[test]
    fn spiral_and_hatch_keep_every_motor_within_its_limits() {
        for name in ["spiral_10k", "hatch_200"] {
            let paths = bench_drawings::load(name);
            let items = bench_drawings::plot_items(&paths);
            let config = per_motor(JUMP);
            let moves = plan_moves(config, &items);
            check_motor_limits(&config, &moves, 100.0);
        }
    }

    /// A tenth of random_walk_100k (its first 100 polylines, home at the end) at the defaults:
    /// every motor within its rate and acceleration (moves the step generator merges along a
    /// chord within one corner jump), and the rate changes between consecutive
    /// moves at or under the vendor's at every percentile. The short zigzag moves round their
    /// rates by up to a few hundred steps/s (measured max 3,472 on the whole drawing).
    #[test]
    fn random_walk_works_no_motor_harder_than_the_vendor() {
        let paths = bench_drawings::load("random_walk_100k");
        let items = bench_drawings::plot_items(&paths[..100]);
        let config = per_motor(JUMP);
        let moves = plan_moves(config, &items);
        let changes = check_motor_limits(&config, &moves, 0.2 * JUMP);
        for (p, vendor) in [50.0, 90.0, 99.0, 100.0].into_iter().zip(VENDOR) {
            let ours = percentile(&changes, p);
            assert!(
                ours <= vendor,
                "p{p}: {ours} steps/s over the vendor's {vendor}"
            );
        }
        // And the plan is shorter than the XY model's.
        let xy = plan_moves(
            PlannerConfig::axidraw(&AxiDrawSettings::default()).unwrap(),
            &items,
        );
        assert!(motion_time_s(&moves) < 0.9 * motion_time_s(&xy));
    }

    /// The same check on what the simulator executes: the rate registers firmware 3.0.3 runs
    /// at the first and last tick of every move, over the whole plot of a tenth of
    /// random_walk_100k. No motor over its step rate, no rate change within a move faster than
    /// its step acceleration allows (plus one corner jump where a move spans merged blocks),
    /// none between moves over the corner jump and the LM rounding, and the motors end at home.
    #[test]
    fn simulated_trace_keeps_every_motor_within_its_limits() {
        let paths = bench_drawings::load("random_walk_100k");
        let items = bench_drawings::plot_items(&paths[..100]);
        let config = per_motor(JUMP);
        let k = config.motors().kinematics.steps_per_mm();
        let moves = plan_moves(config, &items);
        let (rates, end) = simulated_rates(&moves);
        assert_eq!(end, [0, 0], "the simulated motors end at home");
        let mut max_jump = 0.0f64;
        let mut previous: Option<[(f64, f64); 2]> = None;
        for (m, r) in moves.iter().zip(&rates) {
            let (Some(m), Some(r)) = (m, r) else {
                previous = None;
                continue;
            };
            let limits = config.limits(m.pen);
            let (rate, accel) = (
                SQRT_2 * limits.max_speed_mm_s * k,
                SQRT_2 * limits.accel_mm_s2 * k,
            );
            let seconds = f64::from(m.ticks) / TICK_HZ;
            let slack = 2.0 * TICK_HZ / f64::from(m.ticks.max(1));
            let merged = if m.chord_error_mm > 0.0 { JUMP } else { 0.0 };
            for (i, &(first, last)) in r.iter().enumerate() {
                assert!(
                    first.abs().max(last.abs()) <= rate * 1.001 + slack,
                    "motor {i} at {first}..{last} steps/s, over {rate}, in {m:?}"
                );
                assert!(
                    (last - first).abs() <= accel * seconds * 1.01 + merged + slack,
                    "motor {i} from {first} to {last} steps/s in {seconds} s, over {accel} \
                     steps/s², in {m:?}"
                );
            }
            if let Some(p) = previous {
                for i in 0..2 {
                    max_jump = max_jump.max((r[i].0 - p[i].1).abs());
                }
            }
            previous = Some(*r);
        }
        assert!(
            max_jump > 0.5 * JUMP,
            "corners were taken at speed: {max_jump}"
        );
        assert!(
            max_jump <= 1.2 * JUMP,
            "a motor's rate jumps {max_jump} steps/s"
        );
    }

    /// The distribution and plot times of the issue's table. Ignored: a report, not a check.
    #[test]
    #[ignore]
    fn motor_stress_report() {
        let paths = bench_drawings::load("random_walk_100k");
        let items = bench_drawings::plot_items(&paths);
        let xy = PlannerConfig::axidraw(&AxiDrawSettings::default()).unwrap();
        let mut runs = vec![("xy (AxiDraw rule)".to_string(), xy)];
        for jump in [2_000.0, JUMP, 4_000.0] {
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
