//! The RC servo outputs ("method 2", reference §3) and the servo power switch.
//!
//! Time is cut into `slots` slots of `slot_ms` milliseconds (8 × 3 ms by default); at each slot
//! boundary the 1 ms interrupt moves to the next channel and, if that channel is on and not at
//! its target, moves its pulse width toward the target by its rate (or jumps there when the rate
//! is 0). Pulse widths are in 1/12 µs units (12000 = 1 ms). A channel whose width is 0 is off;
//! the first move of a channel jumps straight to its target. The slew arithmetic is the
//! firmware's 16-bit signed arithmetic, wrap-around included.
//!
//! The pen is the channel on `pen_rpn` (RP4 = RB1 by default); up is `min` (`SC,4`, default
//! 22565), down is `max` (`SC,5`, default 15302), both rates 400. Servo power (RA3) is switched
//! on by pen commands and switched off when its millisecond countdown (`SR`, 60 s) expires.

use crate::motion::{Command, Op};
use crate::observer::CommandKind;
use crate::version::FirmwareVersion;

/// Channels the arrays hold (2.x allows 24 slots; 3.x 8).
const CHANNELS: usize = 24;
/// RPn of RB4, the pen-lift solenoid output; a servo on it turns the solenoid function off.
const SOLENOID_RPN: u8 = 7;
/// Default pen servo output RB1 (RP4); its moves also drive servo power.
pub(crate) const PEN_RPN_DEFAULT: u8 = 4;

/// Servo channels, pen servo settings and servo power.
#[derive(Debug, Clone)]
pub(crate) struct Servo {
    value: [u16; CHANNELS],
    target: [u16; CHANNELS],
    rate: [u16; CHANNELS],
    rpn: [u8; CHANNELS],
    max_channels: u8,
    slots: u8,
    slot_ms: u8,
    ms_counter: u8,
    ptr: u8,
    /// `SC,4`: pen-up pulse width (`g_servo2_min`).
    pub(crate) min: u16,
    /// `SC,5`: pen-down pulse width (`g_servo2_max`).
    pub(crate) max: u16,
    /// `SC,11`.
    pub(crate) rate_up: u16,
    /// `SC,12`.
    pub(crate) rate_down: u16,
    /// RPn of the pen servo output.
    pub(crate) pen_rpn: u8,
    /// `SC,1`: the servo is used for the pen.
    pub(crate) use_rc: bool,
    /// `SC,1`: the RB4 solenoid output is used for the pen.
    pub(crate) use_solenoid: bool,
    /// Servo power pin RA3.
    pub(crate) power: bool,
    power_counter_ms: u32,
    /// `SR`: countdown reload in ms (0 disables the countdown).
    pub(crate) power_reload_ms: u32,
}

/// What `RCServo2_Move` decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MovePlan {
    /// Nothing to queue (no free channel, channel beyond the slots, or position 0 which
    /// switched the channel off at once).
    Nothing,
    /// Queue this servo command.
    Queue(Command),
    /// The move was applied immediately (not queued).
    Applied,
}

impl Servo {
    /// The state `RCServo2_Init` leaves (before the pen-up move it queues).
    pub(crate) fn new(version: FirmwareVersion) -> Self {
        Self {
            value: [0; CHANNELS],
            target: [0; CHANNELS],
            rate: [0; CHANNELS],
            rpn: [0; CHANNELS],
            max_channels: if version.is_v3() { 8 } else { 24 },
            slots: 8,
            slot_ms: 3,
            ms_counter: 0,
            ptr: 0,
            min: 22565,
            max: 15302,
            rate_up: 400,
            rate_down: 400,
            pen_rpn: PEN_RPN_DEFAULT,
            use_rc: true,
            use_solenoid: true,
            power: false,
            power_counter_ms: 0,
            power_reload_ms: 60_000,
        }
    }

    /// `SC,8`: number of slots (clamped to the channel count).
    pub(crate) fn set_slots(&mut self, slots: u16) {
        self.slots = u8::try_from(slots.min(u16::from(self.max_channels))).unwrap_or(8);
    }

    /// `SC,9`: slot length in ms (clamped to 6).
    pub(crate) fn set_slot_ms(&mut self, ms: u16) {
        self.slot_ms = u8::try_from(ms.min(6)).unwrap_or(6);
    }

    /// Switches servo power on and restarts its countdown.
    pub(crate) fn power_on(&mut self) {
        self.power = true;
        self.power_counter_ms = self.power_reload_ms;
    }

