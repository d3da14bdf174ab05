//! Values with a unit or several spellings in the config file: sizes (`10MB`), seconds, the
//! firmware choice (`auto`, `2.8`, `3.0`, which YAML reads as numbers), origin lists (one string
//! or a list). Each parses with a message that says what is accepted.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// A size in bytes, written as a number of bytes or with a unit: `10MB`, `512 KiB`, `1G`.
/// `K`, `KB` and `KiB` all mean 1024 (as the original's log settings did).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
pub struct ByteSize(pub u64);

/// Parses a size; see [`ByteSize`].
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = (t[..split].trim(), t[split..].trim());
    let bad = || {
        format!(
            "`{text}` is not a size: write a number of bytes, or a number with B, KB, MB or GB (10MB)"
        )
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    let bytes = value * factor as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > (1u64 << 50) as f64 {
        return Err(format!(
            "`{text}` is out of range: use at least 1 byte and at most 1PB"
        ));
    }
    Ok(bytes.round() as u64)
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 10MB or a number of bytes")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                if v == 0 {
                    return Err(E::custom("a size of 0 bytes is not allowed"));
                }
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("a size cannot be negative ({v})")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ByteSize, E> {
                parse_size(&v.to_string()).map(ByteSize).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_size(v).map(ByteSize).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b >= 1 << 30 && b.is_multiple_of(1 << 30) {
            write!(f, "{}GB", b >> 30)
        } else if b >= 1 << 20 && b.is_multiple_of(1 << 20) {
            write!(f, "{}MB", b >> 20)
        } else if b >= 1 << 10 && b.is_multiple_of(1 << 10) {
            write!(f, "{}KB", b >> 10)
        } else {
            write!(f, "{b} bytes")
        }
    }
}

/// Which firmware behaviour to assume.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize)]
pub enum FirmwareChoice {
    /// Ask the board (`V`) and use what it says.
    #[default]
    Auto,
    /// Behave as with firmware 2.8 (no 3.x commands).
    V2_8,
    /// Behave as with firmware 3.0.
    V3_0,
}

impl<'de> Deserialize<'de> for FirmwareChoice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FirmwareChoice;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("auto, 2.8 or 3.0")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<FirmwareChoice, E> {
                self.visit_str(&format!("{v:.1}"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FirmwareChoice, E> {
                self.visit_str(&format!("{v}.0"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FirmwareChoice, E> {
                self.visit_str(&format!("{v}.0"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FirmwareChoice, E> {
                match v.trim().to_ascii_lowercase().as_str() {
                    "auto" => Ok(FirmwareChoice::Auto),
                    "2.8" | "2" | "2.8.1" => Ok(FirmwareChoice::V2_8),
                    "3.0" | "3" | "3.0.3" => Ok(FirmwareChoice::V3_0),
                    _ => Err(E::custom(format!(
                        "firmware `{v}` is not supported: use auto, 2.8 or 3.0"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Display for FirmwareChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::V2_8 => "2.8",
            Self::V3_0 => "3.0",
        })
    }
}

/// One string or a list of strings (`allowed_origins: "*"` or `[a, b]`).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct StringList(pub Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringList, E> {
                Ok(StringList(vec![v.to_owned()]))
            }
            fn visit_unit<E: de::Error>(self) -> Result<StringList, E> {
                Ok(StringList(Vec::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StringList, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(StringList(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Microstepping as the config spells it: `high` / `low` (or the AxiDraw software's 1 / 2).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ResolutionSetting(pub plotty_motion::kinematics::Resolution);

impl<'de> Deserialize<'de> for ResolutionSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use plotty_motion::kinematics::Resolution;
        struct V;
        impl Visitor<'_> for V {
            type Value = ResolutionSetting;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("high or low")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ResolutionSetting, E> {
                match v {
                    1 => Ok(ResolutionSetting(Resolution::High)),
                    2 => Ok(ResolutionSetting(Resolution::Low)),
                    _ => Err(E::custom(format!(
                        "resolution {v} is not 1 (high, 16× microstepping) or 2 (low, 8×)"
                    ))),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ResolutionSetting, E> {
                self.visit_u64(u64::try_from(v).unwrap_or(0))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ResolutionSetting, E> {
                match v.trim().to_ascii_lowercase().as_str() {
                    "high" | "1" => Ok(ResolutionSetting(Resolution::High)),
                    "low" | "2" => Ok(ResolutionSetting(Resolution::Low)),
                    _ => Err(E::custom(format!(
                        "resolution `{v}` is not high (16× microstepping) or low (8×)"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10MB"), Ok(10 << 20));
        assert_eq!(parse_size("10 mb"), Ok(10 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1.5K"), Ok(1536));
        assert_eq!(parse_size("200"), Ok(200));
        assert_eq!(parse_size("1GB"), Ok(1 << 30));
        for bad in ["", "MB", "10XB", "-5MB", "0", "1e99", "1.2.3MB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(ByteSize(10 << 20).to_string(), "10MB");
        assert_eq!(ByteSize(1000).to_string(), "1000 bytes");
    }

    #[test]
    fn yaml_spellings() {
        #[derive(Deserialize)]
        struct T {
            size: ByteSize,
            fw: FirmwareChoice,
            origins: StringList,
            res: ResolutionSetting,
        }
        let t: T = yaml_serde::from_str("size: 10MB\nfw: 2.8\norigins: \"*\"\nres: low\n").unwrap();
        assert_eq!(t.size, ByteSize(10 << 20));
        assert_eq!(t.fw, FirmwareChoice::V2_8);
        assert_eq!(t.origins, StringList(vec!["*".into()]));
        assert_eq!(t.res.0, plotty_motion::kinematics::Resolution::Low);
        let t: T = yaml_serde::from_str("size: 4096\nfw: 3.0\norigins: [a, b]\nres: 1\n").unwrap();
        assert_eq!((t.size.0, t.fw), (4096, FirmwareChoice::V3_0));
        assert_eq!(t.origins.0.len(), 2);
        let e = yaml_serde::from_str::<T>("size: 1\nfw: 2.7\norigins: []\nres: high\n")
            .err()
            .unwrap();
        assert!(e.to_string().contains("use auto, 2.8 or 3.0"), "{e}");
    }
}
