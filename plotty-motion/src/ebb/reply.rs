//! Typed firmware replies ([`Reply`]), what each command expects ([`ReplyKind`]), the three
//! reply dialects ([`ReplyMode`]) and the grammar of single reply lines (reference §1.2, §1.3).
//!
//! This file parses one line at a time and knows nothing about which command is in flight; the
//! stateful [`ReplyParser`](super::ReplyParser) strings lines together into replies. Every
//! function here is total: any bytes give a value or `None`, never a panic.

use core::fmt;

use heapless::String;

use super::command::Nickname;
use super::version::{FirmwareVersion, VersionError};

/// Longest version text kept in [`VersionInfo::text`]; real ones are about 45 bytes.
pub const VERSION_TEXT_CAPACITY: usize = 64;
/// Longest error text kept in [`ErrorText`].
pub const ERROR_TEXT_CAPACITY: usize = 48;
/// Longest `QU` value kept in [`UtilityValue`] (`QU,200` prints two 10-digit numbers).
pub const UTILITY_TEXT_CAPACITY: usize = 32;

/// Text quoted from a firmware error line, cut to [`ERROR_TEXT_CAPACITY`] bytes.
pub type ErrorText = String<ERROR_TEXT_CAPACITY>;

/// The reply dialect the firmware currently speaks (reference §1.2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReplyMode {
    /// 3.x default: `OK\r\n` acknowledgements, query data on its own line (ending `\r\n` or
    /// `\n\r` depending on the command), errors `!N Err: text\r\n`.
    Legacy,
    /// 3.x after `CU,10,1`: one line per reply, `NAME` or `NAME,data`, ending `\n`.
    Future,
    /// 2.x (2.8.1): like `Legacy` with padded numbers, a signed `QL`, a 5-value `ES`, deferred
    /// errors and "Major malfunction" lines.
    LegacyV2,
}

/// What reply a command gets; from [`Command::reply_kind`](super::Command::reply_kind).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReplyKind {
    /// A plain acknowledgement: `OK` (legacy) or the command name (future). Carries the
    /// upper-case command name.
    Ack(&'static str),
    /// `R`: acknowledged, then the firmware is back in legacy mode with acknowledgements on.
    Reset,
    /// `CU,1,v`: acknowledgements switched on or off (legacy replies depend on the new value).
    SetAck(bool),
    /// `CU,10,v`: reply syntax switched (3.x; 2.x ignores it and just acknowledges).
    SetFutureSyntax(bool),
    /// `V`/`v`: the version line.
    Version,
    /// `QG`: status byte in hex.
    GeneralStatus,
    /// `QM`: four status fields.
    Motors,
    /// `PI`: one pin level.
    Pin,
    /// `QS`: two step counters.
    Steps,
    /// `QP`: pen state.
    Pen,
    /// `QE`: two enable/microstep values.
    Enables,
    /// `ES`: whether a move was interrupted (plus step counts on 2.x).
    EStop,
    /// `QB`: button latch.
    Button,
    /// `QL`: layer byte / variable.
    Layer,
    /// `QN`: node counter.
    NodeCount,
    /// `QC`: two ADC readings.
    Current,
    /// `QR`: servo power state.
    ServoPower,
    /// `QT`: nickname.
    Nickname,
    /// `QU`: utility value.
    Utility,
}

/// The firmware version reply.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct VersionInfo {
    /// The parsed version number.
    pub version: FirmwareVersion,
    /// The reply text, cut to [`VERSION_TEXT_CAPACITY`] bytes (the version is parsed from the
    /// whole line first).
    pub text: String<VERSION_TEXT_CAPACITY>,
}

/// The `QG` status byte, bit by bit (reference §1.4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[allow(clippy::struct_excessive_bools)] // one field per bit of the firmware's byte
pub struct GeneralStatus {
    /// Bit 0: the motion FIFO holds at least one command.
    pub fifo_nonempty: bool,
    /// Bit 1: motor 2 is moving.
    pub motor2_moving: bool,
    /// Bit 2: motor 1 is moving.
    pub motor1_moving: bool,
    /// Bit 3: a command is executing (or a delay is running, or the FIFO is non-empty).
    pub executing: bool,
    /// Bit 4: the pen is up (as of the last *executed* servo move).
    pub pen_up: bool,
    /// Bit 5: PRG button pressed since the last `QB`/`QG` (cleared by this read).
    pub button_pressed: bool,
    /// Bit 6: 3.x power-lost flag (cleared by the read); on 2.x the level of pin RB2.
    pub power_lost: bool,
    /// Bit 7: 3.x limit switch triggered; on 2.x the level of pin RB5.
    pub limit_switch: bool,
}

/// The `QM` reply (reference §1.4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[allow(clippy::struct_excessive_bools)] // the firmware's four flags
pub struct MotorStatus {
    /// A command is executing.
    pub executing: bool,
    /// Motor 1 is moving.
    pub motor1_moving: bool,
    /// Motor 2 is moving.
    pub motor2_moving: bool,
    /// The FIFO holds at least one command.
    pub fifo_nonempty: bool,
}

/// The `QE` reply: per motor 0 if disabled, else the microstep divisor 1, 2, 4, 8 or 16.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MotorEnables {
    /// Motor 1: 0 = disabled, else 1/2/4/8/16.
    pub motor1: u8,
    /// Motor 2: 0 = disabled, else 1/2/4/8/16.
    pub motor2: u8,
}

