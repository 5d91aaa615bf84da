//! The `jobs` table. Every UPDATE of a job names the status it expects and, for a running job,
//! the attempt it belongs to (a fencing token: a worker whose lease ran out and whose job was
//! taken by another cannot write over the other's attempt), and its caller checks that a row
//! changed. The claim is the one statement written per dialect.

use super::{with_db, with_db_read, Db};
use crate::domain::jobs::{JobStatus, JobType};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct JobRow {
    pub id: Uuid,
    #[sqlx(rename = "type", try_from = "String")]
    pub kind: JobType,
    #[sqlx(try_from = "String")]
    pub status: JobStatus,
    pub progress: i32,
    pub user_id: Option<Uuid>,
    /// The e-mail of `user_id` as it is now.
    pub user_email: Option<String>,
    pub metadata: Json<Value>,
    pub error: Option<String>,
    pub attempts: i32,
    pub max_attempts: i32,
    pub cancel_requested: bool,
    pub run_at: DateTime<Utc>,
    pub lease_until: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Whether a result (a report) is stored.
    pub has_result: bool,
}

/// The columns of [`JobRow`] (the result itself is read on its own).
macro_rules! columns {
    () => {
        "id, type, status, progress, user_id,
         (select email from users where users.id = jobs.user_id) as user_email,
         metadata, error, attempts, max_attempts,
         cancel_requested, run_at, lease_until, started_at, completed_at, created_at, updated_at,
         result is not null as has_result"
    };
}

pub struct NewJob<'a> {
    pub id: Uuid,
    pub kind: JobType,
    pub user_id: Option<Uuid>,
    pub metadata: &'a Value,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    /// At most one job per key, ever (a day's scheduled sync).
    pub dedupe_key: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// Inserts a job; `None` when a unique rule refused it (its `dedupe_key` was taken, or a usage
/// sync is already pending or running).
pub async fn insert(db: &Db, job: &NewJob<'_>) -> Result<Option<JobRow>, sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query_as(concat!(
            "insert into jobs (id, type, user_id, metadata, max_attempts, dedupe_key, run_at,
                 created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $8)
             on conflict do nothing
             returning ",
            columns!()
        ))
        .bind(job.id)
        .bind(job.kind.as_str())
        .bind(job.user_id)
        .bind(Json(job.metadata))
        .bind(job.max_attempts)
        .bind(job.dedupe_key)
        .bind(job.run_at)
        .bind(job.now)
        .fetch_optional(pool)
        .await
    })
}

pub async fn find(db: &Db, id: Uuid) -> Result<Option<JobRow>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_as(concat!("select ", columns!(), " from jobs where id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await
    })
}

/// The usage sync that is pending or running, if any (there is at most one).
pub async fn find_active_usage_sync(db: &Db) -> Result<Option<JobRow>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_as(concat!(
            "select ",
            columns!(),
            " from jobs where type = 'usage_sync' and status in ('pending', 'running')"
        ))
        .fetch_optional(pool)
        .await
    })
}

/// A finished report's CSV: `None` when there is no such job, `Some(None)` when it has none.
pub async fn find_result(db: &Db, id: Uuid) -> Result<Option<Option<String>>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_scalar("select result from jobs where id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
    })
}

/// Which jobs a list shows; `None` is any.
#[derive(Clone, Debug, Default)]
pub struct Filter<'a> {
    pub kind: Option<&'a str>,
    pub status: Option<&'a str>,
    pub user_id: Option<Uuid>,
}

/// Adds ` where ...` for the filters given (only those, so each combination is planned with
/// the index that fits it: by status, by user, or by creation time).
fn push_filter<DB: sqlx::Database>(query: &mut sqlx::QueryBuilder<DB>, filter: &Filter<'_>)
where
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Uuid: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut sep = " where ";
    if let Some(kind) = filter.kind {
        query.push(sep).push("type = ").push_bind(kind.to_string());
        sep = " and ";
    }
    if let Some(status) = filter.status {
        query
            .push(sep)
            .push("status = ")
            .push_bind(status.to_string());
        sep = " and ";
    }
    if let Some(user) = filter.user_id {
        query.push(sep).push("user_id = ").push_bind(user);
    }
}

/// Jobs newest first.
pub async fn list(
    db: &Db,
    filter: &Filter<'_>,
    limit: i64,
    offset: i64,
) -> Result<Vec<JobRow>, sqlx::Error> {
    with_db_read!(db, |pool| {
        let mut query = sqlx::QueryBuilder::new(concat!("select ", columns!(), " from jobs"));
        push_filter(&mut query, filter);
        query
            .push(" order by created_at desc, id desc limit ")
            .push_bind(limit)
            .push(" offset ")
            .push_bind(offset);
        query.build_query_as().fetch_all(pool).await
    })
}

