//! The chat service: conversations, the model list, and sending a message. A send opens the
//! upstream stream first (so a refusal is a plain HTTP error and nothing is written), then a
//! task reads the reply, passes it on, and when it ends — finished, cut, or stopped because the
//! client went away — writes the exchange and its usage in one transaction.

use crate::api::chat::{
    ConversationDetailDto, ConversationDto, MessageDto, ModelsDto, ThreadDto, ThreadMessageDto,
};
use crate::api::error::{AppError, ErrorCode};
use crate::domain::chat::{
    normalize_title, title_from_message, ReplyStatus, Role, MAX_CONTEXT_CHARS, MAX_MESSAGE_CHARS,
    MAX_REQUEST_CHARS, MAX_REQUEST_MESSAGES,
};
use crate::domain::money::decimal_usd;
use crate::domain::text::for_log;
use crate::server::db::conversations::{ConversationRow, MessageRow};
use crate::server::db::exchanges::{Exchange, NewMessage, Reply};
use crate::server::db::{self, conversations};
use crate::server::error::{Error, Result};
use crate::server::llm::{tokens, ChatCall, Event, ReportedUsage, WireMessage};
use crate::server::quota;
use crate::server::state::AppState;
use chrono::{Duration, Utc};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;
use uuid::Uuid;

/// The replies streaming on this instance. A shutdown cuts them (each is recorded as
/// interrupted) and waits for their records.
pub struct Replies {
    tasks: tokio_util::task::TaskTracker,
    cut: tokio::sync::watch::Sender<bool>,
}

