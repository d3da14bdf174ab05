//! A real serial port as a [`Link`]: opened exclusively at the configured baud rate (the EBB
//! ignores it over USB; DTR/RTS errors, which pseudo-terminals give, are ignored), read with
//! short timeouts so the runner sees its controls, timed by the wall clock.

use std::io::{self, Read, Write};
use std::time::Duration;

use plotty_motion::time::Instant;
use serialport::SerialPort;

use super::{DeviceError, Link};

/// Longest a [`SerialLink::wait`] blocks before returning to the caller.
const WAIT_SLICE: Duration = Duration::from_millis(5);
/// Longest a write may block: the EBB takes bytes at once unless its parser is stuck.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// A serial port link. See the [module documentation](self).
pub struct SerialLink {
    port: Box<dyn SerialPort>,
    name: String,
    epoch: std::time::Instant,
    inbox: Vec<u8>,
}

/// Opens `port` exclusively at `baud`.
///
/// # Errors
/// [`DeviceError::Open`] with the reason and what to do.
pub fn open(port: &str, baud: u32) -> Result<Box<dyn SerialPort>, DeviceError> {
    if !crate::devices::discover::port_exists(port) {
        return Err(DeviceError::Open {
            port: port.to_owned(),
            detail: "no such file".into(),
            fix: "check the name (boards appear as /dev/ttyACM0; see `ls -l /dev/serial/by-id`), \
                  or plot on the simulator with --device sim",
        });
    }
    serialport::new(port, baud)
        .timeout(WAIT_SLICE)
        .exclusive(true)
        .open()
        .map_err(|e| {
            let detail = e.to_string();
            let lower = detail.to_ascii_lowercase();
            let fix = if lower.contains("permission") {
                "add your user to the group that owns the port (`sudo usermod -a -G dialout \
                 $USER`, then log in again)"
            } else if lower.contains("lock") || lower.contains("busy") {
                "another program has the port open (the plotty daemon?): stop it, or let the \
                 daemon plot (`plotty add`)"
            } else if lower.contains("typewriter") || lower.contains("inappropriate ioctl") {
                "it is not a serial port: give the AxiDraw's port, e.g. /dev/ttyACM0, or use \
                 --device sim"
            } else {
                "unplug and replug the plotter, then try again"
            };
            DeviceError::Open {
                port: port.to_owned(),
                detail,
                fix,
            }
        })
}

impl SerialLink {
    /// Opens `port` exclusively at `baud`; the link's clock starts now.
    ///
    /// # Errors
    /// The port cannot be opened.
    pub fn open(port: &str, baud: u32) -> Result<Self, DeviceError> {
        Ok(Self {
            port: open(port, baud)?,
            name: port.to_owned(),
            epoch: std::time::Instant::now(),
            inbox: Vec::new(),
        })
    }

    /// Reads what is available within `timeout` into the inbox.
    fn fill(&mut self, timeout: Duration) -> Result<(), DeviceError> {
        self.port
            .set_timeout(timeout)
            .map_err(|e| self.io(io::Error::other(e.to_string())))?;
        let mut buf = [0u8; 256];
        match self.port.read(&mut buf) {
            // poll() said readable and read() found nothing: the other end hung up.
            Ok(0) => Err(DeviceError::Vanished {
                port: self.name.clone(),
                detail: "end of file".into(),
            }),
            Ok(n) => {
                self.inbox
                    .extend_from_slice(buf.get(..n).unwrap_or_default());
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(self.io(e)),
        }
    }

    fn io(&self, e: io::Error) -> DeviceError {
        classify(&self.name, &e)
    }
}

/// A port error as a [`DeviceError`]: hang-ups and vanished devices apart from the rest.
fn classify(port: &str, e: &io::Error) -> DeviceError {
    let gone = matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::NotConnected | io::ErrorKind::UnexpectedEof
    ) || matches!(
        e.raw_os_error(),
        // EIO, ENXIO, ENODEV: the USB device was removed.
        Some(5 | 6 | 19)
    ) || e.to_string().contains("I/O error");
    if gone {
        DeviceError::Vanished {
            port: port.to_owned(),
            detail: e.to_string(),
        }
    } else {
        DeviceError::Io {
            port: port.to_owned(),
            detail: e.to_string(),
        }
    }
}

impl Link for SerialLink {
    fn name(&self) -> &str {
        &self.name
    }

    fn now(&mut self) -> Instant {
        let us = self.epoch.elapsed().as_micros();
        Instant::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
    }

    fn write(&mut self, bytes: &[u8]) -> Result<usize, DeviceError> {
        if let Err(e) = self.port.set_timeout(WRITE_TIMEOUT) {
            return Err(self.io(io::Error::other(e.to_string())));
        }
        match self.port.write_all(bytes).and_then(|()| self.port.flush()) {
            Ok(()) => Ok(bytes.len()),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(DeviceError::Io {
                port: self.name.clone(),
                detail: format!(
                    "the plotter takes no commands (a write did not finish within {} s)",
                    WRITE_TIMEOUT.as_secs()
                ),
            }),
            Err(e) => Err(self.io(e)),
        }
    }

    fn read(&mut self, out: &mut Vec<u8>) -> Result<(), DeviceError> {
        self.fill(Duration::ZERO)?;
        out.append(&mut self.inbox);
        Ok(())
    }

    fn wait(&mut self, deadline: Option<Instant>) -> Result<(), DeviceError> {
        if !self.inbox.is_empty() {
            return Ok(());
        }
        let now = self.now();
        let slice = match deadline {
            Some(d) if d <= now => return Ok(()),
            Some(d) => Duration::from_micros((d - now).as_micros()).min(WAIT_SLICE),
            None => WAIT_SLICE,
        };
        self.fill(slice)
    }

    fn is_simulated(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_non_serial_ports_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("ttyNOPE");
        let e = SerialLink::open(&missing.display().to_string(), 9600)
            .err()
            .unwrap();
        assert!(e.to_string().contains("no such file"), "{e}");
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        let e = SerialLink::open(&file.display().to_string(), 9600)
            .err()
            .unwrap();
        assert!(e.to_string().contains("cannot open"), "{e}");
    }

    #[test]
    fn vanished_devices_are_told_apart() {
        let e = classify("/dev/ttyACM0", &io::Error::from_raw_os_error(5));
        assert!(matches!(e, DeviceError::Vanished { .. }), "{e}");
        let e = classify("/dev/ttyACM0", &io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(matches!(e, DeviceError::Vanished { .. }));
        let e = classify("/dev/ttyACM0", &io::Error::from(io::ErrorKind::InvalidData));
        assert!(matches!(e, DeviceError::Io { .. }));
    }
}
