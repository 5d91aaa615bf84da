//! Times as people read them: the wall clock of the configured timezone and its offset. The
//! server computes the offset with its timezone database, the browser with `Intl`; both end in
//! [`format_wall`], so a page reads the same before and after hydration.
//!
//! Dates and times are written out field by field, not through chrono's `format` strings: its
//! format-string machinery would otherwise be in the browser's main module (every page).

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `2026-11-28 14:05 +01:00` (`UTC` when the offset is zero).
pub fn format_wall(local: NaiveDateTime, offset_seconds: i32) -> String {
    let clock = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        local.year(),
        local.month(),
        local.day(),
        local.hour(),
        local.minute()
    );
    if offset_seconds == 0 {
        return format!("{clock} UTC");
    }
    let sign = if offset_seconds < 0 { '-' } else { '+' };
    let minutes = offset_seconds.unsigned_abs() / 60;
    format!("{clock} {sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

/// `t` on the wall clock of `tz`.
pub fn format_in<Tz: TimeZone>(t: &DateTime<Utc>, tz: &Tz) -> String {
    let local = t.with_timezone(tz);
    format_wall(local.naive_local(), local.offset().fix().local_minus_utc())
}

/// A run of ASCII digits (no sign, no spaces) as a number.
fn digits(text: &str) -> Option<u32> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// A `YYYY-MM-DD` date (as the API writes days), `None` for anything else.
pub fn parse_day(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(
        digits(&text[0..4])? as i32,
        digits(&text[5..7])?,
        digits(&text[8..10])?,
    )
}

/// The API's timestamps as `#[serde(with = "crate::domain::time::wire")]`: written by chrono
/// (RFC 3339 in UTC, `2026-11-28T14:05:00.123456Z`), read by [`wire::parse`]. chrono's own
/// reader is a general format-string parser, and it would sit in the browser's main module,
/// which every page loads.
pub mod wire {
    use super::{digits, parse_day};
    use chrono::{DateTime, TimeDelta, Utc};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        t.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 timestamp"))
    }

    /// The same for an optional timestamp (`null` for none).
    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            t.serialize(serializer)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            Option::<String>::deserialize(deserializer)?
                .map(|text| {
                    super::parse(&text).ok_or_else(|| {
                        serde::de::Error::custom("expected an RFC 3339 timestamp or null")
                    })
                })
                .transpose()
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS`, an optional fraction of 1 to 9 digits, then `Z` or `±HH:MM`.
    pub fn parse(text: &str) -> Option<DateTime<Utc>> {
        let bytes = text.as_bytes();
        if bytes.len() < 20
            || !matches!(bytes[10], b'T' | b't')
            || bytes[13] != b':'
            || bytes[16] != b':'
        {
            return None;
        }
        let day = parse_day(text.get(..10)?)?;
        let two = |at: usize| text.get(at..at + 2).and_then(digits);
        let (hour, minute, second) = (two(11)?, two(14)?, two(17)?);
        let mut rest = text.get(19..)?;
        let mut nanos = 0;
        if let Some(fraction) = rest.strip_prefix('.') {
            let n = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 || n > 9 {
                return None;
            }
            nanos = digits(&fraction[..n])? * 10u32.pow(9 - n as u32);
            rest = &fraction[n..];
        }
        let offset_minutes = match rest.as_bytes() {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
                let minutes = i64::from(digits(&rest[1..3])? * 60 + digits(&rest[4..6])?);
                if *sign == b'-' {
                    -minutes
                } else {
                    minutes
                }
            }
            _ => return None,
        };
        let local = day.and_hms_nano_opt(hour, minute, second, nanos)?;
        Some((local - TimeDelta::minutes(offset_minutes)).and_utc())
    }
}

/// `1 Dec 2026`.
pub fn day_label(day: NaiveDate) -> String {
    format!(
        "{} {} {}",
        day.day(),
        MONTHS[day.month0() as usize],
        day.year()
    )
}

/// `19 Dec`: a day of this period or the next, where the year goes without saying.
pub fn short_day(day: NaiveDate) -> String {
    format!("{} {}", day.day(), MONTHS[day.month0() as usize])
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    #[test]
    fn timestamps_read_as_chrono_writes_them() {
        for t in [
            "2026-11-28T14:05:00Z",
            "2026-11-28T14:05:00.123456Z",
            "2026-11-28T14:05:00.1Z",
            "2026-11-28T14:05:00.123456789Z",
            "1999-12-31T23:59:59.999Z",
        ] {
            let want = DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
            assert_eq!(wire::parse(t), Some(want), "{t}");
            // What the server writes, read back.
            let written = serde_json::to_string(&want).unwrap();
            assert_eq!(
                wire::parse(written.trim_matches('"')),
                Some(want),
                "{written}"
            );
        }
        assert_eq!(
            wire::parse("2026-11-28T19:35:00+05:30"),
            wire::parse("2026-11-28T14:05:00Z")
        );
        assert_eq!(
            wire::parse("2026-11-28T03:05:00-11:00"),
            wire::parse("2026-11-28T14:05:00Z")
        );
        for bad in [
            "",
            "2026-11-28",
            "2026-11-28T14:05:00",
            "2026-11-28 14:05:00Z",
            "2026-11-28T24:05:00Z",
            "2026-11-28T14:05:00.Z",
            "2026-11-28T14:05:00.1234567890Z",
            "2026-11-28T14:05:00+0530",
            "2026-11-28T14:05:00Zjunk",
            "2026-02-30T14:05:00Z",
        ] {
            assert_eq!(wire::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn days_read_and_written_by_hand() {
        assert_eq!(
            parse_day("2026-02-28"),
            NaiveDate::from_ymd_opt(2026, 2, 28)
        );
        for bad in [
            "2026-02-30",
            "2026-2-28",
            "2026/02/28",
            "+026-02-28",
            "2026-02-2x",
            "",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(day_label(day(2026, 12, 1)), "1 Dec 2026");
        assert_eq!(day_label(day(2027, 1, 31)), "31 Jan 2027");
        // The same as chrono's format strings would write.
        for d in [day(2026, 12, 1), day(2027, 1, 31), day(2028, 2, 29)] {
            assert_eq!(day_label(d), d.format("%-d %b %Y").to_string());
            let t = d.and_hms_opt(7, 5, 0).unwrap();
            assert!(format_wall(t, 0).starts_with(&t.format("%Y-%m-%d %H:%M").to_string()));
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn wall_clock_and_offset() {
        let t = utc("2026-11-28T10:20:59Z");
        assert_eq!(format_in(&t, &Utc), "2026-11-28 10:20 UTC");
        assert_eq!(
            format_in(&t, &FixedOffset::east_opt(5 * 3600 + 1800).unwrap()),
            "2026-11-28 15:50 +05:30"
        );
        assert_eq!(
            format_in(&t, &FixedOffset::west_opt(11 * 3600).unwrap()),
            "2026-11-27 23:20 -11:00"
        );
        // Summer and winter of one zone.
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(format_in(&t, &berlin), "2026-11-28 11:20 +01:00");
        assert_eq!(
            format_in(&utc("2026-07-01T10:20:00Z"), &berlin),
            "2026-07-01 12:20 +02:00"
        );
    }
}
