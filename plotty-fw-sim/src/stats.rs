//! Run statistics of a simulated board: what it executed and how busy it was kept.
//!
//! [`Stats`] is an [`Observer`]. It counts queued commands by kind, steps per motor (and steps a
//! disabled motor was told to take, a host bug), pen lifts and lowerings, measures the highest
//! step rate each motor reached, and the idle gaps: the time the motion FIFO sat empty between
//! one command finishing and the next starting, once the first command ran. Gaps mean the host
//! did not keep the FIFO fed (in a real plot, pauses where the pen stands still). In the
//! as-fast-as-possible clock mode simulated time stands still while the board is idle, so gaps
//! there are only the firmware's own 1–2 tick start latency; measure host latency in real time.
//!
//! Step rates are averaged over [`RATE_WINDOW_STEPS`] consecutive steps, so that a steady
//! 10 kHz (steps alternately 2 and 3 ticks apart) reads as 10 kHz, not as the 12.5 kHz of its
//! shortest interval.
//!
//! Distances (pen down and pen up) are the executed moves' straight-line lengths: each command
//! from the FIFO adds the distance between the carriage position where it started and where it
//! ended, in millimetres (AxiDraw geometry, as in [`trace`](crate::trace)). Summing the steps'
//! path instead would count the staircase a slanted line is made of, up to half a percent too
//! long; the step-by-step path stays in the trace.

use std::collections::HashMap;
use std::fmt;

use crate::counters::CounterTracker;
use crate::observer::{CommandKind, Observer};
use crate::trace::STEPS_PER_MM_16X;

/// Consecutive steps a step-rate measurement averages over (a power of two).
pub const RATE_WINDOW_STEPS: usize = 32;

/// Ticks per second of the firmware's interrupt.
const TICKS_PER_SECOND: f64 = 25_000.0;

/// Statistics gathered while a board runs.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    commands: HashMap<CommandKind, u64>,
    steps: [u64; 2],
    steps_while_disabled: [u64; 2],
    enabled: [bool; 2],
    counters: CounterTracker,
    rates: [RateMeter; 2],
    pen_lifts: u64,
    pen_lowerings: u64,
    pen_up: Option<bool>,
    first_command_tick: Option<u64>,
    last_command_tick: u64,
    last_idle_tick: Option<u64>,
    idle_since: Option<u64>,
    idle_gaps: u64,
    idle_ticks: u64,
    longest_idle_ticks: u64,
    last_tick: u64,
    /// Carriage position in 16× steps per motor (steps of a disabled motor move nothing).
    position: [i64; 2],
    /// One step moves `1 << units_shift` 16× steps (0 at 16×, 4 at full steps), so that the
    /// derived `Default` is the 16× mode.
    units_shift: u32,
    /// Where the move in progress started (the last command boundary).
    move_start: [i64; 2],
    /// Executed moves' straight-line lengths with the pen down and up, in millimetres.
    pen_down_mm: f64,
    pen_up_mm: f64,
}

/// A summary of [`Stats`] at one moment, printable for people.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsReport {
    /// Simulated time since power-on, in seconds.
    pub simulated_s: f64,
    /// From the first queued command's start to the board's last idle moment, in seconds.
    pub busy_span_s: f64,
    /// Commands executed from the FIFO, by kind, sorted by name.
    pub commands: Vec<(CommandKind, u64)>,
    /// Steps taken per motor (both directions).
    pub steps: [u64; 2],
    /// Steps taken while that motor's driver was disabled (they moved nothing).
    pub steps_while_disabled: [u64; 2],
    /// Highest step rate per motor in steps per second.
    pub max_step_rate: [f64; 2],
    /// Pen lifts (down → up) and lowerings (up → down) executed.
    pub pen_lifts: u64,
    /// Pen lowerings executed.
    pub pen_lowerings: u64,
    /// Number of times the FIFO ran empty between commands.
    pub idle_gaps: u64,
    /// Total time of those gaps, in seconds.
    pub idle_s: f64,
    /// Longest gap, in seconds.
    pub longest_idle_s: f64,
    /// Pen-down distance in millimetres: the sum of the executed moves' straight-line lengths
    /// (what the host commanded, not the step-by-step path).
    pub pen_down_mm: f64,
    /// Pen-up travel in millimetres, measured the same way.
    pub pen_up_mm: f64,
}

