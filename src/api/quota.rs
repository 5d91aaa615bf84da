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

/// A user as the admin list shows them: the account, its plan and the period's usage. On the
/// wire the account's fields sit beside the others (`flatten`); it is read back through
/// [`AdminUserWire`], the same fields written flat, because serde's reader for `flatten` first
/// buffers the object as any JSON, a decoder the admin pages would otherwise load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "AdminUserWire")]
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
    /// The period's tokens at the reset at the forecast's pace.
    pub projected_tokens: i64,
    /// The period's cost at the reset (exact USD, decimal): the cost so far at its average
    /// price per token, carried to the projected tokens.
    pub projected_cost: String,
    /// The local day (`YYYY-MM-DD`) the forecast reaches the limit, if before the reset.
    pub runs_out_on: Option<String>,
}

/// [`AdminUserDto`] as it is written: [`super::UserDto`]'s fields, then the rest.
#[derive(Deserialize)]
struct AdminUserWire {
    id: Uuid,
    email: String,
    role: crate::domain::account::Role,
    disabled: bool,
    approval: crate::domain::account::Approval,
    #[serde(with = "crate::domain::time::wire")]
    created_at: chrono::DateTime<chrono::Utc>,
    plan_id: Uuid,
    plan_name: String,
    token_limit_override: Option<i64>,
    limit: Option<i64>,
    tokens_used: i64,
    percentage: f64,
    is_warning: bool,
    is_upgrade_suggested: bool,
    is_blocked: bool,
    requested_plan: Option<RequestedPlanDto>,
    projected_tokens: i64,
    projected_cost: String,
    runs_out_on: Option<String>,
}

impl From<AdminUserWire> for AdminUserDto {
    fn from(w: AdminUserWire) -> Self {
        AdminUserDto {
            user: super::UserDto {
                id: w.id,
                email: w.email,
                role: w.role,
                disabled: w.disabled,
                approval: w.approval,
                created_at: w.created_at,
            },
            plan_id: w.plan_id,
            plan_name: w.plan_name,
            token_limit_override: w.token_limit_override,
            limit: w.limit,
            tokens_used: w.tokens_used,
            percentage: w.percentage,
            is_warning: w.is_warning,
            is_upgrade_suggested: w.is_upgrade_suggested,
            is_blocked: w.is_blocked,
            requested_plan: w.requested_plan,
            projected_tokens: w.projected_tokens,
            projected_cost: w.projected_cost,
            runs_out_on: w.runs_out_on,
        }
    }
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
    pub forecast: ForecastDto,
    /// The user's unread notifications (the bell's count).
    pub unread_notifications: i64,
}

/// At this pace, the period's total and the local days (`YYYY-MM-DD`) each threshold will be
/// reached on: null when it is reached already, when the pace does not reach it before the
/// reset, or when unlimited. The pace is the higher of the period's and the last 7 days'.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ForecastDto {
    pub projected_tokens: i64,
    /// Null when unlimited.
    pub projected_percentage: Option<f64>,
    pub tokens_per_day: i64,
    // The pages show only the limit's day: the browser does not read the other two (their
    // reader would be in the main module, which every page loads).
    #[cfg_attr(not(feature = "ssr"), serde(skip_deserializing))]
    pub warning_on: Option<String>,
    #[cfg_attr(not(feature = "ssr"), serde(skip_deserializing))]
    pub upgrade_on: Option<String>,
    pub limit_on: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::UserDto;
    use crate::domain::account::{Approval, Role};

    #[test]
    fn an_admin_user_is_written_flat_and_read_back_the_same() {
        let created_at = chrono::DateTime::parse_from_rfc3339("2026-11-30T08:15:00Z")
            .unwrap()
            .to_utc();
        let row = AdminUserDto {
            user: UserDto {
                id: Uuid::from_u128(7),
                email: "ada@example.com".into(),
                role: Role::Admin,
                disabled: false,
                approval: Approval::Approved,
                created_at,
            },
            plan_id: Uuid::from_u128(9),
            plan_name: "Pro".into(),
            token_limit_override: Some(5_000),
            limit: Some(5_000),
            tokens_used: 4_100,
            percentage: 82.0,
            is_warning: true,
            is_upgrade_suggested: false,
            is_blocked: false,
            requested_plan: Some(RequestedPlanDto {
                id: Uuid::from_u128(11),
                name: "Team".into(),
                requested_at: created_at,
            }),
            projected_tokens: 12_300,
            projected_cost: "0.0123".into(),
            runs_out_on: Some("2026-11-19".into()),
        };
        let json = serde_json::to_value(&row).unwrap();
        assert_eq!(json["email"], "ada@example.com");
        assert_eq!(json["role"], "admin");
        assert!(json.get("user").is_none());
        assert_eq!(json["runs_out_on"], "2026-11-19");
        assert_eq!(serde_json::from_value::<AdminUserDto>(json).unwrap(), row);
        let without_request = AdminUserDto {
            requested_plan: None,
            ..row
        };
        let json = serde_json::to_string(&without_request).unwrap();
        assert_eq!(
            serde_json::from_str::<AdminUserDto>(&json).unwrap(),
            without_request
        );
    }
}
