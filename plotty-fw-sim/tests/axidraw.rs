//! The AxiDraw 3.9.7 capture of reference §5.4 replayed against both firmware versions, a
//! plotted square read back with QS, and random byte streams that must never panic.
//!
//! The capture holds the commands the AxiDraw software sent (to a fake board that answered
//! everything at once), not a real board's replies: each reply is checked byte for byte against
//! what the reference's reply table (§1.2) says that command gets, written out here by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Bench;
use plotty_fw_sim::FirmwareVersion::{self, V2_8_1, V3_0_3};
use plotty_fw_sim::{Firmware, NoObserver};
use proptest::prelude::*;

/// The captured stream, in order (reference §5.4).
const CAPTURE: &[&str] = &[
    "v",
    "V",
    "QB",
    "QB",
    "V",
    "QC",
    "QL",
    "QP",
    "SC,4,20641",
    "SC,5,15248",
    "SC,11,1618",
    "SC,12,1079",
    "SP,1,130,1",
    "SL,31",
    "SC,8,8",
    "V",
    "SR,60000",
    "PI,E,0",
    "PI,C,1",
    "PI,E,2",
    "PI,E,1",
    "PI,A,6",
    "EM,1,1",
    "SM,28,100,0",
    "SM,28,200,0",
    "SM,27,300,0",
    "SM,28,400,0",
    "SM,28,300,0",
    "SM,28,200,0",
    "SM,28,100,0",
    "SP,0,146,1",
    "QB",
    "SM,33,44,44",
    "SM,33,88,88",
    "SM,500,2009,2009",
    "QB",
    "SM,33,132,132",
    "SM,26,78,78",
    "SM,27,49,49",
    "SM,27,49,-49",
    "SM,26,78,-78",
    "SM,500,2009,-2009",
    "QB",
    "SM,33,132,-132",
    "SM,33,88,-88",
    "SM,33,44,-44",
    "SP,1,130,1",
    "QB",
    "SM,26,-75,0",
    "SM,27,-150,0",
    "SM,26,-224,0",
    "SM,26,-300,0",
    "SM,27,-374,0",
    "SM,244,-4154,0",
    "QB",
    "SM,26,-374,0",
    "SM,26,-300,0",
    "SM,27,-224,0",
    "SM,26,-150,0",
    "SM,26,-75,0",
    "SM,10,0,0",
];

/// What the reference's reply table (§1.2) says a board answers to each line of the capture.
fn expected_reply(version: FirmwareVersion, cmd: &str) -> String {
    let version_line = format!("EBBv13_and_above EB Firmware Version {version}\r\n");
    match cmd {
        "v" | "V" => version_line,
        "QB" => "0\r\nOK\r\n".into(),
        "QC" if version.is_v3() => "500,404\r\nOK\r\n".into(),
        "QC" => "0500,0404\r\nOK\r\n".into(),
        "QL" if version.is_v3() => "0\r\nOK\r\n".into(),
        "QL" => "000\r\nOK\r\n".into(),
        "QP" => "1\n\rOK\r\n".into(),
        // Drivers disabled (active-low enables high) and 1/16 (MS1..3 high) at boot.
        c if c.starts_with("PI,") => "PI,1\r\n".into(),
        _ => "OK\r\n".into(),
    }
}

#[test]
fn axidraw_397_capture_is_answered_as_the_reply_table_says() {
    for version in [V3_0_3, V2_8_1] {
        let mut b = Bench::new(version);
        let t_first = b.fw.now_ticks();
        for cmd in CAPTURE {
            assert_eq!(b.cmd(cmd), expected_reply(version, cmd), "{version} {cmd}");
        }
        b.settle();
        // The path returns home: 1600 steps out on motor 1, two 30 mm sides, 6400 back.
        assert_eq!(b.cmd("QS"), "0,0\n\rOK\r\n", "{version}");
        assert_eq!(b.fw.status().motor_position, [0, 0]);
        assert_eq!(b.cmd("QE"), "16,16\n\rOK\r\n");
        assert_eq!(
            b.cmd("QL"),
            if version.is_v3() {
                "31\r\nOK\r\n"
            } else {
                "031\r\nOK\r\n"
            }
        );
        assert_eq!(b.cmd("PI,E,0"), "PI,0\r\n", "drivers enabled now");
        // Pen: down once (SP,0), up once (SP,1); the first SP,1 kept it up.
        let pens: Vec<bool> = b.rec.pens.iter().map(|p| p.1).collect();
        assert_eq!(pens, [false, true], "{version}");
        // Fed without gaps, the stream lasts the sum of its parts: 2.422 s (§5.5), within
        // one tick per SM (rounding carried in the accumulators) and the first load.
        let first = b.rec.starts.first().unwrap().0;
        let last = *b.rec.idles.last().unwrap();
        let busy = last - first;
        assert!(busy.abs_diff(60_550) <= 40, "{version}: {busy} ticks");
        assert!(first > t_first);
        // Pen-down drawing: the two 30 mm sides, 2400 steps per motor each.
        let down = b.rec.pens[0].0;
        let up = b.rec.pens[1].0;
        let drawn: Vec<[i32; 2]> = b
            .rec
            .steps
            .iter()
            .filter(|s| s.0 > down && s.0 < up)
            .map(|s| s.1)
            .collect();
        assert_eq!(drawn.first().map(|p| p[0]), Some(1601));
        assert_eq!(drawn.last().copied(), Some([6400, 0]));
    }
}

