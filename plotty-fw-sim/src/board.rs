//! [`Board`]: a simulated EiBotBoard as a host sees it over USB, deterministic and
//! single-threaded: bytes in, bytes out, and simulated time advanced only when asked.
//!
//! The board wraps a [`Firmware`] with what lies between it and the host:
//!
//! - host bytes are cut into USB packets of at most 64 bytes and offered to the firmware's
//!   parser; when its motion FIFO is full the parser blocks mid-packet, the rest of the packet
//!   waits, and nothing more is taken: [`Board::write`] accepts only what fits in a small input
//!   buffer, which is how the host's writes stall on a busy board. No replies come while the
//!   parser is blocked, exactly as over USB;
//! - simulated time passes only in [`Board::advance`] (and its helpers); a blocked parser is
//!   re-offered its bytes at the very tick it can continue, so the FIFO never runs dry because of
//!   the harness;
//! - an optional [`FaultInjector`] alters the byte streams and fires scheduled faults at exact
//!   ticks or right after the n-th command line;
//! - an [`Observer`] (by default [`SimObserver`]: pen trace and statistics) sees every step, pen
//!   change and command;
//! - the board can drop off USB ([`UsbDrop`]): on `RB` (it reboots and re-enumerates) or an
//!   injected unplug. While [`detached`](Board::detached) it takes and gives no bytes (the
//!   firmware runs on: an AxiDraw's board is powered by its own supply) until the harness plugs
//!   it back with [`Board::replug`], as a new USB connection with nothing in flight.
//!
//! Typical test loop (a sans-IO host session against the board, no threads, no wall clock):
//!
//! ```
//! use plotty_fw_sim::{board::Board, FirmwareVersion};
//!
//! let mut board = Board::new(FirmwareVersion::V3_0_3);
//! let reply = board.send(b"V\r").unwrap();
//! # let _ = reply;
//! board.send(b"SM,100,800,800\r").unwrap();
//! board.run_until_idle(25_000 * 10);
//! ```

use std::collections::VecDeque;

use crate::fault::{FaultAction, FaultInjector};
use crate::firmware::Firmware;
use crate::observer::Observer;
use crate::sim_observer::SimObserver;
use crate::version::FirmwareVersion;

/// Largest USB packet the EBB reads at once (full-speed bulk endpoint).
pub const USB_PACKET_BYTES: usize = 64;

/// Default number of host bytes the board side holds beyond what the parser consumed (one USB
/// packet, as the EBB's endpoint buffer holds one).
pub const DEFAULT_INPUT_CAPACITY: usize = USB_PACKET_BYTES;

/// Simulated ticks per second.
pub const TICKS_PER_SECOND: u64 = 25_000;

/// A simulated board behind its USB link. See the module documentation.
#[derive(Debug, Clone)]
pub struct Board<O = SimObserver> {
    firmware: Firmware,
    version: FirmwareVersion,
    observer: O,
    faults: Option<FaultInjector>,
    /// Host bytes (after faults) not yet offered to the parser.
    inbox: VecDeque<u8>,
    input_capacity: usize,
    /// The USB packet being offered; a blocked parser leaves its tail here.
    packet: Vec<u8>,
    /// Bytes for the host.
    outbox: Vec<u8>,
    scratch: Vec<u8>,
    commands_received: u64,
    /// The parser has bytes of a command line not yet terminated (for counting commands).
    line_has_bytes: bool,
    vanished: bool,
    resets: u64,
    /// Off USB, and why.
    detached: Option<UsbDrop>,
    usb_drops: u64,
}

/// Why a board dropped off USB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsbDrop {
    /// `RB`: the board rebooted (state as at power-up, nickname kept) and comes back as a new
    /// USB device once it has enumerated again.
    Reboot,
    /// An injected unplug ([`FaultAction::Unplug`]): the cable is plugged back after
    /// `replug_after_ticks` of simulated time. The board keeps running and keeps its state.
    Unplug {
        /// How long the cable stays out, in 25 kHz ticks.
        replug_after_ticks: u64,
    },
}

/// Why the board cannot take or give bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BoardError {
    /// A scheduled fault made the board vanish.
    #[error("the simulated board vanished (injected fault); reconnect to a new board")]
    Vanished,
    /// The board dropped off USB (`RB` or an unplug); it comes back on [`Board::replug`].
    #[error("the simulated board dropped off USB ({0:?}); reopen the port when it is back")]
    Detached(UsbDrop),
}

