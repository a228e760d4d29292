//! Webhooks: generic JSON, Slack incoming webhooks and Discord webhooks.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use serde_json::Value;

use super::{ChatFilter, render};
use crate::event::Event;

/// What the receiving end expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookFormat {
    /// The JSON event itself, for machines; receives every event.
    Json,
    /// A Slack incoming-webhook message.
    Slack,
    /// A Discord webhook message.
    Discord,
}

/// POSTs events to one URL in the background, retrying with backoff.
#[derive(Clone, Debug)]
pub struct WebhookNotifier {
    client: reqwest::Client,
    url: String,
    format: WebhookFormat,
    /// People's channels only hear about the events in the filter.
    filter: Option<ChatFilter>,
    base_url: Option<String>,
    backoff: ExponentialBuilder,
}

impl WebhookNotifier {
    /// A webhook at `url`. Slack and Discord hooks take `filter`; JSON hooks get everything.
    pub fn new(url: String, format: WebhookFormat, filter: ChatFilter, base_url: Option<String>) -> Self {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        let filter = (format != WebhookFormat::Json).then_some(filter);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(30))
            .with_max_times(6)
            .with_jitter();
        Self { client, url, format, filter, base_url, backoff }
    }

    /// The body this webhook receives for `event`, or `None` if it should not hear of it.
    pub fn payload(&self, event: &Event) -> Option<Value> {
        if self.filter.as_ref().is_some_and(|f| !f.admits(event)) {
            return None;
        }
        let base = self.base_url.as_deref();
        Some(match self.format {
            WebhookFormat::Json => serde_json::to_value(event).ok()?,
            WebhookFormat::Slack => render::slack(event, base),
            WebhookFormat::Discord => render::discord(event, base),
        })
    }

    /// Delivers in a background task, so a slow or dead receiver delays nothing.
    pub fn deliver_in_background(&self, event: &Event) {
        let Some(body) = self.payload(event) else { return };
        let (client, url, format, backoff, event_id) =
            (self.client.clone(), self.url.clone(), self.format, self.backoff, event.event_id);
        tokio::spawn(async move {
            let attempt = || async {
                client
                    .post(&url)
                    .header("idempotency-key", event_id.to_string())
                    .json(&body)
                    .send()
                    .await?
                    .error_for_status()
                    .map(drop)
            };
            if let Err(err) = attempt.retry(backoff).await {
                // Webhook URLs carry secret tokens, so the URL is never logged.
                tracing::warn!(%event_id, ?format, error = %err.without_url(), "webhook delivery gave up");
            }
        });
    }
}
