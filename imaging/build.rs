//! Refuses to build the engine against a mozjpeg without SIMD.
//!
//! mozjpeg-sys falls back to plain C, with only a cargo warning, when `nasm`
//! is missing: JPEG decode and encode then run several times slower and the
//! benchmark targets are silently lost. Its build script writes `jconfig.h`
//! into the include directory it reports to us (`links = "jpeg"` gives
//! `DEP_JPEG_INCLUDE`), and that header says `#define WITH_SIMD 1` exactly when
//! the SIMD code was compiled in. On architectures mozjpeg has SIMD for, its
//! absence fails this build with a message that says how to fix it.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_JPEG_INCLUDE");
    println!("cargo:rerun-if-env-changed=IMAGING_ALLOW_NO_SIMD");
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if !matches!(arch.as_str(), "x86_64" | "x86" | "aarch64") {
        return;
    }
    let include = env::var_os("DEP_JPEG_INCLUDE").expect("mozjpeg-sys did not report its include directory");
    let simd = env::split_paths(&include)
        .map(|dir: PathBuf| dir.join("jconfig.h"))
        .filter_map(|header| std::fs::read_to_string(header).ok())
        .any(|text| text.lines().any(|line| line.trim() == "#define WITH_SIMD 1"));
    if simd {
        println!("cargo:rustc-cfg=mozjpeg_simd");
    } else if env::var_os("IMAGING_ALLOW_NO_SIMD").is_none() {
        panic!(
            "mozjpeg-sys was built without SIMD (is `nasm` installed? `apt-get install nasm`, then \
             `cargo clean -p mozjpeg-sys`). JPEG would be several times slower. Set \
             IMAGING_ALLOW_NO_SIMD=1 to build anyway."
        );
    }
    println!("cargo:rustc-check-cfg=cfg(mozjpeg_simd)");
}
