-- Conversations, their messages, per-user LiteLLM virtual keys and usage per user per day (PostgreSQL).
-- Money is integer nano-dollars (1e-9 USD): exact, and fine-grained enough for per-token prices.

create table conversations (
    id         uuid primary key,
    user_id    uuid not null references users (id) on delete cascade,
    title      text not null,
    model      text not null,
    created_at timestamptz not null,
    updated_at timestamptz not null
);
create index conversations_user_updated on conversations (user_id, updated_at desc);

create table messages (
    id                uuid primary key,
    conversation_id   uuid not null references conversations (id) on delete cascade,
    role              text not null check (role in ('system', 'user', 'assistant')),
    content           text not null,
    model             text,                          -- assistant replies: the model that wrote it
    prompt_tokens     bigint not null default 0 check (prompt_tokens >= 0),
    completion_tokens bigint not null default 0 check (completion_tokens >= 0),
    cost_nanos        bigint check (cost_nanos >= 0), -- null: the model has no price
    usage_estimated   boolean not null default false, -- counted by our tokenizer: the stream ended before usage
    status            text not null default 'complete'
                      check (status in ('complete', 'stopped', 'interrupted')),
    error             text,                          -- why an interrupted reply ended early
    created_at        timestamptz not null
);
create index messages_conversation on messages (conversation_id, created_at);

create table llm_keys (
    user_id    uuid primary key references users (id) on delete cascade,
    key_sealed bytea not null,                       -- nonce || ChaCha20-Poly1305(key)
    key_hint   text not null,                        -- last characters, for admins and logs
    created_at timestamptz not null
);

-- Usage survives the deletion of the conversations that caused it: no link to messages.
create table usage_history (
    id                uuid primary key,
    user_id           uuid not null references users (id) on delete cascade,
    date              date not null,                 -- a day of TOKENMETER_TIMEZONE
    tokens_used       bigint not null default 0 check (tokens_used >= 0),
    prompt_tokens     bigint not null default 0 check (prompt_tokens >= 0),
    completion_tokens bigint not null default 0 check (completion_tokens >= 0),
    requests_count    bigint not null default 0 check (requests_count >= 0),
    cost_nanos        bigint not null default 0 check (cost_nanos >= 0),
    model_usage       jsonb not null default '{}',   -- {model: {tokens, requests, cost_nanos, unpriced}}
    source            text not null default 'app' check (source in ('app', 'litellm')),
    synced_at         timestamptz,
    created_at        timestamptz not null,
    updated_at        timestamptz not null,
    unique (user_id, date)
);
