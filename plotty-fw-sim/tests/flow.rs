//! Motion FIFO, parser blocking and timing at command boundaries (reference §1.5, §2.2, §3,
//! §6): back-pressure through `receive`, held replies, HM and `CU,4` waiting for idle,
//! EM at execution time vs moves enabling drivers at parse time, pen servo timing and power.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Bench, Recorder};
use plotty_fw_sim::FirmwareVersion::{V2_8_1, V3_0_3};
use plotty_fw_sim::{CommandKind, Firmware, FirmwareVersion, NoObserver};

/// Depth 1: one command executing, one in the FIFO, and the third stuck in the parser, which
/// then stops servicing USB (no replies, not even to ES) until a slot frees.
#[test]
fn depth_one_back_pressure() {
    for v in [V3_0_3, V2_8_1] {
        let mut b = Bench::new(v);
        assert_eq!(b.cmd("SM,100,100"), "OK\r\n");
        b.run(2);
        assert_eq!(b.fw.status().current, Some(CommandKind::Sm));
        assert_eq!(b.cmd("SM,100,100"), "OK\r\n");
        assert_eq!(b.fw.status().fifo_len, 1);
        // The third command and a query in the same packet.
        let packet = b"QS\rSM,100,100\rQP\r";
        let n = b.fw.receive(packet);
        assert_eq!(
            n, 14,
            "{v}: consumed up to the blocked command's terminator"
        );
        assert!(b.fw.is_blocked());
        assert!(b.fw.status().blocked);
        assert_eq!(
            b.output(),
            "",
            "{v}: the packet's replies are held while blocked"
        );
        assert_eq!(
            b.fw.receive(b"ES\r"),
            0,
            "{v}: ES is not seen while blocked"
        );
        assert_eq!(b.fw.receive(&packet[n..]), 0);
        // The slot frees when the first SM ends (100 ms + 1 tick from a cleared accumulator).
        let wait = b.fw.next_event_in().unwrap();
        assert!(wait > 2400 && wait <= 2500, "{v}: {wait}");
        b.run(wait - 1);
        assert!(b.fw.is_blocked());
        b.run(1);
        assert!(!b.fw.is_blocked());
        assert_eq!(b.output(), "0,0\n\rOK\r\nOK\r\n", "{v}");
        // The rest of the packet goes through now.
        assert_eq!(b.fw.receive(&packet[n..]), 3);
        assert_eq!(b.output(), "1\n\rOK\r\n");
        let reply = b.cmd("ES");
        assert!(reply.starts_with('1'), "{v}: {reply}");
    }
}

/// Gap-free chaining: the next command loads in the tick the previous one finished, and a
/// command queued on an idle board loads at the end of the next tick.
#[test]
fn command_boundaries() {
    let mut b = Bench::new(V3_0_3);
    b.cmd("CU,4,4");
    let t = b.fw.now_ticks();
    b.send_bytes(b"SM,2,10\rLT,7,0,0,0,0\rSM,1,0,0\rEM,1,1\r");
    b.settle();
    let starts: Vec<u64> = b.rec.starts.iter().map(|s| s.0 - t).collect();
    // SM,2,10 from a cleared accumulator: the truncated rate puts the 10th step at tick 51.
    // LT,7: 7 intervals + 1 idle tick. SM,1,0,0: 25 ticks. EM: 1 tick.
    assert_eq!(starts, vec![1, 1 + 51, 1 + 51 + 8, 1 + 51 + 8 + 25]);
    assert_eq!(b.rec.idles, vec![t + 1 + 51 + 8 + 25 + 1]);
    let kinds: Vec<CommandKind> = b.rec.starts.iter().map(|s| s.1).collect();
    assert_eq!(
        kinds,
        [
            CommandKind::Sm,
            CommandKind::Lt,
            CommandKind::Delay,
            CommandKind::Em
        ]
    );
    // 2.x LT runs exactly its intervals.
    let mut v2 = Bench::new(V2_8_1);
    let t = v2.fw.now_ticks();
    v2.cmd("LT,7,1000,0,0,0");
    v2.settle();
    assert_eq!(v2.rec.idles, vec![t + 1 + 7]);
}

