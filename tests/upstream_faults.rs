//! The faults a real upstream will not produce on demand — timeouts, 500, 401, 429, a stream
//! cut mid-way, a stall, garbage — from a fake OpenAI-compatible server on a loopback port.
//! Each must reach the user as a clear message, keep what arrived, and record only real usage.

#[macro_use]
mod common;

use axum::body::Body;
use axum::extract::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use common::fake_litellm::{FakeLiteLlm, MASTER_KEY, USER_KEY};
use common::{assert_error, my_id, sse_data, sse_text, usage_days, Backend, TestApp};
use futures_util::stream;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::time::Duration;

const KEY: &str = "shared-upstream-key";

fn chunk(text: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]})
    )
}

fn usage(prompt: i64, completion: i64) -> String {
    format!(
        "data: {}\n\n",
        json!({"choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion}})
    )
}

/// Parts of a streamed body, each after an optional pause; the body ends after the last.
fn body(parts: Vec<(u64, String)>) -> Response {
    let parts = stream::iter(parts).then(|(pause, text)| async move {
        tokio::time::sleep(Duration::from_millis(pause)).await;
        Ok::<_, Infallible>(text)
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(parts))
        .unwrap()
}
use futures_util::StreamExt;

async fn completions(headers: HeaderMap, Json(request): Json<Value>) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {KEY}"))
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": "bad key"}})),
        )
            .into_response();
    }
    assert_eq!(
        request["stream"], true,
        "tokenmeter always streams from the upstream"
    );
    assert_eq!(request["stream_options"]["include_usage"], true);
    let model = request["model"].as_str().unwrap_or_default();
    let error = |status: StatusCode, message: &str| {
        (status, Json(json!({"error": {"message": message}}))).into_response()
    };
    match model {
        "ok" | "unpriced" => body(vec![
            (0, chunk("Hello")),
            (0, chunk(", world")),
            (
                0,
                format!(
                    "data: {}\n\n",
                    json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                ),
            ),
            (0, usage(12, 3)),
            (0, "data: [DONE]\n\n".into()),
        ]),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            body(vec![(0, chunk("too late"))])
        }
        "fail500" => error(StatusCode::INTERNAL_SERVER_ERROR, "internal kaboom"),
        "fail503" => error(StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
        "fail401" => error(StatusCode::UNAUTHORIZED, "key revoked"),
        "fail429" => error(StatusCode::TOO_MANY_REQUESTS, "slow down"),
        "cut" => body(vec![
            (0, chunk("The first")),
            (0, chunk(" part")),
            (0, chunk(" arrived")),
        ]),
        "cut-after-usage" => body(vec![(0, chunk("Partial")), (0, usage(20, 1))]),
        "stall" => body(vec![
            (0, chunk("Then")),
            (0, chunk(" silence")),
            (5_000, chunk("late")),
        ]),
        "garbage" => body(vec![(0, "data: {not json\n\n".into())]),
        "error-event" => body(vec![
            (0, chunk("Start")),
            (
                0,
                format!(
                    "data: {}\n\n",
                    json!({"error": {"message": "upstream gave up", "code": "500"}})
                ),
            ),
        ]),
        // 3.5 MB of reply as fast as it goes: more than the sockets between tokenmeter and a
        // client that does not read can hold.
        "flood" => {
            let piece = chunk(&"x".repeat(100));
            let parts = stream::iter((0..35_000).map(move |_| Ok::<_, Infallible>(piece.clone())))
                .chain(stream::once(async { Ok(usage(5, 35_000)) }));
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(parts))
                .unwrap()
        }
        _ => error(StatusCode::NOT_FOUND, "no such model"),
    }
}

async fn models() -> Json<Value> {
    let ids = [
        "ok",
        "unpriced",
        "slow",
        "fail500",
        "fail503",
        "fail401",
        "fail429",
        "cut",
        "cut-after-usage",
        "stall",
        "garbage",
        "error-event",
        "flood",
    ];
    Json(
        json!({"object": "list", "data": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()}),
    )
}

