//! Format detection and the header checks that run before any decoder does.
//!
//! Decoders allocate from what headers declare, so the declared sizes are read
//! here, cheaply and without trusting them, and checked against [`Limits`]:
//! a 44-byte GIF whose frame claims 65535x10751 pixels is refused before a
//! decoder sees it.

use crate::{ImagingError, Limits};

/// A container format the engine recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Jpeg,
    Png,
    Gif,
    Webp,
    Bmp,
    Tiff,
    Heic,
}

impl Format {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::Gif => "gif",
            Self::Webp => "webp",
            Self::Bmp => "bmp",
            Self::Tiff => "tiff",
            Self::Heic => "heic",
        }
    }
}

/// Recognises the format from its magic bytes.
pub(crate) fn detect(input: &[u8]) -> Result<Format, ImagingError> {
    if let Some(brand) = isobmff_brand(input) {
        // HEIF stills; AVIF and video brands are not inputs we take.
        return match &brand {
            b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1" => Ok(Format::Heic),
            other => Err(ImagingError::UnsupportedFormat(Some(String::from_utf8_lossy(other).into_owned()))),
        };
    }
    use image::ImageFormat as F;
    match image::guess_format(input) {
        Ok(F::Jpeg) => Ok(Format::Jpeg),
        Ok(F::Png) => Ok(Format::Png),
        Ok(F::Gif) => Ok(Format::Gif),
        Ok(F::WebP) => Ok(Format::Webp),
        Ok(F::Bmp) => Ok(Format::Bmp),
        Ok(F::Tiff) => Ok(Format::Tiff),
        Ok(other) => Err(ImagingError::UnsupportedFormat(Some(format!("{other:?}")))),
        Err(_) => Err(ImagingError::UnsupportedFormat(None)),
    }
}

/// The major brand of an ISO-BMFF file (`....ftypheic`).
fn isobmff_brand(input: &[u8]) -> Option<[u8; 4]> {
    if input.get(4..8)? != b"ftyp" {
        return None;
    }
    input.get(8..12)?.try_into().ok()
}

/// Checks a declared size against the limits.
pub(crate) fn check_dimensions(width: u32, height: u32, limits: &Limits) -> Result<(), ImagingError> {
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

/// Checks what can be learnt about frames without decoding: their count and,
/// for GIF, every frame's own declared size (which may exceed the screen's).
/// Returns the count: 1 for a still image.
pub(crate) fn check_frames(format: Format, input: &[u8], limits: &Limits) -> Result<u32, ImagingError> {
    let frames = match format {
        Format::Gif => gif_frames(input, limits)?,
        Format::Webp => webp_frames(input),
        _ => return Ok(1),
    };
    if frames > limits.max_frames {
        return Err(ImagingError::TooLarge(format!("{frames} frames exceeds the {}-frame limit", limits.max_frames)));
    }
    Ok(frames.max(1))
}

/// Walks the GIF block structure, counting image descriptors and checking
/// each one's size. A structure that ends early stops the walk: the decoder
/// then reports the truncation itself.
fn gif_frames(data: &[u8], limits: &Limits) -> Result<u32, ImagingError> {
    let le16 = |at: usize| data.get(at..at + 2).map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])));
    let Some(flags) = data.get(10) else { return Ok(0) };
    let mut pos = 13;
    if flags & 0x80 != 0 {
        pos += 3 << ((flags & 0x07) + 1);
    }
    let mut frames = 0u32;
    // Skips a chain of data sub-blocks; returns the position after its terminator.
    let skip_sub_blocks = |mut at: usize| -> Option<usize> {
        loop {
            let len = usize::from(*data.get(at)?);
            at += 1;
            if len == 0 {
                return Some(at);
            }
            at += len;
        }
    };
    loop {
        match data.get(pos) {
            Some(0x21) => match skip_sub_blocks(pos + 2) {
                Some(next) => pos = next,
                None => return Ok(frames),
            },
            Some(0x2C) => {
                let (Some(width), Some(height), Some(&local)) = (le16(pos + 5), le16(pos + 7), data.get(pos + 9))
                else {
                    return Ok(frames);
                };
                check_dimensions(width, height, limits)?;
                frames += 1;
                pos += 10;
                if local & 0x80 != 0 {
                    pos += 3 << ((local & 0x07) + 1);
                }
                // LZW minimum code size, then the image data.
                match skip_sub_blocks(pos + 1) {
                    Some(next) => pos = next,
                    None => return Ok(frames),
                }
            }
            _ => return Ok(frames),
        }
    }
}

/// Counts `ANMF` chunks in a RIFF WebP; a still image has none and counts one.
fn webp_frames(data: &[u8]) -> u32 {
    let mut pos = 12;
    let mut frames = 0u32;
    while let Some(header) = data.get(pos..pos + 8) {
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if &header[..4] == b"ANMF" {
            frames += 1;
        }
        // Chunks are padded to an even size.
        pos = pos.saturating_add(8).saturating_add(size).saturating_add(size & 1);
    }
    frames.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gif_with_frames(frames: &[(u16, u16)]) -> Vec<u8> {
        let mut gif = b"GIF89a".to_vec();
        gif.extend_from_slice(&[4, 0, 4, 0, 0, 0, 0]);
        for &(w, h) in frames {
            gif.extend_from_slice(&[0x21, 0xF9, 4, 0, 0, 0, 0, 0]);
            gif.push(0x2C);
            gif.extend_from_slice(&[0, 0, 0, 0]);
            gif.extend_from_slice(&w.to_le_bytes());
            gif.extend_from_slice(&h.to_le_bytes());
            gif.push(0);
            gif.extend_from_slice(&[2, 2, 0x4C, 0x01, 0]);
        }
        gif.push(0x3B);
        gif
    }

    #[test]
    fn gif_frames_are_counted_and_each_declared_size_is_checked() {
        let limits = Limits::default();
        assert_eq!(gif_frames(&gif_with_frames(&[(4, 4); 3]), &limits), Ok(3));

        let bomb = gif_with_frames(&[(4, 4), (65535, 10751)]);
        assert_eq!(gif_frames(&bomb, &limits).map_err(|e| e.code()), Err("image-too-large"));
    }

    #[test]
    fn too_many_frames_is_too_large() {
        let limits = Limits { max_frames: 2, ..Limits::default() };
        let result = check_frames(Format::Gif, &gif_with_frames(&[(4, 4); 3]), &limits);
        assert_eq!(result.map_err(|e| e.code()), Err("image-too-large"));
    }

    #[test]
    fn heif_brands_are_recognised_and_avif_is_not_an_input() {
        let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic";
        let avif = b"\0\0\0\x18ftypavif\0\0\0\0mif1avif";
        assert_eq!(detect(heic), Ok(Format::Heic));
        assert_eq!(detect(avif).map_err(|e| e.code()), Err("unsupported-format"));
    }
}
