//! In-memory caches of the two reads nearly every signed-in request makes: whom a session
//! cookie belongs to, and a user's plan and usage in the current period. On this 2-core machine
//! one SQLite statement through sqlx costs about as much CPU as a whole trivial HTTP request,
//! and a PostgreSQL round trip five times that; the usage banner is read on every page.
//!
//! Correctness comes first:
//! - Every write that changes what is cached announces a [`Change`] after it commits: the
//!   database functions that make such writes return [`Changed`], whose value is only had by
//!   announcing it ([`Changed::announce`]; there is no other way to announce). This instance
//!   forgets the entries at once, and on PostgreSQL a `NOTIFY tokenmeter_cache` tells the other
//!   instances, whose [`listen`] task forgets them too.
//!   While an instance is not listening (starting, or its listening connection was lost) it
//!   caches nothing, and it forgets everything when it starts listening again.
//! - A value read from the database is only kept if no change was announced while it was read
//!   (an epoch counter, checked under the table's lock), so a read that raced a write cannot
//!   put the old value back.
//! - Entries live at most `TOKENMETER_CACHE_SECONDS` (default 30; 0 turns the caches off): the
//!   bound for changes made behind the app's back (SQL by hand, a lost notification). A cached
//!   session also ends when the session does.
//! - Admission of a send never reads the cache: it locks the user's row and reads the database.
//!
//! SQLite is one instance (the database is a local file); PostgreSQL may have many.

use crate::api::UserDto;
use crate::server::db::{plans::UserPlanUsageRow, Db};
use crate::server::state::AppState;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The PostgreSQL channel the instances tell each other about changes on.
pub const CHANNEL: &str = "tokenmeter_cache";
/// A table that grows past this is emptied (one user's entries are a few hundred bytes).
const MAX_ENTRIES: usize = 100_000;

/// What a write changed, so that cached copies of it are forgotten.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// One session ended (its cookie's hash).
    Session(String),
    /// A user's account changed (role, disabled, password: their sessions) and with it
    /// possibly their plan or limit.
    User(Uuid),
    /// A user's usage, plan or personal limit changed (or their notifications: the usage
    /// answer carries the unread count).
    Usage(Uuid),
    /// A plan changed: every user's plan details.
    Plans,
}

impl Change {
    /// The notification payload (`s:<hash>`, `u:<id>`, `q:<id>`, `p`).
    pub fn payload(&self) -> String {
        match self {
            Change::Session(hash) => format!("s:{hash}"),
            Change::User(id) => format!("u:{id}"),
            Change::Usage(id) => format!("q:{id}"),
            Change::Plans => "p".into(),
        }
    }

    pub fn parse(payload: &str) -> Option<Change> {
        match payload.split_once(':') {
            Some(("s", hash)) if !hash.is_empty() => Some(Change::Session(hash.to_string())),
            Some(("u", id)) => id.parse().ok().map(Change::User),
            Some(("q", id)) => id.parse().ok().map(Change::Usage),
            None if payload == "p" => Some(Change::Plans),
            _ => None,
        }
    }
}

/// A session's user, until the session or the entry ends.
#[derive(Clone, Debug)]
pub struct CachedSession {
    pub user: UserDto,
    pub expires_at: DateTime<Utc>,
}

/// A user's plan and the sums of one period (the period's first day says which) and of the
/// last 7 days (their first day says which).
#[derive(Clone, Debug)]
pub struct CachedUsage {
    pub first_day: NaiveDate,
    pub recent_from: NaiveDate,
    pub row: UserPlanUsageRow,
}

/// Taken before a database read; the value read is kept only if the ticket is still current.
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

