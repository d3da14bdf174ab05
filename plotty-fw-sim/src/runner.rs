//! A [`Board`] running on its own thread behind a serial link: a [`VirtualPort`] end
//! ([`Runner`]) or a pseudo-terminal (`crate::pty`). Both share the loop here and one clock
//! policy ([`ClockMode`]):
//!
//! - **as fast as possible** (default): simulated time passes only while the board is busy
//!   (parser blocked, a command executing or queued, a late reply held) and the host has nothing
//!   more to say; then queued motion runs at full speed, event by event, without sleeping. While
//!   the board is idle, time stands still (a host may think for as long as it likes). A host that
//!   streams commands feels the back-pressure of the FIFO exactly: its writes stall while the
//!   parser is blocked, and replies come when commands enter the FIFO.
//! - **real time**: simulated time follows the wall clock from the moment the loop starts, idle
//!   or not, for demos and for hosts that time their own writes.
//!
//! Output is written before input is read, and input is read only as far as the board takes it,
//! so neither side's buffers grow without bound.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::board::{Board, BoardError, TICKS_PER_SECOND, UsbDrop};
use crate::observer::Observer;
use crate::port::{PortError, PortInterrupt, VirtualPort};

/// How simulated time relates to the wall clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClockMode {
    /// Simulated time advances only as far as needed, at full speed (see the module docs).
    #[default]
    AsFastAsPossible,
    /// Simulated time follows the wall clock.
    Realtime,
}

/// Why a serving loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// A stop was requested.
    Stopped,
    /// The host closed its end of the line (virtual port only).
    HostClosed,
    /// The board vanished (injected fault).
    Vanished,
    /// The board dropped off USB (`RB`, or an injected unplug): the link is to be closed, and
    /// reopened when the board is back ([`Board::replug`]). A [`Runner`] ends there (its virtual
    /// port cannot come back: the host sees a disconnect); the pty server brings the board back
    /// on the same path.
    Detached(UsbDrop),
}

/// Reply bytes the loop keeps for a host that does not read them yet, beyond what the link
/// itself buffers, before it stops taking more commands (an OS buffers about this much of a USB
/// serial device's input).
pub const REPLY_BACKLOG: usize = 64 * 1024;

/// Host-to-board bytes a [`Runner`]'s port accepts before the host's writes block: about what
/// Linux's USB CDC driver accepts (16 write URBs of 64 bytes) before `write` blocks.
pub const HOST_WRITE_BUFFER: usize = 1024;

/// Options of a [`Runner`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerConfig {
    /// The clock policy.
    pub clock: ClockMode,
    /// Host-to-board bytes the virtual port buffers (small: the host's writes stall when the
    /// board stops taking bytes).
    pub port_capacity: usize,
    /// Board-to-host bytes the virtual port buffers for a host that does not read yet.
    pub reply_capacity: usize,
}

/// A board serving a [`VirtualPort`] on its own thread. Create with [`Runner::spawn`].
#[derive(Debug)]
pub struct Runner<O: Observer + Send + 'static> {
    thread: JoinHandle<(Board<O>, Exit)>,
    stop: Arc<Stop>,
}

/// The board thread panicked (a bug in the simulator).
#[derive(Debug, thiserror::Error)]
#[error("the simulated board's thread panicked; this is a simulator bug, please report it")]
pub struct RunnerPanicked;

/// What the serving loop needs from a link to the host.
pub(crate) trait Link {
    /// Whether the loop should end.
    fn stop_requested(&self) -> bool;
    /// Reads host bytes available now; 0 if none.
    fn try_read(&mut self, buf: &mut [u8]) -> Result<usize, LinkError>;
    /// Writes what fits now; 0 if nothing does.
    fn try_write(&mut self, bytes: &[u8]) -> Result<usize, LinkError>;
    /// Sleeps until `want` may be possible, `timeout` passes or a stop is requested.
    fn wait(&mut self, want: Want, timeout: Option<Duration>) -> Result<(), LinkError>;
}

