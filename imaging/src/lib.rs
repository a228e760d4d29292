//! # imaging
//!
//! The image engine. Bytes go in; bytes come out. The crate does no I/O, so the
//! worker runs it on the blocking pool and tests run it on plain byte slices.
//!
//! One call to [`process`] does the whole job for one original:
//! probe the format, check the size limits from the headers, decode once (for
//! JPEG, straight to the smallest DCT scale that still covers the largest
//! variant), apply the EXIF orientation, convert to sRGB, drop every piece of
//! metadata (outputs are re-encoded from pixels, so nothing is carried over),
//! resize into each preset with a cascade (largest first, each smaller size
//! from the previous one), encode, and sketch a placeholder from the smallest size.
//!
//! Policies a caller sees:
//! - Animated GIF and WebP: the first frame only, unless a preset asks for
//!   `animated` output: then an animated WebP of every frame, with its timing.
//! - Alpha is kept where some pixel is not opaque and dropped otherwise; JPEG
//!   output composites it over white.
//! - 16-bit inputs are rounded to the nearest 8-bit value.
//! - Truncated JPEGs are `truncated-image`; JPEGs whose scan data is damaged
//!   are `corrupt-image` (libjpeg would paint grey or smeared blocks).
//! - Every failure is permanent for its input and has a stable code
//!   ([`ImagingError::code`]); a panic is caught and reported as `engine-panic`.
//!
//! # Layout
//! - [`error`]: [`ImagingError`], whose [`ImagingError::code`] is the stable,
//!   kebab-case code that reaches users.
//! - [`preset`]: [`Preset`], [`Fit`] and [`OutputFormat`]; a preset's version
//!   is derived from its settings so stale variants can be found after a
//!   preset changes.
//! - `probe`: format detection and the header checks (sizes, frames) that run
//!   before any decoder.
//! - `decode`: dispatch to a decoder; the `image` crate's decoders for PNG,
//!   GIF, WebP, BMP and TIFF.
//! - `heic` (feature `heic`): HEIC through the system's libheif.
//! - `jpeg`: mozjpeg decode (DCT-scaled) and encode, with libjpeg's errors
//!   and corrupt-data warnings turned into errors.
//! - `jpeg_scan`: the completeness check that keeps truncated JPEGs from
//!   turning into silently grey images.
//! - `colour`: ICC (Adobe RGB, Display P3, CMYK, …) to sRGB with moxcms.
//! - `orient`: EXIF orientations 1–8.
//! - `resize`: Lanczos3 via `fast_image_resize`, never upscaling.
//! - `placeholder`: [`Placeholder`], a ThumbHash and the dominant colour of
//!   the smallest size made.
//! - [`allocator`]: glibc tuning that keeps freed job buffers for the next
//!   job instead of faulting in fresh pages.
//! - `encode`: WebP (libwebp), JPEG (mozjpeg), PNG (oxipng), AVIF (feature
//!   `avif`, ravif).

pub mod allocator;
mod animation;
mod colour;
mod decode;
mod encode;
pub mod error;
#[cfg(feature = "heic")]
mod heic;
mod jpeg;
mod jpeg_scan;
mod orient;
mod placeholder;
pub mod preset;
mod probe;
mod resize;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

pub use error::ImagingError;
pub use placeholder::Placeholder;
pub use preset::{Effort, Fit, OutputFormat, Preset, default_presets};

/// The format of an input this engine decodes, from its first bytes (16 are
/// enough), or `None` for anything else (text, SVG, PDF, video, and HEIC
/// unless the crate is built with its `heic` feature). Callers use it to
/// refuse a non-image before storing it.
pub fn sniff(prefix: &[u8]) -> Option<&'static str> {
    match probe::detect(prefix) {
        Ok(probe::Format::Heic) if !cfg!(feature = "heic") => None,
        Ok(format) => Some(format.name()),
        Err(_) => None,
    }
}

