//! HTTP tests through the real router, on a real server, against SQLite and PostgreSQL alike:
//! every test below runs once per backend.

#[macro_use]
mod common;

use common::{assert_error, read, Backend, TestApp, ADMIN_EMAIL};
use serde_json::json;

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
    protected_pages_redirect_visitors_and_refuse_users,
    every_route_answers_as_its_access_says,
    changing_the_password_signs_out_other_sessions,
    answers_are_compressed_but_streams_are_not,
);

fn credentials(email: &str, password: &str) -> serde_json::Value {
    json!({"email": email, "password": password})
}

async fn sign_up_log_in_and_out(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.client();

    let (s, b) = app
        .post(
            &client,
            "/api/auth/signup",
            credentials("  Alice@Example.com ", "password-123"),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["success"], true);
    assert!(b["error"].is_null());
    assert_eq!(b["data"]["email"], "alice@example.com");
    assert_eq!(b["data"]["role"], "user");

    let (s, b) = app.get(&client, "/api/auth/me").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["email"], "alice@example.com");

    let res = client
        .post(app.url("/api/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    let (s, b) = app.get(&client, "/api/auth/me").await;
    assert_error(s, &b, 401, "unauthorized");

    let res = client
        .post(app.url("/api/auth/login"))
        .json(&credentials("ALICE@example.com", "password-123"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    for attr in ["tm_session=", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    let (s, _) = app.get(&client, "/api/auth/me").await;
    assert_eq!(s, 200);
}

async fn sign_up_refuses_bad_input_and_duplicates(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.client();
    let signup = "/api/auth/signup";

    let (s, b) = app
        .post(&client, signup, credentials("not-an-email", "password-123"))
        .await;
    let msg = assert_error(s, &b, 400, "validation");
    assert!(msg.contains("email"), "{msg}");
    let (s, b) = app
        .post(&client, signup, credentials("bob@example.com", "short"))
        .await;
    let msg = assert_error(s, &b, 400, "validation");
    assert!(msg.contains("at least 8"), "{msg}");

    let (s, _) = app
        .post(
            &client,
            signup,
            credentials("bob@example.com", "password-123"),
        )
        .await;
    assert_eq!(s, 201);
    let (s, b) = app
        .post(
            &client,
            signup,
            credentials("BOB@example.com", "password-456"),
        )
        .await;
    assert_error(s, &b, 409, "conflict");

    // A wrong shape is a 400 with serde's words, not a 422 in plain text.
    let (s, b) = app
        .post(&app.client(), signup, json!({"email": "carol@example.com"}))
        .await;
    let msg = assert_error(s, &b, 400, "validation");
    assert!(msg.contains("password"), "{msg}");
    let (s, b) = read(
        app.client()
            .post(app.url(signup))
            .body("email=x")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let msg = assert_error(s, &b, 400, "validation");
    assert!(msg.contains("application/json"), "{msg}");
}

async fn closed_sign_up_is_forbidden(backend: Backend) {
    let app = TestApp::start_with(backend, &[("TOKENMETER_SIGNUP", "closed")]).await;
    let dave = credentials("dave@example.com", "password-123");
    let (s, b) = app
        .post(&app.client(), "/api/auth/signup", dave.clone())
        .await;
    assert_error(s, &b, 403, "forbidden");
    // Admins still create users.
    let (s, b) = app.post(&app.admin().await, "/api/admin/users", dave).await;
    assert_eq!(s, 201, "{b}");
}

async fn wrong_password_is_401_and_repeated_failures_are_rate_limited(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.signed_up("erin@example.com").await;
    let login = "/api/auth/login";
    for _ in 0..5 {
        let (s, b) = app
            .post(
                &app.client(),
                login,
                credentials("erin@example.com", "wrong-password"),
            )
            .await;
        assert_error(s, &b, 401, "unauthorized");
    }
    // The sixth attempt is refused before the password is checked, right or wrong.
    let (s, b) = app
        .post(
            &app.client(),
            login,
            credentials("erin@example.com", "password-123"),
        )
        .await;
    let msg = assert_error(s, &b, 429, "rate_limited");
    assert!(msg.contains("try again"), "{msg}");

    // An unknown account is the same 401 as a wrong password.
    let (s, b) = app
        .post(
            &app.client(),
            login,
            credentials("nobody@example.com", "password-123"),
        )
        .await;
    let msg = assert_error(s, &b, 401, "unauthorized");
    assert_eq!(msg, "wrong email or password");
}

async fn disabled_user_is_signed_out_and_cannot_log_in(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.signed_up("frank@example.com").await;
    let (_, me) = app.get(&user, "/api/auth/me").await;
    let id = me["data"]["id"].as_str().unwrap();

    let admin = app.admin().await;
    let (s, b) = app
        .patch(
            &admin,
            &format!("/api/admin/users/{id}"),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["disabled"], true);

    let (s, b) = app.get(&user, "/api/auth/me").await;
    assert_error(s, &b, 401, "unauthorized");
    let (s, b) = app
        .post(
            &app.client(),
            "/api/auth/login",
            credentials("frank@example.com", "password-123"),
        )
        .await;
    assert_error(s, &b, 403, "forbidden");
}

async fn csrf_refuses_foreign_and_missing_origins(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.signed_up("grace@example.com").await;
    let tokens = app.url("/api/profile/tokens");

    // Another site's page posting with the user's cookie.
    let (s, b) = read(
        user.post(&tokens)
            .header("origin", "http://evil.example")
            .json(&json!({"name": "stolen"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let msg = assert_error(s, &b, 403, "forbidden");
    assert!(msg.contains("cross-site"), "{msg}");

    // A client that sends the cookie but no Origin, or a foreign Referer, is refused too.
    let res = app
        .client()
        .post(app.url("/api/auth/login"))
        .json(&credentials("grace@example.com", "password-123"))
        .send()
        .await
        .unwrap();
    let set_cookie = res.headers()["set-cookie"].to_str().unwrap();
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let bare = reqwest::Client::builder()
        .timeout(common::REQUEST_TIMEOUT)
        .build()
        .unwrap();
    let post = |headers: &[(&'static str, String)]| {
        let mut req = bare
            .post(&tokens)
            .header("cookie", &cookie)
            .json(&json!({"name": "x"}));
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        async move { read(req.send().await.unwrap()).await }
    };
    let (s, b) = post(&[]).await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = post(&[("referer", "http://evil.example/page".into())]).await;
    assert_error(s, &b, 403, "forbidden");

    // Nothing was written by the refused requests.
    let (_, list) = app.get(&user, "/api/profile/tokens").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "{list}");

    // Our own origin passes.
    let (s, b) = post(&[("origin", app.base.clone())]).await;
    assert_eq!(s, 201, "{b}");
}

async fn admin_api_refuses_users_and_visitors(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.signed_up("heidi@example.com").await;
    let (s, b) = app.get(&user, "/api/admin/users").await;
    assert_error(s, &b, 403, "forbidden");
    let new_admin = json!({"email": "x@example.com", "password": "password-123", "role": "admin"});
    let (s, b) = app.post(&user, "/api/admin/users", new_admin).await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app.get(&app.client(), "/api/admin/users").await;
    assert_error(s, &b, 401, "unauthorized");
    let (s, b) = app.get(&app.client(), "/api/auth/me").await;
    assert_error(s, &b, 401, "unauthorized");
}

async fn api_token_works_until_revoked(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.signed_up("ivan@example.com").await;
    let (s, created) = app
        .post(&user, "/api/profile/tokens", json!({"name": "  ci  "}))
        .await;
    assert_eq!(s, 201, "{created}");
    let secret = created["data"]["secret"].as_str().unwrap().to_string();
    let token_id = created["data"]["token"]["id"].as_str().unwrap().to_string();
    let token_path = format!("/api/profile/tokens/{token_id}");
    assert!(secret.starts_with("tm_"));
    assert_eq!(created["data"]["token"]["name"], "ci");

    let program = app.bearer_client(&secret);
    let (s, me) = app.get(&program, "/api/auth/me").await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["data"]["email"], "ivan@example.com");
    // A program with a token needs no Origin header to write.
    let (s, b) = app
        .post(
            &program,
            "/api/profile/tokens",
            json!({"name": "from program"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");

    // The list never shows a secret; last use is recorded.
    let (_, list) = app.get(&user, "/api/profile/tokens").await;
    assert!(
        !list.to_string().contains(&secret),
        "the secret leaked into the list"
    );
    let listed = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == token_id.as_str())
        .unwrap();
    assert!(!listed["last_used_at"].is_null(), "{listed}");

    // Somebody else cannot revoke it: 404, as if it did not exist.
    let other = app.signed_up("judy@example.com").await;
    let (s, b) = app.delete(&other, &token_path).await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app.delete(&other, "/api/profile/tokens/not-a-uuid").await;
    assert_error(s, &b, 400, "validation");

    let (s, _) = app.delete(&user, &token_path).await;
    assert_eq!(s, 200);
    let (s, b) = app.get(&program, "/api/auth/me").await;
    assert_error(s, &b, 401, "unauthorized");
    // Revoking twice is an illegal state change.
    let (s, b) = app.delete(&user, &token_path).await;
    assert_error(s, &b, 409, "conflict");
    // A made-up token is refused the same way.
    let (s, b) = app
        .get(&app.bearer_client("tm_made_up"), "/api/auth/me")
        .await;
    assert_error(s, &b, 401, "unauthorized");
}

async fn admin_manages_users(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.admin().await;

    let kim = json!({"email": "kim@example.com", "password": "password-123", "role": "user"});
    let (s, b) = app.post(&admin, "/api/admin/users", kim).await;
    assert_eq!(s, 201, "{b}");
    let id = b["data"]["id"].as_str().unwrap().to_string();
    let kim_path = format!("/api/admin/users/{id}");

    let lee = json!({"email": "lee@example.com", "password": "password-123", "role": "root"});
    let (s, b) = app.post(&admin, "/api/admin/users", lee).await;
    let msg = assert_error(s, &b, 400, "validation");
    assert!(msg.contains("user, admin"), "{msg}");

    let (s, list) = app.get(&admin, "/api/admin/users").await;
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

    let (s, b) = app.patch(&admin, &kim_path, json!({"role": "admin"})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["role"], "admin");
    let (s, b) = app.patch(&admin, &kim_path, json!({"role": "owner"})).await;
    let msg = assert_error(s, &b, 400, "validation");
    assert!(msg.contains("user, admin"), "{msg}");
    let (s, b) = app
        .patch(&admin, &kim_path, json!({"rolle": "admin"}))
        .await;
    let msg = assert_error(s, &b, 400, "validation");
    assert!(msg.contains("rolle"), "{msg}");
    let (s, b) = app.patch(&admin, &kim_path, json!({})).await;
    assert_error(s, &b, 400, "validation");
    let (s, b) = app
        .patch(&admin, &kim_path, json!({"disabled": "yes"}))
        .await;
    assert_error(s, &b, 400, "validation");
    let (s, b) = app
        .patch(&admin, "/api/admin/users/123", json!({"role": "user"}))
        .await;
    let msg = assert_error(s, &b, 400, "validation");
    assert!(msg.contains("UUID"), "{msg}");
    let unknown = format!("/api/admin/users/{}", uuid::Uuid::new_v4());
    let (s, b) = app.patch(&admin, &unknown, json!({"role": "user"})).await;
    assert_error(s, &b, 404, "not_found");

    // Kim is still an admin and enabled after all the refused patches.
    let (_, list) = app.get(&admin, "/api/admin/users").await;
    let kim = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (kim["role"].as_str(), kim["disabled"].as_bool()),
        (Some("admin"), Some(false))
    );

    // An admin cannot lock themselves out.
    let (_, me) = app.get(&admin, "/api/auth/me").await;
    let my_path = format!("/api/admin/users/{}", me["data"]["id"].as_str().unwrap());
    let (s, b) = app.patch(&admin, &my_path, json!({"role": "user"})).await;
    assert_error(s, &b, 409, "conflict");
    let (s, b) = app.patch(&admin, &my_path, json!({"disabled": true})).await;
    assert_error(s, &b, 409, "conflict");

    let (s, b) = app.get(&admin, "/api/admin/users?limit=0").await;
    assert_error(s, &b, 400, "validation");
    let (s, b) = app.get(&admin, "/api/admin/users?limit=1&offset=1").await;
    assert_eq!(s, 200);
    assert_eq!(b["data"].as_array().unwrap().len(), 1);
}

async fn health_pages_and_unknown_routes(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.client();
    let (s, b) = app.get(&client, "/healthz").await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = app.get(&client, "/readyz").await;
    assert_eq!(s, 200, "{b}");
    let backend_name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(b["data"]["database"], backend_name);

    let (s, b) = app.get(&client, "/api/nothing/here").await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app.delete(&client, "/api/auth/me").await;
    let message = assert_error(s, &b, 405, "method_not_allowed");
    assert!(message.contains("DELETE"), "{message}");

    // Server functions answer at fixed URLs (no build-folder hash).
    let res = client
        .post(app.url("/api/fn/signup_mode"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "\"open\"");

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

async fn protected_pages_redirect_visitors_and_refuse_users(backend: Backend) {
    let app = TestApp::start(backend).await;
    let page = |client: reqwest::Client, path: &str| {
        let url = app.url(path);
        async move {
            let res = client
                .get(&url)
                .header("accept", "text/html")
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {url}: {e}"));
            let status = res.status().as_u16();
            let location = res
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string());
            (status, location, res.text().await.unwrap())
        }
    };
    for path in [
        "/profile",
        "/profile/tokens",
        "/admin",
        "/admin/users",
        "/chat",
    ] {
        let (status, location, _) = page(app.client(), path).await;
        assert_eq!(status, 302, "visitor at {path}");
        let want = format!("/login?next={path}");
        assert_eq!(
            location.as_deref(),
            Some(want.as_str()),
            "visitor at {path}"
        );
    }
    let user = app.signed_up("mallory@example.com").await;
    let (_, _, html) = page(user.clone(), "/admin/users").await;
    assert!(html.contains("have access to this page"), "{html}");
    assert!(
        !html.contains(ADMIN_EMAIL),
        "the user list leaked into the page"
    );
    let (status, _, html) = page(user, "/profile").await;
    assert_eq!(status, 200);
    assert!(html.contains("mallory@example.com"));
    let (status, _, html) = page(app.admin().await, "/admin/users").await;
    assert_eq!(status, 200);
    assert!(html.contains(ADMIN_EMAIL), "{html}");
}

/// Every route Leptos serves, taken from the app's own route table, has its access declared in
/// `api::access::PAGES` (and every declared route is served), and answers as declared: a
/// visitor is sent to log in from each user or admin page, a user sees the user pages and gets
/// 403 on the admin ones, an admin sees them all. A route added without a line in the table
/// fails here.
async fn every_route_answers_as_its_access_says(backend: Backend) {
    use tokenmeter::api::access::{page, Access, PAGES};
    let app = TestApp::start(backend).await;
    let mut routes: Vec<String> = leptos_axum::generate_route_list(tokenmeter::app::App)
        .iter()
        .map(|listing| listing.path().to_string())
        .collect();
    routes.sort();
    routes.dedup();
    // Leptos writes a parameter as axum does (`{id}`), the table as the route table (`:id`).
    let as_declared = |route: &str| {
        route
            .split('/')
            .map(|segment| match segment.strip_prefix('{') {
                Some(name) => format!(":{}", name.trim_end_matches('}')),
                None => segment.to_string(),
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut declared: Vec<String> = PAGES.iter().map(|(route, _)| route.to_string()).collect();
    declared.sort();
    let mut served: Vec<String> = routes.iter().map(|r| as_declared(r)).collect();
    served.sort();
    assert_eq!(
        served, declared,
        "the routes served and the routes declared"
    );

    let user = app.signed_up("walker@example.com").await;
    let admin = app.admin().await;
    let visitor = app.client();
    let get = |client: &reqwest::Client, path: &str| {
        client
            .get(app.url(path))
            .header("accept", "text/html")
            .send()
    };
    for route in &declared {
        // A parameter gets an id nobody has: the page may say "not found", never more.
        let path = route.replace(":id", "6f1c2a7e-0000-4000-8000-000000000000");
        let access = page(&path).expect("declared");
        let res = get(&visitor, &path).await.unwrap();
        let status = res.status().as_u16();
        if access == Access::Public {
            assert_eq!(status, 200, "a visitor at {path}");
        } else {
            assert_eq!(status, 302, "a visitor at {path}");
            let to = res.headers()["location"].to_str().unwrap().to_string();
            assert!(
                to.starts_with("/login?next="),
                "a visitor at {path} goes to {to}"
            );
        }
        let status = get(&user, &path).await.unwrap().status().as_u16();
        match access {
            Access::Admin => assert_eq!(status, 403, "a user at {path}"),
            _ if route.contains(':') => {
                assert!(matches!(status, 200 | 404), "a user at {path}: {status}")
            }
            _ => assert_eq!(status, 200, "a user at {path}"),
        }
        let status = get(&admin, &path).await.unwrap().status().as_u16();
        if route.contains(':') {
            assert!(matches!(status, 200 | 404), "an admin at {path}: {status}");
        } else {
            assert_eq!(status, 200, "an admin at {path}");
        }
    }
}

async fn changing_the_password_signs_out_other_sessions(backend: Backend) {
    let app = TestApp::start(backend).await;
    let laptop = app.signed_up("nina@example.com").await;
    let phone = app.client();
    let (s, _) = app
        .post(
            &phone,
            "/api/auth/login",
            credentials("nina@example.com", "password-123"),
        )
        .await;
    assert_eq!(s, 200);
    let path = "/api/profile/password";

    let wrong = json!({"current_password": "nope-nope", "new_password": "new-password-1"});
    let (s, b) = app.post(&laptop, path, wrong).await;
    let msg = assert_error(s, &b, 400, "validation");
    assert!(msg.contains("current_password"), "{msg}");
    let short = json!({"current_password": "password-123", "new_password": "short"});
    let (s, b) = app.post(&laptop, path, short).await;
    let msg = assert_error(s, &b, 400, "validation");
    assert!(msg.contains("new_password"), "{msg}");
    // Both refusals changed nothing: the phone is still signed in.
    let (s, _) = app.get(&phone, "/api/auth/me").await;
    assert_eq!(s, 200);

    let good = json!({"current_password": "password-123", "new_password": "new-password-1"});
    let (s, b) = app.post(&laptop, path, good).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["other_sessions_ended"], 1);
    let (s, _) = app.get(&laptop, "/api/auth/me").await;
    assert_eq!(s, 200, "the session that changed it stays");
    let (s, b) = app.get(&phone, "/api/auth/me").await;
    assert_error(s, &b, 401, "unauthorized");

    let login = "/api/auth/login";
    let (s, _) = app
        .post(
            &app.client(),
            login,
            credentials("nina@example.com", "password-123"),
        )
        .await;
    assert_eq!(s, 401, "the old password no longer works");
    let (s, _) = app
        .post(
            &app.client(),
            login,
            credentials("nina@example.com", "new-password-1"),
        )
        .await;
    assert_eq!(s, 200);
}

async fn answers_are_compressed_but_streams_are_not(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.signed_up("alice@example.com").await;
    let encoding = |res: &reqwest::Response| {
        res.headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_string())
    };
    // A page: brotli when the browser takes it, else gzip; private and revalidated.
    for (accepted, want) in [
        ("br, gzip", Some("br")),
        ("gzip", Some("gzip")),
        ("identity", None),
    ] {
        let res = alice
            .get(app.url("/pricing"))
            .header("accept-encoding", accepted)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(encoding(&res).as_deref(), want, "page for {accepted}");
        assert_eq!(
            res.headers()["cache-control"],
            "private, no-cache",
            "a page carries the user's data"
        );
    }
    // JSON too (the OpenAPI document is large enough to be worth it).
    let res = alice
        .get(app.url("/api/openapi.json"))
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();
    assert_eq!(encoding(&res).as_deref(), Some("br"));
    // A streamed reply is not: each event must reach the browser when it is written.
    let res = alice
        .post(app.url("/api/chat/completions"))
        .header("accept-encoding", "br, gzip")
        .json(&json!({"model": "demo", "stream": true,
                      "messages": [{"role": "user", "content": "hello"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(encoding(&res), None, "an event stream is sent as it is");
    let events = common::sse_data(res).await;
    assert!(events.iter().any(|e| e["usage"]["total_tokens"].is_i64()));
}
