//! # imaging
//!
//! The image engine. Bytes go in; bytes come out. The crate does no I/O, so the
//! worker runs it on the blocking pool and tests run it on plain byte slices.
//!
//! One call to [`process`] does the whole job for one original:
//! probe the format, check the size limits from the headers, decode once,
//! apply the EXIF orientation, drop every piece of metadata (outputs are
//! re-encoded from pixels, so nothing is carried over), resize into each
//! preset with a cascade (largest first, each smaller size from the previous
//! one), and encode.
//!
//! # Layout
//! - [`error`]: [`ImagingError`], whose [`ImagingError::code`] is the stable,
//!   kebab-case code that reaches users.
//! - [`preset`]: [`Preset`] and [`OutputFormat`]; a preset's version is derived
//!   from its settings so stale variants can be found after a preset changes.
//! - `decode`: probe, limits, decode and orientation.
//! - `jpeg_scan`: the completeness check that keeps truncated JPEGs from
//!   turning into silently grey images.
//! - `resize`: Lanczos3 via `fast_image_resize`, never upscaling.
//! - `encode`: WebP (libwebp), JPEG and PNG.

mod decode;
mod encode;
pub mod error;
mod jpeg_scan;
pub mod preset;
mod resize;

use std::panic::{AssertUnwindSafe, catch_unwind};

pub use error::ImagingError;
pub use preset::{Effort, OutputFormat, Preset, default_presets};

/// Bounds checked before any pixel is decoded, so a hostile header cannot make
/// the engine allocate without limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted width in pixels.
    pub max_width: u32,
    /// Largest accepted height in pixels.
    pub max_height: u32,
    /// Largest accepted width × height; 50 MP by default.
    pub max_pixels: u64,
    /// Largest accepted encoded input.
    pub max_input_bytes: usize,
    /// Upper bound on what the decoder may allocate for one image.
    pub max_alloc_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_width: 20_000,
            max_height: 20_000,
            max_pixels: 50_000_000,
            max_input_bytes: 64 * 1024 * 1024,
            // 50 MP of RGBA at 16 bits per channel, plus headroom for the decoder.
            max_alloc_bytes: 512 * 1024 * 1024,
        }
    }
}

/// What the engine learnt about the original.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceInfo {
    /// Detected container format, lower case (`jpeg`, `png`, `gif`, `webp`, `bmp`, `tiff`).
    pub format: &'static str,
    /// Width after the EXIF orientation was applied.
    pub width: u32,
    /// Height after the EXIF orientation was applied.
    pub height: u32,
    /// Whether the output keeps an alpha channel (it is dropped when fully opaque).
    pub has_alpha: bool,
}

/// One encoded output.
#[derive(Clone, Debug)]
pub struct Variant {
    /// The preset's name.
    pub preset: String,
    /// The preset's version (see [`Preset::version`]).
    pub preset_version: String,
    /// The encoded format.
    pub format: OutputFormat,
    /// Output width in pixels.
    pub width: u32,
    /// Output height in pixels.
    pub height: u32,
    /// The encoded bytes; they carry no metadata.
    pub data: Vec<u8>,
}

/// Everything [`process`] produced for one original.
#[derive(Clone, Debug)]
pub struct Output {
    /// Facts about the original.
    pub source: SourceInfo,
    /// One variant per preset, in the order the presets were given.
    pub variants: Vec<Variant>,
}

/// Turns one original into one variant per preset.
///
/// # Errors
/// Every failure is permanent for this input and carries a stable code:
/// unsupported or unrecognised formats, data that is truncated or corrupt,
/// images beyond `limits`, and encoder failures. A panic inside a decoder or
/// encoder is caught and returned as [`ImagingError::Panicked`].
pub fn process(input: &[u8], presets: &[Preset], limits: &Limits) -> Result<Output, ImagingError> {
    catch_unwind(AssertUnwindSafe(|| process_inner(input, presets, limits))).unwrap_or(Err(ImagingError::Panicked))
}

fn process_inner(input: &[u8], presets: &[Preset], limits: &Limits) -> Result<Output, ImagingError> {
    let decoded = decode::decode(input, limits)?;
    let pixels = resize::Pixels::from_image(decoded.image);
    let source =
        SourceInfo { format: decoded.format, width: pixels.width, height: pixels.height, has_alpha: pixels.has_alpha };

    // Largest first, so each smaller size is resized from the previous one:
    // the cascade touches far fewer source pixels than resizing every variant
    // from the full-size original.
    let mut order: Vec<usize> = (0..presets.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(presets[i].max_edge));

    let mut outputs: Vec<Option<Variant>> = vec![None; presets.len()];
    let mut current = pixels;
    for i in order {
        let preset = &presets[i];
        let (width, height) = resize::fit_inside(source.width, source.height, preset.max_edge);
        if (width, height) != (current.width, current.height) {
            current = current.resize(width, height)?;
        }
        let data = encode::encode(&current, preset)?;
        outputs[i] = Some(Variant {
            preset: preset.name.clone(),
            preset_version: preset.version(),
            format: preset.format,
            width,
            height,
            data,
        });
    }
    Ok(Output { source, variants: outputs.into_iter().flatten().collect() })
}
