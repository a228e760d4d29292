//! What clients see of jobs and images: the JSON bodies and their OpenAPI
//! schemas. Links in them are relative to the API's root.

use chrono::{DateTime, Utc};
use entities::jobs::{self, JobStatus};
use entities::{images, variants};
use pipeline::delivery::{Candidate, Delivery, srcsets};
use pipeline::links::Links;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(examples(crate::examples::job_status))]
pub(crate) enum JobStatusView {
    /// Created by `POST /v1/uploads`; waits for the client's PUT.
    AwaitingUpload,
    /// Accepted and enqueued.
    Queued,
    /// A worker is on it.
    Processing,
    /// Every variant is stored.
    Succeeded,
    /// Ended with a permanent error.
    Failed,
    /// Failed transiently too many times; operators can replay it.
    Dead,
}

impl From<JobStatus> for JobStatusView {
    fn from(status: JobStatus) -> Self {
        match status {
            JobStatus::AwaitingUpload => Self::AwaitingUpload,
            JobStatus::Queued => Self::Queued,
            JobStatus::Processing => Self::Processing,
            JobStatus::Succeeded => Self::Succeeded,
            JobStatus::Failed => Self::Failed,
            JobStatus::Dead => Self::Dead,
        }
    }
}

impl From<JobStatusView> for JobStatus {
    fn from(status: JobStatusView) -> Self {
        match status {
            JobStatusView::AwaitingUpload => Self::AwaitingUpload,
            JobStatusView::Queued => Self::Queued,
            JobStatusView::Processing => Self::Processing,
            JobStatusView::Succeeded => Self::Succeeded,
            JobStatusView::Failed => Self::Failed,
            JobStatusView::Dead => Self::Dead,
        }
    }
}

/// A job as clients see it.
#[derive(Serialize, ToSchema)]
#[schema(examples(crate::examples::job))]
pub(crate) struct JobView {
    id: Uuid,
    image_id: Uuid,
    status: JobStatusView,
    /// How many times a worker has started it.
    attempts: i32,
    /// Why it failed (or why its last attempt did).
    error: Option<ErrorView>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    links: JobLinks,
    /// Present, and `true`, on an upload answered with the image the tenant
    /// already had (the same SHA-256): nothing was stored or processed again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    deduplicated: bool,
    /// The job's trace (W3C trace id, 32 hex digits), when the service
    /// exports traces: the one trace that holds the upload, the processing
    /// and the outcome event. Absent when tracing is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9a-f]{32}$", example = "4bf92f3577b34da6a3ce929d0e0e4736")]
    trace_id: Option<String>,
}

/// A job's error: a stable code and a human-readable message.
#[derive(Serialize, ToSchema)]
#[schema(examples(crate::examples::error_view))]
pub(crate) struct ErrorView {
    code: String,
    message: String,
}

#[derive(Serialize, ToSchema)]
#[schema(examples(crate::examples::job_links))]
pub(crate) struct JobLinks {
    #[serde(rename = "self")]
    this: String,
    image: String,
}

impl From<jobs::Model> for JobView {
    fn from(job: jobs::Model) -> Self {
        let links = Links::relative();
        Self {
            links: JobLinks { this: links.job(job.id), image: links.image(job.image_id) },
            id: job.id,
            image_id: job.image_id,
            status: job.status.into(),
            attempts: job.attempts,
            error: job.error_code.map(|code| ErrorView { code, message: job.error_message.unwrap_or_default() }),
            created_at: job.created_at,
            updated_at: job.updated_at,
            finished_at: job.finished_at,
            deduplicated: false,
            trace_id: job.trace_parent.as_deref().and_then(pipeline::trace::trace_id),
        }
    }
}

impl JobView {
    /// The view of a job returned for a duplicate upload.
    pub(crate) fn deduplicated(self) -> Self {
        Self { deduplicated: true, ..self }
    }
}

/// Where a listing's page starts and how long it is, from its `cursor` and
/// `limit` (1–200, default 50). Listings are newest first, by id (keyset).
pub(crate) struct PageBounds {
    /// Only ids below this one.
    pub(crate) before: Option<Uuid>,
    pub(crate) limit: u64,
}

impl PageBounds {
    pub(crate) fn parse(cursor: Option<&str>, limit: Option<u64>) -> Result<Self, crate::error::ApiError> {
        let before = cursor
            .map(|c| Uuid::parse_str(c).map_err(|_| crate::error::ApiError::BadRequest("invalid cursor".into())))
            .transpose()?;
        Ok(Self { before, limit: limit.unwrap_or(50).clamp(1, 200) })
    }

