//! What the pages and the API read of the usage history: a user's days (zero-filled, with
//! totals and models), everyone's analytics over a range, and the CSV exports. The sync that
//! fills the history from LiteLLM is `usage_sync`.

use crate::api::error::AppError;
use crate::api::usage::{
    ModelUsageDto, TopUserDto, UsageAnalyticsDto, UsageDayDto, UsageHistoryDto, UsageTotalsDto,
};
use crate::domain::chat::ModelUsage;
use crate::domain::money::decimal_usd;
use crate::domain::usage::{
    check_history_days, csv_field, history_range, parse_day_range, totals, zero_filled, DayUsage,
    HistoryDay,
};
use crate::server::db::usage_history;
use crate::server::error::Result;
use crate::server::state::AppState;
use crate::server::usage_sync::{require_user, today};
use chrono::NaiveDate;
use uuid::Uuid;

fn model_dto(usage: &ModelUsage) -> ModelUsageDto {
    ModelUsageDto {
        tokens: usage.tokens,
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        requests: usage.requests,
        cost: decimal_usd(usage.cost_nanos),
    }
}

fn day_dto(day: &HistoryDay) -> UsageDayDto {
    let u = &day.usage;
    UsageDayDto {
        date: day.date.to_string(),
        tokens_used: u.tokens,
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        requests_count: u.requests,
        estimated_cost: decimal_usd(u.cost_nanos),
        model_usage: u
            .models
            .iter()
            .map(|(m, x)| (m.clone(), model_dto(x)))
            .collect(),
        source: day.source.clone(),
        drifted: day.drifted,
    }
}

pub fn totals_dto(sum: &DayUsage) -> UsageTotalsDto {
    UsageTotalsDto {
        tokens_used: sum.tokens,
        prompt_tokens: sum.prompt_tokens,
        completion_tokens: sum.completion_tokens,
        requests_count: sum.requests,
        estimated_cost: decimal_usd(sum.cost_nanos),
    }
}

/// The user's models over a range, most tokens first.
pub fn by_model_dto(sum: &DayUsage) -> Vec<(String, ModelUsageDto)> {
    let mut models: Vec<_> = sum.models.iter().collect();
    models.sort_by(|a, b| b.1.tokens.cmp(&a.1.tokens).then(a.0.cmp(b.0)));
    models
        .into_iter()
        .map(|(m, u)| (m.clone(), model_dto(u)))
        .collect()
}

/// The caller's own history: as [`get_user_usage_history`], without the last sync failure's
/// text (it can name the proxy's internal address; admins see it).
pub async fn own_usage_history(
    state: &AppState,
    user_id: Uuid,
    days: i64,
) -> Result<UsageHistoryDto> {
    let mut history = get_user_usage_history(state, user_id, days).await?;
    history.sync_error = None;
    Ok(history)
}

/// A user's stored days of a range, zero-filled, and their sync state.
pub struct History {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: Vec<HistoryDay>,
    pub sync: usage_history::SyncState,
}

/// The user's days of the `days` days (1 to 365) ending today, from the local table, every
/// day present (also for the CSV download).
pub async fn history_days(state: &AppState, user_id: Uuid, days: i64) -> Result<History> {
    check_history_days(days).map_err(AppError::validation)?;
    let sync = require_user(state, user_id).await?;
    let (from, to) = history_range(today(state), days);
    let rows = usage_history::list_range(&state.db, user_id, from, to).await?;
    let stored = rows.into_iter().map(HistoryDay::from).collect();
    Ok(History {
        from,
        to,
        days: zero_filled(stored, from, to),
        sync,
    })
}

/// The user's usage of the `days` days (1 to 365) ending today: every day, the totals and
/// the per-model breakdown.
#[tracing::instrument(skip(state), err)]
pub async fn get_user_usage_history(
    state: &AppState,
    user_id: Uuid,
    days: i64,
) -> Result<UsageHistoryDto> {
    let history = history_days(state, user_id, days).await?;
    let sum = totals(history.days.iter().map(|d| &d.usage));
    Ok(UsageHistoryDto {
        user_id,
        email: history.sync.email.clone(),
        days,
        from: history.from.to_string(),
        to: history.to.to_string(),
        timezone: state.config.timezone.name().to_string(),
        daily: history.days.iter().map(day_dto).collect(),
        totals: totals_dto(&sum),
        by_model: by_model_dto(&sum),
        sync_available: state.llm.is_litellm(),
        last_synced_at: history.sync.usage_synced_at,
        sync_error: history.sync.usage_sync_error,
    })
}

/// Everyone's usage from `from` to `to` (both `YYYY-MM-DD`; the last 30 days when absent):
/// totals, every day, the top ten users and the models.
#[tracing::instrument(skip(state), err)]
pub async fn usage_analytics(
    state: &AppState,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<UsageAnalyticsDto> {
    let (from, to) = parse_day_range(from, to, today(state)).map_err(AppError::validation)?;
    let (daily, top, models) = tokio::try_join!(
        usage_history::list_daily_totals(&state.db, from, to),
        usage_history::list_top_users(&state.db, from, to, 10),
        usage_history::list_model_totals(&state.db, from, to),
    )?;
    let drifted_days = daily.iter().map(|d| d.drifted).sum();
    let stored = daily
        .into_iter()
        .map(|d| HistoryDay {
            date: d.date,
            usage: DayUsage {
                tokens: d.tokens_used,
                prompt_tokens: d.prompt_tokens,
                completion_tokens: d.completion_tokens,
                requests: d.requests_count,
                cost_nanos: d.cost_nanos,
                models: Default::default(),
            },
            source: "app".into(),
            drifted: d.drifted > 0,
        })
        .collect();
    let days = zero_filled(stored, from, to);
    let sum = totals(days.iter().map(|d| &d.usage));
    Ok(UsageAnalyticsDto {
        from: from.to_string(),
        to: to.to_string(),
        timezone: state.config.timezone.name().to_string(),
        totals: totals_dto(&sum),
        daily: days.iter().map(day_dto).collect(),
        top_users: top
            .into_iter()
            .map(|u| TopUserDto {
                user_id: u.user_id,
                email: u.email,
                tokens_used: u.tokens_used,
                requests_count: u.requests_count,
                estimated_cost: decimal_usd(u.cost_nanos),
            })
            .collect(),
        by_model: models
            .into_iter()
            .map(|m| {
                let usage = ModelUsage {
                    tokens: m.tokens,
                    prompt_tokens: m.prompt_tokens,
                    completion_tokens: m.completion_tokens,
                    requests: m.requests,
                    cost_nanos: m.cost_nanos,
                    unpriced: false,
                };
                (m.model, model_dto(&usage))
            })
            .collect(),
        drifted_days,
    })
}

/// Every user's days from `from` to `to` as CSV, and the range it covers.
pub async fn usage_export_csv(
    state: &AppState,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(NaiveDate, NaiveDate, String)> {
    let (from, to) = parse_day_range(from, to, today(state)).map_err(AppError::validation)?;
    let rows = usage_history::list_export(&state.db, from, to).await?;
    let mut out = String::from(
        "date,email,tokens_used,prompt_tokens,completion_tokens,requests_count,estimated_cost_usd,source,drifted\n",
    );
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            r.date,
            csv_field(&r.email),
            r.tokens_used,
            r.prompt_tokens,
            r.completion_tokens,
            r.requests_count,
            decimal_usd(r.cost_nanos),
            csv_field(&r.source),
            r.drifted
        ));
    }
    Ok((from, to, out))
}
