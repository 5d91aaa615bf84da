//! The `users` table.

use super::{with_db, with_db_read, Db};
use crate::server::cache::{Change, Changed};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub role: String,
    pub disabled: bool,
    pub approval: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The columns of a [`UserRow`], in its order: one list for every statement that reads one.
macro_rules! user_columns {
    () => {
        "id, email, password_hash, role, disabled, approval, created_at, updated_at"
    };
}

pub struct NewUser<'a> {
    pub id: Uuid,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
    pub approval: &'a str,
    pub now: DateTime<Utc>,
}

/// Inserts a user; a taken e-mail is a unique violation for the caller to turn into a 409.
pub async fn insert(db: &Db, user: NewUser<'_>) -> Result<UserRow, sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query_as(concat!(
            "insert into users (",
            user_columns!(),
            ")
             values ($1, $2, $3, $4, false, $6, $5, $5)
             returning ",
            user_columns!()
        ))
        .bind(user.id)
        .bind(user.email)
        .bind(user.password_hash)
        .bind(user.role)
        .bind(user.now)
        .bind(user.approval)
        .fetch_one(pool)
        .await
    })
}

pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_as(concat!(
            "select ",
            user_columns!(),
            "
             from users where email = $1"
        ))
        .bind(email)
        .fetch_optional(pool)
        .await
    })
}

pub async fn find_by_id(db: &Db, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_as(concat!(
            "select ",
            user_columns!(),
            "
             from users where id = $1"
        ))
        .bind(id)
        .fetch_optional(pool)
        .await
    })
}

/// Users by sign-up time, oldest first, a page at a time.
pub async fn list(db: &Db, limit: i64, offset: i64) -> Result<Vec<UserRow>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_as(concat!(
            "select ",
            user_columns!(),
            "
             from users
             order by case when approval = 'pending' then 0 else 1 end, created_at, email
             limit $1 offset $2"
        ))
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await
    })
}

