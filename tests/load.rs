//! Load and faults, on SQLite and PostgreSQL: 200 users chat with the demo model while an admin
//! edits plans and limits (on PostgreSQL the users are spread over two instances of the server
//! on one database); afterwards every answered reply is recorded once, the days add up to the
//! calls exactly, no answer was a 5xx and no limited user is past their limit. A short run in
//! `make test` (`LOAD_SECONDS`, default 8); `make soak` runs it for 60 s.

#[macro_use]
mod common;

use common::{Backend, TestApp};
use futures_util::future::join_all;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokenmeter::domain::account::{Approval, Role};
use uuid::Uuid;

on_both_backends!(two_hundred_users_chat_while_an_admin_edits_limits);

const USERS: usize = 200;
/// Even users have a personal limit the load runs into; the admin only ever raises it.
const FIRST_LIMIT: i64 = 250;

fn load_seconds() -> u64 {
    std::env::var("LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8)
}

/// (tokens in the days, requests in the days, tokens of the calls, calls) per user.
async fn ledgers(app: &TestApp) -> BTreeMap<Uuid, (i64, i64, i64, i64)> {
    let days: Vec<(Uuid, i64, i64)> = with_pool!(&app.db, |p| sqlx::query_as(
        "select user_id, cast(sum(tokens_used) as bigint), cast(sum(requests_count) as bigint)
         from usage_history group by user_id"
    )
    .fetch_all(p)
    .await)
    .unwrap();
    let calls: Vec<(Uuid, i64, i64)> = with_pool!(&app.db, |p| sqlx::query_as(
        "select user_id, cast(sum(prompt_tokens + completion_tokens) as bigint),
                count(*) from usage_records group by user_id"
    )
    .fetch_all(p)
    .await)
    .unwrap();
    let mut out: BTreeMap<Uuid, (i64, i64, i64, i64)> = BTreeMap::new();
    for (user, tokens, requests) in days {
        let e = out.entry(user).or_default();
        e.0 = tokens;
        e.1 = requests;
    }
    for (user, tokens, n) in calls {
        let e = out.entry(user).or_default();
        e.2 = tokens;
        e.3 = n;
    }
    out
}

async fn two_hundred_users_chat_while_an_admin_edits_limits(backend: Backend) {
    let app = TestApp::start(backend).await;
    // On PostgreSQL half the users go through a second instance on the same database.
    let second = match backend {
        Backend::Postgres => Some(app.another_instance().await),
        Backend::Sqlite => None,
    };
    let admin = app.admin().await;
    // The users, each with an API token (a program's client, no cookie); a few at a time, as
    // the password hashing pool takes them.
    let users: Vec<(Uuid, String)> = futures_util::stream::iter((0..USERS).map(|i| {
        let db = app.db.clone();
        async move {
            let user = tokenmeter::server::accounts::create_user(
                &db,
                &format!("load{i}@example.com"),
                "load-password-123",
                Role::User,
                Approval::Approved,
            )
            .await
            .unwrap();
            let token = tokenmeter::server::accounts::create_token(&db, user.id, "load")
                .await
                .unwrap();
            (user.id, token.secret)
        }
    }))
    .buffered(8)
    .collect()
    .await;
    let limits: Arc<Mutex<BTreeMap<Uuid, i64>>> = Arc::default();
    for (i, (id, _)) in users.iter().enumerate() {
        if i % 2 == 0 {
            let (status, body) = app
                .patch(
                    &admin,
                    &format!("/api/admin/users/{id}"),
                    json!({"token_limit_override": FIRST_LIMIT}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            limits.lock().unwrap().insert(*id, FIRST_LIMIT);
        }
    }
    let (_, plans) = app.get(&admin, "/api/admin/plans").await;
    let plan_ids: Vec<String> = plans["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();

    let started = Instant::now();
    let deadline = started + Duration::from_secs(load_seconds());
    // On a slow machine the senders go on past the deadline until some user is refused (so
    // the limits are exercised whatever the throughput), for at most a minute more.
    let refused = Arc::new(AtomicBool::new(false));
    let last_call = deadline + Duration::from_secs(60);
    let statuses: Arc<Mutex<BTreeMap<u16, i64>>> = Arc::default();
    let answered = Arc::new(AtomicI64::new(0));
    let senders = users.iter().enumerate().map(|(i, (_, token))| {
        let base = match (&second, i % 2) {
            (Some(other), 1) => other.url(""),
            _ => app.url(""),
        };
        let client = app.bearer_client(token);
        let statuses = statuses.clone();
        let answered = answered.clone();
        let refused = refused.clone();
        async move {
            let mut n = 0;
            loop {
                let now = Instant::now();
                if now >= last_call || (now >= deadline && refused.load(Ordering::Relaxed)) {
                    break;
                }
                n += 1;
                let stream = n % 3 == 0;
                let res = client
                    .post(format!("{base}/api/chat/completions"))
                    .json(&json!({"model": "demo", "stream": stream, "max_tokens": 40,
                                  "messages": [{"role": "user", "content": format!("load {i} {n}")}]}))
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                let body = res.text().await.unwrap();
                if status == 200 {
                    let recorded = if stream {
                        body.contains("\"usage\"") && body.ends_with("data: [DONE]\n\n")
                    } else {
                        serde_json::from_str::<Value>(&body).unwrap()["usage"]["total_tokens"]
                            .as_i64()
                            .is_some()
                    };
                    assert!(recorded, "a complete answer: {body}");
                    answered.fetch_add(1, Ordering::Relaxed);
                } else {
                    assert!(status < 500, "{status}: {body}");
                    if status == 429 {
                        refused.store(true, Ordering::Relaxed);
                        // A limited user out of quota: wait a little before trying again.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
                *statuses.lock().unwrap().entry(status).or_default() += 1;
            }
        }
    });
    // The admin meanwhile: raises limited users' limits, sets and clears others' limits,
    // changes plans' monthly limits.
    let editor = {
        let app = &app;
        let admin = &admin;
        let users = &users;
        let limits = limits.clone();
        async move {
            let mut edits = 0;
            let mut k = 0usize;
            while Instant::now() < deadline {
                k += 1;
                let (id, _) = users[(k * 7919) % USERS];
                let limited = limits.lock().unwrap().get(&id).copied();
                let change = match limited {
                    Some(limit) => json!({"token_limit_override": limit + 50}),
                    None if k.is_multiple_of(2) => json!({"token_limit_override": 1_000_000}),
                    None => json!({"token_limit_override": null}),
                };
                let (status, body) = app
                    .patch(admin, &format!("/api/admin/users/{id}"), change)
                    .await;
                assert_eq!(status, 200, "{body}");
                if let Some(limit) = limited {
                    limits.lock().unwrap().insert(id, limit + 50);
                }
                let plan = &plan_ids[k % plan_ids.len()];
                let (status, body) = app
                    .patch(
                        admin,
                        &format!("/api/admin/plans/{plan}"),
                        json!({"monthly_token_limit": 5_000_000 + (k as i64 % 7) * 1_000}),
                    )
                    .await;
                assert_eq!(status, 200, "{body}");
                edits += 2;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            edits
        }
    };
    let (_, edits) = tokio::join!(join_all(senders), editor);
    let ran = started.elapsed().as_secs_f64();

    let statuses = statuses.lock().unwrap().clone();
    let answered = answered.load(Ordering::Relaxed);
    assert!(
        statuses.keys().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    assert!(answered > USERS as i64, "the load ran: {statuses:?}");
    assert!(
        statuses.get(&429).copied().unwrap_or(0) > 0,
        "limits were reached: {statuses:?}"
    );

    let ledgers = ledgers(&app).await;
    let calls: i64 = ledgers.values().map(|l| l.3).sum();
    assert_eq!(calls, answered, "every answered reply is recorded once");
    for (user, (day_tokens, day_requests, call_tokens, n)) in &ledgers {
        assert_eq!(
            (day_tokens, day_requests),
            (call_tokens, n),
            "{user}: the days add up to the calls"
        );
    }
    let limits = limits.lock().unwrap().clone();
    for (user, limit) in &limits {
        let used = ledgers.get(user).map(|l| l.0).unwrap_or(0);
        assert!(used <= *limit, "{user}: {used} tokens used, limit {limit}");
    }
    // Every reservation settled (SQLite's are in the server's memory, PostgreSQL's in the table).
    let mut held = 0;
    for user in ledgers.keys().chain(limits.keys()) {
        held += tokenmeter::server::db::quota::live(&app.db, *user, chrono::Utc::now())
            .await
            .unwrap();
    }
    assert_eq!(held, 0, "every reservation settled");
    let tokens: i64 = ledgers.values().map(|l| l.0).sum();
    eprintln!(
        "load ({}, {ran:.1} s, {} instance(s)): {USERS} users, {answered} replies, {tokens} tokens, \
         {edits} admin edits, statuses {statuses:?}",
        app.db.backend(),
        if second.is_some() { 2 } else { 1 },
    );
}
