//! The JSON API under `/api/...`. Every answer is the envelope
//! `{"success": bool, "data": ... | null, "error": {"code", "message"} | null}` with the status
//! that goes with it. Handlers authorize first, through the `AuthUser` / `AdminUser` extractors.

mod admin;
mod auth;
mod chat;
mod jobs;
mod notifications;
pub mod openapi;
mod profile;
mod usage;

use crate::api::error::{AppError, ErrorCode};
use crate::server::error::Error;
use crate::server::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

/// A successful answer: `success` true, the `data`, `error` null.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Envelope<T> {
    success: bool,
    data: Option<T>,
    error: Option<AppError>,
}

/// A failed answer (every status from 400 up): `success` false, `data` null, the `error`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    success: bool,
    #[schema(value_type = Option<()>)]
    data: Option<()>,
    error: AppError,
}

/// The `{id}` of a path, as the OpenAPI document describes it (handlers read it as text and
/// parse it with [`parse_id`], so that anything else is a 400 naming it).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // described, never built
pub struct IdPath {
    /// the id (a UUID; anything else is a 400)
    id: Uuid,
}

/// A successful answer: status and data.
pub struct ApiOk<T>(pub StatusCode, pub T);

impl<T: Serialize> IntoResponse for ApiOk<T> {
    fn into_response(self) -> Response {
        let body = Envelope {
            success: true,
            data: Some(self.1),
            error: None,
        };
        (self.0, Json(body)).into_response()
    }
}

/// A failed answer: the status comes from the error's code.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorEnvelope {
            success: false,
            data: None,
            error: self.0,
        };
        (status, Json(body)).into_response()
    }
}

impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        ApiError(err)
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        ApiError(err.into())
    }
}

pub type ApiResult<T> = Result<ApiOk<T>, ApiError>;

pub fn ok<T>(data: T) -> ApiResult<T> {
    Ok(ApiOk(StatusCode::OK, data))
}

pub fn created<T>(data: T) -> ApiResult<T> {
    Ok(ApiOk(StatusCode::CREATED, data))
}

/// `Json<T>` whose rejections (bad JSON, wrong field types, missing content type) are 400s in
/// the envelope, with serde's description of what is wrong.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(ApiError(AppError::validation(match rejection {
                JsonRejection::MissingJsonContentType(_) => {
                    "the body must be JSON with Content-Type: application/json".to_string()
                }
                other => other.body_text(),
            }))),
        }
    }
}

/// `Query<T>` whose rejections (unknown fields, wrong types) are 400s in the envelope, with
/// serde's description of what is wrong.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError(AppError::validation(rejection.body_text())))
    }
}

/// Parses an id from the path; anything but a UUID is a 400 naming the parameter.
pub fn parse_id(raw: &str, name: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| {
        ApiError(AppError::validation(format!(
            "{name} must be a UUID, got {}",
            crate::domain::text::quoted(raw)
        )))
    })
}

async fn not_found() -> ApiError {
    ApiError(AppError::new(ErrorCode::NotFound, "no such API endpoint"))
}

async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError(AppError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on this endpoint"),
    ))
}

/// The REST routes (merged into the app's router).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(auth::healthz))
        .route("/readyz", get(auth::readyz))
        .route("/api/auth/signup", post(auth::signup))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/auth/me", get(auth::me))
        .route(
            "/api/profile/tokens",
            get(profile::list_tokens).post(profile::create_token),
        )
        .route("/api/profile/tokens/{id}", delete(profile::revoke_token))
        .route("/api/profile/password", post(profile::change_password))
        .route("/api/profile/usage", get(profile::usage))
        .route("/api/profile/usage/history", get(usage::own_history))
        .route("/api/profile/plan-request", post(profile::request_plan))
        .route("/api/plans", get(profile::plans))
        .route("/api/notifications", get(notifications::list))
        .route(
            "/api/notifications/read-all",
            post(notifications::mark_all_read),
        )
        .route(
            "/api/notifications/{id}/read",
            post(notifications::mark_read),
        )
        .route(
            "/api/admin/plans",
            get(admin::list_plans).post(admin::create_plan),
        )
        .route("/api/admin/plans/{id}", patch(admin::update_plan))
        .route("/api/chat/completions", post(chat::completions))
        .route("/api/models", get(chat::models))
        .route(
            "/api/conversations",
            get(chat::list_conversations).post(chat::create_conversation),
        )
        .route(
            "/api/conversations/{id}",
            get(chat::get_conversation)
                .patch(chat::update_conversation)
                .delete(chat::delete_conversation),
        )
        .route(
            "/api/admin/users",
            get(admin::list_users).post(admin::create_user),
        )
        .route("/api/admin/users/{id}", patch(admin::update_user))
        .route("/api/admin/users/{id}/approve", post(admin::approve_user))
        .route("/api/admin/users/{id}/reject", post(admin::reject_user))
        .route(
            "/api/admin/users/{id}/usage/history",
            get(usage::user_history),
        )
        .route("/api/admin/users/{id}/usage/sync", post(usage::sync_user))
        .route("/api/admin/usage", get(usage::analytics))
        .route("/api/jobs", get(jobs::list_own))
        .route(
            "/api/jobs/{id}",
            get(jobs::get_own).delete(jobs::cancel_own),
        )
        .route("/api/admin/jobs", get(jobs::list_all).post(jobs::create))
        .route("/api/admin/jobs/usage-sync", post(jobs::start_usage_sync))
        .route("/api/admin/jobs/report", post(jobs::request_report))
        .route("/api/admin/jobs/events", get(jobs::events))
        .route(
            "/api/admin/jobs/{id}",
            get(jobs::get_any).delete(jobs::cancel_any),
        )
        .route("/api/admin/jobs/{id}/result", get(jobs::result))
        .route("/api/openapi.json", get(openapi::document))
        .route(
            "/api/{*rest}",
            get(not_found)
                .post(not_found)
                .patch(not_found)
                .delete(not_found)
                .put(not_found),
        )
        // A known path with the wrong method: 405 in the envelope, not axum's empty answer.
        .method_not_allowed_fallback(method_not_allowed)
}
