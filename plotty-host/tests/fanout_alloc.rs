//! No allocation per WebSocket delivery: a global allocator counts every allocation made on the
//! daemon's runtime threads while M progress broadcasts reach N subscribers, first with
//! [`FEW`] subscribers, then with [`MANY`]. What the daemon allocates per broadcast (the event,
//! its encoded text, the throttle's and the snapshot cache's entries) is the same in both rounds;
//! an allocation per delivery (per client and message: a copy of the text, a batch vector, a
//! boxed future, a frame buffer) would add `(MANY - FEW) × M` to the second round. A control test
//! proves the counter sees a `Vec` made on a daemon thread.
//!
//! The clients run on this test's own thread (a current-thread runtime), whose allocations are not
//! counted: only the daemon's side of the fan-out is measured, as in production where the clients
//! are other processes.
//!
//! The counting allocator is the one place that needs `unsafe` (implementing `GlobalAlloc`); it
//! forwards to the system allocator unchanged.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use plotty_host::api::ApiLimits;
use plotty_host::daemon::notify::Notifier;
use plotty_host::daemon::{Daemon, Parts};
use plotty_host::events::{DaemonEvent, EventSender, JobProgress};
use plotty_host::job::JobId;
use plotty_host::settings::Settings;
use plotty_host::store::Store;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Subscribers in the first round.
const FEW: usize = 10;
/// Subscribers in the second round.
const MANY: usize = 50;
/// Broadcasts per round.
const BROADCASTS: usize = 20;
/// Longest any single wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(20);

