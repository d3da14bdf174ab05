//! `plotty device list` and `plotty device name NEW [--port P | --nickname OLD]`: the boards
//! connected to this computer, asked directly (not through the daemon), and a nickname written
//! to one of them so that `device.nickname` finds it wherever it is plugged in.
//!
//! The listing is [`discover::find_boards`] with each board asked for its firmware version and
//! nickname ([`identity::identify`]); naming writes with `ST` and reads back with `QT`
//! ([`identity::write_nickname`]). Which board `name` writes to is decided by
//! [`name_target`] from a listing, so that it is tested without hardware.

use serde_json::json;

use super::discover::{self, FoundBoard};
use super::identity::{self, Identity, Selection};
use super::link::DeviceError;

/// The baud rate the boards are opened at (the EBB ignores it over USB).
const BAUD: u32 = 9600;

/// `plotty device list|name` failed.
#[derive(Debug, thiserror::Error)]
pub enum BoardsError {
    /// The new nickname cannot be stored as given.
    #[error("{0}")]
    Invalid(String),
    /// The serial ports cannot be listed.
    #[error("cannot list the serial ports: {0}")]
    Listing(String),
    /// No board, several boards, or a board that cannot be opened.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The board did not take the name.
    #[error("{port}: {detail}")]
    Refused {
        /// The board's port.
        port: String,
        /// What happened.
        detail: String,
    },
    /// `name` without `--port` or `--nickname` and several boards are connected.
    #[error(
        "{count} AxiDraws are connected ({found}): say which with --port PORT or --nickname OLD"
    )]
    Which {
        /// How many.
        count: usize,
        /// Them.
        found: String,
    },
}

impl BoardsError {
    /// The documented exit code: 2 for a name that cannot be stored, else 5 (device).
    pub fn exit_code(&self) -> crate::exit::ExitCode {
        match self {
            Self::Invalid(_) => crate::exit::ExitCode::Config,
            _ => crate::exit::ExitCode::Device,
        }
    }
}

/// `plotty device list`: the text (a table) or JSON to print.
///
/// # Errors
/// The ports cannot be listed.
pub fn list(json: bool) -> Result<String, BoardsError> {
    let boards = discover::find_boards().map_err(BoardsError::Listing)?;
    let boards = identity::identify(boards, BAUD, identity::QUERY_TIMEOUT);
    Ok(if json {
        let list: Vec<_> = boards.iter().map(identity::board_json).collect();
        format!("{}\n", json!({ "boards": list }))
    } else {
        table(&boards)
    })
}

