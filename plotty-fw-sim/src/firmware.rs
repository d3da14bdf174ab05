//! The simulated EiBotBoard: [`Firmware`] owns the parser, the motion FIFO, the 25 kHz motion
//! interrupt and the 1 ms servo interrupt, and exposes them to a harness that feeds USB packets
//! in ([`Firmware::receive`]), advances simulated time ([`Firmware::run_ticks`]) and drains
//! replies ([`Firmware::take_output`]).
//!
//! Call order, repeated: `receive` whatever the host wrote (re-offer what it did not consume),
//! `run_ticks` up to the next moment of interest (`next_event_in`, or the host's own clock),
//! `take_output`. Nothing here reads a clock or spawns a thread.
//!
//! Command handlers live in [`crate::commands`]; the interrupts in [`crate::isr`].

use std::cell::Cell;

use crate::fifo::Fifo;
use crate::motion::{Command, Op};
use crate::observer::{CommandKind, Observer};
use crate::parser::{ByteEvent, LineFramer};
use crate::reply::{ErrorBit, Io};
use crate::servo::Servo;
use crate::status::{ReplyMode, Status};
use crate::version::FirmwareVersion;

/// Bytes in a full-speed USB bulk packet: the firmware reads at most this much at a time.
pub(crate) const USB_PACKET: usize = 64;
/// Unread reply bytes beyond which the board stops reading input (its TX path would stall).
pub(crate) const MAX_UNREAD_OUTPUT: usize = 64 * 1024;

/// A nickname `ST` could not have stored so that `QT` prints it back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "nickname {0:?}: use 1 to 16 printable ASCII characters, no comma, not starting with a space"
)]
pub struct NicknameError(pub String);

/// Why the board no longer parses commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Halt {
    /// `BL`: jumped to the bootloader; the EBB port is gone (input is discarded).
    Bootloader,
    /// `CU,254,1`: the timing lock-up loop; USB is never serviced again (input is refused),
    /// the interrupts keep running.
    LockUp,
}

/// What the blocked parser waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Wait {
    /// FIFO room for each of these commands, in order.
    Room(Vec<Command>),
    /// Motion idle (FIFO empty, nothing executing), then act.
    Idle(IdleAction),
}

/// Parser actions that wait for motion idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdleAction {
    /// 3.x HM: one straight move to `target` at `rate` steps/s on the major axis.
    HomeV3 { rate: u32, target: [i32; 2] },
    /// 2.x HM: one move, or a "dog-leg" of two.
    HomeV2 { rate: u32, target: [i32; 2] },
    /// `CU,4`: the new FIFO depth.
    FifoDepth(u8),
}

/// A command whose parse routine is waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) wait: Wait,
    /// Unparsed bytes followed the command (the after-the-fact `!7` check).
    pub(crate) leftover: bool,
}

/// How a command handler ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Finished (its reply, if any, is written).
    Done,
    /// Its parse routine waits; the rest of its reply follows when the wait ends.
    Block(Wait),
    /// The board rebooted or left the firmware (`RB`, `BL`, `CU,254`): nothing follows.
    Gone,
}

/// The 3.x stepper auto-disable timer (`CU,61`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepperTimeout {
    Disabled,
    /// Armed: starts timing when the motion FIFO runs empty.
    Primed,
    /// Counting down: ms left in the current second, seconds left.
    Timing {
        ms: u16,
        seconds: u16,
    },
    /// Fired (drivers disabled); re-primed by the next loaded command.
    Fired,
}

/// Observer notifications produced while parsing (delivered by the next `run_ticks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseEvent {
    Pen {
        tick: u64,
        up: bool,
    },
    Motors {
        tick: u64,
        enabled: [bool; 2],
        microsteps: u8,
    },
}

