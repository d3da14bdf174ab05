//! The events of every daemon on every daemon's WebSocket clients, through PostgreSQL's
//! `LISTEN`/`NOTIFY` on the channel [`CHANNEL`].
//!
//! Each daemon runs two tasks (started by [`start`] when the store is PostgreSQL):
//!
//! - **out**: reads its own event bus and sends each job state change, job progress (at most
//!   every [`PROGRESS_INTERVAL`] per job, always a new layer and the end), job deletion and
//!   alert as one `NOTIFY` whose payload names the daemon (`{"daemon": …, "kind": …}`), kept
//!   under PostgreSQL's 8,000-byte limit ([`MAX_PAYLOAD`]: a state change's or an alert's
//!   metadata is dropped first, then long texts are cut). A plotter's status goes out when it
//!   changed (not its heartbeats), and all of them again every [`DEVICE_REFRESH`]; named
//!   plotters are unique across the farm (each daemon registers its plotters, schema 9).
//! - **in**: a connection of its own, outside the pool, `LISTEN`s; tokio-postgres hands the
//!   notifications over through that connection's message stream. Each payload of another
//!   daemon goes on this daemon's bus as [`DaemonEvent::Remote`]; its own come back too (every
//!   listening session gets every notification) and are dropped, so its clients never see an
//!   event twice. A remote event is never sent out again: no loops. When the connection is
//!   lost, the task logs a warning and reconnects (backing off up to [`MAX_BACKOFF`]), then
//!   publishes the state changes, the latest progress and the deletions its clients missed
//!   meanwhile, once each, from the database ([`super::catchup`]); and, each time it listens,
//!   it asks the others to send their plotters' statuses again ([`Wire::DeviceRefresh`]: they
//!   are in no table), of which its clients see only what they had not. Its session is named
//!   `plotty-relay:<daemon name>` (`application_name` in `pg_stat_activity`).
//!
//! The out task also records the latest progress of each running job in `job_progress` (at
//! most every [`PROGRESS_RECORD_INTERVAL`], and the last one before each state change) for
//! those catch-ups, through a writer task of its own, so that the notifications never wait
//! for those writes. The writer's queue holds at most one progress per job, the latest: while
//! the database does not answer, it does not grow, and a refused write is tried again (backing
//! off) unless a newer progress of the job replaced it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast, mpsc};
use tokio_postgres::AsyncMessage;

use super::catchup::{self, Seen};
use crate::events::{
    Alert, DaemonEvent, DeviceStatus, EventSender, JobProgress, RemoteEvent, Severity,
};
use crate::job::{JobId, JobState, Reason};
use crate::ledger::Ledger;
use crate::shutdown::Shutdown;
use crate::store::{JobStore, PgStore, StateChange};

/// The notification channel the daemons share.
pub const CHANNEL: &str = "plotty_events";

/// The largest payload sent, bytes (PostgreSQL refuses 8,000 and more).
pub const MAX_PAYLOAD: usize = 7_900;

/// A job's progress goes out at most this often (clients see at most 10 a second anyway).
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// A running job's progress is recorded for catch-ups at most this often.
pub const PROGRESS_RECORD_INTERVAL: Duration = Duration::from_secs(1);

/// A plotter's status goes out when it changed (its heartbeat and uptime aside), and every
/// plotter's last status goes out again this often, whatever `websocket.heartbeat_interval` is
/// (up to an hour), so that the other daemons drop the plotters of a daemon that went away
/// ([`DEVICE_STALE`]) and only those.
pub const DEVICE_REFRESH: Duration = Duration::from_secs(60);

/// A remote plotter not heard of for this long is no longer listed (its daemon went away).
pub const DEVICE_STALE: Duration = Duration::from_secs(150);

/// The longest wait before listening again after the connection was lost.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Texts (errors, alert messages) of a payload that was too long are cut to this many bytes.
const CUT_TEXT: usize = 1_000;

/// One notification's payload.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Payload {
    /// The daemon it comes from (`daemon.name`).
    pub daemon: String,
    /// What happened.
    #[serde(flatten)]
    pub event: Wire,
}

/// The events relayed, as sent (`kind` tells which).
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Wire {
    /// [`DaemonEvent::JobStateChanged`].
    StateChange {
        /// The event row's id.
        event_id: i64,
        /// The job.
        job_id: String,
        /// Its name.
        job_name: String,
        /// The state it left.
        from: Option<JobState>,
        /// The state it is in.
        to: JobState,
        /// Why.
        reason: Reason,
        /// The error, if any.
        error: Option<String>,
        /// The transition's metadata (`{"truncated": true}` when it did not fit).
        metadata: Value,
        /// When (RFC 3339).
        at: String,
    },
    /// [`DaemonEvent::JobProgress`].
    Progress {
        /// The job.
        job_id: String,
        /// The plotter drawing it (absent from daemons before schema 7).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device_id: Option<String>,
        /// Fraction done.
        progress: f64,
        /// Layer being drawn.
        current_layer: u32,
        /// Layers.
        total_layers: u32,
        /// Points drawn.
        points_plotted: u64,
        /// Points.
        total_points: u64,
        /// Drawn, mm.
        distance_mm: f64,
        /// Seconds left.
        eta_seconds: Option<f64>,
        /// Pen-down time, s.
        pen_down_time_seconds: f64,
        /// Plotting time, s.
        total_time_seconds: f64,
    },
    /// [`DaemonEvent::JobDeleted`].
    Deleted {
        /// The job.
        job_id: String,
    },
    /// [`DaemonEvent::DeviceStatus`]: one of the daemon's plotters (sent when it changed, see
    /// [`DEVICE_REFRESH`]), its fields next to `kind` (the plotter's name is unique across the
    /// farm when it has one; texts are cut when the payload was too long).
    DeviceStatus(DeviceStatus),
    /// A daemon that just (re)started listening asks the others to send their plotters'
    /// statuses again: it missed them while not listening (or had not started).
    DeviceRefresh,
    /// [`DaemonEvent::DeviceRemoved`]: one of the daemon's plotters is no longer listed under
    /// this id, the others drop it at once (daemons before this kind ignore it, as any kind
    /// they do not know, and age the plotter out).
    DeviceRemoved {
        /// The id that left.
        device_id: String,
    },
    /// [`DaemonEvent::Alert`].
    Alert {
        /// How serious.
        severity: Severity,
        /// Title.
        title: String,
        /// Message.
        message: String,
        /// Source.
        source: String,
        /// Details (`{"truncated": true}` when they did not fit).
        metadata: Value,
    },
}

/// Starts the two relay tasks on `shutdown`'s stage when `ledger` shares a PostgreSQL database
/// under a daemon name; does nothing on SQLite.
pub fn start(ledger: &Ledger, shutdown: &Shutdown) {
    let (JobStore::Postgres(store), Some((name, _))) = (ledger.store(), ledger.lease()) else {
        return;
    };
    let bus = ledger.bus();
    // The listener tells the out task when another daemon asks for the plotters' statuses.
    let refresh = Arc::new(Notify::new());
    let to_record = Arc::new(ProgressQueue::default());
    let out = OutRelay {
        store: store.clone(),
        name: name.to_owned(),
        sent: HashMap::new(),
        progress: ProgressRecorder::new(name, Arc::clone(&to_record)),
        devices: HashMap::new(),
        refresh: Arc::clone(&refresh),
    };
    let (writer, me) = (store.clone(), name.to_owned());
    let write = move |job: JobId, payload: String| {
        let (writer, me) = (writer.clone(), me.clone());
        async move {
            writer
                .put_progress(job.as_str(), &me, &payload)
                .await
                .map_err(|e| e.to_string())
        }
    };
    shutdown.spawn(write_progress(to_record, write, shutdown.clone()));
    let rx = bus.subscribe();
    let stop = shutdown.clone();
    shutdown.spawn(async move { out.run(rx, stop).await });
    let stop = shutdown.clone();
    let (store, name) = (store.clone(), name.to_owned());
    // Subscribed now, so that nothing this daemon publishes from here on is missed by `seen`.
    let local = bus.subscribe();
    shutdown.spawn(async move { listen(store, name, bus, local, refresh, stop).await });
}

