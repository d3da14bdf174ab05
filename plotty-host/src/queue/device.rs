//! The interface between the queue and a device task: what the queue asks of a plotter.
//!
//! A device task (one per plotter, owning its serial port and `plotty_motion` session) implements
//! [`DeviceControl`] and attaches itself with [`super::QueueHandle::attach_device`]. The queue then
//! sends it the requests that need the machine: pause, resume or abort the job it is plotting, and
//! the manual actions of `plotty device …`. The device task records the job transitions that follow
//! (`PLOTTING → PAUSED`, `→ ABORTED`, …) through the ledger itself, once the machine is in the
//! state they describe, and publishes [`crate::events::DeviceStatus`] and
//! [`crate::events::JobProgress`] on the event bus.

use std::fmt;
use std::str::FromStr;

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::pipeline::PreparedJob;
use crate::devices::registry::Profile;
use crate::events::DeviceStatus;
use crate::job::JobId;
use crate::store::JobRecord;

/// A plotter as the queue sees it.
pub trait DeviceControl: Send + Sync + 'static {
    /// Its id (stable across restarts: the serial port path, or `simulator`).
    fn id(&self) -> String;

    /// Its current status.
    fn status(&self) -> DeviceStatus;

    /// What it offers jobs' requirements: its name (the id), model and tags (by default the
    /// id, the default model and no tags: a scripted test device).
    fn profile(&self) -> Profile {
        Profile {
            name: self.id(),
            model: plotty_motion::kinematics::Model::default().number(),
            tags: Vec::new(),
        }
    }

    /// Carries out `request`; resolves once the machine is in the requested state (motion stopped
    /// and pen up for a pause or an abort) or it failed.
    fn control(
        &self,
        request: DeviceRequest,
    ) -> BoxFuture<'static, Result<DeviceReply, DeviceError>>;

    /// Takes an `ARMED` job to plot. Returns at once: the device is busy with the job from now on
    /// (its status names it) and records `PLOTTING` and what follows itself. Refused when the
    /// device is busy or cannot plot now; the queue then puts the job back to `READY`.
    ///
    /// # Errors
    /// The device cannot take the job.
    fn assign(&self, assignment: Assignment) -> Result<(), DeviceError>;
}

/// A job handed to a device.
#[derive(Clone, Debug)]
pub struct Assignment {
    /// The job (`ARMED`).
    pub job: JobRecord,
    /// Its program, when the pipeline still has it in memory (else the device builds it from the
    /// stored SVG).
    pub prepared: Option<Arc<PreparedJob>>,
}

/// What the queue asks of a device.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum DeviceRequest {
    /// Stop the job's plot at a safe point with the pen up and record `PAUSED`.
    Pause(JobId),
    /// Continue the job's plot and record `PLOTTING`.
    Resume(JobId),
    /// Stop the job's plot now, pen up, and record `ABORTED`.
    Abort(JobId),
    /// A manual action (no job is plotting).
    Action(DeviceAction),
}

/// Manual actions (`plotty device …`, `POST /api/devices/{id}/{action}`). Allowed while the
/// device is idle and while its job is paused (the resume then starts from where the carriage
/// really is).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum DeviceAction {
    /// Move to the home position (pen up first); with the motors off, take the carriage's place
    /// as home (the user pushed it into the home corner).
    Home,
    /// Raise the pen.
    PenUp,
    /// Lower the pen.
    PenDown,
    /// Switch the motors on (they hold the carriage).
    MotorsOn,
    /// Switch the motors off (the carriage can be moved by hand; the position is lost).
    MotorsOff,
    /// Raise the pen if it is down, else lower it (axicli's `toggle`).
    Toggle,
    /// Pen up, motors off, to line up paper and pen by hand (axicli's `align` mode).
    Align,
    /// Move by this much with the pen up, in micrometres (`walk X Y` in mm).
    Walk {
        /// Along x, µm.
        dx_um: i32,
        /// Along y, µm.
        dy_um: i32,
    },
    /// Move the pen to a trial height now, to try heights before a plot: the pen-up (or
    /// pen-down) servo position set to it (`SC,4` / `SC,5`), then the pen raised (lowered) with
    /// `SP`. The configured heights are unchanged; the next plot or action sets them again.
    PenHeight {
        /// The pen-down position (else the pen-up one).
        down: bool,
        /// The height, tenths of a percent (checked by the config's `pen_pos_*` rule).
        tenths: i32,
    },
    /// Forget the device's last error (it is past: the user dealt with it); the status goes from
    /// `error` back to `connected`. Nothing is sent to the board.
    ClearError,
}

