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

/// The longest `external_id`, in bytes.
pub const MAX_EXTERNAL_ID_BYTES: usize = 200;
/// The largest `metadata` object, in bytes of its JSON.
pub const MAX_METADATA_BYTES: usize = 4096;

/// What a client attaches to an upload: its own id for the image (unique
/// within the tenant) and a small JSON object. Both come back on the image,
/// in listings and in every event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientFields {
    /// 1 to 200 bytes, no control characters.
    pub external_id: Option<String>,
    /// A JSON object, compact, at most [`MAX_METADATA_BYTES`].
    pub metadata: Option<String>,
}

impl ClientFields {
    /// Validates what a client sent. `metadata` is JSON text.
    ///
    /// # Errors
    /// Why it is refused, for the client to read.
    pub fn parse(external_id: Option<&str>, metadata: Option<&str>) -> Result<Self, String> {
        let metadata = metadata
            .map(|text| match serde_json::from_str::<serde_json::Value>(text) {
                Ok(value @ serde_json::Value::Object(_)) => Ok(value),
                Ok(_) | Err(_) => Err("metadata must be a JSON object".to_owned()),
            })
            .transpose()?;
        Self::new(external_id.map(str::to_owned), metadata)
    }

    /// Validates an external id and an already parsed metadata value.
    ///
    /// # Errors
    /// Why it is refused, for the client to read.
    pub fn new(external_id: Option<String>, metadata: Option<serde_json::Value>) -> Result<Self, String> {
        if let Some(id) = &external_id
            && (id.is_empty() || id.len() > MAX_EXTERNAL_ID_BYTES || id.chars().any(char::is_control))
        {
            return Err(format!("external_id must be 1 to {MAX_EXTERNAL_ID_BYTES} bytes without control characters"));
        }
        let metadata = match metadata {
            None => None,
            Some(value @ serde_json::Value::Object(_)) => {
                let text = value.to_string();
                if text.len() > MAX_METADATA_BYTES {
                    return Err(format!("metadata must be at most {MAX_METADATA_BYTES} bytes of JSON"));
                }
                Some(text)
            }
            Some(_) => return Err("metadata must be a JSON object".to_owned()),
        };
        Ok(Self { external_id, metadata })
    }

    /// The metadata as JSON, for views and events.
    pub fn metadata_value(text: Option<&str>) -> Option<serde_json::Value> {
        text.and_then(|t| serde_json::from_str(t).ok())
    }
}

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
    /// The client's external id and metadata.
    pub client: ClientFields,
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
        // The span it is created in: the upload's request, an operator's run.
        trace_parent: Set(crate::trace::current()),
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
        external_id: Set(upload.client.external_id),
        metadata: Set(upload.client.metadata),
        original_expires_at: Set(None),
        original_removed_at: Set(None),
        delivery_token: Set(Some(crate::delivery::new_token())),
        thumbhash: Set(None),
        dominant_colour: Set(None),
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

/// The tenant's image with this external id, if it has one.
///
/// # Errors
/// Database errors.
pub async fn image_with_external_id(
    db: &DatabaseConnection,
    tenant: Uuid,
    external_id: &str,
) -> Result<Option<images::Model>, DbErr> {
    images::Entity::find()
        .filter(images::Column::TenantId.eq(tenant))
        .filter(images::Column::ExternalId.eq(external_id))
        .one(db)
        .await
}

/// Whether an insert failed on a unique constraint (a duplicate).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}
