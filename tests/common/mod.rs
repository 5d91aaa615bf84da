//! A real tokenmeter server on a loopback port, over a real database: a fresh SQLite file, or
//! a fresh database in the PostgreSQL cluster named by `TEST_DATABASE_URL` (`make test` starts
//! one). The PostgreSQL tests fail, never skip, when that database cannot be reached.

#![allow(dead_code)]

pub mod fake_litellm;

use reqwest::header::{HeaderMap, HeaderValue, ORIGIN};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use tokenmeter::server::state::AppState;
use tokenmeter::server::{config::Config, init_state};

/// Runs `$body` with `$pool` bound to the live pool of `$db` (a `Db`; on SQLite the writer's),
/// so that a test's SQL is written once for both backends (the app's own `with_db!` is private
/// to the crate).
#[allow(unused_macros)]
macro_rules! with_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            tokenmeter::server::db::Db::Sqlite(sqlite) => {
                let $pool = &sqlite.writer;
                $body
            }
            tokenmeter::server::db::Db::Postgres($pool) => $body,
        }
    };
}

/// Runs each listed test on both backends.
#[allow(unused_macros)]
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

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
/// A request that takes this long has hung: fail with the request named, not stall the suite.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
/// How long the clients keep an idle connection: less than the server's shortest idle limit
/// (a connection that never carried a request is closed after the header-read timeout, 10 s),
/// as HTTP clients must, or a request sent just as the server closes one fails (reqwest does
/// not retry a POST). The load test saw that when a pool held a connection it never used.
pub const POOL_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// A benchmark's backend: PostgreSQL when its arguments say `postgres`, else SQLite.
    pub fn from_args() -> Backend {
        if std::env::args().any(|a| a == "postgres") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// Runs raw SQL (a benchmark's seed), naming the statement when it fails.
pub async fn exec_sql(db: &tokenmeter::server::db::Db, sql: &str) {
    with_pool!(db, |p| sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(p)
        .await
        .map(|_| ()))
    .unwrap_or_else(|e| panic!("{e}: {sql}"));
}

/// The `p`th percentile of `times`, in milliseconds (sorts them).
pub fn percentile_ms(times: &mut [std::time::Duration], p: usize) -> f64 {
    times.sort();
    times[(times.len() * p / 100).min(times.len() - 1)].as_secs_f64() * 1e3
}

/// A URL of an empty database of this backend (and the folder that holds a SQLite file).
pub async fn fresh_database(backend: Backend) -> (String, Option<tempfile::TempDir>) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}/tokenmeter.db", dir.path().display());
            (url, Some(dir))
        }
        Backend::Postgres => (fresh_postgres_database().await, None),
    }
}

pub struct TestApp {
    pub base: String,
    /// The server's own database pool, for checking what was stored.
    pub db: tokenmeter::server::db::Db,
    /// The server's state, for tests that change the database behind its back and must say so.
    pub state: AppState,
    /// Its `DATABASE_URL` and configuration, for a second instance on the same database.
    url: String,
    extra: Vec<(String, String)>,
    _dir: Option<std::sync::Arc<tempfile::TempDir>>,
}

