//! The farm's modules together, against a throwaway PostgreSQL cluster (skipped loudly without
//! PostgreSQL's server binaries): what a daemon's plotters look like from another daemon.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

use super::relay::{CHANNEL, start};
use crate::events::{DaemonEvent, DeviceStatus, EventSender};
use crate::ledger::Ledger;
use crate::store::PgStore;

/// A plotter's status as its device task reports it.
fn status(device_id: &str, device_type: &str) -> DeviceStatus {
    DeviceStatus {
        device_type: device_type.into(),
        uptime_seconds: Some(1.0),
        ..DeviceStatus::sample(device_id)
    }
}

/// `auto` on daemon a switches from the simulator to an AxiDraw (its id goes from `simulator`
/// to the port): the relay stops sending `simulator` with the plotters it resends (every
/// `DEVICE_REFRESH`, and to a daemon that starts listening), so the other daemons do not list
/// that ghost for ever; and the removal itself reaches the daemons listening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plotter_whose_id_changed_is_no_longer_resent_under_its_old_id() {
    let Some(url) =
        crate::testing::postgres::database_or_skip("farm::tests::a_plotter_whose_id_changed")
    else {
        return;
    };
    let (store, _) = PgStore::connect(&url, 4).await.unwrap();
    let coordinator = crate::shutdown::Coordinator::new();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (bus_a, bus_b) = (crate::events::bus(), crate::events::bus());
    let mut on_b = bus_b.subscribe();
    let relay = |bus: &EventSender, dir: &tempfile::TempDir, name: &str| {
        let ledger = Ledger::new(store.clone(), dir.path(), bus.clone(), None)
            .holding_leases(name.into(), Duration::from_secs(30));
        start(&ledger, &coordinator.handle(crate::shutdown::Stage::Hooks));
    };
    // The test's own listening session: it sees what `ghost-a` sends.
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
    relay(&bus_a, &dir_a, "ghost-a");
    let _ = bus_a.send(DaemonEvent::DeviceStatus(status("simulator", "simulator")));
    let _ = bus_a.send(DaemonEvent::DeviceRemoved {
        device_id: "simulator".into(),
    });
    let _ = bus_a.send(DaemonEvent::DeviceStatus(status("/dev/ttyACM7", "axidraw")));
    // Once the AxiDraw's status went out, a's relay has seen all three.
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(text) = notes.recv().await {
            if text.contains("/dev/ttyACM7") {
                return;
            }
        }
    })
    .await
    .expect("a sends the AxiDraw's status");
    // b starts listening and asks a for its plotters: only the AxiDraw comes.
    relay(&bus_b, &dir_b, "ghost-b");
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        // Once the AxiDraw arrived, a short while more for a ghost that would follow it.
        let wait = if got.is_empty() {
            deadline.saturating_duration_since(tokio::time::Instant::now())
        } else {
            Duration::from_millis(500)
        };
        match tokio::time::timeout(wait, on_b.recv()).await {
            Ok(Ok(DaemonEvent::Remote(r))) if r.daemon == "ghost-a" => {
                if let DaemonEvent::DeviceStatus(d) = r.event {
                    got.push(d.device_id);
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("b's bus failed: {e}"),
            Err(_) => break,
        }
    }
    assert_eq!(got, ["/dev/ttyACM7"], "the old id is not resent");
    // A removal while b listens reaches b at once (it drops the plotter, not waiting for it
    // to go stale).
    let _ = bus_a.send(DaemonEvent::DeviceRemoved {
        device_id: "/dev/ttyACM7".into(),
    });
    let removed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match on_b.recv().await {
                Ok(DaemonEvent::Remote(r)) if r.daemon == "ghost-a" => {
                    if let DaemonEvent::DeviceRemoved { device_id } = r.event {
                        return device_id;
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("b's bus failed: {e}"),
            }
        }
    })
    .await
    .expect("b hears of the removal");
    assert_eq!(removed, "/dev/ttyACM7");
}
