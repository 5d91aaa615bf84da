//! The usage history's sync with LiteLLM: LiteLLM sees every request made with a user's key, so
//! its figures replace the app's own for the days it covers (see
//! [`db::usage_history::write_sync`] for the rule and the drift mark). Each user's sync is one
//! ranged read from LiteLLM (all pages) and then one transaction; nothing is written when the
//! read fails. The job runner calls these too. What the pages read of the history (days,
//! analytics, CSV) is in `usage_analytics`.

use crate::api::error::{AppError, ErrorCode};
use crate::api::usage::AdminUserUsageDto;
use crate::domain::usage::sync_range;
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

pub(crate) async fn require_user(
    state: &AppState,
    user_id: Uuid,
) -> Result<usage_history::SyncState> {
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
