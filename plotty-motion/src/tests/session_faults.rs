//! Faults: silence, firmware error replies, garbage, arbitrary byte streams.

use std::vec::Vec;

use proptest::prelude::*;

use crate::ebb::ErrorKind;
use crate::ebb::limits::MAX_ENCODED_LEN;
use crate::kinematics::MotorSteps;
use crate::plan::Pen;
use crate::session::{Event, FeedItem, PauseReason, Session, SessionConfig, SessionError};
use crate::time::{Duration, Instant};

use super::fake::Fake;
use super::util::{Pair, polyline};

fn plotting(fw: Fake) -> Pair {
    let mut pair = Pair::new(SessionConfig::default(), fw);
    pair.connect();
    let points: Vec<_> = (1..=60).map(|i| (i * 100, (i % 3) * 50)).collect();
    pair.items.extend(polyline(&points, 50, Pen::Up, 0));
    pair
}

fn first_error(pair: &mut Pair, limit: Duration) -> SessionError {
    match pair.run_until_event(limit, |e| matches!(e, Event::Error(_))) {
        Event::Error(e) => e,
        _ => unreachable!(),
    }
}

#[test]
fn silence_mid_plot_is_a_timeout_then_failure() {
    let mut pair = plotting(Fake::v3());
    pair.run_until(Duration::from_millis(500), |_| false);
    pair.fw.silent = true;
    let went_silent = pair.now;
    let e = first_error(&mut pair, Duration::from_millis(3_000));
    let SessionError::Timeout { command, waited } = e else {
        panic!("{e:?}");
    };
    assert!(!command.is_empty());
    assert!(waited >= Duration::from_millis(1_000));
    // Detected within the reply timeout beyond what was queued (≤ ~1.5 s here).
    let at = pair
        .events
        .iter()
        .find(|(_, e)| matches!(e, Event::Error(_)))
        .unwrap()
        .0;
    assert!(
        at - went_silent < Duration::from_millis(1_600),
        "{}",
        at - went_silent
    );
    // No more moves after the timeout; the resynchronisation gives up after six `V`.
    let sent_after: Vec<_> = pair
        .sent
        .iter()
        .filter(|(t, _)| *t >= at)
        .map(|(_, c)| c.clone())
        .collect();
    let failed = pair.run_until(Duration::from_millis(10_000), |p| p.session.is_failed());
    assert!(failed);
    let all_after: Vec<_> = pair
        .sent
        .iter()
        .filter(|(t, _)| *t >= at)
        .map(|(_, c)| c.clone())
        .collect();
    assert_eq!(all_after, ["V"; 6], "{sent_after:?}");
    assert!(matches!(
        pair.errors().last().unwrap(),
        Event::Error(SessionError::Timeout { command: "V", .. })
    ));
    assert_eq!(pair.session.poll_timeout(), None);
}

#[test]
fn silence_then_recovery_resynchronises_and_pauses() {
    let mut pair = plotting(Fake::v3());
    pair.run_until(Duration::from_millis(500), |_| false);
    pair.fw.silent = true;
    first_error(&mut pair, Duration::from_millis(3_000));
    // The board answers again (the replies in between are lost).
    pair.fw.silent = false;
    let e = pair.run_until_event(Duration::from_millis(5_000), |e| {
        matches!(e, Event::Paused { .. })
    });
    let Event::Paused { reason, resume } = e else {
        unreachable!()
    };
    assert_eq!(reason, PauseReason::Error);
    let [m1, m2] = pair.fw.position();
    assert_eq!(resume.position, MotorSteps::new(m1 as i32, m2 as i32));
    assert!(pair.fw.pen_up);
    assert!(pair.session.is_paused());
}

#[test]
fn a_firmware_error_reply_stops_the_plot() {
    let mut fw = Fake::v3();
    // The fifth SM after connecting is refused.
    fw.reject = Some(("SM", 5));
    let mut pair = plotting(fw);
    let e = first_error(&mut pair, Duration::from_millis(3_000));
    match &e {
        SessionError::Firmware { command, error } => {
            assert_eq!(*command, "SM");
            assert_eq!(error.kind, ErrorKind::InvalidParameter);
        }
        other => panic!("{other:?}"),
    }
    let text = std::format!("{e}");
    assert!(
        text.contains("`SM`") && text.contains("invalid parameter"),
        "{text}"
    );
    let Event::Paused { reason, resume } = pair
        .run_until_event(Duration::from_millis(1_000), |e| {
            matches!(e, Event::Paused { .. })
        })
    else {
        unreachable!()
    };
    assert_eq!(reason, PauseReason::Error);
    let [m1, m2] = pair.fw.position();
    assert_eq!(resume.position, MotorSteps::new(m1 as i32, m2 as i32));
    // The error arrives while the first moves run: the stop interrupts the one running.
    let completed = pair
        .fw
        .ran
        .iter()
        .filter(|r| r.command.starts_with("SM") && !r.aborted)
        .count();
    assert!(completed < 4);
    assert_eq!(resume.tag.map(|t| t.vertex), Some(completed as u32 + 1));
}

