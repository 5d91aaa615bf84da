//! The frame around every page: the top bar (navigation and user menu) and the footer.

use crate::api::auth::Logout;
use crate::ui::common::{PostForm, BTN_PRIMARY};
use crate::ui::session::use_session;
use leptos::prelude::*;
use leptos_router::components::A;

const NAV_LINK: &str = "rounded-md px-3 py-2 text-sm font-medium text-slate-600 hover:bg-slate-100 hover:text-slate-900 aria-[current=page]:bg-indigo-50 aria-[current=page]:text-indigo-700";

#[component]
pub fn TopBar() -> impl IntoView {
    let session = use_session();
    let user = session.user();
    let is_admin = user.as_ref().is_some_and(|u| u.is_admin());
    view! {
        <header class="sticky top-0 z-30 border-b border-slate-200 bg-white/90 backdrop-blur">
            <div class="mx-auto flex max-w-6xl flex-wrap items-center gap-x-4 gap-y-2 px-4 py-3 sm:px-6">
                <A href="/" attr:class="flex items-center gap-2 text-lg font-bold tracking-tight text-slate-900">
                    <span class="grid h-8 w-8 place-items-center rounded-lg bg-indigo-600 text-sm font-black text-white">"tm"</span>
                    "tokenmeter"
                </A>
                <nav aria-label="Main" class="order-3 -mx-1 flex w-full gap-1 overflow-x-auto sm:order-none sm:mx-0 sm:w-auto">
                    <A href="/chat" attr:class=NAV_LINK>"Chat"</A>
                    <A href="/profile" attr:class=NAV_LINK>"Profile"</A>
                    <A href="/pricing" attr:class=NAV_LINK>"Pricing"</A>
                    {is_admin.then(|| view! { <A href="/admin" attr:class=NAV_LINK>"Admin"</A> })}
                </nav>
                <div class="ml-auto flex items-center gap-2">
                    {match user {
                        Some(user) => view! {
                            <crate::ui::notifications::Bell/>
                            <UserMenu email=user.email.clone() role=user.role.to_string()/>
                        }.into_any(),
                        None => view! {
                            <A href="/login" attr:class="rounded-md px-3 py-2 text-sm font-semibold text-slate-700 hover:bg-slate-100">"Log in"</A>
                            <A href="/signup" attr:class=BTN_PRIMARY>"Sign up"</A>
                        }.into_any(),
                    }}
                </div>
            </div>
        </header>
    }
}

/// The signed-in user's menu: a disclosure (works without JavaScript) with Profile, API tokens
/// and Log out.
#[component]
fn UserMenu(email: String, role: String) -> impl IntoView {
    let initial = email.chars().next().unwrap_or('?').to_ascii_uppercase();
    view! {
        <details class="group relative" data-testid="user-menu">
            <summary class="flex cursor-pointer list-none items-center gap-2 rounded-full py-1 pl-1 pr-3 ring-1 ring-slate-200 hover:bg-slate-50">
                <span class="grid h-7 w-7 place-items-center rounded-full bg-slate-800 text-xs font-bold text-white">{initial.to_string()}</span>
                <span class="hidden max-w-[10rem] truncate text-sm font-medium text-slate-700 sm:inline">{email.clone()}</span>
                <span class="text-slate-400 group-open:rotate-180" aria-hidden="true">"▾"</span>
            </summary>
            <div class="absolute right-0 mt-2 w-60 rounded-xl bg-white p-2 shadow-lg ring-1 ring-slate-200">
                <div class="border-b border-slate-100 px-3 pb-2 pt-1">
                    <p class="truncate text-sm font-medium">{email}</p>
                    <p class="text-xs text-slate-500">{role}</p>
                </div>
                <A href="/profile" attr:class="mt-1 block rounded-md px-3 py-2 text-sm hover:bg-slate-50">"Account"</A>
                <A href="/profile/tokens" attr:class="block rounded-md px-3 py-2 text-sm hover:bg-slate-50">"API tokens"</A>
                <LogOut class="block w-full rounded-md px-3 py-2 text-left text-sm text-red-700 hover:bg-red-50"/>
            </div>
        </details>
    }
}

/// Log out (the user menu's and the Account tab's): a [`PostForm`], so it posts without
/// JavaScript too.
#[component]
pub fn LogOut(class: &'static str) -> impl IntoView {
    view! {
        <PostForm action=use_session().logout read=|_| Logout {}>
            <button type="submit" class=class>"Log out"</button>
        </PostForm>
    }
}

#[component]
pub fn Footer() -> impl IntoView {
    view! {
        <footer class="border-t border-slate-200 bg-white">
            <div class="mx-auto flex max-w-6xl flex-wrap items-center justify-between gap-2 px-4 py-4 text-xs text-slate-500 sm:px-6">
                <span>"tokenmeter — every token, accounted for."</span>
                <span>"Self-hosted"</span>
            </div>
        </footer>
    }
}