/// Stepper driver pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Drivers {
    /// Enable pins (the board drives them active low; true = enabled).
    pub(crate) enabled: [bool; 2],
    /// MS1, MS2, MS3 levels.
    pub(crate) ms: [bool; 3],
    /// `SC,2`: 0 PIC drives the on-board drivers, 1 PIC drives external ones, 2 external.
    pub(crate) config: u8,
}

impl Drivers {
    fn new() -> Self {
        Self {
            enabled: [false; 2],
            ms: [true; 3],
            config: 0,
        }
    }

    /// Microsteps per full step selected by the MS pins (what QE decodes).
    pub(crate) fn microsteps(&self) -> u8 {
        match self.ms {
            [false, false, false] => 1,
            [true, false, false] => 2,
            [false, true, false] => 4,
            [true, true, false] => 8,
            _ => 16,
        }
    }

    /// EM's mode 1..=5 (1/16, 1/8, 1/4, 1/2, full).
    pub(crate) fn set_mode(&mut self, mode: u8) {
        self.ms = match mode {
            1 => [true, true, true],
            2 => [true, true, false],
            3 => [false, true, false],
            4 => [true, false, false],
            5 => [false, false, false],
            _ => self.ms,
        };
    }
}

/// A simulated EiBotBoard running one firmware version. See the crate documentation for what
/// is modelled.
#[derive(Debug, Clone)]
pub struct Firmware {
    pub(crate) version: FirmwareVersion,
    pub(crate) tick: u64,
    pub(crate) io: Io,
    framer: LineFramer,
    /// Bytes of the current USB packet not yet processed (a blocked packet's continuation).
    packet_left: usize,
    /// Output index where the current packet's replies start.
    packet_out_start: usize,
    /// While blocked, output from this index on is held back (USB is not serviced).
    hold_from: Option<usize>,
    pub(crate) pending: Option<Pending>,
    pub(crate) halt: Option<Halt>,

    // Motion (interrupt state).
    pub(crate) cur: Command,
    pub(crate) active: [bool; 2],
    pub(crate) acc: [u32; 2],
    /// Global step counters (QS): zeroed by CS, EM and reset.
    pub(crate) pos: [i32; 2],
    /// Physical motor position since power-on (never zeroed): what observers get.
    pub(crate) motor_pos: [i32; 2],
    pub(crate) fifo: Fifo,
    /// A command was loaded since the last idle report.
    pub(crate) busy: bool,
    /// Bumped whenever the executing command or the accumulators change outside the interrupt.
    pub(crate) epoch: u64,
    /// (epoch, absolute tick at which the current command ends, whether that is exact rather
    /// than a look-ahead horizon) for `next_event_in`.
    pub(crate) end_cache: Cell<Option<(u64, Option<u64>, bool)>>,
    pub(crate) next_ms_tick: u64,
    pub(crate) adc_ms: u8,
    pub(crate) stepper_timeout: StepperTimeout,
    /// Tick at which the executing servo move was last applied.
    pub(crate) servo_applied: u64,
    /// Skip idle and delay ticks in bulk (identical results); off = strictly tick by tick.
    pub(crate) fast_forward: bool,

    // Settings.
    pub(crate) limit_checks: bool,
    pub(crate) auto_enable: bool,
    pub(crate) checksums: bool,
    /// CU,250..257 flags, bit n−250.
    pub(crate) test_flags: u8,
    pub(crate) red_led: bool,
    pub(crate) limit_mask: u8,
    pub(crate) limit_target: u8,
    pub(crate) limit_replies: bool,
    pub(crate) limit_triggered: bool,
    pub(crate) limit_portb: u8,
    pub(crate) power_threshold: u16,
    pub(crate) power_drop: bool,
    pub(crate) stepper_timeout_s: u16,

