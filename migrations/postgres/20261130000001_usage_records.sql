-- One row per upstream call that was accepted, written in the same transaction as the day's
-- usage it adds, whether or not the call's messages could be kept (the conversation deleted
-- while the reply streamed, the client gone before the first token). It is what an estimated
-- call is corrected from later, and what says that a day's usage is the sum of its calls.
create table usage_records (
    id                uuid primary key,             -- the reply's id (the message's, when kept)
    user_id           uuid not null references users (id) on delete cascade,
    conversation_id   uuid,                         -- no link: the conversation may be gone
    model             text not null,
    date              date not null,                -- in TOKENMETER_TIMEZONE
    prompt_tokens     bigint not null check (prompt_tokens >= 0),
    completion_tokens bigint not null check (completion_tokens >= 0),
    cost_nanos        bigint check (cost_nanos >= 0), -- null: the model has no price
    estimated         boolean not null,             -- our tokenizer's count, not the upstream's
    status            text not null check (status in ('complete', 'stopped', 'interrupted')),
    messages_kept     boolean not null,
    upstream_call_id  text,                         -- the upstream's id of the call (LiteLLM's call id)
    created_at        timestamptz not null
);
create index usage_records_user_date on usage_records (user_id, date);
