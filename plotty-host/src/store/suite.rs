//! The store test suite, run against both backends: every test below is an `async fn` over a
//! [`Fixture`], and [`both!`] makes a `sqlite::NAME` and a `postgres::NAME` test of each. The
//! PostgreSQL ones run on a throwaway cluster ([`crate::testing::postgres`]) and skip loudly
//! without PostgreSQL binaries (a failure under `CI=true`).

use std::collections::BTreeSet;

use plotty_motion::kinematics::{MotorSteps, Point};
use serde_json::{Value, json};

use super::jobs::{Claim, Layer, MAX_NAME_LEN};
use super::{
    JobStore, MachinePosition, NewJob, PgStore, ResumePoint, StateChange, Store, StoreError,
    TransitionRequest, migrate,
};
use crate::job::{JobEvent, JobId, JobState, Reason};

/// A database for one test: a SQLite file in a temporary directory or a fresh PostgreSQL database.
enum Fixture {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Fixture {
    fn sqlite() -> Self {
        Self::Sqlite(tempfile::tempdir().unwrap())
    }

    fn postgres(test: &str) -> Option<Self> {
        crate::testing::postgres::database_or_skip(&format!("store::suite::postgres::{test}"))
            .map(Self::Postgres)
    }

    /// A new handle on the fixture's database (several may be open at once).
    async fn open(&self) -> JobStore {
        match self {
            Self::Sqlite(dir) => {
                JobStore::Sqlite(Store::open(&dir.path().join("plotty.db")).unwrap().0)
            }
            Self::Postgres(url) => JobStore::Postgres(PgStore::connect(url, 4).await.unwrap().0),
        }
    }

    /// Runs `sql` outside the store's API (to try what the schema must refuse).
    async fn raw(&self, store: &JobStore, sql: &'static str) -> Result<(), StoreError> {
        match store {
            JobStore::Sqlite(s) => s.call(move |c| Ok(c.execute_batch(sql)?)).await,
            JobStore::Postgres(p) => p.batch(sql).await,
        }
    }
}

/// A `sqlite::NAME` and a `postgres::NAME` test for each suite function.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&super::Fixture::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(fixture) = super::Fixture::postgres(stringify!($name)) {
                        super::$name(&fixture).await;
                    }
                }
            )*
        }
    };
}

both!(
    state_changes_and_events_move_together,
    event_rows_are_append_only,
    failing_records_the_error_and_queueing_a_retry_clears_it,
    queue_order_is_priority_then_submission,
    interrupted_jobs_come_back_paused_with_their_resume_point,
    bad_names_are_refused,
    only_final_jobs_are_deleted_with_their_history,
    metadata_estimates_layers_and_devices_round_trip,
    racing_daemons_claim_each_job_once,
    claims_take_the_head_released_job,
    an_expired_lease_leaves_the_job_paused_interrupted,
    a_lease_ends_with_the_job,
    reopening_migrates_nothing,
    presets_are_saved_replaced_listed_and_deleted,
    a_claimed_job_names_its_daemon_and_its_svg_is_shared,
    claims_take_the_head_job_the_plotter_meets,
);

async fn add(s: &JobStore, name: &str, priority: i32, start: bool) -> JobId {
    let new = NewJob {
        name: name.into(),
        priority,
        metadata: json!({ "start": start }),
        ..NewJob::default()
    };
    s.insert_job(new).await.unwrap().0.id
}

async fn apply(s: &JobStore, id: &JobId, event: JobEvent) -> Result<StateChange, StoreError> {
    s.transition(TransitionRequest {
        job_id: id.clone(),
        event,
        reason: Reason::Pipeline,
        error: None,
        metadata: Value::Null,
    })
    .await
}

async fn to_ready(s: &JobStore, id: &JobId) {
    for e in [
        JobEvent::Enqueue,
        JobEvent::Analyzed,
        JobEvent::Optimized,
        JobEvent::Prepared,
    ] {
        apply(s, id, e).await.unwrap();
    }
}

async fn state(s: &JobStore, id: &JobId) -> JobState {
    s.job(id.as_str()).await.unwrap().unwrap().state
}

fn claim(owner: &str, now_ms: i64) -> Claim {
    Claim {
        owner: owner.into(),
        device_id: Some(format!("{owner}-plotter")),
        profile: None,
        now_ms,
        ttl_ms: 500,
    }
}

async fn state_changes_and_events_move_together(fx: &Fixture) {
    let s = fx.open().await;
    let id = add(&s, "flower", 0, false).await;
    let ch = apply(&s, &id, JobEvent::Enqueue).await.unwrap();
    assert_eq!((ch.from, ch.to), (Some(JobState::New), JobState::Queued));
    assert_eq!(ch.job_name, "flower");
    let err = apply(&s, &id, JobEvent::Start).await.unwrap_err();
    assert!(matches!(err, StoreError::Transition { .. }), "{err}");
    assert_eq!(state(&s, &id).await, JobState::Queued);
    let ev = s.events(id.as_str()).await.unwrap();
    assert_eq!(ev.len(), 2, "the refused transition left no event");
    assert_eq!(ev[0].to_state.as_deref(), Some("NEW"));
    assert_eq!(ev[0].from_state, None);
    assert_eq!(ev[1].from_state.as_deref(), Some("NEW"));
    assert!(ev[0].id < ev[1].id && ch.event_id == ev[1].id);
    assert!(matches!(
        apply(&s, &JobId::parse("nope").unwrap(), JobEvent::Abort).await,
        Err(StoreError::UnknownJob(_))
    ));
}

