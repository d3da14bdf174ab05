//! Test-only helpers: a firmware-side reply formatter written from the reference table (§1.2,
//! §1.3), a model of the reply mode and acknowledgement state, proptest strategies for replies,
//! and a driver that pushes a byte stream through `LineBuffer` + `ReplyParser`.
//!
//! The formatter is deliberately independent of the parser: it writes the exact bytes of each
//! table row (including the `\n\r` endings, the doubled comma and the blank lines) so that a
//! round trip checks the parser against the table, not against itself.

use core::fmt::Write as _;

use heapless::String;
use proptest::prelude::*;

use super::{
    Axis, EStopReport, EStopSteps, ErrorKind, FirmwareError, FirmwareVersion, GeneralStatus,
    LineBuffer, MotorEnables, MotorStatus, PenState, Reply, ReplyError, ReplyKind, ReplyMode,
    ReplyParser, UtilityValue, VersionInfo,
};

/// A heapless string from a literal (tests only).
pub(crate) fn text<const N: usize>(s: &str) -> String<N> {
    String::try_from(s).unwrap()
}

/// Pushes `bytes` in `chunk`-byte pieces through `lines` and `parser`, beginning the kinds in
/// order; returns every completed reply (and unsolicited-line errors once the kinds run out).
pub(crate) fn feed<const N: usize>(
    parser: &mut ReplyParser,
    lines: &mut LineBuffer<N>,
    kinds: &[ReplyKind],
    bytes: &[u8],
    chunk: usize,
) -> Vec<Result<Reply, ReplyError>> {
    let mut out = Vec::new();
    let mut next = kinds.iter();
    let mut begin_next = |parser: &mut ReplyParser, out: &mut Vec<_>| {
        for &kind in next.by_ref() {
            match parser.begin(kind) {
                Some(done) => out.push(done),
                None => return,
            }
        }
    };
    begin_next(parser, &mut out);
    for piece in bytes.chunks(chunk.max(1)) {
        let mut rest = piece;
        while !rest.is_empty() {
            let (tail, line) = lines.push(rest);
            rest = tail;
            let done = match line {
                Some(Ok(line)) => parser.push_line(line),
                Some(Err(e)) => parser.push_line_error(e),
                None => None,
            };
            if let Some(done) = done {
                out.push(done);
                if parser.expected().is_none() {
                    begin_next(parser, &mut out);
                }
            }
        }
    }
    out
}

/// What the firmware answers in one step of a generated exchange.
#[derive(Clone, Debug)]
pub(crate) enum Answer {
    /// The normal reply (`Reply::Ok` for acknowledgements).
    Normal(Reply),
    /// A firmware error instead.
    Error(FirmwareError),
}

/// The firmware's reply state: dialect, firmware line and `CU,1` setting.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Model {
    pub(crate) mode: ReplyMode,
    pub(crate) acks: bool,
}

impl Model {
    pub(crate) const fn new(mode: ReplyMode) -> Self {
        Self { mode, acks: true }
    }

    /// Appends the bytes the firmware sends for `answer` to a command of `kind` and returns the
    /// reply the parser must produce, updating the state like the firmware does.
    pub(crate) fn answer(&mut self, kind: ReplyKind, answer: &Answer, out: &mut Vec<u8>) -> Reply {
        let mode = self.mode;
        let silent = self.is_silent(kind);
        let reply = match answer {
            _ if silent => {
                out.extend_from_slice(self.silent_bytes(kind));
                Reply::Ok
            }
            Answer::Error(e) => {
                self.error(kind, e, out);
                return Reply::Error(e.clone());
            }
            Answer::Normal(Reply::Nickname(n))
                if n.is_empty() && !self.acks && mode != ReplyMode::Future =>
            {
                // An unset nickname with acks off sends no visible line at all: not parseable
                // (documented limitation); answer with a name instead.
                let named = Reply::Nickname(text("x"));
                self.normal(kind, &named, out);
                named
            }
            Answer::Normal(reply) => {
                self.normal(kind, reply, out);
                reply.clone()
            }
        };
        if reply == Reply::Ok {
            match kind {
                ReplyKind::Reset => {
                    self.acks = true;
                    if mode == ReplyMode::Future {
                        self.mode = ReplyMode::Legacy;
                    }
                }
                ReplyKind::SetAck(on) => self.acks = on,
                ReplyKind::SetFutureSyntax(on) if mode != ReplyMode::LegacyV2 => {
                    self.mode = if on {
                        ReplyMode::Future
                    } else {
                        ReplyMode::Legacy
                    };
                }
                _ => {}
            }
        }
        reply
    }

