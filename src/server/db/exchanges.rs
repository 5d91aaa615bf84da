//! One finished exchange written at once: the call's usage (its `usage_records` row, the day's
//! row of `usage_history`, the reservation settled) and, when they can be kept, the user's
//! message(s), the assistant's reply and the conversation's `updated_at`, in one transaction.
//! The messages go in a savepoint: when they cannot be stored (the conversation was deleted
//! while the reply streamed) the usage is committed without them. Usage is never lost to the
//! messages, and never written twice.

use super::conversations::ConversationRow;
use super::Db;
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

/// The call's `usage_records` row ($1–$13).
macro_rules! usage_row {
    () => {
        "insert into usage_records (id, user_id, conversation_id, model, date,
         prompt_tokens, completion_tokens, cost_nanos, estimated, status, messages_kept,
         upstream_call_id, created_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    };
}

/// Adds the call to the day's totals, shown and the app's own ($14: the row's id if new); the
/// row stays locked until commit, so the per-model JSON it returns cannot be changed by a
/// concurrent exchange before the script after it writes it back.
macro_rules! day_add {
    () => {
        "insert into usage_history (id, user_id, date, tokens_used, prompt_tokens,
         completion_tokens, requests_count, cost_nanos, app_tokens_used, app_prompt_tokens,
         app_completion_tokens, app_requests_count, app_cost_nanos, created_at, updated_at)
     values ($14, $2, $5, $6 + $7, $6, $7, 1, coalesce($8, 0), $6 + $7, $6, $7, 1,
             coalesce($8, 0), $13, $13)
     on conflict (user_id, date) do update set
         tokens_used = usage_history.tokens_used + excluded.tokens_used,
         prompt_tokens = usage_history.prompt_tokens + excluded.prompt_tokens,
         completion_tokens = usage_history.completion_tokens + excluded.completion_tokens,
         requests_count = usage_history.requests_count + 1,
         cost_nanos = usage_history.cost_nanos + excluded.cost_nanos,
         app_tokens_used = usage_history.app_tokens_used + excluded.tokens_used,
         app_prompt_tokens = usage_history.app_prompt_tokens + excluded.prompt_tokens,
         app_completion_tokens = usage_history.app_completion_tokens + excluded.completion_tokens,
         app_requests_count = usage_history.app_requests_count + 1,
         app_cost_nanos = usage_history.app_cost_nanos + excluded.cost_nanos,
         updated_at = excluded.updated_at
     returning id, model_usage, app_model_usage"
    };
}

/// The new conversation, written already updated by this reply ($3, $2, $17–$19, $13).
macro_rules! conversation_new {
    () => {
        "insert into conversations
         (id, user_id, title, model, created_at, updated_at)
     values ($3, $2, $17, $18, $19, $13)"
    };
}

macro_rules! conversation_touched {
    () => {
        "update conversations set updated_at = $13 where id = $3"
    };
}

macro_rules! reply_message {
    () => {
        "insert into messages (id, conversation_id, role, content, model,
         prompt_tokens, completion_tokens, cost_nanos, usage_estimated, status, error,
         created_at)
     values ($1, $3, 'assistant', $15, $4, $6, $7, $8, $9, $10, $16, $13)"
    };
}

/// Parameters $1–$19 of the statements above, in one place for both backends.
macro_rules! bind_exchange {
    ($query:expr, $x:expr, $kept:expr) => {{
        let x: &Exchange = $x;
        let reply = &x.reply;
        let conversation = x.new_conversation.as_ref();
        $query
            .bind(reply.id)
            .bind(x.user_id)
            .bind(x.conversation_id)
            .bind(&reply.model)
            .bind(x.date)
            .bind(reply.prompt_tokens)
            .bind(reply.completion_tokens)
            .bind(reply.cost_nanos)
            .bind(reply.usage_estimated)
            .bind(reply.status)
            .bind($kept)
            .bind(&x.upstream_call_id)
            .bind(reply.created_at)
            .bind(Uuid::new_v4())
            .bind(&reply.content)
            .bind(&reply.error)
            .bind(conversation.map(|c| &c.title))
            .bind(conversation.map(|c| &c.model))
            .bind(conversation.map(|c| c.created_at))
    }};
}

/// Adds the call to the day's per-model maps returned by `day_add!`.
fn add_to_models(day: &mut DayModels, reply: &Reply) {
    for map in [&mut day.model_usage.0, &mut day.app_model_usage.0] {
        add_model_usage(
            map,
            &reply.model,
            reply.prompt_tokens,
            reply.completion_tokens,
            reply.cost_nanos,
        );
    }
}

/// The messages' statements failed. A lost connection fails the usage statements after them
/// as well; anything else (the conversation deleted meanwhile) costs the messages only.
fn messages_not_kept(x: &Exchange, e: &sqlx::Error) {
    tracing::warn!(error = %e, conversation_id = %x.conversation_id,
        "the reply's messages cannot be kept; recording its usage alone");
}

#[derive(sqlx::FromRow)]
struct DayModels {
    id: Uuid,
    model_usage: Json<ModelUsageMap>,
    app_model_usage: Json<ModelUsageMap>,
}

