//! Quota reads at scale: `GET /api/profile/usage` and the send path's quota check, with
//! 10,000 users, 100,000 conversations, 1,000,000 messages and 300,000 days of usage stored,
//! on SQLite or PostgreSQL. Each is measured as requests per second relative to a trivial
//! handler of the same server (`GET /healthz`: no database, no session) in the same run, and by
//! its p99 latency. The kinds of request take turns in short slices, so that the shared
//! machine's changing speed weighs on all of them alike.
//!
//! - auth/me: the cheapest signed-in request (the session lookup alone).
//! - usage: `GET /api/profile/usage` for 64 signed-in users.
//! - blocked send: `POST /api/chat/completions` by users at their limit: authentication, the
//!   body, and the quota check, answered 429 before any model is called.
//! - invalid send: the same POST with no messages, refused (400) just before the quota check:
//!   the send path without the check, its natural baseline.
//! - each of those again on a second server of the same state with its caches off (a cache
//!   miss on every request: a first read, or a read right after a change).
//! - admission: the admission of a send and the release of its reservation, called in-process
//!   (no HTTP), for users with quota left: the database transaction every admitted send runs.
//!
//! Run: `cargo bench --features ssr --bench quota_usage` (SQLite) or, under
//! `scripts/with-postgres.sh`, `cargo bench --features ssr --bench quota_usage -- postgres`.

#[path = "../tests/common/mod.rs"]
#[allow(unused_macros)]
#[macro_use]
mod common;

use common::Backend;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokenmeter::server::cache::Caches;
use tokenmeter::server::config::Config;
use tokenmeter::server::db::Db;
use tokenmeter::server::state::AppState;

const CLIENTS: usize = 64;
const CONCURRENCY: usize = 32;
/// Each kind of request runs for `SLICE`, the kinds taking turns for `ROUNDS` rounds, so a
/// change in the machine's speed during the run (it is shared) weighs on all of them alike.
const SLICE: Duration = Duration::from_millis(500);
const ROUNDS: u32 = 16;

/// 10,000 users, 10 conversations each with 10 messages, and 30 days of usage each.
async fn populate(db: &Db) {
    let started = Instant::now();
    match db {
        Db::Sqlite(_) => {
            common::exec_sql(
                db,
                "with recursive s(i) as (select 1 union all select i + 1 from s where i < 10000)
                insert into users (id, email, password_hash, role, disabled, created_at, updated_at)
                select randomblob(16), 'bench' || i || '@example.com', 'x', 'user', 0,
                       '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00' from s",
            )
            .await;
            common::exec_sql(
                db,
                "with recursive s(i) as (select 1 union all select i + 1 from s where i < 10)
                insert into conversations (id, user_id, title, model, created_at, updated_at)
                select randomblob(16), u.id, 'c' || s.i, 'demo', '2026-01-01T00:00:00+00:00',
                       '2026-01-01T00:00:00+00:00' from users u, s",
            )
            .await;
            common::exec_sql(
                db,
                "with recursive s(i) as (select 1 union all select i + 1 from s where i < 10)
                insert into messages (id, conversation_id, role, content, created_at)
                select randomblob(16), c.id, 'user', 'hello there, this is message ' || s.i,
                       '2026-01-01T00:00:00+00:00' from conversations c, s",
            )
            .await;
            common::exec_sql(
                db,
                "with recursive s(i) as (select 0 union all select i + 1 from s where i < 29)
                insert into usage_history (id, user_id, date, tokens_used, prompt_tokens,
                    completion_tokens, requests_count, cost_nanos, created_at, updated_at)
                select randomblob(16), u.id, date('now', '-' || s.i || ' days'), 100, 40, 60, 1, 0,
                       '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00' from users u, s",
            )
            .await;
            common::exec_sql(db, "analyze").await;
            if std::env::var("NO_STAT4").is_ok() {
                common::exec_sql(db, "delete from sqlite_stat4").await;
            }
        }
        Db::Postgres(_) => {
            common::exec_sql(db, "insert into users (id, email, password_hash, role, disabled, created_at, updated_at)
                select gen_random_uuid(), 'bench' || i || '@example.com', 'x', 'user', false, now(), now()
                from generate_series(1, 10000) i").await;
            common::exec_sql(
                db,
                "insert into conversations (id, user_id, title, model, created_at, updated_at)
                select gen_random_uuid(), u.id, 'c' || i, 'demo', now(), now()
                from users u, generate_series(1, 10) i",
            )
            .await;
            common::exec_sql(
                db,
                "insert into messages (id, conversation_id, role, content, created_at)
                select gen_random_uuid(), c.id, 'user', 'hello there, this is message ' || i, now()
                from conversations c, generate_series(1, 10) i",
            )
            .await;
            common::exec_sql(
                db,
                "insert into usage_history (id, user_id, date, tokens_used, prompt_tokens,
                    completion_tokens, requests_count, cost_nanos, created_at, updated_at)
                select gen_random_uuid(), u.id, current_date - i, 100, 40, 60, 1, 0, now(), now()
                from users u, generate_series(0, 29) i",
            )
            .await;
            common::exec_sql(db, "analyze").await;
        }
    }
    println!("populated in {:.1} s", started.elapsed().as_secs_f64());
}

