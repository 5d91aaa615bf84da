//! Every server function (`/api/fn/*`, the pages' calls) fuzzed with malformed bodies, wrong
//! types, garbage encodings and random values, signed in as a user and as an admin, on both
//! databases: every answer is a 4xx or a success, never a 5xx, and the server stays up. The
//! list of functions is the registry the server itself serves from.

#[macro_use]
mod common;

use common::{Backend, TestApp};
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};

on_both_backends!(
    server_functions_answer_malformed_input_with_4xx,
    a_server_functions_error_carries_its_status,
    every_server_function_authorizes_first,
);

/// Calls a server function with a form body; (status, body).
async fn call(app: &TestApp, client: &reqwest::Client, name: &str, form: &str) -> (u16, Value) {
    let res = client
        .post(app.url(&format!("/api/fn/{name}")))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form.to_string())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn a_server_functions_error_carries_its_status(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.signed_up("alice@example.com").await;
    let cases = [
        (app.client(), "list_conversations", "", 401, "unauthorized"),
        (user.clone(), "admin_user_counts", "", 403, "forbidden"),
        (
            user.clone(),
            "get_conversation",
            "id=6f1c2a7e-0000-4000-8000-000000000000",
            404,
            "not_found",
        ),
        (
            user.clone(),
            "get_conversation",
            "id=nope",
            400,
            "validation",
        ),
        (user.clone(), "get_conversation", "", 400, "validation"),
    ];
    for (client, name, form, status, code) in cases {
        let (got, body) = call(&app, &client, name, form).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{name} {form}: {body}"
        );
    }
    // A success is untouched.
    let (got, body) = call(&app, &user, "list_conversations", "").await;
    assert_eq!(got, 200, "{body}");
}

