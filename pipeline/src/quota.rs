//! Per-tenant quotas: uploads per UTC day, and bytes stored (originals and
//! variants). Set by an operator (`image-service tenants set-quota`); a
//! tenant past either gets `429 quota-exceeded`.
//!
//! The counting is exact under concurrent uploads: each limit is checked by
//! the `UPDATE` that raises its counter (`… SET n = n + 1 WHERE n < limit`),
//! so the database, not a read before the write, decides who is last in.
//! Postgres re-checks that condition after waiting for a concurrent
//! update's row lock; SQLite runs one writer at a time.

use chrono::{DateTime, Utc};
use entities::{tenant_daily_uploads, tenants};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, TransactionTrait};
use uuid::Uuid;

/// A tenant's limits; `None` is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Uploads it may start per UTC day.
    pub uploads_per_day: Option<i64>,
    /// Bytes it may keep stored.
    pub bytes_stored: Option<i64>,
}

/// Why an upload was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Today's uploads are used up; the count starts again at UTC midnight.
    UploadsPerDay {
        /// The tenant's uploads per day.
        limit: i64,
        /// Seconds until UTC midnight.
        retry_after_secs: u64,
    },
    /// The upload would take the tenant past its stored bytes. Deleting
    /// images frees room; waiting does not.
    BytesStored {
        /// The tenant's bytes stored.
        limit: i64,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UploadsPerDay { limit, .. } => write!(f, "this tenant's quota of {limit} uploads per day is used up"),
            Self::BytesStored { limit } => {
                write!(f, "this upload would take the tenant past its quota of {limit} bytes stored")
            }
        }
    }
}

/// The UTC day an instant falls on, as the counter's key.
fn day_of(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%d").to_string()
}

/// Whole seconds from `now` to the next UTC midnight (at least 1).
fn until_midnight(now: DateTime<Utc>) -> u64 {
    let tomorrow = (now.date_naive() + chrono::Days::new(1)).and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    std::cmp::Ord::max(u64::try_from((tomorrow - now).num_seconds()).unwrap_or(1), 1)
}

/// Counts one upload of `bytes` against the tenant's quotas, or refuses it
/// and counts nothing. The caller refunds it ([`refund`]) if the upload is
/// not kept after all.
///
/// # Errors
/// Database errors (nothing counted).
pub async fn charge(
    db: &DatabaseConnection,
    tenant: Uuid,
    bytes: i64,
    now: DateTime<Utc>,
) -> Result<Result<(), Refusal>, DbErr> {
    // The first statement writes, so that on SQLite the transaction takes
    // the write lock (waiting for it) before it reads anything: a read
    // first would make a concurrent writer's commit fail this one with
    // SQLITE_BUSY rather than wait.
    let txn = db.begin().await?;
    let day = day_of(now);
    tenant_daily_uploads::Entity::insert(tenant_daily_uploads::ActiveModel {
        tenant_id: Set(tenant),
        day: Set(day.clone()),
        uploads: Set(0),
    })
    .on_conflict(
        OnConflict::columns([tenant_daily_uploads::Column::TenantId, tenant_daily_uploads::Column::Day])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(&txn)
    .await?;
    let Some(owner) = tenants::Entity::find_by_id(tenant).one(&txn).await? else {
        txn.rollback().await?;
        return Err(DbErr::RecordNotFound(format!("tenant {tenant}")));
    };
    let mut count = tenant_daily_uploads::Entity::update_many()
        .col_expr(tenant_daily_uploads::Column::Uploads, Expr::col(tenant_daily_uploads::Column::Uploads).add(1))
        .filter(tenant_daily_uploads::Column::TenantId.eq(tenant))
        .filter(tenant_daily_uploads::Column::Day.eq(day));
    if let Some(limit) = owner.max_uploads_per_day {
        count = count.filter(tenant_daily_uploads::Column::Uploads.lt(limit));
    }
    if count.exec(&txn).await?.rows_affected == 0 {
        txn.rollback().await?;
        let limit = owner.max_uploads_per_day.unwrap_or_default();
        return Ok(Err(Refusal::UploadsPerDay { limit, retry_after_secs: until_midnight(now) }));
    }
    let mut store = add_bytes(tenant, bytes);
    if let Some(limit) = owner.max_bytes_stored {
        store = store.filter(Expr::col(tenants::Column::BytesStored).add(bytes).lte(limit));
    }
    if store.exec(&txn).await?.rows_affected == 0 {
        txn.rollback().await?;
        return Ok(Err(Refusal::BytesStored { limit: owner.max_bytes_stored.unwrap_or_default() }));
    }
    txn.commit().await?;
    Ok(Ok(()))
}

/// Takes back a [`charge`] made at `charged_at` for an upload not kept.
///
/// # Errors
/// Database errors.
pub async fn refund(db: &DatabaseConnection, tenant: Uuid, bytes: i64, charged_at: DateTime<Utc>) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    tenant_daily_uploads::Entity::update_many()
        .col_expr(tenant_daily_uploads::Column::Uploads, Expr::col(tenant_daily_uploads::Column::Uploads).sub(1))
        .filter(tenant_daily_uploads::Column::TenantId.eq(tenant))
        .filter(tenant_daily_uploads::Column::Day.eq(day_of(charged_at)))
        .filter(tenant_daily_uploads::Column::Uploads.gt(0))
        .exec(&txn)
        .await?;
    add_bytes(tenant, -bytes).exec(&txn).await?;
    txn.commit().await
}

/// The update that adds `delta` (negative to free room) to a tenant's
/// stored bytes; run it inside the transaction that stores or deletes.
pub fn add_bytes(tenant: Uuid, delta: i64) -> sea_orm::UpdateMany<tenants::Entity> {
    tenants::Entity::update_many()
        .col_expr(tenants::Column::BytesStored, Expr::col(tenants::Column::BytesStored).add(delta))
        .filter(tenants::Column::Id.eq(tenant))
}

/// Sets a tenant's limits.
///
/// # Errors
/// Database errors.
pub async fn set_limits(db: &impl ConnectionTrait, tenant: Uuid, limits: Limits) -> Result<(), DbErr> {
    tenants::Entity::update_many()
        .col_expr(tenants::Column::MaxUploadsPerDay, Expr::value(limits.uploads_per_day))
        .col_expr(tenants::Column::MaxBytesStored, Expr::value(limits.bytes_stored))
        .filter(tenants::Column::Id.eq(tenant))
        .exec(db)
        .await?;
    Ok(())
}

/// Today's uploads by a tenant.
///
/// # Errors
/// Database errors.
pub async fn uploads_on(db: &impl ConnectionTrait, tenant: Uuid, now: DateTime<Utc>) -> Result<i64, DbErr> {
    let row = tenant_daily_uploads::Entity::find_by_id((tenant, day_of(now))).one(db).await?;
    Ok(row.map_or(0, |r| r.uploads))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_daily_count_starts_again_at_utc_midnight() {
        let late = Utc.with_ymd_and_hms(2026, 12, 4, 23, 59, 30).single().unwrap_or_default();
        assert_eq!(day_of(late), "2026-12-04");
        assert_eq!(until_midnight(late), 30);
        let midnight = Utc.with_ymd_and_hms(2026, 12, 5, 0, 0, 0).single().unwrap_or_default();
        assert_eq!(day_of(midnight), "2026-12-05");
        assert_eq!(until_midnight(midnight), 86_400);
    }
}
