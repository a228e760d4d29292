//! New jobs from uploads. The original's key is always
//! [`keys::original`](crate::keys::original) of the new image: it is derived
//! here, never passed in.

use chrono::Utc;
use entities::jobs::{self, JobStatus};
use entities::{image_digests, images};
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, SqlErr, TransactionTrait};
use uuid::Uuid;

use super::queries::find_job_by_idempotency_key;
use crate::keys;

/// What the API (or the worker, for an S3 upload) records for an accepted upload.
#[derive(Clone, Debug)]
pub struct NewUpload {
    /// The tenant the image and its job belong to.
    pub tenant_id: Uuid,
    /// The new image's id.
    pub image_id: Uuid,
    /// The new job's id.
    pub job_id: Uuid,
    /// Hex SHA-256 of the original (empty until known).
    pub sha256: String,
    /// Size of the original.
    pub bytes: i64,
    /// The client's `Idempotency-Key` (scoped to its API key), or an S3
    /// upload's bucket, key and ETag, if any.
    pub idempotency_key: Option<String>,
    /// With an idempotency key: the digest of what was asked for.
    pub request_fingerprint: Option<String>,
    /// The API key that made the request.
    pub api_key_id: Option<Uuid>,
    /// Whether the bytes are still to come through a presigned upload (the
    /// job waits as `awaiting_upload`) rather than stored already (`queued`).
    pub awaiting_upload: bool,
    /// Whether an image of the tenant with the same `sha256` should be
    /// returned instead of a new one (the tenant deduplicates, and the
    /// digest is known).
    pub deduplicate: bool,
}

/// A new `queued` job row for an image of a tenant.
pub(crate) fn queued_job(id: Uuid, tenant_id: Uuid, image_id: Uuid) -> jobs::ActiveModel {
    let now = Utc::now();
    jobs::ActiveModel {
        id: Set(id),
        tenant_id: Set(tenant_id),
        image_id: Set(image_id),
        status: Set(JobStatus::Queued),
        attempts: Set(0),
        error_code: Set(None),
        error_message: Set(None),
        idempotency_key: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        started_at: Set(None),
        finished_at: Set(None),
        event_published_at: Set(None),
        replay_of: Set(None),
        presets: Set(None),
        api_key_id: Set(None),
        request_fingerprint: Set(None),
    }
}

/// Records an image and its job in one transaction.
///
/// # Errors
/// Database errors, including a duplicate idempotency key
/// ([`is_unique_violation`]); [`record_or_find`] handles that one.
pub async fn record_upload(db: &DatabaseConnection, upload: NewUpload) -> Result<jobs::Model, DbErr> {
    let txn = db.begin().await?;
    images::Entity::insert(images::ActiveModel {
        id: Set(upload.image_id),
        tenant_id: Set(upload.tenant_id),
        source_key: Set(keys::original(upload.image_id)),
        sha256: Set(upload.sha256.clone()),
        bytes: Set(upload.bytes),
        format: Set(None),
        width: Set(None),
        height: Set(None),
        created_at: Set(Utc::now()),
    })
    .exec_without_returning(&txn)
    .await?;
    if upload.deduplicate && !upload.sha256.is_empty() {
        // Its primary key makes a concurrent upload of the same bytes fail
        // here, once this transaction commits; it then finds this image.
        image_digests::Entity::insert(image_digests::ActiveModel {
            tenant_id: Set(upload.tenant_id),
            sha256: Set(upload.sha256),
            image_id: Set(upload.image_id),
        })
        .exec_without_returning(&txn)
        .await?;
    }
    let status = if upload.awaiting_upload { JobStatus::AwaitingUpload } else { JobStatus::Queued };
    let job = jobs::ActiveModel {
        status: Set(status),
        idempotency_key: Set(upload.idempotency_key),
        request_fingerprint: Set(upload.request_fingerprint),
        api_key_id: Set(upload.api_key_id),
        ..queued_job(upload.job_id, upload.tenant_id, upload.image_id)
    };
    let job = jobs::Entity::insert(job).exec_with_returning(&txn).await?;
    txn.commit().await?;
    Ok(job)
}

/// Whether [`record_or_find`] made the job or found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// This call recorded the upload.
    New,
    /// A request with the same idempotency key got there first; the job is theirs.
    Existing,
    /// The tenant has an image with these bytes already; the job is its newest.
    Duplicate,
}

/// Records an upload; when its idempotency key is taken (a concurrent
/// request, or a repeated notification, got there first), returns the job
/// that holds it instead; when the tenant already has an image with these
/// bytes (and deduplicates), returns that image's newest job.
///
/// # Errors
/// Database errors, and a duplicate whose job vanished before it was read.
pub async fn record_or_find(db: &DatabaseConnection, upload: NewUpload) -> Result<(jobs::Model, Recorded), DbErr> {
    let key = upload.idempotency_key.clone();
    let digest = (upload.deduplicate && !upload.sha256.is_empty()).then(|| (upload.tenant_id, upload.sha256.clone()));
    let err = match record_upload(db, upload).await {
        Ok(job) => return Ok((job, Recorded::New)),
        Err(err) if is_unique_violation(&err) => err,
        Err(err) => return Err(err),
    };
    if let Some(key) = key
        && let Some(job) = find_job_by_idempotency_key(db, &key).await?
    {
        return Ok((job, Recorded::Existing));
    }
    if let Some((tenant, sha256)) = digest
        && let Some(job) = newest_job_with_digest(db, tenant, &sha256).await?
    {
        return Ok((job, Recorded::Duplicate));
    }
    Err(err)
}

/// The newest job of the tenant's image with these bytes, if it has one.
///
/// # Errors
/// Database errors.
pub async fn newest_job_with_digest(
    db: &DatabaseConnection,
    tenant: Uuid,
    sha256: &str,
) -> Result<Option<jobs::Model>, DbErr> {
    let Some(digest) = image_digests::Entity::find_by_id((tenant, sha256.to_owned())).one(db).await? else {
        return Ok(None);
    };
    jobs::Entity::find().filter(jobs::Column::ImageId.eq(digest.image_id)).order_by_desc(jobs::Column::Id).one(db).await
}

/// Whether an insert failed on a unique constraint (a duplicate).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}
