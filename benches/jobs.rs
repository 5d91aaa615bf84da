//! The job queue at scale, on SQLite or PostgreSQL:
//!
//! 1. throughput: 10,000 pending jobs, 4 workers each claiming the next due job and completing
//!    it (the runner's claim and end statements, no handler work): jobs per second.
//! 2. the admin list: with 100,000 jobs stored, `GET /api/admin/jobs` (first page of 50, no
//!    filter, and filtered by status) by 8 concurrent signed-in clients for 5 s each: p50 / p99.
//!
//! Run: `cargo bench --features ssr --bench jobs` (SQLite) or, under
//! `scripts/with-postgres.sh`, `cargo bench --features ssr --bench jobs -- postgres`.

#[path = "../tests/common/mod.rs"]
#[allow(unused_macros)]
#[macro_use]
mod common;

use chrono::Duration as Days;
use common::Backend;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokenmeter::server::db::jobs::{self as repo, End};
use tokenmeter::server::db::{now, Db};
use tokenmeter::server::jobs;

/// `n` jobs of `status`, created a second apart, asked for by the admin (so the list looks up
/// an e-mail for each).
async fn insert_jobs(db: &Db, n: i64, status: &str) {
    let sql = match db {
        Db::Sqlite(_) => format!(
            "with recursive s(i) as (select 1 union all select i + 1 from s where i < {n})
             insert into jobs (id, type, status, progress, metadata, attempts, run_at,
                 started_at, completed_at, created_at, updated_at, user_id)
             select randomblob(16), 'report_generation', '{status}',
                    case when '{status}' = 'completed' then 100 else 0 end, '{{}}',
                    case when '{status}' = 'pending' then 0 else 1 end,
                    strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-' || i || ' seconds'),
                    null, null,
                    strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-' || i || ' seconds'),
                    strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-' || i || ' seconds'),
                    (select id from users limit 1)
             from s; analyze"
        ),
        Db::Postgres(_) => format!(
            "insert into jobs (id, type, status, progress, metadata, attempts, run_at,
                 created_at, updated_at, user_id)
             select gen_random_uuid(), 'report_generation', '{status}',
                    case when '{status}' = 'completed' then 100 else 0 end, '{{}}',
                    case when '{status}' = 'pending' then 0 else 1 end,
                    now() - i * interval '1 second', now() - i * interval '1 second',
                    now() - i * interval '1 second', (select id from users limit 1)
             from generate_series(1, {n}) i; analyze"
        ),
    };
    common::exec_sql(db, &sql).await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let backend = Backend::from_args();
    println!("backend: {backend:?}");
    let app = common::TestApp::start_with(
        backend,
        &[
            ("TOKENMETER_DB_MAX_CONNECTIONS", "16"),
            ("TOKENMETER_USAGE_SYNC_AT", "off"),
        ],
    )
    .await;
    let state = app.state.clone();

    // 1. Throughput.
    insert_jobs(&state.db, 10_000, "pending").await;
    let started = Instant::now();
    let workers = (0..4).map(|_| {
        let state = state.clone();
        tokio::spawn(async move {
            let metadata = json!({});
            let mut done = 0u32;
            while let Some(job) = jobs::claim_next(&state, Days::seconds(60)).await.unwrap() {
                let end = End::Completed {
                    metadata: &metadata,
                    result: None,
                };
                assert!(
                    repo::end_attempt(&state.db, job.id, job.attempts, end, now())
                        .await
                        .unwrap()
                );
                done += 1;
            }
            done
        })
    });
    let mut total = 0;
    for w in workers {
        total += w.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(total, 10_000);
    println!(
        "10,000 jobs, 4 workers (claim + complete): {secs:.2} s, {:.0} jobs/s",
        f64::from(total) / secs
    );

    // 2. The admin list with 100,000 jobs stored (the 10,000 above included).
    insert_jobs(&state.db, 60_000, "completed").await;
    insert_jobs(&state.db, 20_000, "failed").await;
    insert_jobs(&state.db, 10_000, "pending").await;
    let count: i64 = with_pool!(&state.db, |p| sqlx::query_scalar(
        "select count(*) from jobs"
    )
    .fetch_one(p)
    .await
    .unwrap());
    println!("jobs stored: {count}");
    let admin = Arc::new(app.admin().await);
    for path in ["/api/admin/jobs", "/api/admin/jobs?status=failed"] {
        let deadline = Instant::now() + Duration::from_secs(5);
        let clients = (0..8).map(|_| {
            let (admin, url) = (admin.clone(), app.url(path));
            tokio::spawn(async move {
                let mut times = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let res = admin.get(&url).send().await.unwrap();
                    assert_eq!(res.status(), 200);
                    let body: serde_json::Value = res.json().await.unwrap();
                    assert_eq!(body["data"]["jobs"].as_array().unwrap().len(), 50);
                    times.push(t.elapsed());
                }
                times
            })
        });
        let started = Instant::now();
        let mut all = Vec::new();
        for c in clients {
            all.extend(c.await.unwrap());
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "GET {path} (first page of 50, with the total), 8 clients: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
            all.len() as f64 / secs,
            common::percentile_ms(&mut all, 50),
            common::percentile_ms(&mut all, 99)
        );
    }
}
