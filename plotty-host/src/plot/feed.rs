//! A program through planner and step generator: the firmware moves (exact ticks and end
//! positions) and actions a session executes, in order.
//!
//! Each layer gets its own [`Pipeline`] with that layer's limits (`+S`), starting where the
//! previous one left the motors and their step accumulators, so timing stays exact across
//! layers; every layer boundary is a rest point with the pen up, so nothing is lost by
//! starting over. Before a layer's items comes [`FeedItem::Marker`] with the layer's index, so
//! the session reports when it is reached.
//!
//! The same function serves the estimate (which adds the items up) and the runner (which hands
//! them to the session as it has room).

use plotty_motion::ebb::FirmwareVersion;
use plotty_motion::kinematics::MotorSteps;
use plotty_motion::pipeline::{Pipeline, PipelineError, step_config};
use plotty_motion::plan::{PlanError, PlannerSlot};
use plotty_motion::session::FeedItem;
use plotty_motion::step::StepStats;

use super::config::PlotConfig;
use super::program::{Program, Start, Step};

/// Why feeding stopped early.
#[derive(Debug)]
pub enum FeedStop<E> {
    /// The sink stopped it.
    Sink(E),
    /// Planning or step generation failed (limits out of range, a point the planner refuses).
    Plan(PipelineError),
}

/// Where the motors are after feeding, and what the generator did.
#[derive(Clone, Copy, Debug, Default)]
pub struct FeedEnd {
    /// Motor position after the last move.
    pub position: MotorSteps,
    /// Step accumulators after the last move.
    pub accumulators: [u32; 2],
    /// Step generator statistics, summed over the layers.
    pub steps: StepTotals,
    /// Blocks the planner released before they were final (a full window), summed.
    pub forced_releases: u64,
}

/// Step generator statistics summed over pipelines.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepTotals {
    /// Firmware moves.
    pub moves: u64,
    /// Moves along a chord over more than one block.
    pub merged_moves: u64,
    /// Largest chord error of a merged move, mm.
    pub max_chord_error_mm: f64,
    /// Moves that ended later than planned.
    pub late_moves: u64,
}

/// Plans `program` from `start` with the motors at `position` (step accumulators
/// `accumulators`) for firmware `version`, handing every session item to `sink` in order.
///
/// # Errors
/// The sink's error, or a planning failure.
pub fn feed<E>(
    program: &Program,
    start: Start,
    config: &PlotConfig,
    version: FirmwareVersion,
    position: MotorSteps,
    accumulators: [u32; 2],
    sink: &mut impl FnMut(FeedItem) -> Result<(), E>,
) -> Result<FeedEnd, FeedStop<E>> {
    let step = step_config(version, config.axidraw.resolution).map_err(FeedStop::Plan)?;
    let mut window = vec![PlannerSlot::EMPTY; config.window.max(1)];
    let mut end = FeedEnd {
        position,
        accumulators,
        ..FeedEnd::default()
    };
    let mut items = program.items(start, config.kinematics()).peekable();
    while let Some(first) = items.next() {
        let layer = match first {
            Step::Layer(l) => Some(l),
            // `items` always starts with a layer; a path item before one plans with the
            // first layer's limits.
            Step::Path(_) => None,
        };
        if let Some(l) = layer {
            sink(FeedItem::Marker(u32::try_from(l).unwrap_or(u32::MAX))).map_err(FeedStop::Sink)?;
        }
        let limits = config
            .planner(layer.and_then(|l| program.layers().get(l)))
            .map_err(|e| FeedStop::Plan(PipelineError::Plan(e)))?;
        let mut pipeline =
            Pipeline::starting_at(limits, step, &mut window, end.position, end.accumulators)
                .map_err(FeedStop::Plan)?;
        let mut pending = match first {
            Step::Path(item) => Some(item),
            Step::Layer(_) => None,
        };
        loop {
            let item = match pending.take() {
                Some(item) => item,
                None => match items.next_if(|s| matches!(s, Step::Path(_))) {
                    Some(Step::Path(item)) => item,
                    _ => break,
                },
            };
            loop {
                match pipeline.push(item) {
                    Ok(()) => break,
                    Err(PipelineError::Plan(PlanError::WindowFull)) => {
                        // A full window releases its oldest block: pull makes room.
                        if !drain_one(&mut pipeline, sink)? {
                            return Err(FeedStop::Plan(PipelineError::Plan(PlanError::WindowFull)));
                        }
                    }
                    Err(e) => return Err(FeedStop::Plan(e)),
                }
            }
            while let Some(f) = pipeline.pull().map_err(FeedStop::Plan)? {
                sink(f).map_err(FeedStop::Sink)?;
            }
        }
        pipeline.finish();
        while let Some(f) = pipeline.pull().map_err(FeedStop::Plan)? {
            sink(f).map_err(FeedStop::Sink)?;
        }
        let stepper = pipeline.stepper();
        end.position = stepper.position();
        end.accumulators = stepper.accumulators();
        end.steps.add(stepper.stats());
        end.forced_releases += pipeline.planner().forced_releases();
    }
    Ok(end)
}

