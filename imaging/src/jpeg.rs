//! JPEG through mozjpeg: libjpeg-turbo's SIMD decoder with DCT scaling, and
//! mozjpeg's encoder.
//!
//! # Errors inside libjpeg
//! libjpeg reports a fatal error by calling `error_exit`, which must not
//! return, and recoverable damage ("Corrupt JPEG data: bad Huffman code",
//! "Premature end of JPEG file") as a *warning* through `emit_message`, after
//! which it carries on and paints grey or smeared blocks. Our error manager
//! unwinds out of both (mozjpeg-sys is built with its `unwinding` feature, so
//! the C frames are compiled to let an unwind pass), and [`catch`] turns the
//! unwind into an [`ImagingError`].
//!
//! Policy on warnings: while the headers are read (before the first scan)
//! they are tolerated: junk bytes between header segments, an odd JFIF
//! version. From the first scan on, any warning means the pixels would be
//! wrong, so the image is `corrupt-image` rather than a silently damaged
//! variant.
//!
//! # Scans and the deadline
//! A valid progressive JPEG may carry any number of scans, and libjpeg reads
//! them all inside `jpeg_start_decompress`, one call that can run for
//! minutes on a few hundred kilobytes (libjpeg-turbo's LJT-01-003). libjpeg
//! announces every scan through the error manager (a `JTRC_SOS` trace
//! message, sent whatever the trace level), so [`emit_message`] counts them
//! and checks the deadline there: past [`Limits::max_scans`] the decode
//! stops with `image-too-complex`, past the deadline with
//! `deadline-exceeded`, in both cases by unwinding out of libjpeg at once,
//! so the CPU is free again when the error returns.

use std::cell::Cell;
use std::os::raw::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::Instant;

use mozjpeg::{ColorSpace, Compress, Decompress, Marker};
use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr};

use crate::preset::Effort;
use crate::resize::Pixels;
use crate::{Clock, ImagingError, Limits, colour, orient, probe};

/// What libjpeg unwound with.
#[derive(Debug)]
enum LibjpegFailure {
    Fatal,
    CorruptData,
    TooManyScans(u32),
    Deadline,
}

/// What this thread's decode allows, and how far it got (see the module docs).
#[derive(Clone, Copy)]
struct Watch {
    /// Whether a libjpeg warning is fatal.
    strict: bool,
    /// Scans read so far.
    scans: u32,
    max_scans: u32,
    deadline: Option<Instant>,
}

thread_local! {
    static WATCH: Cell<Watch> =
        const { Cell::new(Watch { strict: false, scans: 0, max_scans: u32::MAX, deadline: None }) };
}

/// Watches one decode on this thread, and forgets it on every exit, unwinds included.
struct Watched;

impl Watched {
    fn start(max_scans: u32, deadline: Instant) -> Self {
        WATCH.set(Watch { strict: false, scans: 0, max_scans, deadline: Some(deadline) });
        Self
    }
}

/// From here on in this decode, a warning is fatal.
fn strict() {
    WATCH.set(Watch { strict: true, ..WATCH.get() });
}

impl Drop for Watched {
    fn drop(&mut self) {
        WATCH.set(Watch { strict: false, max_scans: u32::MAX, deadline: None, ..WATCH.get() });
    }
}

/// Scans the last decode on this thread read (kept after it ends, for tests).
#[cfg(test)]
fn scans_read() -> u32 {
    WATCH.get().scans
}

/// The code of the message libjpeg is emitting (`msg_code` of its error manager).
#[allow(unsafe_code)]
fn message_code(cinfo: &jpeg_common_struct) -> Option<c_int> {
    // SAFETY: libjpeg sets `err` to the manager it was given before any call
    // into it, and that manager lives as long as the (de)compressor that is
    // calling; it is only read here, on the thread libjpeg runs on.
    unsafe { cinfo.err.as_ref() }.map(|err| err.msg_code)
}

extern "C-unwind" fn error_exit(_cinfo: &mut jpeg_common_struct) {
    resume_unwind(Box::new(LibjpegFailure::Fatal));
}

