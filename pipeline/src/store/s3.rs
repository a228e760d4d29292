//! [`BlobStore`] on Amazon S3, with SSE-KMS on every write.

use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http_body::{Frame, SizeHint};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use tokio::sync::mpsc;

use super::{BlobStore, ByteStream, ObjectMeta, PresignedRequest, StoreError, check_length};

/// Characters left as they are in a CopySource key: unreserved ones and `/`.
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Size of one multipart part. S3 needs at least 5 MiB for every part but
/// the last; this is also the most an upload holds in memory.
const PART_SIZE: usize = 8 * 1024 * 1024;

/// The largest object one PutObject may write; a longer declared body goes
/// in parts.
const MAX_PUT_OBJECT: u64 = 5 * 1024 * 1024 * 1024;

/// Chunks of a streamed body in flight between the client's connection and
/// the request to S3: the most a streamed PutObject holds.
const STREAM_CHUNKS: usize = 4;

/// The object store on S3. Every object it writes is encrypted with the
/// configured KMS key (or the bucket's default encryption when none is set).
#[derive(Clone, Debug)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
    kms_key_id: Option<String>,
}

/// `builder` (a PutObject, CreateMultipartUpload or CopyObject) for `key` in
/// the store's bucket, encrypted with SSE-KMS under the store's key and an
/// S3 Bucket Key. The three builders share no trait, so this is a macro; it
/// keeps every object this store writes under the same encryption.
macro_rules! encrypted {
    ($store:expr, $builder:expr, $key:expr) => {
        $builder
            .bucket(&$store.bucket)
            .key($key)
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .set_ssekms_key_id($store.kms_key_id.clone())
            .bucket_key_enabled(true)
    };
}

impl S3BlobStore {
    /// A store for `bucket`; `kms_key_id` selects SSE-KMS with that key.
    pub fn new(client: Client, bucket: String, kms_key_id: Option<String>) -> Self {
        Self { client, bucket, kms_key_id }
    }

    /// A PutObject of `key` with its metadata and SSE-KMS, without a body.
    fn put_object(&self, key: &str, meta: &ObjectMeta) -> PutObjectFluentBuilder {
        encrypted!(self, self.client.put_object(), key)
            .content_type(&meta.content_type)
            .set_cache_control(meta.cache_control.clone())
    }

    async fn put_whole(&self, key: &str, body: Bytes, meta: &ObjectMeta) -> Result<(), StoreError> {
        self.put_object(key, meta).body(S3Body::from(body)).send().await.map_err(unavailable)?;
        Ok(())
    }

    /// Streams a body of declared length into one PutObject as it arrives,
    /// holding a few chunks rather than a part. S3 keeps nothing of a
    /// request that stops short, so a failed upload leaves no object.
    async fn put_declared(
        &self,
        key: &str,
        mut body: ByteStream<'_>,
        length: u64,
        meta: &ObjectMeta,
    ) -> Result<(), StoreError> {
        let (sender, chunks) = mpsc::channel(STREAM_CHUNKS);
        // The upload's stream borrows the request, so it cannot be the SDK's
        // body (which must be 'static); it is pumped into a channel beside
        // the request instead.
        let pump = async move {
            loop {
                // A request that ended early (S3 refused it or went away)
                // stops the reading of the client's body too; the request's
                // own error says why.
                let chunk = tokio::select! {
                    chunk = body.next() => chunk,
                    () = sender.closed() => break,
                };
                let Some(chunk) = chunk else { break };
                if sender.send(chunk?).await.is_err() {
                    break;
                }
            }
            Ok::<(), StoreError>(())
        };
        let declared = i64::try_from(length).map_err(|_| StoreError::Body("declared length too large".into()))?;
        let request = self
            .put_object(key, meta)
            .content_length(declared)
            .body(S3Body::from_body_1_x(DeclaredBody { chunks, declared: length, received: 0 }))
            .send();
        let (pumped, sent) = tokio::join!(pump, request);
        // A failing client is the cause of whatever the request then says.
        pumped?;
        sent.map_err(unavailable)?;
        Ok(())
    }

