//! `UsageHistoryChart`: a day's bar per day, drawn with CSS (no chart library). Hovering or
//! focusing a bar shows its exact values; the arrow keys, Home and End move between bars (one
//! tab stop for the chart); tabs switch the metric; a table says the same for screen readers
//! and for anyone who prefers numbers.

use super::{requests_label, Metric, METRICS};
use crate::api::usage::UsageDayDto;
use crate::domain::money::format_usd;
use crate::domain::numbers::{grouped, percent_tenths, tenths};
use leptos::prelude::*;

/// The bar heights in tenths of a percent of the highest day (a day with any use gets at
/// least a sliver, 1.5 %).
pub fn bar_heights(values: &[i64]) -> Vec<i64> {
    let max = values.iter().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|&v| {
            if max == 0 || v <= 0 {
                0
            } else {
                percent_tenths(v, max).max(15)
            }
        })
        .collect()
}

#[component]
pub fn UsageHistoryChart(
    /// Every day of the range, oldest first.
    #[prop(into)]
    data: Signal<Vec<UsageDayDto>>,
    /// The metric shown first.
    #[prop(optional)]
    metric: Metric,
) -> impl IntoView {
    let metric = RwSignal::new(metric);
    // The bar being looked at (hover or focus); the tooltip belongs to it.
    let active = RwSignal::new(None::<usize>);
    let bars = NodeRef::<leptos::html::Div>::new();
    let values = Memo::new(move |_| {
        let m = metric.get();
        data.with(|days| days.iter().map(|d| m.value(d)).collect::<Vec<i64>>())
    });
    // Empty means no use at all (a free model's use still shows, at $0).
    let empty = move || {
        data.with(|days| {
            days.iter()
                .all(|d| d.tokens_used == 0 && d.requests_count == 0)
        })
    };
    let count = move || data.with(Vec::len);

    let focus_bar = move |i: usize| {
        #[cfg(not(feature = "hydrate"))]
        let _ = (i, bars);
        #[cfg(feature = "hydrate")]
        if let Some(container) = bars.get() {
            use wasm_bindgen::JsCast;
            if let Some(el) = container
                .children()
                .item(i as u32)
                .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
            {
                let _ = el.focus();
            }
        }
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent, i: usize| {
        let last = count().saturating_sub(1);
        let next = match ev.key().as_str() {
            "ArrowLeft" | "ArrowDown" => i.saturating_sub(1),
            "ArrowRight" | "ArrowUp" => (i + 1).min(last),
            "Home" => 0,
            "End" => last,
            _ => return,
        };
        ev.prevent_default();
        focus_bar(next);
    };

    let tooltip = move || {
        let i = active.get()?;
        let day = data.with(|d| d.get(i).cloned())?;
        let n = count().max(1);
        // Centred over its bar, but held inside the chart near either end.
        let at = percent_tenths(2 * i as i64 + 1, 2 * n as i64);
        let place = if at < 250 {
            "left: 0".to_string()
        } else if at > 750 {
            "right: 0".to_string()
        } else {
            format!("left: {}%; translate: -50% -100%", tenths(at))
        };
        Some(view! {
            <div
                id="usage-chart-tooltip"
                role="tooltip"
                data-testid="usage-chart-tooltip"
                class="pointer-events-none absolute -top-2 z-10 w-44 -translate-y-full rounded-lg bg-slate-900 px-3 py-2 text-xs text-white shadow-lg"
                style=place
            >
                <p class="font-semibold">{day.date.clone()}</p>
                <p>{format!("{} tokens", grouped(day.tokens_used))}</p>
                <p class="text-slate-300">{format!("{} in · {} out", grouped(day.prompt_tokens), grouped(day.completion_tokens))}</p>
                <p>{requests_label(day.requests_count)}</p>
                <p>{format_usd(Metric::Cost.value(&day))}</p>
                {day.drifted.then(|| view! { <p class="text-amber-300">"Differs from LiteLLM"</p> })}
            </div>
        })
    };

    view! {
        <div data-testid="usage-chart" data-metric=move || metric.get().key()>
            <div role="tablist" aria-label="Metric" class="inline-flex rounded-lg bg-slate-100 p-1 text-sm">
                {METRICS.iter().map(|&m| view! {
                    <button
                        type="button"
                        role="tab"
                        aria-selected=move || (metric.get() == m).to_string()
                        data-testid=format!("metric-{}", m.key())
                        class="rounded-md px-3 py-1 font-medium text-slate-600 aria-selected:bg-white aria-selected:text-slate-900 aria-selected:shadow-sm"
                        on:click=move |_| metric.set(m)
                    >
                        {m.label()}
                    </button>
                }).collect_view()}
            </div>
            <Show
                when=move || !empty()
                fallback=move || view! {
                    <div class="mt-4 flex h-48 items-center justify-center rounded-xl border border-dashed border-slate-300 text-sm text-slate-500" data-testid="usage-chart-empty">
                        {move || format!("No usage in these {} days yet.", count())}
                    </div>
                }
            >
                <div class="relative mt-4">
                    <div class="flex justify-between text-xs text-slate-500">
                        <span data-testid="usage-chart-max">
                            {move || {
                                let max = values.with(|v| v.iter().copied().max().unwrap_or(0));
                                metric.get().format(max)
                            }}
                        </span>
                    </div>
                    <div class="relative mt-1">
                        {tooltip}
                        <div
                            node_ref=bars
                            role="group"
                            aria-label=move || format!("{} per day, {} days", metric.get().label(), count())
                            class="flex h-48 items-end gap-px border-b border-l border-slate-200"
                            data-testid="usage-chart-bars"
                        >
                            {move || {
                                let m = metric.get();
                                let heights = values.with(|v| bar_heights(v));
                                let last = heights.len().saturating_sub(1);
                                data.get().into_iter().zip(heights).enumerate().map(|(i, (day, h))| {
                                    let label = format!("{}: {}", day.date, m.format(m.value(&day)));
                                    view! {
                                        <button
                                            type="button"
                                            class="group flex h-full min-w-0 flex-1 items-end focus:outline-none"
                                            tabindex=if i == last { "0" } else { "-1" }
                                            aria-label=label
                                            aria-describedby=move || (active.get() == Some(i)).then_some("usage-chart-tooltip")
                                            data-testid="usage-bar"
                                            data-date=day.date.clone()
                                            data-value=m.value(&day).to_string()
                                            on:mouseenter=move |_| active.set(Some(i))
                                            on:mouseleave=move |_| active.set(None)
                                            on:focus=move |_| active.set(Some(i))
                                            on:blur=move |_| active.set(None)
                                            on:keydown=move |ev| on_key(ev, i)
                                        >
                                            <span
                                                class=if day.drifted {
                                                    "block w-full rounded-t-sm bg-amber-500 group-hover:bg-amber-600 group-focus-visible:ring-2 group-focus-visible:ring-indigo-600"
                                                } else {
                                                    "block w-full rounded-t-sm bg-indigo-500 group-hover:bg-indigo-700 group-focus-visible:ring-2 group-focus-visible:ring-indigo-600"
                                                }
                                                style=format!("height: {}%", tenths(h))
                                            ></span>
                                        </button>
                                    }
                                }).collect_view()
                            }}
                        </div>
                    </div>
                    <div class="mt-1 flex justify-between text-xs text-slate-500">
                        <span>{move || data.with(|d| d.first().map(|x| x.date.clone()).unwrap_or_default())}</span>
                        <span>{move || data.with(|d| d.last().map(|x| x.date.clone()).unwrap_or_default())}</span>
                    </div>
                </div>
            </Show>
            <details class="mt-4 text-sm">
                <summary class="cursor-pointer font-medium text-indigo-700">"Show as a table"</summary>
                <div class="mt-2 max-h-80 overflow-auto">
                    <table class="w-full text-left text-sm" data-testid="usage-table">
                        <caption class="sr-only">"Usage per day"</caption>
                        <thead class="sticky top-0 bg-white text-xs uppercase text-slate-500">
                            <tr>
                                <th scope="col" class="py-1 pr-3">"Day"</th>
                                <th scope="col" class="py-1 pr-3 text-right">"Tokens"</th>
                                <th scope="col" class="py-1 pr-3 text-right">"Requests"</th>
                                <th scope="col" class="py-1 text-right">"Cost"</th>
                            </tr>
                        </thead>
                        <tbody class="divide-y divide-slate-100 tabular-nums">
                            {move || data.get().into_iter().rev().map(|day| view! {
                                <tr>
                                    <th scope="row" class="py-1 pr-3 font-normal">
                                        {day.date.clone()}
                                        {day.drifted.then(|| view! { <span class="ml-1 text-xs text-amber-700">"(differs from LiteLLM)"</span> })}
                                    </th>
                                    <td class="py-1 pr-3 text-right">{grouped(day.tokens_used)}</td>
                                    <td class="py-1 pr-3 text-right">{grouped(day.requests_count)}</td>
                                    <td class="py-1 text-right">{format_usd(Metric::Cost.value(&day))}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            </details>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_relative_to_the_highest_day() {
        assert_eq!(bar_heights(&[0, 50, 100]), [0, 500, 1000]);
        assert_eq!(bar_heights(&[0, 0]), [0, 0]);
        assert_eq!(bar_heights(&[]), Vec::<i64>::new());
        // A tiny day is still visible.
        assert_eq!(bar_heights(&[1, 1000])[0], 15);
        assert_eq!(bar_heights(&[1, 3])[0], 333);
    }
}
