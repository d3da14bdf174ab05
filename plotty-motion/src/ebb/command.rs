//! [`Command`]: every host command of reference §1.4 as a typed value.
//!
//! The motion commands carry their parameters in small structs ([`StepperMove`],
//! [`LowLevelMove`], …) so the step generator can build them without going through text.
//! Encoding lives in `encode.rs`, validation in `validate.rs`; this file says what each command
//! is, how it travels (FIFO or immediate) and which reply it gets.

use heapless::String;

use super::limits::MAX_NICKNAME_LEN;
use super::reply::ReplyKind;
use super::version::FirmwareVersion;

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

/// `LT,Intervals,Rate1,Accel1,Rate2,Accel2[,Clear]`: constant-acceleration move that runs for a
/// number of ticks regardless of steps (reference §1.4). The sign of a rate gives the initial
/// direction.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TimedMove {
    /// Number of 40 µs ticks to run (≥ 1).
    pub intervals: u32,
    /// Initial rate register per motor.
    pub rate: [i32; 2],
    /// Per-tick rate increment per motor.
    pub accel: [i32; 2],
    /// Accumulator clear bits, sent only when `Some`.
    pub clear: Option<ClearMask>,
}

/// `T3,Intervals,Rate1,Accel1,Jerk1,Rate2,Accel2,Jerk2[,Clear]`: LT plus jerk (3.x only).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TimedJerkMove {
    /// Number of 40 µs ticks to run (≥ 1).
    pub intervals: u32,
    /// Initial rate register per motor.
    pub rate: [i32; 2],
    /// Initial acceleration per motor.
    pub accel: [i32; 2],
    /// Per-tick acceleration increment per motor.
    pub jerk: [i32; 2],
    /// Accumulator clear bits, sent only when `Some`.
    pub clear: Option<ClearMask>,
}

/// `TD,Intervals,Rate1A,Rate1B,Accel1,Jerk1,Rate2A,Rate2B,Accel2,Jerk2[,Clear]` (3.0.1+): two
/// T3 moves in one command, `(Intervals, RateA, 0, +Jerk, Clear)` then
/// `(Intervals, RateB, Accel, −Jerk)`; takes two FIFO slots (reference §1.4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DoubleTimedMove {
    /// Ticks of each half (≥ 1).
    pub intervals: u32,
    /// Initial rate of the first half, per motor.
    pub rate_a: [i32; 2],
    /// Initial rate of the second half, per motor.
    pub rate_b: [i32; 2],
    /// Acceleration of the second half, per motor.
    pub accel: [i32; 2],
    /// Jerk (added in the first half, subtracted in the second), per motor.
    pub jerk: [i32; 2],
    /// Accumulator clear bits for the first half, sent only when `Some`.
    pub clear: Option<ClearMask>,
}

/// `HM,StepRate[,Pos1,Pos2]`: straight move to an absolute step position (default 0,0) with the
/// faster axis at `step_rate` (reference §1.4, §2.4). The firmware's parser blocks until the
/// FIFO is empty and the current move is done before it computes the distance.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HomeMove {
    /// Steps per second of the axis with the longer distance (1..=25000).
    pub step_rate: u32,
    /// Target global step position of motor 1 and 2 (2.7.0+); `None` homes to (0, 0).
    pub position: Option<[i32; 2]>,
}

/// `EM,Enable1,Enable2`: motor driver enables and microstep mode (reference §1.4).
///
/// `enable1`: 0 disables motor 1; 1..=5 enables it and sets the global microstep mode (1 = 1/16,
/// 2 = 1/8, 3 = 1/4, 4 = 1/2, 5 = full step); other values enable it without changing the mode.
/// `enable2`: 0 disables motor 2, anything else enables it. Always encoded with both parameters
/// (with one, 2.8.0+ and 3.0.3 silently do nothing and do not reply).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EnableMotors {
    /// Motor 1 enable and microstep mode.
    pub enable1: u8,
    /// Motor 2 enable.
    pub enable2: u8,
}

