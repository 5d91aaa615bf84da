//! Reading an upstream's streamed reply: its server-sent events as [`Event`]s (deltas, usage,
//! the end), with a timeout between two chunks, and a body cut before its end told apart from
//! one that finished.

use super::{error_message, Event, EventStream, ReportedUsage, UpstreamError};
use crate::domain::money::usd_f64_to_nanos;
use crate::domain::sse::SseDecoder;
use futures_util::stream::{self, BoxStream, StreamExt};
use serde_json::Value;
use std::collections::VecDeque;
use std::time::Duration;

/// Reads an upstream SSE body as events: deltas, usage, the end. A body that ends without
/// `[DONE]` or a finish reason was cut.
pub(super) fn sse_events(
    bytes: BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    timeout: Duration,
) -> EventStream {
    struct State {
        bytes: BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
        decoder: SseDecoder,
        ready: VecDeque<Result<Event, UpstreamError>>,
        finished: bool,
        over: bool,
    }
    let state = State {
        bytes,
        decoder: SseDecoder::new(),
        ready: VecDeque::new(),
        finished: false,
        over: false,
    };
    stream::unfold(state, move |mut st| async move {
        loop {
            if let Some(item) = st.ready.pop_front() {
                if item.is_err() {
                    st.over = true;
                    st.ready.clear();
                }
                return Some((item, st));
            }
            if st.over {
                return None;
            }
            let next = tokio::time::timeout(timeout, st.bytes.next()).await;
            match next {
                Err(_) => {
                    st.ready
                        .push_back(Err(UpstreamError::Timeout(timeout.as_secs())));
                }
                Ok(None) => {
                    st.over = true;
                    if !st.finished {
                        return Some((Err(UpstreamError::Cut), st));
                    }
                }
                Ok(Some(Err(_))) => st.ready.push_back(Err(UpstreamError::Cut)),
                Ok(Some(Ok(chunk))) => {
                    for data in st.decoder.push(&chunk) {
                        if data.trim() == "[DONE]" {
                            st.finished = true;
                            st.over = true;
                            break;
                        }
                        match parse_chunk(&data) {
                            Ok((events, finished)) => {
                                st.finished |= finished;
                                st.ready.extend(events.into_iter().map(Ok));
                            }
                            Err(e) => {
                                st.ready.push_back(Err(e));
                                break;
                            }
                        }
                    }
                }
            }
        }
    })
    .boxed()
}

/// One `chat.completion.chunk`: its text, its usage (LiteLLM adds `usage.cost`), and whether
/// it carries a finish reason. An `{"error": ...}` event is an upstream failure.
fn parse_chunk(data: &str) -> Result<(Vec<Event>, bool), UpstreamError> {
    let value: Value =
        serde_json::from_str(data).map_err(|e| UpstreamError::Malformed(e.to_string()))?;
    if !value["error"].is_null() {
        return Err(UpstreamError::Status {
            status: value["error"]["code"]
                .as_str()
                .and_then(|c| c.parse().ok())
                .or_else(|| value["error"]["code"].as_u64().map(|c| c as u16))
                .unwrap_or(502),
            message: error_message(data),
        });
    }
    let mut events = Vec::new();
    let mut finished = false;
    if let Some(choice) = value["choices"].as_array().and_then(|c| c.first()) {
        if let Some(text) = choice["delta"]["content"].as_str() {
            if !text.is_empty() {
                events.push(Event::Delta(text.to_string()));
            }
        }
        finished = !choice["finish_reason"].is_null();
    }
    let usage = &value["usage"];
    if usage.is_object() {
        let count = |name: &str| usage[name].as_i64().filter(|n| *n >= 0);
        if let (Some(prompt_tokens), Some(completion_tokens)) =
            (count("prompt_tokens"), count("completion_tokens"))
        {
            events.push(Event::Usage(ReportedUsage {
                prompt_tokens,
                completion_tokens,
                cost_nanos: usage["cost"].as_f64().and_then(usd_f64_to_nanos),
            }));
        }
    }
    Ok((events, finished))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_litellm_chunks() {
        let (events, finished) = parse_chunk(
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}"#,
        )
        .unwrap();
        assert_eq!(events, vec![Event::Delta("Hel".into())]);
        assert!(!finished);
        let (events, finished) =
            parse_chunk(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#).unwrap();
        assert!(events.is_empty() && finished);
        let (events, _) = parse_chunk(
            r#"{"choices":[{"index":0,"delta":{}}],"usage":{"completion_tokens":10,"prompt_tokens":9,"total_tokens":19,"cost":0.000029}}"#,
        )
        .unwrap();
        assert_eq!(
            events,
            vec![Event::Usage(ReportedUsage {
                prompt_tokens: 9,
                completion_tokens: 10,
                cost_nanos: Some(29_000)
            })]
        );
        // OpenAI's own usage chunk has an empty choices array and no cost.
        let (events, _) =
            parse_chunk(r#"{"choices":[],"usage":{"completion_tokens":1,"prompt_tokens":2}}"#)
                .unwrap();
        assert_eq!(
            events,
            vec![Event::Usage(ReportedUsage {
                prompt_tokens: 2,
                completion_tokens: 1,
                cost_nanos: None
            })]
        );
    }

    #[test]
    fn error_events_and_garbage_are_failures() {
        let err = parse_chunk(r#"{"error":{"message":"boom","code":"429"}}"#).unwrap_err();
        assert_eq!(
            err,
            UpstreamError::Status {
                status: 429,
                message: "boom".into()
            }
        );
        assert!(matches!(
            parse_chunk("not json"),
            Err(UpstreamError::Malformed(_))
        ));
    }
}
