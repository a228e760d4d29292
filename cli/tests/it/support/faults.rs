//! Fault injection: a store and a queue that fail on purpose, as S3 and SQS
//! do on a bad minute, or crash outright.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use pipeline::queue::{Delivery, JobQueue, Outgoing, QueueError, RedriveStatus};
use pipeline::store::{BlobStore, ByteStream, ObjectMeta, StoreError};

/// Wraps a real store; the first `failing_puts` writes fail, the first
/// `panicking_puts` writes panic, every read fails while `reads_fail` is
/// set, and reads take `read_delay` (a slow network). With a `put_gate`,
/// every write waits for a permit on it before it lands (a write in flight).
pub struct FlakyStore {
    pub inner: Arc<dyn BlobStore>,
    pub failing_puts: AtomicU32,
    pub panicking_puts: AtomicU32,
    pub reads_fail: bool,
    pub read_delay: Duration,
    pub puts_attempted: AtomicU32,
    pub put_gate: Option<Arc<tokio::sync::Semaphore>>,
    /// Deletes of trees fail once this many have gone through.
    pub deletes_allowed: AtomicU32,
    /// The text of a failed read, as an SDK would word it; `None`: a short one.
    pub read_error: Option<String>,
    /// Copies fail while this is above zero, each taking one.
    pub failing_copies: AtomicU32,
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
            put_gate: None,
            deletes_allowed: AtomicU32::new(u32::MAX),
            read_error: None,
            failing_copies: AtomicU32::new(0),
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
        if let Some(gate) = &self.put_gate {
            drop(gate.acquire().await.map_err(|_| injected())?);
        }
        self.inner.put(key, body, meta).await
    }

    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream<'_>,
        length: Option<u64>,
        meta: &ObjectMeta,
    ) -> Result<(), StoreError> {
        self.inner.put_stream(key, body, length, meta).await
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        tokio::time::sleep(self.read_delay).await;
        if self.reads_fail {
            return Err(self.read_error.clone().map_or_else(injected, StoreError::Unavailable));
        }
        self.inner.get(key).await
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError> {
        if take_one(&self.failing_copies) {
            return Err(injected());
        }
        self.inner.copy(from, to).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }

    async fn probe(&self) -> Result<(), StoreError> {
        if self.reads_fail {
            return Err(injected());
        }
        self.inner.probe().await
    }

    async fn tag_for_retention(&self, key: &str, days: u32) -> Result<(), StoreError> {
        self.inner.tag_for_retention(key, days).await
    }

    async fn delete_tree(&self, key: &str) -> Result<u64, StoreError> {
        if !take_one(&self.deletes_allowed) {
            return Err(injected());
        }
        self.inner.delete_tree(key).await
    }

    async fn presigned_get(&self, key: &str, expires_in: std::time::Duration) -> Result<Option<String>, StoreError> {
        self.inner.presigned_get(key, expires_in).await
    }

    async fn presigned_put(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
        expires_in: std::time::Duration,
    ) -> Result<Option<pipeline::store::PresignedRequest>, StoreError> {
        self.inner.presigned_put(key, content_type, content_length, expires_in).await
    }
}

/// Wraps a real queue; sends fail once `sends_allowed` have gone through,
/// and batch deletes panic once `deletes_allowed` batches have (a crash).
pub struct FlakyQueue {
    pub inner: Arc<dyn JobQueue>,
    pub sends_allowed: AtomicU32,
    pub deletes_allowed: AtomicU32,
    /// The text of a failed send, as an SDK would word it; `None`: a short one.
    pub send_error: Option<String>,
    /// Sends past the allowance panic instead of failing: the process dies
    /// between its last commit and the send.
    pub send_panics: bool,
}

impl FlakyQueue {
    pub fn new(inner: Arc<dyn JobQueue>, sends_allowed: u32, deletes_allowed: u32) -> Self {
        Self {
            inner,
            sends_allowed: AtomicU32::new(sends_allowed),
            deletes_allowed: AtomicU32::new(deletes_allowed),
            send_error: None,
            send_panics: false,
        }
    }
}

#[async_trait]
impl JobQueue for FlakyQueue {
    async fn send(&self, message: &Outgoing) -> Result<String, QueueError> {
        if !take_one(&self.sends_allowed) {
            assert!(!self.send_panics, "injected crash before the send");
            let text = self.send_error.clone().unwrap_or_else(|| "injected fault: queue down".into());
            return Err(QueueError::Unavailable(text));
        }
        self.inner.send(message).await
    }

    async fn send_batch(&self, messages: &[Outgoing]) -> Vec<Result<String, QueueError>> {
        let mut results = Vec::new();
        for message in messages {
            results.push(self.send(message).await);
        }
        results
    }

    async fn receive(&self, max: u32, wait: Duration, visibility: Duration) -> Result<Vec<Delivery>, QueueError> {
        self.inner.receive(max, wait, visibility).await
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.inner.delete(receipt).await
    }

    async fn delete_batch(&self, receipts: &[String]) -> Vec<Result<(), QueueError>> {
        if !take_one(&self.deletes_allowed) {
            panic!("injected crash before the batch delete");
        }
        self.inner.delete_batch(receipts).await
    }

    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError> {
        self.inner.change_visibility(receipt, timeout).await
    }

    fn shortest_wait(&self) -> Duration {
        self.inner.shortest_wait()
    }

    async fn redrive_limit(&self) -> Result<Option<u32>, QueueError> {
        self.inner.redrive_limit().await
    }

    async fn approximate_depth(&self) -> Result<u64, QueueError> {
        self.inner.approximate_depth().await
    }

    async fn address(&self) -> Result<Option<String>, QueueError> {
        self.inner.address().await
    }

    async fn start_redrive(
        &self,
        destination: Option<&str>,
        max_per_second: Option<u32>,
    ) -> Result<Option<String>, QueueError> {
        self.inner.start_redrive(destination, max_per_second).await
    }

    async fn redrive_status(&self, handle: &str) -> Result<RedriveStatus, QueueError> {
        self.inner.redrive_status(handle).await
    }
}
