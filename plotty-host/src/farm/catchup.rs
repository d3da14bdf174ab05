//! What a daemon's clients missed while its listening connection was down, caught up from the
//! database when the connection is back (see [`super::relay`]).
//!
//! Every state change is a row of `job_events` whose id travels in the notification
//! (`event_id`), and each daemon records the latest progress of its running jobs as it relays it
//! (`job_progress`, schema 8). The listener notes what reached this daemon's bus — its own
//! events and the relayed ones ([`Seen`]) — and on reconnecting publishes, once each:
//!
//! - every state change recorded after the first listen whose id was not seen, oldest first,
//!   read [`PAGE`] at a time however many were missed (ids are looked at from [`WINDOW`] ids
//!   below the highest seen, since a transaction may commit after one with a higher id; ids at
//!   or below the id current at the first listen predate this daemon's clients, which got a
//!   snapshot; ids above the highest when the catch-up starts arrive as notifications);
//! - the latest progress of each job plotting or paused on another daemon, unless the same
//!   progress already arrived;
//! - the deletion of each job the clients heard of (the last [`MAX_JOBS`]) that is gone from
//!   the database.
//!
//! A state change of this daemon's own is committed before it goes on the bus: the bus is read
//! for [`SETTLE`] after the query, so that such a change is seen rather than published twice.
//! A job deleted meanwhile takes its events with it (`ON DELETE CASCADE`): its state changes
//! missed before the deletion are not caught up, only the deletion.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use tokio::sync::broadcast;

use crate::events::{DaemonEvent, DeviceStatus, EventSender, JobProgress, RemoteEvent};
use crate::job::JobId;
use crate::store::{PgStore, StoreError};

/// How far below the highest event id seen a catch-up looks for ids not seen (transactions
/// in flight when the connection was lost).
pub const WINDOW: i64 = 1_000;

/// The state changes a catch-up reads per query: under half the bus's
/// [`crate::events::CAPACITY`], so that its subscribers (the API's fan-out) read a page while
/// the next one is queried rather than fall behind and drop events.
pub const PAGE: i64 = 500;

/// The longest a catch-up waits, after a page, for the bus to have room for the next one (its
/// subscribers read [`PAGE`] events behind at most); past it, the next page goes anyway (a
/// subscriber that stopped reading does not stop the catch-up).
pub const ROOM_WAIT: Duration = Duration::from_secs(5);

