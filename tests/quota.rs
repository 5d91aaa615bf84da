//! Quotas through the real router, on SQLite and PostgreSQL: the usage endpoint and its flags
//! at each boundary, the 429 of a blocked send, and concurrent sends that cannot pass the limit.

#[macro_use]
mod common;

use common::{assert_error, my_id, usage_days, Backend, TestApp};
use serde_json::{json, Value};
use tokenmeter::server::cache::{Change, Changed};
use uuid::Uuid;

const PRO: &str = "afdcac68-a1ab-52f6-b371-b4a3489815e1";

/// Records `tokens` of today's usage for the user, as earlier chats would have.
async fn use_tokens(app: &TestApp, user: Uuid, tokens: i64) {
    let today = chrono::Utc::now().date_naive();
    let now = chrono::Utc::now();
    let sql = "insert into usage_history (id, user_id, date, tokens_used, prompt_tokens,
                   completion_tokens, requests_count, cost_nanos, created_at, updated_at)
               values ($1, $2, $3, $4, 0, $4, 1, 0, $5, $5)
               on conflict (user_id, date) do update set
                   tokens_used = usage_history.tokens_used + excluded.tokens_used,
                   completion_tokens = usage_history.completion_tokens + excluded.tokens_used,
                   requests_count = usage_history.requests_count + 1";
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
    // Written behind the server's back: say so, as the app's own writes do.
    Changed::new((), Change::Usage(user))
        .announce(&app.state)
        .await;
}

/// The user's reservations holding tokens now (SQLite's are in the server's memory).
async fn reservations(app: &TestApp, user: Uuid) -> i64 {
    tokenmeter::server::db::quota::live(&app.db, user, chrono::Utc::now())
        .await
        .unwrap()
}

async fn usage(app: &TestApp, client: &reqwest::Client) -> Value {
    let (status, body) = app.get(client, "/api/profile/usage").await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

fn send_body(text: &str) -> Value {
    json!({"model": "demo", "messages": [{"role": "user", "content": text}]})
}

on_both_backends!(
    a_new_user_is_on_the_free_plan_with_nothing_used,
    flags_go_up_at_each_boundary,
    a_blocked_send_is_429_with_when_and_where_and_writes_nothing,
    concurrent_sends_at_90_percent_never_pass_the_limit,
    usage_is_per_user,
    admins_set_plans_and_personal_limits,
    admins_manage_plans,
    users_ask_for_a_plan_and_admins_see_it,
);

async fn a_new_user_is_on_the_free_plan_with_nothing_used(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.signed_up("alice@example.com").await;
    let u = usage(&app, &alice).await;
    assert_eq!(u["plan"]["name"], "Free");
    assert_eq!(u["quota"]["limit"], 100_000);
    assert_eq!(u["quota"]["used"], 0);
    assert_eq!(u["quota"]["remaining"], 100_000);
    assert_eq!(u["quota"]["percentage"], 0.0);
    assert_eq!(u["is_warning"], false);
    assert_eq!(u["is_blocked"], false);
    assert_eq!(u["upgrade_url"], "/pricing");
    let today = chrono::Utc::now().date_naive();
    assert_eq!(u["period_start"], today.format("%Y-%m-01").to_string());
    assert!(
        u["resets_at"].as_str().unwrap().ends_with("T00:00:00Z"),
        "{u}"
    );
    let visitor = app.client();
    let (status, body) = app.get(&visitor, "/api/profile/usage").await;
    assert_error(status, &body, 401, "unauthorized");
}

async fn flags_go_up_at_each_boundary(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.signed_up("alice@example.com").await;
    let id = my_id(&app, &alice).await;
    app.set_limit(id, 10_000).await;
    // (total used, percentage, warning, upgrade, blocked)
    for (total, pct, w, u, b) in [
        (7_999, 79.99, false, false, false),
        (8_000, 80.0, true, false, false),
        (9_499, 94.99, true, false, false),
        (9_500, 95.0, true, true, false),
        (9_999, 99.99, true, true, false),
        (10_000, 100.0, true, true, true),
        (15_000, 150.0, true, true, true),
    ] {
        let before = usage(&app, &alice).await["tokens_used"].as_i64().unwrap();
        use_tokens(&app, id, total - before).await;
        let now = usage(&app, &alice).await;
        assert_eq!(now["quota"]["percentage"], pct, "{now}");
        assert_eq!(
            (
                now["is_warning"].as_bool(),
                now["is_upgrade_suggested"].as_bool(),
                now["is_blocked"].as_bool()
            ),
            (Some(w), Some(u), Some(b)),
            "{total}: {now}"
        );
        assert_eq!(now["quota"]["remaining"], (10_000 - total).max(0));
    }
}

async fn a_blocked_send_is_429_with_when_and_where_and_writes_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.signed_up("alice@example.com").await;
    let id = my_id(&app, &alice).await;
    app.set_limit(id, 1_000).await;
    use_tokens(&app, id, 1_000).await;
    for stream in [false, true] {
        let mut body = send_body("over the limit");
        body["stream"] = json!(stream);
        let (status, answer) = app.post(&alice, "/api/chat/completions", body).await;
        let message = assert_error(status, &answer, 429, "quota_exceeded");
        assert!(message.contains("monthly token limit"), "{message}");
        let details = &answer["error"]["details"];
        assert_eq!(details["upgrade_url"], "/pricing");
        assert_eq!(details["resets_at"], usage(&app, &alice).await["resets_at"]);
    }
    let (_, list) = app.get(&alice, "/api/conversations").await;
    assert_eq!(list["data"], json!([]));
    assert_eq!(usage_days(&app, id).await[0].tokens_used, 1_000);
    assert_eq!(reservations(&app, id).await, 0);
}

