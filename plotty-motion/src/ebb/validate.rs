//! [`Command::validate`]: reject, before anything is sent, what the firmware would reject — and
//! what it would silently clamp or ignore, because then the typed value would no longer say what
//! the plotter does.
//!
//! Rules per firmware line, from reference §1.1–§1.4 and §6 (limit checks on, the boot default;
//! `CU,2,0` is never assumed). Commands the firmware does not know are [`EncodeError::Unsupported`].
//! On top of the firmware's own checks two hazards are refused: an `LM`/`L3` axis with steps
//! but neither rate nor acceleration (it never finishes and hangs the FIFO, §6.8), and `CU,4`
//! depths outside `1..=32` (§6.2).

use super::command::{
    Command, Configure, DoubleTimedMove, JerkMove, LowLevelMove, PenAction, StepperMove,
    TimedJerkMove, TimedMove,
};
use super::encode::EncodeError;
use super::limits::{
    self, HM_STEP_RATE_RANGE, MAX_CLEAR, MAX_DELAY_MS_V2, MAX_DELAY_MS_V3, MAX_ENGRAVER_POWER,
    MAX_PIN, MAX_S2_RPN, MAX_SM_DURATION_MS_V2, MAX_SM_STEPS_V2, MAX_SP_PIN, MAX_VARIABLE_INDEX_V3,
    RATE_ONE_STEP_PER_TICK, SmRateV2,
};
use super::version::FirmwareVersion;

impl Command {
    /// Checks the command against firmware `fw`: known command, parameters in range, and a
    /// combination the firmware executes as written. [`Command::encode_with`] calls this first.
    pub fn validate(&self, fw: FirmwareVersion) -> Result<(), EncodeError> {
        let command = self.name();
        if let Some(since) = self.min_version().filter(|since| fw < *since) {
            return Err(EncodeError::Unsupported {
                command,
                since,
                firmware: fw,
            });
        }
        let v3 = fw.is_v3();
        match self {
            Self::StepperMove(sm) => stepper_move(command, sm, sm.steps, v3),
            Self::MixedMove(xm) => {
                // The firmware mixes with 32-bit wrapping and checks the mixed axes (§1.4).
                let [a, b] = xm.steps;
                stepper_move(command, xm, [a.wrapping_add(b), a.wrapping_sub(b)], v3)
            }
            Self::HomeMove(hm) => range(
                command,
                "StepRate",
                hm.step_rate,
                *HM_STEP_RATE_RANGE.start(),
                *HM_STEP_RATE_RANGE.end(),
            ),
            Self::LowLevelMove(lm) => low_level_move(command, lm, v3),
            Self::LowLevelTimed(lt) => timed_move(command, lt, v3),
            Self::JerkMove(l3) => jerk_move(command, l3),
            Self::TimedJerkMove(t3) => timed_jerk_move(command, t3),
            Self::DoubleTimedMove(td) => double_timed_move(command, td),
            Self::SetPen(sp) => {
                // 2.x clamps values above 1 to 1 (§3); 3.0.1+ knows 2 and 3 (checked by
                // min_version).
                if !v3 && sp.action.value() > 1 {
                    return range(command, "Value", sp.action.value(), 0, 1);
                }
                if sp.pin.is_some() && sp.duration_ms.is_none() {
                    return invalid(command, "PortB_Pin needs Duration (send Duration 0)");
                }
                range(command, "PortB_Pin", sp.pin.unwrap_or(0), 0, MAX_SP_PIN)
            }
            Self::Servo2(s2) => {
                if s2.delay_ms.is_some() && s2.rate.is_none() {
                    return invalid(command, "Delay needs Rate (send Rate 0 for no slew limit)");
                }
                range(command, "RPn", s2.rpn, 0, MAX_S2_RPN)
            }
            Self::QueryLayer { index } => range(
                command,
                "Index",
                index.unwrap_or(0),
                0,
                MAX_VARIABLE_INDEX_V3,
            ),
            Self::SetLayer { index, .. } => range(
                command,
                "Index",
                index.unwrap_or(0),
                0,
                MAX_VARIABLE_INDEX_V3,
            ),
            Self::Configure(cu) => configure(command, *cu, v3),
            // Reached only on 3.x (min_version). Any other index is `!6` (§1.3, §1.4).
            Self::QueryUtility(n) if !matches!(n, 1..=6 | 60 | 61 | 200) => invalid(
                command,
                "unknown index: 3.x answers QU 1..=6, 60, 61 and 200 and refuses others (!6)",
            ),
            Self::PinInput { pin, .. } => range(command, "Pin", *pin, 0, MAX_PIN),
            Self::SetNickname(name) => nickname(command, name.as_bytes()),
            Self::SetEngraver(se) => {
                if se.queued.is_some() && se.power.is_none() {
                    return invalid(command, "Queue needs Power");
                }
                range(
                    command,
                    "Power",
                    se.power.unwrap_or(0),
                    0,
                    MAX_ENGRAVER_POWER,
                )
            }
            _ => Ok(()),
        }
    }
}

