//! EXIF orientation (values 1–8) applied to interleaved 8-bit pixels.

use crate::resize::Pixels;

/// Returns the upright image for an EXIF orientation value. Values outside
/// 1–8 are treated as 1: a broken tag must not fail an otherwise good image.
pub(crate) fn apply(pixels: Pixels, orientation: u8) -> Pixels {
    if !(2..=8).contains(&orientation) {
        return pixels;
    }
    let (w, h) = (pixels.width as usize, pixels.height as usize);
    // Orientations 5–8 swap the axes.
    let swaps = orientation >= 5;
    let (out_w, out_h) = if swaps { (h, w) } else { (w, h) };
    let bpp = if pixels.has_alpha { 4 } else { 3 };
    let mut out = vec![0u8; pixels.data.len()];
    for y in 0..out_h {
        let row = &mut out[y * out_w * bpp..(y + 1) * out_w * bpp];
        for (x, dst) in row.chunks_exact_mut(bpp).enumerate() {
            // Where the stored image keeps the pixel shown at (x, y).
            let (sx, sy) = match orientation {
                2 => (w - 1 - x, y),
                3 => (w - 1 - x, h - 1 - y),
                4 => (x, h - 1 - y),
                5 => (y, x),
                6 => (y, h - 1 - x),
                7 => (w - 1 - y, h - 1 - x),
                _ => (w - 1 - y, x),
            };
            let at = (sy * w + sx) * bpp;
            dst.copy_from_slice(&pixels.data[at..at + bpp]);
        }
    }
    Pixels { width: out_w as u32, height: out_h as u32, has_alpha: pixels.has_alpha, data: out }
}

/// The EXIF value of the `image` crate's orientation.
pub(crate) fn from_image(orientation: image::metadata::Orientation) -> u8 {
    use image::metadata::Orientation as O;
    match orientation {
        O::NoTransforms => 1,
        O::FlipHorizontal => 2,
        O::Rotate180 => 3,
        O::FlipVertical => 4,
        O::Rotate90FlipH => 5,
        O::Rotate90 => 6,
        O::Rotate270FlipH => 7,
        O::Rotate270 => 8,
    }
}

/// Reads the orientation from a JPEG APP1 `Exif` payload.
pub(crate) fn from_exif_segment(app1: &[u8]) -> Option<u8> {
    let tiff = app1.strip_prefix(b"Exif\0\0")?;
    let exif = exif::Reader::new().read_raw(tiff.to_vec()).ok()?;
    let field = exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)?;
    field.value.get_uint(0).and_then(|v| u8::try_from(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3x2 image whose pixel values are their stored index.
    fn indexed() -> Pixels {
        Pixels { width: 3, height: 2, has_alpha: false, data: (0..6).flat_map(|i| [i, i, i]).collect() }
    }

    fn values(p: &Pixels) -> Vec<u8> {
        p.data.chunks_exact(3).map(|px| px[0]).collect()
    }

    #[test]
    fn each_orientation_matches_the_exif_definition() {
        // Stored:  0 1 2 / 3 4 5
        let cases: [(u8, (u32, u32), [u8; 6]); 8] = [
            (1, (3, 2), [0, 1, 2, 3, 4, 5]),
            (2, (3, 2), [2, 1, 0, 5, 4, 3]),
            (3, (3, 2), [5, 4, 3, 2, 1, 0]),
            (4, (3, 2), [3, 4, 5, 0, 1, 2]),
            (5, (2, 3), [0, 3, 1, 4, 2, 5]),
            (6, (2, 3), [3, 0, 4, 1, 5, 2]),
            (7, (2, 3), [5, 2, 4, 1, 3, 0]),
            (8, (2, 3), [2, 5, 1, 4, 0, 3]),
        ];
        for (orientation, dims, expected) in cases {
            let out = apply(indexed(), orientation);
            assert_eq!((out.width, out.height), dims, "orientation {orientation}");
            assert_eq!(values(&out), expected, "orientation {orientation}");
        }
    }
}
