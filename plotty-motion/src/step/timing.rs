//! The firmware's step arithmetic in closed form: when an LM or SM axis makes its last step, what
//! its accumulator holds afterwards, the rate the firmware derives for an SM, and the LM solver
//! that picks integer `Rate`/`Accel` registers landing an axis's last step on a chosen tick.
//!
//! # The model (reference §2.2, §2.5, §2.6)
//!
//! Every axis has a 32-bit accumulator `acc ∈ [0, 2^31)` between ticks. An active LM axis does, per
//! 40 µs tick, `R += A; acc += R` and steps when bit 31 becomes set (then clears it). The firmware
//! starts from `R0 = Rate − trunc(Accel/2)`, so after `t` ticks
//!
//! ```text
//! R_t = R0 + A·t                      S_t = Σ_{j=1..t} R_j = t·R0 + A·t(t+1)/2
//! ```
//!
//! While `0 ≤ R_j < 2^31` each tick makes at most one step, never a reverse one, and the number of
//! steps after `t` ticks is `floor((C0 + S_t) / 2^31)` where `C0` is the accumulator at the start.
//! So the `N`-th step falls on the smallest `t` with `S_t ≥ M := N·2^31 − C0`, and the accumulator
//! afterwards is `S_t − M`. The axis then stops (the firmware clears its active flag), so its
//! accumulator is frozen until the next command. An SM axis is the special case `A = 0` with the
//! rate the firmware computed from the duration: `t_N = ceil(M / R)`.
//!
//! Reverse LM moves on 3.x count the accumulator *down* (`acc + R` wraps below zero); writing
//! `acc' = 0x7FFF_FFFF − acc` turns that into exactly the forward rule above, which is how the
//! generator treats them ("effective" accumulator). 2.x LM and every SM count up in both directions.
//!
//! # Landing a move on a tick
//!
//! The solver wants `S_{T−1} < M ≤ S_T` for a chosen `T`. For a fixed `A` both inequalities bound
//! `R0` linearly, giving an integer window whose width is `M/(T(T−1)) + A/2` — about `R_T / T`,
//! the final rate over the duration. Raising `A` by one widens it by ½ and shifts it by `T/2`, so a
//! decelerate-to-rest profile (final rate near zero, empty window) lands after raising `A` by a few
//! units, a negligible change of the profile (1 unit = 0.29 steps/s²). The rate limits
//! (`R_1`, `R_T` within `[min, 2^31)`, `Rate ≥ 0`) are further linear bounds on `R0`.

/// One step in accumulator units: the firmware steps when bit 31 is set.
pub const STEP: i64 = 1 << 31;

/// Largest rate register value that keeps an axis at one step per tick at most: `2^31 − 1`.
pub const RATE_MAX: i64 = i32::MAX as i64;

/// SM rates may reach exactly `2^31` on 3.x (one step every tick).
const SM_RATE_MAX: u64 = 1 << 31;

/// Where an axis's last step of a move falls.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Landing {
    /// Tick of the last step, counted from the first tick of the move (1-based).
    pub tick: u64,
    /// The axis's (effective) accumulator after that step, in `[0, 2^31)`.
    pub accumulator: u32,
    /// The rate register after that tick (`R_tick`).
    pub final_rate: i64,
}

/// Integer LM registers for one axis, in the axis's forward direction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LmAxis {
    /// The `Rate` parameter to send (`≥ 0`).
    pub rate: i32,
    /// The `Accel` parameter to send.
    pub accel: i32,
    /// Where its last step falls and the accumulator it leaves.
    pub landing: Landing,
}

/// Why the firmware would reject an SM rate (reference §2.3).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SmRateError {
    /// Faster than one step per tick, or (2.x) `floor(steps/duration) > 25`.
    TooFast,
    /// The rate rounds to zero, or (2.x) `floor(duration/1311) ≥ steps`.
    TooSlow,
    /// 2.x: duration outside 1..=16777215 ms or more than 16777215 steps.
    OutOfRange,
    /// 2.x: 131071 steps or more use the coarse `floor(steps/duration)` branch, off by up to
    /// one whole step per millisecond; the generator never uses it.
    Coarse,
}

/// The firmware's `R0 = Rate − trunc(Accel/2)` (C division truncates toward zero, as Rust's).
pub const fn initial_rate(rate: i32, accel: i32) -> i64 {
    rate as i64 - (accel / 2) as i64
}

/// `S_t = t·R0 + A·t(t+1)/2`, the rate summed over the first `t` ticks.
fn rate_sum(t: i128, r0: i128, a: i128) -> i128 {
    t * r0 + a * (t * (t + 1) / 2)
}

