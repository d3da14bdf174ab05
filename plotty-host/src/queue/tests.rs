//! The queue actor against a real store and ledger, with a scripted device task.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::FutureExt;
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use super::*;
use crate::events::{self, DaemonEvent, DeviceState};
use crate::job::{JobEvent, JobState, Reason};
use crate::ledger::Ledger;
use crate::settings::Settings;
use crate::shutdown::Coordinator;
use crate::store::{Store, TransitionRequest};

struct Harness {
    queue: QueueHandle,
    ledger: Ledger,
    settings: Settings,
    coordinator: Coordinator,
    rx: broadcast::Receiver<DaemonEvent>,
    _settings: watch::Sender<Arc<Settings>>,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    harness_with(false).await
}

/// A queue that takes jobs through the pipeline and hands them to devices when `pipeline`,
/// else one that only answers commands.
async fn harness_with(pipeline: bool) -> Harness {
    harness_full(pipeline, Arc::new(Disk)).await
}

/// A manual queue whose submitted SVGs are written through `files`.
async fn harness_full(pipeline: bool, files: Arc<dyn JobFiles>) -> Harness {
    harness_actor(pipeline, |a| a.with_files(files)).await
}

/// A queue whose actor is set up by `setup`.
async fn harness_actor(pipeline: bool, setup: impl FnOnce(QueueActor) -> QueueActor) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::defaults_for(dir.path());
    std::fs::create_dir_all(settings.jobs_dir()).unwrap();
    let (store, _) = Store::open(&settings.database.path).unwrap();
    let bus = events::bus();
    let rx = bus.subscribe();
    let ledger = Ledger::new(store, dir.path(), bus, None);
    let coordinator = Coordinator::new();
    let (tx, _) = watch::channel(Arc::new(settings.clone()));
    let hooks = crate::hooks::HookRunner::new(
        crate::hooks::HookSet::default(),
        tokio_util::task::TaskTracker::new(),
    );
    let ctx = StartContext::new(
        tx.subscribe(),
        ledger.clone(),
        hooks,
        coordinator.handle(Stage::Queue),
        Arc::new(Mutex::new(None)),
    );
    let (queue, actor) = channel();
    let actor = setup(actor);
    let actor = if pipeline { actor } else { actor.manual() };
    Box::new(QueueComponent::new(actor))
        .start(ctx)
        .await
        .unwrap();
    Harness {
        queue,
        ledger,
        settings,
        coordinator,
        rx,
        _settings: tx,
        _dir: dir,
    }
}

fn svg() -> Submission {
    Submission {
        svg: SvgSource::Bytes(Bytes::from_static(
            b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        )),
        name: Some("square.svg".into()),
        paper: None,
        layers: None,
        priority: 0,
        start: false,
        options: Default::default(),
        requirements: Default::default(),
    }
}

async fn move_to(ledger: &Ledger, id: &JobId, events: &[JobEvent]) {
    for e in events {
        ledger
            .apply(TransitionRequest {
                job_id: id.clone(),
                event: *e,
                reason: Reason::Pipeline,
                error: None,
                metadata: Value::Null,
            })
            .await
            .unwrap();
    }
}

const TO_PLOTTING: [JobEvent; 5] = [
    JobEvent::Analyzed,
    JobEvent::Optimized,
    JobEvent::Prepared,
    JobEvent::Arm,
    JobEvent::Start,
];

/// A few squares: a drawing the pipeline takes to `READY`.
const SQUARES: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="100mm" height="100mm" viewBox="0 0 100 100">
  <path d="M10 10 H30 V30 H10 Z" stroke="black" fill="none"/>
  <path d="M50 10 H70 V30 H50 Z" stroke="black" fill="none"/>
</svg>"#;

fn squares(start: bool) -> Submission {
    Submission {
        svg: SvgSource::Bytes(Bytes::from_static(SQUARES.as_bytes())),
        start,
        ..svg()
    }
}

impl Harness {
    /// Waits (on the event bus) for `job` to reach `state`.
    async fn wait_state(&mut self, job: &JobId, state: JobState) {
        let found = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            loop {
                match self.rx.recv().await {
                    Ok(DaemonEvent::JobStateChanged(c)) if &c.job_id == job && c.to == state => {
                        return;
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => panic!("the event bus closed"),
                }
            }
        })
        .await;
        assert!(found.is_ok(), "job {job} never reached {state}");
    }
}

/// A device task stand-in: records what it is asked and records the transitions a real one would.
struct FakeDevice {
    ledger: Ledger,
    id: &'static str,
    job: Mutex<Option<JobId>>,
    asked: Mutex<Vec<DeviceRequest>>,
    /// Takes assigned jobs (and holds them) instead of refusing them.
    accept: bool,
    assigned: Mutex<Vec<JobId>>,
    /// The SVG each assigned job is to be plotted from.
    sources: Mutex<Vec<Option<String>>>,
    /// Its tags, for jobs' requirements.
    tags: Mutex<Vec<String>>,
}

impl FakeDevice {
    fn new(ledger: &Ledger, id: &'static str, accept: bool) -> Arc<Self> {
        Arc::new(Self {
            ledger: ledger.clone(),
            id,
            job: Mutex::new(None),
            asked: Mutex::new(Vec::new()),
            accept,
            assigned: Mutex::new(Vec::new()),
            sources: Mutex::new(Vec::new()),
            tags: Mutex::new(Vec::new()),
        })
    }

    /// The device with `tags`.
    fn tagged(self: Arc<Self>, tags: &[&str]) -> Arc<Self> {
        *self.tags.lock().unwrap() = tags.iter().map(|t| (*t).to_owned()).collect();
        self
    }

    /// The job it holds ends: it is idle again.
    fn idle(&self) {
        *self.job.lock().unwrap() = None;
    }

    fn assigned(&self) -> Vec<JobId> {
        self.assigned.lock().unwrap().clone()
    }
}

impl DeviceControl for FakeDevice {
    fn id(&self) -> String {
        self.id.into()
    }

    fn profile(&self) -> crate::devices::registry::Profile {
        crate::devices::registry::Profile {
            name: self.id.into(),
            model: 1,
            tags: self.tags.lock().unwrap().clone(),
        }
    }

