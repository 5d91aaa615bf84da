//! The `usage_records` table: one row per accepted upstream call (written by
//! [`super::exchanges::record`]), and the correction of an estimated call to the upstream's own
//! figures once its spend log shows them.

use super::{with_db, with_db_read, Db};
use crate::domain::chat::{correct_model_usage, ModelUsageMap};
use crate::server::cache::{Change, Changed};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;
use uuid::Uuid;

/// An estimated call that carries the upstream's id and has not been corrected yet.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Unreconciled {
    pub id: Uuid,
    pub user_id: Uuid,
    pub upstream_call_id: String,
    pub created_at: DateTime<Utc>,
}

/// The estimated calls recorded since `since` still waiting for their correction, oldest first,
/// at most `limit`.
pub async fn list_unreconciled(
    db: &Db,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Unreconciled>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_as(
            "select id, user_id, upstream_call_id, created_at from usage_records
             where estimated and upstream_call_id is not null and created_at >= $1
             order by created_at limit $2",
        )
        .bind(since)
        .bind(limit)
        .fetch_all(pool)
        .await
    })
}

/// The upstream's figures for one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upstream {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_nanos: i64,
}

#[derive(sqlx::FromRow)]
struct Estimate {
    user_id: Uuid,
    model: String,
    date: NaiveDate,
    prompt_tokens: i64,
    completion_tokens: i64,
    cost_nanos: Option<i64>,
    messages_kept: bool,
    created_at: DateTime<Utc>,
}

/// A day's figures as a correction reads them (its row locked).
#[derive(sqlx::FromRow)]
struct Day {
    id: Uuid,
    /// The shown figures count the estimate: no sync since the call replaced them with
    /// LiteLLM's (which count the call already).
    shown_counts_it: bool,
    tokens_used: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    cost_nanos: i64,
    model_usage: Json<ModelUsageMap>,
    app_tokens_used: i64,
    app_prompt_tokens: i64,
    app_completion_tokens: i64,
    app_cost_nanos: i64,
    app_model_usage: Json<ModelUsageMap>,
}

/// Replaces an estimated call's figures with the upstream's, in one transaction: the call's
/// row (its estimate kept in `estimated_tokens`), its reply message when kept, and its day in
/// `usage_history`: the app's own figures always, the shown ones too unless a sync since the
/// call replaced them with LiteLLM's (which count the call already). No figure goes below
/// zero. Returns the change in tokens, or `None` when the call was corrected already (by
/// another instance).
pub async fn reconcile(
    db: &Db,
    id: Uuid,
    upstream: Upstream,
    now: DateTime<Utc>,
) -> Result<Changed<Option<i64>>, sqlx::Error> {
    let corrected = with_db!(db, |pool| {
        let mut tx = pool.begin().await?;
        // A write first, guarded by the state it changes: of two instances one corrects, the
        // other finds nothing (PostgreSQL locks the row, SQLite takes its write lock). It
        // changes only `reconciled_at`, so what it returns is the estimate.
        let Some(old): Option<Estimate> = sqlx::query_as(
            "update usage_records set reconciled_at = $2 where id = $1 and estimated
             returning user_id, model, date, prompt_tokens, completion_tokens, cost_nanos,
                       messages_kept, created_at",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?
        else {
            tx.rollback().await?;
            return Ok(Changed::nothing(None));
        };
        sqlx::query(
            "update usage_records set prompt_tokens = $2, completion_tokens = $3,
                 cost_nanos = $4, estimated = false,
                 estimated_tokens = prompt_tokens + completion_tokens
             where id = $1",
        )
        .bind(id)
        .bind(upstream.prompt_tokens)
        .bind(upstream.completion_tokens)
        .bind(upstream.cost_nanos)
        .execute(&mut *tx)
        .await?;
        if old.messages_kept {
            sqlx::query(
                "update messages set prompt_tokens = $2, completion_tokens = $3,
                     cost_nanos = $4, usage_estimated = false
                 where id = $1",
            )
            .bind(id)
            .bind(upstream.prompt_tokens)
            .bind(upstream.completion_tokens)
            .bind(upstream.cost_nanos)
            .execute(&mut *tx)
            .await?;
        }
        let before = (old.prompt_tokens, old.completion_tokens, old.cost_nanos);
        let after = (
            upstream.prompt_tokens,
            upstream.completion_tokens,
            Some(upstream.cost_nanos),
        );
        let d_prompt = after.0 - before.0;
        let d_completion = after.1 - before.1;
        let d_cost = upstream.cost_nanos - before.2.unwrap_or(0);
        // The day's row, locked by a write that changes nothing else, so a reply recorded
        // meanwhile cannot change it between this read and the write below.
        let day: Option<Day> = sqlx::query_as(
            "update usage_history set updated_at = $3 where user_id = $1 and date = $2
             returning id,
                 (source <> 'litellm' or synced_at is null or synced_at < $4) as shown_counts_it,
                 tokens_used, prompt_tokens, completion_tokens, cost_nanos, model_usage,
                 app_tokens_used, app_prompt_tokens, app_completion_tokens, app_cost_nanos,
                 app_model_usage",
        )
        .bind(old.user_id)
        .bind(old.date)
        .bind(now)
        .bind(old.created_at)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(mut day) = day {
            let shift = |v: &mut i64, by: i64| *v = (*v + by).max(0);
            shift(&mut day.app_prompt_tokens, d_prompt);
            shift(&mut day.app_completion_tokens, d_completion);
            shift(&mut day.app_tokens_used, d_prompt + d_completion);
            shift(&mut day.app_cost_nanos, d_cost);
            correct_model_usage(&mut day.app_model_usage.0, &old.model, before, after);
            if day.shown_counts_it {
                shift(&mut day.prompt_tokens, d_prompt);
                shift(&mut day.completion_tokens, d_completion);
                shift(&mut day.tokens_used, d_prompt + d_completion);
                shift(&mut day.cost_nanos, d_cost);
                correct_model_usage(&mut day.model_usage.0, &old.model, before, after);
            }
            sqlx::query(
                "update usage_history set tokens_used = $2, prompt_tokens = $3,
                     completion_tokens = $4, cost_nanos = $5, model_usage = $6,
                     app_tokens_used = $7, app_prompt_tokens = $8, app_completion_tokens = $9,
                     app_cost_nanos = $10, app_model_usage = $11
                 where id = $1",
            )
            .bind(day.id)
            .bind(day.tokens_used)
            .bind(day.prompt_tokens)
            .bind(day.completion_tokens)
            .bind(day.cost_nanos)
            .bind(&day.model_usage)
            .bind(day.app_tokens_used)
            .bind(day.app_prompt_tokens)
            .bind(day.app_completion_tokens)
            .bind(day.app_cost_nanos)
            .bind(&day.app_model_usage)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>((old.user_id, d_prompt + d_completion))
    })?;
    let (user_id, tokens) = corrected;
    Ok(Changed::new(Some(tokens), Change::Usage(user_id)))
}
