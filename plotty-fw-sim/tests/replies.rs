//! Replies byte for byte (reference §1.2 table, every row in each mode) and every error form of
//! §1.3, plus the framing rules of §1.1 and the checksum/error examples of §8.4.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Bench;
use plotty_fw_sim::FirmwareVersion::{V2_8_1, V3_0_3};
use plotty_fw_sim::{FirmwareVersion, ReplyMode};

fn bench(v: FirmwareVersion) -> Bench {
    Bench::new(v)
}

fn future() -> Bench {
    let mut b = bench(V3_0_3);
    assert_eq!(
        b.cmd("CU,10,1"),
        "\n",
        "mode switch from legacy replies a bare \\n"
    );
    assert_eq!(b.fw.status().reply_mode, ReplyMode::Future);
    b
}

/// Plain commands: `OK\r\n` (3.x legacy and 2.x) and `XX\n` (future).
#[test]
fn plain_commands() {
    let both = [
        "SM,10,0,0",
        "XM,10,0,0",
        "HM,1000",
        "LM,1000,1,0,0,0,0",
        "LT,10,1000,0,0,0",
        "EM,1,1",
        "SP,1",
        "TP",
        "S2,12000,5",
        "SC,10,400",
        "CS",
        "SL,3",
        "SN,5",
        "NI",
        "ND",
        "SR,60000",
        "ST,bench",
        "CU,1,1",
        "SE,0",
        "PO,D,7,1",
        "PD,D,7,0",
    ];
    let v3_only = [
        "L3,1000,1,0,0,0,0,0,0",
        "T3,10,1000,0,0,0,0,0",
        "TD,10,1,1,0,0,0,0,0,0",
        "TR,1000,5,5",
    ];
    for v in [V3_0_3, V2_8_1] {
        let mut b = bench(v);
        for c in both {
            assert_eq!(b.cmd(c), "OK\r\n", "{v} {c}");
            b.settle();
        }
    }
    let mut b = bench(V3_0_3);
    for c in v3_only {
        assert_eq!(b.cmd(c), "OK\r\n", "{c}");
        b.settle();
    }
    let mut f = future();
    for c in both.iter().chain(&v3_only) {
        let name = &c[..2];
        assert_eq!(f.cmd(c), format!("{name}\n"), "future {c}");
        f.settle();
    }
    assert_eq!(f.cmd("R"), "R\n");
    assert_eq!(
        f.fw.status().reply_mode,
        ReplyMode::Legacy,
        "R resets to legacy"
    );
}

/// Every query row of the §1.2 table on an idle board, in each mode.
#[test]
fn query_table() {
    // (command, 3.x legacy, 3.x future, 2.8.1)
    let rows: [(&str, &str, &str, &str); 16] = [
        (
            "V",
            "EBBv13_and_above EB Firmware Version 3.0.3\r\n",
            "V,EBBv13_and_above EB Firmware Version 3.0.3\n",
            "EBBv13_and_above EB Firmware Version 2.8.1\r\n",
        ),
        // Pen up; 2.x bits 6/7 are the (pulled-up) RB2 and RB5 input levels.
        ("QG", "10\r\n", "QG,10\n", "D0\r\n"),
        ("QM", "QM,0,0,0,0\n\r", "QM,0,0,0,0\n", "QM,0,0,0,0\n\r"),
        ("QS", "0,0\n\rOK\r\n", "QS,0,0\n", "0,0\n\rOK\r\n"),
        ("QP", "1\n\rOK\r\n", "QP,1\n", "1\n\rOK\r\n"),
        ("QE", "0,0\n\rOK\r\n", "QE,0,0\n", "0,0\n\rOK\r\n"),
        ("ES", "0\n\rOK\r\n", "ES,0\n", "0,0,0,0,0\n\rOK\r\n"),
        ("QB", "0\r\nOK\r\n", "QB,0\n", "0\r\nOK\r\n"),
        ("QL", "0\r\nOK\r\n", "QL,0\n", "000\r\nOK\r\n"),
        ("QN", "0\r\nOK\r\n", "QN,0\n", "0000000000\r\nOK\r\n"),
        (
            "QC",
            "500,404\r\nOK\r\n",
            "QC,500,404\n",
            "0500,0404\r\nOK\r\n",
        ),
        ("QR", "0\n\rOK\r\n", "QR,0\n", "0\r\nOK\r\n"),
        ("QT", "\r\nOK\r\n", "QT,\n", "\r\nOK\r\n"),
        (
            "QU,2",
            "QU,2,32\r\nOK\r\n",
            "QU,2,32\n\n",
            "!8 Err: Unknown command 'QU:5155'\r\n!7 Err: Extra parameter\r\n",
        ),
        ("PI,E,0", "PI,1\r\n", "PI,1\n", "PI,1\r\n"),
        ("BL", "", "", ""),
    ];
    for (cmd, legacy, fut, v2) in rows {
        assert_eq!(bench(V3_0_3).cmd(cmd), legacy, "3.x legacy {cmd}");
        assert_eq!(future().cmd(cmd), fut, "3.x future {cmd}");
        assert_eq!(bench(V2_8_1).cmd(cmd), v2, "2.8.1 {cmd}");
    }
    for v in [V3_0_3, V2_8_1] {
        let mut b = bench(v);
        assert_eq!(b.cmd("RB"), "", "{v} RB");
        assert_eq!(b.cmd("QS"), "0,0\n\rOK\r\n", "{v} alive after RB");
    }
}

