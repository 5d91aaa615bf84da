//! `/api/auth/*`, `/healthz`, `/readyz`.

use super::{created, ok, ApiError, ApiJson, ApiOk, ApiResult, Envelope, ErrorEnvelope};
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
use serde::{Deserialize, Serialize};

/// `POST /api/auth/logout`'s answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SignedOut {
    signed_out: bool,
}

/// `GET /healthz`'s answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// always `ok`
    status: &'static str,
}

/// `GET /readyz`'s answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// always `ready`
    status: &'static str,
    /// `sqlite` or `postgres`
    database: &'static str,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// trimmed and lower-cased; `name@domain`, at most 254 characters
    #[schema(format = Email, max_length = 254, pattern = "^\\s*[^@\\s]+@[^@\\s.][^@\\s]*[^@\\s.]\\s*$")]
    email: String,
    /// 8 to 128 characters (a log-in accepts any length up to that)
    #[schema(min_length = 8, max_length = 128)]
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

#[utoipa::path(
    post,
    path = "/api/auth/signup",
    tag = "auth",
    request_body = Credentials,
    responses((status = 201, description = "signed up and signed in (open sign-up)", body = Envelope<UserDto>), (status = 202, description = "signed up, waiting for an admin's approval (not signed in)", body = Envelope<UserDto>)),
    security(())
)]
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

#[utoipa::path(
    post,
    path = "/api/auth/login",
    tag = "auth",
    request_body = Credentials,
    responses((status = 200, description = "signed in; the session cookie is set", body = Envelope<UserDto>)),
    security(())
)]
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

#[utoipa::path(
    post,
    path = "/api/auth/logout",
    tag = "auth",
    responses((status = 200, description = "signed out; the cookie is cleared", body = Envelope<SignedOut>)),
    security(())
)]
/// `POST /api/auth/logout`: ends the session and clears the cookie (fine when signed out).
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = auth::authenticate(&state, &headers).await.ok().flatten();
    accounts::logout(&state, principal.as_ref()).await?;
    let mut response = ok(SignedOut { signed_out: true }).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        auth::clear_session_cookie(auth::cookies_secure(&state, &headers)),
    );
    Ok(response)
}

#[utoipa::path(
    get,
    path = "/api/auth/me",
    tag = "auth",
    responses((status = 200, description = "the signed-in user", body = Envelope<UserDto>))
)]
/// `GET /api/auth/me`: the signed-in user (401 otherwise).
pub async fn me(AuthUser(principal): AuthUser) -> ApiResult<UserDto> {
    ok(principal.user)
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "the process is alive", body = Envelope<Health>)),
    security(())
)]
/// `GET /healthz`: the process is alive.
pub async fn healthz() -> ApiResult<Health> {
    ok(Health { status: "ok" })
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses((status = 200, description = "the database answers", body = Envelope<Ready>), (status = 503, description = "the database does not answer", body = ErrorEnvelope)),
    security(())
)]
/// `GET /readyz`: the database answers (503 otherwise).
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.db.ping().await {
        Ok(()) => ok(Ready {
            status: "ready",
            database: state.db.backend(),
        })
        .into_response(),
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