/// HM (and CU,4) wait until motion is idle, then read the step counters.
#[test]
fn home_waits_for_idle() {
    let mut b = Bench::new(V3_0_3);
    b.cmd("SM,200,300,-400");
    b.run(3);
    let n = b.fw.receive(b"HM,1000\r");
    assert_eq!(n, 8);
    assert!(b.fw.is_blocked());
    assert_eq!(b.settle(), "OK\r\n");
    assert_eq!(b.fw.status().steps, [0, 0]);
    assert_eq!(b.rec.starts.last().unwrap().1, CommandKind::Hm);
    // Major axis (400 steps) at 1000 steps/s: 0.4 s, minor proportional.
    let hm_start = b.rec.starts.last().unwrap().0;
    let end = *b.rec.idles.last().unwrap();
    assert!((end - hm_start).abs_diff(10_000) <= 1, "{}", end - hm_start);
    // Zero distance: nothing queued, still OK.
    assert_eq!(b.cmd("HM,1000"), "OK\r\n");
    assert!(!b.fw.status().executing);
    // Absolute target.
    b.cmd("HM,25000,-100,50");
    b.settle();
    assert_eq!(b.fw.status().steps, [-100, 50]);

    // CU,4 waits for idle too.
    let mut c = Bench::new(V3_0_3);
    c.cmd("SM,50,10");
    c.run(2);
    assert_eq!(c.fw.receive(b"CU,4,40\r"), 8);
    assert!(c.fw.is_blocked());
    assert_eq!(c.settle(), "OK\r\n");
    assert_eq!(c.cmd("QU,3"), "QU,3,32\r\nOK\r\n", "values above 32 clamp");
    assert_eq!(c.cmd("QU,6"), "QU,6,0\r\nOK\r\n");
}

#[test]
fn v2_home_dog_leg() {
    let mut b = Bench::new(V2_8_1);
    b.cmd("SM,3000,3000,0");
    b.cmd("SM,100,0,2");
    b.settle();
    assert_eq!(b.fw.status().steps, [3000, 2]);
    assert_eq!(b.cmd("HM,1000"), "OK\r\n");
    b.settle();
    assert_eq!(b.fw.status().steps, [0, 0]);
    let hm: Vec<_> = b
        .rec
        .starts
        .iter()
        .filter(|s| s.1 == CommandKind::Hm)
        .collect();
    assert_eq!(hm.len(), 2, "minor axis too slow: two moves");
    // Already home: 2.x queues a 10 ms delay.
    b.rec = Recorder::default();
    assert_eq!(b.cmd("HM,1000"), "OK\r\n");
    b.settle();
    assert_eq!(
        b.rec.starts.iter().map(|s| s.1).collect::<Vec<_>>(),
        [CommandKind::Delay]
    );
    assert_eq!(
        b.cmd("HM,26000,20000,0"),
        "!0 Err: HM <axis1> step rate > 25K steps/second.\n\r"
    );
    assert_eq!(
        b.cmd("HM,1000,17000000,0"),
        "!0 Err: steps to home larger than 16,777,215.\n\r"
    );
}

/// Moves switch the drivers on when parsed; EM acts when it executes.
#[test]
fn enables_at_parse_vs_execution() {
    let mut b = Bench::new(V3_0_3);
    b.cmd("CU,4,8");
    b.cmd("SM,100,10");
    assert_eq!(
        b.fw.status().motors_enabled,
        [true, true],
        "enabled at parse time"
    );
    b.cmd("EM,0,0");
    b.cmd("SM,100,10");
    assert_eq!(b.fw.status().motors_enabled, [true, true]);
    b.settle();
    // EM,0,0 ran after the first move; the second move ran with the drivers off
    // (its steps still counted).
    assert_eq!(b.fw.status().motors_enabled, [false, false]);
    assert_eq!(
        b.fw.status().steps,
        [10, 0],
        "EM zeroed the counters between the moves"
    );
    assert_eq!(b.fw.status().motor_position, [20, 0]);
    assert_eq!(b.cmd("QE"), "0,0\n\rOK\r\n");
    // CU,50,0: no auto enable.
    b.cmd("CU,50,0");
    b.cmd("SM,10,1");
    assert_eq!(b.fw.status().motors_enabled, [false, false]);
    // Observer: parse-time enables arrive with the next run, EM executions as they happen.
    let mut c = Bench::new(V3_0_3);
    c.cmd("EM,5,0");
    c.cmd("SM,10,1");
    c.settle();
    // The move enabled both drivers when parsed; the EM queued before it then disabled
    // motor 2 when it executed, so the move ran with motor 2 off.
    let m: Vec<([bool; 2], u8)> = c.rec.motors.iter().map(|m| (m.1, m.2)).collect();
    assert_eq!(m, [([true, true], 16), ([true, false], 1)]);
}

