//! Handling one message: run it to an [`Outcome`], let [`fate::plan`]
//! decide what follows, and carry the plan out. The steps of a job
//! (claim, fetch, engine, store, record) say how they failed through
//! [`Failure`]; none of them decides what the failure leads to.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use entities::jobs;
use futures::FutureExt;
use pipeline::delivery::{self, Placement};
use pipeline::event::Event;
use pipeline::jobs::{self as repo, Claim, ImageFacts, NewVariant, Transition};
use pipeline::keys;
use pipeline::message::{Incoming, JobMessage};
use pipeline::queue::{Delivery, JobQueue, Lane};
use pipeline::store::ObjectMeta;
use sha2::{Digest, Sha256};
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;
use uuid::Uuid;

use crate::Worker;
use crate::failure::Failure;
use crate::fate::{self, MessageAction, Outcome, Plan, Record};
use crate::metrics::{self, Stage};

tokio::task_local! {
    /// The message being handled, as its job's steps need it: the lane for
    /// the engine's CPU slots, and when it was sent for the event's latency.
    static RECEIVED: Received;
}

#[derive(Clone, Copy)]
struct Received {
    lane: Lane,
    sent_at: Option<chrono::DateTime<Utc>>,
}

/// A job's span: a child of the message's when the message carried the
/// job's trace (`trace_parent` None), else of the span the job was created
/// in: the presigned path, where the message is S3's event.
fn job_span(job_id: Uuid, trace_parent: Option<&str>) -> tracing::Span {
    let span = tracing::info_span!("job", job_id = %job_id);
    pipeline::trace::continue_from(&span, trace_parent);
    span
}

/// How long the worker that finished a job has to announce it before a
/// redelivery of its message announces it instead.
const PUBLISH_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// How handling a job ended, with what carrying out its plan needs.
struct Handled {
    outcome: Outcome,
    /// The job as it stands, when this run has it.
    job: Option<jobs::Model>,
    /// Why it failed, for [`Outcome::Permanent`] and [`Outcome::Transient`].
    failure: Option<Failure>,
}

impl Handled {
    fn nothing() -> Self {
        Self { outcome: Outcome::Nothing, job: None, failure: None }
    }

    fn with_job(outcome: Outcome, job: Option<jobs::Model>) -> Self {
        Self { outcome, job, failure: None }
    }

    fn failed(failure: Failure) -> Self {
        Self { outcome: failure.outcome(), job: None, failure: Some(failure) }
    }

    fn job_id(&self) -> Option<Uuid> {
        self.job.as_ref().map(|job| job.id).or_else(|| self.failure.as_ref().and_then(|f| f.job_id))
    }
}

/// The metric an outcome counts as, once its plan is known.
fn counted_as(outcome: Outcome, plan: Plan) -> metrics::Outcome {
    match outcome {
        Outcome::Succeeded => metrics::Outcome::Succeeded,
        Outcome::Permanent => metrics::Outcome::Failed,
        Outcome::AlreadyFinished => metrics::Outcome::Duplicate,
        Outcome::EventPending if plan.publish => metrics::Outcome::Duplicate,
        Outcome::Nothing => metrics::Outcome::Ignored,
        Outcome::Unparseable => metrics::Outcome::Unparseable,
        _ if plan.record == Record::Dead => metrics::Outcome::Dead,
        Outcome::EventPending | Outcome::Transient => metrics::Outcome::Retried,
    }
}

