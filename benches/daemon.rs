//! Daemon bookkeeping throughput: how many jobs per second can be submitted and stored (SQLite
//! insert with its event row, then the journal line fsynced), and how many state transitions per
//! second can be recorded (one transaction plus an fsynced journal line each), against a database
//! and workspace on the disk the temporary directory is on. The store-only transition shows what
//! the journal's fsync costs on top.
//!
//! Run with `cargo bench --bench daemon`.

// A failed set-up step ends the benchmark; there is nothing to recover.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use plotty_host::events;
use plotty_host::job::{JobEvent, JobId, Reason};
use plotty_host::ledger::Ledger;
use plotty_host::store::{NewJob, Store, TransitionRequest};
use serde_json::Value;

fn runtime() -> tokio::runtime::Runtime {
    // Single-threaded by design: the store serialises everything anyway.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
}

fn request(id: &JobId, event: JobEvent) -> TransitionRequest {
    TransitionRequest {
        job_id: id.clone(),
        event,
        reason: Reason::User,
        error: None,
        metadata: Value::Null,
    }
}

/// A job in PLOTTING, so that pause and resume can alternate forever.
async fn plotting_job(ledger: &Ledger) -> JobId {
    let job = ledger
        .submit(NewJob {
            name: "bench".into(),
            ..NewJob::default()
        })
        .await
        .unwrap();
    for e in [
        JobEvent::Enqueue,
        JobEvent::Analyzed,
        JobEvent::Optimized,
        JobEvent::Prepared,
        JobEvent::Arm,
        JobEvent::Start,
    ] {
        ledger.apply(request(&job.id, e)).await.unwrap();
    }
    job.id
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(&dir.path().join("plotty.db")).unwrap();
    let ledger = Ledger::new(store.clone(), dir.path(), events::bus(), None);

    let mut g = c.benchmark_group("daemon");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(10));

    g.bench_function("submit_to_stored", |b| {
        b.iter(|| {
            rt.block_on(ledger.submit(NewJob {
                name: "flower.svg".into(),
                ..NewJob::default()
            }))
            .unwrap()
        });
    });

    let id = rt.block_on(plotting_job(&ledger));
    let mut paused = false;
    g.bench_function("transition_with_journal", |b| {
        b.iter(|| {
            let event = if paused {
                JobEvent::Resume
            } else {
                JobEvent::Pause
            };
            paused = !paused;
            rt.block_on(ledger.apply(request(&id, event))).unwrap()
        });
    });

    let id = rt.block_on(plotting_job(&ledger));
    let mut paused = false;
    g.bench_function("transition_store_only", |b| {
        b.iter(|| {
            let event = if paused {
                JobEvent::Resume
            } else {
                JobEvent::Pause
            };
            paused = !paused;
            rt.block_on(store.transition(request(&id, event))).unwrap()
        });
    });
    g.finish();
    rt.block_on(store.close());
}

criterion_group!(benches, bench);
criterion_main!(benches);
