//! Connecting: the version handshake (reference §7b, §6.13) and the set-up sequence (§3, §4,
//! §5.4): acknowledgements and reply syntax, stop leftovers, servo, FIFO depth, motor state,
//! pen up, motors on, position.

use crate::ebb::{
    Command, Configure, FirmwareError, FirmwareVersion, Port, Reply, ReplyMode, VersionError,
};
use crate::kinematics::{MotorSteps, Resolution};
use crate::plan::Pen;
use crate::time::{Duration, Instant};

use super::error::excerpt;
use super::feed::{self, EntryKind};
use super::{
    EntrySpec, Event, MIN_FIRMWARE, Phase, ProtocolLine, Purpose, Queued, RESYNC_ATTEMPTS, Session,
    SessionError, VERSION_ATTEMPTS, VersionRequests,
};

/// Readings of the position the set-up takes at most to get two that agree.
const MAX_READINGS: u8 = 5;

/// First version whose "future" reply syntax plotink's `ebb3_serial` relies on (reference §7b).
const FUTURE_SYNTAX_SINCE: FirmwareVersion = FirmwareVersion::new(3, 0, 2);

/// The set-up steps, in order. Steps that do not apply are skipped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum SetupStep {
    AckOn,
    Syntax,
    Checksums,
    EStop,
    ServoUp,
    ServoDown,
    RateRaise,
    RateLower,
    Slots,
    ServoTimeout,
    FifoDepth,
    QueryEnables,
    /// `PI` reads of reference §5.4: motor enables (RE0, RC1; active low), MS1..MS3 (RE2, RE1,
    /// RA6).
    Pin(u8),
    /// The motor supply (`QC`), reported before anything moves.
    Voltage,
    /// 3.x with `min_voltage`: `QG`, whose power-lost bit (6, cleared by the read) tells whether
    /// the supply fell below the threshold an earlier session set since then: the motors may
    /// have slipped, so a kept position is not trusted.
    PowerLatch,
    /// 3.x with `min_voltage`: `CU,60,min_voltage`, so that the firmware latches any drop of
    /// the supply below it, however short, between two polls.
    PowerThreshold,
    PenUp,
    Motors,
    /// Wait until the pen raise and `EM` have executed.
    WaitIdle,
    Position,
    /// 3.x with a kept position: the step accumulators (`QU,200`), so that the first move
    /// planned from here ends on its exact step.
    Accumulators,
}

/// Set-up progress.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct SetupState {
    /// The handshake succeeded.
    pub(super) connected: bool,
    step: Option<SetupStep>,
    /// The motors were on at the right resolution and `keep_position` is set.
    kept: bool,
    /// `PI` readings so far, one bit per read.
    pins: u8,
    /// The last `QS` reading and how many were taken: two in a row must agree.
    reading: Option<MotorSteps>,
    reads: u8,
    /// The agreed position, while the accumulators are read.
    position: Option<MotorSteps>,
}

/// What a line received during a handshake or resynchronisation is.
enum VersionLine {
    Version {
        version: FirmwareVersion,
        future: bool,
    },
    /// Starts with `EBB` but has no version number.
    NoNumber,
    Other,
}

/// The `PI` reads, in the order AxiDraw sends them.
const PINS: [(Port, u8); 5] = [
    (Port::E, 0),
    (Port::C, 1),
    (Port::E, 2),
    (Port::E, 1),
    (Port::A, 6),
];

impl SetupStep {
    const fn next(self) -> Option<Self> {
        Some(match self {
            Self::AckOn => Self::Syntax,
            Self::Syntax => Self::Checksums,
            Self::Checksums => Self::EStop,
            Self::EStop => Self::ServoUp,
            Self::ServoUp => Self::ServoDown,
            Self::ServoDown => Self::RateRaise,
            Self::RateRaise => Self::RateLower,
            Self::RateLower => Self::Slots,
            Self::Slots => Self::ServoTimeout,
            Self::ServoTimeout => Self::FifoDepth,
            Self::FifoDepth => Self::QueryEnables,
            Self::QueryEnables => Self::Pin(0),
            Self::Pin(i) if (i as usize) + 1 < PINS.len() => Self::Pin(i + 1),
            Self::Pin(_) => Self::Voltage,
            Self::Voltage => Self::PowerLatch,
            Self::PowerLatch => Self::PowerThreshold,
            Self::PowerThreshold => Self::PenUp,
            Self::PenUp => Self::Motors,
            Self::Motors => Self::WaitIdle,
            Self::WaitIdle => Self::Position,
            Self::Position | Self::Accumulators => return None,
        })
    }
}

