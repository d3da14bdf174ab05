//! [`FirmwareVersion`]: the EBB firmware version from the `V` reply, and the capabilities that
//! hang on it (reference §1.4, §7b and the firmware release notes).
//!
//! Two firmware lines are in the field: 3.x (3.0.3 is what the reference was written from) and
//! 2.x (2.8.1 is the last). They differ in their command set, their validation and their reply
//! syntax; everything version-dependent in this crate asks one of the helpers here.

use core::fmt;
use core::str::FromStr;

/// A firmware version `major.minor.patch`, ordered numerically.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FirmwareVersion {
    /// Major version: 2 or 3 on boards in the field.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Patch version (0 when the reply gives only `major.minor`).
    pub patch: u8,
}

/// Why a version could not be read from a `V` reply.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum VersionError {
    /// The reply does not start with `EBB` (reference §6.13): this is not an EiBotBoard.
    NotAnEbb,
    /// The reply has no `Firmware Version X.Y[.Z]` part with numbers in 0..=255.
    NoVersionNumber,
}

impl FirmwareVersion {
    /// 3.0.3, the firmware the reference was written from; the default target of
    /// [`Command::encode`](super::Command::encode).
    pub const LATEST: Self = Self::new(3, 0, 3);
    /// 2.8.1, the last release of the 2.x line.
    pub const LAST_V2: Self = Self::new(2, 8, 1);

    /// The text in front of the version number in every `V` reply (reference §6.13).
    pub const MARKER: &'static str = "Firmware Version ";

    /// `major.minor.patch`.
    pub const fn new(major: u8, minor: u8, patch: u8) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Reads the version from a `V` reply line (without its line ending), the way AxiDraw's
    /// software does (reference §6.13, §7b): the line must start with `EBB` and contain
    /// `Firmware Version ` followed by `X.Y` or `X.Y.Z`; anything after the number is ignored.
    pub fn from_reply(line: &[u8]) -> Result<Self, VersionError> {
        if !line.starts_with(b"EBB") {
            return Err(VersionError::NotAnEbb);
        }
        let marker = Self::MARKER.as_bytes();
        let start = line
            .windows(marker.len())
            .position(|w| w == marker)
            .ok_or(VersionError::NoVersionNumber)?;
        let rest = line.get(start + marker.len()..).unwrap_or(&[]);
        Self::parse_number(rest)
            .map(|(v, _)| v)
            .ok_or(VersionError::NoVersionNumber)
    }

    /// Parses `X.Y` or `X.Y.Z` at the start of `text`; returns the version and the number of
    /// bytes it took (trailing text is left to the caller).
    fn parse_number(text: &[u8]) -> Option<(Self, usize)> {
        let mut parts = [0u8; 3];
        let mut count = 0;
        let mut used = 0;
        let mut rest = text;
        while count < 3 {
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 || digits > 3 {
                break;
            }
            let mut value: u16 = 0;
            for &b in rest.get(..digits)? {
                value = value * 10 + u16::from(b - b'0');
            }
            parts[count] = u8::try_from(value).ok()?;
            count += 1;
            rest = rest.get(digits..)?;
            used = text.len() - rest.len();
            match rest.split_first() {
                Some((b'.', tail)) if count < 3 => rest = tail,
                _ => break,
            }
        }
        (count >= 2).then(|| (Self::new(parts[0], parts[1], parts[2]), used))
    }

    /// True on the 3.x line.
    pub const fn is_v3(self) -> bool {
        self.major >= 3
    }

    const fn at_least(self, major: u8, minor: u8, patch: u8) -> bool {
        if self.major != major {
            return self.major > major;
        }
        if self.minor != minor {
            return self.minor > minor;
        }
        self.patch >= patch
    }

    /// `LM` and `LT` (≥ 2.7.0; 2.5.x had a partial LM we do not drive).
    pub const fn has_lm(self) -> bool {
        self.at_least(2, 7, 0)
    }

    /// `L3` and `T3` jerk moves (≥ 3.0.0).
    pub const fn has_l3(self) -> bool {
        self.at_least(3, 0, 0)
    }

