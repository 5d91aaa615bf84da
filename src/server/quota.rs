//! Quotas on the server: the user's usage in the current period (read from the per-day rows,
//! never from messages) and the admission of a send, which holds back what it may use.

use crate::api::error::{AppError, ErrorCode};
use crate::api::quota::{AdminUserDto, ForecastDto, PlanDto, QuotaDto, RequestedPlanDto, UsageDto};
use crate::domain::forecast::{self, forecast, Forecast};
use crate::domain::money::decimal_usd;
use crate::domain::period::{month_period, Period};
use crate::domain::quota::{admit, quota_status, QuotaStatus, Refusal};
use crate::server::cache::CachedUsage;
use crate::server::db::{self, plans, quota};
use crate::server::error::{Error, Result};
use crate::server::state::AppState;
use chrono::{Duration, SecondsFormat};
use serde_json::json;
use uuid::Uuid;

pub const UPGRADE_URL: &str = "/pricing";

fn period(state: &AppState) -> Period {
    month_period(db::now(), &state.config.timezone)
}

/// When the usage is read: now, its period and the first of the last 7 local days (the
/// forecast's window).
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub now: chrono::DateTime<chrono::Utc>,
    pub period: Period,
    pub recent_from: chrono::NaiveDate,
}

pub fn window(state: &AppState) -> Window {
    let now = db::now();
    let today = now.with_timezone(&state.config.timezone).date_naive();
    Window {
        now,
        period: month_period(now, &state.config.timezone),
        recent_from: today - Duration::days(6),
    }
}

fn plan_dto(plan: &plans::PlanRow) -> PlanDto {
    PlanDto {
        id: plan.id,
        name: plan.name.clone(),
        monthly_token_limit: plan.monthly_token_limit,
        price_label: plan.price_label.clone(),
        description: plan.description.clone(),
        sort_order: plan.sort_order,
        is_default: plan.is_default,
    }
}

/// The user's plan, override and sums of the window's period and last 7 days: from the cache,
/// else in one query (one index entry per day read).
async fn period_usage(
    state: &AppState,
    user_id: Uuid,
    window: &Window,
) -> Result<plans::UserPlanUsageRow> {
    let period = &window.period;
    if let Some(row) = state
        .caches
        .usage(user_id, period.first_day, window.recent_from)
    {
        return Ok(row);
    }
    let ticket = state.caches.ticket();
    let row = plans::for_user_with_usage(
        &state.db,
        user_id,
        period.first_day,
        period.last_day,
        window.recent_from,
    )
    .await?
    .ok_or_else(|| AppError::not_found("user"))?;
    let cached = CachedUsage {
        first_day: period.first_day,
        recent_from: window.recent_from,
        row: row.clone(),
    };
    state.caches.keep_usage(ticket, user_id, cached);
    Ok(row)
}

/// Where a user stands: the window it was read in, the sums, the quota's flags and the
/// forecast.
pub struct Standing {
    pub window: Window,
    pub totals: plans::UserPlanUsageRow,
    pub status: QuotaStatus,
    pub forecast: Forecast,
}

/// The forecast in `window` of a user who used `period` tokens this period and `last_7_days`
/// in the last 7 days, against `limit`.
fn forecast_in(
    state: &AppState,
    window: &Window,
    period: i64,
    last_7_days: i64,
    limit: Option<i64>,
) -> Forecast {
    forecast(
        window.now,
        &window.period,
        &state.config.timezone,
        forecast::Usage {
            period,
            last_7_days,
        },
        limit,
        state.config.quota_thresholds,
    )
}

/// Where the user stands now (the usage from the cache when it has it).
pub async fn standing(state: &AppState, user_id: Uuid) -> Result<Standing> {
    let window = window(state);
    let totals = period_usage(state, user_id, &window).await?;
    let limit = totals.plan.limit();
    let status = quota_status(totals.tokens_used, limit, state.config.quota_thresholds);
    let forecast = forecast_in(
        state,
        &window,
        totals.tokens_used,
        totals.recent_tokens,
        limit,
    );
    Ok(Standing {
        window,
        totals,
        status,
        forecast,
    })
}