struct Table<K, V> {
    map: RwLock<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> Table<K, V> {
    fn new() -> Self {
        Table {
            map: RwLock::new(HashMap::new()),
        }
    }

    fn get<Q: Eq + Hash + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
    {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(value, _)| value.clone())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<K, (V, Instant)>> {
        self.map.write().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct Caches {
    ttl: Duration,
    /// Bumped by every change, before the entries are dropped.
    epoch: AtomicU64,
    /// False while changes made elsewhere could be missed (PostgreSQL, not listening).
    live: AtomicBool,
    sessions: Table<String, CachedSession>,
    usage: Table<Uuid, CachedUsage>,
}

impl Caches {
    /// `ttl` zero turns caching off. `live`: whether changes made elsewhere are heard from the
    /// start (SQLite: there is no elsewhere); otherwise [`listen`] switches it on.
    pub fn new(ttl: Duration, live: bool) -> Self {
        Caches {
            ttl,
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(live),
            sessions: Table::new(),
            usage: Table::new(),
        }
    }

    /// Whether values are being cached now.
    pub fn is_on(&self) -> bool {
        !self.ttl.is_zero() && self.live.load(Ordering::Acquire)
    }

    /// How many sessions and usages are held (live or not yet swept).
    pub fn entries(&self) -> (usize, usize) {
        let sessions = self.sessions.map.read().map(|m| m.len()).unwrap_or(0);
        let usage = self.usage.map.read().map(|m| m.len()).unwrap_or(0);
        (sessions, usage)
    }

    /// A ticket for a database read whose result may be kept; `None` when caching is off.
    pub fn ticket(&self) -> Option<Ticket> {
        self.is_on()
            .then(|| Ticket(self.epoch.load(Ordering::Acquire)))
    }

    /// Keeps `value` under `key` if no change was announced since `ticket` was taken.
    fn keep<K: Eq + Hash, V: Clone>(
        &self,
        table: &Table<K, V>,
        ticket: Option<Ticket>,
        key: K,
        value: V,
    ) {
        let Some(Ticket(epoch)) = ticket else { return };
        let mut map = table.write();
        // Checked under the lock: a change bumps the epoch before it takes the lock to drop
        // entries, so either it sees this entry and drops it, or this sees its epoch.
        if self.epoch.load(Ordering::Acquire) != epoch || !self.is_on() {
            return;
        }
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, (value, Instant::now() + self.ttl));
    }

    pub fn session(&self, id_hash: &str, now: DateTime<Utc>) -> Option<UserDto> {
        if !self.is_on() {
            return None;
        }
        self.sessions
            .get(id_hash)
            .filter(|s| s.expires_at > now)
            .map(|s| s.user)
    }

    pub fn keep_session(&self, ticket: Option<Ticket>, id_hash: &str, session: CachedSession) {
        self.keep(&self.sessions, ticket, id_hash.to_string(), session);
    }

    pub fn usage(
        &self,
        user_id: Uuid,
        first_day: NaiveDate,
        recent_from: NaiveDate,
    ) -> Option<UserPlanUsageRow> {
        if !self.is_on() {
            return None;
        }
        self.usage
            .get(&user_id)
            .filter(|u| u.first_day == first_day && u.recent_from == recent_from)
            .map(|u| u.row)
    }

    pub fn keep_usage(&self, ticket: Option<Ticket>, user_id: Uuid, usage: CachedUsage) {
        self.keep(&self.usage, ticket, user_id, usage);
    }

    /// Forgets what `change` made stale.
    pub fn forget(&self, change: &Change) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        match change {
            Change::Session(hash) => {
                self.sessions.write().remove(hash);
            }
            Change::User(id) => {
                self.sessions.write().retain(|_, (s, _)| s.user.id != *id);
                self.usage.write().remove(id);
            }
            Change::Usage(id) => {
                self.usage.write().remove(id);
            }
            Change::Plans => self.usage.write().clear(),
        }
    }

    /// Forgets everything (when changes may have been missed).
    pub fn forget_all(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.sessions.write().clear();
        self.usage.write().clear();
    }

    fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::Release);
    }
}

