//! Reading a user's usage back from LiteLLM, by day of the configured timezone.
//!
//! LiteLLM 1.108 keeps daily totals per user (`/user/daily/activity`), bucketed by the **UTC**
//! date a request started; its `timezone` parameter only stretches the range's end to today's
//! UTC bucket and never moves requests between days. So the daily totals are used as they are
//! when the configured timezone is UTC over the whole range; in any other zone a local day is
//! not a union of UTC days, and the days are added up from the per-request spend logs
//! (`/spend/logs/v2`) instead. Both are one ranged, paginated read per user.

use super::{Llm, UpstreamError};
use crate::domain::chat::ModelUsage;
use crate::domain::money::usd_f64_to_nanos;
use crate::domain::period::start_of_day;
use crate::domain::usage::{days_from_logs, DayUsage, SpendLog};
use crate::server::config::Upstream;
use chrono::{DateTime, Duration, NaiveDate, Offset, TimeZone, Utc};
use serde_json::Value;
use std::collections::BTreeMap;

/// Rows asked for per page (LiteLLM's maximum).
const PAGE_SIZE: u32 = 1000;
/// A runaway pagination stops here (a million rows).
const MAX_PAGES: u32 = 1000;

/// A failed read, with the endpoint and page it happened on.
#[derive(Debug, thiserror::Error)]
#[error("LiteLLM {endpoint} (page {page}): {error}")]
pub struct ActivityError {
    pub endpoint: &'static str,
    pub page: u32,
    pub error: UpstreamError,
}

/// Whether every day from `from` to `to` starts and ends at a UTC midnight in `tz`.
pub fn days_are_utc<Tz: TimeZone>(tz: &Tz, from: NaiveDate, to: NaiveDate) -> bool {
    from.iter_days()
        .take_while(|d| *d <= to + Duration::days(1))
        .all(|d| {
            let start = start_of_day(d, tz);
            tz.offset_from_utc_datetime(&start.naive_utc())
                .fix()
                .local_minus_utc()
                == 0
        })
}

impl Llm {
    /// A user's usage per local day from `from` to `to` (inclusive), as LiteLLM recorded it;
    /// days without use are absent. Every page is read before anything is returned.
    #[tracing::instrument(skip(self, tz))]
    pub async fn usage_days<Tz: TimeZone + std::fmt::Debug>(
        &self,
        user_id: &str,
        from: NaiveDate,
        to: NaiveDate,
        tz: &Tz,
    ) -> Result<BTreeMap<NaiveDate, DayUsage>, ActivityError> {
        if days_are_utc(tz, from, to) {
            self.daily_activity(user_id, from, to).await
        } else {
            let start = start_of_day(from, tz);
            let end = start_of_day(to + Duration::days(1), tz);
            let logs = self.spend_logs(user_id, start, end).await?;
            Ok(days_from_logs(&logs, tz))
        }
    }

    /// `GET path?query&page=N` with the master key; LiteLLM only.
    async fn admin_page(
        &self,
        endpoint: &'static str,
        query: &[(&str, String)],
        page: u32,
    ) -> Result<Value, ActivityError> {
        let fail = |error| ActivityError {
            endpoint,
            page,
            error,
        };
        let Upstream::LiteLlm {
            base_url,
            master_key,
        } = &self.upstream
        else {
            return Err(fail(UpstreamError::Unreachable(
                "usage is read from LiteLLM only (LITELLM_URL is not set)".into(),
            )));
        };
        let request = self
            .http
            .get(format!("{base_url}{endpoint}"))
            .bearer_auth(master_key)
            .query(query)
            .query(&[("page", page), ("page_size", PAGE_SIZE)]);
        self.json(request).await.map_err(fail)
    }

