//! Host bytes → command lines → typed parameters, exactly as the EBB's `ProcessIO` /
//! `extract_number` read them (reference §1.1).
//!
//! * [`LineFramer`]: CR or LF ends a command; further CR/LF bytes are ignored until a printable
//!   byte arrives; bytes below 0x20 other than CR/LF/BS are dropped; BS deletes the previous byte
//!   and echoes `" \b"`; a 256th byte overruns the 256-byte buffer (`!3`), which restarts empty.
//! * [`Params`]: comma-separated parameters after the 1–2 letter command name. A number is at
//!   most 10 decimal digits accumulated in a wrapping 32-bit register, then range-checked for its
//!   type; no digits at all reads as 0. Missing required → `!4`; a non-comma where a required
//!   parameter's comma should be → `!5` printed at once; a non-comma where an optional one's
//!   comma should be → silently absent (the leftover then triggers `!7`).
//! * [`verify_checksum`]: the 3.x `CU,54,1` trailing checksum.

use crate::reply::{ErrorBit, Io};

/// Size of the firmware's receive buffer: at most 255 command bytes plus the terminator.
pub(crate) const RX_BUF_SIZE: usize = 256;

const CR: u8 = 0x0D;
const LF: u8 = 0x0A;
const BS: u8 = 0x08;

/// Splits the host byte stream into command lines.
#[derive(Debug, Clone)]
pub(crate) struct LineFramer {
    buf: [u8; RX_BUF_SIZE],
    len: usize,
    /// A CR/LF ended the last command and no printable byte came since.
    in_cr: bool,
}

/// What one host byte did to the framer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ByteEvent {
    /// Nothing visible (byte stored, dropped or swallowed).
    None,
    /// A command line is complete: read it with [`LineFramer::line`], then call
    /// [`LineFramer::clear`].
    Line,
    /// A backspace deleted a byte: the firmware echoes `" \b"`.
    Backspace,
    /// The buffer overran (`!3`) and was emptied.
    Overrun,
}

impl LineFramer {
    /// An empty framer, as after power-on (the first CR/LF ends an empty command).
    pub(crate) fn new() -> Self {
        Self {
            buf: [0; RX_BUF_SIZE],
            len: 0,
            in_cr: false,
        }
    }

    /// Feeds one byte.
    pub(crate) fn push(&mut self, byte: u8) -> ByteEvent {
        if !self.in_cr && (byte == CR || byte == LF) {
            self.in_cr = true;
            return ByteEvent::Line;
        }
        if byte == BS && self.len > 0 {
            self.len -= 1;
            return ByteEvent::Backspace;
        }
        if byte != CR && byte != LF && byte >= 0x20 {
            // `len < RX_BUF_SIZE` holds: it is reset to 0 as soon as it reaches the size.
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = byte;
            }
            self.len += 1;
            self.in_cr = false;
            if self.len >= RX_BUF_SIZE {
                self.len = 0;
                return ByteEvent::Overrun;
            }
        }
        ByteEvent::None
    }

    /// The completed command line, without its terminator.
    pub(crate) fn line(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Starts the next command.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Back to the power-on state (USB re-enumeration after `RB`).
    pub(crate) fn reset(&mut self) {
        self.len = 0;
        self.in_cr = false;
    }
}

/// The integer (or character) types `extract_number` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    /// Signed 8-bit (−128..127).
    Char,
    /// Unsigned 8-bit (0..255).
    UChar,
    /// Signed 16-bit (−32768..32767).
    Int,
    /// Unsigned 16-bit (0..65535).
    UInt,
    /// Signed 32-bit.
    Long,
    /// Unsigned 32-bit (10 digits wrap modulo 2^32 unchecked).
    ULong,
    /// One raw byte.
    Ascii,
    /// One byte, upper-cased.
    UcaseAscii,
}

/// Whether a parameter must be present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Absent → `!4`; a non-comma in its place → `!5`.
    Required,
    /// Absent or not preceded by a comma → quietly absent.
    Optional,
}

/// The outcome of one parameter extraction (`ExtractReturnType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ext {
    /// The value (sign-extended for signed types, raw for unsigned ones).
    Ok(i64),
    /// End of command reached.
    Missing,
    /// The next byte is not a comma.
    CommaMissing,
    /// Out of range for the type, or a `-` on an unsigned type.
    Invalid,
}

impl Ext {
    /// The value, if extraction succeeded.
    pub(crate) fn ok(self) -> Option<i64> {
        match self {
            Self::Ok(v) => Some(v),
            _ => None,
        }
    }

    /// True if extraction succeeded.
    pub(crate) fn is_ok(self) -> bool {
        matches!(self, Self::Ok(_))
    }
}

/// The parameters of one command line, read left to right.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    line: [u8; RX_BUF_SIZE],
    len: usize,
    pos: usize,
}

