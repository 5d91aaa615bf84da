//! The job service: creating, reading, moving, claiming and cleaning up jobs. The legal moves
//! are `domain::jobs`; every write here is guarded by the state (and attempt) it expects, and an
//! illegal or lost move is a 409.

pub mod handlers;
pub mod runner;

use crate::api::error::{AppError, ErrorCode};
use crate::api::jobs::{JobDto, JobPageDto};
use crate::domain::jobs::{cancel, check_move, Cancel, JobInput, JobStatus, JobType};
use crate::server::db::jobs::{self, Filter, JobRow, NewJob};
use crate::server::db::{self};
use crate::server::error::Result;
use crate::server::state::AppState;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

/// Attempts a job gets unless told otherwise.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 3;

impl From<JobRow> for JobDto {
    fn from(r: JobRow) -> Self {
        JobDto {
            id: r.id,
            kind: r.kind,
            status: r.status,
            progress: i64::from(r.progress),
            user_id: r.user_id,
            user_email: r.user_email,
            metadata: r.metadata.0,
            error: r.error,
            attempts: i64::from(r.attempts),
            max_attempts: i64::from(r.max_attempts),
            cancel_requested: r.cancel_requested,
            run_at: r.run_at,
            started_at: r.started_at,
            completed_at: r.completed_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            has_result: r.has_result,
        }
    }
}

/// A type or status named by a client (`None`: any); an unknown name is a 400 listing the
/// valid ones.
pub fn parse_name<T: std::str::FromStr<Err = String>>(raw: Option<&str>) -> Result<Option<T>> {
    raw.map(str::parse)
        .transpose()
        .map_err(|e| AppError::validation(e).into())
}

fn conflict(message: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::Conflict, message)
}

/// The outcome of creating a job that may exist already (a usage sync).
pub enum Created {
    New(JobDto),
    /// A job that already does this (the pending or running usage sync).
    Existing(JobDto),
}

impl Created {
    /// The job, new or not.
    pub fn job(self) -> JobDto {
        match self {
            Created::New(job) | Created::Existing(job) => job,
        }
    }
}

/// Creates a pending job, due now. A type without a handler is refused (400), so is a usage
/// sync without a LiteLLM proxy (409); a second usage sync while one is pending or running is
/// not created: that one is returned instead.
#[tracing::instrument(skip(state), err)]
pub async fn create_job(
    state: &AppState,
    input: &JobInput,
    user_id: Option<Uuid>,
) -> Result<Created> {
    create_job_with(state, input, user_id, None, DEFAULT_MAX_ATTEMPTS).await
}

/// [`create_job`] with a dedupe key (one job per key, ever) and a number of attempts.
#[tracing::instrument(skip(state), err)]
pub async fn create_job_with(
    state: &AppState,
    input: &JobInput,
    user_id: Option<Uuid>,
    dedupe_key: Option<&str>,
    max_attempts: i32,
) -> Result<Created> {
    let kind = input.kind();
    if !kind.has_handler() {
        return Err(AppError::validation(format!(
            "unsupported job type: {kind} (no handler exists yet)"
        ))
        .into());
    }
    if kind == JobType::UsageSync && !state.llm.is_litellm() {
        return Err(conflict(
            "usage is synced from LiteLLM, and no LiteLLM proxy is configured (LITELLM_URL)",
        )
        .into());
    }
    let now = db::now();
    let metadata = input.to_metadata();
    let new = NewJob {
        id: Uuid::new_v4(),
        kind,
        user_id,
        metadata: &metadata,
        max_attempts,
        run_at: now,
        dedupe_key,
        now,
    };
    if let Some(row) = jobs::insert(&state.db, &new).await? {
        runner::wake(state).await;
        return Ok(Created::New(row.into()));
    }
    if kind == JobType::UsageSync {
        if let Some(row) = jobs::find_active_usage_sync(&state.db).await? {
            return Ok(Created::Existing(row.into()));
        }
    }
    Err(conflict(format!("a {kind} job with this key exists already")).into())
}