    fn status(&self) -> DeviceStatus {
        let job = self.job.lock().unwrap().clone();
        DeviceStatus {
            device_id: self.id.into(),
            device_type: "simulator".into(),
            port: None,
            tags: self.tags.lock().unwrap().clone(),
            status: if job.is_some() {
                DeviceState::Busy
            } else {
                DeviceState::Connected
            },
            firmware_version: Some("EBBv13_and_above EB Firmware Version 3.0.3".into()),
            pen_up: Some(true),
            position_mm: Some((0.0, 0.0)),
            current_job_id: job,
            error_count: 0,
            error_message: None,
            last_heartbeat: crate::timestamp::now(),
            uptime_seconds: Some(1.0),
            notice: None,
            motor_supply: None,
            pen_servo: None,
        }
    }

    fn control(
        &self,
        request: DeviceRequest,
    ) -> futures_util::future::BoxFuture<'static, Result<DeviceReply, DeviceError>> {
        self.asked.lock().unwrap().push(request.clone());
        let ledger = self.ledger.clone();
        let device_id = self.id;
        async move {
            let (job, event) = match request {
                DeviceRequest::Pause(j) => (j, JobEvent::Pause),
                DeviceRequest::Resume(j) => (j, JobEvent::Resume),
                DeviceRequest::Abort(j) => (j, JobEvent::Abort),
                DeviceRequest::Action(DeviceAction::PenDown) => {
                    return Err(DeviceError {
                        message: "the servo did not move".into(),
                    });
                }
                DeviceRequest::Action(a) => {
                    return Ok(DeviceReply {
                        device_id: device_id.into(),
                        message: a.to_string(),
                    });
                }
            };
            move_to(&ledger, &job, &[event]).await;
            Ok(DeviceReply {
                device_id: device_id.into(),
                message: event.to_string(),
            })
        }
        .boxed()
    }

    fn assign(&self, assignment: Assignment) -> Result<(), DeviceError> {
        if self.accept {
            self.sources
                .lock()
                .unwrap()
                .push(assignment.job.source_path.clone());
            let id = assignment.job.id;
            *self.job.lock().unwrap() = Some(id.clone());
            self.assigned.lock().unwrap().push(id);
            return Ok(());
        }
        Err(DeviceError {
            message: format!("the scripted device plots nothing ({})", assignment.job.id),
        })
    }
}

#[tokio::test]
async fn submit_stores_the_svg_and_queues_the_job() {
    let mut h = harness().await;
    let job = h
        .queue
        .submit(Submission {
            priority: 5,
            paper: Some("A3".into()),
            ..svg()
        })
        .await
        .unwrap();
    assert_eq!(job.state, JobState::Queued);
    assert_eq!(job.priority, 5);
    assert_eq!(job.metadata["paper"], "A3");
    let source = job.source_path.clone().unwrap();
    assert_eq!(
        std::path::Path::new(&source),
        h.settings
            .jobs_dir()
            .join(job.id.as_str())
            .join("source.svg")
    );
    assert!(std::fs::read(&source).unwrap().starts_with(b"<svg"));
    let mut seen = Vec::new();
    while let Ok(DaemonEvent::JobStateChanged(c)) = h.rx.try_recv() {
        seen.push((c.from, c.to));
    }
    assert_eq!(
        seen,
        [
            (None, JobState::New),
            (Some(JobState::New), JobState::Queued)
        ]
    );

    let e = h
        .queue
        .submit(Submission {
            svg: SvgSource::Bytes(Bytes::from_static(b"%PDF-1.7")),
            ..svg()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), "INVALID_REQUEST");
    assert_eq!(h.queue.list(ListFilter::default()).await.unwrap().len(), 1);

    // Queue order: priority first, then submission.
    let low = h.queue.submit(svg()).await.unwrap();
    let high = h
        .queue
        .submit(Submission {
            priority: 9,
            ..svg()
        })
        .await
        .unwrap();
    let order: Vec<_> = h
        .queue
        .list(ListFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(order, [high.id, job.id, low.id]);
}

#[tokio::test]
async fn without_a_plotter_device_requests_are_refused_and_state_only_ones_are_done() {
    let h = harness().await;
    let a = h.queue.submit(svg()).await.unwrap();
    let e = h
        .queue
        .control(a.id.clone(), JobAction::Pause)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "INVALID_STATE");
    assert!(e.to_string().contains("must be PLOTTING"), "{e}");

    let b = h.queue.submit(svg()).await.unwrap();
    move_to(&h.ledger, &b.id, &TO_PLOTTING).await;
    for action in [JobAction::Pause, JobAction::Abort] {
        let e = h.queue.control(b.id.clone(), action).await.unwrap_err();
        assert_eq!(e.code(), "NO_DEVICE", "{action}");
        assert!(e.to_string().starts_with("no plotter attached: "), "{e}");
    }
    let e = h
        .queue
        .control(b.id.clone(), JobAction::Cancel)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("use abort"), "{e}");
    move_to(&h.ledger, &b.id, &[JobEvent::Pause]).await;
    let e = h
        .queue
        .control(b.id.clone(), JobAction::Resume)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "NO_DEVICE");
    // A paused job with no plotter: nothing moves, so an abort is only a record.
    let aborted = h
        .queue
        .control(b.id.clone(), JobAction::Abort)
        .await
        .unwrap();
    assert_eq!(aborted.state, JobState::Aborted);

    let cancelled = h
        .queue
        .control(a.id.clone(), JobAction::Cancel)
        .await
        .unwrap();
    assert_eq!(cancelled.state, JobState::Aborted);
    let e = h
        .queue
        .control(a.id.clone(), JobAction::Cancel)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("final"), "{e}");
    let e = h.queue.device(None, DeviceAction::Home).await.unwrap_err();
    assert_eq!(e.code(), "NO_DEVICE");
    assert!(h.queue.devices().await.unwrap().is_empty());
    let e = h
        .queue
        .control(JobId::parse("nope").unwrap(), JobAction::Abort)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "JOB_NOT_FOUND");
}

