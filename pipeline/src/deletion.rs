//! Deleting an image: its original, any staged upload, every variant of every
//! preset version, its jobs, its rows and its cache entries, then one
//! `image.deleted` event.
//!
//! The rows go first, in one transaction that also writes the audit record
//! ([`entities::deletions`]). From then on no reader finds the image, and a
//! worker still processing one of its jobs can no longer record it: its
//! `succeed` finds no job, and the worker deletes the variants it wrote, by
//! key (`worker::job`). The objects go next, found by their keys' prefixes
//! rather than by the rows, so a variant stored a moment before the
//! transaction is found as well. A deletion cut short (the store went away) stays pending
//! in its record: a repeated `DELETE` or the API's sweep finishes it.
//!
//! [`erase_tenant`] deletes a whole tenant the same way, image by image.

use chrono::Utc;
use entities::{api_keys, deletions, image_digests, images, job_audit, jobs, tenants, variants};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use uuid::Uuid;

use crate::backends::Backends;
use crate::event::Event;
use crate::replay::Progress;
use crate::store::StoreError;
use crate::{cache, keys};

/// Why a deletion did not finish.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// The database failed; nothing was deleted.
    #[error(transparent)]
    Db(#[from] DbErr),
    /// The store failed after the rows were gone; the deletion is pending
    /// and finishes on a retry or the API's sweep.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Deletes one of a tenant's images and everything about it. Returns the
/// audit record, or `None` when the tenant has no such image (another
/// tenant's image is `None` too). An image whose deletion was cut short is
/// finished and returned again.
///
/// # Errors
/// The database (nothing deleted) or the store (rows gone, objects pending).
pub async fn delete_image(
    backends: &Backends,
    tenant: Uuid,
    image_id: Uuid,
    requested_by: Option<Uuid>,
    env: &str,
) -> Result<Option<deletions::Model>, DeleteError> {
    let record = match delete_rows(&backends.db, tenant, image_id, requested_by).await? {
        Some(record) => record,
        None => match pending(&backends.db, tenant, image_id).await? {
            Some(record) => record,
            None => return Ok(None),
        },
    };
    finish(backends, record, env).await.map(Some)
}

/// Finishes the deletions cut short more than `grace` ago (at most `limit`
/// of them). Returns how many it finished.
///
/// # Errors
/// Database errors; a store that fails leaves that deletion for the next sweep.
pub async fn finish_pending(
    backends: &Backends,
    grace: chrono::TimeDelta,
    limit: u64,
    env: &str,
) -> Result<usize, DbErr> {
    let stale = deletions::Entity::find()
        .filter(deletions::Column::CompletedAt.is_null())
        .filter(deletions::Column::RequestedAt.lt(Utc::now() - grace))
        .order_by_asc(deletions::Column::RequestedAt)
        .limit(limit)
        .all(&backends.db)
        .await?;
    let mut finished = 0;
    for record in stale {
        let image_id = record.image_id;
        match finish(backends, record, env).await {
            Ok(_) => finished += 1,
            Err(err) => tracing::warn!(%image_id, error = %err, "deletion still pending"),
        }
    }
    Ok(finished)
}

/// What erasing a tenant found (`dry_run`) or removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Erasure {
    /// Images deleted, with everything stored and recorded about them.
    pub images: u64,
    /// API keys deleted.
    pub keys: u64,
    /// Whether this was only a count.
    pub dry_run: bool,
}

/// Why a tenant could not be erased.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    /// The default tenant holds the bootstrap key's and anonymous uploads.
    #[error("the default tenant cannot be erased")]
    DefaultTenant,
    /// An image's deletion failed; run the erasure again to go on from there.
    #[error(transparent)]
    Delete(#[from] DeleteError),
}

impl From<DbErr> for EraseError {
    fn from(err: DbErr) -> Self {
        Self::Delete(err.into())
    }
}

