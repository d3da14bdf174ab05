//! The EiBotBoard wire layer (reference §1): commands, replies and line framing. No state
//! beyond one reply in progress, no I/O, no clock.
//!
//! # Commands
//!
//! [`Command`] is every host command as a typed value. [`Command::encode_with`] validates it for
//! a firmware version ([`Command::validate`]) and writes `NAME,p1,p2…\r` (plus the checksum in
//! 3.x checksum mode) into a caller's slice; [`Command::encoded_len_with`] gives the length
//! first. Validation rejects what the firmware would reject *and* what it would silently clamp,
//! ignore or mis-execute, so a command that encodes is executed as written.
//!
//! # Replies
//!
//! Bytes from the board go through a [`LineBuffer`] (CR, LF, CRLF and LFCR each end a line;
//! empty lines are dropped) and then a [`ReplyParser`], which turns lines into [`Reply`] values
//! given the [`ReplyKind`] of the command in flight ([`Command::reply_kind`]). Firmware errors
//! are replies ([`Reply::Error`]); bytes that fit no reply are a [`ReplyError`].
//!
//! # Firmware versions
//!
//! | | 3.x (3.0.3) | 2.x (2.8.1) |
//! | --- | --- | --- |
//! | reply syntax | legacy at boot, "future" after `CU,10,1` | legacy only, other padding |
//! | `SM` rate check | f32 arithmetic, exactly 25 kHz allowed | integer arithmetic, 0.763 steps/s .. 25 kHz |
//! | commands | `L3`, `T3`, `TD` (3.0.1), `QU`, `CU,4/10/54…` | `LM`/`LT` from 2.7.0, `QG`/`HM` from 2.6.2, `QE` from 2.8.0 |
//! | FIFO | 1 slot at boot, up to 32 (`CU,4`) | 1 slot |
//! | errors | printed right after the failing command | deferred to the end of the USB packet |
//!
//! [`FirmwareVersion`] parses the `V` reply and answers capability questions; [`limits`] holds
//! the numeric limits and the `SM` rate arithmetic of both lines.
//!
//! # Panic contract
//!
//! Nothing in this module panics, whatever the input: encoding writes only within the given
//! slice (a short slice is [`EncodeError::BufferTooSmall`]), and [`LineBuffer`] and
//! [`ReplyParser`] return a value or an error for any byte sequence, split anywhere, using
//! fixed memory (an over-long line is reported, never buffered). This is fuzzed (`fuzz/`) and
//! property-tested.

mod command;
mod encode;
pub mod limits;
mod line;
mod reader;
mod reply;
mod validate;
mod version;

#[cfg(test)]
mod testutil;

pub use command::*;
pub use encode::{EncodeError, EncodeOptions};
pub use line::{LineBuffer, LineTooLong};
pub use reader::ReplyParser;
pub use reply::*;
pub use version::{FirmwareVersion, VersionError};
