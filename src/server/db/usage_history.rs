//! The `usage_history` table: one row per user per day (of the configured timezone), added to
//! by every completion as it happens (see [`super::exchanges`]).

use super::{with_db, Db};
use crate::domain::chat::ModelUsageMap;
use chrono::NaiveDate;
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
}

/// A user's rows from `from` to `to` (inclusive), oldest first.
pub async fn list_range(
    db: &Db,
    user_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<UsageDayRow>, sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query_as(
            "select user_id, date, tokens_used, prompt_tokens, completion_tokens,
                    requests_count, cost_nanos, model_usage, source
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
