//! Daemon bookkeeping throughput: how many jobs per second can be submitted and stored, and how
//! many state transitions per
//! second can be recorded (one transaction plus an fsynced journal line each), against a database
//! and workspace on the disk the temporary directory is on. The store-only transition shows what
//! the journal's fsync costs on top.
//!
//! `submit_to_stored/<drawing>`: a real drawing of `benches/drawings/` submitted through the job
//! queue as an upload is (its bytes staged, fsynced and renamed to `jobs/<id>/source.svg`, the
//! SQLite insert with its event row, the journal line fsynced), until the queue answers with the
//! stored job. The queue runs without device layer or analysis pipeline, so jobs stay as
//! submitted and nothing else competes for the disk.
//!
//! `stop_latency`: how long a `pause` and an `abort` of a running plot take on the built-in
//! simulator paced to the wall clock, from the request to the queue until the answer, which comes
//! once the device task saw the machine stopped with the pen up (the runner's `Paused` /
//! `Aborting`) and recorded the transition. Target: ≤ 100 ms.
//!
//! Run with `cargo bench --bench daemon`.

// A failed set-up step ends the benchmark; there is nothing to recover.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use plotty_host::api::ApiLimits;
use plotty_host::app::components_and_queue;
use plotty_host::daemon::notify::Notifier;
use plotty_host::daemon::signals::Request;
use plotty_host::daemon::{Daemon, Parts};
use plotty_host::devices::SimPace;
use plotty_host::events::{self, DaemonEvent};
use plotty_host::job::{JobEvent, JobId, Reason};
use plotty_host::ledger::Ledger;
use plotty_host::queue::{JobAction, QueueHandle, Submission, SvgSource};
use plotty_host::settings::{DeviceKind, Settings};
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
    g.measurement_time(Duration::from_secs(10));

    let queue_dir = tempfile::tempdir().unwrap();
    let (queue, _stop) = rt.block_on(queue_only(queue_dir.path()));
    for name in ["hatch_200", "random_walk_100k"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("benches/drawings")
            .join(format!("{name}.svg"));
        let svg = bytes::Bytes::from(
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display())),
        );
        let submission = || Submission {
            svg: SvgSource::Bytes(svg.clone()),
            name: Some(format!("{name}.svg")),
            paper: None,
            layers: None,
            priority: 0,
            start: false,
            options: Default::default(),
            requirements: Default::default(),
        };
        // Once before timing: stored means the drawing is on disk, whole, under its job.
        let job = rt
            .block_on(queue.submit(submission()))
            .unwrap_or_else(|e| panic!("{name}: submission refused: {e}"));
        let stored = queue_dir
            .path()
            .join("jobs")
            .join(job.id.as_str())
            .join("source.svg");
        assert_eq!(
            std::fs::read(&stored).ok().as_deref(),
            Some(&svg[..]),
            "{name}: {} is not the drawing submitted",
            stored.display()
        );
        g.throughput(Throughput::Bytes(svg.len() as u64));
        if svg.len() > 1 << 20 {
            // Each iteration leaves its megabytes in the temporary directory: a few dozen.
            g.sample_size(10)
                .sampling_mode(SamplingMode::Flat)
                .measurement_time(Duration::from_secs(2));
        }
        g.bench_function(format!("submit_to_stored/{name}"), |b| {
            b.iter(|| {
                rt.block_on(queue.submit(submission()))
                    .unwrap_or_else(|e| panic!("{name}: submission refused: {e}"))
            });
        });
    }

    g.throughput(Throughput::Elements(1))
        .sample_size(100)
        .sampling_mode(SamplingMode::Auto)
        .measurement_time(Duration::from_secs(10));

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

/// A daemon in this process with only the job queue, which answers commands and runs no
/// pipeline (jobs stay as submitted); its handle and the sender that keeps it running.
async fn queue_only(dir: &std::path::Path) -> (QueueHandle, tokio::sync::mpsc::Sender<Request>) {
    let settings = Settings::defaults_for(dir);
    std::fs::create_dir_all(settings.jobs_dir()).unwrap();
    let (store, _) = Store::open(&settings.database.path).unwrap();
    let parts = Parts {
        settings,
        sources: None,
        store: store.into(),
        listener: None,
        logging: None,
        notifier: Notifier::default(),
    };
    let (queue, actor) = plotty_host::queue::channel();
    let components: Vec<Box<dyn plotty_host::daemon::Component>> = vec![Box::new(
        plotty_host::queue::QueueComponent::new(actor.manual()),
    )];
    let daemon = Daemon::start(parts, components).await.unwrap();
    let (stop, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(daemon.run(rx));
    (queue, stop)
}

/// Many long strokes: minutes of plotting at the simulator's real pace.
fn long_drawing() -> String {
    let mut paths = String::new();
    for i in 0..80 {
        let y = 10.0 + f64::from(i) * 2.0;
        paths.push_str(&format!(
            r#"<path d="M10 {y} H190" stroke="black" fill="none"/>"#
        ));
    }
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="200mm" height="200mm" viewBox="0 0 200 200">{paths}</svg>"#
    )
}

