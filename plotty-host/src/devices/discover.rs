//! Finding the plotter: which device a plot uses (`--device auto|sim|PORT`, config
//! `device.type` and `device.port`), AxiDraws found by their USB id (04D8:FD92, the
//! EiBotBoard), and a quick check that a port really has an EBB behind it.
//!
//! Discovery uses `serialport::available_ports()`, which reads sysfs without libudev and still
//! reports USB vendor and product ids. This is the one implementation: `plotty plot`, the
//! daemon's device layer (at start-up and its re-scans while `auto` runs on the simulator) and
//! `plotty check device` all use it. With `device.nickname` or `device.serial` the board is
//! chosen by who it is, whatever port it is on ([`super::identity`]); otherwise the first found.
//!
//! Boards served by `plotty-fw-sim serve` on a pseudo-terminal (which has no USB identity) are
//! listed too when `PLOTTY_FW_SIM_PORTS` names the directory of their port cards
//! (`plotty_fw_sim::announce`): only then, so that a simulator started for another program is
//! never taken for the plotter.

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::settings::{DeviceKind, DeviceSettings};

use super::identity::{self, Identity, Selection};
use super::link::DeviceError;

/// USB vendor id of the EiBotBoard.
pub const EBB_VID: u16 = 0x04D8;
/// USB product id of the EiBotBoard.
pub const EBB_PID: u16 = 0xFD92;

/// Longest wait for the version reply when probing a port: a board answers within
/// milliseconds, and a port that is not a plotter should not keep the user waiting.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the user asked for with `--device` (or nothing).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum DeviceRequest {
    /// `--device auto`: an AxiDraw found by USB id, else the simulator.
    Auto,
    /// `--device sim` (or `simulator`).
    Simulator,
    /// `--device axidraw`: an AxiDraw found by USB id; an error when none is connected.
    Axidraw,
    /// `--device PORT`.
    Port(String),
    /// No `--device`: what `device.type` and `device.port` say.
    Config,
}

/// The device a plot will use.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Target {
    /// The built-in simulator.
    Simulator {
        /// Why: asked for, or no AxiDraw was found.
        reason: SimulatorReason,
    },
    /// A serial port.
    Serial {
        /// The port's path.
        port: String,
        /// How it was chosen.
        found: PortOrigin,
    },
}

/// Why the simulator is used.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SimulatorReason {
    /// `--device sim` or `device.type: simulator`.
    Requested,
    /// `auto` and no AxiDraw is connected.
    NoneFound,
}

/// How a serial port was chosen.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum PortOrigin {
    /// `--device PORT`.
    CommandLine,
    /// `device.port` in the config.
    Config,
    /// Found by USB id (with its serial number, if it has one).
    Usb {
        /// The board's USB serial number.
        serial: Option<String>,
    },
    /// Found by `device.nickname` / `device.serial` among the boards connected.
    Identity {
        /// What was asked for (`nickname "left"`).
        wanted: String,
    },
}

/// A serial port with the EiBotBoard's USB id.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct FoundBoard {
    /// The port's path.
    pub port: String,
    /// Its USB serial number.
    pub serial: Option<String>,
    /// Its nickname as `QT` answered (empty: none set); `None`: not asked, or not answered.
    pub nickname: Option<String>,
    /// Its firmware version, once asked ([`identity::identify`]).
    pub firmware: Option<String>,
    /// Why it could not be asked (busy, no answer).
    pub problem: Option<String>,
}

impl DeviceRequest {
    /// The request of a `--device` value (`None`: not given). The words are those of
    /// `device.type` in the config ([`DeviceKind::parse`]); anything else is a port.
    pub fn parse(value: Option<&str>) -> Self {
        let Some(v) = value.map(str::trim) else {
            return Self::Config;
        };
        match DeviceKind::parse(v) {
            Some(DeviceKind::Auto) => Self::Auto,
            Some(DeviceKind::Simulator) => Self::Simulator,
            Some(DeviceKind::Axidraw) => Self::Axidraw,
            None => Self::Port(v.to_owned()),
        }
    }
}

impl Target {
    /// Whether this is the simulator.
    pub fn is_simulator(&self) -> bool {
        matches!(self, Self::Simulator { .. })
    }
}

