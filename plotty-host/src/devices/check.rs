//! `plotty check device`: find the plotter the daemon would use and ask it for its firmware version.
//!
//! The board is chosen exactly as the daemon chooses it ([`discover::choose`] over
//! [`discover::find_boards`]: by its USB id, 04D8:FD92, unless `device.port` names one), opened as
//! the daemon opens it ([`serial::open`]: exclusively, at the configured baud rate), and asked for
//! its version ([`discover::ask_version`]) and nickname ([`identity::ask_nickname`]). This module
//! only reports what those find, with how to fix each problem; the identity line says which
//! board answered (nickname, USB serial), so a check shows whether two plotters were swapped.

use std::time::Duration;

use crate::check::Report;
use crate::devices::discover::{self, DeviceRequest, FoundBoard, SimulatorReason, Target};
use crate::devices::identity::{self, Identity};
use crate::devices::link::{DeviceError, serial};
use crate::settings::{DeviceKind, DeviceSettings, FirmwareChoice};

/// Longest wait for the version reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks every configured plotter (`devices`, or the one `device` section), each as
/// [`check_with`] does; with a name, each line says which plotter it is about (`left: port`).
pub fn check_all(devices: &[DeviceSettings], report: &mut Report) {
    // Each plotter's search asks the boards for the identity it looks for (QT), if any.
    check_all_with(devices, report, |device| {
        discover::list(&Identity::of(device), device.baud_rate)
    });
}

/// [`check_all`] with the AxiDraws connected to look among for each plotter listed by `boards`
/// (tests; asked once per plotter that searches).
pub fn check_all_with(
    devices: &[DeviceSettings],
    report: &mut Report,
    boards: impl Fn(&DeviceSettings) -> Result<Vec<FoundBoard>, String>,
) {
    for device in devices {
        let mut own = Report::new(report.subject.clone());
        check_with(device, &mut own, || boards(device));
        for mut item in own.items {
            if let Some(name) = &device.name {
                item.what = format!("{name}: {}", item.what);
            }
            report.items.push(item);
        }
    }
}