    fn is_silent(&self, kind: ReplyKind) -> bool {
        match (self.mode, kind) {
            (ReplyMode::Future, _) => false,
            (ReplyMode::Legacy, ReplyKind::SetFutureSyntax(true)) => true,
            (_, ReplyKind::SetAck(on)) => !on,
            (ReplyMode::LegacyV2, ReplyKind::Reset) => false,
            (_, k) => !k.has_data() && !self.acks,
        }
    }

    fn silent_bytes(&self, kind: ReplyKind) -> &'static [u8] {
        match (self.mode, kind) {
            (ReplyMode::Legacy, ReplyKind::SetFutureSyntax(true)) => b"\n",
            // 3.x legacy with acks off: the line ending without the OK.
            (ReplyMode::Legacy, _) => b"\r\n",
            // 2.x with acks off: nothing at all.
            _ => b"",
        }
    }

    /// The OK line after a legacy query, or what is left of it with acks off.
    fn ok_line(&self, out: &mut Vec<u8>) {
        match (self.mode, self.acks) {
            (_, true) => out.extend_from_slice(b"OK\r\n"),
            (ReplyMode::Legacy, false) => out.extend_from_slice(b"\r\n"),
            _ => {}
        }
    }

    fn normal(&self, kind: ReplyKind, reply: &Reply, out: &mut Vec<u8>) {
        let v2 = self.mode == ReplyMode::LegacyV2;
        if !kind.has_data() {
            let bytes: &[u8] = match (self.mode, kind) {
                (ReplyMode::Future, ReplyKind::SetFutureSyntax(false)) => b"CUOK\r\n",
                (ReplyMode::Future, k) => {
                    out.extend_from_slice(k.name().as_bytes());
                    b"\n"
                }
                _ => b"OK\r\n",
            };
            out.extend_from_slice(bytes);
            return;
        }
        let mut data = std::string::String::new();
        match reply {
            Reply::Version(v) => data.push_str(&v.text),
            Reply::GeneralStatus(s) => write!(data, "{:02X}", s.to_byte()).unwrap(),
            Reply::Motors(m) => write!(
                data,
                "{},{},{},{}",
                u8::from(m.executing),
                u8::from(m.motor1_moving),
                u8::from(m.motor2_moving),
                u8::from(m.fifo_nonempty)
            )
            .unwrap(),
            Reply::Pin(p) => write!(data, "{}", u8::from(*p)).unwrap(),
            Reply::Steps { m1, m2 } => write!(data, "{m1},{m2}").unwrap(),
            Reply::Pen(p) => data.push(if *p == PenState::Up { '1' } else { '0' }),
            Reply::Enables(e) => write!(data, "{},{}", e.motor1, e.motor2).unwrap(),
            Reply::EStop(e) => {
                write!(data, "{}", u8::from(e.interrupted)).unwrap();
                if let Some(s) = e.steps {
                    write!(
                        data,
                        ",{},{},{},{}",
                        s.fifo[0], s.fifo[1], s.remaining[0], s.remaining[1]
                    )
                    .unwrap();
                }
            }
            Reply::Button { pressed } => write!(data, "{}", u8::from(*pressed)).unwrap(),
            Reply::Layer(l) if v2 => write!(data, "{:03}", l.cast_signed()).unwrap(),
            Reply::Layer(l) => write!(data, "{l}").unwrap(),
            Reply::NodeCount(n) if v2 => write!(data, "{n:010}").unwrap(),
            Reply::NodeCount(n) => write!(data, "{n}").unwrap(),
            Reply::Current { current, voltage } if v2 => {
                write!(data, "{current:04},{voltage:04}").unwrap();
            }
            Reply::Current { current, voltage } => write!(data, "{current},{voltage}").unwrap(),
            Reply::ServoPower(p) => write!(data, "{}", u8::from(*p)).unwrap(),
            Reply::Nickname(n) => data.push_str(n.as_str()),
            Reply::Utility(u) => data.push_str(u.as_str()),
            Reply::Ok | Reply::Error(_) => unreachable!("not data"),
        }
        if self.mode == ReplyMode::Future {
            writeln!(out_str(out), "{},{data}", kind.name()).unwrap();
            if kind == ReplyKind::Utility {
                // 3.x prints an extra blank line after QU in future mode (§1.2).
                out.push(b'\n');
            }
            return;
        }
        if kind.legacy_has_name() {
            out.extend_from_slice(kind.name().as_bytes());
            out.push(b',');
        }
        out.extend_from_slice(data.as_bytes());
        // The per-command line endings of the §1.2 table.
        let ending: &[u8] = match kind {
            ReplyKind::Motors | ReplyKind::Steps | ReplyKind::Pen | ReplyKind::Enables => b"\n\r",
            ReplyKind::EStop => b"\n\r",
            ReplyKind::ServoPower if !v2 => b"\n\r",
            _ => b"\r\n",
        };
        out.extend_from_slice(ending);
        if kind.legacy_adds_ok() {
            self.ok_line(out);
        }
    }

    fn error(&self, kind: ReplyKind, e: &FirmwareError, out: &mut Vec<u8>) {
        let v2 = self.mode == ReplyMode::LegacyV2;
        let (code, text) = error_text(e, v2);
        let inline = code == 0;
        if self.mode == ReplyMode::Future {
            // Queries that already printed `NAME,` get a doubled comma (§1.3).
            let comma = if kind.has_data() && !inline {
                ",,"
            } else {
                ","
            };
            let end = if inline { "\n\n" } else { "\n" };
            write!(
                out_str(out),
                "{}{comma}!{code} Err: {text}{end}",
                kind.name()
            )
            .unwrap();
        } else {
            let end = match (inline, v2) {
                (true, false) => "\n\r\r\n",
                (true, true) => "\n\r",
                (false, _) => "\r\n",
            };
            write!(out_str(out), "!{code} Err: {text}{end}").unwrap();
        }
    }
}

