//! One finished exchange written at once: the call's usage (its `usage_records` row, the day's
//! row of `usage_history`, the reservation settled) and, when they can be kept, the user's
//! message(s), the assistant's reply and the conversation's `updated_at`, in one transaction.
//! The messages go in a savepoint: when they cannot be stored (the conversation was deleted
//! while the reply streamed) the usage is committed without them. Usage is never lost to the
//! messages, and never written twice.

use super::conversations::ConversationRow;
use super::{with_db, Db};
use crate::domain::chat::{add_model_usage, ModelUsageMap};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;
use sqlx::Acquire;
use uuid::Uuid;

pub struct NewMessage {
    pub id: Uuid,
    pub role: &'static str,
    pub content: String,
    pub created_at: DateTime<Utc>,
}

pub struct Reply {
    pub id: Uuid,
    pub content: String,
    pub model: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// `None`: the model has no price.
    pub cost_nanos: Option<i64>,
    pub usage_estimated: bool,
    pub status: &'static str,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub struct Exchange {
    pub user_id: Uuid,
    pub conversation_id: Uuid,
    /// A conversation started by this exchange (an API call without `conversation_id`).
    pub new_conversation: Option<ConversationRow>,
    /// The quota reservation this exchange settles (deleted as its usage is added).
    pub reservation: Option<Uuid>,
    pub inputs: Vec<NewMessage>,
    pub reply: Reply,
    /// The day (of the configured timezone) the usage counts for.
    pub date: NaiveDate,
    /// False when no messages are to be kept (the client left before the first token: the
    /// page gives the text back), only the usage.
    pub keep_messages: bool,
    /// The upstream's id of the call, when it sent one.
    pub upstream_call_id: Option<String>,
}

/// Writes the exchange; the usage row is created or added to. Returns whether the messages
/// were kept.
pub async fn record(db: &Db, exchange: &Exchange) -> Result<bool, sqlx::Error> {
    let reply = &exchange.reply;
    let now = reply.created_at;
    with_db!(db, |pool| {
        let mut tx = pool.begin().await?;
        let mut kept = false;
        if exchange.keep_messages {
            let mut messages = (&mut tx).begin().await?;
            let written: Result<(), sqlx::Error> = async {
                // A new conversation is written already updated by this reply.
                if let Some(c) = &exchange.new_conversation {
                    sqlx::query(super::conversations::INSERT)
                        .bind(c.id)
                        .bind(c.user_id)
                        .bind(&c.title)
                        .bind(&c.model)
                        .bind(c.created_at)
                        .bind(now)
                        .execute(&mut *messages)
                        .await?;
                }
                for input in &exchange.inputs {
                    sqlx::query(
                        "insert into messages (id, conversation_id, role, content, created_at)
                         values ($1, $2, $3, $4, $5)",
                    )
                    .bind(input.id)
                    .bind(exchange.conversation_id)
                    .bind(input.role)
                    .bind(&input.content)
                    .bind(input.created_at)
                    .execute(&mut *messages)
                    .await?;
                }
                sqlx::query(
                    "insert into messages (id, conversation_id, role, content, model,
                         prompt_tokens, completion_tokens, cost_nanos, usage_estimated, status,
                         error, created_at)
                     values ($1, $2, 'assistant', $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(reply.id)
                .bind(exchange.conversation_id)
                .bind(&reply.content)
                .bind(&reply.model)
                .bind(reply.prompt_tokens)
                .bind(reply.completion_tokens)
                .bind(reply.cost_nanos)
                .bind(reply.usage_estimated)
                .bind(reply.status)
                .bind(&reply.error)
                .bind(now)
                .execute(&mut *messages)
                .await?;
                if exchange.new_conversation.is_none() {
                    sqlx::query("update conversations set updated_at = $2 where id = $1")
                        .bind(exchange.conversation_id)
                        .bind(now)
                        .execute(&mut *messages)
                        .await?;
                }
                Ok(())
            }
            .await;
            match written {
                Ok(()) => {
                    messages.commit().await?;
                    kept = true;
                }
                // A lost connection fails the usage statements below as well; anything else
                // (the conversation deleted meanwhile) costs the messages only.
                Err(e) => {
                    tracing::warn!(error = %e, conversation_id = %exchange.conversation_id,
                        "the reply's messages cannot be kept; recording its usage alone");
                    messages.rollback().await?;
                }
            }
        }
        sqlx::query(
            "insert into usage_records (id, user_id, conversation_id, model, date,
                 prompt_tokens, completion_tokens, cost_nanos, estimated, status,
                 messages_kept, upstream_call_id, created_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(reply.id)
        .bind(exchange.user_id)
        .bind(exchange.conversation_id)
        .bind(&reply.model)
        .bind(exchange.date)
        .bind(reply.prompt_tokens)
        .bind(reply.completion_tokens)
        .bind(reply.cost_nanos)
        .bind(reply.usage_estimated)
        .bind(reply.status)
        .bind(kept)
        .bind(&exchange.upstream_call_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // Add to the day's totals, shown and the app's own; the row stays locked until commit,
        // so the per-model JSON read next cannot be changed by a concurrent exchange in between.
        let (row_id, Json(mut models), Json(mut app_models)): (
            Uuid,
            Json<ModelUsageMap>,
            Json<ModelUsageMap>,
        ) = sqlx::query_as(
            "insert into usage_history (id, user_id, date, tokens_used, prompt_tokens,
                 completion_tokens, requests_count, cost_nanos, app_tokens_used,
                 app_prompt_tokens, app_completion_tokens, app_requests_count, app_cost_nanos,
                 created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, 1, $7, $4, $5, $6, 1, $7, $8, $8)
             on conflict (user_id, date) do update set
                 tokens_used = usage_history.tokens_used + excluded.tokens_used,
                 prompt_tokens = usage_history.prompt_tokens + excluded.prompt_tokens,
                 completion_tokens = usage_history.completion_tokens + excluded.completion_tokens,
                 requests_count = usage_history.requests_count + 1,
                 cost_nanos = usage_history.cost_nanos + excluded.cost_nanos,
                 app_tokens_used = usage_history.app_tokens_used + excluded.tokens_used,
                 app_prompt_tokens = usage_history.app_prompt_tokens + excluded.prompt_tokens,
                 app_completion_tokens =
                     usage_history.app_completion_tokens + excluded.completion_tokens,
                 app_requests_count = usage_history.app_requests_count + 1,
                 app_cost_nanos = usage_history.app_cost_nanos + excluded.cost_nanos,
                 updated_at = excluded.updated_at
             returning id, model_usage, app_model_usage",
        )
        .bind(Uuid::new_v4())
        .bind(exchange.user_id)
        .bind(exchange.date)
        .bind(reply.prompt_tokens + reply.completion_tokens)
        .bind(reply.prompt_tokens)
        .bind(reply.completion_tokens)
        .bind(reply.cost_nanos.unwrap_or(0))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        for map in [&mut models, &mut app_models] {
            add_model_usage(
                map,
                &reply.model,
                reply.prompt_tokens,
                reply.completion_tokens,
                reply.cost_nanos,
            );
        }
        sqlx::query(
            "update usage_history set model_usage = $2, app_model_usage = $3 where id = $1",
        )
        .bind(row_id)
        .bind(Json(&models))
        .bind(Json(&app_models))
        .execute(&mut *tx)
        .await?;
        if let Some(reservation) = exchange.reservation {
            sqlx::query("delete from quota_reservations where id = $1")
                .bind(reservation)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(kept)
    })
}
