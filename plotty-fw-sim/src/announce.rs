//! The simulated board's USB identity, published for port listings.
//!
//! A pseudo-terminal has no USB identity: on Linux, pyserial's `list_ports` (which the AxiDraw
//! software uses to find a board, and to accept a port given by name) globs fixed `/dev` names
//! and reads the USB vendor, product and serial number from sysfs (`/sys/class/tty/NAME/device`),
//! which only the kernel writes. So the serving simulator writes a *port card* instead: one small
//! `key=value` file per served board in a directory both sides agree on ([`ports_dir`]), which
//! `contrib/axidraw/plotty_fw_sim_ports.py` (loaded by Python through `PYTHONPATH`, see the
//! README) adds to pyserial's listing as a USB device `04D8:FD92` "EiBotBoard" whose serial
//! number is the board's nickname — what a real EBB reports.
//!
//! The card is rewritten each time the board comes (back) on USB, with the nickname it booted
//! with (a real board's USB serial number changes only when it re-enumerates), and removed while
//! it is off USB and on exit. Card format (one `key=value` a line, unknown keys ignored):
//!
//! ```text
//! device=/tmp/plotty-ebb      the path a host opens (the link if any, else the pty)
//! tty=/dev/pts/4              the pty itself (a stale card whose tty is gone is ignored)
//! pid=12345                   the simulator's process (a card of a dead process is ignored)
//! vid=04D8
//! product_id=FD92
//! product=EiBotBoard
//! serial=AxiDraw-Sim          the nickname (line absent when the board has none)
//! location=plotty-fw-sim-12345
//! ```

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

/// The environment variable naming the port-card directory (both for the simulator and for the
/// Python listing shim).
pub const PORTS_DIR_ENV: &str = "PLOTTY_FW_SIM_PORTS";

/// The EBB's USB vendor id (Microchip).
pub const USB_VENDOR_ID: u16 = 0x04D8;
/// The EBB's USB product id.
pub const USB_PRODUCT_ID: u16 = 0xFD92;
/// The start of the EBB's USB product string, which the AxiDraw software matches.
pub const USB_PRODUCT: &str = "EiBotBoard";

/// The port-card directory: `$PLOTTY_FW_SIM_PORTS`, else `$XDG_RUNTIME_DIR/plotty-fw-sim`, else
/// `/tmp/plotty-fw-sim-UID`.
pub fn ports_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(PORTS_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return Path::new(&runtime).join("plotty-fw-sim");
    }
    std::env::temp_dir().join(format!("plotty-fw-sim-{}", nix::unistd::geteuid()))
}

/// The port card of one served board (see the [module documentation](self)); removes its file
/// when dropped.
#[derive(Debug)]
pub struct PortCard {
    file: PathBuf,
}

impl PortCard {
    /// Writes the card for a board reachable at `device` (the pty `tty`, or a link to it) with
    /// `nickname` (empty: none) into `dir`, replacing this process's previous card. The
    /// directory is created private to the user; one owned by someone else is refused (its
    /// cards could point programs at a device of theirs).
    pub fn publish(dir: &Path, device: &Path, tty: &Path, nickname: &str) -> io::Result<Self> {
        Self::publish_slot(dir, 0, device, tty, nickname)
    }

    /// [`publish`](Self::publish) for the board in `slot` of a process serving several (a
    /// test with two plotters): each slot has its own card, replaced only by the same slot.
    pub fn publish_slot(
        dir: &Path,
        slot: u32,
        device: &Path,
        tty: &Path,
        nickname: &str,
    ) -> io::Result<Self> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let owner = fs::metadata(dir)?.uid();
        if owner != nix::unistd::geteuid().as_raw() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} belongs to another user (uid {owner})", dir.display()),
            ));
        }
        let pid = std::process::id();
        let name = match slot {
            0 => pid.to_string(),
            n => format!("{pid}-{n}"),
        };
        let file = dir.join(format!("{name}.port"));
        let mut text = format!(
            "device={}\ntty={}\npid={pid}\nvid={USB_VENDOR_ID:04X}\nproduct_id={USB_PRODUCT_ID:04X}\n\
             product={USB_PRODUCT}\nlocation=plotty-fw-sim-{pid}\n",
            device.display(),
            tty.display(),
        );
        if !nickname.is_empty() {
            text.push_str(&format!("serial={nickname}\n"));
        }
        // Written aside and renamed, so a listing never reads half a card.
        let partial = dir.join(format!(".{name}.port.partial"));
        let mut f = fs::File::create(&partial)?;
        f.write_all(text.as_bytes())?;
        f.flush()?;
        drop(f);
        fs::rename(&partial, &file)?;
        Ok(Self { file })
    }

    /// The card's file.
    pub fn path(&self) -> &Path {
        &self.file
    }
}

