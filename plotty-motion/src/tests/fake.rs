//! A behavioural fake EiBotBoard for the session tests: its own small parser, the reply
//! dialects (3.x legacy and future, 2.x), a motion FIFO of configurable depth whose full state
//! blocks the parser (reference §1.5), timed execution of moves, delays, servo moves and `EM`,
//! and knobs for faults (silence, error replies, garbage, a button press).
//!
//! Moves run for the ticks their parameters give (SM: `25·D`; LM: the step module's per-tick
//! oracle once it is available, else a plain per-tick model here), and the position during a
//! move is interpolated along its straight path — good enough for the session's logic. The
//! tick-exact cross-check belongs to the simulator (`tests/e2e/session_sim.rs`).

use std::collections::VecDeque;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use crate::ebb::FirmwareVersion;
use crate::time::{Duration, Instant};

/// What the fake answers to `V`.
#[derive(Clone, Debug)]
pub(crate) enum Identity {
    Ebb(FirmwareVersion),
    /// Not an EBB: answers every line with this text.
    Other(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum JobKind {
    Move,
    Delay,
    Servo { up: bool },
    Motors { mode: u8 },
}

#[derive(Clone, Copy, Debug)]
struct Job {
    kind: JobKind,
    ticks: u64,
    from: [i64; 2],
    to: [i64; 2],
    /// Index of the command in `received`.
    index: usize,
}

#[derive(Clone, Copy, Debug)]
struct Running {
    job: Job,
    start: Instant,
}

/// A job that ran, for assertions.
#[derive(Clone, Debug)]
pub(crate) struct Ran {
    pub(crate) command: String,
    pub(crate) start: Instant,
    pub(crate) end: Instant,
    pub(crate) aborted: bool,
}

#[derive(Debug)]
pub(crate) struct Fake {
    pub(crate) identity: Identity,
    future: bool,
    depth: usize,
    fifo: VecDeque<Job>,
    current: Option<Running>,
    /// Position after the last finished (or aborted) job.
    pos: [i64; 2],
    input: Vec<u8>,
    /// A queued command waiting for a FIFO slot: the parser is stuck on it.
    blocked: Option<(String, Job)>,
    output: Vec<u8>,
    now: Instant,
    pub(crate) button: bool,
    pub(crate) pen_up: bool,
    pub(crate) motor_mode: u8,
    /// Raw supply reading `QC` answers (V+; the AxiDraw warns under 250).
    pub(crate) voltage: u16,
    /// The 3.x power-lost latch (`QG` bit 6, cleared by the read); tests set it.
    pub(crate) power_lost: bool,
    /// `CU,60`: the latch's threshold (0 at boot).
    pub(crate) power_threshold: u16,
    /// Length of the board's tick in ns (40 000; more for a board whose clock runs slow).
    pub(crate) tick_ns: u64,
    // Faults.
    /// Answer nothing from now on.
    pub(crate) silent: bool,
    /// Answer `!6` to the n-th command with this name (counting from 1).
    pub(crate) reject: Option<(&'static str, usize)>,
    /// Bytes to emit right after the reply to the n-th command (counting from 1).
    pub(crate) garbage_after: Option<(usize, Vec<u8>)>,
    /// Bytes to emit instead of the reply to the n-th command (which still runs).
    pub(crate) corrupt_reply: Option<(usize, Vec<u8>)>,
    // Records.
    pub(crate) received: Vec<(Instant, String)>,
    pub(crate) ran: Vec<Ran>,
    pub(crate) max_fifo: usize,
    pub(crate) blocked_time: Duration,
    blocked_since: Option<Instant>,
    /// Idle time (nothing executing, nothing queued) between the first and the last move.
    pub(crate) gaps: Vec<(Instant, Duration)>,
    idle_since: Option<Instant>,
    /// Ticks queued behind the running job whenever a job started, with the time.
    pub(crate) ahead_at_start: Vec<(Instant, u64)>,
}

impl Fake {
    pub(crate) fn new(identity: Identity) -> Self {
        Self {
            identity,
            future: false,
            depth: 1,
            fifo: VecDeque::new(),
            current: None,
            pos: [0, 0],
            input: Vec::new(),
            blocked: None,
            output: Vec::new(),
            now: Instant::ZERO,
            button: false,
            pen_up: true,
            motor_mode: 0,
            voltage: 700,
            power_lost: false,
            power_threshold: 0,
            tick_ns: 40_000,
            silent: false,
            reject: None,
            garbage_after: None,
            corrupt_reply: None,
            received: Vec::new(),
            ran: Vec::new(),
            max_fifo: 0,
            blocked_time: Duration::ZERO,
            blocked_since: None,
            gaps: Vec::new(),
            idle_since: None,
            ahead_at_start: Vec::new(),
        }
    }

    pub(crate) fn v3() -> Self {
        Self::new(Identity::Ebb(FirmwareVersion::LATEST))
    }

    pub(crate) fn v2() -> Self {
        Self::new(Identity::Ebb(FirmwareVersion::LAST_V2))
    }

    fn version(&self) -> Option<FirmwareVersion> {
        match self.identity {
            Identity::Ebb(v) => Some(v),
            Identity::Other(_) => None,
        }
    }

    fn is_v3(&self) -> bool {
        self.version().is_some_and(FirmwareVersion::is_v3)
    }

    /// Starts the fake in "future" reply mode (a previous host left it there).
    pub(crate) fn with_future_mode(mut self) -> Self {
        self.future = true;
        self
    }

    /// Starts with the motors on at `mode` and the counters at `pos` (crash resume).
    pub(crate) fn with_motors(mut self, mode: u8, pos: [i64; 2]) -> Self {
        self.motor_mode = mode;
        self.pos = pos;
        self
    }

    pub(crate) fn position(&self) -> [i64; 2] {
        self.position_at(self.now)
    }

    pub(crate) fn is_blocked(&self) -> bool {
        self.blocked.is_some()
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.current.is_none() && self.fifo.is_empty()
    }

    fn position_at(&self, t: Instant) -> [i64; 2] {
        match &self.current {
            Some(r) if r.job.kind == JobKind::Move && r.job.ticks > 0 => {
                let elapsed = (t.as_micros().saturating_sub(r.start.as_micros()) * 1000
                    / self.tick_ns)
                    .min(r.job.ticks) as i64;
                let total = r.job.ticks as i64;
                let at = |a: usize| r.job.from[a] + (r.job.to[a] - r.job.from[a]) * elapsed / total;
                [at(0), at(1)]
            }
            _ => self.pos,
        }
    }

    /// Position after everything queued.
    fn tail_pos(&self) -> [i64; 2] {
        if let Some(j) = self.fifo.back() {
            return j.to;
        }
        if let Some(r) = &self.current {
            return r.job.to;
        }
        self.pos
    }

    /// When something changes next on its own (a job ends), if anything runs.
    pub(crate) fn next_event(&self) -> Option<Instant> {
        self.current
            .as_ref()
            .map(|r| r.start + Duration::from_micros((r.job.ticks * self.tick_ns).div_ceil(1000)))
    }

    /// Runs the machine up to `t`.
    pub(crate) fn advance_to(&mut self, t: Instant) {
        loop {
            if self.current.is_none() {
                self.start_next(self.now);
                if self.current.is_none() {
                    break;
                }
            }
            let Some(end) = self.next_event() else { break };
            if end > t {
                break;
            }
            self.now = end;
            self.finish_current(end, false);
            self.start_next(end);
            self.unblock(end);
        }
        if t > self.now {
            self.now = t;
        }
    }

    fn finish_current(&mut self, end: Instant, aborted: bool) {
        let Some(r) = self.current.take() else { return };
        self.pos = if aborted {
            self.position_at(end)
        } else {
            r.job.to
        };
        if !aborted && let JobKind::Motors { mode } = r.job.kind {
            self.motor_mode = mode;
            self.pos = [0, 0];
        }
        let command = self
            .received
            .get(r.job.index)
            .map(|(_, c)| c.clone())
            .unwrap_or_default();
        self.ran.push(Ran {
            command,
            start: r.start,
            end,
            aborted,
        });
    }

    fn start_next(&mut self, at: Instant) {
        if self.current.is_some() {
            return;
        }
        if let Some(mut job) = self.fifo.pop_front() {
            if let Some(since) = self.idle_since.take()
                && at > since
            {
                self.gaps.push((since, at - since));
            }
            job.from = self.pos;
            if job.kind != JobKind::Move {
                job.to = if matches!(job.kind, JobKind::Motors { .. }) {
                    [0, 0]
                } else {
                    self.pos
                };
            }
            if let JobKind::Servo { up } = job.kind {
                // The pen state changes when the servo move starts (reference §2.2).
                self.pen_up = up;
            }
            let ahead: u64 = self.fifo.iter().map(|j| j.ticks).sum();
            self.ahead_at_start.push((at, ahead));
            self.current = Some(Running { job, start: at });
        } else if self.idle_since.is_none() {
            self.idle_since = Some(at);
        }
    }

    /// A FIFO slot freed up: a blocked parser takes its command and goes on.
    fn unblock(&mut self, at: Instant) {
        if self.blocked.is_some() && self.fifo.len() < self.depth {
            if let Some(since) = self.blocked_since.take() {
                self.blocked_time += at - since;
            }
            if let Some((name, job)) = self.blocked.take() {
                self.enqueue(job);
                self.ack(&name);
                self.start_next(at);
            }
            self.parse_input();
        }
    }

    fn enqueue(&mut self, job: Job) {
        self.fifo.push_back(job);
        self.max_fifo = self.max_fifo.max(self.fifo.len());
    }

    /// Bytes from the host, at `now` (after `advance_to(now)`).
    pub(crate) fn receive(&mut self, now: Instant, bytes: &[u8]) {
        self.advance_to(now);
        self.input.extend_from_slice(bytes);
        self.parse_input();
    }

    /// Whether the board has sent something not yet taken.
    pub(crate) fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// Puts bytes back in front of the output (a reader took fewer than there were).
    pub(crate) fn unread(&mut self, bytes: &[u8]) {
        let mut v = bytes.to_vec();
        v.extend_from_slice(&self.output);
        self.output = v;
    }

    /// Takes what the board has sent.
    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.output)
    }

    fn parse_input(&mut self) {
        while self.blocked.is_none() {
            let Some(end) = self.input.iter().position(|&b| b == b'\r' || b == b'\n') else {
                return;
            };
            let line: Vec<u8> = self.input.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).to_string();
            if text.is_empty() {
                continue;
            }
            self.received.push((self.now, text.clone()));
            let index = self.received.len() - 1;
            let before = self.output.len();
            self.command(&text, index);
            if let Some((n, bytes)) = self.corrupt_reply.clone()
                && n == self.received.len()
            {
                self.output.truncate(before);
                self.output.extend_from_slice(&bytes);
                self.corrupt_reply = None;
            }
            if let Some((n, bytes)) = self.garbage_after.clone()
                && n == self.received.len()
            {
                self.output.extend_from_slice(&bytes);
                self.garbage_after = None;
            }
        }
    }

