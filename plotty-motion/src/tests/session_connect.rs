//! Handshake and set-up: the exact command sequence per firmware version, the capture of
//! reference §5.4 where they overlap, kept positions, boards that are not EBBs.

use std::vec::Vec;

use crate::ebb::FirmwareVersion;
use crate::kinematics::MotorSteps;
use crate::session::{Event, ProtocolLine, SessionConfig, SessionError};
use crate::time::Duration;

use super::fake::{Fake, Identity};
use super::util::Pair;

fn connect(fw: Fake, config: SessionConfig) -> Pair {
    let mut pair = Pair::new(config, fw);
    pair.connect();
    assert!(pair.errors().is_empty(), "{:#?}", pair.errors());
    pair
}

/// The set-up commands of the AxiDraw 3.9.7 capture (reference §5.4) that we send too, in the
/// capture's byte form.
const CAPTURE: [&str; 8] = [
    "SC,4,20641",
    "SC,5,15248",
    "SC,11,1618",
    "SC,12,1079",
    "SP,1,130,1",
    "SC,8,8",
    "SR,60000",
    "EM,1,1",
];

#[test]
fn v3_0_3_switches_to_future_syntax_and_deep_fifo() {
    let pair = connect(Fake::v3(), SessionConfig::default());
    assert_eq!(
        pair.sent_since(0),
        [
            "V",
            "CU,1,1",
            "CU,10,1",
            "ES",
            "SC,4,20641",
            "SC,5,15248",
            "SC,11,1618",
            "SC,12,1079",
            "SC,8,8",
            "SR,60000",
            "CU,4,32",
            "QC",
            "QG",
            "CU,60,250",
            "SP,1,130,1",
            "EM,1,1",
            "QS",
            "QS",
        ]
    );
    for c in CAPTURE {
        assert!(pair.sent_since(0).iter().any(|s| s == c), "{c} missing");
    }
    let events: Vec<_> = pair.events.iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(
        events[0],
        Event::Connected {
            version: FirmwareVersion::LATEST,
            line: ProtocolLine::V3
        }
    );
    assert!(events.contains(&Event::Ready {
        position: MotorSteps::ZERO,
        kept_position: false,
        accumulators: Some([0, 0]),
    }));
    assert_eq!(pair.session.fifo_depth(), 32);
    assert_eq!(pair.session.version(), Some(FirmwareVersion::LATEST));
    // Ready only once the pen raise (130 ms) and EM have run.
    let ready_at = pair
        .events
        .iter()
        .find(|(_, e)| matches!(e, Event::Ready { .. }))
        .unwrap()
        .0;
    let sp = pair
        .sent
        .iter()
        .find(|(_, c)| c.starts_with("SP"))
        .unwrap()
        .0;
    assert!(
        ready_at - sp >= Duration::from_millis(130),
        "{ready_at} {sp}"
    );
    assert!(pair.fw.pen_up);
}

#[test]
fn v2_8_1_stays_legacy_with_one_slot() {
    let pair = connect(Fake::v2(), SessionConfig::default());
    assert_eq!(
        pair.sent_since(0),
        [
            "V",
            "CU,1,1",
            "ES",
            "SC,4,20641",
            "SC,5,15248",
            "SC,11,1618",
            "SC,12,1079",
            "SC,8,8",
            "SR,60000",
            "QC",
            "SP,1,130,1",
            "EM,1,1",
            "QS",
            "QS",
        ]
    );
    assert_eq!(pair.session.line(), ProtocolLine::V2);
    assert_eq!(pair.session.fifo_depth(), 1);
}

#[test]
fn v3_0_0_keeps_legacy_replies_but_deepens_the_fifo() {
    let fw = Fake::new(Identity::Ebb(FirmwareVersion::new(3, 0, 0)));
    let pair = connect(fw, SessionConfig::default());
    let sent = pair.sent_since(0);
    assert!(!sent.iter().any(|c| c.starts_with("CU,10")), "{sent:?}");
    assert!(sent.iter().any(|c| c == "CU,4,32"));
    assert_eq!(pair.session.line(), ProtocolLine::V3);
}