/// What a committed write returned, with the change it made to what the caches hold. The write
/// functions of the database layer that change cached data (sessions, users, plans, usage)
/// return this, and only [`Changed::announce`] gives their value back: a write path cannot
/// forget to announce. Leaving one unused does not compile (`must_use`, under `-D warnings`).
#[must_use = "a write that changed cached data must be announced: `.announce(state).await`"]
pub struct Changed<T> {
    value: T,
    change: Option<Change>,
}

impl<T> Changed<T> {
    /// `value`, written with `change`.
    pub fn new(value: T, change: Change) -> Self {
        Changed {
            value,
            change: Some(change),
        }
    }

    /// `value`, with `change` only if `wrote` (an update that found no row changed nothing).
    pub fn when(wrote: bool, value: T, change: Change) -> Self {
        Changed {
            value,
            change: wrote.then_some(change),
        }
    }

    /// `value`, from a write that changed nothing after all.
    pub fn nothing(value: T) -> Self {
        Changed {
            value,
            change: None,
        }
    }

    /// Forgets the change here and tells the other instances; the write's value.
    pub async fn announce(self, state: &AppState) -> T {
        if let Some(change) = self.change {
            changed(state, change).await;
        }
        self.value
    }

    /// From a process with no caches of its own (a command line): tells the running servers.
    pub async fn announce_to_servers(self, db: &Db) -> T {
        if let Some(change) = self.change {
            tell_others(db, &change).await;
        }
        self.value
    }
}

/// Announces a committed change: forgotten here at once, and by the other instances when
/// they hear of it (PostgreSQL).
async fn changed(state: &AppState, change: Change) {
    state.caches.forget(&change);
    // What a user is told follows their usage, plan and limit.
    if let Change::Usage(user_id) | Change::User(user_id) = change {
        state.watch.touch(user_id);
    }
    tell_others(&state.db, &change).await;
}

