//! Rules of a conversation: who may speak, how a title is made and checked, how a reply ends,
//! what the demo model answers, and how one day's usage adds up per model.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The model offered when no upstream is configured.
pub const DEMO_MODEL: &str = "demo";
/// Longest conversation title, in characters.
pub const MAX_TITLE_CHARS: usize = 120;
/// Longest single message a user may send, in characters.
pub const MAX_MESSAGE_CHARS: usize = 100_000;
/// Most messages one chat request may carry.
pub const MAX_REQUEST_MESSAGES: usize = 256;
/// Most characters one chat request may carry, all its messages together.
pub const MAX_REQUEST_CHARS: usize = 400_000;
/// Most characters a send's whole context (the conversation so far and the new messages) may
/// have: past it the conversation is too long to send, and a new one must be started. (About
/// 250,000 tokens: more than the models' context windows.)
pub const MAX_CONTEXT_CHARS: usize = 1_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ssr", schema(as = MessageRole))]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub const ALL: [&'static str; 3] = ["system", "user", "assistant"];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "system" => Some(Role::System),
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            _ => None,
        }
    }
}

/// How an assistant reply ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum ReplyStatus {
    /// The upstream finished the reply.
    Complete,
    /// The user pressed Stop (or the client went away): what arrived is kept.
    Stopped,
    /// The upstream failed mid-way (cut connection, timeout): what arrived is kept.
    Interrupted,
}

impl ReplyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyStatus::Complete => "complete",
            ReplyStatus::Stopped => "stopped",
            ReplyStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> Option<ReplyStatus> {
        match text {
            "complete" => Some(ReplyStatus::Complete),
            "stopped" => Some(ReplyStatus::Stopped),
            "interrupted" => Some(ReplyStatus::Interrupted),
            _ => None,
        }
    }
}

/// A title for a new conversation from its first message: the first line, whitespace
/// collapsed, cut at a word boundary to at most 60 characters.
pub fn title_from_message(text: &str) -> String {
    const LIMIT: usize = 60;
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut title = String::new();
    for word in words {
        let extra = if title.is_empty() { 0 } else { 1 } + word.chars().count();
        if title.chars().count() + extra > LIMIT {
            if title.is_empty() {
                title = word.chars().take(LIMIT - 1).collect();
            }
            title.push('…');
            break;
        }
        if !title.is_empty() {
            title.push(' ');
        }
        title.push_str(word);
    }
    if title.is_empty() {
        "New chat".to_string()
    } else {
        title
    }
}

/// Checks a title typed by a user: trimmed, 1 to [`MAX_TITLE_CHARS`] characters.
pub fn normalize_title(text: &str) -> Result<String, String> {
    let title = text.trim();
    let count = title.chars().count();
    if count == 0 {
        Err("title must not be empty".into())
    } else if count > MAX_TITLE_CHARS {
        Err(format!(
            "title must be at most {MAX_TITLE_CHARS} characters (got {count})"
        ))
    } else {
        Ok(title.to_string())
    }
}

/// The demo model's reply: deterministic (the same prompt always gets the same answer), long
/// enough to watch it stream, and with the Markdown the chat renders (a list, code, emphasis).
pub fn demo_reply(prompt: &str) -> String {
    let words = prompt.split_whitespace().count();
    let chars = prompt.chars().count();
    let quoted: String = prompt.chars().take(80).collect();
    let quoted = quoted.replace(['`', '\n'], " ");
    format!(
        "This is the **demo model** built into tokenmeter. It runs without any LLM upstream, so it \
         does not understand you, but it streams a real reply with real token counts.\n\n\
         You wrote {words} words ({chars} characters), starting with: `{}`\n\n\
         What tokenmeter recorded for this exchange:\n\n\
         - the prompt tokens, counted with the o200k tokenizer;\n\
         - the completion tokens of this reply, counted the same way;\n\
         - one request, at a price of $0.00.\n\n\
         A code block, to show that Markdown is rendered safely:\n\n\
         ```rust\nfn main() {{\n    println!(\"hello from the demo model\");\n}}\n```\n\n\
         Connect a real model by setting `LITELLM_URL` (or `LLM_BASE_URL`) and restarting.",
        quoted.trim()
    )
}

/// One model's share of a day's usage, stored as JSON in `usage_history.model_usage`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelUsage {
    pub tokens: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub requests: i64,
    /// Nano-dollars; 0 for an unpriced model.
    pub cost_nanos: i64,
    /// Some of these requests had no price (neither reported nor in the price table).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unpriced: bool,
}

/// A day's usage per model, ordered by model name.
pub type ModelUsageMap = BTreeMap<String, ModelUsage>;