/// A board listed by a live port card (see [`served_boards`]).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ServedBoard {
    /// The path a host opens (`device=`).
    pub device: PathBuf,
    /// The pty behind it (`tty=`).
    pub tty: PathBuf,
    /// The USB serial number the card reports (`serial=`: the nickname the board booted
    /// with), if any.
    pub serial: Option<String>,
}

/// The boards whose port cards in `dir` are live: their process runs and their tty exists
/// (a simulator killed with SIGKILL cannot remove its card). Sorted by device path, so that
/// listings are stable; a missing or unreadable directory lists nothing.
pub fn served_boards(dir: &Path) -> Vec<ServedBoard> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut boards: Vec<ServedBoard> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".port"))
        .filter_map(|e| fs::read_to_string(e.path()).ok())
        .filter_map(|text| parse_card(&text))
        .collect();
    boards.sort_by(|a, b| a.device.cmp(&b.device));
    boards
}

/// The board of a card's text, if the card is complete and live.
fn parse_card(text: &str) -> Option<ServedBoard> {
    let value = |key: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_owned())
    };
    let pid: i32 = value("pid")?.parse().ok()?;
    // Signal 0 only asks whether the process exists (EPERM: it does, as another user's).
    let alive = match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(e) => e == nix::errno::Errno::EPERM,
    };
    let tty = PathBuf::from(value("tty")?);
    if pid <= 0 || !alive || !tty.exists() {
        return None;
    }
    Some(ServedBoard {
        device: PathBuf::from(value("device")?),
        tty,
        serial: value("serial").filter(|s| !s.is_empty()),
    })
}

impl Drop for PortCard {
    fn drop(&mut self) {
        // Already gone is fine: nothing to withdraw.
        let _ = fs::remove_file(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_names_the_device_and_the_nickname_and_goes_away() {
        let dir = tempfile::tempdir().unwrap();
        let ports = dir.path().join("ports");
        let card = PortCard::publish(
            &ports,
            Path::new("/tmp/ebb"),
            Path::new("/dev/pts/9"),
            "Sim-1",
        )
        .unwrap();
        let text = fs::read_to_string(card.path()).unwrap();
        assert!(text.contains("device=/tmp/ebb\ntty=/dev/pts/9\n"), "{text}");
        assert!(
            text.contains("vid=04D8\nproduct_id=FD92\nproduct=EiBotBoard\n"),
            "{text}"
        );
        assert!(text.ends_with("serial=Sim-1\n"), "{text}");
        assert_eq!(
            fs::metadata(&ports).unwrap().mode() & 0o777,
            0o700,
            "private to the user"
        );
        let path = card.path().to_path_buf();
        let unnamed =
            PortCard::publish(&ports, Path::new("/tmp/ebb"), Path::new("/dev/pts/9"), "").unwrap();
        assert!(
            !fs::read_to_string(unnamed.path())
                .unwrap()
                .contains("serial=")
        );
        // Both are listed while they are live (this process runs; the tty must exist).
        let tty = dir.path().join("tty");
        fs::write(&tty, "").unwrap();
        let card = PortCard::publish(&ports, Path::new("/tmp/ebb"), &tty, "Sim-1").unwrap();
        let listed = served_boards(&ports);
        assert_eq!(
            listed,
            [ServedBoard {
                device: "/tmp/ebb".into(),
                tty: tty.clone(),
                serial: Some("Sim-1".into()),
            }],
            "one card per process: the unnamed one was replaced"
        );
        // A card whose tty is gone, or whose process is dead, is stale.
        fs::remove_file(&tty).unwrap();
        assert!(served_boards(&ports).is_empty());
        fs::write(&tty, "").unwrap();
        let dead = fs::read_to_string(card.path())
            .unwrap()
            .replace(&format!("pid={}", std::process::id()), "pid=2147483646");
        fs::write(ports.join("1.port"), dead).unwrap();
        assert_eq!(served_boards(&ports).len(), 1);
        fs::remove_file(ports.join("1.port")).unwrap();
        // Another slot of the same process is a card of its own.
        let second = PortCard::publish_slot(&ports, 2, Path::new("/tmp/ebb2"), &tty, "").unwrap();
        assert_eq!(served_boards(&ports).len(), 2);
        drop(second);
        assert!(served_boards(&dir.path().join("missing")).is_empty());
        drop(card);
        drop(unnamed);
        assert!(!path.exists());
        assert_eq!(
            fs::read_dir(&ports).unwrap().count(),
            0,
            "no partial file left"
        );
    }
}
