//! What can go wrong in a session: protocol errors reported as events ([`SessionError`]), and
//! refused calls ([`FeedError`], [`StateError`]).

use core::fmt;

use heapless::String;

use crate::ebb::{EncodeError, FirmwareError, FirmwareVersion, ReplyError};
use crate::kinematics::MotorSteps;
use crate::time::Duration;

/// Longest excerpt of an offending reply line kept in an error.
pub const REPLY_EXCERPT_CAPACITY: usize = 32;

/// An excerpt of a reply line, non-printable bytes shown as `?`.
pub type ReplyExcerpt = String<REPLY_EXCERPT_CAPACITY>;

/// A protocol failure, reported as [`Event::Error`](super::Event::Error).
///
/// After any of these the session stops feeding. Timeouts and unreadable replies make it
/// resynchronise (a `V` whose reply marks the point where replies are in step again), then stop
/// the machine like a pause; a firmware error reply stops it directly. If the board does not
/// answer at all the session ends in the failed state (see
/// [`Session::is_failed`](super::Session::is_failed)).
#[derive(Clone, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SessionError {
    /// The `V` reply does not start with `EBB`: the port is not an EiBotBoard.
    NotAnEbb {
        /// What came back.
        reply: ReplyExcerpt,
    },
    /// The `V` reply has no `Firmware Version X.Y.Z`.
    NoVersion {
        /// What came back.
        reply: ReplyExcerpt,
    },
    /// The firmware cannot be driven the way the session needs (too old, or a forced 3.x line on
    /// a 2.x board).
    UnsupportedFirmware {
        /// The board's version.
        version: FirmwareVersion,
        /// What is missing.
        reason: &'static str,
    },
    /// No complete reply to `command` within the deadline.
    Timeout {
        /// The command whose reply is missing.
        command: &'static str,
        /// How long the session waited since sending it.
        waited: Duration,
    },
    /// The firmware rejected `command` (or, for a 2.x "Major malfunction", ran it with a
    /// clamped rate).
    Firmware {
        /// The command.
        command: &'static str,
        /// The firmware's error.
        error: FirmwareError,
    },
    /// Bytes that are not the reply `command` expects (garbage, a lost line, a desynchronised
    /// stream).
    BadReply {
        /// The command whose reply was due.
        command: &'static str,
        /// What was wrong.
        error: ReplyError,
        /// The offending line.
        line: ReplyExcerpt,
    },
    /// A line arrived while no reply was due.
    Unsolicited {
        /// The line.
        line: ReplyExcerpt,
        /// The firmware error it carries, if it is an error line.
        error: Option<FirmwareError>,
    },
    /// A command could not be encoded for this firmware (a fed item outside its limits).
    Encode {
        /// The command.
        command: &'static str,
        /// Why.
        error: EncodeError,
    },
    /// The firmware's step counters are not where the session's record of executed moves puts
    /// them: a move was lost or the motors were reset behind the session's back.
    PositionMismatch {
        /// Where the session expected the motors.
        expected: MotorSteps,
        /// What `QS` reported.
        actual: MotorSteps,
    },
}

/// Why [`Session::push`](super::Session::push) refused an item. Nothing was queued.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FeedError {
    /// The feed queue is full: let the session send (poll and wait), then push again.
    Full,
    /// The session is not set up yet (wait for [`Event::Ready`](super::Event::Ready)) or has
    /// failed.
    NotReady,
    /// The session is paused or stopping: [`resume`](super::Session::resume) first.
    Paused,
    /// The item cannot be sent to this firmware as it is.
    Invalid(EncodeError),
}

/// A control call that does not apply in the session's current state.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StateError {
    /// The call.
    pub operation: &'static str,
    /// The state it was refused in.
    pub state: &'static str,
}

impl SessionError {
    /// Whether the error leaves the session unable to continue (handshake failures).
    pub const fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::NotAnEbb { .. } | Self::NoVersion { .. } | Self::UnsupportedFirmware { .. }
        )
    }
}

/// A lossy, bounded excerpt of `line`.
pub(crate) fn excerpt(line: &[u8]) -> ReplyExcerpt {
    let mut s = ReplyExcerpt::new();
    for &b in line {
        let c = if (0x20..0x7F).contains(&b) {
            char::from(b)
        } else {
            '?'
        };
        if s.push(c).is_err() {
            break;
        }
    }
    s
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnEbb { reply } => write!(
                f,
                "the device answered `V` with \"{reply}\", which is not an EiBotBoard version \
                 string; check that the port is the plotter's"
            ),
            Self::NoVersion { reply } => write!(
                f,
                "the EiBotBoard's version reply \"{reply}\" has no `Firmware Version X.Y.Z`"
            ),
            Self::UnsupportedFirmware { version, reason } => {
                write!(f, "EBB firmware {version} is not supported: {reason}")
            }
            Self::Timeout { command, waited } => write!(
                f,
                "the EiBotBoard did not answer `{command}` within {waited}; check the USB cable \
                 and the board's power"
            ),
            Self::Firmware { command, error } => {
                write!(f, "the EiBotBoard rejected `{command}`: {error}")
            }
            Self::BadReply {
                command,
                error,
                line,
            } => write!(
                f,
                "unexpected reply \"{line}\" to `{command}` ({error}); the session \
                 resynchronises and stops the plot"
            ),
            Self::Unsolicited { line, error } => {
                write!(f, "the EiBotBoard sent \"{line}\" while no reply was due")?;
                if let Some(e) = error {
                    write!(f, " ({e})")?;
                }
                Ok(())
            }
            Self::Encode { command, error } => {
                write!(f, "cannot send `{command}` to this firmware: {error}")
            }
            Self::PositionMismatch { expected, actual } => write!(
                f,
                "the motors are at steps ({}, {}) but the executed moves end at ({}, {}); \
                 position is lost, home the machine",
                actual.m1, actual.m2, expected.m1, expected.m2
            ),
        }
    }
}

impl core::error::Error for SessionError {}

impl fmt::Display for FeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => f.write_str("the session's feed queue is full; poll it and retry"),
            Self::NotReady => f.write_str("the session is not set up (or has failed)"),
            Self::Paused => f.write_str("the session is paused; resume it first"),
            Self::Invalid(e) => write!(f, "item refused: {e}"),
        }
    }
}

impl core::error::Error for FeedError {}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot {} while {}", self.operation, self.state)
    }
}

impl core::error::Error for StateError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_bounded_and_printable() {
        let e = excerpt(b"OK\x00\xFF\r");
        assert_eq!(e.as_str(), "OK???");
        let long = [b'a'; 100];
        assert_eq!(excerpt(&long).len(), REPLY_EXCERPT_CAPACITY);
    }

    #[test]
    fn messages_name_the_command() {
        let e = SessionError::Timeout {
            command: "QS",
            waited: Duration::from_millis(1000),
        };
        let text = std::format!("{e}");
        assert!(
            text.contains("`QS`") && text.contains("1.000000s"),
            "{text}"
        );
    }
}
