//! A simulated board on a pseudo-terminal, so any program that opens a serial device path (the
//! AxiDraw/EMS Python tools, saxi, plotty's host) can plot into it.
//!
//! [`PtyServer::open`] creates the pty in raw mode and, if asked, a symbolic link to it (a stable
//! name such as `/tmp/ebb` or a `/dev/ttyACM*`-like path for tools that only list such names);
//! [`PtyServer::run`] serves a [`Board`] on it until [`StopHandle::stop`], until the board
//! vanishes or until it drops off USB. [`serve_board`] adds what a USB device does around that:
//! when the board drops off (`RB`, an unplug fault) the pty is closed (the host's open port hangs
//! up) and the link removed, and after the reboot or replug delay a new pty comes up behind the
//! same link. Lessons from trying this (see the project's rust-stack notes):
//!
//! - the server keeps the master **and** a slave descriptor open for the whole run: closing the
//!   master makes the kernel hang up the line and throw away replies the host has not read yet,
//!   and without an open slave the master reports EIO between a host's close and its reopen.
//!   So hosts may close and reopen the device freely;
//! - the master is non-blocking and waited on with `poll` together with a self-pipe, so a stop
//!   request (from a signal-handling thread) ends the loop at once;
//! - back-pressure: while the firmware's parser is blocked the server stops reading the master, so
//!   the host's writes fill the pty buffer and then stall, as over USB; replies the host does not
//!   read are kept (not dropped) until it does, up to a backlog of
//!   [`REPLY_BACKLOG`](crate::runner::REPLY_BACKLOG) bytes beyond the pty's own buffer;
//! - a host that never reopens leaves replies unread in the pty; a host that reopens reads what
//!   its predecessor left (as with a real board, flush the input on open);
//! - run by root through `sudo` (to place the link in `/dev`), the server gives the pty to the
//!   user who ran `sudo` (`SUDO_UID`/`SUDO_GID`), as a udev rule gives a USB serial device to
//!   the user at the seat: otherwise only root could open it.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};

use crate::board::{Board, UsbDrop};
use crate::observer::Observer;
use crate::runner::{self, ClockMode, Exit, Link, LinkError, Want};

/// How long a board stays off USB after `RB` by default (reboot and USB enumeration).
pub const DEFAULT_REBOOT_DELAY: Duration = Duration::from_secs(2);

/// A pseudo-terminal serving a simulated board. Dropping it closes the pty and removes the link.
#[derive(Debug)]
pub struct PtyServer {
    master: OwnedFd,
    /// Held open for the whole run (see the module documentation).
    _slave: OwnedFd,
    path: PathBuf,
    link: Option<PathBuf>,
    stop: StopHandle,
}

/// Ends a [`PtyServer::run`] or [`serve_board`] from any thread (e.g. a signal-waiting thread).
/// Cloneable; one handle may serve several servers in turn.
#[derive(Debug, Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    wake_tx: Arc<OwnedFd>,
    wake_rx: Arc<OwnedFd>,
}

/// Options of [`serve_board`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// A symbolic link to the device, kept pointing at the current pty.
    pub link: Option<PathBuf>,
    /// The clock policy.
    pub clock: ClockMode,
    /// How long the board stays off USB after `RB`: wall-clock time during which the device is
    /// gone, and the same simulated time for the board (it boots meanwhile).
    pub reboot_delay: Duration,
}

impl Default for ServeOptions {
    /// No link, as fast as possible, [`DEFAULT_REBOOT_DELAY`].
    fn default() -> Self {
        Self {
            link: None,
            clock: ClockMode::default(),
            reboot_delay: DEFAULT_REBOOT_DELAY,
        }
    }
}

/// What [`serve_board`] reports as it goes.
#[derive(Debug)]
pub enum PtyEvent<'a> {
    /// A pty serves the board (at the start, and each time it is back on USB).
    Attached {
        /// The pty (and its link).
        server: &'a PtyServer,
        /// The nickname the board came up with (empty: none), its USB serial number.
        nickname: &'a [u8],
    },
    /// The board dropped off USB: its pty is closed and the link removed for `off`.
    Detached {
        /// Why.
        why: UsbDrop,
        /// How long until it is back.
        off: Duration,
    },
}

