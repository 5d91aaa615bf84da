//! Usage no path can dodge and input no database refuses, on SQLite and PostgreSQL: a reply
//! whose conversation is deleted while it streams, a client gone before the first token, a
//! reply that outlives its reservation; NUL in any text field; log-in limits under parallel
//! attempts; the chat request's caps.

#[macro_use]
mod common;

use common::{assert_error, my_id, new_conversation, read, usage_days, Backend, TestApp};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;
use tokenmeter::server::llm::tokens;
use uuid::Uuid;

on_both_backends!(
    deleting_a_conversation_mid_reply_keeps_the_usage,
    a_client_gone_before_the_first_token_still_counts_the_prompt,
    a_reply_outlasting_its_reservation_keeps_it_held,
    nul_in_any_text_is_a_400_naming_the_field,
    parallel_log_ins_cannot_pass_the_address_limit,
    chat_requests_are_capped,
    sign_ups_wait_for_an_admin_and_are_limited_per_address,
    a_waiting_accounts_right_password_is_not_a_failed_log_in,
);

/// (messages kept, estimated, status, prompt tokens, completion tokens) of the user's calls.
async fn usage_records(app: &TestApp, user: Uuid) -> Vec<(bool, bool, String, i64, i64)> {
    with_pool!(&app.db, |p| sqlx::query_as(
        "select messages_kept, estimated, status, prompt_tokens, completion_tokens
         from usage_records where user_id = $1 order by created_at"
    )
    .bind(user)
    .fetch_all(p)
    .await)
    .unwrap()
}

/// Reservations of the user that still hold tokens now (SQLite's are in the server's memory).
async fn live_reservations(app: &TestApp, user: Uuid) -> i64 {
    tokenmeter::server::db::quota::live(&app.db, user, chrono::Utc::now())
        .await
        .unwrap()
}

