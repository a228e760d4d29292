//! Animated output: an animated GIF or WebP into an animated WebP, for the
//! presets that ask for it (`animated: true`).
//!
//! What decoding will cost is checked from the headers first: every frame is
//! a full canvas (the decoder composites each one over the last), so the
//! pixels decoded are frames × canvas, and what is held is one canvas plus
//! every preset's resized frames until they are encoded. Frames are decoded
//! one at a time and resized at once; the canvas is never kept.

use std::io::Cursor;

use image::codecs::gif::GifDecoder;
use image::codecs::webp::WebPDecoder;
use image::{AnimationDecoder, Frame, ImageDecoder};

use crate::preset::Preset;
use crate::probe::Format;
use crate::resize::Pixels;
use crate::{Clock, ImagingError, Limits, SizePlan, Timings, Variant};

/// One animated preset to make: its index among the presets, and its plan.
pub(crate) struct Wanted<'a> {
    pub index: usize,
    pub preset: &'a Preset,
    pub plan: SizePlan,
}

/// The animated variants of `wanted`, each paired with its preset's index.
pub(crate) fn variants(
    input: &[u8],
    frames: u32,
    wanted: &[Wanted<'_>],
    limits: &Limits,
    clock: &Clock,
    timings: &mut Timings,
) -> Result<Vec<(usize, Variant)>, ImagingError> {
    let started = std::time::Instant::now();
    let (canvas, decoded) = decoder(input, limits)?;
    check_budget(canvas, frames, wanted, limits)?;
    timings.decode += started.elapsed();

    let mut resized: Vec<Vec<Pixels>> = wanted.iter().map(|_| Vec::new()).collect();
    // Each frame's start, in milliseconds from the first; the last entry is
    // the end of the last frame.
    let mut timestamps = vec![0i32];
    for frame in decoded {
        // The budget was checked for the frames the headers declare.
        if timestamps.len() > frames as usize {
            return Err(ImagingError::Corrupt(format!("more frames than the {frames} the headers declare")));
        }
        let started = std::time::Instant::now();
        let frame = frame?;
        let (numerator, denominator) = frame.delay().numer_denom_ms();
        let delay = i32::try_from(numerator / denominator.max(1)).unwrap_or(i32::MAX);
        let canvas = frame.into_buffer();
        let pixels =
            Pixels { width: canvas.width(), height: canvas.height(), has_alpha: true, data: canvas.into_raw() };
        timings.decode += started.elapsed();
        let started = std::time::Instant::now();
        for (want, out) in wanted.iter().zip(&mut resized) {
            out.push(fit(&pixels, want.plan)?);
        }
        timings.resize += started.elapsed();
        let last = *timestamps.last().unwrap_or(&0);
        timestamps.push(last.saturating_add(delay));
        clock.check()?;
    }
    if resized.first().is_none_or(Vec::is_empty) {
        return Err(ImagingError::Corrupt("the animation has no frame".into()));
    }

    let started = std::time::Instant::now();
    let mut out = Vec::with_capacity(wanted.len());
    for (want, frames) in wanted.iter().zip(resized) {
        let (width, height) = (frames[0].width, frames[0].height);
        let data = tracing::info_span!("encode", preset = %want.preset.name, format = "webp", animated = true)
            .in_scope(|| webp::encode(&frames, &timestamps, want.preset, clock))?;
        out.push((
            want.index,
            Variant {
                preset: want.preset.name.clone(),
                preset_version: want.preset.version(),
                format: want.preset.format,
                width,
                height,
                data,
                same_as: None,
            },
        ));
    }
    timings.encode += started.elapsed();
    Ok(out)
}

type Frames<'a> = Box<dyn Iterator<Item = image::ImageResult<Frame>> + 'a>;

/// The canvas size and a decoder of its composited frames.
fn decoder<'a>(input: &'a [u8], limits: &Limits) -> Result<((u32, u32), Frames<'a>), ImagingError> {
    let decoder_limits = crate::decode::image_limits(limits);
    match crate::probe::detect(input)? {
        Format::Gif => {
            let mut decoder = GifDecoder::new(Cursor::new(input))?;
            decoder.set_limits(decoder_limits)?;
            Ok((decoder.dimensions(), Box::new(decoder.into_frames())))
        }
        Format::Webp => {
            let mut decoder = WebPDecoder::new(Cursor::new(input))?;
            decoder.set_limits(decoder_limits)?;
            Ok((decoder.dimensions(), Box::new(decoder.into_frames())))
        }
        other => Err(ImagingError::UnsupportedFormat(Some(format!("animated {}", other.name())))),
    }
}

