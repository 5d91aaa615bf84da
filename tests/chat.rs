//! Chat through the real router with the built-in demo model, on SQLite and PostgreSQL:
//! streaming and whole replies, usage recorded per message and per day, conversations private
//! to their owner, bad input refused with the allowed values.

#[macro_use]
mod common;

use common::{
    assert_error, my_id, new_conversation, sse_data, sse_text, usage_days, Backend, TestApp,
};
use serde_json::{json, Value};
use tokenmeter::domain::chat::demo_reply;
use tokenmeter::server::llm::tokens;

on_both_backends!(
    demo_reply_streams_and_its_usage_is_recorded,
    whole_replies_and_new_conversations_from_the_api,
    conversations_are_private_to_their_owner,
    bad_input_is_refused_with_the_allowed_values,
    deleting_a_conversation_keeps_its_usage,
    a_stopped_reply_keeps_what_arrived_and_counts_it,
    concurrent_sends_add_up_exactly,
    usage_counts_for_the_day_of_the_configured_timezone,
    a_days_models_add_up_as_the_domain_rule_says,
    exchanges_recorded_together_keep_their_own_outcomes,
);

async fn demo_reply_streams_and_its_usage_is_recorded(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.signed_up("alice@example.com").await;
    let alice_id = my_id(&app, &alice).await;

    let (status, models) = app.get(&alice, "/api/models").await;
    assert_eq!(status, 200, "{models}");
    assert_eq!(models["data"][0]["id"], "demo");

    let id = new_conversation(&app, &alice).await;
    let res = alice
        .post(app.url("/api/chat/completions"))
        .json(
            &json!({"model": "demo", "stream": true, "conversation_id": id,
                      "messages": [{"role": "user", "content": "Hello, demo!"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = sse_data(res).await;
    let text = sse_text(&events);
    assert_eq!(text, demo_reply("Hello, demo!"));
    let deltas = events
        .iter()
        .filter(|e| e["choices"][0]["delta"]["content"].is_string())
        .count();
    assert!(deltas > 50, "streamed token by token: {deltas} chunks");
    assert_eq!(events.last().unwrap(), "[DONE]");
    let usage = &events[events.len() - 2]["usage"];
    let prompt = tokens::count_chat([("user", "Hello, demo!")]);
    let completion = tokens::split(&text).len() as i64;
    assert_eq!(usage["prompt_tokens"], prompt, "{usage}");
    assert_eq!(usage["completion_tokens"], completion, "{usage}");
    assert_eq!(usage["total_tokens"], prompt + completion);
    assert_eq!(usage["cost"], "0.00");
    assert_eq!(usage["estimated"], false);

    // The exchange is stored (the usage chunk comes after the write).
    let (status, detail) = app.get(&alice, &format!("/api/conversations/{id}")).await;
    assert_eq!(status, 200, "{detail}");
    let messages = detail["data"]["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{detail}");
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[0]["content"], "Hello, demo!");
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["content"], text.as_str());
    assert_eq!(messages[1]["status"], "complete");
    assert_eq!(messages[1]["prompt_tokens"], prompt);
    assert_eq!(messages[1]["completion_tokens"], completion);

    // The second turn sends the history along (more prompt tokens) and adds to the same day.
    let res = alice
        .post(app.url("/api/chat/completions"))
        .json(&json!({"model": "demo", "conversation_id": id,
                      "messages": [{"role": "user", "content": "again"}]}))
        .send()
        .await
        .unwrap();
    let second: Value = res.json().await.unwrap();
    let prompt2 = tokens::count_chat([
        ("user", "Hello, demo!"),
        ("assistant", text.as_str()),
        ("user", "again"),
    ]);
    assert_eq!(second["usage"]["prompt_tokens"], prompt2, "{second}");
    let completion2 = second["usage"]["completion_tokens"].as_i64().unwrap();

    let days = usage_days(&app, alice_id).await;
    assert_eq!(days.len(), 1);
    let day = &days[0];
    assert_eq!(day.date, chrono::Utc::now().date_naive());
    assert_eq!(day.requests_count, 2);
    assert_eq!(day.prompt_tokens, prompt + prompt2);
    assert_eq!(day.completion_tokens, completion + completion2);
    assert_eq!(day.tokens_used, prompt + prompt2 + completion + completion2);
    assert_eq!(day.cost_nanos, 0);
    assert_eq!(day.source, "app");
    let demo = &day.model_usage.0["demo"];
    assert_eq!(demo.requests, 2);
    assert_eq!(demo.tokens, day.tokens_used);
    assert!(!demo.unpriced);
}

async fn whole_replies_and_new_conversations_from_the_api(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.signed_up("alice@example.com").await;
    // A program with an API token, no conversation id: a new conversation is started.
    let (_, token) = app
        .post(&alice, "/api/profile/tokens", json!({"name": "script"}))
        .await;
    let program = app.bearer_client(token["data"]["secret"].as_str().unwrap());
    let res = program
        .post(app.url("/api/chat/completions"))
        .json(&json!({"model": "demo", "temperature": 0.2, "n": 1, "user": "ignored",
                      "messages": [{"role": "system", "content": "Be brief."},
                                   {"role": "user", "content": [{"type": "text", "text": "Plan a trip to Lisbon"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let conversation = res.headers()["x-conversation-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["conversation_id"], conversation.as_str());
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        demo_reply("Plan a trip to Lisbon")
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        body["usage"]["prompt_tokens"],
        tokens::count_chat([("system", "Be brief."), ("user", "Plan a trip to Lisbon")])
    );

    let (status, list) = app.get(&alice, "/api/conversations").await;
    assert_eq!(status, 200);
    assert_eq!(list["data"][0]["id"], conversation.as_str());
    assert_eq!(list["data"][0]["title"], "Plan a trip to Lisbon");
    let (_, detail) = app
        .get(&alice, &format!("/api/conversations/{conversation}"))
        .await;
    let roles: Vec<&str> = detail["data"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant"]);

    // Rename and switch model (only to one on offer).
    let (status, renamed) = app
        .patch(
            &alice,
            &format!("/api/conversations/{conversation}"),
            json!({"title": "  Lisbon  "}),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["data"]["title"], "Lisbon");
}

async fn conversations_are_private_to_their_owner(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.signed_up("alice@example.com").await;
    let bob = app.signed_up("bob@example.com").await;
    let id = new_conversation(&app, &alice).await;
    let path = format!("/api/conversations/{id}");

    let (status, body) = app.get(&bob, &path).await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app.patch(&bob, &path, json!({"title": "mine now"})).await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app.delete(&bob, &path).await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app
        .post(
            &bob,
            "/api/chat/completions",
            json!({"model": "demo", "conversation_id": id,
                   "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_error(status, &body, 404, "not_found");
    let (_, list) = app.get(&bob, "/api/conversations").await;
    assert_eq!(list["data"], json!([]));
    // Nothing of Bob's attempts landed in Alice's conversation.
    let (_, detail) = app.get(&alice, &path).await;
    assert_eq!(detail["data"]["messages"], json!([]));
    assert_eq!(detail["data"]["conversation"]["title"], "New chat");

    // Visitors get nothing.
    let visitor = app.client();
    let (status, body) = app.get(&visitor, &path).await;
    assert_error(status, &body, 401, "unauthorized");
    let (status, body) = app
        .post(
            &visitor,
            "/api/chat/completions",
            json!({"model": "demo", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_error(status, &body, 401, "unauthorized");
    let (status, body) = app.get(&visitor, "/api/models").await;
    assert_error(status, &body, 401, "unauthorized");
}

async fn bad_input_is_refused_with_the_allowed_values(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.signed_up("alice@example.com").await;
    let alice_id = my_id(&app, &alice).await;
    let hi = json!([{"role": "user", "content": "hi"}]);
    let cases = [
        (
            json!({"model": "gpt-5", "messages": hi}),
            "model must be one of: demo",
        ),
        (
            json!({"model": "demo", "messages": []}),
            "messages must not be empty",
        ),
        (
            json!({"model": "demo", "messages": [{"role": "tool", "content": "x"}]}),
            "messages[0].role must be one of: system, user, assistant",
        ),
        (
            json!({"model": "demo", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}]}),
            "last of messages must have role \"user\"",
        ),
        (
            json!({"model": "demo", "messages": [{"role": "user", "content": 5}]}),
            "messages[0].content must be a string",
        ),
        (
            json!({"model": "demo", "messages": [{"role": "user", "content": "   "}]}),
            "must not be empty",
        ),
        (json!({"messages": hi}), "model"),
        (
            json!({"model": "demo", "messages": hi, "conversation_id": "nope"}),
            "conversation_id",
        ),
        (
            json!({"model": "demo", "messages": hi, "max_tokens": 0}),
            "max_tokens",
        ),
    ];
    for (body, want) in cases {
        let (status, answer) = app
            .post(&alice, "/api/chat/completions", body.clone())
            .await;
        let message = assert_error(status, &answer, 400, "validation");
        assert!(message.contains(want), "{body} -> {message}");
    }
    let (status, body) = app
        .post(&alice, "/api/conversations", json!({"model": "gpt-5"}))
        .await;
    let message = assert_error(status, &body, 400, "validation");
    assert!(message.contains("demo"), "{message}");
    let id = new_conversation(&app, &alice).await;
    let path = format!("/api/conversations/{id}");
    let (status, body) = app
        .patch(&alice, &path, json!({"title": "x".repeat(121)}))
        .await;
    let message = assert_error(status, &body, 400, "validation");
    assert!(message.contains("at most 120"), "{message}");
    let (status, body) = app.patch(&alice, &path, json!({"colour": "red"})).await;
    assert_error(status, &body, 400, "validation");
    let (status, body) = app.get(&alice, "/api/conversations/not-a-uuid").await;
    let message = assert_error(status, &body, 400, "validation");
    assert!(message.contains("UUID"), "{message}");
    // Nothing was written by any of it.
    assert!(usage_days(&app, alice_id).await.is_empty());
    let (_, detail) = app.get(&alice, &path).await;
    assert_eq!(detail["data"]["messages"], json!([]));
    assert_eq!(detail["data"]["conversation"]["title"], "New chat");
}

async fn deleting_a_conversation_keeps_its_usage(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.signed_up("alice@example.com").await;
    let alice_id = my_id(&app, &alice).await;
    let id = new_conversation(&app, &alice).await;
    let (status, reply) = app
        .post(
            &alice,
            "/api/chat/completions",
            json!({"model": "demo", "conversation_id": id,
                   "messages": [{"role": "user", "content": "count me"}]}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let tokens_used = reply["usage"]["total_tokens"].as_i64().unwrap();
    let (status, _) = app
        .delete(&alice, &format!("/api/conversations/{id}"))
        .await;
    assert_eq!(status, 200);
    let (status, body) = app.get(&alice, &format!("/api/conversations/{id}")).await;
    assert_error(status, &body, 404, "not_found");
    let days = usage_days(&app, alice_id).await;
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].tokens_used, tokens_used);
    assert_eq!(days[0].requests_count, 1);
}

async fn a_stopped_reply_keeps_what_arrived_and_counts_it(backend: Backend) {
    // Slow enough to stop mid-way: 30 ms per token.
    let app = TestApp::start_with(backend, &[("TOKENMETER_DEMO_DELAY_MS", "30")]).await;
    let alice = app.signed_up("alice@example.com").await;
    let alice_id = my_id(&app, &alice).await;
    let id = new_conversation(&app, &alice).await;
    let res = alice
        .post(app.url("/api/chat/completions"))
        .json(
            &json!({"model": "demo", "stream": true, "conversation_id": id,
                      "messages": [{"role": "user", "content": "stop me"}]}),
        )
        .send()
        .await
        .unwrap();
    let mut body = res.bytes_stream();
    common::read_at_least(&mut body, 300).await;
    drop(body); // the client goes away, as a browser's Stop does

    // The reply is recorded as stopped once the server notices.
    let mut reply = Value::Null;
    for _ in 0..100 {
        let (_, detail) = app.get(&alice, &format!("/api/conversations/{id}")).await;
        if let Some(m) = detail["data"]["messages"].get(1) {
            reply = m.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(reply["status"], "stopped", "{reply}");
    let content = reply["content"].as_str().unwrap();
    let full = demo_reply("stop me");
    assert!(
        !content.is_empty() && content.len() < full.len(),
        "{content}"
    );
    assert!(full.starts_with(content));
    assert_eq!(reply["usage_estimated"], true);
    assert_eq!(reply["completion_tokens"], tokens::count(content));
    let days = usage_days(&app, alice_id).await;
    assert_eq!(days[0].requests_count, 1);
    assert_eq!(
        days[0].completion_tokens,
        reply["completion_tokens"].as_i64().unwrap()
    );
}

async fn concurrent_sends_add_up_exactly(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.signed_up("alice@example.com").await;
    let alice_id = my_id(&app, &alice).await;
    let sends = (0..20).map(|i| {
        let (app, alice) = (&app, &alice);
        async move {
            let (status, body) = app
                .post(
                    alice,
                    "/api/chat/completions",
                    json!({"model": "demo", "messages": [{"role": "user", "content": format!("message {i}")}]}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            body["usage"]["total_tokens"].as_i64().unwrap()
        }
    });
    let total: i64 = futures_util::future::join_all(sends)
        .await
        .into_iter()
        .sum();
    let days = usage_days(&app, alice_id).await;
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].requests_count, 20);
    assert_eq!(days[0].tokens_used, total, "no update lost");
    assert_eq!(days[0].model_usage.0["demo"].requests, 20);
    assert_eq!(days[0].model_usage.0["demo"].tokens, total);
    let (_, list) = app.get(&alice, "/api/conversations").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 20);
}

async fn usage_counts_for_the_day_of_the_configured_timezone(backend: Backend) {
    // UTC+14 and UTC-11: at any moment at least one of them is on another date than UTC.
    for zone in ["Pacific/Kiritimati", "Pacific/Pago_Pago"] {
        let app = TestApp::start_with(backend, &[("TOKENMETER_TIMEZONE", zone)]).await;
        let alice = app.signed_up("alice@example.com").await;
        let alice_id = my_id(&app, &alice).await;
        let tz: chrono_tz::Tz = zone.parse().unwrap();
        let before = chrono::Utc::now().with_timezone(&tz).date_naive();
        let (status, _) = app
            .post(
                &alice,
                "/api/chat/completions",
                json!({"model": "demo", "messages": [{"role": "user", "content": "what day is it?"}]}),
            )
            .await;
        assert_eq!(status, 200);
        let after = chrono::Utc::now().with_timezone(&tz).date_naive();
        let days = usage_days(&app, alice_id).await;
        assert_eq!(days.len(), 1);
        assert!(
            days[0].date == before || days[0].date == after,
            "{zone}: stored {} (local day {before})",
            days[0].date
        );
    }
}

/// The day's per-model maps are merged in SQL (each backend's JSON functions); they must come
/// out as `add_model_usage` folds the same calls, whatever the model's name (quotes, dots and
/// JSON path characters in it), priced or not, a new day or one already written.
async fn a_days_models_add_up_as_the_domain_rule_says(backend: Backend) {
    use tokenmeter::domain::chat::{add_model_usage, ModelUsageMap};
    use tokenmeter::server::db::exchanges::record;
    let app = TestApp::start(backend).await;
    let alice = app.signed_up("alice@example.com").await;
    let alice_id = my_id(&app, &alice).await;
    let models = [
        "demo",
        "gpt-4o.mini",
        "a\"b",
        "$.x[0]",
        "\u{e9}t\u{e9}",
        "demo ",
    ];
    let mut expected = ModelUsageMap::new();
    for i in 0..40_i64 {
        let model = models[(i % 6) as usize];
        let (prompt, completion) = (i * 13 % 50, i * 29 % 70);
        // Every model but "demo" has an unpriced call now and then.
        let cost = (i % 5 != 3 || model == "demo").then_some(i * 1_000_003);
        add_model_usage(&mut expected, model, prompt, completion, cost);
        let exchange = usage_only(alice_id, model, prompt, completion, cost);
        assert!(
            !record(&app.db, exchange)
                .await
                .unwrap()
                .announce(&app.state)
                .await
        );
    }
    let days = usage_days(&app, alice_id).await;
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].model_usage.0, expected);
    assert!(expected.values().any(|m| m.unpriced) && expected.values().any(|m| !m.unpriced));
    let tokens: i64 = expected.values().map(|m| m.tokens).sum();
    assert_eq!(days[0].tokens_used, tokens);
}

/// An exchange that keeps no messages: `model`'s call and its usage.
fn usage_only(
    user_id: uuid::Uuid,
    model: &str,
    prompt: i64,
    completion: i64,
    cost: Option<i64>,
) -> tokenmeter::server::db::exchanges::Exchange {
    use tokenmeter::server::db::exchanges::{Exchange, Reply};
    let now = chrono::Utc::now();
    Exchange {
        user_id,
        conversation_id: uuid::Uuid::new_v4(),
        new_conversation: None,
        reservation: None,
        inputs: Vec::new(),
        reply: Reply {
            id: uuid::Uuid::new_v4(),
            content: String::new(),
            model: model.to_string(),
            prompt_tokens: prompt,
            completion_tokens: completion,
            cost_nanos: cost,
            usage_estimated: false,
            status: "complete",
            error: None,
            created_at: now,
        },
        date: now.date_naive(),
        keep_messages: false,
        upstream_call_id: None,
    }
}

/// Exchanges recorded at once (on SQLite they share the writer's transactions): one whose
/// conversation is gone keeps its usage without its messages, the others keep theirs, and the
/// day counts every one exactly once.
async fn exchanges_recorded_together_keep_their_own_outcomes(backend: Backend) {
    use tokenmeter::server::db::exchanges::{record, NewMessage};
    let app = TestApp::start(backend).await;
    let alice = app.signed_up("alice@example.com").await;
    let alice_id = my_id(&app, &alice).await;
    let conversation: uuid::Uuid = new_conversation(&app, &alice).await.parse().unwrap();
    let exchanges = (0..12_i64).map(|i| {
        let mut x = usage_only(alice_id, "demo", 10 + i, 5, Some(0));
        x.keep_messages = true;
        // Every fourth in a conversation that does not exist (deleted while it streamed).
        if i % 4 != 3 {
            x.conversation_id = conversation;
        }
        x.reply.content = format!("reply {i}");
        x.inputs = vec![NewMessage {
            id: uuid::Uuid::new_v4(),
            role: "user",
            content: format!("question {i}"),
            created_at: chrono::Utc::now(),
        }];
        x
    });
    let mut kept = Vec::new();
    for written in futures_util::future::join_all(exchanges.map(|x| record(&app.db, x))).await {
        kept.push(written.unwrap().announce(&app.state).await);
    }
    let expected: Vec<bool> = (0..12).map(|i| i % 4 != 3).collect();
    assert_eq!(kept, expected);
    let (_, thread) = app
        .get(&alice, &format!("/api/conversations/{conversation}"))
        .await;
    let messages = thread["data"]["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2 * 9, "{thread}");
    let day = &usage_days(&app, alice_id).await[0];
    assert_eq!(day.requests_count, 12);
    assert_eq!(day.prompt_tokens, (0..12).map(|i| 10 + i).sum::<i64>());
    assert_eq!(day.model_usage.0["demo"].requests, 12);
}
