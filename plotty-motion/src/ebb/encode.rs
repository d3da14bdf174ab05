//! Writing a [`Command`] as bytes: `NAME,p1,p2…\r` into a caller's slice, with the optional 3.x
//! checksum (reference §1.1). No allocation; decimal formatting by hand.
//!
//! `encode_with` validates first (see `validate.rs`), then checks the buffer size, then writes:
//! on any error nothing has been written.

use core::fmt;

use super::command::{Command, Configure, PenAction};
use super::version::FirmwareVersion;

/// How to encode: for which firmware (validation rules differ between 2.x and 3.x) and whether
/// the board is in checksum mode (`CU,54,1`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EncodeOptions {
    /// The firmware the command is for.
    pub firmware: FirmwareVersion,
    /// Append `,<checksum>` (3.x checksum mode, `CU,54,1`).
    pub checksum: bool,
}

/// Why a command was not encoded. Nothing was written to the buffer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EncodeError {
    /// The buffer is shorter than the encoded command.
    BufferTooSmall {
        /// Bytes the command needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// A parameter is outside the range the firmware accepts unchanged.
    OutOfRange {
        /// Command name.
        command: &'static str,
        /// Parameter name as in the EBB documentation.
        parameter: &'static str,
        /// The value given.
        value: i64,
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// The parameters are each in range but the firmware rejects (or would mis-execute) the
    /// combination.
    Invalid {
        /// Command name.
        command: &'static str,
        /// What is wrong, and how to fix it.
        reason: &'static str,
    },
    /// The firmware does not know this command, or this form of it.
    Unsupported {
        /// Command name.
        command: &'static str,
        /// The first version that supports it.
        since: FirmwareVersion,
        /// The version encoded for.
        firmware: FirmwareVersion,
    },
}

impl EncodeOptions {
    /// Encoding for firmware `firmware`, without checksums.
    pub const fn new(firmware: FirmwareVersion) -> Self {
        Self {
            firmware,
            checksum: false,
        }
    }

    /// The same options with checksums on or off.
    pub const fn with_checksum(self, checksum: bool) -> Self {
        Self { checksum, ..self }
    }
}

impl Default for EncodeOptions {
    /// [`FirmwareVersion::LATEST`], no checksums.
    fn default() -> Self {
        Self::new(FirmwareVersion::LATEST)
    }
}

impl Command {
    /// Length of the encoded command without checksum, terminator included. Does not validate.
    pub fn encoded_len(&self) -> usize {
        self.encoded_len_with(&EncodeOptions::default())
    }

    /// Length of the encoded command with `options`, terminator included. Does not validate.
    pub fn encoded_len_with(&self, options: &EncodeOptions) -> usize {
        let mut out = Out::counting();
        self.write(&mut out, options.checksum);
        out.pos
    }

    /// Validates for [`FirmwareVersion::LATEST`] (3.0.3) and encodes without checksum into
    /// `buf`; returns the number of bytes written. For any other firmware or for checksum mode
    /// use [`Command::encode_with`] with the version from the board's `V` reply.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        self.encode_with(&EncodeOptions::default(), buf)
    }

    /// Validates the command for `options.firmware` ([`Command::validate`]) and encodes it into
    /// `buf`: `NAME,p1,p2…[,checksum]\r`. Returns the number of bytes written, always
    /// [`Command::encoded_len_with`]. On error nothing is written. A buffer of
    /// [`MAX_ENCODED_LEN`](super::limits::MAX_ENCODED_LEN) bytes holds every valid command and
    /// is written in a single pass.
    pub fn encode_with(
        &self,
        options: &EncodeOptions,
        buf: &mut [u8],
    ) -> Result<usize, EncodeError> {
        self.validate(options.firmware)?;
        if options.checksum && !options.firmware.is_v3() {
            return Err(EncodeError::Unsupported {
                command: "CU,54 (checksum mode)",
                since: FirmwareVersion::new(3, 0, 0),
                firmware: options.firmware,
            });
        }
        // Every valid command fits in MAX_ENCODED_LEN bytes (checked by the property tests and
        // the fuzzer), so a buffer that large is written in one pass; smaller ones are measured
        // first so that a failed encode leaves them untouched.
        let available = buf.len();
        if available < super::limits::MAX_ENCODED_LEN {
            let needed = self.encoded_len_with(options);
            if needed > available {
                return Err(EncodeError::BufferTooSmall { needed, available });
            }
        }
        let mut out = Out::new(buf);
        self.write(&mut out, options.checksum);
        if out.pos > available {
            return Err(EncodeError::BufferTooSmall {
                needed: out.pos,
                available,
            });
        }
        Ok(out.pos)
    }

    /// Writes (or counts) the whole command.
    fn write(&self, out: &mut Out<'_>, checksum: bool) {
        out.text(self.name());
        self.write_params(out);
        if checksum {
            let sum = 0u8.wrapping_sub(out.sum);
            out.byte(b',');
            out.unsigned(u64::from(sum));
        }
        out.byte(b'\r');
    }

    fn write_params(&self, out: &mut Out<'_>) {
        match self {
            Self::VersionProbe
            | Self::Version
            | Self::Reset
            | Self::ClearSteps
            | Self::QueryButton
            | Self::QueryGeneral
            | Self::QueryEnables
            | Self::QueryMotors
            | Self::QueryPen
            | Self::QuerySteps
            | Self::QueryCurrent
            | Self::QueryServoPower
            | Self::QueryNickname
            | Self::QueryNodeCount
            | Self::NodeIncrement
            | Self::NodeDecrement => {}
            Self::EnableMotors(em) => {
                out.param(em.enable1);
                out.param(em.enable2);
            }
            Self::EmergencyStop { disable_motors } => {
                if *disable_motors {
                    out.param(1u8);
                }
            }
            Self::StepperMove(sm) | Self::MixedMove(sm) => {
                out.param(sm.duration_ms);
                out.param(sm.steps[0]);
                out.param(sm.steps[1]);
                out.opt(sm.clear);
            }
            Self::HomeMove(hm) => {
                out.param(hm.step_rate);
                if let Some([p1, p2]) = hm.position {
                    out.param(p1);
                    out.param(p2);
                }
            }
            Self::LowLevelMove(lm) => {
                for axis in 0..2 {
                    out.param(lm.rate[axis]);
                    out.param(lm.steps[axis]);
                    out.param(lm.accel[axis]);
                }
                out.opt(lm.clear);
            }
            Self::LowLevelTimed(lt) => {
                out.param(lt.intervals);
                for axis in 0..2 {
                    out.param(lt.rate[axis]);
                    out.param(lt.accel[axis]);
                }
                out.opt(lt.clear);
            }
            Self::JerkMove(l3) => {
                for axis in 0..2 {
                    out.param(l3.rate[axis]);
                    out.param(l3.steps[axis]);
                    out.param(l3.accel[axis]);
                    out.param(l3.jerk[axis]);
                }
                out.opt(l3.clear);
            }
            Self::TimedJerkMove(t3) => {
                out.param(t3.intervals);
                for axis in 0..2 {
                    out.param(t3.rate[axis]);
                    out.param(t3.accel[axis]);
                    out.param(t3.jerk[axis]);
                }
                out.opt(t3.clear);
            }
            Self::DoubleTimedMove(td) => {
                out.param(td.intervals);
                for axis in 0..2 {
                    out.param(td.rate_a[axis]);
                    out.param(td.rate_b[axis]);
                    out.param(td.accel[axis]);
                    out.param(td.jerk[axis]);
                }
                out.opt(td.clear);
            }
            Self::SetPen(sp) => {
                out.param(sp.action.value());
                out.opt(sp.duration_ms);
                if sp.duration_ms.is_some() {
                    out.opt(sp.pin);
                }
            }
            Self::TogglePen { duration_ms } => out.opt(*duration_ms),
            Self::ServoConfig { parameter, value } => {
                out.param(*parameter);
                out.param(*value);
            }
            Self::ServoTimeout { timeout_ms, power } => {
                out.param(*timeout_ms);
                out.opt(power.map(u8::from));
            }
            Self::Servo2(s2) => {
                out.param(s2.position);
                out.param(s2.rpn);
                out.opt(s2.rate);
                if s2.rate.is_some() {
                    out.opt(s2.delay_ms);
                }
            }
            Self::QueryUtility(n) => out.param(*n),
            Self::QueryLayer { index } => out.opt(*index),
            Self::SetLayer { value, index } => {
                out.param(*value);
                out.opt(*index);
            }
            Self::Configure(Configure { parameter, value }) => {
                out.param(*parameter);
                out.param(*value);
            }
            Self::PinInput { port, pin } => {
                out.byte(b',');
                out.byte(port.letter());
                out.param(*pin);
            }
            Self::SetNickname(name) => {
                out.byte(b',');
                out.text(name.as_str());
            }
            Self::SetNodeCount(n) => out.param(*n),
            Self::SetEngraver(se) => {
                out.param(u8::from(se.on));
                out.opt(se.power);
                if se.power.is_some() {
                    out.opt(se.queued.map(u8::from));
                }
            }
        }
    }
}