fn range(
    command: &'static str,
    parameter: &'static str,
    value: impl Into<i64>,
    min: impl Into<i64>,
    max: impl Into<i64>,
) -> Result<(), EncodeError> {
    let (value, min, max) = (value.into(), min.into(), max.into());
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(EncodeError::OutOfRange {
            command,
            parameter,
            value,
            min,
            max,
        })
    }
}

const fn invalid(command: &'static str, reason: &'static str) -> Result<(), EncodeError> {
    Err(EncodeError::Invalid { command, reason })
}

fn clear(command: &'static str, clear: Option<u8>) -> Result<(), EncodeError> {
    range(command, "Clear", clear.unwrap_or(0), 0, MAX_CLEAR)
}

const AXIS_STEPS: [&str; 2] = ["Steps1", "Steps2"];

/// `SM`/`XM` with motor steps `steps` (already mixed for XM).
fn stepper_move(
    command: &'static str,
    sm: &StepperMove,
    steps: [i32; 2],
    v3: bool,
) -> Result<(), EncodeError> {
    let d = sm.duration_ms;
    let max_duration = if v3 { u32::MAX } else { MAX_SM_DURATION_MS_V2 };
    range(command, "Duration", d, 1, max_duration)?;
    clear(command, sm.clear)?;
    if steps == [0, 0] {
        // A pure delay: 3.x runs at most 100 s, 2.8.1 turns anything above 65.536 s into ~0.
        let max_delay = if v3 { MAX_DELAY_MS_V3 } else { MAX_DELAY_MS_V2 };
        return range(command, "Duration", d, 1, max_delay);
    }
    for (axis, s) in steps.into_iter().enumerate() {
        let s = s.unsigned_abs();
        if s == 0 {
            continue;
        }
        let issue = if v3 {
            let rate = limits::sm_rate_v3(s, d);
            if rate > RATE_ONE_STEP_PER_TICK {
                Some(RateIssue::TooFast)
            } else if rate == 0 {
                Some(RateIssue::RoundsToZero)
            } else {
                None
            }
        } else {
            let name = AXIS_STEPS.get(axis).copied().unwrap_or("Steps");
            range(command, name, s, 0, MAX_SM_STEPS_V2)?;
            match limits::sm_rate_v2(s, d) {
                SmRateV2::Rate(_) => None,
                SmRateV2::TooSlow => Some(RateIssue::BelowV2Minimum),
                // Both the rejected (S/D > 25) and the clamped (25 < S/D < 26) fast cases.
                SmRateV2::TooFast | SmRateV2::Clamped if s / d >= 25 => Some(RateIssue::TooFast),
                SmRateV2::TooFast | SmRateV2::Clamped => Some(RateIssue::V2Clamped),
            }
        };
        if let Some(issue) = issue {
            return invalid(command, issue.reason(axis));
        }
    }
    Ok(())
}

