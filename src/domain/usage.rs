//! Usage history rules: which days a sync asks LiteLLM for, how its per-request logs add up to
//! local days, the `days` a history may span, and a history's zero-filled days and totals.

use super::chat::{ModelUsage, ModelUsageMap};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use std::collections::BTreeMap;
use std::ops::RangeInclusive;

/// How many days a history may span.
pub const HISTORY_DAYS: RangeInclusive<i64> = 1..=365;

/// A day's usage from one side (the app or LiteLLM).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayUsage {
    pub tokens: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub requests: i64,
    pub cost_nanos: i64,
    pub models: ModelUsageMap,
}

impl DayUsage {
    /// Adds one request (or one model's figures for a day) to the day and to its model.
    pub fn add(&mut self, model: &str, part: &ModelUsage) {
        self.tokens += part.tokens;
        self.prompt_tokens += part.prompt_tokens;
        self.completion_tokens += part.completion_tokens;
        self.requests += part.requests;
        self.cost_nanos += part.cost_nanos;
        merge_model(&mut self.models, model, part);
    }

    /// Adds another day's figures, model by model.
    pub fn add_day(&mut self, other: &DayUsage) {
        self.tokens += other.tokens;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.requests += other.requests;
        self.cost_nanos += other.cost_nanos;
        for (model, part) in &other.models {
            merge_model(&mut self.models, model, part);
        }
    }
}

fn merge_model(models: &mut ModelUsageMap, model: &str, part: &ModelUsage) {
    let entry = models.entry(model.to_string()).or_default();
    entry.tokens += part.tokens;
    entry.prompt_tokens += part.prompt_tokens;
    entry.completion_tokens += part.completion_tokens;
    entry.requests += part.requests;
    entry.cost_nanos += part.cost_nanos;
    entry.unpriced |= part.unpriced;
}

/// The days a user's sync covers, first and last: every day since the day of the last sync
/// (that day may have been incomplete then), never more than `backfill_days` back, and always
/// yesterday and today.
pub fn sync_range(
    today: NaiveDate,
    last_synced: Option<NaiveDate>,
    backfill_days: i64,
) -> (NaiveDate, NaiveDate) {
    let earliest = today - Duration::days(backfill_days.max(2) - 1);
    let yesterday = today - Duration::days(1);
    let from = match last_synced {
        Some(day) => day.min(yesterday).max(earliest),
        None => earliest,
    };
    (from, today)
}

/// One request from LiteLLM's spend logs.
#[derive(Clone, Debug, PartialEq)]
pub struct SpendLog {
    pub start: DateTime<Utc>,
    pub model: String,
    pub usage: ModelUsage,
    /// LiteLLM's id of the call (`litellm_call_id`, also its `x-litellm-call-id` header).
    pub call_id: Option<String>,
}

/// Adds up requests by the day (of `tz`) they started on.
pub fn days_from_logs<Tz: TimeZone>(logs: &[SpendLog], tz: &Tz) -> BTreeMap<NaiveDate, DayUsage> {
    let mut days: BTreeMap<NaiveDate, DayUsage> = BTreeMap::new();
    for log in logs {
        let day = log.start.with_timezone(tz).date_naive();
        days.entry(day).or_default().add(&log.model, &log.usage);
    }
    days
}

/// The `days` query parameter of a history: 1 to 365, 30 when absent.
pub fn parse_history_days(raw: Option<&str>) -> Result<i64, String> {
    let Some(raw) = raw else { return Ok(30) };
    match raw.trim().parse::<i64>() {
        Ok(days) => check_history_days(days),
        Err(_) => Err(days_error(raw)),
    }
}

/// `days` if a history may span it (1 to 365).
pub fn check_history_days(days: i64) -> Result<i64, String> {
    if HISTORY_DAYS.contains(&days) {
        Ok(days)
    } else {
        Err(days_error(&days.to_string()))
    }
}

fn days_error(got: &str) -> String {
    format!(
        "days must be a whole number from {} to {} (got {})",
        HISTORY_DAYS.start(),
        HISTORY_DAYS.end(),
        crate::domain::text::quoted(got)
    )
}

/// The first and last day of a history of `days` days ending today.
pub fn history_range(today: NaiveDate, days: i64) -> (NaiveDate, NaiveDate) {
    (today - Duration::days(days - 1), today)
}

/// The longest range the usage analytics cover, in days.
pub const MAX_RANGE_DAYS: i64 = 366;

/// A `from`/`to` pair of `YYYY-MM-DD` days (both inclusive) for the usage analytics: the last
/// 30 days when both are absent, `from` at most `MAX_RANGE_DAYS` before `to`.
pub fn parse_day_range(
    from: Option<&str>,
    to: Option<&str>,
    today: NaiveDate,
) -> Result<(NaiveDate, NaiveDate), String> {
    parse_named_range(from, to, today, ("from", "to"))
}

