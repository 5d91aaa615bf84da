//! Usage over REST: `/api/profile/usage/history` (the caller's), and for admins
//! `/api/admin/users/{id}/usage/history`, `/api/admin/users/{id}/usage/sync` and
//! `/api/admin/usage` (everyone). Histories come as JSON or, with `format=csv`, as a CSV
//! download.

use super::{ok, parse_id, ApiError, ApiQuery, ApiResult, Envelope, IdPath};
use crate::api::error::AppError;
use crate::domain::usage::{history_csv, parse_history_days};
use crate::server::auth::{AdminUser, AuthUser};
use crate::server::state::AppState;
use crate::server::{usage_analytics, usage_sync};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// `POST /api/admin/users/{id}/usage/sync`'s answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserSynced {
    user_id: Uuid,
    /// the first day synced (`YYYY-MM-DD`, local)
    from: String,
    /// the last day synced
    to: String,
    /// days LiteLLM reported use on
    days_reported: i64,
}
use uuid::Uuid;

#[derive(Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// 1 to 365 (30 when absent)
    #[param(value_type = Option<i64>, minimum = 1, maximum = 365)]
    days: Option<String>,
    #[param(schema_with = super::openapi::export_format)]
    format: Option<String>,
}

enum Format {
    Json,
    Csv,
}

fn parse_query(q: HistoryQuery) -> Result<(i64, Format), ApiError> {
    let days = parse_history_days(q.days.as_deref()).map_err(AppError::validation)?;
    Ok((days, parse_format(q.format.as_deref())?))
}

fn parse_format(raw: Option<&str>) -> Result<Format, ApiError> {
    match raw {
        None | Some("json") => Ok(Format::Json),
        Some("csv") => Ok(Format::Csv),
        Some(other) => Err(ApiError(AppError::validation(format!(
            "format must be one of: json, csv (got {})",
            crate::domain::text::quoted(other)
        )))),
    }
}

async fn history(
    state: &AppState,
    user_id: Uuid,
    days: i64,
    format: Format,
    own: bool,
) -> Result<Response, ApiError> {
    match format {
        Format::Json => {
            let dto = if own {
                usage_analytics::own_usage_history(state, user_id, days).await?
            } else {
                usage_analytics::get_user_usage_history(state, user_id, days).await?
            };
            Ok(ok(dto).into_response())
        }
        Format::Csv => {
            let history = usage_analytics::history_days(state, user_id, days).await?;
            let (from, to) = (history.from, history.to);
            Ok(csv_download(
                &format!("usage-{from}-to-{to}.csv"),
                history_csv(&history.days),
            ))
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/profile/usage/history",
    tag = "usage",
    params(HistoryQuery),
    responses((status = 200, description = "the caller's days, every day present; `format=csv`: a CSV download", content((Envelope<crate::api::usage::UsageHistoryDto> = "application/json"), (String = "text/csv"))))
)]
/// `GET /api/profile/usage/history?days=30[&format=csv]`: the caller's days, zero-filled.
pub async fn own_history(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Response, ApiError> {
    let (days, format) = parse_query(query)?;
    history(&state, me.user.id, days, format, true).await
}

#[utoipa::path(
    get,
    path = "/api/admin/users/{id}/usage/history",
    tag = "usage",
    params(IdPath, HistoryQuery),
    responses((status = 200, description = "the user's days, every day present; `format=csv`: a CSV download", content((Envelope<crate::api::usage::UsageHistoryDto> = "application/json"), (String = "text/csv"))))
)]
/// `GET /api/admin/users/{id}/usage/history?days=30[&format=csv]`: anyone's, for admins.
pub async fn user_history(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "user_id")?;
    let (days, format) = parse_query(query)?;
    history(&state, id, days, format, false).await
}

#[utoipa::path(
    post,
    path = "/api/admin/users/{id}/usage/sync",
    tag = "usage",
    params(IdPath),
    responses((status = 200, description = "synced from LiteLLM (409 without LiteLLM, 502 when it fails)", body = Envelope<UserSynced>))
)]
/// `POST /api/admin/users/{id}/usage/sync`: syncs the user's usage from LiteLLM now.
pub async fn sync_user(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<UserSynced> {
    let id = parse_id(&id, "user_id")?;
    let synced = usage_sync::sync_user_usage(&state, id).await?;
    ok(UserSynced {
        user_id: id,
        from: synced.from.to_string(),
        to: synced.to.to_string(),
        days_reported: synced.days_reported,
    })
}

#[derive(Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    /// YYYY-MM-DD, at most 366 days before `to` (30 days before it when absent)
    #[param(format = Date)]
    from: Option<String>,
    /// YYYY-MM-DD (today when absent)
    #[param(format = Date)]
    to: Option<String>,
    #[param(schema_with = super::openapi::export_format)]
    format: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/admin/usage",
    tag = "usage",
    params(RangeQuery),
    responses((status = 200, description = "everyone's usage over the range; `format=csv`: every user's day as CSV", content((Envelope<crate::api::usage::UsageAnalyticsDto> = "application/json"), (String = "text/csv"))))
)]
/// `GET /api/admin/usage?from=YYYY-MM-DD&to=YYYY-MM-DD[&format=csv]`: everyone's usage over a
/// range (the last 30 days by default, at most 366): totals, every day, the top users, the
/// models; as CSV, every user's day.
pub async fn analytics(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> Result<Response, ApiError> {
    let (from, to) = (q.from.as_deref(), q.to.as_deref());
    match parse_format(q.format.as_deref())? {
        Format::Json => {
            Ok(ok(usage_analytics::usage_analytics(&state, from, to).await?).into_response())
        }
        Format::Csv => {
            let (from, to, csv) = usage_analytics::usage_export_csv(&state, from, to).await?;
            Ok(csv_download(&format!("usage-all-{from}-to-{to}.csv"), csv))
        }
    }
}

fn csv_download(filename: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}
