//! Motion commands as the FIFO holds them, and the arithmetic that turns host parameters into
//! the registers the 25 kHz interrupt steps with (reference §2.3–§2.6):
//!
//! * 3.x SM/XM rates in 32-bit float, 2.x SM/XM rates in the 32-bit integer scheme (with its
//!   "Major malfunction" clamps), 3.x HM/TR rates;
//! * the LM/LT/L3/T3 parse-time transform (rate pre-compensation by Accel/2 and Jerk/6,
//!   accumulator clear or 0x7FFFFFFF preset, stored Accel − Jerk), and its 2.x counterpart.
//!
//! Everything wraps modulo 2^32 where the firmware's C does.

use crate::observer::CommandKind;

/// What the interrupt does with a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// No command (idle).
    None,
    /// SM/XM/HM/TR: constant rate per axis until both step counts are done.
    Simple,
    /// 3.x LM/L3: accel and jerk, direction from the rate's sign, steps counted both ways.
    Accel,
    /// 3.x LT/T3: accel and jerk for `steps[0]` intervals (plus one idle tick).
    Timed,
    /// 2.x LM: accel, fixed direction, a negative rate loses its bit 31.
    AccelV2,
    /// 2.x LT: as [`Op::AccelV2`] for exactly `steps[0]` ticks.
    TimedV2,
    /// SM/XM with no steps: count `delay` ticks.
    Delay,
    /// Servo move, then count `delay` ticks.
    Servo,
    /// EM: driver enables and microstep mode.
    Em,
    /// Queued SE: engraver output.
    Se,
}

/// Accumulator handling when a motion command is loaded (the firmware's `SEState` bits).
pub(crate) mod acc_flags {
    /// Zero axis 1's accumulator.
    pub(crate) const CLEAR1: u8 = 1;
    /// Zero axis 2's accumulator.
    pub(crate) const CLEAR2: u8 = 2;
    /// Set axis 1's accumulator to 0x7FFFFFFF (first motion is reverse).
    pub(crate) const NEGATE1: u8 = 4;
    /// Set axis 2's accumulator to 0x7FFFFFFF.
    pub(crate) const NEGATE2: u8 = 8;
    /// Test mode `CU,251,1`: preload the accumulators with [`super::Command::preload`].
    pub(crate) const PRELOAD: u8 = 16;
}

/// One motion FIFO entry (and, once loaded, the executing command).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Command {
    pub(crate) op: Op,
    pub(crate) kind: CommandKind,
    /// Per-axis rate register (SM-type: unsigned value in the same bits).
    pub(crate) rate: [i32; 2],
    /// Steps left per axis; for LT/T3 `steps[0]` is the intervals left.
    pub(crate) steps: [u32; 2],
    pub(crate) accel: [i32; 2],
    pub(crate) jerk: [i32; 2],
    /// Direction bits (true = reverse, global counter counts down).
    pub(crate) dir: [bool; 2],
    /// Delay counter in ticks (delays and servo moves).
    pub(crate) delay: u32,
    /// [`acc_flags`] applied at load.
    pub(crate) acc_flags: u8,
    /// Test-mode accumulator preload.
    pub(crate) preload: u32,
    pub(crate) servo_channel: u8,
    pub(crate) servo_rpn: u8,
    pub(crate) servo_position: u16,
    pub(crate) servo_rate: u16,
    /// EM's two parameters.
    pub(crate) em: [u8; 2],
    pub(crate) se_state: u8,
    pub(crate) se_power: u16,
}

impl Command {
    /// A command of `op` with every register zero.
    pub(crate) const fn new(op: Op, kind: CommandKind) -> Self {
        Self {
            op,
            kind,
            rate: [0; 2],
            steps: [0; 2],
            accel: [0; 2],
            jerk: [0; 2],
            dir: [false; 2],
            delay: 0,
            acc_flags: 0,
            preload: 0,
            servo_channel: 0,
            servo_rpn: 0,
            servo_position: 0,
            servo_rate: 0,
            em: [0; 2],
            se_state: 0,
            se_power: 0,
        }
    }

    /// A delay of `ticks`.
    pub(crate) const fn delay(ticks: u32) -> Self {
        let mut c = Self::new(Op::Delay, CommandKind::Delay);
        c.delay = ticks;
        c
    }
}