/// What the loop waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// Host bytes.
    Read,
    /// Room for replies.
    Write,
    /// Host bytes or room for replies, whichever comes first.
    ReadOrWrite,
    /// Only the timeout (or a stop).
    Nothing,
}

/// How a link failed.
#[derive(Debug)]
pub(crate) enum LinkError {
    /// The host's end is gone.
    HostGone,
    /// An operating-system error.
    Io(io::Error),
}

/// Stop flag with a condvar for [`Want::Nothing`] waits and the port interrupt for the others.
#[derive(Debug)]
struct Stop {
    flag: AtomicBool,
    lock: Mutex<()>,
    condvar: Condvar,
    interrupt: PortInterrupt,
}

/// The runner's link: the board's end of a virtual port.
struct PortLink {
    port: VirtualPort,
    stop: Arc<Stop>,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            clock: ClockMode::AsFastAsPossible,
            port_capacity: HOST_WRITE_BUFFER,
            reply_capacity: REPLY_BACKLOG,
        }
    }
}

impl<O: Observer + Send + 'static> Runner<O> {
    /// Starts `board` on a new thread; returns the host's end of the line and the runner.
    /// Fails only if the operating system cannot start a thread.
    pub fn spawn(board: Board<O>, config: RunnerConfig) -> io::Result<(VirtualPort, Self)> {
        let (host, device) = VirtualPort::pair_with(config.port_capacity, config.reply_capacity);
        let stop = Arc::new(Stop {
            flag: AtomicBool::new(false),
            lock: Mutex::new(()),
            condvar: Condvar::new(),
            interrupt: device.interrupt_handle(),
        });
        let mut link = PortLink {
            port: device,
            stop: Arc::clone(&stop),
        };
        let thread = thread::Builder::new()
            .name("plotty-fw-sim board".to_owned())
            .spawn(move || {
                let mut board = board;
                let exit = match serve(&mut board, &mut link, config.clock) {
                    Ok(exit) => exit,
                    // A virtual port has no OS errors; a failure means the host left.
                    Err(_) => Exit::HostClosed,
                };
                // Dropping the link closes the board's end: the host sees a disconnect.
                drop(link);
                (board, exit)
            })?;
        Ok((host, Self { thread, stop }))
    }

    /// Whether the board thread has ended (host closed the line, board vanished).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Asks the board thread to stop, waits for it and returns the board (trace, statistics…).
    pub fn stop(self) -> Result<(Board<O>, Exit), RunnerPanicked> {
        self.stop.request();
        self.join()
    }

    /// Waits until the board thread ends by itself and returns the board.
    pub fn join(self) -> Result<(Board<O>, Exit), RunnerPanicked> {
        self.thread.join().map_err(|_| RunnerPanicked)
    }
}

impl Stop {
    fn request(&self) {
        self.flag.store(true, Ordering::SeqCst);
        {
            let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.condvar.notify_all();
        }
        self.interrupt.interrupt();
    }
}

impl Link for PortLink {
    fn stop_requested(&self) -> bool {
        self.stop.flag.load(Ordering::SeqCst)
    }

    fn try_read(&mut self, buf: &mut [u8]) -> Result<usize, LinkError> {
        self.port.try_read(buf).map_err(port_error)
    }

    fn try_write(&mut self, bytes: &[u8]) -> Result<usize, LinkError> {
        self.port.try_write(bytes).map_err(port_error)
    }

    fn wait(&mut self, want: Want, timeout: Option<Duration>) -> Result<(), LinkError> {
        match want {
            Want::Read => {
                self.port.wait_readable(timeout);
            }
            // The port buffers `reply_capacity` bytes: when replies are left over, that buffer
            // is full and the host must read before anything else can happen.
            Want::Write | Want::ReadOrWrite => {
                self.port.wait_writable(timeout);
            }
            Want::Nothing => {
                let guard = self
                    .stop
                    .lock
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if !self.stop_requested() {
                    let wait = timeout.unwrap_or(Duration::MAX);
                    drop(
                        self.stop
                            .condvar
                            .wait_timeout(guard, wait)
                            .unwrap_or_else(PoisonError::into_inner),
                    );
                }
            }
        }
        Ok(())
    }
}