impl TestApp {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, &[]).await
    }

    /// Starts a server with extra configuration variables.
    pub async fn start_with(backend: Backend, extra: &[(&str, &str)]) -> Self {
        let (url, dir) = fresh_database(backend).await;
        let extra = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::serve(url, extra, dir.map(std::sync::Arc::new)).await
    }

    /// The `DATABASE_URL` this server uses (for a process of the real binary on it).
    pub fn database_url(&self) -> &str {
        &self.url
    }

    /// Another server on this one's database (as a second instance behind a load balancer).
    pub async fn another_instance(&self) -> Self {
        Self::serve(self.url.clone(), self.extra.clone(), self._dir.clone()).await
    }

    async fn serve(
        url: String,
        extra: Vec<(String, String)>,
        dir: Option<std::sync::Arc<tempfile::TempDir>>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let mut vars: HashMap<String, String> = HashMap::from([
            ("DATABASE_URL".into(), url.clone()),
            ("TOKENMETER_ADDR".into(), addr.to_string()),
            ("TOKENMETER_ADMIN_EMAIL".into(), ADMIN_EMAIL.into()),
            ("TOKENMETER_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
            // The demo model answers at once unless a test wants to watch it stream.
            ("TOKENMETER_DEMO_DELAY_MS".into(), "0".into()),
            // The suites sign up many users from one address; approval has its own tests.
            ("TOKENMETER_SIGNUP".into(), "open".into()),
            ("TOKENMETER_SIGNUPS_PER_IP_PER_HOUR".into(), "100000".into()),
        ]);
        for (k, v) in &extra {
            vars.insert(k.clone(), v.clone());
        }
        let config = Config::from_lookup(|name| vars.get(name).cloned()).expect("config");
        let state = init_state(config).await.expect("server state");
        let db = state.db.clone();
        serve_app(listener, state.clone());
        TestApp {
            base: format!("http://{addr}"),
            db,
            state,
            url,
            extra,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A browser-like client: its own cookie jar, and the `Origin` a browser sends on POSTs.
    pub fn client(&self) -> reqwest::Client {
        browser_client(&self.base)
    }

    /// A program's client: no cookies, no `Origin`, a bearer token.
    pub fn bearer_client(&self, token: &str) -> reqwest::Client {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .default_headers(headers)
            .build()
            .unwrap()
    }

    /// Signs up a new user and returns their signed-in client.
    pub async fn signed_up(&self, email: &str) -> reqwest::Client {
        sign_up(&self.base, email).await
    }

    pub async fn admin(&self) -> reqwest::Client {
        admin_client(&self.base).await
    }

    /// Sets a user's personal monthly limit, as an admin does.
    pub async fn set_limit(&self, user: uuid::Uuid, limit: i64) {
        let admin = self.admin().await;
        let (status, body) = self
            .patch(
                &admin,
                &format!("/api/admin/users/{user}"),
                serde_json::json!({"token_limit_override": limit}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// Logs in and returns the raw session cookie, to send by hand (to another instance, or
    /// after the session has ended, as a stolen copy would be).
    pub async fn session_cookie(&self, email: &str, password: &str) -> String {
        let res = self
            .client()
            .post(self.url("/api/auth/login"))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let set = res.headers()["set-cookie"].to_str().unwrap();
        set.split(';').next().unwrap().to_string()
    }

    /// A client of this instance that always sends `cookie` (and this instance's `Origin`).
    pub fn with_cookie(&self, cookie: &str) -> reqwest::Client {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", cookie.parse().unwrap());
        headers.insert(ORIGIN, HeaderValue::from_str(&self.base).unwrap());
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    }
}

impl TestApp {
    pub async fn get(&self, client: &reqwest::Client, path: &str) -> (u16, Value) {
        read(client.get(self.url(path)).send().await.unwrap()).await
    }

    pub async fn post(&self, client: &reqwest::Client, path: &str, body: Value) -> (u16, Value) {
        read(
            client
                .post(self.url(path))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn patch(&self, client: &reqwest::Client, path: &str, body: Value) -> (u16, Value) {
        read(
            client
                .patch(self.url(path))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn delete(&self, client: &reqwest::Client, path: &str) -> (u16, Value) {
        read(client.delete(self.url(path)).send().await.unwrap()).await
    }
}

/// Creates an empty database in the cluster of `TEST_DATABASE_URL` and returns its URL.
pub async fn fresh_postgres_database() -> String {
    let admin_url = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "TEST_DATABASE_URL is not set: the PostgreSQL suite needs a server. \
             Run `make test` (it starts a throwaway cluster) or set TEST_DATABASE_URL."
        )
    });
    let pool = sqlx::PgPool::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at TEST_DATABASE_URL: {e}"));
    let name = format!("tm_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
        .execute(&pool)
        .await
        .expect("create test database");
    pool.close().await;
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("TEST_DATABASE_URL must end in /<database>");
    format!("{base}/{name}")
}

/// Reads an enveloped answer: (status, body).
pub async fn read(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.expect("JSON body");
    (status, body)
}

/// Asserts an error envelope with this status and code; returns the message.
pub fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) -> String {
    assert_eq!(status, want_status, "body: {body}");
    assert_eq!(body["success"], false, "body: {body}");
    assert!(body["data"].is_null(), "body: {body}");
    assert_eq!(body["error"]["code"], want_code, "body: {body}");
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The `data` of every server-sent event of a finished response, JSON-decoded; `[DONE]` is
/// kept as the string "[DONE]".
pub async fn sse_data(res: reqwest::Response) -> Vec<Value> {
    sse_events(&res.bytes().await.expect("SSE body"))
}

/// The `data:` payloads of (part of) an SSE body: JSON values, `[DONE]` as a string.
pub fn sse_events(body: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap_or_else(|_| Value::String(d.to_string())))
        .collect()
}

/// Reads a streamed body until at least `n` bytes have arrived.
pub async fn read_at_least<S, B>(body: &mut S, n: usize) -> Vec<u8>
where
    S: futures_util::Stream<Item = reqwest::Result<B>> + Unpin,
    B: AsRef<[u8]>,
{
    use futures_util::StreamExt;
    let mut received = Vec::new();
    while received.len() < n {
        let chunk = body.next().await.expect("more body").expect("body chunk");
        received.extend_from_slice(chunk.as_ref());
    }
    received
}

/// Reads a streamed body to its end (or until the connection breaks), after `received`.
pub async fn read_to_end<S, B>(body: &mut S, received: &mut Vec<u8>)
where
    S: futures_util::Stream<Item = reqwest::Result<B>> + Unpin,
    B: AsRef<[u8]>,
{
    use futures_util::StreamExt;
    while let Some(Ok(chunk)) = body.next().await {
        received.extend_from_slice(chunk.as_ref());
    }
}

/// The text of the content deltas among SSE chunks.
pub fn sse_text(events: &[Value]) -> String {
    events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect()
}

/// A browser-like client of the server at `base`: its own cookie jar, and the `Origin` a
/// browser sends on POSTs.
pub fn browser_client(base: &str) -> reqwest::Client {
    let mut headers = HeaderMap::new();
    headers.insert(ORIGIN, HeaderValue::from_str(base).unwrap());
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .cookie_store(true)
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The test admin (`ADMIN_EMAIL`) logged in on a browser-like client of the server at `base`.
pub async fn admin_client(base: &str) -> reqwest::Client {
    let client = browser_client(base);
    let res = client
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "admin log-in");
    client
}

/// Signs up a new user on the server at `base` and returns their signed-in client.
pub async fn sign_up(base: &str, email: &str) -> reqwest::Client {
    let client = browser_client(base);
    let res = client
        .post(format!("{base}/api/auth/signup"))
        .json(&serde_json::json!({"email": email, "password": "password-123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "sign-up of {email}");
    client
}

/// A new empty conversation with the demo model; its id.
pub async fn new_conversation(app: &TestApp, client: &reqwest::Client) -> String {
    let (status, body) = app
        .post(
            client,
            "/api/conversations",
            serde_json::json!({"model": "demo"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["data"]["id"].as_str().unwrap().to_string()
}

/// The signed-in user's id.
pub async fn my_id(app: &TestApp, client: &reqwest::Client) -> uuid::Uuid {
    user_id(&app.base, client).await
}

/// The user's stored usage rows (all days).
pub async fn usage_days(
    app: &TestApp,
    user_id: uuid::Uuid,
) -> Vec<tokenmeter::server::db::usage_history::UsageDayRow> {
    use chrono::NaiveDate;
    tokenmeter::server::db::usage_history::list_range(
        &app.db,
        user_id,
        NaiveDate::from_ymd_opt(2000, 1, 1).unwrap(),
        NaiveDate::from_ymd_opt(2100, 1, 1).unwrap(),
    )
    .await
    .expect("usage rows")
}

/// Serves the whole app of `state` on `listener`, as `tokenmeter serve` does.
pub fn serve_app(listener: tokio::net::TcpListener, state: AppState) {
    tokio::spawn(tokenmeter::server::serve_on(
        listener,
        state,
        std::future::pending(),
    ));
}

/// Serves a router (a fake upstream) on a free loopback port; returns its address.
pub async fn serve_on_loopback(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().unwrap();
    // Like real model servers (uvicorn sets TCP_NODELAY), each chunk leaves at once.
    let listener = tokenmeter::server::without_nagle(listener);
    tokio::spawn(async move { axum::serve(listener, app).await.expect("fake server") });
    addr
}

/// A `tokenmeter serve` process of the real binary (demo model, no job runner, the test admin,
/// plus the given variables), killed when dropped.
#[allow(dead_code)]
pub struct ServerProcess {
    pub child: std::process::Child,
    pub base: String,
}

#[allow(dead_code)]
impl ServerProcess {
    /// Starts the binary on `database_url`; waits until `/readyz` answers. `TOKENMETER_BIN`
    /// names another build of it (a benchmark comparing two commits in one hour).
    pub async fn spawn(database_url: &str, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let binary = std::env::var("TOKENMETER_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_tokenmeter").to_string());
        let mut command = std::process::Command::new(binary);
        command
            .arg("serve")
            .env_remove("LITELLM_URL")
            .env_remove("LLM_BASE_URL")
            .env("DATABASE_URL", database_url)
            .env("TOKENMETER_ADDR", format!("127.0.0.1:{port}"))
            .env("TOKENMETER_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("TOKENMETER_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("TOKENMETER_JOB_WORKERS", "0")
            .env("RUST_LOG", "warn");
        for (k, v) in env {
            command.env(k, v);
        }
        let server = ServerProcess {
            child: command.spawn().expect("start tokenmeter serve"),
            base,
        };
        let probe = reqwest::Client::new();
        for _ in 0..400 {
            if probe
                .get(format!("{}/readyz", server.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the server did not start");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Signs up `email` on the server at `base` and, as the test admin, gives them a token limit of
/// their own (`limit`): a limited user, whose every send is admitted, reserved and settled.
/// Their signed-in (browser-like) client.
pub async fn limited_user(base: &str, email: &str, limit: i64) -> reqwest::Client {
    let user = sign_up(base, email).await;
    let id = user_id(base, &user).await;
    let admin = admin_client(base).await;
    let res = admin
        .patch(format!("{base}/api/admin/users/{id}"))
        .json(&serde_json::json!({"token_limit_override": limit}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "limit set");
    user
}

/// The id of the user signed in on `client` at the server at `base`, from `/api/auth/me`.
pub async fn user_id(base: &str, client: &reqwest::Client) -> uuid::Uuid {
    let res = client
        .get(format!("{base}/api/auth/me"))
        .send()
        .await
        .unwrap();
    let (status, me) = read(res).await;
    assert_eq!(status, 200, "{me}");
    me["data"]["id"].as_str().unwrap().parse().unwrap()
}

/// Resident memory of process `pid` in MB (now, peak), from /proc (a benchmark's server).
pub fn rss_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}
