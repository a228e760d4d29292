//! A job's status page for a browser: `GET /v1/status/{id}` with the
//! signature the upload's answer handed out (`status_url`). It opens without
//! an API key, for that one job, for an hour, from any origin, so a page can
//! wait for its own upload and then show it; it only reads.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::http::{HeaderValue, header};
use axum::response::Html;
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
#[schema(examples(crate::examples::status))]
pub(crate) struct StatusView {
    job: JobView,
    /// The image with its placeholder, `srcset` and delivery URLs; present once the job succeeded.
    image: Option<ImageView>,
}

/// The signed, keyless status URL of `job_id`, under `base` (none without a signing key).
pub(crate) fn status_url(state: &crate::AppState, base: &str, job_id: Uuid) -> Option<String> {
    state.backends.delivery.status_url(&Links::at(base), job_id, STATUS_URL_TTL_SECS, Utc::now())
}

/// A job's status, for the page that uploaded it.
///
/// The `status_url` of an upload's answer: its signature is the credential,
/// so a browser can poll it without the API key. Once the job succeeded it
/// carries the image and its variants.
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
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let delivery = &state.backends.delivery;
    delivery.check_status(id, query.as_deref(), Utc::now()).map_err(ApiError::DeliveryRefused)?;
    let db = &state.backends.db;
    let job = repo::find_job(db, id).await?.ok_or(ApiError::NotFound("job"))?;
    let image = if job.status == JobStatus::Succeeded {
        repo::find_image(db, job.tenant_id, job.image_id)
            .await?
            .map(|(image, variants)| ImageView::new(image, variants, delivery))
    } else {
        None
    };
    let view = StatusView { job: job.into(), image };
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.split(',').any(|t| t.trim().starts_with("text/html")));
    let mut response = if wants_html { Html(page(&view)).into_response() } else { Json(view).into_response() };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The status as a page for people (a notification's link, opened in a
/// browser): the state, the error, and the thumbnail once there is one.
fn page(view: &StatusView) -> String {
    let json = serde_json::to_value(view).unwrap_or_default();
    let text = |v: &serde_json::Value| escape(v.as_str().unwrap_or_default());
    let job = &json["job"];
    let mut body = format!(
        "<h1>Job {}</h1>\n<p>Status: <strong>{}</strong> (attempts: {})</p>\n",
        text(&job["id"]),
        text(&job["status"]),
        job["attempts"]
    );
    if job["error"].is_object() {
        body.push_str(&format!(
            "<p>Error: <code>{}</code> {}</p>\n",
            text(&job["error"]["code"]),
            text(&job["error"]["message"])
        ));
    }
    let image = &json["image"];
    let smallest = image["variants"].as_array().and_then(|vs| vs.iter().min_by_key(|v| v["width"].as_i64()));
    if let Some(variant) = smallest.filter(|v| v["delivery_url"].is_string()) {
        body.push_str(&format!(
            "<p><img src=\"{}\" width=\"{}\" height=\"{}\" alt=\"\" style=\"background:{}\"></p>\n",
            text(&variant["delivery_url"]),
            variant["width"],
            variant["height"],
            text(&image["placeholder"]["dominant_colour"]),
        ));
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Job {}</title></head>\n<body>\n{body}</body></html>\n",
        text(&job["status"])
    )
}

/// Text safe inside HTML content and double-quoted attributes.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn html_special_characters_are_escaped() {
        assert_eq!(escape(r#"<a href="x">&</a>"#), "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
    }
}