extern "C-unwind" fn emit_message(cinfo: &mut jpeg_common_struct, level: c_int) {
    let mut watch = WATCH.get();
    // Level -1 is a warning; levels 0 and up are trace messages.
    if level < 0 && watch.strict {
        resume_unwind(Box::new(LibjpegFailure::CorruptData));
    }
    if message_code(cinfo) != Some(mozjpeg_sys::JTRC_SOS as c_int) {
        return;
    }
    watch.scans += 1;
    WATCH.set(watch);
    if watch.scans > watch.max_scans {
        resume_unwind(Box::new(LibjpegFailure::TooManyScans(watch.max_scans)));
    }
    if watch.deadline.is_some_and(|deadline| Instant::now() > deadline) {
        resume_unwind(Box::new(LibjpegFailure::Deadline));
    }
}

extern "C-unwind" fn quiet(_cinfo: &mut jpeg_common_struct) {}

/// An error manager that never prints and never returns from a fatal error.
/// Nothing in it reads libjpeg's message tables, so they can stay null.
fn error_manager() -> jpeg_error_mgr {
    type Exit = unsafe extern "C-unwind" fn(&mut jpeg_common_struct);
    type Emit = unsafe extern "C-unwind" fn(&mut jpeg_common_struct, c_int);
    jpeg_error_mgr {
        error_exit: Some(error_exit as Exit),
        emit_message: Some(emit_message as Emit),
        output_message: Some(quiet as Exit),
        format_message: None,
        reset_error_mgr: Some(quiet as Exit),
        msg_code: 0,
        msg_parm: Default::default(),
        trace_level: 0,
        num_warnings: 0,
        jpeg_message_table: std::ptr::null(),
        last_jpeg_message: 0,
        addon_message_table: std::ptr::null(),
        first_addon_message: 0,
        last_addon_message: 0,
    }
}

/// Runs libjpeg work, turning its unwinds into errors. Any other panic keeps
/// unwinding to [`crate::process`], which reports it as `engine-panic`.
fn catch<T>(clock: Option<&Clock>, work: impl FnOnce() -> Result<T, ImagingError>) -> Result<T, ImagingError> {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(result) => result,
        Err(payload) => match payload.downcast_ref::<LibjpegFailure>() {
            Some(LibjpegFailure::Fatal) => Err(ImagingError::Corrupt("libjpeg rejected the data".into())),
            Some(LibjpegFailure::CorruptData) => {
                Err(ImagingError::Corrupt("damaged entropy-coded data (libjpeg warning)".into()))
            }
            Some(LibjpegFailure::TooManyScans(max)) => {
                Err(ImagingError::TooComplex(format!("the JPEG has more than {max} scans")))
            }
            Some(LibjpegFailure::Deadline) => match clock {
                Some(clock) => Err(clock.exceeded()),
                None => resume_unwind(payload),
            },
            None => resume_unwind(payload),
        },
    }
}

fn io_error(context: &str) -> impl Fn(std::io::Error) -> ImagingError + '_ {
    move |e| ImagingError::Corrupt(format!("{context}: {e}"))
}

/// A decoded JPEG: upright sRGB pixels, and the size of the full image.
pub(crate) struct DecodedJpeg {
    pub pixels: Pixels,
    /// The full, upright size (the decode may be DCT-scaled below it).
    pub full_size: (u32, u32),
}

/// Decodes with DCT scaling: the smallest of the 1/8, 2/8, 4/8 and 8/8 scales
/// whose longest edge is still at least `target_edge`, so every variant is a
/// downscale of real pixels. `target_edge` of `u32::MAX` decodes at full size.
pub(crate) fn decode(
    input: &[u8],
    limits: &Limits,
    target_edge: u32,
    clock: &Clock,
) -> Result<DecodedJpeg, ImagingError> {
    // One walk of the markers: libjpeg would pad a cut stream with grey (see
    // `jpeg_scan`), and the scan count says what the decode will hold.
    let walk = crate::jpeg_scan::walk(input);
    if !walk.complete {
        return Err(ImagingError::Truncated);
    }
    let _watched = Watched::start(limits.max_scans, clock.deadline());
    catch(Some(clock), || decode_inner(input, walk.scans > 1, limits, target_edge, clock))
}