/// A `fmt::Write` view of a byte vector.
fn out_str(out: &mut Vec<u8>) -> impl core::fmt::Write + '_ {
    struct W<'a>(&'a mut Vec<u8>);
    impl core::fmt::Write for W<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            self.0.extend_from_slice(s.as_bytes());
            Ok(())
        }
    }
    W(out)
}

/// The firmware's text for an error (reference §1.3).
fn error_text(e: &FirmwareError, v2: bool) -> (u8, std::string::String) {
    let axis = |a: &Axis| {
        if *a == Axis::One {
            "<axis1>"
        } else {
            "<axis2>"
        }
    };
    let text = match &e.kind {
        ErrorKind::InvalidStepRate => "Invalid step rate".into(),
        ErrorKind::TxBufferOverrun => "TX Buffer overrun".into(),
        ErrorKind::RxBufferOverrun => "RX Buffer overrun".into(),
        ErrorKind::MissingParameter => "Missing parameter(s)".into(),
        ErrorKind::NeedComma { found } => {
            format!("Need comma next, found: '{}'", char::from(*found))
        }
        ErrorKind::InvalidParameter => "Invalid parameter value".into(),
        ErrorKind::ExtraParameter => "Extra parameter".into(),
        ErrorKind::UnknownCommand(t) => format!("Unknown command '{t}'"),
        ErrorKind::ChecksumIncorrect { expected: Some(n) } => {
            format!("Checksum incorrect, expected {n}")
        }
        ErrorKind::ChecksumIncorrect { expected: None } => "Checksum incorrect".into(),
        ErrorKind::ChecksumMissing => "No checksum found but required".into(),
        ErrorKind::StepRateTooHigh(a) if v2 => format!("{} step rate > 25K steps/second.", axis(a)),
        ErrorKind::StepRateTooHigh(a) => format!("{} step rate too high", axis(a)),
        ErrorKind::StepRateTooSlow(a) if v2 => format!("{} step rate < 1.31Hz.", axis(a)),
        ErrorKind::StepRateTooSlow(a) => format!("{} step rate too slow", axis(a)),
        ErrorKind::DurationTooLong => "<move_duration> larger than 16777215 ms.".into(),
        ErrorKind::StepsTooLarge(a) => format!("{} larger than 16777215 steps.", axis(a)),
        ErrorKind::HomeDistanceTooLarge => "steps to home larger than 16,777,215.".into(),
        ErrorKind::Malfunction(_) => unreachable!("not an !N line"),
        ErrorKind::Other(t) => t.to_string(),
    };
    (e.code.unwrap(), text)
}

