//! Path to session items: the [`Planner`] over the caller's window, the [`StepGenerator`], and
//! the glue that flushes the generator at every action and at the end.
//!
//! [`Pipeline::push`] takes [`PathItem`]s (segments in millimetres, pen actions, pauses,
//! dwells); [`Pipeline::pull`] hands out [`FeedItem`]s for [`Session::push`]
//! (crate::session::Session::push): firmware moves with exact ticks and end positions, and the
//! actions between them. [`PathFeed`] joins a pipeline to an iterator of path items as a
//! [`FeedSource`] for the [`Driver`](crate::driver::Driver).
//!
//! ```
//! use plotty_motion::kinematics::{AxiDrawSettings, Point};
//! use plotty_motion::pipeline::{Pipeline, PipelineError, step_config};
//! use plotty_motion::plan::{Action, PathItem, Pen, PlannerConfig, PlannerSlot, Tag};
//! use plotty_motion::session::FeedItem;
//! use plotty_motion::ebb::FirmwareVersion;
//!
//! let settings = AxiDrawSettings::default();
//! let mut window = [PlannerSlot::EMPTY; 64];
//! let mut pipeline = Pipeline::new(
//!     PlannerConfig::axidraw(&settings)?,
//!     step_config(FirmwareVersion::LATEST, settings.resolution)?,
//!     &mut window,
//! )?;
//! let tag = Tag { stroke: 0, vertex: 1 };
//! pipeline.push(PathItem::Segment { to: Point::new(10.0, 0.0), pen: Pen::Up, tag })?;
//! pipeline.push(PathItem::Action(Action::PenDown))?;
//! pipeline.push(PathItem::Segment { to: Point::new(10.0, 10.0), pen: Pen::Down, tag })?;
//! pipeline.finish();
//! let mut items = Vec::new();
//! while let Some(item) = pipeline.pull()? {
//!     items.push(item);
//! }
//! assert!(matches!(items.last(), Some(FeedItem::Move(m)) if m.pen == Pen::Down));
//! # Ok::<(), PipelineError>(())
//! ```

use core::fmt;

use crate::driver::FeedSource;
use crate::ebb::FirmwareVersion;
use crate::kinematics::{Kinematics, MotorSteps, Resolution};
use crate::plan::{Action, PathItem, Pen, PlanError, PlannedItem, Planner, PlannerConfig, PlannerSlot};
use crate::session::{FeedItem, Motion, MotionCommand};
use crate::step::{FirmwareLine, Move, MoveCommand, StepConfig, StepError, StepGenerator};

/// Why the pipeline refused an item or could not produce one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PipelineError {
    /// The planner refused (a full window is [`PlanError::WindowFull`]: pull first).
    Plan(PlanError),
    /// The step generator refused a planned block.
    Step(StepError),
    /// The firmware version predates every line the step generator knows.
    UnsupportedFirmware(FirmwareVersion),
}

/// Planner + step generator (see the [module documentation](self)).
///
/// Call order: [`push`](Self::push) path items in plot order; [`pull`](Self::pull) until it
/// returns `None` whenever the session can take items (and always when `push` reports
/// [`PlanError::WindowFull`]); [`finish`](Self::finish) at the end of the path, then pull
/// until `None`.
#[derive(Debug)]
pub struct Pipeline<'a> {
    planner: Planner<'a>,
    stepper: StepGenerator,
    /// An action released by the planner, handed out once the generator is drained.
    action: Option<Action>,
    /// `finish` was called and nothing pushed since.
    finishing: bool,
    /// The generator was told the run ended since the last block.
    stepper_finished: bool,
}

/// A [`Pipeline`] fed from an iterator of path items: a [`FeedSource`] for the driver.
#[derive(Debug)]
pub struct PathFeed<'a, I> {
    pipeline: Pipeline<'a>,
    path: I,
    /// A path item the full window refused, retried after pulling.
    held: Option<PathItem>,
    ended: bool,
}

/// The step configuration for firmware `version` and microstepping `resolution`: LM moves
/// where the firmware has them (2.7.0+), SM before.
pub fn step_config(
    version: FirmwareVersion,
    resolution: Resolution,
) -> Result<StepConfig, PipelineError> {
    let line = FirmwareLine::from_version(
        u32::from(version.major),
        u32::from(version.minor),
        u32::from(version.patch),
    )
    .ok_or(PipelineError::UnsupportedFirmware(version))?;
    Ok(StepConfig::preferred(line, Kinematics::new(resolution)))
}

impl<'a> Pipeline<'a> {
    /// A pipeline with the machine at home, motors at (0, 0) with clear accumulators (the state
    /// after the session's `EM`), planning in `window`.
    pub fn new(
        planner: PlannerConfig,
        step: StepConfig,
        window: &'a mut [PlannerSlot],
    ) -> Result<Self, PipelineError> {
        Self::starting_at(planner, step, window, MotorSteps::ZERO, [0, 0])
    }

