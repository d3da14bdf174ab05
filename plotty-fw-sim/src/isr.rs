//! The board's two interrupts under simulated time (reference §2.2, §3):
//!
//! * the 25 kHz motion interrupt, once per tick, in the firmware's order: step the current
//!   command (SM-type, LM/L3, LT/T3, their 2.x forms, servo move, delay, EM, SE), output steps
//!   to the global counters, and when the command is done load the next one from the FIFO
//!   (applying its accumulator flags) or go idle;
//! * the 1 ms interrupt every 25 ticks (at ticks 25, 50, …, after that tick's motion
//!   interrupt): RC servo slots and slew, servo power countdown, stepper auto-disable, V+ check.
//!
//! Idle stretches and the inner ticks of delays are skipped in bulk (they change nothing but a
//! counter); [`Firmware::set_fast_forward`] turns that off, and a test proves both give the same
//! results.

use crate::firmware::{Firmware, StepperTimeout};
use crate::motion::{Op, acc_flags};
use crate::observer::Observer;

const BIT31: u32 = 0x8000_0000;
/// Ticks per millisecond.
const TICKS_PER_MS: u64 = 25;

impl Firmware {
    /// Runs the 25 kHz motion interrupt (and the 1 ms servo interrupt as due) for `ticks` ticks,
    /// reporting to `observer`.
    pub fn run_ticks<O: Observer>(&mut self, ticks: u64, observer: &mut O) {
        self.deliver_events(observer);
        let end = self.tick.saturating_add(ticks);
        if self.halt == Some(crate::firmware::Halt::Bootloader) {
            // Interrupts are off in the bootloader: time passes, nothing moves.
            self.tick = end;
            self.next_ms_tick = end - end % TICKS_PER_MS + TICKS_PER_MS;
            return;
        }
        while self.tick < end {
            let boundary = self.next_ms_tick.min(end);
            self.run_until(boundary, observer);
            if self.tick == self.next_ms_tick {
                self.ms_isr(observer);
                self.next_ms_tick += TICKS_PER_MS;
            }
        }
    }

    /// Motion interrupts up to and including tick `until` (no millisecond boundary inside).
    ///
    /// With fast-forward on, the stepping commands run in specialised loops that keep the
    /// registers in locals (the same arithmetic as [`Firmware::isr_tick`], tick by tick), and
    /// idle stretches and the inner ticks of delays are skipped in bulk; with it off, every
    /// tick goes through the generic interrupt.
    fn run_until<O: Observer>(&mut self, until: u64, observer: &mut O) {
        let stretch_start = self.tick;
        while self.tick < until {
            if !self.fast_forward {
                self.isr_tick(observer);
                continue;
            }
            match self.cur.op {
                Op::Simple => self.run_simple(until, observer),
                Op::Accel => self.run_accel(until, observer),
                Op::Timed => self.run_timed(until, observer),
                Op::None
                    if !self.busy
                        && self.fifo.is_empty()
                        && self.cur.delay == 0
                        && self.pending.is_none()
                        && self.stepper_timeout != StepperTimeout::Primed =>
                {
                    // Idle: every tick would only find nothing to do.
                    self.tick = until;
                }
                // A servo move re-applies its target every tick; doing so once per stretch is
                // the same, as nothing else changes the channel within one.
                Op::Delay | Op::Servo
                    if self.cur.delay > 1
                        && (self.cur.op == Op::Delay || self.servo_applied > stretch_start) =>
                {
                    let n = u64::from(self.cur.delay - 1).min(until - self.tick);
                    // n < cur.delay fits in u32.
                    self.cur.delay -= n as u32;
                    self.tick += n;
                }
                _ => self.isr_tick(observer),
            }
        }
    }