    // Hardware.
    pub(crate) drivers: Drivers,
    pub(crate) dir_pins: [bool; 2],
    pub(crate) servo: Servo,
    pub(crate) pen_up: bool,
    pub(crate) solenoid: bool,
    pub(crate) button: bool,
    pub(crate) alt_pause: bool,
    pub(crate) analog: [u16; 2],
    pub(crate) engraver: (bool, u16),
    pub(crate) engraver_power: u16,
    /// Port latches and directions (A..E) for pins without a modelled function (PO/PD/PI).
    pub(crate) lat: [u8; 5],
    pub(crate) tris: [u8; 5],
    pub(crate) layer: [u8; 32],
    pub(crate) node: u32,
    /// The `ST` nickname in flash (survives R and RB).
    pub(crate) nickname: [u8; 16],
    /// `RB`s executed, and how many of them the harness took note of (`take_usb_drop`).
    pub(crate) reboots: u64,
    reboots_taken: u64,

    pub(crate) events: Vec<ParseEvent>,
    pub(crate) reported_motors: ([bool; 2], u8),
}

impl Firmware {
    /// A board just powered on, running `version`, as a host finds it once USB is up: the
    /// pen-up servo move that every start queues has executed (after 2 ticks), the servo power
    /// is off, the drivers are disabled, replies are in legacy syntax.
    pub fn new(version: FirmwareVersion) -> Self {
        let mut fw = Self {
            version,
            tick: 0,
            io: Io::new(version),
            framer: LineFramer::new(),
            packet_left: 0,
            packet_out_start: 0,
            hold_from: None,
            pending: None,
            halt: None,
            cur: Command::new(Op::None, CommandKind::Delay),
            active: [false; 2],
            acc: [0; 2],
            pos: [0; 2],
            motor_pos: [0; 2],
            fifo: Fifo::new(),
            busy: false,
            epoch: 0,
            end_cache: Cell::new(None),
            next_ms_tick: 25,
            adc_ms: 0,
            stepper_timeout: StepperTimeout::Disabled,
            servo_applied: 0,
            fast_forward: true,
            limit_checks: true,
            auto_enable: true,
            checksums: false,
            test_flags: 0,
            red_led: false,
            limit_mask: 0,
            limit_target: 0,
            limit_replies: false,
            limit_triggered: false,
            limit_portb: 0,
            power_threshold: 0,
            power_drop: false,
            stepper_timeout_s: 0,
            drivers: Drivers::new(),
            dir_pins: [false; 2],
            servo: Servo::new(version),
            pen_up: true,
            solenoid: false,
            button: false,
            alt_pause: true,
            // About 0.5 A set point and 12 V on V+ (÷9.2, 3.3 V = 1023).
            analog: [500, 404],
            engraver: (false, 0),
            engraver_power: 0,
            lat: [0; 5],
            tris: [0xFF; 5],
            layer: [0; 32],
            node: 0,
            nickname: [0; 16],
            reboots: 0,
            reboots_taken: 0,
            events: Vec::new(),
            reported_motors: ([false; 2], 16),
        };
        fw.reinit();
        fw.events.clear();
        fw.run_ticks(2, &mut crate::observer::NoObserver);
        fw
    }

    /// The firmware version this board runs.
    pub fn version(&self) -> FirmwareVersion {
        self.version
    }

    /// Simulated time since power-on, in 25 kHz ticks (40 µs each).
    pub fn now_ticks(&self) -> u64 {
        self.tick
    }

