//! Queries and small utilities (reference §1.2 table, §1.4, §5.4): QS, QE, QM, QG, QB, QC,
//! QL/SL, QN/SN/NI/ND, QT/ST, QU, V, PI/PO/PD (with the pin model the AxiDraw software reads),
//! CK and SE.

use crate::firmware::{Firmware, Flow};
use crate::motion::{Command, Op};
use crate::observer::CommandKind;
use crate::parser::{Ext, Need, Params, Ty};
use crate::reply::ErrorBit;

const REQ: Need = Need::Required;
const OPT: Need = Need::Optional;

/// Port letter → index (A..E).
fn port_index(port: i64) -> Option<usize> {
    match u8::try_from(port).ok()? {
        b'A' => Some(0),
        b'B' => Some(1),
        b'C' => Some(2),
        b'D' => Some(3),
        b'E' => Some(4),
        _ => None,
    }
}

impl Firmware {
    /// `process_QM`: (executing, motor1 moving, motor2 moving, FIFO non-empty).
    fn motion_flags(&self) -> [bool; 4] {
        let executing = self.executing();
        [
            executing,
            executing && self.cur.steps[0] != 0,
            executing && self.cur.steps[1] != 0,
            !self.fifo.is_empty(),
        ]
    }

    /// The level `PI` reads on port `port` (0 = A … 4 = E), pin `pin`. Modelled pins: RA3 servo
    /// power, RA6/RE1/RE2 MS3/MS2/MS1, RE0/RC1 driver enables (active low), RB4 pen solenoid,
    /// RB3 engraver, port B servo outputs (low between pulses) and pull-ups (high) on port B
    /// inputs. Other pins read their `PO` latch when made outputs by `PD`, else low.
    pub(crate) fn read_pin(&self, port: usize, pin: u8) -> bool {
        let ms = self.drivers.ms;
        match (port, pin) {
            (0, 3) => self.servo.power,
            (0, 6) => ms[2],
            (4, 2) => ms[0],
            (4, 1) => ms[1],
            (4, 0) => !self.drivers.enabled[0],
            (2, 1) => !self.drivers.enabled[1],
            (1, 3) => self.engraver.0 && self.engraver.1 > 0,
            (1, 4) => self.solenoid,
            _ => {
                let bit = 1u8 << (pin & 7);
                let tris = self.tris.get(port).copied().unwrap_or(0xFF);
                let lat = self.lat.get(port).copied().unwrap_or(0);
                if port == 1 && self.servo.drives(pin + 3) {
                    false
                } else if tris & bit == 0 {
                    lat & bit != 0
                } else {
                    port == 1
                }
            }
        }
    }

    /// `PO` on a modelled pin drives the modelled function.
    fn write_pin(&mut self, port: usize, pin: u8, high: bool) {
        let bit = 1u8 << (pin & 7);
        if let Some(l) = self.lat.get_mut(port) {
            if high { *l |= bit } else { *l &= !bit }
        }
        match (port, pin) {
            (0, 3) => self.servo.power = high,
            (0, 6) => self.drivers.ms[2] = high,
            (4, 2) => self.drivers.ms[0] = high,
            (4, 1) => self.drivers.ms[1] = high,
            (4, 0) => self.drivers.enabled[0] = !high,
            (2, 1) => self.drivers.enabled[1] = !high,
            (1, 4) => self.solenoid = high,
            _ => return,
        }
        self.motors_changed();
    }

    pub(super) fn cmd_qs(&mut self) -> Flow {
        self.io.header(false, true);
        self.io.fmt(format_args!("{},{}", self.pos[0], self.pos[1]));
        self.io.query_end(true);
        Flow::Done
    }

    pub(super) fn cmd_qe(&mut self) -> Flow {
        self.io.header(false, true);
        let ms = self.drivers.microsteps();
        let on = |e: bool| if e { ms } else { 0 };
        let (m1, m2) = if self.drivers.config == 2 {
            (0, 0)
        } else {
            (on(self.drivers.enabled[0]), on(self.drivers.enabled[1]))
        };
        self.io.fmt(format_args!("{m1},{m2}"));
        self.io.query_end(true);
        Flow::Done
    }

    pub(super) fn cmd_qm(&mut self) -> Flow {
        self.io.header(true, true);
        let [e, m1, m2, f] = self.motion_flags().map(u8::from);
        self.io.fmt(format_args!("{e},{m1},{m2},{f}"));
        self.io.rev_end();
        Flow::Done
    }

