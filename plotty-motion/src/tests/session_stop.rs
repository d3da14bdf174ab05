//! Pause, resume, abort, the button, and the planned pause.

use std::vec::Vec;

use crate::kinematics::MotorSteps;
use crate::plan::{Pen, Tag};
use crate::session::{Event, FeedItem, PauseReason, ResumePoint, SessionConfig};
use crate::time::Duration;

use super::fake::Fake;
use super::util::{Pair, polyline, sm};

/// A stroke of 40 moves of 50 ms along motor 1 (100 steps each), tagged (3, 1..=40).
fn stroke() -> Vec<FeedItem> {
    let points: Vec<_> = (1..=40).map(|i| (i * 100, 0)).collect();
    let mut items = std::vec![FeedItem::Pen(Pen::Down)];
    items.extend(polyline(&points, 50, Pen::Down, 3));
    items.push(FeedItem::Pen(Pen::Up));
    items
}

fn start_plot(fw: Fake) -> Pair {
    let mut pair = Pair::new(SessionConfig::default(), fw);
    pair.connect();
    pair.items.extend(stroke());
    pair
}

/// Runs until the board has run for `ms` after the first move started.
fn run_into_plot(pair: &mut Pair, ms: u64) {
    let found = pair.run_until(Duration::from_millis(5_000), |p| {
        p.fw.ran.iter().any(|r| r.command.starts_with("SP,0"))
    });
    assert!(found);
    let t = pair.now + Duration::from_millis(ms);
    pair.run_until(Duration::from_millis(ms + 10), |p| p.now >= t);
}

fn paused(pair: &mut Pair) -> (PauseReason, ResumePoint) {
    match pair.run_until_event(Duration::from_millis(2_000), |e| {
        matches!(e, Event::Paused { .. })
    }) {
        Event::Paused { reason, resume } => (reason, resume),
        _ => unreachable!(),
    }
}

/// The tag of the move the board was running when `ES` arrived.
fn aborted_tag(pair: &Pair) -> Tag {
    let ran = pair
        .fw
        .ran
        .iter()
        .find(|r| r.aborted)
        .expect("a move was aborted");
    let i = pair
        .fw
        .ran
        .iter()
        .filter(|r| r.command.starts_with("SM") && !r.aborted)
        .count();
    assert!(ran.command.starts_with("SM"));
    Tag {
        stroke: 3,
        vertex: i as u32 + 1,
    }
}

#[test]
fn pause_stops_within_a_few_ms_and_reports_the_resume_point() {
    let mut pair = start_plot(Fake::v3());
    run_into_plot(&mut pair, 1_234);
    let called = pair.now;
    let from = pair.sent.len();
    pair.session.pause(called).unwrap();
    let (reason, resume) = paused(&mut pair);
    assert_eq!(reason, PauseReason::Requested);
    // The position is read twice (no checksums on replies: two readings must agree).
    assert_eq!(
        pair.sent_since(from)[..5],
        ["ES", "SP,1,130,1", "QS", "QS", "QU,200"]
    );
    // Everything left at once: the board has stopped and is raising the pen 1 ms later.
    let es = pair
        .fw
        .received
        .iter()
        .rev()
        .find(|(_, c)| c == "ES")
        .unwrap()
        .0;
    let sp = pair
        .fw
        .received
        .iter()
        .rev()
        .find(|(_, c)| c.starts_with("SP,1"))
        .unwrap()
        .0;
    assert!(es - called <= Duration::from_millis(2));
    assert!(sp - called <= Duration::from_millis(3));
    let stopped = pair.fw.ran.iter().find(|r| r.aborted).unwrap().end;
    assert_eq!(stopped, es);
    let [m1, m2] = pair.fw.position();
    assert_eq!(resume.position, MotorSteps::new(m1 as i32, m2 as i32));
    assert_eq!(resume.tag, Some(aborted_tag(&pair)));
    assert_eq!(resume.pen, Pen::Down);
    assert_eq!(resume.accumulators, Some([0, 0]));
    assert!(resume.dropped);
    // Progress for exactly the moves that completed.
    let completed = pair
        .fw
        .ran
        .iter()
        .filter(|r| r.command.starts_with("SM") && !r.aborted)
        .count();
    let progress = pair
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Progress(_)))
        .count();
    assert_eq!(progress, completed);
    assert!(pair.session.is_paused());
    assert!(pair.errors().is_empty(), "{:#?}", pair.errors());
    // Nothing else is sent but button polls while paused.
    let mark = pair.sent.len();
    pair.run_until(Duration::from_millis(500), |_| false);
    assert!(pair.sent_since(mark).iter().all(|c| c == "QG"));
    assert!(pair.fw.pen_up);
}