impl PenAction {
    /// The action for an `SP` value, if there is one (0..=3).
    pub const fn from_value(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Down,
            1 => Self::Up,
            2 => Self::UpNow,
            3 => Self::UpNowAndQueued,
            _ => return None,
        })
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed, available } => write!(
                f,
                "command needs {needed} bytes but the buffer has {available}; pass a buffer of \
                 at least {} bytes",
                super::limits::MAX_ENCODED_LEN + 4
            ),
            Self::OutOfRange {
                command,
                parameter,
                value,
                min,
                max,
            } => write!(
                f,
                "{command}: {parameter} = {value} is outside {min}..={max} (the firmware would \
                 reject or change it)"
            ),
            Self::Invalid { command, reason } => write!(f, "{command}: {reason}"),
            Self::Unsupported {
                command,
                since,
                firmware,
            } => write!(
                f,
                "{command} needs EBB firmware {since} or later; this board runs {firmware}"
            ),
        }
    }
}

impl core::error::Error for EncodeError {}

/// The output cursor: writes into a slice, or only counts when the slice is empty, and keeps
/// the 8-bit sum for checksum mode. Writing past the end is impossible (bytes beyond the slice
/// are counted but not stored), so counting and writing share one code path.
struct Out<'a> {
    buf: &'a mut [u8],
    pos: usize,
    sum: u8,
}

