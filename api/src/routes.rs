//! The handlers.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use entities::jobs::{self, JobStatus};
use entities::{images, variants};
use pipeline::keys;
use pipeline::message::JobMessage;
use pipeline::repo::{self, NewUpload};
use pipeline::store::{ObjectMeta, StoreError};
use serde::Serialize;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::upload::Meter;

type SharedState = Arc<AppState>;

pub(crate) fn router(state: SharedState, request_timeout: Duration) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/jobs", get(list_jobs))
        .route("/v1/images", post(create_image))
        .route("/v1/images/{id}", get(get_image))
        .route("/v1/images/{id}/variants/{preset}", get(get_variant))
        .route("/v1/jobs/{id}", get(get_job))
        .nest("/v1/admin", crate::admin::router(state.clone()))
        // Uploads are limited while they stream (see `Meter`), not by buffering.
        .layer(DefaultBodyLimit::disable())
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
                .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, request_timeout)),
        )
}

/// Liveness: the process answers.
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: the database, the queue and the store all answer. A 503 names
/// the failing dependency, never its internal error.
async fn readyz(State(state): State<SharedState>) -> axum::response::Response {
    let backends = &state.backends;
    let database = backends.db.ping().await.is_ok();
    let queue = backends.queue.approximate_depth().await.is_ok();
    // A read of a key that never exists: "not found" proves the store answers.
    let store = matches!(backends.store.get("readyz/probe").await, Ok(_) | Err(StoreError::NotFound(_)));
    let body = serde_json::json!({
        "status": if database && queue && store { "ready" } else { "unavailable" },
        "checks": { "database": database, "queue": queue, "store": store },
    });
    let status = if database && queue && store { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

/// Query of `GET /v1/jobs`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    since: Option<DateTime<Utc>>,
    cursor: Option<String>,
    limit: Option<u64>,
}

/// A page of jobs and the cursor of the next one.
#[derive(Serialize)]
struct JobPage {
    jobs: Vec<JobView>,
    next_cursor: Option<String>,
}

/// `GET /v1/jobs?status=&since=&cursor=&limit=`: newest first.
async fn list_jobs(
    State(state): State<SharedState>,
    query: Result<axum::extract::Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<JobPage>, ApiError> {
    let axum::extract::Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let status = query
        .status
        .as_deref()
        .map(|s| {
            [JobStatus::Queued, JobStatus::Processing, JobStatus::Succeeded, JobStatus::Failed, JobStatus::Dead]
                .into_iter()
                .find(|known| known.as_str() == s)
                .ok_or_else(|| ApiError::BadRequest(format!("status {s:?} is not a job status")))
        })
        .transpose()?;
    let before = query
        .cursor
        .as_deref()
        .map(|c| parse_id(c).map_err(|_| ApiError::BadRequest("invalid cursor".into())))
        .transpose()?;
    let limit = query.limit.unwrap_or(50).clamp(1, 200);
    let jobs = repo::list_jobs(&state.backends.db, status, query.since, before, limit)
        .await
        .map_err(|e| ApiError::Unavailable(e.into()))?;
    let next_cursor = (jobs.len() as u64 == limit).then(|| jobs.last().map(|j| j.id.to_string())).flatten();
    Ok(Json(JobPage { jobs: jobs.into_iter().map(JobView::from).collect(), next_cursor }))
}

/// A job as clients see it.
#[derive(Serialize)]
struct JobView {
    id: Uuid,
    image_id: Uuid,
    status: JobStatus,
    attempts: i32,
    error: Option<ErrorView>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    links: JobLinks,
}

#[derive(Serialize)]
struct ErrorView {
    code: String,
    message: String,
}

#[derive(Serialize)]
struct JobLinks {
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
            status: job.status,
            attempts: job.attempts,
            error: job.error_code.map(|code| ErrorView { code, message: job.error_message.unwrap_or_default() }),
            created_at: job.created_at,
            updated_at: job.updated_at,
            finished_at: job.finished_at,
        }
    }
}

/// An image and its variants as clients see them.
#[derive(Serialize)]
struct ImageView {
    id: Uuid,
    sha256: String,
    bytes: i64,
    format: Option<String>,
    width: Option<i32>,
    height: Option<i32>,
    created_at: DateTime<Utc>,
    variants: Vec<VariantView>,
}

#[derive(Serialize)]
struct VariantView {
    preset: String,
    preset_version: String,
    format: String,
    width: i32,
    height: i32,
    bytes: i64,
    key: String,
}

