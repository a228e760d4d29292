//! Keeping the engine's large transient buffers in the heap.
//!
//! One job allocates and frees tens of megabytes at a time: the decoded
//! image, libjpeg's coefficient arrays (a whole progressive image of them),
//! the resized variants, the encoders' working memory. glibc serves any
//! allocation over its mmap threshold (at most 32 MiB, adjusted as it goes)
//! with a fresh `mmap` and returns it to the kernel on `free`, and it trims
//! the top of the heap back to the kernel as soon as 128 KiB or more is free
//! there. Either way the next job touches brand-new pages: a page fault and a
//! kernel zeroing per 4 KiB. In `bench run --format jpeg` on a 2-core VM that
//! was three times the page faults (75,800 against 25,000 for 8 photos) and
//! about 10% of the run.
//!
//! [`retain_large_buffers`] raises both thresholds, so freed buffers stay in
//! the process and the next job reuses them. Peak memory does not change (the
//! same buffers are live at the peak either way); what changes is that the
//! process keeps its peak instead of handing it back between jobs, which is
//! what a worker sized for its peak should do.
//!
//! Only glibc is tuned; on other C libraries this does nothing.

/// Allocations below this come from the heap, never from their own mmap.
/// A 50 MP image's largest single buffer (RGBA, 200 MB) still gets its own.
const MMAP_THRESHOLD: i32 = 128 * 1024 * 1024;

/// The free memory at the top of the heap that glibc keeps before trimming.
const TRIM_THRESHOLD: i32 = 256 * 1024 * 1024;

/// Tunes glibc's allocator for the engine's allocation pattern (see the
/// module docs). Call it once, early in `main`.
/// Returns whether the C library accepted both settings.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn retain_large_buffers() -> bool {
    // SAFETY: mallopt only updates glibc's allocator parameters, which glibc
    // guards with its own lock; it reads no memory of ours. Both values are
    // in range for their parameters (positive, below 2 GiB).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    }
}

/// Tunes glibc's allocator for the engine's allocation pattern: nothing to
/// do on this C library.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn retain_large_buffers() -> bool {
    false
}
