//! Boards told apart by who they are, not by the port they landed on: an EBB's nickname (`ST`
//! writes it to the board's flash, `QT` reads it; reference §1.4, firmware 2.5.4 and later) and
//! its USB serial number (which the EBB takes from the nickname it booted with).
//!
//! - [`Identity`]: what `device.nickname` and `device.serial` ask for, and whether a board
//!   listed by [`super::discover::find_boards`] is it ([`select`]: exactly one must be).
//! - [`identify`]: opens each board found and asks its firmware version (`V`) and nickname
//!   (`QT`), so that a listing says who is where (`plotty device list`, and the daemon when a
//!   nickname is configured).
//! - [`ask_nickname`] / [`write_nickname`]: the two queries on an open port, in either reply
//!   syntax (legacy `name` + `OK`, or `QT,name`), read line by line with a deadline like
//!   [`super::discover::ask_version`]. The `ST` command is encoded (and its name validated) by
//!   `plotty_motion::ebb`, the same rules `device.nickname` is checked by.
//!
//! A board that is busy (the daemon has it open) or does not answer stays in the listing with
//! the reason, so an error about a missing board names every board that was seen.

use std::fmt;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use plotty_motion::ebb::{Command, EncodeOptions, FirmwareVersion, Nickname};
use serde_json::{Value, json};

use super::discover::{self, FoundBoard};
use super::link::{DeviceError, Link};
use crate::settings::DeviceSettings;

/// Longest wait for each reply while identifying a board.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a bare `QT` line may stand alone before it counts as the newer syntax's reply for
/// an unset nickname (in the legacy syntax it would be a board named `QT`, followed by `OK`).
const BARE_QT_GRACE: Duration = Duration::from_millis(100);

/// The board a device wants: `device.nickname` and/or `device.serial` (both `None`: any).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Identity {
    /// The nickname `QT` must answer.
    pub nickname: Option<String>,
    /// The USB serial number the port must report.
    pub serial: Option<String>,
}

/// The outcome of [`select`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Selection {
    /// Exactly one board is the one wanted.
    One(FoundBoard),
    /// None is.
    None,
    /// Several are (two boards with the same nickname): choosing one could swap plotters.
    Several(Vec<FoundBoard>),
}

impl Identity {
    /// What `device` asks for.
    pub fn of(device: &DeviceSettings) -> Self {
        Self {
            nickname: device.nickname.clone(),
            serial: device.serial.clone(),
        }
    }

    /// Whether a particular board is asked for.
    pub fn is_set(&self) -> bool {
        self.nickname.is_some() || self.serial.is_some()
    }

    /// Whether boards must be asked for their nickname to be told apart (a USB serial number
    /// is in the port listing; a nickname only on the board).
    pub fn needs_nickname(&self) -> bool {
        self.nickname.is_some()
    }

    /// Whether `board` is the one wanted. A nickname that could not be asked never matches.
    pub fn matches(&self, board: &FoundBoard) -> bool {
        let serial = self
            .serial
            .as_deref()
            .is_none_or(|want| board.serial.as_deref() == Some(want));
        let nickname = self
            .nickname
            .as_deref()
            .is_none_or(|want| board.nickname.as_deref() == Some(want));
        serial && nickname
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.nickname, &self.serial) {
            (Some(n), Some(s)) => write!(f, "nickname \"{n}\" and USB serial \"{s}\""),
            (Some(n), None) => write!(f, "nickname \"{n}\""),
            (None, Some(s)) => write!(f, "USB serial \"{s}\""),
            (None, None) => f.write_str("any AxiDraw"),
        }
    }
}

/// Which of `boards` is the one `wanted` (every board when nothing in particular is wanted:
/// then the first is chosen, as before identities existed).
pub fn select(wanted: &Identity, boards: &[FoundBoard]) -> Selection {
    let mut matching: Vec<FoundBoard> = boards
        .iter()
        .filter(|b| wanted.matches(b))
        .cloned()
        .collect();
    if !wanted.is_set() {
        matching.truncate(1);
    }
    match matching.len() {
        0 => Selection::None,
        1 => Selection::One(matching.remove(0)),
        _ => Selection::Several(matching),
    }
}

