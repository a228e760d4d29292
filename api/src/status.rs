//! A job's status page for a browser: `GET /v1/status/{id}` with the
//! signature the upload's answer handed out (`status_url`). It opens without
//! an API key, for that one job, for an hour, from any origin, so a page can
//! wait for its own upload and then show it; it only reads.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use entities::jobs::JobStatus;
use pipeline::jobs as repo;
use pipeline::links::Links;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::responses::{BadRequest, DeliveryRefused, NotFound, Unavailable};
use crate::views::{ImageView, JobView};
use crate::{SharedState, parse_id};

/// How long a status URL opens its job's status.
pub(crate) const STATUS_URL_TTL_SECS: i64 = 3600;

/// A job and, once it succeeded, its image.
#[derive(Serialize, ToSchema)]
pub(crate) struct StatusView {
    job: JobView,
    /// The image with its placeholder, `srcset` and delivery URLs; present once the job succeeded.
    image: Option<ImageView>,
}

/// The signed, keyless status URL of `job_id`, under `base` (none without a signing key).
pub(crate) fn status_url(state: &crate::AppState, base: &str, job_id: Uuid) -> Option<String> {
    let path = Links::relative().status(job_id);
    let query = state.backends.delivery.sign_path(&path, STATUS_URL_TTL_SECS, Utc::now())?;
    Some(format!("{}?{query}", Links::at(base).status(job_id)))
}

/// One job's status, for the page that uploaded it.
#[utoipa::path(get, path = "/v1/status/{id}", tag = "jobs", security(()),
    params(("id" = Uuid, Path, description = "Job id"),
           ("Expires" = i64, Query, description = "From the upload's `status_url`"),
           ("Signature" = String, Query, description = "From the upload's `status_url`"),
           ("Key-Pair-Id" = String, Query, description = "From the upload's `status_url`")),
    responses((status = 200, description = "The job, and its image once it succeeded", body = StatusView),
              BadRequest, DeliveryRefused, NotFound, Unavailable))]
pub(crate) async fn get_status(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let delivery = &state.backends.delivery;
    delivery
        .check_path(&Links::relative().status(id), query.as_deref(), Utc::now())
        .map_err(ApiError::DeliveryRefused)?;
    let db = &state.backends.db;
    let job = repo::find_job(db, id).await?.ok_or(ApiError::NotFound("job"))?;
    let image = if job.status == JobStatus::Succeeded {
        repo::find_image(db, job.tenant_id, job.image_id)
            .await?
            .map(|(image, variants)| ImageView::new(image, variants, delivery))
    } else {
        None
    };
    let mut response = Json(StatusView { job: job.into(), image }).into_response();
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
