//! Every file in `testdata/bad/` has a stated outcome, and the engine's
//! limits hold before anything is decoded.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{outcome, testdata};
use imaging::{Limits, Preset};

/// iphone11.heic's upright size, as testdata/README.md gives it.
const HEIC_SIZE: (u32, u32) = (2566, 3313);

/// The policy for each file in testdata/bad (see testdata/README.md).
fn expected(file: &str) -> Result<(u32, u32), &'static str> {
    match file {
        // libjpeg recovers with grey blocks; we refuse instead.
        "corrupt_data.jpg" => Err("corrupt-image"),
        // The frame claims 65535x1321 on a 32x32 screen: refused from the header.
        "bomb.gif" => Err("image-too-large"),
        "empty.jpg" => Err("empty-input"),
        // The marker walk stops before EOI.
        "fuzz.jpg" => Err("truncated-image"),
        "truncated_prog.jpg" => Err("truncated-image"),
        "truncated.png" => Err("truncated-image"),
        "notimage.jpg" => Err("unsupported-format"),
        // Junk bytes between header segments: libjpeg warns before the
        // first scan, which the policy tolerates; the pixels are intact.
        "junk_header.jpg" => Ok((1024, 768)),
        // Used to panic image-webp; a regression guard.
        "panic.webp" => Ok((100, 30)),
        // A valid HEIC: decoded with the `heic` feature (libheif), else
        // recognised and refused.
        "iphone11.heic" if cfg!(feature = "heic") => Ok(HEIC_SIZE),
        "iphone11.heic" => Err("unsupported-format"),
        other => panic!("testdata/bad/{other} has no stated outcome: add it here"),
    }
}

#[test]
fn every_bad_file_has_its_stated_outcome() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/bad");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 10, "testdata/bad is incomplete: {names:?}");

    for name in names {
        let input = testdata(&format!("bad/{name}"));
        assert_eq!(outcome(&input), expected(&name), "testdata/bad/{name}");
    }
}

#[test]
fn a_damaged_scan_is_corrupt_not_grey() {
    // Arrange: a valid JPEG with bytes in the middle of its scan data zeroed.
    let mut jpeg = testdata("orient3.jpg");
    let middle = jpeg.len() / 2;
    jpeg[middle..middle + 2048].fill(0x00);

    // Act / Assert
    assert_eq!(outcome(&jpeg), Err("corrupt-image"));
}

#[test]
fn every_cut_of_a_jpeg_is_an_error_never_a_partial_image() {
    let jpeg = testdata("cmyk.jpg");
    for cut in (0..jpeg.len() - 1).step_by(997) {
        let result = outcome(&jpeg[..cut]);
        assert!(result.is_err(), "cut at {cut} decoded");
        assert_ne!(result, Err("engine-panic"), "cut at {cut}");
    }
}

#[test]
fn flipped_bytes_never_panic_out_of_the_engine() {
    // A cheap stand-in for the fuzz target: deterministic corruption of
    // small inputs of every decoder.
    for file in ["cmyk.jpg", "dice_rgba.png", "hopper.gif", "bad/panic.webp"] {
        let original = testdata(file);
        for step in 1..40usize {
            let mut input = original.clone();
            let at = (step * 7919) % input.len();
            input[at] ^= 0x5A;
            let _ = imaging::process(&input, &[Preset::webp("t", 64)], &Limits::default());
        }
    }
}

#[test]
fn size_limits_are_checked_from_the_header() {
    let astronaut = testdata("astronaut.png");
    let kleiber = testdata("kleiber.jpg");
    let small = Limits { max_pixels: 100_000, ..Limits::default() };
    let narrow = Limits { max_width: 1000, ..Limits::default() };
    let few_bytes = Limits { max_input_bytes: 1000, ..Limits::default() };

    let code = |input: &[u8], limits: &Limits| {
        imaging::process(input, &imaging::default_presets(), limits).map(|_| ()).map_err(|e| e.code())
    };
    assert_eq!(code(&astronaut, &small), Err("image-too-large"));
    assert_eq!(code(&kleiber, &narrow), Err("image-too-large"));
    assert_eq!(code(&astronaut, &few_bytes), Err("image-too-large"));
}

#[test]
fn the_memory_budget_refuses_an_image_before_decoding_it() {
    let budget = Limits { max_alloc_bytes: 1_000_000, ..Limits::default() };
    for file in ["astronaut.png", "orient3.jpg"] {
        let result = imaging::process(&testdata(file), &[Preset::webp("full", 4096)], &budget);
        assert_eq!(result.map(|_| ()).map_err(|e| e.code()), Err("image-too-large"), "{file}");
    }
}

#[test]
fn a_spent_deadline_is_deadline_exceeded() {
    let no_time = Limits { deadline: Duration::ZERO, ..Limits::default() };
    let result = imaging::process(&testdata("orient3.jpg"), &imaging::default_presets(), &no_time);
    assert_eq!(result.map(|_| ()).map_err(|e| e.code()), Err("deadline-exceeded"));
}

#[test]
fn an_animated_gif_with_too_many_frames_is_refused() {
    // anim.gif has 42 frames.
    let few_frames = Limits { max_frames: 10, ..Limits::default() };
    let result = imaging::process(&testdata("anim.gif"), &imaging::default_presets(), &few_frames);
    assert_eq!(result.map(|_| ()).map_err(|e| e.code()), Err("image-too-large"));
}

#[test]
fn a_jpeg_with_more_scans_than_the_cap_is_too_complex_and_one_within_it_decodes() {
    // 66 valid scans: within the default cap of 100, over a cap of 50.
    let many = testdata("progressive_66_scans.jpg");
    let capped = Limits { max_scans: 50, ..Limits::default() };

    let within = imaging::process(&many, &imaging::default_presets(), &Limits::default());
    let over = imaging::process(&many, &imaging::default_presets(), &capped);

    let within = within.expect("66 scans are a real, if odd, progressive JPEG");
    assert_eq!((within.source.width, within.source.height), (754, 424));
    let over = over.map(|_| ()).expect_err("51 scans are over the cap");
    assert_eq!(over.code(), "image-too-complex");
    assert!(over.to_string().contains("more than 50 scans"), "{over}");
}
