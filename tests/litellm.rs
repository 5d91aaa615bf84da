//! Against the real LiteLLM proxy (`../shared/litellm-peer`, started by `make test`): each user
//! gets one virtual key, created on first use and stored sealed; streamed and whole replies go
//! through it; the usage and cost recorded equal what LiteLLM reports for those requests.
//! Fails (never skips) when `LITELLM_URL` / `LITELLM_MASTER_KEY` are not set.

#[macro_use]
mod common;

use common::{my_id, sse_data, sse_text, usage_days, Backend, TestApp};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokenmeter::domain::money::usd_f64_to_nanos;

fn peer() -> (String, String) {
    let url = std::env::var("LITELLM_URL").unwrap_or_else(|_| {
        panic!(
            "LITELLM_URL is not set: this suite needs the LiteLLM peer. Run `make test` (it \
             starts ../shared/litellm-peer) or eval \"$(../shared/litellm-peer/start.sh)\"."
        )
    });
    let key = std::env::var("LITELLM_MASTER_KEY")
        .expect("LITELLM_MASTER_KEY must be set with LITELLM_URL");
    (url, key)
}

async fn litellm_get(path: &str) -> Value {
    let (url, key) = peer();
    reqwest::Client::new()
        .get(format!("{url}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

on_both_backends!(
    chat_through_litellm_records_what_litellm_reports,
    a_sync_stores_what_litellm_reports_per_day,
    in_a_non_utc_zone_a_sync_stores_local_days,
);

async fn chat_through_litellm_records_what_litellm_reports(backend: Backend) {
    let (url, key) = peer();
    let app = TestApp::start_with(
        backend,
        &[
            ("LITELLM_URL", url.as_str()),
            ("LITELLM_MASTER_KEY", key.as_str()),
            ("TOKENMETER_SECRET", "integration-test-secret"),
        ],
    )
    .await;
    let alice = app.signed_up("alice@example.com").await;
    let alice_id = my_id(&app, &alice).await;

    let (status, models) = app.get(&alice, "/api/models").await;
    assert_eq!(status, 200, "{models}");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"gpt-4o-mini") && ids.contains(&"claude-mock"),
        "{ids:?}"
    );

    // A streamed reply, then a whole one in the same conversation, then one of another model.
    let res = alice
        .post(app.url("/api/chat/completions"))
        .json(&json!({"model": "gpt-4o-mini", "stream": true,
                      "messages": [{"role": "user", "content": "hello there"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let conversation = res.headers()["x-conversation-id"]
        .to_str()
        .unwrap()
        .to_string();
    let events = sse_data(res).await;
    assert_eq!(sse_text(&events), "Hello from the mock gpt-4o-mini");
    let streamed = events[events.len() - 2]["usage"].clone();
    assert_eq!(streamed["estimated"], false, "{streamed}");
    assert!(
        streamed["cost"].is_string(),
        "LiteLLM reports a cost: {streamed}"
    );

    let (status, whole) = app
        .post(
            &alice,
            "/api/chat/completions",
            json!({"model": "gpt-4o-mini", "conversation_id": conversation,
                   "messages": [{"role": "user", "content": "and again"}]}),
        )
        .await;
    assert_eq!(status, 200, "{whole}");
    assert_eq!(
        whole["choices"][0]["message"]["content"],
        "Hello from the mock gpt-4o-mini"
    );
    let (status, claude) = app
        .post(
            &alice,
            "/api/chat/completions",
            json!({"model": "claude-mock", "messages": [{"role": "user", "content": "hi claude"}]}),
        )
        .await;
    assert_eq!(status, 200, "{claude}");
    assert_eq!(
        claude["choices"][0]["message"]["content"],
        "Hi, this is the mock claude"
    );

    // One key for the user, sealed at rest, known to LiteLLM under the tokenmeter user id.
    let sealed = tokenmeter::server::db::llm_keys::find_sealed(&app.db, alice_id)
        .await
        .unwrap()
        .expect("a stored key");
    assert!(
        !String::from_utf8_lossy(&sealed).contains("sk-"),
        "the key is not stored in clear"
    );
    let keys = litellm_get(&format!("/key/list?user_id={alice_id}")).await;
    assert_eq!(keys["total_count"], 1, "one key per user: {keys}");

    // What LiteLLM logged for this user equals what tokenmeter recorded, request by request.
    let mut logs = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let today = chrono::Utc::now().date_naive();
        logs = litellm_get(&format!(
            "/spend/logs?user_id={alice_id}&summarize=false&start_date={}&end_date={}",
            today - chrono::Days::new(1),
            today + chrono::Days::new(1)
        ))
        .await;
        if logs.as_array().is_some_and(|l| l.len() >= 3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let logs = logs
        .as_array()
        .unwrap_or_else(|| panic!("spend logs: {logs}"));
    assert_eq!(logs.len(), 3, "{logs:?}");
    let mut spend_nanos = 0;
    let (mut prompt, mut completion) = (0, 0);
    for log in logs {
        spend_nanos += usd_f64_to_nanos(log["spend"].as_f64().unwrap()).unwrap();
        prompt += log["prompt_tokens"].as_i64().unwrap();
        completion += log["completion_tokens"].as_i64().unwrap();
    }
    let days = usage_days(&app, alice_id).await;
    assert_eq!(days.len(), 1);
    let day = &days[0];
    assert_eq!(day.requests_count, 3);
    assert_eq!(
        day.prompt_tokens, prompt,
        "prompt tokens as LiteLLM counted them"
    );
    assert_eq!(day.completion_tokens, completion);
    assert_eq!(day.cost_nanos, spend_nanos, "cost as LiteLLM charged it");
    assert_eq!(day.model_usage.0["gpt-4o-mini"].requests, 2);
    assert_eq!(day.model_usage.0["claude-mock"].requests, 1);
    // claude-mock costs $3/M in and $15/M out on the peer.
    let claude_usage = &claude["usage"];
    let expected = claude_usage["prompt_tokens"].as_i64().unwrap() * 3_000
        + claude_usage["completion_tokens"].as_i64().unwrap() * 15_000;
    assert_eq!(day.model_usage.0["claude-mock"].cost_nanos, expected);

    // A new user's first sends, several at once: still exactly one key.
    let bob = app.signed_up("bob@example.com").await;
    let bob_id = my_id(&app, &bob).await;
    let sends = (0..4).map(|_| {
        app.post(
            &bob,
            "/api/chat/completions",
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "first"}]}),
        )
    });
    for (status, body) in futures_util::future::join_all(sends).await {
        assert_eq!(status, 200, "{body}");
    }
    let keys = litellm_get(&format!("/key/list?user_id={bob_id}")).await;
    assert_eq!(keys["total_count"], 1, "{keys}");
}

async fn app_on_peer(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    let (url, key) = peer();
    let mut vars = vec![
        ("LITELLM_URL", url.as_str()),
        ("LITELLM_MASTER_KEY", key.as_str()),
        ("TOKENMETER_SECRET", "integration-test-secret"),
    ];
    vars.extend_from_slice(extra);
    TestApp::start_with(backend, &vars).await
}

/// Sends `models` one after the other as `client`.
async fn chat(app: &TestApp, client: &reqwest::Client, models: &[&str]) {
    for model in models {
        let (status, body) = app
            .post(
                client,
                "/api/chat/completions",
                json!({"model": model, "messages": [{"role": "user", "content": "count my tokens"}]}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

/// Polls a LiteLLM read until `ready` holds (LiteLLM writes its spend a few seconds late).
async fn litellm_when(path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let body = litellm_get(path).await;
        if ready(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "LiteLLM never got there: {path}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn nanos(v: &Value) -> i64 {
    usd_f64_to_nanos(v.as_f64().unwrap()).unwrap()
}

async fn a_sync_stores_what_litellm_reports_per_day(backend: Backend) {
    let app = app_on_peer(backend, &[]).await;
    let alice = app.signed_up("alice@example.com").await;
    let alice_id = my_id(&app, &alice).await;
    chat(&app, &alice, &["gpt-4o-mini", "claude-mock", "gpt-4o-mini"]).await;
    let today = chrono::Utc::now().date_naive();
    let path =
        format!("/user/daily/activity?user_id={alice_id}&start_date={today}&end_date={today}");
    let activity = litellm_when(&path, |b| {
        b["metadata"]["total_successful_requests"].as_i64() == Some(3)
    })
    .await;

    let admin = app.admin().await;
    let (status, body) = app
        .post(
            &admin,
            &format!("/api/admin/users/{alice_id}/usage/sync"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let days = usage_days(&app, alice_id).await;
    assert_eq!(days.len(), 1, "{days:?}");
    let day = &days[0];
    let result = &activity["results"][0];
    let m = &result["metrics"];
    assert_eq!(result["date"], today.to_string());
    assert_eq!(day.tokens_used, m["total_tokens"].as_i64().unwrap());
    assert_eq!(day.prompt_tokens, m["prompt_tokens"].as_i64().unwrap());
    assert_eq!(
        day.completion_tokens,
        m["completion_tokens"].as_i64().unwrap()
    );
    assert_eq!(day.requests_count, 3);
    assert_eq!(day.cost_nanos, nanos(&m["spend"]));
    let groups = result["breakdown"]["model_groups"].as_object().unwrap();
    assert_eq!(groups.len(), 2, "{groups:?}");
    for (model, group) in groups {
        let stored = &day.model_usage.0[model];
        let g = &group["metrics"];
        assert_eq!(
            stored.tokens,
            g["total_tokens"].as_i64().unwrap(),
            "{model}"
        );
        assert_eq!(
            stored.requests,
            g["successful_requests"].as_i64().unwrap(),
            "{model}"
        );
        assert_eq!(stored.cost_nanos, nanos(&g["spend"]), "{model}");
    }
    assert_eq!(day.source, "litellm");
    assert!(!day.drifted, "the app recorded what LiteLLM did");

    // Again: the same rows.
    let before = format!("{days:?}");
    app.post(
        &admin,
        &format!("/api/admin/users/{alice_id}/usage/sync"),
        json!({}),
    )
    .await;
    let after = usage_days(&app, alice_id).await;
    assert_eq!(
        format!("{after:?}").replace(char::is_whitespace, ""),
        before.replace(char::is_whitespace, "")
    );
}

async fn in_a_non_utc_zone_a_sync_stores_local_days(backend: Backend) {
    let app = app_on_peer(backend, &[("TOKENMETER_TIMEZONE", "Asia/Kolkata")]).await;
    let carol = app.signed_up("carol@example.com").await;
    let carol_id = my_id(&app, &carol).await;
    chat(&app, &carol, &["claude-mock", "gpt-4o-mini"]).await;
    let now = chrono::Utc::now();
    let (from, to) = (
        now - chrono::Duration::days(1),
        now + chrono::Duration::days(1),
    );
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d%%20%H:%M:%S").to_string();
    let logs = litellm_when(
        &format!(
            "/spend/logs/v2?user_id={carol_id}&start_date={}&end_date={}",
            fmt(from),
            fmt(to)
        ),
        |b| b["data"].as_array().is_some_and(|d| d.len() == 2),
    )
    .await;
    let admin = app.admin().await;
    let (status, body) = app
        .post(
            &admin,
            &format!("/api/admin/users/{carol_id}/usage/sync"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Every request on its local day; the sums equal LiteLLM's logs.
    let days = usage_days(&app, carol_id).await;
    let mut want: std::collections::BTreeMap<String, (i64, i64, i64)> = Default::default();
    for log in logs["data"].as_array().unwrap() {
        let start: chrono::DateTime<chrono::Utc> =
            log["startTime"].as_str().unwrap().parse().unwrap();
        let day = start
            .with_timezone(&chrono_tz::Asia::Kolkata)
            .date_naive()
            .to_string();
        let e = want.entry(day).or_default();
        e.0 += log["total_tokens"].as_i64().unwrap();
        e.1 += 1;
        e.2 += nanos(&log["spend"]);
    }
    let got: std::collections::BTreeMap<String, (i64, i64, i64)> = days
        .iter()
        .map(|d| {
            (
                d.date.to_string(),
                (d.tokens_used, d.requests_count, d.cost_nanos),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert!(
        days.iter().all(|d| d.source == "litellm" && !d.drifted),
        "{days:?}"
    );
}
