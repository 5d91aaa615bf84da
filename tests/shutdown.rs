//! A real `tokenmeter serve` process is sent SIGTERM while a reply streams: it stops within its
//! grace, the reply is cut and recorded (usage, messages, the reservation settled), and the
//! client is told why. Another is killed (`kill -9`) in the middle of 50 streams and started
//! again: nothing is half-written, no reservation outlives its expiry, completed replies are
//! intact. On SQLite and PostgreSQL.

#[macro_use]
mod common;

use common::{Backend, TestApp};
use serde_json::json;
use std::time::{Duration, Instant};

on_both_backends!(
    a_shutdown_cuts_streaming_replies_and_records_them,
    a_kill_9_mid_stream_leaves_nothing_half_written,
);

/// A PostgreSQL cluster of this test's own (scripts/pg-cluster.sh), removed on drop.
struct Cluster {
    dir: std::path::PathBuf,
    port: u16,
}

impl Cluster {
    fn script(args: &[&str]) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-cluster.sh");
        let status = std::process::Command::new(script)
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "pg-cluster.sh {args:?}");
    }
    fn init() -> Cluster {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::path::PathBuf::from(format!("/var/tmp/tokenmeter-restart-{port}"));
        Self::script(&["init", dir.to_str().unwrap(), &port.to_string()]);
        Cluster { dir, port }
    }
    fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }
    fn stop(&self) {
        Self::script(&["stop", self.dir.to_str().unwrap()]);
    }
    fn start(&self) {
        Self::script(&["start", self.dir.to_str().unwrap(), &self.port.to_string()]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        Self::script(&["destroy", self.dir.to_str().unwrap()]);
    }
}

