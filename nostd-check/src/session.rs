//! Links the session: a handshake and set-up against scripted 3.0.3 replies, then a move, an
//! `ES`-based pause and the events, all without std or an allocator.

use plotty_motion::ebb::StepperMove;
use plotty_motion::ebb::limits::MAX_ENCODED_LEN;
use plotty_motion::kinematics::MotorSteps;
use plotty_motion::plan::{Pen, Tag};
use plotty_motion::session::{Event, FeedItem, Motion, MotionCommand, Session, SessionConfig};
use plotty_motion::time::{Duration, Instant};

/// The legacy 3.0.0 reply to a command (the session then keeps legacy syntax).
fn reply(command: &[u8]) -> &'static [u8] {
    match command {
        b"V\r" => b"EBBv13_and_above EB Firmware Version 3.0.0\r\n",
        b"QS\r" => b"0,0\n\rOK\r\n",
        b"QB\r" => b"0\r\nOK\r\n",
        b"QG\r" => b"10\r\n",
        b"QC\r" => b"300,700\r\nOK\r\n",
        b"ES\r" => b"0\n\rOK\r\n",
        [b'Q', b'U', ..] => b"QU,0,0\r\nOK\r\n",
        _ => b"OK\r\n",
    }
}

/// Runs a session for `ms` of simulated time against scripted replies; returns the number of
/// events it reported, or -1 if it never got ready.
#[unsafe(no_mangle)]
pub extern "C" fn plotty_nostd_session_check(ms: u32) -> i32 {
    let mut now = Instant::from_millis(1);
    let Ok(mut session) = Session::new(SessionConfig::default(), now) else {
        return -1;
    };
    let mut buf = [0u8; MAX_ENCODED_LEN];
    let mut events = 0;
    let mut ready = false;
    let mut pushed = false;
    for step in 0..ms {
        while let Some(n) = session.poll_transmit(now, &mut buf) {
            let r = reply(buf.get(..n).unwrap_or(&[]));
            session.handle_rx(now, r);
        }
        now += Duration::from_millis(1);
        session.handle_timeout(now);
        if ready && !pushed {
            let item = FeedItem::Move(Motion {
                command: MotionCommand::Sm(StepperMove {
                    duration_ms: 100,
                    steps: [80, 80],
                    clear: None,
                }),
                ticks: 2500,
                end: MotorSteps::new(80, 80),
                pen: Pen::Up,
                tag: Tag::default(),
                distance_mm: 1.0,
            });
            pushed = session.push(item).is_ok();
        }
        if step == ms / 2 {
            let _ = session.pause(now);
        }
        while let Some(e) = session.poll_event() {
            ready |= matches!(e, Event::Ready { .. });
            events += 1;
        }
    }
    if ready { events } else { -1 }
}
