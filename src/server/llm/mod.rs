//! The LLM upstream: a LiteLLM proxy (with a virtual key per user), any OpenAI-compatible
//! endpoint (one shared key), or the built-in demo model. Replies are always streamed from the
//! upstream (with `stream_options.include_usage`), so one code path serves the chat page and
//! both shapes of `POST /api/chat/completions`. Here: the client (models, prices, opening a
//! stream, the demo model); `keys`: each user's LiteLLM key; `sse`: reading a streamed reply.

pub mod activity;
mod keys;
mod sse;
pub mod tokens;

use crate::api::error::{AppError, ErrorCode};
use crate::domain::chat::{demo_reply, DEMO_MODEL};
use crate::domain::money::ModelPrice;
use crate::server::config::{Config, Upstream};
use crate::server::error::{Error, Result};
use crate::server::secret::SecretBox;
use futures_util::stream::{self, BoxStream, StreamExt};
use serde::Serialize;
use serde_json::{json, Value};
use sse::sse_events;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long the model list is reused before asking the upstream again.
const MODELS_TTL: Duration = Duration::from_secs(60);
/// How long a failure to read the model list is reused (a down upstream is not asked by every
/// request).
const MODELS_FAILURE_TTL: Duration = Duration::from_secs(5);

/// The last answer about the model list, and the last list that was read.
#[derive(Default)]
struct ModelCache {
    answer: Option<(Instant, Result<Vec<String>, UpstreamError>)>,
    last_good: Option<Vec<String>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct WireMessage {
    pub role: String,
    pub content: String,
}

/// One completion request as sent upstream.
#[derive(Clone, Debug)]
pub struct ChatCall {
    pub model: String,
    pub messages: Vec<WireMessage>,
    /// The prompt's tokens as our tokenizer counts them (not sent): the demo's reported
    /// figure and the estimate of a reply that ends without the upstream's.
    pub prompt_estimate: i64,
    pub max_tokens: Option<i64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Option<Value>,
}

/// Usage as the upstream reported it at the end of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportedUsage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// LiteLLM's `usage.cost`, when it sent one.
    pub cost_nanos: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Delta(String),
    Usage(ReportedUsage),
}

/// What went wrong upstream; each becomes a message a user can act on.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot reach the model endpoint: {0}")]
    Unreachable(String),
    #[error("no answer within {0} s")]
    Timeout(u64),
    #[error("HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("the stream ended before the reply was complete")]
    Cut,
    #[error("unreadable answer: {0}")]
    Malformed(String),
}

impl From<&UpstreamError> for AppError {
    fn from(err: &UpstreamError) -> Self {
        let upstream = |msg: String| AppError::new(ErrorCode::Upstream, msg);
        match err {
            UpstreamError::Unreachable(_) => {
                upstream("The model endpoint cannot be reached. Try again in a moment.".into())
            }
            UpstreamError::Timeout(secs) => upstream(format!(
                "The model endpoint did not answer within {secs} s. Try again in a moment."
            )),
            UpstreamError::Status { status: 401 | 403, .. } => upstream(
                "The model endpoint refused tokenmeter's credentials. An admin must check the LLM key configuration."
                    .into(),
            ),
            UpstreamError::Status { status: 429, .. } => AppError::new(
                ErrorCode::RateLimited,
                "The model endpoint is rate limiting requests. Try again in a moment.",
            ),
            UpstreamError::Status { status: 400 | 404 | 422, message } => AppError::validation(
                format!("The model endpoint rejected the request: {message}"),
            ),
            UpstreamError::Status { status, .. } => upstream(format!(
                "The model endpoint failed (HTTP {status}). Try again in a moment."
            )),
            UpstreamError::Cut => upstream(
                "The reply was cut off: the model endpoint closed the stream early.".into(),
            ),
            UpstreamError::Malformed(_) => {
                upstream("The model endpoint sent an answer tokenmeter cannot read.".into())
            }
        }
    }
}