/// A value that prints as a decimal parameter.
trait Param {
    fn to_i64(self) -> i64;
}

impl<'a> Out<'a> {
    fn new(buf: &'a mut [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            sum: 0,
        }
    }

    fn counting() -> Self {
        Self::new(&mut [])
    }

    fn byte(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.pos) {
            *slot = b;
        }
        self.pos += 1;
        self.sum = self.sum.wrapping_add(b);
    }

    fn text(&mut self, s: &str) {
        for &b in s.as_bytes() {
            self.byte(b);
        }
    }

    fn unsigned(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut n = digits.len();
        loop {
            n -= 1;
            if let Some(d) = digits.get_mut(n) {
                // `v % 10` is below 10, so it fits in a u8.
                *d = b'0' + (v % 10) as u8;
            }
            v /= 10;
            if v == 0 || n == 0 {
                break;
            }
        }
        for &d in digits.get(n..).unwrap_or(&[]) {
            self.byte(d);
        }
    }

    fn param(&mut self, v: impl Param) {
        self.byte(b',');
        let v = v.to_i64();
        if v < 0 {
            self.byte(b'-');
        }
        self.unsigned(v.unsigned_abs());
    }

    fn opt(&mut self, v: Option<impl Param>) {
        if let Some(v) = v {
            self.param(v);
        }
    }
}

macro_rules! param_via_i64 {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn to_i64(self) -> i64 {
                i64::from(self)
            }
        }
    )*};
}

