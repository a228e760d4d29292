//! Inputs of every supported kind decode to the right pixels, and every
//! output format decodes back to the right size.
#![allow(clippy::unwrap_used)]

mod common;

use common::{decode, mean_abs_diff, process, testdata};
use image::ImageEncoder;
use imaging::{Fit, OutputFormat, Preset};

/// A 40x30 image with a gradient and a hard edge: resizing and colour
/// mistakes both show.
fn sample_rgb() -> image::RgbImage {
    image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([(x * 6) as u8, (y * 8) as u8, if x < 20 { 30 } else { 220 }]))
}

fn encode_with(format: image::ImageFormat, image: &image::DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut out), format).unwrap();
    out
}

fn lossless(max_edge: u32) -> Vec<Preset> {
    vec![Preset::png("p", max_edge)]
}

#[test]
fn png_bmp_tiff_and_lossless_webp_inputs_keep_their_exact_pixels() {
    let original = image::DynamicImage::ImageRgb8(sample_rgb());
    let expected = original.to_rgba8();
    use image::ImageFormat as F;
    for (format, name) in [(F::Png, "png"), (F::Bmp, "bmp"), (F::Tiff, "tiff"), (F::WebP, "webp")] {
        let input = encode_with(format, &original);
        let output = process(&input, &lossless(100));
        assert_eq!(decode(&output.variants[0].data), expected, "{format:?}");
        assert_eq!(output.source.format, name);
    }
}

#[test]
fn sixteen_bit_png_is_rounded_to_the_nearest_8_bit_value() {
    // Arrange: a 16-bit grey ramp over many values, including the halfway points.
    let values: Vec<u16> =
        (0..=65535u32).step_by(97).map(|v| v as u16).chain([128, 385, 32_767, 32_896, 65_407, 65_535]).collect();
    let width = values.len() as u32;
    let raw: Vec<u8> =
        values.iter().flat_map(|v| [v.to_be_bytes(), v.to_be_bytes(), v.to_be_bytes()].concat()).collect();
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(
            &raw.chunks(2).flat_map(|b| u16::from_be_bytes([b[0], b[1]]).to_ne_bytes()).collect::<Vec<_>>(),
            width,
            1,
            image::ExtendedColorType::Rgb16,
        )
        .unwrap();

    // Act
    let output = process(&png, &lossless(u32::MAX));

    // Assert
    let decoded = decode(&output.variants[0].data);
    for (x, &v) in values.iter().enumerate() {
        let nearest = (f64::from(v) / 257.0).round() as u8;
        assert_eq!(decoded.get_pixel(x as u32, 0).0[0], nearest, "16-bit value {v}");
    }
}

#[test]
fn grey_and_palette_inputs_become_rgb_pixels() {
    let grey = image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(16, 16, |x, _| image::Luma([(x * 16) as u8])));
    let output = process(&encode_with(image::ImageFormat::Png, &grey), &lossless(64));
    assert_eq!(decode(&output.variants[0].data), grey.to_rgba8());

    let hopper = testdata("hopper.gif");
    let output = process(&hopper, &lossless(128));
    let reference = image::load_from_memory(&hopper).unwrap().into_rgba8();
    assert_eq!(decode(&output.variants[0].data), reference);
}

#[test]
fn an_animated_gif_gives_its_first_frame() {
    use image::AnimationDecoder;
    let input = testdata("anim.gif");
    let first = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(&input))
        .unwrap()
        .into_frames()
        .next()
        .unwrap()
        .unwrap();

    let output = process(&input, &lossless(245));

    assert_eq!((output.source.width, output.source.height), (245, 245));
    let diff = mean_abs_diff(&decode(&output.variants[0].data), first.buffer());
    assert!(diff < 0.5, "differs from the first frame by {diff}");
}

#[test]
fn alpha_is_kept_where_used_and_dropped_where_opaque() {
    let dice = process(&testdata("dice_rgba.png"), &[Preset::webp("w", 200), Preset::png("p", 200)]);
    assert!(dice.source.has_alpha);
    for variant in &dice.variants {
        assert!(decode(&variant.data).pixels().any(|p| p.0[3] < 255), "{:?} lost its alpha", variant.format);
    }

    let opaque = image::DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(8, 8, image::Rgba([10, 20, 30, 255])));
    let output = process(&encode_with(image::ImageFormat::Png, &opaque), &lossless(8));
    assert!(!output.source.has_alpha);
}

#[test]
fn jpeg_output_composites_transparency_over_white() {
    let clear = image::DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(16, 16, image::Rgba([0, 0, 0, 0])));
    let output = process(&encode_with(image::ImageFormat::Png, &clear), &[Preset::jpeg("j", 16)]);
    let px = decode(&output.variants[0].data).get_pixel(8, 8).0;
    assert!(px[..3].iter().all(|&c| c > 250), "{px:?}");
}

