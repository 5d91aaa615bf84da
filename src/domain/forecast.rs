//! The burn-rate forecast: at the pace a user is going, how much they will have used when the
//! period resets, and on which local day each threshold (warning, upgrade, limit) will be
//! reached, if before the reset.
//!
//! The pace is the higher of two rates:
//! - the period's: what was used since the period began over the time since then (at least a
//!   day, so the first hours of a month do not project a whole month from a few sends);
//! - the last 7 days': what was used on the last 7 local days (today's included, so possibly
//!   days of the previous period) over the time since the first of them began.
//!
//! The higher one wins because a forecast is a warning: a burst this week shows at once, and a
//! quiet week does not hide a month that was heavy until then. Times are instants (a DST month
//! has a 23- or 25-hour day); only the dates are local. Everything is integer arithmetic.

use super::period::{start_of_day, Period};
use super::quota::Thresholds;
use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};

const DAY_SECONDS: i64 = 24 * 60 * 60;

/// `a / b` rounded up, for `a >= 0` and `b > 0`.
fn ceil_div(a: i128, b: i128) -> i128 {
    (a + b - 1) / b
}

/// What the forecast reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Used in the period so far.
    pub period: i64,
    /// Used on the last 7 local days, today included.
    pub last_7_days: i64,
}

/// A rate: `amount` per `seconds` (seconds > 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    pub amount: i64,
    pub seconds: i64,
}

impl Pace {
    /// Per day, rounded down (for showing).
    pub fn per_day(&self) -> i64 {
        (i128::from(self.amount) * i128::from(DAY_SECONDS) / i128::from(self.seconds)) as i64
    }

    /// What it adds in `seconds`, rounded down.
    pub fn over(&self, seconds: i64) -> i64 {
        let added = i128::from(self.amount) * i128::from(seconds.max(0)) / i128::from(self.seconds);
        added.min(i128::from(i64::MAX)) as i64
    }

    /// Seconds it takes to add `amount` (rounded up); `None` at a pace of zero.
    pub fn seconds_to(&self, amount: i64) -> Option<i64> {
        if self.amount <= 0 {
            return None;
        }
        let seconds = ceil_div(
            i128::from(amount.max(0)) * i128::from(self.seconds),
            i128::from(self.amount),
        );
        i64::try_from(seconds).ok()
    }

    fn faster_than(&self, other: &Pace) -> bool {
        i128::from(self.amount) * i128::from(other.seconds)
            > i128::from(other.amount) * i128::from(self.seconds)
    }
}

/// The pace the forecast goes by (see the module's rule).
pub fn pace<Tz: TimeZone>(now: DateTime<Utc>, period: &Period, tz: &Tz, used: Usage) -> Pace {
    let since_start = (now - period.start).num_seconds().max(DAY_SECONDS);
    let month = Pace {
        amount: used.period.max(0),
        seconds: since_start,
    };
    let today = now.with_timezone(tz).date_naive();
    let first = today.checked_sub_days(Days::new(6)).unwrap_or(today);
    let week = Pace {
        amount: used.last_7_days.max(0),
        seconds: (now - start_of_day(first, tz))
            .num_seconds()
            .max(DAY_SECONDS),
    };
    if week.faster_than(&month) {
        week
    } else {
        month
    }
}

/// The projection to the end of the period.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Forecast {
    pub pace: Pace,
    /// What the period will have used at the reset at this pace.
    pub projected: i64,
    /// Projected / limit × 100, rounded down to two decimals; `None` when unlimited.
    pub projected_percentage: Option<f64>,
    /// The local day each threshold will be reached on; `None` when it is reached already
    /// (the quota's flags say so), when the pace does not reach it before the reset, or when
    /// there is no limit.
    pub warning_on: Option<NaiveDate>,
    pub upgrade_on: Option<NaiveDate>,
    pub limit_on: Option<NaiveDate>,
}

/// Tokens (or any amount) at which `percent` % of `limit` is reached (rounded up, as the
/// quota's exact comparison `used × 100 ≥ limit × percent` has it).
fn threshold_amount(limit: i64, percent: u32) -> i64 {
    let amount = ceil_div(i128::from(limit.max(0)) * i128::from(percent), 100);
    amount.min(i128::from(i64::MAX)) as i64
}