fn printable(
    min: usize,
    max: usize,
    first_not: &'static [u8],
) -> impl Strategy<Value = std::string::String> {
    proptest::collection::vec(0x21u8..=0x7E, min..=max).prop_filter_map(
        "reserved start",
        move |v| {
            if v.first().is_some_and(|b| first_not.contains(b)) || v == b"OK" {
                return None;
            }
            Some(v.into_iter().map(char::from).collect())
        },
    )
}

/// A firmware error the given firmware line can print (without the 2.x malfunction line).
pub(crate) fn arb_error(v2: bool) -> BoxedStrategy<FirmwareError> {
    let axis = prop_oneof![Just(Axis::One), Just(Axis::Two)];
    let numbered = prop_oneof![
        Just((1, ErrorKind::InvalidStepRate)),
        Just((2, ErrorKind::TxBufferOverrun)),
        Just((3, ErrorKind::RxBufferOverrun)),
        Just((4, ErrorKind::MissingParameter)),
        (0x21u8..=0x7E)
            .prop_filter("quote", |b| *b != b'\'')
            .prop_map(|found| (5, ErrorKind::NeedComma { found })),
        Just((6, ErrorKind::InvalidParameter)),
        Just((7, ErrorKind::ExtraParameter)),
        "[A-Z0-9]{1,2}:[0-9A-F]{2,4}".prop_map(|t| (8, ErrorKind::UnknownCommand(text(&t)))),
        proptest::option::of(any::<u8>())
            .prop_map(|expected| (9, ErrorKind::ChecksumIncorrect { expected })),
        Just((10, ErrorKind::ChecksumMissing)),
        (11u8..=255, "[ -~]{0,40}").prop_map(|(code, t)| (code, ErrorKind::Other(text(&t)))),
    ];
    let range = if v2 {
        prop_oneof![
            axis.clone().prop_map(ErrorKind::StepRateTooHigh),
            axis.clone().prop_map(ErrorKind::StepRateTooSlow),
            axis.prop_map(ErrorKind::StepsTooLarge),
            Just(ErrorKind::DurationTooLong),
            Just(ErrorKind::HomeDistanceTooLarge),
        ]
        .boxed()
    } else {
        prop_oneof![
            axis.clone().prop_map(ErrorKind::StepRateTooHigh),
            axis.prop_map(ErrorKind::StepRateTooSlow),
        ]
        .boxed()
    };
    prop_oneof![
        3 => numbered.prop_map(|(code, kind)| FirmwareError { code: Some(code), kind }),
        1 => range.prop_map(|kind| FirmwareError { code: Some(0), kind }),
    ]
    .boxed()
}

