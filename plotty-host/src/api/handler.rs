//! One WebSocket client: its messages in, its replies and the broadcasts it subscribed to out, its
//! heartbeat, rate limit and lag.
//!
//! Every write has a deadline ([`super::ApiLimits::send_timeout`]): a client that stops reading is
//! dropped instead of holding anything up. Broadcasts come from the client's own position in the
//! shared feed; if it falls behind the feed's capacity it gets an `error` with code `LAGGED` and the
//! number of messages it lost, and if it falls behind again within
//! [`super::ApiLimits::lag_grace`] it is closed (1013). Nothing a client sends can end the
//! connection except a binary frame (1003), an oversized message (1009) or a broken frame; every
//! other mistake gets an `error` reply. When a reload changes the API key (or turns
//! authentication on), a client whose key no longer matches is closed with code
//! [`KEY_REVOKED`] (4401): a rotated key must take control away from whoever held the old one.

use std::future::{Future, poll_fn};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::json;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::fanout::Outgoing;
use super::gate::Gate;
use super::limits::{Beat, ConnectionSlot, Liveness, RateLimiter};
use super::protocol::{
    self, Channel, Channels, ClientMessage, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, Request,
    ServerMessage, code,
};
use super::{ACTIVE, Api, WAITING, views};
use crate::job::JobId;
use crate::queue::{ListFilter, QueueError};

/// Feed messages sent with one write at most (a bound on the time one client holds its task).
const FEED_BATCH: usize = 64;

/// The close code of a client whose API key a reload made invalid (4000–4999: private use; 4401
/// echoes HTTP's 401).
pub(super) const KEY_REVOKED: u16 = 4401;

/// How long a closing handshake may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// A connected client, before its loop starts.
pub(super) struct Client {
    /// Connection number.
    pub(super) id: u64,
    /// Peer address for logs.
    pub(super) peer: String,
    /// Shared state.
    pub(super) api: Arc<Api>,
    /// Its position in the broadcast feed.
    pub(super) feed: broadcast::Receiver<Arc<Outgoing>>,
    /// The API key it presented at the handshake.
    pub(super) key: Option<String>,
    /// Its place under the connection limit.
    pub(super) _slot: ConnectionSlot,
}

/// What the loop does next.
enum Flow {
    Continue,
    /// Close with a close frame.
    Close(CloseCode, String),
    /// Stop without a close handshake (the peer is gone or not reading).
    Drop,
}

struct Session<S> {
    ws: S,
    client: Client,
    subscribed: Channels,
    job_filter: Option<JobId>,
    rate: RateLimiter,
    live: Liveness,
    lagged_at: Option<Instant>,
    /// The messages of the batch being written, kept between batches so that a delivery
    /// allocates nothing (its capacity is [`FEED_BATCH`], allocated once per client).
    batch: Vec<Utf8Bytes>,
}

/// Serves one client until it leaves, misbehaves beyond repair or the API stops.
pub(super) async fn serve<S>(ws: S, client: Client)
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let settings = client.api.settings();
    let now = Instant::now();
    let mut session = Session {
        ws,
        rate: RateLimiter::new(settings.websocket.message_rate_limit, now),
        live: Liveness::new(settings.websocket.heartbeat_interval, now),
        subscribed: Channels::ALL,
        job_filter: None,
        lagged_at: None,
        batch: Vec::with_capacity(FEED_BATCH),
        client,
    };
    let id = session.client.id;
    session.client.api.clients().insert(id, Channels::ALL);
    tracing::debug!(connection = id, peer = %session.client.peer, "WebSocket client connected");
    session.run(settings.websocket.heartbeat_interval).await;
    session.client.api.clients().remove(&id);
    tracing::debug!(connection = id, "WebSocket client left");
}

