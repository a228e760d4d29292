//! What both ways of uploading share: idempotency, streaming the body into
//! the store (or nowhere), and enqueueing the job.

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use entities::jobs;
use futures::StreamExt;
use pipeline::jobs::{self as repo, ClientFields, NewUpload, Recorded, Transition};
use pipeline::message::JobMessage;
use pipeline::store::{BlobStore, ByteStream, ObjectMeta, StoreError};
use uuid::Uuid;

use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::meter::Meter;

/// Marks a response as the replay of an earlier request.
const REPLAYED_HEADER: header::HeaderName = header::HeaderName::from_static("idempotent-replayed");

/// Marks `response` as the answer to a repeated request, when it is one.
pub(crate) fn mark_replayed(mut response: Response, replay: bool) -> Response {
    if replay {
        response.headers_mut().insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    response
}

/// The `Idempotency-Key` header, validated, and namespaced by the caller so
/// two clients cannot collide.
pub(crate) fn idempotency_key(headers: &HeaderMap, principal: &Principal) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .ok_or_else(|| ApiError::BadRequest("Idempotency-Key must be 1 to 200 visible ASCII characters".into()))?;
    Ok(Some(format!("{}:{key}", principal.idempotency_scope())))
}

/// The answer to a repeated request: the job the first one made, if it asked
/// for the same thing; 422 otherwise.
pub(crate) fn replayed(job: &jobs::Model, fingerprint: &str) -> Result<(), ApiError> {
    if job.request_fingerprint.as_deref() == Some(fingerprint) { Ok(()) } else { Err(ApiError::IdempotencyKeyReused) }
}

/// The job an earlier request with this idempotency key made, if any.
pub(crate) async fn earlier_job(state: &AppState, key: Option<&str>) -> Result<Option<jobs::Model>, ApiError> {
    let Some(key) = key else { return Ok(None) };
    Ok(repo::find_job_by_idempotency_key(&state.backends.db, key).await?)
}

/// Records an upload. When a concurrent request with the same idempotency
/// key got there first, returns that request's job instead (422 if it asked
/// for something else); when the tenant has these bytes already, that
/// image's job. [`Recorded`] tells which.
pub(crate) async fn record_idempotent(
    state: &AppState,
    upload: NewUpload,
    fingerprint: &str,
) -> Result<(jobs::Model, Recorded), ApiError> {
    let (tenant, external_id) = (upload.tenant_id, upload.client.external_id.clone());
    let (job, recorded) = match repo::record_or_find(&state.backends.db, upload).await {
        Ok(recorded) => recorded,
        // A concurrent upload took the external id first.
        Err(err) if repo::is_unique_violation(&err) && external_id.is_some() => {
            return Err(external_id_taken(state, tenant, external_id.as_deref()).await?.unwrap_or(err.into()));
        }
        Err(err) => return Err(err.into()),
    };
    if recorded == Recorded::Existing {
        replayed(&job, fingerprint)?;
    }
    Ok((job, recorded))
}

/// `409 external-id-taken` when the tenant has an image with this external id.
pub(crate) async fn external_id_taken(
    state: &AppState,
    tenant: Uuid,
    external_id: Option<&str>,
) -> Result<Option<ApiError>, ApiError> {
    let Some(external_id) = external_id else { return Ok(None) };
    let image = repo::image_with_external_id(&state.backends.db, tenant, external_id).await?;
    Ok(image.map(|image| ApiError::ExternalIdTaken(image.id)))
}

/// Counts an upload of `bytes` against its tenant's quotas; a refusal is a
/// `429 quota-exceeded`. Returns when it was counted, for [`refund_quota`].
pub(crate) async fn charge_quota(state: &AppState, tenant: Uuid, bytes: i64) -> Result<DateTime<Utc>, ApiError> {
    let now = Utc::now();
    pipeline::quota::charge(&state.backends.db, tenant, bytes, now).await?.map_err(ApiError::QuotaExceeded)?;
    Ok(now)
}

/// Takes back the charge of an upload that was not kept (a repeated
/// request, or one that failed). A failure only leaves the count high.
pub(crate) async fn refund_quota(state: &AppState, tenant: Uuid, bytes: i64, charged_at: DateTime<Utc>) {
    if let Err(err) = pipeline::quota::refund(&state.backends.db, tenant, bytes, charged_at).await {
        tracing::warn!(error = %err, "could not refund an upload's quota");
    }
}

