//! [`BlobStore`] on Amazon S3, with SSE-KMS on every write.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{BlobStore, ByteStream, ObjectMeta, PresignedRequest, StoreError};

/// Characters left as they are in a CopySource key: unreserved ones and `/`.
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Size of one multipart part. S3 needs at least 5 MiB for every part but
/// the last; this is also the most an upload holds in memory.
const PART_SIZE: usize = 8 * 1024 * 1024;

/// The object store on S3. Every object it writes is encrypted with the
/// configured KMS key (or the bucket's default encryption when none is set).
#[derive(Clone, Debug)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
    kms_key_id: Option<String>,
}

impl S3BlobStore {
    /// A store for `bucket`; `kms_key_id` selects SSE-KMS with that key.
    pub fn new(client: Client, bucket: String, kms_key_id: Option<String>) -> Self {
        Self { client, bucket, kms_key_id }
    }

    async fn put_whole(&self, key: &str, body: Bytes, meta: &ObjectMeta) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(&meta.content_type)
            .set_cache_control(meta.cache_control.clone())
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .set_ssekms_key_id(self.kms_key_id.clone())
            .bucket_key_enabled(true)
            .body(S3Body::from(body))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn multipart(
        &self,
        key: &str,
        first: Bytes,
        mut body: ByteStream<'_>,
        meta: &ObjectMeta,
    ) -> Result<(), StoreError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(&meta.content_type)
            .set_cache_control(meta.cache_control.clone())
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .set_ssekms_key_id(self.kms_key_id.clone())
            .bucket_key_enabled(true)
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
    async fn put_stream(&self, key: &str, mut body: ByteStream<'_>, meta: &ObjectMeta) -> Result<(), StoreError> {
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

    #[tracing::instrument(skip_all, fields(from, to))]
    async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError> {
        // CopySource is "bucket/key" with the key URL-encoded.
        let source = format!("{}/{}", self.bucket, utf8_percent_encode(from, COPY_SOURCE));
        match self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(to)
            .copy_source(source)
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .set_ssekms_key_id(self.kms_key_id.clone())
            .bucket_key_enabled(true)
            .send()
            .await
        {
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