#[test]
fn rb_ends_the_packet_that_carried_it_and_is_reported_once() {
    for v in [V3_0_3, V2_8_1] {
        let mut b = bench(v);
        // The USB connection goes down with the RB: the rest of the packet is not read.
        assert_eq!(b.fw.receive(b"RB\rQT\r"), 3, "{v}");
        assert!(b.fw.take_usb_drop(), "{v}");
        assert!(!b.fw.take_usb_drop(), "{v}: reported once");
        // The same for each RB, whether or not the harness took note of the previous one.
        assert_eq!(b.fw.receive(b"RB\r"), 3, "{v}");
        assert_eq!(b.fw.receive(b"RB\rV\r"), 3, "{v}");
        assert!(b.fw.take_usb_drop(), "{v}");
        assert_eq!(b.output(), "", "{v}");
        assert_eq!(b.fw.receive(b"V\r"), 2, "{v}");
        assert!(!b.fw.take_usb_drop(), "{v}");
    }
}

#[test]
fn query_values_follow_state() {
    let mut b = bench(V3_0_3);
    b.cmd("EM,2,1");
    b.cmd("SL,200,40");
    b.cmd("SN,4294967295");
    b.cmd("NI");
    b.cmd("ST,MyPlotter_with_a_long_name");
    b.cmd("SM,10,5,-7");
    b.settle();
    assert_eq!(b.cmd("QE"), "8,8\n\rOK\r\n");
    assert_eq!(b.cmd("QL,31"), "200\r\nOK\r\n", "index clamps to 31");
    assert_eq!(b.cmd("QN"), "4294967295\r\nOK\r\n");
    b.cmd("ND");
    assert_eq!(b.cmd("QN"), "4294967294\r\nOK\r\n");
    assert_eq!(
        b.cmd("QT"),
        "MyPlotter_with_a\r\nOK\r\n",
        "16 characters kept"
    );
    assert_eq!(b.cmd("QS"), "5,-7\n\rOK\r\n");
    assert_eq!(
        b.cmd("QU,200"),
        format!(
            "QU,200,{},{}\r\nOK\r\n",
            b.fw.status().accumulators[0],
            b.fw.status().accumulators[1]
        )
    );
    assert_eq!(b.cmd("PI,E,0"), "PI,0\r\n", "driver 1 enabled (active low)");
    assert_eq!(b.cmd("PI,E,2"), "PI,1\r\n", "MS1 high at 1/8");
    assert_eq!(b.cmd("PI,A,6"), "PI,0\r\n", "MS3 low at 1/8");
    b.fw.press_button();
    assert_eq!(b.cmd("QG"), "30\r\n");
    assert_eq!(b.cmd("QB"), "0\r\nOK\r\n", "QG cleared the latch");
    b.fw.press_button();
    assert_eq!(b.cmd("QB"), "1\r\nOK\r\n");
    b.fw.set_analog(1023, 249);
    assert_eq!(b.cmd("QC"), "1023,249\r\nOK\r\n");
    let mut v2 = bench(V2_8_1);
    v2.cmd("SL,200");
    assert_eq!(v2.cmd("QL"), "-56\r\nOK\r\n", "2.x Layer is a signed char");
    v2.fw.set_analog(7, 300);
    assert_eq!(v2.cmd("QC"), "0007,0300\r\nOK\r\n");
    v2.cmd("SN,42");
    assert_eq!(v2.cmd("QN"), "0000000042\r\nOK\r\n");
}

