//! Usage history on the pages: the chart, and the panel around it (range, totals, the chart,
//! the per-model breakdown, the CSV download) shared by the profile's Usage tab and the admin
//! user page.

mod projection;
mod usage_history_chart;

pub use projection::MonthProjection;
pub use usage_history_chart::UsageHistoryChart;

use crate::api::error::AppError;
use crate::api::usage::{ModelUsageDto, UsageDayDto, UsageHistoryDto, UsageTotalsDto};
use crate::domain::money::{format_usd, parse_usd};
use crate::domain::numbers::{grouped, percent_tenths, tenths};
use crate::ui::common::{resource, ErrorNotice, Loading, CARD};
use crate::ui::time::format_time;
use leptos::prelude::*;
use std::future::Future;

/// What the bars measure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Metric {
    #[default]
    Tokens,
    Requests,
    Cost,
}

pub const METRICS: [Metric; 3] = [Metric::Tokens, Metric::Requests, Metric::Cost];

impl Metric {
    pub fn key(self) -> &'static str {
        match self {
            Metric::Tokens => "tokens",
            Metric::Requests => "requests",
            Metric::Cost => "cost",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Metric::Tokens => "Tokens",
            Metric::Requests => "Requests",
            Metric::Cost => "Cost",
        }
    }

    /// A day's value: a count, or nano-dollars for the cost.
    pub fn value(self, day: &UsageDayDto) -> i64 {
        match self {
            Metric::Tokens => day.tokens_used,
            Metric::Requests => day.requests_count,
            Metric::Cost => parse_usd(&day.estimated_cost).unwrap_or(0),
        }
    }

    pub fn format(self, value: i64) -> String {
        match self {
            Metric::Tokens => format!("{} tokens", grouped(value)),
            Metric::Requests => requests_label(value),
            Metric::Cost => format_usd(value),
        }
    }
}

/// "1 request", "2 requests".
pub fn requests_label(n: i64) -> String {
    if n == 1 {
        "1 request".into()
    } else {
        format!("{} requests", grouped(n))
    }
}

/// The ranges offered, in days.
pub const RANGES: [i64; 4] = [7, 30, 90, 365];

/// A range picker, the totals, the chart and the models of a history loaded by `load`.
#[component]
pub fn UsagePanel<L, Fut, C>(
    load: L,
    /// The CSV download of `days` days.
    csv_href: C,
    /// Bumped to load again (after a sync).
    #[prop(optional, into)]
    reload: Signal<usize>,
) -> impl IntoView
where
    L: Fn(i64) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<UsageHistoryDto, AppError>> + Send + 'static,
    C: Fn(i64) -> String + Copy + Send + Sync + 'static,
{
    let days = RwSignal::new(30i64);
    let history = resource(move || (days.get(), reload.get()), move |(d, _)| load(d));
    view! {
        <div class="space-y-6">
            <div class="flex flex-wrap items-center justify-between gap-3">
                <div role="group" aria-label="Range" class="inline-flex rounded-lg bg-white p-1 text-sm shadow-sm ring-1 ring-slate-200">
                    {RANGES.iter().map(|&d| view! {
                        <button
                            type="button"
                            aria-pressed=move || (days.get() == d).to_string()
                            data-testid=format!("range-{d}")
                            class="rounded-md px-3 py-1 font-medium text-slate-600 aria-pressed:bg-indigo-600 aria-pressed:text-white"
                            on:click=move |_| days.set(d)
                        >
                            {format!("{d} days")}
                        </button>
                    }).collect_view()}
                </div>
                <a
                    class="text-sm font-medium text-indigo-700 hover:underline"
                    href=move || csv_href(days.get())
                    download=""
                    data-testid="usage-csv"
                >
                    "Download CSV"
                </a>
            </div>
            <Transition fallback=|| view! { <Loading/> }>
                {move || history.get().map(|result| match result {
                    Err(e) => view! { <ErrorNotice message=e.message/> }.into_any(),
                    Ok(h) => view! { <HistoryView history=h/> }.into_any(),
                })}
            </Transition>
        </div>
    }
}

#[component]
fn HistoryView(history: UsageHistoryDto) -> impl IntoView {
    let drifted = history.daily.iter().filter(|d| d.drifted).count();
    let synced = match (
        history.sync_available,
        &history.last_synced_at,
        &history.sync_error,
    ) {
        (false, _, _) => "Recorded by tokenmeter".to_string(),
        (true, _, Some(error)) => format!("Last sync failed: {error}"),
        (true, Some(at), None) => format!("Synced with LiteLLM {}", format_time(at)),
        (true, None, None) => "Recorded by tokenmeter (not synced with LiteLLM yet)".to_string(),
    };
    let data = Signal::stored(history.daily.clone());
    view! {
        <TotalsCards totals=history.totals.clone()/>
        <div class=CARD>
            <div class="flex flex-wrap items-baseline justify-between gap-2">
                <h2 class="font-semibold">{format!("Daily usage, {} to {}", history.from, history.to)}</h2>
                <p class="text-xs text-slate-500" data-testid="usage-sync-state">{synced}</p>
            </div>
            {(drifted > 0).then(|| view! {
                <p class="mt-2 text-sm text-amber-800" data-testid="usage-drift">
                    {format!("{drifted} day(s) differ by more than 1% from LiteLLM (amber bars).")}
                </p>
            })}
            <div class="mt-4"><UsageHistoryChart data/></div>
        </div>
        <ModelTable models=history.by_model.clone() total_tokens=history.totals.tokens_used/>
    }
}