/// The `NOTIFY` payload of `event` from `daemon`, within [`MAX_PAYLOAD`]; `None` for events
/// that are not relayed (remote ones, hook results) or cannot be made to fit.
pub fn encode(daemon: &str, event: &DaemonEvent) -> Option<String> {
    let wire = match event {
        DaemonEvent::JobStateChanged(c) => Wire::StateChange {
            event_id: c.event_id,
            job_id: c.job_id.to_string(),
            job_name: c.job_name.clone(),
            from: c.from,
            to: c.to,
            reason: c.reason,
            error: c.error.clone(),
            metadata: c.metadata.clone(),
            at: c.at.clone(),
        },
        DaemonEvent::JobProgress(p) => Wire::Progress {
            job_id: p.job_id.to_string(),
            device_id: p.device_id.clone(),
            progress: p.progress,
            current_layer: p.current_layer,
            total_layers: p.total_layers,
            points_plotted: p.points_plotted,
            total_points: p.total_points,
            distance_mm: p.distance_mm,
            eta_seconds: p.eta_seconds,
            pen_down_time_seconds: p.pen_down_time_seconds,
            total_time_seconds: p.total_time_seconds,
        },
        DaemonEvent::JobDeleted { job_id } => Wire::Deleted {
            job_id: job_id.to_string(),
        },
        DaemonEvent::Alert(a) => Wire::Alert {
            severity: a.severity,
            title: a.title.clone(),
            message: a.message.clone(),
            source: a.source.clone(),
            metadata: a.metadata.clone(),
        },
        // Not relayed: a port path names a file on this daemon's machine.
        DaemonEvent::DeviceStatus(d) => Wire::DeviceStatus(DeviceStatus {
            port: None,
            ..d.clone()
        }),
        DaemonEvent::DeviceRemoved { device_id } => Wire::DeviceRemoved {
            device_id: device_id.clone(),
        },
        DaemonEvent::Remote(_) | DaemonEvent::HooksExecuted { .. } => {
            return None;
        }
    };
    let mut payload = Payload {
        daemon: daemon.to_owned(),
        event: wire,
    };
    let text = serde_json::to_string(&payload).ok()?;
    if text.len() <= MAX_PAYLOAD {
        return Some(text);
    }
    // Too long: the details go first, then long texts are cut.
    match &mut payload.event {
        Wire::StateChange {
            metadata, error, ..
        } => {
            *metadata = json!({ "truncated": true });
            if let Some(e) = error {
                cut(e);
            }
        }
        Wire::Alert {
            metadata,
            message,
            title,
            ..
        } => {
            *metadata = json!({ "truncated": true });
            cut(message);
            cut(title);
        }
        Wire::DeviceStatus(d) => {
            if let Some(e) = &mut d.error_message {
                cut(e);
            }
            if let Some(n) = &mut d.notice {
                cut(n);
            }
        }
        Wire::Progress { .. }
        | Wire::Deleted { .. }
        | Wire::DeviceRefresh
        | Wire::DeviceRemoved { .. } => {}
    }
    let text = serde_json::to_string(&payload).ok()?;
    (text.len() <= MAX_PAYLOAD).then_some(text)
}

/// The event of a payload of another daemon; `None` for this daemon's own (`me`) and for a
/// payload that does not parse (logged: a newer daemon's event kind, say).
pub fn decode(me: &str, text: &str) -> Option<RemoteEvent> {
    let payload: Payload = match serde_json::from_str(text) {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(error = %e, "ignoring a notification that is not a plotty event");
            return None;
        }
    };
    if payload.daemon == me {
        return None;
    }
    let job = |id: &str| JobId::parse(id).ok();
    let event = match payload.event {
        Wire::StateChange {
            event_id,
            job_id,
            job_name,
            from,
            to,
            reason,
            error,
            metadata,
            at,
        } => DaemonEvent::JobStateChanged(StateChange {
            event_id,
            job_id: job(&job_id)?,
            job_name,
            from,
            to,
            reason,
            error,
            metadata,
            at,
        }),
        Wire::Progress {
            job_id,
            device_id,
            progress,
            current_layer,
            total_layers,
            points_plotted,
            total_points,
            distance_mm,
            eta_seconds,
            pen_down_time_seconds,
            total_time_seconds,
        } => DaemonEvent::JobProgress(JobProgress {
            job_id: job(&job_id)?,
            device_id,
            progress,
            current_layer,
            total_layers,
            points_plotted,
            total_points,
            distance_mm,
            eta_seconds,
            pen_down_time_seconds,
            total_time_seconds,
        }),
        Wire::Deleted { job_id } => DaemonEvent::JobDeleted {
            job_id: job(&job_id)?,
        },
        Wire::DeviceStatus(d) => DaemonEvent::DeviceStatus(DeviceStatus { port: None, ..d }),
        Wire::DeviceRemoved { device_id } => DaemonEvent::DeviceRemoved { device_id },
        // Not an event for the clients: see [`refresh_asked`].
        Wire::DeviceRefresh => return None,
        Wire::Alert {
            severity,
            title,
            message,
            source,
            metadata,
        } => DaemonEvent::Alert(Alert {
            severity,
            title,
            message,
            source,
            metadata,
        }),
    };
    Some(RemoteEvent {
        daemon: payload.daemon,
        event,
    })
}

/// The payload by which daemon `me` asks the others for their plotters' statuses again.
pub fn refresh_request(me: &str) -> String {
    // A unit variant and a string: nothing here can fail to serialise.
    serde_json::to_string(&Payload {
        daemon: me.to_owned(),
        event: Wire::DeviceRefresh,
    })
    .unwrap_or_default()
}

/// Whether `text` is another daemon's (not `me`'s) request for the plotters' statuses.
pub fn refresh_asked(me: &str, text: &str) -> bool {
    // Most notifications are not: no parse for them.
    text.contains("\"device_refresh\"")
        && serde_json::from_str::<Payload>(text)
            .is_ok_and(|p| p.event == Wire::DeviceRefresh && p.daemon != me)
}

