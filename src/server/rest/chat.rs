//! `/api/chat/completions`, `/api/models` and `/api/conversations`. The first two speak
//! OpenAI's shapes on success, so OpenAI clients work with `base_url = <site>/api`; their
//! errors use the envelope, whose `error.message` those clients read as well.

use super::{created, ok, parse_id, ApiError, ApiJson, ApiResult, Envelope, IdPath};
use crate::api::chat::{ConversationDetailDto, ConversationDto};
use crate::api::error::AppError;
use crate::domain::chat::Role;
use crate::domain::money::decimal_usd;
use crate::server::auth::AuthUser;
use crate::server::chat::{self, Input, Outcome, Piece, SendRequest, Started};
use crate::server::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::convert::Infallible;
use uuid::Uuid;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CompletionBody {
    /// one of `GET /api/models`
    #[schema(example = "demo")]
    model: String,
    /// 1 to 256, the last of role `user`; 100,000 characters each, 400,000 together
    #[schema(min_items = 1, max_items = 256)]
    messages: Vec<BodyMessage>,
    #[serde(default)]
    stream: bool,
    conversation_id: Option<Uuid>,
    #[schema(minimum = 1)]
    max_tokens: Option<i64>,
    #[schema(minimum = 1)]
    max_completion_tokens: Option<i64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    stop: Option<Value>,
    // Other OpenAI parameters (n, user, tools, ...) are accepted and not forwarded.
}

#[derive(Deserialize, utoipa::ToSchema)]
struct BodyMessage {
    #[schema(schema_with = super::openapi::message_role)]
    role: String,
    /// a string, or OpenAI's array of `{"type": "text", "text": ...}` parts
    content: Value,
}

/// Text content: a string, or OpenAI's array of `{"type": "text", "text": ...}` parts.
fn message_text(i: usize, content: &Value) -> Result<String, AppError> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match (p["type"].as_str(), p["text"].as_str()) {
                (Some("text"), Some(text)) => Ok(text.to_string()),
                _ => Err(AppError::validation(format!(
                    "messages[{i}].content parts must be of type \"text\" (images and files are not supported)"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|parts| parts.join("")),
        _ => Err(AppError::validation(format!(
            "messages[{i}].content must be a string"
        ))),
    }
}

fn send_request(body: CompletionBody) -> Result<SendRequest, AppError> {
    let messages = body
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let role = Role::parse(&m.role).ok_or_else(|| {
                AppError::validation(format!(
                    "messages[{i}].role must be one of: {} (got {})",
                    Role::ALL.join(", "),
                    crate::domain::text::quoted(&m.role)
                ))
            })?;
            Ok(Input {
                role,
                content: message_text(i, &m.content)?,
            })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    Ok(SendRequest {
        conversation_id: body.conversation_id,
        model: body.model,
        messages,
        max_tokens: body.max_completion_tokens.or(body.max_tokens),
        temperature: body.temperature,
        top_p: body.top_p,
        stop: body.stop,
        deltas: body.stream,
    })
}

/// A reply's usage, in the whole reply and in the stream's usage event.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CompletionUsage {
    prompt_tokens: i64,
    completion_tokens: i64,
    total_tokens: i64,
    /// exact USD as a decimal string; `null` when the model has no price
    cost: Option<String>,
    /// our tokenizer's count, not the upstream's (corrected later when LiteLLM logs the call)
    estimated: bool,
}

fn usage_of(outcome: &Outcome) -> CompletionUsage {
    CompletionUsage {
        prompt_tokens: outcome.prompt_tokens,
        completion_tokens: outcome.completion_tokens,
        total_tokens: outcome.prompt_tokens + outcome.completion_tokens,
        cost: outcome.cost_nanos.map(decimal_usd),
        estimated: outcome.usage_estimated,
    }
}

fn usage_json(outcome: &Outcome) -> Value {
    json!(usage_of(outcome))
}

