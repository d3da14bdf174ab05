//! The daemon's job record across a crash: jobs submitted and moved through the public API are in
//! the database and in their journals, and a daemon started on the same workspace after a crash
//! brings a plotting job back as `PAUSED` (interrupted) with its resume point. Run on SQLite and
//! on PostgreSQL (a throwaway cluster; skipped loudly without PostgreSQL binaries).

// Test code: a failed expectation is a failed test (the helpers below run outside `#[test]`).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use plotty_host::daemon::notify::Notifier;
use plotty_host::daemon::{Daemon, Parts};
use plotty_host::events::{self, DaemonEvent};
use plotty_host::job::{JobEvent, JobState, Reason};
use plotty_host::journal::{self, EntryKind};
use plotty_host::ledger::Ledger;
use plotty_host::settings::Settings;
use plotty_host::store::{JobStore, NewJob, PgStore, ResumePoint, Store, TransitionRequest};
use serde_json::Value;

fn req(id: &plotty_host::job::JobId, event: JobEvent, reason: Reason) -> TransitionRequest {
    TransitionRequest {
        job_id: id.clone(),
        event,
        reason,
        error: None,
        metadata: Value::Null,
    }
}

/// Where the daemon's jobs are.
enum Db {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Db {
    async fn open(&self) -> JobStore {
        match self {
            Self::Sqlite(path) => Store::open(path).unwrap().0.into(),
            Self::Postgres(url) => PgStore::connect(url, 4).await.unwrap().0.into(),
        }
    }
}

#[tokio::test]
async fn a_plotting_job_survives_a_crash_as_paused_with_its_resume_point() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::Sqlite(Settings::defaults_for(dir.path()).database.path);
    survives_a_crash(dir.path(), db).await;
}

#[tokio::test]
async fn on_postgresql_a_plotting_job_survives_a_crash_as_paused_with_its_resume_point() {
    let Some(url) = plotty_host::testing::postgres::database_or_skip(
        "e2e::daemon_jobs::on_postgresql_a_plotting_job_survives_a_crash_as_paused_with_its_resume_point",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    survives_a_crash(dir.path(), Db::Postgres(url)).await;
}

async fn survives_a_crash(dir: &std::path::Path, db: Db) {
    let settings = Settings::defaults_for(dir);
    std::fs::create_dir_all(dir).unwrap();

    // First life: submit, run the pipeline, start plotting, record progress, then "crash"
    // (the store is dropped without any shutdown step).
    let (id, point) = {
        let store = db.open().await;
        let bus = events::bus();
        let mut rx = bus.subscribe();
        let ledger = Ledger::new(store, dir, bus, None);
        let job = ledger
            .submit(NewJob {
                name: "hatch_200.svg".into(),
                priority: 2,
                ..NewJob::default()
            })
            .await
            .unwrap();
        for event in [
            JobEvent::Enqueue,
            JobEvent::Analyzed,
            JobEvent::Optimized,
            JobEvent::Prepared,
            JobEvent::Arm,
            JobEvent::Start,
        ] {
            ledger
                .apply(req(&job.id, event, Reason::Pipeline))
                .await
                .unwrap();
        }
        let point = ResumePoint {
            layer: 0,
            stroke: 117,
            vertex: 1,
            pen_down: true,
            position: None,
            recorded_at: plotty_host::timestamp::now(),
            streaming: true,
        };
        ledger
            .checkpoint(job.id.as_str(), point.clone(), false)
            .await
            .unwrap();
        let mut seen = Vec::new();
        while let Ok(DaemonEvent::JobStateChanged(c)) = rx.try_recv() {
            seen.push(c.to);
        }
        assert_eq!(seen.last(), Some(&JobState::Plotting));
        assert_eq!(seen.len(), 7);
        (job.id, point)
    };

    // Second life: the daemon starts on the same workspace.
    let store = db.open().await;
    let parts = Parts {
        settings,
        sources: None,
        store: store.clone(),
        listener: None,
        logging: None,
        notifier: Notifier::default(),
    };
    let daemon = Daemon::start(parts, Vec::new()).await.unwrap();
    let job = store.job(id.as_str()).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Paused);
    assert_eq!(job.state_reason.as_deref(), Some("interrupted"));
    assert_eq!(job.resume, Some(point));

    // Resuming is an ordinary transition from there.
    let resumed = daemon
        .ledger()
        .apply(req(&id, JobEvent::Resume, Reason::User))
        .await
        .unwrap();
    assert_eq!(resumed.to, JobState::Plotting);

    let journal = journal::read(&journal::path(&dir.join("jobs"), id.as_str())).unwrap();
    assert!(journal.skipped.is_empty());
    let kinds: Vec<_> = journal.entries.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == EntryKind::StateChange)
            .count(),
        9
    );
    assert!(kinds.contains(&EntryKind::Recovery));
    let events = store.events(id.as_str()).await.unwrap();
    assert_eq!(
        events.len(),
        journal.entries.len(),
        "the database and the journal agree"
    );
    for (row, line) in events.iter().zip(&journal.entries) {
        assert_eq!(row.to_state, line.to_state);
        assert_eq!(row.at, line.timestamp);
    }
    let (_tx, rx) = tokio::sync::mpsc::channel(1);
    drop(_tx);
    daemon.run(rx).await.unwrap();
}
