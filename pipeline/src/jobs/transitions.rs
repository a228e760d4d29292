//! The job's state machine. [`Transition`] says which states each move may
//! leave from and where it goes; [`Jobs`] carries the moves out, one
//! conditional update each, and clears the read cache's views of every job
//! it moved. A move to a final state records the outcome's webhook
//! deliveries ([`crate::outbox`]) in its own transaction.
//!
//! ```text
//! awaiting_upload ──UploadArrived──▶ queued ──Start──▶ processing ──Succeed──▶ succeeded
//!        │  ◀──UploadReleased──────────┤   ◀──Start (redelivery)──┤
//!        └──UploadExpired──▶ failed ◀──┴──────────Fail────────────┤
//!                                    dead ◀────────Die────────────┘
//!                                      └──Revive──▶ queued
//! ```

use chrono::Utc;
use entities::jobs::{self, JobStatus};
use entities::{images, variants};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect, TransactionTrait,
    UpdateMany,
};
use uuid::Uuid;

use super::operator::audit;
use super::queries::find_job;
use crate::cache::{self, Cache};
use crate::outbox::Outbox;

/// One move of a job from some states to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// A presigned upload's bytes arrived.
    UploadArrived,
    /// A presigned upload never came (`upload-expired`).
    UploadExpired,
    /// A presigned upload was claimed but could not be placed: the job
    /// waits again, for the client's retry of the same URL.
    UploadReleased,
    /// A worker starts the job, or restarts one whose worker went away.
    Start,
    /// Every variant is stored and recorded.
    Succeed,
    /// A permanent failure: this input will never work.
    Fail,
    /// Transient failures used up every allowed attempt.
    Die,
    /// An operator's redrive brings a dead job back.
    Revive,
}

impl Transition {
    /// The states the job may be in for this move to happen.
    pub fn from(self) -> &'static [JobStatus] {
        match self {
            Self::UploadArrived | Self::UploadExpired => &[JobStatus::AwaitingUpload],
            Self::Start | Self::Fail | Self::Die => &[JobStatus::Queued, JobStatus::Processing],
            Self::Succeed => &[JobStatus::Processing],
            Self::Revive => &[JobStatus::Dead],
            Self::UploadReleased => &[JobStatus::Queued],
        }
    }

    /// The state the job is in after it.
    pub fn to(self) -> JobStatus {
        match self {
            Self::UploadArrived | Self::Revive => JobStatus::Queued,
            Self::Start => JobStatus::Processing,
            Self::Succeed => JobStatus::Succeeded,
            Self::UploadExpired | Self::Fail => JobStatus::Failed,
            Self::Die => JobStatus::Dead,
            Self::UploadReleased => JobStatus::AwaitingUpload,
        }
    }

    /// The move, for the job `id`, as an update that matches nothing when
    /// the job is in no state to make it.
    fn update(self, id: Uuid) -> UpdateMany<jobs::Entity> {
        jobs::Entity::update_many()
            .col_expr(jobs::Column::Status, Expr::value(self.to().as_str()))
            .col_expr(jobs::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(jobs::Column::Id.eq(id))
            .filter(jobs::Column::Status.is_in(self.from().iter().map(|s| s.as_str())))
    }

    /// Like [`Transition::update`], for a move that ends the job.
    fn finish(self, id: Uuid) -> UpdateMany<jobs::Entity> {
        self.update(id).col_expr(jobs::Column::FinishedAt, Expr::value(Utc::now()))
    }
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
    /// The retention of the original, in days (`0`: kept for good).
    pub retention_days: u32,
    /// ThumbHash (base64) and dominant colour (`#rrggbb`), when the job made any variant.
    pub placeholder: Option<(String, String)>,
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

/// The one way to move a job: the database, the cache whose views of a
/// job each move makes stale, and the outbox its outcomes are announced by.
#[derive(Clone, Copy)]
pub struct Jobs<'a> {
    db: &'a DatabaseConnection,
    cache: &'a dyn Cache,
    outbox: &'a Outbox,
}

impl<'a> Jobs<'a> {
    /// Moves over `db`, invalidating `cache`, recording outcomes in `outbox`.
    pub fn new(db: &'a DatabaseConnection, cache: &'a dyn Cache, outbox: &'a Outbox) -> Self {
        Self { db, cache, outbox }
    }

