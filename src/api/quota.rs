//! The signed-in user's usage in the current quota period, as the banner, the modal and
//! `GET /api/profile/usage` see it.

use super::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PlanDto {
    pub id: Uuid,
    pub name: String,
    /// `None`: unlimited.
    pub monthly_token_limit: Option<i64>,
    pub price_label: String,
    pub description: String,
    pub sort_order: i64,
    pub is_default: bool,
}

/// A user as the admin list shows them: the account, its plan and the period's usage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AdminUserDto {
    #[serde(flatten)]
    pub user: super::UserDto,
    pub plan_id: Uuid,
    pub plan_name: String,
    pub token_limit_override: Option<i64>,
    /// The limit that applies (override, else the plan's); `None`: unlimited.
    pub limit: Option<i64>,
    pub tokens_used: i64,
    pub percentage: f64,
    pub is_warning: bool,
    pub is_upgrade_suggested: bool,
    pub is_blocked: bool,
    /// A plan the user asked for, not yet acted on.
    pub requested_plan: Option<RequestedPlanDto>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RequestedPlanDto {
    pub id: Uuid,
    pub name: String,
    #[serde(with = "crate::domain::time::wire")]
    pub requested_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct QuotaDto {
    /// `None`: unlimited.
    pub limit: Option<i64>,
    pub used: i64,
    pub remaining: Option<i64>,
    pub percentage: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
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

#[server(prefix = "/api/fn", endpoint = "list_plans")]
pub async fn list_plans() -> Result<Vec<PlanDto>, AppError> {
    // The plans are public: the pricing page shows them to visitors too.
    let state = super::ssr::state()?;
    Ok(crate::server::quota::list_plans(&state).await?)
}

#[server(prefix = "/api/fn", endpoint = "request_plan")]
pub async fn request_plan(plan_id: Uuid) -> Result<(), AppError> {
    let (state, me) = super::ssr::require_user().await?;
    Ok(crate::server::quota::request_plan(&state, me.user.id, plan_id).await?)
}
