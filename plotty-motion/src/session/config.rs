//! What a [`Session`](super::Session) is told before it connects: servo set-up, resolution,
//! protocol choices, feeding and polling intervals, timeouts.

use core::fmt;

use crate::ebb::limits::FIFO_DEPTH_MAX_V3;
use crate::kinematics::{AxiDrawSettings, PenLift, Resolution};
use crate::time::Duration;

/// Which firmware behaviour the session uses (reference §1.2, §1.5).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProtocolLine {
    /// 2.x behaviour: one FIFO slot, one command in flight at a time (2.x reports errors only
    /// at the end of a USB packet, so pipelined commands could not be told apart), legacy replies.
    V2,
    /// 3.x behaviour: a deep FIFO (`CU,4`), pipelined commands, "future" reply syntax on 3.0.2+.
    V3,
}

/// Pen servo set-up: positions, slew rates, the time each move needs, the output pin.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ServoSetup {
    /// Pen-up position (`SC,4`), 83.3 ns units.
    pub up: u16,
    /// Pen-down position (`SC,5`).
    pub down: u16,
    /// Slew rate while raising (`SC,11`).
    pub rate_raise: u16,
    /// Slew rate while lowering (`SC,12`).
    pub rate_lower: u16,
    /// Time the FIFO waits after a raise starts (`SP,1,<ms>`), ms.
    pub raise_ms: u16,
    /// Time the FIFO waits after a lowering starts (`SP,0,<ms>`), ms.
    pub lower_ms: u16,
    /// PortB pin of the servo signal (`SP,…,…,<pin>`): 1 (RB1) for the standard servo, 2 (RB2)
    /// for the narrow-band one.
    pub pin: u8,
    /// RC servo slots (`SC,8`), sent when `Some`: AxiDraw sends 8 for the standard servo and 1
    /// for the narrow-band one (reference §4).
    pub slots: Option<u8>,
}

/// Everything a [`Session`](super::Session) needs besides the bytes and the time.
///
/// Build it with [`SessionConfig::axidraw`] and adjust fields;
/// [`Session::new`](super::Session::new) checks it with [`SessionConfig::validate`].
#[derive(Clone, Copy, PartialEq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SessionConfig {
    /// Pen servo set-up.
    pub servo: ServoSetup,
    /// Microstepping (`EM,1,1` for 16×, `EM,2,2` for 8×).
    pub resolution: Resolution,
    /// Servo power auto-off timeout sent with `SR` (firmware ≥ 2.6.0); `None` leaves the
    /// board's setting alone.
    pub servo_timeout_ms: Option<u32>,
    /// Force a protocol line instead of choosing it from the version. Forcing [`ProtocolLine::V2`]
    /// on a 3.x board is allowed (one slot, legacy replies); forcing [`ProtocolLine::V3`] on a
    /// 2.x board fails the handshake.
    pub line: Option<ProtocolLine>,
    /// Switch 3.0.2+ boards to the unambiguous "future" reply syntax (`CU,10,1`).
    pub future_syntax: bool,
    /// 3.x checksum mode (`CU,54,1`): every command carries a checksum, so a command damaged
    /// on the way is refused (`!9`) instead of executed as something else — a dropped digit can
    /// otherwise turn `SP,1` into a pen-down. Off by default (the AxiDraw software does not use
    /// it); worth turning on over an unreliable link. Ignored on 2.x, which has no checksums.
    pub checksums: bool,
    /// Motion FIFO depth to configure on 3.x (`CU,4`, 1..=32).
    pub fifo_depth: u8,
    /// How much motion to keep queued ahead in the firmware (limited by the FIFO depth).
    /// At least 100 ms is recommended: less leaves gaps whenever the host is briefly late.
    pub queue_ahead: Duration,
    /// Interval of position queries (`QS`) while plotting.
    pub position_poll: Duration,
    /// Interval of button queries (`QB`) while plotting or paused (at most 50 ms).
    pub button_poll: Duration,
    /// Pause when the PRG button is pressed while plotting.
    pub pause_on_button: bool,
    /// Keep the firmware's step counters when its motors are already enabled at the right
    /// resolution (crash resume): read `QS` instead of sending `EM` (which zeroes them).
    pub keep_position: bool,
    /// Interval of motor supply queries (`QC`) while plotting or paused.
    pub power_poll: Duration,
    /// Raw `QC` supply reading (V+, 10-bit ADC) under which the motors cannot be trusted to
    /// hold and move: the session reports [`Event::Power`](super::Event::Power) as low and
    /// pauses a plot ([`PauseReason::LowPower`](super::PauseReason::LowPower)). The AxiDraw
    /// software warns under 250 (reference §1.4, `QC`). `None`: never pause for it.
    pub min_voltage: Option<u16>,
    /// How long a reply may take beyond any time the command legitimately waits (a full FIFO,
    /// `CU,4` waiting for idle).
    pub reply_timeout: Duration,
}

