//! The OpenAPI document covers the router: every route of `server::rest::routes` (read from
//! its source, so a route added without its `#[utoipa::path]` fails here) is an operation of
//! the document with the same method, and the document names no route the router lacks; the
//! live server serves it at `/api/openapi.json` on both databases.

#[macro_use]
mod common;

use common::{Backend, TestApp};
use serde_json::Value;
use std::collections::BTreeSet;

on_both_backends!(the_server_serves_its_document);

/// (method, path) of every route the router declares, read from `src/server/rest/mod.rs`.
fn router_routes() -> BTreeSet<(String, String)> {
    let source = include_str!("../src/server/rest/mod.rs");
    let mut routes = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        // The call's arguments: up to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("a closed .route( call");
        let call = &rest[..end];
        let path = call.split('"').nth(1).expect("a path literal").to_string();
        if path == "/api/{*rest}" {
            continue; // the fallback answering 404 in the envelope
        }
        let handlers = &call[call.find(',').expect("a method router")..];
        for method in ["get", "post", "patch", "delete", "put"] {
            let direct = handlers
                .trim_start_matches([',', ' ', '\n'])
                .starts_with(&format!("{method}("));
            if direct || handlers.contains(&format!(".{method}(")) {
                routes.insert((method.to_string(), path.clone()));
            }
        }
    }
    routes
}

fn document_operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            ops.insert((method.clone(), path.clone()));
        }
    }
    ops
}

#[test]
fn every_route_is_in_the_document_and_nothing_else() {
    let doc: Value = serde_json::from_str(tokenmeter::server::rest::openapi::spec()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let routes = router_routes();
    assert!(routes.len() >= 40, "the router was read: {routes:?}");
    assert!(routes.contains(&("patch".into(), "/api/conversations/{id}".into())));
    let ops = document_operations(&doc);
    let missing: Vec<_> = routes.difference(&ops).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the document: {missing:?}"
    );
    let phantom: Vec<_> = ops.difference(&routes).collect();
    assert!(
        phantom.is_empty(),
        "operations the router lacks: {phantom:?}"
    );
}

#[test]
fn every_operation_has_a_success_answer_and_the_error_envelope() {
    let doc: Value = serde_json::from_str(tokenmeter::server::rest::openapi::spec()).unwrap();
    for (method, path) in document_operations(&doc) {
        let op = &doc["paths"][&path][&method];
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path}: no success answer"
        );
        assert_eq!(
            responses["default"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorEnvelope",
            "{method} {path}"
        );
        // Ids in paths are declared.
        if path.contains("{id}") {
            let params = op["parameters"].as_array().expect("parameters");
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == "id" && p["in"] == "path"),
                "{method} {path}: the id parameter"
            );
        }
    }
    // Request bodies that refuse unknown fields say so.
    assert_eq!(
        doc["components"]["schemas"]["Credentials"]["additionalProperties"],
        false
    );
}

async fn the_server_serves_its_document(backend: Backend) {
    let app = TestApp::start(backend).await;
    let res = reqwest::get(app.url("/api/openapi.json")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let served: Value = res.json().await.unwrap();
    let built: Value = serde_json::from_str(tokenmeter::server::rest::openapi::spec()).unwrap();
    assert_eq!(served, built);
    assert_eq!(served["info"]["title"], "tokenmeter");
}