thread_local! {
    /// This thread is one of the daemon's (set when the daemon's runtime starts it).
    static DAEMON_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Counting is on.
static ARMED: AtomicBool = AtomicBool::new(false);
/// Allocations made on daemon threads while armed.
static COUNT: AtomicUsize = AtomicUsize::new(0);

struct Counting;

// SAFETY: forwards every call to `System` unchanged; only counts on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn note() {
    // `try_with`: the thread-locals may be gone while a thread shuts down.
    if ARMED.load(Ordering::Relaxed) && DAEMON_THREAD.try_with(Cell::get).unwrap_or(false) {
        COUNT.fetch_add(1, Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The daemon's runtime: two workers, as on the 2-core machines it is measured on; every thread
/// it starts is counted.
fn daemon_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(|| DAEMON_THREAD.with(|d| d.set(true)))
        .enable_all()
        .build()
        .unwrap()
}

/// Starts the daemon (API, queue, no devices) on `rt`.
fn start_daemon(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
) -> (SocketAddr, EventSender, Daemon) {
    rt.block_on(async {
        let settings = Settings::defaults_for(dir);
        std::fs::create_dir_all(settings.jobs_dir()).unwrap();
        let (store, _) =
            Store::open_with_readers(&settings.database.path, settings.database.pool_size).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let parts = Parts {
            settings,
            sources: None,
            store: store.into(),
            listener: Some(listener),
            logging: None,
            notifier: Notifier::default(),
        };
        let daemon = Daemon::start(
            parts,
            plotty_host::app::components_without_devices(ApiLimits::default()),
        )
        .await
        .unwrap();
        (daemon.local_addr().unwrap(), daemon.ledger().bus(), daemon)
    })
}

/// The next text message, failing the test after [`WAIT`].
async fn next_text(ws: &mut Ws) -> String {
    loop {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message within the wait")
            .expect("the connection stays open")
            .unwrap();
        if let Message::Text(t) = m {
            return t.as_str().to_owned();
        }
    }
}

/// A client subscribed to `jobs` whose subscription (snapshots included) is complete: the
/// `pong` to a ping sent after the subscribe comes after the snapshots.
async fn subscriber(addr: SocketAddr) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    ws.send(Message::text(r#"{"type":"subscribe","channels":["jobs"]}"#))
        .await
        .unwrap();
    ws.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    while !next_text(&mut ws).await.contains(r#""type":"pong""#) {}
    ws
}

/// Publishes one progress update of each job `{prefix}{0..n}` (distinct jobs: the throttle holds
/// none of them back).
fn publish(bus: &EventSender, prefix: &str, n: usize) {
    for i in 0..n {
        bus.send(DaemonEvent::JobProgress(JobProgress {
            job_id: JobId::parse(&format!("{prefix}{i}")).unwrap(),
            device_id: None,
            progress: 0.5,
            current_layer: 1,
            total_layers: 1,
            points_plotted: i as u64,
            total_points: 1000,
            distance_mm: 0.0,
            eta_seconds: None,
            pen_down_time_seconds: 0.0,
            total_time_seconds: 0.0,
        }))
        .unwrap();
    }
}

/// Waits until every client has read the `n` updates of `{prefix}*`.
async fn received(clients: &mut [Ws], prefix: &str, n: usize) {
    let marker = format!(r#""job_id":"{prefix}"#);
    futures_util::future::join_all(clients.iter_mut().map(|ws| {
        let marker = marker.clone();
        async move {
            let mut got = 0;
            while got < n {
                if next_text(ws).await.contains(&marker) {
                    got += 1;
                }
            }
        }
    }))
    .await;
}

/// Allocations on daemon threads while `BROADCASTS` updates reach every one of `clients`.
fn round(
    clients_rt: &tokio::runtime::Runtime,
    clients: &mut [Ws],
    bus: &EventSender,
    prefix: &str,
) -> usize {
    // The same broadcasts once before, uncounted: buffers that grow once per client to hold a
    // batch (the socket's write buffer) are not allocations per delivery.
    let warm = format!("{prefix}w");
    publish(bus, &warm, BROADCASTS);
    clients_rt.block_on(received(clients, &warm, BROADCASTS));
    COUNT.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    publish(bus, prefix, BROADCASTS);
    clients_rt.block_on(received(clients, prefix, BROADCASTS));
    ARMED.store(false, Ordering::SeqCst);
    COUNT.load(Ordering::SeqCst)
}

#[test]
fn the_counter_sees_an_allocation_on_a_daemon_thread() {
    let rt = daemon_runtime();
    COUNT.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    let v = rt.block_on(rt.spawn(async { std::hint::black_box(vec![1u8; 16]) }));
    ARMED.store(false, Ordering::SeqCst);
    assert_eq!(v.unwrap().len(), 16);
    assert!(COUNT.load(Ordering::SeqCst) >= 1);
}

#[test]
fn a_broadcast_allocates_nothing_per_subscriber() {
    let dir = tempfile::tempdir().unwrap();
    let server = daemon_runtime();
    let (addr, bus, daemon) = start_daemon(&server, dir.path());
    let clients_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let mut clients: Vec<Ws> = clients_rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..FEW {
            v.push(subscriber(addr).await);
        }
        v
    });
    let few = round(&clients_rt, &mut clients, &bus, "few");
    clients_rt.block_on(async {
        for _ in FEW..MANY {
            clients.push(subscriber(addr).await);
        }
    });
    let many = round(&clients_rt, &mut clients, &bus, "many");

    let extra_deliveries = (MANY - FEW) * BROADCASTS;
    println!(
        "daemon-side allocations for {BROADCASTS} broadcasts: {few} to {FEW} subscribers, \
         {many} to {MANY} ({extra_deliveries} more deliveries)"
    );
    // One allocation per delivery would add `extra_deliveries` (800); a tenth of that is left
    // for what varies between rounds without depending on the subscribers (hash maps growing).
    assert!(
        many <= few + extra_deliveries / 10,
        "{many} allocations with {MANY} subscribers against {few} with {FEW}: the daemon \
         allocates per delivery"
    );

    drop(clients);
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    drop(tx);
    server.block_on(daemon.run(rx)).unwrap();
}