fn forecast_dto(f: &Forecast) -> ForecastDto {
    let day = |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string());
    ForecastDto {
        projected_tokens: f.projected,
        projected_percentage: f.projected_percentage,
        tokens_per_day: f.pace.per_day(),
        warning_on: day(f.warning_on),
        upgrade_on: day(f.upgrade_on),
        limit_on: day(f.limit_on),
    }
}

/// The user's usage in the current period, the flags that go with it and the forecast.
#[tracing::instrument(skip(state))]
pub async fn usage(state: &AppState, user_id: Uuid) -> Result<UsageDto> {
    // A notification the change just made shows in this answer's unread count.
    crate::server::notifications::watch::check_if_touched(state, user_id).await;
    let Standing {
        window,
        totals,
        status,
        forecast,
    } = standing(state, user_id).await?;
    let period = window.period;
    let plan = &totals.plan;
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
        forecast: forecast_dto(&forecast),
        unread_notifications: totals.unread_notifications,
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
    let thresholds = state.config.quota_thresholds;
    let wanted = max_output.unwrap_or(state.config.default_max_output_tokens);
    let decide = move |st: quota::Standing| {
        admit(st.used, st.reserved, st.limit, thresholds, prompt, wanted)
    };
    let now = db::now();
    let decided = quota::admit(
        &state.db,
        quota::Ask {
            user_id,
            from: period.first_day,
            to: period.last_day,
            now,
            expires_at: now + reservation_life(state),
            decide: &decide,
        },
    )
    .await?;
    match decided {
        // Unlimited: nothing held back, the reply's cap as asked.
        Ok((_, None)) => Ok(Admitted {
            max_output,
            reservation: None,
        }),
        Ok((admission, reservation)) => Ok(Admitted {
            max_output: Some(admission.max_output),
            reservation,
        }),
        Err(refusal) => Err(refused(&period, refusal)),
    }
}

/// Refuses at once a send by a user whose usage is already at the block threshold, from the
/// cached usage when there is one, before the send path does any other work. (The admission,
/// which reads the database under the user's lock, decides for everyone else.)
pub async fn refuse_if_blocked(state: &AppState, user_id: Uuid) -> Result<()> {
    let Window {
        period,
        recent_from,
        ..
    } = window(state);
    // Not read from the database when not cached: every send changes the usage, so the cache
    // is empty for a user who keeps sending, and the admission reads it anyway.
    let Some(usage) = state.caches.usage(user_id, period.first_day, recent_from) else {
        return Ok(());
    };
    let status = quota_status(
        usage.tokens_used,
        usage.plan.limit(),
        state.config.quota_thresholds,
    );
    if status.is_blocked {
        return Err(refused(&period, Refusal::Blocked));
    }
    Ok(())
}

/// The 429 of a refused send: what happened, when the quota resets, where to upgrade.
fn refused(period: &Period, refusal: Refusal) -> Error {
    let resets_at = period.end.to_rfc3339_opts(SecondsFormat::Secs, true);
    let message = match refusal {
        Refusal::Blocked => format!(
            "You have reached your monthly token limit. It resets at {resets_at}; upgrade at {UPGRADE_URL} for more."
        ),
        Refusal::TooLittleLeft { available } => format!(
            "Only {available} tokens are left this month, too few for this message. It resets at {resets_at}; upgrade at {UPGRADE_URL} for more."
        ),
    };
    Error::App(
        AppError::new(ErrorCode::QuotaExceeded, message).with_details(json!({
            "resets_at": resets_at,
            "upgrade_url": UPGRADE_URL,
        })),
    )
}

fn reservation_life(state: &AppState) -> Duration {
    Duration::from_std(state.config.reservation_ttl).unwrap_or(Duration::minutes(30))
}

