//! Does a JPEG stream reach its end-of-image marker, and how many scans has it?
//!
//! The pure-Rust decoder fills missing scans with grey instead of failing, so
//! a half-uploaded JPEG would otherwise become a half-grey variant. Walking the
//! marker structure is cheap (one pass, no decoding) and tells a complete
//! stream from a cut one. Policy: a JPEG whose marker walk ends before EOI is
//! `truncated-image`.

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const TEM: u8 = 0x01;

/// What one pass over the markers found.
pub(crate) struct Walk {
    /// The stream starts with SOI and reaches EOI.
    pub complete: bool,
    /// Scans up to where the walk ended. More than one means libjpeg keeps
    /// the whole image's DCT coefficients in memory.
    pub scans: u32,
}

/// Walks the stream's markers once, skipping entropy-coded data.
pub(crate) fn walk(data: &[u8]) -> Walk {
    let mut scans = 0;
    if data.len() < 4 || data[0] != 0xFF || data[1] != SOI {
        return Walk { complete: false, scans: 0 };
    }
    let mut pos = 2;
    loop {
        // Tolerate junk between segments the way libjpeg does: skip to the next 0xFF.
        let Some(offset) = data[pos..].iter().position(|&b| b == 0xFF) else {
            return Walk { complete: false, scans };
        };
        pos += offset;
        // Any number of 0xFF fill bytes may precede a marker.
        while pos < data.len() && data[pos] == 0xFF {
            pos += 1;
        }
        let Some(&marker) = data.get(pos) else {
            return Walk { complete: false, scans };
        };
        pos += 1;
        match marker {
            EOI => return Walk { complete: true, scans },
            0x00 => continue,
            TEM | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len) = data.get(pos..pos + 2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))) else {
            return Walk { complete: false, scans };
        };
        if len < 2 {
            return Walk { complete: false, scans };
        }
        pos += len;
        if pos > data.len() {
            return Walk { complete: false, scans };
        }
        if marker == SOS {
            scans += 1;
            match skip_entropy_coded_data(data, pos) {
                Some(next_marker) => pos = next_marker,
                None => return Walk { complete: false, scans },
            }
        }
    }
}

/// Skips entropy-coded bytes after a scan header and returns the position of
/// the next real marker. Inside the data, 0xFF is followed by 0x00 (a stuffed
/// byte) or a restart marker, neither of which ends the scan.
fn skip_entropy_coded_data(data: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        pos += data[pos..].iter().position(|&b| b == 0xFF)?;
        match *data.get(pos + 1)? {
            0x00 | 0xD0..=0xD7 | 0xFF => pos += 1,
            _ => return Some(pos),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let len = u16::try_from(payload.len() + 2).unwrap_or(u16::MAX);
        let mut out = vec![0xFF, marker];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn minimal_jpeg() -> Vec<u8> {
        let mut jpeg = vec![0xFF, SOI];
        jpeg.extend(segment(0xE1, b"Exif\0\0\xFF\xD9 thumbnail end inside APP1"));
        jpeg.extend(segment(SOS, &[1, 1, 0, 0, 63, 0]));
        jpeg.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56]);
        jpeg.extend(segment(SOS, &[1, 1, 0, 0, 63, 0]));
        jpeg.extend_from_slice(&[0x78, 0x9A]);
        jpeg.extend_from_slice(&[0xFF, EOI]);
        jpeg
    }

    #[test]
    fn complete_stream_reaches_eoi_even_with_eoi_bytes_inside_a_segment() {
        assert!(walk(&minimal_jpeg()).complete);
    }

    #[test]
    fn every_cut_before_the_final_marker_is_detected() {
        let jpeg = minimal_jpeg();
        for cut in 0..jpeg.len() - 1 {
            assert!(!walk(&jpeg[..cut]).complete, "cut at {cut} was taken as complete");
        }
    }

    #[test]
    fn every_scan_is_counted() {
        let many = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/progressive_66_scans.jpg"));
        assert_eq!(walk(&many.expect("testdata")).scans, 66);
        assert_eq!(walk(&minimal_jpeg()).scans, 2, "its two SOS segments, not the EOI bytes inside APP1");
    }

    #[test]
    fn trailing_bytes_after_eoi_are_accepted() {
        let mut jpeg = minimal_jpeg();
        jpeg.extend_from_slice(b"trailer written by some cameras");
        assert!(walk(&jpeg).complete);
    }
}
