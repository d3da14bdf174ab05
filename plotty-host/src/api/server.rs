//! The accept loop of the API port: hyper's HTTP/1.1 server per connection, with the limits that
//! keep half-open and idle connections from starving everyone else (slowloris).
//!
//! - **Header timeout** (`websocket.header_timeout`): hyper's `header_read_timeout` with tokio's
//!   timer. A client must send a whole request head within it, counted from the moment the server
//!   waits for one: after the accept, and again after each response of a kept-alive connection, so
//!   it is also the longest a connection may sit idle between requests.
//! - **Connection cap** (`websocket.max_http_connections`): HTTP connections open at once.
//!   WebSockets are not counted here once upgraded (`websocket.max_connections` caps them), so the
//!   daemon holds at most the sum of both. At the cap, a new connection takes the place of the
//!   oldest one that is idle (no request in flight) and has not presented the API key: a flood of
//!   half-open sockets cannot keep out a client that sends its request at once, and an
//!   authenticated client's connection is never the one closed. When no connection can make room,
//!   the new one is closed at once (a warning at most every 10 s).
//!
//! Every connection carries its peer ([`ConnectInfo`]), the address it reached ([`LocalAddr`]) and
//! its place in the table ([`ConnHandle`]) as request extensions, for the checks in
//! [`super::guard`].

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_service::Service;

use super::Api;
use crate::logging;

/// How long an accept error (EMFILE, ENFILE, ENOBUFS) pauses the loop, as axum did.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Least time between two "at the connection cap" warnings.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The local address a connection reached (a request extension).
#[derive(Clone, Copy, Debug)]
pub(super) struct LocalAddr(pub(super) Option<SocketAddr>);

/// A connection's place in the [`ConnectionTable`] (a request extension).
#[derive(Clone)]
pub(super) struct ConnHandle(Arc<ConnState>);

/// What the table knows about one connection.
struct ConnState {
    /// Requests being handled now.
    in_flight: AtomicUsize,
    /// It presented the right API key: never evicted.
    trusted: AtomicBool,
    /// Closes it.
    close: CancellationToken,
}

/// The HTTP connections open now, oldest first.
#[derive(Default)]
pub(super) struct ConnectionTable {
    inner: Arc<Mutex<TableInner>>,
}

#[derive(Default)]
struct TableInner {
    next: u64,
    open: BTreeMap<u64, Arc<ConnState>>,
}

/// One admitted connection: leaves the table when dropped.
pub(super) struct Admitted {
    table: Arc<Mutex<TableInner>>,
    id: u64,
    state: Arc<ConnState>,
}

/// Marks a request in flight until dropped.
struct InFlight(Arc<ConnState>);

impl ConnHandle {
    /// The connection presented the right API key: it is never evicted for a newcomer.
    pub(super) fn trust(&self) {
        self.0.trusted.store(true, Ordering::Release);
    }
}

/// Only inserts and removes happen under the lock; a poisoned map is still consistent.
fn lock(inner: &Mutex<TableInner>) -> MutexGuard<'_, TableInner> {
    inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ConnectionTable {
    /// Admits a connection under `cap`, evicting the oldest idle untrusted one when full; `None`
    /// when every open connection is busy or trusted.
    pub(super) fn admit(&self, cap: usize) -> Option<Admitted> {
        let mut t = lock(&self.inner);
        if t.open.len() >= cap.max(1) {
            let victim = t.open.iter().find_map(|(id, c)| {
                (c.in_flight.load(Ordering::Acquire) == 0 && !c.trusted.load(Ordering::Acquire))
                    .then_some(*id)
            })?;
            if let Some(c) = t.open.remove(&victim) {
                c.close.cancel();
            }
        }
        let id = t.next;
        t.next += 1;
        let state = Arc::new(ConnState {
            in_flight: AtomicUsize::new(0),
            trusted: AtomicBool::new(false),
            close: CancellationToken::new(),
        });
        t.open.insert(id, Arc::clone(&state));
        Some(Admitted {
            table: Arc::clone(&self.inner),
            id,
            state,
        })
    }

    /// HTTP connections open now.
    pub(super) fn len(&self) -> usize {
        lock(&self.inner).open.len()
    }
}

