//! Admin › Users: every user with role and status; create users, change roles, disable.

use crate::api::admin::{admin_list_users, AdminCreateUser, AdminSetDisabled, AdminSetRole};
use crate::api::{format_time, UserDto};
use crate::app::use_session;
use crate::domain::account::{Role, MIN_PASSWORD_LEN};
use crate::ui::common::{
    action_error, reset_on_success, ErrorNotice, Field, Loading, BTN_PRIMARY, BTN_SECONDARY, CARD,
    INPUT, LABEL,
};
use leptos::prelude::*;

#[component]
pub fn AdminUsersPage() -> impl IntoView {
    let create = ServerAction::<AdminCreateUser>::new();
    let set_role = ServerAction::<AdminSetRole>::new();
    let set_disabled = ServerAction::<AdminSetDisabled>::new();
    let users = Resource::new(
        move || {
            (
                create.version().get(),
                set_role.version().get(),
                set_disabled.version().get(),
            )
        },
        |_| admin_list_users(),
    );
    let my_id = use_session().user().map(|u| u.id);
    let create_error = action_error(create);
    let form = reset_on_success(create);
    let role_error = action_error(set_role);
    let disable_error = action_error(set_disabled);

    view! {
        <h1 class="text-2xl font-bold tracking-tight">"Users"</h1>
        <div class=format!("mt-6 {CARD}")>
            <h2 class="font-semibold">"Add a user"</h2>
            <ActionForm action=create node_ref=form>
                <div class="mt-4 grid gap-3 sm:grid-cols-[1fr_1fr_auto_auto] sm:items-end">
                    <Field id="new-email" name="email" label="Email" kind="email" autocomplete="off"/>
                    <Field id="new-password" name="password" label="Password" kind="password" autocomplete="new-password" minlength=MIN_PASSWORD_LEN/>
                    <div>
                        <label for="new-role" class=LABEL>"Role"</label>
                        <select id="new-role" name="role" class=format!("mt-1 {INPUT}")>
                            {Role::ALL.iter().map(|r| view! { <option value=r.as_str()>{r.as_str()}</option> }).collect_view()}
                        </select>
                    </div>
                    <button type="submit" class=BTN_PRIMARY disabled=move || create.pending().get()>"Add user"</button>
                </div>
            </ActionForm>
            <div class="mt-3">{move || create_error().map(|message| view! { <ErrorNotice message/> })}</div>
        </div>

        <div class="mt-4 space-y-2">
            {move || role_error().or_else(disable_error).map(|message| view! { <ErrorNotice message/> })}
        </div>

        <div class="relative mt-4 overflow-x-auto rounded-2xl bg-white shadow-sm ring-1 ring-slate-200">
            <Transition fallback=|| view! { <div class="px-6"><Loading/></div> }>
                {move || users.get().map(|r| match r {
                    Err(e) => view! { <div class="p-6"><ErrorNotice message=e.message/></div> }.into_any(),
                    Ok(list) => {
                        let me = my_id;
                        view! {
                            <table class="min-w-full divide-y divide-slate-200 text-sm" data-testid="users-table">
                                <thead class="bg-slate-50 text-left text-xs font-semibold uppercase tracking-wide text-slate-500">
                                    <tr>
                                        <th scope="col" class="px-4 py-3">"Email"</th>
                                        <th scope="col" class="px-4 py-3">"Role"</th>
                                        <th scope="col" class="px-4 py-3">"Status"</th>
                                        <th scope="col" class="px-4 py-3">"Joined"</th>
                                        <th scope="col" class="px-4 py-3"><span class="sr-only">"Actions"</span></th>
                                    </tr>
                                </thead>
                                <tbody class="divide-y divide-slate-100">
                                    {list.into_iter().map(|u| {
                                        let is_me = me == Some(u.id);
                                        view! { <UserRow user=u is_me set_role set_disabled/> }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    }
                })}
            </Transition>
        </div>
    }
}

#[component]
fn UserRow(
    user: UserDto,
    is_me: bool,
    set_role: ServerAction<AdminSetRole>,
    set_disabled: ServerAction<AdminSetDisabled>,
) -> impl IntoView {
    let id = user.id;
    let disabled = user.disabled;
    let current_role = user.role;
    view! {
        <tr>
            <td class="px-4 py-3 font-medium">
                {user.email.clone()}
                {is_me.then(|| view! { <span class="ml-2 rounded bg-slate-100 px-1.5 py-0.5 text-xs text-slate-600">"you"</span> })}
            </td>
            <td class="px-4 py-3">
                <select
                    aria-label=format!("Role of {}", user.email)
                    class="rounded-md border-0 py-1 pl-2 pr-8 text-sm ring-1 ring-inset ring-slate-300"
                    disabled=is_me
                    on:change=move |ev| {
                        set_role.dispatch(AdminSetRole { id, role: event_target_value(&ev) });
                    }
                >
                    {Role::ALL.iter().map(|r| view! {
                        <option value=r.as_str() selected=*r == current_role>{r.as_str()}</option>
                    }).collect_view()}
                </select>
            </td>
            <td class="px-4 py-3">
                {if disabled {
                    view! { <span class="rounded-full bg-red-50 px-2 py-0.5 text-xs font-medium text-red-700 ring-1 ring-red-200">"disabled"</span> }.into_any()
                } else {
                    view! { <span class="rounded-full bg-emerald-50 px-2 py-0.5 text-xs font-medium text-emerald-700 ring-1 ring-emerald-200">"active"</span> }.into_any()
                }}
            </td>
            <td class="whitespace-nowrap px-4 py-3 text-slate-500">{format_time(&user.created_at)}</td>
            <td class="px-4 py-3 text-right">
                <button
                    type="button"
                    class=BTN_SECONDARY
                    disabled=is_me
                    on:click=move |_| { set_disabled.dispatch(AdminSetDisabled { id, disabled: !disabled }); }
                >
                    {if disabled { "Enable" } else { "Disable" }}
                </button>
            </td>
        </tr>
    }
}
