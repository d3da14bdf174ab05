//! `device.type: auto` without an AxiDraw: the daemon runs jobs on the built-in simulator, as the
//! configuration asks, but says so everywhere (the device's `notice`, the jobs recorded as
//! simulated) and keeps looking for a plotter. Every health check period (5 s) the USB search
//! runs again ([`Discovery`]: `devices::discover` in the daemon, a scripted one in tests); when a
//! board answers and the device is idle (no job plotting, armed or paused on it), the device
//! switches to it, and an alert says so. While the device is busy the switch waits for it.
//! An unnamed device takes the AxiDraw's port as its id: the old id `simulator` is announced
//! removed ([`DaemonEvent::DeviceRemoved`]), so that no list keeps it as a ghost plotter.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use serde_json::json;

use super::task::{Inner, SwitchRefused};
use crate::devices::discover::{self, FoundBoard, PROBE_TIMEOUT};
use crate::devices::link::DeviceError;
use crate::events::{Alert, DaemonEvent, DeviceState, Severity};
use crate::job::JobState;

/// What the status of a simulator chosen by `auto` says.
pub const NOTICE: &str = "no AxiDraw found (device.type: auto): jobs run on the built-in \
                          simulator and nothing is drawn on paper; plug the AxiDraw in (it is \
                          used as soon as the device is idle) or set device.type: axidraw";

/// Lists the AxiDraws connected by USB id, with their USB serials (see
/// [`discover::find_boards`]): cheap, no port is opened.
pub type FindBoards = Arc<dyn Fn() -> Result<Vec<FoundBoard>, String> + Send + Sync>;
/// Opens each board listed and asks for its firmware version and nickname (see
/// [`crate::devices::identity::identify`]); a board that cannot be asked gets its `problem`.
pub type Identify = Arc<dyn Fn(Vec<FoundBoard>) -> Vec<FoundBoard> + Send + Sync>;
/// Asks the board on a port for its firmware version (see [`discover::probe`]).
pub type Probe = Arc<dyn Fn(&str) -> Result<String, DeviceError> + Send + Sync>;

/// The device tasks of the daemon's plotters that follow their boards (see the `follow`
/// module): a search never opens a port one of the others holds.
pub(super) type Siblings = Arc<Mutex<Vec<Weak<Inner>>>>;

/// How the device layer looks for an AxiDraw.
#[derive(Clone)]
pub struct Discovery {
    /// The USB search (no port opened).
    pub find: FindBoards,
    /// Asks the boards listed for their nickname (each port opened).
    pub identify: Identify,
    /// The check that a port found is an EiBotBoard.
    pub probe: Probe,
    /// The baud rate a board found is opened at.
    pub baud: u32,
    /// The daemon's device tasks sharing this discovery (filled as they start following).
    pub(super) siblings: Siblings,
}

impl Discovery {
    /// The system's USB search, identification and probe (`device.baud_rate` `baud`).
    pub fn system(baud: u32) -> Self {
        Self::new(
            Arc::new(discover::find_boards),
            Arc::new(move |boards| {
                crate::devices::identity::identify(
                    boards,
                    baud,
                    crate::devices::identity::QUERY_TIMEOUT,
                )
            }),
            Arc::new(move |port| discover::probe(port, baud, PROBE_TIMEOUT)),
            baud,
        )
    }

    /// A discovery from its parts (tests script them), shared by no device task yet.
    pub fn new(find: FindBoards, identify: Identify, probe: Probe, baud: u32) -> Self {
        Self {
            find,
            identify,
            probe,
            baud,
            siblings: Siblings::default(),
        }
    }

    /// The boards connected, asked for their nickname when `wanted` needs it to tell them
    /// apart (as [`discover::list`]). Blocking.
    ///
    /// # Errors
    /// The ports cannot be listed.
    pub fn list(
        &self,
        wanted: &crate::devices::identity::Identity,
    ) -> Result<Vec<FoundBoard>, String> {
        let boards = (self.find)()?;
        Ok(if wanted.needs_nickname() {
            (self.identify)(boards)
        } else {
            boards
        })
    }

    /// This discovery, its device tasks being those of `siblings` (one list for all the
    /// daemon's plotters, so that each search knows the ports the others hold).
    pub(super) fn sharing(mut self, siblings: &Siblings) -> Self {
        self.siblings = Arc::clone(siblings);
        self
    }
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("baud", &self.baud)
            .finish_non_exhaustive()
    }
}

