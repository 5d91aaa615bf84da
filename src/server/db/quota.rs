//! Usage in a quota period and the tokens held back for sends under way. Admission reads where
//! the user stands and holds back the send's tokens under a lock (see [`admit`]), so two sends
//! of one user are admitted one after the other.

use super::Db;
use crate::domain::quota::{Admission, Refusal};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;
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
/// under READ COMMITTED could miss both and admit too much.) `$reserved`: the tokens held, a
/// sum over `quota_reservations` on PostgreSQL; SQLite's are in memory ([`Holds`]).
macro_rules! standing_sql {
    ($reserved:literal) => {
        concat!(
            "select
                 cast(coalesce((select sum(tokens_used) from usage_history
                                where user_id = $1 and date >= $2 and date <= $3), 0)
                      as bigint) as used, ",
            $reserved,
            " as reserved,
                 (select coalesce(u.token_limit_override, p.monthly_token_limit)
                  from users u
                  join plans p
                      on p.id = coalesce(u.plan_id, (select d.id from plans d where d.is_default))
                  where u.id = $1) as \"limit\""
        )
    };
}

/// The standing query with `$reserved` ([`standing_sql!`]), bound to an [`Ask`] (`$4`, the
/// time reservations must outlive, goes unused where nothing is summed over the table).
macro_rules! standing_query {
    ($reserved:literal, $ask:expr) => {
        sqlx::query_as::<_, Standing>(standing_sql!($reserved))
            .bind($ask.user_id)
            .bind($ask.from)
            .bind($ask.to)
            .bind($ask.now)
    };
}

/// Admits a send or refuses it; an admitted send's tokens are held under a new reservation id
/// (none when nothing needs holding, i.e. unlimited).
///
/// PostgreSQL: a transaction that first locks the user's row, so two sends of one user, on any
/// instance, are admitted one after the other, and the reservation a row of
/// `quota_reservations`. SQLite: see [`Holds`]; no write at all.
pub async fn admit(
    db: &Db,
    ask: Ask<'_>,
) -> Result<Result<(Admission, Option<Uuid>), Refusal>, sqlx::Error> {
    match db {
        Db::Sqlite(sqlite) => sqlite.holds.admit(&sqlite.readers, ask).await,
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            // `no key update`: admissions of one user still wait for each other, but not for
            // the foreign-key checks of a reply being recorded (KEY SHARE on the same row),
            // which may be waiting for a usage sync that waits for this lock: with FOR UPDATE
            // that was a deadlock, seen under ten syncs during ten replies.
            sqlx::query("select 1 from users where id = $1 for no key update")
                .bind(ask.user_id)
                .execute(&mut *tx)
                .await?;
            let standing = standing_query!(
                "cast(coalesce((select sum(tokens) from quota_reservations
                                where user_id = $1 and expires_at > $4), 0) as bigint)",
                ask
            )
            .fetch_one(&mut *tx)
            .await?;
            let admission = match (ask.decide)(standing) {
                Ok(a) => a,
                // Nothing was written; the lock goes with the transaction.
                Err(refusal) => return Ok(Err(refusal)),
            };
            let id = (admission.reserve > 0).then(Uuid::new_v4);
            if let Some(id) = id {
                sqlx::query(
                    "insert into quota_reservations (id, user_id, tokens, created_at, expires_at)
                     values ($1, $2, $3, $4, $5)",
                )
                .bind(id)
                .bind(ask.user_id)
                .bind(admission.reserve)
                .bind(ask.now)
                .bind(ask.expires_at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(Ok((admission, id)))
        }
    }
}