impl Params {
    /// Parameters of `line` (at most [`RX_BUF_SIZE`] bytes are kept) starting at byte `start`.
    pub(crate) fn new(line: &[u8], start: usize) -> Self {
        let mut buf = [0; RX_BUF_SIZE];
        let len = line.len().min(RX_BUF_SIZE);
        buf[..len].copy_from_slice(&line[..len]);
        Self {
            line: buf,
            len,
            pos: start.min(len),
        }
    }

    /// The byte at the read position (`None` at the end of the command).
    fn peek(&self) -> Option<u8> {
        if self.pos < self.len {
            self.line.get(self.pos).copied()
        } else {
            None
        }
    }

    /// True if unread bytes remain (the firmware's "extra parameter" check).
    pub(crate) fn has_leftover(&self) -> bool {
        self.pos < self.len
    }

    /// Extracts one parameter, setting error bits (and printing `!5` immediately) in `io`.
    pub(crate) fn extract(&mut self, io: &mut Io, ty: Ty, need: Need) -> Ext {
        let Some(first) = self.peek() else {
            if need == Need::Required {
                io.set_error(ErrorBit::Missing);
            }
            return Ext::Missing;
        };
        if first != b',' {
            if need == Need::Required {
                io.print_comma_error(first);
            }
            return Ext::CommaMissing;
        }
        self.pos += 1;
        let Some(next) = self.peek() else {
            if need == Need::Required {
                io.set_error(ErrorBit::Missing);
            }
            return Ext::Missing;
        };
        let is_char = matches!(ty, Ty::Ascii | Ty::UcaseAscii);
        let mut negative = false;
        if next == b'-' && !is_char {
            if matches!(ty, Ty::UChar | Ty::UInt | Ty::ULong) {
                io.set_error(ErrorBit::Invalid);
                return Ext::Invalid;
            }
            negative = true;
            self.pos += 1;
        }
        let acc: u32 = if is_char {
            self.pos += 1;
            u32::from(if ty == Ty::UcaseAscii {
                next.to_ascii_uppercase()
            } else {
                next
            })
        } else {
            let mut acc = 0u32;
            for _ in 0..10 {
                match self.peek() {
                    Some(d @ b'0'..=b'9') => {
                        acc = acc.wrapping_mul(10).wrapping_add(u32::from(d - b'0'));
                        self.pos += 1;
                    }
                    _ => break,
                }
            }
            acc
        };
        let limit = match (negative, ty) {
            (true, Ty::Char) => Some(128),
            (true, Ty::Int) => Some(32768),
            (true, Ty::Long) => Some(0x8000_0000),
            (false, Ty::Char) => Some(127),
            (false, Ty::UChar) => Some(255),
            (false, Ty::Int) => Some(32767),
            (false, Ty::UInt) => Some(65535),
            (false, Ty::Long) => Some(0x7FFF_FFFF),
            _ => None,
        };
        if limit.is_some_and(|l| acc > l) {
            io.set_error(ErrorBit::Invalid);
            return Ext::Invalid;
        }
        let value = if negative {
            -i64::from(acc)
        } else {
            i64::from(acc)
        };
        Ext::Ok(value)
    }

    /// `extract_string`: up to `max` bytes after a comma, stopping at the next comma or the end.
    pub(crate) fn string(&mut self, io: &mut Io, max: usize) -> Vec<u8> {
        let Some(first) = self.peek() else {
            io.set_error(ErrorBit::Missing);
            return Vec::new();
        };
        if first != b',' {
            io.print_comma_error(first);
            return Vec::new();
        }
        self.pos += 1;
        let mut s = Vec::with_capacity(max);
        while let Some(b) = self.peek() {
            if b == b',' || s.len() >= max {
                break;
            }
            s.push(b);
            self.pos += 1;
        }
        s
    }

    /// Typed shorthands: the value if extraction succeeded.
    pub(crate) fn u8(&mut self, io: &mut Io, need: Need) -> Option<u8> {
        self.extract(io, Ty::UChar, need)
            .ok()
            .and_then(|v| u8::try_from(v).ok())
    }

    /// A `UINT` parameter.
    pub(crate) fn u16(&mut self, io: &mut Io, need: Need) -> Option<u16> {
        self.extract(io, Ty::UInt, need)
            .ok()
            .and_then(|v| u16::try_from(v).ok())
    }

    /// An `INT` parameter.
    pub(crate) fn i16(&mut self, io: &mut Io, need: Need) -> Option<i16> {
        self.extract(io, Ty::Int, need)
            .ok()
            .and_then(|v| i16::try_from(v).ok())
    }

    /// A `LONG` parameter.
    pub(crate) fn i32(&mut self, io: &mut Io, need: Need) -> Option<i32> {
        self.extract(io, Ty::Long, need)
            .ok()
            .and_then(|v| i32::try_from(v).ok())
    }

