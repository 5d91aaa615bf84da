-- Accounts, sessions, personal API tokens and failed log-ins (SQLite).
-- Ids are UUIDs (stored as 16-byte blobs), times are UTC (RFC 3339 text).

create table users (
    id            blob primary key not null,
    email         text not null unique,            -- stored trimmed and lower-cased
    password_hash text not null,                   -- argon2id PHC string
    role          text not null default 'user' check (role in ('user', 'admin')),
    disabled      boolean not null default false,
    created_at    text not null,
    updated_at    text not null
);

create table sessions (
    id_hash    text primary key not null,          -- sha-256 of the cookie value
    user_id    blob not null references users (id) on delete cascade,
    created_at text not null,
    expires_at text not null
);
create index sessions_user_id on sessions (user_id);

create table api_tokens (
    id           blob primary key not null,
    user_id      blob not null references users (id) on delete cascade,
    name         text not null,
    token_hash   text not null unique,             -- sha-256 of the token
    token_prefix text not null,                    -- first characters, to recognise it in a list
    created_at   text not null,
    last_used_at text,
    revoked_at   text
);
create index api_tokens_user_id on api_tokens (user_id);

create table login_failures (
    id         blob primary key not null,
    email      text not null,
    ip         text not null,
    created_at text not null
);
create index login_failures_email on login_failures (email, created_at);
create index login_failures_ip on login_failures (ip, created_at);