impl Session {
    /// A line while waiting for the handshake's `V` reply. Lines that are not a version line
    /// (stale replies from an earlier host, an error caused by a stale partial command) are
    /// skipped; an error line asks for `V` again.
    pub(super) fn on_handshake_line(&mut self, now: Instant, line: &[u8]) {
        match classify(line) {
            VersionLine::Version { version, future } => self.connected(now, version, future),
            // A damaged version line (a byte dropped or doubled on the way): ask again while
            // attempts remain.
            VersionLine::NoNumber if self.version_requests.sent < VERSION_ATTEMPTS => {
                self.pending.clear();
                self.version_requests.due = true;
            }
            VersionLine::NoNumber => self.fail(SessionError::NoVersion {
                reply: excerpt(line),
            }),
            VersionLine::Other => {
                if self.version_requests.garbage.is_none() {
                    self.version_requests.garbage = Some(excerpt(line));
                }
                if FirmwareError::find(line).is_some()
                    && self.version_requests.sent < VERSION_ATTEMPTS
                {
                    self.pending.clear();
                    self.version_requests.due = true;
                }
            }
        }
    }

    /// The handshake's `V` got no version line in time.
    pub(super) fn handshake_timeout(&mut self, _now: Instant, waited: Duration) {
        self.pending.clear();
        if self.version_requests.sent < VERSION_ATTEMPTS {
            self.version_requests.due = true;
            return;
        }
        let error = match self.version_requests.garbage.take() {
            Some(reply) => SessionError::NotAnEbb { reply },
            None => SessionError::Timeout {
                command: "V",
                waited,
            },
        };
        self.fail(error);
    }

    /// The version is known: choose the protocol line and start the set-up.
    fn connected(&mut self, now: Instant, version: FirmwareVersion, future: bool) {
        self.pending.clear();
        self.version_requests = VersionRequests::default();
        if version < MIN_FIRMWARE {
            return self.fail(SessionError::UnsupportedFirmware {
                version,
                reason: "it has no step counters (QS needs 2.4.3 or later); update the firmware",
            });
        }
        let line = match self.config.line {
            Some(ProtocolLine::V3) if !version.is_v3() => {
                return self.fail(SessionError::UnsupportedFirmware {
                    version,
                    reason: "the configuration forces 3.x behaviour but the board runs 2.x",
                });
            }
            Some(line) => line,
            None if version.is_v3() => ProtocolLine::V3,
            None => ProtocolLine::V2,
        };
        self.version = version;
        self.line = line;
        self.encode = crate::ebb::EncodeOptions::new(version);
        self.parser.reset();
        self.parser.set_mode(if future {
            ReplyMode::Future
        } else {
            ReplyMode::at_boot(version)
        });
        self.setup = SetupState {
            connected: true,
            step: Some(SetupStep::AckOn),
            ..SetupState::default()
        };
        self.emit(Event::Connected { version, line });
        self.phase = Phase::Setup;
        self.queue_setup(now);
    }

    /// Queues the command of the current step, skipping steps that do not apply.
    fn queue_setup(&mut self, now: Instant) {
        while let Some(step) = self.setup.step {
            if step == SetupStep::WaitIdle {
                self.setup_advance(now);
                return;
            }
            if let Some(q) = self.setup_command(step) {
                // One set-up command at a time: the queue is empty here.
                let _ = self.control.push_back(q);
                return;
            }
            self.setup.step = step.next();
        }
    }