async fn concurrent_sends_at_90_percent_never_pass_the_limit(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.signed_up("alice@example.com").await;
    let id = my_id(&app, &alice).await;
    let limit = 10_000;
    app.set_limit(id, limit).await;
    use_tokens(&app, id, 9_000).await;
    let sends = (0..20).map(|i| {
        let (app, alice) = (&app, &alice);
        async move {
            app.post(
                alice,
                "/api/chat/completions",
                send_body(&format!("parallel {i}")),
            )
            .await
        }
    });
    let results = futures_util::future::join_all(sends).await;
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    let refused = results
        .iter()
        .filter(|(s, b)| *s == 429 && b["error"]["code"] == "quota_exceeded")
        .count();
    assert_eq!(ok + refused, 20, "{results:?}");
    assert!(ok >= 1, "at least one send fits");
    eprintln!("20 parallel sends at 90%: {ok} admitted, {refused} refused");
    let used = usage(&app, &alice).await["tokens_used"].as_i64().unwrap();
    assert!(used <= limit, "used {used} of {limit}");
    assert_eq!(reservations(&app, id).await, 0, "every reservation settled");
    // Sent one after the other, the sends go on until what is left is too little.
    let mut more = 0;
    while app
        .post(&alice, "/api/chat/completions", send_body("one more"))
        .await
        .0
        == 200
    {
        more += 1;
        assert!(more < 100);
    }
    let used = usage(&app, &alice).await["tokens_used"].as_i64().unwrap();
    assert!(used <= limit, "used {used} of {limit}");
}

async fn usage_is_per_user(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.signed_up("alice@example.com").await;
    let bob = app.signed_up("bob@example.com").await;
    let alice_id = my_id(&app, &alice).await;
    use_tokens(&app, alice_id, 5_000).await;
    assert_eq!(usage(&app, &alice).await["tokens_used"], 5_000);
    assert_eq!(usage(&app, &bob).await["tokens_used"], 0);
}