#[test]
fn resume_continues_exactly_from_the_resume_point() {
    let mut pair = start_plot(Fake::v3());
    run_into_plot(&mut pair, 777);
    pair.session.pause(pair.now).unwrap();
    let (_, resume) = paused(&mut pair);
    let tag = resume.tag.unwrap();
    // Re-plan: lower the pen, finish the interrupted segment, then the rest of the stroke.
    pair.session.resume(pair.now).unwrap();
    pair.items.clear();
    pair.items.push_back(FeedItem::Pen(Pen::Down));
    let mut at = resume.position;
    for v in tag.vertex..=40 {
        let end = MotorSteps::new(v as i32 * 100, 0);
        let steps = [end.m1 - at.m1, end.m2 - at.m2];
        pair.items.push_back(sm(50, steps, end, Pen::Down, (3, v)));
        at = end;
    }
    pair.items.push_back(FeedItem::Pen(Pen::Up));
    let idle = pair.run_until_event(Duration::from_millis(5_000), |e| {
        matches!(e, Event::Idle { .. })
    });
    assert_eq!(
        idle,
        Event::Idle {
            position: MotorSteps::new(4000, 0)
        }
    );
    assert_eq!(pair.fw.position(), [4000, 0]);
    assert!(pair.errors().is_empty(), "{:#?}", pair.errors());
}

#[test]
fn v2_pause_is_sequential_but_quick() {
    let mut pair = start_plot(Fake::v2());
    run_into_plot(&mut pair, 500);
    let called = pair.now;
    let from = pair.sent.len();
    pair.session.pause(called).unwrap();
    let (_, resume) = paused(&mut pair);
    let sent = pair.sent_since(from);
    let stop: Vec<_> = sent.iter().filter(|c| *c != "QB").cloned().collect();
    assert_eq!(stop[..3], ["ES", "SP,1,130,1", "QS"]);
    let sp = pair
        .fw
        .received
        .iter()
        .rev()
        .find(|(_, c)| c.starts_with("SP,1"))
        .unwrap()
        .0;
    assert!(sp - called <= Duration::from_millis(6), "{}", sp - called);
    let [m1, m2] = pair.fw.position();
    assert_eq!(resume.position, MotorSteps::new(m1 as i32, m2 as i32));
    assert_eq!(resume.tag, Some(aborted_tag(&pair)));
    assert_eq!(resume.accumulators, None);
}

#[test]
fn abort_stops_and_stays_usable() {
    let mut pair = start_plot(Fake::v3());
    run_into_plot(&mut pair, 300);
    pair.items.clear();
    pair.session.abort(pair.now).unwrap();
    let e = pair.run_until_event(Duration::from_millis(1_000), |e| {
        matches!(e, Event::Aborted { .. })
    });
    let [m1, m2] = pair.fw.position();
    let Event::Aborted {
        position,
        accumulators,
    } = e
    else {
        panic!("not an abort: {e:?}");
    };
    assert_eq!(position, MotorSteps::new(m1 as i32, m2 as i32));
    // 3.x: the accumulators are read too, so a move planned from here ends exactly.
    assert!(accumulators.is_some());
    assert!(pair.session.is_ready());
    assert_eq!(pair.session.feed_len(), 0);
    assert!(pair.fw.pen_up);
    // A new plot from the stopped position.
    pair.items.clear();
    let from = MotorSteps::new(m1 as i32, m2 as i32);
    pair.items.push_back(sm(
        100,
        [-from.m1, -from.m2],
        MotorSteps::ZERO,
        Pen::Up,
        (9, 1),
    ));
    let idle = pair.run_until_event(Duration::from_millis(2_000), |e| {
        matches!(e, Event::Idle { .. })
    });
    assert_eq!(
        idle,
        Event::Idle {
            position: MotorSteps::ZERO
        }
    );
    assert!(pair.errors().is_empty(), "{:#?}", pair.errors());
}