    /// SM/XM/HM/TR ticks up to `until` or the end of the move.
    fn run_simple<O: Observer>(&mut self, until: u64, observer: &mut O) {
        let rate = [self.cur.rate[0] as u32, self.cur.rate[1] as u32];
        let d = self.cur.dir.map(|r| if r { -1i32 } else { 1 });
        self.dir_pins = self.cur.dir;
        let (mut acc, mut steps, mut active) = (self.acc, self.cur.steps, self.active);
        let (mut pos, mut motor) = (self.pos, self.motor_pos);
        let mut tick = self.tick;
        let mut done = false;
        while tick < until {
            tick += 1;
            let mut stepped = false;
            for i in 0..2 {
                if active[i] {
                    let a = acc[i].wrapping_add(rate[i]);
                    if a & BIT31 != 0 {
                        acc[i] = a & !BIT31;
                        steps[i] = steps[i].wrapping_sub(1);
                        pos[i] = pos[i].wrapping_add(d[i]);
                        motor[i] = motor[i].wrapping_add(d[i]);
                        active[i] = steps[i] != 0;
                        stepped = true;
                    } else {
                        acc[i] = a;
                    }
                }
            }
            if stepped {
                observer.on_step(tick, motor);
            }
            if !(active[0] || active[1]) {
                done = true;
                break;
            }
        }
        (self.acc, self.cur.steps, self.active) = (acc, steps, active);
        (self.pos, self.motor_pos, self.tick) = (pos, motor, tick);
        if done {
            self.command_done(observer);
        }
    }

    /// 3.x LM/L3 ticks up to `until` or the end of the move.
    fn run_accel<O: Observer>(&mut self, until: u64, observer: &mut O) {
        let jerk = self.cur.jerk;
        let (mut rate, mut accel, mut dir) = (self.cur.rate, self.cur.accel, self.cur.dir);
        let (mut acc, mut steps, mut active) = (self.acc, self.cur.steps, self.active);
        let (mut pos, mut motor) = (self.pos, self.motor_pos);
        let mut tick = self.tick;
        let mut done = false;
        while tick < until {
            tick += 1;
            let mut stepped = false;
            for i in 0..2 {
                if active[i] {
                    accel[i] = accel[i].wrapping_add(jerk[i]);
                    rate[i] = rate[i].wrapping_add(accel[i]);
                    let a = acc[i].wrapping_add(rate[i] as u32);
                    if a & BIT31 != 0 {
                        acc[i] = a & !BIT31;
                        dir[i] = rate[i] < 0;
                        let d = if dir[i] { -1 } else { 1 };
                        pos[i] = pos[i].wrapping_add(d);
                        motor[i] = motor[i].wrapping_add(d);
                        steps[i] = steps[i].wrapping_sub(1);
                        active[i] = steps[i] != 0;
                        stepped = true;
                    } else {
                        acc[i] = a;
                    }
                }
            }
            if stepped {
                observer.on_step(tick, motor);
            }
            if !(active[0] || active[1]) {
                done = true;
                break;
            }
        }
        (self.cur.rate, self.cur.accel, self.cur.dir) = (rate, accel, dir);
        self.dir_pins = dir;
        (self.acc, self.cur.steps, self.active) = (acc, steps, active);
        (self.pos, self.motor_pos, self.tick) = (pos, motor, tick);
        if done {
            self.command_done(observer);
        }
    }

    /// 3.x LT/T3 ticks up to `until` or the end of the move (including its idle tick).
    fn run_timed<O: Observer>(&mut self, until: u64, observer: &mut O) {
        let jerk = self.cur.jerk;
        let (mut rate, mut accel, mut dir) = (self.cur.rate, self.cur.accel, self.cur.dir);
        let mut acc = self.acc;
        let mut intervals = self.cur.steps[0];
        let mut active = self.active[0];
        let (mut pos, mut motor) = (self.pos, self.motor_pos);
        let mut tick = self.tick;
        let mut done = false;
        while tick < until {
            tick += 1;
            if !active {
                done = true;
                break;
            }
            intervals = intervals.wrapping_sub(1);
            active = intervals != 0;
            let mut stepped = false;
            for i in 0..2 {
                accel[i] = accel[i].wrapping_add(jerk[i]);
                rate[i] = rate[i].wrapping_add(accel[i]);
                let a = acc[i].wrapping_add(rate[i] as u32);
                if a & BIT31 != 0 {
                    acc[i] = a & !BIT31;
                    dir[i] = rate[i] < 0;
                    let d = if dir[i] { -1 } else { 1 };
                    pos[i] = pos[i].wrapping_add(d);
                    motor[i] = motor[i].wrapping_add(d);
                    stepped = true;
                } else {
                    acc[i] = a;
                }
            }
            if stepped {
                observer.on_step(tick, motor);
            }
        }
        (self.cur.rate, self.cur.accel, self.cur.dir) = (rate, accel, dir);
        self.dir_pins = dir;
        (self.acc, self.cur.steps[0], self.active[0]) = (acc, intervals, active);
        (self.pos, self.motor_pos, self.tick) = (pos, motor, tick);
        if done {
            self.command_done(observer);
        }
    }