impl Admitted {
    fn handle(&self) -> ConnHandle {
        ConnHandle(Arc::clone(&self.state))
    }

    fn closed(&self) -> CancellationToken {
        self.state.close.clone()
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        lock(&self.table).open.remove(&self.id);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accepts and serves connections until `stop`; then lets the requests in flight finish.
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    api: Arc<Api>,
    stop: CancellationToken,
) {
    let mut warned: Option<Instant> = None;
    loop {
        let (tcp, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or buffers: wait for connections to close, keep serving.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        // Small frames must leave at once: Nagle would hold them for the peer's ACK.
        let _ = tcp.set_nodelay(true);
        let settings = api.settings();
        let cap = usize::try_from(settings.websocket.max_http_connections).unwrap_or(usize::MAX);
        let header_timeout = settings.websocket.header_timeout;
        let Some(admitted) = api.connections.admit(cap) else {
            if warned.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                warned = Some(Instant::now());
                tracing::warn!(
                    target: logging::SECURITY,
                    %peer,
                    "refused a connection: {cap} HTTP connections are open and all are busy or \
                     authenticated (websocket.max_http_connections)"
                );
            }
            drop(tcp);
            continue;
        };
        let local = LocalAddr(tcp.local_addr().ok());
        let handle = admitted.handle();
        let evicted = admitted.closed();
        let app = app.clone();
        let stop = stop.clone();
        api.shutdown.spawn(async move {
            // Moved in: the connection leaves the table when this task ends.
            let admitted = admitted;
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut().insert(local);
                req.extensions_mut().insert(handle.clone());
                handle.0.in_flight.fetch_add(1, Ordering::AcqRel);
                let busy = InFlight(Arc::clone(&handle.0));
                let mut app = app.clone();
                async move {
                    let response = app.call(req.map(Body::new)).await;
                    drop(busy);
                    response.map_err(|never: Infallible| match never {})
                }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                served = conn.as_mut() => {
                    if let Err(e) = served {
                        tracing::debug!(%peer, error = %e, "HTTP connection ended");
                    }
                }
                () = evicted.cancelled() => {
                    tracing::debug!(%peer, "closed an idle HTTP connection to make room");
                }
                () = stop.cancelled() => {
                    // A connection waiting for a request (half-open or idle) has nothing to
                    // finish: closed at once, so that it cannot hold the shutdown for the header
                    // timeout. One with a request in flight answers it first.
                    if admitted.state.in_flight.load(Ordering::Acquire) > 0 {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
            }
            drop(admitted);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_idle_untrusted_connection_makes_room() {
        let table = ConnectionTable::default();
        let a = table.admit(3).unwrap();
        let b = table.admit(3).unwrap();
        let c = table.admit(3).unwrap();
        // `a` is authenticated, `b` has a request in flight: `c` is the one to go.
        a.handle().trust();
        let _busy = InFlight({
            b.state.in_flight.fetch_add(1, Ordering::AcqRel);
            Arc::clone(&b.state)
        });
        let d = table.admit(3).unwrap();
        assert!(c.closed().is_cancelled());
        assert!(!a.closed().is_cancelled() && !b.closed().is_cancelled());
        assert_eq!(table.len(), 3);
        // Now only busy, trusted or younger connections: `d` goes next, then nobody.
        let e = table.admit(3).unwrap();
        assert!(d.closed().is_cancelled());
        drop(c);
        drop(d);
        assert_eq!(
            table.len(),
            3,
            "dropping evicted connections changes nothing"
        );
        e.handle().trust();
        assert!(table.admit(3).is_none(), "all busy or trusted: refused");
        drop(_busy);
        assert!(table.admit(3).is_some(), "b is idle again");
    }
}
