//! The job message. Only ids and keys ride in the queue, never image bytes:
//! SQS caps messages at 256 KiB, and the original is already in the store.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Current message schema version.
pub const MESSAGE_VERSION: u32 = 1;

/// "Process this image for this job."
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    /// Schema version, so a future worker can tell old messages apart.
    pub v: u32,
    /// The job to advance.
    pub job_id: Uuid,
    /// The image it processes.
    pub image_id: Uuid,
    /// Where the original is stored.
    pub source_key: String,
}

impl JobMessage {
    /// A message for `job_id`.
    pub fn new(job_id: Uuid, image_id: Uuid, source_key: String) -> Self {
        Self { v: MESSAGE_VERSION, job_id, image_id, source_key }
    }

    /// The JSON body sent to the queue.
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a body received from the queue.
    ///
    /// # Errors
    /// When the body is not a job message of a known version.
    pub fn parse(body: &str) -> Result<Self, MessageError> {
        let message: Self = serde_json::from_str(body).map_err(|e| MessageError(e.to_string()))?;
        if message.v != MESSAGE_VERSION {
            return Err(MessageError(format!("unknown message version {}", message.v)));
        }
        Ok(message)
    }
}

/// A body that is not a job message.
#[derive(Debug, thiserror::Error)]
#[error("not a job message: {0}")]
pub struct MessageError(String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_round_trips_and_carries_no_image_bytes() {
        let message = JobMessage::new(Uuid::new_v4(), Uuid::new_v4(), "originals/x".into());
        let body = message.to_body();
        assert_eq!(JobMessage::parse(&body).ok(), Some(message));
        assert!(body.len() < 256, "{body}");
    }

    #[test]
    fn unknown_versions_and_garbage_are_rejected() {
        assert!(JobMessage::parse("not json").is_err());
        let future = r#"{"v":9,"job_id":"00000000-0000-0000-0000-000000000000","image_id":"00000000-0000-0000-0000-000000000000","source_key":"k"}"#;
        assert!(JobMessage::parse(future).is_err());
    }
}
