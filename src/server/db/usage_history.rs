//! The `usage_history` table: one row per user per day (of the configured timezone), added to
//! by every completion as it happens (see [`super::exchanges`]).

use super::{with_db, with_db_read, Db};
use crate::domain::chat::ModelUsageMap;
use crate::domain::usage::{DayUsage, HistoryDay};
use crate::server::cache::{Change, Changed};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;
use uuid::Uuid;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UsageDayRow {
    pub user_id: Uuid,
    pub date: NaiveDate,
    pub tokens_used: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub requests_count: i64,
    pub cost_nanos: i64,
    pub model_usage: Json<ModelUsageMap>,
    pub source: String,
    pub drifted: bool,
    /// LiteLLM's tokens at the last sync (`None`: never synced).
    pub litellm_tokens_used: Option<i64>,
}

impl From<UsageDayRow> for HistoryDay {
    fn from(row: UsageDayRow) -> Self {
        HistoryDay {
            date: row.date,
            usage: DayUsage {
                tokens: row.tokens_used,
                prompt_tokens: row.prompt_tokens,
                completion_tokens: row.completion_tokens,
                requests: row.requests_count,
                cost_nanos: row.cost_nanos,
                models: row.model_usage.0,
            },
            source: row.source,
            drifted: row.drifted,
        }
    }
}

/// A user's rows from `from` to `to` (inclusive), oldest first.
pub async fn list_range(
    db: &Db,
    user_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<UsageDayRow>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_as(
            "select user_id, date, tokens_used, prompt_tokens, completion_tokens,
                    requests_count, cost_nanos, model_usage, source, drifted,
                    litellm_tokens_used
             from usage_history where user_id = $1 and date >= $2 and date <= $3
             order by date",
        )
        .bind(user_id)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await
    })
}

/// Rows per INSERT of a sync: 16 parameters a row stays below SQLite's 32,766 and
/// PostgreSQL's 65,535 parameters a statement.
const DAYS_PER_STATEMENT: usize = 1000;

/// LiteLLM's figures for one day, as a sync writes them.
pub struct SyncedDay<'a> {
    pub date: NaiveDate,
    pub usage: &'a DayUsage,
}