/// Why the pty server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PtyError {
    /// The stop handle's wake-up pipe could not be created.
    #[error("cannot create the stop handle's pipe: {0}")]
    Stop(#[source] io::Error),
    /// No pseudo-terminal could be created.
    #[error("cannot create a pseudo-terminal ({0}); is /dev/ptmx available?")]
    Open(#[source] io::Error),
    /// The pty could not be configured.
    #[error("cannot configure the pseudo-terminal: {0}")]
    Configure(#[source] io::Error),
    /// The `--link` path exists and is not a symbolic link.
    #[error("{0} exists and is not a symbolic link; remove it or choose another link path")]
    LinkExists(PathBuf),
    /// The symbolic link could not be created.
    #[error("cannot create the link {path}: {source}")]
    Link {
        /// The link's path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading or writing the pty failed.
    #[error("pseudo-terminal I/O failed: {0}")]
    Io(#[source] io::Error),
}

/// The server's side of the pty for the serving loop.
struct PtyLink<'a> {
    master: &'a OwnedFd,
    wake_rx: &'a OwnedFd,
    stop: &'a AtomicBool,
}

impl PtyServer {
    /// Creates a raw-mode pseudo-terminal and, with `link`, a symbolic link to its slave device
    /// (an existing symbolic link there is replaced; any other file is an error).
    pub fn open(link: Option<&Path>) -> Result<Self, PtyError> {
        Self::open_with_stop(link, StopHandle::new()?)
    }

    /// [`open`](Self::open), stopped by `stop` (shared with other servers, before or after).
    pub fn open_with_stop(link: Option<&Path>, stop: StopHandle) -> Result<Self, PtyError> {
        let pty = nix::pty::openpty(None, None).map_err(|e| PtyError::Open(e.into()))?;
        let configure = |e: Errno| PtyError::Configure(e.into());
        let mut termios = tcgetattr(&pty.slave).map_err(configure)?;
        cfmakeraw(&mut termios);
        tcsetattr(&pty.slave, SetArg::TCSANOW, &termios).map_err(configure)?;
        for fd in [&pty.master, &pty.slave] {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(configure)?;
        }
        let flags = fcntl(&pty.master, FcntlArg::F_GETFL).map_err(configure)?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(&pty.master, FcntlArg::F_SETFL(flags)).map_err(configure)?;
        let path = nix::unistd::ttyname(&pty.slave).map_err(configure)?;
        give_to_sudo_user(&path).map_err(PtyError::Configure)?;
        let link = match link {
            Some(link) => {
                make_link(&path, link)?;
                Some(link.to_path_buf())
            }
            None => None,
        };
        Ok(Self {
            master: pty.master,
            _slave: pty.slave,
            path,
            link,
            stop,
        })
    }

    /// The slave device a host opens, e.g. `/dev/pts/3`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The symbolic link to the device, if one was made.
    pub fn link_path(&self) -> Option<&Path> {
        self.link.as_deref()
    }

    /// A handle that ends [`run`](Self::run).
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Serves `board` until a stop is requested or the board vanishes (then drop the server to
    /// close the pty, so the host sees the device go away).
    pub fn run<O: Observer>(
        &self,
        board: &mut Board<O>,
        clock: ClockMode,
    ) -> Result<Exit, PtyError> {
        let mut link = PtyLink {
            master: &self.master,
            wake_rx: &self.stop.wake_rx,
            stop: &self.stop.flag,
        };
        runner::serve(board, &mut link, clock).map_err(PtyError::Io)
    }
}

impl Drop for PtyServer {
    fn drop(&mut self) {
        if let Some(link) = &self.link {
            // Only remove the link if it is still ours.
            if std::fs::read_link(link).is_ok_and(|target| target == self.path) {
                let _ = std::fs::remove_file(link);
            }
        }
    }
}

impl StopHandle {
    /// A handle no stop was requested on yet.
    pub fn new() -> Result<Self, PtyError> {
        let (wake_rx, wake_tx) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)
            .map_err(|e| PtyError::Stop(e.into()))?;
        Ok(Self {
            flag: Arc::new(AtomicBool::new(false)),
            wake_tx: Arc::new(wake_tx),
            wake_rx: Arc::new(wake_rx),
        })
    }

    /// Sleeps for `duration` of wall-clock time, or less if a stop is requested; returns
    /// whether it slept the whole time.
    pub fn sleep(&self, duration: Duration) -> bool {
        let deadline = std::time::Instant::now() + duration;
        while !self.is_stopped() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return true;
            }
            let timeout = PollTimeout::try_from(left.saturating_add(Duration::from_micros(999)))
                .unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.wake_rx.as_fd(), PollFlags::POLLIN)];
            // Woken by a stop (the flag says so) or the timeout; EINTR just loops.
            let _ = poll(&mut fds, timeout);
        }
        false
    }

    /// Asks the server to stop; returns at once.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        // A full pipe already holds a wake-up; nothing else can go wrong worth reporting.
        let _ = nix::unistd::write(self.wake_tx.as_fd(), &[1]);
    }

    /// Whether a stop was requested.
    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