/// PostgreSQL stopped for a few seconds while users chat: `/readyz` says 503 meanwhile, the
/// server reconnects by itself when the database is back, and every reply a client was given
/// is recorded once (a reply ending during the outage is recorded when the database returns).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_the_app_reconnects_and_loses_nothing() {
    let cluster = Cluster::init();
    let url = cluster.url();
    let server = common::ServerProcess::spawn(
        &url,
        &[
            ("TOKENMETER_DEMO_DELAY_MS", "10"),
            ("TOKENMETER_SIGNUP", "open"),
        ],
    )
    .await;
    let base = server.base.clone();
    let mut clients = Vec::new();
    for i in 0..8 {
        clients.push(common::sign_up(&base, &format!("restart{i}@example.com")).await);
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let senders: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, client)| {
            let (client, base, stop) = (client.clone(), base.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut answered, mut tokens, mut refused) = (0i64, 0i64, 0i64);
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    let res = client
                        .post(format!("{base}/api/chat/completions"))
                        .json(&json!({"model": "demo", "max_tokens": 20,
                                      "messages": [{"role": "user", "content": format!("restart {i} {n}")}]}))
                        .timeout(Duration::from_secs(150))
                        .send()
                        .await;
                    match res {
                        Ok(res) if res.status() == 200 => {
                            let body: serde_json::Value = res.json().await.unwrap();
                            answered += 1;
                            tokens += body["usage"]["total_tokens"].as_i64().unwrap();
                        }
                        // Refused while the database is away: 503, never a 500.
                        Ok(res) => {
                            let status = res.status().as_u16();
                            assert_eq!(status, 503, "{}", res.text().await.unwrap_or_default());
                            refused += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(_) => {
                            refused += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                (answered, tokens, refused)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let ready = |probe: reqwest::Client, base: String| async move {
        probe
            .get(format!("{base}/readyz"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    assert_eq!(ready(probe.clone(), base.clone()).await, 200);
    cluster.stop();
    let mut seen_503 = false;
    for _ in 0..20 {
        if ready(probe.clone(), base.clone()).await == 503 {
            seen_503 = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(seen_503, "/readyz says 503 while the database is away");
    // A new send meanwhile is refused with 503 once the pool gives up waiting (5 s); the
    // senders' replies that end meanwhile are recorded by the retry once the database is back
    // (their clients wait for that).
    let res = clients[0]
        .post(format!("{base}/api/chat/completions"))
        .json(&json!({"model": "demo", "messages": [{"role": "user", "content": "now?"}]}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body = res.text().await.unwrap();
    assert_eq!(status, 503, "a send while the database is away: {body}");
    assert!(body.contains("try again"), "{body}");
    cluster.start();
    let back = Instant::now();
    while ready(probe.clone(), base.clone()).await != 200 {
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "the app reconnected"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let reconnected_in = back.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut answered, mut tokens, mut refused) = (0, 0, 0);
    for sender in senders {
        let (a, t, r) = sender.await.unwrap();
        answered += a;
        tokens += t;
        refused += r;
    }
    // (Senders wait through the outage in their replies' record retry, so they may see no
    // refusal themselves: the send above is the one refused.)
    assert!(answered > 0, "answered {answered}, refused {refused}");
    // Every reply given is recorded, once, and the days add up to it.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let (calls, call_tokens): (i64, i64) = sqlx::query_as(
        "select count(*), cast(coalesce(sum(prompt_tokens + completion_tokens), 0) as bigint)
         from usage_records",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let (day_requests, day_tokens): (i64, i64) = sqlx::query_as(
        "select cast(coalesce(sum(requests_count), 0) as bigint),
                cast(coalesce(sum(tokens_used), 0) as bigint) from usage_history",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (calls, call_tokens),
        (answered, tokens),
        "every reply given recorded once"
    );
    assert_eq!((day_requests, day_tokens), (calls, call_tokens));
    pool.close().await;
    eprintln!(
        "postgres restart: {answered} replies given and recorded, {refused} refused during the \
         outage, /readyz 200 again {reconnected_in:?} after the database"
    );
}

async fn a_shutdown_cuts_streaming_replies_and_records_them(backend: Backend) {
    // This process's server only made the database; the real binary serves on it.
    let app = TestApp::start(backend).await;
    let mut child = common::ServerProcess::spawn(
        app.database_url(),
        &[
            ("TOKENMETER_SIGNUP", "open"),
            // A long reply (about 15 s) and a short grace.
            ("TOKENMETER_DEMO_DELAY_MS", "100"),
            ("TOKENMETER_SHUTDOWN_GRACE_SECONDS", "3"),
        ],
    )
    .await;
    let base = child.base.clone();
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
    let pid = child.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    // The client reads to the end: the reply is cut with a reason, and said to be recorded.
    common::read_to_end(&mut body, &mut received).await;
    let exited = tokio::task::spawn_blocking(move || {
        let status = child.child.wait().unwrap();
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

async fn a_kill_9_mid_stream_leaves_nothing_half_written(backend: Backend) {
    let app = TestApp::start(backend).await;
    // 20 ms a token: a whole reply takes some 3 s, a 5-token one 0.1 s. Reservations last 3 s.
    let env = [
        ("TOKENMETER_DEMO_DELAY_MS", "20"),
        ("TOKENMETER_RESERVATION_TTL_SECONDS", "3"),
    ];
    let mut server = common::ServerProcess::spawn(app.database_url(), &env).await;
    let base = server.base.clone();
    let mut users = Vec::new();
    for i in 0..10 {
        let user = tokenmeter::server::accounts::create_user(
            &app.db,
            &format!("crash{i}@example.com"),
            "crash-password-123",
            tokenmeter::domain::account::Role::User,
            tokenmeter::domain::account::Approval::Approved,
        )
        .await
        .unwrap();
        let token = tokenmeter::server::accounts::create_token(&app.db, user.id, "crash")
            .await
            .unwrap();
        users.push((user.id, app.bearer_client(&token.secret)));
    }
    // One completed reply each.
    let mut completed = Vec::new();
    for (_, client) in &users {
        let res = client
            .post(format!("{base}/api/chat/completions"))
            .json(&json!({"model": "demo", "max_tokens": 5,
                          "messages": [{"role": "user", "content": "a short one"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        completed.push((
            body["conversation_id"].as_str().unwrap().to_string(),
            body["usage"]["total_tokens"].as_i64().unwrap(),
        ));
    }
    // 50 streams, each under way (its first chunk read), then the process is killed.
    let mut streams = Vec::new();
    for i in 0..50 {
        let (_, client) = &users[i % users.len()];
        let res = client
            .post(format!("{base}/api/chat/completions"))
            .json(&json!({"model": "demo", "stream": true,
                          "messages": [{"role": "user", "content": format!("a long one {i}")}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let mut body = res.bytes_stream();
        common::read_at_least(&mut body, 1).await;
        streams.push(body);
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    drop(streams);
    let killed_at = chrono::Utc::now();

    // Started again on the same database: it serves, and what is stored is whole.
    let restarted = common::ServerProcess::spawn(app.database_url(), &env).await;
    let base = restarted.base.clone();
    for (i, (conversation, tokens)) in completed.iter().enumerate() {
        let (id, client) = &users[i];
        let res = client
            .get(format!("{base}/api/conversations/{conversation}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let detail: serde_json::Value = res.json().await.unwrap();
        let messages = detail["data"]["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 2, "{id}: the completed reply is intact");
        assert_eq!(messages[1]["status"], "complete");
        assert_eq!(
            messages[1]["prompt_tokens"].as_i64().unwrap()
                + messages[1]["completion_tokens"].as_i64().unwrap(),
            *tokens
        );
    }
    // Every call recorded has its day counted, and every kept call its reply message.
    let unmatched: i64 = with_pool!(&app.db, |p| sqlx::query_scalar(
        "select count(*) from usage_records r
         where r.messages_kept and not exists (select 1 from messages m where m.id = r.id)"
    )
    .fetch_one(p)
    .await)
    .unwrap();
    assert_eq!(unmatched, 0, "no kept call without its reply");
    let orphans: i64 = with_pool!(&app.db, |p| sqlx::query_scalar(
        "select count(*) from messages m where m.role = 'assistant'
         and not exists (select 1 from usage_records r where r.id = m.id)"
    )
    .fetch_one(p)
    .await)
    .unwrap();
    assert_eq!(orphans, 0, "no reply without its usage");
    for (id, _) in &users {
        let (day_tokens, day_requests): (i64, i64) = with_pool!(&app.db, |p| sqlx::query_as(
            "select cast(coalesce(sum(tokens_used), 0) as bigint),
                    cast(coalesce(sum(requests_count), 0) as bigint)
             from usage_history where user_id = $1"
        )
        .bind(id)
        .fetch_one(p)
        .await)
        .unwrap();
        let (call_tokens, calls): (i64, i64) = with_pool!(&app.db, |p| sqlx::query_as(
            "select cast(coalesce(sum(prompt_tokens + completion_tokens), 0) as bigint),
                    count(*) from usage_records where user_id = $1"
        )
        .bind(id)
        .fetch_one(p)
        .await)
        .unwrap();
        assert_eq!((day_tokens, day_requests), (call_tokens, calls), "{id}");
    }
    // The killed sends' reservations expire within their life (3 s, renewed every second).
    let latest: Option<chrono::DateTime<chrono::Utc>> = with_pool!(&app.db, |p| {
        sqlx::query_scalar("select max(expires_at) from quota_reservations")
            .fetch_one(p)
            .await
    })
    .unwrap();
    if let Some(latest) = latest {
        assert!(
            latest <= killed_at + chrono::Duration::seconds(3),
            "no reservation outlives its expiry: {latest} (killed at {killed_at})"
        );
    }
    // And a new send goes through on the restarted server.
    let res = users[0]
        .1
        .post(format!("{base}/api/chat/completions"))
        .json(&json!({"model": "demo", "max_tokens": 3,
                      "messages": [{"role": "user", "content": "after the crash"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