/// What `SP,Value` does with the pen servo (reference §3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PenAction {
    /// `0`: queue a move to the pen-down position (`SC,5`).
    Down,
    /// `1`: queue a move to the pen-up position (`SC,4`).
    Up,
    /// `2` (3.0.1+): start a move to the pen-up position now, not queued.
    UpNow,
    /// `3` (3.0.1+): like `UpNow`, and also make every queued pen move a pen-up move.
    UpNowAndQueued,
}

/// `SP,Value[,Duration[,PortB_Pin]]`: pen servo up or down (reference §3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetPen {
    /// Which way to move the pen.
    pub action: PenAction,
    /// Delay in ms that the FIFO holds after the servo move *starts*; sent only when `Some`.
    pub duration_ms: Option<u16>,
    /// PortB pin 0..=7 carrying the servo signal (RB1 by default); needs `duration_ms`.
    pub pin: Option<u8>,
}

/// `S2,Position,RPn[,Rate[,Delay]]`: general RC servo output (2.2.0+, reference §3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Servo2 {
    /// Pulse width in 83.33 ns units; 0 turns the channel off immediately.
    pub position: u16,
    /// Output `RPn` number 0..=24 (RB1 is 4).
    pub rpn: u8,
    /// Slew rate in 83.33 ns per 24 ms; sent only when `Some`.
    pub rate: Option<u16>,
    /// Delay in ms the FIFO holds after the move starts; needs `rate`.
    pub delay_ms: Option<u16>,
}

/// `CU,Parameter,Value`: a system setting (reference §1.4). The firmware takes `Parameter` as an
/// unsigned byte and `Value` as a signed 16-bit integer; the associated constants name the
/// parameters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Configure {
    /// Which setting.
    pub parameter: u8,
    /// Its new value.
    pub value: i16,
}

/// An I/O port of the PIC for `PI` (reference §5.4: `PI,E,0` reads the motor enable pin).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Port {
    /// PORTA.
    A,
    /// PORTB.
    B,
    /// PORTC.
    C,
    /// PORTD.
    D,
    /// PORTE.
    E,
}

/// `SE,State[,Power[,Queue]]`: engraver/laser output on RB3.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetEngraver {
    /// On or off.
    pub on: bool,
    /// PWM power 0..=1023; sent only when `Some`.
    pub power: Option<u16>,
    /// Put the change in the motion FIFO (2.4.1+); needs `power`. `None` sends nothing.
    pub queued: Option<bool>,
}

/// An EBB nickname (`ST`/`QT`): at most 16 bytes.
pub type Nickname = String<MAX_NICKNAME_LEN>;

