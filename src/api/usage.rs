//! Usage history: a user's days (their own, or anyone's for an admin), the totals and the
//! per-model breakdown, as the Usage tab, the admin user page and the history API see them.

use super::error::AppError;
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// One model's share of a day or of a range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ModelUsageDto {
    pub tokens: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub requests: i64,
    /// Exact USD as a decimal string.
    pub cost: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UsageDayDto {
    /// `YYYY-MM-DD`, a day of the configured timezone.
    pub date: String,
    pub tokens_used: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub requests_count: i64,
    /// Exact USD as a decimal string.
    pub estimated_cost: String,
    pub model_usage: BTreeMap<String, ModelUsageDto>,
    /// `"app"` (recorded by tokenmeter) or `"litellm"` (LiteLLM's figures, from a sync).
    pub source: String,
    /// The app's and LiteLLM's figures differed by more than 1% at the last sync.
    pub drifted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UsageTotalsDto {
    pub tokens_used: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub requests_count: i64,
    pub estimated_cost: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UsageHistoryDto {
    pub user_id: Uuid,
    pub email: String,
    pub days: i64,
    pub from: String,
    pub to: String,
    pub timezone: String,
    /// Every day of the range, oldest first; days without use are zero.
    pub daily: Vec<UsageDayDto>,
    pub totals: UsageTotalsDto,
    /// The range's usage per model, most tokens first.
    pub by_model: Vec<(String, ModelUsageDto)>,
    /// Whether usage is synced from a LiteLLM proxy here (else the app's records are all).
    pub sync_available: bool,
    /// The last successful sync with LiteLLM (`None`: never).
    #[serde(default, with = "crate::domain::time::wire::option")]
    pub last_synced_at: Option<DateTime<Utc>>,
    /// Why the last sync since then failed (for admins; `None` in the user's own history).
    pub sync_error: Option<String>,
}

/// The caller's own history of `days` days (1 to 365) ending today.
#[server(prefix = "/api/fn", endpoint = "get_usage_history")]
pub async fn get_usage_history(days: i64) -> Result<UsageHistoryDto, AppError> {
    let (state, me) = super::ssr::require_user().await?;
    Ok(crate::server::usage_analytics::own_usage_history(&state, me.user.id, days).await?)
}

/// Anyone's history, for admins.
#[server(prefix = "/api/fn", endpoint = "admin_usage_history")]
pub async fn admin_usage_history(user_id: Uuid, days: i64) -> Result<UsageHistoryDto, AppError> {
    let (state, _admin) = super::ssr::require_admin().await?;
    Ok(crate::server::usage_analytics::get_user_usage_history(&state, user_id, days).await?)
}

/// A user as the admin's usage page heads it: who, their month, and whether there is a
/// LiteLLM proxy to sync from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AdminUserUsageDto {
    pub user_id: Uuid,
    pub email: String,
    pub sync_available: bool,
    pub usage: super::quota::UsageDto,
}

/// Anyone's usage in the current quota period, for admins.
#[server(prefix = "/api/fn", endpoint = "admin_user_usage")]
pub async fn admin_user_usage(user_id: Uuid) -> Result<AdminUserUsageDto, AppError> {
    let (state, _admin) = super::ssr::require_admin().await?;
    Ok(crate::server::usage_sync::admin_user_usage(&state, user_id).await?)
}

/// Syncs one user's usage from LiteLLM now, for admins; answers with the days written.
#[server(prefix = "/api/fn", endpoint = "admin_sync_user_usage")]
pub async fn admin_sync_user_usage(user_id: Uuid) -> Result<i64, AppError> {
    let (state, _admin) = super::ssr::require_admin().await?;
    let synced = crate::server::usage_sync::sync_user_usage(&state, user_id).await?;
    Ok(synced.days_reported)
}

/// A user among the heaviest in a range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TopUserDto {
    pub user_id: Uuid,
    pub email: String,
    pub tokens_used: i64,
    pub requests_count: i64,
    pub estimated_cost: String,
}

/// Everyone's usage over a range, for `/admin/usage`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UsageAnalyticsDto {
    pub from: String,
    pub to: String,
    pub timezone: String,
    pub totals: UsageTotalsDto,
    /// Everyone's days, every day of the range (`drifted`: some user's day is).
    pub daily: Vec<UsageDayDto>,
    /// The ten users with the most tokens.
    pub top_users: Vec<TopUserDto>,
    pub by_model: Vec<(String, ModelUsageDto)>,
    /// User-days marked drifted in the range.
    pub drifted_days: i64,
}

/// Everyone's usage from `from` to `to` (`YYYY-MM-DD`, the last 30 days when absent), for
/// admins.
#[server(prefix = "/api/fn", endpoint = "admin_usage_analytics", input = Json)]
pub async fn admin_usage_analytics(
    from: Option<String>,
    to: Option<String>,
) -> Result<UsageAnalyticsDto, AppError> {
    let (state, _admin) = super::ssr::require_admin().await?;
    Ok(
        crate::server::usage_analytics::usage_analytics(&state, from.as_deref(), to.as_deref())
            .await?,
    )
}
