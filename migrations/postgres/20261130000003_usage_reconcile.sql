-- An estimated call (stopped, abandoned, cut: our tokenizer's count) is corrected to the
-- upstream's own figures for that call as soon as its spend log shows them (LiteLLM's call id),
-- by server::usage_reconcile. The estimate is kept beside the correction.
alter table usage_records add column reconciled_at timestamptz;
alter table usage_records add column estimated_tokens bigint;
-- The calls still waiting for their correction, oldest first.
create index usage_records_unreconciled on usage_records (created_at)
    where estimated and upstream_call_id is not null;