/// Reference §3: SP's delay counts from the start of the servo move; 0 → 1 tick; the servo
/// channel slews 400 units per 24 ms; pen state follows executed moves.
#[test]
fn pen_servo_timing() {
    let mut b = Bench::new(V3_0_3);
    assert_eq!(
        b.fw.status().pen_servo_position,
        22565,
        "boot pen-up jumped to Servo_Min"
    );
    assert!(!b.fw.status().servo_power, "power off at boot");
    let t = b.fw.now_ticks();
    b.cmd("SP,0,146");
    assert!(b.fw.status().servo_power, "power on at parse time");
    assert!(b.fw.status().pen_up, "not executed yet");
    assert_eq!(b.cmd("QP"), "1\n\rOK\r\n");
    b.cmd("SM,10,0,0");
    b.settle();
    assert_eq!(
        b.rec.pens,
        vec![(t + 2, false)],
        "executes one tick after loading"
    );
    // The servo move occupies 146 ms, then the delay runs 25 ticks.
    assert_eq!(b.rec.starts[1].0 - b.rec.starts[0].0, 146 * 25);
    assert_eq!(b.cmd("QP"), "0\n\rOK\r\n");
    // 7263 units at 400 per 24 ms: 19 channel periods.
    b.run(19 * 24 * 25);
    assert_eq!(b.fw.status().pen_servo_position, 15302);
    // TP toggles from the executed state; SP with no delay takes one tick.
    let t = b.fw.now_ticks();
    b.cmd("TP");
    b.cmd("SM,1,0,0");
    b.settle();
    assert_eq!(
        b.rec.starts[b.rec.starts.len() - 1].0 - b.rec.starts[b.rec.starts.len() - 2].0,
        1
    );
    assert_eq!(*b.rec.pens.last().unwrap(), (t + 2, true));
    // SP,2 raises immediately (not queued).
    b.cmd("SP,0");
    b.settle();
    assert!(!b.fw.status().pen_up);
    b.cmd("SM,1000,0,0");
    b.cmd("SP,2");
    assert!(b.fw.status().pen_up, "SP,2 bypasses the FIFO");
    // SP,3 also rewrites queued pen-down moves to pen-up and makes Servo_Max = Servo_Min.
    let mut c = Bench::new(V3_0_3);
    c.cmd("CU,4,4");
    c.cmd("SM,100,0,0");
    c.cmd("SP,0");
    c.cmd("SP,3");
    c.settle();
    assert!(c.fw.status().pen_up);
    assert!(c.rec.pens.iter().all(|p| p.1), "{:?}", c.rec.pens);
}

#[test]
fn servo_power_timeout() {
    let mut b = Bench::new(V3_0_3);
    b.cmd("SR,1000");
    b.cmd("SP,1");
    assert!(b.fw.status().servo_power);
    b.settle();
    assert!(b.fw.status().servo_power);
    let t = b.fw.next_event_in().unwrap();
    assert!(t <= 1000 * 25 && t > 999 * 25, "{t}");
    b.run(t - 1);
    assert_eq!(b.cmd("QR"), "1\n\rOK\r\n");
    b.run(1);
    assert_eq!(b.cmd("QR"), "0\n\rOK\r\n");
    assert_eq!(b.fw.next_event_in(), None, "fully idle");
    b.cmd("SR,0,1");
    assert_eq!(b.cmd("QR"), "1\n\rOK\r\n");
    assert_eq!(b.fw.next_event_in(), None, "SR,0 disables the countdown");
}

