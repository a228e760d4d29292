//! Outputs carry no metadata: no EXIF (GPS included), XMP, IPTC, ICC or
//! comments, proved by parsing every output's container.
#![allow(clippy::unwrap_used)]

mod common;

use common::{process, segment, testdata, with_segments};
use imaging::{OutputFormat, Preset};

/// The segment and chunk names each output contains.
fn containers(format: OutputFormat, data: &[u8]) -> Vec<String> {
    match format {
        OutputFormat::Jpeg => jpeg_markers(data),
        OutputFormat::Png => png_chunks(data),
        OutputFormat::Webp => webp_chunks(data),
        OutputFormat::Avif => {
            let avif = common::avif(data);
            let items = avif.item_types.iter().map(|t| format!("item:{t}"));
            avif.top_level.iter().cloned().chain(items).chain(avif.properties).collect()
        }
    }
}

fn jpeg_markers(data: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut pos = 2;
    while pos + 4 <= data.len() {
        assert_eq!(data[pos], 0xFF);
        let marker = data[pos + 1];
        names.push(format!("{marker:02X}"));
        if marker == 0xDA {
            break;
        }
        pos += 2 + usize::from(u16::from_be_bytes([data[pos + 2], data[pos + 3]]));
    }
    names
}

fn png_chunks(data: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut pos = 8;
    while pos + 8 <= data.len() {
        let len = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        names.push(String::from_utf8_lossy(&data[pos + 4..pos + 8]).into_owned());
        pos += 12 + len;
    }
    names
}

fn webp_chunks(data: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut pos = 12;
    while pos + 8 <= data.len() {
        let len = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let name = String::from_utf8_lossy(&data[pos..pos + 4]).into_owned();
        if name == "VP8X" {
            // Flags: ICC 0x20, EXIF 0x08, XMP 0x04.
            assert_eq!(data[pos + 8] & 0x2C, 0, "VP8X announces metadata");
        }
        names.push(name);
        pos += 8 + len + (len & 1);
    }
    names
}

fn allowed(format: OutputFormat) -> &'static [&'static str] {
    match format {
        // SOI is skipped; APP0 (JFIF) is structure, not metadata.
        OutputFormat::Jpeg => &["E0", "DB", "C0", "C2", "C4", "DD", "DA"],
        OutputFormat::Png => &["IHDR", "PLTE", "tRNS", "IDAT", "IEND"],
        OutputFormat::Webp => &["VP8 ", "VP8L", "VP8X", "ALPH"],
        // Boxes, image items and their properties: no `Exif` or `mime`
        // (XMP) item, and colour signalled as `nclx`, never an ICC profile.
        OutputFormat::Avif => &["ftyp", "meta", "mdat", "item:av01", "ispe", "pixi", "av1C", "colr:nclx", "auxC"],
    }
}

fn presets() -> Vec<Preset> {
    let avif = Preset { format: OutputFormat::Avif, ..Preset::webp("a", 64) };
    vec![Preset::webp("w", 256), Preset::jpeg("j", 256), Preset::png("p", 128), avif]
}

fn assert_clean(input: &[u8], label: &str) {
    let output = process(input, &presets());
    for variant in &output.variants {
        let names = containers(variant.format, &variant.data);
        for name in &names {
            assert!(
                allowed(variant.format).contains(&name.as_str()),
                "{label} {:?}: {name} in {names:?}",
                variant.format
            );
        }
        let exif = exif::Reader::new().read_from_container(&mut std::io::Cursor::new(&variant.data));
        assert!(exif.is_err(), "{label} {:?}: EXIF found", variant.format);
        for secret in [&b"PhoneMaker"[..], b"secret comment", b"xmpmeta", b"8BIM", b"ICC_PROFILE", b"Canon"] {
            assert!(
                !variant.data.windows(secret.len()).any(|w| w == secret),
                "{label} {:?}: {:?}",
                variant.format,
                String::from_utf8_lossy(secret)
            );
        }
    }
}

#[test]
fn a_jpeg_full_of_metadata_gives_outputs_with_none() {
    // Arrange: a JPEG carrying EXIF with GPS, XMP, IPTC, an ICC profile and a comment.
    let base = process(&testdata("astronaut.png"), &[Preset::jpeg("j", 512)]).variants.remove(0).data;
    let srgb_icc = moxcms::ColorProfile::new_srgb().encode().unwrap();
    let mut icc_payload = b"ICC_PROFILE\0\x01\x01".to_vec();
    icc_payload.extend_from_slice(&srgb_icc);
    let input = with_segments(
        &base,
        &[
            common::exif_app1(1),
            segment(
                0xE1,
                b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta xmlns:x='adobe:ns:meta/'><gps>51.5N</gps></x:xmpmeta>",
            ),
            segment(0xED, b"Photoshop 3.0\08BIM\x04\x04\0\0\0\0\0\x0a\x1c\x02\x78\0\x05hello"),
            segment(0xE2, &icc_payload),
            segment(0xFE, b"secret comment"),
        ],
    );
    assert!(exif::Reader::new().read_from_container(&mut std::io::Cursor::new(&input)).is_ok(), "the input has EXIF");

    // Act / Assert
    assert_clean(&input, "built");
}

#[test]
fn a_camera_jpeg_gives_outputs_without_its_exif() {
    assert_clean(&testdata("canon_orient6.jpg"), "canon");
}

#[test]
fn png_text_chunks_do_not_reach_the_outputs() {
    // A PNG with a tEXt chunk spliced in before IDAT.
    let png = testdata("dice_rgba.png");
    let idat = png.windows(4).position(|w| w == b"IDAT").unwrap() - 4;
    let text = b"Commentsecret comment";
    let mut chunk = (text.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(b"tEXt");
    chunk.extend_from_slice(text);
    chunk.extend_from_slice(&[0, 0, 0, 0]); // CRC placeholder, filled in below
    let mut input = png[..idat].to_vec();
    input.extend_from_slice(&chunk);
    input.extend_from_slice(&png[idat..]);
    let crc = crc32(&chunk[4..chunk.len() - 4]);
    let end = idat + chunk.len();
    input[end - 4..end].copy_from_slice(&crc.to_be_bytes());

    assert_clean(&input, "png");
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