    /// One run of the 25 kHz interrupt.
    #[inline]
    fn isr_tick<O: Observer>(&mut self, observer: &mut O) {
        self.tick += 1;
        let mut done = true;
        let mut stepped = false;
        match self.cur.op {
            Op::None => {}
            Op::Simple => {
                self.dir_pins = self.cur.dir;
                for i in 0..2 {
                    if self.active[i] {
                        let a = self.acc[i].wrapping_add(self.cur.rate[i] as u32);
                        if a & BIT31 != 0 {
                            self.acc[i] = a & !BIT31;
                            self.cur.steps[i] = self.cur.steps[i].wrapping_sub(1);
                            self.step(i, self.cur.dir[i]);
                            stepped = true;
                            if self.cur.steps[i] == 0 {
                                self.active[i] = false;
                            }
                        } else {
                            self.acc[i] = a;
                        }
                    }
                }
                done = !(self.active[0] || self.active[1]);
            }
            Op::Accel => {
                for i in 0..2 {
                    if self.active[i] {
                        stepped |= self.accel_axis_v3(i, true);
                    }
                }
                done = !(self.active[0] || self.active[1]);
            }
            Op::Timed => {
                if self.active[0] {
                    done = false;
                    self.cur.steps[0] = self.cur.steps[0].wrapping_sub(1);
                    if self.cur.steps[0] == 0 {
                        self.active[0] = false;
                    }
                    stepped |= self.accel_axis_v3(0, false);
                    stepped |= self.accel_axis_v3(1, false);
                }
            }
            Op::AccelV2 => {
                for i in 0..2 {
                    if self.active[i] {
                        stepped |= self.accel_axis_v2(i, true);
                    }
                }
                done = !(self.active[0] || self.active[1]);
            }
            Op::TimedV2 => {
                if self.active[0] {
                    self.cur.steps[0] = self.cur.steps[0].wrapping_sub(1);
                    if self.cur.steps[0] == 0 {
                        self.active[0] = false;
                    }
                    stepped |= self.accel_axis_v2(0, false);
                    stepped |= self.accel_axis_v2(1, false);
                }
                done = !self.active[0];
            }
            Op::Servo | Op::Delay => {
                if self.cur.op == Op::Servo {
                    self.exec_servo(observer);
                }
                if self.cur.delay != 0 {
                    self.cur.delay -= 1;
                    if self.cur.delay != 0 {
                        done = false;
                    }
                }
            }
            Op::Se => {
                self.engraver = (self.cur.se_state != 0, self.cur.se_power);
            }
            Op::Em => self.exec_em(observer),
        }
        if stepped {
            observer.on_step(self.tick, self.motor_pos);
        }
        if done {
            self.command_done(observer);
        }
    }

    /// One step on axis `i` in direction `reverse`.
    #[inline]
    fn step(&mut self, i: usize, reverse: bool) {
        let d = if reverse { -1 } else { 1 };
        self.pos[i] = self.pos[i].wrapping_add(d);
        self.motor_pos[i] = self.motor_pos[i].wrapping_add(d);
    }

    /// 3.x LM/LT axis update: `A += J; R += A; acc += R`, a step (in the direction of R's sign)
    /// when bit 31 sets. `count` decrements the step counter (LM) and ends the axis at zero.
    #[inline]
    fn accel_axis_v3(&mut self, i: usize, count: bool) -> bool {
        self.cur.accel[i] = self.cur.accel[i].wrapping_add(self.cur.jerk[i]);
        self.cur.rate[i] = self.cur.rate[i].wrapping_add(self.cur.accel[i]);
        let a = self.acc[i].wrapping_add(self.cur.rate[i] as u32);
        if a & BIT31 == 0 {
            self.acc[i] = a;
            return false;
        }
        self.acc[i] = a & !BIT31;
        let reverse = self.cur.rate[i] < 0;
        self.cur.dir[i] = reverse;
        self.dir_pins[i] = reverse;
        self.step(i, reverse);
        if count {
            self.cur.steps[i] = self.cur.steps[i].wrapping_sub(1);
            if self.cur.steps[i] == 0 {
                self.active[i] = false;
            }
        }
        true
    }

