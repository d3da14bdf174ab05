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
    fn before_epoch_clamps() {
        let t = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(format(t), "1970-01-01T00:00:00.000Z");
    }
}
