//! The one fake LiteLLM proxy of the tests and benches, on a loopback port: the endpoints
//! tokenmeter calls (models, users and keys, chat completions, daily activity, spend logs),
//! scripted per test, with the faults the real proxy will not produce on demand (slow, a status,
//! garbage, a page missing, key provisioning down). The real proxy is in `tests/litellm.rs`.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::NaiveDate;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The master key tokenmeter must read usage and make keys with (`LITELLM_MASTER_KEY`).
pub const MASTER_KEY: &str = "sk-master";
/// The key `/key/generate` hands out, which `/chat/completions` requires.
pub const USER_KEY: &str = "sk-user-key";

/// A fault every usage read answers with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// Waits 3 s before answering.
    Slow,
    Status(u16),
    /// A body that is not JSON.
    Garbage,
    /// Page 2 answers 404.
    PageMissing,
}

/// What a usage read answers for a user with no records of their own.
#[derive(Clone, Debug, Default)]
pub enum Unrecorded {
    #[default]
    Nothing,
    /// One record, on the range's last day, with these metrics (one model, `m`).
    LastDay(Value),
    /// One record on every day of the range (one model, `gpt-4o-mini`).
    EveryDay(Value),
}

/// The script: what the fake answers. Change it with [`FakeLiteLlm::script`].
#[derive(Default)]
pub struct Script {
    /// Daily-activity records per LiteLLM user id (one record is one "row" of a page).
    pub records: HashMap<String, Vec<Value>>,
    /// Spend logs per user id.
    pub logs: HashMap<String, Vec<Value>>,
    pub unrecorded: Unrecorded,
    /// Rows per page, whatever the reader asks for.
    pub rows_per_page: Option<usize>,
    pub fault: Option<Fault>,
    /// Users whose reads answer 500 (`*`: everybody's).
    pub failing: Vec<String>,
    /// Each usage read waits this long before answering.
    pub delay: Duration,
    /// Every usage read: path and query.
    pub reads: Vec<(String, HashMap<String, String>)>,
    /// `/key/generate` answers 503 while set.
    pub keys_down: bool,
    pub keys_made: usize,
}

/// A fake LiteLLM serving on a loopback port until the test ends.
#[derive(Clone)]
pub struct FakeLiteLlm {
    /// Its base address, for `LITELLM_URL`.
    pub url: String,
    script: Arc<Mutex<Script>>,
    /// Usage reads begun.
    reads: Arc<AtomicUsize>,
    /// Usage reads whose caller went away before the answer.
    dropped: Arc<AtomicUsize>,
}

impl FakeLiteLlm {
    pub async fn start() -> Self {
        let fake = FakeLiteLlm {
            url: String::new(),
            script: Arc::default(),
            reads: Arc::default(),
            dropped: Arc::default(),
        };
        let app = Router::new()
            .route("/models", get(models))
            .route("/user/new", post(new_user))
            .route("/key/generate", post(generate_key))
            .route("/chat/completions", post(chat))
            .route("/user/daily/activity", get(daily_activity))
            .route("/spend/logs/v2", get(spend_logs))
            .with_state(fake.clone());
        let url = format!("http://{}", super::serve_on_loopback(app).await);
        FakeLiteLlm { url, ..fake }
    }

    /// The script, to read or change (do not hold it across an `await`).
    pub fn script(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap()
    }

    /// Usage reads begun since the start or the last [`FakeLiteLlm::reset_reads`].
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    pub fn reset_reads(&self) {
        self.reads.store(0, Ordering::SeqCst);
        self.script().reads.clear();
    }

    /// Usage reads whose caller went away before the answer.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
}

/// A daily-activity record: one model's use on one day.
pub fn record(
    date: NaiveDate,
    model: &str,
    prompt: i64,
    completion: i64,
    requests: i64,
    spend: f64,
) -> Value {
    let metrics = json!({
        "spend": spend, "prompt_tokens": prompt, "completion_tokens": completion,
        "total_tokens": prompt + completion, "successful_requests": requests,
        "failed_requests": 0, "api_requests": requests,
    });
    day(date, model, metrics)
}

/// Daily-activity metrics for [`Unrecorded`].
pub fn metrics(prompt: i64, completion: i64, spend: f64) -> Value {
    json!({"spend": spend, "prompt_tokens": prompt, "completion_tokens": completion,
           "total_tokens": prompt + completion, "successful_requests": 1})
}

fn day(date: NaiveDate, model: &str, metrics: Value) -> Value {
    json!({
        "date": date.to_string(),
        "metrics": metrics,
        "breakdown": {"models": {}, "model_groups": {model: {"metrics": metrics}}},
    })
}

/// A spend log entry, as `/spend/logs/v2` lists them.
pub fn spend_log(start: &str, model: &str, prompt: i64, completion: i64, spend: f64) -> Value {
    json!({
        "request_id": uuid::Uuid::new_v4().to_string(), "status": "success", "startTime": start,
        "model_group": model, "model": format!("provider/{model}"), "spend": spend,
        "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
    })
}

