//! Firmware limits as constants, and the firmware's own `SM` rate arithmetic that decides which
//! moves it rejects. Section numbers refer to `reference/ebb-firmware.md`.
//!
//! The step generator must stay inside these limits; the encoder ([`Command::validate`])
//! enforces them so that nothing the firmware would reject, clamp or silently change leaves this
//! crate.
//!
//! [`Command::validate`]: super::Command::validate

/// Interrupt ticks per second: every step happens on one of these 40 µs ticks (§2.1).
pub const TICK_HZ: u32 = 25_000;

/// Highest step rate per motor: one step per tick (§0.1, §6.3). `SM`/`XM` on 3.x allow exactly
/// this rate; 2.x rejects anything faster.
pub const MAX_STEP_RATE_HZ: u32 = 25_000;

/// The rate register value for one step per second: `2^31 / 25000` (§0.1). A rate register `R`
/// adds `R` to a 32-bit accumulator every tick and steps when bit 31 becomes set.
pub const RATE_UNITS_PER_STEP_PER_S: f64 = 85_899.345_92;

/// The rate register value for one step per tick (25 kHz), `2^31` (§2.3). `SM` on 3.x accepts
/// exactly this value and rejects anything above it.
pub const RATE_ONE_STEP_PER_TICK: u32 = 0x8000_0000;

/// The largest `|Rate|` an `LM`/`LT`/`L3`/`T3` move may reach at any tick: the register is a
/// signed 32-bit value that wraps silently (and flips direction) beyond it (§2.5, §6.3). The
/// firmware does not check this; the step generator must.
pub const MAX_LOW_LEVEL_RATE: i32 = i32::MAX;

/// The 3.x `SM` rate numerator `f32(85899345.92)`, which rounds to 85899344.0 (§2.3).
pub const SM_RATE_NUMERATOR_V3: f32 = 85_899_344.0;

/// Longest `SM`/`XM` duration on 2.x, in ms (§1.4: `Duration 1..16777215`).
pub const MAX_SM_DURATION_MS_V2: u32 = 16_777_215;

/// Largest `|steps|` per axis of an `SM`/`XM` (after mixing) and of an `HM` distance on 2.x
/// (§1.4).
pub const MAX_SM_STEPS_V2: u32 = 16_777_215;

/// Longest pure delay (`SM,D,0,0`) that 2.8.1 executes faithfully: its interrupt zeroes any
/// delay counter above `25 × 65536` ticks, so longer delays collapse to ~0 (§1.4, §6.10).
pub const MAX_DELAY_MS_V2: u32 = 65_536;

/// Longest pure delay on 3.x: the firmware runs `25 × min(Duration, 100000)` ticks (§1.4).
pub const MAX_DELAY_MS_V3: u32 = 100_000;

/// 2.x's slow-rate check divides the duration by this: a move is rejected ("step rate < 1.31Hz")
/// when `floor(Duration / 1311) >= |Steps|`, i.e. below about 0.763 steps/s (§1.4, §2.3).
pub const SM_SLOW_DIVISOR_MS_V2: u32 = 1311;

/// 2.x's `SM` arithmetic switches to a coarse formula at this many steps (§2.3).
pub const SM_COARSE_STEPS_V2: u32 = 131_071;

/// 2.x's `SM` rate quotient is clamped to this (one step per tick) with a "Major malfunction"
/// message to the host when it would be larger (§2.3).
pub const SM_MAX_QUOTIENT_V2: u32 = 32_768;

/// Highest value of the `Clear` parameter of motion commands: bit 0 clears axis 1's
/// accumulator, bit 1 axis 2's (§1.4). 3.x rejects or clamps larger values, 2.x ignores them.
pub const MAX_CLEAR: u8 = 3;

/// `HM` step rate range: 2.x rejects 0 and rates above 25000, 3.x clamps to `1..=25000` (§1.4).
pub const HM_STEP_RATE_RANGE: core::ops::RangeInclusive<u32> = 1..=25_000;