/// One look for an AxiDraw (see [`super::Plotter::rescan`]); returns the device id replaced.
pub(super) async fn rescan(inner: &Arc<Inner>) -> Option<String> {
    let discovery = inner
        .scan
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()?;
    if inner.lock().shutting_down {
        return None;
    }
    let find = Arc::clone(&discovery.find);
    // Never a board another of the daemon's plotters holds (its probe could fail that
    // plotter's next opening).
    let held = super::follow::held_by_others(inner, &discovery);
    let board = match tokio::task::spawn_blocking(move || find()).await {
        Ok(Ok(boards)) => boards.into_iter().find(|b| !held.contains(&b.port))?,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "cannot list serial ports to look for an AxiDraw");
            return None;
        }
        Err(e) => {
            tracing::error!(error = %e, "the USB search ended abnormally");
            return None;
        }
    };
    if let Some(why) = busy(inner).await {
        tracing::debug!(port = %board.port, "an AxiDraw is connected; the device switches to it once idle ({why})");
        return None;
    }
    // `auto` takes any board; one configured by identity never falls back to the simulator
    // (see `discover::choose`).
    let switched = inner
        .switch_port(
            &discovery,
            &board.port,
            crate::devices::identity::Identity::default(),
            |st, version| {
                let previous = st.status.device_id.clone();
                *inner.scan.lock().unwrap_or_else(PoisonError::into_inner) = None;
                st.connected_at = Some(std::time::Instant::now());
                let s = &mut st.status;
                if inner.name.is_none() {
                    s.device_id = board.port.clone();
                    // The one change of an unnamed device's id: it is the AxiDraw's from now on.
                    *inner.id.lock().unwrap_or_else(PoisonError::into_inner) = board.port.clone();
                }
                s.device_type = "axidraw".into();
                s.status = DeviceState::Connected;
                s.firmware_version = Some(version.to_owned());
                s.pen_up = None;
                s.position_mm = None;
                s.error_count = 0;
                s.error_message = None;
                s.notice = None;
                s.last_heartbeat = crate::timestamp::now();
                previous
            },
        )
        .await;
    let (version, previous) = match switched {
        Ok(done) => done,
        Err(SwitchRefused::Probe(e)) => {
            tracing::warn!(port = %board.port, error = %e, "an AxiDraw was found but does not answer yet");
            return None;
        }
        // A job handed over meanwhile keeps the simulator.
        Err(SwitchRefused::Busy | SwitchRefused::Abnormal) => return None,
    };
    // The simulator's board is put away; the next plot opens the AxiDraw.
    drop(
        inner
            .link
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(),
    );
    tracing::warn!(port = %board.port, firmware = %version, "AxiDraw connected: jobs plot on it from now on, no longer on the simulator");
    if previous != inner.device_id() {
        // The plotter `simulator` is gone: the lists that keep each plotter's last status
        // (the API's, the relay's to the other daemons) drop it.
        let _ = inner.ledger.bus().send(DaemonEvent::DeviceRemoved {
            device_id: previous.clone(),
        });
    }
    inner.update_status(|_| {});
    let _ = inner.ledger.bus().send(DaemonEvent::Alert(Alert {
        severity: Severity::Warning,
        title: "AxiDraw connected".into(),
        message: format!(
            "an AxiDraw answered on {} (firmware {version}): jobs plot on it from now on, no \
             longer on the simulator; load paper before starting the next job",
            board.port
        ),
        source: "device".into(),
        metadata: if previous == inner.device_id() {
            json!({ "device_id": previous })
        } else {
            // Only when the id changed: a client drops the plotter of that id (an unnamed one).
            json!({ "device_id": inner.device_id(), "previous_device_id": previous })
        },
    }));
    Some(previous)
}

/// Why the device cannot switch now: a run or manual action, or a job that holds it.
async fn busy(inner: &Inner) -> Option<String> {
    {
        let st = inner.lock();
        if let Some(r) = &st.run {
            return Some(format!("job {} runs on it", r.job_id));
        }
        if st.manual {
            return Some("a manual action runs".into());
        }
    }
    let held = vec![JobState::Armed, JobState::Plotting, JobState::Paused];
    match inner.ledger.store().jobs(held).await {
        Ok(jobs) => jobs
            .first()
            .map(|j| format!("job {} is {} on it", j.id, j.state)),
        Err(e) => Some(format!("cannot read the jobs holding it: {e}")),
    }
}
