//! Fuzz targets of plotty-motion's EBB wire layer: reply parsing and command encoding.

use std::fmt::Write as _;

use arbitrary::{Result, Unstructured};
use plotty_motion::ebb::{
    Command, Configure, DoubleTimedMove, EnableMotors, EncodeError, EncodeOptions, FirmwareVersion,
    HomeMove, JerkMove, LineBuffer, LowLevelMove, Nickname, PenAction, Port, Reply, ReplyError,
    ReplyKind, ReplyMode, ReplyParser, Servo2, SetEngraver, SetPen, StepperMove, TimedJerkMove,
    TimedMove, limits,
};

/// Line capacity used by the reply fuzzer: small, so over-long lines are exercised often.
const LINE_CAPACITY: usize = 48;

/// Every reply kind a command can have (with two example acknowledgement names).
pub const ALL_KINDS: [ReplyKind; 22] = [
    ReplyKind::Ack("SM"),
    ReplyKind::Ack("CU"),
    ReplyKind::Reset,
    ReplyKind::SetAck(false),
    ReplyKind::SetAck(true),
    ReplyKind::SetFutureSyntax(false),
    ReplyKind::SetFutureSyntax(true),
    ReplyKind::Version,
    ReplyKind::GeneralStatus,
    ReplyKind::Motors,
    ReplyKind::Steps,
    ReplyKind::Pen,
    ReplyKind::Enables,
    ReplyKind::EStop,
    ReplyKind::Button,
    ReplyKind::Layer,
    ReplyKind::NodeCount,
    ReplyKind::Current,
    ReplyKind::ServoPower,
    ReplyKind::Nickname,
    ReplyKind::Utility,
    ReplyKind::Pin,
];

const MODES: [ReplyMode; 3] = [ReplyMode::Legacy, ReplyMode::Future, ReplyMode::LegacyV2];

/// Fuzz target `response_parser`: `data` is a byte stream from the board. Its first byte picks
/// the reply mode and the commands the stream answers (one reply kind repeated, or a rotating
/// mix); the whole of `data` is then fed through `LineBuffer` + `ReplyParser`, once in one piece
/// and once split into pieces whose sizes derive from the data.
///
/// Invariants: no panic; every call consumes input; lines are non-empty, within capacity and
/// free of CR/LF; a completed reply fits the kind it answers; the parser is idle after each
/// completion; splitting the input differently changes nothing.
pub fn response_parser(data: &[u8]) {
    let selector = usize::from(data.first().copied().unwrap_or(0));
    let mode = MODES[selector % MODES.len()];
    let schedule = (selector / MODES.len()) % (ALL_KINDS.len() + 1);
    check_stream(mode, schedule, data);
}

/// [`response_parser`] for every mode and every schedule: what the stable corpus replay runs.
pub fn response_parser_exhaustive(data: &[u8]) {
    for mode in MODES {
        for schedule in 0..=ALL_KINDS.len() {
            check_stream(mode, schedule, data);
        }
    }
}

/// Schedule `k < ALL_KINDS.len()` answers `ALL_KINDS[k]` over and over; the last one rotates
/// through all kinds.
fn check_stream(mode: ReplyMode, schedule: usize, data: &[u8]) {
    let seed = data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let kinds = |n: usize| match ALL_KINDS.get(schedule) {
        Some(kind) => *kind,
        None => ALL_KINDS[(n + seed as usize) % ALL_KINDS.len()],
    };
    let whole = run_replies(mode, data, &kinds, None);
    let split = run_replies(mode, data, &kinds, Some(seed));
    assert_eq!(
        whole, split,
        "{mode:?} schedule {schedule}: splitting the input changed the result"
    );
}