async fn event_rows_are_append_only(fx: &Fixture) {
    let s = fx.open().await;
    add(&s, "a", 0, false).await;
    let err = fx
        .raw(&s, "UPDATE job_events SET reason = 'x'")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("append-only") || format!("{err:?}").contains("append-only"),
        "{err:?}"
    );
}

async fn failing_records_the_error_and_queueing_a_retry_clears_it(fx: &Fixture) {
    let s = fx.open().await;
    let id = add(&s, "a", 3, true).await;
    s.transition(TransitionRequest {
        job_id: id.clone(),
        event: JobEvent::Fail,
        reason: Reason::Error,
        error: Some("SVG has no paths".into()),
        metadata: json!({"stage": "import"}),
    })
    .await
    .unwrap();
    let failed = s.job(id.as_str()).await.unwrap().unwrap();
    assert_eq!(failed.error.as_deref(), Some("SVG has no paths"));
    assert!(failed.finished_at.is_some());
    s.set_layers(
        id.as_str(),
        vec![Layer {
            index: 0,
            name: "1 outline".into(),
            ..Layer::default()
        }],
    )
    .await
    .unwrap();
    let (new, changes) = s.retry(id.as_str()).await.unwrap();
    assert_eq!(new.state, JobState::Queued);
    assert_eq!(new.retry_of.as_deref(), Some(id.as_str()));
    assert_eq!((new.priority, new.error.clone()), (3, None));
    assert_eq!(new.metadata.get("start"), None, "a retry waits for a start");
    assert_eq!(changes.len(), 2);
    assert_eq!(s.layers(new.id.as_str()).await.unwrap().len(), 1);
    assert_eq!(state(&s, &id).await, JobState::Failed);
    assert_eq!(s.events(id.as_str()).await.unwrap().len(), 2);
    assert!(matches!(
        s.retry(new.id.as_str()).await,
        Err(StoreError::NotRetryable { .. })
    ));
}

async fn queue_order_is_priority_then_submission(fx: &Fixture) {
    let s = fx.open().await;
    let a = add(&s, "a", 0, false).await;
    let b = add(&s, "b", 5, false).await;
    let d = add(&s, "d", 0, false).await;
    let e = add(&s, "e", 5, false).await;
    for id in [&a, &b, &d, &e] {
        to_ready(&s, id).await;
    }
    let order: Vec<_> = s
        .jobs(vec![JobState::Ready])
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(order, [b, e, a, d]);
    assert_eq!(s.jobs(Vec::new()).await.unwrap().len(), 4);
    assert!(s.jobs(vec![JobState::Paused]).await.unwrap().is_empty());
}

async fn interrupted_jobs_come_back_paused_with_their_resume_point(fx: &Fixture) {
    let s = fx.open().await;
    let plotting = add(&s, "p", 0, false).await;
    let armed = add(&s, "a", 0, false).await;
    let ready = add(&s, "r", 0, false).await;
    for id in [&plotting, &armed, &ready] {
        to_ready(&s, id).await;
    }
    apply(&s, &plotting, JobEvent::Arm).await.unwrap();
    apply(&s, &plotting, JobEvent::Start).await.unwrap();
    apply(&s, &armed, JobEvent::Arm).await.unwrap();
    let point = ResumePoint {
        layer: 1,
        stroke: 42,
        vertex: 7,
        pen_down: true,
        position: Some(MachinePosition {
            steps: MotorSteps::new(8000, -1600),
            point: Point::new(40.0, 60.0),
        }),
        recorded_at: "2026-01-01T00:00:00.000Z".into(),
        streaming: true,
    };
    s.set_resume_point(plotting.as_str(), point.clone())
        .await
        .unwrap();
    let recovered = s.recover_interrupted().await.unwrap();
    assert_eq!(recovered.len(), 2);
    for (change, _) in &recovered {
        assert_eq!(change.to, JobState::Paused);
        assert_eq!(change.reason, Reason::Interrupted);
    }
    let p = s.job(plotting.as_str()).await.unwrap().unwrap();
    assert_eq!(p.state, JobState::Paused);
    assert_eq!(p.state_reason.as_deref(), Some("interrupted"));
    assert_eq!(p.resume, Some(point.clone()));
    assert!(p.started_at.is_some());
    // A manual action on the plotter makes the point not searchable, in the database.
    assert_eq!(s.clear_streaming("simulator").await.unwrap(), 1);
    let p = s.job(plotting.as_str()).await.unwrap().unwrap();
    assert_eq!(
        p.resume,
        Some(ResumePoint {
            streaming: false,
            ..point
        })
    );
    let kinds: Vec<_> = s
        .events(plotting.as_str())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds.last().map(String::as_str), Some("recovery"));
    assert_eq!(state(&s, &ready).await, JobState::Ready);
    assert!(s.recover_interrupted().await.unwrap().is_empty());
}

async fn bad_names_are_refused(fx: &Fixture) {
    let s = fx.open().await;
    for name in ["", "  ", "a\nb", &"x".repeat(MAX_NAME_LEN + 1)] {
        let new = NewJob {
            name: name.into(),
            ..NewJob::default()
        };
        assert!(
            matches!(s.insert_job(new).await, Err(StoreError::Invalid(_))),
            "{name:?}"
        );
    }
    let new = NewJob {
        name: "a; touch /tmp/x'); DROP TABLE jobs; --".into(),
        ..NewJob::default()
    };
    let (job, _) = s.insert_job(new.clone()).await.unwrap();
    assert_eq!(job.name, new.name);
}