    /// Runs `update`, a move to a final state, and records the outcome's
    /// deliveries in the same transaction. Returns the job if it moved.
    async fn end(&self, update: UpdateMany<jobs::Entity>) -> Result<Option<jobs::Model>, DbErr> {
        let txn = self.db.begin().await?;
        let Some(job) = update.exec_with_returning(&txn).await?.into_iter().next() else {
            txn.rollback().await?;
            return Ok(None);
        };
        let recorded = self.outbox.record_job(&txn, &job).await?;
        txn.commit().await?;
        self.outbox.committed(recorded);
        Ok(self.moved(Some(job)).await)
    }

    /// Clears the cached views of a job that just moved: the job, and its
    /// image (whose variants a finished job changes).
    async fn moved(&self, job: Option<jobs::Model>) -> Option<jobs::Model> {
        if let Some(job) = &job {
            self.cache.forget(&cache::job_entries(job.tenant_id, job.id, job.image_id)).await;
        }
        job
    }

    /// Moves a `queued` (or abandoned `processing`) job to `processing` and
    /// counts the attempt. A `dead` job's message only comes back from the
    /// dead-letter queue (an operator's redrive), so such a job is revived
    /// first, with an audit entry.
    ///
    /// # Errors
    /// Database errors.
    pub async fn claim(&self, id: Uuid) -> Result<Claim, DbErr> {
        // The common case, a queued job, is one statement.
        if let Some(job) = self.start(id).await? {
            return Ok(Claim::Started(job));
        }
        match find_job(self.db, id).await? {
            None => Ok(Claim::Missing),
            Some(job) if job.status == JobStatus::Dead => {
                self.revive(id, "revived", "its message came back from the dead-letter queue").await?;
                Ok(match self.start(id).await? {
                    Some(job) => Claim::Started(job),
                    None => find_job(self.db, id).await?.map_or(Claim::Missing, Claim::Finished),
                })
            }
            Some(job) => Ok(Claim::Finished(job)),
        }
    }

    /// [`Transition::Start`], counting the attempt; the job as it now stands,
    /// or `None` if it was in no state to start.
    async fn start(&self, id: Uuid) -> Result<Option<jobs::Model>, DbErr> {
        let started = Transition::Start
            .update(id)
            .col_expr(jobs::Column::Attempts, Expr::col(jobs::Column::Attempts).add(1))
            .col_expr(jobs::Column::StartedAt, Expr::value(Utc::now()))
            .exec_with_returning(self.db)
            .await?;
        Ok(self.moved(started.into_iter().next()).await)
    }

    /// [`Transition::UploadArrived`]: records the upload's size (and hash,
    /// when known). Returns the job if this call moved it; `None` when it
    /// was not awaiting its upload (a repeated notification, or an expired upload).
    ///
    /// # Errors
    /// Database errors.
    pub async fn upload_arrived(
        &self,
        id: Uuid,
        bytes: i64,
        sha256: Option<String>,
    ) -> Result<Option<jobs::Model>, DbErr> {
        let txn = self.db.begin().await?;
        let Some(job) = Transition::UploadArrived.update(id).exec_with_returning(&txn).await?.into_iter().next() else {
            txn.rollback().await?;
            return Ok(None);
        };
        let mut image = images::Entity::update_many().col_expr(images::Column::Bytes, Expr::value(bytes));
        if let Some(sha256) = sha256 {
            image = image.col_expr(images::Column::Sha256, Expr::value(sha256));
        }
        image.filter(images::Column::Id.eq(job.image_id)).exec(&txn).await?;
        txn.commit().await?;
        Ok(self.moved(Some(job)).await)
    }

    /// [`Transition::UploadReleased`]: gives back the claim of a presigned
    /// upload whose bytes could not be placed, before any message was sent,
    /// so the client's retry of the same URL is accepted. Returns whether the
    /// job moved.
    ///
    /// # Errors
    /// Database errors.
    pub async fn release_upload(&self, id: Uuid) -> Result<bool, DbErr> {
        let moved = Transition::UploadReleased.update(id).exec_with_returning(self.db).await?.into_iter().next();
        Ok(self.moved(moved).await.is_some())
    }