/// Feeds `data` (whole, or in pseudo-random pieces from `split_seed`) and returns every
/// completed reply. `schedule(n)` is the kind of the n-th command.
fn run_replies(
    mode: ReplyMode,
    data: &[u8],
    schedule: &dyn Fn(usize) -> ReplyKind,
    split_seed: Option<u64>,
) -> Vec<Result<Reply, ReplyError>> {
    let mut lines = LineBuffer::<LINE_CAPACITY>::new();
    let mut parser = ReplyParser::new(mode);
    let mut out = Vec::new();
    let mut rng = split_seed.unwrap_or(1) | 1;
    let mut rest = data;
    let begin = |parser: &mut ReplyParser, out: &mut Vec<_>| {
        // A few silent replies in a row at most; then a line is needed.
        for _ in 0..4 {
            let kind = schedule(out.len());
            match parser.begin(kind) {
                Some(done) => {
                    check_done(kind, &done);
                    out.push(done);
                }
                None => return,
            }
        }
    };
    begin(&mut parser, &mut out);
    while !rest.is_empty() {
        let piece_len = match split_seed {
            None => rest.len(),
            Some(_) => {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                1 + (rng % 9) as usize
            }
        };
        let (mut piece, tail) = rest.split_at(piece_len.min(rest.len()));
        rest = tail;
        while !piece.is_empty() {
            let before = piece.len();
            let (left, line) = lines.push(piece);
            assert!(left.len() < before, "LineBuffer made no progress");
            piece = left;
            let done = match line {
                Some(Ok(line)) => {
                    assert!(!line.is_empty() && line.len() <= LINE_CAPACITY);
                    assert!(!line.contains(&b'\r') && !line.contains(&b'\n'));
                    parser.push_line(line)
                }
                Some(Err(e)) => {
                    assert_eq!(e.capacity, LINE_CAPACITY);
                    parser.push_line_error(e)
                }
                None => None,
            };
            if let Some(done) = done {
                assert_eq!(
                    parser.expected(),
                    None,
                    "parser not idle after a completed reply"
                );
                // The command whose reply this is: the scheduled one at this position.
                check_done(schedule(out.len()), &done);
                describe(&done);
                out.push(done);
                begin(&mut parser, &mut out);
            }
        }
    }
    out
}

/// A completed reply must be one the kind allows.
fn check_done(kind: ReplyKind, done: &Result<Reply, ReplyError>) {
    if let Ok(reply) = done {
        assert!(kind.accepts(reply), "{kind:?} answered with {reply:?}");
    }
}

/// Formats the result (Display must not panic either).
fn describe(done: &Result<Reply, ReplyError>) {
    let mut s = String::new();
    match done {
        Ok(Reply::Error(e)) => write!(s, "{e}").unwrap_or(()),
        Ok(other) => write!(s, "{other:?}").unwrap_or(()),
        Err(e) => write!(s, "{e}").unwrap_or(()),
    }
}

/// Fuzz target `command_encode`: builds a `Command`, a firmware version and a checksum flag from
/// `data` and encodes into a small and a large buffer.
///
/// Invariants: no panic; validation decides before the buffer size; the large buffer gets
/// exactly `encoded_len_with` bytes of printable ASCII ending in one CR, at most 256 in all; the
/// checksum sums to zero; a too-small buffer is reported with the same length and left as it
/// was; the FIFO and reply metadata are consistent.
pub fn command_encode(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok((command, firmware, checksum)) = encode_input(&mut u) else {
        return;
    };
    let options = EncodeOptions::new(firmware).with_checksum(checksum);
    let mut large = [0u8; 300];
    let mut small = [0xAAu8; 8];
    let full = command.encode_with(&options, &mut large);
    let part = command.encode_with(&options, &mut small);
    let validated = command.validate(firmware);
    match &full {
        Ok(n) => {
            let n = *n;
            assert!(validated.is_ok());
            assert_eq!(n, command.encoded_len_with(&options));
            assert!(n <= limits::MAX_ENCODED_LEN, "{n} bytes");
            let (last, body) = large[..n].split_last().expect("at least a CR");
            assert_eq!(*last, b'\r');
            assert!(body.iter().all(|b| (0x20..=0x7E).contains(b)), "{body:?}");
            assert!(body.starts_with(command.name().as_bytes()));
            if checksum {
                let comma = body
                    .iter()
                    .rposition(|&b| b == b',')
                    .expect("checksum comma");
                let sum = body[..comma].iter().fold(0u8, |s, &b| s.wrapping_add(b));
                let given: u8 = std::str::from_utf8(&body[comma + 1..])
                    .expect("ascii")
                    .parse()
                    .expect("decimal checksum");
                assert_eq!(sum.wrapping_add(given), 0);
            } else {
                assert_eq!(n, command.encoded_len());
            }
            match part {
                Ok(m) => assert_eq!(&small[..m], &large[..n]),
                Err(EncodeError::BufferTooSmall { needed, available }) => {
                    assert_eq!((needed, available), (n, small.len()));
                    assert!(small.iter().all(|&b| b == 0xAA), "partial write");
                }
                Err(e) => panic!("small buffer gave {e:?} where the large one encoded"),
            }
        }
        Err(e) => {
            assert!(!matches!(e, EncodeError::BufferTooSmall { .. }));
            assert_eq!(part.as_ref().err(), Some(e));
            assert!(validated.is_err() || (checksum && !firmware.is_v3()));
            let mut s = String::new();
            write!(s, "{e}").unwrap_or(());
            assert!(!s.is_empty());
        }
    }
    // Metadata must be total and consistent.
    let entries = command.fifo_entries(firmware);
    assert!(entries <= 2);
    assert_eq!(
        command.is_queued(),
        command.fifo_entries(FirmwareVersion::LATEST) > 0
    );
    let kind = command.reply_kind();
    assert!(!kind.name().is_empty());
    let _ = command.waits_for_idle();
    let _ = command.min_version();
}

