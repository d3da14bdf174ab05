//! The speed profile of one block once its entry and exit speeds are final: accelerate at `a`
//! from the entry speed, cruise, decelerate at `a` to the exit speed.
//!
//! Works on squared speeds (mm²/s²): along a ramp at acceleration `a`, speed² changes by
//! `2·a·d` over a distance `d`, so the peak a block of length `L` can reach between entry `vᵢ`
//! and exit `vₒ` is where the two ramps meet: `v² = (vᵢ² + vₒ² + 2·a·L)/2`.

use super::config::min;

/// Cruise speed² of a block: the lower of its top speed² and the peak its ramps can reach.
///
/// Never below the entry or exit speed², so the profile stays monotone up then down even when
/// rounding left the inputs a hair outside what the block can do.
#[inline]
pub(crate) fn cruise_speed_sqr(
    length_mm: f64,
    accel_mm_s2: f64,
    entry_sqr: f64,
    exit_sqr: f64,
    max_speed_sqr: f64,
) -> f64 {
    let peak_sqr = 0.5 * (entry_sqr + exit_sqr) + accel_mm_s2 * length_mm;
    let cruise_sqr = min(peak_sqr, max_speed_sqr);
    max(max(cruise_sqr, entry_sqr), exit_sqr)
}

/// The exit speed² to plan for a block entered at `entry_sqr`, given the lookahead's bound.
///
/// The bound already guarantees that the block can brake to it (`entry² − 2·a·L ≤ bound`) up to
/// floating-point rounding; if rounding left it a hair lower, it is raised to what the block
/// can brake to — but never above `cap_sqr`, the junction's own limit (zero at a rest point), so
/// no speed limit is exceeded and a rest point is exactly at rest.
#[inline]
pub(crate) fn feasible_exit_sqr(
    entry_sqr: f64,
    bound_sqr: f64,
    cap_sqr: f64,
    ramp_sqr: f64,
) -> f64 {
    let lowest_sqr = entry_sqr - ramp_sqr;
    let exit_sqr = max(bound_sqr, lowest_sqr);
    max(min(exit_sqr, cap_sqr), 0.0)
}

#[inline]
fn max(a: f64, b: f64) -> f64 {
    if b > a { b } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_block_cruises() {
        // 100 mm at 200 mm/s², top 50 mm/s, from rest to rest: reaches 50.
        let c = cruise_speed_sqr(100.0, 200.0, 0.0, 0.0, 2500.0);
        assert_eq!(c, 2500.0);
    }

    #[test]
    fn short_block_is_a_triangle() {
        // 1 mm at 200 mm/s² from rest to rest: peak² = a·L = 200.
        let c = cruise_speed_sqr(1.0, 200.0, 0.0, 0.0, 2500.0);
        assert!((c - 200.0).abs() < 1e-12);
        // Entry 10 mm/s, exit 0: peak² = (100 + 0 + 400)/2 = 250.
        let c = cruise_speed_sqr(1.0, 200.0, 100.0, 0.0, 2500.0);
        assert!((c - 250.0).abs() < 1e-12);
    }

    #[test]
    fn cruise_never_below_ends() {
        // Infeasible by rounding (entry² − exit² > 2aL): cruise stays at the entry.
        let c = cruise_speed_sqr(1.0, 1.0, 100.0, 0.0, 2500.0);
        assert_eq!(c, 100.0);
    }

    #[test]
    fn exit_raised_only_up_to_cap() {
        // Bound below what braking allows: raised to entry² − 2aL.
        assert_eq!(feasible_exit_sqr(100.0, 10.0, 1000.0, 50.0), 50.0);
        // …but never above the cap (a rest point stays at rest).
        assert_eq!(feasible_exit_sqr(100.0, 0.0, 0.0, 99.999), 0.0);
        // A feasible bound is kept.
        assert_eq!(feasible_exit_sqr(100.0, 70.0, 1000.0, 50.0), 70.0);
        // Never negative.
        assert_eq!(feasible_exit_sqr(0.0, -1e-18, 5.0, 50.0), 0.0);
    }
}