/// Where the `steps`-th step of an LM axis falls, for an axis starting with (effective)
/// accumulator `c0` and sending `rate`/`accel` in its forward direction.
///
/// `None` when the axis would not get there monotonically: its rate leaves
/// `[min_rate, 2^31 − 1]` before the last step (it would stall, reverse, or, on 2.x, have a
/// negative rate rolled over into a huge one), or `steps` is zero.
///
/// Closed form: the positive root of `A/2·t² + (R0 + A/2)·t − M = 0` in `f64`, then exact `i128`
/// checks of `S_{t−1} < M ≤ S_t`, with a bisection fallback if the estimate were ever off.
pub fn lm_landing(c0: u32, rate: i32, accel: i32, steps: u32, min_rate: i64) -> Option<Landing> {
    if steps == 0 || i64::from(c0) >= STEP {
        return None;
    }
    let r0 = initial_rate(rate, accel);
    let a = i64::from(accel);
    let m = i64::from(steps) * STEP - i64::from(c0);
    let min_rate = min_rate.max(0);
    // Last tick up to which the rate stays within [min_rate, RATE_MAX] (and positive, to step).
    let t_max: u64 = if a == 0 {
        if r0 < min_rate.max(1) || r0 > RATE_MAX {
            return None;
        }
        // m ≤ 2^62 and r0 ≥ 1: this many ticks always suffice.
        (m as u64).div_ceil(r0 as u64)
    } else if a > 0 {
        if r0 + a < min_rate || r0 + a > RATE_MAX {
            return None;
        }
        ((RATE_MAX - r0) / a) as u64
    } else {
        let lowest = min_rate.max(1);
        if r0 + a < lowest {
            return None;
        }
        ((r0 - lowest) / -a) as u64
    };
    let (r0w, aw, mw) = (i128::from(r0), i128::from(a), i128::from(m));
    let reaches = |t: u64| rate_sum(i128::from(t), r0w, aw) >= mw;
    if !reaches(t_max) {
        return None;
    }
    // Estimate from the quadratic (stable form), then make it exact.
    let b = r0 as f64 + a as f64 / 2.0;
    let est = if a == 0 {
        m as f64 / r0 as f64
    } else {
        let disc = b * b + 2.0 * a as f64 * m as f64;
        let s = libm::sqrt(if disc > 0.0 { disc } else { 0.0 });
        if b > 0.0 {
            2.0 * m as f64 / (b + s)
        } else {
            (s - b) / a as f64
        }
    };
    let mut t = if est.is_finite() && est > 1.0 {
        (libm::ceil(est) as u64).min(t_max)
    } else {
        1
    };
    let exact = |t: u64| reaches(t) && (t == 1 || !reaches(t - 1));
    let mut tries = 0;
    while !exact(t) && tries < 4 {
        t = if reaches(t) { t - 1 } else { t + 1 };
        tries += 1;
    }
    if !exact(t) {
        // Bisection on [1, t_max]: reaches() is monotone because every R_j ≥ 0 there.
        let (mut lo, mut hi) = (1u64, t_max);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if reaches(mid) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        t = lo;
    }
    let sum = rate_sum(i128::from(t), r0w, aw);
    Some(Landing {
        tick: t,
        // 0 ≤ S_t − M < R_t < 2^31 by the choice of t.
        accumulator: (sum - mw) as u32,
        final_rate: r0 + a * t as i64,
    })
}

/// Where the `steps`-th step of an SM axis falls: `t = ceil((steps·2^31 − c0) / rate)`.
///
/// `rate` is what the firmware computed (1..=2^31); `None` for a zero rate or zero steps.
pub fn sm_landing(c0: u32, rate: u32, steps: u32) -> Option<Landing> {
    if steps == 0 || rate == 0 || u64::from(rate) > SM_RATE_MAX || i64::from(c0) >= STEP {
        return None;
    }
    let m = u64::from(steps) * STEP as u64 - u64::from(c0);
    let t = m.div_ceil(u64::from(rate));
    let acc = u64::from(c0) + t * u64::from(rate) - u64::from(steps) * STEP as u64;
    Some(Landing {
        tick: t,
        accumulator: acc as u32,
        final_rate: i64::from(rate),
    })
}

/// The rate firmware 3.x computes for `SM,duration_ms,±steps`: `k = f32(85899345.92) / f32(D)`,
/// `R = trunc(f32(S) × k)` in single precision (reference §2.3), then its range checks
/// (`R > 2^31` → too fast, `R = 0` → too slow).
pub fn sm_rate_v3(duration_ms: u32, steps: u32) -> Result<u32, SmRateError> {
    if duration_ms == 0 {
        return Err(SmRateError::OutOfRange);
    }
    // 85899345.92 rounds to 85899344.0 in f32.
    let k = 85_899_345.92_f32 / duration_ms as f32;
    let r = steps as f32 * k;
    if r >= 4_294_967_296.0 {
        return Err(SmRateError::TooFast);
    }
    // Truncation toward zero of a non-negative finite f32.
    let r = r as u32;
    if u64::from(r) > SM_RATE_MAX {
        Err(SmRateError::TooFast)
    } else if r == 0 {
        Err(SmRateError::TooSlow)
    } else {
        Ok(r)
    }
}

