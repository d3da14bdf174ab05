//! The device's health, measured: while no plot runs, the device task asks the board for its
//! version every [`PERIOD`] over the idle link (opening it if none is held). An answer stamps
//! `last_heartbeat`; a link that fails makes the device `disconnected` (`offline` when its
//! serial port is gone) and starts the reconnection. During a plot every board reply stamps it.

use std::sync::Arc;
use std::time::Duration;

use super::task::Inner;
use crate::events::DeviceState;

/// How often an idle device is asked whether it answers.
pub(super) const PERIOD: Duration = Duration::from_secs(5);

/// Longest wait for the board's answer.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// Asks the idle device whether it answers and records what it found.
pub(super) async fn check(inner: &Arc<Inner>) {
    {
        let st = inner.lock();
        // A plot or a manual action has the link (their replies are the proof), and a device
        // that is down is being reopened by `reconnect`.
        if st.run.is_some()
            || st.manual
            || st.shutting_down
            || st.status.status != DeviceState::Connected
        {
            return;
        }
    }
    let task = Arc::clone(inner);
    let answered = tokio::task::spawn_blocking(move || {
        // Held across the exchange: a plot or action that starts meanwhile waits for the link.
        let mut held = task
            .link
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut link = match held.take() {
            Some(l) => l,
            None => task.opener().open()?,
        };
        crate::device::ping(&mut link, PING_TIMEOUT)?;
        *held = Some(link);
        Ok::<(), crate::device::DeviceError>(())
    })
    .await;
    match answered {
        Ok(Ok(())) => inner.touch(),
        Ok(Err(e)) => inner.link_lost(&e),
        Err(e) => tracing::error!(error = %e, "the device health check ended abnormally"),
    }
}
