//! Usage history at scale, on SQLite or PostgreSQL:
//!
//! 1. sync: `sync_all_users_usage` for 10,000 users with 30 days each from a fake LiteLLM that
//!    answers every read after 2 ms (one page per user: 30 daily records), over stored app rows
//!    for the same days. Prints the upstream requests and the wall time, at the configured
//!    concurrency (8) and at 32.
//! 2. history: with 10,000 users' year of rows stored (3,650,000 rows), the 365-day history
//!    (`get_user_usage_history`, the query plus the zero-filled days and totals) for random
//!    users, in-process (p50 / p99 of 2,000 calls, one at a time), and `GET
//!    /api/profile/usage/history?days=365` over HTTP by 16 concurrent clients (req/s, p99).
//!
//! Run: `cargo bench --features ssr --bench usage_history` (SQLite) or, under
//! `scripts/with-postgres.sh`, `cargo bench --features ssr --bench usage_history -- postgres`.

#[path = "../tests/common/mod.rs"]
#[allow(unused_macros)]
#[macro_use]
mod common;

use common::fake_litellm::{metrics, FakeLiteLlm, Unrecorded};
use common::Backend;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use tokenmeter::server::config::Config;
use tokenmeter::server::db::Db;
use tokenmeter::server::state::AppState;
use tokenmeter::server::{usage_analytics, usage_sync};
use uuid::Uuid;

const USERS: i64 = 10_000;
const LATENCY: Duration = Duration::from_millis(2);

const MODELS_JSON: &str = r#"{"gpt-4o-mini":{"tokens":100,"prompt_tokens":40,"completion_tokens":60,"requests":1,"cost_nanos":50000}}"#;

