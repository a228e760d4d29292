//! `POST /v1/images` (an upload through the API), `GET /v1/images/{id}`
//! and `GET /v1/images/{id}/variants/{preset}`.

use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use entities::jobs;
use pipeline::jobs::{self as repo, NewUpload, Recorded};
use pipeline::links::Links;
use pipeline::store::StoreError;
use pipeline::{cache, keys};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Principal, ScopedId};
use crate::error::ApiError;
use crate::intake::{
    EXTERNAL_ID_HEADER, Sink, charge_quota, earlier_job, enqueue, ensure_enqueued, external_id_taken, idempotency_key,
    mark_replayed, record_idempotent, refund_quota, replayed, stream_image, upload_fingerprint,
};
use crate::meter::Meter;
use crate::read_cache::{IMAGE_TTL, read_through};
use crate::responses::{
    BadRequest, ExternalIdTaken, KeyReused, NotFound, OverQuota, RateLimited, TooLarge, Unauthorized, Unavailable,
    UnsupportedMediaType,
};
use crate::views::{ImagePage, ImageView, JobView, PageBounds};
use crate::{SharedState, parse_id};

/// An image's bytes as a request body: `POST /v1/images` with an `image/*`
/// Content-Type, and a presigned upload's PUT.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(value_type = String, format = Binary, examples(crate::examples::image_bytes))]
pub(crate) struct ImageBytes(Vec<u8>);

/// The multipart form of `POST /v1/images`.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(examples(crate::examples::upload_form))]
pub(crate) struct UploadForm {
    /// The image.
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    file: String,
}

/// Upload an image.
///
/// A raw body with an `image/*` Content-Type, or a multipart form with a
/// `file` field. The body streams into the store and the job is queued at
/// once: the answer is `202` with the job to poll. Bytes the tenant has
/// uploaded before answer `200` with that image's job and `deduplicated:
/// true`. The `Image-External-Id` and `Image-Metadata` headers (or the form
/// fields `external_id` and `metadata`) attach the caller's own id and
/// metadata. Send an `Idempotency-Key` to retry safely.
#[utoipa::path(post, path = "/v1/images", tag = "images",
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat the request safely: the same key and image return the same job"),
           ("Image-External-Id" = Option<String>, Header, description = "The caller's own id for the image, unique within the tenant (raw bodies; a form sends the field `external_id`)"),
           ("Image-Metadata" = Option<String>, Header, description = "A JSON object of the caller's own metadata, kept with the image (raw bodies; a form sends the field `metadata`)")),
    request_body(content(
        (ImageBytes = "image/*"),
        (UploadForm = "multipart/form-data"),
    )),
    responses((status = 202, description = "Accepted; poll the job", body = JobView,
                headers(("Location" = String, description = "The job"))),
              (status = 200, description = "The tenant has these bytes already: its image's job, with `deduplicated: true`",
                body = JobView, headers(("Location" = String, description = "The job"))),
              BadRequest, Unauthorized, TooLarge, UnsupportedMediaType, ExternalIdTaken, KeyReused, OverQuota, Unavailable))]
