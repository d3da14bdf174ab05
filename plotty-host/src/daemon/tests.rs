//! In-process lifecycle tests: components start in step order and stop in the manual's order,
//! failures carry their step's exit code, interrupted jobs come back paused, reloads apply.

use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::Value;

use super::*;
use crate::job::{JobEvent, JobState, Reason};
use crate::store::{NewJob, TransitionRequest};

type Log = Arc<Mutex<Vec<String>>>;

struct Probe {
    name: &'static str,
    stage: Stage,
    log: Log,
    fail: bool,
}

impl Component for Probe {
    fn name(&self) -> &str {
        self.name
    }

    fn stage(&self) -> Stage {
        self.stage
    }

    fn start(self: Box<Self>, ctx: StartContext) -> BoxFuture<'static, Result<(), StartError>> {
        async move {
            if self.fail {
                return Err(StartError::new("no plotter answered on /dev/ttyACM0"));
            }
            self.log
                .lock()
                .unwrap()
                .push(format!("start {}", self.name));
            if self.stage == Stage::Api {
                let listener = ctx.take_listener().expect("the API gets the listener");
                self.log
                    .lock()
                    .unwrap()
                    .push(format!("listener {}", listener.local_addr().unwrap().ip()));
            }
            let log = Arc::clone(&self.log);
            let name = self.name;
            let shutdown = ctx.shutdown.clone();
            ctx.shutdown.spawn(async move {
                shutdown.requested().await;
                shutdown.stop().await;
                log.lock().unwrap().push(format!("stop {name}"));
            });
            Ok(())
        }
        .boxed()
    }
}

fn probe(name: &'static str, stage: Stage, log: &Log) -> Box<dyn Component> {
    Box::new(Probe {
        name,
        stage,
        log: Arc::clone(log),
        fail: false,
    })
}

async fn parts(dir: &Path) -> Parts {
    let settings = Settings::defaults_for(dir);
    let (store, _) = Store::open(&settings.database.path).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    Parts {
        settings,
        sources: None,
        store: store.into(),
        listener: Some(listener),
        logging: None,
        notifier: Notifier::default(),
    }
}

#[tokio::test]
async fn components_start_in_step_order_and_stop_in_shutdown_order() {
    let dir = tempfile::tempdir().unwrap();
    let log: Log = Arc::default();
    // Given out of order on purpose.
    let components = vec![
        probe("hooks-extra", Stage::Hooks, &log),
        probe("queue", Stage::Queue, &log),
        probe("axidraw", Stage::Devices, &log),
        probe("api", Stage::Api, &log),
    ];
    let daemon = Daemon::start(parts(dir.path()).await, components)
        .await
        .unwrap();
    assert!(daemon.local_addr().is_some());
    let (tx, rx) = mpsc::channel(4);
    tx.send(Request::Stop { signal: "test" }).await.unwrap();
    daemon.run(rx).await.unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "start api",
            "listener 127.0.0.1",
            "start axidraw",
            "start queue",
            "start hooks-extra",
            "stop queue",
            "stop api",
            "stop axidraw",
            "stop hooks-extra",
        ]
    );
}

#[tokio::test]
async fn a_failing_device_component_fails_step_4_with_exit_code_5() {
    let dir = tempfile::tempdir().unwrap();
    let log: Log = Arc::default();
    let failing = Box::new(Probe {
        name: "axidraw",
        stage: Stage::Devices,
        log: Arc::clone(&log),
        fail: true,
    });
    let Err(e) = Daemon::start(
        parts(dir.path()).await,
        vec![probe("api", Stage::Api, &log), failing],
    )
    .await
    else {
        panic!("expected the start to fail");
    };
    assert_eq!(e.exit_code(), ExitCode::Device);
    assert_eq!(
        e.to_string(),
        "step 4/6 (devices): axidraw: no plotter answered on /dev/ttyACM0"
    );
}

#[tokio::test]
async fn without_an_api_component_the_port_is_held_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(parts(dir.path()).await, Vec::new())
        .await
        .unwrap();
    let addr = daemon.local_addr().unwrap();
    // The socket is bound and listening (the kernel completes the handshake into the backlog),
    // so no one else can take the port while the daemon runs.
    assert!(std::net::TcpListener::bind(addr).is_err());
    let (tx, rx) = mpsc::channel(1);
    drop(tx);
    daemon.run(rx).await.unwrap();
    assert!(
        std::net::TcpListener::bind(addr).is_ok(),
        "released at shutdown"
    );
}

