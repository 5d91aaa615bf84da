//! `MonthProjection`: this month's tokens as a running total, solid so far and dashed at the
//! forecast's pace to the reset, with the limit as a line. Drawn in SVG with whole-number
//! coordinates (no float formatting in the page's code).

use crate::api::quota::UsageDto;
use crate::api::usage::get_usage_history;
use crate::domain::numbers::grouped;
use crate::ui::common::resource;
use crate::ui::quota::percent_label;
use leptos::prelude::*;

const WIDTH: i64 = 600;
const HEIGHT: i64 = 160;

/// The chart's lines, in a `WIDTH` × `HEIGHT` box (y grows downwards).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonthGeometry {
    /// `points` of the running total so far, from the period's start.
    pub actual: String,
    /// `points` of the projection, from the end of today to the reset (none on the last day).
    pub projection: Option<String>,
    /// Where the limit's line is.
    pub limit_y: Option<i64>,
}

/// The geometry of `cumulative` (the running total at the end of each day so far, the period's
/// first day first) in a period of `days` days, projected to `projected` at its end.
pub fn month_geometry(
    cumulative: &[i64],
    days: i64,
    projected: i64,
    limit: Option<i64>,
) -> MonthGeometry {
    let days = days.max(1);
    let so_far = cumulative.last().copied().unwrap_or(0).max(0);
    let top = [limit.unwrap_or(0), projected, so_far]
        .into_iter()
        .max()
        .unwrap_or(0)
        .max(1);
    // A tenth of headroom above the highest value.
    let scale = |v: i64| -> i64 {
        let v = i128::from(v.clamp(0, top));
        HEIGHT - (v * i128::from(HEIGHT) * 10 / (i128::from(top) * 11)) as i64
    };
    let x = |day: i64| day.min(days) * WIDTH / days;
    let mut actual = vec![format!("0,{}", scale(0))];
    for (i, total) in cumulative.iter().enumerate() {
        actual.push(format!("{},{}", x(i as i64 + 1), scale(*total)));
    }
    let elapsed = cumulative.len() as i64;
    let projection = (elapsed < days).then(|| {
        format!(
            "{},{} {},{}",
            x(elapsed),
            scale(so_far),
            WIDTH,
            scale(projected)
        )
    });
    MonthGeometry {
        actual: actual.join(" "),
        projection,
        limit_y: limit.filter(|l| *l > 0).map(scale),
    }
}

/// The days of the period `first..=last` (`YYYY-MM-DD`), or 30 when they do not read.
fn period_days(first: &str, last: &str) -> i64 {
    use crate::domain::time::parse_day;
    match (parse_day(first), parse_day(last)) {
        (Some(a), Some(b)) => (b - a).num_days() + 1,
        _ => 30,
    }
}

#[component]
pub fn MonthProjection(usage: UsageDto) -> impl IntoView {
    // The month so far: at most 31 days back, kept from the period's first day.
    let history = resource(|| (), |_| get_usage_history(31));
    let days = period_days(&usage.period_start, &usage.period_end);
    let start = usage.period_start.clone();
    let f = usage.forecast.clone();
    let limit = usage.quota.limit;
    let caption = {
        let mut text = format!(
            "At this pace: {} tokens by the reset",
            grouped(f.projected_tokens)
        );
        if let Some(p) = f.projected_percentage {
            text.push_str(&format!(" ({} of the limit)", percent_label(p)));
        }
        if let Some(day) = f
            .limit_on
            .as_deref()
            .and_then(crate::domain::time::parse_day)
        {
            text.push_str(&format!(
                " · the limit is reached on {}",
                crate::domain::time::short_day(day)
            ));
        }
        text.push_str(&format!(" · {} tokens a day", grouped(f.tokens_per_day)));
        text
    };
    view! {
        <div class="mt-4" data-testid="month-projection">
            <Transition fallback=|| ()>
                {move || history.get().and_then(|r| r.ok()).map(|h| {
                    let mut total = 0;
                    let cumulative: Vec<i64> = h
                        .daily
                        .iter()
                        .filter(|d| d.date.as_str() >= start.as_str())
                        .map(|d| {
                            total += d.tokens_used;
                            total
                        })
                        .collect();
                    let g = month_geometry(&cumulative, days, f.projected_tokens, limit);
                    view! {
                        <svg
                            viewBox=format!("0 0 {WIDTH} {HEIGHT}")
                            class="h-32 w-full overflow-visible"
                            preserveAspectRatio="none"
                            role="img"
                            aria-label="This month's tokens: the running total so far, and at this pace to the reset"
                        >
                            {g.limit_y.map(|y| view! {
                                <line
                                    x1="0" x2=WIDTH.to_string() y1=y.to_string() y2=y.to_string()
                                    class="stroke-red-400" stroke-width="1.5" stroke-dasharray="2 3"
                                    vector-effect="non-scaling-stroke"
                                    data-testid="projection-limit"
                                />
                            })}
                            <polyline
                                points=g.actual
                                fill="none" class="stroke-indigo-600" stroke-width="2.5"
                                vector-effect="non-scaling-stroke"
                                data-testid="projection-actual"
                            />
                            {g.projection.map(|points| view! {
                                <polyline
                                    points=points
                                    fill="none" class="stroke-indigo-300" stroke-width="2.5" stroke-dasharray="6 5"
                                    vector-effect="non-scaling-stroke"
                                    data-testid="projection-ahead"
                                />
                            })}
                        </svg>
                    }
                })}
            </Transition>
            <p class="mt-2 text-xs text-slate-600" data-testid="projection-caption">{caption}</p>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_so_far_and_ahead() {
        // 10 of 30 days at 1,000 a day, projected to 30,000 against a limit of 25,000.
        let cumulative: Vec<i64> = (1..=10).map(|d| d * 1_000).collect();
        let g = month_geometry(&cumulative, 30, 30_000, Some(25_000));
        // The top is 30,000 plus a tenth: 30,000 sits at 160 - 160 × 10 / 11 = 15.
        assert!(g.actual.starts_with("0,160 20,"), "{}", g.actual);
        assert!(g.actual.ends_with(" 200,112"), "{}", g.actual);
        assert_eq!(g.projection.as_deref(), Some("200,112 600,15"));
        assert_eq!(g.limit_y, Some(39));
    }

    #[test]
    fn the_last_day_has_nothing_ahead_and_unlimited_no_line() {
        let cumulative = vec![5; 30];
        let g = month_geometry(&cumulative, 30, 5, None);
        assert_eq!(g.projection, None);
        assert_eq!(g.limit_y, None);
        // Nothing used: a flat line at the bottom.
        let g = month_geometry(&[0, 0], 31, 0, Some(100));
        assert_eq!(g.actual, "0,160 19,160 38,160");
    }
}