/// Why an `SM`/`XM` axis rate is refused.
#[derive(Clone, Copy)]
enum RateIssue {
    TooFast,
    RoundsToZero,
    BelowV2Minimum,
    V2Clamped,
}

impl RateIssue {
    const fn reason(self, axis: usize) -> &'static str {
        let motor1 = axis == 0;
        match (self, motor1) {
            (Self::TooFast, true) => "motor 1 step rate above 25000 steps/s: use a longer Duration",
            (Self::TooFast, false) => {
                "motor 2 step rate above 25000 steps/s: use a longer Duration"
            }
            (Self::RoundsToZero, true) => {
                "motor 1 step rate rounds to 0 (slower than about 1 step per 23.9 hours): use a \
                 shorter Duration"
            }
            (Self::RoundsToZero, false) => {
                "motor 2 step rate rounds to 0 (slower than about 1 step per 23.9 hours): use a \
                 shorter Duration"
            }
            (Self::BelowV2Minimum, true) => {
                "motor 1 step rate below the 2.x minimum of about 0.763 steps/s: use a shorter \
                 Duration"
            }
            (Self::BelowV2Minimum, false) => {
                "motor 2 step rate below the 2.x minimum of about 0.763 steps/s: use a shorter \
                 Duration"
            }
            (Self::V2Clamped, true) => {
                "motor 1: 2.x would clamp this rate (over 131070 steps but fewer steps than \
                 milliseconds): split the move"
            }
            (Self::V2Clamped, false) => {
                "motor 2: 2.x would clamp this rate (over 131070 steps but fewer steps than \
                 milliseconds): split the move"
            }
        }
    }
}

/// One axis of an `LM`/`L3`: the firmware's own `!6` checks plus the never-ending axis.
fn low_level_axis(
    command: &'static str,
    rate: i32,
    steps: i32,
    accel: i32,
    jerk: i32,
) -> Result<(), EncodeError> {
    if steps < 0 && rate < 0 {
        // 3.x: negative Steps selects the legacy direction mode, which needs Rate ≥ 0 (§2.5).
        return invalid(
            command,
            "negative Steps together with a negative Rate: give the direction by one sign only",
        );
    }
    if steps != 0 && rate == 0 && accel == 0 && jerk == 0 {
        return invalid(
            command,
            "an axis has Steps but no Rate, Accel or Jerk: it would never finish and hang the \
             motion FIFO (send Steps 0 for an idle axis)",
        );
    }
    Ok(())
}

fn low_level_move(command: &'static str, lm: &LowLevelMove, v3: bool) -> Result<(), EncodeError> {
    clear(command, lm.clear)?;
    for axis in 0..2 {
        let (rate, steps, accel) = (lm.rate[axis], lm.steps[axis], lm.accel[axis]);
        if !v3 {
            // 2.x takes Rate as an unsigned long; direction comes from the sign of Steps.
            range(command, ["Rate1", "Rate2"][axis], rate, 0, i32::MAX)?;
        }
        low_level_axis(command, rate, steps, accel, 0)?;
    }
    let impossible =
        |axis: usize| (lm.rate[axis] == 0 && lm.accel[axis] == 0) || lm.steps[axis] == 0;
    if impossible(0) && impossible(1) {
        return invalid(
            command,
            "no axis would move (Steps 0, or Rate and Accel 0, on both)",
        );
    }
    Ok(())
}