/// Shortest `SM`/`XM` command that runs gap-free at 25 kHz on both axes, 3.x (§6.4).
pub const MIN_SM_MS_V3: u32 = 2;
/// Shortest `LM`/`LT` command that runs gap-free at 25 kHz on both axes, 3.x (§6.4).
pub const MIN_LM_MS_V3: u32 = 4;
/// Shortest `L3`/`T3` command that runs gap-free at 25 kHz on both axes, 3.x (§6.4).
pub const MIN_L3_MS_V3: u32 = 4;
/// Shortest `SM`/`XM` command that runs gap-free on 2.7–2.8.x (§6.4 gives 3–4 ms; the upper
/// bound is the safe one).
pub const MIN_SM_MS_V2_7: u32 = 4;
/// Shortest `LM`/`LT` command that runs gap-free on 2.7–2.8.x (§6.4 gives 3–5 ms; the upper
/// bound is the safe one).
pub const MIN_LM_MS_V2_7: u32 = 5;
/// Shortest move of any kind that runs gap-free before 2.7.0 (§6.4 gives 4–7 ms).
pub const MIN_MOVE_MS_BEFORE_V2_7: u32 = 7;

/// Motion FIFO depth on 2.x: a single slot (§1.5).
pub const FIFO_DEPTH_V2: u8 = 1;
/// Motion FIFO depth at boot and after `R` on 3.x (§1.5).
pub const FIFO_DEPTH_DEFAULT_V3: u8 = 1;
/// Deepest motion FIFO on 3.x (`CU,4,32`; `QU,2` reports it, §1.5). Only `1..=32` is safe for
/// `CU,4`: 0 blocks every later queued command forever and negative values overrun the ring
/// (§6.2).
pub const FIFO_DEPTH_MAX_V3: u8 = 32;

/// Longest command the firmware accepts, without its terminator: `kRX_BUF_SIZE` is 256 bytes
/// including the CR (§1.1). Longer commands give `!3 Err: RX Buffer overrun`.
pub const MAX_COMMAND_LEN: usize = 255;

/// Longest encoded command including its CR terminator (see [`MAX_COMMAND_LEN`]).
pub const MAX_ENCODED_LEN: usize = MAX_COMMAND_LEN + 1;

/// Longest nickname `ST` stores in flash (§1.4).
pub const MAX_NICKNAME_LEN: usize = 16;

/// Highest `RPn` output number of `S2` (§3: `> 24 → !6`).
pub const MAX_S2_RPN: u8 = 24;

/// Highest PortB pin number of `SP` (§3: invalid values are replaced by 1).
pub const MAX_SP_PIN: u8 = 7;

/// Highest pin number of `PI` (§1.2).
pub const MAX_PIN: u8 = 7;

/// Highest index of the 3.x byte variables of `SL`/`QL` (§1.4: larger indices are clamped).
pub const MAX_VARIABLE_INDEX_V3: u8 = 31;

/// Highest `SE` engraver power (10-bit PWM).
pub const MAX_ENGRAVER_POWER: u16 = 1023;

/// Servo power auto-off timeout at boot, in ms (§3, `SR`).
pub const SERVO_TIMEOUT_DEFAULT_MS: u32 = 60_000;

/// A reply line capacity that holds every reply and error line of both firmware lines with room
/// to spare (the longest real lines are about 55 bytes); a good `N` for
/// [`LineBuffer`](super::LineBuffer).
pub const REPLY_LINE_CAPACITY: usize = 128;

/// The `SM`/`XM` rate register 3.x computes for `steps` steps in `duration_ms`, with its
/// single-precision arithmetic (§2.3): `k = f32(85899345.92) / f32(D)`, `R = trunc(f32(S) × k)`.
///
/// The firmware rejects the move ("step rate too high") when the result exceeds
/// [`RATE_ONE_STEP_PER_TICK`], and ("too slow") when it is 0. Results beyond `u32` saturate,
/// which keeps them "too high". `duration_ms` 0 gives `u32::MAX` (the firmware rejects
/// duration 0 before computing).
pub fn sm_rate_v3(steps: u32, duration_ms: u32) -> u32 {
    if duration_ms == 0 {
        return u32::MAX;
    }
    // Each operation rounds to f32 exactly as the PIC's 32-bit float does (IEEE single).
    #[allow(clippy::cast_precision_loss)]
    let k = SM_RATE_NUMERATOR_V3 / duration_ms as f32;
    #[allow(clippy::cast_precision_loss)]
    let r = steps as f32 * k;
    // `as` truncates toward zero and saturates, like the firmware's conversion for every value
    // that can pass its range check.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let r = r as u32;
    r
}