/// Keeps a streaming send's tokens held for another reservation life (a reply may outlast
/// one). A failure is logged: the next renewal tries again.
pub async fn renew(state: &AppState, reservation: Option<Uuid>) {
    if let Some(id) = reservation {
        let until = db::now() + reservation_life(state);
        if let Err(e) = quota::renew(&state.db, id, until).await {
            tracing::warn!(error = %e, "could not renew a quota reservation");
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

pub async fn list_plans(state: &AppState) -> Result<Vec<PlanDto>> {
    Ok(plans::list(&state.db).await?.iter().map(plan_dto).collect())
}

/// A plan as an admin writes it.
#[derive(Clone, Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    /// 1 to 60 characters once trimmed
    #[schema(min_length = 1, max_length = 60, pattern = "\\S")]
    pub name: String,
    /// `null`: unlimited.
    #[schema(minimum = 0)]
    pub monthly_token_limit: Option<i64>,
    #[serde(default)]
    #[schema(max_length = 40)]
    pub price_label: String,
    #[serde(default)]
    #[schema(max_length = 300)]
    pub description: String,
    #[serde(default)]
    pub sort_order: i64,
    #[serde(default)]
    pub is_default: bool,
}

fn check_plan(input: &PlanInput) -> Result<String> {
    let name = input.name.trim();
    let bad = |m: String| -> Error { AppError::validation(m).into() };
    if name.is_empty() || name.chars().count() > 60 {
        return Err(bad("name must be 1 to 60 characters".into()));
    }
    if input.monthly_token_limit.is_some_and(|l| l < 0) {
        return Err(bad(
            "monthly_token_limit must be a whole number >= 0, or null for unlimited".into(),
        ));
    }
    if input.price_label.chars().count() > 40 {
        return Err(bad("price_label must be at most 40 characters".into()));
    }
    if input.description.chars().count() > 300 {
        return Err(bad("description must be at most 300 characters".into()));
    }
    Ok(name.to_string())
}

/// Creates a plan. A taken name is 409.
pub async fn create_plan(state: &AppState, input: PlanInput) -> Result<PlanDto> {
    store_plan(state, None, input).await
}

/// Changes a plan: `edit` gets its current fields and returns the new ones. Unknown id 404, a
/// taken name or un-defaulting the default plan 409.
pub async fn update_plan(
    state: &AppState,
    id: Uuid,
    edit: impl FnOnce(PlanInput) -> PlanInput,
) -> Result<PlanDto> {
    let current = plans::find(&state.db, id)
        .await?
        .ok_or_else(|| AppError::not_found("plan"))?;
    let was_default = current.is_default;
    let input = edit(PlanInput {
        name: current.name,
        monthly_token_limit: current.monthly_token_limit,
        price_label: current.price_label,
        description: current.description,
        sort_order: current.sort_order,
        is_default: current.is_default,
    });
    if was_default && !input.is_default {
        return Err(AppError::conflict(
            "a plan stays the default until another plan is made the default",
        )
        .into());
    }
    store_plan(state, Some(id), input).await
}

async fn store_plan(state: &AppState, id: Option<Uuid>, input: PlanInput) -> Result<PlanDto> {
    let name = check_plan(&input)?;
    let saved = plans::upsert(
        &state.db,
        id.unwrap_or_else(Uuid::new_v4),
        plans::PlanFields {
            name: &name,
            monthly_token_limit: input.monthly_token_limit,
            price_label: input.price_label.trim(),
            description: input.description.trim(),
            sort_order: input.sort_order,
            is_default: input.is_default,
        },
        db::now(),
        id.is_none(),
    )
    .await
    .map_err(|e| {
        if crate::server::error::is_unique_violation(&e) {
            AppError::conflict(format!("a plan named {name:?} already exists")).into()
        } else {
            Error::from(e)
        }
    })?
    .announce(state)
    .await
    .ok_or_else(|| AppError::not_found("plan"))?;
    Ok(plan_dto(&saved))
}

/// Sets a user's plan (`Some(None)`: the default plan) and/or personal limit (`Some(None)`:
/// cleared). Checked before anything is written: an unknown plan or a negative limit is 400.
pub async fn set_user_quota(
    state: &AppState,
    user_id: Uuid,
    plan: Option<Option<Uuid>>,
    limit_override: Option<Option<i64>>,
) -> Result<()> {
    check_user_quota(state, plan, limit_override).await?;
    if !crate::server::db::users::set_quota(&state.db, user_id, plan, limit_override, db::now())
        .await?
        .announce(state)
        .await
    {
        return Err(AppError::not_found("user").into());
    }
    tracing::info!(%user_id, ?plan, ?limit_override, "quota settings changed");
    Ok(())
}

/// Checks a change of a user's plan and personal limit without writing it (400s naming the
/// field).
async fn check_user_quota(
    state: &AppState,
    plan: Option<Option<Uuid>>,
    limit_override: Option<Option<i64>>,
) -> Result<()> {
    if let Some(Some(plan_id)) = plan {
        if plans::find(&state.db, plan_id).await?.is_none() {
            return Err(AppError::validation(format!(
                "plan_id: no plan has the id {plan_id} (GET /api/admin/plans lists them)"
            ))
            .into());
        }
    }
    if limit_override.flatten().is_some_and(|l| l < 0) {
        return Err(AppError::validation(
            "token_limit_override must be a whole number >= 0, or null to clear it",
        )
        .into());
    }
    Ok(())
}

/// A user asks for another plan; admins see it on the users page.
pub async fn request_plan(state: &AppState, user_id: Uuid, plan_id: Uuid) -> Result<()> {
    let current = period_usage(state, user_id, &window(state)).await?.plan;
    if plans::find(&state.db, plan_id).await?.is_none() {
        return Err(AppError::validation(format!("plan_id: no plan has the id {plan_id}")).into());
    }
    if current.plan.id == plan_id {
        return Err(AppError::conflict("that is already your plan").into());
    }
    crate::server::db::users::request_plan(&state.db, user_id, plan_id, db::now()).await?;
    Ok(())
}

/// Users for the admin page, with plan and the current period's usage and flags.
pub async fn admin_users(state: &AppState, limit: i64, offset: i64) -> Result<Vec<AdminUserDto>> {
    if !(1..=1000).contains(&limit) || offset < 0 {
        return Err(AppError::validation("limit must be 1..=1000 and offset >= 0").into());
    }
    let window = window(state);
    let period = window.period;
    let rows = crate::server::db::users::list_with_usage(
        &state.db,
        limit,
        offset,
        period.first_day,
        period.last_day,
        window.recent_from,
    )
    .await?;
    let thresholds = state.config.quota_thresholds;
    Ok(rows
        .into_iter()
        .map(|r| {
            let limit = r.token_limit_override.or(r.plan_limit);
            let status = quota_status(r.tokens_used, limit, thresholds);
            let f = forecast_in(state, &window, r.tokens_used, r.recent_tokens, limit);
            AdminUserDto {
                requested_plan: match (
                    r.requested_plan_id,
                    r.requested_plan_name,
                    r.plan_requested_at,
                ) {
                    (Some(id), Some(name), Some(requested_at)) => Some(RequestedPlanDto {
                        id,
                        name,
                        requested_at,
                    }),
                    _ => None,
                },
                user: r.user.into(),
                plan_id: r.plan_id,
                plan_name: r.plan_name,
                token_limit_override: r.token_limit_override,
                limit,
                tokens_used: r.tokens_used,
                percentage: status.percentage,
                is_warning: status.is_warning,
                is_upgrade_suggested: status.is_upgrade_suggested,
                is_blocked: status.is_blocked,
                projected_tokens: f.projected,
                projected_cost: decimal_usd(projected_cost(
                    r.cost_nanos,
                    r.tokens_used,
                    f.projected,
                )),
                runs_out_on: f.limit_on.map(|d| d.to_string()),
            }
        })
        .collect())
}

/// The period's cost at the reset: the cost so far at its average price per token, carried
/// to the projected tokens (rounded down; what was used so far when nothing is projected).
fn projected_cost(cost_nanos: i64, tokens_used: i64, projected_tokens: i64) -> i64 {
    if tokens_used <= 0 || projected_tokens <= tokens_used {
        return cost_nanos;
    }
    let cost = i128::from(cost_nanos) * i128::from(projected_tokens) / i128::from(tokens_used);
    cost.min(i128::from(i64::MAX)) as i64
}

#[cfg(test)]
mod projected_cost_tests {
    use super::projected_cost;

    #[test]
    fn the_cost_follows_the_tokens_at_their_average_price() {
        assert_eq!(projected_cost(1_000, 100, 300), 3_000);
        assert_eq!(projected_cost(1_000, 0, 300), 1_000);
        assert_eq!(projected_cost(1_000, 300, 300), 1_000);
        assert_eq!(projected_cost(10, 3, 4), 13);
    }
}
