//! Profile › Account: who you are on this server.

use crate::api::auth::ChangePassword;
use crate::api::UserDto;
use crate::domain::account::MIN_PASSWORD_LEN;
use crate::ui::common::{
    action_error, reset_on_success, ErrorNotice, Field, PostForm, BTN_PRIMARY, BTN_SECONDARY, CARD,
};
use crate::ui::layout::LogOut;
use crate::ui::session::use_session;
use crate::ui::time::format_time;
use leptos::prelude::*;

#[component]
pub fn AccountTab() -> impl IntoView {
    view! {
        {use_session().user().map(|user| view! { <AccountDetails user/> })}
        <PasswordForm/>
    }
}

#[component]
fn AccountDetails(user: UserDto) -> impl IntoView {
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
                    <dd class="mt-1 text-sm font-medium" data-testid="member-since">{format_time(&user.created_at)}</dd>
                </div>
            </dl>
            <div class="mt-6 border-t border-slate-100 pt-6">
                <LogOut class=BTN_SECONDARY/>
            </div>
        </div>
    }
}

#[component]
fn PasswordForm() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let error = action_error(change);
    let form = reset_on_success(change);
    let done = move || change.value().get().and_then(|r| r.ok());
    view! {
        <div class=format!("mt-6 {CARD}")>
            <h2 class="font-semibold">"Change password"</h2>
            <p class="mt-1 text-sm text-slate-600">"Your other sessions are signed out when you change it."</p>
            <PostForm action=change node_ref=form read=|form| ChangePassword {
                current_password: form.text("current_password"),
                new_password: form.text("new_password"),
                revoke_api_tokens: Some(form.ticked("revoke_api_tokens")),
            }>
                <div class="mt-4 grid gap-4 sm:grid-cols-2">
                    <Field id="current-password" name="current_password" label="Current password" kind="password" autocomplete="current-password"/>
                    <Field id="new-password" name="new_password" label="New password" kind="password" autocomplete="new-password" minlength=MIN_PASSWORD_LEN hint=format!("At least {MIN_PASSWORD_LEN} characters.")/>
                </div>
                <label class="mt-4 flex items-center gap-2 text-sm text-slate-700">
                    <input type="checkbox" id="revoke-api-tokens" name="revoke_api_tokens" value="true" class="h-4 w-4 rounded border-slate-300"/>
                    "Also revoke my API tokens (programs using them stop working)"
                </label>
                <div class="mt-4 flex flex-wrap items-center gap-3">
                    <button type="submit" class=BTN_PRIMARY disabled=move || change.pending().get()>"Change password"</button>
                    {move || done().map(|ended| view! {
                        <p role="status" class="text-sm text-emerald-700">
                            {format!(
                                "Password changed. {} other session(s) signed out, {} API token(s) revoked.",
                                ended.other_sessions_ended,
                                ended.api_tokens_revoked,
                            )}
                        </p>
                    })}
                </div>
            </PostForm>
            <div class="mt-3">{move || error().map(|message| view! { <ErrorNotice message/> })}</div>
        </div>
    }
}