/// (all users, admins, disabled users)
pub async fn counts(db: &Db) -> Result<(i64, i64, i64), sqlx::Error> {
    with_db_read!(db, |pool| {
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

/// Decides a pending sign-up: `None` when there is no such user or it is not pending.
pub async fn decide_approval(
    db: &Db,
    id: Uuid,
    approval: &str,
    now: DateTime<Utc>,
) -> Result<Changed<Option<UserRow>>, sqlx::Error> {
    let row = with_db!(db, |pool| {
        sqlx::query_as(concat!(
            "update users set approval = $2, updated_at = $3
             where id = $1 and approval = 'pending'
             returning ",
            user_columns!()
        ))
        .bind(id)
        .bind(approval)
        .bind(now)
        .fetch_optional(pool)
        .await
    })?;
    Ok(Changed::when(row.is_some(), row, Change::User(id)))
}

/// Changes role and/or the disabled flag; `None` leaves a field as it is. Disabling also ends
/// the user's sessions, in the same transaction, so a disabled user is signed out at once.
pub async fn update(
    db: &Db,
    id: Uuid,
    role: Option<&str>,
    disabled: Option<bool>,
    now: DateTime<Utc>,
) -> Result<Changed<Option<UserRow>>, sqlx::Error> {
    let row = with_db!(db, |pool| {
        let mut tx = pool.begin().await?;
        let row: Option<UserRow> = sqlx::query_as(concat!(
            "update users set role = coalesce($2, role), disabled = coalesce($3, disabled),
                    updated_at = $4
             where id = $1
             returning ",
            user_columns!()
        ))
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
        Ok::<_, sqlx::Error>(row)
    })?;
    Ok(Changed::when(row.is_some(), row, Change::User(id)))
}

/// Makes an existing user an enabled, approved admin with a new password and ends their
/// sessions, in one transaction.
pub async fn promote_to_admin(
    db: &Db,
    id: Uuid,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<Changed<Option<UserRow>>, sqlx::Error> {
    let row = with_db!(db, |pool| {
        let mut tx = pool.begin().await?;
        let row: Option<UserRow> = sqlx::query_as(concat!(
            "update users set role = 'admin', disabled = false, approval = 'approved',
                 password_hash = $2, updated_at = $3
             where id = $1
             returning ",
            user_columns!()
        ))
        .bind(id)
        .bind(password_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        // Its password was reset: whoever was signed in with the old one is signed out.
        sqlx::query("delete from sessions where user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(row)
    })?;
    Ok(Changed::when(row.is_some(), row, Change::User(id)))
}

/// What a password change ended besides the old password.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ended {
    pub sessions: u64,
    pub api_tokens: u64,
}

/// Sets a new password hash and, in the same transaction, ends the user's sessions but the
/// one in `keep`, and revokes their API tokens when asked: a change half done is impossible.
/// `None` when the user no longer exists.
pub async fn set_password(
    db: &Db,
    id: Uuid,
    password_hash: &str,
    keep_session: Option<&str>,
    revoke_api_tokens: bool,
    now: DateTime<Utc>,
) -> Result<Changed<Option<Ended>>, sqlx::Error> {
    let ended = with_db!(db, |pool| {
        let mut tx = pool.begin().await?;
        let done =
            sqlx::query("update users set password_hash = $2, updated_at = $3 where id = $1")
                .bind(id)
                .bind(password_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() != 1 {
            return Ok(Changed::nothing(None));
        }
        let sessions = sqlx::query(
            "delete from sessions where user_id = $1 and ($2 is null or id_hash <> $2)",
        )
        .bind(id)
        .bind(keep_session)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let api_tokens = if revoke_api_tokens {
            sqlx::query(
                "update api_tokens set revoked_at = $2 where user_id = $1 and revoked_at is null",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        } else {
            0
        };
        tx.commit().await?;
        Ok::<_, sqlx::Error>(Some(Ended {
            sessions,
            api_tokens,
        }))
    })?;
    Ok(Changed::when(ended.is_some(), ended, Change::User(id)))
}

/// Changes a user's plan (`Some(None)`: back to the default plan) and/or personal limit
/// (`Some(None)`: cleared); a plan change also settles their pending plan request. `false`
/// when there is no such user.
pub async fn set_quota(
    db: &Db,
    id: Uuid,
    plan: Option<Option<Uuid>>,
    limit_override: Option<Option<i64>>,
    now: DateTime<Utc>,
) -> Result<Changed<bool>, sqlx::Error> {
    let done = with_db!(db, |pool| {
        sqlx::query(
            "update users set
                 plan_id = case when $2 then $3 else plan_id end,
                 requested_plan_id = case when $2 then null else requested_plan_id end,
                 plan_requested_at = case when $2 then null else plan_requested_at end,
                 token_limit_override = case when $4 then $5 else token_limit_override end,
                 updated_at = $6
             where id = $1",
        )
        .bind(id)
        .bind(plan.is_some())
        .bind(plan.flatten())
        .bind(limit_override.is_some())
        .bind(limit_override.flatten())
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(Changed::when(done == 1, done == 1, Change::Usage(id)))
}

/// Records that the user asks for another plan (replacing an earlier request).
pub async fn request_plan(
    db: &Db,
    id: Uuid,
    plan_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query("update users set requested_plan_id = $2, plan_requested_at = $3 where id = $1")
            .bind(id)
            .bind(plan_id)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
    })
}

/// A user as the admin list shows them: plan, override, request, and the period's usage.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserQuotaRow {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub plan_id: Uuid,
    pub plan_name: String,
    pub plan_limit: Option<i64>,
    pub token_limit_override: Option<i64>,
    pub requested_plan_id: Option<Uuid>,
    pub requested_plan_name: Option<String>,
    pub plan_requested_at: Option<DateTime<Utc>>,
    pub tokens_used: i64,
    pub cost_nanos: i64,
    /// Tokens of the days from `recent_from` on (the forecast's last 7 days).
    pub recent_tokens: i64,
}

/// Users (oldest first) with their plan and their usage from `from` to `to` (the period) and
/// from `recent_from` on (the last 7 days, for the forecast).
pub async fn list_with_usage(
    db: &Db,
    limit: i64,
    offset: i64,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    recent_from: chrono::NaiveDate,
) -> Result<Vec<UserQuotaRow>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_as(
            "select u.id, u.email, u.password_hash, u.role, u.disabled, u.approval, u.created_at, u.updated_at,
                    p.id as plan_id, p.name as plan_name, p.monthly_token_limit as plan_limit,
                    u.token_limit_override, u.requested_plan_id, r.name as requested_plan_name,
                    u.plan_requested_at,
                    cast(coalesce(t.tokens_used, 0) as bigint) as tokens_used,
                    cast(coalesce(t.cost_nanos, 0) as bigint) as cost_nanos,
                    cast(coalesce(t.recent_tokens, 0) as bigint) as recent_tokens
             from users u
             left join (select h.user_id,
                               sum(case when h.date >= $3 then h.tokens_used else 0 end) as tokens_used,
                               sum(case when h.date >= $3 then h.cost_nanos else 0 end) as cost_nanos,
                               sum(case when h.date >= $5 then h.tokens_used else 0 end) as recent_tokens
                        from usage_history h
                        where h.date >= $6 and h.date <= $4
                        group by h.user_id) t on t.user_id = u.id
             join plans p on p.id = coalesce(u.plan_id, (select d.id from plans d where d.is_default))
             left join plans r on r.id = u.requested_plan_id
             order by case when u.approval = 'pending' then 0 else 1 end, u.created_at, u.id
             limit $1 offset $2",
        )
        .bind(limit)
        .bind(offset)
        .bind(from)
        .bind(to)
        .bind(recent_from)
        .bind(from.min(recent_from))
        .fetch_all(pool)
        .await
    })
}