/// Cuts `text` to [`CUT_TEXT`] bytes at a character boundary, marking the cut.
fn cut(text: &mut String) {
    if text.len() > CUT_TEXT {
        let mut end = CUT_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
}

/// The task sending this daemon's events.
struct OutRelay {
    store: PgStore,
    name: String,
    /// When each running job's progress and layer last went out.
    sent: HashMap<JobId, (Instant, u32)>,
    /// What goes to the progress writer.
    progress: ProgressRecorder,
    /// Each plotter's status as it last went out.
    devices: HashMap<String, DeviceStatus>,
    /// Another daemon asked for the plotters' statuses again.
    refresh: Arc<Notify>,
}

impl OutRelay {
    async fn run(mut self, mut rx: broadcast::Receiver<DaemonEvent>, stop: Shutdown) {
        let mut failing = false;
        let mut refresh =
            tokio::time::interval_at(tokio::time::Instant::now() + DEVICE_REFRESH, DEVICE_REFRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let event = tokio::select! {
                biased;
                e = rx.recv() => e,
                // The bus is read until the stage stops: the last changes of a shutdown go out.
                () = stop.stop() => return,
                () = self.refresh.notified() => {
                    self.resend_devices().await;
                    continue;
                }
                _ = refresh.tick() => {
                    self.resend_devices().await;
                    continue;
                }
            };
            let event = match event {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(
                        "the relay to the other daemons fell {n} events behind; they missed them"
                    );
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            self.progress.record(&event);
            if !self.due(&event) {
                continue;
            }
            let Some(payload) = encode(&self.name, &event) else {
                continue;
            };
            match self.store.notify(CHANNEL, &payload).await {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "cannot send this daemon's events to the other daemons; their clients miss them until the database answers");
                }
                Err(_) => {}
            }
        }
    }

    /// Sends each plotter's last status again (another daemon asked: it was not listening; or
    /// [`DEVICE_REFRESH`] passed).
    async fn resend_devices(&mut self) {
        for status in self.devices.values() {
            let Some(payload) = encode(&self.name, &DaemonEvent::DeviceStatus(status.clone()))
            else {
                continue;
            };
            if let Err(e) = self.store.notify(CHANNEL, &payload).await {
                tracing::debug!(error = %e, "cannot send the plotters' statuses again");
                return;
            }
        }
    }

    /// Whether `event` goes out now: progress at most every [`PROGRESS_INTERVAL`] per job
    /// (always a new layer and the end).
    fn due(&mut self, event: &DaemonEvent) -> bool {
        match event {
            DaemonEvent::JobProgress(p) => {
                let now = Instant::now();
                let last = self.sent.get(&p.job_id);
                let due = p.progress >= 1.0
                    || last.is_none_or(|(at, layer)| {
                        *layer != p.current_layer || now.duration_since(*at) >= PROGRESS_INTERVAL
                    });
                if due {
                    self.sent.insert(p.job_id.clone(), (now, p.current_layer));
                }
                due
            }
            DaemonEvent::JobStateChanged(c) => {
                if !c.to.holds_device() {
                    self.sent.remove(&c.job_id);
                }
                true
            }
            // Heartbeats alone stay here: the other daemons hear the plotter is still there
            // from the resend every [`DEVICE_REFRESH`].
            DaemonEvent::DeviceStatus(d) => {
                let due = self
                    .devices
                    .get(&d.device_id)
                    .is_none_or(|last| changed(last, d));
                if due {
                    self.devices.insert(d.device_id.clone(), d.clone());
                }
                due
            }
            // No longer resent; the other daemons drop it when they hear this.
            DaemonEvent::DeviceRemoved { device_id } => {
                self.devices.remove(device_id);
                true
            }
            _ => true,
        }
    }
}

/// Whether `new` tells more than `old` than that the plotter is still there: anything but its
/// heartbeat and uptime differs.
fn changed(old: &DeviceStatus, new: &DeviceStatus) -> bool {
    let alive = |d: &DeviceStatus| DeviceStatus {
        last_heartbeat: String::new(),
        uptime_seconds: None,
        ..d.clone()
    };
    alive(old) != alive(new)
}

/// The task listening for the other daemons' events (see the module doc); `local` is its
/// subscription to this daemon's bus (what reached the clients, for the catch-ups).
async fn listen(
    store: PgStore,
    me: String,
    bus: EventSender,
    mut local: broadcast::Receiver<DaemonEvent>,
    refresh: Arc<Notify>,
    stop: Shutdown,
) {
    let mut backoff = Duration::from_millis(100);
    let mut seen = Seen::default();
    loop {
        let lost = tokio::select! {
            biased;
            () = stop.stop() => return,
            lost = listen_once(&store, &me, &bus, &mut local, &mut seen, &refresh) => lost,
        };
        tracing::warn!(
            "the connection listening for the other daemons' events was lost ({lost}); \
             reconnecting in {backoff:?} (then catching up on what was missed)"
        );
        // The bus is still read while waiting: what reaches the clients meanwhile (this
        // daemon's own events) is not caught up again.
        let wait = tokio::time::sleep(backoff);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                biased;
                () = stop.stop() => return,
                () = &mut wait => break,
                e = local.recv() => match e {
                    Ok(e) => seen.note(&e),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Listens on one connection until it is lost (catching up first, see [`catchup`]); returns
/// why.
async fn listen_once(
    store: &PgStore,
    me: &str,
    bus: &EventSender,
    local: &mut broadcast::Receiver<DaemonEvent>,
    seen: &mut Seen,
    refresh: &Notify,
) -> String {
    let (client, mut connection) = match store
        .connect_dedicated_as(&format!("plotty-relay:{me}"))
        .await
    {
        Ok(c) => c,
        Err(e) => return e.to_string(),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    // The connection future delivers the notifications; it runs until the connection ends.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if tx.send(n).is_err() {
                        return "the listener stopped".to_owned();
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return e.to_string(),
                None => return "the server closed it".to_owned(),
            }
        }
    });
    if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
        driver.abort();
        return e.to_string();
    }
    tracing::info!("listening for the events of the other daemons on the database");
    // Listening already: what is notified from now on queues up while the history is read.
    match catchup::catch_up(store, me, bus, local, seen, catchup::PAGE).await {
        Ok(done) if done.changes + done.progress + done.deleted > 0 => tracing::info!(
            changes = done.changes,
            progress = done.progress,
            deleted = done.deleted,
            "caught up on the other daemons' events missed while not listening"
        ),
        Ok(_) => {}
        Err(e) => {
            driver.abort();
            return format!("catching up failed: {e}");
        }
    }
    // The plotters' statuses are not in the database: the other daemons send them again (the
    // ones the clients have already are not shown twice, see `Seen`).
    if let Err(e) = store.notify(CHANNEL, &refresh_request(me)).await {
        tracing::debug!(error = %e, "cannot ask the other daemons for their plotters' statuses");
    }
    loop {
        let n = tokio::select! {
            n = rx.recv() => n,
            e = local.recv() => {
                match e {
                    Ok(e) => seen.note(&e),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    // The daemon is going away: notifications are of no use any more.
                    Err(broadcast::error::RecvError::Closed) => break,
                }
                continue;
            }
        };
        let Some(n) = n else { break };
        if refresh_asked(me, n.payload()) {
            refresh.notify_one();
            continue;
        }
        if let Some(remote) = decode(me, n.payload()) {
            let event = DaemonEvent::Remote(Box::new(remote));
            // A change the catch-up published already (notified while it read the history), or
            // a progress no different from the last one.
            catchup::drain(local, seen);
            if seen.has(&event) {
                continue;
            }
            seen.note(&event);
            // No subscriber is not an error.
            let _ = bus.send(event);
        }
    }
    drop(client);
    driver
        .await
        .unwrap_or_else(|e| format!("its task ended abnormally: {e}"))
}

/// What the out task gives the progress writer: a running job's progress at most every
/// [`PROGRESS_RECORD_INTERVAL`] (see [`record`](Self::record)).
#[derive(Debug)]
struct ProgressRecorder {
    /// This daemon's name.
    name: String,
    /// Each running job's latest progress not recorded in `job_progress` yet, and when its
    /// progress was last recorded.
    latest: HashMap<JobId, (Option<JobProgress>, Option<Instant>)>,
    /// The progress writer's queue (closed when the out task ends).
    queue: ProgressSender,
}

impl ProgressRecorder {
    /// A recorder of daemon `name`'s progress into `queue`, which it closes when dropped.
    fn new(name: &str, queue: Arc<ProgressQueue>) -> Self {
        Self {
            name: name.to_owned(),
            latest: HashMap::new(),
            queue: ProgressSender(queue),
        }
    }