#[tokio::test]
async fn plot_requests_go_to_the_device_holding_the_job() {
    let h = harness().await;
    let device = FakeDevice::new(&h.ledger, "sim0", false);
    h.queue.attach_device(device.clone()).await.unwrap();
    let job = h.queue.submit(svg()).await.unwrap();
    move_to(&h.ledger, &job.id, &TO_PLOTTING).await;
    *device.job.lock().unwrap() = Some(job.id.clone());

    let e = h.queue.device(None, DeviceAction::PenUp).await.unwrap_err();
    assert_eq!(e.code(), "DEVICE_BUSY");
    let paused = h
        .queue
        .control(job.id.clone(), JobAction::Pause)
        .await
        .unwrap();
    assert_eq!(paused.state, JobState::Paused);
    assert_eq!(
        h.queue
            .device(Some("sim0".into()), DeviceAction::PenUp)
            .await
            .unwrap()
            .message,
        "pen-up"
    );
    // Moving the machine is allowed while the job is paused: its resume asks the board where
    // the carriage is (the device handles that; the queue passes the request on).
    assert_eq!(
        h.queue
            .device(None, DeviceAction::Home)
            .await
            .unwrap()
            .message,
        "home"
    );
    let resumed = h
        .queue
        .control(job.id.clone(), JobAction::Resume)
        .await
        .unwrap();
    assert_eq!(resumed.state, JobState::Plotting);
    let aborted = h
        .queue
        .control(job.id.clone(), JobAction::Abort)
        .await
        .unwrap();
    assert_eq!(aborted.state, JobState::Aborted);
    assert_eq!(
        *device.asked.lock().unwrap(),
        [
            DeviceRequest::Pause(job.id.clone()),
            DeviceRequest::Action(DeviceAction::PenUp),
            DeviceRequest::Action(DeviceAction::Home),
            DeviceRequest::Resume(job.id.clone()),
            DeviceRequest::Abort(job.id.clone()),
        ]
    );
    *device.job.lock().unwrap() = None;
    let e = h
        .queue
        .device(None, DeviceAction::PenDown)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "DEVICE_ERROR");
    assert!(e.to_string().contains("servo"), "{e}");
    let e = h
        .queue
        .device(Some("axidraw1".into()), DeviceAction::Home)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "DEVICE_NOT_FOUND");
    assert_eq!(h.queue.devices().await.unwrap()[0].device_id, "sim0");
    h.queue.detach_device("sim0".into()).await.unwrap();
    assert!(h.queue.devices().await.unwrap().is_empty());
}

#[tokio::test]
async fn retry_and_delete() {
    let mut h = harness().await;
    let job = h.queue.submit(svg()).await.unwrap();
    let e = h.queue.retry(job.id.clone()).await.unwrap_err();
    assert_eq!(e.code(), "INVALID_STATE");
    let e = h.queue.delete(job.id.clone()).await.unwrap_err();
    assert!(e.to_string().contains("abort or cancel it first"), "{e}");
    h.queue
        .control(job.id.clone(), JobAction::Cancel)
        .await
        .unwrap();
    let retry = h.queue.retry(job.id.clone()).await.unwrap();
    assert_eq!(retry.state, JobState::Queued);
    assert_eq!(retry.retry_of.as_deref(), Some(job.id.as_str()));
    let own = retry.source_path.clone().unwrap();
    assert!(own.contains(retry.id.as_str()), "{own}");

    let jobs_dir = h.settings.jobs_dir();
    assert!(jobs_dir.join(job.id.as_str()).is_dir());
    h.queue.delete(job.id.clone()).await.unwrap();
    assert!(!jobs_dir.join(job.id.as_str()).exists());
    assert!(
        std::fs::read(&own).unwrap().starts_with(b"<svg"),
        "the retry keeps its SVG"
    );
    let details = h.queue.job(retry.id.clone()).await.unwrap();
    assert_eq!(details.job.retry_of, None);
    assert_eq!(details.events.len(), 2);
    let e = h.queue.job(job.id.clone()).await.unwrap_err();
    assert_eq!(e.code(), "JOB_NOT_FOUND");
    let mut deleted = false;
    while let Ok(ev) = h.rx.try_recv() {
        deleted |= matches!(ev, DaemonEvent::JobDeleted { job_id } if job_id == job.id);
    }
    assert!(deleted);
}

#[tokio::test]
async fn no_new_jobs_once_the_shutdown_started_and_none_after_it() {
    let h = harness().await;
    h.coordinator.begin();
    let e = h.queue.submit(svg()).await.unwrap_err();
    assert_eq!(e.code(), "SHUTTING_DOWN");
    assert!(h.queue.list(ListFilter::default()).await.is_ok());
    assert!(
        h.coordinator
            .stop_stage(Stage::Queue, std::time::Duration::from_secs(5))
            .await
    );
    let e = h.queue.list(ListFilter::default()).await.unwrap_err();
    assert_eq!(e.code(), "SHUTTING_DOWN");
}

#[tokio::test]
async fn start_takes_a_ready_job_to_the_plotter_and_resume_is_for_paused_jobs() {
    let h = harness().await;
    let job = h.queue.submit(svg()).await.unwrap();
    let e = h
        .queue
        .control(job.id.clone(), JobAction::Start)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "INVALID_STATE");
    assert!(e.to_string().contains("QUEUED"), "{e}");
    move_to(
        &h.ledger,
        &job.id,
        &[JobEvent::Analyzed, JobEvent::Optimized, JobEvent::Prepared],
    )
    .await;

    // A READY job waiting for start: resume says to use start.
    let e = h
        .queue
        .control(job.id.clone(), JobAction::Resume)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "INVALID_STATE");
    assert!(
        e.to_string().contains(&format!("plotty start {}", job.id)),
        "{e}"
    );
    let started = h
        .queue
        .control(job.id.clone(), JobAction::Start)
        .await
        .unwrap();
    assert_eq!(started.state, JobState::Ready);
    assert_eq!(started.metadata["start"], Value::Bool(true));
    // Once more: it is queued to start, which is what was asked.
    let again = h
        .queue
        .control(job.id.clone(), JobAction::Start)
        .await
        .unwrap();
    assert_eq!(again.state, JobState::Ready);
    let e = h
        .queue
        .control(job.id.clone(), JobAction::Resume)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "INVALID_STATE");
    assert!(e.to_string().contains("queued to start"), "{e}");

    // Start is for READY jobs only: a paused one is resumed.
    move_to(
        &h.ledger,
        &job.id,
        &[JobEvent::Arm, JobEvent::Start, JobEvent::Pause],
    )
    .await;
    let e = h
        .queue
        .control(job.id.clone(), JobAction::Start)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "INVALID_STATE");
    assert!(
        e.to_string().contains("PAUSED")
            && e.to_string().contains(&format!("plotty resume {}", job.id)),
        "{e}"
    );
    h.queue
        .control(job.id.clone(), JobAction::Abort)
        .await
        .unwrap();
    let e = h
        .queue
        .control(job.id.clone(), JobAction::Start)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("ABORTED"), "{e}");
}

