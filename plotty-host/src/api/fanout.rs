//! Fan-out: daemon events in, wire messages out to every client.
//!
//! One task reads the event bus, turns each event into its wire message, encodes it once and
//! publishes the bytes on a broadcast channel that every client task reads (a clone of the bytes is
//! a reference count). Sending never waits for a client: each client has its own read position in
//! the channel's bounded buffer, and one that falls more than [`super::ApiLimits::client_queue`]
//! messages behind is told how many it lost (`LAGGED`) by its own task. Progress goes through the
//! [`Throttle`] first. The last progress of each running job, the last status of each device and
//! the last [`ALERT_BACKLOG`] alerts (with when they were raised) are kept for the snapshots sent
//! after a subscribe: a page opened after an alert still shows it.
//!
//! With several daemons on one PostgreSQL database, every event message carries `daemon`: this
//! daemon's name for its own events, the other daemon's for those relayed from it
//! ([`DaemonEvent::Remote`], see [`crate::farm::relay`]). The other daemons' plotters are kept
//! apart from this daemon's ([`Hub::remote_devices`]): listed with their daemon, read-only.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use super::protocol::{self, Channel, ServerMessage};
use super::throttle::Throttle;
use crate::events::{Alert, DaemonEvent, DeviceStatus, JobProgress, RemoteEvent};
use crate::farm::relay::DEVICE_STALE;
use crate::job::JobId;

/// Alerts kept for the snapshot of the `system` channel (the oldest goes first).
pub(super) const ALERT_BACKLOG: usize = 50;

/// One encoded broadcast message and where it goes.
#[derive(Debug)]
pub(super) struct Outgoing {
    /// Its channel.
    pub(super) channel: Channel,
    /// The job it is about (for `job_id` filters).
    pub(super) job_id: Option<JobId>,
    /// The encoded message.
    pub(super) text: Utf8Bytes,
}

/// The broadcast channel and the snapshot cache.
pub(super) struct Hub {
    tx: broadcast::Sender<Arc<Outgoing>>,
    cache: Mutex<Cache>,
    /// This daemon's name when several share the database (marks its own events).
    name: Option<String>,
}

#[derive(Default)]
struct Cache {
    progress: HashMap<JobId, JobProgress>,
    devices: BTreeMap<String, DeviceStatus>,
    /// The latest alerts and their timestamps, oldest first.
    alerts: VecDeque<(String, Alert)>,
    /// The daemon each running job's progress comes from (several daemons on one database), for
    /// the reports the throttle holds back.
    origins: HashMap<JobId, String>,
    /// The other daemons' plotters (relayed), by daemon and device id (two daemons' unnamed
    /// plotters may share an id): their daemon, their last status and when it arrived.
    remote_devices: BTreeMap<(String, String), RemoteDevice>,
}

/// A plotter of another daemon of the farm, as last relayed.
#[derive(Clone, Debug)]
pub(super) struct RemoteDevice {
    /// Its daemon.
    pub(super) daemon: String,
    /// Its last status.
    pub(super) status: DeviceStatus,
    /// When that arrived.
    at: Instant,
}

