//! Seeded, reproducible faults between the host and the simulated board.
//!
//! Like smoltcp's `FaultInjector`, every random decision comes from an RNG whose seed is stored,
//! so a failing run is reproduced by its seed. Each direction has its own RNG and decisions are
//! made per byte in stream order, so the faults do not depend on how the bytes were chunked into
//! reads and writes (threads, USB packets): the same seed and the same byte streams give the same
//! faults.
//!
//! What can go wrong:
//! - bytes dropped, duplicated or garbled (one bit flipped) in either direction, with a rate per
//!   byte ([`ByteFaults`]);
//! - late replies: a reply line held back for a while of simulated time ([`LateReplies`]);
//! - scheduled events ([`ScheduledFault`]) at a simulated time or after the n-th command the board
//!   received: the board resets (re-initialised as on `R`), vanishes (the port reports a
//!   disconnect, the pty closes), is unplugged from USB and plugged back a while later (the pty
//!   closes and comes back on the same link), reports low power (`QC` voltage below the
//!   AxiDraw's warning level of 250), or its pause button is pressed (`QB`/`QG`).
//!
//! The command-line form of each fault is parsed by [`FaultSpec`]'s `FromStr`.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

/// Simulated ticks per millisecond (the firmware's 25 kHz interrupt).
const TICKS_PER_MS: u64 = 25;

/// How long an unplugged board stays out by default: 2 s, in 25 kHz ticks.
pub const DEFAULT_REPLUG_TICKS: u64 = 2 * 25_000;

/// The default `QC` voltage reading of a low-power fault (raw ADC; the AxiDraw warns below 250).
pub const LOW_POWER_VOLTAGE: u16 = 200;

/// Everything that should go wrong in one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultConfig {
    /// Faults on bytes from the host to the board.
    pub to_board: ByteFaults,
    /// Faults on bytes from the board to the host.
    pub to_host: ByteFaults,
    /// Reply lines held back, if any.
    pub late_replies: Option<LateReplies>,
    /// One-off events.
    pub events: Vec<ScheduledFault>,
}

/// Per-byte fault rates of one direction, each a probability in `0.0..=1.0`; their sum must not
/// exceed 1.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ByteFaults {
    /// Probability that a byte is lost.
    pub drop: f64,
    /// Probability that a byte arrives twice.
    pub duplicate: f64,
    /// Probability that a byte arrives with one bit flipped.
    pub garble: f64,
}

/// Reply lines delayed in simulated time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LateReplies {
    /// Probability that a given reply line is late.
    pub rate: f64,
    /// How late, in 25 kHz ticks.
    pub delay_ticks: u64,
}

/// A one-off fault and when it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledFault {
    /// When it happens.
    pub at: Trigger,
    /// What happens.
    pub action: FaultAction,
}

/// When a scheduled fault happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// When simulated time reaches this tick (25 kHz ticks since power-on).
    AtTick(u64),
    /// Right after the board received its n-th command line (counted from 1).
    AfterCommand(u64),
}

/// A scheduled fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// The board resets (brown-out or watchdog): it re-initialises as on `R` (queued motion
    /// lost, legacy replies, FIFO depth 1, counters zeroed, pen raised) and, as its USB
    /// connection restarts, a half-received command and unread replies are lost.
    Reset,
    /// The board disappears: the port reports a disconnect, the pty is closed.
    Vanish,
    /// The supply sags: `QC` reports this raw voltage reading from now on.
    LowPower {
        /// Raw 10-bit ADC reading of V+ (the AxiDraw software warns below 250).
        voltage: u16,
    },
    /// The PRG (pause) button is pressed once.
    PressButton,
    /// The USB cable is pulled out, and plugged back after `replug_after_ticks` of simulated
    /// time. The board keeps running on its own supply and keeps its state; what was in flight
    /// on the USB connection is lost.
    Unplug {
        /// How long the cable stays out, in 25 kHz ticks.
        replug_after_ticks: u64,
    },
}

