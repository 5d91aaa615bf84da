//! A user's notifications: the bell's list and unread count, and marking them read.

use super::error::AppError;
use crate::domain::notifications::NotificationKind;
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How many of the newest notifications the list shows.
pub const LIST_SIZE: i64 = 50;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NotificationDto {
    pub id: Uuid,
    pub kind: NotificationKind,
    pub title: String,
    pub body: String,
    pub read: bool,
    #[serde(with = "crate::domain::time::wire")]
    pub created_at: DateTime<Utc>,
}

/// The newest notifications, newest first, and how many are unread in all.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NotificationListDto {
    pub unread: i64,
    pub items: Vec<NotificationDto>,
}

#[server(prefix = "/api/fn", endpoint = "get_notifications")]
pub async fn get_notifications() -> Result<NotificationListDto, AppError> {
    let (state, me) = super::ssr::require_user().await?;
    Ok(crate::server::notifications::list(&state, me.user.id).await?)
}

#[server(prefix = "/api/fn", endpoint = "mark_notification_read")]
pub async fn mark_notification_read(id: Uuid) -> Result<NotificationDto, AppError> {
    let (state, me) = super::ssr::require_user().await?;
    Ok(crate::server::notifications::mark_read(&state, me.user.id, id).await?)
}

#[server(prefix = "/api/fn", endpoint = "mark_all_notifications_read")]
pub async fn mark_all_notifications_read() -> Result<i64, AppError> {
    let (state, me) = super::ssr::require_user().await?;
    Ok(crate::server::notifications::mark_all_read(&state, me.user.id).await?)
}
