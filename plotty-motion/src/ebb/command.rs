//! [`Command`]: every host command of reference §1.4 as a typed value.
//!
//! The motion commands carry their parameters in small structs ([`StepperMove`],
//! [`LowLevelMove`], …) so the step generator can build them without going through text.

/// Which axes' step accumulators a motion command clears when it starts (the `Clear` parameter).
pub type ClearMask = u8;

/// `SM,Duration,Steps1,Steps2[,Clear]`: constant-rate move of both motors.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StepperMove {
    /// Duration in milliseconds (≥ 1).
    pub duration_ms: u32,
    /// Signed steps of motor 1 and motor 2.
    pub steps: [i32; 2],
    /// Accumulator clear bits (0..=3), sent only when `Some`.
    pub clear: Option<ClearMask>,
}

/// `LM,Rate1,Steps1,Accel1,Rate2,Steps2,Accel2[,Clear]`: constant-acceleration move.
///
/// Rates and accelerations are in the firmware's units: `Rate = 2^31 × steps_per_second / 25000`,
/// `Accel` is added to `Rate` every 40 µs tick (reference §2.5).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LowLevelMove {
    /// Initial rate register per motor.
    pub rate: [i32; 2],
    /// Signed step count per motor.
    pub steps: [i32; 2],
    /// Per-tick rate increment per motor.
    pub accel: [i32; 2],
    /// Accumulator clear bits, sent only when `Some`.
    pub clear: Option<ClearMask>,
}

/// `L3,Rate1,Steps1,Accel1,Jerk1,Rate2,Steps2,Accel2,Jerk2[,Clear]`: LM plus jerk (3.x only).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct JerkMove {
    /// Initial rate register per motor.
    pub rate: [i32; 2],
    /// Signed step count per motor.
    pub steps: [i32; 2],
    /// Initial acceleration per motor.
    pub accel: [i32; 2],
    /// Per-tick acceleration increment per motor.
    pub jerk: [i32; 2],
    /// Accumulator clear bits, sent only when `Some`.
    pub clear: Option<ClearMask>,
}