async fn only_final_jobs_are_deleted_with_their_history(fx: &Fixture) {
    let s = fx.open().await;
    let live = add(&s, "live", 0, false).await;
    let done = add(&s, "done", 0, false).await;
    apply(&s, &done, JobEvent::Abort).await.unwrap();
    let retry = s.retry(done.as_str()).await.unwrap().0.id;
    let err = s.delete_job(live.as_str()).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFinished { .. }), "{err}");
    let gone = s.delete_job(done.as_str()).await.unwrap();
    assert_eq!(gone.state, JobState::Aborted);
    assert!(s.job(done.as_str()).await.unwrap().is_none());
    assert!(s.events(done.as_str()).await.unwrap().is_empty());
    let r = s.job(retry.as_str()).await.unwrap().unwrap();
    assert_eq!(r.retry_of, None, "the retry outlives the job it retried");
    assert!(matches!(
        s.delete_job(done.as_str()).await,
        Err(StoreError::UnknownJob(_))
    ));
    let counts = s.state_counts().await.unwrap();
    assert_eq!(counts.get(&JobState::New), Some(&1));
    assert_eq!(counts.get(&JobState::Queued), Some(&1));
    assert_eq!(counts.len(), 2);
}

async fn metadata_estimates_layers_and_devices_round_trip(fx: &Fixture) {
    let s = fx.open().await;
    let id = add(&s, "m", 0, false).await;
    s.set_metadata(id.as_str(), "start", Value::Bool(true))
        .await
        .unwrap();
    s.set_estimates(id.as_str(), Some(12.5), None)
        .await
        .unwrap();
    s.set_estimates(id.as_str(), None, Some(10.25))
        .await
        .unwrap();
    s.set_simulated(id.as_str()).await.unwrap();
    s.set_source_path(id.as_str(), "/w/jobs/x/source.svg".into())
        .await
        .unwrap();
    let layers = vec![
        Layer {
            index: 0,
            name: "1 outline".into(),
            number: Some(1),
            color: Some("#ff0000".into()),
            pause_before: true,
            speed_pct: Some(50.0),
            height_pct: Some(40.0),
            delay_after_ms: Some(250),
            strokes: Some(3),
            points: Some(300),
            pen_down_mm: Some(12.5),
            estimate_s: Some(4.5),
        },
        Layer {
            index: 1,
            name: "2 fill".into(),
            ..Layer::default()
        },
    ];
    s.set_layers(id.as_str(), layers.clone()).await.unwrap();
    assert_eq!(s.layers(id.as_str()).await.unwrap(), layers);
    let job = s.job(id.as_str()).await.unwrap().unwrap();
    assert_eq!(job.metadata["start"], true);
    assert_eq!(
        (job.estimate_pre_s, job.estimate_post_s),
        (Some(12.5), Some(10.25))
    );
    assert!(job.simulated);
    assert_eq!(job.source_path.as_deref(), Some("/w/jobs/x/source.svg"));
    assert_eq!(s.device_of(id.as_str()).await.unwrap(), None);
    to_ready(&s, &id).await;
    s.claim_next(claim("d1", 0)).await.unwrap().unwrap();
    assert_eq!(
        s.device_of(id.as_str()).await.unwrap().as_deref(),
        Some("d1-plotter")
    );
    for unknown in [
        s.set_estimates("nope", Some(1.0), None).await,
        s.set_simulated("nope").await,
        s.set_metadata("nope", "k", Value::Null).await,
        s.set_resume_point(
            "nope",
            ResumePoint {
                layer: 0,
                stroke: 0,
                vertex: 0,
                pen_down: false,
                position: None,
                recorded_at: String::new(),
                streaming: false,
            },
        )
        .await,
    ] {
        assert!(
            matches!(unknown, Err(StoreError::UnknownJob(_))),
            "{unknown:?}"
        );
    }
}

/// Two daemons (two store handles on one database), four claimers each, race for 24 released
/// jobs: every job is claimed exactly once, by one owner, and ends ARMED under its lease.
async fn racing_daemons_claim_each_job_once(fx: &Fixture) {
    let daemons = [fx.open().await, fx.open().await];
    let mut ids = BTreeSet::new();
    for i in 0..24 {
        let id = add(&daemons[i % 2], &format!("job {i}"), 0, true).await;
        to_ready(&daemons[i % 2], &id).await;
        ids.insert(id);
    }
    let mut tasks = Vec::new();
    for (d, store) in daemons.iter().enumerate() {
        for c in 0..4 {
            let store = store.clone();
            let owner = format!("daemon{d}-claimer{c}");
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some((job, change)) =
                    store.claim_next(claim(&owner, 1_000)).await.unwrap()
                {
                    assert_eq!(job.state, JobState::Armed);
                    assert_eq!(change.to, JobState::Armed);
                    assert_eq!(
                        job.lease.as_ref().map(|l| l.owner.as_str()),
                        Some(owner.as_str())
                    );
                    mine.push(job.id);
                }
                (owner, mine)
            }));
        }
    }
    let mut claimed = Vec::new();
    for t in tasks {
        let (owner, mine) = t.await.unwrap();
        for id in mine {
            claimed.push((id, owner.clone()));
        }
    }
    assert_eq!(
        claimed.len(),
        ids.len(),
        "each job claimed once: {claimed:?}"
    );
    let distinct: BTreeSet<_> = claimed.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(distinct, ids);
    for (id, owner) in &claimed {
        let job = daemons[0].job(id.as_str()).await.unwrap().unwrap();
        assert_eq!(job.lease.unwrap().owner, *owner);
        let arms = daemons[1]
            .events(id.as_str())
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.to_state.as_deref() == Some("ARMED"))
            .count();
        assert_eq!(arms, 1, "job {id} armed once");
    }
}

