//! The `plans` table and each user's effective plan (their own, else the default one).

use super::{with_db, with_db_read, Db};
use crate::server::cache::{Change, Changed};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PlanRow {
    pub id: Uuid,
    pub name: String,
    /// `None`: unlimited.
    pub monthly_token_limit: Option<i64>,
    pub price_label: String,
    pub description: String,
    pub sort_order: i64,
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user's plan and personal override.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserPlanRow {
    #[sqlx(flatten)]
    pub plan: PlanRow,
    pub token_limit_override: Option<i64>,
}

impl UserPlanRow {
    /// The limit that applies: the override, else the plan's.
    pub fn limit(&self) -> Option<i64> {
        self.token_limit_override.or(self.plan.monthly_token_limit)
    }
}

pub async fn list(db: &Db) -> Result<Vec<PlanRow>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_as(
            "select id, name, monthly_token_limit, price_label, description, sort_order,
                    is_default, created_at, updated_at
             from plans order by sort_order, name",
        )
        .fetch_all(pool)
        .await
    })
}

pub async fn find(db: &Db, id: Uuid) -> Result<Option<PlanRow>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_as(
            "select id, name, monthly_token_limit, price_label, description, sort_order,
                    is_default, created_at, updated_at
             from plans where id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await
    })
}

/// A plan's fields as written by an admin.
pub struct PlanFields<'a> {
    pub name: &'a str,
    pub monthly_token_limit: Option<i64>,
    pub price_label: &'a str,
    pub description: &'a str,
    pub sort_order: i64,
    pub is_default: bool,
}

/// Inserts a plan or, with `id` of an existing one, replaces its fields; making a plan the
/// default takes that from the previous one in the same transaction. `None`: no such plan.
pub async fn upsert(
    db: &Db,
    id: Uuid,
    fields: PlanFields<'_>,
    now: DateTime<Utc>,
    create: bool,
) -> Result<Changed<Option<PlanRow>>, sqlx::Error> {
    let row = with_db!(db, |pool| {
        let mut tx = pool.begin().await?;
        if fields.is_default {
            sqlx::query("update plans set is_default = false, updated_at = $2 where is_default and id <> $1")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        let sql = if create {
            "insert into plans (id, name, monthly_token_limit, price_label, description,
                 sort_order, is_default, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $8)
             returning id, name, monthly_token_limit, price_label, description, sort_order,
                 is_default, created_at, updated_at"
        } else {
            "update plans set name = $2, monthly_token_limit = $3, price_label = $4,
                 description = $5, sort_order = $6, is_default = $7, updated_at = $8
             where id = $1
             returning id, name, monthly_token_limit, price_label, description, sort_order,
                 is_default, created_at, updated_at"
        };
        let row: Option<PlanRow> = sqlx::query_as(sql)
            .bind(id)
            .bind(fields.name)
            .bind(fields.monthly_token_limit)
            .bind(fields.price_label)
            .bind(fields.description)
            .bind(fields.sort_order)
            .bind(fields.is_default)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(row)
    })?;
    Ok(Changed::when(row.is_some(), row, Change::Plans))
}

/// A user's plan, override and usage from `from` to `to`, in one query (the usage endpoint's
/// only read besides authentication).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserPlanUsageRow {
    #[sqlx(flatten)]
    pub plan: UserPlanRow,
    pub tokens_used: i64,
    pub requests_count: i64,
    pub cost_nanos: i64,
    /// Tokens of the days from `recent_from` on (the forecast's last 7 days).
    pub recent_tokens: i64,
    /// The user's unread notifications (the bell's count).
    pub unread_notifications: i64,
}

/// The user's plan, with the sums of the days `from..=to`, the tokens of the days from
/// `recent_from` on (which may start in the period before) and the unread notifications, in one
/// read.
pub async fn for_user_with_usage(
    db: &Db,
    user_id: Uuid,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    recent_from: chrono::NaiveDate,
) -> Result<Option<UserPlanUsageRow>, sqlx::Error> {
    with_db_read!(db, |pool| {
        sqlx::query_as(
            "select p.id, p.name, p.monthly_token_limit, p.price_label, p.description,
                    p.sort_order, p.is_default, p.created_at, p.updated_at,
                    u.token_limit_override,
                    cast(coalesce(t.tokens_used, 0) as bigint) as tokens_used,
                    cast(coalesce(t.requests_count, 0) as bigint) as requests_count,
                    cast(coalesce(t.cost_nanos, 0) as bigint) as cost_nanos,
                    cast(coalesce(t.recent_tokens, 0) as bigint) as recent_tokens,
                    (select count(*) from notifications n
                     where n.user_id = u.id and n.read_at is null) as unread_notifications
             from users u
             join plans p on p.id = coalesce(u.plan_id, (select d.id from plans d where d.is_default))
             left join (select user_id,
                               sum(case when date >= $2 then tokens_used else 0 end) as tokens_used,
                               sum(case when date >= $2 then requests_count else 0 end) as requests_count,
                               sum(case when date >= $2 then cost_nanos else 0 end) as cost_nanos,
                               sum(case when date >= $4 then tokens_used else 0 end) as recent_tokens
                        from usage_history
                        where user_id = $1 and date >= $5 and date <= $3
                        group by user_id) t on t.user_id = u.id
             where u.id = $1",
        )
        .bind(user_id)
        .bind(from)
        .bind(to)
        .bind(recent_from)
        .bind(from.min(recent_from))
        .fetch_optional(pool)
        .await
    })
}