    /// Records a running job's progress in `job_progress` for the catch-ups of other daemons
    /// ([`super::catchup`]): at most every [`PROGRESS_RECORD_INTERVAL`], always at the end, and
    /// the latest one when the job's state changes (a pause keeps what it showed).
    fn record(&mut self, event: &DaemonEvent) {
        let (job, due) = match event {
            DaemonEvent::JobProgress(p) => {
                let entry = self.latest.entry(p.job_id.clone()).or_default();
                entry.0 = Some(p.clone());
                let due = p.progress >= 1.0
                    || entry
                        .1
                        .is_none_or(|at| at.elapsed() >= PROGRESS_RECORD_INTERVAL);
                (&p.job_id, due)
            }
            // Whatever is pending goes first: a paused job shows what it reached.
            DaemonEvent::JobStateChanged(c) => (&c.job_id, true),
            _ => return,
        };
        let pending = if due {
            self.latest.get_mut(job).and_then(|(pending, at)| {
                let p = pending.take()?;
                *at = Some(Instant::now());
                Some(p)
            })
        } else {
            None
        };
        if let DaemonEvent::JobStateChanged(c) = event
            && !c.to.holds_device()
        {
            self.latest.remove(job);
        }
        let Some(payload) = pending.and_then(|p| super::catchup::progress_payload(&self.name, &p))
        else {
            return;
        };
        self.queue.0.push(job.clone(), payload);
    }
}

/// The first wait before writing again progress the database refused; it doubles up to
/// [`PROGRESS_RETRY_MAX`] while the writes fail.
const PROGRESS_RETRY: Duration = Duration::from_millis(500);

/// The longest wait between two attempts of the progress writer.
const PROGRESS_RETRY_MAX: Duration = Duration::from_secs(10);

/// The progress writer: writes each job's latest progress from `queue` with `write`, one at a
/// time, when the job's turn comes (the last write of a job is its latest progress). A write
/// that fails is queued again unless a newer progress of the job waits, and the writer waits
/// (backing off up to [`PROGRESS_RETRY_MAX`]) before the next: a job's last progress before
/// it pauses or ends during a database outage is written once the database is back. Ends when
/// the out task does (the queue closes) once what it left is written, or, while the writes
/// fail, when `shutdown` stops the stage.
async fn write_progress<W, F>(queue: Arc<ProgressQueue>, write: W, shutdown: Shutdown)
where
    W: Fn(JobId, String) -> F,
    F: std::future::Future<Output = Result<(), String>>,
{
    let mut retry = PROGRESS_RETRY;
    while let Some((job, payload)) = queue.next().await {
        match write(job.clone(), payload.clone()).await {
            Ok(()) => retry = PROGRESS_RETRY,
            Err(e) => {
                tracing::debug!(job = %job, error = %e, "cannot record the job's progress for the other daemons; retrying");
                queue.retry(job, payload);
                tokio::select! {
                    () = shutdown.stop() => return,
                    () = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(PROGRESS_RETRY_MAX);
            }
        }
    }
}

/// The progress writer's queue: the latest progress payload not yet written of each job, in
/// the order the jobs came. A newer progress of a job waiting replaces its payload where it
/// stands, so that the queue holds at most one entry per job however long the writer waits
/// (the database is down, say).
#[derive(Debug, Default)]
struct ProgressQueue {
    pending: Mutex<PendingProgress>,
    /// Signalled on each push and on close.
    ready: Notify,
}

#[derive(Debug, Default)]
struct PendingProgress {
    /// The jobs waiting, first come first.
    order: VecDeque<JobId>,
    /// Their latest payloads.
    payloads: HashMap<JobId, String>,
    /// The out task ended: nothing more comes.
    closed: bool,
}

impl ProgressQueue {
    /// The queue, locked; nothing panics while it is held, so a poisoned lock is still sound.
    fn lock(&self) -> std::sync::MutexGuard<'_, PendingProgress> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `payload`, job `job`'s latest progress, in place of what the job had waiting.
    fn push(&self, job: JobId, payload: String) {
        let mut pending = self.lock();
        if pending.payloads.insert(job.clone(), payload).is_none() {
            pending.order.push_back(job);
        }
        drop(pending);
        self.ready.notify_one();
    }

    /// Queues again `payload`, job `job`'s progress that could not be written, unless a newer
    /// one of the job waits already.
    fn retry(&self, job: JobId, payload: String) {
        let mut pending = self.lock();
        if !pending.payloads.contains_key(&job) {
            pending.payloads.insert(job.clone(), payload);
            pending.order.push_back(job);
        }
        drop(pending);
        self.ready.notify_one();
    }

    /// The next job's latest progress, waiting for one; `None` once closed and empty.
    async fn next(&self) -> Option<(JobId, String)> {
        loop {
            {
                let mut pending = self.lock();
                while let Some(job) = pending.order.pop_front() {
                    if let Some(payload) = pending.payloads.remove(&job) {
                        return Some((job, payload));
                    }
                }
                if pending.closed {
                    return None;
                }
            }
            // A push or close between the unlock and here leaves a permit: no wake-up is lost.
            self.ready.notified().await;
        }
    }

    /// Jobs waiting.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().payloads.len()
    }

    /// Nothing more comes: [`next`](Self::next) ends once the queue is empty.
    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }
}

/// The out task's end of the [`ProgressQueue`]: closes it when dropped, however the task ends,
/// as a channel's sender would.
#[derive(Debug)]
struct ProgressSender(Arc<ProgressQueue>);

impl Drop for ProgressSender {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{DeviceState, MotorSupply};
    use crate::store::TransitionRequest;

    fn change(metadata: Value) -> DaemonEvent {
        DaemonEvent::JobStateChanged(StateChange {
            event_id: 7,
            job_id: JobId::parse("0a3f5c2e9b1d").unwrap(),
            job_name: "a.svg".into(),
            from: Some(JobState::Ready),
            to: JobState::Armed,
            reason: Reason::Pipeline,
            error: None,
            metadata,
            at: "2026-12-06T12:00:00Z".into(),
        })
    }

