//! The `users` table.

use super::{with_db, Db};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub role: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct NewUser<'a> {
    pub id: Uuid,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
    pub now: DateTime<Utc>,
}

/// Inserts a user; a taken e-mail is a unique violation for the caller to turn into a 409.
pub async fn insert(db: &Db, user: NewUser<'_>) -> Result<UserRow, sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query_as(
            "insert into users (id, email, password_hash, role, disabled, created_at, updated_at)
             values ($1, $2, $3, $4, false, $5, $5)
             returning id, email, password_hash, role, disabled, created_at, updated_at",
        )
        .bind(user.id)
        .bind(user.email)
        .bind(user.password_hash)
        .bind(user.role)
        .bind(user.now)
        .fetch_one(pool)
        .await
    })
}

pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query_as(
            "select id, email, password_hash, role, disabled, created_at, updated_at
             from users where email = $1",
        )
        .bind(email)
        .fetch_optional(pool)
        .await
    })
}

pub async fn find_by_id(db: &Db, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query_as(
            "select id, email, password_hash, role, disabled, created_at, updated_at
             from users where id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await
    })
}

/// Users by sign-up time, oldest first, a page at a time.
pub async fn list(db: &Db, limit: i64, offset: i64) -> Result<Vec<UserRow>, sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query_as(
            "select id, email, password_hash, role, disabled, created_at, updated_at
             from users order by created_at, email limit $1 offset $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await
    })
}

/// (all users, admins, disabled users)
pub async fn counts(db: &Db) -> Result<(i64, i64, i64), sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query_as(
            "select count(*),
                    coalesce(sum(case when role = 'admin' then 1 else 0 end), 0),
                    coalesce(sum(case when disabled then 1 else 0 end), 0)
             from users",
        )
        .fetch_one(pool)
        .await
    })
}

/// Changes role and/or the disabled flag; `None` leaves a field as it is. Disabling also ends
/// the user's sessions, in the same transaction, so a disabled user is signed out at once.
pub async fn update(
    db: &Db,
    id: Uuid,
    role: Option<&str>,
    disabled: Option<bool>,
    now: DateTime<Utc>,
) -> Result<Option<UserRow>, sqlx::Error> {
    with_db!(db, |pool| {
        let mut tx = pool.begin().await?;
        let row: Option<UserRow> = sqlx::query_as(
            "update users set role = coalesce($2, role), disabled = coalesce($3, disabled),
                    updated_at = $4
             where id = $1
             returning id, email, password_hash, role, disabled, created_at, updated_at",
        )
        .bind(id)
        .bind(role)
        .bind(disabled)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if disabled == Some(true) && row.is_some() {
            sqlx::query("delete from sessions where user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(row)
    })
}

/// Makes an existing user an enabled admin with a new password, in one statement.
pub async fn promote_to_admin(
    db: &Db,
    id: Uuid,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<UserRow>, sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query_as(
            "update users set role = 'admin', disabled = false, password_hash = $2, updated_at = $3
             where id = $1
             returning id, email, password_hash, role, disabled, created_at, updated_at",
        )
        .bind(id)
        .bind(password_hash)
        .bind(now)
        .fetch_optional(pool)
        .await
    })
}

/// Sets a new password hash; false when the user no longer exists.
pub async fn set_password(
    db: &Db,
    id: Uuid,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    with_db!(db, |pool| {
        let done =
            sqlx::query("update users set password_hash = $2, updated_at = $3 where id = $1")
                .bind(id)
                .bind(password_hash)
                .bind(now)
                .execute(pool)
                .await?;
        Ok(done.rows_affected() == 1)
    })
}
