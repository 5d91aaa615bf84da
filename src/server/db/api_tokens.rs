//! The `api_tokens` table: personal tokens for programs, sent as `Authorization: Bearer`.
//! Only the SHA-256 of a token is stored; the token itself is shown once, when created.

use super::users::UserRow;
use super::{with_db, with_db_read, Db};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ApiTokenRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub token_prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub struct NewApiToken<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: &'a str,
    pub token_hash: &'a str,
    pub token_prefix: &'a str,
    pub now: DateTime<Utc>,
}

pub async fn insert(db: &Db, token: NewApiToken<'_>) -> Result<ApiTokenRow, sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query_as(
            "insert into api_tokens (id, user_id, name, token_hash, token_prefix, created_at)
             values ($1, $2, $3, $4, $5, $6)
             returning id, user_id, name, token_prefix, created_at, last_used_at, revoked_at",
        )
        .bind(token.id)
        .bind(token.user_id)
        .bind(token.name)
        .bind(token.token_hash)
        .bind(token.token_prefix)
        .bind(token.now)
        .fetch_one(pool)
        .await
    })
}

/// A user's tokens that still work, newest first.
pub async fn list_active(db: &Db, user_id: Uuid) -> Result<Vec<ApiTokenRow>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_as(
            "select id, user_id, name, token_prefix, created_at, last_used_at, revoked_at
             from api_tokens where user_id = $1 and revoked_at is null
             order by created_at desc",
        )
        .bind(user_id)
        .fetch_all(pool)
        .await
    })
}

/// One of the user's own tokens; somebody else's is `None`, as if it did not exist.
pub async fn find_owned(
    db: &Db,
    id: Uuid,
    user_id: Uuid,
) -> Result<Option<ApiTokenRow>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_as(
            "select id, user_id, name, token_prefix, created_at, last_used_at, revoked_at
             from api_tokens where id = $1 and user_id = $2",
        )
        .bind(id)
        .bind(user_id)
        .fetch_optional(pool)
        .await
    })
}

/// Revokes a live token of the user's; false when it was already revoked meanwhile.
pub async fn revoke(
    db: &Db,
    id: Uuid,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    with_db!(db, |pool| {
        let done = sqlx::query(
            "update api_tokens set revoked_at = $3
             where id = $1 and user_id = $2 and revoked_at is null",
        )
        .bind(id)
        .bind(user_id)
        .bind(now)
        .execute(pool)
        .await?;
        Ok(done.rows_affected() == 1)
    })
}

/// The enabled owner of a live token, and the token's id.
pub async fn find_user_by_hash(
    db: &Db,
    token_hash: &str,
) -> Result<Option<TokenUser>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_as(
            "select t.id as token_id, t.last_used_at, u.id, u.email, u.password_hash, u.role,
                    u.disabled, u.approval, u.created_at, u.updated_at
             from api_tokens t join users u on u.id = t.user_id
             where t.token_hash = $1 and t.revoked_at is null and not u.disabled
               and u.approval = 'approved'",
        )
        .bind(token_hash)
        .fetch_optional(pool)
        .await
    })
}

/// A live token and its user.
#[derive(sqlx::FromRow)]
pub struct TokenUser {
    pub token_id: Uuid,
    pub last_used_at: Option<DateTime<Utc>>,
    #[sqlx(flatten)]
    pub user: UserRow,
}

/// How often a token's last use is written: busy programs do not write on every request.
const TOUCH_EVERY: Duration = Duration::minutes(1);

/// Records a token's use, at most once a [`TOUCH_EVERY`]: nothing is written (not even a
/// statement sent) when the last use read with the token is recent.
pub async fn touch(db: &Db, token: &TokenUser, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let stale = now - TOUCH_EVERY;
    if token.last_used_at.is_some_and(|at| at >= stale) {
        return Ok(());
    }
    with_db!(db, |pool| {
        sqlx::query(
            "update api_tokens set last_used_at = $2
             where id = $1 and (last_used_at is null or last_used_at < $3)",
        )
        .bind(token.token_id)
        .bind(now)
        .bind(stale)
        .execute(pool)
        .await?;
        Ok(())
    })
}