    /// Switches servo power off and stops its countdown.
    pub(crate) fn power_off(&mut self) {
        self.power = false;
        self.power_counter_ms = 0;
    }

    /// Milliseconds until servo power switches off, if it will.
    pub(crate) fn power_countdown_ms(&self) -> Option<u32> {
        (self.power_counter_ms > 0).then_some(self.power_counter_ms)
    }

    /// `RCServo2_get_channel_from_RPn`: the 1-based channel already on `rpn`, else the first
    /// free one (a channel is free while its RPn is 0), else 0.
    pub(crate) fn channel_for(&self, rpn: u8) -> u8 {
        let n = usize::from(self.max_channels);
        let found = self.rpn[..n]
            .iter()
            .position(|&r| r == rpn)
            .or_else(|| self.rpn[..n].iter().position(|&r| r == 0));
        found.map_or(0, |i| (i + 1) as u8)
    }

    /// `RCServo2_Move`: a new target for the channel on `rpn`. Position 0 switches the channel
    /// off at once; otherwise the move is queued (`queue`) or applied now (when `use_rc`).
    /// Returns whether an immediate move on the pen pin happened (the pen is then up).
    pub(crate) fn plan_move(
        &mut self,
        position: u16,
        rpn: u8,
        rate: u16,
        delay_ms: u16,
        queue: bool,
    ) -> MovePlan {
        let channel = self.channel_for(rpn);
        if channel == 0 {
            return MovePlan::Nothing;
        }
        let i = usize::from(channel - 1);
        if position == 0 {
            self.switch_off(i);
            return MovePlan::Nothing;
        }
        if channel > self.slots || rpn > 24 {
            return MovePlan::Nothing;
        }
        if rpn == SOLENOID_RPN {
            self.use_solenoid = false;
        }
        if queue {
            let mut c = Command::new(Op::Servo, CommandKind::Servo);
            let delay = 25 * u32::from(delay_ms);
            c.delay = if delay > 25 * 0x10000 { 0 } else { delay };
            c.servo_channel = channel;
            c.servo_rpn = rpn;
            c.servo_position = position;
            c.servo_rate = rate;
            return MovePlan::Queue(c);
        }
        if self.use_rc {
            if rpn == PEN_RPN_DEFAULT {
                self.power_on();
            }
            self.set_channel(i, rpn, position, rate);
        }
        MovePlan::Applied
    }

    /// The interrupt's execution of a queued servo move (only when `use_rc`).
    pub(crate) fn execute(&mut self, cmd: &Command) {
        if !self.use_rc {
            return;
        }
        let i = usize::from(cmd.servo_channel.wrapping_sub(1));
        if i >= CHANNELS {
            return;
        }
        if cmd.servo_position == 0 {
            self.switch_off(i);
        } else {
            self.set_channel(i, cmd.servo_rpn, cmd.servo_position, cmd.servo_rate);
        }
    }

    fn set_channel(&mut self, i: usize, rpn: u8, position: u16, rate: u16) {
        if let (Some(r), Some(t), Some(p), Some(v)) = (
            self.rate.get_mut(i),
            self.target.get_mut(i),
            self.rpn.get_mut(i),
            self.value.get_mut(i),
        ) {
            *r = rate;
            *t = position;
            *p = rpn;
            if *v == 0 {
                *v = position;
            }
        }
    }

    fn switch_off(&mut self, i: usize) {
        if i < CHANNELS {
            self.rate[i] = 0;
            self.target[i] = 0;
            self.rpn[i] = 0;
            self.value[i] = 0;
        }
    }

    /// Switches off whatever channel drives `rpn` (a pen pin change by `SP`).
    pub(crate) fn switch_off_rpn(&mut self, rpn: u8) {
        let _ = self.plan_move(0, rpn, 0, 0, false);
    }

    /// The 1 ms interrupt's servo work: slot advance with slew, and the power countdown.
    pub(crate) fn ms_tick(&mut self) {
        self.ms_counter = self.ms_counter.wrapping_add(1);
        if self.ms_counter >= self.slot_ms {
            self.ms_counter = 0;
            self.ptr = self.ptr.wrapping_add(1);
            if self.ptr >= self.slots {
                self.ptr = 0;
            }
            let i = usize::from(self.ptr);
            if i < CHANNELS && self.value[i] != 0 && self.target[i] != self.value[i] {
                let (value, target, rate) = (self.value[i], self.target[i], self.rate[i]);
                self.value[i] = if rate == 0 {
                    target
                } else {
                    // 16-bit signed arithmetic of the C18 code, wrap-around included.
                    let diff = target.wrapping_sub(value) as i16;
                    let step = rate as i16;
                    if diff > 0 {
                        if diff > step {
                            value.wrapping_add(rate)
                        } else {
                            target
                        }
                    } else if diff.wrapping_neg() > step {
                        value.wrapping_sub(rate)
                    } else {
                        target
                    }
                };
            }
        }
        if self.power_counter_ms > 0 {
            self.power_counter_ms -= 1;
            if self.power_counter_ms == 0 {
                self.power = false;
            }
        }
    }

