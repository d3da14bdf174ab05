//! Planner limits: top speed, acceleration and cornering rule per pen state, and the per-motor
//! limits of the mixed-axis machine. Built only through validating constructors, so the planner's
//! arithmetic never meets a NaN, a zero or an absurd magnitude.
//!
//! Speeds are kept squared inside the planner (`_sqr`, in mm²/s²): the lookahead passes work on
//! speed² because a constant-acceleration ramp changes speed² linearly with distance
//! (`v₁² = v₀² + 2·a·d`), which needs no square root.

use crate::kinematics::{AxiDrawSettings, Kinematics, MM_PER_INCH, STEP_RATE_LIMIT_HZ};

use super::block::Pen;
use super::error::PlanError;

/// Lower sanity bound for a speed limit (1 µm/s): below it plot times overflow any use.
pub const MIN_SPEED_LIMIT_MM_S: f64 = 1.0e-3;
/// Upper sanity bound for a speed limit (100 m/s): far beyond any plotter, low enough that
/// squares and sums of squares stay far from overflow.
pub const MAX_SPEED_LIMIT_MM_S: f64 = 100_000.0;
/// Lower sanity bound for an acceleration limit (1 µm/s²): keeps ramp lengths (v²/2a) finite
/// and well rounded.
pub const MIN_ACCEL_LIMIT_MM_S2: f64 = 1.0e-3;
/// Upper sanity bound for an acceleration limit (about 1000 g).
pub const MAX_ACCEL_LIMIT_MM_S2: f64 = 1.0e7;
/// Upper sanity bound for a junction deviation (1 m).
pub const MAX_DEVIATION_MM: f64 = 1_000.0;
/// Upper sanity bound for the AxiDraw cornering factor (δ = 200 inch).
pub const MAX_AXIDRAW_CORNERING: f64 = 1.0e6;
/// Lower sanity bound for a per-motor step rate (1 step/s).
pub const MIN_STEP_RATE_LIMIT_HZ: f64 = 1.0;
/// Upper sanity bound for a per-motor step rate (1 MHz; the EBB does 25 kHz).
pub const MAX_STEP_RATE_LIMIT_HZ: f64 = 1.0e6;
/// Lower sanity bound for a per-motor step acceleration (1 step/s²).
pub const MIN_STEP_ACCEL_LIMIT_HZ_S: f64 = 1.0;
/// Upper sanity bound for a per-motor step acceleration.
pub const MAX_STEP_ACCEL_LIMIT_HZ_S: f64 = 1.0e10;
/// Lower sanity bound for a per-motor velocity change at a corner (1 step/s): keeps the corner
/// speed `jump/k/|Δu|` positive and finite.
pub const MIN_CORNER_JUMP_HZ: f64 = 1.0;
/// Upper sanity bound for a per-motor velocity change at a corner (1 MHz).
pub const MAX_CORNER_JUMP_HZ: f64 = 1.0e6;

/// The AxiDraw rule's stand-in radius when a junction is (nearly) straight: 100000 inch.
const AXIDRAW_STRAIGHT_RADIUS_MM: f64 = 100_000.0 * MM_PER_INCH;

/// How fast the machine may go through the corner between two straight segments.
///
/// Both rules model the corner as a circular arc the machine would follow at the centripetal
/// acceleration `a`: the speed is `v = sqrt(a·r)` with `r = δ·s/(1 − s)`, where
/// `s = sin(θ/2)` and `θ` is the angle between the reversed incoming direction and the outgoing
/// one (`s = 1` straight on, `s = 0` for a full reversal) and δ the allowed deviation from the
/// corner point. They differ in how δ is given and in the near-straight cut-off.
#[derive(Clone, Copy, PartialEq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Cornering {
    /// grbl's (and saxi's) junction deviation: δ in millimetres; a straight junction is limited
    /// only by the segments' top speeds; a reversal stops.
    JunctionDeviation {
        /// Allowed deviation δ from the corner point, in millimetres (0 stops at every corner).
        deviation_mm: f64,
    },
    /// The AxiDraw software's rule (reference §5.2): δ = `cornering`/5000 inch, and a corner
    /// with `1 − s ≤ 0.0001` counts as straight (radius 100000 inch).
    AxiDraw {
        /// The AxiDraw `cornering` setting (default 10, i.e. δ = 0.002 inch).
        cornering: f64,
    },
    /// What the motors accept (the idea of Klipper's square_corner_velocity and Marlin's
    /// jerk, applied to each motor of the mixed-axis machine): the velocity vector jumps at the
    /// corner, and each motor's step rate may change there by at most `max_jump_hz` steps/s.
    /// Through a corner from unit direction `u` into `w` at speed `v`, motor 1 changes its rate
    /// by `v·k·|Δux + Δuy|` and motor 2 by `v·k·|Δux − Δuy|` (`Δu = w − u`, `k` steps/mm), so
    /// `v ≤ max_jump_hz / (k·(|Δux| + |Δuy|))`: straight on is unlimited, a reversal along a
    /// diagonal the slowest. Not a path-geometry rule: [`Cornering::corner_speed_sqr`] cannot
    /// evaluate it; [`PlannerConfig::corner_speed_sqr`] can.
    MotorJump {
        /// Largest instantaneous step-rate change of either motor at a corner, steps/s.
        max_jump_hz: f64,
    },
}

