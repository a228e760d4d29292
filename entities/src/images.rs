//! `images`: one row per uploaded original.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// An uploaded original. Format and size are known once a worker has decoded it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "images")]
pub struct Model {
    /// Chosen by the API.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The owning tenant ([`crate::tenants`]).
    pub tenant_id: Uuid,
    /// Where the original is stored.
    pub source_key: String,
    /// Hex SHA-256 of the original bytes, computed while they streamed in.
    pub sha256: String,
    /// Size of the original in bytes.
    pub bytes: i64,
    /// Detected format (`jpeg`, `png`, …), once decoded.
    pub format: Option<String>,
    /// Upright width, once decoded.
    pub width: Option<i32>,
    /// Upright height, once decoded.
    pub height: Option<i32>,
    /// When the upload was accepted.
    pub created_at: DateTimeUtc,
    /// The client's own id for the image, unique within the tenant.
    pub external_id: Option<String>,
    /// The client's JSON object (at most 4 KiB), as text.
    #[sea_orm(column_type = "Text", nullable)]
    pub metadata: Option<String>,
    /// When retention removes the original (the variants stay); set when a
    /// job succeeds under a retention.
    pub original_expires_at: Option<DateTimeUtc>,
    /// When the original was removed by retention.
    pub original_removed_at: Option<DateTimeUtc>,
    /// The random segment of the image's delivery URLs; given by its first job.
    pub delivery_token: Option<String>,
    /// ThumbHash of the image (base64), from its last job.
    pub thumbhash: Option<String>,
    /// The dominant colour, `#rrggbb`, from its last job.
    pub dominant_colour: Option<String>,
}

/// Relations of [`Model`].
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The image's encoded outputs.
    #[sea_orm(has_many = "super::variants::Entity")]
    Variants,
    /// The jobs that processed the image.
    #[sea_orm(has_many = "super::jobs::Entity")]
    Jobs,
}

impl Related<super::variants::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Variants.def()
    }
}

impl Related<super::jobs::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Jobs.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