fn port_error(e: PortError) -> LinkError {
    match e {
        PortError::Disconnected | PortError::TimedOut => LinkError::HostGone,
    }
}

/// Serves `board` over `link` until a stop, the host leaving or the board vanishing.
pub(crate) fn serve<O: Observer, L: Link>(
    board: &mut Board<O>,
    link: &mut L,
    clock: ClockMode,
) -> Result<Exit, io::Error> {
    match serve_inner(board, link, clock) {
        Ok(exit) => Ok(exit),
        Err(LinkError::HostGone) => Ok(Exit::HostClosed),
        Err(LinkError::Io(e)) => Err(e),
    }
}

fn serve_inner<O: Observer, L: Link>(
    board: &mut Board<O>,
    link: &mut L,
    clock: ClockMode,
) -> Result<Exit, LinkError> {
    let started = Instant::now();
    let start_tick = board.now_ticks();
    let mut out: Vec<u8> = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        if link.stop_requested() {
            return Ok(Exit::Stopped);
        }
        if clock == ClockMode::Realtime {
            let target = start_tick.saturating_add(ticks_in(started.elapsed()));
            let now = board.now_ticks();
            if target > now {
                board.advance(target - now);
            }
        }
        if let Some(why) = board.detached() {
            // Unsent replies go down with the connection.
            return Ok(Exit::Detached(why));
        }
        if board.read(&mut out).is_err() {
            return Ok(Exit::Vanished);
        }
        if !out.is_empty() {
            let n = link.try_write(&out)?;
            out.drain(..n);
        }
        // A host that leaves too many replies unread gets no more commands taken until it reads.
        let backlog_full = out.len() >= REPLY_BACKLOG;
        let space = if backlog_full {
            0
        } else {
            board.input_space().min(buf.len())
        };
        if space > 0 {
            let n = link.try_read(buf.get_mut(..space).unwrap_or_default())?;
            if n > 0 {
                match board.write(buf.get(..n).unwrap_or_default()) {
                    // Detached by this write (`RB`): the next turn of the loop says so.
                    Ok(_) | Err(BoardError::Detached(_)) => {}
                    Err(_) => return Ok(Exit::Vanished),
                }
                continue;
            }
        }
        let want = match (space > 0, out.is_empty()) {
            (true, true) => Want::Read,
            (true, false) => Want::ReadOrWrite,
            (false, false) => Want::Write,
            (false, true) => Want::Nothing,
        };
        match clock {
            ClockMode::AsFastAsPossible => {
                if board.is_busy() {
                    board.advance(board.next_event_in().unwrap_or(25).max(1));
                } else {
                    link.wait(want, None)?;
                }
            }
            ClockMode::Realtime => {
                let due = board.next_event_in().map(|ticks| {
                    // The board is at `now`; the wall clock may be slightly ahead of it.
                    let event = board.now_ticks().saturating_add(ticks);
                    let wall = start_tick.saturating_add(ticks_in(started.elapsed()));
                    duration_of(event.saturating_sub(wall).max(1))
                });
                link.wait(want, due)?;
            }
        }
    }
}

/// Whole ticks in a wall-clock duration.
pub(crate) fn ticks_in(elapsed: Duration) -> u64 {
    let ticks = elapsed.as_micros() * u128::from(TICKS_PER_SECOND) / 1_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// Wall-clock duration of `ticks`.
pub(crate) fn duration_of(ticks: u64) -> Duration {
    Duration::from_micros(ticks.saturating_mul(1_000_000 / TICKS_PER_SECOND))
}