impl Cornering {
    /// The deviation δ in millimetres.
    pub fn deviation_mm(self) -> f64 {
        match self {
            Self::JunctionDeviation { deviation_mm } => deviation_mm,
            Self::AxiDraw { cornering } => cornering / 5000.0 * MM_PER_INCH,
            // The path keeps its corner exactly (the velocity jumps there).
            Self::MotorJump { .. } => 0.0,
        }
    }

    /// Square of the corner speed limit (mm²/s²) between two segments with unit directions whose
    /// dot product is `dot` and cross product `cross`, at acceleration `accel_mm_s2`.
    ///
    /// Not yet capped by the segments' top speeds; `f64::INFINITY` for an exactly straight
    /// junction under junction deviation, and for [`Cornering::MotorJump`], which depends on the
    /// directions themselves (see [`PlannerConfig::corner_speed_sqr`]). Never NaN for finite
    /// inputs.
    pub fn corner_speed_sqr(self, dot: f64, cross: f64, accel_mm_s2: f64) -> f64 {
        CornerRule::new(self, 1.0).speed_sqr(dot, cross, accel_mm_s2)
    }

    fn validate(self, pen: Pen) -> Result<(), PlanError> {
        match self {
            Self::JunctionDeviation { deviation_mm } => check_range(
                deviation_mm,
                0.0,
                MAX_DEVIATION_MM,
                pick(
                    pen,
                    "pen_up.cornering.deviation_mm",
                    "pen_down.cornering.deviation_mm",
                ),
                "a number from 0 to 1000 mm",
            ),
            Self::AxiDraw { cornering } => check_range(
                cornering,
                0.0,
                MAX_AXIDRAW_CORNERING,
                pick(
                    pen,
                    "pen_up.cornering.cornering",
                    "pen_down.cornering.cornering",
                ),
                "a number from 0 to 1000000",
            ),
            Self::MotorJump { max_jump_hz } => check_range(
                max_jump_hz,
                MIN_CORNER_JUMP_HZ,
                MAX_CORNER_JUMP_HZ,
                pick(
                    pen,
                    "pen_up.cornering.max_jump_hz",
                    "pen_down.cornering.max_jump_hz",
                ),
                "a number from 1 to 1000000 steps/s",
            ),
        }
    }
}

/// A cornering rule with its deviation precomputed, for the hot path.
#[derive(Clone, Copy, PartialEq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(crate) struct CornerRule {
    axidraw: bool,
    deviation_mm: f64,
    /// [`Cornering::MotorJump`]'s bound as a path speed along an axis (`max_jump_hz / k`,
    /// mm/s), squared; infinite for the deviation rules.
    jump_sqr: f64,
}

impl CornerRule {
    fn new(cornering: Cornering, steps_per_mm: f64) -> Self {
        let jump_sqr = match cornering {
            Cornering::MotorJump { max_jump_hz } => {
                let jump_mm_s = max_jump_hz / steps_per_mm;
                jump_mm_s * jump_mm_s
            }
            _ => f64::INFINITY,
        };
        Self {
            axidraw: matches!(cornering, Cornering::AxiDraw { .. }),
            deviation_mm: cornering.deviation_mm(),
            jump_sqr,
        }
    }

