//! One finished exchange written at once: the call's usage (its `usage_records` row, the day's
//! row of `usage_history`, the reservation settled) and, when they can be kept, the user's
//! message(s), the assistant's reply and the conversation's `updated_at`, in one transaction.
//! When the messages cannot be stored (the conversation was deleted while the reply streamed)
//! that transaction is rolled back and the usage is committed without them. Usage is never lost
//! to the messages, and never written twice.

use super::conversations::ConversationRow;
use super::Db;
use crate::server::cache::{Change, Changed};
use chrono::{DateTime, NaiveDate, Utc};
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

/// A day's per-model map (`model_usage` or `app_model_usage`, JSON) with this call added to its
/// model's entry, written in each backend's JSON functions. The rule is `add_model_usage`'s:
/// tokens, prompt and completion tokens, requests and cost summed, `unpriced` kept (and only
/// present) once a call had no price. Merged inside the statement that adds the call, so a
/// concurrent exchange cannot come between the read and the write.
macro_rules! models_added {
    (sqlite, $map:literal) => {
        concat!(
            "json_patch(",
            $map,
            ", json_object($4, (select json_object(
                 'tokens', coalesce(max(value ->> 'tokens'), 0) + $6 + $7,
                 'prompt_tokens', coalesce(max(value ->> 'prompt_tokens'), 0) + $6,
                 'completion_tokens', coalesce(max(value ->> 'completion_tokens'), 0) + $7,
                 'requests', coalesce(max(value ->> 'requests'), 0) + 1,
                 'cost_nanos', coalesce(max(value ->> 'cost_nanos'), 0) + coalesce($8, 0),
                 'unpriced', case when coalesce(max(value ->> 'unpriced'), 0) or $8 is null
                                  then json('true') end)
             from json_each(",
            $map,
            ") where key = $4)))"
        )
    };
    (postgres, $map:literal) => {
        concat!(
            $map,
            " || jsonb_build_object($4::text, jsonb_strip_nulls(jsonb_build_object(
                 'tokens', coalesce((",
            $map,
            " -> $4 ->> 'tokens')::bigint, 0) + $6 + $7,
                 'prompt_tokens', coalesce((",
            $map,
            " -> $4 ->> 'prompt_tokens')::bigint, 0) + $6,
                 'completion_tokens',
                     coalesce((",
            $map,
            " -> $4 ->> 'completion_tokens')::bigint, 0) + $7,
                 'requests', coalesce((",
            $map,
            " -> $4 ->> 'requests')::bigint, 0) + 1,
                 'cost_nanos',
                     coalesce((",
            $map,
            " -> $4 ->> 'cost_nanos')::bigint, 0) + coalesce($8, 0),
                 'unpriced', case when coalesce((",
            $map,
            " -> $4 ->> 'unpriced')::boolean, false)
                                       or $8 is null then true end)))"
        )
    };
}

/// Adds the call to the day's totals, shown and the app's own, and to their per-model maps
/// ($14: the row's id if new). `$backend`: `sqlite` or `postgres`, whose JSON functions merge
/// the maps.
macro_rules! day_add {
    ($backend:ident, $empty:literal) => {
        concat!(
            "insert into usage_history (id, user_id, date, tokens_used, prompt_tokens,
                 completion_tokens, requests_count, cost_nanos, app_tokens_used,
                 app_prompt_tokens, app_completion_tokens, app_requests_count, app_cost_nanos,
                 model_usage, app_model_usage, created_at, updated_at)
             values ($14, $2, $5, $6 + $7, $6, $7, 1, coalesce($8, 0), $6 + $7, $6, $7, 1,
                 coalesce($8, 0), ",
            models_added!($backend, $empty),
            ", ",
            models_added!($backend, $empty),
            ", $13, $13)
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
                 model_usage = ",
            models_added!($backend, "usage_history.model_usage"),
            ",
                 app_model_usage = ",
            models_added!($backend, "usage_history.app_model_usage"),
            ",
                 updated_at = excluded.updated_at"
        )
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

/// Parameters $1–$20 of the statements above, in one place for both backends.
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
            .bind(x.reservation)
    }};
}

/// The messages could not be written (the conversation was deleted while the reply streamed,
/// or the database failed): the usage is written alone next, and should that fail too, the
/// whole exchange is tried again later.
fn messages_not_kept(x: &Exchange, e: &sqlx::Error) {
    tracing::warn!(error = %e, conversation_id = %x.conversation_id,
        "the reply's messages cannot be kept; recording its usage alone");
}

/// Writes the exchange; the usage row is created or added to. Returns whether the messages
/// were kept.
///
/// The statements are the same on both backends; how they travel differs, and on each it is
/// one call when all goes well. SQLite runs on its connection's own thread, where every call
/// is two thread switches and a wait for the writer, so the exchange is one script from
/// `begin` to `commit`. PostgreSQL takes one statement per round trip, so the exchange is one
/// statement of data-modifying `with` clauses (one statement is one transaction). When the
/// messages cannot be written, the usage is written without them, in one call again.
pub async fn record(db: &Db, exchange: Exchange) -> Result<Changed<bool>, sqlx::Error> {
    let user_id = exchange.user_id;
    let kept = match db {
        Db::Sqlite(sqlite) => sqlite.commits.record(sqlite, exchange).await,
        Db::Postgres(pool) => record_postgres(pool, &exchange).await,
    }?;
    Ok(Changed::new(kept, Change::Usage(user_id)))
}

/// SQLite's group commit: exchanges waiting for the one writer are written by whichever of
/// their sends gets it next, all in one transaction. Each exchange is still one call to the
/// connection's thread, but the batch takes the writer once, begins and commits once, and
/// writes the pages its exchanges share (the day's row, the tables' last pages) to the log
/// once. A batch that fails anywhere is rolled back whole and its exchanges are written one by
/// one, each with its own outcome (a deleted conversation costs that exchange its messages
/// only). An exchange's hold ([`super::quota::Holds`]) is settled once its commit is done.
#[derive(Default)]
pub struct Commits {
    waiting: std::sync::Mutex<Vec<Waiting>>,
}

impl std::fmt::Debug for Commits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commits")
            .field("waiting", &self.waiting().len())
            .finish()
    }
}

struct Waiting {
    exchange: Exchange,
    done: tokio::sync::oneshot::Sender<Result<bool, sqlx::Error>>,
}

/// At most this many exchanges in one transaction (the rest go in the next).
const MOST_IN_A_COMMIT: usize = 32;

impl Commits {
    fn waiting(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn record(
        &self,
        sqlite: &super::Sqlite,
        exchange: Exchange,
    ) -> Result<bool, sqlx::Error> {
        let reply_id = exchange.reply.id;
        let (done, mut written) = tokio::sync::oneshot::channel();
        self.waiting().push(Waiting { exchange, done });
        loop {
            tokio::select! {
                biased;
                outcome = &mut written => {
                    // Only a batch whose writer was dropped mid-way (the runtime shutting down)
                    // drops its senders.
                    return outcome.unwrap_or(Err(sqlx::Error::WorkerCrashed));
                }
                conn = sqlite.writer.acquire() => match conn {
                    Ok(conn) => self.write_waiting(sqlite, conn).await,
                    Err(e) => {
                        // Ours is still waiting: take it back, so that it is not written after
                        // this error (the caller would write it again). Else a batch has it.
                        let taken_back = {
                            let mut waiting = self.waiting();
                            let ours = waiting.iter().position(|w| w.exchange.reply.id == reply_id);
                            ours.map(|i| waiting.remove(i)).is_some()
                        };
                        if taken_back {
                            return Err(e);
                        }
                        return written.await.unwrap_or(Err(sqlx::Error::WorkerCrashed));
                    }
                },
            }
        }
    }

    /// Holding the writer: writes what is waiting (at most [`MOST_IN_A_COMMIT`]).
    async fn write_waiting(
        &self,
        sqlite: &super::Sqlite,
        mut conn: sqlx::pool::PoolConnection<sqlx::Sqlite>,
    ) {
        let batch: Vec<Waiting> = {
            let mut waiting = self.waiting();
            let n = waiting.len().min(MOST_IN_A_COMMIT);
            waiting.drain(..n).collect()
        };
        let mut conn = match batch.len() {
            0 | 1 => Some(conn),
            _ => match sqlite_batch(&mut conn, &batch).await {
                Ok(()) => {
                    for w in batch {
                        settle(sqlite, &w.exchange);
                        let _ = w.done.send(Ok(w.exchange.keep_messages));
                    }
                    return;
                }
                Err(e) => {
                    // Each exchange's own failure, if any, is logged as it is written alone.
                    tracing::debug!(error = %e, exchanges = batch.len(),
                        "a group commit failed; writing its exchanges one by one");
                    sqlite_rolled_back(&sqlite.writer, conn).await.ok()
                }
            },
        };
        for w in batch {
            let c = match conn.take() {
                Some(c) => c,
                None => match sqlite.writer.acquire().await {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = w.done.send(Err(e));
                        continue;
                    }
                },
            };
            let (outcome, back) = record_sqlite(&sqlite.writer, c, &w.exchange).await;
            conn = back;
            if outcome.is_ok() {
                settle(sqlite, &w.exchange);
            }
            let _ = w.done.send(outcome);
        }
    }
}

/// Committed: the usage now counts, so the hold goes.
fn settle(sqlite: &super::Sqlite, x: &Exchange) {
    if let Some(id) = x.reservation {
        let tokens = x.reply.prompt_tokens + x.reply.completion_tokens;
        sqlite.holds.settle(id, tokens);
    }
}

/// The batch's exchanges with their messages, in one transaction.
async fn sqlite_batch(
    conn: &mut sqlx::SqliteConnection,
    batch: &[Waiting],
) -> Result<(), sqlx::Error> {
    sqlx::raw_sql("begin immediate").execute(&mut *conn).await?;
    for w in batch {
        let x = &w.exchange;
        sqlite_run(&mut *conn, x, x.keep_messages, Wrap::InTransaction).await?;
    }
    sqlx::raw_sql("commit").execute(&mut *conn).await?;
    Ok(())
}

/// The exchange as one SQLite script, a transaction of its own; with the messages, the inputs'
/// parameters from $21 on, four each (at most 1,045 with the request's cap of 256 messages, far
/// below SQLite's 32,766).
fn sqlite_script(x: &Exchange, keep_messages: bool, wrap: Wrap) -> String {
    let mut sql = String::from(match wrap {
        Wrap::Transaction => "begin immediate;\n",
        Wrap::InTransaction => "",
    });
    if keep_messages {
        sql.push_str(match x.new_conversation {
            Some(_) => conversation_new!(),
            None => conversation_touched!(),
        });
        sql.push_str(";\n");
        for i in 0..x.inputs.len() {
            let n = 21 + 4 * i;
            sql.push_str(&format!(
                "insert into messages (id, conversation_id, role, content, created_at)
                 values (${n}, $3, ${}, ${}, ${});\n",
                n + 1,
                n + 2,
                n + 3
            ));
        }
        sql.push_str(reply_message!());
        sql.push_str(";\n");
    }
    sql.push_str(concat!(
        usage_row!(),
        ";\n",
        day_add!(sqlite, "'{}'"),
        ";\n"
    ));
    if let Wrap::Transaction = wrap {
        sql.push_str("commit;");
    }
    sql
}

/// Whether a script is its own transaction or runs in one already begun (a group commit).
#[derive(Clone, Copy)]
enum Wrap {
    Transaction,
    InTransaction,
}

/// One exchange on its own, in one script (with the messages, and if they cannot be kept
/// without them). Gives back the connection, unless a failure left it unusable (closed).
async fn record_sqlite(
    pool: &sqlx::SqlitePool,
    mut conn: sqlx::pool::PoolConnection<sqlx::Sqlite>,
    x: &Exchange,
) -> (
    Result<bool, sqlx::Error>,
    Option<sqlx::pool::PoolConnection<sqlx::Sqlite>>,
) {
    if x.keep_messages {
        match sqlite_run(&mut conn, x, true, Wrap::Transaction).await {
            Ok(()) => return (Ok(true), Some(conn)),
            Err(e) => {
                messages_not_kept(x, &e);
                conn = match sqlite_rolled_back(pool, conn).await {
                    Ok(c) => c,
                    Err(e) => return (Err(e), None),
                };
            }
        }
    }
    match sqlite_run(&mut conn, x, false, Wrap::Transaction).await {
        Ok(()) => (Ok(false), Some(conn)),
        Err(e) => (Err(e), sqlite_rolled_back(pool, conn).await.ok()),
    }
}

async fn sqlite_run(
    conn: &mut sqlx::SqliteConnection,
    x: &Exchange,
    keep_messages: bool,
    wrap: Wrap,
) -> Result<(), sqlx::Error> {
    use sqlx::AssertSqlSafe;
    let mut query = bind_exchange!(
        sqlx::query(AssertSqlSafe(sqlite_script(x, keep_messages, wrap))),
        x,
        keep_messages
    );
    if keep_messages {
        for input in &x.inputs {
            query = query
                .bind(input.id)
                .bind(input.role)
                .bind(&input.content)
                .bind(input.created_at);
        }
    }
    // Few inputs (a page's send has one): few scripts, worth preparing once.
    query
        .persistent(!keep_messages || x.inputs.len() <= 4)
        .execute(conn)
        .await
        .map(|_| ())
}

/// After a script failed part-way: its transaction is rolled back, so the connection goes back
/// to the pool clean. When rolling back fails (SQLite ended the transaction itself, as it does
/// on a full disk, or the connection is broken) the connection is closed instead, which ends
/// any transaction left, and the pool opens another.
async fn sqlite_rolled_back(
    pool: &sqlx::SqlitePool,
    mut conn: sqlx::pool::PoolConnection<sqlx::Sqlite>,
) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>, sqlx::Error> {
    if sqlx::raw_sql("rollback").execute(&mut *conn).await.is_ok() {
        return Ok(conn);
    }
    let _ = conn.close().await;
    pool.acquire().await
}

async fn record_postgres(pool: &sqlx::PgPool, x: &Exchange) -> Result<bool, sqlx::Error> {
    macro_rules! usage_sql {
        ($messages:expr) => {
            concat!(
                $messages,
                "recorded as (",
                usage_row!(),
                "), settled as (delete from quota_reservations where id = $20) ",
                day_add!(postgres, "'{}'::jsonb")
            )
        };
    }
    macro_rules! messages_sql {
        ($conversation:expr) => {
            usage_sql!(concat!(
                "with conversation as (",
                $conversation,
                "), inputs as (
                     insert into messages (id, conversation_id, role, content, created_at)
                     select id, $3, role, content, created_at
                     from unnest($21::uuid[], $22::text[], $23::text[], $24::timestamptz[])
                         as input(id, role, content, created_at)),
                 reply as (",
                reply_message!(),
                "), "
            ))
        };
    }
    if x.keep_messages {
        let sql = match x.new_conversation {
            Some(_) => messages_sql!(conversation_new!()),
            None => messages_sql!(conversation_touched!()),
        };
        let written = bind_exchange!(sqlx::query(sql), x, true)
            .bind(x.inputs.iter().map(|i| i.id).collect::<Vec<_>>())
            .bind(x.inputs.iter().map(|i| i.role).collect::<Vec<_>>())
            .bind(x.inputs.iter().map(|i| &i.content).collect::<Vec<_>>())
            .bind(x.inputs.iter().map(|i| i.created_at).collect::<Vec<_>>())
            .execute(pool)
            .await;
        match written {
            Ok(_) => return Ok(true),
            Err(e) => messages_not_kept(x, &e),
        }
    }
    bind_exchange!(sqlx::query(usage_sql!("with ")), x, false)
        .execute(pool)
        .await?;
    Ok(false)
}
