//! Jobs over REST: a user's own under `/api/jobs`, everyone's for admins under
//! `/api/admin/jobs` (list, create, start a usage sync, ask for a report, cancel, download a
//! report).

use super::{ok, parse_id, ApiError, ApiJson, ApiOk, ApiQuery, ApiResult, Envelope, IdPath};
use crate::api::error::AppError;
use crate::api::jobs::{JobDto, JobFilterDto, JobPageDto};
use crate::domain::jobs::{JobInput, JobType};
use crate::server::auth::{AdminUser, AuthUser};
use crate::server::jobs::{self, parse_name, Created};
use crate::server::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OwnFilter {
    #[serde(rename = "type")]
    #[param(schema_with = super::openapi::job_type_filter)]
    kind: Option<String>,
    #[param(schema_with = super::openapi::job_status)]
    status: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/jobs",
    tag = "jobs",
    params(OwnFilter),
    responses((status = 200, description = "the caller's jobs, newest first", body = Envelope<Vec<JobDto>>))
)]
/// `GET /api/jobs?type=&status=`: the caller's jobs, newest first.
pub async fn list_own(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiQuery(q): ApiQuery<OwnFilter>,
) -> ApiResult<Vec<JobDto>> {
    let (kind, status) = (
        parse_name(q.kind.as_deref())?,
        parse_name(q.status.as_deref())?,
    );
    let list = jobs::get_user_jobs(&state, me.user.id, kind, status).await?;
    ok(shown_to(&me, list))
}

#[utoipa::path(
    get,
    path = "/api/jobs/{id}",
    tag = "jobs",
    params(IdPath),
    responses((status = 200, description = "one of the caller's jobs", body = Envelope<JobDto>))
)]
/// `GET /api/jobs/{id}`: one of the caller's jobs (anyone else's is 404).
pub async fn get_own(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<JobDto> {
    let id = parse_id(&id, "id")?;
    let job = jobs::get_own_job(&state, me.user.id, id).await?;
    ok(shown_to(&me, vec![job]).remove(0))
}

/// A user's own jobs as they may see them: a non-admin sees nothing of other users in them.
fn shown_to(me: &crate::server::auth::Principal, jobs: Vec<JobDto>) -> Vec<JobDto> {
    if me.is_admin() {
        jobs
    } else {
        jobs.into_iter().map(JobDto::for_non_admin).collect()
    }
}

#[utoipa::path(
    delete,
    path = "/api/jobs/{id}",
    tag = "jobs",
    params(IdPath),
    responses((status = 200, description = "cancelled, or asked to stop", body = Envelope<JobDto>))
)]
/// `DELETE /api/jobs/{id}`: cancels one of the caller's jobs: a pending one at once, a running
/// one is asked to stop; a finished one is 409.
pub async fn cancel_own(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<JobDto> {
    let id = parse_id(&id, "id")?;
    jobs::get_own_job(&state, me.user.id, id).await?;
    let job = jobs::cancel_job(&state, id).await?;
    ok(shown_to(&me, vec![job]).remove(0))
}

#[derive(Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AdminFilter {
    #[serde(rename = "type")]
    #[param(schema_with = super::openapi::job_type_filter)]
    kind: Option<String>,
    #[param(schema_with = super::openapi::job_status)]
    status: Option<String>,
    #[param(format = Uuid)]
    user_id: Option<String>,
    /// 1 to 500 (50 when absent)
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    #[param(minimum = 0)]
    offset: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/admin/jobs",
    tag = "jobs",
    params(AdminFilter),
    responses((status = 200, description = "a page of every job", body = Envelope<JobPageDto>))
)]
/// `GET /api/admin/jobs?type=&status=&user_id=&limit=50&offset=0`: every job, newest first.
pub async fn list_all(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    ApiQuery(q): ApiQuery<AdminFilter>,
) -> ApiResult<JobPageDto> {
    let (kind, status) = (
        parse_name(q.kind.as_deref())?,
        parse_name(q.status.as_deref())?,
    );
    let user_id = q
        .user_id
        .as_deref()
        .map(|raw| parse_id(raw, "user_id"))
        .transpose()?;
    let page = jobs::list_jobs(
        &state,
        kind,
        status,
        user_id,
        q.limit.unwrap_or(50),
        q.offset.unwrap_or(0),
    )
    .await?;
    ok(page)
}