    fn setup_command(&self, step: SetupStep) -> Option<Queued> {
        let servo = &self.config.servo;
        let sc = |parameter, value| Command::ServoConfig { parameter, value };
        let keep = self.config.keep_position;
        let command = match step {
            SetupStep::AckOn => Command::Configure(Configure::ack(true)),
            SetupStep::Syntax => {
                let want_future = self.line == ProtocolLine::V3
                    && self.version >= FUTURE_SYNTAX_SINCE
                    && self.config.future_syntax;
                if want_future {
                    Command::Configure(Configure::future_syntax(true))
                } else if self.parser.mode() == ReplyMode::Future {
                    Command::Configure(Configure::future_syntax(false))
                } else {
                    return None;
                }
            }
            SetupStep::Checksums if self.config.checksums && self.version.is_v3() => {
                Command::Configure(Configure::checksum(true))
            }
            SetupStep::Checksums => return None,
            SetupStep::EStop => Command::EmergencyStop {
                disable_motors: false,
            },
            SetupStep::ServoUp => sc(4, servo.up),
            SetupStep::ServoDown => sc(5, servo.down),
            SetupStep::RateRaise => sc(11, servo.rate_raise),
            SetupStep::RateLower => sc(12, servo.rate_lower),
            SetupStep::Slots => sc(8, u16::from(servo.slots?)),
            SetupStep::ServoTimeout if self.version.has_sr() => Command::ServoTimeout {
                timeout_ms: self.config.servo_timeout_ms?,
                power: None,
            },
            SetupStep::ServoTimeout => return None,
            SetupStep::FifoDepth if self.line == ProtocolLine::V3 => {
                Command::Configure(Configure::fifo_depth(self.config.fifo_depth))
            }
            SetupStep::FifoDepth => return None,
            SetupStep::QueryEnables if keep && self.version.has_qe() => Command::QueryEnables,
            SetupStep::QueryEnables => return None,
            SetupStep::Pin(i) if keep && !self.version.has_qe() => {
                let &(port, pin) = PINS.get(usize::from(i))?;
                Command::PinInput { port, pin }
            }
            SetupStep::Pin(_) => return None,
            SetupStep::Voltage => Command::QueryCurrent,
            SetupStep::PowerLatch | SetupStep::PowerThreshold if !self.watches_power() => {
                return None;
            }
            SetupStep::PowerLatch => Command::QueryGeneral,
            SetupStep::PowerThreshold => Command::Configure(Configure {
                parameter: Configure::POWER_LOST_THRESHOLD,
                value: i16::try_from(self.config.min_voltage?.min(1023)).ok()?,
            }),
            SetupStep::PenUp => {
                let (command, ticks) = feed::pen_command(servo, Pen::Up);
                return Some(Queued {
                    command,
                    purpose: Purpose::Setup(step),
                    entry: Some(EntrySpec {
                        kind: EntryKind::Pen {
                            pen: Pen::Up,
                            report: false,
                        },
                        slots: 1,
                        ticks,
                        to: self.timeline.tail_position(),
                    }),
                });
            }
            SetupStep::Motors if !self.setup.kept => {
                let (command, ticks) = feed::motors_command(true, self.config.resolution.em_mode());
                return Some(Queued {
                    command,
                    purpose: Purpose::Setup(step),
                    entry: Some(EntrySpec {
                        kind: EntryKind::Motors,
                        slots: u8::from(self.version.em_is_queued()),
                        ticks,
                        to: MotorSteps::ZERO,
                    }),
                });
            }
            SetupStep::Motors | SetupStep::WaitIdle => return None,
            SetupStep::Position => Command::QuerySteps,
            SetupStep::Accumulators => Command::QueryUtility(200),
        };
        Some(Queued {
            command,
            purpose: Purpose::Setup(step),
            entry: None,
        })
    }

    /// A set-up command's reply.
    pub(super) fn setup_reply(&mut self, now: Instant, step: SetupStep, reply: Reply) {
        let wanted = match self.config.resolution {
            Resolution::High => 16,
            Resolution::Low => 8,
        };
        match (step, reply) {
            (SetupStep::FifoDepth, _) => self.fifo_depth = self.config.fifo_depth,
            // Reported; the caller decides whether to plot on a low supply. A first low
            // reading is taken again.
            (SetupStep::Voltage, Reply::Current { voltage, .. })
                if self.power_reading(now, voltage).is_none() =>
            {
                return self.queue_setup(now);
            }
            (SetupStep::PowerLatch, Reply::GeneralStatus(status)) if status.power_lost => {
                // The motors lost their supply since an earlier session set the threshold:
                // where the carriage is is unknown, whatever the enables say.
                self.setup.kept = false;
                self.emit(Event::PowerLost);
            }
            (SetupStep::PowerThreshold, _) => self.polls.power_latch = true,
            // From now on every command carries its checksum.
            (SetupStep::Checksums, _) => self.encode = self.encode.with_checksum(true),
            (SetupStep::QueryEnables, Reply::Enables(e)) => {
                self.setup.kept = e.motor1 == wanted && e.motor2 == wanted;
            }
            (SetupStep::Pin(i), Reply::Pin(high)) => {
                if high {
                    self.setup.pins |= 1 << i;
                }
                if usize::from(i) + 1 == PINS.len() {
                    // Enables low (on); MS1, MS2 high; MS3 high for 16×, low for 8×.
                    let want_ms3 = wanted == 16;
                    let p = self.setup.pins;
                    let bit = |n: u8| p & (1 << n) != 0;
                    self.setup.kept = !bit(0) && !bit(1) && bit(2) && bit(3) && bit(4) == want_ms3;
                }
            }
            (SetupStep::Position, Reply::Steps { m1, m2 }) => {
                let position = MotorSteps::new(m1, m2);
                self.emit(Event::Position {
                    steps: position,
                    at: now,
                });
                // The replies carry no checksum: read until two readings agree.
                self.setup.reads += 1;
                if self.setup.reading.replace(position) != Some(position)
                    && self.setup.reads < MAX_READINGS
                {
                    return self.queue_setup(now);
                }
                if !self.setup.kept && position != MotorSteps::ZERO {
                    return self.fail(SessionError::PositionMismatch {
                        expected: MotorSteps::ZERO,
                        actual: position,
                    });
                }
                if self.setup.kept && self.version.is_v3() {
                    self.setup.position = Some(position);
                    self.setup.step = Some(SetupStep::Accumulators);
                    return self.queue_setup(now);
                }
                let accumulators = (!self.setup.kept).then_some([0, 0]);
                return self.setup_done(now, position, accumulators);
            }
            (SetupStep::Accumulators, reply) => {
                let accumulators = match reply {
                    Reply::Utility(v) => super::stop::parse_pair(v.as_str()),
                    _ => None,
                };
                let position = self.setup.position.unwrap_or(MotorSteps::ZERO);
                return self.setup_done(now, position, accumulators);
            }
            _ => {}
        }
        self.setup.step = step.next();
        self.queue_setup(now);
    }

