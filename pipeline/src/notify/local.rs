//! [`Notifier`] for the embedded defaults: a line on the console, and a POST
//! to a webhook when one is configured.

use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};

use super::{Notifier, NotifyError};
use crate::event::Event;

/// Prints each event as one JSON line on stdout and, if a webhook URL is set,
/// POSTs it there in the background with retries. A webhook that is down
/// delays no job and fails none.
#[derive(Clone, Debug)]
pub struct LocalNotifier {
    webhook: Option<(reqwest::Client, String)>,
}

impl LocalNotifier {
    /// A notifier that also POSTs to `webhook_url`, if given.
    pub fn new(webhook_url: Option<String>) -> Self {
        let webhook = webhook_url.map(|url| {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default();
            (client, url)
        });
        Self { webhook }
    }
}

async fn post_with_retries(client: reqwest::Client, url: String, body: String, event_id: uuid::Uuid) {
    let attempt = || async {
        client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await?
            .error_for_status()
            .map(drop)
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(30))
        .with_max_times(6)
        .with_jitter();
    if let Err(err) = attempt.retry(backoff).await {
        // The URL may carry a secret token, so it is not logged.
        tracing::warn!(%event_id, error = %err.without_url(), "webhook delivery gave up");
    }
}

#[async_trait]
impl Notifier for LocalNotifier {
    async fn publish(&self, event: &Event) -> Result<(), NotifyError> {
        let body = serde_json::to_string(event).map_err(|e| NotifyError(e.to_string()))?;
        println!("{body}");
        if let Some((client, url)) = &self.webhook {
            tokio::spawn(post_with_retries(client.clone(), url.clone(), body, event.event_id));
        }
        Ok(())
    }
}
