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

/// What an AVIF file (ISOBMFF, HEIF's image items) holds, read from its
/// boxes rather than assumed: its brands, its items' types, its item
/// properties, and the size its primary image declares.
#[derive(Debug, Default)]
pub struct Avif {
    pub major_brand: String,
    pub top_level: Vec<String>,
    /// Every item's type, in `iinf` order (`av01` for coded images,
    /// `Exif` or `mime` for metadata).
    pub item_types: Vec<String>,
    /// Every property box in `ipco`, with a `colr` box as `colr:<type>`
    /// (`nclx` for signalled colour, `prof`/`rICC` for an ICC profile).
    pub properties: Vec<String>,
    /// The `auxC` properties' auxiliary types (the alpha plane's URN).
    pub auxiliary: Vec<String>,
    /// Every `ispe` (image spatial extents): the size of each coded image,
    /// the colour one and, with alpha, the alpha plane.
    pub sizes: Vec<(u32, u32)>,
}

/// Parses an AVIF file; panics on a box that runs past its parent.
pub fn avif(data: &[u8]) -> Avif {
    let mut avif = Avif::default();
    for (name, body) in boxes(data) {
        match name.as_str() {
            "ftyp" => avif.major_brand = String::from_utf8_lossy(&body[..4]).into_owned(),
            // A full box: version and flags come first.
            "meta" => read_meta(&body[4..], &mut avif),
            _ => {}
        }
        avif.top_level.push(name);
    }
    avif
}

fn read_meta(data: &[u8], avif: &mut Avif) {
    for (name, body) in boxes(data) {
        match name.as_str() {
            "iinf" => {
                let version = body[0];
                let skip = if version == 0 { 6 } else { 8 };
                for (_, infe) in boxes(&body[skip..]) {
                    // infe version 2: item_ID u16, protection u16, type.
                    let at = if infe[0] >= 3 { 4 + 4 + 2 } else { 4 + 2 + 2 };
                    avif.item_types.push(String::from_utf8_lossy(&infe[at..at + 4]).into_owned());
                }
            }
            "iprp" => {
                for (child, ipco) in boxes(body) {
                    if child != "ipco" {
                        continue;
                    }
                    for (property, value) in boxes(ipco) {
                        match property.as_str() {
                            "colr" => avif.properties.push(format!("colr:{}", String::from_utf8_lossy(&value[..4]))),
                            "ispe" => {
                                let word = |at: usize| u32::from_be_bytes(value[at..at + 4].try_into().unwrap());
                                avif.sizes.push((word(4), word(8)));
                                avif.properties.push(property);
                            }
                            "auxC" => {
                                let urn = value[4..].split(|b| *b == 0).next().unwrap_or_default();
                                avif.auxiliary.push(String::from_utf8_lossy(urn).into_owned());
                                avif.properties.push(property);
                            }
                            _ => avif.properties.push(property),
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// The boxes laid end to end in `data`: (type, body).
fn boxes(mut data: &[u8]) -> Vec<(String, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 8 {
        let size = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
        let name = String::from_utf8_lossy(&data[4..8]).into_owned();
        let (header, size) = match size {
            0 => (8, data.len()),
            1 => (16, u64::from_be_bytes(data[8..16].try_into().unwrap()) as usize),
            n => (8, n),
        };
        assert!(size >= header && size <= data.len(), "box {name} of {size} bytes runs past its parent");
        out.push((name, &data[header..size]));
        data = &data[size..];
    }
    out
}