/// Erases a tenant: every image (as [`delete_image`] does, one at a time,
/// each announced), then its keys, then the tenant itself. It is resumable:
/// each image is gone once deleted, so a run cut short is simply run again.
/// With `dry_run` it only counts.
///
/// # Errors
/// The default tenant, or a failed deletion (what was deleted stays deleted).
pub async fn erase_tenant(
    backends: &Backends,
    tenant: &tenants::Model,
    dry_run: bool,
    progress: &dyn Progress,
    env: &str,
) -> Result<Erasure, EraseError> {
    if tenant.id == tenants::DEFAULT_TENANT {
        return Err(EraseError::DefaultTenant);
    }
    let db = &backends.db;
    let owned = images::Entity::find().filter(images::Column::TenantId.eq(tenant.id));
    let keys = api_keys::Entity::find().filter(api_keys::Column::TenantId.eq(tenant.id));
    let (image_count, key_count) = (owned.clone().count(db).await?, keys.count(db).await?);
    progress.total(image_count);
    if dry_run {
        return Ok(Erasure { images: image_count, keys: key_count, dry_run });
    }
    // Keys first, so that no new upload starts for the tenant (an API
    // process may remember a key for up to 30 s, as after a revocation).
    let mut erased = Erasure {
        keys: api_keys::Entity::delete_many()
            .filter(api_keys::Column::TenantId.eq(tenant.id))
            .exec(db)
            .await?
            .rows_affected,
        ..Erasure::default()
    };
    loop {
        let page: Vec<Uuid> =
            owned.clone().select_only().column(images::Column::Id).limit(100).into_tuple().all(db).await?;
        if page.is_empty() {
            break;
        }
        for image_id in page {
            if delete_image(backends, tenant.id, image_id, None, env).await?.is_some() {
                erased.images += 1;
            }
            progress.advance(1);
        }
    }
    // Deletions of this tenant's images cut short by an earlier run.
    let cut_short = deletions::Entity::find()
        .filter(deletions::Column::TenantId.eq(tenant.id))
        .filter(deletions::Column::CompletedAt.is_null())
        .all(db)
        .await?;
    for record in cut_short {
        finish(backends, record, env).await?;
    }
    tenants::Entity::delete_by_id(tenant.id).exec(db).await?;
    tracing::info!(tenant = %tenant.name, images = erased.images, keys = erased.keys, "tenant erased");
    Ok(erased)
}

/// The keys whose trees hold everything stored for an image.
pub fn object_trees(image_id: Uuid, job_ids: &[Uuid]) -> Vec<String> {
    let mut trees = vec![
        keys::original(image_id),
        format!("{}{image_id}", keys::VARIANTS_PREFIX),
        format!("{}{image_id}", keys::PRIVATE_PREFIX),
    ];
    trees.extend(job_ids.iter().map(|job| format!("{}{job}", keys::UPLOADS_PREFIX)));
    trees
}

fn job_ids(record: &deletions::Model) -> Vec<Uuid> {
    record.job_ids.split(',').filter_map(|id| Uuid::parse_str(id).ok()).collect()
}

/// Removes the rows of one of a tenant's images and records the deletion,
/// in one transaction. `None`: the tenant has no such image.
async fn delete_rows(
    db: &DatabaseConnection,
    tenant: Uuid,
    image_id: Uuid,
    requested_by: Option<Uuid>,
) -> Result<Option<deletions::Model>, DbErr> {
    let txn = db.begin().await?;
    // A write first (it changes nothing), so that on SQLite the transaction
    // waits for the write lock before it reads, rather than fail with
    // SQLITE_BUSY when a concurrent writer commits.
    images::Entity::update_many()
        .col_expr(images::Column::TenantId, Expr::col(images::Column::TenantId))
        .filter(images::Column::Id.eq(image_id))
        .exec(&txn)
        .await?;
    let image = images::Entity::find_by_id(image_id).filter(images::Column::TenantId.eq(tenant)).one(&txn).await?;
    let Some(image) = image else {
        txn.rollback().await?;
        return Ok(None);
    };
    let variant_bytes: i64 = variants::Entity::find()
        .filter(variants::Column::ImageId.eq(image_id))
        .all(&txn)
        .await?
        .iter()
        .map(|v| v.bytes)
        .sum();
    let job_ids: Vec<Uuid> = jobs::Entity::find()
        .select_only()
        .column(jobs::Column::Id)
        .filter(jobs::Column::ImageId.eq(image_id))
        .into_tuple()
        .all(&txn)
        .await?;
    variants::Entity::delete_many().filter(variants::Column::ImageId.eq(image_id)).exec(&txn).await?;
    job_audit::Entity::delete_many().filter(job_audit::Column::JobId.is_in(job_ids.clone())).exec(&txn).await?;
    jobs::Entity::delete_many().filter(jobs::Column::ImageId.eq(image_id)).exec(&txn).await?;
    image_digests::Entity::delete_many().filter(image_digests::Column::ImageId.eq(image_id)).exec(&txn).await?;
    images::Entity::delete_by_id(image_id).exec(&txn).await?;
    // An original removed by retention was uncounted then.
    let original_bytes = if image.original_removed_at.is_some() { 0 } else { image.bytes };
    crate::quota::add_bytes(tenant, -(original_bytes + variant_bytes)).exec(&txn).await?;
    let record = deletions::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant),
        image_id: Set(image_id),
        job_ids: Set(job_ids.iter().map(Uuid::to_string).collect::<Vec<_>>().join(",")),
        requested_by: Set(requested_by),
        requested_at: Set(Utc::now()),
        completed_at: Set(None),
        // For the `image.deleted` event only; cleared once it is out.
        external_id: Set(image.external_id.clone()),
        metadata: Set(image.metadata.clone()),
    };
    // Two concurrent deletions of one image: the second finds the first's
    // record (image ids are unique there) and leaves the work to it.
    let record = match deletions::Entity::insert(record).exec_with_returning(&txn).await {
        Ok(record) => record,
        Err(err) if crate::jobs::is_unique_violation(&err) => {
            txn.rollback().await?;
            return Ok(None);
        }
        Err(err) => return Err(err),
    };
    txn.commit().await?;
    Ok(Some(record))
}

