-- Sign-ups that wait for an admin (TOKENMETER_SIGNUP=approval, the default): an account is
-- pending until approved or rejected; accounts made before this, or by an admin, are approved.
-- Sign-up attempts are counted per client address, as failed log-ins are.
alter table users add column approval text not null default 'approved'
    check (approval in ('pending', 'approved', 'rejected'));
create index users_pending on users (created_at) where approval = 'pending';

create table signup_attempts (
    id         uuid primary key,
    ip         text not null,
    created_at timestamptz not null
);
create index signup_attempts_ip on signup_attempts (ip, created_at);
