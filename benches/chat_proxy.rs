//! What the proxy path costs: a streamed completion sent straight to an OpenAI-compatible
//! upstream versus the same completion through tokenmeter (`POST /api/chat/completions` with
//! an API token: authentication, model check, SSE relay, and the exchange and its usage
//! written to SQLite at the end). Both are measured in the same run, interleaved, against a
//! local fake upstream that streams as fast as it can, so the difference is tokenmeter's own.
//!
//! Run: `cargo bench --features ssr --bench chat_proxy` (add `-- 500` for more rounds).
//! Prints time to first token and time per streamed chunk, direct and through the proxy.

#[path = "../tests/common/mod.rs"]
#[allow(dead_code, unused_macros)]
mod common;

use axum::body::Body;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use common::{Backend, TestApp};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::time::{Duration, Instant};

/// Content chunks per reply.
const CHUNKS: usize = 200;

async fn completions(Json(_request): Json<Value>) -> Response {
    let chunk = format!(
        "data: {}\n\n",
        json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": " tok"}}]})
    );
    let mut parts: Vec<String> = vec![chunk; CHUNKS];
    parts.push(format!(
        "data: {}\n\n",
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    ));
    parts.push(format!(
        "data: {}\n\n",
        json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": CHUNKS}})
    ));
    parts.push("data: [DONE]\n\n".into());
    // One write per chunk, as a model server flushes them.
    let body = futures_util::stream::iter(parts.into_iter().map(Ok::<_, Infallible>));
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(body))
        .unwrap()
}

async fn models() -> Json<Value> {
    Json(json!({"object": "list", "data": [{"id": "bench"}]}))
}

async fn fake_upstream() -> String {
    let app = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(completions));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

struct Sample {
    first_token: Duration,
    per_chunk: Duration,
}

/// Streams one completion; times the first content chunk and the chunks after it.
async fn measure(client: &reqwest::Client, url: &str) -> Sample {
    let start = Instant::now();
    let res = client
        .post(url)
        .json(&json!({"model": "bench", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();
    let mut decoder = tokenmeter::domain::sse::SseDecoder::new();
    let (mut first, mut last, mut chunks) = (None, start, 0usize);
    while let Some(bytes) = body.next().await {
        for data in decoder.push(&bytes.unwrap()) {
            if data.contains("\"content\"") {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                chunks += 1;
            }
        }
    }
    assert_eq!(chunks, CHUNKS, "every chunk arrived");
    let first = first.unwrap();
    Sample {
        first_token: first - start,
        per_chunk: (last - first) / (CHUNKS as u32 - 1),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(name: &str, samples: &[Sample]) -> (Duration, Duration, Duration, Duration) {
    let mut ttft: Vec<Duration> = samples.iter().map(|s| s.first_token).collect();
    let mut chunk: Vec<Duration> = samples.iter().map(|s| s.per_chunk).collect();
    ttft.sort();
    chunk.sort();
    let figures = (
        percentile(&ttft, 0.5),
        percentile(&ttft, 0.99),
        percentile(&chunk, 0.5),
        percentile(&chunk, 0.99),
    );
    println!(
        "{name:<8} first token p50 {:>9.3} ms  p99 {:>9.3} ms   per chunk p50 {:>7.1} µs  p99 {:>7.1} µs",
        figures.0.as_secs_f64() * 1e3,
        figures.1.as_secs_f64() * 1e3,
        figures.2.as_secs_f64() * 1e6,
        figures.3.as_secs_f64() * 1e6,
    );
    figures
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let upstream = fake_upstream().await;
    let app = TestApp::start_with(
        Backend::Sqlite,
        &[("LLM_BASE_URL", upstream.as_str()), ("LLM_API_KEY", "k")],
    )
    .await;
    let user = app.signed_up("bench@example.com").await;
    let (_, token) = app
        .post(&user, "/api/profile/tokens", json!({"name": "bench"}))
        .await;
    let proxy = app.bearer_client(token["data"]["secret"].as_str().unwrap());
    let direct = app.bearer_client("k");
    let direct_url = format!("{upstream}/chat/completions");
    let proxy_url = app.url("/api/chat/completions");

    // Warm both paths (connections, tokenizer, caches).
    for _ in 0..10 {
        measure(&direct, &direct_url).await;
        measure(&proxy, &proxy_url).await;
    }
    let (mut d, mut p) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        d.push(measure(&direct, &direct_url).await);
        p.push(measure(&proxy, &proxy_url).await);
    }
    println!(
        "chat_proxy: {rounds} streamed completions of {CHUNKS} chunks each way, interleaved, SQLite, loopback"
    );
    let direct = report("direct", &d);
    let proxied = report("proxied", &p);
    println!(
        "added    first token p50 {:>9.3} ms  p99 {:>9.3} ms   per chunk p50 {:>7.1} µs  p99 {:>7.1} µs",
        (proxied.0.as_secs_f64() - direct.0.as_secs_f64()) * 1e3,
        (proxied.1.as_secs_f64() - direct.1.as_secs_f64()) * 1e3,
        (proxied.2.as_secs_f64() - direct.2.as_secs_f64()) * 1e6,
        (proxied.3.as_secs_f64() - direct.3.as_secs_f64()) * 1e6,
    );
}