    /// [`Transition::UploadExpired`] for up to `limit` jobs created before
    /// `cutoff` that still await their upload. Returns the jobs it failed.
    ///
    /// # Errors
    /// Database errors.
    pub async fn expire_uploads(&self, cutoff: chrono::DateTime<Utc>, limit: u64) -> Result<Vec<jobs::Model>, DbErr> {
        let stale: Vec<Uuid> = jobs::Entity::find()
            .select_only()
            .column(jobs::Column::Id)
            .filter(jobs::Column::Status.is_in(Transition::UploadExpired.from().iter().map(|s| s.as_str())))
            .filter(jobs::Column::CreatedAt.lt(cutoff))
            .limit(limit)
            .into_tuple()
            .all(self.db)
            .await?;
        let mut expired = Vec::with_capacity(stale.len());
        for id in stale {
            let update = Transition::UploadExpired
                .finish(id)
                .col_expr(jobs::Column::ErrorCode, Expr::value("upload-expired"))
                .col_expr(
                    jobs::Column::ErrorMessage,
                    Expr::value("the presigned upload was not used before it expired"),
                );
            expired.extend(self.end(update).await?);
        }
        Ok(expired)
    }

    /// [`Transition::Succeed`]: records the image's facts and variants and
    /// marks the job `succeeded`, all in one transaction. Returns the job if
    /// this call moved it (`None`: it was no longer `processing`, and nothing
    /// was written).
    ///
    /// # Errors
    /// Database errors; the transaction is rolled back.
    pub async fn succeed(
        &self,
        job_id: Uuid,
        facts: ImageFacts,
        new_variants: Vec<NewVariant>,
    ) -> Result<Option<jobs::Model>, DbErr> {
        let txn = self.db.begin().await?;
        let moved = Transition::Succeed
            .finish(job_id)
            .col_expr(jobs::Column::ErrorCode, Expr::value(Option::<String>::None))
            .col_expr(jobs::Column::ErrorMessage, Expr::value(Option::<String>::None))
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
            .col_expr(images::Column::Thumbhash, Expr::value(facts.placeholder.as_ref().map(|p| p.0.clone())))
            .col_expr(images::Column::DominantColour, Expr::value(facts.placeholder.map(|p| p.1)))
            .filter(images::Column::Id.eq(job.image_id))
            .exec(&txn)
            .await?;
        crate::retention::set_expiry(&txn, job.image_id, facts.retention_days, Utc::now()).await?;
        let added = stored_bytes_added(&txn, job.image_id, &new_variants).await?;
        insert_variants(&txn, job.image_id, new_variants).await?;
        crate::quota::add_bytes(job.tenant_id, added).exec(&txn).await?;
        let recorded = self.outbox.record_job(&txn, &job).await?;
        txn.commit().await?;
        self.outbox.committed(recorded);
        Ok(self.moved(Some(job)).await)
    }

    /// [`Transition::Fail`] or [`Transition::Die`], with the error. Returns
    /// the job if this call moved it (`None`: it had ended already, or is gone).
    ///
    /// # Errors
    /// Database errors.
    pub async fn end_with_error(
        &self,
        job_id: Uuid,
        transition: Transition,
        code: &str,
        message: &str,
    ) -> Result<Option<jobs::Model>, DbErr> {
        debug_assert!(matches!(transition, Transition::Fail | Transition::Die), "{transition:?} is not an error");
        let update = transition
            .finish(job_id)
            .col_expr(jobs::Column::ErrorCode, Expr::value(code))
            .col_expr(jobs::Column::ErrorMessage, Expr::value(message));
        self.end(update).await
    }

    /// Keeps the last transient error on a job that is being retried. It is
    /// no move: the job stays `processing`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn record_retry(&self, job_id: Uuid, code: &str, message: &str) -> Result<(), DbErr> {
        let noted = jobs::Entity::update_many()
            .col_expr(jobs::Column::ErrorCode, Expr::value(code))
            .col_expr(jobs::Column::ErrorMessage, Expr::value(message))
            .col_expr(jobs::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(jobs::Column::Id.eq(job_id))
            .filter(jobs::Column::Status.eq(JobStatus::Processing.as_str()))
            .exec_with_returning(self.db)
            .await?;
        self.moved(noted.into_iter().next()).await;
        Ok(())
    }