    /// The set-up is done: the machine is at `position`, ready for items.
    fn setup_done(&mut self, now: Instant, position: MotorSteps, accumulators: Option<[u32; 2]>) {
        self.setup.step = None;
        self.timeline.reset(now, position);
        self.reset_progress(now);
        self.phase = Phase::Ready;
        self.pen_fed = Pen::Up;
        self.polls.next_button = now;
        self.emit(Event::Ready {
            position,
            kept_position: self.setup.kept,
            accumulators,
        });
    }

    /// Moves past the wait for the set-up's queued commands once they have executed.
    pub(super) fn setup_advance(&mut self, now: Instant) {
        if self.setup.step == Some(SetupStep::WaitIdle)
            && self.timeline.is_empty()
            && self.pending.is_empty()
            && self.control.is_empty()
        {
            self.setup.step = Some(SetupStep::Position);
            self.queue_setup(now);
        }
    }

    /// A line during a resynchronisation: everything up to the reply to our `V` is stale.
    pub(super) fn on_resync_line(&mut self, now: Instant, line: &[u8]) {
        let damaged = match classify(line) {
            VersionLine::NoNumber => true,
            VersionLine::Other => FirmwareError::find(line).is_some(),
            VersionLine::Version { .. } => false,
        };
        if damaged && self.version_requests.sent < RESYNC_ATTEMPTS {
            // Our `V` or its reply was damaged (a refused command, a version line with a byte
            // lost): ask again now rather than after the reply timeout.
            self.pending.clear();
            self.version_requests.due = true;
            return;
        }
        if let VersionLine::Version { future, .. } = classify(line) {
            self.pending.clear();
            self.parser.reset();
            self.parser.set_mode(if future {
                ReplyMode::Future
            } else {
                ReplyMode::at_boot(self.version)
            });
            self.version_requests = VersionRequests::default();
            self.resynced(now);
        }
    }

    /// The resynchronisation's `V` got no version line in time.
    pub(super) fn resync_timeout(&mut self, waited: Duration) {
        self.pending.clear();
        if self.version_requests.sent < RESYNC_ATTEMPTS {
            self.version_requests.due = true;
        } else {
            self.fail(SessionError::Timeout {
                command: "V",
                waited,
            });
        }
    }
}

/// Reads a line as a `V` reply: `EBB…Firmware Version X.Y.Z`, or `V,EBB…` from a 3.x board
/// still in "future" mode.
fn classify(line: &[u8]) -> VersionLine {
    let (future, text) = match line.strip_prefix(b"V,") {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    match FirmwareVersion::from_reply(text) {
        Ok(version) => VersionLine::Version { version, future },
        Err(VersionError::NoVersionNumber) => VersionLine::NoNumber,
        Err(VersionError::NotAnEbb) => VersionLine::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_version_lines() {
        assert!(matches!(
            classify(b"EBBv13_and_above EB Firmware Version 3.0.3"),
            VersionLine::Version { future: false, version } if version == FirmwareVersion::LATEST
        ));
        assert!(matches!(
            classify(b"V,EBBv13_and_above EB Firmware Version 3.0.3"),
            VersionLine::Version { future: true, .. }
        ));
        assert!(matches!(classify(b"EBB oops"), VersionLine::NoNumber));
        assert!(matches!(classify(b"Hello"), VersionLine::Other));
        assert!(matches!(classify(b"OK"), VersionLine::Other));
    }

    #[test]
    fn steps_run_in_order() {
        let mut s = SetupStep::AckOn;
        let mut n = 1;
        while let Some(next) = s.next() {
            s = next;
            n += 1;
        }
        assert_eq!(s, SetupStep::Position);
        assert_eq!(n, 24);
        assert_eq!(SetupStep::Accumulators.next(), None);
    }
}