async fn count(db: &Db, table: &str) -> i64 {
    let sql = format!("select count(*) from {table}");
    with_pool!(db, |p| sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(p)
        .await
        .unwrap())
}

struct Figures {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

/// Latencies and wall time of one kind of request, summed over its slices.
#[derive(Default)]
struct Samples {
    times: Vec<Duration>,
    elapsed: Duration,
}

impl Samples {
    fn figures(&mut self) -> Figures {
        self.times.sort();
        let n = self.times.len();
        Figures {
            rps: n as f64 / self.elapsed.as_secs_f64(),
            p50: self.times[n / 2],
            p99: self.times[(n * 99) / 100],
        }
    }
}

/// Runs `CONCURRENCY` loops for one slice, each request from `make(i)`, all answering `want`.
async fn load<F, Fut>(into: &mut Samples, make: F, want: u16)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = u16> + Send,
{
    let deadline = Instant::now() + SLICE;
    let workers = (0..CONCURRENCY).map(|w| {
        let make = make.clone();
        tokio::spawn(async move {
            let mut times = Vec::new();
            let mut i = w;
            while Instant::now() < deadline {
                let t = Instant::now();
                let status = make(i).await;
                assert_eq!(status, want);
                times.push(t.elapsed());
                i += CONCURRENCY;
            }
            times
        })
    });
    let started = Instant::now();
    for w in workers {
        into.times.extend(w.await.unwrap());
    }
    into.elapsed += started.elapsed();
}

fn row(name: &str, f: &Figures, base: Option<&Figures>) {
    let ratio = base
        .map(|b| format!("{:>5.1}% of /healthz", f.rps / b.rps * 100.0))
        .unwrap_or_default();
    println!(
        "{name:<16} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  {ratio}",
        f.rps,
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3
    );
}

/// Serves the app of `state` on `listener`; returns its base URL.
fn serve(listener: tokio::net::TcpListener, state: AppState) -> String {
    let base = format!("http://{}", listener.local_addr().unwrap());
    common::serve_app(listener, state);
    base
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let backend = Backend::from_args();
    let (url, _dir) = common::fresh_database(backend).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let vars: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", url),
        ("TOKENMETER_ADDR", addr.to_string()),
        ("TOKENMETER_DB_MAX_CONNECTIONS", "16".to_string()),
        ("TOKENMETER_ADMIN_EMAIL", common::ADMIN_EMAIL.to_string()),
        (
            "TOKENMETER_ADMIN_PASSWORD",
            common::ADMIN_PASSWORD.to_string(),
        ),
        ("TOKENMETER_DEMO_DELAY_MS", "0".to_string()),
        ("TOKENMETER_SIGNUP", "open".to_string()),
        ("TOKENMETER_SIGNUPS_PER_IP_PER_HOUR", "1000000".to_string()),
    ]);
    let config = Config::from_lookup(|n| vars.get(n).cloned()).unwrap();
    let state: AppState = tokenmeter::server::init_state(config).await.unwrap();
    populate(&state.db).await;
    let base = serve(listener, state.clone());
    // The same server with its caches off, on the same database: what every request costs
    // when nothing is cached (a first read, or right after a change).
    let uncached = AppState {
        caches: std::sync::Arc::new(Caches::new(Duration::ZERO, true)),
        ..state.clone()
    };
    let base_uncached = serve(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        uncached,
    );

    // Signed-in clients: the first half with quota left, the second half at their limit.
    let mut clients = Vec::new();
    let mut ids = Vec::new();
    for i in 0..CLIENTS {
        let client = common::sign_up(&base, &format!("load{i}@example.com")).await;
        let id = common::user_id(&base, &client).await;
        // At their limit whatever the day of the month: today's 100 tokens alone reach it.
        let limit = if i < CLIENTS / 2 { 1_000_000_000 } else { 100 };
        common::exec_sql(
            &state.db,
            &format!(
            "update users set token_limit_override = {limit} where email = 'load{i}@example.com'"
        ),
        )
        .await;
        clients.push(client);
        ids.push(id);
    }
    // Their days: 30 each, like everyone's.
    match &state.db {
        Db::Sqlite(_) => common::exec_sql(&state.db, "with recursive s(i) as (select 0 union all select i + 1 from s where i < 29)
            insert into usage_history (id, user_id, date, tokens_used, prompt_tokens, completion_tokens,
                requests_count, cost_nanos, created_at, updated_at)
            select randomblob(16), u.id, date('now', '-' || s.i || ' days'), 100, 40, 60, 1, 0,
                   '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00'
            from users u, s where u.email like 'load%'").await,
        Db::Postgres(_) => common::exec_sql(&state.db, "insert into usage_history (id, user_id, date, tokens_used,
                prompt_tokens, completion_tokens, requests_count, cost_nanos, created_at, updated_at)
            select gen_random_uuid(), u.id, current_date - i, 100, 40, 60, 1, 0, now(), now()
            from users u, generate_series(0, 29) i where u.email like 'load%'").await,
    }
    println!(
        "quota_usage ({backend:?}): {} users, {} conversations, {} messages, {} usage days; {CONCURRENCY} concurrent requests; the kinds take turns, {ROUNDS} rounds of {} ms each; 2 cores, loopback",
        count(&state.db, "users").await,
        count(&state.db, "conversations").await,
        count(&state.db, "messages").await,
        count(&state.db, "usage_history").await,
        SLICE.as_millis(),
    );
    let clients = std::sync::Arc::new(clients);
    // Warm every client's connection first.
    for c in clients.iter() {
        for _ in 0..20 {
            c.get(format!("{base}/healthz")).send().await.unwrap();
        }
    }
    // PostgreSQL: the caches are on once the server listens for other instances' changes.
    while !state.caches.is_on() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A GET of `path` on the server at `base` by a signed-in client (cookies are per host,
    // not per port: the same sessions work on both servers).
    let get = |base: &String, path: &'static str| {
        let (c, b) = (clients.clone(), base.clone());
        move |i: usize| {
            let (c, b) = (c.clone(), b.clone());
            async move {
                let res = c[i % CLIENTS]
                    .get(format!("{b}{path}"))
                    .send()
                    .await
                    .unwrap();
                res.status().as_u16()
            }
        }
    };
    // A send with `messages` by a client at its limit, on the server at `base`.
    let send = |base: &String, messages: Value| {
        let (c, b) = (clients.clone(), base.clone());
        let body = json!({"model": "demo", "messages": messages});
        move |i: usize| {
            let (c, b, body) = (c.clone(), b.clone(), body.clone());
            async move {
                let res = c[CLIENTS / 2 + i % (CLIENTS / 2)]
                    .post(format!("{b}/api/chat/completions"))
                    .header("origin", b.as_str())
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                res.status().as_u16()
            }
        }
    };
    let one_more = || json!([{"role": "user", "content": "one more, please"}]);
    // The same POST, refused as invalid (no messages) just before the quota check: all of
    // the send path's cost but the check (a POST with a JSON body costs twice a GET here).
    let nothing = || json!([]);
    let (s, ids) = (state.clone(), std::sync::Arc::new(ids));
    let admission = move |i: usize| {
        let (s, ids) = (s.clone(), ids.clone());
        async move {
            let user = ids[i % (CLIENTS / 2)];
            let admitted = tokenmeter::server::quota::admit_send(&s, user, 20, Some(100))
                .await
                .unwrap();
            tokenmeter::server::quota::release(&s, admitted.reservation).await;
            200
        }
    };
    let (b, u) = (&base, &base_uncached);
    let mut all: [Samples; 9] = Default::default();
    for _ in 0..ROUNDS {
        load(&mut all[0], get(b, "/healthz"), 200).await;
        load(&mut all[1], get(b, "/api/auth/me"), 200).await;
        load(&mut all[2], get(b, "/api/profile/usage"), 200).await;
        load(&mut all[3], send(b, one_more()), 429).await;
        load(&mut all[4], send(b, nothing()), 400).await;
        load(&mut all[5], get(u, "/api/auth/me"), 200).await;
        load(&mut all[6], get(u, "/api/profile/usage"), 200).await;
        load(&mut all[7], send(u, one_more()), 429).await;
        load(&mut all[8], admission.clone(), 200).await;
    }
    let [healthz, me, usage, blocked, invalid, me_u, usage_u, blocked_u, admission] =
        all.map(|mut s| s.figures());
    row("GET /healthz", &healthz, None);
    row("GET auth/me", &me, Some(&healthz));
    row("GET usage", &usage, Some(&healthz));
    row("blocked send", &blocked, Some(&healthz));
    row("invalid send", &invalid, Some(&healthz));
    println!(
        "blocked send vs invalid send (the same POST without the quota check): {:.1}%",
        blocked.rps / invalid.rps * 100.0
    );
    println!("caches off:");
    row("GET auth/me", &me_u, Some(&healthz));
    row("GET usage", &usage_u, Some(&healthz));
    row("blocked send", &blocked_u, Some(&healthz));
    row("admission", &admission, Some(&healthz));
}
