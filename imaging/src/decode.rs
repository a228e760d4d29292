//! Probe, limits and decode into upright sRGB pixels.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader};

use crate::probe::{self, Format};
use crate::resize::Pixels;
use crate::{Clock, ImagingError, Limits, colour, jpeg, orient};

/// A decoded, upright, sRGB image.
pub(crate) struct Decoded {
    pub pixels: Pixels,
    pub format: &'static str,
    /// The full upright size of the original; `pixels` may be smaller when
    /// the decoder could scale down for free (JPEG's DCT scaling).
    pub full_size: (u32, u32),
    /// How many frames the original declares: more than 1 for an animated
    /// GIF or WebP, of which `pixels` is the first.
    pub frames: u32,
}

/// Decodes `input` once, after checking its declared size against `limits`.
/// `target_edge` is the longest edge the largest variant needs; decoders that
/// can scale while decoding stop there.
pub(crate) fn decode(input: &[u8], limits: &Limits, target_edge: u32, clock: &Clock) -> Result<Decoded, ImagingError> {
    if input.is_empty() {
        return Err(ImagingError::Empty);
    }
    if input.len() > limits.max_input_bytes {
        return Err(ImagingError::TooLarge(format!(
            "{} bytes exceeds the {}-byte input limit",
            input.len(),
            limits.max_input_bytes
        )));
    }
    let format = probe::detect(input)?;
    let frames = probe::check_frames(format, input, limits)?;
    match format {
        Format::Jpeg => {
            let decoded = jpeg::decode(input, limits, target_edge, clock)?;
            Ok(Decoded { pixels: decoded.pixels, format: format.name(), full_size: decoded.full_size, frames })
        }
        Format::Heic => decode_heic(input, limits),
        _ => decode_with_image(input, format, limits).map(|decoded| Decoded { frames, ..decoded }),
    }
}

/// HEIC through libheif when the crate is built with its `heic` feature.
#[cfg(feature = "heic")]
fn decode_heic(input: &[u8], limits: &Limits) -> Result<Decoded, ImagingError> {
    crate::heic::decode(input, limits)
}

/// Without the `heic` feature (the default: it needs the system's libheif),
/// HEIC is recognised and refused as `unsupported-format`.
#[cfg(not(feature = "heic"))]
fn decode_heic(_input: &[u8], _limits: &Limits) -> Result<Decoded, ImagingError> {
    Err(ImagingError::UnsupportedFormat(Some("HEIC".into())))
}

/// The `image` crate's own limits, from ours: its decoders enforce them too.
pub(crate) fn image_limits(limits: &Limits) -> image::Limits {
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_width);
    decoder_limits.max_image_height = Some(limits.max_height);
    decoder_limits.max_alloc = Some(limits.max_alloc_bytes);
    decoder_limits
}

/// Everything but JPEG and HEIC: the pure-Rust decoders of the `image` crate.
/// Animated GIF and WebP give their first frame.
fn decode_with_image(input: &[u8], format: Format, limits: &Limits) -> Result<Decoded, ImagingError> {
    let image_format = match format {
        Format::Png => image::ImageFormat::Png,
        Format::Gif => image::ImageFormat::Gif,
        Format::Webp => image::ImageFormat::WebP,
        Format::Bmp => image::ImageFormat::Bmp,
        Format::Tiff => image::ImageFormat::Tiff,
        Format::Jpeg | Format::Heic => return Err(ImagingError::UnsupportedFormat(Some(format.name().into()))),
    };
    let mut reader = ImageReader::with_format(Cursor::new(input), image_format);
    reader.limits(image_limits(limits));

    let mut decoder = reader.into_decoder()?;
    let (width, height) = decoder.dimensions();
    probe::check_dimensions(width, height, limits)?;
    // The decoded buffer, then its 8-bit RGBA copy.
    let budget = decoder.total_bytes().saturating_add(u64::from(width) * u64::from(height) * 4);
    if budget > limits.max_alloc_bytes {
        return Err(ImagingError::TooLarge(format!(
            "decoding needs about {budget} bytes, over the {}-byte budget",
            limits.max_alloc_bytes
        )));
    }
    // A broken EXIF block or ICC profile must not fail an otherwise good image.
    let orientation = decoder.orientation().map(orient::from_image).unwrap_or(1);
    let icc = decoder.icc_profile().ok().flatten();
    let image = DynamicImage::from_decoder(decoder)?;
    let mut pixels = Pixels::from_image(image);
    if let Some(icc) = icc {
        colour::rgb_to_srgb(&mut pixels, &icc);
    }
    let pixels = orient::apply(pixels, orientation);
    let full_size = (pixels.width, pixels.height);
    Ok(Decoded { pixels, format: format.name(), full_size, frames: 1 })
}