    #[test]
    fn events_round_trip_and_own_ones_are_dropped() {
        let event = change(json!({ "device_id": "simulator" }));
        let text = encode("a", &event).unwrap();
        let back = decode("b", &text).unwrap();
        assert_eq!((back.daemon.as_str(), back.event), ("a", event));
        assert!(decode("a", &text).is_none(), "its own events come back");
        assert!(decode("b", "not json").is_none());
        assert!(decode("b", r#"{"daemon":"a","kind":"unknown"}"#).is_none());
    }

    /// Issue 15: a job's progress crosses to the other daemons with the plotter drawing it.
    #[test]
    fn progress_is_relayed_with_its_plotter() {
        let progress = DaemonEvent::JobProgress(JobProgress {
            job_id: JobId::parse("0a3f5c2e9b1d").unwrap(),
            device_id: Some("left".into()),
            progress: 0.25,
            current_layer: 1,
            total_layers: 2,
            points_plotted: 3,
            total_points: 12,
            distance_mm: 4.5,
            eta_seconds: Some(9.0),
            pen_down_time_seconds: 1.0,
            total_time_seconds: 2.0,
        });
        let text = encode("a", &progress).unwrap();
        assert_eq!(decode("b", &text).unwrap().event, progress);
    }

    /// A plotter that left its id (`auto` found an AxiDraw) is relayed, so that the other
    /// daemons drop it at once; its kind is one a daemon that does not know it ignores.
    #[test]
    fn a_removed_plotter_is_relayed() {
        let removed = DaemonEvent::DeviceRemoved {
            device_id: "simulator".into(),
        };
        let text = encode("a", &removed).unwrap();
        assert_eq!(
            text,
            r#"{"daemon":"a","kind":"device_removed","device_id":"simulator"}"#
        );
        let back = decode("b", &text).unwrap();
        assert_eq!((back.daemon.as_str(), back.event), ("a", removed));
        // What an older daemon does with a kind it does not know: nothing.
        assert!(
            decode(
                "b",
                r#"{"daemon":"a","kind":"device_gone","device_id":"x"}"#
            )
            .is_none()
        );
    }

    /// A plotter's status as its device task reports it.
    fn status(device_id: &str, state: DeviceState, heartbeat: &str) -> DeviceStatus {
        DeviceStatus {
            tags: vec!["a3".into()],
            status: state,
            firmware_version: Some("EBBv13_and_above EB Firmware Version 3.0.2".into()),
            position_mm: Some((1.5, 2.0)),
            last_heartbeat: heartbeat.into(),
            uptime_seconds: Some(3.0),
            pen_servo: Some(16_000),
            ..DeviceStatus::sample(device_id)
        }
    }

    /// Issue 15: a plotter's status crosses to the other daemons whole, within the payload
    /// limit however long its texts.
    #[test]
    fn device_status_is_relayed_within_the_limit() {
        let mut d = status("left", DeviceState::Busy, "2026-12-06T12:00:00Z");
        d.current_job_id = Some(JobId::parse("0a3f5c2e9b1d").unwrap());
        let event = DaemonEvent::DeviceStatus(d.clone());
        let text = encode("a", &event).unwrap();
        let back = decode("b", &text).unwrap();
        assert_eq!((back.daemon.as_str(), back.event), ("a", event));
        assert!(decode("a", &text).is_none(), "its own status comes back");
        d.status = DeviceState::Error;
        d.error_message = Some("é".repeat(5_000));
        d.notice = Some("n".repeat(5_000));
        let text = encode("a", &DaemonEvent::DeviceStatus(d)).unwrap();
        assert!(text.len() <= MAX_PAYLOAD, "{}", text.len());
    }

    /// A plotter's status on the wire exactly as daemons of the previous version send it and
    /// read it (a farm may mix versions while it is upgraded): pinned here, with a payload of
    /// theirs decoded.
    #[test]
    fn device_status_wire_json_is_pinned() {
        let mut d = status("left", DeviceState::Busy, "2026-12-06T12:00:00Z");
        d.current_job_id = Some(JobId::parse("0a3f5c2e9b1d").unwrap());
        d.error_count = 2;
        d.error_message = Some("lost".into());
        d.notice = Some("simulated".into());
        d.motor_supply = Some(MotorSupply {
            reading: 812,
            low: false,
        });
        // The port it is on stays with this daemon (a path on its machine): not in the JSON.
        let on_port = DeviceStatus {
            port: Some("/dev/ttyACM1".into()),
            ..d.clone()
        };
        let text = encode("a", &DaemonEvent::DeviceStatus(on_port)).unwrap();
        let pinned = concat!(
            r#"{"daemon":"a","kind":"device_status","device_id":"left","#,
            r#""device_type":"simulator","tags":["a3"],"status":"busy","#,
            r#""firmware_version":"EBBv13_and_above EB Firmware Version 3.0.2","#,
            r#""pen_up":true,"position_mm":[1.5,2.0],"current_job_id":"0a3f5c2e9b1d","#,
            r#""error_count":2,"error_message":"lost","last_heartbeat":"2026-12-06T12:00:00Z","#,
            r#""uptime_seconds":3.0,"notice":"simulated","#,
            r#""motor_supply":{"reading":812,"low":false},"pen_servo":16000}"#
        );
        assert_eq!(text, pinned);
        let back = decode("b", pinned).unwrap();
        assert_eq!(
            (back.daemon.as_str(), back.event),
            ("a", DaemonEvent::DeviceStatus(d))
        );
        // Nothing known yet, and no `tags` (daemons before plotters had tags).
        let bare = concat!(
            r#"{"daemon":"a","kind":"device_status","device_id":"x","device_type":"simulator","#,
            r#""status":"offline","firmware_version":null,"pen_up":null,"position_mm":null,"#,
            r#""current_job_id":null,"error_count":0,"error_message":null,"#,
            r#""last_heartbeat":"t","uptime_seconds":null,"notice":null,"#,
            r#""motor_supply":null,"pen_servo":null}"#
        );
        let bare_status = DeviceStatus {
            tags: Vec::new(),
            firmware_version: None,
            pen_up: None,
            position_mm: None,
            uptime_seconds: None,
            pen_servo: None,
            ..status("x", DeviceState::Offline, "t")
        };
        assert_eq!(
            decode("b", bare).map(|r| r.event),
            Some(DaemonEvent::DeviceStatus(bare_status))
        );
        // A job id no job can have: the status is not shown at all.
        let bad = pinned.replace("0a3f5c2e9b1d", "../etc");
        assert_eq!(decode("b", &bad), None);
    }

    /// Only what a heartbeat cannot tell makes a status new.
    #[test]
    fn a_heartbeat_alone_is_no_change() {
        let a = status("left", DeviceState::Connected, "2026-12-06T12:00:00Z");
        let mut b = status("left", DeviceState::Connected, "2026-12-06T12:00:01Z");
        b.uptime_seconds = Some(4.0);
        assert!(!changed(&a, &b));
        b.pen_up = Some(false);
        assert!(changed(&a, &b));
    }

    /// Issue 15: a plotter's status on daemon a reaches daemon b's bus marked with a, once per
    /// change (a heartbeat alone does not go out), and never comes back to a's own bus; a
    /// status a sent before b listened reaches b when b starts listening (b asks for it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn device_status_reaches_the_other_daemon_once_per_change() {
        let Some(url) = crate::testing::postgres::database_or_skip(
            "farm::relay::tests::device_status_reaches_the_other_daemon",
        ) else {
            return;
        };
        let (store, _) = PgStore::connect(&url, 4).await.unwrap();
        let coordinator = crate::shutdown::Coordinator::new();
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (bus_a, bus_b) = (crate::events::bus(), crate::events::bus());
        let (mut on_a, mut on_b) = (bus_a.subscribe(), bus_b.subscribe());
        let relay = |bus: &EventSender, dir: &tempfile::TempDir, name: &str| {
            let ledger = Ledger::new(store.clone(), dir.path(), bus.clone(), None)
                .holding_leases(name.into(), Duration::from_secs(30));
            start(&ledger, &coordinator.handle(crate::shutdown::Stage::Hooks));
        };
        // The test's own listening session: it sees what a sends.
        let (observer, mut connection) = store.connect_dedicated().await.unwrap();
        let (tx, mut notes) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(m)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                if let AsyncMessage::Notification(n) = m {
                    let _ = tx.send(n.payload().to_owned());
                }
            }
        });
        observer
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .unwrap();
        // a alone: its plotter's first status goes out while nobody else listens.
        relay(&bus_a, &dir_a, "a");
        let first = status("left", DeviceState::Connected, "t0");
        let _ = bus_a.send(DaemonEvent::DeviceStatus(first.clone()));
        // …and a listens (it asks for the others' statuses once it does).
        let (mut status_sent, mut listening) = (false, false);
        tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(text) = notes.recv().await {
                status_sent |= text.contains("\"device_status\"");
                listening |= text == refresh_request("a");
                if status_sent && listening {
                    return;
                }
            }
        })
        .await
        .expect("a sends its plotter's status and listens");
        // b starts listening, asks, and gets it; then heartbeats (nothing) and a change.
        relay(&bus_b, &dir_b, "b");
        let mut sent = vec![first];
        let mut got = Vec::new();
        let mut collect = async |got: &mut Vec<(String, DeviceStatus)>, want: usize| {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            loop {
                let wait = if got.len() >= want {
                    Duration::from_millis(500)
                } else {
                    deadline.saturating_duration_since(tokio::time::Instant::now())
                };
                match tokio::time::timeout(wait, on_b.recv()).await {
                    Ok(Ok(DaemonEvent::Remote(r))) => {
                        if let DaemonEvent::DeviceStatus(d) = r.event {
                            got.push((r.daemon, d));
                        }
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => panic!("b's bus failed: {e}"),
                    Err(_) => return,
                }
            }
        };
        collect(&mut got, 1).await;
        for beat in ["t1", "t2", "t3"] {
            let _ = bus_a.send(DaemonEvent::DeviceStatus(status(
                "left",
                DeviceState::Connected,
                beat,
            )));
        }
        let mut busy = status("left", DeviceState::Busy, "t4");
        busy.pen_up = Some(false);
        sent.push(busy.clone());
        let _ = bus_a.send(DaemonEvent::DeviceStatus(busy));
        collect(&mut got, 2).await;
        let want: Vec<(String, DeviceStatus)> =
            sent.into_iter().map(|d| ("a".to_owned(), d)).collect();
        assert_eq!(got, want, "each change once, no heartbeat");
        // Nothing of a's came back to a's own bus.
        while let Ok(e) = on_a.try_recv() {
            assert!(
                !matches!(&e, DaemonEvent::Remote(r) if r.daemon == "a"),
                "echoed: {e:?}"
            );
        }
    }

    #[test]
    fn remote_events_are_never_sent() {
        let remote = DaemonEvent::Remote(Box::new(RemoteEvent {
            daemon: "x".into(),
            event: change(Value::Null),
        }));
        assert!(encode("a", &remote).is_none(), "no loops");
    }

    /// [`change`] as event `event_id` (a negative one: no row has it).
    fn dummy(event_id: i64) -> DaemonEvent {
        let DaemonEvent::JobStateChanged(mut c) = change(json!({ "n": 1 })) else {
            unreachable!("change() is a state change")
        };
        c.event_id = event_id;
        DaemonEvent::JobStateChanged(c)
    }

    /// Notifies [`dummy`]`(event_id)` as daemon `a` until `rx` (daemon `b`'s bus) gets it: the
    /// listener may not be listening yet, or be reconnecting. Each call needs its own id: an
    /// event already delivered is not delivered again.
    async fn relayed(
        store: &PgStore,
        rx: &mut broadcast::Receiver<DaemonEvent>,
        event_id: i64,
    ) -> RemoteEvent {
        let payload = encode("a", &dummy(event_id)).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            assert!(tokio::time::Instant::now() < deadline, "nothing relayed");
            store.notify(CHANNEL, &payload).await.unwrap();
            // That very change: a catch-up may publish other things meanwhile (the dummy job
            // is in no table, so it counts as deleted).
            let got = tokio::time::timeout(Duration::from_millis(200), async {
                loop {
                    if let Ok(DaemonEvent::Remote(r)) = rx.recv().await
                        && matches!(&r.event, DaemonEvent::JobStateChanged(c) if c.event_id == event_id)
                    {
                        return *r;
                    }
                }
            })
            .await;
            if let Ok(r) = got {
                return r;
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_listening_connection_is_reopened() {
        let Some(url) = crate::testing::postgres::database_or_skip(
            "farm::relay::tests::a_lost_listening_connection_is_reopened",
        ) else {
            return;
        };
        let (store, _) = PgStore::connect(&url, 2).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bus = crate::events::bus();
        let mut rx = bus.subscribe();
        let ledger = Ledger::new(store.clone(), dir.path(), bus, None)
            .holding_leases("b".into(), Duration::from_secs(30));
        let coordinator = crate::shutdown::Coordinator::new();
        start(&ledger, &coordinator.handle(crate::shutdown::Stage::Hooks));
        let first = relayed(&store, &mut rx, -1).await;
        assert_eq!((first.daemon.as_str(), first.event), ("a", dummy(-1)));
        // The server drops the listening session (a restart, a network cut).
        store
            .batch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()
                   AND datname = current_database()",
            )
            .await
            .unwrap();
        let again = relayed(&store, &mut rx, -2).await;
        assert_eq!(
            again.daemon, "a",
            "events flow again after the reconnection"
        );
        // b's own events (sent by its out task) never come back to its own bus.
        let own = encode("b", &change(Value::Null)).unwrap();
        store.notify(CHANNEL, &own).await.unwrap();
        let echo = tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                if let Ok(DaemonEvent::Remote(r)) = rx.recv().await
                    && r.daemon == "b"
                {
                    return r;
                }
            }
        })
        .await;
        assert!(echo.is_err(), "an own event came back: {echo:?}");
    }

    /// The state changes and progress of job `id` that reach `rx` until nothing more comes for
    /// `quiet` (after at least one, or `deadline`).
    async fn arrivals(
        rx: &mut broadcast::Receiver<DaemonEvent>,
        id: &JobId,
        want: usize,
        quiet: Duration,
    ) -> Vec<(String, DaemonEvent)> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let wait = if got.len() >= want {
                quiet
            } else {
                deadline.saturating_duration_since(tokio::time::Instant::now())
            };
            match tokio::time::timeout(wait, rx.recv()).await {
                Ok(Ok(DaemonEvent::Remote(r))) => {
                    let about = match &r.event {
                        DaemonEvent::JobStateChanged(c) => &c.job_id == id,
                        DaemonEvent::JobProgress(p) => &p.job_id == id,
                        DaemonEvent::JobDeleted { job_id } => job_id == id,
                        _ => false,
                    };
                    if about {
                        got.push((r.daemon, r.event));
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("the bus failed: {e}"),
                Err(_) => return got,
            }
        }
    }

    fn progress_of(id: &JobId, points: u64) -> JobProgress {
        JobProgress {
            job_id: id.clone(),
            device_id: Some("a1".into()),
            progress: points as f64 / 100.0,
            current_layer: 1,
            total_layers: 1,
            points_plotted: points,
            total_points: 100,
            distance_mm: 2.0,
            eta_seconds: Some(9.0),
            pen_down_time_seconds: 1.0,
            total_time_seconds: 3.0,
        }
    }

    /// Holds `job_progress` locked (ACCESS EXCLUSIVE) on a connection of its own until the
    /// returned client commits: a catch-up, which reads it first, waits meanwhile, so that a
    /// change made meanwhile is surely made before the catch-up reads the history.
    async fn lock_catch_ups(store: &PgStore) -> tokio_postgres::Client {
        let (client, connection) = store.connect_dedicated().await.unwrap();
        tokio::spawn(connection);
        client
            .batch_execute("BEGIN; LOCK TABLE job_progress IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        client
    }

    /// Ends the listening session of daemon `b` (found by its application name); returns how
    /// many were ended.
    async fn cut_listener(store: &PgStore) -> i64 {
        let (client, connection) = store.connect_dedicated().await.unwrap();
        tokio::spawn(connection);
        let row = client
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE application_name = 'plotty-relay:b' AND datname = current_database()",
                &[],
            )
            .await
            .unwrap();
        row.get(0)
    }

    /// Issue 15: what other daemons published while the listening connection was down reaches
    /// this daemon's clients once it is back, once each, without repeating what they had.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_missed_while_not_listening_are_caught_up_once() {
        let Some(url) = crate::testing::postgres::database_or_skip(
            "farm::relay::tests::events_missed_while_not_listening_are_caught_up_once",
        ) else {
            return;
        };
        // Daemon b, relaying; its clients' view is `rx`.
        let (store, _) = PgStore::connect(&url, 4).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bus = crate::events::bus();
        let mut rx = bus.subscribe();
        let ledger = Ledger::new(store.clone(), dir.path(), bus, None)
            .holding_leases("b".into(), Duration::from_secs(30));
        let coordinator = crate::shutdown::Coordinator::new();
        start(&ledger, &coordinator.handle(crate::shutdown::Stage::Hooks));
        relayed(&store, &mut rx, -1).await;
        // Daemon a, on a store handle of its own; its notifications are sent by hand below, as
        // its relay would, when they should reach b.
        let (store_a, _) = PgStore::connect(&url, 2).await.unwrap();
        let dir_a = tempfile::tempdir().unwrap();
        let a = Ledger::new(store_a.clone(), dir_a.path(), crate::events::bus(), None)
            .holding_leases("a".into(), Duration::from_secs(30));
        let notify = |change: &StateChange| {
            encode("a", &DaemonEvent::JobStateChanged(change.clone())).unwrap()
        };
        let job = a
            .submit(crate::store::NewJob {
                name: "farm.svg".into(),
                ..crate::store::NewJob::default()
            })
            .await
            .unwrap();
        let id = job.id.clone();
        let step = |event| TransitionRequest {
            job_id: id.clone(),
            event,
            reason: Reason::Pipeline,
            error: None,
            metadata: Value::Null,
        };
        let mut before = vec![a.events(id.as_str()).await.unwrap()[0].id];
        store
            .notify(
                CHANNEL,
                &notify(&StateChange {
                    event_id: before[0],
                    job_id: id.clone(),
                    job_name: "farm.svg".into(),
                    from: None,
                    to: JobState::New,
                    reason: Reason::Submitted,
                    error: None,
                    metadata: json!({}),
                    at: job.created_at.clone(),
                }),
            )
            .await
            .unwrap();
        use crate::job::JobEvent::{
            Analyzed, Arm, Enqueue, Optimized, Pause, Prepared, Resume, Start,
        };
        for event in [Enqueue, Analyzed, Optimized, Prepared, Arm, Start] {
            let change = a.apply(step(event)).await.unwrap();
            before.push(change.event_id);
            store.notify(CHANNEL, &notify(&change)).await.unwrap();
        }
        let seen = arrivals(&mut rx, &id, 7, Duration::from_millis(300)).await;
        assert_eq!(seen.len(), 7, "{seen:?}");
        // Its progress as a's relay records it (and notified, seen by b).
        let p1 = progress_of(&id, 10);
        store_a
            .put_progress(
                id.as_str(),
                "a",
                &super::catchup::progress_payload("a", &p1).unwrap(),
            )
            .await
            .unwrap();
        store
            .notify(
                CHANNEL,
                &encode("a", &DaemonEvent::JobProgress(p1.clone())).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            arrivals(&mut rx, &id, 1, Duration::from_millis(300))
                .await
                .len(),
            1
        );

        // The listening session is cut; meanwhile a pauses the job at 42 points, and its
        // notifications go out while b is not listening (they never reach it).
        let lock = lock_catch_ups(&store).await;
        assert_eq!(cut_listener(&store).await, 1, "b listens as plotty-relay:b");
        let p2 = progress_of(&id, 42);
        let paused = a.apply(step(Pause)).await.unwrap();
        // a's relay records the progress the pause left (here on the connection holding the
        // lock, which the catch-up waits for), then the lock goes.
        let payload = super::catchup::progress_payload("a", &p2).unwrap();
        lock.execute(
            "UPDATE job_progress SET payload = $2 WHERE job_id = $1",
            &[&id.as_str(), &payload],
        )
        .await
        .unwrap();
        lock.batch_execute("COMMIT").await.unwrap();
        let caught = arrivals(&mut rx, &id, 2, Duration::from_millis(600)).await;
        let changes: Vec<i64> = caught
            .iter()
            .filter_map(|(_, e)| match e {
                DaemonEvent::JobStateChanged(c) => Some(c.event_id),
                _ => None,
            })
            .collect();
        assert_eq!(
            changes,
            [paused.event_id],
            "the pause, once, and nothing seen before: {caught:?}"
        );
        let (from, DaemonEvent::JobStateChanged(c)) = &caught[0] else {
            panic!("{caught:?}");
        };
        assert_eq!(
            (from.as_str(), c.to, c.from),
            ("a", JobState::Paused, Some(JobState::Plotting))
        );
        let progress: Vec<&JobProgress> = caught
            .iter()
            .filter_map(|(_, e)| match e {
                DaemonEvent::JobProgress(p) => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(progress, [&p2], "the latest progress, once");

        // Cut again; this time the resume is notified after b listens again but before it has
        // read the history: it arrives both ways, and the clients see it once.
        let lock = lock_catch_ups(&store).await;
        assert_eq!(cut_listener(&store).await, 1);
        let waiting = async {
            let (client, connection) = store.connect_dedicated().await.unwrap();
            tokio::spawn(connection);
            loop {
                let row = client
                    .query_one(
                        "SELECT count(*) FROM pg_locks
                         WHERE relation = 'job_progress'::regclass AND NOT granted
                           AND database = (SELECT oid FROM pg_database
                                           WHERE datname = current_database())",
                        &[],
                    )
                    .await
                    .unwrap();
                if row.get::<_, i64>(0) == 1 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), waiting)
            .await
            .expect("b listens again and waits to read the history");
        let resumed = a.apply(step(Resume)).await.unwrap();
        store.notify(CHANNEL, &notify(&resumed)).await.unwrap();
        lock.batch_execute("COMMIT").await.unwrap();
        let caught = arrivals(&mut rx, &id, 1, Duration::from_millis(600)).await;
        let changes: Vec<i64> = caught
            .iter()
            .filter_map(|(_, e)| match e {
                DaemonEvent::JobStateChanged(c) => Some(c.event_id),
                _ => None,
            })
            .collect();
        assert_eq!(changes, [resumed.event_id], "{caught:?}");
        assert!(
            !caught
                .iter()
                .any(|(_, e)| matches!(e, DaemonEvent::JobProgress(_))),
            "the progress was seen already: {caught:?}"
        );

        // Cut again: the job is aborted and deleted meanwhile. Its events go with it; the
        // clients are told it is gone, once.
        let lock = lock_catch_ups(&store).await;
        assert_eq!(cut_listener(&store).await, 1);
        a.apply(TransitionRequest {
            reason: Reason::User,
            ..step(crate::job::JobEvent::Abort)
        })
        .await
        .unwrap();
        // Deleted on the connection holding the lock: the deletion reaches `job_progress`
        // (ON DELETE CASCADE), which another connection would wait for.
        lock.execute("DELETE FROM jobs WHERE id = $1", &[&id.as_str()])
            .await
            .unwrap();
        lock.batch_execute("COMMIT").await.unwrap();
        let caught = arrivals(&mut rx, &id, 1, Duration::from_millis(600)).await;
        assert!(
            matches!(
                caught.as_slice(),
                [(daemon, DaemonEvent::JobDeleted { job_id })] if daemon == "a" && job_id == &id
            ),
            "{caught:?}"
        );
    }

    /// The out task records a running job's progress for the other daemons' catch-ups: the
    /// first at once, then at most every second, and the latest when the job's state changes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_latest_progress_is_recorded_for_catch_ups() {
        let Some(url) = crate::testing::postgres::database_or_skip(
            "farm::relay::tests::the_latest_progress_is_recorded_for_catch_ups",
        ) else {
            return;
        };
        let (store, _) = PgStore::connect(&url, 2).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bus = crate::events::bus();
        let ledger = Ledger::new(store.clone(), dir.path(), bus.clone(), None)
            .holding_leases("b".into(), Duration::from_secs(30));
        let coordinator = crate::shutdown::Coordinator::new();
        start(&ledger, &coordinator.handle(crate::shutdown::Stage::Hooks));
        let job = ledger
            .submit(crate::store::NewJob {
                name: "p.svg".into(),
                ..crate::store::NewJob::default()
            })
            .await
            .unwrap();
        let (client, connection) = store.connect_dedicated().await.unwrap();
        tokio::spawn(connection);
        let recorded = || async {
            let row = client
                .query_opt(
                    "SELECT payload, daemon FROM job_progress WHERE job_id = $1",
                    &[&job.id.as_str()],
                )
                .await
                .unwrap()?;
            let (payload, daemon): (String, String) = (row.get(0), row.get(1));
            let DaemonEvent::JobProgress(p) = decode("other", &payload)?.event else {
                return None;
            };
            Some((daemon, p.points_plotted))
        };
        let until = |points: u64| async move {
            for _ in 0..500 {
                if recorded().await.is_some_and(|(_, p)| p == points) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("progress {points} not recorded: {:?}", recorded().await);
        };
        let _ = bus.send(DaemonEvent::JobProgress(progress_of(&job.id, 10)));
        until(10).await;
        assert_eq!(recorded().await, Some(("b".to_owned(), 10)));
        // Within the second: sent to the others, not recorded yet.
        let _ = bus.send(DaemonEvent::JobProgress(progress_of(&job.id, 20)));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(recorded().await, Some(("b".to_owned(), 10)));
        // A state change records what the job reached.
        let DaemonEvent::JobStateChanged(mut paused) = change(json!({})) else {
            unreachable!("change() is a state change")
        };
        paused.job_id = job.id.clone();
        paused.to = JobState::Paused;
        let _ = bus.send(DaemonEvent::JobStateChanged(paused));
        until(20).await;
    }

    /// While the progress writer cannot write (the database is down), what waits for it stays
    /// one progress per job however long, each job's latest; and a job's progress that comes
    /// while its last one is being written is written after it.
    #[tokio::test]
    async fn progress_waiting_to_be_recorded_is_the_latest_of_each_job() {
        let queue = Arc::new(ProgressQueue::default());
        let mut recorder = ProgressRecorder::new("b", Arc::clone(&queue));
        let jobs: Vec<JobId> = ["j0", "j1", "j2"]
            .iter()
            .map(|j| JobId::parse(j).unwrap())
            .collect();
        let at = |job: &JobId, points: u64| JobProgress {
            progress: points as f64 / 10_000.0,
            ..progress_of(job, points)
        };
        // An hour of plotting, a progress a second for each job, none of it written.
        for points in 1..=3_600 {
            for job in &jobs {
                // A second has passed since the job's progress was last recorded.
                if let Some((_, Some(last))) = recorder.latest.get_mut(job) {
                    *last = last.checked_sub(PROGRESS_RECORD_INTERVAL).unwrap();
                }
                recorder.record(&DaemonEvent::JobProgress(at(job, points)));
                assert!(queue.len() <= jobs.len(), "{} waiting", queue.len());
            }
        }
        let written = |(job, payload): (JobId, String)| {
            let Some(DaemonEvent::JobProgress(p)) = decode("other", &payload).map(|r| r.event)
            else {
                panic!("not a progress: {payload}");
            };
            assert_eq!(p.job_id, job);
            (job, p.points_plotted)
        };
        // The writer takes j0's; j0 moves on meanwhile and waits behind the others.
        assert_eq!(
            queue.next().await.map(written),
            Some((jobs[0].clone(), 3_600))
        );
        recorder.latest.get_mut(&jobs[0]).unwrap().1 = None;
        recorder.record(&DaemonEvent::JobProgress(at(&jobs[0], 3_601)));
        drop(recorder);
        let mut rest = Vec::new();
        while let Some(w) = queue.next().await {
            rest.push(written(w));
        }
        assert_eq!(
            rest,
            [
                (jobs[1].clone(), 3_600),
                (jobs[2].clone(), 3_600),
                (jobs[0].clone(), 3_601)
            ],
            "the rest, in turn, then the queue closes"
        );
    }

    /// While the database refuses the writes, a job's progress is not lost: it is written
    /// once the database is back, unless a newer one of the job replaced it; the writer backs
    /// off meanwhile and a shutdown ends it. Simulated time.
    #[tokio::test(start_paused = true)]
    async fn progress_refused_by_the_database_is_written_once_it_is_back() {
        let queue = Arc::new(ProgressQueue::default());
        let (j0, j1) = (JobId::parse("j0").unwrap(), JobId::parse("j1").unwrap());
        let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let written = Arc::new(Mutex::new(Vec::new()));
        let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let write = {
            let (down, written, attempts) = (
                Arc::clone(&down),
                Arc::clone(&written),
                Arc::clone(&attempts),
            );
            move |job: JobId, payload: String| {
                let (down, written, attempts) = (
                    Arc::clone(&down),
                    Arc::clone(&written),
                    Arc::clone(&attempts),
                );
                async move {
                    attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if down.load(std::sync::atomic::Ordering::SeqCst) {
                        return Err("connection refused".to_owned());
                    }
                    written.lock().unwrap().push((job.to_string(), payload));
                    Ok(())
                }
            }
        };
        let coordinator = crate::shutdown::Coordinator::new();
        let shutdown = coordinator.handle(crate::shutdown::Stage::Hooks);
        let writer = tokio::spawn(write_progress(Arc::clone(&queue), write, shutdown));
        queue.push(j0.clone(), "j0 paused at 10".into());
        queue.push(j1.clone(), "j1 at 5".into());
        tokio::time::sleep(Duration::from_secs(60)).await;
        // A minute of outage: attempts backed off (every 10 s at most), nothing dropped.
        let tried = attempts.load(std::sync::atomic::Ordering::SeqCst);
        assert!((4..=20).contains(&tried), "{tried} attempts");
        assert_eq!(queue.len(), 2, "both still wait");
        // j1 moved on meanwhile: its newer progress is the one written.
        queue.push(j1.clone(), "j1 at 6".into());
        down.store(false, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(20)).await;
        let mut got = written.lock().unwrap().clone();
        got.sort();
        assert_eq!(
            got,
            [
                ("j0".to_owned(), "j0 paused at 10".to_owned()),
                ("j1".to_owned(), "j1 at 6".to_owned())
            ]
        );
        // Down again at shutdown: the retries end with the stage.
        down.store(true, std::sync::atomic::Ordering::SeqCst);
        queue.push(j0, "j0 at 11".into());
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            coordinator
                .stop_stage(crate::shutdown::Stage::Hooks, Duration::from_secs(1))
                .await
        );
        writer.await.unwrap();
    }

    #[test]
    fn payloads_stay_under_the_limit() {
        let warnings: Vec<String> = (0..500).map(|i| format!("warning number {i}")).collect();
        let big = change(json!({ "warnings": warnings }));
        let text = encode("a", &big).unwrap();
        assert!(text.len() <= MAX_PAYLOAD, "{}", text.len());
        let back = decode("b", &text).unwrap();
        let DaemonEvent::JobStateChanged(c) = back.event else {
            panic!("a state change");
        };
        assert_eq!(
            (c.to, c.metadata),
            (JobState::Armed, json!({ "truncated": true }))
        );
        let alert = DaemonEvent::Alert(Alert {
            severity: Severity::Error,
            title: "t".into(),
            message: "é".repeat(20_000),
            source: "device".into(),
            metadata: Value::Null,
        });
        let text = encode("a", &alert).unwrap();
        assert!(text.len() <= MAX_PAYLOAD, "{}", text.len());
    }
}