/// How often a catch-up waiting for room looks at the bus again.
const ROOM_POLL: Duration = Duration::from_millis(5);

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
    /// The keys of `jobs` by their last event id: the job heard of longest ago, evicted when
    /// there are more than [`MAX_JOBS`], is the first (found without a scan).
    jobs_by_id: BTreeSet<(i64, JobId)>,
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
                self.hear_of(&c.job_id, c.event_id, from);
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
                self.forget_job(job_id);
            }
            DaemonEvent::DeviceStatus(d) if !from.is_empty() => {
                self.devices
                    .insert((from.to_owned(), d.device_id.clone()), d.clone());
            }
            DaemonEvent::Remote(r) => self.note_from(&r.event, &r.daemon),
            _ => {}
        }
    }

    /// Notes that the clients heard of `job` last through event `event_id` of daemon `from`;
    /// past [`MAX_JOBS`], the job heard of longest ago (the lowest last event id) goes.
    fn hear_of(&mut self, job: &JobId, event_id: i64, from: &str) {
        if let Some((old, _)) = self.jobs.insert(job.clone(), (event_id, from.to_owned())) {
            self.jobs_by_id.remove(&(old, job.clone()));
        }
        self.jobs_by_id.insert((event_id, job.clone()));
        if self.jobs.len() > MAX_JOBS
            && let Some((_, oldest)) = self.jobs_by_id.pop_first()
        {
            self.jobs.remove(&oldest);
        }
    }

    /// Forgets `job` (deleted).
    fn forget_job(&mut self, job: &JobId) {
        if let Some((id, _)) = self.jobs.remove(job) {
            self.jobs_by_id.remove(&(id, job.clone()));
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
/// change, queued meanwhile, is dropped). `local` is the listener's subscription to the bus;
/// the missed state changes are read `page` at a time ([`PAGE`]; at least 1).
///
/// # Errors
/// The database failed (the listener reconnects and tries again).
pub async fn catch_up(
    store: &PgStore,
    me: &str,
    bus: &EventSender,
    local: &mut broadcast::Receiver<DaemonEvent>,
    seen: &mut Seen,
    page: i64,
) -> Result<CaughtUp, StoreError> {
    drain(local, seen);
    let Some(floor) = seen.floor() else {
        seen.baseline = Some(store.last_event_id().await?);
        return Ok(CaughtUp::default());
    };
    let page = page.max(1);
    // This daemon listens already: a change with a higher id, committed from now on, is
    // notified, or, one of its own, put on the bus. The pages stop here, so that they end
    // however busy the farm is, and so that this daemon's own later changes reach the clients
    // from the bus only (not also from here, as another daemon's).
    let last = store.last_event_id().await?;
    let progress = store.progress_of_others(me).await?;
    // The window's rows, mostly seen, come first.
    let mut changes = store.state_changes_after(floor, page).await?;
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
    loop {
        // A page shorter than asked for, or reaching past `last`, is the last one.
        let mut more = i64::try_from(changes.len()).is_ok_and(|n| n >= page);
        let mut after = None;
        for (change, daemon) in changes {
            if change.event_id > last {
                more = false;
                break;
            }
            after = Some(change.event_id);
            let event = DaemonEvent::JobStateChanged(change);
            if seen.has(&event) {
                continue;
            }
            seen.note(&event);
            done.changes += 1;
            publish(bus, daemon.unwrap_or_else(|| me.to_owned()), event);
        }
        let Some(after) = after.filter(|&a| more && a < last) else {
            break;
        };
        // What this daemon published meanwhile (its own changes) is known before the next
        // page, and the subscribers have read the page enough for the next to fit.
        room(bus, local, seen).await;
        changes = store.state_changes_after(after, page).await?;
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
        let existing: HashSet<String> = store.existing_jobs(&known).await?.into_iter().collect();
        // Oldest first.
        let gone: Vec<(JobId, String)> = seen
            .jobs_by_id
            .iter()
            .filter(|(_, job)| !existing.contains(job.as_str()))
            .filter_map(|(_, job)| Some((job.clone(), seen.jobs.get(job)?.1.clone())))
            .collect();
        for (job_id, daemon) in gone {
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

/// Waits (at most [`ROOM_WAIT`]) until the bus's slowest subscriber is at most [`PAGE`] events
/// behind, noting what reaches `local` meanwhile: on busy cores the API's fan-out reads slower
/// than pages are published, and a bus ([`crate::events::CAPACITY`]) outrun drops events.
async fn room(bus: &EventSender, local: &mut broadcast::Receiver<DaemonEvent>, seen: &mut Seen) {
    let limit = usize::try_from(PAGE).unwrap_or(usize::MAX);
    let deadline = tokio::time::Instant::now() + ROOM_WAIT;
    loop {
        drain(local, seen);
        if bus.len() <= limit {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                behind = bus.len(),
                "a subscriber of the event bus does not keep up with the catch-up; going on"
            );
            return;
        }
        tokio::time::sleep(ROOM_POLL).await;
    }
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

    fn change_of(job: &str, event_id: i64) -> DaemonEvent {
        let DaemonEvent::JobStateChanged(mut c) = change(event_id, JobState::Ready) else {
            unreachable!("change() is a state change")
        };
        c.job_id = JobId::parse(job).unwrap();
        DaemonEvent::JobStateChanged(c)
    }

    /// Past [`MAX_JOBS`], the job heard of longest ago (by its last event) is forgotten first,
    /// one per new job, whatever order the jobs were first heard of.
    #[test]
    fn the_job_heard_of_longest_ago_is_forgotten_first() {
        let mut seen = Seen::default();
        let job = |n: usize| format!("job{n}");
        for n in 0..MAX_JOBS {
            seen.note(&change_of(&job(n), 10 + n as i64));
        }
        // job0 is heard of again: job1 is now the one heard of longest ago.
        let top = 10 + MAX_JOBS as i64;
        seen.note(&change_of(&job(0), top));
        // A deleted job leaves room: nothing is evicted for the next one.
        seen.note(&DaemonEvent::JobDeleted {
            job_id: JobId::parse(&job(5)).unwrap(),
        });
        seen.note(&change_of("new0", top + 1));
        assert_eq!(seen.jobs.len(), MAX_JOBS);
        assert!(seen.jobs.contains_key(&JobId::parse("job1").unwrap()));
        for (i, gone) in ["job1", "job2", "job3"].iter().enumerate() {
            seen.note(&change_of(&format!("new{}", i + 1), top + 2 + i as i64));
            assert_eq!(seen.jobs.len(), MAX_JOBS);
            assert!(
                !seen.jobs.contains_key(&JobId::parse(gone).unwrap()),
                "{gone}"
            );
        }
        for kept in ["job0", "job4", "job6", "new0", "new3"] {
            assert!(
                seen.jobs.contains_key(&JobId::parse(kept).unwrap()),
                "{kept}"
            );
        }
        assert_eq!(seen.jobs_by_id.len(), seen.jobs.len());
        assert_eq!(seen.jobs_by_id.first().map(|(id, _)| *id), Some(14));
    }

    /// Daemon `a` records `count` state changes of job `job` (with other events of the job in
    /// between), as if this daemon were not listening; returns their ids, oldest first.
    async fn missed(store: &PgStore, job: &str, count: i64) -> Vec<i64> {
        store
            .batch(&format!(
                "INSERT INTO jobs (id, name, state, created_at, updated_at, submitted_by)
                 VALUES ('{job}', 'a.svg', 'PLOTTING', 't', 't', 'a') ON CONFLICT (id) DO NOTHING;
                 INSERT INTO job_events (job_id, type, from_state, to_state, reason, created_at)
                 SELECT '{job}', CASE WHEN n % 4 = 0 THEN 'recovery' ELSE 'state_change' END,
                        'PLOTTING', 'PAUSED', 'pipeline', 't'
                 FROM generate_series(1, {count} * 4 / 3) n"
            ))
            .await
            .unwrap();
        let (client, connection) = store.connect_dedicated().await.unwrap();
        tokio::spawn(connection);
        let rows = client
            .query(
                "SELECT id FROM job_events WHERE type = 'state_change' AND job_id = $1
                 ORDER BY id",
                &[&job],
            )
            .await
            .unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    }

    /// The state changes of daemon `a` published on the bus, by id.
    fn published(clients: &mut broadcast::Receiver<DaemonEvent>) -> Vec<i64> {
        let mut ids = Vec::new();
        loop {
            match clients.try_recv() {
                Ok(DaemonEvent::Remote(r)) if r.daemon == "a" => {
                    if let DaemonEvent::JobStateChanged(c) = r.event {
                        ids.push(c.event_id);
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::TryRecvError::Empty) => return ids,
                Err(e) => panic!("the clients fell behind: {e}"),
            }
        }
    }

    /// A catch-up publishes every state change missed, however many (beyond [`WINDOW`] and
    /// the 10,000 a catch-up used to stop at), oldest first, once each, a page at a time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_missed_change_is_caught_up_page_by_page() {
        let Some(url) = crate::testing::postgres::database_or_skip(
            "farm::catchup::tests::every_missed_change_is_caught_up_page_by_page",
        ) else {
            return;
        };
        let (store, _) = PgStore::connect(&url, 2).await.unwrap();
        // Room on the bus for all of them: the clients' view, read once at the end.
        let bus: EventSender = broadcast::channel(1 << 15).0;
        let (mut local, mut clients) = (bus.subscribe(), bus.subscribe());
        let mut seen = Seen::default();
        let first = catch_up(&store, "b", &bus, &mut local, &mut seen, 3).await;
        assert_eq!(first.unwrap(), CaughtUp::default(), "the first listen");
        // Pages of 3: a short last page, then an exact multiple (an empty last query).
        for count in [10, 12] {
            let want = missed(&store, "j1", count).await;
            let want = want[want.len() - count as usize..].to_vec();
            let done = catch_up(&store, "b", &bus, &mut local, &mut seen, 3).await;
            assert_eq!(done.unwrap().changes, want.len());
            assert_eq!(published(&mut clients), want);
            let again = catch_up(&store, "b", &bus, &mut local, &mut seen, 3).await;
            assert_eq!(again.unwrap().changes, 0, "once each");
        }
        // More than a catch-up used to publish, at the daemon's page size (read as they come:
        // the catch-up waits for its subscribers after each page).
        let count = WINDOW + 10_000 + 500;
        let want = missed(&store, "j2", count).await;
        let n = want.len();
        let reader = tokio::spawn(async move {
            let mut ids = Vec::new();
            while ids.len() < n {
                match clients.recv().await {
                    Ok(DaemonEvent::Remote(r)) if r.daemon == "a" => {
                        if let DaemonEvent::JobStateChanged(c) = r.event {
                            ids.push(c.event_id);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => panic!("the clients fell behind: {e}"),
                }
            }
            ids
        });
        let done = catch_up(&store, "b", &bus, &mut local, &mut seen, PAGE).await;
        assert_eq!(done.unwrap().changes, want.len());
        assert_eq!(reader.await.unwrap(), want);
    }

    /// On the daemon's bus (1,024 events) with a subscriber that reads slower than pages are
    /// published (the API's fan-out on busy cores), a catch-up of many pages waits for it
    /// after each page: it misses nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_catch_up_waits_for_a_slow_subscriber() {
        let Some(url) = crate::testing::postgres::database_or_skip(
            "farm::catchup::tests::a_catch_up_waits_for_a_slow_subscriber",
        ) else {
            return;
        };
        let (store, _) = PgStore::connect(&url, 2).await.unwrap();
        let bus = crate::events::bus();
        let (mut local, mut slow) = (bus.subscribe(), bus.subscribe());
        let mut seen = Seen::default();
        catch_up(&store, "b", &bus, &mut local, &mut seen, PAGE)
            .await
            .unwrap();
        let want = missed(&store, "slow", 6 * PAGE).await;
        let reader = tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                match slow.recv().await {
                    Ok(DaemonEvent::Remote(r)) => {
                        if let DaemonEvent::JobStateChanged(c) = r.event {
                            ids.push(c.event_id);
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Closed) => return Ok(ids),
                    Err(e) => return Err(e),
                }
                // About 50 events a millisecond: slower than a page is published.
                if ids.len() % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        });
        let done = catch_up(&store, "b", &bus, &mut local, &mut seen, PAGE)
            .await
            .unwrap();
        assert_eq!(done.changes, want.len());
        drop((bus, local));
        let got = reader
            .await
            .unwrap()
            .expect("the slow subscriber missed none");
        assert_eq!(got, want);
    }
}