impl From<UpstreamError> for Error {
    fn from(err: UpstreamError) -> Self {
        tracing::warn!(error = %err, "upstream failed");
        Error::App(AppError::from(&err))
    }
}

pub type EventStream = BoxStream<'static, Result<Event, UpstreamError>>;

/// A reply the upstream accepted: its events, and the upstream's id for the call.
pub struct Opened {
    pub events: EventStream,
    /// LiteLLM's `x-litellm-call-id` (the key of its spend log), when the upstream sent one.
    pub call_id: Option<String>,
}

pub struct Llm {
    http: reqwest::Client,
    upstream: Upstream,
    timeout: Duration,
    prices: HashMap<String, ModelPrice>,
    secrets: SecretBox,
    demo_delay: Duration,
    /// Held only to read or write, never across a fetch.
    models: std::sync::Mutex<ModelCache>,
    /// One fetch of the model list at a time; the others wait for its answer.
    models_fetch: tokio::sync::Mutex<()>,
    /// One key provisioning at a time per instance (other instances are handled by the
    /// database's primary key).
    provisioning: tokio::sync::Mutex<()>,
}

impl Llm {
    pub fn new(config: &Config, secrets: SecretBox) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.llm_timeout_secs.min(10)))
            .no_proxy()
            .build()
            .map_err(|e| Error::internal(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            upstream: config.upstream.clone(),
            timeout: Duration::from_secs(config.llm_timeout_secs),
            prices: config.model_prices.iter().cloned().collect(),
            secrets,
            demo_delay: Duration::from_millis(config.demo_token_delay_ms),
            models: std::sync::Mutex::default(),
            models_fetch: tokio::sync::Mutex::new(()),
            provisioning: tokio::sync::Mutex::new(()),
        })
    }

    pub fn is_demo(&self) -> bool {
        self.upstream == Upstream::Demo
    }

    /// Whether the upstream is a LiteLLM proxy (usage can be synced from it).
    pub fn is_litellm(&self) -> bool {
        matches!(self.upstream, Upstream::LiteLlm { .. })
    }

    /// Which kind of upstream, for the UI and `/readyz`.
    pub fn kind(&self) -> &'static str {
        match self.upstream {
            Upstream::Demo => "demo",
            Upstream::OpenAi { .. } => "openai",
            Upstream::LiteLlm { .. } => "litellm",
        }
    }

    /// The price of a model from the price table; the demo model is free.
    pub fn price(&self, model: &str) -> Option<ModelPrice> {
        if self.is_demo() && model == DEMO_MODEL {
            return Some(ModelPrice {
                input_per_million: 0,
                output_per_million: 0,
            });
        }
        self.prices.get(model).copied()
    }

    fn base_and_admin_key(&self) -> Option<(&str, Option<&str>)> {
        match &self.upstream {
            Upstream::Demo => None,
            Upstream::OpenAi { base_url, api_key } => Some((base_url, api_key.as_deref())),
            Upstream::LiteLlm {
                base_url,
                master_key,
            } => Some((base_url, Some(master_key))),
        }
    }

    /// The models the upstream offers (cached for a minute; a failure for a few seconds),
    /// sorted by name.
    pub async fn models(&self) -> Result<Vec<String>, UpstreamError> {
        let Some((base, key)) = self.base_and_admin_key() else {
            return Ok(vec![DEMO_MODEL.to_string()]);
        };
        if let Some(answer) = self.cached_models() {
            return answer;
        }
        let _one_fetch = self.models_fetch.lock().await;
        // The fetch this request waited for may have answered already.
        if let Some(answer) = self.cached_models() {
            return answer;
        }
        let mut request = self.http.get(format!("{base}/models"));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let answer = self.json(request).await.and_then(|body| {
            let mut models: Vec<String> = body["data"]
                .as_array()
                .ok_or_else(|| UpstreamError::Malformed("models: no data array".into()))?
                .iter()
                .filter_map(|m| m["id"].as_str().map(str::to_string))
                .collect();
            models.sort();
            models.dedup();
            Ok(models)
        });
        let mut cache = self.models.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(models) = &answer {
            cache.last_good = Some(models.clone());
        }
        cache.answer = Some((Instant::now(), answer.clone()));
        answer
    }

    /// The cached answer while it is fresh.
    fn cached_models(&self) -> Option<Result<Vec<String>, UpstreamError>> {
        let cache = self.models.lock().unwrap_or_else(|e| e.into_inner());
        let (at, answer) = cache.answer.as_ref()?;
        let ttl = if answer.is_ok() {
            MODELS_TTL
        } else {
            MODELS_FAILURE_TTL
        };
        (at.elapsed() < ttl).then(|| answer.clone())
    }

    /// The models a send may name: the current list, else (the upstream cannot list them
    /// now) the last list it gave, else the failure: a model nobody checked is never sent.
    pub async fn offered_models(&self) -> Result<Vec<String>, UpstreamError> {
        match self.models().await {
            Ok(models) => Ok(models),
            Err(e) => {
                let cache = self.models.lock().unwrap_or_else(|e| e.into_inner());
                cache.last_good.clone().ok_or(e)
            }
        }
    }

    /// Sends a request; the answer's head must arrive within the timeout.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, UpstreamError> {
        let secs = self.timeout.as_secs();
        tokio::time::timeout(self.timeout, request.send())
            .await
            .map_err(|_| UpstreamError::Timeout(secs))?
            .map_err(request_error(secs))
    }

    /// Sends a request and reads a JSON answer within the timeout; non-2xx is an error.
    async fn json(&self, request: reqwest::RequestBuilder) -> Result<Value, UpstreamError> {
        let secs = self.timeout.as_secs();
        let response = self.send(request).await?;
        let status = response.status().as_u16();
        let text = tokio::time::timeout(self.timeout, response.text())
            .await
            .map_err(|_| UpstreamError::Timeout(secs))?
            .map_err(request_error(secs))?;
        if !(200..300).contains(&status) {
            return Err(UpstreamError::Status {
                status,
                message: error_message(&text),
            });
        }
        serde_json::from_str(&text).map_err(|e| UpstreamError::Malformed(e.to_string()))
    }

    /// Starts a streamed completion. An error here means nothing arrived; errors inside the
    /// stream come after some of the reply did.
    pub async fn stream(
        &self,
        key: Option<&str>,
        call: &ChatCall,
    ) -> Result<Opened, UpstreamError> {
        let Some((base, _)) = self.base_and_admin_key() else {
            return Ok(Opened {
                events: self.demo_stream(call),
                call_id: None,
            });
        };
        let mut body = json!({
            "model": call.model,
            "messages": call.messages,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        for (name, value) in [
            ("max_tokens", call.max_tokens.map(Value::from)),
            ("temperature", call.temperature.map(Value::from)),
            ("top_p", call.top_p.map(Value::from)),
            ("stop", call.stop.clone()),
        ] {
            if let Some(value) = value {
                body[name] = value;
            }
        }
        let mut request = self
            .http
            .post(format!("{base}/chat/completions"))
            .json(&body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = self.send(request).await?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let text = tokio::time::timeout(self.timeout, response.text())
                .await
                .ok()
                .and_then(|r| r.ok())
                .unwrap_or_default();
            return Err(UpstreamError::Status {
                status,
                message: error_message(&text),
            });
        }
        let call_id = response
            .headers()
            .get("x-litellm-call-id")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(200).collect());
        Ok(Opened {
            events: sse_events(response.bytes_stream().boxed(), self.timeout),
            call_id,
        })
    }

    /// The demo model: a deterministic reply, one real token at a time.
    fn demo_stream(&self, call: &ChatCall) -> EventStream {
        let prompt = call
            .messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.content.as_str())
            .unwrap_or("");
        let mut pieces = tokens::split(&demo_reply(prompt));
        // Like a real model, the demo stops at the reply's cap.
        if let Some(cap) = call.max_tokens {
            pieces.truncate(usize::try_from(cap.max(0)).unwrap_or(usize::MAX));
        }
        let usage = ReportedUsage {
            prompt_tokens: call.prompt_estimate,
            completion_tokens: pieces.len() as i64,
            cost_nanos: Some(0),
        };
        let delay = self.demo_delay;
        let deltas = stream::iter(pieces).then(move |piece| async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok(Event::Delta(piece))
        });
        deltas
            .chain(stream::once(async move { Ok(Event::Usage(usage)) }))
            .boxed()
    }
}