/// `f32(85899345.92)`: 2^31 / 25000 steps per second, as C18 rounds the literal.
const SM_SCALE_F32: f32 = 85_899_344.0;
/// `f32(85899.34592)`: the same per step/s, used by HM/TR (written out exactly).
#[allow(clippy::excessive_precision)]
const HM_SCALE_F32: f32 = 85_899.343_75;

/// A 3.x SM/XM rate for one axis, before the limit checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SmRate {
    /// A usable rate register value.
    Ok(u32),
    /// Above 2^31 (more than one step per tick).
    TooHigh,
    /// Truncated to zero.
    TooSlow,
}

/// 3.x `process_simple_motor_move_fp` for one axis: `trunc(f32(steps) × (f32 scale / f32(ms)))`.
pub(crate) fn sm_rate_v3(steps: u32, duration_ms: u32) -> SmRate {
    let k = SM_SCALE_F32 / duration_ms as f32;
    let r = (steps as f32 * k).trunc();
    if r > 2_147_483_648.0 {
        SmRate::TooHigh
    } else if r < 1.0 {
        SmRate::TooSlow
    } else {
        // 1 ≤ r ≤ 2^31 fits in u32.
        SmRate::Ok(r as u32)
    }
}

/// What 2.x prints while clamping an SM rate (`Major malfunction …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum V2Clamp {
    /// `StepCounter too high : <value>`.
    TooHigh(u32),
    /// `StepCounter zero`.
    Zero,
}

/// 2.x integer division as the PIC library does it; division by zero (reachable only with
/// limit checks off) gives all ones.
fn div(a: u32, b: u32) -> u32 {
    a.checked_div(b).unwrap_or(u32::MAX)
}

/// 2.x `process_SM` for one non-zero axis: the integer rate and the clamp it printed, if any.
pub(crate) fn sm_rate_v2(steps: u32, duration_ms: u32) -> (u32, Option<V2Clamp>) {
    let (mut q, rem) = if steps < 0x1FFFF {
        let t1 = 25u32.wrapping_mul(duration_ms);
        let num = steps << 15;
        let q = div(num, t1);
        let r = num.checked_rem(t1).unwrap_or(num);
        let rem = if duration_ms > 30 {
            div(r << 16, t1)
        } else {
            0
        };
        (q, rem)
    } else {
        (div(div(steps, duration_ms).wrapping_mul(0x8000), 25), 0)
    };
    let mut note = None;
    if q > 0x8000 {
        note = Some(V2Clamp::TooHigh(q));
        q = 0x8000;
    }
    if q == 0 {
        note = Some(V2Clamp::Zero);
        q = 1;
    }
    let r = if duration_ms > 30 {
        (q << 16).wrapping_add(rem)
    } else {
        q << 16
    };
    (r.min(0x7FFF_FFFF), note)
}

/// 3.x `process_simple_rate_move_fp` (HM, TR): the major axis at `step_rate` steps/s, the minor
/// one proportionally. `step_rate` is already within 1..=25000.
pub(crate) fn rate_move_v3(step_rate: u32, steps: [u32; 2]) -> [u32; 2] {
    let major = usize::from(steps[1] > steps[0]);
    let minor = 1 - major;
    let mut rates = [0u32; 2];
    if steps[major] == 0 {
        return rates;
    }
    let r_major = step_rate as f32 * HM_SCALE_F32;
    // C's (INT32) cast of 2^31 (25000 steps/s) lands on 0x80000000: still one step per tick.
    rates[major] = if r_major >= 2_147_483_648.0 {
        0x8000_0000
    } else {
        r_major as u32
    };
    let t = steps[minor] as f32 * step_rate as f32;
    let t = t / steps[major] as f32;
    let t = t * HM_SCALE_F32;
    rates[minor] = if t >= 2_147_483_647.0 {
        0x7FFF_FFFF
    } else {
        (t as u32).max(1)
    };
    rates
}

/// One axis of a 3.x LM/L3/LT/T3 after the parse-time transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AxisRegs {
    /// `Rate − Accel/2 + Jerk/6`.
    pub(crate) rate: i32,
    /// `Accel − Jerk`.
    pub(crate) accel: i32,
    pub(crate) jerk: i32,
    /// True if a cleared accumulator must start at 0x7FFFFFFF (first motion is reverse).
    pub(crate) negative_start: bool,
}

