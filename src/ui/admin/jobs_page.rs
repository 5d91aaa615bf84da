//! `/admin/jobs`: every job with its status, progress and times, filters kept in the URL, live
//! updates (server-sent events from `/api/admin/jobs/events`; polling when they fail; paused
//! while the tab is hidden), "Sync usage now" and cancel buttons.

use crate::api::jobs::{
    admin_list_jobs, AdminCancelJob, AdminRequestReport, AdminStartUsageSync, JobDto, JobFilterDto,
    JobPageDto, ADMIN_PAGE_SIZE,
};
use crate::domain::jobs::{JOB_STATUSES, JOB_TYPES};
use crate::ui::common::{
    action_error, resource, ErrorNotice, PostForm, BTN_DANGER, BTN_PRIMARY, BTN_SECONDARY, INPUT,
    LABEL,
};
use crate::ui::time::format_time;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};

/// A cell: a line of its job's block below md, a table cell from md.
const TD: &str = "block py-1 md:table-cell md:px-4 md:py-3 md:align-top";

/// Status badge colours.
fn badge(status: &str) -> &'static str {
    match status {
        "pending" => "bg-slate-100 text-slate-700 ring-slate-200",
        "running" => "bg-indigo-50 text-indigo-700 ring-indigo-200",
        "completed" => "bg-emerald-50 text-emerald-700 ring-emerald-200",
        "failed" => "bg-red-50 text-red-700 ring-red-200",
        _ => "bg-amber-50 text-amber-800 ring-amber-200",
    }
}

/// A finished job's summary as people read it.
pub fn summary_label(summary: &serde_json::Value) -> String {
    let n = |k: &str| summary[k].as_i64().unwrap_or(0);
    if summary.get("users").is_some() {
        format!(
            "{} user(s) synced, {} day(s) with use, {} failed",
            n("users"),
            n("days_written"),
            n("failed")
        )
    } else if summary.get("rows").is_some() {
        format!(
            "{} row(s), {} to {}",
            n("rows"),
            summary["from"].as_str().unwrap_or("?"),
            summary["to"].as_str().unwrap_or("?")
        )
    } else {
        summary.to_string()
    }
}