/// Writes the exchange; the usage row is created or added to. Returns whether the messages
/// were kept.
///
/// The statements are the same on both backends; how they travel differs. SQLite runs on its
/// connection's own thread, and every call to it is two thread switches and a wait for the
/// writer's queue, so the statements go in scripts: four calls (begin, messages and usage,
/// the day's models and the reservation, commit) instead of eleven. PostgreSQL takes one
/// statement per round trip, so the usage and the reservation ride in data-modifying `with`
/// clauses, and the messages are one statement (the inputs as arrays).
pub async fn record(db: &Db, exchange: &Exchange) -> Result<bool, sqlx::Error> {
    match db {
        Db::Sqlite(sqlite) => record_sqlite(&sqlite.writer, exchange).await,
        Db::Postgres(pool) => record_postgres(pool, exchange).await,
    }
}

/// The statements that keep the messages, for SQLite, from the `savepoint` to its release
/// (the inputs' parameters from $20 on, four each: at most 1,043 with the request's cap of
/// 256 messages, far below SQLite's 32,766).
fn sqlite_messages(x: &Exchange) -> String {
    let mut sql = String::from("savepoint messages;\n");
    sql.push_str(match x.new_conversation {
        Some(_) => conversation_new!(),
        None => conversation_touched!(),
    });
    sql.push_str(";\n");
    for i in 0..x.inputs.len() {
        let n = 20 + 4 * i;
        sql.push_str(&format!(
            "insert into messages (id, conversation_id, role, content, created_at)
             values (${n}, $3, ${}, ${}, ${});\n",
            n + 1,
            n + 2,
            n + 3
        ));
    }
    sql.push_str(reply_message!());
    sql.push_str(";\nrelease messages;\n");
    sql
}

async fn record_sqlite(pool: &sqlx::SqlitePool, x: &Exchange) -> Result<bool, sqlx::Error> {
    use sqlx::AssertSqlSafe;
    let mut tx = pool.begin().await?;
    let usage = concat!(usage_row!(), ";\n", day_add!());
    let mut kept = None;
    if x.keep_messages {
        let script = format!("{}{usage}", sqlite_messages(x));
        let mut query = bind_exchange!(sqlx::query_as(AssertSqlSafe(script)), x, true);
        for input in &x.inputs {
            query = query
                .bind(input.id)
                .bind(input.role)
                .bind(&input.content)
                .bind(input.created_at);
        }
        // Few inputs (a page's send has one): few scripts, worth preparing once.
        match query
            .persistent(x.inputs.len() <= 4)
            .fetch_all(&mut *tx)
            .await
        {
            Ok(mut rows) => kept = rows.pop(),
            Err(e) => {
                messages_not_kept(x, &e);
                sqlx::raw_sql("rollback to messages; release messages")
                    .execute(&mut *tx)
                    .await
                    .map_err(|_| e)?;
            }
        }
    }
    let messages_kept = kept.is_some();
    let mut day: DayModels = match kept {
        Some(day) => day,
        None => bind_exchange!(sqlx::query_as(usage), x, false)
            .fetch_all(&mut *tx)
            .await?
            .pop()
            .ok_or(sqlx::Error::RowNotFound)?,
    };
    add_to_models(&mut day, &x.reply);
    // The day's per-model usage written back; the reservation settled.
    sqlx::query(
        "update usage_history set model_usage = $2, app_model_usage = $3 where id = $1;
         delete from quota_reservations where id = $4",
    )
    .bind(day.id)
    .bind(&day.model_usage)
    .bind(&day.app_model_usage)
    .bind(x.reservation)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(messages_kept)
}

async fn record_postgres(pool: &sqlx::PgPool, x: &Exchange) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut kept = false;
    if x.keep_messages {
        let mut messages = (&mut tx).begin().await?;
        macro_rules! messages_sql {
            ($conversation:expr) => {
                concat!(
                    "with conversation as (",
                    $conversation,
                    "), inputs as (
                         insert into messages (id, conversation_id, role, content, created_at)
                         select id, $3, role, content, created_at
                         from unnest($20::uuid[], $21::text[], $22::text[], $23::timestamptz[])
                             as input(id, role, content, created_at)) ",
                    reply_message!()
                )
            };
        }
        let sql = match x.new_conversation {
            Some(_) => messages_sql!(conversation_new!()),
            None => messages_sql!(conversation_touched!()),
        };
        let written = bind_exchange!(sqlx::query(sql), x, true)
            .bind(x.inputs.iter().map(|i| i.id).collect::<Vec<_>>())
            .bind(x.inputs.iter().map(|i| i.role).collect::<Vec<_>>())
            .bind(x.inputs.iter().map(|i| &i.content).collect::<Vec<_>>())
            .bind(x.inputs.iter().map(|i| i.created_at).collect::<Vec<_>>())
            .execute(&mut *messages)
            .await;
        match written {
            Ok(_) => {
                messages.commit().await?;
                kept = true;
            }
            Err(e) => {
                messages_not_kept(x, &e);
                messages.rollback().await?;
            }
        }
    }
    let sql = concat!("with recorded as (", usage_row!(), ") ", day_add!());
    let mut day: DayModels = bind_exchange!(sqlx::query_as(sql), x, kept)
        .fetch_one(&mut *tx)
        .await?;
    add_to_models(&mut day, &x.reply);
    sqlx::query(
        "with settled as (delete from quota_reservations where id = $4)
         update usage_history set model_usage = $2, app_model_usage = $3 where id = $1",
    )
    .bind(day.id)
    .bind(&day.model_usage)
    .bind(&day.app_model_usage)
    .bind(x.reservation)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(kept)
}
