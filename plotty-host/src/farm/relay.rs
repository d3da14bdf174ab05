//! The events of every daemon on every daemon's WebSocket clients, through PostgreSQL's
//! `LISTEN`/`NOTIFY` on the channel [`CHANNEL`].
//!
//! Each daemon runs two tasks (started by [`start`] when the store is PostgreSQL):
//!
//! - **out**: reads its own event bus and sends each job state change, job progress (at most
//!   every [`PROGRESS_INTERVAL`] per job, always a new layer and the end), job deletion and
//!   alert as one `NOTIFY` whose payload names the daemon (`{"daemon": …, "kind": …}`), kept
//!   under PostgreSQL's 8,000-byte limit ([`MAX_PAYLOAD`]: a state change's or an alert's
//!   metadata is dropped first, then long texts are cut). Device status is not relayed: device
//!   ids are not unique across daemons yet.
//! - **in**: a connection of its own, outside the pool, `LISTEN`s; tokio-postgres hands the
//!   notifications over through that connection's message stream. Each payload of another
//!   daemon goes on this daemon's bus as [`DaemonEvent::Remote`]; its own come back too (every
//!   listening session gets every notification) and are dropped, so its clients never see an
//!   event twice. A remote event is never sent out again: no loops. When the connection is
//!   lost, the task logs a warning and reconnects (backing off up to [`MAX_BACKOFF`]); events
//!   sent meanwhile are missed (a client that reconnects gets a snapshot of the jobs).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_postgres::AsyncMessage;

use crate::events::{Alert, DaemonEvent, EventSender, JobProgress, RemoteEvent, Severity};
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
    let out = OutRelay {
        store: store.clone(),
        name: name.to_owned(),
        sent: HashMap::new(),
    };
    let rx = bus.subscribe();
    let stop = shutdown.clone();
    shutdown.spawn(async move { out.run(rx, stop).await });
    let stop = shutdown.clone();
    let (store, name) = (store.clone(), name.to_owned());
    shutdown.spawn(async move { listen(store, name, bus, stop).await });
}

/// The `NOTIFY` payload of `event` from `daemon`, within [`MAX_PAYLOAD`]; `None` for events
/// that are not relayed (remote ones, device status, hook results) or cannot be made to fit.
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
        DaemonEvent::Remote(_)
        | DaemonEvent::DeviceStatus(_)
        | DaemonEvent::HooksExecuted { .. } => {
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
        Wire::Progress { .. } | Wire::Deleted { .. } => {}
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
}

impl OutRelay {
    async fn run(mut self, mut rx: broadcast::Receiver<DaemonEvent>, stop: Shutdown) {
        let mut failing = false;
        loop {
            let event = tokio::select! {
                biased;
                e = rx.recv() => e,
                // The bus is read until the stage stops: the last changes of a shutdown go out.
                () = stop.stop() => return,
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
            _ => true,
        }
    }
}

/// The task listening for the other daemons' events (see the module doc).
async fn listen(store: PgStore, me: String, bus: EventSender, stop: Shutdown) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let lost = tokio::select! {
            biased;
            () = stop.stop() => return,
            lost = listen_once(&store, &me, &bus) => lost,
        };
        tracing::warn!(
            "the connection listening for the other daemons' events was lost ({lost}); \
             reconnecting in {backoff:?} (events sent meanwhile are missed)"
        );
        tokio::select! {
            biased;
            () = stop.stop() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Listens on one connection until it is lost; returns why.
async fn listen_once(store: &PgStore, me: &str, bus: &EventSender) -> String {
    let (client, mut connection) = match store.connect_dedicated().await {
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
    while let Some(n) = rx.recv().await {
        if let Some(remote) = decode(me, n.payload()) {
            // No subscriber is not an error.
            let _ = bus.send(DaemonEvent::Remote(Box::new(remote)));
        }
    }
    drop(client);
    driver
        .await
        .unwrap_or_else(|e| format!("its task ended abnormally: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn remote_and_device_events_are_never_sent() {
        let remote = DaemonEvent::Remote(Box::new(RemoteEvent {
            daemon: "x".into(),
            event: change(Value::Null),
        }));
        assert!(encode("a", &remote).is_none(), "no loops");
    }

    /// Notifies `change` as daemon `a` until `rx` (daemon `b`'s bus) gets it: the listener may
    /// not be listening yet, or be reconnecting.
    async fn relayed(store: &PgStore, rx: &mut broadcast::Receiver<DaemonEvent>) -> RemoteEvent {
        let payload = encode("a", &change(json!({ "n": 1 }))).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            assert!(tokio::time::Instant::now() < deadline, "nothing relayed");
            store.notify(CHANNEL, &payload).await.unwrap();
            let got = tokio::time::timeout(Duration::from_millis(200), async {
                loop {
                    if let Ok(DaemonEvent::Remote(r)) = rx.recv().await {
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
        let first = relayed(&store, &mut rx).await;
        assert_eq!(
            (first.daemon.as_str(), first.event),
            ("a", change(json!({ "n": 1 })))
        );
        // The server drops the listening session (a restart, a network cut).
        store
            .batch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
            )
            .await
            .unwrap();
        let again = relayed(&store, &mut rx).await;
        assert_eq!(
            again.daemon, "a",
            "events flow again after the reconnection"
        );
        // b's own events (sent by its out task) never come back to its own bus.
        let own = encode("b", &change(Value::Null)).unwrap();
        store.notify(CHANNEL, &own).await.unwrap();
        let echo = tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                if let Ok(DaemonEvent::Remote(r)) = rx.recv().await {
                    return r;
                }
            }
        })
        .await;
        assert!(echo.is_err(), "an own event came back: {echo:?}");
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
