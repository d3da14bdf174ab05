//! The daemon's job record across a crash: jobs submitted and moved through the public API are in
//! SQLite and in their journals, and a daemon started on the same workspace after a crash brings a
//! plotting job back as `PAUSED` (interrupted) with its resume point.

use plotty_host::daemon::notify::Notifier;
use plotty_host::daemon::{Daemon, Parts};
use plotty_host::events::{self, DaemonEvent};
use plotty_host::job::{JobEvent, JobState, Reason};
use plotty_host::journal::{self, EntryKind};
use plotty_host::ledger::Ledger;
use plotty_host::settings::Settings;
use plotty_host::store::{NewJob, ResumePoint, Store, TransitionRequest};
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

#[tokio::test]
async fn a_plotting_job_survives_a_crash_as_paused_with_its_resume_point() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::defaults_for(dir.path());
    let db = settings.database.path.clone();
    std::fs::create_dir_all(dir.path()).unwrap();

    // First life: submit, run the pipeline, start plotting, record progress, then "crash"
    // (the store is dropped without any shutdown step).
    let (id, point) = {
        let (store, _) = Store::open(&db).unwrap();
        let bus = events::bus();
        let mut rx = bus.subscribe();
        let ledger = Ledger::new(store, dir.path(), bus, None);
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
    let (store, _) = Store::open(&db).unwrap();
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

    let journal = journal::read(&journal::path(&dir.path().join("jobs"), id.as_str())).unwrap();
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
        "SQLite and the journal agree"
    );
    for (row, line) in events.iter().zip(&journal.entries) {
        assert_eq!(row.to_state, line.to_state);
        assert_eq!(row.at, line.timestamp);
    }
    let (_tx, rx) = tokio::sync::mpsc::channel(1);
    drop(_tx);
    daemon.run(rx).await.unwrap();
}