/// Every host command of reference §1.4 that plotty sends, as a typed value.
///
/// Build one, check it against the firmware with [`Command::validate`] (encoding does that too)
/// and write it with [`Command::encode_with`]. The variant docs give the wire form.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Command {
    /// `v`: the lowercase version request AxiDraw's software sends first (§7b); answered like `V`.
    VersionProbe,
    /// `V`: firmware version string.
    Version,
    /// `R`: software re-initialisation (legacy replies, FIFO depth 1, pen up queued).
    Reset,
    /// `CS`: zero the global step counters and accumulators now.
    ClearSteps,
    /// `EM,E1,E2`: driver enables and microstep mode (queued since 2.8.0).
    EnableMotors(EnableMotors),
    /// `ES` or `ES,1`: abort the running move and flush the FIFO; `ES,1` (3.x) also disables both
    /// drivers.
    EmergencyStop {
        /// Send `ES,1` (3.x only).
        disable_motors: bool,
    },
    /// `SM,Duration,Steps1,Steps2[,Clear]`.
    StepperMove(StepperMove),
    /// `XM,Duration,A,B[,Clear]`: `steps` are the mixed-axis `A` and `B`; the firmware moves motor 1
    /// by `A+B` and motor 2 by `A−B` (2.3.0+).
    MixedMove(StepperMove),
    /// `HM,StepRate[,Pos1,Pos2]` (2.6.2+).
    HomeMove(HomeMove),
    /// `LM,…` (2.7.0+).
    LowLevelMove(LowLevelMove),
    /// `LT,…` (2.7.0+).
    LowLevelTimed(TimedMove),
    /// `L3,…` (3.0.0+).
    JerkMove(JerkMove),
    /// `T3,…` (3.0.0+).
    TimedJerkMove(TimedJerkMove),
    /// `TD,…` (3.0.1+).
    DoubleTimedMove(DoubleTimedMove),
    /// `SP,Value[,Duration[,Pin]]`.
    SetPen(SetPen),
    /// `TP[,Duration]`: toggle the pen (queued, although the docs say immediate).
    TogglePen {
        /// Delay in ms after the move starts; sent only when `Some`.
        duration_ms: Option<u16>,
    },
    /// `SC,Parameter,Value`: servo/solenoid configuration (§3: 4 = pen-up position, 5 = pen-down
    /// position, 11/12 = up/down rates, 8 = slots, …).
    ServoConfig {
        /// Which setting.
        parameter: u8,
        /// Its value.
        value: u16,
    },
    /// `SR,Timeout[,State]`: servo power auto-off timeout in ms and optional power state (2.6.0+).
    ServoTimeout {
        /// Timeout in ms (0 = never).
        timeout_ms: u32,
        /// Switch servo power on or off now; sent only when `Some`.
        power: Option<bool>,
    },
    /// `S2,Position,RPn[,Rate[,Delay]]` (2.2.0+).
    Servo2(Servo2),
    /// `QB`: was the PRG button pressed since the last `QB`/`QG`?
    QueryButton,
    /// `QG`: general status byte (2.6.2+).
    QueryGeneral,
    /// `QE`: motor enables and microstep modes (2.8.0+).
    QueryEnables,
    /// `QM`: motor status (deprecated in 3.x; 2.2.6+).
    QueryMotors,
    /// `QP`: pen state.
    QueryPen,
    /// `QS`: global step counters (2.4.3+).
    QuerySteps,
    /// `QU,n`: utility query (3.x).
    QueryUtility(u8),
    /// `QL[,Index]`: the layer byte (2.x) or byte variable `Index` (3.x).
    QueryLayer {
        /// Variable index 0..=31 (3.x only); sent only when `Some`.
        index: Option<u8>,
    },
    /// `SL,Value[,Index]`: set the layer byte / byte variable.
    SetLayer {
        /// The value.
        value: u8,
        /// Variable index 0..=31 (3.x only); sent only when `Some`.
        index: Option<u8>,
    },
    /// `QC`: current-set and supply voltage ADC readings.
    QueryCurrent,
    /// `CU,Parameter,Value`.
    Configure(Configure),
    /// `PI,Port,Pin`: read one input pin.
    PinInput {
        /// The port letter.
        port: Port,
        /// Pin 0..=7.
        pin: u8,
    },
    /// `QR`: servo power state (2.6.0+).
    QueryServoPower,
    /// `QT`: the nickname (2.5.4+).
    QueryNickname,
    /// `ST,Name`: store a nickname in flash (2.5.4+).
    SetNickname(Nickname),
    /// `QN`: node counter.
    QueryNodeCount,
    /// `SN,Value`: set the node counter.
    SetNodeCount(u32),
    /// `NI`: increment the node counter.
    NodeIncrement,
    /// `ND`: decrement the node counter.
    NodeDecrement,
    /// `SE,State[,Power[,Queue]]`.
    SetEngraver(SetEngraver),
}

impl PenAction {
    /// The `SP` value on the wire.
    pub const fn value(self) -> u8 {
        match self {
            Self::Down => 0,
            Self::Up => 1,
            Self::UpNow => 2,
            Self::UpNowAndQueued => 3,
        }
    }

    /// Whether the action goes through the motion FIFO (0 and 1 do, 2 and 3 act at once).
    pub const fn is_queued(self) -> bool {
        matches!(self, Self::Down | Self::Up)
    }
}

