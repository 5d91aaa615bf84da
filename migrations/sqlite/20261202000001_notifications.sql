-- Notifications (SQLite): what a user is told once, on the page (the bell) and by the channels
-- that deliver it. A notification exists at most once per user, kind and key (the period's first
-- day for the quota's thresholds): the unique index is what makes it exactly once, whatever the
-- number of sends or instances that see the crossing at the same time.

create table notifications (
    id          blob primary key not null,
    user_id     blob not null references users (id) on delete cascade,
    kind        text not null
                check (kind in ('quota_warning', 'quota_upgrade', 'quota_blocked', 'quota_forecast')),
    once_key    text not null,                         -- e.g. the period's first day
    title       text not null,
    body        text not null,
    data        text not null default '{}',            -- JSON: the figures it was made from
    -- A lower threshold passed in the same step as a higher one: kept so it is never told, not
    -- listed.
    superseded  boolean not null default false,
    read_at     text,
    created_at  text not null
);
create unique index notifications_once on notifications (user_id, kind, once_key);
-- The bell: a user's newest first, and the unread count.
create index notifications_by_user on notifications (user_id, created_at) where not superseded;
create index notifications_unread on notifications (user_id) where read_at is null;
