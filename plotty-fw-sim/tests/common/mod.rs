//! Test bench shared by the integration tests: a board, a recording observer, and helpers that
//! behave like a patient host (send bytes, run ticks while the parser is blocked, read replies).
#![allow(dead_code, unreachable_pub, clippy::expect_used)]

use plotty_fw_sim::{CommandKind, Firmware, FirmwareVersion, Observer};

/// Everything the observer saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recorder {
    pub steps: Vec<(u64, [i32; 2])>,
    pub pens: Vec<(u64, bool)>,
    pub starts: Vec<(u64, CommandKind)>,
    pub idles: Vec<u64>,
    pub motors: Vec<(u64, [bool; 2], u8)>,
}

impl Observer for Recorder {
    fn on_step(&mut self, tick: u64, position: [i32; 2]) {
        self.steps.push((tick, position));
    }
    fn on_pen(&mut self, tick: u64, up: bool) {
        self.pens.push((tick, up));
    }
    fn on_command_start(&mut self, tick: u64, kind: CommandKind) {
        self.starts.push((tick, kind));
    }
    fn on_idle(&mut self, tick: u64) {
        self.idles.push(tick);
    }
    fn on_motors(&mut self, tick: u64, enabled: [bool; 2], microsteps: u8) {
        self.motors.push((tick, enabled, microsteps));
    }
}

/// A board plus its recorder.
pub struct Bench {
    pub fw: Firmware,
    pub rec: Recorder,
}

impl Bench {
    /// A fresh board whose boot-time pen-up move has run.
    pub fn new(version: FirmwareVersion) -> Self {
        let mut b = Self {
            fw: Firmware::new(version),
            rec: Recorder::default(),
        };
        b.run(10);
        b.rec = Recorder::default();
        b
    }

    /// Runs the interrupts for `ticks`.
    pub fn run(&mut self, ticks: u64) {
        self.fw.run_ticks(ticks, &mut self.rec);
    }

    /// Writes `bytes` like a host whose writes block while the board does not read: whenever
    /// the parser is blocked, runs ticks up to the next event. Returns everything the board sent.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> String {
        let mut rest = bytes;
        let mut out = Vec::new();
        let mut spins = 0;
        while !rest.is_empty() {
            let n = self.fw.receive(rest);
            rest = &rest[n..];
            self.fw.take_output(&mut out);
            if !rest.is_empty() {
                let wait = self
                    .fw
                    .next_event_in()
                    .expect("blocked with nothing pending");
                self.run(wait);
                spins += 1;
                assert!(spins < 10_000_000, "host stuck");
            }
        }
        // The host then waits for the replies of a command the parser is still stuck in.
        while self.fw.is_blocked() {
            let wait = self
                .fw
                .next_event_in()
                .expect("blocked with nothing pending");
            self.run(wait);
        }
        self.fw.take_output(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Sends one command line terminated by CR and returns the board's reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send_bytes(format!("{line}\r").as_bytes())
    }

    /// Runs until nothing is executing or queued (and no parser wait), returning any output.
    pub fn settle(&mut self) -> String {
        loop {
            let st = self.fw.status();
            if !st.executing && !st.blocked {
                break;
            }
            let t = self.fw.next_event_in().unwrap_or(1);
            self.run(t);
        }
        self.output()
    }

    /// Drains pending output.
    pub fn output(&mut self) -> String {
        let mut out = Vec::new();
        self.fw.take_output(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}
