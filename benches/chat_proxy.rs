//! What the proxy path costs: a streamed completion sent straight to an OpenAI-compatible
//! upstream versus the same completion through tokenmeter (`POST /api/chat/completions` with
//! an API token: authentication, model check, SSE relay, and the exchange and its usage
//! written to SQLite at the end). Both run in the same process and the same run, interleaved,
//! against a local fake upstream, so the difference is tokenmeter's own.
//!
//! - paced: the upstream writes a chunk every millisecond (a fast model), each stamped with
//!   the moment it was written; the client measures how long each chunk took to arrive, and
//!   the time to the first token from sending the request.
//! - burst: the upstream writes all chunks at once; the client measures chunks per second.
//!
//! Run: `cargo bench --features ssr --bench chat_proxy` (add `-- 500` for more rounds, and
//! `-- postgres` under `scripts/with-postgres.sh` to record into PostgreSQL).

#[path = "../tests/common/mod.rs"]
#[allow(unused_macros)]
mod common;

use axum::body::Body;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use common::{Backend, TestApp};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Content chunks per reply.
const CHUNKS: usize = 100;
/// Pause between two chunks of a paced reply.
const PACE: Duration = Duration::from_millis(1);

/// The clock both ends of a chunk read (one process).
fn since_base() -> Duration {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed()
}

fn sse(value: Value) -> String {
    format!("data: {value}\n\n")
}

async fn completions(Json(request): Json<Value>) -> Response {
    let paced = request["model"] == "paced";
    let chunks = futures_util::stream::iter(0..CHUNKS).then(move |_| async move {
        if paced {
            tokio::time::sleep(PACE).await;
        }
        // The content is the moment the chunk is written, in nanoseconds.
        let stamp = since_base().as_nanos().to_string();
        Ok::<_, Infallible>(sse(json!({
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": stamp}}],
        })))
    });
    let tail = futures_util::stream::iter(
        [
            sse(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})),
            sse(
                json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": CHUNKS}}),
            ),
            "data: [DONE]\n\n".to_string(),
        ]
        .map(Ok::<_, Infallible>),
    );
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(chunks.chain(tail)))
        .unwrap()
}

async fn models() -> Json<Value> {
    Json(json!({"object": "list", "data": [{"id": "paced"}, {"id": "burst"}]}))
}

struct Sample {
    first_token: Duration,
    /// Time from each chunk's write upstream to its arrival at the client.
    chunk_latencies: Vec<Duration>,
    /// From the first chunk's arrival to the last's.
    span: Duration,
}

async fn measure(client: &reqwest::Client, url: &str, model: &str) -> Sample {
    let start = Instant::now();
    let res = client
        .post(url)
        .json(&json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();
    let mut decoder = tokenmeter::domain::sse::SseDecoder::new();
    let mut first = None;
    let mut last = start;
    let mut chunk_latencies = Vec::with_capacity(CHUNKS);
    while let Some(bytes) = body.next().await {
        for data in decoder.push(&bytes.unwrap()) {
            let Ok(value) = serde_json::from_str::<Value>(&data) else {
                continue;
            };
            if let Some(stamp) = value["choices"][0]["delta"]["content"].as_str() {
                let now = Instant::now();
                let written = Duration::from_nanos(stamp.parse().unwrap());
                chunk_latencies.push(since_base().saturating_sub(written));
                first.get_or_insert(now);
                last = now;
            }
        }
    }
    assert_eq!(chunk_latencies.len(), CHUNKS, "every chunk arrived");
    let first = first.unwrap();
    Sample {
        first_token: first - start,
        chunk_latencies,
        span: last - first,
    }
}

fn percentile(values: &mut [Duration], p: f64) -> Duration {
    values.sort();
    values[((values.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(200);
    // `postgres`: record into a fresh database of TEST_DATABASE_URL's cluster instead of SQLite.
    let backend = Backend::from_args();
    since_base();
    let upstream = common::serve_on_loopback(
        Router::new()
            .route("/v1/models", get(models))
            .route("/v1/chat/completions", post(completions)),
    )
    .await;
    let upstream = format!("http://{upstream}/v1");
    let app = TestApp::start_with(
        backend,
        &[("LLM_BASE_URL", upstream.as_str()), ("LLM_API_KEY", "k")],
    )
    .await;
    let user = app.signed_up("bench@example.com").await;
    let (_, token) = app
        .post(&user, "/api/profile/tokens", json!({"name": "bench"}))
        .await;
    let paths = [
        (
            "direct",
            app.bearer_client("k"),
            format!("{upstream}/chat/completions"),
        ),
        (
            "proxied",
            app.bearer_client(token["data"]["secret"].as_str().unwrap()),
            app.url("/api/chat/completions"),
        ),
    ];

    for (_, client, url) in &paths {
        for _ in 0..10 {
            measure(client, url, "paced").await;
            measure(client, url, "burst").await;
        }
    }
    let mut paced: [Vec<Sample>; 2] = [vec![], vec![]];
    let mut burst: [Vec<Sample>; 2] = [vec![], vec![]];
    for _ in 0..rounds {
        for (i, (_, client, url)) in paths.iter().enumerate() {
            paced[i].push(measure(client, url, "paced").await);
            burst[i].push(measure(client, url, "burst").await);
        }
    }

    println!(
        "chat_proxy: {rounds} rounds; each round one paced ({CHUNKS} chunks, 1 per ms) and one \
         burst ({CHUNKS} chunks at once) completion per path, interleaved; {backend:?}; loopback"
    );
    let mut figures = Vec::new();
    for (i, (name, _, _)) in paths.iter().enumerate() {
        let mut ttft: Vec<Duration> = paced[i].iter().map(|s| s.first_token).collect();
        let mut lat: Vec<Duration> = paced[i]
            .iter()
            .flat_map(|s| s.chunk_latencies.iter().copied())
            .collect();
        let rate: Vec<f64> = burst[i]
            .iter()
            .map(|s| (CHUNKS - 1) as f64 / s.span.as_secs_f64().max(1e-9))
            .collect();
        let mut rate_sorted = rate.clone();
        rate_sorted.sort_by(f64::total_cmp);
        let row = (
            percentile(&mut ttft, 0.5),
            percentile(&mut ttft, 0.99),
            percentile(&mut lat, 0.5),
            percentile(&mut lat, 0.99),
            rate_sorted[rate_sorted.len() / 2],
        );
        println!(
            "{name:<8} first token p50 {:>7.3} ms p99 {:>7.3} ms | chunk latency p50 {:>6.1} µs p99 {:>7.1} µs | burst {:>8.0} chunks/s",
            ms(row.0), ms(row.1), us(row.2), us(row.3), row.4
        );
        figures.push(row);
    }
    let (d, p) = (figures[0], figures[1]);
    println!(
        "added    first token p50 {:>7.3} ms p99 {:>7.3} ms | chunk latency p50 {:>6.1} µs p99 {:>7.1} µs",
        ms(p.0) - ms(d.0),
        ms(p.1) - ms(d.1),
        us(p.2) - us(d.2),
        us(p.3) - us(d.3),
    );
}
