//! Firmware 2.6.5, a board from before `LM`: what differs from 2.8.1 (reference §1.4: `LM`/`LT`
//! and `HM` positions since 2.7.0, `QE` and a queued `EM` since 2.8.0, `EM`/`CS` zeroing the
//! accumulators since 2.7.0), and the SM path that hosts drive it with.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Bench;
use plotty_fw_sim::CommandKind;
use plotty_fw_sim::FirmwareVersion::{V2_6_5, V2_8_1};

#[test]
fn reports_its_version_and_refuses_what_came_later() {
    let mut b = Bench::new(V2_6_5);
    assert_eq!(b.cmd("V"), "EBBv13_and_above EB Firmware Version 2.6.5\r\n");
    // (The parameters of an unknown command are left over as well: a `!7` follows.)
    assert!(
        b.cmd("LM,1000,10,0,0,0,0")
            .starts_with("!8 Err: Unknown command 'LM:4C4D'\r\n")
    );
    assert!(
        b.cmd("LT,10,1000,0,0,0")
            .starts_with("!8 Err: Unknown command 'LT:4C54'\r\n")
    );
    assert!(!b.fw.status().executing);
    assert_eq!(b.cmd("QE"), "!8 Err: Unknown command 'QE:5145'\r\n");
    // HM without positions is there (2.6.2); positions are left over.
    assert_eq!(b.cmd("HM,1000"), "OK\r\n");
    assert!(b.cmd("HM,1000,10,10").contains("!7 Err: Extra parameter"));
    // 2.8.1 knows all of them.
    let mut b = Bench::new(V2_8_1);
    assert_eq!(b.cmd("QE"), "0,0\n\rOK\r\n");
}

#[test]
fn em_acts_at_once_and_keeps_the_accumulators() {
    let mut b = Bench::new(V2_6_5);
    // A slow move occupies the FIFO; EM still acts at parse time, not after it.
    assert_eq!(b.cmd("SM,1000,10,0"), "OK\r\n");
    assert_eq!(b.cmd("SM,1000,0,0"), "OK\r\n");
    assert!(b.fw.status().executing);
    assert_eq!(b.cmd("EM,2,0"), "OK\r\n");
    let st = b.fw.status();
    assert_eq!(st.motors_enabled, [true, false]);
    assert_eq!(st.microsteps, 8);
    assert!(st.executing, "EM waited for the FIFO");
    b.settle();
    assert!(b.rec.starts.iter().all(|(_, k)| *k != CommandKind::Em));
    // The SM left a remainder in the accumulator; EM and CS zero the counters only.
    let acc = b.fw.status().accumulators;
    assert_ne!(acc, [0, 0]);
    b.cmd("EM,1,1");
    assert_eq!(b.fw.status().accumulators, acc);
    assert_eq!(b.fw.status().steps, [0, 0]);
    b.cmd("SM,10,5,5");
    b.settle();
    let acc = b.fw.status().accumulators;
    b.cmd("CS");
    assert_eq!(b.fw.status().accumulators, acc);
    assert_eq!(b.fw.status().steps, [0, 0]);
    // 2.8.1 queues EM and zeroes the accumulators when it runs.
    let mut b = Bench::new(V2_8_1);
    b.cmd("SM,10,5,5");
    b.settle();
    assert_ne!(b.fw.status().accumulators, [0, 0]);
    b.cmd("EM,1,1");
    b.settle();
    assert_eq!(b.fw.status().accumulators, [0, 0]);
    assert!(b.rec.starts.iter().any(|(_, k)| *k == CommandKind::Em));
}
