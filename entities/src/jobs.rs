//! `jobs`: the processing of one image, from queued to a final state.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// Where a job stands. Transitions are conditional updates, so two workers
/// handling the same redelivered message cannot both move a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Created for a presigned upload; waits for the client to PUT the bytes.
    #[sea_orm(string_value = "awaiting_upload")]
    AwaitingUpload,
    /// Accepted and enqueued; no worker has started it.
    #[sea_orm(string_value = "queued")]
    Queued,
    /// A worker is on it (or was, and its message will be redelivered).
    #[sea_orm(string_value = "processing")]
    Processing,
    /// Every variant is stored and recorded.
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    /// Ended with a permanent error; see `error_code`.
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Failed transiently too many times; its message is in the dead-letter queue.
    #[sea_orm(string_value = "dead")]
    Dead,
}

impl JobStatus {
    /// The name stored and shown to users.
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

    /// Whether no further work will happen without an operator's replay.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Dead)
    }
}

/// One job.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    /// Chosen by the API; also the id users poll.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The owning tenant ([`crate::tenants`]); always the image's.
    pub tenant_id: Uuid,
    /// The image being processed.
    pub image_id: Uuid,
    /// Current state.
    pub status: JobStatus,
    /// How many times a worker has started the job.
    pub attempts: i32,
    /// Stable kebab-case code of the last error.
    pub error_code: Option<String>,
    /// Human-readable detail of the last error.
    pub error_message: Option<String>,
    /// The client's `Idempotency-Key`, if it sent one.
    #[sea_orm(unique)]
    pub idempotency_key: Option<String>,
    /// When the job was accepted.
    pub created_at: DateTimeUtc,
    /// When the row last changed.
    pub updated_at: DateTimeUtc,
    /// When a worker last started it.
    pub started_at: Option<DateTimeUtc>,
    /// When it reached a final state.
    pub finished_at: Option<DateTimeUtc>,
    /// When its outcome event was published; set once, so a redelivery after
    /// a crash between publish and acknowledge does not publish again.
    pub event_published_at: Option<DateTimeUtc>,
    /// The job this one replays, if it is a replay.
    pub replay_of: Option<Uuid>,
    /// Comma-separated preset names this job makes; `None` means all.
    pub presets: Option<String>,
    /// The API key that created the job, if any.
    pub api_key_id: Option<Uuid>,
    /// With an idempotency key: a digest of what the request asked for, so
    /// the same key with a different request can be refused.
    pub request_fingerprint: Option<String>,
    /// The W3C `traceparent` of the span the job was created in (the
    /// upload's request, or an operator's replay), when tracing is on.
    pub trace_parent: Option<String>,
}

/// Relations of [`Model`].
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The image.
    #[sea_orm(
        belongs_to = "super::images::Entity",
        from = "Column::ImageId",
        to = "super::images::Column::Id",
        on_delete = "Cascade"
    )]
    Image,
}

impl Related<super::images::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Image.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
