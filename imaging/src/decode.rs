//! Probe, limits, decode and orientation.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::{ImagingError, Limits, jpeg_scan};

/// A decoded, upright image.
pub(crate) struct Decoded {
    pub image: DynamicImage,
    pub format: &'static str,
}

/// Decodes `input` once, after checking its declared size against `limits`.
pub(crate) fn decode(input: &[u8], limits: &Limits) -> Result<Decoded, ImagingError> {
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
    let format = image::guess_format(input).map_err(|_| ImagingError::UnsupportedFormat(None))?;
    let name = match format {
        ImageFormat::Jpeg => "jpeg",
        ImageFormat::Png => "png",
        ImageFormat::Gif => "gif",
        ImageFormat::WebP => "webp",
        ImageFormat::Bmp => "bmp",
        ImageFormat::Tiff => "tiff",
        other => return Err(ImagingError::UnsupportedFormat(Some(format!("{other:?}")))),
    };
    if format == ImageFormat::Jpeg && !jpeg_scan::reaches_end_of_image(input) {
        return Err(ImagingError::Truncated);
    }

    let mut reader = ImageReader::with_format(Cursor::new(input), format);
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_width);
    decoder_limits.max_image_height = Some(limits.max_height);
    decoder_limits.max_alloc = Some(limits.max_alloc_bytes);
    reader.limits(decoder_limits);

    let mut decoder = reader.into_decoder()?;
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height, limits)?;
    // A broken EXIF block must not fail an otherwise good image: treat it as upright.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder)?;
    image.apply_orientation(orientation);
    Ok(Decoded { image, format: name })
}

fn check_dimensions(width: u32, height: u32, limits: &Limits) -> Result<(), ImagingError> {
    if width == 0 || height == 0 {
        return Err(ImagingError::Corrupt(format!("declared size {width}x{height}")));
    }
    if width > limits.max_width || height > limits.max_height {
        return Err(ImagingError::TooLarge(format!(
            "{width}x{height} exceeds {}x{}",
            limits.max_width, limits.max_height
        )));
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(ImagingError::TooLarge(format!("{pixels} pixels exceeds the {}-pixel limit", limits.max_pixels)));
    }
    Ok(())
}
