//! Where objects live. Keys are derived from ids and preset versions only, so
//! writing the same output twice overwrites one object instead of adding one.

use uuid::Uuid;

/// Prefix for objects clients PUT directly through presigned URLs.
pub const UPLOADS_PREFIX: &str = "uploads/";
/// Prefix for the originals the service keeps.
pub const ORIGINALS_PREFIX: &str = "originals/";
/// Prefix for encoded variants.
pub const VARIANTS_PREFIX: &str = "variants/";

/// Key of an image's kept original.
pub fn original(image_id: Uuid) -> String {
    format!("{ORIGINALS_PREFIX}{image_id}")
}

/// Key of one variant: deterministic in the image, the preset and its version.
pub fn variant(image_id: Uuid, preset: &str, preset_version: &str, extension: &str) -> String {
    format!("{VARIANTS_PREFIX}{image_id}/{preset}-{preset_version}.{extension}")
}

/// `Cache-Control` for variants: their keys change whenever their content
/// does, so they can be cached for a year and never revalidated.
pub const VARIANT_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
