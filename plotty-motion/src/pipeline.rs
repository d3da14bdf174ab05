//! Path to session items: the [`Planner`] over the caller's window, the [`StepGenerator`], and
//! the glue that flushes the generator at every action and at the end.
//!
//! [`Pipeline::push`] takes [`PathItem`]s (segments in millimetres, pen actions, pauses,
//! dwells); [`Pipeline::pull`] hands out [`FeedItem`]s for
//! [`Session::push`](crate::session::Session::push): firmware moves with exact ticks and end
//! positions, and the actions between them. [`PathFeed`] joins a pipeline to an iterator of
//! path items as a [`FeedSource`] for the [`Driver`](crate::driver::Driver).
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
use crate::plan::{
    Action, PathItem, Pen, PlanError, PlannedItem, Planner, PlannerConfig, PlannerSlot,
};
use crate::session::{FeedItem, Motion, MotionCommand};
use crate::step::{
    FAST_BATCH, FirmwareLine, Move, MoveCommand, StepConfig, StepError, StepGenerator,
};

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
    /// Moves the generator wrote in one batch ([`StepGenerator::push_into`], which converts
    /// the common block without queueing it), handed out from `next` up to `count`.
    moves: [Move; FAST_BATCH],
    next: u8,
    count: u8,
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
            moves: [Move::EMPTY; FAST_BATCH],
            next: 0,
            count: 0,
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
            if self.next < self.count {
                let m = self.moves.get(usize::from(self.next)).copied();
                self.next += 1;
                if let Some(m) = m {
                    return Ok(Some(FeedItem::Move(m.into())));
                }
            }
            // The batch is spent: whatever else the generator has ready comes first.
            let n = self.stepper.pop_into(&mut self.moves);
            if n > 0 {
                (self.next, self.count) = (0, n as u8);
                continue;
            }
            if let Some(action) = self.action.take() {
                return Ok(Some(action_item(action)));
            }
            match self.planner.pop() {
                Some(PlannedItem::Block(block)) => {
                    let n = self
                        .stepper
                        .push_into(&block, &mut self.moves)
                        .map_err(PipelineError::Step)?;
                    (self.next, self.count) = (0, n as u8);
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
            && self.next >= self.count
            && self.stepper.is_idle()
    }

    /// The planner (statistics such as forced releases).
    pub fn planner(&self) -> &Planner<'a> {
        &self.planner
    }

    /// The step generator (position, timing, statistics). Its figures count the moves of
    /// the pipeline's current batch as handed out: they describe everything pulled once
    /// [`pull`](Self::pull) has returned `None`.
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

impl From<PlanError> for PipelineError {
    fn from(e: PlanError) -> Self {
        Self::Plan(e)
    }
}