/// Pen state from `QP`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PenState {
    /// `1`: up.
    Up,
    /// `0`: down.
    Down,
}

/// Step counts 2.x adds to its `ES` reply (reference §1.4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EStopSteps {
    /// Steps of the move that was waiting in the FIFO, per motor.
    pub fifo: [u32; 2],
    /// Steps the interrupted move had left, per motor.
    pub remaining: [u32; 2],
}

/// The `ES` reply.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EStopReport {
    /// A move was running or waiting and has been dropped.
    pub interrupted: bool,
    /// The step counts of 2.x (`None` on 3.x).
    pub steps: Option<EStopSteps>,
}

/// The value text of a `QU` reply: hex for some queries (`QU,1`), decimal for others, two
/// decimals for `QU,200`.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct UtilityValue {
    text: String<UTILITY_TEXT_CAPACITY>,
}

/// Which motor an error is about.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Axis {
    /// Motor 1 (`<axis1>`).
    One,
    /// Motor 2 (`<axis2>`).
    Two,
}

/// What went wrong, per firmware error form (reference §1.3).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum ErrorKind {
    /// `!1 Err: Invalid step rate`.
    InvalidStepRate,
    /// `!2 Err: TX Buffer overrun`.
    TxBufferOverrun,
    /// `!3 Err: RX Buffer overrun`: a command longer than 255 bytes.
    RxBufferOverrun,
    /// `!4 Err: Missing parameter(s)`.
    MissingParameter,
    /// `!5 Err: Need comma next, found: 'X'`.
    NeedComma {
        /// The byte found instead of the comma (0 if the text did not say).
        found: u8,
    },
    /// `!6 Err: Invalid parameter value`.
    InvalidParameter,
    /// `!7 Err: Extra parameter`: printed *after* the command ran and replied normally.
    ExtraParameter,
    /// `!8 Err: Unknown command 'X:58'`; carries the quoted text.
    UnknownCommand(ErrorText),
    /// `!9 Err: Checksum incorrect, expected N`.
    ChecksumIncorrect {
        /// The checksum the firmware computed, if the text gave it.
        expected: Option<u8>,
    },
    /// `!10 Err: No checksum found but required`.
    ChecksumMissing,
    /// `!0 Err: <axisN> step rate too high` (3.x), `… step rate > 25K steps/second.` (2.x, also
    /// from `HM`).
    StepRateTooHigh(Axis),
    /// `!0 Err: <axisN> step rate too slow` (3.x), `… step rate < 1.31Hz.` (2.x).
    StepRateTooSlow(Axis),
    /// 2.x `!0 Err: <move_duration> larger than 16777215 ms.`
    DurationTooLong,
    /// 2.x `!0 Err: <axisN> larger than 16777215 steps.`
    StepsTooLarge(Axis),
    /// 2.x `!0 Err: steps to home larger than 16,777,215.`
    HomeDistanceTooLarge,
    /// 2.x `Major malfunction AxisN StepCounter too high : q` / `… zero`: the move was queued,
    /// but with a clamped rate (reference §2.3). Reported once the move's `OK` has arrived.
    Malfunction(Axis),
    /// Any other error text (the part after `Err: `).
    Other(ErrorText),
}

/// A firmware error reply: the `!N` code (absent for 2.x "Major malfunction" lines) and what it
/// means.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct FirmwareError {
    /// The number after `!`.
    pub code: Option<u8>,
    /// The error.
    pub kind: ErrorKind,
}

/// A complete, typed firmware reply.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Reply {
    /// The command was accepted (queued, for FIFO commands).
    Ok,
    /// `V`: the version line.
    Version(VersionInfo),
    /// `QG`.
    GeneralStatus(GeneralStatus),
    /// `QS`: global step counters.
    Steps {
        /// Motor 1 position in steps.
        m1: i32,
        /// Motor 2 position in steps.
        m2: i32,
    },
    /// `QP`.
    Pen(PenState),
    /// `QB`.
    Button {
        /// Pressed since the last `QB`/`QG`.
        pressed: bool,
    },
    /// `QE`.
    Enables(MotorEnables),
    /// `QM`.
    Motors(MotorStatus),
    /// `QC`: raw 10-bit ADC readings.
    Current {
        /// The driver current-set voltage (REF_RA0).
        current: u16,
        /// The motor supply voltage through its divider (AxiDraw warns below 250).
        voltage: u16,
    },
    /// `QL`: the layer byte / variable (2.x prints it signed; it is returned as the byte).
    Layer(u8),
    /// `QU`.
    Utility(UtilityValue),
    /// `PI`: the pin is high.
    Pin(bool),
    /// `QT`: the nickname, empty when none is set.
    Nickname(Nickname),
    /// `QN`.
    NodeCount(u32),
    /// `ES`.
    EStop(EStopReport),
    /// `QR`: servo power is on.
    ServoPower(bool),
    /// The firmware rejected the command (or, for `ExtraParameter` and 2.x `Malfunction`, ran
    /// it and complained).
    Error(FirmwareError),
}

