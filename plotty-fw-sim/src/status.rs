//! A snapshot of the simulated board's state ([`Status`], from
//! [`Firmware::status`](crate::Firmware::status)): what the queries would report, plus
//! internals a test bench wants (accumulators, servo channel, parser blocking).

use crate::observer::CommandKind;

/// The reply syntax the board uses (3.x: `CU,10`; 2.x is always legacy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyMode {
    /// Boot default: `OK\r\n`, mixed `\r\n` / `\n\r` line endings.
    Legacy,
    /// `CU,10,1` (3.x): every reply starts with the command name and ends with `\n`.
    Future,
}

/// A snapshot of the board's state. Fields may be added in later versions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// Simulated time since power-on, in 25 kHz ticks.
    pub tick: u64,
    /// The global step counters (what `QS` reports).
    pub steps: [i32; 2],
    /// Physical motor position in steps since power-on: like `steps`, but never zeroed by
    /// `CS`, `EM` or a reset (what [`Observer::on_step`](crate::Observer::on_step) reports).
    pub motor_position: [i32; 2],
    /// Pen state as executed (what `QP` reports, `QG` bit 4).
    pub pen_up: bool,
    /// Stepper driver enable pins (active low on the board; `true` = enabled).
    pub motors_enabled: [bool; 2],
    /// Microstep resolution selected by the MS pins: 16, 8, 4, 2 or 1.
    pub microsteps: u8,
    /// Commands waiting in the motion FIFO (not counting the one executing).
    pub fifo_len: usize,
    /// Current FIFO depth (`CU,4`; 1 at boot; always 1 on 2.x).
    pub fifo_depth: usize,
    /// `QG` bit 3: a command executing, a delay counting, or the FIFO non-empty.
    pub executing: bool,
    /// The command the interrupt is executing now, if any.
    pub current: Option<CommandKind>,
    /// The parser is waiting (for a FIFO slot, or for idle before `HM`/`CU,4`): the board is
    /// not servicing USB.
    pub blocked: bool,
    /// RC servo power pin (what `QR` reports).
    pub servo_power: bool,
    /// The pen servo channel's current pulse width in 1/12 µs units (0 = channel off).
    pub pen_servo_position: u16,
    /// The pen servo channel's target pulse width (0 = channel off).
    pub pen_servo_target: u16,
    /// The rate registers of the current (or last) motion command, as the interrupt left them
    /// (for LM/LT: after the last acceleration step).
    pub rates: [i32; 2],
    /// The two 32-bit step accumulators (what 3.x `QU,200` reports).
    pub accumulators: [u32; 2],
    /// The reply syntax in force.
    pub reply_mode: ReplyMode,
    /// `CU,1`: acknowledgements on.
    pub ack: bool,
    /// `CU,2`: parameter limit checks on.
    pub limit_checks: bool,
    /// `CU,251,1` (3.x): the Clear parameter of LM/LT/L3/T3 preloads the accumulator.
    pub test_mode: bool,
    /// The PRG/alt-pause latch (`QB`, `QG` bit 5) is set.
    pub button_latched: bool,
    /// The raw ADC readings `QC` reports: REF_RA0 (current set point) and V+.
    pub analog: [u16; 2],
    /// `CU,54,1` (3.x): every command must carry a checksum.
    pub checksums: bool,
}
