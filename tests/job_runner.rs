//! The job runner on both databases, with the fake LiteLLM's usage reads slowed down at times:
//! a usage sync and a report run to completion, failures are retried with backoff up to the
//! last attempt, a running job is cancelled, a killed worker's job is rescued after its lease
//! and completes exactly once, a shutdown hands a job back, and the daily sync is enqueued
//! once per day by several instances.

#[macro_use]
mod common;

use common::fake_litellm::{metrics, FakeLiteLlm, Unrecorded, MASTER_KEY};
use common::{my_id, Backend, TestApp};
use serde_json::json;
use std::time::{Duration, Instant};
use tokenmeter::api::jobs::JobDto;
use tokenmeter::domain::jobs::{JobInput, JobStatus, JobType};
use tokenmeter::server::jobs::runner::Runner;
use tokenmeter::server::jobs::{self, Created};
use uuid::Uuid;

async fn start(backend: Backend, extra: &[(&str, &str)]) -> (TestApp, FakeLiteLlm) {
    let fake = FakeLiteLlm::start().await;
    // Every user used 3 + 4 tokens on the last day of the range.
    fake.script().unrecorded = Unrecorded::LastDay(metrics(3, 4, 0.0));
    let mut vars = vec![
        ("LITELLM_URL", fake.url.as_str()),
        ("LITELLM_MASTER_KEY", MASTER_KEY),
        ("TOKENMETER_JOB_POLL_MS", "50"),
        ("TOKENMETER_JOB_RETRY_BASE_SECONDS", "0"),
        ("TOKENMETER_USAGE_SYNC_AT", "off"),
        ("TOKENMETER_USAGE_SYNC_CONCURRENCY", "1"),
    ];
    vars.extend_from_slice(extra);
    let app = TestApp::start_with(backend, &vars).await;
    (app, fake)
}

/// Waits until the job satisfies `done` (or fails the test after 20 s).
async fn wait_for(app: &TestApp, id: Uuid, done: impl Fn(&JobDto) -> bool) -> JobDto {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let job = jobs::get_job(&app.state, id).await.unwrap();
        if done(&job) {
            return job;
        }
        assert!(Instant::now() < deadline, "job never got there: {job:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sync_input() -> JobInput {
    JobInput::UsageSync {
        requested_by: None,
        scheduled_for: None,
    }
}

fn report_input(start_date: &str, end_date: &str) -> JobInput {
    JobInput::Report {
        start_date: start_date.into(),
        end_date: end_date.into(),
    }
}

async fn new_job(app: &TestApp, input: JobInput) -> JobDto {
    match jobs::create_job(&app.state, &input, None).await.unwrap() {
        Created::New(job) => job,
        Created::Existing(job) => panic!("exists: {job:?}"),
    }
}

async fn users(app: &TestApp, n: usize) {
    for i in 0..n {
        app.signed_up(&format!("u{i}@example.com")).await;
    }
}

async fn a_usage_sync_and_a_report_run_to_completion(backend: Backend) {
    let (app, fake) = start(backend, &[]).await;
    users(&app, 3).await;
    let runner = Runner::start(&app.state).unwrap();
    let started = Instant::now();
    let job = new_job(&app, sync_input()).await;
    let job = wait_for(&app, job.id, |j| j.status == JobStatus::Completed).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "woken by the enqueue, not a poll"
    );
    assert_eq!(job.progress, 100);
    assert_eq!(job.attempts, 1);
    // Three users and the admin, one read each.
    assert_eq!(job.metadata["summary"]["users"], 4);
    assert_eq!(job.metadata["summary"]["failed"], 0);
    assert_eq!(job.metadata["summary"]["days_written"], 4);
    assert_eq!(fake.reads(), 4);

    let today = chrono::Utc::now().date_naive().to_string();
    let report = new_job(&app, report_input(&today, &today)).await;
    let report = wait_for(&app, report.id, |j| j.status == JobStatus::Completed).await;
    assert!(report.has_result);
    assert_eq!(report.metadata["summary"]["rows"], 4);
    let csv = tokenmeter::server::db::jobs::find_result(&app.db, report.id)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.contains(",u0@example.com,7,3,4,1,"), "{csv}");
    runner.stop().await;
}

