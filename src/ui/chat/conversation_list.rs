//! The user's conversations, most recent first, and the way to start a new one.

use super::ChatState;
use crate::api::chat::list_conversations;
use crate::ui::common::{resource, ErrorNotice, Loading, BTN_PRIMARY};
use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn ConversationList(on_pick: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let state = expect_context::<ChatState>();
    let conversations = resource(move || state.list_version.get(), |_| list_conversations());
    view! {
        <A href="/chat" attr:class=format!("{BTN_PRIMARY} w-full") on:click=move |_| on_pick()>
            "+ New chat"
        </A>
        <nav class="mt-3 min-h-0 flex-1 overflow-y-auto" aria-label="Your conversations">
            <Transition fallback=|| view! { <Loading/> }>
                {move || conversations.get().map(|result| match result {
                    Err(e) => view! { <ErrorNotice message=e.message/> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <p class="px-2 py-4 text-sm text-slate-500">"No conversations yet."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <ul class="space-y-1" data-testid="conversation-list">
                            {list.into_iter().map(|c| {
                                let id = c.id;
                                let title = c.title.clone();
                                let active = move || state.current.get() == Some(id);
                                view! {
                                    <li>
                                        <A
                                            href=format!("/chat/{id}")
                                            attr:class=move || format!(
                                                "block truncate rounded-lg px-3 py-2 text-sm {}",
                                                if active() { "bg-indigo-50 font-semibold text-indigo-700" } else { "text-slate-700 hover:bg-slate-50" },
                                            )
                                            attr:title=c.title.clone()
                                            on:click=move |_| on_pick()
                                        >
                                            {title}
                                        </A>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                })}
            </Transition>
        </nav>
    }
}
