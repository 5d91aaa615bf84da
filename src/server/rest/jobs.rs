//! Jobs over REST: a user's own under `/api/jobs`, everyone's for admins under
//! `/api/admin/jobs` (list, create, start a usage sync, ask for a report, cancel, download a
//! report).

use super::{ok, parse_id, ApiError, ApiJson, ApiOk, ApiResult};
use crate::api::error::{AppError, ErrorCode};
use crate::api::jobs::{JobDto, JobPageDto};
use crate::domain::jobs::{JobStatus, JobType};
use crate::server::auth::{AdminUser, AuthUser};
use crate::server::jobs::{self, Created};
use crate::server::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

fn parse_type(raw: Option<&str>) -> Result<Option<JobType>, ApiError> {
    raw.map(str::parse)
        .transpose()
        .map_err(|e: String| ApiError(AppError::validation(e)))
}

fn parse_status(raw: Option<&str>) -> Result<Option<JobStatus>, ApiError> {
    raw.map(str::parse)
        .transpose()
        .map_err(|e: String| ApiError(AppError::validation(e)))
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError(AppError::validation(e.body_text())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnFilter {
    #[serde(rename = "type")]
    kind: Option<String>,
    status: Option<String>,
}

/// `GET /api/jobs?type=&status=`: the caller's jobs, newest first.
pub async fn list_own(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    q: Result<Query<OwnFilter>, QueryRejection>,
) -> ApiResult<Vec<JobDto>> {
    let q = query(q)?;
    let (kind, status) = (
        parse_type(q.kind.as_deref())?,
        parse_status(q.status.as_deref())?,
    );
    ok(jobs::get_user_jobs(&state, me.user.id, kind, status).await?)
}

/// `GET /api/jobs/{id}`: one of the caller's jobs (anyone else's is 404).
pub async fn get_own(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<JobDto> {
    let id = parse_id(&id, "id")?;
    ok(jobs::get_own_job(&state, me.user.id, id).await?)
}

/// `DELETE /api/jobs/{id}`: cancels one of the caller's jobs: a pending one at once, a running
/// one is asked to stop; a finished one is 409.
pub async fn cancel_own(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<JobDto> {
    let id = parse_id(&id, "id")?;
    jobs::get_own_job(&state, me.user.id, id).await?;
    ok(jobs::cancel_job(&state, id).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFilter {
    #[serde(rename = "type")]
    kind: Option<String>,
    status: Option<String>,
    user_id: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `GET /api/admin/jobs?type=&status=&user_id=&limit=50&offset=0`: every job, newest first.
pub async fn list_all(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    q: Result<Query<AdminFilter>, QueryRejection>,
) -> ApiResult<JobPageDto> {
    let q = query(q)?;
    let (kind, status) = (
        parse_type(q.kind.as_deref())?,
        parse_status(q.status.as_deref())?,
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
fn created(result: Created) -> ApiResult<JobDto> {
    match result {
        Created::New(job) => Ok(ApiOk(StatusCode::ACCEPTED, job)),
        Created::Existing(job) => ok(job),
    }
}

/// `POST /api/admin/jobs/usage-sync`: starts a sync of everyone's usage (202); while one is
/// pending or running, that one (200).
pub async fn start_usage_sync(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
) -> ApiResult<JobDto> {
    let metadata = json!({"requested_by": admin.user.email});
    created(jobs::create_job(&state, JobType::UsageSync, Some(admin.user.id), metadata).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    start_date: String,
    end_date: String,
}

async fn start_report(
    state: &AppState,
    admin: uuid::Uuid,
    start: &str,
    end: &str,
) -> ApiResult<JobDto> {
    created(jobs::request_report(state, admin, start, end).await?)
}

/// `POST /api/admin/jobs/report {start_date, end_date}`: a CSV usage report, made in the
/// background (202); download it from `/api/admin/jobs/{id}/result` once completed.
pub async fn request_report(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiJson(body): ApiJson<ReportRequest>,
) -> ApiResult<JobDto> {
    start_report(&state, admin.user.id, &body.start_date, &body.end_date).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewJobRequest {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    metadata: Value,
}

/// `POST /api/admin/jobs {type, metadata}`: any job type that has a handler.
pub async fn create(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiJson(body): ApiJson<NewJobRequest>,
) -> ApiResult<JobDto> {
    let kind = parse_type(Some(&body.kind))?.expect("given");
    match kind {
        JobType::UsageSync => start_usage_sync(State(state), AdminUser(admin)).await,
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
        JobType::DocumentProcessing => Err(ApiError(AppError::validation(format!(
            "unsupported job type: {kind} (no handler exists yet)"
        )))),
    }
}

/// `DELETE /api/admin/jobs/{id}`: cancels any job.
pub async fn cancel_any(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<JobDto> {
    let id = parse_id(&id, "id")?;
    ok(jobs::cancel_job(&state, id).await?)
}

/// `GET /api/admin/jobs/{id}`: any job.
pub async fn get_any(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<JobDto> {
    let id = parse_id(&id, "id")?;
    ok(jobs::get_job(&state, id).await?)
}

/// `GET /api/admin/jobs/{id}/result`: a completed report's CSV; 409 while it is not done.
pub async fn result(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "id")?;
    let job = jobs::get_job(&state, id).await?;
    if job.status != "completed" || !job.has_result {
        return Err(ApiError(AppError::new(
            ErrorCode::Conflict,
            format!("the job is {} and has no result to download", job.status),
        )));
    }
    let csv = crate::server::db::jobs::find_result(&state.db, id)
        .await
        .map_err(crate::server::error::Error::from)?
        .flatten()
        .unwrap_or_default();
    let from = job.metadata["start_date"].as_str().unwrap_or("from");
    let to = job.metadata["end_date"].as_str().unwrap_or("to");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"usage-report-{from}-to-{to}.csv\""),
            ),
        ],
        csv,
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsFilter {
    #[serde(rename = "type")]
    kind: Option<String>,
    status: Option<String>,
    offset: Option<i64>,
}

/// `GET /api/admin/jobs/events?type=&status=&offset=`: server-sent events for the admin jobs
/// page: a `jobs` event with its page (as `GET /api/admin/jobs`) now and whenever it changes
/// (checked every second, the caller's admin rights with it), so the page follows progress
/// without reloading.
pub async fn events(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    parts: axum::http::request::Parts,
    q: Result<Query<EventsFilter>, QueryRejection>,
) -> Result<
    axum::response::Sse<
        impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
    >,
    ApiError,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let q = query(q)?;
    let filter = crate::api::jobs::JobFilterDto {
        kind: q.kind,
        status: q.status,
        offset: q.offset.unwrap_or(0),
    };
    // Bad filters are a 400 now, not a broken stream later.
    jobs::list_filtered(&state, &filter).await?;
    let mut closing = state.jobs.closing.subscribe();
    let stream = futures_util::stream::unfold(
        (state, filter, parts, String::new(), true),
        |(state, filter, parts, last, first)| async move {
            let mut last = last;
            if !first {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            loop {
                // Authorized again every time: a log-out, a disabled account or a lost admin
                // role ends the stream.
                if let Err(e) = crate::server::auth::require_admin(&state, &parts).await {
                    tracing::info!(error = %e, "jobs events: the caller is no longer an admin");
                    return None;
                }
                let page = jobs::list_filtered(&state, &filter).await;
                let data = match page {
                    Ok(page) => serde_json::to_string(&page).unwrap_or_default(),
                    Err(e) => {
                        tracing::warn!(error = %e, "jobs events: list failed");
                        String::new()
                    }
                };
                if !data.is_empty() && data != last {
                    let event = Event::default().event("jobs").data(data.clone());
                    return Some((Ok(event), (state, filter, parts, data, false)));
                }
                last = if data.is_empty() { last } else { data };
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        },
    );
    // Ends when the server starts shutting down.
    let stream = futures_util::StreamExt::take_until(stream, async move {
        let _ = closing.wait_for(|c| *c).await;
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