/// Writes a sync of the user's days from `from` to `to` in one transaction: each day LiteLLM
/// reported and every other stored day of the range, and the user's `usage_synced_at`.
///
/// LiteLLM's figures are shown for a day unless the app recorded more tokens than LiteLLM did
/// (LiteLLM writes its totals a few seconds late, or it missed something): then the app's stay,
/// so a sync never lowers the usage a quota is checked against below what the app saw. Either
/// way LiteLLM's figures are kept, and the day is marked drifted when LiteLLM's tokens,
/// requests or cost differ from the app's by more than 1% of LiteLLM's. The choice is made in
/// the statement, against the row as it is then, so a reply recorded meanwhile is not lost.
pub async fn write_sync(
    db: &Db,
    user_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
    days: &[SyncedDay<'_>],
    now: DateTime<Utc>,
) -> Result<Changed<()>, sqlx::Error> {
    with_db!(db, |pool| {
        let mut tx = pool.begin().await?;
        // A write first: PostgreSQL locks the user's row (admissions wait for the sync, and
        // the other way round), SQLite takes its write lock.
        sqlx::query("update users set usage_synced_at = $2, usage_sync_error = null where id = $1")
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        // All the days in as few statements as the bind limits allow (one for a normal sync).
        for chunk in days.chunks(DAYS_PER_STATEMENT) {
            let mut insert = sqlx::QueryBuilder::new(
                "insert into usage_history (id, user_id, date, tokens_used, prompt_tokens,
                     completion_tokens, requests_count, cost_nanos, model_usage, source,
                     litellm_tokens_used, litellm_requests_count, litellm_cost_nanos, drifted,
                     synced_at, created_at, updated_at) ",
            );
            insert.push_values(chunk, |mut row, day| {
                let u = day.usage;
                row.push_bind(Uuid::new_v4())
                    .push_bind(user_id)
                    .push_bind(day.date)
                    .push_bind(u.tokens)
                    .push_bind(u.prompt_tokens)
                    .push_bind(u.completion_tokens)
                    .push_bind(u.requests)
                    .push_bind(u.cost_nanos)
                    .push_bind(Json(u.models.clone()))
                    .push("'litellm'")
                    .push_bind(u.tokens)
                    .push_bind(u.requests)
                    .push_bind(u.cost_nanos)
                    // A new row: the app recorded nothing that day.
                    .push_bind(u.tokens > 0 || u.requests > 0 || u.cost_nanos > 0)
                    .push_bind(now)
                    .push_bind(now)
                    .push_bind(now);
            });
            insert.push(
                " on conflict (user_id, date) do update set
                     tokens_used = case when excluded.tokens_used >= usage_history.app_tokens_used
                         then excluded.tokens_used else usage_history.app_tokens_used end,
                     prompt_tokens = case when excluded.tokens_used >= usage_history.app_tokens_used
                         then excluded.prompt_tokens else usage_history.app_prompt_tokens end,
                     completion_tokens = case when excluded.tokens_used >= usage_history.app_tokens_used
                         then excluded.completion_tokens else usage_history.app_completion_tokens end,
                     requests_count = case when excluded.tokens_used >= usage_history.app_tokens_used
                         then excluded.requests_count else usage_history.app_requests_count end,
                     cost_nanos = case when excluded.tokens_used >= usage_history.app_tokens_used
                         then excluded.cost_nanos else usage_history.app_cost_nanos end,
                     model_usage = case when excluded.tokens_used >= usage_history.app_tokens_used
                         then excluded.model_usage else usage_history.app_model_usage end,
                     source = case when excluded.tokens_used >= usage_history.app_tokens_used
                         then 'litellm' else 'app' end,
                     litellm_tokens_used = excluded.litellm_tokens_used,
                     litellm_requests_count = excluded.litellm_requests_count,
                     litellm_cost_nanos = excluded.litellm_cost_nanos,
                     drifted = abs(excluded.tokens_used - usage_history.app_tokens_used) * 100
                                   > excluded.tokens_used
                               or abs(excluded.requests_count - usage_history.app_requests_count) * 100
                                   > excluded.requests_count
                               or abs(excluded.cost_nanos - usage_history.app_cost_nanos) * 100
                                   > excluded.cost_nanos,
                     synced_at = excluded.synced_at,
                     updated_at = excluded.updated_at",
            );
            insert.build().execute(&mut *tx).await?;
        }
        // Stored days LiteLLM did not report: it saw nothing, the app's figures stay.
        sqlx::query(
            "update usage_history set
                 tokens_used = app_tokens_used, prompt_tokens = app_prompt_tokens,
                 completion_tokens = app_completion_tokens, requests_count = app_requests_count,
                 cost_nanos = app_cost_nanos, model_usage = app_model_usage, source = 'app',
                 litellm_tokens_used = 0, litellm_requests_count = 0, litellm_cost_nanos = 0,
                 drifted = (app_tokens_used > 0 or app_requests_count > 0 or app_cost_nanos > 0),
                 synced_at = $4, updated_at = $4
             where user_id = $1 and date >= $2 and date <= $3
               and (synced_at is null or synced_at <> $4)",
        )
        .bind(user_id)
        .bind(from)
        .bind(to)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    })?;
    Ok(Changed::new((), Change::Usage(user_id)))
}

/// Records why a user's sync failed (their usage is left as it was).
pub async fn write_sync_failure(db: &Db, user_id: Uuid, error: &str) -> Result<(), sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query("update users set usage_sync_error = $2 where id = $1")
            .bind(user_id)
            .bind(error)
            .execute(pool)
            .await
            .map(drop)
    })
}

/// When a user's usage was last synced, and the last failure since.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SyncState {
    pub email: String,
    pub usage_synced_at: Option<DateTime<Utc>>,
    pub usage_sync_error: Option<String>,
}

/// `None`: no such user.
pub async fn find_sync_state(db: &Db, user_id: Uuid) -> Result<Option<SyncState>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_as("select email, usage_synced_at, usage_sync_error from users where id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await
    })
}

/// The ids of the users a sync of everyone covers: the active ones, oldest first.
pub async fn list_active_user_ids(db: &Db) -> Result<Vec<Uuid>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_scalar("select id from users where not disabled order by created_at, id")
            .fetch_all(pool)
            .await
    })
}

/// Everyone's usage on one day.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DailyTotalRow {
    pub date: NaiveDate,
    pub tokens_used: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub requests_count: i64,
    pub cost_nanos: i64,
    /// Users whose day is marked drifted.
    pub drifted: i64,
}

