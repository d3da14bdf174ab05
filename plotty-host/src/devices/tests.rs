//! The queue, its pipeline and the device task on the built-in simulator, against a real store
//! and ledger in a temporary workspace. Waits are for events (with a generous guard against a
//! hang), never for time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use super::*;
use crate::events::{self, DaemonEvent, DeviceState, JobProgress};
use crate::job::{JobEvent, JobId, JobState, Reason};
use crate::ledger::Ledger;
use crate::queue::{self, JobAction, QueueComponent, Submission, SvgSource};
use crate::settings::{DeviceKind, Settings};
use crate::shutdown::Coordinator;
use crate::store::{Store, TransitionRequest};

/// Longest wait for an expected event before the test fails (a hang, not a timing assertion).
const GUARD: Duration = Duration::from_secs(120);

struct Harness {
    queue: QueueHandle,
    ledger: Ledger,
    rx: broadcast::Receiver<DaemonEvent>,
    coordinator: Coordinator,
    _settings: watch::Sender<Arc<Settings>>,
    _dir: tempfile::TempDir,
}

async fn harness(pace: SimPace) -> Harness {
    harness_with(|queue| DeviceComponent::new(queue, pace)).await
}

async fn harness_with(device: impl FnOnce(QueueHandle) -> DeviceComponent) -> Harness {
    harness_kind(DeviceKind::Simulator, device).await
}

/// A harness whose settings say `device.type: kind`.
async fn harness_kind(
    kind: DeviceKind,
    device: impl FnOnce(QueueHandle) -> DeviceComponent,
) -> Harness {
    harness_settings(|s| s.device.kind = kind, device).await
}