/// A normal reply of `kind` (data kinds only).
fn arb_data(kind: ReplyKind, v2: bool) -> BoxedStrategy<Reply> {
    match kind {
        ReplyKind::Version => (2u8..=3, 0u8..=20, 0u8..=20)
            .prop_map(|(a, b, c)| {
                let line = format!("EBBv13_and_above EB Firmware Version {a}.{b}.{c}");
                Reply::Version(VersionInfo {
                    version: FirmwareVersion::new(a, b, c),
                    text: text(&line),
                })
            })
            .boxed(),
        ReplyKind::GeneralStatus => any::<u8>()
            .prop_map(|b| {
                let bit = |n: u8| b & (1 << n) != 0;
                Reply::GeneralStatus(GeneralStatus {
                    fifo_nonempty: bit(0),
                    motor2_moving: bit(1),
                    motor1_moving: bit(2),
                    executing: bit(3),
                    pen_up: bit(4),
                    button_pressed: bit(5),
                    power_lost: bit(6),
                    limit_switch: bit(7),
                })
            })
            .boxed(),
        ReplyKind::Motors => any::<[bool; 4]>()
            .prop_map(|[a, b, c, d]| {
                Reply::Motors(MotorStatus {
                    executing: a,
                    motor1_moving: b,
                    motor2_moving: c,
                    fifo_nonempty: d,
                })
            })
            .boxed(),
        ReplyKind::Pin => any::<bool>().prop_map(Reply::Pin).boxed(),
        ReplyKind::Steps => any::<(i32, i32)>()
            .prop_map(|(m1, m2)| Reply::Steps { m1, m2 })
            .boxed(),
        ReplyKind::Pen => prop_oneof![Just(PenState::Up), Just(PenState::Down)]
            .prop_map(Reply::Pen)
            .boxed(),
        ReplyKind::Enables => {
            let m = prop_oneof![Just(0u8), Just(1), Just(2), Just(4), Just(8), Just(16)];
            (m.clone(), m)
                .prop_map(|(motor1, motor2)| Reply::Enables(MotorEnables { motor1, motor2 }))
                .boxed()
        }
        ReplyKind::EStop if v2 => (any::<bool>(), any::<[u32; 4]>())
            .prop_map(|(interrupted, s)| {
                Reply::EStop(EStopReport {
                    interrupted,
                    steps: Some(EStopSteps {
                        fifo: [s[0], s[1]],
                        remaining: [s[2], s[3]],
                    }),
                })
            })
            .boxed(),
        ReplyKind::EStop => any::<bool>()
            .prop_map(|interrupted| {
                Reply::EStop(EStopReport {
                    interrupted,
                    steps: None,
                })
            })
            .boxed(),
        ReplyKind::Button => any::<bool>()
            .prop_map(|pressed| Reply::Button { pressed })
            .boxed(),
        ReplyKind::Layer => any::<u8>().prop_map(Reply::Layer).boxed(),
        ReplyKind::NodeCount => any::<u32>().prop_map(Reply::NodeCount).boxed(),
        ReplyKind::Current => (0u16..=1023, 0u16..=1023)
            .prop_map(|(current, voltage)| Reply::Current { current, voltage })
            .boxed(),
        ReplyKind::ServoPower => any::<bool>().prop_map(Reply::ServoPower).boxed(),
        ReplyKind::Nickname => printable(0, 16, b"!")
            .prop_map(|n| Reply::Nickname(text(&n)))
            .boxed(),
        ReplyKind::Utility => "[0-9A-F,]{0,32}"
            .prop_map(|t| Reply::Utility(UtilityValue::from_text(text(&t))))
            .boxed(),
        ReplyKind::Ack(_)
        | ReplyKind::Reset
        | ReplyKind::SetAck(_)
        | ReplyKind::SetFutureSyntax(_) => Just(Reply::Ok).boxed(),
    }
}

/// One command's reply kind and the firmware's answer, for firmware line 2.x (`v2`) or 3.x.
pub(crate) fn arb_exchange(v2: bool) -> BoxedStrategy<(ReplyKind, Answer)> {
    let mut kinds: Vec<ReplyKind> = vec![
        ReplyKind::Ack("SM"),
        ReplyKind::Ack("EM"),
        ReplyKind::Reset,
        ReplyKind::SetAck(false),
        ReplyKind::SetAck(true),
        ReplyKind::SetFutureSyntax(false),
        ReplyKind::SetFutureSyntax(true),
    ];
    kinds.extend(
        ReplyKind::DATA
            .into_iter()
            .filter(|k| !(v2 && *k == ReplyKind::Utility)),
    );
    proptest::sample::select(kinds)
        .prop_flat_map(move |kind| {
            let answer = prop_oneof![
                4 => arb_data(kind, v2).prop_map(Answer::Normal),
                1 => arb_error(v2).prop_map(Answer::Error),
            ];
            (Just(kind), answer)
        })
        .boxed()
}