impl<S> Session<S>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    async fn run(&mut self, heartbeat: Duration) {
        let settings = self.client.api.settings();
        let hello = ServerMessage::Hello {
            daemon_version: env!("CARGO_PKG_VERSION"),
            protocol_version: PROTOCOL_VERSION,
            channels: Channels::ALL,
            subscribed: self.subscribed,
            connection_id: self.client.id,
            heartbeat_interval: heartbeat.as_secs_f64(),
            message_rate_limit: settings.websocket.message_rate_limit,
            max_message_bytes: MAX_MESSAGE_BYTES,
        };
        let mut flow = self.reply(&hello).await;
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stop = self.client.api.shutdown.stop_token();
        // Registered once: a fresh `cancelled()` per message would take the token's lock for
        // every delivery of every client.
        let stopped = stop.cancelled();
        tokio::pin!(stopped);
        // Likewise the reload watch: pinned here, renewed only when it fires.
        let reload = next_reload(Some(self.client.api.settings.clone()));
        tokio::pin!(reload);
        // Every delivery wakes this task through the feed; the gate keeps that wake-up from
        // polling the branches that were not woken (each poll of those takes a lock). One gate
        // for all of them: they wake rarely, and then all four are polled.
        let idle = Gate::default();
        while matches!(flow, Flow::Continue) {
            flow = tokio::select! {
                biased;
                woke = poll_fn(|cx| idle.poll(cx, |cx| {
                    // In order of precedence.
                    if stopped.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Idle::Stop);
                    }
                    if let Poll::Ready((changed, rx)) = reload.as_mut().poll(cx) {
                        return Poll::Ready(Idle::Reload(changed, rx));
                    }
                    if let Poll::Ready(frame) = self.ws.poll_next_unpin(cx) {
                        return Poll::Ready(Idle::Frame(frame));
                    }
                    ticks.poll_tick(cx).map(|_| Idle::Tick)
                })) => match woke {
                    Idle::Stop => Flow::Close(CloseCode::Away, "server shutting down".into()),
                    Idle::Reload(changed, rx) => {
                        reload.set(next_reload(rx));
                        self.on_reload(changed)
                    }
                    Idle::Frame(frame) => self.on_frame(frame).await,
                    Idle::Tick => self.on_tick().await,
                },
                out = self.client.feed.recv() => self.on_feed(out).await,
            };
        }
        if let Flow::Close(code, reason) = flow {
            tracing::debug!(connection = self.client.id, %code, %reason, "closing a WebSocket client");
            self.close(code, reason).await;
        }
    }

    /// The settings were reloaded: the client keeps its connection only if its key still opens
    /// the API.
    fn on_reload(&mut self, changed: bool) -> Flow {
        if !changed {
            return Flow::Continue;
        }
        let settings = self.client.api.settings();
        if super::key_still_valid(&settings, self.client.key.as_deref()) {
            return Flow::Continue;
        }
        tracing::info!(
            target: crate::logging::SECURITY,
            connection = self.client.id,
            peer = %self.client.peer,
            "closing a WebSocket client: its API key is no longer valid after the reload"
        );
        Flow::Close(
            CloseCode::from(KEY_REVOKED),
            "the API key changed: reconnect with the new key".into(),
        )
    }

    async fn on_frame(&mut self, frame: Option<Result<Message, WsError>>) -> Flow {
        let message = match frame {
            None => return Flow::Drop,
            Some(Ok(m)) => m,
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                return Flow::Close(
                    CloseCode::Size,
                    format!("message of {size} bytes; the limit is {max_size}"),
                );
            }
            Some(Err(WsError::Utf8(_))) => {
                return Flow::Close(CloseCode::Invalid, "text frames must be UTF-8".into());
            }
            Some(Err(WsError::Protocol(e))) => {
                return Flow::Close(CloseCode::Protocol, e.to_string());
            }
            Some(Err(_)) => return Flow::Drop,
        };
        self.live.heard(Instant::now());
        match message {
            Message::Text(text) => self.on_text(&text).await,
            Message::Binary(_) => Flow::Close(
                CloseCode::Unsupported,
                "text frames only: send each message as a JSON text frame".into(),
            ),
            // The pong is queued by tungstenite; send it now.
            Message::Ping(_) => self.timed(|ws| ws.flush()).await,
            Message::Pong(_) | Message::Frame(_) => Flow::Continue,
            Message::Close(_) => {
                // Sends the queued close reply.
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.ws.flush()).await;
                Flow::Drop
            }
        }
    }

    async fn on_text(&mut self, text: &str) -> Flow {
        let now = Instant::now();
        if !self.rate.allow(now) {
            let limit = self.client.api.settings().websocket.message_rate_limit;
            let wait = self.rate.retry_after();
            return self
                .reply(&ServerMessage::error(
                    code::RATE_LIMITED,
                    format!(
                        "more than {limit} messages a minute (websocket.message_rate_limit): this \
                         one was ignored; wait {} ms",
                        wait.as_millis()
                    ),
                    json!({ "limit_per_minute": limit, "retry_after_ms": wait.as_millis() as u64 }),
                ))
                .await;
        }
        match protocol::parse(text) {
            Ok(req) => self.on_request(req).await,
            Err(e) => self.reply(&e.to_message()).await,
        }
    }

    async fn on_request(&mut self, req: Request) -> Flow {
        let Request {
            message,
            request_id,
        } = req;
        match message {
            ClientMessage::Subscribe { channels, job_id } => {
                self.subscribed = channels;
                self.job_filter.clone_from(&job_id);
                self.client.api.clients().insert(self.client.id, channels);
                let flow = self
                    .reply(&ServerMessage::Subscribed {
                        channels,
                        job_id,
                        request_id,
                    })
                    .await;
                if !matches!(flow, Flow::Continue) {
                    return flow;
                }
                self.snapshots().await
            }
            ClientMessage::Unsubscribe { channels } => {
                let removed = self.subscribed.without(self.subscribed.without(channels));
                self.subscribed = self.subscribed.without(channels);
                self.client
                    .api
                    .clients()
                    .insert(self.client.id, self.subscribed);
                self.reply(&ServerMessage::Unsubscribed {
                    channels: removed,
                    remaining: self.subscribed,
                    request_id,
                })
                .await
            }
            ClientMessage::Ping => self.reply(&ServerMessage::Pong { request_id }).await,
            ClientMessage::Job { action, job_id } => {
                let api = Arc::clone(&self.client.api);
                let asked = api.queue.control(job_id.clone(), action);
                let answer = match tokio::time::timeout(api.limits.control_timeout, asked).await {
                    Ok(Ok(job)) => ServerMessage::Ack {
                        request: format!("job_{action}"),
                        job_id,
                        state: job.state,
                        request_id,
                    },
                    Ok(Err(e)) => ServerMessage::Error {
                        error_code: e.code().to_owned(),
                        error_message: e.to_string(),
                        details: json!({ "job_id": job_id, "request": format!("job_{action}") }),
                        request_id,
                    },
                    Err(_) => ServerMessage::Error {
                        error_code: code::TIMEOUT.to_owned(),
                        error_message: format!(
                            "job_{action} for job {job_id} got no answer within {} s; check the \
                             job's state before trying again",
                            api.limits.control_timeout.as_secs()
                        ),
                        details: json!({ "job_id": job_id }),
                        request_id,
                    },
                };
                self.reply(&answer).await
            }
        }
    }

    /// The current state of each subscribed channel.
    async fn snapshots(&mut self) -> Flow {
        let api = Arc::clone(&self.client.api);
        let mut messages = Vec::new();
        if self.subscribed.contains(Channel::Jobs) {
            let jobs = match &self.job_filter {
                Some(id) => match api.queue.job(id.clone()).await {
                    Ok(d) => vec![d.job],
                    // A job that does not exist (any more) has no snapshot.
                    Err(QueueError::UnknownJob(_)) => Vec::new(),
                    Err(e) => {
                        messages.push(snapshot_error("jobs", &e));
                        Vec::new()
                    }
                },
                None => {
                    let filter = ListFilter {
                        states: WAITING.iter().chain(ACTIVE.iter()).copied().collect(),
                        limit: Some(api.limits.snapshot_jobs),
                    };
                    match api.queue.list(filter).await {
                        Ok(jobs) => jobs,
                        Err(e) => {
                            messages.push(snapshot_error("jobs", &e));
                            Vec::new()
                        }
                    }
                }
            };
            for job in &jobs {
                messages.push(views::snapshot_state(job));
                if let Some(p) = api.hub.progress(&job.id) {
                    messages.push(ServerMessage::progress(&p, true));
                }
            }
        }
        if self.subscribed.contains(Channel::Devices) {
            let mut devices = api.hub.devices();
            if devices.is_empty() {
                match api.queue.devices().await {
                    Ok(d) => devices = d,
                    Err(e) => messages.push(snapshot_error("devices", &e)),
                }
            }
            messages.extend(devices.iter().map(ServerMessage::device));
        }
        // The other daemons' plotters, marked with their daemon (after this daemon's messages).
        let remote = if self.subscribed.contains(Channel::Devices) {
            api.hub.remote_devices()
        } else {
            Vec::new()
        };
        let mut alerts = Vec::new();
        if self.subscribed.contains(Channel::System) {
            messages.push(ServerMessage::SystemStatus(api.system_status().await));
            alerts = api.hub.alerts();
        }
        for m in &messages {
            let flow = self.reply(m).await;
            if !matches!(flow, Flow::Continue) {
                return flow;
            }
        }
        let now = crate::timestamp::now();
        for r in &remote {
            let message = ServerMessage::remote_device(&r.status);
            let text = protocol::encode_from(&message, &now, Some(&r.daemon));
            let flow = self.send_text(text).await;
            if !matches!(flow, Flow::Continue) {
                return flow;
            }
        }
        // Alerts raised before the client came, each stamped with when it was raised.
        for (at, alert) in &alerts {
            let text = protocol::encode_at(&ServerMessage::alert(alert, true), at);
            let flow = self.send_text(text).await;
            if !matches!(flow, Flow::Continue) {
                return flow;
            }
        }
        Flow::Continue
    }

    async fn on_feed(&mut self, out: Result<Arc<Outgoing>, RecvError>) -> Flow {
        let out = match out {
            Ok(out) => out,
            Err(e) => return self.on_feed_error(e).await,
        };
        // Whatever else is already waiting goes out with it, in one write: under load a client
        // costs one system call per batch instead of one per message. The batch's vector is the
        // session's, reused: a delivery allocates nothing (a message's text is shared, its
        // clone a reference count).
        let mut batch = std::mem::take(&mut self.batch);
        let mut next = Some(out);
        let mut failure = None;
        while let Some(out) = next.take() {
            if self.wants(&out) {
                batch.push(out.text.clone());
            }
            if batch.len() >= FEED_BATCH {
                break;
            }
            match self.client.feed.try_recv() {
                Ok(out) => next = Some(out),
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Lagged(n)) => failure = Some(RecvError::Lagged(n)),
                Err(TryRecvError::Closed) => failure = Some(RecvError::Closed),
            }
        }
        let flow = self.send_batch(&mut batch).await;
        batch.clear();
        self.batch = batch;
        match failure {
            Some(e) if matches!(flow, Flow::Continue) => self.on_feed_error(e).await,
            _ => flow,
        }
    }

    /// The feed lost messages for this client (it fell behind) or closed (shutdown).
    async fn on_feed_error(&mut self, error: RecvError) -> Flow {
        let n = match error {
            RecvError::Lagged(n) => n,
            RecvError::Closed => {
                return Flow::Close(CloseCode::Away, "server shutting down".into());
            }
        };
        let now = Instant::now();
        let grace = self.client.api.limits.lag_grace;
        if self
            .lagged_at
            .is_some_and(|t| now.saturating_duration_since(t) < grace)
        {
            tracing::info!(
                connection = self.client.id,
                peer = %self.client.peer,
                "closing a WebSocket client that keeps falling behind ({n} more events lost)"
            );
            return Flow::Close(
                CloseCode::Again,
                format!("too slow: {n} more events were dropped; reconnect"),
            );
        }
        self.lagged_at = Some(now);
        self.reply(&ServerMessage::error(
            code::LAGGED,
            format!(
                "this client fell behind and {n} events were dropped; read faster or \
                 subscribe to fewer channels (a second time closes the connection)"
            ),
            json!({ "dropped": n }),
        ))
        .await
    }

    async fn on_tick(&mut self) -> Flow {
        match self.live.tick(Instant::now()) {
            Beat::Ping => self.send(Message::Ping(Default::default())).await,
            Beat::Dead => {
                tracing::info!(
                    connection = self.client.id,
                    peer = %self.client.peer,
                    "closing a WebSocket client that answered nothing for two heartbeat intervals"
                );
                Flow::Close(CloseCode::Normal, "Heartbeat timeout".into())
            }
        }
    }

    fn wants(&self, out: &Outgoing) -> bool {
        self.subscribed.contains(out.channel)
            && match (&self.job_filter, &out.job_id, out.channel) {
                (Some(want), Some(got), Channel::Jobs) => want == got,
                _ => true,
            }
    }

    async fn reply(&mut self, message: &ServerMessage) -> Flow {
        self.send_text(protocol::encode(message)).await
    }

    async fn send_text(&mut self, text: Utf8Bytes) -> Flow {
        self.send(Message::Text(text)).await
    }

    async fn send(&mut self, message: Message) -> Flow {
        self.timed(|ws| ws.send(message)).await
    }

    /// Sends `texts` (leaving it empty) with one flush at the end.
    async fn send_batch(&mut self, texts: &mut Vec<Utf8Bytes>) -> Flow {
        if texts.is_empty() {
            return Flow::Continue;
        }
        self.timed(|ws| async move {
            for text in texts.drain(..) {
                ws.feed(Message::Text(text)).await?;
            }
            ws.flush().await
        })
        .await
    }

    /// Runs a write with the send deadline.
    async fn timed<'a, F, Fut>(&'a mut self, write: F) -> Flow
    where
        F: FnOnce(&'a mut S) -> Fut,
        Fut: std::future::Future<Output = Result<(), WsError>> + 'a,
    {
        let deadline = self.client.api.limits.send_timeout;
        let id = self.client.id;
        let write = write(&mut self.ws);
        tokio::pin!(write);
        // Nearly every write completes at once (the socket's buffer has room): only one that has
        // to wait reads the clock and arms the deadline's timer, not every delivery.
        let done = match poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
            Poll::Ready(done) => Ok(done),
            Poll::Pending => tokio::time::timeout(deadline, write).await,
        };
        match done {
            Ok(Ok(())) => Flow::Continue,
            Ok(Err(_)) => Flow::Drop,
            Err(_) => {
                tracing::info!(
                    connection = id,
                    "dropping a WebSocket client that stopped reading (a write took over {} s)",
                    deadline.as_secs_f64()
                );
                Flow::Drop
            }
        }
    }

    async fn close(&mut self, code: CloseCode, reason: String) {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from(truncate(reason, 120)),
        };
        let ws = &mut self.ws;
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            if ws.send(Message::Close(Some(frame))).await.is_ok() {
                // Wait for the client's close reply (or it going away).
                while let Some(Ok(_)) = ws.next().await {}
            }
        })
        .await;
    }
}