    /// The corner speed² from unit direction `u` into `w` (`dot` and `cross` their products):
    /// the per-motor jump bound for [`Cornering::MotorJump`], else the deviation rule.
    #[inline]
    pub(crate) fn between(
        &self,
        u: (f64, f64),
        w: (f64, f64),
        dot: f64,
        cross: f64,
        accel_mm_s2: f64,
    ) -> f64 {
        if self.jump_sqr < f64::INFINITY {
            // The busier motor's rate changes by v·k·(|Δux| + |Δuy|) (max(|a + b|, |a − b|) =
            // |a| + |b|). An exactly straight junction divides by 0: +∞, never NaN (jump > 0).
            let factor = libm::fabs(w.0 - u.0) + libm::fabs(w.1 - u.1);
            self.jump_sqr / (factor * factor)
        } else {
            self.speed_sqr(dot, cross, accel_mm_s2)
        }
    }

    /// See [`Cornering::corner_speed_sqr`]. One square root and one division.
    ///
    /// With `s = sin(θ/2) = sqrt((1 + dot)/2)`: `1 − s = (1 − dot)/(2·(1 + s))`, so the radius
    /// `δ·s/(1 − s)` is `2·δ·s·(1 + s)/(1 − dot)`. `1 − dot` loses all its digits for nearly
    /// parallel directions; for unit vectors it equals `cross²/(1 + dot)`, which keeps them.
    /// It is carried as the fraction `den/num` so that only one division remains.
    #[inline]
    pub(crate) fn speed_sqr(&self, dot: f64, cross: f64, accel_mm_s2: f64) -> f64 {
        let dot = if dot > 1.0 {
            1.0
        } else if dot >= -1.0 {
            dot
        } else {
            // Below −1, or NaN (unreachable for finite unit vectors): a reversal, the safe
            // reading.
            -1.0
        };
        let (num, den) = if dot > 0.0 {
            (1.0 + dot, cross * cross)
        } else {
            (1.0, 1.0 - dot)
        };
        let sine = libm::sqrt((1.0 + dot) * 0.5);
        let scale = 2.0 * sine * (1.0 + sine) * num;
        if self.jump_sqr < f64::INFINITY {
            // Not a deviation rule: see `between`.
            f64::INFINITY
        } else if self.axidraw {
            // The AxiDraw software's cut-off: 1 − s ≤ 1e-4 counts as straight.
            let radius_mm = if den > 2.0e-4 * (1.0 + sine) * num {
                self.deviation_mm * scale / den
            } else {
                AXIDRAW_STRAIGHT_RADIUS_MM
            };
            accel_mm_s2 * radius_mm
        } else if den > 0.0 {
            accel_mm_s2 * self.deviation_mm * scale / den
        } else {
            f64::INFINITY
        }
    }
}

/// Speed, acceleration and cornering limits for one pen state.
#[derive(Clone, Copy, PartialEq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MotionLimits {
    /// Top path speed in mm/s.
    pub max_speed_mm_s: f64,
    /// Path acceleration and deceleration in mm/s².
    pub accel_mm_s2: f64,
    /// Corner speed rule.
    pub cornering: Cornering,
}

impl MotionLimits {
    fn validate(&self, pen: Pen) -> Result<(), PlanError> {
        check_range(
            self.max_speed_mm_s,
            MIN_SPEED_LIMIT_MM_S,
            MAX_SPEED_LIMIT_MM_S,
            pick(pen, "pen_up.max_speed_mm_s", "pen_down.max_speed_mm_s"),
            "a number from 0.001 to 100000 mm/s",
        )?;
        check_range(
            self.accel_mm_s2,
            MIN_ACCEL_LIMIT_MM_S2,
            MAX_ACCEL_LIMIT_MM_S2,
            pick(pen, "pen_up.accel_mm_s2", "pen_down.accel_mm_s2"),
            "a number from 0.001 to 10000000 mm/s²",
        )?;
        self.cornering.validate(pen)
    }
}

/// Limits of the individual motors of the mixed-axis machine.
///
/// On the AxiDraw both motors turn for a move along X or Y, each at `k` steps per millimetre of
/// path; along a motor's own diagonal one motor does `k·√2` steps per millimetre. A step-rate
/// limit therefore allows a higher path speed along the axes than along the diagonals.
#[derive(Clone, Copy, PartialEq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MotorLimits {
    /// The mapping from paths to motor steps.
    pub kinematics: Kinematics,
    /// Highest step rate of either motor in steps/s; `None` turns the limit off (for comparisons
    /// with planners that only know an XY speed).
    pub max_step_rate_hz: Option<f64>,
    /// Highest step acceleration of either motor in steps/s²; `None` turns the limit off.
    pub max_step_accel_hz_s: Option<f64>,
}

