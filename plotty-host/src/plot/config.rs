//! What a plot needs from the settings: the machine (AxiDraw settings: model, resolution, pen),
//! the motion limits (the `motion` section, or derived from `device`), the firmware choice, and
//! how they become planner limits, pen timing, import and optimisation options.

use plotty_motion::kinematics::{AxiDrawSettings, Kinematics};
use plotty_motion::plan::{Cornering, MotionLimits, MotorLimits, PlanError, PlannerConfig};
use plotty_motion::time::Duration;

use crate::import::ImportOptions;
use crate::optimize::{OptimizeOptions, PenUpLimits};
use crate::settings::{
    self, CornerRule, FirmwareChoice, LimitModel, Reordering, RunOptions, Settings,
    run::OptionsError,
};

use super::program::ProgramLayer;

/// Planner window (blocks of lookahead). Far more than the braking distance from top speed
/// needs on any drawing with segments of 0.05 mm or longer, so plans are time-optimal; the
/// host has the memory (about 70 bytes a slot).
pub const DEFAULT_WINDOW: usize = 1024;

/// Everything about the machine and its limits that a plot uses.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct PlotConfig {
    /// The AxiDraw settings of the `device` section (model, resolution, pen, speeds).
    pub axidraw: AxiDrawSettings,
    /// The limits a plan respects (the `motion` section, or derived from `device`).
    pub motion: settings::MotionLimits,
    /// Firmware behaviour.
    pub firmware: FirmwareChoice,
    /// Planner window in blocks.
    pub window: usize,
    /// How much the optimiser may reorder (`--reordering`, `--keep-order`).
    pub reordering: Reordering,
    /// Start each closed path at a random vertex chosen with this seed (`--random-start`).
    pub random_start: Option<u64>,
    /// Turn a portrait page a quarter turn to fit the landscape travel (`--auto-rotate`).
    pub auto_rotate: bool,
    /// How large a drawing may be (`limits`).
    pub limits: settings::LimitSettings,
}

impl PlotConfig {
    /// The plot configuration of `settings`.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            axidraw: settings.device.axidraw,
            motion: settings.motion,
            firmware: settings.device.firmware,
            window: DEFAULT_WINDOW,
            reordering: Reordering::default(),
            random_start: None,
            auto_rotate: false,
            limits: settings.limits,
        }
    }

    /// The plot configuration of `settings` with the per-run options `run` (axicli's
    /// command-line options) applied.
    ///
    /// # Errors
    /// An option out of the range the config file allows.
    pub fn for_run(settings: &Settings, run: &RunOptions) -> Result<Self, OptionsError> {
        let settings = settings.with_run(run)?;
        Ok(Self {
            reordering: run.reordering(),
            random_start: run.random_start_seed(),
            auto_rotate: run.auto_rotate.unwrap_or(false),
            ..Self::from_settings(&settings)
        })
    }

    /// The mapping between millimetres and motor steps.
    pub fn kinematics(&self) -> Kinematics {
        Kinematics::new(self.axidraw.resolution)
    }

    /// Pen-down speed for a layer: its `+S` percentage read as the AxiDraw `speed_pendown`
    /// setting, else the configured limit.
    pub fn pen_down_speed_mm_s(&self, layer: Option<&ProgramLayer>) -> f64 {
        match layer.and_then(|l| l.speed_pct) {
            Some(pct) => AxiDrawSettings {
                speed_pendown: f64::from(pct),
                ..self.axidraw
            }
            .pen_down_speed_mm_s(),
            None => self.motion.pen_down_speed_mm_s,
        }
    }

    /// The planner limits for `layer` (its `+S` speed), or for pen-up moves only (`None`).
    ///
    /// # Errors
    /// A limit the planner refuses (the settings' validation keeps them in range, so only
    /// extreme values get here).
    pub fn planner(&self, layer: Option<&ProgramLayer>) -> Result<PlannerConfig, PlanError> {
        let m = &self.motion;
        let cornering = match m.corner_rule {
            CornerRule::AxiDraw { deviation_mm } => Cornering::AxiDraw {
                // δ = cornering / 5000 inch.
                cornering: deviation_mm / plotty_motion::kinematics::MM_PER_INCH * 5000.0,
            },
            CornerRule::JunctionDeviation { deviation_mm } => {
                Cornering::JunctionDeviation { deviation_mm }
            }
            CornerRule::MotorJump { max_jump_hz } => Cornering::MotorJump { max_jump_hz },
        };
        let kinematics = self.kinematics();
        let motors = if m.per_motor_limits {
            MotorLimits::ebb(kinematics)
        } else {
            MotorLimits::none(kinematics)
        };
        let pen_up = MotionLimits {
            max_speed_mm_s: m.pen_up_speed_mm_s,
            accel_mm_s2: m.pen_up_accel_mm_s2,
            cornering,
        };
        let pen_down = MotionLimits {
            max_speed_mm_s: self.pen_down_speed_mm_s(layer),
            accel_mm_s2: m.pen_down_accel_mm_s2,
            cornering,
        };
        match m.limits {
            LimitModel::Xy => PlannerConfig::new(pen_up, pen_down, motors),
            LimitModel::PerMotor => PlannerConfig::per_motor(pen_up, pen_down, motors),
        }
    }

    /// Time the pen is given to rise (`SP,1,<ms>`), whole milliseconds.
    pub fn pen_raise_ms(&self) -> u16 {
        seconds_to_ms(self.motion.pen_lift_s)
    }

    /// Time the pen is given to drop (`SP,0,<ms>`), whole milliseconds.
    pub fn pen_lower_ms(&self) -> u16 {
        seconds_to_ms(self.motion.pen_drop_s)
    }

    /// [`pen_raise_ms`](Self::pen_raise_ms) as a duration.
    pub fn pen_raise(&self) -> Duration {
        Duration::from_millis(u64::from(self.pen_raise_ms()))
    }

    /// [`pen_lower_ms`](Self::pen_lower_ms) as a duration.
    pub fn pen_lower(&self) -> Duration {
        Duration::from_millis(u64::from(self.pen_lower_ms()))
    }

    /// Import options: the model's travel, default tolerance, the configured limits.
    pub fn import_options(&self) -> ImportOptions {
        ImportOptions {
            model: self.axidraw.model,
            max_file_bytes: self.limits.max_file_bytes,
            max_segments: self.limits.max_segments,
            auto_rotate: self.auto_rotate,
            ..ImportOptions::default()
        }
    }

    /// Optimisation options: everything, the file order with adjoining paths connected, or the
    /// file order alone, per `reordering`; pen-up travel costed with these limits.
    pub fn optimize_options(&self) -> OptimizeOptions {
        let limits = PenUpLimits {
            accel_mm_s2: self.motion.pen_up_accel_mm_s2,
            speed_mm_s: self.motion.pen_up_speed_mm_s,
            lift_s: f64::from(self.pen_raise_ms()) / 1000.0,
            drop_s: f64::from(self.pen_lower_ms()) / 1000.0,
        };
        let base = match self.reordering {
            Reordering::FileOrder => OptimizeOptions::keep_order(),
            Reordering::Adjoining => OptimizeOptions {
                reorder: false,
                ..OptimizeOptions::default()
            },
            Reordering::Full => OptimizeOptions::default(),
        };
        OptimizeOptions { limits, ..base }
    }
}

