//! Motion commands (reference §1.4 "Motion", §2.3–§2.6): SM, XM, HM, TR, LM, L3, LT, T3, TD,
//! ES, EM, CS, and the HM / `CU,4` actions that run once motion is idle.

use crate::firmware::{Firmware, Flow, IdleAction, Wait};
use crate::motion::{
    AxisRegs, Command, Op, SmRate, V2Clamp, acc_flags, accel_axis_v2, accel_axis_v3, rate_move_v3,
    sm_rate_v2, sm_rate_v3,
};
use crate::observer::CommandKind;
use crate::parser::{Ext, Need, Params, Ty};
use crate::reply::ErrorBit;

const REQ: Need = Need::Required;
const OPT: Need = Need::Optional;

/// 2.x integer division, all ones on division by zero (as in [`crate::motion`]).
fn div(a: u32, b: u32) -> u32 {
    a.checked_div(b).unwrap_or(u32::MAX)
}

/// One parsed LM/L3/LT/T3 (3.x), before it becomes a FIFO command.
struct LowLevel {
    timed: bool,
    rate: [i32; 2],
    steps: [i32; 2],
    accel: [i32; 2],
    jerk: [i32; 2],
    intervals: u32,
    clear: Ext,
    kind: CommandKind,
}

impl Firmware {
    pub(super) fn cmd_sm(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        let io = &mut self.io;
        let dur = p.u32(io, REQ).unwrap_or(0);
        let s1 = p.i32(io, REQ).unwrap_or(0);
        let s2 = p.i32(io, OPT).unwrap_or(0);
        let clear = p.u32(io, OPT).unwrap_or(0);
        if self.io.failed() {
            return Flow::Done;
        }
        if self.version.is_v3() {
            self.simple_move_v3(dur, [s1, s2], clear, CommandKind::Sm)
        } else {
            self.simple_move_v2(dur, [s1, s2], clear, CommandKind::Sm)
        }
    }

    pub(super) fn cmd_xm(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        let io = &mut self.io;
        let dur = p.u32(io, REQ).unwrap_or(0);
        let a = p.i32(io, REQ).unwrap_or(0);
        let b = p.i32(io, REQ).unwrap_or(0);
        let clear = p.u32(io, OPT).unwrap_or(0);
        let steps = [a.wrapping_add(b), a.wrapping_sub(b)];
        if self.version.is_v3() {
            // 3.x quirk: XM does not look at parse errors before moving (`XM,100` queues a
            // 100 ms delay, replies OK, then `!4`).
            self.simple_move_v3(dur, steps, clear.min(3), CommandKind::Xm)
        } else {
            if self.io.failed() {
                return Flow::Done;
            }
            self.simple_move_v2(dur, steps, clear, CommandKind::Xm)
        }
    }

    /// 3.x `process_simple_motor_move_fp`.
    fn simple_move_v3(&mut self, dur: u32, steps: [i32; 2], clear: u32, kind: CommandKind) -> Flow {
        if self.limit_checks && (dur == 0 || clear > 3) {
            self.io.set_error(ErrorBit::Invalid);
            return Flow::Done;
        }
        let flags = (clear & 3) as u8;
        if steps == [0, 0] {
            let mut cmd = Command::delay(25 * dur.min(100_000));
            cmd.acc_flags = flags;
            return self.queue(&[cmd]);
        }
        self.auto_enable_motors();
        let mut cmd = Command::new(Op::Simple, kind);
        cmd.acc_flags = flags;
        for (i, s) in steps.into_iter().enumerate() {
            let n = s.unsigned_abs();
            cmd.dir[i] = s < 0;
            cmd.steps[i] = n;
            if n == 0 {
                continue;
            }
            let rate = match sm_rate_v3(n, dur) {
                SmRate::Ok(r) => r,
                SmRate::TooHigh if !self.limit_checks => 0x8000_0000,
                SmRate::TooSlow if !self.limit_checks => 1,
                bad => {
                    let what = if bad == SmRate::TooHigh {
                        "high"
                    } else {
                        "slow"
                    };
                    if self.io.future {
                        self.io.text(b",");
                    }
                    self.io
                        .fmt(format_args!("!0 Err: <axis{}> step rate too {what}", i + 1));
                    self.io.rev_end();
                    self.io.norm_end();
                    return Flow::Done;
                }
            };
            cmd.rate[i] = rate as i32;
        }
        self.queue(&[cmd])
    }