/// [`parse_day_range`] for fields with other names (`start_date`, `end_date`).
pub fn parse_named_range(
    from: Option<&str>,
    to: Option<&str>,
    today: NaiveDate,
    (from_name, to_name): (&str, &str),
) -> Result<(NaiveDate, NaiveDate), String> {
    let day = |name: &str, raw: &str| {
        NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| {
            format!(
                "{name} must be a date as YYYY-MM-DD (got {})",
                crate::domain::text::quoted(raw)
            )
        })
    };
    let to = match to {
        Some(raw) => day(to_name, raw)?,
        None => today,
    };
    let from = match from {
        Some(raw) => day(from_name, raw)?,
        None => to - Duration::days(29),
    };
    if from > to {
        return Err(format!(
            "{from_name} ({from}) must not be after {to_name} ({to})"
        ));
    }
    if (to - from).num_days() + 1 > MAX_RANGE_DAYS {
        return Err(format!(
            "the range may span at most {MAX_RANGE_DAYS} days (got {} days)",
            (to - from).num_days() + 1
        ));
    }
    Ok((from, to))
}

/// One day of a history as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryDay {
    pub date: NaiveDate,
    pub usage: DayUsage,
    /// `"app"` or `"litellm"`: whose figures these are.
    pub source: String,
    pub drifted: bool,
}

/// Every day from `from` to `to`, the stored ones in place and the rest zero (`source` "app").
pub fn zero_filled(stored: Vec<HistoryDay>, from: NaiveDate, to: NaiveDate) -> Vec<HistoryDay> {
    let mut stored: BTreeMap<NaiveDate, HistoryDay> =
        stored.into_iter().map(|d| (d.date, d)).collect();
    from.iter_days()
        .take_while(|d| *d <= to)
        .map(|date| {
            stored.remove(&date).unwrap_or_else(|| HistoryDay {
                date,
                source: "app".into(),
                ..HistoryDay::default()
            })
        })
        .collect()
}

/// The sum of some days.
pub fn totals<'a>(days: impl IntoIterator<Item = &'a DayUsage>) -> DayUsage {
    let mut sum = DayUsage::default();
    for day in days {
        sum.add_day(day);
    }
    sum
}