/// How many jobs a filter matches.
pub async fn count(db: &Db, filter: &Filter<'_>) -> Result<i64, sqlx::Error> {
    with_db_read!(db, |pool| {
        let mut query = sqlx::QueryBuilder::new("select count(*) from jobs");
        push_filter(&mut query, filter);
        query.build_query_scalar().fetch_one(pool).await
    })
}

/// Pending jobs of a type, due or not, oldest first.
pub async fn list_pending(db: &Db, kind: JobType) -> Result<Vec<JobRow>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_as(concat!(
            "select ",
            columns!(),
            " from jobs where status = 'pending' and type = $1 order by run_at, created_at"
        ))
        .bind(kind.as_str())
        .fetch_all(pool)
        .await
    })
}

/// Takes the oldest due pending job (of a type the runner can do: `JobType::has_handler`, bound
/// as a list, not written into the SQL): it becomes `running`, its
/// attempt number goes up, and it is leased until `lease_until`. Concurrent claimers never take
/// the same job: PostgreSQL skips rows another claimer has locked; SQLite runs one writing
/// statement at a time and the update re-checks the status.
pub async fn claim_next(
    db: &Db,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<JobRow>, sqlx::Error> {
    match db {
        Db::Postgres(pool) => {
            sqlx::query_as(concat!(
                "update jobs set status = 'running', attempts = attempts + 1, lease_until = $2,
                     started_at = coalesce(started_at, $1), updated_at = $1
                 where id = (select id from jobs
                             where status = 'pending' and run_at <= $1
                               and type <> all($3)
                             order by run_at, created_at
                             for update skip locked
                             limit 1)
                   and status = 'pending'
                 returning ",
                columns!()
            ))
            .bind(now)
            .bind(lease_until)
            .bind(JobType::without_handler())
            .fetch_optional(pool)
            .await
        }
        Db::Sqlite(sqlite) => {
            let pool = &sqlite.writer;
            sqlx::query_as(concat!(
                "update jobs set status = 'running', attempts = attempts + 1, lease_until = $2,
                     started_at = coalesce(started_at, $1), updated_at = $1
                 where id = (select id from jobs
                             where status = 'pending' and run_at <= $1
                               and type not in (select value from json_each($3))
                             order by run_at, created_at
                             limit 1)
                   and status = 'pending'
                 returning ",
                columns!()
            ))
            .bind(now)
            .bind(lease_until)
            .bind(serde_json::Value::from(JobType::without_handler()).to_string())
            .fetch_optional(pool)
            .await
        }
    }
}

/// Extends a running attempt's lease. `None`: the attempt is no longer this worker's (its
/// lease ran out and it was rescued, or it ended); `Some(cancel_requested)` otherwise.
pub async fn heartbeat(
    db: &Db,
    id: Uuid,
    attempt: i32,
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<bool>, sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query_scalar(
            "update jobs set lease_until = $3, updated_at = $4
             where id = $1 and status = 'running' and attempts = $2
             returning cancel_requested",
        )
        .bind(id)
        .bind(attempt)
        .bind(lease_until)
        .bind(now)
        .fetch_optional(pool)
        .await
    })
}

/// Sets a running attempt's progress; false when the attempt is no longer this worker's.
pub async fn set_progress(
    db: &Db,
    id: Uuid,
    attempt: i32,
    progress: i32,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query(
            "update jobs set progress = $3, updated_at = $4
             where id = $1 and status = 'running' and attempts = $2",
        )
        .bind(id)
        .bind(attempt)
        .bind(progress.clamp(0, 100))
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() == 1)
    })
}

/// How an attempt ended.
pub enum End<'a> {
    Completed {
        metadata: &'a Value,
        result: Option<&'a str>,
    },
    Failed {
        error: &'a str,
    },
    /// Pending again, not before `run_at`.
    Retry {
        error: &'a str,
        run_at: DateTime<Utc>,
    },
    /// Pending again at once, the attempt not counted (a shutdown interrupted it).
    HandBack {
        error: &'a str,
    },
    Cancelled,
}

