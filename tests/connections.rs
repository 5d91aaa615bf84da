//! The HTTP server's own bounds, through real sockets: a client that never finishes its
//! request head is dropped after the header-read timeout; connections past the limit wait
//! until one closes; a request that takes longer than the request timeout gets 503 (here a
//! model list from an upstream that answers too slowly); a kept-alive connection with nothing
//! under way is closed after the keep-alive timeout, a long streamed reply is not.

#[macro_use]
mod common;

use axum::routing::get;
use axum::{Json, Router};
use common::{assert_error, read, Backend, TestApp};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_both_backends!(
    a_client_that_never_finishes_its_head_is_dropped,
    connections_past_the_limit_wait_for_a_free_one,
    a_request_past_the_request_timeout_is_a_503,
    an_idle_kept_alive_connection_is_closed_but_a_long_stream_is_not,
);

async fn an_idle_kept_alive_connection_is_closed_but_a_long_stream_is_not(backend: Backend) {
    let app = TestApp::start_with(
        backend,
        &[
            ("TOKENMETER_KEEPALIVE_SECONDS", "3"),
            ("TOKENMETER_HEADER_READ_TIMEOUT_SECONDS", "1"),
            // The demo reply is about 150 tokens: 7.5 s at this pace, past the keep-alive
            // timeout and well within the client's 20 s (at 120 ms it took 18 s, and a busy
            // machine made it 20).
            ("TOKENMETER_DEMO_DELAY_MS", "50"),
        ],
    )
    .await;
    let mut conn = tokio::net::TcpStream::connect(addr(&app)).await.unwrap();
    let mut buf = vec![0u8; 4096];
    // Two requests 1.5 s apart on one connection: idle longer than the header-read timeout
    // (which times a head once it starts) but not than the keep-alive timeout.
    for pause in [0, 1500] {
        tokio::time::sleep(Duration::from_millis(pause)).await;
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let n = conn.read(&mut buf).await.unwrap();
        assert!(
            String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
            "answered after {pause} ms idle: {:?}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    // The next head trickles: dropped after the header-read timeout, not the keep-alive one.
    conn.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let started = Instant::now();
    closed_within(
        &mut conn,
        Duration::from_millis(700)..Duration::from_millis(2500),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // One request, then nothing: the server closes the connection after the keep-alive timeout.
    let mut conn = tokio::net::TcpStream::connect(addr(&app)).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let n = conn.read(&mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "answered, kept alive"
    );
    closed_within(
        &mut conn,
        Duration::from_millis(2700)..Duration::from_secs(6),
    )
    .await;
    // A streamed reply lasting longer than that is not cut: it is under way.
    let alice = app.signed_up("alice@example.com").await;
    let started = Instant::now();
    let res = alice
        .post(app.url("/api/chat/completions"))
        .json(&json!({"model": "demo", "stream": true,
                      "messages": [{"role": "user", "content": "a long answer"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let events = common::sse_data(res).await;
    assert!(
        started.elapsed() > Duration::from_secs(4),
        "the reply outlasted the keep-alive timeout: {:?}",
        started.elapsed()
    );
    assert!(
        events.iter().any(|e| e["usage"]["total_tokens"].is_i64()),
        "the reply ended normally: {:?}",
        events.last()
    );
}

/// Waits for the server to close `conn` (whatever it says first) and checks when it did.
async fn closed_within(conn: &mut tokio::net::TcpStream, window: std::ops::Range<Duration>) {
    let started = Instant::now();
    let mut buf = vec![0u8; 4096];
    tokio::time::timeout(window.end + Duration::from_secs(2), async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server closed the connection");
    let took = started.elapsed();
    assert!(
        window.contains(&took),
        "closed after {took:?}, expected within {window:?}"
    );
}

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_string()
}

async fn a_client_that_never_finishes_its_head_is_dropped(backend: Backend) {
    let app =
        TestApp::start_with(backend, &[("TOKENMETER_HEADER_READ_TIMEOUT_SECONDS", "1")]).await;
    let mut slow = tokio::net::TcpStream::connect(addr(&app)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = vec![0u8; 1024];
    // The server ends the connection (with a 408 or without a word) instead of waiting on.
    let n = tokio::time::timeout(Duration::from_secs(5), async {
        let mut total = 0;
        loop {
            match slow.read(&mut buf[total..]).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
        }
    })
    .await
    .expect("the server closed the connection");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(4),
        "closed after the 1 s timeout: {took:?}"
    );
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    // Others are served meanwhile and after.
    let (status, _) = app.get(&app.client(), "/healthz").await;
    assert_eq!(status, 200);
}

async fn connections_past_the_limit_wait_for_a_free_one(backend: Backend) {
    let app = TestApp::start_with(
        backend,
        &[
            ("TOKENMETER_MAX_CONNECTIONS", "2"),
            ("TOKENMETER_HEADER_READ_TIMEOUT_SECONDS", "2"),
        ],
    )
    .await;
    // Two idle connections take both places.
    let idle: Vec<tokio::net::TcpStream> =
        futures_util::future::join_all((0..2).map(|_| tokio::net::TcpStream::connect(addr(&app))))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let waited = quick.get(app.url("/healthz")).send().await;
    assert!(
        waited.is_err(),
        "a third connection is not served while two are open: {waited:?}"
    );
    // The idle ones are dropped by the header-read timeout; then there is room again.
    let started = Instant::now();
    let mut served = false;
    while started.elapsed() < Duration::from_secs(6) {
        let answer = quick.get(app.url("/healthz")).send().await;
        if answer.is_ok_and(|r| r.status() == 200) {
            served = true;
            break;
        }
    }
    assert!(served, "served once a place was free");
    drop(idle);
}

async fn a_request_past_the_request_timeout_is_a_503(backend: Backend) {
    // An upstream whose model list takes 3 s; the request timeout is 1 s.
    let slow = Router::new().route(
        "/v1/models",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Json(json!({"object": "list", "data": [{"id": "m"}]}))
        }),
    );
    let upstream = format!("http://{}/v1", common::serve_on_loopback(slow).await);
    let app = TestApp::start_with(
        backend,
        &[
            ("LLM_BASE_URL", upstream.as_str()),
            ("TOKENMETER_LLM_TIMEOUT_SECONDS", "10"),
            ("TOKENMETER_REQUEST_TIMEOUT_SECONDS", "1"),
        ],
    )
    .await;
    let alice = app.signed_up("alice@example.com").await;
    let started = Instant::now();
    let (status, body) = read(alice.get(app.url("/api/models")).send().await.unwrap()).await;
    let took = started.elapsed();
    let message = assert_error(status, &body, 503, "busy");
    assert!(message.contains("longer than 1 s"), "{message}");
    assert!(
        took < Duration::from_millis(2500),
        "answered at the timeout: {took:?}"
    );
}