impl MotorLimits {
    /// No per-motor limits: only the XY limits of [`MotionLimits`] apply.
    pub const fn none(kinematics: Kinematics) -> Self {
        Self {
            kinematics,
            max_step_rate_hz: None,
            max_step_accel_hz_s: None,
        }
    }

    /// The EBB's limit: 25,000 steps/s on each motor, no per-motor acceleration limit.
    pub const fn ebb(kinematics: Kinematics) -> Self {
        Self {
            kinematics,
            max_step_rate_hz: Some(STEP_RATE_LIMIT_HZ),
            max_step_accel_hz_s: None,
        }
    }

    fn validate(&self) -> Result<(), PlanError> {
        check_range(
            self.kinematics.steps_per_mm(),
            1.0,
            1.0e6,
            "motors.kinematics.steps_per_mm",
            "a number from 1 to 1000000",
        )?;
        if let Some(rate) = self.max_step_rate_hz {
            check_range(
                rate,
                MIN_STEP_RATE_LIMIT_HZ,
                MAX_STEP_RATE_LIMIT_HZ,
                "motors.max_step_rate_hz",
                "a number from 1 to 1000000 steps/s, or None",
            )?;
        }
        if let Some(accel) = self.max_step_accel_hz_s {
            check_range(
                accel,
                MIN_STEP_ACCEL_LIMIT_HZ_S,
                MAX_STEP_ACCEL_LIMIT_HZ_S,
                "motors.max_step_accel_hz_s",
                "a number from 1 to 1e10 steps/s², or None",
            )?;
        }
        Ok(())
    }
}

/// Everything the planner needs to know about the machine. Built only through
/// [`PlannerConfig::new`] or [`PlannerConfig::axidraw`], which validate every number.
#[derive(Clone, Copy, PartialEq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PlannerConfig {
    pen_up: MotionLimits,
    pen_down: MotionLimits,
    motors: MotorLimits,
    per_motor: bool,
    profiles: [PenProfile; 2],
}

/// Per-pen numbers in the form the hot path wants them.
#[derive(Clone, Copy, PartialEq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(crate) struct PenProfile {
    /// XY top speed squared (mm²/s²).
    pub(crate) max_speed_sqr: f64,
    /// XY acceleration (mm/s²).
    pub(crate) accel_mm_s2: f64,
    /// Corner rule.
    pub(crate) cornering: CornerRule,
    /// `(max_step_rate / k)²`: the top speed squared along an axis under the motor limit, to be
    /// divided by the busiest-motor factor squared; infinite without a motor limit.
    pub(crate) motor_speed_sqr: f64,
    /// `max_step_accel / k`: the acceleration along an axis under the motor limit, to be divided
    /// by the busiest-motor factor; infinite without a motor limit.
    pub(crate) motor_accel_mm_s2: f64,
}

impl PenProfile {
    /// Top speed squared and acceleration of a straight move along the unit vector (`ux`, `uy`).
    ///
    /// The busier motor turns `k·(|ux| + |uy|)` steps per millimetre of path
    /// (`max(|ux + uy|, |ux − uy|) = |ux| + |uy|`), between `k` along an axis and `k·√2` along a
    /// motor's diagonal.
    ///
    /// Divides only where a motor limit is the stricter one (never at the AxiDraw defaults).
    #[inline]
    pub(crate) fn limits_along(&self, ux: f64, uy: f64) -> (f64, f64) {
        let busiest = libm::fabs(ux) + libm::fabs(uy);
        let busiest_sqr = busiest * busiest;
        let speed_sqr = if self.max_speed_sqr * busiest_sqr <= self.motor_speed_sqr {
            self.max_speed_sqr
        } else {
            self.motor_speed_sqr / busiest_sqr
        };
        let accel = if self.accel_mm_s2 * busiest <= self.motor_accel_mm_s2 {
            self.accel_mm_s2
        } else {
            self.motor_accel_mm_s2 / busiest
        };
        (speed_sqr, accel)
    }
}