/// Every registered server function, called with no input and with input of every shape the
/// fuzzing sends, answers as `api::access::server_fn` declares it: a visitor gets 401 from each
/// that is not public, a user 403 from each admin one, before the input is even read; and a
/// user is never refused one that is not an admin's. A new function is covered as it is
/// registered.
async fn every_server_function_authorizes_first(backend: Backend) {
    use tokenmeter::api::access::{server_fn, Access};
    let app = TestApp::start(backend).await;
    let user = app.signed_up("bob@example.com").await;
    let visitor = app.client();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut checked = 0;
    for (path, method) in leptos::server_fn::axum::server_fn_paths() {
        let name = path.trim_start_matches("/api/fn/");
        if name == "logout" {
            continue;
        }
        let access = server_fn(name);
        for (content_type, body) in bodies(&mut rng) {
            let send = |client: &reqwest::Client| {
                let url = app.url(path);
                if method.as_str() == "GET" {
                    client.get(url)
                } else {
                    client
                        .post(url)
                        .header(CONTENT_TYPE, content_type)
                        .body(body.clone())
                }
            };
            let shown = String::from_utf8_lossy(&body)
                .chars()
                .take(80)
                .collect::<String>();
            if access != Access::Public {
                let res = send(&visitor).send().await.unwrap();
                assert_eq!(
                    res.status().as_u16(),
                    401,
                    "a visitor calling {name} with {shown:?}"
                );
                checked += 1;
            }
            let status = send(&user).send().await.unwrap().status().as_u16();
            if access == Access::Admin {
                assert_eq!(status, 403, "a user calling {name} with {shown:?}");
            } else {
                assert!(
                    status != 401 && status != 403,
                    "a user calling {name} with {shown:?}: {status} (only admin_* functions are an admin's)"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked} calls checked");
}

/// A small deterministic generator (xorshift), so a failure is reproduced by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Names server functions take, and some they do not.
const FIELDS: &[&str] = &[
    "id",
    "user_id",
    "plan_id",
    "email",
    "password",
    "current_password",
    "new_password",
    "name",
    "title",
    "model",
    "limit",
    "offset",
    "days",
    "from",
    "to",
    "role",
    "disabled",
    "approve",
    "token_limit_override",
    "monthly_token_limit",
    "input",
    "kind",
    "status",
    "conversation_id",
    "revoke_api_tokens",
    "plan",
    "extra",
];

fn random_value(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 1 { 9 } else { 11 }) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => json!(rng.next() as i64),
        3 => json!(-1),
        4 => json!(1.5e308),
        5 => json!(""),
        6 => json!("\u{0}nul"),
        7 => json!(uuid::Uuid::from_u128(rng.next() as u128).to_string()),
        8 => json!("x".repeat(rng.below(3000))),
        9 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => random_object(rng, depth + 1),
    }
}

fn random_object(rng: &mut Rng, depth: u32) -> Value {
    let mut map = serde_json::Map::new();
    for _ in 0..rng.below(5) {
        let field = FIELDS[rng.below(FIELDS.len())];
        map.insert(field.to_string(), random_value(rng, depth));
    }
    Value::Object(map)
}

/// (content type, body) pairs: fixed malformed ones, then random ones.
fn bodies(rng: &mut Rng) -> Vec<(&'static str, Vec<u8>)> {
    let form = "application/x-www-form-urlencoded";
    let js = "application/json";
    let mut out: Vec<(&'static str, Vec<u8>)> = vec![
        (form, b"".to_vec()),
        (js, b"".to_vec()),
        (js, b"{".to_vec()),
        (js, b"null".to_vec()),
        (js, b"[]".to_vec()),
        (js, b"\"text\"".to_vec()),
        (js, b"12345678901234567890123".to_vec()),
        (form, b"a=%ZZ&&=&id=%00".to_vec()),
        (
            form,
            b"id=not-a-uuid&limit=abc&offset=-1&days=99999999999999999999".to_vec(),
        ),
        (form, vec![0xff, 0xfe, b'=', 0x80]),
        ("text/plain", b"hello".to_vec()),
        ("application/cbor", vec![0xa1, 0x61, 0x61, 0x01]),
    ];
    for _ in 0..12 {
        let object = random_object(rng, 0);
        out.push((js, object.to_string().into_bytes()));
        let pairs: Vec<String> = object
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                format!("{k}={}", urlencode(&text))
            })
            .collect();
        out.push((form, pairs.join("&").into_bytes()));
    }
    out
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn server_functions_answer_malformed_input_with_4xx(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut paths: Vec<(String, String)> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, method)| (path.to_string(), method.to_string()))
        // Signing out would end the fuzzing client's session: it has a test of its own.
        .filter(|(path, _)| !path.ends_with("/logout"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 30, "the registry is read: {paths:?}");
    assert!(
        paths.iter().all(|(p, _)| p.starts_with("/api/fn/")),
        "{paths:?}"
    );
    let user = app.signed_up("fuzz@example.com").await;
    let admin = app.admin().await;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut sent = 0;
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for (who, client) in [
        ("user", &user),
        ("admin", &admin),
        ("visitor", &app.client()),
    ] {
        for (path, method) in &paths {
            for (content_type, body) in bodies(&mut rng) {
                let url = app.url(path);
                let req = if method == "GET" {
                    let query = String::from_utf8_lossy(&body).replace(['{', '}', '"'], "");
                    client.get(format!("{url}?{query}"))
                } else {
                    client
                        .post(url)
                        .header(CONTENT_TYPE, content_type)
                        .body(body.clone())
                };
                let res = req.send().await.unwrap();
                let status = res.status().as_u16();
                let text = res.text().await.unwrap_or_default();
                assert!(
                    status < 500,
                    "{who} {method} {path} ({content_type}, {:?}): {status} {text}",
                    String::from_utf8_lossy(&body)
                        .chars()
                        .take(200)
                        .collect::<String>()
                );
                *by_status.entry(status).or_default() += 1;
                sent += 1;
            }
        }
    }
    let (status, _) = app.get(&user, "/api/auth/me").await;
    assert_eq!(status, 200, "the user is still signed in and the server up");
    eprintln!(
        "server functions: {} fuzzed, {sent} requests, statuses {by_status:?}",
        paths.len()
    );
}