    /// [`Transition::Revive`]: moves a `dead` job back to `queued`, ready to
    /// announce its new outcome, and audits it. Returns whether it was dead.
    ///
    /// # Errors
    /// Database errors.
    pub async fn revive(&self, job_id: Uuid, action: &str, detail: &str) -> Result<bool, DbErr> {
        let txn = self.db.begin().await?;
        let moved = Transition::Revive
            .update(job_id)
            .col_expr(jobs::Column::FinishedAt, Expr::value(Option::<chrono::DateTime<Utc>>::None))
            .col_expr(jobs::Column::EventPublishedAt, Expr::value(Option::<chrono::DateTime<Utc>>::None))
            .exec_with_returning(&txn)
            .await?
            .into_iter()
            .next();
        if moved.is_some() {
            audit(&txn, job_id, action, detail).await?;
        }
        txn.commit().await?;
        Ok(self.moved(moved).await.is_some())
    }

    /// Records that the job's outcome event went out. Returns false when it
    /// had been recorded already. (Not part of any view: nothing to forget.)
    ///
    /// # Errors
    /// Database errors.
    pub async fn mark_event_published(&self, job_id: Uuid) -> Result<bool, DbErr> {
        let moved = jobs::Entity::update_many()
            .col_expr(jobs::Column::EventPublishedAt, Expr::value(Utc::now()))
            .filter(jobs::Column::Id.eq(job_id))
            .filter(jobs::Column::EventPublishedAt.is_null())
            .exec(self.db)
            .await?;
        Ok(moved.rows_affected == 1)
    }

    /// Frees a job's idempotency key, so the client's retry of a request that
    /// failed (a 503) makes a new job instead of replaying the failed one.
    ///
    /// # Errors
    /// Database errors.
    pub async fn release_idempotency_key(&self, job_id: Uuid) -> Result<(), DbErr> {
        jobs::Entity::update_many()
            .col_expr(jobs::Column::IdempotencyKey, Expr::value(Option::<String>::None))
            .filter(jobs::Column::Id.eq(job_id))
            .exec(self.db)
            .await?;
        Ok(())
    }
}

/// Records a job's variants. A replay of the same preset version overwrites
/// the row it made before.
/// How many bytes `new_variants` add to what the image has stored: their
/// sizes, less those of the rows (same preset and version) they replace.
async fn stored_bytes_added(
    txn: &sea_orm::DatabaseTransaction,
    image_id: Uuid,
    new_variants: &[NewVariant],
) -> Result<i64, DbErr> {
    let existing = variants::Entity::find().filter(variants::Column::ImageId.eq(image_id)).all(txn).await?;
    let replaced: i64 = existing
        .iter()
        .filter(|old| new_variants.iter().any(|v| v.preset == old.preset && v.preset_version == old.preset_version))
        .map(|old| old.bytes)
        .sum();
    Ok(new_variants.iter().map(|v| v.bytes).sum::<i64>() - replaced)
}

async fn insert_variants(
    txn: &sea_orm::DatabaseTransaction,
    image_id: Uuid,
    new_variants: Vec<NewVariant>,
) -> Result<(), DbErr> {
    let now = Utc::now();
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
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every move, where it may start, and where it ends: the state diagram
    /// at the top of this file, as data.
    #[test]
    fn each_move_leaves_only_from_the_states_it_names() {
        use JobStatus::*;
        let table = [
            (Transition::UploadArrived, vec![AwaitingUpload], Queued),
            (Transition::UploadExpired, vec![AwaitingUpload], Failed),
            (Transition::Start, vec![Queued, Processing], Processing),
            (Transition::Succeed, vec![Processing], Succeeded),
            (Transition::Fail, vec![Queued, Processing], Failed),
            (Transition::Die, vec![Queued, Processing], Dead),
            (Transition::Revive, vec![Dead], Queued),
            (Transition::UploadReleased, vec![Queued], AwaitingUpload),
        ];
        for (transition, from, to) in table {
            assert_eq!(transition.from(), from.as_slice(), "{transition:?}");
            assert_eq!(transition.to(), to, "{transition:?}");
        }
        // No move leaves a successful job: only a new job changes its image.
        let all = [
            Transition::UploadArrived,
            Transition::UploadExpired,
            Transition::Start,
            Transition::Succeed,
            Transition::Fail,
            Transition::Die,
            Transition::Revive,
            Transition::UploadReleased,
        ];
        assert!(all.iter().all(|t| !t.from().contains(&Succeeded) && !t.from().contains(&Failed)));
    }
}