    /// (current pulse width, target) of the channel on the pen pin; zeros if none.
    pub(crate) fn pen_channel(&self) -> (u16, u16) {
        let n = usize::from(self.max_channels);
        self.rpn[..n]
            .iter()
            .position(|&r| r == self.pen_rpn)
            .map_or((0, 0), |i| (self.value[i], self.target[i]))
    }

    /// True if a channel is driving `rpn` (its pin is an output then).
    pub(crate) fn drives(&self, rpn: u8) -> bool {
        let n = usize::from(self.max_channels);
        self.rpn[..n]
            .iter()
            .zip(&self.value[..n])
            .any(|(&r, &v)| r == rpn && v != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servo() -> Servo {
        Servo::new(FirmwareVersion::V3_0_3)
    }

    #[test]
    fn first_use_jumps_then_slews_once_per_channel_period() {
        let mut s = servo();
        let MovePlan::Queue(up) = s.plan_move(22565, 4, 400, 0, true) else {
            panic!("expected a queued move");
        };
        assert_eq!(up.servo_channel, 1);
        s.execute(&up);
        assert_eq!(s.pen_channel(), (22565, 22565));
        let MovePlan::Queue(down) = s.plan_move(15302, 4, 400, 146, true) else {
            panic!("expected a queued move");
        };
        assert_eq!(down.delay, 146 * 25);
        s.execute(&down);
        // Channel 1 is serviced at every 8th slot boundary (24 ms).
        let mut widths = Vec::new();
        for _ in 0..(24 * 3) {
            s.ms_tick();
            widths.push(s.pen_channel().0);
        }
        assert_eq!(widths[23], 22565 - 400, "first slew at the 24th ms");
        assert_eq!(widths[22], 22565);
        assert_eq!(widths[47], 22565 - 800);
        // 7263 units at 400 per 24 ms: 19 periods.
        for _ in 0..(24 * 17) {
            s.ms_tick();
        }
        assert_eq!(s.pen_channel().0, 15302);
    }

    #[test]
    fn channels_allocate_by_rpn_and_position_zero_frees() {
        let mut s = servo();
        let MovePlan::Queue(a) = s.plan_move(12000, 4, 0, 0, true) else {
            panic!()
        };
        s.execute(&a);
        let MovePlan::Queue(b) = s.plan_move(12000, 5, 0, 0, true) else {
            panic!()
        };
        assert_eq!(b.servo_channel, 2);
        s.execute(&b);
        assert_eq!(s.channel_for(4), 1);
        assert_eq!(s.plan_move(0, 4, 0, 0, true), MovePlan::Nothing);
        assert_eq!(s.channel_for(9), 1, "freed channel is reused");
        let MovePlan::Queue(c) = s.plan_move(12000, 9, 0, 0, true) else {
            panic!()
        };
        s.execute(&c);
        // Beyond the slot count nothing is queued: the next free channel is 3, 2 slots run.
        s.set_slots(2);
        assert_eq!(s.plan_move(12000, 6, 0, 0, true), MovePlan::Nothing);
    }

    #[test]
    fn slew_uses_wrapping_16_bit_arithmetic() {
        let mut s = servo();
        s.set_slots(1);
        s.set_slot_ms(1);
        let MovePlan::Queue(a) = s.plan_move(1, 4, 0, 0, true) else {
            panic!()
        };
        s.execute(&a);
        let mut far = a;
        far.servo_position = 60000;
        far.servo_rate = 100;
        s.execute(&far);
        s.ms_tick();
        // 60000 − 1 is negative as an INT16, so the firmware moves down (and wraps).
        assert_eq!(s.pen_channel().0, 1u16.wrapping_sub(100));
    }

    #[test]
    fn power_countdown() {
        let mut s = servo();
        s.power_reload_ms = 3;
        s.power_on();
        assert_eq!(s.power_countdown_ms(), Some(3));
        s.ms_tick();
        s.ms_tick();
        assert!(s.power);
        s.ms_tick();
        assert!(!s.power);
        assert_eq!(s.power_countdown_ms(), None);
    }
}
