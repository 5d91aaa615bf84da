//! The usage sync and the history API against a fake LiteLLM on a loopback port: the rule for
//! LiteLLM's figures against the app's, drift, pagination, idempotence, the backfill window, a
//! non-UTC timezone (read from the spend logs), and the faults the real proxy will not produce
//! on demand (down, slow, 500, 401, garbage, a page missing) — each a clear error that writes
//! nothing. The real proxy is in `tests/litellm.rs`.

#[macro_use]
mod common;

use chrono::{Duration, NaiveDate, Utc};
use common::fake_litellm::{record, spend_log, FakeLiteLlm, Fault, MASTER_KEY};
use common::{assert_error, my_id, usage_days, Backend, TestApp};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokenmeter::server::db::usage_history::UsageDayRow;
use tokenmeter::server::usage_sync;
use uuid::Uuid;

async fn start(backend: Backend, extra: &[(&str, &str)]) -> (TestApp, FakeLiteLlm) {
    let fake = FakeLiteLlm::start().await;
    let mut vars = vec![
        ("LITELLM_URL", fake.url.as_str()),
        ("LITELLM_MASTER_KEY", MASTER_KEY),
        ("TOKENMETER_LLM_TIMEOUT_SECONDS", "1"),
    ];
    vars.extend_from_slice(extra);
    (TestApp::start_with(backend, &vars).await, fake)
}