/// The highest rate over a sliding window of step ticks.
#[derive(Debug, Clone, Copy)]
struct RateMeter {
    ticks: [u64; RATE_WINDOW_STEPS],
    next: usize,
    filled: usize,
    /// Shortest span of a full window seen (`u64::MAX`: no full window yet).
    min_full_span: u64,
    /// Best rate of a partial window (while fewer steps than a window were taken).
    best_partial: f64,
}

impl Stats {
    /// Empty statistics (motors assumed enabled, as the firmware enables them on the first move).
    pub fn new() -> Self {
        Self {
            enabled: [true, true],
            ..Self::default()
        }
    }

    /// The summary at simulated time `now_ticks` (from `Firmware::now_ticks`).
    pub fn report(&self, now_ticks: u64) -> StatsReport {
        let open = self.open_move_mm();
        let mut commands: Vec<_> = self.commands.iter().map(|(k, n)| (*k, *n)).collect();
        commands.sort_by_key(|(k, _)| format!("{k:?}"));
        let busy_span = match (self.first_command_tick, self.last_idle_tick) {
            // Idle since its last command: the span ends there.
            (Some(first), Some(idle)) if idle >= self.last_command_tick => idle - first,
            // Still busy.
            (Some(first), _) => now_ticks.max(self.last_tick).saturating_sub(first),
            (None, _) => 0,
        };
        StatsReport {
            simulated_s: now_ticks.max(self.last_tick) as f64 / TICKS_PER_SECOND,
            busy_span_s: busy_span as f64 / TICKS_PER_SECOND,
            commands,
            steps: self.steps,
            steps_while_disabled: self.steps_while_disabled,
            max_step_rate: [self.rates[0].max_rate(), self.rates[1].max_rate()],
            pen_lifts: self.pen_lifts,
            pen_lowerings: self.pen_lowerings,
            idle_gaps: self.idle_gaps,
            idle_s: self.idle_ticks as f64 / TICKS_PER_SECOND,
            longest_idle_s: self.longest_idle_ticks as f64 / TICKS_PER_SECOND,
            // The move in progress counts as far as it went.
            pen_down_mm: self.pen_down_mm + if self.pen_is_down() { open } else { 0.0 },
            pen_up_mm: self.pen_up_mm + if self.pen_is_down() { 0.0 } else { open },
        }
    }

    /// Whether the executed pen state is down (a board boots with its pen up).
    fn pen_is_down(&self) -> bool {
        self.pen_up == Some(false)
    }

    /// Straight-line length of the move in progress, in millimetres.
    fn open_move_mm(&self) -> f64 {
        let [m1, m2] = [0, 1].map(|i| (self.position[i] - self.move_start[i]) as f64);
        // x = (m1 + m2) / 2k, y = (m1 − m2) / 2k (see `trace`).
        (m1 + m2).hypot(m1 - m2) / (2.0 * STEPS_PER_MM_16X)
    }

    /// Ends the move in progress at a command boundary, adding its length to the pen state's
    /// total.
    fn end_move(&mut self) {
        let length = self.open_move_mm();
        if self.pen_is_down() {
            self.pen_down_mm += length;
        } else {
            self.pen_up_mm += length;
        }
        self.move_start = self.position;
    }

    /// One step event with per-axis directions (−1, 0, +1), at `tick`.
    #[inline]
    pub(crate) fn step(&mut self, tick: u64, direction: [i8; 2]) {
        self.last_tick = tick;
        for (axis, &d) in direction.iter().enumerate() {
            if d != 0 {
                self.steps[axis] += 1;
                if !self.enabled[axis] {
                    self.steps_while_disabled[axis] += 1;
                }
                self.rates[axis].step(tick);
                if self.enabled[axis] {
                    self.position[axis] += i64::from(d.signum()) << self.units_shift;
                }
            }
        }
    }
}

impl RateMeter {
    #[inline]
    fn step(&mut self, tick: u64) {
        // `next` wraps with a mask: the window length is a power of two.
        let slot = self.next;
        self.next = (slot + 1) & (RATE_WINDOW_STEPS - 1);
        self.ticks[slot] = tick;
        if self.filled < RATE_WINDOW_STEPS {
            self.filled += 1;
            if self.filled >= 2 {
                let span = tick.saturating_sub(self.ticks[0]).max(1);
                let rate = (self.filled - 1) as f64 * TICKS_PER_SECOND / span as f64;
                self.best_partial = self.best_partial.max(rate);
            }
            if self.filled < RATE_WINDOW_STEPS {
                return;
            }
        }
        // Full window: the oldest step in it is the slot after the one just written.
        let span = tick.saturating_sub(self.ticks[self.next]).max(1);
        self.min_full_span = self.min_full_span.min(span);
    }

