//! Reply formatting: the bytes the board sends back, per reply mode and version
//! (reference §1.2/§1.3). [`Io`] is the output buffer plus everything that shapes replies:
//! the reply mode, the ack flag, the current command's name and the pending error bits.
//!
//! The firmware's three line endings are `OK\r\n` (`OK` dropped when acks are off), `\r\n` and
//! the reversed `\n\r`; in 3.x "future" mode all three are `\n`. `print_command` writes the
//! command name (and a comma) first in future mode, or always for `QM`, `QU`, `PI`.

use std::io::Write as _;

use crate::version::FirmwareVersion;

/// Error bits of the firmware's `error_byte`; the bit number is the `!n` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorBit {
    /// `!1`: HM/TR step rate out of range (3.x).
    StepRate = 1,
    /// `!3`: a command longer than 255 bytes.
    RxOverrun = 3,
    /// `!4`: a required parameter is missing.
    Missing = 4,
    /// `!5` was already printed (need comma): makes the command bail, prints nothing more.
    Printed = 5,
    /// `!6`: a value out of range.
    Invalid = 6,
    /// `!7`: bytes left after the last parameter.
    Extra = 7,
}

/// The output side of the board: reply buffer, reply shaping state and error bits.
#[derive(Debug, Clone)]
pub(crate) struct Io {
    /// Bytes sent to the host, oldest first.
    pub(crate) out: Vec<u8>,
    version: FirmwareVersion,
    /// 3.x `CU,10,1`.
    pub(crate) future: bool,
    /// `CU,1`.
    pub(crate) ack: bool,
    errors: u8,
    name: [u8; 2],
    name_len: usize,
}

impl Io {
    /// Output state after power-on.
    pub(crate) fn new(version: FirmwareVersion) -> Self {
        Self {
            out: Vec::new(),
            version,
            future: false,
            ack: true,
            errors: 0,
            name: [0; 2],
            name_len: 0,
        }
    }

    /// The pending error bits.
    #[cfg(test)]
    pub(crate) fn errors(&self) -> u8 {
        self.errors
    }

    /// Sets an error bit.
    pub(crate) fn set_error(&mut self, bit: ErrorBit) {
        self.errors |= 1 << bit as u8;
    }

    /// True if any error bit is set (`if (error_byte) return;`).
    pub(crate) fn failed(&self) -> bool {
        self.errors != 0
    }

    /// Remembers the 1–2 character command name `print_command` prints.
    pub(crate) fn set_name(&mut self, c1: u8, c2: Option<u8>) {
        self.name = [c1, c2.unwrap_or(0)];
        self.name_len = if c2.is_some() { 2 } else { 1 };
    }

    /// Appends raw bytes.
    pub(crate) fn text(&mut self, s: &[u8]) {
        self.out.extend_from_slice(s);
    }

    /// Appends a formatted value.
    pub(crate) fn fmt(&mut self, args: std::fmt::Arguments<'_>) {
        // Writing into a Vec<u8> cannot fail.
        let _ = self.out.write_fmt(args);
    }

    /// `print_command(print_always, print_comma)`: the command name (future mode, or always).
    pub(crate) fn header(&mut self, always: bool, comma: bool) {
        if self.future || always {
            let len = self.name_len.min(2);
            self.out.extend_from_slice(&self.name[..len]);
            if comma {
                self.out.push(b',');
            }
        }
    }

    /// `print_line_ending(kLE_OK_NORM)`: `OK\r\n` (2.x: `OK\r\n` or nothing; 3.x legacy with acks
    /// off: `\r\n`; future: `\n`).
    pub(crate) fn ok_end(&mut self) {
        if self.future {
            self.out.push(b'\n');
        } else if self.version.is_v3() {
            if self.ack {
                self.out.extend_from_slice(b"OK");
            }
            self.out.extend_from_slice(b"\r\n");
        } else if self.ack {
            self.out.extend_from_slice(b"OK\r\n");
        }
    }

    /// `print_line_ending(kLE_NORM)`: `\r\n`, or `\n` in future mode.
    pub(crate) fn norm_end(&mut self) {
        self.out
            .extend_from_slice(if self.future { b"\n" } else { b"\r\n" });
    }

    /// `print_line_ending(kLE_REV)`: `\n\r`, or `\n` in future mode.
    pub(crate) fn rev_end(&mut self) {
        self.out
            .extend_from_slice(if self.future { b"\n" } else { b"\n\r" });
    }

