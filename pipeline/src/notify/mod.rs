//! Outcome events: SNS on AWS; the console and an optional webhook on the
//! embedded defaults.

mod local;
mod sns;

use async_trait::async_trait;

pub use local::LocalNotifier;
pub use sns::SnsNotifier;

use crate::event::Event;

/// Publishing failed. The job's outcome is already recorded, so the caller
/// publishes again on the message's next delivery.
#[derive(Debug, thiserror::Error)]
#[error("notifier unavailable: {0}")]
pub struct NotifyError(pub String);

/// Publishes outcome events.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// Publishes one event.
    async fn publish(&self, event: &Event) -> Result<(), NotifyError>;
}