/// Why bytes could not be understood as the expected reply. The reply in progress is dropped;
/// the protocol is out of step and the session should resynchronise (for example with `V`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum ReplyError {
    /// A reply line was longer than the line buffer's capacity.
    LineTooLong {
        /// The buffer capacity in bytes.
        capacity: usize,
    },
    /// The line does not have the shape of the expected reply.
    Malformed {
        /// What was expected.
        expected: ReplyKind,
    },
    /// In future mode, the line names another command than the one in flight.
    WrongCommand {
        /// The command name expected at the start of the line.
        expected: &'static str,
    },
    /// The `V` reply is not an EBB version line.
    BadVersion(VersionError),
    /// A line arrived while no reply was expected (for example a 3.x `!7 Err: Extra parameter`
    /// after a complete reply); carries the error if the line was one.
    Unsolicited {
        /// The firmware error on the line, if it was an error line.
        error: Option<FirmwareError>,
    },
}

impl ReplyMode {
    /// The mode a board of version `fw` speaks after power-up or `R`.
    pub const fn at_boot(fw: FirmwareVersion) -> Self {
        if fw.is_v3() {
            Self::Legacy
        } else {
            Self::LegacyV2
        }
    }
}

impl ReplyKind {
    /// The kinds that carry data, in the order of the reference table (§1.2).
    pub const DATA: [Self; 15] = [
        Self::Version,
        Self::GeneralStatus,
        Self::Motors,
        Self::Steps,
        Self::Pen,
        Self::Enables,
        Self::EStop,
        Self::Button,
        Self::Layer,
        Self::NodeCount,
        Self::Current,
        Self::ServoPower,
        Self::Nickname,
        Self::Utility,
        Self::Pin,
    ];

    /// The command name that starts a future-mode reply line.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ack(name) => name,
            Self::Reset => "R",
            Self::SetAck(_) | Self::SetFutureSyntax(_) => "CU",
            Self::Version => "V",
            Self::GeneralStatus => "QG",
            Self::Motors => "QM",
            Self::Pin => "PI",
            Self::Steps => "QS",
            Self::Pen => "QP",
            Self::Enables => "QE",
            Self::EStop => "ES",
            Self::Button => "QB",
            Self::Layer => "QL",
            Self::NodeCount => "QN",
            Self::Current => "QC",
            Self::ServoPower => "QR",
            Self::Nickname => "QT",
            Self::Utility => "QU",
        }
    }

    /// Whether the reply carries data (rather than being a bare acknowledgement).
    pub const fn has_data(self) -> bool {
        !matches!(
            self,
            Self::Ack(_) | Self::Reset | Self::SetAck(_) | Self::SetFutureSyntax(_)
        )
    }

    /// Whether, in legacy mode, the data line is followed by an `OK` line (when
    /// acknowledgements are on). `V`, `QG`, `QM` and `PI` never add one (§1.2).
    pub const fn legacy_adds_ok(self) -> bool {
        self.has_data()
            && !matches!(
                self,
                Self::Version | Self::GeneralStatus | Self::Motors | Self::Pin
            )
    }

    /// Whether the legacy data line starts with `NAME,` like a future-mode one (`QM`, `PI`,
    /// `QU`).
    pub const fn legacy_has_name(self) -> bool {
        matches!(self, Self::Motors | Self::Pin | Self::Utility)
    }

    /// Whether `reply` is a possible answer of this kind (a firmware error always is).
    pub fn accepts(self, reply: &Reply) -> bool {
        match reply {
            Reply::Error(_) => true,
            Reply::Ok => !self.has_data(),
            Reply::Version(_) => self == Self::Version,
            Reply::GeneralStatus(_) => self == Self::GeneralStatus,
            Reply::Steps { .. } => self == Self::Steps,
            Reply::Pen(_) => self == Self::Pen,
            Reply::Button { .. } => self == Self::Button,
            Reply::Enables(_) => self == Self::Enables,
            Reply::Motors(_) => self == Self::Motors,
            Reply::Current { .. } => self == Self::Current,
            Reply::Layer(_) => self == Self::Layer,
            Reply::Utility(_) => self == Self::Utility,
            Reply::Pin(_) => self == Self::Pin,
            Reply::Nickname(_) => self == Self::Nickname,
            Reply::NodeCount(_) => self == Self::NodeCount,
            Reply::EStop(_) => self == Self::EStop,
            Reply::ServoPower(_) => self == Self::ServoPower,
        }
    }

    /// Parses the data part of a reply line of this kind (legacy: the whole line, minus the
    /// `NAME,` of `QM`/`PI`/`QU`; future: the text after `NAME,`).
    pub(crate) fn parse_data(self, data: &[u8], mode: ReplyMode) -> Result<Reply, ReplyError> {
        let malformed = ReplyError::Malformed { expected: self };
        let mut c = Cursor::new(data);
        let reply = match self {
            Self::Ack(_) | Self::Reset | Self::SetAck(_) | Self::SetFutureSyntax(_) => None,
            Self::Version => {
                let version = FirmwareVersion::from_reply(data).map_err(ReplyError::BadVersion)?;
                let text = ascii_text(data).ok_or(malformed.clone())?;
                return Ok(Reply::Version(VersionInfo { version, text }));
            }
            Self::GeneralStatus => c.hex_byte().map(|b| {
                let bit = |n: u8| b & (1 << n) != 0;
                Reply::GeneralStatus(GeneralStatus {
                    fifo_nonempty: bit(0),
                    motor2_moving: bit(1),
                    motor1_moving: bit(2),
                    executing: bit(3),
                    pen_up: bit(4),
                    button_pressed: bit(5),
                    power_lost: bit(6),
                    limit_switch: bit(7),
                })
            }),
            Self::Motors => (|| {
                let executing = c.flag()?;
                let motor1_moving = c.comma_flag()?;
                let motor2_moving = c.comma_flag()?;
                c.comma()?;
                let fifo_nonempty = c.unsigned(u64::from(u8::MAX))? != 0;
                Some(Reply::Motors(MotorStatus {
                    executing,
                    motor1_moving,
                    motor2_moving,
                    fifo_nonempty,
                }))
            })(),
            Self::Pin => c.bit().map(Reply::Pin),
            Self::Steps => (|| {
                let m1 = c.signed_i32()?;
                c.comma()?;
                let m2 = c.signed_i32()?;
                Some(Reply::Steps { m1, m2 })
            })(),
            Self::Pen => c
                .bit()
                .map(|up| Reply::Pen(if up { PenState::Up } else { PenState::Down })),
            Self::Enables => (|| {
                let motor1 = c.microstep()?;
                c.comma()?;
                let motor2 = c.microstep()?;
                Some(Reply::Enables(MotorEnables { motor1, motor2 }))
            })(),
            Self::EStop => (|| {
                let interrupted = c.bit()?;
                let steps = if mode == ReplyMode::LegacyV2 {
                    let mut v = [0u32; 4];
                    for slot in &mut v {
                        c.comma()?;
                        *slot = c.unsigned_u32()?;
                    }
                    Some(EStopSteps {
                        fifo: [v[0], v[1]],
                        remaining: [v[2], v[3]],
                    })
                } else {
                    None
                };
                Some(Reply::EStop(EStopReport { interrupted, steps }))
            })(),
            Self::Button => c.bit().map(|pressed| Reply::Button { pressed }),
            Self::Layer => {
                if mode == ReplyMode::LegacyV2 {
                    // 2.x stores the layer as a signed char and prints it with %03i.
                    c.signed(-128, 127)
                        .map(|v| Reply::Layer(v.to_le_bytes()[0]))
                } else {
                    c.unsigned(u64::from(u8::MAX))
                        .map(|v| Reply::Layer(v.to_le_bytes()[0]))
                }
            }
            Self::NodeCount => c.unsigned_u32().map(Reply::NodeCount),
            Self::Current => (|| {
                let current = c.unsigned_u16()?;
                c.comma()?;
                let voltage = c.unsigned_u16()?;
                Some(Reply::Current { current, voltage })
            })(),
            Self::ServoPower => c.bit().map(Reply::ServoPower),
            Self::Nickname => {
                let name = nickname(data).ok_or(malformed.clone())?;
                return Ok(Reply::Nickname(name));
            }
            Self::Utility => {
                let text = printable_text(data).ok_or(malformed.clone())?;
                return Ok(Reply::Utility(UtilityValue { text }));
            }
        };
        match reply {
            Some(reply) if c.is_empty() => Ok(reply),
            _ => Err(malformed),
        }
    }
}