/// One command-line fault specification (`--fault SPEC`); several combine into a
/// [`FaultConfig`] with [`FaultConfig::apply`].
///
/// Grammar (`WHEN` is `N` = after the N-th command, `Xs` or `Xms` = at simulated time X):
/// - `drop=R`, `dup=R`, `garble=R` — both directions; add `-to-board` or `-to-host` for one
///   (`drop-to-host=0.01`); R is a probability per byte;
/// - `late=R:MS` — each reply line is late by MS ms with probability R;
/// - `reset@WHEN`, `vanish@WHEN`, `button@WHEN`;
/// - `unplug[=AFTER]@WHEN` — out of USB at WHEN, plugged back AFTER (`Xs` or `Xms`, default
///   2 s) later;
/// - `low-power[=V][@WHEN]` — `QC` voltage V (default 200) from WHEN (default: power-on).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaultSpec {
    /// A per-byte rate.
    Bytes {
        /// Which directions.
        direction: Direction,
        /// Which fault.
        kind: ByteFaultKind,
        /// Probability per byte.
        rate: f64,
    },
    /// Late reply lines.
    Late(LateReplies),
    /// A scheduled event.
    Event(ScheduledFault),
}

/// Directions a byte fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Host to board.
    ToBoard,
    /// Board to host.
    ToHost,
    /// Both.
    Both,
}

/// Kinds of byte fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteFaultKind {
    /// Lost byte.
    Drop,
    /// Doubled byte.
    Duplicate,
    /// One bit flipped.
    Garble,
}

/// Why a fault specification or configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FaultSpecError {
    /// The name before `=`/`@` is not a known fault.
    #[error(
        "unknown fault {0:?}; expected drop, dup, garble (optionally with -to-board/-to-host), \
         late, reset, vanish, unplug, button or low-power"
    )]
    UnknownFault(String),
    /// A value is missing or malformed.
    #[error("fault {fault:?}: {problem}; e.g. {example}")]
    BadValue {
        /// The fault's name.
        fault: String,
        /// What is wrong.
        problem: String,
        /// A correct example.
        example: &'static str,
    },
    /// The rates of one direction add up to more than 1.
    #[error("byte fault rates {0} add up to more than 1")]
    RatesTooHigh(&'static str),
}

/// Applies a [`FaultConfig`] to the byte streams and says when scheduled faults are due.
/// Owned by the board harness; the same seed and configuration give the same faults.
#[derive(Debug, Clone)]
pub struct FaultInjector {
    seed: u64,
    config: FaultConfig,
    to_board_rng: fastrand::Rng,
    to_host_rng: fastrand::Rng,
    late_rng: fastrand::Rng,
    /// Bytes for the host with the tick from which they may be delivered (non-decreasing).
    held: VecDeque<(u64, Vec<u8>)>,
    /// The next reply byte starts a line (decides lateness per line).
    at_line_start: bool,
    /// Release tick of the current line.
    line_release: u64,
    /// Which scheduled events already fired.
    fired: Vec<bool>,
}

impl FaultConfig {
    /// Adds one command-line fault specification.
    pub fn apply(&mut self, spec: FaultSpec) {
        match spec {
            FaultSpec::Bytes {
                direction,
                kind,
                rate,
            } => {
                let set = |faults: &mut ByteFaults| match kind {
                    ByteFaultKind::Drop => faults.drop = rate,
                    ByteFaultKind::Duplicate => faults.duplicate = rate,
                    ByteFaultKind::Garble => faults.garble = rate,
                };
                if matches!(direction, Direction::ToBoard | Direction::Both) {
                    set(&mut self.to_board);
                }
                if matches!(direction, Direction::ToHost | Direction::Both) {
                    set(&mut self.to_host);
                }
            }
            FaultSpec::Late(late) => self.late_replies = Some(late),
            FaultSpec::Event(event) => self.events.push(event),
        }
    }

    /// Checks that the rates of each direction add up to at most 1.
    pub fn validate(&self) -> Result<(), FaultSpecError> {
        if self.to_board.total() > 1.0 {
            return Err(FaultSpecError::RatesTooHigh("host-to-board"));
        }
        if self.to_host.total() > 1.0 {
            return Err(FaultSpecError::RatesTooHigh("board-to-host"));
        }
        Ok(())
    }

    /// Whether nothing at all is configured.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl ByteFaults {
    fn total(&self) -> f64 {
        self.drop + self.duplicate + self.garble
    }

    fn is_none(&self) -> bool {
        self.total() == 0.0
    }

    /// Passes one byte through, appending 0, 1 or 2 bytes to `out`.
    fn apply(&self, rng: &mut fastrand::Rng, byte: u8, out: &mut Vec<u8>) {
        let r = rng.f64();
        if r < self.drop {
        } else if r < self.drop + self.duplicate {
            out.push(byte);
            out.push(byte);
        } else if r < self.total() {
            out.push(byte ^ (1 << rng.u8(0..8)));
        } else {
            out.push(byte);
        }
    }
}