#[test]
fn the_button_pauses() {
    let mut pair = start_plot(Fake::v3());
    run_into_plot(&mut pair, 400);
    pair.fw.button = true;
    let pressed = pair.now;
    let (reason, resume) = paused(&mut pair);
    assert_eq!(reason, PauseReason::Button);
    let at = pair
        .events
        .iter()
        .find(|(_, e)| *e == Event::ButtonPressed)
        .unwrap()
        .0;
    // Seen by the next QB poll: within 50 ms plus a round trip.
    assert!(
        at - pressed <= Duration::from_millis(53),
        "{}",
        at - pressed
    );
    let [m1, m2] = pair.fw.position();
    assert_eq!(resume.position, MotorSteps::new(m1 as i32, m2 as i32));
}

#[test]
fn without_pause_on_button_it_only_reports() {
    let config = SessionConfig {
        pause_on_button: false,
        ..SessionConfig::default()
    };
    let mut pair = Pair::new(config, Fake::v3());
    pair.connect();
    pair.items.extend(stroke());
    run_into_plot(&mut pair, 400);
    pair.fw.button = true;
    pair.run_until_event(Duration::from_millis(100), |e| *e == Event::ButtonPressed);
    let idle = pair.run_until_event(Duration::from_millis(5_000), |e| {
        matches!(e, Event::Idle { .. } | Event::Paused { .. })
    });
    assert!(matches!(idle, Event::Idle { .. }));
}

#[test]
fn planned_pause_raises_then_resume_lowers_and_continues() {
    let mut pair = Pair::new(SessionConfig::default(), Fake::v3());
    pair.connect();
    let connected = pair.sent.len();
    pair.items.push_back(FeedItem::Pen(Pen::Down));
    pair.items
        .extend(polyline(&[(400, 0), (800, 0)], 100, Pen::Down, 1));
    pair.items.push_back(FeedItem::Pause);
    pair.items.push_back(sm(
        100,
        [400, 0],
        MotorSteps::new(1200, 0),
        Pen::Down,
        (1, 3),
    ));
    pair.items.push_back(FeedItem::Pen(Pen::Up));
    let (reason, resume) = paused(&mut pair);
    assert_eq!(reason, PauseReason::Planned);
    assert_eq!(
        resume,
        ResumePoint {
            position: MotorSteps::new(800, 0),
            tag: None,
            pen: Pen::Down,
            accumulators: None,
            dropped: false,
        }
    );
    assert!(!pair.sent_since(connected).iter().any(|c| c == "ES"));
    // Both moves ran before the pause, nothing after it.
    assert_eq!(pair.fw.position(), [800, 0]);
    pair.run_until(Duration::from_millis(300), |_| false);
    assert!(pair.fw.pen_up);
    assert_eq!(pair.fw.position(), [800, 0]);
    pair.session.resume(pair.now).unwrap();
    let from = pair.sent.len();
    let idle = pair.run_until_event(Duration::from_millis(2_000), |e| {
        matches!(e, Event::Idle { .. })
    });
    assert_eq!(
        idle,
        Event::Idle {
            position: MotorSteps::new(1200, 0)
        }
    );
    let sent: Vec<_> = pair
        .sent_since(from)
        .into_iter()
        .filter(|c| c != "QG" && c != "QS")
        .collect();
    assert_eq!(sent, ["SP,0,146,1", "SM,100,400,0", "SP,1,130,1"]);
}

#[test]
fn pause_when_idle_and_state_errors() {
    let mut pair = Pair::new(SessionConfig::default(), Fake::v3());
    pair.connect();
    assert!(pair.session.resume(pair.now).is_err());
    pair.session.pause(pair.now).unwrap();
    assert!(pair.session.pause(pair.now).is_err());
    let (_, resume) = paused(&mut pair);
    assert_eq!(resume.tag, None);
    assert_eq!(resume.position, MotorSteps::ZERO);
    assert_eq!(
        pair.session.push(FeedItem::Marker(1)),
        Err(crate::session::FeedError::Paused)
    );
    pair.session.resume(pair.now).unwrap();
    assert!(pair.session.is_ready());
}

