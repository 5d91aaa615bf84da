//! The signed-in user's usage in the current quota period, as the banner, the modal and
//! `GET /api/profile/usage` see it.

use super::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanDto {
    pub id: Uuid,
    pub name: String,
    /// `None`: unlimited.
    pub monthly_token_limit: Option<i64>,
    pub price_label: String,
    pub description: String,
    pub is_default: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuotaDto {
    /// `None`: unlimited.
    pub limit: Option<i64>,
    pub used: i64,
    pub remaining: Option<i64>,
    pub percentage: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageDto {
    /// First and last day of the period (`YYYY-MM-DD`, in the configured timezone).
    pub period_start: String,
    pub period_end: String,
    /// When the next period starts (RFC 3339, UTC).
    pub resets_at: String,
    pub timezone: String,
    pub tokens_used: i64,
    pub requests_count: i64,
    /// Exact USD as a decimal string.
    pub estimated_cost: String,
    pub quota: QuotaDto,
    pub is_warning: bool,
    pub is_upgrade_suggested: bool,
    pub is_blocked: bool,
    pub plan: PlanDto,
    /// Where to ask for more.
    pub upgrade_url: String,
}

#[server(prefix = "/api/fn", endpoint = "get_usage")]
pub async fn get_usage() -> Result<UsageDto, AppError> {
    let (state, me) = super::ssr::require_user().await?;
    Ok(crate::server::quota::usage(&state, me.user.id).await?)
}