/// The rate firmware 2.x (2.8.1) computes for `SM,duration_ms,±steps`: 32-bit integer fixed
/// point with its quirks (reference §2.3). Rejects what the firmware rejects and, as errors, the
/// cases where it would clamp (it prints a "Major malfunction" line to the host then) or use its
/// coarse branch.
pub fn sm_rate_v2(duration_ms: u32, steps: u32) -> Result<u32, SmRateError> {
    const MAX: u32 = 16_777_215;
    if duration_ms == 0 || duration_ms > MAX || steps > MAX {
        return Err(SmRateError::OutOfRange);
    }
    if steps / duration_ms > 25 {
        return Err(SmRateError::TooFast);
    }
    if duration_ms / 1311 >= steps {
        return Err(SmRateError::TooSlow);
    }
    if steps >= 131_071 {
        return Err(SmRateError::Coarse);
    }
    let t1 = 25 * duration_ms;
    let scaled = steps << 15; // < 2^32 because steps < 131071
    let q = scaled / t1;
    let r = scaled % t1;
    if q == 0 {
        return Err(SmRateError::TooSlow);
    }
    if q > 32_768 {
        return Err(SmRateError::TooFast);
    }
    let frac = if duration_ms > 30 {
        r.wrapping_shl(16) / t1
    } else {
        0
    };
    let rate = u64::from(q) * 65_536 + u64::from(frac);
    Ok(rate.min(i32::MAX as u64) as u32)
}

/// `round(v)` (half away from zero) as an integer, for any finite `v` (saturating; NaN → 0).
///
/// Same result as `libm::round(v) as i64`, without libm's software rounding and without a
/// branch: add the largest double below ½ with `v`'s sign, then truncate. The sum is rounded
/// to nearest, and that rounding never carries a fraction below ½ up to the next integer (the
/// distance to it exceeds half the spacing there) while it does carry an exact ½ (for `|v| < 1`
/// the sum `1 − 2^-54` is a tie, which goes to the even `1`); from 2^52 on every double is an
/// integer and the addend vanishes. The `as` cast saturates and maps NaN to 0.
#[inline]
pub(crate) fn round_i64(v: f64) -> i64 {
    const BELOW_HALF: f64 = 0.499_999_999_999_999_94;
    (v + BELOW_HALF.copysign(v)) as i64
}

/// [`round_i64`] saturated to the `i32` range (NaN → 0), by the same branchless rounding cast
/// straight to `i32`: truncating and then saturating gives what rounding to `i64` and then
/// clamping gives, in fewer instructions.
#[inline]
pub(crate) fn round_i32(v: f64) -> i32 {
    const BELOW_HALF: f64 = 0.499_999_999_999_999_94;
    (v + BELOW_HALF.copysign(v)) as i32
}

/// Request for [`solve_lm_axis`].
#[cfg(test)]
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) struct LmRequest {
    /// Effective accumulator at the start.
    pub c0: u32,
    /// Steps to make (≥ 1).
    pub steps: u32,
    /// Tick the last step should fall on (≥ 1).
    pub ticks: u64,
    /// Wanted rate at the start and at the end, any common unit (≥ 0): only their ratio counts.
    pub shape: (f64, f64),
    /// Lowest rate allowed while stepping: 0 on 3.x, 1 on 2.x (never let a 2.x rate reach 0).
    pub min_rate: i64,
    /// Shortest landing the fallback may pick when it cannot land exactly (the firmware's
    /// minimum move), unless that is impossible.
    pub min_ticks: u64,
}

/// Constraint on `R0` for a fixed `A`, named for the heuristic that moves `A` when empty.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Bound {
    /// `S_T ≥ M` (lower) or `S_{T−1} < M` (upper).
    Landing,
    /// `Rate ≥ 0` or `R_1 ≥ min_rate`.
    Floor,
    /// A rate or register at its maximum.
    Ceiling,
}

/// `floor(n / d)` for `d > 0`, with an `i64` fast path.
fn div_floor(n: i128, d: i128) -> i128 {
    if let (Ok(n64), Ok(d64)) = (i64::try_from(n), i64::try_from(d)) {
        return i128::from(n64.div_euclid(d64));
    }
    n.div_euclid(d)
}

/// `ceil(n / d)` for `d > 0`.
fn div_ceil(n: i128, d: i128) -> i128 {
    -div_floor(-n, d)
}

