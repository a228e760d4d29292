//! What the API answers with and what it takes, as typed values. Field by
//! field these follow the OpenAPI document (`docs/openapi.json`); the
//! client's tests deserialize every answer of a running service into them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Created by a presigned upload; waits for its bytes.
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

impl JobStatus {
    /// Whether the job has ended (succeeded, failed or dead).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Dead)
    }

    /// The name the API uses (`awaiting_upload`, `queued`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingUpload => "awaiting_upload",
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }
}

impl std::str::FromStr for JobStatus {
    type Err = String;

    /// The API's names (`awaiting_upload`, `queued`, …); `-` may stand for `_`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        const ALL: [JobStatus; 6] = [
            JobStatus::AwaitingUpload,
            JobStatus::Queued,
            JobStatus::Processing,
            JobStatus::Succeeded,
            JobStatus::Failed,
            JobStatus::Dead,
        ];
        let name = name.replace('-', "_");
        ALL.into_iter().find(|status| status.as_str() == name).ok_or_else(|| {
            let names: Vec<_> = ALL.iter().map(|s| s.as_str()).collect();
            format!("{name:?} is not a job status ({})", names.join(", "))
        })
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A processing job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Job {
    /// The job's id.
    pub id: Uuid,
    /// The image it processes.
    pub image_id: Uuid,
    /// Where it stands.
    pub status: JobStatus,
    /// How many times a worker has started it.
    pub attempts: i32,
    /// Why it failed, or why its last attempt did.
    pub error: Option<JobError>,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
    /// Its last change.
    pub updated_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Its own and its image's paths, relative to the API's root.
    pub links: JobLinks,
    /// `true` on an upload answered with the image the tenant already had.
    #[serde(default)]
    pub deduplicated: bool,
}

/// A job's error: a stable code and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobError {
    /// Stable kebab-case code (`unsupported-format`, `image-too-large`, …).
    pub code: String,
    /// What went wrong.
    pub message: String,
}

/// A job's links.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobLinks {
    /// The job itself.
    #[serde(rename = "self")]
    pub this: String,
    /// Its image.
    pub image: String,
}

/// A page of jobs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobPage {
    /// Newest first.
    pub jobs: Vec<Job>,
    /// The next page's cursor; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// An image and its variants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Image {
    /// The image's id.
    pub id: Uuid,
    /// Hex SHA-256 of the original, once known.
    pub sha256: Option<String>,
    /// The original's size.
    pub bytes: i64,
    /// Its detected format, once decoded.
    pub format: Option<String>,
    /// Its width, once decoded.
    pub width: Option<i32>,
    /// Its height, once decoded.
    pub height: Option<i32>,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
    /// The client's own id for it.
    pub external_id: Option<String>,
    /// The client's JSON object from its upload.
    pub metadata: Option<serde_json::Value>,
    /// When retention removes the original.
    pub original_expires_at: Option<DateTime<Utc>>,
    /// When retention removed the original.
    pub original_removed_at: Option<DateTime<Utc>>,
    /// What a page paints before the variants load.
    pub placeholder: Option<Placeholder>,
    /// A ready `srcset` per media type.
    #[serde(default)]
    pub srcset: BTreeMap<String, String>,
    /// Largest first.
    pub variants: Vec<Variant>,
}

impl Image {
    /// The variant of `preset`, if the image has one.
    pub fn variant(&self, preset: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.preset == preset)
    }
}

/// A placeholder to show while the variants load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Placeholder {
    /// The ThumbHash, base64.
    pub thumbhash: String,
    /// The dominant colour, `#rrggbb`.
    pub dominant_colour: String,
}

/// One encoded output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Variant {
    /// The preset it was made for.
    pub preset: String,
    /// Derived from the preset's settings.
    pub preset_version: String,
    /// `webp`, `jpeg`, `png` or `avif`.
    pub format: String,
    /// Its width.
    pub width: i32,
    /// Its height.
    pub height: i32,
    /// Its size.
    pub bytes: i64,
    /// Its object key.
    pub key: String,
    /// Its media type.
    pub mime_type: String,
    /// The keyless URL a web page shows it by, when delivery is on.
    pub delivery_url: Option<String>,
    /// Where API clients fetch it with their key, relative to the API's root.
    pub url: String,
}

