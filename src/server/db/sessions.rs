//! The `sessions` table: server-side log-in sessions. The cookie holds a random secret; only its
//! SHA-256 is stored, so a copy of the database does not let anyone sign in.

use super::users::UserRow;
use super::{with_db, with_db_read, Db};
use crate::server::cache::{Change, Changed};
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub async fn insert(
    db: &Db,
    id_hash: &str,
    user_id: Uuid,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query(
            "insert into sessions (id_hash, user_id, created_at, expires_at) values ($1, $2, $3, $4)",
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(pool)
        .await?;
        Ok(())
    })
}

/// A session's user and when the session ends.
#[derive(Debug, sqlx::FromRow)]
pub struct SessionUserRow {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub expires_at: DateTime<Utc>,
}

/// The enabled user a live session belongs to.
pub async fn find_user(
    db: &Db,
    id_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<SessionUserRow>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_as(
            "select u.id, u.email, u.password_hash, u.role, u.disabled, u.approval, u.created_at, u.updated_at,
                    s.expires_at
             from sessions s join users u on u.id = s.user_id
             where s.id_hash = $1 and s.expires_at > $2 and not u.disabled
               and u.approval = 'approved'",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(pool)
        .await
    })
}

pub async fn delete(db: &Db, id_hash: &str) -> Result<Changed<()>, sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query("delete from sessions where id_hash = $1")
            .bind(id_hash)
            .execute(pool)
            .await?;
        Ok(Changed::new((), Change::Session(id_hash.to_string())))
    })
}

/// Removes sessions that have expired (called now and then at log-in).
pub async fn delete_expired(db: &Db, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    with_db!(db, |pool| {
        let done = sqlx::query("delete from sessions where expires_at <= $1")
            .bind(now)
            .execute(pool)
            .await?;
        Ok(done.rows_affected())
    })
}

/// Ends every session of a user except `keep` (the caller's own, when changing the password).
pub async fn delete_others(db: &Db, user_id: Uuid, keep: Option<&str>) -> Result<u64, sqlx::Error> {
    with_db!(db, |pool| {
        let done = sqlx::query(
            "delete from sessions where user_id = $1 and ($2 is null or id_hash <> $2)",
        )
        .bind(user_id)
        .bind(keep)
        .execute(pool)
        .await?;
        Ok(done.rows_affected())
    })
}
