//! Pen and servo commands (reference §3): SP (incl. 3.x `SP,2`/`SP,3`), TP, S2, SC, SR, QR, QP.
//! Servo power switches on at parse time; queued moves execute in the motion interrupt.

use crate::firmware::{Firmware, Flow};
use crate::motion::Op;
use crate::parser::{Need, Params};
use crate::reply::ErrorBit;
use crate::servo::MovePlan;

const REQ: Need = Need::Required;
const OPT: Need = Need::Optional;

/// `DEFAULT_EBB_SERVO_PORTB_PIN`: RB1.
const DEFAULT_PEN_PIN: u8 = 1;

impl Firmware {
    /// `process_SP`: power on, then queue the pen servo to its up or down position.
    fn process_sp(&mut self, up: bool, duration_ms: u16) -> Flow {
        let (position, rate) = if up {
            (self.servo.min, self.servo.rate_up)
        } else {
            (self.servo.max, self.servo.rate_down)
        };
        self.servo.power_on();
        match self
            .servo
            .plan_move(position, self.servo.pen_rpn, rate, duration_ms, true)
        {
            MovePlan::Queue(cmd) => self.queue(&[cmd]),
            MovePlan::Nothing | MovePlan::Applied => {
                self.io.ok_end();
                Flow::Done
            }
        }
    }

    pub(super) fn cmd_sp(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        let io = &mut self.io;
        let state = p.u8(io, REQ).unwrap_or(0);
        let duration = p.u16(io, OPT).unwrap_or(0);
        let pin = p.u8(io, OPT).unwrap_or(DEFAULT_PEN_PIN);
        if self.io.failed() {
            return Flow::Done;
        }
        let pin = if pin > 7 { DEFAULT_PEN_PIN } else { pin };
        let state = state.min(if self.version.is_v3() { 3 } else { 1 });
        let rpn = pin + 3;
        if self.servo.pen_rpn != rpn {
            // Moving the pen to another pin switches the old pin's channel off.
            self.servo.switch_off_rpn(self.servo.pen_rpn);
            self.servo.pen_rpn = rpn;
        }
        match state {
            0 => self.process_sp(false, duration),
            1 => self.process_sp(true, duration),
            _ => {
                // 3.x SP,2 / SP,3: raise now, bypassing the FIFO.
                if state == 3 {
                    self.servo.max = self.servo.min;
                    let (min, pen) = (self.servo.min, self.servo.pen_rpn);
                    for c in self.fifo.iter_mut() {
                        if c.op == Op::Servo && c.servo_rpn == pen {
                            c.servo_position = min;
                        }
                    }
                }
                self.servo.power_on();
                let (min, pen, rate) = (self.servo.min, self.servo.pen_rpn, self.servo.rate_up);
                if self.servo.plan_move(min, pen, rate, 0, false) == MovePlan::Applied
                    && self.servo.use_rc
                {
                    if self.servo.use_solenoid {
                        self.solenoid = false;
                    }
                    self.set_pen_now(true);
                }
                self.io.ok_end();
                Flow::Done
            }
        }
    }

    pub(super) fn cmd_tp(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        let duration = p.u16(&mut self.io, OPT).unwrap_or(0);
        if self.io.failed() {
            return Flow::Done;
        }
        self.process_sp(!self.pen_up, duration)
    }

    pub(super) fn cmd_s2(&mut self, p: &mut Params) -> Flow {
        // S2 extracts its parameters before printing its name.
        let io = &mut self.io;
        let position = p.u16(io, OPT).unwrap_or(0);
        let rpn = p.u8(io, OPT).unwrap_or(0);
        let rate = p.u16(io, OPT).unwrap_or(0);
        let delay = p.u16(io, OPT).unwrap_or(0);
        self.io.header(false, false);
        if self.io.failed() {
            return Flow::Done;
        }
        if rpn > 24 {
            self.io.set_error(ErrorBit::Invalid);
            return Flow::Done;
        }
        match self.servo.plan_move(position, rpn, rate, delay, true) {
            MovePlan::Queue(cmd) => self.queue(&[cmd]),
            MovePlan::Nothing | MovePlan::Applied => {
                self.io.ok_end();
                Flow::Done
            }
        }
    }

    pub(super) fn cmd_sc(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        let io = &mut self.io;
        let which = p.u8(io, REQ).unwrap_or(0);
        let value = p.u16(io, REQ).unwrap_or(0);
        if self.io.failed() {
            return Flow::Done;
        }
        match which {
            1 => {
                match value {
                    0 => {
                        self.servo.use_solenoid = true;
                        self.servo.use_rc = false;
                        self.servo.switch_off_rpn(self.servo.pen_rpn);
                    }
                    1 => {
                        self.servo.use_solenoid = false;
                        self.servo.use_rc = true;
                    }
                    _ => {
                        self.servo.use_solenoid = true;
                        self.servo.use_rc = true;
                    }
                }
                // Re-send the pen to its current state with the new mechanism.
                return self.process_sp(self.pen_up, 0);
            }
            2 if value <= 2 => self.drivers.config = value as u8,
            4 => self.servo.min = value,
            5 => self.servo.max = value,
            8 => self.servo.set_slots(value),
            9 => self.servo.set_slot_ms(value),
            10 => {
                self.servo.rate_up = value;
                self.servo.rate_down = value;
            }
            11 => self.servo.rate_up = value,
            12 => self.servo.rate_down = value,
            13 => self.alt_pause = value != 0,
            _ => {}
        }
        self.io.ok_end();
        Flow::Done
    }

    pub(super) fn cmd_sr(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        let io = &mut self.io;
        let timeout = p.u32(io, REQ).unwrap_or(0);
        let state = p.u8(io, OPT);
        if self.io.failed() {
            return Flow::Done;
        }
        self.servo.power_reload_ms = timeout;
        if let Some(state) = state {
            self.servo.power = state != 0;
        }
        self.io.ok_end();
        Flow::Done
    }

    pub(super) fn cmd_qr(&mut self) -> Flow {
        self.io.header(false, true);
        self.io.fmt(format_args!("{}", u8::from(self.servo.power)));
        // 2.8.1 ends this one with \r\n, 3.x legacy with \n\r.
        self.io.query_end(self.version.is_v3());
        Flow::Done
    }

    pub(super) fn cmd_qp(&mut self) -> Flow {
        self.io.header(false, true);
        self.io.fmt(format_args!("{}", u8::from(self.pen_up)));
        self.io.query_end(true);
        Flow::Done
    }
}