    /// 2.x SM/XM parse-time limits, then `process_SM`.
    fn simple_move_v2(&mut self, dur: u32, steps: [i32; 2], clear: u32, kind: CommandKind) -> Flow {
        if self.limit_checks {
            if dur == 0 {
                self.io.set_error(ErrorBit::Invalid);
                return Flow::Done;
            }
            if dur > 0xFF_FFFF {
                self.io
                    .text(b"!0 Err: <move_duration> larger than 16777215 ms.\n\r");
                return Flow::Done;
            }
            for (i, s) in steps.iter().enumerate() {
                let n = s.unsigned_abs();
                let axis = i + 1;
                let msg = if n > 0xFF_FFFF {
                    Some("larger than 16777215 steps.")
                } else if div(n, dur) > 25 {
                    Some("step rate > 25K steps/second.")
                } else if dur / 1311 >= n && n != 0 {
                    Some("step rate < 1.31Hz.")
                } else {
                    None
                };
                if let Some(msg) = msg {
                    self.io.fmt(format_args!("!0 Err: <axis{axis}> {msg}\n\r"));
                    return Flow::Done;
                }
            }
        }
        let flags = if clear > 3 { 0 } else { clear as u8 };
        let cmd = self.process_sm_v2(dur, steps, flags, kind);
        self.queue(&[cmd])
    }

    /// 2.x `process_SM`: the integer rates (printing any "Major malfunction" clamp).
    fn process_sm_v2(
        &mut self,
        dur: u32,
        steps: [i32; 2],
        flags: u8,
        kind: CommandKind,
    ) -> Command {
        if steps == [0, 0] {
            let ticks = 25u32.wrapping_mul(dur);
            // The 2.8.1 interrupt zeroes delay counters above 25 × 65536 on their first tick.
            return Command::delay(if ticks > 25 * 0x10000 { 0 } else { ticks });
        }
        self.drivers.enabled = [true; 2];
        self.motors_changed();
        let mut cmd = Command::new(Op::Simple, kind);
        cmd.acc_flags = flags;
        for (i, s) in steps.into_iter().enumerate() {
            let n = s.unsigned_abs();
            cmd.dir[i] = s < 0;
            cmd.steps[i] = n;
            if n == 0 {
                continue;
            }
            let (rate, note) = sm_rate_v2(n, dur);
            match note {
                Some(V2Clamp::TooHigh(q)) => self.io.fmt(format_args!(
                    "Major malfunction Axis{} StepCounter too high : {q}\n\r",
                    i + 1
                )),
                Some(V2Clamp::Zero) => self.io.fmt(format_args!(
                    "Major malfunction Axis{} StepCounter zero\n\r",
                    i + 1
                )),
                None => {}
            }
            cmd.rate[i] = rate as i32;
        }
        cmd
    }

    pub(super) fn cmd_hm(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        let io = &mut self.io;
        let rate = p.u32(io, REQ).unwrap_or(0);
        // Target positions came with 2.7.0; before, they are left over (`!7`).
        let target = if self.version.has_lm() {
            [p.i32(io, OPT).unwrap_or(0), p.i32(io, OPT).unwrap_or(0)]
        } else {
            [0, 0]
        };
        if self.io.failed() {
            return Flow::Done;
        }
        if self.version.is_v3() {
            let Some(rate) = self.checked_step_rate(rate) else {
                return Flow::Done;
            };
            Flow::Block(Wait::Idle(IdleAction::HomeV3 { rate, target }))
        } else {
            if self.limit_checks && rate == 0 {
                self.io.set_error(ErrorBit::Invalid);
                return Flow::Done;
            }
            Flow::Block(Wait::Idle(IdleAction::HomeV2 { rate, target }))
        }
    }

    /// 3.x HM/TR step rate: `!1` outside 1..=25000 with limit checks, else clamped.
    fn checked_step_rate(&mut self, rate: u32) -> Option<u32> {
        if self.limit_checks && !(1..=25_000).contains(&rate) {
            self.io.set_error(ErrorBit::StepRate);
            return None;
        }
        Some(rate.clamp(1, 25_000))
    }