/// The device for `request` under the `device` settings; `boards` lists the AxiDraws
/// connected (see [`find_boards`]), looked at only when a search is needed.
///
/// With `device.nickname` or `device.serial` (and no `device.port`), a search finds that board
/// or fails: `auto` does not fall back to the simulator then, as a wrong board could be drawn
/// on. The listing must then carry the nicknames ([`list`] asks them).
///
/// # Errors
/// `device.type: axidraw` (or `--device auto` is not involved) and no board is connected; a
/// configured identity that no board has, or that several have.
pub fn choose(
    request: &DeviceRequest,
    device: &DeviceSettings,
    boards: impl FnOnce() -> Result<Vec<FoundBoard>, String>,
) -> Result<Target, DeviceError> {
    let wanted = Identity::of(device);
    if wanted.is_set()
        && device.port.is_none()
        && matches!(
            (request, device.kind),
            (DeviceRequest::Auto | DeviceRequest::Axidraw, _)
                | (
                    DeviceRequest::Config,
                    DeviceKind::Auto | DeviceKind::Axidraw
                )
        )
    {
        return by_identity(&wanted, boards());
    }
    let search = |boards: Result<Vec<FoundBoard>, String>| match boards {
        Ok(found) => found.into_iter().next(),
        // Listing ports failed: treated as none found (the message says how to name one).
        Err(_) => None,
    };
    match request {
        DeviceRequest::Simulator => Ok(Target::Simulator {
            reason: SimulatorReason::Requested,
        }),
        DeviceRequest::Port(port) => Ok(Target::Serial {
            port: port.clone(),
            found: PortOrigin::CommandLine,
        }),
        DeviceRequest::Auto => Ok(match search(boards()) {
            Some(b) => usb_target(b),
            None => Target::Simulator {
                reason: SimulatorReason::NoneFound,
            },
        }),
        DeviceRequest::Config => match (device.kind, &device.port) {
            (DeviceKind::Simulator, _) => Ok(Target::Simulator {
                reason: SimulatorReason::Requested,
            }),
            (_, Some(port)) => Ok(Target::Serial {
                port: port.clone(),
                found: PortOrigin::Config,
            }),
            (DeviceKind::Auto, None) => Ok(match search(boards()) {
                Some(b) => usb_target(b),
                None => Target::Simulator {
                    reason: SimulatorReason::NoneFound,
                },
            }),
            (DeviceKind::Axidraw, None) => first_board(boards()),
        },
        // `device.port` is where the AxiDraw is, when the config names one.
        DeviceRequest::Axidraw => match &device.port {
            Some(port) => Ok(Target::Serial {
                port: port.clone(),
                found: PortOrigin::Config,
            }),
            None => first_board(boards()),
        },
    }
}

/// The first AxiDraw found by USB id; an error when there is none.
fn first_board(boards: Result<Vec<FoundBoard>, String>) -> Result<Target, DeviceError> {
    match boards {
        Ok(found) => found
            .into_iter()
            .next()
            .map(usb_target)
            .ok_or(DeviceError::NotFound { listing: None }),
        Err(e) => Err(DeviceError::NotFound { listing: Some(e) }),
    }
}

/// The one board of `boards` that is `wanted`; an error naming every board found otherwise.
fn by_identity(
    wanted: &Identity,
    boards: Result<Vec<FoundBoard>, String>,
) -> Result<Target, DeviceError> {
    let found = boards.map_err(|e| DeviceError::NotFound { listing: Some(e) })?;
    match identity::select(wanted, &found) {
        Selection::One(b) => Ok(Target::Serial {
            port: b.port,
            found: PortOrigin::Identity {
                wanted: wanted.to_string(),
            },
        }),
        Selection::None => Err(DeviceError::NoSuchBoard {
            wanted: wanted.to_string(),
            found: identity::describe(&found),
        }),
        Selection::Several(several) => Err(DeviceError::SeveralBoards {
            wanted: wanted.to_string(),
            count: several.len(),
            found: identity::describe(&several),
        }),
    }
}

fn usb_target(b: FoundBoard) -> Target {
    Target::Serial {
        port: b.port,
        found: PortOrigin::Usb { serial: b.serial },
    }
}

/// Serial ports with the EiBotBoard's USB id (04D8:FD92), in the order the system lists them,
/// then the boards `plotty-fw-sim serve` announces in `$PLOTTY_FW_SIM_PORTS` (when set; see
/// the module documentation).
///
/// # Errors
/// The ports cannot be listed (the message says why).
pub fn find_boards() -> Result<Vec<FoundBoard>, String> {
    let ports = serialport::available_ports().map_err(|e| e.to_string())?;
    let mut boards: Vec<FoundBoard> = ports
        .into_iter()
        .filter_map(|p| match p.port_type {
            serialport::SerialPortType::UsbPort(u) if u.vid == EBB_VID && u.pid == EBB_PID => {
                Some(FoundBoard {
                    port: p.port_name,
                    serial: u.serial_number,
                    ..FoundBoard::default()
                })
            }
            _ => None,
        })
        .collect();
    if let Some(dir) =
        std::env::var_os(plotty_fw_sim::announce::PORTS_DIR_ENV).filter(|d| !d.is_empty())
    {
        boards.extend(
            plotty_fw_sim::announce::served_boards(Path::new(&dir))
                .into_iter()
                .map(|b| FoundBoard {
                    port: b.device.display().to_string(),
                    serial: b.serial,
                    ..FoundBoard::default()
                }),
        );
    }
    Ok(boards)
}

