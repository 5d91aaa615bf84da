//! `/api/profile/*`: the caller's own things.

use super::{created, ok, parse_id, ApiJson, ApiResult};
use crate::api::{ApiTokenDto, CreatedTokenDto};
use crate::server::accounts;
use crate::server::auth::AuthUser;
use crate::server::state::AppState;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    name: String,
}

/// `GET /api/profile/tokens`: the caller's live API tokens (never their secrets).
pub async fn list_tokens(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> ApiResult<Vec<ApiTokenDto>> {
    ok(accounts::list_tokens(&state.db, me.user.id).await?)
}

/// `POST /api/profile/tokens {name}`: 201 with the token and its secret, shown this once.
pub async fn create_token(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiJson(body): ApiJson<NewToken>,
) -> ApiResult<CreatedTokenDto> {
    created(accounts::create_token(&state.db, me.user.id, &body.name).await?)
}

/// `DELETE /api/profile/tokens/{id}`: revokes one of the caller's tokens.
pub async fn revoke_token(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Value> {
    let id = parse_id(&id, "id")?;
    accounts::revoke_token(&state.db, me.user.id, id).await?;
    ok(json!({"revoked": id}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    current_password: String,
    new_password: String,
    #[serde(default)]
    revoke_api_tokens: bool,
}

/// `POST /api/profile/password {current_password, new_password, revoke_api_tokens?}`: changes
/// the password, signs out the caller's other sessions and (when asked) revokes their API
/// tokens, in one transaction.
pub async fn change_password(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiJson(body): ApiJson<NewPassword>,
) -> ApiResult<Value> {
    let ended = accounts::change_password(
        &state,
        &me,
        &body.current_password,
        &body.new_password,
        body.revoke_api_tokens,
    )
    .await?;
    ok(json!({
        "changed": true,
        "other_sessions_ended": ended.other_sessions_ended,
        "api_tokens_revoked": ended.api_tokens_revoked,
    }))
}

/// `GET /api/profile/usage`: the caller's usage in the current quota period, with the flags.
pub async fn usage(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> ApiResult<crate::api::quota::UsageDto> {
    ok(crate::server::quota::usage(&state, me.user.id).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    plan_id: uuid::Uuid,
}

/// `POST /api/profile/plan-request {plan_id}`: asks the admins for another plan.
pub async fn request_plan(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiJson(body): ApiJson<PlanRequest>,
) -> ApiResult<Value> {
    crate::server::quota::request_plan(&state, me.user.id, body.plan_id).await?;
    ok(json!({"requested": body.plan_id}))
}

/// `GET /api/plans`: the plans, for anyone (the pricing page).
pub async fn plans(State(state): State<AppState>) -> ApiResult<Vec<crate::api::quota::PlanDto>> {
    ok(crate::server::quota::list_plans(&state).await?)
}
