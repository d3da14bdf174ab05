//! Ground truth: the firmware's own LM/LT/T3 regression vectors (every row, reference §8.1),
//! the EBB documentation's LM/LT examples (§8.3) and the SM rate table (§2.3), all through the
//! full parser and interrupt.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Bench;
use plotty_fw_sim::{CommandKind, FirmwareVersion};

/// One fixture row: command and axis-1 results.
struct Row {
    command: String,
    ticks: u64,
    steps: u64,
    accumulator: u32,
    rate: i32,
    position: i32,
}

fn rows(file: &str) -> Vec<Row> {
    let path = format!(
        "{}/tests/fixtures/ebb-regression/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 6, "bad row {l:?}");
            Row {
                command: f[0].to_owned(),
                ticks: f[1].parse().unwrap(),
                steps: f[2].parse().unwrap(),
                accumulator: f[3].parse().unwrap(),
                rate: f[4].parse().unwrap(),
                position: f[5].parse().unwrap(),
            }
        })
        .collect()
}

/// What one command did on axis 1, measured from outside.
#[derive(Debug, PartialEq, Eq)]
struct Measured {
    /// Ticks from the load of the command to the load tick of the next one (idle).
    span: u64,
    steps: [u64; 2],
    accumulator: u32,
    rate: i32,
    position: [i32; 2],
}

/// Sends `setup` then `command` to `bench`, runs to idle, measures the command.
fn measure(bench: &mut Bench, command: &str) -> Measured {
    let start_pos = bench.fw.status().motor_position;
    assert!(
        bench.cmd(command).ends_with("OK\r\n"),
        "{command} not accepted"
    );
    bench.settle();
    let rec = &bench.rec;
    let (t0, _) = *rec.starts.last().expect("command never loaded");
    let t_end = *rec.idles.last().expect("never idle");
    let mut steps = [0u64; 2];
    let mut prev = start_pos;
    for &(_, p) in &rec.steps {
        for i in 0..2 {
            steps[i] += u64::from(p[i] != prev[i]);
        }
        prev = p;
    }
    let st = bench.fw.status();
    Measured {
        span: t_end - t0,
        steps,
        accumulator: st.accumulators[0],
        rate: st.rates[0],
        position: [prev[0] - start_pos[0], prev[1] - start_pos[1]],
    }
}

fn check_fixture(file: &str, expected_rows: usize, timed: bool) {
    let rows = rows(file);
    assert_eq!(rows.len(), expected_rows);
    for row in rows {
        let mut b = Bench::new(FirmwareVersion::V3_0_3);
        assert_eq!(b.cmd("CU,251,1"), "OK\r\n");
        let m = measure(&mut b, &row.command);
        // 3.x LT/T3 leave one idle tick after the counted intervals.
        let active = if timed { m.span - 1 } else { m.span };
        assert_eq!(
            (active, m.steps[0], m.accumulator, m.rate, m.position[0]),
            (
                row.ticks,
                row.steps,
                row.accumulator,
                row.rate,
                row.position
            ),
            "{}",
            row.command
        );
    }
}

#[test]
fn every_lm_regression_vector() {
    check_fixture("lm.tsv", 79, false);
}

#[test]
fn every_lt_regression_vector() {
    check_fixture("lt.tsv", 80, true);
}

#[test]
fn every_t3_regression_vector() {
    check_fixture("t3.tsv", 51, true);
}

/// Reference §8.3: the EBB documentation's examples, from a zeroed accumulator.
#[test]
fn documentation_lm_lt_examples() {
    // (command, ticks from load to done (None: LT, not checked), steps axis 1, axis 2)
    let cases: [(&str, Option<u64>, [u64; 2]); 10] = [
        ("LM,3865471,60,1732,0,0,0", Some(10169), [60, 0]),
        ("LM,85899346,10,0,17180814,2,0", Some(250), [10, 2]),
        ("LM,85899346,500,0,85899346,250,0", Some(12500), [500, 250]),
        ("LM,17180814,6,0,57266231,20,0", Some(750), [6, 20]),
        ("LM,42950000,50,13400,0,0,0", Some(1924), [50, 0]),
        ("LM,17179000,75,-687,8592000,75,687", Some(12500), [75, 75]),
        ("LT,12500,17179000,-687,8592000,687", Some(12501), [75, 75]),
        ("LT,10169,3865471,1732,0,0,3", Some(10170), [60, 0]),
        // Doc errata: Rate 33865471 is ≈394 steps/s.
        ("LM,33865471,1000,0,0,0,0", Some(63413), [1000, 0]),
        ("LT,25000,33865471,0,0,0", Some(25001), [394, 0]),
    ];
    for (cmd, ticks, steps) in cases {
        let mut b = Bench::new(FirmwareVersion::V3_0_3);
        let m = measure(&mut b, cmd);
        if let Some(t) = ticks {
            assert_eq!(m.span, t, "{cmd}");
        }
        assert_eq!(m.steps, steps, "{cmd}");
    }
}

/// Reference §2.3: the SM worked examples, rates and durations from a cleared accumulator,
/// through the parser of each version.
#[test]
fn sm_rate_table_through_the_firmware() {
    let table: [(&str, u32, u64, u32, u64); 6] = [
        ("SM,1000,1000", 85_899_344, 25_001, 85_899_345, 25_001),
        ("SM,500,2009,2009", 345_143_552, 12_501, 345_143_571, 12_501),
        ("SM,28,100,0", 306_783_360, 701, 306_774_016, 701),
        ("SM,1,1", 85_899_344, 26, 85_852_160, 26),
        ("SM,1,25", 2_147_483_648, 25, 2_147_483_647, 26),
        ("SM,30,5", 14_316_558, 750, 14_286_848, 752),
    ];
    for (cmd, r3, t3, r2, t2) in table {
        for (version, rate, ticks) in [
            (FirmwareVersion::V3_0_3, r3, t3),
            (FirmwareVersion::V2_8_1, r2, t2),
        ] {
            let mut b = Bench::new(version);
            let m = measure(&mut b, cmd);
            assert_eq!(m.span, ticks, "{version} {cmd}");
            assert_eq!(m.rate as u32, rate, "{version} {cmd}");
            assert_eq!(b.rec.starts.last().map(|s| s.1), Some(CommandKind::Sm));
        }
    }
}

/// Accumulators carry over between SMs, so a stream of moves does not drift: 40 × SM,25
/// (1 s of 25 ms pieces) ends within one tick of 25 000 ticks after the first load.
#[test]
fn carried_accumulators_do_not_drift() {
    let mut b = Bench::new(FirmwareVersion::V3_0_3);
    assert_eq!(b.cmd("CU,4,32"), "OK\r\n");
    let mut text = String::new();
    for _ in 0..40 {
        text.push_str("SM,25,100,37\r");
    }
    b.send_bytes(text.as_bytes());
    b.settle();
    let t0 = b.rec.starts.first().unwrap().0;
    let t_end = *b.rec.idles.last().unwrap();
    assert!((t_end - t0).abs_diff(25_000) <= 1, "{}", t_end - t0);
    assert_eq!(b.fw.status().steps, [4000, 1480]);
    // No gaps: every command loads in the tick the previous one finished.
    assert_eq!(b.rec.starts.len(), 40);
    assert_eq!(b.rec.idles.len(), 1);
}
