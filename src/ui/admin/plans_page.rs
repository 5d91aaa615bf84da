//! Admin › Plans: the plans users can be on, their monthly token limits and which one new users
//! get; edit one in place or add another.

use crate::api::admin::AdminSavePlan;
use crate::api::quota::{list_plans, PlanDto};
use crate::ui::common::{
    action_error, ErrorNotice, Loading, BTN_PRIMARY, BTN_SECONDARY, CARD, INPUT, LABEL,
};
use leptos::prelude::*;

#[component]
pub fn AdminPlansPage() -> impl IntoView {
    let save = ServerAction::<AdminSavePlan>::new();
    let plans = Resource::new(move || save.version().get(), |_| list_plans());
    let save_error = action_error(save);
    view! {
        <h1 class="text-2xl font-bold tracking-tight">"Plans"</h1>
        <p class="mt-1 text-sm text-slate-600">"Monthly token limits. Leave the limit empty for unlimited."</p>
        <div class="mt-4">{move || save_error().map(|message| view! { <ErrorNotice message/> })}</div>
        <Transition fallback=|| view! { <Loading/> }>
            {move || plans.get().map(|result| match result {
                Err(e) => view! { <ErrorNotice message=e.message/> }.into_any(),
                Ok(list) => view! {
                    <div class="mt-4 space-y-4" data-testid="plan-forms">
                        {list.into_iter().map(|p| view! { <PlanForm plan=Some(p) save/> }).collect_view()}
                        <PlanForm plan=None save/>
                    </div>
                }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn PlanForm(plan: Option<PlanDto>, save: ServerAction<AdminSavePlan>) -> impl IntoView {
    let id = plan.as_ref().map(|p| p.id);
    let key = id.map(|i| i.to_string()).unwrap_or_else(|| "new".into());
    let name = RwSignal::new(plan.as_ref().map(|p| p.name.clone()).unwrap_or_default());
    let limit = RwSignal::new(
        plan.as_ref()
            .and_then(|p| p.monthly_token_limit)
            .map(|l| l.to_string())
            .unwrap_or_default(),
    );
    let price = RwSignal::new(
        plan.as_ref()
            .map(|p| p.price_label.clone())
            .unwrap_or_default(),
    );
    let description = RwSignal::new(
        plan.as_ref()
            .map(|p| p.description.clone())
            .unwrap_or_default(),
    );
    let order = RwSignal::new(
        plan.as_ref()
            .map(|p| p.sort_order)
            .unwrap_or(10)
            .to_string(),
    );
    let is_default = RwSignal::new(plan.as_ref().is_some_and(|p| p.is_default));
    let problem = RwSignal::new(None::<String>);
    let title = plan
        .as_ref()
        .map(|p| p.name.clone())
        .unwrap_or_else(|| "New plan".into());
    let field = move |suffix: &str| format!("plan-{key}-{suffix}");
    view! {
        <form class=CARD data-testid="plan-form" on:submit=move |ev| {
            ev.prevent_default();
            let raw = limit.get_untracked().replace([',', '_', ' '], "");
            let monthly_token_limit = if raw.is_empty() {
                None
            } else {
                match raw.parse::<i64>() {
                    Ok(n) if n >= 0 => Some(n),
                    _ => {
                        problem.set(Some("The limit is a whole number of tokens, or empty for unlimited.".into()));
                        return;
                    }
                }
            };
            let Ok(sort_order) = order.get_untracked().trim().parse::<i64>() else {
                problem.set(Some("The order is a whole number.".into()));
                return;
            };
            problem.set(None);
            save.dispatch(AdminSavePlan {
                id,
                name: name.get_untracked(),
                monthly_token_limit,
                price_label: price.get_untracked(),
                description: description.get_untracked(),
                sort_order,
                is_default: is_default.get_untracked(),
            });
        }>
            <h2 class="font-semibold">{title}</h2>
            <div class="mt-4 grid gap-3 sm:grid-cols-2 lg:grid-cols-4">
                <div>
                    <label class=LABEL for=field("name")>"Name"</label>
                    <input id=field("name") class=format!("mt-1 {INPUT}") maxlength="60" required
                        prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/>
                </div>
                <div>
                    <label class=LABEL for=field("limit")>"Tokens a month"</label>
                    <input id=field("limit") class=format!("mt-1 {INPUT}") inputmode="numeric" placeholder="unlimited"
                        prop:value=move || limit.get() on:input=move |ev| limit.set(event_target_value(&ev))/>
                </div>
                <div>
                    <label class=LABEL for=field("price")>"Price label"</label>
                    <input id=field("price") class=format!("mt-1 {INPUT}") maxlength="40"
                        prop:value=move || price.get() on:input=move |ev| price.set(event_target_value(&ev))/>
                </div>
                <div>
                    <label class=LABEL for=field("order")>"Order"</label>
                    <input id=field("order") class=format!("mt-1 {INPUT}") inputmode="numeric"
                        prop:value=move || order.get() on:input=move |ev| order.set(event_target_value(&ev))/>
                </div>
                <div class="sm:col-span-2 lg:col-span-3">
                    <label class=LABEL for=field("description")>"Description"</label>
                    <input id=field("description") class=format!("mt-1 {INPUT}") maxlength="300"
                        prop:value=move || description.get() on:input=move |ev| description.set(event_target_value(&ev))/>
                </div>
                <label class="flex items-center gap-2 self-end text-sm">
                    <input type="checkbox" prop:checked=move || is_default.get()
                        on:change=move |ev| is_default.set(event_target_checked(&ev))/>
                    "New users get this plan"
                </label>
            </div>
            {move || problem.get().map(|p| view! { <p class="mt-3 text-sm text-red-700" role="alert">{p}</p> })}
            <div class="mt-4">
                <button type="submit" class=if id.is_some() { BTN_SECONDARY } else { BTN_PRIMARY }
                    disabled=move || save.pending().get()>
                    {if id.is_some() { "Save" } else { "Add plan" }}
                </button>
            </div>
        </form>
    }
}
