//! What the operators' replays need besides the state machine: filtered
//! pages of jobs and images, the jobs a replay or a preset backfill creates,
//! the audit trail, and the cursors that let a long run resume.

use chrono::Utc;
use entities::jobs::{self, JobStatus};
use entities::{images, job_audit, operator_cursors, variants};
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, TransactionTrait,
};
use uuid::Uuid;

use super::intake::queued_job;
use super::queries::find_job;
use super::transitions::Transition;

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
    /// Of this tenant; every tenant's when `None`.
    pub tenant_id: Option<Uuid>,
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
    if let Some(tenant) = filter.tenant_id {
        query = query.filter(jobs::Column::TenantId.eq(tenant));
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
        // Without its original an image cannot be made again.
        .filter(images::Column::OriginalRemovedAt.is_null())
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

/// Whether retention has removed the image's original.
///
/// # Errors
/// Database errors.
pub async fn original_removed(db: &DatabaseConnection, image_id: Uuid) -> Result<bool, DbErr> {
    let removed: Option<Option<chrono::DateTime<chrono::Utc>>> = images::Entity::find_by_id(image_id)
        .select_only()
        .column(images::Column::OriginalRemovedAt)
        .into_tuple()
        .one(db)
        .await?;
    Ok(removed.flatten().is_some())
}

/// The statuses of a job that has not ended yet and may still run.
fn pending() -> impl Iterator<Item = &'static str> {
    Transition::Start.from().iter().map(|s| s.as_str())
}

/// Whether a job making `presets` for the image is still queued or running.
///
/// # Errors
/// Database errors.
pub async fn pending_job_for(db: &DatabaseConnection, image_id: Uuid, presets: &str) -> Result<bool, DbErr> {
    let pending = jobs::Entity::find()
        .filter(jobs::Column::ImageId.eq(image_id))
        .filter(jobs::Column::Presets.eq(presets))
        .filter(jobs::Column::Status.is_in(pending()))
        .one(db)
        .await?;
    Ok(pending.is_some())
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
        .filter(jobs::Column::Status.is_in(pending()))
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
        ..queued_job(id, original.tenant_id, original.image_id)
    })
    .exec_without_returning(&txn)
    .await?;
    audit(&txn, original.id, "replayed", &format!("{detail}; new job {id}")).await?;
    let job = find_job(&txn, id).await?;
    txn.commit().await?;
    Ok(job)
}

/// Records a new queued job that makes `presets` for an existing image; the
/// job belongs to the image's tenant.
///
/// # Errors
/// Database errors, and an image that no longer exists.
pub async fn create_preset_job(db: &DatabaseConnection, image_id: Uuid, presets: &str) -> Result<jobs::Model, DbErr> {
    let image = images::Entity::find_by_id(image_id)
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("image {image_id}")))?;
    let id = Uuid::now_v7();
    let job = jobs::ActiveModel { presets: Set(Some(presets.to_owned())), ..queued_job(id, image.tenant_id, image_id) };
    jobs::Entity::insert(job).exec_without_returning(db).await?;
    find_job(db, id).await?.ok_or_else(|| DbErr::RecordNotFound(format!("job {id} after insert")))
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