impl Configure {
    /// `CU,1,0|1`: "OK" acknowledgements off/on.
    pub const ACK: u8 = 1;
    /// `CU,2,0|1`: limit checks of SM/XM/LM off/on (on at boot).
    pub const LIMIT_CHECKS: u8 = 2;
    /// `CU,3,0|1`: red LED shows "FIFO empty".
    pub const LED_FIFO_EMPTY: u8 = 3;
    /// `CU,4,1..=32`: motion FIFO depth (3.x; waits until idle).
    pub const FIFO_DEPTH: u8 = 4;
    /// `CU,10,0|1`: "future" reply syntax (3.x).
    pub const FUTURE_SYNTAX: u8 = 10;
    /// `CU,50,0|1`: motion commands enable the drivers automatically (3.x).
    pub const AUTO_ENABLE: u8 = 50;
    /// `CU,51,mask`: limit switch PortB mask (3.x).
    pub const LIMIT_SWITCH_MASK: u8 = 51;
    /// `CU,52,target`: limit switch PortB target (3.x).
    pub const LIMIT_SWITCH_TARGET: u8 = 52;
    /// `CU,53,0|1`: limit switch reply (3.x).
    pub const LIMIT_SWITCH_REPLY: u8 = 53;
    /// `CU,54,0|1`: checksums required on every command (3.x).
    pub const CHECKSUM: u8 = 54;
    /// `CU,60,n`: power-lost ADC threshold (3.x).
    pub const POWER_LOST_THRESHOLD: u8 = 60;
    /// `CU,61,s`: stepper disable timeout in seconds after the FIFO empties (3.x).
    pub const STEPPER_DISABLE_TIMEOUT: u8 = 61;

    /// `CU,4,depth`: set the 3.x motion FIFO depth.
    pub const fn fifo_depth(depth: u8) -> Self {
        // Widening a u8 into i16 cannot lose anything.
        Self {
            parameter: Self::FIFO_DEPTH,
            value: depth as i16,
        }
    }

    /// `CU,10,0|1`: switch the 3.x reply syntax.
    pub const fn future_syntax(on: bool) -> Self {
        Self {
            parameter: Self::FUTURE_SYNTAX,
            value: on as i16,
        }
    }

    /// `CU,54,0|1`: switch 3.x checksum mode.
    pub const fn checksum(on: bool) -> Self {
        Self {
            parameter: Self::CHECKSUM,
            value: on as i16,
        }
    }

    /// `CU,1,0|1`: switch acknowledgements.
    pub const fn ack(on: bool) -> Self {
        Self {
            parameter: Self::ACK,
            value: on as i16,
        }
    }
}

impl Port {
    /// The port letter on the wire.
    pub const fn letter(self) -> u8 {
        match self {
            Self::A => b'A',
            Self::B => b'B',
            Self::C => b'C',
            Self::D => b'D',
            Self::E => b'E',
        }
    }
}