/// A daemon in this process with the simulator as its plotter, and its queue.
struct Running {
    queue: QueueHandle,
    bus: events::EventSender,
    _stop: tokio::sync::mpsc::Sender<Request>,
    _dir: tempfile::TempDir,
}

async fn start_daemon() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::defaults_for(dir.path());
    settings.device.kind = DeviceKind::Simulator;
    settings.devices = vec![settings.device.clone()];
    std::fs::create_dir_all(settings.jobs_dir()).unwrap();
    let (store, _) = Store::open(&settings.database.path).unwrap();
    let parts = Parts {
        settings,
        sources: None,
        store: store.into(),
        listener: None,
        logging: None,
        notifier: Notifier::default(),
    };
    let (components, queue) = components_and_queue(ApiLimits::default(), SimPace::Realtime);
    let daemon = Daemon::start(parts, components).await.unwrap();
    let bus = daemon.ledger().bus();
    let (stop, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(daemon.run(rx));
    while queue.devices().await.unwrap().is_empty() {
        tokio::task::yield_now().await;
    }
    Running {
        queue,
        bus,
        _stop: stop,
        _dir: dir,
    }
}

/// Submits the long drawing and waits until the pen is moving.
async fn running_plot(d: &Running) -> JobId {
    let mut rx = d.bus.subscribe();
    let job = d
        .queue
        .submit(Submission {
            svg: SvgSource::Bytes(long_drawing().into_bytes().into()),
            name: Some("bench.svg".into()),
            paper: None,
            layers: None,
            priority: 0,
            start: true,
            options: Default::default(),
            requirements: Default::default(),
        })
        .await
        .unwrap();
    moving(&mut rx, &job.id).await;
    job.id
}

/// Waits for a progress report of `job`: the machine is drawing.
async fn moving(rx: &mut tokio::sync::broadcast::Receiver<DaemonEvent>, job: &JobId) {
    loop {
        if let Ok(DaemonEvent::JobProgress(p)) = rx.recv().await
            && &p.job_id == job
        {
            return;
        }
    }
}

/// Waits until the device holds no job (parked after an abort).
async fn free(d: &Running) {
    let mut rx = d.bus.subscribe();
    loop {
        let status = d.queue.devices().await.unwrap();
        if status.iter().all(|s| s.current_job_id.is_none()) {
            return;
        }
        let _ = rx.recv().await;
    }
}

fn stop_latency(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let d = rt.block_on(start_daemon());
    let mut g = c.benchmark_group("stop_latency");
    // Every iteration waits for the machine to move again (and an abort for a new plot to start
    // and the carriage to park): few iterations, one per sample, keep the run to a minute or two.
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(1));
    g.measurement_time(Duration::from_millis(300));

    let job = rt.block_on(running_plot(&d));
    g.bench_function("pause", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                let mut rx = d.bus.subscribe();
                for _ in 0..iters {
                    moving(&mut rx, &job).await;
                    let t = Instant::now();
                    d.queue
                        .control(job.clone(), JobAction::Pause)
                        .await
                        .unwrap();
                    total += t.elapsed();
                    d.queue
                        .control(job.clone(), JobAction::Resume)
                        .await
                        .unwrap();
                    rx = rx.resubscribe();
                }
                total
            })
        });
    });
    rt.block_on(async {
        d.queue.control(job, JobAction::Abort).await.unwrap();
        free(&d).await;
    });

    g.bench_function("abort", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let job = running_plot(&d).await;
                    let t = Instant::now();
                    d.queue.control(job, JobAction::Abort).await.unwrap();
                    total += t.elapsed();
                    free(&d).await;
                }
                total
            })
        });
    });
    g.finish();
}

criterion_group!(benches, bench, stop_latency);
criterion_main!(benches);