/// 202 with a new job, 200 with the one already doing it.
fn accepted(result: Created) -> ApiResult<JobDto> {
    match result {
        Created::New(job) => Ok(ApiOk(StatusCode::ACCEPTED, job)),
        Created::Existing(job) => ok(job),
    }
}

#[utoipa::path(
    post,
    path = "/api/admin/jobs/usage-sync",
    tag = "jobs",
    responses((status = 202, description = "a new sync started", body = Envelope<JobDto>), (status = 200, description = "the sync already pending or running", body = Envelope<JobDto>))
)]
/// `POST /api/admin/jobs/usage-sync`: starts a sync of everyone's usage (202); while one is
/// pending or running, that one (200).
pub async fn start_usage_sync(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
) -> ApiResult<JobDto> {
    accepted(jobs::start_usage_sync(&state, &admin.user).await?)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// YYYY-MM-DD, at most 366 days before `end_date`
    #[schema(format = Date)]
    start_date: String,
    #[schema(format = Date)]
    end_date: String,
}

async fn start_report(
    state: &AppState,
    admin: uuid::Uuid,
    start: &str,
    end: &str,
) -> ApiResult<JobDto> {
    accepted(jobs::request_report(state, admin, start, end).await?)
}

#[utoipa::path(
    post,
    path = "/api/admin/jobs/report",
    tag = "jobs",
    request_body = ReportRequest,
    responses((status = 202, description = "a new report job", body = Envelope<JobDto>), (status = 200, description = "the same report already asked for", body = Envelope<JobDto>))
)]
/// `POST /api/admin/jobs/report {start_date, end_date}`: a CSV usage report, made in the
/// background (202); download it from `/api/admin/jobs/{id}/result` once completed.
pub async fn request_report(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiJson(body): ApiJson<ReportRequest>,
) -> ApiResult<JobDto> {
    start_report(&state, admin.user.id, &body.start_date, &body.end_date).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewJobRequest {
    #[serde(rename = "type")]
    #[schema(schema_with = super::openapi::job_type)]
    kind: String,
    #[serde(default)]
    metadata: Value,
}

#[utoipa::path(
    post,
    path = "/api/admin/jobs",
    tag = "jobs",
    request_body = NewJobRequest,
    responses((status = 202, description = "a new job", body = Envelope<JobDto>), (status = 200, description = "the same job already pending or running", body = Envelope<JobDto>))
)]
/// `POST /api/admin/jobs {type, metadata}`: any job type that has a handler.
pub async fn create(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiJson(body): ApiJson<NewJobRequest>,
) -> ApiResult<JobDto> {
    let kind: JobType = body.kind.parse().map_err(AppError::validation)?;
    match kind {
        JobType::UsageSync => accepted(jobs::start_usage_sync(&state, &admin.user).await?),
        JobType::ReportGeneration => {
            let field = |name: &str| body.metadata[name].as_str().unwrap_or_default().to_string();
            start_report(
                &state,
                admin.user.id,
                &field("start_date"),
                &field("end_date"),
            )
            .await
        }
        // Refused by the service (no handler yet).
        JobType::DocumentProcessing => accepted(
            jobs::create_job(
                &state,
                &JobInput::DocumentProcessing {},
                Some(admin.user.id),
            )
            .await?,
        ),
    }
}