impl GeneralStatus {
    /// No command executing, no delay running and nothing queued: the low nibble is 0 (the
    /// AxiDraw idle wait, reference §5.4).
    pub const fn is_idle(&self) -> bool {
        !(self.fifo_nonempty || self.motor1_moving || self.motor2_moving || self.executing)
    }

    /// The byte as the firmware sends it.
    pub const fn to_byte(self) -> u8 {
        (self.fifo_nonempty as u8)
            | (self.motor2_moving as u8) << 1
            | (self.motor1_moving as u8) << 2
            | (self.executing as u8) << 3
            | (self.pen_up as u8) << 4
            | (self.button_pressed as u8) << 5
            | (self.power_lost as u8) << 6
            | (self.limit_switch as u8) << 7
    }
}

impl MotorEnables {
    /// Both drivers are enabled.
    pub const fn both_enabled(&self) -> bool {
        self.motor1 != 0 && self.motor2 != 0
    }
}

impl UtilityValue {
    /// A value with this text (tests build replies to format).
    #[cfg(test)]
    pub(crate) const fn from_text(text: String<UTILITY_TEXT_CAPACITY>) -> Self {
        Self { text }
    }

    /// The value as the firmware printed it.
    pub fn as_str(&self) -> &str {
        self.text.as_str()
    }

    /// The value as an unsigned decimal number, if it is one.
    pub fn decimal(&self) -> Option<u32> {
        let mut c = Cursor::new(self.text.as_bytes());
        let v = c.unsigned_u32()?;
        c.is_empty().then_some(v)
    }

    /// The value as one or two hex digits (`QU,1`), if it is that.
    pub fn hex(&self) -> Option<u8> {
        let mut c = Cursor::new(self.text.as_bytes());
        let v = c.hex_byte()?;
        c.is_empty().then_some(v)
    }
}