pub(super) fn request_error(secs: u64) -> impl Fn(reqwest::Error) -> UpstreamError {
    move |e| {
        if e.is_timeout() {
            UpstreamError::Timeout(secs)
        } else {
            UpstreamError::Unreachable(e.to_string())
        }
    }
}

/// A summary of an upstream's error answer for people: its `error.message` (OpenAI's shape
/// `{"error": {"message"}}`, else the body),
/// first line only, control characters dropped, at most 200 characters. An HTML error page or
/// a stack trace is not shown raw.
pub(super) fn error_message(body: &str) -> String {
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| match &v["error"] {
            Value::String(s) => Some(s.clone()),
            e => e["message"].as_str().map(str::to_string),
        })
        .unwrap_or_else(|| {
            if body.trim_start().starts_with('<') {
                "an HTML error page".to_string()
            } else {
                body.to_string()
            }
        });
    let line = message.trim().lines().next().unwrap_or("").trim();
    let mut summary: String = line.chars().filter(|c| !c.is_control()).take(200).collect();
    if line.chars().count() > 200 || message.trim().lines().nth(1).is_some() {
        summary.push('…');
    }
    if summary.is_empty() {
        "no details given".into()
    } else {
        summary
    }
}

#[cfg(test)]
mod error_tests {
    use super::error_message;