/// What a device answered.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeviceReply {
    /// The device.
    pub device_id: String,
    /// A short description of what was done ("pen up", "homed").
    pub message: String,
}

/// A device could not carry out a request.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("{message}")]
pub struct DeviceError {
    /// What went wrong and what to do.
    pub message: String,
}

impl DeviceAction {
    /// Every action (a walk of zero).
    pub const ALL: [Self; 10] = [
        Self::Home,
        Self::PenUp,
        Self::PenDown,
        Self::MotorsOn,
        Self::MotorsOff,
        Self::Toggle,
        Self::Align,
        Self::Walk { dx_um: 0, dy_um: 0 },
        Self::PenHeight {
            down: false,
            tenths: 0,
        },
        Self::ClearError,
    ];

    /// The URL and command-line spelling (`pen-up`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Home => "home",
            Self::PenUp => "pen-up",
            Self::PenDown => "pen-down",
            Self::MotorsOn => "motors-on",
            Self::MotorsOff => "motors-off",
            Self::Toggle => "toggle",
            Self::Align => "align",
            Self::Walk { .. } => "walk",
            Self::PenHeight { .. } => "pen-height",
            Self::ClearError => "clear-error",
        }
    }

    /// A walk by `(dx, dy)` mm, to the micrometre.
    ///
    /// # Errors
    /// A distance that is not finite or beyond ±2 km.
    pub fn walk(dx_mm: f64, dy_mm: f64) -> Result<Self, String> {
        let um = |v: f64, axis: &str| {
            let scaled = (v * 1000.0).round();
            if scaled.is_finite() && scaled.abs() < f64::from(i32::MAX) {
                // In range and whole: the cast is exact.
                #[allow(clippy::cast_possible_truncation)]
                Ok(scaled as i32)
            } else {
                Err(format!("walk: `{v}` mm along {axis} is not a distance"))
            }
        };
        Ok(Self::Walk {
            dx_um: um(dx_mm, "x")?,
            dy_um: um(dy_mm, "y")?,
        })
    }
}

impl DeviceAction {
    /// A pen height trial at `percent` of the servo's range, for the pen-down position if
    /// `down` (else the pen-up one).
    ///
    /// # Errors
    /// A height that is not a finite number (the range is the config's rule, checked by the
    /// device).
    pub fn pen_height(down: bool, percent: f64) -> Result<Self, String> {
        let scaled = (percent * 10.0).round();
        if !(scaled.is_finite() && scaled.abs() < 1e6) {
            return Err(format!(
                "pen-height: `{percent}` is not a height in percent"
            ));
        }
        // In range and whole: the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        Ok(Self::PenHeight {
            down,
            tenths: scaled as i32,
        })
    }
}

impl fmt::Display for DeviceAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeviceAction {
    type Err = String;

    /// Parses `pen-up`, `pen_up` or `penup`, ignoring case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key: String = s
            .trim()
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().replace('-', "") == key)
            .ok_or_else(|| {
                format!(
                    "`{s}` is not a device action: use home, pen-up, pen-down, toggle, \
                     motors-on, motors-off, align, walk, pen-height or clear-error"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_in_every_spelling() {
        for a in DeviceAction::ALL {
            assert_eq!(a.as_str().parse::<DeviceAction>(), Ok(a));
            assert_eq!(
                a.as_str()
                    .replace('-', "_")
                    .to_uppercase()
                    .parse::<DeviceAction>(),
                Ok(a)
            );
        }
        assert_eq!("penup".parse::<DeviceAction>(), Ok(DeviceAction::PenUp));
        assert!("park".parse::<DeviceAction>().is_err());
        assert!("".parse::<DeviceAction>().is_err());
    }
}