#[test]
fn forcing_v2_on_a_v3_board() {
    let config = SessionConfig {
        line: Some(ProtocolLine::V2),
        ..SessionConfig::default()
    };
    let pair = connect(Fake::v3(), config);
    let sent = pair.sent_since(0);
    assert!(
        !sent
            .iter()
            .any(|c| c.starts_with("CU,10") || c.starts_with("CU,4"))
    );
    assert_eq!(pair.session.fifo_depth(), 1);
}

#[test]
fn forcing_v3_on_a_v2_board_fails() {
    let config = SessionConfig {
        line: Some(ProtocolLine::V3),
        ..SessionConfig::default()
    };
    let mut pair = Pair::new(config, Fake::v2());
    let e = pair.run_until_event(Duration::from_millis(100), |e| matches!(e, Event::Error(_)));
    assert!(matches!(
        e,
        Event::Error(SessionError::UnsupportedFirmware { .. })
    ));
    assert!(pair.session.is_failed());
}

#[test]
fn a_board_left_in_future_mode_is_understood() {
    let pair = connect(Fake::v3().with_future_mode(), SessionConfig::default());
    assert!(pair.session.is_ready());
    // 3.0.0 left in future mode is switched back to legacy.
    let fw = Fake::new(Identity::Ebb(FirmwareVersion::new(3, 0, 0))).with_future_mode();
    let pair = connect(fw, SessionConfig::default());
    assert!(pair.sent_since(0).iter().any(|c| c == "CU,10,0"));
}

#[test]
fn not_an_ebb() {
    let mut pair = Pair::new(
        SessionConfig::default(),
        Fake::new(Identity::Other("Hello")),
    );
    let e = pair.run_until_event(Duration::from_millis(5_000), |e| {
        matches!(e, Event::Error(_))
    });
    match e {
        Event::Error(SessionError::NotAnEbb { reply }) => assert_eq!(reply.as_str(), "Hello"),
        other => panic!("{other:?}"),
    }
    assert!(pair.session.is_failed());
    assert_eq!(pair.session.poll_timeout(), None);
    let text = pair.errors()[0].clone().error_text();
    assert!(text.contains("not an EiBotBoard"), "{text}");
}

#[test]
fn silence_at_connect_is_a_timeout() {
    let mut fw = Fake::v3();
    fw.silent = true;
    let mut pair = Pair::new(SessionConfig::default(), fw);
    let e = pair.run_until_event(Duration::from_millis(5_000), |e| {
        matches!(e, Event::Error(_))
    });
    assert!(matches!(
        e,
        Event::Error(SessionError::Timeout { command: "V", .. })
    ));
    // Three attempts, one second each.
    assert_eq!(pair.sent_since(0), ["V", "V", "V"]);
    assert!(pair.session.is_failed());
}

#[test]
fn keep_position_reads_qe_and_skips_em() {
    let config = SessionConfig {
        keep_position: true,
        ..SessionConfig::default()
    };
    let fw = Fake::v3().with_motors(1, [1234, -567]);
    let pair = connect(fw, config);
    let sent = pair.sent_since(0);
    assert!(sent.iter().any(|c| c == "QE"));
    assert!(!sent.iter().any(|c| c.starts_with("EM")), "{sent:?}");
    // The kept accumulators are read too (the fake board answers `QU,0,0`).
    assert_eq!(sent.last().map(String::as_str), Some("QU,200"), "{sent:?}");
    assert!(pair.events.iter().any(|(_, e)| *e
        == Event::Ready {
            position: MotorSteps::new(1234, -567),
            kept_position: true,
            accumulators: Some([0, 0]),
        }));
    assert_eq!(pair.session.position(), MotorSteps::new(1234, -567));
}

#[test]
fn keep_position_at_the_wrong_resolution_sends_em() {
    let config = SessionConfig {
        keep_position: true,
        ..SessionConfig::default()
    };
    let fw = Fake::v3().with_motors(2, [10, 10]);
    let pair = connect(fw, config);
    assert!(pair.sent_since(0).iter().any(|c| c == "EM,1,1"));
    assert!(pair.events.iter().any(|(_, e)| *e
        == Event::Ready {
            position: MotorSteps::ZERO,
            kept_position: false,
            accumulators: Some([0, 0]),
        }));
}