/// Bounds checked before any pixel is decoded, so a hostile header cannot make
/// the engine allocate without limit or run for ever.
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
    /// The per-job memory budget: the engine estimates what decoding will
    /// allocate from the headers and refuses the image beforehand when the
    /// estimate is over it; the `image` crate's decoders also enforce it.
    pub max_alloc_bytes: u64,
    /// Most frames an animated GIF or WebP may declare (only the first is
    /// used unless a preset is animated, but a file with millions of frames
    /// is not a photo).
    pub max_frames: u32,
    /// Most pixels an animated preset may decode: frames × canvas, every
    /// frame being a full canvas. Checked from the headers.
    pub max_animation_pixels: u64,
    /// Most scans a JPEG may have. A real progressive JPEG has 10 or so
    /// (libjpeg's default script has 10, mozjpeg's a dozen); each scan is a
    /// pass over the whole image, so thousands of them hold a CPU for
    /// minutes on a small file. Over it: `image-too-complex`.
    pub max_scans: u32,
    /// Wall-clock budget for one call to [`process`]; checked while decoding
    /// JPEG (at every scan), between every step, and handed to the PNG optimiser.
    pub deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_width: 20_000,
            max_height: 20_000,
            max_pixels: 50_000_000,
            max_input_bytes: 64 * 1024 * 1024,
            // 50 MP of RGBA at 8 bits per channel, twice over, plus headroom.
            max_alloc_bytes: 512 * 1024 * 1024,
            max_frames: 1_000,
            // 400 frames of 500x500, say: 400 MB of RGBA at most if a preset
            // keeps them at full size, inside `max_alloc_bytes`.
            max_animation_pixels: 100_000_000,
            max_scans: 100,
            deadline: Duration::from_secs(30),
        }
    }
}

/// The deadline of one job.
pub(crate) struct Clock {
    started: Instant,
    budget: Duration,
}

impl Clock {
    pub(crate) fn start(budget: Duration) -> Self {
        Self { started: Instant::now(), budget }
    }

    /// Fails once the budget is spent.
    pub(crate) fn check(&self) -> Result<(), ImagingError> {
        if self.started.elapsed() > self.budget {
            return Err(self.exceeded());
        }
        Ok(())
    }

    /// The error of a spent budget.
    pub(crate) fn exceeded(&self) -> ImagingError {
        ImagingError::DeadlineExceeded(self.budget)
    }

    /// When the budget is spent.
    pub(crate) fn deadline(&self) -> Instant {
        self.started + self.budget
    }

    pub(crate) fn remaining(&self) -> Duration {
        self.budget.saturating_sub(self.started.elapsed())
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
    /// When this variant's bytes are those of another one (same pixels,
    /// same encoder settings; an original smaller than every preset's edge,
    /// say), that variant's index in [`Output::variants`]: it was encoded
    /// once, and can be stored once.
    pub same_as: Option<usize>,
}

/// Everything [`process`] produced for one original.
#[derive(Clone, Debug)]
pub struct Output {
    /// Facts about the original.
    pub source: SourceInfo,
    /// One variant per preset, in the order the presets were given.
    pub variants: Vec<Variant>,
    /// What a page paints before the variants load; from the smallest size
    /// the cascade made (none without presets).
    pub placeholder: Option<Placeholder>,
    /// Where the time went, for the worker's stage metrics.
    pub timings: Timings,
}

/// Time spent in each stage of one [`process`] call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timings {
    /// Probe, limits, decode, colour conversion and orientation.
    pub decode: std::time::Duration,
    /// Every resize of the cascade (and crops).
    pub resize: std::time::Duration,
    /// Every encode.
    pub encode: std::time::Duration,
    /// The placeholder.
    pub placeholder: std::time::Duration,
}

/// What makes two encodes give the same bytes: the pixels (the cascade's
/// current size and the crop) and the encoder settings.
type EncodeKey = (u32, u32, Option<u32>, OutputFormat, u8, Effort);

/// One preset's resize, and the square it is cropped to for `cover`.
pub(crate) type SizePlan = ((u32, u32), Option<u32>);