impl FaultInjector {
    /// An injector for `config` whose every random choice derives from `seed`.
    pub fn new(seed: u64, config: FaultConfig) -> Self {
        // Independent streams per direction so interleaving cannot change either one.
        let mut root = fastrand::Rng::with_seed(seed);
        let fired = vec![false; config.events.len()];
        Self {
            seed,
            to_board_rng: fastrand::Rng::with_seed(root.u64(..)),
            to_host_rng: fastrand::Rng::with_seed(root.u64(..)),
            late_rng: fastrand::Rng::with_seed(root.u64(..)),
            config,
            held: VecDeque::new(),
            at_line_start: true,
            line_release: 0,
            fired,
        }
    }

    /// The seed this injector was created with (print it to reproduce a run).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The configuration in force.
    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// Passes host bytes towards the board, appending what arrives to `out`.
    pub fn to_board(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let faults = self.config.to_board;
        if faults.is_none() {
            out.extend_from_slice(bytes);
            return;
        }
        for &b in bytes {
            faults.apply(&mut self.to_board_rng, b, out);
        }
    }

    /// Takes bytes the board sent at tick `now`; they become deliverable through
    /// [`take_to_host`](Self::take_to_host), possibly altered and possibly late.
    pub fn to_host(&mut self, now: u64, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let faults = self.config.to_host;
        let mut altered = Vec::with_capacity(bytes.len());
        if faults.is_none() {
            altered.extend_from_slice(bytes);
        } else {
            for &b in bytes {
                faults.apply(&mut self.to_host_rng, b, &mut altered);
            }
        }
        // Group into runs sharing one release tick; a line's lateness is decided at its start.
        let floor = self.held.back().map_or(0, |(t, _)| *t);
        for &b in &altered {
            if self.at_line_start {
                let late = self
                    .config
                    .late_replies
                    .filter(|late| self.late_rng.f64() < late.rate)
                    .map_or(0, |late| late.delay_ticks);
                self.line_release = now.saturating_add(late).max(floor).max(self.line_release);
            }
            self.at_line_start = b == b'\n';
            match self.held.back_mut() {
                Some((t, run)) if *t == self.line_release => run.push(b),
                _ => self.held.push_back((self.line_release, vec![b])),
            }
        }
    }

    /// Appends to `out` every held byte deliverable at tick `now`, in order.
    pub fn take_to_host(&mut self, now: u64, out: &mut Vec<u8>) {
        while let Some((t, _)) = self.held.front() {
            if *t > now {
                break;
            }
            if let Some((_, run)) = self.held.pop_front() {
                out.extend_from_slice(&run);
            }
        }
    }

    /// Forgets the bytes held back for the host (its connection went away with them).
    pub fn discard_held(&mut self) {
        self.held.clear();
        self.at_line_start = true;
    }

    /// The tick at which the next held (late) byte becomes deliverable, if any is held.
    pub fn next_release(&self) -> Option<u64> {
        self.held.front().map(|(t, _)| *t)
    }

    /// The earliest tick-triggered event not yet fired.
    pub fn next_event_tick(&self) -> Option<u64> {
        self.config
            .events
            .iter()
            .zip(&self.fired)
            .filter_map(|(event, fired)| match event.at {
                Trigger::AtTick(t) if !fired => Some(t),
                _ => None,
            })
            .min()
    }

    /// The smallest command count of a command-triggered event not yet fired.
    pub fn next_command_trigger(&self) -> Option<u64> {
        self.config
            .events
            .iter()
            .zip(&self.fired)
            .filter_map(|(event, fired)| match event.at {
                Trigger::AfterCommand(n) if !fired => Some(n),
                _ => None,
            })
            .min()
    }

    /// The next scheduled fault due at tick `now` after `commands` received commands, marked as
    /// fired. Call until `None`.
    pub fn poll_event(&mut self, now: u64, commands: u64) -> Option<FaultAction> {
        let index = self
            .config
            .events
            .iter()
            .zip(&self.fired)
            .position(|(event, fired)| {
                !fired
                    && match event.at {
                        Trigger::AtTick(t) => now >= t,
                        Trigger::AfterCommand(n) => commands >= n,
                    }
            })?;
        let fired = self.fired.get_mut(index)?;
        *fired = true;
        self.config.events.get(index).map(|event| event.action)
    }
}

