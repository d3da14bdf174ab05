//! Manual actions on an idle device (`plotty device pen-up|pen-down|motors-off`): a short protocol
//! session on the device's link, on a blocking thread, that connects, runs the action's items and
//! waits until the board has executed them.
//!
//! `home` needs a planned move from wherever the carriage is; the daemon does not plan one outside
//! a plot yet, so it is refused with what to do instead.

use std::sync::Arc;

use plotty_motion::ebb::limits::MAX_ENCODED_LEN;
use plotty_motion::kinematics::MotorSteps;
use plotty_motion::plan::Pen;
use plotty_motion::session::{Event, FeedItem, Session, SessionConfig};

use super::link::AnyLink;
use super::task::{Inner, error};
use crate::device::Link;
use crate::plot::{PlotConfig, runner};
use crate::queue::{DeviceAction, DeviceError, DeviceReply};

/// Runs `action` on the idle device.
///
/// # Errors
/// The device is busy meanwhile, cannot be opened, or failed.
pub(super) async fn run(
    inner: Arc<Inner>,
    action: DeviceAction,
) -> Result<DeviceReply, DeviceError> {
    let items: Vec<FeedItem> = match action {
        DeviceAction::PenUp => vec![FeedItem::Pen(Pen::Up)],
        DeviceAction::PenDown => vec![FeedItem::Pen(Pen::Down)],
        DeviceAction::MotorsOff => vec![FeedItem::Pen(Pen::Up), FeedItem::Motors(false)],
        DeviceAction::Home => {
            return Err(error(
                "home is not available from the daemon yet: the carriage goes home at the end of \
                 every plot and after an abort; to move it by hand, use motors-off",
            ));
        }
    };
    let held = inner
        .link
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    let settings = inner.settings.borrow().clone();
    let config = PlotConfig::from_settings(&settings);
    let session = runner::session_config(&config, settings.device.timeout);
    let opener = inner.opener.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut link = match held {
            Some(l) => l,
            None => opener.open().map_err(|e| (e.to_string(), None))?,
        };
        match drive(&mut link, session, &items) {
            Ok(done) => Ok((done, link)),
            Err(e) => Err((e, Some(link))),
        }
    })
    .await
    .map_err(|e| error(format!("the device task ended abnormally: {e}")))?;
    match outcome {
        Ok(((position, firmware), link)) => {
            *inner
                .link
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(link);
            let point = config.kinematics().to_point(position);
            inner.update_status(|s| {
                s.status = crate::events::DeviceState::Connected;
                if let Some(v) = firmware {
                    s.firmware_version = Some(v);
                }
                match action {
                    DeviceAction::PenUp => s.pen_up = Some(true),
                    DeviceAction::PenDown => s.pen_up = Some(false),
                    DeviceAction::MotorsOff => {
                        s.pen_up = Some(true);
                        s.position_mm = None;
                    }
                    DeviceAction::Home => {}
                }
                if action != DeviceAction::MotorsOff {
                    s.position_mm = Some((point.x_mm, point.y_mm));
                }
            });
            Ok(DeviceReply {
                device_id: inner.opener.device_id(),
                message: match action {
                    DeviceAction::PenUp => "pen up".into(),
                    DeviceAction::PenDown => "pen down".into(),
                    DeviceAction::MotorsOff => {
                        "motors off: the carriage moves freely; the position is lost".into()
                    }
                    DeviceAction::Home => "homed".into(),
                },
            })
        }
        Err((message, link)) => {
            // A failed link is not kept: the next use opens it again.
            drop(link);
            inner.update_status(|s| {
                s.status = crate::events::DeviceState::Error;
                s.error_count = s.error_count.saturating_add(1);
                s.error_message = Some(message.clone());
            });
            Err(error(format!(
                "{}: {action} failed: {message}",
                inner.opener.device_id()
            )))
        }
    }
}

/// Connects, runs `items` and waits until the board executed them; the final position and the
/// board's firmware version.
fn drive(
    link: &mut AnyLink,
    config: SessionConfig,
    items: &[FeedItem],
) -> Result<(MotorSteps, Option<String>), String> {
    let mut session = Session::new(config, link.now()).map_err(|e| e.to_string())?;
    let mut io = Io {
        rx: Vec::new(),
        tx: Vec::new(),
        last_error: None,
    };
    let mut firmware = None;
    // Handshake.
    loop {
        io.pump(link, &mut session)?;
        let mut ready = false;
        while let Some(e) = session.poll_event() {
            match e {
                Event::Ready { .. } => ready = true,
                Event::Connected { version, .. } => firmware = Some(version.to_string()),
                Event::Error(e) => io.last_error = Some(e.to_string()),
                _ => {}
            }
        }
        if ready {
            break;
        }
        io.check(&session)?;
        link.wait(session.poll_timeout())
            .map_err(|e| e.to_string())?;
    }
    let mut pending = items.iter().copied();
    let mut next = pending.next();
    let mut idle = None;
    loop {
        while let Some(item) = next {
            if session.can_accept() && session.push(item).is_ok() {
                idle = None;
                next = pending.next();
            } else {
                break;
            }
        }
        io.pump(link, &mut session)?;
        while let Some(e) = session.poll_event() {
            match e {
                Event::Idle { position } => idle = Some(position),
                Event::Error(e) => io.last_error = Some(e.to_string()),
                _ => {}
            }
        }
        io.check(&session)?;
        if next.is_none()
            && session.is_idle()
            && let Some(position) = idle
        {
            return Ok((position, firmware));
        }
        link.wait(session.poll_timeout())
            .map_err(|e| e.to_string())?;
    }
}

/// Bytes between the session and the link.
struct Io {
    rx: Vec<u8>,
    tx: Vec<u8>,
    last_error: Option<String>,
}

impl Io {
    fn pump(&mut self, link: &mut AnyLink, session: &mut Session) -> Result<(), String> {
        let now = link.now();
        link.read(&mut self.rx).map_err(|e| e.to_string())?;
        if !self.rx.is_empty() {
            session.handle_rx(now, &self.rx);
            self.rx.clear();
        }
        if session.poll_timeout().is_some_and(|t| t <= now) {
            session.handle_timeout(now);
        }
        let mut buf = [0u8; MAX_ENCODED_LEN];
        loop {
            if !self.tx.is_empty() {
                let n = link.write(&self.tx).map_err(|e| e.to_string())?;
                self.tx.drain(..n.min(self.tx.len()));
                if !self.tx.is_empty() {
                    return Ok(());
                }
            }
            match session.poll_transmit(now, &mut buf) {
                Some(n) => self.tx.extend_from_slice(buf.get(..n).unwrap_or_default()),
                None => return Ok(()),
            }
        }
    }

    fn check(&mut self, session: &Session) -> Result<(), String> {
        if session.is_failed() {
            Err(self
                .last_error
                .take()
                .unwrap_or_else(|| "the plotter stopped answering".into()))
        } else {
            Ok(())
        }
    }
}