/// Sends a queued job's message. Without a message no worker would ever see
/// the job, so a failed send ends it rather than leave it queued forever,
/// and frees its idempotency key: the client gets a 503 and its retry, with
/// the same key, makes a new job.
pub(crate) async fn enqueue(state: &AppState, job: &jobs::Model) -> Result<(), ApiError> {
    if let Err(err) = state.backends.queue.send(&JobMessage::outgoing(job)).await {
        // The queue's own words (hosts, ARNs) go to the log, never to the job.
        tracing::warn!(job_id = %job.id, error = %err, "the job's message could not be sent");
        let jobs = state.backends.jobs();
        let message = "the job could not be queued; the request can be retried";
        let _ = jobs.end_with_error(job.id, Transition::Fail, "enqueue-failed", message).await;
        let _ = jobs.release_idempotency_key(job.id).await;
        return Err(err.into());
    }
    Ok(())
}

/// Sends the message of an earlier request's job that is still `queued`.
/// That request may have died between recording the job and sending its
/// message (an API killed mid-request), and then nothing else would ever
/// send it: the retry that finds the job does. When the first message was
/// sent after all, the worker's claim makes the second a no-op.
pub(crate) async fn ensure_enqueued(state: &AppState, job: &jobs::Model) -> Result<(), ApiError> {
    if job.status == jobs::JobStatus::Queued && job.attempts == 0 { enqueue(state, job).await } else { Ok(()) }
}

/// Where an upload's bytes go: the store, or nowhere (a repeated request
/// only needs their hash).
pub(crate) enum Sink<'a> {
    Store(&'a dyn BlobStore, &'a str),
    Discard,
}

impl Sink<'_> {
    async fn consume(&self, body: ByteStream<'_>, length: Option<u64>, meta: &ObjectMeta) -> Result<(), StoreError> {
        match self {
            Self::Store(store, key) => store.put_stream(key, body, length, meta).await,
            Self::Discard => {
                let mut body = body;
                while let Some(chunk) = body.next().await {
                    chunk?;
                }
                Ok(())
            }
        }
    }
}

/// The headers that carry a raw upload's client fields (a multipart upload
/// sends them as the form fields `external_id` and `metadata`).
pub(crate) const EXTERNAL_ID_HEADER: &str = "image-external-id";
/// See [`EXTERNAL_ID_HEADER`]: the metadata, as JSON.
pub(crate) const METADATA_HEADER: &str = "image-metadata";

/// How many form fields besides `file` a multipart upload may send, and how
/// large each may be: enough for the client fields, and no more.
const MAX_OTHER_FIELDS: usize = 8;
const MAX_FIELD_BYTES: usize = pipeline::jobs::intake::MAX_METADATA_BYTES + 1024;
/// What a form may carry besides its file: the other fields, and 64 KiB of
/// boundaries and part headers.
const FORM_OVERHEAD_BYTES: u64 = (MAX_OTHER_FIELDS * MAX_FIELD_BYTES + 64 * 1024) as u64;

/// Streams the image of a raw or multipart request through `meter` into
/// `sink`, and returns the client fields that came with it.
pub(crate) async fn stream_image(
    request: Request,
    meter: &Meter,
    limit: u64,
    sink: Sink<'_>,
) -> Result<ClientFields, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .ok_or_else(|| {
            ApiError::UnsupportedMediaType(
                "send an image/* Content-Type, or multipart/form-data with a `file` field".into(),
            )
        })?;
    if content_type.type_() == mime::MULTIPART && content_type.subtype() == mime::FORM_DATA {
        // The file is metered against `limit` as it streams; the whole body,
        // boundaries, part headers, preamble and the other fields included,
        // may exceed that only by what those fields may hold.
        let total = usize::try_from(limit.saturating_add(FORM_OVERHEAD_BYTES)).unwrap_or(usize::MAX);
        let request = request.map(|body| axum::body::Body::new(http_body_util::Limited::new(body, total)));
        let form = Multipart::from_request(request, &()).await.map_err(|e| ApiError::BadRequest(e.body_text()))?;
        return stream_form(form, meter, limit, sink).await;
    }
    if content_type.type_() != mime::IMAGE {
        return Err(ApiError::UnsupportedMediaType(format!(
            "{} is not an image type; send image/* or multipart/form-data",
            content_type.essence_str()
        )));
    }
    let client = client_headers(request.headers())?;
    let meta = ObjectMeta { content_type: content_type.essence_str().to_owned(), cache_control: None };
    // A declared length lets the store stream the body straight through.
    let length = declared_length(request.headers());
    let stored = sink.consume(meter.wrap(request.into_body().into_data_stream(), limit), length, &meta).await;
    upload_outcome(stored, meter, limit)?;
    Ok(client)
}

