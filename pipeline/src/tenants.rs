//! Tenants: created by operators, named in `keys create --tenant` and in an
//! admin's `?tenant=`. Every image, job and key belongs to exactly one.

use chrono::Utc;
use entities::tenants;
pub use entities::tenants::{DEFAULT_TENANT, DEFAULT_TENANT_NAME};
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

/// Why a tenant could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// Names are 1–64 characters of `a-z`, `0-9`, `-` and `_`, so they are
    /// safe in a query string, a log line and an object key.
    #[error("tenant names are 1-64 characters of a-z, 0-9, '-' and '_' (got {0:?})")]
    InvalidName(String),
    /// Another tenant has this name.
    #[error("a tenant named {0:?} exists already")]
    Exists(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Whether `name` is a valid tenant name.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Creates a tenant.
///
/// # Errors
/// An invalid or taken name, or a database error.
pub async fn create(db: &DatabaseConnection, name: &str) -> Result<tenants::Model, CreateError> {
    if !valid_name(name) {
        return Err(CreateError::InvalidName(name.to_owned()));
    }
    let row = tenants::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(name.to_owned()),
        created_at: Set(Utc::now()),
        max_uploads_per_day: Set(None),
        max_bytes_stored: Set(None),
        bytes_stored: Set(0),
        deduplicate: Set(true),
        originals_retention_days: Set(None),
        delivery_mode: Set(None),
    };
    match tenants::Entity::insert(row).exec_with_returning(db).await {
        Ok(model) => Ok(model),
        Err(err) if crate::jobs::is_unique_violation(&err) => Err(CreateError::Exists(name.to_owned())),
        Err(err) => Err(err.into()),
    }
}

/// The tenant with this name.
///
/// # Errors
/// Database errors.
pub async fn find_by_name(db: &DatabaseConnection, name: &str) -> Result<Option<tenants::Model>, DbErr> {
    tenants::Entity::find().filter(tenants::Column::Name.eq(name)).one(db).await
}

/// Turns deduplication on or off for a tenant.
///
/// # Errors
/// Database errors.
pub async fn set_deduplicate(db: &DatabaseConnection, tenant: Uuid, on: bool) -> Result<(), DbErr> {
    tenants::Entity::update_many()
        .col_expr(tenants::Column::Deduplicate, sea_orm::sea_query::Expr::value(on))
        .filter(tenants::Column::Id.eq(tenant))
        .exec(db)
        .await?;
    Ok(())
}

/// Sets how many days a tenant's originals are kept (`0`: for good), or
/// with `None` lets it follow the global setting.
///
/// # Errors
/// Database errors.
pub async fn set_retention(db: &DatabaseConnection, tenant: Uuid, days: Option<u32>) -> Result<(), DbErr> {
    let days = days.map(|d| i32::try_from(d).unwrap_or(i32::MAX));
    tenants::Entity::update_many()
        .col_expr(tenants::Column::OriginalsRetentionDays, sea_orm::sea_query::Expr::value(days))
        .filter(tenants::Column::Id.eq(tenant))
        .exec(db)
        .await?;
    Ok(())
}

/// Sets how a tenant's variants are delivered, or with `None` lets it
/// follow `DELIVERY_MODE`. It applies to the variants jobs make from now on:
/// the mode decides where they are stored (see [`crate::delivery`]).
///
/// # Errors
/// Database errors.
pub async fn set_delivery(
    db: &DatabaseConnection,
    tenant: Uuid,
    mode: Option<crate::delivery::Mode>,
) -> Result<(), DbErr> {
    tenants::Entity::update_many()
        .col_expr(tenants::Column::DeliveryMode, sea_orm::sea_query::Expr::value(mode.map(|m| m.as_str())))
        .filter(tenants::Column::Id.eq(tenant))
        .exec(db)
        .await?;
    Ok(())
}

/// Whether a tenant deduplicates its uploads (`false` for an unknown one).
///
/// # Errors
/// Database errors.
pub async fn deduplicates(db: &DatabaseConnection, tenant: Uuid) -> Result<bool, DbErr> {
    Ok(tenants::Entity::find_by_id(tenant).one(db).await?.is_some_and(|t| t.deduplicate))
}

/// Every tenant, oldest first.
///
/// # Errors
/// Database errors.
pub async fn list(db: &DatabaseConnection) -> Result<Vec<tenants::Model>, DbErr> {
    tenants::Entity::find().order_by_asc(tenants::Column::CreatedAt).order_by_asc(tenants::Column::Name).all(db).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_in_urls_logs_and_keys() {
        assert!(valid_name("acme"));
        assert!(valid_name("acme-prod_2"));
        assert!(!valid_name(""));
        assert!(!valid_name("Acme"));
        assert!(!valid_name("a b"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(&"a".repeat(65)));
    }
}