/// Seconds as whole milliseconds for a servo wait (0 to 65.535 s).
fn seconds_to_ms(s: f64) -> u16 {
    let ms = (s * 1000.0).round();
    if ms.is_nan() || ms <= 0.0 {
        0
    } else if ms >= f64::from(u16::MAX) {
        u16::MAX
    } else {
        ms as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::MotionLimits as Limits;

    fn defaults() -> PlotConfig {
        let dir = tempfile::tempdir().unwrap();
        PlotConfig::from_settings(&Settings::defaults_for(dir.path()))
    }

    #[test]
    fn defaults_are_the_axidraw_limits() {
        let c = defaults();
        assert_eq!(c.pen_raise_ms(), 130);
        assert_eq!(c.pen_lower_ms(), 146);
        let p = c.planner(None).unwrap();
        let ad = PlannerConfig::axidraw(&AxiDrawSettings::default()).unwrap();
        assert!((p.limits(plotty_motion::plan::Pen::Down).max_speed_mm_s - 50.2).abs() < 0.05);
        let (a, b) = (
            p.limits(plotty_motion::plan::Pen::Up).cornering,
            ad.limits(plotty_motion::plan::Pen::Up).cornering,
        );
        assert!((a.deviation_mm() - b.deviation_mm()).abs() < 1e-12);
        assert_eq!(p.motors(), ad.motors());
    }

    #[test]
    fn per_motor_limits_plan_in_motor_space() {
        let mut c = defaults();
        c.motion.limits = crate::settings::LimitModel::PerMotor;
        c.motion.corner_rule = CornerRule::MotorJump {
            max_jump_hz: 3000.0,
        };
        let p = c.planner(None).unwrap();
        assert!(p.is_per_motor());
        let want = PlannerConfig::axidraw_per_motor(&AxiDrawSettings::default(), 3000.0).unwrap();
        assert_eq!(p, want);
        // Along X √2 times the XY speed, on a diagonal the same.
        let pen = plotty_motion::plan::Pen::Down;
        let v = p.limits(pen).max_speed_mm_s;
        assert!((p.limits_along(pen, 1.0, 0.0).0 - 2f64.sqrt() * v).abs() < 1e-9);
        assert!((p.limits_along(pen, 1.0, 1.0).0 - v).abs() < 1e-9);
    }

    #[test]
    fn comparison_limits_and_layer_speed() {
        let mut c = defaults();
        c.motion = Limits::COMPARISON;
        assert_eq!((c.pen_raise_ms(), c.pen_lower_ms()), (120, 120));
        let p = c.planner(None).unwrap();
        assert_eq!(p.motors().max_step_rate_hz, None);
        assert_eq!(
            p.limits(plotty_motion::plan::Pen::Down).cornering,
            Cornering::JunctionDeviation {
                deviation_mm: 0.127
            }
        );
        let layer = ProgramLayer {
            name: "+S50".into(),
            index: 0,
            number: None,
            color: crate::import::Color::BLACK,
            pause_before: false,
            speed_pct: Some(50),
            height_pct: None,
            delay_after: Duration::ZERO,
            strokes: 0..1,
            drawn_mm: 0.0,
        };
        // +S50 is twice the default 25 % pen-down speed.
        assert!((c.pen_down_speed_mm_s(Some(&layer)) - 100.4).abs() < 0.1);
        assert_eq!(seconds_to_ms(f64::NAN), 0);
        assert_eq!(seconds_to_ms(100.0), u16::MAX);
    }
}
