//! A real `tokenmeter serve` process is sent SIGTERM while a reply streams: it stops within its
//! grace, the reply is cut and recorded (usage, messages, the reservation settled), and the
//! client is told why. On SQLite and PostgreSQL.

#[macro_use]
mod common;

use common::{Backend, TestApp};
use serde_json::json;
use std::time::{Duration, Instant};

on_both_backends!(a_shutdown_cuts_streaming_replies_and_records_them);

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn a_shutdown_cuts_streaming_replies_and_records_them(backend: Backend) {
    // This process's server only made the database; the real binary serves on it.
    let app = TestApp::start(backend).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tokenmeter"))
        .arg("serve")
        .env_remove("LITELLM_URL")
        .env_remove("LLM_BASE_URL")
        .env("DATABASE_URL", app.database_url())
        .env("TOKENMETER_ADDR", format!("127.0.0.1:{port}"))
        .env("TOKENMETER_ADMIN_EMAIL", common::ADMIN_EMAIL)
        .env("TOKENMETER_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
        .env("TOKENMETER_SIGNUP", "open")
        // A long reply (about 15 s) and a short grace.
        .env("TOKENMETER_DEMO_DELAY_MS", "100")
        .env("TOKENMETER_SHUTDOWN_GRACE_SECONDS", "3")
        .env("TOKENMETER_JOB_WORKERS", "0")
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("start tokenmeter serve");
    let mut child = KillOnDrop(child);
    let probe = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..200 {
        if probe
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the server started");
    let alice = common::sign_up(&base, "alice@example.com").await;
    let (_, me) = common::read(
        alice
            .get(format!("{base}/api/auth/me"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let alice_id: uuid::Uuid = me["data"]["id"].as_str().unwrap().parse().unwrap();
    let res = alice
        .post(format!("{base}/api/chat/completions"))
        .json(&json!({"model": "demo", "stream": true,
                      "messages": [{"role": "user", "content": "a long answer, please"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();
    let mut received = common::read_at_least(&mut body, 1_000).await;

    let asked = Instant::now();
    let pid = child.0.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    // The client reads to the end: the reply is cut with a reason, and said to be recorded.
    common::read_to_end(&mut body, &mut received).await;
    let exited = tokio::task::spawn_blocking(move || {
        let status = child.0.wait().unwrap();
        (status, child)
    })
    .await
    .unwrap();
    let took = asked.elapsed();
    assert!(exited.0.success(), "exit status {:?}", exited.0);
    assert!(
        took < Duration::from_secs(8),
        "stopped within its grace (3 s) and the recording: {took:?}"
    );
    let events = common::sse_events(&received);
    let end = events
        .iter()
        .find(|e| e.get("error").is_some())
        .unwrap_or_else(|| panic!("an error event ends the reply: {:?}", events.last()));
    assert_eq!(end["status"], "interrupted", "{end}");
    assert_eq!(end["recorded"], true, "{end}");
    assert!(
        end["error"]["message"]
            .as_str()
            .unwrap()
            .contains("restarting"),
        "{end}"
    );

    // Stored: usage, the reply with what arrived, no reservation left.
    let (status, kept, completion): (String, bool, i64) = with_pool!(&app.db, |p| sqlx::query_as(
        "select status, messages_kept, completion_tokens from usage_records where user_id = $1"
    )
    .bind(alice_id)
    .fetch_one(p)
    .await)
    .unwrap();
    assert_eq!((status.as_str(), kept), ("interrupted", true));
    assert!(completion > 0);
    let days = common::usage_days(&app, alice_id).await;
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].requests_count, 1);
    let held: i64 = with_pool!(&app.db, |p| sqlx::query_scalar(
        "select count(*) from quota_reservations where user_id = $1"
    )
    .bind(alice_id)
    .fetch_one(p)
    .await)
    .unwrap();
    assert_eq!(held, 0, "settled");
}