/// Checks a nickname as `ST` will store it and `QT` read it back: 1 to 16 printable ASCII
/// characters, no spaces or commas, not `OK`, not starting with `!` (the rules of
/// `plotty_motion::ebb`'s encoder).
///
/// # Errors
/// What is wrong with it.
pub fn check_nickname(name: &str) -> Result<Nickname, String> {
    let nickname = Nickname::try_from(name).map_err(|_| {
        format!(
            "nickname \"{name}\" is {} bytes long; the board stores at most 16",
            name.len()
        )
    })?;
    Command::SetNickname(nickname.clone())
        .validate(FirmwareVersion::LATEST)
        .map_err(|e| format!("nickname \"{name}\": {e}"))?;
    Ok(nickname)
}

/// Opens each board of `boards` (exclusively, at `baud`) and fills in its firmware version and
/// nickname, or the reason it could not be asked.
pub fn identify(mut boards: Vec<FoundBoard>, baud: u32, timeout: Duration) -> Vec<FoundBoard> {
    for board in &mut boards {
        match identify_port(&board.port, baud, timeout) {
            Ok((firmware, nickname)) => {
                board.firmware = Some(firmware);
                board.nickname = nickname;
                board.problem = None;
            }
            Err(e) => board.problem = Some(e),
        }
    }
    boards
}

/// The firmware version and nickname (`None`: firmware older than 2.5.4, which has none) of
/// the board on `port`.
fn identify_port(
    port: &str,
    baud: u32,
    timeout: Duration,
) -> Result<(String, Option<String>), String> {
    let mut serial = super::link::serial::open(port, baud).map_err(|e| match e {
        super::link::DeviceError::Open { detail, .. } => format!("cannot open it: {detail}"),
        other => other.to_string(),
    })?;
    let version = discover::ask_version(serial.as_mut(), timeout)?;
    if !parse_version(&version).is_some_and(FirmwareVersion::has_nickname) {
        return Ok((version, None));
    }
    let nickname = ask_nickname(serial.as_mut(), timeout)?;
    Ok((version, Some(nickname)))
}

/// The version of a `V` reply's number (`3.0.3`).
pub fn parse_version(version: &str) -> Option<FirmwareVersion> {
    let line = format!("EBB {}{version}", FirmwareVersion::MARKER);
    FirmwareVersion::from_reply(line.as_bytes()).ok()
}

/// Sends `QT` and reads the nickname (empty: none set).
///
/// # Errors
/// The port failed, the board refused `QT` (firmware older than 2.5.4), or no whole answer
/// came within `timeout`.
pub fn ask_nickname<P: Read + Write + ?Sized>(
    port: &mut P,
    timeout: Duration,
) -> Result<String, String> {
    exchange(port, "QT", timeout, nickname_reply)
}

/// The nickname in the reply lines to `QT` so far (whole, non-empty, trimmed), if they hold a
/// whole answer; `quiet`: how long nothing has arrived.
fn nickname_reply(lines: &[String], quiet: Duration) -> Option<Result<String, String>> {
    for (i, line) in lines.iter().enumerate() {
        if let Some(refused) = refusal(line) {
            return Some(Err(format!(
                "the board refused `QT` ({refused}): its firmware has no nickname (2.5.4 and \
                 later have one)"
            )));
        }
        // Legacy syntax: the name (an empty line when unset, dropped here), then OK.
        if line == "OK" {
            return Some(Ok(i
                .checked_sub(1)
                .and_then(|p| lines.get(p))
                .cloned()
                .unwrap_or_default()));
        }
        // Newer syntax: `QT,name`, or a bare `QT` when unset (unless an OK follows).
        if let Some(name) = line.strip_prefix("QT,") {
            return Some(Ok(name.to_owned()));
        }
        if line == "QT" && lines.len() == i + 1 && quiet >= BARE_QT_GRACE {
            return Some(Ok(String::new()));
        }
    }
    None
}

