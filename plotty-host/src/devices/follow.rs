//! Following a board to another port while the daemon runs: a bumped USB cable brings the
//! AxiDraw back as `/dev/ttyACM1` instead of `/dev/ttyACM0`.
//!
//! When the reopen of a serial plotter fails ([`super::run::reconnect`]) and its board was found
//! by a search — `device.nickname`/`device.serial`, or `port: auto` (the first AxiDraw by USB
//! id) — [`search`] looks for the boards again with the rule that chose the board at start
//! ([`discover::choose`] over the [`Discovery`]'s listing, then its probe). When that finds the
//! configured board on another port, the device's opener switches to that port (logged, and the
//! device status shows the new `port`) and the reconnection opens it there. The device id does
//! not change: jobs and the farm refer to it for the daemon's lifetime.
//!
//! What is never done: a plotter with a fixed `port:` keeps that port (the user asked for it);
//! two boards with the configured identity are not guessed between (the device is not driven
//! and its status says why, as at start); a search without identity skips the boards the other
//! plotters of the daemon are configured for (their port, nickname or serial), so two plotters
//! are never swapped.

use std::sync::{Arc, PoisonError};

use super::discover::{self, DeviceRequest, FoundBoard, Target};
use super::identity::Identity;
use super::link::{DeviceError, Opener};
use super::scan::Discovery;
use super::task::Inner;
use crate::settings::{DeviceKind, DeviceSettings};

/// What a [`search`] did.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(super) enum Outcome {
    /// The board is on this other port now: the device opens it there.
    Moved(String),
    /// The device is not one that follows its board (a fixed port, the simulator).
    Fixed,
    /// The board was not found elsewhere (not plugged in yet, not answering, or where it was).
    NotFound,
    /// Several boards are the configured one: none is driven (the status says so).
    Ambiguous,
}

/// Looks for the board of the serial device `inner` elsewhere and, when it is found on another
/// port and the device is idle, switches the device to that port (see the module doc).
pub(super) async fn search(inner: &Arc<Inner>) -> Outcome {
    let Some(discovery) = inner
        .follow
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
    else {
        return Outcome::Fixed;
    };
    let Opener::Serial {
        port: current,
        baud,
        identity,
    } = inner.opener()
    else {
        return Outcome::Fixed;
    };
    let settings = inner.settings();
    let device = settings.device.clone();
    // The settings now (a reload may have fixed the port since the start).
    if device.port.is_some() || device.kind == DeviceKind::Simulator {
        return Outcome::Fixed;
    }
    let others: Vec<DeviceSettings> = settings
        .devices
        .iter()
        .filter(|d| d.name != inner.name)
        .cloned()
        .collect();
    let find = Arc::clone(&discovery.find);
    let wanted = identity.clone();
    let chosen = tokio::task::spawn_blocking(move || {
        discover::choose(&DeviceRequest::Config, &device, || {
            let boards = find()?;
            Ok(if wanted.is_set() {
                boards
            } else {
                unclaimed(boards, &others)
            })
        })
    })
    .await;
    let target = match chosen {
        Ok(Ok(t)) => t,
        Ok(Err(e @ DeviceError::SeveralBoards { .. })) => {
            let message = e.to_string();
            let new = inner.lock().status.error_message.as_deref() != Some(&message);
            if new {
                tracing::warn!(device = %inner.device_id(), error = %e, "the device's board cannot be told apart: it is not driven");
                inner.update_status(|s| s.error_message = Some(message));
            }
            return Outcome::Ambiguous;
        }
        Ok(Err(e)) => {
            tracing::debug!(device = %inner.device_id(), error = %e, "the device's board is not found elsewhere");
            return Outcome::NotFound;
        }
        Err(e) => {
            tracing::error!(error = %e, "the search for the device's board ended abnormally");
            return Outcome::NotFound;
        }
    };
    let Target::Serial { port, .. } = target else {
        // `auto` without a board found: the device waits for its AxiDraw, never the simulator.
        return Outcome::NotFound;
    };
    if port == current {
        return Outcome::NotFound;
    }
    let (probe, at) = (Arc::clone(&discovery.probe), port.clone());
    match tokio::task::spawn_blocking(move || probe(&at)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::debug!(port = %port, error = %e, "the device's board was found but does not answer yet");
            return Outcome::NotFound;
        }
        Err(e) => {
            tracing::error!(error = %e, "probing the device's board ended abnormally");
            return Outcome::NotFound;
        }
    }
    {
        let st = inner.lock();
        // A run or a manual action opened the link meanwhile: it is not pulled from under it.
        if st.run.is_some() || st.manual || st.shutting_down {
            return Outcome::NotFound;
        }
        *inner.opener.lock().unwrap_or_else(PoisonError::into_inner) = Opener::Serial {
            port: port.clone(),
            baud,
            identity,
        };
    }
    tracing::info!(device = %inner.device_id(), from = %current, to = %port, "the device's board moved to another port: the device follows it there");
    inner.update_status(|s| s.port = Some(port.clone()));
    Outcome::Moved(port)
}

/// `boards` without those another plotter of the daemon is configured for (its port, or a
/// board with its nickname or USB serial): a search for the first AxiDraw never takes them.
fn unclaimed(boards: Vec<FoundBoard>, others: &[DeviceSettings]) -> Vec<FoundBoard> {
    boards
        .into_iter()
        .filter(|b| {
            !others.iter().any(|o| {
                let theirs = Identity::of(o);
                o.kind != DeviceKind::Simulator
                    && (o.port.as_deref() == Some(b.port.as_str())
                        || (theirs.is_set() && theirs.matches(b)))
            })
        })
        .collect()
}

/// A discovery for `device` when its board is found by a search: `None` for a fixed `port` or
/// the simulator, which are never followed.
pub(super) fn discovery_for(device: &DeviceSettings, discovery: &Discovery) -> Option<Discovery> {
    (device.port.is_none() && device.kind != DeviceKind::Simulator).then(|| discovery.clone())
}