/// One reply through the app from the fake (10 + 5 tokens, $0.0001).
async fn chat(app: &TestApp, client: &reqwest::Client, content: &str) {
    let (status, body) = app
        .post(
            client,
            "/api/chat/completions",
            json!({"model": "gpt-fake", "messages": [{"role": "user", "content": content}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Signs a user up and has them chat once through the app.
async fn user_who_chatted(app: &TestApp, email: &str) -> (reqwest::Client, Uuid) {
    let client = app.signed_up(email).await;
    chat(app, &client, "hello").await;
    let id = my_id(app, &client).await;
    (client, id)
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// The stored rows without the times a sync stamps.
fn figures(rows: &[UsageDayRow]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            format!(
                "{} {} {}/{} {} {} {:?} {} {} {:?}",
                r.date,
                r.tokens_used,
                r.prompt_tokens,
                r.completion_tokens,
                r.requests_count,
                r.cost_nanos,
                r.model_usage.0,
                r.source,
                r.drifted,
                r.litellm_tokens_used
            )
        })
        .collect()
}

async fn sync(app: &TestApp, admin: &reqwest::Client, user: Uuid) -> (u16, Value) {
    app.post(
        admin,
        &format!("/api/admin/users/{user}/usage/sync"),
        json!({}),
    )
    .await
}

async fn litellm_figures_replace_the_apps_and_a_second_sync_changes_nothing(backend: Backend) {
    let (app, fake) = start(backend, &[]).await;
    let (alice, id) = user_who_chatted(&app, "alice@example.com").await;
    let admin = app.admin().await;
    let yesterday = today() - Duration::days(1);
    fake.script().records.insert(
        id.to_string(),
        vec![
            // Today: what the app saw, in LiteLLM's words.
            record(today(), "gpt-fake", 10, 5, 1, 0.0001),
            // Yesterday: use the app never saw (the key used elsewhere).
            record(yesterday, "gpt-fake", 60, 40, 2, 0.002),
        ],
    );
    let (status, body) = sync(&app, &admin, id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["days_reported"], 2);
    // A first sync covers the whole backfill window, in one read.
    assert_eq!(
        body["data"]["from"],
        (today() - Duration::days(89)).to_string()
    );
    {
        let f = fake.script();
        assert_eq!(f.reads.len(), 1, "{:?}", f.reads);
        assert_eq!(f.reads[0].0, "/user/daily/activity");
        assert_eq!(
            f.reads[0].1["start_date"],
            (today() - Duration::days(89)).to_string()
        );
        assert_eq!(f.reads[0].1["end_date"], today().to_string());
    }
    let rows = usage_days(&app, id).await;
    assert_eq!(rows.len(), 2);
    let (y, t) = (&rows[0], &rows[1]);
    assert_eq!(
        (y.tokens_used, y.requests_count, y.cost_nanos),
        (100, 2, 2_000_000)
    );
    assert_eq!(
        (y.source.as_str(), y.drifted),
        ("litellm", true),
        "the app saw none of it"
    );
    assert_eq!(y.model_usage.0["gpt-fake"].tokens, 100);
    assert_eq!(
        (t.tokens_used, t.requests_count, t.cost_nanos),
        (15, 1, 100_000)
    );
    assert_eq!((t.source.as_str(), t.drifted), ("litellm", false));

    // The quota sees the synced days at once (the cached usage was dropped).
    let (_, usage) = app.get(&alice, "/api/profile/usage").await;
    let in_period = if yesterday.format("%Y-%m").to_string() == today().format("%Y-%m").to_string()
    {
        115
    } else {
        15
    };
    assert_eq!(usage["data"]["tokens_used"], in_period, "{usage}");

    let before = figures(&rows);
    let (status, body) = sync(&app, &admin, id).await;
    assert_eq!(status, 200, "{body}");
    // The next sync reads from yesterday only.
    assert_eq!(body["data"]["from"], yesterday.to_string());
    assert_eq!(
        figures(&usage_days(&app, id).await),
        before,
        "a second sync changes nothing"
    );

    // The history says when it was synced.
    let (status, history) = app.get(&alice, "/api/profile/usage/history?days=7").await;
    assert_eq!(status, 200, "{history}");
    let h = &history["data"];
    assert_eq!(h["daily"].as_array().unwrap().len(), 7);
    assert_eq!(h["totals"]["tokens_used"], 115);
    assert_eq!(h["totals"]["requests_count"], 3);
    assert_eq!(h["totals"]["estimated_cost"], "0.0021");
    assert_eq!(h["daily"][5]["date"], yesterday.to_string());
    assert_eq!(h["daily"][5]["drifted"], true);
    assert_eq!(h["daily"][5]["model_usage"]["gpt-fake"]["cost"], "0.002");
    assert_eq!(h["daily"][0]["tokens_used"], 0, "days without use are zero");
    assert_eq!(h["by_model"][0][0], "gpt-fake");
    assert!(h["last_synced_at"].is_string(), "{h}");
    assert!(h["sync_error"].is_null());
}

async fn when_litellm_has_less_the_apps_figures_stay_and_the_day_drifts(backend: Backend) {
    let (app, fake) = start(backend, &[]).await;
    let (alice, id) = user_who_chatted(&app, "alice@example.com").await;
    let admin = app.admin().await;
    // LiteLLM has not written the request yet.
    let (status, body) = sync(&app, &admin, id).await;
    assert_eq!(status, 200, "{body}");
    let rows = usage_days(&app, id).await;
    assert_eq!((rows[0].tokens_used, rows[0].requests_count), (15, 1));
    assert_eq!((rows[0].source.as_str(), rows[0].drifted), ("app", true));
    assert_eq!(rows[0].litellm_tokens_used, Some(0));

    // Now it has, within 1%: LiteLLM's figures, no drift.
    fake.script().records.insert(
        id.to_string(),
        vec![record(today(), "gpt-fake", 10, 5, 1, 0.0001)],
    );
    sync(&app, &admin, id).await;
    let rows = usage_days(&app, id).await;
    assert_eq!(
        (rows[0].source.as_str(), rows[0].drifted),
        ("litellm", false)
    );

    // Fewer tokens than the app recorded: the app's figures stay, marked.
    fake.script().records.insert(
        id.to_string(),
        vec![record(today(), "gpt-fake", 5, 4, 1, 0.0001)],
    );
    sync(&app, &admin, id).await;
    let rows = usage_days(&app, id).await;
    assert_eq!(rows[0].tokens_used, 15);
    assert_eq!((rows[0].source.as_str(), rows[0].drifted), ("app", true));
    assert_eq!(rows[0].litellm_tokens_used, Some(9));

    // A reply after the sync adds to the shown figures and the app's own.
    chat(&app, &alice, "again").await;
    let rows = usage_days(&app, id).await;
    assert_eq!((rows[0].tokens_used, rows[0].requests_count), (30, 2));
}

async fn a_day_split_over_pages_adds_up(backend: Backend) {
    let (app, fake) = start(backend, &[]).await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice@example.com").await;
    let id = my_id(&app, &alice).await;
    {
        let mut f = fake.script();
        f.rows_per_page = Some(1);
        f.records.insert(
            id.to_string(),
            vec![
                record(today(), "gpt-fake", 10, 5, 1, 0.000_1),
                record(today(), "claude-fake", 20, 10, 2, 0.000_3),
                record(today() - Duration::days(3), "gpt-fake", 1, 1, 1, 0.000_001),
            ],
        );
    }
    let (status, body) = sync(&app, &admin, id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fake.script().reads.len(), 3, "one read per page");
    let rows = usage_days(&app, id).await;
    assert_eq!(rows.len(), 2);
    let t = &rows[1];
    assert_eq!(
        (t.tokens_used, t.prompt_tokens, t.completion_tokens),
        (45, 30, 15)
    );
    assert_eq!((t.requests_count, t.cost_nanos), (3, 400_000));
    assert_eq!(t.model_usage.0.len(), 2);
    assert_eq!(t.model_usage.0["claude-fake"].requests, 2);
}

async fn faults_are_clear_errors_and_write_nothing(backend: Backend) {
    let (app, fake) = start(backend, &[]).await;
    let (alice, id) = user_who_chatted(&app, "alice@example.com").await;
    let admin = app.admin().await;
    {
        let mut f = fake.script();
        f.rows_per_page = Some(1);
        f.records.insert(
            id.to_string(),
            vec![
                record(today(), "gpt-fake", 100, 50, 3, 0.01),
                record(today() - Duration::days(1), "gpt-fake", 1, 1, 1, 0.0),
            ],
        );
    }
    let before = figures(&usage_days(&app, id).await);
    let admin_history = format!("/api/admin/users/{id}/usage/history?days=1");
    for (fault, want) in [
        (Fault::Slow, "within 1 s"),
        (Fault::Status(500), "HTTP 500"),
        (Fault::Status(401), "HTTP 401"),
        (Fault::Garbage, "unreadable answer"),
        (Fault::PageMissing, "(page 2): HTTP 404"),
    ] {
        fake.script().fault = Some(fault);
        let (status, body) = sync(&app, &admin, id).await;
        let message = assert_error(status, &body, 502, "upstream");
        assert!(message.contains(want), "{fault:?}: {message}");
        assert!(message.contains("/user/daily/activity"), "{message}");
        assert_eq!(
            figures(&usage_days(&app, id).await),
            before,
            "{fault:?} wrote something"
        );
        let (_, history) = app.get(&admin, &admin_history).await;
        assert!(history["data"]["last_synced_at"].is_null(), "{fault:?}");
        let error = history["data"]["sync_error"].as_str().unwrap_or_default();
        assert!(error.contains(want), "{fault:?}: recorded {error:?}");
        // The user's own history does not show the failure's text (it names the proxy).
        let (_, own) = app.get(&alice, "/api/profile/usage/history?days=1").await;
        assert!(own["data"]["sync_error"].is_null(), "{own}");
    }
    // And down: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = TestApp::start_with(
        backend,
        &[
            ("LITELLM_URL", &format!("http://{closed}")),
            ("LITELLM_MASTER_KEY", "sk-master"),
        ],
    )
    .await;
    let down_admin = down.admin().await;
    let bob = down.signed_up("bob@example.com").await;
    let bob_id = my_id(&down, &bob).await;
    let (status, body) = sync(&down, &down_admin, bob_id).await;
    let message = assert_error(status, &body, 502, "upstream");
    assert!(message.contains("cannot reach"), "{message}");
    // No LiteLLM at all: nothing to sync from.
    let demo = TestApp::start(backend).await;
    let demo_admin = demo.admin().await;
    let (status, body) = sync(&demo, &demo_admin, my_id(&demo, &demo_admin).await).await;
    let message = assert_error(status, &body, 409, "conflict");
    assert!(
        message.contains("no LiteLLM proxy is configured"),
        "{message}"
    );
    let (_, history) = demo
        .get(&demo_admin, "/api/profile/usage/history?days=1")
        .await;
    assert_eq!(history["data"]["sync_available"], false);

    // Healthy again: the sync goes through.
    fake.script().fault = None;
    let (status, body) = sync(&app, &admin, id).await;
    assert_eq!(status, 200, "{body}");
    let (_, history) = app.get(&admin, &admin_history).await;
    assert!(history["data"]["sync_error"].is_null());
    assert_eq!(history["data"]["totals"]["tokens_used"], 150);
}

async fn a_sync_of_everyone_goes_on_past_a_failure(backend: Backend) {
    let (app, fake) = start(backend, &[("TOKENMETER_USAGE_SYNC_CONCURRENCY", "2")]).await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        let client = app.signed_up(&format!("{name}@example.com")).await;
        ids.push(my_id(&app, &client).await);
    }
    {
        let mut f = fake.script();
        for id in &ids {
            f.records.insert(
                id.to_string(),
                vec![record(today(), "gpt-fake", 7, 3, 1, 0.0)],
            );
        }
        f.failing.push(ids[1].to_string());
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let report = usage_sync::sync_all_users_usage(
        &app.state,
        &move |p| log.lock().unwrap().push(p),
        &std::sync::atomic::AtomicBool::new(false),
    )
    .await
    .unwrap();
    // The admin counts too (an active user), with nothing to report.
    assert_eq!(report.users, 4);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].0, ids[1]);
    assert!(
        report.failures[0].1.contains("HTTP 500"),
        "{:?}",
        report.failures
    );
    assert_eq!(report.days_reported, 2);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().map(|p| p.done).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert!(seen.iter().all(|p| p.total == 4));
    assert_eq!(seen.last().unwrap().failed, 1);
    assert_eq!(usage_days(&app, ids[0]).await[0].tokens_used, 10);
    assert!(usage_days(&app, ids[1]).await.is_empty());
    assert_eq!(usage_days(&app, ids[2]).await[0].tokens_used, 10);
}

async fn in_a_non_utc_zone_days_come_from_the_spend_logs(backend: Backend) {
    let (app, fake) = start(backend, &[("TOKENMETER_TIMEZONE", "Asia/Kolkata")]).await;
    let alice = app.signed_up("alice@example.com").await;
    let id = my_id(&app, &alice).await;
    let admin = app.admin().await;
    let local_today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Kolkata)
        .date_naive();
    let yesterday = local_today - Duration::days(1);
    // 18:29:59 UTC is still the day before in Kolkata; 18:30:00 is the next day's midnight.
    let at = |day: NaiveDate, time: &str| format!("{day}T{time}+00:00");
    {
        let mut f = fake.script();
        f.rows_per_page = Some(2);
        f.logs.insert(
            id.to_string(),
            vec![
                spend_log(
                    &at(yesterday - Duration::days(1), "18:29:59"),
                    "gpt-fake",
                    1,
                    1,
                    0.0,
                ),
                spend_log(
                    &at(yesterday - Duration::days(1), "18:30:00"),
                    "gpt-fake",
                    10,
                    10,
                    0.001,
                ),
                spend_log(
                    &at(local_today - Duration::days(1), "04:00:00"),
                    "claude-fake",
                    5,
                    5,
                    0.002,
                ),
            ],
        );
    }
    let (status, body) = sync(&app, &admin, id).await;
    assert_eq!(status, 200, "{body}");
    {
        let f = fake.script();
        assert_eq!(f.reads.len(), 2, "two pages");
        let q = &f.reads[0].1;
        assert_eq!(f.reads[0].0, "/spend/logs/v2");
        // The range is whole local days, in UTC.
        let first = local_today - Duration::days(89);
        assert_eq!(
            q["start_date"],
            format!("{} 18:30:00", first - Duration::days(1))
        );
        assert_eq!(q["end_date"], format!("{} 18:30:00", local_today));
    }
    let rows = usage_days(&app, id).await;
    let by_day: HashMap<String, i64> = rows
        .iter()
        .map(|r| (r.date.to_string(), r.tokens_used))
        .collect();
    assert_eq!(by_day[&(yesterday - Duration::days(1)).to_string()], 2);
    assert_eq!(by_day[&yesterday.to_string()], 30, "{by_day:?}");
    assert_eq!(rows.len(), 2);
    let y = rows.iter().find(|r| r.date == yesterday).unwrap();
    assert_eq!(y.cost_nanos, 3_000_000);
    assert_eq!(y.model_usage.0.len(), 2);
}