impl From<StepError> for PipelineError {
    fn from(e: StepError) -> Self {
        Self::Step(e)
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

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use super::*;
    use crate::kinematics::{AxiDrawSettings, Point};
    use crate::plan::Tag;
    use crate::time::Duration;

    fn setup(version: FirmwareVersion) -> (PlannerConfig, StepConfig) {
        let settings = AxiDrawSettings::default();
        (
            PlannerConfig::axidraw(&settings).unwrap(),
            step_config(version, settings.resolution).unwrap(),
        )
    }

    fn seg(x: f64, y: f64, pen: Pen, stroke: u32, vertex: u32) -> PathItem {
        PathItem::Segment {
            to: Point::new(x, y),
            pen,
            tag: Tag { stroke, vertex },
        }
    }

    /// A 20 mm square drawn at (10, 10), with travel there and back.
    fn square() -> Vec<PathItem> {
        std::vec![
            seg(10.0, 10.0, Pen::Up, 0, 0),
            PathItem::Action(Action::PenDown),
            seg(30.0, 10.0, Pen::Down, 1, 1),
            seg(30.0, 30.0, Pen::Down, 1, 2),
            seg(10.0, 30.0, Pen::Down, 1, 3),
            seg(10.0, 10.0, Pen::Down, 1, 4),
            PathItem::Action(Action::PenUp),
            PathItem::Action(Action::Dwell(Duration::from_millis(100))),
            PathItem::Action(Action::Pause),
            seg(0.0, 0.0, Pen::Up, 2, 0),
        ]
    }

    fn run(version: FirmwareVersion, path: &[PathItem], window: usize) -> Vec<FeedItem> {
        let (plan, step) = setup(version);
        let mut slots = std::vec![PlannerSlot::EMPTY; window];
        let mut p = Pipeline::new(plan, step, &mut slots).unwrap();
        let mut out = Vec::new();
        for &item in path {
            loop {
                match p.push(item) {
                    Ok(()) => break,
                    Err(PipelineError::Plan(PlanError::WindowFull)) => {
                        out.push(p.pull().unwrap().expect("a full window releases"));
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            while let Some(i) = p.pull().unwrap() {
                out.push(i);
            }
        }
        p.finish();
        while let Some(i) = p.pull().unwrap() {
            out.push(i);
        }
        assert!(p.is_done());
        out
    }

    #[test]
    fn actions_come_between_the_right_moves_and_positions_chain() {
        for version in [FirmwareVersion::LATEST, FirmwareVersion::LAST_V2] {
            for window in [1, 3, 64] {
                let items = run(version, &square(), window);
                let k = Kinematics::new(Resolution::High);
                let kinds: Vec<char> = items
                    .iter()
                    .map(|i| match i {
                        FeedItem::Move(m) if m.pen == Pen::Up => 'u',
                        FeedItem::Move(_) => 'd',
                        FeedItem::Pen(Pen::Down) => 'v',
                        FeedItem::Pen(Pen::Up) => '^',
                        FeedItem::Dwell(_) => 'w',
                        FeedItem::Pause => 'p',
                        _ => '?',
                    })
                    .collect();
                let text: std::string::String = kinds.iter().collect();
                // Travel moves, pen down, drawing moves, pen up, dwell, pause, travel home.
                let shape = text.split(['v', '^', 'w', 'p']).collect::<Vec<_>>();
                assert_eq!(shape.len(), 5, "{text}");
                assert!(shape[0].chars().all(|c| c == 'u') && !shape[0].is_empty());
                assert!(shape[1].chars().all(|c| c == 'd') && shape[1].len() >= 4);
                assert!(shape[4].chars().all(|c| c == 'u') && !shape[4].is_empty());
                assert_eq!(&text[text.find('^').unwrap()..][..3], "^wp");
                // Each vertex is reached exactly at its tag's last move.
                let moves: Vec<&Motion> = items
                    .iter()
                    .filter_map(|i| match i {
                        FeedItem::Move(m) => Some(m),
                        _ => None,
                    })
                    .collect();
                for w in moves.windows(2) {
                    if w[0].tag != w[1].tag || w[0].pen != w[1].pen {
                        let corner = match (w[0].tag.stroke, w[0].tag.vertex) {
                            (0, 0) => Point::new(10.0, 10.0),
                            (1, 1) => Point::new(30.0, 10.0),
                            (1, 2) => Point::new(30.0, 30.0),
                            (1, 3) => Point::new(10.0, 30.0),
                            (1, 4) => Point::new(10.0, 10.0),
                            other => panic!("{other:?}"),
                        };
                        assert_eq!(w[0].end, k.to_motor(corner), "{:?}", w[0].tag);
                    }
                }
                assert_eq!(moves.last().unwrap().end, MotorSteps::ZERO);
                let drawn: f64 = moves
                    .iter()
                    .filter(|m| m.pen == Pen::Down)
                    .map(|m| m.distance_mm)
                    .sum();
                assert!((drawn - 80.0).abs() < 1e-6, "{drawn}");
            }
        }
    }

    #[test]
    fn lm_on_2_7_and_later_sm_before() {
        let items = run(FirmwareVersion::LAST_V2, &square(), 8);
        assert!(items.iter().any(|i| matches!(
            i,
            FeedItem::Move(Motion {
                command: MotionCommand::Lm(_),
                ..
            })
        )));
        let items = run(FirmwareVersion::new(2, 6, 0), &square(), 8);
        assert!(items.iter().all(|i| !matches!(
            i,
            FeedItem::Move(Motion {
                command: MotionCommand::Lm(_),
                ..
            })
        )));
        assert_eq!(
            step_config(FirmwareVersion::new(0, 9, 0), Resolution::High),
            Err(PipelineError::UnsupportedFirmware(FirmwareVersion::new(
                0, 9, 0
            )))
        );
    }

    #[test]
    fn starting_at_a_resume_position() {
        let (plan, step) = setup(FirmwareVersion::LATEST);
        let mut slots = [PlannerSlot::EMPTY; 8];
        let from = MotorSteps::new(1234, -321);
        let mut p = Pipeline::starting_at(plan, step, &mut slots, from, [5, 7]).unwrap();
        p.push(seg(0.0, 0.0, Pen::Up, 0, 1)).unwrap();
        p.finish();
        let mut last = None;
        while let Some(i) = p.pull().unwrap() {
            if let FeedItem::Move(m) = i {
                last = Some(m.end);
            }
        }
        assert_eq!(last, Some(MotorSteps::ZERO));
        assert_eq!(p.stepper().position(), MotorSteps::ZERO);
    }

    #[test]
    fn path_feed_pulls_the_whole_path() {
        let (plan, step) = setup(FirmwareVersion::LATEST);
        let mut slots = [PlannerSlot::EMPTY; 2];
        let p = Pipeline::new(plan, step, &mut slots).unwrap();
        let path = square();
        let mut feed = PathFeed::new(p, path.iter().copied());
        let mut n = 0;
        let mut last = None;
        while let Some(i) = feed.next_item().unwrap() {
            n += 1;
            if let FeedItem::Move(m) = i {
                last = Some(m.end);
            }
        }
        assert!(n > 10);
        assert_eq!(last, Some(MotorSteps::ZERO));
        assert!(feed.pipeline().is_done());
    }
}
