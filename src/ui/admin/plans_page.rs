//! Admin › Plans: the plans users can be on, their monthly token limits and which one new users
//! get; edit one in place or add another.

use crate::api::admin::AdminSavePlan;
use crate::api::quota::{list_plans, PlanDto};
use crate::ui::common::{
    action_error, reset_on_success, resource, ErrorNotice, Loading, Submitted, BTN_PRIMARY,
    BTN_SECONDARY, CARD, INPUT, LABEL,
};
use leptos::prelude::*;

#[component]
pub fn AdminPlansPage() -> impl IntoView {
    let save = ServerAction::<AdminSavePlan>::new();
    let plans = resource(move || save.version().get(), |_| list_plans());
    let save_error = action_error(save);
    // The new-plan form starts empty again once a save went through (the forms of saved plans
    // are drawn from the list read again after it).
    let new_plan = reset_on_success(save);
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
                        <PlanForm plan=None save node_ref=new_plan/>
                    </div>
                }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn PlanForm(
    plan: Option<PlanDto>,
    save: ServerAction<AdminSavePlan>,
    #[prop(optional)] node_ref: NodeRef<leptos::html::Form>,
) -> impl IntoView {
    let id = plan.as_ref().map(|p| p.id);
    let key = id.map(|i| i.to_string()).unwrap_or_else(|| "new".into());
    // The fields start from the plan and are read when the form is submitted (no signal per
    // field: a saved plan comes back from the server and the forms are drawn again).
    let limit = plan
        .as_ref()
        .and_then(|p| p.monthly_token_limit)
        .map(|l| l.to_string())
        .unwrap_or_default();
    let order = plan.as_ref().map_or(10, |p| p.sort_order).to_string();
    let is_default = plan.as_ref().is_some_and(|p| p.is_default);
    let (title, name, price, description) = match plan {
        Some(p) => (p.name.clone(), p.name, p.price_label, p.description),
        None => (
            "New plan".into(),
            String::new(),
            String::new(),
            String::new(),
        ),
    };
    let problem = RwSignal::new(None::<String>);
    let field = move |suffix: &str| format!("plan-{key}-{suffix}");
    view! {
        <form class=CARD data-testid="plan-form" node_ref=node_ref on:submit=move |ev| {
            let form = Submitted::take(&ev);
            let raw = form.text("monthly_token_limit").replace([',', '_', ' '], "");
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
            let Ok(sort_order) = form.text("sort_order").trim().parse::<i64>() else {
                problem.set(Some("The order is a whole number.".into()));
                return;
            };
            problem.set(None);
            save.dispatch(AdminSavePlan {
                id,
                name: form.text("name"),
                monthly_token_limit,
                price_label: form.text("price_label"),
                description: form.text("description"),
                sort_order,
                is_default: form.ticked("is_default"),
            });
        }>
            <h2 class="font-semibold">{title}</h2>
            <div class="mt-4 grid gap-3 sm:grid-cols-2 lg:grid-cols-4">
                <div>
                    <label class=LABEL for=field("name")>"Name"</label>
                    <input id=field("name") name="name" class=format!("mt-1 {INPUT}") maxlength="60" required value=name/>
                </div>
                <div>
                    <label class=LABEL for=field("limit")>"Tokens a month"</label>
                    <input id=field("limit") name="monthly_token_limit" class=format!("mt-1 {INPUT}") inputmode="numeric" placeholder="unlimited" value=limit/>
                </div>
                <div>
                    <label class=LABEL for=field("price")>"Price label"</label>
                    <input id=field("price") name="price_label" class=format!("mt-1 {INPUT}") maxlength="40" value=price/>
                </div>
                <div>
                    <label class=LABEL for=field("order")>"Order"</label>
                    <input id=field("order") name="sort_order" class=format!("mt-1 {INPUT}") inputmode="numeric" value=order/>
                </div>
                <div class="sm:col-span-2 lg:col-span-3">
                    <label class=LABEL for=field("description")>"Description"</label>
                    <input id=field("description") name="description" class=format!("mt-1 {INPUT}") maxlength="300" value=description/>
                </div>
                <label class="flex items-center gap-2 self-end text-sm">
                    <input type="checkbox" name="is_default" value="true" checked=is_default/>
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
