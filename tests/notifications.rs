//! Notifications and the forecast through the real router, on SQLite and PostgreSQL: a send
//! past 80 % lights the bell once, 20 checks of the same crossing at once make one
//! notification, two instances on one PostgreSQL database make one, a user reads and marks
//! only their own, and the usage answer carries the forecast.

#[macro_use]
mod common;

use common::{assert_error, my_id, Backend, TestApp};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokenmeter::domain::notifications::NotificationKind;
use tokenmeter::server::cache::{Change, Changed};
use tokenmeter::server::db::notifications as repo;
use tokenmeter::server::notifications::watch;
use uuid::Uuid;

on_both_backends!(
    a_send_past_80_percent_lights_the_bell_once,
    twenty_checks_of_one_crossing_make_one_notification,
    users_read_and_mark_only_their_own,
    the_usage_answer_carries_the_forecast,
);

/// Sets the user's usage today to `tokens`, as earlier chats would have, and says so.
async fn set_usage(app: &TestApp, user: Uuid, tokens: i64) {
    let today = chrono::Utc::now().date_naive();
    let now = chrono::Utc::now();
    let sql = "insert into usage_history (id, user_id, date, tokens_used, prompt_tokens,
                   completion_tokens, requests_count, cost_nanos, created_at, updated_at)
               values ($1, $2, $3, $4, 0, $4, 1, 0, $5, $5)
               on conflict (user_id, date) do update set tokens_used = excluded.tokens_used,
                   completion_tokens = excluded.tokens_used";
    with_pool!(&app.db, |p| sqlx::query(sql)
        .bind(Uuid::new_v4())
        .bind(user)
        .bind(today)
        .bind(tokens)
        .bind(now)
        .execute(p)
        .await
        .map(|_| ()))
    .unwrap();
    Changed::new((), Change::Usage(user))
        .announce(&app.state)
        .await;
}

async fn bell(app: &TestApp, client: &reqwest::Client) -> Value {
    let (status, body) = app.get(client, "/api/notifications").await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

fn kinds(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap().to_string())
        .collect()
}