    fn max_rate(&self) -> f64 {
        if self.min_full_span == u64::MAX {
            self.best_partial
        } else {
            (RATE_WINDOW_STEPS - 1) as f64 * TICKS_PER_SECOND / self.min_full_span as f64
        }
    }
}

impl Default for RateMeter {
    fn default() -> Self {
        Self {
            ticks: [0; RATE_WINDOW_STEPS],
            next: 0,
            filled: 0,
            min_full_span: u64::MAX,
            best_partial: 0.0,
        }
    }
}

impl Observer for Stats {
    fn on_step(&mut self, tick: u64, position: [i32; 2]) {
        let direction = self.counters.direction(position);
        self.step(tick, direction);
    }

    fn on_pen(&mut self, tick: u64, up: bool) {
        self.last_tick = tick;
        self.end_move();
        match (self.pen_up, up) {
            (Some(false), true) => self.pen_lifts += 1,
            (Some(true), false) | (None, false) => self.pen_lowerings += 1,
            _ => {}
        }
        self.pen_up = Some(up);
    }

    fn on_command_start(&mut self, tick: u64, kind: CommandKind) {
        self.last_tick = tick;
        self.end_move();
        *self.commands.entry(kind).or_insert(0) += 1;
        self.last_command_tick = tick;
        if self.first_command_tick.is_none() {
            self.first_command_tick = Some(tick);
        }
        if let Some(since) = self.idle_since.take() {
            let gap = tick.saturating_sub(since);
            self.idle_gaps += 1;
            self.idle_ticks += gap;
            self.longest_idle_ticks = self.longest_idle_ticks.max(gap);
        }
    }

    fn on_idle(&mut self, tick: u64) {
        self.last_tick = tick;
        self.end_move();
        self.last_idle_tick = Some(tick);
        if self.first_command_tick.is_some() {
            self.idle_since = Some(tick);
        }
    }

    fn on_motors(&mut self, tick: u64, enabled: [bool; 2], microsteps: u8) {
        self.last_tick = tick;
        self.enabled = enabled;
        self.units_shift = (16 / u32::from(microsteps.clamp(1, 16))).trailing_zeros();
    }
}