/// Integer window of `R0` for a fixed `A` and the constraints that bound it.
fn r0_window(m: i128, t: i128, a: i128, min_rate: i128) -> (i128, Bound, i128, Bound) {
    let max = i128::from(RATE_MAX);
    let half = a / 2; // trunc toward zero, as the firmware
    let mut lo = div_ceil(m - a * (t * (t + 1) / 2), t);
    let mut lo_by = Bound::Landing;
    let mut hi = if t >= 2 {
        div_floor(m - 1 - a * (t * (t - 1) / 2), t - 1)
    } else {
        i128::MAX
    };
    let mut hi_by = Bound::Landing;
    let mut raise = |v: i128, by: Bound| {
        if v > lo {
            lo = v;
            lo_by = by;
        }
    };
    raise(min_rate - a, Bound::Floor); // R_1 ≥ min_rate
    raise(1 - a * t, Bound::Floor); // R_T ≥ 1
    raise(-half, Bound::Floor); // Rate ≥ 0
    raise(i128::from(i32::MIN), Bound::Floor);
    let mut lower = |v: i128, by: Bound| {
        if v < hi {
            hi = v;
            hi_by = by;
        }
    };
    lower(max - a, Bound::Ceiling); // R_1 < 2^31
    lower(max - a * t, Bound::Ceiling); // R_T < 2^31
    lower(max - half, Bound::Ceiling); // Rate fits
    lower(max, Bound::Ceiling); // R0 fits
    (lo, lo_by, hi, hi_by)
}

/// Integer LM registers for one axis so that its last step falls exactly on tick `ticks`, with a
/// rate profile as close to `shape` as the integers allow; never out of the firmware's limits.
///
/// When no registers land exactly on `ticks` (an axis so slow that it makes fewer than about one
/// step per `ticks²/2^32` ticks, or more than one step per tick asked), it returns a constant
/// rate whose last step falls as close before `ticks` as possible (or after it, if even the
/// maximum rate cannot make it in time); [`Landing::tick`] says where.
#[cfg(test)]
pub(crate) fn solve_lm_axis(req: LmRequest) -> LmAxis {
    let profile = Profile::new(req.ticks, req.shape);
    profile.solve(req.c0, req.steps, req.min_rate, req.min_ticks)
}

/// The rate profile an LM aims for, per unit of distance: wanted start and end rates `s0`,
/// `s1` (any common scale) over `t` ticks, normalised once per move so that every axis of the
/// move derives its wish from its own distance with a few multiplications.
///
/// An axis that must cover `m` accumulator units by tick `t` scales the shape so that the rate
/// sum lands mid-window, `Σ R = m + R_T/2`: with `R = λ·s` that is `λ = m/d`,
/// `d = t·(s0 + s1)/2 − s1/2`, so its start and end rates are `m·q0` and `m·q1` with
/// `q = s/d`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Profile {
    t: u64,
    tf: f64,
    /// `1/t`.
    inv_t: f64,
    /// `t·(t + 1)/2`, exact (`t ≤ 2^24` on the fast path).
    half_tt: f64,
    /// `q1/2`: the end rate's half, per unit of `m`.
    q1_half: f64,
    /// `(q1 − q0)/t`: the acceleration per unit of `m`.
    qa: f64,
}

impl Profile {
    /// The profile of `shape` (start and end rate, ≥ 0, not both 0) over `ticks` (≥ 1; 0 counts
    /// as 1); a constant rate if the shape is unusable.
    #[inline]
    pub(crate) fn new(ticks: u64, shape: (f64, f64)) -> Self {
        let t = ticks.max(1);
        let tf = t as f64;
        let (mut s0, mut s1) = shape;
        // Finite and not negative (NaN fails every comparison). Written with the larger of
        // the two (NaN is already refused by the first two comparisons) because LLVM turns
        // four range comparisons into some thirty integer instructions classifying each float;
        // a plain comparison, not `f64::max`, whose NaN rule costs eight instructions.
        let larger = if s0 > s1 { s0 } else { s1 };
        let usable = (s0 >= 0.0) & (s1 >= 0.0) & (larger < f64::INFINITY);
        if !usable {
            (s0, s1) = (1.0, 1.0);
        }
        let mut denom = tf * (s0 + s1) / 2.0 - s1 / 2.0;
        // Not above 1e-300, NaN included (one comparison; `partial_cmp` took eight).
        let positive = denom > 1e-300;
        if !positive {
            (s0, s1) = (1.0, 1.0);
            denom = tf - 0.5;
        }
        let inv_t = 1.0 / tf;
        let inv_denom = 1.0 / denom;
        let (q0, q1) = (s0 * inv_denom, s1 * inv_denom);
        Self {
            t,
            tf,
            inv_t,
            half_tt: tf * (tf + 1.0) * 0.5,
            q1_half: q1 * 0.5,
            qa: (q1 - q0) * inv_t,
        }
    }

