//! `/api/profile/*`: the caller's own things.

use super::{created, ok, parse_id, ApiJson, ApiResult, Envelope, IdPath};
use crate::api::{ApiTokenDto, CreatedTokenDto};
use crate::server::accounts;
use crate::server::auth::AuthUser;
use crate::server::state::AppState;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `DELETE /api/profile/tokens/{id}`'s answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Revoked {
    revoked: Uuid,
}

/// `POST /api/profile/password`'s answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PasswordChanged {
    changed: bool,
    other_sessions_ended: i64,
    api_tokens_revoked: i64,
}

/// `POST /api/profile/plan-request`'s answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PlanRequested {
    requested: Uuid,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// 1 to 64 characters once trimmed
    #[schema(min_length = 1, max_length = 64, pattern = "\\S")]
    name: String,
}

#[utoipa::path(
    get,
    path = "/api/profile/tokens",
    tag = "profile",
    responses((status = 200, description = "the caller's live API tokens", body = Envelope<Vec<ApiTokenDto>>))
)]
/// `GET /api/profile/tokens`: the caller's live API tokens (never their secrets).
pub async fn list_tokens(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> ApiResult<Vec<ApiTokenDto>> {
    ok(accounts::list_tokens(&state.db, me.user.id).await?)
}

#[utoipa::path(
    post,
    path = "/api/profile/tokens",
    tag = "profile",
    request_body = NewToken,
    responses((status = 201, description = "the token and its secret, shown this once", body = Envelope<CreatedTokenDto>))
)]
/// `POST /api/profile/tokens {name}`: 201 with the token and its secret, shown this once.
pub async fn create_token(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiJson(body): ApiJson<NewToken>,
) -> ApiResult<CreatedTokenDto> {
    created(accounts::create_token(&state.db, me.user.id, &body.name).await?)
}

#[utoipa::path(
    delete,
    path = "/api/profile/tokens/{id}",
    tag = "profile",
    params(IdPath),
    responses((status = 200, description = "revoked", body = Envelope<Revoked>))
)]
/// `DELETE /api/profile/tokens/{id}`: revokes one of the caller's tokens.
pub async fn revoke_token(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Revoked> {
    let id = parse_id(&id, "id")?;
    accounts::revoke_token(&state.db, me.user.id, id).await?;
    ok(Revoked { revoked: id })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    #[schema(min_length = 1, max_length = 128)]
    current_password: String,
    /// 8 to 128 characters
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
    #[serde(default)]
    revoke_api_tokens: bool,
}

#[utoipa::path(
    post,
    path = "/api/profile/password",
    tag = "profile",
    request_body = NewPassword,
    responses((status = 200, description = "changed; the other sessions ended", body = Envelope<PasswordChanged>))
)]
/// `POST /api/profile/password {current_password, new_password, revoke_api_tokens?}`: changes
/// the password, signs out the caller's other sessions and (when asked) revokes their API
/// tokens, in one transaction.
pub async fn change_password(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiJson(body): ApiJson<NewPassword>,
) -> ApiResult<PasswordChanged> {
    let ended = accounts::change_password(
        &state,
        &me,
        &body.current_password,
        &body.new_password,
        body.revoke_api_tokens,
    )
    .await?;
    ok(PasswordChanged {
        changed: true,
        other_sessions_ended: ended.other_sessions_ended,
        api_tokens_revoked: ended.api_tokens_revoked,
    })
}

#[utoipa::path(
    get,
    path = "/api/profile/usage",
    tag = "profile",
    responses((status = 200, description = "the current quota period", body = Envelope<crate::api::quota::UsageDto>))
)]
/// `GET /api/profile/usage`: the caller's usage in the current quota period, with the flags.
pub async fn usage(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> ApiResult<crate::api::quota::UsageDto> {
    ok(crate::server::quota::usage(&state, me.user.id).await?)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    plan_id: Uuid,
}

#[utoipa::path(
    post,
    path = "/api/profile/plan-request",
    tag = "profile",
    request_body = PlanRequest,
    responses((status = 200, description = "the admins are asked", body = Envelope<PlanRequested>))
)]
/// `POST /api/profile/plan-request {plan_id}`: asks the admins for another plan.
pub async fn request_plan(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiJson(body): ApiJson<PlanRequest>,
) -> ApiResult<PlanRequested> {
    crate::server::quota::request_plan(&state, me.user.id, body.plan_id).await?;
    ok(PlanRequested {
        requested: body.plan_id,
    })
}

#[utoipa::path(
    get,
    path = "/api/plans",
    tag = "profile",
    responses((status = 200, description = "the plans", body = Envelope<Vec<crate::api::quota::PlanDto>>)),
    security(())
)]
/// `GET /api/plans`: the plans, for anyone (the pricing page).
pub async fn plans(State(state): State<AppState>) -> ApiResult<Vec<crate::api::quota::PlanDto>> {
    ok(crate::server::quota::list_plans(&state).await?)
}