/// How a message's job settled: its outcome, the plan that followed, and
/// the code of the failure behind it, if any.
struct Settled {
    outcome: Outcome,
    plan: Plan,
    code: Option<String>,
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
    /// Handles one delivery and carries out its plan. `slot`, the job's
    /// place among the worker's concurrent jobs, is given back as soon as the
    /// job's work is done: the acknowledgement waits a few milliseconds to
    /// share a batch, and the next job need not wait with it.
    pub(crate) async fn handle(&self, delivery: Delivery, slot: Option<OwnedSemaphorePermit>) {
        if let Ok(mut in_flight) = self.inner.in_flight.lock() {
            in_flight.insert(delivery.message_id.clone(), delivery.receipt.clone());
        }
        self.inner.metrics.in_flight(1);
        let _in_flight = InFlight { worker: self, message_id: delivery.message_id.clone() };
        self.inner.metrics.received(delivery.lane);
        if let Some(sent) = delivery.sent_at {
            self.inner.metrics.queue_lag(delivery.lane, (Utc::now() - sent).to_std().unwrap_or_default());
        }
        let terms = fate::Delivery {
            receive_count: delivery.receive_count,
            redrive_limit: self.inner.redrive_limit,
            dead_letter_queue: self.inner.has_dead_letter_queue,
            base_delay: self.inner.retry_base_delay,
        };
        let incoming = match Incoming::parse(&delivery.body) {
            Ok(incoming) => incoming,
            Err(err) => {
                let plan = fate::plan(Outcome::Unparseable, terms);
                tracing::error!(message_id = %delivery.message_id, error = %err, ?plan, "unparseable message");
                self.inner.metrics.outcome(metrics::Outcome::Unparseable, None);
                drop(slot);
                self.act(plan.message, &delivery).await;
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
            lane = delivery.lane.as_str(),
        );
        pipeline::trace::continue_from(&span, delivery.trace.as_deref());
        async {
            // A panic anywhere in the job is contained here and counts as a
            // transient failure of this message only; so does a job past its
            // deadline.
            let received = Received { lane: delivery.lane, sent_at: delivery.sent_at };
            let work =
                AssertUnwindSafe(self.with_heartbeat(&delivery, RECEIVED.scope(received, self.run(incoming, terms))))
                    .catch_unwind();
            // Past the deadline the heartbeat stops with the work, so the
            // message reappears for another worker even if this one's calls
            // hang; the failure is recorded as this attempt's.
            let Settled { outcome, plan, code } = match tokio::time::timeout(self.inner.job_deadline, work).await {
                Ok(Ok(settled)) => settled,
                Ok(Err(_)) => {
                    let failure = Failure { job_id, ..Failure::transient("worker-panic", "the job panicked") };
                    self.settle(Handled::failed(failure), terms).await
                }
                Err(_) => {
                    let message = "the job took longer than its deadline; it will be retried";
                    let failure = Failure { job_id, ..Failure::transient("job-timeout", message) };
                    self.settle(Handled::failed(failure), terms).await
                }
            };
            self.inner.metrics.outcome(counted_as(outcome, plan), code.as_deref());
            drop(slot);
            self.act(plan.message, &delivery).await;
        }
        .instrument(span)
        .await;
    }

    /// Runs every job the message names to its outcome and settles each.
    /// The message's fate is that of its last job; a job that does not end
    /// in `Delete` stops the rest, which its redelivery finds again.
    async fn run(&self, incoming: Incoming, terms: fate::Delivery) -> Settled {
        let objects = match incoming {
            Incoming::Job(message) => {
                let span = job_span(message.job_id, None);
                return async { self.settle(self.process(&message).await, terms).await }.instrument(span).await;
            }
            Incoming::S3TestEvent => {
                tracing::info!("S3 test event; acknowledging");
                Vec::new()
            }
            Incoming::ObjectsCreated(objects) => objects,
        };
        let mut settled = Settled { outcome: Outcome::Nothing, plan: fate::plan(Outcome::Nothing, terms), code: None };
        for object in objects {
            settled = match self.job_for_object(&object).await {
                Ok(Some(job)) => {
                    let span = job_span(job.id, job.trace_parent.as_deref());
                    let message = JobMessage::for_job(&job);
                    async { self.settle(self.process(&message).await, terms).await }.instrument(span).await
                }
                Ok(None) => self.settle(Handled::nothing(), terms).await,
                Err(failure) => self.settle(Handled::failed(failure), terms).await,
            };
            if settled.plan.message != MessageAction::Delete {
                break;
            }
        }
        settled
    }

    /// Plans what follows from `handled` and records and announces it. When
    /// that itself fails, the failure is transient and planned in turn.
    async fn settle(&self, handled: Handled, terms: fate::Delivery) -> Settled {
        let plan = fate::plan(handled.outcome, terms);
        if let Some(failure) = &handled.failure {
            tracing::warn!(code = %failure.code, error = %failure.message, cause = failure.cause(), ?plan, "job step failed");
        }
        let failure = match self.carry_out(plan, &handled).await {
            Ok(()) => {
                let code = handled.failure.map(|f| f.code);
                return Settled { outcome: handled.outcome, plan, code };
            }
            Err(failure) => failure,
        };
        if handled.outcome == Outcome::Transient {
            tracing::error!(code = %failure.code, error = %failure.message, cause = failure.cause(), ?plan, "could not record the job's failure");
            let code = handled.failure.map(|f| f.code);
            return Settled { outcome: handled.outcome, plan, code };
        }
        tracing::warn!(code = %failure.code, error = %failure.message, cause = failure.cause(), "could not record or announce the job");
        let failure = match handled.job_id() {
            Some(job_id) => failure.for_job(job_id),
            None => failure,
        };
        let code = failure.code.clone();
        let handled = Handled { outcome: Outcome::Transient, job: handled.job, failure: Some(failure) };
        let plan = fate::plan(Outcome::Transient, terms);
        if let Err(failure) = self.carry_out(plan, &handled).await {
            tracing::error!(code = %failure.code, error = %failure.message, cause = failure.cause(), ?plan, "could not record the job's failure");
        }
        Settled { outcome: Outcome::Transient, plan, code: Some(code) }
    }

    /// Writes what the plan records on the job, then announces it if the plan says so.
    async fn carry_out(&self, plan: Plan, handled: &Handled) -> Result<(), Failure> {
        let mut job = handled.job.clone();
        if let (Some(failure), Some(job_id)) = (&handled.failure, handled.job_id()) {
            let transition = match plan.record {
                Record::Nothing => None,
                Record::LastError => {
                    // Best effort: the retry happens whether or not this is recorded.
                    let noted = self.inner.backends.jobs().record_retry(job_id, &failure.code, &failure.message).await;
                    if let Err(err) = noted {
                        tracing::debug!(error = %err, "could not keep the job's last error");
                    }
                    None
                }
                Record::Failed => Some(Transition::Fail),
                Record::Dead => Some(Transition::Die),
            };
            if let Some(transition) = transition {
                let jobs = self.inner.backends.jobs();
                let ended = jobs.end_with_error(job_id, transition, &failure.code, &failure.message).await?;
                tracing::warn!(status = transition.to().as_str(), code = %failure.code, "job ended without variants");
                // A job that had already ended keeps its state, and its event may still be owed.
                job = match ended {
                    Some(job) => Some(job),
                    None => repo::find_job(&self.inner.backends.db, job_id).await?,
                };
            }
        }
        match &job {
            Some(job) if plan.publish => self.publish_once(job).await,
            _ => Ok(()),
        }
    }

    /// Does to the message what its plan says.
    async fn act(&self, action: MessageAction, delivery: &Delivery) {
        let queue = &self.inner.lanes;
        let acted = match action {
            MessageAction::Delete => self.inner.acker.delete(delivery.receipt.clone()).await,
            MessageAction::Leave => Ok(()),
            MessageAction::RetryAfter(delay) => queue.change_visibility(&delivery.receipt, delay).await,
            MessageAction::Release => queue.change_visibility(&delivery.receipt, Duration::ZERO).await,
        };
        if let Err(err) = acted {
            // Not fatal: an unacknowledged message simply comes back, and
            // the job's recorded state makes the redelivery a no-op.
            tracing::warn!(error = %err, ?action, "queue call failed; the message will reappear");
        }
    }

    /// Runs `work` while extending the message's visibility about every
    /// half timeout, so a long job is not redelivered to another worker.
    async fn with_heartbeat<T>(&self, delivery: &Delivery, work: impl Future<Output = T>) -> T {
        let period = self.inner.visibility / 2;
        let heartbeat = async {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                ticks.tick().await;
                if let Err(err) = self.inner.lanes.change_visibility(&delivery.receipt, self.inner.visibility).await {
                    tracing::warn!(error = %err, "visibility heartbeat failed");
                }
            }
        };
        tokio::select! {
            result = work => result,
            never = heartbeat => never,
        }
    }