#[tokio::test]
async fn interrupted_jobs_are_paused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let p = parts(dir.path()).await;
    let store = p.store.clone();
    let (id, workspace) = {
        let ledger = Ledger::new(store.clone(), dir.path(), events::bus(), None);
        let job = ledger
            .submit(NewJob {
                name: "a".into(),
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
                .apply(TransitionRequest {
                    job_id: job.id.clone(),
                    event,
                    reason: Reason::Pipeline,
                    error: None,
                    metadata: Value::Null,
                })
                .await
                .unwrap();
        }
        (job.id, dir.path().to_path_buf())
    };
    let daemon = Daemon::start(p, Vec::new()).await.unwrap();
    let job = store.job(id.as_str()).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Paused);
    assert_eq!(job.state_reason.as_deref(), Some("interrupted"));
    let journal =
        crate::journal::read(&crate::journal::path(&workspace.join("jobs"), id.as_str())).unwrap();
    assert_eq!(
        journal.entries.last().unwrap().kind,
        crate::journal::EntryKind::Recovery
    );
    let (tx, rx) = mpsc::channel(1);
    drop(tx);
    daemon.run(rx).await.unwrap();
}

#[tokio::test]
async fn half_created_jobs_are_failed_at_start_and_stray_directories_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let p = parts(dir.path()).await;
    let store = p.store.clone();
    let ledger = Ledger::new(store.clone(), dir.path(), events::bus(), None);
    // A crash mid-submission: the row and its journal exist, the SVG was never installed.
    let job = ledger
        .submit(NewJob {
            name: "a".into(),
            ..NewJob::default()
        })
        .await
        .unwrap();
    // And a job directory whose row never committed.
    let stray = dir.path().join("jobs").join("0123456789ab");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("source.svg"), b"<svg/>").unwrap();
    let daemon = Daemon::start(p, Vec::new()).await.unwrap();
    let got = store.job(job.id.as_str()).await.unwrap().unwrap();
    assert_eq!(got.state, JobState::Failed);
    assert!(
        got.error
            .as_deref()
            .unwrap_or("")
            .contains("submit the SVG again"),
        "{got:?}"
    );
    assert_eq!(std::fs::read(stray.join("source.svg")).unwrap(), b"<svg/>");
    let (tx, rx) = mpsc::channel(1);
    drop(tx);
    daemon.run(rx).await.unwrap();
}

#[tokio::test]
async fn reload_applies_hooks_and_keeps_restart_only_settings() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let sources = Sources {
        overrides: settings::Overrides {
            config: Some(config.clone()),
            workspace: Some(dir.path().to_path_buf()),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut p = parts(dir.path()).await;
    p.sources = Some(sources.clone());
    let mut daemon = Daemon::start(p, Vec::new()).await.unwrap();
    let before = daemon.settings();
    std::fs::write(
        &config,
        "websocket:\n  port: 1234\nhooks:\n  QUEUED:\n    - command: echo queued\n",
    )
    .unwrap();
    daemon.apply_reload(settings::load(&sources).unwrap());
    let after = daemon.settings();
    assert_eq!(
        after.websocket.port, before.websocket.port,
        "needs a restart"
    );
    assert_eq!(after.hooks.for_state(JobState::Queued).len(), 1);
    assert_eq!(daemon.hooks.hooks().len(), 1);
    // SIGHUP with a shell string that pastes a placeholder: refused, the current hooks stay.
    std::fs::write(
        &config,
        "hooks:\n  QUEUED:\n    - command: echo queued\n    - command: echo {job_name}\n",
    )
    .unwrap();
    daemon.reload();
    assert_eq!(daemon.hooks.hooks().len(), 1, "the bad config was applied");
    assert_eq!(
        daemon.hooks.hooks().for_state(JobState::Queued)[0].target(),
        "echo queued"
    );
    let (tx, rx) = mpsc::channel(1);
    drop(tx);
    daemon.run(rx).await.unwrap();
}

/// A queue component that ignores the graceful stop and only reacts to the immediate one.
struct Stubborn {
    log: Log,
}

impl Component for Stubborn {
    fn name(&self) -> &str {
        "stubborn queue"
    }

    fn stage(&self) -> Stage {
        Stage::Queue
    }

    fn start(self: Box<Self>, ctx: StartContext) -> BoxFuture<'static, Result<(), StartError>> {
        async move {
            let shutdown = ctx.shutdown.clone();
            let log = self.log;
            ctx.shutdown.spawn(async move {
                shutdown.immediate().await;
                log.lock().unwrap().push("stopped at once".to_owned());
            });
            Ok(())
        }
        .boxed()
    }
}

#[tokio::test]
async fn a_second_stop_request_makes_the_shutdown_immediate() {
    let dir = tempfile::tempdir().unwrap();
    let log: Log = Arc::default();
    let daemon = Daemon::start(
        parts(dir.path()).await,
        vec![Box::new(Stubborn {
            log: Arc::clone(&log),
        })],
    )
    .await
    .unwrap();
    let (tx, rx) = mpsc::channel(4);
    tx.send(Request::Stop { signal: "SIGTERM" }).await.unwrap();
    tx.send(Request::Stop { signal: "SIGTERM" }).await.unwrap();
    // Without the second request this would wait for the queue stage's 60 s grace.
    let started = std::time::Instant::now();
    daemon.run(rx).await.unwrap();
    assert!(started.elapsed() < Stage::Queue.grace());
    assert_eq!(*log.lock().unwrap(), ["stopped at once"]);
}