/// Moves a job to `to` (with progress and error), if the state machine allows it from where it
/// is: an illegal move, or a job that moved meanwhile, is a 409.
#[tracing::instrument(skip(state), err)]
pub async fn update_job_status(
    state: &AppState,
    id: Uuid,
    to: JobStatus,
    progress: Option<i32>,
    error: Option<&str>,
) -> Result<JobDto> {
    let row = jobs::find(&state.db, id)
        .await?
        .ok_or_else(|| AppError::not_found("job"))?;
    let from = row.status;
    check_move(from, to).map_err(|e| conflict(e.to_string()))?;
    if to == JobStatus::Running {
        return Err(conflict("a job starts running only when a worker claims it").into());
    }
    let moved = jobs::set_status(
        &state.db,
        id,
        from.as_str(),
        row.attempts,
        to.as_str(),
        progress,
        error,
        db::now(),
    )
    .await?;
    if !moved {
        return Err(conflict("the job changed meanwhile; read it again").into());
    }
    get_job(state, id).await
}

#[tracing::instrument(skip(state))]
pub async fn get_job(state: &AppState, id: Uuid) -> Result<JobDto> {
    Ok(jobs::find(&state.db, id)
        .await?
        .ok_or_else(|| AppError::not_found("job"))?
        .into())
}

/// A user's own job; anyone else's is "not found".
#[tracing::instrument(skip(state))]
pub async fn get_own_job(state: &AppState, user_id: Uuid, id: Uuid) -> Result<JobDto> {
    match jobs::find(&state.db, id).await? {
        Some(row) if row.user_id == Some(user_id) => Ok(row.into()),
        _ => Err(AppError::not_found("job").into()),
    }
}

/// A user's jobs, newest first, by type and status when given.
#[tracing::instrument(skip(state))]
pub async fn get_user_jobs(
    state: &AppState,
    user_id: Uuid,
    kind: Option<JobType>,
    status: Option<JobStatus>,
) -> Result<Vec<JobDto>> {
    let filter = Filter {
        kind: kind.map(JobType::as_str),
        status: status.map(JobStatus::as_str),
        user_id: Some(user_id),
    };
    Ok(jobs::list(&state.db, &filter, 500, 0)
        .await?
        .into_iter()
        .map(JobDto::from)
        .collect())
}

/// Every job, newest first, filtered and paginated (for admins).
#[tracing::instrument(skip(state))]
pub async fn list_jobs(
    state: &AppState,
    kind: Option<JobType>,
    status: Option<JobStatus>,
    user_id: Option<Uuid>,
    limit: i64,
    offset: i64,
) -> Result<JobPageDto> {
    if !(1..=500).contains(&limit) || offset < 0 {
        return Err(AppError::validation(format!(
            "limit must be 1 to 500 and offset 0 or more (got limit {limit}, offset {offset})"
        ))
        .into());
    }
    let filter = Filter {
        kind: kind.map(JobType::as_str),
        status: status.map(JobStatus::as_str),
        user_id,
    };
    let (rows, total, active) = tokio::try_join!(
        jobs::list(&state.db, &filter, limit, offset),
        jobs::count(&state.db, &filter),
        jobs::find_active_usage_sync(&state.db)
    )?;
    Ok(JobPageDto {
        jobs: rows.into_iter().map(JobDto::from).collect(),
        total,
        limit,
        offset,
        active_usage_sync: active.map(|job| job.id),
        usage_sync_available: state.llm.is_litellm(),
    })
}

/// Pending jobs of a type, oldest first.
#[tracing::instrument(skip(state))]
pub async fn get_pending_jobs(state: &AppState, kind: JobType) -> Result<Vec<JobDto>> {
    Ok(jobs::list_pending(&state.db, kind)
        .await?
        .into_iter()
        .map(JobDto::from)
        .collect())
}

/// Claims the oldest due job for this worker, leased for `lease`.
#[tracing::instrument(level = "debug", skip(state))]
pub async fn claim_next(state: &AppState, lease: Duration) -> Result<Option<JobRow>> {
    let now = db::now();
    Ok(jobs::claim_next(&state.db, now, now + lease).await?)
}

