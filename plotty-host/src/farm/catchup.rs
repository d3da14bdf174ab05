//! What a daemon's clients missed while its listening connection was down, caught up from the
//! database when the connection is back (see [`super::relay`]).
//!
//! Every state change is a row of `job_events` whose id travels in the notification
//! (`event_id`), and each daemon records the latest progress of its running jobs as it relays it
//! (`job_progress`, schema 8). The listener notes what reached this daemon's bus — its own
//! events and the relayed ones ([`Seen`]) — and on reconnecting publishes, once each:
//!
//! - every state change recorded after the first listen whose id was not seen, oldest first
//!   (ids are looked at from [`WINDOW`] ids below the highest seen, since a transaction may
//!   commit after one with a higher id; ids at or below the id current at the first listen
//!   predate this daemon's clients, which got a snapshot);
//! - the latest progress of each job plotting or paused on another daemon, unless the same
//!   progress already arrived;
//! - the deletion of each job the clients heard of (the last [`MAX_JOBS`]) that is gone from
//!   the database.
//!
//! A state change of this daemon's own is committed before it goes on the bus: the bus is read
//! for [`SETTLE`] after the query, so that such a change is seen rather than published twice.
//! A job deleted meanwhile takes its events with it (`ON DELETE CASCADE`): its state changes
//! missed before the deletion are not caught up, only the deletion.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tokio::sync::broadcast;

use crate::events::{DaemonEvent, DeviceStatus, EventSender, JobProgress, RemoteEvent};
use crate::job::JobId;
use crate::store::{PgStore, StoreError};

/// How far below the highest event id seen a catch-up looks for ids not seen (transactions
/// in flight when the connection was lost).
pub const WINDOW: i64 = 1_000;

/// The most state changes one catch-up publishes.
pub const MAX_CHANGES: i64 = 10_000;

/// How many jobs the clients heard of are remembered, to tell them of a deletion they missed.
pub const MAX_JOBS: usize = 10_000;

/// How long the bus is read after the catch-up query before publishing (see the module doc).
pub const SETTLE: Duration = Duration::from_millis(250);

/// The events that reached this daemon's bus (see the module doc).
#[derive(Debug, Default)]
pub struct Seen {
    /// The last event id when the listener first listened: older ones are never caught up.
    baseline: Option<i64>,
    /// The state-change event ids seen within [`WINDOW`] of the highest.
    ids: BTreeSet<i64>,
    /// The latest progress seen of each job: (points plotted, fraction done).
    progress: HashMap<JobId, (u64, f64)>,
    /// The jobs the clients heard of (not deleted), with the last event id about each and the
    /// daemon it came from (empty: this one).
    jobs: HashMap<JobId, (i64, String)>,
    /// The latest status seen of each other daemon's plotter, by (daemon, device id): a copy
    /// resent because a daemon asked for a refresh (see [`super::relay`]) is not shown again.
    devices: HashMap<(String, String), DeviceStatus>,
}

/// What one catch-up published.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct CaughtUp {
    /// State changes.
    pub changes: usize,
    /// Progress reports.
    pub progress: usize,
    /// Deletions.
    pub deleted: usize,
}

impl Seen {
    /// Notes `event` (this daemon's or a relayed one) as delivered to the clients.
    pub fn note(&mut self, event: &DaemonEvent) {
        self.note_from(event, "");
    }

