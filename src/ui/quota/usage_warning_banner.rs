//! `UsageWarningBanner`: amber from 80 % of the monthly quota, red from 95 % and at 100 %, with
//! a progress bar, when the quota resets, and the way to more tokens; below 80 %, indigo when
//! the forecast says the limit will be reached before the reset.

use super::percent_label;
use leptos::prelude::*;
use leptos_router::components::A;

/// The forecast's words: "At this pace you reach your limit on 19 Dec."
pub fn forecast_text(limit_on: &str) -> String {
    format!("At this pace you reach your limit on {limit_on}.")
}

/// The banner's words for the flags (the highest one wins).
pub fn banner_text(percentage: f64, is_upgrade_suggested: bool, is_blocked: bool) -> String {
    if is_blocked {
        "You've reached your limit. Upgrade to continue.".into()
    } else if is_upgrade_suggested {
        "You're almost at your limit. Upgrade for more tokens.".into()
    } else {
        format!(
            "You've used {} of your monthly quota",
            percent_label(percentage)
        )
    }
}

#[component]
pub fn UsageWarningBanner(
    percentage: f64,
    is_warning: bool,
    is_upgrade_suggested: bool,
    is_blocked: bool,
    /// When the quota resets, as people read it.
    #[prop(into)]
    resets: String,
    /// The day the forecast reaches the limit before the reset ("19 Dec"), if it does.
    limit_on: Option<String>,
    #[prop(into)] on_dismiss: Callback<()>,
) -> impl IntoView {
    let red = is_blocked || is_upgrade_suggested;
    let (box_colors, bar_color, icon_color) = if red {
        (
            "border-red-200 bg-red-50 text-red-900",
            "bg-red-500",
            "text-red-600",
        )
    } else if !is_warning {
        (
            "border-indigo-200 bg-indigo-50 text-indigo-900",
            "bg-indigo-500",
            "text-indigo-600",
        )
    } else {
        (
            "border-amber-200 bg-amber-50 text-amber-900",
            "bg-amber-500",
            "text-amber-600",
        )
    };
    let level = if is_blocked {
        "blocked"
    } else if is_upgrade_suggested {
        "upgrade"
    } else if is_warning {
        "warning"
    } else {
        "forecast"
    };
    // Below the warning the forecast is the headline; above it, a note on the small line.
    let (headline, note) = match (&limit_on, is_warning) {
        (Some(day), false) => (forecast_text(day), String::new()),
        (Some(day), true) if !is_blocked => (
            banner_text(percentage, is_upgrade_suggested, is_blocked),
            format!(" · {}", forecast_text(day)),
        ),
        _ => (
            banner_text(percentage, is_upgrade_suggested, is_blocked),
            String::new(),
        ),
    };
    let bar = super::bar(percentage);
    view! {
        <div
            class=format!("mb-6 rounded-2xl border p-4 {box_colors}")
            role="status"
            data-testid="usage-banner"
            data-level=level
        >
            <div class="flex flex-wrap items-start gap-3">
                <svg class=format!("mt-0.5 h-5 w-5 shrink-0 {icon_color}") viewBox="0 0 20 20" fill="currentColor" aria-hidden="true">
                    <path fill-rule="evenodd" d="M8.485 2.495c.673-1.167 2.357-1.167 3.03 0l6.28 10.875c.673 1.167-.17 2.625-1.516 2.625H3.72c-1.347 0-2.189-1.458-1.515-2.625L8.485 2.495ZM10 6a.75.75 0 0 1 .75.75v3.5a.75.75 0 0 1-1.5 0v-3.5A.75.75 0 0 1 10 6Zm0 9a1 1 0 1 0 0-2 1 1 0 0 0 0 2Z" clip-rule="evenodd"/>
                </svg>
                <div class="min-w-0 flex-1">
                    <p class="text-sm font-semibold" data-testid="usage-banner-text">{headline}</p>
                    <div
                        class="mt-2 h-2 w-full max-w-md rounded-full bg-white/70"
                        role="progressbar"
                        aria-label="Monthly quota used"
                        aria-valuemin="0"
                        aria-valuemax="100"
                        aria-valuenow=bar.value_now
                    >
                        <div class=format!("h-2 rounded-full {bar_color}") style=bar.style></div>
                    </div>
                    <p class="mt-1 text-xs opacity-80">
                        {format!("{} used · resets on {resets}{note}", percent_label(percentage))}
                    </p>
                </div>
                <div class="flex items-center gap-2">
                    <A href="/pricing" attr:class="rounded-lg bg-white px-3 py-1.5 text-sm font-semibold shadow-sm ring-1 ring-inset ring-current/20 hover:bg-white/80">
                        "Upgrade"
                    </A>
                    <button
                        type="button"
                        class="rounded-lg p-1.5 text-sm opacity-70 hover:opacity-100"
                        aria-label="Dismiss"
                        on:click=move |_| on_dismiss.run(())
                    >
                        "✕"
                    </button>
                </div>
            </div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forecast_names_the_day() {
        assert_eq!(
            forecast_text("19 Dec"),
            "At this pace you reach your limit on 19 Dec."
        );
    }

    #[test]
    fn the_words_follow_the_highest_flag() {
        assert_eq!(
            banner_text(85.0, false, false),
            "You've used 85% of your monthly quota"
        );
        assert_eq!(
            banner_text(96.0, true, false),
            "You're almost at your limit. Upgrade for more tokens."
        );
        assert_eq!(
            banner_text(100.0, true, true),
            "You've reached your limit. Upgrade to continue."
        );
    }
}
