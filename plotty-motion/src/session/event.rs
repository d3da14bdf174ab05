//! What a session reports ([`Event`]) and the records that travel with it.

use crate::ebb::FirmwareVersion;
use crate::kinematics::MotorSteps;
use crate::plan::{Pen, Tag};
use crate::time::{Duration, Instant};

use super::config::ProtocolLine;
use super::error::SessionError;

/// Something the caller should know, from [`Session::poll_event`](super::Session::poll_event).
#[derive(Clone, PartialEq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event {
    /// The version handshake succeeded; the set-up follows.
    Connected {
        /// The board's firmware version.
        version: FirmwareVersion,
        /// The protocol behaviour chosen for it.
        line: ProtocolLine,
    },
    /// Set-up is done: servo configured, pen up, motors on, position known. Items may be pushed.
    Ready {
        /// Motor position: `(0, 0)` after `EM`, or the kept counters (crash resume).
        position: MotorSteps,
        /// The board's step counters were kept (`keep_position` and the motors were already on at
        /// the right resolution).
        kept_position: bool,
        /// The firmware's step accumulators: `[0, 0]` after `EM`, read with `QU,200` when the
        /// position was kept on 3.x, `None` when kept on 2.x (unknown: assume `[0, 0]`).
        accumulators: Option<[u32; 2]>,
    },
    /// A fed move has finished executing (by the session's timeline, corrected by `QS` polls).
    Progress(Progress),
    /// Every move ending on this vertex has executed. Reported once the item after the vertex's
    /// last move is known (or the machine goes idle), so it can lag a little; after a feed that
    /// ran dry in the middle of a block it can repeat.
    VertexDone(Tag),
    /// A pen-down run of moves ended with a pen raise: the stroke is drawn.
    StrokeDone {
        /// `Tag::stroke` of the last pen-down move.
        stroke: u32,
    },
    /// A fed [`FeedItem::Marker`](super::FeedItem::Marker) was reached.
    Marker(u32),
    /// A `QS` answer: where the motors were when the board answered.
    Position {
        /// The firmware's step counters.
        steps: MotorSteps,
        /// When the answer arrived.
        at: Instant,
    },
    /// The PRG button was pressed (`QB`). With `pause_on_button`, a pause follows.
    ButtonPressed,
    /// A motor supply reading (`QC`): at set-up, and every `power_poll` while plotting or
    /// paused. `low` below `min_voltage`; a plot pauses then.
    Power {
        /// Raw V+ reading (10-bit ADC of the supply through the board's divider).
        voltage: u16,
        /// Below [`SessionConfig::min_voltage`](super::SessionConfig::min_voltage).
        low: bool,
    },
    /// The motor supply fell below [`SessionConfig::min_voltage`](super::SessionConfig::min_voltage)
    /// since the last look, however briefly (3.x: the firmware's power-lost latch, `CU,60`
    /// and `QG` bit 6, read at set-up and at every button poll). The motors may have lost
    /// steps: a plot pauses ([`PauseReason::PowerLost`]); at set-up, the position is not kept.
    PowerLost,
    /// The machine is stopped with the pen up, waiting for
    /// [`Session::resume`](super::Session::resume).
    Paused {
        /// Why.
        reason: PauseReason,
        /// Where to continue.
        resume: ResumePoint,
    },
    /// [`Session::abort`](super::Session::abort) finished: motion stopped, pen up, queue empty.
    Aborted {
        /// Motor position after the stop.
        position: MotorSteps,
        /// The firmware's step accumulators after the stop (3.x `QU,200`), so that a move
        /// planned from here (parking) ends on its exact step; `None` on 2.x.
        accumulators: Option<[u32; 2]>,
    },
    /// Everything fed has executed and `QS` confirms the final position.
    Idle {
        /// The confirmed motor position.
        position: MotorSteps,
    },
    /// A protocol error; see [`SessionError`].
    Error(SessionError),
}

/// Why the session paused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PauseReason {
    /// [`Session::pause`](super::Session::pause).
    Requested,
    /// The PRG button (with `pause_on_button`).
    Button,
    /// A fed [`FeedItem::Pause`](super::FeedItem::Pause) was reached: everything before it
    /// executed and nothing was dropped.
    Planned,
    /// The motor supply is low or off ([`Event::Power`](super::Event::Power)).
    LowPower,
    /// The motor supply dropped since the last poll and may have cost steps
    /// ([`Event::PowerLost`](super::Event::PowerLost)): where the carriage is is uncertain.
    PowerLost,
    /// A protocol error stopped the plot (reported just before).
    Error,
}

/// Where a paused plot continues.
///
/// After a [`PauseReason::Planned`] pause nothing was dropped:
/// [`Session::resume`](super::Session::resume) lowers the pen again if the pause raised it, and
/// feeding continues with the next item. After any other pause the session dropped everything queued (the
/// firmware's FIFO and its own feed queue), and **the caller re-plans from here**: the machine
/// is at `position`; the first item not completed is the move tagged `tag` (a pen-down move if
/// `pen` is [`Pen::Down`]: lower the pen first), which ends on vertex `tag.vertex` of stroke
/// `tag.stroke`. Plan from `position` to that vertex, then the rest of the path.
#[derive(Clone, Copy, PartialEq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ResumePoint {
    /// Exact motor position (`QS` after the stop).
    pub position: MotorSteps,
    /// Tag of the first move that did not complete; `None` if every fed move completed.
    pub tag: Option<Tag>,
    /// Pen state of that move (or of the last fed move when `tag` is `None`).
    pub pen: Pen,
    /// The firmware's step accumulators after the stop (3.x `QU,200`), to continue with exact
    /// timing (`StepGenerator::reset`); `None` on 2.x.
    pub accumulators: Option<[u32; 2]>,
    /// Whether queued items were dropped (every reason but [`PauseReason::Planned`]).
    pub dropped: bool,
}

/// Progress after a move finished.
#[derive(Clone, Copy, PartialEq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Progress {
    /// Tag of the block the move ends in.
    pub tag: Tag,
    /// Pen state of the move.
    pub pen: Pen,
    /// Motor position at the end of the move.
    pub position: MotorSteps,
    /// Path length of every move finished so far (since
    /// [`Session::reset_progress`](super::Session::reset_progress)), pen up and down.
    pub distance_mm: f64,
    /// Of that, pen-down length.
    pub drawn_mm: f64,
    /// Time the machine has been busy, estimated (idle and paused time not counted).
    pub elapsed: Duration,
    /// Firmware execution time of everything finished so far (moves, pen moves, dwells): what
    /// `elapsed` would be with no gaps in the feed.
    pub planned: Duration,
}