#[test]
fn every_output_format_decodes_at_the_preset_size_and_never_upscales() {
    let presets = vec![
        Preset::webp("large", 2048),
        Preset::jpeg("medium", 1024).with_effort(imaging::Effort::Max),
        Preset::png("small", 256).with_effort(imaging::Effort::Fast),
        Preset::jpeg("square", 128).with_fit(Fit::Cover),
    ];
    let output = process(&testdata("orient3.jpg"), &presets);

    let sizes: Vec<(u32, u32)> = output.variants.iter().map(|v| decode(&v.data).dimensions()).collect();
    assert_eq!(sizes, [(1800, 1200), (1024, 683), (256, 171), (128, 128)]);
    for (variant, size) in output.variants.iter().zip(&sizes) {
        assert_eq!((variant.width, variant.height), *size);
    }
}

#[test]
fn a_large_photo_gives_the_three_default_sizes() {
    let output = process(&testdata("kleiber.jpg"), &imaging::default_presets());

    assert_eq!((output.source.width, output.source.height), (6028, 3391));
    let sizes: Vec<(u32, u32)> = output.variants.iter().map(|v| decode(&v.data).dimensions()).collect();
    assert_eq!(sizes, [(2048, 1152), (1024, 576), (256, 144)]);
    assert!(output.variants.iter().all(|v| v.format == OutputFormat::Webp));
}

#[test]
fn the_dct_scaled_decode_looks_like_a_full_decode() {
    // Same photo, same 256 px output: once through the DCT-scaled path and
    // once decoded at full size (a cover preset forces the full decode).
    let input = testdata("orient3.jpg");
    let scaled = process(&input, &[Preset::png("p", 256)]);
    let full = process(&input, &[Preset::png("p", 256), Preset::png("c", 1).with_fit(Fit::Cover)]);

    let diff = mean_abs_diff(&decode(&scaled.variants[0].data), &decode(&full.variants[0].data));
    assert!(diff < 2.0, "mean difference {diff}");
}

#[test]
fn output_is_deterministic() {
    let input = testdata("dice_rgba.png");
    let a = process(&input, &imaging::default_presets());
    let b = process(&input, &imaging::default_presets());
    for (x, y) in a.variants.iter().zip(&b.variants) {
        assert_eq!(x.data, y.data);
    }
}

#[test]
fn presets_that_come_out_the_same_share_one_encode_but_keep_their_own_variant() {
    // 40x30 is below every default edge, so all three presets give 40x30 WebP.
    let input = encode_with(image::ImageFormat::Png, &image::DynamicImage::ImageRgb8(sample_rgb()));
    let mut presets = imaging::default_presets();
    presets.push(Preset::jpeg("jpeg", 256));

    let out = process(&input, &presets);

    let names: Vec<&str> = out.variants.iter().map(|v| v.preset.as_str()).collect();
    assert_eq!(names, ["large", "medium", "thumb", "jpeg"]);
    assert!(out.variants.iter().all(|v| (v.width, v.height) == (40, 30)));
    assert_eq!(out.variants[0].data, out.variants[1].data);
    assert_eq!(out.variants[0].data, out.variants[2].data);
    assert_ne!(out.variants[0].preset_version, out.variants[2].preset_version);
    // The same pixels in another format are encoded for that format.
    assert_eq!(&out.variants[3].data[..3], b"\xff\xd8\xff");
    assert_eq!(decode(&out.variants[3].data).dimensions(), (40, 30));
}

#[test]
fn avif_variants_are_avif_images_of_the_preset_size_with_alpha_where_the_source_has_it() {
    // AVIF is encodable in every build, though no default preset asks for it.
    assert!(imaging::default_presets().iter().all(|p| p.format != OutputFormat::Avif));
    let avif = |name, edge| Preset { format: OutputFormat::Avif, ..Preset::webp(name, edge) };
    let cases = [("dice_rgba.png", (200, 150), (64, 48), true), ("orient3.jpg", (1800, 1200), (64, 43), false)];
    for (file, large, thumb, alpha) in cases {
        let out = process(&testdata(file), &[avif("large", 2048), avif("thumb", 64)]);

        for (variant, size) in out.variants.iter().zip([large, thumb]) {
            assert_eq!((variant.width, variant.height), size, "{file} {}", variant.preset);
            let parsed = common::avif(&variant.data);
            assert_eq!(parsed.major_brand, "avif", "{file}: {parsed:?}");
            let coded = if alpha { vec!["av01", "av01"] } else { vec!["av01"] };
            assert_eq!(parsed.item_types, coded, "{file}: colour, and alpha only where the source has it");
            assert!(parsed.sizes.iter().all(|s| *s == size) && !parsed.sizes.is_empty(), "{file}: {parsed:?}");
            let alpha_urn = "urn:mpeg:mpegB:cicp:systems:auxiliary:alpha";
            assert_eq!(parsed.auxiliary.iter().any(|urn| urn == alpha_urn), alpha, "{file}: {parsed:?}");
        }
        // Smaller is fewer bytes: the encoder saw the resized pixels.
        assert!(out.variants[1].data.len() < out.variants[0].data.len(), "{file}");
    }
}