fn jerk_move(command: &'static str, l3: &JerkMove) -> Result<(), EncodeError> {
    clear(command, l3.clear)?;
    for axis in 0..2 {
        low_level_axis(
            command,
            l3.rate[axis],
            l3.steps[axis],
            l3.accel[axis],
            l3.jerk[axis],
        )?;
    }
    // The firmware's "both axes impossible" test reads Jerk1 for axis 2 as well (§1.4 source
    // typo); reproduce it so every command it rejects is rejected here.
    let impossible = |axis: usize| {
        (l3.rate[axis] == 0 && l3.accel[axis] == 0 && l3.jerk[0] == 0) || l3.steps[axis] == 0
    };
    if impossible(0) && impossible(1) {
        return invalid(
            command,
            "no axis would move (Steps 0, or Rate, Accel and Jerk1 0, on both)",
        );
    }
    Ok(())
}

fn timed_move(command: &'static str, lt: &TimedMove, v3: bool) -> Result<(), EncodeError> {
    range(command, "Intervals", lt.intervals, 1, u32::MAX)?;
    clear(command, lt.clear)?;
    if !v3 && lt.rate == [0, 0] {
        return invalid(command, "2.x rejects an LT with both Rates 0");
    }
    Ok(())
}

fn timed_jerk_move(command: &'static str, t3: &TimedJerkMove) -> Result<(), EncodeError> {
    range(command, "Intervals", t3.intervals, 1, u32::MAX)?;
    clear(command, t3.clear)
}

fn double_timed_move(command: &'static str, td: &DoubleTimedMove) -> Result<(), EncodeError> {
    range(command, "Intervals", td.intervals, 1, u32::MAX)?;
    clear(command, td.clear)
}

fn configure(command: &'static str, cu: Configure, v3: bool) -> Result<(), EncodeError> {
    let value = cu.value;
    match cu.parameter {
        Configure::ACK | Configure::LIMIT_CHECKS | Configure::LED_FIFO_EMPTY => {
            range(command, "Value", value, 0, 1)
        }
        // Reached only on 3.x (min_version).
        Configure::FIFO_DEPTH => range(
            command,
            "Value (FIFO depth)",
            value,
            1,
            limits::FIFO_DEPTH_MAX_V3,
        ),
        Configure::FUTURE_SYNTAX
        | Configure::AUTO_ENABLE
        | Configure::LIMIT_SWITCH_REPLY
        | Configure::CHECKSUM => range(command, "Value", value, 0, 1),
        Configure::LIMIT_SWITCH_MASK | Configure::LIMIT_SWITCH_TARGET => {
            range(command, "Value", value, 0, u8::MAX)
        }
        Configure::POWER_LOST_THRESHOLD | Configure::STEPPER_DISABLE_TIMEOUT => {
            range(command, "Value", value, 0, i16::MAX)
        }
        // Test modes (CU,250..=255): on/off switches.
        250..=255 if v3 => range(command, "Value", value, 0, 1),
        _ if !v3 => range(
            command,
            "Parameter (2.x knows 1..=3 and ignores others)",
            cu.parameter,
            1,
            3,
        ),
        _ => invalid(
            command,
            "unknown Parameter: 3.x knows 1, 2, 3, 4, 10, 50..=54, 60, 61 and 250..=255",
        ),
    }
}

/// `ST,name`: what can be stored and read back unambiguously.
fn nickname(command: &'static str, name: &[u8]) -> Result<(), EncodeError> {
    if name.is_empty() {
        return invalid(
            command,
            "empty name (the firmware needs at least one character)",
        );
    }
    if !name
        .iter()
        .all(|&b| (0x21..=0x7E).contains(&b) && b != b',')
    {
        return invalid(
            command,
            "name must be printable ASCII without spaces or commas (the firmware reads it back \
             only if its first byte is 33..=127)",
        );
    }
    if name == b"OK" || name.first() == Some(&b'!') {
        return invalid(
            command,
            "name \"OK\" or starting with '!' would be mistaken for a reply by QT in legacy mode",
        );
    }
    Ok(())
}

impl PenAction {
    /// Every action, in `SP` value order.
    pub const ALL: [Self; 4] = [Self::Down, Self::Up, Self::UpNow, Self::UpNowAndQueued];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ebb::command::*;

