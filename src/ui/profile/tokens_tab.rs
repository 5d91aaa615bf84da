//! Profile › API tokens: create (the secret is shown once), list and revoke personal tokens.

use crate::api::tokens::{list_api_tokens, CreateApiToken, RevokeApiToken};
use crate::api::ApiTokenDto;
use crate::domain::account::MAX_TOKEN_NAME_LEN;
use crate::ui::common::{
    action_error, reset_on_success, resource, ErrorNotice, Field, Loading, PostForm, BTN_DANGER,
    BTN_PRIMARY, CARD,
};
use crate::ui::time::format_time;
use leptos::prelude::*;

#[component]
pub fn TokensTab() -> impl IntoView {
    let create = ServerAction::<CreateApiToken>::new();
    let revoke = ServerAction::<RevokeApiToken>::new();
    let tokens = resource(
        move || (create.version().get(), revoke.version().get()),
        |_| list_api_tokens(),
    );
    let create_error = action_error(create);
    let revoke_error = action_error(revoke);
    let created = move || create.value().get().and_then(|r| r.ok());
    let form = reset_on_success(create);

    view! {
        <div class="space-y-6">
            <div class=CARD>
                <h2 class="font-semibold">"New API token"</h2>
                <p class="mt-1 text-sm text-slate-600">
                    "Programs send it as " <code class="rounded bg-slate-100 px-1 text-xs">"Authorization: Bearer <token>"</code>
                    " to the REST API. It acts as you, so keep it secret."
                </p>
                <PostForm action=create node_ref=form read=|form| CreateApiToken { name: form.text("name") }>
                    <div class="mt-4 flex flex-col gap-3 sm:flex-row sm:items-end">
                        <Field id="token-name" name="name" label="Name" maxlength=MAX_TOKEN_NAME_LEN placeholder="e.g. laptop script"/>
                        <button type="submit" class=BTN_PRIMARY disabled=move || create.pending().get()>"Create token"</button>
                    </div>
                </PostForm>
                <div class="mt-3">{move || create_error().map(|message| view! { <ErrorNotice message/> })}</div>
                {move || created().map(|c| view! {
                    <div class="mt-4 rounded-lg border border-emerald-200 bg-emerald-50 p-4" data-testid="new-token">
                        <p class="text-sm font-semibold text-emerald-900">{format!("Token “{}” created. Copy it now: it will not be shown again.", c.token.name)}</p>
                        <code class="mt-2 block select-all break-all rounded bg-white px-3 py-2 font-mono text-sm ring-1 ring-emerald-200" data-testid="new-token-secret">{c.secret}</code>
                    </div>
                })}
            </div>

            <div class=CARD>
                <h2 class="font-semibold">"Your tokens"</h2>
                {move || revoke_error().map(|message| view! { <div class="mt-3"><ErrorNotice message/></div> })}
                <Transition fallback=|| view! { <Loading/> }>
                    {move || tokens.get().map(|result| match result {
                        Err(e) => view! { <div class="mt-3"><ErrorNotice message=e.message/></div> }.into_any(),
                        Ok(list) if list.is_empty() => view! {
                            <p class="mt-3 text-sm text-slate-500">"No tokens yet."</p>
                        }.into_any(),
                        Ok(list) => view! {
                            <ul class="mt-3 divide-y divide-slate-100" data-testid="token-list">
                                {list.into_iter().map(|t| view! { <TokenRow token=t revoke/> }).collect_view()}
                            </ul>
                        }.into_any(),
                    })}
                </Transition>
            </div>
        </div>
    }
}

#[component]
fn TokenRow(token: ApiTokenDto, revoke: ServerAction<RevokeApiToken>) -> impl IntoView {
    let id = token.id;
    let last_used = token
        .last_used_at
        .as_ref()
        .map(format_time)
        .unwrap_or_else(|| "never".into());
    view! {
        <li class="flex flex-col gap-2 py-3 sm:flex-row sm:items-center sm:justify-between">
            <div class="min-w-0">
                <p class="truncate text-sm font-medium">{token.name.clone()}</p>
                <p class="text-xs text-slate-500">
                    <code>{format!("{}…", token.prefix)}</code>
                    {format!(" · created {} · last used {}", format_time(&token.created_at), last_used)}
                </p>
            </div>
            <button
                type="button"
                class=BTN_DANGER
                aria-label=format!("Revoke {}", token.name)
                disabled=move || revoke.pending().get()
                on:click=move |_| { revoke.dispatch(RevokeApiToken { id }); }
            >
                "Revoke"
            </button>
        </li>
    }
}