/// The listing as a table: port, USB serial, nickname, firmware, and any problem.
fn table(boards: &[FoundBoard]) -> String {
    if boards.is_empty() {
        return "no AxiDraw found (USB id 04D8:FD92): plug it in and switch it on\n".into();
    }
    let rows: Vec<[String; 5]> = boards
        .iter()
        .map(|b| {
            [
                b.port.clone(),
                b.serial.clone().unwrap_or_else(|| "-".into()),
                match &b.nickname {
                    Some(n) if !n.is_empty() => n.clone(),
                    Some(_) => "(none)".into(),
                    None => "?".into(),
                },
                b.firmware.clone().unwrap_or_else(|| "?".into()),
                b.problem.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = [
        "PORT".to_owned(),
        "USB SERIAL".into(),
        "NICKNAME".into(),
        "FIRMWARE".into(),
        String::new(),
    ];
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// What `name` did.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Named {
    /// The board's port.
    pub port: String,
    /// Its nickname now.
    pub nickname: String,
    /// Its nickname before (empty: none).
    pub previous: String,
}

/// `plotty device name NEW [--port P | --nickname OLD]`: the text or JSON to print.
///
/// # Errors
/// The name cannot be stored, the board is not found (or not one), or it did not take it.
pub fn name(
    new: &str,
    port: Option<&str>,
    old: Option<&str>,
    json: bool,
) -> Result<String, BoardsError> {
    let nickname = identity::check_nickname(new).map_err(BoardsError::Invalid)?;
    let port = name_target(port, old, || {
        discover::find_boards().map(|b| identity::identify(b, BAUD, identity::QUERY_TIMEOUT))
    })?;
    let named = write(&port, &nickname)?;
    Ok(if json {
        format!(
            "{}\n",
            json!({ "port": named.port, "nickname": named.nickname, "previous": named.previous })
        )
    } else {
        let previous = if named.previous.is_empty() {
            "it had none".to_owned()
        } else {
            format!("it was \"{}\"", named.previous)
        };
        format!(
            "{}: nickname \"{}\" ({previous}); the board reports it as its USB serial number \
             once it restarts (unplug it or switch it off and on)\n",
            named.port, named.nickname
        )
    })
}

/// The port of the board `name` writes to: `port` if given; else the board nicknamed `old`;
/// else the only board of the listing `boards` (which must carry the nicknames).
///
/// # Errors
/// The listing failed, or it has no such board, or several.
pub fn name_target(
    port: Option<&str>,
    old: Option<&str>,
    boards: impl FnOnce() -> Result<Vec<FoundBoard>, String>,
) -> Result<String, BoardsError> {
    if let Some(port) = port {
        return Ok(port.to_owned());
    }
    let found = boards().map_err(BoardsError::Listing)?;
    let wanted = Identity {
        nickname: old.map(str::to_owned),
        serial: None,
    };
    if old.is_none() {
        return match found.as_slice() {
            [one] => Ok(one.port.clone()),
            [] => Err(DeviceError::NotFound { listing: None }.into()),
            several => Err(BoardsError::Which {
                count: several.len(),
                found: identity::describe(several),
            }),
        };
    }
    match identity::select(&wanted, &found) {
        Selection::One(b) => Ok(b.port),
        Selection::None => Err(DeviceError::NoSuchBoard {
            wanted: wanted.to_string(),
            found: identity::describe(&found),
        }
        .into()),
        Selection::Several(b) => Err(DeviceError::SeveralBoards {
            wanted: wanted.to_string(),
            count: b.len(),
            found: identity::describe(&b),
        }
        .into()),
    }
}

/// Opens `port`, asks its version and nickname, and writes `nickname`.
fn write(port: &str, nickname: &plotty_motion::ebb::Nickname) -> Result<Named, BoardsError> {
    let refused = |detail: String| BoardsError::Refused {
        port: port.to_owned(),
        detail,
    };
    let mut serial = super::link::serial::open(port, BAUD)?;
    let version =
        discover::ask_version(serial.as_mut(), identity::QUERY_TIMEOUT).map_err(|detail| {
            DeviceError::NotAPlotter {
                port: port.to_owned(),
                detail,
            }
        })?;
    let firmware = identity::parse_version(&version)
        .ok_or_else(|| refused(format!("firmware version {version} cannot be read")))?;
    let previous = if firmware.has_nickname() {
        identity::ask_nickname(serial.as_mut(), identity::QUERY_TIMEOUT).map_err(refused)?
    } else {
        String::new()
    };
    identity::write_nickname(serial.as_mut(), nickname, firmware, identity::QUERY_TIMEOUT)
        .map_err(refused)?;
    Ok(Named {
        port: port.to_owned(),
        nickname: nickname.as_str().to_owned(),
        previous,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(port: &str, nickname: &str) -> FoundBoard {
        FoundBoard {
            port: port.into(),
            nickname: Some(nickname.into()),
            firmware: Some("3.0.3".into()),
            ..FoundBoard::default()
        }
    }

    #[test]
    fn the_board_to_name_is_the_port_given_the_old_name_or_the_only_one() {
        let unused = || -> Result<Vec<FoundBoard>, String> { panic!("no listing needed") };
        assert_eq!(name_target(Some("/dev/x"), None, unused).unwrap(), "/dev/x");
        let two = || Ok(vec![board("/dev/a", "left"), board("/dev/b", "")]);
        assert_eq!(name_target(None, Some("left"), two).unwrap(), "/dev/a");
        let e = name_target(None, Some("right"), two)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no AxiDraw has nickname \"right\""), "{e}");
        assert!(e.contains("/dev/b, no USB serial, no nickname"), "{e}");
        let e = name_target(None, None, two).unwrap_err().to_string();
        assert!(
            e.contains("2 AxiDraws are connected") && e.contains("--port"),
            "{e}"
        );
        let one = || Ok(vec![board("/dev/b", "")]);
        assert_eq!(name_target(None, None, one).unwrap(), "/dev/b");
        let none = || Ok(vec![]);
        let e = name_target(None, None, none).unwrap_err();
        assert_eq!(e.exit_code(), crate::exit::ExitCode::Device);
        let twins = || Ok(vec![board("/dev/a", "t"), board("/dev/b", "t")]);
        let e = name_target(None, Some("t"), twins).unwrap_err().to_string();
        assert!(e.contains("2 AxiDraws have nickname \"t\""), "{e}");
    }

    #[test]
    fn a_name_the_board_cannot_store_is_refused_before_any_port_is_opened() {
        let e = name(
            "far-too-long-nickname",
            Some("/nonexistent/port"),
            None,
            false,
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), crate::exit::ExitCode::Config);
        assert!(e.to_string().contains("at most 16"), "{e}");
        let e = name("a,b", Some("/nonexistent/port"), None, false).unwrap_err();
        assert!(matches!(e, BoardsError::Invalid(_)), "{e}");
    }

    #[test]
    fn the_table_shows_every_board_and_what_is_unknown() {
        let mut busy = FoundBoard {
            port: "/dev/ttyACM1".into(),
            serial: Some("S2".into()),
            ..FoundBoard::default()
        };
        busy.problem = Some("cannot open it: busy".into());
        let text = table(&[board("/dev/ttyACM0", "left"), busy]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "PORT          USB SERIAL  NICKNAME  FIRMWARE");
        assert_eq!(lines[1], "/dev/ttyACM0  -           left      3.0.3");
        assert_eq!(
            lines[2],
            "/dev/ttyACM1  S2          ?         ?         cannot open it: busy"
        );
        assert!(table(&[]).starts_with("no AxiDraw found"));
    }
}
