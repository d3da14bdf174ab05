//! The encoder's [`Command::validate`] against the simulator's parser, for random parameters on
//! both firmware lines (3.0.3 and 2.8.1) and on 2.6.5 (before `LM`).
//!
//! The simulator is the independent reading of the firmware (its own parser, range checks and
//! rate arithmetic), so the two must agree: whatever `validate` accepts the board must run
//! without an error line or a "Major malfunction" message, and whatever the board refuses
//! `validate` must refuse. `validate` also refuses on purpose a few things the firmware
//! accepts but then clamps, ignores or hangs on (its module doc); [`hazard`] names each of
//! them from the reference, so an unexplained extra refusal fails too.
//!
//! The command text sent to the board is written here from the reference's command syntax,
//! not by the encoder (which writes nothing for a command `validate` refuses); for accepted
//! commands the encoder's text must be the same.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use plotty_fw_sim::{Firmware, FirmwareVersion as SimVersion, NoObserver};
use plotty_motion::ebb::{
    Command, Configure, DoubleTimedMove, EnableMotors, EncodeOptions, FirmwareVersion, HomeMove,
    JerkMove, LowLevelMove, Nickname, PenAction, Port, Servo2, SetEngraver, SetPen, StepperMove,
    TimedJerkMove, TimedMove, limits::MAX_ENCODED_LEN,
};
use proptest::prelude::*;

