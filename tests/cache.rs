//! The session and usage caches never show what a write has changed: on one instance (both
//! backends) the change is seen by the very next request; across two instances on one
//! PostgreSQL database, as soon as the change notice arrives (waited for, up to 5 s).

#[macro_use]
mod common;

use common::{my_id, Backend, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const FREE: &str = "aa71171b-2000-58dd-a322-95baf1fc6a6a";

async fn status(app: &TestApp, client: &reqwest::Client, path: &str) -> u16 {
    app.get(client, path).await.0
}

async fn usage(app: &TestApp, client: &reqwest::Client) -> Value {
    let (status, body) = app.get(client, "/api/profile/usage").await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

async fn send(app: &TestApp, client: &reqwest::Client) {
    let (status, body) = app
        .post(
            client,
            "/api/chat/completions",
            json!({"model": "demo", "messages": [{"role": "user", "content": "hello"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Polls `check` until it holds, for up to 5 s; returns how long that took.
async fn eventually<F, Fut>(what: &str, check: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if check().await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not seen within 5 s");
}

async fn one_instance_sees_every_change_at_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    eventually("caching on", || async { app.state.caches.is_on() }).await;
    let admin = app.admin().await;
    app.signed_up("cached@example.com").await;
    let cookie = app
        .session_cookie("cached@example.com", "password-123")
        .await;
    let user = app.with_cookie(&cookie);
    let id = my_id(&app, &user).await;

    // Read twice (the second from the cache, if any), then change and read again.
    let before = usage(&app, &user).await;
    assert_eq!(usage(&app, &user).await, before);
    assert_eq!(app.state.caches.entries().1, 1, "the usage is cached");
    send(&app, &user).await;
    let after = usage(&app, &user).await;
    assert!(
        after["tokens_used"].as_i64() > before["tokens_used"].as_i64(),
        "{before} -> {after}"
    );
    assert_eq!(after["requests_count"], 1);

    let (s, _) = app
        .patch(
            &admin,
            &format!("/api/admin/users/{id}"),
            json!({"token_limit_override": 123_456}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(usage(&app, &user).await["quota"]["limit"], 123_456);

    // A plan edit reaches every user of the plan.
    app.patch(
        &admin,
        &format!("/api/admin/users/{id}"),
        json!({"token_limit_override": null}),
    )
    .await;
    assert_eq!(usage(&app, &user).await["quota"]["limit"], 100_000);
    let (s, body) = app
        .patch(
            &admin,
            &format!("/api/admin/plans/{FREE}"),
            json!({"monthly_token_limit": 77_000}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let now = usage(&app, &user).await;
    assert_eq!(now["quota"]["limit"], 77_000);
    assert_eq!(now["plan"]["monthly_token_limit"], 77_000);

    // A second session of the user ends with a password change made in the first.
    let other = app.with_cookie(
        &app.session_cookie("cached@example.com", "password-123")
            .await,
    );
    assert_eq!(status(&app, &other, "/api/auth/me").await, 200);
    let (s, body) = app
        .post(
            &user,
            "/api/profile/password",
            json!({"current_password": "password-123", "new_password": "password-456"}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(status(&app, &other, "/api/auth/me").await, 401);
    assert_eq!(status(&app, &user, "/api/auth/me").await, 200);

    // Disabled: refused on the next request (and the sessions are ended for good).
    app.patch(
        &admin,
        &format!("/api/admin/users/{id}"),
        json!({"disabled": true}),
    )
    .await;
    assert_eq!(status(&app, &user, "/api/profile/usage").await, 401);
    app.patch(
        &admin,
        &format!("/api/admin/users/{id}"),
        json!({"disabled": false}),
    )
    .await;
    assert_eq!(status(&app, &user, "/api/auth/me").await, 401);
    let cookie = app
        .session_cookie("cached@example.com", "password-456")
        .await;
    let user = app.with_cookie(&cookie);
    assert_eq!(status(&app, &user, "/api/auth/me").await, 200);

    // A role change is seen at once (a demoted admin loses the admin API).
    let admin2 = app.admin().await;
    let admin_cookie = app.session_cookie(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let admin_again = app.with_cookie(&admin_cookie);
    assert_eq!(status(&app, &admin_again, "/api/admin/users").await, 200);
    app.patch(
        &admin2,
        &format!("/api/admin/users/{id}"),
        json!({"role": "admin"}),
    )
    .await;
    assert_eq!(status(&app, &user, "/api/admin/users").await, 200);
    app.patch(
        &admin2,
        &format!("/api/admin/users/{id}"),
        json!({"role": "user"}),
    )
    .await;
    assert_eq!(status(&app, &user, "/api/admin/users").await, 403);

    // Logged out: the same cookie, sent again, is refused.
    let (s, _) = app.post(&user, "/api/auth/logout", json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(status(&app, &user, "/api/auth/me").await, 401);
    assert_eq!(status(&app, &user, "/api/profile/usage").await, 401);
    // Pages resolve their user through the same cache: the page redirects to the log-in.
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/chat"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
}

async fn cache_off_still_right(backend: Backend) {
    let app = TestApp::start_with(backend, &[("TOKENMETER_CACHE_SECONDS", "0")]).await;
    let user = app.signed_up("nocache@example.com").await;
    let before = usage(&app, &user).await;
    send(&app, &user).await;
    let after = usage(&app, &user).await;
    assert!(after["tokens_used"].as_i64() > before["tokens_used"].as_i64());
    app.post(&user, "/api/auth/logout", json!({})).await;
    assert_eq!(status(&app, &user, "/api/auth/me").await, 401);
}

on_both_backends!(
    one_instance_sees_every_change_at_once,
    cache_off_still_right
);

/// Two instances on one PostgreSQL database: what one changes, the other stops showing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_instances_tell_each_other() {
    let a = TestApp::start(Backend::Postgres).await;
    let b = a.another_instance().await;
    a.signed_up("shared@example.com").await;
    let cookie = a.session_cookie("shared@example.com", "password-123").await;
    let (on_a, on_b) = (a.with_cookie(&cookie), b.with_cookie(&cookie));
    let id = my_id(&a, &on_a).await;
    let admin_a = a.admin().await;

    // B caches the session and the usage once it listens for A's changes.
    eventually("B listening", || async { b.state.caches.is_on() }).await;
    let before = usage(&b, &on_b).await;
    assert_eq!(
        b.state.caches.entries(),
        (1, 1),
        "B holds the session and the usage"
    );

    // A chat on A: B shows the new usage.
    send(&a, &on_a).await;
    let used_on_a = usage(&a, &on_a).await["tokens_used"].clone();
    assert_ne!(used_on_a, before["tokens_used"]);
    let took = eventually("usage on B after a chat on A", || async {
        usage(&b, &on_b).await["tokens_used"] == used_on_a
    })
    .await;
    println!("B saw the chat after {took:?}");

    // An admin on A changes the limit: B shows it.
    a.patch(
        &admin_a,
        &format!("/api/admin/users/{id}"),
        json!({"token_limit_override": 4_242}),
    )
    .await;
    eventually("limit on B", || async {
        usage(&b, &on_b).await["quota"]["limit"] == 4_242
    })
    .await;

    // Logged out on A: the cookie is refused on B.
    let (s, _) = a.post(&on_a, "/api/auth/logout", json!({})).await;
    assert_eq!(s, 200);
    eventually("log-out on B", || async {
        status(&b, &on_b, "/api/auth/me").await == 401
    })
    .await;

    // A new session, used on B; then the user is disabled on A: refused on B.
    let cookie = a.session_cookie("shared@example.com", "password-123").await;
    let on_b = b.with_cookie(&cookie);
    assert_eq!(status(&b, &on_b, "/api/auth/me").await, 200);
    assert_eq!(b.state.caches.entries().0, 1, "B holds the new session");
    a.patch(
        &admin_a,
        &format!("/api/admin/users/{id}"),
        json!({"disabled": true}),
    )
    .await;
    eventually("disabled on B", || async {
        status(&b, &on_b, "/api/auth/me").await == 401
    })
    .await;
}
