//! The `login_failures` table: failed log-ins, counted per account and per client address over
//! a sliding window. Kept in the database so that every app instance sees the same counts.

use super::{with_db, with_db_read, Db};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Counts a log-in attempt (as a failure until it succeeds); returns its id.
pub async fn record(
    db: &Db,
    email: &str,
    ip: &str,
    now: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::new_v4();
    with_db!(db, |pool| {
        sqlx::query(
            "insert into login_failures (id, email, ip, created_at) values ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(email)
        .bind(ip)
        .bind(now)
        .execute(pool)
        .await?;
        Ok(id)
    })
}

/// Uncounts an attempt that succeeded.
pub async fn forget(db: &Db, id: Uuid) -> Result<(), sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query("delete from login_failures where id = $1")
            .bind(id)
            .execute(pool)
            .await?;
        Ok(())
    })
}

/// (failures for this account, failures from this address) since `since`.
pub async fn count_since(
    db: &Db,
    email: &str,
    ip: &str,
    since: DateTime<Utc>,
) -> Result<(i64, i64), sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_as(
            "select (select count(*) from login_failures where email = $1 and created_at > $3),
                    (select count(*) from login_failures where ip = $2 and created_at > $3)",
        )
        .bind(email)
        .bind(ip)
        .bind(since)
        .fetch_one(pool)
        .await
    })
}

/// Forgets an account's failures after a successful log-in, and everyone's old ones.
pub async fn clear(db: &Db, email: &str, older_than: DateTime<Utc>) -> Result<(), sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query("delete from login_failures where email = $1 or created_at <= $2")
            .bind(email)
            .bind(older_than)
            .execute(pool)
            .await?;
        Ok(())
    })
}
