//! Jobs claimed per second by 8 concurrent claimers (issue 15, several daemons on one queue).
//!
//! Eight "daemons", each with its own store handle (its own connection pool on PostgreSQL, its
//! own connection and store thread on SQLite) and one plotter, race to claim the released
//! `READY` jobs of one database until none is left, as a daemon's queue claims: for its plotter
//! (`Claim::profile`, the path every daemon takes), over mixed requirements — a third of the
//! jobs ask for nothing, a third for the tag `a3` (half the plotters have it), a third for one
//! plotter by name. Each claim is one transaction that picks the head job the plotter meets
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL, one writer at a time on SQLite), arms it and writes
//! its lease. Setting the jobs up is not timed. Every job must be claimed exactly once, by a
//! plotter that meets it, or the bench fails.
//!
//! PostgreSQL runs on a throwaway cluster (`plotty_host::testing::postgres`: Unix socket, fsync
//! off); SQLite on a file in the temporary directory with the store's own settings (WAL,
//! `synchronous = FULL`), so its figure includes a disk flush per claim.
//! Run: `cargo bench --bench claim`. Prints jobs/s per backend (median of the rounds).

// Benchmark code: a failed expectation aborts the run, which is what we want.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Instant;

use plotty_host::devices::registry::{Profile, Requirements};
use plotty_host::job::{JobEvent, JobId, Reason};
use plotty_host::store::{Claim, JobStore, NewJob, PgStore, Store, TransitionRequest};
use serde_json::{Value, json};

#[path = "quick.rs"]
mod quick;

const CLAIMERS: usize = 8;

fn main() {
    let (jobs, rounds) = if quick::quick() { (40, 1) } else { (400, 5) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut sqlite_rates = Vec::new();
    let mut pg_rates = Vec::new();
    for _ in 0..rounds {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plotty.db");
        sqlite_rates.push(rt.block_on(round(jobs, || {
            let path = path.clone();
            async move { JobStore::Sqlite(Store::open(&path).unwrap().0) }
        })));
        let Some(url) =
            plotty_host::testing::postgres::database_or_skip("bench claim (PostgreSQL)")
        else {
            continue;
        };
        pg_rates.push(rt.block_on(round(jobs, || {
            let url = url.clone();
            async move { JobStore::Postgres(PgStore::connect(&url, 2).await.unwrap().0) }
        })));
    }
    report("SQLite", &mut sqlite_rates, jobs);
    report("PostgreSQL", &mut pg_rates, jobs);
}

fn report(backend: &str, rates: &mut [f64], jobs: usize) {
    if rates.is_empty() {
        return;
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "claim/{backend}: {CLAIMERS} claimers, {jobs} jobs: median {:.0} jobs/s (min {:.0}, max {:.0}, {} rounds)",
        rates[rates.len() / 2],
        rates[0],
        rates[rates.len() - 1],
        rates.len()
    );
}

/// Sets up `jobs` released READY jobs, then times 8 claimers taking them all; jobs per second.
async fn round<F, Fut>(jobs: usize, open: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = JobStore>,
{
    let setup = open().await;
    let mut ids = BTreeSet::new();
    for i in 0..jobs {
        let requirements = match i % 3 {
            0 => Requirements::default(),
            1 => Requirements {
                tags: vec!["a3".into()],
                ..Requirements::default()
            },
            _ => Requirements {
                device: Some(plotter(i % CLAIMERS)),
                ..Requirements::default()
            },
        };
        let (job, _) = setup
            .insert_job(NewJob {
                name: format!("job {i}"),
                metadata: json!({ "start": true }),
                requirements,
                ..NewJob::default()
            })
            .await
            .unwrap();
        for event in [
            JobEvent::Enqueue,
            JobEvent::Analyzed,
            JobEvent::Optimized,
            JobEvent::Prepared,
        ] {
            setup
                .transition(TransitionRequest {
                    job_id: job.id.clone(),
                    event,
                    reason: Reason::Pipeline,
                    error: None,
                    metadata: Value::Null,
                })
                .await
                .unwrap();
        }
        ids.insert(job.id);
    }
    let mut daemons = Vec::new();
    for _ in 0..CLAIMERS {
        daemons.push(open().await);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (d, store) in daemons.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut mine: Vec<JobId> = Vec::new();
            let profile = Profile {
                name: plotter(d),
                model: 1,
                tags: if d % 2 == 0 {
                    vec!["a3".into()]
                } else {
                    Vec::new()
                },
            };
            let claim = Claim {
                owner: format!("daemon{d}"),
                device_id: Some(profile.name.clone()),
                profile: Some(profile.clone()),
                now_ms: 0,
                ttl_ms: 60_000,
            };
            while let Some((job, _)) = store.claim_next(claim.clone()).await.unwrap() {
                assert!(
                    profile.meets(&job.requirements),
                    "{} claimed a job it does not meet",
                    profile.name
                );
                mine.push(job.id);
            }
            store.close().await;
            mine
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(claimed.len(), jobs, "every job claimed once");
    assert_eq!(claimed.into_iter().collect::<BTreeSet<_>>(), ids);
    setup.close().await;
    jobs as f64 / elapsed
}

/// The name of daemon `d`'s plotter.
fn plotter(d: usize) -> String {
    format!("plotter{d}")
}