impl FromStr for FaultSpec {
    type Err = FaultSpecError;

    fn from_str(spec: &str) -> Result<Self, FaultSpecError> {
        let spec = spec.trim();
        let (head, when) = match spec.split_once('@') {
            Some((head, when)) => (head, Some(when)),
            None => (spec, None),
        };
        let (name, value) = match head.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (head, None),
        };
        let bad = |problem: &str, example: &'static str| FaultSpecError::BadValue {
            fault: name.to_owned(),
            problem: problem.to_owned(),
            example,
        };
        let no_when = |example: &'static str| match when {
            Some(_) => Err(bad("takes no @time", example)),
            None => Ok(()),
        };
        let event = |action: FaultAction, example: &'static str| -> Result<Self, FaultSpecError> {
            let takes_value = matches!(
                action,
                FaultAction::LowPower { .. } | FaultAction::Unplug { .. }
            );
            if value.is_some() && !takes_value {
                return Err(bad("takes no =value", example));
            }
            let at = match when {
                Some(when) => parse_trigger(when).ok_or_else(|| {
                    bad(
                        "@ needs a command count (N), seconds (Xs) or milliseconds (Xms)",
                        example,
                    )
                })?,
                None if matches!(action, FaultAction::LowPower { .. }) => Trigger::AtTick(0),
                None => return Err(bad("needs @time or @command-count", example)),
            };
            Ok(Self::Event(ScheduledFault { at, action }))
        };
        let (kind_name, direction) = if let Some(kind) = name.strip_suffix("-to-board") {
            (kind, Direction::ToBoard)
        } else if let Some(kind) = name.strip_suffix("-to-host") {
            (kind, Direction::ToHost)
        } else {
            (name, Direction::Both)
        };
        let byte_kind = match kind_name {
            "drop" => Some(ByteFaultKind::Drop),
            "dup" => Some(ByteFaultKind::Duplicate),
            "garble" => Some(ByteFaultKind::Garble),
            _ => None,
        };
        if let Some(kind) = byte_kind {
            const EXAMPLE: &str = "drop-to-host=0.01";
            no_when(EXAMPLE)?;
            let rate = value
                .and_then(parse_rate)
                .ok_or_else(|| bad("needs =RATE, a probability from 0 to 1", EXAMPLE))?;
            return Ok(Self::Bytes {
                direction,
                kind,
                rate,
            });
        }
        match name {
            "late" => {
                const EXAMPLE: &str = "late=0.1:250";
                no_when(EXAMPLE)?;
                let (rate, ms) = value
                    .and_then(|v| v.split_once(':'))
                    .ok_or_else(|| bad("needs =RATE:MILLISECONDS", EXAMPLE))?;
                let rate = parse_rate(rate)
                    .ok_or_else(|| bad("RATE must be a probability from 0 to 1", EXAMPLE))?;
                let ms: u64 = ms
                    .parse()
                    .map_err(|_| bad("MILLISECONDS must be a whole number", EXAMPLE))?;
                Ok(Self::Late(LateReplies {
                    rate,
                    delay_ticks: ms.saturating_mul(TICKS_PER_MS),
                }))
            }
            "reset" => event(FaultAction::Reset, "reset@120"),
            "vanish" => event(FaultAction::Vanish, "vanish@2.5s"),
            "button" => event(FaultAction::PressButton, "button@1500ms"),
            "unplug" => {
                const EXAMPLE: &str = "unplug=500ms@10s";
                let replug_after_ticks = match value {
                    None => DEFAULT_REPLUG_TICKS,
                    Some(v) => parse_duration_ticks(v).ok_or_else(|| {
                        bad("the time until it is plugged back is Xs or Xms", EXAMPLE)
                    })?,
                };
                event(FaultAction::Unplug { replug_after_ticks }, EXAMPLE)
            }
            "low-power" => {
                const EXAMPLE: &str = "low-power=180@10s";
                let voltage = match value {
                    None => LOW_POWER_VOLTAGE,
                    Some(v) => v
                        .parse::<u16>()
                        .ok()
                        .filter(|v| *v <= 1023)
                        .ok_or_else(|| bad("the voltage is a raw ADC reading 0..1023", EXAMPLE))?,
                };
                event(FaultAction::LowPower { voltage }, EXAMPLE)
            }
            _ => Err(FaultSpecError::UnknownFault(name.to_owned())),
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AtTick(t) => write!(f, "at {:.3} s", *t as f64 / 25_000.0),
            Self::AfterCommand(n) => write!(f, "after command {n}"),
        }
    }
}