/// The query string of a filter (`?type=..&status=..&offset=..`, only what is set; "" for none).
pub fn query_string(f: &JobFilterDto) -> String {
    let mut parts = Vec::new();
    if let Some(k) = &f.kind {
        parts.push(format!("type={k}"));
    }
    if let Some(s) = &f.status {
        parts.push(format!("status={s}"));
    }
    if f.offset > 0 {
        parts.push(format!("offset={}", f.offset));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// The newer (`older == false`) or older page's address, if there is one. From past the end
/// (jobs were deleted meanwhile) "newer" leads to the last page that has jobs.
fn page_link(f: &JobFilterDto, total: i64, older: bool) -> Option<String> {
    let last = (total.max(1) - 1) / ADMIN_PAGE_SIZE * ADMIN_PAGE_SIZE;
    let offset = if older {
        Some(f.offset + ADMIN_PAGE_SIZE).filter(|o| *o < total)
    } else {
        (f.offset > 0).then(|| (f.offset - ADMIN_PAGE_SIZE).min(last).max(0))
    }?;
    let mut f = f.clone();
    f.offset = offset;
    Some(format!("/admin/jobs{}", query_string(&f)))
}

/// A usage sync's failed users as (user id, e-mail or id, error).
pub fn failure_lines(summary: &serde_json::Value) -> Vec<(String, String, String)> {
    summary["failures"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|f| {
                    let id = f["user_id"].as_str()?.to_string();
                    let who = f["email"].as_str().unwrap_or(&id).to_string();
                    let error = f["error"].as_str().unwrap_or_default().to_string();
                    Some((id, who, error))
                })
                .collect()
        })
        .unwrap_or_default()
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
pub fn AdminJobsPage() -> impl IntoView {
    let query = use_query_map();
    let filter = Memo::new(move |_| {
        query.with(|q| JobFilterDto {
            kind: q.get("type").filter(|v| !v.is_empty()),
            status: q.get("status").filter(|v| !v.is_empty()),
            offset: q
                .get("offset")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
                .max(0),
        })
    });
    // The list as the server rendered it, then as live updates bring it.
    let first = resource(move || filter.get(), admin_list_jobs);
    let live = RwSignal::new(None::<JobPageDto>);
    let mode = RwSignal::new("connecting");
    Effect::new(move |_| {
        // A new filter: the old stream's page no longer applies.
        filter.track();
        live.set(None);
    });
    follow(filter, live, mode);

    let start = ServerAction::<AdminStartUsageSync>::new();
    let report = ServerAction::<AdminRequestReport>::new();
    let cancel = ServerAction::<AdminCancelJob>::new();
    let navigate = use_navigate();
    let set_filter = move |key: &'static str, value: String| {
        let mut f = filter.get_untracked();
        match key {
            "type" => f.kind = (!value.is_empty()).then_some(value),
            _ => f.status = (!value.is_empty()).then_some(value),
        }
        // Another filter starts at its newest jobs.
        f.offset = 0;
        navigate(
            &format!("/admin/jobs{}", query_string(&f)),
            Default::default(),
        );
    };
    let page = move || live.get().or_else(|| first.get().and_then(Result::ok));
    let sync_busy = move || {
        page().is_some_and(|p| p.active_usage_sync.is_some() || !p.usage_sync_available)
            || start.pending().get()
    };
    let sync_unavailable = move || page().is_some_and(|p| !p.usage_sync_available);

    view! {
        <Title text="Jobs"/>
        <div class="flex flex-wrap items-center justify-between gap-3">
            <div>
                <h1 class="text-2xl font-bold tracking-tight">"Jobs"</h1>
                <p class="mt-1 text-sm text-slate-600">
                    "Background work: usage syncs and reports. "
                    <span data-testid="jobs-live" data-mode=move || mode.get()>
                        {move || match mode.get() {
                            "live" => "Live.",
                            "polling" => "Updating every few seconds.",
                            "paused" => "Paused while this tab is hidden.",
                            _ => "",
                        }}
                    </span>
                </p>
            </div>
            // Reads the list: inside a Transition, so the server renders it as the browser will.
            <Transition>
                <div class="text-right">
                    <button
                        type="button"
                        class=BTN_PRIMARY
                        data-testid="sync-usage-now"
                        disabled=sync_busy
                        on:click=move |_| { start.dispatch(AdminStartUsageSync {}); }
                    >
                        "Sync usage now"
                    </button>
                    <Show when=sync_unavailable>
                        <p class="mt-1 text-xs text-slate-500" data-testid="sync-unavailable">
                            "No LiteLLM proxy here: usage is recorded by tokenmeter."
                        </p>
                    </Show>
                </div>
            </Transition>
        </div>
        {move || action_error(start)().map(|message| view! { <div class="mt-3"><ErrorNotice message/></div> })}
        <PostForm action=report class="mt-6 flex flex-wrap items-end gap-3" read=|form| AdminRequestReport {
            start_date: form.text("start_date"),
            end_date: form.text("end_date"),
        }>
            <div>
                <label for="report-start" class=LABEL>"Report from"</label>
                <input id="report-start" name="start_date" type="date" required class=INPUT/>
            </div>
            <div>
                <label for="report-end" class=LABEL>"to"</label>
                <input id="report-end" name="end_date" type="date" required class=INPUT/>
            </div>
            <button type="submit" class=BTN_SECONDARY data-testid="make-report" disabled=move || report.pending().get()>
                "Make a usage report (CSV)"
            </button>
        </PostForm>
        {move || action_error(report)().map(|message| view! { <div class="mt-3"><ErrorNotice message/></div> })}
        {move || action_error(cancel)().map(|message| view! { <div class="mt-3"><ErrorNotice message/></div> })}
        <div class="mt-6 flex flex-wrap gap-3">
            <div>
                <label for="job-type" class=LABEL>"Type"</label>
                <select id="job-type" class=INPUT
                    prop:value=move || filter.get().kind.unwrap_or_default()
                    on:change={
                        let set_filter = set_filter.clone();
                        move |ev| set_filter("type", event_target_value(&ev))
                    }>
                    <option value="">"All"</option>
                    {JOB_TYPES.iter().map(|t| view! { <option value=t.as_str()>{t.as_str()}</option> }).collect_view()}
                </select>
            </div>
            <div>
                <label for="job-status" class=LABEL>"Status"</label>
                <select id="job-status" class=INPUT
                    prop:value=move || filter.get().status.unwrap_or_default()
                    on:change=move |ev| set_filter("status", event_target_value(&ev))>
                    <option value="">"All"</option>
                    {JOB_STATUSES.iter().map(|s| view! { <option value=s.as_str()>{s.as_str()}</option> }).collect_view()}
                </select>
            </div>
        </div>
        <div class="mt-4 overflow-x-auto rounded-2xl bg-white shadow-sm ring-1 ring-slate-200">
            <Transition>
                {move || match (page(), first.get()) {
                    (_, Some(Err(e))) => view! { <div class="p-4"><ErrorNotice message=e.message/></div> }.into_any(),
                    (Some(p), _) if p.jobs.is_empty() && p.offset == 0 => view! {
                        <p class="p-6 text-sm text-slate-500" data-testid="jobs-empty">"No jobs."</p>
                    }.into_any(),
                    (Some(p), _) => {
                        let shown = p.jobs.len() as i64;
                        let total = p.total;
                        view! {
                        // Below md each job is a stacked block instead of a wide row.
                        <table class="block w-full text-left text-sm md:table" data-testid="jobs-table">
                            <thead class="hidden bg-slate-50 text-xs uppercase text-slate-500 md:table-header-group">
                                <tr>
                                    <th scope="col" class="px-4 py-2">"Job"</th>
                                    <th scope="col" class="px-4 py-2">"Status"</th>
                                    <th scope="col" class="px-4 py-2">"Progress"</th>
                                    <th scope="col" class="px-4 py-2">"Times"</th>
                                    <th scope="col" class="px-4 py-2"><span class="sr-only">"Actions"</span></th>
                                </tr>
                            </thead>
                            <tbody class="block divide-y divide-slate-100 md:table-row-group">
                                {p.jobs.into_iter().map(|job| view! { <JobRow job cancel/> }).collect_view()}
                            </tbody>
                        </table>
                        <Pager filter=filter.get() total shown/>
                    }.into_any()},
                    _ => ().into_any(),
                }}
            </Transition>
        </div>
    }
}

