//! Links: the bytes and the clock the plot runner talks to a device through.
//!
//! - [`Link`]: bytes to and from a device, and time. [`serial::SerialLink`] is a real port (the
//!   wall clock); [`sim::SimLink`] is the in-process simulator, run in lockstep with the
//!   protocol session in simulated time (deterministic, as fast as possible, or paced to the
//!   wall clock for demos), recording the pen trace.
//! - [`open`]: the simulator or a serial port behind one link type ([`AnyLink`]), opened by
//!   an [`Opener`].

pub mod open;
pub mod serial;
pub mod sim;

pub use open::{AnyLink, Opener, SimPace};

use plotty_motion::time::Instant;

/// A byte link to a device, with the clock the session runs on.
///
/// The runner's loop: [`write`](Self::write) what the session transmits, [`read`](Self::read)
/// what arrived, and [`wait`](Self::wait) until the session's next deadline or until bytes may
/// have arrived.
pub trait Link {
    /// The device, for messages ("/dev/ttyACM0", "the simulator").
    fn name(&self) -> &str;

    /// The current time on the link's clock (monotonic).
    fn now(&mut self) -> Instant;

    /// Sends as much of `bytes` as the device takes now; returns how many (0: it is not taking
    /// input, retry after waiting).
    ///
    /// # Errors
    /// The device went away or the port failed.
    fn write(&mut self, bytes: &[u8]) -> Result<usize, DeviceError>;

    /// Appends the bytes received so far to `out`.
    ///
    /// # Errors
    /// The device went away or the port failed.
    fn read(&mut self, out: &mut Vec<u8>) -> Result<(), DeviceError>;

    /// Waits until `deadline` (`None`: until something happens) or until bytes may have arrived,
    /// whichever is first; a real link returns after a few milliseconds at most so that the
    /// caller can look at its controls.
    ///
    /// # Errors
    /// The device went away or the port failed.
    fn wait(&mut self, deadline: Option<Instant>) -> Result<(), DeviceError>;

    /// Whether time passes only in [`wait`](Self::wait) (the simulator, as fast as possible):
    /// while the plot waits for the user, such a link is not waited on.
    fn is_simulated(&self) -> bool;

    /// The pen servo's pulse width now (1/12 µs), where the link can see it: the simulator.
    fn pen_servo(&self) -> Option<u16> {
        None
    }

    /// The plot reached layer `index` (the simulator notes the time, to colour its trace).
    fn layer_reached(&mut self, index: usize) {
        let _ = index;
    }
}

/// Asks the board on `link` for its version (`V`) and waits up to `timeout` on the link's clock
/// for the reply line: the proof that the board answers now (the device task's health check on
/// an idle link). The reply is read to its line end, so the next session starts clean.
///
/// # Errors
/// The link failed (the board went away), or no version line came within `timeout`.
pub fn ping<L: Link + ?Sized>(
    link: &mut L,
    timeout: std::time::Duration,
) -> Result<(), DeviceError> {
    let timeout_us = u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX);
    let deadline = link.now() + plotty_motion::time::Duration::from_micros(timeout_us);
    let mut request: &[u8] = b"V\r";
    let mut seen = Vec::new();
    loop {
        if !request.is_empty() {
            let n = link.write(request)?;
            request = request.get(n..).unwrap_or_default();
        }
        link.read(&mut seen)?;
        let answered = seen
            .split(|b| *b == b'\r' || *b == b'\n')
            .rev()
            .skip(1) // the part after the last line end is not a whole line yet
            .any(|line| line.windows(3).any(|w| w == b"EBB"));
        if answered {
            return Ok(());
        }
        if link.now() >= deadline {
            return Err(DeviceError::Io {
                port: link.name().to_owned(),
                detail: format!("no answer to `V` within {} s", timeout.as_secs_f64()),
            });
        }
        link.wait(Some(deadline))?;
    }
}