/// The command line as the reference writes it (§1.4), `\r`-terminated.
fn text(cmd: &Command) -> String {
    fn opt<T: ToString>(p: &mut Vec<String>, v: Option<T>) {
        if let Some(v) = v {
            p.push(v.to_string());
        }
    }
    let mut p: Vec<String> = Vec::new();
    let name = match cmd {
        Command::VersionProbe => "v",
        Command::Version => "V",
        Command::Reset => "R",
        Command::ClearSteps => "CS",
        Command::QueryButton => "QB",
        Command::QueryGeneral => "QG",
        Command::QueryEnables => "QE",
        Command::QueryMotors => "QM",
        Command::QueryPen => "QP",
        Command::QuerySteps => "QS",
        Command::QueryCurrent => "QC",
        Command::QueryServoPower => "QR",
        Command::QueryNickname => "QT",
        Command::QueryNodeCount => "QN",
        Command::NodeIncrement => "NI",
        Command::NodeDecrement => "ND",
        Command::EnableMotors(em) => {
            p.extend([em.enable1.to_string(), em.enable2.to_string()]);
            "EM"
        }
        Command::EmergencyStop { disable_motors } => {
            if *disable_motors {
                p.push("1".into());
            }
            "ES"
        }
        Command::StepperMove(sm) | Command::MixedMove(sm) => {
            p.extend([
                sm.duration_ms.to_string(),
                sm.steps[0].to_string(),
                sm.steps[1].to_string(),
            ]);
            opt(&mut p, sm.clear);
            if matches!(cmd, Command::StepperMove(_)) {
                "SM"
            } else {
                "XM"
            }
        }
        Command::HomeMove(hm) => {
            p.push(hm.step_rate.to_string());
            if let Some([a, b]) = hm.position {
                p.extend([a.to_string(), b.to_string()]);
            }
            "HM"
        }
        Command::LowLevelMove(lm) => {
            for i in 0..2 {
                p.extend([
                    lm.rate[i].to_string(),
                    lm.steps[i].to_string(),
                    lm.accel[i].to_string(),
                ]);
            }
            opt(&mut p, lm.clear);
            "LM"
        }
        Command::LowLevelTimed(lt) => {
            p.push(lt.intervals.to_string());
            for i in 0..2 {
                p.extend([lt.rate[i].to_string(), lt.accel[i].to_string()]);
            }
            opt(&mut p, lt.clear);
            "LT"
        }
        Command::JerkMove(l3) => {
            for i in 0..2 {
                p.extend([
                    l3.rate[i].to_string(),
                    l3.steps[i].to_string(),
                    l3.accel[i].to_string(),
                    l3.jerk[i].to_string(),
                ]);
            }
            opt(&mut p, l3.clear);
            "L3"
        }
        Command::TimedJerkMove(t3) => {
            p.push(t3.intervals.to_string());
            for i in 0..2 {
                p.extend([
                    t3.rate[i].to_string(),
                    t3.accel[i].to_string(),
                    t3.jerk[i].to_string(),
                ]);
            }
            opt(&mut p, t3.clear);
            "T3"
        }
        Command::DoubleTimedMove(td) => {
            p.push(td.intervals.to_string());
            for i in 0..2 {
                p.extend([
                    td.rate_a[i].to_string(),
                    td.rate_b[i].to_string(),
                    td.accel[i].to_string(),
                    td.jerk[i].to_string(),
                ]);
            }
            opt(&mut p, td.clear);
            "TD"
        }
        Command::SetPen(sp) => {
            p.push(sp.action.value().to_string());
            opt(&mut p, sp.duration_ms);
            opt(&mut p, sp.pin);
            "SP"
        }
        Command::TogglePen { duration_ms } => {
            opt(&mut p, *duration_ms);
            "TP"
        }
        Command::ServoConfig { parameter, value } => {
            p.extend([parameter.to_string(), value.to_string()]);
            "SC"
        }
        Command::ServoTimeout { timeout_ms, power } => {
            p.push(timeout_ms.to_string());
            opt(&mut p, power.map(u8::from));
            "SR"
        }
        Command::Servo2(s2) => {
            p.extend([s2.position.to_string(), s2.rpn.to_string()]);
            opt(&mut p, s2.rate);
            opt(&mut p, s2.delay_ms);
            "S2"
        }
        Command::QueryUtility(n) => {
            p.push(n.to_string());
            "QU"
        }
        Command::QueryLayer { index } => {
            opt(&mut p, *index);
            "QL"
        }
        Command::SetLayer { value, index } => {
            p.push(value.to_string());
            opt(&mut p, *index);
            "SL"
        }
        Command::Configure(cu) => {
            p.extend([cu.parameter.to_string(), cu.value.to_string()]);
            "CU"
        }
        Command::PinInput { port, pin } => {
            p.extend([char::from(port.letter()).to_string(), pin.to_string()]);
            "PI"
        }
        Command::SetNickname(name) => {
            p.push(name.to_string());
            "ST"
        }
        Command::SetNodeCount(n) => {
            p.push(n.to_string());
            "SN"
        }
        Command::SetEngraver(se) => {
            p.push(u8::from(se.on).to_string());
            opt(&mut p, se.power);
            opt(&mut p, se.queued.map(u8::from));
            "SE"
        }
    };
    let mut line = name.to_string();
    for v in p {
        line.push(',');
        line.push_str(&v);
    }
    line.push('\r');
    line
}