fn error(code: u16, message: &str) -> Response {
    (
        StatusCode::from_u16(code).unwrap(),
        Json(json!({"error": {"message": message}})),
    )
        .into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

async fn models(headers: HeaderMap) -> Json<Value> {
    assert_eq!(
        bearer(&headers),
        Some(MASTER_KEY),
        "models are listed with the master key"
    );
    Json(json!({"data": [{"id": "gpt-fake"}, {"id": "ok"}]}))
}

async fn new_user(headers: HeaderMap) -> Json<Value> {
    assert_eq!(bearer(&headers), Some(MASTER_KEY));
    Json(json!({"user_id": "x"}))
}

async fn generate_key(
    State(fake): State<FakeLiteLlm>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    assert_eq!(bearer(&headers), Some(MASTER_KEY));
    assert!(body["user_id"].is_string(), "{body}");
    let mut s = fake.script();
    if s.keys_down {
        return error(503, "db down");
    }
    s.keys_made += 1;
    Json(json!({"key": USER_KEY})).into_response()
}

/// A streamed reply "Hi" of 10 + 5 tokens at $0.0001, to the user's key only.
async fn chat(headers: HeaderMap, Json(_request): Json<Value>) -> Response {
    if bearer(&headers) != Some(USER_KEY) {
        return error(401, "wrong key");
    }
    let events = [
        json!({"choices": [{"index": 0, "delta": {"content": "Hi"}}]}),
        json!({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5, "cost": 0.0001}}),
    ];
    let mut text: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    text.push_str("data: [DONE]\n\n");
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from(text))
        .unwrap()
}

/// One page of a usage read, with its number and the page count, or the scripted fault.
async fn usage_read(
    fake: &FakeLiteLlm,
    path: &str,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Result<(Vec<Value>, usize, usize), Response> {
    assert_eq!(
        bearer(headers),
        Some(MASTER_KEY),
        "usage is read with the master key"
    );
    fake.reads.fetch_add(1, Ordering::SeqCst);
    let page: usize = q.get("page").map_or(1, |p| p.parse().unwrap());
    let user = q.get("user_id").cloned().unwrap_or_default();
    let (fault, failing, delay) = {
        let mut s = fake.script();
        s.reads.push((path.to_string(), q.clone()));
        let failing = s.failing.iter().any(|f| f == "*" || *f == user);
        (s.fault, failing, s.delay)
    };
    // Counts the read as dropped unless it gets to answer.
    struct Pending(Option<Arc<AtomicUsize>>);
    impl Drop for Pending {
        fn drop(&mut self) {
            if let Some(dropped) = self.0.take() {
                dropped.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    let mut pending = Pending(Some(fake.dropped.clone()));
    tokio::time::sleep(delay).await;
    pending.0 = None;
    if failing {
        return Err(error(500, "boom for this user"));
    }
    match fault {
        Some(Fault::Slow) => tokio::time::sleep(Duration::from_secs(3)).await,
        Some(Fault::Status(code)) => return Err(error(code, "the proxy says no")),
        Some(Fault::Garbage) => {
            return Err(Response::builder()
                .header("content-type", "application/json")
                .body(Body::from("{\"results\": [oops"))
                .unwrap())
        }
        Some(Fault::PageMissing) if page == 2 => return Err(error(404, "no such page")),
        _ => {}
    }
    let s = fake.script();
    let recorded = if path.contains("daily") {
        &s.records
    } else {
        &s.logs
    };
    let rows = match (recorded.get(&user), &s.unrecorded) {
        (Some(rows), _) => rows.clone(),
        (None, Unrecorded::Nothing) => vec![],
        (None, Unrecorded::LastDay(metrics)) => {
            vec![day(q["end_date"].parse().unwrap(), "m", metrics.clone())]
        }
        (None, Unrecorded::EveryDay(metrics)) => {
            let from: NaiveDate = q["start_date"].parse().unwrap();
            let to: NaiveDate = q["end_date"].parse().unwrap();
            from.iter_days()
                .take_while(|d| *d <= to)
                .map(|d| day(d, "gpt-4o-mini", metrics.clone()))
                .collect()
        }
    };
    let per_page = s
        .rows_per_page
        .or_else(|| q.get("page_size").map(|p| p.parse().unwrap()))
        .unwrap_or(rows.len().max(1));
    let pages = rows.len().div_ceil(per_page).max(1);
    let rows = rows
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    Ok((rows, page, pages))
}

async fn daily_activity(
    State(fake): State<FakeLiteLlm>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match usage_read(&fake, "/user/daily/activity", &headers, &q).await {
        Err(response) => response,
        Ok((results, page, pages)) => Json(json!({
            "results": results,
            "metadata": {"page": page, "total_pages": pages, "has_more": page < pages},
        }))
        .into_response(),
    }
}

async fn spend_logs(
    State(fake): State<FakeLiteLlm>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match usage_read(&fake, "/spend/logs/v2", &headers, &q).await {
        Err(response) => response,
        Ok((data, page, pages)) => Json(json!({
            "data": data, "page": page, "total_pages": pages, "total": 0,
        }))
        .into_response(),
    }
}