    #[test]
    fn upstream_errors_are_summarised() {
        assert_eq!(
            error_message(r#"{"error": {"message": "model x does not exist"}}"#),
            "model x does not exist"
        );
        assert_eq!(error_message(r#"{"error": "bad key"}"#), "bad key");
        assert_eq!(
            error_message("<html><body>502 Bad Gateway</body></html>"),
            "an HTML error page"
        );
        assert_eq!(
            error_message("Traceback (most recent call last):\n  File x\nValueError"),
            "Traceback (most recent call last):…"
        );
        let long = "x".repeat(500);
        assert_eq!(error_message(&long).chars().count(), 201);
        assert_eq!(error_message("  "), "no details given");
        assert_eq!(error_message("a\u{7}b"), "ab");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_upstream_failure_has_a_clear_message() {
        let cases = [
            (
                UpstreamError::Unreachable("x".into()),
                502,
                "cannot be reached",
            ),
            (UpstreamError::Timeout(5), 502, "within 5 s"),
            (
                UpstreamError::Status {
                    status: 401,
                    message: "no".into(),
                },
                502,
                "credentials",
            ),
            (
                UpstreamError::Status {
                    status: 429,
                    message: "slow".into(),
                },
                429,
                "rate limiting",
            ),
            (
                UpstreamError::Status {
                    status: 400,
                    message: "bad model".into(),
                },
                400,
                "bad model",
            ),
            (
                UpstreamError::Status {
                    status: 503,
                    message: "".into(),
                },
                502,
                "HTTP 503",
            ),
            (UpstreamError::Cut, 502, "cut off"),
            (UpstreamError::Malformed("x".into()), 502, "cannot read"),
        ];
        for (err, status, text) in cases {
            let app = AppError::from(&err);
            assert_eq!(app.code.status(), status, "{err}");
            assert!(app.message.contains(text), "{err}: {}", app.message);
        }
    }

    #[test]
    fn upstream_error_bodies_are_shortened() {
        assert_eq!(
            error_message(r#"{"error":{"message":"Invalid key"}}"#),
            "Invalid key"
        );
        assert_eq!(error_message(r#"{"error":"plain"}"#), "plain");
        assert_eq!(error_message(&"x".repeat(1000)).chars().count(), 201);
    }
}
