//! The job pipeline between `QUEUED` and `READY`: analyse the stored SVG (import with the job's
//! options and layer selection; layers, strokes and the first estimate → `ANALYZED`), optimise
//! the stroke order and estimate again (→ `OPTIMIZED`), keep the plot program for the device
//! (→ `READY`).
//!
//! The CPU work runs on the blocking pool, never on the actor; the transitions go through the
//! ledger, whose state machine refuses them if the job was cancelled meanwhile (the pipeline
//! then stops quietly). A file that cannot be plotted ends the job `FAILED` with the reason.
//! [`build`] is also what a device task uses to rebuild the program of a job it resumes after a
//! restart: import and optimisation are deterministic, so the stroke indices of a stored resume
//! point still name the same strokes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use plotty_motion::ebb::FirmwareVersion;
use serde_json::{Value, json};

use crate::import::{Drawing, LayerSelection};
use crate::job::{JobEvent, JobId, JobState, Reason};
use crate::ledger::Ledger;
use crate::plot::estimate::{self, Estimate};
use crate::plot::prepare::{self, InputError};
use crate::plot::{PlotConfig, Program};
use crate::settings::{FirmwareChoice, RunOptions, Settings};
use crate::store::{JobRecord, Layer, StoreError, TransitionRequest};

/// A job ready to plot: its program, the plan's estimate and what progress reports need.
#[derive(Debug)]
pub struct PreparedJob {
    /// The job.
    pub job_id: JobId,
    /// The plot program (optimised).
    pub program: Program,
    /// The estimate, and the firmware it was planned for.
    pub estimate: (FirmwareVersion, Estimate),
    /// For each stroke, the number of points of the strokes before it (progress reports).
    pub points_before: Vec<u64>,
    /// Points of all strokes.
    pub total_points: u64,
    /// The job's plot options: the device plots with the settings they give.
    pub options: RunOptions,
    /// Last, so it is dropped after the program: gives a big program's memory back.
    _trim: TrimOnDrop,
}

/// Programs of at least this many points give their memory back to the system when dropped
/// (about 16 bytes a point in the program alone).
const TRIM_POINTS: u64 = 100_000;

/// Trims the heap ([`crate::daemon::sys::trim_heap`]) on a thread of its own when dropped, if
/// the program it belongs to was big. A program is dropped wherever its last holder lets go
/// (a cancel, a delete, the end of a plot), on async threads too, which must not wait for it.
#[derive(Debug)]
struct TrimOnDrop {
    points: u64,
}

impl Drop for TrimOnDrop {
    fn drop(&mut self) {
        if self.points >= TRIM_POINTS {
            let spawned = std::thread::Builder::new()
                .name("heap-trim".into())
                .spawn(crate::daemon::sys::trim_heap);
            if let Err(e) = spawned {
                tracing::debug!(error = %e, "cannot start the heap trim");
            }
        }
    }
}

/// Why a job cannot be prepared (the message is recorded with the `FAILED` job).
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The job has no stored SVG.
    #[error("the job has no stored SVG; submit the file again")]
    NoSource,
    /// The SVG stored in the database (several daemons) could not be had.
    #[error("{0}")]
    Source(String),
    /// The layer selection stored with the job does not parse.
    #[error("the layer selection `{spec}` is invalid: {detail}")]
    LayerSpec {
        /// The selection.
        spec: String,
        /// Why.
        detail: String,
    },
    /// The file cannot be plotted (said without the path of the daemon's stored copy).
    #[error("{}", .0.reason())]
    Input(#[from] InputError),
    /// The plan could not be made.
    #[error("cannot plan the plot: {0}")]
    Plan(String),
    /// The paper check found the drawing unplottable (`crate::paper::check`).
    #[error("{0}")]
    Paper(String),
    /// The plot options stored with the job are unusable.
    #[error("the job's plot options: {0}")]
    Options(String),
    /// The blocking task ended abnormally.
    #[error("the analysis task ended abnormally: {0}")]
    Task(String),
}

/// The drawing after analysis, before optimisation.
struct Analysed {
    drawing: Drawing,
    layers: Vec<Layer>,
    estimate: Estimate,
}

/// Takes `job` from its current pipeline state to `READY`, returning its prepared program; `None`
/// when the job failed here (recorded) or left the pipeline meanwhile (cancelled). `keep` gets
/// the program just before `READY` is recorded, so whoever reacts to `READY` finds it.
pub async fn run(
    ledger: &Ledger,
    settings: &Settings,
    job: &JobRecord,
    keep: impl FnOnce(Arc<PreparedJob>) + Send,
) -> Option<Arc<PreparedJob>> {
    let advanced = advance(ledger, settings, job, keep).await;
    // The import and the optimisation freed far more than the program keeps (1 M segments: about
    // 80 MB); give it back now, whether the job is READY, failed or was cancelled.
    let _ = tokio::task::spawn_blocking(crate::daemon::sys::trim_heap).await;
    match advanced {
        Ok(p) => p,
        Err(Stop::Failed(e)) => {
            let message = e.to_string();
            tracing::warn!(job_id = %job.id, error = %message, "job failed in analysis");
            let failed = ledger
                .apply(TransitionRequest {
                    job_id: job.id.clone(),
                    event: JobEvent::Fail,
                    reason: Reason::Error,
                    error: Some(message),
                    metadata: json!({ "stage": "analysis" }),
                })
                .await;
            if let Err(e) = failed {
                tracing::debug!(job_id = %job.id, error = %e, "not recording the failure");
            }
            None
        }
        Err(Stop::Left(e)) => {
            tracing::debug!(job_id = %job.id, error = %e, "the job left the pipeline");
            None
        }
    }
}