    /// Advances the job of `message` to its outcome.
    async fn process(&self, message: &JobMessage) -> Handled {
        match self.advance(message).await {
            Ok(handled) => handled,
            Err(failure) => Handled::failed(failure.for_job(message.job_id)),
        }
    }

    async fn advance(&self, message: &JobMessage) -> Result<Handled, Failure> {
        let job = match self.inner.backends.jobs().claim(message.job_id).await? {
            Claim::Started(job) => {
                self.link_to_original(&job).await;
                job
            }
            Claim::Finished(job) => {
                // A redelivery of a finished job: do no work again, but make
                // sure its event went out (the last run may have crashed
                // between commit and publish). One that finished moments
                // ago is most likely being announced by the worker that
                // finished it right now.
                let just_finished = job.finished_at.is_some_and(|at| Utc::now() - at < PUBLISH_GRACE);
                let outcome = if job.event_published_at.is_none() && just_finished {
                    Outcome::EventPending
                } else {
                    Outcome::AlreadyFinished
                };
                tracing::info!(status = job.status.as_str(), ?outcome, "job already finished");
                return Ok(Handled::with_job(outcome, Some(job)));
            }
            Claim::Missing => {
                tracing::warn!("no such job; dropping the message");
                return Ok(Handled::nothing());
            }
        };
        Ok(match self.make_variants(&job, message).await? {
            Some(job) => Handled::with_job(Outcome::Succeeded, Some(job)),
            // A concurrent delivery finished the job and announces it.
            None => Handled::with_job(Outcome::AlreadyFinished, None),
        })
    }