async fn the_history_api_checks_its_input_and_its_caller(backend: Backend) {
    let (app, _fake) = start(backend, &[]).await;
    let (alice, id) = user_who_chatted(&app, "alice@example.com").await;
    let bob = app.signed_up("bob@example.com").await;
    let admin = app.admin().await;
    for days in ["0", "366", "-3", "abc", "1.5"] {
        let (status, body) = app
            .get(&alice, &format!("/api/profile/usage/history?days={days}"))
            .await;
        let message = assert_error(status, &body, 400, "validation");
        assert!(message.contains("from 1 to 365"), "{message}");
    }
    let (status, body) = app
        .get(&alice, "/api/profile/usage/history?format=xml")
        .await;
    let message = assert_error(status, &body, 400, "validation");
    assert!(message.contains("json, csv"), "{message}");
    let (status, body) = app.get(&alice, "/api/profile/usage/history?dayz=3").await;
    assert_error(status, &body, 400, "validation");

    // Default 30 days, one of them today's chat.
    let (status, body) = app.get(&alice, "/api/profile/usage/history").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["days"], 30);
    assert_eq!(body["data"]["daily"].as_array().unwrap().len(), 30);
    assert_eq!(body["data"]["to"], today().to_string());
    assert_eq!(body["data"]["daily"][29]["tokens_used"], 15);
    assert_eq!(body["data"]["daily"][29]["source"], "app");

    // Someone else's history: admins only.
    let path = format!("/api/admin/users/{id}/usage/history?days=365");
    let (status, body) = app.get(&bob, &path).await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = app.get(&app.client(), &path).await;
    assert_error(status, &body, 401, "unauthorized");
    let (status, body) = app.get(&admin, &path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["daily"].as_array().unwrap().len(), 365);
    assert_eq!(body["data"]["totals"]["tokens_used"], 15);
    let (status, body) = app
        .get(
            &admin,
            &format!("/api/admin/users/{}/usage/history", Uuid::new_v4()),
        )
        .await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app.get(&admin, "/api/admin/users/nope/usage/history").await;
    let message = assert_error(status, &body, 400, "validation");
    assert!(message.contains("user_id"), "{message}");
    let (status, body) = sync(&app, &bob, id).await;
    assert_error(status, &body, 403, "forbidden");

    // CSV.
    let res = alice
        .get(app.url("/api/profile/usage/history?days=2&format=csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"usage-"),
        "{disposition}"
    );
    let text = res.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("date,tokens_used,"));
    assert_eq!(lines[2], format!("{},15,10,5,1,0.0001,app,false", today()));
}

