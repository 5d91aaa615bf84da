//! The worst one client can send, and what everyone else sees meanwhile.
//!
//! - tokenizer: pathological text (one 99,000-character word of one letter, of random letters,
//!   digits, CJK, emoji, whitespace, punctuation; and 19 such words together) counted the way
//!   every send's estimate counts it: milliseconds each.
//! - `/healthz` p50/p99 from one client polling it in a loop: alone; while 8 clients send
//!   chat requests of 4 messages of 99,000 characters each (an unlimited user, the request's
//!   caps); while 1,000 log-ins arrive at once (password checks bounded to one per core, the
//!   excess refused with 503). The server runs as a process of its own (the release binary), so
//!   its resident memory is its own: after start, at the end, and at its peak.
//!
//! Run: `cargo bench --features ssr --bench robustness` (add `-- postgres` under
//! `scripts/with-postgres.sh` for PostgreSQL).

#[path = "../tests/common/mod.rs"]
#[allow(unused_macros)]
mod common;

use common::{percentile_ms, rss_mb, Backend, TestApp};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokenmeter::server::llm::tokens;

const WORD: usize = 99_000;

fn pathological() -> Vec<(&'static str, String)> {
    // A fixed pseudo-random sequence: the same text every run.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let letters: String = (0..WORD)
        .map(|_| (b'a' + (next() % 26) as u8) as char)
        .collect();
    let punctuation: String = (0..WORD)
        .map(|_| ['!', '?', '.', ',', ';', '-', '*', '#'][(next() % 8) as usize])
        .collect();
    vec![
        ("one letter, 99,000 times", "a".repeat(WORD)),
        ("random letters, one word", letters.clone()),
        ("digits", "7".repeat(WORD)),
        ("CJK", "字".repeat(WORD)),
        ("emoji", "🎉".repeat(WORD / 4)),
        ("whitespace", " ".repeat(WORD)),
        ("punctuation", punctuation),
        (
            "19 words of random letters",
            [letters.as_str(); 19].join(" "),
        ),
    ]
}

/// Polls `/healthz` until `stop`, from a thread and runtime of its own (so what it measures is
/// the server, not this process's queue of load-generating tasks); its latencies.
fn probe(url: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<Duration>> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let client = reqwest::Client::new();
            let mut times = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let ok = client
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200);
                assert!(ok, "/healthz answered");
                times.push(started.elapsed());
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            times
        })
    })
}

fn report(name: &str, times: &mut [Duration]) {
    let n = times.len();
    let p50 = percentile_ms(times, 50);
    let p99 = percentile_ms(times, 99);
    println!("  /healthz {name}: {n} probes, p50 {p50:.2} ms, p99 {p99:.2} ms");
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let backend = Backend::from_args();
    println!("robustness: {backend:?}, {} cores", num_cpus());

    // The tables load on first use (about 0.2 s; the server loads them at start).
    tokens::warm_up();
    println!("tokenizer (the prompt estimate of every send), worst of 3:");
    for (name, text) in pathological() {
        let mut worst = Duration::ZERO;
        let mut n = 0;
        for _ in 0..3 {
            let started = Instant::now();
            n = tokens::count_chat([("user", text.as_str())]);
            worst = worst.max(started.elapsed());
        }
        println!(
            "  {name}: {} chars, {n} tokens, {:.1} ms",
            text.chars().count(),
            worst.as_secs_f64() * 1e3
        );
    }

    // The database (this process serves on it too, idle); the measured server is the release
    // binary in a process of its own.
    let app = TestApp::start(backend).await;
    let server = common::ServerProcess::spawn(
        app.database_url(),
        &[
            ("TOKENMETER_SIGNUP", "open"),
            ("TOKENMETER_DEMO_DELAY_MS", "0"),
            ("TOKENMETER_LOGIN_MAX_FAILURES_PER_IP", "1000000"),
            ("TOKENMETER_DB_MAX_CONNECTIONS", "16"),
        ],
    )
    .await;
    let pid = server.child.id();
    let base = server.base.clone();
    let healthz = format!("{base}/healthz");
    let admin = common::admin_client(&base).await;
    let plan: serde_json::Value = admin
        .post(format!("{base}/api/admin/plans"))
        .json(&json!({"name": "Unlimited", "monthly_token_limit": null}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user = common::sign_up(&base, "heavy@example.com").await;
    let id = common::user_id(&base, &user).await;
    let res = admin
        .patch(format!("{base}/api/admin/users/{id}"))
        .json(&json!({"plan_id": plan["data"]["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the heavy user is unlimited");
    let (rss_start, _) = rss_mb(pid);

    // Alone.
    let stop = Arc::new(AtomicBool::new(false));
    let probing = probe(healthz.clone(), stop.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let mut alone = probing.join().unwrap();

    // While 8 clients send pathological prompts for 5 s.
    // Whitespace alone is no message (400): the senders use the others.
    let texts: Vec<_> = pathological()
        .into_iter()
        .filter(|(name, _)| *name != "whitespace")
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let probing = probe(healthz.clone(), stop.clone());
    let senders: Vec<_> = (0..8)
        .map(|i| {
            let client = user.clone();
            let url = format!("{base}/api/chat/completions");
            let text = texts[i % (texts.len() - 1)].1.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut sent = 0;
                let body = json!({"model": "demo", "messages": [
                    {"role": "user", "content": text}, {"role": "assistant", "content": text},
                    {"role": "system", "content": text}, {"role": "user", "content": text}]});
                while !stop.load(Ordering::Relaxed) {
                    let res = client.post(&url).json(&body).send().await.unwrap();
                    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
                    res.bytes().await.unwrap();
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    let mut sent = 0;
    for s in senders {
        sent += s.await.unwrap();
    }
    let mut heavy = probing.join().unwrap();
    let (rss_heavy, _) = rss_mb(pid);

    // While 1,000 log-ins arrive at once.
    let stop = Arc::new(AtomicBool::new(false));
    let probing = probe(healthz.clone(), stop.clone());
    let started = Instant::now();
    // One client (its setup is not what is measured), a connection per log-in.
    let login_client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let logins: Vec<_> = (0..1000)
        .map(|i| {
            let client = login_client.clone();
            let url = format!("{base}/api/auth/login");
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({"email": format!("nobody{i}@example.com"), "password": "wrong-password"}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::new();
    for l in logins {
        *statuses.entry(l.await.unwrap()).or_insert(0) += 1;
    }
    let burst = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut during_logins = probing.join().unwrap();
    let (rss_end, rss_peak) = rss_mb(pid);
    drop(server);

    println!("server (the release binary, a process of its own):");
    report("alone", &mut alone);
    report(
        &format!("with 8 clients sending 4 x 99,000-character messages ({sent} sends in 5 s)"),
        &mut heavy,
    );
    report(
        &format!(
            "with 1,000 log-ins at once (answered in {:.1} s: {statuses:?} by status)",
            burst.as_secs_f64()
        ),
        &mut during_logins,
    );
    println!(
        "  server's resident memory: {rss_start:.0} MB after start, {rss_heavy:.0} MB after the heavy senders, {rss_end:.0} MB after the log-ins, peak {rss_peak:.0} MB"
    );
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