impl FirmwareError {
    /// Parses an error line (or the part of a future-mode line after `NAME,`): `!N Err: text`
    /// (3.x and 2.x) or `Major malfunction …` (2.x). `None` if the line is not an error line.
    pub fn parse(line: &[u8]) -> Option<Self> {
        if let Some(rest) = line.strip_prefix(b"Major malfunction") {
            let axis = find_axis(rest)?;
            return Some(Self {
                code: None,
                kind: ErrorKind::Malfunction(axis),
            });
        }
        let rest = line.strip_prefix(b"!")?;
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 3 {
            return None;
        }
        let mut code: u16 = 0;
        for &b in rest.get(..digits)? {
            code = code * 10 + u16::from(b - b'0');
        }
        let code = u8::try_from(code).ok()?;
        let text = rest.get(digits..)?.strip_prefix(b" Err:")?;
        let text = text.strip_prefix(b" ").unwrap_or(text);
        Some(Self {
            code: Some(code),
            kind: ErrorKind::from_code(code, text),
        })
    }

    /// Finds an error on any reply line: a legacy error line, or a future-mode `NAME,!N Err:` /
    /// `NAME,,!N Err:` line.
    pub fn find(line: &[u8]) -> Option<Self> {
        if let Some(e) = Self::parse(line) {
            return Some(e);
        }
        let comma = line.iter().position(|&b| b == b',')?;
        if comma > 2 {
            return None;
        }
        let rest = line.get(comma + 1..)?;
        let rest = rest.strip_prefix(b",").unwrap_or(rest);
        Self::parse(rest)
    }
}

impl ErrorKind {
    fn from_code(code: u8, text: &[u8]) -> Self {
        match code {
            0 => Self::range_error(text),
            1 => Self::InvalidStepRate,
            2 => Self::TxBufferOverrun,
            3 => Self::RxBufferOverrun,
            4 => Self::MissingParameter,
            5 => Self::NeedComma {
                found: quoted(text).and_then(|q| q.first().copied()).unwrap_or(0),
            },
            6 => Self::InvalidParameter,
            7 => Self::ExtraParameter,
            8 => Self::UnknownCommand(lossy_text(quoted(text).unwrap_or(text))),
            9 => Self::ChecksumIncorrect {
                expected: text
                    .iter()
                    .rposition(|b| !b.is_ascii_digit())
                    .and_then(|i| text.get(i + 1..))
                    .and_then(|digits| {
                        let mut c = Cursor::new(digits);
                        c.unsigned(u64::from(u8::MAX))
                            .filter(|_| c.is_empty())
                            .map(|v| v.to_le_bytes()[0])
                    }),
            },
            10 => Self::ChecksumMissing,
            _ => Self::Other(lossy_text(text)),
        }
    }

    /// The `!0` range errors of `SM`/`XM`/`HM` (3.x inline rate errors, 2.x limit errors).
    fn range_error(text: &[u8]) -> Self {
        let has = |needle: &[u8]| text.windows(needle.len()).any(|w| w == needle);
        let axis = find_axis(text);
        match axis {
            Some(axis) if has(b"too high") || has(b"> 25K") => Self::StepRateTooHigh(axis),
            Some(axis) if has(b"too slow") || has(b"too low") || has(b"< 1.31") => {
                Self::StepRateTooSlow(axis)
            }
            Some(axis) if has(b"steps.") => Self::StepsTooLarge(axis),
            _ if has(b"<move_duration>") => Self::DurationTooLong,
            _ if has(b"steps to home") => Self::HomeDistanceTooLarge,
            _ => Self::Other(lossy_text(text)),
        }
    }

    /// The firmware's error text for this kind (the 3.x wording where the lines differ), as
    /// printed after `!N Err: `.
    pub const fn description(&self) -> &'static str {
        match self {
            Self::InvalidStepRate => "invalid step rate",
            Self::TxBufferOverrun => "TX buffer overrun",
            Self::RxBufferOverrun => "RX buffer overrun (command longer than 255 bytes)",
            Self::MissingParameter => "missing parameter(s)",
            Self::NeedComma { .. } => "comma expected",
            Self::InvalidParameter => "invalid parameter value",
            Self::ExtraParameter => "extra parameter",
            Self::UnknownCommand(_) => "unknown command",
            Self::ChecksumIncorrect { .. } => "checksum incorrect",
            Self::ChecksumMissing => "no checksum found but required",
            Self::StepRateTooHigh(_) => "step rate too high",
            Self::StepRateTooSlow(_) => "step rate too slow",
            Self::DurationTooLong => "move duration larger than 16777215 ms",
            Self::StepsTooLarge(_) => "step count larger than 16777215",
            Self::HomeDistanceTooLarge => "steps to home larger than 16777215",
            Self::Malfunction(_) => "step rate clamped (major malfunction)",
            Self::Other(_) => "unrecognised error",
        }
    }
}

impl fmt::Display for Axis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::One => "motor 1",
            Self::Two => "motor 2",
        })
    }
}

impl fmt::Display for FirmwareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "firmware error !{code}: ")?,
            None => f.write_str("firmware warning: ")?,
        }
        f.write_str(self.kind.description())?;
        match &self.kind {
            ErrorKind::NeedComma { found } => write!(f, ", found byte 0x{found:02X}"),
            ErrorKind::UnknownCommand(text) => write!(f, " '{text}'"),
            ErrorKind::ChecksumIncorrect {
                expected: Some(sum),
            } => write!(f, ", expected {sum}"),
            ErrorKind::StepRateTooHigh(axis)
            | ErrorKind::StepRateTooSlow(axis)
            | ErrorKind::StepsTooLarge(axis)
            | ErrorKind::Malfunction(axis) => write!(f, " on {axis}"),
            ErrorKind::Other(text) => write!(f, ": {text}"),
            _ => Ok(()),
        }
    }
}

