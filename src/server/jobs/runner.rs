//! The job runner, started with the server unless `TOKENMETER_JOB_WORKERS=0`: workers that
//! claim due jobs (woken at once by an enqueue, on PostgreSQL from any instance through
//! `NOTIFY tokenmeter_jobs`, else by polling), a heartbeat per running job that extends its
//! lease and hears cancellation, the rescue of jobs whose lease ran out, retries with
//! exponential backoff, the daily usage sync and the daily cleanup. On shutdown workers stop
//! claiming, ask their jobs to stop and hand back what did not finish.

use super::handlers::{self, JobContext, JobError};
use crate::domain::jobs::retry_delay_secs;
use crate::server::db::jobs::{self as repo, End, JobRow};
use crate::server::db::{self, Db};
use crate::server::state::AppState;
use chrono::Duration as ChronoDuration;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// What an enqueue wakes (one per instance, in the state), and the instance's closing flag.
pub struct JobQueue {
    pub notify: Notify,
    /// Set when the server starts shutting down: long-lived answers (the jobs event stream)
    /// end, so the graceful shutdown does not wait for them forever.
    pub closing: watch::Sender<bool>,
}

impl Default for JobQueue {
    fn default() -> Self {
        JobQueue {
            notify: Notify::new(),
            closing: watch::Sender::new(false),
        }
    }
}

impl JobQueue {
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}

const CHANNEL: &str = "tokenmeter_jobs";
/// How long a stopping worker waits for its job to notice.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Wakes this instance's idle workers and, on PostgreSQL, every other instance's.
pub async fn wake(state: &AppState) {
    state.jobs.notify.notify_waiters();
    if let Db::Postgres(pool) = &state.db {
        if let Err(e) = sqlx::query("select pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(pool)
            .await
        {
            tracing::warn!(error = %e, "could not notify other instances of a new job");
        }
    }
}

/// The running runner; [`Runner::stop`] ends it.
pub struct Runner {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Runner {
    /// Starts the workers, the maintenance loop and (PostgreSQL) the listener. `None` when this
    /// instance runs no jobs.
    pub fn start(state: &AppState) -> Option<Runner> {
        let workers = state.config.job_workers;
        if workers == 0 {
            tracing::info!("job runner off on this instance (TOKENMETER_JOB_WORKERS=0)");
            return None;
        }
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        for n in 0..workers {
            tasks.push(tokio::spawn(worker(state.clone(), n, stopped.clone())));
        }
        tasks.push(tokio::spawn(maintenance(state.clone(), stopped.clone())));
        // Estimated calls are corrected from LiteLLM's spend logs.
        if let Some(every) = state
            .config
            .reconcile_every
            .filter(|_| state.llm.is_litellm())
        {
            tasks.push(tokio::spawn(crate::server::usage_reconcile::run(
                state.clone(),
                every,
                stopped.clone(),
            )));
        }
        if let Db::Postgres(pool) = &state.db {
            tasks.push(tokio::spawn(listen(state.clone(), pool.clone(), stopped)));
        }
        tracing::info!(workers, "job runner started");
        Some(Runner { stop, tasks })
    }

    /// Ends the runner's tasks at once, as a crash would (tests): leases are left to expire.
    pub fn kill(self) {
        for task in self.tasks {
            task.abort();
        }
    }

    /// Stops claiming, asks running jobs to stop and waits for the tasks to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        tracing::info!("job runner stopped");
    }
}

/// A running job's lease (`TOKENMETER_JOB_LEASE_MS`, at most an hour by the configuration).
fn lease(state: &AppState) -> ChronoDuration {
    ChronoDuration::from_std(state.config.job_lease).unwrap_or(ChronoDuration::seconds(60))
}

async fn listen(state: AppState, pool: sqlx::PgPool, mut stopped: watch::Receiver<bool>) {
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "job listener: cannot connect; polling meanwhile");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                    _ = stopped.changed() => return,
                }
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "job listener: LISTEN failed");
            continue;
        }
        loop {
            tokio::select! {
                got = listener.recv() => match got {
                    Ok(_) => state.jobs.notify.notify_waiters(),
                    Err(e) => {
                        tracing::warn!(error = %e, "job listener lost its connection");
                        break;
                    }
                },
                _ = stopped.changed() => return,
            }
        }
    }
}