/// Each preset's [`SizePlan`] for an original of `width` × `height`, and
/// the order to make them in: largest first, so each smaller size is resized
/// from the previous one. The cascade touches far fewer source pixels than
/// resizing every variant from the full-size original.
fn cascade(presets: &[Preset], width: u32, height: u32) -> (Vec<SizePlan>, Vec<usize>) {
    let plans: Vec<SizePlan> = presets
        .iter()
        .map(|p| match p.fit {
            Fit::Inside => (resize::fit_inside(width, height, p.max_edge), None),
            Fit::Cover => (resize::fit_cover(width, height, p.max_edge), Some(p.max_edge)),
        })
        .collect();
    let mut order: Vec<usize> = (0..presets.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(u64::from(plans[i].0.0) * u64::from(plans[i].0.1)));
    (plans, order)
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
    let clock = Clock::start(limits.deadline);
    // The largest resize any preset needs, in the original's longest edge;
    // `u32::MAX` (decode at full size) until the original's size is known.
    let target_edge = presets.iter().map(|p| p.max_edge).max().unwrap_or(u32::MAX);
    // A `cover` preset resizes the shortest edge to `max_edge`, so the longest
    // may need more: decode those at full size.
    let target_edge = if presets.iter().any(|p| p.fit == Fit::Cover) { u32::MAX } else { target_edge };
    let mut timings = Timings::default();
    let started = std::time::Instant::now();
    let decoded = tracing::info_span!("decode").in_scope(|| decode::decode(input, limits, target_edge, &clock))?;
    timings.decode = started.elapsed();
    clock.check()?;
    let (full_w, full_h) = decoded.full_size;
    let pixels = decoded.pixels;
    // Animated presets of an animated original are made from every frame,
    // after the still ones.
    let animate = |preset: &Preset| preset.animated && decoded.frames > 1;
    let source = SourceInfo { format: decoded.format, width: full_w, height: full_h, has_alpha: pixels.has_alpha };

    let (plans, order) = cascade(presets, full_w, full_h);

    let mut outputs: Vec<Option<Variant>> = vec![None; presets.len()];
    // Presets whose outputs would be the same bytes (an original smaller
    // than every preset's edge comes out at its own size for each) are
    // encoded once: keyed by the pixels (the cascade's current size and the
    // crop) and the encoder settings.
    let mut encoded: Vec<(EncodeKey, usize)> = Vec::new();
    let mut current = pixels;
    for &i in &order {
        let preset = &presets[i];
        if animate(preset) {
            continue;
        }
        let ((width, height), crop) = plans[i];
        // Never resize up: the decode may be a little smaller than the plan
        // when it was DCT-scaled to exactly the target.
        let (width, height) = (width.min(current.width), height.min(current.height));
        let started = std::time::Instant::now();
        if (width, height) != (current.width, current.height) {
            current = tracing::info_span!("resize", preset = %preset.name, width, height)
                .in_scope(|| current.resize(width, height))?;
            clock.check()?;
        }
        let cropped;
        let out = match crop {
            Some(side) => {
                cropped = current.crop_centre(side, side);
                &cropped
            }
            None => &current,
        };
        timings.resize += started.elapsed();
        let key = (current.width, current.height, crop, preset.format, preset.quality, preset.effort);
        let same_as = encoded.iter().find(|(k, _)| *k == key).map(|&(_, j)| j);
        let data = match same_as.and_then(|j| outputs[j].as_ref()) {
            Some(variant) => variant.data.clone(),
            None => {
                let started = std::time::Instant::now();
                let data = tracing::info_span!("encode", preset = %preset.name, format = preset.format.as_str())
                    .in_scope(|| encode::encode(out, preset, clock.remaining()))?;
                timings.encode += started.elapsed();
                clock.check()?;
                encoded.push((key, i));
                data
            }
        };
        outputs[i] = Some(Variant {
            preset: preset.name.clone(),
            preset_version: preset.version(),
            format: preset.format,
            width: out.width,
            height: out.height,
            data,
            same_as,
        });
    }
    let wanted: Vec<animation::Wanted<'_>> = order
        .iter()
        .filter(|&&i| animate(&presets[i]))
        .map(|&i| animation::Wanted { index: i, preset: &presets[i], plan: plans[i] })
        .collect();
    if !wanted.is_empty() {
        let made = tracing::info_span!("animation", frames = decoded.frames)
            .in_scope(|| animation::variants(input, decoded.frames, &wanted, limits, &clock, &mut timings))?;
        for (i, variant) in made {
            outputs[i] = Some(variant);
        }
    }
    // `current` is now the smallest size the cascade made.
    let started = std::time::Instant::now();
    let placeholder = if presets.is_empty() { None } else { Some(placeholder::of(&current)?) };
    timings.placeholder = started.elapsed();
    Ok(Output { source, variants: outputs.into_iter().flatten().collect(), placeholder, timings })
}