/// OpenAI's `chat.completion`, with the conversation and the stored reply's ids.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChatCompletion {
    /// `chatcmpl-` and the reply's id
    id: String,
    /// always `chat.completion`
    object: &'static str,
    /// Unix seconds
    created: i64,
    model: String,
    conversation_id: Uuid,
    message_id: Uuid,
    choices: Vec<Choice>,
    usage: CompletionUsage,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Choice {
    index: i64,
    message: ReplyMessage,
    /// always `stop`
    finish_reason: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReplyMessage {
    /// always `assistant`
    role: &'static str,
    content: String,
}

/// OpenAI's model list.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ModelList {
    /// always `list`
    object: &'static str,
    data: Vec<ModelEntry>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ModelEntry {
    id: String,
    /// always `model`
    object: &'static str,
    /// `litellm`, `openai` or `demo`: who serves it
    owned_by: &'static str,
}

/// `DELETE /api/conversations/{id}`'s answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Deleted {
    deleted: Uuid,
}

#[utoipa::path(
    post,
    path = "/api/chat/completions",
    tag = "chat",
    request_body = CompletionBody,
    responses((status = 200, description = "the whole reply as OpenAI's `chat.completion`; with `stream: true` server-sent `chat.completion.chunk` events, a usage event and `[DONE]`; the conversation's id also in the `x-conversation-id` header", content((ChatCompletion = "application/json"), (super::openapi::CompletionEvent = "text/event-stream"))))
)]
/// `POST /api/chat/completions`: OpenAI's request; `stream: true` answers with server-sent
/// events. With `conversation_id` the stored conversation goes first and `messages` are the
/// new ones; without it a new conversation is started. Recorded like a send from the page.
pub async fn completions(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiJson(body): ApiJson<CompletionBody>,
) -> Result<Response, ApiError> {
    let request = send_request(body)?;
    let streaming = request.deltas;
    let started = chat::start(&state, me.user.id, request).await?;
    let header = (
        HeaderName::from_static("x-conversation-id"),
        HeaderValue::from_str(&started.conversation_id.to_string()).expect("uuid is ascii"),
    );
    if streaming {
        Ok(([header], sse(started)).into_response())
    } else {
        Ok(([header], whole(started).await?).into_response())
    }
}