/// Cancels a job: a pending one at once, a running one is asked to stop (it ends `cancelled`
/// when its handler notices); a finished one is a 409.
#[tracing::instrument(skip(state), err)]
pub async fn cancel_job(state: &AppState, id: Uuid) -> Result<JobDto> {
    // Two tries: a pending job can start running between the read and the update.
    for _ in 0..2 {
        let row = jobs::find(&state.db, id)
            .await?
            .ok_or_else(|| AppError::not_found("job"))?;
        let status = row.status;
        let done = match cancel(status) {
            Cancel::Now => jobs::cancel_pending(&state.db, id, db::now()).await?,
            Cancel::Requested => jobs::request_cancel(&state.db, id, db::now()).await?,
            Cancel::Finished => {
                return Err(conflict(format!("the job is {status}: nothing to cancel")).into())
            }
        };
        if done {
            return get_job(state, id).await;
        }
    }
    Err(conflict("the job changed meanwhile; read it again").into())
}

/// Deletes finished jobs that ended more than `days` days ago; returns how many.
#[tracing::instrument(skip(state), err)]
pub async fn cleanup_old_jobs(state: &AppState, days: i64) -> Result<u64> {
    let before: DateTime<Utc> = db::now() - Duration::days(days);
    Ok(jobs::delete_finished_before(&state.db, before).await?)
}

/// A page of jobs for the admin page's filters and offset (names checked like the API's).
#[tracing::instrument(skip(state))]
pub async fn list_filtered(
    state: &AppState,
    filter: &crate::api::jobs::JobFilterDto,
) -> Result<JobPageDto> {
    let kind = parse_name(filter.kind.as_deref())?;
    let status = parse_name(filter.status.as_deref())?;
    list_jobs(
        state,
        kind,
        status,
        None,
        crate::api::jobs::ADMIN_PAGE_SIZE,
        filter.offset,
    )
    .await
}

/// Starts a usage sync of everyone for `user` (recorded as who asked), or gives the one
/// pending or running.
pub async fn start_usage_sync(state: &AppState, user: &crate::api::UserDto) -> Result<Created> {
    let input = JobInput::UsageSync {
        requested_by: Some(user.email.clone()),
        scheduled_for: None,
    };
    create_job(state, &input, Some(user.id)).await
}

/// A completed report's file name and CSV; 409 while it is not done (or has none).
#[tracing::instrument(skip(state), err)]
pub async fn report_result(state: &AppState, id: Uuid) -> Result<(String, String)> {
    let job = get_job(state, id).await?;
    if job.status != JobStatus::Completed || !job.has_result {
        return Err(conflict(format!(
            "the job is {} and has no result to download",
            job.status
        ))
        .into());
    }
    let csv = jobs::find_result(&state.db, id)
        .await?
        .flatten()
        .unwrap_or_default();
    let name = match JobInput::read(job.kind, &job.metadata) {
        JobInput::Report {
            start_date,
            end_date,
        } => format!("usage-report-{start_date}-to-{end_date}.csv"),
        _ => format!("{}-{}.csv", job.kind, job.id),
    };
    Ok((name, csv))
}

/// Asks for a CSV usage report of every user's days from `start` to `end` (`YYYY-MM-DD`),
/// made in the background; the range is checked now, so a bad one is a 400, not a failed job.
#[tracing::instrument(skip(state), err)]
pub async fn request_report(
    state: &AppState,
    requested_by: Uuid,
    start: &str,
    end: &str,
) -> Result<Created> {
    let (from, to) = crate::domain::usage::parse_named_range(
        Some(start),
        Some(end),
        crate::server::usage_sync::today(state),
        ("start_date", "end_date"),
    )
    .map_err(AppError::validation)?;
    let input = JobInput::Report {
        start_date: from.to_string(),
        end_date: to.to_string(),
    };
    create_job(state, &input, Some(requested_by)).await
}
