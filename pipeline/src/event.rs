//! The outcome event published when a job ends.
//!
//! One event per job state transition. Its `event_id` is derived from the job
//! and the state it reached, so a repeat publish carries the same id and
//! subscribers can drop it.

use chrono::{DateTime, Utc};
use entities::jobs::{self, JobStatus};
use entities::{deletions, images, variants};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::delivery::{Candidate, Delivery, srcsets};
use crate::jobs::ClientFields;
use crate::links::Links;

/// How long the status link in a notification opens the job's status.
pub const STATUS_LINK_TTL_SECS: i64 = 7 * 24 * 3600;

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
    /// An operator's replay or reprocess run finished; see `summary`.
    #[serde(rename = "replay.summary")]
    ReplaySummary,
    /// An image, its variants, its jobs and its rows were deleted.
    #[serde(rename = "image.deleted")]
    ImageDeleted,
}

impl EventKind {
    /// The name used in the payload and in the `event` message attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ImageProcessed => "image.processed",
            Self::ImageFailed => "image.failed",
            Self::ReplaySummary => "replay.summary",
            Self::ImageDeleted => "image.deleted",
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
    /// Its media type.
    #[serde(default)]
    pub mime_type: String,
    /// The URL a page shows it by (public, or signed for a while); none
    /// when it can't be made (a signed tenant, and no signing key).
    #[serde(default)]
    pub delivery_url: Option<String>,
    /// Where to fetch it through the API, when `PUBLIC_BASE_URL` is set.
    pub url: Option<String>,
}

/// What a page needs to lay an image out before it loads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventImage {
    /// The original's upright width.
    pub width: Option<i32>,
    /// The original's upright height.
    pub height: Option<i32>,
    /// ThumbHash, base64.
    pub thumbhash: Option<String>,
    /// Dominant colour, `#rrggbb`.
    pub dominant_colour: Option<String>,
    /// A ready `srcset` per media type.
    pub srcset: std::collections::BTreeMap<String, String>,
}

/// How long the job took, in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    /// From upload to the worker's last start.
    pub queued_ms: u64,
    /// From the worker's last start to the final state.
    pub processing_ms: u64,
    /// From upload to the final state.
    pub total_ms: u64,
}

/// What an operator's replay run did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(examples(json!({ "operation": "replay jobs", "dry_run": false, "counts": { "matched": 12, "enqueued": 12 } })))]
pub struct ReplaySummary {
    /// `replay dlq`, `replay jobs` or `reprocess`.
    pub operation: String,
    /// Whether it only reported what it would do.
    pub dry_run: bool,
    /// Counts by name (`moved`, `enqueued`, `skipped`, `failed`, …).
    pub counts: std::collections::BTreeMap<String, u64>,
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
    /// The job (null for replay summaries).
    pub job_id: Option<Uuid>,
    /// The image (null for replay summaries).
    pub image_id: Option<Uuid>,
    /// The tenant that owns the image (null for replay summaries). Also an
    /// SNS message attribute, so a subscription can filter on it.
    #[serde(default)]
    pub tenant_id: Option<Uuid>,
    /// The client's id for the image, from its upload.
    #[serde(default)]
    pub external_id: Option<String>,
    /// The client's metadata object, from its upload.
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    /// The job's final status (`succeeded`, `failed`, `dead`), or
    /// `completed` for a replay summary.
    pub status: String,
    /// A page with the job's status that opens without an API key, for a
    /// week: the link notifications give people. Absent without
    /// `PUBLIC_BASE_URL` or a delivery signing key.
    #[serde(default)]
    pub status_url: Option<String>,
    /// The image as a page shows it (`image.processed` only).
    #[serde(default)]
    pub image: Option<EventImage>,
    /// The stored variants (empty on failure).
    pub variants: Vec<EventVariant>,
    /// The error, on failure.
    pub error: Option<EventError>,
    /// How long the job took.
    pub timings: Option<Timings>,
    /// What a replay run did (replay summaries only).
    pub summary: Option<ReplaySummary>,
    /// Environment that produced the event.
    pub env: String,
    /// When the job reached this state.
    pub occurred_at: DateTime<Utc>,
    /// The job's trace (W3C trace id, 32 hex digits), when tracing is on:
    /// the trace that holds its upload, its processing and this publish.
    #[serde(default)]
    pub trace_id: Option<String>,
}

impl Event {
    /// The deterministic id of the transition of `job_id` into `status`.
    pub fn id_for(job_id: Uuid, status: &str) -> Uuid {
        Uuid::new_v5(&job_id, status.as_bytes())
    }

