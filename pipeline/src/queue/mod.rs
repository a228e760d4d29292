//! The job queue: SQS on AWS, a table on the embedded defaults.
//!
//! Both follow SQS's contract: at-least-once delivery; a received message is
//! hidden for a visibility timeout; each receive has its own receipt; a
//! message received more often than the redrive limit goes to the
//! dead-letter queue.

pub mod doorbell;
mod lanes;
mod local;
mod sqs;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use lanes::{BULK_TURN, BulkRoom, Lane, Lanes};
pub use local::LocalJobQueue;
pub use sqs::SqsJobQueue;

/// One received message.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Stable id of the message across receives.
    pub message_id: String,
    /// Handle for this receive; needed to delete or extend it.
    pub receipt: String,
    /// The body as sent.
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
    /// When the message was first sent.
    pub sent_at: Option<DateTime<Utc>>,
    /// The fair-share group it was sent in (the tenant), if any.
    pub group: Option<String>,
    /// The lane it was received from: [`Lanes`] sets it.
    pub lane: Lane,
    /// The W3C `traceparent` it was sent with, if any.
    pub trace: Option<String>,
}

/// One message to send: its body and the fair-share group it counts
/// against. Within one queue, a group that sends much more than the others
/// waits behind its own backlog, not in front of theirs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The body (JSON).
    pub body: String,
    /// The fair-share group: the tenant's id. `None` shares one group.
    pub group: Option<String>,
    /// The W3C `traceparent` the receiver continues: beside the body, as an
    /// SQS message attribute or a column of the queue table.
    pub trace: Option<String>,
}

impl Outgoing {
    /// A message in `group`, outside any trace.
    pub fn new(body: impl Into<String>, group: Option<&str>) -> Self {
        Self { body: body.into(), group: group.map(str::to_owned), trace: None }
    }

    /// The same message, continuing the trace `traceparent` names.
    #[must_use]
    pub fn traced(self, traceparent: Option<String>) -> Self {
        Self { trace: traceparent, ..self }
    }

    /// The message a received delivery was, so that moving it keeps its
    /// group and its trace.
    pub fn again(delivery: &Delivery) -> Self {
        Self { body: delivery.body.clone(), group: delivery.group.clone(), trace: delivery.trace.clone() }
    }
}

/// A queue operation failed. Queue failures are always transient to the
/// caller: the message stays in the queue and comes back.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue service could not be reached or refused the call.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// The receipt was not one this queue hands out.
    #[error("invalid receipt: {0}")]
    InvalidReceipt(String),
}

/// A server-side move of messages from a dead-letter queue back to its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedriveStatus {
    /// `RUNNING`, `COMPLETED`, `CANCELLED` or `FAILED`.
    pub status: String,
    /// Messages moved so far.
    pub moved: u64,
    /// Messages the task set out to move.
    pub to_move: u64,
    /// Why it failed, if it did.
    pub failure: Option<String>,
}

/// The queue operations the API, the worker and the operators use.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Sends one message and returns its id.
    async fn send(&self, message: &Outgoing) -> Result<String, QueueError>;

    /// Waits up to `wait` for at most `max` messages (1–10) and hides them for `visibility`.
    async fn receive(&self, max: u32, wait: Duration, visibility: Duration) -> Result<Vec<Delivery>, QueueError>;

    /// Sends up to 10 messages in one call; one result (the message id) per message, in order.
    async fn send_batch(&self, messages: &[Outgoing]) -> Vec<Result<String, QueueError>>;

    /// Acknowledges a message for good.
    async fn delete(&self, receipt: &str) -> Result<(), QueueError>;

    /// Acknowledges up to 10 messages in one call. The result has one entry
    /// per receipt, in order: a batch can succeed for some entries and fail
    /// for others.
    async fn delete_batch(&self, receipts: &[String]) -> Vec<Result<(), QueueError>>;

    /// The shortest wait a receive honours: a receive that must come back
    /// soon waits this long rather than not at all, so that looking again
    /// does not become a busy loop. SQS counts its long poll in seconds.
    fn shortest_wait(&self) -> Duration {
        Duration::from_secs(1)
    }

    /// Hides a received message for `timeout` from now (0 releases it at once).
    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError>;

    /// How many receives the queue allows before dead-lettering, if it has a
    /// dead-letter queue at all.
    async fn redrive_limit(&self) -> Result<Option<u32>, QueueError>;

    /// Messages waiting or in flight, approximately (for progress and alarms).
    async fn approximate_depth(&self) -> Result<u64, QueueError>;

    /// The service's name for this queue that a move task can target (an
    /// SQS queue ARN), or `None` where there is no such thing.
    async fn address(&self) -> Result<Option<String>, QueueError>;

    /// On a dead-letter queue: asks the service to move its messages to the
    /// queue at `destination` (an [`JobQueue::address`]; `None` is their
    /// source queue), at most `max_per_second`. Returns the task's handle,
    /// or `None` where the service has no such operation.
    async fn start_redrive(
        &self,
        destination: Option<&str>,
        max_per_second: Option<u32>,
    ) -> Result<Option<String>, QueueError>;

    /// The state of a redrive started with [`JobQueue::start_redrive`].
    async fn redrive_status(&self, handle: &str) -> Result<RedriveStatus, QueueError>;
}
