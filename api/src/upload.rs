//! The upload body as it streams to the store: hashed and counted on the way,
//! and cut off at the size limit.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use pipeline::store::{ByteStream, StoreError};
use sha2::{Digest, Sha256};

/// What was learnt about a body while it streamed.
#[derive(Default)]
struct Tally {
    hasher: Sha256,
    bytes: u64,
    too_large: bool,
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
            tally.hasher.update(&chunk);
            Ok(chunk)
        })
        .boxed()
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