/// The fuzz input for `command_encode`.
fn encode_input(u: &mut Unstructured<'_>) -> Result<(Command, FirmwareVersion, bool)> {
    let firmware = match u.int_in_range(0u8..=7)? {
        0 => FirmwareVersion::LATEST,
        1 => FirmwareVersion::new(3, 0, 0),
        2 => FirmwareVersion::new(3, 0, 1),
        3 => FirmwareVersion::LAST_V2,
        4 => FirmwareVersion::new(2, 7, 0),
        5 => FirmwareVersion::new(2, 6, 2),
        _ => FirmwareVersion::new(u.arbitrary()?, u.arbitrary()?, u.arbitrary()?),
    };
    let checksum = u.arbitrary()?;
    Ok((command(u)?, firmware, checksum))
}

/// An `i32` biased towards the values that matter to the firmware's checks.
fn int(u: &mut Unstructured<'_>) -> Result<i32> {
    Ok(match u.int_in_range(0u8..=7)? {
        0 => 0,
        1 => i32::MIN,
        2 => i32::MAX,
        3 | 4 => u.int_in_range(-3000..=3000)?,
        _ => u.arbitrary()?,
    })
}

fn uint(u: &mut Unstructured<'_>) -> Result<u32> {
    Ok(match u.int_in_range(0u8..=7)? {
        0 => 0,
        1 => u32::MAX,
        2 => limits::MAX_SM_DURATION_MS_V2,
        3 | 4 => u.int_in_range(0..=3000)?,
        _ => u.arbitrary()?,
    })
}

fn pair(u: &mut Unstructured<'_>) -> Result<[i32; 2]> {
    Ok([int(u)?, int(u)?])
}

fn clear(u: &mut Unstructured<'_>) -> Result<Option<u8>> {
    Ok(if u.arbitrary()? {
        Some(u.int_in_range(0..=5)?)
    } else {
        None
    })
}

fn stepper(u: &mut Unstructured<'_>) -> Result<StepperMove> {
    Ok(StepperMove {
        duration_ms: uint(u)?,
        steps: pair(u)?,
        clear: clear(u)?,
    })
}

/// Number of `Command` variants; `variant_index` below must cover them all.
const VARIANTS: u8 = 39;

