//! HTTP tests through the real router, on a real server, against SQLite and PostgreSQL alike:
//! every test below runs once per backend.

mod common;

use common::{assert_error, read, Backend, TestApp, ADMIN_EMAIL};
use serde_json::json;

/// Runs each listed test on both backends.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Postgres).await })*
        }
    };
}

on_both_backends!(
    sign_up_log_in_and_out,
    sign_up_refuses_bad_input_and_duplicates,
    closed_sign_up_is_forbidden,
    wrong_password_is_401_and_repeated_failures_are_rate_limited,
    disabled_user_is_signed_out_and_cannot_log_in,
    csrf_refuses_foreign_and_missing_origins,
    admin_api_refuses_users_and_visitors,
    api_token_works_until_revoked,
    admin_manages_users,
    health_pages_and_unknown_routes,
);

async fn sign_up_log_in_and_out(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.client();

    let (status, body) = read(
        client
            .post(app.url("/api/auth/signup"))
            .json(&json!({"email": "  Alice@Example.com ", "password": "password-123"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["success"], true);
    assert!(body["error"].is_null());
    assert_eq!(body["data"]["email"], "alice@example.com");
    assert_eq!(body["data"]["role"], "user");

    let (status, body) = read(client.get(app.url("/api/auth/me")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["email"], "alice@example.com");

    let res = client
        .post(app.url("/api/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    let (status, body) = read(client.get(app.url("/api/auth/me")).send().await.unwrap()).await;
    assert_error(status, &body, 401, "unauthorized");

    let res = client
        .post(app.url("/api/auth/login"))
        .json(&json!({"email": "ALICE@example.com", "password": "password-123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    for attr in ["tm_session=", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    let (status, _) = read(client.get(app.url("/api/auth/me")).send().await.unwrap()).await;
    assert_eq!(status, 200);
}

async fn sign_up_refuses_bad_input_and_duplicates(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.client();
    let signup = |email: &'static str, password: &'static str| {
        let client = client.clone();
        let url = app.url("/api/auth/signup");
        async move {
            read(
                client
                    .post(url)
                    .json(&json!({"email": email, "password": password}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let (s, b) = signup("not-an-email", "password-123").await;
    let msg = assert_error(s, &b, 400, "validation");
    assert!(msg.contains("email"), "{msg}");
    let (s, b) = signup("bob@example.com", "short").await;
    let msg = assert_error(s, &b, 400, "validation");
    assert!(msg.contains("at least 8"), "{msg}");

    let (s, _) = signup("bob@example.com", "password-123").await;
    assert_eq!(s, 201);
    let (s, b) = signup("BOB@example.com", "password-456").await;
    assert_error(s, &b, 409, "conflict");

    // A wrong shape is a 400 with serde's words, not a 422 in plain text.
    let (s, b) = read(
        app.client()
            .post(app.url("/api/auth/signup"))
            .json(&json!({"email": "carol@example.com"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let msg = assert_error(s, &b, 400, "validation");
    assert!(msg.contains("password"), "{msg}");
}

async fn closed_sign_up_is_forbidden(backend: Backend) {
    let app = TestApp::start_with(backend, &[("TOKENMETER_SIGNUP", "closed")]).await;
    let (s, b) = read(
        app.client()
            .post(app.url("/api/auth/signup"))
            .json(&json!({"email": "dave@example.com", "password": "password-123"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &b, 403, "forbidden");
    // Admins still create users.
    let (s, b) = read(
        app.admin()
            .await
            .post(app.url("/api/admin/users"))
            .json(&json!({"email": "dave@example.com", "password": "password-123"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 201, "{b}");
}

async fn wrong_password_is_401_and_repeated_failures_are_rate_limited(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.signed_up("erin@example.com").await;
    let login = |password: &'static str| {
        let client = app.client();
        let url = app.url("/api/auth/login");
        async move {
            read(
                client
                    .post(url)
                    .json(&json!({"email": "erin@example.com", "password": password}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    for _ in 0..5 {
        let (s, b) = login("wrong-password").await;
        assert_error(s, &b, 401, "unauthorized");
    }
    // The sixth attempt is refused before the password is checked, right or wrong.
    let (s, b) = login("password-123").await;
    let msg = assert_error(s, &b, 429, "rate_limited");
    assert!(msg.contains("try again"), "{msg}");

    // An unknown account is the same 401 as a wrong password.
    let (s, b) = read(
        app.client()
            .post(app.url("/api/auth/login"))
            .json(&json!({"email": "nobody@example.com", "password": "password-123"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let msg = assert_error(s, &b, 401, "unauthorized");
    assert_eq!(msg, "wrong email or password");
}

async fn disabled_user_is_signed_out_and_cannot_log_in(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.signed_up("frank@example.com").await;
    let (_, me) = read(user.get(app.url("/api/auth/me")).send().await.unwrap()).await;
    let id = me["data"]["id"].as_str().unwrap().to_string();

    let admin = app.admin().await;
    let (s, b) = read(
        admin
            .patch(app.url(&format!("/api/admin/users/{id}")))
            .json(&json!({"disabled": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["disabled"], true);

    let (s, b) = read(user.get(app.url("/api/auth/me")).send().await.unwrap()).await;
    assert_error(s, &b, 401, "unauthorized");
    let (s, b) = read(
        app.client()
            .post(app.url("/api/auth/login"))
            .json(&json!({"email": "frank@example.com", "password": "password-123"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &b, 403, "forbidden");
}

async fn csrf_refuses_foreign_and_missing_origins(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.signed_up("grace@example.com").await;

    // Another site's page posting with the user's cookie.
    let (s, b) = read(
        user.post(app.url("/api/profile/tokens"))
            .header("origin", "http://evil.example")
            .json(&json!({"name": "stolen"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let msg = assert_error(s, &b, 403, "forbidden");
    assert!(msg.contains("cross-site"), "{msg}");

    // A Referer from another site counts the same when Origin is absent.
    let cookie_only = reqwest::Client::builder().build().unwrap();
    let (_, login) = read(
        app.client()
            .post(app.url("/api/auth/login"))
            .json(&json!({"email": "grace@example.com", "password": "password-123"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(login["success"], true);
    let res = app
        .client()
        .post(app.url("/api/auth/login"))
        .json(&json!({"email": "grace@example.com", "password": "password-123"}))
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let (s, b) = read(
        cookie_only
            .post(app.url("/api/profile/tokens"))
            .header("cookie", &cookie)
            .json(&json!({"name": "no origin"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = read(
        cookie_only
            .post(app.url("/api/profile/tokens"))
            .header("cookie", &cookie)
            .header("referer", "http://evil.example/page")
            .json(&json!({"name": "foreign referer"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &b, 403, "forbidden");

    // Nothing was written by the refused requests.
    let (_, list) = read(
        user.get(app.url("/api/profile/tokens"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "{list}");

    // Same origin passes.
    let (s, b) = read(
        cookie_only
            .post(app.url("/api/profile/tokens"))
            .header("cookie", &cookie)
            .header("origin", &app.base)
            .json(&json!({"name": "ok"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 201, "{b}");
}

async fn admin_api_refuses_users_and_visitors(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.signed_up("heidi@example.com").await;
    let (s, b) = read(user.get(app.url("/api/admin/users")).send().await.unwrap()).await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = read(
        user.post(app.url("/api/admin/users"))
            .json(&json!({"email": "x@example.com", "password": "password-123", "role": "admin"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = read(
        app.client()
            .get(app.url("/api/admin/users"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &b, 401, "unauthorized");
    let (s, b) = read(
        app.client()
            .get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &b, 401, "unauthorized");
}

async fn api_token_works_until_revoked(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.signed_up("ivan@example.com").await;
    let (s, created) = read(
        user.post(app.url("/api/profile/tokens"))
            .json(&json!({"name": "  ci  "}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let secret = created["data"]["secret"].as_str().unwrap().to_string();
    let token_id = created["data"]["token"]["id"].as_str().unwrap().to_string();
    assert!(secret.starts_with("tm_"));
    assert_eq!(created["data"]["token"]["name"], "ci");

    let program = app.bearer_client(&secret);
    let (s, me) = read(program.get(app.url("/api/auth/me")).send().await.unwrap()).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["data"]["email"], "ivan@example.com");
    // A program with a token needs no Origin header to write.
    let (s, b) = read(
        program
            .post(app.url("/api/profile/tokens"))
            .json(&json!({"name": "from program"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 201, "{b}");

    // The list never shows a secret; last use is recorded.
    let (_, list) = read(
        user.get(app.url("/api/profile/tokens"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let text = list.to_string();
    assert!(!text.contains(&secret), "the secret leaked into the list");
    let first = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == token_id.as_str())
        .unwrap();
    assert!(!first["last_used_at"].is_null(), "{first}");

    // Somebody else cannot revoke it: 404, as if it did not exist.
    let other = app.signed_up("judy@example.com").await;
    let (s, b) = read(
        other
            .delete(app.url(&format!("/api/profile/tokens/{token_id}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = read(
        other
            .delete(app.url("/api/profile/tokens/not-a-uuid"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &b, 400, "validation");

    let (s, _) = read(
        user.delete(app.url(&format!("/api/profile/tokens/{token_id}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = read(program.get(app.url("/api/auth/me")).send().await.unwrap()).await;
    assert_error(s, &b, 401, "unauthorized");
    // Revoking twice is an illegal state change.
    let (s, b) = read(
        user.delete(app.url(&format!("/api/profile/tokens/{token_id}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &b, 409, "conflict");
    // A made-up token is refused the same way.
    let (s, b) = read(
        app.bearer_client("tm_made_up")
            .get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &b, 401, "unauthorized");
}

async fn admin_manages_users(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.admin().await;

    let (s, b) = read(
        admin
            .post(app.url("/api/admin/users"))
            .json(&json!({"email": "kim@example.com", "password": "password-123", "role": "user"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let id = b["data"]["id"].as_str().unwrap().to_string();

    let (s, b) = read(
        admin
            .post(app.url("/api/admin/users"))
            .json(&json!({"email": "lee@example.com", "password": "password-123", "role": "root"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let msg = assert_error(s, &b, 400, "validation");
    assert!(msg.contains("user, admin"), "{msg}");

    let (s, list) = read(admin.get(app.url("/api/admin/users")).send().await.unwrap()).await;
    assert_eq!(s, 200);
    let emails: Vec<_> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_string())
        .collect();
    assert!(
        emails.contains(&"kim@example.com".to_string()),
        "{emails:?}"
    );
    assert!(emails.contains(&ADMIN_EMAIL.to_string()), "{emails:?}");
    assert!(
        !list.to_string().contains("argon2"),
        "a password hash leaked"
    );

    let patch = |path: String, body: serde_json::Value| {
        let admin = admin.clone();
        let url = app.url(&path);
        async move { read(admin.patch(url).json(&body).send().await.unwrap()).await }
    };
    let (s, b) = patch(format!("/api/admin/users/{id}"), json!({"role": "admin"})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["role"], "admin");
    let (s, b) = patch(format!("/api/admin/users/{id}"), json!({"role": "owner"})).await;
    let msg = assert_error(s, &b, 400, "validation");
    assert!(msg.contains("user, admin"), "{msg}");
    let (s, b) = patch(format!("/api/admin/users/{id}"), json!({"rolle": "admin"})).await;
    let msg = assert_error(s, &b, 400, "validation");
    assert!(msg.contains("rolle"), "{msg}");
    let (s, b) = patch(format!("/api/admin/users/{id}"), json!({})).await;
    assert_error(s, &b, 400, "validation");
    let (s, b) = patch("/api/admin/users/123".into(), json!({"role": "user"})).await;
    let msg = assert_error(s, &b, 400, "validation");
    assert!(msg.contains("UUID"), "{msg}");
    let (s, b) = patch(
        format!("/api/admin/users/{}", uuid::Uuid::new_v4()),
        json!({"role": "user"}),
    )
    .await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = patch(format!("/api/admin/users/{id}"), json!({"disabled": "yes"})).await;
    assert_error(s, &b, 400, "validation");

    // An admin cannot lock themselves out.
    let (_, me) = read(admin.get(app.url("/api/auth/me")).send().await.unwrap()).await;
    let my_id = me["data"]["id"].as_str().unwrap();
    let (s, b) = patch(format!("/api/admin/users/{my_id}"), json!({"role": "user"})).await;
    assert_error(s, &b, 409, "conflict");
    let (s, b) = patch(
        format!("/api/admin/users/{my_id}"),
        json!({"disabled": true}),
    )
    .await;
    assert_error(s, &b, 409, "conflict");

    let (s, b) = read(
        admin
            .get(app.url("/api/admin/users?limit=0"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &b, 400, "validation");
}

async fn health_pages_and_unknown_routes(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.client();
    let (s, b) = read(client.get(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = read(client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(s, 200, "{b}");
    let backend_name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(b["data"]["database"], backend_name);

    let (s, b) = read(
        client
            .get(app.url("/api/nothing/here"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &b, 404, "not_found");

    let res = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    let html = res.text().await.unwrap();
    assert!(html.contains("tokenmeter"), "{html}");
    assert!(
        html.contains("/pkg/tokenmeter"),
        "hydration scripts missing"
    );

    let res = client.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.text().await.unwrap().contains("Page not found"));
}
