//! The exact timestamp forms ACS puts on the wire (docs/protocol.md §2).

use chrono::{DateTime, Timelike, Utc};

/// Formats `expiresOn`: seven fractional digits and an explicit `+00:00`, never `Z`
/// (`2025-12-31T08:02:49.0000000+00:00`).
pub fn expires_on(t: DateTime<Utc>) -> String {
    format!(
        "{}.{:07}+00:00",
        t.format("%Y-%m-%dT%H:%M:%S"),
        t.nanosecond() % 1_000_000_000 / 100
    )
}

/// Formats `lastTokenIssuedAt`: whole seconds and `+00:00` (`2025-04-14T15:32:35+00:00`).
pub fn last_token_issued_at(t: DateTime<Utc>) -> String {
    format!("{}+00:00", t.format("%Y-%m-%dT%H:%M:%S"))
}

/// Parses any RFC 3339 timestamp the service sends (any fraction, `Z` or offset).
pub fn parse(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_on_has_seven_digits_and_offset() {
        let t = DateTime::from_timestamp(1_767_168_169, 0).unwrap();
        assert_eq!(expires_on(t), "2025-12-31T08:02:49.0000000+00:00");
        let t = DateTime::from_timestamp(1_767_168_169, 681_292_299).unwrap();
        assert_eq!(expires_on(t), "2025-12-31T08:02:49.6812922+00:00");
    }

    #[test]
    fn last_token_issued_at_has_no_fraction() {
        let t = DateTime::from_timestamp(1_744_644_755, 500_000_000).unwrap();
        assert_eq!(last_token_issued_at(t), "2025-04-14T15:32:35+00:00");
    }

    #[test]
    fn parse_reads_both_forms() {
        let t = parse("2025-12-31T08:02:49.0000000+00:00").unwrap();
        assert_eq!(t.timestamp(), 1_767_168_169);
        assert_eq!(parse("2025-12-31T08:02:49Z").unwrap(), t);
        assert!(parse("yesterday").is_none());
    }
}
