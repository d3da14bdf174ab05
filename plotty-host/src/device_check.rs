//! `plotty check device`: find the plotter the daemon would use and ask it for its firmware version.
//!
//! The board is searched by its USB id (04D8:FD92, the EiBotBoard) among the serial ports, unless
//! `device.port` names one. The port is opened as the daemon would (exclusively, at the configured
//! baud rate), `V` is sent, and the reply must be the EBB's version string. This is a one-off probe
//! for troubleshooting; the daemon's device layer has its own protocol engine.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::check::Report;
use crate::settings::{DeviceKind, DeviceSettings, FirmwareChoice};

/// USB vendor id of the EiBotBoard.
pub const EBB_VID: u16 = 0x04D8;
/// USB product id of the EiBotBoard.
pub const EBB_PID: u16 = 0xFD92;

/// Longest wait for the version reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks the device of `settings` and appends the results to `report`.
pub fn check(device: &DeviceSettings, report: &mut Report) {
    if device.kind == DeviceKind::Simulator {
        report.ok(
            "device",
            "the built-in simulator (device.type: simulator); nothing to probe",
        );
        return;
    }
    let boards = find_boards(report);
    let port = match (&device.port, boards.first()) {
        (Some(p), _) => p.clone(),
        (None, Some(found)) => found.clone(),
        (None, None) => {
            let fix = "plug the AxiDraw in and switch it on; check `ls -l /dev/ttyACM*` and `dmesg | \
                       tail`; or set device.port";
            if device.kind == DeviceKind::Auto {
                report.warn(
                    "device",
                    "no AxiDraw found; the daemon will use the built-in simulator (device.type: auto)",
                    fix,
                );
            } else {
                report.problem("device", "no AxiDraw found (device.type: axidraw)", fix);
            }
            return;
        }
    };
    if !std::path::Path::new(&port).exists() {
        report.problem(
            "port",
            format!("{port} does not exist"),
            "check device.port; boards usually appear as /dev/ttyACM0 (see `ls -l /dev/serial/by-id`)",
        );
        return;
    }
    let timeout = device.timeout.min(REPLY_TIMEOUT);
    let mut serial = match serialport::new(&port, device.baud_rate)
        .timeout(Duration::from_millis(200))
        .open()
    {
        Ok(p) => p,
        Err(e) => {
            let text = e.to_string();
            let fix = if text.contains("ermission") {
                "add the daemon's user to the group owning the port (`sudo usermod -a -G dialout \
                 plotty`, then log in again)"
            } else if text.contains("lock") || text.contains("busy") {
                "another program has the port open; if it is the plotty daemon, this check cannot \
                 open it while it runs (use `plotty status` instead)"
            } else {
                "unplug and replug the board, then try again"
            };
            report.problem("port", format!("cannot open {port}: {text}"), fix);
            return;
        }
    };
    report.ok(
        "port",
        format!("{port} opened at {} baud", device.baud_rate),
    );
    match ask_version(serial.as_mut(), timeout) {
        Ok(version) => {
            report.ok("firmware", format!("EBB firmware {version}"));
            let major = version.split('.').next().and_then(|m| m.parse::<u32>().ok());
            match (device.firmware, major) {
                (FirmwareChoice::V2_8, Some(m)) if m >= 3 => report.warn(
                    "firmware setting",
                    format!("device.firmware forces 2.8 behaviour on firmware {version}"),
                    "set device.firmware: auto unless you need the old behaviour",
                ),
                (FirmwareChoice::V3_0, Some(m)) if m < 3 => report.problem(
                    "firmware setting",
                    format!("device.firmware forces 3.0 behaviour but the board runs {version}"),
                    "set device.firmware: auto, or update the board's firmware",
                ),
                _ => {}
            }
        }
        Err(e) => report.problem(
            "firmware",
            format!("{port}: {e}"),
            "check that this port is the AxiDraw's (`ls -l /dev/serial/by-id`), unplug and replug it",
        ),
    }
}

/// Serial ports with the EBB's USB id, reported as found.
fn find_boards(report: &mut Report) -> Vec<String> {
    match serialport::available_ports() {
        Ok(ports) => {
            let boards: Vec<_> = ports
                .into_iter()
                .filter_map(|p| match p.port_type {
                    serialport::SerialPortType::UsbPort(u)
                        if u.vid == EBB_VID && u.pid == EBB_PID =>
                    {
                        Some((p.port_name, u.serial_number))
                    }
                    _ => None,
                })
                .collect();
            if !boards.is_empty() {
                let list: Vec<String> = boards
                    .iter()
                    .map(|(name, serial)| match serial {
                        Some(s) => format!("{name} (serial {s})"),
                        None => name.clone(),
                    })
                    .collect();
                report.ok(
                    "usb search",
                    format!("EiBotBoard found: {}", list.join(", ")),
                );
            }
            boards.into_iter().map(|(n, _)| n).collect()
        }
        Err(e) => {
            report.warn(
                "usb search",
                format!("cannot list serial ports: {e}"),
                "set device.port to the board's port",
            );
            Vec::new()
        }
    }
}

/// Attempts of [`ask_version`]: a byte dropped or doubled on the way (a board just plugged in, a
/// noisy cable) costs one attempt, not the plotter.
const VERSION_ATTEMPTS: u32 = 3;