async fn admins_set_plans_and_personal_limits(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice@example.com").await;
    let id = my_id(&app, &alice).await;
    let path = format!("/api/admin/users/{id}");
    use_tokens(&app, id, 1_000).await;

    let (status, body) = app.patch(&admin, &path, json!({"plan_id": PRO})).await;
    assert_eq!(status, 200, "{body}");
    let u = usage(&app, &alice).await;
    assert_eq!(u["plan"]["name"], "Pro");
    assert_eq!(u["quota"]["limit"], 2_000_000);
    let (status, _) = app
        .patch(&admin, &path, json!({"token_limit_override": 1_250}))
        .await;
    assert_eq!(status, 200);
    let u = usage(&app, &alice).await;
    assert_eq!(u["quota"]["limit"], 1_250);
    assert_eq!(u["quota"]["percentage"], 80.0);
    assert_eq!(u["is_warning"], true);
    // The admin list says the same.
    let (_, list) = app.get(&admin, "/api/admin/users").await;
    let row = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["email"] == "alice@example.com")
        .unwrap()
        .clone();
    assert_eq!(row["plan_name"], "Pro");
    assert_eq!(row["token_limit_override"], 1_250);
    assert_eq!(row["tokens_used"], 1_000);
    assert_eq!(row["percentage"], 80.0);
    assert_eq!(row["is_warning"], true);
    assert_eq!(row["is_blocked"], false);
    // null clears the override, then the plan.
    let (status, _) = app
        .patch(&admin, &path, json!({"token_limit_override": null}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(usage(&app, &alice).await["quota"]["limit"], 2_000_000);
    let (status, _) = app.patch(&admin, &path, json!({"plan_id": null})).await;
    assert_eq!(status, 200);
    assert_eq!(usage(&app, &alice).await["plan"]["name"], "Free");

    for (body, code, status_want, text) in [
        (
            json!({"plan_id": Uuid::new_v4()}),
            "validation",
            400,
            "plan_id",
        ),
        (
            json!({"plan_id": "pro"}),
            "validation",
            400,
            "plan_id must be a UUID",
        ),
        (
            json!({"token_limit_override": -1}),
            "validation",
            400,
            "token_limit_override",
        ),
        (
            json!({"token_limit_override": "lots"}),
            "validation",
            400,
            "token_limit_override",
        ),
        (json!({}), "validation", 400, "nothing to change"),
    ] {
        let (status, answer) = app.patch(&admin, &path, body.clone()).await;
        let message = assert_error(status, &answer, status_want, code);
        assert!(message.contains(text), "{body}: {message}");
    }
    // Nothing of that was written.
    assert_eq!(usage(&app, &alice).await["quota"]["limit"], 100_000);
    let (status, answer) = app
        .patch(
            &admin,
            &format!("/api/admin/users/{}", Uuid::new_v4()),
            json!({"token_limit_override": 5}),
        )
        .await;
    assert_error(status, &answer, 404, "not_found");
    let (status, answer) = app
        .patch(&alice, &path, json!({"token_limit_override": 10_000_000}))
        .await;
    assert_error(status, &answer, 403, "forbidden");
}

async fn admins_manage_plans(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.admin().await;
    let visitor = app.client();
    let (status, public) = app.get(&visitor, "/api/plans").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = public["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Free", "Pro", "Team"]);

    let (status, created) = app
        .post(&admin, "/api/admin/plans", json!({"name": "Enterprise", "monthly_token_limit": null, "price_label": "Ask us", "sort_order": 4}))
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(created["data"]["monthly_token_limit"].is_null());
    let enterprise = created["data"]["id"].as_str().unwrap().to_string();
    let (status, answer) = app
        .post(
            &admin,
            "/api/admin/plans",
            json!({"name": "Enterprise", "monthly_token_limit": 5}),
        )
        .await;
    assert_error(status, &answer, 409, "conflict");
    let (status, answer) = app
        .post(
            &admin,
            "/api/admin/plans",
            json!({"name": "Neg", "monthly_token_limit": -5}),
        )
        .await;
    let message = assert_error(status, &answer, 400, "validation");
    assert!(message.contains("monthly_token_limit"), "{message}");

    // A new default takes over; the old default cannot just stop being one.
    let (status, answer) = app
        .patch(
            &admin,
            &format!("/api/admin/plans/{enterprise}"),
            json!({"is_default": true}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let (_, plans) = app.get(&admin, "/api/admin/plans").await;
    let defaults: Vec<&str> = plans["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["is_default"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(defaults, ["Enterprise"]);
    let alice = app.signed_up("alice@example.com").await;
    assert_eq!(usage(&app, &alice).await["plan"]["name"], "Enterprise");
    assert!(usage(&app, &alice).await["quota"]["limit"].is_null());
    let (status, answer) = app
        .patch(
            &admin,
            &format!("/api/admin/plans/{enterprise}"),
            json!({"is_default": false}),
        )
        .await;
    assert_error(status, &answer, 409, "conflict");
    let (status, answer) = app
        .patch(
            &admin,
            &format!("/api/admin/plans/{PRO}"),
            json!({"monthly_token_limit": 3_000_000, "description": "More"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["monthly_token_limit"], 3_000_000);
    assert_eq!(answer["data"]["name"], "Pro");
    let (status, answer) = app
        .post(
            &alice,
            "/api/admin/plans",
            json!({"name": "Mine", "monthly_token_limit": null}),
        )
        .await;
    assert_error(status, &answer, 403, "forbidden");
}

async fn users_ask_for_a_plan_and_admins_see_it(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice@example.com").await;
    let id = my_id(&app, &alice).await;
    let (status, body) = app
        .post(&alice, "/api/profile/plan-request", json!({"plan_id": PRO}))
        .await;
    assert_eq!(status, 200, "{body}");
    let row = |list: &Value| {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["email"] == "alice@example.com")
            .unwrap()
            .clone()
    };
    let (_, list) = app.get(&admin, "/api/admin/users").await;
    assert_eq!(row(&list)["requested_plan"]["name"], "Pro");
    let (status, answer) = app
        .post(
            &alice,
            "/api/profile/plan-request",
            json!({"plan_id": Uuid::new_v4()}),
        )
        .await;
    assert_error(status, &answer, 400, "validation");
    // Granting it settles the request.
    let (status, _) = app
        .patch(
            &admin,
            &format!("/api/admin/users/{id}"),
            json!({"plan_id": PRO}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, list) = app.get(&admin, "/api/admin/users").await;
    assert!(row(&list)["requested_plan"].is_null());
    let (status, answer) = app
        .post(&alice, "/api/profile/plan-request", json!({"plan_id": PRO}))
        .await;
    assert_error(status, &answer, 409, "conflict");
}
