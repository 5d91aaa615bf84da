//! What the server costs at rest: the time from starting `tokenmeter serve` (migrations
//! already applied) to its first `/healthz` answer, its resident memory once started, and after
//! 10,000 sends of a limited user to the demo model.
//!
//! The server is the release binary in a process of its own; the database is fresh and migrated
//! once before the starts.
//!
//! Run: `cargo bench --features ssr --bench footprint` (add `-- postgres` under
//! `scripts/with-postgres.sh` for PostgreSQL).

#[path = "../tests/common/mod.rs"]
#[allow(unused_macros)]
mod common;

use common::{percentile_ms, rss_mb, Backend, ADMIN_EMAIL, ADMIN_PASSWORD};
use serde_json::json;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const STARTS: usize = 10;
const SENDS: usize = 10_000;
const SENDERS: usize = 16;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tokenmeter(database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tokenmeter"));
    command
        .env_remove("LITELLM_URL")
        .env_remove("LLM_BASE_URL")
        .env("DATABASE_URL", database_url)
        .env("TOKENMETER_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("TOKENMETER_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("TOKENMETER_SIGNUP", "open")
        .env("TOKENMETER_DEMO_DELAY_MS", "0")
        .env("RUST_LOG", "warn");
    command
}

/// Starts `serve` and returns it with the time until `/healthz` first answered 200 (polled
/// every millisecond over a fresh connection).
// The child goes back to the caller, who stops it (`stop`); clippy cannot follow it there.
#[allow(clippy::zombie_processes)]
fn start(database_url: &str) -> (Child, u16, Duration) {
    use std::io::{Read, Write};
    let port = free_port();
    let started = Instant::now();
    let mut child = tokenmeter(database_url)
        .arg("serve")
        .env("TOKENMETER_ADDR", format!("127.0.0.1:{port}"))
        .spawn()
        .expect("start tokenmeter serve");
    loop {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not answer");
        }
        if let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ =
                conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut answer = String::new();
            let _ = conn.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                return (child, port, started.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn stop(mut child: Child) {
    // SIGTERM, as a service manager would; then make sure.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::main]
async fn main() {
    let backend = Backend::from_args();
    let (url, _dir) = common::fresh_database(backend).await;
    let migrated = tokenmeter(&url).arg("migrate").status().unwrap();
    assert!(migrated.success(), "migrate");

    // Starts: the first also creates the admin (a password hash); the others find it.
    let mut starts = Vec::new();
    let mut idle = Vec::new();
    for _ in 0..STARTS {
        let (child, _, took) = start(&url);
        starts.push(took);
        // At rest a moment after start (background tasks settled).
        tokio::time::sleep(Duration::from_secs(1)).await;
        idle.push(rss_mb(child.id()).0);
        stop(child);
    }
    let first = starts[0];
    let mut later = starts[1..].to_vec();
    idle.sort_by(f64::total_cmp);

    // 10,000 sends of a limited user.
    let (child, port, _) = start(&url);
    let pid = child.id();
    let base = format!("http://127.0.0.1:{port}");
    let (rss_started, _) = rss_mb(pid);
    let user = common::limited_user(&base, "footprint@example.com", 1_000_000_000).await;
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let timer = Instant::now();
    let senders: Vec<_> = (0..SENDERS)
        .map(|i| {
            let user = user.clone();
            let url = format!("{base}/api/chat/completions");
            let sent = sent.clone();
            tokio::spawn(async move {
                let mut n = 0;
                while sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < SENDS {
                    n += 1;
                    let res = user
                        .post(&url)
                        .json(&json!({"model": "demo", "stream": n % 3 == 0,
                                      "messages": [{"role": "user", "content": format!("footprint {i} {n}")}]}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 200);
                    res.bytes().await.unwrap();
                }
            })
        })
        .collect();
    for s in senders {
        s.await.unwrap();
    }
    let sending = timer.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_after, rss_peak) = rss_mb(pid);
    stop(child);

    println!("footprint ({backend:?}, release binary, {STARTS} starts, {SENDS} sends by {SENDERS} clients)");
    println!(
        "  start to /healthz: first (creates the admin) {:.0} ms; the next {}: p50 {:.0} ms, max {:.0} ms",
        first.as_secs_f64() * 1000.0,
        later.len(),
        percentile_ms(&mut later, 50),
        percentile_ms(&mut later, 100),
    );
    println!(
        "  resident memory 1 s after start: min {:.1} MB, median {:.1} MB, max {:.1} MB",
        idle[0],
        idle[idle.len() / 2],
        idle[idle.len() - 1]
    );
    println!(
        "  {SENDS} sends in {:.1} s: resident memory {:.1} MB before, {:.1} MB after (peak {:.1} MB)",
        sending.as_secs_f64(),
        rss_started,
        rss_after,
        rss_peak
    );
}
