//! Database reads and writes shared by the API and the worker.
//!
//! Every state change of a job is a conditional update (`… WHERE status IN
//! …`), so two workers holding the same redelivered message cannot both move
//! a job, and the caller learns from the row count whether it was the one.

use chrono::Utc;
use entities::jobs::{self, JobStatus};
use entities::{images, job_audit, operator_cursors, variants};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, SqlErr, TransactionTrait,
};
use uuid::Uuid;

/// What the API records for an accepted upload.
#[derive(Clone, Debug)]
pub struct NewUpload {
    /// The new image's id.
    pub image_id: Uuid,
    /// The new job's id.
    pub job_id: Uuid,
    /// Where the original was stored.
    pub source_key: String,
    /// Hex SHA-256 of the original.
    pub sha256: String,
    /// Size of the original.
    pub bytes: i64,
    /// The client's `Idempotency-Key` (scoped to its API key), if any.
    pub idempotency_key: Option<String>,
    /// With an idempotency key: the digest of what was asked for.
    pub request_fingerprint: Option<String>,
    /// The API key that made the request.
    pub api_key_id: Option<Uuid>,
    /// Whether the bytes are still to come through a presigned upload (the
    /// job waits as `awaiting_upload`) rather than stored already (`queued`).
    pub awaiting_upload: bool,
}