impl fmt::Display for StatsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "simulated time     {:.3} s", self.simulated_s)?;
        writeln!(f, "busy span          {:.3} s", self.busy_span_s)?;
        let commands: Vec<String> = self
            .commands
            .iter()
            .map(|(kind, n)| format!("{kind:?} {n}"))
            .collect();
        let total: u64 = self.commands.iter().map(|(_, n)| n).sum();
        writeln!(f, "queued commands    {total} ({})", commands.join(", "))?;
        writeln!(
            f,
            "steps              motor 1 {}, motor 2 {}",
            self.steps[0], self.steps[1]
        )?;
        if self.steps_while_disabled != [0, 0] {
            writeln!(
                f,
                "steps while off    motor 1 {}, motor 2 {} (driver disabled: no motion)",
                self.steps_while_disabled[0], self.steps_while_disabled[1]
            )?;
        }
        writeln!(
            f,
            "max step rate      motor 1 {:.0}/s, motor 2 {:.0}/s",
            self.max_step_rate[0], self.max_step_rate[1]
        )?;
        writeln!(
            f,
            "pen                {} lifts, {} lowerings",
            self.pen_lifts, self.pen_lowerings
        )?;
        write!(
            f,
            "idle gaps          {} totalling {:.3} s (longest {:.3} s)",
            self.idle_gaps, self.idle_s, self.longest_idle_s
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_commands_steps_and_pen() {
        let mut s = Stats::new();
        s.on_command_start(0, CommandKind::Servo);
        s.on_pen(5, false);
        s.on_command_start(10, CommandKind::Sm);
        for t in 0..100u64 {
            s.on_step(11 + t, [t as i32 + 1, -(t as i32) - 1]);
        }
        s.on_idle(111);
        s.on_command_start(161, CommandKind::Servo);
        s.on_pen(162, true);
        s.on_idle(200);
        let r = s.report(1000);
        assert_eq!(r.steps, [100, 100]);
        assert_eq!(r.pen_lifts, 1);
        assert_eq!(r.pen_lowerings, 1);
        assert_eq!(
            r.commands,
            vec![(CommandKind::Servo, 2), (CommandKind::Sm, 1)]
        );
        assert_eq!(r.idle_gaps, 1);
        assert!((r.idle_s - 50.0 / 25_000.0).abs() < 1e-12);
        assert!((r.busy_span_s - 200.0 / 25_000.0).abs() < 1e-12);
        assert!((r.simulated_s - 0.04).abs() < 1e-12);
        assert!((r.max_step_rate[0] - 25_000.0).abs() < 1e-9);
        let text = r.to_string();
        assert!(
            text.contains("queued commands    3 (Servo 2, Sm 1)"),
            "{text}"
        );
    }

    #[test]
    fn step_rate_is_averaged_over_the_window() {
        let mut s = Stats::new();
        // 10 kHz on motor 1: steps 2 and 3 ticks apart alternately; motor 2 every 25 ticks.
        let mut tick = 0u64;
        let mut pos = [0i32, 0i32];
        for k in 0..1000 {
            tick += if k % 2 == 0 { 2 } else { 3 };
            pos[0] += 1;
            let moved2 = k % 10 == 0;
            if moved2 {
                pos[1] += 1;
            }
            s.on_step(tick, pos);
        }
        let r = s.report(tick);
        assert!(
            (r.max_step_rate[0] - 10_000.0).abs() / 10_000.0 < 0.02,
            "{:?}",
            r.max_step_rate
        );
        assert!(
            (r.max_step_rate[1] - 1_000.0).abs() / 1_000.0 < 0.02,
            "{:?}",
            r.max_step_rate
        );
    }

    #[test]
    fn short_moves_still_report_a_rate_and_disabled_steps_are_flagged() {
        let mut s = Stats::new();
        s.on_motors(0, [false, true], 16);
        s.on_step(10, [1, 0]);
        s.on_step(20, [2, 0]);
        let r = s.report(20);
        assert_eq!(r.steps_while_disabled, [2, 0]);
        assert!((r.max_step_rate[0] - 2_500.0).abs() < 1e-9);
        assert!(r.to_string().contains("steps while off"));
    }

    #[test]
    fn distances_follow_the_pen_the_microstep_mode_and_the_enables() {
        let mut s = Stats::new();
        let mut position = [0i32, 0i32];
        let mut steps = |s: &mut Stats, n: i32, d: [i32; 2]| {
            for _ in 0..n {
                position = [position[0] + d[0], position[1] + d[1]];
                s.on_step(0, position);
            }
        };
        // Pen up: 10 mm along x at 16x (800 steps on both motors).
        s.on_command_start(0, CommandKind::Sm);
        steps(&mut s, 800, [1, 1]);
        s.on_command_start(1, CommandKind::Servo);
        s.on_pen(2, false);
        // Pen down at 8x: 400 steps are 10 mm along y.
        s.on_motors(3, [true, true], 8);
        s.on_command_start(4, CommandKind::Sm);
        steps(&mut s, 400, [1, -1]);
        // Motor 2 disabled: its steps move nothing, so the carriage goes 2.5 mm right and 2.5 mm
        // down (3.54 mm), not 5 mm right.
        s.on_motors(5, [true, false], 8);
        s.on_command_start(6, CommandKind::Sm);
        steps(&mut s, 200, [1, 1]);
        let r = s.report(7);
        assert!((r.pen_up_mm - 10.0).abs() < 1e-9, "{r:?}");
        let diagonal = 2.5 * std::f64::consts::SQRT_2;
        assert!((r.pen_down_mm - 10.0 - diagonal).abs() < 1e-9, "{r:?}");
        s.on_idle(8);
        let idle = s.report(8);
        assert_eq!(
            (idle.pen_down_mm, idle.pen_up_mm),
            (r.pen_down_mm, r.pen_up_mm),
            "the move in progress already counted"
        );
    }

    #[test]
    fn idle_before_the_first_command_is_not_a_gap() {
        let mut s = Stats::new();
        s.on_idle(0);
        s.on_command_start(1000, CommandKind::Sm);
        s.on_idle(2000);
        let r = s.report(10_000);
        assert_eq!(r.idle_gaps, 0);
        assert!((r.busy_span_s - 0.04).abs() < 1e-12);
    }
}
