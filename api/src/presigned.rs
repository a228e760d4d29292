//! Presigned uploads: `POST /v1/uploads` creates a job that waits for its
//! bytes and hands out a short-lived PUT for them.
//!
//! On S3 the PUT goes straight to the bucket (`uploads/{job_id}`), signed
//! with the Content-Type and Content-Length, and the bucket's ObjectCreated
//! notification starts the job: the API never sees the bytes. On local disk
//! the API signs a URL to itself (`PUT /v1/uploads/{job_id}`) with the same
//! terms, so clients follow the same two steps everywhere.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use entities::jobs::{self, JobStatus};
use hmac::{Hmac, Mac};
use pipeline::jobs::{self as repo, ClientFields, NewUpload, Recorded};
use pipeline::keys;
use pipeline::links::Links;
use pipeline::store::ObjectMeta;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::intake::{
    charge_quota, declared_length, earlier_job, enqueue, external_id_taken, idempotency_key, mark_replayed,
    record_idempotent, refund_quota, replayed, upload_outcome,
};
use crate::meter::Meter;
use crate::responses::{
    AlreadyReceived, BadRequest, ExternalIdTaken, KeyReused, NotFound, OverQuota, TooLarge, Unauthorized, Unavailable,
    UnsupportedMediaType, UploadRejected,
};
use crate::views::JobView;
use crate::{AppState, SharedState, parse_id};

/// The media types a presigned upload may declare.
const ACCEPTED_TYPES: [&str; 6] = ["image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp", "image/tiff"];

/// What the client is about to upload.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(crate::examples::upload_request))]
pub(crate) struct UploadRequest {
    /// The image's media type; the PUT must send exactly this Content-Type.
    #[schema(examples("image/jpeg"))]
    content_type: String,
    /// The image's size in bytes; the PUT must send exactly this many.
    #[schema(minimum = 1)]
    content_length: u64,
    /// The client's own id for the image, unique within the tenant (1–200 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 200, min_length = 1)]
    external_id: Option<String>,
    /// A JSON object (at most 4 KiB) that comes back on the image and in every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Value>,
}

/// The job and how to send its bytes.
#[derive(Serialize, ToSchema)]
#[schema(examples(crate::examples::upload_ticket))]
pub(crate) struct UploadTicket {
    job: JobView,
    /// How to upload; absent once the upload has arrived.
    upload: Option<UploadInstructions>,
    /// The job's status, readable for an hour without an API key and from
    /// any origin: hand it to the browser that uploads, so it can wait for
    /// its job and then show the image.
    status_url: Option<String>,
}

/// One HTTP request for the client to make.
#[derive(Serialize, ToSchema)]
#[schema(examples(crate::examples::upload_instructions))]
pub(crate) struct UploadInstructions {
    /// Always `PUT`.
    method: &'static str,
    url: String,
    /// Headers to send exactly as given: they are part of the signature.
    headers: BTreeMap<String, String>,
    expires_at: DateTime<Utc>,
}

/// Start a presigned upload.
///
/// Creates a job that waits for its image, and a presigned PUT for the
/// bytes: send exactly the `method`, `url` and `headers` of `upload` before
/// `expires_at`. On S3 the bytes go straight to the bucket and the API is
/// not in the data path; the job starts when they land.
#[utoipa::path(post, path = "/v1/uploads", tag = "images",
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat the request safely: the same key and body return the same job")),
    request_body = UploadRequest,
    responses((status = 201, description = "The job, awaiting its upload, and how to upload", body = UploadTicket,
                headers(("Location" = String, description = "The job"))),
              BadRequest, Unauthorized, TooLarge, UnsupportedMediaType, ExternalIdTaken, KeyReused, OverQuota, Unavailable))]
