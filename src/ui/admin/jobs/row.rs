//! One job's row on `/admin/jobs`: its type and id, status, progress, times, summary, error and
//! cancel button.

use crate::api::jobs::{AdminCancelJob, JobDto};
use crate::domain::jobs::{JobStatus, JobSummary};
use crate::ui::common::BTN_DANGER;
use crate::ui::time::format_time;
use leptos::prelude::*;

/// A cell: a line of its job's block below md, a table cell from md.
const TD: &str = "block py-1 md:table-cell md:px-4 md:py-3 md:align-top";

/// Status badge colours.
fn badge(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Pending => "bg-slate-100 text-slate-700 ring-slate-200",
        JobStatus::Running => "bg-indigo-50 text-indigo-700 ring-indigo-200",
        JobStatus::Completed => "bg-emerald-50 text-emerald-700 ring-emerald-200",
        JobStatus::Failed => "bg-red-50 text-red-700 ring-red-200",
        JobStatus::Cancelled => "bg-amber-50 text-amber-800 ring-amber-200",
    }
}

/// A finished job's summary as people read it.
pub fn summary_label(summary: &JobSummary) -> String {
    match summary {
        JobSummary::UsageSync(s) => format!(
            "{} user(s) synced, {} day(s) with use, {} failed",
            s.users, s.days_written, s.failed
        ),
        JobSummary::Report(s) => format!("{} row(s), {} to {}", s.rows, s.from, s.to),
    }
}

/// A usage sync's failed users as (user id, e-mail or id, error).
pub fn failure_lines(summary: &JobSummary) -> Vec<(String, String, String)> {
    match summary {
        JobSummary::UsageSync(s) => s
            .failures
            .iter()
            .map(|f| {
                let who = f.email.clone().unwrap_or_else(|| f.user_id.clone());
                (f.user_id.clone(), who, f.error.clone())
            })
            .collect(),
        JobSummary::Report(_) => Vec::new(),
    }
}

/// "attempt 2 of 3", or "up to 3 attempts" before the first.
pub fn attempts_label(attempts: i64, max: i64) -> String {
    if attempts == 0 {
        format!("up to {max} attempt(s)")
    } else {
        format!("attempt {attempts} of {max}")
    }
}

