//! Helpers shared by the integration tests: test images, decoding outputs,
//! and building or patching JPEG segments.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use imaging::{Limits, Output, Preset};

/// A file under the repository's `testdata/`.
pub fn testdata(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs the engine with default limits, panicking with the error code on failure.
pub fn process(input: &[u8], presets: &[Preset]) -> Output {
    imaging::process(input, presets, &Limits::default()).unwrap_or_else(|e| panic!("{}: {e}", e.code()))
}

/// The error code the engine gives `input` with the default presets.
pub fn outcome(input: &[u8]) -> Result<(u32, u32), &'static str> {
    imaging::process(input, &imaging::default_presets(), &Limits::default())
        .map(|out| (out.source.width, out.source.height))
        .map_err(|e| e.code())
}

/// Decodes an encoded output to RGBA with the `image` crate (an independent decoder).
pub fn decode(bytes: &[u8]) -> image::RgbaImage {
    image::load_from_memory(bytes).unwrap().into_rgba8()
}

/// Mean absolute difference per channel between two same-sized images.
pub fn mean_abs_diff(a: &image::RgbaImage, b: &image::RgbaImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
    sum as f64 / a.as_raw().len() as f64
}

/// A JPEG segment: marker, big-endian length, payload.
pub fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0xFF, marker];
    out.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// `jpeg` with `segments` inserted right after SOI.
pub fn with_segments(jpeg: &[u8], segments: &[Vec<u8>]) -> Vec<u8> {
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    let mut out = jpeg[..2].to_vec();
    for s in segments {
        out.extend_from_slice(s);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A big-endian TIFF/EXIF block with IFD0 holding Orientation, a camera
/// make, and a GPS IFD with a latitude: what a phone writes.
pub fn exif_app1(orientation: u16) -> Vec<u8> {
    let mut t = b"MM\0\x2A\0\0\0\x08".to_vec();
    // IFD0 at 8: three entries.
    let ifd0_len = 2 + 3 * 12 + 4;
    let make_at = 8 + ifd0_len;
    let make = b"PhoneMaker\0\0";
    let gps_at = make_at + make.len();
    t.extend_from_slice(&3u16.to_be_bytes());
    t.extend_from_slice(&[0x01, 0x0F, 0, 2]); // Make, ASCII
    t.extend_from_slice(&(make.len() as u32).to_be_bytes());
    t.extend_from_slice(&(make_at as u32).to_be_bytes());
    t.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]); // Orientation, SHORT
    t.extend_from_slice(&orientation.to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1]); // GPS IFD pointer, LONG
    t.extend_from_slice(&(gps_at as u32).to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(make);
    // GPS IFD: LatitudeRef "N".
    t.extend_from_slice(&1u16.to_be_bytes());
    t.extend_from_slice(&[0x00, 0x01, 0, 2, 0, 0, 0, 2, b'N', 0, 0, 0]);
    t.extend_from_slice(&[0, 0, 0, 0]);
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&t);
    segment(0xE1, &payload)
}

/// Rewrites the Orientation tag of IFD0 in a JPEG's EXIF block, in place.
/// Panics when there is none: the tests choose files that have one.
pub fn set_orientation(jpeg: &mut [u8], value: u16) {
    let mut pos = 2;
    loop {
        assert_eq!(jpeg[pos], 0xFF, "lost the marker chain at {pos}");
        let marker = jpeg[pos + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
        if marker == 0xE1 && jpeg[pos + 4..].starts_with(b"Exif\0\0") {
            let tiff = pos + 10;
            let big = &jpeg[tiff..tiff + 2] == b"MM";
            let u16_at = |b: &[u8], at: usize| {
                let pair = [b[at], b[at + 1]];
                if big { u16::from_be_bytes(pair) } else { u16::from_le_bytes(pair) }
            };
            let u32_at = |b: &[u8], at: usize| {
                let quad = [b[at], b[at + 1], b[at + 2], b[at + 3]];
                if big { u32::from_be_bytes(quad) } else { u32::from_le_bytes(quad) }
            };
            let ifd0 = tiff + u32_at(jpeg, tiff + 4) as usize;
            let count = usize::from(u16_at(jpeg, ifd0));
            for entry in (0..count).map(|i| ifd0 + 2 + i * 12) {
                if u16_at(jpeg, entry) == 0x0112 {
                    let bytes = if big { value.to_be_bytes() } else { value.to_le_bytes() };
                    jpeg[entry + 8..entry + 10].copy_from_slice(&bytes);
                    return;
                }
            }
            panic!("EXIF without an Orientation tag");
        }
        assert_ne!(marker, 0xDA, "no EXIF before the first scan");
        pos += 2 + len;
    }
}

/// Applies an EXIF orientation with the `image` crate: the reference the
/// engine's own implementation is compared with.
pub fn reference_orient(image: &image::RgbaImage, orientation: u8) -> image::RgbaImage {
    let mut dynamic = image::DynamicImage::ImageRgba8(image.clone());
    dynamic.apply_orientation(image::metadata::Orientation::from_exif(orientation).unwrap());
    dynamic.into_rgba8()
}