/// Checks the plotter `device` among the AxiDraws connected listed by `boards`, appending to `report`.
pub fn check_with(
    device: &DeviceSettings,
    report: &mut Report,
    boards: impl FnOnce() -> Result<Vec<FoundBoard>, String>,
) {
    let mut seen: Vec<FoundBoard> = Vec::new();
    let target = discover::choose(&DeviceRequest::Config, device, || {
        let listed = boards();
        report_search(&listed, report);
        if let Ok(b) = &listed {
            seen.clone_from(b);
        }
        listed
    });
    let fix = "plug the AxiDraw in and switch it on; check `ls -l /dev/ttyACM*` and `dmesg | tail`; \
               or set device.port";
    let port = match target {
        Ok(Target::Simulator {
            reason: SimulatorReason::Requested,
        }) => {
            report.ok(
                "device",
                "the built-in simulator (device.type: simulator); nothing to probe",
            );
            return;
        }
        Ok(Target::Simulator {
            reason: SimulatorReason::NoneFound,
        }) => {
            report.warn(
                "device",
                "no AxiDraw found; the daemon will run jobs on the built-in simulator (nothing \
                 is drawn) and switch to an AxiDraw once one is plugged in (device.type: auto)",
                fix,
            );
            return;
        }
        Err(e @ (DeviceError::NoSuchBoard { .. } | DeviceError::SeveralBoards { .. })) => {
            report.problem(
                "device",
                e.to_string(),
                "`plotty device list` shows every board with its nickname; `plotty device name \
                 NEW --port PORT` names one",
            );
            return;
        }
        Err(_) if device.kind == DeviceKind::Axidraw => {
            report.problem("device", "no AxiDraw found (device.type: axidraw)", fix);
            return;
        }
        Err(e) => {
            report.problem("device", e.to_string(), fix);
            return;
        }
        Ok(Target::Serial { port, .. }) => port,
    };
    let mut serial = match serial::open(&port, device.baud_rate) {
        Ok(p) => p,
        Err(DeviceError::Open { detail, .. }) if detail == "no such file" => {
            report.problem(
                "port",
                format!("{port} does not exist"),
                "check device.port; boards usually appear as /dev/ttyACM0 (see `ls -l /dev/serial/by-id`)",
            );
            return;
        }
        Err(DeviceError::Open { detail, fix, .. }) => {
            report.problem("port", format!("cannot open {port}: {detail}"), fix);
            return;
        }
        Err(e) => {
            report.problem(
                "port",
                e.to_string(),
                "unplug and replug the board, then try again",
            );
            return;
        }
    };
    report.ok(
        "port",
        format!("{port} opened at {} baud", device.baud_rate),
    );
    let timeout = device.timeout.min(REPLY_TIMEOUT);
    match discover::ask_version(serial.as_mut(), timeout) {
        Ok(version) => {
            report.ok("firmware", format!("EBB firmware {version}"));
            report_identity(serial.as_mut(), &port, &version, &seen, timeout, report);
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

/// Reports who the board on `port` is: its nickname (asked with `QT`) and its USB serial
/// number (from the listing `seen`, when the port is in it).
fn report_identity(
    serial: &mut dyn serialport::SerialPort,
    port: &str,
    version: &str,
    seen: &[FoundBoard],
    timeout: Duration,
    report: &mut Report,
) {
    let usb = seen
        .iter()
        .find(|b| b.port == port)
        .and_then(|b| b.serial.clone());
    let usb = usb.map_or_else(|| "no USB serial".to_owned(), |s| format!("USB serial {s}"));
    if !identity::parse_version(version).is_some_and(|v| v.has_nickname()) {
        report.ok(
            "identity",
            format!("{usb}; no nickname (firmware {version} has none: 2.5.4 and later)"),
        );
        return;
    }
    match identity::ask_nickname(serial, timeout) {
        Ok(name) if name.is_empty() => report.ok(
            "identity",
            format!("{usb}; no nickname (set one with `plotty device name NEW --port {port}`)"),
        ),
        Ok(name) => report.ok("identity", format!("nickname \"{name}\", {usb}")),
        Err(e) => report.warn(
            "identity",
            format!("{usb}; the nickname could not be read: {e}"),
            "unplug and replug the board, then check again",
        ),
    }
}

/// Reports what the USB search found (or why it could not search).
fn report_search(listed: &Result<Vec<FoundBoard>, String>, report: &mut Report) {
    match listed {
        Ok(boards) if !boards.is_empty() => {
            let list: Vec<String> = boards
                .iter()
                .map(
                    |b| match (&b.serial, b.firmware.is_some() || b.problem.is_some()) {
                        // Asked for their identity: everything known about each.
                        (_, true) => identity::board_line(b),
                        (Some(s), false) => format!("{} (serial {s})", b.port),
                        (None, false) => b.port.clone(),
                    },
                )
                .collect();
            report.ok(
                "usb search",
                format!("EiBotBoard found: {}", list.join(", ")),
            );
        }
        Ok(_) => {}
        Err(e) => report.warn(
            "usb search",
            format!("cannot list serial ports: {e}"),
            "set device.port to the board's port",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(dir: &std::path::Path, kind: DeviceKind) -> DeviceSettings {
        let mut s = crate::settings::Settings::defaults_for(dir).device;
        s.kind = kind;
        s
    }

    /// Issue 15: `plotty check device` checks every plotter of `devices`, each line naming it.
    #[test]
    fn every_plotter_is_checked_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut sim = device(dir.path(), DeviceKind::Simulator);
        sim.name = Some("left".into());
        let mut gone = device(dir.path(), DeviceKind::Axidraw);
        gone.name = Some("right".into());
        gone.port = Some(dir.path().join("ttyNOPE").display().to_string());
        let mut r = Report::new("device");
        check_all_with(&[sim, gone], &mut r, |_| Ok(Vec::new()));
        let whats: Vec<&str> = r.items.iter().map(|i| i.what.as_str()).collect();
        assert_eq!(whats, ["left: device", "right: port"], "{r:?}");
        assert!(!r.passed(), "right's port is missing");
        // A lone unnamed plotter reads as before.
        let mut r = Report::new("device");
        check_all_with(&[device(dir.path(), DeviceKind::Simulator)], &mut r, |_| {
            Ok(Vec::new())
        });
        assert_eq!(r.items[0].what, "device");
    }

    #[test]
    fn simulator_needs_no_probe_and_a_missing_port_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = device(dir.path(), DeviceKind::Simulator);
        let mut r = Report::new("device");
        check_all(std::slice::from_ref(&s), &mut r);
        assert!(r.passed());
        s.kind = DeviceKind::Axidraw;
        s.port = Some(dir.path().join("ttyNOPE").display().to_string());
        let mut r = Report::new("device");
        check_all(std::slice::from_ref(&s), &mut r);
        assert!(!r.passed());
        assert!(r.items.iter().any(|i| i.detail.contains("does not exist")));
    }

    #[test]
    fn the_board_is_chosen_by_the_daemons_discovery() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("ttyACM7").display().to_string();
        let found = {
            let gone = gone.clone();
            move || {
                Ok(vec![FoundBoard {
                    port: gone,
                    serial: Some("S1".into()),
                    ..FoundBoard::default()
                }])
            }
        };
        // `auto` picks the board the USB search lists (and reports it), as the daemon would.
        let mut r = Report::new("device");
        check_with(&device(dir.path(), DeviceKind::Auto), &mut r, found);
        let text: Vec<_> = r.items.iter().map(|i| i.detail.clone()).collect();
        assert!(
            text.iter()
                .any(|t| t.contains("EiBotBoard found") && t.contains("serial S1")),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.contains("ttyACM7")), "{text:?}");
        // None found: `auto` warns that jobs run on the simulator; `axidraw` is a problem.
        let mut r = Report::new("device");
        check_with(&device(dir.path(), DeviceKind::Auto), &mut r, || Ok(vec![]));
        assert!(r.passed(), "a warning, not a failure");
        assert!(
            r.items
                .iter()
                .any(|i| i.detail.contains("nothing is drawn")),
        );
        let mut r = Report::new("device");
        check_with(&device(dir.path(), DeviceKind::Axidraw), &mut r, || {
            Err("no sysfs".into())
        });
        assert!(!r.passed());
        assert!(r.items.iter().any(|i| i.detail.contains("no sysfs")));
    }
}