pub(crate) async fn create_upload(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Result<Json<UploadRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(|rejection| match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::UnsupportedMediaType("send the upload request as application/json".into())
        }
        other => ApiError::BadRequest(other.body_text()),
    })?;
    let content_type = request.content_type.trim().to_ascii_lowercase();
    if !ACCEPTED_TYPES.contains(&content_type.as_str()) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "{content_type:?} is not a supported image type ({})",
            ACCEPTED_TYPES.join(", ")
        )));
    }
    if request.content_length == 0 {
        return Err(ApiError::BadRequest("content_length must be at least 1".into()));
    }
    if request.content_length > state.max_upload_bytes {
        return Err(ApiError::PayloadTooLarge(state.max_upload_bytes));
    }
    let fingerprint = hex::encode(Sha256::digest(serde_json::to_vec(&request).unwrap_or_default()));
    let idempotency_key = idempotency_key(&headers, &principal)?;
    if let Some(job) = earlier_job(&state, idempotency_key.as_deref()).await? {
        replayed(&job, &fingerprint)?;
        return ticket(&state, &headers, job, &content_type, request.content_length, true).await;
    }
    let client = ClientFields::new(request.external_id, request.metadata).map_err(ApiError::BadRequest)?;
    if let Some(taken) = external_id_taken(&state, principal.tenant, client.external_id.as_deref()).await? {
        return Err(taken);
    }

    let (image_id, job_id) = (Uuid::now_v7(), Uuid::now_v7());
    let size = i64::try_from(request.content_length).unwrap_or(i64::MAX);
    let charged_at = charge_quota(&state, principal.tenant, size).await?;
    let upload = NewUpload {
        tenant_id: principal.tenant,
        image_id,
        job_id,
        // Learnt when the bytes arrive.
        sha256: String::new(),
        bytes: i64::try_from(request.content_length).unwrap_or(i64::MAX),
        idempotency_key: idempotency_key.clone(),
        request_fingerprint: idempotency_key.as_ref().map(|_| fingerprint.clone()),
        api_key_id: principal.key_id,
        awaiting_upload: true,
        deduplicate: false,
        client,
    };
    let (job, recorded) = match record_idempotent(&state, upload, &fingerprint).await {
        Ok(recorded) => recorded,
        Err(err) => {
            refund_quota(&state, principal.tenant, size, charged_at).await;
            return Err(err);
        }
    };
    // (Presigned uploads are not deduplicated: their bytes are not known yet.)
    if recorded != Recorded::New {
        refund_quota(&state, principal.tenant, size, charged_at).await;
        return ticket(&state, &headers, job, &content_type, request.content_length, true).await;
    }
    tracing::info!(%job_id, content_length = request.content_length, "presigned upload issued");
    ticket(&state, &headers, job, &content_type, request.content_length, false).await
}

/// `201 Created` with the job and, while it awaits its bytes, a fresh PUT.
async fn ticket(
    state: &AppState,
    headers: &HeaderMap,
    job: jobs::Model,
    content_type: &str,
    content_length: u64,
    replay: bool,
) -> Result<Response, ApiError> {
    let upload = if job.status == JobStatus::AwaitingUpload {
        Some(instructions(state, headers, job.id, content_type, content_length).await?)
    } else {
        None
    };
    let location = HeaderValue::from_str(&Links::relative().job(job.id)).map_err(|e| ApiError::Internal(e.into()))?;
    let status_url = crate::status::status_url(state, &base_url(state, headers), job.id);
    let response = (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(UploadTicket { job: job.into(), upload, status_url }),
    )
        .into_response();
    Ok(mark_replayed(response, replay))
}

async fn instructions(
    state: &AppState,
    headers: &HeaderMap,
    job_id: Uuid,
    content_type: &str,
    content_length: u64,
) -> Result<UploadInstructions, ApiError> {
    let ttl = state.upload_url_ttl;
    let expires_at = Utc::now() + ttl;
    let key = format!("{}{job_id}", keys::UPLOADS_PREFIX);
    let presigned = state.backends.store.presigned_put(&key, content_type, content_length, ttl).await?;
    if let Some(presigned) = presigned {
        let mut signed: BTreeMap<String, String> =
            presigned.headers.into_iter().map(|(name, value)| (name.to_ascii_lowercase(), value)).collect();
        signed.entry("content-type".into()).or_insert_with(|| content_type.to_owned());
        signed.entry("content-length".into()).or_insert_with(|| content_length.to_string());
        return Ok(UploadInstructions { method: "PUT", url: presigned.url, headers: signed, expires_at });
    }
    let expires = expires_at.timestamp();
    let signature = state.upload_signer.sign(job_id, expires, content_type, content_length);
    let url =
        format!("{}?expires={expires}&signature={signature}", Links::at(&base_url(state, headers)).upload(job_id));
    let headers = BTreeMap::from([
        ("content-type".to_owned(), content_type.to_owned()),
        ("content-length".to_owned(), content_length.to_string()),
    ]);
    Ok(UploadInstructions { method: "PUT", url, headers, expires_at })
}

/// `PUBLIC_BASE_URL`, or the address the client used to reach us.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(base) = &state.public_base_url {
        return base.clone();
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}")
}

/// Signs the API's own upload URLs (local-disk deployments).
pub(crate) struct UploadSigner {
    key: Vec<u8>,
}

impl UploadSigner {
    pub fn new(key: Vec<u8>) -> Self {
        Self { key }
    }

    fn mac(&self, job_id: Uuid, expires: i64, content_type: &str, content_length: u64) -> Hmac<Sha256> {
        // Any key length is valid for HMAC.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(format!("PUT\n{job_id}\n{expires}\n{content_type}\n{content_length}").as_bytes());
        mac
    }

    fn sign(&self, job_id: Uuid, expires: i64, content_type: &str, content_length: u64) -> String {
        hex::encode(self.mac(job_id, expires, content_type, content_length).finalize().into_bytes())
    }

    fn verify(&self, job_id: Uuid, expires: i64, content_type: &str, content_length: u64, signature: &str) -> bool {
        let Ok(signature) = hex::decode(signature) else { return false };
        self.mac(job_id, expires, content_type, content_length).verify_slice(&signature).is_ok()
    }
}