fn decode_inner(
    input: &[u8],
    multi_scan: bool,
    limits: &Limits,
    target_edge: u32,
    clock: &Clock,
) -> Result<DecodedJpeg, ImagingError> {
    const SAVED: [Marker; 3] = [Marker::APP(1), Marker::APP(2), Marker::APP(14)];
    let mut decompress = Decompress::builder()
        .with_err(error_manager())
        .with_markers(&SAVED)
        .from_mem(input)
        .map_err(io_error("JPEG header"))?;

    let (width, height) = (decompress.width(), decompress.height());
    let (width, height) = (dim(width)?, dim(height)?);
    probe::check_dimensions(width, height, limits)?;

    let Markers { orientation, icc, adobe } = read_markers(decompress.markers());

    let numerator = scale_numerator(width.max(height), target_edge);
    decompress.scale(numerator);
    let cmyk =
        matches!(decompress.color_space(), mozjpeg_sys::J_COLOR_SPACE::JCS_CMYK | mozjpeg_sys::J_COLOR_SPACE::JCS_YCCK);
    let components = if cmyk { 4 } else { 3 };
    let (out_w, out_h) = (scaled(width, numerator), scaled(height, numerator));
    let budget = decode_bytes(&decompress, multi_scan, (out_w, out_h), components, orientation, icc.len());
    if budget > limits.max_alloc_bytes {
        return Err(ImagingError::TooLarge(format!(
            "decoding needs about {budget} bytes, over the {}-byte budget",
            limits.max_alloc_bytes
        )));
    }

    strict();
    let mut started = if cmyk { decompress.to_colorspace(ColorSpace::JCS_CMYK) } else { decompress.rgb() }
        .map_err(io_error("JPEG start"))?;
    let (out_w, out_h) = (dim(started.width())?, dim(started.height())?);
    // For a progressive JPEG, every scan was decoded by the start above,
    // under the scan cap and the deadline (the module docs); what remains
    // (inverse DCT and colour conversion) is linear in the output pixels,
    // which the budget above bounds. Read into uninitialised memory: zeroing 15 MB for
    // a 20 MP photo that libjpeg overwrites at once cost about 1% of a job.
    clock.check()?;
    let mut data: Vec<u8> = started.read_scanlines().map_err(|e| match e.kind() {
        std::io::ErrorKind::OutOfMemory => ImagingError::TooLarge("cannot allocate the decoded image".into()),
        _ => ImagingError::Corrupt(format!("JPEG scanlines: {e}")),
    })?;
    clock.check()?;
    if data.len() != out_w as usize * components as usize * out_h as usize {
        return Err(ImagingError::Corrupt("JPEG scanlines: fewer rows than the header declares".into()));
    }
    started.finish().map_err(io_error("JPEG end"))?;

    let icc = (!icc.is_empty()).then_some(icc.as_slice());
    let pixels = if cmyk {
        // Adobe's encoders (the only common source of CMYK JPEGs) store ink
        // inverted and say so with their APP14 marker.
        if adobe {
            data.iter_mut().for_each(|v| *v = 255 - *v);
        }
        colour::cmyk_to_srgb(out_w, out_h, &data, icc)
    } else {
        let mut pixels = Pixels { width: out_w, height: out_h, has_alpha: false, data };
        if let Some(icc) = icc {
            colour::rgb_to_srgb(&mut pixels, icc);
        }
        pixels
    };
    let pixels = orient::apply(pixels, orientation);
    let full_size = if orientation >= 5 { (height, width) } else { (width, height) };
    Ok(DecodedJpeg { pixels, full_size })
}