    const V3: FirmwareVersion = FirmwareVersion::LATEST;
    const V2: FirmwareVersion = FirmwareVersion::LAST_V2;

    fn sm(duration_ms: u32, s1: i32, s2: i32) -> Command {
        Command::StepperMove(StepperMove {
            duration_ms,
            steps: [s1, s2],
            clear: None,
        })
    }

    fn lm(rate: [i32; 2], steps: [i32; 2], accel: [i32; 2]) -> Command {
        Command::LowLevelMove(LowLevelMove {
            rate,
            steps,
            accel,
            clear: None,
        })
    }

    fn ok(cmd: &Command, fw: FirmwareVersion) -> bool {
        cmd.validate(fw).is_ok()
    }

    #[test]
    fn sm_limits_v3() {
        assert!(!ok(&sm(0, 1, 1), V3));
        assert!(ok(&sm(1, 25, -25), V3), "exactly 25 kHz is allowed on 3.x");
        assert!(!ok(&sm(1, 26, 0), V3));
        assert!(!ok(&sm(1, 0, i32::MIN), V3));
        assert!(ok(&sm(1_000_000, 1, 0), V3));
        assert!(!ok(&sm(86_400_000, 1, 0), V3), "rate truncates to 0");
        assert!(ok(&sm(100_000, 0, 0), V3));
        assert!(!ok(&sm(100_001, 0, 0), V3), "delay would be clamped");
        let clear4 = Command::StepperMove(StepperMove {
            duration_ms: 10,
            steps: [1, 1],
            clear: Some(4),
        });
        assert!(!ok(&clear4, V3));
    }

    #[test]
    fn sm_limits_v2() {
        assert!(ok(&sm(1, 25, 0), V2));
        assert!(
            !ok(&sm(10, 251, 0), V2),
            "2.x would clamp with a malfunction"
        );
        assert!(!ok(&sm(10, 260, 0), V2));
        assert!(!ok(&sm(1311, 1, 0), V2), "below ~0.763 steps/s");
        assert!(ok(&sm(1310, 1, 0), V2));
        assert!(!ok(&sm(16_777_216, 16_777_215, 0), V2));
        assert!(ok(&sm(16_777_215, 16_777_215, 0), V2));
        assert!(!ok(&sm(1_000_000, 16_777_216, 0), V2));
        assert!(!ok(&sm(65_537, 0, 0), V2), "2.8.1 collapses long delays");
        assert!(ok(&sm(65_536, 0, 0), V2));
        assert!(!ok(&sm(200_000, 131_071, 0), V2), "coarse branch clamps");
    }

    #[test]
    fn xm_checks_the_mixed_axes() {
        let xm = |a, b| {
            Command::MixedMove(StepperMove {
                duration_ms: 1,
                steps: [a, b],
                clear: None,
            })
        };
        assert!(ok(&xm(12, 13), V3)); // 25, -1
        assert!(!ok(&xm(13, 13), V3)); // 26, 0
        assert!(!ok(&xm(1, 1), FirmwareVersion::new(2, 2, 9)));
    }

    #[test]
    fn lm_rules() {
        assert!(ok(&lm([100, 0], [10, 0], [0, 0]), V3));
        assert!(ok(&lm([100, 0], [-10, 0], [0, 0]), V3));
        assert!(!ok(&lm([-100, 0], [-10, 0], [0, 0]), V3));
        assert!(ok(&lm([-100, 0], [10, 0], [0, 0]), V3));
        assert!(
            !ok(&lm([-100, 0], [10, 0], [0, 0]), V2),
            "2.x Rate is unsigned"
        );
        assert!(!ok(&lm([0, 0], [0, 0], [0, 0]), V3), "both axes impossible");
        assert!(
            !ok(&lm([0, 5], [10, 0], [0, 0]), V3),
            "both axes impossible"
        );
        assert!(!ok(&lm([0, 5], [10, 5], [0, 0]), V3), "axis 1 never ends");
        assert!(ok(&lm([0, 5], [10, 5], [3, 0]), V3));
        assert!(!ok(
            &lm([100, 0], [10, 0], [0, 0]),
            FirmwareVersion::new(2, 6, 9)
        ));
    }