/// Why [`advance`] stopped.
enum Stop {
    /// The job cannot be plotted.
    Failed(PrepareError),
    /// A transition was refused (the job was cancelled) or the store failed.
    Left(StoreError),
}

async fn advance(
    ledger: &Ledger,
    settings: &Settings,
    job: &JobRecord,
    keep: impl FnOnce(Arc<PreparedJob>) + Send,
) -> Result<Option<Arc<PreparedJob>>, Stop> {
    // The job's own copy, or on a farm the SVG from the database (a retry of a job submitted
    // to another daemon).
    let path = crate::farm::source::local_path(ledger, &settings.jobs_dir(), job)
        .await
        .map_err(|e| match e {
            crate::farm::source::SourceError::Missing => Stop::Failed(PrepareError::NoSource),
            other => Stop::Failed(PrepareError::Source(other.to_string())),
        })?;
    let options = job_options(&job.metadata).map_err(Stop::Failed)?;
    // Prepared for the plotter the job asks for (its travel and limits), when it asks.
    let own = settings.for_requirements(&job.requirements);
    let settings = own.as_ref().unwrap_or(settings);
    let config = job_config(settings, &options).map_err(Stop::Failed)?;
    let spec = layer_spec(&job.metadata);
    let id = job.id.clone();
    let state = job.state;

    let analysed = blocking({
        let path = path.clone();
        move || analyse(&path, &config, spec.as_deref())
    })
    .await
    .map_err(Stop::Failed)?;
    if state == JobState::Queued {
        // The paper check again, now with the strokes rather than the page the file declares.
        let (paper, orientation) = crate::paper::of_job(&job.metadata, settings);
        let paper_check = crate::paper::check(
            &paper,
            orientation,
            crate::paper::drawing_extent(&analysed.drawing).as_ref(),
            settings.device.axidraw.model,
        );
        if let Some(e) = paper_check.errors.first() {
            return Err(Stop::Failed(PrepareError::Paper(e.clone())));
        }
        for w in &paper_check.warnings {
            tracing::warn!(job_id = %id, "paper: {w}");
        }
        let store = ledger.store();
        store
            .set_layers(id.as_str(), analysed.layers.clone())
            .await
            .map_err(Stop::Left)?;
        let pre = analysed.estimate.total.as_secs_f64();
        set_estimates(ledger, &id, Some(pre), None).await?;
        step(
            ledger,
            &id,
            JobEvent::Analyzed,
            json!({
                "layers": analysed.layers.len(),
                "strokes": analysed.drawing.stroke_count(),
                "estimate_s": pre,
                "paper": paper_check.sheet.to_json(),
                // What the uploader should know (fills, text, clipping…, then the paper check):
                // the web UI shows them with the job, from this transition or the job's events.
                "warnings": analysed
                    .drawing
                    .warnings
                    .iter()
                    .map(ToString::to_string)
                    .chain(paper_check.warnings.iter().cloned())
                    .collect::<Vec<_>>(),
            }),
        )
        .await?;
    }

    let prepared = blocking({
        let id = id.clone();
        move || finish(id, &path, analysed.drawing, &config, options)
    })
    .await
    .map_err(Stop::Failed)?;
    let post = prepared.estimate.1.total.as_secs_f64();
    if matches!(state, JobState::Queued | JobState::Analyzed) {
        set_estimates(ledger, &id, None, Some(post)).await?;
        step(
            ledger,
            &id,
            JobEvent::Optimized,
            json!({ "estimate_s": post }),
        )
        .await?;
    }
    let prepared = Arc::new(prepared);
    keep(Arc::clone(&prepared));
    if matches!(
        state,
        JobState::Queued | JobState::Analyzed | JobState::Optimized
    ) {
        step(
            ledger,
            &id,
            JobEvent::Prepared,
            json!({ "planned_for": prepared.estimate.0.to_string() }),
        )
        .await?;
    }
    Ok(Some(prepared))
}

/// Builds the prepared program of `job` from its stored SVG (blocking: run it off the async
/// threads). Used by a device task resuming a job whose program is not in memory.
///
/// # Errors
/// The file cannot be plotted any more (changed or removed) or the plan fails.
pub fn build(job: &JobRecord, settings: &Settings) -> Result<PreparedJob, PrepareError> {
    let path = job
        .source_path
        .as_deref()
        .map(PathBuf::from)
        .ok_or(PrepareError::NoSource)?;
    let options = job_options(&job.metadata)?;
    let config = job_config(settings, &options)?;
    let spec = layer_spec(&job.metadata);
    let analysed = analyse(&path, &config, spec.as_deref())?;
    finish(job.id.clone(), &path, analysed.drawing, &config, options)
}