async fn worker(state: AppState, n: usize, mut stopped: watch::Receiver<bool>) {
    let lease = lease(&state);
    loop {
        if *stopped.borrow() {
            return;
        }
        // Registered before the claim, so an enqueue in between is not missed.
        let woken = state.jobs.notify.notified();
        match super::claim_next(&state, lease).await {
            Ok(Some(job)) => run(&state, job, &mut stopped).await,
            Ok(None) => {
                tokio::select! {
                    _ = woken => {}
                    _ = tokio::time::sleep(state.config.job_poll) => {}
                    _ = stopped.changed() => return,
                }
            }
            Err(e) => {
                tracing::warn!(worker = n, error = %e, "could not claim a job");
                tokio::select! {
                    _ = tokio::time::sleep(state.config.job_poll) => {}
                    _ = stopped.changed() => return,
                }
            }
        }
    }
}

/// Runs one claimed attempt to its end, heartbeating meanwhile.
#[tracing::instrument(skip_all, fields(job = %job.id, kind = %job.kind, attempt = job.attempts))]
async fn run(state: &AppState, job: JobRow, stopped: &mut watch::Receiver<bool>) {
    let cancel = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicI32::new(job.progress));
    let ctx = JobContext {
        state: state.clone(),
        job: job.clone(),
        cancel: cancel.clone(),
        progress: progress.clone(),
    };
    let handler = tokio::spawn(handlers::run(ctx));
    tokio::pin!(handler);
    // A third of the lease, and at least once a second: progress and cancellation are seen
    // within a second.
    let beat = (state.config.job_lease / 3)
        .min(Duration::from_secs(1))
        .max(Duration::from_millis(20));
    let lease = lease(state);
    let mut written = job.progress;
    let mut shutting_down = false;
    let mut last_beat = tokio::time::Instant::now();
    let outcome = loop {
        tokio::select! {
            done = &mut handler => break done,
            _ = tokio::time::sleep(beat) => {
                let now = db::now();
                let sent = tokio::time::Instant::now();
                // A heartbeat that cannot be written (the database down, or the job's row
                // locked) is given up when the lease it extends runs out, not when it fails.
                let expires = last_beat + state.config.job_lease;
                let heard = tokio::time::timeout_at(
                    expires,
                    repo::heartbeat(&state.db, job.id, job.attempts, now + lease, now),
                )
                .await;
                match heard {
                    Ok(Ok(Some(requested))) => {
                        last_beat = sent;
                        if requested {
                            cancel.store(true, Ordering::Relaxed);
                        }
                    }
                    Ok(Ok(None)) => {
                        // Rescued by another instance after a missed lease: not ours any more.
                        tracing::warn!("lost the job's lease; stopping it");
                        handler.abort();
                        return;
                    }
                    // Unheard for a whole lease: another instance may rescue the job now, so
                    // this one must not go on with it.
                    Err(_) => {
                        tracing::error!("no heartbeat written for a whole lease; stopping the job");
                        handler.abort();
                        return;
                    }
                    Ok(Err(e)) if last_beat.elapsed() >= state.config.job_lease => {
                        tracing::error!(error = %e, "no heartbeat for a whole lease; stopping the job");
                        handler.abort();
                        return;
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "heartbeat failed"),
                }
                // Progress goes to the database at most once per heartbeat, and waits no
                // longer than one.
                let p = progress.load(Ordering::Relaxed);
                if p != written
                    && tokio::time::timeout(
                        beat,
                        repo::set_progress(&state.db, job.id, job.attempts, p, db::now()),
                    )
                    .await
                    .is_ok_and(|r| r.unwrap_or(false))
                {
                    written = p;
                }
            }
            _ = stopped.changed(), if !shutting_down => {
                // Shutting down: ask the job to stop; what has not ended is handed back.
                shutting_down = true;
                cancel.store(true, Ordering::Relaxed);
                let wait = tokio::time::timeout(STOP_GRACE, &mut handler).await;
                match wait {
                    Ok(done) => break done,
                    Err(_) => {
                        handler.abort();
                        break Ok(Err(JobError::Interrupted));
                    }
                }
            }
        }
    };
    let outcome = match outcome {
        Ok(result) => result,
        Err(e) => Err(JobError::Failed(format!(
            "the job's task ended abnormally: {e}"
        ))),
    };
    let now = db::now();
    let end = match &outcome {
        Ok(done) => End::Completed {
            metadata: &done.metadata,
            result: done.result.as_deref(),
        },
        // Asked to stop by a user: cancelled. Stopped by a shutdown: pending again at once,
        // and the attempt does not count (a deploy does not use up a job's attempts).
        Err(JobError::Cancelled) if !shutting_down => End::Cancelled,
        Err(JobError::Cancelled | JobError::Interrupted) => End::HandBack {
            error: "interrupted by a shutdown; run again",
        },
        Err(JobError::Failed(error)) => {
            match retry_delay_secs(
                i64::from(job.attempts),
                i64::from(job.max_attempts),
                state.config.job_retry_base_secs,
            ) {
                Some(delay) => End::Retry {
                    error,
                    run_at: now + ChronoDuration::seconds(delay),
                },
                None => End::Failed { error },
            }
        }
    };
    match repo::end_attempt(&state.db, job.id, job.attempts, end, now).await {
        Ok(true) => tracing::info!(ok = outcome.is_ok(), "job attempt ended"),
        Ok(false) => tracing::warn!("the job moved meanwhile (rescued?); its end is dropped"),
        Err(e) => tracing::error!(error = %e, "could not record the job's end"),
    }
    // A retry may be due at once (after a shutdown hand-back): let a worker look.
    state.jobs.notify.notify_one();
}