impl PlannerConfig {
    /// A configuration from explicit limits, after checking every number: speeds,
    /// accelerations and motor limits within their `MIN_*`/`MAX_*` sanity bounds (which rejects
    /// NaN, zero, negative and absurd values), deviations and cornering from 0 up to their
    /// `MAX_*` bound.
    pub fn new(
        pen_up: MotionLimits,
        pen_down: MotionLimits,
        motors: MotorLimits,
    ) -> Result<Self, PlanError> {
        Self::build(pen_up, pen_down, motors, false)
    }

    /// Motor-limited planning: the same numbers read as limits of each motor, so that no motor
    /// ever works harder than under [`PlannerConfig::new`] with these XY limits, while a move
    /// the motors share goes faster.
    ///
    /// Under an XY speed `v` the busier motor turns `k·(|ux| + |uy|)` steps per millimetre of
    /// path, at most `k·√2` (along a motor's diagonal): it never exceeds the step rate `√2·v·k`,
    /// nor, likewise, the step acceleration `√2·a·k`. Here those become the limits of each
    /// motor, for every direction: a path speed `√2·v·k / (k·(|ux| + |uy|))` (`√2·v` along an
    /// axis, `v` on a diagonal, the same as before there) and likewise the acceleration.
    /// `motors`' own step-rate and step-acceleration limits (the EBB's 25 kHz) still cap them.
    /// Corners follow the pen state's [`Cornering`] rule: [`Cornering::MotorJump`] is the one
    /// that speaks of motors.
    ///
    /// # Errors
    /// As [`PlannerConfig::new`].
    pub fn per_motor(
        pen_up: MotionLimits,
        pen_down: MotionLimits,
        motors: MotorLimits,
    ) -> Result<Self, PlanError> {
        Self::build(pen_up, pen_down, motors, true)
    }

    fn build(
        pen_up: MotionLimits,
        pen_down: MotionLimits,
        motors: MotorLimits,
        per_motor: bool,
    ) -> Result<Self, PlanError> {
        pen_up.validate(Pen::Up)?;
        pen_down.validate(Pen::Down)?;
        motors.validate()?;
        let k = motors.kinematics.steps_per_mm();
        let profile = |limits: &MotionLimits| {
            let cap_speed = motors.max_step_rate_hz.map_or(f64::INFINITY, |r| r / k);
            let cap_accel = motors.max_step_accel_hz_s.map_or(f64::INFINITY, |a| a / k);
            let (max_speed, accel, motor_speed, motor_accel) = if per_motor {
                // Motor limits √2·v·k and √2·a·k, as path figures along an axis (÷ k). The XY
                // limits are set to the same: they never bind before the motors do.
                let speed = min(core::f64::consts::SQRT_2 * limits.max_speed_mm_s, cap_speed);
                let accel = min(core::f64::consts::SQRT_2 * limits.accel_mm_s2, cap_accel);
                (speed, accel, speed, accel)
            } else {
                (
                    limits.max_speed_mm_s,
                    limits.accel_mm_s2,
                    cap_speed,
                    cap_accel,
                )
            };
            PenProfile {
                max_speed_sqr: max_speed * max_speed,
                accel_mm_s2: accel,
                cornering: CornerRule::new(limits.cornering, k),
                motor_speed_sqr: motor_speed * motor_speed,
                motor_accel_mm_s2: motor_accel,
            }
        };
        Ok(Self {
            pen_up,
            pen_down,
            motors,
            per_motor,
            profiles: [profile(&pen_up), profile(&pen_down)],
        })
    }

    /// True for a motor-limited configuration ([`PlannerConfig::per_motor`]).
    pub fn is_per_motor(&self) -> bool {
        self.per_motor
    }

    /// Square of the corner speed limit (mm²/s²) from unit direction `u` into unit direction
    /// `w` with the pen in state `pen`, at acceleration `accel_mm_s2`: the pen state's
    /// [`Cornering`] rule, including [`Cornering::MotorJump`]. Not yet capped by the segments'
    /// top speeds; infinite for an exactly straight junction unless the AxiDraw rule applies.
    pub fn corner_speed_sqr(
        &self,
        pen: Pen,
        u: (f64, f64),
        w: (f64, f64),
        accel_mm_s2: f64,
    ) -> f64 {
        let dot = u.0 * w.0 + u.1 * w.1;
        let cross = u.0 * w.1 - u.1 * w.0;
        self.profile(pen)
            .cornering
            .between(u, w, dot, cross, accel_mm_s2)
    }