/// A new `queued` job row for an image.
fn queued_job(id: Uuid, image_id: Uuid) -> jobs::ActiveModel {
    let now = Utc::now();
    jobs::ActiveModel {
        id: Set(id),
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

/// Records an image and its queued job in one transaction.
///
/// # Errors
/// Database errors, including a duplicate idempotency key.
pub async fn record_upload(db: &DatabaseConnection, upload: NewUpload) -> Result<jobs::Model, DbErr> {
    let now = Utc::now();
    let txn = db.begin().await?;
    images::Entity::insert(images::ActiveModel {
        id: Set(upload.image_id),
        source_key: Set(upload.source_key),
        sha256: Set(upload.sha256),
        bytes: Set(upload.bytes),
        format: Set(None),
        width: Set(None),
        height: Set(None),
        created_at: Set(now),
    })
    .exec_without_returning(&txn)
    .await?;
    let status = if upload.awaiting_upload { JobStatus::AwaitingUpload } else { JobStatus::Queued };
    let job = jobs::ActiveModel {
        status: Set(status),
        idempotency_key: Set(upload.idempotency_key),
        request_fingerprint: Set(upload.request_fingerprint),
        api_key_id: Set(upload.api_key_id),
        ..queued_job(upload.job_id, upload.image_id)
    };
    let job = jobs::Entity::insert(job).exec_with_returning(&txn).await?;
    txn.commit().await?;
    Ok(job)
}

/// Moves a job whose presigned upload arrived from `awaiting_upload` to
/// `queued`, and records the upload's size (and hash, when known). Returns the
/// job if this call moved it; `None` when it was not awaiting its upload (a
/// repeated notification, or an expired upload).
///
/// # Errors
/// Database errors.
pub async fn start_uploaded_job(
    db: &DatabaseConnection,
    job_id: Uuid,
    bytes: i64,
    sha256: Option<String>,
) -> Result<Option<jobs::Model>, DbErr> {
    let txn = db.begin().await?;
    let moved = jobs::Entity::update_many()
        .col_expr(jobs::Column::Status, Expr::value(JobStatus::Queued.as_str()))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(jobs::Column::Id.eq(job_id))
        .filter(jobs::Column::Status.eq(JobStatus::AwaitingUpload.as_str()))
        .exec(&txn)
        .await?;
    if moved.rows_affected != 1 {
        txn.rollback().await?;
        return Ok(None);
    }
    let job = find_job(&txn, job_id).await?.ok_or_else(|| DbErr::RecordNotFound(format!("job {job_id}")))?;
    let mut image = images::Entity::update_many().col_expr(images::Column::Bytes, Expr::value(bytes));
    if let Some(sha256) = sha256 {
        image = image.col_expr(images::Column::Sha256, Expr::value(sha256));
    }
    image.filter(images::Column::Id.eq(job.image_id)).exec(&txn).await?;
    txn.commit().await?;
    Ok(Some(job))
}

/// Fails the jobs whose presigned upload never came: `awaiting_upload` and
/// created before `cutoff`. Returns the jobs it failed.
///
/// # Errors
/// Database errors.
pub async fn expire_uploads(
    db: &DatabaseConnection,
    cutoff: chrono::DateTime<Utc>,
    limit: u64,
) -> Result<Vec<jobs::Model>, DbErr> {
    let stale = jobs::Entity::find()
        .filter(jobs::Column::Status.eq(JobStatus::AwaitingUpload.as_str()))
        .filter(jobs::Column::CreatedAt.lt(cutoff))
        .limit(limit)
        .all(db)
        .await?;
    let mut expired = Vec::with_capacity(stale.len());
    for job in stale {
        let now = Utc::now();
        let moved = jobs::Entity::update_many()
            .col_expr(jobs::Column::Status, Expr::value(JobStatus::Failed.as_str()))
            .col_expr(jobs::Column::ErrorCode, Expr::value("upload-expired"))
            .col_expr(jobs::Column::ErrorMessage, Expr::value("the presigned upload was not used before it expired"))
            .col_expr(jobs::Column::FinishedAt, Expr::value(now))
            .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
            .filter(jobs::Column::Id.eq(job.id))
            .filter(jobs::Column::Status.eq(JobStatus::AwaitingUpload.as_str()))
            .exec(db)
            .await?;
        if moved.rows_affected == 1 {
            expired.push(job);
        }
    }
    Ok(expired)
}

/// One job by id.
///
/// # Errors
/// Database errors.
pub async fn find_job(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<jobs::Model>, DbErr> {
    jobs::Entity::find_by_id(id).one(db).await
}

/// Newest jobs first, optionally of one status and created since an
/// instant, continuing below the id `before` (keyset pagination: the cost of
/// a page does not grow with how deep it is).
///
/// # Errors
/// Database errors.
pub async fn list_jobs(
    db: &DatabaseConnection,
    status: Option<JobStatus>,
    since: Option<chrono::DateTime<Utc>>,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<jobs::Model>, DbErr> {
    let mut query = jobs::Entity::find().order_by_desc(jobs::Column::Id).limit(limit);
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

/// Frees a job's idempotency key, so the client's retry of a request that
/// failed (a 503) makes a new job instead of replaying the failed one.
///
/// # Errors
/// Database errors.
pub async fn release_idempotency_key(db: &DatabaseConnection, job_id: Uuid) -> Result<(), DbErr> {
    jobs::Entity::update_many()
        .col_expr(jobs::Column::IdempotencyKey, Expr::value(Option::<String>::None))
        .filter(jobs::Column::Id.eq(job_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The job recorded with a client's (or an S3 upload's) idempotency key.
///
/// # Errors
/// Database errors.
pub async fn find_job_by_idempotency_key(db: &DatabaseConnection, key: &str) -> Result<Option<jobs::Model>, DbErr> {
    jobs::Entity::find().filter(jobs::Column::IdempotencyKey.eq(key)).one(db).await
}

/// Whether an insert failed on a unique constraint (a duplicate).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// One image and its variants, largest first.
///
/// # Errors
/// Database errors.
pub async fn find_image(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Option<(images::Model, Vec<variants::Model>)>, DbErr> {
    let Some(image) = images::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let variants = image_variants(db, id).await?;
    Ok(Some((image, variants)))
}

/// An image's variants, largest first.
///
/// # Errors
/// Database errors.
pub async fn image_variants(db: &DatabaseConnection, image_id: Uuid) -> Result<Vec<variants::Model>, DbErr> {
    variants::Entity::find()
        .filter(variants::Column::ImageId.eq(image_id))
        .order_by_desc(variants::Column::Width)
        .order_by_asc(variants::Column::Preset)
        .all(db)
        .await
}

/// The newest variant of an image for a preset.
///
/// # Errors
/// Database errors.
pub async fn find_variant(
    db: &DatabaseConnection,
    image_id: Uuid,
    preset: &str,
) -> Result<Option<variants::Model>, DbErr> {
    variants::Entity::find()
        .filter(variants::Column::ImageId.eq(image_id))
        .filter(variants::Column::Preset.eq(preset))
        .order_by_desc(variants::Column::CreatedAt)
        .one(db)
        .await
}

/// The outcome of trying to start a job.
#[derive(Clone, Debug)]
pub enum Claim {
    /// The job moved to `processing`; this worker should do the work.
    Started(jobs::Model),
    /// The job had already reached a final state; do not work on it again.
    Finished(jobs::Model),
    /// No such job.
    Missing,
}

/// Moves a `queued` (or abandoned `processing`) job to `processing` and
/// counts the attempt. A `dead` job's message only comes back from the
/// dead-letter queue (an operator's redrive), so such a job is revived
/// first, with an audit entry.
///
/// # Errors
/// Database errors.
pub async fn claim_job(db: &DatabaseConnection, id: Uuid) -> Result<Claim, DbErr> {
    // The common case, a queued job, is one statement.
    if let Some(job) = start_job(db, id).await? {
        return Ok(Claim::Started(job));
    }
    match find_job(db, id).await? {
        None => Ok(Claim::Missing),
        Some(job) if job.status == JobStatus::Dead => {
            revive_dead_job(db, id, "revived", "its message came back from the dead-letter queue").await?;
            Ok(match start_job(db, id).await? {
                Some(job) => Claim::Started(job),
                None => find_job(db, id).await?.map_or(Claim::Missing, Claim::Finished),
            })
        }
        Some(job) => Ok(Claim::Finished(job)),
    }
}

/// Moves a queued (or interrupted) job to `processing` and counts the
/// attempt; returns the job as it now stands, or `None` if it was in no
/// state to start.
async fn start_job(db: &DatabaseConnection, id: Uuid) -> Result<Option<jobs::Model>, DbErr> {
    let now = Utc::now();
    let started = jobs::Entity::update_many()
        .col_expr(jobs::Column::Status, Expr::value(JobStatus::Processing.as_str()))
        .col_expr(jobs::Column::Attempts, Expr::col(jobs::Column::Attempts).add(1))
        .col_expr(jobs::Column::StartedAt, Expr::value(now))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        .filter(jobs::Column::Id.eq(id))
        .filter(jobs::Column::Status.is_in([JobStatus::Queued.as_str(), JobStatus::Processing.as_str()]))
        .exec_with_returning(db)
        .await?;
    Ok(started.into_iter().next())
}

/// What decoding taught us about an original.
#[derive(Clone, Debug)]
pub struct ImageFacts {
    /// Detected format.
    pub format: String,
    /// Upright width.
    pub width: i32,
    /// Upright height.
    pub height: i32,
    /// Hex SHA-256 of the original.
    pub sha256: String,
}

/// A variant to record.
#[derive(Clone, Debug)]
pub struct NewVariant {
    /// Preset name.
    pub preset: String,
    /// Preset version.
    pub preset_version: String,
    /// Output format.
    pub format: String,
    /// Width.
    pub width: i32,
    /// Height.
    pub height: i32,
    /// Size in bytes.
    pub bytes: i64,
    /// Object key.
    pub object_key: String,
}

/// Records the image's facts and variants and marks the job `succeeded`, all
/// in one transaction. Returns the succeeded job if this call moved it
/// (`None`: it was no longer `processing`, and nothing was written).
///
/// # Errors
/// Database errors; the transaction is rolled back.
pub async fn complete_job(
    db: &DatabaseConnection,
    job_id: Uuid,
    image_id: Uuid,
    facts: ImageFacts,
    new_variants: Vec<NewVariant>,
) -> Result<Option<jobs::Model>, DbErr> {
    let now = Utc::now();
    let txn = db.begin().await?;
    let moved = jobs::Entity::update_many()
        .col_expr(jobs::Column::Status, Expr::value(JobStatus::Succeeded.as_str()))
        .col_expr(jobs::Column::ErrorCode, Expr::value(Option::<String>::None))
        .col_expr(jobs::Column::ErrorMessage, Expr::value(Option::<String>::None))
        .col_expr(jobs::Column::FinishedAt, Expr::value(now))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        .filter(jobs::Column::Id.eq(job_id))
        .filter(jobs::Column::Status.eq(JobStatus::Processing.as_str()))
        .exec_with_returning(&txn)
        .await?;
    let Some(job) = moved.into_iter().next() else {
        txn.rollback().await?;
        return Ok(None);
    };
    images::Entity::update_many()
        .col_expr(images::Column::Format, Expr::value(facts.format))
        .col_expr(images::Column::Width, Expr::value(facts.width))
        .col_expr(images::Column::Height, Expr::value(facts.height))
        .col_expr(images::Column::Sha256, Expr::value(facts.sha256))
        .filter(images::Column::Id.eq(image_id))
        .exec(&txn)
        .await?;
    let rows = new_variants.into_iter().map(|v| variants::ActiveModel {
        image_id: Set(image_id),
        preset: Set(v.preset),
        preset_version: Set(v.preset_version),
        format: Set(v.format),
        width: Set(v.width),
        height: Set(v.height),
        bytes: Set(v.bytes),
        object_key: Set(v.object_key),
        created_at: Set(now),
        ..Default::default()
    });
    // A replay of the same preset version overwrites the row it made before.
    variants::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([variants::Column::ImageId, variants::Column::Preset, variants::Column::PresetVersion])
                .update_columns([
                    variants::Column::Format,
                    variants::Column::Width,
                    variants::Column::Height,
                    variants::Column::Bytes,
                    variants::Column::ObjectKey,
                ])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    txn.commit().await?;
    Ok(Some(job))
}

/// Ends a job that has not finished yet as `failed` or `dead`, with the
/// error. Returns whether this call moved it.
///
/// # Errors
/// Database errors.
pub async fn finish_with_error(
    db: &DatabaseConnection,
    job_id: Uuid,
    status: JobStatus,
    code: &str,
    message: &str,
) -> Result<bool, DbErr> {
    let now = Utc::now();
    let moved = jobs::Entity::update_many()
        .col_expr(jobs::Column::Status, Expr::value(status.as_str()))
        .col_expr(jobs::Column::ErrorCode, Expr::value(code))
        .col_expr(jobs::Column::ErrorMessage, Expr::value(message))
        .col_expr(jobs::Column::FinishedAt, Expr::value(now))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        .filter(jobs::Column::Id.eq(job_id))
        .filter(jobs::Column::Status.is_in([JobStatus::Queued.as_str(), JobStatus::Processing.as_str()]))
        .exec(db)
        .await?;
    Ok(moved.rows_affected == 1)
}

/// Keeps the last transient error on a job that will be retried.
///
/// # Errors
/// Database errors.
pub async fn record_retry(db: &DatabaseConnection, job_id: Uuid, code: &str, message: &str) -> Result<(), DbErr> {
    jobs::Entity::update_many()
        .col_expr(jobs::Column::ErrorCode, Expr::value(code))
        .col_expr(jobs::Column::ErrorMessage, Expr::value(message))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(jobs::Column::Id.eq(job_id))
        .filter(jobs::Column::Status.eq(JobStatus::Processing.as_str()))
        .exec(db)
        .await?;
    Ok(())
}

/// Records that the job's outcome event went out. Returns false when it had
/// been recorded already.
///
/// # Errors
/// Database errors.
pub async fn mark_event_published(db: &DatabaseConnection, job_id: Uuid) -> Result<bool, DbErr> {
    let moved = jobs::Entity::update_many()
        .col_expr(jobs::Column::EventPublishedAt, Expr::value(Utc::now()))
        .filter(jobs::Column::Id.eq(job_id))
        .filter(jobs::Column::EventPublishedAt.is_null())
        .exec(db)
        .await?;
    Ok(moved.rows_affected == 1)
}

/// Writes one audit entry.
///
/// # Errors
/// Database errors.
pub async fn audit(db: &impl ConnectionTrait, job_id: Uuid, action: &str, detail: &str) -> Result<(), DbErr> {
    job_audit::Entity::insert(job_audit::ActiveModel {
        job_id: Set(job_id),
        action: Set(action.to_owned()),
        detail: Set(detail.to_owned()),
        created_at: Set(Utc::now()),
        ..Default::default()
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Moves a `dead` job back to `queued`, ready to announce its new outcome,
/// and audits it. Returns whether it was dead.
///
/// # Errors
/// Database errors.
pub async fn revive_dead_job(db: &DatabaseConnection, job_id: Uuid, action: &str, detail: &str) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    let moved = jobs::Entity::update_many()
        .col_expr(jobs::Column::Status, Expr::value(JobStatus::Queued.as_str()))
        .col_expr(jobs::Column::FinishedAt, Expr::value(Option::<chrono::DateTime<Utc>>::None))
        .col_expr(jobs::Column::EventPublishedAt, Expr::value(Option::<chrono::DateTime<Utc>>::None))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(jobs::Column::Id.eq(job_id))
        .filter(jobs::Column::Status.eq(JobStatus::Dead.as_str()))
        .exec(&txn)
        .await?;
    if moved.rows_affected == 1 {
        audit(&txn, job_id, action, detail).await?;
    }
    txn.commit().await?;
    Ok(moved.rows_affected == 1)
}

/// Creates a new queued job that replays `original` (same image), unless a
/// replay of it is still pending. Returns the new job, or `None` when one is
/// pending.
///
/// # Errors
/// Database errors.
pub async fn create_replay(
    db: &DatabaseConnection,
    original: &jobs::Model,
    presets: Option<String>,
    detail: &str,
) -> Result<Option<jobs::Model>, DbErr> {
    let txn = db.begin().await?;
    let pending = jobs::Entity::find()
        .filter(jobs::Column::ReplayOf.eq(original.id))
        .filter(jobs::Column::Status.is_in([JobStatus::Queued.as_str(), JobStatus::Processing.as_str()]))
        .one(&txn)
        .await?;
    if pending.is_some() {
        txn.rollback().await?;
        return Ok(None);
    }
    let id = Uuid::now_v7();
    jobs::Entity::insert(jobs::ActiveModel {
        replay_of: Set(Some(original.id)),
        presets: Set(presets),
        ..queued_job(id, original.image_id)
    })
    .exec_without_returning(&txn)
    .await?;
    audit(&txn, original.id, "replayed", &format!("{detail}; new job {id}")).await?;
    let job = jobs::Entity::find_by_id(id).one(&txn).await?;
    txn.commit().await?;
    Ok(job)
}

/// Which past jobs `replay jobs` selects.
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    /// Statuses to select (`failed`, `dead`).
    pub statuses: Vec<JobStatus>,
    /// Created at or after.
    pub since: Option<chrono::DateTime<Utc>>,
    /// Created before.
    pub until: Option<chrono::DateTime<Utc>>,
    /// With this error code.
    pub error_code: Option<String>,
    /// Of this image.
    pub image_id: Option<Uuid>,
}

/// One page of jobs matching `filter`, in id order after `after`.
///
/// # Errors
/// Database errors.
pub async fn jobs_page(
    db: &DatabaseConnection,
    filter: &JobFilter,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<jobs::Model>, DbErr> {
    let mut query = jobs::Entity::find().order_by_asc(jobs::Column::Id).limit(limit);
    if !filter.statuses.is_empty() {
        query = query.filter(jobs::Column::Status.is_in(filter.statuses.iter().map(|s| s.as_str())));
    }
    if let Some(since) = filter.since {
        query = query.filter(jobs::Column::CreatedAt.gte(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(jobs::Column::CreatedAt.lt(until));
    }
    if let Some(code) = &filter.error_code {
        query = query.filter(jobs::Column::ErrorCode.eq(code.as_str()));
    }
    if let Some(image) = filter.image_id {
        query = query.filter(jobs::Column::ImageId.eq(image));
    }
    if let Some(after) = after {
        query = query.filter(jobs::Column::Id.gt(after));
    }
    query.all(db).await
}

/// One page of decoded images (in id order after `after`) whose variant for
/// `preset` at `version` is missing, or, unless `stale_only`, every decoded image.
///
/// # Errors
/// Database errors.
pub async fn images_for_preset_page(
    db: &DatabaseConnection,
    preset: &str,
    version: &str,
    stale_only: bool,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Uuid>, DbErr> {
    let mut query = images::Entity::find()
        .select_only()
        .column(images::Column::Id)
        .filter(images::Column::Format.is_not_null())
        .order_by_asc(images::Column::Id)
        .limit(limit);
    if let Some(after) = after {
        query = query.filter(images::Column::Id.gt(after));
    }
    if stale_only {
        let fresh = variants::Entity::find()
            .select_only()
            .column(variants::Column::ImageId)
            .filter(variants::Column::Preset.eq(preset))
            .filter(variants::Column::PresetVersion.eq(version))
            .into_query();
        query = query.filter(images::Column::Id.not_in_subquery(fresh));
    }
    query.into_tuple::<Uuid>().all(db).await
}

/// Whether a job making `presets` for the image is still queued or running.
///
/// # Errors
/// Database errors.
pub async fn pending_job_for(db: &DatabaseConnection, image_id: Uuid, presets: &str) -> Result<bool, DbErr> {
    let pending = jobs::Entity::find()
        .filter(jobs::Column::ImageId.eq(image_id))
        .filter(jobs::Column::Presets.eq(presets))
        .filter(jobs::Column::Status.is_in([JobStatus::Queued.as_str(), JobStatus::Processing.as_str()]))
        .one(db)
        .await?;
    Ok(pending.is_some())
}

/// Records a new queued job that makes `presets` for an existing image.
///
/// # Errors
/// Database errors.
pub async fn create_preset_job(db: &DatabaseConnection, image_id: Uuid, presets: &str) -> Result<jobs::Model, DbErr> {
    let id = Uuid::now_v7();
    let job = jobs::ActiveModel { presets: Set(Some(presets.to_owned())), ..queued_job(id, image_id) };
    jobs::Entity::insert(job).exec_without_returning(db).await?;
    find_job(db, id).await?.ok_or_else(|| DbErr::RecordNotFound(format!("job {id} after insert")))
}

/// The saved cursor of a resumable run.
///
/// # Errors
/// Database errors.
pub async fn load_cursor(db: &DatabaseConnection, name: &str) -> Result<Option<String>, DbErr> {
    Ok(operator_cursors::Entity::find_by_id(name.to_owned()).one(db).await?.map(|c| c.cursor))
}

/// Saves (or clears, with `None`) the cursor of a resumable run.
///
/// # Errors
/// Database errors.
pub async fn save_cursor(db: &DatabaseConnection, name: &str, cursor: Option<&str>) -> Result<(), DbErr> {
    operator_cursors::Entity::delete_by_id(name.to_owned()).exec(db).await?;
    if let Some(cursor) = cursor {
        operator_cursors::Entity::insert(operator_cursors::ActiveModel {
            name: Set(name.to_owned()),
            cursor: Set(cursor.to_owned()),
            updated_at: Set(Utc::now()),
        })
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}
