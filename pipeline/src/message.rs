//! What arrives on the job queue: our own job message, or an S3 event
//! notification for an object a client PUT straight into the bucket.
//!
//! Only ids and keys ride in the queue, never image bytes: SQS caps messages
//! at 256 KiB, and the original is already in the store.

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
    /// Where the original is stored: always [`keys::original`](crate::keys::original)
    /// of the image, which the worker derives itself. Kept on the wire for
    /// operators reading the queue, and for older workers.
    pub source_key: String,
    /// Only these presets (a reprocess); absent means every configured preset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presets: Option<Vec<String>>,
}

impl JobMessage {
    /// A message for `job_id`.
    pub fn new(job_id: Uuid, image_id: Uuid, source_key: String) -> Self {
        Self { v: MESSAGE_VERSION, job_id, image_id, source_key, presets: None }
    }

    /// The message for a job row: every preset, or the ones the job names.
    pub fn for_job(job: &entities::jobs::Model) -> Self {
        let presets = job.presets.as_ref().map(|list| list.split(',').map(str::to_owned).collect());
        Self { presets, ..Self::new(job.id, job.image_id, crate::keys::original(job.image_id)) }
    }

    /// The JSON body sent to the queue.
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The message for a job row, sent in its tenant's fair-share group.
    pub fn outgoing(job: &entities::jobs::Model) -> crate::queue::Outgoing {
        crate::queue::Outgoing::new(Self::for_job(job).to_body(), Some(&job.tenant_id.to_string()))
            .traced(job.trace_parent.clone())
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

/// One object an S3 `ObjectCreated` notification announced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedObject {
    /// The bucket.
    pub bucket: String,
    /// The object key, URL-decoded.
    pub key: String,
    /// The object's ETag, which with bucket and key identifies this upload.
    pub etag: String,
    /// Size in bytes, as S3 reported it.
    pub size: u64,
}

impl CreatedObject {
    /// The key that dedupes repeated notifications of the same upload.
    pub fn dedupe_key(&self) -> String {
        format!("s3:{}/{}#{}", self.bucket, self.key, self.etag)
    }
}

/// A message body from the job queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// Our own job message.
    Job(JobMessage),
    /// Objects created in the bucket (S3 event notification).
    ObjectsCreated(Vec<CreatedObject>),
    /// The `s3:TestEvent` S3 sends when a notification is configured: nothing to do.
    S3TestEvent,
}

#[derive(Deserialize)]
struct S3Notification {
    #[serde(rename = "Records", default)]
    records: Vec<S3Record>,
    #[serde(rename = "Event")]
    event: Option<String>,
    /// Set when the notification came through an SNS topic.
    #[serde(rename = "Type")]
    envelope_type: Option<String>,
    #[serde(rename = "Message")]
    envelope_message: Option<String>,
}

#[derive(Deserialize)]
struct S3Record {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: S3Entity,
}

#[derive(Deserialize)]
struct S3Entity {
    bucket: S3Bucket,
    object: S3Object,
}

#[derive(Deserialize)]
struct S3Bucket {
    name: String,
}

#[derive(Deserialize)]
struct S3Object {
    key: String,
    #[serde(rename = "eTag", default)]
    etag: String,
    #[serde(default)]
    size: u64,
}

/// Object keys in S3 notifications are URL-encoded, with `+` for spaces.
fn decode_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

impl Incoming {
    /// Parses any body the job queue can carry.
    ///
    /// # Errors
    /// When the body is none of the known kinds.
    pub fn parse(body: &str) -> Result<Self, MessageError> {
        if let Ok(job) = JobMessage::parse(body) {
            return Ok(Self::Job(job));
        }
        let notification: S3Notification =
            serde_json::from_str(body).map_err(|e| MessageError(format!("neither a job nor an S3 event: {e}")))?;
        if notification.envelope_type.as_deref() == Some("Notification") {
            let inner = notification.envelope_message.unwrap_or_default();
            return Self::parse(&inner);
        }
        if notification.event.as_deref() == Some("s3:TestEvent") {
            return Ok(Self::S3TestEvent);
        }
        let objects: Vec<CreatedObject> = notification
            .records
            .into_iter()
            .filter(|r| r.event_name.starts_with("ObjectCreated:"))
            .map(|r| CreatedObject {
                bucket: r.s3.bucket.name,
                key: decode_key(&r.s3.object.key),
                etag: r.s3.object.etag.trim_matches('"').to_owned(),
                size: r.s3.object.size,
            })
            .collect();
        if objects.is_empty() {
            return Err(MessageError("an S3 event with no ObjectCreated record".into()));
        }
        Ok(Self::ObjectsCreated(objects))
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
    fn s3_notifications_are_decoded_and_test_events_recognised() {
        let body = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put",
            "s3":{"bucket":{"name":"images"},"object":{"key":"uploads/my+holiday%282%29.jpg","size":42,"eTag":"abc"}}}]}"#;
        let Ok(Incoming::ObjectsCreated(objects)) = Incoming::parse(body) else {
            panic!("not parsed as an S3 event");
        };
        assert_eq!(objects[0].key, "uploads/my holiday(2).jpg");
        assert_eq!(objects[0].dedupe_key(), "s3:images/uploads/my holiday(2).jpg#abc");

        let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"images"}"#;
        assert_eq!(Incoming::parse(test_event).ok(), Some(Incoming::S3TestEvent));

        let through_sns = serde_json::json!({ "Type": "Notification", "Message": test_event }).to_string();
        assert_eq!(Incoming::parse(&through_sns).ok(), Some(Incoming::S3TestEvent));

        let removed =
            r#"{"Records":[{"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#;
        assert!(Incoming::parse(removed).is_err());
    }

    #[test]
    fn unknown_versions_and_garbage_are_rejected() {
        assert!(JobMessage::parse("not json").is_err());
        let future = r#"{"v":9,"job_id":"00000000-0000-0000-0000-000000000000","image_id":"00000000-0000-0000-0000-000000000000","source_key":"k"}"#;
        assert!(JobMessage::parse(future).is_err());
    }
}
