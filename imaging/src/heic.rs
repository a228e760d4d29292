//! HEIC through the system's libheif (feature `heic`).
//!
//! libheif applies the container's own transformations (`irot`, `imir`,
//! `clap`) while decoding, so the pixels come out upright; the EXIF
//! orientation of a HEIC is informational and is not applied again. The
//! profile, when the file carries an ICC one (iPhones tag Display P3), is
//! converted to sRGB like any other input's.

use libheif_rs::{ColorSpace, HeifContext, LibHeif, RgbChroma};

use crate::decode::Decoded;
use crate::resize::Pixels;
use crate::{ImagingError, Limits, colour, probe};

fn libheif(err: libheif_rs::HeifError) -> ImagingError {
    ImagingError::Corrupt(format!("libheif: {err}"))
}

pub(crate) fn decode(input: &[u8], limits: &Limits) -> Result<Decoded, ImagingError> {
    let lib = LibHeif::new();
    let context = HeifContext::read_from_bytes(input).map_err(libheif)?;
    let handle = context.primary_image_handle().map_err(libheif)?;
    let (width, height) = (handle.width(), handle.height());
    probe::check_dimensions(width, height, limits)?;
    let has_alpha = handle.has_alpha_channel();
    let channels: usize = if has_alpha { 4 } else { 3 };
    // libheif's own planes (YCbCr at full size at most) and our RGB(A) copy.
    let budget = u64::from(width) * u64::from(height) * (3 + channels as u64);
    if budget > limits.max_alloc_bytes {
        return Err(ImagingError::TooLarge(format!(
            "decoding needs about {budget} bytes, over the {}-byte budget",
            limits.max_alloc_bytes
        )));
    }
    let chroma = if has_alpha { RgbChroma::Rgba } else { RgbChroma::Rgb };
    let image = lib.decode(&handle, ColorSpace::Rgb(chroma), None).map_err(libheif)?;
    let planes = image.planes();
    let plane = planes.interleaved.ok_or_else(|| ImagingError::Corrupt("libheif gave no interleaved plane".into()))?;
    // The decode may differ from the handle's size after `clap`/`irot`.
    let (width, height) = (plane.width, plane.height);
    let row = width as usize * channels;
    if plane.storage_bits_per_pixel as usize != channels * 8 || plane.stride < row {
        return Err(ImagingError::Corrupt("libheif gave an unexpected pixel layout".into()));
    }
    let mut data = Vec::new();
    data.try_reserve_exact(row * height as usize)
        .map_err(|_| ImagingError::TooLarge("cannot allocate the decoded image".into()))?;
    for line in plane.data.chunks(plane.stride).take(height as usize) {
        data.extend_from_slice(line.get(..row).ok_or_else(|| ImagingError::Corrupt("short HEIC row".into()))?);
    }
    let opaque = has_alpha && data.chunks_exact(4).all(|px| px[3] == u8::MAX);
    let mut pixels = if opaque {
        let rgb = data.chunks_exact(4).flat_map(|px| [px[0], px[1], px[2]]).collect();
        Pixels { width, height, has_alpha: false, data: rgb }
    } else {
        Pixels { width, height, has_alpha, data }
    };
    if let Some(profile) = handle.color_profile_raw() {
        colour::rgb_to_srgb(&mut pixels, &profile.data);
    }
    Ok(Decoded { pixels, format: "heic", full_size: (width, height), frames: 1 })
}
