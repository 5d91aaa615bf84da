//! The chat page (`/chat`, `/chat/{id}`): the conversation list, the model picker, the
//! thread, and the composer. The thread is the stored conversation (a resource) plus, while a
//! send is under way, the pending exchange drawn from signals; once the server has written the
//! exchange the resource is read again and the pending part goes away.

mod composer;
mod conversation_list;
mod message_view;
mod model_picker;
pub mod stream;

use crate::api::chat::{get_conversation, ThreadDto};
use crate::api::error::AppError;
use crate::domain::chat::{ReplyStatus, Role};
use crate::ui::common::{resource, ErrorNotice, Loading};
use crate::ui::quota::{resets_label, use_usage, QuotaBlockedModal, UsageState};
use composer::Composer;
use conversation_list::ConversationList;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_location;
use leptos_router::NavigateOptions;
use message_view::{MessageView, ShownMessage};
use model_picker::{ConversationHeader, ModelPicker};
use std::time::Duration;
use stream::{SendBody, SendMessage, Stopper, StreamEnd};
use uuid::Uuid;

/// The exchange being sent: shown until the stored conversation includes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    /// Where it was sent from: a conversation, or `None` for a new chat at `/chat`.
    pub origin: Option<Uuid>,
    /// The conversation it belongs to (for a new chat, once the server has named it).
    pub conversation: Option<Uuid>,
    pub prompt: String,
    pub reply: ShownMessage,
}

/// A send that failed before anything was kept: the text to send again.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub message: String,
    pub prompt: String,
}

/// What the pieces of the page share.
#[derive(Clone, Copy)]
pub struct ChatState {
    pub current: Memo<Option<Uuid>>,
    /// `/chat/<not a uuid>`.
    pub bad_id: Memo<bool>,
    pub model: RwSignal<String>,
    /// The current conversation's title, once loaded: copied from the thread's resource so the
    /// header shows it without reading that resource under a second `<Transition>`.
    pub title: RwSignal<Option<String>>,
    pub draft: RwSignal<String>,
    pub pending: RwSignal<Option<Pending>>,
    pub failure: RwSignal<Option<Failure>>,
    pub busy: RwSignal<bool>,
    pub list_version: RwSignal<u32>,
    pub detail_version: RwSignal<u32>,
    pub stopper: StoredValue<Option<Stopper>>,
    pub usage: UsageState,
    /// The "monthly limit reached" dialog.
    pub blocked_open: RwSignal<bool>,
}

impl ChatState {
    pub fn stop(&self) {
        if let Some(s) = self.stopper.get_value() {
            s.stop();
        }
    }
}

#[component]
pub fn ChatPage() -> impl IntoView {
    view! {
        <Title text="Chat"/>
        <ChatScreen/>
    }
}

#[component]
fn ChatScreen() -> impl IntoView {
    // The id comes straight from the path (`/chat` or `/chat/<id>`).
    let location = use_location();
    let id_segment = Memo::new(move |_| {
        location
            .pathname
            .read()
            .strip_prefix("/chat/")
            .map(|rest| rest.trim_end_matches('/').to_string())
            .filter(|rest| !rest.is_empty())
    });
    let current = Memo::new(move |_| {
        id_segment
            .read()
            .as_deref()
            .and_then(|id| Uuid::parse_str(id).ok())
    });
    let bad_id = Memo::new(move |_| {
        id_segment
            .read()
            .as_deref()
            .is_some_and(|id| Uuid::parse_str(id).is_err())
    });
    let state = ChatState {
        current,
        bad_id,
        model: RwSignal::new(String::new()),
        title: RwSignal::new(None),
        draft: RwSignal::new(String::new()),
        pending: RwSignal::new(None),
        failure: RwSignal::new(None),
        busy: RwSignal::new(false),
        list_version: RwSignal::new(0),
        detail_version: RwSignal::new(0),
        stopper: StoredValue::new(None),
        usage: use_usage(),
        blocked_open: RwSignal::new(false),
    };
    provide_context(state);

    // Another conversation: forget the failure of the previous one.
    Effect::watch(
        move || current.get(),
        move |_, _, _| state.failure.set(None),
        false,
    );

    let show_list = RwSignal::new(false);
    view! {
        <div class="flex flex-col gap-4 md:h-[calc(100vh-12rem)] md:min-h-[32rem] md:flex-row">
            <div class="md:hidden">
                <button
                    type="button"
                    class="inline-flex w-full items-center justify-between rounded-lg bg-white px-3 py-2 text-sm font-medium ring-1 ring-slate-200"
                    aria-expanded=move || show_list.get().to_string()
                    aria-controls="conversation-list"
                    on:click=move |_| show_list.update(|s| *s = !*s)
                >
                    "Conversations"
                    <span aria-hidden="true">{move || if show_list.get() { "▴" } else { "▾" }}</span>
                </button>
            </div>
            <aside
                id="conversation-list"
                class=move || format!(
                    "w-full shrink-0 flex-col rounded-2xl bg-white p-3 shadow-sm ring-1 ring-slate-200 md:flex md:w-64 {}",
                    if show_list.get() { "flex" } else { "hidden" },
                )
                aria-label="Conversations"
            >
                <ConversationList on_pick=move || show_list.set(false)/>
            </aside>
            <section class="flex min-h-[28rem] min-w-0 flex-1 flex-col rounded-2xl bg-white shadow-sm ring-1 ring-slate-200" aria-label="Chat">
                <div class="flex flex-wrap items-center gap-3 border-b border-slate-100 p-3">
                    <ConversationHeader/>
                    <ModelPicker/>
                </div>
                <Thread/>
                <Composer/>
            </section>
        </div>
        <QuotaBlockedModal
            open=state.blocked_open
            resets=Signal::derive(move || state.usage.usage.get().map(|u| resets_label(&u)).unwrap_or_default())
        />
    }
}

