//! The send path against LiteLLM's, in one run on this machine: 16 clients (or
//! `SEND_PATH_CLIENTS`) send non-streamed chat completions for 10 s, first to tokenmeter's demo
//! model as a limited user (admission, reservation, reply, recording: everything a real send
//! does but the upstream), then to the LiteLLM proxy's mock model (its own completion path, no
//! upstream). Prints each rate, p50 and p99, and tokenmeter's rate as a multiple of LiteLLM's
//! (issue 14's target: 40×, p99 under 20 ms). `SEND_PATH_ONLY=tokenmeter` leaves LiteLLM out
//! (to compare changes; no LiteLLM needed then), `SEND_PATH_CLIENTS=1` times a send alone.
//!
//! The clients run in this process on the same 2 cores as the server (and LiteLLM's, and
//! PostgreSQL): both sides are measured by the same client under the same conditions.
//!
//! Run under the LiteLLM peer: `scripts/with-litellm.sh cargo bench --features ssr --bench
//! send_path` (add `-- postgres`, under `scripts/with-postgres.sh` too, for PostgreSQL).

#[path = "../tests/common/mod.rs"]
#[allow(unused_macros)]
mod common;

use common::{percentile_ms, Backend, ServerProcess};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Clients at once; `SEND_PATH_CLIENTS` changes it (1: the latency of a send alone).
fn clients() -> usize {
    std::env::var("SEND_PATH_CLIENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(16)
}
const SECONDS: u64 = 10;

struct Run {
    sent: usize,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Run {
    fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64()
    }
}

/// [`clients`] loops of `request` (each must answer 200) for `SECONDS`, after a 1 s warm-up.
async fn hammer(request: impl Fn() -> reqwest::RequestBuilder + Clone + Send + 'static) -> Run {
    let warm = request.clone();
    for _ in 0..20 {
        let res = warm().send().await.unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let clients: Vec<_> = (0..clients())
        .map(|_| {
            let request = request.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let res = request().send().await.unwrap();
                    let status = res.status();
                    res.bytes().await.unwrap();
                    assert_eq!(status, 200);
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(SECONDS)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for c in clients {
        latencies.extend(c.await.unwrap());
    }
    Run {
        sent: latencies.len(),
        latencies,
        elapsed: started.elapsed(),
    }
}

fn report(name: &str, run: &mut Run) {
    let rate = run.rate();
    println!(
        "  {name}: {} in {:.1} s = {rate:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
        run.sent,
        run.elapsed.as_secs_f64(),
        percentile_ms(&mut run.latencies, 50),
        percentile_ms(&mut run.latencies, 99),
    );
}

/// tokenmeter's run: the release binary, a limited user, the demo model.
async fn run_tokenmeter(backend: Backend) -> Run {
    println!(
        "send path ({backend:?}, {} clients, {SECONDS} s each, non-streamed)",
        clients()
    );
    let (url, _dir) = common::fresh_database(backend).await;
    let server = ServerProcess::spawn(
        &url,
        &[
            ("TOKENMETER_SIGNUP", "open"),
            ("TOKENMETER_DEMO_DELAY_MS", "0"),
        ],
    )
    .await;
    let user = common::limited_user(&server.base, "send@example.com", 1_000_000_000_000).await;
    let url = format!("{}/api/chat/completions", server.base);
    let mut run = hammer(move || {
        user.post(&url).json(&json!({
            "model": "demo",
            "messages": [{"role": "user", "content": "hello"}],
        }))
    })
    .await;
    report("tokenmeter demo send (limited user)", &mut run);
    run
}

#[tokio::main]
async fn main() {
    let backend = Backend::from_args();
    // `SEND_PATH_ONLY=tokenmeter`: tokenmeter's run alone, to compare changes (no LiteLLM needed).
    if std::env::var("SEND_PATH_ONLY").is_ok_and(|only| only == "tokenmeter") {
        run_tokenmeter(backend).await;
        return;
    }
    let (Ok(litellm), Ok(master)) = (
        std::env::var("LITELLM_URL"),
        std::env::var("LITELLM_MASTER_KEY"),
    ) else {
        panic!("LITELLM_URL and LITELLM_MASTER_KEY are needed: run under scripts/with-litellm.sh");
    };
    let tokenmeter_run = run_tokenmeter(backend).await;
    // LiteLLM's own completion, its mock model (no upstream call). Second: LiteLLM goes on
    // writing its spend logs for a while after a run (its query engine busy on both cores).
    let client = reqwest::Client::new();
    let url = format!("{}/chat/completions", litellm.trim_end_matches('/'));
    let mut litellm_run = hammer(move || {
        client.post(&url).bearer_auth(&master).json(&json!({
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hello"}],
        }))
    })
    .await;
    report("LiteLLM 1.108.7 mock completion", &mut litellm_run);
    println!(
        "  ratio: tokenmeter {:.1}x LiteLLM (target 40x, p99 under 20 ms)",
        tokenmeter_run.rate() / litellm_run.rate()
    );
}