/// Starts the fake upstream; returns its base URL.
async fn fake_upstream() -> String {
    let app = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(completions));
    let addr = common::serve_on_loopback(app).await;
    format!("http://{addr}/v1")
}

async fn app_with(backend: Backend, base: &str, key: &str) -> TestApp {
    TestApp::start_with(
        backend,
        &[
            ("LLM_BASE_URL", base),
            ("LLM_API_KEY", key),
            ("TOKENMETER_LLM_TIMEOUT_SECONDS", "1"),
            // ok: $1 per million input tokens, $2 per million output tokens.
            (
                "TOKENMETER_MODEL_PRICES",
                "ok=1:2,cut=1:2,stall=1:2,cut-after-usage=1:2",
            ),
        ],
    )
    .await
}

async fn send(
    app: &TestApp,
    client: &reqwest::Client,
    model: &str,
    stream: bool,
) -> reqwest::Response {
    client
        .post(app.url("/api/chat/completions"))
        .json(&json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
}

on_both_backends!(
    failures_before_any_reply_are_clear_errors_and_write_nothing,
    cut_and_stalled_streams_keep_what_arrived,
    prices_come_from_the_table_or_the_model_is_unpriced,
    an_unreachable_upstream_is_a_clear_error,
    litellm_key_failures_are_clear_and_a_key_is_made_once,
    a_client_that_stops_reading_is_dropped_and_its_reply_recorded,
);

async fn a_client_that_stops_reading_is_dropped_and_its_reply_recorded(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let base = fake_upstream().await;
    let app = TestApp::start_with(
        backend,
        &[
            ("LLM_BASE_URL", base.as_str()),
            ("LLM_API_KEY", KEY),
            ("TOKENMETER_STREAM_IDLE_SECONDS", "1"),
        ],
    )
    .await;
    let alice = app.signed_up("alice@example.com").await;
    let alice_id = my_id(&app, &alice).await;
    let token = app
        .post(&alice, "/api/profile/tokens", json!({"name": "reader"}))
        .await
        .1["data"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    // A raw client with a small receive buffer: it reads the head, then nothing more.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let addr = app.base.trim_start_matches("http://").parse().unwrap();
    let mut conn = socket.connect(addr).await.unwrap();
    let body = json!({"model": "flood", "stream": true,
                      "messages": [{"role": "user", "content": "everything at once"}]})
    .to_string();
    conn.write_all(
        format!(
            "POST /api/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = vec![0u8; 1024];
    let n = conn.read(&mut head).await.unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
    // The reply is recorded as stopped soon after the idle timeout, with what was sent.
    let mut record = None;
    for _ in 0..100 {
        record = with_pool!(&app.db, |p| sqlx::query_as::<_, (String, bool, i64)>(
            "select status, estimated, completion_tokens from usage_records where user_id = $1"
        )
        .bind(alice_id)
        .fetch_optional(p)
        .await)
        .unwrap();
        if record.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, estimated, completion) = record.expect("the reply was recorded");
    assert_eq!(
        status, "stopped",
        "ended by the idle timeout, not by the upstream"
    );
    assert!(estimated, "cut before the upstream's usage: our count");
    assert!(completion > 0 && completion < 35_000 * 25, "{completion}");
    let days = usage_days(&app, alice_id).await;
    assert_eq!(days[0].requests_count, 1);
    drop(conn);
}

async fn failures_before_any_reply_are_clear_errors_and_write_nothing(backend: Backend) {
    let base = fake_upstream().await;
    let app = app_with(backend, &base, KEY).await;
    let alice = app.signed_up("alice@example.com").await;
    let alice_id = my_id(&app, &alice).await;
    for (model, status, code, text) in [
        ("slow", 502, "upstream", "did not answer within 1 s"),
        ("fail500", 502, "upstream", "failed (HTTP 500)"),
        ("fail503", 502, "upstream", "failed (HTTP 503)"),
        (
            "fail401",
            502,
            "upstream",
            "refused tokenmeter's credentials",
        ),
        ("fail429", 429, "rate_limited", "rate limiting"),
    ] {
        for stream in [false, true] {
            let res = send(&app, &alice, model, stream).await;
            let (got, body) = common::read(res).await;
            let message = assert_error(got, &body, status, code);
            assert!(message.contains(text), "{model}: {message}");
        }
    }
    // A garbage first event and an error event with nothing before it: the stream has begun
    // (200), so the error comes as an event; nothing is kept.
    for model in ["garbage"] {
        let events = sse_data(send(&app, &alice, model, true).await).await;
        let error = events
            .iter()
            .find(|e| e["error"].is_object())
            .expect("error event");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("cannot read"),
            "{error}"
        );
        assert_eq!(error["recorded"], false);
        assert_eq!(events.last().unwrap(), "[DONE]");
    }
    let (_, list) = app.get(&alice, "/api/conversations").await;
    assert_eq!(list["data"], json!([]), "no conversation was started");
    assert!(
        usage_days(&app, alice_id).await.is_empty(),
        "no usage was recorded"
    );

    // The wrong shared key: every send fails the same clear way.
    let wrong = app_with(backend, &base, "not-the-key").await;
    let bob = wrong.signed_up("bob@example.com").await;
    let (status, body) = common::read(send(&wrong, &bob, "ok", false).await).await;
    let message = assert_error(status, &body, 502, "upstream");
    assert!(message.contains("credentials"), "{message}");
}

async fn cut_and_stalled_streams_keep_what_arrived(backend: Backend) {
    let base = fake_upstream().await;
    let app = app_with(backend, &base, KEY).await;
    let alice = app.signed_up("alice@example.com").await;
    let alice_id = my_id(&app, &alice).await;

    for (model, text, message) in [
        ("cut", "The first part arrived", "cut off"),
        ("stall", "Then silence", "did not answer within 1 s"),
        ("error-event", "Start", "failed (HTTP 500)"),
    ] {
        let res = send(&app, &alice, model, true).await;
        assert_eq!(res.status(), 200);
        let conversation = res.headers()["x-conversation-id"]
            .to_str()
            .unwrap()
            .to_string();
        let events = sse_data(res).await;
        assert_eq!(sse_text(&events), text, "{model}");
        let error = events
            .iter()
            .find(|e| e["error"].is_object())
            .expect("error event");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains(message),
            "{model}: {error}"
        );
        assert_eq!(error["status"], "interrupted");
        assert_eq!(error["recorded"], true);
        let (_, detail) = app
            .get(&alice, &format!("/api/conversations/{conversation}"))
            .await;
        let reply = &detail["data"]["messages"][1];
        assert_eq!(reply["content"], text, "{model}");
        assert_eq!(reply["status"], "interrupted");
        assert!(reply["error"].as_str().unwrap().contains(message));
        // Nothing reported: counted with the tokenizer, and priced from the table.
        assert_eq!(reply["usage_estimated"], true);
        assert_eq!(
            reply["completion_tokens"],
            tokenmeter::server::llm::tokens::count(text)
        );
    }

    // Usage reported before the cut is the usage recorded: 20 * $1/M + 1 * $2/M = $0.000022.
    let res = send(&app, &alice, "cut-after-usage", false).await;
    let (status, body) = common::read(res).await;
    let message = assert_error(status, &body, 502, "upstream");
    assert!(message.contains("cut off"), "{message}");
    let (_, list) = app.get(&alice, "/api/conversations").await;
    let newest = list["data"][0]["id"].as_str().unwrap().to_string();
    let (_, detail) = app
        .get(&alice, &format!("/api/conversations/{newest}"))
        .await;
    let reply = &detail["data"]["messages"][1];
    assert_eq!(reply["content"], "Partial");
    assert_eq!(reply["prompt_tokens"], 20);
    assert_eq!(reply["completion_tokens"], 1);
    assert_eq!(reply["usage_estimated"], false);
    assert_eq!(reply["cost"], "0.000022");

    let days = usage_days(&app, alice_id).await;
    assert_eq!(
        days[0].requests_count, 4,
        "three cut streams and one cut after usage"
    );
}

async fn prices_come_from_the_table_or_the_model_is_unpriced(backend: Backend) {
    let base = fake_upstream().await;
    let app = app_with(backend, &base, KEY).await;
    let alice = app.signed_up("alice@example.com").await;
    let alice_id = my_id(&app, &alice).await;
    let (status, body) = common::read(send(&app, &alice, "ok", false).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "Hello, world");
    // 12 * $1/M + 3 * $2/M = $0.000018
    assert_eq!(body["usage"]["prompt_tokens"], 12);
    assert_eq!(body["usage"]["completion_tokens"], 3);
    assert_eq!(body["usage"]["cost"], "0.000018");
    let events = sse_data(send(&app, &alice, "unpriced", true).await).await;
    let usage = &events[events.len() - 2]["usage"];
    assert!(usage["cost"].is_null(), "{usage}");
    let day = &usage_days(&app, alice_id).await[0];
    assert_eq!(day.cost_nanos, 18_000);
    assert_eq!(day.tokens_used, 30);
    assert_eq!(day.model_usage.0["ok"].cost_nanos, 18_000);
    assert!(!day.model_usage.0["ok"].unpriced);
    assert!(day.model_usage.0["unpriced"].unpriced);
    assert_eq!(day.model_usage.0["unpriced"].tokens, 15);
}

async fn an_unreachable_upstream_is_a_clear_error(backend: Backend) {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    let app = app_with(backend, &base, KEY).await;
    let alice = app.signed_up("alice@example.com").await;
    let (status, body) = common::read(send(&app, &alice, "ok", true).await).await;
    let message = assert_error(status, &body, 502, "upstream");
    assert!(message.contains("cannot be reached"), "{message}");
    let (status, body) = app.get(&alice, "/api/models").await;
    let message = assert_error(status, &body, 502, "upstream");
    assert!(message.contains("cannot be reached"), "{message}");
}

async fn litellm_key_failures_are_clear_and_a_key_is_made_once(backend: Backend) {
    let fake = FakeLiteLlm::start().await;
    fake.script().keys_down = true;
    let app = TestApp::start_with(
        backend,
        &[
            ("LITELLM_URL", fake.url.as_str()),
            ("LITELLM_MASTER_KEY", MASTER_KEY),
            ("TOKENMETER_SECRET", "s3cret"),
        ],
    )
    .await;
    let alice = app.signed_up("alice@example.com").await;
    let alice_id = my_id(&app, &alice).await;

    let (status, body) = common::read(send(&app, &alice, "ok", false).await).await;
    let message = assert_error(status, &body, 502, "upstream");
    assert!(
        message.contains("Could not create your LiteLLM key"),
        "{message}"
    );
    assert!(message.contains("HTTP 503"), "{message}");
    assert!(
        tokenmeter::server::db::llm_keys::find_sealed(&app.db, alice_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(usage_days(&app, alice_id).await.is_empty());

    fake.script().keys_down = false;
    for _ in 0..3 {
        let (status, body) = common::read(send(&app, &alice, "ok", false).await).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["choices"][0]["message"]["content"], "Hi");
    }
    assert_eq!(fake.script().keys_made, 1, "one key, reused");
    let sealed = tokenmeter::server::db::llm_keys::find_sealed(&app.db, alice_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !sealed
            .windows(USER_KEY.len())
            .any(|w| w == USER_KEY.as_bytes()),
        "sealed at rest"
    );
    assert_eq!(usage_days(&app, alice_id).await[0].requests_count, 3);
}
