//! [`Notifier`] on Amazon SNS.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;

use super::{Notifier, NotifyError};
use crate::event::Event;

/// Publishes events to one topic, with typed message attributes that
/// subscription filter policies can match (`event`, `status`, `env`).
#[derive(Clone, Debug)]
pub struct SnsNotifier {
    client: Client,
    topic_arn: String,
}

impl SnsNotifier {
    /// A notifier for `topic_arn`.
    pub fn new(client: Client, topic_arn: String) -> Self {
        Self { client, topic_arn }
    }
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, NotifyError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| NotifyError(e.to_string()))
}

#[async_trait]
impl Notifier for SnsNotifier {
    #[tracing::instrument(skip_all, fields(job_id = %event.job_id, event = event.event.as_str()))]
    async fn publish(&self, event: &Event) -> Result<(), NotifyError> {
        let body = serde_json::to_string(event).map_err(|e| NotifyError(e.to_string()))?;
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(format!("{} {}", event.event.as_str(), event.job_id))
            .message(body)
            .message_attributes("event", string_attribute(event.event.as_str())?)
            .message_attributes("status", string_attribute(&event.status)?)
            .message_attributes("env", string_attribute(&event.env)?)
            .send()
            .await
            .map_err(|e| NotifyError(DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}