/// A 10 mm square at 80 steps/mm on the mixed (CoreXY) axes, corners read with QS.
#[test]
fn qs_after_a_plotted_square() {
    for version in [V3_0_3, V2_8_1] {
        let mut b = Bench::new(version);
        b.cmd("EM,1,1");
        b.cmd("SP,0,150");
        // +x: both motors +800; +y: m1 +800, m2 −800; then back.
        let sides = [
            ("SM,400,800,800", "800,800"),
            ("SM,400,800,-800", "1600,0"),
            ("SM,400,-800,-800", "800,-800"),
            ("SM,400,-800,800", "0,0"),
        ];
        for (cmd, corner) in sides {
            assert_eq!(b.cmd(cmd), "OK\r\n");
            b.settle();
            assert_eq!(
                b.cmd("QS"),
                format!("{corner}\n\rOK\r\n"),
                "{version} {cmd}"
            );
        }
        b.cmd("SP,1,150");
        b.settle();
        assert_eq!(
            b.cmd("QG"),
            if version.is_v3() { "10\r\n" } else { "D0\r\n" }
        );
        // CS zeroes QS but not the physical position, EM zeroes both counters only.
        b.cmd("SM,100,17,-3");
        b.settle();
        assert_eq!(b.cmd("QS"), "17,-3\n\rOK\r\n");
        b.cmd("CS");
        assert_eq!(b.cmd("QS"), "0,0\n\rOK\r\n");
        assert_eq!(b.fw.status().motor_position, [17, -3]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Arbitrary bytes in arbitrary packet splits with time in between: no panic, bounded
    /// output, and the board stays consistent.
    #[test]
    fn arbitrary_input_never_panics(
        chunks in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..120), 0u64..3000), 0..40),
        v3 in any::<bool>(),
    ) {
        let version = if v3 { V3_0_3 } else { V2_8_1 };
        let mut fw = Firmware::new(version);
        let mut out = Vec::new();
        let mut fed = 0usize;
        for (bytes, ticks) in &chunks {
            let mut rest: &[u8] = bytes;
            for _ in 0..4 {
                let n = fw.receive(rest);
                fed += n;
                rest = &rest[n..];
                fw.run_ticks(*ticks, &mut NoObserver);
                fw.take_output(&mut out);
                if rest.is_empty() { break; }
            }
            let _ = fw.next_event_in();
            let st = fw.status();
            prop_assert!(st.fifo_len <= 255);
        }
        // The wordiest reply per input byte is CK's (about 45 bytes per byte of `CK\r`).
        prop_assert!(out.len() <= 256 + 64 * fed, "{} bytes out for {} in", out.len(), fed);
    }

    /// Random command streams: bulk skipping equals strict tick-by-tick.
    #[test]
    fn fast_forward_matches_tick_by_tick(
        cmds in proptest::collection::vec(command(), 1..12),
        gaps in proptest::collection::vec(0u64..2000, 12),
        v3 in any::<bool>(),
    ) {
        let version = if v3 { V3_0_3 } else { V2_8_1 };
        let mut results = Vec::new();
        for fast in [true, false] {
            let mut b = Bench::new(version);
            b.fw.set_fast_forward(fast);
            let mut replies = String::new();
            for (c, g) in cmds.iter().zip(&gaps) {
                replies.push_str(&b.cmd(c));
                b.run(*g);
            }
            b.run(60_000);
            replies.push_str(&b.output());
            results.push((replies, b.rec.clone(), b.fw.status()));
        }
        prop_assert_eq!(&results[0], &results[1]);
    }
}

/// A plausible command with random arguments.
fn command() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u32..300, -3000i32..3000, -3000i32..3000).prop_map(|(d, a, b)| format!("SM,{d},{a},{b}")),
        (1u32..300).prop_map(|d| format!("SM,{d},0,0")),
        (0u8..2, 0u16..200).prop_map(|(s, d)| format!("SP,{s},{d}")),
        (0u16..100).prop_map(|d| format!("TP,{d}")),
        (0u8..6, 0u8..2).prop_map(|(a, b)| format!("EM,{a},{b}")),
        (1u32..5_000_000, 1i32..200, -20000i32..20000)
            .prop_map(|(r, s, a)| format!("LM,{r},{s},{a},{r},{s},{a},3")),
        (1u32..3000, -50_000_000i32..50_000_000, -20000i32..20000)
            .prop_map(|(n, r, a)| format!("LT,{n},{r},{a},{r},0,1")),
        (1i32..5_000_000, 1i32..200, -20000i32..20000, -30i32..30)
            .prop_map(|(r, s, a, j)| format!("L3,{r},{s},{a},{j},{r},{s},0,{j}")),
        (
            1u32..3000,
            -50_000_000i32..50_000_000,
            -20000i32..20000,
            -30i32..30
        )
            .prop_map(|(n, r, a, j)| format!("T3,{n},{r},{a},{j},{r},0,0")),
        (1u32..25000).prop_map(|r| format!("HM,{r}")),
        (1u16..32).prop_map(|d| format!("CU,4,{d}")),
        Just("ES".to_owned()),
        Just("CS".to_owned()),
        Just("QG".to_owned()),
        (1000u16..30000, 0u8..10, 0u16..500).prop_map(|(p, r, s)| format!("S2,{p},{r},{s},5")),
        (0u32..3000).prop_map(|ms| format!("SR,{ms}")),
    ]
}