/// Adds one completion to a day's per-model usage.
pub fn add_model_usage(
    map: &mut ModelUsageMap,
    model: &str,
    prompt_tokens: i64,
    completion_tokens: i64,
    cost_nanos: Option<i64>,
) {
    let entry = map.entry(model.to_string()).or_default();
    entry.prompt_tokens += prompt_tokens;
    entry.completion_tokens += completion_tokens;
    entry.tokens += prompt_tokens + completion_tokens;
    entry.requests += 1;
    match cost_nanos {
        Some(cost) => entry.cost_nanos += cost,
        None => entry.unpriced = true,
    }
}

/// Corrects one completion already counted in a day's per-model usage from its estimate to the
/// upstream's figures (`old_cost`/`new_cost`: `None` when unpriced). No request is added; no
/// figure goes below zero.
pub fn correct_model_usage(
    map: &mut ModelUsageMap,
    model: &str,
    old: (i64, i64, Option<i64>),
    new: (i64, i64, Option<i64>),
) {
    let entry = map.entry(model.to_string()).or_default();
    let shift = |v: &mut i64, by: i64| *v = (*v + by).max(0);
    shift(&mut entry.prompt_tokens, new.0 - old.0);
    shift(&mut entry.completion_tokens, new.1 - old.1);
    shift(&mut entry.tokens, (new.0 + new.1) - (old.0 + old.1));
    shift(
        &mut entry.cost_nanos,
        new.2.unwrap_or(0) - old.2.unwrap_or(0),
    );
    if new.2.is_none() {
        entry.unpriced = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correction_moves_the_figures_without_adding_a_request() {
        let mut map = ModelUsageMap::new();
        add_model_usage(&mut map, "gpt", 10, 5, Some(150));
        add_model_usage(&mut map, "gpt", 8, 2, None);
        correct_model_usage(&mut map, "gpt", (8, 2, None), (9, 20, Some(290)));
        let gpt = &map["gpt"];
        assert_eq!(
            (gpt.prompt_tokens, gpt.completion_tokens, gpt.tokens),
            (19, 25, 44)
        );
        assert_eq!((gpt.requests, gpt.cost_nanos), (2, 440));
        // An estimate above the upstream's figure lowers the day, never below zero.
        correct_model_usage(&mut map, "gpt", (100, 0, Some(0)), (1, 0, Some(0)));
        assert_eq!(map["gpt"].prompt_tokens, 0);
    }

    #[test]
    fn titles_come_from_the_first_line_cut_at_a_word() {
        for (text, title) in [
            ("Hello there", "Hello there"),
            (
                "\n\n  Explain   Rust lifetimes \nplease",
                "Explain Rust lifetimes",
            ),
            ("", "New chat"),
            ("   \n ", "New chat"),
            (
                "one two three four five six seven eight nine ten eleven twelve thirteen",
                "one two three four five six seven eight nine ten eleven…",
            ),
        ] {
            assert_eq!(title_from_message(text), title, "{text:?}");
        }
        let long_word = "x".repeat(100);
        let title = title_from_message(&long_word);
        assert_eq!(title.chars().count(), 60);
        assert!(title.ends_with('…'));
    }

    #[test]
    fn typed_titles_are_trimmed_and_bounded() {
        assert_eq!(normalize_title("  Plans  ").unwrap(), "Plans");
        assert!(normalize_title("   ").unwrap_err().contains("empty"));
        assert!(normalize_title(&"é".repeat(MAX_TITLE_CHARS)).is_ok());
        let err = normalize_title(&"é".repeat(MAX_TITLE_CHARS + 1)).unwrap_err();
        assert!(err.contains("at most 120"), "{err}");
    }

    #[test]
    fn roles_and_statuses_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role).unwrap().as_str(), role);
        }
        assert_eq!(Role::parse("tool"), None);
        for status in ["complete", "stopped", "interrupted"] {
            assert_eq!(ReplyStatus::parse(status).unwrap().as_str(), status);
        }
    }

    #[test]
    fn the_demo_reply_is_deterministic_and_quotes_safely() {
        assert_eq!(demo_reply("hi there"), demo_reply("hi there"));
        assert_ne!(demo_reply("hi"), demo_reply("hello"));
        let reply = demo_reply("a `tick`\nand a line");
        assert!(reply.contains("`a  tick  and a line`"), "{reply}");
        assert!(reply.contains("You wrote 5 words"));
    }

    #[test]
    fn model_usage_adds_up_and_remembers_unpriced_requests() {
        let mut map = ModelUsageMap::new();
        add_model_usage(&mut map, "gpt", 10, 20, Some(50_000));
        add_model_usage(&mut map, "gpt", 1, 2, Some(5));
        add_model_usage(&mut map, "local", 3, 4, None);
        assert_eq!(
            map["gpt"],
            ModelUsage {
                tokens: 33,
                prompt_tokens: 11,
                completion_tokens: 22,
                requests: 2,
                cost_nanos: 50_005,
                unpriced: false
            }
        );
        assert!(map["local"].unpriced);
        assert_eq!(map["local"].cost_nanos, 0);
        let json = serde_json::to_string(&map["gpt"]).unwrap();
        assert!(!json.contains("unpriced"), "{json}");
    }
}