/// Refuses, before any frame is decoded, an animation whose frames × canvas
/// exceed `max_animation_pixels`, or whose canvas and resized frames would
/// not fit the memory budget.
fn check_budget(canvas: (u32, u32), frames: u32, wanted: &[Wanted<'_>], limits: &Limits) -> Result<(), ImagingError> {
    crate::probe::check_dimensions(canvas.0, canvas.1, limits)?;
    let area = |(w, h): (u32, u32)| u64::from(w) * u64::from(h);
    let decoded = area(canvas).saturating_mul(u64::from(frames));
    if decoded > limits.max_animation_pixels {
        return Err(ImagingError::TooLarge(format!(
            "{frames} frames of {}x{} are {decoded} pixels, over the {}-pixel animation limit",
            canvas.0, canvas.1, limits.max_animation_pixels
        )));
    }
    let held: u64 = wanted.iter().map(|w| area(w.plan.0)).sum::<u64>().saturating_mul(u64::from(frames));
    let bytes = area(canvas).saturating_add(held).saturating_mul(4);
    if bytes > limits.max_alloc_bytes {
        return Err(ImagingError::TooLarge(format!(
            "the animation needs about {bytes} bytes, over the {}-byte budget",
            limits.max_alloc_bytes
        )));
    }
    Ok(())
}

/// One frame resized to a plan, and cropped for `cover`.
fn fit(frame: &Pixels, ((width, height), crop): SizePlan) -> Result<Pixels, ImagingError> {
    let (width, height) = (width.min(frame.width), height.min(frame.height));
    let resized =
        if (width, height) == (frame.width, frame.height) { frame.clone() } else { frame.resize(width, height)? };
    Ok(match crop {
        Some(side) => resized.crop_centre(side, side),
        None => resized,
    })
}

/// libwebp's animation encoder, called directly: it needs the end of the
/// last frame to give that frame its duration.
mod webp {
    use libwebp_sys as sys;

    use super::{Clock, ImagingError, Pixels, Preset};

    /// Deletes the encoder however the encode ends.
    struct Encoder(*mut sys::WebPAnimEncoder);

    impl Drop for Encoder {
        #[allow(unsafe_code)]
        fn drop(&mut self) {
            // SAFETY: the pointer came from WebPAnimEncoderNewInternal, is
            // not null, and is deleted only here.
            unsafe { sys::WebPAnimEncoderDelete(self.0) }
        }
    }

    impl Encoder {
        #[allow(unsafe_code)]
        fn error(&self, what: &str) -> ImagingError {
            // SAFETY: the encoder is live; the message is a C string it owns
            // (or null), copied before the encoder goes.
            let message = unsafe {
                let message = sys::WebPAnimEncoderGetError(self.0);
                if message.is_null() {
                    String::new()
                } else {
                    std::ffi::CStr::from_ptr(message).to_string_lossy().into()
                }
            };
            ImagingError::Encode(format!("libwebp animation: {what}: {message}"))
        }
    }

    /// Encodes `frames` (all the same size), frame `i` shown from
    /// `timestamps[i]` to `timestamps[i + 1]` milliseconds, looping for ever.
    #[allow(unsafe_code)]
    pub(super) fn encode(
        frames: &[Pixels],
        timestamps: &[i32],
        preset: &Preset,
        clock: &Clock,
    ) -> Result<Vec<u8>, ImagingError> {
        let encode_error = |what: &str| ImagingError::Encode(format!("libwebp animation: {what}"));
        let (width, height) = (frames[0].width, frames[0].height);
        let side = |v: u32| i32::try_from(v).map_err(|_| encode_error("frame too large"));
        let config = crate::encode::webp_config(preset)?;
        let abi = sys::WebPGetMuxABIVersion();
        let mut options = std::mem::MaybeUninit::<sys::WebPAnimEncoderOptions>::zeroed();
        // SAFETY: `options` is writable memory of the right type; the call
        // fills it and reports a version mismatch as 0.
        if unsafe { sys::WebPAnimEncoderOptionsInitInternal(options.as_mut_ptr(), abi) } == 0 {
            return Err(encode_error("options version mismatch"));
        }
        // SAFETY: initialised by the call above.
        let mut options = unsafe { options.assume_init() };
        options.anim_params.loop_count = 0;
        options.allow_mixed = 0;
        // SAFETY: `options` is initialised and outlives the call.
        let raw = unsafe { sys::WebPAnimEncoderNewInternal(side(width)?, side(height)?, &options, abi) };
        if raw.is_null() {
            return Err(encode_error("could not create the encoder"));
        }
        let encoder = Encoder(raw);
        for (frame, &timestamp) in frames.iter().zip(timestamps) {
            let mut picture = sys::WebPPicture::new().map_err(|()| encode_error("picture version mismatch"))?;
            picture.use_argb = 1;
            picture.width = side(frame.width)?;
            picture.height = side(frame.height)?;
            let stride = side(frame.width * 4)?;
            // SAFETY: `frame.data` is width × height RGBA pixels with that
            // stride; the import copies them into the picture, which is freed
            // after the encoder has read it.
            let added = unsafe {
                let imported = sys::WebPPictureImportRGBA(&mut picture, frame.data.as_ptr(), stride);
                let added = imported != 0 && sys::WebPAnimEncoderAdd(encoder.0, &mut picture, timestamp, &config) != 0;
                sys::WebPPictureFree(&mut picture);
                added
            };
            if !added {
                return Err(encoder.error("adding a frame"));
            }
            clock.check()?;
        }
        let end = timestamps.get(frames.len()).copied().unwrap_or(0);
        let mut data = sys::WebPData { bytes: std::ptr::null(), size: 0 };
        // SAFETY: a null frame ends the animation at `end`; assembling
        // writes a buffer into `data` that libwebp allocated and that is
        // copied, then cleared, here.
        unsafe {
            if sys::WebPAnimEncoderAdd(encoder.0, std::ptr::null_mut(), end, std::ptr::null()) == 0
                || sys::WebPAnimEncoderAssemble(encoder.0, &mut data) == 0
            {
                return Err(encoder.error("assembling"));
            }
            let bytes = std::slice::from_raw_parts(data.bytes, data.size).to_vec();
            sys::WebPDataClear(&mut data);
            Ok(bytes)
        }
    }
}
