//! The reads behind the API's views and the worker's events.
//!
//! What the API reads on a caller's behalf takes the caller's tenant and
//! finds nothing of another's: a foreign id reads exactly as a missing one.
//! The unscoped [`find_job`] is for the worker and the operators, which act
//! for whichever tenant owns the job.

use chrono::Utc;
use entities::jobs::{self, JobStatus};
use entities::{images, variants};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

/// One job by id, whoever owns it.
///
/// # Errors
/// Database errors.
pub async fn find_job(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<jobs::Model>, DbErr> {
    jobs::Entity::find_by_id(id).one(db).await
}

/// One of a tenant's jobs by id.
///
/// # Errors
/// Database errors.
pub async fn find_tenant_job(db: &impl ConnectionTrait, tenant: Uuid, id: Uuid) -> Result<Option<jobs::Model>, DbErr> {
    jobs::Entity::find_by_id(id).filter(jobs::Column::TenantId.eq(tenant)).one(db).await
}

/// A tenant's newest jobs first, optionally of one status and created since an
/// instant, continuing below the id `before` (keyset pagination: the cost of
/// a page does not grow with how deep it is).
///
/// # Errors
/// Database errors.
pub async fn list_jobs(
    db: &impl ConnectionTrait,
    tenant: Uuid,
    status: Option<JobStatus>,
    since: Option<chrono::DateTime<Utc>>,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<jobs::Model>, DbErr> {
    let mut query =
        jobs::Entity::find().filter(jobs::Column::TenantId.eq(tenant)).order_by_desc(jobs::Column::Id).limit(limit);
    if let Some(status) = status {
        query = query.filter(jobs::Column::Status.eq(status.as_str()));
    }
    if let Some(since) = since {
        query = query.filter(jobs::Column::CreatedAt.gte(since));
    }
    if let Some(before) = before {
        query = query.filter(jobs::Column::Id.lt(before));
    }
    query.all(db).await
}

/// The job recorded with a client's (or an S3 upload's) idempotency key.
///
/// # Errors
/// Database errors.
pub async fn find_job_by_idempotency_key(db: &impl ConnectionTrait, key: &str) -> Result<Option<jobs::Model>, DbErr> {
    jobs::Entity::find().filter(jobs::Column::IdempotencyKey.eq(key)).one(db).await
}

/// One of a tenant's images and its variants, largest first.
///
/// # Errors
/// Database errors.
pub async fn find_image(
    db: &impl ConnectionTrait,
    tenant: Uuid,
    id: Uuid,
) -> Result<Option<(images::Model, Vec<variants::Model>)>, DbErr> {
    let Some(image) = images::Entity::find_by_id(id).filter(images::Column::TenantId.eq(tenant)).one(db).await? else {
        return Ok(None);
    };
    let variants = image_variants(db, id).await?;
    Ok(Some((image, variants)))
}

/// A tenant's newest images first, each with its variants (largest first),
/// optionally only the one with an external id, continuing below the id
/// `before` (keyset pagination, as [`list_jobs`]).
///
/// # Errors
/// Database errors.
pub async fn list_images(
    db: &impl ConnectionTrait,
    tenant: Uuid,
    external_id: Option<&str>,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<(images::Model, Vec<variants::Model>)>, DbErr> {
    let mut query = images::Entity::find()
        .filter(images::Column::TenantId.eq(tenant))
        .order_by_desc(images::Column::Id)
        .limit(limit);
    if let Some(external_id) = external_id {
        query = query.filter(images::Column::ExternalId.eq(external_id));
    }
    if let Some(before) = before {
        query = query.filter(images::Column::Id.lt(before));
    }
    let page = query.all(db).await?;
    // One query for the whole page's variants, not one per image.
    let mut by_image: std::collections::HashMap<Uuid, Vec<variants::Model>> = std::collections::HashMap::new();
    for variant in variants::Entity::find()
        .filter(variants::Column::ImageId.is_in(page.iter().map(|i| i.id)))
        .order_by_desc(variants::Column::Width)
        .order_by_asc(variants::Column::Preset)
        .all(db)
        .await?
    {
        by_image.entry(variant.image_id).or_default().push(variant);
    }
    Ok(page
        .into_iter()
        .map(|image| {
            let own = by_image.remove(&image.id).unwrap_or_default();
            (image, own)
        })
        .collect())
}

/// Whether an image (of any tenant) is still recorded.
///
/// # Errors
/// Database errors.
pub async fn image_exists(db: &impl ConnectionTrait, id: Uuid) -> Result<bool, DbErr> {
    Ok(images::Entity::find_by_id(id).one(db).await?.is_some())
}

/// An image's variants, largest first.
///
/// # Errors
/// Database errors.
pub async fn image_variants(db: &impl ConnectionTrait, image_id: Uuid) -> Result<Vec<variants::Model>, DbErr> {
    variants::Entity::find()
        .filter(variants::Column::ImageId.eq(image_id))
        .order_by_desc(variants::Column::Width)
        .order_by_asc(variants::Column::Preset)
        .all(db)
        .await
}

/// The newest variant for a preset of one of a tenant's images.
///
/// # Errors
/// Database errors.
pub async fn find_variant(
    db: &impl ConnectionTrait,
    tenant: Uuid,
    image_id: Uuid,
    preset: &str,
) -> Result<Option<variants::Model>, DbErr> {
    variants::Entity::find()
        .inner_join(images::Entity)
        .filter(images::Column::TenantId.eq(tenant))
        .filter(variants::Column::ImageId.eq(image_id))
        .filter(variants::Column::Preset.eq(preset))
        .order_by_desc(variants::Column::CreatedAt)
        .one(db)
        .await
}
