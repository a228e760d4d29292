//! The read-through cache in front of `GET /v1/jobs/{id}` and
//! `GET /v1/images/{id}`. Entries are cleared by the job's own transitions
//! (`pipeline::jobs::Jobs`), never here.

use std::time::Duration;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use entities::jobs::JobStatus;
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;

/// Tells clients (and the benchmark) whether a read came from the cache.
const CACHE_HEADER: header::HeaderName = header::HeaderName::from_static("x-cache");

/// How long a cached job view lives: short while it can still change, long
/// once final (only an operator's replay changes it, and that invalidates).
pub(crate) fn job_ttl(status: JobStatus) -> Duration {
    if status.is_final() { Duration::from_secs(300) } else { Duration::from_secs(10) }
}

/// How long a cached image view lives.
pub(crate) const IMAGE_TTL: Duration = Duration::from_secs(60);

/// A JSON body from the read cache, or from `load` (then cached for the TTL
/// it returns). Redis being down only makes this a miss.
pub(crate) async fn read_through<T, F>(state: &AppState, key: String, load: F) -> Result<Response, ApiError>
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