/// A deletion of one of the tenant's images that was cut short.
async fn pending(db: &DatabaseConnection, tenant: Uuid, image_id: Uuid) -> Result<Option<deletions::Model>, DbErr> {
    deletions::Entity::find()
        .filter(deletions::Column::TenantId.eq(tenant))
        .filter(deletions::Column::ImageId.eq(image_id))
        .filter(deletions::Column::CompletedAt.is_null())
        .one(db)
        .await
}

/// Forgets the cache entries, deletes the objects, completes the record and
/// announces the deletion.
async fn finish(backends: &Backends, record: deletions::Model, env: &str) -> Result<deletions::Model, DeleteError> {
    let jobs = job_ids(&record);
    let mut entries = vec![cache::image_key(record.tenant_id, record.image_id)];
    entries.extend(jobs.iter().map(|job| cache::job_key(record.tenant_id, *job)));
    backends.cache.forget(&entries).await;
    let mut removed = 0;
    for tree in object_trees(record.image_id, &jobs) {
        removed += backends.store.delete_tree(&tree).await?;
    }
    let completed_at = Utc::now();
    let event = Event::image_deleted(&record, completed_at, env.to_owned());
    let txn = backends.db.begin().await?;
    deletions::Entity::update_many()
        .col_expr(deletions::Column::CompletedAt, Expr::value(completed_at))
        // The audit record keeps no client data once the event has it.
        .col_expr(deletions::Column::ExternalId, Expr::value(Option::<String>::None))
        .col_expr(deletions::Column::Metadata, Expr::value(Option::<String>::None))
        .filter(deletions::Column::Id.eq(record.id))
        .exec(&txn)
        .await?;
    let recorded = backends.outbox.record(&txn, &event).await?;
    txn.commit().await?;
    backends.outbox.committed(recorded);
    tracing::info!(image_id = %record.image_id, objects = removed, "image deleted");
    if let Err(err) = backends.notifier.publish(&event).await {
        tracing::warn!(image_id = %record.image_id, error = %err, "the image.deleted event was not published");
    }
    Ok(deletions::Model { completed_at: Some(completed_at), external_id: None, metadata: None, ..record })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{Mode, Placement};

    #[test]
    fn an_images_trees_are_its_original_its_variants_and_its_staged_uploads() {
        let (image, job) = (Uuid::now_v7(), Uuid::now_v7());
        let trees = object_trees(image, &[job]);
        let expected = vec![
            keys::original(image),
            format!("variants/{image}"),
            format!("private/{image}"),
            format!("uploads/{job}"),
        ];
        assert_eq!(trees, expected);
        // Every variant key of the image lies in a tree, whichever its mode.
        for (mode, tree) in [(Mode::Public, &trees[1]), (Mode::Signed, &trees[2])] {
            let placement = Placement { mode, token: "t".into() };
            assert!(placement.key(image, "thumb", "1a2b3c4d", "webp").starts_with(&format!("{tree}/")));
        }
    }
}
