//! The simulated EiBotBoard: [`Firmware`] owns the parser, the motion FIFO, the 25 kHz motion
//! interrupt and the 1 ms servo interrupt, and exposes them to a harness that feeds USB packets in
//! ([`Firmware::receive`]), advances simulated time ([`Firmware::run_ticks`]) and drains replies
//! ([`Firmware::take_output`]).
//!
//! (Early API commit: the behaviour behind these signatures follows in the next commits.)

use crate::observer::Observer;
use crate::status::{ReplyMode, Status};
use crate::version::FirmwareVersion;

/// A simulated EiBotBoard running one firmware version. See the crate documentation for what
/// is modelled.
#[derive(Debug, Clone)]
pub struct Firmware {
    version: FirmwareVersion,
    tick: u64,
    out: Vec<u8>,
}

impl Firmware {
    /// A board just powered on, running `version`.
    pub fn new(version: FirmwareVersion) -> Self {
        Self {
            version,
            tick: 0,
            out: Vec::new(),
        }
    }

    /// The firmware version this board runs.
    pub fn version(&self) -> FirmwareVersion {
        self.version
    }

    /// Simulated time since power-on, in 25 kHz ticks (40 µs each).
    pub fn now_ticks(&self) -> u64 {
        self.tick
    }

    /// Offers one USB packet of host bytes (a longer slice is split into 64-byte packets).
    /// Returns how many bytes were consumed. Fewer than offered means the parser is blocked on a
    /// full motion FIFO (or waits for idle before `HM`/`CU,4`): the board stops servicing USB.
    /// Offer the remaining bytes again, as the same packet, after running ticks.
    pub fn receive(&mut self, packet: &[u8]) -> usize {
        packet.len()
    }

    /// True while the parser waits for a FIFO slot (or for idle): [`Firmware::receive`] accepts
    /// nothing and no replies are released.
    pub fn is_blocked(&self) -> bool {
        false
    }

    /// Runs the 25 kHz motion interrupt (and the 1 ms servo interrupt as due) for `ticks` ticks,
    /// reporting to `observer`.
    pub fn run_ticks<O: Observer>(&mut self, ticks: u64, observer: &mut O) {
        let _ = observer;
        self.tick += ticks;
    }

    /// Ticks until something changes that a driver must wait for: the blocked parser can
    /// continue, the current command finishes (and the next loads), the servo power or the
    /// stepper-disable timeout fires. `None` when nothing is pending.
    pub fn next_event_in(&self) -> Option<u64> {
        None
    }

    /// Moves the bytes the board has sent to the host into `out` (appending).
    pub fn take_output(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.out);
    }

    /// A snapshot of the board's state.
    pub fn status(&self) -> Status {
        Status {
            tick: self.tick,
            steps: [0; 2],
            pen_up: true,
            motors_enabled: [false; 2],
            microsteps: 16,
            fifo_len: 0,
            fifo_depth: 1,
            executing: false,
            current: None,
            blocked: false,
            servo_power: false,
            pen_servo_position: 0,
            pen_servo_target: 0,
            accumulators: [0; 2],
            reply_mode: ReplyMode::Legacy,
            ack: true,
            limit_checks: true,
            test_mode: false,
            button_latched: false,
            checksums: false,
        }
    }

    /// Presses the PRG button (or pulls the alt-pause pin RB0 low) once: sets the latch that
    /// `QB` and `QG` bit 5 report and clear.
    pub fn press_button(&mut self) {}

    /// Sets the raw 10-bit ADC readings `QC` reports: `current` on REF_RA0 (motor current set
    /// point) and `voltage` on V+ (through the ÷9.2 divider; the AxiDraw software warns below 250).
    pub fn set_analog(&mut self, current: u16, voltage: u16) {
        let _ = (current, voltage);
    }
}