/// A raw upload's client fields, from [`EXTERNAL_ID_HEADER`] and [`METADATA_HEADER`].
fn client_headers(headers: &HeaderMap) -> Result<ClientFields, ApiError> {
    let header = |name: &str| -> Result<Option<&str>, ApiError> {
        headers
            .get(name)
            .map(|v| v.to_str().map_err(|_| ApiError::BadRequest(format!("{name} must be ASCII"))))
            .transpose()
    };
    ClientFields::parse(header(EXTERNAL_ID_HEADER)?, header(METADATA_HEADER)?).map_err(ApiError::BadRequest)
}

/// A multipart upload: the `file` field streams into `sink`; `external_id`
/// and `metadata` may come before or after it.
async fn stream_form(mut form: Multipart, meter: &Meter, limit: u64, sink: Sink<'_>) -> Result<ClientFields, ApiError> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(limit)
        } else {
            ApiError::BadRequest(e.body_text())
        }
    };
    let (mut external_id, mut metadata, mut others, mut stored) = (None, None, 0, false);
    while let Some(mut field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" && !stored {
            let meta = ObjectMeta {
                content_type: field.content_type().unwrap_or("application/octet-stream").to_owned(),
                cache_control: None,
            };
            let outcome = sink.consume(meter.wrap(field, limit), None, &meta).await;
            upload_outcome(outcome, meter, limit)?;
            stored = true;
            continue;
        }
        others += 1;
        if others > MAX_OTHER_FIELDS {
            return Err(ApiError::BadRequest(format!("at most {MAX_OTHER_FIELDS} form fields besides `file`")));
        }
        let mut text = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(bad)? {
            text.extend_from_slice(&chunk);
            if text.len() > MAX_FIELD_BYTES {
                return Err(ApiError::BadRequest(format!("form field `{name}` is over {MAX_FIELD_BYTES} bytes")));
            }
        }
        let text = String::from_utf8(text).map_err(|_| ApiError::BadRequest(format!("`{name}` must be UTF-8")))?;
        match name.as_str() {
            "external_id" => external_id = Some(text),
            "metadata" => metadata = Some(text),
            _ => {}
        }
    }
    if !stored {
        return Err(ApiError::BadRequest("the multipart body has no `file` field".into()));
    }
    ClientFields::parse(external_id.as_deref(), metadata.as_deref()).map_err(ApiError::BadRequest)
}

/// What an upload with an `Idempotency-Key` is compared by on a repeat: its
/// bytes, and the client fields when it has any.
pub(crate) fn upload_fingerprint(sha256: &str, client: &ClientFields) -> String {
    if client == &ClientFields::default() {
        return sha256.to_owned();
    }
    let mut digest = <sha2::Sha256 as sha2::Digest>::new();
    for part in [Some(sha256), client.external_id.as_deref(), client.metadata.as_deref()] {
        sha2::Digest::update(&mut digest, part.unwrap_or("\u{0}").as_bytes());
        sha2::Digest::update(&mut digest, b"\n");
    }
    hex::encode(sha2::Digest::finalize(digest))
}

/// The request's `Content-Length`, if it sent one.
pub(crate) fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

/// What a streamed upload's result means for the client.
pub(crate) fn upload_outcome(stored: Result<(), StoreError>, meter: &Meter, limit: u64) -> Result<(), ApiError> {
    match stored {
        Err(_) if meter.too_large() => Err(ApiError::PayloadTooLarge(limit)),
        Err(StoreError::Body(_)) | Ok(()) if meter.not_an_image() => Err(ApiError::UnsupportedMediaType(
            "the body is not a supported image (JPEG, PNG, WebP, GIF, BMP or TIFF)".into(),
        )),
        Ok(()) => Ok(()),
        Err(StoreError::Body(detail)) => Err(ApiError::BadRequest(format!("the upload was interrupted: {detail}"))),
        Err(err) => Err(err.into()),
    }
}