impl Default for Replies {
    fn default() -> Self {
        Self {
            tasks: tokio_util::task::TaskTracker::new(),
            cut: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl Replies {
    /// Ends every reply now; each records what arrived.
    pub fn cut_all(&self) {
        self.cut.send_replace(true);
    }

    /// Waits (at most `within`) until every reply has been recorded; false when some were not.
    pub async fn finish(&self, within: std::time::Duration) -> bool {
        self.tasks.close();
        tokio::time::timeout(within, self.tasks.wait())
            .await
            .is_ok()
    }
}

/// Most conversations listed at once.
const LIST_LIMIT: i64 = 500;

fn conversation_dto(row: ConversationRow) -> ConversationDto {
    ConversationDto {
        id: row.id,
        title: row.title,
        model: row.model,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

fn message_dto(row: MessageRow) -> MessageDto {
    MessageDto {
        id: row.id,
        role: Role::parse(&row.role).unwrap_or(Role::User),
        content: row.content,
        model: row.model,
        prompt_tokens: row.prompt_tokens,
        completion_tokens: row.completion_tokens,
        cost: row.cost_nanos.map(decimal_usd),
        usage_estimated: row.usage_estimated,
        status: ReplyStatus::parse(&row.status).unwrap_or(ReplyStatus::Complete),
        error: row.error,
        created_at: row.created_at,
    }
}

fn not_found() -> Error {
    AppError::not_found("conversation").into()
}

pub async fn list_conversations(state: &AppState, user_id: Uuid) -> Result<Vec<ConversationDto>> {
    let rows = conversations::list_owned(&state.db, user_id, LIST_LIMIT).await?;
    Ok(rows.into_iter().map(conversation_dto).collect())
}

pub async fn conversation_detail(
    state: &AppState,
    user_id: Uuid,
    id: Uuid,
) -> Result<ConversationDetailDto> {
    let conversation = conversations::find_owned(&state.db, id, user_id)
        .await?
        .ok_or_else(not_found)?;
    let messages = conversations::list_messages(&state.db, id).await?;
    Ok(ConversationDetailDto {
        conversation: conversation_dto(conversation),
        messages: messages.into_iter().map(message_dto).collect(),
    })
}

/// A conversation for the chat page: each assistant reply also rendered from Markdown, on
/// the text pool unless short (a long conversation is megabytes of Markdown).
pub async fn thread(state: &AppState, user_id: Uuid, id: Uuid) -> Result<ThreadDto> {
    let ConversationDetailDto {
        conversation,
        messages,
    } = conversation_detail(state, user_id, id).await?;
    let replies_bytes = messages
        .iter()
        .filter(|m| m.role == Role::Assistant)
        .map(|m| m.content.len())
        .sum();
    let render = move || -> Vec<ThreadMessageDto> {
        messages
            .into_iter()
            .map(|message| ThreadMessageDto {
                html: (message.role == Role::Assistant)
                    .then(|| crate::server::markdown::render_markdown(&message.content)),
                message,
            })
            .collect()
    };
    let messages = crate::server::work::text()
        .run_sized(replies_bytes, render)
        .await?;
    Ok(ThreadDto {
        conversation,
        messages,
    })
}

/// The models on offer. A failing upstream is reported in the answer (the page shows it), not
/// as an error of the page.
pub async fn models(state: &AppState) -> ModelsDto {
    match state.llm.models().await {
        Ok(models) => ModelsDto {
            models,
            upstream: state.llm.kind().into(),
            error: None,
        },
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the upstream's models");
            ModelsDto {
                models: vec![],
                upstream: state.llm.kind().into(),
                error: Some(AppError::from(&e).message),
            }
        }
    }
}

/// A model the upstream offers, else 400 naming the allowed values. When the list cannot be
/// read now, the last list read decides; with none, the send is refused (502): a model the
/// operator does not offer is never waved through.
async fn check_model(state: &AppState, model: &str) -> Result<String> {
    let model = model.trim();
    if model.is_empty() {
        return Err(AppError::validation("model must not be empty").into());
    }
    let models = state.llm.offered_models().await?;
    if !models.iter().any(|m| m == model) {
        return Err(AppError::validation(format!(
            "model must be one of: {} (got {})",
            models.join(", "),
            crate::domain::text::quoted(model)
        ))
        .into());
    }
    Ok(model.to_string())
}

pub async fn create_conversation(
    state: &AppState,
    user_id: Uuid,
    model: &str,
    title: Option<&str>,
) -> Result<ConversationDto> {
    let model = check_model(state, model).await?;
    let title = match title {
        Some(t) => normalize_title(t).map_err(AppError::validation)?,
        None => "New chat".to_string(),
    };
    let now = db::now();
    let row = ConversationRow {
        id: Uuid::new_v4(),
        user_id,
        title,
        model,
        created_at: now,
        updated_at: now,
    };
    conversations::insert(&state.db, &row).await?;
    Ok(conversation_dto(row))
}

pub async fn update_conversation(
    state: &AppState,
    user_id: Uuid,
    id: Uuid,
    title: Option<&str>,
    model: Option<&str>,
) -> Result<ConversationDto> {
    if title.is_none() && model.is_none() {
        return Err(AppError::validation("give title and/or model to change").into());
    }
    let title = title
        .map(normalize_title)
        .transpose()
        .map_err(AppError::validation)?;
    // Ownership first: someone else's conversation is a 404 whatever the input.
    conversations::find_owned(&state.db, id, user_id)
        .await?
        .ok_or_else(not_found)?;
    let model = match model {
        Some(m) => Some(check_model(state, m).await?),
        None => None,
    };
    let row = conversations::update_owned(
        &state.db,
        id,
        user_id,
        title.as_deref(),
        model.as_deref(),
        db::now(),
    )
    .await?
    .ok_or_else(not_found)?;
    Ok(conversation_dto(row))
}

pub async fn delete_conversation(state: &AppState, user_id: Uuid, id: Uuid) -> Result<()> {
    if conversations::delete_owned(&state.db, id, user_id).await? {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// A message a caller sends.
#[derive(Clone, Debug)]
pub struct Input {
    pub role: Role,
    pub content: String,
}

/// What `POST /api/chat/completions` (and so the chat page) asks for.
#[derive(Clone, Debug)]
pub struct SendRequest {
    /// Continue this conversation (its stored messages go first), or start a new one.
    pub conversation_id: Option<Uuid>,
    pub model: String,
    /// The new messages; the last one is the user's.
    pub messages: Vec<Input>,
    pub max_tokens: Option<i64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Option<Value>,
    /// The client reads the reply as it arrives (`stream: true`, the page); otherwise it gets
    /// the whole text at the end, in one piece instead of one per token (each of which wakes
    /// the reader, often on the other core).
    pub deltas: bool,
}

/// How a reply ended, with the usage recorded for it.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub status: ReplyStatus,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_nanos: Option<i64>,
    pub usage_estimated: bool,
    /// Why the reply ended early (an upstream failure), for the client.
    pub error: Option<AppError>,
    /// False when nothing was written (nothing arrived, or the write failed).
    pub recorded: bool,
}

pub enum Piece {
    Delta(String),
    /// The last item: the exchange is written by the time this arrives.
    End(Outcome),
}

/// A send under way.
pub struct Started {
    pub conversation_id: Uuid,
    pub reply_id: Uuid,
    pub model: String,
    pub created: i64,
    pub pieces: mpsc::Receiver<Piece>,
}

fn validate(request: &SendRequest) -> Result<()> {
    let last = request
        .messages
        .last()
        .ok_or_else(|| AppError::validation("messages must not be empty"))?;
    if last.role != Role::User {
        return Err(AppError::validation("the last of messages must have role \"user\"").into());
    }
    let count = request.messages.len();
    if count > MAX_REQUEST_MESSAGES {
        return Err(AppError::validation(format!(
            "messages must be at most {MAX_REQUEST_MESSAGES} (got {count})"
        ))
        .into());
    }
    let mut total = 0;
    for (i, m) in request.messages.iter().enumerate() {
        let chars = m.content.chars().count();
        if chars > MAX_MESSAGE_CHARS {
            return Err(AppError::validation(format!(
                "messages[{i}].content must be at most {MAX_MESSAGE_CHARS} characters (got {chars})"
            ))
            .into());
        }
        total += chars;
    }
    if total > MAX_REQUEST_CHARS {
        return Err(AppError::validation(format!(
            "messages must have at most {MAX_REQUEST_CHARS} characters together (got {total})"
        ))
        .into());
    }
    if last.content.trim().is_empty() {
        return Err(AppError::validation("the user's message must not be empty").into());
    }
    if let Some(n) = request.max_tokens {
        if n < 1 {
            return Err(AppError::validation("max_tokens must be at least 1").into());
        }
    }
    Ok(())
}

/// Starts a send: checks, opens the upstream, and hands back the reply as it streams.
/// (Failures are logged where they are understood: upstream ones as warnings, ours as errors.)
#[tracing::instrument(skip(state, request), fields(model = %for_log(&request.model, 64)))]
pub async fn start(state: &AppState, user_id: Uuid, request: SendRequest) -> Result<Started> {
    validate(&request)?;
    quota::refuse_if_blocked(state, user_id).await?;
    let started_at = db::now();
    // Ownership first: another user's conversation is a 404 whatever else is wrong.
    let (conversation_id, history) = match request.conversation_id {
        Some(id) => {
            conversations::find_owned(&state.db, id, user_id)
                .await?
                .ok_or_else(not_found)?;
            (id, Some(conversations::list_messages(&state.db, id).await?))
        }
        None => (Uuid::new_v4(), None),
    };
    let model = check_model(state, &request.model).await?;
    // A new conversation is written with the exchange, so a failed first send leaves none.
    let new_conversation = history.is_none().then(|| ConversationRow {
        id: conversation_id,
        user_id,
        title: title_from_message(&request.messages.last().expect("validated").content),
        model: model.clone(),
        created_at: started_at,
        updated_at: started_at,
    });
    let history = history.unwrap_or_default();
    let mut context: Vec<WireMessage> = history
        .iter()
        .filter(|m| !m.content.is_empty())
        .map(|m| WireMessage {
            role: m.role.clone(),
            content: m.content.clone(),
        })
        .collect();
    context.extend(request.messages.iter().map(|m| WireMessage {
        role: m.role.as_str().into(),
        content: m.content.clone(),
    }));
    let context_chars: usize = context.iter().map(|m| m.content.chars().count()).sum();
    if context_chars > MAX_CONTEXT_CHARS {
        return Err(AppError::validation(format!(
            "this conversation is too long to continue ({context_chars} characters with the new \
             messages; at most {MAX_CONTEXT_CHARS}): start a new conversation"
        ))
        .into());
    }
    // The quota: hold back what this send may use (the reply's cap shrinks to what is left),
    // so that concurrent sends cannot together pass the limit. Counted off the async workers
    // unless short.
    let context_bytes = context.iter().map(|m| m.content.len()).sum();
    let (context, prompt_estimate) = crate::server::work::text()
        .run_sized(tokens::counting_size(context_bytes), move || {
            let n = tokens::count_chat(
                context
                    .iter()
                    .map(|m| (m.role.as_str(), m.content.as_str())),
            );
            (context, n)
        })
        .await?;
    let admitted = quota::admit_send(state, user_id, prompt_estimate, request.max_tokens).await?;
    let call = ChatCall {
        model: model.clone(),
        messages: context,
        prompt_estimate,
        max_tokens: admitted.max_output,
        temperature: request.temperature,
        top_p: request.top_p,
        stop: request.stop.clone(),
    };
    let opened = async {
        let key = state.llm.user_key(&state.db, user_id).await?;
        Ok::<_, Error>(state.llm.stream(key.as_deref(), &call).await?)
    };
    let upstream = match opened.await {
        Ok(upstream) => upstream,
        Err(e) => {
            quota::release(state, admitted.reservation).await;
            return Err(e);
        }
    };

    let (tx, rx) = mpsc::channel(64);
    let reply_id = Uuid::new_v4();
    let recorder = Recorder {
        state: state.clone(),
        user_id,
        conversation_id,
        new_conversation,
        reply_id,
        call,
        inputs: request.messages,
        started_at,
        reservation: admitted.reservation,
        upstream_call_id: upstream.call_id,
        deltas: request.deltas,
    };
    let cut = state.replies.cut.subscribe();
    state
        .replies
        .tasks
        .spawn(recorder.run(upstream.events, tx, cut));
    Ok(Started {
        conversation_id,
        reply_id,
        model,
        created: started_at.timestamp(),
        pieces: rx,
    })
}

struct Recorder {
    state: AppState,
    user_id: Uuid,
    conversation_id: Uuid,
    new_conversation: Option<ConversationRow>,
    reply_id: Uuid,
    call: ChatCall,
    inputs: Vec<Input>,
    started_at: chrono::DateTime<Utc>,
    /// The tokens held back for this send: settled with the record, else released.
    reservation: Option<Uuid>,
    upstream_call_id: Option<String>,
    /// See [`SendRequest::deltas`].
    deltas: bool,
}

/// A reply's tokens, counted on the text pool (a short reply in place); should that fail
/// (a panic), counted here: a delivered reply is never recorded as empty.
async fn count_off_the_workers(content: &str) -> i64 {
    let shared: std::sync::Arc<str> = content.into();
    let text = shared.clone();
    match crate::server::work::text()
        .run_sized(tokens::counting_size(text.len()), move || {
            tokens::count(&text)
        })
        .await
    {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "the text pool failed; counting here");
            tokens::count(&shared)
        }
    }
}

/// The most of a reply kept in memory (and stored): a runaway upstream is cut here.
const MAX_REPLY_BYTES: usize = 4 << 20;
/// How long a reply's record is retried while the database is unreachable (a restart).
const RECORD_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(120);

impl Recorder {
    /// Reads the upstream to its end (or until the client goes away or stops reading), renewing
    /// the reservation meanwhile, then records. Once the upstream has accepted the prompt its
    /// usage is recorded in every case but one: it failed before anything arrived.
    async fn run(
        self,
        mut upstream: crate::server::llm::EventStream,
        tx: mpsc::Sender<Piece>,
        mut cut: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut content = String::new();
        let mut usage: Option<ReportedUsage> = None;
        let mut failure = None;
        let mut client_gone = false;
        let idle = self.state.config.stream_idle_timeout;
        let mut renewal = tokio::time::interval(self.state.config.reservation_ttl / 3);
        renewal.tick().await; // the first tick is now; the admission just wrote the expiry
        loop {
            let next = tokio::select! {
                next = upstream.next() => next,
                _ = tx.closed() => { client_gone = true; break; }
                _ = renewal.tick() => {
                    quota::renew(&self.state, self.reservation).await;
                    continue;
                }
                () = async { let _ = cut.wait_for(|cut| *cut).await; } => {
                    failure = Some(AppError::new(
                        ErrorCode::Busy,
                        "The server is restarting: the reply was cut here. Send again in a moment.",
                    ));
                    break;
                }
            };
            match next {
                None => break,
                Some(Ok(Event::Delta(text))) => {
                    // PostgreSQL cannot store NUL in text; no reader needs it either.
                    let text = crate::domain::text::without_nul(text);
                    if content.len() + text.len() > MAX_REPLY_BYTES {
                        tracing::warn!(bytes = content.len(), "reply too long; cut");
                        failure = Some(AppError::new(
                            ErrorCode::Upstream,
                            format!("The reply was cut at {MAX_REPLY_BYTES} bytes."),
                        ));
                        break;
                    }
                    content.push_str(&text);
                    if !self.deltas {
                        continue;
                    }
                    // A client that stopped reading (its buffers full) is gone after `idle`.
                    match tokio::time::timeout(idle, tx.send(Piece::Delta(text))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) | Err(_) => {
                            client_gone = true;
                            break;
                        }
                    }
                }
                Some(Ok(Event::Usage(u))) => usage = Some(u),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "upstream stream failed");
                    failure = Some(AppError::from(&e));
                    break;
                }
            }
        }
        // Closing the upstream connection now stops the model from writing more.
        drop(upstream);
        let status = if client_gone {
            ReplyStatus::Stopped
        } else if failure.is_some() {
            ReplyStatus::Interrupted
        } else {
            ReplyStatus::Complete
        };
        let nothing_arrived = content.is_empty() && usage.is_none();
        let completion_estimate = match usage {
            Some(_) => 0,
            None => count_off_the_workers(&content).await,
        };
        let outcome = self.outcome(status, completion_estimate, usage, failure);
        if nothing_arrived && !client_gone {
            // The upstream failed before anything arrived: it used nothing, the client may
            // retry, nothing is kept.
            quota::release(&self.state, self.reservation).await;
            let _ = tx
                .send(Piece::End(Outcome {
                    recorded: false,
                    ..outcome
                }))
                .await;
            return;
        }
        // The client left before the first token: the prompt was still read upstream, so its
        // estimate counts; no messages are kept (the page gives the text back).
        let keep_messages = !nothing_arrived;
        match self
            .record_until_stored(&content, &outcome, keep_messages)
            .await
        {
            Ok(()) => {
                if !self.deltas {
                    // The whole text, the one piece such a client gets.
                    let _ = tx.send(Piece::Delta(content)).await;
                }
                let _ = tx.send(Piece::End(outcome)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "could not record a reply");
                quota::release(&self.state, self.reservation).await;
                let _ = tx
                    .send(Piece::End(Outcome {
                        error: Some(AppError::internal()),
                        recorded: false,
                        status: ReplyStatus::Interrupted,
                        ..outcome
                    }))
                    .await;
            }
        }
    }

