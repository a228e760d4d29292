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
//! - `job`: handling of one message, every step classified as transient or permanent.
//! - [`disposition`]: the one pure function that decides a message's fate.

pub mod disposition;
mod job;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use imaging::{Limits, Preset};
use pipeline::queue::QueueError;
use pipeline::{Backends, Settings};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

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
    wait: Duration,
    visibility: Duration,
    /// Receives allowed before a message is dead-lettered.
    redrive_limit: u32,
    /// Whether the queue has a dead-letter queue to leave poison messages for;
    /// without one, a dead job's message is deleted instead.
    has_dead_letter_queue: bool,
    app_env: String,
}

impl Worker {
    /// Builds a worker with the default presets and limits.
    ///
    /// # Errors
    /// When the queue cannot tell its redrive policy.
    pub async fn new(backends: Backends, settings: &Settings) -> Result<Self, QueueError> {
        let queue_limit = backends.queue.redrive_limit().await?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            inner: Arc::new(Inner {
                presets: imaging::default_presets().into(),
                limits: Limits::default(),
                concurrency: settings.worker_concurrency(),
                cpu_slots: Arc::new(Semaphore::new(cores)),
                wait: settings.queue_wait(),
                visibility: settings.visibility_timeout(),
                redrive_limit: queue_limit.unwrap_or(settings.max_receive_count).max(1),
                has_dead_letter_queue: queue_limit.is_some(),
                app_env: settings.app_env.clone(),
                backends,
            }),
        })
    }

    /// Receives one batch (up to the concurrency, at most 10), handles every
    /// message in it concurrently, and returns how many it received.
    ///
    /// # Errors
    /// When the receive itself fails.
    pub async fn run_once(&self) -> Result<usize, QueueError> {
        let max = u32::try_from(self.inner.concurrency.min(10)).unwrap_or(10);
        let deliveries = self
            .inner
            .backends
            .queue
            .receive(max, self.inner.wait, self.inner.visibility)
            .await?;
        let received = deliveries.len();
        futures::future::join_all(deliveries.into_iter().map(|d| self.handle(d))).await;
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

    /// Keeps up to the configured number of jobs in flight until `shutdown`
    /// resolves, then stops receiving and gives the jobs in flight up to
    /// `deadline` to finish. A job cut off at the deadline is not lost: its
    /// message reappears after its visibility timeout.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>, deadline: Duration) {
        tokio::pin!(shutdown);
        let slots = Arc::new(Semaphore::new(self.inner.concurrency));
        let mut in_flight = JoinSet::new();
        tracing::info!(concurrency = self.inner.concurrency, "worker started");
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
            let received = tokio::select! {
                () = &mut shutdown => break,
                received = self.inner.backends.queue.receive(max, self.inner.wait, self.inner.visibility) => received,
            };
            match received {
                Ok(deliveries) => {
                    for delivery in deliveries {
                        let Some(permit) = permits.pop() else { break };
                        let worker = self.clone();
                        in_flight.spawn(async move {
                            worker.handle(delivery).await;
                            drop(permit);
                        });
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "receive failed; backing off");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            while in_flight.try_join_next().is_some() {}
        }
        tracing::info!(in_flight = in_flight.len(), "shutting down: finishing jobs in flight");
        let finished = tokio::time::timeout(deadline, async { while in_flight.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            tracing::warn!(abandoned = in_flight.len(), "shutdown deadline passed; unfinished messages will reappear");
            in_flight.abort_all();
        }
        tracing::info!("worker stopped");
    }
}