    /// 2.x LM/LT axis update: `R += A`, a negative R loses bit 31, `acc += R`; fixed direction.
    #[inline]
    fn accel_axis_v2(&mut self, i: usize, count: bool) -> bool {
        let mut r = self.cur.rate[i].wrapping_add(self.cur.accel[i]);
        if r < 0 {
            r &= 0x7FFF_FFFF;
        }
        self.cur.rate[i] = r;
        let a = self.acc[i].wrapping_add(r as u32);
        if a & BIT31 == 0 {
            self.acc[i] = a;
            return false;
        }
        self.acc[i] = a & !BIT31;
        self.step(i, self.cur.dir[i]);
        if count {
            self.cur.steps[i] = self.cur.steps[i].wrapping_sub(1);
            if self.cur.steps[i] == 0 {
                self.active[i] = false;
            }
        }
        true
    }

    /// The executing servo move (re-applied every tick of its delay, as the firmware does).
    fn exec_servo<O: Observer>(&mut self, observer: &mut O) {
        self.servo_applied = self.tick;
        let cmd = self.cur;
        self.servo.execute(&cmd);
        if cmd.servo_rpn == self.servo.pen_rpn {
            let up = cmd.servo_position == self.servo.min;
            if self.servo.use_solenoid {
                self.solenoid = !up;
            }
            if up != self.pen_up {
                self.pen_up = up;
                observer.on_pen(self.tick, up);
            }
        }
    }

    /// The executing EM: driver enables, microstep mode, zeroed counters and accumulators.
    fn exec_em<O: Observer>(&mut self, observer: &mut O) {
        let [e1, e2] = self.cur.em;
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
        let now = (self.drivers.enabled, self.drivers.microsteps());
        self.reported_motors = now;
        observer.on_motors(self.tick, now.0, now.1);
    }

    /// The current command is done: load the next one, or go idle.
    #[cold]
    fn command_done<O: Observer>(&mut self, observer: &mut O) {
        self.cur.op = Op::None;
        if let Some(next) = self.fifo.pop() {
            self.load(next);
            if self.stepper_timeout != StepperTimeout::Disabled {
                self.stepper_timeout = StepperTimeout::Primed;
            }
            self.busy = true;
            observer.on_command_start(self.tick, next.kind);
        } else {
            self.cur.delay = 0;
            if self.stepper_timeout == StepperTimeout::Primed {
                self.stepper_timeout = StepperTimeout::Timing {
                    ms: 1000,
                    seconds: self.stepper_timeout_s,
                };
            }
            if self.busy {
                self.busy = false;
                observer.on_idle(self.tick);
            }
        }
        if self.pending.is_some() {
            self.try_resolve();
        }
    }

    /// Copies the fields a command type uses into the current command (the others keep their
    /// stale values, which `QM`/`QG` can see) and applies its accumulator flags.
    fn load(&mut self, c: crate::motion::Command) {
        self.touch();
        self.servo_applied = 0;
        let cur = &mut self.cur;
        cur.op = c.op;
        cur.kind = c.kind;
        match c.op {
            Op::Simple | Op::Accel | Op::AccelV2 | Op::Timed | Op::TimedV2 => {
                cur.rate = c.rate;
                cur.accel = c.accel;
                cur.jerk = c.jerk;
                cur.steps = c.steps;
                cur.dir = c.dir;
                cur.delay = c.delay;
                cur.acc_flags = c.acc_flags;
                let f = c.acc_flags;
                if f & acc_flags::PRELOAD != 0 {
                    self.acc = [c.preload; 2];
                } else {
                    if f & acc_flags::CLEAR1 != 0 {
                        self.acc[0] = 0;
                    }
                    if f & acc_flags::CLEAR2 != 0 {
                        self.acc[1] = 0;
                    }
                    if f & acc_flags::NEGATE1 != 0 {
                        self.acc[0] = 0x7FFF_FFFF;
                    }
                    if f & acc_flags::NEGATE2 != 0 {
                        self.acc[1] = 0x7FFF_FFFF;
                    }
                }
                self.active = [c.steps[0] != 0, c.steps[1] != 0];
            }
            Op::Servo => {
                cur.delay = c.delay;
                cur.servo_channel = c.servo_channel;
                cur.servo_rpn = c.servo_rpn;
                cur.servo_position = c.servo_position;
                cur.servo_rate = c.servo_rate;
            }
            Op::Delay => cur.delay = c.delay,
            Op::Se => {
                cur.delay = c.delay;
                cur.se_state = c.se_state;
                cur.se_power = c.se_power;
            }
            Op::Em => cur.em = c.em,
            Op::None => {}
        }
    }