    /// Offers one USB packet of host bytes (a longer slice is taken as consecutive 64-byte
    /// packets). Returns how many bytes were consumed.
    ///
    /// The parser blocks on a queued command when the motion FIFO is full (and `HM`/`CU,4`
    /// block until motion is idle): that command is consumed up to its terminator, but its
    /// reply — and the replies of the same packet's earlier commands — are held back until the
    /// wait ends ([`Firmware::is_blocked`] is true meanwhile), and nothing more is read: the
    /// real board stops servicing USB. Fewer bytes consumed than offered means exactly that
    /// (or that 64 KiB of replies are unread). Offer the remaining bytes again, as the same
    /// packet (2.x prints a packet's error lines only after its last command), after running
    /// ticks ([`Firmware::next_event_in`] says how many).
    pub fn receive(&mut self, packet: &[u8]) -> usize {
        match self.halt {
            Some(Halt::Bootloader) => return packet.len(),
            Some(Halt::LockUp) => return 0,
            None => {}
        }
        if self.pending.is_some() {
            return 0;
        }
        let mut consumed = 0;
        let reboots = self.reboots;
        self.packet_out_start = self.io.out.len();
        while consumed < packet.len() {
            if self.packet_left == 0 {
                if self.io.out.len() >= MAX_UNREAD_OUTPUT {
                    break;
                }
                self.packet_left = (packet.len() - consumed).min(USB_PACKET);
                self.packet_out_start = self.io.out.len();
            }
            while self.packet_left > 0 && consumed < packet.len() {
                let byte = packet[consumed];
                consumed += 1;
                self.packet_left -= 1;
                let blocked = self.feed(byte);
                if self.reboots != reboots {
                    // RB: the USB connection goes down; the rest of the packet was never
                    // received by this boot (see `take_usb_drop`).
                    return consumed;
                }
                match self.halt {
                    Some(Halt::Bootloader) => return packet.len(),
                    Some(Halt::LockUp) => {
                        // USB is never serviced again: this packet's replies stay unsent.
                        self.hold_from = Some(self.packet_out_start.min(self.io.out.len()));
                        return consumed;
                    }
                    None => {}
                }
                if blocked {
                    self.hold_from = Some(self.packet_out_start.min(self.io.out.len()));
                    return consumed;
                }
            }
            if self.packet_left == 0 {
                self.end_packet();
            }
        }
        consumed
    }

    /// One byte through the framer; true if the parser blocked on it.
    fn feed(&mut self, byte: u8) -> bool {
        match self.framer.push(byte) {
            ByteEvent::None => false,
            ByteEvent::Backspace => {
                self.io.text(b" \x08");
                false
            }
            ByteEvent::Overrun => {
                self.io.set_error(ErrorBit::RxOverrun);
                false
            }
            ByteEvent::Line => {
                let line = self.framer.line().to_vec();
                self.framer.clear();
                self.dispatch(&line);
                self.pending.is_some()
            }
        }
    }

    /// The end of a USB read: error lines still pending are printed (all of them on 2.x).
    fn end_packet(&mut self) {
        if self.io.failed() {
            self.io.print_errors();
        }
    }

    /// True while the parser waits for a FIFO slot (or for idle), or `CU,254` locked the
    /// board up: [`Firmware::receive`] accepts nothing and no new replies are released.
    pub fn is_blocked(&self) -> bool {
        self.pending.is_some() || self.halt == Some(Halt::LockUp)
    }

    /// Moves the bytes the board has sent to the host into `out` (appending). While the parser
    /// is blocked, the replies of the packet it is stuck in are held back, as the real board
    /// does not service USB then.
    pub fn take_output(&mut self, out: &mut Vec<u8>) {
        let end = self
            .hold_from
            .unwrap_or(self.io.out.len())
            .min(self.io.out.len());
        out.extend(self.io.out.drain(..end));
        if let Some(h) = self.hold_from.as_mut() {
            *h = 0;
        }
        self.packet_out_start = self.packet_out_start.saturating_sub(end);
    }

    /// Called when the parser's wait ended: replies flow again, and a packet whose last byte
    /// was the blocked command's terminator ends now.
    pub(crate) fn unblocked(&mut self) {
        self.hold_from = None;
        if self.packet_left == 0 {
            self.end_packet();
        }
    }