    /// The next page's cursor: the last id of a full page; none after a short one.
    pub(crate) fn next_cursor(&self, len: usize, last: Option<Uuid>) -> Option<String> {
        (len as u64 == self.limit).then_some(last).flatten().map(|id| id.to_string())
    }
}

/// A page of jobs and the cursor of the next one.
#[derive(Serialize, ToSchema)]
#[schema(examples(crate::examples::job_page))]
pub(crate) struct JobPage {
    pub(crate) jobs: Vec<JobView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub(crate) next_cursor: Option<String>,
}

/// An image and its variants as clients see them.
#[derive(Serialize, ToSchema)]
#[schema(examples(crate::examples::image))]
pub(crate) struct ImageView {
    id: Uuid,
    /// Hex SHA-256 of the original; absent until known (presigned uploads).
    sha256: Option<String>,
    bytes: i64,
    /// Detected format, once a worker decoded it.
    format: Option<String>,
    width: Option<i32>,
    height: Option<i32>,
    created_at: DateTime<Utc>,
    /// The client's own id for the image, from its upload.
    external_id: Option<String>,
    /// The client's JSON object, from its upload.
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Value>,
    /// When retention removes the original (its variants stay); absent
    /// when it is kept for good, or its job has not succeeded yet.
    original_expires_at: Option<DateTime<Utc>>,
    /// When retention removed the original; the image can no longer be reprocessed.
    original_removed_at: Option<DateTime<Utc>>,
    /// What a page paints before the variants load; absent until a job succeeded.
    placeholder: Option<PlaceholderView>,
    /// A ready `srcset` per media type (`image/webp`: `"…/thumb-….webp 256w,
    /// …/large-….webp 2048w"`), of the variants with the original's shape.
    #[schema(value_type = Object)]
    srcset: std::collections::BTreeMap<String, String>,
    /// Largest first.
    variants: Vec<VariantView>,
}

/// A placeholder for the image, to show while its variants load.
#[derive(Serialize, ToSchema)]
#[schema(examples(crate::examples::placeholder))]
pub(crate) struct PlaceholderView {
    /// The ThumbHash, base64 (decode it with any ThumbHash library).
    thumbhash: String,
    /// The dominant colour, `#rrggbb`.
    dominant_colour: String,
}

/// A page of images and the cursor of the next one.
#[derive(Serialize, ToSchema)]
#[schema(examples(crate::examples::image_page))]
pub(crate) struct ImagePage {
    pub(crate) images: Vec<ImageView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub(crate) next_cursor: Option<String>,
}

/// One encoded output.
#[derive(Serialize, ToSchema)]
#[schema(examples(crate::examples::variant))]
pub(crate) struct VariantView {
    preset: String,
    /// Derived from the preset's settings; changes when they do.
    preset_version: String,
    format: String,
    width: i32,
    height: i32,
    bytes: i64,
    key: String,
    /// Its media type.
    mime_type: &'static str,
    /// The URL a page shows it by: its bytes never change, and it needs no
    /// API key (public mode), or carries an expiry and signature (signed).
    delivery_url: Option<String>,
    /// Where API clients fetch it with their key (a redirect to a short-lived URL).
    url: String,
}

impl ImageView {
    pub(crate) fn new(image: images::Model, variants: Vec<variants::Model>, delivery: &Delivery) -> Self {
        let id = image.id;
        let links = Links::relative();
        let now = Utc::now();
        let variants: Vec<VariantView> = variants
            .into_iter()
            .map(|v| VariantView {
                url: links.variant(id, &v.preset),
                delivery_url: delivery.url(&v.object_key, now),
                mime_type: pipeline::delivery::media_type(&v.format),
                preset: v.preset,
                preset_version: v.preset_version,
                format: v.format,
                width: v.width,
                height: v.height,
                bytes: v.bytes,
                key: v.object_key,
            })
            .collect();
        let candidates = variants.iter().filter_map(|v| {
            Some(Candidate { url: v.delivery_url.as_deref()?, width: v.width, height: v.height, format: &v.format })
        });
        let srcset = srcsets(candidates, image.width.zip(image.height));
        let placeholder = image
            .thumbhash
            .zip(image.dominant_colour)
            .map(|(thumbhash, dominant_colour)| PlaceholderView { thumbhash, dominant_colour });
        Self {
            id,
            sha256: Some(image.sha256).filter(|s| !s.is_empty()),
            bytes: image.bytes,
            format: image.format,
            width: image.width,
            height: image.height,
            created_at: image.created_at,
            metadata: pipeline::jobs::ClientFields::metadata_value(image.metadata.as_deref()),
            external_id: image.external_id,
            original_expires_at: image.original_expires_at,
            original_removed_at: image.original_removed_at,
            placeholder,
            srcset,
            variants,
        }
    }
}
