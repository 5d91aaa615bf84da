//! Chat: conversations, their messages and the models on offer. Sending a message is not a
//! server function: replies stream as server-sent events from `POST /api/chat/completions`,
//! which the chat page reads with `fetch` (see `ui::chat::stream`).

use super::error::AppError;
use crate::domain::chat::{ReplyStatus, Role};
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConversationDto {
    pub id: Uuid,
    pub title: String,
    pub model: String,
    #[serde(with = "crate::domain::time::wire")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::time::wire")]
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MessageDto {
    pub id: Uuid,
    pub role: Role,
    pub content: String,
    pub model: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Exact USD as a decimal string; `None` when the model has no price.
    pub cost: Option<String>,
    /// The counts come from our tokenizer: the reply ended before the upstream reported usage.
    pub usage_estimated: bool,
    pub status: ReplyStatus,
    pub error: Option<String>,
    #[serde(with = "crate::domain::time::wire")]
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConversationDetailDto {
    pub conversation: ConversationDto,
    pub messages: Vec<MessageDto>,
}

/// A message as the chat page shows it: an assistant's reply also as HTML, its Markdown
/// rendered on the server (`server::markdown`), so the browser carries no Markdown parser.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadMessageDto {
    pub message: MessageDto,
    /// Safe HTML of an assistant's reply; `None` for the user's and system messages (text).
    pub html: Option<String>,
}

/// A conversation as the chat page shows it (the REST API answers [`ConversationDetailDto`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadDto {
    pub conversation: ConversationDto,
    pub messages: Vec<ThreadMessageDto>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ModelsDto {
    /// Model ids, sorted.
    pub models: Vec<String>,
    /// Which upstream: `demo`, `openai` or `litellm`.
    pub upstream: String,
    /// The upstream's list could not be read (the message says why); `models` is empty.
    pub error: Option<String>,
}

#[server(prefix = "/api/fn", endpoint = "list_conversations")]
pub async fn list_conversations() -> Result<Vec<ConversationDto>, AppError> {
    let (state, me) = super::ssr::require_user().await?;
    Ok(crate::server::chat::list_conversations(&state, me.user.id).await?)
}

#[server(prefix = "/api/fn", endpoint = "get_conversation")]
pub async fn get_conversation(id: Uuid) -> Result<ThreadDto, AppError> {
    let (state, me) = super::ssr::require_user().await?;
    Ok(crate::server::chat::thread(&state, me.user.id, id).await?)
}

#[server(prefix = "/api/fn", endpoint = "create_conversation")]
pub async fn create_conversation(model: String) -> Result<ConversationDto, AppError> {
    let (state, me) = super::ssr::require_user().await?;
    Ok(crate::server::chat::create_conversation(&state, me.user.id, &model, None).await?)
}

#[server(prefix = "/api/fn", endpoint = "update_conversation")]
pub async fn update_conversation(
    id: Uuid,
    title: Option<String>,
    model: Option<String>,
) -> Result<ConversationDto, AppError> {
    let (state, me) = super::ssr::require_user().await?;
    Ok(crate::server::chat::update_conversation(
        &state,
        me.user.id,
        id,
        title.as_deref(),
        model.as_deref(),
    )
    .await?)
}

#[server(prefix = "/api/fn", endpoint = "delete_conversation")]
pub async fn delete_conversation(id: Uuid) -> Result<(), AppError> {
    let (state, me) = super::ssr::require_user().await?;
    Ok(crate::server::chat::delete_conversation(&state, me.user.id, id).await?)
}

#[server(prefix = "/api/fn", endpoint = "list_models")]
pub async fn list_models() -> Result<ModelsDto, AppError> {
    let (state, _me) = super::ssr::require_user().await?;
    Ok(crate::server::chat::models(&state).await)
}