/// What decoding will allocate, from the headers: the output (libjpeg's
/// samples, then the 8-bit RGB(A) the resizer takes), a second copy when the
/// EXIF orientation turns it, the ICC profile, and for a stream of more than
/// one scan (progressive, or non-interleaved) the whole image's DCT
/// coefficients, which libjpeg holds at full size whatever the output scale:
/// 64 coefficients of 2 bytes per 8x8 block of each component.
fn decode_bytes<R>(
    decompress: &Decompress<R>,
    multi_scan: bool,
    (out_w, out_h): (u32, u32),
    components: u64,
    orientation: u8,
    icc: usize,
) -> u64 {
    let out = u64::from(out_w) * u64::from(out_h);
    let turned = if orientation > 1 { out * 4 } else { 0 };
    let coefficients = if multi_scan {
        let block = |c: &mozjpeg_sys::jpeg_component_info| {
            // libjpeg rounds each component up to whole MCUs of its sampling factors.
            let round = |blocks: u32, factor: i32| u64::from(blocks).next_multiple_of(factor.max(1) as u64);
            round(c.width_in_blocks, c.h_samp_factor) * round(c.height_in_blocks, c.v_samp_factor) * 128
        };
        decompress.components().iter().map(block).sum()
    } else {
        0
    };
    out * (components + 4) + turned + coefficients + icc as u64
}

/// What the saved APP markers say about how to read the pixels.
struct Markers {
    /// The EXIF orientation (1 when absent).
    orientation: u8,
    /// The ICC profile, its chunks joined in order (empty when absent).
    icc: Vec<u8>,
    /// Whether an Adobe APP14 marker is present (inverted CMYK).
    adobe: bool,
}

fn read_markers<'a>(markers: impl Iterator<Item = mozjpeg::decompress::MarkerData<'a>>) -> Markers {
    let mut orientation = 1;
    let mut icc_chunks: Vec<(u8, &[u8])> = Vec::new();
    let mut adobe = false;
    for marker in markers {
        match marker.marker {
            Marker::APP(1) if orientation == 1 => orientation = orient::from_exif_segment(marker.data).unwrap_or(1),
            Marker::APP(2) => {
                if let Some(rest) = marker.data.strip_prefix(b"ICC_PROFILE\0")
                    && rest.len() > 2
                {
                    icc_chunks.push((rest[0], &rest[2..]));
                }
            }
            Marker::APP(14) => adobe |= marker.data.starts_with(b"Adobe"),
            _ => {}
        }
    }
    icc_chunks.sort_by_key(|&(sequence, _)| sequence);
    let icc = icc_chunks.iter().flat_map(|&(_, chunk)| chunk.iter().copied()).collect();
    Markers { orientation, icc, adobe }
}

fn dim(value: usize) -> Result<u32, ImagingError> {
    u32::try_from(value).map_err(|_| ImagingError::TooLarge(format!("dimension {value}")))
}

/// libjpeg's output size for a scale of `numerator / 8`: rounded up.
fn scaled(side: u32, numerator: u8) -> u32 {
    (u64::from(side) * u64::from(numerator)).div_ceil(8) as u32
}

/// The smallest `n` in {1, 2, 4, 8} whose scaled longest edge is at least
/// `target`.
///
/// Only these scales: libjpeg-turbo has SIMD inverse DCTs for them (the 3/8,
/// 5/8 … ones are plain C), and in our benchmark the extra margin they leave
/// for the Lanczos3 step gave a lower DSSIM (0.00186 against 0.00194 with
/// every n/8 allowed) at the same speed and bytes.
fn scale_numerator(longest: u32, target: u32) -> u8 {
    [1, 2, 4, 8].into_iter().find(|&n| scaled(longest, n) >= target).unwrap_or(8)
}

