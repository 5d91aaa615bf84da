//! `AdminSidebar`: the admin pages that exist, one link each.

use leptos::prelude::*;
use leptos_router::components::A;

const ITEM: &str = "whitespace-nowrap rounded-lg px-3 py-2 text-sm font-medium text-slate-600 hover:bg-white hover:text-slate-900 aria-[current=page]:bg-white aria-[current=page]:text-indigo-700 aria-[current=page]:shadow-sm";

#[component]
pub fn AdminSidebar() -> impl IntoView {
    view! {
        <aside class="lg:w-56 lg:shrink-0">
            <p class="px-3 text-xs font-semibold uppercase tracking-wide text-slate-500">"Admin"</p>
            <nav aria-label="Admin" class="mt-2 flex gap-1 overflow-x-auto lg:flex-col">
                <A href="/admin" exact=true attr:class=ITEM>"Overview"</A>
                <A href="/admin/users" attr:class=ITEM>"Users"</A>
                <A href="/admin/usage" attr:class=ITEM>"Usage"</A>
                <A href="/admin/plans" attr:class=ITEM>"Plans"</A>
                <A href="/admin/jobs" attr:class=ITEM>"Jobs"</A>
            </nav>
        </aside>
    }
}
