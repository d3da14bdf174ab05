//! The step generator's SM arithmetic (`step::timing`: the firmware's rate, then where the last
//! step lands and what the accumulator keeps) against the simulator running the same `SM`
//! tick by tick, from whatever the previous move left in the accumulators, on 3.0.3 and 2.8.1.
//!
//! The simulator computes its rates separately (its own reading of reference §2.3), so this is
//! the cross-check of `timing.rs` by an implementation that shares no code with it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use plotty_fw_sim::{CommandKind, Firmware, FirmwareVersion as SimVersion, Observer};
use plotty_motion::step::timing::{sm_landing, sm_rate_v2, sm_rate_v3};
use proptest::prelude::*;

/// Per axis, the tick of its latest step; and where the latest `SM` started.
#[derive(Default)]
struct Ticks {
    last_step: [u64; 2],
    position: [i32; 2],
    sm_start: Option<u64>,
}

impl Observer for Ticks {
    fn on_step(&mut self, tick: u64, position: [i32; 2]) {
        for ((last, now), was) in self.last_step.iter_mut().zip(position).zip(self.position) {
            if now != was {
                *last = tick;
            }
        }
        self.position = position;
    }

    fn on_command_start(&mut self, tick: u64, kind: CommandKind) {
        if kind == CommandKind::Sm {
            self.sm_start = Some(tick);
        }
    }
}

fn send(fw: &mut Firmware, ticks: &mut Ticks, line: &str) -> String {
    let mut rest = line.as_bytes();
    while !rest.is_empty() {
        let n = fw.receive(rest);
        rest = &rest[n..];
        if fw.is_blocked() {
            fw.run_ticks(fw.next_event_in().unwrap_or(1), ticks);
        }
    }
    let mut out = Vec::new();
    fw.take_output(&mut out);
    String::from_utf8(out).unwrap()
}

fn settle(fw: &mut Firmware, ticks: &mut Ticks) {
    while fw.status().executing {
        fw.run_ticks(fw.next_event_in().unwrap_or(1), ticks);
    }
}

/// Runs `moves` one after the other (each alone, from what the last one left) and checks
/// every axis's last-step tick and accumulator against `timing`.
fn check(version: SimVersion, moves: &[(u32, [i32; 2])]) -> Result<(), TestCaseError> {
    let mut fw = Firmware::new(version);
    let mut ticks = Ticks::default();
    send(&mut fw, &mut ticks, "EM,1,1\r");
    settle(&mut fw, &mut ticks);
    for &(duration_ms, steps) in moves {
        let rates: Vec<_> = steps
            .iter()
            .map(|s| match (s.unsigned_abs(), version.is_v3()) {
                (0, _) => Ok(0),
                (s, true) => sm_rate_v3(duration_ms, s),
                (s, false) => sm_rate_v2(duration_ms, s),
            })
            .collect();
        // The generator never sends a move `timing` refuses.
        if rates.iter().any(Result::is_err) || steps == [0, 0] {
            continue;
        }
        let c0 = fw.status().accumulators;
        let before = ticks.last_step;
        let reply = send(
            &mut fw,
            &mut ticks,
            &format!("SM,{duration_ms},{},{}\r", steps[0], steps[1]),
        );
        prop_assert_eq!(
            reply.as_str(),
            "OK\r\n",
            "{} SM,{},{:?}",
            version,
            duration_ms,
            steps
        );
        settle(&mut fw, &mut ticks);
        let start = ticks.sm_start.take().expect("the SM started");
        let after = fw.status().accumulators;
        for i in 0..2 {
            let s = steps[i].unsigned_abs();
            if s == 0 {
                prop_assert_eq!(after[i], c0[i]);
                prop_assert_eq!(ticks.last_step[i], before[i]);
                continue;
            }
            let rate = rates[i].unwrap();
            let landing = sm_landing(c0[i], rate, s).unwrap();
            prop_assert_eq!(
                ticks.last_step[i] - start,
                landing.tick,
                "{} SM,{},{:?} axis {} from {}: rate {}",
                version,
                duration_ms,
                steps,
                i + 1,
                c0[i],
                rate
            );
            prop_assert_eq!(after[i], landing.accumulator, "{} axis {}", version, i + 1);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn sm_rates_and_landings_match_the_simulator(
        v2 in any::<bool>(),
        moves in proptest::collection::vec(
            (
                prop_oneof![4 => 1u32..40, 4 => 1u32..400, 1 => 2_600u32..6_000],
                [prop_oneof![-30i32..30, -9000i32..9000], prop_oneof![-30i32..30, -9000i32..9000]],
            ),
            1..6,
        ),
    ) {
        let version = if v2 { SimVersion::V2_8_1 } else { SimVersion::V3_0_3 };
        check(version, &moves)?;
    }
}

/// The reference's worked examples (§2.3 table) from cleared accumulators, on both lines.
#[test]
fn reference_examples_land_where_the_simulator_steps() {
    for version in [SimVersion::V3_0_3, SimVersion::V2_8_1] {
        for (d, s) in [(1000, 1000), (500, 2009), (28, 100), (1, 1), (30, 5)] {
            check(version, &[(d, [s, s])]).unwrap();
        }
    }
}
