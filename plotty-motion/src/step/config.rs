//! What the step generator targets: the firmware line, the move format, the kinematics, and the
//! limits that follow from them (minimum move durations of reference §6.4).

use core::fmt;

use crate::kinematics::Kinematics;
use crate::time::TICKS_PER_MS;

/// Firmware families whose step generation differs (reference §2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FirmwareLine {
    /// 3.0.x: SM rate in 32-bit float, signed LM rates, `L3`/`T3`.
    V3,
    /// 2.7.0 to 2.8.x: integer SM rate, LM without negative rates.
    V2,
    /// Before 2.7.0: SM only (LM missing or incomplete).
    V2Early,
}

impl FirmwareLine {
    /// The line of firmware version `major.minor.patch`, or `None` before 1.0.
    pub const fn from_version(major: u32, minor: u32, _patch: u32) -> Option<Self> {
        match (major, minor) {
            (0, _) => None,
            (3.., _) => Some(Self::V3),
            (2, 7..) => Some(Self::V2),
            _ => Some(Self::V2Early),
        }
    }

    /// The best move format this line runs: LM from 2.7.0 on, SM before.
    pub const fn preferred_format(self) -> MoveFormat {
        match self {
            Self::V3 | Self::V2 => MoveFormat::Lm,
            Self::V2Early => MoveFormat::Sm,
        }
    }

    /// Whether this line runs `format`.
    pub const fn supports(self, format: MoveFormat) -> bool {
        match format {
            MoveFormat::Sm => true,
            MoveFormat::Lm => !matches!(self, Self::V2Early),
        }
    }

    /// Shortest move (ticks) this line sustains back to back in `format` without gaps
    /// (reference §6.4, upper ends of the documented ranges).
    pub const fn min_move_ticks(self, format: MoveFormat) -> u32 {
        let ms = match (self, format) {
            (Self::V3, MoveFormat::Sm) => 2,
            (Self::V3, MoveFormat::Lm) => 4,
            (Self::V2, MoveFormat::Sm) => 4,
            (Self::V2, MoveFormat::Lm) => 5,
            (Self::V2Early, _) => 7,
        };
        ms * TICKS_PER_MS
    }

    /// Lowest LM rate register allowed while an axis steps: 3.x may touch 0; on 2.x a rate must
    /// never reach 0 or below (a negative rate is rolled over into a huge one, reference §2.6).
    pub(crate) const fn lm_min_rate(self) -> i64 {
        match self {
            Self::V3 => 0,
            Self::V2 | Self::V2Early => 1,
        }
    }

    /// Whether LM moves count the accumulator down when going in reverse (3.x only).
    pub(crate) const fn lm_mirrors_reverse(self) -> bool {
        matches!(self, Self::V3)
    }
}

/// The firmware command the generator emits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MoveFormat {
    /// `LM`: one constant-acceleration move per trapezoid phase (firmware ≥ 2.7.0).
    Lm,
    /// `SM`: constant-rate time slices, as the AxiDraw software sends (every firmware).
    Sm,
}

/// The configuration was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// The firmware line does not run this move format (LM needs firmware 2.7.0 or later).
    Unsupported {
        /// The firmware line.
        firmware: FirmwareLine,
        /// The format asked for.
        format: MoveFormat,
    },
    /// The SM slice length is outside 1..=1000 ms.
    SliceLength(u32),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsupported { firmware, format } => write!(
                f,
                "firmware {firmware:?} cannot run {format:?} moves; use SM, or update the EBB \
                 firmware to 2.7.0 or later for LM"
            ),
            Self::SliceLength(ms) => {
                write!(f, "SM slice length {ms} ms is outside 1..=1000 ms")
            }
        }
    }
}

impl core::error::Error for ConfigError {}

/// Everything the step generator needs to know about the machine.
#[derive(Clone, Copy, PartialEq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StepConfig {
    firmware: FirmwareLine,
    format: MoveFormat,
    kinematics: Kinematics,
    sm_slice_ticks: u32,
}

impl StepConfig {
    /// Default SM slice in ramps: 25 ms, as the AxiDraw software.
    pub const DEFAULT_SM_SLICE_MS: u32 = 25;

    /// A configuration for `firmware` emitting `format` moves, refused if the firmware cannot run
    /// that format.
    pub const fn new(
        firmware: FirmwareLine,
        format: MoveFormat,
        kinematics: Kinematics,
    ) -> Result<Self, ConfigError> {
        if !firmware.supports(format) {
            return Err(ConfigError::Unsupported { firmware, format });
        }
        Ok(Self {
            firmware,
            format,
            kinematics,
            sm_slice_ticks: Self::DEFAULT_SM_SLICE_MS * TICKS_PER_MS,
        })
    }

    /// The best format for `firmware` (LM where available).
    pub const fn preferred(firmware: FirmwareLine, kinematics: Kinematics) -> Self {
        Self {
            firmware,
            format: firmware.preferred_format(),
            kinematics,
            sm_slice_ticks: Self::DEFAULT_SM_SLICE_MS * TICKS_PER_MS,
        }
    }

    /// The same configuration with SM ramps sliced every `ms` milliseconds (1..=1000; slices
    /// never go below the firmware's minimum move duration).
    pub const fn with_sm_slice_ms(self, ms: u32) -> Result<Self, ConfigError> {
        if ms == 0 || ms > 1000 {
            return Err(ConfigError::SliceLength(ms));
        }
        Ok(Self {
            sm_slice_ticks: ms * TICKS_PER_MS,
            ..self
        })
    }

    /// Firmware line.
    pub const fn firmware(&self) -> FirmwareLine {
        self.firmware
    }

    /// Move format.
    pub const fn format(&self) -> MoveFormat {
        self.format
    }

    /// Kinematics (steps per millimetre, motor mapping).
    pub const fn kinematics(&self) -> Kinematics {
        self.kinematics
    }

    /// SM slice length in ramps, in ticks.
    pub const fn sm_slice_ticks(&self) -> u32 {
        self.sm_slice_ticks
    }

    /// Shortest move emitted, in ticks.
    pub const fn min_move_ticks(&self) -> u32 {
        self.firmware.min_move_ticks(self.format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinematics::Resolution;

    #[test]
    fn versions_map_to_lines() {
        assert_eq!(FirmwareLine::from_version(3, 0, 3), Some(FirmwareLine::V3));
        assert_eq!(FirmwareLine::from_version(2, 8, 1), Some(FirmwareLine::V2));
        assert_eq!(FirmwareLine::from_version(2, 7, 0), Some(FirmwareLine::V2));
        assert_eq!(
            FirmwareLine::from_version(2, 6, 5),
            Some(FirmwareLine::V2Early)
        );
        assert_eq!(FirmwareLine::from_version(0, 9, 0), None);
    }

    #[test]
    fn lm_needs_2_7() {
        let k = Kinematics::new(Resolution::High);
        assert!(StepConfig::new(FirmwareLine::V2Early, MoveFormat::Lm, k).is_err());
        assert!(StepConfig::new(FirmwareLine::V2Early, MoveFormat::Sm, k).is_ok());
        let c = StepConfig::preferred(FirmwareLine::V2, k);
        assert_eq!(c.format(), MoveFormat::Lm);
        assert_eq!(c.min_move_ticks(), 125);
        assert_eq!(
            StepConfig::preferred(FirmwareLine::V3, k).min_move_ticks(),
            100
        );
        assert!(c.with_sm_slice_ms(0).is_err());
        assert_eq!(c.with_sm_slice_ms(10).unwrap().sm_slice_ticks(), 250);
    }
}