impl Hub {
    /// A hub whose clients may fall `capacity` messages behind.
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            tx: broadcast::channel(capacity.max(1)).0,
            cache: Mutex::new(Cache::default()),
            name: None,
        }
    }

    /// The same hub, marking the events of this daemon with `name` (several daemons share the
    /// database).
    pub(super) fn named(mut self, name: Option<String>) -> Self {
        self.name = name;
        self
    }

    /// This daemon's name when several share the database.
    pub(super) fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// A new client's feed.
    pub(super) fn subscribe(&self) -> broadcast::Receiver<Arc<Outgoing>> {
        self.tx.subscribe()
    }

    /// Encodes `message` once and sends it to every client.
    pub(super) fn publish(&self, message: &ServerMessage) {
        self.publish_at(message, &crate::timestamp::now(), self.name.as_deref());
    }

    /// [`Self::publish`] with the message's `timestamp` and the daemon it comes from.
    fn publish_at(&self, message: &ServerMessage, timestamp: &str, daemon: Option<&str>) {
        let Some((channel, job_id)) = message.route() else {
            return;
        };
        let out = Outgoing {
            channel,
            job_id: job_id.cloned(),
            text: protocol::encode_from(message, timestamp, daemon),
        };
        // No client connected is not an error.
        let _ = self.tx.send(Arc::new(out));
    }

    /// The last progress sent for `job`.
    pub(super) fn progress(&self, job: &JobId) -> Option<JobProgress> {
        self.cache().progress.get(job).cloned()
    }

    /// The latest alerts (at most [`ALERT_BACKLOG`]) with when they were raised, oldest first.
    pub(super) fn alerts(&self) -> Vec<(String, Alert)> {
        self.cache().alerts.iter().cloned().collect()
    }

    /// The last status of every device that reported one.
    pub(super) fn devices(&self) -> Vec<DeviceStatus> {
        self.cache().devices.values().cloned().collect()
    }

    /// The other daemons' plotters heard of within [`DEVICE_STALE`] (an older one's daemon went
    /// away), by daemon and device id.
    pub(super) fn remote_devices(&self) -> Vec<RemoteDevice> {
        let now = Instant::now();
        self.cache()
            .remote_devices
            .values()
            .filter(|d| now.duration_since(d.at) < DEVICE_STALE)
            .cloned()
            .collect()
    }

    /// The daemon of the plotter `id` when it is another daemon's (letter case aside, as jobs
    /// name plotters) and not one of this daemon's.
    pub(super) fn remote_daemon_of(&self, id: &str) -> Option<String> {
        let cache = self.cache();
        if cache.devices.keys().any(|k| k.eq_ignore_ascii_case(id)) {
            return None;
        }
        let now = Instant::now();
        cache
            .remote_devices
            .values()
            .find(|d| {
                d.status.device_id.eq_ignore_ascii_case(id)
                    && now.duration_since(d.at) < DEVICE_STALE
            })
            .map(|d| d.daemon.clone())
    }

    /// Forgets the other daemons' plotters not heard of within [`DEVICE_STALE`] at `now` (their
    /// daemon went away: a live one resends its plotters every minute) and tells the clients,
    /// whose lists (the web UI's) would otherwise keep them until reloaded.
    fn sweep_stale(&self, now: Instant) {
        let gone: Vec<(String, String)> = {
            let mut cache = self.cache();
            let stale: Vec<(String, String)> = cache
                .remote_devices
                .iter()
                .filter(|(_, d)| now.saturating_duration_since(d.at) >= DEVICE_STALE)
                .map(|(key, _)| key.clone())
                .collect();
            for key in &stale {
                cache.remote_devices.remove(key);
            }
            stale
        };
        for (daemon, device_id) in gone {
            tracing::info!(%daemon, device = %device_id, "another daemon's plotter went silent: no longer listed");
            self.publish_at(
                &ServerMessage::DeviceRemoved {
                    device_id,
                    remote: true,
                },
                &crate::timestamp::now(),
                Some(&daemon),
            );
        }
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        // Nothing panics while holding the lock; a poisoned cache is still a valid cache.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn send_progress(&self, p: JobProgress, from: Option<&str>) {
        self.publish_at(
            &ServerMessage::progress(&p, false),
            &crate::timestamp::now(),
            from,
        );
        self.cache().progress.insert(p.job_id.clone(), p);
    }

    /// Sends `event` to the clients, as an event of the daemon `from` (this one when `None`).
    fn dispatch(&self, event: DaemonEvent, throttle: &mut Throttle, from: Option<&str>) {
        let from = from.or(self.name.as_deref());
        match event {
            DaemonEvent::Remote(remote) => {
                let RemoteEvent { daemon, event } = *remote;
                // A relayed event is never itself `Remote`; refuse to recurse all the same.
                if !matches!(event, DaemonEvent::Remote(_)) {
                    self.dispatch(event, throttle, Some(&daemon));
                }
            }
            DaemonEvent::JobStateChanged(c) => {
                if let Some(p) = throttle.flush(&c.job_id) {
                    self.send_progress(p, from);
                }
                self.publish_at(
                    &ServerMessage::state_change(&c),
                    &crate::timestamp::now(),
                    from,
                );
                if c.to.is_terminal() {
                    throttle.forget(&c.job_id);
                    let mut cache = self.cache();
                    cache.progress.remove(&c.job_id);
                    cache.origins.remove(&c.job_id);
                }
            }
            DaemonEvent::JobProgress(p) => {
                if let Some(from) = from {
                    self.cache()
                        .origins
                        .insert(p.job_id.clone(), from.to_owned());
                }
                for q in throttle.offer(p, Instant::now()) {
                    self.send_progress(q, from);
                }
            }
            DaemonEvent::DeviceStatus(d) => {
                match from.filter(|f| Some(*f) != self.name.as_deref()) {
                    // Another daemon's plotter: listed with its daemon, never as this one's.
                    Some(daemon) => {
                        self.publish_at(
                            &ServerMessage::remote_device(&d),
                            &crate::timestamp::now(),
                            Some(daemon),
                        );
                        let remote = RemoteDevice {
                            daemon: daemon.to_owned(),
                            status: d.clone(),
                            at: Instant::now(),
                        };
                        self.cache()
                            .remote_devices
                            .insert((daemon.to_owned(), d.device_id.clone()), remote);
                    }
                    None => {
                        self.publish_at(&ServerMessage::device(&d), &crate::timestamp::now(), from);
                        self.cache().devices.insert(d.device_id.clone(), d);
                    }
                }
            }
            DaemonEvent::Alert(a) => {
                let at = crate::timestamp::now();
                self.publish_at(&ServerMessage::alert(&a, false), &at, from);
                let mut cache = self.cache();
                if cache.alerts.len() == ALERT_BACKLOG {
                    cache.alerts.pop_front();
                }
                cache.alerts.push_back((at, a));
            }
            DaemonEvent::JobDeleted { job_id } => {
                throttle.forget(&job_id);
                let mut cache = self.cache();
                cache.progress.remove(&job_id);
                cache.origins.remove(&job_id);
                drop(cache);
                self.publish_at(
                    &ServerMessage::JobDeleted { job_id },
                    &crate::timestamp::now(),
                    from,
                );
            }
            // The snapshots stop listing it, and the clients drop it now (another daemon's
            // would otherwise stay listed until stale).
            DaemonEvent::DeviceRemoved { device_id } => {
                let remote = match from.filter(|f| Some(*f) != self.name.as_deref()) {
                    Some(daemon) => {
                        self.cache()
                            .remote_devices
                            .remove(&(daemon.to_owned(), device_id.clone()));
                        true
                    }
                    None => {
                        self.cache().devices.remove(&device_id);
                        false
                    }
                };
                self.publish_at(
                    &ServerMessage::DeviceRemoved { device_id, remote },
                    &crate::timestamp::now(),
                    from,
                );
            }
            // Hook results are in the journal; failures arrive as alerts.
            DaemonEvent::HooksExecuted { .. } => {}
        }
    }
}