#[test]
fn stepper_auto_disable() {
    let mut b = Bench::new(V3_0_3);
    b.cmd("CU,61,2");
    b.cmd("SM,10,5");
    b.settle();
    assert_eq!(b.fw.status().motors_enabled, [true, true]);
    let t = b.fw.next_event_in().unwrap();
    assert!(t.abs_diff(2 * 25_000) <= 25, "{t}");
    b.run(t);
    assert_eq!(b.fw.status().motors_enabled, [false, false]);
    assert_eq!(b.cmd("QU,61"), "QU,61,2\r\nOK\r\n");
}

#[test]
fn fifo_depth_zero_blocks_forever() {
    let mut b = Bench::new(V3_0_3);
    assert_eq!(b.cmd("CU,4,0"), "OK\r\n");
    assert_eq!(b.fw.receive(b"SM,10,1\r"), 8);
    assert!(b.fw.is_blocked());
    assert_eq!(b.fw.next_event_in(), None);
    b.run(1_000_000);
    assert!(b.fw.is_blocked());
}

#[test]
fn deeper_fifo_accepts_more_before_blocking() {
    let mut b = Bench::new(V3_0_3);
    b.cmd("CU,4,3");
    let mut text = Vec::new();
    for _ in 0..5 {
        text.extend_from_slice(b"SM,10,1\r");
    }
    // Nothing loads without ticks: 3 fit, the 4th blocks.
    let n = b.fw.receive(&text);
    assert_eq!(n, 32);
    assert_eq!(b.fw.status().fifo_len, 3);
    assert_eq!(
        b.fw.receive(b"QU,6\r"),
        0,
        "blocked: the query is not even read"
    );
}

#[test]
fn lock_up_and_bootloader() {
    let mut b = Bench::new(V3_0_3);
    b.cmd("SM,100,10");
    assert_eq!(b.fw.receive(b"CU,254,1\rQS\r"), 9);
    assert!(b.fw.is_blocked());
    b.run(5000);
    assert_eq!(b.fw.status().steps, [10, 0], "interrupts still run");
    assert_eq!(b.fw.receive(b"QS\r"), 0);
    let mut c = Firmware::new(V3_0_3);
    assert_eq!(c.receive(b"BL\rQS\r"), 6, "the bootloader swallows input");
    c.run_ticks(100, &mut NoObserver);
    let mut out = Vec::new();
    c.take_output(&mut out);
    assert!(out.is_empty());
}

/// The bulk skipping of idle and delay ticks gives exactly what running every tick gives.
#[test]
fn fast_forward_is_identical_to_tick_by_tick() {
    let script: &[&str] = &[
        "CU,4,6",
        "SP,0,200",
        "SM,120,500,-320",
        "SM,1,0,0",
        "LM,100000,40,3000,2000000,7,-500,3",
        "TP,10",
        "XM,333,120,-80",
        "SR,300",
        "SE,1,800,1",
        "LT,900,-40000000,60000,3000000,0",
        "T3,500,0,100,3,0,-200,1",
        "TD,300,10000,50000000,100000,12,0,-5000,0,0",
        "EM,2,2",
        "SM,70000,3,0",
        "S2,14000,5,200,30",
        "HM,5000",
        "SP,1,50",
        "SM,5,0,0",
    ];
    for v in FirmwareVersion::ALL {
        let mut runs = Vec::new();
        for fast in [true, false] {
            let mut b = Bench::new(v);
            b.fw.set_fast_forward(fast);
            let mut replies = String::new();
            for (i, line) in script.iter().enumerate() {
                replies.push_str(&b.cmd(line));
                b.run(37 * i as u64);
            }
            replies.push_str(&b.settle());
            b.run(100_000);
            runs.push((replies, b.rec.clone(), b.fw.status()));
        }
        assert_eq!(runs[0].0, runs[1].0, "{v}");
        assert_eq!(runs[0].1, runs[1].1, "{v}");
        assert_eq!(runs[0].2, runs[1].2, "{v}");
        assert!(runs[0].1.steps.len() > 1000);
    }
}