impl core::error::Error for FirmwareError {}

impl fmt::Display for ReplyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ack(name) => write!(f, "acknowledgement of {name}"),
            Self::Reset => f.write_str("acknowledgement of R"),
            Self::SetAck(_) | Self::SetFutureSyntax(_) => f.write_str("acknowledgement of CU"),
            other => write!(f, "{} reply", other.name()),
        }
    }
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LineTooLong { capacity } => write!(
                f,
                "reply line longer than {capacity} bytes: the link is garbled or the line \
                 buffer too small; resynchronise"
            ),
            Self::Malformed { expected } => write!(
                f,
                "reply line is not a valid {expected}: the protocol is out of step; resynchronise"
            ),
            Self::WrongCommand { expected } => write!(
                f,
                "reply line does not start with {expected}: the protocol is out of step; \
                 resynchronise"
            ),
            Self::BadVersion(e) => write!(f, "bad version reply: {e}"),
            Self::Unsolicited { error: Some(e) } => {
                write!(f, "unexpected line while no reply was due: {e}")
            }
            Self::Unsolicited { error: None } => f.write_str(
                "unexpected line while no reply was due: the protocol is out of step; \
                 resynchronise",
            ),
        }
    }
}

impl core::error::Error for ReplyError {}

#[cfg(feature = "defmt")]
impl defmt::Format for VersionInfo {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{} ({=str})", self.version, self.text.as_str());
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for UtilityValue {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=str}", self.text.as_str());
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for ErrorKind {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            Self::UnknownCommand(t) | Self::Other(t) => {
                defmt::write!(f, "{=str}: {=str}", self.description(), t.as_str());
            }
            other => defmt::write!(f, "{=str}", other.description()),
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for FirmwareError {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "!{} {}", self.code, self.kind);
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Reply {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            Self::Ok => defmt::write!(f, "Ok"),
            Self::Version(v) => defmt::write!(f, "Version({})", v),
            Self::GeneralStatus(s) => defmt::write!(f, "{}", s),
            Self::Steps { m1, m2 } => defmt::write!(f, "Steps({}, {})", m1, m2),
            Self::Pen(p) => defmt::write!(f, "{}", p),
            Self::Button { pressed } => defmt::write!(f, "Button({})", pressed),
            Self::Enables(e) => defmt::write!(f, "{}", e),
            Self::Motors(m) => defmt::write!(f, "{}", m),
            Self::Current { current, voltage } => {
                defmt::write!(f, "Current({}, {})", current, voltage);
            }
            Self::Layer(l) => defmt::write!(f, "Layer({})", l),
            Self::Utility(u) => defmt::write!(f, "Utility({})", u),
            Self::Pin(p) => defmt::write!(f, "Pin({})", p),
            Self::Nickname(n) => defmt::write!(f, "Nickname({=str})", n.as_str()),
            Self::NodeCount(n) => defmt::write!(f, "NodeCount({})", n),
            Self::EStop(e) => defmt::write!(f, "{}", e),
            Self::ServoPower(p) => defmt::write!(f, "ServoPower({})", p),
            Self::Error(e) => defmt::write!(f, "{}", e),
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for ReplyError {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            Self::LineTooLong { capacity } => defmt::write!(f, "LineTooLong({})", capacity),
            Self::Malformed { expected } => defmt::write!(f, "Malformed({})", expected),
            Self::WrongCommand { expected } => defmt::write!(f, "WrongCommand({=str})", expected),
            Self::BadVersion(e) => defmt::write!(f, "BadVersion({})", e),
            Self::Unsolicited { error } => defmt::write!(f, "Unsolicited({})", error),
        }
    }
}

/// A forward-only reader over a reply line; every method returns `None` instead of failing
/// loudly, and never reads past the end.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    const fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    const fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn byte(&mut self, expected: u8) -> Option<()> {
        let (&first, tail) = self.rest.split_first()?;
        (first == expected).then(|| self.rest = tail)
    }

    fn comma(&mut self) -> Option<()> {
        self.byte(b',')
    }

    /// Decimal digits (leading zeros allowed, at most 10 of them) as a value ≤ `max`.
    fn unsigned(&mut self, max: u64) -> Option<u64> {
        let digits = self.rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 10 {
            return None;
        }
        let mut value: u64 = 0;
        for &b in self.rest.get(..digits)? {
            value = value * 10 + u64::from(b - b'0');
        }
        self.rest = self.rest.get(digits..)?;
        (value <= max).then_some(value)
    }

    fn unsigned_u32(&mut self) -> Option<u32> {
        self.unsigned(u64::from(u32::MAX))
            .and_then(|v| u32::try_from(v).ok())
    }

    fn unsigned_u16(&mut self) -> Option<u16> {
        self.unsigned(u64::from(u16::MAX))
            .and_then(|v| u16::try_from(v).ok())
    }

    /// An optionally negative decimal in `min..=max`.
    fn signed(&mut self, min: i64, max: i64) -> Option<i64> {
        let negative = self.byte(b'-').is_some();
        let magnitude = i64::try_from(self.unsigned(u64::from(u32::MAX) + 1)?).ok()?;
        let value = if negative { -magnitude } else { magnitude };
        (min..=max).contains(&value).then_some(value)
    }

    fn signed_i32(&mut self) -> Option<i32> {
        self.signed(i64::from(i32::MIN), i64::from(i32::MAX))
            .and_then(|v| i32::try_from(v).ok())
    }

    /// `0` or `1`.
    fn bit(&mut self) -> Option<bool> {
        match self.unsigned(1)? {
            0 => Some(false),
            _ => Some(true),
        }
    }

    /// A decimal byte, non-zero meaning true (the `QM` fields).
    fn flag(&mut self) -> Option<bool> {
        self.unsigned(u64::from(u8::MAX)).map(|v| v != 0)
    }

    fn comma_flag(&mut self) -> Option<bool> {
        self.comma()?;
        self.flag()
    }

    /// A `QE` value: 0, 1, 2, 4, 8 or 16.
    fn microstep(&mut self) -> Option<u8> {
        let v = self.unsigned(16)?;
        matches!(v, 0 | 1 | 2 | 4 | 8 | 16).then(|| v.to_le_bytes()[0])
    }

    /// One or two hex digits (either case).
    fn hex_byte(&mut self) -> Option<u8> {
        let digits = self
            .rest
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        if digits == 0 || digits > 2 {
            return None;
        }
        let mut value = 0u8;
        for &b in self.rest.get(..digits)? {
            let d = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                _ => b - b'A' + 10,
            };
            value = (value << 4) | d;
        }
        self.rest = self.rest.get(digits..)?;
        Some(value)
    }
}

