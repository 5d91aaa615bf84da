-- Accounts, sessions, personal API tokens and failed log-ins (PostgreSQL).

create table users (
    id            uuid primary key,
    email         text not null unique,            -- stored trimmed and lower-cased
    password_hash text not null,                   -- argon2id PHC string
    role          text not null default 'user' check (role in ('user', 'admin')),
    disabled      boolean not null default false,
    created_at    timestamptz not null,
    updated_at    timestamptz not null
);

create table sessions (
    id_hash    text primary key,                   -- sha-256 of the cookie value
    user_id    uuid not null references users (id) on delete cascade,
    created_at timestamptz not null,
    expires_at timestamptz not null
);
create index sessions_user_id on sessions (user_id);

create table api_tokens (
    id           uuid primary key,
    user_id      uuid not null references users (id) on delete cascade,
    name         text not null,
    token_hash   text not null unique,             -- sha-256 of the token
    token_prefix text not null,                    -- first characters, to recognise it in a list
    created_at   timestamptz not null,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
create index api_tokens_user_id on api_tokens (user_id);

create table login_failures (
    id         uuid primary key,
    email      text not null,
    ip         text not null,
    created_at timestamptz not null
);
create index login_failures_email on login_failures (email, created_at);
create index login_failures_ip on login_failures (ip, created_at);