    /// The 1 ms interrupt.
    fn ms_isr<O: Observer>(&mut self, observer: &mut O) {
        self.servo.ms_tick();
        if let StepperTimeout::Timing { ms, seconds } = self.stepper_timeout {
            if ms > 1 {
                self.stepper_timeout = StepperTimeout::Timing {
                    ms: ms - 1,
                    seconds,
                };
            } else if seconds > 1 {
                self.stepper_timeout = StepperTimeout::Timing {
                    ms: 1000,
                    seconds: seconds - 1,
                };
            } else {
                self.drivers.enabled = [false; 2];
                self.stepper_timeout = StepperTimeout::Fired;
                let now = (self.drivers.enabled, self.drivers.microsteps());
                if now != self.reported_motors {
                    self.reported_motors = now;
                    observer.on_motors(self.tick, now.0, now.1);
                }
            }
        }
        // The ADC converts every 6 ms; V+ below the CU,60 threshold latches "power lost".
        self.adc_ms += 1;
        if self.adc_ms >= 6 {
            self.adc_ms = 0;
            if self.analog[1] < self.power_threshold {
                self.power_drop = true;
            }
        }
    }

    /// Ticks until something changes that a driver must wait for: the current command ends
    /// (and the next one loads, which also frees a FIFO slot for a blocked parser), the parser's
    /// wait for idle can end, servo power or the stepper auto-disable times out. `None` when
    /// nothing is pending (an LM axis with steps but neither rate nor acceleration never ends:
    /// its end is not an event either).
    pub fn next_event_in(&self) -> Option<u64> {
        if self.halt == Some(crate::firmware::Halt::Bootloader) {
            return None;
        }
        let mut best = self.ticks_to_command_end();
        let to_ms = self.next_ms_tick.saturating_sub(self.tick).max(1);
        let mut consider = |t: u64| best = Some(best.map_or(t, |b| b.min(t)));
        if let Some(ms) = self.servo.power_countdown_ms() {
            consider(to_ms + (u64::from(ms) - 1) * TICKS_PER_MS);
        }
        if let StepperTimeout::Timing { ms, seconds } = self.stepper_timeout {
            let left = u64::from(ms) + u64::from(seconds.saturating_sub(1)) * 1000;
            consider(to_ms + (left.max(1) - 1) * TICKS_PER_MS);
        }
        if self.stepper_timeout == StepperTimeout::Primed && !self.executing() {
            consider(1);
        }
        best
    }

    /// Ticks until the current command is done (1 if idle with commands queued).
    fn ticks_to_command_end(&self) -> Option<u64> {
        match self.cur.op {
            Op::None => (!self.fifo.is_empty() || self.cur.delay != 0).then_some(1),
            Op::Delay | Op::Servo => Some(u64::from(self.cur.delay.max(1))),
            Op::Em | Op::Se => Some(1),
            Op::Timed => Some(if self.active[0] {
                u64::from(self.cur.steps[0]) + 1
            } else {
                1
            }),
            Op::TimedV2 => Some(if self.active[0] {
                u64::from(self.cur.steps[0])
            } else {
                1
            }),
            Op::Simple | Op::Accel | Op::AccelV2 => {
                if let Some((epoch, end, exact)) = self.end_cache.get()
                    && epoch == self.epoch
                    && (exact || end.is_some_and(|e| e > self.tick))
                {
                    return end.map(|e| e.saturating_sub(self.tick).max(1));
                }
                let (end, exact) = match self.lookahead() {
                    Lookahead::Ends(t) => (Some(self.tick.saturating_add(t)), true),
                    Lookahead::Never => (None, true),
                    Lookahead::NotYet(t) => (Some(self.tick.saturating_add(t)), false),
                };
                self.end_cache.set(Some((self.epoch, end, exact)));
                end.map(|e| e.saturating_sub(self.tick).max(1))
            }
        }
    }