    /// A snapshot of the board's state.
    pub fn status(&self) -> Status {
        let (pen_servo_position, pen_servo_target) = self.servo.pen_channel();
        Status {
            tick: self.tick,
            steps: self.pos,
            motor_position: self.motor_pos,
            pen_up: self.pen_up,
            motors_enabled: self.drivers.enabled,
            microsteps: self.drivers.microsteps(),
            fifo_len: self.fifo.len(),
            fifo_depth: usize::from(self.fifo.depth()),
            executing: self.executing(),
            current: (self.cur.op != Op::None).then_some(self.cur.kind),
            blocked: self.is_blocked(),
            servo_power: self.servo.power,
            pen_servo_position,
            pen_servo_target,
            rates: self.cur.rate,
            accumulators: self.acc,
            reply_mode: if self.io.future {
                ReplyMode::Future
            } else {
                ReplyMode::Legacy
            },
            ack: self.io.ack,
            limit_checks: self.limit_checks,
            test_mode: self.test_mode(),
            button_latched: self.button,
            analog: self.analog,
            checksums: self.checksums,
        }
    }

    /// Whether `RB` dropped the USB connection since the last call: a harness then closes the
    /// link, discards what the host sent after the `RB` ([`receive`](Self::receive) stops right
    /// after it), and brings the board back as a new USB device (the firmware itself has already
    /// rebooted).
    pub fn take_usb_drop(&mut self) -> bool {
        let dropped = self.reboots != self.reboots_taken;
        self.reboots_taken = self.reboots;
        dropped
    }

    /// The nickname in flash (`ST`), as `QT` prints it: empty if unset or if its first byte is
    /// not a printable character.
    pub fn nickname(&self) -> &[u8] {
        let name = &self.nickname;
        if !name.first().is_some_and(|b| (33..128).contains(b)) {
            return &[];
        }
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        name.get(..end).unwrap_or_default()
    }

    /// Writes `name` to the nickname flash as `ST,name` would (a board that was named before),
    /// checked: 1 to 16 printable ASCII characters without commas, the first not a space (or
    /// `QT` would not print it).
    pub fn set_nickname(&mut self, name: &str) -> Result<(), NicknameError> {
        let bytes = name.as_bytes();
        let printable = bytes
            .iter()
            .all(|b| (b' '..=b'~').contains(b) && *b != b',');
        let first_ok = bytes.first().is_some_and(|b| *b != b' ');
        if bytes.len() > self.nickname.len() || !printable || !first_ok {
            return Err(NicknameError(name.to_owned()));
        }
        self.nickname = [0; 16];
        self.nickname
            .get_mut(..bytes.len())
            .unwrap_or_default()
            .copy_from_slice(bytes);
        Ok(())
    }

    /// Presses the PRG button (or pulls the alt-pause pin RB0 low) once: sets the latch that
    /// `QB` and `QG` bit 5 report and clear.
    pub fn press_button(&mut self) {
        self.button = true;
    }

    /// Sets the raw 10-bit ADC readings `QC` reports: `current` on REF_RA0 (motor current set
    /// point) and `voltage` on V+ (through the ÷9.2 divider; the AxiDraw software warns below
    /// 250). Defaults: 500 and 404 (12 V). Values are masked to 10 bits.
    pub fn set_analog(&mut self, current: u16, voltage: u16) {
        self.analog = [current & 0x3FF, voltage & 0x3FF];
    }

    /// With `false`, every tick runs the full interrupt (no bulk skipping of idle and delay
    /// ticks). The results are identical either way; this exists to prove it.
    pub fn set_fast_forward(&mut self, on: bool) {
        self.fast_forward = on;
    }

    /// `QG` bit 3 / `process_QM`: a delay counting, a command loaded, or the FIFO non-empty.
    pub(crate) fn executing(&self) -> bool {
        self.cur.delay != 0 || self.cur.op != Op::None || !self.fifo.is_empty()
    }

    /// Motion is idle and the FIFO has room: what HM and CU,4 wait for.
    pub(crate) fn motion_idle(&self) -> bool {
        !self.executing() && self.fifo.has_room()
    }

