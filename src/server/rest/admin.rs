//! `/api/admin/*`: admins only.

use super::{created, ok, parse_id, ApiError, ApiJson, ApiQuery, ApiResult, Envelope, IdPath};
use crate::api::error::AppError;
use crate::api::quota::{AdminUserDto, PlanDto};
use crate::api::UserDto;
use crate::domain::account::Role;
use crate::server::auth::AdminUser;
use crate::server::state::AppState;
use crate::server::{accounts, quota};
use axum::extract::{Path, State};
use serde::Deserialize;

#[derive(Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// 1 to 1000 (100 when absent)
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    #[param(minimum = 0)]
    offset: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/admin/users",
    tag = "admin",
    params(Page),
    responses((status = 200, description = "users with their plan and usage", body = Envelope<Vec<AdminUserDto>>))
)]
/// `GET /api/admin/users?limit=100&offset=0`: users with their plan and the period's usage.
pub async fn list_users(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Vec<AdminUserDto>> {
    let users =
        quota::admin_users(&state, page.limit.unwrap_or(100), page.offset.unwrap_or(0)).await?;
    ok(users)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// `name@domain`, at most 254 characters
    #[schema(format = Email, max_length = 254, pattern = "^\\s*[^@\\s]+@[^@\\s.][^@\\s]*[^@\\s.]\\s*$")]
    email: String,
    /// 8 to 128 characters
    #[schema(min_length = 8, max_length = 128)]
    password: String,
    /// `user` when absent
    #[schema(schema_with = super::openapi::account_role)]
    role: Option<String>,
}

fn parse_role(raw: &str) -> Result<Role, ApiError> {
    raw.parse::<Role>()
        .map_err(|msg| ApiError(AppError::validation(msg)))
}

#[utoipa::path(
    post,
    path = "/api/admin/users",
    tag = "admin",
    request_body = NewUser,
    responses((status = 201, description = "the new user", body = Envelope<UserDto>))
)]
/// `POST /api/admin/users {email, password, role?}`: 201 with the new user.
pub async fn create_user(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    ApiJson(body): ApiJson<NewUser>,
) -> ApiResult<UserDto> {
    let role = body
        .role
        .as_deref()
        .map(parse_role)
        .transpose()?
        .unwrap_or(Role::User);
    created(
        accounts::create_user(
            &state.db,
            &body.email,
            &body.password,
            role,
            crate::domain::account::Approval::Approved,
        )
        .await?,
    )
}

/// A field that may be absent (leave it), `null` (clear it) or a value.
fn present<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    role: Option<String>,
    disabled: Option<bool>,
    /// `null`: back to the default plan.
    #[serde(default, deserialize_with = "present")]
    plan_id: Option<Option<String>>,
    /// `null`: clears the personal limit.
    #[serde(default, deserialize_with = "present")]
    token_limit_override: Option<Option<i64>>,
}

#[utoipa::path(
    patch,
    path = "/api/admin/users/{id}",
    tag = "admin",
    request_body = UserPatch,
    params(IdPath),
    responses((status = 200, description = "the user as changed", body = Envelope<UserDto>))
)]
/// `PATCH /api/admin/users/{id} {role?, disabled?, plan_id?, token_limit_override?}`
pub async fn update_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UserPatch>,
) -> ApiResult<UserDto> {
    let id = parse_id(&id, "id")?;
    let role = body.role.as_deref().map(parse_role).transpose()?;
    let plan = body
        .plan_id
        .map(|p| p.map(|raw| parse_id(&raw, "plan_id")).transpose())
        .transpose()?;
    let quota_change = plan.is_some() || body.token_limit_override.is_some();
    if role.is_none() && body.disabled.is_none() && !quota_change {
        return Err(ApiError(AppError::validation(
            "nothing to change: give role (user, admin), disabled (true, false), plan_id and/or token_limit_override",
        )));
    }
    // Every field is checked before any is written: the role rule here, the plan and limit
    // by `set_user_quota` before its write, which comes first.
    accounts::check_user_change(&admin, id, role, body.disabled)?;
    if quota_change {
        quota::set_user_quota(&state, id, plan, body.token_limit_override).await?;
    }
    if role.is_some() || body.disabled.is_some() {
        return ok(accounts::update_user(&state, &admin, id, role, body.disabled).await?);
    }
    let user = crate::server::db::users::find_by_id(&state.db, id)
        .await
        .map_err(crate::server::error::Error::from)?
        .ok_or_else(|| ApiError(AppError::not_found("user")))?;
    ok(user.into())
}