/// Every poll (at most a minute apart): rescue expired leases and, when due, the day's usage
/// sync; once a day (and at start): the cleanup of old finished jobs.
async fn maintenance(state: AppState, mut stopped: watch::Receiver<bool>) {
    let mut last_daily = None;
    let mut last_cleanup = None;
    loop {
        match repo::rescue_expired(&state.db, db::now()).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(rescued = n, "jobs whose lease expired were rescued");
                state.jobs.notify.notify_waiters();
            }
            Err(e) => tracing::warn!(error = %e, "could not rescue expired jobs"),
        }
        let local = db::now().with_timezone(&state.config.timezone);
        // Usage is synced from LiteLLM only.
        let sync_at = state
            .config
            .usage_sync_at
            .filter(|_| state.llm.is_litellm());
        if let Some(at) = sync_at {
            if local.time() >= at {
                let day = local.date_naive();
                if last_daily != Some(day) && schedule_daily(&state, day).await {
                    last_daily = Some(day);
                }
            }
        }
        if last_cleanup != Some(local.date_naive()) {
            match super::cleanup_old_jobs(&state, state.config.job_retention_days).await {
                Ok(deleted) => {
                    tracing::info!(deleted, "old finished jobs cleaned up");
                    last_cleanup = Some(local.date_naive());
                }
                Err(e) => tracing::warn!(error = %e, "could not clean up old jobs"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(state.config.job_poll.min(Duration::from_secs(60))) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// Enqueues the day's usage sync once, whichever instance gets there first (the day is the
/// job's dedupe key). True once the day's job exists.
async fn schedule_daily(state: &AppState, day: chrono::NaiveDate) -> bool {
    let key = format!("usage_sync:{day}");
    let input = crate::domain::jobs::JobInput::UsageSync {
        requested_by: None,
        scheduled_for: Some(day.to_string()),
    };
    match super::create_job_with(state, &input, None, Some(&key), super::DEFAULT_MAX_ATTEMPTS).await
    {
        Ok(super::Created::New(job)) => {
            tracing::info!(job = %job.id, %day, "daily usage sync enqueued");
            true
        }
        // Another instance did it (the key is taken)...
        Err(crate::server::error::Error::App(e))
            if e.code == crate::api::error::ErrorCode::Conflict =>
        {
            true
        }
        // ...or a sync is pending or running already: try again later today.
        Ok(super::Created::Existing(_)) => false,
        Err(e) => {
            tracing::warn!(error = %e, "could not enqueue the daily usage sync");
            false
        }
    }
}