    /// [`note`](Self::note) of an event of the daemon `from` (empty: this one).
    fn note_from(&mut self, event: &DaemonEvent, from: &str) {
        match event {
            DaemonEvent::JobStateChanged(c) => {
                self.ids.insert(c.event_id);
                self.jobs
                    .insert(c.job_id.clone(), (c.event_id, from.to_owned()));
                if self.jobs.len() > MAX_JOBS {
                    // The job heard of longest ago goes.
                    let oldest = self
                        .jobs
                        .iter()
                        .min_by_key(|(_, (id, _))| *id)
                        .map(|(job, _)| job.clone());
                    if let Some(job) = oldest {
                        self.jobs.remove(&job);
                    }
                }
                if c.to.is_terminal() {
                    self.progress.remove(&c.job_id);
                }
                let top = self.ids.last().copied().unwrap_or(c.event_id);
                while self
                    .ids
                    .first()
                    .is_some_and(|&first| first < top.saturating_sub(WINDOW))
                {
                    self.ids.pop_first();
                }
            }
            // Only other daemons' progress is ever caught up (`progress_of_others`).
            DaemonEvent::JobProgress(p) if !from.is_empty() => {
                self.progress
                    .insert(p.job_id.clone(), (p.points_plotted, p.progress));
            }
            DaemonEvent::JobDeleted { job_id } => {
                self.progress.remove(job_id);
                self.jobs.remove(job_id);
            }
            DaemonEvent::DeviceStatus(d) if !from.is_empty() => {
                self.devices
                    .insert((from.to_owned(), d.device_id.clone()), d.clone());
            }
            DaemonEvent::Remote(r) => self.note_from(&r.event, &r.daemon),
            _ => {}
        }
    }

    /// Whether `event` already reached the clients: a state change by its id, a progress or
    /// another daemon's plotter status by its value.
    pub fn has(&self, event: &DaemonEvent) -> bool {
        match event {
            DaemonEvent::JobStateChanged(c) => self.ids.contains(&c.event_id),
            // A progress recorded (at most once a second) before the latest one the clients saw
            // would show the job going back.
            DaemonEvent::JobProgress(p) => {
                self.progress.get(&p.job_id).is_some_and(|&(points, done)| {
                    points > p.points_plotted || (points == p.points_plotted && done >= p.progress)
                })
            }
            DaemonEvent::Remote(r) => match &r.event {
                DaemonEvent::DeviceStatus(d) => {
                    self.devices.get(&(r.daemon.clone(), d.device_id.clone())) == Some(d)
                }
                e => self.has(e),
            },
            _ => false,
        }
    }

    /// The event id above which a catch-up looks; `None` before the first listen.
    fn floor(&self) -> Option<i64> {
        let baseline = self.baseline?;
        let below_seen = self
            .ids
            .last()
            .map_or(i64::MIN, |top| top.saturating_sub(WINDOW));
        Some(baseline.max(below_seen))
    }
}

