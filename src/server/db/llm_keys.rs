//! The `llm_keys` table: each user's LiteLLM virtual key, sealed with the server secret.

use super::{with_db, with_db_read, Db};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The sealed key of a user, if one was provisioned.
pub async fn find_sealed(db: &Db, user_id: Uuid) -> Result<Option<Vec<u8>>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_scalar("select key_sealed from llm_keys where user_id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await
    })
}

/// Stores a user's key unless one is stored already; false when another request (or another
/// instance) won the race, in which case the caller must use the stored key.
pub async fn insert_if_absent(
    db: &Db,
    user_id: Uuid,
    sealed: &[u8],
    hint: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = with_db!(db, |pool| {
        sqlx::query(
            "insert into llm_keys (user_id, key_sealed, key_hint, created_at)
             values ($1, $2, $3, $4) on conflict (user_id) do nothing",
        )
        .bind(user_id)
        .bind(sealed)
        .bind(hint)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(done == 1)
}