#[test]
fn ack_off_differs_between_versions() {
    let mut b = bench(V3_0_3);
    assert_eq!(b.cmd("CU,1,0"), "\r\n");
    assert_eq!(b.cmd("SM,10,0,0"), "\r\n");
    assert_eq!(b.cmd("QS"), "0,0\n\r\r\n");
    assert_eq!(b.cmd("V"), "EBBv13_and_above EB Firmware Version 3.0.3\r\n");
    let mut f = future();
    assert_eq!(f.cmd("CU,1,0"), "CU\n", "no effect in future mode");
    assert_eq!(f.cmd("QS"), "QS,0,0\n");
    let mut v2 = bench(V2_8_1);
    assert_eq!(v2.cmd("CU,1,0"), "");
    assert_eq!(v2.cmd("SM,10,0,0"), "");
    assert_eq!(v2.cmd("QS"), "0,0\n\r");
    assert_eq!(v2.cmd("CU,1,1"), "OK\r\n");
}

#[test]
fn mode_switch_quirks() {
    let mut b = future();
    assert_eq!(b.cmd("CU,10,0"), "CUOK\r\n");
    assert_eq!(b.cmd("QP"), "1\n\rOK\r\n");
    // 2.x does not know CU,10 and ignores it.
    assert_eq!(bench(V2_8_1).cmd("CU,10,1"), "OK\r\n");
}

#[test]
fn reset_replies_before_or_after_reinit() {
    let mut b = future();
    b.cmd("CU,4,8");
    assert_eq!(b.cmd("R"), "R\n");
    assert_eq!(
        b.cmd("QU,3"),
        "QU,3,1\r\nOK\r\n",
        "R restored depth 1 and legacy mode"
    );
    let mut v2 = bench(V2_8_1);
    v2.cmd("CU,1,0");
    assert_eq!(
        v2.cmd("R"),
        "OK\r\n",
        "2.x re-initialises (acks back on) before replying"
    );
    // R ignores extra characters.
    assert_eq!(bench(V3_0_3).cmd("R,5"), "OK\r\n");
}

/// §1.3: every error form, 3.x legacy and future.
#[test]
fn error_forms_v3() {
    let cases: [(&str, &str, &str); 14] = [
        (
            "SM",
            "!4 Err: Missing parameter(s)\r\n",
            "SM,!4 Err: Missing parameter(s)\n",
        ),
        (
            "SM,100",
            "!4 Err: Missing parameter(s)\r\n",
            "SM,!4 Err: Missing parameter(s)\n",
        ),
        // Each required parameter still expected prints its own !5.
        (
            "SM;100",
            "!5 Err: Need comma next, found: ';'\r\n!5 Err: Need comma next, found: ';'\r\n",
            "SM,!5 Err: Need comma next, found: ';'\n,!5 Err: Need comma next, found: ';'\n",
        ),
        (
            "TP,-1",
            "!6 Err: Invalid parameter value\r\n",
            "TP,!6 Err: Invalid parameter value\n",
        ),
        (
            "SP,256",
            "!6 Err: Invalid parameter value\r\n",
            "SP,!6 Err: Invalid parameter value\n",
        ),
        (
            "SM,10,1,1,4",
            "!6 Err: Invalid parameter value\r\n",
            "SM,!6 Err: Invalid parameter value\n",
        ),
        (
            "SM,0,1",
            "!6 Err: Invalid parameter value\r\n",
            "SM,!6 Err: Invalid parameter value\n",
        ),
        (
            "LM,0,0,0,0,0,0",
            "!6 Err: Invalid parameter value\r\n",
            "LM,!6 Err: Invalid parameter value\n",
        ),
        (
            "LM,-5,-5,0,0,0,0",
            "!6 Err: Invalid parameter value\r\n",
            "LM,!6 Err: Invalid parameter value\n",
        ),
        (
            "LT,0,5,0,0,0",
            "!6 Err: Invalid parameter value\r\n",
            "LT,!6 Err: Invalid parameter value\n",
        ),
        (
            "HM,0",
            "!1 Err: Invalid step rate\r\n",
            "HM,!1 Err: Invalid step rate\n",
        ),
        (
            "TR,25001,1,1",
            "!1 Err: Invalid step rate\r\n",
            "TR,!1 Err: Invalid step rate\n",
        ),
        (
            "B",
            "!8 Err: Unknown command 'B:42'\r\n",
            "!8 Err: Unknown command 'B:42'\n",
        ),
        (
            "CU,99,1",
            "!6 Err: Invalid parameter value\r\n",
            "CU,!6 Err: Invalid parameter value\n",
        ),
    ];
    for (cmd, legacy, fut) in cases {
        assert_eq!(bench(V3_0_3).cmd(cmd), legacy, "legacy {cmd}");
        assert_eq!(future().cmd(cmd), fut, "future {cmd}");
    }
    // Unknown two-letter command with parameters: !8, then the unread parameters give !7.
    assert_eq!(
        bench(V3_0_3).cmd("xy,1"),
        "!8 Err: Unknown command 'XY:5859'\r\n!7 Err: Extra parameter\r\n"
    );
    // Queries that already printed NAME, get a doubled comma in future mode.
    assert_eq!(
        bench(V3_0_3).cmd("QU,7"),
        "QU,!6 Err: Invalid parameter value\r\n"
    );
    assert_eq!(
        future().cmd("QU,7"),
        "QU,,!6 Err: Invalid parameter value\n"
    );
    assert_eq!(
        future().cmd("PI,F,1"),
        "PI,,!6 Err: Invalid parameter value\n"
    );
}

