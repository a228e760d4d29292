//! Fault injection: a store that fails on purpose, as S3 does on a bad minute.

use std::sync::Arc;
use std::time::Duration;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use pipeline::store::{BlobStore, ByteStream, ObjectMeta, StoreError};

/// Wraps a real store; the first `failing_puts` writes fail, the first
/// `panicking_puts` writes panic, every read fails while `reads_fail` is
/// set, and reads take `read_delay` (a slow network).
pub struct FlakyStore {
    pub inner: Arc<dyn BlobStore>,
    pub failing_puts: AtomicU32,
    pub panicking_puts: AtomicU32,
    pub reads_fail: bool,
    pub read_delay: Duration,
    pub puts_attempted: AtomicU32,
}

impl FlakyStore {
    pub fn new(inner: Arc<dyn BlobStore>, failing_puts: u32, reads_fail: bool) -> Self {
        Self {
            inner,
            failing_puts: AtomicU32::new(failing_puts),
            panicking_puts: AtomicU32::new(0),
            reads_fail,
            read_delay: Duration::ZERO,
            puts_attempted: AtomicU32::new(0),
        }
    }
}

fn take_one(counter: &AtomicU32) -> bool {
    counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
}

fn injected() -> StoreError {
    StoreError::Unavailable("injected fault: 503 Slow Down".into())
}

#[async_trait]
impl BlobStore for FlakyStore {
    async fn put(&self, key: &str, body: Bytes, meta: &ObjectMeta) -> Result<(), StoreError> {
        self.puts_attempted.fetch_add(1, Ordering::SeqCst);
        if take_one(&self.panicking_puts) {
            panic!("injected panic inside the store adapter");
        }
        if take_one(&self.failing_puts) {
            return Err(injected());
        }
        self.inner.put(key, body, meta).await
    }

    async fn put_stream(&self, key: &str, body: ByteStream<'_>, meta: &ObjectMeta) -> Result<(), StoreError> {
        self.inner.put_stream(key, body, meta).await
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        tokio::time::sleep(self.read_delay).await;
        if self.reads_fail {
            return Err(injected());
        }
        self.inner.get(key).await
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError> {
        self.inner.copy(from, to).await
    }

    async fn presigned_get(&self, key: &str, expires_in: std::time::Duration) -> Result<Option<String>, StoreError> {
        self.inner.presigned_get(key, expires_in).await
    }
}
