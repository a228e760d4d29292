//! The upload body as it streams to the store: sniffed, hashed and counted
//! on the way, and cut off at the size limit or at the first bytes that are
//! not an image.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use pipeline::store::{ByteStream, StoreError};
use sha2::{Digest, Sha256};

/// Bytes enough to recognise every format the engine decodes.
const SNIFF_BYTES: usize = 16;

/// What was learnt about a body while it streamed.
#[derive(Default)]
struct Tally {
    hasher: Sha256,
    bytes: u64,
    too_large: bool,
    /// The first bytes, until the format is known.
    head: Vec<u8>,
    /// The format the first bytes show, once known.
    format: Option<&'static str>,
    not_an_image: bool,
}

impl Tally {
    /// Looks at the first bytes once there are enough of them (or the body ended).
    fn sniff(&mut self, chunk: &[u8], ended: bool) -> Result<(), StoreError> {
        if self.format.is_some() {
            return Ok(());
        }
        let wanted = SNIFF_BYTES.saturating_sub(self.head.len()).min(chunk.len());
        self.head.extend_from_slice(&chunk[..wanted]);
        if self.head.len() < SNIFF_BYTES && !ended {
            return Ok(());
        }
        self.format = imaging::sniff(&self.head);
        if self.format.is_none() {
            self.not_an_image = true;
            return Err(StoreError::Body("the body is not a supported image".into()));
        }
        Ok(())
    }
}

/// Watches a body stream; read the results after the store consumed it.
#[derive(Clone, Default)]
pub(crate) struct Meter {
    tally: Arc<Mutex<Tally>>,
}

impl Meter {
    /// Wraps `body` so every chunk is hashed and counted; past `limit` bytes
    /// the stream ends in an error, so the store abandons the object.
    pub fn wrap<'a, S, E>(&self, body: S, limit: u64) -> ByteStream<'a>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'a,
        E: std::fmt::Display,
    {
        let tally = self.tally.clone();
        body.map(move |chunk| {
            let chunk = chunk.map_err(|e| StoreError::Body(e.to_string()))?;
            let mut tally = tally.lock().map_err(|_| StoreError::Body("upload meter poisoned".into()))?;
            tally.bytes += chunk.len() as u64;
            if tally.bytes > limit {
                tally.too_large = true;
                return Err(StoreError::Body(format!("upload exceeds {limit} bytes")));
            }
            tally.sniff(&chunk, false)?;
            tally.hasher.update(&chunk);
            Ok(chunk)
        })
        .boxed()
    }

    /// Whether the first bytes were not an image. Call after the store
    /// consumed the stream: a body shorter than the sniffing window is
    /// judged here.
    pub fn not_an_image(&self) -> bool {
        match self.tally.lock() {
            Ok(mut tally) => {
                let _ = tally.sniff(&[], true);
                tally.not_an_image
            }
            Err(_) => true,
        }
    }

    /// Whether the body went past the limit.
    pub fn too_large(&self) -> bool {
        self.tally.lock().map(|t| t.too_large).unwrap_or(false)
    }

    /// Bytes seen and their hex SHA-256.
    pub fn finish(&self) -> (u64, String) {
        match self.tally.lock() {
            Ok(tally) => (tally.bytes, hex::encode(tally.hasher.clone().finalize())),
            Err(_) => (0, String::new()),
        }
    }
}
