//! Fuzz target `session_rx`: a session that is plotting gets arbitrary reply bytes, time steps,
//! well-formed answers and control calls in an order the input decides.

use arbitrary::Unstructured;
use plotty_motion::ebb::limits::MAX_ENCODED_LEN;
use plotty_motion::ebb::{FirmwareVersion, StepperMove};
use plotty_motion::kinematics::MotorSteps;
use plotty_motion::plan::{Pen, Tag};
use plotty_motion::session::{
    Event, FEED_CAPACITY, FeedItem, Motion, MotionCommand, PENDING_CAPACITY, PauseReason, Session,
    SessionConfig,
};
use plotty_motion::time::{Duration, Instant};

/// Answers commands the way a quiet, instant board does (3.x legacy/future or 2.x), so the
/// session gets through set-up into plotting before the fuzzer's bytes arrive.
struct Responder {
    version: FirmwareVersion,
    future: bool,
    out: Vec<u8>,
}

impl Responder {
    fn answer(&mut self, command: &[u8]) {
        let text = String::from_utf8_lossy(command);
        let text = text.trim_end_matches('\r');
        let name = text.split(',').next().unwrap_or("");
        let v3 = self.version.is_v3();
        let data = |s: &mut Self, data: &str, ending: &str, ok: bool| {
            if s.future {
                s.out
                    .extend_from_slice(format!("{name},{data}\n").as_bytes());
            } else {
                s.out
                    .extend_from_slice(format!("{data}{ending}").as_bytes());
                if ok {
                    s.out.extend_from_slice(b"OK\r\n");
                }
            }
        };
        match name {
            "V" => {
                let line = format!("EBBv13_and_above EB Firmware Version {}", self.version);
                if self.future {
                    self.out.extend_from_slice(format!("V,{line}\n").as_bytes());
                } else {
                    self.out.extend_from_slice(format!("{line}\r\n").as_bytes());
                }
            }
            "CU" if text == "CU,10,1" && v3 => {
                self.out.extend_from_slice(b"\n");
                self.future = true;
            }
            "QS" => data(self, "0,0", "\n\r", true),
            "QB" => data(self, "0", "\r\n", true),
            // 3.x status byte (the button poll reads it): pen up, nothing latched; no OK.
            "QG" => data(self, "10", "\r\n", false),
            "QC" => data(self, "300,700", "\r\n", true),
            "QE" => data(self, "16,16", "\n\r", true),
            "ES" if v3 => data(self, "0", "\n\r", true),
            "ES" => data(self, "0,0,0,0,0", "\n\r", true),
            "QU" => {
                if self.future {
                    self.out.extend_from_slice(b"QU,0,0\n\n");
                } else {
                    self.out.extend_from_slice(b"QU,0,0\r\nOK\r\n");
                }
            }
            _ if self.future => self.out.extend_from_slice(format!("{name}\n").as_bytes()),
            _ => self.out.extend_from_slice(b"OK\r\n"),
        }
    }
}

fn mv(i: u32) -> FeedItem {
    let m1 = i as i32 * 10;
    FeedItem::Move(Motion {
        command: MotionCommand::Sm(StepperMove {
            duration_ms: 20,
            steps: [10, 0],
            clear: None,
        }),
        ticks: 500,
        end: MotorSteps::new(m1, 0),
        pen: Pen::Down,
        tag: Tag {
            stroke: 0,
            vertex: i,
        },
        distance_mm: 0.0625,
    })
}

/// Runs the fuzz input. Invariants: no panic; queues stay within their capacities; every
/// command written fits the buffer and ends in CR; a failed session or a pause for an error
/// was preceded by an error event; a failed session asks for no more timers.
pub fn session_rx(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let versions = [
        FirmwareVersion::LATEST,
        FirmwareVersion::new(3, 0, 0),
        FirmwareVersion::LAST_V2,
    ];
    let version = versions[usize::from(u.arbitrary::<u8>().unwrap_or(0)) % versions.len()];
    let mut responder = Responder {
        version,
        future: false,
        out: Vec::new(),
    };
    let mut now = Instant::from_millis(1);
    let Ok(mut s) = Session::new(SessionConfig::default(), now) else {
        return;
    };
    let mut buf = [0u8; MAX_ENCODED_LEN];
    let mut errors = 0usize;
    let mut next_move = 1u32;
    let check = |s: &mut Session, errors: &mut usize| {
        while let Some(e) = s.poll_event() {
            match e {
                Event::Error(_) => *errors += 1,
                Event::Paused {
                    reason: PauseReason::Error,
                    ..
                } => assert!(*errors > 0, "paused for an error nobody reported"),
                _ => {}
            }
        }
        assert!(s.replies_due() <= PENDING_CAPACITY);
        assert!(s.feed_len() <= FEED_CAPACITY);
        if s.is_failed() {
            assert!(*errors > 0, "failed without an error event");
            assert_eq!(s.poll_timeout(), None);
        }
    };
    // Connect with well-formed answers (bounded: a broken session must not hang the fuzzer).
    for _ in 0..200 {
        while let Some(n) = s.poll_transmit(now, &mut buf) {
            assert!(n <= MAX_ENCODED_LEN && buf[n - 1] == b'\r');
            responder.answer(&buf[..n]);
        }
        let out = std::mem::take(&mut responder.out);
        now += Duration::from_micros(500);
        s.handle_rx(now, &out);
        if let Some(t) = s.poll_timeout() {
            now = now.max(t);
            s.handle_timeout(now);
        }
        check(&mut s, &mut errors);
        if s.is_ready() {
            break;
        }
    }
    assert!(
        s.is_ready(),
        "the session did not set up against a well-behaved board"
    );
    // Then whatever the input says.
    while !u.is_empty() {
        let Ok(op) = u.arbitrary::<u8>() else { break };
        match op % 8 {
            0..=2 => {
                let len = usize::from(u.arbitrary::<u8>().unwrap_or(0) % 48);
                let bytes = u.bytes(len.min(u.len())).unwrap_or(&[]);
                s.handle_rx(now, bytes);
            }
            3 => {
                let dt = u64::from(u.arbitrary::<u16>().unwrap_or(0));
                now += Duration::from_micros(dt * 31);
                s.handle_timeout(now);
            }
            4 => {
                let out = std::mem::take(&mut responder.out);
                s.handle_rx(now, &out);
            }
            5 => {
                while s.can_accept() {
                    if s.push(mv(next_move)).is_err() {
                        break;
                    }
                    next_move += 1;
                }
            }
            6 => match u.arbitrary::<u8>().unwrap_or(0) % 3 {
                0 => drop(s.pause(now)),
                1 => drop(s.resume(now)),
                _ => drop(s.abort(now)),
            },
            _ => {
                if let Some(t) = s.poll_timeout() {
                    now = now.max(t);
                    s.handle_timeout(now);
                }
            }
        }
        while let Some(n) = s.poll_transmit(now, &mut buf) {
            assert!(n <= MAX_ENCODED_LEN && buf[n - 1] == b'\r');
            responder.answer(&buf[..n]);
        }
        check(&mut s, &mut errors);
    }
}
