//! The whole engine on arbitrary bytes: probe, limits, decode, orient,
//! colour, resize and encode. Any outcome is fine except a crash, a hang or
//! `engine-panic` (a panic that `process` had to catch is a bug too).
#![no_main]

use imaging::{Effort, Limits, OutputFormat, Preset};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Small limits keep each run fast, and prove they hold.
    let limits = Limits {
        max_width: 4096,
        max_height: 4096,
        max_pixels: 4_000_000,
        max_alloc_bytes: 128 * 1024 * 1024,
        max_animation_pixels: 4_000_000,
        ..Limits::default()
    };
    let presets = [
        Preset::webp("w", 64).with_effort(Effort::Fast),
        Preset { format: OutputFormat::Jpeg, ..Preset::webp("j", 32) },
        Preset { format: OutputFormat::Png, ..Preset::webp("p", 16) }.with_effort(Effort::Fast),
        // Every frame of an animated GIF or WebP, through libwebp's
        // animation encoder.
        Preset::webp("a", 16).with_effort(Effort::Fast).animated(),
    ];
    if let Err(err) = imaging::process(data, &presets, &limits) {
        assert_ne!(err.code(), "engine-panic", "{err}");
    }
});
