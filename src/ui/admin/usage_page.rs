//! `/admin/usage`: everyone's usage over a date range: totals, daily bars, the top users, the
//! models, and a CSV export of every user's days.

use crate::api::usage::admin_usage_analytics;
use crate::domain::money::{format_usd, parse_usd};
use crate::domain::numbers::{grouped, percent_tenths, tenths};
use crate::ui::common::{resource, ErrorNotice, Loading, BTN_PRIMARY, CARD, INPUT, LABEL};
use crate::ui::usage::{ModelTable, TotalsCards, UsageHistoryChart};
use leptos::prelude::*;
use leptos_meta::Title;

/// The preset ranges, in days ending today.
const PRESETS: [i64; 3] = [7, 30, 90];

#[component]
pub fn AdminUsagePage() -> impl IntoView {
    // The range asked for; `None`: the server's default (the last 30 days).
    let range = RwSignal::new((None::<String>, None::<String>));
    let preset = RwSignal::new(Some(30i64));
    let analytics = resource(
        move || range.get(),
        |(from, to)| admin_usage_analytics(from, to),
    );
    // The inputs show the range the server answered for.
    let from_input = RwSignal::new(String::new());
    let to_input = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(Ok(a)) = analytics.get() {
            from_input.set(a.from.clone());
            to_input.set(a.to.clone());
        }
    });
    let apply_preset = move |days: i64| {
        preset.set(Some(days));
        let to = to_input.get_untracked();
        let to = crate::domain::time::parse_day(&to);
        match to {
            Some(to) => range.set((
                Some((to - chrono::Duration::days(days - 1)).to_string()),
                Some(to.to_string()),
            )),
            None => range.set((None, None)),
        }
    };
    let csv_href = move || {
        format!(
            "/api/admin/usage?from={}&to={}&format=csv",
            from_input.get(),
            to_input.get()
        )
    };
    view! {
        <Title text="Usage"/>
        <h1 class="text-2xl font-bold tracking-tight">"Usage"</h1>
        <p class="mt-1 text-sm text-slate-600">"Everyone's tokens, requests and cost per day."</p>
        <form
            class="mt-6 flex flex-wrap items-end gap-3"
            on:submit=move |ev| {
                ev.prevent_default();
                preset.set(None);
                range.set((Some(from_input.get_untracked()), Some(to_input.get_untracked())));
            }
        >
            <div>
                <label for="usage-from" class=LABEL>"From"</label>
                <input id="usage-from" type="date" class=INPUT
                    prop:value=move || from_input.get()
                    on:input=move |ev| from_input.set(event_target_value(&ev))/>
            </div>
            <div>
                <label for="usage-to" class=LABEL>"To"</label>
                <input id="usage-to" type="date" class=INPUT
                    prop:value=move || to_input.get()
                    on:input=move |ev| to_input.set(event_target_value(&ev))/>
            </div>
            <button type="submit" class=BTN_PRIMARY>"Show"</button>
            <div role="group" aria-label="Presets" class="inline-flex rounded-lg bg-white p-1 text-sm shadow-sm ring-1 ring-slate-200">
                {PRESETS.iter().map(|&d| view! {
                    <button
                        type="button"
                        aria-pressed=move || (preset.get() == Some(d)).to_string()
                        class="rounded-md px-3 py-1 font-medium text-slate-600 aria-pressed:bg-indigo-600 aria-pressed:text-white"
                        data-testid=format!("preset-{d}")
                        on:click=move |_| apply_preset(d)
                    >
                        {format!("{d} days")}
                    </button>
                }).collect_view()}
            </div>
            <a class="ml-auto text-sm font-medium text-indigo-700 hover:underline" href=csv_href download="" data-testid="usage-csv">
                "Export CSV"
            </a>
        </form>
        <div class="mt-6 space-y-6">
            <Transition fallback=|| view! { <Loading/> }>
                {move || analytics.get().map(|r| match r {
                    Err(e) => view! { <ErrorNotice message=e.message/> }.into_any(),
                    Ok(a) => {
                        let data = Signal::stored(a.daily.clone());
                        let total = a.totals.tokens_used.max(1);
                        view! {
                            <TotalsCards totals=a.totals.clone()/>
                            <div class=CARD>
                                <h2 class="font-semibold">{format!("Everyone, {} to {}", a.from, a.to)}</h2>
                                {(a.drifted_days > 0).then(|| view! {
                                    <p class="mt-2 text-sm text-amber-800" data-testid="usage-drift">
                                        {format!("{} user-day(s) differ by more than 1% from LiteLLM (amber bars).", a.drifted_days)}
                                    </p>
                                })}
                                <div class="mt-4"><UsageHistoryChart data/></div>
                            </div>
                            <div class=CARD>
                                <h2 class="font-semibold">"Top users"</h2>
                                {if a.top_users.is_empty() {
                                    view! { <p class="mt-3 text-sm text-slate-500">"Nobody used anything in this range."</p> }.into_any()
                                } else {
                                    view! {
                                        <div class="mt-3 overflow-x-auto">
                                            <table class="w-full text-left text-sm" data-testid="top-users">
                                                <thead class="text-xs uppercase text-slate-500">
                                                    <tr>
                                                        <th scope="col" class="py-1 pr-3">"User"</th>
                                                        <th scope="col" class="py-1 pr-3 text-right">"Tokens"</th>
                                                        <th scope="col" class="py-1 pr-3 text-right">"Share"</th>
                                                        <th scope="col" class="py-1 pr-3 text-right">"Requests"</th>
                                                        <th scope="col" class="py-1 text-right">"Cost"</th>
                                                    </tr>
                                                </thead>
                                                <tbody class="divide-y divide-slate-100 tabular-nums">
                                                    {a.top_users.into_iter().map(|u| view! {
                                                        <tr>
                                                            <th scope="row" class="max-w-56 break-all py-2 pr-3 font-medium">
                                                                <a class="text-indigo-700 hover:underline" href=format!("/admin/users/{}", u.user_id)>{u.email}</a>
                                                            </th>
                                                            <td class="py-2 pr-3 text-right">{grouped(u.tokens_used)}</td>
                                                            <td class="py-2 pr-3 text-right">{format!("{}%", tenths(percent_tenths(u.tokens_used, total)))}</td>
                                                            <td class="py-2 pr-3 text-right">{grouped(u.requests_count)}</td>
                                                            <td class="py-2 text-right">{format_usd(parse_usd(&u.estimated_cost).unwrap_or(0))}</td>
                                                        </tr>
                                                    }).collect_view()}
                                                </tbody>
                                            </table>
                                        </div>
                                    }.into_any()
                                }}
                            </div>
                            <ModelTable models=a.by_model.clone() total_tokens=a.totals.tokens_used/>
                        }.into_any()
                    }
                })}
            </Transition>
        </div>
    }
}
