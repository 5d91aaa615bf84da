//! The head of the chat: the conversation's title (rename, delete) and the model picker, which
//! lists what the upstream offers and labels the built-in demo model as such.

use super::ChatState;
use crate::api::chat::{list_models, DeleteConversation, UpdateConversation};
use crate::domain::chat::MAX_TITLE_CHARS;
use crate::ui::common::{action_error, resource, BTN_DANGER, BTN_SECONDARY, INPUT};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

#[component]
pub fn ConversationHeader() -> impl IntoView {
    let state = expect_context::<ChatState>();
    let rename = ServerAction::<UpdateConversation>::new();
    let delete = ServerAction::<DeleteConversation>::new();
    let editing = RwSignal::new(false);
    let confirming = RwSignal::new(false);
    let new_title = RwSignal::new(String::new());
    let rename_error = action_error(rename);
    let delete_error = action_error(delete);
    let navigate = use_navigate();

    Effect::new(move |_| {
        if let Some(Ok(c)) = rename.value().get() {
            state.title.set(Some(c.title));
            state.list_version.update(|v| *v += 1);
            editing.set(false);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            confirming.set(false);
            state.list_version.update(|v| *v += 1);
            navigate("/chat", Default::default());
        }
    });
    // Another conversation: leave any half-done rename or delete behind.
    Effect::watch(
        move || state.current.get(),
        move |_, _, _| {
            editing.set(false);
            confirming.set(false);
        },
        false,
    );

    let save = move || {
        if let Some(id) = state.current.get_untracked() {
            rename.dispatch(UpdateConversation {
                id,
                title: Some(new_title.get_untracked()),
                model: None,
            });
        }
    };
    view! {
        <div class="flex min-w-0 flex-1 flex-wrap items-center gap-2">
            <Show
                when=move || editing.get()
                fallback=move || view! {
                    <h1 class="min-w-0 truncate text-base font-semibold" data-testid="conversation-title">
                        {move || if state.current.get().is_some() {
                            state.title.get().unwrap_or_default()
                        } else {
                            "New chat".to_string()
                        }}
                    </h1>
                    <Show when=move || state.current.get().is_some()>
                        <button type="button" class="rounded px-2 py-1 text-xs font-medium text-slate-600 hover:bg-slate-100"
                            on:click=move |_| {
                                new_title.set(state.title.get_untracked().unwrap_or_default());
                                editing.set(true);
                            }>
                            "Rename"
                        </button>
                        <Show
                            when=move || confirming.get()
                            fallback=move || view! {
                                <button type="button" class="rounded px-2 py-1 text-xs font-medium text-red-700 hover:bg-red-50"
                                    on:click=move |_| confirming.set(true)>"Delete"</button>
                            }
                        >
                            <span class="text-xs text-slate-600">"Delete this conversation? Its usage stays counted."</span>
                            <button type="button" class=BTN_DANGER
                                on:click=move |_| {
                                    if let Some(id) = state.current.get_untracked() {
                                        delete.dispatch(DeleteConversation { id });
                                    }
                                }>"Delete for good"</button>
                            <button type="button" class="rounded px-2 py-1 text-xs text-slate-600 hover:bg-slate-100"
                                on:click=move |_| confirming.set(false)>"Keep"</button>
                        </Show>
                    </Show>
                }
            >
                <form class="flex min-w-0 flex-1 items-center gap-2"
                    on:submit=move |ev| { ev.prevent_default(); save(); }>
                    <label for="rename-title" class="sr-only">"Title"</label>
                    <input id="rename-title" class=INPUT maxlength=MAX_TITLE_CHARS
                        prop:value=move || new_title.get()
                        on:input=move |ev| new_title.set(event_target_value(&ev))
                        on:keydown=move |ev| if ev.key() == "Escape" { editing.set(false) }
                        autofocus/>
                    <button type="submit" class=BTN_SECONDARY disabled=move || rename.pending().get()>"Save"</button>
                    <button type="button" class="rounded px-2 py-1 text-xs text-slate-600 hover:bg-slate-100"
                        on:click=move |_| editing.set(false)>"Cancel"</button>
                </form>
            </Show>
            {move || rename_error().or_else(delete_error).map(|m| view! {
                <p class="w-full text-xs text-red-700" role="alert">{m}</p>
            })}
        </div>
    }
}

#[component]
pub fn ModelPicker() -> impl IntoView {
    let state = expect_context::<ChatState>();
    let models = resource(|| (), |_| list_models());
    let switch = ServerAction::<UpdateConversation>::new();
    // A first choice once the list is known (a conversation's own model wins when it loads).
    Effect::new(move |_| {
        if let Some(Ok(list)) = models.get() {
            if state.model.get_untracked().is_empty() {
                if let Some(first) = list.models.first() {
                    state.model.set(first.clone());
                }
            }
        }
    });
    view! {
        <Transition fallback=|| view! { <span class="text-xs text-slate-500">"Loading models…"</span> }>
            {move || models.get().map(|result| match result {
                Err(e) => view! { <p class="text-xs text-red-700" role="alert">{e.message}</p> }.into_any(),
                Ok(list) => {
                    let demo = list.upstream == "demo";
                    view! {
                        <div class="flex items-center gap-2">
                            <label for="model" class="text-xs font-medium text-slate-600">"Model"</label>
                            <select id="model" data-testid="model-picker"
                                class="rounded-lg border-0 bg-white py-1.5 pl-2 pr-8 text-sm ring-1 ring-inset ring-slate-300 focus:ring-2 focus:ring-indigo-600"
                                prop:value=move || state.model.get()
                                on:change=move |ev| {
                                    let model = event_target_value(&ev);
                                    state.model.set(model.clone());
                                    if let Some(id) = state.current.get_untracked() {
                                        switch.dispatch(UpdateConversation { id, title: None, model: Some(model) });
                                    }
                                }>
                                {list.models.iter().map(|m| {
                                    let m = m.clone();
                                    let selected = { let m = m.clone(); move || state.model.get() == m };
                                    view! { <option value=m.clone() selected=selected>{m.clone()}</option> }
                                }).collect_view()}
                                // A conversation's model the upstream no longer offers stays
                                // visible (sending with it is refused with the list).
                                {
                                    let offered = list.models.clone();
                                    move || {
                                        let current = state.model.get();
                                        (!current.is_empty() && !offered.contains(&current)).then(|| view! {
                                            <option value=current.clone() selected=true disabled=true>
                                                {format!("{current} (not offered)")}
                                            </option>
                                        })
                                    }
                                }
                            </select>
                            {demo.then(|| view! {
                                <span class="rounded-full bg-amber-100 px-2 py-0.5 text-xs font-medium text-amber-800" data-testid="demo-badge"
                                    title="No LLM is connected: the demo model sends a fixed reply with real token counts.">
                                    "Demo model: canned replies"
                                </span>
                            })}
                            {list.error.map(|e| view! { <p class="text-xs text-red-700" role="alert">{e}</p> })}
                        </div>
                    }.into_any()
                }
            })}
        </Transition>
    }
}