/// A pen-up move from `position` (step accumulators `accumulators`) to `to`, planned and stepped
/// with the pen-up limits, its items handed to `sink` (manual moves: home, walk). Tagged with
/// [`PARK_VERTEX`](super::PARK_VERTEX).
///
/// # Errors
/// The sink's error, or a planning failure (a point outside the planner's range).
pub fn travel<E>(
    config: &PlotConfig,
    version: FirmwareVersion,
    position: MotorSteps,
    accumulators: [u32; 2],
    to: crate::import::Point,
    sink: &mut impl FnMut(FeedItem) -> Result<(), E>,
) -> Result<FeedEnd, FeedStop<E>> {
    let step = step_config(version, config.axidraw.resolution).map_err(FeedStop::Plan)?;
    let limits = config
        .planner(None)
        .map_err(|e| FeedStop::Plan(PipelineError::Plan(e)))?;
    let mut window = vec![PlannerSlot::EMPTY; 4];
    let mut pipeline = Pipeline::starting_at(limits, step, &mut window, position, accumulators)
        .map_err(FeedStop::Plan)?;
    pipeline
        .push(plotty_motion::plan::PathItem::Segment {
            to,
            pen: plotty_motion::plan::Pen::Up,
            tag: plotty_motion::plan::Tag {
                stroke: 0,
                vertex: super::PARK_VERTEX,
            },
        })
        .map_err(FeedStop::Plan)?;
    pipeline.finish();
    while let Some(f) = pipeline.pull().map_err(FeedStop::Plan)? {
        sink(f).map_err(FeedStop::Sink)?;
    }
    let stepper = pipeline.stepper();
    Ok(FeedEnd {
        position: stepper.position(),
        accumulators: stepper.accumulators(),
        steps: {
            let mut t = StepTotals::default();
            t.add(stepper.stats());
            t
        },
        forced_releases: pipeline.planner().forced_releases(),
    })
}

/// Pulls one item into the sink; false if the pipeline had none.
fn drain_one<E>(
    pipeline: &mut Pipeline<'_>,
    sink: &mut impl FnMut(FeedItem) -> Result<(), E>,
) -> Result<bool, FeedStop<E>> {
    match pipeline.pull().map_err(FeedStop::Plan)? {
        Some(f) => {
            sink(f).map_err(FeedStop::Sink)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

impl StepTotals {
    fn add(&mut self, s: &StepStats) {
        self.moves += s.moves;
        self.merged_moves += s.merged_moves;
        self.late_moves += s.late_moves;
        if s.max_chord_error_mm > self.max_chord_error_mm {
            self.max_chord_error_mm = s.max_chord_error_mm;
        }
    }
}
