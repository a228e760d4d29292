//! Where objects live. Keys are derived from ids and preset versions only, so
//! writing the same output twice overwrites one object instead of adding one
//! (a variant's key: [`crate::delivery::Placement::key`]).

use uuid::Uuid;

/// Prefix for objects clients PUT directly through presigned URLs.
pub const UPLOADS_PREFIX: &str = "uploads/";
/// Prefix for the originals the service keeps.
pub const ORIGINALS_PREFIX: &str = "originals/";
/// Prefix for the variants of tenants in public delivery mode.
pub const VARIANTS_PREFIX: &str = "variants/";
/// Prefix for the variants of tenants in signed delivery mode: a CDN serves
/// it only with a signed URL (see [`crate::delivery`]).
pub const PRIVATE_PREFIX: &str = "private/";

/// Key of an image's kept original.
pub fn original(image_id: Uuid) -> String {
    format!("{ORIGINALS_PREFIX}{image_id}")
}

/// `Cache-Control` for variants: their keys change whenever their content
/// does, so they can be cached for a year and never revalidated.
pub const VARIANT_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
