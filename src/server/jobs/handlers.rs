//! What each type of job does. A handler reports progress through its context, checks its
//! cancel flag between steps, and returns the job's summary (and a result, for reports).

use crate::domain::jobs::{
    JobInput, JobSummary, JobType, ReportSummary, SyncFailure, UsageSyncSummary,
};
use crate::server::db::jobs::JobRow;
use crate::server::state::AppState;
use crate::server::{usage_analytics, usage_sync};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;

pub struct JobContext {
    pub state: AppState,
    pub job: JobRow,
    /// Set when the job is asked to stop (a user's cancel, or a shutdown).
    pub cancel: Arc<AtomicBool>,
    /// 0..=100, written to the database by the runner at most once per heartbeat.
    pub progress: Arc<AtomicI32>,
}

/// A finished job's summary and result.
pub struct Done {
    pub metadata: Value,
    pub result: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cancelled")]
    Cancelled,
    #[error("interrupted by a shutdown")]
    Interrupted,
    #[error("{0}")]
    Failed(String),
}

pub async fn run(ctx: JobContext) -> Result<Done, JobError> {
    match ctx.job.kind {
        JobType::UsageSync => run_usage_sync_job(&ctx).await,
        JobType::ReportGeneration => run_report_job(&ctx).await,
        // Never claimed (`JobType::has_handler`).
        JobType::DocumentProcessing => Err(JobError::Failed(format!(
            "no handler for {} jobs",
            ctx.job.kind
        ))),
    }
}

/// Syncs every active user's usage from LiteLLM; a user's failure is in the summary, not the
/// job's, unless every user failed (the job fails and is retried).
#[tracing::instrument(skip_all, fields(job = %ctx.job.id))]
pub async fn run_usage_sync_job(ctx: &JobContext) -> Result<Done, JobError> {
    if !ctx.state.llm.is_litellm() {
        return Err(JobError::Failed(
            "usage is synced from LiteLLM, and no LiteLLM proxy is configured (LITELLM_URL)".into(),
        ));
    }
    let progress = ctx.progress.clone();
    let report = usage_sync::sync_all_users_usage(
        &ctx.state,
        &move |p| {
            let percent = (p.done * 100).checked_div(p.total).unwrap_or(100);
            progress.store(percent as i32, Ordering::Relaxed);
        },
        &ctx.cancel,
    )
    .await
    .map_err(|e| JobError::Failed(crate::api::error::AppError::from(e).message))?;
    if report.stopped {
        return Err(JobError::Cancelled);
    }
    // Nobody synced: LiteLLM is down or refuses us. A failure, so it is retried later.
    if report.users > 0 && report.failures.len() == report.users {
        let first = &report.failures[0].1;
        return Err(JobError::Failed(format!(
            "every user's sync failed ({}); the first: {first}",
            report.users
        )));
    }
    // The first 20 failures, with the e-mail the admin knows the user by.
    let mut failures = Vec::new();
    for (user, error) in report.failures.iter().take(20) {
        let email = crate::server::db::users::find_by_id(&ctx.state.db, *user)
            .await
            .ok()
            .flatten()
            .map(|u| u.email);
        failures.push(SyncFailure {
            user_id: user.to_string(),
            email,
            error: error.clone(),
        });
    }
    let mut metadata = ctx.job.metadata.0.clone();
    JobSummary::UsageSync(UsageSyncSummary {
        users: report.users as i64,
        days_written: report.days_reported as i64,
        failed: report.failures.len() as i64,
        failures,
    })
    .write_into(&mut metadata);
    Ok(Done {
        metadata,
        result: None,
    })
}

/// A CSV of every user's days from `start_date` to `end_date` (in the job's metadata).
#[tracing::instrument(skip_all, fields(job = %ctx.job.id))]
pub async fn run_report_job(ctx: &JobContext) -> Result<Done, JobError> {
    let meta = &ctx.job.metadata.0;
    let JobInput::Report {
        start_date,
        end_date,
    } = JobInput::read(ctx.job.kind, meta)
    else {
        return Err(JobError::Failed(format!(
            "not a report: a {} job",
            ctx.job.kind
        )));
    };
    let (from, to, csv) =
        usage_analytics::usage_export_csv(&ctx.state, Some(&start_date), Some(&end_date))
            .await
            .map_err(|e| JobError::Failed(crate::api::error::AppError::from(e).message))?;
    if ctx.cancel.load(Ordering::Relaxed) {
        return Err(JobError::Cancelled);
    }
    let mut metadata = meta.clone();
    JobSummary::Report(ReportSummary {
        from: from.to_string(),
        to: to.to_string(),
        rows: csv.lines().count().saturating_sub(1) as i64,
        bytes: csv.len() as i64,
    })
    .write_into(&mut metadata);
    Ok(Done {
        metadata,
        result: Some(csv),
    })
}