/// [`ask_nickname`] on a device [`Link`] (the daemon's device task), timed by the link's clock:
/// the reply is read to its end, so the next session starts clean.
///
/// # Errors
/// The link failed, the board refused `QT`, or no whole answer came within `timeout`.
pub fn link_nickname<L: Link + ?Sized>(link: &mut L, timeout: Duration) -> Result<String, String> {
    let micros = |d: Duration| {
        plotty_motion::time::Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    };
    let deadline = link.now() + micros(timeout);
    let mut request: &[u8] = b"QT\r";
    let mut seen = Vec::new();
    let mut last_byte = link.now();
    loop {
        if !request.is_empty() {
            let n = link.write(request).map_err(|e| e.to_string())?;
            request = request.get(n..).unwrap_or_default();
        }
        let before = seen.len();
        link.read(&mut seen).map_err(|e| e.to_string())?;
        let now = link.now();
        if seen.len() > before {
            last_byte = now;
        }
        let end = seen.iter().rposition(|b| *b == b'\r' || *b == b'\n');
        let whole = end.map_or(&seen[..0], |e| &seen[..e]);
        let lines: Vec<String> = String::from_utf8_lossy(whole)
            .split(['\r', '\n'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        let quiet = Duration::from_micros(now.saturating_duration_since(last_byte).as_micros());
        if let Some(answer) = nickname_reply(&lines, quiet) {
            return answer;
        }
        if now >= deadline {
            return Err(format!(
                "no answer to `QT` within {} s",
                timeout.as_secs_f64()
            ));
        }
        // Short waits: a bare `QT` is told from a legacy name by a moment of quiet.
        let next = (now + micros(BARE_QT_GRACE)).min(deadline);
        link.wait(Some(next)).map_err(|e| e.to_string())?;
    }
}

/// Checks that the board behind `link` (just opened on `port`) is the one `wanted`: its USB
/// serial number (in the listing `boards`) and its nickname (asked with `QT`).
///
/// # Errors
/// [`DeviceError::WrongBoard`] naming what answers instead, or the board could not be asked.
pub fn verify<L: Link + ?Sized>(
    link: &mut L,
    port: &str,
    wanted: &Identity,
    boards: impl FnOnce() -> Result<Vec<FoundBoard>, String>,
) -> Result<(), DeviceError> {
    let mut found = FoundBoard {
        port: port.to_owned(),
        ..FoundBoard::default()
    };
    if wanted.serial.is_some() {
        found.serial = boards()
            .map_err(|detail| DeviceError::Io {
                port: port.to_owned(),
                detail: format!("cannot list the serial ports to check the board: {detail}"),
            })?
            .into_iter()
            .find(|b| b.port == port)
            .and_then(|b| b.serial);
    }
    if wanted.nickname.is_some() {
        let nickname = link_nickname(link, QUERY_TIMEOUT).map_err(|detail| DeviceError::Io {
            port: port.to_owned(),
            detail: format!("cannot read the board's nickname: {detail}"),
        })?;
        found.nickname = Some(nickname);
    }
    if wanted.matches(&found) {
        Ok(())
    } else {
        Err(DeviceError::WrongBoard {
            port: port.to_owned(),
            wanted: wanted.to_string(),
            found: board_line(&found),
        })
    }
}

/// Writes `name` to the board's flash with `ST` (checked for `firmware`, the version its `V`
/// reply gave), then reads it back with `QT`.
///
/// # Errors
/// The firmware cannot store a nickname, the board refused it, or it read back differently.
pub fn write_nickname<P: Read + Write + ?Sized>(
    port: &mut P,
    name: &Nickname,
    firmware: FirmwareVersion,
    timeout: Duration,
) -> Result<(), String> {
    let command = Command::SetNickname(name.clone());
    let mut buf = [0u8; plotty_motion::ebb::limits::MAX_ENCODED_LEN];
    let n = command
        .encode_with(&EncodeOptions::new(firmware), &mut buf)
        .map_err(|e| e.to_string())?;
    let request = String::from_utf8_lossy(buf.get(..n).unwrap_or_default())
        .trim_end_matches('\r')
        .to_owned();
    exchange(port, &request, timeout, |lines, _| {
        lines.iter().find_map(|line| {
            if let Some(refused) = refusal(line) {
                Some(Err(format!("the board refused `ST`: {refused}")))
            } else if line == "OK" || line == "ST" {
                Some(Ok(()))
            } else {
                None
            }
        })
    })?;
    let back = ask_nickname(port, timeout)?;
    if back == name.as_str() {
        Ok(())
    } else {
        Err(format!(
            "the board reads back \"{back}\" after `ST,{}`",
            name.as_str()
        ))
    }
}

/// The error text of a refusal line (`!8 Err: …`, or `QT,!8 Err: …` in the newer syntax).
fn refusal(line: &str) -> Option<&str> {
    let body = line.split_once(',').map_or(line, |(head, rest)| {
        if head.len() <= 2 && rest.starts_with('!') {
            rest
        } else {
            line
        }
    });
    body.starts_with('!').then_some(body)
}

/// Sends `request` + CR and reads whole, non-empty, trimmed lines until `finish` (given the
/// lines so far and how long nothing has arrived) decides, or `timeout` passes.
fn exchange<P: Read + Write + ?Sized, T>(
    port: &mut P,
    request: &str,
    timeout: Duration,
    mut finish: impl FnMut(&[String], Duration) -> Option<Result<T, String>>,
) -> Result<T, String> {
    let name = request.split(',').next().unwrap_or(request);
    port.write_all(format!("{request}\r").as_bytes())
        .and_then(|()| port.flush())
        .map_err(|e| format!("cannot send `{name}`: {e}"))?;
    let until = Instant::now() + timeout;
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 128];
    let mut last_byte = Instant::now();
    loop {
        let end = buf.iter().rposition(|b| *b == b'\r' || *b == b'\n');
        let whole = end.map_or(&buf[..0], |e| &buf[..e]);
        let lines: Vec<String> = String::from_utf8_lossy(whole)
            .split(['\r', '\n'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(done) = finish(&lines, last_byte.elapsed()) {
            return done;
        }
        if Instant::now() >= until || buf.len() > 1024 {
            let seen = String::from_utf8_lossy(&buf).trim().to_owned();
            return Err(if seen.is_empty() {
                format!("no answer to `{name}` within {} s", timeout.as_secs_f64())
            } else {
                format!("no complete answer to `{name}`: `{seen}`")
            });
        }
        match port.read(&mut chunk) {
            // A port with nothing to give returns 0 or times out: wait a little, not busily.
            Ok(0) => std::thread::sleep(Duration::from_millis(2)),
            Ok(n) => {
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                last_byte = Instant::now();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(format!("reading the answer to `{name}` failed: {e}")),
        }
    }
}

/// One board as `plotty device list` prints it: port, USB serial, nickname, firmware.
pub fn board_line(board: &FoundBoard) -> String {
    let mut parts = vec![board.port.clone()];
    parts.push(match &board.serial {
        Some(s) => format!("USB serial {s}"),
        None => "no USB serial".into(),
    });
    match (&board.nickname, &board.problem) {
        (Some(n), _) if !n.is_empty() => parts.push(format!("nickname \"{n}\"")),
        (Some(_), _) => parts.push("no nickname".into()),
        (None, Some(_)) => parts.push("nickname unknown".into()),
        (None, None) if board.firmware.is_some() => {
            parts.push("no nickname (firmware before 2.5.4)".into());
        }
        (None, None) => {}
    }
    if let Some(v) = &board.firmware {
        parts.push(format!("firmware {v}"));
    }
    if let Some(p) = &board.problem {
        parts.push(p.clone());
    }
    parts.join(", ")
}

/// Every board of a listing, for messages: `; `-separated [`board_line`]s, or that there
/// were none.
pub fn describe(boards: &[FoundBoard]) -> String {
    if boards.is_empty() {
        "no AxiDraw is connected (USB id 04D8:FD92)".into()
    } else {
        let lines: Vec<String> = boards.iter().map(board_line).collect();
        format!("found: {}", lines.join("; "))
    }
}

/// A board as `plotty device list --json` prints it.
pub fn board_json(board: &FoundBoard) -> Value {
    json!({
        "port": board.port,
        "serial": board.serial,
        "nickname": board.nickname,
        "firmware_version": board.firmware,
        "problem": board.problem,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// A board on a fake port: answers `V`, `QT` and `ST` as firmware of one reply syntax
    /// would, and stores the nickname like its flash.
    struct FakeBoard {
        future: bool,
        version: &'static str,
        nickname: String,
        input: Vec<u8>,
        output: VecDeque<u8>,
    }

    impl FakeBoard {
        fn new(future: bool, version: &'static str, nickname: &str) -> Self {
            Self {
                future,
                version,
                nickname: nickname.into(),
                input: Vec::new(),
                output: VecDeque::new(),
            }
        }

        fn answer(&mut self, command: &str) -> String {
            let (name, arg) = command.split_once(',').unwrap_or((command, ""));
            let modern = self.version.starts_with('3') || self.version >= "2.5.4";
            match (name, self.future) {
                ("V", false) => {
                    format!("EBBv13_and_above EB Firmware Version {}\r\n", self.version)
                }
                ("V", true) => format!("V,EBBv13_and_above EB Firmware Version {}\n", self.version),
                ("QT" | "ST", false) if !modern => {
                    format!("!8 Err: Unknown command '{name}:5154'\r\n")
                }
                ("QT", false) => format!("{}\r\nOK\r\n", self.nickname),
                ("QT", true) if self.nickname.is_empty() => "QT\n".into(),
                ("QT", true) => format!("QT,{}\n", self.nickname),
                ("ST", _) => {
                    self.nickname = arg.into();
                    if self.future { "ST\n" } else { "OK\r\n" }.into()
                }
                _ => "!8 Err: Unknown command\r\n".into(),
            }
        }
    }

    impl Read for FakeBoard {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.output.len()).min(7);
            if n == 0 {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            for b in buf.iter_mut().take(n) {
                *b = self.output.pop_front().unwrap();
            }
            Ok(n)
        }
    }

    impl Write for FakeBoard {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.input.extend_from_slice(buf);
            while let Some(end) = self.input.iter().position(|b| *b == b'\r') {
                let line: Vec<u8> = self.input.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line[..end]).into_owned();
                let reply = self.answer(&text);
                self.output.extend(reply.bytes());
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    const T: Duration = Duration::from_millis(500);

    #[test]
    fn nicknames_are_read_in_both_reply_syntaxes_and_unset_is_empty() {
        for future in [false, true] {
            let mut b = FakeBoard::new(future, "3.0.3", "left");
            assert_eq!(ask_nickname(&mut b, T).unwrap(), "left", "future {future}");
            let mut b = FakeBoard::new(future, "3.0.3", "");
            assert_eq!(ask_nickname(&mut b, T).unwrap(), "", "future {future}");
        }
        // A legacy board named `QT` is not mistaken for the newer syntax's unset reply.
        let mut b = FakeBoard::new(false, "3.0.3", "QT");
        assert_eq!(ask_nickname(&mut b, T).unwrap(), "QT");
        // Firmware without nicknames refuses `QT`.
        let mut b = FakeBoard::new(false, "2.5.0", "");
        let e = ask_nickname(&mut b, T).unwrap_err();
        assert!(e.contains("has no nickname"), "{e}");
        // Nothing answers.
        struct Silent;
        impl Read for Silent {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Ok(0)
            }
        }
        impl Write for Silent {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let e = ask_nickname(&mut Silent, Duration::from_millis(30)).unwrap_err();
        assert!(e.contains("no answer to `QT`"), "{e}");
    }

    #[test]
    fn a_nickname_is_written_with_st_and_read_back() {
        for future in [false, true] {
            let mut b = FakeBoard::new(future, "3.0.3", "old");
            let name = check_nickname("Studio-Left_1").unwrap();
            let v = parse_version("3.0.3").unwrap();
            write_nickname(&mut b, &name, v, T).unwrap();
            assert_eq!(b.nickname, "Studio-Left_1");
            assert_eq!(ask_nickname(&mut b, T).unwrap(), "Studio-Left_1");
        }
        // Firmware before 2.5.4 is told so before anything is sent.
        let mut b = FakeBoard::new(false, "2.5.0", "");
        let e = write_nickname(
            &mut b,
            &check_nickname("x").unwrap(),
            parse_version("2.5.0").unwrap(),
            T,
        )
        .unwrap_err();
        assert!(e.contains("2.5.4"), "{e}");
        assert!(b.input.is_empty() && b.output.is_empty());
    }

    #[test]
    fn nicknames_are_checked_as_the_board_stores_them() {
        assert!(check_nickname("AxiDraw-A3_2").is_ok());
        assert!(check_nickname("sixteen-chars-ok").is_ok());
        for bad in [
            "",
            "seventeen-chars-x",
            "has space",
            "a,b",
            "OK",
            "!x",
            "tab\t",
            "é",
        ] {
            let e = check_nickname(bad).unwrap_err();
            assert!(e.contains("nickname"), "{bad:?}: {e}");
        }
    }

    /// Sends `command` on `link` and reads until its acknowledgement (`OK` or the command's name).
    fn send<L: Link>(link: &mut L, command: &str, ack: &str) {
        link.write(format!("{command}\r").as_bytes()).unwrap();
        let mut seen = Vec::new();
        for _ in 0..1000 {
            link.read(&mut seen).unwrap();
            if String::from_utf8_lossy(&seen)
                .lines()
                .any(|l| l.trim() == ack)
            {
                return;
            }
            let next = link.now() + plotty_motion::time::Duration::from_micros(1_000);
            link.wait(Some(next)).unwrap();
        }
        panic!(
            "no {ack:?} after {command}: {:?}",
            String::from_utf8_lossy(&seen)
        );
    }

    #[test]
    fn a_link_is_driven_only_when_the_configured_board_is_behind_it() {
        let left = Identity {
            nickname: Some("left".into()),
            serial: None,
        };
        let no_listing = || -> Result<Vec<FoundBoard>, String> { panic!("not needed") };
        // A simulated board, first unnamed, in both reply syntaxes.
        for future in [false, true] {
            let mut link =
                crate::devices::link::sim::SimLink::new(plotty_fw_sim::FirmwareVersion::V3_0_3);
            if future {
                send(&mut link, "CU,10,1", "");
            }
            assert_eq!(link_nickname(&mut link, T).unwrap(), "", "future {future}");
            let e = verify(&mut link, "/dev/ttyACM0", &left, no_listing).unwrap_err();
            assert!(
                matches!(&e, DeviceError::WrongBoard { found, .. } if found.contains("no nickname")),
                "{e}"
            );
            send(&mut link, "ST,left", if future { "ST" } else { "OK" });
            verify(&mut link, "/dev/ttyACM0", &left, no_listing).unwrap();
            let right = Identity {
                nickname: Some("right".into()),
                serial: None,
            };
            let e = verify(&mut link, "/dev/ttyACM0", &right, no_listing)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("not the one configured (nickname \"right\")")
                    && e.contains("nickname \"left\""),
                "{e}"
            );
            // What to do when the port is fixed.
            assert!(
                e.contains("plug its board back into /dev/ttyACM0, or set `device.port`")
                    && e.contains("then reload"),
                "{e}"
            );
        }
        // By USB serial number: the port's entry in the listing.
        let mut link =
            crate::devices::link::sim::SimLink::new(plotty_fw_sim::FirmwareVersion::V3_0_3);
        let s1 = Identity {
            nickname: None,
            serial: Some("S1".into()),
        };
        let listing = |serial: &'static str| {
            move || {
                Ok(vec![FoundBoard {
                    port: "/dev/ttyACM0".into(),
                    serial: Some(serial.into()),
                    ..FoundBoard::default()
                }])
            }
        };
        verify(&mut link, "/dev/ttyACM0", &s1, listing("S1")).unwrap();
        let e = verify(&mut link, "/dev/ttyACM0", &s1, listing("S2")).unwrap_err();
        assert!(e.to_string().contains("USB serial S2"), "{e}");
    }

    fn found(port: &str, serial: Option<&str>, nickname: Option<&str>) -> FoundBoard {
        FoundBoard {
            port: port.into(),
            serial: serial.map(str::to_owned),
            nickname: nickname.map(str::to_owned),
            firmware: Some("3.0.3".into()),
            problem: None,
        }
    }

    #[test]
    fn a_board_is_selected_by_nickname_or_serial_whatever_its_port() {
        let boards = [
            found("/dev/ttyACM0", Some("S1"), Some("right")),
            found("/dev/ttyACM1", Some("S2"), Some("left")),
        ];
        // Re-plugged: the same boards on swapped ports.
        let swapped = [
            found("/dev/ttyACM0", Some("S2"), Some("left")),
            found("/dev/ttyACM1", Some("S1"), Some("right")),
        ];
        let left = Identity {
            nickname: Some("left".into()),
            serial: None,
        };
        let s1 = Identity {
            nickname: None,
            serial: Some("S1".into()),
        };
        let port = |s: Selection| match s {
            Selection::One(b) => b.port,
            other => panic!("{other:?}"),
        };
        assert_eq!(port(select(&left, &boards)), "/dev/ttyACM1");
        assert_eq!(port(select(&left, &swapped)), "/dev/ttyACM0");
        assert_eq!(port(select(&s1, &boards)), "/dev/ttyACM0");
        assert_eq!(port(select(&s1, &swapped)), "/dev/ttyACM1");
        // Both must hold when both are given.
        let both = Identity {
            nickname: Some("left".into()),
            serial: Some("S1".into()),
        };
        assert_eq!(select(&both, &boards), Selection::None);
        // Nothing in particular: the first, as before.
        assert_eq!(port(select(&Identity::default(), &boards)), "/dev/ttyACM0");
        assert_eq!(select(&Identity::default(), &[]), Selection::None);
    }

    #[test]
    fn two_boards_with_one_nickname_or_an_unknown_one_are_never_guessed() {
        let twins = [
            found("/dev/ttyACM0", None, Some("left")),
            found("/dev/ttyACM1", None, Some("left")),
        ];
        let left = Identity {
            nickname: Some("left".into()),
            serial: None,
        };
        assert!(matches!(select(&left, &twins), Selection::Several(b) if b.len() == 2));
        // A board that could not be asked (busy) does not match by nickname.
        let mut busy = found("/dev/ttyACM2", None, None);
        busy.problem = Some("cannot open it: busy".into());
        assert_eq!(select(&left, std::slice::from_ref(&busy)), Selection::None);
        let text = describe(&[twins[0].clone(), busy]);
        assert!(
            text.contains("/dev/ttyACM0, no USB serial, nickname \"left\", firmware 3.0.3"),
            "{text}"
        );
        assert!(
            text.contains("/dev/ttyACM2, no USB serial, nickname unknown"),
            "{text}"
        );
        assert!(text.contains("busy"), "{text}");
        assert!(describe(&[]).contains("no AxiDraw"));
    }
}
