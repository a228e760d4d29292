//! What a page shows before an image loads: a ThumbHash (a ~25-byte sketch
//! of the image, alpha included) and its dominant colour.
//!
//! Both come from the smallest size the cascade already made, shrunk to at
//! most 32 pixels on the longest edge, so they cost a fraction of one resize.

use base64::Engine as _;

use crate::ImagingError;
use crate::resize::{Pixels, fit_inside};

/// The edge the image is shrunk to before hashing. ThumbHash accepts up to
/// 100 pixels but keeps at most 7 by 7 luminance coefficients, so 32 pixels
/// lose little and cost far less (measured in docs/benchmarks.md).
const MAX_EDGE: u32 = 32;

/// An image's placeholder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placeholder {
    /// The ThumbHash, standard base64 (with padding).
    pub thumbhash: String,
    /// The dominant colour as `#rrggbb`, alpha composited over white.
    pub dominant_colour: String,
}

/// The placeholder of `pixels` (any size; usually the smallest variant's).
pub(crate) fn of(pixels: &Pixels) -> Result<Placeholder, ImagingError> {
    let (w, h) = fit_inside(pixels.width, pixels.height, MAX_EDGE);
    let small = if (w, h) == (pixels.width, pixels.height) { pixels.clone() } else { pixels.resize(w, h)? };
    let rgba: Vec<u8> = if small.has_alpha {
        small.data.clone()
    } else {
        small.data.chunks_exact(3).flat_map(|px| [px[0], px[1], px[2], u8::MAX]).collect()
    };
    let hash = thumbhash::rgba_to_thumb_hash(w as usize, h as usize, &rgba);
    Ok(Placeholder {
        thumbhash: base64::engine::general_purpose::STANDARD.encode(hash),
        dominant_colour: dominant_colour(&small.rgb_over_white()),
    })
}

/// The mean of the most populated cell when RGB is cut into 8×8×8 cells:
/// the colour most of the picture is, not the muddy average of all of it.
fn dominant_colour(rgb: &[u8]) -> String {
    let cell = |px: &[u8]| (usize::from(px[0] >> 5) << 6) | (usize::from(px[1] >> 5) << 3) | usize::from(px[2] >> 5);
    let mut counts = [0u32; 512];
    for px in rgb.chunks_exact(3) {
        counts[cell(px)] += 1;
    }
    let top = (0..counts.len()).max_by_key(|&i| (counts[i], std::cmp::Reverse(i))).unwrap_or(0);
    let mut sum = [0u64; 3];
    for px in rgb.chunks_exact(3).filter(|px| cell(px) == top) {
        for (s, &c) in sum.iter_mut().zip(px) {
            *s += u64::from(c);
        }
    }
    let n = u64::from(counts[top].max(1));
    let [r, g, b] = sum.map(|s| ((s + n / 2) / n) as u8);
    format!("#{r:02x}{g:02x}{b:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(width: u32, height: u32, rgb: [u8; 3]) -> Pixels {
        let data = (0..width * height).flat_map(|_| rgb).collect();
        Pixels { width, height, has_alpha: false, data }
    }

    #[test]
    fn the_dominant_colour_is_the_largest_area_not_the_average() {
        // Three quarters red, one quarter blue: the average would be purple.
        let mut pixels = solid(40, 40, [200, 10, 10]);
        for px in pixels.data.chunks_exact_mut(3).take(400) {
            px.copy_from_slice(&[10, 10, 200]);
        }
        assert_eq!(of(&pixels).expect("placeholder").dominant_colour, "#c80a0a");
    }

    #[test]
    fn the_thumbhash_decodes_to_the_images_colour_and_aspect() {
        let placeholder = of(&solid(256, 128, [30, 120, 220])).expect("placeholder");
        let bytes = base64::engine::general_purpose::STANDARD.decode(&placeholder.thumbhash).expect("base64");
        assert!(bytes.len() <= 32, "a thumbhash is small: {} bytes", bytes.len());
        let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(&bytes).expect("ratio");
        // ThumbHash keeps the ratio to its own few cells: 7 by 4 for 2:1.
        assert!((ratio - 2.0).abs() < 0.3, "aspect ratio {ratio}");
        let (r, g, b, _) = thumbhash::thumb_hash_to_average_rgba(&bytes).expect("average");
        let close = |got: f32, want: u8| (got * 255.0 - f32::from(want)).abs() < 12.0;
        assert!(close(r, 30) && close(g, 120) && close(b, 220), "average {r} {g} {b}");
    }

    #[test]
    fn transparent_pixels_count_as_white_in_the_colour() {
        let data = (0..32 * 32).flat_map(|_| [0u8, 0, 0, 0]).collect();
        let clear = Pixels { width: 32, height: 32, has_alpha: true, data };
        assert_eq!(of(&clear).expect("placeholder").dominant_colour, "#ffffff");
    }
}