/// `next_event_in` lands exactly on command ends (checked against the observer).
#[test]
fn next_event_is_exact() {
    let mut b = Bench::new(V3_0_3);
    b.cmd("CU,4,8");
    b.send_bytes(b"SM,37,123,45\rLM,2000000,300,20000,0,0,0,1\rLM,50000000,80,-300000,1000,3,0,3\rLT,333,1000000,-10,0,0\rSM,3,0,0\r");
    let mut boundaries = Vec::new();
    while let Some(t) = b.fw.next_event_in() {
        b.run(t);
        boundaries.push(b.fw.now_ticks());
        assert!(boundaries.len() < 50);
    }
    let mut expected: Vec<u64> = b.rec.starts.iter().map(|s| s.0).collect();
    expected.push(*b.rec.idles.last().unwrap());
    assert_eq!(boundaries, expected);
}

/// Moves that never (or practically never) end answer at once.
#[test]
fn next_event_for_endless_moves() {
    let mut b = Bench::new(V3_0_3);
    // Axis 1 has steps but neither rate nor acceleration: the LM hangs until ES.
    b.cmd("LM,0,10,0,100000000,10,0");
    b.run(5);
    assert_eq!(b.fw.next_event_in(), None);
    b.run(10_000);
    assert!(b.fw.status().executing);
    assert!(b.cmd("ES").starts_with('1'));
    // Rate 1: one step per 2^31 ticks, in closed form.
    b.run(5);
    b.cmd("LM,1,5,0,0,0,0");
    b.run(2);
    assert_eq!(b.fw.next_event_in(), Some(5 * (1 << 31) - 1));
    b.cmd("ES");
    // Reverse constant rate (mirrored closed form) agrees with the interrupt.
    b.run(5);
    b.cmd("CS");
    let t = b.fw.now_ticks();
    b.cmd("LM,-300000000,40,0,0,0,0,1");
    b.run(2);
    let predicted = b.fw.next_event_in().unwrap();
    b.settle();
    assert_eq!(*b.rec.idles.last().unwrap(), t + 2 + predicted);
    assert_eq!(b.fw.status().steps, [-40, 0]);
}

#[test]
fn power_cycle_recovers_any_state() {
    let mut b = Bench::new(V3_0_3);
    b.cmd("SM,1000,100");
    b.run(1000);
    let moved = b.fw.status().motor_position;
    assert_eq!(
        b.fw.receive(b"SM,10,1\rSM,10,1\rCU,254,1\r"),
        16,
        "blocked mid-packet"
    );
    b.fw.power_cycle();
    assert!(!b.fw.is_blocked());
    assert_eq!(
        b.output(),
        "",
        "unread replies are lost with the USB connection"
    );
    assert_eq!(b.cmd("QS"), "0,0\n\rOK\r\n");
    assert_eq!(b.fw.status().motor_position, moved);
    let mut c = Bench::new(V2_8_1);
    c.cmd("BL");
    c.fw.power_cycle();
    assert_eq!(c.cmd("V"), "EBBv13_and_above EB Firmware Version 2.8.1\r\n");
}

/// Decelerating through zero: 3.x reverses (steps counted both ways), 2.x masks the negative
/// rate's bit 31 and races forward at about one step per tick.
#[test]
fn lm_through_zero_per_version() {
    let cmd = "LM,100000000,50,-2000000,0,0,0,3";
    let mut v3 = Bench::new(V3_0_3);
    v3.cmd(cmd);
    v3.settle();
    let p3 = v3.fw.status().steps[0];
    assert!(p3 < 50 && p3 > -50, "3.x came back: {p3}");
    let mut v2 = Bench::new(V2_8_1);
    let t = v2.fw.now_ticks();
    v2.cmd(cmd);
    v2.settle();
    assert_eq!(v2.fw.status().steps[0], 50, "2.x never reverses");
    let end = *v2.rec.idles.last().unwrap() - t;
    assert!(
        end < 200,
        "2.x finishes at about a step per tick once masked: {end}"
    );
    // LT on 2.x keeps its direction from the sign of the rate.
    let mut lt = Bench::new(V2_8_1);
    lt.cmd("LT,1000,-100000000,0,0,0,3");
    lt.settle();
    assert_eq!(
        lt.fw.status().steps[0],
        -(1000 * 100_000_000i64 / (1 << 31)) as i32
    );
}
