//! Admin › Users: every user with role, status, plan and this month's usage; create users,
//! change roles, disable, put users on a plan or give them a personal limit, see plan requests.

use crate::api::admin::{
    admin_list_users, AdminCreateUser, AdminDecideSignup, AdminSetDisabled, AdminSetLimit,
    AdminSetPlan, AdminSetRole,
};
use crate::api::quota::{AdminUserDto, PlanDto};
use crate::domain::account::{Approval, Role, MIN_PASSWORD_LEN};
use crate::domain::numbers::grouped;
use crate::ui::common::{
    action_error, reset_on_success, resource, ErrorNotice, Field, Loading, PostForm, BTN_PRIMARY,
    CARD, INPUT, LABEL,
};
use crate::ui::session::use_session;
use crate::ui::time::format_time;
use leptos::prelude::*;

#[component]
pub fn AdminUsersPage() -> impl IntoView {
    let create = ServerAction::<AdminCreateUser>::new();
    let set_role = ServerAction::<AdminSetRole>::new();
    let set_disabled = ServerAction::<AdminSetDisabled>::new();
    let set_plan = ServerAction::<AdminSetPlan>::new();
    let set_limit = ServerAction::<AdminSetLimit>::new();
    let decide = ServerAction::<AdminDecideSignup>::new();
    let users = resource(
        move || {
            (
                create.version().get(),
                set_role.version().get(),
                set_disabled.version().get(),
                set_plan.version().get(),
                set_limit.version().get(),
                decide.version().get(),
            )
        },
        |_| admin_list_users(),
    );
    let plan_error = action_error(set_plan);
    let limit_error = action_error(set_limit);
    let actions = RowActions {
        set_role,
        set_disabled,
        set_plan,
        set_limit,
        decide,
    };
    let my_id = use_session().user().map(|u| u.id);
    let create_error = action_error(create);
    let form = reset_on_success(create);
    let role_error = action_error(set_role);
    let disable_error = action_error(set_disabled);
    let decide_error = action_error(decide);
    let by_run_out = RwSignal::new(false);

    view! {
        <h1 class="text-2xl font-bold tracking-tight">"Users"</h1>
        <div class=format!("mt-6 {CARD}")>
            <h2 class="font-semibold">"Add a user"</h2>
            <PostForm action=create node_ref=form read=|form| AdminCreateUser {
                email: form.text("email"),
                password: form.text("password"),
                role: form.text("role"),
            }>
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
            </PostForm>
            <div class="mt-3">{move || create_error().map(|message| view! { <ErrorNotice message/> })}</div>
        </div>

        <div class="mt-4 space-y-2">
            {move || role_error()
                .or_else(disable_error)
                .or_else(plan_error)
                .or_else(limit_error)
                .or_else(decide_error)
                .map(|message| view! { <ErrorNotice message/> })}
        </div>

        <div class="mt-4 flex items-center justify-end gap-2">
            <label for="users-order" class="text-sm text-slate-600">"Order"</label>
            <select
                id="users-order"
                class="rounded-lg border-0 bg-white py-1.5 pl-3 pr-8 text-sm ring-1 ring-inset ring-slate-300"
                data-testid="users-order"
                on:change=move |ev| by_run_out.set(event_target_value(&ev) == "runs_out")
            >
                <option value="joined">"Pending first, then by sign-up"</option>
                <option value="runs_out">"Runs out first"</option>
            </select>
        </div>

        <div class="relative mt-2 overflow-x-auto rounded-2xl bg-white shadow-sm ring-1 ring-slate-200">
            <Transition fallback=|| view! { <div class="px-6"><Loading/></div> }>
                {move || users.get().map(|r| match r {
                    Err(e) => view! { <div class="p-6"><ErrorNotice message=e.message/></div> }.into_any(),
                    Ok(page) => {
                        let me = my_id;
                        let plans = page.plans;
                        view! {
                            <table class="min-w-full divide-y divide-slate-200 text-sm" data-testid="users-table">
                                <thead class="bg-slate-50 text-left text-xs font-semibold uppercase tracking-wide text-slate-500">
                                    <tr>
                                        <th scope="col" class="px-4 py-3">"User"</th>
                                        <th scope="col" class="px-4 py-3">"Role"</th>
                                        <th scope="col" class="px-4 py-3">"Plan"</th>
                                        <th scope="col" class="px-4 py-3">"This month"</th>
                                        <th scope="col" class="px-4 py-3">"Personal limit"</th>
                                    </tr>
                                </thead>
                                <tbody class="divide-y divide-slate-100">
                                    {ordered(page.users, by_run_out.get()).into_iter().map(|u| {
                                        let is_me = me == Some(u.user.id);
                                        view! { <UserRow row=u plans=plans.clone() is_me actions/> }
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

/// The users as the server lists them, or (`by_run_out`) blocked first, then by the day the
/// forecast reaches their limit, soonest first, then the rest.
pub fn ordered(mut users: Vec<AdminUserDto>, by_run_out: bool) -> Vec<AdminUserDto> {
    if by_run_out {
        // `YYYY-MM-DD` sorts as text; the order is stable within each group.
        users.sort_by_key(|u| match (&u.runs_out_on, u.is_blocked) {
            (_, true) => (0, String::new()),
            (Some(day), false) => (1, day.clone()),
            (None, false) => (2, String::new()),
        });
    }
    users
}

#[derive(Clone, Copy)]
struct RowActions {
    set_role: ServerAction<AdminSetRole>,
    set_disabled: ServerAction<AdminSetDisabled>,
    set_plan: ServerAction<AdminSetPlan>,
    set_limit: ServerAction<AdminSetLimit>,
    decide: ServerAction<AdminDecideSignup>,
}

#[component]
fn UserRow(
    row: AdminUserDto,
    plans: Vec<PlanDto>,
    is_me: bool,
    actions: RowActions,
) -> impl IntoView {
    let RowActions {
        set_role,
        set_disabled,
        set_plan,
        set_limit,
        decide,
    } = actions;
    let user = row.user.clone();
    let id = user.id;
    let disabled = user.disabled;
    let current_role = user.role;
    view! {
        <tr>
            <td class="max-w-64 px-4 py-3">
                <p class="break-all font-medium">
                    <a class="text-indigo-700 hover:underline" href=format!("/admin/users/{id}") data-testid="user-detail-link">{user.email.clone()}</a>
                    {is_me.then(|| view! { <span class="ml-2 inline-block break-normal rounded bg-slate-100 px-1.5 py-0.5 text-xs text-slate-600">"you"</span> })}
                </p>
                <p class="mt-1 flex flex-wrap items-center gap-x-2 gap-y-1 text-xs text-slate-500">
                    {match (user.approval, disabled) {
                        (Approval::Pending, _) => view! {
                            <span class="rounded-full bg-amber-50 px-2 py-0.5 font-medium text-amber-800 ring-1 ring-amber-200" data-testid="pending-badge">"waiting for approval"</span>
                            <button
                                type="button"
                                class="rounded-md bg-indigo-600 px-2 py-0.5 font-semibold text-white hover:bg-indigo-500"
                                on:click=move |_| { decide.dispatch(AdminDecideSignup { id, approve: true }); }
                            >"Approve"</button>
                            <button
                                type="button"
                                class="rounded-md px-2 py-0.5 font-semibold text-red-700 ring-1 ring-inset ring-red-300 hover:bg-red-50"
                                on:click=move |_| { decide.dispatch(AdminDecideSignup { id, approve: false }); }
                            >"Reject"</button>
                        }.into_any(),
                        (Approval::Rejected, _) => view! {
                            <span class="rounded-full bg-red-50 px-2 py-0.5 font-medium text-red-700 ring-1 ring-red-200">"rejected"</span>
                        }.into_any(),
                        (Approval::Approved, true) => view! {
                            <span class="rounded-full bg-red-50 px-2 py-0.5 font-medium text-red-700 ring-1 ring-red-200">"disabled"</span>
                        }.into_any(),
                        (Approval::Approved, false) => view! {
                            <span class="rounded-full bg-emerald-50 px-2 py-0.5 font-medium text-emerald-700 ring-1 ring-emerald-200">"active"</span>
                        }.into_any(),
                    }}
                    <span class="whitespace-nowrap">{format!("joined {}", format_time(&user.created_at))}</span>
                    <button
                        type="button"
                        class="rounded-md px-2 py-0.5 font-semibold text-slate-700 ring-1 ring-inset ring-slate-300 hover:bg-slate-50 disabled:cursor-not-allowed disabled:opacity-40"
                        disabled=is_me
                        on:click=move |_| { set_disabled.dispatch(AdminSetDisabled { id, disabled: !disabled }); }
                    >
                        {if disabled { "Enable" } else { "Disable" }}
                    </button>
                </p>
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
                <select
                    aria-label=format!("Plan of {}", user.email)
                    class="rounded-md border-0 py-1 pl-2 pr-8 text-sm ring-1 ring-inset ring-slate-300"
                    on:change=move |ev| {
                        let plan_id = uuid::Uuid::parse_str(&event_target_value(&ev)).ok();
                        set_plan.dispatch(AdminSetPlan { id, plan_id });
                    }
                >
                    {plans.iter().map(|p| view! {
                        <option value=p.id.to_string() selected=p.id == row.plan_id>{p.name.clone()}</option>
                    }).collect_view()}
                </select>
                {row.requested_plan.clone().map(|r| view! {
                    <p class="mt-1 text-xs font-medium text-indigo-700" data-testid="plan-request">
                        {format!("asks for {} ({})", r.name, format_time(&r.requested_at))}
                    </p>
                })}
            </td>
            <td class="min-w-40 px-4 py-3">
                <UsageCell row=row.clone()/>
            </td>
            <td class="px-4 py-3">
                <LimitForm id email=user.email.clone() current=row.token_limit_override set_limit/>
            </td>
        </tr>
    }
}

/// "8,000 of 10,000 (80%)" with a bar and the flags that are up.
#[component]
fn UsageCell(row: AdminUserDto) -> impl IntoView {
    let text = match row.limit {
        Some(limit) => format!(
            "{} of {} ({})",
            grouped(row.tokens_used),
            grouped(limit),
            crate::ui::quota::percent_label(row.percentage)
        ),
        None => format!("{} (unlimited)", grouped(row.tokens_used)),
    };
    let fill = crate::ui::quota::bar(row.percentage);
    let bar = if row.is_blocked || row.is_upgrade_suggested {
        "bg-red-500"
    } else if row.is_warning {
        "bg-amber-500"
    } else {
        "bg-indigo-500"
    };
    let flag = if row.is_blocked {
        Some(("blocked", "bg-red-50 text-red-700 ring-red-200"))
    } else if row.is_upgrade_suggested {
        Some(("near limit", "bg-red-50 text-red-700 ring-red-200"))
    } else if row.is_warning {
        Some(("warning", "bg-amber-50 text-amber-800 ring-amber-200"))
    } else {
        None
    };
    let projection = {
        let mut text = format!(
            "at this pace {} tokens, ${}",
            grouped(row.projected_tokens),
            row.projected_cost
        );
        if let Some(day) = row
            .runs_out_on
            .as_deref()
            .and_then(crate::domain::time::parse_day)
        {
            text.push_str(&format!(
                " · runs out {}",
                crate::domain::time::short_day(day)
            ));
        }
        text
    };
    view! {
        <p class="whitespace-nowrap text-xs text-slate-600" data-testid="user-usage">{text}</p>
        <p class="whitespace-nowrap text-xs text-slate-400" data-testid="user-projection">{projection}</p>
        <div class="mt-1 h-1.5 w-full rounded-full bg-slate-100">
            <div class=format!("h-1.5 rounded-full {bar}") style=fill.style></div>
        </div>
        {flag.map(|(label, colors)| view! {
            <span class=format!("mt-1 inline-block rounded-full px-2 py-0.5 text-xs font-medium ring-1 {colors}") data-testid="user-flag">{label}</span>
        })}
    }
}

/// A personal monthly limit: a number overrides the plan, empty clears the override.
#[component]
fn LimitForm(
    id: uuid::Uuid,
    email: String,
    current: Option<i64>,
    set_limit: ServerAction<AdminSetLimit>,
) -> impl IntoView {
    let value = RwSignal::new(current.map(|l| l.to_string()).unwrap_or_default());
    let problem = RwSignal::new(None::<String>);
    view! {
        <form class="flex items-center gap-2" on:submit=move |ev| {
            ev.prevent_default();
            let raw = value.get_untracked();
            let raw = raw.trim();
            if raw.is_empty() {
                problem.set(None);
                set_limit.dispatch(AdminSetLimit { id, limit: None });
            } else {
                match raw.replace([',', '_', ' '], "").parse::<i64>() {
                    Ok(limit) if limit >= 0 => {
                        problem.set(None);
                        set_limit.dispatch(AdminSetLimit { id, limit: Some(limit) });
                    }
                    _ => problem.set(Some("a whole number of tokens, or empty for the plan's".into())),
                }
            }
        }>
            <input
                class="w-24 rounded-md border-0 px-2 py-1 text-sm ring-1 ring-inset ring-slate-300"
                inputmode="numeric"
                placeholder="plan's"
                aria-label=format!("Personal limit of {email}")
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
            />
            <button type="submit" class="rounded-md px-2 py-1 text-xs font-semibold text-indigo-700 ring-1 ring-inset ring-indigo-200 hover:bg-indigo-50">"Save"</button>
        </form>
        {move || problem.get().map(|p| view! { <p class="mt-1 text-xs text-red-700" role="alert">{p}</p> })}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::UserDto;

    fn user(n: u128, runs_out_on: Option<&str>, is_blocked: bool) -> AdminUserDto {
        AdminUserDto {
            user: UserDto {
                id: uuid::Uuid::from_u128(n),
                email: format!("u{n}@example.com"),
                role: Role::User,
                disabled: false,
                approval: Approval::Approved,
                created_at: chrono::Utc::now(),
            },
            plan_id: uuid::Uuid::nil(),
            plan_name: "Free".into(),
            token_limit_override: None,
            limit: Some(100),
            tokens_used: 0,
            percentage: 0.0,
            is_warning: is_blocked,
            is_upgrade_suggested: is_blocked,
            is_blocked,
            requested_plan: None,
            projected_tokens: 0,
            projected_cost: "0.00".into(),
            runs_out_on: runs_out_on.map(str::to_string),
        }
    }

    #[test]
    fn runs_out_first_puts_the_blocked_then_the_soonest() {
        let users = vec![
            user(1, None, false),
            user(2, Some("2026-12-19"), false),
            user(3, None, true),
            user(4, Some("2026-12-05"), false),
        ];
        let ids = |list: Vec<AdminUserDto>| -> Vec<u128> {
            list.iter().map(|u| u.user.id.as_u128()).collect()
        };
        assert_eq!(ids(ordered(users.clone(), false)), [1, 2, 3, 4]);
        assert_eq!(ids(ordered(users, true)), [3, 4, 2, 1]);
    }
}