/// What woke a client's task other than its feed (the feed, woken for every delivery, has no
/// gate: its `recv` future is made anew each round and unregisters when dropped).
enum Idle {
    /// The daemon is stopping.
    Stop,
    /// The settings were reloaded (or their watch closed), and the watch to wait on next.
    Reload(bool, Reloads),
    /// The client sent a frame, or left.
    Frame(Option<Result<Message, WsError>>),
    /// A heartbeat is due.
    Tick,
}

/// The settings' watch, handed back with each answer.
type Reloads = Option<tokio::sync::watch::Receiver<Arc<crate::settings::Settings>>>;

/// Waits for the next settings reload: `true` when there was one. A closed channel (the daemon
/// is stopping) is `false` once, then never ready again. Owns the watch and hands it back, so
/// that the future can stay pinned across rounds and be renewed only when it fires.
async fn next_reload(mut watch: Reloads) -> (bool, Reloads) {
    match &mut watch {
        Some(rx) => {
            if rx.changed().await.is_ok() {
                return (true, watch);
            }
            (false, None)
        }
        None => std::future::pending().await,
    }
}

/// The `error` sent instead of a channel's snapshot that cannot be read (an empty snapshot
/// would say "nothing here").
fn snapshot_error(channel: &str, e: &QueueError) -> ServerMessage {
    ServerMessage::error(
        e.code(),
        format!("cannot read the {channel} snapshot from the queue: {e}"),
        json!({ "channel": channel }),
    )
}

