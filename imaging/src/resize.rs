//! 8-bit RGB(A) pixels and Lanczos3 resizing.

use std::borrow::Cow;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::DynamicImage;

use crate::ImagingError;

/// Interleaved 8-bit pixels: RGB, or RGBA when the alpha channel is used.
#[derive(Clone)]
pub(crate) struct Pixels {
    pub width: u32,
    pub height: u32,
    pub has_alpha: bool,
    pub data: Vec<u8>,
}

impl Pixels {
    /// Converts to 8 bits per channel, keeping alpha only where some pixel is
    /// not fully opaque: an opaque alpha channel costs bytes and buys nothing.
    pub fn from_image(image: DynamicImage) -> Self {
        let (width, height) = (image.width(), image.height());
        if !image.color().has_alpha() {
            return Self { width, height, has_alpha: false, data: image.into_rgb8().into_raw() };
        }
        let rgba = image.into_rgba8().into_raw();
        if rgba.chunks_exact(4).all(|px| px[3] == u8::MAX) {
            let rgb = rgba.chunks_exact(4).flat_map(|px| [px[0], px[1], px[2]]).collect();
            return Self { width, height, has_alpha: false, data: rgb };
        }
        Self { width, height, has_alpha: true, data: rgba }
    }

    fn pixel_type(&self) -> PixelType {
        if self.has_alpha { PixelType::U8x4 } else { PixelType::U8x3 }
    }

    /// Lanczos3 resize; alpha is premultiplied during the resize so that
    /// transparent pixels do not bleed their colour into the edges.
    pub fn resize(&self, width: u32, height: u32) -> Result<Self, ImagingError> {
        let internal = |e: &dyn std::fmt::Display| ImagingError::Corrupt(format!("resize: {e}"));
        let src = ImageRef::new(self.width, self.height, &self.data, self.pixel_type()).map_err(|e| internal(&e))?;
        let mut dst = Image::new(width, height, self.pixel_type());
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
        Resizer::new().resize(&src, &mut dst, &options).map_err(|e| internal(&e))?;
        Ok(Self { width, height, has_alpha: self.has_alpha, data: dst.into_vec() })
    }

    /// The centred `width` x `height` window.
    pub fn crop_centre(&self, width: u32, height: u32) -> Self {
        let bpp = if self.has_alpha { 4 } else { 3 };
        let (width, height) = (width.min(self.width), height.min(self.height));
        let left = ((self.width - width) / 2) as usize;
        let top = ((self.height - height) / 2) as usize;
        let stride = self.width as usize * bpp;
        let data = self
            .data
            .chunks_exact(stride)
            .skip(top)
            .take(height as usize)
            .flat_map(|row| &row[left * bpp..(left + width as usize) * bpp])
            .copied()
            .collect();
        Self { width, height, has_alpha: self.has_alpha, data }
    }

    /// The pixels as RGB; alpha, if any, is composited over white. Opaque
    /// pixels are borrowed, not copied.
    pub fn rgb_over_white(&self) -> Cow<'_, [u8]> {
        if !self.has_alpha {
            return Cow::Borrowed(&self.data);
        }
        self.data
            .chunks_exact(4)
            .flat_map(|px| {
                let a = u16::from(px[3]);
                let blend = |c: u8| ((u16::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
                [blend(px[0]), blend(px[1]), blend(px[2])]
            })
            .collect::<Vec<u8>>()
            .into()
    }
}

/// The size that fits inside a `max_edge` square, keeping the aspect ratio and
/// never upscaling.
pub(crate) fn fit_inside(width: u32, height: u32, max_edge: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= max_edge {
        return (width, height);
    }
    let scale = f64::from(max_edge) / f64::from(longest);
    let scaled = |side: u32| ((f64::from(side) * scale).round() as u32).clamp(1, max_edge);
    (scaled(width), scaled(height))
}

/// The size that covers a `max_edge` square (the shortest edge at most
/// `max_edge`), keeping the aspect ratio and never upscaling. A centred
/// square crop of it is the `cover` output.
pub(crate) fn fit_cover(width: u32, height: u32, max_edge: u32) -> (u32, u32) {
    let shortest = width.min(height);
    if shortest <= max_edge {
        return (width, height);
    }
    let scale = f64::from(max_edge) / f64::from(shortest);
    let scaled = |side: u32| ((f64::from(side) * scale).round() as u32).max(max_edge);
    (scaled(width), scaled(height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_inside_scales_the_longest_edge_and_never_upscales() {
        assert_eq!(fit_inside(6028, 3391, 2048), (2048, 1152));
        assert_eq!(fit_inside(3391, 6028, 256), (144, 256));
        assert_eq!(fit_inside(512, 512, 1024), (512, 512));
        assert_eq!(fit_inside(10_000, 1, 256), (256, 1));
    }

    #[test]
    fn fit_cover_scales_the_shortest_edge_and_crop_takes_the_centre() {
        assert_eq!(fit_cover(6028, 3391, 256), (455, 256));
        assert_eq!(fit_cover(200, 100, 256), (200, 100));
        let stripes = Pixels { width: 4, height: 1, has_alpha: false, data: (0..4).flat_map(|i| [i, i, i]).collect() };
        assert_eq!(stripes.crop_centre(2, 1).data, [1, 1, 1, 2, 2, 2]);
    }

    #[test]
    fn opaque_alpha_is_dropped_and_used_alpha_is_kept() {
        let opaque = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(2, 2, image::Rgba([1, 2, 3, 255])));
        let translucent = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(2, 2, image::Rgba([1, 2, 3, 9])));

        let opaque = Pixels::from_image(opaque);
        let translucent = Pixels::from_image(translucent);

        assert!(!opaque.has_alpha);
        assert_eq!(opaque.data, [1, 2, 3].repeat(4));
        assert!(translucent.has_alpha);
    }
}