impl ImageView {
    fn new(image: images::Model, variants: Vec<variants::Model>) -> Self {
        Self {
            id: image.id,
            sha256: image.sha256,
            bytes: image.bytes,
            format: image.format,
            width: image.width,
            height: image.height,
            created_at: image.created_at,
            variants: variants
                .into_iter()
                .map(|v| VariantView {
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

async fn get_job(State(state): State<SharedState>, Path(id): Path<String>) -> Result<Json<JobView>, ApiError> {
    let id = parse_id(&id)?;
    let job = repo::find_job(&state.backends.db, id)
        .await
        .map_err(|e| ApiError::Unavailable(e.into()))?
        .ok_or(ApiError::NotFound("job"))?;
    Ok(Json(job.into()))
}

async fn get_image(State(state): State<SharedState>, Path(id): Path<String>) -> Result<Json<ImageView>, ApiError> {
    let id = parse_id(&id)?;
    let (image, variants) = repo::find_image(&state.backends.db, id)
        .await
        .map_err(|e| ApiError::Unavailable(e.into()))?
        .ok_or(ApiError::NotFound("image"))?;
    Ok(Json(ImageView::new(image, variants)))
}

/// How long a redirect to a variant stays valid.
const VARIANT_URL_TTL: Duration = Duration::from_secs(300);

/// `GET /v1/images/{id}/variants/{preset}`: a short-lived redirect to the
/// object on S3, or the bytes themselves from local disk.
async fn get_variant(
    State(state): State<SharedState>,
    Path((id, preset)): Path<(String, String)>,
) -> Result<axum::response::Response, ApiError> {
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
    let content_type = match variant.format.as_str() {
        "jpeg" => "image/jpeg",
        "png" => "image/png",
        "avif" => "image/avif",
        _ => "image/webp",
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(keys::VARIANT_CACHE_CONTROL)),
        ],
        bytes,
    )
        .into_response())
}

/// `POST /v1/images`: a raw body with an `image/*` Content-Type, or a
/// multipart form with a `file` field. The body streams into the store.
#[tracing::instrument(skip_all, fields(job_id, image_id))]
async fn create_image(
    State(state): State<SharedState>,
    headers: HeaderMap,
    request: Request,
) -> Result<impl IntoResponse, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .ok_or_else(|| {
            ApiError::UnsupportedMediaType(
                "send an image/* Content-Type, or multipart/form-data with a `file` field".into(),
            )
        })?;

    let image_id = Uuid::now_v7();
    let job_id = Uuid::now_v7();
    tracing::Span::current().record("job_id", tracing::field::display(job_id));
    tracing::Span::current().record("image_id", tracing::field::display(image_id));
    let source_key = keys::original(image_id);
    let meter = Meter::default();
    let limit = state.max_upload_bytes;

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
            break state.backends.store.put_stream(&source_key, meter.wrap(field, limit), &meta).await;
        }
    } else if content_type.type_() == mime::IMAGE {
        let meta = ObjectMeta { content_type: content_type.essence_str().to_owned(), cache_control: None };
        let body = request.into_body().into_data_stream();
        state.backends.store.put_stream(&source_key, meter.wrap(body, limit), &meta).await
    } else {
        return Err(ApiError::UnsupportedMediaType(format!(
            "{} is not an image type; send image/* or multipart/form-data",
            content_type.essence_str()
        )));
    };
    match stored {
        Ok(()) => {}
        Err(_) if meter.too_large() => return Err(ApiError::PayloadTooLarge(limit)),
        Err(StoreError::Body(detail)) => {
            return Err(ApiError::BadRequest(format!("the upload was interrupted: {detail}")));
        }
        Err(err) => return Err(ApiError::Unavailable(err.into())),
    }

    let (bytes, sha256) = meter.finish();
    let upload = NewUpload {
        image_id,
        job_id,
        source_key: source_key.clone(),
        sha256,
        bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
        idempotency_key: None,
    };
    let job = repo::record_upload(&state.backends.db, upload).await.map_err(|e| ApiError::Unavailable(e.into()))?;

    let message = JobMessage::new(job_id, image_id, source_key);
    if let Err(err) = state.backends.queue.send(&message.to_body()).await {
        // Without a message no worker would ever see this job: end it now
        // rather than leave it `queued` forever. The client gets a 503 and retries.
        let _ =
            repo::finish_with_error(&state.backends.db, job_id, JobStatus::Failed, "enqueue-failed", &err.to_string())
                .await;
        return Err(ApiError::Unavailable(err.into()));
    }
    tracing::info!(bytes, "upload accepted");

    let location = HeaderValue::from_str(&format!("/v1/jobs/{job_id}")).map_err(|e| ApiError::Internal(e.into()))?;
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(JobView::from(job))))
}
