//! `image_digests`: the image of a tenant that holds the bytes with a given
//! SHA-256, so an upload of the same bytes returns it instead of a new one.

use sea_orm::entity::prelude::*;

/// One tenant's image for one digest.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "image_digests")]
pub struct Model {
    /// The tenant; digests are never shared across tenants.
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    /// Hex SHA-256 of the original.
    #[sea_orm(primary_key, auto_increment = false)]
    pub sha256: String,
    /// The image that holds those bytes.
    #[sea_orm(unique)]
    pub image_id: Uuid,
}

/// No relations declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