    /// The distinct preset names of the variants, for the `preset` attribute.
    pub fn presets(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.variants.iter().map(|v| v.preset.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// A one-line human summary: what happened to which job.
    pub fn headline(&self) -> String {
        let job = self.job_id.map(|id| id.to_string()).unwrap_or_default();
        match self.event {
            EventKind::ImageProcessed => format!("Image processed: job {job} ({} variants)", self.variants.len()),
            EventKind::ImageFailed => {
                let code = self.error.as_ref().map_or("unknown", |e| e.code.as_str());
                format!("Image {}: job {job} ({code})", self.status)
            }
            EventKind::ReplaySummary => {
                let operation = self.summary.as_ref().map_or("replay", |s| s.operation.as_str());
                format!("Replay finished: {operation}")
            }
            EventKind::ImageDeleted => {
                format!("Image deleted: {}", self.image_id.map(|id| id.to_string()).unwrap_or_default())
            }
        }
    }

    /// The event announcing a job's final state: its variants (when it
    /// succeeded), its error (when it did not) and how long it took.
    /// `links` is where the API can be reached from outside, if it is known;
    /// `image` gives the client's external id and metadata.
    pub fn for_job(
        job: &jobs::Model,
        image: Option<&images::Model>,
        variants: Vec<variants::Model>,
        links: Option<&Links>,
        delivery: &Delivery,
        env: String,
    ) -> Self {
        let succeeded = job.status == JobStatus::Succeeded;
        let variants = if succeeded { variants } else { Vec::new() };
        let now = Utc::now();
        let variants: Vec<EventVariant> = variants
            .into_iter()
            .map(|v| EventVariant {
                url: links.map(|links| links.variant(job.image_id, &v.preset)),
                delivery_url: delivery.url(&v.object_key, now),
                mime_type: crate::delivery::media_type(&v.format).to_owned(),
                preset: v.preset,
                preset_version: v.preset_version,
                format: v.format,
                width: u32::try_from(v.width).unwrap_or_default(),
                height: u32::try_from(v.height).unwrap_or_default(),
                bytes: u64::try_from(v.bytes).unwrap_or_default(),
                key: v.object_key,
            })
            .collect();
        let shown = image.filter(|_| succeeded).map(|image| {
            let candidates = variants.iter().filter_map(|v| {
                let (width, height) = (i32::try_from(v.width).ok()?, i32::try_from(v.height).ok()?);
                Some(Candidate { url: v.delivery_url.as_deref()?, width, height, format: &v.format })
            });
            EventImage {
                width: image.width,
                height: image.height,
                thumbhash: image.thumbhash.clone(),
                dominant_colour: image.dominant_colour.clone(),
                srcset: srcsets(candidates, image.width.zip(image.height)),
            }
        });
        let finished = job.finished_at.unwrap_or(job.updated_at);
        let started = job.started_at.unwrap_or(job.created_at);
        let millis = |d: chrono::TimeDelta| u64::try_from(d.num_milliseconds()).unwrap_or_default();
        Self {
            schema_version: EVENT_SCHEMA_VERSION,
            event: if succeeded { EventKind::ImageProcessed } else { EventKind::ImageFailed },
            event_id: Self::id_for(job.id, job.status.as_str()),
            job_id: Some(job.id),
            image_id: Some(job.image_id),
            tenant_id: Some(job.tenant_id),
            external_id: image.and_then(|i| i.external_id.clone()),
            metadata: ClientFields::metadata_value(image.and_then(|i| i.metadata.as_deref())),
            status: job.status.as_str().to_owned(),
            status_url: links.and_then(|links| delivery.status_url(links, job.id, STATUS_LINK_TTL_SECS, now)),
            image: shown,
            variants,
            error: job
                .error_code
                .clone()
                .map(|code| EventError { code, message: job.error_message.clone().unwrap_or_default() }),
            timings: Some(Timings {
                queued_ms: millis(started - job.created_at),
                processing_ms: millis(finished - started),
                total_ms: millis(finished - job.created_at),
            }),
            summary: None,
            env,
            occurred_at: finished,
            trace_id: job.trace_parent.as_deref().and_then(crate::trace::trace_id),
        }
    }

    /// The event announcing that a tenant's image was deleted, from its
    /// deletion record. Its id is the same for every publish of the same deletion.
    pub fn image_deleted(record: &deletions::Model, at: DateTime<Utc>, env: String) -> Self {
        let (tenant_id, image_id) = (record.tenant_id, record.image_id);
        Self {
            schema_version: EVENT_SCHEMA_VERSION,
            event: EventKind::ImageDeleted,
            event_id: Self::id_for(image_id, "deleted"),
            job_id: None,
            image_id: Some(image_id),
            tenant_id: Some(tenant_id),
            external_id: record.external_id.clone(),
            metadata: ClientFields::metadata_value(record.metadata.as_deref()),
            status: "deleted".into(),
            status_url: None,
            image: None,
            variants: Vec::new(),
            error: None,
            timings: None,
            summary: None,
            env,
            occurred_at: at,
            trace_id: current_trace_id(),
        }
    }

    /// A summary event for an operator's replay run.
    pub fn replay_summary(summary: ReplaySummary, env: String) -> Self {
        Self {
            schema_version: EVENT_SCHEMA_VERSION,
            event: EventKind::ReplaySummary,
            event_id: Uuid::new_v4(),
            job_id: None,
            image_id: None,
            tenant_id: None,
            external_id: None,
            metadata: None,
            status: "completed".into(),
            status_url: None,
            image: None,
            variants: Vec::new(),
            error: None,
            timings: None,
            summary: Some(summary),
            env,
            occurred_at: Utc::now(),
            trace_id: current_trace_id(),
        }
    }
}

/// The trace of the current span: the deletion's request, the operator's run.
fn current_trace_id() -> Option<String> {
    crate::trace::current().as_deref().and_then(crate::trace::trace_id)
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
