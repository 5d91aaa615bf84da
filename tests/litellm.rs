//! Against the real LiteLLM proxy (`../shared/litellm-peer`, started by `make test`): each user
//! gets one virtual key, created on first use and stored sealed; streamed and whole replies go
//! through it; the usage and cost recorded equal what LiteLLM reports for those requests.
//! Fails (never skips) when `LITELLM_URL` / `LITELLM_MASTER_KEY` are not set.

#[macro_use]
mod common;

use common::{my_id, sse_data, sse_text, usage_days, Backend, TestApp};
use futures_util::StreamExt;
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
    estimated_calls_are_corrected_to_litellm_within_a_minute,
    a_correction_after_a_sync_does_not_count_twice,
    a_key_that_cannot_be_stored_does_not_stay_valid_at_litellm,
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

/// A streamed send whose client goes away after the first chunk.
async fn abandoned(app: &TestApp, client: &reqwest::Client, n: usize) {
    let res = client
        .post(app.url("/api/chat/completions"))
        .json(&json!({"model": "gpt-4o-mini", "stream": true,
                      "messages": [{"role": "user", "content": format!("I will not wait for this {n}")}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();
    body.next().await.expect("a first chunk").unwrap();
}

/// A streamed send read to its end.
async fn streamed(app: &TestApp, client: &reqwest::Client, n: usize) {
    let res = client
        .post(app.url("/api/chat/completions"))
        .json(&json!({"model": "gpt-4o-mini", "stream": true,
                      "messages": [{"role": "user", "content": format!("stream this one {n}")}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(!sse_data(res).await.is_empty());
}

/// LiteLLM's total tokens for a user over the last hour, once its spend log holds `calls`
/// successful calls.
async fn litellm_total(user: uuid::Uuid, calls: usize) -> i64 {
    let now = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d%%20%H:%M:%S").to_string();
    let path = format!(
        "/spend/logs/v2?user_id={user}&start_date={}&end_date={}&page=1&page_size=100",
        fmt(now - chrono::Duration::hours(1)),
        fmt(now + chrono::Duration::hours(1)),
    );
    let logs = litellm_when(&path, |b| {
        b["data"]
            .as_array()
            .map(|d| d.iter().filter(|r| r["status"] == "success").count())
            == Some(calls)
    })
    .await;
    logs["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "success")
        .map(|r| r["total_tokens"].as_i64().unwrap())
        .sum()
}

/// (estimated, tokens) of each of the user's calls.
async fn calls_of(app: &TestApp, user: uuid::Uuid) -> Vec<(bool, i64)> {
    with_pool!(&app.db, |p| sqlx::query_as(
        "select estimated, prompt_tokens + completion_tokens from usage_records
         where user_id = $1 order by created_at"
    )
    .bind(user)
    .fetch_all(p)
    .await)
    .unwrap()
}

/// Waits until `n` of the user's calls are recorded (an abandoned one is recorded a moment
/// after its client left).
async fn calls_recorded(app: &TestApp, user: uuid::Uuid, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while calls_of(app, user).await.len() < n {
        assert!(Instant::now() < deadline, "{n} calls recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The user's tokens as quotas see them (the shown figures of every day).
async fn app_total(app: &TestApp, user: uuid::Uuid) -> i64 {
    usage_days(app, user)
        .await
        .iter()
        .map(|d| d.tokens_used)
        .sum()
}

async fn estimated_calls_are_corrected_to_litellm_within_a_minute(backend: Backend) {
    // No daily sync: what corrects the figures is the reconciler alone.
    let app = app_on_peer(
        backend,
        &[
            ("TOKENMETER_USAGE_SYNC_AT", "off"),
            ("TOKENMETER_RECONCILE_SECONDS", "2"),
        ],
    )
    .await;
    let mut users = Vec::new();
    for i in 0..4 {
        let client = app.signed_up(&format!("user{i}@example.com")).await;
        let id = my_id(&app, &client).await;
        users.push((client, id));
    }
    // Each user: 4 plain, 4 streamed and 4 abandoned replies, the four users at once.
    futures_util::future::join_all(users.iter().map(|(client, _)| async {
        for n in 0..4 {
            chat(&app, client, &["gpt-4o-mini"]).await;
            streamed(&app, client, n).await;
            abandoned(&app, client, n).await;
        }
    }))
    .await;
    // Every call recorded (an abandoned one a moment after its client left).
    for (_, id) in &users {
        calls_recorded(&app, *id, 12).await;
    }
    let mut estimated = 0;
    let mut before = Vec::new();
    for (_, id) in &users {
        let calls = calls_of(&app, *id).await;
        estimated += calls.iter().filter(|(e, _)| *e).count();
        before.push((app_total(&app, *id).await, litellm_total(*id, 12).await));
    }
    assert!(
        estimated > 0,
        "abandoned replies are recorded with our estimate: {before:?}"
    );

    let started = Instant::now();
    let runner = tokenmeter::server::jobs::runner::Runner::start(&app.state).unwrap();
    for (i, (client, id)) in users.iter().enumerate() {
        let theirs = before[i].1;
        // Done when every call is corrected (an estimate may happen to equal LiteLLM's
        // figure, so the totals alone can agree before that).
        while app_total(&app, *id).await != theirs
            || calls_of(&app, *id).await.iter().any(|(e, _)| *e)
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "user {i}: the app's count ({}) never reached LiteLLM's ({theirs}), or calls \
                 stayed estimated: {:?}",
                app_total(&app, *id).await,
                calls_of(&app, *id).await
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // What the user and the quota see, and the ledger agree; no sync did it.
        let (_, me) = app.get(client, "/api/profile/usage").await;
        assert_eq!(me["data"]["tokens_used"], theirs, "{me}");
        let calls = calls_of(&app, *id).await;
        assert!(calls.iter().all(|(e, _)| !e), "all corrected: {calls:?}");
        assert_eq!(calls.iter().map(|(_, t)| t).sum::<i64>(), theirs);
        let days = usage_days(&app, *id).await;
        assert_eq!(days.len(), 1);
        assert_eq!(days[0].source, "app", "no sync ran");
        assert_eq!(days[0].litellm_tokens_used, None, "no sync ran");
        assert_eq!(days[0].requests_count, 12);
        let by_model: i64 = days[0].model_usage.0.values().map(|m| m.tokens).sum();
        assert_eq!(by_model, theirs, "the per-model figures too");
    }
    eprintln!(
        "estimated calls: {estimated} of 48; before: {before:?}; corrected within {:?}",
        started.elapsed()
    );
    // The kept replies' messages carry the upstream's figures too.
    let still: i64 = with_pool!(&app.db, |p| sqlx::query_scalar(
        "select count(*) from messages where usage_estimated"
    )
    .fetch_one(p)
    .await)
    .unwrap();
    assert_eq!(still, 0);
    runner.stop().await;
}

async fn a_correction_after_a_sync_does_not_count_twice(backend: Backend) {
    let app = app_on_peer(
        backend,
        &[
            ("TOKENMETER_USAGE_SYNC_AT", "off"),
            ("TOKENMETER_RECONCILE_SECONDS", "0"),
        ],
    )
    .await;
    let alice = app.signed_up("alice@example.com").await;
    let alice_id = my_id(&app, &alice).await;
    for n in 0..4 {
        abandoned(&app, &alice, n).await;
    }
    calls_recorded(&app, alice_id, 4).await;
    let theirs = litellm_total(alice_id, 4).await;
    let estimated = calls_of(&app, alice_id)
        .await
        .iter()
        .filter(|c| c.0)
        .count();
    assert!(estimated > 0, "abandoned replies are estimated");
    // LiteLLM writes its daily totals (what the sync reads) in batches, after its call logs.
    let today = chrono::Utc::now().date_naive();
    litellm_when(
        &format!("/user/daily/activity?user_id={alice_id}&start_date={today}&end_date={today}"),
        |b| b["metadata"]["total_tokens"].as_i64() == Some(theirs),
    )
    .await;

    // The sync sets the day to LiteLLM's figures, which count every call already...
    let admin = app.admin().await;
    let (status, body) = app
        .post(
            &admin,
            &format!("/api/admin/users/{alice_id}/usage/sync"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app_total(&app, alice_id).await, theirs);
    // ...so correcting the calls afterwards changes the app's own figures, not the shown ones.
    let pass = tokenmeter::server::usage_reconcile::reconcile_estimates(&app.state)
        .await
        .unwrap();
    assert_eq!(pass.corrected, estimated, "{pass:?}");
    assert_eq!(app_total(&app, alice_id).await, theirs, "not counted twice");
    let app_own: i64 = with_pool!(&app.db, |p| sqlx::query_scalar(
        "select app_tokens_used from usage_history where user_id = $1"
    )
    .bind(alice_id)
    .fetch_one(p)
    .await)
    .unwrap();
    assert_eq!(app_own, theirs, "the app's own figures are LiteLLM's now");
    // A second pass finds nothing left to do.
    let again = tokenmeter::server::usage_reconcile::reconcile_estimates(&app.state)
        .await
        .unwrap();
    assert_eq!((again.waiting, again.corrected), (0, 0));
}

/// The user went away while their first request created their LiteLLM key (an admin deleted
/// them): the key cannot be stored, so nobody would hold it; it is deleted at LiteLLM rather
/// than left valid there.
async fn a_key_that_cannot_be_stored_does_not_stay_valid_at_litellm(backend: Backend) {
    let app = app_on_peer(backend, &[]).await;
    let gone = uuid::Uuid::new_v4();
    let err = app
        .state
        .llm
        .user_key(&app.db, gone)
        .await
        .expect_err("no user to store the key for");
    assert!(
        !format!("{err:?}").contains("sk-"),
        "no key in the error: {err:?}"
    );
    // LiteLLM was asked (it knows the user now), and holds no key of theirs.
    let user = litellm_get(&format!("/user/info?user_id={gone}")).await;
    assert_eq!(user["user_id"], gone.to_string(), "{user}");
    let keys = litellm_get(&format!("/key/list?user_id={gone}")).await;
    assert_eq!(keys["total_count"], 0, "{keys}");
}