/// Reads the motor supply with `QC` (firmware 2.2.3 and later) on an idle link and waits up to
/// `timeout` on the link's clock: the V+ reading (raw 10-bit ADC, as the session's set-up reports
/// it), or `None` when the board refused the query (an older firmware). Both reply syntaxes are
/// read to their end (`a,b` then `OK`, or `QC,a,b`), so the next session starts clean.
///
/// # Errors
/// The link failed, or no complete answer came within `timeout`.
pub fn query_supply<L: Link + ?Sized>(
    link: &mut L,
    timeout: std::time::Duration,
) -> Result<Option<u16>, DeviceError> {
    let timeout_us = u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX);
    let deadline = link.now() + plotty_motion::time::Duration::from_micros(timeout_us);
    let mut request: &[u8] = b"QC\r";
    let mut seen = Vec::new();
    loop {
        if !request.is_empty() {
            let n = link.write(request)?;
            request = request.get(n..).unwrap_or_default();
        }
        link.read(&mut seen)?;
        let mut reading = None;
        // Whole lines only: the part after the last line end is still arriving.
        let end = seen.iter().rposition(|b| *b == b'\r' || *b == b'\n');
        let whole = end.map_or(&seen[..0], |e| &seen[..e]);
        for line in whole.split(|b| *b == b'\r' || *b == b'\n') {
            let text = String::from_utf8_lossy(line);
            let text = text.trim();
            if text.starts_with('!') {
                return Ok(None);
            }
            let (future, values) = match text.strip_prefix("QC,") {
                Some(rest) => (true, rest),
                None => (false, text),
            };
            if let Some((_, v)) = values.split_once(',')
                && let Ok(v) = v.trim().parse::<u16>()
            {
                if future {
                    return Ok(Some(v));
                }
                reading = Some(v);
            } else if text == "OK" && reading.is_some() {
                return Ok(reading);
            }
        }
        if link.now() >= deadline {
            return Err(DeviceError::Io {
                port: link.name().to_owned(),
                detail: format!("no answer to `QC` within {} s", timeout.as_secs_f64()),
            });
        }
        link.wait(Some(deadline))?;
    }
}

/// What went wrong with a device. Every message says what happened and what to check.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// `device.type: axidraw` and no board is connected.
    #[error(
        "no AxiDraw found (USB id 04D8:FD92){}: plug it in and switch it on (check `ls -l \
         /dev/serial/by-id`), name its port with --device PORT or device.port, or plot on the \
         simulator with --device sim",
        listing.as_ref().map(|e| format!("; listing serial ports failed: {e}")).unwrap_or_default()
    )]
    NotFound {
        /// Why the ports could not be listed, if that failed.
        listing: Option<String>,
    },
    /// `device.nickname`/`device.serial` names a board that is not connected.
    #[error(
        "no AxiDraw has {wanted} ({found}): plug it in and switch it on, check the name with \
         `plotty device list`, or name the board with `plotty device name`"
    )]
    NoSuchBoard {
        /// What was asked for (`nickname "left"`).
        wanted: String,
        /// The boards seen ([`crate::devices::identity::describe`]).
        found: String,
    },
    /// The board on the device's port is not the one configured (plugged elsewhere, another
    /// board on its port): it is not driven.
    #[error(
        "the board on {port} is not the one configured ({wanted}): it is {found}; it is not \
         driven. The plotters may have been re-plugged: a plotter found by its nickname or \
         serial is followed to the port its board is on now as soon as it answers there; for \
         one with a fixed `port`, plug its board back into {port}, or set `device.port` to \
         where it is now (`plotty device list` shows the boards) or remove `device.port` so \
         that its nickname or serial finds it, then reload the configuration"
    )]
    WrongBoard {
        /// The port.
        port: String,
        /// What was asked for.
        wanted: String,
        /// What answers instead ([`crate::devices::identity::board_line`]).
        found: String,
    },
    /// Several boards have the identity asked for: choosing one could swap two plotters.
    #[error(
        "{count} AxiDraws have {wanted} ({found}): give each board its own name with \
         `plotty device name NEW --port PORT`"
    )]
    SeveralBoards {
        /// What was asked for.
        wanted: String,
        /// How many boards have it.
        count: usize,
        /// The boards that have it.
        found: String,
    },
    /// The port cannot be opened.
    #[error("cannot open {port}: {detail}; {fix}")]
    Open {
        /// The port.
        port: String,
        /// The system's reason.
        detail: String,
        /// What to do.
        fix: &'static str,
    },
    /// Something answers on the port, or nothing does, but it is not an EiBotBoard.
    #[error(
        "{port} is not a plotter: {detail}; check that this is the AxiDraw's port (`ls -l \
         /dev/serial/by-id`), that the plotter is switched on, or use --device sim"
    )]
    NotAPlotter {
        /// The port.
        port: String,
        /// What happened.
        detail: String,
    },
    /// The device disappeared (unplugged, switched off, USB reset).
    #[error(
        "the plotter on {port} went away ({detail}): check the USB cable and the plotter's power; \
         the pen may still be down, and the carriage must be homed by hand before the next plot"
    )]
    Vanished {
        /// The port.
        port: String,
        /// What the system said.
        detail: String,
    },
    /// Reading or writing failed otherwise.
    #[error("the link to the plotter on {port} failed: {detail}; check the USB cable and retry")]
    Io {
        /// The port.
        port: String,
        /// What the system said.
        detail: String,
    },
}
