//! RFC 3339 timestamps in UTC with a `Z` suffix and millisecond precision, as every journal line,
//! database row and API message carries them (`2026-11-26T06:31:50.530Z`).
//!
//! Formatting a `SystemTime` is all the daemon needs, so this is done here with the civil-from-days
//! algorithm instead of pulling in a date-time crate. Fixed width, so the strings sort in time order.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The current time as an RFC 3339 UTC string.
pub fn now() -> String {
    format(SystemTime::now())
}

/// Now, milliseconds since the Unix epoch (0 before it): the clock of job leases, shared by
/// the daemons of a farm through their hosts' clocks.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `t` as an RFC 3339 UTC string with milliseconds; times before 1970 are clamped to the epoch.
pub fn format(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let millis = since.subsec_millis();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Reads an RFC 3339 time (`2026-11-26T06:31:50.530Z`, any fraction, `Z` or `±hh:mm`); `None` for
/// anything else or a time before 1970.
pub fn parse(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let part = text.get(r)?;
        if part.is_empty() || !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 || year < 1970 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = text.get(start..i)?;
        if digits.is_empty() {
            return None;
        }
        for (k, d) in digits.bytes().take(9).enumerate() {
            nanos += u64::from(d - b'0') * 10u64.pow(8 - k as u32);
        }
    }
    let offset_s: i64 = match text.get(i..)? {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) && &tz[3..4] == ":" => {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            let v = i64::try_from(h * 3600 + m * 60).ok()?;
            if tz.starts_with('-') { -v } else { v }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let local = i64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second).ok()?;
    let secs = u64::try_from(local - offset_s).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

/// Days since 1970-01-01 of a Gregorian date (the inverse of [`civil_from_days`]).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Gregorian (year, month, day) of `days` since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so that leap days fall at the end of a 400-year era.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, millis: u64) -> String {
        format(UNIX_EPOCH + Duration::from_millis(secs * 1000 + millis))
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_795_674_710, 530), "2026-11-26T06:31:50.530Z");
        assert_eq!(at(4_102_444_799, 999), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn strings_sort_in_time_order() {
        let a = at(1_000_000_000, 1);
        let b = at(1_000_000_000, 2);
        let c = at(1_000_000_001, 0);
        assert!(a < b && b < c);
        assert_eq!(now().len(), a.len());
    }

    #[test]
    fn parses_what_it_formats_and_offsets() {
        for secs in [0, 951_782_400, 1_795_674_710, 4_102_444_799] {
            let t = UNIX_EPOCH + Duration::from_millis(secs * 1000 + 123);
            assert_eq!(parse(&format(t)), Some(t));
        }
        let utc = parse("2026-11-26T06:31:50Z").unwrap();
        assert_eq!(parse("2026-11-26T07:31:50+01:00"), Some(utc));
        assert_eq!(parse("2026-11-26T05:31:50-01:00"), Some(utc));
        assert_eq!(
            parse("2026-11-26T06:31:50.000001Z").unwrap() - Duration::from_micros(1),
            utc
        );
        for bad in [
            "",
            "2026-11-26",
            "2026-13-26T06:31:50Z",
            "2026-11-26T06:31:50",
            "2026-11-26T06:31:50.Z",
            "1969-12-31T23:59:59Z",
            "2026-11-26T06:31:50+0100",
            "２０２６-11-26T06:31:50Z",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn before_epoch_clamps() {
        let t = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(format(t), "1970-01-01T00:00:00.000Z");
    }
}
