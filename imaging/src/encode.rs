//! Encoders. Every output is written from pixels alone, so no EXIF, XMP, IPTC,
//! ICC or comment from the original can reach it.

use image::ImageEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};

use crate::ImagingError;
use crate::preset::{Effort, OutputFormat, Preset};
use crate::resize::Pixels;

pub(crate) fn encode(pixels: &Pixels, preset: &Preset) -> Result<Vec<u8>, ImagingError> {
    match preset.format {
        OutputFormat::Webp => encode_webp(pixels, preset),
        OutputFormat::Jpeg => {
            let rgb = pixels.to_rgb_over_white();
            let mut out = Vec::new();
            JpegEncoder::new_with_quality(&mut out, preset.quality.clamp(1, 100))
                .write_image(&rgb, pixels.width, pixels.height, image::ExtendedColorType::Rgb8)
                .map_err(|e| ImagingError::Encode(e.to_string()))?;
            Ok(out)
        }
        OutputFormat::Png => {
            let color = if pixels.has_alpha { image::ExtendedColorType::Rgba8 } else { image::ExtendedColorType::Rgb8 };
            let mut out = Vec::new();
            PngEncoder::new_with_quality(&mut out, CompressionType::Best, FilterType::Adaptive)
                .write_image(&pixels.data, pixels.width, pixels.height, color)
                .map_err(|e| ImagingError::Encode(e.to_string()))?;
            Ok(out)
        }
    }
}

fn encode_webp(pixels: &Pixels, preset: &Preset) -> Result<Vec<u8>, ImagingError> {
    let layout = if pixels.has_alpha { webp::PixelLayout::Rgba } else { webp::PixelLayout::Rgb };
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
    let encoded = webp::Encoder::new(&pixels.data, layout, pixels.width, pixels.height)
        .encode_advanced(&config)
        .map_err(|e| ImagingError::Encode(format!("libwebp: {e:?}")))?;
    Ok(encoded.to_vec())
}