async fn deleting_a_conversation_mid_reply_keeps_the_usage(backend: Backend) {
    let app = TestApp::start_with(backend, &[("TOKENMETER_DEMO_DELAY_MS", "20")]).await;
    let alice = app.signed_up("alice@example.com").await;
    let alice_id = my_id(&app, &alice).await;
    let id = new_conversation(&app, &alice).await;
    let res = alice
        .post(app.url("/api/chat/completions"))
        .json(
            &json!({"model": "demo", "stream": true, "conversation_id": id,
                      "messages": [{"role": "user", "content": "delete me while you answer"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();
    let mut received = common::read_at_least(&mut body, 300).await;
    let (status, deleted) = app
        .delete(&alice, &format!("/api/conversations/{id}"))
        .await;
    assert_eq!(status, 200, "{deleted}");
    common::read_to_end(&mut body, &mut received).await;
    let events = common::sse_events(&received);
    assert_eq!(events.last().unwrap(), "[DONE]");
    assert!(
        events.iter().all(|e| e.get("error").is_none()),
        "the reply ends normally: {:?}",
        &events[events.len() - 3..]
    );
    let usage = &events[events.len() - 2]["usage"];
    let total = usage["total_tokens"].as_i64().expect("usage at the end");
    assert!(total > 0);
    assert_eq!(usage["estimated"], false);

    // Counted in full, against the quota, though the messages are gone with the conversation.
    let days = usage_days(&app, alice_id).await;
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].tokens_used, total);
    assert_eq!(days[0].requests_count, 1);
    let (_, me) = app.get(&alice, "/api/profile/usage").await;
    assert_eq!(me["data"]["tokens_used"], total, "{me}");
    let records = usage_records(&app, alice_id).await;
    assert_eq!(records.len(), 1);
    let (kept, estimated, status, prompt, completion) = records[0].clone();
    assert!(!kept, "the conversation was deleted: no messages");
    assert!(!estimated);
    assert_eq!(status, "complete");
    assert_eq!(prompt + completion, total);
    assert_eq!(live_reservations(&app, alice_id).await, 0, "settled");
    let (status, body) = app.get(&alice, &format!("/api/conversations/{id}")).await;
    assert_error(status, &body, 404, "not_found");
}

async fn a_client_gone_before_the_first_token_still_counts_the_prompt(backend: Backend) {
    // The demo's first token comes after 3 s: the client is gone long before.
    let app = TestApp::start_with(backend, &[("TOKENMETER_DEMO_DELAY_MS", "3000")]).await;
    let alice = app.signed_up("alice@example.com").await;
    let alice_id = my_id(&app, &alice).await;
    let prompt = "I will leave before the first word";
    let res = alice
        .post(app.url("/api/chat/completions"))
        .json(&json!({"model": "demo", "stream": true,
                      "messages": [{"role": "user", "content": prompt}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the upstream accepted the prompt");
    drop(res);

    let mut days = vec![];
    for _ in 0..100 {
        days = usage_days(&app, alice_id).await;
        if !days.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let estimate = tokens::count_chat([("user", prompt)]);
    assert_eq!(days.len(), 1, "the prompt's usage is recorded");
    assert_eq!(days[0].tokens_used, estimate);
    assert_eq!(days[0].prompt_tokens, estimate);
    assert_eq!(days[0].requests_count, 1);
    let records = usage_records(&app, alice_id).await;
    assert_eq!(
        records,
        vec![(false, true, "stopped".to_string(), estimate, 0)],
        "estimated, no messages kept"
    );
    assert_eq!(live_reservations(&app, alice_id).await, 0, "settled");
    // Nothing to show in the conversation list: the page gives the text back.
    let (_, list) = app.get(&alice, "/api/conversations").await;
    assert_eq!(list["data"], json!([]), "{list}");
}

async fn a_reply_outlasting_its_reservation_keeps_it_held(backend: Backend) {
    // Reservations last 1 s unless renewed; the reply takes far longer.
    let app = TestApp::start_with(
        backend,
        &[
            ("TOKENMETER_DEMO_DELAY_MS", "100"),
            ("TOKENMETER_RESERVATION_TTL_SECONDS", "1"),
        ],
    )
    .await;
    let alice = app.signed_up("alice@example.com").await;
    let alice_id = my_id(&app, &alice).await;
    let res = alice
        .post(app.url("/api/chat/completions"))
        .json(&json!({"model": "demo", "stream": true,
                      "messages": [{"role": "user", "content": "a long answer please"}]}))
        .send()
        .await
        .unwrap();
    let mut body = res.bytes_stream();
    let reading = tokio::spawn(async move {
        let mut n = 0;
        while let Some(chunk) = body.next().await {
            n += chunk.unwrap().len();
            // About 250 bytes a token, one token every 100 ms: some 5 s of reply.
            if n > 12_000 {
                break; // then the client goes away
            }
        }
    });
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            live_reservations(&app, alice_id).await,
            1,
            "the reservation is renewed while the reply streams"
        );
    }
    reading.await.unwrap();
    for _ in 0..100 {
        if !usage_days(&app, alice_id).await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(usage_days(&app, alice_id).await.len(), 1);
    assert_eq!(live_reservations(&app, alice_id).await, 0);
}

async fn nul_in_any_text_is_a_400_naming_the_field(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.signed_up("alice@example.com").await;
    let id = new_conversation(&app, &alice).await;
    let cases = [
        (
            "/api/chat/completions",
            json!({"model": "demo", "conversation_id": id,
                   "messages": [{"role": "user", "content": "a\u{0}b"}]}),
            "messages[0].content",
        ),
        (
            "/api/chat/completions",
            json!({"model": "demo", "stream": true, "conversation_id": id,
                   "messages": [{"role": "system", "content": "ok"},
                                {"role": "user", "content": "\u{0}"}]}),
            "messages[1].content",
        ),
        (
            "/api/conversations",
            json!({"model": "demo", "title": "nul\u{0}title"}),
            "title",
        ),
        (
            "/api/profile/tokens",
            json!({"name": "script\u{0}"}),
            "name",
        ),
        (
            "/api/auth/signup",
            json!({"email": "bob\u{0}@example.com", "password": "password-123"}),
            "email",
        ),
    ];
    for (path, body, field) in cases {
        let (status, answer) = app.post(&alice, path, body).await;
        let message = assert_error(status, &answer, 400, "validation");
        assert!(
            message.contains(field) && message.contains("U+0000"),
            "{path}: {message}"
        );
    }
    let (status, answer) = app
        .patch(
            &alice,
            &format!("/api/conversations/{id}"),
            json!({"title": "\u{0}"}),
        )
        .await;
    let message = assert_error(status, &answer, 400, "validation");
    assert!(message.contains("title"), "{message}");
    // In a query string.
    let (status, answer) = app
        .get(&alice, "/api/profile/usage/history?days=7%00")
        .await;
    let message = assert_error(status, &answer, 400, "validation");
    assert!(message.contains("days"), "{message}");
    // A server function (a form body): its own error shape, same status.
    let res = alice
        .post(app.url("/api/fn/create_conversation"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("model=demo&title=x%00y")
        .send()
        .await
        .unwrap();
    let (status, answer) = read(res).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["code"], "validation", "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("title"));
    // The six characters \u0000 written out are text like any other.
    let (status, answer) = app
        .post(
            &alice,
            "/api/conversations",
            json!({"model": "demo", "title": "\\u0000 is fine"}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    // Nothing else was written.
    let (_, list) = app.get(&alice, "/api/conversations").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2, "{list}");
    let (_, detail) = app.get(&alice, &format!("/api/conversations/{id}")).await;
    assert_eq!(detail["data"]["messages"], json!([]), "{detail}");
}

async fn parallel_log_ins_cannot_pass_the_address_limit(backend: Backend) {
    let app = TestApp::start_with(backend, &[("TOKENMETER_LOGIN_MAX_FAILURES_PER_IP", "10")]).await;
    // 20 at once: twice the limit, and within the password checks' queue (16 per core, shared
    // by the tests running in this process), so that no other test's sign-up is refused.
    let attempts = (0..20).map(|i| {
        let client = app.client();
        let url = app.url("/api/auth/login");
        async move {
            client
                .post(url)
                .json(&json!({"email": format!("nobody{i}@example.com"), "password": "wrong-password"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    // Past the password checks' queue (16 per core) an attempt is refused at once as busy.
    let busy = statuses.iter().filter(|s| **s == 503).count();
    // Each attempt is counted before its check, so a burst may refuse some that a slower
    // sequence would have let through, but never lets more than the limit through.
    assert!(
        checked <= 10 && checked + limited + busy == 20,
        "at most the address's 10 attempts reach the password check: {statuses:?}"
    );
    // Refused attempts were never checked and do not count: exactly the rest of the
    // address's 10 are checked now, one after the other.
    let mut later = vec![];
    for i in 0..12 {
        let (status, _) = app
            .post(
                &app.client(),
                "/api/auth/login",
                json!({"email": format!("later{i}@example.com"), "password": "wrong-password"}),
            )
            .await;
        later.push(status);
    }
    let checked_later = later.iter().filter(|s| **s == 401).count();
    assert_eq!(checked + checked_later, 10, "{statuses:?} then {later:?}");
    assert!(
        later[checked_later..].iter().all(|s| *s == 429),
        "{later:?}"
    );
    // A long address is refused before anything else, and not logged whole.
    let (status, body) = app
        .post(
            &app.client(),
            "/api/auth/login",
            json!({"email": "x".repeat(2_000_000), "password": "whatever-1"}),
        )
        .await;
    let message = assert_error(status, &body, 400, "validation");
    assert!(message.contains("email must be at most"), "{message}");
}

async fn chat_requests_are_capped(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.signed_up("alice@example.com").await;
    let many: Vec<Value> = (0..257)
        .map(|_| json!({"role": "user", "content": "hi"}))
        .collect();
    let (status, body) = app
        .post(
            &alice,
            "/api/chat/completions",
            json!({"model": "demo", "messages": many}),
        )
        .await;
    let message = assert_error(status, &body, 400, "validation");
    assert!(message.contains("at most 256"), "{message}");
    let big: Vec<Value> = (0..5)
        .map(|_| json!({"role": "user", "content": "y".repeat(100_000)}))
        .collect();
    let (status, body) = app
        .post(
            &alice,
            "/api/chat/completions",
            json!({"model": "demo", "messages": big}),
        )
        .await;
    let message = assert_error(status, &body, 400, "validation");
    assert!(message.contains("characters together"), "{message}");
    // A body past the bound is refused before it is read whole.
    let res = alice
        .post(app.url("/api/chat/completions"))
        .header("content-type", "application/json")
        .body(vec![b' '; 5 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
}

async fn sign_ups_wait_for_an_admin_and_are_limited_per_address(backend: Backend) {
    let app = TestApp::start_with(
        backend,
        &[
            ("TOKENMETER_SIGNUP", "approval"),
            ("TOKENMETER_SIGNUPS_PER_IP_PER_HOUR", "3"),
        ],
    )
    .await;
    let credentials = |email: &str| json!({"email": email, "password": "password-123"});
    let bob = app.client();
    let (status, body) = app
        .post(&bob, "/api/auth/signup", credentials("bob@example.com"))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["data"]["approval"], "pending");
    let (status, _) = app.get(&bob, "/api/auth/me").await;
    assert_eq!(status, 401, "no session before approval");
    let (status, body) = app
        .post(&bob, "/api/auth/login", credentials("bob@example.com"))
        .await;
    let message = assert_error(status, &body, 403, "forbidden");
    assert!(message.contains("waiting for an admin"), "{message}");

    // The admin sees the waiting account first, and decides.
    let admin = app.admin().await;
    let (_, list) = app.get(&admin, "/api/admin/users?limit=10").await;
    assert_eq!(list["data"][0]["email"], "bob@example.com", "{list}");
    assert_eq!(list["data"][0]["approval"], "pending", "{list}");
    let bob_id = list["data"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = app
        .post(
            &bob,
            &format!("/api/admin/users/{bob_id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(status, 401, "only admins decide: {body}");
    let (status, body) = app
        .post(
            &admin,
            &format!("/api/admin/users/{bob_id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["approval"], "approved");
    let (status, body) = app
        .post(
            &admin,
            &format!("/api/admin/users/{bob_id}/reject"),
            json!({}),
        )
        .await;
    assert_error(status, &body, 409, "conflict");
    let (status, body) = app
        .post(
            &admin,
            &format!("/api/admin/users/{}/approve", Uuid::new_v4()),
            json!({}),
        )
        .await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app
        .post(&bob, "/api/auth/login", credentials("bob@example.com"))
        .await;
    assert_eq!(status, 200, "approved: {body}");

    // A rejected account cannot sign in, and its address stays taken.
    let (status, carol) = app
        .post(
            &app.client(),
            "/api/auth/signup",
            credentials("carol@example.com"),
        )
        .await;
    assert_eq!(status, 202, "{carol}");
    let carol_id = carol["data"]["id"].as_str().unwrap();
    let (status, _) = app
        .post(
            &admin,
            &format!("/api/admin/users/{carol_id}/reject"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = app
        .post(
            &app.client(),
            "/api/auth/login",
            credentials("carol@example.com"),
        )
        .await;
    let message = assert_error(status, &body, 403, "forbidden");
    assert!(message.contains("did not approve"), "{message}");

    // Three sign-ups an hour from one address: the fourth is refused, and creates nothing.
    let (status, _) = app
        .post(
            &app.client(),
            "/api/auth/signup",
            credentials("dave@example.com"),
        )
        .await;
    assert_eq!(status, 202);
    let (status, body) = app
        .post(
            &app.client(),
            "/api/auth/signup",
            credentials("eve@example.com"),
        )
        .await;
    assert_error(status, &body, 429, "rate_limited");
    let (_, list) = app.get(&admin, "/api/admin/users?limit=100").await;
    let emails: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert!(!emails.contains(&"eve@example.com"), "{emails:?}");
    assert_eq!(
        emails[0], "dave@example.com",
        "the waiting one first: {emails:?}"
    );
}

async fn a_waiting_accounts_right_password_is_not_a_failed_log_in(backend: Backend) {
    // Two failures lock an account; a waiting account's right password is no failure, so
    // trying it again and again never locks the account (nor its address).
    let app = TestApp::start_with(
        backend,
        &[
            ("TOKENMETER_SIGNUP", "approval"),
            ("TOKENMETER_LOGIN_MAX_FAILURES", "2"),
            ("TOKENMETER_LOGIN_MAX_FAILURES_PER_IP", "3"),
        ],
    )
    .await;
    let bob = app.client();
    let right = json!({"email": "bob@example.com", "password": "password-123"});
    let (status, _) = app.post(&bob, "/api/auth/signup", right.clone()).await;
    assert_eq!(status, 202);
    for _ in 0..6 {
        let (status, body) = app.post(&bob, "/api/auth/login", right.clone()).await;
        let message = assert_error(status, &body, 403, "forbidden");
        assert!(message.contains("waiting for an admin"), "{message}");
    }
    // Approved, the same password signs in at once: nothing was counted against it.
    let admin = app.admin().await;
    let (_, list) = app.get(&admin, "/api/admin/users?limit=10").await;
    let bob_id = list["data"][0]["id"].as_str().unwrap().to_string();
    let (status, _) = app
        .post(
            &admin,
            &format!("/api/admin/users/{bob_id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = app.post(&bob, "/api/auth/login", right.clone()).await;
    assert_eq!(status, 200, "{body}");
    // A wrong password still counts: two lock the account.
    let wrong = json!({"email": "bob@example.com", "password": "wrong-password"});
    for _ in 0..2 {
        let (status, _) = app.post(&bob, "/api/auth/login", wrong.clone()).await;
        assert_eq!(status, 401);
    }
    let (status, body) = app.post(&bob, "/api/auth/login", right).await;
    assert_error(status, &body, 429, "rate_limited");
}
