//! Feeding by time: the firmware's FIFO stays fed (≥ 100 ms ahead on 3.x, one queued on 2.x)
//! without its parser ever blocking; polls; progress, vertex, stroke and marker events.

use std::vec::Vec;

use crate::kinematics::MotorSteps;
use crate::plan::{Pen, Tag};
use crate::session::{Event, FeedItem, SessionConfig};
use crate::time::{Duration, Instant};

use super::fake::Fake;
use super::util::{Pair, polyline};

/// A zigzag of `n` points, 100 steps apart on motor 1 and ±40 on motor 2.
fn zigzag(n: usize) -> Vec<(i32, i32)> {
    (1..=n)
        .map(|i| (i as i32 * 100, if i % 2 == 0 { 0 } else { 40 }))
        .collect()
}

/// Runs the pair until `Idle`, checking on the way that the board's parser never blocks.
fn plot(pair: &mut Pair, limit: Duration) {
    let start = pair.events.len();
    let end = pair.now + limit;
    while !pair.events[start..]
        .iter()
        .any(|(_, e)| matches!(e, Event::Idle { .. }))
    {
        assert!(
            pair.now < end,
            "no Idle within {limit}: {:#?}",
            &pair.events[start..]
        );
        assert!(!pair.fw.is_blocked(), "parser blocked at {}", pair.now);
        pair.step(end);
    }
    assert_eq!(pair.fw.blocked_time, Duration::ZERO);
    assert!(pair.errors().is_empty(), "{:#?}", pair.errors());
}

/// Gaps in the board's work between `from` and `to` (exclusive of the edges).
fn gaps_within(fw: &Fake, from: Instant, to: Instant) -> Vec<(Instant, Duration)> {
    fw.gaps
        .iter()
        .filter(|(t, d)| *t > from && *t + *d < to)
        .copied()
        .collect()
}

fn first_and_last_move(fw: &Fake) -> (Instant, Instant) {
    let moves: Vec<_> = fw
        .ran
        .iter()
        .filter(|r| r.command.starts_with("SM") && !r.command.ends_with(",0,0"))
        .collect();
    (moves[0].start, moves.last().unwrap().end)
}

#[test]
fn v3_keeps_at_least_100ms_queued_and_never_blocks() {
    let mut pair = Pair::new(SessionConfig::default(), Fake::v3());
    pair.connect();
    let points = zigzag(300);
    pair.items.extend(polyline(&points, 10, Pen::Up, 0));
    plot(&mut pair, Duration::from_millis(10_000));
    assert!(pair.fw.max_fifo <= 32, "{}", pair.fw.max_fifo);
    let (first, last) = first_and_last_move(&pair.fw);
    assert!(gaps_within(&pair.fw, first, last).is_empty());
    // From 20 ms after the start until the last move was sent, every move started with at
    // least 100 ms queued behind it.
    let last_sent = pair
        .sent
        .iter()
        .rev()
        .find(|(_, c)| c.starts_with("SM"))
        .unwrap()
        .0;
    let window: Vec<_> = pair
        .fw
        .ahead_at_start
        .iter()
        .filter(|(t, _)| *t > first + Duration::from_millis(20) && *t < last_sent)
        .collect();
    assert!(window.len() > 250, "{}", window.len());
    let short: Vec<_> = window.iter().filter(|(_, ticks)| *ticks < 2_500).collect();
    assert!(short.is_empty(), "{short:?}");
    // The plot takes the planned time (3 s) plus at most a few ms.
    assert!(
        last - first < Duration::from_millis(3_010),
        "{}",
        last - first
    );
    let end = MotorSteps::new(30_000, 0);
    assert_eq!(pair.fw.position(), [30_000, 0]);
    assert_eq!(pair.session.position(), end);
    assert!(matches!(
        pair.events.last().unwrap().1,
        Event::Idle { position } if position == end
    ));
}