    pub(super) fn cmd_qg(&mut self) -> Flow {
        self.io.header(false, true);
        let [e, m1, m2, f] = self.motion_flags();
        let mut r = u8::from(f) | u8::from(m2) << 1 | u8::from(m1) << 2 | u8::from(e) << 3;
        r |= u8::from(self.pen_up) << 4;
        r |= u8::from(self.button) << 5;
        if self.version.is_v3() {
            r |= u8::from(std::mem::take(&mut self.power_drop)) << 6;
            r |= u8::from(self.limit_triggered) << 7;
        } else {
            r |= u8::from(self.read_pin(1, 2)) << 6;
            r |= u8::from(self.read_pin(1, 5)) << 7;
        }
        self.io.fmt(format_args!("{r:02X}"));
        self.io.norm_end();
        self.button = false;
        Flow::Done
    }

    pub(super) fn cmd_qb(&mut self) -> Flow {
        self.io.header(false, true);
        self.io.fmt(format_args!("{}", u8::from(self.button)));
        self.button = false;
        self.io.query_end(false);
        Flow::Done
    }

    pub(super) fn cmd_qc(&mut self) -> Flow {
        self.io.header(false, true);
        let [a, b] = self.analog;
        if self.version.is_v3() {
            self.io.fmt(format_args!("{a},{b}"));
        } else {
            self.io.fmt(format_args!("{a:04},{b:04}"));
        }
        self.io.query_end(false);
        Flow::Done
    }