impl Board<SimObserver> {
    /// A board just powered on, running `version`, recording the pen trace and statistics.
    pub fn new(version: FirmwareVersion) -> Self {
        Self::with_observer(version, SimObserver::default())
    }
}

impl<O: Observer> Board<O> {
    /// A board just powered on, running `version`, reporting to `observer`.
    pub fn with_observer(version: FirmwareVersion, observer: O) -> Self {
        Self {
            firmware: Firmware::new(version),
            version,
            observer,
            faults: None,
            inbox: VecDeque::new(),
            input_capacity: DEFAULT_INPUT_CAPACITY,
            packet: Vec::with_capacity(USB_PACKET_BYTES),
            outbox: Vec::new(),
            scratch: Vec::new(),
            commands_received: 0,
            line_has_bytes: false,
            vanished: false,
            resets: 0,
            detached: None,
            usb_drops: 0,
        }
    }

    /// Injects faults from now on (faults due at the current tick fire at once).
    pub fn set_faults(&mut self, faults: FaultInjector) {
        self.faults = Some(faults);
        self.fire_due_faults();
    }

    /// The fault injector, if any (e.g. to read its seed).
    pub fn faults(&self) -> Option<&FaultInjector> {
        self.faults.as_ref()
    }

    /// How many host bytes the board side holds beyond what the parser consumed (at least 1;
    /// default [`DEFAULT_INPUT_CAPACITY`]).
    pub fn set_input_capacity(&mut self, bytes: usize) {
        self.input_capacity = bytes.max(1);
    }

    /// The firmware version the board runs.
    pub fn version(&self) -> FirmwareVersion {
        self.version
    }

    /// The firmware model (status, step counters…).
    pub fn firmware(&self) -> &Firmware {
        &self.firmware
    }

    /// The firmware model, mutably (press its button, set analog readings…).
    pub fn firmware_mut(&mut self) -> &mut Firmware {
        &mut self.firmware
    }

    /// The observer.
    pub fn observer(&self) -> &O {
        &self.observer
    }

    /// The observer, mutably.
    pub fn observer_mut(&mut self) -> &mut O {
        &mut self.observer
    }

    /// Ends the simulation and returns the observer.
    pub fn into_observer(self) -> O {
        self.observer
    }

    /// Simulated time since power-on, in 25 kHz ticks.
    pub fn now_ticks(&self) -> u64 {
        self.firmware.now_ticks()
    }

    /// Command lines the parser has received so far (non-empty lines, CR/LF/CRLF terminated).
    pub fn commands_received(&self) -> u64 {
        self.commands_received
    }

    /// Simulated resets so far (reset faults).
    pub fn resets(&self) -> u64 {
        self.resets
    }

    /// Whether the board vanished (a vanish fault fired).
    pub fn has_vanished(&self) -> bool {
        self.vanished
    }

    /// Why the board is off USB, if it is (see [`UsbDrop`]).
    pub fn detached(&self) -> Option<UsbDrop> {
        self.detached
    }

    /// Times the board dropped off USB (`RB` and unplugs).
    pub fn usb_drops(&self) -> u64 {
        self.usb_drops
    }

    /// Plugs a [`detached`](Self::detached) board back: a new USB connection, with no bytes in
    /// flight either way. (The harness decides when: after the reboot's enumeration time or the
    /// unplug's [`replug_after_ticks`](UsbDrop::Unplug::replug_after_ticks).)
    pub fn replug(&mut self) {
        self.detached = None;
        self.inbox.clear();
        self.packet.clear();
        self.outbox.clear();
    }

    /// The board drops off USB: what was in flight is lost with the connection.
    fn detach(&mut self, why: UsbDrop) {
        self.detached = Some(why);
        self.usb_drops += 1;
        self.inbox.clear();
        self.packet.clear();
        self.outbox.clear();
        if let Some(faults) = &mut self.faults {
            faults.discard_held();
        }
    }

    /// Host bytes [`write`](Self::write) would accept now.
    pub fn input_space(&self) -> usize {
        self.input_capacity.saturating_sub(self.pending_input())
    }

