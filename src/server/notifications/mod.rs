//! Notifications on the server: the watcher that makes them ([`watch`]) and a user's list.

pub mod watch;

use crate::api::error::AppError;
use crate::api::notifications::{NotificationDto, NotificationListDto, LIST_SIZE};
use crate::server::db::{self, notifications as repo};
use crate::server::error::Result;
use crate::server::state::AppState;
use uuid::Uuid;

fn dto(row: repo::NotificationRow) -> NotificationDto {
    NotificationDto {
        id: row.id,
        kind: row.kind,
        title: row.title,
        body: row.body,
        read: row.read_at.is_some(),
        created_at: row.created_at,
    }
}

/// The user's newest notifications and their unread count.
#[tracing::instrument(skip(state))]
pub async fn list(state: &AppState, user_id: Uuid) -> Result<NotificationListDto> {
    let items = repo::list(&state.db, user_id, LIST_SIZE).await?;
    let unread = repo::unread_count(&state.db, user_id).await?;
    Ok(NotificationListDto {
        unread,
        items: items.into_iter().map(dto).collect(),
    })
}

/// Marks one of the user's notifications read; 404 for anybody else's.
#[tracing::instrument(skip(state))]
pub async fn mark_read(state: &AppState, user_id: Uuid, id: Uuid) -> Result<NotificationDto> {
    repo::mark_read(&state.db, user_id, id, db::now())
        .await?
        .announce(state)
        .await
        .map(dto)
        .ok_or_else(|| AppError::not_found("notification").into())
}

/// Marks all the user's notifications read; how many were unread.
#[tracing::instrument(skip(state))]
pub async fn mark_all_read(state: &AppState, user_id: Uuid) -> Result<i64> {
    let marked = repo::mark_all_read(&state.db, user_id, db::now())
        .await?
        .announce(state)
        .await;
    Ok(i64::try_from(marked).unwrap_or(i64::MAX))
}