/// A harness with the settings `adjust` makes of the defaults.
async fn harness_settings(
    adjust: impl FnOnce(&mut Settings),
    device: impl FnOnce(QueueHandle) -> DeviceComponent,
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::defaults_for(dir.path());
    settings.device.kind = DeviceKind::Simulator;
    adjust(&mut settings);
    // The device stage starts one task per plotter of the list; the tests adjust the first.
    if let Some(first) = settings.devices.first_mut()
        && first.name.is_none()
    {
        *first = settings.device.clone();
    }
    std::fs::create_dir_all(settings.jobs_dir()).unwrap();
    let (store, _) = Store::open(&settings.database.path).unwrap();
    let bus = events::bus();
    let rx = bus.subscribe();
    let ledger = Ledger::new(store, dir.path(), bus, None);
    let coordinator = Coordinator::new();
    let (tx, _) = watch::channel(Arc::new(settings));
    let hooks = crate::hooks::HookRunner::new(
        crate::hooks::HookSet::default(),
        tokio_util::task::TaskTracker::new(),
    );
    let ctx = |stage| {
        StartContext::new(
            tx.subscribe(),
            ledger.clone(),
            hooks.clone(),
            coordinator.handle(stage),
            Arc::new(Mutex::new(None)),
        )
    };
    let (queue, actor) = queue::channel();
    Box::new(device(queue.clone()))
        .start(ctx(Stage::Devices))
        .await
        .unwrap();
    Box::new(QueueComponent::new(actor))
        .start(ctx(Stage::Queue))
        .await
        .unwrap();
    // The device attaches itself from a task of its own.
    tokio::time::timeout(GUARD, async {
        while queue.devices().await.unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the device attaches");
    Harness {
        queue,
        ledger,
        rx,
        coordinator,
        _settings: tx,
        _dir: dir,
    }
}

fn submission(svg: &str, start: bool) -> Submission {
    Submission {
        svg: SvgSource::Bytes(Bytes::from(svg.to_owned())),
        name: Some("test.svg".into()),
        paper: None,
        layers: None,
        priority: 0,
        start,
        options: Default::default(),
        requirements: Default::default(),
    }
}

/// A few squares on one layer.
const SQUARES: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="100mm" height="100mm" viewBox="0 0 100 100">
  <path d="M10 10 H30 V30 H10 Z" stroke="black" fill="none"/>
  <path d="M50 10 H70 V30 H50 Z" stroke="black" fill="none"/>
  <path d="M10 50 H30 V70 H10 Z" stroke="black" fill="none"/>
</svg>"#;

/// One short line: a plot of a second at the simulator's real pace.
const LINE: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="100mm" height="100mm" viewBox="0 0 100 100">
  <path d="M10 10 H20" stroke="black" fill="none"/>
</svg>"#;

/// Two layers, the second one behind a pen change.
const TWO_PENS: &str = r#"<svg xmlns="http://www.w3.org/2000/svg"
    xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape"
    width="100mm" height="100mm" viewBox="0 0 100 100">
  <g inkscape:groupmode="layer" inkscape:label="1 black">
    <path d="M10 10 H40 V40" stroke="black" fill="none"/>
  </g>
  <g inkscape:groupmode="layer" inkscape:label="!2 red">
    <path d="M50 50 H80 V80" stroke="red" fill="none"/>
  </g>
</svg>"#;

/// Many long strokes: a plot of minutes at the simulator's real pace.
fn long_drawing() -> String {
    let mut paths = String::new();
    for i in 0..60 {
        let y = 10.0 + f64::from(i) * 2.5;
        paths.push_str(&format!(
            r#"<path d="M10 {y} H190" stroke="black" fill="none"/>"#
        ));
    }
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="200mm" height="200mm" viewBox="0 0 200 200">{paths}</svg>"#
    )
}

impl Harness {
    /// Waits for `job` to reach `state`; returns the change and every state seen on the way.
    async fn wait_state(
        &mut self,
        job: &JobId,
        state: JobState,
    ) -> (crate::store::StateChange, Vec<JobState>) {
        let mut seen = Vec::new();
        let found = tokio::time::timeout(GUARD, async {
            loop {
                match self.rx.recv().await {
                    Ok(DaemonEvent::JobStateChanged(c)) if &c.job_id == job => {
                        seen.push(c.to);
                        if c.to == state {
                            return c;
                        }
                        assert!(
                            !c.to.is_terminal(),
                            "job ended {} ({:?}) while waiting for {state}",
                            c.to,
                            c.error
                        );
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("bus closed: {e}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("job {job} did not reach {state}; saw {seen:?}"));
        (found, seen)
    }

    /// Waits for a progress report of `job` past `points` points.
    async fn wait_progress(&mut self, job: &JobId, points: u64) -> JobProgress {
        tokio::time::timeout(GUARD, async {
            loop {
                if let Ok(DaemonEvent::JobProgress(p)) = self.rx.recv().await
                    && &p.job_id == job
                    && p.points_plotted > points
                {
                    return p;
                }
            }
        })
        .await
        .expect("no progress")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitted_svg_is_plotted_to_completion_on_the_simulator() {
    let mut h = harness(SimPace::Fast).await;
    let job = h.queue.submit(submission(SQUARES, true)).await.unwrap();
    let mut progress = Vec::new();
    let mut seen = Vec::new();
    tokio::time::timeout(GUARD, async {
        loop {
            match h.rx.recv().await {
                Ok(DaemonEvent::JobStateChanged(c)) if c.job_id == job.id => {
                    seen.push(c.to);
                    if c.to.is_terminal() {
                        break;
                    }
                }
                Ok(DaemonEvent::JobProgress(p)) if p.job_id == job.id => progress.push(p),
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        seen,
        [
            JobState::New,
            JobState::Queued,
            JobState::Analyzed,
            JobState::Optimized,
            JobState::Ready,
            JobState::Armed,
            JobState::Plotting,
            JobState::Completed
        ]
    );
    let details = h.queue.job(job.id.clone()).await.unwrap();
    assert_eq!(details.layers.len(), 1);
    assert_eq!(details.layers[0].strokes, Some(3));
    assert!(details.job.estimate_pre_s.unwrap() > 0.0);
    assert!(details.job.estimate_post_s.unwrap() > 0.0);
    assert!(details.job.finished_at.is_some());
    let last = progress.last().expect("progress reports");
    assert_eq!(last.progress, 1.0);
    assert_eq!(last.points_plotted, last.total_points);
    assert!(last.distance_mm > 3.0 * 70.0, "{last:?}");
    // The device is free again, and says so.
    let status = h.queue.devices().await.unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].device_type, "simulator");
    assert_eq!(status[0].current_job_id, None);
    assert!(status[0].firmware_version.is_some());
    // The motor supply read during the plot (issue 11: the web UI's device panel shows it).
    let supply = status[0].motor_supply.expect("a motor supply reading");
    assert!(!supply.low && supply.reading >= 250, "{supply:?}");
}

/// Two simulated plotters, `left` (model 2, tagged `a3`) and `right` (model 1).
fn two_plotters(s: &mut Settings) {
    let mut left = s.device.clone();
    left.name = Some("left".into());
    left.tags = vec!["a3".into()];
    left.axidraw.model = plotty_motion::kinematics::Model::from_number(2).unwrap();
    let mut right = s.device.clone();
    right.name = Some("right".into());
    s.devices = vec![left, right];
}

/// Issue 15: each configured plotter gets a device task of its own, attached under its name,
/// with its own simulator, settings and tags; each takes jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_configured_plotter_is_a_device_task_attached_under_its_name() {
    let mut h =
        harness_settings(two_plotters, |q| DeviceComponent::new(q, SimPace::Realtime)).await;
    tokio::time::timeout(GUARD, async {
        while h.queue.devices().await.unwrap().len() < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("both plotters attach");
    let mut ids: Vec<_> = h
        .queue
        .devices()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.device_id, d.device_type, d.tags))
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            (
                "left".to_owned(),
                "simulator".to_owned(),
                vec!["a3".to_owned()]
            ),
            ("right".to_owned(), "simulator".to_owned(), Vec::new())
        ]
    );
    // Both plot at once, each on its own simulator: a long plot holds one plotter, and a
    // short job goes to the other meanwhile.
    let long = h
        .queue
        .submit(submission(&long_drawing(), true))
        .await
        .unwrap();
    h.wait_state(&long.id, JobState::Plotting).await;
    let short = h.queue.submit(submission(LINE, true)).await.unwrap();
    h.wait_state(&short.id, JobState::Completed).await;
    let store = h.ledger.store().clone();
    let mut on = vec![
        store.device_of(long.id.as_str()).await.unwrap(),
        store.device_of(short.id.as_str()).await.unwrap(),
    ];
    h.queue
        .control(long.id.clone(), JobAction::Abort)
        .await
        .unwrap();
    on.sort();
    assert_eq!(on, [Some("left".to_owned()), Some("right".to_owned())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_plotted_with_its_own_options() {
    let mut h = harness(SimPace::Fast).await;
    let slow = crate::settings::RunOptions {
        speed_pendown: Some(5.0),
        ..Default::default()
    };
    let mut taken = Vec::new();
    for options in [crate::settings::RunOptions::default(), slow] {
        let job = h
            .queue
            .submit(Submission {
                options,
                ..submission(SQUARES, true)
            })
            .await
            .unwrap();
        let mut last = None;
        tokio::time::timeout(GUARD, async {
            loop {
                match h.rx.recv().await {
                    Ok(DaemonEvent::JobStateChanged(c))
                        if c.job_id == job.id && c.to.is_terminal() =>
                    {
                        assert_eq!(c.to, JobState::Completed);
                        break;
                    }
                    Ok(DaemonEvent::JobProgress(p)) if p.job_id == job.id => last = Some(p),
                    _ => {}
                }
            }
        })
        .await
        .unwrap();
        let details = h.queue.job(job.id.clone()).await.unwrap();
        let planned = details.job.estimate_post_s.unwrap();
        // The simulated board's time: the plan the device ran is the one estimated, made with
        // the job's options (the configured 25 % would take far less than a 5 % estimate).
        let ran = last.expect("progress").total_time_seconds;
        assert!(
            (ran / planned - 1.0).abs() < 0.02,
            "ran {ran:.2} s, planned {planned:.2} s"
        );
        taken.push(ran);
    }
    assert!(taken[1] > 2.0 * taken[0], "{taken:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_delay_waits_after_the_previous_plot_and_an_abort_ends_the_wait() {
    let mut h = harness(SimPace::Fast).await;
    let first = h.queue.submit(submission(SQUARES, true)).await.unwrap();
    h.wait_state(&first.id, JobState::Completed).await;
    let ended = std::time::Instant::now();
    let delayed = |seconds: f64| Submission {
        options: crate::settings::RunOptions {
            page_delay: Some(seconds),
            ..Default::default()
        },
        ..submission(SQUARES, true)
    };
    let second = h.queue.submit(delayed(0.6)).await.unwrap();
    h.wait_state(&second.id, JobState::Plotting).await;
    let waited = ended.elapsed().as_secs_f64();
    assert!(waited >= 0.6, "plotting after {waited:.3} s");
    h.wait_state(&second.id, JobState::Completed).await;
    // An abort during a long delay ends it at once: nothing waits an hour.
    let third = h.queue.submit(delayed(3600.0)).await.unwrap();
    h.wait_state(&third.id, JobState::Armed).await;
    let asked = std::time::Instant::now();
    h.queue
        .control(third.id.clone(), JobAction::Abort)
        .await
        .unwrap();
    let (c, _) = tokio::time::timeout(GUARD, async {
        loop {
            match h.rx.recv().await {
                Ok(DaemonEvent::JobStateChanged(c))
                    if c.job_id == third.id && c.to.is_terminal() =>
                {
                    return (c, ());
                }
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(c.to, JobState::Aborted);
    assert!(asked.elapsed().as_secs() < 60, "{:?}", asked.elapsed());
    drop(h.coordinator);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_svg_fails_with_the_reason() {
    let mut h = harness(SimPace::Fast).await;
    let job = h
        .queue
        .submit(submission(
            "<svg xmlns='http://www.w3.org/2000/svg'><g><path d='M0 0 L10 10'",
            true,
        ))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let failed = tokio::time::timeout(GUARD, async {
        loop {
            if let Ok(DaemonEvent::JobStateChanged(c)) = h.rx.recv().await
                && c.job_id == job.id
            {
                seen.push(c.to);
                if c.to.is_terminal() {
                    return c;
                }
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(seen, [JobState::New, JobState::Queued, JobState::Failed]);
    assert_eq!(failed.reason, Reason::Error);
    let error = failed.error.unwrap();
    assert!(error.contains("broken SVG/XML"), "{error}");
    let stored = h.queue.job(job.id.clone()).await.unwrap().job;
    assert_eq!(stored.error.as_deref(), Some(error.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_import_warnings_come_with_the_analysis() {
    // Issue 11: an uploader sees what will not be drawn before the job is plotted.
    let mut h = harness(SimPace::Fast).await;
    let filled = r#"<svg xmlns="http://www.w3.org/2000/svg" width="50mm" height="50mm" viewBox="0 0 50 50">
  <rect x="5" y="5" width="10" height="10" fill="black"/>
  <path d="M20 20 H40" stroke="black" fill="none"/>
</svg>"#;
    let job = h.queue.submit(submission(filled, false)).await.unwrap();
    let (analysed, _) = h.wait_state(&job.id, JobState::Analyzed).await;
    let warnings = analysed.metadata["warnings"].as_array().unwrap().clone();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .contains("fills are not drawn"),
        "{warnings:?}"
    );
    // A clean drawing has an empty list, not none (the UI tells "no warnings" from "unknown").
    let job = h.queue.submit(submission(SQUARES, false)).await.unwrap();
    let (analysed, _) = h.wait_state(&job.id, JobState::Analyzed).await;
    assert_eq!(analysed.metadata["warnings"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pen_change_pauses_until_resume() {
    let mut h = harness(SimPace::Fast).await;
    let job = h.queue.submit(submission(TWO_PENS, true)).await.unwrap();
    let (paused, _) = h.wait_state(&job.id, JobState::Paused).await;
    assert_eq!(paused.reason, Reason::PenChange);
    // The pause names the pen to put in (issue 11: the web UI's prompt).
    let next = &paused.metadata["layer"];
    assert_eq!(next["index"], 1, "{next}");
    assert_eq!(next["number"], 2, "{next}");
    assert_eq!(next["color"], "#ff0000", "{next}");
    assert!(next["name"].as_str().unwrap().contains("red"), "{next}");
    let layers = h.queue.job(job.id.clone()).await.unwrap().layers;
    assert!(layers[1].pause_before);
    let resumed = h
        .queue
        .control(job.id.clone(), JobAction::Resume)
        .await
        .unwrap();
    assert_eq!(resumed.state, JobState::Plotting);
    let (done, seen) = h.wait_state(&job.id, JobState::Completed).await;
    assert_eq!(seen, [JobState::Plotting, JobState::Completed]);
    assert_eq!(done.reason, Reason::Finished);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_submitted_without_start_waits_ready_until_start() {
    let mut h = harness(SimPace::Fast).await;
    let job = h.queue.submit(submission(SQUARES, false)).await.unwrap();
    h.wait_state(&job.id, JobState::Ready).await;
    let e = h
        .queue
        .control(job.id.clone(), JobAction::Pause)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "INVALID_STATE");
    let e = h
        .queue
        .control(job.id.clone(), JobAction::Resume)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("plotty start"), "{e}");
    let released = h
        .queue
        .control(job.id.clone(), JobAction::Start)
        .await
        .unwrap();
    assert!(
        released.state == JobState::Ready || released.state == JobState::Armed,
        "{}",
        released.state
    );
    assert_eq!(released.metadata["start"], Value::Bool(true));
    h.wait_state(&job.id, JobState::Completed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_plot_pauses_resumes_and_aborts() {
    let mut h = harness(SimPace::Realtime).await;
    let job = h
        .queue
        .submit(submission(&long_drawing(), true))
        .await
        .unwrap();
    h.wait_state(&job.id, JobState::Plotting).await;
    h.wait_progress(&job.id, 4).await;

    let paused = h
        .queue
        .control(job.id.clone(), JobAction::Pause)
        .await
        .unwrap();
    assert_eq!(paused.state, JobState::Paused);
    assert_eq!(paused.state_reason.as_deref(), Some("user"));
    let point = paused.resume.clone().expect("a resume point");
    assert!(point.position.is_some());
    let status = &h.queue.devices().await.unwrap()[0];
    assert_eq!(status.pen_up, Some(true));
    assert_eq!(status.current_job_id.as_ref(), Some(&job.id));
    // The machine may be moved while the job is paused: its resume asks the board where the
    // carriage is and travels back to the resume point.
    h.queue
        .device(None, queue::DeviceAction::Home)
        .await
        .unwrap();
    let paused = h.queue.job(job.id.clone()).await.unwrap().job;
    assert_eq!(paused.state, JobState::Paused);
    let kept = paused.resume.expect("the resume point is kept");
    assert_eq!(
        (
            kept.layer,
            kept.stroke,
            kept.vertex,
            kept.pen_down,
            kept.position
        ),
        (
            point.layer,
            point.stroke,
            point.vertex,
            point.pen_down,
            point.position
        ),
        "homing keeps the resume point"
    );

    let resumed = h
        .queue
        .control(job.id.clone(), JobAction::Resume)
        .await
        .unwrap();
    assert_eq!(resumed.state, JobState::Plotting);
    let before = point.stroke;
    let p = h.wait_progress(&job.id, 0).await;
    assert!(p.progress > 0.0);

    let aborted = h
        .queue
        .control(job.id.clone(), JobAction::Abort)
        .await
        .unwrap();
    assert_eq!(aborted.state, JobState::Aborted);
    assert!(aborted.resume.unwrap().stroke >= before);
    // The device comes free once the carriage is parked.
    tokio::time::timeout(GUARD, async {
        loop {
            if let Ok(DaemonEvent::DeviceStatus(s)) = h.rx.recv().await
                && s.current_job_id.is_none()
            {
                return;
            }
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_status_carries_the_carriage_position_with_each_progress_report() {
    // Issue 11: the position was null all through a plot, so the web UI could not draw the
    // pen's trail.
    let mut h = harness(SimPace::Realtime).await;
    let job = h
        .queue
        .submit(submission(&long_drawing(), true))
        .await
        .unwrap();
    h.wait_state(&job.id, JobState::Plotting).await;
    let mut positions: Vec<(f64, f64)> = Vec::new();
    let mut reports = 0;
    let mut awaiting_status = false;
    tokio::time::timeout(GUARD, async {
        while positions.len() < 4 {
            match h.rx.recv().await {
                Ok(DaemonEvent::JobProgress(p)) if p.job_id == job.id => {
                    reports += 1;
                    awaiting_status = true;
                }
                Ok(DaemonEvent::DeviceStatus(s)) if awaiting_status => {
                    // The status right after a progress report is the device's, busy with this
                    // job, at a known place on the paper.
                    awaiting_status = false;
                    assert_eq!(s.current_job_id.as_ref(), Some(&job.id));
                    let (x, y) = s.position_mm.expect("a position while plotting");
                    assert!(
                        (0.0..=200.0).contains(&x) && (0.0..=200.0).contains(&y),
                        "({x}, {y})"
                    );
                    assert!(s.pen_up.is_some());
                    if positions.last() != Some(&(x, y)) {
                        positions.push((x, y));
                    }
                }
                _ => {}
            }
        }
    })
    .await
    .expect("positions while plotting");
    // At the progress rate: one status per report, no more.
    assert!(
        reports >= positions.len(),
        "{reports} reports, {positions:?}"
    );
    h.queue
        .control(job.id.clone(), JobAction::Abort)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_interrupted_by_a_crash_resumes_from_its_checkpoint() {
    let mut h = harness(SimPace::Fast).await;
    let job = h.queue.submit(submission(SQUARES, false)).await.unwrap();
    h.wait_state(&job.id, JobState::Ready).await;
    // What a crash leaves: the job PLOTTING with the resume point of its last stroke end (the
    // machine at the end of stroke 0, the next motion the travel to stroke 1).
    for event in [JobEvent::Arm, JobEvent::Start] {
        h.ledger
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
    let settings = Settings::defaults_for(std::path::Path::new("/"));
    let config = crate::plot::PlotConfig::from_settings(&settings);
    let prepared = crate::queue::pipeline::build(
        &h.ledger
            .store()
            .job(job.id.as_str())
            .await
            .unwrap()
            .unwrap(),
        &settings,
    )
    .unwrap();
    let first = prepared.program.stroke(0).unwrap();
    let end = first.last().copied().unwrap();
    let steps = config.kinematics().to_motor(end);
    let checkpoint = crate::plot::Checkpoint {
        layer: 0,
        stroke: 1,
        vertex: 0,
        pen_down: false,
        position: [steps.m1, steps.m2],
    };
    h.ledger
        .checkpoint(
            job.id.as_str(),
            run::resume_point(&checkpoint, &config, true),
            false,
        )
        .await
        .unwrap();
    let recovered = h.ledger.recover_interrupted().await.unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].reason, Reason::Interrupted);
    h.wait_state(&job.id, JobState::Paused).await;

    // The board never ran this plot: its motors are off, so where the carriage is is unknown.
    // The resume refuses to move and says to home it first; the job stays PAUSED.
    let e = h
        .queue
        .control(job.id.clone(), JobAction::Resume)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("plotty device home"), "{e}");
    let still = h.queue.job(job.id.clone()).await.unwrap().job;
    assert_eq!(still.state, JobState::Paused, "{:?}", still.error);
    // The user pushes the carriage home and says so; then the resume travels pen-up to the
    // resume point and goes on from there.
    let homed = h
        .queue
        .device(None, queue::DeviceAction::Home)
        .await
        .unwrap();
    assert!(homed.message.contains("home"), "{}", homed.message);
    let resumed = h
        .queue
        .control(job.id.clone(), JobAction::Resume)
        .await
        .unwrap();
    assert_eq!(resumed.state, JobState::Plotting);
    let first_points = prepared.points_before[1];
    let mut reports = Vec::new();
    tokio::time::timeout(GUARD, async {
        loop {
            match h.rx.recv().await {
                Ok(DaemonEvent::JobProgress(p)) if p.job_id == job.id => reports.push(p),
                Ok(DaemonEvent::JobStateChanged(c)) if c.job_id == job.id && c.to.is_terminal() => {
                    assert_eq!(c.to, JobState::Completed, "{:?}", c.error);
                    return;
                }
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    // Nothing before the checkpoint was drawn again: the first report is past stroke 0.
    assert!(
        reports[0].points_plotted >= first_points,
        "{:?} (stroke 1 starts at point {first_points})",
        reports[0]
    );
    // Progress goes on from the checkpoint: the first report is not back at zero, and the job
    // ends with the whole drawing's length as drawn (not just what the resumed run drew).
    assert!(
        reports[0].progress > 0.0,
        "progress restarted at zero: {:?}",
        reports[0]
    );
    let last = reports.last().unwrap();
    assert!(
        (last.distance_mm - prepared.estimate.1.drawn_mm).abs() < 0.5,
        "{} mm drawn recorded for a drawing of {} mm",
        last.distance_mm,
        prepared.estimate.1.drawn_mm
    );
}

/// A job of [`SQUARES`] left `PLOTTING` with a stored resume point on the way to its last
/// stroke (`streaming`: as a run streaming past it stores it, else as a clean stop does): what
/// is left (the stroke and the way home) is short, so the final move home is within the window a
/// resume searches, and a carriage at home matches it. The job, its program, the last stroke.
async fn stopped_before_the_last_stroke(
    h: &mut Harness,
    streaming: bool,
) -> (JobId, crate::queue::pipeline::PreparedJob, u32) {
    let job = h.queue.submit(submission(SQUARES, false)).await.unwrap();
    h.wait_state(&job.id, JobState::Ready).await;
    for event in [JobEvent::Arm, JobEvent::Start] {
        apply(h, &job.id, event, Reason::Pipeline).await;
    }
    let settings = Settings::defaults_for(std::path::Path::new("/"));
    let config = crate::plot::PlotConfig::from_settings(&settings);
    let record = h
        .ledger
        .store()
        .job(job.id.as_str())
        .await
        .unwrap()
        .unwrap();
    let prepared = crate::queue::pipeline::build(&record, &settings).unwrap();
    let last = prepared.program.stroke_count() - 1;
    let before = prepared.program.stroke(last - 1).unwrap();
    let steps = config
        .kinematics()
        .to_motor(before.last().copied().unwrap());
    let checkpoint = crate::plot::Checkpoint {
        layer: 0,
        stroke: last,
        vertex: 0,
        pen_down: false,
        position: [steps.m1, steps.m2],
    };
    h.ledger
        .checkpoint(
            job.id.as_str(),
            run::resume_point(&checkpoint, &config, streaming),
            false,
        )
        .await
        .unwrap();
    (job.id, prepared, last)
}

/// Records `event` for `job` as the device task would.
async fn apply(h: &Harness, job: &JobId, event: JobEvent, reason: Reason) {
    h.ledger
        .apply(TransitionRequest {
            job_id: job.clone(),
            event,
            reason,
            error: None,
            metadata: Value::Null,
        })
        .await
        .unwrap();
}

/// Resumes `job` and checks that its plot ends with the last stroke drawn (progress passes
/// through it, not straight to the end) and without a search along the path.
async fn resume_draws_the_last_stroke(
    h: &mut Harness,
    job: &JobId,
    prepared: &crate::queue::pipeline::PreparedJob,
    last: u32,
) {
    h.queue
        .control(job.clone(), JobAction::Resume)
        .await
        .unwrap();
    let mut reports = Vec::new();
    tokio::time::timeout(GUARD, async {
        loop {
            match h.rx.recv().await {
                Ok(DaemonEvent::JobProgress(p)) if &p.job_id == job => reports.push(p),
                Ok(DaemonEvent::JobStateChanged(c)) if &c.job_id == job && c.to.is_terminal() => {
                    assert_eq!(c.to, JobState::Completed, "{:?}", c.error);
                    return;
                }
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    let last_points = prepared.points_before[last as usize];
    assert!(
        reports
            .iter()
            .any(|r| r.points_plotted >= last_points && r.points_plotted < r.total_points),
        "the last stroke (from point {last_points}) was skipped: {reports:?}"
    );
    let details = h.queue.job(job.clone()).await.unwrap();
    let note = details
        .events
        .iter()
        .find_map(|e| e.metadata["resumed"].as_str().map(str::to_owned));
    assert_eq!(note, None, "no search");
}

/// Whether `job`'s stored resume point may be searched from.
async fn searchable(h: &Harness, job: &JobId) -> bool {
    let record = h.ledger.store().job(job.as_str()).await.unwrap().unwrap();
    record.resume.is_some_and(|p| p.streaming)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_and_a_move_by_hand_the_resume_goes_back_to_the_checkpoint() {
    let mut h = harness(SimPace::Fast).await;
    let (job, prepared, last) = stopped_before_the_last_stroke(&mut h, true).await;
    h.ledger.recover_interrupted().await.unwrap();
    h.wait_state(&job, JobState::Paused).await;
    // The board lost its position: refused; the user homes the carriage. It is at home now,
    // which the path's final move home also reaches: the resume must not take it for where
    // the pen stopped (that would skip the last stroke).
    assert!(
        h.queue
            .control(job.clone(), JobAction::Resume)
            .await
            .is_err()
    );
    h.queue
        .device(None, queue::DeviceAction::Home)
        .await
        .unwrap();
    // Stored, not only known to this daemon: a restart before the resume keeps it.
    assert!(!searchable(&h, &job).await);
    resume_draws_the_last_stroke(&mut h, &job, &prepared, last).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_a_pen_action_on_a_reset_board_sends_the_resume_back_to_the_checkpoint() {
    let mut h = harness(SimPace::Fast).await;
    let (job, prepared, last) = stopped_before_the_last_stroke(&mut h, true).await;
    h.ledger.recover_interrupted().await.unwrap();
    h.wait_state(&job, JobState::Paused).await;
    // The board was reset (the simulator's fresh board): raising the pen enables the motors
    // and zeroes the step counters where the carriage stands, so the board now says (0, 0),
    // home, which the final move home reaches too. The carriage is not where the crashed run
    // left it: the resume must not search.
    h.queue
        .device(None, queue::DeviceAction::PenUp)
        .await
        .unwrap();
    assert!(!searchable(&h, &job).await);
    resume_draws_the_last_stroke(&mut h, &job, &prepared, last).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_clean_stop_and_a_failed_resume_the_next_resume_goes_back_to_the_checkpoint() {
    let mut h = harness(SimPace::Fast).await;
    // A first plot ends parked at home with the motors on: the board knows where it is.
    let first = h.queue.submit(submission(LINE, true)).await.unwrap();
    h.wait_state(&first.id, JobState::Completed).await;
    // A shutdown stopped the next job before its last stroke and parked the carriage at home;
    // after the restart a resume failed before it moved anything (the cable was out): the job
    // is PAUSED with reason device_error, the carriage still at home, which the final move home
    // reaches too. The next resume must go back to the stored point, not skip the stroke.
    let (job, prepared, last) = stopped_before_the_last_stroke(&mut h, false).await;
    apply(&h, &job, JobEvent::Pause, Reason::Shutdown).await;
    apply(&h, &job, JobEvent::Resume, Reason::User).await;
    apply(&h, &job, JobEvent::Pause, Reason::DeviceError).await;
    resume_draws_the_last_stroke(&mut h, &job, &prepared, last).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_actions_on_an_idle_simulator() {
    let h = harness(SimPace::Fast).await;
    let reply = h
        .queue
        .device(None, queue::DeviceAction::PenDown)
        .await
        .unwrap();
    assert_eq!(reply.device_id, "simulator");
    assert_eq!(h.queue.devices().await.unwrap()[0].pen_up, Some(false));
    h.queue
        .device(None, queue::DeviceAction::PenUp)
        .await
        .unwrap();
    assert_eq!(h.queue.devices().await.unwrap()[0].pen_up, Some(true));
    h.queue
        .device(None, queue::DeviceAction::MotorsOff)
        .await
        .unwrap();
    assert_eq!(h.queue.devices().await.unwrap()[0].position_mm, None);
    // With the motors off a walk has nowhere known to start from.
    let e = h
        .queue
        .device(None, queue::DeviceAction::walk(10.0, 0.0).unwrap())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("plotty device home"), "{e}");
    // Home with the motors off: the carriage's place (pushed into the corner) becomes home.
    let homed = h
        .queue
        .device(None, queue::DeviceAction::Home)
        .await
        .unwrap();
    assert!(
        homed.message.contains("motors were off"),
        "{}",
        homed.message
    );
    assert_eq!(
        h.queue.devices().await.unwrap()[0].position_mm,
        Some((0.0, 0.0))
    );
    // Now it walks, stays inside the travel, and goes home again.
    h.queue
        .device(None, queue::DeviceAction::walk(25.0, 12.5).unwrap())
        .await
        .unwrap();
    let (x, y) = h.queue.devices().await.unwrap()[0].position_mm.unwrap();
    assert!(
        (x - 25.0).abs() < 0.02 && (y - 12.5).abs() < 0.02,
        "({x}, {y})"
    );
    let e = h
        .queue
        .device(None, queue::DeviceAction::walk(-30.0, 0.0).unwrap())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("outside the"), "{e}");
    let homed = h
        .queue
        .device(None, queue::DeviceAction::Home)
        .await
        .unwrap();
    assert!(
        homed.message.starts_with("homed from (25.0, 12.5)"),
        "{}",
        homed.message
    );
    assert_eq!(
        h.queue.devices().await.unwrap()[0].position_mm,
        Some((0.0, 0.0))
    );
    drop(h.coordinator);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toggle_flips_the_pen_and_align_leaves_it_up_with_the_motors_off() {
    let h = harness(SimPace::Fast).await;
    let pen_up = || async { h.queue.devices().await.unwrap()[0].pen_up };
    let toggle = || h.queue.device(None, queue::DeviceAction::Toggle);
    assert_eq!(toggle().await.unwrap().message, "pen down");
    assert_eq!(pen_up().await, Some(false));
    assert_eq!(toggle().await.unwrap().message, "pen up");
    assert_eq!(pen_up().await, Some(true));
    assert_eq!(toggle().await.unwrap().message, "pen down");
    let aligned = h
        .queue
        .device(None, queue::DeviceAction::Align)
        .await
        .unwrap();
    assert!(
        aligned.message.starts_with("align: pen up, motors off"),
        "{}",
        aligned.message
    );
    let status = &h.queue.devices().await.unwrap()[0];
    assert_eq!((status.pen_up, status.position_mm), (Some(true), None));
    // The motors are off: a walk is refused until a home.
    let e = h
        .queue
        .device(None, queue::DeviceAction::walk(1.0, 0.0).unwrap())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("plotty device home"), "{e}");
    drop(h.coordinator);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_abort_the_device_takes_the_next_job() {
    let mut h = harness(SimPace::Realtime).await;
    let first = h
        .queue
        .submit(submission(&long_drawing(), true))
        .await
        .unwrap();
    h.wait_progress(&first.id, 2).await;
    let aborted = h
        .queue
        .control(first.id.clone(), JobAction::Abort)
        .await
        .unwrap();
    assert_eq!(aborted.state, JobState::Aborted);
    let second = h.queue.submit(submission(SQUARES, true)).await.unwrap();
    let (_, seen) = h.wait_state(&second.id, JobState::Completed).await;
    assert!(seen.contains(&JobState::Plotting), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_vanishes_mid_plot_leaves_the_job_paused_with_the_error() {
    use plotty_fw_sim::fault::{FaultAction, FaultConfig, ScheduledFault, Trigger};
    let faults = FaultConfig {
        events: vec![ScheduledFault {
            at: Trigger::AfterCommand(300),
            action: FaultAction::Vanish,
        }],
        ..FaultConfig::default()
    };
    let opener = Opener::Simulator {
        version: plotty_fw_sim::FirmwareVersion::V3_0_3,
        pace: SimPace::Fast,
        faults: Some(faults),
    };
    let mut h = harness_with(|queue| DeviceComponent::with_opener(queue, opener)).await;
    let mut devices = h.ledger.bus().subscribe();
    let job = h
        .queue
        .submit(submission(&long_drawing(), true))
        .await
        .unwrap();
    let (paused, seen) = h.wait_state(&job.id, JobState::Paused).await;
    assert!(seen.contains(&JobState::Plotting), "{seen:?}");
    assert_eq!(paused.reason, Reason::DeviceError);
    let error = paused.error.unwrap();
    assert!(error.contains("went away"), "{error}");
    // The device says what was measured: its link failed, so it is disconnected (not "in
    // error", not connected), with no uptime, until the board is back.
    let down = tokio::time::timeout(GUARD, async {
        loop {
            if let Ok(DaemonEvent::DeviceStatus(d)) = devices.recv().await
                && d.status != DeviceState::Busy
                && d.status != DeviceState::Connected
            {
                return d;
            }
        }
    })
    .await
    .expect("a device status after the failure");
    assert_eq!(down.status, DeviceState::Disconnected, "{down:?}");
    assert_eq!(down.uptime_seconds, None);
    let details = h.queue.job(job.id.clone()).await.unwrap();
    assert!(details.job.resume.is_some(), "the resume point is kept");
    assert!(
        details.events.iter().any(|e| e.kind == "device_error"),
        "{:?}",
        details.events
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_leaves_the_running_plot_paused_for_resume() {
    let mut h = harness(SimPace::Realtime).await;
    let job = h
        .queue
        .submit(submission(&long_drawing(), true))
        .await
        .unwrap();
    h.wait_progress(&job.id, 2).await;
    h.coordinator.begin();
    assert!(
        h.coordinator
            .stop_stage(Stage::Queue, Duration::from_secs(10))
            .await
    );
    assert!(
        h.coordinator
            .stop_stage(Stage::Devices, Duration::from_secs(60))
            .await,
        "the device stage stops once the carriage is parked"
    );
    let stored = h
        .ledger
        .store()
        .job(job.id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, JobState::Paused);
    assert_eq!(stored.state_reason.as_deref(), Some("shutdown"));
    assert!(stored.resume.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_is_a_normal_stop_with_no_device_error() {
    let mut h = harness(SimPace::Realtime).await;
    let first = h
        .queue
        .submit(submission(&long_drawing(), true))
        .await
        .unwrap();
    h.wait_progress(&first.id, 2).await;
    h.queue
        .control(first.id.clone(), JobAction::Abort)
        .await
        .unwrap();
    // Once parked: home, healthy, no error (it used to report "position is lost" every time).
    let status = tokio::time::timeout(GUARD, async {
        loop {
            if let Ok(DaemonEvent::DeviceStatus(s)) = h.rx.recv().await
                && s.current_job_id.is_none()
            {
                return s;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        status.status,
        crate::events::DeviceState::Connected,
        "{status:?}"
    );
    assert_eq!(status.error_message, None);
    assert_eq!(status.error_count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plotter_without_motor_power_takes_no_job_and_says_why() {
    use plotty_fw_sim::fault::{FaultAction, FaultConfig, ScheduledFault, Trigger};
    let faults = FaultConfig {
        events: vec![ScheduledFault {
            at: Trigger::AtTick(0),
            action: FaultAction::LowPower { voltage: 40 },
        }],
        ..FaultConfig::default()
    };
    let opener = Opener::Simulator {
        version: plotty_fw_sim::FirmwareVersion::V3_0_3,
        pace: SimPace::Fast,
        faults: Some(faults),
    };
    let mut h = harness_with(|queue| DeviceComponent::with_opener(queue, opener)).await;
    let job = h.queue.submit(submission(SQUARES, true)).await.unwrap();
    // Armed, refused before anything moved, and back to READY waiting for `start`.
    let (back, seen) = h.wait_state(&job.id, JobState::Ready).await;
    let (back, seen) = if seen.contains(&JobState::Armed) {
        (back, seen)
    } else {
        h.wait_state(&job.id, JobState::Ready).await
    };
    assert!(seen.contains(&JobState::Armed), "{seen:?}");
    assert!(!seen.contains(&JobState::Plotting), "{seen:?}");
    let error = back.error.unwrap_or_default();
    assert!(error.contains("power supply"), "{error}");
    let details = h.queue.job(job.id.clone()).await.unwrap().job;
    assert_eq!(details.metadata["start"], Value::Bool(false));
    let status = &h.queue.devices().await.unwrap()[0];
    assert!(
        status
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("motor supply")),
        "{status:?}"
    );
}

/// A device task for `opener` alone (no queue), for health checks.
fn lone_plotter(opener: Opener) -> (Plotter, tempfile::TempDir, watch::Sender<Arc<Settings>>) {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::defaults_for(dir.path());
    let (store, _) = Store::open(&settings.database.path).unwrap();
    let ledger = Ledger::new(store, dir.path(), events::bus(), None);
    let (tx, rx) = watch::channel(Arc::new(settings));
    let shutdown = Coordinator::new().handle(Stage::Devices);
    (Plotter::new(opener, ledger, rx, shutdown, None), dir, tx)
}

#[tokio::test]
async fn device_health_is_measured_not_stamped() {
    use crate::queue::DeviceControl;
    use plotty_fw_sim::fault::{FaultAction, FaultConfig, ScheduledFault, Trigger};
    // A board that answers the first check (`V`, then `QC` for the motor supply), then
    // vanishes on the second check's `V` (each reopened board too).
    let faults = FaultConfig {
        events: vec![ScheduledFault {
            at: Trigger::AfterCommand(3),
            action: FaultAction::Vanish,
        }],
        ..FaultConfig::default()
    };
    let opener = Opener::Simulator {
        version: plotty_fw_sim::FirmwareVersion::V3_0_3,
        pace: SimPace::Fast,
        faults: Some(faults),
    };
    let (plotter, _dir, _settings) = lone_plotter(opener);
    plotter.check_health().await;
    let answered = plotter.status();
    assert_eq!(answered.status, DeviceState::Connected);
    assert!(answered.uptime_seconds.is_some());
    plotter.check_health().await;
    let gone = plotter.status();
    assert_eq!(gone.status, DeviceState::Disconnected, "{gone:?}");
    assert!(
        gone.error_message
            .as_deref()
            .is_some_and(|m| m.contains("went away")),
        "{gone:?}"
    );
    assert_eq!(gone.uptime_seconds, None);
    // The heartbeat is when the board last answered, however often it is read.
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(plotter.status().last_heartbeat, answered.last_heartbeat);
}

#[tokio::test]
async fn a_plotter_whose_port_is_gone_is_offline() {
    use crate::queue::DeviceControl;
    let dir = tempfile::tempdir().unwrap();
    let port = dir.path().join("ttyACM9").display().to_string();
    let (plotter, _dir, _settings) = lone_plotter(Opener::Serial {
        port,
        baud: 9600,
        identity: crate::devices::identity::Identity::default(),
    });
    assert_eq!(plotter.status().status, DeviceState::Connected);
    plotter.check_health().await;
    let status = plotter.status();
    assert_eq!(status.status, DeviceState::Offline, "{status:?}");
    assert!(
        status
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("ttyACM9")),
        "{status:?}"
    );
}

/// A USB search that finds what the test plugs in, and boards that answer the probe.
fn scripted_discovery() -> (
    Discovery,
    Arc<Mutex<Vec<crate::devices::discover::FoundBoard>>>,
) {
    let (discovery, plugged, _) = counting_discovery();
    (discovery, plugged)
}

/// How often a scripted discovery listed the USB ports and opened a board.
#[derive(Default)]
struct Calls {
    listed: std::sync::atomic::AtomicUsize,
    opened: std::sync::atomic::AtomicUsize,
}

impl Calls {
    fn listed(&self) -> usize {
        self.listed.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn opened(&self) -> usize {
        self.opened.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// [`scripted_discovery`] behaving as the system's: the boards the test plugs in are what is
/// connected (with their nickname, or the `problem` that keeps them from answering); the USB
/// listing gives only their ports and serials, as `discover::find_boards` does, and the
/// nickname is known only once identified (each board then opened). Counts its calls.
fn counting_discovery() -> (
    Discovery,
    Arc<Mutex<Vec<crate::devices::discover::FoundBoard>>>,
    Arc<Calls>,
) {
    use std::sync::atomic::Ordering;
    let plugged: Boards = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(Calls::default());
    let (seen, counted) = (Arc::clone(&plugged), Arc::clone(&calls));
    let find = Arc::new(move || {
        counted.listed.fetch_add(1, Ordering::SeqCst);
        Ok(seen
            .lock()
            .unwrap()
            .iter()
            .map(|b| crate::devices::discover::FoundBoard {
                port: b.port.clone(),
                serial: b.serial.clone(),
                ..Default::default()
            })
            .collect())
    });
    let (truth, counted) = (Arc::clone(&plugged), Arc::clone(&calls));
    let identify = Arc::new(move |boards: Vec<crate::devices::discover::FoundBoard>| {
        let truth = truth.lock().unwrap();
        boards
            .into_iter()
            .map(|b| {
                counted.opened.fetch_add(1, Ordering::SeqCst);
                truth
                    .iter()
                    .find(|t| t.port == b.port)
                    .cloned()
                    .unwrap_or(b)
            })
            .collect()
    });
    let counted = Arc::clone(&calls);
    let probe = Arc::new(move |_port: &str| {
        counted.opened.fetch_add(1, Ordering::SeqCst);
        Ok("3.0.3".to_owned())
    });
    (Discovery::new(find, identify, probe, 9600), plugged, calls)
}

fn plug_in(plugged: &Mutex<Vec<crate::devices::discover::FoundBoard>>, port: &str) {
    plugged
        .lock()
        .unwrap()
        .push(crate::devices::discover::FoundBoard {
            port: port.into(),
            ..Default::default()
        });
}

/// A named `auto` plotter keeps its id when it switches to an AxiDraw: nothing is removed,
/// and its alert names no previous id (a client would drop the live plotter).
#[tokio::test]
async fn a_named_auto_plotter_switching_to_an_axidraw_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::defaults_for(dir.path());
    let (store, _) = Store::open(&settings.database.path).unwrap();
    let ledger = Ledger::new(store, dir.path(), events::bus(), None);
    let mut bus = ledger.bus().subscribe();
    let (discovery, plugged) = scripted_discovery();
    let opener = Opener::simulator(settings.device.firmware, SimPace::Fast);
    let (_tx, rx) = watch::channel(Arc::new(settings));
    let shutdown = Coordinator::new().handle(Stage::Devices);
    let plotter = Plotter::named(Some("left".into()), opener, ledger, rx, shutdown, None)
        .auto_fallback(discovery);
    plug_in(&plugged, "/dev/ttyFAKE0");
    assert_eq!(plotter.rescan().await.as_deref(), Some("left"));
    let mut alert = None;
    while let Ok(e) = bus.try_recv() {
        match e {
            DaemonEvent::DeviceRemoved { device_id } => panic!("{device_id} removed"),
            DaemonEvent::Alert(a) => alert = Some(a),
            _ => {}
        }
    }
    let alert = alert.expect("the switch is announced");
    assert_eq!(alert.metadata, serde_json::json!({ "device_id": "left" }));
}

/// `auto` on the simulator never switches to the board another plotter of the daemon holds
/// (nor opens its port to ask).
#[tokio::test]
async fn auto_on_the_simulator_leaves_another_plotters_board_alone() {
    let (discovery, plugged, calls) = counting_discovery();
    let (_holding, _dir, _tx) = follower_with("/dev/ttyFAKE0", |_| {}, &discovery);
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::defaults_for(dir.path());
    let (store, _) = Store::open(&settings.database.path).unwrap();
    let ledger = Ledger::new(store, dir.path(), events::bus(), None);
    let opener = Opener::simulator(settings.device.firmware, SimPace::Fast);
    let (_tx2, rx) = watch::channel(Arc::new(settings));
    let shutdown = Coordinator::new().handle(Stage::Devices);
    let auto = Plotter::new(opener, ledger, rx, shutdown, None)
        .auto_fallback(discovery.clone())
        .following(discovery);
    plug_in(&plugged, "/dev/ttyFAKE0");
    assert_eq!(auto.rescan().await, None);
    assert_eq!(calls.opened(), 0, "the held port is not probed");
    plug_in(&plugged, "/dev/ttyFAKE1");
    assert_eq!(auto.rescan().await.as_deref(), Some("simulator"));
    assert_eq!(auto.inner().opener().port(), Some("/dev/ttyFAKE1"));
}

/// Waits for the alert titled `title`; returns it and the job states seen before it.
async fn wait_alert(
    rx: &mut broadcast::Receiver<DaemonEvent>,
    title: &str,
) -> (events::Alert, Vec<JobState>) {
    let mut states = Vec::new();
    let alert = tokio::time::timeout(GUARD, async {
        loop {
            match rx.recv().await {
                Ok(DaemonEvent::Alert(a)) if a.title == title => return a,
                Ok(DaemonEvent::JobStateChanged(c)) => states.push(c.to),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("bus closed: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no alert `{title}`"));
    (alert, states)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_without_a_plotter_says_so_records_simulated_jobs_and_switches_to_an_axidraw() {
    let (discovery, plugged) = scripted_discovery();
    let mut h = harness_kind(DeviceKind::Auto, |queue| {
        DeviceComponent::new(queue, SimPace::Fast)
            .with_discovery(discovery)
            .with_period(Duration::from_millis(20))
    })
    .await;
    let (alert, _) = wait_alert(&mut h.rx, "no AxiDraw found: plotting on the simulator").await;
    assert!(alert.message.contains("nothing is drawn"), "{alert:?}");
    // The device says it is the simulator and that nothing is drawn.
    let status = &h.queue.devices().await.unwrap()[0];
    assert_eq!(status.device_type, "simulator");
    let notice = status.notice.clone().expect("a notice");
    assert!(notice.contains("nothing is drawn on paper"), "{notice}");
    let line = crate::client::format::device_line(
        &serde_json::to_value(crate::api::protocol::DeviceWire::from(status)).unwrap(),
    );
    assert!(line.contains("NOTE: no AxiDraw found"), "{line}");

    // A job plotted there is COMPLETED and recorded as simulated: never a drawn plot.
    let job = h.queue.submit(submission(SQUARES, true)).await.unwrap();
    h.wait_state(&job.id, JobState::Completed).await;
    let done = h.queue.job(job.id.clone()).await.unwrap().job;
    assert!(
        done.simulated,
        "a plot on the simulator is recorded as simulated"
    );
    let shown = crate::client::format::jobs_table(&serde_json::json!({
        "jobs": [crate::api::views::job(&done, None)]
    }));
    assert!(
        shown.contains("COMPLETED (simulated, nothing drawn)"),
        "{shown}"
    );

    // An AxiDraw plugged in while idle is used from then on, and an alert says so.
    let mut seen = h.ledger.bus().subscribe();
    plug_in(&plugged, "/dev/ttyFAKE0");
    let (alert, _) = wait_alert(&mut h.rx, "AxiDraw connected").await;
    // The id `simulator` is gone: the lists keeping plotters' statuses are told to drop it.
    let mut removed = Vec::new();
    while let Ok(e) = seen.try_recv() {
        if let DaemonEvent::DeviceRemoved { device_id } = e {
            removed.push(device_id);
        }
    }
    assert_eq!(removed, ["simulator"]);
    assert!(alert.message.contains("/dev/ttyFAKE0"), "{alert:?}");
    assert_eq!(alert.metadata["previous_device_id"], "simulator");
    let devices = tokio::time::timeout(GUARD, async {
        loop {
            let d = h.queue.devices().await.unwrap();
            if d.len() == 1 && d[0].device_id == "/dev/ttyFAKE0" {
                return d;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the queue has the AxiDraw under its port");
    assert_eq!(devices[0].device_type, "axidraw");
    assert_eq!(devices[0].port.as_deref(), Some("/dev/ttyFAKE0"));
    assert_eq!(devices[0].notice, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_switches_to_an_axidraw_plugged_in_mid_plot_only_once_idle() {
    let (discovery, plugged) = scripted_discovery();
    let mut h = harness_kind(DeviceKind::Auto, |queue| {
        DeviceComponent::new(queue, SimPace::Realtime)
            .with_discovery(discovery)
            .with_period(Duration::from_millis(20))
    })
    .await;
    let job = h
        .queue
        .submit(submission(&long_drawing(), true))
        .await
        .unwrap();
    h.wait_progress(&job.id, 2).await;
    plug_in(&plugged, "/dev/ttyFAKE1");
    // Many scans see the board while the plot runs; none switches.
    h.wait_progress(&job.id, 6).await;
    let status = &h.queue.devices().await.unwrap()[0];
    assert_eq!(status.device_id, "simulator", "switched while plotting");
    assert_eq!(status.current_job_id.as_ref(), Some(&job.id));
    let aborted = h
        .queue
        .control(job.id.clone(), JobAction::Abort)
        .await
        .unwrap();
    assert_eq!(aborted.state, JobState::Aborted);
    assert!(aborted.simulated);
    let (alert, _) = wait_alert(&mut h.rx, "AxiDraw connected").await;
    assert!(alert.message.contains("/dev/ttyFAKE1"), "{alert:?}");
    let shown = crate::client::format::jobs_table(&serde_json::json!({
        "jobs": [crate::api::views::job(&aborted, None)]
    }));
    assert!(shown.contains("ABORTED (simulated)"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_plot_stops_at_once_on_shutdown_even_with_finish_job() {
    let mut h = harness_settings(
        |s| {
            s.shutdown.finish = crate::settings::file::ShutdownFinish::Job;
            s.shutdown.timeout = Duration::from_secs(3600);
        },
        |queue| DeviceComponent::new(queue, SimPace::Realtime),
    )
    .await;
    let job = h
        .queue
        .submit(submission(&long_drawing(), true))
        .await
        .unwrap();
    h.wait_progress(&job.id, 2).await;
    let paused = h
        .queue
        .control(job.id.clone(), JobAction::Pause)
        .await
        .unwrap();
    assert_eq!(paused.state, JobState::Paused);
    h.coordinator.begin();
    assert!(
        h.coordinator
            .stop_stage(Stage::Queue, Duration::from_secs(10))
            .await
    );
    // Not the hour of `shutdown.timeout`: nothing is left to finish.
    assert!(
        h.coordinator
            .stop_stage(Stage::Devices, Duration::from_secs(60))
            .await,
        "the paused plot waited for shutdown.timeout"
    );
    let stored = h
        .ledger
        .store()
        .job(job.id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, JobState::Paused);
    assert!(stored.resume.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supply_drop_mid_plot_pauses_the_job_with_the_motors_off_and_says_to_home() {
    use plotty_fw_sim::fault::{FaultAction, FaultConfig, ScheduledFault, Trigger};
    // After the set-up (which sends about 20 commands) and a few moves.
    let faults = FaultConfig {
        events: vec![ScheduledFault {
            at: Trigger::AfterCommand(40),
            action: FaultAction::LowPower { voltage: 120 },
        }],
        ..FaultConfig::default()
    };
    let opener = Opener::Simulator {
        version: plotty_fw_sim::FirmwareVersion::V3_0_3,
        pace: SimPace::Fast,
        faults: Some(faults),
    };
    let mut h = harness_with(|queue| DeviceComponent::with_opener(queue, opener)).await;
    let job = h.queue.submit(submission(SQUARES, true)).await.unwrap();
    let (paused, seen) = h.wait_state(&job.id, JobState::Paused).await;
    assert!(seen.contains(&JobState::Plotting), "{seen:?}");
    let error = paused.error.unwrap_or_default();
    assert!(
        error.contains("dropped") && error.contains("plotty device home"),
        "{error}"
    );
    let status = &h.queue.devices().await.unwrap()[0];
    assert!(
        status
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("dropped")),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pen_height_trial_moves_the_simulators_servo_there() {
    let h = harness(SimPace::Fast).await;
    // The reference's servo scale (§ pen): round(9855 + 179.76 × percent), 1/12 µs.
    let servo = |pct: f64| (9855.0 + 179.76 * pct).round() as u16;
    for (down, pct) in [(true, 45.0), (false, 80.0), (true, 12.5)] {
        let reply = h
            .queue
            .device(None, queue::DeviceAction::pen_height(down, pct).unwrap())
            .await
            .unwrap();
        assert!(
            reply.message.contains(&format!("{pct}%")),
            "{}",
            reply.message
        );
        let status = &h.queue.devices().await.unwrap()[0];
        assert_eq!(status.pen_servo, Some(servo(pct)), "{down} {pct}");
        assert_eq!(status.pen_up, Some(!down));
    }
    // The configured heights come back with the next action.
    h.queue
        .device(None, queue::DeviceAction::PenDown)
        .await
        .unwrap();
    assert_eq!(
        h.queue.devices().await.unwrap()[0].pen_servo,
        Some(servo(30.0))
    );
    // Out of the config's range: refused by its rule, nothing moves.
    let e = h
        .queue
        .device(None, queue::DeviceAction::pen_height(false, 150.0).unwrap())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
    drop(h.coordinator);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_past_device_error_is_cleared() {
    use plotty_fw_sim::fault::{FaultAction, FaultConfig, ScheduledFault, Trigger};
    let faults = FaultConfig {
        events: vec![ScheduledFault {
            at: Trigger::AtTick(0),
            action: FaultAction::LowPower { voltage: 40 },
        }],
        ..FaultConfig::default()
    };
    let opener = Opener::Simulator {
        version: plotty_fw_sim::FirmwareVersion::V3_0_3,
        pace: SimPace::Fast,
        faults: Some(faults),
    };
    let mut h = harness_with(|queue| DeviceComponent::with_opener(queue, opener)).await;
    let job = h.queue.submit(submission(SQUARES, true)).await.unwrap();
    h.wait_state(&job.id, JobState::Armed).await;
    h.wait_state(&job.id, JobState::Ready).await;
    let before = h.queue.devices().await.unwrap()[0].clone();
    assert!(before.error_message.is_some(), "{before:?}");
    let reply = h
        .queue
        .device(None, queue::DeviceAction::ClearError)
        .await
        .unwrap();
    assert!(
        reply.message.starts_with("cleared the last error")
            && reply.message.contains("motor supply"),
        "{}",
        reply.message
    );
    let after = &h.queue.devices().await.unwrap()[0];
    assert_eq!(after.error_message, None, "{after:?}");
    assert_eq!(after.status, crate::events::DeviceState::Connected);
    let again = h
        .queue
        .device(None, queue::DeviceAction::ClearError)
        .await
        .unwrap();
    assert_eq!(again.message, "no error to clear");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_device_reads_its_motor_supply() {
    use crate::queue::DeviceControl;
    use plotty_fw_sim::fault::{FaultAction, FaultConfig, ScheduledFault, Trigger};
    // A fresh simulator's supply is fine; one switched off reads low, before any plot.
    for (faults, low) in [
        (None, false),
        (
            Some(FaultConfig {
                events: vec![ScheduledFault {
                    at: Trigger::AtTick(0),
                    action: FaultAction::LowPower { voltage: 40 },
                }],
                ..FaultConfig::default()
            }),
            true,
        ),
    ] {
        let (plotter, _dir, _settings) = lone_plotter(Opener::Simulator {
            version: plotty_fw_sim::FirmwareVersion::V3_0_3,
            pace: SimPace::Fast,
            faults,
        });
        assert_eq!(plotter.status().motor_supply, None);
        plotter.check_health().await;
        let status = plotter.status();
        let supply = status.motor_supply.expect("read while idle");
        assert_eq!(supply.low, low, "{supply:?}");
        assert_eq!(
            status.status,
            crate::events::DeviceState::Connected,
            "{status:?}"
        );
        if low {
            assert_eq!(supply.reading, 40);
        }
        // The link is left clean: the next check (no supply read: not due) still answers.
        plotter.check_health().await;
        assert_eq!(
            plotter.status().status,
            crate::events::DeviceState::Connected
        );
    }
}

/// A board connected with its nickname (known to a search once it asks the board).
fn nicknamed(port: &str, nickname: &str) -> crate::devices::discover::FoundBoard {
    crate::devices::discover::FoundBoard {
        port: port.into(),
        nickname: Some(nickname.into()),
        firmware: Some("3.0.3".into()),
        ..Default::default()
    }
}

/// The boards a scripted search lists (the test changes them).
type Boards = Arc<Mutex<Vec<crate::devices::discover::FoundBoard>>>;

/// An unnamed serial plotter on `port` chosen with `device` (adjusting the defaults:
/// `auto`, no port, no identity), following its board with a search that lists what the test
/// puts in the returned list (every board answers the probe).
fn follower(
    port: &str,
    device: impl FnOnce(&mut crate::settings::DeviceSettings),
) -> (
    Plotter,
    Boards,
    tempfile::TempDir,
    watch::Sender<Arc<Settings>>,
) {
    let (discovery, boards) = scripted_discovery();
    let (plotter, dir, tx) = follower_with(port, device, &discovery);
    (plotter, boards, dir, tx)
}

/// [`follower`] searching with `discovery` (several plotters can share one, as the daemon's do).
fn follower_with(
    port: &str,
    device: impl FnOnce(&mut crate::settings::DeviceSettings),
    discovery: &Discovery,
) -> (Plotter, tempfile::TempDir, watch::Sender<Arc<Settings>>) {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::defaults_for(dir.path());
    device(&mut settings.device);
    settings.devices = vec![settings.device.clone()];
    let (store, _) = Store::open(&settings.database.path).unwrap();
    let ledger = Ledger::new(store, dir.path(), events::bus(), None);
    let opener = Opener::Serial {
        port: port.into(),
        baud: 9600,
        identity: crate::devices::identity::Identity::of(&settings.device),
    };
    let follow = follow::discovery_for(&settings.device, discovery);
    let (tx, rx) = watch::channel(Arc::new(settings));
    let shutdown = Coordinator::new().handle(Stage::Devices);
    let mut plotter = Plotter::new(opener, ledger, rx, shutdown, None);
    if let Some(d) = follow {
        plotter = plotter.following(d);
    }
    (plotter, dir, tx)
}

/// Adds to the plotters of `tx`'s settings one named `right` found by the nickname `right`.
fn with_right_sibling(tx: &watch::Sender<Arc<Settings>>) {
    tx.send_modify(|s| {
        let mut right = s.device.clone();
        right.name = Some("right".into());
        right.nickname = Some("right".into());
        Arc::make_mut(s).devices.push(right);
    });
}

fn opened_port(plotter: &Plotter) -> Option<String> {
    plotter.inner().opener().port().map(str::to_owned)
}

fn by_nickname(d: &mut crate::settings::DeviceSettings) {
    d.kind = DeviceKind::Axidraw;
    d.nickname = Some("left".into());
}

#[tokio::test]
async fn a_board_found_by_nickname_is_followed_to_its_new_port_under_the_same_id() {
    use crate::queue::DeviceControl;
    let (plotter, boards, _dir, _tx) = follower("/dev/ttyACM0", by_nickname);
    *boards.lock().unwrap() = vec![nicknamed("/dev/ttyACM1", "left")];
    let moved = follow::search(plotter.inner()).await;
    assert_eq!(moved, follow::Outcome::Moved("/dev/ttyACM1".into()));
    assert_eq!(opened_port(&plotter).as_deref(), Some("/dev/ttyACM1"));
    let status = plotter.status();
    assert_eq!(status.port.as_deref(), Some("/dev/ttyACM1"), "{status:?}");
    assert_eq!(
        (plotter.id(), status.device_id),
        ("/dev/ttyACM0".to_owned(), "/dev/ttyACM0".to_owned()),
        "the device id stays for the daemon's lifetime"
    );
    // Found where it is now: nothing more to do.
    assert_eq!(
        follow::search(plotter.inner()).await,
        follow::Outcome::NotFound
    );
}

#[tokio::test]
async fn a_board_that_moved_is_followed_even_when_another_board_took_its_old_port() {
    let (plotter, boards, _dir, _tx) = follower("/dev/ttyACM0", by_nickname);
    *boards.lock().unwrap() = vec![
        nicknamed("/dev/ttyACM0", "other"),
        nicknamed("/dev/ttyACM1", "left"),
    ];
    assert_eq!(
        follow::search(plotter.inner()).await,
        follow::Outcome::Moved("/dev/ttyACM1".into())
    );
    assert_eq!(opened_port(&plotter).as_deref(), Some("/dev/ttyACM1"));
}

#[tokio::test]
async fn a_fixed_port_is_never_followed() {
    let fixed = |d: &mut crate::settings::DeviceSettings| {
        by_nickname(d);
        d.port = Some("/dev/ttyACM0".into());
    };
    let (plotter, boards, _dir, tx) = follower("/dev/ttyACM0", fixed);
    *boards.lock().unwrap() = vec![nicknamed("/dev/ttyACM1", "left")];
    assert_eq!(
        follow::search(plotter.inner()).await,
        follow::Outcome::Fixed
    );
    assert_eq!(opened_port(&plotter).as_deref(), Some("/dev/ttyACM0"));
    // Nor one that a reload gave a fixed port since the start.
    let (plotter, boards, _dir, tx2) = follower("/dev/ttyACM0", by_nickname);
    *boards.lock().unwrap() = vec![nicknamed("/dev/ttyACM1", "left")];
    tx2.send_modify(|s| Arc::make_mut(s).device.port = Some("/dev/ttyACM0".into()));
    assert_eq!(
        follow::search(plotter.inner()).await,
        follow::Outcome::Fixed
    );
    assert_eq!(opened_port(&plotter).as_deref(), Some("/dev/ttyACM0"));
    drop(tx);
}

#[tokio::test]
async fn two_boards_with_the_configured_nickname_are_not_driven() {
    use crate::queue::DeviceControl;
    let (plotter, boards, _dir, _tx) = follower("/dev/ttyACM0", by_nickname);
    *boards.lock().unwrap() = vec![
        nicknamed("/dev/ttyACM1", "left"),
        nicknamed("/dev/ttyACM2", "left"),
    ];
    assert_eq!(
        follow::search(plotter.inner()).await,
        follow::Outcome::Ambiguous
    );
    assert_eq!(opened_port(&plotter).as_deref(), Some("/dev/ttyACM0"));
    let status = plotter.status();
    let message = status.error_message.unwrap_or_default();
    assert!(
        message.contains("2 AxiDraws have nickname \"left\""),
        "{message}"
    );
    assert_eq!(status.port.as_deref(), Some("/dev/ttyACM0"));
}

#[tokio::test]
async fn port_auto_follows_the_first_axidraw_but_never_another_plotters_board() {
    let (discovery, boards, _) = counting_discovery();
    let (plotter, _dir, tx) = follower_with("/dev/ttyACM0", |_| {}, &discovery);
    // Another plotter of the daemon is configured for the board named `right`: the listing
    // does not say which board that is, the boards are asked.
    with_right_sibling(&tx);
    *boards.lock().unwrap() = vec![nicknamed("/dev/ttyACM1", "right")];
    assert_eq!(
        follow::search(plotter.inner()).await,
        follow::Outcome::NotFound
    );
    boards.lock().unwrap().push(nicknamed("/dev/ttyACM2", ""));
    assert_eq!(
        follow::search(plotter.inner()).await,
        follow::Outcome::Moved("/dev/ttyACM2".into())
    );
}

#[tokio::test]
async fn port_auto_never_takes_a_board_that_cannot_say_whose_it_is() {
    let (discovery, boards, _) = counting_discovery();
    let (plotter, _dir, tx) = follower_with("/dev/ttyACM0", |_| {}, &discovery);
    with_right_sibling(&tx);
    let mut busy = nicknamed("/dev/ttyACM1", "right");
    busy.nickname = None;
    busy.problem = Some("cannot open it: busy".into());
    *boards.lock().unwrap() = vec![busy];
    assert_eq!(
        follow::search(plotter.inner()).await,
        follow::Outcome::NotFound
    );
    assert_eq!(opened_port(&plotter).as_deref(), Some("/dev/ttyACM0"));
}

#[tokio::test]
async fn a_search_never_opens_the_port_another_plotter_holds() {
    let (discovery, boards, calls) = counting_discovery();
    let (searching, _dir, _tx) = follower_with("/dev/ttyACM0", |_| {}, &discovery);
    // Another plotter of the daemon, connected on /dev/ttyACM1.
    let (_holding, _dir2, _tx2) = follower_with("/dev/ttyACM1", |_| {}, &discovery);
    *boards.lock().unwrap() = vec![nicknamed("/dev/ttyACM1", "")];
    assert_eq!(
        follow::search(searching.inner()).await,
        follow::Outcome::NotFound
    );
    assert_eq!(
        calls.opened(),
        0,
        "the held port is neither asked nor probed"
    );
    assert_eq!(opened_port(&searching).as_deref(), Some("/dev/ttyACM0"));
}

#[tokio::test]
async fn the_boards_are_opened_again_only_once_the_usb_listing_changed() {
    let (discovery, boards, calls) = counting_discovery();
    let (plotter, _dir, tx) = follower_with("/dev/ttyACM0", |_| {}, &discovery);
    with_right_sibling(&tx);
    *boards.lock().unwrap() = vec![nicknamed("/dev/ttyACM1", "right")];
    for _ in 0..5 {
        assert_eq!(
            follow::search(plotter.inner()).await,
            follow::Outcome::NotFound
        );
    }
    assert_eq!(calls.listed(), 5);
    assert_eq!(
        calls.opened(),
        1,
        "the board is asked once, not on every attempt"
    );
    boards.lock().unwrap().push(nicknamed("/dev/ttyACM2", ""));
    assert_eq!(
        follow::search(plotter.inner()).await,
        follow::Outcome::Moved("/dev/ttyACM2".into())
    );
}

#[tokio::test]
async fn a_followed_board_clears_the_error_of_its_old_port() {
    use crate::queue::DeviceControl;
    let (plotter, boards, _dir, _tx) = follower("/dev/ttyACM0", by_nickname);
    plotter.inner().update_status(|s| {
        s.error_message = Some("another board is on /dev/ttyACM0".into());
    });
    *boards.lock().unwrap() = vec![nicknamed("/dev/ttyACM1", "left")];
    assert_eq!(
        follow::search(plotter.inner()).await,
        follow::Outcome::Moved("/dev/ttyACM1".into())
    );
    let status = plotter.status();
    assert_eq!(status.error_message, None, "{status:?}");
    assert!(
        status
            .notice
            .as_deref()
            .is_some_and(|n| n.contains("followed from /dev/ttyACM0 to /dev/ttyACM1")),
        "{status:?}"
    );
}

/// Each failed resume on an offline device asks for a reconnection: only one loop runs.
#[tokio::test(start_paused = true)]
async fn one_reconnection_loop_runs_however_often_it_is_asked() {
    let (discovery, _boards, calls) = counting_discovery();
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("ttyACM0").display().to_string();
    let (plotter, _dir, _tx) = follower_with(&gone, by_nickname, &discovery);
    let loops: Vec<_> = (0..3)
        .map(|_| tokio::spawn(run::reconnect(Arc::clone(plotter.inner()))))
        .collect();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(calls.listed(), 1, "one loop searched");
    for l in loops {
        l.abort();
        let _ = l.await;
    }
    // The loop ended (here: dropped): the next request starts one again.
    let again = tokio::spawn(run::reconnect(Arc::clone(plotter.inner())));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(calls.listed(), 2);
    again.abort();
}

/// The reconnection after a failure searches: a board gone from its port (here: a port that
/// does not exist) is followed to where the search finds it, and the status says where.
/// Simulated time: the reconnection's 2 s waits pass at once.
#[tokio::test(start_paused = true)]
async fn the_reconnection_follows_a_board_to_its_new_port() {
    use crate::queue::DeviceControl;
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("ttyACM0").display().to_string();
    let (plotter, boards, _dir, _tx) = follower(&old, by_nickname);
    *boards.lock().unwrap() = vec![nicknamed("/dev/ttyFOLLOWED", "left")];
    plotter.check_health().await;
    assert_eq!(plotter.status().status, DeviceState::Offline);
    let status = tokio::time::timeout(GUARD, async {
        loop {
            let s = plotter.status();
            if s.port.as_deref() == Some("/dev/ttyFOLLOWED") {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the device follows its board");
    assert_eq!(status.device_id, old, "{status:?}");
}
