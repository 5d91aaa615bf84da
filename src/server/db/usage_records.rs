//! The `usage_records` table: one row per accepted upstream call (written by
//! [`super::exchanges::record`]), and the correction of an estimated call to the upstream's own
//! figures once its spend log shows them.

use super::{with_db, Db};
use crate::domain::chat::{correct_model_usage, ModelUsageMap};
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
    with_db!(db, |pool| {
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

/// Replaces an estimated call's figures with the upstream's, in one transaction: the call's
/// row (its estimate kept in `estimated_tokens`), its reply message when kept, and its day in
/// `usage_history`: the app's own figures always, the shown ones too unless a sync since the
/// call replaced them with LiteLLM's (which count the call already). Returns the change in
/// tokens, or `None` when the call was corrected already (by another instance).
pub async fn reconcile(
    db: &Db,
    id: Uuid,
    upstream: Upstream,
    now: DateTime<Utc>,
) -> Result<Option<i64>, sqlx::Error> {
    with_db!(db, |pool| {
        let mut tx = pool.begin().await?;
        // A write first, guarded by the state it changes: of two instances one corrects, the
        // other finds nothing (PostgreSQL locks the row, SQLite takes its write lock).
        let claimed =
            sqlx::query("update usage_records set reconciled_at = $2 where id = $1 and estimated")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        if claimed.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let old: Estimate = sqlx::query_as(
            "select user_id, model, date, prompt_tokens, completion_tokens, cost_nanos,
                    messages_kept, created_at
             from usage_records where id = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "update usage_records set prompt_tokens = $2, completion_tokens = $3,
                 cost_nanos = $4, estimated = false, estimated_tokens = $5
             where id = $1",
        )
        .bind(id)
        .bind(upstream.prompt_tokens)
        .bind(upstream.completion_tokens)
        .bind(upstream.cost_nanos)
        .bind(old.prompt_tokens + old.completion_tokens)
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
        let d_prompt = upstream.prompt_tokens - old.prompt_tokens;
        let d_completion = upstream.completion_tokens - old.completion_tokens;
        let d_tokens = d_prompt + d_completion;
        let d_cost = upstream.cost_nanos - old.cost_nanos.unwrap_or(0);
        // The shown figures count the estimate unless a sync after the call replaced them
        // with LiteLLM's (source 'litellm', synced since): those count the call already.
        let day: Option<(Uuid, bool, Json<ModelUsageMap>, Json<ModelUsageMap>)> = sqlx::query_as(
            "update usage_history set
                 app_tokens_used = case when app_tokens_used + $3 + $4 < 0 then 0
                     else app_tokens_used + $3 + $4 end,
                 app_prompt_tokens = case when app_prompt_tokens + $3 < 0 then 0
                     else app_prompt_tokens + $3 end,
                 app_completion_tokens = case when app_completion_tokens + $4 < 0 then 0
                     else app_completion_tokens + $4 end,
                 app_cost_nanos = case when app_cost_nanos + $5 < 0 then 0
                     else app_cost_nanos + $5 end,
                 tokens_used = case when (source <> 'litellm' or synced_at is null or synced_at < $6)
                     then case when tokens_used + $3 + $4 < 0 then 0 else tokens_used + $3 + $4 end
                     else tokens_used end,
                 prompt_tokens = case when (source <> 'litellm' or synced_at is null or synced_at < $6)
                     then case when prompt_tokens + $3 < 0 then 0 else prompt_tokens + $3 end
                     else prompt_tokens end,
                 completion_tokens = case when (source <> 'litellm' or synced_at is null or synced_at < $6)
                     then case when completion_tokens + $4 < 0 then 0
                         else completion_tokens + $4 end
                     else completion_tokens end,
                 cost_nanos = case when (source <> 'litellm' or synced_at is null or synced_at < $6)
                     then case when cost_nanos + $5 < 0 then 0 else cost_nanos + $5 end
                     else cost_nanos end,
                 updated_at = $7
             where user_id = $1 and date = $2
             returning id, (source <> 'litellm' or synced_at is null or synced_at < $6),
                       model_usage, app_model_usage",
        )
        .bind(old.user_id)
        .bind(old.date)
        .bind(d_prompt)
        .bind(d_completion)
        .bind(d_cost)
        .bind(old.created_at)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((row_id, shown_counts_it, Json(mut models), Json(mut app_models))) = day {
            let before = (old.prompt_tokens, old.completion_tokens, old.cost_nanos);
            let after = (
                upstream.prompt_tokens,
                upstream.completion_tokens,
                Some(upstream.cost_nanos),
            );
            correct_model_usage(&mut app_models, &old.model, before, after);
            if shown_counts_it {
                correct_model_usage(&mut models, &old.model, before, after);
            }
            sqlx::query(
                "update usage_history set model_usage = $2, app_model_usage = $3 where id = $1",
            )
            .bind(row_id)
            .bind(Json(&models))
            .bind(Json(&app_models))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Some(d_tokens))
    })
}
