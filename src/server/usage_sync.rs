//! The usage history and its sync with LiteLLM: LiteLLM sees every request made with a user's
//! key, so its figures replace the app's own for the days it covers (see
//! [`db::usage_history::write_sync`] for the rule and the drift mark). Each user's sync is one
//! ranged read from LiteLLM (all pages) and then one transaction; nothing is written when the
//! read fails. The job runner calls these too.

use crate::api::error::{AppError, ErrorCode};
use crate::api::usage::{
    AdminUserUsageDto, ModelUsageDto, TopUserDto, UsageAnalyticsDto, UsageDayDto, UsageHistoryDto,
    UsageTotalsDto,
};
use crate::domain::chat::ModelUsage;
use crate::domain::money::decimal_usd;
use crate::domain::usage::{
    check_history_days, csv_field, history_range, parse_day_range, sync_range, totals, zero_filled,
    DayUsage, HistoryDay,
};
use crate::server::db::{self, usage_history};
use crate::server::error::{Error, Result};
use crate::server::state::AppState;
use chrono::NaiveDate;
use futures_util::stream::{self, StreamExt};
use std::sync::atomic::{AtomicBool, Ordering};
use uuid::Uuid;

/// Today in the configured timezone.
pub fn today(state: &AppState) -> NaiveDate {
    db::now().with_timezone(&state.config.timezone).date_naive()
}

/// What one user's sync did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserSync {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Days LiteLLM reported use on.
    pub days_reported: i64,
}

/// Reads the user's days from `from` to `to` from LiteLLM and writes them in one transaction;
/// a failed read is recorded on the user and nothing else is written.
async fn sync_range_of(
    state: &AppState,
    user_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<UserSync> {
    if !state.llm.is_litellm() {
        return Err(AppError::new(
            ErrorCode::Conflict,
            "Usage is synced from LiteLLM, and no LiteLLM proxy is configured (LITELLM_URL).",
        )
        .into());
    }
    let tz = &state.config.timezone;
    let days = match state
        .llm
        .usage_days(&user_id.to_string(), from, to, tz)
        .await
    {
        Ok(days) => days,
        Err(e) => {
            let message = e.to_string();
            tracing::warn!(%user_id, error = %message, "usage sync failed");
            usage_history::write_sync_failure(&state.db, user_id, &message).await?;
            return Err(Error::App(AppError::new(
                ErrorCode::Upstream,
                format!("Could not read usage from {message}"),
            )));
        }
    };
    let synced: Vec<usage_history::SyncedDay> = days
        .iter()
        .map(|(date, usage)| usage_history::SyncedDay { date: *date, usage })
        .collect();
    usage_history::write_sync(&state.db, user_id, from, to, &synced, db::now())
        .await?
        .announce(state)
        .await;
    Ok(UserSync {
        from,
        to,
        days_reported: synced.len() as i64,
    })
}

/// Syncs one day of the user's usage from LiteLLM.
#[tracing::instrument(skip(state), err)]
pub async fn aggregate_daily_usage(
    state: &AppState,
    user_id: Uuid,
    date: NaiveDate,
) -> Result<UserSync> {
    require_user(state, user_id).await?;
    sync_range_of(state, user_id, date, date).await
}

/// Syncs every day missing since the user's last sync (at most the backfill window), and
/// always yesterday and today, in one ranged read.
#[tracing::instrument(skip(state), err)]
pub async fn sync_user_usage(state: &AppState, user_id: Uuid) -> Result<UserSync> {
    let sync_state = require_user(state, user_id).await?;
    let last = sync_state
        .usage_synced_at
        .map(|t| t.with_timezone(&state.config.timezone).date_naive());
    let (from, to) = sync_range(today(state), last, state.config.usage_backfill_days);
    sync_range_of(state, user_id, from, to).await
}

async fn require_user(state: &AppState, user_id: Uuid) -> Result<usage_history::SyncState> {
    Ok(usage_history::find_sync_state(&state.db, user_id)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?)
}

/// A user's month for the admin's page, with who they are and whether a sync is possible.
pub async fn admin_user_usage(state: &AppState, user_id: Uuid) -> Result<AdminUserUsageDto> {
    let sync = require_user(state, user_id).await?;
    Ok(AdminUserUsageDto {
        user_id,
        email: sync.email,
        sync_available: state.llm.is_litellm(),
        usage: crate::server::quota::usage(state, user_id).await?,
    })
}

/// How a sync of everyone is going.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncProgress {
    pub done: usize,
    pub failed: usize,
    pub total: usize,
}

/// The end of a sync of everyone: the failures, user by user.
#[derive(Clone, Debug, Default)]
pub struct SyncReport {
    pub users: usize,
    /// Stopped on request before every user was synced.
    pub stopped: bool,
    pub days_reported: i64,
    pub failures: Vec<(Uuid, String)>,
}

/// Syncs every active user, `TOKENMETER_USAGE_SYNC_CONCURRENCY` at a time. A user's failure is
/// recorded on them and in the report; the others go on. `progress` hears of every user done.
/// Once `stop` is set no further user is started (those under way finish).
#[tracing::instrument(skip_all, err)]
pub async fn sync_all_users_usage(
    state: &AppState,
    progress: &(dyn Fn(SyncProgress) + Send + Sync),
    stop: &AtomicBool,
) -> Result<SyncReport> {
    let ids = usage_history::list_active_user_ids(&state.db).await?;
    let total = ids.len();
    let mut report = SyncReport {
        users: total,
        ..SyncReport::default()
    };
    let mut results = stream::iter(ids)
        .take_while(|_| std::future::ready(!stop.load(Ordering::Relaxed)))
        .map(|id| async move { (id, sync_user_usage(state, id).await) })
        .buffer_unordered(state.config.usage_sync_concurrency);
    let mut done = 0;
    while let Some((id, result)) = results.next().await {
        done += 1;
        match result {
            Ok(synced) => report.days_reported += synced.days_reported,
            Err(e) => report.failures.push((id, AppError::from(e).message)),
        }
        progress(SyncProgress {
            done,
            failed: report.failures.len(),
            total,
        });
    }
    report.stopped = done < total;
    tracing::info!(
        users = total,
        failed = report.failures.len(),
        days = report.days_reported,
        "usage sync of all users done"
    );
    Ok(report)
}

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