/// [`find_boards`], each board also asked for its firmware version and nickname (opened at
/// `baud`) when `wanted` needs the nickname to tell the boards apart.
///
/// # Errors
/// The ports cannot be listed.
pub fn list(wanted: &Identity, baud: u32) -> Result<Vec<FoundBoard>, String> {
    let boards = find_boards()?;
    Ok(if wanted.needs_nickname() {
        identity::identify(boards, baud, identity::QUERY_TIMEOUT)
    } else {
        boards
    })
}

/// Opens `port` as a plot does (exclusively, at `baud`) and asks for the firmware version,
/// waiting at most `timeout`: the check that a port is a plotter before a plot starts.
///
/// # Errors
/// The port cannot be opened, or what answers is not an EiBotBoard.
pub fn probe(port: &str, baud: u32, timeout: Duration) -> Result<String, DeviceError> {
    let mut serial = super::link::serial::open(port, baud)?;
    ask_version(serial.as_mut(), timeout).map_err(|detail| DeviceError::NotAPlotter {
        port: port.to_owned(),
        detail,
    })
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

/// Whether `port` exists as a file (for the message when it does not).
pub fn port_exists(port: &str) -> bool {
    Path::new(port).exists()
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Simulator {
                reason: SimulatorReason::Requested,
            } => f.write_str("the built-in simulator"),
            Self::Simulator {
                reason: SimulatorReason::NoneFound,
            } => f.write_str(
                "the built-in simulator (no AxiDraw found by USB id 04D8:FD92; connect one, \
                 or name its port with --device PORT)",
            ),
            Self::Serial { port, found } => match found {
                PortOrigin::CommandLine => write!(f, "the plotter on {port}"),
                PortOrigin::Config => write!(f, "the plotter on {port} (device.port)"),
                PortOrigin::Usb { serial: Some(s) } => {
                    write!(f, "the AxiDraw on {port} (found by USB id, serial {s})")
                }
                PortOrigin::Usb { serial: None } => {
                    write!(f, "the AxiDraw on {port} (found by USB id)")
                }
                PortOrigin::Identity { wanted } => {
                    write!(f, "the AxiDraw on {port} (found by {wanted})")
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::settings::Settings;

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

    fn device(kind: DeviceKind, port: Option<&str>) -> DeviceSettings {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Settings::defaults_for(dir.path()).device;
        d.kind = kind;
        d.port = port.map(str::to_owned);
        d
    }

    fn board() -> Result<Vec<FoundBoard>, String> {
        Ok(vec![FoundBoard {
            port: "/dev/ttyACM3".into(),
            serial: Some("X1".into()),
            ..FoundBoard::default()
        }])
    }

    fn none() -> Result<Vec<FoundBoard>, String> {
        Ok(Vec::new())
    }

    #[test]
    fn requests() {
        assert_eq!(DeviceRequest::parse(None), DeviceRequest::Config);
        assert_eq!(DeviceRequest::parse(Some("AUTO")), DeviceRequest::Auto);
        assert_eq!(DeviceRequest::parse(Some("sim")), DeviceRequest::Simulator);
        assert_eq!(
            DeviceRequest::parse(Some(" Simulator")),
            DeviceRequest::Simulator
        );
        assert_eq!(
            DeviceRequest::parse(Some("axidraw")),
            DeviceRequest::Axidraw
        );
        assert_eq!(
            DeviceRequest::parse(Some("/dev/ttyUSB0")),
            DeviceRequest::Port("/dev/ttyUSB0".into())
        );
    }

    #[test]
    fn auto_uses_a_board_or_the_simulator_and_says_why() {
        let d = device(DeviceKind::Auto, None);
        let t = choose(&DeviceRequest::Config, &d, board).unwrap();
        assert_eq!(
            t,
            Target::Serial {
                port: "/dev/ttyACM3".into(),
                found: PortOrigin::Usb {
                    serial: Some("X1".into())
                }
            }
        );
        let t = choose(&DeviceRequest::Auto, &d, none).unwrap();
        assert!(t.is_simulator());
        assert!(t.to_string().contains("no AxiDraw found"), "{t}");
        let t = choose(&DeviceRequest::Config, &d, || Err("no sysfs".into())).unwrap();
        assert!(t.is_simulator());
    }

    #[test]
    fn explicit_choices_win() {
        let d = device(DeviceKind::Axidraw, Some("/dev/ttyS9"));
        assert_eq!(
            choose(&DeviceRequest::Simulator, &d, board).unwrap(),
            Target::Simulator {
                reason: SimulatorReason::Requested
            }
        );
        let t = choose(&DeviceRequest::Config, &d, board).unwrap();
        assert_eq!(t.to_string(), "the plotter on /dev/ttyS9 (device.port)");
        let t = choose(&DeviceRequest::Port("/dev/x".into()), &d, board).unwrap();
        assert_eq!(t.to_string(), "the plotter on /dev/x");
        let d = device(DeviceKind::Simulator, None);
        assert!(
            choose(&DeviceRequest::Config, &d, board)
                .unwrap()
                .is_simulator()
        );
    }

    #[test]
    fn axidraw_without_a_board_is_an_error() {
        let d = device(DeviceKind::Axidraw, None);
        let e = choose(&DeviceRequest::Config, &d, none).unwrap_err();
        assert!(e.to_string().contains("no AxiDraw"), "{e}");
        // `--device axidraw` asks the same, whatever device.type says.
        let d = device(DeviceKind::Simulator, None);
        assert!(choose(&DeviceRequest::Axidraw, &d, none).is_err());
        assert!(
            !choose(&DeviceRequest::Axidraw, &d, board)
                .unwrap()
                .is_simulator()
        );
    }

    #[test]
    fn a_configured_identity_chooses_its_board_or_fails_naming_what_was_found() {
        let named = |port: &str, nickname: &str| FoundBoard {
            port: port.into(),
            nickname: Some(nickname.into()),
            firmware: Some("3.0.3".into()),
            ..FoundBoard::default()
        };
        let two = || {
            Ok(vec![
                named("/dev/ttyACM0", "right"),
                named("/dev/ttyACM1", "left"),
            ])
        };
        for kind in [DeviceKind::Auto, DeviceKind::Axidraw] {
            let mut d = device(kind, None);
            d.nickname = Some("left".into());
            let t = choose(&DeviceRequest::Config, &d, two).unwrap();
            assert_eq!(
                t.to_string(),
                "the AxiDraw on /dev/ttyACM1 (found by nickname \"left\")"
            );
            // `plot --device auto|axidraw` asks for the same board.
            for r in [DeviceRequest::Auto, DeviceRequest::Axidraw] {
                assert_eq!(choose(&r, &d, two).unwrap(), t);
            }
            // No such board: an error (not the simulator) that lists the boards seen.
            d.nickname = Some("middle".into());
            let e = choose(&DeviceRequest::Config, &d, two)
                .unwrap_err()
                .to_string();
            assert!(e.contains("no AxiDraw has nickname \"middle\""), "{e}");
            assert!(
                e.contains("/dev/ttyACM0, no USB serial, nickname \"right\""),
                "{e}"
            );
            assert!(e.contains("nickname \"left\""), "{e}");
            let e = choose(&DeviceRequest::Config, &d, none)
                .unwrap_err()
                .to_string();
            assert!(e.contains("no AxiDraw is connected"), "{e}");
            // Two boards of one name: never guessed.
            d.nickname = Some("twin".into());
            let twins = || {
                Ok(vec![
                    named("/dev/ttyACM0", "twin"),
                    named("/dev/ttyACM1", "twin"),
                ])
            };
            let e = choose(&DeviceRequest::Config, &d, twins)
                .unwrap_err()
                .to_string();
            assert!(e.contains("2 AxiDraws have nickname \"twin\""), "{e}");
            assert!(
                e.contains("/dev/ttyACM0") && e.contains("/dev/ttyACM1"),
                "{e}"
            );
        }
        // A USB serial number selects without asking the board.
        let mut d = device(DeviceKind::Axidraw, None);
        d.serial = Some("X1".into());
        let t = choose(&DeviceRequest::Config, &d, board).unwrap();
        assert_eq!(
            t.to_string(),
            "the AxiDraw on /dev/ttyACM3 (found by USB serial \"X1\")"
        );
        // The simulator and an explicit port are not searched.
        let mut d = device(DeviceKind::Simulator, None);
        d.nickname = Some("left".into());
        assert!(
            choose(&DeviceRequest::Config, &d, two)
                .unwrap()
                .is_simulator()
        );
        assert_eq!(
            choose(&DeviceRequest::Port("/dev/x".into()), &d, two)
                .unwrap()
                .to_string(),
            "the plotter on /dev/x"
        );
    }
}
