//! Sends a chat message and reads the streamed reply in the browser: `fetch` to
//! `POST /api/chat/completions` with `stream: true`, the body read chunk by chunk and decoded
//! with the same SSE decoder the server uses for its upstream. Stop aborts the fetch; the
//! server notices the closed connection, keeps what arrived and records it.

use uuid::Uuid;

/// What a caller asks for.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SendBody {
    pub model: String,
    pub conversation_id: Option<Uuid>,
    pub messages: Vec<SendMessage>,
    pub stream: bool,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct SendMessage {
    pub role: &'static str,
    pub content: String,
}

/// The usage line the server sends at the end (read from the event as it is; a field that is
/// missing reads as zero or none).
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct EndUsage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost: Option<String>,
    pub estimated: bool,
}

/// How a send ended.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEnd {
    /// The reply is complete and stored.
    Finished(EndUsage),
    /// The user pressed Stop: the server keeps what arrived.
    Stopped,
    /// The reply broke off; `recorded` says whether the part that arrived was kept.
    Failed {
        message: String,
        recorded: bool,
        code: String,
    },
}

/// One `data` payload as the server sends it: a `chat.completion.chunk`, the usage line, or an
/// `{"error": …, "recorded": …}` event. Read into types rather than a JSON tree: the browser then
/// carries no decoder for arbitrary JSON (maps, floats). Fields it does not use are skipped.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Event {
    error: Option<ErrorBody>,
    recorded: bool,
    choices: Vec<Choice>,
    usage: Option<EndUsage>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct ErrorBody {
    code: Option<String>,
    message: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Choice {
    delta: Option<Delta>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Delta {
    content: Option<String>,
}

/// Applies one SSE `data` payload; returns the end when the payload is one.
pub fn apply_event(
    data: &str,
    on_delta: &mut impl FnMut(&str),
    usage: &mut Option<EndUsage>,
) -> Option<StreamEnd> {
    if data.trim() == "[DONE]" {
        return Some(match usage.take() {
            Some(u) => StreamEnd::Finished(u),
            None => StreamEnd::Failed {
                message: "The reply ended without its usage line.".into(),
                recorded: false,
                code: "upstream".into(),
            },
        });
    }
    let event: Event = serde_json::from_slice(data.as_bytes()).ok()?;
    if let Some(error) = event.error {
        return Some(StreamEnd::Failed {
            message: error.message.unwrap_or_else(|| "The reply failed.".into()),
            recorded: event.recorded,
            code: error.code.unwrap_or_else(|| "upstream".into()),
        });
    }
    if let Some(text) = event
        .choices
        .into_iter()
        .next()
        .and_then(|choice| choice.delta?.content)
    {
        on_delta(&text);
    }
    if event.usage.is_some() {
        *usage = event.usage;
    }
    None
}

/// The error message of an enveloped error answer (`{"error": {"code", "message"}}`, read as an
/// [`Event`]), or a generic one for the status.
pub fn error_message(status: u16, body: &str) -> (String, String) {
    let error = serde_json::from_slice::<Event>(body.as_bytes())
        .ok()
        .and_then(|answer| answer.error)
        .unwrap_or_default();
    let code = error.code.unwrap_or_else(|| "upstream".into());
    let message = error
        .message
        .unwrap_or_else(|| format!("The server answered HTTP {status}. Try again."));
    (message, code)
}

/// Aborts a send in progress (in the browser); nothing on the server. The browser's
/// controller is wrapped so the page state that holds it stays `Send`: a value stored with
/// `StoredValue::new_local` is dropped on whichever server thread cleans the page up, which
/// panicked and cut off ~20% of /chat responses.
#[derive(Clone)]
pub struct Stopper {
    #[cfg(feature = "hydrate")]
    controller: send_wrapper::SendWrapper<web_sys::AbortController>,
}

impl Stopper {
    pub fn new() -> Option<Self> {
        #[cfg(feature = "hydrate")]
        {
            web_sys::AbortController::new()
                .ok()
                .map(|controller| Stopper {
                    controller: send_wrapper::SendWrapper::new(controller),
                })
        }
        #[cfg(not(feature = "hydrate"))]
        {
            None
        }
    }

    pub fn stop(&self) {
        #[cfg(feature = "hydrate")]
        self.controller.abort();
    }
}

/// Sends and streams. `on_conversation` gets the conversation id as soon as the server names
/// it (a first message starts a new conversation); `on_delta` gets each piece of the reply.
pub async fn send(
    body: &SendBody,
    stopper: Option<&Stopper>,
    mut on_conversation: impl FnMut(Uuid),
    mut on_delta: impl FnMut(&str),
) -> StreamEnd {
    #[cfg(feature = "hydrate")]
    {
        match browser::send(body, stopper, &mut on_conversation, &mut on_delta).await {
            Ok(end) => end,
            Err(_) if stopper.is_some_and(|s| s.controller.signal().aborted()) => {
                StreamEnd::Stopped
            }
            Err(e) => StreamEnd::Failed {
                message: format!(
                    "The connection to tokenmeter failed ({e}). Check your network and try again."
                ),
                recorded: false,
                code: "network".into(),
            },
        }
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (body, stopper, &mut on_conversation, &mut on_delta);
        StreamEnd::Failed {
            message: "Sending needs the browser.".into(),
            recorded: false,
            code: "internal".into(),
        }
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::*;
    use crate::domain::sse::SseDecoder;
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    fn js_error(e: JsValue) -> String {
        e.as_string()
            .or_else(|| {
                js_sys::Reflect::get(&e, &"message".into())
                    .ok()
                    .and_then(|m| m.as_string())
            })
            .unwrap_or_else(|| "network error".into())
    }

    pub async fn send(
        body: &SendBody,
        stopper: Option<&Stopper>,
        on_conversation: &mut impl FnMut(Uuid),
        on_delta: &mut impl FnMut(&str),
    ) -> Result<StreamEnd, String> {
        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        init.set_credentials(web_sys::RequestCredentials::SameOrigin);
        let headers = web_sys::Headers::new().map_err(js_error)?;
        headers
            .set("content-type", "application/json")
            .map_err(js_error)?;
        headers
            .set("accept", "text/event-stream")
            .map_err(js_error)?;
        init.set_headers(&headers);
        let json = serde_json::to_string(body).map_err(|e| e.to_string())?;
        init.set_body(&JsValue::from_str(&json));
        if let Some(s) = stopper {
            init.set_signal(Some(&s.controller.signal()));
        }
        let window = web_sys::window().ok_or("no window")?;
        let response: web_sys::Response =
            JsFuture::from(window.fetch_with_str_and_init("/api/chat/completions", &init))
                .await
                .map_err(js_error)?
                .dyn_into()
                .map_err(js_error)?;
        if !response.ok() {
            let text = JsFuture::from(response.text().map_err(js_error)?)
                .await
                .map_err(js_error)?
                .as_string()
                .unwrap_or_default();
            let (message, code) = error_message(response.status(), &text);
            return Ok(StreamEnd::Failed {
                message,
                recorded: false,
                code,
            });
        }
        if let Some(id) = response
            .headers()
            .get("x-conversation-id")
            .ok()
            .flatten()
            .and_then(|v| Uuid::parse_str(&v).ok())
        {
            on_conversation(id);
        }
        let reader: web_sys::ReadableStreamDefaultReader = response
            .body()
            .ok_or("empty body")?
            .get_reader()
            .dyn_into()
            .map_err(|o| js_error(o.into()))?;
        let mut decoder = SseDecoder::new();
        let mut usage = None;
        loop {
            let chunk = JsFuture::from(reader.read()).await.map_err(js_error)?;
            let done = js_sys::Reflect::get(&chunk, &"done".into())
                .map_err(js_error)?
                .as_bool()
                .unwrap_or(true);
            if done {
                break;
            }
            let value = js_sys::Reflect::get(&chunk, &"value".into()).map_err(js_error)?;
            let bytes = js_sys::Uint8Array::new(&value).to_vec();
            for data in decoder.push(&bytes) {
                if let Some(end) = apply_event(&data, on_delta, &mut usage) {
                    return Ok(end);
                }
            }
        }
        Ok(StreamEnd::Failed {
            message: "The connection closed before the reply was complete.".into(),
            recorded: true,
            code: "upstream".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_text_usage_and_an_end() {
        let mut text = String::new();
        let mut usage = None;
        let mut push = |d: &str| text.push_str(d);
        assert_eq!(
            apply_event(
                r#"{"choices":[{"delta":{"content":"Hi"}}]}"#,
                &mut push,
                &mut usage
            ),
            None
        );
        // A chunk as the server writes it, with fields the page does not read.
        assert_eq!(
            apply_event(
                r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","conversation_id":"0b6f4bd8-4ad8-4b5e-9e2b-2f4f1f4f4f4f","choices":[{"index":0,"delta":{"role":"assistant","content":" there"},"finish_reason":null}]}"#,
                &mut push,
                &mut usage
            ),
            None
        );
        assert_eq!(
            apply_event(
                r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"cost":"0.00","estimated":false}}"#,
                &mut push,
                &mut usage
            ),
            None
        );
        let end = apply_event("[DONE]", &mut push, &mut usage).unwrap();
        assert_eq!(
            end,
            StreamEnd::Finished(EndUsage {
                prompt_tokens: 3,
                completion_tokens: 1,
                cost: Some("0.00".into()),
                estimated: false
            })
        );
        assert_eq!(text, "Hi there");
        let failed = apply_event(
            r#"{"error":{"code":"upstream","message":"cut off"},"status":502,"recorded":true,"usage":{"prompt_tokens":3,"completion_tokens":1,"cost":null,"estimated":true}}"#,
            &mut |_| {},
            &mut None,
        );
        assert_eq!(
            failed,
            Some(StreamEnd::Failed {
                message: "cut off".into(),
                recorded: true,
                code: "upstream".into()
            })
        );
    }

    #[test]
    fn payloads_that_are_not_events_change_nothing() {
        let mut usage = None;
        for data in [
            "{not json",
            "[]",
            r#"{"choices":"x"}"#,
            r#"{"usage":{"prompt_tokens":"many"}}"#,
        ] {
            assert_eq!(
                apply_event(data, &mut |_| panic!("no text"), &mut usage),
                None
            );
        }
        assert_eq!(usage, None);
    }

    #[test]
    fn error_answers_give_their_message() {
        let (message, code) = error_message(
            429,
            r#"{"success":false,"data":null,"error":{"code":"rate_limited","message":"slow down"}}"#,
        );
        assert_eq!(
            (message.as_str(), code.as_str()),
            ("slow down", "rate_limited")
        );
        let (message, _) = error_message(502, "<html>bad gateway</html>");
        assert!(message.contains("HTTP 502"));
    }
}