/// The plot options stored with a job (`metadata.options`; none for jobs submitted before
/// there were any).
fn job_options(metadata: &Value) -> Result<RunOptions, PrepareError> {
    match metadata.get("options") {
        None | Some(Value::Null) => Ok(RunOptions::default()),
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| PrepareError::Options(e.to_string()))
        }
    }
}

/// The plot configuration of a job: the settings with its options applied.
///
/// # Errors
/// Options out of range (the settings' rules are checked at submission, so only a job stored
/// by another version gets here).
pub fn job_config(settings: &Settings, options: &RunOptions) -> Result<PlotConfig, PrepareError> {
    PlotConfig::for_run(settings, options).map_err(|e| PrepareError::Options(e.to_string()))
}

/// The firmware an estimate is made for before a board answers.
pub fn planned_firmware(config: &PlotConfig) -> FirmwareVersion {
    match config.firmware {
        FirmwareChoice::V2_8 => FirmwareVersion::LAST_V2,
        FirmwareChoice::Auto | FirmwareChoice::V3_0 => FirmwareVersion::LATEST,
    }
}

fn layer_spec(metadata: &Value) -> Option<String> {
    metadata
        .get("layers")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Import, layer selection, the layers' figures and the estimate in file order.
fn analyse(path: &Path, config: &PlotConfig, spec: Option<&str>) -> Result<Analysed, PrepareError> {
    let selection = spec
        .map(|spec| {
            LayerSelection::parse(spec).map_err(|e| PrepareError::LayerSpec {
                spec: spec.to_owned(),
                detail: e.to_string(),
            })
        })
        .transpose()?;
    let layers = selection.as_ref().zip(spec);
    let drawing = prepare::import_selected(path, config, layers)?;
    let program = Program::new(&drawing);
    if program.is_empty() {
        return Err(InputError::nothing_to_draw(path).into());
    }
    let estimate = estimate::estimate(&program, config, planned_firmware(config))
        .map_err(|e| PrepareError::Plan(e.to_string()))?;
    let layers = layer_rows(&program, &estimate);
    Ok(Analysed {
        drawing,
        layers,
        estimate,
    })
}

/// Optimisation, the program and its estimate.
fn finish(
    job_id: JobId,
    path: &Path,
    mut drawing: Drawing,
    config: &PlotConfig,
    options: RunOptions,
) -> Result<PreparedJob, PrepareError> {
    let (_, program) = prepare::optimized_program(path, &mut drawing, config)?;
    let version = planned_firmware(config);
    let estimate = estimate::estimate(&program, config, version)
        .map_err(|e| PrepareError::Plan(e.to_string()))?;
    let mut points_before = Vec::with_capacity(program.stroke_count() as usize);
    let mut total = 0u64;
    for s in 0..program.stroke_count() {
        points_before.push(total);
        total += program.stroke(s).map_or(0, |p| p.len() as u64);
    }
    Ok(PreparedJob {
        job_id,
        program,
        estimate: (version, estimate),
        points_before,
        total_points: total,
        options,
        _trim: TrimOnDrop { points: total },
    })
}

/// The store's layer rows of a program.
fn layer_rows(program: &Program, estimate: &Estimate) -> Vec<Layer> {
    program
        .layers()
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let points: u64 = l
                .strokes
                .clone()
                .map(|s| program.stroke(s).map_or(0, |p| p.len() as u64))
                .sum();
            Layer {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                name: l.name.clone(),
                number: l.number.map(i64::from),
                color: Some(l.color.to_string()),
                pause_before: l.pause_before,
                speed_pct: l.speed_pct.map(f64::from),
                height_pct: l.height_pct.map(f64::from),
                delay_after_ms: i64::try_from(l.delay_after.as_micros() / 1000).ok(),
                strokes: Some(i64::from(l.strokes.end - l.strokes.start)),
                points: i64::try_from(points).ok(),
                pen_down_mm: Some(l.drawn_mm),
                estimate_s: estimate.layers.get(i).map(|e| e.total.as_secs_f64()),
            }
        })
        .collect()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PrepareError> + Send + 'static,
) -> Result<T, PrepareError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PrepareError::Task(e.to_string()))?
}

async fn set_estimates(
    ledger: &Ledger,
    id: &JobId,
    pre: Option<f64>,
    post: Option<f64>,
) -> Result<(), Stop> {
    ledger
        .store()
        .set_estimates(id.as_str(), pre, post)
        .await
        .map_err(Stop::Left)
}

async fn step(ledger: &Ledger, id: &JobId, event: JobEvent, metadata: Value) -> Result<(), Stop> {
    ledger
        .apply(TransitionRequest {
            job_id: id.clone(),
            event,
            reason: Reason::Pipeline,
            error: None,
            metadata,
        })
        .await
        .map(drop)
        .map_err(Stop::Left)
}