    /// When the current move ends: in closed form for constant rates, else by running a copy
    /// of the registers (in slices of [`LOOKAHEAD_SLICE`] ticks).
    fn lookahead(&self) -> Lookahead {
        let cur = &self.cur;
        let mut closed = Some(1u64);
        for i in 0..2 {
            if !self.active[i] {
                continue;
            }
            let (rate, accel, jerk) = (cur.rate[i], cur.accel[i], cur.jerk[i]);
            let steps = u64::from(cur.steps[i]);
            let constant = match cur.op {
                Op::Simple => Some((self.acc[i], rate as u32)),
                Op::Accel if accel == 0 && jerk == 0 => {
                    if rate == 0 {
                        return Lookahead::Never;
                    }
                    if rate > 0 {
                        Some((self.acc[i], rate as u32))
                    } else if self.acc[i] & BIT31 == 0 {
                        // Reverse motion mirrors forward motion on 0x7FFFFFFF − acc.
                        Some((0x7FFF_FFFF - self.acc[i], rate.unsigned_abs()))
                    } else {
                        None
                    }
                }
                Op::AccelV2 if accel == 0 => {
                    if rate == 0 {
                        return Lookahead::Never;
                    }
                    // The first tick masks a negative rate; it stays constant from then on.
                    Some((
                        self.acc[i],
                        (if rate < 0 { rate & 0x7FFF_FFFF } else { rate }) as u32,
                    ))
                }
                _ => None,
            };
            match constant {
                Some((acc, rate)) => match axis_end(acc, rate, steps) {
                    Some(t) => closed = closed.map(|c| c.max(t)),
                    None => return Lookahead::Never,
                },
                None => closed = None,
            }
        }
        if let Some(t) = closed {
            return Lookahead::Ends(t);
        }
        let mut sim = MotionCopy {
            op: cur.op,
            rate: cur.rate,
            accel: cur.accel,
            jerk: cur.jerk,
            steps: cur.steps,
            active: self.active,
            acc: self.acc,
        };
        let mut t = 0;
        while sim.active[0] || sim.active[1] {
            if t >= LOOKAHEAD_SLICE {
                return Lookahead::NotYet(t);
            }
            t += 1;
            sim.tick();
        }
        Lookahead::Ends(t.max(1))
    }
}

/// Ticks a look-ahead simulates before answering "not before then" (about 45 minutes).
const LOOKAHEAD_SLICE: u64 = 1 << 26;

/// The end of the current move as far as [`Firmware::next_event_in`] can tell.
enum Lookahead {
    /// It ends after this many ticks.
    Ends(u64),
    /// It never ends (an axis with steps but nothing to move it).
    Never,
    /// Not within this many ticks; look again then.
    NotYet(u64),
}

/// Ticks until a constant-`rate` axis starting at `acc` has taken `steps` steps: step k comes
/// at tick ceil((k·2^31 − acc) / rate) once the accumulator is below bit 31. `None` if never.
fn axis_end(mut acc: u32, rate: u32, mut steps: u64) -> Option<u64> {
    let mut t = 0u64;
    // A preloaded accumulator may start at or above bit 31: run the first tick by hand.
    if acc & BIT31 != 0 {
        t = 1;
        let a = acc.wrapping_add(rate);
        if a & BIT31 != 0 {
            steps = steps.saturating_sub(1);
            acc = a & !BIT31;
        } else {
            acc = a;
        }
    }
    if steps > 0 {
        if rate == 0 {
            return None;
        }
        let need = u128::from(steps) * u128::from(BIT31) - u128::from(acc);
        let more = need.div_ceil(u128::from(rate));
        t = t.saturating_add(u64::try_from(more).unwrap_or(u64::MAX));
    }
    Some(t)
}

/// The stepping registers, for looking ahead without touching the board.
struct MotionCopy {
    op: Op,
    rate: [i32; 2],
    accel: [i32; 2],
    jerk: [i32; 2],
    steps: [u32; 2],
    active: [bool; 2],
    acc: [u32; 2],
}

impl MotionCopy {
    fn tick(&mut self) {
        for i in 0..2 {
            if !self.active[i] {
                continue;
            }
            let rate = match self.op {
                Op::Accel => {
                    self.accel[i] = self.accel[i].wrapping_add(self.jerk[i]);
                    self.rate[i] = self.rate[i].wrapping_add(self.accel[i]);
                    self.rate[i]
                }
                _ => {
                    let mut r = self.rate[i].wrapping_add(self.accel[i]);
                    if r < 0 {
                        r &= 0x7FFF_FFFF;
                    }
                    self.rate[i] = r;
                    r
                }
            };
            let a = self.acc[i].wrapping_add(rate as u32);
            if a & BIT31 != 0 {
                self.acc[i] = a & !BIT31;
                self.steps[i] = self.steps[i].wrapping_sub(1);
                if self.steps[i] == 0 {
                    self.active[i] = false;
                }
            } else {
                self.acc[i] = a;
            }
        }
    }
}
