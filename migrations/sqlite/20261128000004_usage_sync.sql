-- The LiteLLM usage sync (SQLite). A day's row keeps the app's own figures apart from the shown
-- ones, so a sync can replace the shown figures with LiteLLM's and still compare the two, and a
-- later sync can fall back to the app's figures when LiteLLM has less (see server::usage_sync).

alter table usage_history add column app_tokens_used integer not null default 0 check (app_tokens_used >= 0);
alter table usage_history add column app_prompt_tokens integer not null default 0 check (app_prompt_tokens >= 0);
alter table usage_history add column app_completion_tokens integer not null default 0 check (app_completion_tokens >= 0);
alter table usage_history add column app_requests_count integer not null default 0 check (app_requests_count >= 0);
alter table usage_history add column app_cost_nanos integer not null default 0 check (app_cost_nanos >= 0);
alter table usage_history add column app_model_usage text not null default '{}';
-- What LiteLLM reported for the day at the last sync (null: never synced).
alter table usage_history add column litellm_tokens_used integer;
alter table usage_history add column litellm_requests_count integer;
alter table usage_history add column litellm_cost_nanos integer;
-- The app's and LiteLLM's totals differed by more than 1% at the last sync.
alter table usage_history add column drifted boolean not null default false;

-- Every row so far was written by the app.
update usage_history set
    app_tokens_used = tokens_used,
    app_prompt_tokens = prompt_tokens,
    app_completion_tokens = completion_tokens,
    app_requests_count = requests_count,
    app_cost_nanos = cost_nanos,
    app_model_usage = model_usage;

create index usage_history_date on usage_history (date);

-- The last successful sync of a user's usage, and the last failure since then.
alter table users add column usage_synced_at text;
alter table users add column usage_sync_error text;