    pub(super) fn cmd_tr(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        let io = &mut self.io;
        let rate = p.u32(io, REQ).unwrap_or(0);
        let s1 = p.i32(io, REQ).unwrap_or(0);
        let s2 = p.i32(io, REQ).unwrap_or(0);
        let clear = p.u32(io, OPT).unwrap_or(0);
        if self.io.failed() {
            return Flow::Done;
        }
        let Some(rate) = self.checked_step_rate(rate) else {
            return Flow::Done;
        };
        let mut cmd = self.rate_move(rate, [s1, s2], CommandKind::Tr);
        cmd.acc_flags = clear.min(3) as u8;
        self.queue(&[cmd])
    }

    /// An HM/TR-style SM-type move of `steps` with the major axis at `rate` steps/s.
    fn rate_move(&mut self, rate: u32, steps: [i32; 2], kind: CommandKind) -> Command {
        self.auto_enable_motors();
        let mut cmd = Command::new(Op::Simple, kind);
        let abs = [steps[0].unsigned_abs(), steps[1].unsigned_abs()];
        let rates = rate_move_v3(rate, abs);
        for i in 0..2 {
            cmd.dir[i] = steps[i] < 0;
            cmd.steps[i] = abs[i];
            cmd.rate[i] = rates[i] as i32;
        }
        cmd
    }

    /// What HM and `CU,4` do once motion is idle.
    pub(crate) fn idle_action(&mut self, action: IdleAction) -> Flow {
        match action {
            IdleAction::FifoDepth(depth) => {
                self.fifo.set_depth(depth);
                self.io.ok_end();
                Flow::Done
            }
            IdleAction::HomeV3 { rate, target } => {
                let steps = [
                    target[0].wrapping_sub(self.pos[0]),
                    target[1].wrapping_sub(self.pos[1]),
                ];
                if steps == [0, 0] {
                    self.io.ok_end();
                    return Flow::Done;
                }
                let cmd = self.rate_move(rate, steps, CommandKind::Hm);
                self.queue(&[cmd])
            }
            IdleAction::HomeV2 { rate, target } => self.home_v2(rate, target),
        }
    }

    /// 2.x HM at idle: one move, or a "dog-leg" when the minor axis would be too slow.
    fn home_v2(&mut self, rate: u32, target: [i32; 2]) -> Flow {
        let s = [
            target[0].wrapping_sub(self.pos[0]),
            target[1].wrapping_sub(self.pos[1]),
        ];
        let a = [
            if s[0] < 0 { s[0].wrapping_neg() } else { s[0] },
            if s[1] < 0 { s[1].wrapping_neg() } else { s[1] },
        ];
        if a[0] > 0xFF_FFFF || a[1] > 0xFF_FFFF {
            self.io
                .text(b"!0 Err: steps to home larger than 16,777,215.\n\r");
            return Flow::Done;
        }
        let major = usize::from(a[0] <= a[1]);
        let minor = 1 - major;
        let ms = |n: i32| div((n as u32).wrapping_mul(1000), rate);
        let mut dur = ms(a[major]);
        if rate / 1000 > 25 {
            self.io.fmt(format_args!(
                "!0 Err: HM <axis{}> step rate > 25K steps/second.\n\r",
                major + 1
            ));
            return Flow::Done;
        }
        let mut parts = Vec::with_capacity(2);
        let mut last = s;
        if (dur / 1311) as i32 >= a[minor] && a[minor] != 0 {
            // First bring the minor axis home, moving the major one as far in its own direction.
            let x = if s[major] > 0 {
                a[minor]
            } else {
                a[minor].wrapping_neg()
            };
            let mut first = s;
            first[major] = x;
            parts.push(self.process_sm_v2(ms(a[minor]), first, 3, CommandKind::Hm));
            last[major] = s[major].wrapping_sub(x);
            last[minor] = 0;
            dur = ms(a[major]);
        }
        parts.push(self.process_sm_v2(dur.max(10), last, 3, CommandKind::Hm));
        self.queue(&parts)
    }