#[tokio::test]
async fn a_retry_waits_for_start_even_when_the_job_it_retries_started_by_itself() {
    let h = harness().await;
    let job = h
        .queue
        .submit(Submission {
            start: true,
            ..svg()
        })
        .await
        .unwrap();
    assert_eq!(job.metadata["start"], Value::Bool(true));
    h.queue
        .control(job.id.clone(), JobAction::Cancel)
        .await
        .unwrap();
    let retry = h.queue.retry(job.id.clone()).await.unwrap();
    assert_ne!(
        retry.metadata["start"],
        Value::Bool(true),
        "{}",
        retry.metadata
    );
}

/// Waits until the queue has finished what it was doing: the actor takes one command or event at a
/// time, so the answer to a command comes after the dispatch an earlier command (an attach, a
/// start) or event started.
async fn settled(h: &Harness) {
    h.queue.list(ListFilter::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_job_keeps_its_device_until_it_leaves_paused() {
    let mut h = harness_with(true).await;
    // A job interrupted by a crash: PAUSED, and the device task holds nothing.
    let paused = h.queue.submit(squares(false)).await.unwrap();
    h.wait_state(&paused.id, JobState::Ready).await;
    move_to(&h.ledger, &paused.id, &[JobEvent::Arm, JobEvent::Start]).await;
    h.ledger
        .apply(TransitionRequest {
            job_id: paused.id.clone(),
            event: JobEvent::Interrupt,
            reason: Reason::Interrupted,
            error: None,
            metadata: Value::Null,
        })
        .await
        .unwrap();
    let next = h.queue.submit(squares(true)).await.unwrap();
    h.wait_state(&next.id, JobState::Ready).await;

    let device = FakeDevice::new(&h.ledger, "sim0", true);
    h.queue.attach_device(device.clone()).await.unwrap();
    settled(&h).await;
    assert_eq!(device.assigned(), [], "the paused job's sheet is still in");
    let queued = h
        .queue
        .control(next.id.clone(), JobAction::Start)
        .await
        .unwrap();
    assert_eq!(queued.state, JobState::Ready);
    assert_eq!(device.assigned(), []);

    // Resumed, it plots (the device holds nothing yet: still no other job); paused again.
    let resumed = h
        .queue
        .control(paused.id.clone(), JobAction::Resume)
        .await
        .unwrap();
    assert_eq!(resumed.state, JobState::Plotting);
    h.queue
        .control(paused.id.clone(), JobAction::Pause)
        .await
        .unwrap();
    settled(&h).await;
    assert_eq!(device.assigned(), []);

    // Aborted, it lets the device go: the next job starts.
    let aborted = h
        .queue
        .control(paused.id.clone(), JobAction::Abort)
        .await
        .unwrap();
    assert_eq!(aborted.state, JobState::Aborted);
    h.wait_state(&next.id, JobState::Armed).await;
    // The dispatch that armed it hands it to the device before the queue takes a command.
    settled(&h).await;
    assert_eq!(device.assigned(), [next.id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_job_holds_only_the_device_it_was_plotting_on() {
    let mut h = harness_with(true).await;
    let paused = h.queue.submit(squares(false)).await.unwrap();
    h.wait_state(&paused.id, JobState::Ready).await;
    h.ledger
        .apply(TransitionRequest {
            job_id: paused.id.clone(),
            event: JobEvent::Arm,
            reason: Reason::Pipeline,
            error: None,
            metadata: serde_json::json!({ "device_id": "sim0" }),
        })
        .await
        .unwrap();
    move_to(&h.ledger, &paused.id, &[JobEvent::Start, JobEvent::Pause]).await;
    let next = h.queue.submit(squares(true)).await.unwrap();
    h.wait_state(&next.id, JobState::Ready).await;

    let held = FakeDevice::new(&h.ledger, "sim0", true);
    h.queue.attach_device(held.clone()).await.unwrap();
    settled(&h).await;
    assert_eq!(held.assigned(), []);
    let free = FakeDevice::new(&h.ledger, "sim1", true);
    h.queue.attach_device(free.clone()).await.unwrap();
    h.wait_state(&next.id, JobState::Armed).await;
    settled(&h).await;
    assert_eq!(free.assigned(), [next.id]);
    assert_eq!(held.assigned(), []);
}

/// A submission of the squares, released, asking `device` and `tags` of its plotter.
fn asking(device: Option<&str>, tags: &[&str]) -> Submission {
    Submission {
        requirements: crate::devices::registry::Requirements {
            device: device.map(str::to_owned),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            ..Default::default()
        },
        ..squares(true)
    }
}

/// Issue 15: the queue hands the head job that a free plotter meets to that plotter; a job
/// waiting for a busy plotter it names does not hold back the jobs behind it that another free
/// plotter can take, and takes its plotter once that is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_go_to_a_plotter_that_meets_them_and_a_waiting_one_holds_back_none_behind_it() {
    let mut h = harness_with(true).await;
    let left = FakeDevice::new(&h.ledger, "left", true).tagged(&["a3", "black"]);
    let right = FakeDevice::new(&h.ledger, "right", true);
    h.queue.attach_device(left.clone()).await.unwrap();
    h.queue.attach_device(right.clone()).await.unwrap();
    let first = h.queue.submit(asking(Some("right"), &[])).await.unwrap();
    h.wait_state(&first.id, JobState::Armed).await;
    settled(&h).await;
    assert_eq!(right.assigned(), std::slice::from_ref(&first.id));
    // `right` is busy: the next job for it waits at READY, the one behind it goes to `left`.
    let waits = h.queue.submit(asking(Some("right"), &[])).await.unwrap();
    h.wait_state(&waits.id, JobState::Ready).await;
    let behind = h.queue.submit(asking(None, &["A3"])).await.unwrap();
    h.wait_state(&behind.id, JobState::Armed).await;
    settled(&h).await;
    assert_eq!(left.assigned(), std::slice::from_ref(&behind.id));
    let record = h.queue.job(waits.id.clone()).await.unwrap().job;
    assert_eq!(record.state, JobState::Ready, "waits for its plotter");
    // A job for a tag only `left` has waits while `left` is busy, though `right` is free soon.
    let black = h.queue.submit(asking(None, &["black"])).await.unwrap();
    h.wait_state(&black.id, JobState::Ready).await;
    // `right` is free again: the job waiting for it is armed there, not the one for `left`.
    right.idle();
    move_to(&h.ledger, &first.id, &[JobEvent::Start, JobEvent::Complete]).await;
    h.wait_state(&waits.id, JobState::Armed).await;
    settled(&h).await;
    assert_eq!(right.assigned(), [first.id.clone(), waits.id.clone()]);
    assert_eq!(left.assigned(), std::slice::from_ref(&behind.id));
    let stored = h.queue.job(waits.id.clone()).await.unwrap().job;
    assert_eq!(
        stored.device.as_deref(),
        Some("right"),
        "the job names its plotter"
    );
    // `left` is free again: the job for its tag goes there.
    left.idle();
    move_to(
        &h.ledger,
        &behind.id,
        &[JobEvent::Start, JobEvent::Complete],
    )
    .await;
    h.wait_state(&black.id, JobState::Armed).await;
    settled(&h).await;
    assert_eq!(left.assigned(), [behind.id, black.id]);
}

/// Issue 15: with one daemon per database, a job that no plotter can ever meet is refused at
/// submission, naming the plotters and their tags; malformed requirements too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_no_plotter_can_ever_meet_is_refused_naming_the_plotters() {
    let h = harness_with(true).await;
    let left = FakeDevice::new(&h.ledger, "left", true).tagged(&["a3"]);
    h.queue.attach_device(left.clone()).await.unwrap();
    h.queue
        .attach_device(FakeDevice::new(&h.ledger, "right", true))
        .await
        .unwrap();
    for (submission, names) in [
        (asking(None, &["red"]), "tags red"),
        (asking(Some("middle"), &[]), "device middle"),
        (asking(Some("right"), &["a3"]), "device right, tags a3"),
        (
            Submission {
                requirements: crate::devices::registry::Requirements {
                    model: Some(2),
                    ..Default::default()
                },
                ..squares(true)
            },
            "model 2",
        ),
    ] {
        let e = h.queue.submit(submission).await.unwrap_err();
        assert!(matches!(e, QueueError::Invalid(_)), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains(names), "{msg}");
        assert!(msg.contains("`left` (model 1, tags a3)"), "{msg}");
        assert!(msg.contains("`right` (model 1, no tags)"), "{msg}");
    }
    let e = h.queue.submit(asking(None, &["a 3"])).await.unwrap_err();
    assert!(e.to_string().contains("not a tag"), "{e}");
    let jobs = h.queue.list(ListFilter::default()).await.unwrap();
    assert!(jobs.is_empty(), "nothing refused was created: {jobs:?}");
    let ok = h.queue.submit(asking(Some("LEFT"), &["A3"])).await.unwrap();
    assert_eq!(ok.requirements.device.as_deref(), Some("LEFT"));
}

/// Files on a disk that fills up: `write_new` writes half the bytes then fails, `install` fails,
/// each with the kernel's "no space left on device" when asked to.
struct FullDisk {
    staging: bool,
    install: bool,
}

impl JobFiles for FullDisk {
    fn write_new(&self, path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
        if !self.staging {
            return Disk.write_new(path, bytes);
        }
        std::fs::write(path, &bytes[..bytes.len() / 2])?;
        Err(std::io::Error::from_raw_os_error(nix::libc::ENOSPC))
    }

    fn install(
        &self,
        from: &std::path::Path,
        dir: &std::path::Path,
        to: &std::path::Path,
    ) -> std::io::Result<()> {
        if !self.install {
            return Disk.install(from, dir, to);
        }
        Err(std::io::Error::from_raw_os_error(nix::libc::ENOSPC))
    }
}

fn says_disk_full(e: &QueueError, jobs_dir: &std::path::Path) {
    assert!(matches!(e, QueueError::DiskFull(_)), "{e:?}");
    assert_eq!(e.code(), "DISK_FULL");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("the disk holding {} is full", jobs_dir.display())),
        "{msg}"
    );
    assert!(
        msg.contains("Free space there") && msg.contains("plotty delete"),
        "{msg}"
    );
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                todo.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[tokio::test]
async fn a_full_disk_while_storing_the_svg_leaves_no_job_and_no_file() {
    let h = harness_full(
        false,
        Arc::new(FullDisk {
            staging: true,
            install: false,
        }),
    )
    .await;
    let jobs_dir = h.settings.jobs_dir();
    let e = h.queue.submit(svg()).await.unwrap_err();
    says_disk_full(&e, &jobs_dir);
    assert!(
        h.queue
            .list(ListFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    // The half-written upload is gone at once, not at the next start.
    assert_eq!(files_under(&jobs_dir), Vec::<std::path::PathBuf>::new());
}

#[tokio::test]
async fn a_full_disk_while_installing_the_svg_fails_the_job_with_the_reason() {
    let h = harness_full(
        false,
        Arc::new(FullDisk {
            staging: false,
            install: true,
        }),
    )
    .await;
    let jobs_dir = h.settings.jobs_dir();
    let e = h.queue.submit(svg()).await.unwrap_err();
    says_disk_full(&e, &jobs_dir);
    let jobs = h.queue.list(ListFilter::default()).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state, JobState::Failed);
    assert!(
        jobs[0].error.as_deref().unwrap_or("").contains("is full"),
        "{:?}",
        jobs[0]
    );
    assert!(jobs[0].source_path.is_none());
    // Nothing staged is left; the job's directory holds its journal only.
    let left = files_under(&jobs_dir);
    assert_eq!(
        left,
        [crate::journal::path(&jobs_dir, jobs[0].id.as_str())],
        "{left:?}"
    );
}

#[tokio::test]
async fn start_up_queues_or_fails_jobs_left_at_new_and_reports_directories_without_a_job() {
    let h = harness().await;
    let jobs_dir = h.settings.jobs_dir();
    let new = |name: &str| crate::store::NewJob {
        name: name.into(),
        ..crate::store::NewJob::default()
    };
    // A crash after the row was inserted, before the SVG was installed…
    let bare = h.ledger.submit(new("bare")).await.unwrap();
    // …and one after the SVG was installed, before the job was queued.
    let stored = h.ledger.submit(new("stored")).await.unwrap();
    let svg_path = jobs_dir.join(stored.id.as_str()).join("source.svg");
    std::fs::write(&svg_path, b"<svg/>").unwrap();
    // A directory whose row never committed.
    let orphan = jobs_dir.join("0123456789ab");
    std::fs::create_dir_all(&orphan).unwrap();
    std::fs::write(orphan.join("source.svg"), b"<svg/>").unwrap();

    let got = recover_submissions(&h.ledger, &jobs_dir).await.unwrap();
    assert_eq!(got.queued, vec![stored.id.clone()]);
    assert_eq!(got.failed, vec![bare.id.clone()]);
    assert_eq!(got.orphans, vec![orphan.clone()]);

    let bare = h
        .ledger
        .store()
        .job(bare.id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bare.state, JobState::Failed);
    assert!(
        bare.error
            .as_deref()
            .unwrap_or("")
            .contains("submit the SVG again"),
        "{bare:?}"
    );
    let stored = h
        .ledger
        .store()
        .job(stored.id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, JobState::Queued);
    assert_eq!(
        stored.source_path.as_deref(),
        Some(svg_path.to_str().unwrap())
    );
    // The orphan is left as it was.
    assert_eq!(std::fs::read(orphan.join("source.svg")).unwrap(), b"<svg/>");
    // Nothing is left at NEW, and a second start finds nothing more to do.
    let again = recover_submissions(&h.ledger, &jobs_dir).await.unwrap();
    assert!(again.queued.is_empty() && again.failed.is_empty());
    assert_eq!(again.orphans, [orphan]);
}

#[test]
fn a_closed_event_bus_leaves_the_queue_idle_and_answering() {
    // Paused time only moves on when every task waits: a queue that spins on a closed bus
    // keeps the runtime busy, and the test's sleep never ends (caught by the wall-clock wait).
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let (tx, closed) = broadcast::channel(4);
            drop(tx);
            let h = harness_actor(true, |a| a.with_bus(closed)).await;
            let job = h.queue.submit(svg()).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            // Still answering, and still moving jobs on (it polls for work now).
            let details = h.queue.job(job.id.clone()).await.unwrap();
            assert_eq!(details.job.id, job.id);
        });
        let _ = done.send(());
    });
    assert!(
        finished
            .recv_timeout(std::time::Duration::from_secs(120))
            .is_ok(),
        "the queue actor kept the runtime busy after the event bus closed"
    );
}