    /// Records, retrying while the database is unreachable (a restart, a failover) for up to
    /// [`RECORD_RETRY_FOR`]; the reservation keeps the tokens held meanwhile. A failure no
    /// retry can cure (a constraint the row breaks) is not retried.
    async fn record_until_stored(
        &self,
        content: &str,
        outcome: &Outcome,
        keep_messages: bool,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + RECORD_RETRY_FOR;
        let mut pause = std::time::Duration::from_millis(100);
        loop {
            match self.record(content, outcome, keep_messages).await {
                Ok(()) => return Ok(()),
                Err(e) if e.may_pass() && tokio::time::Instant::now() + pause < deadline => {
                    tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64,
                        "could not record a reply yet; retrying");
                    tokio::time::sleep(pause).await;
                    quota::renew(&self.state, self.reservation).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(5));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The usage to record: what the upstream reported, else our tokenizer's count of what was
    /// sent and received (so a stopped or cut reply still counts). Cost: the reported one, else
    /// the price table, else none (unpriced).
    fn outcome(
        &self,
        status: ReplyStatus,
        completion_estimate: i64,
        usage: Option<ReportedUsage>,
        failure: Option<AppError>,
    ) -> Outcome {
        let (prompt_tokens, completion_tokens, reported_cost, usage_estimated) = match usage {
            Some(u) => (u.prompt_tokens, u.completion_tokens, u.cost_nanos, false),
            None => (self.call.prompt_estimate, completion_estimate, None, true),
        };
        let cost_nanos = reported_cost.or_else(|| {
            self.state
                .llm
                .price(&self.call.model)
                .map(|p| p.cost_nanos(prompt_tokens, completion_tokens))
        });
        Outcome {
            status,
            prompt_tokens,
            completion_tokens,
            cost_nanos,
            usage_estimated,
            error: failure,
            recorded: true,
        }
    }

    async fn record(&self, content: &str, outcome: &Outcome, keep_messages: bool) -> Result<()> {
        let now = db::now();
        // Messages sort by time: inputs keep the send's start, the reply comes after them.
        let inputs: Vec<NewMessage> = self
            .inputs
            .iter()
            .enumerate()
            .map(|(i, m)| NewMessage {
                id: Uuid::new_v4(),
                role: m.role.as_str(),
                content: m.content.clone(),
                created_at: self.started_at + Duration::microseconds(i as i64),
            })
            .collect();
        let floor = self.started_at + Duration::microseconds(inputs.len() as i64);
        let exchange = Exchange {
            user_id: self.user_id,
            conversation_id: self.conversation_id,
            new_conversation: self.new_conversation.clone(),
            reservation: self.reservation,
            inputs,
            reply: Reply {
                id: self.reply_id,
                content: content.to_string(),
                model: self.call.model.clone(),
                prompt_tokens: outcome.prompt_tokens,
                completion_tokens: outcome.completion_tokens,
                cost_nanos: outcome.cost_nanos,
                usage_estimated: outcome.usage_estimated,
                status: outcome.status.as_str(),
                error: outcome.error.as_ref().map(|e| e.message.clone()),
                created_at: now.max(floor),
            },
            date: now.with_timezone(&self.state.config.timezone).date_naive(),
            keep_messages,
            upstream_call_id: self.upstream_call_id.clone(),
        };
        db::exchanges::record(&self.state.db, exchange)
            .await?
            .announce(&self.state)
            .await;
        Ok(())
    }
}