/// `<axis1>` / `Axis2` anywhere in `text` (ASCII case-insensitive).
fn find_axis(text: &[u8]) -> Option<Axis> {
    text.windows(5).find_map(|w| {
        if !w.get(..4)?.eq_ignore_ascii_case(b"axis") {
            return None;
        }
        match w.get(4)? {
            b'1' => Some(Axis::One),
            b'2' => Some(Axis::Two),
            _ => None,
        }
    })
}

/// The text between the first pair of single quotes.
fn quoted(text: &[u8]) -> Option<&[u8]> {
    let start = text.iter().position(|&b| b == b'\'')? + 1;
    let rest = text.get(start..)?;
    let len = rest.iter().position(|&b| b == b'\'')?;
    rest.get(..len)
}

/// Printable ASCII (0x20..=0x7E), every other byte replaced by `?`, cut to capacity.
fn lossy_text<const N: usize>(bytes: &[u8]) -> String<N> {
    let mut out = String::new();
    for &b in bytes {
        let c = if (0x20..=0x7E).contains(&b) {
            char::from(b)
        } else {
            '?'
        };
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

/// The bytes as text if they are all printable ASCII, cut to capacity.
fn ascii_text<const N: usize>(bytes: &[u8]) -> Option<String<N>> {
    if !bytes.iter().all(|b| (0x20..=0x7E).contains(b)) {
        return None;
    }
    Some(lossy_text(bytes))
}

/// The bytes as text if they are printable ASCII and fit.
fn printable_text<const N: usize>(bytes: &[u8]) -> Option<String<N>> {
    (bytes.len() <= N).then(|| ascii_text(bytes)).flatten()
}

/// A nickname: at most 16 printable ASCII bytes.
fn nickname(bytes: &[u8]) -> Option<Nickname> {
    printable_text(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(line: &str) -> FirmwareError {
        FirmwareError::find(line.as_bytes()).unwrap()
    }

    fn text<const N: usize>(s: &str) -> String<N> {
        String::try_from(s).unwrap()
    }

    #[test]
    fn every_numbered_error_of_section_1_3() {
        let cases: [(&str, u8, ErrorKind); 11] = [
            ("!1 Err: Invalid step rate", 1, ErrorKind::InvalidStepRate),
            ("!2 Err: TX Buffer overrun", 2, ErrorKind::TxBufferOverrun),
            ("!3 Err: RX Buffer overrun", 3, ErrorKind::RxBufferOverrun),
            (
                "!4 Err: Missing parameter(s)",
                4,
                ErrorKind::MissingParameter,
            ),
            (
                "!5 Err: Need comma next, found: 'X'",
                5,
                ErrorKind::NeedComma { found: b'X' },
            ),
            (
                "!6 Err: Invalid parameter value",
                6,
                ErrorKind::InvalidParameter,
            ),
            ("!7 Err: Extra parameter", 7, ErrorKind::ExtraParameter),
            (
                "!8 Err: Unknown command 'XY:5859'",
                8,
                ErrorKind::UnknownCommand(text("XY:5859")),
            ),
            (
                "!9 Err: Checksum incorrect, expected 170",
                9,
                ErrorKind::ChecksumIncorrect {
                    expected: Some(170),
                },
            ),
            (
                "!10 Err: No checksum found but required",
                10,
                ErrorKind::ChecksumMissing,
            ),
            (
                "!42 Err: Something new",
                42,
                ErrorKind::Other(text("Something new")),
            ),
        ];
        for (line, code, kind) in cases {
            assert_eq!(
                err(line),
                FirmwareError {
                    code: Some(code),
                    kind
                },
                "{line}"
            );
        }
        assert_eq!(
            err("!8 Err: Unknown command 'B:42'").kind,
            ErrorKind::UnknownCommand(text("B:42"))
        );
    }

    #[test]
    fn range_errors_of_both_lines() {
        let cases = [
            (
                "!0 Err: <axis1> step rate too high",
                ErrorKind::StepRateTooHigh(Axis::One),
            ),
            (
                "!0 Err: <axis2> step rate too slow",
                ErrorKind::StepRateTooSlow(Axis::Two),
            ),
            (
                "!0 Err: <axis1> step rate > 25K steps/second.",
                ErrorKind::StepRateTooHigh(Axis::One),
            ),
            (
                "!0 Err: <axis2> step rate < 1.31Hz.",
                ErrorKind::StepRateTooSlow(Axis::Two),
            ),
            (
                "!0 Err: <move_duration> larger than 16777215 ms.",
                ErrorKind::DurationTooLong,
            ),
            (
                "!0 Err: <axis2> larger than 16777215 steps.",
                ErrorKind::StepsTooLarge(Axis::Two),
            ),
            (
                "!0 Err: steps to home larger than 16,777,215.",
                ErrorKind::HomeDistanceTooLarge,
            ),
            (
                "!0 Err: HM <axis1> step rate > 25K steps/second.",
                ErrorKind::StepRateTooHigh(Axis::One),
            ),
        ];
        for (line, kind) in cases {
            assert_eq!(
                err(line),
                FirmwareError {
                    code: Some(0),
                    kind
                },
                "{line}"
            );
        }
        assert_eq!(
            err("Major malfunction Axis2 StepCounter too high : 32769"),
            FirmwareError {
                code: None,
                kind: ErrorKind::Malfunction(Axis::Two)
            }
        );
    }

    #[test]
    fn future_mode_error_prefixes() {
        assert_eq!(
            err("SM,!4 Err: Missing parameter(s)").kind,
            ErrorKind::MissingParameter
        );
        assert_eq!(
            err("QU,,!6 Err: Invalid parameter value").kind,
            ErrorKind::InvalidParameter
        );
        assert_eq!(
            err("SM,!0 Err: <axis1> step rate too high").kind,
            ErrorKind::StepRateTooHigh(Axis::One)
        );
        assert_eq!(FirmwareError::find(b"QS,10,-4"), None);
        assert_eq!(FirmwareError::find(b"OK"), None);
        assert_eq!(FirmwareError::find(b"!x Err: y"), None);
        assert_eq!(FirmwareError::find(b"!1000 Err: y"), None);
    }

    #[test]
    fn data_lines() {
        let parse = |kind: ReplyKind, s: &str, mode| kind.parse_data(s.as_bytes(), mode);
        let l = ReplyMode::Legacy;
        let v2 = ReplyMode::LegacyV2;
        assert_eq!(
            parse(ReplyKind::Steps, "10,-4", l),
            Ok(Reply::Steps { m1: 10, m2: -4 })
        );
        assert_eq!(
            parse(ReplyKind::Steps, "-2147483648,2147483647", l),
            Ok(Reply::Steps {
                m1: i32::MIN,
                m2: i32::MAX
            })
        );
        assert!(parse(ReplyKind::Steps, "2147483648,0", l).is_err());
        assert!(parse(ReplyKind::Steps, "1,2,3", l).is_err());
        let Ok(Reply::GeneralStatus(s)) = parse(ReplyKind::GeneralStatus, "3E", l) else {
            panic!()
        };
        assert_eq!(s.to_byte(), 0x3E);
        assert!(s.pen_up && s.button_pressed && s.executing && !s.fifo_nonempty);
        assert!(!s.is_idle());
        assert_eq!(parse(ReplyKind::Layer, "-56", v2), Ok(Reply::Layer(200)));
        assert_eq!(parse(ReplyKind::Layer, "007", v2), Ok(Reply::Layer(7)));
        assert!(parse(ReplyKind::Layer, "-56", l).is_err());
        assert_eq!(
            parse(ReplyKind::NodeCount, "0000000042", v2),
            Ok(Reply::NodeCount(42))
        );
        assert_eq!(
            parse(ReplyKind::Current, "0300,0512", v2),
            Ok(Reply::Current {
                current: 300,
                voltage: 512
            })
        );
        assert_eq!(
            parse(ReplyKind::EStop, "1,10,20,30,40", v2),
            Ok(Reply::EStop(EStopReport {
                interrupted: true,
                steps: Some(EStopSteps {
                    fifo: [10, 20],
                    remaining: [30, 40]
                })
            }))
        );
        assert!(parse(ReplyKind::EStop, "1,10,20,30,40", l).is_err());
        assert_eq!(
            parse(ReplyKind::Enables, "16,0", l),
            Ok(Reply::Enables(MotorEnables {
                motor1: 16,
                motor2: 0
            }))
        );
        assert!(parse(ReplyKind::Enables, "3,0", l).is_err());
        let Ok(Reply::Utility(u)) = parse(ReplyKind::Utility, "1F", l) else {
            panic!()
        };
        assert_eq!((u.hex(), u.decimal()), (Some(0x1F), None));
        assert!(parse(ReplyKind::Pen, "2", l).is_err());
        assert!(parse(ReplyKind::Pen, "", l).is_err());
        assert_eq!(
            parse(ReplyKind::Nickname, "AxiDraw-7", l),
            Ok(Reply::Nickname(text("AxiDraw-7")))
        );
        assert!(parse(ReplyKind::Nickname, "seventeen-chars-x", l).is_err());
    }
}
