//! What the service forgets on its own: originals past their retention, and
//! variants of preset versions that newer ones have replaced.
//!
//! - **Originals.** A tenant's retention (or the global one) of N days means
//!   an original goes N days after its upload, and never before its job
//!   succeeded: the rule S3's lifecycle applies to objects tagged
//!   [`RETENTION_TAG`], so the sweeper and the bucket agree. When a job
//!   succeeds, [`Jobs::succeed`](crate::jobs::Jobs::succeed) records when
//!   the original expires and the worker tags it; [`sweep_originals`]
//!   removes it then, on every store (on S3 the lifecycle rule also does,
//!   should no API run). Its variants stay; the image can no longer be
//!   reprocessed.
//! - **Stale variants.** Once a variant of a preset's current version has
//!   existed for the grace period, [`sweep_stale_variants`] removes the
//!   image's variants of that preset's other versions.
//!
//! Both take the time as an argument, so tests move it rather than wait.

use chrono::{DateTime, TimeDelta, Utc};
use entities::{images, tenants, variants};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use crate::backends::Backends;
use crate::cache;

/// The S3 object tag the worker puts on an original when its job succeeds
/// under a retention; its value is the number of days. Terraform's lifecycle
/// rules expire `originals/` objects by it, one rule per choice.
pub const RETENTION_TAG: &str = "image-service-retention-days";

/// The retention settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Days originals are kept when a tenant sets none; `0`: forever.
    pub default_days: u32,
    /// The day counts the bucket's lifecycle rules cover; empty: any.
    pub choices: Vec<u32>,
    /// How long a superseded variant outlives its replacement.
    pub stale_variants_grace: TimeDelta,
}

impl Retention {
    /// The retention the settings ask for.
    pub fn from_settings(settings: &crate::Settings) -> Self {
        Self {
            default_days: settings.originals_retention_days,
            choices: settings.originals_retention_choices.clone(),
            stale_variants_grace: TimeDelta::hours(i64::from(settings.stale_variants_grace_hours.max(1))),
        }
    }

    /// Whether `days` may be set (`0`, keep forever, always may).
    ///
    /// # Errors
    /// Why not, for the operator to read.
    pub fn check(&self, days: u32) -> Result<(), String> {
        if days == 0 || self.choices.is_empty() || self.choices.contains(&days) {
            return Ok(());
        }
        let choices: Vec<String> = self.choices.iter().map(u32::to_string).collect();
        Err(format!(
            "{days} days is not among the retentions the bucket's lifecycle rules cover ({}); \
             add it to `originals_retention_choices` in Terraform first",
            choices.join(", ")
        ))
    }

    /// The retention of a tenant's originals, in days; `0`: forever.
    ///
    /// # Errors
    /// Database errors.
    pub async fn days_for(&self, db: &DatabaseConnection, tenant: Uuid) -> Result<u32, DbErr> {
        let own: Option<Option<i32>> = tenants::Entity::find_by_id(tenant)
            .select_only()
            .column(tenants::Column::OriginalsRetentionDays)
            .into_tuple()
            .one(db)
            .await?;
        Ok(match own.flatten() {
            Some(days) => u32::try_from(days).unwrap_or(0),
            None => self.default_days,
        })
    }
}

/// When an original uploaded at `uploaded_at`, whose job succeeded at
/// `succeeded_at`, expires under a retention of `days` (`None`: never).
pub fn expiry(uploaded_at: DateTime<Utc>, succeeded_at: DateTime<Utc>, days: u32) -> Option<DateTime<Utc>> {
    (days > 0).then(|| (uploaded_at + TimeDelta::days(i64::from(days))).max(succeeded_at))
}

