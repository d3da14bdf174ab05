//! A simulated board on a pseudo-terminal, so any program that opens a serial device path (the
//! AxiDraw/EMS Python tools, saxi, plotty's host) can plot into it.
//!
//! [`PtyServer::open`] creates the pty in raw mode and, if asked, a symbolic link to it (a stable
//! name such as `/tmp/ebb` or a `/dev/ttyACM*`-like path for tools that only list such names);
//! [`PtyServer::run`] serves a [`Board`] on it until [`StopHandle::stop`] or until the board
//! vanishes. Lessons from trying this (see the project's rust-stack notes):
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
//!   its predecessor left (as with a real board, flush the input on open).

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

use crate::board::Board;
use crate::observer::Observer;
use crate::runner::{self, ClockMode, Exit, Link, LinkError, Want};

/// A pseudo-terminal serving a simulated board. Dropping it closes the pty and removes the link.
#[derive(Debug)]
pub struct PtyServer {
    master: OwnedFd,
    /// Held open for the whole run (see the module documentation).
    _slave: OwnedFd,
    path: PathBuf,
    link: Option<PathBuf>,
    stop: StopHandle,
    wake_rx: OwnedFd,
}

/// Ends a [`PtyServer::run`] from any thread (e.g. a signal-waiting thread). Cloneable.
#[derive(Debug, Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    wake_tx: Arc<OwnedFd>,
}

/// Why the pty server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PtyError {
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
        let (wake_rx, wake_tx) =
            nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(configure)?;
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
            stop: StopHandle {
                flag: Arc::new(AtomicBool::new(false)),
                wake_tx: Arc::new(wake_tx),
            },
            wake_rx,
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
            wake_rx: &self.wake_rx,
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