#[utoipa::path(
    delete,
    path = "/api/admin/jobs/{id}",
    tag = "jobs",
    params(IdPath),
    responses((status = 200, description = "cancelled, or asked to stop", body = Envelope<JobDto>))
)]
/// `DELETE /api/admin/jobs/{id}`: cancels any job.
pub async fn cancel_any(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<JobDto> {
    let id = parse_id(&id, "id")?;
    ok(jobs::cancel_job(&state, id).await?)
}

#[utoipa::path(
    get,
    path = "/api/admin/jobs/{id}",
    tag = "jobs",
    params(IdPath),
    responses((status = 200, description = "the job", body = Envelope<JobDto>))
)]
/// `GET /api/admin/jobs/{id}`: any job.
pub async fn get_any(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<JobDto> {
    let id = parse_id(&id, "id")?;
    ok(jobs::get_job(&state, id).await?)
}

#[utoipa::path(
    get,
    path = "/api/admin/jobs/{id}/result",
    tag = "jobs",
    params(IdPath),
    responses((status = 200, description = "the report as a CSV download", body = String, content_type = "text/csv"))
)]
/// `GET /api/admin/jobs/{id}/result`: a completed report's CSV; 409 while it is not done.
pub async fn result(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "id")?;
    let (file_name, csv) = jobs::report_result(&state, id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        csv,
    )
        .into_response())
}

/// How long one jobs event stream lasts: every request's time is bounded, this one's too.
const EVENTS_LIFETIME: std::time::Duration = std::time::Duration::from_secs(10 * 60);

#[utoipa::path(
    get,
    path = "/api/admin/jobs/events",
    tag = "jobs",
    params(JobFilterDto),
    responses((status = 200, description = "server-sent `jobs` events, each one page of jobs (its JSON the `data` of `GET /api/admin/jobs`), now and again on every change; the stream ends after 10 minutes (an EventSource reconnects)", body = super::openapi::JobsEvent, content_type = "text/event-stream"))
)]
/// `GET /api/admin/jobs/events?type=&status=&offset=`: server-sent events for the admin jobs
/// page: a `jobs` event with its page (as `GET /api/admin/jobs`) now and whenever it changes
/// (checked every second, the caller's admin rights with it), so the page follows progress
/// without reloading; it ends after EVENTS_LIFETIME (an EventSource reconnects by itself).
pub async fn events(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    parts: axum::http::request::Parts,
    ApiQuery(filter): ApiQuery<JobFilterDto>,
) -> Result<
    axum::response::Sse<
        impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
    >,
    ApiError,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures_util::StreamExt;
    let event = |data: String| Ok(Event::default().event("jobs").data(data));
    let mut closing = state.jobs.closing.subscribe();
    // The first page now (bad filters are a 400 here, not a broken stream later).
    let first = serde_json::to_string(&jobs::list_filtered(&state, &filter).await?)
        .map_err(|e| crate::server::error::Error::internal(format!("jobs events: {e}")))?;
    let changes = futures_util::stream::unfold(
        (state, filter, parts, first.clone()),
        move |(state, filter, parts, last)| async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                // Authorized again every time: a log-out, a disabled account or a lost admin
                // role ends the stream.
                if let Err(e) = crate::server::auth::require_admin(&state, &parts).await {
                    tracing::info!(error = %e, "jobs events: the caller is no longer an admin");
                    return None;
                }
                match jobs::list_filtered(&state, &filter).await {
                    Ok(page) => {
                        let data = serde_json::to_string(&page).unwrap_or_default();
                        if data != last {
                            return Some((event(data.clone()), (state, filter, parts, data)));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "jobs events: list failed"),
                }
            }
        },
    );
    // Ends when the server starts shutting down, and after EVENTS_LIFETIME at the latest (the
    // browser's EventSource then reconnects on its own and gets the page afresh).
    let stream = futures_util::stream::once(std::future::ready(event(first)))
        .chain(changes)
        .take_until(async move {
            tokio::select! {
                _ = closing.wait_for(|c| *c) => {}
                _ = tokio::time::sleep(EVENTS_LIFETIME) => {}
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