#[utoipa::path(
    post,
    path = "/api/admin/users/{id}/approve",
    tag = "admin",
    params(IdPath),
    responses((status = 200, description = "approved (409 when not pending)", body = Envelope<UserDto>))
)]
/// `POST /api/admin/users/{id}/approve`: lets a pending sign-up in (409 when not pending).
pub async fn approve_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<UserDto> {
    let id = parse_id(&id, "id")?;
    ok(accounts::decide_signup(&state, &admin, id, true).await?)
}

#[utoipa::path(
    post,
    path = "/api/admin/users/{id}/reject",
    tag = "admin",
    params(IdPath),
    responses((status = 200, description = "rejected (409 when not pending)", body = Envelope<UserDto>))
)]
/// `POST /api/admin/users/{id}/reject`: refuses a pending sign-up (409 when not pending); the
/// account stays, unable to sign in, so the address cannot queue again.
pub async fn reject_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<UserDto> {
    let id = parse_id(&id, "id")?;
    ok(accounts::decide_signup(&state, &admin, id, false).await?)
}

#[utoipa::path(
    get,
    path = "/api/admin/plans",
    tag = "admin",
    responses((status = 200, description = "the plans", body = Envelope<Vec<PlanDto>>))
)]
/// `GET /api/admin/plans` (also public as `GET /api/plans`).
pub async fn list_plans(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
) -> ApiResult<Vec<PlanDto>> {
    ok(quota::list_plans(&state).await?)
}

#[utoipa::path(
    post,
    path = "/api/admin/plans",
    tag = "admin",
    request_body = quota::PlanInput,
    responses((status = 201, description = "the new plan", body = Envelope<PlanDto>))
)]
/// `POST /api/admin/plans {name, monthly_token_limit, price_label?, description?, sort_order?, is_default?}`
pub async fn create_plan(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    ApiJson(body): ApiJson<quota::PlanInput>,
) -> ApiResult<PlanDto> {
    created(quota::create_plan(&state, body).await?)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanPatch {
    /// 1 to 60 characters once trimmed
    #[schema(min_length = 1, max_length = 60, pattern = "\\S")]
    name: Option<String>,
    /// `null`: unlimited
    #[serde(default, deserialize_with = "present")]
    #[schema(minimum = 0)]
    monthly_token_limit: Option<Option<i64>>,
    #[schema(max_length = 40)]
    price_label: Option<String>,
    #[schema(max_length = 300)]
    description: Option<String>,
    sort_order: Option<i64>,
    is_default: Option<bool>,
}

#[utoipa::path(
    patch,
    path = "/api/admin/plans/{id}",
    tag = "admin",
    request_body = PlanPatch,
    params(IdPath),
    responses((status = 200, description = "the plan as changed", body = Envelope<PlanDto>))
)]
/// `PATCH /api/admin/plans/{id}`: the fields given change (`monthly_token_limit: null` is unlimited).
pub async fn update_plan(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PlanPatch>,
) -> ApiResult<PlanDto> {
    let id = parse_id(&id, "id")?;
    let plan = quota::update_plan(&state, id, |current| quota::PlanInput {
        name: body.name.unwrap_or(current.name),
        monthly_token_limit: body
            .monthly_token_limit
            .unwrap_or(current.monthly_token_limit),
        price_label: body.price_label.unwrap_or(current.price_label),
        description: body.description.unwrap_or(current.description),
        sort_order: body.sort_order.unwrap_or(current.sort_order),
        is_default: body.is_default.unwrap_or(current.is_default),
    })
    .await?;
    ok(plan)
}
