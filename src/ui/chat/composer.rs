//! Where a message is written: Enter sends, Shift+Enter starts a new line, Stop ends a reply
//! that is streaming. A send that fails shows why, with Retry, and the text is not lost.

use super::{send_message, ChatState};
use crate::domain::chat::MAX_MESSAGE_CHARS;
use crate::ui::common::{BTN_PRIMARY, BTN_SECONDARY};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

#[component]
pub fn Composer() -> impl IntoView {
    let state = expect_context::<ChatState>();
    let navigate = use_navigate();
    let send = {
        let navigate = navigate.clone();
        move |text: String| send_message(state, navigate.clone(), text)
    };
    let submit = {
        let send = send.clone();
        move || send(state.draft.get_untracked())
    };
    let retry = {
        let send = send.clone();
        move || {
            if let Some(f) = state.failure.get_untracked() {
                send(f.prompt);
            }
        }
    };
    let can_send = move || {
        !state.busy.get() && !state.draft.get().trim().is_empty() && !state.model.get().is_empty()
    };
    let on_submit = {
        let submit = submit.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            submit();
        }
    };
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            submit();
        } else if ev.key() == "Escape" && state.busy.get_untracked() {
            state.stop();
        }
    };
    view! {
        <div class="border-t border-slate-100 p-3">
            {move || state.failure.get().map(|f| {
                let retry = retry.clone();
                view! {
                    <div class="mb-3 flex flex-wrap items-center gap-3 rounded-lg border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800" role="alert" data-testid="send-error">
                        <span class="min-w-0 flex-1">{f.message}</span>
                        <button type="button" class=BTN_SECONDARY on:click=move |_| retry() disabled=move || state.busy.get()>"Retry"</button>
                    </div>
                }
            })}
            <form class="flex items-end gap-2" on:submit=on_submit>
                <label for="composer" class="sr-only">"Message"</label>
                <textarea
                    id="composer"
                    data-testid="composer"
                    rows="2"
                    maxlength=MAX_MESSAGE_CHARS
                    class="block min-h-[2.75rem] w-full resize-y rounded-lg border-0 px-3 py-2 text-sm text-slate-900 shadow-sm ring-1 ring-inset ring-slate-300 placeholder:text-slate-400 focus:ring-2 focus:ring-inset focus:ring-indigo-600"
                    placeholder="Message (Enter to send, Shift+Enter for a new line)"
                    prop:value=move || state.draft.get()
                    on:input=move |ev| state.draft.set(event_target_value(&ev))
                    on:keydown=on_keydown
                ></textarea>
                <Show
                    when=move || state.busy.get()
                    fallback=move || view! {
                        <button type="submit" class=BTN_PRIMARY disabled=move || !can_send() data-testid="send">"Send"</button>
                    }
                >
                    <button type="button" class=BTN_SECONDARY on:click=move |_| state.stop() data-testid="stop">
                        <span class="h-3 w-3 rounded-sm bg-slate-700" aria-hidden="true"></span>
                        "Stop"
                    </button>
                </Show>
            </form>
        </div>
    }
}
