//! Colour: every output is sRGB.
//!
//! Outputs carry no ICC profile (they carry no metadata at all), and browsers
//! treat untagged images as sRGB, so pixels in any other space are converted
//! here, once, with `moxcms`. A profile that cannot be parsed or used is
//! ignored (the pixels are taken as sRGB): a broken profile should not cost the
//! user their upload.

use moxcms::{ColorProfile, DataColorSpace, Layout, TransformOptions};

use crate::resize::Pixels;

/// Converts RGB(A) pixels described by `icc` to sRGB, in place.
pub(crate) fn rgb_to_srgb(pixels: &mut Pixels, icc: &[u8]) {
    let Ok(profile) = ColorProfile::new_from_slice(icc) else { return };
    if profile.color_space != DataColorSpace::Rgb || is_srgb(&profile) {
        return;
    }
    let layout = if pixels.has_alpha { Layout::Rgba } else { Layout::Rgb };
    let srgb = ColorProfile::new_srgb();
    let Ok(transform) = profile.create_transform_8bit(layout, &srgb, layout, TransformOptions::default()) else {
        return;
    };
    let mut out = vec![0u8; pixels.data.len()];
    if transform.transform(&pixels.data, &mut out).is_ok() {
        pixels.data = out;
    }
}

/// Converts CMYK samples (4 bytes a pixel, 0 = no ink) to sRGB pixels.
///
/// With a CMYK profile the conversion is colour-managed; without one, the
/// naive formula that browsers also use for untagged CMYK.
pub(crate) fn cmyk_to_srgb(width: u32, height: u32, cmyk: &[u8], icc: Option<&[u8]>) -> Pixels {
    let managed = icc
        .and_then(|icc| ColorProfile::new_from_slice(icc).ok())
        .filter(|profile| profile.color_space == DataColorSpace::Cmyk)
        .and_then(|profile| {
            let transform = profile
                .create_transform_8bit(
                    Layout::Rgba,
                    &ColorProfile::new_srgb(),
                    Layout::Rgb,
                    TransformOptions::default(),
                )
                .ok()?;
            let mut out = vec![0u8; cmyk.len() / 4 * 3];
            transform.transform(cmyk, &mut out).ok()?;
            Some(out)
        });
    let data = managed.unwrap_or_else(|| {
        cmyk.chunks_exact(4)
            .flat_map(|px| {
                let white = 255 - u16::from(px[3]);
                let channel = |ink: u8| ((u16::from(255 - ink) * white + 127) / 255) as u8;
                [channel(px[0]), channel(px[1]), channel(px[2])]
            })
            .collect()
    });
    Pixels { width, height, has_alpha: false, data }
}

/// sRGB profiles (cameras embed them everywhere) need no transform; comparing
/// the colourants is enough to skip a few milliseconds of identity work.
fn is_srgb(profile: &ColorProfile) -> bool {
    let srgb = ColorProfile::new_srgb();
    let close = |a: moxcms::Xyzd, b: moxcms::Xyzd| {
        (a.x - b.x).abs() < 2e-3 && (a.y - b.y).abs() < 2e-3 && (a.z - b.z).abs() < 2e-3
    };
    close(profile.red_colorant, srgb.red_colorant)
        && close(profile.green_colorant, srgb.green_colorant)
        && close(profile.blue_colorant, srgb.blue_colorant)
        && trc_is_srgb(profile)
}

fn trc_is_srgb(profile: &ColorProfile) -> bool {
    // Sample each tone curve against sRGB's at a few points.
    let srgb = ColorProfile::new_srgb();
    let Ok(reference) = srgb.build_r_linearize_table::<u8, 256, 8>(false) else { return false };
    let curves = [
        profile.build_r_linearize_table::<u8, 256, 8>(false),
        profile.build_g_linearize_table::<u8, 256, 8>(false),
        profile.build_b_linearize_table::<u8, 256, 8>(false),
    ];
    curves.iter().all(|curve| {
        curve
            .as_ref()
            .is_ok_and(|curve| [16usize, 64, 128, 200, 250].iter().all(|&i| (curve[i] - reference[i]).abs() < 2e-3))
    })
}