#[test]
fn inline_rate_errors() {
    let mut b = bench(V3_0_3);
    assert_eq!(
        b.cmd("SM,1000,25001"),
        "!0 Err: <axis1> step rate too high\n\r\r\n"
    );
    assert_eq!(
        b.cmd("SM,1000,0,-25001"),
        "!0 Err: <axis2> step rate too high\n\r\r\n"
    );
    assert_eq!(
        b.cmd("SM,100000000,1"),
        "!0 Err: <axis1> step rate too slow\n\r\r\n"
    );
    assert_eq!(
        future().cmd("SM,1,26"),
        "SM,!0 Err: <axis1> step rate too high\n\n"
    );
    // Exactly 25 kHz is allowed; nothing was queued by the failures.
    assert_eq!(b.cmd("SM,1,25"), "OK\r\n");
    assert_eq!(b.fw.status().fifo_len, 1);
    // Limit checks off: rates clamp instead.
    assert_eq!(b.cmd("CU,2,0"), "OK\r\n");
    b.settle();
    assert_eq!(b.cmd("SM,1,26"), "OK\r\n");
    b.settle();
    assert_eq!(b.fw.status().rates[0] as u32, 0x8000_0000);
}

#[test]
fn extra_parameters_are_reported_after_the_reply() {
    assert_eq!(
        bench(V3_0_3).cmd("QS,1"),
        "0,0\n\rOK\r\n!7 Err: Extra parameter\r\n"
    );
    assert_eq!(future().cmd("QS,1"), "QS,0,0\n,!7 Err: Extra parameter\n");
    // An optional parameter not preceded by a comma silently ends the parameters.
    let mut b = bench(V3_0_3);
    assert_eq!(b.cmd("SM,10,5;9"), "OK\r\n!7 Err: Extra parameter\r\n");
    b.settle();
    assert_eq!(
        b.fw.status().steps,
        [5, 0],
        "the command ran with what it had"
    );
    // Eleven digits: the eleventh is left over.
    assert_eq!(
        bench(V3_0_3).cmd("SN,12345678901"),
        "OK\r\n!7 Err: Extra parameter\r\n"
    );
}

#[test]
fn xm_runs_despite_parse_errors_on_v3() {
    let mut b = bench(V3_0_3);
    assert_eq!(b.cmd("XM,100"), "OK\r\n!4 Err: Missing parameter(s)\r\n");
    assert!(b.fw.status().executing, "a 100 ms delay was queued");
    // Loaded at the end of the first tick, then one tick of the 2500 counted.
    b.run(2);
    assert_eq!(b.fw.next_event_in(), Some(2500 - 1));
    let mut v2 = bench(V2_8_1);
    assert_eq!(v2.cmd("XM,100"), "!4 Err: Missing parameter(s)\r\n");
    assert!(!v2.fw.status().executing);
    // XM mixes the axes.
    let mut x = bench(V3_0_3);
    x.cmd("XM,100,30,10");
    x.settle();
    assert_eq!(x.fw.status().steps, [40, 20]);
}