/// 3.x transform of one axis (after the legacy negative-steps rule).
pub(crate) fn accel_axis_v3(rate: i32, accel: i32, jerk: i32) -> AxisRegs {
    let r0 = rate.wrapping_sub(accel / 2).wrapping_add(jerk / 6);
    let first = r0.wrapping_add(accel);
    let negative_start = if first != 0 {
        first < 0
    } else {
        let second = accel.wrapping_add(jerk);
        if second != 0 { second < 0 } else { jerk < 0 }
    };
    AxisRegs {
        rate: r0,
        accel: accel.wrapping_sub(jerk),
        jerk,
        negative_start,
    }
}

/// 2.x transform of one LM/LT axis: `Rate − Accel/2`, no jerk.
pub(crate) fn accel_axis_v2(rate: u32, accel: i32) -> i32 {
    let rate = rate.min(0x7FFF_FFFF) as i32;
    rate.wrapping_sub(accel / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ticks an SM-type axis takes from accumulator `c0` (the §2.3 "duration produced" rule).
    fn ticks_for(rate: u32, steps: u32, c0: u32) -> u64 {
        let mut acc = c0;
        let mut left = steps;
        let mut t = 0;
        while left > 0 {
            t += 1;
            acc = acc.wrapping_add(rate);
            if acc & 0x8000_0000 != 0 {
                acc &= 0x7FFF_FFFF;
                left -= 1;
            }
        }
        t
    }

    /// The worked examples of reference §2.3 (rates and tick counts, both versions).
    #[test]
    fn sm_rate_table_of_the_reference() {
        // (duration, steps, v3 rate, v3 ticks, v2 rate, v2 ticks)
        let table: [(u32, u32, u32, u64, u32, u64); 6] = [
            (1000, 1000, 85_899_344, 25_001, 85_899_345, 25_001),
            (500, 2009, 345_143_552, 12_501, 345_143_571, 12_501),
            (28, 100, 306_783_360, 701, 306_774_016, 701),
            (1, 1, 85_899_344, 26, 85_852_160, 26),
            (1, 25, 2_147_483_648, 25, 2_147_483_647, 26),
            (30, 5, 14_316_558, 750, 14_286_848, 752),
        ];
        for (d, s, r3, t3, r2, t2) in table {
            assert_eq!(sm_rate_v3(s, d), SmRate::Ok(r3), "v3 SM,{d},{s}");
            assert_eq!(ticks_for(r3, s, 0), t3, "v3 ticks SM,{d},{s}");
            assert_eq!(sm_rate_v2(s, d), (r2, None), "v2 SM,{d},{s}");
            assert_eq!(ticks_for(r2, s, 0), t2, "v2 ticks SM,{d},{s}");
        }
    }

    #[test]
    fn sm_rate_limits() {
        assert_eq!(sm_rate_v3(26, 1), SmRate::TooHigh);
        assert_eq!(sm_rate_v3(1, 100_000), SmRate::Ok(858));
        assert_eq!(sm_rate_v3(1, u32::MAX), SmRate::TooSlow);
        // 2.x: 25 < S/D < 26 clamps with a message; S ≥ 131071 with S < D bottoms out.
        assert_eq!(sm_rate_v2(51, 2).1, Some(V2Clamp::TooHigh(33_423)));
        assert_eq!(sm_rate_v2(200_000, 300_000), (65_536, Some(V2Clamp::Zero)));
    }

    #[test]
    fn hm_rates() {
        // 25000 steps/s rounds to 2^31 in f32: one step per tick.
        assert_eq!(rate_move_v3(25_000, [100, 0])[0], 0x8000_0000);
        let r = rate_move_v3(1000, [300, 400]);
        assert_eq!(r[1], 85_899_344);
        assert_eq!(r[0], 64_424_508);
        assert_eq!(rate_move_v3(1000, [0, 0]), [0, 0]);
    }

    #[test]
    fn accel_transform_and_negative_start() {
        let a = accel_axis_v3(-10, -35_111_222, 0);
        assert_eq!(a.rate, 17_555_601);
        assert!(a.negative_start);
        let b = accel_axis_v3(0, 0, -6);
        assert_eq!(b.rate, -1);
        assert!(b.negative_start);
        assert!(!accel_axis_v3(0, 0, 0).negative_start);
        assert_eq!(accel_axis_v2(u32::MAX, 10), 0x7FFF_FFFF - 5);
    }
}