/// One daemon of a farm: a queue on the PostgreSQL database `url` under the name `name`, with
/// the event relay between daemons running.
async fn farm_daemon(url: &str, name: &str) -> Harness {
    farm_daemon_with(url, name, |_| {}).await
}

/// [`farm_daemon`] with its settings adjusted by `adjust` (its plotters, say).
async fn farm_daemon_with(url: &str, name: &str, adjust: impl FnOnce(&mut Settings)) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::defaults_for(dir.path());
    adjust(&mut settings);
    std::fs::create_dir_all(settings.jobs_dir()).unwrap();
    let (store, _) = crate::store::PgStore::connect(url, 4).await.unwrap();
    let bus = events::bus();
    let rx = bus.subscribe();
    let ledger = Ledger::new(store, dir.path(), bus, None)
        .holding_leases(name.to_owned(), std::time::Duration::from_secs(30));
    let coordinator = Coordinator::new();
    crate::farm::relay::start(&ledger, &coordinator.handle(Stage::Hooks));
    let (tx, _) = watch::channel(Arc::new(settings.clone()));
    let hooks = crate::hooks::HookRunner::new(
        crate::hooks::HookSet::default(),
        tokio_util::task::TaskTracker::new(),
    );
    let ctx = StartContext::new(
        tx.subscribe(),
        ledger.clone(),
        hooks,
        coordinator.handle(Stage::Queue),
        Arc::new(Mutex::new(None)),
    );
    let (queue, actor) = channel();
    Box::new(QueueComponent::new(actor))
        .start(ctx)
        .await
        .unwrap();
    Harness {
        queue,
        ledger,
        settings,
        coordinator,
        rx,
        _settings: tx,
        _dir: dir,
    }
}