    async fn daily_activity(
        &self,
        user_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<BTreeMap<NaiveDate, DayUsage>, ActivityError> {
        const ENDPOINT: &str = "/user/daily/activity";
        let query = [
            ("user_id", user_id.to_string()),
            ("start_date", from.to_string()),
            ("end_date", to.to_string()),
        ];
        let mut days: BTreeMap<NaiveDate, DayUsage> = BTreeMap::new();
        for page in 1..=MAX_PAGES {
            let body = self.admin_page(ENDPOINT, &query, page).await?;
            let malformed = |why: String| ActivityError {
                endpoint: ENDPOINT,
                page,
                error: UpstreamError::Malformed(why),
            };
            let (page_days, has_more) = parse_daily_activity(&body).map_err(malformed)?;
            // A day's records can be split over pages: add the parts up.
            for (date, usage) in page_days {
                if (from..=to).contains(&date) {
                    days.entry(date).or_default().add_day(&usage);
                }
            }
            if !has_more {
                return Ok(days);
            }
        }
        Err(ActivityError {
            endpoint: ENDPOINT,
            page: MAX_PAGES,
            error: UpstreamError::Malformed(format!("more than {MAX_PAGES} pages")),
        })
    }

    /// A user's successful requests that started in `[start, end)`, all pages.
    pub async fn spend_logs(
        &self,
        user_id: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<SpendLog>, ActivityError> {
        const ENDPOINT: &str = "/spend/logs/v2";
        let format = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
        let query = [
            ("user_id", user_id.to_string()),
            ("start_date", format(start)),
            ("end_date", format(end)),
        ];
        let mut logs = Vec::new();
        for page in 1..=MAX_PAGES {
            let body = self.admin_page(ENDPOINT, &query, page).await?;
            let (page_logs, total_pages) =
                parse_spend_logs(&body).map_err(|why| ActivityError {
                    endpoint: ENDPOINT,
                    page,
                    error: UpstreamError::Malformed(why),
                })?;
            // The end bound is inclusive and to the second: drop what started at `end`.
            logs.extend(page_logs.into_iter().filter(|l| l.start < end));
            if page >= total_pages {
                return Ok(logs);
            }
        }
        Err(ActivityError {
            endpoint: ENDPOINT,
            page: MAX_PAGES,
            error: UpstreamError::Malformed(format!("more than {MAX_PAGES} pages")),
        })
    }
}

fn int(v: &Value, what: &str) -> Result<i64, String> {
    v.as_i64()
        .filter(|n| *n >= 0)
        .ok_or_else(|| format!("{what} is not a count: {v}"))
}

fn usd(v: &Value, what: &str) -> Result<i64, String> {
    v.as_f64()
        .and_then(usd_f64_to_nanos)
        .ok_or_else(|| format!("{what} is not an amount: {v}"))
}

/// A `metrics` object of the daily activity as one model's (or one day's) usage.
fn metrics(m: &Value, what: &str) -> Result<ModelUsage, String> {
    if !m.is_object() {
        return Err(format!("{what}: no metrics"));
    }
    let prompt_tokens = int(&m["prompt_tokens"], &format!("{what}.prompt_tokens"))?;
    let completion_tokens = int(
        &m["completion_tokens"],
        &format!("{what}.completion_tokens"),
    )?;
    Ok(ModelUsage {
        tokens: int(&m["total_tokens"], &format!("{what}.total_tokens"))?,
        prompt_tokens,
        completion_tokens,
        requests: int(
            &m["successful_requests"],
            &format!("{what}.successful_requests"),
        )?,
        cost_nanos: usd(&m["spend"], &format!("{what}.spend"))?,
        unpriced: false,
    })
}

/// One page of `/user/daily/activity`: the days on it (by model group, the names the chat
/// uses) and whether more pages follow.
pub fn parse_daily_activity(body: &Value) -> Result<(Vec<(NaiveDate, DayUsage)>, bool), String> {
    let results = body["results"]
        .as_array()
        .ok_or("no results array".to_string())?;
    let has_more = body["metadata"]["has_more"]
        .as_bool()
        .ok_or("no metadata.has_more".to_string())?;
    let mut days = Vec::with_capacity(results.len());
    for result in results {
        let date: NaiveDate = result["date"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| format!("a result without a date: {}", result["date"]))?;
        let total = metrics(&result["metrics"], &format!("{date}"))?;
        let mut day = DayUsage {
            tokens: total.tokens,
            prompt_tokens: total.prompt_tokens,
            completion_tokens: total.completion_tokens,
            requests: total.requests,
            cost_nanos: total.cost_nanos,
            ..DayUsage::default()
        };
        let groups = result["breakdown"]["model_groups"]
            .as_object()
            .ok_or_else(|| format!("{date}: no breakdown.model_groups"))?;
        for (model, group) in groups {
            let usage = metrics(&group["metrics"], &format!("{date} {model}"))?;
            day.models.insert(model.clone(), usage);
        }
        days.push((date, day));
    }
    Ok((days, has_more))
}

/// One page of `/spend/logs/v2`: its successful requests and how many pages there are.
pub fn parse_spend_logs(body: &Value) -> Result<(Vec<SpendLog>, u32), String> {
    let data = body["data"].as_array().ok_or("no data array".to_string())?;
    let total_pages = body["total_pages"]
        .as_u64()
        .ok_or("no total_pages".to_string())? as u32;
    let mut logs = Vec::with_capacity(data.len());
    for row in data {
        if row["status"].as_str() != Some("success") {
            continue;
        }
        let id = row["request_id"].as_str().unwrap_or("?");
        let start = row["startTime"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .ok_or_else(|| format!("request {id}: startTime {}", row["startTime"]))?
            .with_timezone(&Utc);
        let model = row["model_group"]
            .as_str()
            .filter(|m| !m.is_empty())
            .or_else(|| row["model"].as_str())
            .unwrap_or_default()
            .to_string();
        logs.push(SpendLog {
            start,
            model,
            usage: ModelUsage {
                tokens: int(&row["total_tokens"], &format!("request {id} total_tokens"))?,
                prompt_tokens: int(
                    &row["prompt_tokens"],
                    &format!("request {id} prompt_tokens"),
                )?,
                completion_tokens: int(
                    &row["completion_tokens"],
                    &format!("request {id} completion_tokens"),
                )?,
                requests: 1,
                cost_nanos: usd(&row["spend"], &format!("request {id} spend"))?,
                unpriced: false,
            },
            call_id: row["litellm_call_id"]
                .as_str()
                .filter(|c| !c.is_empty())
                .map(str::to_string),
        });
    }
    Ok((logs, total_pages))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/litellm/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).unwrap()
    }

    #[test]
    fn reads_the_daily_activity_sample() {
        let (days, more) = parse_daily_activity(&sample("user_daily_activity.json")).unwrap();
        assert!(!more);
        let (date, day) = &days[0];
        assert_eq!(date.to_string(), "2026-11-28");
        assert_eq!(
            (
                day.tokens,
                day.prompt_tokens,
                day.completion_tokens,
                day.requests
            ),
            (156, 58, 98, 6)
        );
        assert_eq!(day.cost_nanos, 656_000);
        assert_eq!(day.models.len(), 2);
        assert_eq!(day.models["gpt-4o-mini"].tokens, 109);
        assert_eq!(day.models["claude-mock"].cost_nanos, 477_000);
        assert_eq!(day.models["claude-mock"].requests, 2);
    }

    #[test]
    fn reads_the_spend_logs_sample() {
        let (logs, pages) = parse_spend_logs(&sample("spend_logs_v2.json")).unwrap();
        assert_eq!(pages, 3);
        assert_eq!(logs.len(), 2);
        assert_eq!(logs[0].model, "claude-mock");
        assert_eq!(logs[0].usage.tokens, 17);
        assert_eq!(logs[0].usage.cost_nanos, 147_000);
        assert_eq!(logs[0].start.to_rfc3339(), "2026-11-28T03:03:14.678+00:00");
        assert_eq!(
            logs[0].call_id.as_deref(),
            Some("878e54e6-0f2e-45aa-a8cd-e2698581f5a2")
        );
    }

    #[test]
    fn malformed_pages_say_what_is_wrong() {
        for (body, want) in [
            (serde_json::json!({}), "no results array"),
            (serde_json::json!({"results": []}), "no metadata.has_more"),
            (
                serde_json::json!({"results": [{"date": "yesterday"}], "metadata": {"has_more": false}}),
                "a result without a date",
            ),
            (
                serde_json::json!({"results": [{"date": "2026-11-28", "metrics": {"prompt_tokens": -1}}], "metadata": {"has_more": false}}),
                "2026-11-28.prompt_tokens is not a count",
            ),
        ] {
            let err = parse_daily_activity(&body).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
        let err =
            parse_spend_logs(&serde_json::json!({"data": [], "total_pages": "x"})).unwrap_err();
        assert!(err.contains("total_pages"), "{err}");
    }

    #[test]
    fn only_zones_at_utc_for_the_whole_range_use_the_daily_totals() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert!(days_are_utc(
            &chrono_tz::UTC,
            d("2026-01-01"),
            d("2026-12-31")
        ));
        assert!(days_are_utc(
            &chrono_tz::Europe::London,
            d("2026-11-01"),
            d("2026-11-30")
        ));
        // Summer time starts on 29 March 2026 in London.
        assert!(!days_are_utc(
            &chrono_tz::Europe::London,
            d("2026-03-01"),
            d("2026-03-30")
        ));
        assert!(!days_are_utc(
            &chrono_tz::Asia::Kolkata,
            d("2026-11-28"),
            d("2026-11-28")
        ));
    }
}
