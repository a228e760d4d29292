//! [`Notifier`] on Amazon SNS.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;

use super::{ChatFilter, Notifier, NotifyError, render};
use crate::event::Event;

/// Publishes each event to the event topic with `MessageStructure=json`
/// (JSON for machines, text for email) and typed message attributes that
/// subscription filter policies match: `event`, `status`, `env` (String) and
/// `preset` (String.Array). Events that pass the chat filter also go to the
/// chat topic as AWS Chatbot custom notifications.
#[derive(Clone, Debug)]
pub struct SnsNotifier {
    client: Client,
    topic_arn: String,
    chat: Option<(String, ChatFilter)>,
    base_url: Option<String>,
}

impl SnsNotifier {
    /// A notifier for `topic_arn`, and optionally a chat topic with its filter.
    pub fn new(
        client: Client,
        topic_arn: String,
        chat: Option<(String, ChatFilter)>,
        base_url: Option<String>,
    ) -> Self {
        Self { client, topic_arn, chat, base_url }
    }

    fn attributes(event: &Event) -> Result<Vec<(&'static str, MessageAttributeValue)>, NotifyError> {
        let string = |data_type: &str, value: String| {
            MessageAttributeValue::builder()
                .data_type(data_type)
                .string_value(value)
                .build()
                .map_err(|e| NotifyError(e.to_string()))
        };
        let mut attributes = vec![
            ("event", string("String", event.event.as_str().to_owned())?),
            ("status", string("String", event.status.clone())?),
            ("env", string("String", event.env.clone())?),
        ];
        if let Some(tenant) = event.tenant_id {
            attributes.push(("tenant_id", string("String", tenant.to_string())?));
        }
        let presets = event.presets();
        if !presets.is_empty() {
            let array = serde_json::to_string(&presets).map_err(|e| NotifyError(e.to_string()))?;
            attributes.push(("preset", string("String.Array", array)?));
        }
        // The publish's own span, so a subscriber continues the job's trace.
        if let Some(traceparent) = crate::trace::current() {
            attributes.push((crate::trace::TRACEPARENT, string("String", traceparent)?));
        }
        Ok(attributes)
    }
}

fn failed<E: std::error::Error + 'static, R: std::fmt::Debug>(err: aws_sdk_sns::error::SdkError<E, R>) -> NotifyError {
    NotifyError(DisplayErrorContext(err).to_string())
}

#[async_trait]
impl Notifier for SnsNotifier {
    #[tracing::instrument(name = "sns", skip_all, fields(job_id = ?event.job_id, event = event.event.as_str()))]
    async fn publish(&self, event: &Event) -> Result<(), NotifyError> {
        let attributes = Self::attributes(event)?;
        let (subject, _) = render::email(event, self.base_url.as_deref());
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message_structure("json")
            .message(render::sns_message(event, self.base_url.as_deref()));
        for (name, value) in &attributes {
            request = request.message_attributes(*name, value.clone());
        }
        request.send().await.map_err(failed)?;

        if let Some((chat_topic, _)) = self.chat.as_ref().filter(|(_, filter)| filter.admits(event)) {
            let mut request = self
                .client
                .publish()
                .topic_arn(chat_topic)
                .message(render::chatbot(event, self.base_url.as_deref()).to_string());
            for (name, value) in attributes {
                request = request.message_attributes(name, value);
            }
            // The event is out on the main topic; a chat hiccup must not
            // make the worker publish it there a second time.
            if let Err(err) = request.send().await {
                tracing::warn!(error = %DisplayErrorContext(err), "chat notification failed");
            }
        }
        Ok(())
    }
}