    pub(super) fn cmd_ql(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, true);
        if !self.version.is_v3() {
            // One signed-char Layer variable, printed %03i.
            self.io.fmt(format_args!("{:03}", self.layer[0] as i8));
            self.io.query_end(false);
            return Flow::Done;
        }
        let index = p.u8(&mut self.io, OPT).unwrap_or(0);
        if self.io.failed() {
            return Flow::Done;
        }
        let v = self.layer[usize::from(index.min(31))];
        self.io.fmt(format_args!("{v}"));
        self.io.query_end(false);
        Flow::Done
    }

    pub(super) fn cmd_sl(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        let value = p.u8(&mut self.io, REQ).unwrap_or(0);
        let index = if self.version.is_v3() {
            p.u8(&mut self.io, OPT).unwrap_or(0)
        } else {
            0
        };
        if self.io.failed() {
            return Flow::Done;
        }
        self.layer[usize::from(index.min(31))] = value;
        self.io.ok_end();
        Flow::Done
    }

    pub(super) fn cmd_qn(&mut self) -> Flow {
        self.io.header(false, true);
        if self.version.is_v3() {
            self.io.fmt(format_args!("{}", self.node));
        } else {
            self.io.fmt(format_args!("{:010}", self.node));
        }
        self.io.query_end(false);
        Flow::Done
    }

    pub(super) fn cmd_sn(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        // SN stores only a good value but replies OK either way.
        if let Some(v) = p.u32(&mut self.io, REQ) {
            self.node = v;
        }
        self.io.ok_end();
        Flow::Done
    }

    pub(super) fn cmd_ni(&mut self) -> Flow {
        self.io.header(false, false);
        if self.node < 0xFFFF_FFFE {
            self.node += 1;
        }
        self.io.ok_end();
        Flow::Done
    }

    pub(super) fn cmd_nd(&mut self) -> Flow {
        self.io.header(false, false);
        self.node = self.node.saturating_sub(1);
        self.io.ok_end();
        Flow::Done
    }

    pub(super) fn cmd_qt(&mut self) -> Flow {
        self.io.header(false, true);
        let name = self.nickname;
        if (33..128).contains(&name[0]) {
            let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            self.io.text(&name[..end]);
        }
        self.io.query_end(false);
        Flow::Done
    }

    pub(super) fn cmd_st(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        let name = p.string(&mut self.io, 16);
        // The flash is rewritten whatever happened.
        self.nickname = [0; 16];
        self.nickname[..name.len()].copy_from_slice(&name);
        self.io.ok_end();
        Flow::Done
    }

    pub(super) fn cmd_qu(&mut self, p: &mut Params) -> Flow {
        self.io.header(true, true);
        let n = p.u8(&mut self.io, REQ).unwrap_or(0);
        if self.io.failed() {
            return Flow::Done;
        }
        match n {
            1 => self.io.fmt(format_args!("1,{:02X}", self.limit_portb)),
            2 => self
                .io
                .fmt(format_args!("2,{}", crate::fifo::Fifo::MAX_DEPTH)),
            3 => self.io.fmt(format_args!("3,{}", self.fifo.depth())),
            // The stack high-water mark of a PIC is not modelled: reported as 000.
            4 | 5 => self.io.fmt(format_args!("{n},000")),
            6 => self.io.fmt(format_args!("6,{}", self.fifo.len())),
            60 => self.io.fmt(format_args!("60,{}", self.power_threshold)),
            61 => self.io.fmt(format_args!("61,{}", self.stepper_timeout_s)),
            200 => self
                .io
                .fmt(format_args!("200,{},{}", self.acc[0], self.acc[1])),
            _ => {
                self.io.set_error(ErrorBit::Invalid);
                return Flow::Done;
            }
        }
        self.io.norm_end();
        self.io.ok_end();
        Flow::Done
    }

    pub(super) fn cmd_v(&mut self) -> Flow {
        self.io.header(false, true);
        self.io.fmt(format_args!(
            "EBBv13_and_above EB Firmware Version {}",
            self.version
        ));
        self.io.norm_end();
        Flow::Done
    }

    /// `PI,<port>,<pin>` (reply `PI,<0|1>`).
    pub(super) fn cmd_pi(&mut self, p: &mut Params) -> Flow {
        self.io.header(true, true);
        let io = &mut self.io;
        let port = p.extract(io, Ty::UcaseAscii, REQ).ok().unwrap_or(0);
        let pin = p.u8(io, REQ).unwrap_or(0);
        if self.io.failed() {
            return Flow::Done;
        }
        let Some(port) = port_index(port).filter(|_| pin <= 7) else {
            self.io.set_error(ErrorBit::Invalid);
            return Flow::Done;
        };
        let v = u8::from(self.read_pin(port, pin));
        self.io.fmt(format_args!("{v}"));
        self.io.norm_end();
        Flow::Done
    }

    pub(super) fn cmd_po(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        let io = &mut self.io;
        let port = p.extract(io, Ty::UcaseAscii, REQ).ok().unwrap_or(0);
        let pin = p.u8(io, REQ).unwrap_or(0);
        let value = p.u8(io, REQ).unwrap_or(0);
        if self.io.failed() {
            return Flow::Done;
        }
        let Some(port) = port_index(port).filter(|_| pin <= 7 && value <= 1) else {
            self.io.set_error(ErrorBit::Invalid);
            return Flow::Done;
        };
        self.write_pin(port, pin, value == 1);
        self.io.ok_end();
        Flow::Done
    }

    pub(super) fn cmd_pd(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        let io = &mut self.io;
        let port = p.extract(io, Ty::UcaseAscii, REQ).ok().unwrap_or(0);
        let pin = p.u8(io, REQ).unwrap_or(0);
        let dir = p.u8(io, REQ).unwrap_or(0);
        if self.io.failed() {
            return Flow::Done;
        }
        if dir > 1 || pin > 7 {
            self.io.set_error(ErrorBit::Invalid);
            return Flow::Done;
        }
        let Some(port) = port_index(port) else {
            self.io.set_error(ErrorBit::Invalid);
            return Flow::Done;
        };
        let bit = 1u8 << pin;
        if dir == 1 {
            self.tris[port] |= bit
        } else {
            self.tris[port] &= !bit
        }
        self.io.ok_end();
        Flow::Done
    }

    /// CK, the parser self-test: echoes eight parameters of every type. Values that failed to
    /// parse print as 0 (the firmware prints uninitialised memory) and missing characters as
    /// nothing.
    pub(super) fn cmd_ck(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        self.io.norm_end();
        let io = &mut self.io;
        let types = [Ty::Char, Ty::UChar, Ty::Int, Ty::UInt, Ty::Long, Ty::ULong];
        let v = types.map(|t| p.extract(io, t, REQ).ok().unwrap_or(0));
        let c7 = p.extract(io, Ty::Ascii, REQ).ok();
        let c8 = p.extract(io, Ty::UcaseAscii, REQ).ok();
        for (i, x) in v.iter().enumerate() {
            self.io.fmt(format_args!("Param{}={x}", i + 1));
            self.io.norm_end();
        }
        for (i, c) in [(7, c7), (8, c8)] {
            self.io.fmt(format_args!("Param{i}="));
            if let Some(c) = c.and_then(|c| u8::try_from(c).ok()) {
                self.io.text(&[c]);
            }
            self.io.norm_end();
        }
        let ulong = v[5] as u32;
        self.io.fmt(format_args!("Param6={ulong:08X}"));
        self.io.norm_end();
        self.io.fmt(format_args!("Param6={ulong:X}"));
        self.io.norm_end();
        self.io.ok_end();
        Flow::Done
    }

    /// SE: engraver PWM on RB3, immediate or (third parameter 1) queued.
    pub(super) fn cmd_se(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        let io = &mut self.io;
        let state = p.u8(io, REQ).unwrap_or(0).min(1);
        let power_ext = p.extract(io, Ty::UInt, OPT);
        let queued = p.u8(io, OPT).unwrap_or(0).min(1);
        if self.io.failed() {
            return Flow::Done;
        }
        let power = (power_ext.ok().unwrap_or(0) as u16).min(1023);
        let power = if state == 1 && power_ext == Ext::Missing {
            512
        } else {
            power
        };
        self.engraver_power = power;
        if queued == 0 {
            self.engraver = (state == 1, power);
            self.io.ok_end();
            return Flow::Done;
        }
        let mut cmd = Command::new(Op::Se, CommandKind::Se);
        cmd.se_state = state;
        cmd.se_power = power;
        self.queue(&[cmd])
    }
}
