//! In-memory virtual serial port: a pair of bounded pipes joined into two duplex ends.
//!
//! One end is handed to the host (a driver written against `embedded_io`), the other to the
//! simulated board. It behaves like a USB serial line seen from user space:
//!
//! - `read` blocks until at least one byte is there, then returns what is buffered (short reads
//!   are normal) and never loses a byte;
//! - `write` blocks while the pipe is full (back-pressure: a board that stopped servicing USB
//!   stalls the host's writes) and returns short when only part of the buffer fits;
//! - when the other end is dropped, reads return the bytes still buffered and then
//!   [`PortError::Disconnected`], and writes fail at once with it (the device vanished).
//!
//! Both ends are `Send`; each may be used from its own thread (std `Mutex` + `Condvar`) and, with
//! the `async` feature, from any executor (wakers are stored per direction, like embassy-sync's
//! `Pipe`). One reader and one writer per direction: a second task waiting on the same end
//! replaces the first one's waker.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

/// Default capacity of each direction, in bytes.
pub const DEFAULT_CAPACITY: usize = 256;

/// One end of a virtual serial line. Create both ends with [`VirtualPort::pair`].
#[derive(Debug)]
pub struct VirtualPort {
    /// Bytes coming to this end.
    rx: Arc<Pipe>,
    /// Bytes leaving this end.
    tx: Arc<Pipe>,
    /// Longest a blocking `read` waits before failing with [`PortError::TimedOut`].
    read_timeout: Option<Duration>,
}

/// Why a virtual port operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    /// The other end was dropped: the device vanished (or the host closed the line).
    #[error(
        "the other end of the virtual serial line was closed (device vanished); reopen the port"
    )]
    Disconnected,
    /// No byte arrived within the read timeout set with [`VirtualPort::set_read_timeout`].
    #[error("no byte arrived on the virtual serial line within the read timeout")]
    TimedOut,
}

/// A wake-up handle for a [`VirtualPort`], usable from another thread: it ends a
/// [`VirtualPort::wait_readable`] or [`VirtualPort::wait_writable`] early without moving a byte
/// (used to stop a runner thread).
#[derive(Debug, Clone)]
pub struct PortInterrupt {
    rx: Arc<Pipe>,
    tx: Arc<Pipe>,
}

/// What [`VirtualPort::wait_readable`] or [`VirtualPort::wait_writable`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// At least one byte can be read (or written) without blocking, or the other end is gone
    /// (the next call reports it).
    Ready,
    /// The timeout passed with nothing to read.
    TimedOut,
    /// A [`PortInterrupt`] fired.
    Interrupted,
}

/// One direction of the line.
#[derive(Debug)]
struct Pipe {
    state: Mutex<PipeState>,
    /// Signalled when bytes arrive, the writer goes away or an interrupt fires.
    readable: Condvar,
    /// Signalled when space frees up, the reader goes away or an interrupt fires.
    writable: Condvar,
}

#[derive(Debug)]
struct PipeState {
    buf: VecDeque<u8>,
    capacity: usize,
    reader_open: bool,
    writer_open: bool,
    /// Set by [`PortInterrupt::interrupt`], consumed by the next wait on this pipe (sticky, so
    /// an interrupt raised just before the wait starts is not lost).
    interrupted: bool,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

/// Result of one non-blocking attempt, shared by the blocking and the async paths.
enum Attempt {
    Done(usize),
    WouldBlock,
}

impl VirtualPort {
    /// Creates the two ends of a line whose directions each buffer `capacity` bytes (at least 1).
    /// Bytes written to one end are read from the other.
    pub fn pair(capacity: usize) -> (Self, Self) {
        Self::pair_with(capacity, capacity)
    }

    /// Like [`pair`](Self::pair) with a capacity per direction: `a_to_b` bytes from the first
    /// end to the second, `b_to_a` back (e.g. a small host-to-board buffer for back-pressure and
    /// a large board-to-host one, as an operating system buffers received bytes).
    pub fn pair_with(a_to_b: usize, b_to_a: usize) -> (Self, Self) {
        let a_to_b = Arc::new(Pipe::new(a_to_b));
        let b_to_a = Arc::new(Pipe::new(b_to_a));
        let a = Self {
            rx: Arc::clone(&b_to_a),
            tx: Arc::clone(&a_to_b),
            read_timeout: None,
        };
        let b = Self {
            rx: a_to_b,
            tx: b_to_a,
            read_timeout: None,
        };
        (a, b)
    }

