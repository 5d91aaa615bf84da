//! The `signup_attempts` table: sign-ups counted per client address over the last hour, in
//! the database so that every instance sees the same count.

use super::{with_db, Db};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Counts a sign-up attempt, then answers how many the address made since `since`, this one
/// included: parallel attempts each see the others that went before, so no more than the
/// limit get through together. Attempts older than `since` are forgotten on the way, so the
/// table holds at most an hour of them.
pub async fn record_and_count(
    db: &Db,
    ip: &str,
    now: DateTime<Utc>,
    since: DateTime<Utc>,
) -> Result<(Uuid, i64), sqlx::Error> {
    let id = Uuid::new_v4();
    with_db!(db, |pool| {
        sqlx::query("delete from signup_attempts where created_at <= $1")
            .bind(since)
            .execute(pool)
            .await?;
        sqlx::query("insert into signup_attempts (id, ip, created_at) values ($1, $2, $3)")
            .bind(id)
            .bind(ip)
            .bind(now)
            .execute(pool)
            .await?;
        let count: i64 = sqlx::query_scalar(
            "select count(*) from signup_attempts where ip = $1 and created_at > $2",
        )
        .bind(ip)
        .bind(since)
        .fetch_one(pool)
        .await?;
        Ok((id, count))
    })
}

/// Uncounts a refused attempt.
pub async fn forget(db: &Db, id: Uuid) -> Result<(), sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query("delete from signup_attempts where id = $1")
            .bind(id)
            .execute(pool)
            .await?;
        Ok(())
    })
}
