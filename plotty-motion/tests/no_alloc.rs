//! Zero allocation: a full plan → step → session exchange with a scripted board runs under a
//! global allocator that counts every allocation made by this thread while armed. A control test
//! proves the counter sees a `Vec`.
//!
//! The counting allocator is the one place that needs `unsafe` (implementing `GlobalAlloc`); it
//! forwards to the system allocator unchanged.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use plotty_motion::ebb::FirmwareVersion;
use plotty_motion::ebb::limits::MAX_ENCODED_LEN;
use plotty_motion::kinematics::{AxiDrawSettings, MotorSteps, Point};
use plotty_motion::pipeline::{Pipeline, PipelineError, step_config};
use plotty_motion::plan::{Action, PathItem, Pen, PlanError, PlannerConfig, PlannerSlot, Tag};
use plotty_motion::session::{Event, Session, SessionConfig};
use plotty_motion::time::{Duration, Instant};

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: forwards every call to `System` unchanged; only counts on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn note() {
    // `try_with`: the thread-locals may be gone while a thread shuts down.
    if ARMED.try_with(Cell::get).unwrap_or(false) {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` armed; returns its result and the allocations it made.
fn counted<T>(f: impl FnOnce() -> T) -> (T, usize) {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    let out = f();
    ARMED.with(|a| a.set(false));
    (out, COUNT.with(Cell::get))
}

/// A board that answers at once in 3.0.0's legacy syntax and keeps the step counters from the
/// moves it is sent. No allocation: fixed buffers only.
struct Board {
    out: [u8; 256],
    len: usize,
    pos: [i64; 2],
}

impl Board {
    fn answer(&mut self, command: &[u8]) {
        let command = command.strip_suffix(b"\r").unwrap_or(command);
        let mut fields = command.split(|&b| b == b',');
        let name = fields.next().unwrap_or(b"");
        let mut numbers = [0i64; 10];
        for (slot, field) in numbers.iter_mut().zip(fields) {
            *slot = parse(field);
        }
        match name {
            b"V" => self.put(b"EBBv13_and_above EB Firmware Version 3.0.0\r\n"),
            b"QS" => {
                let mut text = [0u8; 48];
                let n = format_pair(&mut text, self.pos);
                self.put(&text[..n]);
                self.put(b"\n\rOK\r\n");
            }
            b"QB" => self.put(b"0\r\nOK\r\n"),
            // 3.x status byte: pen up, nothing pressed, no power lost (no OK).
            b"QG" => self.put(b"10\r\n"),
            b"QC" => self.put(b"300,700\r\nOK\r\n"),
            b"ES" => self.put(b"0\n\rOK\r\n"),
            b"QU" => self.put(b"QU,0,0\r\nOK\r\n"),
            b"EM" => {
                self.pos = [0, 0];
                self.put(b"OK\r\n");
            }
            b"SM" => {
                self.pos[0] += numbers[1];
                self.pos[1] += numbers[2];
                self.put(b"OK\r\n");
            }
            b"LM" => {
                self.pos[0] += numbers[1];
                self.pos[1] += numbers[4];
                self.put(b"OK\r\n");
            }
            _ => self.put(b"OK\r\n"),
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        let end = (self.len + bytes.len()).min(self.out.len());
        self.out[self.len..end].copy_from_slice(&bytes[..end - self.len]);
        self.len = end;
    }

    fn take(&mut self, into: &mut [u8; 256]) -> usize {
        let n = self.len;
        into[..n].copy_from_slice(&self.out[..n]);
        self.len = 0;
        n
    }
}

fn parse(field: &[u8]) -> i64 {
    let (neg, digits) = match field.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, field),
    };
    let v = digits
        .iter()
        .fold(0i64, |v, &d| v * 10 + i64::from(d.wrapping_sub(b'0') % 10));
    if neg { -v } else { v }
}

fn format_pair(out: &mut [u8; 48], pos: [i64; 2]) -> usize {
    let mut n = 0;
    for (i, v) in pos.into_iter().enumerate() {
        if i == 1 {
            out[n] = b',';
            n += 1;
        }
        let mut digits = [0u8; 20];
        let mut k = 0;
        let mut m = v.unsigned_abs();
        loop {
            digits[k] = b'0' + (m % 10) as u8;
            k += 1;
            m /= 10;
            if m == 0 {
                break;
            }
        }
        if v < 0 {
            out[n] = b'-';
            n += 1;
        }
        for d in digits[..k].iter().rev() {
            out[n] = *d;
            n += 1;
        }
    }
    n
}

/// The path: a square stroke and a 48-gon, with travel, a dwell and home at the end.
fn path_item(i: usize) -> Option<PathItem> {
    let seg = |x: f64, y: f64, pen, stroke, vertex| PathItem::Segment {
        to: Point::new(x, y),
        pen,
        tag: Tag { stroke, vertex },
    };
    let square = [(30.0, 10.0), (30.0, 30.0), (10.0, 30.0), (10.0, 10.0)];
    Some(match i {
        0 => seg(10.0, 10.0, Pen::Up, 0, 0),
        1 => PathItem::Action(Action::PenDown),
        2..=5 => {
            let (x, y) = square[i - 2];
            seg(x, y, Pen::Down, 0, (i - 1) as u32)
        }
        6 => PathItem::Action(Action::PenUp),
        7 => seg(80.0, 50.0, Pen::Up, 1, 0),
        8 => PathItem::Action(Action::PenDown),
        9..=56 => {
            let a = (i - 8) as f64 * core::f64::consts::TAU / 48.0;
            seg(
                60.0 + 20.0 * a.cos(),
                50.0 + 20.0 * a.sin(),
                Pen::Down,
                1,
                (i - 8) as u32,
            )
        }
        57 => PathItem::Action(Action::PenUp),
        58 => PathItem::Action(Action::Dwell(Duration::from_millis(50))),
        59 => seg(0.0, 0.0, Pen::Up, 2, 0),
        _ => return None,
    })
}

/// Connects, plots the path through a 64-slot planner window, and returns the final position
/// and the number of events, all on the stack.
fn plot() -> (MotorSteps, usize) {
    let settings = AxiDrawSettings::default();
    let mut now = Instant::from_millis(1);
    let mut session = Session::new(SessionConfig::axidraw(&settings), now).unwrap();
    let mut board = Board {
        out: [0; 256],
        len: 0,
        pos: [0, 0],
    };
    let mut tx = [0u8; MAX_ENCODED_LEN];
    let mut rx = [0u8; 256];
    let mut window = [PlannerSlot::EMPTY; 64];
    let mut pipeline = None;
    let mut next_path = 0;
    let mut staged = None;
    let mut events = 0;
    let mut done = None;
    for _ in 0..200_000 {
        while let Some(n) = session.poll_transmit(now, &mut tx) {
            board.answer(&tx[..n]);
            let m = board.take(&mut rx);
            session.handle_rx(now, &rx[..m]);
        }
        while let Some(e) = session.poll_event() {
            events += 1;
            match e {
                Event::Ready { .. } => {
                    let step = step_config(FirmwareVersion::new(3, 0, 0), settings.resolution);
                    pipeline = Some(
                        Pipeline::new(
                            PlannerConfig::axidraw(&settings).unwrap(),
                            step.unwrap(),
                            &mut window,
                        )
                        .unwrap(),
                    );
                }
                Event::Idle { position } if next_path > 59 => done = Some(position),
                Event::Error(e) => panic!("{e}"),
                _ => {}
            }
        }
        if let Some(position) = done {
            return (position, events);
        }
        if let Some(p) = pipeline.as_mut() {
            // Feed: pull what is ready, push path items when nothing is.
            while session.can_accept() {
                if let Some(item) = staged.take().or_else(|| p.pull().unwrap()) {
                    session.push(item).unwrap();
                    continue;
                }
                match path_item(next_path) {
                    Some(item) => match p.push(item) {
                        Ok(()) => next_path += 1,
                        Err(PipelineError::Plan(PlanError::WindowFull)) => {
                            staged = p.pull().unwrap();
                        }
                        Err(e) => panic!("{e}"),
                    },
                    None if next_path == 60 => {
                        p.finish();
                        next_path += 1;
                    }
                    None => break,
                }
            }
        }
        now = session
            .poll_timeout()
            .map_or(now + Duration::from_millis(1), |t| t.max(now))
            .max(now + Duration::from_micros(100));
        session.handle_timeout(now);
    }
    panic!("the plot did not finish");
}

#[test]
fn plan_step_and_session_allocate_nothing() {
    let ((position, events), allocations) = counted(plot);
    assert_eq!(position, MotorSteps::ZERO);
    assert!(events > 60, "{events}");
    assert_eq!(allocations, 0, "the core allocated");
}

#[test]
fn the_counter_sees_a_vec() {
    let (v, allocations) = counted(|| std::hint::black_box(vec![1u8, 2, 3]));
    assert_eq!(v.len(), 3);
    assert!(allocations >= 1);
}