/// The reply as OpenAI `chat.completion.chunk` events, then usage, then `[DONE]`. A failure
/// mid-way is an `{"error": ...}` event (after the text that did arrive).
fn sse(started: Started) -> impl IntoResponse {
    let Started {
        conversation_id,
        reply_id,
        model,
        created,
        pieces,
    } = started;
    let id = format!("chatcmpl-{reply_id}");
    let chunk = move |delta: Value, finish: Option<&str>| {
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "conversation_id": conversation_id,
            "message_id": reply_id,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    };
    let pieces = stream::unfold(
        pieces,
        |mut rx| async move { rx.recv().await.map(|p| (p, rx)) },
    );
    // Each piece becomes one event (a delta) or the closing ones (finish, usage, [DONE]).
    let events = pieces.enumerate().flat_map(move |(i, piece)| {
        let events: Vec<Event> = match piece {
            Piece::Delta(text) => {
                // Like OpenAI, the first chunk names the role.
                let delta = if i == 0 {
                    json!({"role": "assistant", "content": text})
                } else {
                    json!({"content": text})
                };
                vec![Event::default().data(chunk(delta, None).to_string())]
            }
            Piece::End(outcome) => {
                let mut end = match &outcome.error {
                    Some(error) => {
                        let mut body = json!({
                            "error": error,
                            "status": outcome.status,
                            "recorded": outcome.recorded,
                        });
                        if outcome.recorded {
                            body["usage"] = usage_json(&outcome);
                        }
                        vec![Event::default().data(body.to_string())]
                    }
                    None => {
                        let mut usage = chunk(json!({}), None);
                        usage["choices"] = json!([]);
                        usage["usage"] = usage_json(&outcome);
                        vec![
                            Event::default().data(chunk(json!({}), Some("stop")).to_string()),
                            Event::default().data(usage.to_string()),
                        ]
                    }
                };
                end.push(Event::default().data("[DONE]"));
                end
            }
        };
        stream::iter(events.into_iter().map(Ok::<_, Infallible>))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// The whole reply as one `chat.completion`; a failure mid-way is an error (the part that
/// arrived is kept in the conversation).
async fn whole(mut started: Started) -> Result<Json<ChatCompletion>, ApiError> {
    let mut content = String::new();
    let outcome = loop {
        match started.pieces.recv().await {
            Some(Piece::Delta(text)) => content.push_str(&text),
            Some(Piece::End(outcome)) => break outcome,
            None => return Err(AppError::internal().into()),
        }
    };
    if let Some(error) = outcome.error {
        return Err(error.into());
    }
    Ok(Json(ChatCompletion {
        id: format!("chatcmpl-{}", started.reply_id),
        object: "chat.completion",
        created: started.created,
        model: started.model,
        conversation_id: started.conversation_id,
        message_id: started.reply_id,
        choices: vec![Choice {
            index: 0,
            message: ReplyMessage {
                role: "assistant",
                content,
            },
            finish_reason: "stop",
        }],
        usage: usage_of(&outcome),
    }))
}

#[utoipa::path(
    get,
    path = "/api/models",
    tag = "chat",
    responses((status = 200, description = "the models offered (OpenAI's list)", body = ModelList))
)]
/// `GET /api/models`: OpenAI's model list (`{"object": "list", "data": [{"id": ...}]}`); 502
/// when the upstream cannot say.
pub async fn models(
    State(state): State<AppState>,
    AuthUser(_me): AuthUser,
) -> Result<Json<ModelList>, ApiError> {
    let models = state
        .llm
        .models()
        .await
        .map_err(crate::server::error::Error::from)?;
    let data = models
        .iter()
        .map(|id| ModelEntry {
            id: id.clone(),
            object: "model",
            owned_by: state.llm.kind(),
        })
        .collect();
    Ok(Json(ModelList {
        object: "list",
        data,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConversation {
    /// one of `GET /api/models`
    #[schema(example = "demo")]
    model: String,
    /// 1 to 120 characters once trimmed
    #[schema(min_length = 1, max_length = 120, pattern = "\\S")]
    title: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationChange {
    /// 1 to 120 characters once trimmed
    #[schema(min_length = 1, max_length = 120, pattern = "\\S")]
    title: Option<String>,
    /// one of `GET /api/models`
    #[schema(example = "demo")]
    model: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/conversations",
    tag = "chat",
    responses((status = 200, description = "the caller's conversations, most recent first", body = Envelope<Vec<ConversationDto>>))
)]
/// `GET /api/conversations`: the caller's conversations, most recent first.
pub async fn list_conversations(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> ApiResult<Vec<ConversationDto>> {
    ok(chat::list_conversations(&state, me.user.id).await?)
}

#[utoipa::path(
    post,
    path = "/api/conversations",
    tag = "chat",
    request_body = NewConversation,
    responses((status = 201, description = "an empty conversation", body = Envelope<ConversationDto>))
)]
/// `POST /api/conversations {model, title?}`: an empty conversation.
pub async fn create_conversation(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiJson(body): ApiJson<NewConversation>,
) -> ApiResult<ConversationDto> {
    created(
        chat::create_conversation(&state, me.user.id, &body.model, body.title.as_deref()).await?,
    )
}

#[utoipa::path(
    get,
    path = "/api/conversations/{id}",
    tag = "chat",
    params(IdPath),
    responses((status = 200, description = "the conversation and its messages", body = Envelope<ConversationDetailDto>))
)]
/// `GET /api/conversations/{id}`: one of the caller's conversations with its messages.
pub async fn get_conversation(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<ConversationDetailDto> {
    let id = parse_id(&id, "id")?;
    ok(chat::conversation_detail(&state, me.user.id, id).await?)
}

#[utoipa::path(
    patch,
    path = "/api/conversations/{id}",
    tag = "chat",
    request_body = ConversationChange,
    params(IdPath),
    responses((status = 200, description = "the conversation as changed", body = Envelope<ConversationDto>))
)]
/// `PATCH /api/conversations/{id} {title?, model?}`.
pub async fn update_conversation(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ConversationChange>,
) -> ApiResult<ConversationDto> {
    let id = parse_id(&id, "id")?;
    ok(chat::update_conversation(
        &state,
        me.user.id,
        id,
        body.title.as_deref(),
        body.model.as_deref(),
    )
    .await?)
}

#[utoipa::path(
    delete,
    path = "/api/conversations/{id}",
    tag = "chat",
    params(IdPath),
    responses((status = 200, description = "deleted (its usage stays counted)", body = Envelope<Deleted>))
)]
/// `DELETE /api/conversations/{id}`: the conversation and its messages (not their usage).
pub async fn delete_conversation(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Deleted> {
    let id = parse_id(&id, "id")?;
    chat::delete_conversation(&state, me.user.id, id).await?;
    ok(Deleted { deleted: id })
}
