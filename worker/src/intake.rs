//! Jobs that start from the bucket rather than the API: an S3
//! `ObjectCreated` notification for a presigned upload (or any object under
//! `uploads/`), and the sweep that fails presigned uploads that never came.

use chrono::Utc;
use entities::jobs::{self, JobStatus};
use pipeline::jobs::{self as repo, NewUpload};
use pipeline::keys;
use pipeline::message::CreatedObject;
use uuid::Uuid;

use crate::Worker;
use crate::failure::Failure;

/// How long after its URL expired a presigned upload may still arrive (an
/// upload that started in time may finish late).
const UPLOAD_GRACE: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

impl Worker {
    /// Turns a client's direct upload into a job, once per bucket, key and
    /// ETag: a repeated notification finds the job the first one created.
    /// Returns the job to run, as it stands.
    pub(crate) async fn job_for_object(&self, object: &CreatedObject) -> Result<Option<jobs::Model>, Failure> {
        if !object.key.starts_with(keys::UPLOADS_PREFIX) {
            tracing::info!(key = %object.key, "object outside the uploads prefix; ignoring");
            return Ok(None);
        }
        let db = &self.inner.backends.db;
        // `uploads/{job_id}`: the upload a client was handed by `POST /v1/uploads`.
        if let Some(job_id) = object.key.strip_prefix(keys::UPLOADS_PREFIX).and_then(|id| Uuid::parse_str(id).ok())
            && let Some(job) = repo::find_job(db, job_id).await?
        {
            return self.start_presigned_job(job, object).await.map(Some);
        }
        let dedupe = object.dedupe_key();
        if let Some(job) = repo::find_job_by_idempotency_key(db, &dedupe).await? {
            return Ok(Some(job));
        }
        let image_id = Uuid::now_v7();
        // Keep the original outside the uploads prefix, which the bucket's
        // lifecycle rule empties after a few days.
        self.inner.backends.store.copy(&object.key, &keys::original(image_id)).await?;
        // An object put straight into the bucket carries no key, so it
        // belongs to the default tenant.
        let upload = NewUpload {
            tenant_id: pipeline::tenants::DEFAULT_TENANT,
            image_id,
            job_id: Uuid::now_v7(),
            // Computed by the worker once it has the bytes.
            sha256: String::new(),
            bytes: i64::try_from(object.size).unwrap_or(i64::MAX),
            idempotency_key: Some(dedupe),
            request_fingerprint: None,
            api_key_id: None,
            awaiting_upload: false,
            deduplicate: false,
            client: Default::default(),
        };
        // A concurrent delivery of the same notification may have got there first.
        let (job, recorded) = repo::record_or_find(db, upload).await?;
        if recorded == repo::Recorded::New {
            // Counted as stored, like any upload, though no quota can refuse it.
            pipeline::quota::add_bytes(job.tenant_id, i64::try_from(object.size).unwrap_or(i64::MAX)).exec(db).await?;
        }
        tracing::info!(job_id = %job.id, key = %object.key, "job created from an S3 upload");
        Ok(Some(job))
    }

    /// A presigned upload arrived: keep the original outside the uploads
    /// prefix and let the job start. A repeated notification, or one for a
    /// job that already moved on, leads to the job as it stands.
    async fn start_presigned_job(&self, job: jobs::Model, object: &CreatedObject) -> Result<jobs::Model, Failure> {
        if job.status != JobStatus::AwaitingUpload {
            return Ok(job);
        }
        self.inner.backends.store.copy(&object.key, &keys::original(job.image_id)).await?;
        let bytes = i64::try_from(object.size).unwrap_or(i64::MAX);
        let job = match self.inner.backends.jobs().upload_arrived(job.id, bytes, None).await? {
            Some(job) => job,
            // A concurrent delivery started it first.
            None => repo::find_job(&self.inner.backends.db, job.id).await?.unwrap_or(job),
        };
        tracing::info!(job_id = %job.id, key = %object.key, "presigned upload arrived");
        Ok(job)
    }

    /// Fails the jobs whose presigned upload never came (their URL expired
    /// over a minute ago) and announces each. Returns how many it failed.
    pub async fn expire_uploads(&self) -> usize {
        let cutoff = Utc::now() - self.inner.upload_ttl - UPLOAD_GRACE;
        let expired = match self.inner.backends.jobs().expire_uploads(cutoff, 500).await {
            Ok(expired) => expired,
            Err(err) => {
                tracing::warn!(error = %err, "could not expire abandoned uploads");
                return 0;
            }
        };
        for job in &expired {
            if let Err(failure) = self.publish_once(job).await {
                // The job is failed either way; its event goes out when an
                // operator replays it, or not at all for an upload nobody made.
                tracing::warn!(job_id = %job.id, code = %failure.code, "could not announce an expired upload");
            }
        }
        if !expired.is_empty() {
            tracing::info!(count = expired.len(), "failed jobs whose upload never came");
        }
        expired.len()
    }
}