/// "1 min 5 s", "850 ms".
pub fn duration_label(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{} s", crate::domain::numbers::tenths((ms + 50) / 100))
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

#[component]
pub fn JobRow(job: JobDto, cancel: ServerAction<AdminCancelJob>) -> impl IntoView {
    let id = job.id;
    let active = !job.status.is_finished();
    let duration = match (job.started_at, job.completed_at) {
        (Some(s), Some(c)) => Some(duration_label((c - s).num_milliseconds())),
        _ => None,
    };
    let found = JobSummary::read(job.kind, &job.metadata);
    let summary = found.as_ref().map(summary_label);
    let failures = found.as_ref().map(failure_lines).unwrap_or_default();
    view! {
        <tr class="block px-4 py-3 md:table-row md:p-0" data-testid="job-row" data-job-id=id.to_string() data-type=job.kind.as_str() data-status=job.status.as_str()>
            <td class=TD>
                <p class="font-medium">{job.kind.as_str()}</p>
                <p class="font-mono text-xs text-slate-500">{id.to_string()[..8].to_string()}</p>
                {job.user_id.map(|u| {
                    let who = job.user_email.clone().unwrap_or_else(|| u.to_string()[..8].to_string());
                    view! {
                        <p class="text-xs text-slate-500" data-testid="job-user">
                            "by " <a class="hover:underline" href=format!("/admin/users/{u}")>{who}</a>
                        </p>
                    }
                })}
            </td>
            <td class=TD>
                <span class=format!("inline-block rounded-full px-2 py-0.5 text-xs font-medium ring-1 {}", badge(job.status)) data-testid="job-status">
                    {job.status.as_str()}
                </span>
                {job.cancel_requested.then(|| view! { <p class="mt-1 text-xs text-amber-700">"stopping…"</p> })}
                <p class="mt-1 text-xs text-slate-500">{attempts_label(job.attempts, job.max_attempts)}</p>
                {job.error.clone().map(|e| view! {
                    <details class="mt-1 max-w-xs text-xs text-red-700">
                        <summary class="cursor-pointer">"Error"</summary>
                        <p class="mt-1 break-words" data-testid="job-error">{e}</p>
                    </details>
                })}
            </td>
            <td class=TD>
                <div class="h-2 w-32 rounded-full bg-slate-100" role="progressbar" aria-label="Progress"
                    aria-valuemin="0" aria-valuemax="100" aria-valuenow=job.progress.to_string()>
                    <div class="h-2 rounded-full bg-indigo-500" style=format!("width: {}%", job.progress)></div>
                </div>
                <p class="mt-1 text-xs tabular-nums" data-testid="job-progress">{format!("{}%", job.progress)}</p>
                {summary.map(|s| view! { <p class="mt-1 max-w-xs text-xs text-slate-500" data-testid="job-summary">{s}</p> })}
                {(!failures.is_empty()).then(|| view! {
                    <details class="mt-1 max-w-xs text-xs text-red-700" data-testid="job-failures">
                        <summary class="cursor-pointer">"Users that failed"</summary>
                        <ul class="mt-1 space-y-1">
                            {failures.into_iter().map(|(user, who, error)| view! {
                                <li class="break-words">
                                    <a class="font-medium hover:underline" href=format!("/admin/users/{user}")>{who}</a>
                                    ": " {error}
                                </li>
                            }).collect_view()}
                        </ul>
                    </details>
                })}
            </td>
            <td class=format!("{TD} text-xs text-slate-600")>
                <p class="whitespace-nowrap">{format!("created {}", format_time(&job.created_at))}</p>
                {job.started_at.map(|t| view! { <p class="whitespace-nowrap">{format!("started {}", format_time(&t))}</p> })}
                {job.completed_at.map(|t| view! { <p class="whitespace-nowrap">{format!("ended {}", format_time(&t))}</p> })}
                {duration.map(|d| view! { <p>{format!("took {d}")}</p> })}
            </td>
            <td class=format!("{TD} md:text-right")>
                {active.then(|| view! {
                    <button type="button" class=BTN_DANGER data-testid="job-cancel"
                        disabled=move || cancel.pending().get() || job.cancel_requested
                        on:click=move |_| { cancel.dispatch(AdminCancelJob { id }); }>
                        "Cancel"
                    </button>
                })}
                {job.has_result.then(|| view! {
                    <a class="text-sm font-medium text-indigo-700 hover:underline" href=format!("/api/admin/jobs/{id}/result") download="">"Download"</a>
                })}
            </td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::jobs::JobType;
    use serde_json::json;

    #[test]
    fn summaries_and_durations_read_well() {
        let read = |kind, summary| JobSummary::read(kind, &json!({ "summary": summary })).unwrap();
        let sync = read(
            JobType::UsageSync,
            json!({"users": 4, "days_written": 9, "failed": 1}),
        );
        assert_eq!(
            summary_label(&sync),
            "4 user(s) synced, 9 day(s) with use, 1 failed"
        );
        let report = read(
            JobType::ReportGeneration,
            json!({"rows": 12, "from": "2026-11-01", "to": "2026-11-28", "bytes": 300}),
        );
        assert_eq!(
            summary_label(&report),
            "12 row(s), 2026-11-01 to 2026-11-28"
        );
        for (ms, want) in [(850, "850 ms"), (1500, "1.5 s"), (65_000, "1 min 5 s")] {
            assert_eq!(duration_label(ms), want);
        }
        assert_eq!(attempts_label(0, 3), "up to 3 attempt(s)");
        let failed = read(
            JobType::UsageSync,
            json!({"users": 2, "days_written": 0, "failed": 2, "failures": [
                {"user_id": "u1", "email": "a@example.com", "error": "LiteLLM said 500"},
                {"user_id": "u2", "email": null, "error": "timeout"},
            ]}),
        );
        assert_eq!(
            failure_lines(&failed),
            vec![
                (
                    "u1".into(),
                    "a@example.com".into(),
                    "LiteLLM said 500".into()
                ),
                ("u2".into(), "u2".into(), "timeout".into()),
            ]
        );
        assert!(failure_lines(&report).is_empty());
        assert_eq!(attempts_label(2, 3), "attempt 2 of 3");
    }
}
