//! The engine's side of `scripts/bench-compare`.
//!
//! ```text
//! bench run     --format webp|jpeg|png|avif [--effort fast|balanced|max] [--quality Q] [--out DIR] FILE...
//! bench presets [--concurrency N] FILE...
//! bench dssim   --ext webp|jpg DIR... -- FILE...
//! bench placeholder [--rounds N] FILE...
//! ```
//!
//! `placeholder` runs the default presets on each FILE N times (default 5)
//! and prints, per file and over all, the median share of the engine's time
//! that the placeholder (ThumbHash and dominant colour) took.
//!
//! `presets` is the engine alone as the worker runs it (the pipeline
//! benchmark's baseline): every FILE (repeats allowed) with the default
//! presets, on N threads that take the next file as they finish one.
//!
//! `run` reads every file into memory, then times one pass of the standard
//! job over all of them (longest edge 2048, 1024 and 256, quality 80 unless
//! `--quality`) and
//! prints one `RESULT` line: images, seconds, output bytes. With `--out` it
//! writes each 1024 px variant as `DIR/<stem>.1024.<ext>` (after timing).
//!
//! `dssim` scores the `<stem>.1024.<ext>` files in each DIR against a
//! reference: the original decoded at full size by the `image` crate,
//! oriented, and resized in one Lanczos3 step to the variant's exact size.
//! It prints the mean DSSIM per DIR (lower is closer; 0 is identical).

use std::path::{Path, PathBuf};
use std::time::Instant;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ImageDecoder, ImageReader};
use imaging::{Effort, Limits, OutputFormat, Preset};

fn main() -> Result<(), String> {
    // As the worker does: keep freed job buffers for the next image.
    imaging::allocator::retain_large_buffers();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("presets") => presets(&args[1..]),
        Some("dssim") => dssim(&args[1..]),
        Some("placeholder") => placeholder(&args[1..]),
        _ => Err("usage: bench run|dssim …".into()),
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn placeholder(args: &[String]) -> Result<(), String> {
    let (rounds, files) = match args {
        [flag, n, files @ ..] if flag == "--rounds" => (n.parse::<usize>().map_err(|e| e.to_string())?, files),
        files => (5, files),
    };
    let presets = imaging::default_presets();
    let limits = Limits::default();
    let mut all = Vec::new();
    println!("{:<28} {:>12} {:>14} {:>8}", "file", "engine ms", "placeholder ms", "share");
    for file in files {
        let input = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
        let (mut engine, mut own, mut shares) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let t = imaging::process(&input, &presets, &limits).map_err(|e| format!("{file}: {e}"))?.timings;
            let total = (t.decode + t.resize + t.encode + t.placeholder).as_secs_f64();
            engine.push(total * 1e3);
            own.push(t.placeholder.as_secs_f64() * 1e3);
            shares.push(t.placeholder.as_secs_f64() / total);
        }
        let share = median(&mut shares);
        all.push(share);
        let name = stem(Path::new(file));
        println!("{name:<28} {:>12.1} {:>14.2} {:>7.2}%", median(&mut engine), median(&mut own), share * 100.0);
    }
    println!("RESULT median share over {} files: {:.2}%", all.len(), median(&mut all) * 100.0);
    Ok(())
}

fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

fn presets(args: &[String]) -> Result<(), String> {
    let mut concurrency = 1usize;
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--concurrency" => {
                concurrency = it.next().and_then(|n| n.parse().ok()).filter(|n| *n > 0).ok_or("--concurrency N")?;
            }
            file => files.push(PathBuf::from(file)),
        }
    }
    let inputs: Vec<Vec<u8>> = files
        .iter()
        .map(|path| std::fs::read(path).map_err(|e| format!("{}: {e}", path.display())))
        .collect::<Result<_, _>>()?;
    let presets = imaging::default_presets();
    let limits = Limits::default();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let bytes = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                scope.spawn(|| -> Result<(), String> {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(input) = inputs.get(i) else { return Ok(()) };
                        let output = imaging::process(input, &presets, &limits)
                            .map_err(|e| format!("{}: {e}", files[i].display()))?;
                        let size = output.variants.iter().map(|v| v.data.len()).sum::<usize>();
                        bytes.fetch_add(size, std::sync::atomic::Ordering::Relaxed);
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().map_err(|_| "a worker thread panicked".to_owned())?)
    })?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "RESULT engine=ours presets=default concurrency={concurrency} images={} seconds={seconds:.4} bytes={}",
        inputs.len(),
        bytes.into_inner()
    );
    Ok(())
}