    /// A constant rate over `ticks`.
    #[inline]
    pub(crate) fn constant(ticks: u64) -> Self {
        Self::new(ticks, (1.0, 1.0))
    }

    /// Integer LM registers for one axis that starts with (effective) accumulator `c0` and makes
    /// `steps` (≥ 1; 0 counts as 1) steps, its last on tick `t` (see [`solve_lm_axis`]).
    #[inline]
    pub(crate) fn solve(&self, c0: u32, steps: u32, min_rate: i64, min_ticks: u64) -> LmAxis {
        let wish = self.wish(c0, steps);
        match self.fast_landing(&wish, min_rate.max(0)) {
            Some(axis) => axis,
            None => solve_lm_axis_exactly(self, wish, c0, min_rate, min_ticks),
        }
    }

    /// What an axis starting with (effective) accumulator `c0` and making `steps` steps wants.
    #[inline]
    fn wish(&self, c0: u32, steps: u32) -> Wish {
        let m = i64::from(steps.max(1)) * STEP - i64::from(c0.min(STEP as u32 - 1));
        let mf = m as f64;
        Wish {
            m,
            area: mf + mf * self.q1_half,
            a_star: mf * self.qa,
        }
    }

    /// The rounded wish, lifted to the rate floors, if it lands exactly within every limit:
    /// usually it does, and checking that takes a few multiplications where the exact window
    /// takes divisions. In `i64` when the products provably fit (`|A|·T ≤ 2^33` and
    /// `T ≤ 2^24` keep every term below 2^58).
    #[inline]
    fn fast_landing(&self, wish: &Wish, min_rate: i64) -> Option<LmAxis> {
        let (t, m) = (self.t, wish.m);
        if t > 1 << 24 {
            return None;
        }
        // Both roundings take the nearest integer (ties to even) within the bounds the exact
        // path clamps to; any integer near the wish would do, the checks below decide.
        let a0 = round_within(wish.a_star, f64::from(i32::MAX));
        let ti = t as i64;
        if a0.unsigned_abs() * t > 1 << 33 {
            return None;
        }
        let c = round_within(
            (wish.area - a0 as f64 * self.half_tt) * self.inv_t,
            (1u64 << 33) as f64,
        );
        let r0 = c.max(-(a0 / 2)).max(min_rate - a0);
        let sum = ti * r0 + a0 * (ti * (ti + 1) / 2);
        let (r1, rt, rate) = (r0 + a0, r0 + a0 * ti, r0 + a0 / 2);
        // `r0 ≥ −(a0/2)` makes `rate ≥ 0` (so `r0 > i32::MIN`), `r0 ≥ min_rate − a0` makes
        // `r1 ≥ min_rate`: what remains is the landing and the ceilings.
        let lands = (sum >= m)
            & (sum - rt < m)
            & (rt >= 1)
            & (r1 <= RATE_MAX)
            & (rt <= RATE_MAX)
            & (rate <= RATE_MAX);
        lands.then_some(LmAxis {
            rate: rate as i32,
            accel: a0 as i32,
            landing: Landing {
                tick: t,
                accumulator: (sum - m) as u32,
                final_rate: rt,
            },
        })
    }
}

/// `v` clamped to `[−bound, bound]` (NaN to `−bound`) and rounded to the nearest integer, ties
/// to even; `bound < 2^51`. Adding 1.5·2^52 leaves exactly the rounded integer in the low bits
/// of the sum (the FPU rounds to nearest), three instructions instead of a rounding routine.
#[inline]
fn round_within(v: f64, bound: f64) -> i64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    // Plain comparisons rather than `f64::max`/`min` (whose NaN rules take eight instructions
    // each): a NaN fails the first and becomes `-bound`, as documented.
    let raised = if v > -bound { v } else { -bound };
    let clamped = if raised < bound { raised } else { bound };
    ((clamped + MAGIC).to_bits() as i64) - MAGIC.to_bits() as i64
}

/// One axis's wish: `m` accumulator units to cover, the rate sum `area` and slope `a_star` of
/// its scaled profile.
#[derive(Clone, Copy, Debug)]
struct Wish {
    m: i64,
    area: f64,
    a_star: f64,
}

