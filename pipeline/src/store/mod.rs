//! Object storage: S3 on AWS, a directory on the embedded defaults.

mod fs;
mod s3;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

pub use fs::FsBlobStore;
pub use s3::S3BlobStore;

/// A stream of body chunks, as an upload arrives.
pub type ByteStream<'a> = BoxStream<'a, Result<Bytes, StoreError>>;

/// HTTP metadata stored with an object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    /// `Content-Type` served with the object.
    pub content_type: String,
    /// `Cache-Control` served with the object, if any.
    pub cache_control: Option<String>,
}

/// A request a client makes itself, straight to the store: the URL and the
/// headers it must send with it (they are part of the signature).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresignedRequest {
    /// Where to send the request.
    pub url: String,
    /// Headers the request must carry, exactly.
    pub headers: Vec<(String, String)>,
}

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No object under that key. Permanent for the object.
    #[error("no object at {0}")]
    NotFound(String),
    /// The key is not one this store accepts. Permanent.
    #[error("invalid object key {0:?}")]
    InvalidKey(String),
    /// The body stream stopped with an error from its source (the client).
    #[error("upload body failed: {0}")]
    Body(String),
    /// The store could not be reached or refused the call. Transient.
    #[error("object store unavailable: {0}")]
    Unavailable(String),
}

/// Whether a body of `received` bytes is what was declared, if anything was.
pub(crate) fn check_length(received: u64, declared: Option<u64>) -> Result<(), StoreError> {
    match declared {
        Some(declared) if declared != received => {
            Err(StoreError::Body(format!("received {received} bytes of the {declared} declared")))
        }
        _ => Ok(()),
    }
}

impl StoreError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// The object operations the API and the worker use.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `body` under `key`, replacing any object there.
    async fn put(&self, key: &str, body: Bytes, meta: &ObjectMeta) -> Result<(), StoreError>;

    /// Stores a body as it streams in. `length` is its size when declared up
    /// front (a request's `Content-Length`): the body is then streamed through
    /// without being held; otherwise at most one part is held in memory. A
    /// body that ends before (or runs past) its declared length is an error.
    /// Nothing is visible under `key` unless the whole body arrived.
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream<'_>,
        length: Option<u64>,
        meta: &ObjectMeta,
    ) -> Result<(), StoreError>;

    /// Reads a whole object.
    async fn get(&self, key: &str) -> Result<Bytes, StoreError>;

    /// Copies an object inside the store, replacing any object at `to`.
    async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError>;

    /// Whether the store answers, with only the permissions the API holds
    /// (for `/readyz`). Reading a key that does not exist would not do on
    /// S3: without a listing permission for its prefix, S3 answers 403, not 404.
    async fn probe(&self) -> Result<(), StoreError>;

    /// Marks an original for the bucket's lifecycle rules to expire after
    /// `days` ([`RETENTION_TAG`](crate::retention::RETENTION_TAG)). A store
    /// without such rules (local disk) has nothing to mark: the sweeper
    /// alone removes its originals.
    async fn tag_for_retention(&self, key: &str, days: u32) -> Result<(), StoreError> {
        let _ = (key, days);
        Ok(())
    }

    /// Deletes the object at `key`, if there is one; needs no listing.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Deletes the object at `key` and every object under `key/`, and
    /// returns how many it deleted. Deleting what is not there is not an
    /// error, so a delete cut short can simply be run again.
    async fn delete_tree(&self, key: &str) -> Result<u64, StoreError>;

    /// A URL that lets anyone holding it GET the object until it expires,
    /// or `None` when the store cannot hand out such URLs (local disk).
    async fn presigned_get(&self, key: &str, expires_in: std::time::Duration) -> Result<Option<String>, StoreError>;

    /// A PUT that lets a client upload exactly `content_length` bytes of
    /// `content_type` to `key` until it expires, or `None` when the store
    /// cannot hand out such requests (local disk).
    async fn presigned_put(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
        expires_in: std::time::Duration,
    ) -> Result<Option<PresignedRequest>, StoreError>;
}
