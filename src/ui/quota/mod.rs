//! Quotas in the pages: the signed-in user's usage, loaded in the browser after the page is
//! up (it never holds a page back), the warning banner above every page, the modal that stops
//! a send when the quota is used up, and the pricing page.

mod pricing_page;
mod quota_blocked_modal;
mod usage_warning_banner;

pub use pricing_page::PricingPage;
pub use quota_blocked_modal::QuotaBlockedModal;
pub use usage_warning_banner::UsageWarningBanner;

use crate::api::quota::{get_usage, UsageDto};
use crate::ui::session::use_session;
use leptos::prelude::*;

/// The signed-in user's usage, shared by the banner, the chat and the pricing page.
#[derive(Clone, Copy)]
pub struct UsageState {
    pub usage: RwSignal<Option<UsageDto>>,
    version: RwSignal<u32>,
}

impl UsageState {
    /// Reads the usage again (after a send).
    pub fn refresh(&self) {
        self.version.update(|v| *v += 1);
    }
}

/// Provides [`UsageState`] and, in the browser, loads it for a signed-in user.
pub fn provide_usage() {
    let state = UsageState {
        usage: RwSignal::new(None),
        version: RwSignal::new(0),
    };
    provide_context(state);
    let signed_in = use_session().user().is_some();
    // Read again every 30 s: the bell's count stays live without a reload (the usage answer
    // is cached on the server; browsers slow down the timers of hidden tabs).
    Effect::new(move |_| {
        if signed_in {
            set_interval(move || state.refresh(), std::time::Duration::from_secs(30));
        }
    });
    // Effects run only in the browser: the server renders pages without waiting for this.
    Effect::new(move |_| {
        state.version.track();
        if signed_in && crate::app::Hydrated::get() {
            leptos::task::spawn_local(async move {
                match get_usage().await {
                    Ok(usage) => state.usage.set(Some(usage)),
                    Err(e) => leptos::logging::warn!("usage: {}", e.message),
                }
            });
        }
    });
}

pub fn use_usage() -> UsageState {
    expect_context::<UsageState>()
}

/// The percentage as people read it: "85%", "85.5%", "99.99%".
pub fn percent_label(percentage: f64) -> String {
    format!("{}%", percent_number(percentage))
}

/// A percentage to two places without trailing zeros: "85", "85.5", "99.99" (also for CSS
/// widths and `aria-valuenow`). Written with integers: formatting a float (`{}` or `{:.0}` of
/// an `f64`) puts the float formatter (some 15 KB) in the browser's main module, which every
/// page loads.
pub fn percent_number(percentage: f64) -> String {
    let hundredths = (percentage * 100.0).round() as i64;
    let sign = if hundredths < 0 { "-" } else { "" };
    let (whole, fraction) = (
        hundredths.unsigned_abs() / 100,
        hundredths.unsigned_abs() % 100,
    );
    match fraction {
        0 => format!("{sign}{whole}"),
        f if f % 10 == 0 => format!("{sign}{whole}.{}", f / 10),
        f => format!("{sign}{whole}.{f:02}"),
    }
}

/// A progress bar's attributes for a percentage held to 0–100.
pub struct Bar {
    /// `style` of the filled part: "width: 85.5%".
    pub style: String,
    /// `aria-valuenow`, a whole number: "86".
    pub value_now: String,
}

pub fn bar(percentage: f64) -> Bar {
    let held = percentage.clamp(0.0, 100.0);
    Bar {
        style: format!("width: {}%", percent_number(held)),
        value_now: (held.round() as i64).to_string(),
    }
}

/// The day the quota resets, from the period's last day: "1 Dec 2026".
pub fn resets_label(usage: &UsageDto) -> String {
    crate::domain::time::parse_day(&usage.period_end)
        .and_then(|d| d.succ_opt())
        .map(crate::domain::time::day_label)
        .unwrap_or_else(|| usage.resets_at.clone())
}

/// The banner above the page whenever a flag is up, or the forecast reaches the limit before
/// the reset; dismissed until the next page load.
#[component]
pub fn UsageBanner() -> impl IntoView {
    let state = use_usage();
    let dismissed = RwSignal::new(false);
    move || {
        let usage = state.usage.get()?;
        let limit_on = usage
            .forecast
            .limit_on
            .as_deref()
            .and_then(crate::domain::time::parse_day)
            .map(crate::domain::time::short_day);
        if dismissed.get() || !(usage.is_warning || limit_on.is_some()) {
            return None;
        }
        Some(view! {
            <UsageWarningBanner
                percentage=usage.quota.percentage
                is_warning=usage.is_warning
                is_upgrade_suggested=usage.is_upgrade_suggested
                is_blocked=usage.is_blocked
                resets=resets_label(&usage)
                limit_on
                on_dismiss=Callback::new(move |_| dismissed.set(true))
            />
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_read_naturally() {
        assert_eq!(percent_label(85.0), "85%");
        assert_eq!(percent_label(85.5), "85.5%");
        assert_eq!(percent_label(99.99), "99.99%");
        assert_eq!(percent_label(150.0), "150%");
        assert_eq!(percent_label(0.0), "0%");
        assert_eq!(percent_label(80.05), "80.05%");
        assert_eq!(percent_label(33.333333), "33.33%");
        assert_eq!(percent_label(99.996), "100%");
        let b = bar(85.5);
        assert_eq!(
            (b.style.as_str(), b.value_now.as_str()),
            ("width: 85.5%", "86")
        );
        let b = bar(130.0);
        assert_eq!(
            (b.style.as_str(), b.value_now.as_str()),
            ("width: 100%", "100")
        );
        let b = bar(-1.0);
        assert_eq!((b.style.as_str(), b.value_now.as_str()), ("width: 0%", "0"));
    }
}
