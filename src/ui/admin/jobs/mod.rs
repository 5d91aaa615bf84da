//! `/admin/jobs`: every job with its status, progress and times, filters kept in the URL, live
//! updates (server-sent events from `/api/admin/jobs/events`; polling when they fail; paused
//! while the tab is hidden), "Sync usage now" and cancel buttons. The page is here, a job's row
//! in [`row`], the live updates in [`follow`].

mod follow;
mod row;

use crate::api::jobs::{
    admin_list_jobs, AdminCancelJob, AdminRequestReport, AdminStartUsageSync, JobFilterDto,
    JobPageDto, ADMIN_PAGE_SIZE,
};
use crate::domain::jobs::{JOB_STATUSES, JOB_TYPES};
use crate::ui::common::{
    action_error, resource, ErrorNotice, PostForm, BTN_PRIMARY, BTN_SECONDARY, INPUT, LABEL,
};
use follow::{follow, FollowMode};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};
use row::JobRow;

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
    let mode = RwSignal::new(FollowMode::Connecting);
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
                    <span data-testid="jobs-live" data-mode=move || mode.get().key()>
                        {move || mode.get().label()}
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

#[cfg(test)]
mod tests {
    use super::*;

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