    pub(super) fn cmd_lm(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        if !self.version.is_v3() {
            return self.lm_v2(p);
        }
        let io = &mut self.io;
        let mut v = [0i32; 6];
        for x in &mut v {
            *x = p.i32(io, REQ).unwrap_or(0);
        }
        let clear = p.extract(io, Ty::ULong, OPT);
        if self.io.failed() {
            return Flow::Done;
        }
        let [r1, s1, a1, r2, s2, a2] = v;
        let idle = |r: i32, a: i32, s: i32| (r == 0 && a == 0) || s == 0;
        if self.limit_checks && idle(r1, a1, s1) && idle(r2, a2, s2) {
            self.io.set_error(ErrorBit::Invalid);
            return Flow::Done;
        }
        self.low_level_v3(LowLevel {
            timed: false,
            rate: [r1, r2],
            steps: [s1, s2],
            accel: [a1, a2],
            jerk: [0, 0],
            intervals: 0,
            clear,
            kind: CommandKind::Lm,
        })
    }

    pub(super) fn cmd_l3(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        let io = &mut self.io;
        let mut v = [0i32; 8];
        for x in &mut v {
            *x = p.i32(io, REQ).unwrap_or(0);
        }
        let clear = p.extract(io, Ty::ULong, OPT);
        if self.io.failed() {
            return Flow::Done;
        }
        let [r1, s1, a1, j1, r2, s2, a2, j2] = v;
        // The firmware's axis-2 test looks at Jerk1 (source typo), reproduced.
        let idle1 = (r1 == 0 && a1 == 0 && j1 == 0) || s1 == 0;
        let idle2 = (r2 == 0 && a2 == 0 && j1 == 0) || s2 == 0;
        if self.limit_checks && idle1 && idle2 {
            self.io.set_error(ErrorBit::Invalid);
            return Flow::Done;
        }
        self.low_level_v3(LowLevel {
            timed: false,
            rate: [r1, r2],
            steps: [s1, s2],
            accel: [a1, a2],
            jerk: [j1, j2],
            intervals: 0,
            clear,
            kind: CommandKind::L3,
        })
    }

    pub(super) fn cmd_lt(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        let io = &mut self.io;
        let intervals = p.u32(io, REQ).unwrap_or(0);
        let mut v = [0i32; 4];
        for x in &mut v {
            *x = p.i32(io, REQ).unwrap_or(0);
        }
        let clear = p.extract(io, Ty::ULong, OPT);
        if self.io.failed() {
            return Flow::Done;
        }
        let [r1, a1, r2, a2] = v;
        if !self.version.is_v3() {
            return self.lt_v2(
                intervals,
                [r1, r2],
                [a1, a2],
                clear.ok().unwrap_or(0) as u32,
            );
        }
        if self.limit_checks && intervals == 0 {
            self.io.set_error(ErrorBit::Invalid);
            return Flow::Done;
        }
        self.low_level_v3(LowLevel {
            timed: true,
            rate: [r1, r2],
            steps: [0, 0],
            accel: [a1, a2],
            jerk: [0, 0],
            intervals,
            clear,
            kind: CommandKind::Lt,
        })
    }

    pub(super) fn cmd_t3(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        let io = &mut self.io;
        let intervals = p.u32(io, REQ).unwrap_or(0);
        let mut v = [0i32; 6];
        for x in &mut v {
            *x = p.i32(io, REQ).unwrap_or(0);
        }
        let clear = p.extract(io, Ty::ULong, OPT);
        if self.io.failed() {
            return Flow::Done;
        }
        if self.limit_checks && intervals == 0 {
            self.io.set_error(ErrorBit::Invalid);
            return Flow::Done;
        }
        let [r1, a1, j1, r2, a2, j2] = v;
        self.low_level_v3(LowLevel {
            timed: true,
            rate: [r1, r2],
            steps: [0, 0],
            accel: [a1, a2],
            jerk: [j1, j2],
            intervals,
            clear,
            kind: CommandKind::T3,
        })
    }

