//! `/admin/users/{id}`: one user's month and their daily usage history, with "Sync now".

use crate::api::usage::{admin_sync_user_usage, admin_usage_history, admin_user_usage};
use crate::ui::common::{resource, ErrorNotice, BTN_SECONDARY};
use crate::ui::usage::{QuotaCard, UsagePanel};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;
use uuid::Uuid;

#[component]
pub fn AdminUserDetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|raw| Uuid::parse_str(&raw).ok()));
    view! {
        <Title text="User usage"/>
        <A href="/admin/users" attr:class="text-sm font-medium text-indigo-700 hover:underline">"← All users"</A>
        {move || match id() {
            None => view! { <div class="mt-4"><ErrorNotice message="This is not a user id."/></div> }.into_any(),
            Some(id) => view! { <UserDetail id/> }.into_any(),
        }}
    }
}

#[component]
fn UserDetail(id: Uuid) -> impl IntoView {
    let reload = RwSignal::new(0usize);
    let user = resource(move || reload.get(), move |_| admin_user_usage(id));
    let sync = Action::new(move |_: &()| async move { admin_sync_user_usage(id).await });
    Effect::new(move |_| {
        if let Some(Ok(_)) = sync.value().get() {
            reload.update(|n| *n += 1);
        }
    });
    let load = move |days: i64| admin_usage_history(id, days);
    let csv_href =
        move |days: i64| format!("/api/admin/users/{id}/usage/history?days={days}&format=csv");
    let sync_button = move || {
        view! {
            <button
                type="button"
                class=BTN_SECONDARY
                disabled=move || sync.pending().get()
                on:click=move |_| { sync.dispatch(()); }
                data-testid="sync-now"
            >
                {move || if sync.pending().get() { "Syncing…" } else { "Sync now from LiteLLM" }}
            </button>
        }
    };
    view! {
        <Transition>
            {move || user.get().map(|r| match r {
                Err(e) => view! { <div class="mt-4"><ErrorNotice message=e.message/></div> }.into_any(),
                Ok(u) => view! {
                    <div class="mt-3 flex flex-wrap items-center justify-between gap-3">
                        <h1 class="break-all text-2xl font-bold tracking-tight" data-testid="user-detail-email">{u.email.clone()}</h1>
                        {if u.sync_available {
                            sync_button().into_any()
                        } else {
                            view! {
                                <p class="text-sm text-slate-500" data-testid="no-sync">"No LiteLLM proxy here: this is what tokenmeter recorded."</p>
                            }.into_any()
                        }}
                    </div>
                    {move || sync.value().get().map(|r| match r {
                        Ok(days) => view! { <p class="mt-2 text-sm text-emerald-700" role="status">{format!("Synced: LiteLLM reported use on {days} day(s).")}</p> }.into_any(),
                        Err(e) => view! { <div class="mt-2"><ErrorNotice message=e.message/></div> }.into_any(),
                    })}
                    <div class="mt-6"><QuotaCard usage=u.usage/></div>
                }.into_any(),
            })}
        </Transition>
        <div class="mt-6">
            <UsagePanel load csv_href reload/>
        </div>
    }
}