fn run(args: &[String]) -> Result<(), String> {
    let mut format = OutputFormat::Webp;
    let mut effort = Effort::Balanced;
    let mut quality = 80;
    let mut out_dir: Option<PathBuf> = None;
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--format" => {
                format = match it.next().map(String::as_str) {
                    Some("webp") => OutputFormat::Webp,
                    Some("jpeg") => OutputFormat::Jpeg,
                    Some("png") => OutputFormat::Png,
                    Some("avif") => OutputFormat::Avif,
                    other => return Err(format!("unknown format {other:?}")),
                }
            }
            "--effort" => {
                effort = match it.next().map(String::as_str) {
                    Some("fast") => Effort::Fast,
                    Some("balanced") => Effort::Balanced,
                    Some("max") => Effort::Max,
                    other => return Err(format!("unknown effort {other:?}")),
                }
            }
            "--quality" => {
                quality = it
                    .next()
                    .and_then(|q| q.parse().ok())
                    .filter(|q| (1..=100).contains(q))
                    .ok_or("--quality 1..100")?;
            }
            "--out" => out_dir = it.next().map(PathBuf::from),
            file => files.push(PathBuf::from(file)),
        }
    }
    let inputs: Vec<(PathBuf, Vec<u8>)> = files
        .into_iter()
        .map(|path| {
            std::fs::read(&path).map(|bytes| (path.clone(), bytes)).map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect::<Result<_, _>>()?;
    let presets: Vec<Preset> = [("large", 2048), ("medium", 1024), ("thumb", 256)]
        .into_iter()
        .map(|(name, edge)| Preset { format, quality, ..Preset::webp(name, edge) }.with_effort(effort))
        .collect();
    let limits = Limits::default();

    let started = Instant::now();
    let mut bytes = 0usize;
    let mut medium = Vec::new();
    for (path, input) in &inputs {
        let output = imaging::process(input, &presets, &limits).map_err(|e| format!("{}: {e}", path.display()))?;
        bytes += output.variants.iter().map(|v| v.data.len()).sum::<usize>();
        if out_dir.is_some() {
            medium.push((stem(path), output.variants.into_iter().nth(1)));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "RESULT engine=ours format={} effort={effort:?} images={} seconds={seconds:.4} bytes={bytes}",
        format.as_str(),
        inputs.len()
    );
    if let Some(dir) = out_dir {
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        for (name, variant) in medium {
            if let Some(variant) = variant {
                let path = dir.join(format!("{name}.1024.{}", format.extension()));
                std::fs::write(&path, &variant.data).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
    }
    Ok(())
}

fn dssim(args: &[String]) -> Result<(), String> {
    let split = args.iter().position(|a| a == "--").ok_or("missing -- before the originals")?;
    let (head, files) = (&args[..split], &args[split + 1..]);
    let ext = head.get(1).filter(|_| head.first().is_some_and(|a| a == "--ext")).ok_or("missing --ext")?;
    let dirs = &head[2..];
    let attr = dssim_core::Dssim::new();
    let mut totals = vec![(0.0f64, 0usize); dirs.len()];
    for file in files {
        let path = Path::new(file);
        let original = decode_reference(path)?;
        for (d, dir) in dirs.iter().enumerate() {
            let variant_path = Path::new(dir).join(format!("{}.1024.{ext}", stem(path)));
            let variant =
                image::open(&variant_path).map_err(|e| format!("{}: {e}", variant_path.display()))?.into_rgb8();
            let (w, h) = variant.dimensions();
            let reference = lanczos(&original, w, h)?;
            let to_rgb =
                |data: &[u8]| data.chunks_exact(3).map(|p| rgb::RGB8::new(p[0], p[1], p[2])).collect::<Vec<_>>();
            let a = attr.create_image_rgb(&to_rgb(&reference), w as usize, h as usize).ok_or("dssim: reference")?;
            let b = attr.create_image_rgb(&to_rgb(variant.as_raw()), w as usize, h as usize).ok_or("dssim: variant")?;
            let (value, _) = attr.compare(&a, b);
            totals[d].0 += f64::from(value);
            totals[d].1 += 1;
        }
    }
    for (dir, (sum, n)) in dirs.iter().zip(totals) {
        println!("DSSIM dir={dir} mean={:.6} images={n}", sum / n.max(1) as f64);
    }
    Ok(())
}

/// The original at full size, upright, as RGB.
fn decode_reference(path: &Path) -> Result<image::RgbImage, String> {
    let mut decoder = ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| e.to_string())?
        .into_decoder()
        .map_err(|e| e.to_string())?;
    let orientation = decoder.orientation().map_err(|e| e.to_string())?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    image.apply_orientation(orientation);
    Ok(image.into_rgb8())
}

fn lanczos(source: &image::RgbImage, width: u32, height: u32) -> Result<Vec<u8>, String> {
    let src =
        ImageRef::new(source.width(), source.height(), source.as_raw(), PixelType::U8x3).map_err(|e| e.to_string())?;
    let mut dst = Image::new(width, height, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new().resize(&src, &mut dst, &options).map_err(|e| e.to_string())?;
    Ok(dst.into_vec())
}
