//! The router and the client endpoints: uploads, jobs, images, variants.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Extension, FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use entities::jobs::{self, JobStatus};
use entities::{images, variants};
use futures::StreamExt;
use pipeline::message::JobMessage;
use pipeline::repo::{self, NewUpload};
use pipeline::store::{BlobStore, ByteStream, ObjectMeta, StoreError};
use pipeline::{cache, keys};
use serde::Serialize;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{self, Principal};
use crate::error::{ApiError, Problem};
use crate::upload::Meter;
use crate::{AppState, metrics, openapi, uploads};

pub(crate) type SharedState = Arc<AppState>;

/// Largest JSON request body (upload requests, admin runs).
pub(crate) const JSON_BODY_LIMIT: usize = 64 * 1024;

pub(crate) fn router(state: SharedState, request_timeout: Duration) -> Router {
    let client = Router::new()
        .route("/v1/jobs", get(list_jobs))
        .route("/v1/jobs/{id}", get(get_job))
        // Uploads are limited while they stream (see `Meter`), not by buffering.
        .route("/v1/images", post(create_image).layer(DefaultBodyLimit::disable()))
        .route("/v1/images/{id}", get(get_image))
        .route("/v1/images/{id}/variants/{preset}", get(get_variant))
        .route("/v1/uploads", post(uploads::create_upload))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require_client));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::serve))
        .route("/openapi.json", get(openapi::serve))
        // Authenticated by the URL's own signature, like a presigned S3 PUT.
        .route("/v1/uploads/{id}", put(uploads::receive_upload).layer(DefaultBodyLimit::disable()))
        .merge(client)
        .nest("/v1/admin", crate::admin::router(state.clone()))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .route_layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
                    let request_id =
                        request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
                }))
                .layer(PropagateRequestIdLayer::x_request_id())
                // A bug answers 500 (problem+json), never a dropped connection.
                .layer(CatchPanicLayer::custom(|_| {
                    tracing::error!("a handler panicked");
                    ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
                }))
                .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, request_timeout)),
        )
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "The process is alive", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Liveness.
#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    status: &'static str,
}

/// Readiness and what it checked.
#[derive(Serialize, ToSchema)]
pub(crate) struct Readiness {
    /// `ready` or `unavailable`.
    status: &'static str,
    checks: ReadinessChecks,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ReadinessChecks {
    database: bool,
    queue: bool,
    store: bool,
}

/// The database, the queue and the store all answer. A 503 names the failing
/// dependency, never its internal error.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses((status = 200, description = "Ready", body = Readiness),
              (status = 503, description = "A dependency is unreachable", body = Readiness)))]
async fn readyz(State(state): State<SharedState>) -> Response {
    let backends = &state.backends;
    let database = backends.db.ping().await.is_ok();
    let queue = backends.queue.approximate_depth().await.is_ok();
    // A read of a key that never exists: "not found" proves the store answers.
    let store = matches!(backends.store.get("readyz/probe").await, Ok(_) | Err(StoreError::NotFound(_)));
    let ready = database && queue && store;
    let body = Readiness {
        status: if ready { "ready" } else { "unavailable" },
        checks: ReadinessChecks { database, queue, store },
    };
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

/// Query of `GET /v1/jobs`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only jobs in this state.
    status: Option<JobStatusView>,
    /// Only jobs created at or after this instant (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    limit: Option<u64>,
}