/// The forecast of a period `used` so far, against `limit` (`None`: unlimited).
pub fn forecast<Tz: TimeZone>(
    now: DateTime<Utc>,
    period: &Period,
    tz: &Tz,
    used: Usage,
    limit: Option<i64>,
    thresholds: Thresholds,
) -> Forecast {
    let pace = pace(now, period, tz, used);
    let so_far = used.period.max(0);
    let left = (period.end - now).num_seconds().max(0);
    let projected = so_far.saturating_add(pace.over(left));
    let reached_on = |percent: u32| -> Option<NaiveDate> {
        let target = threshold_amount(limit?, percent);
        if so_far >= target {
            return None;
        }
        let seconds = pace.seconds_to(target - so_far)?;
        (seconds < left).then(|| {
            (now + chrono::Duration::seconds(seconds))
                .with_timezone(tz)
                .date_naive()
        })
    };
    let projected_percentage = limit.map(|limit| {
        if limit <= 0 {
            return 100.0;
        }
        let basis_points = i128::from(projected) * 10_000 / i128::from(limit);
        basis_points.min(i128::from(i64::MAX)) as f64 / 100.0
    });
    Forecast {
        pace,
        projected,
        projected_percentage,
        warning_on: reached_on(thresholds.warning),
        upgrade_on: reached_on(thresholds.upgrade),
        limit_on: reached_on(thresholds.block),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::period::month_period;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn day(s: &str) -> Option<NaiveDate> {
        Some(s.parse().unwrap())
    }

    /// The forecast at `now` (UTC months) of `period` tokens used this month and `week` on
    /// the last 7 days, against `limit`.
    fn at(now: &str, period: i64, week: i64, limit: Option<i64>) -> Forecast {
        let now = utc(now);
        let used = Usage {
            period,
            last_7_days: week,
        };
        forecast(
            now,
            &month_period(now, &Utc),
            &Utc,
            used,
            limit,
            Thresholds::default(),
        )
    }

    #[test]
    fn no_usage_projects_nothing() {
        let f = at("2026-11-11T00:00:00Z", 0, 0, Some(25_000));
        assert_eq!(f.projected, 0);
        assert_eq!(f.projected_percentage, Some(0.0));
        assert_eq!((f.warning_on, f.upgrade_on, f.limit_on), (None, None, None));
        assert_eq!(f.pace.per_day(), 0);
    }

    #[test]
    fn a_steady_pace_reaches_each_threshold_on_its_day() {
        // 1,000 a day for the 10 days of November so far (6,000 of it on the 6 days of the
        // last 7 that have passed); 20 days to go.
        let f = at("2026-11-11T00:00:00Z", 10_000, 6_000, Some(25_000));
        assert_eq!(f.pace.per_day(), 1_000);
        assert_eq!(f.projected, 30_000);
        assert_eq!(f.projected_percentage, Some(120.0));
        // 20,000 after 10 more days, 23,750 after 13.75, 25,000 after 15.
        assert_eq!(f.warning_on, day("2026-11-21"));
        assert_eq!(f.upgrade_on, day("2026-11-24"));
        assert_eq!(f.limit_on, day("2026-11-26"));
        // The same pace against a limit it reaches exactly at the reset: not this period.
        let f = at("2026-11-11T00:00:00Z", 10_000, 6_000, Some(30_000));
        assert_eq!(f.projected_percentage, Some(100.0));
        assert_eq!(f.limit_on, None);
        assert_eq!(f.upgrade_on, day("2026-11-29"));
    }

    #[test]
    fn a_burst_yesterday_makes_the_last_week_win() {
        // 10,000 this month, 9,000 of it since November 5th (the last 7 days began then,
        // 6 days ago), 4,500 of that yesterday.
        let f = at("2026-11-11T00:00:00Z", 10_000, 9_000, Some(25_000));
        assert_eq!(f.pace.per_day(), 1_500);
        assert_eq!(f.projected, 10_000 + 1_500 * 20);
        // 10,000 more take 6.67 days.
        assert_eq!(f.warning_on, day("2026-11-17"));
        // A quiet week after a heavy start: the month's pace still counts.
        let f = at("2026-11-11T00:00:00Z", 10_000, 600, Some(25_000));
        assert_eq!(f.pace.per_day(), 1_000);
    }

    #[test]
    fn the_first_hours_of_a_month_count_as_a_day() {
        // 500 by 06:00 on the first, a new user (nothing before).
        let f = at("2026-11-01T06:00:00Z", 500, 500, Some(100_000));
        assert_eq!(
            f.pace,
            Pace {
                amount: 500,
                seconds: DAY_SECONDS
            }
        );
        // 29.75 days to go at 500 a day.
        assert_eq!(f.projected, 500 + 14_875);
        assert_eq!(f.limit_on, None);
        // A heavy last week of October carries into November's first day.
        let f = at("2026-11-01T06:00:00Z", 500, 70_000, Some(100_000));
        assert!(f.pace.per_day() > 11_000, "{:?}", f.pace);
        assert_eq!(f.warning_on, day("2026-11-08"));
    }

    #[test]
    fn the_last_day_projects_only_what_is_left_of_it() {
        // Noon on the 30th: 29,000 used, 6,500 of it in the last 6.5 days.
        let f = at("2026-11-30T12:00:00Z", 29_000, 6_500, Some(30_000));
        assert_eq!(f.pace.per_day(), 1_000);
        assert_eq!(f.projected, 29_500);
        assert_eq!(f.projected_percentage, Some(98.33));
        // The warning and upgrade are behind, the limit is not reached before midnight.
        assert_eq!((f.warning_on, f.upgrade_on, f.limit_on), (None, None, None));
    }

    #[test]
    fn unlimited_projects_tokens_without_dates() {
        let f = at("2026-11-11T00:00:00Z", 10_000, 6_000, None);
        assert_eq!(f.projected, 30_000);
        assert_eq!(f.projected_percentage, None);
        assert_eq!((f.warning_on, f.upgrade_on, f.limit_on), (None, None, None));
    }

    #[test]
    fn already_blocked_has_nothing_ahead() {
        let f = at("2026-11-11T00:00:00Z", 26_000, 6_000, Some(25_000));
        assert_eq!((f.warning_on, f.upgrade_on, f.limit_on), (None, None, None));
        assert_eq!(f.projected, 78_000);
        assert_eq!(f.projected_percentage, Some(312.0));
        // A zero limit is blocked from the start.
        let f = at("2026-11-11T00:00:00Z", 0, 0, Some(0));
        assert_eq!(f.projected_percentage, Some(100.0));
        assert_eq!(f.limit_on, None);
    }

    #[test]
    fn a_dst_month_counts_real_hours_and_local_days() {
        // Berlin's March 2026 runs from Feb 28 23:00 UTC to Mar 31 22:00 UTC (clocks go
        // forward on the 29th). At 12:00 UTC on the 15th, 1,256,400 s have passed: one token
        // a second.
        let berlin = chrono_tz::Europe::Berlin;
        let now = utc("2026-03-15T12:00:00Z");
        let period = month_period(now, &berlin);
        let used = Usage {
            period: 1_256_400,
            last_7_days: 0,
        };
        // 80 % of 3,129,750 is 2,503,800: 1,247,400 s later, 2026-03-29 22:30 UTC, which is
        // already the 30th in Berlin (00:30 CEST).
        let f = forecast(
            now,
            &period,
            &berlin,
            used,
            Some(3_129_750),
            Thresholds::default(),
        );
        assert_eq!(
            f.pace,
            Pace {
                amount: 1_256_400,
                seconds: 1_256_400
            }
        );
        assert_eq!(f.warning_on, day("2026-03-30"));
        // To the reset: 16 days 10 hours (the 29th has 23 hours).
        assert_eq!(f.projected, 1_256_400 + (16 * 24 + 10) * 3600);
        // The last 7 days' window counts the 23-hour 29th as 23 hours.
        let now = utc("2026-03-31T12:00:00Z");
        let week = pace(
            now,
            &month_period(now, &berlin),
            &berlin,
            Usage {
                period: 0,
                last_7_days: 1_000,
            },
        );
        // From Mar 25 00:00 CET (Mar 24 23:00 UTC) to now: 6 days 13 hours.
        assert_eq!(week.seconds, (6 * 24 + 13) * 3600);
    }
}