impl Command {
    /// The command name as sent: one or two letters (`v` is the only lowercase one).
    pub const fn name(&self) -> &'static str {
        match self {
            Self::VersionProbe => "v",
            Self::Version => "V",
            Self::Reset => "R",
            Self::ClearSteps => "CS",
            Self::EnableMotors(_) => "EM",
            Self::EmergencyStop { .. } => "ES",
            Self::StepperMove(_) => "SM",
            Self::MixedMove(_) => "XM",
            Self::HomeMove(_) => "HM",
            Self::LowLevelMove(_) => "LM",
            Self::LowLevelTimed(_) => "LT",
            Self::JerkMove(_) => "L3",
            Self::TimedJerkMove(_) => "T3",
            Self::DoubleTimedMove(_) => "TD",
            Self::SetPen(_) => "SP",
            Self::TogglePen { .. } => "TP",
            Self::ServoConfig { .. } => "SC",
            Self::ServoTimeout { .. } => "SR",
            Self::Servo2(_) => "S2",
            Self::QueryButton => "QB",
            Self::QueryGeneral => "QG",
            Self::QueryEnables => "QE",
            Self::QueryMotors => "QM",
            Self::QueryPen => "QP",
            Self::QuerySteps => "QS",
            Self::QueryUtility(_) => "QU",
            Self::QueryLayer { .. } => "QL",
            Self::SetLayer { .. } => "SL",
            Self::QueryCurrent => "QC",
            Self::Configure(_) => "CU",
            Self::PinInput { .. } => "PI",
            Self::QueryServoPower => "QR",
            Self::QueryNickname => "QT",
            Self::SetNickname(_) => "ST",
            Self::QueryNodeCount => "QN",
            Self::SetNodeCount(_) => "SN",
            Self::NodeIncrement => "NI",
            Self::NodeDecrement => "ND",
            Self::SetEngraver(_) => "SE",
        }
    }

    /// Whether the command goes through the motion FIFO, i.e. its acknowledgement means
    /// "queued", not "done", and it waits for a free slot (reference §1.5, §6.1).
    ///
    /// Assumes firmware ≥ 2.8.0 for `EM` (immediate before); use [`Command::fifo_entries`] for
    /// an exact, version-aware answer.
    pub fn is_queued(&self) -> bool {
        self.fifo_entries(FirmwareVersion::LATEST) > 0
    }

    /// How many motion FIFO slots the command takes on firmware `fw`: 0 for immediate commands,
    /// 2 for `TD`, 1 for every other queued command (reference §1.5).
    pub fn fifo_entries(&self, fw: FirmwareVersion) -> u8 {
        match self {
            Self::StepperMove(_)
            | Self::MixedMove(_)
            | Self::LowLevelMove(_)
            | Self::LowLevelTimed(_)
            | Self::JerkMove(_)
            | Self::TimedJerkMove(_)
            | Self::TogglePen { .. } => 1,
            // A zero-distance HM queues nothing; the distance is only known to the firmware.
            Self::HomeMove(_) => 1,
            Self::DoubleTimedMove(_) => 2,
            Self::SetPen(sp) => u8::from(sp.action.is_queued()),
            Self::Servo2(s2) => u8::from(s2.position != 0),
            Self::EnableMotors(_) => u8::from(fw.em_is_queued()),
            Self::SetEngraver(se) => u8::from(se.queued == Some(true)),
            _ => 0,
        }
    }

    /// Whether the firmware's parser blocks until the FIFO is empty and the current move is done
    /// before it answers: `HM` (reads the step counters) and `CU,4` (changes the FIFO depth). No
    /// other command is processed meanwhile (reference §1.4, §1.5).
    pub const fn waits_for_idle(&self) -> bool {
        match self {
            Self::HomeMove(_) => true,
            Self::Configure(cu) => cu.parameter == Configure::FIFO_DEPTH,
            _ => false,
        }
    }

    /// The reply the command gets (reference §1.2); feed it to
    /// [`ReplyParser::begin`](super::ReplyParser::begin) when this command's reply is the next
    /// one due.
    pub const fn reply_kind(&self) -> ReplyKind {
        match self {
            Self::VersionProbe | Self::Version => ReplyKind::Version,
            Self::Reset => ReplyKind::Reset,
            Self::EmergencyStop { .. } => ReplyKind::EStop,
            Self::QueryButton => ReplyKind::Button,
            Self::QueryGeneral => ReplyKind::GeneralStatus,
            Self::QueryEnables => ReplyKind::Enables,
            Self::QueryMotors => ReplyKind::Motors,
            Self::QueryPen => ReplyKind::Pen,
            Self::QuerySteps => ReplyKind::Steps,
            Self::QueryUtility(_) => ReplyKind::Utility,
            Self::QueryLayer { .. } => ReplyKind::Layer,
            Self::QueryCurrent => ReplyKind::Current,
            Self::PinInput { .. } => ReplyKind::Pin,
            Self::QueryServoPower => ReplyKind::ServoPower,
            Self::QueryNickname => ReplyKind::Nickname,
            Self::QueryNodeCount => ReplyKind::NodeCount,
            Self::Configure(cu) if cu.parameter == Configure::FUTURE_SYNTAX => {
                ReplyKind::SetFutureSyntax(cu.value != 0)
            }
            Self::Configure(cu) if cu.parameter == Configure::ACK => {
                ReplyKind::SetAck(cu.value != 0)
            }
            _ => ReplyKind::Ack(self.name()),
        }
    }

    /// The first firmware version that knows this command in this form, or `None` if every
    /// version does.
    pub const fn min_version(&self) -> Option<FirmwareVersion> {
        let v = FirmwareVersion::new;
        Some(match self {
            Self::EmergencyStop {
                disable_motors: true,
            } => v(3, 0, 0),
            Self::EmergencyStop { .. } => v(2, 2, 7),
            Self::MixedMove(_) => v(2, 3, 0),
            Self::HomeMove(HomeMove {
                position: Some(_), ..
            }) => v(2, 7, 0),
            Self::HomeMove(_) | Self::QueryGeneral => v(2, 6, 2),
            Self::LowLevelMove(_) | Self::LowLevelTimed(_) => v(2, 7, 0),
            Self::JerkMove(_) | Self::TimedJerkMove(_) | Self::QueryUtility(_) => v(3, 0, 0),
            Self::DoubleTimedMove(_) => v(3, 0, 1),
            Self::SetPen(SetPen {
                action: PenAction::UpNow | PenAction::UpNowAndQueued,
                ..
            }) => v(3, 0, 1),
            Self::ServoTimeout { .. } | Self::QueryServoPower => v(2, 6, 0),
            Self::Servo2(_) => v(2, 2, 0),
            Self::QueryEnables => v(2, 8, 0),
            Self::QueryMotors => v(2, 2, 6),
            Self::QuerySteps | Self::ClearSteps => v(2, 4, 3),
            Self::QueryLayer { index: Some(_) } | Self::SetLayer { index: Some(_), .. } => {
                v(3, 0, 0)
            }
            Self::QueryCurrent => v(2, 2, 3),
            Self::QueryNickname | Self::SetNickname(_) => v(2, 5, 4),
            Self::SetEngraver(SetEngraver {
                queued: Some(_), ..
            }) => v(2, 4, 1),
            Self::Configure(cu) if cu.parameter > Configure::LED_FIFO_EMPTY => v(3, 0, 0),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_commands_match_reference_1_5() {
        let sm = Command::StepperMove(StepperMove {
            duration_ms: 10,
            steps: [0, 0],
            clear: None,
        });
        assert!(sm.is_queued());
        assert!(Command::TogglePen { duration_ms: None }.is_queued());
        let up_now = Command::SetPen(SetPen {
            action: PenAction::UpNow,
            duration_ms: None,
            pin: None,
        });
        assert!(!up_now.is_queued());
        let em = Command::EnableMotors(EnableMotors {
            enable1: 1,
            enable2: 1,
        });
        assert!(em.is_queued());
        assert_eq!(em.fifo_entries(FirmwareVersion::new(2, 7, 0)), 0);
        let td = Command::DoubleTimedMove(DoubleTimedMove {
            intervals: 1,
            rate_a: [0; 2],
            rate_b: [0; 2],
            accel: [0; 2],
            jerk: [0; 2],
            clear: None,
        });
        assert_eq!(td.fifo_entries(FirmwareVersion::LATEST), 2);
        assert!(!Command::QuerySteps.is_queued());
        assert!(!Command::ClearSteps.is_queued());
        let s2_off = Command::Servo2(Servo2 {
            position: 0,
            rpn: 4,
            rate: None,
            delay_ms: None,
        });
        assert!(!s2_off.is_queued());
        let se = |queued| {
            Command::SetEngraver(SetEngraver {
                on: true,
                power: Some(10),
                queued,
            })
        };
        assert!(se(Some(true)).is_queued());
        assert!(!se(Some(false)).is_queued());
        assert!(!se(None).is_queued());
    }

    #[test]
    fn reply_kinds() {
        assert_eq!(Command::VersionProbe.reply_kind(), ReplyKind::Version);
        assert_eq!(Command::QuerySteps.reply_kind(), ReplyKind::Steps);
        assert_eq!(Command::ClearSteps.reply_kind(), ReplyKind::Ack("CS"));
        assert_eq!(
            Command::Configure(Configure::future_syntax(true)).reply_kind(),
            ReplyKind::SetFutureSyntax(true)
        );
        assert_eq!(
            Command::Configure(Configure::fifo_depth(8)).reply_kind(),
            ReplyKind::Ack("CU")
        );
        assert_eq!(Command::Reset.reply_kind(), ReplyKind::Reset);
    }

    #[test]
    fn waits_for_idle() {
        let hm = Command::HomeMove(HomeMove {
            step_rate: 1000,
            position: None,
        });
        assert!(hm.waits_for_idle());
        assert!(Command::Configure(Configure::fifo_depth(4)).waits_for_idle());
        assert!(!Command::Configure(Configure::checksum(true)).waits_for_idle());
    }
}