/// The month's quota: plan, tokens used of the limit, a bar, and when it resets; with
/// `projection`, the signed-in user's month at the forecast's pace.
#[component]
pub fn QuotaCard(
    usage: crate::api::quota::UsageDto,
    #[prop(optional)] projection: bool,
) -> impl IntoView {
    let projection = projection.then(|| view! { <MonthProjection usage=usage.clone()/> });
    use crate::ui::quota::{percent_label, resets_label};
    let fill = crate::ui::quota::bar(usage.quota.percentage);
    let q = &usage.quota;
    let bar = if usage.is_blocked || usage.is_upgrade_suggested {
        "bg-red-500"
    } else if usage.is_warning {
        "bg-amber-500"
    } else {
        "bg-indigo-500"
    };
    let of_limit = match q.limit {
        Some(limit) => format!(
            "{} of {} tokens ({})",
            grouped(q.used),
            grouped(limit),
            percent_label(q.percentage)
        ),
        None => format!("{} tokens (unlimited)", grouped(q.used)),
    };
    view! {
        <div class=CARD data-testid="quota-card">
            <div class="flex flex-wrap items-baseline justify-between gap-2">
                <h2 class="font-semibold">{format!("This month · {} plan", usage.plan.name)}</h2>
                <p class="text-xs text-slate-500">{format!("Resets on {}", resets_label(&usage))}</p>
            </div>
            <p class="mt-2 text-sm tabular-nums">{of_limit}</p>
            <div
                class="mt-2 h-2 w-full rounded-full bg-slate-100"
                role="progressbar"
                aria-label="Monthly quota used"
                aria-valuemin="0"
                aria-valuemax="100"
                aria-valuenow=fill.value_now
            >
                <div class=format!("h-2 rounded-full {bar}") style=fill.style></div>
            </div>
            {projection}
        </div>
    }
}

/// The totals of a range as three cards.
#[component]
pub fn TotalsCards(totals: UsageTotalsDto) -> impl IntoView {
    let t = &totals;
    let cards = [
        (
            "Tokens",
            grouped(t.tokens_used),
            format!(
                "{} in · {} out",
                grouped(t.prompt_tokens),
                grouped(t.completion_tokens)
            ),
        ),
        ("Requests", grouped(t.requests_count), String::new()),
        (
            "Estimated cost",
            format_usd(parse_usd(&t.estimated_cost).unwrap_or(0)),
            String::new(),
        ),
    ];
    view! {
        <div class="grid gap-4 sm:grid-cols-3" data-testid="usage-totals">
            {cards.into_iter().map(|(label, value, note)| view! {
                <div class=CARD>
                    <p class="text-sm text-slate-500">{label}</p>
                    <p class="mt-1 text-2xl font-semibold tabular-nums">{value}</p>
                    <p class="mt-1 text-xs text-slate-500">{note}</p>
                </div>
            }).collect_view()}
        </div>
    }
}

/// A range's models, most tokens first, each with its share of the tokens.
#[component]
pub fn ModelTable(models: Vec<(String, ModelUsageDto)>, total_tokens: i64) -> impl IntoView {
    view! {
        <div class=CARD>
            <h2 class="font-semibold">"By model"</h2>
            {if models.is_empty() {
                view! { <p class="mt-3 text-sm text-slate-500">"No model used in this range."</p> }.into_any()
            } else {
                let total = total_tokens.max(1);
                view! {
                    <div class="mt-3 overflow-x-auto">
                        <table class="w-full text-left text-sm" data-testid="usage-models">
                            <thead class="text-xs uppercase text-slate-500">
                                <tr>
                                    <th scope="col" class="py-1 pr-3">"Model"</th>
                                    <th scope="col" class="py-1 pr-3 text-right">"Tokens"</th>
                                    <th scope="col" class="py-1 pr-3 text-right">"Requests"</th>
                                    <th scope="col" class="py-1 text-right">"Cost"</th>
                                </tr>
                            </thead>
                            <tbody class="divide-y divide-slate-100 tabular-nums">
                                {models.into_iter().map(|(name, m)| {
                                    let share = tenths(percent_tenths(m.tokens, total));
                                    view! {
                                        <tr>
                                            <th scope="row" class="py-2 pr-3 font-medium">
                                                {name}
                                                <div class="mt-1 h-1.5 w-full max-w-xs rounded-full bg-slate-100">
                                                    <div class="h-1.5 rounded-full bg-indigo-500" style=format!("width: {share}%")></div>
                                                </div>
                                            </th>
                                            <td class="py-2 pr-3 text-right">{grouped(m.tokens)}</td>
                                            <td class="py-2 pr-3 text-right">{grouped(m.requests)}</td>
                                            <td class="py-2 text-right">{format_usd(parse_usd(&m.cost).unwrap_or(0))}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </div>
    }
}