/// A CSV field: quoted when it holds a separator, a quote or a line break, and prefixed with
/// `'` when a spreadsheet would read it as a formula.
pub fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// A history as CSV: a header and one line per day.
pub fn history_csv(days: &[HistoryDay]) -> String {
    let mut out = String::from(
        "date,tokens_used,prompt_tokens,completion_tokens,requests_count,estimated_cost_usd,source,drifted\n",
    );
    for d in days {
        let u = &d.usage;
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            d.date,
            u.tokens,
            u.prompt_tokens,
            u.completion_tokens,
            u.requests,
            super::money::decimal_usd(u.cost_nanos),
            csv_field(&d.source),
            d.drifted
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn usage(tokens: i64, requests: i64, cost_nanos: i64) -> ModelUsage {
        ModelUsage {
            tokens,
            prompt_tokens: tokens / 2,
            completion_tokens: tokens - tokens / 2,
            requests,
            cost_nanos,
            unpriced: false,
        }
    }

    #[test]
    fn sync_range_covers_missing_days_yesterday_and_today() {
        let today = day("2026-11-28");
        for (last, backfill, from) in [
            (None, 90, "2026-08-31"),               // never synced: the whole window
            (Some("2026-11-28"), 90, "2026-11-27"), // synced today: yesterday and today
            (Some("2026-11-27"), 90, "2026-11-27"),
            (Some("2026-11-20"), 90, "2026-11-20"), // the day of the last sync onwards
            (Some("2026-01-01"), 90, "2026-08-31"), // never beyond the window
            (Some("2026-11-20"), 3, "2026-11-26"),
            (None, 1, "2026-11-27"), // yesterday even with a window of one day
        ] {
            let (f, t) = sync_range(today, last.map(day), backfill);
            assert_eq!(
                (f, t),
                (day(from), today),
                "last {last:?}, backfill {backfill}"
            );
        }
    }

    #[test]
    fn logs_add_up_by_local_day() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let logs = [
            SpendLog {
                start: at("2026-11-27T18:29:59Z"),
                model: "gpt".into(),
                usage: usage(10, 1, 100),
                call_id: None,
            },
            SpendLog {
                start: at("2026-11-27T18:30:00Z"), // 00:00 on the 28th in Kolkata
                model: "gpt".into(),
                usage: usage(20, 1, 200),
                call_id: None,
            },
            SpendLog {
                start: at("2026-11-28T10:00:00Z"),
                model: "claude".into(),
                usage: usage(5, 1, 7),
                call_id: None,
            },
        ];
        let kolkata = chrono::FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
        let days = days_from_logs(&logs, &kolkata);
        assert_eq!(days.len(), 2);
        assert_eq!(days[&day("2026-11-27")].tokens, 10);
        let d28 = &days[&day("2026-11-28")];
        assert_eq!((d28.tokens, d28.requests, d28.cost_nanos), (25, 2, 207));
        assert_eq!(d28.models["gpt"].tokens, 20);
        assert_eq!(d28.models["claude"].cost_nanos, 7);
        // In UTC all three are on different days than in Kolkata.
        let utc = days_from_logs(&logs, &Utc);
        assert_eq!(utc[&day("2026-11-27")].tokens, 30);
        assert_eq!(utc[&day("2026-11-28")].tokens, 5);
    }

    #[test]
    fn history_days_are_one_to_365() {
        for (raw, want) in [
            (None, Ok(30)),
            (Some("1"), Ok(1)),
            (Some("365"), Ok(365)),
            (Some(" 7 "), Ok(7)),
        ] {
            assert_eq!(parse_history_days(raw), want);
        }
        for raw in ["0", "366", "-1", "abc", "", "1.5"] {
            let err = parse_history_days(Some(raw)).unwrap_err();
            assert!(err.contains("from 1 to 365"), "{err}");
        }
        assert_eq!(
            history_range(day("2026-11-28"), 30),
            (day("2026-10-30"), day("2026-11-28"))
        );
        assert_eq!(
            history_range(day("2026-11-28"), 1),
            (day("2026-11-28"), day("2026-11-28"))
        );
    }

    #[test]
    fn histories_are_zero_filled_and_summed() {
        let mut stored = HistoryDay {
            date: day("2026-11-27"),
            source: "litellm".into(),
            drifted: true,
            ..HistoryDay::default()
        };
        stored.usage.add("gpt", &usage(10, 2, 30));
        let days = zero_filled(vec![stored.clone()], day("2026-11-25"), day("2026-11-28"));
        assert_eq!(
            days.iter().map(|d| d.date.to_string()).collect::<Vec<_>>(),
            ["2026-11-25", "2026-11-26", "2026-11-27", "2026-11-28"]
        );
        assert_eq!(days[2], stored);
        assert_eq!(days[0].usage, DayUsage::default());
        assert_eq!(days[0].source, "app");
        let mut no_models = DayUsage {
            tokens: 4,
            requests: 1,
            cost_nanos: 5,
            ..DayUsage::default()
        };
        no_models.prompt_tokens = 4;
        let sum = totals(days.iter().map(|d| &d.usage).chain([&no_models]));
        assert_eq!(
            (sum.tokens, sum.prompt_tokens, sum.requests, sum.cost_nanos),
            (14, 9, 3, 35)
        );
        assert_eq!(sum.models["gpt"].requests, 2);
    }

    #[test]
    fn analytics_ranges_are_checked() {
        let today = day("2026-11-28");
        let ok = |f: Option<&str>, t: Option<&str>| parse_day_range(f, t, today);
        assert_eq!(ok(None, None), Ok((day("2026-10-30"), today)));
        assert_eq!(
            ok(Some("2026-11-01"), Some("2026-11-30")),
            Ok((day("2026-11-01"), day("2026-11-30")))
        );
        assert_eq!(
            ok(None, Some("2026-01-30")),
            Ok((day("2026-01-01"), day("2026-01-30")))
        );
        assert_eq!(ok(Some("2026-11-28"), None), Ok((today, today)));
        // 366 days is the most.
        assert!(ok(Some("2025-11-28"), Some("2026-11-28")).is_ok());
        assert!(ok(Some("2025-11-27"), Some("2026-11-28"))
            .unwrap_err()
            .contains("at most 366"));
        assert!(ok(Some("2026-11-29"), Some("2026-11-28"))
            .unwrap_err()
            .contains("must not be after"));
        assert!(ok(Some("28/11/2026"), None)
            .unwrap_err()
            .contains("from must be a date"));
        assert!(ok(None, Some("tomorrow"))
            .unwrap_err()
            .contains("to must be a date"));
    }

    #[test]
    fn a_history_as_csv() {
        let mut d = HistoryDay {
            date: day("2026-11-27"),
            source: "litellm".into(),
            drifted: true,
            ..HistoryDay::default()
        };
        d.usage.add("gpt", &usage(10, 2, 1_500));
        let csv = history_csv(&[d]);
        assert_eq!(
            csv,
            "date,tokens_used,prompt_tokens,completion_tokens,requests_count,estimated_cost_usd,source,drifted\n\
             2026-11-27,10,5,5,2,0.0000015,litellm,true\n"
        );
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        for (raw, want) in [
            ("plain", "plain"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("=1+1", "'=1+1"),
            ("-2", "'-2"),
            ("line\nbreak", "\"line\nbreak\""),
        ] {
            assert_eq!(csv_field(raw), want);
        }
    }
}
