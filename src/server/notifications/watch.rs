//! The watcher: finds the users whose standing now calls for a notification and makes it, once.
//!
//! Every announced change of a user's usage, plan or limit (`cache::Changed`, so no write can
//! forget it) touches the user. (A usage sync run from the command line is another process:
//! its users are checked at their next change here.) A task per instance takes the
//! touched users in batches (a burst of sends is one check), reads where each stands (the
//! cached usage when there is one) and inserts what is due. The database's unique index makes
//! each notification exactly once, whatever the number of sends crossing a threshold together
//! or of instances checking the same user; the watcher remembers per user what exists for the
//! period, so a user who has been told everything costs nothing.

use crate::domain::notifications::{due, message, to_tell, Kinds};
use crate::server::db::{self, notifications as repo};
use crate::server::error::Result;
use crate::server::quota;
use crate::server::state::AppState;
use chrono::NaiveDate;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;
use uuid::Uuid;

/// How long a touch waits for others to join its batch. The sender's page reads its usage
/// right after a reply, and that read checks a touched user itself (see
/// [`check_if_touched`]), so the bell is right at once; the watcher is for everybody else.
const BATCH_WAIT: Duration = Duration::from_millis(500);
/// Remembered users past this are forgotten (and read from the database again).
const MAX_KNOWN: usize = 100_000;

#[derive(Default)]
pub struct Watch {
    touched: Mutex<HashSet<Uuid>>,
    wake: tokio::sync::Notify,
    /// Per user: the period (its first day) and the kinds that exist for it.
    known: Mutex<HashMap<Uuid, (NaiveDate, Kinds)>>,
}

impl Watch {
    /// Has the user checked soon.
    pub fn touch(&self, user_id: Uuid) {
        self.touched.lock().unwrap().insert(user_id);
        self.wake.notify_one();
    }

    fn take(&self) -> Vec<Uuid> {
        self.touched.lock().unwrap().drain().collect()
    }

    /// Takes one user out of the batch; whether they were in it.
    fn untouch(&self, user_id: Uuid) -> bool {
        self.touched.lock().unwrap().remove(&user_id)
    }

    fn known(&self, user_id: Uuid, first_day: NaiveDate) -> Option<Kinds> {
        let known = self.known.lock().unwrap();
        known
            .get(&user_id)
            .filter(|(day, _)| *day == first_day)
            .map(|(_, kinds)| *kinds)
    }

    fn remember(&self, user_id: Uuid, first_day: NaiveDate, kinds: Kinds) {
        let mut known = self.known.lock().unwrap();
        if known.len() >= MAX_KNOWN {
            known.clear();
        }
        known.insert(user_id, (first_day, kinds));
    }
}

/// Starts the instance's watcher; it runs as long as the process.
pub fn start(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move {
        loop {
            state.watch.wake.notified().await;
            tokio::time::sleep(BATCH_WAIT).await;
            for user_id in state.watch.take() {
                if let Err(err) = check(&state, user_id).await {
                    tracing::warn!(error = %err, %user_id, "could not check a user's notifications");
                    // Tried again at the next touch.
                }
            }
        }
    });
}

/// Checks the user now if a change touched them and the watcher has not got to them yet (their
/// usage is about to be read, and should count what the change made).
pub async fn check_if_touched(state: &AppState, user_id: Uuid) {
    if !state.watch.untouch(user_id) {
        return;
    }
    if let Err(err) = check(state, user_id).await {
        tracing::warn!(error = %err, %user_id, "could not check a user's notifications");
        state.watch.touch(user_id);
    }
}

/// Makes the notifications the user's standing calls for and that do not exist yet; the ones
/// this call made.
pub async fn check(state: &AppState, user_id: Uuid) -> Result<Vec<repo::NotificationRow>> {
    // Told everything this period already: nothing to read.
    let first_day = quota::window(state).period.first_day;
    if state.watch.known(user_id, first_day) == Some(Kinds::all()) {
        return Ok(vec![]);
    }
    let standing = match quota::standing(state, user_id).await {
        Ok(s) => s,
        // Deleted meanwhile: nothing to tell.
        Err(crate::server::error::Error::App(e))
            if e.code == crate::api::error::ErrorCode::NotFound =>
        {
            return Ok(vec![])
        }
        Err(e) => return Err(e),
    };
    let period = standing.window.period;
    let once_key = period.first_day.to_string();
    let due = due(&standing.status, &standing.forecast);
    let known = match state.watch.known(user_id, period.first_day) {
        Some(known) => known,
        None if due == Kinds::default() => Kinds::default(),
        None => repo::kinds_for(&state.db, user_id, &once_key)
            .await?
            .into_iter()
            .fold(Kinds::default(), Kinds::with),
    };
    let new = due.iter().filter(|k| !known.contains(*k));
    let new = new.fold(Kinds::default(), Kinds::with);
    let mut made = vec![];
    let Some(tell) = to_tell(new) else {
        state.watch.remember(user_id, period.first_day, known);
        return Ok(made);
    };
    let now = db::now();
    for kind in new.iter() {
        let words = message(
            kind,
            &standing.status,
            standing.forecast.limit_on,
            period.last_day + chrono::Duration::days(1),
        );
        let data = json!({
            "used": standing.status.used,
            "limit": standing.status.limit,
            "percentage": standing.status.percentage,
            "limit_on": standing.forecast.limit_on.map(|d| d.to_string()),
            "resets_at": period.end,
        });
        let new = repo::NewNotification {
            user_id,
            kind,
            once_key: &once_key,
            title: &words.title,
            body: &words.body,
            data: &data,
            superseded: kind != tell,
            now,
        };
        let made_now = repo::insert_once(&state.db, &new)
            .await?
            .announce(state)
            .await;
        if let Some(row) = made_now {
            if kind == tell {
                tracing::info!(%user_id, kind = %kind, "notification made");
                made.push(row);
            }
        }
    }
    state
        .watch
        .remember(user_id, period.first_day, known.union(new));
    Ok(made)
}