#[test]
fn keep_position_before_2_8_reads_pins() {
    let config = SessionConfig {
        keep_position: true,
        ..SessionConfig::default()
    };
    let fw = Fake::new(Identity::Ebb(FirmwareVersion::new(2, 7, 0))).with_motors(1, [5, 6]);
    let pair = connect(fw, config);
    let sent = pair.sent_since(0);
    let pins: Vec<_> = sent
        .iter()
        .filter(|c| c.starts_with("PI"))
        .cloned()
        .collect();
    assert_eq!(pins, ["PI,E,0", "PI,C,1", "PI,E,2", "PI,E,1", "PI,A,6"]);
    assert!(!sent.iter().any(|c| c.starts_with("EM")));
    assert_eq!(pair.session.position(), MotorSteps::new(5, 6));
}

impl Event {
    /// The error's message (tests only).
    fn error_text(self) -> std::string::String {
        match self {
            Self::Error(e) => std::format!("{e}"),
            other => std::format!("{other:?}"),
        }
    }
}

#[test]
fn a_damaged_version_reply_is_asked_again() {
    // The first `V` is answered with a byte lost in the version number: not a reason to call
    // the board "not a plotter".
    let mut fw = Fake::v3();
    fw.corrupt_reply = Some((1, b"EBBv13_and_above EB Firmware Version .0.3\r\n".to_vec()));
    let pair = connect(fw, SessionConfig::default());
    assert!(pair.session.is_ready());
    let versions = pair.sent_since(0).iter().filter(|c| *c == "V").count();
    assert_eq!(versions, 2, "{:?}", pair.sent_since(0));
}

#[test]
fn the_motor_supply_is_read_at_set_up_and_a_low_one_pauses_a_plot() {
    // At set-up: reported, and the caller decides.
    let mut fw = Fake::v3();
    fw.voltage = 180;
    let pair = connect(fw, SessionConfig::default());
    assert!(pair.session.is_ready());
    assert!(
        pair.events.iter().any(|(_, e)| *e
            == Event::Power {
                voltage: 180,
                low: true
            }),
        "no low power report"
    );
    let pair = connect(Fake::v3(), SessionConfig::default());
    assert!(pair.events.iter().any(|(_, e)| *e
        == Event::Power {
            voltage: 700,
            low: false
        }));
}

#[test]
fn a_supply_drop_while_away_means_the_kept_position_is_not_trusted() {
    let config = SessionConfig {
        keep_position: true,
        ..SessionConfig::default()
    };
    // The motors are on at the right resolution, but the supply fell below the threshold an
    // earlier session set since then: the carriage may have slipped.
    let mut fw = Fake::v3().with_motors(1, [1234, -567]);
    fw.power_threshold = 250;
    fw.power_lost = true;
    let pair = connect(fw, config);
    let sent = pair.sent_since(0);
    assert!(sent.iter().any(|c| c == "EM,1,1"), "{sent:?}");
    assert!(pair.events.iter().any(|(_, e)| *e == Event::PowerLost));
    assert!(pair.events.iter().any(|(_, e)| *e
        == Event::Ready {
            position: MotorSteps::ZERO,
            kept_position: false,
            accumulators: Some([0, 0]),
        }));
    // The latch is armed for this session.
    assert_eq!(pair.fw.power_threshold, 250);
}

#[test]
fn the_power_latch_is_3x_only_and_follows_min_voltage() {
    let v2 = connect(Fake::v2(), SessionConfig::default());
    let sent = v2.sent_since(0);
    assert!(
        !sent.iter().any(|c| c == "QG" || c.starts_with("CU,60")),
        "{sent:?}"
    );
    let off = SessionConfig {
        min_voltage: None,
        ..SessionConfig::default()
    };
    let v3 = connect(Fake::v3(), off);
    let sent = v3.sent_since(0);
    assert!(
        !sent.iter().any(|c| c == "QG" || c.starts_with("CU,60")),
        "{sent:?}"
    );
}
