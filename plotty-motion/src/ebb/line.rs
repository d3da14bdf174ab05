//! [`LineBuffer`]: a byte stream in, complete reply lines out, in caller-sized storage.
//!
//! The firmware ends reply lines with `\r\n`, `\n\r`, `\n` or `\r` depending on the command and
//! the reply mode, and emits empty lines in places (reference §1.2, §6.12). The buffer treats
//! CR, LF, CRLF and LFCR each as one line ending, drops empty lines, and reports a line longer
//! than its capacity as an error (then discards the rest of that line), so its memory use is
//! fixed and no input can make it panic.

use core::fmt;

/// A reply line did not fit into the buffer; the rest of it up to the next line ending is
/// discarded.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LineTooLong {
    /// The buffer capacity in bytes.
    pub capacity: usize,
}

/// Splits a byte stream into lines with a fixed `N`-byte buffer.
///
/// Feed received bytes with [`LineBuffer::push`] in a loop until they are used up; each call
/// consumes bytes up to the end of the next complete line and returns it:
///
/// ```
/// use plotty_motion::ebb::LineBuffer;
///
/// let mut lines = LineBuffer::<64>::new();
/// let mut rest: &[u8] = b"10,-4\n\rOK\r\n";
/// let mut seen = 0;
/// while !rest.is_empty() {
///     let (tail, line) = lines.push(rest);
///     rest = tail;
///     if let Some(line) = line {
///         assert_eq!(line.unwrap(), if seen == 0 { &b"10,-4"[..] } else { b"OK" });
///         seen += 1;
///     }
/// }
/// assert_eq!(seen, 2);
/// ```
#[derive(Clone, Debug)]
pub struct LineBuffer<const N: usize> {
    buf: [u8; N],
    len: usize,
    /// The line in `buf` was handed out; clear it before taking the next byte.
    delivered: bool,
    /// The current line overflowed: drop bytes until its ending.
    overflowed: bool,
    /// The CR or LF that ended the last line, so its partner (LF or CR) right after it is
    /// swallowed as part of the same ending.
    last_ending: Option<u8>,
}

impl<const N: usize> LineBuffer<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
            delivered: false,
            overflowed: false,
            last_ending: None,
        }
    }

    /// The capacity: the longest line it can return.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Bytes of an incomplete line held so far.
    pub const fn pending(&self) -> usize {
        if self.delivered { 0 } else { self.len }
    }

    /// Forgets any partial line (for example after a timeout or a port reopen).
    pub fn clear(&mut self) {
        self.len = 0;
        self.delivered = false;
        self.overflowed = false;
        self.last_ending = None;
    }

    /// Consumes bytes from `data` up to and including the first line ending that completes a
    /// non-empty line, and returns the unconsumed rest together with that line (without its
    /// ending), or with an error if the line was too long. When `data` holds no complete line
    /// everything is consumed and the line is `None`.
    ///
    /// A returned line stays valid until the next call; every call with non-empty `data`
    /// consumes at least one byte.
    pub fn push<'d>(&mut self, data: &'d [u8]) -> (&'d [u8], Option<Result<&[u8], LineTooLong>>) {
        if self.delivered {
            self.len = 0;
            self.delivered = false;
        }
        for (index, &byte) in data.iter().enumerate() {
            let ending = byte == b'\r' || byte == b'\n';
            let previous = self.last_ending.take();
            if ending && previous.is_some_and(|p| p != byte) {
                // The second half of a CRLF or LFCR.
                continue;
            }
            let rest = data.get(index + 1..).unwrap_or(&[]);
            if ending {
                self.last_ending = Some(byte);
                if self.overflowed {
                    self.overflowed = false;
                    self.len = 0;
                    continue;
                }
                if self.len == 0 {
                    continue;
                }
                self.delivered = true;
                let line = self.buf.get(..self.len).unwrap_or(&[]);
                return (rest, Some(Ok(line)));
            }
            if self.overflowed {
                continue;
            }
            match self.buf.get_mut(self.len) {
                Some(slot) => {
                    *slot = byte;
                    self.len += 1;
                }
                None => {
                    self.overflowed = true;
                    self.len = 0;
                    return (rest, Some(Err(LineTooLong { capacity: N })));
                }
            }
        }
        (&[], None)
    }
}

impl<const N: usize> Default for LineBuffer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "reply line longer than {} bytes; the rest of the line is dropped",
            self.capacity
        )
    }
}

impl core::error::Error for LineTooLong {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every line the buffer returns for `data` fed in pieces of `chunk` bytes.
    fn lines<const N: usize>(data: &[u8], chunk: usize) -> Vec<Result<Vec<u8>, LineTooLong>> {
        let mut lb = LineBuffer::<N>::new();
        let mut out = Vec::new();
        for piece in data.chunks(chunk.max(1)) {
            let mut rest = piece;
            while !rest.is_empty() {
                let (tail, line) = lb.push(rest);
                assert!(tail.len() < rest.len(), "no progress");
                rest = tail;
                if let Some(line) = line {
                    out.push(line.map(<[u8]>::to_vec));
                }
            }
        }
        out
    }

    fn ok(lines: &[&str]) -> Vec<Result<Vec<u8>, LineTooLong>> {
        lines.iter().map(|l| Ok(l.as_bytes().to_vec())).collect()
    }

    #[test]
    fn every_line_ending_of_the_firmware() {
        // QS legacy (LFCR then CRLF), an inline rate error (LFCR + CRLF = empty line),
        // future QU with its extra blank line, CU,10,1's lone LF.
        let data = b"10,-4\n\rOK\r\n!0 Err: <axis1> step rate too high\n\r\r\nQU,5\n\n\nA\rB";
        let expected = ok(&[
            "10,-4",
            "OK",
            "!0 Err: <axis1> step rate too high",
            "QU,5",
            "A",
        ]);
        for chunk in 1..data.len() + 1 {
            assert_eq!(lines::<64>(data, chunk), expected, "chunk {chunk}");
        }
    }

    #[test]
    fn crcr_and_lflf_are_two_endings() {
        assert_eq!(lines::<8>(b"A\r\rB\n\nC\r", 1), ok(&["A", "B", "C"]));
    }

    #[test]
    fn long_line_is_an_error_then_resynchronises() {
        let got = lines::<4>(b"abcdefgh\r\nOK\r\n", 3);
        assert_eq!(
            got,
            vec![Err(LineTooLong { capacity: 4 }), Ok(b"OK".to_vec())]
        );
        // Exactly the capacity fits.
        assert_eq!(lines::<4>(b"abcd\r", 2), ok(&["abcd"]));
    }

    #[test]
    fn zero_capacity_never_panics() {
        assert_eq!(
            lines::<0>(b"a\r\r", 1),
            vec![Err(LineTooLong { capacity: 0 })]
        );
    }

    proptest! {
        /// Splitting never changes the lines, lines never hold CR/LF, never exceed the capacity
        /// and are never empty.
        #[test]
        fn split_invariance(data in proptest::collection::vec(
            prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'a'), any::<u8>()], 0..200),
            chunk in 1usize..20)
        {
            let whole = lines::<16>(&data, data.len().max(1));
            let split = lines::<16>(&data, chunk);
            prop_assert_eq!(&whole, &split);
            for line in whole.into_iter().flatten() {
                prop_assert!(!line.is_empty() && line.len() <= 16);
                prop_assert!(!line.contains(&b'\r') && !line.contains(&b'\n'));
            }
        }
    }
}
