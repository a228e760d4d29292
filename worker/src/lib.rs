//! # worker
//!
//! The queue consumer. For each message: claim the job, fetch the original,
//! run the engine on the blocking pool, store the variants, record
//! everything in one transaction, publish the outcome event, and only then
//! acknowledge the message.
//!
//! The same code runs on SQS and on the embedded queue: the worker only sees
//! the [`pipeline::queue::JobQueue`] trait.
//!
//! # Layout
//! - [`Worker`]: the consumer loop ([`Worker::run_until_stopped`]) and its
//!   step function ([`Worker::run_once`]), which tests call until the queue is empty.
//! - `job`: handling of one message: run it to an outcome, plan, carry the
//!   plan out; with a visibility heartbeat and panic isolation.
//! - [`fate`]: the one pure function that decides what follows an outcome:
//!   what to record, whether to announce, what to do with the message.
//! - `failure`: a failed step's stable code, and whether it may pass.
//! - `intake`: jobs from S3 notifications (presigned and direct uploads),
//!   and the sweep that fails presigned uploads that never came.
//! - `ack`: batched acknowledgements.
//! - [`metrics`]: Prometheus metrics and their HTTP endpoint.
//! - `protection`: ECS task scale-in protection while busy.

mod ack;
mod failure;
pub mod fate;
mod intake;
mod job;
pub mod metrics;
mod protection;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imaging::{Limits, Preset};
use pipeline::queue::{BulkRoom, JobQueue, Lane, Lanes, QueueError};
use pipeline::{Backends, Settings};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::ack::Acker;
use crate::metrics::Metrics;
use crate::protection::ScaleInProtection;

/// A worker: the backends, the presets, and how much it may run at once.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    backends: Backends,
    presets: Arc<[Preset]>,
    limits: Limits,
    /// Jobs in flight at once; also the batch size of one receive (max 10).
    concurrency: usize,
    /// CPU-bound engine runs at once: one per core, however many jobs wait on I/O.
    cpu_slots: Arc<Semaphore>,
    /// The live and the bulk lane.
    lanes: Lanes,
    /// Jobs of the bulk lane in flight at once: the concurrency less the
    /// slots kept for live uploads.
    bulk_slots: Arc<Semaphore>,
    /// How many bulk slots there are.
    bulk_capacity: usize,
    /// Engine runs of bulk work at once: the cores less the slots kept for
    /// live uploads, so that an upload finds a core while a reprocess runs.
    bulk_cpu_slots: Arc<Semaphore>,
    wait: Duration,
    visibility: Duration,
    /// The longest one message's job may take ([`Settings::job_deadline_secs`]).
    job_deadline: Duration,
    retry_base_delay: Duration,
    /// Receives allowed before a message is dead-lettered.
    redrive_limit: u32,
    /// Whether the queue has a dead-letter queue to leave poison messages for;
    /// without one, a dead job's message is deleted instead.
    has_dead_letter_queue: bool,
    app_env: String,
    /// The API's public links, for variant URLs in events (when its address is known).
    links: Option<pipeline::links::Links>,
    /// How long a presigned upload URL lives; jobs still waiting for their
    /// upload after it (and a grace period) are failed as `upload-expired`.
    upload_ttl: Duration,
    acker: Acker,
    metrics: Metrics,
    /// Receipts of the messages being handled, by message id, so that a
    /// shutdown can release the ones it could not finish.
    in_flight: Mutex<HashMap<String, String>>,
}

/// How often a worker looks for presigned uploads that never came.
const UPLOAD_SWEEP_PERIOD: Duration = Duration::from_secs(60);
/// How often a worker samples the depth of its queues for `/metrics`.
const DEPTH_PERIOD: Duration = Duration::from_secs(15);
/// How often a worker looks for webhook deliveries that are due.
const OUTBOX_PERIOD: Duration = Duration::from_millis(500);
/// How often a worker with no webhooks expires the deliveries others left.
const OUTBOX_IDLE_PERIOD: Duration = Duration::from_secs(60);

/// The worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The queue did not answer.
    #[error("the queue is unavailable")]
    Queue(#[from] QueueError),
    /// The presets setting is invalid.
    #[error("invalid presets: {0}")]
    Presets(String),
}

