//! [`SimObserver`]: the pen trace and the run statistics recorded together, the observer a
//! [`Board`](crate::board::Board) carries by default and the pty server reports from.

use crate::counters::CounterTracker;
use crate::observer::{CommandKind, Observer};
use crate::stats::Stats;
use crate::trace::{TraceConfig, TraceRecorder};

/// Records the pen trace and the statistics of a run.
#[derive(Debug, Clone)]
pub struct SimObserver {
    /// The pen trace.
    pub trace: TraceRecorder,
    /// The statistics.
    pub stats: Stats,
    counters: CounterTracker,
}

impl SimObserver {
    /// Both recorders, the trace with `config`.
    pub fn new(config: TraceConfig) -> Self {
        Self {
            trace: TraceRecorder::new(config),
            stats: Stats::new(),
            counters: CounterTracker::default(),
        }
    }
}

impl Default for SimObserver {
    fn default() -> Self {
        Self::new(TraceConfig::default())
    }
}

impl Observer for SimObserver {
    fn on_step(&mut self, tick: u64, position: [i32; 2]) {
        // One direction decoding for both recorders.
        let direction = self.counters.direction(position);
        self.trace.step(direction);
        self.stats.step(tick, direction);
    }

    fn on_pen(&mut self, tick: u64, up: bool) {
        self.trace.on_pen(tick, up);
        self.stats.on_pen(tick, up);
    }

    fn on_command_start(&mut self, tick: u64, kind: CommandKind) {
        self.trace.on_command_start(tick, kind);
        self.stats.on_command_start(tick, kind);
    }

    fn on_idle(&mut self, tick: u64) {
        self.trace.on_idle(tick);
        self.stats.on_idle(tick);
    }

    fn on_motors(&mut self, tick: u64, enabled: [bool; 2], microsteps: u8) {
        self.trace.on_motors(tick, enabled, microsteps);
        self.stats.on_motors(tick, enabled, microsteps);
    }
}
