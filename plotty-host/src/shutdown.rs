//! Graceful shutdown, as one signal fanned out to every task (mini-redis' shape, expressed with
//! tokio-util's `CancellationToken` and `TaskTracker`).
//!
//! Three tokens tell a task what is going on:
//! - *requested*: the daemon is shutting down. Every task sees it at once; stop taking new work
//!   (new jobs, new connections).
//! - *stop*: this task's stage is being stopped now. Reach a safe state (finish the stroke, pen up,
//!   park, close clients with 1001) and return. Stages are stopped one after another in the
//!   manual's order ([`STOP_ORDER`]), each waited for before the next.
//! - *immediate*: a second SIGTERM/SIGINT. Stop at once (pen up, motors off) and return.
//!
//! Tasks are spawned through their stage's [`Shutdown::spawn`], so the daemon knows when a stage
//! has finished.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The start-up steps that run components (numbering of the manual's six steps).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Stage {
    /// Step 3: the WebSocket/HTTP server.
    Api,
    /// Step 4: device detection and the device tasks.
    Devices,
    /// Step 5: queue processing.
    Queue,
    /// Step 6: the hook system.
    Hooks,
}

/// Shutdown order (manual, "Graceful Shutdown"): stop accepting and finish the active plot (queue),
/// close clients (API), power down the hardware (devices), let running hooks end.
pub const STOP_ORDER: [Stage; 4] = [Stage::Queue, Stage::Api, Stage::Devices, Stage::Hooks];

/// What one task holds to follow the shutdown.
#[derive(Clone, Debug)]
pub struct Shutdown {
    requested: CancellationToken,
    stop: CancellationToken,
    immediate: CancellationToken,
    tracker: TaskTracker,
}

/// Owned by the daemon: starts and sequences the shutdown.
#[derive(Debug)]
pub struct Coordinator {
    requested: CancellationToken,
    immediate: CancellationToken,
    stages: BTreeMap<Stage, (CancellationToken, TaskTracker)>,
}

impl Stage {
    /// Every stage in start order.
    pub const ALL: [Self; 4] = [Self::Api, Self::Devices, Self::Queue, Self::Hooks];

    /// The manual's step number (3–6).
    pub const fn step(self) -> u8 {
        match self {
            Self::Api => 3,
            Self::Devices => 4,
            Self::Queue => 5,
            Self::Hooks => 6,
        }
    }

    /// A short name for logs.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Devices => "devices",
            Self::Queue => "queue",
            Self::Hooks => "hooks",
        }
    }

    /// How long the daemon waits for this stage to stop before giving up on it.
    pub const fn grace(self) -> Duration {
        match self {
            // The active plot finishes its stroke, lifts the pen and parks.
            Self::Queue => Duration::from_secs(60),
            Self::Api => Duration::from_secs(5),
            // Pen up, motors off.
            Self::Devices => Duration::from_secs(15),
            // Running hooks have their own timeouts; past this they are abandoned (and killed).
            Self::Hooks => Duration::from_secs(10),
        }
    }
}

impl Shutdown {
    /// Resolves when the daemon starts shutting down: stop taking new work.
    pub async fn requested(&self) {
        self.requested.cancelled().await;
    }

    /// True once the shutdown has started.
    pub fn is_requested(&self) -> bool {
        self.requested.is_cancelled()
    }

    /// Resolves when this stage must reach a safe state and return.
    pub async fn stop(&self) {
        self.stop.cancelled().await;
    }

    /// True once this stage must stop.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Resolves on a second signal: stop at once.
    pub async fn immediate(&self) {
        self.immediate.cancelled().await;
    }

    /// True after a second signal.
    pub fn is_immediate(&self) -> bool {
        self.immediate.is_cancelled()
    }

    /// Spawns a task of this stage; the daemon waits for it when the stage stops.
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(task)
    }

    /// The stage's task tracker (to hand to code that spawns on its own, like the hook runner).
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// A token cancelled when this stage must stop (for APIs that take a token).
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }
}

impl Coordinator {
    /// A coordinator with a token and tracker per stage.
    pub fn new() -> Self {
        let stages = Stage::ALL
            .into_iter()
            .map(|s| (s, (CancellationToken::new(), TaskTracker::new())))
            .collect();
        Self {
            requested: CancellationToken::new(),
            immediate: CancellationToken::new(),
            stages,
        }
    }

    /// The handle for tasks of `stage`.
    pub fn handle(&self, stage: Stage) -> Shutdown {
        let (stop, tracker) = self.stage(stage);
        Shutdown {
            requested: self.requested.clone(),
            stop,
            immediate: self.immediate.clone(),
            tracker,
        }
    }

    fn stage(&self, stage: Stage) -> (CancellationToken, TaskTracker) {
        match self.stages.get(&stage) {
            Some((t, tr)) => (t.clone(), tr.clone()),
            // `new` creates every stage; a fresh pair keeps this total anyway.
            None => (CancellationToken::new(), TaskTracker::new()),
        }
    }

    /// Tells every task that the shutdown started.
    pub fn begin(&self) {
        self.requested.cancel();
    }

    /// True once [`Coordinator::begin`] was called.
    pub fn is_requested(&self) -> bool {
        self.requested.is_cancelled()
    }

    /// The second signal: every task stops at once.
    pub fn force(&self) {
        self.immediate.cancel();
    }

    /// True after [`Coordinator::force`].
    pub fn is_forced(&self) -> bool {
        self.immediate.is_cancelled()
    }

    /// Stops `stage` and waits up to `deadline` for its tasks; false if some are still running.
    pub async fn stop_stage(&self, stage: Stage, deadline: Duration) -> bool {
        let (stop, tracker) = self.stage(stage);
        stop.cancel();
        tracker.close();
        tokio::time::timeout(deadline, tracker.wait()).await.is_ok()
    }

    /// Number of tasks still running in `stage`.
    pub fn running(&self, stage: Stage) -> usize {
        self.stage(stage).1.len()
    }
}

impl Default for Coordinator {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stages_stop_in_order_and_wait_for_their_tasks() {
        let c = Coordinator::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        for stage in Stage::ALL {
            let h = c.handle(stage);
            let log = Arc::clone(&log);
            h.clone().spawn(async move {
                h.requested().await;
                h.stop().await;
                // Reaching a safe state takes a while.
                tokio::time::sleep(Duration::from_millis(100)).await;
                log.lock().unwrap().push(stage);
            });
        }
        c.begin();
        for stage in STOP_ORDER {
            assert!(c.stop_stage(stage, Duration::from_secs(1)).await);
            assert_eq!(c.running(stage), 0);
        }
        assert_eq!(*log.lock().unwrap(), STOP_ORDER);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_stage_times_out_and_force_reaches_everyone() {
        let c = Coordinator::new();
        let h = c.handle(Stage::Queue);
        let stuck = h.clone();
        h.spawn(async move {
            // Ignores `stop`, only reacts to `immediate`.
            stuck.immediate().await;
        });
        c.begin();
        assert!(!c.stop_stage(Stage::Queue, Duration::from_secs(2)).await);
        c.force();
        assert!(c.stop_stage(Stage::Queue, Duration::from_secs(2)).await);
        assert!(h.is_immediate() && h.is_requested() && h.is_stopping());
    }
}