    /// TD: two T3s, `(Intervals, RateA, 0, +Jerk, Clear)` then `(Intervals, RateB, Accel,
    /// −Jerk)` without accumulator changes.
    pub(super) fn cmd_td(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        let io = &mut self.io;
        let intervals = p.u32(io, REQ).unwrap_or(0);
        let mut v = [0i32; 8];
        for x in &mut v {
            *x = p.i32(io, REQ).unwrap_or(0);
        }
        let clear = p.extract(io, Ty::ULong, OPT);
        if self.io.failed() {
            return Flow::Done;
        }
        if self.limit_checks && intervals == 0 {
            self.io.set_error(ErrorBit::Invalid);
            return Flow::Done;
        }
        let [r1a, r1b, a1, j1, r2a, r2b, a2, j2] = v;
        let first = self.build_low_level_v3(&LowLevel {
            timed: true,
            rate: [r1a, r2a],
            steps: [0, 0],
            accel: [0, 0],
            jerk: [j1, j2],
            intervals,
            clear,
            kind: CommandKind::Td,
        });
        let second = self.build_low_level_v3(&LowLevel {
            timed: true,
            rate: [r1b, r2b],
            steps: [0, 0],
            accel: [a1, a2],
            jerk: [j1.wrapping_neg(), j2.wrapping_neg()],
            intervals,
            clear: Ext::Missing,
            kind: CommandKind::Td,
        });
        match (first, second) {
            (Some(a), Some(mut b)) => {
                b.acc_flags = 0;
                self.auto_enable_motors();
                self.queue(&[a, b])
            }
            _ => Flow::Done,
        }
    }

    /// 3.x `process_low_level_move`, then queue.
    fn low_level_v3(&mut self, ll: LowLevel) -> Flow {
        match self.build_low_level_v3(&ll) {
            Some(cmd) => {
                self.auto_enable_motors();
                self.queue(&[cmd])
            }
            None => Flow::Done,
        }
    }

    /// The 3.x parse-time transform of LM/L3/LT/T3 into a FIFO command; `None` after `!6`.
    fn build_low_level_v3(&mut self, ll: &LowLevel) -> Option<Command> {
        let test = self.test_mode();
        let mut clear = ll.clear.ok().map_or(0, |v| v as u32);
        if !test && clear > 3 {
            clear = 3;
        }
        let mut rate = ll.rate;
        let mut steps = ll.steps;
        let mut accel = ll.accel;
        if !ll.timed {
            // Legacy direction mode: negative steps need a non-negative rate, and flip all.
            for i in 0..2 {
                if steps[i] < 0 {
                    if rate[i] < 0 {
                        self.io.set_error(ErrorBit::Invalid);
                        return None;
                    }
                    steps[i] = steps[i].wrapping_neg();
                    rate[i] = rate[i].wrapping_neg();
                    accel[i] = accel[i].wrapping_neg();
                }
            }
        }
        let regs: [AxisRegs; 2] = [0, 1].map(|i| accel_axis_v3(rate[i], accel[i], ll.jerk[i]));
        let op = if ll.timed { Op::Timed } else { Op::Accel };
        let mut cmd = Command::new(op, ll.kind);
        let clear_flag = |i: usize| {
            let neg = regs[i].negative_start;
            match (i, neg) {
                (0, true) => acc_flags::NEGATE1,
                (0, false) => acc_flags::CLEAR1,
                (_, true) => acc_flags::NEGATE2,
                (_, false) => acc_flags::CLEAR2,
            }
        };
        if test {
            if ll.clear.is_ok() {
                cmd.acc_flags = acc_flags::PRELOAD;
                cmd.preload = clear;
            } else {
                cmd.acc_flags = clear_flag(0) | clear_flag(1);
            }
        } else {
            for i in 0..2 {
                if clear & (1 << i) != 0 {
                    cmd.acc_flags |= clear_flag(i);
                }
            }
        }
        for (i, r) in regs.iter().enumerate() {
            cmd.rate[i] = r.rate;
            cmd.accel[i] = r.accel;
            cmd.jerk[i] = r.jerk;
        }
        cmd.steps = if ll.timed {
            [ll.intervals, 0]
        } else {
            [steps[0] as u32, steps[1] as u32]
        };
        Some(cmd)
    }

    /// 2.x LM: unsigned rates (clamped to 2^31 − 1), direction from the sign of Steps.
    fn lm_v2(&mut self, p: &mut Params) -> Flow {
        let io = &mut self.io;
        let mut rate = [0u32; 2];
        let mut steps = [0i32; 2];
        let mut accel = [0i32; 2];
        for i in 0..2 {
            rate[i] = p.u32(io, REQ).unwrap_or(0);
            steps[i] = p.i32(io, REQ).unwrap_or(0);
            accel[i] = p.i32(io, REQ).unwrap_or(0);
        }
        let clear = p.u32(io, OPT).unwrap_or(0);
        if self.io.failed() {
            return Flow::Done;
        }
        let mut cmd = Command::new(Op::AccelV2, CommandKind::Lm);
        for i in 0..2 {
            cmd.dir[i] = steps[i] < 0;
            cmd.steps[i] = steps[i].unsigned_abs();
            cmd.rate[i] = accel_axis_v2(rate[i], accel[i]);
            cmd.accel[i] = accel[i];
        }
        cmd.acc_flags = (clear & 3) as u8;
        self.drivers.enabled = [true; 2];
        self.motors_changed();
        self.queue(&[cmd])
    }

