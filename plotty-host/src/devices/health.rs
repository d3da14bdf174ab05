//! The device's health, measured: while no plot runs, the device task asks the board for its
//! version every [`PERIOD`] over the idle link (opening it if none is held). An answer stamps
//! `last_heartbeat`; a link that fails makes the device `disconnected` (`offline` when its
//! serial port is gone) and starts the reconnection. During a plot every board reply stamps it.
//!
//! Every [`SUPPLY_PERIOD`] the idle check also reads the motor supply (`QC`), so the device panel
//! shows it before any plot and notices a supply switched off. Never during a plot or a paused
//! one (their run owns the link: a query there would sit between the moves that feed the FIFO;
//! the session reads the supply itself).

use std::sync::Arc;
use std::time::Duration;

use super::task::Inner;
use crate::events::DeviceState;

/// How often an idle device is asked whether it answers.
pub(super) const PERIOD: Duration = Duration::from_secs(5);

/// How often an idle device's motor supply is read (every third health check).
pub(super) const SUPPLY_PERIOD: Duration = Duration::from_secs(15);

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
    let read_supply = {
        let mut st = inner.lock();
        let due = st
            .supply_read_at
            .is_none_or(|t| t.elapsed() >= SUPPLY_PERIOD);
        if due {
            st.supply_read_at = Some(std::time::Instant::now());
        }
        due
    };
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
        crate::devices::link::ping(&mut link, PING_TIMEOUT)?;
        let supply = if read_supply {
            crate::devices::link::query_supply(&mut link, PING_TIMEOUT)?
        } else {
            None
        };
        *held = Some(link);
        Ok::<Option<u16>, crate::devices::link::DeviceError>(supply)
    })
    .await;
    match answered {
        Ok(Ok(supply)) => {
            inner.touch();
            if let Some(reading) = supply {
                // The threshold a plot checks before it starts (the session's `min_voltage`).
                let settings = inner.settings();
                let config = crate::plot::PlotConfig::from_settings(&settings);
                let min = crate::plot::runner::session_config(&config, settings.device.timeout)
                    .min_voltage;
                let now = crate::events::MotorSupply {
                    reading,
                    low: min.is_some_and(|m| reading < m),
                };
                if inner.status().motor_supply != Some(now) {
                    inner.update_status(|s| s.motor_supply = Some(now));
                }
            }
        }
        Ok(Err(e)) => inner.link_lost(&e),
        Err(e) => tracing::error!(error = %e, "the device health check ended abnormally"),
    }
}
