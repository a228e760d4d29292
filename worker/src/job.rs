//! Handling one message. Every fallible step says what its failure means:
//! [`Failure::transient`] (try again later) or [`Failure::permanent`] (this
//! input will never work; record it and stop).

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use entities::jobs::{self, JobStatus};
use futures::FutureExt;
use pipeline::event::{EVENT_SCHEMA_VERSION, Event, EventError, EventKind, EventVariant, Timings};
use pipeline::keys;
use pipeline::message::{CreatedObject, Incoming, JobMessage};
use pipeline::queue::Delivery;
use pipeline::repo::{self, Claim, ImageFacts, NewUpload, NewVariant};
use pipeline::store::{ObjectMeta, StoreError};
use sha2::{Digest, Sha256};
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;
use uuid::Uuid;

use crate::Worker;

/// How long after its URL expired a presigned upload may still arrive (an
/// upload that started in time may finish late).
const UPLOAD_GRACE: chrono::TimeDelta = chrono::TimeDelta::minutes(1);
use crate::disposition::{Disposition, Verdict, decide};
use crate::metrics::{Outcome, Stage};

/// How long the worker that finished a job has to announce it before a
/// redelivery of its message announces it instead.
const PUBLISH_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// Why a step failed, and whether trying again can help.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    permanent: bool,
    /// Stable kebab-case code, stored on the job and sent in events.
    code: String,
    message: String,
    /// The job it concerns, once known.
    job_id: Option<Uuid>,
}

impl Failure {
    fn transient(code: &str, message: impl ToString) -> Self {
        Self { permanent: false, code: code.to_owned(), message: message.to_string(), job_id: None }
    }

    fn permanent(code: &str, message: impl ToString) -> Self {
        Self { permanent: true, code: code.to_owned(), message: message.to_string(), job_id: None }
    }

    fn for_job(mut self, job_id: Uuid) -> Self {
        self.job_id.get_or_insert(job_id);
        self
    }
}

fn database(err: sea_orm::DbErr) -> Failure {
    Failure::transient("database-unavailable", err)
}

/// What a successful handling amounted to, for the metrics.
enum Handled {
    Succeeded,
    Failed,
    Duplicate,
    Ignored,
}

struct InFlight<'a> {
    worker: &'a Worker,
    message_id: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Ok(mut in_flight) = self.worker.inner.in_flight.lock() {
            in_flight.remove(&self.message_id);
        }
        self.worker.inner.metrics.in_flight(-1);
    }
}

impl Worker {
    /// Handles one delivery and carries out the decided disposition.
    /// `slot`, the job's place among the worker's concurrent jobs, is given
    /// back as soon as the job's work is done: the acknowledgement waits a
    /// few milliseconds to share a batch, and the next job need not wait
    /// with it.
    pub(crate) async fn handle(&self, delivery: Delivery, slot: Option<OwnedSemaphorePermit>) {
        if let Ok(mut in_flight) = self.inner.in_flight.lock() {
            in_flight.insert(delivery.message_id.clone(), delivery.receipt.clone());
        }
        self.inner.metrics.in_flight(1);
        let _in_flight = InFlight { worker: self, message_id: delivery.message_id.clone() };
        if let Some(sent) = delivery.sent_at {
            self.inner.metrics.queue_lag((Utc::now() - sent).to_std().unwrap_or_default());
        }

        let incoming = match Incoming::parse(&delivery.body) {
            Ok(incoming) => incoming,
            Err(err) => {
                // Left alone, it comes back after its visibility timeout until
                // the redrive policy moves it to the dead-letter queue.
                tracing::error!(message_id = %delivery.message_id, error = %err, "unparseable message; leaving it for the dead-letter queue");
                self.inner.metrics.outcome(Outcome::Unparseable);
                return;
            }
        };
        let job_id = match &incoming {
            Incoming::Job(message) => Some(message.job_id),
            _ => None,
        };
        let span = tracing::info_span!(
            "message",
            message_id = %delivery.message_id,
            job_id = job_id.map(tracing::field::display),
            receive_count = delivery.receive_count,
        );
        async {
            // A panic anywhere in the job is contained here and counts as a
            // transient failure of this message only.
            let work = AssertUnwindSafe(self.with_heartbeat(&delivery, self.dispatch(incoming))).catch_unwind();
            let result = match work.await {
                Ok(result) => result,
                Err(_) => Err(Failure { job_id, ..Failure::transient("worker-panic", "the job panicked") }),
            };
            let verdict = if result.is_ok() { Verdict::Done } else { Verdict::Transient };
            let disposition =
                decide(verdict, delivery.receive_count, self.inner.redrive_limit, self.inner.retry_base_delay);
            match &result {
                Ok(Handled::Succeeded) => self.inner.metrics.outcome(Outcome::Succeeded),
                Ok(Handled::Failed) => self.inner.metrics.outcome(Outcome::Failed),
                Ok(Handled::Duplicate) => self.inner.metrics.outcome(Outcome::Duplicate),
                Ok(Handled::Ignored) => self.inner.metrics.outcome(Outcome::Ignored),
                Err(failure) => {
                    tracing::warn!(code = %failure.code, error = %failure.message, ?disposition, "job step failed");
                    let outcome = if disposition == Disposition::DeadLetter { Outcome::Dead } else { Outcome::Retried };
                    self.inner.metrics.outcome(outcome);
                }
            }
            drop(slot);
            self.apply(disposition, &delivery, result.err()).await;
        }
        .instrument(span)
        .await;
    }