async fn claims_take_the_head_released_job(fx: &Fixture) {
    let s = fx.open().await;
    let waiting = add(&s, "not started", 9, false).await;
    let low = add(&s, "low", 0, true).await;
    let high = add(&s, "high", 5, true).await;
    let queued = add(&s, "queued", 9, true).await;
    for id in [&waiting, &low, &high] {
        to_ready(&s, id).await;
    }
    apply(&s, &queued, JobEvent::Enqueue).await.unwrap();
    let (first, change) = s.claim_next(claim("d1", 0)).await.unwrap().unwrap();
    assert_eq!(first.id, high);
    assert_eq!(change.metadata["lease_owner"], "d1");
    assert_eq!(change.metadata["device_id"], "d1-plotter");
    assert_eq!(first.lease.as_ref().map(|l| l.expires_ms), Some(500));
    let (second, _) = s.claim_next(claim("d2", 0)).await.unwrap().unwrap();
    assert_eq!(second.id, low);
    assert!(s.claim_next(claim("d3", 0)).await.unwrap().is_none());
    assert_eq!(
        state(&s, &waiting).await,
        JobState::Ready,
        "waits for its start"
    );
}

/// Schema 7: a job keeps what it asks of its plotter (also in a retry), a claim for a plotter
/// takes the head job that plotter meets (jobs ahead of it for other plotters wait), and the
/// job records the plotter it was armed on.
async fn claims_take_the_head_job_the_plotter_meets(fx: &Fixture) {
    use crate::devices::registry::{Profile, Requirements};
    let s = fx.open().await;
    let job = |name: &str, req: Requirements| NewJob {
        name: name.into(),
        metadata: json!({ "start": true }),
        requirements: req,
        ..NewJob::default()
    };
    let for_right = Requirements {
        device: Some("right".into()),
        ..Requirements::default()
    };
    let red_a3 = Requirements {
        model: Some(2),
        tags: vec!["red".into(), "A3".into()],
        ..Requirements::default()
    };
    let mut ids = Vec::new();
    for (name, req) in [
        ("for right", for_right.clone()),
        ("red a3", red_a3.clone()),
        ("any", Requirements::default()),
    ] {
        let (record, _) = s.insert_job(job(name, req.clone())).await.unwrap();
        assert_eq!(record.requirements, req, "stored as asked");
        assert_eq!(record.device, None);
        to_ready(&s, &record.id).await;
        ids.push(record.id);
    }
    let plotter = |name: &str, model: u8, tags: &[&str]| Claim {
        profile: Some(Profile {
            name: name.into(),
            model,
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        }),
        device_id: Some(name.into()),
        ..claim("d1", 0)
    };
    // `left` (model 2, red, a3) passes over the job for `right` and takes the next it meets.
    let (first, change) = s
        .claim_next(plotter("left", 2, &["a3", "red"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.id, ids[1]);
    assert_eq!(first.device.as_deref(), Some("left"), "armed on left");
    assert_eq!(change.metadata["device_id"], "left");
    // `other` (model 1, no tags) meets only the job that asks nothing.
    let (second, _) = s
        .claim_next(plotter("other", 1, &[]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.id, ids[2]);
    assert!(
        s.claim_next(plotter("other", 1, &[]))
            .await
            .unwrap()
            .is_none()
    );
    let (third, _) = s
        .claim_next(plotter("RIGHT", 1, &[]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(third.id, ids[0], "names compare without letter case");
    // Tags alone: every tag asked among the plotter's, letter case aside.
    let blue = Requirements {
        tags: vec!["Blue".into()],
        ..Requirements::default()
    };
    let (record, _) = s.insert_job(job("blue", blue)).await.unwrap();
    to_ready(&s, &record.id).await;
    assert!(
        s.claim_next(plotter("plain", 1, &["a3", "red"]))
            .await
            .unwrap()
            .is_none(),
        "a plotter without the tag passes the job over"
    );
    let (tagged, _) = s
        .claim_next(plotter("inked", 1, &["red", "BLUE"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tagged.id, record.id);
    // A retry asks what the job asked.
    apply(&s, &first.id, JobEvent::Start).await.unwrap();
    apply(&s, &first.id, JobEvent::Fail).await.unwrap();
    let (retry, _) = s.retry(first.id.as_str()).await.unwrap();
    assert_eq!(retry.requirements, red_a3);
    let kept = s.job(first.id.as_str()).await.unwrap().unwrap();
    assert_eq!(kept.device.as_deref(), Some("left"), "kept after the plot");
}

/// Schema 6: a job records the daemon it was submitted to and the one that claimed it (kept
/// after its lease ends), and its SVG is in the database for every daemon, copied with a retry
/// and gone with the job.
async fn a_claimed_job_names_its_daemon_and_its_svg_is_shared(fx: &Fixture) {
    let s = fx.open().await;
    let (job, _) = s
        .insert_job(NewJob {
            name: "shared.svg".into(),
            metadata: json!({ "start": true }),
            submitted_by: Some("left".into()),
            ..NewJob::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (job.submitted_by.as_deref(), job.daemon.as_deref()),
        (Some("left"), None)
    );
    let id = job.id;
    assert_eq!(s.source_svg(id.as_str()).await.unwrap(), None);
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg'><path d='M0 0L1 1'/></svg>".to_vec();
    s.set_source_svg(id.as_str(), svg.clone()).await.unwrap();
    assert_eq!(s.source_svg(id.as_str()).await.unwrap(), Some(svg.clone()));
    assert!(matches!(
        s.set_source_svg("nosuchjob", svg.clone()).await,
        Err(StoreError::UnknownJob(_))
    ));
    to_ready(&s, &id).await;
    let (claimed, _) = s.claim_next(claim("right", 0)).await.unwrap().unwrap();
    assert_eq!(claimed.daemon.as_deref(), Some("right"));
    apply(&s, &id, JobEvent::Start).await.unwrap();
    apply(&s, &id, JobEvent::Fail).await.unwrap();
    let failed = s.job(id.as_str()).await.unwrap().unwrap();
    assert_eq!(
        (failed.lease, failed.daemon.as_deref()),
        (None, Some("right")),
        "the lease ends with the plot, the daemon that plotted stays"
    );
    let (retry, _) = s.retry(id.as_str()).await.unwrap();
    assert_eq!(
        (retry.submitted_by.as_deref(), retry.daemon.as_deref()),
        (Some("left"), None)
    );
    assert_eq!(s.source_svg(retry.id.as_str()).await.unwrap(), Some(svg));
    s.delete_job(id.as_str()).await.unwrap();
    assert_eq!(s.source_svg(id.as_str()).await.unwrap(), None);
}

/// A daemon claims a job, plots, renews its lease, then dies: once the lease has expired (the
/// clock is the caller's) the job is PAUSED (interrupted) with its resume point, the dead
/// daemon's late renewal is refused, and no other daemon can claim the job.
async fn an_expired_lease_leaves_the_job_paused_interrupted(fx: &Fixture) {
    let s = fx.open().await;
    let other = fx.open().await;
    let id = add(&s, "long plot", 0, true).await;
    let next = add(&s, "next", 0, true).await;
    to_ready(&s, &id).await;
    let (job, _) = s.claim_next(claim("dies", 1_000)).await.unwrap().unwrap();
    assert_eq!(job.id, id);
    apply(&s, &id, JobEvent::Start).await.unwrap();
    let point = ResumePoint {
        layer: 0,
        stroke: 7,
        vertex: 3,
        pen_down: true,
        position: None,
        recorded_at: "2026-01-01T00:00:01.000Z".into(),
        streaming: true,
    };
    s.set_resume_point(id.as_str(), point.clone())
        .await
        .unwrap();
    let lease = s
        .renew_lease(id.as_str(), "dies", 1_400, 500)
        .await
        .unwrap();
    assert_eq!(lease.expires_ms, 1_900);
    assert!(matches!(
        s.renew_lease(id.as_str(), "someone else", 1_400, 500).await,
        Err(StoreError::LeaseLost { .. })
    ));
    // Before the expiry nothing happens.
    assert!(other.expire_leases(1_899).await.unwrap().is_empty());
    assert_eq!(state(&s, &id).await, JobState::Plotting);
    // A renewal at the expiry comes too late, even before any sweep saw it: the owner must stop.
    assert!(matches!(
        s.renew_lease(id.as_str(), "dies", 1_900, 500).await,
        Err(StoreError::LeaseLost { .. })
    ));
    // The daemon died: no renewal. Another daemon's sweep after the expiry pauses the job.
    let expired = other.expire_leases(1_900).await.unwrap();
    assert_eq!(expired.len(), 1);
    let (change, _) = &expired[0];
    assert_eq!(
        (change.from, change.to),
        (Some(JobState::Plotting), JobState::Paused)
    );
    assert_eq!(change.reason, Reason::Interrupted);
    assert_eq!(change.metadata["lease_owner"], "dies");
    let paused = other.job(id.as_str()).await.unwrap().unwrap();
    assert_eq!(paused.state, JobState::Paused);
    assert_eq!(paused.state_reason.as_deref(), Some("interrupted"));
    assert_eq!(paused.resume, Some(point));
    assert_eq!(paused.lease, None);
    let last = other.events(id.as_str()).await.unwrap().pop().unwrap();
    assert_eq!(last.kind, "recovery");
    assert_eq!(last.metadata["lease_owner"], "dies");
    // The dead daemon's late renewal is refused; the job is never claimed again on its own.
    assert!(matches!(
        s.renew_lease(id.as_str(), "dies", 2_000, 500).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(other.expire_leases(10_000).await.unwrap().is_empty());
    assert!(
        other
            .claim_next(claim("alive", 2_000))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(state(&s, &id).await, JobState::Paused);
    // Other jobs go on as before.
    to_ready(&s, &next).await;
    let (claimed, _) = other
        .claim_next(claim("alive", 2_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, next);
}

/// A lease lives while the job is ARMED, PLOTTING or PAUSED on its daemon: completing the job or
/// handing it back to the queue (disarm) ends it, and a paused job's expired lease just ends.
async fn a_lease_ends_with_the_job(fx: &Fixture) {
    let s = fx.open().await;
    let done = add(&s, "done", 2, true).await;
    let back = add(&s, "back", 1, true).await;
    let paused = add(&s, "paused", 0, true).await;
    for id in [&done, &back, &paused] {
        to_ready(&s, id).await;
    }
    s.claim_next(claim("d", 0)).await.unwrap().unwrap();
    apply(&s, &done, JobEvent::Start).await.unwrap();
    apply(&s, &done, JobEvent::Complete).await.unwrap();
    assert_eq!(s.job(done.as_str()).await.unwrap().unwrap().lease, None);
    s.claim_next(claim("d", 0)).await.unwrap().unwrap();
    apply(&s, &back, JobEvent::Disarm).await.unwrap();
    assert_eq!(s.job(back.as_str()).await.unwrap().unwrap().lease, None);
    // Back in the queue, it is claimed again (before the lower-priority one).
    let (again, _) = s.claim_next(claim("e", 0)).await.unwrap().unwrap();
    assert_eq!(again.id, back);
    let (p, _) = s.claim_next(claim("d", 0)).await.unwrap().unwrap();
    assert_eq!(p.id, paused);
    apply(&s, &paused, JobEvent::Start).await.unwrap();
    apply(&s, &paused, JobEvent::Pause).await.unwrap();
    assert!(
        s.job(paused.as_str())
            .await
            .unwrap()
            .unwrap()
            .lease
            .is_some()
    );
    let expired = s.expire_leases(500).await.unwrap();
    // `back` (ARMED under e) is interrupted; `paused` stays PAUSED with its reason.
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].0.job_id, back);
    let p = s.job(paused.as_str()).await.unwrap().unwrap();
    assert_eq!((p.state, p.lease), (JobState::Paused, None));
    assert_eq!(p.state_reason.as_deref(), Some("pipeline"));
}

async fn reopening_migrates_nothing(fx: &Fixture) {
    let first = fx.open().await;
    add(&first, "kept", 0, false).await;
    first.close().await;
    let again = fx.open().await;
    assert_eq!(again.jobs(Vec::new()).await.unwrap().len(), 1);
    if let JobStore::Postgres(p) = &again {
        assert_eq!(p.schema_version().await.unwrap(), migrate::latest_version());
    }
}

/// Presets: saved by name (a second save replaces the options, keeps the creation time), listed
/// by name, seen by another handle on the same database, deleted once.
async fn presets_are_saved_replaced_listed_and_deleted(fx: &Fixture) {
    let s = fx.open().await;
    assert!(s.presets().await.unwrap().is_empty());
    let fine = s
        .save_preset(
            "fine liner",
            json!({"pen_pos_down": 30.0, "speed_pendown": 20.0}),
        )
        .await
        .unwrap();
    s.save_preset("brush", json!({"model": 2})).await.unwrap();
    let again = s
        .save_preset("fine liner", json!({"pen_pos_down": 35.0}))
        .await
        .unwrap();
    assert_eq!(again.created_at, fine.created_at);
    assert_eq!(again.options, json!({"pen_pos_down": 35.0}));
    let other = fx.open().await;
    let listed = other.presets().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["brush", "fine liner"]);
    assert_eq!(listed[1].options, json!({"pen_pos_down": 35.0}));
    assert!(matches!(
        s.save_preset(" ", json!({})).await,
        Err(StoreError::Invalid(_))
    ));
    let gone = s.delete_preset("brush").await.unwrap().unwrap();
    assert_eq!(gone.options, json!({"model": 2}));
    assert_eq!(s.delete_preset("brush").await.unwrap(), None);
    assert_eq!(other.presets().await.unwrap().len(), 1);
}

/// A daemon name is one live daemon's: a second daemon (another workspace or host) is refused
/// while the first renews its heartbeat, the first restarting is not, and the name is free
/// once the first stopped cleanly or its heartbeat lapsed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_daemon_name_belongs_to_one_live_daemon() {
    let Some(Fixture::Postgres(url)) = Fixture::postgres("postgres_a_daemon_name_belongs") else {
        return;
    };
    let (pg, _) = PgStore::connect(&url, 2).await.unwrap();
    let me = |workspace: &str, pid| super::DaemonIdentity {
        name: "left".into(),
        host: "studio".into(),
        workspace: workspace.into(),
        pid,
        plotters: Vec::new(),
    };
    let (first, second) = (me("/srv/a", 10), me("/srv/b", 20));
    pg.register_daemon(&first, 1_000, 500).await.unwrap();
    match pg.register_daemon(&second, 1_200, 500).await {
        Err(StoreError::NameInUse { workspace, pid, .. }) => {
            assert_eq!((workspace.as_str(), pid), ("/srv/a", 10));
        }
        other => panic!("a namesake was let in: {other:?}"),
    }
    // The first, restarted after a crash (same host and workspace), comes back at once.
    pg.register_daemon(&me("/srv/a", 11), 1_300, 500)
        .await
        .unwrap();
    assert!(pg.daemon_heartbeat(&first, 1_400).await.unwrap());
    // Its heartbeat lapsed: the name is free, and the first learns it was taken.
    pg.register_daemon(&second, 1_901, 500).await.unwrap();
    assert!(!pg.daemon_heartbeat(&first, 1_950).await.unwrap());
    // A clean stop frees it at once.
    pg.unregister_daemon(&second).await.unwrap();
    pg.register_daemon(&first, 1_960, 500).await.unwrap();
}

/// Issue 15: a plotter name is one live daemon's across the farm (letter case aside), an
/// expired daemon's names are free again, two unnamed plotters may share their id, and the
/// farm's plotters are listed with their daemons.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_plotter_name_belongs_to_one_live_daemon() {
    let Some(Fixture::Postgres(url)) = Fixture::postgres("postgres_a_plotter_name_belongs") else {
        return;
    };
    let (pg, _) = PgStore::connect(&url, 2).await.unwrap();
    let plotter = |name: &str, named| super::Plotter {
        name: name.into(),
        model: 2,
        tags: vec!["a3".into()],
        named,
    };
    let daemon = |name: &str, plotters| super::DaemonIdentity {
        name: name.into(),
        host: "studio".into(),
        workspace: format!("/srv/{name}"),
        pid: 10,
        plotters,
    };
    let a = daemon(
        "a",
        vec![plotter("left", true), plotter("simulator", false)],
    );
    pg.register_daemon(&a, 1_000, 500).await.unwrap();
    let b = daemon("b", vec![plotter("right", true), plotter("LEFT", true)]);
    match pg.register_daemon(&b, 1_200, 500).await {
        Err(e @ StoreError::PlotterNameInUse { .. }) => {
            let StoreError::PlotterNameInUse {
                ref plotter,
                ref daemon,
                ref me,
                ..
            } = e
            else {
                unreachable!()
            };
            assert_eq!(
                (plotter.as_str(), daemon.as_str(), me.as_str()),
                ("LEFT", "a", "b")
            );
            let text = e.to_string();
            assert!(text.contains("`a`") && text.contains("`b`"), "{text}");
        }
        other => panic!("a second `left` was let in: {other:?}"),
    }
    // Unnamed plotters may share an id (each daemon's lone simulator).
    let c = daemon("c", vec![plotter("simulator", false)]);
    pg.register_daemon(&c, 1_200, 500).await.unwrap();
    let farm = pg.farm_plotters(1_300, 500).await.unwrap();
    let names: Vec<(&str, &str)> = farm
        .iter()
        .map(|(d, p)| (d.as_str(), p.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [("a", "left"), ("a", "simulator"), ("c", "simulator")]
    );
    // a's heartbeat lapsed: its names are free, and it is no longer part of the farm.
    pg.register_daemon(&b, 1_501, 500).await.unwrap();
    let farm = pg.farm_plotters(1_600, 500).await.unwrap();
    assert!(farm.iter().all(|(d, _)| d != "a"), "{farm:?}");
}

/// A daemon that comes back holds its PAUSED jobs again: the others let its leases lapse while
/// it was down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_restarted_daemon_holds_its_paused_jobs_again() {
    let Some(Fixture::Postgres(url)) = Fixture::postgres("postgres_a_restarted_daemon_holds")
    else {
        return;
    };
    let (pg, _) = PgStore::connect(&url, 2).await.unwrap();
    let s = JobStore::Postgres(pg.clone());
    let id = add(&s, "paused", 0, true).await;
    to_ready(&s, &id).await;
    s.claim_next(claim("a", 0)).await.unwrap().unwrap();
    apply(&s, &id, JobEvent::Start).await.unwrap();
    apply(&s, &id, JobEvent::Pause).await.unwrap();
    // a is down: its lease lapses and is cleared; the job stays PAUSED and a's.
    assert!(s.expire_leases(10_000).await.unwrap().is_empty());
    let j = s.job(id.as_str()).await.unwrap().unwrap();
    assert_eq!(
        (j.state, j.lease, j.daemon.as_deref()),
        (JobState::Paused, None, Some("a"))
    );
    assert_eq!(pg.hold_paused("b", 20_000, 500).await.unwrap(), 0);
    assert_eq!(pg.hold_paused("a", 20_000, 500).await.unwrap(), 1);
    let j = s.job(id.as_str()).await.unwrap().unwrap();
    assert_eq!(
        j.lease.map(|l| (l.owner, l.expires_ms)),
        Some(("a".into(), 20_500))
    );
}

/// The two dialects' schemas have the same tables and columns once every migration is applied.
#[tokio::test]
async fn postgres_schema_matches_sqlite() {
    let Some(Fixture::Postgres(url)) = Fixture::postgres("postgres_schema_matches_sqlite") else {
        return;
    };
    let (pg, report) = PgStore::connect(&url, 1).await.unwrap();
    assert_eq!(
        report.migrated,
        migrate::POSTGRES_MIGRATIONS
            .iter()
            .map(|m| m.version)
            .collect::<Vec<_>>()
    );
    let (lite, _) = Store::open_in_memory().unwrap();
    let sqlite: Vec<String> = lite
        .call(|c| {
            let mut stmt = c.prepare(
                "SELECT m.name || '.' || p.name FROM sqlite_schema m, pragma_table_info(m.name) p
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY 1",
            )?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
        .unwrap();
    let mut sqlite = sqlite;
    sqlite.sort();
    assert_eq!(pg.columns().await.unwrap(), sqlite);
}

/// Another program's PostgreSQL database is refused and left alone.
#[tokio::test]
async fn postgres_refuses_a_foreign_database() {
    let Some(Fixture::Postgres(url)) = Fixture::postgres("postgres_refuses_a_foreign_database")
    else {
        return;
    };
    let (pg, _) = PgStore::connect(&url, 1).await.unwrap();
    pg.batch("DROP TABLE schema_migrations CASCADE")
        .await
        .unwrap();
    let err = PgStore::connect(&url, 1).await.err().unwrap();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
    pg.batch(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT);
         INSERT INTO schema_migrations VALUES (99, 'future', 'x')",
    )
    .await
    .unwrap();
    let err = PgStore::connect(&url, 1).await.err().unwrap();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
}

/// On PostgreSQL a daemon holds the jobs it arms and starts, renews only its own live leases,
/// and at start recovers only its own jobs, unheld ones and expired ones: never a job another
/// daemon is plotting.
#[tokio::test]
async fn postgres_daemons_hold_what_they_arm_and_recover_only_their_own() {
    let Some(fx) =
        Fixture::postgres("postgres_daemons_hold_what_they_arm_and_recover_only_their_own")
    else {
        return;
    };
    let Fixture::Postgres(url) = &fx else {
        return;
    };
    let (a, _) = PgStore::connect(url, 2).await.unwrap();
    let (b, _) = PgStore::connect(url, 2).await.unwrap();
    let any = fx.open().await;
    let (mine, theirs, unheld) = (
        add(&any, "a's", 0, true).await,
        add(&any, "b's", 0, true).await,
        add(&any, "nobody's", 0, true).await,
    );
    for id in [&mine, &theirs, &unheld] {
        to_ready(&any, id).await;
    }
    let req = |id: &JobId, event| TransitionRequest {
        job_id: id.clone(),
        event,
        reason: Reason::Pipeline,
        error: None,
        metadata: Value::Null,
    };
    a.transition_leased(req(&mine, JobEvent::Arm), "A", 1_000, 500)
        .await
        .unwrap();
    a.transition_leased(req(&mine, JobEvent::Start), "A", 1_100, 500)
        .await
        .unwrap();
    b.transition_leased(req(&theirs, JobEvent::Arm), "B", 1_000, 500)
        .await
        .unwrap();
    any.transition(req(&unheld, JobEvent::Arm)).await.unwrap();
    let lease = |id: &JobId| {
        let any = any.clone();
        let id = id.clone();
        async move { any.job(id.as_str()).await.unwrap().unwrap().lease }
    };
    assert_eq!(lease(&mine).await.unwrap().expires_ms, 1_600);
    assert_eq!(lease(&unheld).await, None);
    assert_eq!(a.renew_own("A", 1_200, 500).await.unwrap(), 1);
    assert_eq!(lease(&mine).await.unwrap().expires_ms, 1_700);
    // A restarts at 1 300: its own job and the unheld one are recovered, B's live one is not.
    let recovered: BTreeSet<_> = a
        .recover_owned("A", 1_300)
        .await
        .unwrap()
        .into_iter()
        .map(|(c, _)| c.job_id)
        .collect();
    assert_eq!(recovered, BTreeSet::from([mine.clone(), unheld.clone()]));
    assert_eq!(state(&any, &theirs).await, JobState::Armed);
    assert_eq!(lease(&mine).await, None);
    // B's lease lapsed at 1 500: too late to renew, and recovered by the next start.
    assert_eq!(b.renew_own("B", 1_500, 500).await.unwrap(), 0);
    let recovered = a.recover_owned("A", 1_500).await.unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].0.job_id, theirs);
    assert_eq!(state(&any, &theirs).await, JobState::Paused);
}

/// Two ledgers (two daemons) on one PostgreSQL database: the one that arms and starts a job
/// holds it; once its lease lapses, the other's `keep_leases` records the job PAUSED
/// (interrupted), journals it and broadcasts it. Lease durations of an hour and of zero make
/// the outcome independent of the wall clock's progress.
#[tokio::test]
async fn postgres_a_dead_daemons_plot_is_paused_by_a_live_one() {
    use crate::events::{self, DaemonEvent};
    use crate::ledger::Ledger;
    use std::time::Duration;

    let Some(fx) = Fixture::postgres("postgres_a_dead_daemons_plot_is_paused_by_a_live_one") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let live_bus = events::bus();
    let mut live_events = live_bus.subscribe();
    let live = Ledger::new(fx.open().await, dir.path(), live_bus, None)
        .holding_leases("live".into(), Duration::from_secs(3_600));
    let job = live
        .submit(NewJob {
            name: "plot".into(),
            ..NewJob::default()
        })
        .await
        .unwrap();
    for e in [
        JobEvent::Enqueue,
        JobEvent::Analyzed,
        JobEvent::Optimized,
        JobEvent::Prepared,
    ] {
        live.apply(TransitionRequest {
            job_id: job.id.clone(),
            event: e,
            reason: Reason::Pipeline,
            error: None,
            metadata: Value::Null,
        })
        .await
        .unwrap();
    }
    // The daemon that plots it renews nothing: a lease of zero has lapsed as soon as it is taken.
    let dying = Ledger::new(fx.open().await, dir.path(), events::bus(), None)
        .holding_leases("dying".into(), Duration::ZERO);
    for e in [JobEvent::Arm, JobEvent::Start] {
        dying
            .apply(TransitionRequest {
                job_id: job.id.clone(),
                event: e,
                reason: Reason::Pipeline,
                error: None,
                metadata: Value::Null,
            })
            .await
            .unwrap();
    }
    let held = live.store().job(job.id.as_str()).await.unwrap().unwrap();
    assert_eq!(held.lease.map(|l| l.owner).as_deref(), Some("dying"));
    while live_events.try_recv().is_ok() {}
    let (renewed, paused) = live.keep_leases().await.unwrap();
    assert_eq!(renewed, 0);
    assert_eq!(paused.len(), 1);
    assert_eq!(paused[0].job_id, job.id);
    let record = live.store().job(job.id.as_str()).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Paused);
    assert_eq!(record.state_reason.as_deref(), Some("interrupted"));
    let Ok(DaemonEvent::JobStateChanged(change)) = live_events.try_recv() else {
        panic!("the pause is broadcast");
    };
    assert_eq!(change.to, JobState::Paused);
    let journal = crate::journal::read(&live.journal_path(job.id.as_str())).unwrap();
    let last = journal.entries.last().unwrap();
    assert_eq!(last.kind, crate::journal::EntryKind::Recovery);
    // A live daemon's job is left alone by the other's sweep.
    assert_eq!(live.keep_leases().await.unwrap().1.len(), 0);
}
