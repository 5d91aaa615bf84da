//! The jobs API through the real router on both databases: a user's own jobs, admins' lists,
//! the usage sync (never two at once), reports and their download, cancellation, and the
//! 400 / 403 / 404 / 409 answers.

#[macro_use]
mod common;

use common::{assert_error, my_id, Backend, TestApp};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokenmeter::domain::jobs::JobInput;
use tokenmeter::server::jobs::{self, runner::Runner, Created};
use uuid::Uuid;

/// The app, with a LiteLLM proxy configured to sync usage from (never reached: no usage sync
/// runs in these tests) or the demo model.
async fn start(backend: Backend, litellm: bool) -> TestApp {
    let mut vars = vec![
        ("TOKENMETER_JOB_POLL_MS", "50"),
        ("TOKENMETER_USAGE_SYNC_AT", "off"),
    ];
    if litellm {
        vars.extend([
            ("LITELLM_URL", "http://127.0.0.1:9"),
            ("LITELLM_MASTER_KEY", "sk-unused"),
        ]);
    }
    TestApp::start_with(backend, &vars).await
}

async fn job_of(app: &TestApp, user: Uuid) -> Uuid {
    let today = chrono::Utc::now().date_naive().to_string();
    let input = JobInput::Report {
        start_date: today.clone(),
        end_date: today,
    };
    match jobs::create_job(&app.state, &input, Some(user))
        .await
        .unwrap()
    {
        Created::New(job) => job.id,
        Created::Existing(_) => unreachable!(),
    }
}

