//! The `conversations` and `messages` tables. Every query names the owner: another user's
//! conversation is simply not found.

use super::{with_db, with_db_read, Db};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ConversationRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub title: String,
    pub model: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MessageRow {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub role: String,
    pub content: String,
    pub model: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_nanos: Option<i64>,
    pub usage_estimated: bool,
    pub status: String,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

macro_rules! conversation_columns {
    () => {
        "id, user_id, title, model, created_at, updated_at"
    };
}
macro_rules! message_columns {
    () => {
        "id, conversation_id, role, content, model, prompt_tokens, completion_tokens, \
         cost_nanos, usage_estimated, status, error, created_at"
    };
}

/// The insert of a conversation, also run inside an exchange's transaction.
const INSERT: &str = "insert into conversations
     (id, user_id, title, model, created_at, updated_at) values ($1, $2, $3, $4, $5, $6)";

pub async fn insert(db: &Db, row: &ConversationRow) -> Result<(), sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query(INSERT)
            .bind(row.id)
            .bind(row.user_id)
            .bind(&row.title)
            .bind(&row.model)
            .bind(row.created_at)
            .bind(row.updated_at)
            .execute(pool)
            .await
            .map(|_| ())
    })
}

/// The user's conversations, most recently active first.
pub async fn list_owned(
    db: &Db,
    user_id: Uuid,
    limit: i64,
) -> Result<Vec<ConversationRow>, sqlx::Error> {
    let sql = concat!(
        "select ",
        conversation_columns!(),
        " from conversations where user_id = $1 order by updated_at desc, id limit $2"
    );
    with_db_read!(db, |pool| {
        sqlx::query_as(sql)
            .bind(user_id)
            .bind(limit)
            .fetch_all(pool)
            .await
    })
}

pub async fn find_owned(
    db: &Db,
    id: Uuid,
    user_id: Uuid,
) -> Result<Option<ConversationRow>, sqlx::Error> {
    let sql = concat!(
        "select ",
        conversation_columns!(),
        " from conversations where id = $1 and user_id = $2"
    );
    with_db_read!(db, |pool| {
        sqlx::query_as(sql)
            .bind(id)
            .bind(user_id)
            .fetch_optional(pool)
            .await
    })
}

/// Renames and/or switches the model of the user's conversation; `None` when not theirs.
pub async fn update_owned(
    db: &Db,
    id: Uuid,
    user_id: Uuid,
    title: Option<&str>,
    model: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<ConversationRow>, sqlx::Error> {
    let sql = concat!(
        "update conversations set title = coalesce($3, title), model = coalesce($4, model), \
         updated_at = $5 where id = $1 and user_id = $2 returning ",
        conversation_columns!()
    );
    with_db!(db, |pool| {
        sqlx::query_as(sql)
            .bind(id)
            .bind(user_id)
            .bind(title)
            .bind(model)
            .bind(now)
            .fetch_optional(pool)
            .await
    })
}

/// Deletes the user's conversation and (by cascade) its messages; the usage they caused
/// stays in `usage_history`. False when not theirs.
pub async fn delete_owned(db: &Db, id: Uuid, user_id: Uuid) -> Result<bool, sqlx::Error> {
    let done = with_db!(db, |pool| {
        sqlx::query("delete from conversations where id = $1 and user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(done == 1)
}

/// A conversation's messages in the order they were written.
pub async fn list_messages(db: &Db, conversation_id: Uuid) -> Result<Vec<MessageRow>, sqlx::Error> {
    let sql = concat!(
        "select ",
        message_columns!(),
        " from messages where conversation_id = $1 order by created_at, id"
    );
    with_db_read!(db, |pool| {
        sqlx::query_as(sql)
            .bind(conversation_id)
            .fetch_all(pool)
            .await
    })
}