    /// `TD` double-T3 moves (≥ 3.0.1).
    pub const fn has_td(self) -> bool {
        self.at_least(3, 0, 1)
    }

    /// `QG` general status query (≥ 2.6.2; the AxiDraw idle wait relies on it, reference §5.4).
    pub const fn has_qg(self) -> bool {
        self.at_least(2, 6, 2)
    }

    /// `SR`/`QR` servo power timeout and state (≥ 2.6.0, reference §7b).
    pub const fn has_sr(self) -> bool {
        self.at_least(2, 6, 0)
    }

    /// `HM` home move (≥ 2.6.2).
    pub const fn has_hm(self) -> bool {
        self.at_least(2, 6, 2)
    }

    /// `HM` with target positions (≥ 2.7.0).
    pub const fn has_hm_position(self) -> bool {
        self.at_least(2, 7, 0)
    }

    /// `QE` motor enable query (≥ 2.8.0).
    pub const fn has_qe(self) -> bool {
        self.at_least(2, 8, 0)
    }

    /// `EM` goes through the motion FIFO (≥ 2.8.0; immediate before, reference §1.4).
    pub const fn em_is_queued(self) -> bool {
        self.at_least(2, 8, 0)
    }

    /// `QS`/`CS` global step counters (≥ 2.4.3).
    pub const fn has_qs(self) -> bool {
        self.at_least(2, 4, 3)
    }

    /// `QM` motor query (≥ 2.2.6).
    pub const fn has_qm(self) -> bool {
        self.at_least(2, 2, 6)
    }

    /// `ES` emergency stop (≥ 2.2.7).
    pub const fn has_es(self) -> bool {
        self.at_least(2, 2, 7)
    }

    /// `XM` mixed-axis move (≥ 2.3.0).
    pub const fn has_xm(self) -> bool {
        self.at_least(2, 3, 0)
    }

    /// `S2` general servo command (≥ 2.2.0).
    pub const fn has_s2(self) -> bool {
        self.at_least(2, 2, 0)
    }

    /// `QC` gives usable readings (≥ 2.2.3; AxiDraw gates its voltage check on it, §7b).
    pub const fn has_qc(self) -> bool {
        self.at_least(2, 2, 3)
    }

    /// `ST`/`QT` nickname (≥ 2.5.4).
    pub const fn has_nickname(self) -> bool {
        self.at_least(2, 5, 4)
    }

    /// `SE` with the queue flag (≥ 2.4.1).
    pub const fn has_se_queue(self) -> bool {
        self.at_least(2, 4, 1)
    }

    /// `SP,2`/`SP,3` immediate pen raise (≥ 3.0.1, reference §3).
    pub const fn has_sp_immediate(self) -> bool {
        self.at_least(3, 0, 1)
    }

    /// The v3-only commands and options: `QU`, `CU,4`, `CU,10`, checksums (`CU,54`), `ES,1`,
    /// indexed `SL`/`QL`.
    pub const fn has_future_syntax(self) -> bool {
        self.is_v3()
    }

    /// Deepest motion FIFO the firmware can be configured to: 32 on 3.x (`CU,4,n`), 1 on 2.x
    /// (reference §1.5).
    pub const fn fifo_depth_max(self) -> u8 {
        if self.is_v3() {
            super::limits::FIFO_DEPTH_MAX_V3
        } else {
            super::limits::FIFO_DEPTH_V2
        }
    }

    /// Shortest `SM`/`XM` move that still runs gap-free at 25 kHz on both axes (reference §6.4).
    pub const fn min_sm_duration_ms(self) -> u32 {
        use super::limits as l;
        if self.is_v3() {
            l::MIN_SM_MS_V3
        } else if self.has_lm() {
            l::MIN_SM_MS_V2_7
        } else {
            l::MIN_MOVE_MS_BEFORE_V2_7
        }
    }

