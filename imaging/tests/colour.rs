//! Colour: inputs in Adobe RGB, Display P3 and CMYK come out as sRGB.
//!
//! Expected values are computed here from the published RGB→XYZ matrices and
//! transfer curves, independently of the colour-management crate the engine
//! uses; ICC's D50 adaptation leaves a small difference, hence the tolerance.
#![allow(clippy::unwrap_used)]

mod common;

use common::{decode, process, segment, testdata, with_segments};
use image::ImageEncoder;
use imaging::Preset;

type Matrix = [[f64; 3]; 3];

const ADOBE_RGB_TO_XYZ: Matrix = [
    [0.576_730_9, 0.185_554_0, 0.188_185_2],
    [0.297_376_9, 0.627_349_1, 0.075_274_1],
    [0.027_034_3, 0.070_687_2, 0.991_108_5],
];
const P3_TO_XYZ: Matrix =
    [[0.486_570_9, 0.265_667_7, 0.198_217_3], [0.228_974_6, 0.691_738_5, 0.079_286_9], [0.0, 0.045_113_4, 1.043_944_4]];
const XYZ_TO_SRGB: Matrix = [
    [3.240_454_2, -1.537_138_5, -0.498_531_4],
    [-0.969_266_0, 1.876_010_8, 0.041_556_0],
    [0.055_643_4, -0.204_025_9, 1.057_225_2],
];

fn srgb_decode(v: f64) -> f64 {
    if v <= 0.040_45 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) }
}

fn srgb_encode(v: f64) -> f64 {
    let v = v.clamp(0.0, 1.0);
    if v <= 0.003_130_8 { v * 12.92 } else { 1.055 * v.powf(1.0 / 2.4) - 0.055 }
}

fn mul(m: &Matrix, v: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|r| m[r][0] * v[0] + m[r][1] * v[1] + m[r][2] * v[2])
}

/// The sRGB value of an 8-bit colour in a space given by its matrix and curve.
fn expected(rgb: [u8; 3], to_xyz: &Matrix, linearise: fn(f64) -> f64) -> [u8; 3] {
    let linear = rgb.map(|c| linearise(f64::from(c) / 255.0));
    let srgb = mul(&XYZ_TO_SRGB, mul(to_xyz, linear));
    srgb.map(|c| (srgb_encode(c) * 255.0).round() as u8)
}

/// A flat 32x32 PNG of `rgb`, tagged with `icc`.
fn tagged_png(rgb: [u8; 3], icc: Vec<u8>) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(32, 32, image::Rgb(rgb));
    let mut out = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new(&mut out);
    encoder.set_icc_profile(icc).unwrap();
    encoder.write_image(image.as_raw(), 32, 32, image::ExtendedColorType::Rgb8).unwrap();
    out
}

fn assert_close(actual: [u8; 3], expected: [u8; 3], tolerance: u8, label: &str) {
    for c in 0..3 {
        assert!(actual[c].abs_diff(expected[c]) <= tolerance, "{label}: got {actual:?}, expected {expected:?}");
    }
}

fn centre(bytes: &[u8]) -> [u8; 3] {
    let image = decode(bytes);
    let px = image.get_pixel(image.width() / 2, image.height() / 2).0;
    [px[0], px[1], px[2]]
}

const SAMPLES: [[u8; 3]; 4] = [[200, 60, 40], [40, 180, 70], [60, 90, 210], [128, 128, 128]];

#[test]
fn adobe_rgb_png_is_converted_to_srgb() {
    let icc = moxcms::ColorProfile::new_adobe_rgb().encode().unwrap();
    let adobe_gamma = |v: f64| v.powf(563.0 / 256.0);
    for rgb in SAMPLES {
        let output = process(&tagged_png(rgb, icc.clone()), &[Preset::png("p", 64)]);
        assert_close(
            centre(&output.variants[0].data),
            expected(rgb, &ADOBE_RGB_TO_XYZ, adobe_gamma),
            3,
            &format!("adobe {rgb:?}"),
        );
    }
    // The samples discriminate: converting them moves some channel well
    // beyond the tolerance, so passing-through would fail above.
    assert!(SAMPLES.iter().any(|&rgb| {
        let converted = expected(rgb, &ADOBE_RGB_TO_XYZ, adobe_gamma);
        (0..3).any(|c| converted[c].abs_diff(rgb[c]) > 15)
    }));
}

#[test]
fn display_p3_png_is_converted_to_srgb() {
    let icc = moxcms::ColorProfile::new_display_p3().encode().unwrap();
    for rgb in SAMPLES {
        let output = process(&tagged_png(rgb, icc.clone()), &[Preset::png("p", 64)]);
        assert_close(
            centre(&output.variants[0].data),
            expected(rgb, &P3_TO_XYZ, srgb_decode),
            3,
            &format!("p3 {rgb:?}"),
        );
    }
    assert!(SAMPLES.iter().any(|&rgb| {
        let converted = expected(rgb, &P3_TO_XYZ, srgb_decode);
        (0..3).any(|c| converted[c].abs_diff(rgb[c]) > 15)
    }));
}

#[test]
fn display_p3_jpeg_is_converted_to_srgb() {
    // A flat JPEG with a Display P3 profile in its APP2 segment.
    let rgb = [200, 60, 40];
    let flat = process(&tagged_png(rgb, moxcms::ColorProfile::new_srgb().encode().unwrap()), &[Preset::jpeg("j", 64)]);
    let mut app2 = b"ICC_PROFILE\0\x01\x01".to_vec();
    app2.extend_from_slice(&moxcms::ColorProfile::new_display_p3().encode().unwrap());
    let input = with_segments(&flat.variants[0].data, &[segment(0xE2, &app2)]);
    let untagged = centre(&flat.variants[0].data);

    let output = process(&input, &[Preset::png("p", 64)]);

    // The JPEG round trip moved the colour a little; convert what it holds.
    assert_close(centre(&output.variants[0].data), expected(untagged, &P3_TO_XYZ, srgb_decode), 3, "p3 jpeg");
}

#[test]
fn srgb_tagged_input_is_left_as_it_is() {
    let icc = moxcms::ColorProfile::new_srgb().encode().unwrap();
    for rgb in SAMPLES {
        let output = process(&tagged_png(rgb, icc.clone()), &[Preset::png("p", 64)]);
        assert_eq!(centre(&output.variants[0].data), rgb);
    }
}

#[test]
fn adobe_cmyk_jpeg_matches_an_independent_decoder() {
    // cmyk.jpg is an inverted Adobe YCCK JPEG without a profile; the image
    // crate's decoder converts such files with the same naive formula.
    let input = testdata("cmyk.jpg");
    let reference = image::load_from_memory(&input).unwrap().into_rgba8();

    let output = process(&input, &[Preset::png("p", 100)]);

    assert!(!output.source.has_alpha);
    let actual = decode(&output.variants[0].data);
    let diff = common::mean_abs_diff(&actual, &reference);
    assert!(diff < 3.0, "mean difference {diff}");
}
