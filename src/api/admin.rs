//! Admin user management for the admin pages.

use super::error::AppError;
use super::quota::{AdminUserDto, PlanDto};
use super::{UserCountsDto, UserDto};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use uuid::Uuid;

#[server(prefix = "/api/fn", endpoint = "admin_user_counts")]
pub async fn admin_user_counts() -> Result<UserCountsDto, AppError> {
    let (state, _admin) = super::ssr::require_admin().await?;
    Ok(crate::server::accounts::user_counts(&state.db).await?)
}

/// What the users page shows: every user with plan and usage, and the plans to pick from.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AdminUsersPageDto {
    pub users: Vec<AdminUserDto>,
    pub plans: Vec<PlanDto>,
}

#[server(prefix = "/api/fn", endpoint = "admin_list_users")]
pub async fn admin_list_users() -> Result<AdminUsersPageDto, AppError> {
    let (state, _admin) = super::ssr::require_admin().await?;
    Ok(AdminUsersPageDto {
        users: crate::server::quota::admin_users(&state, 1000, 0).await?,
        plans: crate::server::quota::list_plans(&state).await?,
    })
}

/// Puts a user on a plan (`None`: the default plan); settles their plan request.
#[server(prefix = "/api/fn", endpoint = "admin_set_plan", input = Json)]
pub async fn admin_set_plan(id: Uuid, plan_id: Option<Uuid>) -> Result<(), AppError> {
    let (state, _admin) = super::ssr::require_admin().await?;
    Ok(crate::server::quota::set_user_quota(&state, id, Some(plan_id), None).await?)
}

/// Sets or (with `None`) clears a user's personal monthly token limit.
#[server(prefix = "/api/fn", endpoint = "admin_set_limit", input = Json)]
pub async fn admin_set_limit(id: Uuid, limit: Option<i64>) -> Result<(), AppError> {
    let (state, _admin) = super::ssr::require_admin().await?;
    Ok(crate::server::quota::set_user_quota(&state, id, None, Some(limit)).await?)
}

#[server(prefix = "/api/fn", endpoint = "admin_create_user")]
pub async fn admin_create_user(
    email: String,
    password: String,
    role: String,
) -> Result<UserDto, AppError> {
    use crate::domain::account::Role;
    let (state, _admin) = super::ssr::require_admin().await?;
    let role: Role = role.parse().map_err(AppError::validation)?;
    Ok(crate::server::accounts::create_user(
        &state.db,
        &email,
        &password,
        role,
        crate::domain::account::Approval::Approved,
    )
    .await?)
}

#[server(prefix = "/api/fn", endpoint = "admin_set_role")]
pub async fn admin_set_role(id: Uuid, role: String) -> Result<UserDto, AppError> {
    use crate::domain::account::Role;
    let (state, admin) = super::ssr::require_admin().await?;
    let role: Role = role.parse().map_err(AppError::validation)?;
    Ok(crate::server::accounts::update_user(&state, &admin, id, Some(role), None).await?)
}

#[server(prefix = "/api/fn", endpoint = "admin_set_disabled")]
pub async fn admin_set_disabled(id: Uuid, disabled: bool) -> Result<UserDto, AppError> {
    let (state, admin) = super::ssr::require_admin().await?;
    Ok(crate::server::accounts::update_user(&state, &admin, id, None, Some(disabled)).await?)
}

/// Approves (`approve` = true) or rejects a pending sign-up.
#[server(prefix = "/api/fn", endpoint = "admin_decide_signup")]
pub async fn admin_decide_signup(id: Uuid, approve: bool) -> Result<UserDto, AppError> {
    let (state, admin) = super::ssr::require_admin().await?;
    Ok(crate::server::accounts::decide_signup(&state, &admin, id, approve).await?)
}

/// Creates a plan (`id` = `None`) or replaces one's fields.
#[server(prefix = "/api/fn", endpoint = "admin_save_plan", input = Json)]
pub async fn admin_save_plan(
    id: Option<Uuid>,
    name: String,
    monthly_token_limit: Option<i64>,
    price_label: String,
    description: String,
    sort_order: i64,
    is_default: bool,
) -> Result<PlanDto, AppError> {
    let (state, _admin) = super::ssr::require_admin().await?;
    let input = crate::server::quota::PlanInput {
        name,
        monthly_token_limit,
        price_label,
        description,
        sort_order,
        is_default,
    };
    Ok(match id {
        None => crate::server::quota::create_plan(&state, input).await?,
        Some(id) => crate::server::quota::update_plan(&state, id, |_| input).await?,
    })
}