    #[test]
    fn l3_reproduces_the_firmware_typo() {
        let l3 = |rate: [i32; 2], steps: [i32; 2], jerk: [i32; 2]| {
            Command::JerkMove(JerkMove {
                rate,
                steps,
                accel: [0, 0],
                jerk,
                clear: None,
            })
        };
        // Axis 1 idle, axis 2 moves by jerk alone: the firmware looks at Jerk1 (0) and calls
        // axis 2 impossible too.
        assert!(!ok(&l3([0, 0], [0, 10], [0, 5]), V3));
        assert!(ok(&l3([0, 0], [0, 10], [1, 5]), V3));
        assert!(ok(&l3([0, 100], [0, 10], [0, 0]), V3));
        assert!(!ok(&l3([0, 100], [0, 10], [0, 0]), V2));
    }

    #[test]
    fn timed_moves() {
        let lt = |intervals, rate| {
            Command::LowLevelTimed(TimedMove {
                intervals,
                rate,
                accel: [0, 0],
                clear: None,
            })
        };
        assert!(!ok(&lt(0, [1, 1]), V3));
        assert!(ok(&lt(1, [0, 0]), V3));
        assert!(!ok(&lt(1, [0, 0]), V2));
        let t3 = Command::TimedJerkMove(TimedJerkMove {
            intervals: 0,
            rate: [1, 1],
            accel: [0; 2],
            jerk: [0; 2],
            clear: None,
        });
        assert!(!ok(&t3, V3));
        let td = DoubleTimedMove {
            intervals: 5,
            rate_a: [0; 2],
            rate_b: [0; 2],
            accel: [0; 2],
            jerk: [0; 2],
            clear: None,
        };
        assert!(ok(
            &Command::DoubleTimedMove(td),
            FirmwareVersion::new(3, 0, 1)
        ));
        assert!(!ok(
            &Command::DoubleTimedMove(td),
            FirmwareVersion::new(3, 0, 0)
        ));
        assert!(!ok(
            &Command::DoubleTimedMove(DoubleTimedMove { intervals: 0, ..td }),
            V3
        ));
    }

    #[test]
    fn pen_and_servo() {
        let sp = |action, duration_ms, pin| {
            Command::SetPen(SetPen {
                action,
                duration_ms,
                pin,
            })
        };
        assert!(ok(&sp(PenAction::UpNowAndQueued, None, None), V3));
        assert!(!ok(
            &sp(PenAction::UpNow, None, None),
            FirmwareVersion::new(3, 0, 0)
        ));
        assert!(!ok(&sp(PenAction::UpNow, None, None), V2));
        assert!(ok(&sp(PenAction::Up, Some(130), Some(7)), V2));
        assert!(!ok(&sp(PenAction::Up, Some(130), Some(8)), V3));
        assert!(!ok(&sp(PenAction::Up, None, Some(1)), V3));
        let s2 = |rpn, rate, delay_ms| {
            Command::Servo2(Servo2 {
                position: 1,
                rpn,
                rate,
                delay_ms,
            })
        };
        assert!(ok(&s2(24, None, None), V3));
        assert!(!ok(&s2(25, None, None), V3));
        assert!(!ok(&s2(4, None, Some(1)), V3));
        assert!(!ok(&s2(4, None, None), FirmwareVersion::new(2, 1, 5)));
    }

