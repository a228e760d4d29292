//! Runs every file given on the command line through the default presets and
//! prints the outcome: a quick look at what the engine does with a folder.
//!
//! `cargo run --release -p imaging --example probe_corpus -- /path/*.jpg`

use std::time::Instant;

fn main() {
    let presets = imaging::default_presets();
    for path in std::env::args().skip(1) {
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                println!("{path}: cannot read: {e}");
                continue;
            }
        };
        let started = Instant::now();
        let result = imaging::process(&bytes, &presets, &imaging::Limits::default());
        let ms = started.elapsed().as_millis();
        match result {
            Ok(out) => {
                let sizes: Vec<String> =
                    out.variants.iter().map(|v| format!("{}x{}:{}B", v.width, v.height, v.data.len())).collect();
                println!(
                    "{path}: ok {} {}x{} alpha={} [{}] {ms} ms",
                    out.source.format,
                    out.source.width,
                    out.source.height,
                    out.source.has_alpha,
                    sizes.join(" ")
                );
            }
            Err(e) => println!("{path}: {} ({e}) {ms} ms", e.code()),
        }
    }
}