param_via_i64!(u8, u16, u32, i16, i32);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ebb::command::*;

    fn enc(cmd: &Command) -> String {
        enc_with(cmd, &EncodeOptions::default())
    }

    fn enc_with(cmd: &Command, opts: &EncodeOptions) -> String {
        let mut buf = [0u8; 300];
        let n = cmd.encode_with(opts, &mut buf).unwrap();
        assert_eq!(n, cmd.encoded_len_with(opts));
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    fn sm(duration_ms: u32, s1: i32, s2: i32) -> Command {
        Command::StepperMove(StepperMove {
            duration_ms,
            steps: [s1, s2],
            clear: None,
        })
    }

    #[test]
    fn section_5_4_capture_lines() {
        assert_eq!(
            enc(&Command::ServoConfig {
                parameter: 4,
                value: 20641
            }),
            "SC,4,20641\r"
        );
        assert_eq!(
            enc(&Command::SetPen(SetPen {
                action: PenAction::Up,
                duration_ms: Some(130),
                pin: Some(1)
            })),
            "SP,1,130,1\r"
        );
        assert_eq!(enc(&sm(28, 100, 0)), "SM,28,100,0\r");
        assert_eq!(enc(&sm(500, 2009, -2009)), "SM,500,2009,-2009\r");
        assert_eq!(enc(&sm(10, 0, 0)), "SM,10,0,0\r");
        assert_eq!(
            enc(&Command::EnableMotors(EnableMotors {
                enable1: 1,
                enable2: 1
            })),
            "EM,1,1\r"
        );
        assert_eq!(
            enc(&Command::SetLayer {
                value: 31,
                index: None
            }),
            "SL,31\r"
        );
        assert_eq!(
            enc(&Command::ServoTimeout {
                timeout_ms: 60000,
                power: None
            }),
            "SR,60000\r"
        );
        assert_eq!(
            enc(&Command::PinInput {
                port: Port::E,
                pin: 0
            }),
            "PI,E,0\r"
        );
        assert_eq!(enc(&Command::VersionProbe), "v\r");
        assert_eq!(enc(&Command::Version), "V\r");
        assert_eq!(enc(&Command::QueryButton), "QB\r");
    }

    #[test]
    fn checksums_of_section_1_1() {
        let opts = EncodeOptions::default().with_checksum(true);
        assert_eq!(
            enc_with(&sm(1000, 1000, 1000), &opts),
            "SM,1000,1000,1000,153\r"
        );
        assert_eq!(
            enc_with(&Command::Configure(Configure::checksum(false)), &opts),
            "CU,54,0,119\r"
        );
        assert_eq!(enc_with(&Command::Version, &opts), "V,170\r");
        let v2 = EncodeOptions::new(FirmwareVersion::LAST_V2).with_checksum(true);
        assert!(matches!(
            Command::Version.encode_with(&v2, &mut [0; 16]),
            Err(EncodeError::Unsupported { .. })
        ));
    }

    #[test]
    fn every_command_encodes() {
        let cases: Vec<(Command, &str)> = vec![
            (Command::Reset, "R\r"),
            (Command::ClearSteps, "CS\r"),
            (
                Command::EmergencyStop {
                    disable_motors: false,
                },
                "ES\r",
            ),
            (
                Command::EmergencyStop {
                    disable_motors: true,
                },
                "ES,1\r",
            ),
            (
                Command::MixedMove(StepperMove {
                    duration_ms: 100,
                    steps: [10, -5],
                    clear: Some(3),
                }),
                "XM,100,10,-5,3\r",
            ),
            (
                Command::HomeMove(HomeMove {
                    step_rate: 3200,
                    position: None,
                }),
                "HM,3200\r",
            ),
            (
                Command::HomeMove(HomeMove {
                    step_rate: 3200,
                    position: Some([-100, 200]),
                }),
                "HM,3200,-100,200\r",
            ),
            (
                Command::LowLevelMove(LowLevelMove {
                    rate: [3865471, 0],
                    steps: [60, 0],
                    accel: [1732, 0],
                    clear: None,
                }),
                "LM,3865471,60,1732,0,0,0\r",
            ),
            (
                Command::LowLevelMove(LowLevelMove {
                    rate: [17179000, 8592000],
                    steps: [75, 75],
                    accel: [-687, 687],
                    clear: Some(3),
                }),
                "LM,17179000,75,-687,8592000,75,687,3\r",
            ),
            (
                Command::LowLevelTimed(TimedMove {
                    intervals: 12500,
                    rate: [17179000, 8592000],
                    accel: [-687, 687],
                    clear: None,
                }),
                "LT,12500,17179000,-687,8592000,687\r",
            ),
            (
                Command::LowLevelTimed(TimedMove {
                    intervals: 10169,
                    rate: [3865471, 0],
                    accel: [1732, 0],
                    clear: Some(3),
                }),
                "LT,10169,3865471,1732,0,0,3\r",
            ),
            (
                Command::JerkMove(JerkMove {
                    rate: [1, 2],
                    steps: [3, 4],
                    accel: [5, 6],
                    jerk: [7, -8],
                    clear: Some(1),
                }),
                "L3,1,3,5,7,2,4,6,-8,1\r",
            ),
            (
                Command::TimedJerkMove(TimedJerkMove {
                    intervals: 9,
                    rate: [1, 2],
                    accel: [3, 4],
                    jerk: [5, 6],
                    clear: None,
                }),
                "T3,9,1,3,5,2,4,6\r",
            ),
            (
                Command::DoubleTimedMove(DoubleTimedMove {
                    intervals: 9,
                    rate_a: [1, 2],
                    rate_b: [3, 4],
                    accel: [5, 6],
                    jerk: [7, 8],
                    clear: Some(2),
                }),
                "TD,9,1,3,5,7,2,4,6,8,2\r",
            ),
            (Command::TogglePen { duration_ms: None }, "TP\r"),
            (
                Command::TogglePen {
                    duration_ms: Some(146),
                },
                "TP,146\r",
            ),
            (
                Command::SetPen(SetPen {
                    action: PenAction::Down,
                    duration_ms: None,
                    pin: None,
                }),
                "SP,0\r",
            ),
            (
                Command::SetPen(SetPen {
                    action: PenAction::UpNowAndQueued,
                    duration_ms: Some(0),
                    pin: None,
                }),
                "SP,3,0\r",
            ),
            (
                Command::ServoTimeout {
                    timeout_ms: 0,
                    power: Some(false),
                },
                "SR,0,0\r",
            ),
            (
                Command::Servo2(Servo2 {
                    position: 15000,
                    rpn: 4,
                    rate: Some(100),
                    delay_ms: Some(250),
                }),
                "S2,15000,4,100,250\r",
            ),
            (
                Command::Servo2(Servo2 {
                    position: 0,
                    rpn: 24,
                    rate: None,
                    delay_ms: None,
                }),
                "S2,0,24\r",
            ),
            (Command::QueryGeneral, "QG\r"),
            (Command::QueryEnables, "QE\r"),
            (Command::QueryMotors, "QM\r"),
            (Command::QueryPen, "QP\r"),
            (Command::QuerySteps, "QS\r"),
            (Command::QueryUtility(200), "QU,200\r"),
            (Command::QueryLayer { index: None }, "QL\r"),
            (Command::QueryLayer { index: Some(31) }, "QL,31\r"),
            (
                Command::SetLayer {
                    value: 255,
                    index: Some(3),
                },
                "SL,255,3\r",
            ),
            (Command::QueryCurrent, "QC\r"),
            (Command::Configure(Configure::fifo_depth(32)), "CU,4,32\r"),
            (
                Command::Configure(Configure::future_syntax(true)),
                "CU,10,1\r",
            ),
            (
                Command::Configure(Configure {
                    parameter: Configure::POWER_LOST_THRESHOLD,
                    value: 250,
                }),
                "CU,60,250\r",
            ),
            (Command::QueryServoPower, "QR\r"),
            (Command::QueryNickname, "QT\r"),
            (
                Command::SetNickname(Nickname::try_from("AxiDraw_A3").unwrap()),
                "ST,AxiDraw_A3\r",
            ),
            (Command::QueryNodeCount, "QN\r"),
            (Command::SetNodeCount(4294967295), "SN,4294967295\r"),
            (Command::NodeIncrement, "NI\r"),
            (Command::NodeDecrement, "ND\r"),
            (
                Command::SetEngraver(SetEngraver {
                    on: true,
                    power: Some(1023),
                    queued: Some(true),
                }),
                "SE,1,1023,1\r",
            ),
            (
                Command::SetEngraver(SetEngraver {
                    on: false,
                    power: None,
                    queued: None,
                }),
                "SE,0\r",
            ),
        ];
        for (cmd, expected) in cases {
            assert_eq!(enc(&cmd), expected, "{cmd:?}");
        }
    }

    #[test]
    fn extreme_values() {
        let lm = Command::LowLevelMove(LowLevelMove {
            rate: [i32::MAX, 1],
            steps: [i32::MIN + 1, 1],
            accel: [i32::MIN, 0],
            clear: None,
        });
        assert_eq!(enc(&lm), "LM,2147483647,-2147483647,-2147483648,1,1,0\r");
    }

    #[test]
    fn small_buffer_is_an_error_and_untouched() {
        let cmd = sm(28, 100, 0);
        let mut buf = [b'#'; 5];
        assert_eq!(
            cmd.encode(&mut buf),
            Err(EncodeError::BufferTooSmall {
                needed: 12,
                available: 5
            })
        );
        assert_eq!(buf, [b'#'; 5]);
        let mut exact = [0u8; 12];
        assert_eq!(cmd.encode(&mut exact), Ok(12));
    }

    #[test]
    fn error_messages_name_parameter_and_limit() {
        let e = sm(0, 1, 1).encode(&mut [0; 32]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "SM: Duration = 0 is outside 1..=4294967295 (the firmware would reject or change it)"
        );
        let e = Command::JerkMove(JerkMove {
            rate: [1; 2],
            steps: [1; 2],
            accel: [0; 2],
            jerk: [0; 2],
            clear: None,
        })
        .encode_with(&EncodeOptions::new(FirmwareVersion::LAST_V2), &mut [0; 64])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "L3 needs EBB firmware 3.0.0 or later; this board runs 2.8.1"
        );
    }

    mod props {
        use super::*;
        use crate::ebb::limits::MAX_ENCODED_LEN;
        use crate::ebb::testutil::{arb_command, arb_version};
        use proptest::prelude::*;

        /// The generator must produce enough valid commands for the properties below to mean
        /// something.
        #[test]
        fn generator_yields_valid_commands() {
            use proptest::strategy::ValueTree;
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            let strategy = (arb_command(), arb_version());
            let valid = (0..2000)
                .filter(|_| {
                    let (cmd, fw) = strategy.new_tree(&mut runner).unwrap().current();
                    cmd.validate(fw).is_ok()
                })
                .count();
            assert!(
                valid > 600,
                "only {valid} of 2000 generated commands are valid"
            );
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4096))]

            /// `encoded_len` equals what `encode` writes; the output is printable ASCII ending in
            /// a single CR and fits the firmware's 256-byte buffer; the checksum sums to 0.
            #[test]
            fn encoding_is_well_formed(cmd in arb_command(), fw in arb_version(), checksum in any::<bool>()) {
                let opts = EncodeOptions::new(fw).with_checksum(checksum);
                let mut buf = [0u8; 400];
                let Ok(n) = cmd.encode_with(&opts, &mut buf) else {
                    return Ok(());
                };
                prop_assert_eq!(n, cmd.encoded_len_with(&opts));
                prop_assert!(n <= MAX_ENCODED_LEN);
                let (last, body) = buf[..n].split_last().unwrap();
                prop_assert_eq!(*last, b'\r');
                prop_assert!(body.iter().all(|b| (0x20..=0x7E).contains(b)), "{:?}", &buf[..n]);
                prop_assert!(body.starts_with(cmd.name().as_bytes()));
                if checksum {
                    let comma = body.iter().rposition(|&b| b == b',').unwrap();
                    let sum = body[..comma].iter().fold(0u8, |s, &b| s.wrapping_add(b));
                    let given: u8 = core::str::from_utf8(&body[comma + 1..]).unwrap().parse().unwrap();
                    prop_assert_eq!(sum.wrapping_add(given), 0);
                } else {
                    prop_assert_eq!(n, cmd.encoded_len());
                }
            }

            /// A small buffer changes nothing but the size error: validation comes first, and a
            /// failed encode leaves the buffer untouched.
            #[test]
            fn small_buffers(cmd in arb_command(), fw in arb_version(), size in 0usize..24) {
                let opts = EncodeOptions::new(fw);
                let mut big = [0u8; 400];
                let mut small = vec![0xAAu8; size];
                let full = cmd.encode_with(&opts, &mut big);
                let part = cmd.encode_with(&opts, &mut small);
                match (full, part) {
                    (Ok(n), Ok(m)) => {
                        prop_assert_eq!(n, m);
                        prop_assert_eq!(&big[..n], &small[..m]);
                    }
                    (Ok(n), Err(EncodeError::BufferTooSmall { needed, available })) => {
                        prop_assert_eq!((needed, available), (n, size));
                        prop_assert!(n > size);
                        prop_assert!(small.iter().all(|&b| b == 0xAA));
                    }
                    (Err(a), Err(b)) => prop_assert_eq!(a, b),
                    (a, b) => prop_assert!(false, "{:?} vs {:?}", a, b),
                }
            }

            /// The numbers of the motion commands read back as the struct's fields, in the
            /// documented order.
            #[test]
            fn motion_fields_in_order(cmd in arb_command()) {
                let mut buf = [0u8; 400];
                let n = cmd.encoded_len();
                // Format without validation: the field order holds for every value.
                let mut out = Out::new(&mut buf);
                cmd.write(&mut out, false);
                prop_assert_eq!(out.pos, n);
                let text = core::str::from_utf8(&buf[..n - 1]).unwrap();
                let fields: Vec<&str> = text.split(',').collect();
                let nums = |fields: &[&str]| -> Vec<i64> {
                    fields.iter().map(|f| f.parse::<i64>().unwrap()).collect()
                };
                let with_clear = |mut v: Vec<i64>, clear: Option<u8>| {
                    v.extend(clear.map(i64::from));
                    v
                };
                let expected = match &cmd {
                    Command::StepperMove(sm) | Command::MixedMove(sm) => with_clear(
                        vec![sm.duration_ms.into(), sm.steps[0].into(), sm.steps[1].into()],
                        sm.clear,
                    ),
                    Command::LowLevelMove(lm) => with_clear(
                        vec![
                            lm.rate[0].into(), lm.steps[0].into(), lm.accel[0].into(),
                            lm.rate[1].into(), lm.steps[1].into(), lm.accel[1].into(),
                        ],
                        lm.clear,
                    ),
                    Command::JerkMove(l3) => with_clear(
                        vec![
                            l3.rate[0].into(), l3.steps[0].into(), l3.accel[0].into(), l3.jerk[0].into(),
                            l3.rate[1].into(), l3.steps[1].into(), l3.accel[1].into(), l3.jerk[1].into(),
                        ],
                        l3.clear,
                    ),
                    Command::LowLevelTimed(lt) => with_clear(
                        vec![
                            lt.intervals.into(),
                            lt.rate[0].into(), lt.accel[0].into(),
                            lt.rate[1].into(), lt.accel[1].into(),
                        ],
                        lt.clear,
                    ),
                    _ => return Ok(()),
                };
                prop_assert_eq!(nums(&fields[1..]), expected);
            }
        }
    }
}