/// Polls `check` until it holds (a deadline, never a fixed sleep).
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A farm: a job submitted to daemon `a` (no plotter) is claimed by daemon `b`, which heard of
/// it becoming READY through the relayed events and plots it from the SVG in the database,
/// written into its own workspace; the job names `b` as its daemon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_farm_another_daemon_claims_the_job_and_plots_it_from_the_database() {
    let Some(url) = crate::testing::postgres::database_or_skip("queue::tests::on_a_farm_another")
    else {
        return;
    };
    let a = farm_daemon(&url, "a").await;
    let mut b = farm_daemon(&url, "b").await;
    let plotter = FakeDevice::new(&b.ledger, "plotter", true);
    b.queue.attach_device(plotter.clone()).await.unwrap();
    let job = a.queue.submit(squares(true)).await.unwrap();
    assert_eq!(job.submitted_by.as_deref(), Some("a"));
    b.wait_state(&job.id, JobState::Armed).await;
    eventually("b's plotter takes the job", || {
        !plotter.assigned().is_empty()
    })
    .await;
    assert_eq!(plotter.assigned(), vec![job.id.clone()]);
    let source = plotter.sources.lock().unwrap()[0].clone().unwrap();
    let own = b
        .settings
        .jobs_dir()
        .join(job.id.as_str())
        .join("source.svg");
    assert_eq!(
        std::path::Path::new(&source),
        own,
        "b's own copy, not a's file"
    );
    assert_eq!(std::fs::read_to_string(&own).unwrap(), SQUARES);
    let record = a
        .ledger
        .store()
        .job(job.id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            record.state,
            record.daemon.as_deref(),
            record.submitted_by.as_deref()
        ),
        (JobState::Armed, Some("b"), Some("a"))
    );
    // Plotted and deleted on a: b's copy of its files goes too.
    move_to(&b.ledger, &job.id, &[JobEvent::Start, JobEvent::Complete]).await;
    a.queue.delete(job.id.clone()).await.unwrap();
    let dir = own.parent().unwrap().to_path_buf();
    eventually("b's copy to be removed", || !dir.exists()).await;
}