    /// Runs `work` while extending the message's visibility about every
    /// half timeout, so a long job is not redelivered to another worker.
    async fn with_heartbeat<T>(&self, delivery: &Delivery, work: impl Future<Output = T>) -> T {
        let period = self.inner.visibility / 2;
        let heartbeat = async {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                ticks.tick().await;
                if let Err(err) =
                    self.inner.backends.queue.change_visibility(&delivery.receipt, self.inner.visibility).await
                {
                    tracing::warn!(error = %err, "visibility heartbeat failed");
                }
            }
        };
        tokio::select! {
            result = work => result,
            never = heartbeat => never,
        }
    }

    async fn dispatch(&self, incoming: Incoming) -> Result<Handled, Failure> {
        match incoming {
            Incoming::Job(message) => self.process(&message).await.map_err(|f| f.for_job(message.job_id)),
            Incoming::S3TestEvent => {
                tracing::info!("S3 test event; acknowledging");
                Ok(Handled::Ignored)
            }
            Incoming::ObjectsCreated(objects) => {
                let mut handled = Handled::Ignored;
                for object in objects {
                    let Some(message) = self.job_for_object(&object).await? else {
                        continue;
                    };
                    handled = self.process(&message).await.map_err(|f| f.for_job(message.job_id))?;
                }
                Ok(handled)
            }
        }
    }

    /// Turns a client's direct upload into a job, once per bucket, key and
    /// ETag: a repeated notification finds the job the first one created.
    async fn job_for_object(&self, object: &CreatedObject) -> Result<Option<JobMessage>, Failure> {
        if !object.key.starts_with(keys::UPLOADS_PREFIX) {
            tracing::info!(key = %object.key, "object outside the uploads prefix; ignoring");
            return Ok(None);
        }
        let db = &self.inner.backends.db;
        // `uploads/{job_id}`: the upload a client was handed by `POST /v1/uploads`.
        if let Some(job_id) = object.key.strip_prefix(keys::UPLOADS_PREFIX).and_then(|id| Uuid::parse_str(id).ok())
            && let Some(job) = repo::find_job(db, job_id).await.map_err(database)?
        {
            return self.start_presigned_job(job, object).await.map(Some);
        }
        let dedupe = object.dedupe_key();
        if let Some(job) = repo::find_job_by_idempotency_key(db, &dedupe).await.map_err(database)? {
            return Ok(Some(JobMessage::for_job(&job)));
        }
        let (image_id, job_id) = (Uuid::now_v7(), Uuid::now_v7());
        let source_key = keys::original(image_id);
        // Keep the original outside the uploads prefix, which the bucket's
        // lifecycle rule empties after a few days.
        self.inner.backends.store.copy(&object.key, &source_key).await.map_err(|err| match err {
            StoreError::NotFound(_) => Failure::permanent("source-missing", err),
            other => Failure::transient("store-unavailable", other),
        })?;
        let upload = NewUpload {
            image_id,
            job_id,
            source_key,
            // Computed by the worker once it has the bytes.
            sha256: String::new(),
            bytes: i64::try_from(object.size).unwrap_or(i64::MAX),
            idempotency_key: Some(dedupe.clone()),
            request_fingerprint: None,
            api_key_id: None,
            awaiting_upload: false,
        };
        let job = match repo::record_upload(db, upload).await {
            Ok(job) => job,
            // A concurrent delivery of the same notification got there first.
            Err(err) if repo::is_unique_violation(&err) => repo::find_job_by_idempotency_key(db, &dedupe)
                .await
                .map_err(database)?
                .ok_or_else(|| Failure::transient("database-unavailable", "duplicate upload vanished"))?,
            Err(err) => return Err(database(err)),
        };
        tracing::info!(job_id = %job.id, key = %object.key, "job created from an S3 upload");
        Ok(Some(JobMessage::for_job(&job)))
    }

    /// A presigned upload arrived: keep the original outside the uploads
    /// prefix and let the job start. A repeated notification, or one for a
    /// job that already moved on, leads to the job as it stands.
    async fn start_presigned_job(&self, job: jobs::Model, object: &CreatedObject) -> Result<JobMessage, Failure> {
        let db = &self.inner.backends.db;
        if job.status != JobStatus::AwaitingUpload {
            return Ok(JobMessage::for_job(&job));
        }
        let image = repo::find_image(db, job.image_id)
            .await
            .map_err(database)?
            .ok_or_else(|| Failure::permanent("source-missing", "the job's image row is gone"))?
            .0;
        self.inner.backends.store.copy(&object.key, &image.source_key).await.map_err(|err| match err {
            StoreError::NotFound(_) => Failure::permanent("source-missing", err),
            other => Failure::transient("store-unavailable", other),
        })?;
        let bytes = i64::try_from(object.size).unwrap_or(i64::MAX);
        let job = match repo::start_uploaded_job(db, job.id, bytes, None).await.map_err(database)? {
            Some(job) => job,
            // A concurrent delivery started it first.
            None => repo::find_job(db, job.id).await.map_err(database)?.unwrap_or(job),
        };
        self.forget(&job).await;
        tracing::info!(job_id = %job.id, key = %object.key, "presigned upload arrived");
        Ok(JobMessage::for_job(&job))
    }

    /// Fails the jobs whose presigned upload never came (their URL expired
    /// over a minute ago) and announces each. Returns how many it failed.
    pub async fn expire_uploads(&self) -> usize {
        let cutoff = Utc::now() - self.inner.upload_ttl - UPLOAD_GRACE;
        let expired = match repo::expire_uploads(&self.inner.backends.db, cutoff, 500).await {
            Ok(expired) => expired,
            Err(err) => {
                tracing::warn!(error = %err, "could not expire abandoned uploads");
                return 0;
            }
        };
        for job in &expired {
            let job =
                repo::find_job(&self.inner.backends.db, job.id).await.ok().flatten().unwrap_or_else(|| job.clone());
            if let Err(failure) = self.publish_once(&job).await {
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

    /// Drops the API's cached views of a job that just changed.
    async fn forget(&self, job: &jobs::Model) {
        self.inner.backends.cache.forget(&pipeline::cache::job_entries(job.id, job.image_id)).await;
    }

    async fn apply(&self, disposition: Disposition, delivery: &Delivery, failure: Option<Failure>) {
        let queue = &self.inner.backends.queue;
        let acted = match disposition {
            Disposition::Delete => self.inner.acker.delete(delivery.receipt.clone()).await,
            Disposition::Abandon => Ok(()),
            Disposition::RetryAfter(delay) => {
                if let Some(Failure { job_id: Some(job_id), code, message, .. }) = &failure {
                    // Best effort: the retry happens whether or not this is recorded.
                    let _ = repo::record_retry(&self.inner.backends.db, *job_id, code, message).await;
                    self.inner.backends.cache.forget(&[pipeline::cache::job_key(*job_id)]).await;
                }
                queue.change_visibility(&delivery.receipt, delay).await
            }
            Disposition::DeadLetter => {
                let failure = failure.unwrap_or_else(|| Failure::transient("retries-exhausted", "retries exhausted"));
                if let Some(job_id) = failure.job_id
                    && let Err(err) = self.record_final_failure(job_id, JobStatus::Dead, &failure).await
                {
                    tracing::error!(code = %err.code, error = %err.message, "could not mark the job dead");
                }
                if self.inner.has_dead_letter_queue {
                    // Released at once, the next receive moves it to the DLQ.
                    queue.change_visibility(&delivery.receipt, Duration::ZERO).await
                } else {
                    queue.delete(&delivery.receipt).await
                }
            }
        };
        if let Err(err) = acted {
            // Not fatal: an unacknowledged message simply comes back, and
            // the job's recorded state makes the redelivery a no-op.
            tracing::warn!(error = %err, ?disposition, "queue call failed; the message will reappear");
        }
    }

    /// Advances the job; `Ok` means its final state is recorded and announced.
    async fn process(&self, message: &JobMessage) -> Result<Handled, Failure> {
        let db = &self.inner.backends.db;
        let job = match repo::claim_job(db, message.job_id).await.map_err(database)? {
            Claim::Started(job) => {
                self.forget(&job).await;
                job
            }
            Claim::Finished(job) => {
                // A redelivery of a finished job: do no work again, but make
                // sure its event went out (the last run may have crashed
                // between commit and publish). A job that finished moments
                // ago is most likely being announced by the worker that
                // finished it right now: come back later rather than publish
                // a second copy.
                let just_finished = job.finished_at.is_some_and(|at| Utc::now() - at < PUBLISH_GRACE);
                if job.event_published_at.is_none() && just_finished {
                    return Err(Failure::transient("event-pending", "another worker is announcing this job"));
                }
                tracing::info!(status = job.status.as_str(), "job already finished; acknowledging");
                self.publish_once(&job).await?;
                return Ok(Handled::Duplicate);
            }
            Claim::Missing => {
                tracing::warn!("no such job; dropping the message");
                return Ok(Handled::Ignored);
            }
        };
        match self.make_variants(&job, message).await {
            Ok(Some(job)) => {
                self.publish_once(&job).await?;
                Ok(Handled::Succeeded)
            }
            // A concurrent delivery finished the job and announces it.
            Ok(None) => Ok(Handled::Duplicate),
            Err(failure) if failure.permanent => {
                self.record_final_failure(job.id, JobStatus::Failed, &failure).await?;
                Ok(Handled::Failed)
            }
            Err(failure) => Err(failure),
        }
    }

    /// Downloads, processes, stores and records. Returns the job if this run
    /// moved it to `succeeded` (`None`: a concurrent delivery did).
    async fn make_variants(&self, job: &jobs::Model, message: &JobMessage) -> Result<Option<jobs::Model>, Failure> {
        let metrics = &self.inner.metrics;
        let store = &self.inner.backends.store;

        let started = Instant::now();
        let original = store.get(&message.source_key).await.map_err(|err| match err {
            StoreError::NotFound(_) => Failure::permanent("source-missing", err),
            other => Failure::transient("store-unavailable", other),
        })?;
        metrics.stage(Stage::Download, started.elapsed());

        let presets = self.presets_for(message)?;
        let (output, sha256) = {
            let _cpu = self.inner.cpu_slots.acquire().await.map_err(|e| Failure::transient("worker-stopping", e))?;
            let limits = self.inner.limits.clone();
            tokio::task::spawn_blocking(move || {
                let sha256 = hex::encode(Sha256::digest(&original));
                (imaging::process(&original, &presets, &limits), sha256)
            })
            .await
            .map_err(|e| Failure::transient("engine-panic", e))?
        };
        let output = output.map_err(|err| match err {
            // A contained panic may be a bug we fix later: retry, then dead-letter.
            imaging::ImagingError::Panicked => Failure::transient(err.code(), &err),
            other => Failure::permanent(other.code(), &other),
        })?;
        metrics.stage(Stage::Decode, output.timings.decode);
        metrics.stage(Stage::Resize, output.timings.resize);
        metrics.stage(Stage::Encode, output.timings.encode);

        let started = Instant::now();
        let source = output.source;
        // Presets that came out as the same bytes (an original smaller than
        // every preset's edge) share one stored object: their rows point at
        // the key of the first, so a small image is one PUT, not three.
        // Nothing deletes variant objects, so a shared one cannot vanish
        // from under a row.
        let mut new_variants = Vec::with_capacity(output.variants.len());
        // Each distinct output once, with the key it is stored under.
        let mut distinct: Vec<(imaging::OutputFormat, Bytes, String)> = Vec::new();
        for variant in output.variants {
            let data = Bytes::from(variant.data);
            let key = match distinct.iter().find(|(format, bytes, _)| *format == variant.format && *bytes == data) {
                Some((_, _, key)) => key.clone(),
                None => {
                    let key = keys::variant(
                        job.image_id,
                        &variant.preset,
                        &variant.preset_version,
                        variant.format.extension(),
                    );
                    distinct.push((variant.format, data.clone(), key.clone()));
                    key
                }
            };
            new_variants.push(NewVariant {
                width: i32::try_from(variant.width).unwrap_or(i32::MAX),
                height: i32::try_from(variant.height).unwrap_or(i32::MAX),
                bytes: i64::try_from(data.len()).unwrap_or(i64::MAX),
                format: variant.format.as_str().to_owned(),
                preset: variant.preset,
                preset_version: variant.preset_version,
                object_key: key,
            });
        }
        let uploads = distinct.into_iter().map(|(format, data, key)| async move {
            let meta = ObjectMeta {
                content_type: format.content_type().to_owned(),
                cache_control: Some(keys::VARIANT_CACHE_CONTROL.to_owned()),
            };
            store.put(&key, data, &meta).await
        });
        futures::future::try_join_all(uploads).await.map_err(|e| Failure::transient("store-unavailable", e))?;
        metrics.stage(Stage::Upload, started.elapsed());

        let started = Instant::now();
        let facts = ImageFacts {
            format: source.format.to_owned(),
            width: i32::try_from(source.width).unwrap_or(i32::MAX),
            height: i32::try_from(source.height).unwrap_or(i32::MAX),
            sha256,
        };
        let moved = repo::complete_job(&self.inner.backends.db, job.id, job.image_id, facts, new_variants)
            .await
            .map_err(database)?;
        metrics.stage(Stage::Db, started.elapsed());
        Ok(moved)
    }

    /// The presets a job makes: all configured ones, or those its message names.
    fn presets_for(&self, message: &JobMessage) -> Result<Vec<imaging::Preset>, Failure> {
        let Some(names) = &message.presets else {
            return Ok(self.inner.presets.to_vec());
        };
        names
            .iter()
            .map(|name| {
                self.inner.presets.iter().find(|p| &p.name == name).cloned().ok_or_else(|| {
                    Failure::permanent("unknown-preset", format!("no preset named {name:?} is configured"))
                })
            })
            .collect()
    }

    /// Marks the job `failed` or `dead` and announces it. A job that already
    /// reached a final state is left as it is.
    async fn record_final_failure(&self, job_id: Uuid, status: JobStatus, failure: &Failure) -> Result<(), Failure> {
        let db = &self.inner.backends.db;
        repo::finish_with_error(db, job_id, status, &failure.code, &failure.message).await.map_err(database)?;
        tracing::warn!(status = status.as_str(), code = %failure.code, "job ended without variants");
        match repo::find_job(db, job_id).await.map_err(database)? {
            Some(job) => self.publish_once(&job).await,
            None => Ok(()),
        }
    }

    /// Publishes the job's outcome event unless it is recorded as published.
    async fn publish_once(&self, job: &jobs::Model) -> Result<(), Failure> {
        // Before the event goes out, so whoever reacts to it reads the final state.
        if job.status.is_final() {
            self.forget(job).await;
        }
        if job.event_published_at.is_some() || !job.status.is_final() {
            return Ok(());
        }
        let started = Instant::now();
        let event = self.event_for(job).await?;
        self.inner
            .backends
            .notifier
            .publish(&event)
            .await
            .map_err(|e| Failure::transient("notifier-unavailable", e))?;
        repo::mark_event_published(&self.inner.backends.db, job.id).await.map_err(database)?;
        self.inner.metrics.stage(Stage::Publish, started.elapsed());
        Ok(())
    }

    async fn event_for(&self, job: &jobs::Model) -> Result<Event, Failure> {
        let succeeded = job.status == JobStatus::Succeeded;
        let variants = if succeeded {
            // The image's row cannot be gone while its job's is there (a
            // foreign key), so only the variants are read.
            let rows = repo::image_variants(&self.inner.backends.db, job.image_id).await.map_err(database)?;
            rows.into_iter()
                .map(|v| EventVariant {
                    url: self.inner.public_base_url.as_deref().map(|base| {
                        format!("{}/v1/images/{}/variants/{}", base.trim_end_matches('/'), job.image_id, v.preset)
                    }),
                    preset: v.preset,
                    preset_version: v.preset_version,
                    format: v.format,
                    width: u32::try_from(v.width).unwrap_or_default(),
                    height: u32::try_from(v.height).unwrap_or_default(),
                    bytes: u64::try_from(v.bytes).unwrap_or_default(),
                    key: v.object_key,
                })
                .collect()
        } else {
            Vec::new()
        };
        let finished = job.finished_at.unwrap_or(job.updated_at);
        let started = job.started_at.unwrap_or(job.created_at);
        let millis = |d: chrono::TimeDelta| u64::try_from(d.num_milliseconds()).unwrap_or_default();
        Ok(Event {
            schema_version: EVENT_SCHEMA_VERSION,
            event: if succeeded { EventKind::ImageProcessed } else { EventKind::ImageFailed },
            event_id: Event::id_for(job.id, job.status.as_str()),
            job_id: Some(job.id),
            image_id: Some(job.image_id),
            status: job.status.as_str().to_owned(),
            variants,
            error: job
                .error_code
                .clone()
                .map(|code| EventError { code, message: job.error_message.clone().unwrap_or_default() }),
            timings: Some(Timings {
                queued_ms: millis(started - job.created_at),
                processing_ms: millis(finished - started),
                total_ms: millis(finished - job.created_at),
            }),
            summary: None,
            env: self.inner.app_env.clone(),
            occurred_at: finished,
        })
    }
}