    async fn multipart(
        &self,
        key: &str,
        first: Bytes,
        mut body: ByteStream<'_>,
        meta: &ObjectMeta,
    ) -> Result<(), StoreError> {
        let created = encrypted!(self, self.client.create_multipart_upload(), key)
            .content_type(&meta.content_type)
            .set_cache_control(meta.cache_control.clone())
            .send()
            .await
            .map_err(unavailable)?;
        let upload_id = created.upload_id.unwrap_or_default();

        let uploaded = async {
            let mut parts = Vec::new();
            let mut pending = Some(first);
            let mut buffer = BytesMut::with_capacity(PART_SIZE);
            loop {
                let part = match pending.take() {
                    Some(part) => part,
                    None => {
                        while buffer.len() < PART_SIZE {
                            match body.next().await {
                                Some(chunk) => buffer.extend_from_slice(&chunk?),
                                None => break,
                            }
                        }
                        if buffer.is_empty() {
                            break;
                        }
                        buffer.split().freeze()
                    }
                };
                let number = i32::try_from(parts.len() + 1).map_err(|_| StoreError::Body("too many parts".into()))?;
                let out = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(S3Body::from(part))
                    .send()
                    .await
                    .map_err(unavailable)?;
                parts.push(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag).build());
            }
            self.client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                .send()
                .await
                .map_err(unavailable)?;
            Ok(())
        }
        .await;

        if uploaded.is_err() {
            // Don't leave paid-for parts behind; the bucket's lifecycle rule
            // catches what this misses.
            let _ =
                self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(&upload_id).send().await;
        }
        uploaded
    }
}

/// A request body of declared length fed by a channel: the SDK needs a
/// `'static` body that knows its exact size (to sign it and to frame its
/// checksum), and an upload's stream is neither.
#[derive(Debug)]
struct DeclaredBody {
    chunks: mpsc::Receiver<Bytes>,
    declared: u64,
    received: u64,
}

impl http_body::Body for DeclaredBody {
    type Data = Bytes;
    type Error = StoreError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, StoreError>>> {
        Poll::Ready(match std::task::ready!(self.chunks.poll_recv(cx)) {
            Some(chunk) => {
                self.received += chunk.len() as u64;
                if self.received > self.declared {
                    Some(check_length(self.received, Some(self.declared)).map(|()| Frame::data(chunk)))
                } else {
                    Some(Ok(Frame::data(chunk)))
                }
            }
            None => check_length(self.received, Some(self.declared)).err().map(Err),
        })
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.declared - self.received.min(self.declared))
    }
}

fn unavailable<E: std::error::Error + 'static, R: std::fmt::Debug>(err: SdkError<E, R>) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(err).to_string())
}

#[async_trait]
impl BlobStore for S3BlobStore {
    #[tracing::instrument(skip_all, fields(key))]
    async fn put(&self, key: &str, body: Bytes, meta: &ObjectMeta) -> Result<(), StoreError> {
        self.put_whole(key, body, meta).await
    }

    #[tracing::instrument(skip_all, fields(key))]
    async fn put_stream(
        &self,
        key: &str,
        mut body: ByteStream<'_>,
        length: Option<u64>,
        meta: &ObjectMeta,
    ) -> Result<(), StoreError> {
        if let Some(length) = length.filter(|&n| n > 0 && n <= MAX_PUT_OBJECT) {
            return self.put_declared(key, body, length, meta).await;
        }
        // Fill the first part. A body that fits in it is one PutObject; a
        // longer one becomes a multipart upload, so memory stays at one part.
        let mut first = BytesMut::new();
        while first.len() < PART_SIZE {
            match body.next().await {
                Some(chunk) => first.extend_from_slice(&chunk?),
                None => return self.put_whole(key, first.freeze(), meta).await,
            }
        }
        self.multipart(key, first.freeze(), body, meta).await
    }

    async fn presigned_get(&self, key: &str, expires_in: std::time::Duration) -> Result<Option<String>, StoreError> {
        let config = PresigningConfig::expires_in(expires_in).map_err(|e| StoreError::InvalidKey(e.to_string()))?;
        let request =
            self.client.get_object().bucket(&self.bucket).key(key).presigned(config).await.map_err(unavailable)?;
        Ok(Some(request.uri().to_owned()))
    }

