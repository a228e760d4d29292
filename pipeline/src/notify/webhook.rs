//! Webhooks: generic JSON, Slack incoming webhooks and Discord webhooks.
//!
//! JSON deliveries are signed per the Standard Webhooks specification
//! (<https://www.standardwebhooks.com>): `webhook-id` (the event id, the same
//! on every retry), `webhook-timestamp` (seconds, at each attempt) and
//! `webhook-signature`, one `v1,<base64 HMAC-SHA256>` of
//! `{id}.{timestamp}.{body}` per secret in `WEBHOOK_SECRETS`, space-separated,
//! so a receiver that knows either the old or the new secret verifies while
//! they rotate.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

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

impl WebhookFormat {
    /// Its name in the outbox: `json`, `slack` or `discord`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Slack => "slack",
            Self::Discord => "discord",
        }
    }
}

/// One webhook: where events go, in which form, signed with which keys.
/// Deliveries go through the outbox (`crate::outbox`), which retries them.
#[derive(Clone, Debug)]
pub struct Webhook {
    client: reqwest::Client,
    url: String,
    format: WebhookFormat,
    /// People's channels only hear about the events in the filter.
    filter: Option<ChatFilter>,
    base_url: Option<String>,
    /// The keys every delivery is signed with (empty: unsigned).
    keys: Vec<SigningKey>,
}

/// One webhook secret's key bytes, from its `whsec_<base64>` form.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl SigningKey {
    /// A key from a secret in `whsec_<base64>` form.
    ///
    /// # Errors
    /// When the prefix is missing or the rest is not base64 of at least 24 bytes.
    pub fn parse(secret: &str) -> Result<Self, String> {
        let encoded = secret.trim().strip_prefix("whsec_").ok_or("a webhook secret starts with whsec_")?;
        let key = STANDARD.decode(encoded).map_err(|_| "a webhook secret is whsec_ and base64".to_owned())?;
        if key.len() < 24 {
            return Err("a webhook secret holds at least 24 random bytes".into());
        }
        Ok(Self(key))
    }

    /// A new random secret in `whsec_` form.
    pub fn generate() -> String {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
        format!("whsec_{}", STANDARD.encode(key))
    }

    fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header for one delivery: a signature per key.
pub fn signature_header(keys: &[SigningKey], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter().map(|key| key.sign(id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

impl Webhook {
    /// A webhook at `url`. Slack and Discord hooks take `filter`; JSON hooks get everything.
    pub fn new(url: String, format: WebhookFormat, filter: ChatFilter, base_url: Option<String>) -> Self {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        let filter = (format != WebhookFormat::Json).then_some(filter);
        Self { client, url, format, filter, base_url, keys: Vec::new() }
    }

    /// The same webhook, signing every delivery with each of `keys`.
    #[must_use]
    pub fn signed_with(mut self, keys: Vec<SigningKey>) -> Self {
        self.keys = keys;
        self
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

    /// Which of the configured webhooks this is, as the outbox names it.
    pub fn target(&self) -> &'static str {
        self.format.as_str()
    }

    /// The exact bytes this webhook receives for `event` (what every attempt
    /// sends and the signature covers), or `None` if it should not hear of it.
    pub fn body(&self, event: &Event) -> Option<String> {
        serde_json::to_string(&self.payload(event)?).ok()
    }

    /// One attempt: POSTs `body` as event `id`, signed afresh, with the
    /// `traceparent` header when the event is traced.
    ///
    /// # Errors
    /// How it failed, as a short code (`http-503`, `timeout`, `connect`,
    /// `request`). Never the URL: webhook URLs carry secret tokens.
    pub async fn send(&self, id: &str, body: &str, traceparent: Option<&str>) -> Result<(), String> {
        let mut request = self
            .client
            .post(&self.url)
            .header("idempotency-key", id)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(traceparent) = traceparent {
            request = request.header(crate::trace::TRACEPARENT, traceparent);
        }
        if !self.keys.is_empty() {
            let timestamp = chrono::Utc::now().timestamp();
            request = request
                .header("webhook-id", id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature_header(&self.keys, id, timestamp, body.as_bytes()));
        }
        let code = |err: &reqwest::Error| {
            if err.is_timeout() {
                "timeout".to_owned()
            } else if err.is_connect() {
                "connect".to_owned()
            } else {
                "request".to_owned()
            }
        };
        let response = request.body(body.to_owned()).send().await.map_err(|e| code(&e))?;
        match response.status() {
            status if status.is_success() => Ok(()),
            status => Err(format!("http-{}", status.as_u16())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks example secret, id, timestamp and body sign to
    /// this value, as the reference library (`standardwebhooks` on PyPI,
    /// 1.3.0) signs them too.
    #[test]
    fn signs_the_specifications_example() {
        let key = SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let signature = key.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn rotating_secrets_sign_with_each() {
        let (old, new) = (SigningKey::generate(), SigningKey::generate());
        let keys = vec![SigningKey::parse(&new).expect("new"), SigningKey::parse(&old).expect("old")];
        let header = signature_header(&keys, "id", 1, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(SigningKey::parse("not-whsec").is_err());
        assert!(SigningKey::parse("whsec_c2hvcnQ=").is_err(), "a 5-byte key is refused");
    }
}