/// Called each time the listener listens (before it reads notifications): the first time it
/// notes where the history stands; after a lost connection it publishes what the clients
/// missed on `bus` as remote events, noting them in `seen` (so that a notification of the same
/// change, queued meanwhile, is dropped). `local` is the listener's subscription to the bus.
///
/// # Errors
/// The database failed (the listener reconnects and tries again).
pub async fn catch_up(
    store: &PgStore,
    me: &str,
    bus: &EventSender,
    local: &mut broadcast::Receiver<DaemonEvent>,
    seen: &mut Seen,
) -> Result<CaughtUp, StoreError> {
    drain(local, seen);
    let Some(floor) = seen.floor() else {
        seen.baseline = Some(store.last_event_id().await?);
        return Ok(CaughtUp::default());
    };
    let progress = store.progress_of_others(me).await?;
    // The window's rows, mostly seen, come first: room for them and for what was missed.
    let changes = store
        .state_changes_after(floor, WINDOW + MAX_CHANGES)
        .await?;
    // This daemon's own changes of the last moment are on their way to the bus.
    let _ = tokio::time::timeout(SETTLE, async {
        loop {
            match local.recv().await {
                Ok(e) => seen.note(&e),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    })
    .await;
    let mut done = CaughtUp::default();
    for (change, daemon) in changes {
        let event = DaemonEvent::JobStateChanged(change);
        if seen.has(&event) {
            continue;
        }
        seen.note(&event);
        done.changes += 1;
        publish(bus, daemon.unwrap_or_else(|| me.to_owned()), event);
    }
    for payload in progress {
        let Some(remote) = super::relay::decode(me, &payload) else {
            continue;
        };
        if !matches!(remote.event, DaemonEvent::JobProgress(_)) || seen.has(&remote.event) {
            continue;
        }
        seen.note(&remote.event);
        done.progress += 1;
        publish(bus, remote.daemon, remote.event);
    }
    let known: Vec<String> = seen.jobs.keys().map(|j| j.as_str().to_owned()).collect();
    if !known.is_empty() {
        let existing: std::collections::HashSet<String> =
            store.existing_jobs(&known).await?.into_iter().collect();
        let mut gone: Vec<(JobId, (i64, String))> = seen
            .jobs
            .iter()
            .filter(|(job, _)| !existing.contains(job.as_str()))
            .map(|(job, last)| (job.clone(), last.clone()))
            .collect();
        gone.sort_by_key(|(_, (id, _))| *id);
        for (job_id, (_, daemon)) in gone {
            let event = DaemonEvent::JobDeleted { job_id };
            seen.note(&event);
            done.deleted += 1;
            // Who deleted it is not recorded: the daemon its last event came from.
            let daemon = if daemon.is_empty() {
                me.to_owned()
            } else {
                daemon
            };
            publish(bus, daemon, event);
        }
    }
    // What was just published comes back on the subscription: already noted.
    drain(local, seen);
    Ok(done)
}

/// Notes whatever is waiting on the subscription.
pub fn drain(local: &mut broadcast::Receiver<DaemonEvent>, seen: &mut Seen) {
    loop {
        match local.try_recv() {
            Ok(e) => seen.note(&e),
            Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => return,
        }
    }
}

fn publish(bus: &EventSender, daemon: String, event: DaemonEvent) {
    // No subscriber is not an error.
    let _ = bus.send(DaemonEvent::Remote(Box::new(RemoteEvent { daemon, event })));
}

/// Progress `p` as the relay's out task records it: its notification payload.
pub fn progress_payload(daemon: &str, p: &JobProgress) -> Option<String> {
    super::relay::encode(daemon, &DaemonEvent::JobProgress(p.clone()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::job::{JobState, Reason};
    use crate::store::StateChange;

    fn change(event_id: i64, to: JobState) -> DaemonEvent {
        DaemonEvent::JobStateChanged(StateChange {
            event_id,
            job_id: JobId::parse("j1").unwrap(),
            job_name: "a.svg".into(),
            from: None,
            to,
            reason: Reason::Pipeline,
            error: None,
            metadata: json!({}),
            at: "2026-12-06T12:00:00Z".into(),
        })
    }

    fn progress(points: u64) -> DaemonEvent {
        DaemonEvent::JobProgress(JobProgress {
            job_id: JobId::parse("j1").unwrap(),
            device_id: None,
            progress: 0.5,
            current_layer: 1,
            total_layers: 1,
            points_plotted: points,
            total_points: 100,
            distance_mm: 1.0,
            eta_seconds: None,
            pen_down_time_seconds: 1.0,
            total_time_seconds: 2.0,
        })
    }

    #[test]
    fn changes_are_known_by_id_and_progress_by_value() {
        let mut seen = Seen::default();
        assert_eq!(
            seen.floor(),
            None,
            "nothing is caught up before the first listen"
        );
        seen.baseline = Some(40);
        assert_eq!(seen.floor(), Some(40));
        let remote = DaemonEvent::Remote(Box::new(RemoteEvent {
            daemon: "a".into(),
            event: change(50, JobState::Ready),
        }));
        assert!(!seen.has(&remote));
        seen.note(&remote);
        assert!(seen.has(&change(50, JobState::Queued)), "by id");
        assert!(!seen.has(&change(51, JobState::Ready)));
        // Only other daemons' progress is caught up, so only theirs is noted.
        seen.note(&progress(10));
        assert!(!seen.has(&progress(10)), "this daemon's own progress");
        seen.note(&DaemonEvent::Remote(Box::new(RemoteEvent {
            daemon: "a".into(),
            event: progress(10),
        })));
        assert!(seen.has(&progress(10)));
        assert!(!seen.has(&progress(11)));
        // A value recorded before the one the clients saw would show the job going back.
        assert!(seen.has(&progress(9)), "older than what was seen");
        // A job that ended has no progress to catch up.
        seen.note(&change(52, JobState::Completed));
        assert!(!seen.has(&progress(10)));
        // Far above the baseline, the window decides; old ids are forgotten.
        seen.note(&change(40 + 3 * WINDOW, JobState::Ready));
        assert_eq!(seen.floor(), Some(40 + 2 * WINDOW));
        assert!(!seen.ids.contains(&50));
    }
}
