//! The EiBotBoard text protocol (reference §1): commands, replies, line framing. No state, no I/O.
//!
//! Commands are typed values ([`Command`]) that encode into a caller's byte slice. Replies are
//! parsed line by line; parsing is total: any bytes give a value or an error, never a panic.

mod command;

pub use command::*;
