//! Profile › Usage: this month's quota, and the daily history with its chart, totals and models.

use crate::api::usage::get_usage_history;
use crate::ui::quota::use_usage;
use crate::ui::usage::{QuotaCard, UsagePanel};
use leptos::prelude::*;

fn csv_href(days: i64) -> String {
    format!("/api/profile/usage/history?days={days}&format=csv")
}

#[component]
pub fn UsageTab() -> impl IntoView {
    let usage = use_usage().usage;
    view! {
        <div class="space-y-6">
            {move || usage.get().map(|usage| view! { <QuotaCard usage projection=true/> })}
            <UsagePanel load=get_usage_history csv_href/>
        </div>
    }
}