/// Start-up recovery on a farm leaves another daemon's submission in progress (`NEW`, its SVG
/// in that daemon's workspace) alone, and fails only its own cut short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_farm_recovery_leaves_the_other_daemons_submissions_alone() {
    let Some(url) = crate::testing::postgres::database_or_skip("queue::tests::on_a_farm_recovery")
    else {
        return;
    };
    let b = farm_daemon(&url, "b").await;
    let store = b.ledger.store();
    let mut ids = Vec::new();
    for by in ["a", "b"] {
        let (job, _) = store
            .insert_job(crate::store::NewJob {
                name: format!("by {by}"),
                submitted_by: Some(by.into()),
                ..crate::store::NewJob::default()
            })
            .await
            .unwrap();
        ids.push(job.id);
    }
    let recovered = recover_submissions(&b.ledger, &b.settings.jobs_dir())
        .await
        .unwrap();
    assert_eq!(recovered.failed, vec![ids[1].clone()]);
    let state = |i: usize| {
        let id = ids[i].clone();
        async move { store.job(id.as_str()).await.unwrap().unwrap().state }
    };
    assert_eq!(state(0).await, JobState::New, "a's upload in progress");
    assert_eq!(state(1).await, JobState::Failed);
}

/// Two daemons with a free plotter each and several released jobs: each job goes to one
/// plotter; a job PAUSED on one daemon is resumed there only, and does not hold the other's
/// plotter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_farm_each_job_starts_once_and_a_paused_job_stays_with_its_daemon() {
    let Some(url) = crate::testing::postgres::database_or_skip("queue::tests::on_a_farm_each")
    else {
        return;
    };
    let mut a = farm_daemon(&url, "a").await;
    let b = farm_daemon(&url, "b").await;
    let pa = FakeDevice::new(&a.ledger, "plotter", true);
    let pb = FakeDevice::new(&b.ledger, "plotter", true);
    let mut jobs = Vec::new();
    for _ in 0..4 {
        let job = a.queue.submit(squares(false)).await.unwrap();
        a.wait_state(&job.id, JobState::Ready).await;
        jobs.push(job.id);
    }
    for id in &jobs {
        a.queue.control(id.clone(), JobAction::Start).await.unwrap();
    }
    // Both attach at once: each claims the head job it finds, never the same one.
    let (ra, rb) = tokio::join!(
        a.queue.attach_device(pa.clone()),
        b.queue.attach_device(pb.clone())
    );
    ra.unwrap();
    rb.unwrap();
    eventually("both plotters busy", || {
        pa.assigned().len() == 1 && pb.assigned().len() == 1
    })
    .await;
    assert_ne!(pa.assigned(), pb.assigned(), "one job, two plotters");
    let on_a = pa.assigned()[0].clone();
    move_to(&a.ledger, &on_a, &[JobEvent::Start]).await;
    a.queue
        .control(on_a.clone(), JobAction::Pause)
        .await
        .unwrap();
    let refused = b.queue.control(on_a.clone(), JobAction::Resume).await;
    match refused {
        Err(QueueError::InvalidState(m)) => assert!(m.contains("daemon `a`"), "{m}"),
        other => panic!("b resumed a's job: {other:?}"),
    }
    assert!(matches!(
        b.queue.control(on_a.clone(), JobAction::Abort).await,
        Err(QueueError::InvalidState(_))
    ));
    // b's plotter is held by b's own job only.
    let held = b.queue.holders().await.unwrap();
    assert_eq!(held.values().collect::<Vec<_>>(), vec![&pb.assigned()[0]]);
    a.queue
        .control(on_a.clone(), JobAction::Resume)
        .await
        .unwrap();
    let record = a.ledger.store().job(on_a.as_str()).await.unwrap().unwrap();
    assert_eq!(
        (record.state, record.daemon.as_deref()),
        (JobState::Plotting, Some("a"))
    );
    let ready = a.ledger.store().jobs(vec![JobState::Ready]).await.unwrap();
    assert_eq!(ready.len(), 2, "the other two wait for a free plotter");
}

/// Issue 15: on a farm, a job asking for a plotter or tags that no plotter of any live daemon
/// meets is refused at submission, listing the farm's plotters with their daemons; a job
/// another daemon's plotter meets is taken (it waits for that plotter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_farm_a_job_no_plotter_of_the_farm_meets_is_refused() {
    let Some(url) = crate::testing::postgres::database_or_skip("queue::tests::on_a_farm_a_job_no")
    else {
        return;
    };
    let a = farm_daemon(&url, "a").await;
    let b = farm_daemon(&url, "b").await;
    let crate::store::JobStore::Postgres(pg) = b.ledger.store() else {
        panic!("a farm is on PostgreSQL");
    };
    for (daemon, plotter, tags) in [("a", "left", vec!["a3".to_owned()]), ("b", "right", vec![])] {
        let me = crate::store::DaemonIdentity {
            name: daemon.into(),
            host: "studio".into(),
            workspace: format!("/srv/{daemon}"),
            pid: 1,
            plotters: vec![crate::store::Plotter {
                name: plotter.into(),
                model: 2,
                tags,
                named: true,
            }],
        };
        pg.register_daemon(&me, crate::timestamp::now_ms(), 30_000)
            .await
            .unwrap();
    }
    for (submission, asked) in [
        (asking(None, &["red"]), "tags red"),
        (asking(Some("middle"), &[]), "device middle"),
        (asking(Some("right"), &["a3"]), "device right, tags a3"),
    ] {
        let e = b.queue.submit(submission).await.unwrap_err();
        assert!(matches!(e, QueueError::Invalid(_)), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains(asked), "{msg}");
        assert!(
            msg.contains("`left` on daemon `a` (model 2, tags a3)"),
            "{msg}"
        );
        assert!(
            msg.contains("`right` on daemon `b` (model 2, no tags)"),
            "{msg}"
        );
    }
    let jobs = b.queue.list(ListFilter::default()).await.unwrap();
    assert!(jobs.is_empty(), "nothing refused was created: {jobs:?}");
    // a's plotter meets it: b takes the job (a plots it).
    let ok = b.queue.submit(asking(Some("LEFT"), &["A3"])).await.unwrap();
    assert_eq!(ok.requirements.device.as_deref(), Some("LEFT"));
    drop(a);
}

