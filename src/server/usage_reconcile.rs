//! Estimated calls corrected soon, not a day later. A reply recorded with our tokenizer's count
//! (stopped, abandoned after its first chunk, cut) carries LiteLLM's call id; LiteLLM logs
//! that call's own figures a second or two later. Every `TOKENMETER_RECONCILE_SECONDS` each
//! instance running jobs reads the spend logs of the users with such calls (one ranged read a
//! user) and corrects every call it finds there: the call, its reply message and its day, in
//! one transaction each (see [`usage_records::reconcile`]), so quotas run on the upstream's
//! figures within seconds. A call LiteLLM has not logged within [`GIVE_UP_AFTER`] stays
//! estimated; the daily sync then sets its day to LiteLLM's figures.

use crate::server::db::{self, usage_records};
use crate::server::error::Result;
use crate::server::state::AppState;
use chrono::Duration;
use std::collections::{BTreeMap, HashMap};
use tokio::sync::watch;
use uuid::Uuid;

/// How long an estimated call is looked for in the spend logs.
pub const GIVE_UP_AFTER: Duration = Duration::hours(1);
/// The most calls corrected in one pass (the rest wait for the next).
const CALLS_PER_PASS: i64 = 1000;
/// Spend logs are read from this long before a user's oldest waiting call: LiteLLM logs a call
/// at its start, which is before we record it.
const LOG_MARGIN: Duration = Duration::minutes(10);

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Estimated calls waiting.
    pub waiting: usize,
    /// Of those, corrected now.
    pub corrected: usize,
    /// The change in tokens the corrections made (positive: the estimates were low).
    pub tokens: i64,
    /// Users whose spend logs could not be read (tried again next pass).
    pub failed_users: usize,
}

/// One pass: corrects every waiting estimated call that LiteLLM's spend logs now show.
pub async fn reconcile_estimates(state: &AppState) -> Result<Pass> {
    let now = db::now();
    let waiting =
        usage_records::list_unreconciled(&state.db, now - GIVE_UP_AFTER, CALLS_PER_PASS).await?;
    let mut pass = Pass {
        waiting: waiting.len(),
        ..Pass::default()
    };
    let mut by_user: BTreeMap<Uuid, Vec<usage_records::Unreconciled>> = BTreeMap::new();
    for call in waiting {
        by_user.entry(call.user_id).or_default().push(call);
    }
    for (user_id, calls) in by_user {
        // Oldest first (the list's order).
        let start = calls[0].created_at - LOG_MARGIN;
        let logs = match state
            .llm
            .spend_logs(&user_id.to_string(), start, now + Duration::minutes(1))
            .await
        {
            Ok(logs) => logs,
            Err(e) => {
                tracing::warn!(%user_id, error = %e, "could not read spend logs to correct estimates");
                pass.failed_users += 1;
                continue;
            }
        };
        let logged: HashMap<&str, &crate::domain::usage::SpendLog> = logs
            .iter()
            .filter_map(|l| l.call_id.as_deref().map(|id| (id, l)))
            .collect();
        for call in &calls {
            let Some(log) = logged.get(call.upstream_call_id.as_str()) else {
                continue;
            };
            let upstream = usage_records::Upstream {
                prompt_tokens: log.usage.prompt_tokens,
                completion_tokens: log.usage.completion_tokens,
                cost_nanos: log.usage.cost_nanos,
            };
            if let Some(tokens) = usage_records::reconcile(&state.db, call.id, upstream, db::now())
                .await?
                .announce(state)
                .await
            {
                tracing::info!(%user_id, call = %call.upstream_call_id, tokens,
                    "estimated call corrected to the upstream's figures");
                pass.corrected += 1;
                pass.tokens += tokens;
            }
        }
    }
    Ok(pass)
}

/// Runs a pass every `every` until `stopped`; a failed pass is logged and tried again.
pub async fn run(state: AppState, every: std::time::Duration, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped.changed() => return,
        }
        if let Err(e) = reconcile_estimates(&state).await {
            tracing::warn!(error = %e, "correcting estimated calls failed; trying again");
        }
    }
}