/// The stored messages of the current conversation, then the pending exchange.
#[component]
fn Thread() -> impl IntoView {
    let state = expect_context::<ChatState>();
    let detail = resource(
        move || (state.current.get(), state.detail_version.get()),
        |(id, _)| async move {
            match id {
                Some(id) => get_conversation(id).await.map(Some),
                None => Ok::<_, AppError>(None),
            }
        },
    );
    // The stored conversation now holds what was pending: stop drawing it twice.
    Effect::new(move |_| {
        if let Some(Ok(Some(d))) = detail.get() {
            state.model.set(d.conversation.model.clone());
            state.title.set(Some(d.conversation.title.clone()));
            if !state.busy.get_untracked() {
                state.pending.update(|p| {
                    if p.as_ref()
                        .is_some_and(|p| p.conversation == Some(d.conversation.id))
                    {
                        *p = None;
                    }
                });
            }
        }
    });
    let pending = move || {
        let current = state.current.get();
        state
            .pending
            .get()
            .filter(|p| p.origin == current || (current.is_some() && p.conversation == current))
    };
    let thread = NodeRef::<leptos::html::Div>::new();
    // Follow the reply as it grows.
    Effect::new(move |_| {
        let _ = state.pending.get();
        if let Some(el) = thread.get() {
            el.set_scroll_top(el.scroll_height());
        }
    });
    view! {
        <div node_ref=thread class="min-h-0 flex-1 space-y-4 overflow-y-auto p-4" data-testid="thread">
            <Show when=move || state.bad_id.get()>
                <ErrorNotice message="This conversation does not exist."/>
            </Show>
            <Transition fallback=|| view! { <Loading/> }>
                {move || detail.get().map(|result| match result {
                    Err(e) => view! { <ErrorNotice message=e.message/> }.into_any(),
                    Ok(None) => view! { <EmptyThread/> }.into_any(),
                    Ok(Some(ThreadDto { messages, .. })) if messages.is_empty() => {
                        view! { <EmptyThread/> }.into_any()
                    }
                    Ok(Some(ThreadDto { messages, .. })) => messages
                        .into_iter()
                        .map(|m| view! { <MessageView message=ShownMessage::from(m)/> })
                        .collect_view()
                        .into_any(),
                })}
            </Transition>
            {move || pending().map(|p| view! {
                <MessageView message=ShownMessage::user(p.prompt.clone())/>
                <MessageView message=p.reply.clone()/>
            })}
        </div>
    }
}

#[component]
fn EmptyThread() -> impl IntoView {
    let state = expect_context::<ChatState>();
    view! {
        <Show when=move || state.pending.get().is_none()>
            <div class="py-16 text-center text-sm text-slate-500" data-testid="empty-thread">
                <svg class="mx-auto h-8 w-8 text-indigo-400" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="1.5" aria-hidden="true">
                    <path stroke-linecap="round" stroke-linejoin="round" d="M8 10h8M8 14h5m-9 6 2.6-2.6A2 2 0 0 1 8 17h10a3 3 0 0 0 3-3V7a3 3 0 0 0-3-3H6a3 3 0 0 0-3 3v13Z"/>
                </svg>
                <p class="mt-2">"Ask anything. Every reply shows the tokens it used and what it cost."</p>
            </div>
        </Show>
    }
}