async fn a_users_failure_is_in_the_summary_and_the_rest_are_synced(backend: Backend) {
    let (app, fake) = start(backend, &[]).await;
    users(&app, 3).await;
    let bad = app.signed_up("broken@example.com").await;
    let bad_id = my_id(&app, &bad).await;
    fake.script().failing = vec![bad_id.to_string()];
    let runner = Runner::start(&app.state).unwrap();
    let job = new_job(&app, sync_input()).await;
    let job = wait_for(&app, job.id, |j| j.status == JobStatus::Completed).await;
    let summary = &job.metadata["summary"];
    assert_eq!(
        (&summary["users"], &summary["failed"]),
        (&json!(5), &json!(1))
    );
    assert_eq!(summary["days_written"], 4, "the other four were written");
    let failure = &summary["failures"][0];
    assert_eq!(failure["user_id"], bad_id.to_string());
    assert_eq!(failure["email"], "broken@example.com");
    assert!(
        failure["error"].as_str().unwrap().contains("500"),
        "{failure}"
    );
    runner.stop().await;
}

async fn a_sync_in_which_every_user_fails_is_a_failed_job(backend: Backend) {
    let (app, fake) = start(backend, &[]).await;
    users(&app, 2).await;
    fake.script().failing = vec!["*".into()];
    let runner = Runner::start(&app.state).unwrap();
    let job = new_job(&app, sync_input()).await;
    let job = wait_for(&app, job.id, |j| j.status == JobStatus::Failed).await;
    assert_eq!(job.attempts, 3, "retried, then failed");
    let error = job.error.unwrap();
    assert!(error.starts_with("every user's sync failed (3)"), "{error}");
    assert!(error.contains("500"), "{error}");
    runner.stop().await;
}

async fn failures_are_retried_with_backoff_until_the_last_attempt(backend: Backend) {
    let (app, _fake) = start(backend, &[]).await;
    let runner = Runner::start(&app.state).unwrap();
    let job = new_job(&app, report_input("not a date", "2026-11-28")).await;
    let job = wait_for(&app, job.id, |j| j.status == JobStatus::Failed).await;
    assert_eq!(job.attempts, 3, "three attempts, then failed");
    assert!(job.error.unwrap().contains("from must be a date"));
    assert!(job.completed_at.is_some());
    runner.stop().await;
}

/// A usage sync of `users_n` users, each read from a LiteLLM that answers in `delay_ms`,
/// running on a runner of this instance.
async fn slow_sync_running(
    backend: Backend,
    extra: &[(&str, &str)],
    users_n: usize,
    delay_ms: u64,
) -> (TestApp, FakeLiteLlm, Runner, JobDto) {
    let (app, fake) = start(backend, extra).await;
    users(&app, users_n).await;
    fake.script().delay = Duration::from_millis(delay_ms);
    let runner = Runner::start(&app.state).unwrap();
    let job = new_job(&app, sync_input()).await;
    wait_for(&app, job.id, |j| j.status == JobStatus::Running).await;
    (app, fake, runner, job)
}

async fn a_running_job_is_cancelled_on_request(backend: Backend) {
    let (app, fake, runner, job) = slow_sync_running(backend, &[], 5, 300).await;
    let asked = jobs::cancel_job(&app.state, job.id).await.unwrap();
    assert!(asked.cancel_requested);
    let job = wait_for(&app, job.id, |j| j.status == JobStatus::Cancelled).await;
    assert!(fake.reads() < 6, "stopped before syncing everyone");
    assert!(job.completed_at.is_some());
    runner.stop().await;
}

async fn a_killed_workers_job_is_rescued_and_completes_exactly_once(backend: Backend) {
    let lease = [("TOKENMETER_JOB_LEASE_MS", "400")];
    let (app, fake, first, job) = slow_sync_running(backend, &lease, 2, 250).await;
    first.kill(); // the worker dies mid-job: no more heartbeats
    fake.script().delay = Duration::from_millis(0);
    // Another instance on the same database takes over once the lease has run out.
    let other = app.another_instance().await;
    let second = Runner::start(&other.state).unwrap();
    let done = wait_for(&app, job.id, |j| j.status == JobStatus::Completed).await;
    assert_eq!(
        done.attempts, 2,
        "rescued once, completed by the second attempt"
    );
    // Nothing moves it again (the dead worker's attempt cannot write).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after = jobs::get_job(&app.state, job.id).await.unwrap();
    assert_eq!((after.status.as_str(), after.attempts), ("completed", 2));
    assert_eq!(after.completed_at, done.completed_at);
    second.stop().await;
}