/// Waits (up to 10 s) until the bell shows `kind`.
async fn wait_for_kind(app: &TestApp, client: &reqwest::Client, kind: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = bell(app, client).await;
        if kinds(&list).iter().any(|k| k == kind) {
            return list;
        }
        assert!(Instant::now() < deadline, "no {kind} came: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn period_key() -> String {
    // The tests run with the default timezone, UTC.
    let today = chrono::Utc::now().date_naive();
    chrono::NaiveDate::from_ymd_opt(
        chrono::Datelike::year(&today),
        chrono::Datelike::month(&today),
        1,
    )
    .unwrap()
    .to_string()
}

async fn count(app: &TestApp, user: Uuid, kind: NotificationKind) -> i64 {
    repo::count(&app.db, user, kind, &period_key())
        .await
        .unwrap()
}

async fn a_send_past_80_percent_lights_the_bell_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.signed_up("alice@example.com").await;
    let id = my_id(&app, &alice).await;
    app.set_limit(id, 10_000).await;
    // 79.9 %: no threshold yet. (The forecast may already see the limit before the reset.)
    set_usage(&app, id, 7_990).await;
    // The watcher's batch (0.5 s) has passed.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let before = bell(&app, &alice).await;
    assert!(
        !kinds(&before).contains(&"quota_warning".to_string()),
        "{before}"
    );
    let (status, body) = app
        .post(
            &alice,
            "/api/chat/completions",
            json!({"model": "demo", "messages": [{"role": "user", "content": "one more"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The page reads its usage right after the reply: the bell's count is already right.
    let (status, usage) = app.get(&alice, "/api/profile/usage").await;
    assert_eq!(status, 200, "{usage}");
    let list = bell(&app, &alice).await;
    assert_eq!(
        usage["data"]["unread_notifications"], list["unread"],
        "{usage}"
    );
    assert!(
        kinds(&list).contains(&"quota_warning".to_string()),
        "at once: {list}"
    );
    assert_eq!(
        list["items"][0]["kind"], "quota_warning",
        "newest first: {list}"
    );
    assert_eq!(list["items"][0]["read"], false);
    let title = list["items"][0]["title"].as_str().unwrap();
    assert!(title.ends_with(" % of your monthly tokens used"), "{title}");
    assert_eq!(
        list["unread"].as_i64().unwrap(),
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["read"] == false)
            .count() as i64
    );
    // More sends, more touches: still one warning.
    for _ in 0..3 {
        app.post(
            &alice,
            "/api/chat/completions",
            json!({"model": "demo", "messages": [{"role": "user", "content": "again"}]}),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(&app, id, NotificationKind::QuotaWarning).await, 1);

    // From 90 % to 100 % in one step: only the block is told; the upgrade is stored (so it is
    // never told) but not listed.
    set_usage(&app, id, 10_000).await;
    let list = wait_for_kind(&app, &alice, "quota_blocked").await;
    assert_eq!(list["items"][0]["kind"], "quota_blocked", "{list}");
    assert!(
        !kinds(&list).contains(&"quota_upgrade".to_string()),
        "{list}"
    );
    for kind in [
        NotificationKind::QuotaWarning,
        NotificationKind::QuotaUpgrade,
        NotificationKind::QuotaBlocked,
    ] {
        assert_eq!(count(&app, id, kind).await, 1, "{kind}");
    }
}

async fn twenty_checks_of_one_crossing_make_one_notification(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.signed_up("alice@example.com").await;
    let id = my_id(&app, &alice).await;
    app.set_limit(id, 10_000).await;
    // Written without telling the watcher, so the 20 checks below are the first to see it.
    let today = chrono::Utc::now().date_naive();
    with_pool!(&app.db, |p| sqlx::query(
        "insert into usage_history (id, user_id, date, tokens_used, prompt_tokens,
             completion_tokens, requests_count, cost_nanos, created_at, updated_at)
         values ($1, $2, $3, 9600, 0, 9600, 1, 0, $4, $4)"
    )
    .bind(Uuid::new_v4())
    .bind(id)
    .bind(today)
    .bind(chrono::Utc::now())
    .execute(p)
    .await
    .map(|_| ()))
    .unwrap();
    // The cached usage forgotten, the watcher not told.
    app.state.caches.forget(&Change::Usage(id));
    // Each check on a fresh instance state (nothing remembered), all at once.
    let mut instances = vec![];
    for _ in 0..20 {
        instances.push(app.state.clone());
    }
    let checks = instances.iter().map(|state| async move {
        let fresh = tokenmeter::server::state::AppState {
            watch: Default::default(),
            ..state.clone()
        };
        watch::check(&fresh, id).await.unwrap()
    });
    let made: Vec<_> = futures_util::future::join_all(checks).await;
    let told: usize = made.iter().map(Vec::len).sum();
    assert_eq!(told, 1, "one check of 20 tells: {made:?}");
    assert_eq!(count(&app, id, NotificationKind::QuotaUpgrade).await, 1);
    assert_eq!(count(&app, id, NotificationKind::QuotaWarning).await, 1);
    assert_eq!(count(&app, id, NotificationKind::QuotaBlocked).await, 0);
}

async fn users_read_and_mark_only_their_own(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.signed_up("alice@example.com").await;
    let bob = app.signed_up("bob@example.com").await;
    let id = my_id(&app, &alice).await;
    app.set_limit(id, 1_000).await;
    set_usage(&app, id, 850).await;
    let list = wait_for_kind(&app, &alice, "quota_warning").await;
    let unread = list["unread"].as_i64().unwrap();
    assert!(unread >= 1, "{list}");
    let first = list["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        bell(&app, &bob).await["items"],
        json!([]),
        "nothing of alice's"
    );
    // Somebody else's id is not found; a malformed one is a 400 naming the field.
    let (status, body) = app
        .post(&bob, &format!("/api/notifications/{first}/read"), json!({}))
        .await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app
        .post(&alice, "/api/notifications/nope/read", json!({}))
        .await;
    let message = assert_error(status, &body, 400, "validation");
    assert!(message.contains("id"), "{message}");
    // Anonymous: 401.
    let (status, _) = app.get(&reqwest::Client::new(), "/api/notifications").await;
    assert_eq!(status, 401);

    let (status, body) = app
        .post(
            &alice,
            &format!("/api/notifications/{first}/read"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["read"], true);
    assert_eq!(
        bell(&app, &alice).await["unread"].as_i64().unwrap(),
        unread - 1
    );
    // Twice is the same.
    let (status, _) = app
        .post(
            &alice,
            &format!("/api/notifications/{first}/read"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    set_usage(&app, id, 1_000).await;
    wait_for_kind(&app, &alice, "quota_blocked").await;
    let (status, body) = app
        .post(&alice, "/api/notifications/read-all", json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["marked"].as_i64().unwrap() >= 1, "{body}");
    let list = bell(&app, &alice).await;
    assert_eq!(list["unread"], 0, "{list}");
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["read"] == true));
}

async fn the_usage_answer_carries_the_forecast(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.signed_up("alice@example.com").await;
    let id = my_id(&app, &alice).await;
    app.set_limit(id, 1_000_000).await;
    set_usage(&app, id, 100_000).await;
    let (status, body) = app.get(&alice, "/api/profile/usage").await;
    assert_eq!(status, 200, "{body}");
    let f = &body["data"]["forecast"];
    let projected = f["projected_tokens"].as_i64().unwrap();
    assert!(projected >= 100_000, "{f}");
    assert!(f["tokens_per_day"].as_i64().unwrap() > 0, "{f}");
    let percentage = f["projected_percentage"].as_f64().unwrap();
    assert!(
        (percentage - projected as f64 / 10_000.0).abs() < 0.01,
        "{f}"
    );
    // Each date, when given, is a day of this period, and they come in order.
    let days: Vec<Option<String>> = ["warning_on", "upgrade_on", "limit_on"]
        .iter()
        .map(|k| f[k].as_str().map(str::to_string))
        .collect();
    let month = &period_key()[..7];
    for d in days.iter().flatten() {
        assert!(d.starts_with(month), "{f}");
    }
    let given: Vec<&String> = days.iter().flatten().collect();
    assert!(given.windows(2).all(|w| w[0] <= w[1]), "{f}");
    if projected > 1_001_000 {
        assert!(
            days[2].is_some(),
            "the limit is reached before the reset: {f}"
        );
    }
    // The admin's list projects the same month, with its cost and the day it runs out.
    let admin = app.admin().await;
    let (status, list) = app.get(&admin, "/api/admin/users").await;
    assert_eq!(status, 200, "{list}");
    let row = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == id.to_string())
        .unwrap_or_else(|| panic!("alice listed: {list}"))
        .clone();
    assert_eq!(row["projected_tokens"], f["projected_tokens"], "{row}");
    assert_eq!(row["runs_out_on"], f["limit_on"], "{row}");
    assert_eq!(row["projected_cost"], "0.00", "no cost recorded: {row}");
}

/// Two instances on one PostgreSQL database, 20 sends crossing 80 % at once spread over both:
/// both watchers check, one warning exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_instances_notify_once() {
    let a = TestApp::start(Backend::Postgres).await;
    let b = a.another_instance().await;
    a.signed_up("shared@example.com").await;
    let cookie = a.session_cookie("shared@example.com", "password-123").await;
    let (on_a, on_b) = (a.with_cookie(&cookie), b.with_cookie(&cookie));
    let id = my_id(&a, &on_a).await;
    a.set_limit(id, 10_000).await;
    set_usage(&a, id, 7_990).await;
    let sends = (0..20).map(|i| {
        let (app, client) = if i % 2 == 0 { (&a, &on_a) } else { (&b, &on_b) };
        async move {
            app.post(
                client,
                "/api/chat/completions",
                json!({"model": "demo", "messages": [{"role": "user", "content": format!("parallel {i}")}]}),
            )
            .await
        }
    });
    let results = futures_util::future::join_all(sends).await;
    assert!(
        results.iter().all(|(s, _)| *s == 200 || *s == 429),
        "{results:?}"
    );
    wait_for_kind(&b, &on_b, "quota_warning").await;
    // Both instances have had their turn.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for state in [&a.state, &b.state] {
        watch::check(state, id).await.unwrap();
    }
    assert_eq!(count(&a, id, NotificationKind::QuotaWarning).await, 1);
    // Whatever else the sends reached, at most once each.
    for kind in [
        NotificationKind::QuotaUpgrade,
        NotificationKind::QuotaBlocked,
    ] {
        assert!(count(&a, id, kind).await <= 1, "{kind}");
    }
}