#[tracing::instrument(skip_all, fields(job_id, image_id))]
pub(crate) async fn create_image(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, ApiError> {
    let limit = state.max_upload_bytes;
    let idempotency_key = idempotency_key(&headers, &principal)?;
    if let Some(job) = earlier_job(&state, idempotency_key.as_deref()).await? {
        let meter = Meter::default();
        let client = stream_image(request, &meter, limit, Sink::Discard).await?;
        replayed(&job, &upload_fingerprint(&meter.finish().1, &client))?;
        ensure_enqueued(&state, &job).await?;
        return Ok(accepted(job, Recorded::Existing));
    }
    // A raw upload names its external id in a header: refuse a taken one
    // before its bytes are read. (A form's fields are checked once read.)
    let header_id = headers.get(EXTERNAL_ID_HEADER).and_then(|v| v.to_str().ok());
    if let Some(taken) = external_id_taken(&state, principal.tenant, header_id).await? {
        return Err(taken);
    }

    let image_id = Uuid::now_v7();
    let job_id = Uuid::now_v7();
    tracing::Span::current().record("job_id", tracing::field::display(job_id));
    tracing::Span::current().record("image_id", tracing::field::display(image_id));
    let meter = Meter::default();
    let source_key = keys::original(image_id);
    let sink = Sink::Store(state.backends.store.as_ref(), &source_key);
    let client = match stream_image(request, &meter, limit, sink).await {
        Ok(client) => client,
        Err(err) => {
            // A form's fields are read after its file, which may be stored by then.
            discard_original(&state, &source_key).await;
            return Err(err);
        }
    };

    let (bytes, sha256) = meter.finish();
    let deduplicate = pipeline::tenants::deduplicates(&state.backends.db, principal.tenant).await?;
    let upload = NewUpload {
        tenant_id: principal.tenant,
        image_id,
        job_id,
        request_fingerprint: idempotency_key.as_ref().map(|_| upload_fingerprint(&sha256, &client)),
        sha256,
        bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
        idempotency_key,
        api_key_id: principal.key_id,
        awaiting_upload: false,
        deduplicate,
        client,
    };
    keep_upload(&state, upload, &source_key).await
}

/// Charges, records and enqueues an upload whose bytes are stored under
/// `source_key`. One refused by a quota, repeated (the same
/// `Idempotency-Key`) or a duplicate (bytes the tenant has already) keeps
/// no bytes and no charge.
async fn keep_upload(state: &SharedState, upload: NewUpload, source_key: &str) -> Result<Response, ApiError> {
    let (tenant, size, sha256) = (upload.tenant_id, upload.bytes, upload.sha256.clone());
    let fingerprint = upload_fingerprint(&sha256, &upload.client);
    if let Some(taken) = external_id_taken(state, tenant, upload.client.external_id.as_deref()).await? {
        discard_original(state, source_key).await;
        return Err(taken);
    }
    // A duplicate costs nothing, so a tenant at its quota can still get an image it has.
    if upload.deduplicate
        && let Some(job) = repo::newest_job_with_digest(&state.backends.db, tenant, &sha256).await?
    {
        discard_original(state, source_key).await;
        ensure_enqueued(state, &job).await?;
        return Ok(accepted(job, Recorded::Duplicate));
    }
    let charged_at = match charge_quota(state, tenant, size).await {
        Ok(at) => at,
        Err(refused) => {
            discard_original(state, source_key).await;
            return Err(refused);
        }
    };
    let (job, recorded) = match record_idempotent(state, upload, &fingerprint).await {
        Ok(recorded) => recorded,
        Err(err) => {
            // Nothing was recorded, so nothing refers to the stored bytes.
            refund_quota(state, tenant, size, charged_at).await;
            discard_original(state, source_key).await;
            return Err(err);
        }
    };
    if recorded != Recorded::New {
        refund_quota(state, tenant, size, charged_at).await;
        discard_original(state, source_key).await;
        ensure_enqueued(state, &job).await?;
        return Ok(accepted(job, recorded));
    }
    enqueue(state, &job).await?;
    tracing::info!(bytes = size, "upload accepted");
    Ok(accepted(job, recorded))
}

/// Removes an original this request stored but will not keep.
async fn discard_original(state: &SharedState, key: &str) {
    if let Err(err) = state.backends.store.delete(key).await {
        tracing::warn!(%key, error = %err, "could not remove an upload that was not kept");
    }
}

/// `202 Accepted` with the job and its address; `200` with
/// `"deduplicated": true` for the image the tenant already had.
fn accepted(job: jobs::Model, recorded: Recorded) -> Response {
    let location = HeaderValue::from_str(&Links::relative().job(job.id)).unwrap_or(HeaderValue::from_static("/"));
    let (status, view) = match recorded {
        Recorded::Duplicate => (StatusCode::OK, JobView::from(job).deduplicated()),
        Recorded::New | Recorded::Existing => (StatusCode::ACCEPTED, JobView::from(job)),
    };
    let response = (status, [(header::LOCATION, location)], Json(view)).into_response();
    mark_replayed(response, recorded == Recorded::Existing)
}

/// Query of `GET /v1/images`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only the image with this external id.
    external_id: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    limit: Option<u64>,
}

/// List images.
///
/// The caller's tenant's images with their variants, newest first, one page
/// at a time: pass the answer's `next_cursor` as `cursor` for the next page,
/// until it is `null`. `external_id` finds the image of that id.
#[utoipa::path(get, path = "/v1/images", tag = "images", params(ListQuery),
    responses((status = 200, description = "A page of images", body = ImagePage),
              BadRequest, Unauthorized, RateLimited, Unavailable))]
