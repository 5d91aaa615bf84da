//! Profile › Account: who you are on this server.

use crate::api::{format_time, UserDto};
use crate::app::use_session;
use crate::ui::common::{BTN_SECONDARY, CARD};
use leptos::prelude::*;

#[component]
pub fn AccountTab() -> impl IntoView {
    let session = use_session();
    view! {
        <Transition fallback=|| ()>
            {move || session.me.get().and_then(|r| r.ok()).flatten().map(|user| view! { <AccountDetails user/> })}
        </Transition>
    }
}

#[component]
fn AccountDetails(user: UserDto) -> impl IntoView {
    let logout = use_session().logout;
    view! {
        <div class=CARD>
            <dl class="grid gap-4 sm:grid-cols-3">
                <div>
                    <dt class="text-xs font-medium uppercase tracking-wide text-slate-500">"Email"</dt>
                    <dd class="mt-1 break-all text-sm font-medium" data-testid="account-email">{user.email.clone()}</dd>
                </div>
                <div>
                    <dt class="text-xs font-medium uppercase tracking-wide text-slate-500">"Role"</dt>
                    <dd class="mt-1 text-sm font-medium">{user.role.to_string()}</dd>
                </div>
                <div>
                    <dt class="text-xs font-medium uppercase tracking-wide text-slate-500">"Member since"</dt>
                    <dd class="mt-1 text-sm font-medium">{format_time(&user.created_at)}</dd>
                </div>
            </dl>
            <div class="mt-6 border-t border-slate-100 pt-6">
                <ActionForm action=logout>
                    <button type="submit" class=BTN_SECONDARY>"Log out"</button>
                </ActionForm>
            </div>
        </div>
    }
}
