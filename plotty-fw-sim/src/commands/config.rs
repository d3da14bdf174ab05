//! Configuration and reset commands: CU (3.x: 1, 2, 3, 4, 10, 50–54, 60, 61, 250–257; 2.x: 1,
//! 2, 3), R, RB, BL and the disabled CM.

use crate::firmware::{Firmware, Flow, Halt, IdleAction, StepperTimeout, Wait};
use crate::parser::{Need, Params};
use crate::reply::ErrorBit;

const REQ: Need = Need::Required;

impl Firmware {
    pub(super) fn cmd_cu(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        let io = &mut self.io;
        let n = p.u16(io, REQ).unwrap_or(0);
        let v = p.i16(io, REQ).unwrap_or(0);
        if self.io.failed() {
            return Flow::Done;
        }
        let bool01 = (v == 0 || v == 1).then_some(v == 1);
        let ok = if self.version.is_v3() {
            match n {
                1 => bool01.map(|b| self.io.ack = b).is_some(),
                2 => bool01.map(|b| self.limit_checks = b).is_some(),
                3 => bool01.map(|b| self.red_led = b).is_some(),
                // Waits for idle; values above 32 clamp, lower ones are cast to a byte.
                4 => return Flow::Block(Wait::Idle(IdleAction::FifoDepth(v.min(32) as u8))),
                10 => bool01.map(|b| self.io.future = b).is_some(),
                50 => {
                    self.auto_enable = v != 0;
                    true
                }
                51 => {
                    self.limit_mask = (v & 0xFF) as u8;
                    if self.limit_mask == 0 {
                        self.limit_triggered = false;
                    }
                    true
                }
                52 => {
                    self.limit_target = (v & 0xFF) as u8;
                    true
                }
                53 => {
                    self.limit_replies = v == 1;
                    true
                }
                54 => {
                    self.checksums = v == 1;
                    true
                }
                60 => {
                    self.power_threshold = (v & 0x3FF) as u16;
                    true
                }
                61 => {
                    self.set_stepper_timeout(v as u16);
                    true
                }
                254 => {
                    // The ISR-timing lock-up loop: the parser never returns.
                    self.halt = Some(Halt::LockUp);
                    return Flow::Gone;
                }
                250..=257 => bool01
                    .map(|b| {
                        let bit = 1u8 << (n - 250);
                        if b {
                            self.test_flags |= bit
                        } else {
                            self.test_flags &= !bit
                        }
                    })
                    .is_some(),
                _ => false,
            }
        } else {
            match n {
                1 => bool01.map(|b| self.io.ack = b).is_some(),
                2 => bool01.map(|b| self.limit_checks = b).is_some(),
                3 => bool01.map(|b| self.red_led = b).is_some(),
                // 2.x ignores parameters it does not know.
                _ => true,
            }
        };
        if !ok {
            self.io.set_error(ErrorBit::Invalid);
            // 3.x stops there; 2.x still replies OK (its !6 follows at the end of the packet).
            if self.version.is_v3() {
                return Flow::Done;
            }
        }
        self.io.ok_end();
        Flow::Done
    }

    /// `CU,61,s`: stepper auto-disable after `s` seconds of idle (0 = off).
    fn set_stepper_timeout(&mut self, seconds: u16) {
        self.stepper_timeout_s = seconds;
        self.stepper_timeout = if seconds == 0 {
            StepperTimeout::Disabled
        } else {
            match self.stepper_timeout {
                StepperTimeout::Timing { .. } => StepperTimeout::Timing { ms: 1000, seconds },
                StepperTimeout::Fired => StepperTimeout::Fired,
                StepperTimeout::Disabled | StepperTimeout::Primed => StepperTimeout::Primed,
            }
        };
    }

    /// R: 3.x replies before re-initialising (in the old reply mode), 2.x after.
    pub(super) fn cmd_r(&mut self) -> Flow {
        if self.version.is_v3() {
            self.io.header(false, false);
            self.io.ok_end();
            self.reinit();
        } else {
            self.reinit();
            self.io.ok_end();
        }
        Flow::Done
    }

    /// RB: reboot, no reply (the USB connection drops).
    pub(super) fn cmd_rb(&mut self) -> Flow {
        self.reboot();
        self.reboots += 1;
        Flow::Gone
    }

    /// BL: jump to the bootloader, no reply; the EBB firmware is gone until a power cycle.
    pub(super) fn cmd_bl(&mut self) -> Flow {
        self.halt = Some(Halt::Bootloader);
        self.io.out.clear();
        Flow::Gone
    }

    /// CM (3.x): compiled out of the released firmware.
    pub(super) fn cmd_cm(&mut self) -> Flow {
        self.io.text(b"CM command disabled in this build");
        self.io.norm_end();
        Flow::Done
    }
}
