//! The one text form of a point in time: ISO-8601 in UTC with microseconds and `Z`
//! (`2026-12-05T06:00:54.123456Z`), as actions and events store it, the ledger hashes it and
//! the live stream sends it. Text in this form sorts as the times do.

use chrono::{DateTime, SecondsFormat, Utc};

/// `at` in the stored form.
pub fn format(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A stored time read back; `None` for text that is not an RFC 3339 time.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn times_are_written_with_microseconds_and_z_and_read_back() {
        let at = Utc
            .with_ymd_and_hms(2026, 12, 5, 6, 0, 54)
            .single()
            .and_then(|t| t.checked_add_signed(chrono::Duration::microseconds(7)));
        let at = at.expect("a valid time");
        assert_eq!(format(at), "2026-12-05T06:00:54.000007Z");
        assert_eq!(parse(&format(at)), Some(at));
        assert_eq!(parse("yesterday"), None);
    }
}