/// An unnamed plotter's id is known once its board is found, after the daemon registered
/// (`simulator` for `port: auto`): the farm's list records the ids of the plotters attached, so
/// an AxiDraw found at start, or by `auto`'s later switch, is listed under its port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_farm_lists_an_unnamed_plotter_under_the_id_it_was_found_with() {
    let Some(url) = crate::testing::postgres::database_or_skip("queue::tests::the_farm_lists_an")
    else {
        return;
    };
    let h = farm_daemon(&url, "unnamed").await;
    let crate::store::JobStore::Postgres(pg) = h.ledger.store() else {
        panic!("a farm is on PostgreSQL");
    };
    // As the daemon registers at start: its lone unnamed `device:` (port auto) is `simulator`.
    let me = crate::store::DaemonIdentity {
        name: "unnamed".into(),
        host: crate::settings::host_name(),
        workspace: h.settings.workspace.display().to_string(),
        pid: 1,
        plotters: vec![crate::store::Plotter {
            name: "simulator".into(),
            model: 2,
            tags: Vec::new(),
            named: false,
        }],
    };
    pg.register_daemon(&me, crate::timestamp::now_ms(), 30_000)
        .await
        .unwrap();
    let listed = async || -> Vec<String> {
        pg.farm_plotters(crate::timestamp::now_ms(), 30_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|(d, _)| d == "unnamed")
            .map(|(_, p)| p.name)
            .collect()
    };
    assert_eq!(listed().await, ["simulator"]);
    // The device task found the AxiDraw on its port.
    let found = FakeDevice::new(&h.ledger, "/dev/ttyACM0", true);
    h.queue.attach_device(found).await.unwrap();
    until_listed(pg, "unnamed", &["/dev/ttyACM0"]).await;
    let farm = pg
        .farm_plotters(crate::timestamp::now_ms(), 30_000)
        .await
        .unwrap();
    let (_, plotter) = farm.iter().find(|(d, _)| d == "unnamed").unwrap();
    assert!(!plotter.named, "an unnamed plotter stays unnamed");
    // `auto` switches: the old id goes, the new one comes.
    h.queue.detach_device("/dev/ttyACM0".into()).await.unwrap();
    h.queue
        .attach_device(FakeDevice::new(&h.ledger, "/dev/ttyACM1", true))
        .await
        .unwrap();
    until_listed(pg, "unnamed", &["/dev/ttyACM1"]).await;
    assert_eq!(listed().await, ["/dev/ttyACM1"]);
}

/// Waits until the farm lists exactly `names` (sorted, `named` marking each named one with
/// `!`) for the daemon `daemon`: the queue records its plotters outside its loop.
async fn until_listed(pg: &crate::store::PgStore, daemon: &str, names: &[&str]) {
    // Well within the registration's 30 s lifetime.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut now: Vec<String> = pg
            .farm_plotters(crate::timestamp::now_ms(), 30_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|(d, _)| d == daemon)
            .map(|(_, p)| format!("{}{}", if p.named { "!" } else { "" }, p.name))
            .collect();
        now.sort();
        if now == names {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the farm lists {now:?} for {daemon}, not {names:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Plotters attach one at a time, and a rescan may re-attach one: a named plotter stays in
/// the farm's list all along (another daemon could register its name in a gap), named even
/// after a reload took its `name:` away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_farm_keeps_the_named_plotters_listed_while_they_attach() {
    let Some(url) = crate::testing::postgres::database_or_skip("queue::tests::the_farm_keeps")
    else {
        return;
    };
    let h = farm_daemon_with(&url, "named", |s| {
        let mut left = s.device.clone();
        left.name = Some("left".into());
        let mut right = s.device.clone();
        right.name = Some("right".into());
        s.devices = vec![left, right];
    })
    .await;
    let crate::store::JobStore::Postgres(pg) = h.ledger.store() else {
        panic!("a farm is on PostgreSQL");
    };
    let me = crate::store::DaemonIdentity {
        name: "named".into(),
        host: crate::settings::host_name(),
        workspace: h.settings.workspace.display().to_string(),
        pid: 1,
        plotters: crate::daemon::farm_plotters(&h.settings),
    };
    pg.register_daemon(&me, crate::timestamp::now_ms(), 30_000)
        .await
        .unwrap();
    until_listed(pg, "named", &["!left", "!right"]).await;
    // A reload takes the names away: what was registered stays protected.
    h._settings.send_modify(|s| {
        for d in &mut Arc::make_mut(s).devices {
            d.name = None;
        }
    });
    h.queue
        .attach_device(FakeDevice::new(&h.ledger, "left", true))
        .await
        .unwrap();
    // An unnamed plotter attaches too: it shows that the list was written.
    h.queue
        .attach_device(FakeDevice::new(&h.ledger, "/dev/ttyACM0", true))
        .await
        .unwrap();
    until_listed(pg, "named", &["!left", "!right", "/dev/ttyACM0"]).await;
    h.queue.detach_device("left".into()).await.unwrap();
    h.queue.detach_device("/dev/ttyACM0".into()).await.unwrap();
    until_listed(pg, "named", &["!left", "!right"]).await;
}
