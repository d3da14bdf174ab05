//! Manual actions on a device that is not plotting (`plotty device home|walk|pen-up|pen-down|
//! toggle|motors-on|motors-off|align`): the plot runner's session loop ([`runner::manual`]) on
//! the device's link, on a blocking thread. The device task stops a paused plot's run first (its
//! checkpoint is stored), so the same actions work while a job is paused.

use std::sync::Arc;

use super::task::{Inner, error};
use crate::events::DeviceState;
use crate::plot::PlotConfig;
use crate::plot::runner::{self, Manual, RunError};
use crate::queue::{DeviceAction, DeviceError, DeviceReply};
use crate::settings::RunOptions;

/// Runs `action` on the idle device.
///
/// # Errors
/// The device cannot be opened, refused the action (a walk out of the travel, or with the
/// position unknown), or failed.
pub(super) async fn run(
    inner: Arc<Inner>,
    action: DeviceAction,
) -> Result<DeviceReply, DeviceError> {
    let settings = inner.settings();
    let mut config = PlotConfig::from_settings(&settings);
    let manual = match action {
        DeviceAction::PenUp => Manual::PenUp,
        // Every connection raises the pen, so what it was before comes from the last action's
        // report (unknown counts as up: the board's start-up state).
        DeviceAction::Toggle if inner.status().pen_up == Some(false) => Manual::PenUp,
        DeviceAction::Toggle => Manual::PenDown,
        DeviceAction::Align => Manual::Align,
        DeviceAction::PenDown => Manual::PenDown,
        DeviceAction::MotorsOn => Manual::MotorsOn,
        DeviceAction::MotorsOff => Manual::MotorsOff,
        DeviceAction::Home => Manual::Home,
        DeviceAction::Walk { dx_um, dy_um } => Manual::Walk {
            dx_mm: f64::from(dx_um) / 1000.0,
            dy_mm: f64::from(dy_um) / 1000.0,
        },
        // The set-up of the session sends the servo positions (`SC,4`, `SC,5`) from the
        // config: with the trial height in its place, then the pen moves there (`SP`).
        DeviceAction::PenHeight { down, tenths } => {
            let percent = f64::from(tenths) / 10.0;
            let trial = if down {
                RunOptions {
                    pen_pos_down: Some(percent),
                    ..RunOptions::default()
                }
            } else {
                RunOptions {
                    pen_pos_up: Some(percent),
                    ..RunOptions::default()
                }
            };
            // The config file's rule for the height (0–100 %), with its message.
            config = PlotConfig::for_run(&settings, &trial).map_err(|e| error(e.to_string()))?;
            if down { Manual::PenDown } else { Manual::PenUp }
        }
        DeviceAction::ClearError => return Ok(clear_error(&inner)),
    };
    // Any action may move the carriage off where a crashed run's board stopped (a pen action on
    // a reset board enables the motors and zeroes the counters where it stands): a resume must
    // not search for it along the path. Stored before the action, so a restart keeps it; if it
    // cannot be stored, the action does not run.
    if let Err(e) = inner
        .ledger
        .store()
        .clear_streaming(&inner.device_id())
        .await
    {
        return Err(error(format!(
            "cannot record the manual action with the paused jobs' resume points: {e}"
        )));
    }
    inner.lock().manual = true;
    let held = inner
        .link
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    let session = runner::session_config(&config, settings.device.timeout);
    let opener = inner.opener();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut link = match held {
            Some(l) => l,
            None => opener.open().map_err(|e| (RunError::Link(e), None))?,
        };
        match runner::manual(&mut link, &config, session, manual) {
            Ok(report) => Ok((report, link)),
            Err(e) => Err((e, Some(link))),
        }
    })
    .await;
    inner.lock().manual = false;
    let outcome = outcome.map_err(|e| error(format!("the device task ended abnormally: {e}")))?;
    let put_back = |link| {
        *inner
            .link
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(link);
    };
    match outcome {
        Ok((report, link)) => {
            put_back(link);
            let point = report.position.map(|p| config.kinematics().to_point(p));
            inner.touch();
            inner.update_status(|s| {
                s.status = DeviceState::Connected;
                s.firmware_version = Some(report.firmware.to_string());
                s.pen_up = Some(report.pen_up);
                s.position_mm = point.map(|p| (p.x_mm, p.y_mm));
            });
            inner.update_status(|s| s.pen_servo = report.pen_servo);
            let message = match action {
                DeviceAction::PenHeight { down, tenths } => format!(
                    "pen {} at the trial height {}% (the config's is {}%; plots use the config's \
                     or the job's)",
                    if down { "down" } else { "up" },
                    f64::from(tenths) / 10.0,
                    if down {
                        settings.device.axidraw.pen_pos_down
                    } else {
                        settings.device.axidraw.pen_pos_up
                    }
                ),
                _ => report.message,
            };
            Ok(DeviceReply {
                device_id: inner.device_id(),
                message,
            })
        }
        // A refusal: the board is fine, nothing moved.
        Err((e @ (RunError::PositionUnknown { .. } | RunError::OutOfTravel { .. }), link)) => {
            if let Some(link) = link {
                put_back(link);
            }
            Err(error(e.to_string()))
        }
        Err((RunError::Link(e), _)) => {
            // The board is gone (or its port cannot be opened): `disconnected` or `offline`,
            // and reopened by the reconnection.
            let message = e.to_string();
            inner.link_lost(&e);
            Err(error(format!(
                "{}: {action} failed: {message}",
                inner.device_id()
            )))
        }
        Err((e, link)) => {
            // A failed link is not kept: the next use opens it again.
            drop(link);
            let message = e.to_string();
            inner.update_status(|s| {
                s.status = DeviceState::Error;
                s.error_count = s.error_count.saturating_add(1);
                s.error_message = Some(message.clone());
            });
            Err(error(format!(
                "{}: {action} failed: {message}",
                inner.device_id()
            )))
        }
    }
}

/// Forgets the device's last error: the user dealt with it. A device that is unreachable now
/// keeps its state and message (its error is not past).
pub(super) fn clear_error(inner: &Arc<Inner>) -> DeviceReply {
    let id = inner.device_id();
    let before = inner.status();
    let message = match (before.status, before.error_message) {
        (DeviceState::Disconnected | DeviceState::Offline, Some(m)) => {
            return DeviceReply {
                device_id: id,
                message: format!("not cleared: the device does not answer now ({m})"),
            };
        }
        (_, None) if before.status != DeviceState::Error => "no error to clear".to_owned(),
        (_, m) => format!(
            "cleared the last error ({})",
            m.as_deref().unwrap_or("no message")
        ),
    };
    inner.update_status(|s| {
        s.error_message = None;
        if s.status == DeviceState::Error {
            s.status = DeviceState::Connected;
        }
    });
    DeviceReply {
        device_id: id,
        message,
    }
}