/// The query of a signed upload URL.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Signed {
    /// Unix time after which the URL is refused.
    expires: i64,
    /// Hex HMAC-SHA256 over the job, the expiry, the Content-Type and the Content-Length.
    signature: String,
}

/// Receive a presigned upload's bytes.
///
/// The target of `upload.url` when objects are on local disk (on S3 the
/// client PUTs to the bucket instead). The URL's signature is the
/// credential: no API key. The job is queued once the bytes are stored.
#[utoipa::path(put, path = "/v1/uploads/{id}", tag = "images", security(()),
    params(("id" = Uuid, Path, description = "Job id"), Signed),
    request_body(content = crate::images::ImageBytes, content_type = "image/*"),
    responses((status = 200, description = "Received; the job is queued", body = JobView),
              BadRequest, UploadRejected, NotFound, AlreadyReceived, UnsupportedMediaType, Unavailable))]
pub(crate) async fn receive_upload(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    query: Result<Query<Signed>, axum::extract::rejection::QueryRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let job_id = parse_id(&id)?;
    let Query(signed) = query.map_err(|_| ApiError::UploadRejected("the upload URL is not signed".into()))?;
    let headers = request.headers();
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned).unwrap_or_default();
    let declared = declared_length(headers);
    let content_length = declared.unwrap_or(0);
    if !state.upload_signer.verify(job_id, signed.expires, &content_type, content_length, &signed.signature) {
        return Err(ApiError::UploadRejected(
            "the signature does not match this URL, Content-Type and Content-Length".into(),
        ));
    }
    if Utc::now().timestamp() > signed.expires {
        return Err(ApiError::UploadRejected("the upload URL has expired".into()));
    }
    let job = repo::find_job(&state.backends.db, job_id).await?.ok_or(ApiError::NotFound("job"))?;
    if job.status != JobStatus::AwaitingUpload {
        return Err(ApiError::Conflict("this job's upload was already received".into()));
    }
    // Two PUTs with one URL may both get here. Each writes its own staging
    // object; the job's transition out of awaiting-upload is the claim, and
    // only its winner's bytes become the original. The loser gets 409 and
    // its bytes are removed, so the original is always the accepted body.
    let source_key = keys::original(job.image_id);
    // Under the job's upload prefix, which deleting the image clears too.
    let staging = format!("{}{job_id}.{}", keys::UPLOADS_PREFIX, Uuid::new_v4());
    let meter = Meter::default();
    let meta = ObjectMeta { content_type, cache_control: None };
    let body = meter.wrap(request.into_body().into_data_stream(), content_length);
    let stored = state.backends.store.put_stream(&staging, body, declared, &meta).await;
    if let Err(refused) = upload_outcome(stored, &meter, content_length) {
        discard(&state, &staging).await;
        return Err(refused);
    }
    let (bytes, sha256) = meter.finish();
    let claimed =
        state.backends.jobs().upload_arrived(job_id, i64::try_from(bytes).unwrap_or(i64::MAX), Some(sha256)).await;
    let job = match claimed {
        Ok(Some(job)) => job,
        Ok(None) => {
            discard(&state, &staging).await;
            return Err(ApiError::Conflict("this job's upload was already received".into()));
        }
        Err(err) => {
            discard(&state, &staging).await;
            return Err(err.into());
        }
    };
    if let Err(err) = state.backends.store.copy(&staging, &source_key).await {
        // No message is out yet: give the claim back, so the client's retry
        // of this URL (it gets a 503) is taken as the first was.
        discard(&state, &staging).await;
        if let Err(release) = state.backends.jobs().release_upload(job_id).await {
            tracing::error!(%job_id, error = %release, "a claimed upload could not be released");
        }
        return Err(err.into());
    }
    discard(&state, &staging).await;
    enqueue(&state, &job).await?;
    tracing::info!(%job_id, bytes, "presigned upload received");
    Ok(Json(JobView::from(job)).into_response())
}

/// Removes a staging object this request wrote.
async fn discard(state: &AppState, key: &str) {
    if let Err(err) = state.backends.store.delete(key).await {
        tracing::warn!(%key, error = %err, "could not remove a staged upload");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_covers_the_job_the_expiry_the_type_and_the_length() {
        let signer = UploadSigner::new(b"test key".to_vec());
        let job = Uuid::now_v7();
        let signature = signer.sign(job, 1_900_000_000, "image/png", 1234);
        assert!(signer.verify(job, 1_900_000_000, "image/png", 1234, &signature));
        assert!(!signer.verify(Uuid::now_v7(), 1_900_000_000, "image/png", 1234, &signature));
        assert!(!signer.verify(job, 1_900_000_001, "image/png", 1234, &signature));
        assert!(!signer.verify(job, 1_900_000_000, "image/jpeg", 1234, &signature));
        assert!(!signer.verify(job, 1_900_000_000, "image/png", 1235, &signature));
        assert!(!signer.verify(job, 1_900_000_000, "image/png", 1234, "not hex"));
        let other = UploadSigner::new(b"another key".to_vec());
        assert!(!other.verify(job, 1_900_000_000, "image/png", 1234, &signature));
    }
}