/// Lets go of a reservation whose send recorded nothing.
pub async fn release(db: &Db, id: Uuid) -> Result<(), sqlx::Error> {
    match db {
        Db::Sqlite(sqlite) => {
            sqlite.holds.settle(id, 0);
            Ok(())
        }
        Db::Postgres(pool) => sqlx::query("delete from quota_reservations where id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ()),
    }
}

/// Moves a live reservation's expiry to `until` (a send still streaming).
pub async fn renew(db: &Db, id: Uuid, until: DateTime<Utc>) -> Result<(), sqlx::Error> {
    match db {
        Db::Sqlite(sqlite) => {
            sqlite.holds.renew(id, until);
            Ok(())
        }
        Db::Postgres(pool) => {
            sqlx::query("update quota_reservations set expires_at = $2 where id = $1")
                .bind(id)
                .bind(until)
                .execute(pool)
                .await
                .map(|_| ())
        }
    }
}

/// How many of the user's reservations hold tokens at `now` (what the tests watch).
pub async fn live(db: &Db, user_id: Uuid, now: DateTime<Utc>) -> Result<i64, sqlx::Error> {
    match db {
        Db::Sqlite(sqlite) => Ok(sqlite.holds.live(user_id, now)),
        Db::Postgres(pool) => {
            sqlx::query_scalar(
                "select count(*) from quota_reservations where user_id = $1 and expires_at > $2",
            )
            .bind(user_id)
            .bind(now)
            .fetch_one(pool)
            .await
        }
    }
}

/// SQLite's reservations, kept in this process's memory. SQLite serves one instance (its
/// database is a local file), so every send of the database passes through here, and a
/// reservation written to the file cost two writes per send on the one writer every write
/// waits for. A reservation lives as long as its send, which dies with the process: nothing
/// is lost by not storing it.
///
/// The guarantee is PostgreSQL's (no two sends admitted on the same tokens), without a lock
/// held across the read. An admission notes how many tokens the user's replies have recorded
/// so far (`recorded`, counted as each hold is settled), reads the usage, and then, in one
/// step under the mutex, counts the tokens held plus the tokens recorded since its note,
/// decides and holds its own. A reply's record commits its usage before its hold is settled,
/// so a reply missing from the usage read is either still held or recorded since the note:
/// counted once or twice (too strict for a moment), never not at all. Two admissions of one
/// user decide one after the other, each seeing the other's hold.
#[derive(Debug, Default)]
pub struct Holds {
    inner: std::sync::Mutex<HoldsInner>,
}

#[derive(Debug, Default)]
struct HoldsInner {
    users: HashMap<Uuid, UserHolds>,
    /// Each live hold's user.
    owner: HashMap<Uuid, Uuid>,
}

#[derive(Debug, Default)]
struct UserHolds {
    held: Vec<Hold>,
    /// Tokens recorded by this user's settled holds, since the entry was made.
    recorded: i64,
    /// Admissions between their note and their decision (the entry stays while there are any).
    admitting: usize,
}

#[derive(Debug)]
struct Hold {
    id: Uuid,
    tokens: i64,
    expires_at: DateTime<Utc>,
}

impl Holds {
    fn inner(&self) -> std::sync::MutexGuard<'_, HoldsInner> {
        // A panic while holding the lock leaves consistent maps (no call in it can panic
        // half-way through a change that matters: the decision runs before any change).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn admit(
        &self,
        readers: &sqlx::SqlitePool,
        ask: Ask<'_>,
    ) -> Result<Result<(Admission, Option<Uuid>), Refusal>, sqlx::Error> {
        let noted = {
            let mut inner = self.inner();
            let user = inner.users.entry(ask.user_id).or_default();
            user.admitting += 1;
            user.recorded
        };
        // Counted out however the read ends, the send's future dropped mid-read included
        // (a client gone): else the user's entry would never be let go.
        let admitting = Admitting {
            holds: self,
            user_id: ask.user_id,
        };
        let read = standing_query!("cast(0 as bigint)", ask)
            .fetch_one(readers)
            .await;
        // Read: counted out below, in the same step as the decision.
        std::mem::forget(admitting);
        let mut inner = self.inner();
        let inner = &mut *inner;
        let user = inner.users.entry(ask.user_id).or_default();
        user.admitting -= 1;
        let decided = read.map(|mut standing| {
            user.held.retain(|h| {
                h.expires_at > ask.now || {
                    inner.owner.remove(&h.id);
                    false
                }
            });
            standing.reserved =
                user.held.iter().map(|h| h.tokens).sum::<i64>() + (user.recorded - noted);
            let admission = (ask.decide)(standing)?;
            let id = (admission.reserve > 0).then(Uuid::new_v4);
            if let Some(id) = id {
                inner.owner.insert(id, ask.user_id);
                user.held.push(Hold {
                    id,
                    tokens: admission.reserve,
                    expires_at: ask.expires_at,
                });
            }
            Ok((admission, id))
        });
        Self::forget_if_idle(inner, ask.user_id);
        decided
    }

    /// A user with nothing held and no admission under way takes no memory (nobody has noted
    /// their `recorded`, so it can start again from 0).
    fn forget_if_idle(inner: &mut HoldsInner, user_id: Uuid) {
        if inner
            .users
            .get(&user_id)
            .is_some_and(|u| u.held.is_empty() && u.admitting == 0)
        {
            inner.users.remove(&user_id);
        }
    }

    /// The hold `id` goes: its send's usage is committed (`recorded` tokens of it), or the
    /// send recorded nothing (0).
    pub fn settle(&self, id: Uuid, recorded: i64) {
        let mut inner = self.inner();
        let inner = &mut *inner;
        let Some(user_id) = inner.owner.remove(&id) else {
            return;
        };
        if let Some(user) = inner.users.get_mut(&user_id) {
            user.held.retain(|h| h.id != id);
            user.recorded += recorded;
        }
        Self::forget_if_idle(inner, user_id);
    }

    fn renew(&self, id: Uuid, until: DateTime<Utc>) {
        let mut inner = self.inner();
        let Some(user) = inner.owner.get(&id).copied() else {
            return;
        };
        if let Some(hold) = inner
            .users
            .get_mut(&user)
            .and_then(|u| u.held.iter_mut().find(|h| h.id == id))
        {
            hold.expires_at = until;
        }
    }

    fn live(&self, user_id: Uuid, now: DateTime<Utc>) -> i64 {
        self.inner().users.get(&user_id).map_or(0, |u| {
            u.held.iter().filter(|h| h.expires_at > now).count() as i64
        })
    }
}

/// An admission between its note and its decision; dropped there (its send's future dropped),
/// it counts itself out.
struct Admitting<'a> {
    holds: &'a Holds,
    user_id: Uuid,
}

impl Drop for Admitting<'_> {
    fn drop(&mut self) {
        let mut inner = self.holds.inner();
        if let Some(user) = inner.users.get_mut(&self.user_id) {
            user.admitting -= 1;
        }
        Holds::forget_if_idle(&mut inner, self.user_id);
    }
}
