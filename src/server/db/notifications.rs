//! The `notifications` table. A notification is inserted at most once per user, kind and key
//! (`notifications_once`): the insert that loses a race changes nothing and says so.

use super::{with_db, with_db_read, Db};
use crate::domain::notifications::NotificationKind;
use crate::server::cache::{Change, Changed};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct NotificationRow {
    pub id: Uuid,
    pub user_id: Uuid,
    #[sqlx(try_from = "String")]
    pub kind: NotificationKind,
    pub once_key: String,
    pub title: String,
    pub body: String,
    pub data: Json<Value>,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

macro_rules! columns {
    () => {
        "id, user_id, kind, once_key, title, body, data, read_at, created_at"
    };
}

pub struct NewNotification<'a> {
    pub user_id: Uuid,
    pub kind: NotificationKind,
    pub once_key: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    pub data: &'a Value,
    /// A lower threshold passed in the same step as a higher one: stored (so it is never told)
    /// as read, and not listed.
    pub superseded: bool,
    pub now: DateTime<Utc>,
}

/// Inserts the notification unless the user has one of this kind and key already: the row when
/// this call made it, `None` when it existed. (The unread count is cached with the usage.)
pub async fn insert_once(
    db: &Db,
    new: &NewNotification<'_>,
) -> Result<Changed<Option<NotificationRow>>, sqlx::Error> {
    let sql = concat!(
        "insert into notifications (id, user_id, kind, once_key, title, body, data, superseded,
             read_at, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         on conflict do nothing
         returning ",
        columns!()
    );
    with_db!(db, |pool| {
        sqlx::query_as(sql)
            .bind(Uuid::new_v4())
            .bind(new.user_id)
            .bind(new.kind.as_str())
            .bind(new.once_key)
            .bind(new.title)
            .bind(new.body)
            .bind(Json(new.data))
            .bind(new.superseded)
            .bind(new.superseded.then_some(new.now))
            .bind(new.now)
            .fetch_optional(pool)
            .await
    })
    .map(|row: Option<NotificationRow>| {
        Changed::when(row.is_some(), row, Change::Usage(new.user_id))
    })
}

/// The kinds of notification the user has for `once_key`.
pub async fn kinds_for(
    db: &Db,
    user_id: Uuid,
    once_key: &str,
) -> Result<Vec<NotificationKind>, sqlx::Error> {
    let kinds: Vec<String> = with_db_read!(db, |pool| {
        sqlx::query_scalar("select kind from notifications where user_id = $1 and once_key = $2")
            .bind(user_id)
            .bind(once_key)
            .fetch_all(pool)
            .await
    })?;
    Ok(kinds.into_iter().filter_map(|k| k.parse().ok()).collect())
}

/// The user's newest `limit` notifications, newest first (not those superseded).
pub async fn list(db: &Db, user_id: Uuid, limit: i64) -> Result<Vec<NotificationRow>, sqlx::Error> {
    let sql = concat!(
        "select ",
        columns!(),
        " from notifications where user_id = $1 and not superseded
         order by created_at desc, id desc limit $2"
    );
    with_db_read!(db, |pool| {
        sqlx::query_as(sql)
            .bind(user_id)
            .bind(limit)
            .fetch_all(pool)
            .await
    })
}

pub async fn unread_count(db: &Db, user_id: Uuid) -> Result<i64, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_scalar(
            "select count(*) from notifications where user_id = $1 and read_at is null",
        )
        .bind(user_id)
        .fetch_one(pool)
        .await
    })
}

/// Marks one of the user's notifications read (a read one stays as it was): the row, or `None`
/// when the user has no notification with this id.
pub async fn mark_read(
    db: &Db,
    user_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Changed<Option<NotificationRow>>, sqlx::Error> {
    let sql = concat!(
        "update notifications set read_at = coalesce(read_at, $3)
         where id = $1 and user_id = $2
         returning ",
        columns!()
    );
    with_db!(db, |pool| {
        sqlx::query_as(sql)
            .bind(id)
            .bind(user_id)
            .bind(now)
            .fetch_optional(pool)
            .await
    })
    .map(|row: Option<NotificationRow>| Changed::when(row.is_some(), row, Change::Usage(user_id)))
}

/// Marks all the user's notifications read; how many were unread.
pub async fn mark_all_read(
    db: &Db,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Changed<u64>, sqlx::Error> {
    let marked = with_db!(db, |pool| {
        sqlx::query("update notifications set read_at = $2 where user_id = $1 and read_at is null")
            .bind(user_id)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(Changed::when(marked > 0, marked, Change::Usage(user_id)))
}

/// How many notifications of `kind` and key the user has (tests count them).
pub async fn count(
    db: &Db,
    user_id: Uuid,
    kind: NotificationKind,
    once_key: &str,
) -> Result<i64, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_scalar(
            "select count(*) from notifications where user_id = $1 and kind = $2 and once_key = $3",
        )
        .bind(user_id)
        .bind(kind.as_str())
        .bind(once_key)
        .fetch_one(pool)
        .await
    })
}