    fn out(&mut self, s: &str) {
        if !self.silent {
            self.output.extend_from_slice(s.as_bytes());
        }
    }

    fn ack(&mut self, name: &str) {
        if self.future {
            self.out(&format!("{name}\n"));
        } else {
            self.out("OK\r\n");
        }
    }

    /// A query reply: legacy `data` + `ending` (+ OK), future `NAME,data`.
    fn data(&mut self, name: &str, data: &str, ending: &str, ok: bool) {
        if self.future {
            self.out(&format!("{name},{data}\n"));
        } else {
            self.out(&format!("{data}{ending}"));
            if ok {
                self.out("OK\r\n");
            }
        }
    }

    fn error(&mut self, name: &str, text: &str) {
        if self.future {
            self.out(&format!("{name},{text}\n"));
        } else {
            self.out(&format!("{text}\r\n"));
        }
    }

    fn count(&self, name: &str) -> usize {
        self.received
            .iter()
            .filter(|(_, c)| c.split(',').next() == Some(name))
            .count()
    }

    fn command(&mut self, text: &str, index: usize) {
        if let Identity::Other(reply) = self.identity {
            self.out(&format!("{reply}\r\n"));
            return;
        }
        let mut parts = text.split(',');
        let name = parts.next().unwrap_or("").to_string();
        let params: Vec<i64> = parts
            .map(|p| p.parse::<i64>().unwrap_or(i64::MIN))
            .collect();
        if let Some((n, k)) = self.reject
            && n == name
            && self.count(n) == k
        {
            return self.error(&name, "!6 Err: Invalid parameter value");
        }
        let p = |i: usize| params.get(i).copied().unwrap_or(0);
        let v3 = self.is_v3();
        match name.as_str() {
            "V" | "v" => {
                let v = self.version().unwrap_or(FirmwareVersion::LATEST);
                let text = format!("EBBv13_and_above EB Firmware Version {v}");
                if self.future {
                    self.out(&format!("V,{text}\n"));
                } else {
                    self.out(&format!("{text}\r\n"));
                }
            }
            "CU" => match (p(0), p(1)) {
                (10, on) if v3 => {
                    if on != 0 && !self.future {
                        self.out("\n");
                        self.future = true;
                    } else if on == 0 && self.future {
                        self.out("CUOK\r\n");
                        self.future = false;
                    } else {
                        self.ack("CU");
                    }
                }
                (4, n) if v3 => {
                    // Waits for idle: the harness checks this only happens at set-up.
                    assert!(self.is_idle(), "CU,4 while moving");
                    self.depth = n.clamp(1, 32) as usize;
                    self.ack("CU");
                }
                (60, n) if v3 => {
                    self.power_threshold = u16::try_from(n.clamp(0, 1023)).unwrap_or(0);
                    self.ack("CU");
                }
                _ => self.ack("CU"),
            },
            "QG" => {
                let status = u8::from(core::mem::take(&mut self.button)) << 5
                    | u8::from(core::mem::take(&mut self.power_lost)) << 6
                    | u8::from(self.pen_up) << 4;
                self.data("QG", &format!("{status:02X}"), "\r\n", false);
            }
            "SC" | "SR" | "SL" => self.ack(&name),
            "QB" => {
                let b = core::mem::take(&mut self.button);
                let ending = "\r\n";
                self.data("QB", if b { "1" } else { "0" }, ending, true);
            }
            "QS" => {
                let [a, b] = self.position();
                self.data("QS", &format!("{a},{b}"), "\n\r", true);
            }
            "QC" => {
                let v = self.voltage;
                if v3 {
                    self.data("QC", &format!("300,{v}"), "\r\n", true);
                } else {
                    self.data("QC", &format!("0300,{v:04}"), "\r\n", true);
                }
            }
            "QE" => {
                let m = match self.motor_mode {
                    0 => 0,
                    1 => 16,
                    2 => 8,
                    _ => 16,
                };
                self.data("QE", &format!("{m},{m}"), "\n\r", true);
            }
            "QU" if v3 => {
                // Legacy `QU,val`, future `QU,val` then an empty line (reference §1.2). `QU,6`
                // counts the commands waiting in the FIFO; anything else reads as accumulators.
                let value = if params.first() == Some(&6) {
                    format!("6,{}", self.fifo.len())
                } else {
                    "0,0".to_string()
                };
                if self.future {
                    self.out(&format!("QU,{value}\n\n"));
                } else {
                    self.out(&format!("QU,{value}\r\nOK\r\n"));
                }
            }
            "PI" => {
                // Port, pin: enables active low; MS1..MS3 high for 16×, MS3 low for 8×.
                let on = self.motor_mode != 0;
                let mut fields = text.split(',').skip(1);
                let pin = format!(
                    "{}{}",
                    fields.next().unwrap_or(""),
                    fields.next().unwrap_or("")
                );
                let level = match pin.as_str() {
                    "E0" | "C1" => !on,
                    "E2" | "E1" => on,
                    "A6" => self.motor_mode == 1,
                    _ => false,
                };
                let v = u8::from(level);
                if self.future {
                    self.out(&format!("PI,{v}\n"));
                } else {
                    self.out(&format!("PI,{v}\r\n"));
                }
            }
            "ES" => self.estop(),
            "SM" => {
                let d = p(0);
                let (s1, s2) = (p(1), p(2));
                if d <= 0 || params.len() < 2 {
                    return self.error(&name, "!6 Err: Invalid parameter value");
                }
                let kind = if s1 == 0 && s2 == 0 {
                    JobKind::Delay
                } else {
                    JobKind::Move
                };
                let from = self.tail_pos();
                let job = Job {
                    kind,
                    ticks: d as u64 * 25,
                    from,
                    to: [from[0] + s1, from[1] + s2],
                    index,
                };
                self.queue(&name, job);
            }
            "LM" => {
                let from = self.tail_pos();
                let (ticks, steps) = lm_ticks(&params, v3);
                let job = Job {
                    kind: JobKind::Move,
                    ticks,
                    from,
                    to: [from[0] + steps[0], from[1] + steps[1]],
                    index,
                };
                self.queue(&name, job);
            }
            "SP" => {
                let up = p(0) == 1;
                let ms = p(1).max(0) as u64;
                let from = self.tail_pos();
                let job = Job {
                    kind: JobKind::Servo { up },
                    ticks: if ms == 0 { 1 } else { ms * 25 },
                    from,
                    to: from,
                    index,
                };
                self.queue(&name, job);
            }
            "EM" => {
                let job = Job {
                    kind: JobKind::Motors { mode: p(0) as u8 },
                    ticks: 1,
                    from: self.tail_pos(),
                    to: [0, 0],
                    index,
                };
                self.queue(&name, job);
            }
            _ => {
                let hex: String = name.bytes().map(|b| format!("{b:02X}")).collect();
                self.error(&name, &format!("!8 Err: Unknown command '{name}:{hex}'"));
            }
        }
    }