    /// Test mode `CU,251,1` (accumulator preload by the Clear parameter).
    pub(crate) fn test_mode(&self) -> bool {
        self.test_flags & (1 << 1) != 0
    }

    /// Invalidates the cached end of the current command.
    pub(crate) fn touch(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// Records a parse-time change of the motor pins for the observer.
    pub(crate) fn motors_changed(&mut self) {
        let now = (self.drivers.enabled, self.drivers.microsteps());
        if now != self.reported_motors {
            self.reported_motors = now;
            // All parse-time events share the current tick: only the last state of each kind
            // matters, which also bounds the list when the harness never runs ticks.
            self.events
                .retain(|e| !matches!(e, ParseEvent::Motors { .. }));
            self.events.push(ParseEvent::Motors {
                tick: self.tick,
                enabled: now.0,
                microsteps: now.1,
            });
        }
    }

    /// `EM` on a firmware where it is immediate (before 2.8.0): the same effect as the queued
    /// one has when it executes (`exec_em`), at parse time.
    pub(crate) fn em_now(&mut self, [e1, e2]: [u8; 2]) {
        self.drivers.enabled[0] = e1 > 0;
        if (1..=5).contains(&e1) {
            self.drivers.set_mode(e1);
        }
        self.drivers.enabled[1] = e2 > 0;
        self.pos = [0; 2];
        if self.version.em_clears_accumulators() {
            self.acc = [0; 2];
        }
        self.limit_triggered = false;
        self.touch();
        // Reported even when the pins did not change: an EM also zeroed the step counters.
        let now = (self.drivers.enabled, self.drivers.microsteps());
        self.reported_motors = now;
        self.events
            .retain(|e| !matches!(e, ParseEvent::Motors { .. }));
        self.events.push(ParseEvent::Motors {
            tick: self.tick,
            enabled: now.0,
            microsteps: now.1,
        });
    }

    /// Moves enable both drivers at parse time (unless 3.x `CU,50,0`).
    pub(crate) fn auto_enable_motors(&mut self) {
        if self.auto_enable {
            self.drivers.enabled = [true; 2];
            self.motors_changed();
        }
    }

    /// Sets the pen state outside the interrupt (immediate pen-up, reset).
    pub(crate) fn set_pen_now(&mut self, up: bool) {
        if up != self.pen_up {
            self.pen_up = up;
            self.events.retain(|e| !matches!(e, ParseEvent::Pen { .. }));
            self.events.push(ParseEvent::Pen {
                tick: self.tick,
                up,
            });
        }
    }

    /// Delivers parse-time notifications.
    pub(crate) fn deliver_events<O: Observer>(&mut self, observer: &mut O) {
        for e in self.events.drain(..) {
            match e {
                ParseEvent::Pen { tick, up } => observer.on_pen(tick, up),
                ParseEvent::Motors {
                    tick,
                    enabled,
                    microsteps,
                } => {
                    observer.on_motors(tick, enabled, microsteps);
                }
            }
        }
    }

    /// Copies a command into the FIFO, with the servo-power side effect of pen-pin moves.
    pub(crate) fn push_command(&mut self, cmd: Command) {
        if cmd.op == Op::Servo && cmd.servo_rpn == crate::servo::PEN_RPN_DEFAULT {
            self.servo.power_on();
        }
        self.fifo.push(cmd);
    }

    /// Queues `cmds` in order and prints the OK line, or blocks until they fit.
    pub(crate) fn queue(&mut self, cmds: &[Command]) -> Flow {
        let mut rest = cmds.iter();
        for cmd in rest.by_ref() {
            if self.fifo.has_room() {
                self.push_command(*cmd);
            } else {
                let mut waiting = vec![*cmd];
                waiting.extend(rest.copied());
                return Flow::Block(Wait::Room(waiting));
            }
        }
        self.io.ok_end();
        Flow::Done
    }

    /// Tries to end the parser's wait (after a FIFO pop or at idle).
    pub(crate) fn try_resolve(&mut self) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let flow = match pending.wait {
            Wait::Room(cmds) => {
                if self.fifo.has_room() {
                    self.queue(&cmds)
                } else {
                    Flow::Block(Wait::Room(cmds))
                }
            }
            Wait::Idle(action) => {
                if self.motion_idle() {
                    self.idle_action(action)
                } else {
                    Flow::Block(Wait::Idle(action))
                }
            }
        };
        match flow {
            Flow::Block(wait) => {
                self.pending = Some(Pending {
                    wait,
                    leftover: pending.leftover,
                })
            }
            Flow::Gone => self.unblocked(),
            Flow::Done => {
                self.finish_command(pending.leftover, false);
                self.unblocked();
            }
        }
    }

