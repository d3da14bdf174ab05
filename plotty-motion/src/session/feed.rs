//! What the caller feeds a session ([`FeedItem`]) and how each item becomes firmware commands.

use crate::ebb::{
    Command, EnableMotors, FirmwareVersion, JerkMove, LowLevelMove, PenAction, SetPen, StepperMove,
    limits,
};
use crate::kinematics::MotorSteps;
use crate::plan::{Pen, Tag};
use crate::time::{Duration, TICKS_PER_MS};

use super::config::ServoSetup;

/// Longest dwell piece on 2.x, in ms. 2.8.1's `ES` does not abort delays (reference §1.4), so a
/// pause waits for the piece running and the one queued behind it; 40 ms pieces keep that
/// under 100 ms.
pub const DWELL_PIECE_MS_V2: u32 = 40;
/// Longest dwell piece on 3.x, in ms (its `ES` aborts delays; pieces only keep the timeline
/// fine-grained).
pub const DWELL_PIECE_MS_V3: u32 = 1000;

/// A firmware motion command with its parameters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MotionCommand {
    /// `SM`: constant rate per motor.
    Sm(StepperMove),
    /// `LM`: constant acceleration per motor.
    Lm(LowLevelMove),
    /// `L3`: constant jerk per motor (3.x).
    L3(JerkMove),
}

/// One firmware move and what the session needs to account for it: its exact duration and end
/// position. The step generator's `Move` converts into it (`From`).
#[derive(Clone, Copy, PartialEq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Motion {
    /// The command (sent without a Clear unless the caller set one).
    pub command: MotionCommand,
    /// Exact execution time in 25 kHz ticks, as the firmware runs it.
    pub ticks: u32,
    /// Motor position when the move ends.
    pub end: MotorSteps,
    /// Pen state during the move.
    pub pen: Pen,
    /// Tag of the block the move ends in (reported in progress events and resume points).
    pub tag: Tag,
    /// Path length the move covers, in millimetres.
    pub distance_mm: f64,
}

/// One item of a plot, pushed with [`Session::push`](super::Session::push).
#[derive(Clone, Copy, PartialEq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FeedItem {
    /// A firmware move.
    Move(Motion),
    /// Raise or lower the pen (`SP` with the configured wait time; queued).
    Pen(Pen),
    /// Wait with the machine at rest (`SM,<ms>,0,0`, split to stay within the firmware's
    /// limits); rounded to whole milliseconds.
    Dwell(Duration),
    /// Motors on at the configured resolution, or off (`EM`; queued on 2.8.0+). Either zeroes
    /// the step counters when it executes: the position becomes (0, 0).
    Motors(bool),
    /// Report [`Event::Marker`](super::Event::Marker) when everything before it has executed.
    Marker(u32),
    /// Stop feeding here: once everything before it has executed, raise the pen and report
    /// [`Event::Paused`](super::Event::Paused) with
    /// [`PauseReason::Planned`](super::PauseReason::Planned).
    Pause,
}

/// What a fed item records in the timeline.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum EntryKind {
    /// A move, reported in progress events.
    Move {
        pen: Pen,
        tag: Tag,
        distance_mm: f64,
        /// Start speed over start plus end speed: how its steps spread over its time.
        ramp: f32,
    },
    /// A pen move; `report` is false for the session's own raises (set-up, stop).
    Pen { pen: Pen, report: bool },
    /// A delay.
    Dwell,
    /// `EM`: zeroes the step counters when it executes.
    Motors,
    /// A marker: no command, reported when reached.
    Marker(u32),
}

impl MotionCommand {
    /// How the move's speed changes, as `v_start / (v_start + v_end)` of its busiest motor: 0.5
    /// at constant speed, 0 from rest, 1 to rest. With constant acceleration the fraction of
    /// steps done after a fraction τ of the time is `2r·τ + (1 − 2r)·τ²`.
    pub(crate) fn ramp(&self, ticks: u32) -> f32 {
        let t = f64::from(ticks);
        let (v0, v1) = match *self {
            Self::Sm(_) => return 0.5,
            Self::Lm(m) => {
                let i = usize::from(m.steps[1].unsigned_abs() > m.steps[0].unsigned_abs());
                let (r, a) = (f64::from(m.rate[i]), f64::from(m.accel[i]));
                (libm::fabs(r), libm::fabs(r + a * t))
            }
            Self::L3(m) => {
                let i = usize::from(m.steps[1].unsigned_abs() > m.steps[0].unsigned_abs());
                let (r, a, j) = (
                    f64::from(m.rate[i]),
                    f64::from(m.accel[i]),
                    f64::from(m.jerk[i]),
                );
                (libm::fabs(r), libm::fabs(r + a * t + j * t * t / 2.0))
            }
        };
        if v0 + v1 > 0.0 {
            (v0 / (v0 + v1)) as f32
        } else {
            0.5
        }
    }