async fn a_users_own_jobs_and_nobody_elses(backend: Backend) {
    let app = start(backend, false).await;
    let alice = app.signed_up("alice@example.com").await;
    let bob = app.signed_up("bob@example.com").await;
    let alice_id = my_id(&app, &alice).await;
    let job = job_of(&app, alice_id).await;

    let (status, body) = app.get(&alice, "/api/jobs").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"][0]["type"], "report_generation");
    assert_eq!(body["data"][0]["status"], "pending");
    let (_, body) = app.get(&alice, "/api/jobs?type=usage_sync").await;
    assert_eq!(body["data"].as_array().unwrap().len(), 0);
    let (_, body) = app
        .get(&alice, "/api/jobs?status=pending&type=report_generation")
        .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    let (status, body) = app.get(&alice, &format!("/api/jobs/{job}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["id"], job.to_string());

    // Bob: not his.
    let (_, body) = app.get(&bob, "/api/jobs").await;
    assert_eq!(body["data"].as_array().unwrap().len(), 0);
    let (status, body) = app.get(&bob, &format!("/api/jobs/{job}")).await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app.delete(&bob, &format!("/api/jobs/{job}")).await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app.get(&app.client(), "/api/jobs").await;
    assert_error(status, &body, 401, "unauthorized");

    // Bad input names the valid values.
    let (status, body) = app.get(&alice, "/api/jobs?type=sync").await;
    let message = assert_error(status, &body, 400, "validation");
    assert!(
        message.contains("usage_sync, document_processing, report_generation"),
        "{message}"
    );
    let (status, body) = app.get(&alice, "/api/jobs?status=done").await;
    let message = assert_error(status, &body, 400, "validation");
    assert!(
        message.contains("pending, running, completed, failed, cancelled"),
        "{message}"
    );
    let (status, body) = app.get(&alice, "/api/jobs/not-a-uuid").await;
    assert_error(status, &body, 400, "validation");

    // Cancel: pending -> cancelled; again -> 409.
    let (status, body) = app.delete(&alice, &format!("/api/jobs/{job}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "cancelled");
    let (status, body) = app.delete(&alice, &format!("/api/jobs/{job}")).await;
    let message = assert_error(status, &body, 409, "conflict");
    assert!(message.contains("cancelled"), "{message}");
}

async fn admins_list_start_and_cancel(backend: Backend) {
    let app = start(backend, true).await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice@example.com").await;
    let alice_id = my_id(&app, &alice).await;
    for _ in 0..3 {
        job_of(&app, alice_id).await;
    }
    // A usage sync: 202, then the same one with 200 while it is pending.
    let (status, first) = app
        .post(&admin, "/api/admin/jobs/usage-sync", json!({}))
        .await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["data"]["type"], "usage_sync");
    let (status, again) = app
        .post(&admin, "/api/admin/jobs/usage-sync", json!({}))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["data"]["id"], first["data"]["id"]);
    let (status, body) = app
        .post(&admin, "/api/admin/jobs", json!({"type": "usage_sync"}))
        .await;
    assert_eq!((status, &body["data"]["id"]), (200, &first["data"]["id"]));
    let (status, body) = app
        .post(
            &admin,
            "/api/admin/jobs",
            json!({"type": "document_processing"}),
        )
        .await;
    let message = assert_error(status, &body, 400, "validation");
    assert!(message.contains("unsupported job type"), "{message}");
    let (status, body) = app
        .post(&admin, "/api/admin/jobs", json!({"type": "x"}))
        .await;
    assert_error(status, &body, 400, "validation");

    // The list: newest first, filtered, paginated.
    let (status, page) = app.get(&admin, "/api/admin/jobs").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"]["total"], 4);
    assert_eq!(page["data"]["jobs"][0]["type"], "usage_sync");
    assert_eq!(page["data"]["jobs"][0]["user_email"], "admin@example.com");
    assert_eq!(page["data"]["jobs"][1]["user_email"], "alice@example.com");
    assert_eq!(page["data"]["active_usage_sync"], first["data"]["id"]);
    assert_eq!(page["data"]["usage_sync_available"], true);
    let (_, page) = app
        .get(
            &admin,
            &format!("/api/admin/jobs?type=report_generation&user_id={alice_id}&limit=2"),
        )
        .await;
    assert_eq!(page["data"]["total"], 3);
    assert_eq!(page["data"]["jobs"].as_array().unwrap().len(), 2);
    let (_, page) = app
        .get(
            &admin,
            "/api/admin/jobs?type=report_generation&limit=2&offset=2",
        )
        .await;
    assert_eq!(page["data"]["jobs"].as_array().unwrap().len(), 1);
    // The sync under way is named whatever the filter shows.
    assert_eq!(page["data"]["active_usage_sync"], first["data"]["id"]);
    for bad in [
        "limit=0",
        "limit=501",
        "offset=-1",
        "user_id=nope",
        "status=late",
        "sort=asc",
    ] {
        let (status, body) = app.get(&admin, &format!("/api/admin/jobs?{bad}")).await;
        assert_error(status, &body, 400, "validation");
    }
    let (status, body) = app.get(&alice, "/api/admin/jobs").await;
    assert_error(status, &body, 403, "forbidden");
    // Without a LiteLLM proxy there is nothing to sync from: 409, no job.
    let bare = start(backend, false).await;
    let bare_admin = bare.admin().await;
    let (status, body) = bare
        .post(&bare_admin, "/api/admin/jobs/usage-sync", json!({}))
        .await;
    let message = assert_error(status, &body, 409, "conflict");
    assert!(message.contains("LITELLM_URL"), "{message}");
    let (_, page) = bare.get(&bare_admin, "/api/admin/jobs").await;
    assert_eq!(
        (
            &page["data"]["total"],
            &page["data"]["usage_sync_available"]
        ),
        (&json!(0), &json!(false))
    );
    let (status, body) = app
        .post(&alice, "/api/admin/jobs/usage-sync", json!({}))
        .await;
    assert_error(status, &body, 403, "forbidden");

    // Cancel any job; unknown 404; finished 409.
    let id = first["data"]["id"].as_str().unwrap();
    let (status, body) = app.delete(&admin, &format!("/api/admin/jobs/{id}")).await;
    assert_eq!(
        (status, body["data"]["status"].as_str()),
        (200, Some("cancelled"))
    );
    let (status, body) = app.delete(&admin, &format!("/api/admin/jobs/{id}")).await;
    assert_error(status, &body, 409, "conflict");
    let (status, body) = app
        .delete(&admin, &format!("/api/admin/jobs/{}", Uuid::new_v4()))
        .await;
    assert_error(status, &body, 404, "not_found");
    // With the first one finished, a new sync may start.
    let (_, page) = app.get(&admin, "/api/admin/jobs").await;
    assert_eq!(page["data"]["active_usage_sync"], Value::Null);
    let (status, _) = app
        .post(&admin, "/api/admin/jobs/usage-sync", json!({}))
        .await;
    assert_eq!(status, 202);
}

async fn a_report_is_made_in_the_background_and_downloaded(backend: Backend) {
    let app = start(backend, false).await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice@example.com").await;
    let (status, _) = app
        .post(
            &alice,
            "/api/chat/completions",
            json!({"model": "demo", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(status, 200);
    let today = chrono::Utc::now().date_naive();
    for (body, want) in [
        (
            json!({"start_date": "2026-13-01", "end_date": "2026-11-28"}),
            "start",
        ),
        (
            json!({"start_date": "2026-11-28", "end_date": "2026-11-01"}),
            "must not be after",
        ),
        (
            json!({"start_date": "2020-01-01", "end_date": "2026-01-01"}),
            "at most 366",
        ),
        (json!({"start_date": "2026-11-01"}), "end_date"),
    ] {
        let (status, answer) = app.post(&admin, "/api/admin/jobs/report", body).await;
        let message = assert_error(status, &answer, 400, "validation");
        assert!(message.contains(want), "{message}");
    }
    let (status, job) = app
        .post(
            &admin,
            "/api/admin/jobs/report",
            json!({"start_date": today.to_string(), "end_date": today.to_string()}),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let id = job["data"]["id"].as_str().unwrap().to_string();
    // Not done yet: 409.
    let (status, body) = app
        .get(&admin, &format!("/api/admin/jobs/{id}/result"))
        .await;
    assert_error(status, &body, 409, "conflict");

    let runner = Runner::start(&app.state).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let done: Value = loop {
        let (_, body) = app.get(&admin, &format!("/api/admin/jobs/{id}")).await;
        if body["data"]["status"] == "completed" {
            break body;
        }
        assert!(Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done["data"]["progress"], 100);
    assert_eq!(done["data"]["has_result"], true);
    let res = admin
        .get(app.url(&format!("/api/admin/jobs/{id}/result")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = res.text().await.unwrap();
    assert!(csv.starts_with("date,email,"), "{csv}");
    assert!(csv.contains(",alice@example.com,"), "{csv}");
    let (status, body) = app
        .get(&alice, &format!("/api/admin/jobs/{id}/result"))
        .await;
    assert_error(status, &body, 403, "forbidden");
    runner.stop().await;
}

/// The next `jobs` event's data from a server-sent event stream.
async fn next_event(
    body: &mut (impl futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>> + Unpin),
    text: &mut String,
) -> Value {
    use futures_util::StreamExt;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            if event.contains("event: jobs") {
                let data = event
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .unwrap()
                    .to_string();
                return serde_json::from_str::<Value>(&data).unwrap();
            }
            continue;
        }
        assert!(Instant::now() < deadline, "no event: {text}");
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
}

async fn the_events_stream_sends_the_list_and_its_changes(backend: Backend) {
    let app = start(backend, true).await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice@example.com").await;
    let (status, body) = app.get(&alice, "/api/admin/jobs/events").await;
    assert_error(status, &body, 403, "forbidden");
    for bad in ["type=nope", "offset=-50", "offset=x", "limit=5"] {
        let (status, body) = app
            .get(&admin, &format!("/api/admin/jobs/events?{bad}"))
            .await;
        assert_error(status, &body, 400, "validation");
    }

    let res = admin
        .get(app.url("/api/admin/jobs/events?type=usage_sync"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut body = res.bytes_stream();
    let mut text = String::new();
    let first = next_event(&mut body, &mut text).await;
    assert_eq!(first["total"], 0);
    // A new job shows up in the next event, within about a second.
    let (status, _) = app
        .post(&admin, "/api/admin/jobs/usage-sync", json!({}))
        .await;
    assert_eq!(status, 202);
    let second = next_event(&mut body, &mut text).await;
    assert_eq!(second["total"], 1);
    assert_eq!(second["jobs"][0]["status"], "pending");
    // A later page of the same filter: past the one job, empty, same total.
    let res = admin
        .get(app.url("/api/admin/jobs/events?type=usage_sync&offset=50"))
        .send()
        .await
        .unwrap();
    let mut later = res.bytes_stream();
    let page = next_event(&mut later, &mut String::new()).await;
    assert_eq!(
        (page["total"].as_i64(), page["offset"].as_i64()),
        (Some(1), Some(50))
    );
    assert_eq!(page["jobs"].as_array().map(Vec::len), Some(0));
    drop(later);
    // Logging out ends a stream within about a second.
    let res = admin
        .get(app.url("/api/admin/jobs/events"))
        .send()
        .await
        .unwrap();
    let mut other = res.bytes_stream();
    next_event(&mut other, &mut String::new()).await;
    let other_admin = app.admin().await;
    let (status, _) = app.post(&admin, "/api/auth/logout", json!({})).await;
    assert!(status == 200 || status == 204, "log-out: {status}");
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        use futures_util::StreamExt;
        while let Some(chunk) = other.next().await {
            chunk.unwrap();
        }
    })
    .await;
    assert!(end.is_ok(), "the stream went on after the log-out");
    // Shutting down ends the stream (a graceful shutdown does not wait for it forever).
    let res = other_admin
        .get(app.url("/api/admin/jobs/events?type=usage_sync"))
        .send()
        .await
        .unwrap();
    let mut body = res.bytes_stream();
    next_event(&mut body, &mut String::new()).await;
    app.state.jobs.close();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        use futures_util::StreamExt;
        while let Some(chunk) = body.next().await {
            chunk.unwrap();
        }
    })
    .await;
    assert!(end.is_ok(), "the stream went on after close");
}

on_both_backends!(
    the_events_stream_sends_the_list_and_its_changes,
    a_users_own_jobs_and_nobody_elses,
    admins_list_start_and_cancel,
    a_report_is_made_in_the_background_and_downloaded,
);
