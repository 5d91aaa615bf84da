-- Plans with monthly token limits, each user's plan and personal override, and the tokens held
-- back for sends under way (PostgreSQL).

create table plans (
    id                  uuid primary key,
    name                text not null unique,
    monthly_token_limit bigint check (monthly_token_limit is null or monthly_token_limit >= 0), -- null: unlimited
    price_label         text not null default '',
    description         text not null default '',
    sort_order          bigint not null default 0,
    is_default          boolean not null default false, -- the plan of users without one
    created_at          timestamptz not null,
    updated_at          timestamptz not null
);
create unique index plans_one_default on plans (is_default) where is_default;

insert into plans (id, name, monthly_token_limit, price_label, description, sort_order, is_default, created_at, updated_at) values
    ('aa71171b-2000-58dd-a322-95baf1fc6a6a', 'Free', 100000, 'Free', 'To try it out: 100,000 tokens a month.', 1, true, '2026-11-28T00:00:00+00:00', '2026-11-28T00:00:00+00:00'),
    ('afdcac68-a1ab-52f6-b371-b4a3489815e1', 'Pro', 2000000, '$20 / month', 'For daily work: 2 million tokens a month.', 2, false, '2026-11-28T00:00:00+00:00', '2026-11-28T00:00:00+00:00'),
    ('bddc94ac-f2b2-57d3-bfbe-697c52a8ae62', 'Team', 10000000, '$100 / month', 'For heavy use: 10 million tokens a month.', 3, false, '2026-11-28T00:00:00+00:00', '2026-11-28T00:00:00+00:00');

-- null: the default plan.
alter table users add column plan_id uuid references plans (id);
-- null: the plan's limit applies.
alter table users add column token_limit_override bigint
    check (token_limit_override is null or token_limit_override >= 0);

-- A user's request for another plan, for admins to act on (cleared when their plan changes).
alter table users add column requested_plan_id uuid references plans (id);
alter table users add column plan_requested_at timestamptz;

create table quota_reservations (
    id         uuid primary key,
    user_id    uuid not null references users (id) on delete cascade,
    tokens     bigint not null check (tokens >= 0),
    created_at timestamptz not null,
    expires_at timestamptz not null                  -- a crashed send stops holding tokens then
);
create index quota_reservations_user on quota_reservations (user_id, expires_at);

-- The period's sums read from the index alone (one entry per day), never from the rows.
create index usage_history_period on usage_history (user_id, date) include (tokens_used, requests_count, cost_nanos);
