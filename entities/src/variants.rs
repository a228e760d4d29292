//! `variants`: one row per encoded output of an image and a preset version.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// An encoded output. `(image_id, preset, preset_version)` is unique, so a
/// redelivered job cannot record the same output twice.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "variants")]
pub struct Model {
    /// Surrogate key.
    #[sea_orm(primary_key)]
    #[serde(skip)]
    pub id: i32,
    /// The original this was made from.
    pub image_id: Uuid,
    /// The preset's name.
    pub preset: String,
    /// The preset's version: a hash of its settings.
    pub preset_version: String,
    /// Output format (`webp`, `jpeg`, `png`).
    pub format: String,
    /// Output width.
    pub width: i32,
    /// Output height.
    pub height: i32,
    /// Encoded size in bytes.
    pub bytes: i64,
    /// Where the output is stored.
    pub object_key: String,
    /// When it was recorded.
    pub created_at: DateTimeUtc,
}

/// Relations of [`Model`].
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The original.
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