/// [`solve_lm_axis`] when the fast path does not land: the exact integer windows, searching the
/// acceleration near the wish, or the constant-rate fallback.
#[cold]
#[inline(never)]
fn solve_lm_axis_exactly(
    profile: &Profile,
    wish: Wish,
    c0: u32,
    min_rate: i64,
    min_ticks: u64,
) -> LmAxis {
    let (t, tf) = (profile.t, profile.tf);
    let Wish { m, area, a_star } = wish;
    let (mw, tw, minw) = (i128::from(m), i128::from(t), i128::from(min_rate.max(0)));
    let centre = |a: i128| {
        let c = libm::round((area - a as f64 * tf * (tf + 1.0) / 2.0) / tf);
        // Saturating float-to-int cast; the window clamps the value anyway.
        i128::from(c as i64)
    };
    let a_lim =
        |a: f64| i128::from(libm::round(a).clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32);

    let a0 = a_lim(a_star);
    let r0 = centre(a0).max(-(a0 / 2)).max(minw - a0);
    if fits(mw, tw, r0, a0, minw) {
        return finish(r0, a0, t, mw);
    }
    // Search A near the wish; an empty window tells which way to move.
    let mut a = a0;
    let mut step_dir: i128 = 0;
    for _ in 0..48 {
        let (lo, lo_by, hi, hi_by) = r0_window(mw, tw, a, minw);
        if lo <= hi {
            let r0 = centre(a).clamp(lo, hi);
            return finish(r0, a, t, mw);
        }
        let gap = lo - hi;
        let next = match (lo_by, hi_by) {
            // Deceleration too steep for the steps left: ease it.
            (Bound::Landing, Bound::Landing) => a + (2 * gap).max(1),
            // Acceleration too steep for a start from rest: soften it.
            (Bound::Floor, Bound::Landing) => a - div_ceil(2 * gap, (tw - 1).max(1)).max(1),
            _ => {
                // Mixed limits: walk outwards around the wish.
                step_dir = if step_dir <= 0 {
                    1 - step_dir
                } else {
                    -step_dir
                };
                a0 + step_dir
            }
        };
        if next < i128::from(i32::MIN) || next > i128::from(i32::MAX) {
            break;
        }
        a = next;
    }
    constant_rate(c0, m, t, min_rate, min_ticks)
}

/// Whether `R0 = r0`, `A = a` land the last step on tick `t` within every limit (the same
/// constraints as [`r0_window`], checked directly).
fn fits(m: i128, t: i128, r0: i128, a: i128, min_rate: i128) -> bool {
    let max = i128::from(RATE_MAX);
    let r1 = r0 + a;
    let rt = r0 + a * t;
    let rate = r0 + a / 2;
    let sum = t * r0 + a * (t * (t + 1) / 2);
    sum >= m
        && sum - rt < m
        && r1 >= min_rate
        && rt >= 1
        && r1 <= max
        && rt <= max
        && (0..=max).contains(&rate)
        && r0 >= i128::from(i32::MIN)
        && r0 <= max
}

/// Registers and landing for a window hit (`S_{T−1} < M ≤ S_T` holds by construction).
fn finish(r0: i128, a: i128, t: u64, m: i128) -> LmAxis {
    let rate = r0 + a / 2;
    let sum = rate_sum(i128::from(t), r0, a);
    LmAxis {
        // Both within i32 by the window bounds (Rate fits, A was clamped to i32).
        rate: rate as i32,
        accel: a as i32,
        landing: Landing {
            tick: t,
            accumulator: (sum - m) as u32,
            final_rate: (r0 + a * i128::from(t)) as i64,
        },
    }
}

