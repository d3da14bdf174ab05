//! What a simulated board reports while it runs: the [`Observer`] callbacks that
//! [`Firmware::run_ticks`](crate::Firmware::run_ticks) makes (monomorphised, no dynamic dispatch
//! on the 25 kHz path) and the [`CommandKind`] of each queued command.
//!
//! Tick numbers are [`Firmware::now_ticks`](crate::Firmware::now_ticks) values: tick `k` is the
//! k-th run of the 25 kHz interrupt since power-on (40 µs each), and a callback with `tick == k`
//! happened during that run.

/// The kind of a command that went through the motion FIFO, named after what the host sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    /// `SM` with at least one non-zero step count.
    Sm,
    /// `XM` with at least one non-zero mixed step count.
    Xm,
    /// `HM` (one move, or either part of a 2.x "dog-leg").
    Hm,
    /// `TR` (3.x test command: HM-style relative move).
    Tr,
    /// `LM`.
    Lm,
    /// `L3` (3.x).
    L3,
    /// `LT`.
    Lt,
    /// `T3` (3.x).
    T3,
    /// Either of the two T3 moves a `TD` queues (3.x).
    Td,
    /// `SM`/`XM` with zero steps on both axes: a pure delay.
    Delay,
    /// A queued servo move: `SP,0`/`SP,1`, `TP`, `S2`, `SC,1`, and the pen-up `R` queues.
    Servo,
    /// `EM` (queued since 2.8.0).
    Em,
    /// `SE` with its queue flag set.
    Se,
}

/// Receives what the simulated board does, tick by tick. Every method defaults to a no-op, so
/// an observer implements only what it needs; [`NoObserver`] implements none.
///
/// Calls arrive in tick order. Effects of commands parsed by
/// [`Firmware::receive`](crate::Firmware::receive) that act immediately (servo moves by
/// `SP,2`/`SP,3`, motor enables switched on at parse time by moves, `ES,1`, `R`) are delivered at
/// the start of the next [`Firmware::run_ticks`](crate::Firmware::run_ticks) call, stamped with
/// the tick at which they happened.
pub trait Observer {
    /// A step was taken on either axis (or both) during `tick`; `position` is the physical motor
    /// position after it, in steps since power-on. Unlike the global step counters `QS` reports
    /// (and [`Status::steps`](crate::Status::steps)), it is never zeroed by `CS`, `EM` or a reset,
    /// so consecutive positions always differ by the steps actually taken.
    fn on_step(&mut self, tick: u64, position: [i32; 2]) {
        let _ = (tick, position);
    }

    /// The executed pen state changed (a pen-pin servo move executed, or an immediate pen-up):
    /// `up` is what `QP` reports from now on.
    fn on_pen(&mut self, tick: u64, up: bool) {
        let _ = (tick, up);
    }

    /// A queued command was loaded from the FIFO at the end of `tick`; its first interrupt tick
    /// is `tick + 1`.
    fn on_command_start(&mut self, tick: u64, kind: CommandKind) {
        let _ = (tick, kind);
    }

    /// The last command finished during `tick` and the FIFO is empty: the board is idle.
    fn on_idle(&mut self, tick: u64) {
        let _ = tick;
    }

    /// The stepper driver enables or the microstep mode changed, or an `EM` executed (which also
    /// zeroes the `QS` step counters). `microsteps` is the resolution the MS pins select (16, 8,
    /// 4, 2 or 1 microsteps per full step), as `QE` decodes it.
    fn on_motors(&mut self, tick: u64, enabled: [bool; 2], microsteps: u8) {
        let _ = (tick, enabled, microsteps);
    }
}

/// An [`Observer`] that ignores everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoObserver;

impl Observer for NoObserver {}

impl<O: Observer + ?Sized> Observer for &mut O {
    fn on_step(&mut self, tick: u64, position: [i32; 2]) {
        (**self).on_step(tick, position);
    }
    fn on_pen(&mut self, tick: u64, up: bool) {
        (**self).on_pen(tick, up);
    }
    fn on_command_start(&mut self, tick: u64, kind: CommandKind) {
        (**self).on_command_start(tick, kind);
    }
    fn on_idle(&mut self, tick: u64) {
        (**self).on_idle(tick);
    }
    fn on_motors(&mut self, tick: u64, enabled: [bool; 2], microsteps: u8) {
        (**self).on_motors(tick, enabled, microsteps);
    }
}
