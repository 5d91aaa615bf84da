//! Usage in a quota period and the tokens held back for sends under way. Admission reads where
//! the user stands and holds back the send's tokens under a lock (see [`admit`]), so two sends
//! of one user are admitted one after the other.

use super::{with_db, Db};
use crate::domain::quota::{Admission, Refusal};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

/// Inputs of an admission decided under the lock.
pub struct Ask<'a> {
    pub user_id: Uuid,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Decides from the user's [`Standing`].
    pub decide: &'a (dyn Fn(Standing) -> Result<Admission, Refusal> + Sync),
}

/// Where a user stands: tokens used in the period, tokens held by sends under way, and the
/// limit that applies (their override, else their plan's; `None`: unlimited).
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Standing {
    pub used: i64,
    pub reserved: i64,
    pub limit: Option<i64>,
}

/// One statement, so one snapshot: a reply recorded meanwhile adds its usage and drops its
/// reservation in one commit, and the sums see that commit or neither does. (Two statements
/// under READ COMMITTED could miss both and admit too much.)
macro_rules! standing_sql {
    () => {
        "select
             cast(coalesce((select sum(tokens_used) from usage_history
                            where user_id = $1 and date >= $2 and date <= $3), 0) as bigint) as used,
             cast(coalesce((select sum(tokens) from quota_reservations
                            where user_id = $1 and expires_at > $4), 0) as bigint) as reserved,
             (select coalesce(u.token_limit_override, p.monthly_token_limit)
              from users u
              join plans p on p.id = coalesce(u.plan_id, (select d.id from plans d where d.is_default))
              where u.id = $1) as \"limit\""
    };
}

/// Reads where the user stands, decides, and holds back the admitted send's tokens, all on
/// `$conn` (a connection or a transaction holding the user's lock).
macro_rules! decide_and_hold {
    ($conn:ident, $ask:ident) => {
        async {
            let standing: Standing = sqlx::query_as(standing_sql!())
                .bind($ask.user_id)
                .bind($ask.from)
                .bind($ask.to)
                .bind($ask.now)
                .fetch_one(&mut *$conn)
                .await?;
            let admission = match ($ask.decide)(standing) {
                Ok(a) => a,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let id = (admission.reserve > 0).then(Uuid::new_v4);
            if let Some(id) = id {
                sqlx::query(
                    "insert into quota_reservations (id, user_id, tokens, created_at, expires_at)
                     values ($1, $2, $3, $4, $5)",
                )
                .bind(id)
                .bind($ask.user_id)
                .bind(admission.reserve)
                .bind($ask.now)
                .bind($ask.expires_at)
                .execute(&mut *$conn)
                .await?;
            }
            Ok::<_, sqlx::Error>(Ok((admission, id)))
        }
    };
}

/// Admits a send or refuses it; an admitted send's tokens are held under a new reservation id
/// (none when nothing needs holding, i.e. unlimited).
///
/// PostgreSQL: a transaction that first locks the user's row, so two sends of one user, on any
/// instance, are admitted one after the other. SQLite: the writer's connection, held from the
/// read to the insert, is the lock (every write of the server waits for it, and the database
/// has no other server); two statements instead of five.
pub async fn admit(
    db: &Db,
    ask: Ask<'_>,
) -> Result<Result<(Admission, Option<Uuid>), Refusal>, sqlx::Error> {
    match db {
        Db::Sqlite(sqlite) => {
            let mut conn = sqlite.writer.acquire().await?;
            decide_and_hold!(conn, ask).await
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query("select 1 from users where id = $1 for update")
                .bind(ask.user_id)
                .execute(&mut *tx)
                .await?;
            let decided = decide_and_hold!(tx, ask).await?;
            // Also after a refusal: nothing was written, and the lock goes with it.
            tx.commit().await?;
            Ok(decided)
        }
    }
}

/// Lets go of a reservation whose send recorded nothing.
pub async fn release(db: &Db, id: Uuid) -> Result<(), sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query("delete from quota_reservations where id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ())
    })
}

/// Moves a live reservation's expiry to `until` (a send still streaming).
pub async fn renew(db: &Db, id: Uuid, until: DateTime<Utc>) -> Result<(), sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query("update quota_reservations set expires_at = $2 where id = $1")
            .bind(id)
            .bind(until)
            .execute(pool)
            .await
            .map(|_| ())
    })
}