    /// Makes blocking reads fail with [`PortError::TimedOut`] after `timeout` without a byte
    /// (`None`, the default, waits forever, as the embedded-io contract describes).
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    /// Bytes that can be read right now without blocking.
    pub fn available(&self) -> usize {
        self.rx.lock().buf.len()
    }

    /// Reads whatever is buffered without blocking (0 if nothing is). Fails with
    /// [`PortError::Disconnected`] only when nothing is buffered and the other end is gone.
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<usize, PortError> {
        match self.rx.try_read(buf)? {
            Attempt::Done(n) => Ok(n),
            Attempt::WouldBlock => Ok(0),
        }
    }

    /// Writes as much of `bytes` as fits without blocking (possibly 0).
    pub fn try_write(&mut self, bytes: &[u8]) -> Result<usize, PortError> {
        match self.tx.try_write(bytes)? {
            Attempt::Done(n) => Ok(n),
            Attempt::WouldBlock => Ok(0),
        }
    }

    /// Waits until a byte can be read, `timeout` passes (`None` = no limit) or a
    /// [`PortInterrupt`] fires. A closed other end counts as readable (the read reports it).
    pub fn wait_readable(&self, timeout: Option<Duration>) -> Readiness {
        self.rx.wait_readable(timeout)
    }

    /// Waits until a byte can be written, `timeout` passes (`None` = no limit) or a
    /// [`PortInterrupt`] fires. A closed other end counts as ready (the write reports it).
    pub fn wait_writable(&self, timeout: Option<Duration>) -> Readiness {
        self.tx.wait_writable(timeout)
    }

    /// A handle that wakes this end's waits from another thread.
    pub fn interrupt_handle(&self) -> PortInterrupt {
        PortInterrupt {
            rx: Arc::clone(&self.rx),
            tx: Arc::clone(&self.tx),
        }
    }