    #[test]
    fn configure_rules() {
        let cu = |parameter, value| Command::Configure(Configure { parameter, value });
        assert!(ok(&cu(4, 1), V3) && ok(&cu(4, 32), V3));
        assert!(
            !ok(&cu(4, 0), V3),
            "CU,4,0 blocks every queued command forever"
        );
        assert!(!ok(&cu(4, -1), V3), "negative depth overruns the ring");
        assert!(!ok(&cu(4, 33), V3));
        assert!(!ok(&cu(4, 8), V2));
        assert!(!ok(&cu(10, 1), V2), "2.x does not know future syntax");
        assert!(!ok(&cu(54, 1), V2));
        assert!(ok(&cu(1, 0), V2) && !ok(&cu(1, 2), V2));
        assert!(!ok(&cu(7, 0), V3), "unknown on 3.x");
        assert!(ok(&cu(61, 300), V3));
        assert!(!ok(&cu(61, -1), V3));
    }

    #[test]
    fn utility_query_only_for_the_indices_3x_answers() {
        for n in [1, 2, 3, 4, 5, 6, 60, 61, 200] {
            assert!(ok(&Command::QueryUtility(n), V3), "QU,{n}");
        }
        // 3.x answers any other index with `!6` (found by the simulator cross-check).
        for n in [0, 7, 59, 62, 199, 201, 255] {
            assert!(!ok(&Command::QueryUtility(n), V3), "QU,{n}");
        }
    }

    #[test]
    fn version_gated_commands() {
        let old = FirmwareVersion::new(2, 0, 0);
        for cmd in [
            Command::QueryGeneral,
            Command::QueryEnables,
            Command::QuerySteps,
            Command::ClearSteps,
            Command::QueryServoPower,
            Command::QueryNickname,
            Command::QueryUtility(2),
            Command::EmergencyStop {
                disable_motors: false,
            },
        ] {
            assert!(matches!(
                cmd.validate(old),
                Err(EncodeError::Unsupported { .. })
            ));
            assert!(ok(&cmd, V3), "{cmd:?}");
        }
        assert!(!ok(
            &Command::EmergencyStop {
                disable_motors: true
            },
            V2
        ));
        assert!(!ok(&Command::QueryLayer { index: Some(0) }, V2));
        assert!(!ok(&Command::QueryLayer { index: Some(32) }, V3));
        assert!(ok(&Command::QueryLayer { index: None }, old));
        let hm = |position| {
            Command::HomeMove(super::super::command::HomeMove {
                step_rate: 1000,
                position,
            })
        };
        assert!(ok(&hm(None), FirmwareVersion::new(2, 6, 2)));
        assert!(!ok(&hm(Some([0, 0])), FirmwareVersion::new(2, 6, 2)));
        let hm0 = Command::HomeMove(super::super::command::HomeMove {
            step_rate: 0,
            position: None,
        });
        assert!(!ok(&hm0, V3));
    }

    #[test]
    fn nicknames() {
        let st = |s: &str| Command::SetNickname(Nickname::try_from(s).unwrap());
        assert!(ok(&st("AxiDraw-1"), V3));
        assert!(!ok(&st(""), V3));
        assert!(!ok(&st("has space"), V3));
        assert!(!ok(&st("a,b"), V3));
        assert!(!ok(&st("OK"), V3));
        assert!(!ok(&st("!1"), V3));
        assert!(!ok(&st("AxiDraw-1"), FirmwareVersion::new(2, 5, 3)));
    }

    #[test]
    fn engraver_and_pins() {
        let se = |power, queued| {
            Command::SetEngraver(SetEngraver {
                on: true,
                power,
                queued,
            })
        };
        assert!(ok(&se(Some(1023), Some(true)), V2));
        assert!(!ok(&se(Some(1024), None), V3));
        assert!(!ok(&se(None, Some(true)), V3));
        assert!(!ok(&se(Some(1), Some(true)), FirmwareVersion::new(2, 4, 0)));
        assert!(!ok(
            &Command::PinInput {
                port: Port::A,
                pin: 8
            },
            V3
        ));
    }
}
