//! Background jobs as clients see them.

use crate::domain::jobs::{JobStatus, JobType};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct JobDto {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: JobType,
    pub status: JobStatus,
    pub progress: i64,
    pub user_id: Option<Uuid>,
    /// Who asked for it (their e-mail now).
    pub user_email: Option<String>,
    pub metadata: Value,
    pub error: Option<String>,
    pub attempts: i64,
    pub max_attempts: i64,
    pub cancel_requested: bool,
    #[serde(with = "crate::domain::time::wire")]
    pub run_at: DateTime<Utc>,
    #[serde(default, with = "crate::domain::time::wire::option")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, with = "crate::domain::time::wire::option")]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::domain::time::wire")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::time::wire")]
    pub updated_at: DateTime<Utc>,
    /// A report is ready to download.
    pub has_result: bool,
}

impl JobDto {
    /// The job as its owner sees it when they are not an admin: without what it holds of
    /// other users (a usage sync's failed users, and its error, which can name one).
    pub fn for_non_admin(mut self) -> Self {
        if let Some(summary) = self
            .metadata
            .get_mut("summary")
            .and_then(Value::as_object_mut)
        {
            summary.remove("failures");
        }
        if self.kind == JobType::UsageSync && self.error.is_some() {
            self.error = Some("the usage sync failed; an admin can see why".into());
        }
        self
    }
}

/// A page of jobs, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct JobPageDto {
    pub jobs: Vec<JobDto>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    /// The usage sync pending or running now, whatever the filters (there is at most one).
    pub active_usage_sync: Option<Uuid>,
    /// Whether usage can be synced here (a LiteLLM proxy is configured).
    pub usage_sync_available: bool,
}

/// Filters of the admin jobs page (kept in its URL).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct JobFilterDto {
    #[serde(rename = "type")]
    #[cfg_attr(
        feature = "ssr",
        param(schema_with = crate::server::rest::openapi::job_type_filter)
    )]
    pub kind: Option<String>,
    #[cfg_attr(
        feature = "ssr",
        param(schema_with = crate::server::rest::openapi::job_status)
    )]
    pub status: Option<String>,
    /// How many newer jobs to skip (the page size is [`ADMIN_PAGE_SIZE`]).
    #[serde(default)]
    #[cfg_attr(feature = "ssr", param(minimum = 0))]
    pub offset: i64,
}

/// Jobs on one page of `/admin/jobs`.
pub const ADMIN_PAGE_SIZE: i64 = 50;

/// The first page of jobs for the admin page.
#[leptos::server(prefix = "/api/fn", endpoint = "admin_list_jobs", input = leptos::server_fn::codec::Json)]
pub async fn admin_list_jobs(filter: JobFilterDto) -> Result<JobPageDto, super::error::AppError> {
    let (state, _admin) = super::ssr::require_admin().await?;
    Ok(crate::server::jobs::list_filtered(&state, &filter).await?)
}

/// Starts a usage sync of everyone, or answers with the one under way.
#[leptos::server(prefix = "/api/fn", endpoint = "admin_start_usage_sync")]
pub async fn admin_start_usage_sync() -> Result<JobDto, super::error::AppError> {
    let (state, admin) = super::ssr::require_admin().await?;
    Ok(crate::server::jobs::start_usage_sync(&state, &admin.user)
        .await?
        .job())
}

/// Cancels any job (pending at once, running on request).
#[leptos::server(prefix = "/api/fn", endpoint = "admin_cancel_job")]
pub async fn admin_cancel_job(id: Uuid) -> Result<JobDto, super::error::AppError> {
    let (state, _admin) = super::ssr::require_admin().await?;
    Ok(crate::server::jobs::cancel_job(&state, id).await?)
}

/// Asks for a CSV usage report of everyone's days from `start_date` to `end_date`.
#[leptos::server(prefix = "/api/fn", endpoint = "admin_request_report")]
pub async fn admin_request_report(
    start_date: String,
    end_date: String,
) -> Result<JobDto, super::error::AppError> {
    let (state, admin) = super::ssr::require_admin().await?;
    Ok(
        crate::server::jobs::request_report(&state, admin.user.id, &start_date, &end_date)
            .await?
            .job(),
    )
}