    /// Whether the other end is still there.
    pub fn is_connected(&self) -> bool {
        self.tx.lock().reader_open && self.rx.lock().writer_open
    }
}

impl PortInterrupt {
    /// Wakes the port's current [`VirtualPort::wait_readable`] and
    /// [`VirtualPort::wait_writable`], or the next ones if none is waiting.
    pub fn interrupt(&self) {
        self.rx.lock().interrupted = true;
        self.rx.readable.notify_all();
        self.tx.lock().interrupted = true;
        self.tx.writable.notify_all();
    }
}

impl Pipe {
    fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            state: Mutex::new(PipeState {
                buf: VecDeque::with_capacity(capacity),
                capacity,
                reader_open: true,
                writer_open: true,
                interrupted: false,
                read_waker: None,
                write_waker: None,
            }),
            readable: Condvar::new(),
            writable: Condvar::new(),
        }
    }

    /// Locks the state. A panic while holding the lock cannot leave the byte queue half-updated
    /// (every update is a single VecDeque call), so a poisoned lock is still consistent.
    fn lock(&self) -> MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn try_read(&self, buf: &mut [u8]) -> Result<Attempt, PortError> {
        let mut state = self.lock();
        if buf.is_empty() {
            return Ok(Attempt::Done(0));
        }
        if state.buf.is_empty() {
            return if state.writer_open {
                Ok(Attempt::WouldBlock)
            } else {
                Err(PortError::Disconnected)
            };
        }
        let n = buf.len().min(state.buf.len());
        for (dst, src) in buf.iter_mut().zip(state.buf.drain(..n)) {
            *dst = src;
        }
        let waker = state.write_waker.take();
        drop(state);
        self.writable.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(Attempt::Done(n))
    }

    fn try_write(&self, bytes: &[u8]) -> Result<Attempt, PortError> {
        let mut state = self.lock();
        if !state.reader_open {
            return Err(PortError::Disconnected);
        }
        if bytes.is_empty() {
            return Ok(Attempt::Done(0));
        }
        let space = state.capacity - state.buf.len();
        if space == 0 {
            return Ok(Attempt::WouldBlock);
        }
        let n = space.min(bytes.len());
        state.buf.extend(bytes.iter().take(n));
        let waker = state.read_waker.take();
        drop(state);
        self.readable.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(Attempt::Done(n))
    }

    fn read_blocking(&self, buf: &mut [u8], timeout: Option<Duration>) -> Result<usize, PortError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Attempt::Done(n) = self.try_read(buf)? {
                return Ok(n);
            }
            let state = self.lock();
            if state.buf.is_empty() && state.writer_open {
                match deadline {
                    None => drop(
                        self.readable
                            .wait(state)
                            .unwrap_or_else(PoisonError::into_inner),
                    ),
                    Some(deadline) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return Err(PortError::TimedOut);
                        }
                        drop(
                            self.readable
                                .wait_timeout(state, left)
                                .unwrap_or_else(PoisonError::into_inner),
                        );
                    }
                }
            }
        }
    }

    fn write_blocking(&self, bytes: &[u8]) -> Result<usize, PortError> {
        loop {
            if let Attempt::Done(n) = self.try_write(bytes)? {
                return Ok(n);
            }
            let state = self.lock();
            if state.reader_open && state.buf.len() >= state.capacity {
                drop(
                    self.writable
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner),
                );
            }
        }
    }

    fn wait_readable(&self, timeout: Option<Duration>) -> Readiness {
        self.wait_until(&self.readable, timeout, |s| {
            !s.buf.is_empty() || !s.writer_open
        })
    }

    fn wait_writable(&self, timeout: Option<Duration>) -> Readiness {
        self.wait_until(&self.writable, timeout, |s| {
            s.buf.len() < s.capacity || !s.reader_open
        })
    }

    /// Waits on `condvar` until `ready`, an interrupt or the timeout.
    fn wait_until(
        &self,
        condvar: &Condvar,
        timeout: Option<Duration>,
        ready: impl Fn(&PipeState) -> bool,
    ) -> Readiness {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = self.lock();
        loop {
            if std::mem::take(&mut state.interrupted) {
                return Readiness::Interrupted;
            }
            if ready(&state) {
                return Readiness::Ready;
            }
            state = match deadline {
                None => condvar.wait(state).unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Readiness::TimedOut;
                    }
                    condvar
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    fn close_reader(&self) {
        let mut state = self.lock();
        state.reader_open = false;
        let waker = state.write_waker.take();
        drop(state);
        self.writable.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn close_writer(&self) {
        let mut state = self.lock();
        state.writer_open = false;
        let waker = state.read_waker.take();
        drop(state);
        self.readable.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    #[cfg(feature = "async")]
    fn poll_read(
        &self,
        cx: &mut core::task::Context<'_>,
        buf: &mut [u8],
    ) -> core::task::Poll<Result<usize, PortError>> {
        use core::task::Poll;
        match self.try_read(buf) {
            Ok(Attempt::Done(n)) => Poll::Ready(Ok(n)),
            Err(e) => Poll::Ready(Err(e)),
            Ok(Attempt::WouldBlock) => {
                let mut state = self.lock();
                // Re-check under the lock: a write between the attempt and here must not be missed.
                if !state.buf.is_empty() || !state.writer_open {
                    drop(state);
                    cx.waker().wake_by_ref();
                } else {
                    state.read_waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    #[cfg(feature = "async")]
    fn poll_write(
        &self,
        cx: &mut core::task::Context<'_>,
        bytes: &[u8],
    ) -> core::task::Poll<Result<usize, PortError>> {
        use core::task::Poll;
        match self.try_write(bytes) {
            Ok(Attempt::Done(n)) => Poll::Ready(Ok(n)),
            Err(e) => Poll::Ready(Err(e)),
            Ok(Attempt::WouldBlock) => {
                let mut state = self.lock();
                if state.buf.len() < state.capacity || !state.reader_open {
                    drop(state);
                    cx.waker().wake_by_ref();
                } else {
                    state.write_waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for VirtualPort {
    fn drop(&mut self) {
        self.rx.close_reader();
        self.tx.close_writer();
    }
}

impl embedded_io::Error for PortError {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self {
            Self::Disconnected => embedded_io::ErrorKind::BrokenPipe,
            Self::TimedOut => embedded_io::ErrorKind::TimedOut,
        }
    }
}

impl embedded_io::ErrorType for VirtualPort {
    type Error = PortError;
}

impl embedded_io::Read for VirtualPort {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, PortError> {
        self.rx.read_blocking(buf, self.read_timeout)
    }
}

impl embedded_io::Write for VirtualPort {
    fn write(&mut self, bytes: &[u8]) -> Result<usize, PortError> {
        self.tx.write_blocking(bytes)
    }

    /// Bytes in the pipe have reached the device (as bytes handed to a USB driver have), so
    /// there is nothing to wait for; fails only if the device is gone.
    fn flush(&mut self) -> Result<(), PortError> {
        if self.tx.lock().reader_open {
            Ok(())
        } else {
            Err(PortError::Disconnected)
        }
    }
}

impl embedded_io::ReadReady for VirtualPort {
    /// `true` when a byte is buffered; an error when nothing is buffered and the other end is gone.
    fn read_ready(&mut self) -> Result<bool, PortError> {
        let state = self.rx.lock();
        if !state.buf.is_empty() {
            Ok(true)
        } else if state.writer_open {
            Ok(false)
        } else {
            Err(PortError::Disconnected)
        }
    }
}

impl embedded_io::WriteReady for VirtualPort {
    fn write_ready(&mut self) -> Result<bool, PortError> {
        let state = self.tx.lock();
        if state.reader_open {
            Ok(state.buf.len() < state.capacity)
        } else {
            Err(PortError::Disconnected)
        }
    }
}

#[cfg(feature = "async")]
impl embedded_io_async::Read for VirtualPort {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, PortError> {
        core::future::poll_fn(|cx| self.rx.poll_read(cx, buf)).await
    }
}

#[cfg(feature = "async")]
impl embedded_io_async::Write for VirtualPort {
    async fn write(&mut self, bytes: &[u8]) -> Result<usize, PortError> {
        core::future::poll_fn(|cx| self.tx.poll_write(cx, bytes)).await
    }

    async fn flush(&mut self) -> Result<(), PortError> {
        embedded_io::Write::flush(self)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread;

    use embedded_io::{Read, ReadReady, Write, WriteReady};

    use super::*;

    #[test]
    fn bytes_cross_in_order_both_ways() {
        let (mut host, mut board) = VirtualPort::pair(16);
        host.write_all(b"V\r").unwrap();
        let mut buf = [0u8; 8];
        let n = board.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"V\r");
        board.write_all(b"OK\r\n").unwrap();
        let n = host.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"OK\r\n");
    }

    #[test]
    fn short_reads_lose_nothing() {
        let (mut host, mut board) = VirtualPort::pair(64);
        host.write_all(b"abcdefghij").unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 3];
        while out.len() < 10 {
            let n = board.read(&mut buf).unwrap();
            assert!((1..=3).contains(&n));
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, b"abcdefghij");
        assert_eq!(board.available(), 0);
    }

    #[test]
    fn write_returns_short_when_nearly_full() {
        let (mut host, mut board) = VirtualPort::pair_with(4, 100);
        assert_eq!(board.write(&[0; 200]).unwrap(), 100);
        assert_eq!(host.write(b"abcdef").unwrap(), 4);
        assert!(!host.write_ready().unwrap());
        assert_eq!(host.try_write(b"x").unwrap(), 0);
    }

    #[test]
    fn full_pipe_blocks_the_writer_until_the_reader_drains() {
        let (mut host, mut board) = VirtualPort::pair(4);
        let (done_tx, done_rx) = mpsc::channel();
        let writer = thread::spawn(move || {
            host.write_all(b"0123456789").unwrap();
            done_tx.send(()).unwrap();
            host
        });
        while board.available() < 4 {
            thread::yield_now();
        }
        // Only 4 bytes fit: the writer cannot have finished before we read anything.
        assert_eq!(board.available(), 4);
        assert!(done_rx.try_recv().is_err(), "writer was not held back");
        let mut got = Vec::new();
        let mut buf = [0u8; 2];
        while got.len() < 10 {
            let n = board.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
            assert!(board.available() <= 4, "capacity exceeded");
        }
        assert_eq!(got, b"0123456789");
        writer.join().unwrap();
    }

    #[test]
    fn writer_blocked_on_full_pipe_fails_when_reader_drops() {
        let (mut host, board) = VirtualPort::pair(2);
        let (started_tx, started_rx) = mpsc::channel();
        let writer = thread::spawn(move || {
            started_tx.send(()).unwrap();
            host.write_all(b"0123456789")
        });
        started_rx.recv().unwrap();
        drop(board);
        assert_eq!(writer.join().unwrap(), Err(PortError::Disconnected));
    }

    #[test]
    fn dropped_peer_delivers_buffered_bytes_then_errors() {
        let (mut host, mut board) = VirtualPort::pair(8);
        board.write_all(b"OK").unwrap();
        drop(board);
        assert!(!host.is_connected());
        let mut buf = [0u8; 8];
        assert_eq!(host.read(&mut buf).unwrap(), 2);
        assert_eq!(host.read(&mut buf), Err(PortError::Disconnected));
        assert_eq!(host.read_ready(), Err(PortError::Disconnected));
        assert_eq!(host.write(b"V\r"), Err(PortError::Disconnected));
        assert_eq!(host.flush(), Err(PortError::Disconnected));
        assert_eq!(
            embedded_io::Error::kind(&PortError::Disconnected),
            embedded_io::ErrorKind::BrokenPipe
        );
    }

    #[test]
    fn blocked_reader_wakes_when_peer_drops() {
        let (mut host, board) = VirtualPort::pair(8);
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 8];
            host.read(&mut buf)
        });
        drop(board);
        assert_eq!(reader.join().unwrap(), Err(PortError::Disconnected));
    }

    #[test]
    fn empty_buffers_never_block() {
        let (mut host, _board) = VirtualPort::pair(1);
        assert_eq!(host.read(&mut []).unwrap(), 0);
        assert_eq!(host.write(&[]).unwrap(), 0);
        assert!(!host.read_ready().unwrap());
        assert!(host.write_ready().unwrap());
    }

    #[test]
    fn read_timeout_and_interrupts() {
        let (mut host, _board) = VirtualPort::pair(4);
        host.set_read_timeout(Some(Duration::from_millis(1)));
        let mut buf = [0u8; 1];
        assert_eq!(host.read(&mut buf), Err(PortError::TimedOut));
        assert_eq!(
            host.wait_readable(Some(Duration::ZERO)),
            Readiness::TimedOut
        );
        let interrupt = host.interrupt_handle();
        // Raised before or during the wait, the interrupt is seen exactly once per direction.
        let waiter = thread::spawn(move || {
            let first = host.wait_readable(None);
            let second = host.wait_readable(Some(Duration::ZERO));
            (first, second, host)
        });
        interrupt.interrupt();
        let (first, second, mut host) = waiter.join().unwrap();
        assert_eq!(
            (first, second),
            (Readiness::Interrupted, Readiness::TimedOut)
        );
        // The write side: ready while there is space, interrupted once, then waits for space.
        assert_eq!(host.wait_writable(None), Readiness::Interrupted);
        assert_eq!(host.wait_writable(None), Readiness::Ready);
        host.write_all(b"1234").unwrap();
        assert_eq!(
            host.wait_writable(Some(Duration::ZERO)),
            Readiness::TimedOut
        );
    }

    #[cfg(feature = "async")]
    mod asynchronous {
        use std::future::Future;
        use std::pin::pin;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::task::{Context, Poll, Wake};

        use embedded_io_async::{Read, Write};

        use super::*;

        /// Wakes a parked thread; records that a wake happened.
        struct ThreadWaker {
            thread: thread::Thread,
            woken: AtomicBool,
        }

        impl Wake for ThreadWaker {
            fn wake(self: Arc<Self>) {
                self.woken.store(true, Ordering::SeqCst);
                self.thread.unpark();
            }
        }

        /// Minimal single-future executor: poll, park until woken, repeat.
        fn block_on<F: Future>(future: F) -> F::Output {
            let waker_state = Arc::new(ThreadWaker {
                thread: thread::current(),
                woken: AtomicBool::new(false),
            });
            let waker = Waker::from(Arc::clone(&waker_state));
            let mut cx = Context::from_waker(&waker);
            let mut future = pin!(future);
            loop {
                if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                    return out;
                }
                while !waker_state.woken.swap(false, Ordering::SeqCst) {
                    thread::park();
                }
            }
        }

        #[test]
        fn async_read_waits_for_a_writer_thread() {
            let (mut host, mut board) = VirtualPort::pair(4);
            let writer = thread::spawn(move || {
                embedded_io::Write::write_all(&mut board, b"QG\r").unwrap();
                board
            });
            let mut buf = [0u8; 8];
            let mut got = Vec::new();
            while got.len() < 3 {
                let n = block_on(host.read(&mut buf)).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, b"QG\r");
            drop(writer.join().unwrap());
            assert_eq!(block_on(host.read(&mut buf)), Err(PortError::Disconnected));
        }

        #[test]
        fn async_write_applies_back_pressure() {
            let (mut host, board) = VirtualPort::pair(3);
            let reader = thread::spawn(move || {
                let mut board = board;
                let mut got = Vec::new();
                let mut buf = [0u8; 2];
                while got.len() < 9 {
                    let n = embedded_io::Read::read(&mut board, &mut buf).unwrap();
                    got.extend_from_slice(&buf[..n]);
                }
                // Hand the port back so the device stays connected until the flush below
                // has run; dropping it here would race the flush.
                (got, board)
            });
            block_on(host.write_all(b"SM,1,0,0\r")).unwrap();
            block_on(host.flush()).unwrap();
            let (got, _board) = reader.join().unwrap();
            assert_eq!(got, b"SM,1,0,0\r");
        }

        #[test]
        fn async_write_fails_when_device_vanishes() {
            let (mut host, board) = VirtualPort::pair(1);
            block_on(host.write(b"x")).unwrap();
            let dropper = thread::spawn(move || drop(board));
            assert_eq!(
                block_on(host.write_all(b"yz")),
                Err(PortError::Disconnected)
            );
            dropper.join().unwrap();
        }
    }
}