/// A page of images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ImagePage {
    /// Newest first.
    pub images: Vec<Image>,
    /// The next page's cursor; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// What a client is about to upload through a presigned URL.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UploadRequest {
    /// The media type the PUT will send.
    pub content_type: String,
    /// The exact number of bytes the PUT will send.
    pub content_length: u64,
    /// The client's own id for the image, unique within the tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// A JSON object (at most 4 KiB) that comes back on the image and in events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

/// The answer to a presigned upload request: its job and how to send the bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UploadTicket {
    /// The job, awaiting its upload.
    pub job: Job,
    /// How to upload; `None` once the upload has arrived (a replayed request).
    pub upload: Option<UploadInstructions>,
    /// A keyless status URL for this job, readable for an hour.
    pub status_url: Option<String>,
}

/// One HTTP request to make, exactly as given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UploadInstructions {
    /// Always `PUT`.
    pub method: String,
    /// Where to send the bytes.
    pub url: String,
    /// Headers to send exactly: they are part of the signature.
    pub headers: BTreeMap<String, String>,
    /// When the URL stops working.
    pub expires_at: DateTime<Utc>,
}

/// A job and, once it succeeded, its image: what a status URL answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobStatusPage {
    /// The job.
    pub job: Job,
    /// Its image, once the job succeeded.
    pub image: Option<Image>,
}

/// What an operator's replay run did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReplaySummary {
    /// `replay dlq`, `replay jobs` or `reprocess`.
    pub operation: String,
    /// Whether it only reported what it would do.
    pub dry_run: bool,
    /// Counts by name (`moved`, `enqueued`, `skipped`, `failed`, …).
    pub counts: BTreeMap<String, u64>,
}

/// Readiness and what was checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: String,
    /// Each backend's answer.
    pub checks: ReadinessChecks,
}

/// The backends `/readyz` checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReadinessChecks {
    /// The database answered.
    pub database: bool,
    /// The queue answered.
    pub queue: bool,
    /// The object store answered.
    pub store: bool,
}

/// Which jobs to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobQuery {
    /// Only jobs in this state.
    pub status: Option<JobStatus>,
    /// Only jobs created at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–200 (the API's default is 50).
    pub limit: Option<u64>,
}

/// Which images to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageQuery {
    /// Only the image with this external id.
    pub external_id: Option<String>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–200 (the API's default is 50).
    pub limit: Option<u64>,
}

/// `POST /v1/admin/replay/dlq`: move dead-lettered messages back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DlqReplay {
    /// `auto`, `move-task` or `copy` (the API's default is `auto`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// At most this many messages a second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_per_second: Option<u32>,
    /// Only report what it would do.
    pub dry_run: bool,
}

/// `POST /v1/admin/replay/jobs`: re-enqueue past failed or dead jobs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct JobsReplay {
    /// `failed`, `dead` or both (the API's default is both).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<JobStatus>,
    /// Only jobs created at or after this instant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Only jobs created before this instant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// Only jobs that failed with this code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Only this image's jobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<Uuid>,
    /// At most this many jobs a second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_per_second: Option<u32>,
    /// Only report what it would do.
    pub dry_run: bool,
}

/// `POST /v1/admin/reprocess`: regenerate one preset's variants.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Reprocess {
    /// The preset's name.
    pub preset: String,
    /// Only images whose variant was made by an older version of the preset.
    pub stale_only: bool,
    /// Carry on from where the last run of this preset stopped.
    pub resume: bool,
    /// Images read per page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u64>,
    /// At most this many jobs a second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_per_second: Option<u32>,
    /// Only report what it would do.
    pub dry_run: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_reads_back_from_its_name_and_a_wrong_name_lists_the_right_ones() {
        assert_eq!("awaiting-upload".parse::<JobStatus>(), Ok(JobStatus::AwaitingUpload));
        assert_eq!(JobStatus::Dead.as_str().parse::<JobStatus>(), Ok(JobStatus::Dead));
        let wrong = "done".parse::<JobStatus>().expect_err("not a status");
        assert!(wrong.contains("succeeded"), "{wrong}");
    }
}