#[test]
fn em_with_one_parameter_is_silent() {
    let mut b = bench(V3_0_3);
    assert_eq!(b.cmd("EM,1"), "");
    assert!(!b.fw.status().executing, "nothing queued");
    let mut f = future();
    assert_eq!(f.cmd("EM,1"), "EM", "a dangling name without a line end");
    assert_eq!(f.cmd("QS"), "QS,0,0\n");
    assert_eq!(bench(V2_8_1).cmd("EM,1"), "");
}

#[test]
fn checksums_and_doc_error_examples() {
    let mut b = bench(V3_0_3);
    assert_eq!(b.cmd("CU,54,1"), "OK\r\n");
    assert_eq!(b.cmd("SM,1000,1000,1000,153"), "OK\r\n");
    assert_eq!(
        b.cmd("V,170"),
        "EBBv13_and_above EB Firmware Version 3.0.3\r\n"
    );
    assert_eq!(
        b.cmd("V,100"),
        "!9 Err: Checksum incorrect, expected 170\r\n"
    );
    assert_eq!(b.cmd("V"), "!10 Err: No checksum found but required\r\n");
    assert_eq!(b.cmd("CU,54,0,119"), "OK\r\n");
    assert_eq!(b.cmd("V"), "EBBv13_and_above EB Firmware Version 3.0.3\r\n");
    assert!(!b.fw.status().checksums);
}

#[test]
fn framing_rules() {
    let mut b = bench(V3_0_3);
    // CRLF counts once, LF alone terminates, blank lines are swallowed.
    assert_eq!(
        b.send_bytes(b"QP\r\nQP\nQP\n\r\r\n"),
        "1\n\rOK\r\n".repeat(3)
    );
    // Control bytes are dropped; lower case is accepted.
    // DEL (0x7F) is not a control byte: it is kept, and left over.
    assert_eq!(
        b.send_bytes(b"q\x01s\x7f\r"),
        "0,0\n\rOK\r\n!7 Err: Extra parameter\r\n"
    );
    assert_eq!(b.send_bytes(b"q\x01s\r"), "0,0\n\rOK\r\n");
    // Backspace deletes and echoes " \b".
    assert_eq!(b.send_bytes(b"QT\x08S\r"), " \x080,0\n\rOK\r\n");
    // At power-on a lone CR is an empty command.
    let mut fresh = Bench::new(V3_0_3);
    assert_eq!(
        fresh.send_bytes(b"\r\n"),
        "!8 Err: Unknown command '\r:0D'\r\n"
    );
    // 256 bytes overrun the buffer; what follows is a new command.
    let mut long = vec![b'A'; 300];
    long.push(b'\r');
    assert_eq!(
        b.send_bytes(&long),
        "!3 Err: RX Buffer overrun\r\n!8 Err: Unknown command 'AA:4141'\r\n!7 Err: Extra parameter\r\n"
    );
    // 255 bytes are fine.
    let mut ok = b"SN,1".to_vec();
    ok.extend(std::iter::repeat_n(b'0', 0));
    ok.resize(255, b'x');
    ok.push(b'\r');
    assert_eq!(b.send_bytes(&ok), "OK\r\n!7 Err: Extra parameter\r\n");
}

/// 2.x prints error lines once per USB packet; later parameterised commands in the same
/// packet are silently skipped, parameterless ones still run.
#[test]
fn v2_errors_poison_the_rest_of_the_packet() {
    let mut b = bench(V2_8_1);
    let out = b.send_bytes(b"SM,0,1\rSM,10,5\rQS\rCS\r");
    assert_eq!(
        out,
        "0,0\n\rOK\r\nOK\r\n!6 Err: Invalid parameter value\r\n"
    );
    assert!(!b.fw.status().executing, "the second SM was skipped");
    // The next packet is clean.
    assert_eq!(b.cmd("SM,10,5"), "OK\r\n");
    // Errors of one packet do not reach the next one.
    let mut c = bench(V2_8_1);
    let mut first = b"SM".to_vec();
    first.resize(63, b'\x01');
    first.push(b'\r');
    assert_eq!(c.send_bytes(&first), "!4 Err: Missing parameter(s)\r\n");
    assert_eq!(c.cmd("SM,10,5"), "OK\r\n");
    // 2.x CU with a bad value replies OK, then !6.
    assert_eq!(
        bench(V2_8_1).cmd("CU,1,5"),
        "OK\r\n!6 Err: Invalid parameter value\r\n"
    );
    // !5 is printed at once (and poisons the packet like any error).
    assert_eq!(
        bench(V2_8_1).send_bytes(b"SP;1\rSM,0,1\rQP\r"),
        "!5 Err: Need comma next, found: ';'\r\n1\n\rOK\r\n"
    );
}