/// A probability: a finite number in 0..=1.
fn parse_rate(text: &str) -> Option<f64> {
    text.parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && (0.0..=1.0).contains(r))
}

/// `N` (command count), `Xs` or `Xms` (simulated time, X may have a fraction).
fn parse_trigger(text: &str) -> Option<Trigger> {
    if text.ends_with('s') {
        parse_duration_ticks(text).map(Trigger::AtTick)
    } else {
        text.parse::<u64>().ok().map(Trigger::AfterCommand)
    }
}

/// A duration written `Xs` or `Xms` (X a non-negative number, may have a fraction), in 25 kHz
/// ticks; `None` if malformed or absurdly long.
pub fn parse_duration_ticks(text: &str) -> Option<u64> {
    let seconds = if let Some(ms) = text.strip_suffix("ms") {
        ms.parse::<f64>().ok()? / 1000.0
    } else {
        text.strip_suffix('s')?.parse::<f64>().ok()?
    };
    let ticks = seconds * 25_000.0;
    (ticks.is_finite() && (0.0..1e18).contains(&ticks)).then_some(ticks as u64)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn noisy() -> FaultConfig {
        let mut config = FaultConfig::default();
        for spec in [
            "drop=0.05",
            "dup-to-board=0.05",
            "garble-to-host=0.1",
            "late=0.3:10",
        ] {
            config.apply(spec.parse().unwrap());
        }
        config.validate().unwrap();
        config
    }

    fn run(seed: u64, config: FaultConfig, chunk: usize) -> (Vec<u8>, Vec<u8>) {
        let input: Vec<u8> = b"SM,100,200,300\rQS\rV\r".repeat(50);
        let reply: Vec<u8> = b"OK\r\n12,34\n\rOK\r\n".repeat(50);
        let mut inj = FaultInjector::new(seed, config);
        let mut to_board = Vec::new();
        for part in input.chunks(chunk) {
            inj.to_board(part, &mut to_board);
        }
        let mut to_host = Vec::new();
        for (i, part) in reply.chunks(chunk).enumerate() {
            inj.to_host(i as u64, part);
            inj.take_to_host(i as u64, &mut to_host);
        }
        inj.take_to_host(u64::MAX, &mut to_host);
        (to_board, to_host)
    }

    #[test]
    fn same_seed_same_faults_whatever_the_chunking() {
        let a = run(7, noisy(), 64);
        let b = run(7, noisy(), 64);
        assert_eq!(a, b);
        // Chunking does not change byte faults (lateness is per line, so the delivered stream is
        // the same bytes in the same order too).
        let c = run(7, noisy(), 5);
        assert_eq!(a, c);
        let d = run(8, noisy(), 64);
        assert_ne!(a, d, "a different seed should give different faults");
    }

    #[test]
    fn rates_shape_the_streams() {
        let mut config = FaultConfig::default();
        config.apply("drop-to-board=1".parse().unwrap());
        config.apply("dup-to-host=1".parse().unwrap());
        let (to_board, to_host) = run(1, config, 16);
        assert!(to_board.is_empty());
        assert_eq!(to_host.len(), 2 * 50 * 15);
        let (to_board, to_host) = run(1, FaultConfig::default(), 16);
        assert_eq!(to_board, b"SM,100,200,300\rQS\rV\r".repeat(50));
        assert_eq!(to_host, b"OK\r\n12,34\n\rOK\r\n".repeat(50));
    }

    #[test]
    fn garbling_flips_exactly_one_bit() {
        let mut config = FaultConfig::default();
        config.apply("garble=1".parse().unwrap());
        let mut inj = FaultInjector::new(3, config);
        let mut out = Vec::new();
        inj.to_board(b"QG\r", &mut out);
        assert_eq!(out.len(), 3);
        for (a, b) in out.iter().zip(b"QG\r") {
            assert_eq!((a ^ b).count_ones(), 1);
        }
    }

    #[test]
    fn late_lines_keep_their_order() {
        let mut config = FaultConfig::default();
        config.apply("late=1:2".parse().unwrap());
        let mut inj = FaultInjector::new(0, config);
        inj.to_host(100, b"OK\r\n");
        let mut out = Vec::new();
        inj.take_to_host(149, &mut out);
        assert!(out.is_empty());
        assert_eq!(inj.next_release(), Some(150));
        inj.take_to_host(150, &mut out);
        assert_eq!(out, b"OK\r\n");
        assert_eq!(inj.next_release(), None);
    }

    #[test]
    fn scheduled_events_fire_once_in_order() {
        let mut config = FaultConfig::default();
        config.apply("button@2ms".parse().unwrap());
        config.apply("vanish@3".parse().unwrap());
        config.apply("low-power".parse().unwrap());
        let mut inj = FaultInjector::new(0, config);
        assert_eq!(inj.next_event_tick(), Some(0));
        assert_eq!(inj.next_command_trigger(), Some(3));
        assert_eq!(
            inj.poll_event(0, 0),
            Some(FaultAction::LowPower {
                voltage: LOW_POWER_VOLTAGE
            })
        );
        assert_eq!(inj.poll_event(0, 2), None);
        assert_eq!(inj.next_event_tick(), Some(50));
        assert_eq!(inj.poll_event(50, 2), Some(FaultAction::PressButton));
        assert_eq!(inj.poll_event(51, 3), Some(FaultAction::Vanish));
        assert_eq!(inj.poll_event(52, 4), None);
        assert_eq!(inj.next_event_tick(), None);
    }

    #[test]
    fn specs_parse() {
        assert_eq!(
            "drop-to-host=0.25".parse::<FaultSpec>(),
            Ok(FaultSpec::Bytes {
                direction: Direction::ToHost,
                kind: ByteFaultKind::Drop,
                rate: 0.25
            })
        );
        assert_eq!(
            "late=0.5:40".parse::<FaultSpec>(),
            Ok(FaultSpec::Late(LateReplies {
                rate: 0.5,
                delay_ticks: 1000
            }))
        );
        assert_eq!(
            "reset@1.5s".parse::<FaultSpec>(),
            Ok(FaultSpec::Event(ScheduledFault {
                at: Trigger::AtTick(37_500),
                action: FaultAction::Reset
            }))
        );
        assert_eq!(
            "unplug@2".parse::<FaultSpec>(),
            Ok(FaultSpec::Event(ScheduledFault {
                at: Trigger::AfterCommand(2),
                action: FaultAction::Unplug {
                    replug_after_ticks: DEFAULT_REPLUG_TICKS
                }
            }))
        );
        assert_eq!(
            "unplug=250ms@1s".parse::<FaultSpec>(),
            Ok(FaultSpec::Event(ScheduledFault {
                at: Trigger::AtTick(25_000),
                action: FaultAction::Unplug {
                    replug_after_ticks: 6_250
                }
            }))
        );
        assert_eq!(
            "low-power=180@120".parse::<FaultSpec>(),
            Ok(FaultSpec::Event(ScheduledFault {
                at: Trigger::AfterCommand(120),
                action: FaultAction::LowPower { voltage: 180 }
            }))
        );
    }

    #[test]
    fn bad_specs_name_the_problem() {
        for bad in [
            "",
            "drop",
            "drop=2",
            "drop=-0.1",
            "drop=NaN",
            "drop=0.1@3",
            "late=0.1",
            "late=x:1",
            "late=0.1:-1",
            "reset",
            "reset@",
            "reset@soon",
            "reset=1@3",
            "vanish@-1s",
            "low-power=5000",
            "teleport@3",
            "button@1e300s",
            "unplug",
            "unplug=3@1s",
            "unplug=-1s@1s",
        ] {
            let err = bad.parse::<FaultSpec>().unwrap_err();
            assert!(!err.to_string().is_empty(), "{bad}");
        }
        let mut config = FaultConfig::default();
        config.apply("drop=0.6".parse().unwrap());
        config.apply("dup=0.6".parse().unwrap());
        assert!(config.validate().is_err());
    }

    proptest! {
        #[test]
        fn spec_parsing_never_panics(text in ".{0,40}") {
            let _ = text.parse::<FaultSpec>();
        }

        #[test]
        fn spec_like_text_never_panics(
            name in "(drop|dup|garble|late|reset|vanish|unplug|button|low-power)(-to-board|-to-host)?",
            value in "(=[0-9.:e-]{0,12})?",
            when in "(@[0-9.e]{0,12}(s|ms)?)?",
        ) {
            let _ = format!("{name}{value}{when}").parse::<FaultSpec>();
        }
    }
}