#[test]
fn v2_pause_during_a_dwell_waits_for_the_delay_pieces() {
    let mut pair = Pair::new(SessionConfig::default(), Fake::v2());
    pair.connect();
    pair.items
        .push_back(FeedItem::Dwell(Duration::from_millis(1_000)));
    pair.items
        .push_back(sm(100, [800, 0], MotorSteps::new(800, 0), Pen::Up, (0, 1)));
    pair.run_until(Duration::from_millis(300), |_| false);
    let called = pair.now;
    pair.session.pause(called).unwrap();
    let (_, resume) = paused(&mut pair);
    // 2.8.1's ES leaves delays running: the raise waits for the piece running and the one
    // queued (40 ms each), so the pen is up within 100 ms.
    let sp = pair
        .fw
        .ran
        .iter()
        .rev()
        .find(|r| r.command.starts_with("SP,1"))
        .unwrap()
        .start;
    assert!(sp - called <= Duration::from_millis(100), "{}", sp - called);
    assert_eq!(resume.position, MotorSteps::ZERO);
    assert_eq!(
        resume.tag,
        Some(Tag {
            stroke: 0,
            vertex: 1
        })
    );
    assert!(pair.errors().is_empty(), "{:#?}", pair.errors());
}

#[test]
fn abort_while_pausing_becomes_an_abort() {
    let mut pair = start_plot(Fake::v3());
    run_into_plot(&mut pair, 300);
    pair.session.pause(pair.now).unwrap();
    pair.items.clear();
    pair.session.abort(pair.now).unwrap();
    let e = pair.run_until_event(Duration::from_millis(1_000), |e| {
        matches!(e, Event::Aborted { .. } | Event::Paused { .. })
    });
    assert!(matches!(e, Event::Aborted { .. }), "{e:?}");
    assert!(pair.session.is_ready());
}

#[test]
fn a_supply_that_drops_mid_plot_pauses_with_the_pen_up() {
    let mut pair = start_plot(Fake::v3());
    run_into_plot(&mut pair, 300);
    // The supply sags (a power brick unplugged): the next `QC` poll finds it.
    pair.fw.voltage = 120;
    let (reason, resume) = paused(&mut pair);
    assert_eq!(reason, PauseReason::LowPower);
    assert!(resume.dropped);
    assert!(pair.fw.pen_up);
    assert!(pair.events.iter().any(|(_, e)| *e
        == Event::Power {
            voltage: 120,
            low: true
        }));
}

#[test]
fn a_supply_dip_between_two_polls_stops_the_plot_with_the_pen_up() {
    let mut pair = start_plot(Fake::v3());
    run_into_plot(&mut pair, 300);
    // The supply dipped and came back between two `QC` polls: only the latch saw it.
    assert_eq!(pair.fw.power_threshold, 250);
    pair.fw.power_lost = true;
    let at = pair.now;
    let (reason, resume) = paused(&mut pair);
    assert_eq!(reason, PauseReason::PowerLost);
    assert!(resume.dropped);
    assert!(pair.fw.pen_up);
    let seen = pair
        .events
        .iter()
        .find(|(_, e)| *e == Event::PowerLost)
        .map(|(t, _)| *t)
        .unwrap();
    // The button poll reads the latch: within one poll (50 ms) and its reply.
    assert!(seen - at <= Duration::from_millis(60), "{}", seen - at);
    assert!(pair.errors().is_empty(), "{:#?}", pair.errors());
}

#[test]
fn the_button_still_pauses_when_the_poll_reads_qg() {
    let mut pair = start_plot(Fake::v3());
    run_into_plot(&mut pair, 300);
    pair.fw.button = true;
    let (reason, _) = paused(&mut pair);
    assert_eq!(reason, PauseReason::Button);
    assert!(pair.fw.received.iter().any(|(_, c)| c == "QG"));
    assert!(!pair.fw.received.iter().any(|(_, c)| c == "QB"));
}