/// Sets (or, under no retention, clears) when an image's original expires.
///
/// # Errors
/// Database errors.
pub async fn set_expiry(
    db: &impl sea_orm::ConnectionTrait,
    image_id: Uuid,
    days: u32,
    succeeded_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    // Only a retention needs the upload time; none clears the expiry outright.
    let expires_at = if days == 0 {
        None
    } else {
        let uploaded_at: Option<DateTime<Utc>> = images::Entity::find_by_id(image_id)
            .select_only()
            .column(images::Column::CreatedAt)
            .into_tuple()
            .one(db)
            .await?;
        let Some(uploaded_at) = uploaded_at else { return Ok(()) };
        expiry(uploaded_at, succeeded_at, days)
    };
    images::Entity::update_many()
        .col_expr(images::Column::OriginalExpiresAt, Expr::value(expires_at))
        .filter(images::Column::Id.eq(image_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Removes the originals that expired by `now` (at most `limit`), and
/// returns how many. Each is marked removed, and its bytes are taken off its
/// tenant's count, in the same transaction; the object goes first, so a
/// store that fails leaves the image for the next sweep.
///
/// # Errors
/// Database errors; a store that fails only skips that image.
pub async fn sweep_originals(backends: &Backends, now: DateTime<Utc>, limit: u64) -> Result<usize, DbErr> {
    let due = images::Entity::find()
        .filter(images::Column::OriginalExpiresAt.lte(now))
        .filter(images::Column::OriginalRemovedAt.is_null())
        .order_by_asc(images::Column::OriginalExpiresAt)
        .limit(limit)
        .all(&backends.db)
        .await?;
    let mut removed = 0;
    for image in due {
        if let Err(err) = backends.store.delete(&image.source_key).await {
            tracing::warn!(image_id = %image.id, error = %err, "could not remove an expired original");
            continue;
        }
        let txn = backends.db.begin().await?;
        let marked = images::Entity::update_many()
            .col_expr(images::Column::OriginalRemovedAt, Expr::value(now))
            .filter(images::Column::Id.eq(image.id))
            .filter(images::Column::OriginalRemovedAt.is_null())
            .exec(&txn)
            .await?;
        // Another sweeper may have marked it between the read and here.
        if marked.rows_affected == 1 {
            crate::quota::add_bytes(image.tenant_id, -image.bytes).exec(&txn).await?;
            removed += 1;
        }
        txn.commit().await?;
        backends.cache.forget(&[cache::image_key(image.tenant_id, image.id)]).await;
    }
    Ok(removed)
}

/// Removes the variants whose preset has a current version (`current`: name
/// and version) that was stored for the image at least `grace` before `now`
/// (at most `limit` of them), and returns how many. Variants of presets no
/// longer configured are kept: nothing has replaced them.
///
/// # Errors
/// Database errors; a store that fails only skips that variant.
pub async fn sweep_stale_variants(
    backends: &Backends,
    current: &[(String, String)],
    grace: TimeDelta,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<usize, DbErr> {
    let mut removed = 0;
    for (preset, version) in current {
        let replacements = variants::Entity::find()
            .filter(variants::Column::Preset.eq(preset))
            .filter(variants::Column::PresetVersion.eq(version))
            .filter(variants::Column::CreatedAt.lte(now - grace));
        let stale = variants::Entity::find()
            .filter(variants::Column::Preset.eq(preset))
            .filter(variants::Column::PresetVersion.ne(version))
            .filter(variants::Column::ImageId.in_subquery(sea_orm::QueryTrait::into_query(
                replacements.select_only().column(variants::Column::ImageId),
            )))
            .limit(limit)
            .all(&backends.db)
            .await?;
        for variant in stale {
            if let Err(err) = backends.store.delete(&variant.object_key).await {
                tracing::warn!(key = %variant.object_key, error = %err, "could not remove a stale variant");
                continue;
            }
            if let Some(tenant) = remove_variant_row(&backends.db, &variant).await? {
                backends.cache.forget(&[cache::image_key(tenant, variant.image_id)]).await;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Deletes a variant's row and takes its bytes off its tenant's count.
/// Returns the tenant when this call deleted it.
async fn remove_variant_row(db: &DatabaseConnection, variant: &variants::Model) -> Result<Option<Uuid>, DbErr> {
    let txn = db.begin().await?;
    let deleted = variants::Entity::delete_by_id(variant.id).exec(&txn).await?;
    let tenant: Option<Uuid> = images::Entity::find_by_id(variant.image_id)
        .select_only()
        .column(images::Column::TenantId)
        .into_tuple()
        .one(&txn)
        .await?;
    let tenant = tenant.filter(|_| deleted.rows_affected == 1);
    if let Some(tenant) = tenant {
        crate::quota::add_bytes(tenant, -variant.bytes).exec(&txn).await?;
    }
    txn.commit().await?;
    Ok(tenant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_original_expires_days_after_upload_and_never_before_its_job_succeeded() {
        let uploaded = Utc::now();
        assert_eq!(expiry(uploaded, uploaded, 0), None);
        let soon = uploaded + TimeDelta::seconds(5);
        assert_eq!(expiry(uploaded, soon, 30), Some(uploaded + TimeDelta::days(30)));
        let late = uploaded + TimeDelta::days(40);
        assert_eq!(expiry(uploaded, late, 30), Some(late));
    }

    #[test]
    fn a_retention_must_be_one_the_bucket_covers_when_it_names_them() {
        let any = Retention::default();
        assert!(any.check(7).is_ok());
        let covered = Retention { choices: vec![30, 90], ..Retention::default() };
        assert!(covered.check(0).is_ok());
        assert!(covered.check(90).is_ok());
        assert!(covered.check(7).expect_err("7 is not covered").contains("30, 90"));
    }
}