impl Link for PtyLink<'_> {
    fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn try_read(&mut self, buf: &mut [u8]) -> Result<usize, LinkError> {
        match nix::unistd::read(self.master, buf) {
            Ok(n) => Ok(n),
            // EIO: no slave open (cannot happen while we hold one, but it is not fatal either).
            Err(Errno::EAGAIN | Errno::EINTR | Errno::EIO) => Ok(0),
            Err(e) => Err(LinkError::Io(e.into())),
        }
    }

    fn try_write(&mut self, bytes: &[u8]) -> Result<usize, LinkError> {
        match nix::unistd::write(self.master, bytes) {
            Ok(n) => Ok(n),
            Err(Errno::EAGAIN | Errno::EINTR | Errno::EIO) => Ok(0),
            Err(e) => Err(LinkError::Io(e.into())),
        }
    }

    fn wait(&mut self, want: Want, timeout: Option<Duration>) -> Result<(), LinkError> {
        let master_events = match want {
            Want::Read => PollFlags::POLLIN,
            Want::Write => PollFlags::POLLOUT,
            Want::ReadOrWrite => PollFlags::POLLIN | PollFlags::POLLOUT,
            Want::Nothing => PollFlags::empty(),
        };
        let timeout = match timeout {
            None => PollTimeout::NONE,
            // Round up so a short wait does not spin; cap at poll's largest timeout.
            Some(t) => PollTimeout::try_from(t.saturating_add(Duration::from_micros(999)))
                .unwrap_or(PollTimeout::MAX),
        };
        let mut fds = [
            PollFd::new(self.wake_rx.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.master.as_fd(), master_events),
        ];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(LinkError::Io(e.into())),
        }
        if fds[0].any().unwrap_or(false) {
            let mut drain = [0u8; 64];
            while matches!(nix::unistd::read(self.wake_rx, &mut drain), Ok(n) if n > 0) {}
        }
        Ok(())
    }
}

/// Serves `board` on a pseudo-terminal as a USB device would be: until a stop, the board
/// vanishing or the host closing; when the board drops off USB ([`UsbDrop`]) its pty is closed
/// (the host's open port hangs up), the link removed, and after the reboot delay
/// ([`ServeOptions::reboot_delay`]) or the unplug's own time a new pty serves it behind the same
/// link. That time passes on the wall clock (the device is gone meanwhile) and for the board
/// (its simulated clock advances as much, whatever the clock mode). `events` hears of each
/// attach and drop, e.g. to print the device path.
pub fn serve_board<O: Observer>(
    board: &mut Board<O>,
    options: &ServeOptions,
    stop: &StopHandle,
    mut events: impl FnMut(PtyEvent<'_>),
) -> Result<Exit, PtyError> {
    loop {
        let server = PtyServer::open_with_stop(options.link.as_deref(), stop.clone())?;
        events(PtyEvent::Attached {
            server: &server,
            nickname: board.firmware().nickname(),
        });
        let exit = server.run(board, options.clock)?;
        // Close the pty (the host sees the device go away) and remove the link.
        drop(server);
        let Exit::Detached(why) = exit else {
            return Ok(exit);
        };
        let ticks = match why {
            UsbDrop::Reboot => runner::ticks_in(options.reboot_delay),
            UsbDrop::Unplug { replug_after_ticks } => replug_after_ticks,
        };
        let off = runner::duration_of(ticks);
        events(PtyEvent::Detached { why, off });
        if !stop.sleep(off) {
            return Ok(Exit::Stopped);
        }
        board.advance(ticks);
        board.replug();
    }
}

/// Run as root by `sudo`, hands the pty to the user who ran it (see the module documentation).
fn give_to_sudo_user(device: &Path) -> io::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let id = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u32>().ok());
    match (id("SUDO_UID"), id("SUDO_GID")) {
        (Some(uid), gid) if uid != 0 => std::os::unix::fs::chown(device, Some(uid), gid),
        _ => Ok(()),
    }
}

/// Points `link` at `device`, replacing a symbolic link already there.
fn make_link(device: &Path, link: &Path) -> Result<(), PtyError> {
    match std::fs::symlink_metadata(link) {
        Ok(meta) if meta.file_type().is_symlink() => {
            std::fs::remove_file(link).map_err(|source| PtyError::Link {
                path: link.to_path_buf(),
                source,
            })?;
        }
        Ok(_) => return Err(PtyError::LinkExists(link.to_path_buf())),
        Err(_) => {}
    }
    std::os::unix::fs::symlink(device, link).map_err(|source| PtyError::Link {
        path: link.to_path_buf(),
        source,
    })
}