/// Everyone's days from `from` to `to` with any row, oldest first.
pub async fn list_daily_totals(
    db: &Db,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DailyTotalRow>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_as(
            "select date,
                    cast(sum(tokens_used) as bigint) as tokens_used,
                    cast(sum(prompt_tokens) as bigint) as prompt_tokens,
                    cast(sum(completion_tokens) as bigint) as completion_tokens,
                    cast(sum(requests_count) as bigint) as requests_count,
                    cast(sum(cost_nanos) as bigint) as cost_nanos,
                    cast(sum(case when drifted then 1 else 0 end) as bigint) as drifted
             from usage_history where date >= $1 and date <= $2
             group by date order by date",
        )
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await
    })
}

/// A user's sums over a range.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserTotalRow {
    pub user_id: Uuid,
    pub email: String,
    pub tokens_used: i64,
    pub requests_count: i64,
    pub cost_nanos: i64,
}

/// The `limit` users with the most tokens from `from` to `to`.
pub async fn list_top_users(
    db: &Db,
    from: NaiveDate,
    to: NaiveDate,
    limit: i64,
) -> Result<Vec<UserTotalRow>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_as(
            "select h.user_id, u.email,
                    cast(sum(h.tokens_used) as bigint) as tokens_used,
                    cast(sum(h.requests_count) as bigint) as requests_count,
                    cast(sum(h.cost_nanos) as bigint) as cost_nanos
             from usage_history h join users u on u.id = h.user_id
             where h.date >= $1 and h.date <= $2
             group by h.user_id, u.email
             order by tokens_used desc, u.email
             limit $3",
        )
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}

/// One model's sums over a range.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ModelTotalRow {
    pub model: String,
    pub tokens: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub requests: i64,
    pub cost_nanos: i64,
}

/// Everyone's usage per model from `from` to `to`, summed in the database from the per-model
/// JSON of each day (the one statement written per dialect).
pub async fn list_model_totals(
    db: &Db,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<ModelTotalRow>, sqlx::Error> {
    match db {
        Db::Sqlite(sqlite) => {
            let pool = &sqlite.readers;
            sqlx::query_as(
                "select j.key as model,
                        cast(sum(json_extract(j.value, '$.tokens')) as integer) as tokens,
                        cast(sum(json_extract(j.value, '$.prompt_tokens')) as integer) as prompt_tokens,
                        cast(sum(json_extract(j.value, '$.completion_tokens')) as integer) as completion_tokens,
                        cast(sum(json_extract(j.value, '$.requests')) as integer) as requests,
                        cast(sum(json_extract(j.value, '$.cost_nanos')) as integer) as cost_nanos
                 from usage_history h, json_each(h.model_usage) j
                 where h.date >= $1 and h.date <= $2
                 group by j.key order by tokens desc, model",
            )
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await
        }
        Db::Postgres(pool) => {
            sqlx::query_as(
                "select j.key as model,
                        cast(sum((j.value->>'tokens')::bigint) as bigint) as tokens,
                        cast(sum((j.value->>'prompt_tokens')::bigint) as bigint) as prompt_tokens,
                        cast(sum((j.value->>'completion_tokens')::bigint) as bigint) as completion_tokens,
                        cast(sum((j.value->>'requests')::bigint) as bigint) as requests,
                        cast(sum((j.value->>'cost_nanos')::bigint) as bigint) as cost_nanos
                 from usage_history h, jsonb_each(h.model_usage) j
                 where h.date >= $1 and h.date <= $2
                 group by j.key order by tokens desc, model",
            )
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await
        }
    }
}

/// Every user's day from `from` to `to`, for the CSV export: by day, then e-mail.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ExportRow {
    pub date: NaiveDate,
    pub email: String,
    pub tokens_used: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub requests_count: i64,
    pub cost_nanos: i64,
    pub source: String,
    pub drifted: bool,
}

pub async fn list_export(
    db: &Db,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<ExportRow>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_as(
            "select h.date, u.email, h.tokens_used, h.prompt_tokens, h.completion_tokens,
                    h.requests_count, h.cost_nanos, h.source, h.drifted
             from usage_history h join users u on u.id = h.user_id
             where h.date >= $1 and h.date <= $2
             order by h.date, u.email",
        )
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await
    })
}
