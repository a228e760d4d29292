//! The job queue: SQS on AWS, a table on the embedded defaults.
//!
//! Both follow SQS's contract: at-least-once delivery; a received message is
//! hidden for a visibility timeout; each receive has its own receipt; a
//! message received more often than the redrive limit goes to the
//! dead-letter queue.

mod local;
mod sqs;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

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
}

/// A queue operation failed. Queue failures are always transient to the
/// caller: the message stays in the queue and comes back.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue service could not be reached or refused the call.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
}

/// The queue operations the API and the worker use.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Sends one message and returns its id.
    async fn send(&self, body: &str) -> Result<String, QueueError>;

    /// Waits up to `wait` for at most `max` messages (1–10) and hides them for `visibility`.
    async fn receive(&self, max: u32, wait: Duration, visibility: Duration) -> Result<Vec<Delivery>, QueueError>;

    /// Acknowledges a message for good.
    async fn delete(&self, receipt: &str) -> Result<(), QueueError>;

    /// Acknowledges up to 10 messages in one call. The result has one entry
    /// per receipt, in order: a batch can succeed for some entries and fail
    /// for others.
    async fn delete_batch(&self, receipts: &[String]) -> Vec<Result<(), QueueError>>;

    /// Hides a received message for `timeout` from now (0 releases it at once).
    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError>;

    /// How many receives the queue allows before dead-lettering, if it has a
    /// dead-letter queue at all.
    async fn redrive_limit(&self) -> Result<Option<u32>, QueueError>;
}