    /// Host bytes waiting for the parser (only while it is blocked).
    pub fn pending_input(&self) -> usize {
        self.inbox.len() + self.packet.len()
    }

    /// Whether the parser is blocked (full FIFO, or waiting for idle before `HM`/`CU,4`).
    pub fn is_blocked(&self) -> bool {
        self.firmware.is_blocked()
    }

    /// Whether a host may be waiting on the board: the parser is blocked, a command is executing
    /// or queued, or a late reply is held. While this is false, nothing the host can observe
    /// changes with time except timeouts (servo power, stepper disable).
    pub fn is_busy(&self) -> bool {
        self.firmware.is_blocked()
            || self.firmware.status().executing
            || self
                .faults
                .as_ref()
                .is_some_and(|f| f.next_release().is_some())
    }

    /// Whether replies are waiting to be read.
    pub fn has_output(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// Host → board: takes as many bytes as fit (see [`input_space`](Self::input_space)) and
    /// offers them to the parser at the current tick. Returns how many were taken; 0 means the
    /// board is not servicing USB (blocked parser) and the host's write stalls.
    pub fn write(&mut self, bytes: &[u8]) -> Result<usize, BoardError> {
        self.check_attached()?;
        let n = bytes.len().min(self.input_space());
        let accepted = bytes.get(..n).unwrap_or_default();
        match &mut self.faults {
            Some(faults) => {
                let mut altered = Vec::with_capacity(n);
                faults.to_board(accepted, &mut altered);
                self.inbox.extend(altered);
            }
            None => self.inbox.extend(accepted),
        }
        self.pump();
        Ok(n)
    }

    /// Board → host: appends every reply byte available now to `out`; returns how many.
    pub fn read(&mut self, out: &mut Vec<u8>) -> Result<usize, BoardError> {
        self.check_attached()?;
        let n = self.outbox.len();
        out.append(&mut self.outbox);
        Ok(n)
    }

    fn check_attached(&self) -> Result<(), BoardError> {
        if self.vanished {
            return Err(BoardError::Vanished);
        }
        match self.detached {
            Some(why) => Err(BoardError::Detached(why)),
            None => Ok(()),
        }
    }

    /// Writes all of `bytes` and waits until the parser has taken them all and is not blocked,
    /// advancing simulated time only as far as its back-pressure requires (a blocked parser takes
    /// its command when a FIFO slot frees); returns the replies available then. For tests and
    /// scripted sessions.
    pub fn send(&mut self, bytes: &[u8]) -> Result<Vec<u8>, BoardError> {
        let mut rest = bytes;
        loop {
            let n = self.write(rest)?;
            rest = rest.get(n..).unwrap_or_default();
            let blocked = self.pending_input() > 0 || self.firmware.is_blocked();
            if rest.is_empty() && !blocked {
                break;
            }
            if n == 0 || blocked {
                // Blocked with nothing pending would be a model bug: step a tick, never spin.
                let step = self.firmware.next_event_in().unwrap_or(1).max(1);
                self.advance(step);
            }
        }
        let mut out = Vec::new();
        self.read(&mut out)?;
        Ok(out)
    }

    /// Ticks until something a host waits for can change: the parser unblocks, a command ends, a
    /// timeout fires, a late reply is released or a scheduled fault is due. `None`: nothing is
    /// pending.
    pub fn next_event_in(&self) -> Option<u64> {
        let now = self.now_ticks();
        let faults = self.faults.as_ref();
        [
            self.firmware.next_event_in(),
            faults
                .and_then(FaultInjector::next_release)
                .map(|t| t.saturating_sub(now)),
            faults
                .and_then(FaultInjector::next_event_tick)
                .map(|t| t.saturating_sub(now)),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs `ticks` ticks of simulated time: the firmware executes, pending host bytes are
    /// offered as soon as the parser can take them, late replies are released and scheduled
    /// faults fire at their tick.
    pub fn advance(&mut self, ticks: u64) {
        let end = self.now_ticks().saturating_add(ticks);
        loop {
            let now = self.now_ticks();
            if now >= end || self.vanished {
                break;
            }
            let mut chunk = end - now;
            if self.pending_input() > 0 {
                // Stop exactly when the parser may continue, to offer the next bytes then.
                if let Some(n) = self.firmware.next_event_in() {
                    chunk = chunk.min(n.max(1));
                }
            }
            if let Some(faults) = &self.faults {
                for t in [faults.next_event_tick(), faults.next_release()]
                    .into_iter()
                    .flatten()
                {
                    if t > now {
                        chunk = chunk.min(t - now);
                    }
                }
            }
            self.firmware.run_ticks(chunk, &mut self.observer);
            self.collect_output();
            self.fire_due_faults();
            self.pump();
        }
    }

    /// Advances to the next event (see [`next_event_in`](Self::next_event_in)); returns the
    /// ticks advanced, or `None` (and does nothing) if no event is pending.
    pub fn advance_to_next_event(&mut self) -> Option<u64> {
        let ticks = self.next_event_in()?.max(1);
        self.advance(ticks);
        Some(ticks)
    }

    /// Advances event by event while [`is_busy`](Self::is_busy), for at most `max_ticks`;
    /// returns whether the board became idle.
    pub fn run_until_idle(&mut self, max_ticks: u64) -> bool {
        let end = self.now_ticks().saturating_add(max_ticks);
        while self.is_busy() && !self.vanished {
            let now = self.now_ticks();
            if now >= end {
                return false;
            }
            // Busy always has a next event; 1 ms steps guard against a model that says otherwise.
            let step = self.next_event_in().unwrap_or(25).clamp(1, end - now);
            self.advance(step);
        }
        true
    }

    /// Makes `action` happen now (what a scheduled fault does when it fires).
    pub fn inject(&mut self, action: FaultAction) {
        match action {
            FaultAction::Reset => self.reset(),
            FaultAction::Vanish => {
                self.vanished = true;
                self.inbox.clear();
                self.packet.clear();
                self.outbox.clear();
            }
            FaultAction::LowPower { voltage } => {
                // The motor current set point is unaffected.
                let [current, _] = self.firmware.status().analog;
                self.firmware.set_analog(current, voltage);
            }
            FaultAction::PressButton => self.firmware.press_button(),
            FaultAction::Unplug { replug_after_ticks } => {
                if self.detached.is_none() {
                    self.detach(UsbDrop::Unplug { replug_after_ticks });
                }
            }
        }
    }

    /// Resets the board as a brown-out or watchdog reset does: the firmware re-initialises as on
    /// `R` (legacy replies, FIFO depth 1, queued motion lost, counters zeroed, pen raised) and,
    /// since the USB connection restarts too, a half-received command and unread replies are
    /// lost. Simulated time and the carriage position go on.
    fn reset(&mut self) {
        self.firmware.power_cycle();
        self.outbox.clear();
        self.line_has_bytes = false;
        self.resets += 1;
    }

    /// Offers pending host bytes to the parser until it blocks or they run out.
    fn pump(&mut self) {
        while !self.vanished && self.detached.is_none() && !self.firmware.is_blocked() {
            if self.packet.is_empty() && !self.fill_packet() {
                return;
            }
            let consumed = self.firmware.receive(&self.packet).min(self.packet.len());
            for i in 0..consumed {
                let b = self.packet.get(i).copied().unwrap_or(0);
                if ends_command(&mut self.line_has_bytes, b) {
                    self.commands_received += 1;
                }
            }
            self.packet.drain(..consumed);
            if self.firmware.take_usb_drop() {
                // The firmware rebooted; the host's connection is gone with what was in it.
                self.line_has_bytes = false;
                self.detach(UsbDrop::Reboot);
                return;
            }
            self.collect_output();
            self.fire_due_faults();
            if consumed == 0 {
                return;
            }
        }
    }

    /// Takes the next USB packet from the inbox; cuts it after a command line that a scheduled
    /// fault waits for, so the fault fires before the parser sees anything after it.
    fn fill_packet(&mut self) -> bool {
        let mut len = self.inbox.len().min(USB_PACKET_BYTES);
        if len == 0 {
            return false;
        }
        if let Some(target) = self.faults.as_ref().and_then(|f| f.next_command_trigger()) {
            let mut line = self.line_has_bytes;
            let mut count = self.commands_received;
            for (i, &b) in self.inbox.iter().take(len).enumerate() {
                if ends_command(&mut line, b) {
                    count += 1;
                    if count >= target {
                        len = i + 1;
                        break;
                    }
                }
            }
        }
        self.packet.extend(self.inbox.drain(..len));
        true
    }

    /// Moves new firmware output (through the fault injector) to the outbox.
    fn collect_output(&mut self) {
        self.firmware.take_output(&mut self.scratch);
        let now = self.now_ticks();
        match &mut self.faults {
            Some(faults) => {
                faults.to_host(now, &self.scratch);
                faults.take_to_host(now, &mut self.outbox);
            }
            None => self.outbox.extend_from_slice(&self.scratch),
        }
        self.scratch.clear();
        if self.detached.is_some() {
            // Nobody is connected to read it.
            self.outbox.clear();
        }
    }

    fn fire_due_faults(&mut self) {
        let now = self.now_ticks();
        while let Some(action) = self
            .faults
            .as_mut()
            .and_then(|f| f.poll_event(now, self.commands_received))
        {
            self.inject(action);
        }
    }
}

/// Feeds one byte to a command-line counter; true when it ends a non-empty line.
fn ends_command(line_has_bytes: &mut bool, byte: u8) -> bool {
    match byte {
        b'\r' | b'\n' => std::mem::take(line_has_bytes),
        0x20.. => {
            *line_has_bytes = true;
            false
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::fault::{FaultConfig, FaultSpec};

    use super::*;

    /// A board past its power-on pen-up move.
    fn board() -> Board {
        let mut b = Board::new(FirmwareVersion::V3_0_3);
        assert!(b.run_until_idle(25_000));
        b
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    fn faulty(seed: u64, specs: &[&str]) -> Board {
        let mut config = FaultConfig::default();
        for spec in specs {
            config.apply(spec.parse::<FaultSpec>().unwrap());
        }
        let mut board = board();
        board.set_faults(FaultInjector::new(seed, config));
        board
    }

    #[test]
    fn answers_the_version_query() {
        let mut b = board();
        let reply = text(&b.send(b"V\r").unwrap());
        assert_eq!(reply, "EBBv13_and_above EB Firmware Version 3.0.3\r\n");
        assert_eq!(b.commands_received(), 1);
        let mut old = Board::new(FirmwareVersion::V2_8_1);
        assert!(text(&old.send(b"V\r").unwrap()).contains("Version 2.8.1"));
    }

    #[test]
    fn a_full_fifo_stalls_the_host_and_holds_replies() {
        let mut b = board();
        // Default depth 1: one executing, one queued, the third blocks the parser.
        let out = b.send(b"SM,100,100,0\rSM,100,100,0\r").unwrap();
        assert_eq!(text(&out), "OK\r\nOK\r\n");
        let third = b"SM,100,100,0\rQS\r";
        let taken = b.write(third).unwrap();
        assert_eq!(taken, third.len(), "fits in the input buffer");
        assert!(b.is_blocked());
        let mut out = Vec::new();
        b.read(&mut out).unwrap();
        assert!(out.is_empty(), "no reply while blocked: {}", text(&out));
        // Nothing more is taken while blocked once the buffer is full.
        let filler = [b'\n'; DEFAULT_INPUT_CAPACITY];
        let n = b.write(&filler).unwrap();
        assert!(n < filler.len());
        assert_eq!(b.write(&filler[n..]).unwrap(), 0);
        // When the first move ends (~100 ms) the third is queued and QS answers.
        let waited = b.advance_to_next_event().unwrap();
        assert!((2400..=2600).contains(&waited), "{waited} ticks");
        b.read(&mut out).unwrap();
        assert!(text(&out).starts_with("OK\r\n"), "{}", text(&out));
        assert!(text(&out).contains("OK\r\n"));
        assert!(b.run_until_idle(25_000));
        assert_eq!(b.firmware().status().steps, [300, 0]);
    }

    #[test]
    fn records_a_square_in_millimetres() {
        let mut b = board();
        b.send(b"EM,1,1\rSP,0,100\r").unwrap();
        for (m1, m2) in [(1600, 1600), (1600, -1600), (-1600, -1600), (-1600, 1600)] {
            b.send(format!("SM,200,{m1},{m2}\r").as_bytes()).unwrap();
        }
        b.send(b"SP,1,100\r").unwrap();
        assert!(b.run_until_idle(25_000 * 10));
        let trace = b.observer().trace.trace();
        assert_eq!(trace.strokes.len(), 1);
        let corners: Vec<(f64, f64)> = trace.strokes[0].iter().map(|p| (p.x, p.y)).collect();
        assert_eq!(
            corners,
            vec![
                (0.0, 0.0),
                (20.0, 0.0),
                (20.0, 20.0),
                (0.0, 20.0),
                (0.0, 0.0)
            ]
        );
        let report = b.observer().stats.report(b.now_ticks());
        assert_eq!(report.steps, [6400, 6400]);
        assert_eq!(report.pen_lifts, 1);
    }

    /// Slanted squares (sides of (a, c) mm, never along an axis or a diagonal) with pen-up
    /// travel between them: the statistics report what was commanded, not the staircase of
    /// steps a slanted line is made of.
    #[test]
    fn distances_are_the_commanded_lengths_of_slanted_squares() {
        let mut b = board();
        b.send(b"EM,1,1\r").unwrap();
        let mut down = 0.0;
        let mut up = 0.0;
        let sm = |b: &mut Board, x: i32, y: i32| {
            // x = (m1 + m2) / 160 and y = (m1 - m2) / 160 mm at 16x; 5 steps per ms at most.
            let (m1, m2) = (80 * (x + y), 80 * (x - y));
            let ms = m1.abs().max(m2.abs()) / 5;
            b.send(format!("SM,{ms},{m1},{m2}\r").as_bytes()).unwrap();
            f64::from(x).hypot(f64::from(y))
        };
        for (a, c) in [(30, 7), (25, 11), (17, 3), (9, 31)] {
            up += sm(&mut b, 5, 2);
            b.send(b"SP,0,100\r").unwrap();
            for (x, y) in [(a, c), (-c, a), (-a, -c), (c, -a)] {
                down += sm(&mut b, x, y);
            }
            b.send(b"SP,1,100\r").unwrap();
        }
        assert!(b.run_until_idle(25_000 * 60));
        let report = b.observer().stats.report(b.now_ticks());
        let error = |got: f64, want: f64| (got - want).abs() / want;
        assert!(
            error(report.pen_down_mm, down) < 1e-4,
            "pen down {} mm, commanded {down} mm",
            report.pen_down_mm
        );
        assert!(
            error(report.pen_up_mm, up) < 1e-4,
            "pen up {} mm, commanded {up} mm",
            report.pen_up_mm
        );
    }

    #[test]
    fn rb_drops_off_usb_and_comes_back_as_a_fresh_board_with_its_new_nickname() {
        let mut b = board();
        b.firmware_mut().set_nickname("Old").unwrap();
        b.send(b"CU,10,1\rCU,4,8\rEM,1,1\rSM,100,80,80\rST,New\r")
            .unwrap();
        assert!(b.run_until_idle(25_000));
        let before = b.commands_received();
        // The rest of the packet after RB is lost with the connection.
        assert_eq!(
            b.send(b"RB\rQT\r"),
            Err(BoardError::Detached(UsbDrop::Reboot))
        );
        assert_eq!(b.commands_received(), before + 1, "the QT never arrived");
        assert_eq!(b.detached(), Some(UsbDrop::Reboot));
        assert_eq!(b.usb_drops(), 1);
        assert_eq!(b.write(b"V\r"), Err(BoardError::Detached(UsbDrop::Reboot)));
        // Time goes on while it is off USB (it boots: the pen-up move runs).
        b.advance(25_000);
        b.replug();
        assert_eq!(b.detached(), None);
        // A power-up state: legacy replies, FIFO depth 1, counters zeroed; the nickname kept.
        assert_eq!(text(&b.send(b"QT\r").unwrap()), "New\r\nOK\r\n");
        assert_eq!(b.firmware().nickname(), b"New");
        let status = b.firmware().status();
        assert_eq!(status.reply_mode, crate::ReplyMode::Legacy);
        assert_eq!(status.steps, [0, 0]);
        assert_eq!(status.fifo_depth, 1);
        assert!(status.pen_up);
        assert_eq!(text(&b.send(b"QS\r").unwrap()), "0,0\n\rOK\r\n");
    }

    #[test]
    fn an_unplug_fault_detaches_the_board_which_keeps_running() {
        let mut b = faulty(1, &["unplug=100ms@3"]);
        b.send(b"CU,10,1\rEM,1,1\r").unwrap();
        // The third command is taken, then the cable is pulled: its reply is lost.
        assert_eq!(
            b.send(b"SM,200,800,800\rQS\r"),
            Err(BoardError::Detached(UsbDrop::Unplug {
                replug_after_ticks: 2_500
            }))
        );
        assert_eq!(b.commands_received(), 3);
        // The move goes on while the host is away.
        b.advance(2_500);
        assert!(b.firmware().status().steps[0] > 0);
        b.replug();
        assert!(b.run_until_idle(25_000));
        // Nothing was reset: future reply syntax and the step counters stay.
        assert_eq!(text(&b.send(b"QS\r").unwrap()), "QS,800,800\n");
        assert_eq!(b.usb_drops(), 1);
    }

    #[test]
    fn nicknames_are_checked_like_st_and_qt_would_store_and_print_them() {
        let mut b = board();
        assert_eq!(b.firmware().nickname(), b"");
        for bad in [
            "",
            " lead",
            "a,b",
            "seventeen-chars-x",
            "caf\u{e9}",
            "tab\t",
        ] {
            assert!(b.firmware_mut().set_nickname(bad).is_err(), "{bad:?}");
        }
        b.firmware_mut().set_nickname("AxiDraw 16 Sim").unwrap();
        assert_eq!(text(&b.send(b"QT\r").unwrap()), "AxiDraw 16 Sim\r\nOK\r\n");
    }

    #[test]
    fn vanish_after_a_command_count() {
        let mut b = faulty(1, &["vanish@2"]);
        let out = b.send(b"V\rV\rV\r");
        assert_eq!(out, Err(BoardError::Vanished));
        assert!(b.has_vanished());
        assert_eq!(b.commands_received(), 2);
        assert_eq!(b.write(b"V\r"), Err(BoardError::Vanished));
    }

    #[test]
    fn reset_zeroes_the_counters_and_keeps_the_clock() {
        let mut b = faulty(1, &["reset@0.5s"]);
        let t0 = b.now_ticks();
        b.send(b"SM,1000,1000,0\r").unwrap();
        b.advance(25_000 / 2 + 10 - t0);
        assert_eq!(b.resets(), 1);
        assert_eq!(b.now_ticks(), 25_000 / 2 + 10);
        let out = text(&b.send(b"QS\r").unwrap());
        assert!(out.starts_with("0,0"), "{out}");
        assert!(!b.firmware().status().executing);
        // The trace kept the physical position reached before the reset.
        let x = b.observer().trace.position_mm().x;
        assert!((3.0..3.2).contains(&x), "{x}");
    }

    #[test]
    fn low_power_and_the_button() {
        let mut b = faulty(1, &["low-power=180", "button@5ms"]);
        let qc = text(&b.send(b"QC\r").unwrap());
        assert!(qc.contains(",180\r\n"), "{qc}");
        assert!(text(&b.send(b"QB\r").unwrap()).starts_with('0'));
        b.send(b"SM,10,0,0\r").unwrap();
        b.run_until_idle(1000);
        assert!(text(&b.send(b"QB\r").unwrap()).starts_with('1'));
    }

    #[test]
    fn late_replies_wait_in_simulated_time() {
        let mut b = faulty(1, &["late=1:20"]);
        assert!(b.send(b"V\r").unwrap().is_empty());
        assert!(b.is_busy());
        assert_eq!(b.next_event_in(), Some(500));
        b.advance_to_next_event();
        let mut out = Vec::new();
        b.read(&mut out).unwrap();
        assert!(text(&out).starts_with("EBB"));
    }

    #[test]
    fn same_seed_same_session() {
        let session = |seed: u64| {
            let mut b = faulty(
                seed,
                &["garble=0.05", "drop-to-host=0.05", "dup-to-board=0.05"],
            );
            let mut all = Vec::new();
            for _ in 0..20 {
                all.extend(b.send(b"SM,10,20,-20\rQS\rQG\rV\r").unwrap());
                b.run_until_idle(25_000);
            }
            all
        };
        assert_eq!(session(42), session(42));
        assert_ne!(session(42), session(43));
    }
}