/// Fallback: the constant rate `ceil(M/T)` (clamped to the limits), which lands at or before `T`;
/// or one less, landing after `T`, when the first would land before `min_ticks`.
fn constant_rate(c0: u32, m: i64, t: u64, min_rate: i64, min_ticks: u64) -> LmAxis {
    let t = t.min(i64::MAX as u64) as i64;
    let lowest = min_rate.max(1);
    let mut rate = ((m + t - 1) / t).clamp(lowest, RATE_MAX);
    if (m + rate - 1) / rate < min_ticks.min(i64::MAX as u64) as i64 && rate > lowest {
        rate -= 1;
    }
    let ticks = (m + rate - 1) / rate;
    let acc = i64::from(c0) + ticks * rate - (m + i64::from(c0));
    LmAxis {
        rate: rate as i32,
        accel: 0,
        landing: Landing {
            tick: ticks as u64,
            accumulator: acc as u32,
            final_rate: rate,
        },
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn sm_rates_match_reference_table() {
        // Reference §2.3 worked examples: (D, S, v3 R, v3 ticks, v2 R, v2 ticks), C0 = 0.
        let rows: [(u32, u32, u32, u64, u32, u64); 6] = [
            (1000, 1000, 85_899_344, 25_001, 85_899_345, 25_001),
            (500, 2009, 345_143_552, 12_501, 345_143_571, 12_501),
            (28, 100, 306_783_360, 701, 306_774_016, 701),
            (1, 1, 85_899_344, 26, 85_852_160, 26),
            (1, 25, 2_147_483_648, 25, 2_147_483_647, 26),
            (30, 5, 14_316_558, 750, 14_286_848, 752),
        ];
        for (d, s, r3, t3, r2, t2) in rows {
            assert_eq!(sm_rate_v3(d, s), Ok(r3), "v3 SM,{d},{s}");
            assert_eq!(
                sm_landing(0, r3, s).unwrap().tick,
                t3,
                "v3 ticks SM,{d},{s}"
            );
            assert_eq!(sm_rate_v2(d, s), Ok(r2), "v2 SM,{d},{s}");
            assert_eq!(
                sm_landing(0, r2, s).unwrap().tick,
                t2,
                "v2 ticks SM,{d},{s}"
            );
        }
    }

    #[test]
    fn sm_rate_limits() {
        assert_eq!(sm_rate_v3(1, 26), Err(SmRateError::TooFast));
        assert_eq!(sm_rate_v2(1, 26), Err(SmRateError::TooFast));
        assert_eq!(sm_rate_v2(1311, 1), Err(SmRateError::TooSlow));
        assert!(sm_rate_v2(1310, 1).is_ok());
        assert_eq!(sm_rate_v2(10_000, 131_071), Err(SmRateError::Coarse));
        assert_eq!(sm_rate_v2(0, 1), Err(SmRateError::OutOfRange));
        assert_eq!(sm_rate_v3(0, 1), Err(SmRateError::OutOfRange));
        // One step per 23.9 h is the slowest rate 3.x can represent.
        assert!(sm_rate_v3(85_000_000, 1).is_ok());
        assert_eq!(sm_rate_v3(90_000_000, 1), Err(SmRateError::TooSlow));
    }

    #[test]
    fn doc_examples_land_where_the_reference_says() {
        // Reference §8.3, from a cleared accumulator.
        assert_eq!(lm_landing(0, 3_865_471, 1732, 60, 0).unwrap().tick, 10_169);
        assert_eq!(lm_landing(0, 85_899_346, 0, 10, 0).unwrap().tick, 250);
        assert_eq!(lm_landing(0, 17_180_814, 0, 2, 0).unwrap().tick, 250);
        assert_eq!(lm_landing(0, 85_899_346, 0, 500, 0).unwrap().tick, 12_500);
        assert_eq!(lm_landing(0, 57_266_231, 0, 20, 0).unwrap().tick, 750);
        assert_eq!(lm_landing(0, 42_950_000, 13_400, 50, 0).unwrap().tick, 1924);
        assert_eq!(lm_landing(0, 17_179_000, -687, 75, 0).unwrap().tick, 12_500);
        assert_eq!(lm_landing(0, 8_592_000, 687, 75, 0).unwrap().tick, 12_500);
        // Erratum note of §8.3: `LM,33865471,1000,…` (constant rate) takes 63413 ticks.
        assert_eq!(lm_landing(0, 33_865_471, 0, 1000, 0).unwrap().tick, 63_413);
    }

    #[test]
    fn landing_refuses_stalls_and_overflow() {
        // Decelerates to zero before the fifth step.
        assert_eq!(lm_landing(0, 1000, -100, 5, 0), None);
        // Would pass 2^31 − 1 before landing.
        assert_eq!(lm_landing(0, i32::MAX - 10, 100, 50, 0), None);
        assert_eq!(lm_landing(0, 0, 0, 1, 0), None);
        assert_eq!(lm_landing(0, 5, 0, 0, 0), None);
    }

    #[test]
    fn decelerate_to_rest_lands_exactly() {
        // 400 steps over 5000 ticks, shape ending at zero speed.
        let sol = solve_lm_axis(LmRequest {
            c0: 12345,
            steps: 400,
            ticks: 5000,
            shape: (1.0, 0.0),
            min_rate: 1,
            min_ticks: 100,
        });
        assert_eq!(sol.landing.tick, 5000);
        let check = lm_landing(12345, sol.rate, sol.accel, 400, 1).unwrap();
        assert_eq!(check, sol.landing);
        assert!(sol.accel < 0);
    }

    #[test]
    fn accelerate_from_rest_lands_exactly() {
        let sol = solve_lm_axis(LmRequest {
            c0: 0,
            steps: 37,
            ticks: 800,
            shape: (0.0, 1.0),
            min_rate: 0,
            min_ticks: 100,
        });
        assert_eq!(sol.landing.tick, 800);
        assert_eq!(lm_landing(0, sol.rate, sol.accel, 37, 0), Some(sol.landing));
        assert!(sol.rate >= 0 && sol.accel > 0);
    }

    #[test]
    fn too_fast_falls_back_to_the_maximum_rate() {
        let sol = solve_lm_axis(LmRequest {
            c0: 0,
            steps: 200,
            ticks: 100,
            shape: (1.0, 1.0),
            min_rate: 0,
            min_ticks: 100,
        });
        assert_eq!(sol.rate as i64, RATE_MAX);
        assert_eq!(sol.landing.tick, 201);
        assert_eq!(
            lm_landing(0, sol.rate, sol.accel, 200, 0),
            Some(sol.landing)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn solver_lands_within_limits(
            c0 in 0u32..(1 << 31),
            steps in 1u32..200_000,
            ticks in 1u64..3_000_000,
            s0 in 0.0f64..10.0,
            s1 in 0.0f64..10.0,
            v2 in any::<bool>(),
        ) {
            let min_rate = i64::from(v2);
            let req = LmRequest { c0, steps, ticks, shape: (s0, s1), min_rate, min_ticks: 100 };
            let sol = solve_lm_axis(req);
            prop_assert!(sol.rate >= 0);
            // The landing it claims is what the closed form (checked against the per-tick
            // oracle elsewhere) says for these registers, within every rate limit.
            let check = lm_landing(c0, sol.rate, sol.accel, steps, min_rate);
            prop_assert_eq!(check, Some(sol.landing));
            // Exact whenever the axis is neither too fast nor absurdly slow for the duration.
            let m = i64::from(steps) * STEP - i64::from(c0);
            let t = ticks as i64;
            if m <= (t - 1) * RATE_MAX / 2 && m as i128 >= i128::from(t) * i128::from(t) {
                prop_assert_eq!(sol.landing.tick, ticks);
            }
            if m <= t * RATE_MAX {
                // At or before the wish, unless that would be shorter than the minimum move.
                prop_assert!(sol.landing.tick <= ticks || sol.accel == 0);
                prop_assert!(sol.landing.tick <= ticks || sol.landing.tick >= 100);
            }
        }

        /// Whenever the fast path answers, its registers land exactly on the wanted tick
        /// within every limit (by the closed form, itself checked against the per-tick
        /// oracle), and the exact path lands there too.
        #[test]
        fn fast_path_lands_exactly_and_agrees_with_the_exact_path(
            c0 in 0u32..(1 << 31),
            steps in 1u32..100_000,
            ticks in prop_oneof![1u64..400, 100u64..200_000, (1u64 << 24) - 5..(1u64 << 24) + 5],
            s0 in prop_oneof![Just(0.0), 0.0f64..10.0],
            s1 in prop_oneof![Just(0.0), 0.0f64..10.0],
            v2 in any::<bool>(),
        ) {
            let min_rate = i64::from(v2);
            let profile = Profile::new(ticks, (s0, s1));
            let wish = profile.wish(c0, steps);
            if let Some(fast) = profile.fast_landing(&wish, min_rate) {
                prop_assert_eq!(fast.landing.tick, ticks);
                prop_assert!(fast.rate >= 0);
                let check = lm_landing(c0, fast.rate, fast.accel, steps, min_rate);
                prop_assert_eq!(check, Some(fast.landing));
                let exact = solve_lm_axis_exactly(&profile, wish, c0, min_rate, 100);
                prop_assert_eq!(exact.landing.tick, ticks);
                prop_assert_eq!(lm_landing(c0, exact.rate, exact.accel, steps, min_rate), Some(exact.landing));
            }
        }

        /// `round_within` is the nearest integer (ties to even) of the clamped value.
        #[test]
        fn round_within_is_nearest_integer(
            v in prop_oneof![
                -1e12f64..1e12,
                -10.0f64..10.0,
                (-1_000_000i64..1_000_000).prop_map(|i| i as f64 + 0.5),
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
            ],
            bound in prop_oneof![Just(f64::from(i32::MAX)), Just((1u64 << 33) as f64), 1.0f64..1e6],
        ) {
            let bound = libm::floor(bound);
            let clamped = if v.is_nan() { -bound } else { v.clamp(-bound, bound) };
            let nearest = libm::round(clamped);
            // Ties to even.
            let want = if (clamped - libm::trunc(clamped)).abs() == 0.5 {
                2.0 * libm::round(clamped / 2.0)
            } else {
                nearest
            };
            prop_assert_eq!(round_within(v, bound), want as i64, "{} within {}", v, bound);
        }

        #[test]
        fn landing_closed_form_matches_bisection(
            c0 in 0u32..(1 << 31),
            rate in 0i32..i32::MAX,
            accel in -100_000i32..100_000,
            steps in 1u32..5000,
        ) {
            if let Some(l) = lm_landing(c0, rate, accel, steps, 0) {
                let r0 = i128::from(initial_rate(rate, accel));
                let a = i128::from(accel);
                let m = i128::from(steps) * i128::from(STEP) - i128::from(c0);
                prop_assert!(rate_sum(i128::from(l.tick), r0, a) >= m);
                prop_assert!(l.tick == 1 || rate_sum(i128::from(l.tick) - 1, r0, a) < m);
            }
        }
    }
}