#[test]
fn v3_short_moves_are_limited_by_the_fifo_depth() {
    let mut pair = Pair::new(SessionConfig::default(), Fake::v3());
    pair.connect();
    pair.items.extend(polyline(&zigzag(400), 4, Pen::Up, 0));
    plot(&mut pair, Duration::from_millis(10_000));
    assert!(pair.fw.max_fifo <= 32);
    assert!(pair.fw.max_fifo >= 28, "{}", pair.fw.max_fifo);
    let (first, last) = first_and_last_move(&pair.fw);
    assert!(gaps_within(&pair.fw, first, last).is_empty());
}

#[test]
fn v2_keeps_one_queued_behind_the_running_move() {
    let mut pair = Pair::new(SessionConfig::default(), Fake::v2());
    pair.connect();
    pair.items.extend(polyline(&zigzag(100), 20, Pen::Up, 0));
    plot(&mut pair, Duration::from_millis(10_000));
    assert_eq!(pair.fw.max_fifo, 1);
    let (first, last) = first_and_last_move(&pair.fw);
    assert!(
        gaps_within(&pair.fw, first, last).is_empty(),
        "{:?}",
        pair.fw.gaps
    );
    assert!(last - first < Duration::from_millis(2_010));
    // One command at a time: no command left before the previous one's reply came back.
    assert_eq!(pair.fw.position(), [10_000, 0]);
}

#[test]
fn polls_button_every_50ms_and_position_every_250ms() {
    let mut pair = Pair::new(SessionConfig::default(), Fake::v3());
    pair.connect();
    let from = pair.sent.len();
    pair.items.extend(polyline(&zigzag(100), 10, Pen::Up, 0));
    plot(&mut pair, Duration::from_millis(5_000));
    let times = |name: &str| -> Vec<Instant> {
        pair.sent[from..]
            .iter()
            .filter(|(_, c)| c == name)
            .map(|(t, _)| *t)
            .collect()
    };
    let qb = times("QG");
    assert!(qb.len() >= 19, "{}", qb.len());
    for w in qb.windows(2) {
        assert!(w[1] - w[0] <= Duration::from_millis(51), "{:?}", w);
    }
    let qs = times("QS");
    assert!(qs.len() >= 4, "{}", qs.len());
    let positions = pair
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Position { .. }))
        .count();
    assert!(positions >= qs.len());
}

#[test]
fn progress_events_in_order_with_distances() {
    let mut pair = Pair::new(SessionConfig::default(), Fake::v3());
    pair.connect();
    // A square of 30 mm drawn as a stroke (80 steps/mm, mixed axes): motor positions.
    let square = [(2400, 2400), (4800, 0), (2400, -2400), (0, 0)];
    pair.items.push_back(FeedItem::Pen(Pen::Down));
    pair.items.extend(polyline(&square, 200, Pen::Down, 7));
    pair.items.push_back(FeedItem::Pen(Pen::Up));
    pair.items.push_back(FeedItem::Marker(42));
    plot(&mut pair, Duration::from_millis(5_000));
    let events: Vec<Event> = pair.events.iter().map(|(_, e)| e.clone()).collect();
    let progress: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Progress(p) => Some(*p),
            _ => None,
        })
        .collect();
    assert_eq!(progress.len(), 4);
    for (i, p) in progress.iter().enumerate() {
        assert_eq!(
            p.tag,
            Tag {
                stroke: 7,
                vertex: i as u32 + 1
            }
        );
        assert!(
            (p.distance_mm - 30.0 * (i + 1) as f64).abs() < 1e-9,
            "{p:?}"
        );
        assert_eq!(p.drawn_mm, p.distance_mm);
        assert_eq!(p.pen, Pen::Down);
    }
    // Planned: pen down 146 ms + 4 × 200 ms; elapsed at most a few ms more.
    let last = progress[3];
    assert_eq!(last.planned, Duration::from_millis(946));
    assert!(last.elapsed >= last.planned && last.elapsed < last.planned + Duration::from_millis(5));
    let vertices: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::VertexDone(t) => Some(t.vertex),
            _ => None,
        })
        .collect();
    assert_eq!(vertices, [1, 2, 3, 4]);
    // Stroke done after the raise, then the marker, then idle.
    let order: Vec<_> = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::StrokeDone { .. } | Event::Marker(_) | Event::Idle { .. }
            )
        })
        .cloned()
        .collect();
    assert_eq!(
        order,
        [
            Event::StrokeDone { stroke: 7 },
            Event::Marker(42),
            Event::Idle {
                position: MotorSteps::ZERO
            }
        ]
    );
    let sent = pair.sent_since(0);
    assert!(sent.iter().any(|c| c == "SP,0,146,1"));
    assert!(!pair.fw.pen_up || sent.last().is_some());
}

