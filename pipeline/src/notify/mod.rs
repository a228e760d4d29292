//! Outcome events, delivered to machines and people.
//!
//! The primary notifier is SNS on AWS and the console on the embedded
//! defaults; its failure makes the worker retry the announcement. Webhooks
//! (generic JSON, Slack, Discord) go through the durable outbox
//! (`crate::outbox`) instead: a webhook that is down delays no job and fails
//! none, and a restart loses none of its deliveries.

mod console;
pub mod render;
mod sns;
mod webhook;

use async_trait::async_trait;

pub use console::ConsoleNotifier;
pub use sns::SnsNotifier;
pub use webhook::{SigningKey, Webhook, WebhookFormat};

use crate::event::{Event, EventKind};

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

/// Which events reach people's channels (chat topic, Slack, Discord).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatFilter(pub Vec<EventKind>);

impl ChatFilter {
    /// Parses a comma-separated list such as `image.failed,replay.summary`.
    pub fn parse(list: &str) -> Self {
        let kinds =
            [EventKind::ImageProcessed, EventKind::ImageFailed, EventKind::ReplaySummary, EventKind::ImageDeleted];
        Self(
            list.split(',')
                .map(str::trim)
                .filter_map(|name| kinds.iter().copied().find(|k| k.as_str() == name))
                .collect(),
        )
    }

    /// Whether people want to hear about this event.
    pub fn admits(&self, event: &Event) -> bool {
        self.0.contains(&event.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_filters_parse_known_event_names_and_ignore_the_rest() {
        let filter = ChatFilter::parse(" image.failed , replay.summary,nonsense");
        assert_eq!(filter.0, vec![EventKind::ImageFailed, EventKind::ReplaySummary]);
    }
}