/// The job's row is locked by someone else (a long transaction), so its heartbeat cannot be
/// written: the worker gives the job up when its lease runs out (another instance may rescue
/// it then), although the job itself is still waiting for LiteLLM; once the row is free the
/// job is rescued and completed by its second attempt.
async fn a_job_whose_heartbeat_cannot_be_written_is_stopped_within_its_lease(backend: Backend) {
    let one_worker = [
        ("TOKENMETER_JOB_LEASE_MS", "600"),
        ("TOKENMETER_JOB_WORKERS", "1"),
    ];
    // One read of a minute: the job waits for LiteLLM, not for the database.
    let (app, fake, runner, job) = slow_sync_running(backend, &one_worker, 1, 60_000).await;
    let (held, release) = hold_row(&app, job.id).await;
    let locked = Instant::now();
    while fake.dropped() == 0 {
        assert!(
            locked.elapsed() < Duration::from_secs(3),
            "the job still runs without a heartbeat"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopped_after = locked.elapsed();
    assert!(
        stopped_after <= Duration::from_millis(600 + 200 + 300),
        "stopped within its lease (and a heartbeat): {stopped_after:?}"
    );
    release.send(()).unwrap();
    held.await.unwrap();
    fake.script().delay = Duration::from_millis(0);
    let done = wait_for(&app, job.id, |j| j.status == JobStatus::Completed).await;
    assert_eq!(
        done.attempts, 2,
        "rescued once, completed by the second attempt"
    );
    assert_eq!(fake.dropped(), 1);
    runner.stop().await;
}

/// Locks a job's row in a transaction of its own (on SQLite: the database's write lock)
/// until the sender is used; the task ends when the lock is released.
async fn hold_row(
    app: &TestApp,
    id: Uuid,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (locked, is_locked) = tokio::sync::oneshot::channel();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let db = app.db.clone();
    let held = tokio::spawn(async move {
        with_pool!(&db, |pool| {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query("update jobs set updated_at = updated_at where id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .unwrap();
            locked.send(()).unwrap();
            let _ = released.await;
            tx.rollback().await.unwrap();
        })
    });
    is_locked.await.unwrap();
    (held, release)
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The crash test with a real process: `tokenmeter serve` claims a usage sync and is killed
/// with SIGKILL mid-job; this instance's runner rescues the job once its lease has run out and
/// completes it, exactly once.
async fn a_killed_server_process_s_job_is_rescued_by_another_instance(backend: Backend) {
    let lease = [
        ("TOKENMETER_JOB_LEASE_MS", "600"),
        ("TOKENMETER_SECRET", "crash-test-secret"),
    ];
    let (app, fake) = start(backend, &lease).await;
    users(&app, 4).await;
    fake.script().delay = Duration::from_millis(400);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tokenmeter"))
        .arg("serve")
        .env_remove("LLM_BASE_URL")
        .env("DATABASE_URL", app.database_url())
        .env("TOKENMETER_ADDR", format!("127.0.0.1:{port}"))
        .env("TOKENMETER_ADMIN_EMAIL", common::ADMIN_EMAIL)
        .env("TOKENMETER_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
        .env("TOKENMETER_SECRET", "crash-test-secret")
        .env("LITELLM_URL", &fake.url)
        .env("LITELLM_MASTER_KEY", "sk-master")
        .env("TOKENMETER_JOB_LEASE_MS", "600")
        .env("TOKENMETER_JOB_POLL_MS", "50")
        .env("TOKENMETER_USAGE_SYNC_AT", "off")
        .env("TOKENMETER_USAGE_SYNC_CONCURRENCY", "1")
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("start tokenmeter serve");
    // Killed however the test ends.
    let mut child = KillOnDrop(child);
    let job = new_job(&app, sync_input()).await;
    // The other process claims it (this one runs no runner yet).
    let running = wait_for(&app, job.id, |j| j.status == JobStatus::Running).await;
    assert_eq!(running.attempts, 1);
    child.0.kill().expect("SIGKILL");
    child.0.wait().unwrap();
    let read_before = fake.reads();
    assert!(read_before < 4, "killed mid-job, not after it");
    fake.script().delay = Duration::from_millis(0);
    let runner = Runner::start(&app.state).unwrap();
    let done = wait_for(&app, job.id, |j| j.status == JobStatus::Completed).await;
    assert_eq!(
        done.attempts, 2,
        "rescued once, completed by the second attempt"
    );
    assert_eq!(done.metadata["summary"]["users"], 5, "{:?}", done.metadata);
    assert_eq!(done.metadata["summary"]["failed"], 0);
    // Completed exactly once: nothing moves it afterwards.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let after = jobs::get_job(&app.state, job.id).await.unwrap();
    assert_eq!(
        (after.status.as_str(), after.attempts, after.completed_at),
        ("completed", 2, done.completed_at)
    );
    runner.stop().await;
}

async fn a_shutdown_hands_the_job_back(backend: Backend) {
    let (app, fake, runner, job) = slow_sync_running(backend, &[], 5, 300).await;
    runner.stop().await; // SIGTERM: the server stops its runner before closing the database
    let back = jobs::get_job(&app.state, job.id).await.unwrap();
    assert_eq!(back.status, JobStatus::Pending, "{back:?}");
    assert_eq!(back.attempts, 0, "an interrupted attempt does not count");
    assert!(back.error.unwrap().contains("shutdown"));
    fake.script().delay = Duration::from_millis(0);
    let again = Runner::start(&app.state).unwrap();
    let done = wait_for(&app, job.id, |j| j.status == JobStatus::Completed).await;
    assert_eq!(done.attempts, 1);
    again.stop().await;
}

async fn the_daily_sync_is_enqueued_once_by_several_instances(backend: Backend) {
    let (app, _fake) = start(backend, &[("TOKENMETER_USAGE_SYNC_AT", "00:00")]).await;
    let admin = app.admin().await;
    let _ = my_id(&app, &admin).await;
    let other = app.another_instance().await;
    let runners = [
        Runner::start(&app.state).unwrap(),
        Runner::start(&other.state).unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let page = jobs::list_jobs(&app.state, Some(JobType::UsageSync), None, None, 100, 0)
        .await
        .unwrap();
    assert_eq!(page.total, 1, "{:?}", page.jobs);
    let job = wait_for(&app, page.jobs[0].id, |j| j.status == JobStatus::Completed).await;
    assert_eq!(
        job.metadata["scheduled_for"],
        chrono::Utc::now().date_naive().to_string()
    );
    for r in runners {
        r.stop().await;
    }
}

on_both_backends!(
    a_usage_sync_and_a_report_run_to_completion,
    failures_are_retried_with_backoff_until_the_last_attempt,
    a_users_failure_is_in_the_summary_and_the_rest_are_synced,
    a_sync_in_which_every_user_fails_is_a_failed_job,
    a_running_job_is_cancelled_on_request,
    a_killed_workers_job_is_rescued_and_completes_exactly_once,
    a_job_whose_heartbeat_cannot_be_written_is_stopped_within_its_lease,
    a_killed_server_process_s_job_is_rescued_by_another_instance,
    a_shutdown_hands_the_job_back,
    the_daily_sync_is_enqueued_once_by_several_instances,
);

/// Several instances on one PostgreSQL database: a job enqueued on one wakes the idle workers
/// of another at once (`NOTIFY tokenmeter_jobs`), long before their next poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_enqueue_on_one_instance_wakes_another() {
    let slow_poll = [("TOKENMETER_JOB_POLL_MS", "60000")];
    let (app, _fake) = start(Backend::Postgres, &slow_poll).await;
    let other = app.another_instance().await;
    let runner = Runner::start(&other.state).unwrap();
    // Its workers have looked once and now wait (for a minute, or a wake-up); its listener
    // has had time to LISTEN.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let today = chrono::Utc::now().date_naive().to_string();
    let enqueued = Instant::now();
    let job = new_job(&app, report_input(&today, &today)).await;
    wait_for(&app, job.id, |j| j.status == JobStatus::Completed).await;
    assert!(
        enqueued.elapsed() < Duration::from_secs(5),
        "woken by the other instance's NOTIFY, not a poll: {:?}",
        enqueued.elapsed()
    );
    runner.stop().await;
}