/// Why a [`SessionConfig`] was refused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// `fifo_depth` is outside 1..=32.
    FifoDepth(u8),
    /// `button_poll` is zero or longer than 50 ms.
    ButtonPoll(Duration),
    /// `position_poll`, `queue_ahead` or `reply_timeout` is zero.
    ZeroInterval(&'static str),
    /// A servo field is zero (positions and rates must be 1..=65535).
    Servo(&'static str),
    /// The servo pin is outside 0..=7.
    ServoPin(u8),
}

impl SessionConfig {
    /// Longest allowed button poll interval.
    pub const MAX_BUTTON_POLL: Duration = Duration::from_millis(50);

    /// The AxiDraw software's set-up for `settings` (reference §4, §5.4): its servo positions,
    /// rates and wait times, `SR,60000`, deep FIFO, 200 ms queued ahead, `QS` every 250 ms,
    /// `QB` every 50 ms, pause on button, a fresh position (`EM`) at connect.
    pub fn axidraw(settings: &AxiDrawSettings) -> Self {
        let (pin, slots) = match settings.pen_lift {
            PenLift::Standard => (1, 8),
            PenLift::NarrowBand => (2, 1),
        };
        let ms = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
        Self {
            servo: ServoSetup {
                up: settings.servo_up(),
                down: settings.servo_down(),
                rate_raise: settings.servo_rate_raise(),
                rate_lower: settings.servo_rate_lower(),
                raise_ms: ms(settings.pen_raise_ms()),
                lower_ms: ms(settings.pen_lower_ms()),
                pin,
                slots: Some(slots),
            },
            resolution: settings.resolution,
            servo_timeout_ms: Some(crate::ebb::limits::SERVO_TIMEOUT_DEFAULT_MS),
            line: None,
            future_syntax: true,
            checksums: false,
            fifo_depth: FIFO_DEPTH_MAX_V3,
            queue_ahead: Duration::from_millis(200),
            position_poll: Duration::from_millis(250),
            button_poll: Self::MAX_BUTTON_POLL,
            pause_on_button: true,
            keep_position: false,
            power_poll: Duration::from_millis(2000),
            min_voltage: Some(250),
            reply_timeout: Duration::from_millis(1000),
        }
    }

    /// Checks the ranges the session relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.fifo_depth == 0 || self.fifo_depth > FIFO_DEPTH_MAX_V3 {
            return Err(ConfigError::FifoDepth(self.fifo_depth));
        }
        if self.button_poll == Duration::ZERO || self.button_poll > Self::MAX_BUTTON_POLL {
            return Err(ConfigError::ButtonPoll(self.button_poll));
        }
        for (name, d) in [
            ("position_poll", self.position_poll),
            ("power_poll", self.power_poll),
            ("queue_ahead", self.queue_ahead),
            ("reply_timeout", self.reply_timeout),
        ] {
            if d == Duration::ZERO {
                return Err(ConfigError::ZeroInterval(name));
            }
        }
        let s = &self.servo;
        for (name, v) in [
            ("up", s.up),
            ("down", s.down),
            ("rate_raise", s.rate_raise),
            ("rate_lower", s.rate_lower),
        ] {
            if v == 0 {
                return Err(ConfigError::Servo(name));
            }
        }
        if s.pin > crate::ebb::limits::MAX_SP_PIN {
            return Err(ConfigError::ServoPin(s.pin));
        }
        Ok(())
    }
}

impl Default for SessionConfig {
    /// [`SessionConfig::axidraw`] with the AxiDraw defaults.
    fn default() -> Self {
        Self::axidraw(&AxiDrawSettings::default())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FifoDepth(d) => write!(f, "FIFO depth {d} is outside 1..=32"),
            Self::ButtonPoll(d) => write!(
                f,
                "button poll interval {d} must be more than zero and at most 50 ms"
            ),
            Self::ZeroInterval(name) => write!(f, "{name} must be more than zero"),
            Self::Servo(name) => write!(f, "servo {name} must be 1..=65535"),
            Self::ServoPin(p) => write!(f, "servo pin {p} is outside 0..=7"),
        }
    }
}

impl core::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axidraw_defaults_match_the_capture() {
        let c = SessionConfig::default();
        assert_eq!(c.servo.up, 20641);
        assert_eq!(c.servo.down, 15248);
        assert_eq!(c.servo.rate_raise, 1618);
        assert_eq!(c.servo.rate_lower, 1079);
        assert_eq!(c.servo.raise_ms, 130);
        assert_eq!(c.servo.lower_ms, 146);
        assert_eq!(c.servo.pin, 1);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn validation() {
        let mut c = SessionConfig {
            fifo_depth: 33,
            ..SessionConfig::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::FifoDepth(33)));
        c.fifo_depth = 4;
        c.button_poll = Duration::from_millis(51);
        assert!(c.validate().is_err());
        c.button_poll = Duration::from_millis(20);
        c.servo.pin = 8;
        assert_eq!(c.validate(), Err(ConfigError::ServoPin(8)));
    }
}
