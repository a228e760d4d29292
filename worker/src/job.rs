//! Handling one message. Every fallible step says what its failure means:
//! [`Failure::transient`] (try again later) or [`Failure::permanent`] (this
//! input will never work; record it and stop).

use bytes::Bytes;
use entities::jobs::{self, JobStatus};
use pipeline::event::{Event, EventError, EventKind, EventVariant, EVENT_SCHEMA_VERSION};
use pipeline::message::JobMessage;
use pipeline::queue::Delivery;
use pipeline::repo::{self, Claim, ImageFacts, NewVariant};
use pipeline::store::{ObjectMeta, StoreError};
use pipeline::keys;
use tracing::Instrument;
use uuid::Uuid;

use crate::Worker;
use crate::disposition::{Disposition, Verdict, decide};

/// Why a step failed, and whether trying again can help.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    permanent: bool,
    /// Stable kebab-case code, stored on the job and sent in events.
    code: String,
    message: String,
}

impl Failure {
    fn transient(code: &str, message: impl ToString) -> Self {
        Self { permanent: false, code: code.to_owned(), message: message.to_string() }
    }

    fn permanent(code: &str, message: impl ToString) -> Self {
        Self { permanent: true, code: code.to_owned(), message: message.to_string() }
    }
}

fn database(err: sea_orm::DbErr) -> Failure {
    Failure::transient("database-unavailable", err)
}

impl Worker {
    /// Handles one delivery and carries out the decided disposition.
    pub(crate) async fn handle(&self, delivery: Delivery) {
        let message = match JobMessage::parse(&delivery.body) {
            Ok(message) => message,
            Err(err) => {
                tracing::error!(message_id = %delivery.message_id, error = %err, "unparseable message; leaving it for the dead-letter queue");
                return;
            }
        };
        let span = tracing::info_span!("job", job_id = %message.job_id, image_id = %message.image_id, receive_count = delivery.receive_count);
        async {
            let result = self.process(&message).await;
            let verdict = match &result {
                Ok(()) => Verdict::Done,
                Err(_) => Verdict::Transient,
            };
            let disposition = decide(verdict, delivery.receive_count, self.inner.redrive_limit);
            if let Err(failure) = &result {
                tracing::warn!(code = %failure.code, error = %failure.message, ?disposition, "job step failed");
            }
            self.apply(disposition, &delivery, &message, result.err()).await;
        }
        .instrument(span)
        .await;
    }

    async fn apply(&self, disposition: Disposition, delivery: &Delivery, message: &JobMessage, failure: Option<Failure>) {
        let queue = &self.inner.backends.queue;
        let acted = match disposition {
            Disposition::Delete => queue.delete(&delivery.receipt).await,
            Disposition::Abandon => Ok(()),
            Disposition::RetryAfter(delay) => {
                if let Some(failure) = &failure {
                    // Best effort: the retry happens whether or not this is recorded.
                    let _ = repo::record_retry(&self.inner.backends.db, message.job_id, &failure.code, &failure.message).await;
                }
                queue.change_visibility(&delivery.receipt, delay).await
            }
            Disposition::DeadLetter => {
                let failure = failure.unwrap_or_else(|| Failure::transient("retries-exhausted", "retries exhausted"));
                let recorded = self.record_final_failure(message.job_id, JobStatus::Dead, &failure).await;
                if let Err(err) = recorded {
                    tracing::error!(code = %err.code, error = %err.message, "could not mark the job dead");
                }
                if self.inner.has_dead_letter_queue {
                    // Released at once, the next receive moves it to the DLQ.
                    queue.change_visibility(&delivery.receipt, std::time::Duration::ZERO).await
                } else {
                    queue.delete(&delivery.receipt).await
                }
            }
        };
        if let Err(err) = acted {
            // Not fatal: an unacknowledged message simply comes back.
            tracing::warn!(error = %err, ?disposition, "queue call failed; the message will reappear");
        }
    }

    /// Advances the job; `Ok` means its final state is recorded and announced.
    async fn process(&self, message: &JobMessage) -> Result<(), Failure> {
        let db = &self.inner.backends.db;
        let job = match repo::claim_job(db, message.job_id).await.map_err(database)? {
            Claim::Started(job) => job,
            Claim::Finished(job) => {
                // A redelivery of a finished job: do no work again, but make
                // sure its event went out (the last run may have crashed
                // between commit and publish).
                tracing::info!(status = job.status.as_str(), "job already finished; acknowledging");
                return self.publish_once(&job).await;
            }
            Claim::Missing => {
                tracing::warn!("no such job; dropping the message");
                return Ok(());
            }
        };
        match self.make_variants(&job, message).await {
            Ok(moved) => {
                if moved {
                    let job = repo::find_job(db, job.id).await.map_err(database)?.unwrap_or(job);
                    self.publish_once(&job).await?;
                }
                Ok(())
            }
            Err(failure) if failure.permanent => self.record_final_failure(job.id, JobStatus::Failed, &failure).await,
            Err(failure) => Err(failure),
        }
    }