    /// The firmware command.
    pub fn command(&self) -> Command {
        match *self {
            Self::Sm(m) => Command::StepperMove(m),
            Self::Lm(m) => Command::LowLevelMove(m),
            Self::L3(m) => Command::JerkMove(m),
        }
    }
}

/// `SP,0|1,<ms>,<pin>` for `pen` and the ticks it occupies the FIFO (reference §2.2: 25 per ms,
/// or 1 tick without a delay).
pub(crate) fn pen_command(servo: &ServoSetup, pen: Pen) -> (Command, u32) {
    let (action, ms) = match pen {
        Pen::Up => (PenAction::Up, servo.raise_ms),
        Pen::Down => (PenAction::Down, servo.lower_ms),
    };
    let command = Command::SetPen(SetPen {
        action,
        duration_ms: Some(ms),
        pin: Some(servo.pin),
    });
    (command, delay_ticks(u32::from(ms)))
}

/// `EM,m,m` (or `EM,0,0`) and the tick it takes.
pub(crate) fn motors_command(on: bool, mode: u8) -> (Command, u32) {
    let e = if on { mode } else { 0 };
    (
        Command::EnableMotors(EnableMotors {
            enable1: e,
            enable2: e,
        }),
        1,
    )
}

/// Ticks a servo move or delay of `ms` occupies.
pub(crate) const fn delay_ticks(ms: u32) -> u32 {
    if ms == 0 {
        1
    } else {
        ms.saturating_mul(TICKS_PER_MS)
    }
}

/// Longest dwell piece for firmware `fw`.
pub(crate) fn dwell_piece_ms(fw: FirmwareVersion) -> u32 {
    if fw.is_v3() {
        DWELL_PIECE_MS_V3.min(limits::MAX_DELAY_MS_V3)
    } else {
        DWELL_PIECE_MS_V2.min(limits::MAX_DELAY_MS_V2)
    }
}

/// `SM,<ms>,0,0`.
pub(crate) fn dwell_command(ms: u32) -> Command {
    Command::StepperMove(StepperMove {
        duration_ms: ms,
        steps: [0, 0],
        clear: None,
    })
}

/// A dwell's length in whole milliseconds (rounded to nearest).
pub(crate) fn dwell_ms(d: Duration) -> u32 {
    u32::try_from(d.as_micros().saturating_add(500) / 1000).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ebb::EncodeOptions;

    fn text(c: &Command) -> std::string::String {
        let mut buf = [0u8; 64];
        let n = c.encode_with(&EncodeOptions::default(), &mut buf).unwrap();
        std::string::String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn pen_commands_match_the_axidraw_capture() {
        let servo = super::super::SessionConfig::default().servo;
        let (up, up_ticks) = pen_command(&servo, Pen::Up);
        assert_eq!(text(&up), "SP,1,130,1\r");
        assert_eq!(up_ticks, 3250);
        let (down, down_ticks) = pen_command(&servo, Pen::Down);
        assert_eq!(text(&down), "SP,0,146,1\r");
        assert_eq!(down_ticks, 3650);
        assert_eq!(text(&motors_command(true, 1).0), "EM,1,1\r");
        assert_eq!(text(&motors_command(false, 2).0), "EM,0,0\r");
        assert_eq!(text(&dwell_command(10)), "SM,10,0,0\r");
    }

    #[test]
    fn ramps() {
        let sm = MotionCommand::Sm(StepperMove {
            duration_ms: 10,
            steps: [1, 2],
            clear: None,
        });
        assert_eq!(sm.ramp(250), 0.5);
        let from_rest = MotionCommand::Lm(LowLevelMove {
            rate: [0, 0],
            steps: [100, -300],
            accel: [10, -30],
            clear: None,
        });
        assert_eq!(from_rest.ramp(1000), 0.0);
        let to_rest = MotionCommand::Lm(LowLevelMove {
            rate: [3000, 1000],
            steps: [300, 100],
            accel: [-3, -1],
            clear: None,
        });
        assert_eq!(to_rest.ramp(1000), 1.0);
    }

    #[test]
    fn dwell_rounding_and_pieces() {
        assert_eq!(dwell_ms(Duration::from_micros(1499)), 1);
        assert_eq!(dwell_ms(Duration::from_micros(1500)), 2);
        assert_eq!(dwell_ms(Duration::from_micros(u64::MAX)), u32::MAX);
        assert_eq!(dwell_piece_ms(FirmwareVersion::LAST_V2), 40);
        assert_eq!(dwell_piece_ms(FirmwareVersion::LATEST), 1000);
        assert_eq!(delay_ticks(0), 1);
    }
}
