//! The device layer of the daemon: one device task per configured plotter (`device.type`:
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
//! - `health`: what the device status says is measured: the time of the board's last answer,
//!   `disconnected` when its link fails, `offline` when its port is gone.
//! - [`link`]: the simulator or a serial port behind one link type.
//!
//! On shutdown (`shutdown` settings), from the moment it is requested, the running plot finishes
//! the stroke being drawn (or the whole job), stops with the pen up, parks, and is recorded
//! `PAUSED` (reason `shutdown`) with its exact resume point; `resume` after the next start
//! continues from there, wherever the carriage is then. The device stage waits for that.

mod health;
pub mod link;
mod manual;
pub mod progress;
pub mod run;
pub mod scan;
pub mod task;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

pub use link::{Opener, SimPace};
pub use scan::Discovery;
pub use task::Plotter;

use crate::daemon::{Component, StartContext, StartError};
use crate::device::discover::{self, DeviceRequest, SimulatorReason, Target};
use crate::events::{Alert, DaemonEvent, Severity};
use crate::exit::ExitCode;
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
                attach(&ctx, self.queue, opener, None, self.period);
                return Ok(());
            }
            let device = settings.device.clone();
            let discovery = self.discovery.unwrap_or_else(|| {
                Discovery::system(
                    settings.device.baud_rate,
                    crate::device::identity::Identity::of(&settings.device),
                )
            });
            let find = std::sync::Arc::clone(&discovery.find);
            let target = tokio::task::spawn_blocking(move || {
                discover::choose(&DeviceRequest::Config, &device, || find())
            })
            .await
            .map_err(|e| StartError::new(format!("device discovery ended abnormally: {e}")))?
            .map_err(|e| StartError {
                message: e.to_string(),
                exit_code: Some(ExitCode::Device),
            })?;
            let opener = match &target {
                Target::Simulator { .. } => Opener::simulator(settings.device.firmware, self.pace),
                Target::Serial { port, .. } => {
                    let (p, baud) = (port.clone(), settings.device.baud_rate);
                    let probe = std::sync::Arc::clone(&discovery.probe);
                    let version = tokio::task::spawn_blocking(move || probe(&p))
                        .await
                        .map_err(|e| {
                            StartError::new(format!("probing {port} ended abnormally: {e}"))
                        })?
                        .map_err(|e| StartError {
                            message: e.to_string(),
                            exit_code: Some(ExitCode::Device),
                        })?;
                    tracing::info!(port = %port, firmware = %version, "plotter found");
                    Opener::Serial {
                        port: port.clone(),
                        baud,
                        identity: crate::device::identity::Identity::of(&settings.device),
                    }
                }
            };
            let scan = match target {
                Target::Simulator {
                    reason: SimulatorReason::NoneFound,
                } => {
                    // Jobs still run (the configuration asks for `auto`), but nobody may take
                    // a simulated plot for a drawn one.
                    tracing::warn!("device: {target}; {}", scan::NOTICE);
                    let _ = ctx.ledger.bus().send(DaemonEvent::Alert(Alert {
                        severity: Severity::Warning,
                        title: "no AxiDraw found: plotting on the simulator".into(),
                        message: scan::NOTICE.into(),
                        source: "device".into(),
                        metadata: serde_json::json!({ "device_id": opener.device_id() }),
                    }));
                    Some(discovery)
                }
                _ => {
                    tracing::info!("device: {target}");
                    None
                }
            };
            attach(&ctx, self.queue, opener, scan, self.period);
            Ok(())
        }
        .boxed()
    }
}

/// Starts the device task of `opener` (looking for an AxiDraw with `scan` while it is `auto`'s
/// simulator), checks it every `period`, attaches it to `queue`, and pauses its plot at
/// shutdown.
fn attach(
    ctx: &StartContext,
    queue: QueueHandle,
    opener: Opener,
    scan: Option<Discovery>,
    period: std::time::Duration,
) {
    let mut plotter = Plotter::new(
        opener,
        ctx.ledger.clone(),
        ctx.settings.clone(),
        ctx.shutdown.clone(),
        None,
    );
    if let Some(discovery) = scan {
        plotter = plotter.auto_fallback(discovery);
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
                    if let Some(previous) = watch.rescan().await {
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