    /// A replay is a trace of its own, linked to its original's. Untraced,
    /// there is nothing to link, and the original is not read.
    async fn link_to_original(&self, job: &jobs::Model) {
        let Some(original) = job.replay_of else { return };
        if pipeline::trace::current().is_none() {
            return;
        }
        match repo::find_job(&self.inner.backends.db, original).await {
            Ok(Some(original)) => pipeline::trace::link_to(&tracing::Span::current(), original.trace_parent.as_deref()),
            Ok(None) => {}
            Err(err) => tracing::debug!(error = %err, "could not read the replayed job's trace"),
        }
    }

    /// Downloads, processes, stores and records. Returns the job if this run
    /// moved it to `succeeded` (`None`: a concurrent delivery did).
    async fn make_variants(&self, job: &jobs::Model, message: &JobMessage) -> Result<Option<jobs::Model>, Failure> {
        let metrics = &self.inner.metrics;
        let started = Instant::now();
        let original = self
            .inner
            .backends
            .store
            .get(&keys::original(job.image_id))
            .instrument(tracing::info_span!("fetch"))
            .await?;
        metrics.stage(Stage::Download, started.elapsed());

        let presets = self.presets_for(message)?;
        let (output, sha256) = self.run_engine(original, presets).await?;
        let source = output.source;
        let backends = &self.inner.backends;
        let placement = match delivery::placement(
            &backends.db,
            job.image_id,
            job.tenant_id,
            backends.delivery.default_mode,
        )
        .await
        {
            Ok(placement) => placement,
            // Deleted while the engine ran: its job went with it, and nothing is stored.
            Err(sea_orm::DbErr::RecordNotFound(_)) => return Ok(None),
            Err(other) => return Err(other.into()),
        };
        let new_variants = self
            .store_variants(job.image_id, &placement, output.variants)
            .instrument(tracing::info_span!("store"))
            .await?;

        let started = Instant::now();
        // Tagged before the job is recorded, so a succeeded job's original
        // always carries what the bucket's lifecycle expires it by.
        let retention_days = backends.retention.days_for(&backends.db, job.tenant_id).await?;
        if retention_days > 0 {
            backends.store.tag_for_retention(&keys::original(job.image_id), retention_days).await?;
        }
        let facts = ImageFacts {
            format: source.format.to_owned(),
            width: i32::try_from(source.width).unwrap_or(i32::MAX),
            height: i32::try_from(source.height).unwrap_or(i32::MAX),
            sha256,
            retention_days,
            placeholder: output.placeholder.map(|p| (p.thumbhash, p.dominant_colour)),
        };
        let written: Vec<String> = new_variants.iter().map(|v| v.object_key.clone()).collect();
        let replaced = replaced_keys(repo::image_variants(&backends.db, job.image_id).await?, &new_variants);
        let moved = self
            .inner
            .backends
            .jobs()
            .succeed(job.id, facts, new_variants)
            .instrument(tracing::info_span!("commit"))
            .await?;
        metrics.stage(Stage::Db, started.elapsed());
        if moved.is_none() {
            self.discard_if_deleted(job, &written).await?;
        } else {
            self.remove_replaced(&replaced).await;
        }
        Ok(moved)
    }

    /// Removes the objects whose rows now name another key for the same
    /// preset version: a tenant's new delivery mode moved them, and the old
    /// copy must not stay reachable (a public URL after the switch to
    /// signed). Best effort: a failure leaves an orphan, and is logged.
    async fn remove_replaced(&self, keys: &[String]) {
        for key in keys {
            if let Err(err) = self.inner.backends.store.delete(key).await {
                tracing::warn!(key = %key, error = %err, "could not remove a variant's previous object");
            }
        }
    }