    async fn presigned_put(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
        expires_in: std::time::Duration,
    ) -> Result<Option<PresignedRequest>, StoreError> {
        let config = PresigningConfig::expires_in(expires_in).map_err(|e| StoreError::InvalidKey(e.to_string()))?;
        let length = i64::try_from(content_length).map_err(|e| StoreError::InvalidKey(e.to_string()))?;
        let mut put =
            self.client.put_object().bucket(&self.bucket).key(key).content_type(content_type).content_length(length);
        // The encryption headers become signed headers the client must send,
        // so a presigned upload is encrypted with the same key as the rest.
        if let Some(kms_key_id) = &self.kms_key_id {
            put = put.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(kms_key_id);
        }
        let request = put.presigned(config).await.map_err(unavailable)?;
        let headers = request.headers().map(|(name, value)| (name.to_owned(), value.to_owned())).collect();
        Ok(Some(PresignedRequest { url: request.uri().to_owned(), headers }))
    }

    #[tracing::instrument(skip_all, fields(key))]
    async fn probe(&self) -> Result<(), StoreError> {
        // A listing of one key under `originals/`: the API's role may list
        // that prefix (to delete images), and the answer does not depend on
        // what is stored.
        let request =
            self.client.list_objects_v2().bucket(&self.bucket).prefix(crate::keys::ORIGINALS_PREFIX).max_keys(1);
        request.send().await.map_err(unavailable)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(key))]
    async fn tag_for_retention(&self, key: &str, days: u32) -> Result<(), StoreError> {
        let tag = aws_sdk_s3::types::Tag::builder()
            .key(crate::retention::RETENTION_TAG)
            .value(days.to_string())
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let tagging = aws_sdk_s3::types::Tagging::builder()
            .tag_set(tag)
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let request = self.client.put_object_tagging().bucket(&self.bucket).key(key).tagging(tagging);
        match request.send().await {
            Ok(_) => Ok(()),
            Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                Err(StoreError::NotFound(key.to_owned()))
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client.delete_object().bucket(&self.bucket).key(key).send().await.map_err(unavailable)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(key))]
    async fn delete_tree(&self, key: &str) -> Result<u64, StoreError> {
        let key = key.trim_end_matches('/');
        let below = format!("{key}/");
        let mut deleted = 0;
        let mut pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(key).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(unavailable)?;
            // `key` as a prefix also matches `{key}x`; only the key itself
            // and what lies under `key/` belong to the tree.
            for object in page.contents().iter().filter_map(|o| o.key()).filter(|k| *k == key || k.starts_with(&below))
            {
                self.client.delete_object().bucket(&self.bucket).key(object).send().await.map_err(unavailable)?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    #[tracing::instrument(skip_all, fields(from, to))]
    async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError> {
        // CopySource is "bucket/key" with the key URL-encoded.
        let source = format!("{}/{}", self.bucket, utf8_percent_encode(from, COPY_SOURCE));
        match encrypted!(self, self.client.copy_object(), to).copy_source(source).send().await {
            Ok(_) => Ok(()),
            Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                Err(StoreError::NotFound(from.to_owned()))
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    #[tracing::instrument(skip_all, fields(key))]
    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let out = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => out,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Err(StoreError::NotFound(key.to_owned()));
            }
            Err(err) => return Err(unavailable(err)),
        };
        let data = out.body.collect().await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(data.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use http_body::Body as _;

    use super::*;

    /// Reads a [`DeclaredBody`] fed `chunks` to its end.
    async fn read(declared: u64, chunks: &[&'static [u8]]) -> Result<Vec<u8>, StoreError> {
        let (sender, receiver) = mpsc::channel(chunks.len().max(1));
        for chunk in chunks {
            sender.send(Bytes::from_static(chunk)).await.expect("channel open");
        }
        drop(sender);
        let mut body = DeclaredBody { chunks: receiver, declared, received: 0 };
        assert_eq!(body.size_hint().exact(), Some(declared));
        let mut out = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            out.extend_from_slice(&frame?.into_data().expect("a data frame"));
        }
        Ok(out)
    }

    #[tokio::test]
    async fn a_declared_body_must_end_exactly_at_its_length() {
        assert_eq!(read(5, &[b"ab", b"cde"]).await.expect("whole body"), b"abcde");
        let short = read(5, &[b"ab"]).await;
        assert!(matches!(&short, Err(StoreError::Body(m)) if m == "received 2 bytes of the 5 declared"), "{short:?}");
        let long = read(2, &[b"abc"]).await;
        assert!(matches!(&long, Err(StoreError::Body(m)) if m == "received 3 bytes of the 2 declared"), "{long:?}");
    }
}