/// How often the other daemons' silent plotters are looked for (see [`Hub::sweep_stale`]): a
/// dead daemon's plotters leave the clients' lists at most this long after [`DEVICE_STALE`].
const STALE_SWEEP: std::time::Duration = std::time::Duration::from_secs(15);

/// Moves events from the bus to the clients until `stop`.
pub(super) async fn run(
    hub: Arc<Hub>,
    mut bus: broadcast::Receiver<DaemonEvent>,
    stop: CancellationToken,
) {
    let mut throttle = Throttle::default();
    let mut sweep = tokio::time::interval(STALE_SWEEP);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let due = throttle.next_due();
        let wait = async move {
            match due {
                Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            event = bus.recv() => match event {
                Ok(e) => hub.dispatch(e, &mut throttle, None),
                Err(RecvError::Lagged(n)) => tracing::warn!(
                    "the API fell {n} events behind the daemon's event bus; clients missed them"
                ),
                Err(RecvError::Closed) => break,
            },
            _ = sweep.tick() => hub.sweep_stale(Instant::now()),
            () = wait => {
                for p in throttle.due(Instant::now()) {
                    let from = hub.cache().origins.get(&p.job_id).cloned();
                    hub.send_progress(p, from.as_deref().or(hub.name.as_deref()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(id: &str) -> DeviceStatus {
        DeviceStatus::sample(id)
    }

    /// The next message a client got: a `device_removed` of `device_id` from `daemon`, marked
    /// `remote` (another daemon's) or not.
    fn assert_removed(
        clients: &mut broadcast::Receiver<Arc<Outgoing>>,
        device_id: &str,
        daemon: &str,
        remote: bool,
    ) {
        let sent: serde_json::Value =
            serde_json::from_str(&clients.try_recv().unwrap().text).unwrap();
        assert_eq!(sent["type"], "device_removed");
        assert_eq!(sent["device_id"], device_id);
        assert_eq!(sent["daemon"], daemon);
        if remote {
            assert_eq!(sent["remote"], true);
        } else {
            assert_eq!(sent.get("remote"), None, "no `remote` on this daemon's own");
        }
    }

    /// Issue 15: another daemon's plotter reaches the clients marked with that daemon and is
    /// kept apart from this daemon's (listed with its daemon, found as another daemon's).
    #[test]
    fn another_daemons_plotter_is_marked_and_kept_apart() {
        let hub = Hub::new(16).named(Some("b".into()));
        let mut feed = hub.subscribe();
        let mut throttle = Throttle::default();
        hub.dispatch(
            DaemonEvent::DeviceStatus(status("right")),
            &mut throttle,
            None,
        );
        hub.dispatch(
            DaemonEvent::Remote(Box::new(RemoteEvent {
                daemon: "a".into(),
                event: DaemonEvent::DeviceStatus(status("left")),
            })),
            &mut throttle,
            None,
        );
        let own: serde_json::Value = serde_json::from_str(&feed.try_recv().unwrap().text).unwrap();
        let theirs: serde_json::Value =
            serde_json::from_str(&feed.try_recv().unwrap().text).unwrap();
        assert_eq!(
            (&own["device_id"], &own["daemon"]),
            (&"right".into(), &"b".into())
        );
        assert_eq!(
            (&theirs["type"], &theirs["device_id"], &theirs["daemon"]),
            (&"device_status".into(), &"left".into(), &"a".into())
        );
        assert_eq!(
            (&own.get("remote"), &theirs["remote"]),
            (&None, &true.into())
        );
        let local: Vec<String> = hub.devices().into_iter().map(|d| d.device_id).collect();
        assert_eq!(local, ["right"], "a's plotter is not this daemon's");
        let remote: Vec<(String, String)> = hub
            .remote_devices()
            .into_iter()
            .map(|r| (r.daemon, r.status.device_id))
            .collect();
        assert_eq!(remote, [("a".to_owned(), "left".to_owned())]);
        assert_eq!(hub.remote_daemon_of("LEFT").as_deref(), Some("a"));
        assert_eq!(hub.remote_daemon_of("right"), None, "this daemon's own");
        assert_eq!(hub.remote_daemon_of("middle"), None, "nobody's");
    }

    /// A plotter whose id changed (`auto` left the simulator for an AxiDraw) is no longer
    /// listed under its old id: the snapshots and the system status would show a ghost.
    #[test]
    fn a_removed_plotter_leaves_the_snapshot() {
        let hub = Hub::new(16);
        let mut throttle = Throttle::default();
        hub.dispatch(
            DaemonEvent::DeviceStatus(status("simulator")),
            &mut throttle,
            None,
        );
        hub.dispatch(
            DaemonEvent::DeviceRemoved {
                device_id: "simulator".into(),
            },
            &mut throttle,
            None,
        );
        hub.dispatch(
            DaemonEvent::DeviceStatus(status("/dev/ttyACM0")),
            &mut throttle,
            None,
        );
        let local: Vec<String> = hub.devices().into_iter().map(|d| d.device_id).collect();
        assert_eq!(local, ["/dev/ttyACM0"]);
    }

    /// A removal reaches the stream's clients (`device_removed`, with the daemon of another
    /// daemon's plotter); another daemon's removal drops its plotter, never this daemon's
    /// plotter of the same id.
    #[test]
    fn a_silent_daemons_plotters_leave_the_clients_lists() {
        let hub = Hub::new(16).named(Some("b".into()));
        let mut clients = hub.subscribe();
        let mut throttle = Throttle::default();
        let heard = Instant::now();
        hub.dispatch(
            DaemonEvent::Remote(Box::new(RemoteEvent {
                daemon: "a".into(),
                event: DaemonEvent::DeviceStatus(status("left")),
            })),
            &mut throttle,
            None,
        );
        hub.dispatch(
            DaemonEvent::DeviceStatus(status("mine")),
            &mut throttle,
            None,
        );
        while clients.try_recv().is_ok() {}
        // Still within the stale limit: kept, nothing sent.
        hub.sweep_stale(heard + DEVICE_STALE - std::time::Duration::from_secs(1));
        assert!(clients.try_recv().is_err());
        assert_eq!(hub.remote_devices().len(), 1);
        hub.sweep_stale(heard + DEVICE_STALE + std::time::Duration::from_secs(1));
        assert_removed(&mut clients, "left", "a", true);
        assert!(
            clients.try_recv().is_err(),
            "this daemon's own plotter is never swept"
        );
        assert_eq!(hub.devices().len(), 1);
        // Once: a second sweep has nothing left to remove.
        hub.sweep_stale(heard + 2 * DEVICE_STALE);
        assert!(clients.try_recv().is_err());
    }

    #[test]
    fn a_removed_plotter_is_sent_to_the_clients() {
        let hub = Hub::new(16).named(Some("b".into()));
        let mut clients = hub.subscribe();
        let mut throttle = Throttle::default();
        let remote = |event: DaemonEvent| {
            DaemonEvent::Remote(Box::new(RemoteEvent {
                daemon: "a".into(),
                event,
            }))
        };
        hub.dispatch(
            DaemonEvent::DeviceStatus(status("simulator")),
            &mut throttle,
            None,
        );
        hub.dispatch(
            remote(DaemonEvent::DeviceStatus(status("simulator"))),
            &mut throttle,
            None,
        );
        while clients.try_recv().is_ok() {}
        hub.dispatch(
            remote(DaemonEvent::DeviceRemoved {
                device_id: "simulator".into(),
            }),
            &mut throttle,
            None,
        );
        assert_removed(&mut clients, "simulator", "a", true);
        assert!(hub.remote_devices().is_empty(), "a's simulator is gone");
        assert_eq!(hub.devices().len(), 1, "b's own simulator stays");
        hub.dispatch(
            DaemonEvent::DeviceRemoved {
                device_id: "simulator".into(),
            },
            &mut throttle,
            None,
        );
        // This daemon's own: no `remote`.
        assert_removed(&mut clients, "simulator", "b", false);
        assert!(hub.devices().is_empty());
    }
}
