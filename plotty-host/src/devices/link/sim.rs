//! The built-in simulator as a [`Link`]: a simulated EiBotBoard ([`Board`]: the tick-exact
//! firmware model behind its USB link) run in lockstep with the protocol session, in simulated
//! time.
//!
//! Time passes only in [`SimLink::wait`], which advances the board to the session's next
//! deadline or the board's next event, whichever comes first: deterministic, and as fast as the
//! machine running it (a plot of an hour takes seconds), or paced to the wall clock with
//! [`SimLink::realtime`] for demonstrations. Bytes take [`LATENCY`] each way (a USB frame) and go
//! to the board in packets of at most 64 bytes; a board that takes nothing (its parser blocked)
//! pushes back on the writer.
//!
//! The board's observer records the pen trace and statistics (`SimObserver`), and the ticks of
//! every pen drop, so the trace can be rendered in the layers' colours; [`SimLink::finish`]
//! hands them over.

use std::collections::VecDeque;

use plotty_fw_sim::fault::FaultInjector;
use plotty_fw_sim::stats::StatsReport;
use plotty_fw_sim::trace::{Trace, TraceConfig};
use plotty_fw_sim::{Board, CommandKind, FirmwareVersion, Observer, SimObserver};
use plotty_motion::time::{Duration, Instant};

use super::{DeviceError, Link};

/// One-way delay of bytes between host and board: one USB frame (1 ms, 25 ticks).
pub const LATENCY: u64 = 25;
/// Host bytes in flight to the board at most (one USB packet).
const IN_FLIGHT_BYTES: usize = 64;
/// Microseconds per firmware tick.
const TICK_US: u64 = 40;
/// How far the wall clock may run ahead of a paced simulation before the pace restarts (the
/// link was idle), rather than the simulation racing to catch up.
const PACE_SLACK: std::time::Duration = std::time::Duration::from_millis(250);

/// The simulator link. See the [module documentation](self).
pub struct SimLink {
    board: Board<Recorder>,
    name: String,
    /// Host bytes on their way to the board, with their arrival tick.
    to_board: VecDeque<(u64, Vec<u8>)>,
    /// Board bytes on their way to the host, with their arrival tick.
    to_host: VecDeque<(u64, Vec<u8>)>,
    scratch: Vec<u8>,
    /// Wall clock pacing: the wall instant and tick it started at.
    pace: Option<(std::time::Instant, u64)>,
    /// Ticks at which layers were reached (from [`Link::layer_reached`]).
    layers: Vec<(u64, usize)>,
}

/// What a simulated plot left behind.
#[derive(Clone, Debug)]
pub struct SimRecord {
    /// The pen trace (strokes and travel, in mm).
    pub trace: Trace,
    /// Statistics of the run.
    pub stats: StatsReport,
    /// Tick of each pen drop, in order (one per trace stroke).
    pub pen_drops: Vec<u64>,
    /// Ticks at which each layer was reached, in order.
    pub layers: Vec<(u64, usize)>,
}

/// The board's observer: the simulator's trace and statistics, and pen drop ticks.
#[derive(Debug, Clone)]
struct Recorder {
    sim: SimObserver,
    pen_drops: Vec<u64>,
    /// Tick of each pen raise's start, and of the last motor step before it.
    pen_raises: Vec<(u64, u64)>,
    /// Tick of the last motor step.
    last_step: u64,
    pen_up: bool,
}

impl SimLink {
    /// A freshly powered board running `version`, recording the trace with every point within
    /// one step of the path.
    pub fn new(version: FirmwareVersion) -> Self {
        let recorder = Recorder {
            sim: SimObserver::new(TraceConfig::default()),
            pen_drops: Vec::new(),
            pen_raises: Vec::new(),
            last_step: 0,
            pen_up: true,
        };
        Self {
            board: Board::with_observer(version, recorder),
            name: format!("the simulator (EBB firmware {version})"),
            to_board: VecDeque::new(),
            to_host: VecDeque::new(),
            scratch: Vec::new(),
            pace: None,
            layers: Vec::new(),
        }
    }