#[test]
fn a_garbled_reply_resynchronises_and_pauses() {
    let mut fw = Fake::v3();
    // The reply to the 30th command (a move or a poll while plotting) is replaced by garbage.
    fw.corrupt_reply = Some((30, b"\x00\xff garbage!\r\n".to_vec()));
    let mut pair = plotting(fw);
    let e = first_error(&mut pair, Duration::from_millis(3_000));
    let SessionError::BadReply { line, .. } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(line.as_str(), "?? garbage!");
    let text = std::format!("{e}");
    assert!(text.contains("garbage"), "{text}");
    let Event::Paused { reason, resume } = pair
        .run_until_event(Duration::from_millis(2_000), |e| {
            matches!(e, Event::Paused { .. })
        })
    else {
        unreachable!()
    };
    assert_eq!(reason, PauseReason::Error);
    let [m1, m2] = pair.fw.position();
    assert_eq!(resume.position, MotorSteps::new(m1 as i32, m2 as i32));
    let at = pair
        .events
        .iter()
        .find(|(_, e)| matches!(e, Event::Error(_)))
        .unwrap()
        .0;
    let after: Vec<_> = pair
        .sent
        .iter()
        .filter(|(t, _)| *t >= at)
        .map(|(_, c)| c.as_str())
        .collect();
    assert_eq!(after[..3], ["V", "ES", "SP,1,130,1"], "{after:?}");
    assert_eq!(pair.errors().len(), 1, "{:#?}", pair.errors());
}

#[test]
fn an_unsolicited_line_is_reported_and_the_plot_goes_on() {
    let mut fw = Fake::v3();
    // Right after set-up, while nothing is due.
    fw.garbage_after = Some((14, b"stray\r\n".to_vec()));
    let mut pair = Pair::new(SessionConfig::default(), fw);
    pair.connect();
    pair.items
        .extend(polyline(&[(100, 0), (200, 0)], 50, Pen::Up, 0));
    let idle = pair.run_until_event(Duration::from_millis(2_000), |e| {
        matches!(e, Event::Idle { .. })
    });
    assert!(matches!(idle, Event::Idle { .. }));
    let errors = pair.errors();
    assert_eq!(errors.len(), 1);
    assert!(matches!(
        errors[0],
        Event::Error(SessionError::Unsolicited { .. })
    ));
}

#[test]
fn garbage_while_waiting_for_a_reply_is_a_bad_reply() {
    let mut pair = plotting(Fake::v2());
    pair.run_until(Duration::from_millis(300), |_| false);
    // Inject a line straight into the session while a reply is due.
    let due = pair.session.replies_due();
    pair.session.handle_rx(pair.now, b"\xfe\xfdnonsense\r");
    let mut errors = Vec::new();
    while let Some(e) = pair.session.poll_event() {
        errors.push(e);
    }
    if due > 0 {
        assert!(
            matches!(errors[0], Event::Error(SessionError::BadReply { .. })),
            "{errors:?}"
        );
    } else {
        assert!(matches!(
            errors[0],
            Event::Error(SessionError::Unsolicited { .. })
        ));
    }
}

/// A session that is plotting against a fake, then gets arbitrary bytes and time steps.
fn fuzz_session(chunks: &[(Vec<u8>, u16)]) {
    let mut pair = plotting(Fake::v3());
    pair.run_until(Duration::from_millis(300), |_| false);
    let mut now = pair.now;
    let mut s = pair.session;
    let mut buf = [0u8; MAX_ENCODED_LEN];
    for (bytes, dt) in chunks {
        // A session that gave up stays silent and refuses work, whatever it receives.
        let failed = s.is_failed();
        now += Duration::from_micros(u64::from(*dt) * 37);
        s.handle_rx(now, bytes);
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
        while let Some(n) = s.poll_transmit(now, &mut buf) {
            assert!(!failed, "a failed session sent {:?}", &buf[..n]);
            assert!(n <= MAX_ENCODED_LEN && buf[n - 1] == b'\r');
        }
        let pushed = s.push(FeedItem::Marker(1));
        assert!(!failed || pushed.is_err(), "a failed session took an item");
        while s.poll_event().is_some() {}
        if let Some(t) = s.poll_timeout() {
            // Never a timer in the past that would make a caller spin, except reply
            // deadlines and move ends (handled by the next call).
            assert!(t + Duration::from_millis(100_000) > now);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(
        chunks in proptest::collection::vec(
            (proptest::collection::vec(
                prop_oneof![
                    4 => any::<u8>(),
                    4 => proptest::sample::select(b"OK\r\nQS,0123456789-!Err: EBBV".to_vec()),
                ],
                0..40,
            ), any::<u16>()),
            0..40,
        )
    ) {
        fuzz_session(&chunks);
    }
}

#[test]
fn a_fresh_session_takes_any_bytes() {
    let mut s = Session::new(SessionConfig::default(), Instant::ZERO).unwrap();
    let mut buf = [0u8; 8];
    // A buffer too small for nothing at all is fine; V fits.
    assert_eq!(s.poll_transmit(Instant::ZERO, &mut buf), Some(2));
    for i in 0..=255u8 {
        s.handle_rx(Instant::from_millis(u64::from(i)), &[i, b'\r']);
    }
    s.handle_timeout(Instant::from_millis(10_000));
    while s.poll_event().is_some() {}
}
