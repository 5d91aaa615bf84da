//! `/api/admin/*`: admins only.

use super::{created, ok, parse_id, ApiError, ApiJson, ApiResult};
use crate::api::error::AppError;
use crate::api::UserDto;
use crate::domain::account::Role;
use crate::server::accounts;
use crate::server::auth::AdminUser;
use crate::server::state::AppState;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `GET /api/admin/users?limit=100&offset=0`
pub async fn list_users(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    query: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Vec<UserDto>> {
    let Query(page) = query.map_err(|e| ApiError(AppError::validation(e.body_text())))?;
    let users = accounts::list_users(
        &state.db,
        page.limit.unwrap_or(100),
        page.offset.unwrap_or(0),
    )
    .await?;
    ok(users)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    email: String,
    password: String,
    role: Option<String>,
}

fn parse_role(raw: &str) -> Result<Role, ApiError> {
    raw.parse::<Role>()
        .map_err(|msg| ApiError(AppError::validation(msg)))
}

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
    created(accounts::create_user(&state.db, &body.email, &body.password, role).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    role: Option<String>,
    disabled: Option<bool>,
}

/// `PATCH /api/admin/users/{id} {role?, disabled?}`
pub async fn update_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UserPatch>,
) -> ApiResult<UserDto> {
    let id = parse_id(&id, "id")?;
    let role = body.role.as_deref().map(parse_role).transpose()?;
    ok(accounts::update_user(&state.db, &admin, id, role, body.disabled).await?)
}