#[test]
fn progress_reports_when_the_move_has_run() {
    let mut pair = Pair::new(SessionConfig::default(), Fake::v3());
    pair.connect();
    pair.items.extend(polyline(&zigzag(20), 50, Pen::Up, 0));
    plot(&mut pair, Duration::from_millis(5_000));
    let ends: Vec<Instant> = pair
        .fw
        .ran
        .iter()
        .filter(|r| r.command.starts_with("SM"))
        .map(|r| r.end)
        .collect();
    let reported: Vec<Instant> = pair
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Progress(_)))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(ends.len(), reported.len());
    for (end, at) in ends.iter().zip(&reported) {
        // Never before the move ended on the board; after it by at most 1 ms plus the 2 %
        // clock slack of the time since the last `QS` (≤ 250 ms + a move).
        assert!(at >= end, "reported {at} before the end {end}");
        assert!(*at - *end <= Duration::from_millis(7), "{at} vs {end}");
    }
}

#[test]
fn dwells_are_split_and_timed() {
    let mut pair = Pair::new(SessionConfig::default(), Fake::v3());
    pair.connect();
    let from = pair.sent.len();
    pair.items
        .push_back(FeedItem::Dwell(Duration::from_millis(2_500)));
    plot(&mut pair, Duration::from_millis(5_000));
    let sent: Vec<_> = pair
        .sent_since(from)
        .into_iter()
        .filter(|c| c.starts_with("SM"))
        .collect();
    assert_eq!(sent, ["SM,1000,0,0", "SM,1000,0,0", "SM,500,0,0"]);
    // 2.x pieces are 40 ms.
    let mut pair = Pair::new(SessionConfig::default(), Fake::v2());
    pair.connect();
    let from = pair.sent.len();
    pair.items
        .push_back(FeedItem::Dwell(Duration::from_millis(100)));
    plot(&mut pair, Duration::from_millis(5_000));
    let sent: Vec<_> = pair
        .sent_since(from)
        .into_iter()
        .filter(|c| c.starts_with("SM"))
        .collect();
    assert_eq!(sent, ["SM,40,0,0", "SM,40,0,0", "SM,20,0,0"]);
}

#[test]
fn v2_lowers_the_pen_only_at_rest() {
    let mut pair = Pair::new(SessionConfig::default(), Fake::v2());
    pair.connect();
    pair.items.extend(polyline(&[(800, 800)], 100, Pen::Up, 0));
    pair.items.push_back(FeedItem::Pen(Pen::Down));
    plot(&mut pair, Duration::from_millis(5_000));
    let sm_end = pair
        .fw
        .ran
        .iter()
        .find(|r| r.command.starts_with("SM"))
        .unwrap()
        .end;
    let sp = pair
        .fw
        .received
        .iter()
        .rev()
        .find(|(_, c)| c.starts_with("SP,0"))
        .unwrap()
        .0;
    assert!(
        sp >= sm_end,
        "pen-down arrived at {sp}, before the move ended at {sm_end}"
    );
}

#[test]
fn motors_off_zeroes_the_position() {
    let mut pair = Pair::new(SessionConfig::default(), Fake::v3());
    pair.connect();
    pair.items.extend(polyline(&[(100, 100)], 20, Pen::Up, 0));
    pair.items.push_back(FeedItem::Motors(false));
    plot(&mut pair, Duration::from_millis(5_000));
    assert!(pair.sent_since(0).iter().any(|c| c == "EM,0,0"));
    assert_eq!(pair.session.position(), MotorSteps::ZERO);
}