/// Sends `V` and reads the version reply: `EBBv13_and_above EB Firmware Version 3.0.3` (also with
/// the `V,` prefix of the newer reply syntax). Only whole lines count, and a reply that does not
/// read as a version (damaged on the way) is asked again, up to `VERSION_ATTEMPTS` (3) times
/// within `timeout`.
pub fn ask_version<P: Read + Write + ?Sized>(
    port: &mut P,
    timeout: Duration,
) -> Result<String, String> {
    let per_attempt = timeout / VERSION_ATTEMPTS;
    let mut seen: Vec<u8> = Vec::new();
    let mut bad_version: Option<String> = None;
    for attempt in 0..VERSION_ATTEMPTS {
        // A CR first ends whatever a damaged earlier request left half-parsed in the board.
        let request: &[u8] = if attempt == 0 { b"V\r" } else { b"\rV\r" };
        port.write_all(request)
            .map_err(|e| format!("cannot send `V`: {e}"))?;
        port.flush().map_err(|e| format!("cannot send `V`: {e}"))?;
        let until = Instant::now() + per_attempt;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 128];
        while Instant::now() < until && buf.len() < 512 {
            match port.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading the reply failed: {e}")),
            }
            // Whole lines only: a line still arriving may be cut in the middle of its version.
            let complete = buf
                .iter()
                .rposition(|b| *b == b'\r' || *b == b'\n')
                .map_or(&buf[..0], |end| &buf[..end]);
            let text = String::from_utf8_lossy(complete);
            for line in text.split(['\r', '\n']).map(str::trim) {
                let line = line.strip_prefix("V,").unwrap_or(line);
                if !line.starts_with("EBB") {
                    continue;
                }
                match plotty_motion::ebb::FirmwareVersion::from_reply(line.as_bytes()) {
                    Ok(_) => {
                        if let Some(v) = line.split("Firmware Version ").nth(1) {
                            return Ok(v.trim().to_owned());
                        }
                    }
                    Err(_) => bad_version = Some(line.to_owned()),
                }
            }
        }
        seen.extend_from_slice(&buf);
    }
    if let Some(line) = bad_version {
        return Err(format!("the reply `{line}` has no firmware version"));
    }
    if seen.is_empty() {
        Err(format!(
            "no answer to `V` within {} s",
            timeout.as_secs_f64()
        ))
    } else {
        Err(format!(
            "the answer is not from an EiBotBoard: `{}`",
            String::from_utf8_lossy(&seen).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// A port that answers each `V` with the next of its replies (nothing once they run out;
    /// a read with nothing to give times out, as a serial port's does).
    struct Canned {
        replies: Vec<Vec<u8>>,
        reply: Cursor<Vec<u8>>,
        sent: Vec<u8>,
    }

    impl Read for Canned {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.reply.read(buf)? {
                0 => Err(std::io::ErrorKind::TimedOut.into()),
                n => Ok(n),
            }
        }
    }

    impl Write for Canned {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.sent.extend_from_slice(buf);
            if buf.ends_with(b"V\r") && !self.replies.is_empty() {
                self.reply = Cursor::new(self.replies.remove(0));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn ask_all(replies: &[&[u8]]) -> (Result<String, String>, Vec<u8>) {
        let mut p = Canned {
            replies: replies.iter().map(|r| r.to_vec()).collect(),
            reply: Cursor::new(Vec::new()),
            sent: Vec::new(),
        };
        let r = ask_version(&mut p, Duration::from_millis(300));
        (r, p.sent)
    }

    fn ask(reply: &[u8]) -> Result<String, String> {
        let (r, sent) = ask_all(&[reply]);
        if r.is_ok() {
            assert_eq!(sent, b"V\r");
        }
        r
    }

    #[test]
    fn a_damaged_version_reply_is_asked_again() {
        // A dropped byte, then a doubled one, then the reply.
        let (r, sent) = ask_all(&[
            b"EBBv13_and_above EB Firmware Versio 3.0.3\r\n",
            b"EBBv13_and_above EB Firmware Version 3..0.3\r\n",
            b"EBBv13_and_above EB Firmware Version 3.0.3\r\n",
        ]);
        assert_eq!(r.unwrap(), "3.0.3");
        assert_eq!(sent, b"V\r\rV\r\rV\r");
        // A reply cut short is not read as a version until its line ends.
        let (r, _) = ask_all(&[b"EBBv13_and_above EB Firmware Version 3.0"]);
        assert!(r.is_err(), "{r:?}");
    }

    #[test]
    fn parses_both_reply_syntaxes() {
        assert_eq!(
            ask(b"EBBv13_and_above EB Firmware Version 2.8.1\r\n").unwrap(),
            "2.8.1"
        );
        assert_eq!(
            ask(b"V,EBBv13_and_above EB Firmware Version 3.0.3\n").unwrap(),
            "3.0.3"
        );
        assert!(ask(b"").unwrap_err().contains("no answer"));
        assert!(
            ask(b"OK\r\n")
                .unwrap_err()
                .contains("not from an EiBotBoard")
        );
        assert!(
            ask(b"EBB something\r\n")
                .unwrap_err()
                .contains("no firmware version")
        );
    }

    #[test]
    fn simulator_needs_no_probe_and_a_missing_port_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = crate::settings::Settings::defaults_for(dir.path()).device;
        s.kind = DeviceKind::Simulator;
        let mut r = Report::new("device");
        check(&s, &mut r);
        assert!(r.passed());
        s.kind = DeviceKind::Axidraw;
        s.port = Some(dir.path().join("ttyNOPE").display().to_string());
        let mut r = Report::new("device");
        check(&s, &mut r);
        assert!(!r.passed());
        assert!(r.items.iter().any(|i| i.detail.contains("does not exist")));
    }
}