/// Sends `line` to a freshly booted board; returns everything it printed.
fn board_reply(version: SimVersion, line: &str) -> String {
    let mut fw = Firmware::new(version);
    let mut input = line.as_bytes();
    // The parser blocks while the FIFO is full (the boot pen-up) and HM waits for idle: run the
    // interrupts until it reads on.
    let mut rounds = 0;
    while !input.is_empty() {
        let n = fw.receive(input);
        input = &input[n..];
        if fw.is_blocked() {
            fw.run_ticks(fw.next_event_in().unwrap_or(1), &mut NoObserver);
        }
        rounds += 1;
        assert!(rounds < 1_000_000, "{line:?}: the board never read it");
    }
    let mut out = Vec::new();
    fw.take_output(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the board refused `line`: an error line (`!n Err: …`) or a 2.x clamp message.
fn refused(reply: &str) -> bool {
    reply.contains("Err:") || reply.contains("Major malfunction")
}

/// What `validate` refuses although the firmware takes it without an error line: values the
/// firmware silently clamps or ignores, an LM axis that never finishes, combinations the
/// positional syntax cannot express, names `QT` cannot read back. Written from the reference
/// (§1.4, §3, §6), not from `validate.rs`.
fn hazard(cmd: &Command, fw: FirmwareVersion) -> Option<&'static str> {
    let v3 = fw.is_v3();
    let clear_clamped = |clear: Option<u8>| clear.is_some_and(|c| c > 3);
    match cmd {
        Command::StepperMove(sm) | Command::MixedMove(sm) => {
            let steps = match cmd {
                Command::MixedMove(_) => [
                    sm.steps[0].wrapping_add(sm.steps[1]),
                    sm.steps[0].wrapping_sub(sm.steps[1]),
                ],
                _ => sm.steps,
            };
            if !v3 && clear_clamped(sm.clear) {
                return Some("2.x treats Clear > 3 as 0");
            }
            if matches!(cmd, Command::MixedMove(_)) && clear_clamped(sm.clear) {
                // XM skips the parse-error check before moving (§1.4 quirk); the simulator
                // reads its Clear as clamped to 3 rather than refused.
                return Some("3.x XM runs Clear > 3 as 3");
            }
            if steps == [0, 0] {
                // 3.x caps a delay at 100 s; 2.8.1 turns one above 65.536 s into ~0.
                let cap = if v3 { 100_000 } else { 65_536 };
                if sm.duration_ms > cap {
                    return Some("delay silently shortened");
                }
            }
            None
        }
        Command::HomeMove(hm) if v3 && !(1..=25_000).contains(&hm.step_rate) => {
            Some("3.x clamps StepRate to 1..=25000")
        }
        Command::HomeMove(hm) if !v3 && hm.step_rate > 25_000 => {
            Some("2.x refuses StepRate > 25000 whenever there is a distance to go (§1.3)")
        }
        Command::LowLevelMove(lm) => {
            let hangs = (0..2).any(|i| lm.steps[i] != 0 && lm.rate[i] == 0 && lm.accel[i] == 0);
            let idle = |i: usize| lm.steps[i] == 0 || (lm.rate[i] == 0 && lm.accel[i] == 0);
            if hangs {
                Some("an axis with steps but no rate never finishes (§6.8)")
            } else if clear_clamped(lm.clear) {
                Some("Clear > 3 is clamped")
            } else if !v3 && idle(0) && idle(1) {
                Some("2.x queues an LM that moves nothing (only 3.x refuses it, §1.4)")
            } else {
                None
            }
        }
        Command::JerkMove(l3) => {
            let hangs = (0..2).any(|i| {
                l3.steps[i] != 0 && l3.rate[i] == 0 && l3.accel[i] == 0 && l3.jerk[i] == 0
            });
            if hangs {
                Some("an axis with steps but no rate never finishes (§6.8)")
            } else if clear_clamped(l3.clear) {
                Some("Clear > 3 is clamped")
            } else {
                None
            }
        }
        Command::LowLevelTimed(TimedMove { clear, .. })
        | Command::TimedJerkMove(TimedJerkMove { clear, .. })
        | Command::DoubleTimedMove(DoubleTimedMove { clear, .. })
            if clear_clamped(*clear) =>
        {
            Some("Clear > 3 is clamped")
        }
        Command::SetPen(sp) if !v3 && sp.action.value() > 1 => Some("2.x clamps SP values to 1"),
        Command::SetPen(sp) if sp.pin.is_some() && sp.duration_ms.is_none() => {
            Some("PortB_Pin cannot be sent without Duration")
        }
        Command::SetPen(sp) if sp.pin.is_some_and(|p| p > 7) => Some("PortB has pins 0..=7"),
        Command::Servo2(s2) if s2.delay_ms.is_some() && s2.rate.is_none() => {
            Some("Delay cannot be sent without Rate")
        }
        Command::Servo2(s2) if s2.rpn > 24 => Some("no RPn above 24"),
        Command::SetEngraver(se) if se.queued.is_some() && se.power.is_none() => {
            Some("Queue cannot be sent without Power")
        }
        Command::SetEngraver(se) if se.power.is_some_and(|p| p > 1023) => {
            Some("PWM power above 1023")
        }
        Command::QueryLayer { index: Some(i) } | Command::SetLayer { index: Some(i), .. }
            if v3 && *i > 31 =>
        {
            Some("3.x clamps the variable index to 31")
        }
        Command::PinInput { pin, .. } if *pin > 7 => Some("ports have pins 0..=7"),
        Command::Configure(cu) if !v3 && !(1..=3).contains(&cu.parameter) => {
            Some("2.x ignores unknown CU parameters")
        }
        Command::Configure(cu) => {
            let on_off = [1, 2, 3, 10, 50, 53, 54, 250, 251, 252, 253, 254, 255];
            match cu.parameter {
                p if on_off.contains(&p) && !(0..=1).contains(&cu.value) => {
                    Some("an on/off setting reads any other value as on or off")
                }
                4 if !(1..=32).contains(&cu.value) => {
                    Some("CU,4 outside 1..=32 blocks forever or overruns the ring (§6.2)")
                }
                51 | 52 if !(0..=255).contains(&cu.value) => Some("a PortB mask is one byte"),
                60 | 61 if cu.value < 0 => Some("a threshold or timeout below 0"),
                _ => None,
            }
        }
        Command::SetNickname(name) => {
            let name = name.as_bytes();
            (name == b"OK" || name.first() == Some(&b'!') || name.contains(&b','))
                .then_some("a name QT cannot read back unambiguously")
        }
        Command::EmergencyStop {
            disable_motors: true,
        } if !v3 => Some("ES's Disable parameter is 3.x only (§1.4): 2.x would not disable"),
        _ => None,
    }
}

/// What the board may refuse although `validate` accepts, because it depends on the board's
/// state rather than on the command: a 2.x `HM` moves by `Pos − global step counter`, and its
/// range checks and the SM rates of its one or two parts (§1.4) follow from that distance,
/// which the stateless encoder cannot know. (plotty itself never sends `HM`.)
fn state_dependent(cmd: &Command, fw: FirmwareVersion) -> bool {
    matches!(cmd, Command::HomeMove(HomeMove { position: Some(_), .. }) if !fw.is_v3())
}

fn small() -> impl Strategy<Value = i32> {
    prop_oneof![-300i32..300, any::<i32>(), Just(0)]
}

fn clear() -> impl Strategy<Value = Option<u8>> {
    proptest::option::of(0u8..6)
}

fn pair() -> impl Strategy<Value = [i32; 2]> {
    [small(), small()]
}

fn stepper_move() -> BoxedStrategy<StepperMove> {
    (
        prop_oneof![
            1u32..50,
            1u32..3000,
            60_000u32..110_000,
            any::<u32>(),
            Just(0u32)
        ],
        [
            prop_oneof![-2000i32..2000, -300_000i32..300_000, any::<i32>(), Just(0)],
            prop_oneof![-2000i32..2000, -300_000i32..300_000, any::<i32>(), Just(0)],
        ],
        clear(),
    )
        .prop_map(|(duration_ms, steps, clear)| StepperMove {
            duration_ms,
            steps,
            clear,
        })
        .boxed()
}

/// SM moves at the edges of the rate checks: about 25 steps per ms (one step per tick, 2.x's
/// `floor(S/D) > 25` and its clamped 25 < S/D < 26), 2.x's slow limit `floor(D/1311) ≥ S`, 3.x's
/// rate truncated to zero, and 2.x's coarse branch with more milliseconds than steps.
fn edge_move() -> BoxedStrategy<StepperMove> {
    let fast = (1u32..3000)
        .prop_flat_map(|d| (Just(d), (25 * d).saturating_sub(3)..26 * d + 3))
        .prop_map(|(d, s)| (d, s));
    let slow = (1u32..200).prop_flat_map(|s| (1311 * s - 3..1311 * s + 1311 + 3, Just(s)));
    let glacial = (80_000_000u32..95_000_000, 1u32..3);
    let coarse = (131_000u32..132_000).prop_flat_map(|s| (s - 10..s + 1_000_000, Just(s)));
    (
        prop_oneof![fast, slow, glacial, coarse],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|((duration_ms, s), negative, second)| {
            let s = i32::try_from(s).unwrap_or(i32::MAX);
            let s = if negative { -s } else { s };
            StepperMove {
                duration_ms,
                steps: if second { [1, s] } else { [s, 0] },
                clear: None,
            }
        })
        .boxed()
}

fn command() -> BoxedStrategy<Command> {
    let motion = prop_oneof![
        stepper_move().prop_map(Command::StepperMove),
        edge_move().prop_map(Command::StepperMove),
        stepper_move().prop_map(Command::MixedMove),
        (
            prop_oneof![0u32..30_000, any::<u32>()],
            proptest::option::of([
                prop_oneof![-20_000_000i32..20_000_000, any::<i32>()],
                prop_oneof![-20_000_000i32..20_000_000, any::<i32>()]
            ])
        )
            .prop_map(|(step_rate, position)| Command::HomeMove(HomeMove {
                step_rate,
                position
            })),
        (pair(), pair(), pair(), clear()).prop_map(|(rate, steps, accel, clear)| {
            Command::LowLevelMove(LowLevelMove {
                rate,
                steps,
                accel,
                clear,
            })
        }),
        (
            prop_oneof![0u32..100, any::<u32>()],
            pair(),
            pair(),
            clear()
        )
            .prop_map(|(intervals, rate, accel, clear)| {
                Command::LowLevelTimed(TimedMove {
                    intervals,
                    rate,
                    accel,
                    clear,
                })
            }),
        (pair(), pair(), pair(), pair(), clear()).prop_map(|(rate, steps, accel, jerk, clear)| {
            Command::JerkMove(JerkMove {
                rate,
                steps,
                accel,
                jerk,
                clear,
            })
        }),
        (0u32..100, pair(), pair(), pair(), clear()).prop_map(
            |(intervals, rate, accel, jerk, clear)| Command::TimedJerkMove(TimedJerkMove {
                intervals,
                rate,
                accel,
                jerk,
                clear,
            })
        ),
        (0u32..100, pair(), pair(), pair(), pair(), clear()).prop_map(
            |(intervals, rate_a, rate_b, accel, jerk, clear)| {
                Command::DoubleTimedMove(DoubleTimedMove {
                    intervals,
                    rate_a,
                    rate_b,
                    accel,
                    jerk,
                    clear,
                })
            }
        ),
        (any::<u8>(), any::<u8>()).prop_map(|(enable1, enable2)| Command::EnableMotors(
            EnableMotors { enable1, enable2 }
        )),
        any::<bool>().prop_map(|disable_motors| Command::EmergencyStop { disable_motors }),
    ]
    .boxed();
    let pen = prop_oneof![
        (
            0usize..4,
            proptest::option::of(any::<u16>()),
            proptest::option::of(0u8..10)
        )
            .prop_map(|(a, duration_ms, pin)| Command::SetPen(SetPen {
                action: PenAction::ALL[a],
                duration_ms,
                pin
            })),
        proptest::option::of(any::<u16>())
            .prop_map(|duration_ms| Command::TogglePen { duration_ms }),
        (0u8..16, any::<u16>())
            .prop_map(|(parameter, value)| Command::ServoConfig { parameter, value }),
        (any::<u32>(), proptest::option::of(any::<bool>()))
            .prop_map(|(timeout_ms, power)| Command::ServoTimeout { timeout_ms, power }),
        (
            any::<u16>(),
            0u8..30,
            proptest::option::of(any::<u16>()),
            proptest::option::of(any::<u16>())
        )
            .prop_map(|(position, rpn, rate, delay_ms)| Command::Servo2(Servo2 {
                position,
                rpn,
                rate,
                delay_ms
            })),
        (
            any::<bool>(),
            proptest::option::of(0u16..1100),
            proptest::option::of(any::<bool>())
        )
            .prop_map(|(on, power, queued)| Command::SetEngraver(SetEngraver {
                on,
                power,
                queued
            })),
    ]
    .boxed();
    let config = prop_oneof![
        prop_oneof![
            0u8..5,
            Just(10u8),
            50u8..55,
            60u8..62,
            248u8..=255,
            any::<u8>()
        ]
        .prop_flat_map(|parameter| {
            prop_oneof![-2i16..40, any::<i16>()]
                .prop_map(move |value| Command::Configure(Configure { parameter, value }))
        }),
        any::<u8>().prop_map(Command::QueryUtility),
        proptest::option::of(0u8..40).prop_map(|index| Command::QueryLayer { index }),
        (any::<u8>(), proptest::option::of(0u8..40))
            .prop_map(|(value, index)| Command::SetLayer { value, index }),
        (0usize..5, 0u8..10).prop_map(|(p, pin)| Command::PinInput {
            port: [Port::A, Port::B, Port::C, Port::D, Port::E][p],
            pin
        }),
        any::<u32>().prop_map(Command::SetNodeCount),
        "[!-~]{1,16}".prop_map(|s| Command::SetNickname(Nickname::try_from(s.as_str()).unwrap())),
    ]
    .boxed();
    let plain = prop_oneof![
        Just(Command::VersionProbe),
        Just(Command::Version),
        Just(Command::Reset),
        Just(Command::ClearSteps),
        Just(Command::QueryButton),
        Just(Command::QueryGeneral),
        Just(Command::QueryEnables),
        Just(Command::QueryMotors),
        Just(Command::QueryPen),
        Just(Command::QuerySteps),
        Just(Command::QueryCurrent),
        Just(Command::QueryServoPower),
        Just(Command::QueryNickname),
        Just(Command::QueryNodeCount),
        Just(Command::NodeIncrement),
        Just(Command::NodeDecrement),
    ];
    prop_oneof![6 => motion, 3 => pen, 3 => config, 1 => plain].boxed()
}

/// One command on one firmware: `validate` and the board agree (up to a named [`hazard`]).
fn check(cmd: &Command, sim: SimVersion) -> Result<(), TestCaseError> {
    let fw = match sim {
        SimVersion::V3_0_3 => FirmwareVersion::LATEST,
        SimVersion::V2_8_1 => FirmwareVersion::LAST_V2,
        SimVersion::V2_6_5 => FirmwareVersion::new(2, 6, 5),
    };
    let line = text(cmd);
    let reply = board_reply(sim, &line);
    let board_refused = refused(&reply);
    match cmd.validate(fw) {
        Ok(()) => {
            prop_assert!(
                !board_refused || state_dependent(cmd, fw),
                "{sim}: validate accepts {line:?}, the firmware replies {reply:?}"
            );
            let mut buf = [0u8; MAX_ENCODED_LEN];
            let n = cmd.encode_with(&EncodeOptions::new(fw), &mut buf).unwrap();
            prop_assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), line.as_str());
        }
        Err(e) => {
            prop_assert!(
                board_refused || hazard(cmd, fw).is_some(),
                "{sim}: validate refuses {line:?} ({e}) that the firmware runs: {reply:?}"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn validate_accepts_exactly_what_the_firmware_runs(cmd in command()) {
        for sim in SimVersion::EVERY {
            check(&cmd, sim)?;
        }
    }
}