    /// The same link paced to the wall clock (a simulated second takes a second).
    pub fn realtime(mut self) -> Self {
        self.pace = Some((std::time::Instant::now(), self.board.now_ticks()));
        self
    }

    /// Injects faults (see `plotty_fw_sim::fault`) from now on.
    pub fn with_faults(mut self, faults: FaultInjector) -> Self {
        self.board.set_faults(faults);
        self
    }

    /// The simulated firmware (its state, for tests).
    pub fn firmware(&self) -> &plotty_fw_sim::Firmware {
        self.board.firmware()
    }

    /// Simulated time since the board's power-on.
    pub fn elapsed(&self) -> Duration {
        Duration::from_ticks(self.board.now_ticks())
    }

    /// Simulated time of the board's last motor step (when the motors last moved).
    pub fn last_step(&self) -> Duration {
        Duration::from_ticks(self.board.observer().last_step)
    }

    /// Simulated times at which pen raises started (the servo needs its raise time after that),
    /// each with the time of the last motor step before it.
    pub fn pen_raises(&self) -> Vec<(Duration, Duration)> {
        self.board
            .observer()
            .pen_raises
            .iter()
            .map(|&(t, s)| (Duration::from_ticks(t), Duration::from_ticks(s)))
            .collect()
    }

    /// Injects a fault now (tests: the supply sags or comes back, the board resets).
    pub fn inject(&mut self, action: plotty_fw_sim::fault::FaultAction) {
        self.board.inject(action);
    }

    /// The pen trace so far (strokes and travel, in mm from where the board was powered on).
    pub fn trace(&self) -> Trace {
        self.board.observer().sim.trace.trace()
    }

    /// Lets `duration` of simulated time pass with no host on the link (the host crashed): the
    /// board runs whatever its FIFO holds; bytes already on the wire still arrive.
    pub fn run_unattended(&mut self, duration: Duration) {
        let ticks = duration.as_micros() / TICK_US;
        let _ = self.exchange();
        self.board.advance(ticks);
        let _ = self.exchange();
        // Nobody read the replies: a restarted host finds them stale, as on a real port.
    }

    /// Ends the simulation: the trace, statistics, pen drops and layer ticks.
    pub fn finish(self) -> SimRecord {
        let now = self.board.now_ticks();
        let recorder = self.board.into_observer();
        SimRecord {
            stats: recorder.sim.stats.report(now),
            trace: recorder.sim.trace.finish(),
            pen_drops: recorder.pen_drops,
            layers: self.layers,
        }
    }

    /// Moves due bytes into the board and the board's replies into the host queue.
    fn exchange(&mut self) -> Result<(), DeviceError> {
        let now = self.board.now_ticks();
        while let Some((at, bytes)) = self.to_board.front_mut() {
            if *at > now {
                break;
            }
            let n = self.board.write(bytes).map_err(vanished)?;
            bytes.drain(..n.min(bytes.len()));
            if !bytes.is_empty() {
                // The board takes no more now (its parser waits for a FIFO slot).
                break;
            }
            self.to_board.pop_front();
        }
        self.scratch.clear();
        self.board.read(&mut self.scratch).map_err(vanished)?;
        if !self.scratch.is_empty() {
            self.to_host
                .push_back((now + LATENCY, std::mem::take(&mut self.scratch)));
        }
        Ok(())
    }

    fn in_flight(&self) -> usize {
        self.to_board.iter().map(|(_, b)| b.len()).sum()
    }

    /// Sleeps until the wall clock has caught up with simulated time (realtime mode). Time the
    /// link sat unused (between plots, while nobody waited on it) is not caught up on: a board
    /// does not run ahead while idle, so the pace restarts from now when the wall clock is more
    /// than [`PACE_SLACK`] ahead.
    fn pace_to(&mut self, tick: u64) {
        let Some((wall, start)) = self.pace else {
            return;
        };
        let now = self.board.now_ticks();
        let simulated = std::time::Duration::from_micros(now.saturating_sub(start) * TICK_US);
        let (wall, start) = if wall.elapsed() > simulated + PACE_SLACK {
            let anchor = (std::time::Instant::now(), now);
            self.pace = Some(anchor);
            anchor
        } else {
            (wall, start)
        };
        let due = std::time::Duration::from_micros(tick.saturating_sub(start) * TICK_US);
        let elapsed = wall.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
    }
}