    fn queue(&mut self, name: &str, job: Job) {
        if self.fifo.len() >= self.depth {
            self.blocked = Some((name.to_string(), job));
            self.blocked_since = Some(self.now);
            return;
        }
        self.enqueue(job);
        self.ack(name);
        self.start_next(self.now);
    }

    fn estop(&mut self) {
        let v3 = self.is_v3();
        let interrupted = self.current.is_some() || !self.fifo.is_empty();
        let now = self.now;
        let stops_current = self
            .current
            .as_ref()
            .is_some_and(|r| v3 || r.job.kind == JobKind::Move);
        if stops_current {
            self.finish_current(now, true);
        }
        if v3 {
            self.fifo.clear();
        } else {
            self.fifo.retain(|j| j.kind != JobKind::Move);
        }
        self.start_next(now);
        if v3 {
            self.data("ES", if interrupted { "1" } else { "0" }, "\n\r", true);
        } else {
            self.data(
                "ES",
                &format!("{},0,0,0,0", u8::from(interrupted)),
                "\n\r",
                true,
            );
        }
    }
}

/// Ticks and net steps of an LM move, per tick (reference §2.2, §2.5; 2.x: §2.6), each axis
/// from a cleared accumulator (the real board carries them over; a tick of difference does not
/// matter to the session's logic).
fn lm_ticks(p: &[i64], v3: bool) -> (u64, [i64; 2]) {
    let get = |i: usize| p.get(i).copied().unwrap_or(0);
    let mut ticks_max = 0u64;
    let mut net = [0i64; 2];
    for (axis, net) in net.iter_mut().enumerate() {
        let (mut rate, steps, mut accel) = (get(axis * 3), get(axis * 3 + 1), get(axis * 3 + 2));
        if steps == 0 {
            continue;
        }
        let mut left = steps.unsigned_abs();
        let dir = steps.signum();
        if steps < 0 && v3 {
            rate = -rate;
            accel = -accel;
        }
        let mut r = rate - accel / 2;
        let mut acc: i64 = 0;
        let mut t = 0u64;
        let mut pos = 0i64;
        while left > 0 && t < 50_000_000 {
            t += 1;
            r += accel;
            if !v3 && r < 0 {
                r += 1 << 31;
            }
            acc = (acc + r).rem_euclid(1 << 32);
            if acc & 0x8000_0000 != 0 {
                acc &= 0x7FFF_FFFF;
                left -= 1;
                pos += if !v3 {
                    dir
                } else if r < 0 {
                    -1
                } else {
                    1
                };
            }
        }
        ticks_max = ticks_max.max(t);
        *net = pos;
    }
    (ticks_max, net)
}
