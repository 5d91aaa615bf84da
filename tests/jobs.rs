//! The job service on both databases: each job claimed exactly once by concurrent claimers,
//! moves guarded by the state and attempt they expect, cancellation, lease rescue, cleanup.

#[macro_use]
mod common;

use chrono::Duration;
use common::{Backend, TestApp};
use serde_json::json;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokenmeter::api::error::ErrorCode;
use tokenmeter::domain::jobs::{JobInput, JobStatus, JobType};
use tokenmeter::server::db::jobs::{self as repo, End, NewJob};
use tokenmeter::server::db::now;
use tokenmeter::server::error::Error;
use tokenmeter::server::jobs::{self, Created};
use uuid::Uuid;

async fn insert(app: &TestApp, kind: JobType) -> Uuid {
    let metadata = json!({});
    let t = now();
    let row = repo::insert(
        &app.db,
        &NewJob {
            id: Uuid::new_v4(),
            kind,
            user_id: None,
            metadata: &metadata,
            max_attempts: 2,
            run_at: t,
            dedupe_key: None,
            now: t,
        },
    )
    .await
    .unwrap()
    .expect("inserted");
    row.id
}

/// A LiteLLM proxy configured but never reached (the tests here run no jobs).
fn litellm_nowhere() -> [(&'static str, &'static str); 2] {
    [
        ("LITELLM_URL", "http://127.0.0.1:9"),
        ("LITELLM_MASTER_KEY", "sk-unused"),
    ]
}

fn code(err: Error) -> ErrorCode {
    match err {
        Error::App(e) => e.code,
        other => panic!("not a client error: {other}"),
    }
}

async fn eight_claimers_take_each_of_1000_jobs_exactly_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    for _ in 0..1000 {
        insert(&app, JobType::ReportGeneration).await;
    }
    let claimed = Arc::new(Mutex::new(Vec::new()));
    let claimers = (0..8).map(|_| {
        let (state, claimed) = (app.state.clone(), claimed.clone());
        tokio::spawn(async move {
            let mut mine = 0;
            while let Some(job) = jobs::claim_next(&state, Duration::seconds(60))
                .await
                .unwrap()
            {
                assert_eq!(job.status, JobStatus::Running);
                assert_eq!(job.attempts, 1);
                let metadata = json!({"by": "test"});
                let ended = repo::end_attempt(
                    &state.db,
                    job.id,
                    job.attempts,
                    End::Completed {
                        metadata: &metadata,
                        result: None,
                    },
                    now(),
                )
                .await
                .unwrap();
                assert!(ended, "the attempt was this claimer's");
                claimed.lock().unwrap().push(job.id);
                mine += 1;
            }
            mine
        })
    });
    let per_claimer: Vec<usize> = futures_util::future::join_all(claimers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let claimed = claimed.lock().unwrap().clone();
    let distinct: HashSet<Uuid> = claimed.iter().copied().collect();
    assert_eq!(claimed.len(), 1000, "claims: {per_claimer:?}");
    assert_eq!(distinct.len(), 1000, "a job was claimed twice");
    assert!(
        per_claimer.iter().filter(|n| **n > 0).count() >= 2,
        "the claimers worked side by side: {per_claimer:?}"
    );
    let page = jobs::list_jobs(&app.state, None, Some(JobStatus::Completed), None, 500, 0)
        .await
        .unwrap();
    assert_eq!(page.total, 1000);
}

