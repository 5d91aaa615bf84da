-- Background jobs (SQLite). The state machine is domain/jobs.rs; every update names the status
-- it expects and the attempt it belongs to.

create table jobs (
    id               blob primary key not null,
    type             text not null check (type in ('usage_sync', 'document_processing', 'report_generation')),
    status           text not null default 'pending'
                     check (status in ('pending', 'running', 'completed', 'failed', 'cancelled')),
    progress         integer not null default 0 check (progress between 0 and 100),
    user_id          blob references users (id) on delete set null,
    metadata         text not null default '{}',          -- JSON: the job's input, then its summary
    result           text,                                -- a report's CSV
    error            text,
    attempts         integer not null default 0 check (attempts >= 0),
    max_attempts     integer not null default 3 check (max_attempts >= 1),
    cancel_requested boolean not null default false,      -- a running job is asked to stop
    dedupe_key       text unique,                         -- one scheduled job per key (e.g. a day)
    run_at           text not null,                       -- not before (retries wait)
    lease_until      text,                                -- a running job's heartbeat
    started_at       text,
    completed_at     text,
    created_at       text not null,
    updated_at       text not null
);
-- The claim: the oldest due pending job.
create index jobs_claim on jobs (run_at) where status = 'pending';
-- Leases to rescue.
create index jobs_running on jobs (lease_until) where status = 'running';
create index jobs_by_user on jobs (user_id, created_at);
create index jobs_by_status on jobs (status, created_at);
create index jobs_by_created on jobs (created_at);
-- Never two usage syncs at once.
create unique index jobs_one_usage_sync on jobs (type)
    where type = 'usage_sync' and status in ('pending', 'running');