/// 10,000 users, each with app rows for the last `days` days (today included).
async fn populate(db: &Db, days: i64) {
    let started = Instant::now();
    let last = days - 1;
    match db {
        Db::Sqlite(_) => {
            common::exec_sql(
                db,
                &format!(
                "with recursive s(i) as (select 1 union all select i + 1 from s where i < {USERS})
                insert into users (id, email, password_hash, role, disabled, created_at, updated_at)
                select randomblob(16), 'bench' || i || '@example.com', 'x', 'user', 0,
                       '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00' from s"),
            )
            .await;
            common::exec_sql(
                db,
                &format!(
                "with recursive s(i) as (select 0 union all select i + 1 from s where i < {last})
                insert into usage_history (id, user_id, date, tokens_used, prompt_tokens,
                    completion_tokens, requests_count, cost_nanos, model_usage, app_tokens_used,
                    app_prompt_tokens, app_completion_tokens, app_requests_count, app_cost_nanos,
                    app_model_usage, created_at, updated_at)
                select randomblob(16), u.id, date('now', '-' || s.i || ' days'), 100, 40, 60, 1,
                       50000, '{MODELS_JSON}', 100, 40, 60, 1, 50000, '{MODELS_JSON}',
                       '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00'
                from users u, s where u.email like 'bench%'"),
            )
            .await;
            common::exec_sql(db, "analyze").await;
        }
        Db::Postgres(_) => {
            common::exec_sql(db, &format!(
                "insert into users (id, email, password_hash, role, disabled, created_at, updated_at)
                select gen_random_uuid(), 'bench' || i || '@example.com', 'x', 'user', false, now(), now()
                from generate_series(1, {USERS}) i")).await;
            common::exec_sql(
                db,
                &format!(
                    "insert into usage_history (id, user_id, date, tokens_used, prompt_tokens,
                    completion_tokens, requests_count, cost_nanos, model_usage, app_tokens_used,
                    app_prompt_tokens, app_completion_tokens, app_requests_count, app_cost_nanos,
                    app_model_usage, created_at, updated_at)
                select gen_random_uuid(), u.id, current_date - i, 100, 40, 60, 1, 50000,
                       '{MODELS_JSON}', 100, 40, 60, 1, 50000, '{MODELS_JSON}', now(), now()
                from users u, generate_series(0, {last}) i where u.email like 'bench%'"
                ),
            )
            .await;
            common::exec_sql(db, "analyze").await;
        }
    }
    println!(
        "populated {USERS} users x {days} days in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Adds the days from `from_day` to `to_day` days ago to every user whose e-mail starts with
/// `prefix`.
async fn add_days(db: &Db, prefix: &str, from_day: i64, to_day: i64) {
    let started = Instant::now();
    match db {
        Db::Sqlite(_) => common::exec_sql(db, &format!(
            "with recursive s(i) as (select {from_day} union all select i + 1 from s where i < {to_day})
            insert into usage_history (id, user_id, date, tokens_used, prompt_tokens,
                completion_tokens, requests_count, cost_nanos, model_usage, app_tokens_used,
                app_prompt_tokens, app_completion_tokens, app_requests_count, app_cost_nanos,
                app_model_usage, created_at, updated_at)
            select randomblob(16), u.id, date('now', '-' || s.i || ' days'), 100, 40, 60, 1,
                   50000, '{MODELS_JSON}', 100, 40, 60, 1, 50000, '{MODELS_JSON}',
                   '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00'
            from users u, s where u.email like '{prefix}%'; analyze")).await,
        Db::Postgres(_) => common::exec_sql(db, &format!(
            "insert into usage_history (id, user_id, date, tokens_used, prompt_tokens,
                completion_tokens, requests_count, cost_nanos, model_usage, app_tokens_used,
                app_prompt_tokens, app_completion_tokens, app_requests_count, app_cost_nanos,
                app_model_usage, created_at, updated_at)
            select gen_random_uuid(), u.id, current_date - i, 100, 40, 60, 1, 50000,
                   '{MODELS_JSON}', 100, 40, 60, 1, 50000, '{MODELS_JSON}', now(), now()
            from users u, generate_series({from_day}, {to_day}) i where u.email like '{prefix}%';
            analyze")).await,
    }
    println!(
        "added days {from_day}..={to_day} ago in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

async fn state_for(url: &str, litellm: &str, extra: &[(&str, &str)]) -> AppState {
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", url.to_string()),
        ("TOKENMETER_DB_MAX_CONNECTIONS", "16".to_string()),
        ("TOKENMETER_ADMIN_EMAIL", common::ADMIN_EMAIL.to_string()),
        (
            "TOKENMETER_ADMIN_PASSWORD",
            common::ADMIN_PASSWORD.to_string(),
        ),
        ("LITELLM_URL", litellm.to_string()),
        ("LITELLM_MASTER_KEY", "sk-master".to_string()),
        ("TOKENMETER_USAGE_BACKFILL_DAYS", "30".to_string()),
        ("TOKENMETER_SIGNUP", "open".to_string()),
        ("TOKENMETER_SIGNUPS_PER_IP_PER_HOUR", "1000000".to_string()),
    ]);
    for (k, v) in extra {
        vars.insert(k, v.to_string());
    }
    let config = Config::from_lookup(|n| vars.get(n).cloned()).unwrap();
    tokenmeter::server::init_state(config).await.unwrap()
}

async fn forget_syncs(db: &Db) {
    common::exec_sql(db, "update users set usage_synced_at = null").await;
}

async fn sync_everyone(state: &AppState, litellm: &FakeLiteLlm, concurrency: usize) {
    litellm.reset_reads();
    let started = Instant::now();
    let report = usage_sync::sync_all_users_usage(state, &|_| {}, &AtomicBool::new(false))
        .await
        .unwrap();
    let wall = started.elapsed().as_secs_f64();
    assert!(
        report.failures.is_empty(),
        "{:?}",
        &report.failures[..3.min(report.failures.len())]
    );
    println!(
        "sync, concurrency {concurrency:>2}: {} users, {} upstream requests, {} days written, {wall:.1} s ({:.0} users/s; 2 ms latency alone: {:.1} s)",
        report.users,
        litellm.reads(),
        report.days_reported,
        report.users as f64 / wall,
        report.users as f64 * LATENCY.as_secs_f64() / concurrency as f64
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let backend = Backend::from_args();
    println!("backend: {backend:?}");
    let (url, _dir) = common::fresh_database(backend).await;
    // Every read waits 2 ms, then reports one record a day of the range.
    let fake = FakeLiteLlm::start().await;
    fake.script().delay = LATENCY;
    fake.script().unrecorded = Unrecorded::EveryDay(metrics(40, 61, 0.00005));
    let litellm = fake.url.clone();

    // 1. The sync.
    let state = state_for(&url, &litellm, &[]).await;
    populate(&state.db, 30).await;
    sync_everyone(&state, &fake, state.config.usage_sync_concurrency).await;
    let wide = state_for(
        &url,
        &litellm,
        &[("TOKENMETER_USAGE_SYNC_CONCURRENCY", "32")],
    )
    .await;
    forget_syncs(&wide.db).await;
    sync_everyone(&wide, &fake, 32).await;
    // Synced again right away: yesterday and today only.
    fake.reset_reads();
    let started = Instant::now();
    let report = usage_sync::sync_all_users_usage(&wide, &|_| {}, &AtomicBool::new(false))
        .await
        .unwrap();
    println!(
        "sync again (yesterday and today), concurrency 32: {} upstream requests, {} days written, {:.1} s",
        fake.reads(),
        report.days_reported,
        started.elapsed().as_secs_f64()
    );

    // 2. The 365-day history with a year of rows for everyone.
    add_days(&state.db, "bench", 30, 364).await;
    let ids: Vec<Uuid> = with_pool!(&state.db, |p| sqlx::query_scalar(
        "select id from users where email like 'bench%'"
    )
    .fetch_all(p)
    .await
    .unwrap());
    let rows: i64 = with_pool!(&state.db, |p| sqlx::query_scalar(
        "select count(*) from usage_history"
    )
    .fetch_one(p)
    .await
    .unwrap());
    println!("usage_history rows: {rows}");
    let mut times = Vec::new();
    for i in 0..2_000 {
        let id = ids[(i * 7919) % ids.len()];
        let t = Instant::now();
        let h = usage_analytics::get_user_usage_history(&state, id, 365)
            .await
            .unwrap();
        times.push(t.elapsed());
        assert_eq!(h.daily.len(), 365);
        assert!(h.totals.tokens_used >= 365 * 100);
    }
    println!(
        "history 365 days, in-process: p50 {:.2} ms, p99 {:.2} ms",
        common::percentile_ms(&mut times, 50),
        common::percentile_ms(&mut times, 99)
    );

    // Over HTTP, signed in.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    common::serve_app(listener, state.clone());
    let mut clients = Vec::new();
    for i in 0..16 {
        clients.push(common::sign_up(&base, &format!("reader{i}@example.com")).await);
    }
    // Give the readers a year of rows too.
    add_days(&state.db, "reader", 0, 364).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let started = Instant::now();
    let tasks = clients.into_iter().map(|client| {
        let url = format!("{base}/api/profile/usage/history?days=365");
        tokio::spawn(async move {
            let mut times = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let res = client.get(&url).send().await.unwrap();
                assert_eq!(res.status(), 200);
                let _ = res.bytes().await.unwrap();
                times.push(t.elapsed());
            }
            times
        })
    });
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "history 365 days over HTTP, 16 clients: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
        all.len() as f64 / secs,
        common::percentile_ms(&mut all, 50),
        common::percentile_ms(&mut all, 99)
    );
}
