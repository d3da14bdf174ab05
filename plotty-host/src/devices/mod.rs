//! Devices: everything about the plotters — which exist, how they are found and reached, and
//! the task that drives each. [`crate::plot`] is the SVG-to-paper pipeline a device task runs.
//!
//! One device task per configured plotter (`device.type`:
//! `auto` — the first AxiDraw found by USB id, else the built-in simulator; `axidraw`;
//! `simulator`), started in start-up step 4 and attached to the job queue. An `auto` that found
//! no AxiDraw says so (a warning, an alert, the device's `notice`, jobs recorded as simulated)
//! and keeps looking for one ([`scan`]).
//!
//! - [`task`]: the [`Plotter`] — the queue's [`crate::queue::DeviceControl`]: pause, resume and
//!   abort of the running job, manual actions, status.
//! - [`run`]: one plot on the device — the plot runner on a thread of its own, its events turned
//!   into transitions, resume points, `job_progress` and `device_status`.
//! - [`progress`]: `job_progress` reports and their rate limit.
//! - `manual`: pen up, pen down, motors off on an idle device.
//! - `follow`: a board found by a search (nickname, serial, `port: auto`) that comes back on
//!   another port is followed there while the daemon runs; the device keeps its id.
//! - `health`: what the device status says is measured: the time of the board's last answer,
//!   `disconnected` when its link fails, `offline` when its port is gone.
//! - [`link`]: the bytes to and from a plotter: the [`link::Link`] trait, a serial port, the
//!   in-process simulator, and the [`Opener`] that opens either behind one type.
//! - [`discover`]: `--device auto|sim|PORT` and the config's `device.type`/`device.port` →
//!   a [`discover::Target`]; AxiDraws found by USB id; a probe that a port is a plotter.
//! - [`identity`]: boards told apart by nickname (`QT`/`ST`) and USB serial number
//!   (`device.nickname`, `device.serial`), checked again at every opening of a port.
//! - [`boards`]: `plotty device list|name`, run on the boards directly.
//! - [`check`]: `plotty check device` (reports what [`discover`] finds).
//!
//! On shutdown (`shutdown` settings), from the moment it is requested, the running plot finishes
//! the stroke being drawn (or the whole job), stops with the pen up, parks, and is recorded
//! `PAUSED` (reason `shutdown`) with its exact resume point; `resume` after the next start
//! continues from there, wherever the carriage is then. The device stage waits for that.

pub mod boards;
pub mod check;
pub mod discover;
mod follow;
mod health;
pub mod identity;
pub mod link;
mod manual;
pub mod progress;
pub mod registry;
pub mod run;
pub mod scan;
pub mod task;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

pub use link::{Opener, SimPace};
pub use scan::Discovery;
pub use task::Plotter;

use crate::daemon::{Component, StartContext, StartError};
use crate::queue::QueueHandle;
use crate::shutdown::Stage;

/// Starts the device task of the configured plotter in start-up step 4 and attaches it to the
/// queue.
pub struct DeviceComponent {
    queue: QueueHandle,
    pace: SimPace,
    opener: Option<Opener>,
    /// How `auto` looks for an AxiDraw (`None`: the system's USB search).
    discovery: Option<Discovery>,
    /// How often the idle device is checked (and `auto` on the simulator looks for a plotter).
    period: std::time::Duration,
}

impl DeviceComponent {
    /// The device layer, attaching to `queue`; a simulator runs at `pace`.
    pub fn new(queue: QueueHandle, pace: SimPace) -> Self {
        Self {
            queue,
            pace,
            opener: None,
            discovery: None,
            period: health::PERIOD,
        }
    }

    /// Looks for AxiDraws with `discovery` instead of the system's USB search (tests).
    pub fn with_discovery(mut self, discovery: Discovery) -> Self {
        self.discovery = Some(discovery);
        self
    }

    /// Checks the idle device (and looks for a plotter) every `period` (tests).
    pub fn with_period(mut self, period: std::time::Duration) -> Self {
        self.period = period;
        self
    }

    /// The device `opener` opens instead of the configured one (tests: a simulator with faults).
    pub fn with_opener(queue: QueueHandle, opener: Opener) -> Self {
        Self {
            queue,
            pace: SimPace::Fast,
            opener: Some(opener),
            discovery: None,
            period: health::PERIOD,
        }
    }
}