impl Worker {
    /// Builds a worker with the configured presets and the default limits.
    ///
    /// # Errors
    /// When the queue cannot tell its redrive policy, or the presets are invalid.
    pub async fn new(backends: Backends, settings: &Settings) -> Result<Self, StartError> {
        let presets = settings.presets().map_err(StartError::Presets)?;
        let queue_limit = backends.queue.redrive_limit().await?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let concurrency = settings.worker_concurrency();
        let reserved = settings.live_reserved_slots;
        let bulk_capacity = concurrency.saturating_sub(reserved).max(1);
        let lanes = backends.lanes();
        Ok(Self {
            inner: Arc::new(Inner {
                presets: presets.into(),
                limits: Limits::default(),
                concurrency,
                cpu_slots: Arc::new(Semaphore::new(cores)),
                bulk_slots: Arc::new(Semaphore::new(bulk_capacity)),
                bulk_capacity,
                bulk_cpu_slots: Arc::new(Semaphore::new(cores.saturating_sub(reserved).max(1))),
                wait: settings.queue_wait(),
                visibility: settings.visibility_timeout(),
                job_deadline: Duration::from_secs(settings.job_deadline_secs.max(1)),
                retry_base_delay: Duration::from_millis(settings.retry_base_delay_ms),
                redrive_limit: queue_limit.unwrap_or(settings.max_receive_count).max(1),
                has_dead_letter_queue: queue_limit.is_some(),
                app_env: settings.app_env.clone(),
                links: settings.public_base_url.as_deref().map(pipeline::links::Links::at),
                upload_ttl: Duration::from_secs(settings.upload_url_ttl_secs),
                acker: Acker::spawn(Arc::new(lanes.clone())),
                lanes,
                metrics: Metrics::default(),
                in_flight: Mutex::new(HashMap::new()),
                backends,
            }),
        })
    }

    /// The worker's metrics, as Prometheus text.
    pub fn metrics_text(&self) -> String {
        self.inner.metrics.render()
    }

    /// Receives one batch (up to the concurrency, at most 10), handles every
    /// message in it concurrently, and returns how many it received.
    ///
    /// # Errors
    /// When the receive itself fails.
    pub async fn run_once(&self) -> Result<usize, QueueError> {
        let max = u32::try_from(self.inner.concurrency.min(10)).unwrap_or(10);
        let room = || self.bulk_room();
        let deliveries = self.inner.lanes.receive_lanes(max, &room, self.inner.wait, self.inner.visibility).await?;
        let received = deliveries.len();
        futures::future::join_all(deliveries.into_iter().map(|d| self.handle(d, None))).await;
        Ok(received)
    }

    /// Calls [`Worker::run_once`] until a receive comes back empty.
    ///
    /// # Errors
    /// When a receive fails.
    pub async fn drain(&self) -> Result<usize, QueueError> {
        let mut total = 0;
        loop {
            match self.run_once().await? {
                0 => return Ok(total),
                n => total += n,
            }
        }
    }

    /// Delivers the webhook outbox's due rows, forever: any worker process
    /// delivers any process's deliveries.
    pub async fn deliver_webhooks(self) {
        let backends = &self.inner.backends;
        let period = if backends.outbox.is_empty() { OUTBOX_IDLE_PERIOD } else { OUTBOX_PERIOD };
        let (outbox, db, worker) = (backends.outbox.clone(), backends.db.clone(), self.clone());
        outbox.run(db, period, move |round| worker.inner.metrics.webhooks(round)).await;
    }

    /// Sets the queue-depth gauges every [`DEPTH_PERIOD`], forever: the
    /// backlog and the dead letters on the dashboards of a deployment whose
    /// queue service has no metrics of its own (the queue table).
    async fn sample_queue_depths(self) {
        let backends = &self.inner.backends;
        let queues = [
            ("live", Some(&backends.queue)),
            ("bulk", backends.bulk.as_ref()),
            ("live_dlq", backends.dead_letters.as_ref()),
            ("bulk_dlq", backends.bulk_dead_letters.as_ref()),
        ];
        let mut ticks = tokio::time::interval(DEPTH_PERIOD);
        loop {
            ticks.tick().await;
            for (name, queue) in queues {
                let Some(queue) = queue else { continue };
                match queue.approximate_depth().await {
                    Ok(depth) => self.inner.metrics.queue_depth(name, depth),
                    Err(err) => tracing::debug!(queue = name, error = %err, "could not sample the queue's depth"),
                }
            }
        }
    }