    /// A pipeline with the motors at `position` and the firmware's step accumulators at
    /// `accumulators`: after a kept position ([`Event::Ready`](crate::session::Event::Ready))
    /// or to re-plan from a [`ResumePoint`](crate::session::ResumePoint) (its accumulators when
    /// known, else `[0, 0]`, which only costs up to one tick of timing).
    pub fn starting_at(
        planner: PlannerConfig,
        step: StepConfig,
        window: &'a mut [PlannerSlot],
        position: MotorSteps,
        accumulators: [u32; 2],
    ) -> Result<Self, PipelineError> {
        let start = step.kinematics().to_point(position);
        let planner = Planner::new(planner, start, window).map_err(PipelineError::Plan)?;
        let mut stepper = StepGenerator::new(step);
        stepper
            .reset(position, accumulators)
            .map_err(PipelineError::Step)?;
        Ok(Self {
            planner,
            stepper,
            action: None,
            finishing: false,
            stepper_finished: false,
        })
    }

    /// Adds the next path item. Nothing changes on error.
    ///
    /// # Errors
    /// [`PipelineError::Plan`]`(`[`PlanError::WindowFull`]`)`: pull, then push again; other
    /// planner errors for bad points.
    pub fn push(&mut self, item: PathItem) -> Result<(), PipelineError> {
        self.planner.push(item).map_err(PipelineError::Plan)?;
        self.finishing = false;
        self.stepper_finished = false;
        Ok(())
    }

    /// Marks the end of the path: everything still held is planned to a stop and released.
    pub fn finish(&mut self) {
        self.planner.finish();
        self.finishing = true;
    }

    /// The next item for the session, `None` when nothing is ready (push more, or finish).
    ///
    /// # Errors
    /// The step generator refused a block (a planner bug or an impossible configuration).
    pub fn pull(&mut self) -> Result<Option<FeedItem>, PipelineError> {
        loop {
            if let Some(m) = self.stepper.pop() {
                return Ok(Some(FeedItem::Move(m.into())));
            }
            if let Some(action) = self.action.take() {
                return Ok(Some(action_item(action)));
            }
            match self.planner.pop() {
                Some(PlannedItem::Block(block)) => {
                    self.stepper.push(&block).map_err(PipelineError::Step)?;
                }
                Some(PlannedItem::Action(action)) => {
                    // The machine is at rest before an action: release what the generator
                    // holds back.
                    self.stepper.finish();
                    self.action = Some(action);
                }
                None if self.finishing && !self.stepper_finished => {
                    self.stepper.finish();
                    self.stepper_finished = true;
                }
                None => return Ok(None),
            }
        }
    }

    /// Everything pushed has been pulled (after [`finish`](Self::finish)).
    pub fn is_done(&self) -> bool {
        self.finishing
            && self.stepper_finished
            && self.planner.is_empty()
            && self.action.is_none()
            && self.stepper.is_idle()
    }

    /// The planner (statistics such as forced releases).
    pub fn planner(&self) -> &Planner<'a> {
        &self.planner
    }

    /// The step generator (position, timing, statistics).
    pub fn stepper(&self) -> &StepGenerator {
        &self.stepper
    }
}

impl<'a, I: Iterator<Item = PathItem>> PathFeed<'a, I> {
    /// Feeds `path` through `pipeline`.
    pub fn new(pipeline: Pipeline<'a>, path: I) -> Self {
        Self {
            pipeline,
            path,
            held: None,
            ended: false,
        }
    }

    /// The pipeline.
    pub fn pipeline(&self) -> &Pipeline<'a> {
        &self.pipeline
    }
}

impl<I: Iterator<Item = PathItem>> FeedSource for PathFeed<'_, I> {
    type Error = PipelineError;

    fn next_item(&mut self) -> Result<Option<FeedItem>, PipelineError> {
        loop {
            if let Some(item) = self.pipeline.pull()? {
                return Ok(Some(item));
            }
            if self.ended {
                return Ok(None);
            }
            match self.held.take().or_else(|| self.path.next()) {
                Some(item) => match self.pipeline.push(item) {
                    Ok(()) => {}
                    Err(PipelineError::Plan(PlanError::WindowFull)) => self.held = Some(item),
                    Err(e) => return Err(e),
                },
                None => {
                    self.pipeline.finish();
                    self.ended = true;
                }
            }
        }
    }
}

/// The session item of a planner action.
fn action_item(action: Action) -> FeedItem {
    match action {
        Action::PenUp => FeedItem::Pen(Pen::Up),
        Action::PenDown => FeedItem::Pen(Pen::Down),
        Action::Pause => FeedItem::Pause,
        Action::Dwell(d) => FeedItem::Dwell(d),
    }
}

impl From<Move> for Motion {
    fn from(m: Move) -> Self {
        Self {
            command: match m.command {
                MoveCommand::Lm(lm) => MotionCommand::Lm(lm),
                MoveCommand::Sm(sm) => MotionCommand::Sm(sm),
            },
            ticks: m.ticks,
            end: m.end,
            pen: m.pen,
            tag: m.tag,
            distance_mm: m.distance_mm,
        }
    }
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plan(e) => e.fmt(f),
            Self::Step(e) => e.fmt(f),
            Self::UnsupportedFirmware(v) => write!(
                f,
                "EBB firmware {v} is older than any the step generator supports; update it"
            ),
        }
    }
}

impl core::error::Error for PipelineError {}
