//! `tenants`: who owns images, jobs and API keys.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// The tenant that rows made before tenants existed belong to, and that the
/// bootstrap `ADMIN_API_KEY`, anonymous callers (auth off) and uploads made
/// straight to the bucket act for. The tenants migration creates it.
pub const DEFAULT_TENANT: Uuid = Uuid::from_u128(0x019a_e9c0_0000_7000_8000_0000_0000_0001);

/// The default tenant's name.
pub const DEFAULT_TENANT_NAME: &str = "default";

/// A tenant: one app or customer sharing the deployment.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "tenants")]
pub struct Model {
    /// The tenant's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Unique; what operators and `?tenant=` name it by.
    #[sea_orm(unique)]
    pub name: String,
    /// When it was created.
    pub created_at: DateTimeUtc,
    /// Uploads it may start per UTC day; `None`: no limit.
    pub max_uploads_per_day: Option<i64>,
    /// Bytes (originals and variants) it may keep stored; `None`: no limit.
    pub max_bytes_stored: Option<i64>,
    /// Bytes of originals and variants it has stored now.
    pub bytes_stored: i64,
    /// Whether an upload of bytes it already has returns that image.
    pub deduplicate: bool,
    /// Days after upload (and never before its job succeeded) that an
    /// image's original is kept; `None`: the global setting; `0`: forever.
    pub originals_retention_days: Option<i32>,
    /// How its variants are delivered: `public` or `signed`; `None`: `DELIVERY_MODE`.
    pub delivery_mode: Option<String>,
}

/// Rows point at their tenant by id; no relation is declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