    /// 2.x LT: |Rate| with direction from its sign, exactly `intervals` ticks.
    fn lt_v2(&mut self, intervals: u32, rate: [i32; 2], accel: [i32; 2], clear: u32) -> Flow {
        if self.limit_checks && (intervals == 0 || rate == [0, 0]) {
            self.io.set_error(ErrorBit::Invalid);
            return Flow::Done;
        }
        let mut cmd = Command::new(Op::TimedV2, CommandKind::Lt);
        for i in 0..2 {
            cmd.dir[i] = rate[i] < 0;
            cmd.rate[i] = accel_axis_v2(rate[i].unsigned_abs(), accel[i]);
            cmd.accel[i] = accel[i];
        }
        cmd.steps = [intervals, 0];
        cmd.acc_flags = (clear & 3) as u8;
        self.drivers.enabled = [true; 2];
        self.motors_changed();
        self.queue(&[cmd])
    }

    pub(super) fn cmd_es(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, true);
        let disable = p.u8(&mut self.io, OPT).unwrap_or(0);
        if self.io.failed() {
            return Flow::Done;
        }
        self.touch();
        if self.version.is_v3() {
            let moving = matches!(self.cur.op, Op::Simple | Op::Accel | Op::Timed);
            let interrupted = moving || !self.fifo.is_empty();
            self.cur.op = Op::None;
            self.fifo.clear();
            self.es_disable(disable);
            self.io.fmt(format_args!("{}", u8::from(interrupted)));
            self.io.query_end(true);
        } else {
            // 2.8.1 only aborts motor moves (SM/XM/HM/LM): not LT, delays or servo moves.
            let is_move = |op: Op| matches!(op, Op::Simple | Op::AccelV2);
            let front_move = self.fifo.front().is_some_and(|c| is_move(c.op));
            let interrupted = front_move || is_move(self.cur.op);
            let mut fifo_steps = [0u32; 2];
            if front_move && let Some(c) = self.fifo.pop() {
                fifo_steps = c.steps;
            }
            let mut remaining = [0u32; 2];
            if is_move(self.cur.op) {
                self.cur.op = Op::None;
                remaining = self.cur.steps;
                self.cur.steps = [0; 2];
            }
            self.es_disable(disable);
            self.io.fmt(format_args!(
                "{},{},{},{},{}\n\r",
                u8::from(interrupted),
                fifo_steps[0],
                fifo_steps[1],
                remaining[0],
                remaining[1]
            ));
            self.io.ok_end();
        }
        Flow::Done
    }

    fn es_disable(&mut self, disable: u8) {
        if disable == 1 {
            self.drivers.enabled = [false; 2];
            self.motors_changed();
        }
    }

    pub(super) fn cmd_em(&mut self, p: &mut Params) -> Flow {
        self.io.header(false, false);
        let e1 = p.extract(&mut self.io, Ty::UChar, REQ);
        if self.io.failed() || !e1.is_ok() {
            return Flow::Done;
        }
        let e2 = p.extract(&mut self.io, Ty::UChar, OPT);
        // Since 2.8.0 a missing second parameter makes EM return without a reply.
        let (Some(e1), Some(e2)) = (e1.ok(), e2.ok()) else {
            return Flow::Done;
        };
        if self.io.failed() {
            return Flow::Done;
        }
        if !self.version.em_is_queued() {
            // Before 2.8.0 EM acts at once, like the other immediate commands.
            self.em_now([e1 as u8, e2 as u8]);
            self.io.ok_end();
            return Flow::Done;
        }
        let mut cmd = Command::new(Op::Em, CommandKind::Em);
        cmd.em = [e1 as u8, e2 as u8];
        self.queue(&[cmd])
    }

    pub(super) fn cmd_cs(&mut self) -> Flow {
        self.io.header(false, false);
        self.pos = [0; 2];
        if self.version.em_clears_accumulators() {
            self.acc = [0; 2];
        }
        self.touch();
        self.io.ok_end();
        Flow::Done
    }
}