fn edge_i32() -> impl Strategy<Value = i32> + Clone {
    prop_oneof![
        3 => -3000i32..3000,
        2 => any::<i32>(),
        1 => proptest::sample::select(vec![0, 1, -1, i32::MIN, i32::MAX, 85_899_346, -85_899_346]),
    ]
}

fn edge_u32() -> impl Strategy<Value = u32> + Clone {
    prop_oneof![
        3 => 0u32..3000,
        2 => any::<u32>(),
        1 => proptest::sample::select(vec![0, 1, u32::MAX, 16_777_215, 16_777_216, 65_536, 100_000]),
    ]
}

fn small_u8() -> impl Strategy<Value = u8> {
    prop_oneof![3 => 0u8..40, 1 => any::<u8>()]
}

fn pair<T: core::fmt::Debug + Clone, S>(s: S) -> impl Strategy<Value = [T; 2]> + Clone
where
    S: Strategy<Value = T> + Clone,
{
    (s.clone(), s).prop_map(|(a, b)| [a, b])
}

/// Any command, biased towards boundary values (valid or not).
pub(crate) fn arb_command() -> BoxedStrategy<super::Command> {
    use super::command::*;
    let clear = proptest::option::of(0u8..6);
    let stepper = (edge_u32(), pair(edge_i32()), clear.clone())
        .prop_map(|(duration_ms, steps, clear)| StepperMove {
            duration_ms,
            steps,
            clear,
        })
        .boxed();
    let motion = prop_oneof![
        stepper.clone().prop_map(Command::StepperMove),
        stepper.prop_map(Command::MixedMove),
        (edge_u32(), proptest::option::of(pair(edge_i32()))).prop_map(|(step_rate, position)| {
            Command::HomeMove(HomeMove {
                step_rate,
                position,
            })
        }),
        (
            pair(edge_i32()),
            pair(edge_i32()),
            pair(edge_i32()),
            clear.clone()
        )
            .prop_map(
                |(rate, steps, accel, clear)| Command::LowLevelMove(LowLevelMove {
                    rate,
                    steps,
                    accel,
                    clear
                })
            ),
        (
            edge_u32(),
            pair(edge_i32()),
            pair(edge_i32()),
            clear.clone()
        )
            .prop_map(|(intervals, rate, accel, clear)| Command::LowLevelTimed(
                TimedMove {
                    intervals,
                    rate,
                    accel,
                    clear
                }
            )),
        (
            pair(edge_i32()),
            pair(edge_i32()),
            pair(edge_i32()),
            pair(edge_i32()),
            clear.clone()
        )
            .prop_map(
                |(rate, steps, accel, jerk, clear)| Command::JerkMove(JerkMove {
                    rate,
                    steps,
                    accel,
                    jerk,
                    clear
                })
            ),
        (
            edge_u32(),
            pair(edge_i32()),
            pair(edge_i32()),
            pair(edge_i32()),
            clear.clone()
        )
            .prop_map(|(intervals, rate, accel, jerk, clear)| {
                Command::TimedJerkMove(TimedJerkMove {
                    intervals,
                    rate,
                    accel,
                    jerk,
                    clear,
                })
            }),
        (
            edge_u32(),
            pair(edge_i32()),
            pair(edge_i32()),
            pair(edge_i32()),
            pair(edge_i32()),
            clear
        )
            .prop_map(|(intervals, rate_a, rate_b, accel, jerk, clear)| {
                Command::DoubleTimedMove(DoubleTimedMove {
                    intervals,
                    rate_a,
                    rate_b,
                    accel,
                    jerk,
                    clear,
                })
            }),
    ];
    let simple = proptest::sample::select(vec![
        Command::VersionProbe,
        Command::Version,
        Command::Reset,
        Command::ClearSteps,
        Command::QueryButton,
        Command::QueryGeneral,
        Command::QueryEnables,
        Command::QueryMotors,
        Command::QueryPen,
        Command::QuerySteps,
        Command::QueryCurrent,
        Command::QueryServoPower,
        Command::QueryNickname,
        Command::QueryNodeCount,
        Command::NodeIncrement,
        Command::NodeDecrement,
    ]);
    let port = proptest::sample::select(vec![Port::A, Port::B, Port::C, Port::D, Port::E]);
    let other = prop_oneof![
        (any::<u8>(), any::<u8>())
            .prop_map(|(enable1, enable2)| Command::EnableMotors(EnableMotors { enable1, enable2 })),
        any::<bool>().prop_map(|disable_motors| Command::EmergencyStop { disable_motors }),
        (
            proptest::sample::select(PenAction::ALL.to_vec()),
            proptest::option::of(any::<u16>()),
            proptest::option::of(0u8..10)
        )
            .prop_map(|(action, duration_ms, pin)| Command::SetPen(SetPen {
                action,
                duration_ms,
                pin
            })),
        proptest::option::of(any::<u16>()).prop_map(|duration_ms| Command::TogglePen { duration_ms }),
        (small_u8(), any::<u16>())
            .prop_map(|(parameter, value)| Command::ServoConfig { parameter, value }),
        (edge_u32(), proptest::option::of(any::<bool>()))
            .prop_map(|(timeout_ms, power)| Command::ServoTimeout { timeout_ms, power }),
        (
            any::<u16>(),
            small_u8(),
            proptest::option::of(any::<u16>()),
            proptest::option::of(any::<u16>())
        )
            .prop_map(|(position, rpn, rate, delay_ms)| Command::Servo2(Servo2 {
                position,
                rpn,
                rate,
                delay_ms
            })),
        any::<u8>().prop_map(Command::QueryUtility),
        proptest::option::of(small_u8()).prop_map(|index| Command::QueryLayer { index }),
        (any::<u8>(), proptest::option::of(small_u8()))
            .prop_map(|(value, index)| Command::SetLayer { value, index }),
        (
            prop_oneof![3 => proptest::sample::select(vec![1u8, 2, 3, 4, 10, 50, 51, 52, 53, 54, 60, 61, 250]), 1 => any::<u8>()],
            prop_oneof![3 => -2i16..40, 1 => any::<i16>()]
        )
            .prop_map(|(parameter, value)| Command::Configure(Configure { parameter, value })),
        (port, 0u8..10).prop_map(|(port, pin)| Command::PinInput { port, pin }),
        "[ -~]{0,16}".prop_map(|s| Command::SetNickname(text(&s))),
        edge_u32().prop_map(Command::SetNodeCount),
        (
            any::<bool>(),
            proptest::option::of(0u16..1100),
            proptest::option::of(any::<bool>())
        )
            .prop_map(|(on, power, queued)| Command::SetEngraver(SetEngraver { on, power, queued })),
    ];
    prop_oneof![1 => simple, 3 => motion, 2 => other].boxed()
}

/// A firmware version around the capability thresholds.
pub(crate) fn arb_version() -> impl Strategy<Value = FirmwareVersion> {
    prop_oneof![
        3 => proptest::sample::select(vec![
            FirmwareVersion::LATEST,
            FirmwareVersion::new(3, 0, 0),
            FirmwareVersion::new(3, 0, 1),
            FirmwareVersion::LAST_V2,
            FirmwareVersion::new(2, 7, 0),
            FirmwareVersion::new(2, 6, 2),
            FirmwareVersion::new(2, 5, 0),
        ]),
        1 => (1u8..=4, any::<u8>(), any::<u8>()).prop_map(|(a, b, c)| FirmwareVersion::new(a, b, c)),
    ]
}
