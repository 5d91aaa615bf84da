//! Quota periods: the calendar month of the configured timezone. Generic over chrono's
//! `TimeZone`, so the rule has no timezone database of its own (the server passes chrono-tz's).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// One period: `[start, end)` as instants, and its first and last local days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub start: DateTime<Utc>,
    /// Exclusive; also when the quota resets.
    pub end: DateTime<Utc>,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
}

/// The first instant of a local day. Where midnight does not exist (a DST change at
/// midnight), the day starts at the first local time that does.
pub fn start_of_day<Tz: TimeZone>(day: NaiveDate, tz: &Tz) -> DateTime<Utc> {
    let midnight: NaiveDateTime = day.and_hms_opt(0, 0, 0).expect("midnight is valid");
    for minutes in (0..=24 * 60).step_by(15) {
        if let Some(t) = tz
            .from_local_datetime(&(midnight + Duration::minutes(minutes)))
            .earliest()
        {
            return t.with_timezone(&Utc);
        }
    }
    // No zone skips a whole day's first 24 hours; fall back to UTC midnight.
    Utc.from_utc_datetime(&midnight)
}

fn first_of_next_month(day: NaiveDate) -> NaiveDate {
    let (y, m) = if day.month() == 12 {
        (day.year() + 1, 1)
    } else {
        (day.year(), day.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).expect("the first of a month exists")
}

/// The month of `tz` that contains `now`.
pub fn month_period<Tz: TimeZone>(now: DateTime<Utc>, tz: &Tz) -> Period {
    let today = now.with_timezone(tz).date_naive();
    let first_day = today.with_day(1).expect("day 1 exists");
    let next = first_of_next_month(first_day);
    Period {
        start: start_of_day(first_day, tz),
        end: start_of_day(next, tz),
        first_day,
        last_day: next.pred_opt().expect("a day before the first of a month"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn utc_months() {
        let p = month_period(utc("2026-11-28T23:59:59Z"), &Utc);
        assert_eq!(p.start, utc("2026-11-01T00:00:00Z"));
        assert_eq!(p.end, utc("2026-12-01T00:00:00Z"));
        assert_eq!(p.first_day.to_string(), "2026-11-01");
        assert_eq!(p.last_day.to_string(), "2026-11-30");
        let december = month_period(utc("2026-12-31T12:00:00Z"), &Utc);
        assert_eq!(december.end, utc("2027-01-01T00:00:00Z"));
        let february = month_period(utc("2028-02-10T00:00:00Z"), &Utc);
        assert_eq!(february.last_day.to_string(), "2028-02-29");
    }

    #[test]
    fn local_months_across_dst_changes() {
        let berlin = chrono_tz::Europe::Berlin;
        // 2026-03-31 23:30 UTC is already April 1st in Berlin (CEST, UTC+2).
        let p = month_period(utc("2026-03-31T23:30:00Z"), &berlin);
        assert_eq!(p.first_day.to_string(), "2026-04-01");
        assert_eq!(p.start, utc("2026-03-31T22:00:00Z"));
        assert_eq!(p.end, utc("2026-04-30T22:00:00Z"));
        // March holds the switch to summer time: it starts at UTC+1 and ends at UTC+2.
        let march = month_period(utc("2026-03-15T12:00:00Z"), &berlin);
        assert_eq!(march.start, utc("2026-02-28T23:00:00Z"));
        assert_eq!(march.end, utc("2026-03-31T22:00:00Z"));
        // October back to winter time.
        let october = month_period(utc("2026-10-15T12:00:00Z"), &berlin);
        assert_eq!(october.start, utc("2026-09-30T22:00:00Z"));
        assert_eq!(october.end, utc("2026-10-31T23:00:00Z"));
        // New York, behind UTC: 2026-12-01 03:00 UTC is still November 30th there.
        let ny = month_period(utc("2026-12-01T03:00:00Z"), &chrono_tz::America::New_York);
        assert_eq!(ny.first_day.to_string(), "2026-11-01");
        assert_eq!(ny.end, utc("2026-12-01T05:00:00Z"));
    }

    #[test]
    fn a_missing_midnight_starts_the_day_at_the_first_real_time() {
        // Santiago moved its clocks from 00:00 to 01:00 on 2026-09-06.
        let santiago = chrono_tz::America::Santiago;
        let day = NaiveDate::from_ymd_opt(2026, 9, 6).unwrap();
        let start = start_of_day(day, &santiago);
        let local = start.with_timezone(&santiago);
        assert_eq!(local.date_naive(), day);
        assert!(
            local.format("%H:%M").to_string().as_str() <= "01:00",
            "{local}"
        );
    }
}