/// Encodes RGB pixels with mozjpeg.
///
/// - `Fast`: baseline with the standard Huffman tables: one pass over the
///   image, a few percent more bytes.
/// - `Balanced`: baseline with Huffman tables optimised for the image (a
///   statistics pass first), as sharp and libvips write by default.
/// - `Max`: mozjpeg's full search: trellis quantisation, progressive with
///   optimised scans (about 19% fewer bytes for about three times the CPU).
///
/// All three use the same quantisation, so `Fast` and `Balanced` decode to
/// identical pixels; only the entropy coding differs.
pub(crate) fn encode(
    rgb: &[u8],
    width: u32,
    height: u32,
    quality: u8,
    effort: Effort,
) -> Result<Vec<u8>, ImagingError> {
    catch(None, || {
        let mut compress = Compress::new_err(Box::new(error_manager()), ColorSpace::JCS_RGB);
        if effort != Effort::Max {
            compress.set_fastest_defaults();
        }
        compress.set_size(width as usize, height as usize);
        compress.set_quality(f32::from(quality.clamp(1, 100)));
        compress.set_optimize_coding(effort != Effort::Fast);
        let capacity = rgb.len() / 8;
        let mut started = compress
            .start_compress(Vec::with_capacity(capacity))
            .map_err(|e| ImagingError::Encode(format!("mozjpeg: {e}")))?;
        started.write_scanlines(rgb).map_err(|e| ImagingError::Encode(format!("mozjpeg: {e}")))?;
        started.finish().map_err(|e| ImagingError::Encode(format!("mozjpeg: {e}")))
    })
    .map_err(|e| match e {
        ImagingError::Corrupt(message) => ImagingError::Encode(message),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn many_scans() -> Vec<u8> {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/progressive_66_scans.jpg")).expect("testdata")
    }

    #[test]
    fn every_scan_is_counted_as_libjpeg_reads_it() {
        let clock = Clock::start(std::time::Duration::from_secs(30));

        decode(&many_scans(), &Limits::default(), u32::MAX, &clock).expect("decodes");

        assert_eq!(scans_read(), 66);
    }

    #[test]
    fn the_deadline_stops_libjpeg_at_the_next_scan_not_after_all_of_them() {
        // Spent before the decode starts: libjpeg unwinds at the first scan
        // it announces, and reads none of the other 65.
        let clock = Clock::start(std::time::Duration::ZERO);
        std::thread::sleep(std::time::Duration::from_millis(1));

        let result = decode(&many_scans(), &Limits::default(), u32::MAX, &clock);

        assert_eq!(result.map(|_| ()).map_err(|e| e.code()), Err("deadline-exceeded"));
        assert_eq!(scans_read(), 1);
    }

    #[test]
    fn a_progressive_jpeg_is_charged_its_full_size_coefficients_whatever_the_scale() {
        // Both decode at 1/8 to a few tens of kilobytes; only the progressive
        // one keeps its ~1 MB of coefficients (754x424, three components).
        let clock = Clock::start(std::time::Duration::from_secs(30));
        let budget = Limits { max_alloc_bytes: 500_000, ..Limits::default() };
        let baseline =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/orient3.jpg")).expect("testdata");
        assert_eq!(crate::jpeg_scan::walk(&baseline).scans, 1, "orient3.jpg is a one-scan JPEG");

        let progressive = decode(&many_scans(), &budget, 64, &clock);
        let one_scan = decode(&baseline, &budget, 64, &clock);

        assert_eq!(progressive.map(|_| ()).map_err(|e| e.code()), Err("image-too-large"));
        assert!(one_scan.is_ok(), "{:?}", one_scan.err());
    }

    #[test]
    fn the_cap_stops_libjpeg_at_the_first_scan_past_it() {
        let clock = Clock::start(std::time::Duration::from_secs(30));
        let limits = Limits { max_scans: 10, ..Limits::default() };

        let result = decode(&many_scans(), &limits, u32::MAX, &clock);

        assert_eq!(result.map(|_| ()).map_err(|e| e.code()), Err("image-too-complex"));
        assert_eq!(scans_read(), 11);
    }

    #[test]
    fn the_scaled_decode_is_never_smaller_than_the_largest_variant() {
        assert_eq!(scale_numerator(6028, 2048), 4);
        assert!(scaled(6028, 4) >= 2048);
        assert!(scaled(6028, 2) < 2048);
        assert_eq!(scale_numerator(4096, 1024), 2);
        assert_eq!(scale_numerator(2048, 2048), 8);
        assert_eq!(scale_numerator(1000, 2048), 8);
        assert_eq!(scale_numerator(16_384, 2048), 1);
        assert_eq!(scale_numerator(16_376, 2048), 2);
        assert_eq!(scale_numerator(8_000, 2048), 4);
    }
}