/// Sends `text` in the current conversation (or a new one) and streams the reply.
pub fn send_message(
    state: ChatState,
    navigate: impl Fn(&str, NavigateOptions) + Clone + 'static,
    text: String,
) {
    if state.busy.get_untracked() || text.trim().is_empty() {
        return;
    }
    // Used up: nothing is sent and the text stays where it is (the server would refuse too).
    if state
        .usage
        .usage
        .with_untracked(|u| u.as_ref().is_some_and(|u| u.is_blocked))
    {
        state.draft.set(text);
        state.blocked_open.set(true);
        return;
    }
    let conversation = state.current.get_untracked();
    let body = SendBody {
        model: state.model.get_untracked(),
        conversation_id: conversation,
        messages: vec![SendMessage {
            role: "user",
            content: text.clone(),
        }],
        stream: true,
    };
    state.busy.set(true);
    state.failure.set(None);
    state.draft.set(String::new());
    state.pending.set(Some(Pending {
        origin: conversation,
        conversation,
        prompt: text.clone(),
        reply: ShownMessage::streaming(body.model.clone()),
    }));
    let stopper = Stopper::new();
    state.stopper.set_value(stopper.clone());
    leptos::task::spawn_local(async move {
        let mut named = conversation;
        let end = stream::send(
            &body,
            stopper.as_ref(),
            |id| {
                named = Some(id);
                state.pending.update(|p| {
                    if let Some(p) = p {
                        p.conversation = Some(id);
                    }
                });
            },
            |delta| {
                state.pending.update(|p| {
                    if let Some(p) = p {
                        p.reply.content.push_str(delta);
                    }
                })
            },
        )
        .await;
        state.stopper.set_value(None);
        let kept = match &end {
            StreamEnd::Finished(usage) => {
                state.pending.update(|p| {
                    if let Some(p) = p {
                        p.reply.status = Some(ReplyStatus::Complete);
                        p.reply.prompt_tokens = usage.prompt_tokens;
                        p.reply.completion_tokens = usage.completion_tokens;
                        p.reply.cost = usage.cost.clone();
                        p.reply.usage_estimated = usage.estimated;
                        p.reply.counted = true;
                    }
                });
                true
            }
            StreamEnd::Stopped => {
                let arrived = state
                    .pending
                    .with_untracked(|p| p.as_ref().is_some_and(|p| !p.reply.content.is_empty()));
                if arrived {
                    state.pending.update(|p| {
                        if let Some(p) = p {
                            p.reply.status = Some(ReplyStatus::Stopped);
                        }
                    });
                } else {
                    // Stopped before the first word: nothing was kept, the text goes back.
                    state.pending.set(None);
                    if state.draft.get_untracked().is_empty() {
                        state.draft.set(text.clone());
                    }
                }
                arrived
            }
            StreamEnd::Failed { code, .. } if code == "quota_exceeded" => {
                // Refused before anything was sent: the dialog says why, the text goes back.
                state.pending.set(None);
                if state.draft.get_untracked().is_empty() {
                    state.draft.set(text.clone());
                }
                state.blocked_open.set(true);
                state.usage.refresh();
                false
            }
            StreamEnd::Failed {
                message, recorded, ..
            } => {
                if *recorded {
                    state.pending.update(|p| {
                        if let Some(p) = p {
                            p.reply.status = Some(ReplyStatus::Interrupted);
                            p.reply.error = Some(message.clone());
                        }
                    });
                } else {
                    // Nothing was kept: the text goes back into the composer.
                    state.pending.set(None);
                    if state.draft.get_untracked().is_empty() {
                        state.draft.set(text.clone());
                    }
                }
                state.failure.set(Some(Failure {
                    message: message.clone(),
                    prompt: text.clone(),
                }));
                *recorded
            }
        };
        state.busy.set(false);
        if !kept {
            return;
        }
        state.usage.refresh();
        // A stopped reply is written once the server notices the closed connection.
        let delay = if end == StreamEnd::Stopped { 400 } else { 0 };
        let refresh = move || {
            state.list_version.update(|v| *v += 1);
            // A new chat gets its address, unless the user has moved on to another page.
            let still_here = state.current.get_untracked() == conversation;
            match (conversation, named) {
                (None, Some(id)) if still_here => {
                    // The new address mounts the page anew: the composer keeps the focus
                    // it had (Escape to stop, then type on).
                    let typing = composer_focused();
                    navigate(&format!("/chat/{id}"), NavigateOptions::default());
                    if typing {
                        // Once the new page is there (a frame, or a moment more).
                        request_animation_frame(focus_composer);
                        set_timeout(focus_composer, Duration::from_millis(200));
                    }
                }
                _ => state.detail_version.update(|v| *v += 1),
            }
        };
        if delay == 0 {
            refresh();
        } else {
            set_timeout(refresh, Duration::from_millis(delay));
        }
    });
}

/// Whether the composer has the keyboard focus.
fn composer_focused() -> bool {
    document()
        .active_element()
        .is_some_and(|el| el.id() == "composer")
}

/// Puts the keyboard focus in the composer.
fn focus_composer() {
    use leptos::wasm_bindgen::JsCast;
    if let Some(el) = document()
        .get_element_by_id("composer")
        .and_then(|el| el.dyn_into::<leptos::web_sys::HtmlElement>().ok())
    {
        let _ = el.focus();
    }
}

/// The role of a message as the thread labels it.
pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::User => "You",
        Role::Assistant => "Assistant",
        Role::System => "System",
    }
}
