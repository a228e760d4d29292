//! The outcome event published when a job ends.
//!
//! One event per job state transition. Its `event_id` is derived from the job
//! and the state it reached, so a repeat publish carries the same id and
//! subscribers can drop it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Current event schema version.
pub const EVENT_SCHEMA_VERSION: u32 = 1;

/// The kinds of event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// Every variant of an image is stored and recorded.
    #[serde(rename = "image.processed")]
    ImageProcessed,
    /// A job ended without variants (`failed` or `dead`).
    #[serde(rename = "image.failed")]
    ImageFailed,
}

impl EventKind {
    /// The name used in the payload and in the `event` message attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ImageProcessed => "image.processed",
            Self::ImageFailed => "image.failed",
        }
    }
}

/// One stored variant, as subscribers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventVariant {
    /// Preset name.
    pub preset: String,
    /// Preset version.
    pub preset_version: String,
    /// Output format.
    pub format: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Size in bytes.
    pub bytes: u64,
    /// Object key in the store.
    pub key: String,
}

/// Why a job failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventError {
    /// Stable kebab-case code.
    pub code: String,
    /// Human-readable detail.
    pub message: String,
}

/// The event. Documented field by field in `docs/notifications.md`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Schema version of this payload.
    pub schema_version: u32,
    /// What happened.
    pub event: EventKind,
    /// Same for every publish of the same transition.
    pub event_id: Uuid,
    /// The job.
    pub job_id: Uuid,
    /// The image.
    pub image_id: Uuid,
    /// The job's final status (`succeeded`, `failed`, `dead`).
    pub status: String,
    /// The stored variants (empty on failure).
    pub variants: Vec<EventVariant>,
    /// The error, on failure.
    pub error: Option<EventError>,
    /// Environment that produced the event.
    pub env: String,
    /// When the job reached this state.
    pub occurred_at: DateTime<Utc>,
}

impl Event {
    /// The deterministic id of the transition of `job_id` into `status`.
    pub fn id_for(job_id: Uuid, status: &str) -> Uuid {
        Uuid::new_v5(&job_id, status.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_transition_always_gets_the_same_id_and_others_differ() {
        let job = Uuid::new_v4();
        assert_eq!(Event::id_for(job, "succeeded"), Event::id_for(job, "succeeded"));
        assert_ne!(Event::id_for(job, "succeeded"), Event::id_for(job, "failed"));
        assert_ne!(Event::id_for(job, "failed"), Event::id_for(Uuid::new_v4(), "failed"));
    }

    #[test]
    fn kinds_serialise_to_their_dotted_names() {
        let json = serde_json::to_string(&EventKind::ImageFailed).unwrap_or_default();
        assert_eq!(json, "\"image.failed\"");
    }
}