    /// Keeps up to the configured number of jobs in flight until `shutdown`
    /// resolves. Then it stops receiving and gives the jobs in flight up to
    /// `deadline` to finish; the messages of jobs still unfinished are
    /// released (visibility 0) so another worker picks them up at once.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>, deadline: Duration) {
        tokio::pin!(shutdown);
        let slots = Arc::new(Semaphore::new(self.inner.concurrency));
        let mut tasks = JoinSet::new();
        let protection = ScaleInProtection::from_env();
        let mut protected = false;
        tracing::info!(concurrency = self.inner.concurrency, "worker started");
        let sweeper = tokio::spawn({
            let worker = self.clone();
            async move {
                let mut ticks = tokio::time::interval(UPLOAD_SWEEP_PERIOD);
                loop {
                    ticks.tick().await;
                    worker.expire_uploads().await;
                }
            }
        });
        let outbox = tokio::spawn(self.clone().deliver_webhooks());
        let depths = tokio::spawn(self.clone().sample_queue_depths());
        loop {
            let first = tokio::select! {
                () = &mut shutdown => break,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let mut permits = vec![first];
            while permits.len() < 10 {
                match slots.clone().try_acquire_owned() {
                    Ok(permit) => permits.push(permit),
                    Err(_) => break,
                }
            }
            let max = u32::try_from(permits.len()).unwrap_or(1);
            // Bulk work may fill what the live reserve leaves; this loop is
            // the only taker of bulk slots, so the room it sees holds until
            // the deliveries are spawned.
            let room = || self.bulk_room();
            let received = tokio::select! {
                () = &mut shutdown => break,
                received = self.inner.lanes.receive_lanes(max, &room, self.inner.wait, self.inner.visibility) => received,
            };
            match received {
                Ok(deliveries) => {
                    for delivery in deliveries {
                        let Some(permit) = permits.pop() else { break };
                        let bulk = match delivery.lane {
                            Lane::Bulk => self.inner.bulk_slots.clone().try_acquire_owned().ok(),
                            Lane::Live => None,
                        };
                        let worker = self.clone();
                        tasks.spawn(async move {
                            worker.handle(delivery, Some(permit)).await;
                            drop(bulk);
                        });
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "receive failed; backing off");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            while tasks.try_join_next().is_some() {}
            if let Some(protection) = &protection {
                let busy = !tasks.is_empty();
                if busy != protected {
                    protection.set(busy).await;
                    protected = busy;
                }
            }
        }

        sweeper.abort();
        depths.abort();
        // A delivery cut short is leased, and due again when the lease ends.
        outbox.abort();
        tracing::info!(in_flight = tasks.len(), "shutting down: finishing jobs in flight");
        let finished = tokio::time::timeout(deadline, async { while tasks.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            // Take the receipts before aborting: an aborted job drops its
            // in-flight entry as it unwinds.
            let unfinished = self.in_flight_receipts();
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            self.release(unfinished).await;
        }
        if let Some(protection) = &protection {
            protection.set(false).await;
        }
        tracing::info!("worker stopped");
    }

    /// The bulk slots free now, and whether bulk jobs hold the others.
    fn bulk_room(&self) -> BulkRoom {
        let free = self.inner.bulk_slots.available_permits();
        BulkRoom { free: u32::try_from(free).unwrap_or(u32::MAX), busy: free < self.inner.bulk_capacity }
    }

    fn in_flight_receipts(&self) -> Vec<String> {
        match self.inner.in_flight.lock() {
            Ok(in_flight) => in_flight.values().cloned().collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Makes the messages of aborted jobs visible again at once.
    async fn release(&self, receipts: Vec<String>) {
        tracing::warn!(released = receipts.len(), "shutdown deadline passed; releasing unfinished messages");
        for receipt in receipts {
            if let Err(err) = self.inner.lanes.change_visibility(&receipt, Duration::ZERO).await {
                tracing::warn!(error = %err, "release failed; the message reappears after its visibility timeout");
            }
        }
    }
}

/// Serves `/metrics` (Prometheus text) and `/healthz` on `listener` until `shutdown`.
///
/// # Errors
/// When the server fails.
pub async fn serve_metrics(
    worker: Worker,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let worker = worker.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        worker.metrics_text(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }));
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "metrics listening");
    }
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
