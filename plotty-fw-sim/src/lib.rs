//! # plotty-fw-sim
//!
//! A second, independent implementation of the EiBotBoard (EBB) firmware, written from the
//! firmware reference rather than from plotty-motion's encoder, so a shared mistake cannot
//! round-trip unnoticed. It answers what a real board answers and moves as it moves, tick by tick
//! at 25 kHz, under a simulated clock only.
//!
//! ```
//! use plotty_fw_sim::{Firmware, FirmwareVersion, NoObserver};
//!
//! let mut board = Firmware::new(FirmwareVersion::V3_0_3);
//! let mut input: &[u8] = b"EM,1,1\rSM,100,80,-80\rQS\r";
//! while !input.is_empty() {
//!     // With the boot-time FIFO depth of 1 the parser blocks on the SM until the EM has been
//!     // loaded, and stops reading: offer the rest again after running the interrupts.
//!     let n = board.receive(input);
//!     input = &input[n..];
//!     if board.is_blocked() {
//!         board.run_ticks(board.next_event_in().unwrap_or(1), &mut NoObserver);
//!     }
//! }
//! let mut replies = Vec::new();
//! board.take_output(&mut replies);
//! assert_eq!(replies, b"OK\r\nOK\r\n0,0\n\rOK\r\n");
//! while let Some(ticks) = board.next_event_in() {
//!     board.run_ticks(ticks, &mut NoObserver);
//! }
//! assert_eq!(board.status().steps, [80, -80]);
//! ```
//!
//! ## What is modelled
//!
//! * **Firmware 3.0.3** (legacy and "future" `CU,10,1` reply syntax) and **2.8.1**, chosen
//!   when the board is created ([`FirmwareVersion`]); and **2.6.5**, a board from before `LM`:
//!   2.8.1 without `LM`/`LT`/`QE`, with an immediate `EM` and `EM`/`CS` that keep the
//!   accumulators (everything else as 2.8.1, which is all the reference documents).
//! * **Parser, byte for byte**: CR/LF framing, control bytes, backspace echo, the 255-byte
//!   command limit (`!3`), ≤ 64-byte USB packets, `extract_number` (10 wrapping digits, type
//!   ranges, `!4`/`!5`/`!6`, the optional-parameter stop and the after-the-fact `!7`), `!8`,
//!   3.x checksums (`CU,54`: `!9`/`!10`), per-command error lines on 3.x and per-packet error
//!   lines (with poisoning of the rest of the packet) on 2.x, inline `!0` rate errors, 2.x
//!   "Major malfunction" messages, every reply format of the reference's §1.2 table.
//! * **Commands**: SM, XM, HM, TR, LM, L3, LT, T3, TD, ES, EM, CS, QS, QE, QM, QG, QB, QP, QC,
//!   QL/SL, QN/SN/NI/ND, QT/ST, QR/SR, QU, SP (incl. `SP,2`/`SP,3`), TP, S2, SC (1–13), SE,
//!   CU (3.x: 1, 2, 3, 4, 10, 50–54, 60, 61, 250–257; 2.x: 1, 2, 3), V, R, RB, BL, CK, CM,
//!   PI/PO/PD with a pin model of what the AxiDraw software reads (driver enables active low on
//!   RE0/RC1, MS1/MS2/MS3 on RE2/RE1/RA6, servo power RA3, pen solenoid RB4).
//! * **Motion, tick-exact**: the 25 kHz interrupt in the firmware's order for every command
//!   type; 3.x float SM/XM rates and HM/TR rates, 2.x integer rates; LM/L3 acceleration and
//!   jerk with direction reversal and steps counted both ways (3.x), 2.x negative-rate masking;
//!   LT/T3 with the extra idle tick on 3.x; accumulator clear and 0x7FFFFFFF presets; test mode
//!   `CU,251,1` accumulator preload; global step counters; command loads at the end of the
//!   finishing tick (gap-free chaining); the motion FIFO (depth `CU,4`, 1..32; 2.x one slot)
//!   with the parser blocking when it is full — [`Firmware::receive`] then consumes only part
//!   of its input and holds the packet's replies, as the real board stops servicing USB;
//!   HM and `CU,4` waiting for idle; drivers enabled at parse time by moves but by EM at
//!   execution time; 2.x delays above 65.536 s collapsing.
//! * **Pen servo**: RC servo "method 2" slots and slew from the 1 ms interrupt, first-use jump,
//!   channels allocated by RPn, servo power on at parse time with its `SR` countdown, pen state
//!   as executed, the pen-up move every reset queues, the 3.x stepper auto-disable (`CU,61`)
//!   and power-lost latch (`CU,60`).
//! * **Time**: nothing reads a clock. Idle stretches and delays are skipped in bulk with
//!   identical results ([`Firmware::set_fast_forward`] turns that off).
//!
//! ## What is not (or only partly) modelled
//!
//! * **USB timing**: a command is parsed the instant it is offered; the firmware's parse time
//!   (the "1–2 tick" start latency beyond the one-tick load, up to ~0.1 ms for float SM maths)
//!   and USB frame timing are the harness's business. Output is unlimited except that the board
//!   stops reading input while 64 KiB of replies are unread; `!2` (TX overrun) never occurs.
//! * **Hardware inputs**: limit switches (`CU,51`–`53` are stored, never trigger), the PRG
//!   button beyond a latch ([`Firmware::press_button`]), ADC readings beyond two fixed values
//!   ([`Firmware::set_analog`]), pins other than those listed above (they read their `PO` latch
//!   or the port B pull-ups).
//! * The `CU,251` binary record on the 4 Mbaud debug UART is not emitted (only its
//!   accumulator-preload semantics are modelled), nor the other test modes' UART output;
//!   `QU,4`/`QU,5` (stack high-water mark) report `000`.
//! * Commands outside the plotter's use answer `!8` as unknown: MR/MW (RAM access), C, O, I, A,
//!   AC, and 2.x's T, PC, PG.
//! * Where the sources leave a detail open, the simulator picks one and the reference's text
//!   wins over the source it summarises; notably: future-mode error lines start with `,` after
//!   the name `print_command` already printed (`SM,!4 …`, and `QS,0,0\n,!7 …` after a reply);
//!   `!5`, `!8`, `!9`, `!10` print without the name; test-mode preload sets both accumulators;
//!   the second half of a TD never touches the accumulators; 2.x division by zero (reachable
//!   only with `CU,2,0`) yields all ones.
//!
//! ## Around the firmware
//!
//! * [`board::Board`]: the firmware behind its USB link, deterministic and single-threaded:
//!   64-byte packets, parser back-pressure, simulated time advanced on request, faults, an
//!   observer (by default [`SimObserver`]: [`trace`] and [`stats`]).
//! * [`port::VirtualPort`]: an in-memory serial line (`embedded_io`, `embedded_io_async`);
//!   [`runner::Runner`] serves a board on it from a thread, as fast as possible or in real time.
//! * [`pty::PtyServer`]: the same on a pseudo-terminal, for programs that open a serial device
//!   (the `plotty-fw-sim serve` binary); [`pty::serve_board`] takes the board off USB on `RB` or
//!   an unplug fault ([`board::UsbDrop`]) and brings it back behind the same link, and
//!   [`announce`] publishes its USB identity for port listings (`contrib/axidraw`).
//! * [`fault`]: seeded, reproducible faults; [`render`]: the pen trace as SVG and PNG.
#![forbid(unsafe_code)]

mod commands;
mod fifo;
mod firmware;
mod isr;
mod motion;
mod observer;
mod parser;
mod reply;
mod servo;
mod status;
mod version;

pub mod announce;
pub mod board;
mod counters;
pub mod fault;
pub mod port;
pub mod pty;
pub mod render;
pub mod runner;
mod sim_observer;
mod simplify;
pub mod stats;
pub mod trace;

pub use board::Board;
pub use firmware::{Firmware, NicknameError};
pub use observer::{CommandKind, NoObserver, Observer};
pub use port::{PortError, VirtualPort};
pub use sim_observer::SimObserver;
pub use status::{ReplyMode, Status};
pub use version::{FirmwareVersion, ParseVersionError};

#[cfg(test)]
mod tests {
    #[test]
    fn firmware_can_move_between_threads() {
        fn send<T: Send>() {}
        send::<crate::Firmware>();
    }
}
