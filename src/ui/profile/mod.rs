//! The profile page and its tabs (Account, Usage, API tokens).

mod account_tab;
mod tokens_tab;
mod usage_tab;

pub use account_tab::AccountTab;
pub use tokens_tab::TokensTab;
pub use usage_tab::UsageTab;

use crate::ui::session::use_session;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{Outlet, A};

const TAB: &str = "whitespace-nowrap border-b-2 border-transparent px-1 pb-3 text-sm font-medium text-slate-500 hover:border-slate-300 hover:text-slate-700 aria-[current=page]:border-indigo-600 aria-[current=page]:text-indigo-700";

#[component]
pub fn ProfilePage() -> impl IntoView {
    view! {
        <Title text="Profile"/>
        <section>
                <h1 class="text-2xl font-bold tracking-tight sm:text-3xl">"Profile"</h1>
                <p class="mt-1 text-sm text-slate-600">{use_session().user().map(|user| user.email)}</p>
                <nav aria-label="Profile" class="mt-6 flex gap-6 overflow-x-auto border-b border-slate-200">
                    <A href="/profile" exact=true attr:class=TAB>"Account"</A>
                    <A href="/profile/usage" attr:class=TAB>"Usage"</A>
                    <A href="/profile/tokens" attr:class=TAB>"API tokens"</A>
                </nav>
                <div class="mt-6"><Outlet/></div>
        </section>
    }
}
