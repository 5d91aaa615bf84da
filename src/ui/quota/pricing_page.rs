//! `/pricing`: the plans with their monthly limits; the signed-in user's plan is marked and
//! any other can be asked for (admins see the request on Admin › Users).

use super::use_usage;
use crate::api::quota::{list_plans, PlanDto, RequestPlan};
use crate::domain::numbers::grouped;
use crate::ui::common::{action_error, resource, ErrorNotice, Loading, BTN_PRIMARY, BTN_SECONDARY};
use crate::ui::session::use_session;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

fn limit_label(limit: Option<i64>) -> String {
    match limit {
        None => "Unlimited tokens".into(),
        Some(n) => format!("{} tokens a month", grouped(n)),
    }
}

#[component]
pub fn PricingPage() -> impl IntoView {
    let plans = resource(|| (), |_| list_plans());
    let request = ServerAction::<RequestPlan>::new();
    let request_error = action_error(request);
    let signed_in = use_session().user().is_some();
    view! {
        <Title text="Pricing"/>
        <section class="mx-auto max-w-5xl">
            <h1 class="text-2xl font-bold tracking-tight sm:text-3xl">"Plans"</h1>
            <p class="mt-2 text-slate-600">
                "Every plan is a monthly token quota, counted from the first of the month. You are warned as you near it and offered a bigger plan; at the limit, sends stop until the month resets or your plan changes. "
                {if signed_in {
                    "Ask for another plan and an admin of this server will switch you."
                } else {
                    "Sign up to start on the default plan; an admin can move you to another."
                }}
            </p>
            <div class="mt-4">{move || request_error().map(|message| view! { <ErrorNotice message/> })}</div>
            {move || request.value().get().and_then(|r| r.ok()).map(|_| view! {
                <p class="mt-4 rounded-lg border border-emerald-200 bg-emerald-50 px-4 py-3 text-sm text-emerald-900" role="status" data-testid="plan-requested">
                    "Request sent. An admin will switch your plan."
                </p>
            })}
            <Transition fallback=|| view! { <Loading/> }>
                {move || plans.get().map(|result| match result {
                    Err(e) => view! { <ErrorNotice message=e.message/> }.into_any(),
                    Ok(list) => view! {
                        <div class="mt-6 grid gap-4 sm:grid-cols-2 lg:grid-cols-3" data-testid="plans">
                            {list.into_iter().map(|plan| view! { <PlanCard plan request signed_in/> }).collect_view()}
                        </div>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn PlanCard(plan: PlanDto, request: ServerAction<RequestPlan>, signed_in: bool) -> impl IntoView {
    let usage = use_usage();
    let id = plan.id;
    let current = move || usage.usage.get().is_some_and(|u| u.plan.id == id);
    view! {
        <div
            class=move || format!(
                "flex flex-col rounded-2xl bg-white p-6 shadow-sm ring-1 {}",
                if current() { "ring-2 ring-indigo-500" } else { "ring-slate-200" },
            )
            data-testid="plan"
        >
            <div class="flex items-center justify-between gap-2">
                <h2 class="text-lg font-semibold">{plan.name.clone()}</h2>
                <Show when=current>
                    <span class="rounded-full bg-indigo-50 px-2 py-0.5 text-xs font-semibold text-indigo-700" data-testid="current-plan">"Your plan"</span>
                </Show>
            </div>
            <p class="mt-1 text-sm font-medium text-slate-900">{plan.price_label.clone()}</p>
            <p class="mt-3 text-2xl font-bold tracking-tight">{limit_label(plan.monthly_token_limit)}</p>
            <p class="mt-2 flex-1 text-sm text-slate-600">{plan.description.clone()}</p>
            <div class="mt-6">
                {if signed_in {
                    view! {
                        <Show
                            when=current
                            fallback=move || view! {
                                <button
                                    type="button"
                                    class=BTN_PRIMARY
                                    disabled=move || request.pending().get()
                                    on:click=move |_| { request.dispatch(RequestPlan { plan_id: id }); }
                                >
                                    "Ask for this plan"
                                </button>
                            }
                        >
                            <p class="text-sm text-slate-500">"You are on this plan."</p>
                        </Show>
                    }.into_any()
                } else {
                    view! { <A href="/signup" attr:class=BTN_SECONDARY>"Sign up"</A> }.into_any()
                }}
            </div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn limits_are_grouped_by_thousands() {
        assert_eq!(super::limit_label(Some(100_000)), "100,000 tokens a month");
        assert_eq!(
            super::limit_label(Some(2_000_000)),
            "2,000,000 tokens a month"
        );
        assert_eq!(super::limit_label(Some(999)), "999 tokens a month");
        assert_eq!(super::limit_label(None), "Unlimited tokens");
    }
}