    /// Downloads, processes, stores and records. Returns whether this run
    /// moved the job to `succeeded` (false: a concurrent delivery did).
    async fn make_variants(&self, job: &jobs::Model, message: &JobMessage) -> Result<bool, Failure> {
        let store = &self.inner.backends.store;
        let original = store.get(&message.source_key).await.map_err(|err| match err {
            StoreError::NotFound(_) => Failure::permanent("source-missing", err),
            other => Failure::transient("store-unavailable", other),
        })?;

        let output = {
            let _cpu = self.inner.cpu_slots.acquire().await.map_err(|e| Failure::transient("worker-stopping", e))?;
            let presets = self.inner.presets.clone();
            let limits = self.inner.limits.clone();
            tokio::task::spawn_blocking(move || imaging::process(&original, &presets, &limits))
                .await
                .map_err(|e| Failure::transient("engine-panic", e))?
        };
        let output = output.map_err(|err| match err {
            // A contained panic may be a bug we fix later: retry, then dead-letter.
            imaging::ImagingError::Panicked => Failure::transient(err.code(), &err),
            other => Failure::permanent(other.code(), &other),
        })?;

        let source = output.source;
        let uploads = output.variants.into_iter().map(|variant| {
            let key = keys::variant(job.image_id, &variant.preset, &variant.preset_version, variant.format.extension());
            let meta = ObjectMeta {
                content_type: variant.format.content_type().to_owned(),
                cache_control: Some(keys::VARIANT_CACHE_CONTROL.to_owned()),
            };
            let bytes = i64::try_from(variant.data.len()).unwrap_or(i64::MAX);
            let data = Bytes::from(variant.data);
            async move {
                store.put(&key, data, &meta).await?;
                Ok::<_, StoreError>(NewVariant {
                    preset: variant.preset,
                    preset_version: variant.preset_version,
                    format: variant.format.as_str().to_owned(),
                    width: i32::try_from(variant.width).unwrap_or(i32::MAX),
                    height: i32::try_from(variant.height).unwrap_or(i32::MAX),
                    bytes,
                    object_key: key,
                })
            }
        });
        let new_variants = futures::future::try_join_all(uploads)
            .await
            .map_err(|e| Failure::transient("store-unavailable", e))?;

        let facts = ImageFacts {
            format: source.format.to_owned(),
            width: i32::try_from(source.width).unwrap_or(i32::MAX),
            height: i32::try_from(source.height).unwrap_or(i32::MAX),
        };
        repo::complete_job(&self.inner.backends.db, job.id, job.image_id, facts, new_variants)
            .await
            .map_err(database)
    }

    /// Marks the job `failed` or `dead` and announces it. A job that already
    /// reached a final state is left as it is.
    async fn record_final_failure(&self, job_id: Uuid, status: JobStatus, failure: &Failure) -> Result<(), Failure> {
        let db = &self.inner.backends.db;
        repo::finish_with_error(db, job_id, status, &failure.code, &failure.message)
            .await
            .map_err(database)?;
        tracing::warn!(status = status.as_str(), code = %failure.code, "job ended without variants");
        match repo::find_job(db, job_id).await.map_err(database)? {
            Some(job) => self.publish_once(&job).await,
            None => Ok(()),
        }
    }

    /// Publishes the job's outcome event unless it is recorded as published.
    async fn publish_once(&self, job: &jobs::Model) -> Result<(), Failure> {
        if job.event_published_at.is_some() || !job.status.is_final() {
            return Ok(());
        }
        let event = self.event_for(job).await?;
        self.inner
            .backends
            .notifier
            .publish(&event)
            .await
            .map_err(|e| Failure::transient("notifier-unavailable", e))?;
        repo::mark_event_published(&self.inner.backends.db, job.id).await.map_err(database)?;
        Ok(())
    }

    async fn event_for(&self, job: &jobs::Model) -> Result<Event, Failure> {
        let succeeded = job.status == JobStatus::Succeeded;
        let variants = if succeeded {
            let (_, rows) = repo::find_image(&self.inner.backends.db, job.image_id)
                .await
                .map_err(database)?
                .ok_or_else(|| Failure::permanent("image-missing", "the job's image row is gone"))?;
            rows.into_iter()
                .map(|v| EventVariant {
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
        Ok(Event {
            schema_version: EVENT_SCHEMA_VERSION,
            event: if succeeded { EventKind::ImageProcessed } else { EventKind::ImageFailed },
            event_id: Event::id_for(job.id, job.status.as_str()),
            job_id: job.id,
            image_id: job.image_id,
            status: job.status.as_str().to_owned(),
            variants,
            error: job.error_code.clone().map(|code| EventError {
                code,
                message: job.error_message.clone().unwrap_or_default(),
            }),
            env: self.inner.app_env.clone(),
            occurred_at: job.finished_at.unwrap_or(job.updated_at),
        })
    }
}
