//! `/api/auth/*`, `/healthz`, `/readyz`.

use super::{created, ok, ApiError, ApiJson, ApiOk, ApiResult};
use crate::api::error::AppError;
use crate::api::UserDto;
use crate::server::accounts::{self, NewSession};
use crate::server::auth::{self, AuthUser};
use crate::server::state::AppState;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    email: String,
    password: String,
}

fn with_cookie(
    state: &AppState,
    headers: &HeaderMap,
    session: NewSession,
    status: StatusCode,
) -> Response {
    let max_age = state.config.session_ttl_hours * 3600;
    let cookie = auth::session_cookie(
        &session.secret,
        max_age,
        auth::cookies_secure(state, headers),
    );
    let body = if status == StatusCode::CREATED {
        created(session.user)
    } else {
        ok(session.user)
    };
    let mut response = body.into_response();
    response.headers_mut().append(SET_COOKIE, cookie);
    response
}

/// `POST /api/auth/signup {email, password}`: 201 with the user, signed in (open sign-up), or
/// 202 with the user, not signed in, when the account waits for an admin's approval.
pub async fn signup(
    State(state): State<AppState>,
    parts: Parts,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    let ip = auth::client_ip(&parts, state.config.trust_proxy);
    match accounts::signup(&state, &body.email, &body.password, &ip).await? {
        accounts::SignedUp::SignedIn(session) => Ok(with_cookie(
            &state,
            &parts.headers,
            session,
            StatusCode::CREATED,
        )),
        accounts::SignedUp::Pending(user) => Ok(ApiOk(StatusCode::ACCEPTED, user).into_response()),
    }
}

/// `POST /api/auth/login {email, password}`: 200 with the user and the session cookie.
pub async fn login(
    State(state): State<AppState>,
    parts: Parts,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    let ip = auth::client_ip(&parts, state.config.trust_proxy);
    let session = accounts::login(&state, &body.email, &body.password, &ip).await?;
    Ok(with_cookie(&state, &parts.headers, session, StatusCode::OK))
}

/// `POST /api/auth/logout`: ends the session and clears the cookie (fine when signed out).
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = auth::authenticate(&state, &headers).await.ok().flatten();
    accounts::logout(&state, principal.as_ref()).await?;
    let mut response = ok(json!({"signed_out": true})).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        auth::clear_session_cookie(auth::cookies_secure(&state, &headers)),
    );
    Ok(response)
}

/// `GET /api/auth/me`: the signed-in user (401 otherwise).
pub async fn me(AuthUser(principal): AuthUser) -> ApiResult<UserDto> {
    ok(principal.user)
}

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> ApiResult<serde_json::Value> {
    ok(json!({"status": "ok"}))
}

/// `GET /readyz`: the database answers (503 otherwise).
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.db.ping().await {
        Ok(()) => ok(json!({"status": "ready", "database": state.db.backend()})).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "readiness check failed");
            let mut response = ApiError(AppError::new(
                crate::api::error::ErrorCode::Internal,
                "database unreachable",
            ))
            .into_response();
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            response
        }
    }
}