    /// The AxiDraw software's limits for `settings` (reference §4, §5.2): at the defaults pen down
    /// 50.2 mm/s at 30 in/s², pen up 150.6 mm/s at 45 in/s², the AxiDraw cornering rule with
    /// `cornering` 10 for both pen states, and the EBB's 25 kHz per-motor step-rate limit at the
    /// settings' resolution.
    pub fn axidraw(settings: &AxiDrawSettings) -> Result<Self, PlanError> {
        let cornering = Cornering::AxiDraw {
            cornering: settings.cornering,
        };
        Self::new(
            MotionLimits {
                max_speed_mm_s: settings.pen_up_speed_mm_s(),
                accel_mm_s2: settings.pen_up_accel_mm_s2(),
                cornering,
            },
            MotionLimits {
                max_speed_mm_s: settings.pen_down_speed_mm_s(),
                accel_mm_s2: settings.pen_down_accel_mm_s2(),
                cornering,
            },
            MotorLimits::ebb(Kinematics::new(settings.resolution)),
        )
    }

    /// [`PlannerConfig::axidraw`]'s limits read per motor ([`PlannerConfig::per_motor`]), with
    /// corners at which either motor's step rate may jump by at most `max_jump_hz`
    /// ([`Cornering::MotorJump`]).
    ///
    /// # Errors
    /// As [`PlannerConfig::axidraw`], and for a jump outside 1 to 1,000,000 steps/s.
    pub fn axidraw_per_motor(
        settings: &AxiDrawSettings,
        max_jump_hz: f64,
    ) -> Result<Self, PlanError> {
        let xy = Self::axidraw(settings)?;
        let cornering = Cornering::MotorJump { max_jump_hz };
        Self::per_motor(
            MotionLimits {
                cornering,
                ..xy.pen_up
            },
            MotionLimits {
                cornering,
                ..xy.pen_down
            },
            xy.motors,
        )
    }

    /// The limits given for the pen state `pen` (for a [`per_motor`](Self::per_motor)
    /// configuration, the XY figures its motor limits were derived from).
    pub fn limits(&self, pen: Pen) -> &MotionLimits {
        match pen {
            Pen::Up => &self.pen_up,
            Pen::Down => &self.pen_down,
        }
    }

    /// The per-motor limits.
    pub fn motors(&self) -> &MotorLimits {
        &self.motors
    }

    /// Top path speed (mm/s) and acceleration (mm/s²) of a straight move in direction
    /// (`dx`, `dy`) (any length but zero) with the pen in state `pen`: the XY limits, lowered
    /// where a motor limit is stricter along that direction.
    pub fn limits_along(&self, pen: Pen, dx: f64, dy: f64) -> (f64, f64) {
        let length = libm::sqrt(dx * dx + dy * dy);
        if length.is_nan() || length <= 0.0 || length.is_infinite() {
            let limits = self.limits(pen);
            return (0.0, limits.accel_mm_s2);
        }
        let (speed_sqr, accel) = self.profile(pen).limits_along(dx / length, dy / length);
        (libm::sqrt(speed_sqr), accel)
    }

    #[inline]
    pub(crate) fn profile(&self, pen: Pen) -> &PenProfile {
        match pen {
            Pen::Up => &self.profiles[0],
            Pen::Down => &self.profiles[1],
        }
    }
}

#[inline]
pub(crate) fn min(a: f64, b: f64) -> f64 {
    if b < a { b } else { a }
}

const fn pick(pen: Pen, up: &'static str, down: &'static str) -> &'static str {
    match pen {
        Pen::Up => up,
        Pen::Down => down,
    }
}