#[test]
fn v2_sm_limits_and_malfunction_messages() {
    let cases: [(&str, &str); 7] = [
        (
            "SM,16777216,1",
            "!0 Err: <move_duration> larger than 16777215 ms.\n\r",
        ),
        (
            "SM,100000,16777216",
            "!0 Err: <axis1> larger than 16777215 steps.\n\r",
        ),
        (
            "SM,10,260",
            "!0 Err: <axis1> step rate > 25K steps/second.\n\r",
        ),
        ("SM,2622,1", "!0 Err: <axis1> step rate < 1.31Hz.\n\r"),
        (
            "SM,10,1,-260",
            "!0 Err: <axis2> step rate > 25K steps/second.\n\r",
        ),
        ("SM,1311,1", "!0 Err: <axis1> step rate < 1.31Hz.\n\r"),
        ("SM,1310,1", "OK\r\n"),
    ];
    for (cmd, reply) in cases {
        assert_eq!(bench(V2_8_1).cmd(cmd), reply, "{cmd}");
    }
    let mut b = bench(V2_8_1);
    assert_eq!(
        b.cmd("SM,2,51"),
        "Major malfunction Axis1 StepCounter too high : 33423\n\rOK\r\n"
    );
    b.cmd("CU,2,0");
    b.settle();
    assert_eq!(
        b.cmd("SM,300000,200000"),
        "Major malfunction Axis1 StepCounter zero\n\rOK\r\n"
    );
    // Clear > 3 is ignored on 2.x.
    assert_eq!(bench(V2_8_1).cmd("SM,10,1,1,9"), "OK\r\n");
}

#[test]
fn es_reports() {
    let mut b = bench(V3_0_3);
    b.cmd("SM,1000,500,-300");
    b.run(5000);
    assert_eq!(b.cmd("ES"), "1\n\rOK\r\n");
    b.run(2);
    assert!(!b.fw.status().executing);
    let steps = b.fw.status().steps;
    assert!(
        steps[0] > 0 && steps[0] < 500 && steps[1] < 0,
        "{steps:?}: QS exact after ES"
    );
    assert_eq!(b.cmd("ES,1"), "0\n\rOK\r\n");
    assert_eq!(b.fw.status().motors_enabled, [false, false]);
    // 2.8.1: five values; LT is not aborted.
    let mut v = bench(V2_8_1);
    v.cmd("SM,1000,500,-300");
    v.run(5001);
    let reply = v.cmd("ES");
    assert!(reply.starts_with("1,0,0,"), "{reply}");
    assert!(reply.ends_with("\n\rOK\r\n"));
    let rest: Vec<u32> = reply
        .trim_end()
        .trim_end_matches("OK")
        .trim()
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    assert_eq!(rest[3] + v.fw.status().steps[0] as u32, 500);
    let mut lt = bench(V2_8_1);
    lt.cmd("LT,10000,100000000,0,0,0");
    lt.run(10);
    assert_eq!(lt.cmd("ES"), "0,0,0,0,0\n\rOK\r\n");
    assert!(lt.fw.status().executing, "2.8.1 ES ignores LT");
}

#[test]
fn cm_and_ck() {
    assert_eq!(
        bench(V3_0_3).cmd("CM"),
        "CM command disabled in this build\r\n"
    );
    assert_eq!(
        bench(V3_0_3).cmd("CK,-1,255,-32768,65535,-5,4294967295,a,b"),
        "\r\nParam1=-1\r\nParam2=255\r\nParam3=-32768\r\nParam4=65535\r\nParam5=-5\r\n\
         Param6=4294967295\r\nParam7=a\r\nParam8=B\r\nParam6=FFFFFFFF\r\nParam6=FFFFFFFF\r\nOK\r\n"
    );
}