/// What 2.x makes of an `SM`/`XM` axis (§2.3).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SmRateV2 {
    /// The firmware runs the axis at this rate register.
    Rate(u32),
    /// Rejected with `!0 Err: <axisN> step rate > 25K steps/second.` (`floor(S/D) > 25`).
    TooFast,
    /// Rejected with `!0 Err: <axisN> step rate < 1.31Hz.` (`floor(D/1311) >= S`).
    TooSlow,
    /// Accepted, but the quotient is clamped to `[1, 32768]` with a "Major malfunction" line:
    /// the axis runs at a rate other than the one asked for (`25 < S/D < 26`, or the coarse
    /// branch with `S < D`).
    Clamped,
}

/// The `SM`/`XM` rate register 2.x computes for `steps` (> 0) steps in `duration_ms` (≥ 1), with
/// its 32-bit integer arithmetic (§2.3), or why it rejects or alters the move.
pub fn sm_rate_v2(steps: u32, duration_ms: u32) -> SmRateV2 {
    if duration_ms == 0 || steps / duration_ms > 25 {
        return SmRateV2::TooFast;
    }
    if duration_ms / SM_SLOW_DIVISOR_MS_V2 >= steps {
        return SmRateV2::TooSlow;
    }
    let (quotient, fraction) = if steps < SM_COARSE_STEPS_V2 {
        // steps < 2^17, so steps × 2^15 < 2^32; duration ≤ 2^32/25 is not guaranteed, hence the
        // wrapping multiply, as in the firmware.
        let t1 = duration_ms.wrapping_mul(25);
        if t1 == 0 {
            return SmRateV2::Clamped;
        }
        let scaled = steps << 15;
        let q = scaled / t1;
        let r = scaled % t1;
        let frac = if duration_ms > 30 {
            r.wrapping_shl(16) / t1
        } else {
            0
        };
        (q, frac)
    } else {
        ((steps / duration_ms).wrapping_mul(32_768) / 25, 0)
    };
    if quotient == 0 || quotient > SM_MAX_QUOTIENT_V2 {
        return SmRateV2::Clamped;
    }
    let rate = (u64::from(quotient) << 16) + u64::from(fraction);
    SmRateV2::Rate(u32::try_from(rate.min(0x7FFF_FFFF)).unwrap_or(0x7FFF_FFFF))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked examples of §2.3's table.
    #[test]
    fn sm_rates_match_reference_table() {
        let table: [(u32, u32, u32, u32); 6] = [
            (1000, 1000, 85_899_344, 85_899_345),
            (500, 2009, 345_143_552, 345_143_571),
            (28, 100, 306_783_360, 306_774_016),
            (1, 1, 85_899_344, 85_852_160),
            (1, 25, 2_147_483_648, 2_147_483_647),
            (30, 5, 14_316_558, 14_286_848),
        ];
        for (d, s, v3, v2) in table {
            assert_eq!(sm_rate_v3(s, d), v3, "v3 SM,{d},{s}");
            assert_eq!(sm_rate_v2(s, d), SmRateV2::Rate(v2), "v2 SM,{d},{s}");
        }
    }

    #[test]
    fn v3_limits() {
        assert_eq!(sm_rate_v3(25, 1), RATE_ONE_STEP_PER_TICK);
        assert!(sm_rate_v3(26, 1) > RATE_ONE_STEP_PER_TICK);
        assert!(sm_rate_v3(u32::MAX, 1) > RATE_ONE_STEP_PER_TICK);
        // One step in a day is about 1/86400 steps/s: R ≈ 0.99, truncated to 0.
        assert_eq!(sm_rate_v3(1, 86_400_000), 0);
        assert_eq!(sm_rate_v3(1, 1_000_000), 85);
    }

    #[test]
    fn v2_limits() {
        assert!(matches!(sm_rate_v2(250, 10), SmRateV2::Rate(_)));
        assert_eq!(sm_rate_v2(251, 10), SmRateV2::Clamped);
        assert_eq!(sm_rate_v2(259, 10), SmRateV2::Clamped);
        assert_eq!(sm_rate_v2(260, 10), SmRateV2::TooFast);
        assert_eq!(sm_rate_v2(1, 1311), SmRateV2::TooSlow);
        assert!(matches!(sm_rate_v2(1, 1310), SmRateV2::Rate(_)));
        // Coarse branch with fewer steps than milliseconds: quotient 0, clamped.
        assert_eq!(sm_rate_v2(131_071, 200_000), SmRateV2::Clamped);
        assert!(matches!(sm_rate_v2(131_071, 100_000), SmRateV2::Rate(_)));
    }
}
