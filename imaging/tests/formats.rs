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

/// A GIF of 40x30 frames in `colours`, each shown for its delay (ms).
fn animated_gif(frames: &[([u8; 3], u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut out);
        encoder.set_repeat(image::codecs::gif::Repeat::Infinite).unwrap();
        for &([r, g, b], delay) in frames {
            let buffer = image::RgbaImage::from_pixel(40, 30, image::Rgba([r, g, b, 255]));
            let delay = image::Delay::from_numer_denom_ms(delay, 1);
            encoder.encode_frame(image::Frame::from_parts(buffer, 0, 0, delay)).unwrap();
        }
    }
    out
}

/// An `ANMF` chunk's frame: the size of the rectangle it covers, and its
/// duration in milliseconds.
type AnimationFrame = ((u32, u32), u32);

/// The frames of an animated WebP as its container declares them: the
/// `ANIM` chunk's loop count, and each `ANMF` chunk's frame.
fn webp_animation(data: &[u8]) -> Option<(u16, Vec<AnimationFrame>)> {
    let le24 = |b: &[u8]| u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
    let (mut pos, mut looping, mut frames) = (12, None, Vec::new());
    while pos + 8 <= data.len() {
        let size = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = &data[pos + 8..pos + 8 + size];
        match &data[pos..pos + 4] {
            b"ANIM" => looping = Some(u16::from_le_bytes([body[4], body[5]])),
            b"ANMF" => frames.push(((le24(&body[6..]) + 1, le24(&body[9..]) + 1), le24(&body[12..]))),
            _ => {}
        }
        pos += 8 + size + (size & 1);
    }
    looping.map(|l| (l, frames))
}

/// Every frame of an animated WebP, decoded, with its delay (ms).
fn webp_frames(data: &[u8]) -> Vec<(image::RgbaImage, u32)> {
    use image::AnimationDecoder;
    let decoder = image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(data)).unwrap();
    decoder
        .into_frames()
        .map(|frame| {
            let frame = frame.unwrap();
            let (numerator, denominator) = frame.delay().numer_denom_ms();
            (frame.into_buffer(), numerator / denominator)
        })
        .collect()
}

#[test]
fn an_animated_preset_makes_an_animated_webp_of_every_frame_with_its_timing() {
    // Arrange
    let colours = [([220, 20, 20], 100), ([20, 200, 20], 250), ([20, 20, 230], 400)];
    let input = animated_gif(&colours);
    let presets = [Preset::webp("still", 20), Preset::webp("moving", 20).animated()];

    // Act
    let output = process(&input, &presets);

    // Assert: the animated preset has every frame, resized, with its delay.
    let moving = &output.variants[1];
    assert_eq!((moving.preset.as_str(), moving.width, moving.height), ("moving", 20, 15));
    let (looping, declared) = webp_animation(&moving.data).expect("an ANIM chunk");
    assert_eq!(looping, 0, "loops for ever, as the GIF does");
    assert_eq!(declared, [((20, 15), 100), ((20, 15), 250), ((20, 15), 400)]);
    let decoded = webp_frames(&moving.data);
    assert_eq!(decoded.len(), 3);
    for ((frame, delay), ([r, g, b], want)) in decoded.iter().zip(colours) {
        assert_eq!((frame.dimensions(), *delay), ((20, 15), want));
        let expected = image::RgbaImage::from_pixel(20, 15, image::Rgba([r, g, b, 255]));
        let diff = mean_abs_diff(frame, &expected);
        assert!(diff < 6.0, "frame of {want} ms is {diff} off its colour");
    }
    // The still preset is the first frame, as before.
    let still = &output.variants[0];
    assert!(webp_animation(&still.data).is_none(), "a still preset stays still");
    let first = image::RgbaImage::from_pixel(20, 15, image::Rgba([220, 20, 20, 255]));
    assert!(mean_abs_diff(&decode(&still.data), &first) < 6.0);
    assert_ne!(still.preset_version, moving.preset_version);
}

#[test]
fn a_real_animated_gif_keeps_its_frame_count_and_total_duration() {
    use image::AnimationDecoder;
    let input = testdata("anim.gif");
    let gif: Vec<u32> = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(&input))
        .unwrap()
        .into_frames()
        .map(|f| {
            let (n, d) = f.unwrap().delay().numer_denom_ms();
            n / d
        })
        .collect();

    let output = process(&input, &[Preset::webp("moving", 128).animated()]);

    // (An `ANMF` frame may cover only what changed; decoded, each frame is
    // the whole canvas.)
    let (_, declared) = webp_animation(&output.variants[0].data).expect("animated");
    assert_eq!(declared.len(), gif.len(), "every frame");
    let durations: Vec<u32> = declared.iter().map(|(_, ms)| *ms).collect();
    assert_eq!(durations, gif, "each frame's delay");
    let decoded = webp_frames(&output.variants[0].data);
    assert_eq!(decoded.len(), gif.len());
    assert!(decoded.iter().all(|(frame, _)| frame.dimensions() == (128, 128)));
}

#[test]
fn an_animation_over_the_pixel_limit_is_refused_before_decoding_but_its_first_frame_is_not() {
    // 3 frames of 40x30 are 3,600 pixels.
    let input = animated_gif(&[([1, 2, 3], 100); 3]);
    let limits = imaging::Limits { max_animation_pixels: 3_599, ..imaging::Limits::default() };
    let moving = imaging::process(&input, &[Preset::webp("moving", 20).animated()], &limits);
    assert_eq!(moving.map(|_| ()).map_err(|e| e.code()), Err("image-too-large"));
    let still = imaging::process(&input, &[Preset::webp("still", 20)], &limits);
    assert!(still.is_ok(), "without an animated preset only the first frame is decoded");
    // And a memory budget too small for the resized frames refuses it too.
    let limits = imaging::Limits { max_alloc_bytes: 40 * 30 * 4 + 3 * 20 * 15 * 4 - 1, ..imaging::Limits::default() };
    let moving = imaging::process(&input, &[Preset::webp("moving", 20).animated()], &limits);
    assert_eq!(moving.map(|_| ()).map_err(|e| e.code()), Err("image-too-large"));
}

#[test]
fn an_animated_preset_of_a_still_image_is_a_still_webp() {
    let output = process(&testdata("dice_rgba.png"), &[Preset::webp("moving", 64).animated()]);
    assert!(webp_animation(&output.variants[0].data).is_none());
    assert_eq!(decode(&output.variants[0].data).dimensions(), (64, 48));
}