/// A page of jobs and the cursor of the next one.
#[derive(Serialize, ToSchema)]
pub(crate) struct JobPage {
    jobs: Vec<JobView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// Lists jobs, newest first, one page at a time.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", params(ListQuery),
    responses((status = 200, description = "A page of jobs", body = JobPage),
              (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
              (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json")))]
async fn list_jobs(
    State(state): State<SharedState>,
    query: Result<axum::extract::Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<JobPage>, ApiError> {
    let axum::extract::Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let before = query
        .cursor
        .as_deref()
        .map(|c| Uuid::parse_str(c).map_err(|_| ApiError::BadRequest("invalid cursor".into())))
        .transpose()?;
    let limit = query.limit.unwrap_or(50).clamp(1, 200);
    let jobs = repo::list_jobs(&state.backends.db, query.status.map(JobStatus::from), query.since, before, limit)
        .await
        .map_err(|e| ApiError::Unavailable(e.into()))?;
    let next_cursor = (jobs.len() as u64 == limit).then(|| jobs.last().map(|j| j.id.to_string())).flatten();
    Ok(Json(JobPage { jobs: jobs.into_iter().map(JobView::from).collect(), next_cursor }))
}

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum JobStatusView {
    /// Created by `POST /v1/uploads`; waits for the client's PUT.
    AwaitingUpload,
    /// Accepted and enqueued.
    Queued,
    /// A worker is on it.
    Processing,
    /// Every variant is stored.
    Succeeded,
    /// Ended with a permanent error.
    Failed,
    /// Failed transiently too many times; operators can replay it.
    Dead,
}

impl From<JobStatus> for JobStatusView {
    fn from(status: JobStatus) -> Self {
        match status {
            JobStatus::AwaitingUpload => Self::AwaitingUpload,
            JobStatus::Queued => Self::Queued,
            JobStatus::Processing => Self::Processing,
            JobStatus::Succeeded => Self::Succeeded,
            JobStatus::Failed => Self::Failed,
            JobStatus::Dead => Self::Dead,
        }
    }
}

impl From<JobStatusView> for JobStatus {
    fn from(status: JobStatusView) -> Self {
        match status {
            JobStatusView::AwaitingUpload => Self::AwaitingUpload,
            JobStatusView::Queued => Self::Queued,
            JobStatusView::Processing => Self::Processing,
            JobStatusView::Succeeded => Self::Succeeded,
            JobStatusView::Failed => Self::Failed,
            JobStatusView::Dead => Self::Dead,
        }
    }
}

/// A job as clients see it.
#[derive(Serialize, ToSchema)]
pub(crate) struct JobView {
    id: Uuid,
    image_id: Uuid,
    status: JobStatusView,
    /// How many times a worker has started it.
    attempts: i32,
    /// Why it failed (or why its last attempt did).
    error: Option<ErrorView>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    links: JobLinks,
}

/// A job's error: a stable code and a human-readable message.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorView {
    code: String,
    message: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct JobLinks {
    #[serde(rename = "self")]
    this: String,
    image: String,
}

impl From<jobs::Model> for JobView {
    fn from(job: jobs::Model) -> Self {
        Self {
            links: JobLinks { this: format!("/v1/jobs/{}", job.id), image: format!("/v1/images/{}", job.image_id) },
            id: job.id,
            image_id: job.image_id,
            status: job.status.into(),
            attempts: job.attempts,
            error: job.error_code.map(|code| ErrorView { code, message: job.error_message.unwrap_or_default() }),
            created_at: job.created_at,
            updated_at: job.updated_at,
            finished_at: job.finished_at,
        }
    }
}

/// An image and its variants as clients see them.
#[derive(Serialize, ToSchema)]
pub(crate) struct ImageView {
    id: Uuid,
    /// Hex SHA-256 of the original; absent until known (presigned uploads).
    sha256: Option<String>,
    bytes: i64,
    /// Detected format, once a worker decoded it.
    format: Option<String>,
    width: Option<i32>,
    height: Option<i32>,
    created_at: DateTime<Utc>,
    /// Largest first.
    variants: Vec<VariantView>,
}

/// One encoded output.
#[derive(Serialize, ToSchema)]
pub(crate) struct VariantView {
    preset: String,
    /// Derived from the preset's settings; changes when they do.
    preset_version: String,
    format: String,
    width: i32,
    height: i32,
    bytes: i64,
    key: String,
    /// Where to fetch it (a redirect to a short-lived URL).
    url: String,
}

impl ImageView {
    fn new(image: images::Model, variants: Vec<variants::Model>) -> Self {
        let id = image.id;
        Self {
            id,
            sha256: Some(image.sha256).filter(|s| !s.is_empty()),
            bytes: image.bytes,
            format: image.format,
            width: image.width,
            height: image.height,
            created_at: image.created_at,
            variants: variants
                .into_iter()
                .map(|v| VariantView {
                    url: format!("/v1/images/{id}/variants/{}", v.preset),
                    preset: v.preset,
                    preset_version: v.preset_version,
                    format: v.format,
                    width: v.width,
                    height: v.height,
                    bytes: v.bytes,
                    key: v.object_key,
                })
                .collect(),
        }
    }
}

fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::BadRequest(format!("{raw:?} is not a valid id")))
}

/// How long a cached job view lives: short while it can still change, long
/// once final (only an operator's replay changes it, and that invalidates).
fn job_ttl(status: JobStatus) -> Duration {
    if status.is_final() { Duration::from_secs(300) } else { Duration::from_secs(10) }
}

/// A JSON body from the read cache, or from `load` (then cached for the TTL
/// it returns). Redis being down only makes this a miss.
async fn read_through<T, F>(state: &AppState, key: String, load: F) -> Result<Response, ApiError>
where
    T: Serialize,
    F: Future<Output = Result<(T, Duration), ApiError>>,
{
    if let Some(body) = state.backends.cache.get(&key).await {
        state.metrics.cache_lookup(true);
        return Ok(json_bytes(body, "hit"));
    }
    state.metrics.cache_lookup(false);
    let (value, ttl) = load.await?;
    let body = Bytes::from(serde_json::to_vec(&value).map_err(|e| ApiError::Internal(e.into()))?);
    state.backends.cache.put(&key, body.clone(), ttl).await;
    Ok(json_bytes(body, "miss"))
}

fn json_bytes(body: Bytes, cache: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (CACHE_HEADER, HeaderValue::from_static(cache)),
        ],
        body,
    )
        .into_response()
}

/// Tells clients (and the benchmark) whether a read came from the cache.
const CACHE_HEADER: header::HeaderName = header::HeaderName::from_static("x-cache");

/// One job.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", params(("id" = Uuid, Path, description = "Job id")),
    responses((status = 200, description = "The job", body = JobView),
              (status = 400, description = "Not an id", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
              (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json")))]
async fn get_job(State(state): State<SharedState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    read_through(&state, cache::job_key(id), async {
        let job = repo::find_job(&state.backends.db, id)
            .await
            .map_err(|e| ApiError::Unavailable(e.into()))?
            .ok_or(ApiError::NotFound("job"))?;
        let ttl = job_ttl(job.status);
        Ok((JobView::from(job), ttl))
    })
    .await
}

/// One image and its variants.
#[utoipa::path(get, path = "/v1/images/{id}", tag = "images", params(("id" = Uuid, Path, description = "Image id")),
    responses((status = 200, description = "The image", body = ImageView),
              (status = 400, description = "Not an id", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such image", body = Problem, content_type = "application/problem+json"),
              (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json")))]
async fn get_image(State(state): State<SharedState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    read_through(&state, cache::image_key(id), async {
        let (image, variants) = repo::find_image(&state.backends.db, id)
            .await
            .map_err(|e| ApiError::Unavailable(e.into()))?
            .ok_or(ApiError::NotFound("image"))?;
        Ok((ImageView::new(image, variants), Duration::from_secs(60)))
    })
    .await
}

/// How long a redirect to a variant stays valid.
const VARIANT_URL_TTL: Duration = Duration::from_secs(300);

/// A variant: a short-lived redirect to the object on S3, or the bytes
/// themselves from local disk.
#[utoipa::path(get, path = "/v1/images/{id}/variants/{preset}", tag = "images",
    params(("id" = Uuid, Path, description = "Image id"), ("preset" = String, Path, description = "Preset name")),
    responses((status = 302, description = "Redirect to a presigned GET (S3)"),
              (status = 200, description = "The variant's bytes (local disk)", content_type = "image/*"),
              (status = 400, description = "Not an id", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such variant", body = Problem, content_type = "application/problem+json")))]
async fn get_variant(
    State(state): State<SharedState>,
    Path((id, preset)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let variant = repo::find_variant(&state.backends.db, id, &preset)
        .await
        .map_err(|e| ApiError::Unavailable(e.into()))?
        .ok_or(ApiError::NotFound("variant"))?;
    let store = &state.backends.store;
    if let Some(url) =
        store.presigned_get(&variant.object_key, VARIANT_URL_TTL).await.map_err(|e| ApiError::Unavailable(e.into()))?
    {
        let location = HeaderValue::from_str(&url).map_err(|e| ApiError::Internal(e.into()))?;
        return Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response());
    }
    let bytes = store.get(&variant.object_key).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::NotFound("variant"),
        other => ApiError::Unavailable(other.into()),
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(media_type(&variant.format))),
            (header::CACHE_CONTROL, HeaderValue::from_static(keys::VARIANT_CACHE_CONTROL)),
        ],
        bytes,
    )
        .into_response())
}

/// The media type of an encoded format.
fn media_type(format: &str) -> &'static str {
    match format {
        "jpeg" => "image/jpeg",
        "png" => "image/png",
        "avif" => "image/avif",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "tiff" => "image/tiff",
        _ => "image/webp",
    }
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
    repo::find_job_by_idempotency_key(&state.backends.db, key).await.map_err(|e| ApiError::Unavailable(e.into()))
}

/// Records an upload. When a concurrent request with the same idempotency
/// key got there first, returns that request's job instead (422 if it asked
/// for something else). The flag tells which.
pub(crate) async fn record_idempotent(
    db: &sea_orm::DatabaseConnection,
    upload: NewUpload,
    fingerprint: &str,
) -> Result<(jobs::Model, bool), ApiError> {
    let key = upload.idempotency_key.clone();
    match repo::record_upload(db, upload).await {
        Ok(job) => Ok((job, false)),
        Err(err) if repo::is_unique_violation(&err) && key.is_some() => {
            let job = repo::find_job_by_idempotency_key(db, key.as_deref().unwrap_or_default())
                .await
                .map_err(|e| ApiError::Unavailable(e.into()))?
                .ok_or_else(|| ApiError::Unavailable(err.into()))?;
            replayed(&job, fingerprint)?;
            Ok((job, true))
        }
        Err(err) => Err(ApiError::Unavailable(err.into())),
    }
}

/// Marks a response as the replay of an earlier request.
pub(crate) const REPLAYED_HEADER: header::HeaderName = header::HeaderName::from_static("idempotent-replayed");

/// Where an upload's bytes go: the store, or nowhere (a repeated request
/// only needs their hash).
enum Sink<'a> {
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

/// Streams the image of a raw or multipart request through `meter` into `sink`.
async fn stream_image(request: Request, meter: &Meter, limit: u64, sink: Sink<'_>) -> Result<(), ApiError> {
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
    let stored = if content_type.type_() == mime::MULTIPART && content_type.subtype() == mime::FORM_DATA {
        let mut form = Multipart::from_request(request, &()).await.map_err(|e| ApiError::BadRequest(e.body_text()))?;
        loop {
            let field = form
                .next_field()
                .await
                .map_err(|e| ApiError::BadRequest(e.body_text()))?
                .ok_or_else(|| ApiError::BadRequest("the multipart body has no `file` field".into()))?;
            if field.name() != Some("file") {
                continue;
            }
            let meta = ObjectMeta {
                content_type: field.content_type().unwrap_or("application/octet-stream").to_owned(),
                cache_control: None,
            };
            break sink.consume(meter.wrap(field, limit), None, &meta).await;
        }
    } else if content_type.type_() == mime::IMAGE {
        let meta = ObjectMeta { content_type: content_type.essence_str().to_owned(), cache_control: None };
        // A declared length lets the store stream the body straight through.
        let length = declared_length(request.headers());
        sink.consume(meter.wrap(request.into_body().into_data_stream(), limit), length, &meta).await
    } else {
        return Err(ApiError::UnsupportedMediaType(format!(
            "{} is not an image type; send image/* or multipart/form-data",
            content_type.essence_str()
        )));
    };
    upload_outcome(stored, meter, limit)
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
        Err(err) => Err(ApiError::Unavailable(err.into())),
    }
}

/// Uploads an image through the API: a raw body with an `image/*`
/// Content-Type, or a multipart form with a `file` field. The body streams
/// into the store; the job is queued at once.
#[utoipa::path(post, path = "/v1/images", tag = "images",
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat the request safely: the same key and image return the same job")),
    request_body(content(
        (Vec<u8> = "image/*"),
        (UploadForm = "multipart/form-data"),
    )),
    responses((status = 202, description = "Accepted; poll the job", body = JobView,
                headers(("Location" = String, description = "The job"))),
              (status = 400, description = "Malformed request", body = Problem, content_type = "application/problem+json"),
              (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
              (status = 413, description = "Over MAX_UPLOAD_BYTES", body = Problem, content_type = "application/problem+json"),
              (status = 415, description = "Not a supported image", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Idempotency-Key reused with another image", body = Problem, content_type = "application/problem+json"),
              (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
              (status = 503, description = "A backing service is unavailable", body = Problem, content_type = "application/problem+json")))]
#[tracing::instrument(skip_all, fields(job_id, image_id))]
async fn create_image(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, ApiError> {
    let db = &state.backends.db;
    let limit = state.max_upload_bytes;
    let idempotency_key = idempotency_key(&headers, &principal)?;
    if let Some(job) = earlier_job(&state, idempotency_key.as_deref()).await? {
        let meter = Meter::default();
        stream_image(request, &meter, limit, Sink::Discard).await?;
        replayed(&job, &meter.finish().1)?;
        return Ok(accepted(job, true));
    }

    let image_id = Uuid::now_v7();
    let job_id = Uuid::now_v7();
    tracing::Span::current().record("job_id", tracing::field::display(job_id));
    tracing::Span::current().record("image_id", tracing::field::display(image_id));
    let source_key = keys::original(image_id);
    let meter = Meter::default();
    stream_image(request, &meter, limit, Sink::Store(state.backends.store.as_ref(), &source_key)).await?;

    let (bytes, sha256) = meter.finish();
    let upload = NewUpload {
        image_id,
        job_id,
        source_key: source_key.clone(),
        request_fingerprint: idempotency_key.as_ref().map(|_| sha256.clone()),
        sha256: sha256.clone(),
        bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
        idempotency_key: idempotency_key.clone(),
        api_key_id: principal.key_id,
        awaiting_upload: false,
    };
    let (job, replay) = record_idempotent(db, upload, &sha256).await?;
    if replay {
        return Ok(accepted(job, true));
    }
    enqueue(&state, &job).await?;
    tracing::info!(bytes, "upload accepted");
    Ok(accepted(job, false))
}

/// The multipart form of `POST /v1/images`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct UploadForm {
    /// The image.
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    file: String,
}

/// Sends a queued job's message. Without a message no worker would ever see
/// the job, so a failed send ends it rather than leave it queued forever,
/// and frees its idempotency key: the client gets a 503 and its retry, with
/// the same key, makes a new job.
pub(crate) async fn enqueue(state: &AppState, job: &jobs::Model) -> Result<(), ApiError> {
    let message = JobMessage::for_job(job);
    if let Err(err) = state.backends.queue.send(&message.to_body()).await {
        let db = &state.backends.db;
        let _ = repo::finish_with_error(db, job.id, JobStatus::Failed, "enqueue-failed", &err.to_string()).await;
        let _ = repo::release_idempotency_key(db, job.id).await;
        state.backends.cache.forget(&[cache::job_key(job.id)]).await;
        return Err(ApiError::Unavailable(err.into()));
    }
    Ok(())
}

fn accepted(job: jobs::Model, replay: bool) -> Response {
    let location = HeaderValue::from_str(&format!("/v1/jobs/{}", job.id)).unwrap_or(HeaderValue::from_static("/"));
    let mut response = (StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(JobView::from(job))).into_response();
    if replay {
        response.headers_mut().insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    response
}
