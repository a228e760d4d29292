//! EXIF orientations 1–8 come out upright, judged by pixels.
#![allow(clippy::unwrap_used)]

mod common;

use common::{decode, mean_abs_diff, process, reference_orient, set_orientation, testdata};
use imaging::Preset;

fn png_256() -> Vec<Preset> {
    vec![Preset::png("small", 256)]
}

#[test]
fn every_orientation_value_of_a_real_photo_matches_the_upright_reference() {
    // Arrange: orient3.jpg with its tag rewritten to 1 is the stored scene as-is.
    let mut stored = testdata("orient3.jpg");
    set_orientation(&mut stored, 1);
    let as_stored = decode(&process(&stored, &png_256()).variants[0].data);

    for value in 1..=8u8 {
        let mut input = stored.clone();
        set_orientation(&mut input, u16::from(value));

        // Act
        let output = process(&input, &png_256());

        // Assert: the same as turning the stored scene by the EXIF definition.
        let expected = reference_orient(&as_stored, value);
        let actual = decode(&output.variants[0].data);
        assert_eq!(actual.dimensions(), expected.dimensions(), "orientation {value}");
        let diff = mean_abs_diff(&actual, &expected);
        assert!(diff < 1.0, "orientation {value}: mean difference {diff}");
        let (w, h) = (output.source.width, output.source.height);
        assert_eq!((w > h), value < 5, "orientation {value}: source reported as {w}x{h}");
    }
}

#[test]
fn corpus_orientation_samples_come_out_upright() {
    // (file, stored size, expected upright size)
    let cases = [
        ("orient3.jpg", (1800, 1200), (1800, 1200)),
        ("orient5.jpg", (1800, 1200), (1200, 1800)),
        ("orient8.jpg", (1200, 1800), (1800, 1200)),
        ("canon_orient6.jpg", (2048, 1536), (1536, 2048)),
    ];
    for (file, stored_size, upright) in cases {
        let original = testdata(file);
        let mut untagged = original.clone();
        set_orientation(&mut untagged, 1);

        let output = process(&original, &png_256());
        let stored = process(&untagged, &png_256());

        assert_eq!((stored.source.width, stored.source.height), stored_size, "{file}");
        assert_eq!((output.source.width, output.source.height), upright, "{file}");
        let tag = match file {
            "orient3.jpg" => 3,
            "orient5.jpg" => 5,
            "orient8.jpg" => 8,
            _ => 6,
        };
        let expected = reference_orient(&decode(&stored.variants[0].data), tag);
        let diff = mean_abs_diff(&decode(&output.variants[0].data), &expected);
        assert!(diff < 1.0, "{file}: mean difference {diff}");
    }
}

#[test]
fn orientation_3_swaps_opposite_quadrants_of_the_stored_scene() {
    // The recurser sample's digit and edge labels make the quadrants differ;
    // a 180° turn must put the stored bottom-right where the top-left is.
    let original = testdata("orient3.jpg");
    let mut untagged = original.clone();
    set_orientation(&mut untagged, 1);
    let upright = decode(&process(&original, &png_256()).variants[0].data);
    let stored = decode(&process(&untagged, &png_256()).variants[0].data);

    let quadrant_mean = |img: &image::RgbaImage, qx: u32, qy: u32| {
        let (w, h) = (img.width() / 2, img.height() / 2);
        let mut sum = 0u64;
        for y in qy * h..(qy + 1) * h {
            for x in qx * w..(qx + 1) * w {
                sum += u64::from(img.get_pixel(x, y).0[0]);
            }
        }
        sum as f64 / f64::from(w * h)
    };
    assert!((quadrant_mean(&upright, 0, 0) - quadrant_mean(&stored, 1, 1)).abs() < 1.0);
    assert!((quadrant_mean(&upright, 1, 1) - quadrant_mean(&stored, 0, 0)).abs() < 1.0);
}

#[test]
fn exif_orientation_in_a_built_exif_block_is_applied() {
    // A landscape JPEG made by the engine, with an EXIF block that says 6.
    let landscape =
        image::RgbImage::from_fn(64, 32, |x, _| if x < 32 { image::Rgb([255, 0, 0]) } else { image::Rgb([0, 0, 255]) });
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(landscape)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let jpeg = process(&png, &[Preset::jpeg("j", 64)]).variants.remove(0).data;
    let tagged = common::with_segments(&jpeg, &[common::exif_app1(6)]);

    let out = process(&tagged, &png_256());

    // Rotated 90° clockwise: portrait, red (the left) now on top.
    assert_eq!((out.source.width, out.source.height), (32, 64));
    let img = decode(&out.variants[0].data);
    assert!(img.get_pixel(16, 8).0[0] > 200 && img.get_pixel(16, 8).0[2] < 60, "top is red");
    assert!(img.get_pixel(16, 56).0[2] > 200 && img.get_pixel(16, 56).0[0] < 60, "bottom is blue");
}