/// Builds any `Command` variant from the input.
pub fn command(u: &mut Unstructured<'_>) -> Result<Command> {
    let c = match u.int_in_range(0..=VARIANTS - 1)? {
        0 => Command::VersionProbe,
        1 => Command::Version,
        2 => Command::Reset,
        3 => Command::ClearSteps,
        4 => Command::EnableMotors(EnableMotors {
            enable1: u.arbitrary()?,
            enable2: u.arbitrary()?,
        }),
        5 => Command::EmergencyStop {
            disable_motors: u.arbitrary()?,
        },
        6 => Command::StepperMove(stepper(u)?),
        7 => Command::MixedMove(stepper(u)?),
        8 => Command::HomeMove(HomeMove {
            step_rate: uint(u)?,
            position: if u.arbitrary()? { Some(pair(u)?) } else { None },
        }),
        9 => Command::LowLevelMove(LowLevelMove {
            rate: pair(u)?,
            steps: pair(u)?,
            accel: pair(u)?,
            clear: clear(u)?,
        }),
        10 => Command::LowLevelTimed(TimedMove {
            intervals: uint(u)?,
            rate: pair(u)?,
            accel: pair(u)?,
            clear: clear(u)?,
        }),
        11 => Command::JerkMove(JerkMove {
            rate: pair(u)?,
            steps: pair(u)?,
            accel: pair(u)?,
            jerk: pair(u)?,
            clear: clear(u)?,
        }),
        12 => Command::TimedJerkMove(TimedJerkMove {
            intervals: uint(u)?,
            rate: pair(u)?,
            accel: pair(u)?,
            jerk: pair(u)?,
            clear: clear(u)?,
        }),
        13 => Command::DoubleTimedMove(DoubleTimedMove {
            intervals: uint(u)?,
            rate_a: pair(u)?,
            rate_b: pair(u)?,
            accel: pair(u)?,
            jerk: pair(u)?,
            clear: clear(u)?,
        }),
        14 => Command::SetPen(SetPen {
            action: *u.choose(&PenAction::ALL)?,
            duration_ms: u.arbitrary()?,
            pin: u.arbitrary()?,
        }),
        15 => Command::TogglePen {
            duration_ms: u.arbitrary()?,
        },
        16 => Command::ServoConfig {
            parameter: u.arbitrary()?,
            value: u.arbitrary()?,
        },
        17 => Command::ServoTimeout {
            timeout_ms: uint(u)?,
            power: u.arbitrary()?,
        },
        18 => Command::Servo2(Servo2 {
            position: u.arbitrary()?,
            rpn: u.int_in_range(0..=30)?,
            rate: u.arbitrary()?,
            delay_ms: u.arbitrary()?,
        }),
        19 => Command::QueryButton,
        20 => Command::QueryGeneral,
        21 => Command::QueryEnables,
        22 => Command::QueryMotors,
        23 => Command::QueryPen,
        24 => Command::QuerySteps,
        25 => Command::QueryUtility(u.arbitrary()?),
        26 => Command::QueryLayer {
            index: u.arbitrary()?,
        },
        27 => Command::SetLayer {
            value: u.arbitrary()?,
            index: u.arbitrary()?,
        },
        28 => Command::QueryCurrent,
        29 => Command::Configure(Configure {
            parameter: u.arbitrary()?,
            value: u.arbitrary()?,
        }),
        30 => Command::PinInput {
            port: *u.choose(&[Port::A, Port::B, Port::C, Port::D, Port::E])?,
            pin: u.int_in_range(0..=10)?,
        },
        31 => Command::QueryServoPower,
        32 => Command::QueryNickname,
        33 => {
            let mut name = Nickname::new();
            let len = u.int_in_range(0..=16)?;
            for _ in 0..len {
                let c: char = if u.ratio(1, 8)? {
                    u.arbitrary()?
                } else {
                    char::from(u.int_in_range(0x20u8..=0x7E)?)
                };
                if name.push(c).is_err() {
                    break;
                }
            }
            Command::SetNickname(name)
        }
        34 => Command::QueryNodeCount,
        35 => Command::SetNodeCount(uint(u)?),
        36 => Command::NodeIncrement,
        37 => Command::NodeDecrement,
        _ => Command::SetEngraver(SetEngraver {
            on: u.arbitrary()?,
            power: u.arbitrary()?,
            queued: u.arbitrary()?,
        }),
    };
    debug_assert!(variant_index(&c) < VARIANTS);
    Ok(c)
}

/// Exhaustive over `Command`: adding a variant fails to compile here until `command` above
/// builds it too.
fn variant_index(c: &Command) -> u8 {
    match c {
        Command::VersionProbe => 0,
        Command::Version => 1,
        Command::Reset => 2,
        Command::ClearSteps => 3,
        Command::EnableMotors(_) => 4,
        Command::EmergencyStop { .. } => 5,
        Command::StepperMove(_) => 6,
        Command::MixedMove(_) => 7,
        Command::HomeMove(_) => 8,
        Command::LowLevelMove(_) => 9,
        Command::LowLevelTimed(_) => 10,
        Command::JerkMove(_) => 11,
        Command::TimedJerkMove(_) => 12,
        Command::DoubleTimedMove(_) => 13,
        Command::SetPen(_) => 14,
        Command::TogglePen { .. } => 15,
        Command::ServoConfig { .. } => 16,
        Command::ServoTimeout { .. } => 17,
        Command::Servo2(_) => 18,
        Command::QueryButton => 19,
        Command::QueryGeneral => 20,
        Command::QueryEnables => 21,
        Command::QueryMotors => 22,
        Command::QueryPen => 23,
        Command::QuerySteps => 24,
        Command::QueryUtility(_) => 25,
        Command::QueryLayer { .. } => 26,
        Command::SetLayer { .. } => 27,
        Command::QueryCurrent => 28,
        Command::Configure(_) => 29,
        Command::PinInput { .. } => 30,
        Command::QueryServoPower => 31,
        Command::QueryNickname => 32,
        Command::SetNickname(_) => 33,
        Command::QueryNodeCount => 34,
        Command::SetNodeCount(_) => 35,
        Command::NodeIncrement => 36,
        Command::NodeDecrement => 37,
        Command::SetEngraver(_) => 38,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant index builds the variant of that index.
    #[test]
    fn command_builder_covers_every_variant() {
        for index in 0..VARIANTS {
            // `int_in_range` reads big-endian bytes; a single byte is enough for 0..=38.
            let mut bytes = vec![index];
            bytes.extend([0x55; 200]);
            let mut u = Unstructured::new(&bytes);
            let c = command(&mut u).unwrap();
            assert_eq!(variant_index(&c), index, "{c:?}");
        }
    }
}