    /// After a command: the extra-parameter check, then (3.x) its error lines.
    pub(crate) fn finish_command(&mut self, leftover: bool, is_reset: bool) {
        if leftover && !self.io.failed() && !is_reset {
            self.io.set_error(ErrorBit::Extra);
        }
        if self.version.is_v3() && self.io.failed() {
            self.io.print_errors();
        }
    }

    /// Software re-initialisation (`UserInit`, `EBB_Init`, `RCServo2_Init`): what power-on,
    /// `R` and `RB` do. Time, the physical motor position, the ADC inputs and the flash
    /// nickname survive.
    pub(crate) fn reinit(&mut self) {
        self.io.reset();
        self.cur = Command::new(Op::None, CommandKind::Delay);
        self.cur.rate = [1; 2];
        self.active = [false; 2];
        self.fifo.clear();
        self.fifo.set_depth(1);
        self.pending = None;
        self.touch();
        self.test_flags = 0;
        self.drivers = Drivers::new();
        self.motors_changed();
        self.dir_pins = [false; 2];
        self.solenoid = false;
        self.set_pen_now(true);
        self.layer = [0; 32];
        self.node = 0;
        self.button = false;
        self.limit_checks = true;
        self.alt_pause = true;
        self.limit_mask = 0;
        self.limit_target = 0;
        self.limit_triggered = false;
        self.limit_portb = 0;
        self.limit_replies = false;
        self.checksums = false;
        self.pos = [0; 2];
        self.acc = [0; 2];
        self.engraver = (false, 0);
        self.engraver_power = 0;
        self.lat = [0; 5];
        self.tris = [0xFF; 5];
        // RCServo2_Init: fresh channels, then the pen-up move it queues (switching power on),
        // then power off; UserInit then zeroes the power countdown.
        self.servo = Servo::new(self.version);
        self.servo.power_on();
        if let crate::servo::MovePlan::Queue(up) = self.servo.plan_move(
            self.servo.min,
            self.servo.pen_rpn,
            self.servo.rate_up,
            0,
            true,
        ) {
            self.push_command(up);
        }
        self.servo.power_off();
        self.auto_enable = true;
        self.power_threshold = 0;
        self.stepper_timeout_s = 0;
        self.stepper_timeout = StepperTimeout::Disabled;
        self.power_drop = false;
    }

    /// `RB`: a reboot — re-initialisation plus a USB re-enumeration, which loses unread
    /// replies and any partial command.
    pub(crate) fn reboot(&mut self) {
        self.reinit();
        self.framer.reset();
        self.io.out.clear();
        self.hold_from = None;
        self.packet_out_start = 0;
        self.packet_left = 0;
    }

    /// Power-cycles the board (or a brown-out reset): everything `RB` does — re-initialised
    /// state, a blocked parser and any partial command or unread reply dropped with the USB
    /// connection — and a board in the bootloader or locked up by `CU,254`
    /// runs the firmware again. Simulated time and the physical motor position go on; the
    /// pen-up move every start queues runs on the next ticks.
    pub fn power_cycle(&mut self) {
        self.halt = None;
        self.reboot();
    }
}