    /// The data/ending pattern of most queries: legacy `data<legacy_end>` + ok line, future
    /// `data\n`. `reversed` selects `\n\r` rather than `\r\n` as the legacy data line ending.
    pub(crate) fn query_end(&mut self, reversed: bool) {
        if !self.future {
            if reversed {
                self.rev_end();
            } else {
                self.norm_end();
            }
        }
        self.ok_end();
    }

    /// Prints `!5 Err: Need comma next, found: 'X'` right away and marks the command failed.
    pub(crate) fn print_comma_error(&mut self, found: u8) {
        if self.future {
            self.out.push(b',');
        }
        self.out
            .extend_from_slice(b"!5 Err: Need comma next, found: '");
        self.out.push(found);
        self.out.push(b'\'');
        self.norm_end();
        self.set_error(ErrorBit::Printed);
    }

    /// `CheckForAndPrintErrors`: one line per set bit, in bit order, then clears them.
    /// Legacy: `!n Err: text\r\n`; future: `,!n Err: text\n` (the command name is already out).
    pub(crate) fn print_errors(&mut self) {
        let bits = std::mem::take(&mut self.errors);
        for bit in 0..8u8 {
            if bits & (1 << bit) == 0 {
                continue;
            }
            let text: &[u8] = match bit {
                0 => b"!0 ",
                1 if self.version.is_v3() => b"!1 Err: Invalid step rate",
                1 => b"!1 Err: Can't step that fast",
                2 => b"!2 Err: TX Buffer overrun",
                3 => b"!3 Err: RX Buffer overrun",
                4 => b"!4 Err: Missing parameter(s)",
                6 => b"!6 Err: Invalid parameter value",
                7 => b"!7 Err: Extra parameter",
                _ => continue,
            };
            if self.future {
                self.out.push(b',');
            }
            self.out.extend_from_slice(text);
            self.norm_end();
        }
    }

    /// `!8 Err: Unknown command 'X:58'` (or `'XY:5859'`).
    pub(crate) fn print_unknown(&mut self, c1: u8, c2: Option<u8>) {
        self.out.extend_from_slice(b"!8 Err: Unknown command '");
        self.out.push(c1);
        if let Some(c2) = c2 {
            self.out.push(c2);
        }
        self.out.push(b':');
        self.fmt(format_args!("{c1:02X}"));
        if let Some(c2) = c2 {
            self.fmt(format_args!("{c2:02X}"));
        }
        self.out.push(b'\'');
        self.norm_end();
    }

    /// Back to the power-on reply state (keeps the buffered output).
    pub(crate) fn reset(&mut self) {
        self.future = false;
        self.ack = true;
        self.errors = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings_per_mode() {
        let mut io = Io::new(FirmwareVersion::V3_0_3);
        io.set_name(b'S', Some(b'M'));
        io.header(false, false);
        io.ok_end();
        io.ack = false;
        io.ok_end();
        io.future = true;
        io.header(false, false);
        io.ok_end();
        assert_eq!(io.out, b"OK\r\n\r\nSM\n");

        let mut v2 = Io::new(FirmwareVersion::V2_8_1);
        v2.ok_end();
        v2.ack = false;
        v2.ok_end();
        v2.rev_end();
        assert_eq!(v2.out, b"OK\r\n\n\r");
    }

    #[test]
    fn errors_print_in_bit_order_then_clear() {
        let mut io = Io::new(FirmwareVersion::V3_0_3);
        io.set_error(ErrorBit::Extra);
        io.set_error(ErrorBit::Missing);
        io.print_errors();
        io.print_errors();
        assert_eq!(
            io.out,
            b"!4 Err: Missing parameter(s)\r\n!7 Err: Extra parameter\r\n"
        );
        let mut io = Io::new(FirmwareVersion::V3_0_3);
        io.future = true;
        io.set_name(b'Q', Some(b'U'));
        io.header(true, true);
        io.set_error(ErrorBit::Invalid);
        io.print_errors();
        assert_eq!(io.out, b"QU,,!6 Err: Invalid parameter value\n");
    }

    #[test]
    fn unknown_command_text() {
        let mut io = Io::new(FirmwareVersion::V2_8_1);
        io.print_unknown(b'B', None);
        io.print_unknown(b'X', Some(b'Y'));
        assert_eq!(
            io.out,
            b"!8 Err: Unknown command 'B:42'\r\n!8 Err: Unknown command 'XY:5859'\r\n"
        );
    }
}
