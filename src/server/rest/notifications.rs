//! `/api/notifications`: the caller's own notifications.

use super::{ok, parse_id, ApiResult, Envelope, IdPath};
use crate::api::notifications::{NotificationDto, NotificationListDto};
use crate::server::auth::AuthUser;
use crate::server::notifications;
use crate::server::state::AppState;
use axum::extract::{Path, State};
use serde::Serialize;

#[utoipa::path(
    get,
    path = "/api/notifications",
    tag = "notifications",
    responses((status = 200, description = "the newest 50, newest first, and the unread count", body = Envelope<NotificationListDto>))
)]
/// `GET /api/notifications`: the caller's newest notifications and how many are unread.
pub async fn list(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> ApiResult<NotificationListDto> {
    ok(notifications::list(&state, me.user.id).await?)
}

#[utoipa::path(
    post,
    path = "/api/notifications/{id}/read",
    tag = "notifications",
    params(IdPath),
    responses((status = 200, description = "marked read", body = Envelope<NotificationDto>))
)]
/// `POST /api/notifications/{id}/read`: marks one of the caller's notifications read (404 for
/// anybody else's).
pub async fn mark_read(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<NotificationDto> {
    let id = parse_id(&id, "id")?;
    ok(notifications::mark_read(&state, me.user.id, id).await?)
}

/// `POST /api/notifications/read-all`'s answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Marked {
    /// How many were unread.
    marked: i64,
}

#[utoipa::path(
    post,
    path = "/api/notifications/read-all",
    tag = "notifications",
    responses((status = 200, description = "all marked read", body = Envelope<Marked>))
)]
/// `POST /api/notifications/read-all`: marks all the caller's notifications read.
pub async fn mark_all_read(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> ApiResult<Marked> {
    ok(Marked {
        marked: notifications::mark_all_read(&state, me.user.id).await?,
    })
}