/// A close reason must fit a control frame (125 bytes with the code).
fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;

    /// A WebSocket that keeps what the server sends and never says anything.
    #[derive(Default)]
    struct Recorder {
        sent: Vec<Message>,
    }

    impl Stream for Recorder {
        type Item = Result<Message, WsError>;
        fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Pending
        }
    }

    impl Sink<Message> for Recorder {
        type Error = WsError;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            Poll::Ready(Ok(()))
        }
        fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), WsError> {
            self.sent.push(item);
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_snapshot_the_queue_cannot_give_is_an_error_not_an_empty_list() {
        let dir = tempfile::tempdir().unwrap();
        let api = crate::api::api_without_queue(dir.path());
        let now = Instant::now();
        let mut session = Session {
            ws: Recorder::default(),
            client: Client {
                id: 1,
                peer: "test".into(),
                feed: broadcast::channel(4).1,
                key: None,
                _slot: api.limiter.try_acquire(10).unwrap(),
                api,
            },
            subscribed: Channels::ALL,
            job_filter: None,
            rate: RateLimiter::new(60, now),
            live: Liveness::new(Duration::from_secs(30), now),
            lagged_at: None,
            batch: Vec::new(),
        };
        assert!(matches!(session.snapshots().await, Flow::Continue));
        let texts: Vec<String> = session
            .ws
            .sent
            .iter()
            .filter_map(|m| m.to_text().ok().map(str::to_owned))
            .collect();
        let errors: Vec<&String> = texts
            .iter()
            .filter(|t| t.contains(r#""type":"error""#))
            .collect();
        assert!(
            errors
                .iter()
                .any(|t| t.contains("cannot read the jobs snapshot")),
            "{texts:?}"
        );
        assert!(
            errors
                .iter()
                .any(|t| t.contains("cannot read the devices snapshot")),
            "{texts:?}"
        );
    }
}