impl Component for DeviceComponent {
    fn name(&self) -> &str {
        "device"
    }

    fn stage(&self) -> Stage {
        Stage::Devices
    }

    fn start(self: Box<Self>, ctx: StartContext) -> BoxFuture<'static, Result<(), StartError>> {
        async move {
            let settings = ctx.settings.borrow().clone();
            if let Some(opener) = self.opener {
                tracing::info!("device: {}", opener.device_id());
                let name = settings.devices.first().and_then(|d| d.name.clone());
                let chosen = registry::Chosen {
                    opener,
                    scan: None,
                    follow: None,
                };
                attach(&ctx, self.queue, name, chosen, self.period);
                return Ok(());
            }
            // One device task per configured plotter, each found and attached under its name;
            // their searches share one list of them (none opens a port another holds).
            let siblings = scan::Siblings::default();
            for device in &settings.devices {
                let chosen =
                    registry::target(device, self.discovery.clone(), &siblings, self.pace, &ctx)
                        .await?;
                attach(
                    &ctx,
                    self.queue.clone(),
                    device.name.clone(),
                    chosen,
                    self.period,
                );
            }
            Ok(())
        }
        .boxed()
    }
}

/// Starts the device task of `chosen` (named `name`; looking for an AxiDraw with its `scan`
/// while it is `auto`'s simulator, following its board to another port with its `follow`),
/// checks it every `period`, attaches it to `queue`, and pauses its plot at shutdown.
fn attach(
    ctx: &StartContext,
    queue: QueueHandle,
    name: Option<String>,
    chosen: registry::Chosen,
    period: std::time::Duration,
) {
    let registry::Chosen {
        opener,
        scan,
        follow,
    } = chosen;
    let mut plotter = Plotter::named(
        name,
        opener,
        ctx.ledger.clone(),
        ctx.settings.clone(),
        ctx.shutdown.clone(),
        None,
    );
    if let Some(discovery) = scan {
        plotter = plotter.auto_fallback(discovery);
    }
    if let Some(discovery) = follow {
        plotter = plotter.following(discovery);
    }
    let attached = plotter.clone();
    let requeue = queue.clone();
    // The queue actor starts in step 5: the request waits in its channel until then.
    ctx.shutdown.spawn(async move {
        if let Err(e) = queue.attach_device(std::sync::Arc::new(attached)).await {
            tracing::error!(error = %e, "cannot attach the device to the queue");
        }
    });
    // Every `period` the board is asked whether it answers while idle (during a plot its
    // replies are the proof), and `auto` on the simulator looks for an AxiDraw; a switch to
    // one attaches the device to the queue under its new id.
    let (watch, shutdown) = (plotter.clone(), ctx.shutdown.clone());
    ctx.shutdown.spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.stop() => return,
                _ = ticks.tick() => {
                    watch.check_health().await;
                    // A named plotter keeps its id: it stays attached (a detach would take
                    // it out of the farm's list for a moment).
                    if let Some(previous) = watch.rescan().await.filter(|p| *p != crate::queue::DeviceControl::id(&watch)) {
                        let moved = async {
                            requeue.detach_device(previous).await?;
                            requeue.attach_device(std::sync::Arc::new(watch.clone())).await
                        };
                        if let Err(e) = moved.await {
                            tracing::error!(error = %e, "cannot attach the AxiDraw to the queue");
                        }
                    }
                }
            }
        }
    });
    // `device_status` at least once per heartbeat, so clients see the device is alive.
    let (beat, shutdown) = (plotter.clone(), ctx.shutdown.clone());
    let period = ctx
        .settings
        .borrow()
        .websocket
        .heartbeat_interval
        .max(std::time::Duration::from_secs(1));
    ctx.shutdown.spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.stop() => return,
                _ = ticks.tick() => beat.publish_status(),
            }
        }
    });
    let shutdown = ctx.shutdown.clone();
    ctx.shutdown.spawn(async move {
        // From the first moment of a shutdown: the plot finishes its stroke, then stops.
        shutdown.requested().await;
        plotter.wind_down().await;
    });
}

#[cfg(test)]
mod tests;