async fn admin_analytics_add_up_everyone(backend: Backend) {
    let (app, fake) = start(backend, &[]).await;
    let (alice, alice_id) = user_who_chatted(&app, "alice@example.com").await;
    let (_bob, bob_id) = user_who_chatted(&app, "bob@example.com").await;
    chat(&app, &alice, "more").await;
    let admin = app.admin().await;
    // Bob used another model yesterday, through LiteLLM only.
    let yesterday = today() - Duration::days(1);
    fake.script().records.insert(
        bob_id.to_string(),
        vec![
            record(today(), "gpt-fake", 10, 5, 1, 0.0001),
            record(yesterday, "claude-fake", 50, 50, 1, 0.003),
        ],
    );
    let (status, body) = sync(&app, &admin, bob_id).await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = app.get(&admin, "/api/admin/usage").await;
    assert_eq!(status, 200, "{body}");
    let a = &body["data"];
    assert_eq!(a["from"], (today() - Duration::days(29)).to_string());
    assert_eq!(a["daily"].as_array().unwrap().len(), 30);
    assert_eq!(a["totals"]["tokens_used"], 30 + 15 + 100);
    assert_eq!(a["totals"]["requests_count"], 4);
    assert_eq!(a["totals"]["estimated_cost"], "0.0033");
    assert_eq!(a["daily"][29]["tokens_used"], 45);
    assert_eq!(a["daily"][28]["tokens_used"], 100);
    assert_eq!(
        a["daily"][28]["drifted"], true,
        "bob's yesterday is LiteLLM's only"
    );
    assert_eq!(a["drifted_days"], 1);
    assert_eq!(a["top_users"][0]["email"], "bob@example.com");
    assert_eq!(a["top_users"][0]["tokens_used"], 115);
    assert_eq!(a["top_users"][1]["user_id"], alice_id.to_string());
    assert_eq!(a["top_users"][1]["tokens_used"], 30);
    assert_eq!(a["top_users"].as_array().unwrap().len(), 2);
    assert_eq!(a["by_model"][0][0], "claude-fake");
    assert_eq!(a["by_model"][0][1]["tokens"], 100);
    assert_eq!(a["by_model"][0][1]["cost"], "0.003");
    assert_eq!(a["by_model"][1][0], "gpt-fake");
    assert_eq!(a["by_model"][1][1]["tokens"], 45);
    assert_eq!(a["by_model"][1][1]["requests"], 3);

    // Today only.
    let path = format!("/api/admin/usage?from={0}&to={0}", today());
    let (_, body) = app.get(&admin, &path).await;
    assert_eq!(body["data"]["totals"]["tokens_used"], 45);
    assert_eq!(body["data"]["daily"].as_array().unwrap().len(), 1);

    for (query, want) in [
        ("from=2026-11-29&to=2026-11-28", "must not be after"),
        ("from=yesterday", "from must be a date"),
        ("from=2020-01-01&to=2026-01-01", "at most 366 days"),
        ("format=pdf", "json, csv"),
        ("user=1", "unknown field"),
    ] {
        let (status, body) = app.get(&admin, &format!("/api/admin/usage?{query}")).await;
        let message = assert_error(status, &body, 400, "validation");
        assert!(message.contains(want), "{query}: {message}");
    }
    let (status, body) = app.get(&alice, "/api/admin/usage").await;
    assert_error(status, &body, 403, "forbidden");

    let res = admin
        .get(app.url(&format!(
            "/api/admin/usage?from={yesterday}&to={}&format=csv",
            today()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("date,email,"));
    assert_eq!(
        lines[1],
        format!("{yesterday},bob@example.com,100,50,50,1,0.003,litellm,true")
    );
    assert_eq!(
        lines[2],
        format!("{},alice@example.com,30,20,10,2,0.0002,app,false", today())
    );
}

async fn syncs_during_replies_lose_nothing(backend: Backend) {
    let (app, fake) = start(backend, &[]).await;
    let (alice, id) = user_who_chatted(&app, "alice@example.com").await;
    // LiteLLM is behind: it has the first reply only.
    fake.script().records.insert(
        id.to_string(),
        vec![record(today(), "gpt-fake", 10, 5, 1, 0.0001)],
    );
    let sends = (0..10).map(|i| {
        let (app, alice) = (&app, &alice);
        async move { chat(app, alice, &format!("q{i}")).await }
    });
    let syncs = (0..10).map(|_| async {
        usage_sync::sync_user_usage(&app.state, id).await.unwrap();
    });
    futures_util::future::join(
        futures_util::future::join_all(sends),
        futures_util::future::join_all(syncs),
    )
    .await;
    // One day synced on its own (the job runner's way) after everything.
    let synced = usage_sync::aggregate_daily_usage(&app.state, id, today())
        .await
        .unwrap();
    assert_eq!(
        (synced.from, synced.to, synced.days_reported),
        (today(), today(), 1)
    );
    let rows = usage_days(&app, id).await;
    assert_eq!(rows.len(), 1);
    let day = &rows[0];
    // Every reply counted: the app saw 11, LiteLLM 1, so the app's figures stand.
    assert_eq!((day.tokens_used, day.requests_count), (11 * 15, 11));
    assert_eq!((day.source.as_str(), day.drifted), ("app", true));
    assert_eq!(day.litellm_tokens_used, Some(15));
    let (_, usage) = app.get(&alice, "/api/profile/usage").await;
    assert_eq!(usage["data"]["tokens_used"], 11 * 15);
    let err = usage_sync::aggregate_daily_usage(&app.state, Uuid::new_v4(), today())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
}

on_both_backends!(
    syncs_during_replies_lose_nothing,
    admin_analytics_add_up_everyone,
    litellm_figures_replace_the_apps_and_a_second_sync_changes_nothing,
    when_litellm_has_less_the_apps_figures_stay_and_the_day_drifts,
    a_day_split_over_pages_adds_up,
    faults_are_clear_errors_and_write_nothing,
    a_sync_of_everyone_goes_on_past_a_failure,
    in_a_non_utc_zone_days_come_from_the_spend_logs,
    the_history_api_checks_its_input_and_its_caller,
);