impl Link for SimLink {
    fn name(&self) -> &str {
        &self.name
    }

    fn now(&mut self) -> Instant {
        Instant::from_micros(self.board.now_ticks() * TICK_US)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<usize, DeviceError> {
        if self.board.has_vanished() {
            return Err(vanished(plotty_fw_sim::board::BoardError::Vanished));
        }
        let n = bytes
            .len()
            .min(IN_FLIGHT_BYTES.saturating_sub(self.in_flight()));
        if n > 0 {
            let at = self.board.now_ticks() + LATENCY;
            self.to_board
                .push_back((at, bytes.get(..n).unwrap_or_default().to_vec()));
        }
        Ok(n)
    }

    fn read(&mut self, out: &mut Vec<u8>) -> Result<(), DeviceError> {
        self.exchange()?;
        let now = self.board.now_ticks();
        while self.to_host.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, bytes)) = self.to_host.pop_front() {
                out.extend_from_slice(&bytes);
            }
        }
        Ok(())
    }

    fn wait(&mut self, deadline: Option<Instant>) -> Result<(), DeviceError> {
        self.exchange()?;
        let now = self.board.now_ticks();
        let mut next: Option<u64> = deadline.map(|d| d.as_micros().div_ceil(TICK_US));
        let mut consider = |t: u64| next = Some(next.map_or(t, |n| n.min(t)));
        if let Some(&(at, _)) = self.to_board.front() {
            consider(at);
        }
        if let Some(&(at, _)) = self.to_host.front() {
            consider(at);
        }
        if let Some(dt) = self.board.next_event_in() {
            consider(now + dt);
        }
        // Nothing pending at all: let a millisecond pass rather than spin.
        let target = next.unwrap_or(now + 25);
        if target <= now {
            return Ok(());
        }
        self.pace_to(target);
        self.board.advance(target - now);
        if self.board.has_vanished() {
            return Err(vanished(plotty_fw_sim::board::BoardError::Vanished));
        }
        self.exchange()
    }

    fn is_simulated(&self) -> bool {
        true
    }

    fn pen_servo(&self) -> Option<u16> {
        Some(self.board.firmware().status().pen_servo_position)
    }

    fn layer_reached(&mut self, index: usize) {
        self.layers.push((self.board.now_ticks(), index));
    }
}

fn vanished(e: plotty_fw_sim::board::BoardError) -> DeviceError {
    DeviceError::Vanished {
        port: "the simulator".into(),
        detail: e.to_string(),
    }
}

impl Observer for Recorder {
    fn on_step(&mut self, tick: u64, position: [i32; 2]) {
        self.last_step = tick;
        self.sim.on_step(tick, position);
    }

    fn on_pen(&mut self, tick: u64, up: bool) {
        if self.pen_up && !up {
            self.pen_drops.push(tick);
        }
        if !self.pen_up && up {
            self.pen_raises.push((tick, self.last_step));
        }
        self.pen_up = up;
        self.sim.on_pen(tick, up);
    }

    fn on_command_start(&mut self, tick: u64, kind: CommandKind) {
        self.sim.on_command_start(tick, kind);
    }

    fn on_idle(&mut self, tick: u64) {
        self.sim.on_idle(tick);
    }

    fn on_motors(&mut self, tick: u64, enabled: [bool; 2], microsteps: u8) {
        self.sim.on_motors(tick, enabled, microsteps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paced_link_does_not_catch_up_on_time_it_sat_idle() {
        let mut link = SimLink::new(FirmwareVersion::V3_0_3).realtime();
        // Unused for a while (between two plots): the board must not race through the next
        // stretch of simulated time to catch up with the wall clock.
        std::thread::sleep(std::time::Duration::from_millis(400));
        let started = std::time::Instant::now();
        let target = link.now() + Duration::from_millis(100);
        while link.now() < target {
            link.wait(Some(target)).unwrap();
        }
        // A lower bound only: a busy machine can only make it slower.
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(90),
            "100 ms of simulated time passed in {:?} of wall time",
            started.elapsed()
        );
    }
}