/// Tells the other instances (PostgreSQL; a no-op on SQLite). A failure is logged, not
/// returned: the write it follows has committed, and the entries end with their time to live.
async fn tell_others(db: &Db, change: &Change) {
    if let Db::Postgres(pool) = db {
        let sent = sqlx::query("select pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(change.payload())
            .execute(pool)
            .await;
        if let Err(err) = sent {
            tracing::warn!(error = %err, ?change, "could not tell the other instances about a change");
        }
    }
}

/// PostgreSQL: listens for the changes other instances announce, for as long as the process
/// runs. Caching is on only while listening; each (re)start forgets everything first.
pub fn listen(state: &AppState) {
    let Db::Postgres(pool) = state.db.clone() else {
        return;
    };
    let caches = state.caches.clone();
    tokio::spawn(async move {
        loop {
            caches.set_live(false);
            let listener = async {
                let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
                listener.listen(CHANNEL).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let mut listener = match listener.await {
                Ok(listener) => listener,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for changes; caching is off until it can");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            caches.forget_all();
            caches.set_live(true);
            loop {
                match listener.try_recv().await {
                    Ok(Some(note)) => match Change::parse(note.payload()) {
                        Some(change) => caches.forget(&change),
                        None => {
                            tracing::warn!(payload = note.payload(), "unknown change notice");
                            caches.forget_all();
                        }
                    },
                    // The connection was lost: what was said meanwhile is lost with it.
                    Ok(None) => break,
                    Err(err) => {
                        tracing::warn!(error = %err, "lost the change notices");
                        break;
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::account::Role;
    use crate::server::db::plans::{PlanRow, UserPlanRow};

    fn user(id: Uuid) -> UserDto {
        UserDto {
            id,
            email: "a@example.com".into(),
            role: Role::User,
            disabled: false,
            approval: crate::domain::account::Approval::Approved,
            created_at: Utc::now(),
        }
    }

    fn session(id: Uuid) -> CachedSession {
        CachedSession {
            user: user(id),
            expires_at: Utc::now() + chrono::Duration::days(1),
        }
    }

    fn usage_row(tokens: i64) -> UserPlanUsageRow {
        UserPlanUsageRow {
            plan: UserPlanRow {
                plan: PlanRow {
                    id: Uuid::nil(),
                    name: "Free".into(),
                    monthly_token_limit: Some(100),
                    price_label: String::new(),
                    description: String::new(),
                    sort_order: 1,
                    is_default: true,
                    created_at: Utc::now(),
                    updated_at: Utc::now(),
                },
                token_limit_override: None,
            },
            tokens_used: tokens,
            requests_count: 1,
            cost_nanos: 0,
            recent_tokens: 0,
            unread_notifications: 0,
        }
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn cached(tokens: i64) -> CachedUsage {
        CachedUsage {
            first_day: day(1),
            recent_from: day(1),
            row: usage_row(tokens),
        }
    }

    fn caches() -> Caches {
        Caches::new(Duration::from_secs(30), true)
    }

    #[test]
    fn payloads_round_trip() {
        let id = Uuid::new_v4();
        for change in [
            Change::Session("abc".into()),
            Change::User(id),
            Change::Usage(id),
            Change::Plans,
        ] {
            assert_eq!(Change::parse(&change.payload()), Some(change));
        }
        for bad in ["", "x:1", "u:not-a-uuid", "s:", "pp"] {
            assert_eq!(Change::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let c = caches();
        let id = Uuid::new_v4();
        let ticket = c.ticket();
        c.forget(&Change::Usage(Uuid::new_v4())); // any change, even another user's
        c.keep_usage(ticket, id, cached(5));
        assert!(c.usage(id, day(1), day(1)).is_none());
        let ticket = c.ticket();
        c.keep_usage(ticket, id, cached(5));
        assert_eq!(c.usage(id, day(1), day(1)).unwrap().tokens_used, 5);
        // Another period is another value.
        assert!(c.usage(id, day(2), day(1)).is_none());
    }

    #[test]
    fn changes_drop_what_they_touch() {
        let c = caches();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let now = Utc::now();
        let fill = |c: &Caches| {
            for (hash, id) in [("sa", a), ("sa2", a), ("sb", b)] {
                c.keep_session(c.ticket(), hash, session(id));
            }
            for id in [a, b] {
                c.keep_usage(c.ticket(), id, cached(1));
            }
        };
        fill(&c);
        c.forget(&Change::Session("sa".into()));
        assert!(c.session("sa", now).is_none());
        assert!(c.session("sa2", now).is_some());
        c.forget(&Change::User(a));
        assert!(c.session("sa2", now).is_none());
        assert!(c.usage(a, day(1), day(1)).is_none());
        assert!(c.session("sb", now).is_some());
        assert!(c.usage(b, day(1), day(1)).is_some());
        c.forget(&Change::Plans);
        assert!(c.usage(b, day(1), day(1)).is_none());
        assert!(c.session("sb", now).is_some());
        fill(&c);
        c.forget_all();
        assert!(c.session("sb", now).is_none());
    }

    #[test]
    fn entries_end_with_their_session_and_their_time() {
        let c = caches();
        let id = Uuid::new_v4();
        let mut s = session(id);
        s.expires_at = Utc::now() + chrono::Duration::seconds(10);
        c.keep_session(c.ticket(), "s", s);
        assert!(c.session("s", Utc::now()).is_some());
        assert!(c
            .session("s", Utc::now() + chrono::Duration::seconds(11))
            .is_none());

        let short = Caches::new(Duration::from_millis(20), true);
        short.keep_session(short.ticket(), "s", session(id));
        assert!(short.session("s", Utc::now()).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(short.session("s", Utc::now()).is_none());
    }

    #[test]
    fn nothing_is_kept_when_off_or_not_listening() {
        let off = Caches::new(Duration::ZERO, true);
        assert!(off.ticket().is_none());
        let deaf = Caches::new(Duration::from_secs(30), false);
        assert!(deaf.ticket().is_none());
        deaf.keep_session(Some(Ticket(0)), "s", session(Uuid::new_v4()));
        assert!(deaf.session("s", Utc::now()).is_none());
    }
}