    /// Shortest `LM`/`LT` (and, on 3.x, `L3`/`T3`) move that still runs gap-free at 25 kHz on
    /// both axes (reference §6.4).
    pub const fn min_lm_duration_ms(self) -> u32 {
        use super::limits as l;
        if self.is_v3() {
            l::MIN_LM_MS_V3
        } else {
            l::MIN_LM_MS_V2_7
        }
    }
}

impl fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for FirmwareVersion {
    type Err = VersionError;

    /// Parses a bare `X.Y` or `X.Y.Z` (no trailing text).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match Self::parse_number(s.as_bytes()) {
            Some((v, used)) if used == s.len() => Ok(v),
            _ => Err(VersionError::NoVersionNumber),
        }
    }
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnEbb => f.write_str(
                "the version reply does not start with \"EBB\": the device is not an EiBotBoard",
            ),
            Self::NoVersionNumber => f.write_str(
                "the version reply has no \"Firmware Version X.Y.Z\" part: cannot tell which \
                 firmware this is",
            ),
        }
    }
}

impl core::error::Error for VersionError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_version_lines() {
        let v3 = FirmwareVersion::from_reply(b"EBBv13_and_above EB Firmware Version 3.0.3");
        assert_eq!(v3, Ok(FirmwareVersion::new(3, 0, 3)));
        let v2 = FirmwareVersion::from_reply(b"EBBv13_and_above EB Firmware Version 2.8.1");
        assert_eq!(v2, Ok(FirmwareVersion::LAST_V2));
        let two_part = FirmwareVersion::from_reply(b"EBBv13 EB Firmware Version 2.5");
        assert_eq!(two_part, Ok(FirmwareVersion::new(2, 5, 0)));
        let trailing = FirmwareVersion::from_reply(b"EBB Firmware Version 3.0.3 beta");
        assert_eq!(trailing, Ok(FirmwareVersion::LATEST));
    }

    #[test]
    fn rejects_non_ebb_and_missing_numbers() {
        assert_eq!(
            FirmwareVersion::from_reply(b"UBW Firmware Version 1.4.7"),
            Err(VersionError::NotAnEbb)
        );
        assert_eq!(
            FirmwareVersion::from_reply(b"EBB something"),
            Err(VersionError::NoVersionNumber)
        );
        assert_eq!(
            FirmwareVersion::from_reply(b"EBB Firmware Version 3"),
            Err(VersionError::NoVersionNumber)
        );
        assert_eq!(
            FirmwareVersion::from_reply(b"EBB Firmware Version 300.0.1"),
            Err(VersionError::NoVersionNumber)
        );
    }

    #[test]
    fn from_str_is_strict() {
        assert_eq!("3.0.1".parse(), Ok(FirmwareVersion::new(3, 0, 1)));
        assert_eq!("2.6".parse(), Ok(FirmwareVersion::new(2, 6, 0)));
        assert!("2.6x".parse::<FirmwareVersion>().is_err());
        assert!("2.6.1.5".parse::<FirmwareVersion>().is_err());
        assert!("2.6.".parse::<FirmwareVersion>().is_err());
        assert!("".parse::<FirmwareVersion>().is_err());
    }

    #[test]
    fn capability_thresholds() {
        let v = FirmwareVersion::new;
        assert!(!v(2, 6, 9).has_lm() && v(2, 7, 0).has_lm());
        assert!(!v(2, 8, 1).has_l3() && v(3, 0, 0).has_l3());
        assert!(!v(3, 0, 0).has_td() && v(3, 0, 1).has_td());
        assert!(!v(2, 6, 1).has_qg() && v(2, 6, 2).has_qg());
        assert!(!v(2, 5, 9).has_sr() && v(2, 6, 0).has_sr());
        assert!(!v(2, 9, 9).has_future_syntax() && v(3, 0, 0).has_future_syntax());
        assert_eq!(v(2, 8, 1).fifo_depth_max(), 1);
        assert_eq!(v(3, 0, 3).fifo_depth_max(), 32);
        assert!(v(3, 0, 0) > v(2, 99, 99));
        assert_eq!(v(3, 0, 3).min_sm_duration_ms(), 2);
        assert_eq!(v(2, 8, 1).min_lm_duration_ms(), 5);
    }
}