async fn moves_follow_the_state_machine_and_the_attempt(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = &app.state;
    let id = insert(&app, JobType::ReportGeneration).await;
    // pending -> completed is not a move.
    let err = jobs::update_job_status(s, id, JobStatus::Completed, None, None)
        .await
        .unwrap_err();
    assert_eq!(code(err), ErrorCode::Conflict);
    // Claimed: running, attempt 1.
    let job = jobs::claim_next(s, Duration::seconds(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((job.id, job.attempts), (id, 1));
    assert!(jobs::claim_next(s, Duration::seconds(60))
        .await
        .unwrap()
        .is_none());
    // Progress and the end need the right attempt.
    assert!(repo::set_progress(&s.db, id, 1, 40, now()).await.unwrap());
    assert!(!repo::set_progress(&s.db, id, 2, 50, now()).await.unwrap());
    assert!(!repo::end_attempt(&s.db, id, 2, End::Cancelled, now())
        .await
        .unwrap());
    assert_eq!(jobs::get_job(s, id).await.unwrap().progress, 40);
    // A retry: pending again, later.
    let later = now() + Duration::seconds(30);
    assert!(repo::end_attempt(
        &s.db,
        id,
        1,
        End::Retry {
            error: "boom",
            run_at: later
        },
        now()
    )
    .await
    .unwrap());
    let job = jobs::get_job(s, id).await.unwrap();
    assert_eq!((job.status.as_str(), job.progress), ("pending", 0));
    assert_eq!(job.error.as_deref(), Some("boom"));
    assert!(
        jobs::claim_next(s, Duration::seconds(60))
            .await
            .unwrap()
            .is_none(),
        "not due yet"
    );
    // Through the service: running -> failed with an error; then nothing moves it.
    jobs::update_job_status(s, id, JobStatus::Cancelled, None, None)
        .await
        .unwrap();
    for to in [JobStatus::Pending, JobStatus::Running, JobStatus::Completed] {
        let err = jobs::update_job_status(s, id, to, None, None)
            .await
            .unwrap_err();
        assert_eq!(code(err), ErrorCode::Conflict, "cancelled -> {to}");
    }
    let err = jobs::update_job_status(s, Uuid::new_v4(), JobStatus::Failed, None, None)
        .await
        .unwrap_err();
    assert_eq!(code(err), ErrorCode::NotFound);
}

async fn cancelling_depends_on_where_the_job_is(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = &app.state;
    let pending = insert(&app, JobType::ReportGeneration).await;
    let job = jobs::cancel_job(s, pending).await.unwrap();
    assert_eq!(job.status, JobStatus::Cancelled);
    assert!(job.completed_at.is_some());
    assert_eq!(
        code(jobs::cancel_job(s, pending).await.unwrap_err()),
        ErrorCode::Conflict
    );

    let running = insert(&app, JobType::ReportGeneration).await;
    let claimed = jobs::claim_next(s, Duration::seconds(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, running);
    let job = jobs::cancel_job(s, running).await.unwrap();
    assert_eq!(
        (job.status.as_str(), job.cancel_requested),
        ("running", true)
    );
    // The worker hears it on its next heartbeat, and ends the attempt cancelled.
    let heard = repo::heartbeat(&s.db, running, 1, now() + Duration::seconds(60), now())
        .await
        .unwrap();
    assert_eq!(heard, Some(true));
    assert!(repo::end_attempt(&s.db, running, 1, End::Cancelled, now())
        .await
        .unwrap());
    assert_eq!(
        jobs::get_job(s, running).await.unwrap().status,
        JobStatus::Cancelled
    );
    // A lost attempt hears nothing.
    assert_eq!(
        repo::heartbeat(&s.db, running, 1, now(), now())
            .await
            .unwrap(),
        None
    );
}

async fn expired_leases_are_rescued_and_old_jobs_cleaned_up(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = &app.state;
    let id = insert(&app, JobType::ReportGeneration).await; // two attempts
    let first = jobs::claim_next(s, Duration::milliseconds(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.id, id);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(repo::rescue_expired(&s.db, now()).await.unwrap(), 1);
    let job = jobs::get_job(s, id).await.unwrap();
    assert_eq!(job.status, JobStatus::Pending);
    assert!(job.error.unwrap().contains("lease expired"));
    // The dead worker's attempt can no longer write.
    assert!(!repo::end_attempt(&s.db, id, 1, End::Cancelled, now())
        .await
        .unwrap());
    // The second (last) attempt dies too: failed.
    let second = jobs::claim_next(s, Duration::milliseconds(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.attempts, 2);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(repo::rescue_expired(&s.db, now()).await.unwrap(), 1);
    let job = jobs::get_job(s, id).await.unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.error.unwrap().contains("last attempt"));

    // Cleanup removes finished jobs older than the retention, nothing else.
    let pending = insert(&app, JobType::ReportGeneration).await;
    assert_eq!(jobs::cleanup_old_jobs(s, 1).await.unwrap(), 0);
    assert_eq!(jobs::cleanup_old_jobs(s, -1).await.unwrap(), 1);
    assert_eq!(
        code(jobs::get_job(s, id).await.unwrap_err()),
        ErrorCode::NotFound
    );
    assert_eq!(
        jobs::get_job(s, pending).await.unwrap().status,
        JobStatus::Pending
    );
}

fn sync_input() -> JobInput {
    JobInput::UsageSync {
        requested_by: None,
        scheduled_for: None,
    }
}

fn report_input() -> JobInput {
    JobInput::Report {
        start_date: "2026-11-01".into(),
        end_date: "2026-11-28".into(),
    }
}

async fn one_usage_sync_at_a_time_and_no_unsupported_types(backend: Backend) {
    // Without LiteLLM there is nothing to sync from: 409, nothing stored.
    let bare = TestApp::start(backend).await;
    let err = jobs::create_job(&bare.state, &sync_input(), None)
        .await
        .err()
        .unwrap();
    assert_eq!(code(err), ErrorCode::Conflict);
    let page = jobs::list_jobs(&bare.state, None, None, None, 10, 0)
        .await
        .unwrap();
    assert_eq!((page.total, page.usage_sync_available), (0, false));

    // With a proxy configured (never called here: no runner runs the jobs).
    let app = TestApp::start_with(backend, &litellm_nowhere()).await;
    let s = &app.state;
    let first = match jobs::create_job(s, &sync_input(), None).await.unwrap() {
        Created::New(job) => job,
        Created::Existing(_) => panic!("the first is new"),
    };
    match jobs::create_job(s, &sync_input(), None).await.unwrap() {
        Created::Existing(job) => assert_eq!(job.id, first.id),
        Created::New(_) => panic!("two usage syncs at once"),
    }
    // Once it has finished, a new one may start.
    jobs::cancel_job(s, first.id).await.unwrap();
    assert!(matches!(
        jobs::create_job(s, &sync_input(), None).await.unwrap(),
        Created::New(_)
    ));
    let err = jobs::create_job(s, &JobInput::DocumentProcessing {}, None)
        .await
        .err()
        .unwrap();
    assert_eq!(code(err), ErrorCode::Validation);
    // A dedupe key is used once.
    let key = Some("report:2026-11-28");
    assert!(matches!(
        jobs::create_job_with(s, &report_input(), None, key, 1)
            .await
            .unwrap(),
        Created::New(_)
    ));
    let err = jobs::create_job_with(s, &report_input(), None, key, 1)
        .await
        .err()
        .unwrap();
    assert_eq!(code(err), ErrorCode::Conflict);
    let pending = jobs::get_pending_jobs(s, JobType::ReportGeneration)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
}

on_both_backends!(
    eight_claimers_take_each_of_1000_jobs_exactly_once,
    moves_follow_the_state_machine_and_the_attempt,
    cancelling_depends_on_where_the_job_is,
    expired_leases_are_rescued_and_old_jobs_cleaned_up,
    one_usage_sync_at_a_time_and_no_unsupported_types,
    the_claim_leaves_types_without_a_handler_alone,
);

/// A job of a type the runner cannot do (written behind the service's back, which refuses to
/// create one) is never claimed; a job due after it still is.
async fn the_claim_leaves_types_without_a_handler_alone(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = &app.state;
    assert!(!JobType::DocumentProcessing.has_handler());
    let reserved = insert(&app, JobType::DocumentProcessing).await;
    let report = insert(&app, JobType::ReportGeneration).await;
    let claimed = jobs::claim_next(s, Duration::seconds(60))
        .await
        .unwrap()
        .expect("the report is claimed");
    assert_eq!(
        (claimed.id, claimed.kind),
        (report, JobType::ReportGeneration)
    );
    assert!(jobs::claim_next(s, Duration::seconds(60))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        jobs::get_job(s, reserved).await.unwrap().status,
        JobStatus::Pending
    );
}
