//! Encoders. Every output is written from pixels alone, so no EXIF, XMP, IPTC,
//! ICC or comment from the original can reach it.

use crate::ImagingError;
use crate::preset::{Effort, OutputFormat, Preset};
use crate::resize::Pixels;

pub(crate) fn encode(
    pixels: &Pixels,
    preset: &Preset,
    remaining: std::time::Duration,
) -> Result<Vec<u8>, ImagingError> {
    match preset.format {
        OutputFormat::Webp => encode_webp(pixels, preset),
        OutputFormat::Jpeg => {
            // JPEG has no alpha: composite over white, as browsers show it.
            let rgb = pixels.rgb_over_white();
            crate::jpeg::encode(&rgb, pixels.width, pixels.height, preset.quality, preset.effort)
        }
        OutputFormat::Png => encode_png(pixels, preset, remaining),
        OutputFormat::Avif => encode_avif(pixels, preset),
    }
}

/// libwebp's settings for a preset, still or animated.
pub(crate) fn webp_config(preset: &Preset) -> Result<webp::WebPConfig, ImagingError> {
    let mut config =
        webp::WebPConfig::new().map_err(|()| ImagingError::Encode("libwebp rejected its default config".into()))?;
    config.lossless = 0;
    config.quality = f32::from(preset.quality.clamp(1, 100));
    // libwebp's method: 0 fastest … 6 smallest. Method 2 costs about half of
    // method 4 for a few percent more bytes.
    config.method = match preset.effort {
        Effort::Fast => 2,
        Effort::Balanced => 4,
        Effort::Max => 6,
    };
    config.alpha_compression = 1;
    Ok(config)
}

fn encode_webp(pixels: &Pixels, preset: &Preset) -> Result<Vec<u8>, ImagingError> {
    let layout = if pixels.has_alpha { webp::PixelLayout::Rgba } else { webp::PixelLayout::Rgb };
    let config = webp_config(preset)?;
    let encoded = webp::Encoder::new(&pixels.data, layout, pixels.width, pixels.height)
        .encode_advanced(&config)
        .map_err(|e| ImagingError::Encode(format!("libwebp: {e:?}")))?;
    Ok(encoded.to_vec())
}

/// Lossless PNG through oxipng: it picks the colour type (palette, grey,
/// dropping alpha), bit depth and filters, and writes only critical chunks.
fn encode_png(pixels: &Pixels, preset: &Preset, remaining: std::time::Duration) -> Result<Vec<u8>, ImagingError> {
    use oxipng::{BitDepth, ColorType, Options, RawImage, StripChunks};
    let color = if pixels.has_alpha { ColorType::RGBA } else { ColorType::RGB { transparent_color: None } };
    let raw = RawImage::new(pixels.width, pixels.height, color, BitDepth::Eight, pixels.data.clone())
        .map_err(|e| ImagingError::Encode(format!("oxipng: {e}")))?;
    let mut options = Options::from_preset(match preset.effort {
        Effort::Fast => 1,
        Effort::Balanced => 2,
        Effort::Max => 4,
    });
    options.strip = StripChunks::All;
    // oxipng keeps its best result so far when the time is up.
    options.timeout = Some(remaining);
    raw.create_optimized_png(&options).map_err(|e| ImagingError::Encode(format!("oxipng: {e}")))
}

#[cfg(feature = "avif")]
fn encode_avif(pixels: &Pixels, preset: &Preset) -> Result<Vec<u8>, ImagingError> {
    use ravif::{Encoder, Img};
    use rgb::FromSlice;
    let encoder = Encoder::new()
        .with_quality(f32::from(preset.quality.clamp(1, 100)))
        .with_alpha_quality(f32::from(preset.quality.clamp(1, 100)))
        .with_speed(match preset.effort {
            Effort::Fast => 9,
            Effort::Balanced => 6,
            Effort::Max => 3,
        })
        .with_num_threads(Some(1));
    let (w, h) = (pixels.width as usize, pixels.height as usize);
    let encoded = if pixels.has_alpha {
        encoder.encode_rgba(Img::new(pixels.data.as_rgba(), w, h))
    } else {
        encoder.encode_rgb(Img::new(pixels.data.as_rgb(), w, h))
    };
    encoded.map(|e| e.avif_file).map_err(|e| ImagingError::Encode(format!("ravif: {e}")))
}

#[cfg(not(feature = "avif"))]
fn encode_avif(_pixels: &Pixels, _preset: &Preset) -> Result<Vec<u8>, ImagingError> {
    Err(ImagingError::Encode("AVIF output needs the `avif` feature of the imaging crate".into()))
}