    /// A job that could not be recorded may belong to an image deleted while
    /// it ran: then the variants it stored (`written`) must not outlive the
    /// deletion, which may have listed the image's objects before they
    /// landed. (Otherwise a concurrent delivery recorded the job, and its
    /// variants are those same objects.)
    async fn discard_if_deleted(&self, job: &jobs::Model, written: &[String]) -> Result<(), Failure> {
        let backends = &self.inner.backends;
        if repo::image_exists(&backends.db, job.image_id).await? {
            return Ok(());
        }
        for key in written {
            backends.store.delete(key).await?;
        }
        tracing::info!(image_id = %job.image_id, objects = written.len(), "image deleted while its job ran; discarded its variants");
        Ok(())
    }

    /// Runs the engine on the blocking pool, one CPU slot at a time; returns
    /// its output and the original's hash. Bulk work first takes one of the
    /// bulk lane's CPU slots, which leave room for live uploads.
    async fn run_engine(
        &self,
        original: Bytes,
        presets: Vec<imaging::Preset>,
    ) -> Result<(imaging::Output, String), Failure> {
        let (output, sha256) = {
            let stopping =
                |e| Failure::transient("worker-stopping", "the worker stopped; the job will be retried").caused_by(e);
            let _bulk = match RECEIVED.try_with(|r| r.lane).unwrap_or_default() {
                Lane::Bulk => Some(self.inner.bulk_cpu_slots.acquire().await.map_err(stopping)?),
                Lane::Live => None,
            };
            let _cpu = self.inner.cpu_slots.acquire().await.map_err(stopping)?;
            let limits = self.inner.limits.clone();
            // The engine's stages (decode, resize, encode) are its children.
            let span = tracing::info_span!("engine", bytes = original.len());
            tokio::task::spawn_blocking(move || {
                span.in_scope(|| {
                    let sha256 = hex::encode(Sha256::digest(&original));
                    (imaging::process(&original, &presets, &limits), sha256)
                })
            })
            .await
            .map_err(|e| {
                Failure::transient("engine-panic", "the image engine failed; the job will be retried").caused_by(e)
            })?
        };
        let output = output.map_err(|err| match err {
            // A contained panic may be a bug we fix later: retry, then dead-letter.
            imaging::ImagingError::Panicked => Failure::transient(err.code(), &err),
            other => Failure::permanent(other.code(), &other),
        })?;
        let metrics = &self.inner.metrics;
        metrics.stage(Stage::Decode, output.timings.decode);
        metrics.stage(Stage::Resize, output.timings.resize);
        metrics.stage(Stage::Encode, output.timings.encode);
        metrics.stage(Stage::Placeholder, output.timings.placeholder);
        Ok((output, sha256))
    }