/// Accepts `lo ≤ v ≤ hi`; NaN fails both comparisons.
fn check_range(
    v: f64,
    lo: f64,
    hi: f64,
    limit: &'static str,
    allowed: &'static str,
) -> Result<(), PlanError> {
    if v >= lo && v <= hi {
        Ok(())
    } else {
        Err(PlanError::InvalidLimit { limit, allowed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinematics::Resolution;

    const IN: f64 = MM_PER_INCH;

    fn unit(deg: f64) -> (f64, f64) {
        let r = deg.to_radians();
        (r.cos(), r.sin())
    }

    /// Corner speed in in/s for a deflection of `deg` degrees at `accel_in_s2`.
    fn axidraw_corner_in_s(deg: f64, accel_in_s2: f64) -> f64 {
        let (ux, uy) = unit(0.0);
        let (wx, wy) = unit(deg);
        let rule = Cornering::AxiDraw { cornering: 10.0 };
        let v2 = rule.corner_speed_sqr(ux * wx + uy * wy, ux * wy - uy * wx, accel_in_s2 * IN);
        v2.sqrt() / IN
    }

    #[test]
    fn axidraw_rule_matches_reference_figures() {
        // Reference §5.2: deflection 90° → 0.381 in/s at a = 30 in/s²; 45° → 0.853; reversal 0.
        assert!((axidraw_corner_in_s(90.0, 30.0) - 0.381).abs() < 5e-4);
        assert!((axidraw_corner_in_s(45.0, 30.0) - 0.853).abs() < 5e-4);
        assert_eq!(axidraw_corner_in_s(180.0, 30.0), 0.0);
        // Straight on: the 100000-inch radius, far above any top speed.
        assert!(axidraw_corner_in_s(0.0, 30.0) > 1000.0);
    }

    #[test]
    fn axidraw_rule_near_straight_cutoff() {
        // 1 − s ≤ 1e-4 counts as straight: s = cos(φ/2) for a deflection φ, so the cut-off is
        // at φ = 2·acos(1 − 1e-4) ≈ 1.62°.
        let rule = Cornering::AxiDraw { cornering: 10.0 };
        let a = 762.0;
        let phi_cut = 2.0 * (1.0f64 - 1e-4).acos();
        let just_below = phi_cut * 0.999;
        let (c, s) = (just_below.cos(), just_below.sin());
        assert_eq!(
            rule.corner_speed_sqr(c, s, a),
            a * 100_000.0 * IN,
            "below the cut-off the radius is 100000 in"
        );
        let above = phi_cut * 1.01;
        let v2 = rule.corner_speed_sqr(above.cos(), above.sin(), a);
        assert!(v2 < a * 100_000.0 * IN && v2 > 0.0);
    }

    #[test]
    fn junction_deviation_formula() {
        let rule = Cornering::JunctionDeviation {
            deviation_mm: 0.127,
        };
        let a = 200.0;
        // 90°: s = sin(45°), v² = a·δ·s/(1 − s).
        let s = core::f64::consts::FRAC_1_SQRT_2;
        let want = a * 0.127 * s / (1.0 - s);
        let got = rule.corner_speed_sqr(0.0, 1.0, a);
        assert!((got - want).abs() < 1e-12 * want);
        // Reversal stops; straight is unlimited.
        assert_eq!(rule.corner_speed_sqr(-1.0, 0.0, a), 0.0);
        assert_eq!(rule.corner_speed_sqr(1.0, 0.0, a), f64::INFINITY);
        // Tiny deflections φ keep their precision (s = cos(φ/2), 1 − s ≈ φ²/8).
        let phi: f64 = 1e-6;
        let v2 = rule.corner_speed_sqr(phi.cos(), phi.sin(), a);
        let want = a * 0.127 * 8.0 / (phi * phi);
        assert!((v2 / want - 1.0).abs() < 1e-6, "{v2} vs {want}");
        // Same as the AxiDraw rule away from the cut-off when δ matches.
        let axi = Cornering::AxiDraw { cornering: 10.0 };
        let jd = Cornering::JunctionDeviation {
            deviation_mm: axi.deviation_mm(),
        };
        let (c, sn) = (1.0f64.cos(), 1.0f64.sin());
        let (x, y) = (
            axi.corner_speed_sqr(c, sn, a),
            jd.corner_speed_sqr(c, sn, a),
        );
        assert!((x - y).abs() < 1e-12 * x);
    }

    #[test]
    fn corner_speed_never_nan() {
        let rules = [
            Cornering::JunctionDeviation { deviation_mm: 0.0 },
            Cornering::JunctionDeviation {
                deviation_mm: 1000.0,
            },
            Cornering::AxiDraw { cornering: 0.0 },
            Cornering::AxiDraw { cornering: 1e6 },
        ];
        for rule in rules {
            for &(d, c) in &[
                (1.0, 0.0),
                (-1.0, 0.0),
                (1.0 + 1e-15, 1e-9),
                (-1.0 - 1e-15, -1e-9),
                (0.0, -1.0),
                (f64::NAN, 0.0),
            ] {
                let v = rule.corner_speed_sqr(d, c, 1e7);
                assert!(v >= 0.0, "{rule:?} {d} {c} → {v}");
            }
        }
    }

    #[test]
    fn axidraw_defaults() {
        let c = PlannerConfig::axidraw(&AxiDrawSettings::default()).unwrap();
        let down = c.limits(Pen::Down);
        let up = c.limits(Pen::Up);
        assert!((down.max_speed_mm_s - 50.2).abs() < 0.05);
        assert!((up.max_speed_mm_s - 150.6).abs() < 0.05);
        assert!((down.accel_mm_s2 - 30.0 * IN).abs() < 1e-9);
        assert!((up.accel_mm_s2 - 45.0 * IN).abs() < 1e-9);
        assert_eq!(down.cornering, Cornering::AxiDraw { cornering: 10.0 });
        assert!((down.cornering.deviation_mm() - 0.0508).abs() < 1e-12);
        assert_eq!(c.motors().max_step_rate_hz, Some(25_000.0));
    }

    fn limits(v: f64, a: f64) -> MotionLimits {
        MotionLimits {
            max_speed_mm_s: v,
            accel_mm_s2: a,
            cornering: Cornering::JunctionDeviation { deviation_mm: 0.1 },
        }
    }

    #[test]
    fn per_motor_limits_depend_on_direction() {
        let k = Kinematics::new(Resolution::High);
        let c = PlannerConfig::new(
            limits(1000.0, 1000.0),
            limits(1000.0, 1000.0),
            MotorLimits {
                kinematics: k,
                max_step_rate_hz: Some(25_000.0),
                max_step_accel_hz_s: Some(80_000.0),
            },
        )
        .unwrap();
        let (v_x, a_x) = c.limits_along(Pen::Down, 3.0, 0.0);
        let (v_d, a_d) = c.limits_along(Pen::Down, 1.0, 1.0);
        assert!((v_x - 312.5).abs() < 1e-9);
        assert!((v_d - 312.5 / 2f64.sqrt()).abs() < 1e-9);
        assert!((a_x - 1000.0).abs() < 1e-9);
        assert!((a_d - 1000.0 / 2f64.sqrt()).abs() < 1e-9);
        // Matches the kinematics' own per-direction limit.
        let s = core::f64::consts::FRAC_1_SQRT_2;
        assert!((v_d - k.max_speed_along(s, s, 25_000.0)).abs() < 1e-9);
        // The XY limit wins when it is lower.
        let (v, _) = c.limits_along(Pen::Up, 0.0, -2.0);
        assert!((v - 312.5).abs() < 1e-9);
    }

    #[test]
    fn rejects_bad_limits() {
        let k = Kinematics::new(Resolution::High);
        let good = limits(50.0, 200.0);
        let m = MotorLimits::none(k);
        assert!(PlannerConfig::new(good, good, m).is_ok());
        for bad in [
            limits(f64::NAN, 200.0),
            limits(0.0, 200.0),
            limits(-1.0, 200.0),
            limits(1e9, 200.0),
            limits(f64::INFINITY, 200.0),
            limits(50.0, 0.0),
            limits(50.0, f64::NAN),
            limits(50.0, 1e12),
            limits(1e-9, 200.0),
            limits(50.0, 8.3e-317),
            MotionLimits {
                cornering: Cornering::JunctionDeviation { deviation_mm: -1.0 },
                ..good
            },
            MotionLimits {
                cornering: Cornering::AxiDraw {
                    cornering: f64::NAN,
                },
                ..good
            },
        ] {
            let e = PlannerConfig::new(good, bad, m).unwrap_err();
            assert!(matches!(e, PlanError::InvalidLimit { .. }));
            let text = std::format!("{e}");
            assert!(text.contains("pen_down"), "{text}");
            assert!(PlannerConfig::new(bad, good, m).is_err());
        }
        for bad_rate in [
            Some(0.0),
            Some(f64::NAN),
            Some(1e12),
            Some(-5.0),
            Some(1e-300),
        ] {
            let motors = MotorLimits {
                max_step_rate_hz: bad_rate,
                ..m
            };
            assert!(PlannerConfig::new(good, good, motors).is_err());
            let motors = MotorLimits {
                max_step_accel_hz_s: bad_rate,
                ..m
            };
            assert!(PlannerConfig::new(good, good, motors).is_err());
        }
        let settings = AxiDrawSettings {
            cornering: f64::NAN,
            ..AxiDrawSettings::default()
        };
        assert!(PlannerConfig::axidraw(&settings).is_err());
    }
}