/// "Jobs 51–100 of 230" with links to the newer and older pages.
#[component]
fn Pager(filter: JobFilterDto, total: i64, shown: i64) -> impl IntoView {
    let newer = page_link(&filter, total, false);
    let older = page_link(&filter, total, true);
    let range = if shown == 0 {
        format!("No jobs here; {total} in all")
    } else {
        format!(
            "Jobs {}–{} of {total}",
            filter.offset + 1,
            filter.offset + shown
        )
    };
    view! {
        <div class="flex flex-wrap items-center justify-between gap-2 px-4 py-2 text-xs text-slate-500">
            <p data-testid="jobs-range">{range}</p>
            <div class="flex gap-3">
                {newer.map(|href| view! { <a class="font-medium text-indigo-700 hover:underline" href=href data-testid="jobs-newer">"← Newer"</a> })}
                {older.map(|href| view! { <a class="font-medium text-indigo-700 hover:underline" href=href data-testid="jobs-older">"Older →"</a> })}
            </div>
        </div>
    }
}

#[component]
fn JobRow(job: JobDto, cancel: ServerAction<AdminCancelJob>) -> impl IntoView {
    let id = job.id;
    let active = matches!(job.status.as_str(), "pending" | "running");
    let duration = match (job.started_at, job.completed_at) {
        (Some(s), Some(c)) => Some(duration_label((c - s).num_milliseconds())),
        _ => None,
    };
    let summary = job.metadata.get("summary").map(summary_label);
    let failures = job
        .metadata
        .get("summary")
        .map(failure_lines)
        .unwrap_or_default();
    view! {
        <tr class="block px-4 py-3 md:table-row md:p-0" data-testid="job-row" data-job-id=id.to_string() data-type=job.kind.clone() data-status=job.status.clone()>
            <td class=TD>
                <p class="font-medium">{job.kind.clone()}</p>
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
                <span class=format!("inline-block rounded-full px-2 py-0.5 text-xs font-medium ring-1 {}", badge(&job.status)) data-testid="job-status">
                    {job.status.clone()}
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

/// Follows the list live in the browser: server-sent events for the current filter; if they
/// fail, the list is polled every 3 s; while the tab is hidden neither runs.
fn follow(
    filter: Memo<JobFilterDto>,
    live: RwSignal<Option<JobPageDto>>,
    mode: RwSignal<&'static str>,
) {
    #[cfg(not(feature = "hydrate"))]
    let _ = (filter, live, mode);
    #[cfg(feature = "hydrate")]
    browser::follow(filter, live, mode);
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    #[derive(Default)]
    struct Live {
        source: Option<web_sys::EventSource>,
        // Kept alive while the source is.
        _on_jobs: Option<Closure<dyn FnMut(web_sys::MessageEvent)>>,
        _on_error: Option<Closure<dyn FnMut(web_sys::Event)>>,
    }

    impl Live {
        fn close(&mut self) {
            if let Some(s) = self.source.take() {
                s.close();
            }
            self._on_jobs = None;
            self._on_error = None;
        }
    }

    fn url(f: &JobFilterDto) -> String {
        format!("/api/admin/jobs/events{}", query_string(f))
    }

    fn hidden() -> bool {
        web_sys::window()
            .and_then(|w| w.document())
            .is_some_and(|d| d.hidden())
    }

    fn connect(
        state: &Rc<RefCell<Live>>,
        f: &JobFilterDto,
        live: RwSignal<Option<JobPageDto>>,
        mode: RwSignal<&'static str>,
    ) {
        state.borrow_mut().close();
        if hidden() {
            mode.set("paused");
            return;
        }
        let Ok(source) = web_sys::EventSource::new(&url(f)) else {
            mode.set("polling");
            return;
        };
        let on_jobs =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
                if let Some(text) = ev.data().as_string() {
                    if let Ok(page) = serde_json::from_slice::<JobPageDto>(text.as_bytes()) {
                        live.set(Some(page));
                        mode.set("live");
                    }
                }
            });
        let weak = source.clone();
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            // Closed for good (not a reconnect in progress): fall back to polling.
            if weak.ready_state() == web_sys::EventSource::CLOSED {
                mode.set("polling");
            }
        });
        let _ = source.add_event_listener_with_callback("jobs", on_jobs.as_ref().unchecked_ref());
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let mut s = state.borrow_mut();
        s.source = Some(source);
        s._on_jobs = Some(on_jobs);
        s._on_error = Some(on_error);
    }

    pub fn follow(
        filter: Memo<JobFilterDto>,
        live: RwSignal<Option<JobPageDto>>,
        mode: RwSignal<&'static str>,
    ) {
        let state: Rc<RefCell<Live>> = Rc::default();
        {
            let state = state.clone();
            Effect::new(move |_| {
                let f = filter.get();
                connect(&state, &f, live, mode);
            });
        }
        // Hidden: stop; shown again: reconnect (the first event brings the list up to date).
        let on_visibility = {
            let state = state.clone();
            Closure::<dyn FnMut()>::new(move || {
                if hidden() {
                    state.borrow_mut().close();
                    mode.set("paused");
                } else {
                    connect(&state, &filter.get_untracked(), live, mode);
                }
            })
        };
        let document = web_sys::window().and_then(|w| w.document());
        if let Some(doc) = &document {
            let _ = doc.add_event_listener_with_callback(
                "visibilitychange",
                on_visibility.as_ref().unchecked_ref(),
            );
        }
        // The fallback: poll while the events do not work.
        let handle = set_interval_with_handle(
            move || {
                if mode.get_untracked() == "polling" && !hidden() {
                    let f = filter.get_untracked();
                    leptos::task::spawn_local(async move {
                        if let Ok(page) = admin_list_jobs(f).await {
                            live.set(Some(page));
                        }
                    });
                }
            },
            std::time::Duration::from_secs(3),
        )
        .ok();
        let held = send_wrapper::SendWrapper::new((state, on_visibility, document));
        on_cleanup(move || {
            let (state, on_visibility, document) = &*held;
            state.borrow_mut().close();
            if let Some(doc) = document {
                let _ = doc.remove_event_listener_with_callback(
                    "visibilitychange",
                    on_visibility.as_ref().unchecked_ref(),
                );
            }
            if let Some(h) = handle {
                h.clear();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summaries_and_durations_read_well() {
        assert_eq!(
            summary_label(&json!({"users": 4, "days_written": 9, "failed": 1})),
            "4 user(s) synced, 9 day(s) with use, 1 failed"
        );
        assert_eq!(
            summary_label(&json!({"rows": 12, "from": "2026-11-01", "to": "2026-11-28"})),
            "12 row(s), 2026-11-01 to 2026-11-28"
        );
        assert_eq!(summary_label(&json!({"x": 1})), r#"{"x":1}"#);
        for (ms, want) in [(850, "850 ms"), (1500, "1.5 s"), (65_000, "1 min 5 s")] {
            assert_eq!(duration_label(ms), want);
        }
        assert_eq!(attempts_label(0, 3), "up to 3 attempt(s)");
        let summary = json!({"users": 2, "days_written": 0, "failed": 2, "failures": [
            {"user_id": "u1", "email": "a@example.com", "error": "LiteLLM said 500"},
            {"user_id": "u2", "email": null, "error": "timeout"},
        ]});
        assert_eq!(
            failure_lines(&summary),
            vec![
                (
                    "u1".into(),
                    "a@example.com".into(),
                    "LiteLLM said 500".into()
                ),
                ("u2".into(), "u2".into(), "timeout".into()),
            ]
        );
        assert!(failure_lines(&json!({"rows": 3})).is_empty());
        assert_eq!(attempts_label(2, 3), "attempt 2 of 3");
    }

    #[test]
    fn pages_link_to_their_neighbours_and_keep_the_filter() {
        let f = |offset| JobFilterDto {
            kind: Some("usage_sync".into()),
            status: None,
            offset,
        };
        assert_eq!(query_string(&JobFilterDto::default()), "");
        assert_eq!(query_string(&f(0)), "?type=usage_sync");
        assert_eq!(query_string(&f(50)), "?type=usage_sync&offset=50");
        // First of three pages: no newer, older at 50.
        assert_eq!(page_link(&f(0), 120, false), None);
        assert_eq!(
            page_link(&f(0), 120, true).as_deref(),
            Some("/admin/jobs?type=usage_sync&offset=50")
        );
        // Last page: newer at 50, nothing older.
        assert_eq!(
            page_link(&f(100), 120, false).as_deref(),
            Some("/admin/jobs?type=usage_sync&offset=50")
        );
        assert_eq!(page_link(&f(100), 120, true), None);
        // Exactly one full page: no older.
        assert_eq!(page_link(&f(0), 50, true), None);
        // Second page: newer is the first (no offset in the address).
        assert_eq!(
            page_link(&f(50), 120, false).as_deref(),
            Some("/admin/jobs?type=usage_sync")
        );
        // Past the end (jobs were deleted): back to the last page that has some.
        assert_eq!(
            page_link(&f(200), 120, false).as_deref(),
            Some("/admin/jobs?type=usage_sync&offset=100")
        );
    }
}
