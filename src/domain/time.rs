//! Times as people read them: the wall clock of the configured timezone and its offset. The
//! server computes the offset with its timezone database, the browser with `Intl`; both end in
//! [`format_wall`], so a page reads the same before and after hydration.

use chrono::{DateTime, NaiveDateTime, Offset, TimeZone, Utc};

/// `2026-11-28 14:05 +01:00` (`UTC` when the offset is zero).
pub fn format_wall(local: NaiveDateTime, offset_seconds: i32) -> String {
    let clock = local.format("%Y-%m-%d %H:%M");
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

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