    /// Stores each distinct encode once and returns the rows to record.
    /// Variants the engine encoded once for several presets share one
    /// object: their rows point at the key of the one that was encoded, so a
    /// small image is one PUT, not three. Nothing deletes variant objects,
    /// so a shared one cannot vanish from under a row.
    async fn store_variants(
        &self,
        image_id: Uuid,
        placement: &Placement,
        variants: Vec<imaging::Variant>,
    ) -> Result<Vec<NewVariant>, Failure> {
        let started = Instant::now();
        let own_keys: Vec<String> = variants
            .iter()
            .map(|v| placement.key(image_id, &v.preset, &v.preset_version, v.format.extension()))
            .collect();
        let rows = variants
            .iter()
            .enumerate()
            .map(|(i, v)| NewVariant {
                width: i32::try_from(v.width).unwrap_or(i32::MAX),
                height: i32::try_from(v.height).unwrap_or(i32::MAX),
                bytes: i64::try_from(v.data.len()).unwrap_or(i64::MAX),
                format: v.format.as_str().to_owned(),
                preset: v.preset.clone(),
                preset_version: v.preset_version.clone(),
                object_key: own_keys[v.same_as.unwrap_or(i)].clone(),
            })
            .collect();
        let store = &self.inner.backends.store;
        let uploads =
            variants.into_iter().zip(own_keys).filter(|(v, _)| v.same_as.is_none()).map(|(v, key)| async move {
                let meta = ObjectMeta {
                    content_type: v.format.content_type().to_owned(),
                    cache_control: Some(keys::VARIANT_CACHE_CONTROL.to_owned()),
                };
                store.put(&key, Bytes::from(v.data), &meta).await
            });
        futures::future::try_join_all(uploads).await?;
        self.inner.metrics.stage(Stage::Upload, started.elapsed());
        Ok(rows)
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

    /// Publishes the job's outcome event unless it is recorded as published
    /// (or the job has not ended).
    pub(crate) async fn publish_once(&self, job: &jobs::Model) -> Result<(), Failure> {
        if job.event_published_at.is_some() || !job.status.is_final() {
            return Ok(());
        }
        let span = tracing::info_span!("publish", job_id = %job.id);
        // Outside a job's span (the sweep of expired uploads), in the trace
        // the job was created in.
        if tracing::Span::current().is_none() {
            pipeline::trace::continue_from(&span, job.trace_parent.as_deref());
        }
        self.publish(job).instrument(span).await
    }

    async fn publish(&self, job: &jobs::Model) -> Result<(), Failure> {
        let started = Instant::now();
        // A deleted image takes its jobs with it, so a job still recorded
        // has its image; without one there is nothing to announce.
        let Some((image, variants)) = repo::find_image(&self.inner.backends.db, job.tenant_id, job.image_id).await?
        else {
            return Ok(());
        };
        let backends = &self.inner.backends;
        let links = self.inner.links.as_ref();
        let event = Event::for_job(job, Some(&image), variants, links, &backends.delivery, self.inner.app_env.clone());
        self.inner.backends.notifier.publish(&event).await.map_err(|e| {
            Failure::transient("notifier-unavailable", "the outcome event could not be published; it will be retried")
                .caused_by(e)
        })?;
        self.inner.backends.jobs().mark_event_published(job.id).await?;
        self.inner.metrics.stage(Stage::Publish, started.elapsed());
        // The objective is about uploads: bulk work is expected to wait.
        if let Ok(Received { lane: Lane::Live, sent_at: Some(sent) }) = RECEIVED.try_with(|r| *r) {
            self.inner.metrics.event_sent((Utc::now() - sent).to_std().unwrap_or_default());
        }
        Ok(())
    }
}

/// The keys of `existing` rows that the same preset and version now store
/// elsewhere, and that no row names after the job: neither a new one nor an
/// old one it leaves alone (presets that shared one encode share its key).
fn replaced_keys(existing: Vec<entities::variants::Model>, new: &[NewVariant]) -> Vec<String> {
    let remade = |old: &entities::variants::Model| {
        new.iter().find(|n| n.preset == old.preset && n.preset_version == old.preset_version)
    };
    let (replaced, kept): (Vec<_>, Vec<_>) = existing.into_iter().partition(|old| remade(old).is_some());
    let still_named =
        |key: &String| new.iter().any(|n| &n.object_key == key) || kept.iter().any(|k| &k.object_key == key);
    let mut keys: Vec<String> =
        replaced.into_iter().map(|old| old.object_key).filter(|key| !still_named(key)).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(preset: &str, key: &str) -> entities::variants::Model {
        entities::variants::Model {
            id: 0,
            image_id: Uuid::nil(),
            preset: preset.into(),
            preset_version: "v1".into(),
            format: "webp".into(),
            width: 1,
            height: 1,
            bytes: 1,
            object_key: key.into(),
            created_at: Utc::now(),
        }
    }

    fn new(preset: &str, key: &str) -> NewVariant {
        let old = row(preset, key);
        NewVariant {
            preset: old.preset,
            preset_version: old.preset_version,
            format: old.format,
            width: 1,
            height: 1,
            bytes: 1,
            object_key: old.object_key,
        }
    }

    #[test]
    fn only_objects_no_row_names_any_more_are_replaced() {
        // Three presets shared one public object; only thumb is remade, under private/.
        let existing = vec![row("thumb", "variants/a"), row("medium", "variants/a"), row("large", "variants/b")];
        assert!(replaced_keys(existing.clone(), &[new("thumb", "private/a")]).is_empty(), "medium still names it");
        let all = [new("thumb", "private/a"), new("medium", "private/a"), new("large", "private/b")];
        assert_eq!(replaced_keys(existing.clone(), &all), ["variants/a", "variants/b"]);
        let same = [new("thumb", "variants/a"), new("medium", "variants/a"), new("large", "variants/b")];
        assert!(replaced_keys(existing, &same).is_empty(), "a remake to the same keys removes nothing");
    }
}
