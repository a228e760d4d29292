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
    /// Lossless PNG, optimised by oxipng.
    Png,
    /// Lossy AVIF through rav1e (the `avif` feature, on by default). Never
    /// in the default presets.
    Avif,
}

impl OutputFormat {
    /// The file extension used in object keys.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Webp => "webp",
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Avif => "avif",
        }
    }

    /// The `Content-Type` stored with the object.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Webp => "image/webp",
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Avif => "image/avif",
        }
    }

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webp => "webp",
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::Avif => "avif",
        }
    }
}

/// How hard the encoder works: more effort, fewer bytes, more CPU.
///
/// | effort | WebP (libwebp method) | JPEG (mozjpeg) | PNG (oxipng preset) | AVIF (rav1e speed) |
/// |---|---|---|---|---|
/// | `Fast` | 2 | baseline, standard Huffman tables | 1 | 9 |
/// | `Balanced` | 4 (sharp's default) | baseline, optimised Huffman (sharp's default) | 2 | 6 |
/// | `Max` | 6 | trellis, progressive with optimised scans | 4 | 3 |
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

/// How the output fits the `max_edge` box.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// The whole image, its longest edge at most `max_edge`.
    #[default]
    Inside,
    /// A centred square crop of side `max_edge` (smaller if the image is),
    /// for thumbnails in a grid.
    Cover,
}

/// A named output: the longest edge, the format and how to encode it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preset {
    /// The name users ask for (`large`, `medium`, `thumb`, …).
    pub name: String,
    /// The longest edge of the output; smaller images are never upscaled.
    pub max_edge: u32,
    /// How the output fits the `max_edge` box.
    #[serde(default)]
    pub fit: Fit,
    /// The output format.
    pub format: OutputFormat,
    /// Encoder quality, 1–100; ignored by lossless formats.
    pub quality: u8,
    /// Encoder effort.
    #[serde(default)]
    pub effort: Effort,
    /// An animated original (GIF or WebP with more than one frame) becomes
    /// an animated WebP, every frame resized, with its timing. Without it,
    /// and for a still original, the first frame is the image. WebP only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub animated: bool,
}

/// Bumped whenever the engine changes its output for the same settings, so
/// that every preset's version changes with it.
///
/// 2: JPEG decoded by mozjpeg with DCT scaling, ICC to sRGB, mozjpeg and
/// oxipng encoders.
const ENGINE_REVISION: u32 = 2;

/// The revision of one output format's encoder settings, where it moved on
/// from [`ENGINE_REVISION`] alone; bumping it makes only that format's
/// variants stale.
///
/// JPEG 3: `Balanced` is baseline (was progressive), `Fast` uses the
/// standard Huffman tables (was optimised).
fn revision(format: OutputFormat) -> u32 {
    match format {
        OutputFormat::Jpeg => 3,
        OutputFormat::Webp | OutputFormat::Png | OutputFormat::Avif => ENGINE_REVISION,
    }
}

impl Preset {
    /// A WebP preset at quality 80 and balanced effort.
    pub fn webp(name: &str, max_edge: u32) -> Self {
        Self {
            name: name.to_owned(),
            max_edge,
            fit: Fit::Inside,
            format: OutputFormat::Webp,
            quality: 80,
            effort: Effort::Balanced,
            animated: false,
        }
    }

    /// A JPEG (mozjpeg) preset at quality 80 and balanced effort.
    pub fn jpeg(name: &str, max_edge: u32) -> Self {
        Self { format: OutputFormat::Jpeg, ..Self::webp(name, max_edge) }
    }

    /// A lossless PNG preset.
    pub fn png(name: &str, max_edge: u32) -> Self {
        Self { format: OutputFormat::Png, ..Self::webp(name, max_edge) }
    }

    /// The same preset at another effort.
    pub fn with_effort(self, effort: Effort) -> Self {
        Self { effort, ..self }
    }

    /// The same preset with another fit.
    pub fn with_fit(self, fit: Fit) -> Self {
        Self { fit, ..self }
    }

    /// The same preset, animated: see [`Preset::animated`].
    pub fn animated(self) -> Self {
        Self { animated: true, ..self }
    }

    /// Whether the settings make sense together.
    ///
    /// # Errors
    /// What is wrong, naming the preset: an edge of 0, a quality outside
    /// 1–100, or `animated` on a format other than WebP.
    pub fn check(&self) -> Result<(), String> {
        let name = &self.name;
        if self.max_edge == 0 {
            return Err(format!("preset {name}: max_edge must be at least 1"));
        }
        if !(1..=100).contains(&self.quality) {
            return Err(format!("preset {name}: quality must be 1 to 100, not {}", self.quality));
        }
        if self.animated && self.format != OutputFormat::Webp {
            return Err(format!("preset {name}: animated output is WebP only, not {}", self.format.as_str()));
        }
        Ok(())
    }

    /// A short hash of every setting that changes the output bytes. It is
    /// stored with each variant and is part of its object key, so replay can
    /// find variants made by an older version of a preset.
    pub fn version(&self) -> String {
        let mut canonical = format!(
            "engine={};max_edge={};fit={:?};format={};quality={};effort={:?}",
            revision(self.format),
            self.max_edge,
            self.fit,
            self.format.as_str(),
            self.quality,
            self.effort
        );
        // Only when set, so that every other preset keeps its version.
        if self.animated {
            canonical.push_str(";animated");
        }
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
        let refit = base.clone().with_fit(Fit::Cover);

        assert_eq!(base.version(), renamed.version());
        assert_ne!(base.version(), requality.version());
        assert_ne!(base.version(), resized.version());
        assert_ne!(base.version(), refit.version());
        assert_ne!(base.version(), base.clone().animated().version());
        assert_eq!(base.version(), Preset::webp("large", 2048).version(), "deterministic");
        assert_eq!(base.version().len(), 8);
    }

    #[test]
    fn settings_that_do_not_go_together_are_refused_by_name() {
        assert_eq!(Preset::webp("moving", 256).animated().check(), Ok(()));
        let animated_jpeg = Preset::jpeg("moving", 256).animated();
        assert_eq!(animated_jpeg.check(), Err("preset moving: animated output is WebP only, not jpeg".into()));
        assert!(Preset { quality: 0, ..Preset::webp("q", 256) }.check().is_err());
        assert!(Preset::webp("zero", 0).check().is_err());
    }

    #[test]
    fn a_format_revision_changes_only_that_formats_versions() {
        // The WebP default presets kept their versions when JPEG's moved on.
        assert_eq!(Preset::webp("large", 2048).version(), "3124c343");
        assert_ne!(Preset::jpeg("large", 2048).version(), Preset::webp("large", 2048).version());
    }
}