/// Ends a running attempt; false when it was no longer this worker's (nothing changed). A job
/// whose cancellation was asked for ends `cancelled` however its attempt ended (failed,
/// retried, handed back by a shutdown), even when the worker had not heard of it yet; one that
/// completed stays completed (its work is done).
pub async fn end_attempt(
    db: &Db,
    id: Uuid,
    attempt: i32,
    end: End<'_>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    with_db!(db, |pool| {
        let query = match &end {
            End::Completed { metadata, result } => sqlx::query(
                "update jobs set status = 'completed', progress = 100, metadata = $4,
                     result = $5, error = null, lease_until = null, completed_at = $3,
                     updated_at = $3
                 where id = $1 and status = 'running' and attempts = $2",
            )
            .bind(id)
            .bind(attempt)
            .bind(now)
            .bind(Json(*metadata))
            .bind(*result),
            End::Failed { error } => sqlx::query(
                "update jobs set status = case when cancel_requested then 'cancelled'
                                               else 'failed' end,
                     error = $4, lease_until = null, completed_at = $3, updated_at = $3
                 where id = $1 and status = 'running' and attempts = $2",
            )
            .bind(id)
            .bind(attempt)
            .bind(now)
            .bind(*error),
            End::Retry { error, run_at } => sqlx::query(
                "update jobs set status = case when cancel_requested then 'cancelled'
                                               else 'pending' end,
                     completed_at = case when cancel_requested then $3 else completed_at end,
                     progress = case when cancel_requested then progress else 0 end,
                     error = $4, run_at = $5, lease_until = null, updated_at = $3
                 where id = $1 and status = 'running' and attempts = $2",
            )
            .bind(id)
            .bind(attempt)
            .bind(now)
            .bind(*error)
            .bind(*run_at),
            End::HandBack { error } => sqlx::query(
                "update jobs set status = case when cancel_requested then 'cancelled'
                                               else 'pending' end,
                     attempts = case when cancel_requested then attempts else attempts - 1 end,
                     completed_at = case when cancel_requested then $3 else completed_at end,
                     progress = case when cancel_requested then progress else 0 end,
                     error = case when cancel_requested then null else $4 end,
                     run_at = $3, lease_until = null, updated_at = $3
                 where id = $1 and status = 'running' and attempts = $2",
            )
            .bind(id)
            .bind(attempt)
            .bind(now)
            .bind(*error),
            End::Cancelled => sqlx::query(
                "update jobs set status = 'cancelled', lease_until = null, completed_at = $3,
                     updated_at = $3
                 where id = $1 and status = 'running' and attempts = $2",
            )
            .bind(id)
            .bind(attempt)
            .bind(now),
        };
        query.execute(pool).await.map(|r| r.rows_affected() == 1)
    })
}

/// Cancels a pending job at once; false when it was not pending any more.
pub async fn cancel_pending(db: &Db, id: Uuid, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query(
            "update jobs set status = 'cancelled', completed_at = $2, updated_at = $2
             where id = $1 and status = 'pending'",
        )
        .bind(id)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() == 1)
    })
}

/// Asks a running job to stop; false when it was not running any more.
pub async fn request_cancel(db: &Db, id: Uuid, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query(
            "update jobs set cancel_requested = true, updated_at = $2
             where id = $1 and status = 'running'",
        )
        .bind(id)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() == 1)
    })
}

/// Rescues running jobs whose lease ran out before `now` (their worker died or hung): one
/// asked to stop ends `cancelled`, one with attempts left is pending again at once, the others
/// fail. Returns how many were rescued.
pub async fn rescue_expired(db: &Db, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    with_db!(db, |pool| {
        let mut tx = pool.begin().await?;
        let cancelled = sqlx::query(
            "update jobs set status = 'cancelled', lease_until = null, completed_at = $1,
                 updated_at = $1
             where status = 'running' and lease_until < $1 and cancel_requested",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let failed = sqlx::query(
            "update jobs set status = 'failed', lease_until = null, completed_at = $1,
                 updated_at = $1,
                 error = 'the worker stopped answering during the last attempt (its lease expired)'
             where status = 'running' and lease_until < $1 and attempts >= max_attempts",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let retried = sqlx::query(
            "update jobs set status = 'pending', lease_until = null, run_at = $1, progress = 0,
                 updated_at = $1,
                 error = 'the worker stopped answering (its lease expired); tried again'
             where status = 'running' and lease_until < $1 and attempts < max_attempts",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(cancelled + failed + retried)
    })
}

/// Deletes finished jobs that ended before `before`; returns how many.
pub async fn delete_finished_before(db: &Db, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query(
            "delete from jobs
             where status in ('completed', 'failed', 'cancelled') and completed_at < $1",
        )
        .bind(before)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })
}

/// Moves a job from `from` (and, for a running job, its attempt `attempt`) to `to`, with its
/// progress and error when given; false when the job was not in that state any more. The
/// caller has checked the move against the state machine.
#[allow(clippy::too_many_arguments)]
pub async fn set_status(
    db: &Db,
    id: Uuid,
    from: &str,
    attempt: i32,
    to: &str,
    progress: Option<i32>,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query(
            "update jobs set status = $4, progress = coalesce($5, progress),
                 error = coalesce($6, error), updated_at = $7,
                 lease_until = case when $4 = 'running' then lease_until else null end,
                 completed_at = case when $4 in ('completed', 'failed', 'cancelled')
                                     then $7 else completed_at end
             where id = $1 and status = $2 and attempts = $3",
        )
        .bind(id)
        .bind(from)
        .bind(attempt)
        .bind(to)
        .bind(progress.map(|p| p.clamp(0, 100)))
        .bind(error)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() == 1)
    })
}