    /// A `ULONG` parameter.
    pub(crate) fn u32(&mut self, io: &mut Io, need: Need) -> Option<u32> {
        self.extract(io, Ty::ULong, need)
            .ok()
            .and_then(|v| u32::try_from(v).ok())
    }
}

/// Why a 3.x checksum check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChecksumError {
    /// No comma within the last six bytes: `!10`.
    NotFound,
    /// The checksum does not match; the payload's checksum is `expected`: `!9`.
    Incorrect {
        /// Two's complement of the 8-bit sum of the bytes before the last comma.
        expected: u8,
    },
}

/// Checks a `CU,54,1` line: the last comma (searched at most 5 bytes back from the end) is
/// followed by the two's complement of the 8-bit sum of every byte before it. Returns the
/// length of the payload (the line up to that comma). `io` receives the error bits the
/// firmware's `UCHAR` extraction of the checksum sets (`!6` for a sign or a value over 255).
pub(crate) fn verify_checksum(line: &[u8], io: &mut Io) -> Result<usize, ChecksumError> {
    if line.is_empty() {
        return Err(ChecksumError::NotFound);
    }
    let mut ptr = line.len() - 1;
    let mut scanned = 0;
    while line.get(ptr) != Some(&b',') && scanned < 5 && ptr != 0 {
        ptr -= 1;
        scanned += 1;
    }
    if line.get(ptr) != Some(&b',') {
        return Err(ChecksumError::NotFound);
    }
    let mut p = Params::new(line, ptr);
    let given = p.extract(io, Ty::UChar, Need::Required).ok().unwrap_or(0);
    let sum = line[..ptr].iter().fold(0u8, |s, b| s.wrapping_add(*b));
    let expected = sum.wrapping_neg();
    if i64::from(expected) == given {
        Ok(ptr)
    } else {
        Err(ChecksumError::Incorrect { expected })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::FirmwareVersion;
    use proptest::prelude::*;

    fn io() -> Io {
        Io::new(FirmwareVersion::V3_0_3)
    }

    fn frame(bytes: &[u8]) -> (Vec<Vec<u8>>, Vec<ByteEvent>) {
        let mut f = LineFramer::new();
        let mut lines = Vec::new();
        let mut events = Vec::new();
        for &b in bytes {
            let e = f.push(b);
            if e == ByteEvent::Line {
                lines.push(f.line().to_vec());
                f.clear();
            } else if e != ByteEvent::None {
                events.push(e);
            }
        }
        (lines, events)
    }

    #[test]
    fn crlf_counts_once_and_blank_lines_collapse() {
        let (lines, _) = frame(b"V\r\nQS\n\r\r\nQG\r");
        assert_eq!(lines, vec![b"V".to_vec(), b"QS".to_vec(), b"QG".to_vec()]);
        // At power-on a lone terminator ends an empty command.
        let (lines, _) = frame(b"\r\nV\r");
        assert_eq!(lines, vec![Vec::new(), b"V".to_vec()]);
    }

    #[test]
    fn control_bytes_dropped_backspace_edits() {
        let (lines, events) = frame(b"Q\x01\x07S\x1bX\x08\r");
        assert_eq!(lines, vec![b"QS".to_vec()]);
        assert_eq!(events, vec![ByteEvent::Backspace]);
        // Backspace on an empty buffer is dropped silently.
        let (lines, events) = frame(b"\x08V\r");
        assert_eq!(lines, vec![b"V".to_vec()]);
        assert!(events.is_empty());
    }

    #[test]
    fn the_256th_byte_overruns() {
        let mut long = vec![b'A'; 255];
        long.push(b'\r');
        let (lines, events) = frame(&long);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), 255);
        assert!(events.is_empty());
        let mut longer = vec![b'A'; 256];
        longer.extend_from_slice(b"QS\r");
        let (lines, events) = frame(&longer);
        assert_eq!(events, vec![ByteEvent::Overrun]);
        assert_eq!(lines, vec![b"QS".to_vec()]);
    }

    #[test]
    fn number_types_and_ranges() {
        let mut io = io();
        let mut p = Params::new(b",255,256,-1,-32768,32768,-2147483648,2147483648", 0);
        assert_eq!(p.extract(&mut io, Ty::UChar, Need::Required), Ext::Ok(255));
        assert_eq!(p.extract(&mut io, Ty::UChar, Need::Required), Ext::Invalid);
        assert_eq!(p.extract(&mut io, Ty::Char, Need::Required), Ext::Ok(-1));
        assert_eq!(p.extract(&mut io, Ty::Int, Need::Required), Ext::Ok(-32768));
        assert_eq!(p.extract(&mut io, Ty::Int, Need::Required), Ext::Invalid);
        assert_eq!(
            p.extract(&mut io, Ty::Long, Need::Required),
            Ext::Ok(-2_147_483_648)
        );
        assert_eq!(p.extract(&mut io, Ty::Long, Need::Required), Ext::Invalid);
        assert!(io.errors() & (1 << 6) != 0);
    }

    #[test]
    fn ten_digits_wrap_and_eleventh_is_left_over() {
        let mut io = io();
        let mut p = Params::new(b",4294967296,12345678901", 0);
        assert_eq!(p.extract(&mut io, Ty::ULong, Need::Required), Ext::Ok(0));
        assert_eq!(
            p.extract(&mut io, Ty::ULong, Need::Required),
            Ext::Ok(1_234_567_890)
        );
        assert!(p.has_leftover());
        // 9999999999 wraps to 1410065407, which a LONG accepts.
        let mut p = Params::new(b",9999999999", 0);
        assert_eq!(
            p.extract(&mut io, Ty::Long, Need::Required),
            Ext::Ok(1_410_065_407)
        );
    }

    #[test]
    fn missing_comma_and_sign_rules() {
        let mut io = io();
        let mut p = Params::new(b"", 0);
        assert_eq!(p.extract(&mut io, Ty::UInt, Need::Optional), Ext::Missing);
        assert_eq!(io.errors(), 0);
        assert_eq!(p.extract(&mut io, Ty::UInt, Need::Required), Ext::Missing);
        assert_eq!(io.errors(), 1 << 4);
        let mut io = self::io();
        let mut p = Params::new(b";5", 0);
        assert_eq!(
            p.extract(&mut io, Ty::UInt, Need::Optional),
            Ext::CommaMissing
        );
        assert!(io.out.is_empty());
        assert_eq!(
            p.extract(&mut io, Ty::UInt, Need::Required),
            Ext::CommaMissing
        );
        assert_eq!(io.out, b"!5 Err: Need comma next, found: ';'\r\n");
        let mut io = self::io();
        let mut p = Params::new(b",-5", 0);
        assert_eq!(p.extract(&mut io, Ty::UInt, Need::Required), Ext::Invalid);
        // No digits read as zero.
        let mut p = Params::new(b",,7", 0);
        assert_eq!(p.extract(&mut io, Ty::UInt, Need::Required), Ext::Ok(0));
        assert_eq!(p.extract(&mut io, Ty::UInt, Need::Required), Ext::Ok(7));
    }

    #[test]
    fn checksum_examples_of_the_reference() {
        let mut io = io();
        assert_eq!(verify_checksum(b"SM,1000,1000,1000,153", &mut io), Ok(17));
        assert_eq!(verify_checksum(b"CU,54,0,119", &mut io), Ok(7));
        assert_eq!(verify_checksum(b"V,170", &mut io), Ok(1));
        assert_eq!(
            verify_checksum(b"V,100", &mut io),
            Err(ChecksumError::Incorrect { expected: 170 })
        );
        assert_eq!(verify_checksum(b"V", &mut io), Err(ChecksumError::NotFound));
        // The comma must be within the last six bytes.
        assert_eq!(
            verify_checksum(b"SM,1,123456", &mut io),
            Err(ChecksumError::NotFound)
        );
    }

    proptest! {
        #[test]
        fn framer_never_panics_and_lines_fit(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut f = LineFramer::new();
            for b in bytes {
                if f.push(b) == ByteEvent::Line {
                    prop_assert!(f.line().len() < RX_BUF_SIZE);
                    prop_assert!(f.line().iter().all(|&c| c >= 0x20));
                    f.clear();
                }
            }
        }

        #[test]
        fn extraction_is_total(line in proptest::collection::vec(any::<u8>(), 0..300), start in 0usize..300) {
            let mut io = io();
            let mut p = Params::new(&line, start);
            for ty in [Ty::Char, Ty::UChar, Ty::Int, Ty::UInt, Ty::Long, Ty::ULong, Ty::Ascii, Ty::UcaseAscii] {
                let _ = p.extract(&mut io, ty, Need::Required);
                let _ = p.extract(&mut io, ty, Need::Optional);
            }
            let _ = p.string(&mut io, 16);
            let _ = verify_checksum(&line, &mut io);
        }

        #[test]
        fn decimal_round_trip(v in any::<i32>(), u in any::<u32>()) {
            let mut io = io();
            let text = format!(",{v},{u}");
            let mut p = Params::new(text.as_bytes(), 0);
            prop_assert_eq!(p.extract(&mut io, Ty::Long, Need::Required), Ext::Ok(i64::from(v)));
            prop_assert_eq!(p.extract(&mut io, Ty::ULong, Need::Required), Ext::Ok(i64::from(u)));
            prop_assert!(!p.has_leftover());
        }
    }
}