#[test]
fn a_board_with_a_slow_clock_never_blocks() {
    // Its ticks last 40.7 µs instead of 40 (1.75 % slow, within the session's 2 % tolerance):
    // the chained estimate runs early by 17.5 ms a second, which the clock slack and the QS
    // polls must absorb before a FIFO slot is taken for free.
    for fw in [Fake::v3(), Fake::v2()] {
        let mut fw = fw;
        fw.tick_ns = 40_700;
        let mut pair = Pair::new(SessionConfig::default(), fw);
        pair.connect();
        pair.items.extend(polyline(&zigzag(1000), 10, Pen::Up, 0));
        plot(&mut pair, Duration::from_millis(20_000));
        let (first, last) = first_and_last_move(&pair.fw);
        assert!(
            gaps_within(&pair.fw, first, last).is_empty(),
            "{:?}",
            pair.fw.gaps
        );
    }
}

#[test]
fn a_board_far_slower_than_expected_keeps_its_position() {
    // 5 % slow, beyond the tolerance: estimates finish moves early, and QS lands on moves
    // already counted finished. The session must see that it is behind, not lost.
    for fw in [Fake::v3(), Fake::v2()] {
        let mut fw = fw;
        fw.tick_ns = 42_000;
        let mut pair = Pair::new(SessionConfig::default(), fw);
        pair.connect();
        pair.items.extend(polyline(&zigzag(300), 20, Pen::Up, 0));
        let idle = pair.run_until_event(Duration::from_millis(20_000), |e| {
            matches!(e, Event::Idle { .. } | Event::Error(_))
        });
        assert_eq!(
            idle,
            Event::Idle {
                position: MotorSteps::new(30_000, 0)
            }
        );
        assert_eq!(pair.fw.position(), [30_000, 0]);
    }
}

#[test]
fn a_board_far_faster_than_its_clock_is_fed_by_its_fifo_state() {
    // Issue 13: a simulator running 100 times faster than real time. Fed by the estimate
    // alone, a plot of 10 s of moves took 10 s; read through `QU,6`, the FIFO stays fed as
    // fast as the board empties it, and its parser still never blocks.
    let mut fw = Fake::v3();
    fw.tick_ns = 400;
    let mut pair = Pair::new(SessionConfig::default(), fw);
    pair.connect();
    let start = pair.now;
    pair.items.extend(polyline(&zigzag(1000), 10, Pen::Up, 0));
    plot(&mut pair, Duration::from_millis(20_000));
    let took = pair.now - start;
    assert!(
        took < Duration::from_millis(1_000),
        "10 s of moves took {took} on a board 100 times faster than real time"
    );
    assert!(pair.fw.max_fifo <= 32, "{}", pair.fw.max_fifo);
    assert!(pair.sent_since(0).iter().any(|c| c == "QU,6"));
    // Every move ran once, in order, and the plot ends exactly where it should.
    let moves = pair
        .fw
        .ran
        .iter()
        .filter(|r| r.command.starts_with("SM"))
        .count();
    assert_eq!(moves, 1000);
    let end = MotorSteps::new(100_000, 0);
    assert_eq!(pair.fw.position(), [100_000, 0]);
    assert_eq!(pair.session.position(), end);
    // Progress comes in order, up to the last vertex.
    let vertices: Vec<u32> = pair
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Progress(p) => Some(p.tag.vertex),
            _ => None,
        })
        .collect();
    assert!(vertices.windows(2).all(|w| w[0] < w[1]), "{vertices:?}");
    assert_eq!(vertices.last(), Some(&1000));
}

#[test]
fn a_board_on_time_is_never_asked_for_its_fifo() {
    // The FIFO readings are for boards ahead of their clock only: a real board (on time, or
    // slow within the tolerance) gets the same commands as before they existed.
    for tick_ns in [40_000, 40_700] {
        let mut fw = Fake::v3();
        fw.tick_ns = tick_ns;
        let mut pair = Pair::new(SessionConfig::default(), fw);
        pair.connect();
        pair.items.extend(polyline(&zigzag(300), 10, Pen::Up, 0));
        plot(&mut pair, Duration::from_millis(10_000));
        assert!(
            !pair.sent_since(0).iter().any(|c| c.starts_with("QU,6")),
            "tick {tick_ns} ns"
        );
    }
}
