//! One message of the thread: the user's as plain text, the assistant's as safe Markdown
//! (rendered by the server; a reply still arriving is shown as text until it is stored), with
//! a line of what it used (tokens, cost) and how it ended.

use super::role_label;
use crate::api::chat::ThreadMessageDto;
use crate::domain::chat::{ReplyStatus, Role};
use leptos::prelude::*;

/// A message as the thread shows it: stored, or pending while it streams.
#[derive(Clone, Debug, PartialEq)]
pub struct ShownMessage {
    pub role: Role,
    pub content: String,
    /// The reply as safe HTML, rendered by the server; `None` while it streams.
    pub html: Option<String>,
    pub model: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost: Option<String>,
    pub usage_estimated: bool,
    /// Whether the figures above are the recorded ones. A reply stopped or cut off in the
    /// browser has none yet: the server records it and the thread is read again.
    pub counted: bool,
    /// `None` while the reply is still arriving.
    pub status: Option<ReplyStatus>,
    pub error: Option<String>,
}

impl From<ThreadMessageDto> for ShownMessage {
    fn from(ThreadMessageDto { message: m, html }: ThreadMessageDto) -> Self {
        Self {
            role: m.role,
            content: m.content,
            html,
            model: m.model,
            prompt_tokens: m.prompt_tokens,
            completion_tokens: m.completion_tokens,
            cost: m.cost,
            usage_estimated: m.usage_estimated,
            counted: true,
            status: Some(m.status),
            error: m.error,
        }
    }
}

impl ShownMessage {
    pub fn user(content: String) -> Self {
        Self {
            role: Role::User,
            content,
            html: None,
            model: None,
            prompt_tokens: 0,
            completion_tokens: 0,
            cost: None,
            usage_estimated: false,
            counted: true,
            status: Some(ReplyStatus::Complete),
            error: None,
        }
    }

    pub fn streaming(model: String) -> Self {
        Self {
            role: Role::Assistant,
            model: Some(model),
            status: None,
            counted: false,
            ..Self::user(String::new())
        }
    }
}

/// "gpt-4o-mini · 12 in + 30 out tokens · $0.00005", with "estimated" / "unpriced" as needed.
fn usage_line(m: &ShownMessage) -> String {
    let mut parts = Vec::new();
    if let Some(model) = &m.model {
        parts.push(model.clone());
    }
    if !m.counted {
        parts.push("tokens being recorded…".into());
        return parts.join(" · ");
    }
    parts.push(format!(
        "{} in + {} out tokens{}",
        m.prompt_tokens,
        m.completion_tokens,
        if m.usage_estimated {
            " (estimated)"
        } else {
            ""
        }
    ));
    parts.push(match &m.cost {
        Some(cost) => format!("${cost}"),
        None => "no price".into(),
    });
    parts.join(" · ")
}

#[component]
pub fn MessageView(message: ShownMessage) -> impl IntoView {
    let label = role_label(message.role);
    if message.role == Role::System {
        // Instructions sent through the API: shown apart from the conversation proper.
        return view! {
            <div class="rounded-lg border border-dashed border-slate-300 px-3 py-2 text-xs text-slate-600" data-testid="message" data-role="system">
                <span class="font-semibold">{label}": "</span>
                <span class="whitespace-pre-wrap break-words">{message.content}</span>
            </div>
        }
        .into_any();
    }
    if message.role == Role::User {
        return view! {
            <div class="flex justify-end" data-testid="message" data-role=message.role.as_str()>
                <div class="max-w-[85%] rounded-2xl rounded-br-sm bg-indigo-600 px-4 py-2 text-sm text-white">
                    <span class="sr-only">{label}": "</span>
                    <p class="whitespace-pre-wrap break-words">{message.content}</p>
                </div>
            </div>
        }
        .into_any();
    }
    let streaming = message.status.is_none();
    let status = message.status;
    let usage = (!streaming).then(|| usage_line(&message));
    view! {
        <div class="flex" data-testid="message" data-role="assistant"
            data-status=status.map(|s| s.as_str()).unwrap_or("streaming")
            aria-busy=streaming.to_string()>
            <div class="min-w-0 max-w-[95%] rounded-2xl rounded-bl-sm bg-slate-50 px-4 py-3 ring-1 ring-slate-200">
                <span class="sr-only">{label}": "</span>
                {match message.html {
                    Some(html) => view! {
                        <div class="markdown break-words text-sm text-slate-800" inner_html=html></div>
                    }.into_any(),
                    None => view! {
                        <div class="markdown whitespace-pre-wrap break-words text-sm text-slate-800">{message.content}</div>
                    }.into_any(),
                }}
                {streaming.then(|| view! {
                    <span class="mt-1 inline-block h-4 w-2 animate-pulse bg-indigo-500 align-middle" aria-label="Writing"></span>
                })}
                {match status {
                    Some(ReplyStatus::Stopped) => Some(view! {
                        <p class="mt-2 text-xs font-medium text-amber-700">"Stopped"</p>
                    }.into_any()),
                    Some(ReplyStatus::Interrupted) => Some(view! {
                        <p class="mt-2 text-xs font-medium text-red-700">
                            "Interrupted: " {message.error.clone().unwrap_or_default()}
                        </p>
                    }.into_any()),
                    _ => None,
                }}
                {usage.map(|u| view! { <p class="mt-2 text-xs text-slate-500" data-testid="usage">{u}</p> })}
            </div>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usage_line_says_what_was_counted() {
        let mut m = ShownMessage::streaming("gpt-4o-mini".into());
        // Stopped in the browser: the figures are the server's to give.
        m.status = Some(ReplyStatus::Stopped);
        assert_eq!(usage_line(&m), "gpt-4o-mini · tokens being recorded…");
        m.counted = true;
        m.prompt_tokens = 12;
        m.completion_tokens = 30;
        m.cost = Some("0.00005".into());
        assert_eq!(
            usage_line(&m),
            "gpt-4o-mini · 12 in + 30 out tokens · $0.00005"
        );
        m.cost = None;
        m.usage_estimated = true;
        assert_eq!(
            usage_line(&m),
            "gpt-4o-mini · 12 in + 30 out tokens (estimated) · no price"
        );
    }
}
