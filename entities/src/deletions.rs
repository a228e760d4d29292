//! `deletions`: who deleted which image, and when; and, until
//! `completed_at` is set, a deletion whose objects are still to be removed.
//! Once complete, ids and times only: no image data, no client metadata.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// One image's deletion.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "deletions")]
pub struct Model {
    /// The record's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The tenant that owned the image.
    pub tenant_id: Uuid,
    /// The deleted image.
    #[sea_orm(unique)]
    pub image_id: Uuid,
    /// Its jobs, comma-separated (their staged uploads are deleted too).
    #[sea_orm(column_type = "Text")]
    pub job_ids: String,
    /// The API key that asked; `None` for an anonymous caller or an operator.
    pub requested_by: Option<Uuid>,
    /// When the deletion was asked for (and the rows went).
    pub requested_at: DateTimeUtc,
    /// When the last object was gone; `None` while some may remain.
    pub completed_at: Option<DateTimeUtc>,
    /// The image's external id, kept only until `image.deleted` is out.
    pub external_id: Option<String>,
    /// The image's client metadata, kept only until `image.deleted` is out.
    #[sea_orm(column_type = "Text", nullable)]
    pub metadata: Option<String>,
}

/// No relations: the record outlives the image it names.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
