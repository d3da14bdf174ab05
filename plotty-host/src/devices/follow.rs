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
//! plotters of the daemon are configured for (their port, nickname or serial: the boards are
//! asked for their nickname when another plotter has one, and a board that cannot be asked
//! counts as taken), so two plotters are never swapped; a search never opens a port another
//! plotter holds; and the boards are opened (asked, probed) again only once the USB listing
//! changed, not on every attempt of a reconnection that may last for days.

use std::sync::{Arc, PoisonError, Weak};

use super::discover::{self, DeviceRequest, FoundBoard, Target};
use super::identity::Identity;
use super::link::{DeviceError, Opener};
use super::scan::Discovery;
use super::task::{Inner, SwitchRefused};
use crate::events::DeviceState;
use crate::settings::{DeviceKind, DeviceSettings};

/// What a [`search`] did.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(super) enum Outcome {
    /// The board is on this other port now: the device opens it there.
    Moved(String),
    /// The device is not one that follows its board (a fixed port, the simulator).
    Fixed,
    /// The board was not found elsewhere (not plugged in yet, not answering, or where it was),
    /// or nothing changed since the last search.
    NotFound,
    /// Several boards are the configured one: none is driven (the status says so).
    Ambiguous,
}

/// What a search saw: the USB listing (ports and serials, sorted) and the ports the other
/// plotters hold. Opening every AxiDraw's port again is worth it only once this changed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(super) struct Seen {
    boards: Vec<(String, Option<String>)>,
    held: Vec<String>,
}

/// Looks for the board of the serial device `inner` elsewhere and, when it is found on another
/// port and the device is idle, switches the device to that port (see the module doc).
///
/// The USB listing is cheap (no port opened); the boards are opened (asked for their
/// nickname, probed) only when that listing or the ports the other plotters hold changed since
/// the last search that came to an answer, so a board gone for days costs no port openings.
/// The ports the other plotters hold are never opened.
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
        identity,
        ..
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
    let listed = match tokio::task::spawn_blocking(move || find()).await {
        Ok(Ok(boards)) => boards,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "cannot list serial ports to look for the device's board");
            return Outcome::NotFound;
        }
        Err(e) => {
            tracing::error!(error = %e, "the USB search ended abnormally");
            return Outcome::NotFound;
        }
    };
    let held = held_by_others(inner, &discovery);
    let seen = Seen {
        boards: {
            let mut b: Vec<_> = listed
                .iter()
                .map(|b| (b.port.clone(), b.serial.clone()))
                .collect();
            b.sort();
            b
        },
        held: held.clone(),
    };
    if inner
        .searched
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        == Some(&seen)
    {
        return Outcome::NotFound;
    }
    let boards: Vec<FoundBoard> = listed
        .into_iter()
        .filter(|b| !held.contains(&b.port))
        .collect();
    // A search for any AxiDraw must tell the other plotters' boards apart: by nickname, only
    // the boards know it.
    let siblings_named = others
        .iter()
        .any(|o| o.kind != DeviceKind::Simulator && o.nickname.is_some());
    let ask = identity.needs_nickname() || (!identity.is_set() && siblings_named);
    let (identify, wanted) = (Arc::clone(&discovery.identify), identity.clone());
    let chosen = tokio::task::spawn_blocking(move || {
        let boards = if ask { identify(boards) } else { boards };
        // A board that could not be asked may be another plotter's: this time it counts as one.
        let unsure = boards.iter().any(|b| b.problem.is_some());
        let target = discover::choose(&DeviceRequest::Config, &device, || {
            Ok(if wanted.is_set() {
                boards
            } else {
                unclaimed(boards, &others, siblings_named)
            })
        });
        (target, unsure)
    })
    .await;
    let (target, unsure) = match chosen {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, "the search for the device's board ended abnormally");
            return Outcome::NotFound;
        }
    };
    // Searched again on the next change only: unless a board could not be asked (it is
    // asked again next time).
    let remember = |inner: &Inner| {
        if !unsure {
            *inner
                .searched
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(seen.clone());
        }
    };
    let target = match target {
        Ok(t) => t,
        Err(e @ DeviceError::SeveralBoards { .. }) => {
            remember(inner);
            let message = e.to_string();
            let new = inner.lock().status.error_message.as_deref() != Some(&message);
            if new {
                tracing::warn!(device = %inner.device_id(), error = %e, "the device's board cannot be told apart: it is not driven");
                inner.update_status(|s| s.error_message = Some(message));
            }
            return Outcome::Ambiguous;
        }
        Err(e) => {
            remember(inner);
            tracing::debug!(device = %inner.device_id(), error = %e, "the device's board is not found elsewhere");
            return Outcome::NotFound;
        }
    };
    let Target::Serial { port, .. } = target else {
        // `auto` without a board found: the device waits for its AxiDraw, never the simulator.
        remember(inner);
        return Outcome::NotFound;
    };
    if port == current {
        remember(inner);
        return Outcome::NotFound;
    }
    let switched = inner
        .switch_port(&discovery, &port, identity, |st, _| {
            // An earlier error (another board on the old port, two boards alike) is over.
            st.status.error_message = None;
            st.status.notice = Some(format!(
                "its board moved: followed from {current} to {port}"
            ));
        })
        .await;
    match switched {
        Ok(_) => {}
        Err(SwitchRefused::Probe(e)) => {
            // Not remembered: asked again on the next attempt.
            tracing::debug!(port = %port, error = %e, "the device's board was found but does not answer yet");
            return Outcome::NotFound;
        }
        Err(SwitchRefused::Busy | SwitchRefused::Abnormal) => return Outcome::NotFound,
    }
    remember(inner);
    tracing::info!(device = %inner.device_id(), from = %current, to = %port, "the device's board moved to another port: the device follows it there");
    inner.update_status(|_| {});
    Outcome::Moved(port)
}

/// The ports the daemon's other plotters hold: each one's port while its link is up (a run,
/// a manual action, or connected). A search never opens them: the port is busy, and a
/// moment it is not held could fail the other plotter's next opening.
pub(super) fn held_by_others(inner: &Arc<Inner>, discovery: &Discovery) -> Vec<String> {
    let siblings: Vec<Arc<Inner>> = discovery
        .siblings
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter_map(Weak::upgrade)
        .filter(|s| !Arc::ptr_eq(s, inner))
        .collect();
    let mut held: Vec<String> = siblings
        .iter()
        .filter(|s| {
            let st = s.lock();
            st.run.is_some() || st.manual || st.status.status == DeviceState::Connected
        })
        .filter_map(|s| s.opener().port().map(str::to_owned))
        .collect();
    held.sort();
    held.dedup();
    held
}

/// `boards` without those another plotter of the daemon is configured for (its port, or a
/// board with its nickname or USB serial): a search for the first AxiDraw never takes them.
/// With `unsure` (another plotter is found by nickname), a board whose nickname could not be
/// asked counts as taken too.
fn unclaimed(boards: Vec<FoundBoard>, others: &[DeviceSettings], unsure: bool) -> Vec<FoundBoard> {
    boards
        .into_iter()
        .filter(|b| !(unsure && b.problem.is_some()))
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
