//! Quotas on the server: the user's usage in the current period (read from the per-day rows,
//! never from messages) and the admission of a send, which holds back what it may use.

use crate::api::error::{AppError, ErrorCode};
use crate::api::quota::{PlanDto, QuotaDto, UsageDto};
use crate::domain::money::decimal_usd;
use crate::domain::period::{month_period, Period};
use crate::domain::quota::{admit, quota_status, Refusal};
use crate::server::db::{self, plans, quota};
use crate::server::error::{Error, Result};
use crate::server::state::AppState;
use chrono::{Duration, SecondsFormat};
use serde_json::json;
use uuid::Uuid;

/// How long a send may hold tokens before a crashed one stops counting.
const RESERVATION_TTL_MINUTES: i64 = 30;
pub const UPGRADE_URL: &str = "/pricing";

fn period(state: &AppState) -> Period {
    month_period(db::now(), &state.config.timezone)
}

fn plan_dto(plan: &plans::PlanRow) -> PlanDto {
    PlanDto {
        id: plan.id,
        name: plan.name.clone(),
        monthly_token_limit: plan.monthly_token_limit,
        price_label: plan.price_label.clone(),
        description: plan.description.clone(),
        is_default: plan.is_default,
    }
}

async fn user_plan(state: &AppState, user_id: Uuid) -> Result<plans::UserPlanRow> {
    plans::for_user(&state.db, user_id)
        .await?
        .ok_or_else(|| AppError::not_found("user").into())
}

/// The user's usage in the current period and the flags that go with it.
#[tracing::instrument(skip(state))]
pub async fn usage(state: &AppState, user_id: Uuid) -> Result<UsageDto> {
    let period = period(state);
    let plan = user_plan(state, user_id).await?;
    let totals =
        quota::period_totals(&state.db, user_id, period.first_day, period.last_day).await?;
    let status = quota_status(
        totals.tokens_used,
        plan.limit(),
        state.config.quota_thresholds,
    );
    Ok(UsageDto {
        period_start: period.first_day.to_string(),
        period_end: period.last_day.to_string(),
        resets_at: period.end.to_rfc3339_opts(SecondsFormat::Secs, true),
        timezone: state.config.timezone.name().to_string(),
        tokens_used: totals.tokens_used,
        requests_count: totals.requests_count,
        estimated_cost: decimal_usd(totals.cost_nanos),
        quota: QuotaDto {
            limit: status.limit,
            used: status.used,
            remaining: status.remaining,
            percentage: status.percentage,
        },
        is_warning: status.is_warning,
        is_upgrade_suggested: status.is_upgrade_suggested,
        is_blocked: status.is_blocked,
        plan: plan_dto(&plan.plan),
        upgrade_url: UPGRADE_URL.into(),
    })
}

/// What a send was granted.
#[derive(Clone, Copy, Debug)]
pub struct Admitted {
    /// The reply's cap to send upstream (`None`: unlimited and none asked for).
    pub max_output: Option<i64>,
    pub reservation: Option<Uuid>,
}

/// Admits a send of `prompt` estimated tokens asking for `max_output` tokens of reply (the
/// configured default when `None`), or refuses it with 429 `quota_exceeded`, whose details
/// say when the quota resets and where to upgrade.
pub async fn admit_send(
    state: &AppState,
    user_id: Uuid,
    prompt: i64,
    max_output: Option<i64>,
) -> Result<Admitted> {
    let period = period(state);
    let plan = user_plan(state, user_id).await?;
    let limit = plan.limit();
    if limit.is_none() {
        return Ok(Admitted {
            max_output,
            reservation: None,
        });
    }
    let thresholds = state.config.quota_thresholds;
    let wanted = max_output.unwrap_or(state.config.default_max_output_tokens);
    let decide =
        move |used: i64, reserved: i64| admit(used, reserved, limit, thresholds, prompt, wanted);
    let now = db::now();
    let decided = quota::admit(
        &state.db,
        quota::Ask {
            user_id,
            from: period.first_day,
            to: period.last_day,
            now,
            expires_at: now + Duration::minutes(RESERVATION_TTL_MINUTES),
            decide: &decide,
        },
    )
    .await?;
    match decided {
        Ok((admission, reservation)) => Ok(Admitted {
            max_output: Some(admission.max_output),
            reservation,
        }),
        Err(refusal) => {
            let resets_at = period.end.to_rfc3339_opts(SecondsFormat::Secs, true);
            let message = match refusal {
                Refusal::Blocked => format!(
                    "You have reached your monthly token limit. It resets at {resets_at}; upgrade at {UPGRADE_URL} for more."
                ),
                Refusal::TooLittleLeft { available } => format!(
                    "Only {available} tokens are left this month, too few for this message. It resets at {resets_at}; upgrade at {UPGRADE_URL} for more."
                ),
            };
            Err(Error::App(
                AppError::new(ErrorCode::QuotaExceeded, message).with_details(json!({
                    "resets_at": resets_at,
                    "upgrade_url": UPGRADE_URL,
                    "limit": limit,
                })),
            ))
        }
    }
}

/// Lets go of what a send held when it recorded nothing.
pub async fn release(state: &AppState, reservation: Option<Uuid>) {
    if let Some(id) = reservation {
        if let Err(e) = quota::release(&state.db, id).await {
            // It expires on its own; log and carry on.
            tracing::warn!(error = %e, "could not release a quota reservation");
        }
    }
}