pub(crate) async fn list_images(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    query: Result<axum::extract::Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ImagePage>, ApiError> {
    let axum::extract::Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let bounds = PageBounds::parse(query.cursor.as_deref(), query.limit)?;
    let external_id = query.external_id.as_deref();
    let page =
        repo::list_images(&state.backends.db, principal.tenant, external_id, bounds.before, bounds.limit).await?;
    let next_cursor = bounds.next_cursor(page.len(), page.last().map(|(image, _)| image.id));
    let images =
        page.into_iter().map(|(image, variants)| ImageView::new(image, variants, &state.backends.delivery)).collect();
    Ok(Json(ImagePage { images, next_cursor }))
}

/// Get an image.
///
/// One image and its variants, with their delivery URLs and a placeholder
/// to show while they load. Another tenant's image is `404`.
#[utoipa::path(get, path = "/v1/images/{id}", tag = "images", params(("id" = Uuid, Path, description = "Image id")),
    responses((status = 200, description = "The image", body = ImageView),
              BadRequest, Unauthorized, NotFound, RateLimited, Unavailable))]
pub(crate) async fn get_image(State(state): State<SharedState>, scoped: ScopedId) -> Result<Response, ApiError> {
    let (tenant, id) = (scoped.principal.tenant, scoped.id);
    read_through(&state, cache::image_key(tenant, id), async {
        let (image, variants) =
            repo::find_image(&state.backends.db, tenant, id).await?.ok_or(ApiError::NotFound("image"))?;
        Ok((ImageView::new(image, variants, &state.backends.delivery), IMAGE_TTL))
    })
    .await
}

/// Delete an image.
///
/// Deletes one of the caller's tenant's images: its original, any staged
/// upload, every variant of every preset version, its jobs, its rows and its
/// cache entries; then announces `image.deleted`. A job still running for it
/// stores nothing that stays and announces nothing.
#[utoipa::path(delete, path = "/v1/images/{id}", tag = "images", params(("id" = Uuid, Path, description = "Image id")),
    responses((status = 204, description = "Deleted"),
              BadRequest, Unauthorized, NotFound, RateLimited, Unavailable))]
#[tracing::instrument(skip_all, fields(image_id = %scoped.id))]
pub(crate) async fn delete_image(State(state): State<SharedState>, scoped: ScopedId) -> Result<StatusCode, ApiError> {
    let ScopedId { principal, id } = scoped;
    pipeline::deletion::delete_image(&state.backends, principal.tenant, id, principal.key_id, &state.app_env)
        .await
        .map_err(|err| ApiError::Unavailable(err.into()))?
        .ok_or(ApiError::NotFound("image"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// How long a redirect to a variant stays valid.
const VARIANT_URL_TTL: Duration = Duration::from_secs(300);

/// Get a variant's bytes.
///
/// A `302` to a short-lived presigned GET when objects are on S3, or the
/// bytes themselves from local disk. For web pages use the variant's
/// delivery `url` instead, which needs no key and caches for a year.
#[utoipa::path(get, path = "/v1/images/{id}/variants/{preset}", tag = "images",
    params(("id" = Uuid, Path, description = "Image id"), ("preset" = String, Path, description = "Preset name")),
    responses((status = 302, description = "Redirect to a presigned GET (S3)"),
              (status = 200, description = "The variant's bytes (local disk)", content_type = "image/*"),
              BadRequest, Unauthorized, NotFound, RateLimited, Unavailable))]
pub(crate) async fn get_variant(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    Path((id, preset)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let variant = repo::find_variant(&state.backends.db, principal.tenant, id, &preset)
        .await?
        .ok_or(ApiError::NotFound("variant"))?;
    let store = &state.backends.store;
    if let Some(url) = store.presigned_get(&variant.object_key, VARIANT_URL_TTL).await? {
        let location = HeaderValue::from_str(&url).map_err(|e| ApiError::Internal(e.into()))?;
        return Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response());
    }
    let bytes = store.get(&variant.object_key).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::NotFound("variant"),
        other => other.into(),
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(pipeline::delivery::media_type(&variant.format))),
            (header::CACHE_CONTROL, HeaderValue::from_static(keys::VARIANT_CACHE_CONTROL)),
        ],
        bytes,
    )
        .into_response())
}
