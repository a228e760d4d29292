//! Named output presets and their versions.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// An encoded output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Lossy WebP through libwebp.
    Webp,
    /// Baseline JPEG.
    Jpeg,
    /// Lossless PNG.
    Png,
}

impl OutputFormat {
    /// The file extension used in object keys.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Webp => "webp",
            Self::Jpeg => "jpg",
            Self::Png => "png",
        }
    }

    /// The `Content-Type` stored with the object.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Webp => "image/webp",
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webp => "webp",
            Self::Jpeg => "jpeg",
            Self::Png => "png",
        }
    }
}

/// How hard the encoder works: more effort, fewer bytes, more CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effort {
    /// Cheapest settings that still compress well.
    Fast,
    /// The balanced default.
    #[default]
    Balanced,
    /// Smallest output; several times the CPU.
    Max,
}

/// A named output: the longest edge, the format and how to encode it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preset {
    /// The name users ask for (`large`, `medium`, `thumb`, …).
    pub name: String,
    /// The longest edge of the output; smaller images are never upscaled.
    pub max_edge: u32,
    /// The output format.
    pub format: OutputFormat,
    /// Encoder quality, 1–100; ignored by lossless formats.
    pub quality: u8,
    /// Encoder effort.
    #[serde(default)]
    pub effort: Effort,
}

/// Bumped whenever the engine changes its output for the same settings, so
/// that every preset's version changes with it.
const ENGINE_REVISION: u32 = 1;

impl Preset {
    /// A WebP preset at quality 80 and balanced effort.
    pub fn webp(name: &str, max_edge: u32) -> Self {
        Self { name: name.to_owned(), max_edge, format: OutputFormat::Webp, quality: 80, effort: Effort::Balanced }
    }

    /// A short hash of every setting that changes the output bytes. It is
    /// stored with each variant and is part of its object key, so replay can
    /// find variants made by an older version of a preset.
    pub fn version(&self) -> String {
        let canonical = format!(
            "engine={ENGINE_REVISION};max_edge={};format={};quality={};effort={:?}",
            self.max_edge,
            self.format.as_str(),
            self.quality,
            self.effort
        );
        let digest = Sha256::digest(canonical.as_bytes());
        hex::encode(&digest[..4])
    }
}

/// The default presets: longest edge 2048, 1024 and 256, WebP at quality 80.
pub fn default_presets() -> Vec<Preset> {
    vec![Preset::webp("large", 2048), Preset::webp("medium", 1024), Preset::webp("thumb", 256)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_changes_with_any_setting_and_not_with_the_name() {
        let base = Preset::webp("large", 2048);
        let renamed = Preset { name: "big".into(), ..base.clone() };
        let requality = Preset { quality: 81, ..base.clone() };
        let resized = Preset { max_edge: 2047, ..base.clone() };

        assert_eq!(base.version(), renamed.version());
        assert_ne!(base.version(), requality.version());
        assert_ne!(base.version(), resized.version());
        assert_eq!(base.version().len(), 8);
    }
}
